"""The Helmholtz machine (Dayan, Hinton, Neal and Zemel 1995), trained by wake-sleep.

Layers ``0 .. L-1`` of stochastic binary units, layer 0 visible, and two directed
pathways, each a compiled net (:mod:`neurosim.compiled`) sampled as many chains:

* **generative**, top-down, a sigmoid belief net (eq. 1 of Hinton 2005; eq. 3.3 of Dayan
  et al.): ``p_j^l = sigmoid(b_j^l + sum_k s_k^{l+1} theta_kj^l)``, the top layer from
  its biases alone;
* **recognition**, bottom-up and factorial within a layer (eq. 3.1):
  ``q_j^{l+1} = sigmoid(c_j^{l+1} + sum_i s_i^l phi_ij^l)``.

**Wake-sleep** (Hinton 2005, section 4.1). Wake: a data vector clamped on layer 0, a
recognition pass up, and every generative synapse learns by eq. 7,
``d theta_kj = lr s_k (s_j - p_j)``. Sleep: a fantasy drawn down the generative pathway,
and every recognition synapse learns by eq. 11, ``d phi_ij = lr s_i (s_j - q_j)``. Both
are ``get_rule("wake-sleep")`` in its batched form. ``init_prior`` and ``warmup`` hold
the hidden priors fixed early in learning (Dayan et al., caption of figure 4).

Quality: ``exact_log_likelihood`` by enumeration (eq. 4), ``log_likelihood_is`` by
importance sampling with the recognition model as proposal, and the free energy of
eq. 3.8, ``F = E_alpha + log Q_alpha``, an upper bound on ``-log p(d)``. The shifter
recipe and more: ``docs/machines/helmholtz.md``.

>>> import numpy as np
>>> X = np.array([[1, 1, 0, 0], [0, 0, 1, 1]] * 50)
>>> hm = HelmholtzMachine((4, 2, 1), learning_rate=0.1, n_iter=20, random_state=0).fit(X)
>>> hm.sample(3).shape
(3, 4)
>>> net = hm.to_network()
>>> [u for u in net.units if u.startswith("h")]
['h1_0', 'h1_1', 'h2_0']
>>> bool(np.allclose(HelmholtzMachine.from_network(net).exact_log_likelihood(X),
...                  hm.exact_log_likelihood(X)))
True
"""

from __future__ import annotations

import numbers
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from ..compiled import Chains, CompiledNet, compile
from ..errors import InferenceError, ParameterError, ValidationError
from ..inference import visible_log_prob
from ..network import NetArrays, Network
from ..numerics import log_sigmoid, logsumexp, sigmoid
from ..population import Population, Projection
from .base import Machine, NotFittedError, Position, binary_rows, cases as _cases, check_number, check_random_state
from .sigmoid_belief_net import delta_change

__all__ = ["HelmholtzMachine", "Phase", "Selectivity", "NotFittedError", "MAX_EXACT_HIDDEN",
           "valid_fantasy_fraction", "shift_selectivity"]

MAX_EXACT_HIDDEN = 20      # exact_log_likelihood enumerates 2^H hidden states
_CELLS = 1 << 22           # (rows x largest layer) per chunk of importance sampling


class Phase(NamedTuple):
    """One wake or sleep step: the sampled ``states`` of every layer (layer 0 first,
    (batch, n_l) each); ``probs``, the ``post_prob`` each learning unit gave itself (the
    generative ``p`` of every layer when awake, the recognition ``q`` of every hidden
    layer asleep, ``probs[0]`` None); ``lr``, each layer's rate divided by the batch size."""

    phase: str
    states: list[np.ndarray]
    probs: list[np.ndarray | None]
    lr: list[float]


class Selectivity(NamedTuple):
    """The hidden unit whose mean recognition probability differs most between the two
    shift directions: ``difference`` (``mean q | labels[0] - mean q | labels[1]``, signed),
    its ``layer`` and ``unit``, and ``by_layer[l-1]``, every unit's difference in layer l."""

    difference: float
    layer: int
    unit: int
    by_layer: list[np.ndarray]
    labels: tuple

    @property
    def best(self) -> float:
        """The largest absolute difference."""
        return abs(self.difference)


def _per_layer(value: Any, name: str, n: int, what: str, layers: str) -> np.ndarray:
    """``value``, one number or one per layer, as ``n`` floats (a ParameterError naming it)."""
    bad = ParameterError(f"{name} must be {what} or one per {layers}, got {value!r}")
    if isinstance(value, (str, bytes, bool)):
        raise bad
    if isinstance(value, numbers.Real):
        return np.full(n, float(value))
    try:
        out = np.array([float(v) for v in value])
    except (TypeError, ValueError):
        raise bad from None
    if len(out) != n:
        raise ParameterError(f"{name} has {len(out)} entries for {n} {layers}s: {value!r}")
    return out


