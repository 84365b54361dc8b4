"""A deep Boltzmann machine on MNIST (Salakhutdinov and Hinton 2009): filters, samples, learning curves.

Reads a finished run of ``neurosim dbm train`` (``--run RUN``), or trains a short one
itself into ``OUT/run`` through the same :class:`DBMTrainer` (resumed if started, read if
finished). The learning curves come from ``--evaluation FILE``, the JSON of ``neurosim dbm
evaluate RUN --json --curves``; without it the demo scores the run itself by the same
:func:`evaluate` and :func:`curves`, with its own (cheaper) AIS settings. It draws

* ``dbm_filters.png``: the first layer's weights ``W_1``, one 28x28 tile per unit of
  ``h_1`` (its column of ``W_1``), each tile scaled to its own range;
* ``dbm_samples.png``: the visible probabilities ``p(v = 1 | h_1) = sigmoid(h_1 W_1^T +
  b_0)`` of the saved persistent chains (``dbm.npz``'s ``chains_``), and of fresh chains
  after ``--sweeps`` Gibbs alternations from uniform random states (``sample``);
* ``dbm_curves.png``: the variational bound on test digits of the pretrained machine
  (epoch 0) and every snapshot of joint training, log Z by AIS with the snapshot settings,
  the final machine's bound with the full AIS marked (and with reverse AIS's log Z, the
  lower end of the bracket, if scored); and the fine-tuned classifier's
  training error per epoch (``classifier.npz``'s history), its test error marked.

The short default (784-100-100 on the first 2,000 training digits: 10 epochs per RBM, 20
joint epochs with a snapshot every 4, 20 of fine-tuning; scored on 500 test digits, AIS of
100 runs and 1,000 temperatures) takes 24-39 s on one core (20 s of CPU): 8 s of
training, 2.6 s per AIS (eight: six snapshots, the final machine forward and reverse),
1.4 s for the fresh chains. So short a run says nothing of the published -84.62 nats and
0.95%. Scoring a full 784-500-1000 run here costs about 8 s per
snapshot (AIS at 7.3 ms per temperature); give ``--evaluation`` to use the CLI's.
``--docs`` also writes the figures into docs/images/. Usage:
``python demos/mnist_dbm.py [--run RUN [--evaluation FILE]] [--hidden 100,100] [--limit 2000]
[--pretrain-epochs 10] [--epochs 20] [--finetune-epochs 20] [--snapshot-every 4]
[--test-limit 500] [--ais-runs 100] [--ais-betas 1000] [--reverse-sweeps 1000] [--sweeps 1000]
[--seed 0]
[--out out/mnist_dbm] [--docs] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from neurosim.cli_args import layer_sizes, non_negative_int, positive_int, seed  # noqa: E402
from neurosim.data import load_binary_mnist, load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.base import read_npz_meta  # noqa: E402
from neurosim.machines.dbm import DeepBoltzmannMachine, layer_input  # noqa: E402
from neurosim.machines.dbm_run import (DBMRecipe, DBMTrainer, check_finished, curves, evaluate,  # noqa: E402
                                      snapshots)
from neurosim.numerics import sigmoid  # noqa: E402
from neurosim.outputs import atomic_write, check_out_directory  # noqa: E402
from neurosim.viz import scaled_rows, tiles  # noqa: E402

SIDE = 28
DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"
FIGURES = ("dbm_filters", "dbm_samples", "dbm_curves")
SUMMARY = ("test_logprob_bound_nats", "test_logprob_bound_lower_nats", "logZ_ais", "logZ_ais_std", "logZ_ais_reverse",
           "test_error", "curves")       # the evaluation's fields that the demo prints


def architecture(dbm: DeepBoltzmannMachine) -> str:
    return "-".join(str(len(b)) for b in dbm.biases_)


def visible_probabilities(dbm: DeepBoltzmannMachine, states: np.ndarray) -> np.ndarray:
    """``p(v = 1 | h_1) = sigmoid(h_1 W_1^T + b_0)`` for rows of every unit's state
    (visible first, then ``h_1``, as ``chains_``)."""
    n_v, n_1 = dbm.weights_[0].shape
    return sigmoid(layer_input([None, states[:, n_v:n_v + n_1]], 0, dbm.weights_, dbm.biases_))


def plot_filters(ax: Axes, W: np.ndarray, n: int = 100, cols: int = 10) -> Axes:
    """The first ``n`` columns of ``W`` (784 x units) as tiles, each scaled to its own range."""
    shown = scaled_rows(W[:, :n].T)
    ax.imshow(tiles(shown, (SIDE, SIDE), min(cols, len(shown))), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"first-layer weights W_1 of {len(shown)} of {W.shape[1]} units of h_1 (each tile scaled "
                 f"to its range)", fontsize=9)
    ax.axis("off")
    return ax


def plot_images(ax: Axes, images: np.ndarray, title: str, cols: int = 10) -> Axes:
    """Rows of pixel probabilities as a grid of 28x28 tiles, ink dark."""
    ax.imshow(tiles(images, (SIDE, SIDE), cols, pad=2, fill=0.0), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def plot_bound(ax: Axes, evaluation: dict) -> Axes:
    """The bound of each snapshot (error bars: the AIS estimate's standard deviation of
    log Z), the final machine's bound with the full AIS (a star) and, if the evaluation
    has it, with reverse AIS's log Z (a triangle: the bracket's lower end)."""
    pts = evaluation["curves"]
    ax.errorbar([c["epoch"] for c in pts], [c["logprob_bound_nats"] for c in pts],
                yerr=[c["logZ_ais_std"] for c in pts], fmt="o-", ms=3, capsize=2, label="snapshots")
    ax.plot([pts[-1]["epoch"]], [evaluation["test_logprob_bound_nats"]], "*", ms=11, color="C3",
            label=f"final machine, {evaluation['test_cases']:,} digits, {evaluation['ais_runs']} runs x "
                  f"{evaluation['ais_betas']:,} temperatures: {evaluation['test_logprob_bound_nats']:.2f} nats")
    if "test_logprob_bound_lower_nats" in evaluation:
        ax.plot([pts[-1]["epoch"]], [evaluation["test_logprob_bound_lower_nats"]], "v", ms=8, color="C2",
                label=f"the same, log Z by reverse AIS from the persistent chains: "
                      f"{evaluation['test_logprob_bound_lower_nats']:.2f} nats")
    ax.set(xlabel="epoch of joint training (0: pretrained)", ylabel="mean log p(v) bound (nats)",
           title=f"variational bound on test digits; log Z by AIS, {snapshot_settings(evaluation)}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return ax


def snapshot_settings(evaluation: dict) -> str:
    """How the snapshots were scored, as far as the evaluation's JSON records it."""
    if "curve_betas" not in evaluation:
        return "the snapshot settings of `evaluate --curves`"
    return (f"{evaluation['ais_runs']} runs x {evaluation['curve_betas']:,} temperatures, "
            f"{evaluation['curve_cases']:,} digits")


