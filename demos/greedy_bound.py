"""The greedy variational bound, layer by layer (Hinton, Osindero and Teh 2006, section 4).

Stack RBMs on 3x3 bars and stripes: the first models the data, each next one hidden
samples of the one below (``--samples`` per case), started from the transposed
weights of the one below (so adding it leaves the bound where it was) and then
trained by CD-1. After each added layer the exact variational bound on the data's mean
log-likelihood (``neurosim.machines.dbn.greedy_bound``: every hidden layer enumerated)
is printed and plotted, for several seeds, beside the data's entropy, the ceiling.

The bound rises by exactly how much the new RBM improves the likelihood of the
aggregated posterior of the layer below (tested). Maximum likelihood would make that
gain non-negative; CD-1 does not promise it, and the demo shows how often it comes.

Usage: ``python demos/greedy_bound.py [--layers 3] [--hidden 8] [--seeds 6]
[--out out/greedy_bound.png] [--json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neurosim.data import bars_stripes
from neurosim.machines.dbn import greedy_bound, sigmoid
from neurosim.machines.dbn_train import Recipe, train_rbm_layer


def stack(layers: int, hidden: int, seed: int, samples: int = 5) -> tuple[list[float], float]:
    """The bound after each added layer (mean over the distinct patterns) and the data entropy."""
    patterns = bars_stripes(size=3).data.astype(np.float64)
    data = np.repeat(patterns, 40, axis=0).astype(np.float32)
    rng = np.random.default_rng(seed)
    r = Recipe(hidden=(hidden, hidden), n_labels=1, pretrain_epochs=60, batch_size=10,
               learning_rate=0.05, weight_decay=0.0)
    upper = Recipe(**{**r.__dict__, "pretrain_epochs": 100, "learning_rate": 0.02})
    p = train_rbm_layer(data, hidden, r, rng)
    rbms = [(p["W"], p["b"], p["c"])]
    bounds = [float(greedy_bound(rbms, patterns).mean())]
    below = data
    for _ in range(layers - 1):
        W, b, c = rbms[-1]
        below = np.repeat(below, samples, axis=0) if len(below) == len(data) else below
        below = (rng.random((len(below), W.shape[1])) < sigmoid(below @ W + c)).astype(np.float32)
        p = train_rbm_layer(below, W.shape[0], upper, rng, init=(W.T, c, b))
        rbms.append((p["W"], p["b"], p["c"]))
        bounds.append(float(greedy_bound(rbms, patterns).mean()))
    return bounds, float(np.log(len(patterns)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--hidden", type=int, default=8)
    p.add_argument("--seeds", type=int, default=6, help="runs, seeds 0 .. N-1")
    p.add_argument("--out", default="out/greedy_bound.png")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    runs = [stack(args.layers, args.hidden, seed)[0] for seed in range(args.seeds)]
    entropy = float(np.log(len(bars_stripes(size=3).data)))
    rises = [sum(run[k] > run[k - 1] for run in runs) for k in range(1, args.layers)]
    if args.json:
        print(json.dumps({"layers": list(range(1, args.layers + 1)), "bound_nats": runs,
                          "rises": rises, "data_entropy_nats": entropy}))
        return
    for seed, run in enumerate(runs):
        print(f"seed {seed}: bound on mean log p(v) after 1..{args.layers} layers: "
              + ", ".join(f"{b:.3f}" for b in run))
    for k, n in enumerate(rises, 2):
        print(f"adding layer {k} raised the bound in {n} of {args.seeds} runs")
    print(f"ceiling (minus the data's entropy): {-entropy:.3f} nats")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for seed, run in enumerate(runs):
        ax.plot(range(1, len(run) + 1), run, "o-", alpha=0.7, label=f"seed {seed}")
    ax.axhline(-entropy, color="grey", ls="--", label="-H(data), the ceiling")
    ax.set(xlabel="RBMs stacked", ylabel="bound on log p(v), nats", xticks=range(1, args.layers + 1),
           title="greedy learning: the exact bound after each layer")
    ax.legend(fontsize=7)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")

if __name__ == "__main__":
    main()
