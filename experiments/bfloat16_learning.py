"""Does bfloat16 change what an RBM learns? One recipe on numpy float32, torch float32 and
torch bfloat16 (issue 25's first learning check).

A 784-20 RBM (CD-1, lr 0.1, minibatches of 100; the ``rbm train`` defaults otherwise)
trained for 5 epochs on the first 10,000 training digits, stochastically binarised,
seed 0 for every contender; scored by the exact mean log-likelihood of the 10,000 test
digits (``rbm evaluate --exact``: 2^20 hidden states enumerated). Goal: bfloat16 within
0.5 nat of float32. The seed chooses the draws and also the binarisation of the training
and test digits, so contenders are compared seed by seed: the mean paired difference
over ``--seeds`` and its standard error. torch float32 and bfloat16 start from the same
torch draws and differ only in the products; numpy float32 draws other numbers, so its
difference from torch float32 is the recipe's own spread over draws.

Usage: ``python experiments/bfloat16_learning.py [--seeds 0 1 2] [--out FILE.json]``
(about 20 s a contender and seed on one core; needs the torch extra and MNIST:
``neurosim data fetch mnist``). Record: ``benchmarks/results/mnist/bfloat16_learning.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CONTENDERS = {"numpy_float32": [], "torch_float32": ["--backend", "torch"],
              "torch_bfloat16": ["--backend", "torch", "--dtype", "bfloat16"]}
RECIPE = ["--hidden", "20", "--epochs", "5", "--limit", "10000"]
GOAL_NATS = 0.5


def neurosim(*args: str) -> dict:
    """``python -m neurosim ARGS --json``'s output."""
    done = subprocess.run([sys.executable, "-m", "neurosim", *args, "--json"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"neurosim {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def test_log_likelihood(flags: list[str], seed: int, directory: Path) -> dict:
    model = directory / f"rbm_{seed}_{'_'.join(flags) or 'numpy'}.npz"
    trained = neurosim("rbm", "train", *RECIPE, *flags, "--seed", str(seed), "--out", str(model))
    scored = neurosim("rbm", "evaluate", str(model), "--exact")
    return {"test_logprob_nats": scored["test_logprob_nats"], "train_seconds": trained["train_seconds"]}


def paired(d: np.ndarray) -> dict:
    """The mean of seed-by-seed differences, its standard error, and the largest one."""
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None
    return {"mean_nats": float(d.mean()), "standard_error_nats": se, "largest_nats": float(np.abs(d).max())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: {seed: test_log_likelihood(flags, seed, Path(tmp)) for seed in args.seeds}
                for name, flags in CONTENDERS.items()}
    ll = {name: np.array([r["test_logprob_nats"] for r in by_seed.values()]) for name, by_seed in runs.items()}
    pairs = {f"{a}_minus_{b}": paired(ll[a] - ll[b]) for a, b in (("torch_bfloat16", "torch_float32"),
                                                                 ("torch_bfloat16", "numpy_float32"),
                                                                 ("torch_float32", "numpy_float32"))}
    gap = pairs["torch_bfloat16_minus_torch_float32"]["mean_nats"]
    out = {"recipe": "neurosim rbm train " + " ".join(RECIPE) + " [--backend torch [--dtype bfloat16]] --seed S; "
                     "neurosim rbm evaluate MODEL --exact",
           "seeds": args.seeds,
           "runs": {name: {str(s): r for s, r in by_seed.items()} for name, by_seed in runs.items()},
           "paired_differences": pairs,
           "goal": {"bfloat16_minus_float32_mean_nats": gap, "goal": GOAL_NATS, "met": abs(gap) <= GOAL_NATS}}
    text = json.dumps(out, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return out


if __name__ == "__main__":
    main()
