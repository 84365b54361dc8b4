"""The partition function of an RBM: exact enumeration, and annealed importance sampling.

An RBM with weights ``W`` (visible x hidden), visible biases ``b`` and hidden biases
``c`` has free energy ``F(v) = -b.v - sum_j softplus(c_j + v.W_j)`` and
``log p(v) = -F(v) - log Z``.

* :func:`exact_log_partition` sums over the states of the smaller layer (up to
  ``MAX_EXACT`` units): ``log Z = logsumexp_h [c.h + sum_i softplus(b_i + W_i.h)]``.
* :func:`log_partition_floor` is a certain lower bound, ``log sum_v exp(-F(v))`` over
  the distinct states that Gibbs chains visit: an AIS estimate below it is wrong.
* :func:`ais_log_partition` is annealed importance sampling (Neal 2001) as Salakhutdinov
  and Murray (2008) apply it to RBMs: from a base-rate RBM A (no weights, visible biases
  ``b_A`` from the data's pixel means; ``log Z_A = H log 2 + sum_i softplus(b_A,i)``) to
  the target B through, the hidden units summed out,

      p*_k(v) = exp((1 - beta_k) b_A.v + beta_k b.v) prod_j (1 + exp(beta_k (c_j + v.W_j))),

  each run drawing ``v_1`` from A and ``v_{k+1}`` by one Gibbs step that leaves ``p_k``
  invariant. ``Z_B / Z_A`` is the mean over runs of ``w = prod_k p*_k(v_k) / p*_{k-1}(v_k)``;
  the standard error of ``log Z`` follows from the spread of ``w`` (the delta method).
* :func:`best_log_partition` keeps the largest of several base rates' estimates (AIS's
  ``log Z`` errs low, far when its runs miss a mode) and warns below the floor.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> W, b, c = rng.normal(0, 0.5, (6, 4)), rng.normal(0, 0.5, 6), rng.normal(0, 0.5, 4)
>>> est = ais_log_partition(W, b, c, rng, n_runs=200, n_betas=2000)
>>> bool(abs(est.log_z - exact_log_partition(W, b, c)) < 0.05)
True
"""

from __future__ import annotations

import copy
import warnings
from typing import Mapping, NamedTuple

import numpy as np

from ..errors import ParameterError
from ..numerics import logsumexp as _logsumexp, sigmoid as _sigmoid, softplus as _softplus

__all__ = ["exact_log_partition", "ais_log_partition", "AISResult", "free_energy", "log_prob",
           "log_partition_floor", "beta_schedule", "base_rate_biases", "best_log_partition", "BestAIS",
           "MAX_EXACT", "estimate", "check_runs", "model_samples"]

MAX_EXACT = 20


class AISResult(NamedTuple):
    """``log_z`` and its standard error ``log_z_std``; ``log_weights`` of every run."""

    log_z: float
    log_z_std: float
    log_weights: np.ndarray


class BestAIS(NamedTuple):
    """The ``base_rate`` whose AIS ``estimate`` is largest; ``log_z`` of every base rate
    tried; ``floor``: :func:`log_partition_floor`, or None if not computed."""

    base_rate: str
    estimate: AISResult
    log_z: dict[str, float]
    floor: float | None


def _check(W, b, c) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    W, b, c = (np.asarray(x, dtype=np.float64) for x in (W, b, c))
    if W.ndim != 2 or b.shape != (W.shape[0],) or c.shape != (W.shape[1],):
        raise ParameterError(f"RBM parameters must be W (n_visible, n_hidden), b (n_visible,), "
                             f"c (n_hidden,); got {W.shape}, {b.shape}, {c.shape}")
    if not all(np.isfinite(x).all() for x in (W, b, c)):
        raise ParameterError("RBM parameters must be finite")
    return W, b, c


def free_energy(V: np.ndarray, W, b, c, gaussian: bool = False) -> np.ndarray:
    """``F(v) = -b.v - sum_j softplus(c_j + v.W_j)`` for every row of ``V``; for Gaussian
    visible units of unit variance ``F(v) = ||v - b||^2 / 2 - sum_j softplus(c_j + v.W_j)``."""
    V = np.asarray(V, dtype=np.float64)
    visible = 0.5 * ((V - b) ** 2).sum(axis=1) if gaussian else -(V @ b)
    return visible - _softplus(V @ W + c).sum(axis=1)


