"""RBM training speed on the torch backend: neurosim.RBM on numpy float32 against the
same RBM on torch with float32 and bfloat16 products (issue 25), and the matrix-multiply
rates of both dtypes.

What is measured
----------------
Training cases per second of one pass (``n_iter=1``) of CD-1 on a 784-500 RBM over
``rows`` MNIST-shaped float32 cases (``rbm_throughput.mnist_like``), learning rate 0.1,
the time of ``fit``, best of ``repeats`` runs, at minibatches of 100 and 1000:

- *numpy_float32*: ``RBM(500, persistent=False, dtype=np.float32)`` (today's path);
- *torch_float32*: the same with ``backend="torch"``;
- *torch_bfloat16*: ``backend="torch", dtype="bfloat16"``: float32 master weights,
  bfloat16 products (the cast policy of ``neurosim/compiled/arrays.py``).

The contenders take turns within each repetition. Threads: numpy's BLAS (threadpoolctl)
and torch (``torch.set_num_threads``) are limited to each of ``--threads`` (default 1).
Against the hardware: torch's best GFLOP/s for float32 and bfloat16 products of the
update's shapes (``b x 784 @ 784 x 500``) and of 1000-square ones, and each contender's
training GFLOP/s (the FLOPs of ``rbm_throughput.flops_per_minibatch``) as a fraction of
its dtype's update-shape rate (numpy's too: torch's float32 GEMM is the reference). **Goal** (issue 25): torch bfloat16 at 2.5 times numpy
float32 at minibatch 100; below 1.5 is not done.

**The deep Boltzmann machine** (``--dbm``, issue 27): seconds of one joint update of
``DeepBoltzmannMachine`` at 784-500-1000 (minibatch 100 of ``mnist_like`` digits drawn as
bits, 100 persistent chains, 10 mean-field iterations, 5 Gibbs alternations; random
weights ``0.1 N(0, 1)``, no pretraining), the mean of ``DBM_UPDATES`` consecutive updates,
best of ``repeats``, for the same three contenders, and its ratios; the FLOPs of its matrix
products (:func:`dbm_flops`) give each contender's GFLOP/s; ``phase_ms``: the milliseconds of
its phases (mean-field, the chains, the weight change) timed apart. ``mean_field_iterations_run``
checks that the weights are strong enough for mean-field to run all 10 iterations (it stops
early at ``MF_TOLERANCE``).

Usage: ``python benchmarks/torch_backend.py [--rows 10000] [--repeats 5] [--threads 1 2]
[--out benchmarks/results/torch_backend.json]``; ``--quick`` (5,000 rows, two repeats, 1
thread; about 15 s) writes to the temporary directory unless ``--out`` is given.
``--dbm [--quick]``: the DBM's row only (``results/torch_backend_dbm.json``; quick: two
repeats of 5 updates, 1 thread, about 7 s).
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
from neurosim import RBM  # noqa: E402
from rbm_throughput import default_out, flops_per_minibatch, limited, mnist_like  # noqa: E402

N_FEATURES, N_COMPONENTS, LEARNING_RATE = 784, 500, 0.1
BATCHES = (100, 1000)
CONTENDERS = {"numpy_float32": dict(backend="numpy", dtype=np.float32),
              "torch_float32": dict(backend="torch", dtype=np.float32),
              "torch_bfloat16": dict(backend="torch", dtype="bfloat16")}
GOAL, NOT_DONE = 2.5, 1.5
DBM_LAYERS, DBM_BATCH, DBM_CHAINS, DBM_MEAN_FIELD, DBM_GIBBS, DBM_SCALE = (784, 500, 1000), 100, 100, 10, 5, 0.1
DBM_UPDATES = 20


def train(X: np.ndarray, batch: int, seed: int, **params) -> RBM:
    return RBM(N_COMPONENTS, batch_size=batch, n_iter=1, learning_rate=LEARNING_RATE, persistent=False,
               random_state=seed, **params).fit(X)


def gemm_rates(torch, batch: int, repeats: int = 3) -> dict:
    """Best GFLOP/s of torch products, float32 and bfloat16: the update's hidden product
    (``batch x 784 @ 784 x 500``) and a 1000-square one."""
    out = {}
    for dtype in ("float32", "bfloat16"):
        for name, (m, k, n) in (("update", (batch, N_FEATURES, N_COMPONENTS)), ("square_1000", (1000,) * 3)):
            A, B = (torch.rand(s).to(getattr(torch, dtype)) for s in ((m, k), (k, n)))
            calls = max(1, int(1e9 // (2 * m * k * n)))
            A @ B
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(calls):
                    A @ B
                best = min(best, (time.perf_counter() - t) / calls)
            out[f"{dtype}_{name}"] = round(2 * m * k * n / best / 1e9, 1)
    return out


def measure(X: np.ndarray, threads: int, repeats: int, seed: int) -> dict:
    """Samples per second of each contender at each minibatch, the GEMM rates, ratios."""
    import torch

    result = {}
    with limited(threads):
        for batch in BATCHES:
            best = {name: float("inf") for name in CONTENDERS}
            for params in CONTENDERS.values():            # warm up
                train(X[:2 * batch], batch, seed, **params)
            for _ in range(repeats):
                for name, params in CONTENDERS.items():
                    t = time.perf_counter()
                    train(X, batch, seed, **params)
                    best[name] = min(best[name], time.perf_counter() - t)
            rate = {name: round(len(X) / s, 1) for name, s in best.items()}
            gemm = gemm_rates(torch, batch)
            flops = flops_per_minibatch(batch)["total"] / batch
            gflops = {name: round(r * flops / 1e9, 1) for name, r in rate.items()}
            result[str(batch)] = {
                "samples_per_s": rate, "training_gflops": gflops, "torch_gemm_gflops": gemm,
                "bfloat16_vs_numpy_float32": round(rate["torch_bfloat16"] / rate["numpy_float32"], 2),
                "torch_float32_vs_numpy_float32": round(rate["torch_float32"] / rate["numpy_float32"], 2),
                "fraction_of_update_gemm": {
                    name: round(g / gemm[("bfloat16" if name.endswith("bfloat16") else "float32") + "_update"], 3)
                    for name, g in gflops.items()}}
    return result


def dbm_flops(layers: tuple[int, ...] = DBM_LAYERS, b: int = DBM_BATCH, m: int = DBM_CHAINS,
              iterations: int = DBM_MEAN_FIELD, steps: int = DBM_GIBBS) -> dict:
    """FLOPs of the matrix products of one joint update of a two-hidden-layer DBM: mean-field
    (the visible input once, the doubled bottom-up start, then per iteration both layers'
    inputs), the chains (per alternation every layer's input: each weight block twice), and
    the weight change (each block's stacked product over ``b + m`` rows)."""
    nv, n1, n2 = layers
    block = {"W1": nv * n1, "W2": n1 * n2}
    mean_field = 2 * b * (2 * block["W1"] + block["W2"] + iterations * 2 * block["W2"])
    chains = 2 * m * steps * 2 * (block["W1"] + block["W2"])
    change = 2 * (b + m) * (block["W1"] + block["W2"])
    return {"mean_field": mean_field, "chains": chains, "change": change, "total": mean_field + chains + change}


def dbm_machine(X: np.ndarray, seed: int, layers: tuple[int, ...] = DBM_LAYERS, **params):
    """A DBM of random weights ``DBM_SCALE N(0, 1)`` ready for joint updates on ``X`` (the
    module's settings; ``params`` override)."""
    from neurosim.machines.dbm import DeepBoltzmannMachine

    settings = dict(batch_size=DBM_BATCH, n_chains=DBM_CHAINS, gibbs_steps=DBM_GIBBS,
                    mean_field_iterations=DBM_MEAN_FIELD, pretrain_epochs=0, init_scale=DBM_SCALE)
    dbm = DeepBoltzmannMachine(layers, random_state=seed, **{**settings, **params})
    return dbm, dbm._begin_fit(X)


def dbm_phases_ms(dbm, data: np.ndarray, repeats: int = 3) -> dict:
    """Milliseconds of each phase of a joint update (mean-field, the chains, the change)."""
    be = dbm._backend
    V = be.asarray((data[:DBM_BATCH] > 0.5).astype(np.float32))
    Q, S = dbm._mean_field(V, DBM_MEAN_FIELD, 0.0, be), dbm._negative(DBM_GIBBS)
    phases = {"mean_field": lambda: dbm._mean_field(V, DBM_MEAN_FIELD, 0.0, be),
              "chains": lambda: dbm._negative(DBM_GIBBS), "change": lambda: dbm._update(Q, S, 1e-9, 0.0)}
    out = {}
    for name, f in phases.items():
        t = time.perf_counter()
        for _ in range(repeats):
            f()
        out[name] = round(1e3 * (time.perf_counter() - t) / repeats, 1)
    return out


def dbm_update_seconds(X: np.ndarray, threads: int, repeats: int, updates: int, seed: int) -> dict:
    """Seconds per joint update of each contender (module doc), interleaved, best of ``repeats``."""
    from neurosim.machines.base import Position

    best = {name: float("inf") for name in CONTENDERS}
    with limited(threads):
        machines = {name: dbm_machine(X, seed, **params) for name, params in CONTENDERS.items()}
        for dbm, data in machines.values():                 # warm up
            dbm._fit_batch(data, slice(0, DBM_BATCH), Position())
        for _ in range(repeats):
            for name, (dbm, data) in machines.items():
                t = time.perf_counter()
                for k in range(updates):
                    rows = slice(k * DBM_BATCH % len(data), k * DBM_BATCH % len(data) + DBM_BATCH)
                    dbm._fit_batch(data, rows, Position(0, k))
                best[name] = min(best[name], (time.perf_counter() - t) / updates)
        phases = {name: dbm_phases_ms(dbm, data) for name, (dbm, data) in machines.items()}
        dbm, data = machines["numpy_float32"]
        V = (data[:DBM_BATCH] > 0.5).astype(np.float32)
        unconverged = not np.array_equal(dbm._mean_field(V, DBM_MEAN_FIELD - 1, 0.0)[-1],
                                         dbm._mean_field(V, DBM_MEAN_FIELD, 0.0)[-1])
    flops = dbm_flops()["total"]
    return {"layers": list(DBM_LAYERS), "minibatch": DBM_BATCH, "chains": DBM_CHAINS,
            "mean_field_iterations": DBM_MEAN_FIELD, "gibbs_steps": DBM_GIBBS, "weight_scale": DBM_SCALE,
            "updates_per_repeat": updates, "repeats": repeats, "threads": threads,
            "mean_field_iterations_run": DBM_MEAN_FIELD if unconverged else f"< {DBM_MEAN_FIELD}",
            "seconds_per_update": {name: round(s, 4) for name, s in best.items()}, "phase_ms": phases,
            "gflops": {name: round(flops / s / 1e9, 1) for name, s in best.items()}, "flops_per_update": dbm_flops(),
            "torch_float32_vs_numpy_float32": round(best["numpy_float32"] / best["torch_float32"], 2),
            "bfloat16_vs_numpy_float32": round(best["numpy_float32"] / best["torch_bfloat16"], 2)}


def main_dbm(args: argparse.Namespace) -> dict:
    """``--dbm``: the DBM's joint update only (module doc), written to ``args.out``."""
    import torch

    repeats, updates, threads = (2, 5, 1) if args.quick else (args.repeats, DBM_UPDATES, args.threads[0])
    X = mnist_like(DBM_BATCH * updates, args.seed).astype(np.float32)
    started = time.perf_counter()
    row = dbm_update_seconds(X, threads, repeats, updates, args.seed)
    result = {"benchmark": "torch_backend_dbm", "procedure": "one joint update of a deep Boltzmann machine",
              "timing": "best of repeats of the mean over consecutive updates; contenders interleaved", **row,
              "torch": {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()},
              "numpy": np.__version__, "python": platform.python_version(),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]},
              "quick": args.quick, "wall_seconds": round(time.perf_counter() - started, 1),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"DBM {'-'.join(map(str, DBM_LAYERS))} joint update, {threads} thread(s): " + ", ".join(
        f"{name} {1e3 * s:.1f} ms ({row['gflops'][name]} GFLOP/s)" for name, s in row["seconds_per_update"].items())
        + f"; torch float32 / numpy {row['torch_float32_vs_numpy_float32']}, bfloat16 / numpy "
          f"{row['bfloat16_vs_numpy_float32']}; wrote {args.out}")
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="default benchmarks/results/torch_backend.json; with --quick, the temporary directory")
    ap.add_argument("--quick", action="store_true", help="5,000 rows, two repeats, 1 thread")
    ap.add_argument("--dbm", action="store_true",
                    help="the deep Boltzmann machine's joint update only (784-500-1000; --quick: 1 thread)")
    args = ap.parse_args(argv)
    if args.dbm:
        args.out = args.out or default_out("torch_backend_dbm", args.quick)
        return main_dbm(args)
    if args.quick:
        args.rows, args.repeats, args.threads = 5000, 2, [1]
    args.out = args.out or default_out("torch_backend", args.quick)
    import torch

    X = mnist_like(args.rows, args.seed).astype(np.float32)
    started = time.perf_counter()
    by_threads = {str(t): measure(X, t, args.repeats, args.seed) for t in args.threads}
    head = by_threads[str(args.threads[0])]["100"]["bfloat16_vs_numpy_float32"]
    result = {
        "benchmark": "torch_backend", "procedure": "CD-1", "rows": args.rows, "n_features": N_FEATURES,
        "n_components": N_COMPONENTS, "learning_rate": LEARNING_RATE, "repeats": args.repeats, "seed": args.seed,
        "timing": "best of repeats, seconds of fit(); contenders interleaved within each repeat",
        "goal": {"value": head, "goal": GOAL, "met": head >= GOAL, "done": head >= NOT_DONE,
                 "what": f"torch bfloat16 / numpy float32 at minibatch 100, {args.threads[0]} thread(s)"},
        "by_threads": by_threads,
        "torch": {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "numpy": np.__version__, "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for t, per_batch in by_threads.items():
        for batch, r in per_batch.items():
            print(f"threads {t}, minibatch {batch}: " + ", ".join(
                f"{name} {rate:.0f}/s ({r['fraction_of_update_gemm'][name]:.0%} of its GEMM)"
                for name, rate in r["samples_per_s"].items())
                + f"; bf16/numpy {r['bfloat16_vs_numpy_float32']}, GEMM {r['torch_gemm_gflops']}")
    g = result["goal"]
    print(f"goal: {g['what']} = {g['value']} (goal {GOAL}: {'met' if g['met'] else 'NOT met'}; "
          f"done at {NOT_DONE}: {'yes' if g['done'] else 'no'}); wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
