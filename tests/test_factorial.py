"""Factorial approximations of an exact posterior: moment matching (KL(P||Q)) and mean
field (KL(Q||P)), on the explaining-away net of Hinton (2005), figure 3."""

import math
from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, InferenceError, Network, Unit, load_model, posterior
from neurosim.inference import Posterior, all_states
from neurosim.inference.factorial import (coordinate_sweep, factorial_log_probs,
                                          factorial_probs, kl, kl_q_p, mean_field,
                                          moment_matched)

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def jumped() -> Posterior:
    """P(earthquake, truck | house_jumps=1); states 00, 01, 10, 11 in that order."""
    post = posterior(load_model(MODELS / "earthquake_truck.toml"), {"house_jumps": 1})
    assert post.units == ["earthquake", "truck"]
    return post


def both_or_neither(probs):
    return probs[0] + probs[3]


# -- helpers --------------------------------------------------------------------------
def test_factorial_probs_and_logs():
    states = all_states(2)
    q = np.array([0.2, 0.7])
    np.testing.assert_allclose(factorial_probs(q, states), [0.8 * 0.3, 0.8 * 0.7, 0.2 * 0.3, 0.2 * 0.7])
    np.testing.assert_allclose(factorial_log_probs(q, states), np.log(factorial_probs(q, states)))
    with np.errstate(all="raise"):
        logs = factorial_log_probs(np.array([1.0, 0.0]), states)
    assert logs[2] == 0.0 and np.isneginf(logs[[0, 1, 3]]).all()


