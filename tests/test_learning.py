"""Local learning rules: local form = batched form, locality enforced, procedures learn."""

import math

import numpy as np
import pytest

from neurosim import Edge, LocalityError, Network, NeurosimError, Unit
from neurosim.engine import Simulator
from neurosim.inference import posterior
from neurosim.learning import Rule, SynapseView, get_rule, register, rule_names
from neurosim.learning.plasticity import Plasticity
from neurosim.learning.procedures import Settings, train

RULE_PHASES = [(name, phase) for name in rule_names() for phase in get_rule(name).phases]


@pytest.mark.parametrize("name, phase", RULE_PHASES)
def test_local_form_summed_over_a_batch_is_the_batched_form(name, phase):
    rng = np.random.default_rng(0)
    B, n_pre, n_post, lr = 7, 5, 4, 0.3
    pre = (rng.random((B, n_pre)) < 0.5).astype(float)
    pre[:, -1] = 1.0  # a bias: the synapse from an always-on unit
    post = (rng.random((B, n_post)) < 0.5).astype(float)
    post_prob, post_error = rng.random((B, n_post)), rng.normal(size=(B, n_post))
    rule = get_rule(name)
    local = np.zeros((n_pre, n_post))
    for b in range(B):
        for i in range(n_pre):
            for j in range(n_post):
                view = SynapseView(f"synapse {i} -> {j}", set(), pre=pre[b, i], post=post[b, j],
                                   post_prob=post_prob[b, j], post_error=post_error[b, j],
                                   phase=phase, weight=0.0, acc={}, lr=lr)
                local[i, j] += rule.local(view)
    batched = rule.batched(pre, post, phase, lr, post_prob=post_prob, post_error=post_error)
    np.testing.assert_allclose(local, batched, rtol=0, atol=1e-12)


def _rbm(rng, n_v=4, n_h=3, scale=0.5):
    V, H = [f"v{i}" for i in range(n_v)], [f"h{j}" for j in range(n_h)]
    units = [Unit(v, float(rng.normal(0, scale)), "visible", 0) for v in V] + \
            [Unit(h, float(rng.normal(0, scale)), "hidden", 1) for h in H]
    return Network(units, [Edge(v, h, float(rng.normal(0, scale)), "symmetric") for v in V for h in H]), V


def test_event_engine_plasticity_equals_the_batched_rule_on_the_same_states():
    """Every synapse of the engine, reading only its own view, changes its weight by
    exactly the batched rule's outer product of the same states."""
    net, V = _rbm(np.random.default_rng(1))
    sim = Simulator(net, np.random.default_rng(2))
    sim.run(until=3)
    plast = Plasticity(sim, get_rule("cd"), 0.1)
    plast.observe("positive")
    s = sim.state.astype(float)[None, :]
    pre = np.hstack([s, [[1.0]]])  # last row of the result: the biases
    expected = get_rule("cd").batched(pre, s, "positive", 0.1)
    for (n, k, where), dw in zip(plast.synapses, plast.dw):
        i = net.n_units if k is None else net.index(n.in_pre[k])
        assert dw == pytest.approx(expected[i, n.index], abs=1e-15), where


def _log_likelihood(net, visible, data):
    post = posterior(net)
    cols = [post.units.index(v) for v in visible]
    return float(np.mean([math.log(post.probs[(post.states[:, cols] == row).all(1)].sum())
                          for row in data]))


DATA = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])


def _belief_net(rng, recognition=False):
    V, H = [f"v{i}" for i in range(4)], ["h0", "h1"]
    units = [Unit(v, 0.0, "visible", 0, 0.0 if recognition else None) for v in V] + \
            [Unit(h, 0.0, "hidden", 1, 0.0 if recognition else None) for h in H]
    edges = [Edge(h, v, float(rng.normal())) for h in H for v in V]
    if recognition:
        edges += [Edge(v, h, float(rng.normal()), "recognition") for v in V for h in H]
    return Network(units, edges), V


@pytest.mark.parametrize("rule, make, settings", [
    ("boltzmann", lambda r: _rbm(r, scale=0.1), Settings(epochs=150, lr=0.2, batch=2, sweeps=5)),
    ("cd", lambda r: _rbm(r, scale=0.1), Settings(epochs=150, lr=0.2, batch=2)),
    ("pcd", lambda r: _rbm(r, scale=0.1), Settings(epochs=150, lr=0.2, batch=2)),
    ("delta", lambda r: _belief_net(r), Settings(epochs=300, lr=0.2, batch=2, sweeps=3)),
    ("wake-sleep", lambda r: _belief_net(r, True), Settings(epochs=600, lr=0.2, batch=2)),
])
def test_event_engine_training_improves_the_exact_log_likelihood(rule, make, settings):
    net, V = make(np.random.default_rng(3))
    before = _log_likelihood(net, V, DATA)
    result = train(net, get_rule(rule), DATA, V, np.random.default_rng(4), settings)
    after = _log_likelihood(result.network, V, DATA)
    assert after > before + 0.5, (before, after)
    assert result.violations == 0
    assert (result.ledger.analog > 0) == (rule == "delta")  # only Neal's Gibbs sends analog messages
    assert set(result.reads) <= {"pre", "post", "post_prob", "phase", "lr"}