def log_prob(V: np.ndarray, W, b, c, log_z: float, gaussian: bool = False) -> np.ndarray:
    """``log p(v) = -F(v) - log Z`` in nats, every row of ``V`` (a log density for
    Gaussian visible units)."""
    return -free_energy(V, W, b, c, gaussian) - log_z


def exact_log_partition(W, b, c, limit: int = MAX_EXACT, gaussian: bool = False) -> float:
    """``log Z`` by enumerating the smaller layer (at most ``limit`` units) and summing
    the other out in closed form: ``log sum_h exp(c.h + sum_i softplus(b_i + (W h)_i))``.
    Gaussian visible units of unit variance: the hidden layer is enumerated and the visible
    one integrated out, ``log Z = n_visible log(2 pi) / 2 + log sum_h exp(c.h + b.(W h) +
    ||W h||^2 / 2)``."""
    W, b, c = _check(W, b, c)
    if W.shape[1] > W.shape[0] and not gaussian:  # sum over the visible layer instead: swap the roles
        W, b, c = W.T, c, b
    n = W.shape[1]
    if n > limit:
        raise ParameterError(f"exact log Z enumerates 2^{n} states; at most 2^{limit} (use AIS)")
    total = []
    for start in range(0, 2 ** n, 1 << 12):
        codes = np.arange(start, min(2 ** n, start + (1 << 12)))
        H = ((codes[:, None] >> np.arange(n)) & 1).astype(np.float64)
        A = H @ W.T                                  # (states, n_visible): W h
        summed_out = A @ b + 0.5 * np.einsum("ij,ij->i", A, A) if gaussian else _softplus(A + b).sum(axis=1)
        total.append(H @ c + summed_out)
    log_z = _logsumexp(np.concatenate(total))
    return log_z + W.shape[0] * np.log(2 * np.pi) / 2 if gaussian else log_z


def log_partition_floor(W, b, c, V0: np.ndarray, rng: np.random.Generator, n_steps: int = 3000,
                        every: int = 10) -> float:
    """A certain lower bound on ``log Z``: ``log sum_{v in S} exp(-F(v))`` for a set ``S``
    of distinct visible states, here the states that alternating Gibbs chains started at
    the rows of ``V0`` visit every ``every`` steps over ``n_steps`` (exact when ``S`` is
    every state). An AIS estimate below it has missed the model's modes. How close it
    comes on MNIST RBMs: ``docs/machines/rbm.md``."""
    W, b, c = _check(W, b, c)
    V = np.asarray(V0, dtype=np.float32)
    if V.ndim != 2 or V.shape[1] != W.shape[0] or not np.isin(V, (0, 1)).all():
        raise ParameterError(f"V0 must be binary, (chains, {W.shape[0]}); got shape {V.shape}")
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    Wf, bf, cf = (x.astype(np.float32) for x in (W, b, c))
    seen: dict[bytes, float] = {}
    for step in range(n_steps + 1):
        if step % every == 0:
            for key, f in zip(np.packbits(V > 0.5, axis=1), -free_energy(V, W, b, c)):
                seen[key.tobytes()] = f
        V = _gibbs(V, Wf, bf, cf, rng)
    return float(_logsumexp(np.fromiter(seen.values(), dtype=np.float64)))


