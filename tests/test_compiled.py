"""The compiled backend: plans, and samples that match exact enumeration and the event engine.

Each sample comes from its own chain after a burn-in, so samples are independent and
``kl_bound`` needs no allowance for autocorrelation (``inflation=1``); the burn-in is
long enough that the remaining bias is far below the bound (the slow test checks
that halving it changes nothing measurable).
"""

import numpy as np
import pytest

from neurosim import Edge, Network, Unit, load, posterior
from neurosim.compiled import Chains, compile
from neurosim.engine import Simulator
from neurosim.errors import EvidenceError, ParameterError, ValidationError
from neurosim.messages import Ledger
from helpers import empirical_kl, kl_bound, linear_net, random_belief_net, random_boltzmann, random_dbn

CHAINS = 20000
BURN_IN = 40


def rbm(rng, n_visible=4, n_hidden=3):
    v = [Unit(f"v{i}", float(rng.normal()), "visible", layer=0) for i in range(n_visible)]
    h = [Unit(f"h{j}", float(rng.normal()), "hidden", layer=1) for j in range(n_hidden)]
    edges = [Edge(a.name, b.name, float(rng.normal()), "symmetric") for a in v for b in h]
    return Network(v + h, edges, name="rbm")


NETS = {
    "bm": lambda s: random_boltzmann(np.random.default_rng(s), 3, 4),
    "rbm": lambda s: rbm(np.random.default_rng(s)),
    "sbn": lambda s: random_belief_net(np.random.default_rng(s), (2, 2, 3)),
    "dbn": lambda s: random_dbn(np.random.default_rng(s)),
}
EVIDENCE = {"bm": {"v0": 1, "v2": 0}, "rbm": {"v1": 1, "v3": 0},
            "sbn": {"l2_0": 1, "l2_2": 0}, "dbn": {"l2_0": 1, "l2_3": 0}}
MODES = {("bm", False): {"chromatic"}, ("rbm", False): {"block"}, ("sbn", False): {"ancestral"},
         ("dbn", False): {"mixed"}, ("bm", True): {"block", "chromatic"},  # evidence may leave a bipartite rest
         ("rbm", True): {"block"}, ("sbn", True): {"neal"}, ("dbn", True): {"neal"}}


def compiled_samples(net, evidence, seed, chains=CHAINS, burn_in=BURN_IN):
    sampler = Chains(compile(net), np.random.default_rng(seed), chains, evidence=evidence)
    return sampler.sample(1, burn_in=burn_in), sampler


def check(samples, net, exact):
    free = [net.index(u) for u in exact.units]
    kl = empirical_kl(samples[:, free], exact)
    bound = kl_bound(2 ** len(free), len(samples), inflation=1.0)
    assert kl < bound, f"KL {kl:.5f} >= bound {bound:.5f}"
    return kl


@pytest.mark.parametrize("with_evidence", [False, True])
@pytest.mark.parametrize("kind", list(NETS))
def test_compiled_matches_exact(kind, with_evidence):
    net = NETS[kind](3)
    evidence = EVIDENCE[kind] if with_evidence else None
    samples, sampler = compiled_samples(net, evidence, 7)
    assert sampler.plan.mode in MODES[kind, with_evidence]
    check(samples, net, posterior(net, evidence))


@pytest.mark.parametrize("kind", list(NETS))
def test_compiled_and_event_engine_agree(kind):
    """Both backends within the bound of the exact distribution, so within twice of
    each other; and their marginals agree within 5 standard errors."""
    net, evidence = NETS[kind](4), EVIDENCE[kind]
    exact = posterior(net, evidence)
    compiled, _ = compiled_samples(net, evidence, 8, chains=8000)
    event = Simulator(net, np.random.default_rng(9), schedule="sweep", evidence=evidence)
    event_samples = event.sample(4000, burn_in=20)
    check(compiled, net, exact)
    free = [net.index(u) for u in exact.units]
    assert empirical_kl(event_samples[:, free], exact) < kl_bound(2 ** len(free), 4000)
    a, b = compiled[:, free].mean(axis=0), event_samples[:, free].mean(axis=0)
    se = np.sqrt(0.25 / len(compiled) + 2 * 0.25 / len(event_samples))  # event: inflation 2
    assert np.all(np.abs(a - b) < 5 * se), (a, b)