def test_backprop_learns_the_encoder_and_sends_only_analog_messages():
    rng = np.random.default_rng(0)
    A, B = [f"a{i}" for i in range(4)], [f"b{i}" for i in range(4)]
    units = [Unit(u, 0.0, "visible") for u in A + B] + [Unit("h0"), Unit("h1")]
    edges = [Edge(a, h, float(rng.normal(0, 0.5))) for a in A for h in ("h0", "h1")] + \
            [Edge(h, b, float(rng.normal(0, 0.5))) for h in ("h0", "h1") for b in B]
    data = np.hstack([np.eye(4, dtype=int)] * 2)
    result = train(Network(units, edges), get_rule("backprop"), data, A + B, np.random.default_rng(1),
                   Settings(epochs=1500, lr=1.0, batch=4))
    assert result.ledger.binary == 0
    # forward: 8 + 8 activities; backward: 2 hidden units hear 4 derivatives each
    assert result.ledger.analog == (8 + 8 + 8) * 4 * 1500
    assert "post_error" in result.reads
    net = result.network
    for row in np.eye(4):
        h = [1 / (1 + math.exp(-(net.bias(u) + sum(net.weight(a, u) * x for a, x in zip(A, row)))))
             for u in ("h0", "h1")]
        out = [1 / (1 + math.exp(-(net.bias(b) + net.weight("h0", b) * h[0] + net.weight("h1", b) * h[1])))
               for b in B]
        assert int(np.argmax(out)) == int(np.argmax(row))


def test_symmetric_pairs_stay_equal_without_delays_and_drift_with_them():
    net, V = _rbm(np.random.default_rng(5), scale=0.1)
    s = Settings(epochs=20, lr=0.2, batch=2, sweeps=3, schedule="async")
    assert train(net, get_rule("boltzmann"), DATA, V, np.random.default_rng(6), s).symmetry_drift == 0.0
    delayed = train(net.with_delay(0.4), get_rule("boltzmann"), DATA, V, np.random.default_rng(6), s)
    assert delayed.symmetry_drift > 0.05


class PeekAtNeighbour(Rule):
    name, phases, procedure = "peek", ("wake",), "delta"

    def local(self, s):
        return s.lr * s.neighbour_state


def test_a_rule_that_reaches_for_non_local_information_fails_loudly():
    register(PeekAtNeighbour())
    net, V = _belief_net(np.random.default_rng(0))
    with pytest.raises(LocalityError, match=r"synapse h0 -> v0: a rule read 'neighbour_state', which "
                                            r"is not local"):
        train(net, get_rule("peek"), DATA, V, np.random.default_rng(0))


def test_error_derivatives_are_not_sent_to_boltzmann_synapses():
    class Confused(Rule):
        name, phases, procedure = "confused", ("positive", "negative"), "cd"

        def local(self, s):
            return s.post_error

    net, V = _rbm(np.random.default_rng(0))
    with pytest.raises(LocalityError, match="'post_error' is not sent to this synapse"):
        train(net, register(Confused()), DATA, V, np.random.default_rng(0))


def test_a_view_is_read_only_and_records_reads():
    reads = set()
    view = SynapseView("synapse a -> b", reads, pre=1, post=0, phase="wake", lr=0.1)
    assert view.pre == 1 and reads == {"pre"}
    with pytest.raises(LocalityError, match="rules return a weight change"):
        view.weight = 3.0


def test_user_rules_register_by_name_and_train():
    class Hebb(Rule):
        name, phases, procedure = "hebb", ("wake",), "delta"

        def local(self, s):
            return s.lr * s.pre * s.post

        def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
            return lr * pre.T @ post

    register(Hebb())
    assert "hebb" in rule_names()
    net, V = _belief_net(np.random.default_rng(0))
    result = train(net, get_rule("hebb"), DATA, V, np.random.default_rng(0), Settings(epochs=3))
    assert result.network.weight("h0", "v0") != net.weight("h0", "v0")


def test_unknown_rule_and_bad_registration():
    with pytest.raises(NeurosimError, match="unknown learning rule 'oja'"):
        get_rule("oja")
    with pytest.raises(NeurosimError, match="register\\(\\) takes a Rule instance"):
        register(object())


def test_annealing_settles_at_falling_temperatures():
    """With annealing each phase costs one extra sweep per temperature, and learning works."""
    net, V = _rbm(np.random.default_rng(3), scale=0.1)
    plain = train(net, get_rule("boltzmann"), DATA, V, np.random.default_rng(4),
                  Settings(epochs=40, lr=0.2, batch=2, sweeps=3))
    annealed = train(net, get_rule("boltzmann"), DATA, V, np.random.default_rng(4),
                     Settings(epochs=40, lr=0.2, batch=2, sweeps=3, anneal=(4.0, 2.0)))
    free_per_case = 3 + 7  # hidden units in the positive phase, all units in the negative
    assert annealed.ledger.updates - plain.ledger.updates == 2 * free_per_case * 80
    assert _log_likelihood(annealed.network, V, DATA) > _log_likelihood(net, V, DATA)
