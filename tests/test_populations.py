"""Populations and projections: the Network's storage, its checks, its per-unit views and
the populations model-file format (TOML structure + .npz arrays)."""

import hashlib

import networkx as nx
import numpy as np
import pytest

from helpers import linear_net, random_belief_net, random_boltzmann, random_dbn, run_cli
from neurosim import Edge, ModelFileError, Network, Unit, ValidationError, load, save
from neurosim.compiled import Chains, compile
from neurosim.engine import Simulator
from neurosim.modelfile import MAX_UNIT_TABLES
from neurosim.population import Population, Projection


def pop(name, n, role="hidden", layer=None, **kw):
    return Population(name, tuple(f"{name}_{i}" for i in range(n)), np.zeros(n), role, layer, **kw)


def proj(name, pre, post, shape, kind="directed", **kw):
    return Projection(name, pre, post, np.full(shape, 0.5), kind, **kw)


def build(pops, projs, **kw):
    return Network.from_populations(pops, projs, **kw)


A, B, C = pop("a", 2), pop("b", 3), pop("c", 2)
NO_DIAGONAL = ~np.eye(2, dtype=bool)


@pytest.mark.parametrize("pops, projs, match", [
    ([pop("h1", 500), pop("v", 784, "visible")], [proj("h1->v", "h1", "v", (500, 700))],
     r"^projection 'h1->v' has a weight block of shape \(500, 700\); populations 'h1' \(500 units\) and "
     r"'v' \(784 units\) need \(500, 784\)$"),
    ([A], [proj("p", "a", "zz", (2, 2))], r"projection 'p': unknown post population 'zz'"),
    ([A, pop("a", 1)], [], r"duplicate population 'a'"),
    ([A, Population("x", ("a_1",), np.zeros(1))], [], r"duplicate unit 'a_1' \(in populations 'a' and 'x'\)"),
    ([Population("a", ("x", "2y"), np.zeros(2))], [], r"population 'a': unit 2: bad name '2y'"),
    ([Population("a", ("x",), np.zeros(2))], [], r"population 'a' has a bias of shape \(2,\); its 1 unit need"),
    ([Population("a", ("x", "y"), np.array([0.0, np.nan]))], [], r"population 'a': unit 'y': bias is nan"),
    ([Population("a", ("x",), np.zeros(1), role="seen")], [], r"population 'a': role 'seen' is not one of"),
    ([Population("a", ("x",), np.zeros(1), activation="relu")], [], r"activation 'relu' is not one of logistic"),
    ([A, B], [Projection("p", "a", "b", np.array([[0, 1, 2], [3, np.inf, 5.0]]))],
     r"projection 'p': synapse a_1 -> b_1: weight is inf, must be finite"),
    ([A, B], [proj("p", "a", "b", (2, 3), "sideways")], r"projection 'p': kind 'sideways' is not one of"),
    ([A, B], [proj("p", "a", "b", (2, 3), delay=-0.5)], r"projection 'p': delay must be a finite number >= 0"),
    ([A, B], [proj("p", "a", "b", (2, 3), reverse=np.zeros((2, 3)))], r"reverse block is only for symmetric"),
    ([A, B], [proj("p", "a", "b", (2, 3), mask=np.ones((2, 3)))], r"projection 'p' has a mask of dtype float64"),
    ([A], [proj("p", "a", "a", (2, 2))], r"projection 'p': synapse a_0 -> a_0: self-loop"),
    ([A, B], [proj("p", "a", "b", (2, 3)), proj("q", "b", "a", (3, 2), mask=np.eye(3, 2, dtype=bool))],
     r"projections 'p' and 'q': duplicate connection between 'a_0' and 'b_0'"),
    ([A, B], [proj("p", "a", "b", (2, 3), "symmetric"), proj("q", "a", "b", (2, 3), delay=1.0)],
     r"projections 'p' and 'q': duplicate connection between 'a_0' and 'b_0'"),
    ([A], [proj("p", "a", "a", (2, 2), "symmetric", mask=NO_DIAGONAL)],
     r"projection 'p': duplicate connection between 'a_0' and 'a_1'"),
    ([A, B, C], [proj("p", "a", "b", (2, 3)), proj("q", "b", "c", (3, 2)), proj("r", "c", "a", (2, 2))],
     r"^directed cycle: a_0 -> b_0 -> c_0 -> a_0 \(projection 'r'\)$"),
    ([A], [proj("p", "a", "a", (2, 2), "recognition", mask=np.array([[False, True], [False, False]])),
           proj("q", "a", "a", (2, 2), "recognition", mask=np.array([[False, False], [True, False]]))],
     r"duplicate connection between 'a_0' and 'a_1'"),
    ([A, B, C], [proj("p", "a", "b", (2, 3), "recognition"), proj("q", "b", "c", (3, 2), "recognition"),
                 proj("r", "c", "a", (2, 2), "recognition")], r"^recognition cycle: a_0 -> b_0 -> c_0 -> a_0"),
    ([A, B, C], [proj("p", "a", "b", (2, 3)), proj("q", "b", "c", (3, 2), "symmetric")],
     r"unit 'b_0' has directed parents \(a_0, a_1\) and symmetric edges \(c_0, c_1\)"),
    ([Population("a", ("x",), np.zeros(1), activation="Linear")], [],
     r"^population 'a': activation 'Linear' is not one of logistic, softmax, linear$"),
    ([pop("a", 2, activation="linear"), pop("b", 3, activation="linear")], [proj("p", "a", "b", (2, 3), "symmetric")],
     r"^projection 'p' is symmetric between linear populations 'a' and 'b': a symmetric projection joins linear "
     r"units to binary ones only$"),
])
def test_from_populations_errors_name_population_projection_and_unit(pops, projs, match):
    with pytest.raises(ValidationError, match=match):
        build(pops, projs)


