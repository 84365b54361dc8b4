"""Forward and reverse AIS against the exact log Z of MNIST RBMs small enough to enumerate.

Issue 28 asks whether the project's AIS brackets can be trusted at MNIST's scale. An RBM
with 784 visible and at most 20 hidden units has an exact log Z (the visible units summed
out, every hidden state enumerated: :func:`~neurosim.machines.ais.exact_log_partition`)
and exact samples (``h`` from its enumerated marginal, then ``v`` given ``h``). For each
such RBM, trained on binarised MNIST here, this compares with the exact value:

* forward AIS (``rbm evaluate``'s: 100 runs, 14,500 temperatures, the data base rate);
* reverse AIS from exact samples of the model (a stochastic upper bound on log Z);
* reverse AIS from Gibbs chains started at training digits (``rbm evaluate``'s start,
  ``--reverse-sweeps`` steps): how far that start is from being samples of the model.

Usage: ``python experiments/ais_bracket.py [--hidden 20] [--cd 1 --persistent] [--epochs 20]
[--out ais_bracket.json]``. A minute or two on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.data import load_binary_mnist  # noqa: E402
from neurosim.machines.ais import (MAX_EXACT, ais_log_partition, exact_log_partition, log_prob,  # noqa: E402
                                   model_samples)
from neurosim.machines.rbm import RBM, RBM_M_MOMENTUM  # noqa: E402
from neurosim.numerics import categorical, sigmoid, softplus  # noqa: E402


def exact_samples(W: np.ndarray, b: np.ndarray, c: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` exact visible samples of the RBM ``(W, b, c)`` (n_visible x n_hidden, at most
    20 hidden units): ``h`` from ``p(h) ~ exp(c.h + sum_i softplus(b_i + (W h)_i))``, every
    state enumerated, then ``v ~ p(v | h)``."""
    m = W.shape[1]
    H = ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1).astype(np.float64)
    log_p = H @ c + softplus(H @ W.T + b).sum(axis=1)
    p = np.exp(log_p - log_p.max())
    h = H[categorical(np.broadcast_to(p / p.sum(), (n, len(p))), rng.random(n))]
    return (rng.random((n, len(b))) < sigmoid(h @ W.T + b)).astype(np.float32)


def bracket(rbm: RBM, train: np.ndarray, test: np.ndarray, args: argparse.Namespace) -> dict:
    """Every log Z of one RBM and the mean test log-probability each gives."""
    W, b, c = (x.astype(np.float64) for x in (rbm.components_.T, rbm.intercept_visible_, rbm.intercept_hidden_))
    rng = np.random.default_rng(args.seed)
    log_z = {"exact": exact_log_partition(W, b, c),
             "forward": ais_log_partition(W, b, c, rng, args.runs, args.betas, train),
             "reverse_exact_samples": ais_log_partition(W, b, c, rng, args.runs, args.betas, train,
                                                        start=exact_samples(W, b, c, args.runs, rng)),
             "reverse_gibbs_from_digits": ais_log_partition(
                 W, b, c, rng, args.runs, args.betas, train,
                 start=model_samples(W, b, c, train[:args.runs], rng, args.reverse_sweeps))}
    row = {}
    for name, z in log_z.items():
        value = z if isinstance(z, float) else z.log_z
        row[name] = {"logZ": value, "logZ_std": None if isinstance(z, float) else z.log_z_std,
                     "error_nats": value - log_z["exact"],
                     "test_logprob_nats": float(np.mean(log_prob(test, W, b, c, value)))}
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[20])
    ap.add_argument("--cd", type=int, default=1)
    ap.add_argument("--persistent", action="store_true")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--betas", type=int, default=14500)
    ap.add_argument("--reverse-sweeps", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=None, help="the first N training digits only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if not all(1 <= h <= MAX_EXACT for h in args.hidden):
        ap.error(f"--hidden must lie in 1..{MAX_EXACT}: the exact log Z enumerates the hidden layer, got {args.hidden}")
    train, test = load_binary_mnist("train", 0, args.limit)[0], load_binary_mnist("test", 0)[0]
    rows = []
    for hidden in args.hidden:
        start = time.perf_counter()
        rbm = RBM(n_components=hidden, learning_rate=args.lr, batch_size=100, k=args.cd, persistent=args.persistent,
                  **RBM_M_MOMENTUM, n_iter=args.epochs, weight_decay=0.0002, shuffle=True,
                  random_state=args.seed).fit(train)                   # `neurosim rbm train`'s settings
        rows.append({"hidden": hidden, "cd": args.cd, "persistent": args.persistent, "lr": args.lr,
                     "epochs": args.epochs, **bracket(rbm, train, test, args),
                     "seconds": time.perf_counter() - start})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"argv": sys.argv, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
