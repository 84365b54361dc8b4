"""The few numerical functions every module needs, written once: stable at any input.

>>> import numpy as np
>>> float(sigmoid(np.array(800.0))), float(softplus(np.array(-800.0)))
(1.0, 0.0)
>>> bool(logsumexp(np.array([1000.0, 1000.0])) == 1000.0 + np.log(2))
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["sigmoid", "log_sigmoid", "softplus", "logsumexp", "softmax", "one_of_n", "categorical", "bernoulli"]


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function ``0.5 (1 + tanh(x/2))``: no overflow in float32 or float64; in
    place when ``out`` is given (it may be ``x``)."""
    if out is None:
        return 0.5 * (1 + np.tanh(0.5 * np.asarray(x)))
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log sigmoid(x) = -log(1 + exp(-x))``."""
    return -np.logaddexp(0, -x)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))``."""
    return np.logaddexp(0, x)


def logsumexp(a: np.ndarray, axis: int | None = None):
    """``log sum exp(a)``, over ``axis`` (a float when ``axis`` is None)."""
    a = np.asarray(a)
    top = np.max(a, axis=axis, keepdims=True)
    out = top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))
    return float(out.reshape(())) if axis is None else np.squeeze(out, axis=axis)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of each row."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_of_n(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The unit a softmax group turns on, for each row of inputs ``x`` (rows x units) and
    uniform ``u`` (one a row): ``k`` with probability ``exp(x_k) / sum_l exp(x_l)``
    (:func:`categorical` of the softmax)."""
    return categorical(softmax(x), u)


def categorical(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each row of probabilities ``p`` (rows x units) and uniform ``u`` (one a row), the
    unit ``k`` with probability ``p_k``: the cumulative sum inverted at ``u``."""
    cdf = np.cumsum(p, axis=-1)
    return np.minimum((cdf < np.reshape(u, (-1, 1)) * cdf[:, -1:]).sum(axis=-1), p.shape[-1] - 1)


def bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Binary states ``u < p``, one uniform draw per unit, in ``p``'s dtype."""
    return (rng.random(p.shape, dtype=p.dtype) < p).astype(p.dtype)
