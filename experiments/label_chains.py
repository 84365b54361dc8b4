"""Where the top RBM's CD chains take the label: softmax probabilities against one-hot samples.

Issue 28's first lead: a CD-k chain of the DBN's top RBM started at a digit's pen state and
its true label, with the labels passed through the chain as probabilities (the appendix's
pseudo-code), hardly ever visits another class, so CD seldom raises the free energy of
wrong (image, label) pairs. This measures it on saved weights: for the first ``--cases``
training digits (sampled pen states of the up-pass, as up-down's wake phase), the top
RBM's CD-k chain of up-down (:func:`neurosim.machines.dbn._updown_cd`) for each ``k``,
and the fraction of chains whose label at step ``k`` is not the true class: for
probability labels the most probable class, for sampled labels the sample; also the mean
probability mass the chain's label puts off the true class. Seconds on the CPU.

Usage: ``python experiments/label_chains.py RUN [--weights dbn|greedy] [--k 1 3 10]
[--out label_chains.json]`` (``RUN``: a ``neurosim dbn train`` directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.compiled import bipartite  # noqa: E402
from neurosim.compiled.bipartite import Block  # noqa: E402
from neurosim.data import load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.dbn import DeepBeliefNet, _updown_cd  # noqa: E402
from neurosim.machines.dbn_train import read_checkpoint, stack  # noqa: E402


def chain_labels(dbn: DeepBeliefNet, X: np.ndarray, labels: np.ndarray, k: int, sample: bool,
                 rng: np.random.Generator) -> dict:
    """One CD-k chain per case from its sampled pen state and true label: the fraction whose
    label at step ``k`` has left the true class, and the mean mass off it."""
    pen = dbn.up(X, rng)[-1]
    Y = np.eye(dbn.n_labels, dtype=np.float32)[labels]
    block = Block(dbn.W, dbn.b_pen, dbn.c, dbn.U, dbn.b_lab)
    buf = bipartite.buffers(None, block, len(X), len(X))
    stats = bipartite.statistics(block, pen, _updown_cd(k, sample), rng, buf, Y)
    neg = stats.Y[len(X):]
    return {"k": k, "labels": "samples" if sample else "probabilities",
            "left_true_class": float((neg.argmax(axis=1) != labels).mean()),
            "mass_off_true_class": float(1 - neg[np.arange(len(X)), labels].mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--weights", choices=("dbn", "greedy"), default="dbn",
                    help="the run's current weights, or the greedy stack it kept for backprop")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    try:
        arrays, _ = read_checkpoint(args.run / "checkpoint.npz")
    except NeurosimError as err:
        sys.exit(f"label_chains: {err}")
    dbn = stack(arrays, f"{args.weights}.")
    if dbn is None:
        sys.exit(f"label_chains: {args.run} keeps no {args.weights} weights (a greedy copy is kept only while "
                 "backprop_from='greedy' and up-down has run)")
    X, labels = load_mnist("train", limit=args.cases)
    rng = np.random.default_rng(args.seed)
    rows = [chain_labels(dbn, X, labels, k, sample, rng) for k in args.k for sample in (False, True)]
    result = {"run": str(args.run), "weights": args.weights, "cases": len(X), "rows": rows}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
