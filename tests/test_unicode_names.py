"""Unit names in any script: load, infer with evidence, save and load back (issue 23)."""

import json

import pytest

from neurosim import Edge, Network, Unit, ValidationError, dumps, load, loads, posterior, save
from neurosim.cli import main

NAMES = ["Erdbeben_ü", "землетрясение", "地震"]
MODEL = f"""name = "erdbeben"
[[unit]]
name = "{NAMES[0]}"
bias = -10.0
[[unit]]
name = "{NAMES[1]}"
bias = -10.0
[[unit]]
name = "{NAMES[2]}"
bias = -20.0
role = "visible"
[[edge]]
from = "{NAMES[0]}"
to = "{NAMES[2]}"
weight = 20.0
[[edge]]
from = "{NAMES[1]}"
to = "{NAMES[2]}"
weight = 20.0
"""


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "erdbeben.toml"
    path.write_text(MODEL, encoding="utf-8")
    return path


def test_load_and_infer_with_evidence_on_a_unicode_unit(model, capsys):
    """Old: ``unit 1: bad name 'Erdbeben_ü'``, exit 2. Explaining away as in figure 3."""
    assert load(model).units == NAMES
    assert main(["infer", str(model), "--evidence", f"{NAMES[2]}=1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = posterior(loads(MODEL), {NAMES[2]: 1}).marginals()
    assert out["marginals"] == pytest.approx(expected) and out["marginals"][NAMES[0]] == pytest.approx(0.5, abs=1e-4)


def test_save_and_load_round_trip(model, tmp_path):
    net = load(model)
    save(net, tmp_path / "again.toml")
    assert load(tmp_path / "again.toml") == net and loads(dumps(net)) == net


@pytest.mark.parametrize("name", ["Ü-bahn.1", "_地震", "α2", "e\u0301t\u00e9"])
def test_letters_of_any_script_digits_and_marks(name):
    assert Network([Unit(name)]).units == [name]


@pytest.mark.parametrize("name", ["a b", "a=b", "a,b", "1a", "١a", "-a", ".a", "", "a\u200bb", "a:b"])
def test_names_that_would_break_evidence_or_bit_strings_are_refused(name):
    with pytest.raises(ValidationError, match=r"unit 1: bad name .*letters \(any script\)"):
        Network([Unit(name)])


def test_edges_between_unicode_units():
    net = Network([Unit(n) for n in NAMES], [Edge(NAMES[0], NAMES[1], 1.5, "symmetric")])
    assert net.neighbours(NAMES[0]) == [NAMES[1]]
