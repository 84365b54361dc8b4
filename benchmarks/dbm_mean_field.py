"""How many mean-field iterations a deep Boltzmann machine needs, with and without damping.

What is measured
----------------
For a DBM (``--model``, a ``DeepBoltzmannMachine`` ``.npz``; default a 784-500-1000
machine pretrained for ``--pretrain-epochs`` on 10,000 MNIST digits) and the first
``--cases`` binarised MNIST test digits (``load_binary_mnist("test", 0)``), for each
iteration cap ``k`` and damping ``d`` of :meth:`DeepBoltzmannMachine.mean_field`:

- ``bound_gap_nats``: the mean variational bound (eq. 5 of Salakhutdinov and Hinton 2009,
  log Z left out: it cancels) at the fixed point (``REFERENCE_ITERATIONS`` undamped
  updates) minus the bound after ``k``; each undamped half-update is exact coordinate
  ascent, so the gap is >= 0 there;
- ``max_abs_q_error``: the largest difference of any posterior probability from the
  fixed point's;
- ``seconds_per_100``: the time of ``k`` iterations for a minibatch of 100 (the joint
  stage's positive phase), and ``sgemm_seconds_per_iteration``, the two float32 matrix
  products of one iteration of a two-hidden-layer machine (``q_2 W_2^T``, ``q_1 W_2``)
  for the same minibatch, as the bare baseline.

Usage: ``python benchmarks/dbm_mean_field.py [--model RUN/dbm.npz] [--cases 1000]
[--threads 1] [--out benchmarks/results/dbm_mean_field.json] [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dbn_stages import write  # noqa: E402
from rbm_throughput import limited  # noqa: E402
from neurosim.data import load_binary_mnist, load_mnist  # noqa: E402
from neurosim.machines.dbm import DeepBoltzmannMachine  # noqa: E402

REFERENCE_ITERATIONS = 500
ITERATIONS = (1, 2, 3, 5, 10, 20, 30, 50)
DAMPINGS = (0.0, 0.5)


def model(path: str | None, pretrain_epochs: int, quick: bool) -> DeepBoltzmannMachine:
    """The DBM of ``path``, or one pretrained (no joint training) on MNIST digits."""
    if path:
        return DeepBoltzmannMachine.load(path)
    X = load_mnist("train", limit=2000 if quick else 10_000)[0]
    hidden = (50, 100) if quick else (500, 1000)
    return DeepBoltzmannMachine((784,) + hidden, n_iter=0, pretrain_epochs=pretrain_epochs, random_state=0).fit(X)


def bound(dbm: DeepBoltzmannMachine, V: np.ndarray, k: int, d: float) -> tuple[float, list[np.ndarray]]:
    """The mean bound without log Z, and the posteriors, after ``k`` updates damped by ``d``."""
    dbm.set_params(mean_field_iterations=k, damping=d)
    return float(np.mean(dbm.log_prob_bound(V, log_z=0.0))), dbm.mean_field(V)


def seconds(f, repeats: int = 5) -> float:
    f()
    start = time.perf_counter()
    for _ in range(repeats):
        f()
    return (time.perf_counter() - start) / repeats


def measure(dbm: DeepBoltzmannMachine, V: np.ndarray) -> dict:
    """Every row of the table (module doc) for the binary rows ``V``; prints them."""
    best, Q = bound(dbm, V, REFERENCE_ITERATIONS, 0.0)
    batch, W = V[:100], dbm.weights_
    q1, q2 = (q[:100] for q in Q[:2])
    rows = []
    for d in DAMPINGS:
        for k in ITERATIONS:
            b, q = bound(dbm, V, k, d)
            rows.append({"iterations": k, "damping": d, "bound_gap_nats": best - b,
                         "max_abs_q_error": float(max(np.abs(a - r).max() for a, r in zip(q, Q))),
                         "seconds_per_100": seconds(lambda: dbm._mean_field(batch, k, d))})
            print(f"damping {d}, {k:3d} iterations: bound {best - b:10.6f} nats below the fixed point, "
                  f"max |q - q*| {rows[-1]['max_abs_q_error']:.2e}, {1e3 * rows[-1]['seconds_per_100']:.1f} ms "
                  f"per 100 digits")
    return {"layers": list(dbm.layers), "cases": len(V), "reference_iterations": REFERENCE_ITERATIONS,
            "fixed_point_bound_without_log_z": best,
            "sgemm_seconds_per_iteration": seconds(lambda: (q2 @ W[1].T, q1 @ W[1])), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="a small pretrained machine, 200 digits (seconds)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    with limited(args.threads):
        dbm = model(args.model, 2 if args.quick else args.pretrain_epochs, args.quick)
        V = load_binary_mnist("test", 0, 200 if args.quick else args.cases)[0]
        result = {"model": args.model or f"pretrained {dbm.layers}", **measure(dbm, V)}
    if args.out:
        write(args, "dbm_mean_field", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
