"""Sigmoid belief nets (Neal 1992) learned by the delta rule on Gibbs posterior samples.

Each unit is on with probability ``sigmoid(b_i + sum_j s_j w_ji)`` given its parents
(eq. 1, directed). Learning (eq. 7 of Hinton 2005) needs samples of the hidden units
from their posterior given a data vector; Neal's Gibbs sampling provides them, with
each unit's conditional including how well it lets its children predict their states.
The change is ``get_rule("delta").batched`` (:func:`delta_change`, which the Helmholtz
machine's wake and sleep phases use too). Sampling runs on the compiled backend
(:class:`~neurosim.compiled.Chains`, one chain per case): the Neal plan with the visible
units clamped (colour classes of the moral graph), an ancestral pass unclamped.

Example
-------
>>> import numpy as np
>>> from neurosim import load_model
>>> from neurosim.machines import SigmoidBeliefNet
>>> sbn = SigmoidBeliefNet(load_model("models/sigmoid_belief_net.toml"), n_iter=2, random_state=0)
>>> sbn.fit(np.array([[1, 0, 1, 0], [0, 1, 0, 1]])).sample(3).shape
(3, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compiled import Chains, compile
from ..errors import ValidationError
from ..inference import visible_log_prob
from ..learning import get_rule
from ..network import Network
from ..numerics import sigmoid
from .base import NetworkMachine, Position, binary_rows, check_number, check_random_state, valid_random_state

__all__ = ["SigmoidBeliefNet", "delta_change"]


def delta_change(S: np.ndarray, W: np.ndarray, b: np.ndarray, rates: Any, phase: str = "wake",
                 rule: str = "delta") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 7 (eq. 11 in phase "sleep") in ``rule``'s batched form on the states ``S`` (rows:
    cases) of every unit of a directed net with weights ``W[i, j]`` (i -> j) and biases
    ``b``: ``p = sigmoid(b + S W)`` (eq. 1), ``(dW, db) = rates * sum_rows s_pre (s - p)``,
    ``rates`` broadcast over the change (rows: pre units, then the bias, an always-on unit). Returns
    ``(dW, db, p)``."""
    P = sigmoid(S @ W + b)
    pre = np.hstack([S, np.ones((len(S), 1))])
    change = get_rule(rule).batched(pre, S, phase, 1.0, post_prob=P) * rates
    return change[:-1], change[-1], P


