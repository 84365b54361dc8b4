"""A DBM's posterior in the event engine: mean-field as analog messages against the
machine's own mean-field, Gibbs in the posterior (binary messages) against enumeration,
and both message counts against their formulas."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.errors import ValidationError
from neurosim.inference import exact
from neurosim.machines.dbm_event import event_gibbs_means, event_mean_field
from helpers import random_belief_net
from test_dbm import random_dbm


def _float64(dbm):
    """The machine computing in float64 (its weights are float32 by default), so the two
    engines can agree to rounding."""
    dbm.weights_, dbm.biases_ = dbm._float64()
    return dbm


def _fan_out(layers):
    """Synapses out of each unit of hidden layer l: to both neighbouring layers."""
    return [layers[l - 1] + (layers[l + 1] if l + 1 < len(layers) else 0) for l in range(1, len(layers))]


@pytest.mark.parametrize("layers, iterations, damping", [((5, 4, 3), 1, 0.0), ((5, 4, 3, 2), 3, 0.0),
                                                         ((6, 4, 3, 3, 2), 4, 0.5), ((5, 4, 3, 2), 300, 0.0)])
def test_event_mean_field_is_the_machines_mean_field(layers, iterations, damping):
    """Same start (doubled bottom-up pass), same schedule (odd layers, then even), same stop:
    the event engine's running sums of analog messages give the machine's q to rounding."""
    dbm = _float64(random_dbm(layers, scale=1.0, seed=5))
    v = (np.random.default_rng(2).random(layers[0]) < 0.5).astype(np.float64)
    ours = event_mean_field(dbm.to_network(), v, iterations, damping)
    theirs = dbm.mean_field(v[None], iterations=iterations, damping=damping)
    assert len(ours.means) == len(theirs)
    for q, r in zip(ours.means, theirs):
        np.testing.assert_allclose(q, r[0], rtol=0, atol=1e-12)
    assert ours.steps == iterations if iterations < 300 else ours.steps < 300      # converged


def test_mean_field_sends_analog_messages_one_per_synapse_at_every_update():
    """Updates: (1 start + passes) x hidden units; analog messages: that times each unit's
    fan-out (both neighbouring layers, the clamped visible units included); binary: only
    the visible units that are on, once, to h1."""
    layers = (5, 4, 3, 2)
    dbm = random_dbm(layers, seed=3)
    v = np.array([1, 0, 1, 1, 0])
    run = event_mean_field(dbm.to_network(), v, iterations=7)
    assert run.steps == 7
    assert run.ledger.updates == 8 * sum(layers[1:])
    assert run.ledger.analog == 8 * sum(n * f for n, f in zip(layers[1:], _fan_out(layers)))
    assert run.ledger.binary == v.sum() * layers[1]


def test_gibbs_in_the_posterior_matches_the_exact_marginals():
    """20,000 sweeps of one chain: each marginal within 5 standard errors of the exact one,
    the sample size deflated by 2 for the chain's correlation (tests/helpers.py:
    measured below 1.6 for such nets, one sweep between samples)."""
    dbm = random_dbm((4, 3, 3, 2), scale=1.0, seed=11)
    net, v = dbm.to_network(), np.array([1, 0, 0, 1])
    n = 20_000
    (run,) = event_gibbs_means(net, v, [n], np.random.default_rng(0), burn_in=20)
    exact_q = exact.posterior(net, dict(zip(net.population("v").units, v.tolist()))).marginals()
    for means, p in zip(run.means, [net.population(f"h{l}") for l in (1, 2, 3)]):
        truth = np.array([exact_q[u] for u in p.units])
        bound = 5 * np.sqrt(2 * truth * (1 - truth) / n)
        assert (np.abs(means - truth) < bound).all(), (p.name, means, truth)
    assert run.ledger.analog == 0 and run.steps == n


def test_gibbs_sends_one_binary_message_per_synapse_at_every_change():
    """Reading the means after every sweep gives every sweep's states; each change of a
    hidden unit's state sends its fan-out, each visible unit on sends to h1 once."""
    layers = (5, 4, 3, 2)
    net, v = random_dbm(layers, seed=3).to_network(), np.array([1, 0, 1, 1, 0])
    runs = event_gibbs_means(net, v, range(1, 201), np.random.default_rng(1))
    totals = np.array([np.concatenate(r.means) * r.steps for r in runs])
    states = np.diff(np.vstack([np.zeros(totals.shape[1]), np.rint(totals)]), axis=0)
    assert np.isin(states, (0, 1)).all()
    changes = np.abs(np.diff(np.vstack([np.zeros(states.shape[1]), states]), axis=0)).sum(axis=0)
    fan_out = np.repeat(_fan_out(layers), layers[1:])
    assert runs[-1].ledger.binary == int(changes @ fan_out) + v.sum() * layers[1]
    assert runs[-1].ledger.updates == 200 * sum(layers[1:]) and runs[-1].ledger.analog == 0
    assert [r.ledger.binary for r in runs] == sorted(r.ledger.binary for r in runs)


def test_the_layer_schedule_in_mean_field_mode_settles_on_a_fixed_point():
    """Left to run on its own clock (a layer per tick, top first), mean-field mode is
    deterministic and ends at a fixed point of q_l = sigmoid(q_{l-1} W_l + q_{l+1} W_{l+1}^T + b_l)."""
    from neurosim.machines.dbm import layer_input
    from neurosim.numerics import sigmoid

    dbm = _float64(random_dbm((5, 4, 3, 2), scale=0.5, seed=7))
    net, v = dbm.to_network(), [1, 1, 0, 1, 0]
    sim = Simulator(net, np.random.default_rng(0), "layer", mode="mean-field",
                    evidence=dict(zip(net.population("v").units, v)))
    sim.run(1)
    H = [np.array(v, float)] + [sim.state[c] for c in dbm._slices()[1:]]
    assert max(np.abs(H[l] - sigmoid(layer_input(H, l, dbm.weights_, dbm.biases_))).max() for l in (1, 2, 3)) > 1e-3
    sim.run(200)
    H = [np.array(v, float)] + [sim.state[c] for c in dbm._slices()[1:]]
    assert max(np.abs(H[l] - sigmoid(layer_input(H, l, dbm.weights_, dbm.biases_))).max() for l in (1, 2, 3)) < 1e-12
    assert sim.ledger.analog == 200 * sum(n * f for n, f in zip((4, 3, 2), _fan_out((5, 4, 3, 2))))


def test_bad_calls_are_refused_by_name():
    net = random_dbm((4, 3, 2), seed=1).to_network()
    with pytest.raises(ValidationError, match="4 visible units"):
        event_mean_field(net, np.array([1, 0, 1]))
    with pytest.raises(ValidationError, match="increasing positive"):
        event_gibbs_means(net, np.array([1, 0, 1, 0]), [5, 5], np.random.default_rng(0))
    with pytest.raises(ValidationError, match="schedule 'layer'"):
        Simulator(net, np.random.default_rng(0), "sweep", mode="mean-field")
    with pytest.raises(ValidationError, match="needs symmetric projections"):
        Simulator(random_belief_net(np.random.default_rng(0), (2, 3)), np.random.default_rng(0), "layer",
                  mode="mean-field")
    with pytest.raises(ValidationError, match="no softmax group"):
        Simulator(net, np.random.default_rng(0), "layer", mode="mean-field").update_group(["h1_0"], softmax=True)
    with pytest.raises(ValidationError, match="values in \\[0, 1\\]"):
        Simulator(net, np.random.default_rng(0), "layer", mode="mean-field", init=np.full(net.n_units, 2.0))
