"""Network validation: every error names its culprit."""

import math

import pytest

from neurosim import Edge, EvidenceError, Network, Unit, ValidationError


def net(units=("a", "b", "c"), edges=()):
    return Network([Unit(u) if isinstance(u, str) else u for u in units], edges)


@pytest.mark.parametrize("units, edges, match", [
    (("a", "b", "a"), (), r"duplicate unit 'a' \(units 1 and 3\)"),
    (("a", "2b"), (), r"unit 2: bad name '2b'"),
    (("a",), (Edge("a", "zed", 1.0),), r"edge a -> zed: unknown unit 'zed'"),
    (("a",), (Edge("a", "a", 1.0),), r"edge a -> a: self-loop"),
    (("a", "b"), (Edge("a", "b", 1.0), Edge("b", "a", 2.0)),
     r"edge b -> a: duplicate connection between 'b' and 'a'"),
    (("a", "b"), (Edge("a", "b", math.nan),), r"edge a -> b: weight is nan, must be finite"),
    (("a", "b"), (Edge("a", "b", math.inf, "symmetric"),), r"edge a -> b: weight is inf"),
    ((Unit("a", bias=-math.inf),), (), r"unit 'a': bias is -inf, must be finite"),
    ((Unit("a", bias="high"),), (), r"unit 'a': bias must be a number, got 'high'"),
    ((Unit("a", role="observed"),), (), r"unit 'a': role 'observed' is not one of visible, hidden"),
    ((Unit("a", layer=1.5),), (), r"unit 'a': layer must be an integer"),
    (("a", "b"), (Edge("a", "b", 1.0, "undirected"),), r"edge a -> b: kind 'undirected'"),
    (("a", "b"), (Edge("a", "b", 1.0, delay=-1.0),), r"edge a -> b: negative delay -1.0"),
    (("a", "b"), (Edge("a", "b", 1.0, weight_reverse=2.0),),
     r"edge a -> b: weight_reverse is only for symmetric edges"),
    (("a", "b", "c"), (Edge("a", "b", 1.0), Edge("b", "c", 1.0), Edge("c", "a", 1.0)),
     r"directed cycle: a -> b -> c -> a"),
    (("a", "b", "c"), (Edge("a", "b", 1.0), Edge("b", "c", 1.0, "symmetric")),
     r"unit 'b' has directed parents \(a\) and symmetric edges \(c\)"),
])
def test_validation_errors_name_the_culprit(units, edges, match):
    with pytest.raises(ValidationError, match=match):
        net(units, edges)


def test_cycle_error_points_at_an_edge_of_the_cycle():
    with pytest.raises(ValidationError) as info:
        net(("a", "b", "c"), (Edge("c", "a", 1.0), Edge("a", "b", 1.0), Edge("b", "c", 1.0)))
    assert info.value.edge_index in (0, 1, 2)


@pytest.mark.parametrize("evidence, match", [
    ({"zed": 1}, r"evidence on unknown unit 'zed'"),
    ({"a": 2}, r"evidence a=2: a unit's state must be 0 or 1"),
    ({"a": True}, r"evidence a=True"),
    ({"a": 0.5}, r"evidence a=0.5"),
])
def test_evidence_errors(evidence, match):
    with pytest.raises(EvidenceError, match=match):
        net().evidence_indices(evidence)


def test_symmetric_edge_is_two_synapses_that_start_equal():
    n = net(edges=(Edge("a", "b", 0.5, "symmetric"),))
    assert n.weight("a", "b") == n.weight("b", "a") == 0.5
    n.set_weight("a", "b", 0.7)
    assert (n.weight("a", "b"), n.weight("b", "a")) == (0.7, 0.5)
    assert n.edges[0] == Edge("a", "b", 0.7, "symmetric", 0.0, 0.5)


def test_structure_queries():
    n = net(("a", "b", "c", "d"), (Edge("a", "c", 1.0), Edge("b", "c", -1.0), Edge("c", "d", 2.0)))
    assert n.parents("c") == ["a", "b"] and n.children("c") == ["d"]
    assert n.generations() == [["a", "b"], ["c"], ["d"]]
    assert n.moral_graph().has_edge("a", "b")  # co-parents are married
    arr = n.to_arrays()
    assert arr.weights[0, 2] == 1.0 and arr.directed[0, 2] and not arr.symmetric.any()


def test_default_layers_are_independent_sets_of_the_moral_graph():
    n = net(("a", "b", "c", "d"), (Edge("a", "c", 1.0), Edge("b", "c", -1.0), Edge("c", "d", 2.0)))
    moral = n.moral_graph()
    groups = n.layers()
    assert sorted(u for g in groups for u in g) == ["a", "b", "c", "d"]
    for g in groups:
        assert not any(moral.has_edge(x, y) for x in g for y in g if x != y)


def test_given_layers_are_used_top_first():
    units = [Unit("v", layer=0), Unit("h", layer=1)]
    assert Network(units, [Edge("h", "v", 1.0)]).layers() == [["h"], ["v"]]


def test_unknown_synapse_and_bad_new_weight():
    n = net(edges=(Edge("a", "b", 1.0),))
    with pytest.raises(ValidationError, match="no synapse b -> a"):
        n.weight("b", "a")
    with pytest.raises(ValidationError, match="synapse a -> b: weight is nan"):
        n.set_weight("a", "b", math.nan)
