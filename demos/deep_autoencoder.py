"""The deep autoencoder on MNIST (Hinton and Salakhutdinov 2006) against logistic PCA and PCA.

Reads two finished runs of ``neurosim autoencoder train`` (``--run DIR``: any code size,
the slides' 30; ``--run2d DIR``: a code layer of 2 units), or trains short ones itself
into ``OUT/run`` and ``OUT/run2d`` through the same :class:`AutoencoderTrainer`
(resumed, or just read once finished). Each run is scored by the same ``evaluate`` as
``neurosim autoencoder evaluate``: mean test squared error per image of the autoencoder,
logistic PCA and PCA, and the k-nearest-neighbour test error of its codes and of PCA's
(neighbours: the training digits the run learned from). Then it draws

* ``deep_autoencoder_reconstructions.png``: the first test digit of each class (top row)
  and its reconstruction by the deep autoencoder, logistic PCA and PCA, each row labelled
  with its mean test squared error (the slides' figure);
* ``deep_autoencoder_codes2d.png``: the 2-D codes of the test digits by the 2-D run's
  autoencoder and by 2-D PCA, coloured by class;
* ``deep_autoencoder_curves.png``: learning curves from the runs' recorded history (the
  squared error of each RBM on its data, and of fine-tuning and logistic PCA on the first
  1000 training digits, per epoch), the final nets' test errors marked.

The quick default trains 784-1000-500-250-30 and, narrower to halve the time,
784-500-250-125-2 on the first 2,000 training digits, 10 epochs per RBM (the recipe's)
and 5 of fine-tuning: about a minute on one core. So short a run is far from the
published 3.00 and does not yet beat PCA (the full recipe: 60,000 digits, 200 epochs of
fine-tuning; the published figures come from such runs, through ``--run`` and ``--run2d``).
``--docs`` also writes the figures into docs/images/. Usage:
``python demos/deep_autoencoder.py [--run DIR] [--run2d DIR] [--limit 2000]
[--pretrain-epochs 10] [--backprop-epochs 5] [--layers 1000,500,250,30]
[--layers2d 500,250,125,2] [--test-limit N] [--k 1] [--seed 0]
[--out out/deep_autoencoder] [--docs] [--json]``
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
from matplotlib.ticker import MaxNLocator, ScalarFormatter  # noqa: E402

from neurosim.cli_args import layer_sizes  # noqa: E402
from neurosim.data import load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.autoencoder import (AutoencoderRecipe, AutoencoderTrainer, Run, encode,  # noqa: E402
                                           evaluate, load_run, pca_codes, pca_decode, reconstruct_net)
from neurosim.viz import tiles  # noqa: E402

SIDE = 28
DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"
NAMES = {"autoencoder": "deep autoencoder", "logistic_pca": "logistic PCA", "pca": "PCA"}
ERRORS = {"autoencoder": "test_squared_error", "logistic_pca": "logistic_pca_test_squared_error",
          "pca": "pca_test_squared_error"}


def reconstructions(run: Run, X: np.ndarray) -> dict[str, np.ndarray]:
    """``X`` reconstructed by the run's autoencoder, logistic PCA and PCA."""
    pca = run.nets["pca"]
    return {"autoencoder": reconstruct_net(run.nets["autoencoder"], X),
            "logistic_pca": reconstruct_net(run.nets["logistic_pca"], X, "logistic_pca"),
            "pca": pca_decode(pca, pca_codes(pca, X))}


def architecture(run: Run) -> str:
    return "-".join(str(n) for n in (len(run.nets["pca"]["mean"]), *run.recipe.layers))


def plot_reconstructions(ax: Axes, digits: np.ndarray, rows: dict[str, np.ndarray], errors: dict) -> Axes:
    """``digits`` in the top row, one row of reconstructions per method below, each
    labelled with its name and mean test squared error."""
    ax.imshow(tiles(np.vstack([digits, *rows.values()]), (SIDE, SIDE), len(digits), pad=2, fill=0.0),
              cmap="gray_r", vmin=0, vmax=1)
    labels = ["test digits"] + [f"{NAMES[k]}\n{errors[ERRORS[k]]:.2f}" for k in rows]
    ax.set_yticks([SIDE / 2 + r * (SIDE + 2) for r in range(len(labels))], labels, fontsize=8)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return ax


