"""Explaining away, and why it makes inference hard (Hinton 2005, section 4, figure 3).

The earthquake/truck net: two rare causes (bias -10) of a house jumping (bias -20,
weight 20 from each cause). Given that the house jumped, either cause alone explains it
(P = 0.49995 each), and both or neither is ~1e4 times less likely (P = 4.54e-5 each).
The two causes, independent a priori, become almost perfectly anti-correlated.

This script shows three consequences:

1. The exact posterior, by enumeration.
2. Gibbs sampling (the event engine, random sequential sweeps, house_jumps clamped)
   gets stuck in one explanation: to switch it must pass through "both" or "neither",
   so it switches only about once every 7,300 sweeps, and a run shorter than many
   switches estimates P(earthquake) = 0.5 badly.
3. Two factorial approximations (section 4.1): the product of the exact marginals,
   which minimises KL(P||Q) and is what wake-sleep's sleep phase aims at, averages the
   two explanations into a vague (0.5, 0.5) that puts half its mass on the poor
   configurations "both" and "neither"; mean field, which minimises KL(Q||P) (the
   looseness of the variational bound, eq. 9-10), picks one explanation.

Run: ``python demos/explaining_away.py [--out DIR] [--sweeps N] [--seed S] [--json]``.
Writes ``posterior_vs_factorial.png`` and ``gibbs_trace.png`` into the out dir.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurosim import load_model, posterior
from neurosim.engine import Simulator
from neurosim.engine.monitors import Trace
from neurosim.inference import Posterior, bitstring
from neurosim.inference.factorial import (factorial_probs, kl, kl_q_p, mean_field,
                                          moment_matched)
from neurosim.viz.traces import plot_distributions, plot_running_mean, plot_state_trace

MODELS = Path(__file__).resolve().parents[1] / "models"
EVIDENCE = {"house_jumps": 1}
CAUSES = ["earthquake", "truck"]
ONLY = {"10": "earthquake only", "01": "truck only"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/explaining_away"), help="output folder")
    ap.add_argument("--sweeps", type=int, default=500_000,
                    help="Gibbs sweeps (default 500000, about 6 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args(argv)
    if args.sweeps < 1:
        ap.error(f"--sweeps must be at least 1, got {args.sweeps}")
    return args


# -- 1. exact posterior ----------------------------------------------------------------
def exact_summary(post: Posterior) -> dict:
    assert post.units == CAUSES
    joint, m = post.joint(), post.marginals()
    return {"P(earthquake)": m["earthquake"], "P(truck)": m["truck"],
            "P(exactly one cause)": joint["01"] + joint["10"],
            "P(both)": joint["11"], "P(neither)": joint["00"], "joint": joint}


# -- 2. Gibbs sampling in the event engine ---------------------------------------------
def run_chain(net, sweeps: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Gibbs chain, random sequential sweeps. Returns (times, states of the causes
    after every update, from the initial state at time 0 on) and the seconds it took."""
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(seed), schedule="sweep", evidence=EVIDENCE,
                    on_update=trace.on_update)
    cols = [net.index(u) for u in CAUSES]
    init = sim.state[cols]
    start = time.perf_counter()
    sim.run(until=sweeps)
    seconds = time.perf_counter() - start
    states = replay(init, [cols.index(u) for u in trace.units], trace.states)
    return np.concatenate([[0.0], trace.times]), states, seconds


def replay(init: np.ndarray, units: list[int], new: np.ndarray) -> np.ndarray:
    """States of all units after each update ``(unit, new state)``, starting at ``init``."""
    units, n = np.asarray(units, dtype=np.int64), len(init)
    out = np.empty((len(units) + 1, n), dtype=np.int8)
    out[0] = init
    steps = np.arange(len(units))
    for k in range(n):
        last = np.maximum.accumulate(np.where(units == k, steps, -1))
        out[1:, k] = np.where(last >= 0, new[np.maximum(last, 0)], init[k])
    return out


def per_sweep(times: np.ndarray, states: np.ndarray, sweeps: int) -> np.ndarray:
    """The state at the end of each whole sweep 1..sweeps."""
    return states[np.searchsorted(times, np.arange(1, sweeps + 1), side="right") - 1]


