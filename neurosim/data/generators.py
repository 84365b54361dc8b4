"""Built-in data sets: the shifter, bars and stripes, and the 4-2-4 encoder.

Every generator is called ``generator(rng, n=None, **params)`` and returns a
:class:`Dataset`. With ``n=None`` it enumerates its distribution: every distinct
pattern once, with its exact probability in ``probs``, the ground truth for exact
``KL(data || model)``. With an integer ``n`` it draws ``n`` independent cases from
that distribution, using ``rng`` (a :class:`numpy.random.Generator`) and never
global state: the same seed gives the same cases.

Image data sets name their pixels ``p{row}{col}``, row-major, row 0 at the top of
the picture and column 0 at its left (``p00 .. p37`` for the 4 x 8 shifter).

Example
-------
>>> import numpy as np
>>> from neurosim.data import generate
>>> cases = generate("shifter", np.random.default_rng(0), n=5)
>>> cases.data.shape, cases.names[:3], cases.labels.shape
((5, 32), ['p00', 'p01', 'p02'], (5,))
>>> exact = generate("bars-stripes", None)
>>> exact.n_cases, float(exact.probs.sum())
(14, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import NeurosimError

__all__ = ["Dataset", "DataError", "GENERATORS", "generate", "shifter", "shifter_entropy_nats",
           "shift_direction", "is_valid_shift", "bars_stripes", "encoder_424",
           "empirical_distribution", "LEFT", "RIGHT"]

LEFT, RIGHT = 0, 1
"""Shift labels of the shifter: the top row is the bottom row moved left (0) or right (1)."""

_MAX_ENUMERATED_COLS = 20


class DataError(NeurosimError):
    """Training data cannot be made or read: unknown data set, bad file, bad value.

    A file's errors start with ``file:`` or ``file:line:``.
    """


@dataclass(frozen=True, eq=False)
class Dataset:
    """Binary training cases over named visible units.

    Parameters
    ----------
    name : str
        The data set's name (a built-in's name, or a file's stem).
    names : list of str
        Visible unit names, in column order.
    data : ndarray of int8, shape (n_cases, n_visible)
        One case per row, entries 0 or 1.
    probs : ndarray of float, shape (n_cases,), optional
        Exact probability of each row when ``data`` enumerates a distribution
        (distinct rows, probabilities summing to 1); ``None`` for drawn or read cases.
    labels : ndarray of int, shape (n_cases,), optional
        A hidden cause of each case, when the generator knows it (the shifter's
        direction, :data:`LEFT` or :data:`RIGHT`).

    Raises
    ------
    DataError
        Shapes, names, values or probabilities that do not fit together.
    """

    name: str
    names: list[str]
    data: np.ndarray
    probs: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        data = self.data
        if data.ndim != 2 or data.dtype != np.int8 or not np.isin(data, (0, 1)).all():
            raise DataError(f"data set {self.name!r}: data must be a 2-D int8 array of 0/1, got "
                            f"{data.dtype} of shape {data.shape}")
        if len(self.names) != data.shape[1] or len(set(self.names)) != len(self.names):
            raise DataError(f"data set {self.name!r}: {data.shape[1]} columns need as many distinct "
                            f"names, got {self.names}")
        for what, column in (("probs", self.probs), ("labels", self.labels)):
            if column is not None and column.shape != (data.shape[0],):
                raise DataError(f"data set {self.name!r}: {what} of shape {column.shape} for "
                                f"{data.shape[0]} cases")
        if self.probs is not None and not np.isclose(self.probs.sum(), 1.0):
            raise DataError(f"data set {self.name!r}: probs sum to {self.probs.sum()}, not 1")

    @property
    def n_cases(self) -> int:
        return self.data.shape[0]

    @property
    def n_visible(self) -> int:
        return self.data.shape[1]


# -- helpers shared by the generators -------------------------------------------------
def _count(n: object) -> int:
    """Check a number of cases: a positive integer."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"n must be a positive whole number of cases, got {n!r}")
    return int(n)


def _require_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"drawing n cases needs rng, a numpy.random.Generator, got {rng!r}")


def _pixel_names(rows: int, cols: int) -> list[str]:
    """``p{row}{col}`` row-major; indices zero-padded so that names stay distinct."""
    wr, wc = len(str(rows - 1)), len(str(cols - 1))
    return [f"p{r:0{wr}d}{c:0{wc}d}" for r in range(rows) for c in range(cols)]