def test_kl_handles_zeros():
    assert kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(math.log(2))
    assert kl([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl([1.0, 0.0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="different shapes"):
        kl([1.0], [0.5, 0.5])


def test_kl_q_p_matches_kl_of_probabilities(jumped):
    q = np.array([0.3, 0.6])
    assert kl_q_p(q, jumped) == pytest.approx(kl(factorial_probs(q, jumped.states), jumped.probs),
                                              rel=1e-12)


# -- explaining away (figure 3) -------------------------------------------------------
def test_moment_matched_averages_the_two_explanations(jumped):
    q = moment_matched(jumped)
    np.testing.assert_allclose(q, [0.5, 0.5], atol=1e-12)
    Q = factorial_probs(q, jumped.states)
    np.testing.assert_allclose(Q, 0.25, atol=1e-12)
    # The exact posterior puts P(00) = P(11) = 4.54e-5 on both-or-neither; the
    # wake-sleep-like average puts half its mass there: "a vague factorial distribution
    # that gives significant probability to many poor configurations" (section 4.1).
    assert both_or_neither(jumped.probs) == pytest.approx(9.08e-5, rel=1e-3)
    assert both_or_neither(Q) == pytest.approx(0.5, abs=1e-12)


def test_moment_matched_minimises_kl_p_q(jumped):
    rng = np.random.default_rng(1)
    best = kl(jumped.probs, factorial_probs(moment_matched(jumped), jumped.states))
    for q in rng.random((200, 2)):
        assert kl(jumped.probs, factorial_probs(q, jumped.states)) >= best


def test_mean_field_picks_one_explanation(jumped):
    q = mean_field(jumped, np.random.default_rng(0))
    assert min(abs(q - [1, 0]).max(), abs(q - [0, 1]).max()) < 1e-3
    gap = kl_q_p(q, jumped)
    # Why about log 2: P is almost (0.5, 0.5) on the two explanations 01 and 10, and a
    # factorial Q cannot put mass on both without putting as much on 00 and 11, which
    # P makes ~1e4 times less likely. So Q is nearly the point mass on one
    # explanation, e.g. q = (1, 0), whose KL(Q||P) is -log P(10) = log 2 - log(1 - 2e)
    # with e = P(00) = P(11) = 4.54e-5, i.e. log 2 + 9.1e-5. Letting q move off the
    # corner by ~e (q = (1 - 9.09e-5, 9.09e-5)) buys entropy worth ~e, so the optimum is
    # log 2 - 9.1e-5: within 1e-4 of log 2, and below the point mass's cost.
    e = jumped.probs[0]
    assert gap < -math.log(jumped.probs[2]) == pytest.approx(math.log(2) - math.log(1 - 2 * e))
    assert gap == pytest.approx(math.log(2), abs=1e-4)
    assert gap == pytest.approx(0.6930562, abs=1e-6)   # pinned, seed 0
    np.testing.assert_allclose(np.sort(q), [9.0945e-5, 1 - 9.0945e-5], rtol=1e-4)
    # Mean field puts on both-or-neither about as little as the exact posterior does
    # (twice as much: 1.8e-4), against 0.5 for the moment-matched average.
    assert both_or_neither(factorial_probs(q, jumped.states)) < 2e-4


def test_mean_field_beats_moment_matching_on_its_own_objective(jumped):
    q_mf = mean_field(jumped, np.random.default_rng(0))
    q_mm = moment_matched(jumped)
    assert kl_q_p(q_mf, jumped) <= kl_q_p(q_mm, jumped)
    # and the other way round on KL(P||Q): each wins the divergence it minimises
    p = jumped.probs
    assert kl(p, factorial_probs(q_mm, jumped.states)) <= kl(p, factorial_probs(q_mf, jumped.states))


def test_mean_field_same_seed_same_answer(jumped):
    a = mean_field(jumped, np.random.default_rng(7), restarts=3)
    b = mean_field(jumped, np.random.default_rng(7), restarts=3)
    np.testing.assert_array_equal(a, b)


def test_mean_field_stable_at_large_biases():
    # log probabilities near -40 and beyond: the updates work on logs, never overflow
    net = Network([Unit("a", -40.0), Unit("b", -40.0), Unit("x", -80.0, role="visible")],
                  [Edge("a", "x", 80.0), Edge("b", "x", 80.0)])
    post = posterior(net, {"x": 1})
    with np.errstate(all="raise"):
        q = mean_field(post, np.random.default_rng(0), restarts=4)
        gap = kl_q_p(q, post)
    assert min(abs(q - [1, 0]).max(), abs(q - [0, 1]).max()) < 1e-12
    assert gap == pytest.approx(math.log(2), abs=1e-12)


# -- exact when the posterior is factorial --------------------------------------------
@pytest.mark.parametrize("net, evidence", [
    (Network([Unit("a", 1.5), Unit("b", -2.0), Unit("c", 20.0)]), None),
    (Network([Unit("a", -0.7)]), None),
    # an observed child with one parent: the posterior over the parents factorises
    (Network([Unit("a", 0.3), Unit("b", -1.0), Unit("x", -2.0, role="visible"),
              Unit("y", 1.0, role="visible")],
             [Edge("a", "x", 3.0), Edge("b", "y", -2.0)]), {"x": 1, "y": 0}),
])
def test_exact_when_posterior_is_factorial(net, evidence):
    post = posterior(net, evidence)
    for q in (moment_matched(post), mean_field(post, np.random.default_rng(0), restarts=3)):
        assert kl_q_p(q, post) < 1e-9
        assert kl(post.probs, factorial_probs(q, post.states)) < 1e-9


# -- fixed points, on random nets ------------------------------------------------------
def random_net(rng: np.random.Generator, n: int, scale: float) -> Network:
    """A random Boltzmann machine or two-layer sigmoid belief net (a coin flip decides)."""
    names = [f"u{i}" for i in range(n)]
    units = [Unit(u, float(rng.normal(0, scale))) for u in names]
    if rng.random() < 0.5:
        edges = [Edge(a, b, float(rng.normal(0, scale)), "symmetric")
                 for i, a in enumerate(names) for b in names[i + 1:] if rng.random() < 0.6]
    else:
        top = names[: n // 2]
        edges = [Edge(a, b, float(rng.normal(0, scale)))
                 for a in top for b in names[n // 2:] if rng.random() < 0.7]
    return Network(units, edges)


@pytest.mark.parametrize("seed", range(12))
def test_mean_field_result_is_a_fixed_point(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    net = random_net(rng, n, scale=float(rng.choice([0.5, 2.0, 8.0])))
    evidence = {u: int(rng.integers(0, 2)) for u in net.units if rng.random() < 0.3}
    post = posterior(net, evidence)
    q = mean_field(post, rng, restarts=3)
    assert q.shape == (len(post.units),) and ((q >= 0) & (q <= 1)).all()
    np.testing.assert_allclose(coordinate_sweep(q, post), q, atol=1e-6)
    # each approximation wins the divergence it minimises. The marginals are the
    # global optimum of KL(P||Q), always; mean field finds a local optimum of KL(Q||P),
    # which need not beat the marginals in general, but does on these seeded nets.
    assert kl_q_p(q, post) <= kl_q_p(moment_matched(post), post) + 1e-12
    p = post.probs
    assert kl(p, factorial_probs(moment_matched(post), post.states)) <= \
        kl(p, factorial_probs(q, post.states)) + 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_coordinate_sweep_never_increases_kl_q_p(seed):
    rng = np.random.default_rng(100 + seed)
    post = posterior(random_net(rng, 5, scale=3.0))
    q = rng.random(5)
    for _ in range(20):
        new = coordinate_sweep(q, post)
        assert kl_q_p(new, post) <= kl_q_p(q, post) + 1e-12
        q = new


def test_incomplete_state_list_is_refused(jumped):
    half = Posterior(jumped.units, jumped.states[:3], jumped.log_probs[:3], 0.0)
    with pytest.raises(InferenceError, match="every one of the 2\\^2 states"):
        mean_field(half, np.random.default_rng(0))
