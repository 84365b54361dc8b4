"""The event engine at DBN scale: unit updates and deliveries per second against a bare simpy loop.

What is measured
----------------
The MNIST DBN's shape with random arrays (``network_scale.dbn_network``: 784-500-500
+ 10 labels, 2000 top units; 2,304,000 connections) in the event engine, Gibbs
sampling the top RBM by random sequential sweeps with everything below it clamped
(v, h1 and h2 to random bits): 2,010 free units (top and labels), each update
``p = logistic(b + input)`` (eq. 1) and, on a change of state, one slice-add of the
unit's weight row into each post population's input vector (a top unit: 500 h2 and
10 label synapses; a label unit: 2,000 top synapses), every synapse counted as one
binary message.

- *engine*: ``neurosim.engine.Simulator(schedule="sweep", evidence=...)`` with its
  ledger.
- *bare*: the least simpy program doing the same deliveries: one clock process, a
  fresh permutation of the free units per sweep, one simpy timeout per unit update,
  the same uniforms (blocks of 8192 from the same numpy Generator), the same
  slice-add per state change and the same message counting. With the same seed both
  follow the same trajectory: the script checks that they make the same updates,
  send the same messages and end in the same state.

Only ``run`` is timed. The two are interleaved, ``repeats`` times each; the ratio is
engine rate / bare rate from the medians. Goal (issue 24): ratio >= 1/3, as on the
small nets (``event_engine.py``). Also: the time and peak traced memory (tracemalloc)
of building the Simulator, and the engine's rate on the full net's Gibbs sampling (no
evidence: every unit free, Neal's child terms for the belief-net layers), for scale.
Writes ``benchmarks/results/event_engine_scale.json``.

    python benchmarks/event_engine_scale.py [--quick] [--sweeps N] [--repeats R] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from network_scale import dbn_network  # noqa: E402

from neurosim import Network  # noqa: E402
from neurosim.engine import Simulator  # noqa: E402
from neurosim.outputs import atomic_write_text, check_out  # noqa: E402

GOAL_RATIO = 0.333
CLAMPED = ("v", "h1", "h2")
_BUFFER = 8192  # as neurosim.engine.simulator


def evidence(net: Network, rng: np.random.Generator) -> dict[str, int]:
    """Random bits on every unit below the top RBM's free units."""
    names = [u for p in net.populations if p.name in CLAMPED for u in p.units]
    return dict(zip(names, (rng.random(len(names)) < 0.5).astype(int).tolist()))


class BareLoop:
    """The baseline: sweeps of the top RBM in plain simpy and numpy, nothing else."""

    def __init__(self, net: Network, rng: np.random.Generator, clamp: dict[str, int]) -> None:
        self.rng, self.buffer = rng, []
        offsets = np.cumsum([0] + [p.size for p in net.populations]).tolist()
        self.input = {p.name: np.zeros(p.size) for p in net.populations}
        bias = np.concatenate([p.bias for p in net.populations])
        # (post input vector, weight block with rows = senders, synapses per row) for each pre population
        out: dict[str, list] = {p.name: [] for p in net.populations}
        for q in net.projections:
            if q.kind == "recognition":
                continue
            out[q.pre].append((self.input[q.post], q.weights.copy(), q.weights.shape[1]))
            if q.kind == "symmetric":
                out[q.post].append((self.input[q.pre], q.weights.T.copy(), q.weights.shape[0]))
        self.units = [(p.name, k, float(bias[offsets[n] + k]), out[p.name])
                      for n, p in enumerate(net.populations) for k in range(p.size)]
        self.state = (rng.random(net.n_units) < 0.5).astype(int).tolist()  # as the engine's initial draw
        index = {u: i for i, u in enumerate(net.units)}
        for name, value in clamp.items():
            self.state[index[name]] = value
        self.free = [i for i in range(net.n_units) if net.units[i] not in clamp]
        self.binary = self.updates = 0
        for i, s in enumerate(self.state):
            if s:
                self.send(i, 1)
        self.env = simpy.Environment()
        self.env.process(self.clock())

    def uniform(self) -> float:
        if not self.buffer:
            self.buffer = self.rng.random(_BUFFER).tolist()
            self.buffer.reverse()
        return self.buffer.pop()

    def send(self, i: int, dv: int) -> None:
        _, k, _, out = self.units[i]
        for inp, W, count in out:
            (np.add if dv > 0 else np.subtract)(inp, W[k], out=inp)
            self.binary += count

    def clock(self):
        env, free, state, units, inputs = self.env, self.free, self.state, self.units, self.input
        t = env.now
        while True:
            yield env.timeout(t - env.now)
            for slot, k in enumerate(self.rng.permutation(len(free))):
                yield env.timeout(t + (slot + 0.5) / len(free) - env.now)
                i = free[k]
                pop, j, b, _ = units[i]
                self.updates += 1
                x = b + float(inputs[pop][j])
                if x >= 0.0:
                    p = 1.0 / (1.0 + math.exp(-x))
                else:
                    e = math.exp(x)
                    p = e / (1.0 + e)
                new = 1 if self.uniform() < p else 0
                if new != state[i]:
                    self.send(i, new - state[i])
                    state[i] = new
            t += 1


