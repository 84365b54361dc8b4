"""Compiled backend against the event engine: unit updates per second on one net.

What is measured
----------------
Unit updates per second of layer-parallel Gibbs sampling on a layered Boltzmann
machine (default: 5 layers of 128 units, 640 in all; adjacent layers fully connected,
as in a stack of RBMs; ``--density`` joins each pair only with that probability;
weights ~ N(0, 0.1), biases ~ N(0, 0.5)); the same Network object goes to both backends:

- *event*: ``neurosim.engine.Simulator(net, rng, schedule="layer")``: one chain, unit
  by unit, every binary message delivered and counted;
- *compiled*: ``neurosim.compiled.Chains(compile(net), rng, n_chains)``, float32, the
  block plan (the layers), many chains as the rows of one state matrix; also with one
  chain, to show what batching chains buys.

Only running is timed (not building). The sides take turns, ``repeats`` times each;
each ratio is of median rates. Both backends must sample the same distribution: the
script checks that the mean state of every layer agrees within 5 standard errors.
Goal (the project's issue): compiled / event >= 1000.

BLAS threads: on a 2-core machine shared with other work, threaded OpenBLAS ran
medium matrix products 10x slower than one thread; run with OPENBLAS_NUM_THREADS=1
(recorded in the JSON).

Usage: ``OPENBLAS_NUM_THREADS=1 python benchmarks/compiled_vs_event.py [--layers 5]
[--width 128] [--density 1.0] [--chains 1000] [--repeats 5] [--seed 0]
[--out benchmarks/results/compiled_vs_event.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim import Edge, Network, Unit  # noqa: E402
from neurosim.compiled import Chains, compile  # noqa: E402
from neurosim.engine import Simulator  # noqa: E402

GOAL_RATIO = 1000.0


def layered_boltzmann(layers: int, width: int, density: float, seed: int) -> Network:
    """Symmetric edges between adjacent layers only, each present with ``density``."""
    rng = np.random.default_rng(seed)
    names = [[f"l{k}_{i}" for i in range(width)] for k in range(layers)]
    units = [Unit(n, float(rng.normal(0, 0.5)), "visible" if k == 0 else "hidden", layer=k)
             for k in range(layers) for n in names[k]]
    edges = [Edge(a, b, float(rng.normal(0, 0.1)), "symmetric")
             for lower, upper in zip(names, names[1:]) for a in lower for b in upper
             if rng.random() < density]
    return Network(units, edges, name=f"layered_bm_{layers}x{width}")


def time_event(net: Network, seed: int, sweeps: int) -> tuple[float, np.ndarray, int]:
    sim = Simulator(net, np.random.default_rng(seed), schedule="layer")
    sim.run(until=5)  # start-up outside the timing
    start, before = time.perf_counter(), sim.ledger.updates
    states = []
    for t in range(sweeps):
        sim.run(until=6 + t)
        states.append(sim.state.copy())
    elapsed = time.perf_counter() - start
    updates = sim.ledger.updates - before
    return updates / elapsed, np.array(states), updates


def time_compiled(net: Network, seed: int, chains: int, sweeps: int) -> tuple[float, np.ndarray, int]:
    c = Chains(compile(net), np.random.default_rng(seed), chains)
    c.run(5)
    start, before = time.perf_counter(), c.ledger.updates
    c.run(sweeps)
    elapsed = time.perf_counter() - start
    updates = c.ledger.updates - before
    return updates / elapsed, c.state.copy(), updates


def layer_means(states: np.ndarray, layers: int, width: int) -> np.ndarray:
    return states.reshape(len(states), layers, width).mean(axis=(0, 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--density", type=float, default=1.0)
    p.add_argument("--chains", type=int, default=1000)
    p.add_argument("--event-sweeps", type=int, default=10)
    p.add_argument("--compiled-sweeps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "compiled_vs_event.json"))
    args = p.parse_args()

    net = layered_boltzmann(args.layers, args.width, args.density, args.seed)
    rates: dict[str, list[float]] = {"event": [], "compiled_1_chain": [], "compiled": []}
    event_states, compiled_states = [], []
    for r in range(args.repeats):
        rate, states, _ = time_event(net, args.seed + r, args.event_sweeps)
        rates["event"].append(rate)
        event_states.append(states)
        rates["compiled_1_chain"].append(time_compiled(net, args.seed + r, 1, args.compiled_sweeps)[0])
        rate, states, _ = time_compiled(net, args.seed + r, args.chains, args.compiled_sweeps)
        rates["compiled"].append(rate)
        compiled_states.append(states)

    ev = layer_means(np.concatenate(event_states), args.layers, args.width)
    co = layer_means(np.concatenate(compiled_states), args.layers, args.width)
    # standard error of a layer mean: event samples are correlated along the chain, so
    # count only the independent repeats' time-averages, generously: one per 10 sweeps
    n_event = args.repeats * args.event_sweeps / 10 * args.width
    n_compiled = args.repeats * args.chains * args.width
    se = np.sqrt(0.25 / n_event + 0.25 / n_compiled)
    agree = bool(np.all(np.abs(ev - co) < 5 * se))

    median = {k: statistics.median(v) for k, v in rates.items()}
    ratio = median["compiled"] / median["event"]
    result = {
        "benchmark": "compiled_vs_event",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform(), "cpus": os.cpu_count(),
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "net": {"name": net.name, "units": net.n_units, "edges": len(net.edges),
                "layers": args.layers, "width": args.width, "density": args.density},
        "chains": args.chains, "repeats": args.repeats,
        "updates_per_s": {k: {"median": m, "all": rates[k]} for k, m in median.items()},
        "ratio_compiled_vs_event": ratio,
        "ratio_compiled_1_chain_vs_event": median["compiled_1_chain"] / median["event"],
        "goal_ratio": GOAL_RATIO, "goal_met": ratio >= GOAL_RATIO,
        "same_distribution": {"layer_means_event": ev.tolist(), "layer_means_compiled": co.tolist(),
                              "within_5_se": agree},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{net.name}: {net.n_units} units, {len(net.edges)} edges")
    for k, m in median.items():
        print(f"  {k:<17} {m:>14,.0f} updates/s")
    print(f"  ratio compiled/event {ratio:,.0f} (goal >= {GOAL_RATIO:,.0f}: "
          f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}); one chain {result['ratio_compiled_1_chain_vs_event']:.1f}")
    print(f"  layer means agree within 5 s.e.: {agree}; wrote {args.out}")


if __name__ == "__main__":
    main()
