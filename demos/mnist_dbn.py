"""A deep belief net on MNIST (Hinton, Osindero and Teh 2006): train, test, and look inside.

Trains (or resumes) a run directory through the same Trainer as ``neurosim dbn
train``, or just reads it if that run is finished (any run: ``--dir`` of a
``neurosim dbn train --out``), then reports the test errors and draws:

* ``filters.png``: the first layer's recognition weights, one 28x28 tile per hidden unit;
* ``samples.png``: one row per digit class, the label clamped in the top RBM, an image
  every ``--gap`` steps of alternating Gibbs sampling;
* ``fantasy.png``: the net dreaming from random pixels with no label clamped: an
  up-pass, then the top RBM free-running, a down pass every ``--gap`` steps;
* ``misclassified.png``: test digits the generative model gets wrong, with its guess;
* ``curves.png``: learning curves (reconstruction error of each greedy RBM, training
  error during fine-tuning) and the speed of every stage.

``--no-train`` draws a run as it stands, say one still training in another process.
``--quick`` (the default) is a small run (10,000 digits, a few epochs: 70 seconds on
two cores here, 6.7% generative and 4.3% backprop test error); ``--full`` is the
``hinton2006`` preset on all 60,000 (about 3.2 hours on two cores: 2.3 for the
generative stages, 42-49 minutes for backprop; the machine's speed varies by up to 2x).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurosim.data import load_mnist  # noqa: E402
from neurosim.machines.dbn import DeepBeliefNet, sigmoid  # noqa: E402
from neurosim.machines.dbn_train import PRESETS, Trainer, load_run  # noqa: E402
from neurosim.viz import scaled_rows, tiles  # noqa: E402

QUICK = dict(pretrain_epochs=6, updown_epochs=2, backprop_epochs=10)


def save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)


def draw_filters(dbn: DeepBeliefNet, path: Path, n: int = 100) -> None:
    W = scaled_rows(dbn.R[0][:, :n].T)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(tiles(W, (28, 28), 10), cmap="gray")
    ax.set_title(f"first-layer recognition weights ({n} of {dbn.R[0].shape[1]} units)")
    ax.axis("off")
    save(fig, path)


def draw_samples(dbn: DeepBeliefNet, path: Path, rng, cols: int, gap: int) -> None:
    frames = dbn.generate(np.arange(10), rng, n_steps=cols * gap, record_every=gap)
    grid = np.stack(frames, axis=1).reshape(10 * cols, -1)
    fig, ax = plt.subplots(figsize=(cols * 0.7, 7.5))
    ax.imshow(tiles(grid, (28, 28), cols), cmap="gray_r")
    ax.set_title(f"label clamped (one row per digit), an image every {gap} Gibbs steps")
    ax.axis("off")
    save(fig, path)


def draw_fantasy(dbn: DeepBeliefNet, path: Path, rng, cols: int, gap: int) -> None:
    pen = dbn.up(rng.random((1, dbn.sizes[0])).astype(np.float32), rng)[-1]
    lab = np.full((1, dbn.n_labels), 1.0 / dbn.n_labels, dtype=np.float32)
    images = []
    for step in range(1, cols * gap + 1):
        h = (rng.random((1, dbn.sizes[-1])) < sigmoid(pen @ dbn.W + lab @ dbn.U + dbn.c)).astype(np.float32)
        pen = (rng.random(pen.shape) < sigmoid(h @ dbn.W.T + dbn.b_pen)).astype(np.float32)
        x = h @ dbn.U.T + dbn.b_lab
        lab = (np.exp(x - x.max()) / np.exp(x - x.max()).sum()).astype(np.float32)
        if step % gap == 0:
            images.append(dbn.down(pen, rng)[0])
    fig, ax = plt.subplots(figsize=(cols * 0.7, 1.2))
    ax.imshow(tiles(np.array(images), (28, 28), cols), cmap="gray_r")
    ax.set_title(f"a fantasy from random pixels, no label clamped (every {gap} steps)")
    ax.axis("off")
    save(fig, path)


def draw_misclassified(X, labels, guess, path: Path, n: int = 40) -> None:
    wrong = np.flatnonzero(guess != labels)[:n]
    fig, axes = plt.subplots(4, 10, figsize=(9, 4.4))
    for ax, k in zip(axes.flat, list(wrong) + [None] * (40 - len(wrong))):
        ax.axis("off")
        if k is not None:
            ax.imshow(X[k].reshape(28, 28), cmap="gray_r")
            ax.set_title(f"{labels[k]}→{guess[k]}", fontsize=8)
    fig.suptitle(f"misclassified test digits (true→guess), {np.sum(guess != labels)} in all")
    save(fig, path)


def draw_curves(history: list[dict], path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    stages = list(dict.fromkeys(h["stage"] for h in history))
    for stage in stages:
        pts = [h for h in history if h["stage"] == stage]
        key = "reconstruction_error" if "reconstruction_error" in pts[0] else "train_error"
        line, = a.plot([p["epoch"] for p in pts], [p.get(key, np.nan) for p in pts], "o-", ms=3,
                       label=f"{stage} ({key.replace('_', ' ')})")
        if "valid_error" in pts[0]:
            a.plot([p["epoch"] for p in pts], [p["valid_error"] for p in pts], "--", color=line.get_color(),
                   label=f"{stage} (held-out error)")
        b.bar(stage, np.median([p["samples_per_s"] for p in pts]))
    a.set(xlabel="epoch of the stage", yscale="log",
          title="learning curves (first 1000 training digits; dashed: held out)")
    a.legend(fontsize=7)
    b.set(ylabel="samples / s (median epoch)", title="speed of each stage")
    save(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", default="out/mnist_dbn/run", help="run directory (resumed if it exists)")
    p.add_argument("--full", action="store_true", help="the hinton2006 preset on all 60,000 digits")
    p.add_argument("--limit", type=int, default=None, help="training digits (quick: 10,000)")
    p.add_argument("--test-limit", type=int, default=None, help="test digits (default: all 10,000)")
    p.add_argument("--hidden", default=None, help="hidden sizes, top last (default 500,500,2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gap", type=int, default=100, help="Gibbs steps between shown samples")
    p.add_argument("--out", default="out/mnist_dbn", help="where the figures go")
    p.add_argument("--no-train", action="store_true",
                   help="draw the run in --dir as it stands (unfinished, or training elsewhere)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    run_dir, out = Path(args.dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = PRESETS["hinton2006"]
    if not args.full:
        recipe = type(recipe)(**{**recipe.__dict__, **QUICK, "seed": args.seed})
    if args.hidden:
        recipe = type(recipe)(**{**recipe.__dict__, "hidden": tuple(int(h) for h in args.hidden.split(","))})
    limit = args.limit if args.limit or args.full else 10000
    started = (run_dir / "checkpoint.npz").exists()
    if args.no_train and not started:
        p.error(f"--no-train: {run_dir} holds no run (no checkpoint.npz)")
    if not args.no_train and not (started and load_run(run_dir).finished):
        X, labels = load_mnist("train", limit=limit)    # train, or resume an unfinished run
        Trainer(recipe, X, labels, run_dir).run()
    run = load_run(run_dir)
    Xt, yt = load_mnist("test", limit=args.test_limit)
    guess = run.dbn.predict(Xt)
    result = {"run": str(run_dir), "reached": run.reached, **run.test_errors(Xt, yt), "seconds": run.progress.seconds}
    rng = np.random.default_rng(args.seed)
    draw_filters(run.dbn, out / "filters.png")
    draw_samples(run.dbn, out / "samples.png", rng, cols=10, gap=args.gap)
    draw_fantasy(run.dbn, out / "fantasy.png", rng, cols=12, gap=args.gap)
    draw_misclassified(Xt, yt, guess, out / "misclassified.png")
    draw_curves(run.progress.history, out / "curves.png")
    bp = result["test_error_backprop"]
    print(json.dumps(result, indent=2) if args.json else
          f"test error: generative {100 * result['test_error_generative']:.2f}%, backprop "
          + ("-" if bp is None else f"{100 * bp:.2f}%"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
