"""The documentation's relative links resolve, the README stays a tour, and the engine's
docstring example runs."""

import doctest
import re
from pathlib import Path

import pytest

import neurosim.engine.simulator

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", ROOT / "experiments" / "README.md",
                *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def relative_links(page: Path) -> list[str]:
    found = (a or b for a, b in LINK.findall(page.read_text()))
    return [link for link in found if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (anchor and target.suffix == ".md" and anchor not in anchors(target)):
            broken.append(link)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_the_link_pattern_finds_links():
    assert {"docs/architecture.md", "docs/images/explaining_away_trace.png"} <= set(
        relative_links(ROOT / "README.md"))


def test_links_inside_the_repository():
    outside = [(p.name, link) for p in PAGES for link in relative_links(p)
               if ROOT not in (p.parent / link.partition("#")[0]).resolve().parents
               and (p.parent / link.partition("#")[0]).resolve() != ROOT]
    assert not outside, f"links that leave the repository (broken in a clone): {outside}"


def test_readme_is_a_tour():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert "results/archive" not in readme        # the probe records are not listed
    assert 'pip install -e ".[test,sklearn]" && python -m pytest' in readme


def test_simulator_docstring_example_runs_on_its_own():
    """With empty globals, as a reader pastes it: the example imports what it uses."""
    module = neurosim.engine.simulator
    tests = [t for t in doctest.DocTestFinder().find(module, globs={}) if t.examples]
    assert tests
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
