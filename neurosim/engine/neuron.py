"""One unit of the event engine: local state, eq. 1, and the messages it sends.

A neuron knows only what reached it: its bias, the running total of its inputs
(``w * state`` for every state it was sent; updated as ``w * (new - old)``), and, for
Neal's Gibbs sampling in belief nets, each child's last state and predicted log-odds.

Hot path: this module runs once per unit update. It uses ``__slots__``, plain floats
and lists of ``(receiver, weight)`` pairs (no object per message), and sends only on
a change of state.
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
    __slots__ = ("sim", "name", "index", "bias", "state", "input", "clamped", "plain",
                 "relays", "delayed", "up", "up_delayed", "children", "child_weight",
                 "child_state", "child_logit", "n_binary", "n_analog")

    def __init__(self, sim: Simulator, name: str, index: int, bias: float) -> None:
        self.sim = sim
        self.name, self.index, self.bias = name, index, bias
        self.state = 0
        self.input = 0.0           # sum of w * (state as last received)
        self.clamped = False
        self.plain: list[tuple[Neuron, float]] = []        # receivers that only add
        self.relays: list[tuple[Neuron, float]] = []       # children that send log-odds on
        self.delayed: list[tuple[Neuron, float, float]] = []
        self.up: list[tuple[Neuron, int]] = []             # parents, and my slot in them
        self.up_delayed: list[tuple[Neuron, int, float]] = []
        self.children: list[Neuron] = []                   # Neal's Gibbs only
        self.child_weight: list[float] = []
        self.child_state: list[int] = []
        self.child_logit: list[float] = []
        self.n_binary = 0
        self.n_analog = 0

    # -- eq. 1 and Neal's conditional -------------------------------------------------
    def log_odds(self) -> float:
        """log P(s=1 | rest) / P(s=0 | rest) from what this unit has received.

        ``b + sum_j s_j w_ji`` (eq. 1), plus for each child c (Neal 1992)
        ``log P(s_c | x_c with s=1) - log P(s_c | x_c with s=0)``, where ``x_c`` is the
        child's log-odds it last sent and ``w`` this unit's weight to it.
        """
        x = self.bias + self.input
        s = self.state
        for w, sc, xc in zip(self.child_weight, self.child_state, self.child_logit):
            x1 = xc + w * (1 - s)
            x0 = xc - w * s
            x += softplus(-x0) - softplus(-x1) if sc else softplus(x0) - softplus(x1)
        return x

    def propose(self) -> int:
        sim = self.sim
        sim.ledger.updates += 1
        x = self.bias + self.input if not self.children else self.log_odds()
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
        for r, w in self.plain:
            r.input += w * dv
        for r, w in self.relays:
            r.receive(w * dv)
        for r, k in self.up:
            r.child_state[k] = new
        for r, w, d in self.delayed:
            sim.after(0.0 if instant else d, r.receive, w * dv)
        for r, k, d in self.up_delayed:
            sim.after(0.0 if instant else d, r.child_state.__setitem__, k, new)
        if sim.on_message is not None:
            sim.on_message(sim.env.now, self.index, "binary")

    def receive(self, dv: float) -> None:
        self.input += dv
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
