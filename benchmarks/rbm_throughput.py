"""RBM training speed: neurosim.RBM against scikit-learn's BernoulliRBM, a plain PyTorch
CPU loop, and the machine's own matrix-multiply rate.

What is measured
----------------
Training cases per second of one pass (``n_iter=1``) of a 784-500 RBM over ``rows``
MNIST-shaped cases (default 10,000: 784 = 28 x 28 pixels in [0, 1], mean 0.13, ink on a
blob in the middle of the image, mostly near 0 or 1, from a seeded generator), minibatches
of 100, learning rate 0.1, the time of ``fit`` (validation and conversion of ``X``
included), best of ``repeats`` runs:

- *neurosim CD-1*: ``RBM(500, batch_size=100, n_iter=1, persistent=False, dtype=np.float32)``;
- *neurosim PCD-1*: the same with ``persistent=True``: scikit-learn's procedure (and
  ``neurosim.RBM``'s default), the like-for-like comparison;
- *neurosim PCD-1, rule path*: PCD-1 with the weight change computed by calling the
  registered rule (``get_rule("pcd").batched`` per phase) instead of the one fused matrix
  product of the bipartite kernel (``neurosim.compiled.bipartite.change``): what going
  through the rule would cost;
- *sklearn*: ``BernoulliRBM(500, batch_size=100, n_iter=1, learning_rate=0.1)`` given the
  data as float64 (its usual input), then as float32 (it then trains in float32);
- *torch CD-1*: the same CD-1 update as neurosim's (hidden probabilities of the data,
  sampled hidden states, visible probabilities, their hidden probabilities; eq. 6 on
  probabilities) written as a plain PyTorch loop in float32 (``addmm``, ``sigmoid``,
  ``torch.rand``), ``torch.set_num_threads`` equal to the BLAS threads of the setting,
  given the float32 array (``torch.from_numpy``, no copy) and the float64 one (converted
  inside the timing, as ``fit`` does).

neurosim is given the same float64 (and float32) array; it trains in float32. The
contenders take turns within each repetition, so the ratios survive a noisy machine
better than the rates do.

Against the hardware: the best float32 matrix-multiply rate (GFLOP/s) of large square
products and of the exact shapes of one update, the FLOPs of one minibatch's matrix
products (counted below), training throughput as a fraction of the square rate, and the
most cases per second the update's shapes allow. The float64 rates (dgemm) put
scikit-learn's float64 training on the same scale.

BLAS threads: with threadpoolctl (it comes with scikit-learn) everything is measured
with OpenBLAS limited to 1 thread and to 2 threads, interleaved, and the headline numbers
use the setting given by ``--threads`` (default 1). Without threadpoolctl only the
process's own setting is measured and recorded. The library never sets threads itself.

scikit-learn and PyTorch are optional peers, imported only here; without one its
comparison is recorded as unavailable, with the reason.

Usage: ``python benchmarks/rbm_throughput.py [--rows 10000] [--repeats 5] [--threads 1]
[--seed 0] [--out benchmarks/results/rbm_throughput.json]``; ``--quick`` (2,000 rows, one
repeat) writes to the temporary directory unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim import RBM  # noqa: E402
from neurosim.learning import get_rule  # noqa: E402

N_FEATURES, N_COMPONENTS, BATCH, LEARNING_RATE = 784, 500, 100, 0.1
GOALS = {"vs_sklearn_float64": 3.0, "vs_sklearn_float32": 1.5, "fraction_of_sgemm": 0.6, "vs_torch": 1.0}

try:
    from sklearn.neural_network import BernoulliRBM
    import sklearn
except ImportError:  # optional peer
    BernoulliRBM = sklearn = None
try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:
    threadpool_info = threadpool_limits = None


def mnist_like(rows: int, seed: int) -> np.ndarray:
    """``rows`` x 784 float64 in [0, 1], MNIST-shaped: ink on a blob in the middle of
    the 28 x 28 image (16% of pixels, up to 55% near the centre), most inked pixels near
    1, mean 0.13 (MNIST's is 0.13)."""
    rng = np.random.default_rng(seed)
    r = np.arange(28) - 13.5
    blob = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 6.0 ** 2)).ravel()
    p_on = 0.16 * blob / blob.mean()                     # mean ink probability 0.16
    on = rng.random((rows, N_FEATURES)) < np.minimum(p_on, 0.95)
    level = np.minimum(1.0, rng.beta(0.6, 0.15, (rows, N_FEATURES)) + 0.02)   # mostly near 1
    return np.where(on, level, 0.0)


