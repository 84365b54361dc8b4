"""Nonlinear conjugate gradient, the optimiser of the published backprop fine-tuning
(``backpropclassify.m`` calls Rasmussen's ``minimize.m`` for 3 line searches per
minibatch of 1000).

Polak-Ribiere directions, restarted along the steepest descent whenever they stop
going downhill (PR+, Nocedal and Wright 2006, eq. 5.45), and a line search that
brackets and then zooms by cubic interpolation until the strong Wolfe conditions hold
(Algorithms 3.5 and 3.6; eq. 3.7 with ``c1 = 0.05``, ``c2 = 0.1``, the constants of
``minimize.m``). Each line search starts from the step the previous one took, scaled by
the ratio of the slopes (eq. 3.60).

>>> import numpy as np
>>> A = np.diag([1.0, 10.0, 100.0]); b = np.ones(3)
>>> x, f = minimize(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(3), 10)
>>> bool(np.allclose(x, np.linalg.solve(A, b), atol=1e-6))
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["minimize", "wolfe_step"]

Objective = Callable[[np.ndarray], "tuple[float, np.ndarray]"]
C1, C2 = 0.05, 0.1          # sufficient decrease, curvature (strong Wolfe)
EXTRAPOLATE = 3.0           # a bracketing step grows at most this much
RATIO = 10.0                # the next first step grows at most this much
MAX_EVALS = 20              # function evaluations per line search


def minimize(fg: Objective, x: np.ndarray, line_searches: int) -> tuple[np.ndarray, list[float]]:
    """Minimise ``f`` from ``x`` with ``line_searches`` conjugate-gradient line searches;
    ``fg(x)`` returns ``(f(x), grad f(x))``. Returns the last point and ``f`` before and
    after each line search; stops early where no step lowers ``f``."""
    f, g = fg(x)
    d = -g
    slope = _dot(g, d)
    step = 1.0 / (1.0 - slope)
    history = [float(f)]
    for _ in range(line_searches):
        if slope >= 0:                       # zero gradient (or nothing left to descend)
            break
        found = wolfe_step(fg, x, d, f, slope, step)
        if found is None:
            break
        step, x, f, g_new = found
        beta = max(0.0, _dot(g_new, g_new - g) / _dot(g, g))          # PR+
        d, g = beta * d - g_new, g_new
        new_slope = _dot(g, d)
        if new_slope >= 0:                   # not downhill: restart along -g
            d, new_slope = -g, -_dot(g, g)
        step *= min(RATIO, slope / new_slope) if new_slope < 0 else 1.0
        slope = new_slope
        history.append(float(f))
    return x, history


def wolfe_step(fg: Objective, x: np.ndarray, d: np.ndarray, f0: float, slope0: float,
               step: float) -> tuple[float, np.ndarray, float, np.ndarray] | None:
    """A step ``a`` along the descent direction ``d`` meeting the strong Wolfe
    conditions, found by bracketing then zooming (Nocedal and Wright, Algorithms 3.5
    and 3.6). Returns ``(a, x + a d, f, grad)``, or, after ``MAX_EVALS`` evaluations,
    the lowest point found if it lowers ``f`` (``None`` if none does)."""
    lo = (0.0, f0, slope0)                   # (step, f, slope): the best so far
    hi = None
    best = None
    a = step
    for _ in range(MAX_EVALS):
        x_a = x + a * d
        f, g = fg(x_a)
        s = _dot(g, d)
        if np.isfinite(f) and f < f0 and (best is None or f < best[2]):
            best = (a, x_a, f, g)
        if not np.isfinite(f) or f > f0 + C1 * a * slope0 or f >= lo[1]:
            hi = (a, f, s)                   # too far: the minimum is bracketed
        elif abs(s) <= -C2 * slope0:
            return a, x_a, float(f), g       # strong Wolfe: done
        else:
            if s * (a - lo[0]) >= 0:         # past a minimum: the old low end bounds it
                hi = lo
            lo = (a, f, s)
        a = _next_step(lo, hi)
    return None if best is None else (best[0], best[1], float(best[2]), best[3])


def _next_step(lo: tuple, hi: tuple | None) -> float:
    """The next trial step: without a bracket, ``EXTRAPOLATE`` times the last; inside
    one, cubic interpolation kept a tenth of its width from either end (else bisection)."""
    if hi is None:
        return lo[0] * EXTRAPOLATE
    a, b = lo[0], hi[0]
    t = _cubic_min(lo, hi) if np.isfinite(hi[1]) else None
    margin = 0.1 * abs(b - a)
    if t is None or not min(a, b) + margin <= t <= max(a, b) - margin:
        t = 0.5 * (a + b)                    # bisect
    return t


def _cubic_min(p: tuple, q: tuple) -> float | None:
    """The minimiser of the cubic through ``(a, f, f')`` at both points (Nocedal and
    Wright eq. 3.59), or ``None`` where it has none."""
    (a, fa, da), (b, fb, db) = p, q
    d1 = da + db - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if disc < 0 or a == b:
        return None
    d2 = np.sign(b - a) * np.sqrt(disc)
    denom = db - da + 2 * d2
    return None if denom == 0 else float(b - (b - a) * (db + d2 - d1) / denom)


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u.astype(np.float64, copy=False), v.astype(np.float64, copy=False)))
