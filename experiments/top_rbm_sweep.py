"""The greedy top RBM (pen units and labels to 2000 hidden units) on a validation split.

After greedy learning the DBN classifies by the top RBM's free energy with each label
clamped; Hinton, Osindero and Teh (2006) report 2.49% test error at this point. This
script retrains only that RBM, with ``rbm_step`` (CD-1, the preset's momentum schedule),
on the pen probabilities of the first 50,000 training digits under ``PRETRAINED``'s
lower layers (see ``updown_sweep.py`` for how to make it), and every ``--every`` epochs
scores the generative error on digits 50,000-59,999 (``valid_error``) and on the first
10,000 (``train_error``).

Usage: ``OPENBLAS_NUM_THREADS=1 python experiments/top_rbm_sweep.py PRETRAINED --lr 0.1
--weight-decay 2e-4 --epochs 30 [--anneal N] [--samples] --out FILE.jsonl``; ``--samples``
trains on sampled binary pen states instead of their probabilities; ``--anneal N``: the
learning rate falls linearly to zero over the last N epochs (``annealed``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.data import load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.dbn_train import PRESETS, annealed, load_run, new_rbm, rbm_step  # noqa: E402

N_TRAIN = 50_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pretrained")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=2e-4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--every", type=int, default=5, help="score every that many epochs")
    ap.add_argument("--anneal", type=int, default=0, help="anneal the rate over the last N epochs")
    ap.add_argument("--samples", action="store_true", help="train on sampled pen states")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    X, labels = load_mnist("train")
    try:
        dbn = load_run(a.pretrained).dbn
    except NeurosimError as err:
        sys.exit(f"top_rbm_sweep: {err}")
    pen = dbn.up(X)[-1]
    Y = np.eye(10, dtype=np.float32)[labels[:N_TRAIN]]
    recipe = replace(PRESETS["hinton2006"], learning_rate=a.lr, weight_decay=a.weight_decay)
    rng = np.random.default_rng(a.seed)
    p, velocity = new_rbm(pen.shape[1], dbn.sizes[-1], 10, recipe, rng)
    order = np.random.default_rng(a.seed + 1).permutation(N_TRAIN)
    setting = {"lr": a.lr, "weight_decay": a.weight_decay, "samples": a.samples, "anneal": a.anneal}

    def error(rows: slice) -> float:
        dbn.set_top(p["W"], p["U"], p["b"], p["b_lab"], p["c"])
        return float(np.mean(dbn.label_free_energies(pen[rows]).argmin(axis=1) != labels[rows]))

    with open(a.out, "w") as out:
        for epoch in range(a.epochs):
            start = time.perf_counter()
            momentum = recipe.momentum[epoch >= recipe.momentum_switch]
            for b, s in enumerate(range(0, N_TRAIN, 100)):
                i = order[s:s + 100]
                lr = annealed(a.lr, epoch, b, N_TRAIN // 100, a.epochs, a.anneal)
                V = pen[i]
                if a.samples:
                    V = (rng.random(V.shape, dtype=np.float32) < V).astype(np.float32)
                rbm_step(p, velocity, V, Y[i], replace(recipe, learning_rate=lr), momentum, rng)
            if (epoch + 1) % a.every == 0 or epoch + 1 == a.epochs:
                entry = {"epoch": epoch + 1, "valid_error": error(slice(N_TRAIN, None)),
                         "train_error": error(slice(0, 10_000)), "seconds": time.perf_counter() - start}
                out.write(json.dumps({**setting, **entry}) + "\n")
                out.flush()


if __name__ == "__main__":
    main()
