"""Throughput of the deep autoencoder's training stages, against sgemm.

What is measured
----------------
For the 784-1000-500-250-30 autoencoder of Hinton and Salakhutdinov (2006), on
MNIST-shaped cases (random pixels in [0, 1], a fifth of them on; the number of
line-search evaluations depends on the data, the rest does not), the steps
``neurosim autoencoder train`` runs, timed as ``dbn_stages.py`` times them:

- ``rbm1`` (784-1000) and ``rbm_code`` (250-30, linear hidden units, ``rbmhidlinear.m``):
  one CD-1 update of ``rbm_step`` on a minibatch of 100;
- ``backprop_cg3``: three conjugate-gradient line searches of the unrolled net (random
  tied weights) on a minibatch of 1000, as ``backprop.m``; with ``--torch float32
  bfloat16``, ``backprop_cg3_torch_<dtype>`` on the torch backend;
- ``logistic_pca_cg3``: the same for the 784-30-784 logistic PCA net.

CG rows give ``evaluations_per_step`` (gradient evaluations of the line searches) and
``seconds_per_epoch`` (60 steps: 60,000 digits); the published recipe runs 200 epochs
of each. FLOPs count the matrix products only.

Usage: ``python benchmarks/autoencoder_stages.py [--batches 20] [--repeats 3]
[--torch float32 bfloat16] [--threads 2] [--out benchmarks/results/autoencoder_stages.json]``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dbn_stages import CGStep, measure, rbm_flops, sgemm_rate, write  # noqa: E402
from neurosim.compiled import arrays  # noqa: E402
from neurosim.machines.autoencoder import (RBM_LINEAR, RBM_SETTINGS, AutoencoderRecipe,  # noqa: E402
                                           logistic_pca_net, unroll)
from neurosim.machines.dbn_train import RBM_M, new_rbm, rbm_step  # noqa: E402
from rbm_throughput import limited  # noqa: E402

LAYERS = (784, 1000, 500, 250, 30)
CG_BATCH, EPOCH = 1000, 60_000


def gradient_flops(sizes: list[tuple[int, int]], m: int = CG_BATCH) -> float:
    """Forward, backward and gradient products of a feed-forward net of weight blocks
    ``sizes``, none into the pixels."""
    return 2 * m * (sum(3 * a * b for a, b in sizes) - sizes[0][0] * sizes[0][1])


def pixels(rng: np.random.Generator, m: int) -> np.ndarray:
    return (rng.random((m, LAYERS[0])) * (rng.random((m, LAYERS[0])) < 0.2)).astype(np.float32)


def stages(rng: np.random.Generator, torch_dtypes: tuple[str, ...] = ()) -> dict:
    out = {}
    linear = replace(RBM_SETTINGS, learning_rate=AutoencoderRecipe().linear_learning_rate)
    for name, n_v, n_h, cd, r in (("rbm1", 784, 1000, RBM_M, RBM_SETTINGS), ("rbm_code", 250, 30, RBM_LINEAR, linear)):
        p, vel = new_rbm(n_v, n_h, 0, r, rng)
        V, held = pixels(rng, 100)[:, :n_v], {}

        def step(p=p, vel=vel, V=V, cd=cd, r=r, held=held) -> None:
            held["buf"] = rbm_step(p, vel, V, None, r, 0.9, rng, held.get("buf"), cd=cd)

        out[name] = (step, rbm_flops(n_v, n_h))
    rbms = [{"W": (0.1 * rng.standard_normal((a, b))).astype(np.float32), "b": np.zeros(a, np.float32),
             "c": np.zeros(b, np.float32)} for a, b in zip(LAYERS, LAYERS[1:])]
    X, sizes = pixels(rng, CG_BATCH), list(zip(LAYERS, LAYERS[1:]))
    flops = gradient_flops(sizes + [(b, a) for a, b in reversed(sizes)])
    for name, backend in [("backprop_cg3", arrays.backend())] + [
            (f"backprop_cg3_torch_{dtype}", arrays.backend("torch", "cpu", dtype)) for dtype in torch_dtypes]:
        out[name] = CGStep(unroll(rbms), X, X, flops, backend=backend, output="logistic", linear=(len(LAYERS) - 2,), summed=False)     # the code layer: linear
    out["logistic_pca_cg3"] = CGStep(logistic_pca_net(LAYERS[0], LAYERS[-1], rng), X, X,
                                     gradient_flops([(LAYERS[0], LAYERS[-1]), (LAYERS[-1], LAYERS[0])]),
                                     output="logistic", linear=(0,), summed=False)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--torch", nargs="*", default=[], choices=arrays.DTYPES, help="torch backprop contenders")
    p.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: as set)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "autoencoder_stages.json"))
    args = p.parse_args()
    if args.torch:
        arrays.import_torch()                   # imported before the threads are limited
    with limited(args.threads):
        rate = sgemm_rate()
        rows = measure(stages(np.random.default_rng(0), tuple(args.torch)), args.batches, args.repeats, rate)
    for row in rows.values():
        if "minibatch" in row:
            row["seconds_per_epoch"] = EPOCH / row["samples_per_s"]
    write(args, "autoencoder_stages", {"layers": LAYERS, "sgemm_gflops_2048": rate, "stages": rows})
    print(f"sgemm {rate:.1f} GFLOP/s; wrote {args.out}")


if __name__ == "__main__":
    main()
