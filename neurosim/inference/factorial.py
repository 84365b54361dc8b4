"""Factorial (product-of-Bernoullis) approximations of an exact posterior.

A factorial distribution over units ``1..n`` is ``Q(s) = prod_i q_i^s_i (1 - q_i)^(1 - s_i)``:
the units are chosen independently, as a recognition model of the wake-sleep algorithm
chooses them (Hinton 2005, section 4.1). Two factorial distributions approximate a
posterior ``P`` and they differ exactly where explaining away makes ``P`` far from
factorial:

* :func:`moment_matched` minimises ``KL(P || Q)``: ``q_i`` is the exact marginal of unit
  i. This is what the sleep phase of wake-sleep aims at (eq. 11): it averages the
  explanations of a data-vector into "a vague factorial distribution that gives
  significant probability to many poor configurations".
* :func:`mean_field` minimises ``KL(Q || P)``, the looseness of the variational bound of
  eq. 9-10: ``-log p(x) = C(x) - KL(Q || P)``. It picks one explanation and sticks with it.

Everything is computed from the enumerated log probabilities of a
:class:`~neurosim.inference.exact.Posterior`, so it is stable when they are -20 or lower.

Example
-------
>>> from neurosim import load_model, posterior
>>> import numpy as np
>>> post = posterior(load_model("models/earthquake_truck.toml"), {"house_jumps": 1})
>>> moment_matched(post).round(4)
array([0.5, 0.5])
>>> q = mean_field(post, np.random.default_rng(0))
>>> np.sort(q).round(4)
array([1.000e-04, 9.999e-01])
"""

from __future__ import annotations

import numpy as np

from ..errors import InferenceError
from ..numerics import sigmoid
from .exact import Posterior

__all__ = ["moment_matched", "mean_field", "coordinate_sweep", "factorial_probs",
           "factorial_log_probs", "kl", "kl_q_p"]

_BIG = 1e300  # stands in for an infinite log-odds; weights sum to 1, so sums stay finite


def factorial_probs(q: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Probability ``prod_i q_i^s_i (1 - q_i)^(1 - s_i)`` that Q gives each row of ``states``."""
    q = np.asarray(q, dtype=np.float64)
    return np.where(np.asarray(states, dtype=bool), q, 1.0 - q).prod(axis=1)


def factorial_log_probs(q: np.ndarray, states: np.ndarray) -> np.ndarray:
    """``log Q`` of each row of ``states`` (``-inf`` where a unit's q is exactly 0 or 1)."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(np.asarray(states, dtype=bool), np.log(q), np.log1p(-q)).sum(axis=1)


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(p || q) = sum_k p_k log(p_k / q_k)`` in nats; terms with ``p_k = 0`` are 0,
    and the result is ``inf`` if ``q_k = 0`` where ``p_k > 0``."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"kl: p and q have different shapes {p.shape} and {q.shape}")
    on = p > 0
    if np.any(q[on] <= 0):
        return float("inf")
    return float(np.sum(p[on] * (np.log(p[on]) - np.log(q[on]))))


def kl_q_p(q: np.ndarray, post: Posterior) -> float:
    """``KL(Q || P)`` of the factorial Q with marginals ``q`` from the exact posterior:
    the gap between the description cost C(x) of eq. 9 and ``-log p(x)`` (eq. 10).
    Uses ``post.log_probs`` directly, so it is exact when P's probabilities underflow."""
    Q = factorial_probs(q, post.states)
    on = Q > 0
    return float(np.sum(Q[on] * (np.log(Q[on]) - post.log_probs[on])))


def moment_matched(post: Posterior) -> np.ndarray:
    """The factorial Q minimising ``KL(P || Q)``: the product of the exact marginals.

    This is what the sleep phase of wake-sleep (Hinton 2005, section 4.1, eq. 11) tries
    to learn: recognition weights fitted to samples of the generative model match its
    marginals, averaging several explanations into one vague factorial distribution.
    """
    return post.marginal_array()


def _partners(post: Posterior) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each unit i: rows with ``s_i = 1`` and, in the same order, the rows that
    differ from them only in unit i (``s_i = 0``)."""
    states = np.asarray(post.states, dtype=np.int64)
    m, n = states.shape
    code = states @ (1 << np.arange(n - 1, -1, -1, dtype=np.int64))
    if m != 2 ** n or len(np.unique(code)) != m:
        raise InferenceError(f"a factorial fit needs every one of the 2^{n} states of "
                             f"{n} units once; the posterior has {m} rows")
    row = np.empty(m, dtype=np.int64)
    row[code] = np.arange(m)
    out = []
    for i in range(n):
        ones = np.flatnonzero(states[:, i] == 1)
        out.append((ones, row[code[ones] - (1 << (n - 1 - i))]))
    return out


def _sweep(q: np.ndarray, post: Posterior, partners, order) -> np.ndarray:
    q = q.copy()
    states = np.asarray(post.states, dtype=bool)
    for i in order:
        ones, zeros = partners[i]
        others = np.where(states[zeros], q, 1.0 - q)
        others[:, i] = 1.0
        weights = others.prod(axis=1)              # Q without unit i, over the rest
        with np.errstate(invalid="ignore"):
            d = post.log_probs[ones] - post.log_probs[zeros]
        d = np.nan_to_num(d, nan=0.0, posinf=_BIG, neginf=-_BIG)
        q[i] = sigmoid(weights @ d / weights.sum())
    return q


def coordinate_sweep(q: np.ndarray, post: Posterior) -> np.ndarray:
    """One sweep of mean-field coordinate updates, units in order:

        q_i <- sigmoid( E_{Q without i} [ log P(s_i=1, rest) - log P(s_i=0, rest) ] )

    Each update is the exact minimiser of ``KL(Q || P)`` over ``q_i`` with the others
    held fixed, so a sweep never increases it. A mean-field solution is a fixed point.
    """
    q = np.asarray(q, dtype=np.float64)
    return _sweep(q, post, _partners(post), range(len(q)))


def mean_field(post: Posterior, rng: np.random.Generator, restarts: int = 10,
               tol: float = 1e-12, max_sweeps: int = 10_000) -> np.ndarray:
    """The factorial Q minimising ``KL(Q || P)``: the tightest factorial variational
    bound of eq. 9-10 of Hinton (2005), ``C(x) = -log p(x) + KL(Q || P)``.

    Coordinate ascent (see :func:`coordinate_sweep`) from ``restarts`` starting points
    drawn uniformly from ``rng``, each until no ``q_i`` moves by more than ``tol`` (or
    ``max_sweeps``); the best local optimum is returned. KL(Q || P) is zero-forcing:
    where the posterior has two separate explanations, Q picks one.

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        ``q_i = Q(s_i = 1)`` for the units of ``post.units``, in that order.
    """
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    n = len(post.units)
    partners = _partners(post)
    best, best_kl = None, np.inf
    for _ in range(restarts):
        q = rng.random(n)
        for _ in range(max_sweeps):
            new = _sweep(q, post, partners, range(n))
            moved = np.max(np.abs(new - q), initial=0.0)
            q = new
            if moved <= tol:
                break
        gap = kl_q_p(q, post)
        if best is None or gap < best_kl:
            best, best_kl = q, gap
    return best