def _gibbs(V: np.ndarray, W: np.ndarray, b: np.ndarray, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One alternating Gibbs step of every chain (row of ``V``): h given v, then v given h."""
    H = (rng.random((len(V), W.shape[1]), dtype=np.float32) < _sigmoid(V @ W + c)).astype(np.float32)
    return (rng.random(V.shape, dtype=np.float32) < _sigmoid(H @ W.T + b)).astype(np.float32)


def model_samples(W, b, c, V0: np.ndarray, rng: np.random.Generator, sweeps: int) -> np.ndarray:
    """Visible states of alternating Gibbs chains started at the binary rows of ``V0``
    after ``sweeps`` steps: samples of the model as ``sweeps`` grows (reverse AIS's start)."""
    W, b, c = _check(W, b, c)
    V = np.asarray(V0, dtype=np.float32)
    Wf, bf, cf = (x.astype(np.float32) for x in (W, b, c))
    for _ in range(sweeps):
        V = _gibbs(V, Wf, bf, cf, rng)
    return V


def beta_schedule(n_betas: int = 14500) -> np.ndarray:
    """Inverse temperatures from 0 to 1: Salakhutdinov and Murray's spacing (steps of
    1e-3 up to 0.5, 1e-4 up to 0.9, 1e-5 up to 1: 14,500 values), scaled to ``n_betas``."""
    if n_betas < 3:
        raise ParameterError(f"n_betas must be at least 3, got {n_betas}")
    parts = np.array([500, 4000, 10000], dtype=float) * n_betas / 14500
    sizes = np.maximum(1, np.round(parts).astype(int))
    sizes[-1] = max(1, n_betas - sizes[0] - sizes[1])
    return np.concatenate([np.linspace(0, 0.5, sizes[0], endpoint=False),
                           np.linspace(0.5, 0.9, sizes[1], endpoint=False),
                           np.linspace(0.9, 1.0, sizes[2])])


def base_rate_biases(data: np.ndarray | None, n_visible: int, smoothing: float = 0.05) -> np.ndarray:
    """Visible biases of the base-rate model: the log-odds of the data's (smoothed)
    pixel means; zeros without data."""
    if data is None:
        return np.zeros(n_visible)
    mean = (np.asarray(data, dtype=np.float64).sum(axis=0) + smoothing) / (len(data) + 2 * smoothing)
    return np.log(mean) - np.log1p(-mean)


def check_runs(rng: np.random.Generator, n_runs: int) -> None:
    """ParameterError unless ``rng`` is a Generator and ``n_runs`` an integer >= 2."""
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n_runs, bool) or int(n_runs) != n_runs or n_runs < 2:
        raise ParameterError(f"n_runs must be an integer >= 2, got {n_runs!r}")


def ais_log_partition(W, b, c, rng: np.random.Generator, n_runs: int = 100, n_betas: int = 14500,
                      data: np.ndarray | None = None, dtype=np.float32, start: np.ndarray | None = None) -> AISResult:
    """``log Z`` of the RBM ``(W, b, c)`` by AIS (module doc); ``data`` sets the base rate.
    Sampling runs in ``dtype``; the importance weights accumulate in float64. ``start``:
    visible samples of the model, one reverse run from each (a stochastic upper bound on
    ``log Z``). An RBM is a deep Boltzmann machine of one hidden layer: the annealing is
    written once, in :func:`neurosim.machines.dbm.ais_log_partition` (its hidden layer
    summed out)."""
    from .dbm import ais_log_partition as layered        # dbm builds on this module
    W, b, c = _check(W, b, c)
    return layered([W], [b, c], rng, n_runs, n_betas, data, dtype, None if start is None else [start, None])


def estimate(log_w: np.ndarray, log_z_a: float) -> AISResult:
    """``log Z = log Z_A + log mean(w)`` from the runs' log importance weights, and its
    standard error ``std(w / mean w) / sqrt(runs)`` (the delta method)."""
    log_mean = _logsumexp(log_w) - np.log(len(log_w))
    w = np.exp(log_w - log_mean)
    return AISResult(float(log_z_a + log_mean), float(np.std(w) / np.sqrt(len(log_w))), log_w)


def best_log_partition(W, b, c, rng: np.random.Generator, bases: Mapping[str, np.ndarray | None],
                       n_runs: int = 100, n_betas: int = 14500, floor_from: np.ndarray | None = None,
                       floor_steps: int = 3000, where: str = "the RBM",
                       hint: str = "try more base rates or n_betas") -> BestAIS:
    """:func:`ais_log_partition` from each base rate of ``bases`` (a name: the data that
    sets it, None for all biases zero), the largest ``log Z`` kept (module doc). With
    ``floor_from``, the floor of ``floor_steps`` Gibbs steps from its rows too, and a
    warning naming ``where`` (and suggesting ``hint``) when the estimate is below it.
    Each run draws from a copy of ``rng``: the same random numbers for every base rate."""
    if not bases:
        raise ParameterError("bases: give at least one base rate")
    estimates = {name: ais_log_partition(W, b, c, copy.deepcopy(rng), n_runs, n_betas, data)
                 for name, data in bases.items()}
    best = max(estimates, key=lambda k: estimates[k].log_z)
    est, floor = estimates[best], None
    if floor_from is not None:
        floor = log_partition_floor(W, b, c, floor_from, copy.deepcopy(rng), floor_steps)
        if est.log_z < floor:
            warnings.warn(f"{where}: AIS log Z {est.log_z:.1f} is below {floor:.1f}, a certain lower bound from "
                          f"Gibbs chains: AIS missed modes of the model and its test log-probability is too high; "
                          f"{hint}", stacklevel=2)
    return BestAIS(best, est, {k: e.log_z for k, e in estimates.items()}, floor)
