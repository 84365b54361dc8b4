"""Boltzmann machines (Hinton 2005, section 2) and RBMs trained by contrastive divergence (section 3).

A :class:`BoltzmannMachine` trains a Network of symmetric edges, any connectivity, its
visible units clamped to the data. Energy, eq. 2: ``E(s) = -sum_i b_i s_i - sum_{i<j} s_i
s_j w_ij``; equilibrium, eq. 3: ``P(s) = exp(-E(s)) / Z``. Learning, eq. 5: ``dw_ij = lr
(<s_i s_j>+ - <s_i s_j>-)`` (data clamped, then running freely); for an RBM-shaped net,
CD-k or PCD-k (eq. 6); or ascent of the exact gradient. A bias is a synapse from a unit
that is always on. The procedures step by step: ``docs/machines/boltzmann.md``.

Shared code does the work: Gibbs sweeps of the compiled plan's colour classes on
:class:`neurosim.compiled.Chains` (clamping, annealing through ``beta``); eq. 5's change
by the rule's batched form (``CompiledLearner.change``); CD/PCD by the kernel of
:mod:`neurosim.compiled.bipartite`; exact quantities of nets of up to 22 units from
``inference.exact.log_joint`` of every state (eq. 3-4).

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

from ..compiled import Chains, bipartite, compile
from ..compiled.bipartite import CD, Block, apply_change
from ..errors import InferenceError, ParameterError, ValidationError
from ..inference.exact import MAX_FREE_UNITS, all_states, log_joint
from ..learning import get_rule
from ..learning.learners import CompiledLearner
from ..learning.procedures import Settings
from ..network import NetArrays, Network
from ..numerics import logsumexp as _logsumexp, sigmoid as _sigmoid
from .base import (NetworkMachine, Position, binary_rows, check_bool, check_number, check_random_state,
                   valid_random_state)

__all__ = ["BoltzmannMachine", "Update", "ParameterError", "PROCEDURES"]

PROCEDURES = ("boltzmann", "cd", "pcd", "exact")
_CHUNK = 1 << 11          # rows per block (see _blocks)


class Update(NamedTuple):
    """A change (or gradient) of a machine's parameters: ``weights[i, j]`` that of the
    symmetric weight between units i and j (zero where there is no edge), ``biases[i]``
    that of unit i's bias."""

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
        Symmetric edges only. Units with role ``visible`` (or ``label``), in unit order,
        are the columns of X; the others are hidden. Its weights are the starting point;
        it is never modified.
    procedure : {"boltzmann", "cd", "pcd", "exact"}
        Eq. 5 by sampling, CD-k or PCD-k (eq. 6), or ascent of the exact gradient.
    learning_rate : float
        ``lr`` of eq. 5 and 6.
    n_iter, batch_size : int, int or None
        Passes over X in :meth:`fit`; cases per update (None: all of X).
    positive_sweeps, negative_sweeps : int
        Gibbs sweeps of eq. 5's positive (data clamped) and negative (free) phases.
    n_chains : int
        Free chains of the negative phase; chains per row of :meth:`transform`.
    persistent : bool
        ``"boltzmann"``: keep the negative chains across updates, or restart them.
    anneal : sequence of float or None
        Temperatures, one sweep each, run by chains that start from random states.
    k : int
        Gibbs steps of CD-k and PCD-k.
    weight_decay, momentum : float
        L2 penalty ``lr * weight_decay * w`` on the weights; momentum in [0, 1).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
    verbose : bool
    n_restarts, restart_epochs : int
        Restarts chosen on held-out exact likelihood (``Machine._fit_restarts``).

    Attributes
    ----------
    weights_, biases_ : ndarray (n_units, n_units), (n_units,)
        The symmetric weight matrix (zero where there is no edge) and the biases.
    edge_mask_ : ndarray of bool (n_units, n_units)
    visible_, hidden_ : ndarray of int
        Unit indices; ``visible_units_`` names the columns of X.
    colour_classes_ : list of ndarray
        The compiled plan's Gibbs steps: units updated together.
    chains_ : ndarray (n_chains, n_units)
        The persistent chains.
    network_ : Network
        The network with the current weights and biases.
    n_iter_ : int
        Updates since the last :meth:`fit` started.
    last_statistics_ : dict
        The last update's ``"positive"`` and ``"negative"`` states, each unit's eq. 1
        given the others (``"positive_prob"``, ``"negative_prob"``), ``"rule"``, ``"lr"``.
    random_state_ : numpy.random.Generator

    References
    ----------
    Ackley, Hinton and Sejnowski (1985); Hinton (2002); Hinton (2005), eq. 1-6.
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
        for name in ("positive_sweeps", "negative_sweeps", "n_chains", "k", "n_restarts", "restart_epochs"):
            check_number(name, getattr(self, name), 1, integer=True)
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

    def _check_network(self, net: Network) -> None:
        """ValidationError for an edge that is not one symmetric weight, a softmax
        population, or a net with no visible units."""
        for e in net.edges:
            if e.kind != "symmetric":
                raise ValidationError(f"edge {e.source} -> {e.target} is {e.kind}: a Boltzmann machine "
                                      "has only symmetric edges")
            if e.weight_reverse is not None:
                raise ValidationError(f"symmetric edge {e.source} <-> {e.target} has unequal synapses "
                                      f"({e.weight!r} and {e.weight_reverse!r}); the machine keeps one "
                                      "weight per edge")
        for p in net.populations:
            if p.activation == "softmax":
                raise ValidationError(f"population {p.name!r} of {net.name!r} is softmax: a Boltzmann "
                                      "machine's units are logistic (eq. 1)")
        net.refuse_linear("a Boltzmann machine (logistic units, eq. 1)")
        if not any(u.role in ("visible", "label") for u in net.unit_list()):
            raise ValidationError(f"network {net.name!r} has no visible units to clamp data on")

    def _setup(self) -> None:
        """Validate the parameters and the network; set the fitted attributes from it."""
        self._validate_params()
        net = self.network
        self._check_network(net)
        roles = [u.role for u in net.unit_list()]
        self.visible_ = np.array([i for i, r in enumerate(roles) if r in ("visible", "label")], dtype=np.intp)
        self.hidden_ = np.array([i for i, r in enumerate(roles) if r == "hidden"], dtype=np.intp)
        self.visible_units_ = [net.units[i] for i in self.visible_]
        self.hidden_units_ = [net.units[i] for i in self.hidden_]
        self._compiled = compile(net, np.float64)
        self.edge_mask_ = self._compiled.symmetric.copy()
        if self.procedure in ("cd", "pcd"):
            self._check_rbm(f"procedure {self.procedure!r}")
        self.weights_, self.biases_ = self._compiled.W.copy(), self._compiled.b.copy()
        self.colour_classes_ = [step.index for step in self._compiled.plan().steps]
        self.random_state_ = check_random_state(self.random_state)
        self._learner = CompiledLearner(net, get_rule("boltzmann"), Settings(lr=self.learning_rate),
                                        self.random_state_, ("generative",))
        self.chains_ = Chains(self._compiled, self.random_state_, self.n_chains).rows
        n = net.n_units
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

    def _check_rbm(self, what: str) -> None:
        """ValidationError unless the net is RBM-shaped: hidden units, no edge within a side."""
        if not len(self.hidden_):
            raise ValidationError(f"{what} needs hidden units; {self.network.name!r} has none")
        for group, kind in ((self.visible_, "visible"), (self.hidden_, "hidden")):
            inside = np.argwhere(np.triu(self.edge_mask_[np.ix_(group, group)], 1))
            if len(inside):
                a, b = (self.network.units[group[i]] for i in inside[0])
                raise ValidationError(f"edge {a} <-> {b} joins two {kind} units: {what} needs an RBM-shaped "
                                      "network (bipartite visible-hidden); use procedure='boltzmann'")

    # -- Gibbs sampling: compiled chains -------------------------------------------------
    def _settle(self, m: int, sweeps: int, clamp: np.ndarray | None = None, init: np.ndarray | None = None,
                anneal: bool = True) -> np.ndarray:
        """The states of ``m`` chains of the compiled net, from ``init`` (default random
        states), the visible units clamped to the rows of ``clamp`` if given, after Gibbs
        sweeps of its plan: one at each ``anneal`` temperature (if ``anneal``), then
        ``sweeps`` at temperature 1.

        A unit turns on where its field, eq. 1's input times ``beta = 1/T``, exceeds a
        standard logistic variate (probability ``sigmoid(x / T)``), a sweep's noise drawn
        at once: the published draws, which ``Chains.sweep`` (a uniform per step) would
        change. Chains run in blocks of ``_CHUNK`` (see :meth:`_blocks`)."""
        cn, rng = self._compiled, self.random_state_
        cn.set_weights(self.weights_, self.biases_)
        temperatures = [*((self.anneal or ()) if anneal else ()), *[1.0] * sweeps]
        out = []
        for rows in (slice(start, start + _CHUNK) for start in range(0, m, _CHUNK)):
            x = Chains(cn, rng, len(range(m)[rows]), init=None if init is None else init[rows])
            if clamp is not None:
                x.clamp(units=self.visible_units_, values=clamp[rows])
            steps = x.plan.steps
            for T in temperatures:
                x.beta = 1.0 / T
                noise = rng.logistic(size=x.state.shape)
                for step in steps:
                    x.state[:, step.units] = x.field(step) > noise[:, step.units]
            out.append(x.rows)
        return np.concatenate(out)

    def _conditional(self, S: np.ndarray) -> np.ndarray:
        """Each unit's probability of being on given the states of all the others (eq. 1)."""
        return _sigmoid(S @ self.weights_ + self.biases_)

    # -- one update ---------------------------------------------------------------------
    def _record(self, rule_name: str, pos: np.ndarray, neg: np.ndarray) -> None:
        self.last_statistics_ = {"positive": pos, "negative": neg,
                                 "positive_prob": self._conditional(pos),
                                 "negative_prob": self._conditional(neg),
                                 "rule": rule_name, "lr": self.learning_rate}

    def _boltzmann_update(self, X: np.ndarray) -> Update:
        """Eq. 5: hidden units settled with ``X`` clamped; ``n_chains`` free chains,
        persistent or annealed from random states; the rule's batched form of each phase,
        divided by its number of cases."""
        pos = self._settle(len(X), self.positive_sweeps, clamp=X)
        if self.persistent:
            neg = self._settle(self.n_chains, self.negative_sweeps, init=self.chains_, anneal=False)
            self.chains_ = neg
        else:
            neg = self._settle(self.n_chains, self.negative_sweeps)
        self._record("boltzmann", pos, neg)
        self._learner.lr = self.learning_rate
        dw_pos, db_pos = self._learner.change(self._compiled, pos, "positive")
        dw_neg, db_neg = self._learner.change(self._compiled, neg, "negative")
        return Update(dw_pos + dw_neg, db_pos + db_neg)

    def _cd_update(self, X: np.ndarray, k: int, persistent: bool) -> Update:
        """CD-k or PCD-k (eq. 6) of the visible-hidden block by the compiled backend's
        bipartite kernel: ``rbm.m``'s statistics, or the hidden states of ``chains_`` as
        persistent chains (their visible states the last sampled ones)."""
        vis, hid, n = self.visible_, self.hidden_, self.n_units
        block, cd = Block(self.weights_[np.ix_(vis, hid)], self.biases_[vis], self.biases_[hid]), CD(k)
        chain = self.chains_[:, hid] if persistent else None
        buf = bipartite.buffers(None, block, len(X), len(X) if chain is None else len(chain))
        stats = bipartite.statistics(block, X, cd, self.random_state_, buf, chain=chain)
        b = len(X)
        if persistent:
            self.chains_[:, vis], self.chains_[:, hid] = stats.V[b:], chain
        pos, neg = np.zeros((b, n)), np.zeros((len(stats.V) - b, n))
        pos[:, vis], pos[:, hid] = stats.V[:b], stats.H[:b]
        neg[:, vis], neg[:, hid] = stats.V[b:], stats.H[b:]
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
        if self.procedure in ("cd", "pcd"):
            return self._cd_update(X, self.k, persistent=self.procedure == "pcd")
        g = self.exact_gradient(X)
        return Update(self.learning_rate * g.weights, self.learning_rate * g.biases)

    def compute_update(self, X) -> Update:
        """The weight change this machine's procedure asks for on the batch ``X``
        (learning rate included; before momentum and weight decay), without applying it.
        Advances the random generator and any persistent chains; sets ``last_statistics_``."""
        return self._update(self._check_X(X))

    def cd_update(self, X, k: int = 1) -> Update:
        """The CD-k weight change (eq. 6, Hinton's rbm.m) on the batch ``X``, whatever the
        machine's procedure, without applying it. Needs an RBM-shaped network."""
        X = self._check_X(X)
        check_number("k", k, 1, integer=True)
        self._check_rbm("cd_update")
        return self._cd_update(X, k, persistent=False)

    def expected_cd_update(self, X, k: int = 1) -> Update:
        """The expectation of :meth:`cd_update` over its sampling, by enumeration.

        CD-k's negative statistics depend only on the last sampled hidden state
        ``h_{k-1}``, distributed given a data row as ``P(h_0 | x) (T_hv T_vh)^(k-1)``
        with the Gibbs transitions ``T_hv = P(v | h)`` and ``T_vh = P(h | v)`` over every
        visible and hidden state (small RBMs). The result goes through the rule's batched
        form, each hidden state's row weighted by its probability (a bias: a column of ones)."""
        X = self._check_X(X)
        check_number("k", k, 1, integer=True)
        self._check_rbm("expected_cd_update")
        vis, hid = self.visible_, self.hidden_
        self._enumerable(len(vis) + len(hid), "the CD chain over")
        W = self.weights_[np.ix_(vis, hid)]
        bv, bh = self.biases_[vis], self.biases_[hid]
        H = all_states(len(hid)).astype(np.float64)

        def bernoulli(states, logits):              # P(states | logits), every pair
            log_on, log_off = -np.logaddexp(0.0, -logits), -np.logaddexp(0.0, logits)
            return np.exp(states @ log_on.T + (1 - states) @ log_off.T)

        Q = bernoulli(H, X @ W + bh).T              # (rows, 2^nh): P(h_0 | x)
        if k > 1:
            V = all_states(len(vis)).astype(np.float64)
            M = bernoulli(V, H @ W.T + bv).T @ bernoulli(H, V @ W + bh).T
            for _ in range(k - 1):
                Q = Q @ M
        n = self.n_units
        pos = np.zeros((len(X), n))
        pos[:, vis], pos[:, hid] = X, _sigmoid(X @ W + bh)
        F = np.zeros((len(H), n))
        F[:, vis] = _sigmoid(H @ W.T + bv)
        F[:, hid] = _sigmoid(F[:, vis] @ W + bh)
        rule, lr, q = get_rule("cd"), self.learning_rate, Q.mean(axis=0)[:, None]
        d = (rule.batched(np.hstack([pos, np.ones((len(pos), 1))]), pos, "positive", lr) / len(pos)
             + rule.batched(q * np.hstack([F, np.ones((len(F), 1))]), F, "negative", lr))   # bias: last row
        upper = np.triu(np.where(self.edge_mask_, d[:-1], 0.0), 1)
        return Update(upper + upper.T, d[-1])

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
        S = self._settle(n_samples, sweeps)
        return (S[:, self.visible_] if visible_only else S).astype(np.int8)

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
            net, H = self.network_, all_states(len(hid)).astype(np.float64)
            S = np.zeros((len(H), self.n_units))
            S[:, hid] = H
            out = np.empty((len(X), len(hid)))
            for r, x in enumerate(X):
                S[:, vis] = x
                lj = log_joint(net, S)
                out[r] = np.exp(lj - _logsumexp(lj)) @ H
            return out
        check_number("n_sweeps", n_sweeps, 1, integer=True)
        m = self.n_chains
        S = self._settle(len(X) * m, n_sweeps, clamp=np.repeat(X, m, axis=0))
        return self._conditional(S)[:, hid].reshape(len(X), m, len(hid)).mean(axis=1)

    # -- exact quantities (small nets) -------------------------------------------------
    def _enumerable(self, n: int, what: str) -> None:
        if n > MAX_FREE_UNITS:
            raise InferenceError(f"exact computation enumerates 2^n states: {what} {n} units of "
                                 f"{self.network.name!r} is over the limit of {MAX_FREE_UNITS}")

    def _states(self, k: np.ndarray) -> np.ndarray:
        """The states numbered ``k``: the visible units (in unit order) the high bits, the
        hidden units the low ones, so that ``k >> n_hidden`` is the visible configuration."""
        n = self.n_units
        S = np.empty((len(k), n))
        S[:, np.concatenate([self.visible_, self.hidden_])] = (k[:, None] >> np.arange(n - 1, -1, -1)) & 1
        return S

    def _blocks(self):
        """``(first state, states)`` of every state, in blocks of ``_CHUNK``; nets of up to
        16 units keep them (the exact procedure's hot path)."""
        self._enumerable(self.n_units, "the joint distribution over")
        if self._all_states is not None:
            return self._all_states
        total = 2 ** self.n_units
        blocks = ((start, self._states(np.arange(start, min(start + _CHUNK, total))))
                  for start in range(0, total, _CHUNK))
        if self.n_units <= 16:
            self._all_states = list(blocks)
            return self._all_states
        return blocks

    def _log_joint_table(self) -> np.ndarray:
        """Minus the energy (eq. 2) of every state, ``inference.exact.log_joint`` with the
        machine's current arrays, as a (2^n_visible, 2^n_hidden) table."""
        arrays = NetArrays(self.biases_, self.weights_, self.edge_mask_, np.zeros_like(self.edge_mask_))
        rows = [log_joint(self.network, S, arrays) for _, S in self._blocks()]
        return np.concatenate(rows).reshape(2 ** len(self.visible_), 2 ** len(self.hidden_))

    def _codes(self, X: np.ndarray) -> np.ndarray:
        nv = len(self.visible_)
        return (X.astype(np.int64) << np.arange(nv - 1, -1, -1)).sum(axis=1)

    def visible_log_probs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every visible configuration (int8 rows, in the order of ``all_states``) and its
        exact log probability under the model, ``log sum_h exp(-E(v, h)) - log Z`` (eq. 4)."""
        self._ensure_initialized()
        log_pv = _logsumexp(self._log_joint_table(), axis=1)
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
        for each bias, the data average over the exact posterior of the hidden units given
        each row, by enumeration (at most 22 units)."""
        X = self._check_X(X)
        table = self._log_joint_table()
        p = np.exp(table.ravel() - _logsumexp(table))
        neg2, neg1 = 0.0, 0.0
        for start, S in self._blocks():
            q = p[start:start + len(S)]
            neg2, neg1 = neg2 + S.T @ (q[:, None] * S), neg1 + q @ S
        codes, counts = np.unique(self._codes(X), return_counts=True)
        post = table[codes] - _logsumexp(table[codes], axis=1)[:, None]
        q = (np.exp(post) * (counts / len(X))[:, None]).ravel()
        nh = len(self.hidden_)
        S = self._states(((codes[:, None] << nh) | np.arange(2 ** nh)).ravel())   # the data's rows
        dW = np.triu(np.where(self.edge_mask_, S.T @ (q[:, None] * S) - neg2, 0.0), 1)
        return Update(dW + dW.T, q @ S - neg1)

    # -- networks and files ------------------------------------------------------------
    def to_network(self) -> Network:
        """The trained net: the same units and edges, with the learned weights and biases."""
        self._ensure_initialized()
        return self.network_
