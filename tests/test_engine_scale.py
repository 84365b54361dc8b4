"""The event engine wired from projections: exact on nets built from populations, every
message counted (and none on a masked-out synapse), input vectors equal to eq. 1's
sums, and the MNIST DBN's shape built and swept."""

import time
from contextlib import nullcontext
import tracemalloc
from collections import Counter

import numpy as np
import pytest

from neurosim import Network, posterior
from neurosim.errors import ValidationError
from neurosim.engine import Simulator, Trace
from neurosim.engine.schedules import _dependent_pair
from neurosim.population import Population, Projection
from helpers import empirical_kl, kl_bound, load_demo, random_belief_net, random_boltzmann

scale = load_demo("network_scale", "benchmarks")
bench = load_demo("event_engine_scale", "benchmarks")
N, BURN_IN = 4000, 20


def _pop(rng, name, n, layer, role="hidden"):
    return Population(name, tuple(f"{name}{i}" for i in range(n)), rng.normal(0, 1, n), role, layer)


def lateral_rbm(seed: int) -> Network:
    """3 visible, 3 hidden; v <-> h with two synapses masked out, and a masked symmetric
    self-projection h <-> h (lateral connections, one pair masked out)."""
    rng = np.random.default_rng(seed)
    mask = np.ones((3, 3), dtype=bool)
    mask[0, 1] = mask[2, 0] = False
    lateral = np.triu(np.ones((3, 3), dtype=bool), 1)
    lateral[0, 2] = False
    return Network.from_populations(
        [_pop(rng, "v", 3, 0, "visible"), _pop(rng, "h", 3, 1)],
        [Projection("v<->h", "v", "h", rng.normal(0, 1, (3, 3)), "symmetric", mask),
         Projection("h<->h", "h", "h", rng.normal(0, 1, (3, 3)), "symmetric", lateral)])


def masked_dbn(seed: int, delay: float = 0.0, drift: bool = False) -> Network:
    """A chain graph: an RBM top <-> h (masked; its reverse block drifted apart if
    ``drift``) over a directed masked layer h -> v with message ``delay``."""
    rng = np.random.default_rng(seed)
    sym = np.ones((3, 2), dtype=bool)
    sym[1, 0] = False
    down = np.ones((2, 3), dtype=bool)
    down[0, 2] = False
    w = rng.normal(0, 1, (3, 2))
    return Network.from_populations(
        [_pop(rng, "top", 3, 2), _pop(rng, "h", 2, 1), _pop(rng, "v", 3, 0, "visible")],
        [Projection("top<->h", "top", "h", w, "symmetric", sym, w + 0.5 if drift else None),
         Projection("h->v", "h", "v", rng.normal(0, 1, (2, 3)), "directed", down, delay=delay)])


def _kl_check(net, schedule, evidence, seed):
    exact = posterior(net, evidence)
    sim = Simulator(net, np.random.default_rng(seed), schedule=schedule, evidence=evidence)
    samples = sim.sample(N, burn_in=BURN_IN)[:, [net.index(u) for u in exact.units]]
    kl, bound = empirical_kl(samples, exact), kl_bound(2 ** len(exact.units), N)
    assert kl < bound, f"KL {kl:.4f} >= bound {bound:.4f} ({schedule}, evidence {evidence})"


@pytest.mark.parametrize("schedule", ["async", "sweep"])
def test_lateral_rbm_from_populations_matches_exact(schedule):
    _kl_check(lateral_rbm(0), schedule, None, 1)


@pytest.mark.parametrize("evidence", [None, {"v0": 1, "v2": 0}])
def test_masked_chain_graph_matches_exact(evidence):
    """Symmetric top, directed bottom: Neal's child terms read per projection."""
    _kl_check(masked_dbn(2), "sweep", evidence, 3)


def test_small_dbn_shape_matches_exact():
    _kl_check(scale.dbn_network(np.random.default_rng(4), (2, 2, 2, 2), 1), "sweep", None, 5)


def _sent(net):
    """Synapses out of each unit (the per-synapse view of the Network) and its parents."""
    out = Counter(pre for pre, _, _ in net.synapses())
    return {u: out[u] for u in net.units}, {u: len(net.parents(u)) for u in net.units}


@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
def test_messages_counted_equal_synapses_crossed(schedule):
    """Each binary send of unit u crosses its out-synapses (and, in Gibbs, reaches its
    parents); each analog send reaches its parents. Masked-out synapses carry none."""
    net = masked_dbn(6, delay=0.5, drift=True)
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(7), schedule=schedule, on_message=trace.on_message)
    with pytest.warns(UserWarning) if schedule == "layer" else nullcontext():
        sim.run(30)
    out, parents = _sent(net)
    names = net.units
    binary = sum(out[names[u]] + parents[names[u]] for _, u, kind in trace.messages if kind == "binary")
    analog = sum(parents[names[u]] for _, u, kind in trace.messages if kind == "analog")
    assert sim.ledger.binary == binary > 0 and sim.ledger.analog == analog > 0
    assert sum(out.values()) == 2 * 5 + 5  # 5 symmetric connections both ways, 5 directed


