"""An RBM on binarised MNIST: the first-layer weight filters and one-step reconstructions.

Trains ``neurosim.RBM`` (784 binary visible units, ``--hidden`` binary hidden units) by
CD-1 on ``--limit`` training digits, binarised stochastically (each pixel on with
probability its intensity, a fresh seeded draw), with the recipe of Hinton's ``rbm.m`` and
practical guide: minibatches of 100, learning rate 0.05, weight decay 2e-4, momentum 0.5
for the first 5 epochs and 0.9 after (set with ``set_params`` between epochs; the rows
are shuffled each epoch and fed to ``partial_fit`` one minibatch at a time). Then it
writes

* ``filters.png``: the weights of the first 100 hidden units as 28x28 tiles, each tile
  scaled from its own smallest (black) to its largest (white) weight;
* ``reconstructions.png``: one test digit of each class (top) above its one-step
  reconstruction (bottom): ``h`` sampled from ``P(h | v)``, then the visible
  probabilities ``P(v = 1 | h)``;

and prints the reconstruction error (squared difference between a digit and its
reconstruction probabilities, summed over the 784 pixels, mean over test digits), the
training time and the training speed (samples per second). ``--docs`` also writes the two
figures as ``docs/images/mnist_rbm_filters.png`` and ``docs/images/mnist_rbm_reconstructions.png``.

The defaults (500 hidden units, 5 epochs of 20,000 digits) take well under a minute on one
core. Usage: ``python demos/mnist_rbm.py [--hidden 500] [--epochs 5] [--limit 20000]
[--seed 0] [--out out/mnist_rbm] [--docs] [--json]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from neurosim import RBM  # noqa: E402
from neurosim.data import load_mnist  # noqa: E402
from neurosim.viz import scaled_rows, tiles  # noqa: E402

SIDE = 28
BATCH, LEARNING_RATE, WEIGHT_DECAY = 100, 0.05, 2e-4
MOMENTUM, FINAL_MOMENTUM, MOMENTUM_EPOCHS = 0.5, 0.9, 5   # 0.5 for 5 epochs, then 0.9
DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def plot_filters(ax: Axes, weights: np.ndarray, n: int = 100, cols: int = 10) -> Axes:
    """The first ``n`` rows of ``weights`` (hidden units x 784) as tiles, each normalised to
    [0, 1] by its own range."""
    W = scaled_rows(weights[:n])
    ax.imshow(tiles(W, (SIDE, SIDE), min(cols, len(W))), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"weights of {len(W)} of {len(weights)} hidden units (each tile scaled to its range)",
                 fontsize=9)
    ax.axis("off")
    return ax


def plot_reconstructions(ax: Axes, digits: np.ndarray, recon: np.ndarray) -> Axes:
    """``digits`` in the top row, their reconstructions ``recon`` below (ink dark)."""
    ax.imshow(tiles(np.vstack([digits, recon]), (SIDE, SIDE), len(digits), pad=2, fill=0.0), cmap="gray_r",
              vmin=0, vmax=1)
    ax.set_title("test digits (top) and one-step reconstructions P(v = 1 | h), h ~ P(h | v) (bottom)",
                 fontsize=9)
    ax.axis("off")
    return ax


def reconstruct(rbm: RBM, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Visible probabilities after one up-down step: ``h ~ P(h | X)``, ``sigmoid(b + h W)``."""
    h = (rng.random((len(X), rbm.n_components), dtype=np.float32) < rbm.transform(X))
    x = h.astype(rbm.components_.dtype) @ rbm.components_ + rbm.intercept_visible_
    return 1.0 / (1.0 + np.exp(-x))


def reconstruction_error(rbm: RBM, X: np.ndarray, rng: np.random.Generator) -> float:
    """Squared difference between ``X`` and its reconstruction, summed over pixels, mean
    over rows."""
    return float(np.mean(np.sum((X - reconstruct(rbm, X, rng)) ** 2, axis=1)))