def test_negative_control_is_rejected():
    """The bound has power: samples of the net with negated weights fail it."""
    net = NETS["bm"](3)
    flipped = Network(net.unit_list(), [Edge(e.source, e.target, -e.weight, e.kind) for e in net.edges])
    samples, _ = compiled_samples(flipped, None, 7)
    with pytest.raises(AssertionError):
        check(samples, net, posterior(net))


def test_groups_are_independent_sets():
    for kind in NETS:
        for evidence in (None, EVIDENCE[kind]):
            net = NETS[kind](3)
            cn = compile(net)
            plan = cn.plan(net.evidence_indices(evidence))
            moral = net.moral_graph()
            for step in plan.steps:
                names = [net.units[i] for i in step.index]
                graph = moral if plan.mode == "neal" else net.graph.to_undirected()
                if step.kind == "gibbs":
                    assert not graph.subgraph(names).number_of_edges(), (kind, names)
            covered = sorted(i for s in plan.steps for i in s.index)
            assert covered == sorted(plan.free.tolist())


def test_block_gibbs_on_rbm_is_two_layers():
    net = NETS["rbm"](0)
    steps = compile(net).plan().steps
    assert [sorted(net.units[i][0] for i in s.index) for s in steps] == [["h"] * 3, ["v"] * 4]


def test_mixed_plan_is_gibbs_on_top_then_ancestral():
    net = NETS["dbn"](0)
    plan = compile(net).plan()
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["gibbs", "gibbs", "ancestral"]
    assert {net.units[i] for i in plan.steps[-1].index} == {f"l2_{i}" for i in range(4)}


def test_chromatic_colouring_on_odd_cycle():
    units = [Unit(f"u{i}") for i in range(5)]
    edges = [Edge(f"u{i}", f"u{(i + 1) % 5}", 1.0, "symmetric") for i in range(5)]
    plan = compile(Network(units, edges)).plan()
    assert plan.mode == "chromatic" and len(plan.steps) == 3


def test_same_seed_same_numbers_and_float32():
    net = load("models/boltzmann_6.toml")
    a, sa = compiled_samples(net, None, 1, chains=50, burn_in=5)
    b, _ = compiled_samples(net, None, 1, chains=50, burn_in=5)
    assert np.array_equal(a, b) and sa.state.dtype == np.float32


def test_float64_compiles_too():
    net = load("models/boltzmann_6.toml")
    assert Chains(compile(net, dtype=np.float64), np.random.default_rng(0), 3).state.dtype == np.float64


def test_per_chain_clamps_hold():
    net = NETS["rbm"](0)
    sampler = Chains(compile(net), np.random.default_rng(0), 3)
    values = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    sampler.clamp(units=["v0", "v1", "v2", "v3"], values=values)
    sampler.run(5)
    assert np.array_equal(sampler.state[:, :4], values)
    sampler.unclamp()
    assert sampler.plan.mode == "block" and len(sampler.plan.free) == 7


def test_ledger_counts_updates_and_messages():
    net = NETS["rbm"](0)
    sampler = Chains(compile(net), np.random.default_rng(0), 10)
    sampler.run(3)
    assert sampler.ledger.updates == 3 * 10 * 7
    assert 0 < sampler.ledger.binary <= 3 * 10 * (4 * 3 + 3 * 4)
    assert sampler.ledger.analog == 0


@pytest.mark.parametrize("bad, error, match", [
    (dict(evidence={"nope": 1}), EvidenceError, "nope"),
    (dict(evidence={"v0": 2}), EvidenceError, "v0=2"),
    (dict(n_chains=0), ValidationError, "n_chains"),
    (dict(init=np.zeros((2, 3))), ValidationError, "init"),
    (dict(init=np.full((2, 7), 0.5)), ValidationError, "init"),
])
def test_bad_input_is_named(bad, error, match):
    net = NETS["rbm"](0)
    with pytest.raises(error, match=match):
        Chains(compile(net), np.random.default_rng(0), **{"n_chains": 2, **bad})


def test_per_chain_clamp_shape_is_checked():
    sampler = Chains(compile(NETS["rbm"](0)), np.random.default_rng(0), 3)
    with pytest.raises(EvidenceError, match="3 x 2"):
        sampler.clamp(units=["v0", "v1"], values=np.zeros((2, 2)))
    with pytest.raises(EvidenceError, match="zz"):
        sampler.clamp(units=["zz"], values=np.zeros((3, 1)))
    with pytest.raises(EvidenceError, match="3 x 1 states of 0 or 1"):
        sampler.clamp(units=["v0"], values=np.full((3, 1), 2))


