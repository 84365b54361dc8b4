"""Restarts chosen on held-out likelihood.

Learning in nets with hidden units has local minima: the 4-2-4 encoder's two patterns
sharing a hidden code (Ackley, Hinton and Sejnowski 1985), the shifter's first layer
that never finds every shifted pair (Dayan et al. 1995, Appendix A). The remedy is
the learner's own: train several candidates from independent starts and keep the one
that gives held-out data the highest likelihood, ``(1/N) sum_n log P(v_n)`` (no labels).

:func:`best_of` is written over a "train once" callable, so that a procedure
(``neurosim.learning.procedures.train``), the compiled backend and an estimator's
``fit`` can all use it::

    best_of(lambda rng: Machine(random_state=rng).fit(X_train),
            lambda m: float(m.score_samples(X_held).mean()), restarts=4, rng=rng)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np

__all__ = ["Choice", "best_of", "split_held_out"]

T = TypeVar("T")


@dataclass(frozen=True)
class Choice(Generic[T]):
    """The kept candidate, every candidate (in order) and their held-out scores."""

    best: T
    index: int
    candidates: list[T]
    scores: list[float]


def best_of(train_once: Callable[[np.random.Generator], T], score: Callable[[T], float], restarts: int,
            rng: np.random.Generator) -> Choice[T]:
    """Train ``restarts`` candidates, the k-th with the k-th generator spawned from
    ``rng`` (independent streams), and keep the one of highest ``score`` (the first on
    a tie; a NaN score never wins). One restart: ``train_once(rng)``, nothing scored."""
    if restarts == 1:
        only = train_once(rng)
        return Choice(only, 0, [only], [])
    candidates, scores = [], []
    for r in rng.spawn(restarts):  # each scored as soon as trained: progress can be reported
        candidates.append(train_once(r))
        scores.append(float(score(candidates[-1])))
    index = int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))
    return Choice(candidates[index], index, candidates, scores)


def split_held_out(rows: np.ndarray, fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(training rows, held-out rows)``: ``round(fraction * n)`` rows chosen at random
    (at least one, and at least one left to train on), both in their original order."""
    n = len(rows)
    k = min(max(1, round(fraction * n)), n - 1)
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, size=k, replace=False)] = True
    return rows[~held], rows[held]