def test_a_cycle_inside_a_masked_self_projection_is_found_unit_by_unit():
    chain = np.zeros((3, 3), dtype=bool)
    chain[0, 1] = chain[1, 2] = True
    assert build([pop("a", 3)], [proj("p", "a", "a", (3, 3), mask=chain)]).generations() == \
        [["a_0"], ["a_1"], ["a_2"]]
    chain[2, 0] = True
    with pytest.raises(ValidationError, match=r"directed cycle: a_0 -> a_1 -> a_2 -> a_0 \(projection 'p'\)"):
        build([pop("a", 3)], [proj("p", "a", "a", (3, 3), mask=chain)])


def test_a_cycle_of_dense_blocks_too_large_to_list_is_named_by_projection(monkeypatch):
    import neurosim.network as network
    monkeypatch.setattr(network, "MAX_CYCLE_CHECK", 5)
    with pytest.raises(ValidationError, match=r"directed cycle between populations through projections 'p', 'q', 'r'"):
        build([A, B, C], [proj("p", "a", "b", (2, 3)), proj("q", "b", "c", (3, 2)), proj("r", "c", "a", (2, 2))])
    with pytest.raises(ValidationError, match=r"form a directed cycle between populations with 14 masked synapses"):
        build([A, B, C], [proj("p", "a", "b", (2, 3)), proj("q", "b", "c", (3, 2)),
                          proj("r", "c", "a", (2, 2), mask=NO_DIAGONAL)])


def test_units_of_one_layer_and_role_become_one_population_and_edges_keep_their_order():
    units = [Unit("a", 0.1), Unit("b", 0.2), Unit("v1", role="visible"), Unit("v2", role="visible"), Unit("c")]
    edges = [Edge("b", "v2", 2.0), Edge("a", "v1", 1.0), Edge("c", "v1", 3.0), Edge("a", "v2", -1.0, delay=0.5)]
    net = Network(units, edges)
    assert [(p.name, p.units) for p in net.populations] == [
        ("hidden", ("a", "b")), ("visible", ("v1", "v2")), ("hidden_2", ("c",))]
    assert [(q.name, q.pre, q.post, q.delay) for q in net.projections] == [
        ("hidden->visible", "hidden", "visible", 0.0), ("hidden_2->visible", "hidden_2", "visible", 0.0),
        ("hidden->visible #2", "hidden", "visible", 0.5)]
    assert net.projection("hidden->visible").mask.tolist() == [[True, False], [False, True]]
    assert net.edges == edges
    assert net.parents("v1") == ["a", "c"] and net.children("a") == ["v1", "v2"]
    again = Network.from_populations(net.populations, net.projections, order=net.edge_order())
    assert again == net and again.edges == edges