def plot_codes(ax: Axes, codes: np.ndarray, labels: np.ndarray, title: str) -> Axes:
    """A scatter of 2-D ``codes``, one colour per class."""
    for d in range(10):
        c = codes[labels == d]
        ax.scatter(c[:, 0], c[:, 1], s=3, color=plt.cm.tab10(d), label=str(d), alpha=0.6, linewidths=0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_pretraining(ax: Axes, history: list[dict], title: str) -> Axes:
    """Each RBM's squared error on its own data (its layer below's probabilities), per epoch."""
    for stage in dict.fromkeys(h["stage"] for h in history if h["stage"].startswith("rbm")):
        pts = [h for h in history if h["stage"] == stage]
        ax.plot([h["epoch"] for h in pts], [h["squared_error"] for h in pts], "o-", ms=3, label=stage)
    ax.set(xlabel="epoch of the RBM", ylabel="squared error of its data per case (first 1000)", yscale="log",
           title=title)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return ax


def plot_fine_tuning(ax: Axes, history: list[dict], errors: dict, title: str) -> Axes:
    """Fine-tuning's and logistic PCA's squared error on the first 1000 training digits per
    epoch; their test errors (stars) and PCA's (a dashed line) after the last epoch."""
    last = max([h["epoch"] for h in history if not h["stage"].startswith("rbm")], default=0)
    for stage, net in (("backprop", "autoencoder"), ("logistic_pca", "logistic_pca")):
        pts = [h for h in history if h["stage"] == stage]
        line, = ax.plot([h["epoch"] for h in pts], [h["squared_error"] for h in pts], "o-", ms=3,
                        label=f"{NAMES[net]} (training)")
        ax.plot([last], [errors[ERRORS[net]]], "*", ms=11, color=line.get_color(), label=f"{NAMES[net]} (test)")
    ax.axhline(errors[ERRORS["pca"]], color="grey", ls="--", label="PCA (test)")
    ax.set(xlabel="epoch of fine-tuning", ylabel="squared error per image (training: first 1000)", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return ax


def save(fig, path: Path, also: Path | None = None) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    if also is None:
        return [str(path)]
    also.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, also)
    return [str(path), str(also)]


def finished(p: argparse.ArgumentParser, flag: str, directory: str, code: int | None = None) -> Run:
    """The finished run in ``directory`` (of a ``code``-unit code layer if given), else one line from ``p.error``."""
    try:
        run = load_run(directory)
    except NeurosimError as exc:
        p.error(f"{flag}: {exc}")
    if not run.finished:
        p.error(f"{flag} {directory}: the run is not finished (it stands at {run.reached}); finish it with "
                f"`neurosim autoencoder train --resume --out {directory}`")
    if code is not None and run.recipe.layers[-1] != code:
        p.error(f"{flag} {directory}: its code layer has {run.recipe.layers[-1]} units ({architecture(run)}), "
                f"not {code}")
    return run


def train(directory: Path, recipe: AutoencoderRecipe, limit: int, log) -> Run:
    """A short run of ``recipe`` on the first ``limit`` training digits into ``directory``
    (resumed if started, read if finished)."""
    AutoencoderTrainer(recipe, load_mnist("train", limit=limit)[0], directory, log=log).run()
    return load_run(directory)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a finished run of `neurosim autoencoder train` (default: train a short one)")
    p.add_argument("--run2d", help="a finished run with a 2-unit code layer (default: train a short one)")
    p.add_argument("--limit", type=int, default=2000, help="training digits of the short runs (the first ones)")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="epochs per RBM of the short runs")
    p.add_argument("--backprop-epochs", type=int, default=5, help="epochs of fine-tuning of the short runs")
    p.add_argument("--layers", type=layer_sizes, default=(1000, 500, 250, 30), help="hidden sizes of the short run")
    p.add_argument("--layers2d", type=layer_sizes, default=(500, 250, 125, 2),
                   help="hidden sizes of the short 2-D run")
    p.add_argument("--test-limit", type=int, default=None, help="test digits (default: all 10,000)")
    p.add_argument("--k", type=int, default=1, help="neighbours in the k-nearest-neighbour vote")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/deep_autoencoder", help="where the figures (and short runs) go")
    p.add_argument("--docs", action="store_true", help="also write the figures into docs/images/")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    if not args.run2d and args.layers2d[-1] != 2:
        p.error(f"--layers2d {','.join(map(str, args.layers2d))}: the code layer (the last) must have 2 units")

    start, out = time.perf_counter(), Path(args.out)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        short = dict(pretrain_epochs=args.pretrain_epochs, backprop_epochs=args.backprop_epochs, seed=args.seed)
        run = finished(p, "--run", args.run) if args.run else None        # both checked before any training
        run2d = finished(p, "--run2d", args.run2d, code=2) if args.run2d else None
        run = run or train(out / "run", AutoencoderRecipe(layers=args.layers, **short), args.limit, log)
        run2d = run2d or train(out / "run2d", AutoencoderRecipe(layers=args.layers2d, **short), args.limit, log)
        Xt, yt = load_mnist("test", limit=args.test_limit)
        results = {name: evaluate(r, Xt, yt, *load_mnist("train", limit=r.n_cases), k=args.k)
                   for name, r in (("run", run), ("run2d", run2d))}
    except NeurosimError as exc:
        p.error(str(exc))

    picks = [int(np.flatnonzero(yt == d)[0]) for d in range(10) if np.any(yt == d)]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    plot_reconstructions(ax, Xt[picks], reconstructions(run, Xt[picks]), results["run"])
    ax.set_title(f"{architecture(run)} autoencoder against {run.recipe.layers[-1]}-D logistic PCA and PCA "
                 f"({run.n_cases:,} training digits); mean test squared error per image", fontsize=9)
    docs = (lambda name: DOCS / name) if args.docs else (lambda name: None)
    figures = save(fig, out / "deep_autoencoder_reconstructions.png", docs("deep_autoencoder_reconstructions.png"))

    r2 = results["run2d"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.3))
    plot_codes(axes[0], encode(run2d.nets["autoencoder"], Xt), yt,
               f"{architecture(run2d)} autoencoder ({run2d.n_cases:,} training digits): "
               f"{args.k}-NN test error {100 * r2['knn_test_error']:.1f}%")
    plot_codes(axes[1], pca_codes(run2d.nets["pca"], Xt), yt,
               f"2-D PCA: {args.k}-NN test error {100 * r2['pca_knn_test_error']:.1f}%")
    axes[1].legend(title="class", loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=4, fontsize=8)
    fig.suptitle(f"codes of {len(Xt):,} test digits")
    figures += save(fig, out / "deep_autoencoder_codes2d.png", docs("deep_autoencoder_codes2d.png"))

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for row, (name, r) in enumerate((("run", run), ("run2d", run2d))):
        plot_pretraining(axes[row, 0], r.progress.history, f"{architecture(r)}: pretraining")
        plot_fine_tuning(axes[row, 1], r.progress.history, results[name],
                         f"{architecture(r)}: fine-tuning ({r.n_cases:,} training digits)")
    fig.tight_layout()
    figures += save(fig, out / "deep_autoencoder_curves.png", docs("deep_autoencoder_curves.png"))

    summary = {name: {"directory": r.directory, "layers": list(r.recipe.layers), "train_cases": r.n_cases,
                      "training_seconds": sum(r.progress.seconds.values()), **results[name]}
               for name, r in (("run", run), ("run2d", run2d))}
    summary.update(test_cases=len(Xt), seconds=time.perf_counter() - start, figures=figures)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name in ("run", "run2d"):
            s = summary[name]
            print(f"{s['directory']}: test squared error per image: deep autoencoder {s['test_squared_error']:.2f}, "
                  f"logistic PCA {s['logistic_pca_test_squared_error']:.2f}, PCA {s['pca_test_squared_error']:.2f}; "
                  f"{args.k}-NN test error of the codes {100 * s['knn_test_error']:.2f}%, of PCA's "
                  f"{100 * s['pca_knn_test_error']:.2f}%")
        print(f"{summary['seconds']:.0f} s; wrote " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