def _all_binary(width: int) -> np.ndarray:
    """All ``2**width`` binary vectors, in counting order, most significant bit first."""
    return ((np.arange(2 ** width)[:, None] >> np.arange(width - 1, -1, -1)) & 1).astype(np.int8)


def _enumerated(dataset: Dataset, rng: np.random.Generator | None, n: int | None) -> Dataset:
    """``dataset`` itself for ``n=None``, else ``n`` cases drawn from its ``probs``."""
    if n is None:
        return dataset
    n = _count(n)
    _require_rng(rng)
    rows = rng.choice(dataset.n_cases, size=n, p=dataset.probs)
    return Dataset(dataset.name, dataset.names, dataset.data[rows])


def empirical_distribution(data: np.ndarray,
                           weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The distribution of the rows of ``data``: distinct rows and their probabilities.

    Parameters
    ----------
    data : ndarray, shape (n_cases, n_visible)
    weights : ndarray, shape (n_cases,), optional
        Weight (count or probability) of each row; 1 each by default.

    Returns
    -------
    rows : ndarray, shape (n_distinct, n_visible)
        The distinct rows in lexicographic order (deterministic), dtype of ``data``.
    probs : ndarray of float, shape (n_distinct,)
        Total weight of each distinct row, normalised to sum to 1.

    Examples
    --------
    >>> rows, probs = empirical_distribution(np.array([[1, 0], [0, 1], [1, 0], [1, 0]]))
    >>> rows.tolist(), probs.tolist()
    ([[0, 1], [1, 0]], [0.25, 0.75])
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] == 0:
        raise DataError(f"empirical distribution: need a 2-D array with at least one row, got "
                        f"shape {data.shape}")
    rows, inverse = np.unique(data, axis=0, return_inverse=True)
    w = np.ones(len(data)) if weights is None else np.asarray(weights, dtype=float)
    totals = np.bincount(inverse.ravel(), weights=w, minlength=len(rows))
    return rows, totals / totals.sum()


# -- the shifter -----------------------------------------------------------------------
def _check_shifter(rows: int, cols: int, p_on: float) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 2 or rows % 2:
        raise DataError(f"shifter: rows must be an even number >= 2, got {rows!r}")
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise DataError(f"shifter: cols must be a positive integer, got {cols!r}")
    if not 0 < p_on < 1:
        raise DataError(f"shifter: p_on must lie strictly between 0 and 1, got {p_on!r}")


def _shifter_images(bottom: np.ndarray, labels: np.ndarray, rows: int) -> np.ndarray:
    """Flattened images: the upper half of the rows shows the shifted bottom row.

    Left (``LEFT``): ``top[c] = bottom[(c + 1) % cols]``; right (``RIGHT``):
    ``top[c] = bottom[(c - 1) % cols]``.
    """
    top = np.where(labels[:, None] == RIGHT, np.roll(bottom, 1, axis=1), np.roll(bottom, -1, axis=1))
    half = rows // 2
    return np.hstack([np.tile(top, (1, half)), np.tile(bottom, (1, half))]).astype(np.int8)


