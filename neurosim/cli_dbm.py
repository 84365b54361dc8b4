"""``neurosim dbm train|evaluate``: the deep Boltzmann machine of Salakhutdinov and Hinton
(2009) on MNIST, through :class:`~neurosim.machines.dbm_run.DBMTrainer` and
:func:`~neurosim.machines.dbm_run.evaluate`. docs/machines/dbm.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .cli_args import (backend_flags, layer_sizes, non_negative_int, positive_int, run_directory_flags, seed,
                       single_valued, strict_json)

__all__ = ["add_parsers"]


def cmd_train(args: argparse.Namespace) -> None:
    """Train (or resume) a run on MNIST's training digits (intensities in [0, 1], drawn
    as bits at every update) into ``--out``; the backend is checked before the data load."""
    from .compiled.arrays import backend
    from .data import load_mnist
    from .machines.dbm_run import DBMRecipe, DBMTrainer
    from .machines.runs import check_resume
    from .outputs import atomic_write_text, check_out_directory

    out = check_out_directory(args.out)
    check_resume(out / "recipe.json", args.resume, out)
    given = dict(hidden=args.hidden, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, chains=args.chains,
                 mean_field_iterations=args.mean_field_iterations, finetune_epochs=args.finetune_epochs,
                 snapshot_every=args.snapshot_every, joint_momentum=args.joint_momentum, seed=args.seed,
                 backend=args.backend, device=args.device, dtype=args.dtype)
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.resume:
        started = json.loads((out / "recipe.json").read_text())
        recipe, limit = replace(DBMRecipe(**started["recipe"]), **overrides), args.limit or started["n_cases"]
    else:
        recipe, limit = DBMRecipe(**overrides), args.limit
    backend(recipe.backend, recipe.device, recipe.dtype)
    X, labels = load_mnist("train", limit=limit)

    def begin() -> None:                                     # under the lock
        if not args.resume:
            atomic_write_text(out / "command.json", json.dumps({"argv": sys.argv, "recipe": asdict(recipe)},
                                                               indent=1))

    seconds = DBMTrainer(recipe, X, labels, out, checkpoint_s=60 * args.checkpoint_minutes).run(begin)
    print(f"trained {out}: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()))


def cmd_evaluate(args: argparse.Namespace) -> None:
    """The scores of a finished run (:func:`~neurosim.machines.dbm_run.evaluate`) on the
    test digits: binarised as ``neurosim rbm evaluate`` binarises them (seed 0) for the
    bound, intensities for the classifier."""
    from .data import load_binary_mnist, load_mnist
    from .machines.dbm_run import check_finished, curves, evaluate, stage_seconds

    start, rng = time.perf_counter(), np.random.default_rng(args.seed)
    check_finished(args.directory)                          # before the data load
    V_test = load_binary_mnist("test", 0, args.limit)[0]
    X_test, y_test = load_mnist("test", limit=args.limit)
    V_base = load_binary_mnist("train", 0)[0]
    scores = evaluate(args.directory, V_test, X_test, y_test, V_base, rng, args.runs, args.betas,
                      args.reverse_sweeps or None)
    seconds = stage_seconds(args.directory)
    result = {"directory": str(args.directory), **scores, "seconds": sum(seconds.values()),
              "stage_seconds": seconds, "test_cases": len(V_test), "ais_runs": args.runs, "ais_betas": args.betas,
              "recipe": json.loads((Path(args.directory) / "recipe.json").read_text())["recipe"]}
    if args.curves:
        result.update(curve_betas=args.curve_betas, curve_cases=len(V_test[:args.curve_cases]),
                      curves=curves(args.directory, V_test[:args.curve_cases], V_base, rng, args.runs,
                                    args.curve_betas))
    result["evaluate_seconds"] = time.perf_counter() - start
    print(strict_json(result) if args.json else _summary(result))


def _summary(r: dict) -> str:
    """One line of :func:`cmd_evaluate`'s scores."""
    reverse = (f"; {r['test_logprob_bound_lower_nats']:.2f} with reverse AIS's {r['logZ_ais_reverse']:.2f}"
               if "logZ_ais_reverse" in r else "")
    return (f"{r['directory']}: {r['test_cases']} test digits: variational bound {r['test_logprob_bound_nats']:.2f} "
            f"nats (log Z {r['logZ_ais']:.2f} +- {r['logZ_ais_std']:.2f} by AIS{reverse}), test error "
            f"{100 * r['test_error']:.2f}%; trained in {r['seconds'] / 60:.1f} min")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("dbm", help="the deep Boltzmann machine of Salakhutdinov and Hinton 2009 on MNIST")
    actions = sp.add_subparsers(dest="action", required=True)
    tr = single_valued(actions.add_parser(
        "train", help="pretrain, train jointly (mean-field and persistent chains), fine-tune a classifier"))
    tr.add_argument("--hidden", type=layer_sizes, default=None, metavar="N1,N2,...",
                    help="hidden layer sizes (default 500,1000)")
    tr.add_argument("--pretrain-epochs", type=non_negative_int, default=None, help="epochs per RBM (default 100)")
    tr.add_argument("--epochs", type=non_negative_int, default=None, help="epochs of joint training (default 500)")
    tr.add_argument("--chains", type=positive_int, default=None, help="persistent chains (default 100)")
    tr.add_argument("--mean-field-iterations", type=positive_int, default=None,
                    help="mean-field updates per minibatch at most (default 30)")
    tr.add_argument("--joint-momentum", type=float, default=None, metavar="M",
                    help="momentum of joint training from epoch 5 on (default 0.5; dbm_mf.m's 0.9 fails here)")
    tr.add_argument("--finetune-epochs", type=non_negative_int, default=None,
                    help="epochs of discriminative fine-tuning (default 100)")
    tr.add_argument("--snapshot-every", type=positive_int, default=None, metavar="E",
                    help="keep the machine every E joint epochs, for the learning curve (default 10)")
    tr.add_argument("--limit", type=positive_int, default=None, help="train on the first N digits only")
    tr.add_argument("--seed", type=seed, default=None)
    backend_flags(tr, "training: the pretraining RBMs, joint training and fine-tuning (evaluation: numpy)",
                  given_only=True)
    run_directory_flags(tr)
    tr.set_defaults(run=cmd_train)
    ev = single_valued(actions.add_parser(
        "evaluate", help="test log-probability bound (log Z by AIS) and the fine-tuned classifier's test error"))
    ev.add_argument("directory")
    ev.add_argument("--runs", type=positive_int, default=100, help="AIS runs (default 100)")
    ev.add_argument("--betas", type=positive_int, default=14500, help="AIS temperatures (default 14500)")
    ev.add_argument("--reverse-sweeps", type=non_negative_int, default=1000, metavar="S",
                    help="reverse AIS from the persistent chains continued S alternations: an upper bound on "
                         "log Z in expectation, so a lower bracket of the bound (0: skip; default 1000)")
    ev.add_argument("--limit", type=positive_int, default=None, help="the first N test digits only")
    ev.add_argument("--seed", type=seed, default=0, help="the AIS draws")
    ev.add_argument("--curves", action="store_true",
                    help="JSON: add each snapshot's AIS log Z and bound (the joint stage's learning curve)")
    ev.add_argument("--curve-betas", type=positive_int, default=5000, help="AIS temperatures per snapshot")
    ev.add_argument("--curve-cases", type=positive_int, default=1000, help="test digits per snapshot")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(run=cmd_evaluate)