def flops_per_minibatch(b: int = BATCH, nv: int = N_FEATURES, nh: int = N_COMPONENTS) -> dict:
    """Matrix-product FLOPs of one CD-1 or PCD-1 update on ``b`` cases (multiply-add = 2):
    hidden probabilities of the data (b x nv @ nv x nh), visible reconstruction
    (b x nh @ nh x nv), hidden probabilities of the reconstruction (b x nv @ nv x nh),
    and the weight change (nh x 2b @ 2b x nv, positive and negative phase stacked)."""
    one = 2 * b * nv * nh
    parts = {"hidden_given_data": one, "visible_given_hidden": one,
             "hidden_given_reconstruction": one, "weight_change": 2 * one}
    return {**parts, "total": sum(parts.values())}


class RulePathRBM(RBM):
    """PCD/CD with the weight change computed by calling the registered rule's batched
    form, phase by phase (as the rule is written), instead of the fused product."""

    def _learn(self, block, stats):
        V, _, H, b = stats
        m = len(V) - b
        rule = get_rule("pcd" if self.persistent else "cd")
        lr = self._lr
        dW = (rule.batched(H[:b], V[:b], "positive", lr / b)
              + rule.batched(H[b:], V[b:], "negative", lr / m))
        ones_p, ones_n = np.ones((b, 1), V.dtype), np.ones((m, 1), V.dtype)
        d_vis = (rule.batched(ones_p, V[:b], "positive", lr / b)[0]
                 + rule.batched(ones_n, V[b:], "negative", lr / m)[0])
        d_hid = (rule.batched(ones_p, H[:b], "positive", lr / b)[0]
                 + rule.batched(ones_n, H[b:], "negative", lr / m)[0])
        self._apply(block, {"W": dW.T, "b": d_vis, "c": d_hid})


def contenders(X64: np.ndarray, X32: np.ndarray, seed: int) -> dict:
    """name -> zero-argument function that trains one pass and returns the fitted model."""
    common = dict(batch_size=BATCH, n_iter=1, learning_rate=LEARNING_RATE, random_state=seed)
    ours = dict(common, dtype=np.float32)      # float32 arithmetic whatever the input
    out = {
        "neurosim_cd1_float64_input": lambda: RBM(N_COMPONENTS, persistent=False, **ours).fit(X64),
        "neurosim_cd1_float32_input": lambda: RBM(N_COMPONENTS, persistent=False, **ours).fit(X32),
        "neurosim_pcd1_float64_input": lambda: RBM(N_COMPONENTS, persistent=True, **ours).fit(X64),
        "neurosim_pcd1_float32_input": lambda: RBM(N_COMPONENTS, persistent=True, **ours).fit(X32),
        "neurosim_pcd1_rule_path_float32_input":
            lambda: RulePathRBM(N_COMPONENTS, persistent=True, **ours).fit(X32),
    }
    if BernoulliRBM is not None:
        out["sklearn_pcd1_float64_input"] = lambda: BernoulliRBM(N_COMPONENTS, **common).fit(X64)
        out["sklearn_pcd1_float32_input"] = lambda: BernoulliRBM(N_COMPONENTS, **common).fit(X32)
    torch, _ = optional_torch()
    if torch is not None:
        out["torch_cd1_float64_input"] = lambda: torch_cd1(torch, X64, seed)
        out["torch_cd1_float32_input"] = lambda: torch_cd1(torch, X32, seed)
    return out


def optional_torch():
    """``(torch, None)``, or ``(None, reason)`` when PyTorch cannot be imported: an
    optional peer, imported here only, never by the library."""
    try:
        import torch
    except ImportError as exc:
        return None, f"unavailable: {exc} (pip install torch)"
    return torch, None


