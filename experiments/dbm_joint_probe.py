"""Joint training of a deep Boltzmann machine from a pretrained one, scored on held-out digits.

From ``RUN/pretrained.npz`` (a ``neurosim dbm train`` run), a few epochs of joint
training on the first ``--train`` training digits for each setting, then the mean
variational bound on the last ``--held-out`` training digits (binarised as ``neurosim
rbm evaluate`` binarises them; never the test set), ``log Z`` by AIS (``--runs`` x
``--betas``, the base rate of 10,000 binarised training digits). One JSON line per setting.

Usage: ``python experiments/dbm_joint_probe.py RUN --lr 0.001 --momentum 0.5 --epochs 5
[--sparsity 0.2 0.1] [--negative-phase probabilities] [--out probe.jsonl]``; ``--lr`` and
``--momentum`` take several values; ``--sparsity`` and ``--negative-phase`` are
``dbm_mf.m``'s sparsity targets and negative statistic. With ``--pretrain EPOCHS``, first
``RUN/pretrained.npz`` is made as ``neurosim dbm train``'s pretraining stage makes it (all
60,000 training digits, seed 0), with ``--pretrain-sampling`` and ``--pretrain-cd-every``
(``rbm.m``'s and ``rbm_l2.m``'s sampled states and growing CD-k).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.data import load_binary_mnist, load_mnist  # noqa: E402
from neurosim.machines.dbm import DeepBoltzmannMachine  # noqa: E402
from neurosim.machines.dbm_run import DBMRecipe  # noqa: E402


def probe(run: Path, X: np.ndarray, held: np.ndarray, base: np.ndarray, lr: float, momentum: float,
          args: argparse.Namespace) -> dict:
    """One setting: joint training from the pretrained machine, then the held-out bound."""
    start = time.perf_counter()
    dbm = DeepBoltzmannMachine.load(run / "pretrained.npz", warm_start=True, n_iter=args.epochs, learning_rate=lr,
                                    momentum=momentum, final_momentum=momentum,
                                    mean_field_iterations=args.mean_field_iterations, random_state=args.seed,
                                    sparsity_targets=args.sparsity, negative_phase=args.negative_phase)
    dbm.fit(X)
    ais = dbm.ais_log_partition(args.runs, args.betas, base)
    return {"run": str(run), "lr": lr, "momentum": momentum, "epochs": args.epochs, "train_cases": len(X),
            "sparsity_targets": args.sparsity, "negative_phase": args.negative_phase,
            "held_out_bound_nats": float(dbm.log_prob_bound(held, ais.log_z).mean()), "logZ_ais": ais.log_z,
            "logZ_ais_std": ais.log_z_std, "seconds": time.perf_counter() - start}


def pretrain(run: Path, args: argparse.Namespace) -> None:
    """``run/pretrained.npz``: the pretraining stage of ``DBMRecipe`` (784-500-1000, seed 0)
    with ``args``' pretraining options."""
    start = time.perf_counter()
    X = load_mnist("train")[0]
    dbm = DBMRecipe(pretrain_epochs=args.pretrain).machine(
        X.shape[1], n_iter=0, pretrain_sampling=args.pretrain_sampling,
        pretrain_cd_every=args.pretrain_cd_every).fit(X)
    run.mkdir(parents=True, exist_ok=True)
    dbm.save(run / "pretrained.npz", info={"seconds": time.perf_counter() - start})
    print(f"pretrained {run} in {time.perf_counter() - start:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--lr", type=float, nargs="+", default=[0.001])
    ap.add_argument("--momentum", type=float, nargs="+", default=[0.5])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--held-out", type=int, default=1000)
    ap.add_argument("--mean-field-iterations", type=int, default=10)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--betas", type=int, default=2000)
    ap.add_argument("--sparsity", type=float, nargs="+", default=None)
    ap.add_argument("--negative-phase", default="states")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--pretrain", type=int, default=None, metavar="EPOCHS")
    ap.add_argument("--pretrain-sampling", action="store_true")
    ap.add_argument("--pretrain-cd-every", type=int, default=0)
    args = ap.parse_args(argv)
    if args.pretrain is not None:
        pretrain(args.run, args)
    if not (args.run / "pretrained.npz").is_file():
        ap.error(f"{args.run}: no pretrained.npz (a `neurosim dbm train` run, or make one with --pretrain EPOCHS)")
    X = load_mnist("train")[0][:args.train]
    V = load_binary_mnist("train", 0)[0]
    for lr in args.lr:
        for momentum in args.momentum:
            line = json.dumps(probe(args.run, X, V[-args.held_out:], V[:10_000], lr, momentum, args))
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
