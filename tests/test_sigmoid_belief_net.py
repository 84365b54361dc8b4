"""SigmoidBeliefNet: Neal's Gibbs posterior against enumeration, the delta rule's
batched form against its local form, learning against the exact likelihood."""

from pathlib import Path

import numpy as np
import pytest

from neurosim import ValidationError, load
from neurosim.errors import ParameterError
from neurosim.inference import posterior, visible_log_prob
from neurosim.learning import SynapseView, get_rule
from neurosim.machines import SigmoidBeliefNet
from helpers import empirical_kl, kl_bound, random_belief_net, random_boltzmann

SBN = Path(__file__).resolve().parents[1] / "models" / "sigmoid_belief_net.toml"


def test_gibbs_samples_the_exact_posterior():
    """4000 independent chains of 30 sweeps each: one sample per chain."""
    net = random_belief_net(np.random.default_rng(0), (2, 3, 4))
    sbn = SigmoidBeliefNet(net, random_state=1)
    sbn._init_params()
    v = np.array([1, 0, 1, 1])
    visible = [u for u in net.units if net.unit(u).role == "visible"]
    exact = posterior(net, dict(zip(visible, v.tolist())))
    S = sbn.gibbs(sbn._start(np.tile(v, (4000, 1))), 30)
    samples = S[:, [net.index(u) for u in exact.units]].astype(int)
    assert empirical_kl(samples, exact) < kl_bound(2 ** len(exact.units), 4000)


def test_ancestral_samples_have_the_exact_visible_distribution():
    """20,000 ancestral samples (independent): KL(empirical || exact P(v)) within the
    G-test bound for 16 visible states."""
    net = random_belief_net(np.random.default_rng(3), (2, 3, 4))
    sbn = SigmoidBeliefNet(net, random_state=4)
    X = sbn.sample(20_000)
    visible = [u for u in net.units if net.unit(u).role == "visible"]
    states = ((np.arange(16)[:, None] >> np.arange(3, -1, -1)) & 1)
    p = np.exp(visible_log_prob(net, visible, states))
    codes, counts = np.unique(X @ (1 << np.arange(3, -1, -1)), return_counts=True)
    q = counts / len(X)
    assert np.sum(q * np.log(q / p[codes])) < kl_bound(16, len(X), inflation=1.0)


def test_weight_change_is_the_sum_of_local_delta_rules():
    net = random_belief_net(np.random.default_rng(2), (2, 3))
    sbn = SigmoidBeliefNet(net, learning_rate=0.3, random_state=0)
    sbn._init_params()
    S = sbn.gibbs(sbn._start(np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1]])), 2)
    W, b = sbn.weights_.copy(), sbn.biases_.copy()
    sbn._learn(S)
    rule = get_rule("delta")
    for post in net.units:
        j = net.index(post)
        for pre in net.parents(post) + [None]:
            total = 0.0
            for s in S:
                x = b[j] + s @ W[:, j]
                view = SynapseView("synapse", set(), pre=1.0 if pre is None else s[net.index(pre)],
                                   post=s[j], post_prob=1 / (1 + np.exp(-x)), phase="wake",
                                   weight=0.0, acc={}, lr=0.3 / len(S))
                total += rule.local(view)
            after = sbn.biases_[j] if pre is None else sbn.weights_[net.index(pre), j]
            before = b[j] if pre is None else W[net.index(pre), j]
            assert after - before == pytest.approx(total, abs=1e-12)


def test_learning_reaches_the_teachers_likelihood():
    teacher = SigmoidBeliefNet(random_belief_net(np.random.default_rng(5), (2, 3, 4)), random_state=0)
    X = teacher.sample(300)
    student = SigmoidBeliefNet(random_belief_net(np.random.default_rng(9), (2, 3, 4), scale=0.1),
                               n_iter=50, random_state=0)
    before = student.exact_log_likelihood(X)
    student.fit(X)
    after, best = student.exact_log_likelihood(X), teacher.exact_log_likelihood(X)
    assert after > before + 0.2 and after > best - 0.05


def test_round_trip_and_errors(tmp_path):
    sbn = SigmoidBeliefNet(load(SBN), n_iter=1, random_state=0)
    sbn.fit(np.array([[1, 0, 1, 0]]))
    sbn.save(tmp_path / "sbn.toml")
    again = SigmoidBeliefNet.load(tmp_path / "sbn.toml")
    np.testing.assert_array_equal(again.weights_, sbn.weights_)
    with pytest.raises(ParameterError, match=r"X has 3 columns; the machine has 4 visible units"):
        SigmoidBeliefNet(load(SBN)).fit(np.ones((2, 3)))
    with pytest.raises(ParameterError, match=r"X\[0, 1\] = 2.0 \(unit 'v2'\): states must be 0 or 1"):
        SigmoidBeliefNet(load(SBN)).fit(np.array([[1, 2, 0, 0]]))
    with pytest.raises(ValidationError, match="directed edges only"):
        SigmoidBeliefNet(random_boltzmann(np.random.default_rng(0), 2, 2)).fit(np.ones((1, 2)))
    with pytest.raises(ParameterError, match="n_iter must be >= 1, got 0"):
        SigmoidBeliefNet(load(SBN), n_iter=0).fit(np.ones((1, 4)))
