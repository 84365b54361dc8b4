"""The MNIST deep belief net run as neurons: what do binary messages, asynchrony and delays cost?

Takes a trained DBN (a model file written by ``neurosim dbn export``, or a run directory
of ``neurosim dbn train``, exported on the fly) into the event engine and classifies test
digits with the neural read-out (``neurosim dbn classify --method gibbs``): a stochastic
binary up-pass through the recognition weights, then the top RBM's units and its
one-of-ten label group sampled for ``--burn-in`` + ``--sweeps`` sweeps with the pen units
clamped; the label that fired most often is the answer. Only binary messages are sent:
a unit that changes state sends one message over each of its out-synapses.

Each setting is a way real neurons might run that loop (the up-pass is the same in all):

* ``compiled``: the reference, whole groups updated in a fixed order as matrices;
* ``layer``: synchronous layer updates, every unit of a group at one tick;
* ``sweep``: one unit at a time, in a fresh random order (sequential Gibbs sampling);
* ``async``: each unit on its own Poisson clock (rate 1 per sweep);
* ``async delay D``: asynchronous, and every message of the top RBM arrives ``D``
  sweeps after the change that sent it (0.1, 0.5 and 1 sweep).

For each it reports the test error, its binomial standard error, the messages per digit
and the seconds per digit, beside the exact free-energy read-out of the same net. With
``--training-cases N`` it also runs N training cases of up-down fine-tuning and of
backprop through the event engine and reports the messages per training case that the
ledger counted. Writes ``dbn_plausibility.json`` and ``dbn_plausibility.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurosim.data import load_mnist  # noqa: E402
from neurosim.machines.dbn_readout import classify  # noqa: E402
from neurosim.machines.dbn_train import load_run  # noqa: E402
from neurosim.modelfile import load  # noqa: E402
from neurosim.network import Network  # noqa: E402
from neurosim.outputs import atomic_write_text  # noqa: E402

SETTINGS = {
    "compiled": dict(backend="compiled"),
    "layer": dict(backend="event", schedule="layer"),
    "sweep": dict(backend="event", schedule="sweep"),
    "async": dict(backend="event", schedule="async"),
    "async delay 0.1": dict(backend="event", schedule="async", delay=0.1),
    "async delay 0.5": dict(backend="event", schedule="async", delay=0.5),
    "async delay 1": dict(backend="event", schedule="async", delay=1.0),
}


def load_dbn(source: str) -> Network:
    """A DBN Network from a model file (``.toml``) or a ``neurosim dbn train`` run directory."""
    path = Path(source)
    if path.is_dir():
        run = load_run(path)
        run.dbn._check_ready()
        return run.dbn.to_network(name=path.name or "dbn")
    return load(path)


def measure(net: Network, X: np.ndarray, y: np.ndarray, name: str, setting: dict, seed: int,
            sweeps: int, burn_in: int) -> dict:
    """One setting's test error (with its binomial standard error), messages and time per digit."""
    setting = {"method": "gibbs", **setting}
    start = time.perf_counter()
    out = classify(net, X, rng=np.random.default_rng(seed), sweeps=sweeps, burn_in=burn_in, **setting)
    seconds = time.perf_counter() - start
    error = float(np.mean(out.labels != y))
    row = {"setting": name, **setting, "test_error": error,
           "standard_error": float(np.sqrt(error * (1 - error) / len(y))), "cases": len(y),
           "binary_messages_per_digit": out.ledger.binary / len(y),
           "analog_messages_per_digit": out.ledger.analog / len(y), "seconds_per_digit": seconds / len(y)}
    print(f"{name:>18}: test error {100 * error:5.2f}% +- {100 * row['standard_error']:.2f}, "
          f"{row['binary_messages_per_digit']:,.0f} binary and {row['analog_messages_per_digit']:,.0f} analog "
          f"messages per digit, {row['seconds_per_digit']:.3f} s per digit", file=sys.stderr)
    return row


def _colours(rows: list[dict], event: str) -> list[str]:
    return ["0.6" if r["backend"] == "compiled" else event for r in rows]


def draw(rows: list[dict], free_energy: dict, path: Path) -> None:
    """Test error (with two standard errors) and binary messages per digit, one bar per setting."""
    names = [r["setting"] for r in rows]
    x = np.arange(len(rows))
    fig, (ax_err, ax_msg) = plt.subplots(1, 2, figsize=(11, 4))
    ax_err.bar(x, [100 * r["test_error"] for r in rows], yerr=[200 * r["standard_error"] for r in rows],
               color=_colours(rows, "C0"), capsize=3)
    ax_err.axhline(100 * free_energy["test_error"], color="C3", ls="--",
                   label=f"free energy (exact): {100 * free_energy['test_error']:.2f}%")
    ax_err.set_ylabel("test error (%)")
    ax_err.legend(loc="lower right")
    ax_msg.bar(x, [r["binary_messages_per_digit"] / 1e6 for r in rows], color=_colours(rows, "C1"))
    ax_msg.set_ylabel("binary messages per digit (millions)")
    for ax in (ax_err, ax_msg):
        ax.set_xticks(x, names, rotation=30, ha="right")
    fig.suptitle(f"The DBN's Gibbs read-out as neurons ({rows[0]['cases']} test digits)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="a DBN model file (neurosim dbn export) or a dbn train run directory")
    p.add_argument("--digits", type=int, default=1000, help="test digits (the first N)")
    p.add_argument("--sweeps", type=int, default=50, help="sweeps whose label firings count")
    p.add_argument("--burn-in", type=int, default=10, help="sweeps before counting")
    p.add_argument("--settings", default=",".join(SETTINGS), help="which settings, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/dbn_plausibility", help="where the JSON and the figure go")
    args = p.parse_args(argv)
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        p.error(f"unknown setting {unknown[0]!r} (one of {', '.join(SETTINGS)})")
    net = load_dbn(args.model)
    X, y = load_mnist("test", limit=args.digits)
    free_energy = measure(net, X, y, "free energy", dict(backend="compiled", method="free-energy"),
                          args.seed, args.sweeps, args.burn_in)
    rows = [measure(net, X, y, n, SETTINGS[n], args.seed, args.sweeps, args.burn_in) for n in names]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"model": str(args.model), "digits": len(y), "sweeps": args.sweeps, "burn_in": args.burn_in,
              "seed": args.seed, "command": "python demos/dbn_plausibility.py " + " ".join(argv or sys.argv[1:]),
              "free_energy": free_energy, "settings": rows}
    atomic_write_text(out / "dbn_plausibility.json", json.dumps(result, indent=1) + "\n")
    draw(rows, free_energy, out / "dbn_plausibility.png")
    print(f"wrote {out / 'dbn_plausibility.json'} and {out / 'dbn_plausibility.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
