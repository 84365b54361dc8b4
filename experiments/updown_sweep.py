"""Up-down fine-tuning settings, compared on a validation split (not the test set).

Hinton, Osindero and Teh (2006, section 6.1) chose the learning rate, momentum and
weight decay of up-down fine-tuning on a validation set; the paper does not give them.
This script picks ours the same way:

1. pretrain on the first 50,000 training digits (the preset's greedy stages, 30 epochs
   per RBM, the paper's number) into ``PRETRAINED``:
   ``python -m neurosim dbn train --limit 50000 --pretrain-epochs 30 --updown-epochs 0
   --backprop-epochs 0 --out PRETRAINED``;
2. for each setting, up-down on those 50,000 digits (minibatches of ``--batch``, 100
   unless told, a fresh permutation per epoch), and after every epoch the generative
   classification error on training digits 50,000-59,999, which no stage has seen
   (``valid_error``), and on the first 10,000 (``train_error``).

``--anneal N``: over the last N epochs the learning rate falls linearly to zero.
``--learn top`` keeps the directed layers' weights fixed (only the top RBM learns),
``--learn directed`` the top RBM's: which part of up-down lowers the error?
``--persistent``: the top RBM's negative phase continues persistent chains (Tieleman
2008) instead of restarting at the wake states (``DeepBeliefNet.up_down_step``).
``--directed-lr``: the directed layers learn at this rate, the top RBM at ``--lr``.
``--balanced``: every minibatch holds each digit class in proportion to its share of
the training set (the paper's 440 minibatches of 44,000 digits held 10 examples of
each class: ``--balanced``). ``--lr`` scales the minibatch's mean change, so the same
rate per case at another batch size is ``lr * batch / 100``.

Usage: ``OPENBLAS_NUM_THREADS=1 python experiments/updown_sweep.py PRETRAINED --lr 0.003
--momentum 0.9 --weight-decay 2e-4 --k 3 --epochs 8 [--anneal 0] [--learn all|top|directed]
[--balanced] [--batch 100] [--persistent] [--directed-lr R] --out FILE.jsonl [--save DBN.npz]`` (one JSON line per epoch: the setting, ``epoch``, ``valid_error``,
``train_error``, ``dead_top_units`` (mean :meth:`~neurosim.machines.dbn.DeepBeliefNet.top_activity` on the
held-out digits below 0.01), ``seconds``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.data import load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.dbn_train import annealed, load_run  # noqa: E402

N_TRAIN = 50_000


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation in which every run of consecutive cases holds each class in
    proportion: the cases of each class, shuffled, are spread evenly over [0, 1)."""
    key = np.empty(len(labels))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        key[idx] = (rng.permutation(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.argsort(key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pretrained", help="a run directory pretrained on the first 50,000 digits")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--directed-lr", type=float, default=None,
                    help="the directed layers' rate, where it differs from the top RBM's --lr")
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--k", type=int, default=3, help="CD-k of the top RBM")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--anneal", type=int, default=0, help="last epochs over which lr falls to 0")
    ap.add_argument("--learn", choices=("all", "top", "directed"), default="all")
    ap.add_argument("--balanced", action="store_true", help="class-balanced minibatches")
    ap.add_argument("--batch", type=int, default=100, help="minibatch size")
    ap.add_argument("--persistent", action="store_true", help="persistent chains in the top RBM")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="JSON lines, one per epoch")
    ap.add_argument("--save", help="write the fine-tuned DBN's parameters to this .npz at the end")
    a = ap.parse_args()
    if not 1 <= a.batch <= N_TRAIN:
        ap.error(f"--batch must lie in 1..{N_TRAIN}, got {a.batch}")
    if a.save and not Path(a.save).resolve().parent.is_dir():
        ap.error(f"--save {a.save}: no directory {Path(a.save).resolve().parent} to write it in")

    X, labels = load_mnist("train")
    Y = np.eye(10, dtype=np.float32)[labels[:N_TRAIN]]
    X_valid, y_valid = X[N_TRAIN:], labels[N_TRAIN:]
    try:
        dbn = load_run(a.pretrained).dbn
    except NeurosimError as err:
        sys.exit(f"updown_sweep: {err}")
    rng, velocity, chains = np.random.default_rng(a.seed), {}, ({} if a.persistent else None)
    setting = {"lr": a.lr, "momentum": a.momentum, "weight_decay": a.weight_decay, "k": a.k, "learn": a.learn,
               "anneal": a.anneal, **({"balanced": True} if a.balanced else {}),
               **({"persistent": True} if a.persistent else {}),
               **({"batch": a.batch} if a.batch != 100 else {}),
               **({"directed_lr": a.directed_lr} if a.directed_lr is not None else {})}
    initials = {"all": "", "top": "RGrg", "directed": "WUbc"}[a.learn]   # of the parameters held fixed
    fixed = [name for name in dbn.state_dict() if name[0] in initials]

    def errors() -> dict:
        return {"valid_error": float(np.mean(dbn.predict(X_valid) != y_valid)),
                "train_error": float(np.mean(dbn.predict(X[:10_000]) != labels[:10_000])),
                "dead_top_units": int(np.sum(dbn.top_activity(X_valid, y_valid) < 0.01))}

    with open(a.out, "w") as out:
        def log(entry: dict) -> None:
            out.write(json.dumps({**setting, **entry}) + "\n")
            out.flush()

        log({"epoch": 0, **errors()})
        for epoch in range(1, a.epochs + 1):
            start = time.perf_counter()
            order = balanced_order(labels[:N_TRAIN], rng) if a.balanced else rng.permutation(N_TRAIN)
            n_batches = N_TRAIN // a.batch
            for b in range(n_batches):
                i = order[b * a.batch:(b + 1) * a.batch]
                kept = {name: dbn.state_dict()[name].copy() for name in fixed}
                lr, directed_lr = (None if r is None else annealed(r, epoch - 1, b, n_batches, a.epochs, a.anneal)
                                   for r in (a.lr, a.directed_lr))
                dbn.up_down_step(X[i], Y[i], lr, a.k, rng, a.momentum, a.weight_decay, velocity, chains,
                                 directed_lr)
                for name, value in kept.items():
                    dbn.state_dict()[name][...] = value
            log({"epoch": epoch, **errors(), "seconds": time.perf_counter() - start})
    if a.save:
        np.savez(a.save, **dbn.state_dict())


if __name__ == "__main__":
    main()