def plot_fine_tuning(ax: Axes, history: list[dict], test_error: float, test_cases: int) -> Axes:
    """The classifier's training error per epoch of fine-tuning; its test error dashed."""
    ax.plot([h["epoch"] for h in history], [100 * h["train_error"] for h in history], "o-", ms=3,
            label="training (first 10,000 digits at most)")
    ax.axhline(100 * test_error, color="C3", ls="--", label=f"test ({test_cases:,} digits): {100 * test_error:.2f}%")
    ax.set(xlabel="epoch of fine-tuning", ylabel="error (%)", title="discriminative fine-tuning")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return ax


def save(fig, path: Path, docs: bool) -> list[str]:
    """``fig`` as a PNG at ``path`` (and in docs/images/ with ``docs``), written atomically."""
    targets = [path] + ([DOCS / path.name] if docs else [])
    for target in targets:
        atomic_write(target, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return [str(t) for t in targets]


def n_cases(run: Path) -> int:
    """The number of training digits the run learned from (its ``recipe.json``)."""
    return int(json.loads((run / "recipe.json").read_text())["n_cases"])


def score(run: Path, test_limit: int, runs: int, betas: int, reverse_sweeps: int, seed: int) -> dict:
    """The run scored as ``neurosim dbm evaluate RUN --json --curves --limit test_limit
    --runs runs --betas betas --curve-betas betas --reverse-sweeps reverse_sweeps --seed
    seed`` scores it (the same binarised digits, the same draws): the JSON's fields that
    the figures use."""
    rng = np.random.default_rng(seed)
    V_test = load_binary_mnist("test", 0, test_limit)[0]
    X_test, y_test = load_mnist("test", limit=test_limit)
    V_base = load_binary_mnist("train", 0)[0]
    result = evaluate(run, V_test, X_test, y_test, V_base, rng, runs, betas, reverse_sweeps or None)
    return {**result, "test_cases": len(V_test), "ais_runs": runs, "ais_betas": betas, "curve_betas": betas,
            "curve_cases": len(V_test), "curves": curves(run, V_test, V_base, rng, runs, betas)}


def read_evaluation(path: str, run: Path) -> dict:
    """The JSON of ``neurosim dbm evaluate RUN --json --curves``, or a NeurosimError naming
    the file: unreadable, without curves, or of other snapshots than ``run``'s."""
    try:
        evaluation = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise NeurosimError(f"--evaluation {path}: cannot read it as JSON: {exc}") from None
    if not isinstance(evaluation, dict) or not evaluation.get("curves"):
        raise NeurosimError(f"--evaluation {path}: no \"curves\" (write it with `neurosim dbm evaluate RUN "
                            "--json --curves`)")
    epochs, have = [c["epoch"] for c in evaluation["curves"]], [0] + [e for e, _ in snapshots(run)]
    if epochs != have:
        raise NeurosimError(f"--evaluation {path}: its curve is of epochs {epochs}, the snapshots of {run} are of "
                            f"{have} (another run?)")
    return evaluation


def short_run(args: argparse.Namespace, log) -> Path:
    """The demo's own short run in ``OUT/run`` (trained, resumed or read)."""
    recipe = DBMRecipe(hidden=args.hidden, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
                       finetune_epochs=args.finetune_epochs, snapshot_every=args.snapshot_every, seed=args.seed)
    run = Path(args.out) / "run"
    DBMTrainer(recipe, *load_mnist("train", limit=args.limit), run, log=log).run()
    return run


def draw(run: Path, evaluation: dict, sweeps: int, seed: int, out: Path, docs: bool) -> list[str]:
    """The three figures of the run in ``run`` (module doc)."""
    dbm = DeepBoltzmannMachine.load(run / "dbm.npz", random_state=seed)
    fig, ax = plt.subplots(figsize=(6, 6.3))
    plot_filters(ax, dbm.weights_[0])
    figures = save(fig, out / "dbm_filters.png", docs)

    chains = dbm.chains_[:100]
    panels = [(chains, f"{architecture(dbm)}: p(v | h_1) of {len(chains)} of its {len(dbm.chains_)} "
                       f"persistent chains as saved")]
    if sweeps:
        panels.append((dbm.sample(len(chains), sweeps, visible_only=False),
                       f"p(v | h_1) of {len(chains)} fresh chains after {sweeps:,} Gibbs alternations"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 6.3), squeeze=False)
    for ax, (states, title) in zip(axes[0], panels):
        plot_images(ax, visible_probabilities(dbm, states), title)
    figures += save(fig, out / "dbm_samples.png", docs)

    history = read_npz_meta(run / "classifier.npz", "classifier")[1]["history"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    plot_bound(axes[0], evaluation)
    plot_fine_tuning(axes[1], history, evaluation["test_error"], evaluation["test_cases"])
    fig.suptitle(f"deep Boltzmann machine {architecture(dbm)}, {n_cases(run):,} training digits", fontsize=10)
    fig.tight_layout()
    return figures + save(fig, out / "dbm_curves.png", docs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a finished run of `neurosim dbm train` (default: train a short one)")
    p.add_argument("--evaluation", help="the JSON of `neurosim dbm evaluate RUN --json --curves` "
                                        "(default: score the run here with --ais-runs and --ais-betas)")
    p.add_argument("--hidden", type=layer_sizes, default=(100, 100), help="hidden sizes of the short run")
    p.add_argument("--limit", type=positive_int, default=2000,
                   help="training digits of the short run (the first ones)")
    p.add_argument("--pretrain-epochs", type=non_negative_int, default=10, help="epochs per RBM of the short run")
    p.add_argument("--epochs", type=non_negative_int, default=20, help="joint epochs of the short run")
    p.add_argument("--finetune-epochs", type=non_negative_int, default=20,
                   help="fine-tuning epochs of the short run")
    p.add_argument("--snapshot-every", type=positive_int, default=4,
                   help="joint epochs between the short run's snapshots")
    p.add_argument("--test-limit", type=positive_int, default=500,
                   help="test digits scored here (without --evaluation)")
    p.add_argument("--ais-runs", type=positive_int, default=100, help="AIS runs here (without --evaluation)")
    p.add_argument("--ais-betas", type=positive_int, default=1000,
                   help="AIS temperatures here (without --evaluation)")
    p.add_argument("--reverse-sweeps", type=non_negative_int, default=1000,
                   help="reverse AIS from the persistent chains continued this many alternations here "
                        "(without --evaluation; 0: none)")
    p.add_argument("--sweeps", type=non_negative_int, default=1000,
                   help="Gibbs alternations of the fresh chains (0: none)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", default="out/mnist_dbm", help="where the figures (and the short run) go")
    p.add_argument("--docs", action="store_true", help="also write the figures into docs/images/")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    if args.evaluation and not args.run:
        p.error("--evaluation: give the run it scores with --run")

    start, log = time.perf_counter(), (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        out = check_out_directory(args.out)
        if args.run:
            check_finished(args.run)
        evaluation = read_evaluation(args.evaluation, Path(args.run)) if args.evaluation else None
        out.mkdir(parents=True, exist_ok=True)
        run = Path(args.run) if args.run else short_run(args, log)
        evaluation = evaluation or score(run, args.test_limit, args.ais_runs, args.ais_betas, args.reverse_sweeps,
                                         args.seed)
        figures = draw(run, evaluation, args.sweeps, args.seed, out, args.docs)
    except NeurosimError as exc:
        p.error(str(exc))

    summary = {"run": str(run), **{k: evaluation[k] for k in SUMMARY if k in evaluation},
               "seconds": time.perf_counter() - start, "figures": figures}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{run}: variational bound {summary['test_logprob_bound_nats']:.2f} nats (log Z "
              f"{summary['logZ_ais']:.2f} +- {summary['logZ_ais_std']:.2f} by AIS), test error "
              f"{100 * summary['test_error']:.2f}%; {summary['seconds']:.0f} s; wrote " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
