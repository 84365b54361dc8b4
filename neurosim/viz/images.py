"""Samples as pictures: rows of binary (or grey) images tiled into one array.

>>> import numpy as np
>>> tiles(np.ones((3, 4)), (2, 2), cols=2).shape      # two rows of two 2x2 images, 1 pixel apart
(5, 5)
>>> scaled_rows(np.array([[-2.0, 0.0, 2.0], [1.0, 1.0, 1.0]])).round(6)   # each row to its own range
array([[0. , 0.5, 1. ],
       [0. , 0. , 0. ]])
>>> picture_shape([f"p{r}{c}" for r in range(4) for c in range(8)]), picture_shape(["a"] * 784)
((4, 8), (28, 28))
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

__all__ = ["tiles", "scaled_rows", "picture_shape"]

_PIXEL = re.compile(r"p(\d)(\d)")   # the built-in data sets' pixel names, p{row}{col}


def tiles(images: np.ndarray, shape: tuple[int, int], cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """``images`` (one flattened ``shape`` image a row) in one array, ``cols`` a row,
    ``pad`` pixels of ``fill`` between them."""
    h, w = shape
    rows = -(-len(images) // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), fill, dtype=float)
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = np.reshape(image, shape)
    return out


def scaled_rows(W: np.ndarray) -> np.ndarray:
    """Each row of ``W`` mapped linearly onto [0, 1], its smallest entry 0 and its largest 1
    (a constant row: 0), as float64: weight filters, each tile to its own range."""
    W = np.asarray(W, dtype=np.float64)
    low = W.min(axis=1, keepdims=True)
    return (W - low) / (W.max(axis=1, keepdims=True) - low + 1e-12)


def picture_shape(units: Sequence[str]) -> tuple[int, int] | None:
    """The (rows, columns) ``units`` form as a picture, row-major: from pixel names
    ``p{row}{col}`` (all of them, in order), else the side of a square; None if neither."""
    cells = [_PIXEL.fullmatch(u) for u in units]
    if units and all(cells):
        rows, cols = max(int(m[1]) for m in cells) + 1, max(int(m[2]) for m in cells) + 1
        if list(units) == [f"p{r}{c}" for r in range(rows) for c in range(cols)]:
            return rows, cols
    side = math.isqrt(len(units))
    return (side, side) if units and side * side == len(units) else None
