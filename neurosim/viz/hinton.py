"""Hinton diagrams: a weight matrix as squares, white positive and black negative,
each square's area proportional to the weight's magnitude, on grey (as in figure 4
of Dayan et al. 1995).

Plot functions take and return matplotlib ``Axes``; demos compose them. A mosaic
draws many weight images (one per unit) into a single Axes, which is much faster
than one Axes each.

Example
-------
>>> import numpy as np
>>> from matplotlib.figure import Figure
>>> ax = hinton(Figure().subplots(), np.array([[1.0, -0.5], [0.0, 2.0]]))
>>> len(ax.collections[0].get_paths())   # the grey ground and one square per non-zero weight
4
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.patches import Rectangle

__all__ = ["hinton", "hinton_mosaic", "BACKGROUND", "FILL", "MARGIN"]

BACKGROUND = "#808080"   # grey: zero weight
FILL = 0.85              # side of the largest square, in cells: neighbours never touch
MARGIN = 0.3             # grey border around a diagram, in cells


def _scale(W: np.ndarray, max_weight: float | None) -> float:
    top = float(np.abs(W).max()) if max_weight is None else float(max_weight)
    return top if top > 0 and np.isfinite(top) else 1.0


def _tile(W: np.ndarray, top: float, x0: float, y0: float, patches: list, colours: list) -> None:
    """Grey ground and squares of ``W`` with its top-left cell centred at (x0, y0)."""
    rows, cols = W.shape
    patches.append(Rectangle((x0 - 0.5 - MARGIN, y0 - 0.5 - MARGIN), cols + 2 * MARGIN,
                             rows + 2 * MARGIN))
    colours.append(BACKGROUND)
    for (r, c), w in np.ndenumerate(W):
        side = FILL * min(1.0, np.sqrt(abs(w) / top))
        if side > 0:
            patches.append(Rectangle((x0 + c - side / 2, y0 + r - side / 2), side, side))
            colours.append("white" if w > 0 else "black")


def _check(W: np.ndarray, what: str) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    if not np.isfinite(W).all():
        raise ValueError(f"{what}: weights must be finite")
    return W


def hinton(ax: Axes, weights: np.ndarray, max_weight: float | None = None,
           title: str | None = None, fontsize: float = 8) -> Axes:
    """Draw the 2-d array ``weights`` as a Hinton diagram on ``ax``.

    Row ``r``, column ``c`` of the array is the square at that place in the picture
    (row 0 at the top). A square's side is ``0.9 sqrt(|w| / max_weight)`` of a cell, so
    its area is proportional to ``|w|``; white is positive, black negative.

    Parameters
    ----------
    weights : 2-d array
    max_weight : the magnitude drawn as a full cell (default: the largest ``|w|``).
    title : drawn above the diagram.
    """
    W = _check(weights, "hinton")
    if W.ndim != 2:
        raise ValueError(f"hinton: weights must be a 2-d array, got shape {W.shape}")
    patches: list = []
    colours: list = []
    _tile(W, _scale(W, max_weight), 0.0, 0.0, patches, colours)
    ax.add_collection(PatchCollection(patches, facecolors=colours, edgecolors="none"))
    ax.set_xlim(-0.5 - MARGIN, W.shape[1] - 0.5 + MARGIN)
    ax.set_ylim(W.shape[0] - 0.5 + MARGIN, -0.5 - MARGIN)
    _plain(ax)
    if title is not None:
        ax.set_title(title, fontsize=fontsize)
    return ax


def hinton_mosaic(ax: Axes, images: np.ndarray, shape: tuple[int, int], ncols: int,
                  titles: Sequence[str] | None = None, max_weight: float | None = None,
                  shared: bool = True, gap: float = 1.0, fontsize: float = 7) -> Axes:
    """One Hinton diagram per row of ``images`` (each reshaped to ``shape``), laid out
    ``ncols`` to a row in the single Axes ``ax``, with ``titles`` above each.

    ``shared``: one scale for all tiles (the largest magnitude of all, or ``max_weight``);
    otherwise each tile is scaled to its own largest magnitude."""
    images = _check(images, "hinton_mosaic")
    rows, cols = shape
    if images.ndim != 2 or images.shape[1] != rows * cols:
        raise ValueError(f"hinton_mosaic: images of shape {images.shape} do not reshape to {shape}")
    if ncols < 1:
        raise ValueError(f"hinton_mosaic: ncols must be at least 1, got {ncols}")
    n = len(images)
    nrows = max(1, -(-n // ncols))
    title_room = 0.9 + MARGIN if titles is not None else 0.0
    step_x, step_y = cols + gap, rows + gap + title_room
    patches: list = []
    colours: list = []
    common = _scale(images, max_weight) if shared else None
    for k, image in enumerate(images):
        x0, y0 = (k % ncols) * step_x, (k // ncols) * step_y + title_room
        _tile(image.reshape(shape), common if shared else _scale(image, max_weight), x0, y0,
              patches, colours)
        if titles is not None:
            ax.text(x0 + (cols - 1) / 2, y0 - 0.6 - MARGIN, titles[k], ha="center", va="bottom",
                    fontsize=fontsize)
    ax.add_collection(PatchCollection(patches, facecolors=colours, edgecolors="none"))
    ax.set_xlim(-0.5 - MARGIN - gap / 2, ncols * step_x - 0.5 - gap / 2)
    ax.set_ylim(nrows * step_y - 0.5 - gap / 2, -0.5 - gap / 2)
    _plain(ax)
    return ax


def _plain(ax: Axes) -> None:
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
