"""How close is contrastive divergence to the likelihood gradient? (Hinton 2005, eq. 5 and 6)

A restricted Boltzmann machine small enough to enumerate (9 visible units, the pixels of
3 x 3 bars and stripes, and 4 hidden units) is trained three times from the same small
random weights, with the same learning rate and the same minibatches:

* CD-1 and CD-3 (eq. 6, as in Hinton's ``rbm.m``: hidden probabilities for the
  statistics, sampled hidden states to drive the chain), and
* ascent of the exact gradient of the mean log-likelihood (eq. 5 with both phases
  computed by enumeration), the reference.

Along each CD run, at regular checkpoints, the exact gradient of the whole training set
is compared with the CD update by the angle between them (all weights and biases as one
vector): for the CD update's expectation over its sampling on the whole training set,
computed exactly by enumerating the chain's states (the noise averaged out completely:
what is left is CD's bias), and for sampled single-minibatch updates (bias and noise).
The exact log-likelihood of the data is recorded for all three runs.

Run: ``python demos/cd_gradient_angle.py [--iterations N] [--seed S] [--out DIR] [--json]``.
Writes ``cd_gradient_angle.png`` into the out dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurosim import Edge, Network, Unit
from neurosim.data import bars_stripes
from neurosim.machines.boltzmann import BoltzmannMachine

N_HIDDEN = 4
PROCEDURES = {"CD-1": ("cd", 1), "CD-3": ("cd", 3), "exact gradient": ("exact", 1)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=3000, help="weight updates (default 3000)")
    ap.add_argument("--checkpoints", type=int, default=15, help="angle measurements along training")
    ap.add_argument("--minibatches", type=int, default=200,
                    help="sampled minibatch updates measured at each checkpoint (default 200)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/cd_gradient_angle"), help="output folder")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args(argv)
    for name in ("iterations", "checkpoints", "minibatches", "batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not args.learning_rate > 0:
        ap.error(f"--learning-rate must be positive, got {args.learning_rate}")
    return args


def rbm_network(names: list[str], n_hidden: int, rng: np.random.Generator, scale: float = 0.1) -> Network:
    """A bipartite net: every visible unit joined to every hidden unit, weights ~ N(0, scale)."""
    hidden = [f"h{j}" for j in range(n_hidden)]
    units = [Unit(n, 0.0, "visible") for n in names] + [Unit(h, 0.0, "hidden") for h in hidden]
    edges = [Edge(v, h, float(rng.normal(0.0, scale)), "symmetric") for v in names for h in hidden]
    return Network(units, edges, name=f"rbm_{len(names)}_{n_hidden}")


def training_set() -> tuple[list[str], np.ndarray]:
    """The 3 x 3 bars-and-stripes distribution as 16 equally likely rows (the all-off and
    all-on images, twice as likely as the others, appear twice)."""
    ds = bars_stripes(size=3)
    counts = np.rint(ds.probs * 16).astype(int)
    return ds.names, np.repeat(ds.data, counts, axis=0).astype(np.float64)


def angle(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two vectors, in degrees."""
    c = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def minibatches(rng: np.random.Generator, n_rows: int, size: int):
    """Endless shuffled minibatches of row indices, one pass after another."""
    while True:
        order = rng.permutation(n_rows)
        for s in range(0, n_rows - size + 1, size):
            yield order[s:s + size]


def measure(bm: BoltzmannMachine, X: np.ndarray, k: int, n_batches: int, size: int,
            rng: np.random.Generator) -> dict:
    """The exact gradient at the machine's parameters against the CD-k update: its
    expectation over the sampling on the whole training set (exact, by enumeration: CD's
    bias alone), and ``n_batches`` sampled minibatch updates (bias and noise)."""
    g = bm.exact_gradient(X).vector()
    expected = bm.expected_cd_update(X, k).vector()
    batches = minibatches(rng, len(X), size)
    single = np.array([angle(bm.cd_update(X[next(batches)], k).vector(), g) for _ in range(n_batches)])
    return {"angle_expected_update": angle(expected, g), "angle_minibatch_mean": float(single.mean()),
            "angle_minibatch_sd": float(single.std()), "gradient_norm": float(np.linalg.norm(g)),
            "expected_update_norm": float(np.linalg.norm(expected) / bm.learning_rate)}