@pytest.mark.parametrize("make", [
    lambda rng: random_boltzmann(rng, 4, 3),
    lambda rng: random_belief_net(rng, (2, 3, 4)),
    lambda rng: random_dbn(rng, (2, 3), (3, 4)),
])
def test_views_derived_from_the_arrays_agree_with_the_derived_graph(make):
    net = make(np.random.default_rng(3))
    arr = net.to_arrays()
    graph = net.graph
    assert np.array_equal(arr.weights, nx.to_numpy_array(graph, nodelist=net.units, weight="weight"))
    assert list(graph.edges(data=True)) == list(net.synapses())
    for u in net.units:
        assert net.parents(u) == [p for p in graph.predecessors(u) if graph[p][u]["kind"] == "directed"]
        assert net.neighbours(u) == [v for v in graph.successors(u) if graph[u][v]["kind"] == "symmetric"]
    for a, b, data in net.synapses():
        assert net.weight(a, b) == data["weight"]
    directed = nx.subgraph_view(graph, filter_edge=lambda u, v: graph[u][v]["kind"] == "directed")
    assert net.generations() == [sorted(g, key=net.index) for g in nx.topological_generations(directed)]
    assert net.with_arrays(arr.weights, arr.bias) == net
    same = Network.from_populations(net.populations, net.projections, order=net.edge_order(), name=net.name)
    assert same == net and same.edges == net.edges and net.unit_list() == same.unit_list()


def test_setters_write_the_arrays_and_refresh_the_derived_graph():
    net = random_boltzmann(np.random.default_rng(0), 3, 2, density=1.0)
    assert net.graph["h0"]["v0"]["weight"] == net.weight("v0", "h0")
    net.set_weight("h0", "v0", 7.5)  # the reverse synapse of a symmetric edge: a reverse block appears
    assert net.weight("h0", "v0") == 7.5 != net.weight("v0", "h0")
    assert net.graph["h0"]["v0"]["weight"] == 7.5 and net.to_arrays().weights[3, 0] == 7.5
    assert next(e for e in net.edges if (e.source, e.target) == ("v0", "h0")).weight_reverse == 7.5
    net.set_bias("h1", -2.0)
    net.set_recognition_bias("v1", 0.25)
    assert net.bias("h1") == net.graph.nodes["h1"]["bias"] == -2.0
    assert [u.recognition_bias for u in net.unit_list()] == [None, 0.25, None, None, None]
    with pytest.raises(ValidationError, match=r"no synapse v0 -> nowhere"):
        net.set_weight("v0", "nowhere", 1.0)


def helmholtz_like():
    """Recognition biases on some units only, a mask, a drifted symmetric pair, a delay
    and edges out of projection order: everything the .npz must carry."""
    units = [Unit("t", 0.5, layer=2), Unit("u", -0.5, layer=2), Unit("h0", 0.1, layer=1, recognition_bias=0.3),
             Unit("h1", 0.2, layer=1), Unit("v0", role="visible", layer=0), Unit("v1", role="visible", layer=0)]
    edges = [Edge("h0", "v0", 1.5), Edge("t", "h0", 0.25, "symmetric", weight_reverse=-0.125),
             Edge("v0", "h0", 0.75, "recognition"), Edge("h1", "v1", -2.0, delay=0.5), Edge("u", "h1", 1.0, "symmetric"),
             Edge("h1", "v0", 0.5)]
    return Network(units, edges, name="mixed", description="every feature")


@pytest.mark.parametrize("make", [helmholtz_like, lambda: random_dbn(np.random.default_rng(1), (3, 4), (5, 6))])
def test_populations_format_round_trips_bit_for_bit(tmp_path, make):
    net = make()
    save(net, tmp_path / "m.toml", format="populations")
    again = load(tmp_path / "m.toml")
    assert again == net and again.edges == net.edges and again.unit_list() == net.unit_list()
    for a, b in zip(net.projections, again.projections):
        assert a.weights.tobytes() == b.weights.tobytes() and (a.reverse is None) == (b.reverse is None)
    text = (tmp_path / "m.toml").read_text()
    digest = hashlib.sha256((tmp_path / "m.npz").read_bytes()).hexdigest()
    assert f'weights = "m.npz"\nsha256 = "{digest}"' in text and "[[unit]]" not in text


def test_save_picks_the_populations_format_for_large_nets_only(tmp_path):
    small = random_boltzmann(np.random.default_rng(0), 3, 2)
    save(small, tmp_path / "small.toml")
    assert "[[unit]]" in (tmp_path / "small.toml").read_text() and not (tmp_path / "small.npz").exists()
    pops = [pop("v", 70, "visible", 0), pop("h", 60, "hidden", 1)]
    large = build(pops, [proj("v<->h", "v", "h", (70, 60), "symmetric")])
    assert large.n_units + large.n_edges > MAX_UNIT_TABLES
    save(large, tmp_path / "large.toml")
    text = (tmp_path / "large.toml").read_text()
    assert 'units = "v_"' in text and "[[unit]]" not in text and load(tmp_path / "large.toml") == large


