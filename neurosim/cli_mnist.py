"""``neurosim dbn train|evaluate``: deep belief nets on MNIST from the command line.

Training writes ``DIR/checkpoint.npz`` (atomically, every epoch and every
``--checkpoint-minutes``), ``DIR/progress.json`` and ``DIR/command.json``; ``--resume``
continues a killed or interrupted run with nothing lost (same weights as a run that was
never stopped). Ctrl-C stops at the next minibatch with a checkpoint (exit 130).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .errors import NeurosimError

__all__ = ["add_parsers"]


def cmd_dbn_train(args: argparse.Namespace) -> None:
    from .data import load_mnist
    from .machines.dbn_train import PRESETS, Trainer

    out = Path(args.out)
    has_checkpoint = (out / "checkpoint.npz").exists()
    if has_checkpoint and not args.resume:
        raise NeurosimError(f"{out} holds a checkpoint: pass --resume to continue it, or choose a new --out")
    if args.resume and not has_checkpoint:
        raise NeurosimError(f"--resume: {out} holds no checkpoint to continue")
    overrides = {k: v for k, v in dict(pretrain_epochs=args.pretrain_epochs, updown_epochs=args.updown_epochs,
                                        backprop_epochs=args.backprop_epochs, hidden=args.hidden,
                                        seed=args.seed).items() if v is not None}
    recipe = replace(PRESETS[args.preset], **overrides)
    X, labels = load_mnist("train", limit=args.limit)
    out.mkdir(parents=True, exist_ok=True)
    if not has_checkpoint:
        (out / "command.json").write_text(json.dumps({"argv": sys.argv, "recipe": asdict(recipe)}, indent=1))
    trainer = Trainer(recipe, X, labels, out, checkpoint_s=60 * args.checkpoint_minutes)
    trainer.run()
    seconds = trainer.progress.seconds
    print(f"trained {out}: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()))


def cmd_dbn_evaluate(args: argparse.Namespace) -> None:
    from .data import load_mnist
    from .machines.dbn_train import backprop_predict, load_run

    run = load_run(args.directory)
    X, labels = load_mnist("test", limit=args.limit)
    result = {"directory": str(args.directory), "finished": run.finished, "test_cases": len(X),
              "test_error_generative": None, "test_error_backprop": None,
              "seconds": run.progress.seconds, "curves": run.progress.history}
    if run.dbn.W is not None:
        result["test_error_generative"] = float(np.mean(run.dbn.predict(X) != labels))
    if run.backprop is not None:
        result["test_error_backprop"] = float(np.mean(backprop_predict(run.backprop, X) != labels))

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}%"

    text = (f"{args.directory}: {'finished' if run.finished else 'unfinished'} run, {len(X)} test digits\n"
            f"  generative (free energy) test error {pct(result['test_error_generative'])}\n"
            f"  backprop fine-tuned test error     {pct(result['test_error_backprop'])}\n"
            + "\n".join(f"  {k:<9} {v / 60:7.1f} min" for k, v in run.progress.seconds.items()))
    print(json.dumps({k: v for k, v in result.items() if k != "curves" or args.curves}, indent=2)
          if args.json else text)


def add_parsers(sub: argparse._SubParsersAction, positive, non_negative) -> None:
    from .machines.dbn_train import PRESETS

    sp = sub.add_parser("dbn", help="deep belief nets on MNIST (Hinton, Osindero and Teh 2006)")
    actions = sp.add_subparsers(dest="action", required=True)
    tr = actions.add_parser("train", help="greedy pretraining, up-down and backprop fine-tuning")
    tr.add_argument("--preset", choices=sorted(PRESETS), default="hinton2006")
    tr.add_argument("--pretrain-epochs", type=non_negative, default=None, help="epochs per RBM")
    tr.add_argument("--updown-epochs", type=non_negative, default=None)
    tr.add_argument("--backprop-epochs", type=non_negative, default=None)
    tr.add_argument("--hidden", type=_sizes, default=None, metavar="N1,N2,...,NTOP",
                    help="hidden layer sizes, top last (preset: 500,500,2000)")
    tr.add_argument("--limit", type=positive, default=None, help="train on the first N digits only")
    tr.add_argument("--seed", type=int, default=None)
    tr.add_argument("--checkpoint-minutes", type=float, default=3.0)
    tr.add_argument("--out", required=True, help="the run's directory")
    tr.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    tr.set_defaults(run=cmd_dbn_train)
    ev = actions.add_parser("evaluate", help="test errors (generative, backprop) and stage times")
    ev.add_argument("directory")
    ev.add_argument("--limit", type=positive, default=None, help="the first N test digits only")
    ev.add_argument("--curves", action="store_true", help="JSON: add every epoch's rate and time")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(run=cmd_dbn_evaluate)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write sizes as integers separated by commas, got {text}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"at least two layers of >= 1 unit, got {text}")
    return sizes