class SigmoidBeliefNet(NetworkMachine):
    """A directed Network trained by Neal's Gibbs sampling and the delta rule.

    Parameters
    ----------
    network : Network
        Directed edges only; units with role ``visible`` are the data.
    learning_rate : float (per case: the change is the mean over a batch)
    n_iter : int
        Shuffled passes over the training data in ``fit``, which continues from the
        current weights.
    batch_size : int
    gibbs_sweeps : int
        Gibbs sweeps over the hidden units per weight change; each training case's
        hidden states persist from pass to pass (Neal 1992), so a few suffice.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Normalised once, when the weights are first set up, to ``random_state_``.
    verbose : bool (print each epoch, on stderr)
    """

    def __init__(self, network: Network, learning_rate: float = 0.1, n_iter: int = 10,
                 batch_size: int = 10, gibbs_sweeps: int = 3, random_state=None,
                 verbose: bool = False) -> None:
        self.network = network
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.gibbs_sweeps = gibbs_sweeps
        self.random_state = random_state
        self.verbose = verbose

    # -- set-up --------------------------------------------------------------------
    def _validate(self) -> None:
        net = self.network
        net.refuse_linear("a sigmoid belief net (logistic units, eq. 1)")
        if net.has_symmetric:
            e = next(e for e in net.edges if e.kind == "symmetric")
            raise ValidationError(f"a sigmoid belief net has directed edges only; {e.source} <-> "
                                  f"{e.target} is symmetric")
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        for name in ("n_iter", "batch_size", "gibbs_sweeps"):
            check_number(name, getattr(self, name), 1, integer=True)
        if not valid_random_state(self.random_state):
            check_random_state(self.random_state)            # raises, naming the value

    def _init_params(self) -> None:
        if hasattr(self, "weights_"):
            return
        self._validate()
        net = self.network
        self.random_state_ = check_random_state(self.random_state)
        self._compiled = cn = compile(net, dtype=np.float64)     # the float64 weights, as learned
        self.weights_, self.biases_, self.mask_ = cn.W.copy(), cn.b.copy(), cn.directed
        self.visible_ = np.array([u.role == "visible" for u in net.unit_list()])
        self._visible_names = [u for u, on in zip(net.units, self.visible_) if on]

    _setup = _init_params            # NetworkMachine's name for it

    def _check_data(self, X: Any) -> np.ndarray:
        return binary_rows(X, len(self._visible_names), "X", self._visible_names)

    # -- sampling ----------------------------------------------------------------------
    def _chains(self, S: np.ndarray) -> Chains:
        """Chains over the current weights, one per row of ``S`` (no message count)."""
        self._compiled.set_weights(self.weights_, self.biases_)
        return Chains(self._compiled, self.random_state_, len(S), init=S, count=False)

    def gibbs(self, S: np.ndarray, sweeps: int = 1) -> np.ndarray:
        """Sweeps of Gibbs sampling of the hidden units of each row of ``S`` (all units,
        visible ones fixed), each from its full conditional (Neal 1992): the compiled
        Neal plan, with the visible units clamped."""
        chains = self._chains(S)
        chains.clamp(units=self._visible_names, values=S[:, self.visible_])
        chains.sweep(sweeps)
        return chains.rows

    # -- learning ---------------------------------------------------------------------
    def partial_fit(self, X: np.ndarray) -> SigmoidBeliefNet:
        """One weight change from one batch (fresh posterior chains from random states)."""
        self._init_params()
        X = self._check_data(X)
        self._learn(self.gibbs(self._start(X), self.gibbs_sweeps))
        return self

    def _begin_fit(self, X: np.ndarray) -> np.ndarray:
        self._init_params()
        X = self._check_data(X)
        self._states = self._start(X)
        self._n_epochs, self._batch_rows = int(self.n_iter), int(self.batch_size)
        return X

    def _epoch_order(self, X: np.ndarray, epoch: int) -> np.ndarray:
        return self.random_state_.permutation(len(X))

    def _fit_batch(self, X: np.ndarray, rows: np.ndarray, at: Position) -> None:
        self._states[rows] = self.gibbs(self._states[rows], self.gibbs_sweeps)
        self._learn(self._states[rows])

    def _end_epoch(self, X: np.ndarray, epoch: int) -> None:
        self.n_iter_ = epoch + 1
        self._say(f"[SigmoidBeliefNet] epoch {epoch + 1}/{self.n_iter}")

    def _training_state(self) -> dict[str, np.ndarray]:
        return {"states": self._states}

    def _set_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._states = arrays["states"]

    def _start(self, X: np.ndarray) -> np.ndarray:
        S = (self.random_state_.random((len(X), self.network.n_units)) < 0.5).astype(float)
        S[:, self.visible_] = X
        return S

    def _learn(self, S: np.ndarray) -> None:
        """Eq. 7 in its batched form (:func:`delta_change`), the mean over the rows."""
        dW, db, _ = delta_change(S, self.weights_, self.biases_, self.learning_rate / len(S))
        self.weights_ += np.where(self.mask_, dW, 0.0)
        self.biases_ += db

    # -- using the model ----------------------------------------------------------------
    def sample(self, n: int) -> np.ndarray:
        """Ancestral samples of the visible units: one sweep of the compiled plan of the
        unclamped net (roots, then each generation from its parents)."""
        self._init_params()
        chains = self._chains(np.zeros((n, self.network.n_units)))
        chains.sweep(1)
        return chains.rows[:, self.visible_].astype(np.int8)

    def to_network(self) -> Network:
        """The Network with the learned weights and biases."""
        self._init_params()
        return self.network.with_arrays(self.weights_, self.biases_)

    def exact_log_likelihood(self, X: np.ndarray) -> float:
        """Mean log P(v) over the rows of X, by enumeration of the hidden units."""
        self._init_params()
        X = self._check_data(X)
        return float(np.mean(visible_log_prob(self.to_network(), self._visible_names, X)))
