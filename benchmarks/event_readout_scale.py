"""The event engine's gibbs read-out (``neurosim dbn classify --backend event --method gibbs``) at DBN scale.

What is measured
----------------
The MNIST DBN's shape with random arrays (``network_scale.dbn_network``: 784-500-500
+ 10 labels, 2000 top units) and random images (pixels uniform in [0, 1]): per digit,
the event engine's up-pass of stochastic binary units through the recognition
pathway and ``burn_in + sweeps`` sweeps of the top RBM with the pen layer clamped
(:func:`neurosim.machines.dbn_readout.event_gibbs_readout`, the CLI's defaults 10 + 50
sweeps, schedule ``sweep``, no delays). Reported: seconds per digit, binary messages
and unit updates per digit (analog messages: 0), and the compiled read-out on the same
digits for scale (one batch). No goal: a record of what the event read-out costs.
Writes ``benchmarks/results/event_readout_scale.json``.

    python benchmarks/event_readout_scale.py [--quick] [--digits N] [--sweeps N] [--burn-in N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from network_scale import dbn_network  # noqa: E402

from neurosim.machines.dbn_readout import classify  # noqa: E402
from neurosim.outputs import atomic_write_text, check_out  # noqa: E402


def measure(digits: int, sweeps: int, burn_in: int, seed: int) -> dict:
    """Time both gibbs read-outs on ``digits`` random images (module doc)."""
    rng = np.random.default_rng(seed)
    net = dbn_network(rng)
    X = rng.random((digits, net.population("v").size)).astype(np.float32)
    out = {"digits": digits, "sweeps": sweeps, "burn_in": burn_in, "units": net.n_units,
           "connections": net.n_edges}
    for backend in ("event", "compiled"):
        start = time.perf_counter()
        r = classify(net, X, "gibbs", np.random.default_rng(seed), sweeps, burn_in, backend=backend)
        seconds = time.perf_counter() - start
        out[backend] = {"seconds": seconds, "seconds_per_digit": seconds / digits,
                        "binary_per_digit": r.ledger.binary / digits, "analog": r.ledger.analog,
                        "updates_per_digit": r.ledger.updates / digits}
    out["event_over_compiled"] = out["event"]["seconds"] / out["compiled"]["seconds"]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 digits (well under a minute)")
    ap.add_argument("--digits", type=int, default=5)
    ap.add_argument("--sweeps", type=int, default=50)
    ap.add_argument("--burn-in", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "event_readout_scale.json"))
    args = ap.parse_args(argv)
    out = check_out(args.out)
    result = measure(2 if args.quick else args.digits, args.sweeps, args.burn_in, args.seed)
    result.update(quick=args.quick, python=platform.python_version(), machine=platform.machine(),
                  date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    e, c = result["event"], result["compiled"]
    print(f"event read-out: {e['seconds_per_digit']:.2f} s per digit, {e['binary_per_digit']:,.0f} binary messages "
          f"and {e['updates_per_digit']:,.0f} updates per digit, {e['analog']} analog; compiled (one batch): "
          f"{c['seconds_per_digit']:.3f} s per digit; wrote {out}")
    return result


if __name__ == "__main__":
    main()
