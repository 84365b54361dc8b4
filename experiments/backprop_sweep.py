"""Backprop fine-tuning settings, compared on a validation split (not the test set).

The optimiser (``backpropclassify.m``'s conjugate gradient, or SGD with momentum), its
settings and the number of epochs are chosen on held-out digits, as Hinton et al.
(2006) chose theirs:

1. pretrain with the preset's greedy stages, holding the last 10,000 training digits
   out, into ``PRETRAINED``: ``python -m neurosim dbn train --validation 10000
   --updown-epochs 0 --backprop-epochs 0 --out PRETRAINED``;
2. for each setting, the preset's backprop stage on the 50,000 digits the pretraining
   saw (the same fixed minibatch order), and after every epoch the error on the
   held-out 10,000 (``valid_error``) and on the first 10,000 (``train_error``).

Usage: ``OPENBLAS_NUM_THREADS=1 python experiments/backprop_sweep.py PRETRAINED [--cg 3]
[--epochs 40] [--batch N] [--lr 0.1] [--momentum 0.9] [--anneal 0] --out FILE.jsonl``
(one JSON line per epoch: the setting, ``epoch``, ``valid_error``, ``train_error``,
``seconds``). ``--cg N``: conjugate gradient with N line searches per minibatch (the
preset, as published: 3) on minibatches of 1000; ``--cg 0``: SGD on minibatches of 100
(``--lr``, ``--momentum`` and ``--anneal`` apply to SGD only); ``--batch`` overrides.
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
from neurosim.errors import NeurosimError, ParameterError  # noqa: E402
from neurosim.machines.backprop import (backprop_cg_step, backprop_net, backprop_predict,  # noqa: E402
                                        backprop_step)
from neurosim.machines.dbn_train import PRESETS, annealed, load_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pretrained", help="a run directory pretrained with --validation 10000")
    ap.add_argument("--lr", type=float, default=None, help="default (and of the others): the preset's")
    ap.add_argument("--momentum", type=float, default=None)
    ap.add_argument("--anneal", type=int, default=None, help="last epochs over which lr falls to 0")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--cg", type=int, default=None, metavar="N", help="conjugate gradient, N line searches")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--out", required=True, help="JSON lines, one per epoch")
    a = ap.parse_args()

    try:
        run = load_run(a.pretrained)
    except NeurosimError as err:
        sys.exit(f"backprop_sweep: {err}")
    if not run.recipe.validation:
        sys.exit(f"{a.pretrained}: pretrained without --validation; nothing is held out to compare on")
    given = dict(backprop_lr=a.lr, backprop_momentum=a.momentum, backprop_anneal=a.anneal,
                 backprop_epochs=a.epochs, backprop_line_searches=a.cg,
                 backprop_batch=a.batch or (None if a.cg is None else 1000 if a.cg else 100))
    preset = PRESETS["hinton2006"]
    try:
        r = replace(run.recipe, **{k: getattr(preset, k) if v is None else v for k, v in given.items()})
    except ParameterError as err:
        sys.exit(f"backprop_sweep: {err}")
    X, labels = load_mnist("train")
    n = len(X) - r.validation
    Y = np.eye(r.n_labels, dtype=np.float32)[labels[:n]]
    order = np.random.default_rng([r.seed, 1]).permutation(n)      # the Trainer's fixed order
    p = backprop_net(run.dbn, np.random.default_rng(r.seed))
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    setting = {"lr": r.backprop_lr, "momentum": r.backprop_momentum, "anneal": r.backprop_anneal,
               "epochs": r.backprop_epochs, "batch": r.backprop_batch, "cg": r.backprop_line_searches}
    n_batches = -(-n // r.backprop_batch)

    def errors() -> dict:
        return {"valid_error": float(np.mean(backprop_predict(p, X[n:]) != labels[n:])),
                "train_error": float(np.mean(backprop_predict(p, X[:10_000]) != labels[:10_000]))}

    with open(a.out, "w") as out:
        for epoch in range(r.backprop_epochs):
            start = time.perf_counter()
            for b in range(n_batches):
                i = order[b * r.backprop_batch:(b + 1) * r.backprop_batch]
                lower = epoch >= r.backprop_top_only
                if r.backprop_line_searches:
                    backprop_cg_step(p, X[i], Y[i], r.backprop_line_searches, lower)
                    continue
                lr = annealed(r.backprop_lr, epoch, b, n_batches, r.backprop_epochs, r.backprop_anneal)
                backprop_step(p, vel, X[i], Y[i], lr, r.backprop_momentum, lower)
            entry = {**setting, "epoch": epoch + 1, **errors(), "seconds": time.perf_counter() - start}
            out.write(json.dumps(entry) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
