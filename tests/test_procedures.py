"""Procedures written once over the sampler protocol: both samplers implement it, the two
learners change the weights alike on the same states, and the analog pass of backprop
is the generalised delta rule."""

import math

import numpy as np
import pytest

from neurosim.compiled import Chains, compile
from neurosim.data import encoder_424
from neurosim.engine import Simulator
from neurosim.inference import kl_data_model
from neurosim.learning import get_rule
from neurosim.learning.audit import ALGORITHMS
from neurosim.learning.learners import CompiledLearner, EventLearner
from neurosim.learning.procedures import Settings, train

DATA = encoder_424()


def samplers(net, m=1):
    return Simulator(net, np.random.default_rng(0), schedule="layer"), Chains(compile(net), np.random.default_rng(0), m)


def test_both_samplers_implement_the_protocol():
    net = ALGORITHMS["cd"][1](np.random.default_rng(0))
    sim, chains = samplers(net, m=3)
    for x, m in ((sim, 1), (chains, 3)):
        x.clamp(units=DATA.names, values=DATA.data[:m])
        assert x.rows.shape == (m, net.n_units)
        np.testing.assert_array_equal(x.rows[:, :8], DATA.data[:m])
        x.update_group(["h0", "h1"])
        x.beta = 0.5
        x.sweep(2)
        np.testing.assert_array_equal(x.rows[:, :8], DATA.data[:m])  # clamped units stay
        x.unclamp()
        assert x.ledger.updates > 0
    assert sim.env.now == 2.5  # update_group: half a sweep; sweep(2): two


def test_chains_sweep_n_is_n_sweeps():
    net = ALGORITHMS["boltzmann"][1](np.random.default_rng(0))
    a, b = (Chains(compile(net), np.random.default_rng(4), 5) for _ in range(2))
    a.sweep(3)
    for _ in range(3):
        b.sweep()
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.ledger == b.ledger


@pytest.mark.parametrize("rule_name, build, phase, pathway", [
    ("boltzmann", "boltzmann", "positive", "generative"), ("cd", "cd", "negative", "generative"),
    ("delta", "sbn-gibbs-delta", "wake", "generative"), ("wake-sleep", "wake-sleep", "wake", "generative"),
    ("wake-sleep", "wake-sleep", "sleep", "recognition")])
def test_event_and_compiled_learners_change_the_weights_alike_on_the_same_states(rule_name, build, phase,
                                                                                  pathway):
    """The event learner (local form, synapse by synapse, the states clamped onto its
    Simulator) and the compiled learner (batched form) observe the same three states:
    the event change summed over the cases equals the compiled mean change times 3."""
    rng = np.random.default_rng(1)
    net = ALGORITHMS[build][1](rng)
    s = Settings(lr=0.3)
    pathways = ("generative", "recognition") if rule_name == "wake-sleep" else ("generative",)
    rule = get_rule(rule_name)
    event = EventLearner(net, rule, s, np.random.default_rng(0), pathways, "layer",
                         "ancestral" if rule_name == "wake-sleep" else None)
    compiled = CompiledLearner(net, rule, s, np.random.default_rng(0), pathways)
    states = (rng.random((3, net.n_units)) < 0.5).astype(np.int8)
    chains = Chains(compiled.cns[pathway], np.random.default_rng(0), 3, init=states)
    compiled.observe(phase, chains, pathway)
    other = "recognition" if pathway == "generative" and len(pathways) == 2 else pathway
    for row in states:  # through another pathway's sampler where the procedure does so
        x = event.sampler(other)
        x.clamp(units=x.net.units, values=row[None])
        x.unclamp()
        event.observe(phase, x, pathway)
        np.testing.assert_array_equal(event.sims[pathway].rows, row[None])
        assert not any(n.clamped for n in event.sims[pathway].neurons)
    dW, db = compiled.changes[pathway]
    cn = compiled.cns[pathway]
    plast = event.plasts[pathway]
    assert len(plast.synapses) > 0
    for (n, k, where), change in zip(plast.synapses, plast.dw):
        if k is None:
            assert 3 * db[cn.index[n.name]] == pytest.approx(change, abs=1e-6), where
        else:
            pre, post = where.removeprefix("synapse ").split(" -> ")
            assert 3 * dW[cn.index[pre], cn.index[post]] == pytest.approx(change, abs=1e-6), where
    assert event.plasts[pathway].reads and sorted(compiled.reads) == sorted(plast.reads)


