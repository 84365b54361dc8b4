"""The epoch-to-epoch spread of the test error in the continuation of section 6.1.

Hinton, Osindero and Teh (2006, section 6.1) trained the network that did best on 10,000
held-out digits for 59 more epochs on all 60,000 training digits; its test error ended at
1.25% and ranged over 1.12-1.31% along the way. This measures that spread for a neurosim
run without letting the test set choose anything: from the run's up-down weights
(``load_run(RUN).dbn``), ``--epochs`` up-down epochs on all 60,000 training digits as
``neurosim dbn train --updown-continue`` runs them (:meth:`Recipe.continuation`: RUN's
momentum, weight cost, last CD-k and chain labels, the constant rate ``--lr``, velocities
from zero, the fixed minibatches of :func:`continuation_order`), and before the first
epoch and after each one JSON line: ``test_error`` (reported, never used), ``train_error``
on the first 10,000 training digits, ``dead_top_units`` (top units whose mean activity on
the test digits is below 0.01: :meth:`DeepBeliefNet.top_activity`) and ``seconds``.

Usage: ``OPENBLAS_NUM_THREADS=1 python experiments/continuation_spread.py RUN --epochs 59
--lr 0.003 --out FILE.jsonl [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.compiled import arrays  # noqa: E402
from neurosim.data import load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.dbn import DeepBeliefNet  # noqa: E402
from neurosim.machines.dbn_train import (continuation_order, load_run, offsets_of, read_checkpoint,  # noqa: E402
                                         stage_names)

DEAD = 0.01          # a top unit whose mean activity on the test digits is below this has died


def continue_up_down(dbn: DeepBeliefNet, X: np.ndarray, Y: np.ndarray, settings: dict, batch: int,
                     order: np.ndarray, rng: np.random.Generator, epochs: int,
                     backend: arrays.Backend | None = None, offsets: dict | None = None,
                     offset_rate: float = 0.01) -> Iterator[int]:
    """``epochs`` up-down epochs of ``dbn`` on ``(X, Y)`` (one-hot labels), in place: each
    epoch the minibatches of ``batch`` cases in ``order``, ``up_down_step``'s ``settings``
    (:meth:`Recipe.continuation`), velocities from zero; a centered run's top-RBM
    ``offsets`` moved at ``offset_rate``. Yields each epoch's number once done."""
    velocity: dict = {}
    for epoch in range(1, epochs + 1):
        for s in range(0, len(order), batch):
            i = order[s:s + batch]
            dbn.up_down_step(X[i], Y[i], rng=rng, velocity=velocity, backend=backend, offsets=offsets,
                             offset_rate=offset_rate, **settings)
        yield epoch


def measures(dbn: DeepBeliefNet, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
             y_test: np.ndarray) -> dict:
    """The numbers of one line: the test error, the training error on ``X_train`` and the
    dead top units on the test digits."""
    return {"test_error": float(np.mean(dbn.predict(X_test) != y_test)),
            "train_error": float(np.mean(dbn.predict(X_train) != y_train)),
            "dead_top_units": int(np.sum(dbn.top_activity(X_test, y_test) < DEAD))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a neurosim dbn train directory whose up-down has finished")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True, help="the continuation's constant learning rate")
    ap.add_argument("--seed", type=int, default=0, help="the draws' Generator and the minibatches' order")
    ap.add_argument("--out", required=True, help="JSON lines, one per epoch")
    a = ap.parse_args(argv)
    if a.epochs < 1 or not a.lr > 0:
        ap.error(f"--epochs must be >= 1 and --lr > 0, got {a.epochs} and {a.lr}")
    try:
        run = load_run(a.run)
    except NeurosimError as err:
        sys.exit(f"continuation_spread: {err}")
    if run.recipe.updown_epochs == 0 or run.progress.stage <= stage_names(run.recipe).index("updown"):
        sys.exit(f"continuation_spread: {a.run}: no finished up-down to continue ({run.reached})")
    r = run.recipe
    X, labels = load_mnist("train")
    X_test, y_test = load_mnist("test")
    Y = np.eye(r.n_labels, dtype=np.float32)[labels]
    settings = {**r.continuation(), "lr": a.lr}
    offsets = offsets_of(read_checkpoint(Path(a.run) / "checkpoint.npz")[0], "offsets.") if r.centered else None
    steps = continue_up_down(run.dbn, X, Y, settings, r.batch_size, continuation_order(a.seed, len(X)),
                             np.random.default_rng(a.seed), a.epochs, arrays.backend(r.backend, r.device, r.dtype),
                             offsets, r.offset_rate)
    with open(a.out, "w") as out:
        def log(entry: dict) -> None:
            line = {"run": a.run, **settings, "epoch": entry.pop("epoch"),
                    **measures(run.dbn, X[:10_000], labels[:10_000], X_test, y_test), **entry}
            out.write(json.dumps(line) + "\n")
            out.flush()

        log({"epoch": 0})
        start = time.perf_counter()
        for epoch in steps:
            log({"epoch": epoch, "seconds": time.perf_counter() - start})
            start = time.perf_counter()
    return 0


if __name__ == "__main__":
    sys.exit(main())