def build(net: Network, seed: int, clamp: dict[str, int] | None) -> Simulator:
    return Simulator(net, np.random.default_rng(seed), schedule="sweep", evidence=clamp)


def time_engine(net: Network, seed: int, clamp: dict[str, int] | None, sweeps: float) -> tuple[float, Simulator]:
    sim = build(net, seed, clamp)
    binary0, analog0 = sim.ledger.binary, sim.ledger.analog
    t0 = time.perf_counter()
    sim.run(until=sweeps)
    elapsed = time.perf_counter() - t0
    sim.ledger.binary -= binary0  # the run's messages, not the initial states'
    sim.ledger.analog -= analog0
    return elapsed, sim


def time_bare(net: Network, seed: int, clamp: dict[str, int], sweeps: float) -> tuple[float, BareLoop]:
    bare = BareLoop(net, np.random.default_rng(seed), clamp)
    binary0 = bare.binary
    t0 = time.perf_counter()
    bare.env.run(until=sweeps)
    elapsed = time.perf_counter() - t0
    bare.binary -= binary0
    return elapsed, bare


def measure_build(net: Network, seed: int, clamp: dict[str, int]) -> dict:
    t0 = time.perf_counter()
    build(net, seed, clamp)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    build(net, seed, clamp)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": round(seconds, 3), "peak_bytes": peak}


def run(quick: bool, sweeps: float, repeats: int, seed: int) -> dict:
    net = dbn_network(np.random.default_rng(seed))
    clamp = evidence(net, np.random.default_rng(seed + 1))
    run_seed = seed + 2
    engine_rates, bare_rates, messages, same = [], [], [], True
    for r in range(repeats):  # interleaved; alternate which goes first
        if r % 2:
            tb, bare = time_bare(net, run_seed, clamp, sweeps)
            te, sim = time_engine(net, run_seed, clamp, sweeps)
        else:
            te, sim = time_engine(net, run_seed, clamp, sweeps)
            tb, bare = time_bare(net, run_seed, clamp, sweeps)
        engine_rates.append(sim.ledger.updates / te)
        bare_rates.append(bare.updates / tb)
        messages.append(sim.ledger.binary / te)
        same &= (sim.ledger.updates == bare.updates and sim.ledger.binary == bare.binary
                 and sim.state.tolist() == bare.state)
    full_sweeps = 1 if quick else 3
    t_full, full = time_engine(net, run_seed, None, full_sweeps)
    engine, bare_rate = statistics.median(engine_rates), statistics.median(bare_rates)
    ratio = engine / bare_rate
    return {
        "benchmark": "event_engine_scale", "quick": quick, "seed": seed, "repeats": repeats,
        "net": {"units": net.n_units, "connections": net.n_edges, "free": len(sim.free),
                "clamped": list(CLAMPED)},
        "build": measure_build(net, run_seed, clamp),
        "sweeps": sweeps, "updates_per_run": sim.ledger.updates, "binary_per_run": sim.ledger.binary,
        "engine_updates_per_s": round(engine), "bare_updates_per_s": round(bare_rate),
        "engine_messages_per_s": round(statistics.median(messages)),
        "ratio": round(ratio, 3), "goal_ratio": GOAL_RATIO, "meets_goal": ratio >= GOAL_RATIO,
        "same_trajectory": same,
        "full_gibbs": {"sweeps": full_sweeps, "seconds": round(t_full, 3), "ledger": full.ledger.as_dict(),
                       "updates_per_s": round(full.ledger.updates / t_full)},
        "python": platform.python_version(), "numpy": np.__version__, "simpy": simpy.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sweeps and repeats (< 60 s)")
    ap.add_argument("--sweeps", type=float, help="simulated sweeps per run (default 200, quick 20)")
    ap.add_argument("--repeats", type=int, help="interleaved runs of each (default 5, quick 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "event_engine_scale.json"))
    args = ap.parse_args(argv)
    sweeps = args.sweeps if args.sweeps is not None else (20 if args.quick else 200)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if sweeps <= 0 or repeats < 1:
        ap.error(f"need --sweeps > 0 and --repeats >= 1 (got {sweeps}, {repeats})")
    out = check_out(args.out, (".json",))
    result = run(args.quick, sweeps, repeats, args.seed)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    b, f = result["build"], result["full_gibbs"]
    print(f"DBN shape: {result['net']['units']} units, {result['net']['connections']:,} connections; "
          f"Simulator built in {b['seconds']} s, peak {b['peak_bytes'] / 1e6:.1f} MB (traced)")
    print(f"top RBM, {result['net']['free']} free units, {sweeps:g} sweeps = {result['updates_per_run']:,} "
          f"updates, {result['binary_per_run']:,} binary messages per run, {repeats} repeats (median)")
    print(f"  engine: {result['engine_updates_per_s']:>9,} updates/s, {result['engine_messages_per_s']:,} messages/s")
    print(f"  bare:   {result['bare_updates_per_s']:>9,} updates/s")
    print(f"  ratio {result['ratio']:.3f} (goal >= {GOAL_RATIO}): {'met' if result['meets_goal'] else 'NOT met'}; "
          f"same trajectory: {result['same_trajectory']}")
    print(f"full net Gibbs (Neal's terms below the top): {f['updates_per_s']:,} updates/s; wrote {out}")
    return result


if __name__ == "__main__":
    main()