def test_uncounted_chains_draw_the_same_numbers():
    """``count=False`` (machines) changes nothing but the ledger, left empty."""
    net = NETS["rbm"](0)
    counted, quiet = (Chains(compile(net), np.random.default_rng(3), 10, count=c) for c in (True, False))
    counted.sweep(4)
    quiet.sweep(4)
    p_counted, p_quiet = ([x.update(step) for step in x.plan.steps] for x in (counted, quiet))
    assert np.array_equal(counted.rows, quiet.rows) and len(p_quiet) == 2
    assert all(np.array_equal(a, b) for a, b in zip(p_counted, p_quiet))
    assert counted.ledger.updates == 5 * 10 * 7 and quiet.ledger == Ledger()


def test_weights_changed_in_place_are_read_after_set_weights():
    """Chains cache their weight blocks; ``set_weights()`` with no arguments declares the
    arrays changed in place, and the chains read them afresh."""
    cn = compile(NETS["rbm"](0), np.float64)
    chains = Chains(cn, np.random.default_rng(0), 5)
    step = chains.plan.steps[0]
    before = chains.field(step)
    cn.W *= 2
    assert np.array_equal(chains.field(step), before)
    cn.set_weights()
    fresh = Chains(cn, np.random.default_rng(0), 5, init=chains.rows)
    assert np.array_equal(chains.field(step), fresh.field(step)) and not np.allclose(fresh.field(step), before)


