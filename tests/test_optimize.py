"""Conjugate gradient (neurosim.optimize) on problems with known minima."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurosim.optimize import C1, C2, minimize, wolfe_step


def quadratic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(np.logspace(0, 2, n)) @ Q.T           # condition number 100
    b = rng.standard_normal(n)
    return (lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)), np.linalg.solve(A, b)


def rosenbrock(x):
    f = 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
    return f, np.array([-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]), 200 * (x[1] - x[0] ** 2)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_minimum_reached(seed):
    fg, x_star = quadratic(10, seed)
    x, history = minimize(fg, np.zeros(10), 80)  # inexact line searches: no n-step finish
    assert np.allclose(x, x_star, atol=1e-6)
    assert all(b < a for a, b in zip(history, history[1:]))  # every line search lowers f


def test_rosenbrock_from_the_classic_start():
    x, history = minimize(rosenbrock, np.array([-1.2, 1.0]), 100)
    assert np.allclose(x, [1.0, 1.0], atol=1e-6) and len(history) < 100


def test_cg_beats_the_same_number_of_steepest_descent_steps():
    fg, x_star = quadratic(10, 3)
    x_cg, _ = minimize(fg, np.zeros(10), 10)
    x_sd = np.zeros(10)
    for _ in range(10):                                    # one line search each, along -g
        f, g = fg(x_sd)
        _, x_sd, _, _ = wolfe_step(fg, x_sd, -g, f, -g @ g, 1.0)
    assert np.linalg.norm(x_cg - x_star) < 0.1 * np.linalg.norm(x_sd - x_star)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), step=st.floats(1e-4, 1e4))
def test_line_search_meets_the_strong_wolfe_conditions(seed, step):
    """From any first step, on a smooth non-quadratic function (eq. 3.7)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((20, 5))

    def fg(x):
        z = A @ x
        m = z.max()
        f = m + np.log(np.exp(z - m).sum()) + 0.5 * x @ x
        return f, A.T @ (np.exp(z - m) / np.exp(z - m).sum()) + x

    x = rng.standard_normal(5)
    f0, g0 = fg(x)
    a, x_a, f, g = wolfe_step(fg, x, -g0, f0, -g0 @ g0, step)
    assert np.allclose(x_a, x - a * g0)
    assert f <= f0 + C1 * a * (-g0 @ g0)
    assert abs(g @ -g0) <= C2 * (g0 @ g0) + 1e-12


def test_steps_into_infinity_are_walked_back():
    """f is infinite past x = 2: a huge first step must shrink, not return inf."""
    def fg(x):
        return (np.inf, x) if x[0] >= 2 else ((x[0] - 1.5) ** 2, 2 * (x - 1.5))
    x, history = minimize(fg, np.zeros(1), 5)
    assert np.isfinite(history[-1]) and abs(x[0] - 1.5) < 1e-3


def test_at_a_minimum_nothing_moves():
    x, history = minimize(lambda x: (x @ x, 2 * x), np.zeros(4), 3)
    assert np.array_equal(x, np.zeros(4)) and history == [0.0]
