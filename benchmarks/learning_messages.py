"""Messages per training case in the event engine at MNIST scale: up-down against backprop.

What is measured
----------------
``neurosim.learning.procedures.messages_per_case`` (the event engine's ledger divided
by the cases, and the seconds spent) for

- *up-down* (contrastive wake-sleep, Hinton, Osindero and Teh 2006, appendix B; CD-1 at
  the top) on the MNIST DBN's shape with random arrays (``network_scale.dbn_network``:
  784-500-500 + 10 labels, 2000 top units, recognition and generative weights): every
  message a binary state change (the stochastic up-pass, the top RBM's Gibbs step, the
  down-pass, and the states each phase's learner clamps onto its own pathway), the
  synapses learning by the local form of eqs. 6, 7 and 11;
- *backprop* on the DBN's feed-forward classifier shape, 784-500-500-2000-10
  (``feed_forward``): every message analog (activities forward, error derivatives
  back), each synapse applying ``lr * y_i * delta_j``.

``seconds_build`` is the event engine's simulators and per-synapse plasticity for the
whole net; ``seconds_per_case`` the rest, divided by the cases. Writes
``benchmarks/results/learning_messages.json`` (``--quick``: a tenth of every layer, not
written unless ``--out`` is given).

    python benchmarks/learning_messages.py [--quick] [--cases N] [--seed S] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from network_scale import DBN, LABELS, dbn_network  # noqa: E402

from neurosim import Network  # noqa: E402
from neurosim.learning import get_rule  # noqa: E402
from neurosim.learning.procedures import Settings, messages_per_case  # noqa: E402
from neurosim.outputs import atomic_write_text, check_out  # noqa: E402
from neurosim.population import Population, Projection  # noqa: E402


def feed_forward(rng: np.random.Generator, sizes: tuple[int, ...]) -> Network:
    """A directed net ``sizes[0] -> ... -> sizes[-1]`` with random weights (N(0, 0.01));
    the first and last layers visible (backprop's inputs and targets)."""
    names = ["in"] + [f"h{l}" for l in range(1, len(sizes) - 1)] + ["out"]
    pops = [Population(nm, tuple(f"{nm}_{i}" for i in range(n)), np.zeros(n),
                       "visible" if nm in ("in", "out") else "hidden", l) for l, (nm, n) in enumerate(zip(names, sizes))]
    projs = [Projection(f"{a}->{b}", a, b, rng.normal(0, 0.01, (n, m)))
             for a, b, n, m in zip(names, names[1:], sizes, sizes[1:])]
    return Network.from_populations(pops, projs, name="feed_forward")


def visible_rows(net: Network, rng: np.random.Generator, cases: int) -> tuple[list[str], np.ndarray]:
    """The visible units (and labels) and random rows over them: pixels on with
    probability 0.2, one label or target unit on."""
    first, *_, last = [p for p in net.populations if p.role in ("visible", "label")]
    pixels = (rng.random((cases, first.size)) < 0.2).astype(np.int8)
    onehot = np.eye(last.size, dtype=np.int8)[rng.integers(0, last.size, cases)]
    return list(first.units) + list(last.units), np.hstack([pixels, onehot])


def measure(net: Network, rule: str, cases: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    visible, rows = visible_rows(net, rng, cases)
    out = messages_per_case(net, get_rule(rule), rows, visible, rng, Settings(lr=0.01, batch=1, k=1))
    print(f"{rule}: {json.dumps(out)}", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of every layer (under a minute)")
    ap.add_argument("--cases", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    scale = 10 if args.quick else 1
    dbn, labels = tuple(n // scale for n in DBN), LABELS
    out_path = args.out or (None if args.quick else ROOT / "benchmarks" / "results" / "learning_messages.json")
    if out_path is not None:
        check_out(out_path)
    result = {"dbn": f"{'-'.join(map(str, dbn))} + {labels} labels",
              "feed_forward": "-".join(map(str, dbn[:3] + (dbn[3], labels))), "cases": args.cases,
              "machine": platform.platform(), "python": platform.python_version(),
              "up-down": measure(dbn_network(np.random.default_rng(args.seed), dbn, labels), "up-down",
                                 args.cases, args.seed),
              "backprop": measure(feed_forward(np.random.default_rng(args.seed), dbn[:3] + (dbn[3], labels)),
                                  "backprop", args.cases, args.seed)}
    if out_path is not None:
        atomic_write_text(out_path, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