def torch_cd1(torch, X: np.ndarray, seed: int, lr: float = LEARNING_RATE, batch: int = BATCH,
              n_components: int = N_COMPONENTS):
    """One pass of CD-1 over ``X`` in consecutive minibatches, as ``RBM(persistent=False)``
    does: ``H0 = sigmoid(c + V0 W.T)``, ``Hs ~ H0``, ``V1 = sigmoid(b + Hs W)``,
    ``H1 = sigmoid(c + V1 W.T)``; ``W += lr/m (H0.T V0 - H1.T V1)`` (eq. 6), the biases
    likewise. Float32; weights ``N(0, 0.01^2)``. Returns ``(W, b, c)`` as tensors."""
    g = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(X).to(torch.float32)        # no copy for float32 input
    W = 0.01 * torch.randn(n_components, data.shape[1], generator=g)
    b, c = torch.zeros(data.shape[1]), torch.zeros(n_components)
    with torch.no_grad():
        for start in range(0, len(data), batch):
            V0 = data[start:start + batch]
            rate = lr / len(V0)
            H0 = torch.sigmoid(torch.addmm(c, V0, W.T))
            Hs = (torch.rand(H0.shape, generator=g) < H0).to(torch.float32)
            V1 = torch.sigmoid(torch.addmm(b, Hs, W))
            H1 = torch.sigmoid(torch.addmm(c, V1, W.T))
            W.addmm_(H0.T, V0, alpha=rate).addmm_(H1.T, V1, alpha=-rate)
            b.add_(V0.sum(0) - V1.sum(0), alpha=rate)
            c.add_(H0.sum(0) - H1.sum(0), alpha=rate)
    return W, b, c


def limited(threads: int | None):
    """BLAS (threadpoolctl) and torch, if imported, limited to ``threads`` threads;
    restored after."""
    torch = sys.modules.get("torch")
    stack = contextlib.ExitStack()
    if threads is not None and threadpool_limits is not None:
        stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
    if threads is not None and torch is not None:
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(threads)
    return stack


