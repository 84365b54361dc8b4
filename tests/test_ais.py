"""Partition functions of RBMs: exact enumeration against brute force, AIS against exact."""

import itertools
import warnings

import numpy as np
import pytest

from neurosim.errors import ParameterError
from neurosim.machines import ais
from neurosim.machines.ais import (ais_log_partition, best_log_partition, beta_schedule, exact_log_partition,
                                   free_energy, log_partition_floor, log_prob)


def rbm(seed, n_visible, n_hidden, scale):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (n_visible, n_hidden)), rng.normal(0, scale, n_visible),
            rng.normal(0, scale, n_hidden))


def brute_log_z(W, b, c):
    nv, nh = W.shape
    terms = [v @ b + h @ c + v @ W @ h
             for v in map(np.array, itertools.product([0, 1], repeat=nv))
             for h in map(np.array, itertools.product([0, 1], repeat=nh))]
    return float(np.log(np.sum(np.exp(terms))))


@pytest.mark.parametrize("shape", [(3, 4), (5, 2), (4, 4)])
def test_exact_log_z_equals_brute_force(shape):
    W, b, c = rbm(0, *shape, 1.0)
    assert exact_log_partition(W, b, c) == pytest.approx(brute_log_z(W, b, c), abs=1e-10)


def test_log_probs_sum_to_one():
    W, b, c = rbm(1, 5, 3, 1.0)
    V = np.array(list(itertools.product([0, 1], repeat=5)), dtype=float)
    assert np.exp(log_prob(V, W, b, c, exact_log_partition(W, b, c))).sum() == pytest.approx(1, abs=1e-12)
    assert free_energy(V, W, b, c).shape == (32,)


@pytest.mark.parametrize("shape", [(1, 3), (2, 2), (3, 5)])
def test_gaussian_visible_log_z_integrates_the_density(shape):
    """Gaussian visible units of unit variance: exp(-F(v)) / Z integrates to 1 over v,
    by the midpoint rule on a grid (one or two visible units), and log Z equals the closed
    form summed term by term over the hidden states."""
    W, b, c = rbm(3, *shape, 0.7)
    log_z = exact_log_partition(W, b, c, gaussian=True)
    H = np.array(list(itertools.product([0, 1], repeat=shape[1])), dtype=float)
    terms = H @ c + H @ W.T @ b + 0.5 * ((H @ W.T) ** 2).sum(axis=1) + 0.5 * shape[0] * np.log(2 * np.pi)
    assert log_z == pytest.approx(np.log(np.exp(terms).sum()), abs=1e-12)
    if shape[0] <= 2:
        axis = np.arange(-12, 12, 0.05) + 0.025
        V = np.array(list(itertools.product(axis, repeat=shape[0])))
        mass = np.exp(-free_energy(V, W, b, c, gaussian=True) - log_z).sum() * 0.05 ** shape[0]
        assert mass == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seed, shape, scale", [(0, (20, 8), 0.5), (1, (30, 12), 0.5), (2, (16, 16), 1.0)])
def test_ais_is_within_a_tenth_of_a_nat_of_exact(seed, shape, scale):
    """The issue's check. The AIS standard error is also reported and must be honest:
    the true error lies within 4 of them (or 0.02 nats)."""
    W, b, c = rbm(seed, *shape, scale)
    exact = exact_log_partition(W, b, c)
    est = ais_log_partition(W, b, c, np.random.default_rng(seed), n_runs=100, n_betas=3000)
    assert abs(est.log_z - exact) < 0.1
    assert abs(est.log_z - exact) < max(4 * est.log_z_std, 0.02)


@pytest.mark.parametrize("seed, shape, scale", [(0, (12, 8), 0.5), (2, (10, 16), 1.0)])
def test_reverse_ais_from_exact_samples_is_within_a_tenth_of_a_nat_of_exact(seed, shape, scale):
    """Reverse AIS from exact visible samples (every v enumerated), as ``test_dbm.py``
    checks for deeper machines; its standard error honest as the forward one's."""
    W, b, c = rbm(seed, *shape, scale)
    exact = exact_log_partition(W, b, c)
    V = np.array(list(itertools.product([0, 1], repeat=shape[0])), dtype=float)
    rng = np.random.default_rng(seed)
    sample = V[rng.choice(len(V), 100, p=np.exp(log_prob(V, W, b, c, exact)))]
    est = ais_log_partition(W, b, c, rng, n_betas=3000, start=sample)
    assert abs(est.log_z - exact) < 0.1
    assert abs(est.log_z - exact) < max(4 * est.log_z_std, 0.02)


