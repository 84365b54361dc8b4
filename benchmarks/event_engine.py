"""Event engine speed: unit updates per second against a bare simpy loop.

What is measured
----------------
Unit updates per second of simulated asynchronous Gibbs sampling on a sparse random
Boltzmann machine (default: 100 units, each joined to 6 others, weights and biases
~ N(0, 0.5)), run for ``sweeps`` units of simulated time (one Poisson-clock update
per unit per sweep, on average).

- *engine*: ``neurosim.engine.Simulator(schedule="async")`` with the ledger (always
  on) and a ``Trace`` monitor recording every update.
- *bare*: the least simpy program doing the same work per update: one process per
  unit with a Poisson clock of rate 1, ``p = logistic(bias + total input)``, a
  uniform draw, and on a change of state ``w * (new - old)`` added to each
  neighbour's running total (adjacency lists built once, plain Python lists). It
  draws uniforms the way the engine does (blocks of 8192 from the same kind of
  numpy Generator, popped from a list; exponentials as ``-log(1 - u)``), in the same
  order, so with the same seed both follow the same trajectory: the script checks
  that they make the same number of updates and end in the same state.

Only the simulation (``run``) is timed, not building the net or the simulator. The
two are interleaved, ``repeats`` times each; the ratio is engine rate / bare rate
from the medians. Goal (the project's issue): ratio >= 1/3.

Usage: ``python benchmarks/event_engine.py [--units 100] [--degree 6] [--sweeps N]
[--repeats R] [--seed S] [--out benchmarks/results/event_engine.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import networkx as nx
import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim import Edge, Network, Unit  # noqa: E402
from neurosim.engine import Simulator, Trace  # noqa: E402

GOAL_RATIO = 0.333
_BUFFER = 8192  # as neurosim.engine.simulator


def boltzmann_machine(units: int, degree: int, seed: int) -> Network:
    """Random ``degree``-regular Boltzmann machine, weights and biases ~ N(0, 0.5)."""
    rng = np.random.default_rng(seed)
    pairs = sorted(nx.random_regular_graph(degree, units, seed=seed).edges())
    names = [f"u{i}" for i in range(units)]
    biases, weights = rng.normal(0, 0.5, units), rng.normal(0, 0.5, len(pairs))
    return Network([Unit(n, float(b)) for n, b in zip(names, biases)],
                   [Edge(names[a], names[b], float(w), kind="symmetric")
                    for (a, b), w in zip(pairs, weights)], name=f"sparse_bm_{units}_{degree}")


class BareLoop:
    """The baseline: asynchronous Gibbs sampling in plain simpy, nothing else."""

    def __init__(self, net: Network, rng: np.random.Generator) -> None:
        n, index = net.n_units, {name: i for i, name in enumerate(net.units)}
        self.bias = [u.bias for u in net.unit_list()]
        self.adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for pre, post, data in net.synapses():
            self.adj[index[pre]].append((index[post], data["weight"]))
        self.rng, self.buffer = rng, []  # uniforms, as the engine draws them
        self.state = (rng.random(n) < 0.5).astype(int).tolist()
        self.total = [0.0] * n
        for i in range(n):
            if self.state[i]:
                for j, w in self.adj[i]:
                    self.total[j] += w
        self.updates = 0
        self.env = simpy.Environment()
        for i in range(n):
            self.env.process(self.clock(i))

    def uniform(self) -> float:
        if not self.buffer:
            self.buffer = self.rng.random(_BUFFER).tolist()
            self.buffer.reverse()
        return self.buffer.pop()

    def clock(self, i: int):
        env, uniform, state, total = self.env, self.uniform, self.state, self.total
        bias, out = self.bias[i], self.adj[i]
        while True:
            yield env.timeout(-math.log(1.0 - uniform()))
            self.updates += 1
            x = bias + total[i]
            if x >= 0.0:
                p = 1.0 / (1.0 + math.exp(-x))
            else:
                e = math.exp(x)
                p = e / (1.0 + e)
            new = 1 if uniform() < p else 0
            dv = new - state[i]
            if dv:
                state[i] = new
                for j, w in out:
                    total[j] += w * dv


def time_engine(net: Network, seed: int, sweeps: int) -> tuple[float, Simulator]:
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(seed), schedule="async", on_update=trace.on_update)
    t0 = time.perf_counter()
    sim.run(until=sweeps)
    return time.perf_counter() - t0, sim


def time_bare(net: Network, seed: int, sweeps: int) -> tuple[float, BareLoop]:
    bare = BareLoop(net, np.random.default_rng(seed))
    t0 = time.perf_counter()
    bare.env.run(until=sweeps)
    return time.perf_counter() - t0, bare


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--degree", type=int, default=6)
    ap.add_argument("--sweeps", type=int, default=3500, help="simulated time per run (~1 s of engine time)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/event_engine.json"))
    args = ap.parse_args(argv)
    if args.sweeps <= 0 or args.repeats < 1:
        ap.error(f"need --sweeps > 0 and --repeats >= 1 (got {args.sweeps}, {args.repeats})")
    if not 0 < args.degree < args.units or args.units * args.degree % 2:
        ap.error(f"no {args.degree}-regular graph on {args.units} units (need 0 < degree < units, "
                 "units * degree even)")

    net = boltzmann_machine(args.units, args.degree, args.seed)
    run_seed = args.seed + 1
    engine_rates, bare_rates, same = [], [], True
    for r in range(args.repeats):  # interleaved; alternate which goes first
        if r % 2:
            tb, bare = time_bare(net, run_seed, args.sweeps)
            te, sim = time_engine(net, run_seed, args.sweeps)
        else:
            te, sim = time_engine(net, run_seed, args.sweeps)
            tb, bare = time_bare(net, run_seed, args.sweeps)
        engine_rates.append(sim.ledger.updates / te)
        bare_rates.append(bare.updates / tb)
        same &= sim.ledger.updates == bare.updates and sim.state.tolist() == bare.state

    engine_rate, bare_rate = statistics.median(engine_rates), statistics.median(bare_rates)
    ratio = engine_rate / bare_rate
    result = {
        "benchmark": "event_engine", "units": args.units, "degree": args.degree,
        "sweeps": args.sweeps, "repeats": args.repeats, "seed": args.seed,
        "updates_per_run": sim.ledger.updates,
        "engine_updates_per_s": round(engine_rate), "bare_updates_per_s": round(bare_rate),
        "engine_updates_per_s_best": round(max(engine_rates)),
        "bare_updates_per_s_best": round(max(bare_rates)),
        "ratio": round(ratio, 3), "goal_ratio": GOAL_RATIO, "meets_goal": ratio >= GOAL_RATIO,
        "same_trajectory": same, "engine_messages": sim.ledger.as_dict(),
        "python": platform.python_version(), "numpy": np.__version__, "simpy": simpy.__version__,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "implementation": platform.python_implementation()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.units} units, degree {args.degree}, {args.sweeps} sweeps = {sim.ledger.updates} updates, "
          f"{args.repeats} repeats (median / best)")
    print(f"  engine (ledger + trace): {engine_rate:>9,.0f} / {max(engine_rates):>9,.0f} updates/s")
    print(f"  bare simpy loop:         {bare_rate:>9,.0f} / {max(bare_rates):>9,.0f} updates/s")
    print(f"  ratio {ratio:.3f} (goal >= {GOAL_RATIO}): {'met' if ratio >= GOAL_RATIO else 'NOT met'}; "
          f"same trajectory: {same}; wrote {args.out}")
    if not same:
        print("  warning: engine and bare loop diverged; they no longer do the same work", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
