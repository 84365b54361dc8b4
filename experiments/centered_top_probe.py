"""Issue 28, lead 4's follow-up: the DBN with centered layers but the top RBM's hidden
offset ``lambda`` held at 0 (its visible and label offsets still follow the data), in
greedy training and in up-down. A held-out probe, not a recipe: ``Recipe`` has no such
setting, so this script patches the trainer's ``centered_start``, ``Recipe.greedy_cd``
and up-down's CD in memory (docs/mnist-reproduction.md, "A fourth lead").

    python experiments/centered_top_probe.py RUN [--limit N] [--validation N] [--updown-epochs N]

prints one JSON line: the greedy and up-down held-out errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurosim.data import load_mnist
from neurosim.errors import NeurosimError
from neurosim.machines import dbn as D
from neurosim.machines import dbn_train as T


def _patch() -> None:
    """``lambda`` = 0 and fixed in the labelled top RBM: the ordinary biases of its initial
    model made those of ``lambda`` = 0 (``b~ = b + W lambda`` kept), its rate 0; up-down's
    top CD likewise."""
    start, greedy_cd, updown_cd = T.centered_start, T.Recipe.greedy_cd, D._updown_cd

    def centered_start(p, V, Y, fresh):
        off = start(p, V, Y, fresh)
        if Y is not None:
            if fresh:
                p["b"] += p["W"] @ off["hidden"]
                p["b_lab"] += p["U"] @ off["hidden"]
            off["hidden"][:] = 0
        return off

    T.centered_start = centered_start
    T.Recipe.greedy_cd = lambda self, top: (replace(greedy_cd(self, top), centering=(self.offset_rate, 0.0))
                                            if top and self.centered else greedy_cd(self, top))
    D._updown_cd = lambda k, sample_labels=False, centering=None: updown_cd(
        k, sample_labels, None if centering is None else (centering[0], 0.0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--validation", type=int, default=10000)
    ap.add_argument("--updown-epochs", type=int, default=16)
    ap.add_argument("--updown-anneal", type=int, default=8)
    args = ap.parse_args(argv)
    _patch()
    out = Path(args.run)
    try:
        recipe = replace(T.PRESETS["hinton2006"], updown_epochs=args.updown_epochs, updown_anneal=args.updown_anneal,
                         backprop_epochs=0, validation=args.validation, seed=0, centered=True)
        X, y = load_mnist("train", limit=args.limit)
        T.Trainer(recipe, X, y, out, checkpoint_s=180).run(lambda: None)
    except NeurosimError as err:
        sys.exit(f"centered_top_probe: {err}")
    arrays, _ = T.read_checkpoint(out / "checkpoint.npz")
    held = slice(len(X) - args.validation, len(X))
    greedy = T.stack(arrays, "greedy.") or T.stack(arrays, "dbn.")
    history = json.loads((out / "progress.json").read_text())["history"]
    updown = [h["valid_error"] for h in history if h["stage"] == "updown"]
    print(json.dumps({"argv": sys.argv, "greedy_valid_error": float(np.mean(greedy.predict(X[held]) != y[held])),
                      "updown_valid_error": updown, "updown_last4_valid_error": float(np.mean(updown[-4:])) if updown
                      else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