def hops(times: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Times at which the chain switches explanation ("earthquake only" <-> "truck only"),
    ignoring the brief visits to "both" and "neither" on the way."""
    code = states[:, 0] * 2 + states[:, 1]               # 00 -> 0, 01 -> 1, 10 -> 2, 11 -> 3
    alone = np.flatnonzero((code == 1) | (code == 2))
    switch = alone[1:][code[alone[1:]] != code[alone[:-1]]]
    return times[switch]


def expected_dwell(post: Posterior) -> float:
    """Mean sweeps from entering "earthquake only" to reaching "truck only", from the
    exact transition matrix of a random-order Gibbs sweep (mean first-passage time)."""
    n, lp = len(post.units), post.log_probs
    kernels = []
    for i in range(n):
        G = np.zeros((2 ** n, 2 ** n))
        for k in range(2 ** n):
            on, off = k | (1 << (n - 1 - i)), k & ~(1 << (n - 1 - i))
            p_on = 1.0 / (1.0 + math.exp(lp[off] - lp[on]))
            G[k, on], G[k, off] = G[k, on] + p_on, G[k, off] + 1.0 - p_on
        kernels.append(G)
    orders = list(itertools.permutations(range(n)))
    T = sum(np.linalg.multi_dot([kernels[i] for i in o] + [np.eye(2 ** n)]) for o in orders) / len(orders)
    rest = [k for k in range(2 ** n) if k != int("01", 2)]  # first passage from "10" to "01"
    h = np.linalg.solve(np.eye(len(rest)) - T[np.ix_(rest, rest)], np.ones(len(rest)))
    return float(h[rest.index(int("10", 2))])


def chain_summary(post: Posterior, times, states, sweeps: int, seconds: float) -> dict:
    switches = hops(times, states)
    edges = np.concatenate([[0.0], switches, [float(sweeps)]])
    dwell = np.diff(edges)
    eq = per_sweep(times, states, sweeps)[:, 0]
    short = {f"first {n} sweeps": float(eq[:n].mean()) for n in (1_000, 10_000) if n < sweeps}
    return {"sweeps": sweeps, "updates": len(times) - 1, "seconds": seconds,
            "updates per second": (len(times) - 1) / seconds, "hops": len(switches),
            "mean dwell (sweeps, between hops)": float(dwell[1:-1].mean()) if len(switches) > 1 else None,
            "mean dwell (sweeps, run / (hops + 1))": sweeps / (len(switches) + 1),
            "expected dwell (sweeps, exact)": expected_dwell(post),
            "P(earthquake) chain": float(eq.mean()), "P(earthquake) exact": post.marginals()["earthquake"],
            "P(earthquake) short runs": short,
            "fraction of sweeps in both or neither": float((per_sweep(times, states, sweeps).sum(1) != 1).mean())}


# -- 3. factorial approximations -------------------------------------------------------
def factorial_summary(post: Posterior, rng: np.random.Generator) -> dict:
    qs = {"moment-matched, min KL(P||Q)": moment_matched(post),
          "mean-field, min KL(Q||P)": mean_field(post, rng)}
    out = {"exact": {"probs": post.probs.tolist(),
                     "mass on both-or-neither": float(post.probs[[0, 3]].sum())}}
    for name, q in qs.items():
        Q = factorial_probs(q, post.states)
        out[name] = {"q": q.tolist(), "probs": Q.tolist(), "mass on both-or-neither": float(Q[[0, 3]].sum()),
                     "KL(P||Q)": kl(post.probs, Q), "KL(Q||P)": kl_q_p(q, post)}
    return out


# -- figures ---------------------------------------------------------------------------
def plot_posterior(path: Path, post: Posterior, fac: dict) -> None:
    labels = [bitstring(s) for s in post.states]
    dists = {name: d["probs"] for name, d in fac.items()}
    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    lin, log = fig.subplots(1, 2)
    plot_distributions(lin, labels, dists, annotate=False, legend=False)
    plot_distributions(log, labels, dists, log=True, legend=False)
    handles, names = lin.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(names), fontsize=9)
    for ax in (lin, log):
        ax.set_xlabel("state (earthquake, truck), given house_jumps = 1")
    lin.set_title("posterior and its factorial approximations")
    log.set_title("same, log scale: mass on both (11) and neither (00)")
    fig.savefig(path)


def plot_trace(path: Path, times, states, sweeps: int, exact: float, dwell: float) -> None:
    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.2, 1])
    plot_state_trace(top, times, states, CAUSES)
    n = len(hops(times, states))
    top.set_title(f"Gibbs sampling given house_jumps = 1: {n} switches of explanation "
                  f"in {sweeps:,} sweeps")
    plot_running_mean(bottom, np.arange(1, sweeps + 1), per_sweep(times, states, sweeps)[:, 0],
                      exact=exact, label="chain's estimate of P(earthquake)",
                      exact_label=f"exact P(earthquake) = {exact:.4f}")
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_title(f"a run must span many dwell times (exact mean dwell {dwell:,.0f} sweeps) "
                     "to estimate P(earthquake)", fontsize=10)
    bottom.set_xlabel("sweeps")
    bottom.xaxis.set_major_formatter("{x:,.0f}")
    fig.savefig(path)


# -- report ----------------------------------------------------------------------------
def report(ex: dict, ch: dict, fac: dict, files: list[Path]) -> None:
    print("Exact posterior given house_jumps = 1 (enumeration):")
    for key in ("P(earthquake)", "P(truck)", "P(exactly one cause)"):
        print(f"  {key:22s} {ex[key]:.5f}")
    for key in ("P(both)", "P(neither)"):
        print(f"  {key:22s} {ex[key]:.3g}")
    print(f"\nGibbs sampling, event engine, {ch['sweeps']:,} sweeps ({ch['updates']:,} updates "
          f"in {ch['seconds']:.1f} s, {ch['updates per second']:,.0f} updates/s):")
    print(f"  switches of explanation        {ch['hops']}")
    if ch["mean dwell (sweeps, between hops)"] is not None:
        print(f"  mean dwell between switches    {ch['mean dwell (sweeps, between hops)']:,.0f} sweeps")
    print(f"  expected dwell (exact chain)   {ch['expected dwell (sweeps, exact)']:,.0f} sweeps")
    print(f"  sweeps ending in both/neither  {ch['fraction of sweeps in both or neither']:.2g}")
    print(f"  P(earthquake): chain {ch['P(earthquake) chain']:.4f}, exact {ch['P(earthquake) exact']:.4f}")
    for key, value in ch["P(earthquake) short runs"].items():
        print(f"    from the {key:18s} {value:.4f}")
    print("\nFactorial approximations (units independent):")
    print(f"  {'':30s} {'q':>18s} {'both-or-neither':>16s} {'KL(P||Q)':>9s} {'KL(Q||P)':>9s}")
    print(f"  {'exact':30s} {'':>18s} {fac['exact']['mass on both-or-neither']:16.3g}")
    for name, d in list(fac.items())[1:]:
        q = "(" + ", ".join(f"{v:.5f}" for v in d["q"]) + ")"
        print(f"  {name:30s} {q:>18s} {d['mass on both-or-neither']:16.3g} "
              f"{d['KL(P||Q)']:9.4f} {d['KL(Q||P)']:9.4f}")
    print("\nFigures:\n" + "\n".join(f"  {f}" for f in files))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    net = load_model(MODELS / "earthquake_truck.toml")
    post = posterior(net, EVIDENCE)
    ex = exact_summary(post)
    times, states, seconds = run_chain(net, args.sweeps, args.seed)
    ch = chain_summary(post, times, states, args.sweeps, seconds)
    fac = factorial_summary(post, np.random.default_rng(args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    files = [args.out / "posterior_vs_factorial.png", args.out / "gibbs_trace.png"]
    plot_posterior(files[0], post, fac)
    plot_trace(files[1], times, states, args.sweeps, ex["P(earthquake)"],
               ch["expected dwell (sweeps, exact)"])
    if args.json:
        print(json.dumps({"exact": ex, "gibbs": ch, "factorial": fac,
                          "figures": [str(f) for f in files]}, indent=2))
    else:
        report(ex, ch, fac, files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