def _reference_backprop(net, data, lr, epochs_order):
    """The generalised delta rule unit by unit in Python floats (Rumelhart et al. 1986):
    forward y_j = 1 / (1 + exp(-(b_j + sum_i w_ij y_i))), delta = t - y at the targets,
    delta_i = y_i (1 - y_i) sum_j w_ij delta_j, dw_ij = lr y_i delta_j, a mean per batch."""
    inputs = [u for u in DATA.names if not net.parents(u)]
    targets = [u for u in DATA.names if net.parents(u)]
    order = [u for g in net.generations() for u in g if u not in inputs]
    w = {(a, b): net.weight(a, b) for a, b, _ in net.synapses()}
    bias = {u: net.bias(u) for u in net.units}
    col = {u: i for i, u in enumerate(DATA.names)}
    for batch in epochs_order:
        dw = {}
        for row in data[batch]:
            y = {u: float(row[col[u]]) for u in inputs}
            for u in order:
                y[u] = 1 / (1 + math.exp(-(bias[u] + sum(w[p, u] * y[p] for p in net.parents(u)))))
            delta = {u: float(row[col[u]]) - y[u] for u in targets}
            for u in reversed(order):
                if u not in delta:
                    delta[u] = y[u] * (1 - y[u]) * sum(w[u, c] * delta[c] for c in net.children(u))
            for u in order:
                for p in net.parents(u) + [None]:
                    dw[p, u] = dw.get((p, u), 0.0) + lr * (1.0 if p is None else y[p]) * delta[u]
        for (p, u), change in dw.items():
            if p is None:
                bias[u] += change / len(batch)
            else:
                w[p, u] += change / len(batch)
    return w, bias


def test_event_backprop_is_the_generalised_delta_rule_and_counts_analog_messages():
    """One analog pass for both backends: in the event engine (float64) it agrees with a
    unit-by-unit Python reference to rounding (the sums are taken in another order), and
    every case sends 16 forward (8 + 8 synapses) and 8 backward messages (each hidden unit
    hears its 4 children)."""
    net = ALGORITHMS["backprop"][1](np.random.default_rng(2))
    s = Settings(epochs=3, lr=1.0, batch=3)
    result = train(net, get_rule("backprop"), DATA.data, DATA.names, np.random.default_rng(3), s)
    rng = np.random.default_rng(3)
    batches = [order[i:i + 3] for _ in range(3) for order in [rng.permutation(4)] for i in range(0, 4, 3)]
    w, bias = _reference_backprop(net, DATA.data, 1.0, batches)
    for (a, b), value in w.items():
        assert result.network.weight(a, b) == pytest.approx(value, rel=1e-13, abs=1e-15)
    for u, value in bias.items():
        assert result.network.bias(u) == pytest.approx(value, rel=1e-13, abs=1e-15)
    assert result.ledger.analog == 12 * (16 + 8) and result.ledger.binary == 0 and result.ledger.updates == 12 * 6
    assert result.reads == ["lr", "post_error", "pre"] and result.phase_signals == 12
    compiled = train(net, get_rule("backprop"), DATA.data, DATA.names, np.random.default_rng(3), s,
                     backend="compiled")
    assert compiled.ledger == result.ledger and compiled.reads == result.reads
    np.testing.assert_allclose(compiled.network.to_arrays().weights, result.network.to_arrays().weights,
                               rtol=0, atol=1e-5)  # float32 against float64


# -- up-down against DeepBeliefNet.up_down_step ----------------------------------------------
def _recording(learner_class):
    class Recording(learner_class):
        """Keeps the states of every phase it observes."""

        def observe(self, phase, x, pathway="generative", posts=None):
            self.seen = getattr(self, "seen", {})
            self.seen.setdefault(phase, []).append(np.array(x.rows, dtype=np.float32))
            super().observe(phase, x, pathway, posts)
    return Recording


class Uniforms:
    """A stand-in Generator whose uniforms make ``rng.random(shape) < p`` give the states
    queued (0 where a state is on, 1 where it is off: p is never 0 or 1 here)."""

    def __init__(self, states):
        self.queue = list(states)

    def random(self, shape=None, dtype=np.float64, out=None):
        s = self.queue.pop(0)
        assert s.shape == (shape if out is None else out.shape)
        u = np.where(s == 1, 0, 1).astype(dtype)
        if out is None:
            return u
        out[...] = u
        return out


