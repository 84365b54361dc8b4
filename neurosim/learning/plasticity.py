"""Plasticity in the event engine: every synapse applies its rule to its own view.

A :class:`Plasticity` attaches one rule to every synapse of one pathway of a
:class:`~neurosim.engine.Simulator`, biases included (a bias is a synapse from a unit
that is always on). ``observe(phase)`` is the global phase signal: each synapse reads
its :class:`~neurosim.learning.view.SynapseView` and accumulates the rule's weight
change; ``apply(scale)`` then changes every weight by ``scale`` times its
accumulated change. Reads are recorded; a rule that reaches for anything non-local
raises :class:`~neurosim.errors.LocalityError`, and is counted as a violation.
"""

from __future__ import annotations

from typing import Collection

from ..engine.neuron import sigmoid
from ..engine.simulator import Simulator
from ..errors import LocalityError
from .rules import Rule
from .view import SynapseView

__all__ = ["Plasticity"]


class Plasticity:
    """Local learning on ``sim``'s synapses by ``rule`` with learning rate ``lr``."""

    def __init__(self, sim: Simulator, rule: Rule, lr: float, biases: bool = True) -> None:
        self.sim, self.rule, self.lr = sim, rule, lr
        self.reads: set[str] = set()
        self.violations = 0
        self.phase_signals = 0
        self.synapses = [(n, k, f"synapse {pre} -> {post}") for (pre, post), (n, k) in sim.slots.items()]
        if biases:  # recognition biases exist only where recognition synapses arrive
            self.synapses += [(n, None, f"bias of {n.name}") for n in sim.neurons
                              if sim.pathway == "generative" or n.in_weight]
        # each synapse's link and presynaptic row in the engine's wiring (None: a bias)
        self.rows = [None if k is None else n.incoming()[k] for n, k, _ in self.synapses]
        self.dw = [0.0] * len(self.synapses)
        self.acc = [{} for _ in self.synapses]

    def observe(self, phase: str, post_error: dict[str, float] | None = None,
                units: Collection[str] | None = None) -> None:
        """Broadcast ``phase``; every synapse accumulates ``rule.local(view)``.

        ``post_error`` (backprop only) maps unit names to the error derivative that
        reached them as analog messages. ``units``: only the synapses (and biases) of
        these units hear the signal.
        """
        self.phase_signals += 1
        rule, dw = self.rule, self.dw
        for idx, ((n, k, where), row) in enumerate(zip(self.synapses, self.rows)):
            if units is not None and n.name not in units:
                continue
            link, i = row or (None, 0)
            values = dict(pre=1 if k is None else link.last[i], post=n.state,
                          post_prob=sigmoid(n.bias + n.input), phase=phase,
                          weight=n.bias if k is None else float(link.W[i, n.j]), acc=self.acc[idx], lr=self.lr)
            if post_error is not None:
                values["post_error"] = post_error[n.name]
            try:
                dw[idx] += rule.local(SynapseView(where, self.reads, **values))
            except LocalityError:
                self.violations += 1
                raise

    def apply(self, scale: float = 1.0) -> None:
        """Change every weight by ``scale`` times its accumulated change, then reset."""
        for idx, (n, k, _) in enumerate(self.synapses):
            change = self.dw[idx]
            if change:
                if k is None:
                    n.set_bias(n.bias + scale * change)
                else:
                    n.set_weight(k, n.in_weight[k] + scale * change)
                self.dw[idx] = 0.0
