"""Procedures written once over the sampler protocol: both samplers implement it, the two
learners change the weights alike on the same states, and the analog pass of backprop
is the generalised delta rule."""

import math

import numpy as np
import pytest

from neurosim.compiled import Chains, compile
from neurosim.data import encoder_424
from neurosim.engine import Simulator
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
