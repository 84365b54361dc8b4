"""Boltzmann machines (Hinton 2005, section 2) and RBMs trained by contrastive divergence (section 3).

A Boltzmann machine is a :class:`~neurosim.network.Network` of symmetric edges with
visible and hidden units, any connectivity. Its energy is eq. 2,
``E(s) = -sum_i b_i s_i - sum_{i<j} s_i s_j w_ij``, and at equilibrium it visits a state
with probability ``exp(-E) / Z`` (eq. 3). Learning follows eq. 5,

    dw_ij = lr (<s_i s_j>+ - <s_i s_j>-),

with ``<.>+`` measured with data clamped on the visible units and the hidden units
Gibbs-sampled to equilibrium (the positive phase), and ``<.>-`` measured with the net
running freely (the negative phase). A bias is a synapse from a unit that is always on.
The weight change is the registered rule's batched form
(``get_rule("boltzmann").batched``), summed over the two phases, each divided by its
number of cases; the tests check it equals the sum of the rule's local form.

Procedures (``procedure=``):

``"boltzmann"``
    Eq. 5. Positive phase: each case's hidden units start random and run
    ``positive_sweeps`` Gibbs sweeps with the visible units clamped. Negative phase:
    ``n_chains`` free-running chains run ``negative_sweeps`` sweeps, kept from one
    update to the next (``persistent=True``) or restarted from random states
    (``persistent=False``). Chains that start from random states first run one sweep
    at each temperature of ``anneal`` (simulated annealing, as in Ackley, Hinton and
    Sejnowski 1985); statistics are always collected at temperature 1.
``"cd"``
    CD-k of eq. 6 for an RBM-shaped (bipartite visible-hidden) net, as in Hinton's
    ``rbm.m``: positive statistics use the data and the hidden probabilities; sampled
    hidden states drive the chain; after ``k`` steps the negative statistics use the
    visible probabilities and the hidden probabilities they give.
``"pcd"``
    Persistent CD (Tieleman 2008): as ``"cd"``, but the negative statistics come from
    ``n_chains`` persistent chains (sampled visible states, hidden probabilities) that
    advance ``k`` alternating Gibbs steps per update.
``"exact"``
    Ascent of the exact gradient of the mean log-likelihood, by enumeration
    (:meth:`BoltzmannMachine.exact_gradient`): the reference for small nets.

Gibbs sampling runs many chains at once (rows of a matrix) and updates all the units of
one colour class together: units with no edge between them are conditionally
independent given the rest, so a block update is an exact Gibbs step. The classes are
the layers :meth:`Network.layers` gives a copy of the net without layer attributes (a
greedy colouring of its graph).

Small nets are also solved exactly, by enumerating their states (at most 22 units, the
limit of :mod:`neurosim.inference.exact`): :meth:`~BoltzmannMachine.exact_kl`,
:meth:`~BoltzmannMachine.exact_log_likelihood`, :meth:`~BoltzmannMachine.exact_gradient`
(the maximum-likelihood gradient that eq. 5 estimates) and, for RBMs,
:meth:`~BoltzmannMachine.expected_cd_update` (what CD-k estimates). The energies are
those of eq. 2, equal to ``neurosim.inference.exact.log_joint`` of the trained net (tested).

Every random draw goes through the one ``numpy.random.Generator`` that
``random_state`` is normalised to when the machine is first fitted (or first used).

Example
-------
>>> import numpy as np
>>> from neurosim import Edge, Network, Unit
>>> net = Network([Unit("v0", role="visible"), Unit("v1", role="visible"), Unit("h0")],
...               [Edge("v0", "h0", 0.0, "symmetric"), Edge("v1", "h0", 0.0, "symmetric")])
>>> X = np.array([[1, 1], [0, 0]] * 8)
>>> bm = BoltzmannMachine(net, learning_rate=0.5, n_iter=300, random_state=0).fit(X)
>>> round(bm.exact_kl([[1, 1], [0, 0]], [0.5, 0.5]), 3)   # KL(data || model), nats; uniform: 0.693
0.169
>>> bm.to_network().weight("v0", "h0") == bm.to_network().weight("h0", "v0")
True
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Sequence

import numpy as np

from ..compiled import bipartite
from ..compiled.bipartite import CD, Block, apply_change
from ..errors import InferenceError, ParameterError, ValidationError
from ..numerics import logsumexp as _logsumexp, sigmoid as _sigmoid
from ..inference.exact import MAX_FREE_UNITS, all_states
from ..learning import get_rule
from ..network import Network, Unit
from .base import (NetworkMachine, Position, binary_rows, check_bool, check_number, check_random_state,
                   valid_random_state)

__all__ = ["BoltzmannMachine", "Update", "ParameterError", "PROCEDURES"]

PROCEDURES = ("boltzmann", "cd", "pcd", "exact")
_CHUNK = 1 << 11          # rows per block: enumerated states, or chains (see _blocks)


class Update(NamedTuple):
    """A change (or gradient) of a machine's parameters.

    ``weights[i, j]`` is the change of the symmetric weight between units i and j (equal
    to ``weights[j, i]``, zero where there is no edge); ``biases[i]`` that of unit i's bias.
    """

    weights: np.ndarray
    biases: np.ndarray

    def vector(self) -> np.ndarray:
        """Every parameter once: the upper triangle of ``weights``, then ``biases``."""
        n = len(self.biases)
        return np.concatenate([self.weights[np.triu_indices(n, 1)], self.biases])


class BoltzmannMachine(NetworkMachine):
    """A Boltzmann machine built on a Network of symmetric edges, scikit-learn style.

    Parameters
    ----------
    network : Network
        Symmetric edges only; units with role ``visible`` (or ``label``) are clamped to
        the data, in unit order; the others are hidden. Its weights and biases are the
        starting point; it is never modified (the trained net is ``network_``).
    procedure : {"boltzmann", "cd", "pcd", "exact"}
        How the weight change is estimated (see the module docstring).
    learning_rate : float
        ``lr`` of eq. 5 and 6 (> 0).
    n_iter : int
        Passes over the training data in :meth:`fit`.
    batch_size : int or None
        Cases per update; None: all of X (one update per pass).
    positive_sweeps, negative_sweeps : int
        Gibbs sweeps of the positive (hidden units, data clamped) and negative
        (free-running) phases of ``procedure="boltzmann"``.
    n_chains : int
        Parallel free-running chains of the negative phase (``"boltzmann"``, ``"pcd"``)
        and of :meth:`transform` when it samples.
    persistent : bool
        ``"boltzmann"``: keep the negative-phase chains from one update to the next
        (True) or restart them from random states at every update (False).
    anneal : sequence of float or None
        Temperatures, one sweep at each, run by chains that start from random states
        before their sweeps at temperature 1 (e.g. ``[20, 15, 12, 10, 8, 6, 4, 2]``).
    k : int
        Steps of alternating Gibbs sampling per update of ``"cd"`` (CD-k) and ``"pcd"``.
    weight_decay : float
        L2 penalty on the weights (not the biases): ``- lr * weight_decay * w`` per update.
    momentum : float in [0, 1)
        Fraction of the previous change added to each change.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Normalised once, at the first fit, to the Generator every draw goes through.
    verbose : bool
        Print progress (and the exact log-likelihood of small nets) during :meth:`fit`.
    n_restarts : int, default 1
        Restarts chosen on held-out likelihood: :meth:`fit` trains this many machines,
        each from the network's weights with a Generator of its own, for
        ``restart_epochs`` passes, and keeps the one whose exact log-likelihood of
        ``X_valid`` is highest (:meth:`Machine._fit_restarts
        <neurosim.machines.base.Machine._fit_restarts>`; small nets: enumeration).
    restart_epochs : int, default 1
        Passes each restart makes before the choice.

    Attributes
    ----------
    weights_ : ndarray (n_units, n_units)
        The one symmetric weight matrix (zero where there is no edge).
    biases_ : ndarray (n_units,)
    edge_mask_ : ndarray of bool (n_units, n_units)
    visible_, hidden_ : ndarray of int
        Indices of the visible and hidden units; ``visible_units_`` names the columns of X.
    colour_classes_ : list of ndarray
        Units updated together by the Gibbs sampler.
    chains_ : ndarray (n_chains, n_units)
        States of the persistent chains.
    network_ : Network
        The trained net (``network`` with the current weights and biases), built when read.
    n_iter_ : int
        Updates made since the last :meth:`fit` started.
    last_statistics_ : dict
        The states of the last update's phases: ``"positive"`` and ``"negative"``
        (cases by units, in unit order; for CD some columns are probabilities),
        ``"positive_prob"`` and ``"negative_prob"`` (each unit's probability of being on
        given the others, eq. 1), ``"rule"`` and ``"lr"``.
    random_state_ : numpy.random.Generator

    References
    ----------
    Ackley, Hinton and Sejnowski (1985), A learning algorithm for Boltzmann machines.
    Hinton (2002), Training products of experts by minimizing contrastive divergence.
    Hinton (2005), What kind of graphical model is the brain?, eq. 1-6.
    """

    def __init__(self, network: Network, *, procedure: str = "boltzmann", learning_rate: float = 0.1,
                 n_iter: int = 100, batch_size: int | None = None, positive_sweeps: int = 5,
                 negative_sweeps: int = 5, n_chains: int = 100, persistent: bool = True,
                 anneal: Sequence[float] | None = None, k: int = 1, weight_decay: float = 0.0,
                 momentum: float = 0.0, random_state=None, verbose: bool = False, n_restarts: int = 1,
                 restart_epochs: int = 1) -> None:
        self.network = network
        self.procedure = procedure
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.positive_sweeps = positive_sweeps
        self.negative_sweeps = negative_sweeps
        self.n_chains = n_chains
        self.persistent = persistent
        self.anneal = anneal
        self.k = k
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.random_state = random_state
        self.verbose = verbose
        self.n_restarts = n_restarts
        self.restart_epochs = restart_epochs

    _STATE = ("weights_", "biases_", "chains_")

    # -- validation and set-up -------------------------------------------------------
    def _validate_params(self) -> None:
        if not isinstance(self.network, Network):
            raise ParameterError(f"network must be a neurosim Network, got {self.network!r}")
        if self.procedure not in PROCEDURES:
            raise ParameterError(f"procedure must be one of {', '.join(PROCEDURES)}, got {self.procedure!r}")
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_number("n_iter", self.n_iter, 1, integer=True)
        if self.batch_size is not None:
            check_number("batch_size", self.batch_size, 1, integer=True)
        check_number("positive_sweeps", self.positive_sweeps, 1, integer=True)
        check_number("negative_sweeps", self.negative_sweeps, 1, integer=True)
        check_number("n_chains", self.n_chains, 1, integer=True)
        check_number("k", self.k, 1, integer=True)
        check_number("n_restarts", self.n_restarts, 1, integer=True)
        check_number("restart_epochs", self.restart_epochs, 1, integer=True)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_bool("persistent", self.persistent)
        if self.anneal is not None:
            if isinstance(self.anneal, (str, bytes)) or not hasattr(self.anneal, "__iter__"):
                raise ParameterError(f"anneal must be a sequence of temperatures, got {self.anneal!r}")
            for t in self.anneal:
                check_number(f"anneal temperature {t!r}", t, 0.0, low_open=True)
        if not valid_random_state(self.random_state):
            check_random_state(self.random_state)            # raises, naming the value

    def _setup(self) -> None:
        """Validate the parameters and the network; set the fitted attributes from it."""
        self._validate_params()
        net = self.network
        for e in net.edges:
            if e.kind != "symmetric":
                raise ValidationError(f"edge {e.source} -> {e.target} is {e.kind}: a Boltzmann machine "
                                      "has only symmetric edges")
            if e.weight_reverse is not None:
                raise ValidationError(f"symmetric edge {e.source} <-> {e.target} has unequal synapses "
                                      f"({e.weight!r} and {e.weight_reverse!r}); the machine keeps one "
                                      "weight per edge")
        roles = [u.role for u in net.unit_list()]
        visible = [i for i, r in enumerate(roles) if r in ("visible", "label")]
        hidden = [i for i, r in enumerate(roles) if r == "hidden"]
        if not visible:
            raise ValidationError(f"network {net.name!r} has no visible units to clamp data on")
        arr = net.to_arrays()
        mask = arr.symmetric.copy()
        if self.procedure in ("cd", "pcd"):
            if not hidden:
                raise ValidationError(f"procedure {self.procedure!r} needs hidden units; network "
                                      f"{net.name!r} has none")
            for group, what in ((visible, "visible"), (hidden, "hidden")):
                sub = np.argwhere(np.triu(mask[np.ix_(group, group)], 1))
                if len(sub):
                    a, b = net.units[group[sub[0][0]]], net.units[group[sub[0][1]]]
                    raise ValidationError(
                        f"edge {a} <-> {b} joins two {what} units: procedure {self.procedure!r} needs "
                        "an RBM-shaped (bipartite visible-hidden) network; use procedure='boltzmann'")
        self.edge_mask_ = mask
        self.weights_ = np.where(mask, arr.weights, 0.0)
        self.biases_ = arr.bias.astype(np.float64).copy()
        self.visible_ = np.array(visible, dtype=np.intp)
        self.hidden_ = np.array(hidden, dtype=np.intp)
        self.visible_units_ = [net.units[i] for i in visible]
        self.hidden_units_ = [net.units[i] for i in hidden]
        plain = Network([Unit(u.name, u.bias, u.role) for u in net.unit_list()], net.edges, net.name)
        self.colour_classes_ = [np.array([net.index(u) for u in group], dtype=np.intp)
                                for group in plain.layers()]
        hid = set(hidden)
        self._hidden_classes = [c[np.isin(c, hidden)] for c in self.colour_classes_
                                if any(int(i) in hid for i in c)]
        self.random_state_ = check_random_state(self.random_state)
        n = net.n_units
        self.chains_ = self.random_state_.integers(0, 2, (self.n_chains, n)).astype(np.float64)
        self.velocity_ = Update(np.zeros((n, n)), np.zeros(n))
        self._all_states = None
        self.n_iter_ = 0
        self.last_statistics_ = {}

    def _ensure_initialized(self) -> None:
        if not hasattr(self, "weights_"):
            self._setup()

    @property
    def n_units(self) -> int:
        return self.network.n_units

    def _check_X(self, X, what: str = "X") -> np.ndarray:
        self._ensure_initialized()
        return binary_rows(X, len(self.visible_), what, self.visible_units_)

    # -- Gibbs sampling -----------------------------------------------------------------
    def _settle(self, S: np.ndarray, classes: list[np.ndarray], sweeps: int,
                rng: np.random.Generator, temperatures: Sequence[float] = ()) -> np.ndarray:
        """Gibbs sweeps in place: one sweep at each of ``temperatures``, then ``sweeps`` at
        temperature 1. Each sweep updates the colour classes in order, all chains at once
        (in blocks of at most 2048 chains, see :meth:`_blocks`)."""
        for start in range(0, len(S), _CHUNK):
            self._settle_block(S[start:start + _CHUNK], classes, sweeps, rng, temperatures)
        return S

    def _settle_block(self, S: np.ndarray, classes: list[np.ndarray], sweeps: int,
                      rng: np.random.Generator, temperatures: Sequence[float]) -> None:
        # hot loop: the weights of each class are sliced once per call, and the noise of
        # every update is drawn at once as standard logistic variates L: a unit turns on
        # with probability sigmoid(x / T) (eq. 1 at temperature T) exactly when x > T * L
        blocks = [(c, self.weights_[:, c], self.biases_[c]) for c in classes]
        temps = [*temperatures, *([1.0] * sweeps)]
        noise = rng.logistic(size=(len(temps), *S.shape))
        for t, T in enumerate(temps):
            if T != 1.0:
                noise[t] *= T
            for c, Wc, bc in blocks:
                S[:, c] = S @ Wc + bc > noise[t][:, c]

    def _random_states(self, m: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, 2, (m, self.n_units)).astype(np.float64)

    def _conditional(self, S: np.ndarray) -> np.ndarray:
        """Each unit's probability of being on given the states of all the others (eq. 1)."""
        return _sigmoid(S @ self.weights_ + self.biases_)

    # -- one update ---------------------------------------------------------------------
    def _hebbian(self, rule_name: str, pos: np.ndarray, neg: np.ndarray) -> Update:
        """Eq. 5/6 through the rule's batched form: positive minus negative phase, each
        summed over its cases and divided by their number. A bias is a synapse from an
        always-on unit (a column of ones)."""
        rule, lr = get_rule(rule_name), self.learning_rate
        dW = (rule.batched(pos, pos, "positive", lr) / len(pos)
              + rule.batched(neg, neg, "negative", lr) / len(neg))
        db = (rule.batched(np.ones((len(pos), 1)), pos, "positive", lr)[0] / len(pos)
              + rule.batched(np.ones((len(neg), 1)), neg, "negative", lr)[0] / len(neg))
        upper = np.triu(np.where(self.edge_mask_, dW, 0.0), 1)
        return Update(upper + upper.T, db)

    def _record(self, rule_name: str, pos: np.ndarray, neg: np.ndarray) -> None:
        self.last_statistics_ = {"positive": pos, "negative": neg,
                                 "positive_prob": self._conditional(pos),
                                 "negative_prob": self._conditional(neg),
                                 "rule": rule_name, "lr": self.learning_rate}

    def _boltzmann_update(self, X: np.ndarray) -> Update:
        rng, anneal = self.random_state_, tuple(self.anneal or ())
        pos = self._random_states(len(X), rng)
        pos[:, self.visible_] = X
        self._settle(pos, self._hidden_classes, self.positive_sweeps, rng, anneal)
        if self.persistent:
            neg = self._settle(self.chains_, self.colour_classes_, self.negative_sweeps, rng)
        else:
            neg = self._settle(self._random_states(self.n_chains, rng), self.colour_classes_,
                               self.negative_sweeps, rng, anneal)
        pos, neg = pos.copy(), neg.copy()
        self._record("boltzmann", pos, neg)
        return self._hebbian("boltzmann", pos, neg)

    def _cd_update(self, X: np.ndarray, k: int, persistent: bool) -> Update:
        """CD-k or PCD-k (eq. 6) of the visible-hidden block by the compiled backend's
        bipartite kernel (:mod:`neurosim.compiled.bipartite`): ``rbm.m``'s statistics, or
        the hidden states of ``chains_`` as persistent chains (their visible states are
        the last sampled ones). Edges the net does not have get no change."""
        vis, hid, n = self.visible_, self.hidden_, self.n_units
        block, cd = Block(self.weights_[np.ix_(vis, hid)], self.biases_[vis], self.biases_[hid]), CD(k)
        chain = self.chains_[:, hid] if persistent else None
        buf = bipartite.buffers(None, block, len(X), len(X) if chain is None else len(chain))
        stats = bipartite.statistics(block, X, cd, self.random_state_, buf, chain=chain)
        b = len(X)
        if persistent:
            self.chains_[:, vis], self.chains_[:, hid] = stats.V[b:], chain
        pos, neg = np.zeros((b, n)), np.zeros((len(stats.V) - b, n))
        pos[:, vis], pos[:, hid], neg[:, vis], neg[:, hid] = stats.V[:b], stats.H[:b], stats.V[b:], stats.H[b:]
        self._record("pcd" if persistent else "cd", pos, neg)
        d, _ = bipartite.change(block, stats, cd, self.learning_rate, buf)
        dW = np.zeros((n, n))
        dW[np.ix_(vis, hid)] = np.where(self.edge_mask_[np.ix_(vis, hid)], d["W"], 0.0)
        db = np.zeros(n)
        db[vis], db[hid] = d["b"], d["c"]
        return Update(dW + dW.T, db)

    def _update(self, X: np.ndarray) -> Update:
        if self.procedure == "boltzmann":
            return self._boltzmann_update(X)
        if self.procedure == "cd":
            return self._cd_update(X, self.k, persistent=False)
        if self.procedure == "pcd":
            return self._cd_update(X, self.k, persistent=True)
        g = self.exact_gradient(X)
        return Update(self.learning_rate * g.weights, self.learning_rate * g.biases)

    def compute_update(self, X) -> Update:
        """The weight change this machine's procedure asks for on the batch ``X``
        (learning rate included; before momentum and weight decay), without applying it.
        Advances the random generator and any persistent chains; sets ``last_statistics_``."""
        return self._update(self._check_X(X))

    def _check_rbm(self, what: str) -> None:
        for group, kind in ((self.visible_, "visible"), (self.hidden_, "hidden")):
            if len(group) and self.edge_mask_[np.ix_(group, group)].any():
                raise ValidationError(f"{what} needs an RBM-shaped network; {self.network.name!r} "
                                      f"has edges between {kind} units")
        if not len(self.hidden_):
            raise ValidationError(f"{what} needs hidden units; {self.network.name!r} has none")

    def cd_update(self, X, k: int = 1) -> Update:
        """The CD-k weight change (eq. 6, Hinton's rbm.m) on the batch ``X``, whatever the
        machine's procedure, without applying it. Needs an RBM-shaped network."""
        X = self._check_X(X)
        check_number("k", k, 1, integer=True)
        self._check_rbm("cd_update")
        return self._cd_update(X, k, persistent=False)

    def expected_cd_update(self, X, k: int = 1) -> Update:
        """The expectation of :meth:`cd_update` over its sampling, by enumeration.

        The negative statistics of CD-k depend only on the last sampled hidden state
        ``h_{k-1}``, whose distribution given a data row is ``P(h_0 | x) (T_hv T_vh)^(k-1)``
        with the Gibbs transition matrices ``T_hv = P(v | h)`` and ``T_vh = P(h | v)``,
        enumerated over every visible and hidden state (small RBMs). The positive phase
        has no sampling. The result goes through the rule's batched form, with each
        hidden state's row weighted by its probability."""
        X = self._check_X(X)
        check_number("k", k, 1, integer=True)
        self._check_rbm("expected_cd_update")
        vis, hid = self.visible_, self.hidden_
        self._enumerable(len(vis) + len(hid), "the CD chain over")
        W = self.weights_[np.ix_(vis, hid)]
        bv, bh = self.biases_[vis], self.biases_[hid]
        H = all_states(len(hid)).astype(np.float64)

        def log_bernoulli(states, logits):          # log P(states | logits), every pair
            return states @ -np.logaddexp(0.0, -logits).T + (1 - states) @ -np.logaddexp(0.0, logits).T

        ph0 = _sigmoid(X @ W + bh)
        Q = np.exp(log_bernoulli(H, X @ W + bh).T)  # (rows, 2^nh): P(h_0 | x)
        if k > 1:
            V = all_states(len(vis)).astype(np.float64)
            T_hv = np.exp(log_bernoulli(V, H @ W.T + bv).T)      # (2^nh, 2^nv)
            T_vh = np.exp(log_bernoulli(H, V @ W + bh).T)        # (2^nv, 2^nh)
            M = T_hv @ T_vh
            for _ in range(k - 1):
                Q = Q @ M
        n = self.n_units
        pos = np.zeros((len(X), n))
        pos[:, vis], pos[:, hid] = X, ph0
        v_prob = _sigmoid(H @ W.T + bv)
        F = np.zeros((len(H), n))
        F[:, vis], F[:, hid] = v_prob, _sigmoid(v_prob @ W + bh)
        q = Q.mean(axis=0)
        rule, lr = get_rule("cd"), self.learning_rate
        root = np.sqrt(q)[:, None]
        dW = (rule.batched(pos, pos, "positive", lr) / len(pos)
              + rule.batched(root * F, root * F, "negative", lr))
        db = (rule.batched(np.ones((len(pos), 1)), pos, "positive", lr)[0] / len(pos)
              + rule.batched(root, root * F, "negative", lr)[0])
        upper = np.triu(np.where(self.edge_mask_, dW, 0.0), 1)
        return Update(upper + upper.T, db)

    def _apply(self, upd: Update) -> None:
        """The change with momentum and weight decay (weights only), in place (overwrites ``upd``)."""
        apply_change(self.weights_, upd.weights, self.velocity_.weights, self.momentum,
                     self.learning_rate * self.weight_decay)
        apply_change(self.biases_, upd.biases, self.velocity_.biases, self.momentum)
        self.n_iter_ += 1

    @property
    def network_(self) -> Network:
        """The trained net: the network's units and edges with the current weights and biases."""
        if not hasattr(self, "weights_"):
            raise AttributeError("network_: the machine has not been fitted yet")
        return self.network.with_arrays(self.weights_, self.biases_)

    # -- estimator API -----------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, X_valid: Any = None) -> "BoltzmannMachine":
        """Train from the network's weights for ``n_iter`` passes over ``X`` (rows: cases;
        columns: the visible units in unit order), in shuffled minibatches; with
        ``n_restarts``, the restart that scores best on ``X_valid`` (default ``X``)."""
        return super().fit(X, X_valid=X_valid)

    def _held_out_score(self, X: Any) -> float:
        """The exact mean log-likelihood of ``X`` (nats): the restarts' criterion."""
        return self.exact_log_likelihood(X)

    def _begin_fit(self, X: Any) -> np.ndarray:
        self._setup()
        X = self._check_X(X)
        self._n_epochs, self._batch_rows = int(self.n_iter), int(self.batch_size or len(X))
        self._clock = time.perf_counter()
        return X

    def _epoch_order(self, X: np.ndarray, epoch: int) -> np.ndarray | None:
        return self.random_state_.permutation(len(X)) if self._batch_rows < len(X) else None

    def _fit_batch(self, X: np.ndarray, rows: Any, at: Position) -> None:
        self._apply(self._update(X[rows]))

    def _end_epoch(self, X: np.ndarray, epoch: int) -> None:
        epoch += 1
        if self.verbose and (epoch == self.n_iter or epoch % max(1, self.n_iter // 10) == 0):
            extra = ""
            if self.n_units <= 16:
                extra = f", exact mean log-likelihood {self.exact_log_likelihood(X):.4f} nats"
            self._say(f"[{type(self).__name__}] pass {epoch}/{self.n_iter}, {self.n_iter_} updates, "
                      f"{time.perf_counter() - self._clock:.1f} s{extra}")

    def _training_state(self) -> dict[str, np.ndarray]:
        return {"velocity_weights": self.velocity_.weights, "velocity_biases": self.velocity_.biases}

    def _set_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.velocity_ = Update(arrays["velocity_weights"], arrays["velocity_biases"])

    def partial_fit(self, X) -> "BoltzmannMachine":
        """One update on the batch ``X``, continuing from the current state (the first call
        initialises from the network)."""
        X = self._check_X(X)
        self._apply(self._update(X))
        return self

    def sample(self, n_samples: int, n_sweeps: int | None = None, visible_only: bool = True) -> np.ndarray:
        """``n_samples`` free-running samples, one per independent chain started from a
        random state: the ``anneal`` sweeps, then ``n_sweeps`` sweeps at temperature 1
        (default ``max(100, negative_sweeps)``). Returns int8 states of the visible units
        (all units if ``visible_only`` is False)."""
        self._ensure_initialized()
        check_number("n_samples", n_samples, 1, integer=True)
        sweeps = max(100, self.negative_sweeps) if n_sweeps is None else n_sweeps
        check_number("n_sweeps", sweeps, 1, integer=True)
        rng = self.random_state_
        S = self._settle(self._random_states(n_samples, rng), self.colour_classes_, sweeps, rng,
                         tuple(self.anneal or ()))
        S = S[:, self.visible_] if visible_only else S
        return S.astype(np.int8)

    def transform(self, X, method: str = "auto", n_sweeps: int = 100) -> np.ndarray:
        """Marginal probabilities of the hidden units given each row of ``X`` on the visible units.

        ``method="exact"``: closed form when no edge joins two hidden units, else enumeration
        of the hidden states (up to 22 hidden units). ``"gibbs"``: average over ``n_chains``
        chains per row, of each unit's conditional probability after ``n_sweeps`` sweeps.
        ``"auto"``: exact up to 16 hidden units, else Gibbs.
        """
        X = self._check_X(X)
        if method not in ("auto", "exact", "gibbs"):
            raise ParameterError(f"method must be 'auto', 'exact' or 'gibbs', got {method!r}")
        hid, vis = self.hidden_, self.visible_
        if not len(hid):
            return np.zeros((len(X), 0))
        if method == "exact" or (method == "auto" and len(hid) <= 16):
            if not self.edge_mask_[np.ix_(hid, hid)].any():
                return _sigmoid(X @ self.weights_[np.ix_(vis, hid)] + self.biases_[hid])
            self._enumerable(len(hid), "the hidden states of")
            H = all_states(len(hid)).astype(np.float64)
            out = np.empty((len(X), len(hid)))
            for r, x in enumerate(X):
                S = np.zeros((len(H), self.n_units))
                S[:, vis], S[:, hid] = x, H
                lj = self._log_joint(S)
                p = np.exp(lj - _logsumexp(lj))
                out[r] = p @ H
            return out
        check_number("n_sweeps", n_sweeps, 1, integer=True)
        rng, m = self.random_state_, self.n_chains
        S = self._random_states(len(X) * m, rng)
        S[:, vis] = np.repeat(X, m, axis=0)
        self._settle(S, self._hidden_classes, n_sweeps, rng, tuple(self.anneal or ()))
        return self._conditional(S)[:, hid].reshape(len(X), m, len(hid)).mean(axis=1)

    # -- exact quantities (small nets) -------------------------------------------------
    def _enumerable(self, n: int, what: str) -> None:
        if n > MAX_FREE_UNITS:
            raise InferenceError(f"exact computation enumerates 2^n states: {what} {n} units of "
                                 f"{self.network.name!r} is over the limit of {MAX_FREE_UNITS}")

    def _log_joint(self, S: np.ndarray) -> np.ndarray:
        """Minus the energy of eq. 2 of each row of ``S``, ``sum_i b_i s_i + sum_{i<j} s_i s_j w_ij``:
        the unnormalised log probability, equal to ``neurosim.inference.exact.log_joint`` of
        ``network_`` (tested), computed here from the weight matrix because it is the hot
        path of exact training."""
        return S @ self.biases_ + 0.5 * np.einsum("mi,mi->m", S @ self.weights_, S)

    def _states(self, vcodes: np.ndarray) -> np.ndarray:
        """Full states for visible configurations ``vcodes`` (integers, first visible unit
        the high bit) times every hidden configuration, hidden-fastest."""
        nv, nh = len(self.visible_), len(self.hidden_)
        V = ((vcodes[:, None] >> np.arange(nv - 1, -1, -1)) & 1).astype(np.float64)
        H = all_states(nh).astype(np.float64)
        S = np.empty((len(vcodes) * len(H), self.n_units))
        S[:, self.visible_] = np.repeat(V, len(H), axis=0)
        S[:, self.hidden_] = np.tile(H, (len(vcodes), 1))
        return S

    def _blocks(self):
        """Every state of the net, in blocks of whole visible configurations: yields
        ``(first visible code, states)``, states visible-major and hidden-fastest. Nets of
        up to 16 units keep their blocks (cached: the states never change).

        Hot path: blocks of about 2048 rows keep BLAS single-threaded; threaded GEMM on
        such tall, thin matrices ran 30 times slower on a 2-core machine."""
        self._enumerable(self.n_units, "the joint distribution over")
        nv, nh = len(self.visible_), len(self.hidden_)
        per = max(1, _CHUNK >> nh)                   # visible configurations per block
        starts = range(0, 2 ** nv, per)
        if self.n_units > 16:
            for start in starts:
                yield start, self._states(np.arange(start, min(start + per, 2 ** nv)))
            return
        if getattr(self, "_all_states", None) is None:
            self._all_states = [(start, self._states(np.arange(start, min(start + per, 2 ** nv))))
                                for start in starts]
        yield from self._all_states

    def _log_joint_table(self) -> np.ndarray:
        """The log joint (minus the energy) of every state, as a (2^n_visible, 2^n_hidden) table."""
        rows = [self._log_joint(S) for _, S in self._blocks()]
        return np.concatenate(rows).reshape(2 ** len(self.visible_), 2 ** len(self.hidden_))

    def _codes(self, X: np.ndarray) -> np.ndarray:
        nv = len(self.visible_)
        return (X.astype(np.int64) << np.arange(nv - 1, -1, -1)).sum(axis=1)

    def visible_log_probs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every visible configuration (int8 rows, in the order of ``all_states``) and its
        exact log probability under the model, ``log sum_h exp(-E(v, h)) - log Z`` (eq. 4)."""
        self._ensure_initialized()
        table = self._log_joint_table()
        log_pv = _logsumexp(table, axis=1)
        return all_states(len(self.visible_)), log_pv - _logsumexp(log_pv)

    def score_samples(self, X) -> np.ndarray:
        """Exact log P(v) of each row of ``X`` (nats), by enumeration."""
        X = self._check_X(X)
        _, log_pv = self.visible_log_probs()
        return log_pv[self._codes(X)]

    def exact_log_likelihood(self, X) -> float:
        """Exact mean log-likelihood of the rows of ``X`` (nats per case), by enumeration."""
        return float(self.score_samples(X).mean())

    score = exact_log_likelihood

    def exact_kl(self, data_rows, data_probs) -> float:
        """KL(data || model) in nats over the visible units, by enumeration (at most 22 units).

        ``data_rows`` are visible configurations, ``data_probs`` their probabilities (summing
        to 1; repeated rows add up)."""
        rows = self._check_X(data_rows, "data_rows")
        p = np.asarray(data_probs, dtype=np.float64)
        if p.shape != (len(rows),):
            raise ParameterError(f"data_probs must have one probability per row ({len(rows)}), "
                                 f"got shape {p.shape}")
        if not np.all(np.isfinite(p)) or (p < 0).any():
            raise ParameterError(f"data_probs must be finite and non-negative, got {p.tolist()}")
        if abs(p.sum() - 1.0) > 1e-9:
            raise ParameterError(f"data_probs must sum to 1, got {float(p.sum())!r}")
        codes, inverse = np.unique(self._codes(rows), return_inverse=True)
        q = np.bincount(inverse.ravel(), weights=p, minlength=len(codes))
        _, log_pv = self.visible_log_probs()
        keep = q > 0
        return float(np.sum(q[keep] * (np.log(q[keep]) - log_pv[codes[keep]])))

    def exact_gradient(self, X) -> Update:
        """The exact gradient of the mean log-likelihood of the rows of ``X``:
        ``<s_i s_j>_data - <s_i s_j>_model`` for each weight and ``<s_i>_data - <s_i>_model``
        for each bias, where the data average uses the exact posterior over the hidden
        units given each row, by enumeration (at most 22 units)."""
        X = self._check_X(X)
        table = self._log_joint_table()
        n, nh = self.n_units, len(self.hidden_)
        log_z = _logsumexp(table)
        neg2, neg1 = np.zeros((n, n)), np.zeros(n)
        for start, S in self._blocks():
            p = np.exp(table[start:start + (len(S) >> nh)].ravel() - log_z)
            neg2 += S.T @ (p[:, None] * S)
            neg1 += p @ S
        codes, counts = np.unique(self._codes(X), return_counts=True)
        post = table[codes] - _logsumexp(table[codes], axis=1)[:, None]
        q = (np.exp(post) * (counts / len(X))[:, None]).ravel()
        S = self._states(codes)                      # the states of the data's rows
        pos2, pos1 = S.T @ (q[:, None] * S), q @ S
        dW = np.triu(np.where(self.edge_mask_, pos2 - neg2, 0.0), 1)
        return Update(dW + dW.T, pos1 - neg1)

    # -- networks and files ------------------------------------------------------------
    def to_network(self) -> Network:
        """The trained net: the same units and edges, with the learned weights and biases."""
        self._ensure_initialized()
        return self.network_
