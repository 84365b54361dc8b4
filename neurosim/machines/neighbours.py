"""The k-nearest-neighbour error of codes: whether a code keeps the class structure
(Hinton and Salakhutdinov 2006 ask it of the deep autoencoder's 30-D codes against
PCA's). Euclidean distances, computed a block of test cases at a time so that memory
stays bounded (:data:`CELLS` distances per block) however many cases there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError
from .base import FINITE, check_number, check_rows

__all__ = ["knn_error", "knn_predict", "CELLS"]

CELLS = 1 << 23          # test x training distances per block: 64 MB of float64 (about 140 test digits x 60,000)


def _labels(y: Any, n: int, what: str, rows: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ParameterError(f"{what} must be one label per row of {rows}: {n} rows, got shape {y.shape}")
    return y


def _nearest(train: np.ndarray, squares: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """Indices of each test row's ``k`` nearest training rows, nearest first (equal
    distances among them: the lower index first), ranked by ``|x - t|^2 - |x|^2 = |t|^2 - 2 x.t``
    (``squares``: the training rows' ``|t|^2``)."""
    d = test @ train.T
    d *= -2
    d += squares
    if k == 1:                                                           # the default: argmin is 40 times faster
        return d.argmin(axis=1)[:, None]
    near = np.argpartition(d, k - 1, axis=1)[:, :k]
    order = np.lexsort((near, np.take_along_axis(d, near, axis=1)), axis=1)
    return np.take_along_axis(near, order, axis=1)


def knn_predict(train_codes: Any, train_labels: Any, test_codes: Any, k: int = 1) -> np.ndarray:
    """The class of each test row by a majority vote of its ``k`` nearest training rows
    (Euclidean), a tie going to the tied class whose member is nearest."""
    train = check_rows(train_codes, "train_codes", np.float64, values=FINITE)
    test = check_rows(test_codes, "test_codes", np.float64, n_columns=train.shape[1], values=FINITE,
                      owner="the training codes")
    y = _labels(train_labels, len(train), "train_labels", "train_codes")
    k = check_number("k", k, 1, integer=True)
    if k > len(train):
        raise ParameterError(f"k = {k} nearest neighbours, but there are only {len(train)} training codes")
    classes, y = np.unique(y, return_inverse=True)
    out = np.empty(len(test), np.intp)
    step, squares = max(1, CELLS // len(train)), (train ** 2).sum(axis=1)
    for start in range(0, len(test), step):
        votes = y[_nearest(train, squares, test[start:start + step], k)]          # rows x k, nearest first
        rows = np.arange(len(votes))[:, None] * len(classes)
        counts = np.bincount((rows + votes).ravel(), minlength=len(votes) * len(classes)).reshape(len(votes), -1)
        tops = np.take_along_axis(counts, votes, axis=1) == counts.max(axis=1, keepdims=True)
        out[start:start + step] = votes[np.arange(len(votes)), tops.argmax(axis=1)]
    return classes[out]


def knn_error(train_codes: Any, train_labels: Any, test_codes: Any, test_labels: Any, k: int = 1) -> float:
    """The fraction of test rows whose label differs from :func:`knn_predict`'s vote."""
    guess = knn_predict(train_codes, train_labels, test_codes, k)
    return float(np.mean(guess != _labels(test_labels, len(guess), "test_labels", "test_codes")))
