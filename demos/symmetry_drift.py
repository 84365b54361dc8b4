"""Do the two synapses of a symmetric connection stay equal when each learns alone?

A Boltzmann connection is two synapses, i -> j at unit j and j -> i at unit i. Each
learns by eq. 5 from what it sees: the presynaptic state as it arrived, and its own
unit's state. With instant messages both see the same pair of states at the moment
of the phase signal, so they change identically and stay equal to float precision.
When messages take time to arrive, each synapse sees a stale presynaptic state, the
two disagree, and the weights drift apart. This demo measures the drift against the
message delay, under asynchronous (Poisson-clock) updates, for Boltzmann learning on
the 4-2-4 encoder data, and the exact KL(data || model) the net reaches.

Run: ``python demos/symmetry_drift.py [--delays 0,0.05,0.2,0.5,1] [--epochs N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurosim.data import encoder_424
from neurosim.inference import kl_data_model
from neurosim.learning import get_rule
from neurosim.learning.audit import _boltzmann_net
from neurosim.learning.procedures import Settings, symmetrised, train


def measure(delays: list[float], epochs: int, seed: int) -> list[dict]:
    data = encoder_424()
    net = _boltzmann_net(np.random.default_rng(seed))
    rows = []
    for delay in delays:
        result = train(net.with_delay(delay), get_rule("boltzmann"), data.data, data.names,
                       np.random.default_rng(seed), Settings(epochs=epochs, lr=0.5, batch=4, sweeps=10,
                                                             schedule="async"))
        rows.append({"delay": delay, "symmetry_drift": result.symmetry_drift,
                     "kl_nats": kl_data_model(symmetrised(result.network), data.names, data.data,
                                              data.probs)})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot([r["delay"] for r in rows], [r["symmetry_drift"] for r in rows], "o-")
    ax.set_xlabel("message delay (sweeps)")
    ax.set_ylabel("max |w_ij - w_ji| after learning")
    ax.set_title("Two synapses of one symmetric connection, each learning alone")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delays", default="0,0.05,0.2,0.5,1")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/symmetry_drift"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = measure([float(d) for d in args.delays.split(",")], args.epochs, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, args.out / "symmetry_drift.png")
    if args.json:
        print(json.dumps({"rows": rows, "figure": str(args.out / "symmetry_drift.png")}, indent=2))
    else:
        print(f"{'delay':>8}{'drift':>12}{'KL (nats)':>12}")
        for r in rows:
            print(f"{r['delay']:>8g}{r['symmetry_drift']:>12.3g}{r['kl_nats']:>12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
