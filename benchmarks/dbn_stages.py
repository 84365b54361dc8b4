"""Throughput of every training stage of the MNIST deep belief net, against sgemm.

What is measured
----------------
For the 784-500-500-2000 DBN with 10 labels (the ``hinton2006`` preset), minibatches
of 100 MNIST-shaped cases (random binary pixels of mean 0.13; speed does not depend
on the values), the steps the Trainer runs, each timed over ``--batches`` minibatches
after one warm-up, best of ``--repeats``:

- ``rbm1`` (784-500), ``rbm2`` (500-500), ``top`` (500+10 labels - 2000): one CD-1
  update of ``neurosim.machines.dbn_train.rbm_step``;
- ``updown_k3``, ``updown_k6``, ``updown_k10``: one ``DeepBeliefNet.up_down_step``
  (with the preset's momentum and weight cost) with CD-3, CD-6 and CD-10 in the top RBM:
  the paper's schedule, the preset runs CD-10 throughout;
- with ``--torch float32 bfloat16``, ``updown_k3_torch_<dtype>`` and ``updown_k10_torch_<dtype>``:
  the same up-down steps on the torch backend (``backend=``; bfloat16 products, float32
  master weights; its own copy of the DBN), and ``backprop_cg3_torch_<dtype>``;
- ``backprop``: one step of the Trainer's backprop fine-tuning (SGD, the preset);
- ``backprop_cg3``: three conjugate-gradient line searches on a minibatch of 1000, as
  ``backpropclassify.m`` (``--backprop-cg 3``); its FLOPs are those of the gradient
  evaluations it made (``evaluations_per_step``), which depend on the data.

FLOPs count the matrix products only (2 m k n for an m x k by k x n product). The
machine's float32 rate is the best of 2048 x 2048 sgemm in the same run. Each stage is
reported as samples/s, GFLOP/s and the fraction of that rate.

Usage: ``OPENBLAS_NUM_THREADS=1 python benchmarks/dbn_stages.py [--batches 20]
[--repeats 3] [--torch float32 bfloat16] [--threads 1] [--out benchmarks/results/dbn_stages.json]``
(``--threads``: BLAS and torch limited to that many threads, recorded with the torch version).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
import neurosim.machines.backprop as backprop  # noqa: E402
from neurosim.machines.dbn import DeepBeliefNet  # noqa: E402
from neurosim.machines.dbn_train import PRESETS, new_rbm, rbm_step  # noqa: E402
from neurosim.compiled import arrays  # noqa: E402
from rbm_throughput import limited  # noqa: E402

M = 100
V, H1, H2, TOP, LAB = 784, 500, 500, 2000, 10


def rbm_flops(n_v: int, n_h: int, n_lab: int = 0) -> float:
    """CD-1: up, down, up again, and both phases of the weight change (one product of
    twice the cases): five m x n_v x n_h products (labels: the same with n_lab)."""
    return 5 * 2 * M * (n_v + n_lab) * n_h


def updown_flops(k: int) -> float:
    return M * DeepBeliefNet((V, H1, H2, TOP), LAB).up_down_flops(k)


def backprop_flops(m: int = M) -> float:
    layers = [(V, H1), (H1, H2), (H2, TOP), (TOP, LAB)]
    return 2 * m * (sum(3 * a * b for a, b in layers) - V * H1)   # forward, backward, gradient; no
                                                                   # backward into the pixels


class CGStep:
    """One ``backprop_cg_step`` (3 line searches) of net ``p`` on ``X`` against ``Y``
    (``settings``: its ``output``, ``linear``, ``summed``, ``backend``), counting the
    gradient evaluations it makes; ``flops``: those of the evaluations per step so far,
    ``evaluation_flops`` each."""

    def __init__(self, p: dict, X: np.ndarray, Y: np.ndarray, evaluation_flops: float, **settings) -> None:
        self.p, self.X, self.Y, self.evaluation_flops, self.settings = p, X, Y, evaluation_flops, settings
        self.steps = self.evaluations = 0

    def __call__(self) -> None:
        gradient = backprop.backprop_gradient

        def counted(*args, **kwargs):
            self.evaluations += 1
            return gradient(*args, **kwargs)

        backprop.backprop_gradient = counted        # the name backprop_cg_step calls
        try:
            backprop.backprop_cg_step(self.p, self.X, self.Y, 3, **self.settings)
        finally:
            backprop.backprop_gradient = gradient
        self.steps += 1

    def flops(self) -> float:
        return self.evaluations / self.steps * self.evaluation_flops


def classifier_cg_step(d: DeepBeliefNet, rng: np.random.Generator, m: int = 1000,
                       backend: arrays.Backend = arrays.backend()) -> CGStep:
    """``backpropclassify.m``'s step: the DBN's backprop net on ``m`` random binary cases."""
    p = backprop.backprop_net(d, rng)
    X = (rng.random((m, V)) < 0.13).astype(np.float32)
    return CGStep(p, X, np.eye(LAB, dtype=np.float32)[rng.integers(0, LAB, m)], backprop_flops(m), backend=backend)


def sgemm_rate(repeats: int = 3) -> float:
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * 2048 ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def dbn(rng: np.random.Generator) -> DeepBeliefNet:
    d = DeepBeliefNet((V, H1, H2, TOP), LAB)
    for n_v, n_h in ((V, H1), (H1, H2)):
        d.add_rbm(0.1 * rng.standard_normal((n_v, n_h)), np.zeros(n_v), np.zeros(n_h))
    d.set_top(0.1 * rng.standard_normal((H2, TOP)), 0.1 * rng.standard_normal((LAB, TOP)),
              np.zeros(H2), np.zeros(LAB), np.zeros(TOP))
    return d


def stages(rng: np.random.Generator, torch_dtypes: tuple[str, ...] = ()) -> dict:
    r = PRESETS["hinton2006"]
    X = (rng.random((M, V)) < 0.13).astype(np.float32)
    Y = np.eye(LAB, dtype=np.float32)[rng.integers(0, LAB, M)]
    out = {}
    for name, n_v, n_h, n_lab, data in (("rbm1", V, H1, 0, X), ("rbm2", H1, H2, 0, X[:, :H1]),
                                        ("top", H2, TOP, LAB, X[:, :H2])):
        p, vel = new_rbm(n_v, n_h, n_lab, r, rng)
        held: dict = {}                          # the kernel's buffers, reused as the Trainer does

        def step(p=p, vel=vel, data=data, n_lab=n_lab, held=held) -> None:
            held["buf"] = rbm_step(p, vel, data, Y if n_lab else None, r, 0.9, rng, held.get("buf"))

        out[name] = (step, rbm_flops(n_v, n_h, n_lab))
    d, velocity = dbn(rng), {}
    for k in (3, 6, 10):
        out[f"updown_k{k}"] = (lambda k=k: d.up_down_step(X, Y, r.updown_lr, k, rng, r.updown_momentum,
                                                          r.updown_weight_decay, velocity),
                                 updown_flops(k))
    for dtype in torch_dtypes:
        be, d_t, v_t = arrays.backend("torch", "cpu", dtype), DeepBeliefNet.from_state_dict(d.state_dict()), {}
        for k in (3, 10):
            out[f"updown_k{k}_torch_{dtype}"] = (
                lambda k=k, be=be, d_t=d_t, v_t=v_t: d_t.up_down_step(X, Y, r.updown_lr, k, rng, r.updown_momentum,
                                                                      r.updown_weight_decay, v_t, backend=be),
                updown_flops(k))
    net = backprop.backprop_net(d, rng)
    vel = {k: np.zeros_like(v) for k, v in net.items()}
    out["backprop"] = (lambda: backprop.backprop_step(net, vel, X, Y, r.backprop_lr, r.backprop_momentum),
                       backprop_flops())
    out["backprop_cg3"] = classifier_cg_step(d, rng)
    for dtype in torch_dtypes:
        out[f"backprop_cg3_torch_{dtype}"] = classifier_cg_step(d, rng, backend=arrays.backend("torch", "cpu", dtype))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--torch", nargs="*", default=[], choices=arrays.DTYPES, help="torch up-down contenders")
    p.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: as set)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "dbn_stages.json"))
    args = p.parse_args()
    if args.torch:
        arrays.import_torch()                   # imported before the threads are limited
    with limited(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    rate = sgemm_rate()
    rows = measure(stages(np.random.default_rng(0), tuple(args.torch)), args.batches, args.repeats, rate)
    write(args, "dbn_stages", {"minibatch": M, "sgemm_gflops_2048": rate, "stages": rows})
    print(f"sgemm {rate:.1f} GFLOP/s; wrote {args.out}")


def measure(steps: dict, batches: int, repeats: int, rate: float) -> dict:
    """Each step (a ``(function, flops)`` pair of a minibatch of ``M``, or a
    :class:`CGStep`) timed over ``batches`` minibatches (CG steps: a tenth of them) after
    one warm-up, best of ``repeats``: samples/s, GFLOP/s, the fraction of ``rate``. A CG
    step's work changes from step to step (its evaluations): the mean of every timed step."""
    rows = {}
    for name, entry in steps.items():
        cg = isinstance(entry, CGStep)
        step, flops = (entry, None) if cg else entry
        cases, n = (len(entry.X), max(1, batches // 10)) if cg else (M, batches)
        step()
        if cg:
            entry.steps = entry.evaluations = 0
        times = [_timed(lambda: [step() for _ in range(n)]) for _ in range(repeats)]
        per_batch = (sum(times) / repeats if cg else min(times)) / n
        flops = entry.flops() if cg else flops
        rows[name] = {"samples_per_s": cases / per_batch, "gflops": flops / per_batch / 1e9,
                      "fraction_of_sgemm": flops / per_batch / 1e9 / rate,
                      "mflop_per_sample": flops / cases / 1e6}
        if cg:
            rows[name].update(minibatch=cases, evaluations_per_step=entry.evaluations / entry.steps)
        print(f"  {name:<11} {rows[name]['samples_per_s']:>9,.0f} samples/s  {rows[name]['gflops']:6.1f} "
              f"GFLOP/s  {rows[name]['fraction_of_sgemm']:.2f} of sgemm")
    return rows


def write(args: argparse.Namespace, benchmark: str, result: dict) -> None:
    """``result`` with the date and the machine's facts as JSON in ``args.out``."""
    torch = sys.modules.get("torch")
    result = {"benchmark": benchmark, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"python": platform.python_version(), "numpy": np.__version__,
                          "platform": platform.platform(), "cpus": os.cpu_count(),
                          "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"), "threads": args.threads,
                          "torch": torch.__version__ if torch else None,
                          "torch_threads": torch.get_num_threads() if torch else None},
              **result}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