def train(rbm: RBM, X: np.ndarray, epochs: int, rng: np.random.Generator,
          X_check: np.ndarray, log=print) -> tuple[list[dict], float]:
    """``epochs`` passes of CD-1 over ``X`` (shuffled each epoch, minibatches of
    ``rbm.batch_size`` through ``partial_fit``), momentum ``MOMENTUM`` for the first
    ``MOMENTUM_EPOCHS`` epochs and ``FINAL_MOMENTUM`` after. Returns one dict per epoch and
    the training seconds (the reconstruction error of ``X_check`` after each epoch is
    not timed)."""
    history, seconds, b = [], 0.0, rbm.batch_size
    for epoch in range(1, epochs + 1):
        rbm.set_params(momentum=MOMENTUM if epoch <= MOMENTUM_EPOCHS else FINAL_MOMENTUM)
        shuffled = X[rng.permutation(len(X))]
        start = time.perf_counter()
        for s in range(0, len(X), b):
            rbm.partial_fit(shuffled[s:s + b])
        took = time.perf_counter() - start
        seconds += took
        err = reconstruction_error(rbm, X_check, rng)
        history.append({"epoch": epoch, "momentum": rbm.momentum, "seconds": round(took, 3),
                        "samples_per_s": round(len(X) / took, 1), "reconstruction_error": round(err, 3)})
        log(f"epoch {epoch}: reconstruction error {err:.2f} (sum over pixels, {len(X_check)} "
            f"training digits), {took:.1f} s, {len(X) / took:,.0f} samples/s")
    return history, seconds


def save(fig, path: Path, also: Path | None = None) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    written = [str(path)]
    if also is not None:
        also.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, also)
        written.append(str(also))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=500, help="hidden units")
    p.add_argument("--epochs", type=int, default=5, help="passes over the training digits")
    p.add_argument("--limit", type=int, default=20000, help="training digits (the first ones)")
    p.add_argument("--test-limit", type=int, default=10000, help="test digits for the error")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/mnist_rbm", help="where the figures go")
    p.add_argument("--docs", action="store_true",
                   help="also write docs/images/mnist_rbm_filters.png and _reconstructions.png")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    X, _ = load_mnist("train", limit=args.limit, binarize=True, rng=rng)
    X_test, y_test = load_mnist("test", limit=args.test_limit, binarize=True, rng=rng)
    rbm = RBM(args.hidden, learning_rate=LEARNING_RATE, batch_size=BATCH, momentum=MOMENTUM,
              weight_decay=WEIGHT_DECAY, random_state=rng, persistent=False, dtype=np.float32)
    history, seconds = train(rbm, X, args.epochs, rng, X[:1000], log)
    test_error = reconstruction_error(rbm, X_test, rng)

    out = Path(args.out)
    picks = [int(np.flatnonzero(y_test == d)[0]) for d in range(10) if np.any(y_test == d)]
    digits = X_test[picks]
    fig, ax = plt.subplots(figsize=(6, 6.3))
    plot_filters(ax, rbm.components_)
    figures = save(fig, out / "filters.png", DOCS / "mnist_rbm_filters.png" if args.docs else None)
    fig, ax = plt.subplots(figsize=(7, 1.8))
    plot_reconstructions(ax, digits, reconstruct(rbm, digits, rng))
    figures += save(fig, out / "reconstructions.png",
                    DOCS / "mnist_rbm_reconstructions.png" if args.docs else None)

    summary = {"hidden": args.hidden, "epochs": args.epochs, "training_digits": len(X),
               "test_digits": len(X_test), "test_reconstruction_error": round(test_error, 3),
               "test_reconstruction_error_per_pixel": round(test_error / X.shape[1], 5),
               "training_seconds": round(seconds, 2),
               "samples_per_s": round(args.epochs * len(X) / seconds, 1),
               "history": history, "figures": figures}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"RBM 784-{args.hidden}, CD-1, {args.epochs} epochs of {len(X):,} digits: "
              f"test reconstruction error {test_error:.2f} per digit ({test_error / X.shape[1]:.4f} "
              f"per pixel, {len(X_test):,} test digits); training {seconds:.1f} s, "
              f"{summary['samples_per_s']:,.0f} samples/s")
        for f in figures:
            print(f"wrote {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