def gemm_rate(m: int, k: int, n: int, transpose_b: bool = False, repeats: int = 5,
              dtype=np.float32) -> float:
    """Best GFLOP/s of ``(m x k) @ (k x n)`` into a preallocated output; the right factor
    a transposed view when ``transpose_b`` (as ``V @ W.T`` in the RBM)."""
    rng = np.random.default_rng(1)
    A = rng.random((m, k)).astype(dtype)
    B = rng.random((n, k)).astype(dtype).T if transpose_b else rng.random((k, n)).astype(dtype)
    C = np.empty((m, n), dtype)
    calls = max(1, int(2e9 // (2 * m * k * n)))      # about 2 GFLOP per timing
    np.matmul(A, B, out=C)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            np.matmul(A, B, out=C)
        best = min(best, (time.perf_counter() - t) / calls)
    return 2 * m * k * n / best / 1e9


def sgemm_rates(dtype=np.float32) -> dict:
    """Matrix-multiply rates of ``dtype`` (float32: sgemm; float64: dgemm, sklearn's
    usual arithmetic) for large square products and the shapes of one update."""
    b, nv, nh = BATCH, N_FEATURES, N_COMPONENTS
    shapes = {
        "square_2048": (2048, 2048, 2048, False),
        "hidden_given_visible_100x784_784x500T": (b, nv, nh, True),
        "visible_given_hidden_100x500_500x784": (b, nh, nv, False),
        "pcd_both_phases_200x784_784x500T": (2 * b, nv, nh, True),
        "weight_change_500x200_200x784": (nh, 2 * b, nv, False),
        "skinny_4096x13_13x13": (4096, 13, 13, False),
    }
    if dtype != np.float32:
        shapes.pop("pcd_both_phases_200x784_784x500T")
        shapes.pop("skinny_4096x13_13x13")
    rates = {name: round(gemm_rate(*shape, dtype=dtype), 1) for name, shape in shapes.items()}
    # the mix of one CD-1 update, weighted by its FLOPs (time = sum of flops / rate)
    f = flops_per_minibatch()
    t = (2 * f["hidden_given_data"] / rates["hidden_given_visible_100x784_784x500T"]
         + f["visible_given_hidden"] / rates["visible_given_hidden_100x500_500x784"]
         + f["weight_change"] / rates["weight_change_500x200_200x784"])
    rates["cd1_update_mix"] = round(f["total"] / t, 1)
    return rates


def measure(threads_list: list, X64, X32, repeats: int, seed: int) -> dict:
    """Best time of each contender under each thread setting, interleaved."""
    fns = contenders(X64, X32, seed)
    best = {t: {name: float("inf") for name in fns} for t in threads_list}
    gemm = {t: {} for t in threads_list}
    dgemm = {t: {} for t in threads_list}
    for t in threads_list:                     # warm up every code path once
        with limited(t):
            for fn in fns.values():
                fn()
    for _ in range(repeats):
        for t in threads_list:
            with limited(t):
                for name, fn in fns.items():
                    start = time.perf_counter()
                    fn()
                    best[t][name] = min(best[t][name], time.perf_counter() - start)
                for store, dtype in ((gemm, np.float32), (dgemm, np.float64)):
                    for key, value in sgemm_rates(dtype).items():
                        store[t][key] = max(store[t].get(key, 0.0), value)
    return {"best_seconds": best, "sgemm_gflops": gemm, "dgemm_gflops": dgemm}


def summarise(rows: int, seconds: dict, gemm: dict, dgemm: dict) -> dict:
    rate = {name: round(rows / s, 1) for name, s in seconds.items()}
    flops = flops_per_minibatch()["total"] / BATCH
    out = {"samples_per_s": rate, "sgemm_gflops": gemm, "dgemm_gflops": dgemm,
           "max_samples_per_s_at_update_sgemm_rate": round(gemm["cd1_update_mix"] * 1e9 / flops, 1)}
    ratios = {}
    if "sklearn_pcd1_float64_input" in rate:
        for kind in ("float64", "float32"):
            sk = rate[f"sklearn_pcd1_{kind}_input"]
            ratios[f"cd1_vs_sklearn_{kind}_input"] = round(rate[f"neurosim_cd1_{kind}_input"] / sk, 2)
            ratios[f"pcd1_vs_sklearn_{kind}_input"] = round(rate[f"neurosim_pcd1_{kind}_input"] / sk, 2)
            ratios[f"ceiling_vs_sklearn_{kind}_input"] = round(out["max_samples_per_s_at_update_sgemm_rate"] / sk, 2)
    if "torch_cd1_float64_input" in rate:
        for kind in ("float64", "float32"):
            ratios[f"cd1_vs_torch_{kind}_input"] = round(rate[f"neurosim_cd1_{kind}_input"]
                                                         / rate[f"torch_cd1_{kind}_input"], 2)
    ratios["pcd1_rule_path_vs_fused"] = round(rate["neurosim_pcd1_rule_path_float32_input"]
                                              / rate["neurosim_pcd1_float32_input"], 3)
    out["ratios"] = ratios
    gflops = {name: round(r * flops / 1e9, 1) for name, r in rate.items()}
    out["training_gflops"] = gflops
    out["fraction_of_sgemm"] = {
        name: {"of_square": round(g / gemm["square_2048"], 3),
               "of_update_shapes": round(g / gemm["cd1_update_mix"], 3)}
        for name, g in gflops.items() if not name.endswith("float64_input") or not name.startswith("sklearn")}
    if "sklearn_pcd1_float64_input" in gflops:
        g = gflops["sklearn_pcd1_float64_input"]
        out["sklearn_float64_fraction_of_dgemm"] = {
            "of_square": round(g / dgemm["square_2048"], 3),
            "of_update_shapes": round(g / dgemm["cd1_update_mix"], 3)}
    return out


def default_out(name: str, quick: bool) -> Path:
    """Where a benchmark writes without --out: results/NAME.json, or the temporary
    directory for a --quick run (never the recorded results)."""
    return (Path(tempfile.gettempdir()) / f"{name}_quick.json" if quick
            else Path(__file__).parent / "results" / f"{name}.json")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads of the headline numbers (needs threadpoolctl)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="default benchmarks/results/rbm_throughput.json; with --quick, the temporary directory")
    ap.add_argument("--quick", action="store_true", help="2,000 rows, one repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 2000, 1
    args.out = args.out or default_out("rbm_throughput", args.quick)
    torch, torch_absent = optional_torch()

    X64 = mnist_like(args.rows, args.seed)
    X32 = X64.astype(np.float32)
    threads_list = sorted({1, 2, args.threads}) if threadpool_limits else [None]
    started = time.perf_counter()
    raw = measure(threads_list, X64, X32, args.repeats, args.seed)
    per_threads = {str(t): summarise(args.rows, raw["best_seconds"][t], raw["sgemm_gflops"][t],
                                     raw["dgemm_gflops"][t])
                   for t in threads_list}
    head_key = str(args.threads if threadpool_limits else None)
    head = per_threads[head_key]
    ratios = head["ratios"]
    frac = head["fraction_of_sgemm"]["neurosim_cd1_float32_input"]["of_square"]
    goals = {"fraction_of_sgemm (CD-1, float32 input)": [frac, GOALS["fraction_of_sgemm"],
                                                          frac >= GOALS["fraction_of_sgemm"]]}
    if "cd1_vs_sklearn_float64_input" in ratios:
        for kind in ("float64", "float32"):
            for proc in ("cd1", "pcd1"):
                r = ratios[f"{proc}_vs_sklearn_{kind}_input"]
                g = GOALS[f"vs_sklearn_{kind}"]
                goals[f"{proc} vs sklearn ({kind} input)"] = [r, g, r >= g]
    if "cd1_vs_torch_float32_input" in ratios:
        for kind in ("float64", "float32"):
            r = ratios[f"cd1_vs_torch_{kind}_input"]
            goals[f"cd1 vs torch ({kind} input)"] = [r, GOALS["vs_torch"], r >= GOALS["vs_torch"]]
    blas = threadpool_info() if threadpool_info else None
    result = {
        "benchmark": "rbm_throughput",
        "rows": args.rows, "n_features": N_FEATURES, "n_components": N_COMPONENTS,
        "batch_size": BATCH, "learning_rate": LEARNING_RATE, "n_iter": 1,
        "repeats": args.repeats, "seed": args.seed,
        "data_mean": round(float(X64.mean()), 4),
        "timing": "best of repeats, seconds of fit() incl. input validation/conversion; "
                  "contenders interleaved within each repeat",
        "flops_per_minibatch": flops_per_minibatch(),
        "flops_per_sample": flops_per_minibatch()["total"] // BATCH,
        "headline_blas_threads": args.threads if threadpool_limits else "process default",
        "headline": head,
        "goals": {k: {"value": v, "goal": g, "met": bool(m)} for k, (v, g, m) in goals.items()},
        "by_blas_threads": per_threads,
        "blas_threads_note": ("threadpoolctl limits OpenBLAS in-process to 1 and 2 threads; "
                              "the library sets no threads itself"
                              if threadpool_limits else "threadpoolctl unavailable: only the "
                              "process's own BLAS setting measured"),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS")},
        "blas": [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                 for d in blas] if blas else None,
        "sklearn": sklearn.__version__ if sklearn else "unavailable (pip install neurosim[bench])",
        "torch": torch_absent or {"version": torch.__version__, "mkl": torch.backends.mkl.is_available(),
                                  "threads": "torch.set_num_threads = the BLAS threads of each setting"},
        "python": platform.python_version(), "numpy": np.__version__,
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)

    print(f"RBM {N_FEATURES}-{N_COMPONENTS}, batch {BATCH}, {args.rows} rows, best of {args.repeats}; "
          f"BLAS threads {result['headline_blas_threads']}")
    for name, r in head["samples_per_s"].items():
        print(f"  {name:40s} {r:10.0f} samples/s  {head['training_gflops'][name]:6.1f} GFLOP/s")
    print(f"  sgemm: square {head['sgemm_gflops']['square_2048']} GFLOP/s, update shapes "
          f"{head['sgemm_gflops']['cd1_update_mix']} GFLOP/s (at most "
          f"{head['max_samples_per_s_at_update_sgemm_rate']:.0f} samples/s); dgemm: square "
          f"{head['dgemm_gflops']['square_2048']}, update shapes {head['dgemm_gflops']['cd1_update_mix']}")
    for k, v in result["goals"].items():
        print(f"  {k}: {v['value']} (goal >= {v['goal']}: {'met' if v['met'] else 'NOT met'})")
    for t, s in per_threads.items():
        print(f"  threads={t}: " + ", ".join(f"{k}={v}" for k, v in s["ratios"].items())
              + f"; CD-1 f32 {s['samples_per_s']['neurosim_cd1_float32_input']:.0f}/s"
              + (f", sklearn f64 {s['samples_per_s']['sklearn_pcd1_float64_input']:.0f}/s"
                 if "sklearn_pcd1_float64_input" in s["samples_per_s"] else "")
              + (f", torch CD-1 f32 {s['samples_per_s']['torch_cd1_float32_input']:.0f}/s"
                 if "torch_cd1_float32_input" in s["samples_per_s"] else ""))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