def test_recognition_pathway_compiles_as_the_event_engine_runs_it():
    """``compile(net, pathway="recognition")``: the recognition synapses bottom-up and the
    recognition biases (0 where a unit has none), as the event engine's recognition
    Simulator holds them; an unknown pathway is named."""
    net = load("models/helmholtz_shifter.toml")
    net.set_recognition_bias("h1_0", 1.5)             # its generative bias is -3.892
    rec = compile(net, np.float64, pathway="recognition")
    sim = Simulator(net, np.random.default_rng(0), pathway="recognition")
    assert np.array_equal(rec.b, [n.bias for n in sim.neurons])
    assert rec.b[rec.index["h1_0"]] == 1.5 and rec.b[rec.index["p00"]] == 0.0
    v, h = rec.index["p00"], rec.index["h1_0"]
    assert rec.W[v, h] == net.weight("p00", "h1_0", recognition=True) and rec.directed[v, h]
    assert not rec.directed[h, v] and not rec.symmetric.any()
    roots = [rec.index[u] for u in net.population("visible0").units]  # the recognition pass starts at the data
    assert rec.plan().mode == "ancestral" and rec.plan().steps[0].index.tolist() == roots
    with pytest.raises(ValidationError, match="unknown pathway 'lateral'"):
        compile(net, pathway="lateral")


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(NETS))
def test_burn_in_is_long_enough(kind):
    """Halving the burn-in leaves the samples within the bound: no residual bias."""
    net, evidence = NETS[kind](11), EVIDENCE[kind]
    for burn_in in (BURN_IN // 2, BURN_IN):
        samples, _ = compiled_samples(net, evidence, 13, chains=100000, burn_in=burn_in)
        check(samples, net, posterior(net, evidence))


def test_plan_describes_itself():
    net = NETS["dbn"](0)
    text = compile(net).plan().describe(net.units)
    assert text.startswith("mixed: gibbs(") and "ancestral(l2_0, l2_1, l2_2, l2_3)" in text


def test_the_plan_does_not_depend_on_the_hash_seed():
    """The same net is planned the same way in every process: the colouring walks the
    units in their order, not a set's (PYTHONHASHSEED 0-5 gave h0 | h1 or h1 | h0 for the
    audit's Boltzmann net with its visible units clamped, and so other trained weights)."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from neurosim.learning.audit import _boltzmann_net; "
            "from neurosim.compiled import compile; net = _boltzmann_net(np.random.default_rng(0)); "
            "cn = compile(net); vis = [cn.index[u] for u in net.units if net.unit(u).role == 'visible']; "
            "print(cn.plan(vis).describe(cn.units))")
    plans = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in range(6)}
    assert len(plans) == 1, plans


# -- linear units (real-valued, unit-variance Gaussian noise) ---------------------------------
def test_linear_units_are_drawn_as_their_mean_plus_unit_normal_noise():
    """``z | a ~ N(b + a W, I)`` with ``a`` clamped: ``update`` returns the means (the
    noise-free pass) to float32 rounding, 20,000 draws have mean and variance within 4
    standard errors (1/sqrt(n) and sqrt(2/n)); the same seed gives the same draws."""
    net, n = linear_net(np.random.default_rng(20)), 20000
    cn = compile(net)
    mean = np.array([1.0, 0.0]) @ net.projection("a-z").weights + net.population("z").bias
    draws = []
    for _ in range(2):
        chains = Chains(cn, np.random.default_rng(21), n, count=False)
        chains.clamp({"a0": 1, "a1": 0})
        (step,) = chains.plan.steps
        p = chains.update(step)
        np.testing.assert_allclose(p, np.tile(mean, (n, 1)), rtol=1e-6)
        draws.append(chains.rows[:, step.units])
    assert np.array_equal(*draws)
    assert np.all(np.abs(draws[0].mean(axis=0) - mean) < 4 / np.sqrt(n))
    assert np.all(np.abs(draws[0].var(axis=0) - 1) < 4 * np.sqrt(2 / n))


def test_gaussian_hidden_rbm_network_samples_the_exact_visible_marginal():
    """A Network ``a <-> z`` with linear ``z``, block Gibbs of the compiled engine (20,000
    chains, 30 sweeps): the visible states' frequencies against ``P(a) ~ exp(b.a + |c +
    a W|^2 / 2)`` (z integrated out), each within 4 binomial standard errors; the kernel's
    ``CD.gaussian_hidden`` is tested against the same marginal (tests/test_bipartite.py)."""
    net, m = linear_net(np.random.default_rng(22), symmetric=True), CHAINS
    chains = Chains(compile(net), np.random.default_rng(23), m, count=False)
    assert chains.plan.mode == "block"
    chains.run(30)
    W, b, c = net.projection("a-z").weights, net.population("a").bias, net.population("z").bias
    states = np.array([[(s >> i) & 1 for i in range(3)] for s in range(8)], dtype=float)
    log_p = states @ b + ((states @ W + c) ** 2).sum(axis=1) / 2
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    freq = np.bincount((chains.rows[:, :3] @ (2 ** np.arange(3))).astype(int), minlength=8) / m
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / m))


def test_linear_units_clamp_to_real_values_and_send_analog_messages():
    """Clamped linear units hold any finite value (binary units still 0 or 1); a linear
    unit's messages are counted as analog; ``sample`` returns floats for such a net."""
    net = linear_net(np.random.default_rng(24), symmetric=True)
    chains = Chains(compile(net), np.random.default_rng(25), 2)
    chains.clamp(units=["z0", "a0"], values=np.array([[-1.5, 1], [2.25, 0]]))
    assert chains.rows[:, [3, 0]].tolist() == [[-1.5, 1], [2.25, 0]]
    with pytest.raises(EvidenceError, match=r"2 x 1 states of 0 or 1 \(finite numbers on linear units\)"):
        chains.clamp(units=["z1"], values=np.array([[np.inf], [0.0]]))
    with pytest.raises(EvidenceError, match="states of 0 or 1"):
        chains.clamp(units=["a1"], values=np.array([[0.5], [0.0]]))
    chains.unclamp()
    (linear_step,) = [s for s in chains.plan.steps if 3 in s.index]
    assert not linear_step.fanout.any() and linear_step.analog_fanout.tolist() == [3, 3]
    chains.update(linear_step)
    assert chains.ledger.binary == 0 and chains.ledger.analog == 2 * 2 * 3
    assert chains.sample(2).dtype == np.float32


def test_linear_units_refuse_what_needs_binary_states():
    """Tempered sampling and Neal's conditional (evidence below a unit) refuse linear
    units, naming the population."""
    net = linear_net(np.random.default_rng(26))
    chains = Chains(compile(net), np.random.default_rng(27), 2)
    chains.beta = 0.5
    with pytest.raises(ParameterError, match=r"population 'z' is linear .*tempered sampling \(beta = 0.5\)"):
        chains.sweep()
    chains = Chains(compile(net), np.random.default_rng(27), 2, evidence={"z0": 1})
    with pytest.raises(ValidationError, match=r"population 'z' is linear .*Neal's child terms"):
        chains.sweep()