def test_linear_populations_round_trip_in_the_populations_format_only(tmp_path):
    """A linear population keeps its activation through the TOML + .npz files, which
    ``save`` picks for it; the unit-by-unit format refuses it, naming the population."""
    net = linear_net(np.random.default_rng(3))
    save(net, tmp_path / "m.toml")
    again = load(tmp_path / "m.toml")
    assert again == net and [p.activation for p in again.populations] == ["logistic", "linear"]
    assert 'activation = "linear"' in (tmp_path / "m.toml").read_text()
    with pytest.raises(ModelFileError, match=r"^network 'linear': population 'z' is linear, which the "
                                             r"unit-by-unit format cannot express"):
        save(net, tmp_path / "u.toml", format="units")


@pytest.fixture
def saved(tmp_path):
    net = random_dbn(np.random.default_rng(2), (2, 3), (4,))
    save(net, tmp_path / "m.toml", format="populations")
    return tmp_path / "m.toml", tmp_path / "m.npz"


def _rewrite_npz(npz, change):
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(npz, **arrays)


def _rehash(toml, npz):
    text = toml.read_text()
    old = text.split('sha256 = "')[1].split('"')[0]
    toml.write_text(text.replace(old, hashlib.sha256(npz.read_bytes()).hexdigest()))


def test_a_missing_truncated_or_corrupt_npz_is_refused_naming_it(saved):
    toml, npz = saved
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=rf"^{toml}:3: {npz}: not a readable model's weights \(.npz\): truncated"):
        load(toml)
    npz.write_bytes(data[:100] + bytes(len(data) - 100))
    with pytest.raises(ModelFileError, match=rf"^{toml}:3: {npz}: not a readable model's weights"):
        load(toml)
    npz.unlink()
    with pytest.raises(ModelFileError, match=rf"^{toml}:3: {npz}: no such file"):
        load(toml)


def test_a_changed_npz_fails_its_hash(saved):
    toml, npz = saved
    _rewrite_npz(npz, lambda a: a.update({"bias/hidden2": a["bias/hidden2"] + 1}))
    with pytest.raises(ModelFileError, match=rf"^{toml}:4: {npz}: SHA-256 is [0-9a-f]{{64}} but this file records"):
        load(toml)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.update({"weights/hidden2<->hidden1": np.zeros((2, 4))}),
     r"projection 'hidden2<->hidden1' has a weight block of shape \(2, 4\); populations 'hidden2' "
     r"\(2 units\) and 'hidden1' \(3 units\) need \(2, 3\) \(arrays in .*m.npz\)"),
    (lambda a: a.pop("weights/hidden1->visible0"), r"m.npz: no array 'weights/hidden1->visible0' for "
                                                   r"projection 'hidden1->visible0'"),
    (lambda a: a.pop("bias/visible0"), r"no array 'bias/visible0' for population 'visible0'"),
    (lambda a: a.update({"weights/extra": np.zeros(1)}), r"array 'weights/extra' belongs to no population"),
    (lambda a: a.update({"bias/hidden1": np.zeros(3, dtype=np.float32)}),
     r"population 'hidden1': array 'bias/hidden1' has dtype float32, needs float64"),
    (lambda a: a.update({"bias/hidden1": np.array([0.0, np.nan, 1.0])}),
     r"population 'hidden1': unit 'l1_1': bias is nan, must be finite"),
])
def test_arrays_of_the_wrong_shape_dtype_or_name_are_refused_naming_the_projection(saved, change, match):
    toml, npz = saved
    _rewrite_npz(npz, change)
    _rehash(toml, npz)
    with pytest.raises(ModelFileError, match=rf"^{toml}:\d+: .*{match}"):
        load(toml)


