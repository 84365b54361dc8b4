"""One unit of the event engine: local state, eq. 1, and the messages it sends.

A neuron knows only what reached it. Its incoming synapses live with it: for each,
the weight and the presynaptic state as it last arrived (``in_weight``, ``in_state``);
its running input is ``sum_k in_weight[k] * in_state[k]``, kept up to date as
``w * (new - old)`` on every message. For Neal's Gibbs sampling in belief nets it also
keeps each child's last state and predicted log-odds.

Hot path: this module runs once per unit update. It uses ``__slots__``, plain floats
and lists of ``(receiver, slot)`` pairs (no object per message), and sends only on a
change of state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["Neuron", "sigmoid", "softplus"]


def sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def softplus(x: float) -> float:
    """log(1 + e^x), stable for any x."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


class Neuron:
    __slots__ = ("sim", "name", "index", "bias", "state", "input", "clamped", "in_weight",
                 "in_state", "in_pre", "plain", "relays", "delayed", "up", "up_delayed",
                 "children", "child_state", "child_logit", "n_binary", "n_analog")

    def __init__(self, sim: Simulator, name: str, index: int, bias: float) -> None:
        self.sim = sim
        self.name, self.index, self.bias = name, index, bias
        self.state = 0
        self.input = 0.0                     # sum of in_weight[k] * in_state[k]
        self.clamped = False
        self.in_weight: list[float] = []     # incoming synapses: weight,
        self.in_state: list[int] = []        # presynaptic state as last received,
        self.in_pre: list[str] = []          # and the presynaptic unit's name
        self.plain: list[tuple[Neuron, int]] = []        # receivers and my slot in them
        self.relays: list[tuple[Neuron, int]] = []       # children that pass log-odds on
        self.delayed: list[tuple[Neuron, int, float]] = []
        self.up: list[tuple[Neuron, int]] = []           # parents, and my slot in them
        self.up_delayed: list[tuple[Neuron, int, float]] = []
        self.children: list[tuple[Neuron, int]] = []     # Neal's Gibbs: child, my slot in it
        self.child_state: list[int] = []
        self.child_logit: list[float] = []
        self.n_binary = 0
        self.n_analog = 0

    def add_synapse(self, pre: str, weight: float) -> int:
        self.in_weight.append(weight)
        self.in_state.append(0)
        self.in_pre.append(pre)
        return len(self.in_weight) - 1

    # -- eq. 1 and Neal's conditional -------------------------------------------------
    def log_odds(self) -> float:
        """log P(s=1 | rest) / P(s=0 | rest) from what this unit has received.

        ``b + sum_j s_j w_ji`` (eq. 1), plus for each child c (Neal 1992)
        ``log P(s_c | x_c with s=1) - log P(s_c | x_c with s=0)``, where ``x_c`` is the
        child's log-odds it last sent and ``w`` this unit's synapse onto it.
        """
        x = self.bias + self.input
        s = self.state
        for (child, k), sc, xc in zip(self.children, self.child_state, self.child_logit):
            w = child.in_weight[k]
            x1 = xc + w * (1 - s)
            x0 = xc - w * s
            x += softplus(-x0) - softplus(-x1) if sc else softplus(x0) - softplus(x1)
        return x

    def propose(self) -> int:
        sim = self.sim
        sim.ledger.updates += 1
        x = self.bias + self.input if not self.children else self.log_odds()
        if sim.beta != 1.0:  # annealing: p = sigmoid(x / T)
            x *= sim.beta
        new = 1 if sim.uniform() < sigmoid(x) else 0
        if sim.on_update is not None:
            sim.on_update(sim.env.now, self.index, new)
        return new

    def update(self) -> None:
        new = self.propose()
        if new != self.state:
            self.set_state(new)

    # -- messages ---------------------------------------------------------------------
    def set_state(self, new: int, instant: bool = False) -> None:
        """Adopt ``new`` and send it to every receiver (after each edge's delay)."""
        dv = new - self.state
        self.state = new
        sim = self.sim
        sim.ledger.binary += self.n_binary
        for r, k in self.plain:
            r.in_state[k] = new
            r.input += r.in_weight[k] * dv
        for r, k in self.relays:
            r.receive(k, new)
        for r, k in self.up:
            r.child_state[k] = new
        for r, k, d in self.delayed:
            sim.after(0.0 if instant else d, r.receive, k, new)
        for r, k, d in self.up_delayed:
            sim.after(0.0 if instant else d, r.child_state.__setitem__, k, new)
        if sim.on_message is not None:
            sim.on_message(sim.env.now, self.index, "binary")

    def receive(self, k: int, new: int) -> None:
        """A binary message on incoming synapse ``k``."""
        self.input += self.in_weight[k] * (new - self.in_state[k])
        self.in_state[k] = new
        if self.n_analog:
            self.send_log_odds()

    def set_weight(self, k: int, weight: float) -> None:
        """Learning changed incoming synapse ``k``: the running input follows."""
        self.input += (weight - self.in_weight[k]) * self.in_state[k]
        self.in_weight[k] = weight
        if self.n_analog:
            self.send_log_odds()

    def set_bias(self, bias: float) -> None:
        self.bias = bias
        if self.n_analog:
            self.send_log_odds()

    def send_log_odds(self, instant: bool = False) -> None:
        """Analog message to every parent: my predicted log-odds ``b + sum_j s_j w_ji``."""
        x = self.bias + self.input
        sim = self.sim
        sim.ledger.analog += self.n_analog
        for r, k in self.up:
            r.child_logit[k] = x
        for r, k, d in self.up_delayed:
            sim.after(0.0 if instant else d, r.child_logit.__setitem__, k, x)
        if sim.on_message is not None:
            sim.on_message(sim.env.now, self.index, "analog")