def test_input_vectors_equal_eq1_with_masks_and_a_drifted_reverse_block():
    """After a run without delays, every unit's running input is sum_i w_ij s_i over the
    dense arrays (reverse block included)."""
    net = masked_dbn(8, drift=True)
    sim = Simulator(net, np.random.default_rng(9), schedule="async")
    sim.run(25)
    W = net.to_arrays().weights
    got = np.array([n.input for n in sim.neurons])
    np.testing.assert_allclose(got, sim.state @ W, rtol=0, atol=1e-12)


def test_dbn_shape_builds_and_sweeps():
    """The MNIST DBN's shape: built in seconds with memory bounded by its weights (no
    per-synapse objects), the top RBM swept with everything below clamped, messages
    counted per population."""
    net = scale.dbn_network(np.random.default_rng(0))
    clamp = bench.evidence(net, np.random.default_rng(1))
    tracemalloc.start()
    t0 = time.perf_counter()
    sim = Simulator(net, np.random.default_rng(2), schedule="sweep", evidence=clamp)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 20 and peak < 3 * scale.weight_bytes(net)
    # per binary send: out synapses, plus the parents (Gibbs mode) of a belief-net layer
    per_send = {"v": 0 + 500, "h1": 784 + 500, "h2": 500 + 2000, "lab": 2000, "top": 500 + 10}
    pop_of = {u: p.name for p in net.populations for u in p.units}
    names = net.units
    before = sim.ledger.binary  # the initial states, sent at time 0
    assert before == sum(per_send[pop_of[u]] for u, s in zip(names, sim.state.tolist()) if s)
    trace = Trace()
    sim.on_message = trace.on_message
    sim.run(1)
    assert sim.ledger.updates == 2010
    sent = [pop_of[names[u]] for _, u, kind in trace.messages if kind == "binary"]
    assert set(sent) <= {"lab", "top"} and len(sent) > 500
    assert sim.ledger.binary - before == sum(per_send[p] for p in sent)
    s = sim.state.astype(float)
    tops = [net.index(u) for u in net.population("top").units]
    h2 = s[[net.index(u) for u in net.population("h2").units]]
    lab = s[[net.index(u) for u in net.population("lab").units]]
    top_input = np.array([sim.neurons[i].input for i in tops])
    np.testing.assert_allclose(top_input, h2 @ net.projection("h2<->top").weights
                               + lab @ net.projection("lab<->top").weights, rtol=0, atol=1e-10)


@pytest.mark.parametrize("make", [
    lambda s: lateral_rbm(s), lambda s: masked_dbn(s),
    lambda s: random_belief_net(np.random.default_rng(s), (3, 3, 4), density=0.4),
    lambda s: random_boltzmann(np.random.default_rng(s), 4, 4, density=0.3),
    lambda s: scale.dbn_network(np.random.default_rng(s), (3, 2, 2, 3), 2)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dependent_pairs_from_blocks_equal_the_moral_graphs(make, seed):
    """The layer schedule's check, read from the links' blocks, finds the same first pair
    as a scan of ``net.moral_graph()``, on layers and on random groups of units."""
    net = make(seed)
    sim = Simulator(net, np.random.default_rng(seed))
    moral, rng = net.moral_graph(), np.random.default_rng(seed)
    groups = net.layers() + [list(rng.permutation(net.units)[:k]) for k in (2, 4, 6)]
    for names in groups:
        group = [sim.neurons[net.index(u)] for u in names]
        expected = next(((a, b) for i, a in enumerate(names) for b in names[i + 1:] if moral.has_edge(a, b)), None)
        assert _dependent_pair(sim, group) == expected


def test_dbn_shape_recognition_pathway_and_one_synapse():
    """The recognition pathway of the DBN's shape is built from its projections; reading
    and setting one synapse builds no per-synapse view, and the running input follows."""
    net = scale.dbn_network(np.random.default_rng(3))
    sim = Simulator(net, np.random.default_rng(4), schedule="ancestral", pathway="recognition",
                    evidence={u: 1 for u in net.population("v").units[:300]})
    sim.run(2)
    assert sim.ledger.updates == 2 * (3794 - 300)
    assert sim.weight("v_0", "h1_3") == net.weight("v_0", "h1_3", recognition=True)
    h = sim.neurons[net.index("h1_3")]
    before = h.input
    sim.set_weight("v_0", "h1_3", 0.5)
    assert h.input == pytest.approx(before + 0.5 - net.weight("v_0", "h1_3", recognition=True), abs=1e-12)
    assert sim._slots is None
    with pytest.raises(ValidationError, match="no synapse h1_3 -> v_0 in the recognition pathway"):
        sim.weight("h1_3", "v_0")