def test_shape_errors_point_at_the_projection_table(saved):
    toml, npz = saved
    _rewrite_npz(npz, lambda a: a.update({"weights/hidden1->visible0": np.zeros((3, 3))}))
    _rehash(toml, npz)
    line = toml.read_text().splitlines().index('name = "hidden1->visible0"')  # 0-based: the [[projection]] line
    with pytest.raises(ModelFileError, match=rf"^{toml}:{line}: projection 'hidden1->visible0'"):
        load(toml)


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("n_projections = 2", "n_projections = 3"),
     r"n_projections = 3 but the file has 2 \[\[projection\]\] tables"),
    (lambda t: t.rstrip("\n").rsplit("\n", 1)[0], r"projection 2: missing 'kind'"),
    (lambda t: t.replace('units = "l0_"', 'units = ["a", "b", "c"]'), r"population 'hidden2': size 2 needs"),
    (lambda t: t.replace("size = 2", "size = 0", 1), r"population 'hidden2': size 0 needs"),
    (lambda t: t + "colour = 1\n", r"unknown key 'colour'|Cannot declare"),
])
def test_a_damaged_structure_file_is_refused_with_its_line(saved, edit, match):
    toml, _ = saved
    toml.write_text(edit(toml.read_text()))
    with pytest.raises(ModelFileError, match=rf"^{toml}:(\d+|\?): .*({match})"):
        load(toml)


def test_samplers_give_the_same_numbers_on_both_constructions():
    net = random_dbn(np.random.default_rng(4), (2, 3), (3,))
    twin = Network.from_populations(net.populations, net.projections, order=net.edge_order())
    for a, b in [(net, twin)]:
        ca, cb = Chains(compile(a), np.random.default_rng(0), 50), Chains(compile(b), np.random.default_rng(0), 50)
        ca.run(5)
        cb.run(5)
        assert np.array_equal(ca.state, cb.state)
        sa = Simulator(a, np.random.default_rng(0)).sample(20, burn_in=2)
        assert np.array_equal(sa, Simulator(b, np.random.default_rng(0)).sample(20, burn_in=2))


def test_compiled_to_network_writes_every_block_back():
    net = helmholtz_like()
    cn = compile(net, dtype=np.float64)
    assert cn.to_network() == net
    cn.set_weights(W=cn.W * 2)
    doubled = cn.to_network()
    assert doubled.weight("t", "h0") == 0.5 and doubled.weight("h0", "t") == -0.25
    assert doubled.weight("v0", "h0", recognition=True) == 0.75


def test_show_summarises_a_large_model_by_population(tmp_path, capsys):
    pops = [pop("v", 70, "visible", 0), pop("h", 60, "hidden", 1)]
    save(build(pops, [proj("v<->h", "v", "h", (70, 60), "symmetric")], name="big"), tmp_path / "big.toml")
    code, out, _ = run_cli(capsys, "show", str(tmp_path / "big.toml"))
    assert code == 0 and len(out.splitlines()) == 9
    assert "  v<->h           v -> h          symmetric        4200          0.5       0.5       0.5" in out


def test_delayed_edge_finds_the_first_delayed_edge_without_building_edges(monkeypatch):
    net = Network([Unit("a"), Unit("b"), Unit("c")], [Edge("a", "b", 1.0), Edge("b", "c", 2.0, delay=0.5)])
    assert net.delayed_edge() == Edge("b", "c", 2.0, delay=0.5)
    undelayed = Network([Unit("a"), Unit("b")], [Edge("a", "b", 1.0)])
    empty = Network.from_populations([Population("a", ("a0",), np.zeros(1)), Population("b", ("b0",), np.zeros(1))],
                                     [Projection("q", "a", "b", np.zeros((1, 1)), mask=np.zeros((1, 1), bool),
                                                 delay=0.5)])
    assert empty.delayed_edge() is None  # a delayed projection without synapses has no delayed edge
    monkeypatch.setattr(Network, "edges", property(lambda self: pytest.fail("built the edges")))
    assert undelayed.delayed_edge() is None


# -- set_block, set_biases and the event engine's write_back -----------------------------
def _copy(net):
    return Network.from_populations(net.populations, net.projections, order=net.edge_order(),
                                    name=net.name, description=net.description)


def test_set_block_writes_a_projection_bit_for_bit_and_refreshes_the_derived_graph(tmp_path):
    net = helmholtz_like()
    rng = np.random.default_rng(0)
    assert net.graph["t"]["h0"]["weight"] == 0.25
    for q in net.projections:
        W = rng.normal(size=q.weights.shape)
        back = rng.normal(size=q.weights.shape) if q.kind == "symmetric" else None
        net.set_block(q.name, W, back)
        present = np.ones(W.shape, dtype=bool) if q.mask is None else q.mask
        stored = net.projection(q.name)
        assert stored.weights.tobytes() == np.where(present, W, 0.0).tobytes()   # the mask drops the rest
        if back is not None:
            assert stored.reverse.tobytes() == np.where(present, back, 0.0).tobytes()
    sym = next(q for q in net.projections if q.kind == "symmetric" and q.pre == "hidden2")
    assert net.graph["t"]["h0"]["weight"] == net.weight("t", "h0") == sym.weights[0, 0]
    save(net, tmp_path / "m.toml", format="populations")
    assert load(tmp_path / "m.toml") == net
    before = _copy(net)
    for q in net.projections:                                    # writing the blocks back is a no-op
        net.set_block(q.name, q.weights.copy(), None if q.reverse is None else q.reverse.copy())
    assert net == before
    net.set_block(sym.name, sym.weights)              # reverse None: equal to the block
    assert sym.reverse is None and net.weight("h0", "t") == net.weight("t", "h0")