@pytest.mark.parametrize("backend", ["event", "compiled"])
def test_up_down_changes_are_up_down_step_on_the_same_sampled_states(backend):
    """One minibatch of 5 cases on a 6-5-4-7 DBN with 3 labels, CD-1: the changes the
    procedure makes equal those of DeepBeliefNet.up_down_step driven to the same sampled
    states (wake h1, h2, top; the chain's pen and top; the sleep h1). Where up_down_step
    uses probabilities the neural version sends samples: the chain's labels, one of the
    softmax group on (the U and b_lab changes differ by exactly lr/m (p - y)^T top, with
    p = softmax given the wake top states: zero in expectation, E[y] = p), and the sleep
    phase's visible units (the R0 and r0 changes are eq. 11 on the sampled v: the
    expectation differs, eq. 11 not being linear in v)."""
    from test_dbn_network import random_dbn

    from neurosim.machines.dbn import DeepBeliefNet
    from neurosim.learning.learners import LEARNERS
    from neurosim.learning.procedures import PROCEDURES
    from neurosim.numerics import sigmoid, softmax

    dbn = random_dbn((6, 5, 4, 7), 3, seed=3)
    for name in ("R", "G"):  # small weights: no probability rounds to 0 or 1 in float32
        for a in getattr(dbn, name):
            a *= 0.3
    dbn.W *= 0.3
    dbn.U *= 0.3
    net = dbn.to_network()
    rng = np.random.default_rng(0)
    X = (rng.random((5, 6)) < 0.5).astype(np.int8)
    Y = np.eye(3, dtype=np.int8)[[0, 1, 2, 1, 0]]
    visible = list(net.population("v").units) + list(net.population("label").units)
    s = Settings(lr=0.2, batch=5, k=1)
    procedure, pathways, schedule, mode = PROCEDURES["up-down"]
    learner = _recording(LEARNERS[backend])(net, get_rule("up-down"), s, np.random.default_rng(1), pathways,
                                            schedule, mode)
    procedure(learner, [(1, np.hstack([X, Y]))], s, visible)
    trained = learner.result(5).network
    for q in trained.projections:  # the event engine's two synapses of a symmetric pair stay equal
        assert q.reverse is None or np.array_equal(q.reverse, q.weights)
        q.reverse = None
    after = DeepBeliefNet.from_network(trained).state_dict()
    seen = {phase: np.vstack(rows) for phase, rows in learner.seen.items()}
    cut = np.cumsum([6, 5, 4, 3])
    v, h1, h2, lab, top = np.split(seen["wake"], cut, axis=1)
    _, _, pen_n, lab_n, top_n = np.split(seen["negative"], cut, axis=1)
    v_s, h1_s, _, _, _ = np.split(seen["sleep"], cut, axis=1)
    np.testing.assert_array_equal(v, X)
    np.testing.assert_array_equal(lab, Y)
    assert (lab_n.sum(axis=1) == 1).all()  # one label on: the softmax group
    reference = DeepBeliefNet.from_network(net)
    before = {k: a.copy() for k, a in reference.state_dict().items()}
    reference.up_down_step(X.astype(np.float32), Y.astype(np.float32), 0.2, 1,
                           Uniforms([h1, h2, top, pen_n, top_n, h1_s]))
    expected = reference.state_dict()
    rate = 0.2 / 5
    p = softmax(top @ dbn.U.T + dbn.b_lab)  # the labels of CD-1 are drawn from the wake top states
    label_noise = {"U": rate * (p - lab_n).T @ top_n, "b_lab": rate * (p - lab_n).sum(axis=0)}
    err = h1_s - sigmoid(v_s @ dbn.R[0] + dbn.r[0])
    sampled_v = {"R0": rate * v_s.T @ err, "r0": rate * err.sum(axis=0)}
    for name in ("G0", "g0", "G1", "g1", "W", "b_pen", "c", "R1", "r1", "U", "b_lab", "R0", "r0"):
        mine = after[name] - before[name]
        if name in label_noise:
            mine = mine - label_noise[name]
        if name in sampled_v:
            np.testing.assert_allclose(mine, sampled_v[name], atol=2e-6, err_msg=name)
        else:
            np.testing.assert_allclose(mine, expected[name] - before[name], atol=2e-6, err_msg=name)
        assert np.abs(mine).max() > 1e-3, name  # each block changed


