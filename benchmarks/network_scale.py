"""The Network at DBN scale: build, save and load the MNIST DBN's shape as populations.

The net: 784 visible, 500 and 500 hidden, 2000 top units and 10 label units; directed
generative weights h1 -> v and h2 -> h1 with recognition weights v -> h1 and h1 -> h2
below, and a symmetric top RBM between h2 + labels and the top layer. Every array is
random (weights ~ N(0, 0.01), biases ~ N(0, 1)).

Each step runs in a fresh subprocess, timed in one and measured with tracemalloc
(peak traced memory) in another, so neither disturbs the other. Goal (issue 24): load
through ``neurosim.load_model`` in under 2 s with a peak of at most 3 times the weight
bytes plus 100 MB. For comparison, a 784-500 RBM built unit by unit
(``Network(units, edges)``, one Edge per connection). Writes
``benchmarks/results/network_scale.json``.

    python benchmarks/network_scale.py [--quick]   # --quick: one run of each, no RBM
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurosim import Edge, Network, Unit, load_model, save_model  # noqa: E402
from neurosim.population import Population, Projection  # noqa: E402

DBN = (784, 500, 500, 2000)
LABELS = 10
GOAL_SECONDS, GOAL_FACTOR, GOAL_EXTRA = 2.0, 3.0, 100e6


def dbn_network(rng: np.random.Generator, sizes: tuple[int, int, int, int] = DBN, labels: int = LABELS) -> Network:
    """The MNIST DBN's shape with random arrays (module doc)."""
    v, h1, h2, top = sizes

    def pop(name: str, n: int, role: str, layer: int, recognition: bool = False) -> Population:
        return Population(name, tuple(f"{name}_{i}" for i in range(n)), rng.normal(0, 1, n), role, layer,
                          recognition_bias=rng.normal(0, 1, n) if recognition else None)

    def w(a: int, b: int) -> np.ndarray:
        return rng.normal(0, 0.01, (a, b))

    pops = [pop("v", v, "visible", 0), pop("h1", h1, "hidden", 1, True), pop("h2", h2, "hidden", 2, True),
            pop("lab", labels, "label", 2), pop("top", top, "hidden", 3)]
    projs = [Projection("h1->v", "h1", "v", w(h1, v)), Projection("h2->h1", "h2", "h1", w(h2, h1)),
             Projection("v=>h1", "v", "h1", w(v, h1), "recognition"),
             Projection("h1=>h2", "h1", "h2", w(h1, h2), "recognition"),
             Projection("h2<->top", "h2", "top", w(h2, top), "symmetric"),
             Projection("lab<->top", "lab", "top", w(labels, top), "symmetric")]
    return Network.from_populations(pops, projs, name="mnist_dbn", description="random arrays, DBN shape")


def weight_bytes(net: Network) -> int:
    """Bytes of every bias, weight, mask and reverse block the Network holds."""
    arrays = [a for p in net.populations for a in (p.bias, p.recognition_bias) if a is not None]
    arrays += [a for q in net.projections for a in (q.weights, q.mask, q.reverse) if a is not None]
    return sum(a.nbytes for a in arrays)


def rbm_by_units(rng: np.random.Generator, n_visible: int = 784, n_hidden: int = 500) -> tuple[list, list]:
    """A 784-500 RBM as Unit and Edge lists."""
    W = rng.normal(0, 0.01, (n_visible, n_hidden))
    units = [Unit(f"v{i}", 0.0, "visible", 0) for i in range(n_visible)]
    units += [Unit(f"h{j}", 0.0, "hidden", 1) for j in range(n_hidden)]
    edges = [Edge(f"v{i}", f"h{j}", float(W[i, j]), "symmetric") for i in range(n_visible) for j in range(n_hidden)]
    return units, edges


def _step(task: str, folder: Path, trace: bool) -> dict:
    """One measured step, in this (child) process."""
    rng = np.random.default_rng(0)
    path = folder / "dbn.toml"
    if task == "rbm_units":
        units, edges = rbm_by_units(rng)
        run = lambda: Network(units, edges)  # noqa: E731
    elif task == "build":
        run = lambda: dbn_network(rng)  # noqa: E731
    elif task == "save":
        net = dbn_network(rng)
        run = lambda: save_model(net, path, format="populations")  # noqa: E731
    else:
        run = lambda: load_model(path)  # noqa: E731
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    result = {"seconds": seconds, "peak_bytes": peak}
    if isinstance(out, Network):
        result.update(units=out.n_units, edges=out.n_edges, weight_bytes=weight_bytes(out))
    if task == "load":
        result["equal_to_saved"] = out == dbn_network(np.random.default_rng(0))
    return result


def measure(task: str, folder: Path, trace: bool) -> dict:
    """``_step`` in a fresh Python process."""
    cmd = [sys.executable, __file__, "--step", task, str(folder)] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def run(quick: bool) -> dict:
    repeats = 1 if quick else 3
    tasks = ["build", "save", "load"] + ([] if quick else ["rbm_units"])
    out: dict = {"net": {"sizes": list(DBN), "labels": LABELS}, "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for task in tasks:
            times = [measure(task, folder, trace=False) for _ in range(repeats)]
            traced = measure(task, folder, trace=True)
            out[task] = {**traced, "seconds": min(t["seconds"] for t in times), "seconds_traced": traced["seconds"]}
            if task == "save":
                out["files"] = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
    load = out["load"]
    bound = GOAL_FACTOR * load["weight_bytes"] + GOAL_EXTRA
    out["goal"] = {"load_seconds_max": GOAL_SECONDS, "peak_bytes_max": bound,
                   "met": load["seconds"] < GOAL_SECONDS and load["peak_bytes"] <= bound and load["equal_to_saved"]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each step, no RBM")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "network_scale.json")
    parser.add_argument("--step", nargs=2, metavar=("TASK", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        print(json.dumps(_step(args.step[0], Path(args.step[1]), args.trace)))
        return
    out = run(args.quick)
    for task in ("build", "save", "load", "rbm_units"):
        if task in out:
            r = out[task]
            print(f"{task:>9}: {r['seconds']:.3f} s, peak {r['peak_bytes'] / 1e6:.1f} MB (traced)")
    load = out["load"]
    print(f"DBN: {load['units']} units, {load['edges']} connections, {load['weight_bytes'] / 1e6:.1f} MB of "
          f"arrays; files {out['files']}")
    print(f"goal (load < {GOAL_SECONDS:g} s, peak <= {out['goal']['peak_bytes_max'] / 1e6:.0f} MB, equal): "
          f"{'met' if out['goal']['met'] else 'NOT met'}")
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