def test_ais_base_rate_from_data():
    W, b, c = rbm(3, 12, 6, 0.5)
    data = (np.random.default_rng(0).random((200, 12)) < 0.3).astype(float)
    est = ais_log_partition(W, b, c, np.random.default_rng(1), n_runs=100, n_betas=2000, data=data)
    assert abs(est.log_z - exact_log_partition(W, b, c)) < 0.1


def test_beta_schedule_runs_from_zero_to_one():
    betas = beta_schedule(14500)
    assert len(betas) == 14500 and betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) > 0)


def test_floor_is_exact_once_the_chains_visit_every_state():
    """8 visible units: 20 chains of 500 steps visit all 256 states, and the floor, a sum
    over the distinct states visited, is then log Z itself (no state counted twice)."""
    W, b, c = rbm(1, 8, 5, 0.5)
    V0 = np.zeros((20, 8))
    floor = log_partition_floor(W, b, c, V0, np.random.default_rng(0), n_steps=500, every=1)
    assert floor == pytest.approx(exact_log_partition(W, b, c), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_floor_never_exceeds_log_z(seed):
    """18 visible units, 2^18 states, of which 10 chains of 1000 steps visit a few
    thousand: a strict lower bound, and within 1.5 nats (0.2-0.9 for these seeds)
    because the chains find the states that carry the mass."""
    W, b, c = rbm(seed, 18, 6, 1.0)
    rng = np.random.default_rng(seed)
    V0 = (rng.random((10, 18)) < 0.5).astype(float)
    floor = log_partition_floor(W, b, c, V0, rng, n_steps=1000, every=1)
    exact = exact_log_partition(W, b, c)
    assert exact - 1.5 < floor < exact


@pytest.mark.parametrize("call, match", [
    (lambda W, b, c: exact_log_partition(np.zeros((30, 25)), np.zeros(30), np.zeros(25)), "2\\^25"),
    (lambda W, b, c: exact_log_partition(W, b[:-1], c), "n_visible"),
    (lambda W, b, c: ais_log_partition(W, b, c, np.random.default_rng(0), n_runs=1), "n_runs"),
    (lambda W, b, c: ais_log_partition(W, b, c, 0), "Generator"),
    (lambda W, b, c: exact_log_partition(W * np.nan, b, c), "finite"),
    (lambda W, b, c: log_partition_floor(W, b, c, np.full((2, 4), 0.5), np.random.default_rng(0)), "binary"),
    (lambda W, b, c: log_partition_floor(W, b, c, np.zeros((2, 3)), np.random.default_rng(0)), "binary"),
])
def test_bad_parameters_are_named(call, match):
    W, b, c = rbm(0, 4, 3, 1.0)
    with pytest.raises(ParameterError, match=match):
        call(W, b, c)


def test_best_of_two_base_rates_keeps_the_larger_each_from_the_same_numbers():
    """Each base rate's estimate is ais_log_partition's from the same seed; the larger is
    kept, and it is within a tenth of a nat of exact; the floor lies below exact."""
    W, b, c = rbm(2, 8, 5, 1.0)
    data = (np.random.default_rng(3).random((50, 8)) < 0.3).astype(float)
    rng = np.random.default_rng(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no warning: the estimate is above the floor
        best = best_log_partition(W, b, c, rng, {"data": data, "uniform": None}, 50, 2000, data[:20], 200)
    alone = {name: ais_log_partition(W, b, c, np.random.default_rng(7), 50, 2000, d).log_z
             for name, d in (("data", data), ("uniform", None))}
    assert best.log_z == alone and best.estimate.log_z == max(alone.values()) == alone[best.base_rate]
    assert abs(best.estimate.log_z - exact_log_partition(W, b, c)) < 0.1
    assert best.floor == log_partition_floor(W, b, c, data[:20], np.random.default_rng(7), 200)
    assert best.floor < exact_log_partition(W, b, c)
    assert rng.random() == np.random.default_rng(7).random()   # copies drew; rng itself did not


def test_best_log_partition_warns_below_the_floor_naming_where(monkeypatch):
    W, b, c = rbm(2, 8, 5, 1.0)
    monkeypatch.setattr(ais, "ais_log_partition", lambda *a, **k: ais.AISResult(-1e3, 0.0, np.zeros(2)))
    V0 = np.ones((4, 8))
    with pytest.warns(UserWarning, match=r"^rbm\.npz: AIS log Z -1000\.0 is below .*; more betas$"):
        best = best_log_partition(W, b, c, np.random.default_rng(0), {"uniform": None}, floor_from=V0,
                                  floor_steps=20, where="rbm.npz", hint="more betas")
    assert best.base_rate == "uniform" and best.floor > -1e3
    assert best_log_partition(W, b, c, np.random.default_rng(0), {"uniform": None}).floor is None
    with pytest.raises(ParameterError, match="at least one base rate"):
        best_log_partition(W, b, c, np.random.default_rng(0), {})