def test_messages_per_case_is_the_ledger_over_the_cases():
    """Up-down on a small DBN-shaped net in the event engine: binary messages only, and
    the per-case counts are the training run's ledger divided by its cases."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from network_scale import dbn_network

    from neurosim.learning.procedures import messages_per_case

    net = dbn_network(np.random.default_rng(0), (12, 8, 6, 10), 3)
    visible = list(net.population("v").units) + list(net.population("lab").units)
    rows = np.hstack([(np.random.default_rng(1).random((4, 12)) < 0.3), np.eye(3)[[0, 1, 2, 0]]]).astype(int)
    s = Settings(lr=0.01, batch=2, k=2)
    per_case = messages_per_case(net, get_rule("up-down"), rows, visible, np.random.default_rng(2), s)
    result = train(net, get_rule("up-down"), rows, visible, np.random.default_rng(2), s)
    assert per_case["cases"] == result.cases == 4 and per_case["analog"] == 0
    assert per_case["binary"] * 4 == result.ledger.binary > 0 and per_case["updates"] * 4 == result.ledger.updates
    assert result.reads == ["lr", "phase", "post", "post_prob", "pre"] and result.phase_signals == 4 * 4


def test_up_down_needs_a_top_rbm_and_recognition_edges():
    from neurosim import load
    from neurosim.errors import ValidationError

    shifter = load("models/helmholtz_shifter.toml")
    with pytest.raises(ValidationError, match="up-down trains a deep belief net.*'helmholtz_shifter' has no symmetric"):
        train(shifter, get_rule("up-down"), np.zeros((2, 32), dtype=int), [u.name for u in shifter.unit_list()
                                                                           if u.role == "visible"],
              np.random.default_rng(0))
    rbm = ALGORITHMS["cd"][1](np.random.default_rng(0))
    with pytest.raises(ValidationError, match="up-down needs recognition edges"):
        train(rbm, get_rule("up-down"), DATA.data, DATA.names, np.random.default_rng(0))


def test_symmetrised_sets_each_drifted_pair_to_its_mean_and_keeps_the_projections():
    """symmetrised (block by block) against the per-edge mean; the copy keeps projection
    names (a copy rebuilt unit by unit renamed them, and writing back by name failed)."""
    from neurosim.learning.procedures import symmetrised
    from neurosim.network import Network
    from neurosim.population import Population, Projection

    rng = np.random.default_rng(0)
    W, back = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    net = Network.from_populations(
        [Population("v", ("v0", "v1", "v2"), np.zeros(3), "visible", 0), Population("h", ("h0", "h1"), np.zeros(2))],
        [Projection("vh", "v", "h", W, kind="symmetric", reverse=back, mask=np.array([[1, 1], [1, 0], [0, 1]], bool))])
    out = symmetrised(net)
    assert [q.name for q in out.projections] == ["vh"] and out.edges[0].weight_reverse is None
    for e in net.edges:
        mean = 0.5 * (e.weight + e.weight_reverse)
        assert out.weight(e.source, e.target) == out.weight(e.target, e.source) == mean
    assert net.projection("vh").reverse is not None               # the original is untouched
    assert net.copy() == net and net.copy().projection("vh").weights is not net.projection("vh").weights


def test_the_audit_trains_a_deep_belief_net_by_up_down_in_the_event_engine():
    """The audit's up-down row: the smallest DBN (pen layer of two units under a top RBM
    of four) learns the encoder in the event engine by binary messages only; its top
    RBM's two synapses per edge stay equal. Before training KL is about 4.1 nats."""
    from neurosim.learning.audit import _dbn, audit

    before = kl_data_model(_dbn(np.random.default_rng(0)), DATA.names, DATA.data, DATA.probs)
    row, = audit(np.random.default_rng(0), algorithms=["up-down"])
    assert row.quality["kl_nats"] < 0.6 * before, (before, row.quality)
    assert row.messages["binary"] > 0 and row.messages["analog"] == 0
    assert row.violations == 0 and row.symmetry_drift == 0 and row.phase_signal
