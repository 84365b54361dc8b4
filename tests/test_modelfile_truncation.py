"""A model file cut short is refused, never read as another net (issue 23): written files
declare n_units and n_edges and end each table with its required number."""

from pathlib import Path

import pytest

from neurosim import Edge, ModelFileError, Network, Unit, dumps, load, loads
from neurosim.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"

RICH = Network(
    [Unit("a", -1.5, "hidden", 2, 0.25), Unit("b", 0.5, "hidden", 1), Unit("c", 2.0, "visible", 0),
     Unit("d", -0.75, "label")],
    [Edge("a", "b", 1.25, "directed", 0.5), Edge("c", "b", -2.5, "recognition"),
     Edge("a", "d", 0.75, "symmetric", 0.0, -0.125), Edge("b", "c", 3.0)],
    name="rich", description="every kind of table line")


def _cuts(text: str):
    return [text[:n] for n in range(1, len(text))]


@pytest.mark.parametrize("net", [RICH, Network([Unit("a", 1.0, "visible", 0), Unit("b", -2.0)], name="lone")],
                         ids=["rich", "edgeless"])
def test_every_cut_of_a_written_file_is_refused(net):
    """Cut at every character: before a table (fewer tables than declared), inside the
    last table (its bias or weight, written last, is missing) or mid-line (no final newline)."""
    text = dumps(net)
    assert loads(text) == net and text.count("\nweight = ") == len(net.edges)
    for cut in _cuts(text):
        with pytest.raises(ModelFileError):
            loads(cut, "m.toml")


@pytest.mark.parametrize("name", ["earthquake_truck", "boltzmann_6"])
def test_every_cut_of_a_shipped_model_is_refused(name):
    text = (MODELS / f"{name}.toml").read_text(encoding="utf-8")
    for cut in _cuts(text):
        with pytest.raises(ModelFileError):
            loads(cut, "m.toml")


def test_file_cut_before_an_edge_from_the_cli(tmp_path, capsys):
    """Old: the truck -> house_jumps edge silently gone (its weight 0), exit 0."""
    text = (MODELS / "earthquake_truck.toml").read_text(encoding="utf-8")
    cut = tmp_path / "cut.toml"
    cut.write_text(text[:text.rindex("[[edge]]")], encoding="utf-8")
    assert main(["infer", str(cut), "--evidence", "house_jumps=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neurosim: error: {cut}:4: n_edges = 2 but the file has 1 [[edge]] table: "
                          "is it cut short?") and len(err.splitlines()) == 1


def test_edge_without_weight_at_the_end_names_its_line():
    text = '[[unit]]\nname = "a"\n[[unit]]\nname = "b"\n[[edge]]\nfrom = "a"\nto = "b"\n'
    with pytest.raises(ModelFileError, match=r"^m.toml:5: edge 1: missing 'weight'$"):
        loads(text, "m.toml")


@pytest.mark.parametrize("line, match", [
    ("n_edges = -1", r"^m.toml:1: n_edges must be a count \(an integer >= 0\), got -1"),
    ('n_edges = "1"', r"^m.toml:1: n_edges must be a count"),
    ("n_units = true", r"^m.toml:1: n_units must be a count"),
    ("n_units = 3", r"^m.toml:1: n_units = 3 but the file has 2 \[\[unit\]\] tables: is it cut short\?"),
])
def test_bad_counts_name_their_line(line, match):
    text = f'{line}\n[[unit]]\nname = "a"\nbias = 0.0\n[[unit]]\nname = "b"\nbias = 0.0\n' \
           '[[edge]]\nfrom = "a"\nto = "b"\nweight = 1.0\n'
    with pytest.raises(ModelFileError, match=match):
        loads(text, "m.toml")


def test_a_file_with_counts_needs_every_bias_and_a_final_newline():
    head = 'n_units = 1\nn_edges = 0\n[[unit]]\nname = "a"\n'
    with pytest.raises(ModelFileError, match=r"^m.toml:3: unit 1: missing 'bias'"):
        loads(head, "m.toml")
    with pytest.raises(ModelFileError, match=r"^m.toml:5: .*does not end with a newline"):
        loads(head + "bias = 2", "m.toml")
    assert loads(head + "bias = 2\n").unit("a").bias == 2.0


def test_a_hand_written_file_keeps_its_defaults():
    """No counts: a unit's bias still defaults to 0 (documented), an edge's weight never does."""
    net = loads('[[unit]]\nname = "a"\n[[unit]]\nname = "b"\n[[edge]]\nfrom = "a"\nto = "b"\nweight = 1.0')
    assert net.unit("a").bias == 0.0 and net.edges == [Edge("a", "b", 1.0)]