class HelmholtzMachine(Machine):
    """A layered Helmholtz machine with logistic generative and recognition pathways,
    trained by wake-sleep (Hinton et al. 1995; Dayan et al. 1995).

    Parameters
    ----------
    layer_sizes : sequence of int, default (32, 24, 1)
        Units per layer, visible layer first (the default: a shifter machine).
    learning_rate : float or sequence of float, default 0.05
        Rate of the generative synapses (wake), or one per layer for the synapses *into*
        that layer's units (layer 0 first).
    sleep_learning_rate : float, sequence of float or None, default None
        Rate of the recognition synapses (sleep), per layer as above (layer 0's unused);
        None: ``learning_rate``.
    n_iter : int, default 10
        Passes over the training data in ``fit``.
    batch_size : int, default 1
        Cases per update, each synapse changing by the mean of its local changes (1: the
        papers' online learning); a sleep step draws as many fantasies.
    init_scale : float, default 0.1
        Standard deviation of the initial weights.
    init_prior : float or sequence of float, default 0.5
        Initial probability that a hidden unit is on (or one per hidden layer): its
        generative and recognition biases start at ``logit(init_prior)``.
    warmup : int, default 0
        Updates at the start during which the wake phase trains only the generative
        synapses into the visible layer: the hidden priors stay fixed.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Normalised once, at fit, to ``random_state_``; every draw goes through it.
    verbose : bool or int, default False
        Print the free-energy bound on the training data after each pass.
    n_restarts, restart_epochs : int, default 1
        ``fit`` trains ``n_restarts`` machines, each from a Generator of its own, for
        ``restart_epochs`` passes, and goes on with the one of highest importance-sampled
        log-likelihood of ``X_valid`` (default X; 100 samples per case).

    Attributes
    ----------
    generative_weights_, generative_biases_ : list of ndarray
        ``[l]`` of shape ``(n_{l+1}, n_l)``: synapses from layer l+1 down to layer l;
        biases ``[l]`` of every layer (the top layer's are its prior).
    recognition_weights_, recognition_biases_ : list of ndarray
        ``[l]`` of shape ``(n_l, n_{l+1})``: synapses from layer l up to layer l+1;
        biases ``[l]`` of layer l+1. The four lists are views of the compiled pathways'
        arrays: change an array in place, or put a new one in (copied in at the next use).
    random_state_ : numpy.random.Generator
    n_iter_, n_updates_ : int
        Passes over data, and wake (and sleep) steps, done.
    visible_names_ : list of str or None
        Names of the visible units (from a Dataset or a Network), used by to_network.

    References
    ----------
    Dayan, Hinton, Neal and Zemel (1995), The Helmholtz machine, Neural Computation 7.
    Hinton (2005), What kind of graphical model is the brain?, IJCAI, section 4.1.
    """

    def __init__(self, layer_sizes: Sequence[int] = (32, 24, 1), learning_rate: Any = 0.05,
                 sleep_learning_rate: Any = None, n_iter: int = 10, batch_size: int = 1,
                 init_scale: float = 0.1, init_prior: Any = 0.5, warmup: int = 0,
                 random_state: Any = None, verbose: bool | int = False, n_restarts: int = 1,
                 restart_epochs: int = 1) -> None:
        self.layer_sizes = layer_sizes
        self.learning_rate = learning_rate
        self.sleep_learning_rate = sleep_learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.init_scale = init_scale
        self.init_prior = init_prior
        self.warmup = warmup
        self.random_state = random_state
        self.verbose = verbose
        self.n_restarts = n_restarts
        self.restart_epochs = restart_epochs

    _FITTED = "generative_biases_"
    _FITTED_META = ("n_iter_", "n_updates_", "visible_names_")

    # -- parameters ------------------------------------------------------------------
    def _check_sizes(self) -> list[int]:
        sizes = self.layer_sizes
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise ParameterError(f"layer_sizes must be a sequence of layer sizes, visible layer "
                                 f"first, got {sizes!r}")
        if len(sizes) < 2:
            raise ParameterError(f"layer_sizes must have at least 2 layers (visible and one hidden), "
                                 f"got {sizes!r}")
        for k, n in enumerate(sizes):
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
                raise ParameterError(f"layer_sizes[{k}] must be a positive integer, got {n!r}")
        return [int(n) for n in sizes]

    def _rates(self, value: Any, name: str, n_layers: int) -> np.ndarray:
        rates = _per_layer(value, name, n_layers, "a non-negative number", "layer")
        if not np.all(np.isfinite(rates) & (rates >= 0)):
            raise ParameterError(f"{name} must be finite and non-negative, got {value!r}")
        return rates

    def _priors(self, n_hidden: int) -> np.ndarray:
        """``init_prior`` as one probability per hidden layer, each strictly in (0, 1)."""
        what = "a probability strictly between 0 and 1"
        priors = _per_layer(self.init_prior, "init_prior", n_hidden, what, "hidden layer")
        if not np.all((priors > 0) & (priors < 1)):
            raise ParameterError(f"init_prior must be {what} or one per hidden layer, "
                                 f"got {self.init_prior!r}")
        return priors

    def _validate(self) -> None:
        """Check every parameter once (at fit, partial_fit, from_network); names the bad value."""
        sizes = self._check_sizes()
        self._wake_lr = self._rates(self.learning_rate, "learning_rate", len(sizes))
        sleep = self.learning_rate if self.sleep_learning_rate is None else self.sleep_learning_rate
        self._sleep_lr = self._rates(sleep, "sleep_learning_rate", len(sizes))
        for name in ("n_iter", "batch_size", "n_restarts", "restart_epochs"):
            check_number(name, getattr(self, name), 1, integer=True)
        self._warmup = check_number("warmup", self.warmup, 0, integer=True)
        self._priors(len(sizes) - 1)
        check_number("init_scale", self.init_scale, 0.0)
        if self.verbose is not None and not isinstance(self.verbose, (bool, numbers.Integral)):
            raise ParameterError(f"verbose must be a bool or an integer, got {self.verbose!r}")

    # -- fitted state ----------------------------------------------------------------
    @property
    def n_layers_(self) -> int:
        self._check_fitted()
        return len(self.generative_biases_)

    @property
    def sizes_(self) -> list[int]:
        self._check_fitted()
        return [len(b) for b in self.generative_biases_]

    def initialize(self, visible_names: Sequence[str] | None = None) -> HelmholtzMachine:
        """Fresh weights without training: small random weights (``init_scale``) drawn
        from ``random_state``, hidden biases at ``logit(init_prior)``, visible biases
        zero; for a machine to inspect, save or train by hand with :meth:`wake_step` and
        :meth:`sleep_step`."""
        self._validate()
        self.__dict__.pop("generative_biases_", None)
        self._initialise(visible_names)
        return self

    def _initialise(self, names: Sequence[str] | None) -> None:
        """Fresh weights and biases (see :meth:`initialize`) from a fresh ``random_state_``."""
        self.random_state_ = rng = check_random_state(self.random_state)
        sizes, s = self._check_sizes(), float(self.init_scale)
        G = [s * rng.standard_normal((sizes[l + 1], sizes[l])) for l in range(len(sizes) - 1)]
        priors = self._priors(len(sizes) - 1)
        logits = np.log(priors) - np.log1p(-priors)                # logit(init_prior), per layer
        R = [s * rng.standard_normal((sizes[l], sizes[l + 1])) for l in range(len(sizes) - 1)]
        hidden = [np.full(n, b) for n, b in zip(sizes[1:], logits)]
        self._set_parameters(G, [np.zeros(sizes[0])] + hidden, R, [b.copy() for b in hidden], names)

    def _check_X(self, X: Any) -> np.ndarray:
        n = self.generative_biases_[0].size if "generative_biases_" in self.__dict__ else self._check_sizes()[0]
        return binary_rows(X, n, "X", getattr(self, "visible_names_", None) or [f"v{i}" for i in range(n)])

    def _random(self, random_state: Any) -> np.random.Generator:
        if random_state is None:
            self._check_fitted()
            return self.random_state_
        return check_random_state(random_state)

    # -- the two pathways, compiled: they hold the parameters ---------------------------
    def _set_parameters(self, G: list, g: list, R: list, r: list, names: Sequence[str] | None,
                        n_iter: int = 0, n_updates: int = 0) -> None:
        """The weights and biases (lists, layer 0 first), visible names and counters."""
        if names is not None and len(names) != len(g[0]):
            raise ParameterError(f"{len(names)} visible names for {len(g[0])} visible units")
        self.generative_weights_, self.generative_biases_ = list(G), list(g)
        self.recognition_weights_, self.recognition_biases_ = list(R), list(r)
        self.visible_names_ = None if names is None else [str(n) for n in names]
        self.n_iter_, self.n_updates_ = n_iter, n_updates
        self._compiled()

    def _compiled(self) -> dict[str, CompiledNet]:
        """The generative and recognition pathways as compiled nets (float64, compiled
        once per shape) whose arrays hold the parameters: the attributes' lists are views
        of them (an array put in a list is copied in and replaced by its view), marked
        changed (``set_weights()``), so that chains re-read the weights."""
        sizes = self.sizes_
        if self.__dict__.get("_shape") != sizes:
            net = self.to_network()
            gen, rec = compile(net, np.float64), compile(net, np.float64, "recognition")
            cut = np.cumsum([0] + sizes).tolist()
            cols = [slice(a, b) for a, b in zip(cut, cut[1:])]
            self._views = ([gen.W[up, low] for low, up in zip(cols, cols[1:])], [gen.b[c] for c in cols],
                           [rec.W[low, up] for low, up in zip(cols, cols[1:])], [rec.b[c] for c in cols[1:]])
            self._nets = {"generative": gen, "recognition": rec}
            self._shape, self._cols, self._chains, self._scales = sizes, cols, {}, {}
            # where the batched rule's changes land: synapses, biases (not the visible recognition ones)
            self._masks = {"generative": np.vstack([gen.incoming, np.ones(gen.n, bool)]).astype(float),
                           "recognition": np.vstack([rec.incoming, rec.has_parents]).astype(float)}
        lists = (self.generative_weights_, self.generative_biases_, self.recognition_weights_,
                 self.recognition_biases_)
        for arrays, views in zip(lists, self._views):
            for k, (a, view) in enumerate(zip(arrays, views)):
                if a is not view:
                    view[...] = a
                    arrays[k] = view
        for cn in self._nets.values():
            cn.set_weights()
        return self._nets

    def _layers(self, S: np.ndarray) -> list[np.ndarray]:
        """Each layer's columns (layer 0 first) of states over the compiled nets' units."""
        return [S[:, cols] for cols in self._cols]

    def _pass(self, pathway: str, rng: np.random.Generator, m: int,
              X: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """One pass of ``pathway``'s compiled ancestral plan over ``m`` chains (roots
        first, each layer drawn by eq. 1 from the one that feeds it), the recognition
        pathway's visible units clamped to the rows of ``X``: the states of every unit
        (chains x units) and each step's probabilities. The chains are kept while ``m``
        stays the same (one draw per layer, no initial draw)."""
        cn = self._compiled()[pathway]
        chains = self._chains.get(pathway)
        if chains is None or chains.m != m:
            chains = self._chains[pathway] = Chains(cn, rng, m, init=np.zeros((m, cn.n)), count=False)
        chains.rng = rng
        if X is not None:
            chains.clamp(units=cn.units[:X.shape[1]], values=X)
        probs = [chains.update(step) for step in chains.plan.steps]
        return chains.rows.copy(), probs

    def _learn(self, pathway: str, phase: str, S: np.ndarray, rates: np.ndarray) -> list[np.ndarray]:
        """Eq. 7 (wake: the generative synapses) or eq. 11 (sleep: the recognition
        synapses) in the rule's batched form on the states ``S`` of every unit, the
        synapses and biases into each layer at its rate; returns each layer's ``post_prob``."""
        cn, key = self._nets[pathway], tuple(rates.tolist())
        if self._scales.get(pathway, (None,))[0] != key:  # each change's rate, 0 where nothing learns
            self._scales[pathway] = (key, self._masks[pathway] * np.repeat(rates, self._shape))
        dW, db, P = delta_change(S, cn.W, cn.b, self._scales[pathway][1], phase, "wake-sleep")
        cn.W += dW
        cn.b += db
        return self._layers(P)

    # -- learning --------------------------------------------------------------------
    def wake_step(self, X: Any, random_state: Any = None) -> Phase:
        """One wake step on the rows of X: a recognition sample bottom-up, then every
        generative synapse (and generative bias) learns by eq. 7. While ``n_updates_ <
        warmup`` only the synapses into the visible layer learn (rate 0 above)."""
        self._check_fitted()
        return self._wake(self._check_X(X), self._random(random_state))

    def _wake(self, X: np.ndarray, rng: np.random.Generator) -> Phase:
        S, _ = self._pass("recognition", rng, len(X), X)
        rates = self._wake_lr / len(X)
        if self.n_updates_ < self._warmup:          # the hidden layers' generative model is fixed
            rates[1:] = 0.0
        return Phase("wake", self._layers(S), self._learn("generative", "wake", S, rates), rates.tolist())

    def sleep_step(self, n: int, random_state: Any = None) -> Phase:
        """One sleep step: ``n`` fantasies drawn top-down from the generative model,
        then every recognition synapse (and recognition bias) learns by eq. 11."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ParameterError(f"sleep_step: n must be a positive integer, got {n!r}")
        S, _ = self._pass("generative", self._random(random_state), int(n))
        rates = self._sleep_lr / n
        probs = self._learn("recognition", "sleep", S, rates)
        return Phase("sleep", self._layers(S), [None] + probs[1:], rates.tolist())

    def _fit_batch(self, X: np.ndarray, rows: Any, at: Position | None) -> None:
        """One wake step on the rows (checked once, at the start), one sleep step of as
        many fantasies."""
        batch = X[rows]
        self._wake(batch, self.random_state_)
        self.sleep_step(len(batch), self.random_state_)
        self.n_updates_ += 1

    def _epoch_order(self, X: np.ndarray, epoch: int) -> np.ndarray:
        return self.random_state_.permutation(len(X))

    def _end_epoch(self, X: np.ndarray, epoch: int) -> None:
        self.n_iter_ += 1
        if self.verbose:
            f = float(self.free_energy(X[:1000], random_state=self.random_state_).mean())
            self._say(f"[HelmholtzMachine] pass {self.n_iter_}, free energy {f:.3f} nats, "
                      f"{time.perf_counter() - self._clock:.2f} s")

    def _held_out_score(self, X: Any) -> float:
        """The restarts' criterion: the importance-sampled mean log-likelihood of ``X``
        (nats), 100 samples per case from a Generator seeded 0 (common to every candidate)."""
        return float(self.log_likelihood_is(X, 100, random_state=np.random.default_rng(0)).mean())

    def _begin_fit(self, X: Any) -> np.ndarray:
        """Fresh weights for ``fit``: X is a (cases, visible units) array of 0/1 states,
        or a Dataset with ``data`` and ``names`` (the names of the visible units)."""
        self._validate()
        self.__dict__.pop("generative_biases_", None)
        self.visible_names_ = None
        checked = self._check_X(X)
        self._initialise(getattr(X, "names", None))
        self._n_epochs, self._batch_rows = int(self.n_iter), int(self.batch_size)
        self._clock = time.perf_counter()
        return checked

    def partial_fit(self, X: Any, y: Any = None) -> HelmholtzMachine:
        """One pass of wake-sleep over X in order (weights created on the first call)."""
        if "generative_biases_" not in self.__dict__:
            X_checked = self._begin_fit(X)
        else:
            self._validate()
            if self._check_sizes() != self.sizes_:
                raise ParameterError(f"layer_sizes {self.layer_sizes!r} differ from the fitted "
                                     f"machine's {tuple(self.sizes_)}")
            X_checked = self._check_X(X)
        B = int(self.batch_size)
        for start in range(0, len(X_checked), B):
            self._fit_batch(X_checked, slice(start, start + B), None)
        self.n_iter_ += 1
        return self

    # -- generation and recognition --------------------------------------------------
    def sample(self, n: int, all_layers: bool = False, random_state: Any = None):
        """``n`` fantasies from the generative model (ancestral, top-down): an int8
        array (n, visible units), or with ``all_layers`` a list of every layer's states,
        layer 0 first."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ParameterError(f"sample: n must be a non-negative integer, got {n!r}")
        rng = self._random(random_state)
        if n == 0:
            states = [np.zeros((0, k), dtype=np.int8) for k in self.sizes_]
        else:
            states = self._layers(self._pass("generative", rng, int(n))[0].astype(np.int8))
        return states if all_layers else states[0]

    def recognize(self, X: Any, stochastic: bool = False, random_state: Any = None) -> list[np.ndarray]:
        """Recognition probabilities ``q`` of every hidden layer (layer 1 first).

        ``stochastic=False``: the deterministic pass of eq. 3.10 of Dayan et al., each
        layer driven by the probabilities of the one below (exact for layer 1).
        ``stochastic=True``: the recognition model proper (eq. 3.1), each layer driven by
        binary states sampled from the one below, as in the wake phase."""
        self._check_fitted()
        X = self._check_X(X)
        if stochastic:
            return self._pass("recognition", self._random(random_state), len(X), X)[1]
        out, a = [], X
        for W, c in zip(self.recognition_weights_, self.recognition_biases_):
            a = sigmoid(a @ W + c)
            out.append(a)
        return out

    def transform(self, X: Any) -> np.ndarray:
        """The deterministic recognition probabilities of all hidden layers, side by
        side: shape (cases, hidden units), layer 1 first."""
        return np.hstack(self.recognize(X))

    # -- quality ---------------------------------------------------------------------
    def _log_weights(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``log p(x, h) - log q(h | x)`` for one recognition sample h per row: ``log
        P(s_i | its inputs) = log sigmoid(+-x_i)`` summed over every unit of the
        generative pathway, less its sum over the hidden units of the recognition one."""
        S, _ = self._pass("recognition", rng, len(X), X)
        gen, rec = self._nets["generative"], self._nets["recognition"]
        sign, hidden = 2 * S - 1, slice(self.sizes_[0], None)
        log_p = log_sigmoid(sign * (S @ gen.W + gen.b)).sum(axis=1)
        return log_p - log_sigmoid(sign[:, hidden] * (S @ rec.W[:, hidden] + rec.b[hidden])).sum(axis=1)

    def log_importance_weights(self, X: Any, n_samples: int = 100,
                               random_state: Any = None) -> np.ndarray:
        """``log w_k = log p(x, h_k) - log q(h_k | x)`` with ``h_k`` drawn from the
        recognition model, shape (cases, n_samples). ``mean_k w_k`` is an unbiased
        estimate of ``p(x)``; ``-mean_k log w_k`` estimates the free energy of eq. 3.8."""
        self._check_fitted()
        X = self._check_X(X)
        K = check_number("n_samples", n_samples, 1, integer=True)
        rng = self._random(random_state)
        out = np.empty((len(X), K))
        rows = max(1, _CELLS // (K * max(self.sizes_)))
        for start in range(0, len(X), rows):
            chunk = X[start:start + rows]
            out[start:start + len(chunk)] = self._log_weights(np.repeat(chunk, K, axis=0), rng).reshape(-1, K)
        return out

    def log_likelihood_is(self, X: Any, n_samples: int = 100, random_state: Any = None) -> np.ndarray:
        """Importance-sampled ``log p(x)`` in nats for each row, with the recognition
        model as proposal: ``log (1/K) sum_k p(x, h_k) / q(h_k | x)``, via log-sum-exp.
        A consistent estimate; its expectation is a lower bound that tightens with K."""
        log_w = self.log_importance_weights(X, n_samples, random_state)
        return logsumexp(log_w, axis=1) - np.log(log_w.shape[1])

    def free_energy(self, X: Any, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Estimate of the variational free energy ``F(d) = E_Q[E_alpha + log Q_alpha]``
        (eq. 3.8) of each row in nats, averaged over ``n_samples`` recognition samples:
        in expectation an upper bound on ``-log p(d)``."""
        return -self.log_importance_weights(X, n_samples, random_state).mean(axis=1)

    def score(self, X: Any, y: Any = None, n_samples: int = 1, random_state: Any = None) -> float:
        """Mean negative free energy over the rows of X: a (stochastic) lower bound on
        the mean log-likelihood, in nats per case. Higher is better."""
        return float(-self.free_energy(X, n_samples, random_state).mean())

    def exact_log_likelihood(self, X: Any) -> np.ndarray:
        """``log p(x)`` in nats for each row: the generative pathway's visible marginal,
        the hidden units summed out (:func:`~neurosim.inference.visible_log_prob`); at
        most MAX_EXACT_HIDDEN hidden units."""
        self._check_fitted()
        X = self._check_X(X)
        sizes = self.sizes_
        if sum(sizes[1:]) > MAX_EXACT_HIDDEN:
            raise InferenceError(f"exact_log_likelihood enumerates 2^H hidden states: this machine has "
                                 f"H = {sum(sizes[1:])} hidden units ({'-'.join(map(str, sizes))}), over "
                                 f"the limit of {MAX_EXACT_HIDDEN}; use log_likelihood_is")
        net = self.to_network()
        return visible_log_prob(net, net.units[:sizes[0]], X)

    # -- networks and files ----------------------------------------------------------
    def to_network(self, visible_names: Sequence[str] | None = None, name: str = "helmholtz_machine",
                   description: str | None = None) -> Network:
        """The machine as a Network of populations ``v`` (layer 0), ``h1``, ...: the
        generative weights as ``directed`` projections ``h{l+1}->h{l}`` (biases: the
        populations' ``bias``), the recognition weights as ``recognition`` projections
        ``h{l}=>h{l+1}`` (``recognition_bias``). Hidden units are named ``h{layer}_{i}``,
        visible units ``visible_names`` (default: ``visible_names_`` or ``v{i}``)."""
        self._check_fitted()
        sizes, g = self.sizes_, self.generative_biases_
        names = visible_names if visible_names is not None else self.visible_names_
        names = [f"v{i}" for i in range(sizes[0])] if names is None else list(names)
        if len(names) != sizes[0]:
            raise ParameterError(f"to_network: {len(names)} visible names for {sizes[0]} visible units")
        pops = [Population("v", tuple(names), g[0], "visible", 0)]
        pops += [Population(f"h{l}", tuple(f"h{l}_{i}" for i in range(sizes[l])), g[l], "hidden", l,
                            recognition_bias=r) for l, r in enumerate(self.recognition_biases_, 1)]
        p = [pop.name for pop in pops]
        projs = [Projection(f"{p[l + 1]}->{p[l]}", p[l + 1], p[l], G)
                 for l, G in enumerate(self.generative_weights_)]
        projs += [Projection(f"{p[l]}=>{p[l + 1]}", p[l], p[l + 1], R, "recognition")
                  for l, R in enumerate(self.recognition_weights_)]
        if description is None:
            description = (f"Helmholtz machine {'-'.join(map(str, sizes))} (Dayan et al. 1995): "
                           "directed edges are the generative model, recognition edges the "
                           "bottom-up recognition model, trained by wake-sleep")
        return Network.from_populations(pops, projs, name=name, description=description)

    @classmethod
    def from_network(cls, net: Network, **params: Any) -> HelmholtzMachine:
        """The inverse of :meth:`to_network`: a fitted machine with the weights of
        ``net``. Every unit needs a ``layer`` (0 = visible, then 1, 2, ... with no gaps);
        every pair of units in adjacent layers needs a directed edge from the upper to
        the lower and a recognition edge from the lower to the upper; every hidden unit
        needs a ``recognition_bias``. Units keep their order within a layer. ``params``
        are the other constructor parameters."""
        if not isinstance(net, Network):
            raise ValidationError(f"from_network needs a neurosim Network, got {type(net).__name__}")
        net.refuse_linear("a Helmholtz machine (logistic units, eq. 1)")
        where = f"network {net.name!r}"
        units = net.unit_list()
        for u in units:
            if u.layer is None:
                raise ValidationError(f"{where}: unit {u.name!r} has no layer; a Helmholtz machine "
                                      "needs layer = 0 for visible units and 1, 2, ... above")
            if (u.layer == 0) != (u.role == "visible"):
                raise ValidationError(f"{where}: unit {u.name!r} is {u.role} in layer {u.layer}; "
                                      "layer 0 must hold exactly the visible units")
            if u.layer == 0 and u.recognition_bias is not None:
                raise ValidationError(f"{where}: visible unit {u.name!r} has a recognition_bias; "
                                      "no recognition synapse reaches the visible layer")
            if u.layer > 0 and u.recognition_bias is None:
                raise ValidationError(f"{where}: hidden unit {u.name!r} has no recognition_bias")
        layer = np.array([u.layer for u in units])
        found = sorted(set(layer.tolist()))
        if len(found) < 2 or found != list(range(len(found))):
            raise ValidationError(f"{where}: layers must be 0 (visible), 1, ..., with none missing; "
                                  f"found {found}")
        gen, rec = _pathways(net, layer, where)
        idx = [np.flatnonzero(layer == l) for l in found]
        hm = cls(layer_sizes=tuple(len(i) for i in idx), **params)
        hm._validate()
        hm.random_state_ = check_random_state(hm.random_state)
        pairs = list(zip(idx, idx[1:]))
        G = [_block(gen, up, low, net, where, "generative (directed)") for low, up in pairs]
        R = [_block(rec, low, up, net, where, "recognition") for low, up in pairs]
        hm._set_parameters(G, [gen.bias[i] for i in idx], R, [rec.bias[i] for i in idx[1:]],
                           [net.units[i] for i in idx[0]])
        return hm

    def save(self, path: str | Path, visible_names: Sequence[str] | None = None,
             name: str = "helmholtz_machine", description: str | None = None, info: dict | None = None) -> None:
        """Write the machine (atomically) as :meth:`load` reads it back: ``.npz``, its
        arrays and parameters (:meth:`Machine.save <neurosim.machines.base.Machine.save>`),
        or ``.toml``, the model file of :meth:`to_network`."""
        super().save(path, info, visible_names=visible_names, name=name, description=description)

    def _arrays(self) -> dict[str, np.ndarray]:
        """``G{l}``, ``g{l}``, ``R{l}``, ``r{l}``: the lists of weights and biases."""
        lists = {"G": self.generative_weights_, "g": self.generative_biases_,
                 "R": self.recognition_weights_, "r": self.recognition_biases_}
        return {f"{k}{l}": a for k, arrays in lists.items() for l, a in enumerate(arrays)}

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> HelmholtzMachine:
        hm = cls(**params)
        hm._validate()
        sizes = hm._check_sizes()
        hm.random_state_ = check_random_state(hm.random_state)
        counts = {"G": len(sizes) - 1, "g": len(sizes), "R": len(sizes) - 1, "r": len(sizes) - 1}
        try:
            lists = [[arrays[f"{key}{l}"] for l in range(n)] for key, n in counts.items()]
        except KeyError as exc:
            raise ParameterError(f"no array {exc} for layer_sizes {hm.layer_sizes!r}") from None
        if [len(b) for b in lists[1]] != sizes:
            raise ParameterError(f"arrays of layers {[len(b) for b in lists[1]]} where layer_sizes is "
                                 f"{hm.layer_sizes!r}")
        hm._set_parameters(*lists, fitted.get("visible_names_"), fitted.get("n_iter_", 0),
                           fitted.get("n_updates_", 0))
        return hm


def _pathways(net: Network, layer: np.ndarray, where: str) -> tuple[NetArrays, NetArrays]:
    """The generative and recognition pathways of ``net`` as dense arrays in unit order,
    checked to join adjacent layers the right way (a ValidationError naming the edge)."""
    gen = net.to_arrays()
    if gen.symmetric.any():
        i, j = np.argwhere(gen.symmetric)[0]
        raise ValidationError(f"{where}: symmetric edge {net.units[i]} -- {net.units[j]}; a Helmholtz "
                              "machine has only directed (generative) and recognition edges")
    rec = net.pathway("recognition").to_arrays()
    for arrays, kind, step, rule in ((gen, "directed", -1, "generative edges go from layer l+1 to layer l"),
                                     (rec, "recognition", 1, "recognition edges go from layer l to l+1")):
        wrong = arrays.directed & (layer[None, :] != layer[:, None] + step)
        if wrong.any():
            i, j = np.argwhere(wrong)[0]
            raise ValidationError(f"{where}: {kind} edge {net.units[i]} -> {net.units[j]} goes from layer "
                                  f"{layer[i]} to {layer[j]}; {rule}")
    return gen, rec


def _block(arrays: NetArrays, pre: np.ndarray, post: np.ndarray, net: Network, where: str,
           kind: str) -> np.ndarray:
    """The weights ``pre -> post`` of one pathway's ``arrays``; every synapse must exist."""
    missing = ~arrays.directed[np.ix_(pre, post)]
    if missing.any():
        i, j = np.argwhere(missing)[0]
        raise ValidationError(f"{where}: missing {kind} edge {net.units[pre[i]]} -> {net.units[post[j]]}")
    return arrays.weights[np.ix_(pre, post)]


# -- shifter metrics ------------------------------------------------------------------
def valid_fantasy_fraction(hm: HelmholtzMachine, n: int, rng: Any = None) -> float:
    """Fraction of ``n`` fantasies of ``hm`` that are valid shift patterns
    (:func:`neurosim.data.is_valid_shift`)."""
    from ..data import is_valid_shift
    fantasies = hm.sample(n, random_state=rng if rng is not None else 0)
    if n == 0:
        return float("nan")
    return float(np.mean([bool(is_valid_shift(f)) for f in fantasies]))


def shift_selectivity(hm: HelmholtzMachine, X: Any, labels: Any = None, stochastic: bool = True,
                      random_state: Any = 0) -> Selectivity:
    """The hidden unit (of any layer) whose mean recognition probability differs most
    between the cases of the two shift directions: ``labels`` with exactly two values
    (default: the ``labels`` of a Dataset ``X``), the difference taken first minus second
    in sorted order. ``stochastic`` (default): each layer driven by sampled states of the
    one below, as in the recognition model proper; otherwise the deterministic pass."""
    if labels is None and getattr(X, "labels", None) is not None:
        labels = X.labels
    labels = np.asarray(labels)
    values = np.unique(labels)
    if len(values) != 2:
        raise ParameterError(f"shift_selectivity needs labels with exactly two values (the two "
                             f"shift directions), got {values.tolist()!r}")
    X = np.asarray(_cases(X))
    if len(labels) != len(X):
        raise ParameterError(f"shift_selectivity: {len(labels)} labels for {len(X)} cases")
    qs = hm.recognize(X, stochastic=stochastic, random_state=random_state)
    a, b = labels == values[0], labels == values[1]
    by_layer = [q[a].mean(axis=0) - q[b].mean(axis=0) for q in qs]
    layer, unit = max(((l, int(np.argmax(np.abs(d)))) for l, d in enumerate(by_layer)),
                      key=lambda lu: abs(by_layer[lu[0]][lu[1]]))
    return Selectivity(float(by_layer[layer][unit]), layer + 1, unit, by_layer,
                       (values[0].item(), values[1].item()))