def run(args: argparse.Namespace) -> dict:
    names, X = training_set()
    rng = np.random.default_rng(args.seed)
    net = rbm_network(names, N_HIDDEN, rng)
    machines = {label: BoltzmannMachine(net, procedure=proc, k=k, learning_rate=args.learning_rate,
                                        random_state=np.random.default_rng([args.seed, i]))
                for i, (label, (proc, k)) in enumerate(PROCEDURES.items())}
    probe = np.random.default_rng([args.seed, 99])
    batch_rng = np.random.default_rng([args.seed, 7])
    when = sorted({0, *np.linspace(0, args.iterations, args.checkpoints).round().astype(int).tolist()})
    out = {label: {"updates": [], "log_likelihood": [], "angles": []} for label in machines}
    start = time.perf_counter()
    batches = minibatches(batch_rng, len(X), args.batch_size)
    t = 0
    for stop in when:
        while t < stop:
            rows = X[next(batches)]
            for bm in machines.values():
                bm.partial_fit(rows)
            t += 1
        for label, bm in machines.items():
            rec = out[label]
            rec["updates"].append(t)
            rec["log_likelihood"].append(bm.exact_log_likelihood(X))
            proc, k = PROCEDURES[label]
            if proc == "cd":
                rec["angles"].append(measure(bm, X, k, args.minibatches, args.batch_size, probe))
    p = np.unique(X, axis=0, return_counts=True)[1] / len(X)
    entropy = float(-(p * np.log(p)).sum())
    return {"settings": {"iterations": args.iterations, "batch_size": args.batch_size,
                         "learning_rate": args.learning_rate, "minibatches": args.minibatches,
                         "n_visible": len(names), "n_hidden": N_HIDDEN, "seed": args.seed,
                         "data": "bars and stripes 3 x 3 (14 images, 16 equally likely rows)"},
            "max_log_likelihood": -entropy, "runs": out, "seconds": time.perf_counter() - start}


def plot(path: Path, result: dict) -> None:
    fig = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    colors = {"CD-1": "C0", "CD-3": "C1", "exact gradient": "C2"}
    for label, rec in result["runs"].items():
        left.plot(rec["updates"], rec["log_likelihood"], "o-", ms=3, color=colors[label], label=label)
    left.axhline(result["max_log_likelihood"], color="0.5", ls="--", lw=1,
                 label="data entropy (a perfect model)")
    left.set_xlabel("weight updates")
    left.set_ylabel("exact mean log-likelihood, nats")
    left.set_title("RBM 9-4 on 3 x 3 bars and stripes", fontsize=10)
    left.legend(fontsize=8)
    for label, rec in result["runs"].items():
        if not rec["angles"]:
            continue
        x = rec["updates"]
        mean = [a["angle_expected_update"] for a in rec["angles"]]
        single = np.array([a["angle_minibatch_mean"] for a in rec["angles"]])
        sd = np.array([a["angle_minibatch_sd"] for a in rec["angles"]])
        right.plot(x, mean, "o-", ms=3, color=colors[label], label=f"{label}: expected update (no noise)")
        right.plot(x, single, "s--", ms=3, color=colors[label], alpha=0.7,
                   label=f"{label}: one minibatch of {result['settings']['batch_size']} (mean, sd)")
        right.fill_between(x, single - sd, single + sd, color=colors[label], alpha=0.12)
    right.axhline(90, color="0.5", lw=0.8, ls=":")
    right.set_xlabel("weight updates")
    right.set_ylabel("angle to the exact gradient, degrees")
    right.set_ylim(0, None)
    right.set_title("CD update vs exact likelihood gradient", fontsize=10)
    right.legend(fontsize=7)
    fig.savefig(path)


def report(result: dict, path: Path) -> None:
    s = result["settings"]
    print(f"RBM {s['n_visible']}-{s['n_hidden']} on {s['data']}; lr {s['learning_rate']}, "
          f"minibatches of {s['batch_size']}, {s['iterations']} updates, seed {s['seed']} "
          f"({result['seconds']:.1f} s)")
    print("Best possible mean log-likelihood (minus the data entropy): "
          f"{result['max_log_likelihood']:.4f} nats\n")
    runs = result["runs"]
    print(f"{'updates':>8s} " + " ".join(f"{label + ' LL':>18s}" for label in runs)
          + "   angle to the exact gradient (deg), expected / one minibatch: CD-1, CD-3")
    for i, t in enumerate(runs["CD-1"]["updates"]):
        lls = " ".join(f"{runs[label]['log_likelihood'][i]:18.4f}" for label in runs)
        a1, a3 = runs["CD-1"]["angles"][i], runs["CD-3"]["angles"][i]
        print(f"{t:8d} {lls}   {a1['angle_expected_update']:5.1f} / {a1['angle_minibatch_mean']:5.1f}"
              f"   {a3['angle_expected_update']:5.1f} / {a3['angle_minibatch_mean']:5.1f}")
    print(f"\nFigure: {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cd_gradient_angle.png"
    plot(path, result)
    result["figures"] = [str(path)]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
