"""One unit of the event engine: local state, eq. 1, and the messages it sends.

A unit's incoming synapses live in its population's wiring (:mod:`.links`): the
population keeps one running input vector, ``input_j = sum_i w_ij s_i`` over the
presynaptic states as they last arrived, and a change of state of a presynaptic unit
``i`` adds ``(new - old) * W[i, :]`` into it, one slice-add per outgoing projection.
For Neal's Gibbs sampling in belief nets a unit also reads its children's last sent
states and log-odds from the links of its outgoing directed projections.

Hot path: this module runs once per unit update. It uses ``__slots__``, plain floats
and sends only on a change of state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .links import Link, PopState
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


SMALL_LINK = 32  # children per link below which Neal's terms are summed in Python floats


def _softplus(x: np.ndarray) -> np.ndarray:
    """:func:`softplus` elementwise."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


class Neuron:
    __slots__ = ("sim", "name", "index", "bias", "state", "clamped", "pop", "j", "out", "children",
                 "ups", "n_binary", "n_analog", "_incoming")

    def __init__(self, sim: Simulator, name: str, index: int, bias: float, pop: PopState, j: int) -> None:
        self.sim = sim
        self.name, self.index, self.bias = name, index, bias
        self.pop, self.j = pop, j              # my population's wiring and my index in it
        self.state = 0
        self.clamped = False
        self.out: list[Link] = []              # outgoing links (one per projection direction)
        self.children: list[Link] = []         # Neal's Gibbs: outgoing directed links
        self.ups: list[Link] = []              # Neal's Gibbs: incoming directed links reaching me
        self.n_binary = 0                      # messages per send of my state
        self.n_analog = 0
        self._incoming: list[tuple[Link, int]] | None = None

    @property
    def input(self) -> float:
        """``sum_i w_ij s_i`` over what has arrived (eq. 1 without the bias)."""
        return float(self.pop.input[self.j])

    # -- the per-synapse view (learning, audits): built on first use ----------------------
    @property
    def in_weight(self) -> _Incoming:
        return _Incoming(self, "weight")

    @property
    def in_state(self) -> _Incoming:
        return _Incoming(self, "state")

    @property
    def in_pre(self) -> _Incoming:
        return _Incoming(self, "pre")

    def incoming(self) -> list[tuple[Link, int]]:
        """My incoming synapses as (link, presynaptic row), in link order."""
        if self._incoming is None:
            self._incoming = [(link, i) for link in self.pop.links_in for i in link.rows_to(self.j)]
        return self._incoming

    # -- eq. 1 and Neal's conditional -------------------------------------------------
    def log_odds(self) -> float:
        """log P(s=1 | rest) / P(s=0 | rest) from what this unit has received.

        ``b + sum_j s_j w_ji`` (eq. 1), plus for each child c (Neal 1992)
        ``log P(s_c | x_c with s=1) - log P(s_c | x_c with s=0)``, where ``x_c`` is the
        child's log-odds it last sent and ``w`` this unit's synapse onto it; summed in
        order, child by child.
        """
        s, i = self.state, self.j
        x = self.bias + self.input
        for link in self.children:
            cols = link.cols[i] if link.cols is not None else range(link.W.shape[1])
            if len(cols) <= SMALL_LINK:  # hot path of small nets: numpy calls cost more than the sum
                row, up_state, up_logit = link.W[i], link.up_state, link.up_logit
                for c in cols:
                    w, xc = float(row[c]), float(up_logit[c])
                    x1, x0 = xc + w * (1 - s), xc - w * s
                    x += softplus(-x0) - softplus(-x1) if up_state[c] else softplus(x0) - softplus(x1)
                continue
            w, sc, xc = link.W[i, cols], link.up_state[cols], link.up_logit[cols]
            x1 = xc + w * (1 - s)
            x0 = xc - w * s
            terms = np.where(sc, _softplus(-x0) - _softplus(-x1), _softplus(x0) - _softplus(x1))
            x = float(np.cumsum(np.concatenate(([x], terms)))[-1])  # sequential: eq. 1's order
        return x

    def propose(self) -> int:
        sim = self.sim
        sim.ledger.updates += 1
        x = self.bias + float(self.pop.input[self.j]) if not self.children else self.log_odds()
        if sim.beta != 1.0:  # annealing: p = sigmoid(x / T)
            x *= sim.beta
        new = 1 if sim.uniform() < sigmoid(x) else 0
        if sim.on_update is not None:
            sim.on_update(sim.env.now, self.index, new)
        return new

    def mean_field(self) -> float:
        """My mean-field update, deterministic: ``q <- d q + (1 - d) sigmoid(b + g sum_j q_j w_ji)``
        from the probabilities (and clamped bits) received (Salakhutdinov and Hinton 2009,
        eq. 6 of ``q``); ``d``, ``g``: the simulator's ``damping`` and ``gain``."""
        sim = self.sim
        sim.ledger.updates += 1
        q = sigmoid(self.bias + sim.gain * float(self.pop.input[self.j]))
        if sim.damping:
            q = sim.damping * self.state + (1.0 - sim.damping) * q
        if sim.on_update is not None:
            sim.on_update(sim.env.now, self.index, q)
        return q

    def update(self) -> None:
        new = self.propose()
        if new != self.state:
            self.set_state(new)

    # -- messages ---------------------------------------------------------------------
    def set_state(self, new: int | float, instant: bool = False, analog: bool = False) -> None:
        """Adopt ``new`` and send it along every outgoing link (after its delay): a bit as
        binary messages, or (``analog``) a mean-field probability as analog ones."""
        self.state = new
        sim, i = self.sim, self.j
        if analog:
            sim.ledger.analog += self.n_binary
        else:
            sim.ledger.binary += self.n_binary
        for link in self.out:
            if link.delay and not instant:
                sim.after(link.delay, link.deliver, i, new)
            else:
                link.deliver(i, new)
        for link in self.ups:
            if link.delay and not instant:
                sim.after(link.delay, link.up_state.__setitem__, i, new)
            else:
                link.up_state[i] = new
        if sim.on_message is not None:
            sim.on_message(sim.env.now, self.index, "analog" if analog else "binary")

    def set_weight(self, k: int, weight: float) -> None:
        """Learning changed incoming synapse ``k``: the running input follows (in Python
        floats: a diverging weight gives inf or nan without numpy's warnings)."""
        link, i = self.incoming()[k]
        j, inp = self.j, self.pop.input
        inp[j] = float(inp[j]) + (weight - float(link.W[i, j])) * float(link.last[i])
        link.W[i, j] = weight
        if self.n_analog:
            self.send_log_odds()

    def set_bias(self, bias: float) -> None:
        self.bias = bias
        self.pop.bias[self.j] = bias
        if self.n_analog:
            self.send_log_odds()

    def send_log_odds(self, instant: bool = False) -> None:
        """Analog message to every parent: my predicted log-odds ``b + sum_j s_j w_ji``."""
        x = self.bias + self.input
        sim, j = self.sim, self.j
        sim.ledger.analog += self.n_analog
        for link in self.ups:
            if link.delay and not instant:
                sim.after(link.delay, link.up_logit.__setitem__, j, x)
            else:
                link.up_logit[j] = x
        if sim.on_message is not None:
            sim.on_message(sim.env.now, self.index, "analog")


class _Incoming:
    """``neuron.in_weight[k]`` / ``in_state[k]`` / ``in_pre[k]``: the k-th incoming
    synapse's weight, its presynaptic state as last received, its presynaptic unit."""

    __slots__ = ("neuron", "what")

    def __init__(self, neuron: Neuron, what: str) -> None:
        self.neuron, self.what = neuron, what

    def __getitem__(self, k: int) -> float | int | str:
        link, i = self.neuron.incoming()[k]
        if self.what == "weight":
            return float(link.W[i, self.neuron.j])
        return int(link.last[i]) if self.what == "state" else link.pre.units[i]

    def __len__(self) -> int:
        return len(self.neuron.incoming())
