"""The plausibility audit: each algorithm on one small task, run in the event engine,
with the messages it needs per training case, what its synapses read, whether it
needs a phase signal or symmetric weights, and the quality it reaches.

The task is the 4-2-4 encoder's data (Ackley, Hinton and Sejnowski 1985): eight
visible units in two groups of four; each of the four training vectors turns on unit
i of both groups. Each algorithm gets the net of its kind with two hidden units
(backprop: a feed-forward net from group a to group b through them; up-down: a deep
belief net whose two hidden units are the pen layer under a top RBM of four units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data import encoder_424
from ..inference import kl_data_model
from ..network import Edge, Network, Unit
from .procedures import Settings, train
from .rules import get_rule

__all__ = ["AuditRow", "audit", "ALGORITHMS"]

A, B, H = [f"a{i}" for i in range(4)], [f"b{i}" for i in range(4)], ["h0", "h1"]
TOP = [f"t{i}" for i in range(4)]


def _units(recognition: bool = False) -> list[Unit]:
    rb = 0.0 if recognition else None
    return ([Unit(u, 0.0, "visible", 0, rb) for u in A + B] + [Unit(h, 0.0, "hidden", 1, rb) for h in H])


def _boltzmann_net(rng: np.random.Generator) -> Network:
    """Visible groups joined to the hidden units, within-group and hidden-hidden edges."""
    pairs = [(v, h) for v in A + B for h in H] + [("h0", "h1")]
    pairs += [(g[i], g[j]) for g in (A, B) for i in range(4) for j in range(i + 1, 4)]
    return Network(_units(), [Edge(x, y, float(rng.normal(0, 0.1)), "symmetric") for x, y in pairs])


def _rbm(rng: np.random.Generator) -> Network:
    return Network(_units(), [Edge(v, h, float(rng.normal(0, 0.1)), "symmetric") for v in A + B for h in H])


def _belief_net(rng: np.random.Generator, recognition: bool = False) -> Network:
    edges = [Edge(h, v, float(rng.normal(0, 0.1))) for h in H for v in A + B]
    if recognition:
        edges += [Edge(v, h, float(rng.normal(0, 0.1)), "recognition") for v in A + B for h in H]
    return Network(_units(recognition), edges)


def _dbn(rng: np.random.Generator) -> Network:
    """The belief net with recognition edges, its hidden units joined to a top RBM (Hinton,
    Osindero and Teh 2006): the smallest net up-down trains."""
    net = _belief_net(rng, recognition=True)
    top = [Edge(h, t, float(rng.normal(0, 0.1)), "symmetric") for h in H for t in TOP]
    return Network(net.unit_list() + [Unit(t, 0.0, "hidden", 2) for t in TOP], net.edges + top)


def _feed_forward(rng: np.random.Generator) -> Network:
    edges = [Edge(a, h, float(rng.normal(0, 0.5))) for a in A for h in H]
    edges += [Edge(h, b, float(rng.normal(0, 0.5))) for h in H for b in B]
    return Network(_units(), edges)


# algorithm: (rule, net builder, settings, needs symmetric weights)
ALGORITHMS = {
    "boltzmann": ("boltzmann", _boltzmann_net, Settings(epochs=600, lr=0.5, batch=4, sweeps=10), True),
    "cd": ("cd", _rbm, Settings(epochs=600, lr=0.5, batch=4), True),
    "pcd": ("pcd", _rbm, Settings(epochs=600, lr=0.2, batch=4), True),
    "sbn-gibbs-delta": ("delta", _belief_net, Settings(epochs=600, lr=0.5, batch=4, sweeps=5), False),
    "wake-sleep": ("wake-sleep", lambda r: _belief_net(r, True), Settings(epochs=1000, lr=0.5, batch=4), False),
    "up-down": ("up-down", _dbn, Settings(epochs=1000, lr=0.5, batch=4), True),
    "backprop": ("backprop", _feed_forward, Settings(epochs=300, lr=1.0, batch=4), True),
}


@dataclass
class AuditRow:
    algorithm: str
    rule: str
    equation: str
    cases: int
    messages: dict[str, float]
    updates: float
    reads: list[str]
    phase_signal: bool
    needs_symmetry: bool
    symmetry_drift: float | None
    violations: int
    quality: dict[str, float]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _output_error(net: Network, rows: np.ndarray) -> float:
    """Backprop's quality: fraction of target units on the wrong side of 0.5."""
    wrong = 0
    for row in rows:
        y = dict(zip(A, row[:4].astype(float)))
        for u in H + B:
            x = net.bias(u) + sum(net.weight(p, u) * y[p] for p in net.parents(u))
            y[u] = 1.0 / (1.0 + math.exp(-x))
        wrong += sum((y[b] > 0.5) != bool(t) for b, t in zip(B, row[4:]))
    return wrong / (len(rows) * len(B))


def audit(rng: np.random.Generator, epochs: int | None = None,
          algorithms: list[str] | None = None) -> list[AuditRow]:
    """Run each algorithm on the encoder task; ``epochs`` overrides the defaults."""
    data = encoder_424()
    rows = []
    for name in algorithms or list(ALGORITHMS):
        rule_name, build, settings, symmetric = ALGORITHMS[name]
        if epochs is not None:
            settings = Settings(**{**settings.__dict__, "epochs": epochs})
        rule = get_rule(rule_name)
        result = train(build(rng), rule, data.data, data.names, rng, settings)
        cases = result.cases
        quality = ({"output_error": _output_error(result.network, data.data)} if name == "backprop" else
                   {"kl_nats": kl_data_model(result.network, data.names, data.data, data.probs)})
        rows.append(AuditRow(
            name, rule.name, rule.equation, cases,
            {"binary": result.ledger.binary / cases, "analog": result.ledger.analog / cases},
            result.ledger.updates / cases, result.reads, len(rule.phases) > 1, symmetric,
            result.symmetry_drift if rule.procedure in ("boltzmann", "cd", "pcd", "up-down") else None,
            result.violations, quality))
    return rows