def _shifter_distribution(rows: int, cols: int, p_on: float) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct shifter image and its exact probability, by enumeration.

    Each of the ``2**cols`` bottom rows (probability ``p_on**k (1 - p_on)**(cols - k)``
    with ``k`` pixels on) is paired with each shift (probability 1/2); images that
    two pairs share (bottom rows of period 1 or 2, whose left and right shifts agree)
    add up their probabilities.
    """
    if cols > _MAX_ENUMERATED_COLS:
        raise DataError(f"shifter: enumerating 2**{cols} bottom rows is too many "
                        f"(cols <= {_MAX_ENUMERATED_COLS}); give n to draw cases instead")
    bottom = _all_binary(cols)
    on = bottom.sum(axis=1)
    p_bottom = p_on ** on * (1 - p_on) ** (cols - on)
    labels = np.repeat([LEFT, RIGHT], len(bottom))
    images = _shifter_images(np.vstack([bottom, bottom]), labels, rows)
    return empirical_distribution(images, np.concatenate([p_bottom, p_bottom]) / 2)


def shifter(rng: np.random.Generator | None, n: int | None = None, rows: int = 4, cols: int = 8,
            p_on: float = 0.2) -> Dataset:
    """Shift patterns of Dayan, Hinton, Neal & Zemel (1995), figure 1.

    The generative process of the figure's caption: first the direction of the shift
    is chosen, left or right with probability 1/2 each; then each pixel of the bottom
    row is turned on with probability ``p_on``; the top row is the bottom row shifted
    one pixel in that direction with wrap-around, and "the middle two rows are copies
    of the outer rows". The caption treats "the top two rows as a left retina and the
    bottom two rows as a right retina", so row 1 copies the top row (row 0) and row 2
    copies the bottom row (row 3). For other even ``rows`` the upper half of the rows
    copies the top row and the lower half the bottom row.

    Shifted left means ``top[c] = bottom[(c + 1) % cols]`` (the picture moves towards
    column 0); shifted right means ``top[c] = bottom[(c - 1) % cols]``.

    Parameters
    ----------
    rng : numpy.random.Generator or None
        Source of every draw; unused (may be None) when ``n`` is None.
    n : int, optional
        Number of cases to draw. ``None``: enumerate the distribution instead, every
        distinct image once with its exact probability (508 images for 4 x 8: the
        four bottom rows of period 1 or 2 look the same shifted either way).
    rows, cols : int
        Image size; ``rows`` even. The paper's images are 4 x 8.
    p_on : float
        Probability that a bottom-row pixel is on (0.2 in the paper).

    Returns
    -------
    Dataset
        Units ``p00 .. p37`` (row-major, row 0 at the top). Drawn cases carry the
        direction each was generated with in ``labels`` (:data:`LEFT` = 0,
        :data:`RIGHT` = 1); an enumeration carries ``probs`` and no labels.

    Examples
    --------
    >>> cases = shifter(np.random.default_rng(1), 3)
    >>> [is_valid_shift(image) for image in cases.data]
    [True, True, True]
    """
    _check_shifter(rows, cols, p_on)
    names = _pixel_names(rows, cols)
    if n is None:
        images, probs = _shifter_distribution(rows, cols, p_on)
        return Dataset("shifter", names, images, probs=probs)
    n = _count(n)
    _require_rng(rng)
    labels = rng.integers(2, size=n)
    bottom = (rng.random((n, cols)) < p_on).astype(np.int8)
    return Dataset("shifter", names, _shifter_images(bottom, labels, rows), labels=labels)


def shifter_entropy_nats(rows: int = 4, cols: int = 8, p_on: float = 0.2) -> float:
    """Exact entropy, in nats, of the shifter's distribution over images.

    The entropy of the bottom row plus one bit for the shift, less the bit lost on the
    images whose left and right shifts coincide; computed by enumerating every bottom
    row and shift (see :func:`shifter` with ``n=None``). About 4.5792 nats for the
    paper's 4 x 8 images with ``p_on = 0.2``.

    Examples
    --------
    >>> round(shifter_entropy_nats(), 4)
    4.5792
    """
    _check_shifter(rows, cols, p_on)
    _, probs = _shifter_distribution(rows, cols, p_on)
    return float(-(probs * np.log(probs)).sum())


def _grid(pattern: object, rows: int) -> np.ndarray | None:
    """``pattern`` as a 2-D 0/1 array with an even number >= 2 of rows, or None."""
    grid = np.asarray(pattern)
    if grid.ndim == 1 and rows > 0 and grid.size % rows == 0:
        grid = grid.reshape(rows, -1)
    if grid.ndim != 2 or grid.shape[0] < 2 or grid.shape[0] % 2 or grid.shape[1] == 0:
        return None
    return grid if np.isin(grid, (0, 1)).all() else None


def shift_direction(pattern: object, rows: int = 4) -> int | None:
    """The direction of a shifter image: -1 left, 1 right, 0 both, None not a shifter image.

    Parameters
    ----------
    pattern : array_like
        A ``(rows, cols)`` 0/1 image, or one flattened row-major (as in a Dataset).
    rows : int
        Number of rows of a flattened ``pattern``; ignored for a 2-D one.

    Returns
    -------
    int or None
        -1 if the top row is the bottom row shifted left, 1 if shifted right, 0 if
        both (bottom rows of period 1 or 2: all off, all on, 0101..., 1010...), and
        None if the image is not a shifter image: values other than 0/1, an odd
        number of rows, the upper (lower) half of the rows not all equal to the top
        (bottom) row, or a top row that is no one-pixel shift of the bottom row.

    Examples
    --------
    >>> shift_direction([[0, 1, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0]])
    1
    """
    grid = _grid(pattern, rows)
    if grid is None:
        return None
    half = grid.shape[0] // 2
    top, bottom = grid[0], grid[-1]
    if not ((grid[:half] == top).all() and (grid[half:] == bottom).all()):
        return None
    left = np.array_equal(top, np.roll(bottom, -1))
    right = np.array_equal(top, np.roll(bottom, 1))
    return {(True, True): 0, (True, False): -1, (False, True): 1}.get((left, right))


def is_valid_shift(pattern: object, rows: int = 4) -> bool:
    """Whether ``pattern`` is a shifter image (see :func:`shift_direction`)."""
    return shift_direction(pattern, rows) is not None


# -- bars and stripes, the 4-2-4 encoder ----------------------------------------------
def bars_stripes(rng: np.random.Generator | None = None, size: int = 3,
                 n: int | None = None) -> Dataset:
    """Bars and stripes (MacKay 2003): ``size x size`` images of whole columns or rows.

    The generative process: choose bars (vertical: some columns fully on) or stripes
    (horizontal: some rows fully on) with probability 1/2, then turn each of the
    ``size`` columns or rows on with probability 1/2. Each of the ``2**(size + 1)``
    choices has probability ``1 / 2**(size + 1)``; the all-off and all-on images
    arise from both families and so have twice that. There are
    ``2**(size + 1) - 2`` distinct images (14 for size 3).

    Parameters
    ----------
    rng : numpy.random.Generator or None
        Source of the draws; unused (may be None) when ``n`` is None.
    size : int
        Side of the square image.
    n : int, optional
        Number of cases to draw; ``None``: every distinct image once, with ``probs``.

    Returns
    -------
    Dataset
        Units ``p{row}{col}``, row-major, row 0 at the top.

    Examples
    --------
    >>> exact = bars_stripes(size=2)
    >>> exact.data.tolist()
    [[0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 1], [1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    >>> exact.probs.tolist()
    [0.25, 0.125, 0.125, 0.125, 0.125, 0.25]
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"bars-stripes: size must be a positive integer, got {size!r}")
    lines = _all_binary(size)
    bars = np.repeat(lines[:, None, :], size, axis=1)     # image[r, c] = lines[c]
    stripes = np.repeat(lines[:, :, None], size, axis=2)  # image[r, c] = lines[r]
    images, probs = empirical_distribution(np.vstack([bars, stripes]).reshape(-1, size * size))
    return _enumerated(Dataset("bars-stripes", _pixel_names(size, size), images, probs=probs), rng, n)


def encoder_424(rng: np.random.Generator | None = None, n: int | None = None) -> Dataset:
    """The 4-2-4 encoder problem of Ackley, Hinton & Sejnowski (1985).

    Two groups of four visible units, ``a0..a3`` and ``b0..b3`` (V1 and V2 in the
    paper), to be joined through two hidden units. The environment holds four
    equiprobable vectors: in vector ``i`` units ``a{i}`` and ``b{i}`` are on and all
    others off.

    Parameters
    ----------
    rng : numpy.random.Generator or None
        Source of the draws; unused (may be None) when ``n`` is None.
    n : int, optional
        Number of cases to draw; ``None``: the four vectors, each with probability 1/4.

    Examples
    --------
    >>> encoder_424().data[2].tolist()
    [0, 0, 1, 0, 0, 0, 1, 0]
    """
    names = [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    eye = np.eye(4, dtype=np.int8)
    return _enumerated(Dataset("encoder-4-2-4", names, np.hstack([eye, eye]), probs=np.full(4, 0.25)),
                       rng, n)


GENERATORS: dict[str, Callable[..., Dataset]] = {
    "shifter": shifter,
    "bars-stripes": bars_stripes,
    "encoder-4-2-4": encoder_424,
}
"""Built-in data sets by name; each is called ``generator(rng, n=n)``."""


def generate(name: str, rng: np.random.Generator | None, n: int | None = None) -> Dataset:
    """The built-in data set ``name`` with default parameters.

    Parameters
    ----------
    name : str
        A key of :data:`GENERATORS`.
    rng : numpy.random.Generator or None
        Source of every draw; may be None when ``n`` is None.
    n : int, optional
        Number of cases to draw; ``None``: the exact distribution (see module doc).

    Raises
    ------
    DataError
        Unknown name (the message lists the built-in names) or bad ``n``.
    """
    try:
        make = GENERATORS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r} (built-in: {', '.join(GENERATORS)})") from None
    return make(rng, n=n)
