"""Traces and distributions: what a run of a net did, and what it should have done.

Every function takes a matplotlib ``Axes``, draws on it and returns it; none calls
``plt.show()`` or chooses a backend. Demos compose them into figures.

Example
-------
>>> import numpy as np
>>> from matplotlib.figure import Figure
>>> ax = Figure().subplots()
>>> ax = plot_distributions(ax, ["00", "01", "10", "11"],
...                         {"exact": [4.5e-5, 0.49995, 0.49995, 4.5e-5],
...                          "factorial": [0.25, 0.25, 0.25, 0.25]}, log=True)
>>> ax.get_yscale()
'log'
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

__all__ = ["plot_distributions", "plot_state_trace", "plot_running_mean", "change_points"]


def plot_distributions(ax: Axes, labels: Sequence[str], dists: Mapping[str, Sequence[float]],
                       log: bool = False, annotate: bool = True, floor: float | None = None,
                       colors: Sequence[str] | None = None, legend: bool = True) -> Axes:
    """Grouped bars: one group per joint state (``labels``), one bar per distribution.

    Parameters
    ----------
    labels : state names, e.g. bit strings ``"00", "01", ...``
    dists : ``{name: probabilities}``, each as long as ``labels``; drawn in order.
    log : log-scale y axis (for probabilities like 4.5e-5 beside 0.5). A probability of
        exactly 0 gets no bar (and, annotated, the label ``0``).
    annotate : write each probability above its bar.
    floor : bottom of a log axis (default: a third of the smallest positive value).
    legend : draw a legend (off: compose one figure legend from several panels).
    """
    names = list(dists)
    probs = [np.asarray(dists[k], dtype=np.float64) for k in names]
    for name, p in zip(names, probs):
        if p.shape != (len(labels),):
            raise ValueError(f"distribution {name!r} has {p.size} values for {len(labels)} labels")
    x = np.arange(len(labels))
    width = 0.8 / max(len(names), 1)
    positive = np.concatenate([p[p > 0] for p in probs] + [np.ones(1)])
    bottom = (floor if floor is not None else positive.min() / 3) if log else 0.0
    for k, (name, p) in enumerate(zip(names, probs)):
        pos = x + (k - (len(names) - 1) / 2) * width
        color = colors[k] if colors is not None else None
        heights = np.where(p > bottom, p - bottom, 0.0) if log else p
        ax.bar(pos, heights, width, bottom=bottom, label=name, color=color)
        if annotate:
            for xi, pi in zip(pos, p):
                ax.annotate(f"{pi:.2g}", (xi, max(pi, bottom)), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom, 3.0)
    else:
        ax.set_ylim(0.0, 1.1 * max(1e-12, max(p.max(initial=0.0) for p in probs)))
    ax.set_xticks(x, labels)
    ax.set_ylabel("probability" + (" (log scale)" if log else ""))
    if legend:
        ax.legend(fontsize=8)
    return ax


def change_points(times: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the rows where some unit's state changes (and the first and last rows):
    a lossless compression of a binary trace for plotting as steps."""
    times, states = np.asarray(times), np.asarray(states)
    if len(times) == 0:
        return times, states
    keep = np.ones(len(times), dtype=bool)
    keep[1:] = (states[1:] != states[:-1]).any(axis=1)
    keep[-1] = True
    return times[keep], states[keep]


def plot_state_trace(ax: Axes, times: Sequence[float], states: np.ndarray,
                     names: Sequence[str], spacing: float = 1.5,
                     colors: Sequence[str] | None = None) -> Axes:
    """Binary states of a few units over time, one row per unit (first unit on top).

    ``states[k]`` (shape ``(T, n_units)``, 0/1) holds from ``times[k]`` until
    ``times[k + 1]``; each row is drawn as steps. Only the rows where a state changes
    are drawn (:func:`change_points`), so a trace of a million updates plots exactly
    and fast; a change that lasts less than a pixel is still drawn, as a thin spike.
    """
    times = np.asarray(times, dtype=np.float64)
    states = np.asarray(states).reshape(len(times), -1)
    if states.shape[1] != len(names):
        raise ValueError(f"states has {states.shape[1]} columns for {len(names)} names")
    t, s = change_points(times, states)
    n = len(names)
    offsets = spacing * np.arange(n - 1, -1, -1)
    for k, name in enumerate(names):
        color = colors[k] if colors is not None else f"C{k}"
        y = offsets[k] + s[:, k]
        ax.step(t, y, where="post", color=color, lw=0.8)
        ax.fill_between(t, offsets[k], y, step="post", color=color, alpha=0.3, lw=0)
    ax.set_yticks(offsets + 0.5, list(names))
    ax.set_ylim(-0.3, offsets[0] + 1.3 if n else 1.0)
    if len(t):
        ax.set_xlim(t[0], t[-1])
    return ax


def plot_running_mean(ax: Axes, times: Sequence[float], values: Sequence[float],
                      exact: float | None = None, label: str = "running mean",
                      exact_label: str = "exact") -> Axes:
    """The running average of ``values`` against ``times``, with the exact value as a
    dashed line: how an estimate from a chain converges (or does not)."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    mean = np.cumsum(values) / np.arange(1, len(values) + 1)
    ax.plot(times, mean, lw=1.0, label=label)
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=0.8, label=exact_label)
    ax.legend(fontsize=8)
    return ax