def test_set_block_and_set_biases_refuse_naming_population_projection_and_synapse():
    net = random_dbn(np.random.default_rng(1), (3, 4), (5,))
    sym, down = (q.name for q in net.projections)
    cases = [
        (lambda: net.set_block(sym, np.zeros((4, 3))),
         rf"^projection '{sym}' has a weight block of shape \(4, 3\); populations 'hidden2' \(3 units\) and "
         r"'hidden1' \(4 units\) need \(3, 4\)$"),
        (lambda: net.set_block(down, np.where(np.eye(4, 5, 1) > 0, np.nan, 0.0)),
         rf"^projection '{down}': synapse l1_0 -> l2_1: weight is nan, must be finite$"),
        (lambda: net.set_block(sym, np.zeros((3, 4)), np.full((3, 4), np.inf)),
         rf"^projection '{sym}': synapse l0_0 -> l1_0: reverse is inf, must be finite$"),
        (lambda: net.set_block(down, np.zeros((4, 5)), np.zeros((4, 5))),
         rf"^projection '{down}': a reverse block is only for symmetric projections$"),
        (lambda: net.set_block("nowhere", np.zeros((3, 4))), r"^unknown projection 'nowhere'"),
        (lambda: net.set_biases("hidden1", np.zeros(5)),
         r"^population 'hidden1' has a bias of shape \(5,\); its 4 units need \(4,\)$"),
        (lambda: net.set_biases("visible0", [0, 0, np.inf, 0, 0]),
         r"^population 'visible0': unit 'l2_2': bias is inf, must be finite$"),
        (lambda: net.set_biases("nowhere", np.zeros(2)), r"^unknown population 'nowhere'"),
    ]
    before = _copy(net)
    for call, match in cases:
        with pytest.raises(ValidationError, match=match):
            call()
    assert net == before                                         # a refused write changes nothing


def test_set_biases_writes_biases_and_recognition_biases():
    net = helmholtz_like()
    net.set_biases("hidden1", [1.5, -2.5])                     # h0, h1
    net.set_biases("hidden1", [np.nan, 0.75], recognition=True)  # NaN: h0 has none
    assert (net.bias("h0"), net.bias("h1")) == (1.5, -2.5) == (net.graph.nodes["h0"]["bias"], -2.5)
    assert (net.unit("h0").recognition_bias, net.unit("h1").recognition_bias) == (None, 0.75)


def _per_synapse_write_back(sim, net):
    """The write_back of the per-synapse engine (before set_block): the reference."""
    recognition = sim.pathway == "recognition"
    for (pre, post), (neuron, k) in sim.slots.items():
        net.set_weight(pre, post, neuron.in_weight[k], recognition=recognition)
    for n in sim.neurons:
        if not recognition:
            net.set_bias(n.name, n.bias)
        elif n.in_weight:
            net.set_recognition_bias(n.name, n.bias)


@pytest.mark.parametrize("pathway", ["generative", "recognition"])
def test_write_back_copies_blocks_equal_to_the_per_synapse_copy(pathway):
    net = helmholtz_like()
    sim = Simulator(net, np.random.default_rng(0), pathway=pathway)
    rng = np.random.default_rng(1)
    for pre, post, _ in sim.net.synapses():                       # learning moved every synapse and bias
        sim.set_weight(pre, post, float(rng.normal()))
    for n in sim.neurons:
        n.set_bias(float(rng.normal()))
    old, new = _copy(net), _copy(net)
    _per_synapse_write_back(sim, old)
    sim.write_back(new)
    assert new == old and new.edges == old.edges and new.unit_list() == old.unit_list()
    for a, b in zip(new.projections, old.projections):
        back_a, back_b = (a.weights if a.reverse is None else a.reverse), (b.weights if b.reverse is None else b.reverse)
        assert a.weights.tobytes() == b.weights.tobytes() and back_a.tobytes() == back_b.tobytes()
    assert new != net
