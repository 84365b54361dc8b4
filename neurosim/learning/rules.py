"""Local learning rules, each in its local form and its batched form, side by side.

A rule's **local form** ``local(view)`` returns the weight change one observation
asks of one synapse, reading only its :class:`~neurosim.learning.view.SynapseView`.
Its **batched form** ``batched(pre, post, phase, lr, post_prob=None, post_error=None)``
returns the sum of those changes over the rows of a minibatch for every synapse at
once, as a ``(n_pre, n_post)`` matrix of outer products. The two are tested to agree.
A bias is a synapse from a unit that is always on: a column of ones in ``pre``.

Rules are registered by name; a user adds one with :func:`register` from their own
module without touching neurosim.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import NeurosimError
from .view import SynapseView

__all__ = ["Rule", "HebbianContrast", "Delta", "WakeSleep", "UpDown", "Backprop", "register",
           "get_rule", "rule_names"]


class Rule:
    """Base class: a synapse-level learning rule.

    ``phases`` lists the phase signals under which the rule's synapses learn;
    ``procedure`` names the training procedure that produces its observations (one
    of ``neurosim.learning.procedures.PROCEDURES``); ``equation`` names its equation.
    """

    name: ClassVar[str] = ""
    phases: ClassVar[tuple[str, ...]] = ()
    procedure: ClassVar[str] = ""
    equation: ClassVar[str] = ""

    def local(self, s: SynapseView) -> float:
        raise NotImplementedError

    def batched(self, pre: np.ndarray, post: np.ndarray, phase: str, lr: float,
                post_prob: np.ndarray | None = None, post_error: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


class HebbianContrast(Rule):
    """Eq. 5 (Boltzmann) and eq. 6 (contrastive divergence) of Hinton (2005):
    ``dw_ij = lr (<s_i s_j>+ - <s_i s_j>-)``. Positive phase adds ``lr * pre * post``,
    negative phase subtracts it. The rules differ in their procedure (equilibrium
    phases, n-step chains from the data, persistent chains), not at the synapse."""

    phases = ("positive", "negative")

    def __init__(self, name: str, equation: str) -> None:
        self.name, self.procedure, self.equation = name, name, equation

    @staticmethod
    def _sign(phase: str) -> float:
        return 1.0 if phase == "positive" else -1.0

    def local(self, s: SynapseView) -> float:
        return self._sign(s.phase) * s.lr * s.pre * s.post

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        return self._sign(phase) * lr * (pre.T @ post)


class Delta(Rule):
    """Eq. 7 of Hinton (2005), for directed nets: ``dw_ji = lr s_j (s_i - s^_i)``, where
    ``s^_i`` is the probability the post-synaptic unit gives itself from its parents.
    Its observations are posterior samples (Neal's Gibbs sampling): phase ``wake``."""

    name, phases, procedure, equation = "delta", ("wake",), "delta", "eq. 7"

    def local(self, s: SynapseView) -> float:
        return s.lr * s.pre * (s.post - s.post_prob)

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        if post_prob is None:
            raise NeurosimError(f"rule {self.name!r} needs post_prob, the post-synaptic units' "
                                "predicted probabilities")
        return lr * (pre.T @ (post - post_prob))


class WakeSleep(Delta):
    """Wake-sleep (Hinton et al. 1995; Hinton 2005, section 4.1). Wake phase: the
    generative synapses learn by eq. 7 from a recognition sample. Sleep phase: the
    recognition synapses learn by eq. 11, ``dw_ij = lr s_i (s_j - s^_j)``, from a
    fantasy, where ``s^_j`` is the recognition probability. Same form at the synapse;
    the phase signal says which pathway learns."""

    name, phases, procedure = "wake-sleep", ("wake", "sleep"), "wake-sleep"
    equation = "eq. 7 (wake) and eq. 11 (sleep)"


class UpDown(Rule):
    """Up-down (contrastive wake-sleep; Hinton, Osindero and Teh 2006, appendix B), for a
    DBN: phase ``wake``, the generative synapses of the directed layers learn by eq. 7
    from a recognition sample; ``positive`` and ``negative``, the top RBM's by eq. 6
    (CD-k); ``sleep``, the recognition synapses by eq. 11 from a fantasy. The phase
    signal says which form a synapse applies (and the procedure which synapses hear it)."""

    name, procedure = "up-down", "up-down"
    phases = ("wake", "positive", "negative", "sleep")
    equation = "eq. 7 (wake), eq. 6 (top RBM), eq. 11 (sleep)"

    def local(self, s: SynapseView) -> float:
        phase = s.phase
        if phase in ("wake", "sleep"):
            return s.lr * s.pre * (s.post - s.post_prob)
        return (1.0 if phase == "positive" else -1.0) * s.lr * s.pre * s.post

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        if phase in ("wake", "sleep"):
            return Delta.batched(self, pre, post, phase, lr, post_prob=post_prob)
        return (1.0 if phase == "positive" else -1.0) * lr * (pre.T @ post)


class Backprop(Rule):
    """Backpropagation (Rumelhart et al. 1986), the contrast case:
    ``dw_ij = lr s_i delta_j`` with ``delta_j = -dE/dx_j`` the error derivative of the
    post-synaptic unit's total input, which must be sent backwards as an analog
    message: not something a synapse of a stochastic binary unit has."""

    name, phases, procedure, equation = "backprop", ("backward",), "backprop", "generalised delta rule"

    def local(self, s: SynapseView) -> float:
        return s.lr * s.pre * s.post_error

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        if post_error is None:
            raise NeurosimError("rule 'backprop' needs post_error, the error derivatives sent back")
        return lr * (pre.T @ post_error)


_REGISTRY: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Add ``rule`` to the registry under ``rule.name`` (a user's own rules too)."""
    if not isinstance(rule, Rule) or not rule.name:
        raise NeurosimError(f"register() takes a Rule instance with a name, got {rule!r}")
    _REGISTRY[rule.name] = rule
    return rule


def get_rule(name: str) -> Rule:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NeurosimError(f"unknown learning rule {name!r} (registered: {', '.join(rule_names())})") from None


def rule_names() -> list[str]:
    return sorted(_REGISTRY)


for _rule in (HebbianContrast("boltzmann", "eq. 5"), HebbianContrast("cd", "eq. 6"),
              HebbianContrast("pcd", "eq. 6, persistent chains"), Delta(), WakeSleep(), UpDown(), Backprop()):
    register(_rule)
