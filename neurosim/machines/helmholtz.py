"""The Helmholtz machine (Dayan, Hinton, Neal and Zemel 1995), trained by wake-sleep.

Layers ``0 .. L-1`` of stochastic binary units, layer 0 visible. Two sets of weights:

* **Generative**, top-down (a sigmoid belief net, eq. 1 of Hinton 2005 and eq. 3.3 of
  Dayan et al.): the top-layer units are independent, ``p_j = sigmoid(b_j)``; every
  lower layer is a logistic function of the layer above,
  ``p_j^l = sigmoid(b_j^l + sum_k s_k^{l+1} theta_kj^l)``.
* **Recognition**, bottom-up and factorial within a layer (eq. 3.1):
  ``q_j^{l+1} = sigmoid(c_j^{l+1} + sum_i s_i^l phi_ij^l)``.

**Wake-sleep** (Hinton et al. 1995; Hinton 2005, section 4.1). Wake phase: a data
vector is clamped on layer 0 and states are sampled bottom-up from the recognition
model; every generative synapse learns by eq. 7, ``d theta_kj = lr s_k (s_j - p_j)``.
Sleep phase: a fantasy is sampled top-down from the generative model (an ancestral
pass); every recognition synapse learns by eq. 11, ``d phi_ij = lr s_i (s_j - q_j)``.
Both are the registered rule ``get_rule("wake-sleep")``, applied in its batched form
(a bias is a synapse from a unit that is always on). With ``batch_size=1`` this is the
online procedure of the papers; a larger batch applies the mean of the local changes.

**Fixed hidden priors early in learning** (the caption of figure 4 of Dayan et al.:
"to prevent the units in layers 2 and 3 from being permanently turned off early in the
learning they were given fixed, but tiny generative biases"). ``init_prior`` starts
every hidden unit's generative and recognition biases at ``logit(p)``; for the first
``warmup`` updates the wake phase trains only the generative synapses into the visible
layer, so the hidden layers' generative model (biases and the weights between hidden
layers) stays fixed while the first hidden layer finds features under a sparse prior.
Then every synapse learns. It is a learning-rate schedule: the rule stays local. (The
paper's biases stayed fixed throughout, under its odds imaging model of Appendix A;
here the logistic model of eq. 3.3 is kept and the biases are held only early.) On
the shifter, where Appendix A reports that the logistic generative model "almost
invariably got caught in one of a variety of local minima", a sparse first-layer prior
(0.02) breaks the symmetric minimum in which one unit claims a top pixel together
with both of its possible partners, and holding the top layer off keeps it from
becoming a bias for the layer below before there are features to explain.

Quality is measured without approximation where possible: ``exact_log_likelihood``
enumerates the hidden states of a small machine; ``log_likelihood_is`` is the
importance-sampling estimate with the recognition model as proposal; the variational
free energy of eq. 3.8, ``F = E_alpha + log Q_alpha``, bounds ``-log p(d)`` from above.

Example
-------
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

from ..errors import InferenceError, ParameterError, ValidationError
from ..learning import get_rule
from ..network import Edge, Network, Unit
from ..numerics import sigmoid as _sigmoid
from .base import Machine, NotFittedError, Position, binary_rows, cases as _cases, check_number, check_random_state

__all__ = ["HelmholtzMachine", "Phase", "Selectivity", "NotFittedError", "MAX_EXACT_HIDDEN",
           "valid_fantasy_fraction", "shift_selectivity"]

MAX_EXACT_HIDDEN = 20      # exact_log_likelihood enumerates 2^H hidden states
_CELLS = 1 << 22           # floats per temporary array in chunked evaluations


class Phase(NamedTuple):
    """What one wake or sleep step did: the sampled binary ``states`` of every layer
    (layer 0 first; shape (batch, n_l) each) and ``probs``, the probability each
    learning unit gave itself, ``post_prob`` of the rule: the generative ``p`` of every
    layer in the wake phase, the recognition ``q`` of every hidden layer in the sleep
    phase (``probs[0]`` is None there: visible units have no recognition input). ``lr``
    is the learning rate each layer's synapses used (the rate divided by the batch size)."""

    phase: str
    states: list[np.ndarray]
    probs: list[np.ndarray | None]
    lr: list[float]


class Selectivity(NamedTuple):
    """Shift selectivity of the hidden units: the unit whose mean recognition
    probability differs most between the two shift directions.

    ``difference`` is ``mean q | labels[0] - mean q | labels[1]`` for that unit (signed);
    ``layer`` and ``unit`` locate it; ``by_layer[l-1]`` holds the signed differences of
    every unit of hidden layer ``l``; ``labels`` are the two label values compared."""

    difference: float
    layer: int
    unit: int
    by_layer: list[np.ndarray]
    labels: tuple

    @property
    def best(self) -> float:
        """The largest absolute difference."""
        return abs(self.difference)




def _log_bernoulli(s: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``sum_j log P(s_j)`` for independent units with ``P(s_j=1) = sigmoid(logit_j)``,
    per row: ``s x - softplus(x)``, exact in floating point at any logit."""
    return (s * logits - np.logaddexp(0.0, logits)).sum(axis=-1)


def _bernoulli(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(p.shape) < p).astype(np.float64)


def _logmeanexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.exp(a - m).mean(axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)


def _ones(n: int) -> np.ndarray:
    return np.ones((n, 1))


class HelmholtzMachine(Machine):
    """A layered Helmholtz machine with logistic generative and recognition pathways,
    trained by the wake-sleep algorithm (Hinton et al. 1995; Dayan et al. 1995).

    Parameters
    ----------
    layer_sizes : sequence of int, default (32, 24, 1)
        Units per layer, visible layer first. The default is a shifter machine: 32
        pixels, 24 units that can detect shifted pairs, one unit for the direction.
    learning_rate : float or sequence of float, default 0.05
        Rate of the generative synapses (wake phase). A sequence gives one rate per
        layer, for the synapses *into* that layer's units (layer 0 first).
    sleep_learning_rate : float, sequence of float or None, default None
        Rate of the recognition synapses (sleep phase), per layer as above (the entry
        for layer 0 is unused); None: the same as ``learning_rate``.
    n_iter : int, default 10
        Passes over the training data in ``fit``.
    batch_size : int, default 1
        Cases per update. 1 is the papers' online learning; with more, each synapse
        changes by the mean of its local changes over the batch (the rule's batched
        form, with the rate divided by the batch size). A sleep step draws as many
        fantasies as the wake step had data vectors.
    init_scale : float, default 0.1
        Standard deviation of the initial weights.
    init_prior : float or sequence of float, default 0.5
        Initial probability that a hidden unit is on: the generative and recognition
        biases of the hidden units start at ``logit(init_prior)`` (0.5: zero biases).
        A sequence gives one value per hidden layer, layer 1 first. Visible biases
        start at zero.
    warmup : int, default 0
        Updates (wake steps counted by ``n_updates_``) at the start of learning during
        which only the generative synapses into the visible layer learn: the hidden
        priors and the weights between hidden layers are held at their initial values
        (Dayan et al. 1995, caption of figure 4). The sleep phase trains every
        recognition synapse throughout.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Normalised once, at fit, to ``random_state_``; every draw goes through it.
    verbose : bool or int, default False
        Print the free-energy bound on the training data after each pass.
    n_restarts : int, default 1
        Restarts chosen on held-out likelihood (as ``helmholtz_shifter``'s demo chose
        among its random starts): :meth:`fit` trains this many machines, each from
        random weights of its own Generator, for ``restart_epochs`` passes, and keeps the
        one of highest importance-sampled log-likelihood of ``X_valid`` (100 samples per
        case, the same Generator for every candidate).
    restart_epochs : int, default 1
        Passes each restart makes before the choice.

    Attributes
    ----------
    generative_weights_ : list of ndarray
        ``[l]`` has shape ``(n_{l+1}, n_l)``: synapses from layer l+1 down to layer l.
    generative_biases_ : list of ndarray
        ``[l]`` has shape ``(n_l,)``, for every layer (the top layer's are its prior).
    recognition_weights_ : list of ndarray
        ``[l]`` has shape ``(n_l, n_{l+1})``: synapses from layer l up to layer l+1.
    recognition_biases_ : list of ndarray
        ``[l]`` has shape ``(n_{l+1},)``: the recognition biases of layer l+1.
    random_state_ : numpy.random.Generator
    n_iter_ : int
        Passes over data done by fit and partial_fit together.
    n_updates_ : int
        Wake (and sleep) steps done.
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
        if isinstance(value, (str, bytes, bool)):
            raise ParameterError(f"{name} must be a non-negative number or one per layer, got {value!r}")
        if isinstance(value, numbers.Real):
            rates = np.full(n_layers, float(value))
        else:
            try:
                rates = np.array([float(v) for v in value])
            except (TypeError, ValueError):
                raise ParameterError(f"{name} must be a non-negative number or one per layer, "
                                     f"got {value!r}") from None
            if len(rates) != n_layers:
                raise ParameterError(f"{name} has {len(rates)} entries for {n_layers} layers: "
                                     f"{value!r}")
        bad = ~np.isfinite(rates) | (rates < 0)
        if bad.any():
            raise ParameterError(f"{name} must be finite and non-negative, got {value!r}")
        return rates

    def _validate(self) -> None:
        """Check every parameter once (at fit, partial_fit, from_network); names the bad value."""
        sizes = self._check_sizes()
        self._wake_lr = self._rates(self.learning_rate, "learning_rate", len(sizes))
        sleep = self.learning_rate if self.sleep_learning_rate is None else self.sleep_learning_rate
        self._sleep_lr = self._rates(sleep, "sleep_learning_rate", len(sizes))
        check_number("n_iter", self.n_iter, 1, integer=True)
        check_number("batch_size", self.batch_size, 1, integer=True)
        check_number("n_restarts", self.n_restarts, 1, integer=True)
        check_number("restart_epochs", self.restart_epochs, 1, integer=True)
        self._warmup = check_number("warmup", self.warmup, 0, integer=True)
        self._priors(len(sizes) - 1)
        check_number("init_scale", self.init_scale, 0.0)
        if self.verbose is not None and not isinstance(self.verbose, (bool, numbers.Integral)):
            raise ParameterError(f"verbose must be a bool or an integer, got {self.verbose!r}")

    def _priors(self, n_hidden: int) -> np.ndarray:
        """``init_prior`` as one probability per hidden layer, each strictly in (0, 1)."""
        value = self.init_prior
        bad = ParameterError(f"init_prior must be a probability strictly between 0 and 1 or one "
                             f"per hidden layer, got {value!r}")
        if isinstance(value, (str, bytes, bool)):
            raise bad
        if isinstance(value, numbers.Real):
            priors = np.full(n_hidden, float(value))
        else:
            try:
                priors = np.array([float(v) for v in value])
            except (TypeError, ValueError):
                raise bad from None
            if len(priors) != n_hidden:
                raise ParameterError(f"init_prior has {len(priors)} entries for {n_hidden} hidden "
                                     f"layers: {value!r}")
        if not np.all((priors > 0) & (priors < 1)):
            raise bad
        return priors

    # -- fitted state ----------------------------------------------------------------
    @property
    def n_layers_(self) -> int:
        self._check_fitted()
        return len(self.generative_biases_)

    @property
    def sizes_(self) -> list[int]:
        self._check_fitted()
        return [len(b) for b in self.generative_biases_]

    def _initialise(self, rng: np.random.Generator) -> None:
        sizes = self._check_sizes()
        s = float(self.init_scale)
        self.generative_weights_ = [s * rng.standard_normal((sizes[l + 1], sizes[l]))
                                    for l in range(len(sizes) - 1)]
        priors = self._priors(len(sizes) - 1)
        logits = np.log(priors) - np.log1p(-priors)                # logit(init_prior), per layer
        self.generative_biases_ = [np.zeros(sizes[0])] + [np.full(n, b)
                                                          for n, b in zip(sizes[1:], logits)]
        self.recognition_weights_ = [s * rng.standard_normal((sizes[l], sizes[l + 1]))
                                     for l in range(len(sizes) - 1)]
        self.recognition_biases_ = [np.full(n, b) for n, b in zip(sizes[1:], logits)]
        self.n_iter_ = 0
        self.n_updates_ = 0
        self.visible_names_ = getattr(self, "visible_names_", None)

    def initialize(self, visible_names: Sequence[str] | None = None) -> HelmholtzMachine:
        """Fresh weights without training: small random weights (``init_scale``) drawn
        from ``random_state``, hidden biases at ``logit(init_prior)``, visible biases
        zero; for a machine to inspect, save or train by hand with :meth:`wake_step` and
        :meth:`sleep_step`."""
        self._validate()
        self.random_state_ = check_random_state(self.random_state)
        self.__dict__.pop("generative_biases_", None)
        self.visible_names_ = None
        self._initialise(self.random_state_)
        self._set_names(visible_names)
        return self

    def _check_X(self, X: Any, what: str = "X") -> np.ndarray:
        n = self.generative_biases_[0].size if "generative_biases_" in self.__dict__ else self._check_sizes()[0]
        return binary_rows(X, n, what, getattr(self, "visible_names_", None) or [f"v{i}" for i in range(n)])

    def _random(self, random_state: Any) -> np.random.Generator:
        if random_state is None:
            self._check_fitted()
            return self.random_state_
        return check_random_state(random_state)

    # -- passes ----------------------------------------------------------------------
    def _up(self, X: np.ndarray, rng: np.random.Generator) -> tuple[list, list]:
        """Bottom-up recognition sample: states of every layer and the recognition
        probabilities of every hidden layer (q[l] for layer l+1)."""
        states, probs = [X], []
        for W, c in zip(self.recognition_weights_, self.recognition_biases_):
            q = _sigmoid(states[-1] @ W + c)
            probs.append(q)
            states.append(_bernoulli(rng, q))
        return states, probs

    def _down(self, n: int, rng: np.random.Generator) -> tuple[list, list]:
        """Ancestral (top-down) sample: states of every layer (layer 0 first) and the
        generative probabilities each layer's units had."""
        L = len(self.generative_biases_)
        states: list = [None] * L
        probs: list = [None] * L
        p = np.broadcast_to(_sigmoid(self.generative_biases_[-1]), (n, len(self.generative_biases_[-1])))
        probs[-1], states[-1] = p, _bernoulli(rng, p)
        for l in range(L - 2, -1, -1):
            p = _sigmoid(states[l + 1] @ self.generative_weights_[l] + self.generative_biases_[l])
            probs[l], states[l] = p, _bernoulli(rng, p)
        return states, probs

    def _generative_logits(self, states: list) -> list:
        """Logits of the generative probabilities of every layer given the states above."""
        L = len(states)
        out = [states[l + 1] @ self.generative_weights_[l] + self.generative_biases_[l]
               for l in range(L - 1)]
        out.append(np.broadcast_to(self.generative_biases_[-1], states[-1].shape))
        return out

    # -- learning --------------------------------------------------------------------
    def wake_step(self, X: Any, random_state: Any = None) -> Phase:
        """One wake step on the rows of X: recognition sample bottom-up, then every
        generative synapse (and generative bias) learns by eq. 7. While ``n_updates_ <
        warmup`` only the synapses into the visible layer learn (rate 0 above). Returns
        the Phase."""
        self._check_fitted()
        X = self._check_X(X)
        rng = self._random(random_state)
        rule = get_rule("wake-sleep")
        states, _ = self._up(X, rng)
        logits = self._generative_logits(states)
        probs = [_sigmoid(x) for x in logits]
        n, L = len(X), len(states)
        lr = [float(r) / n for r in self._wake_lr]
        if self.n_updates_ < self._warmup:          # the hidden layers' generative model is fixed
            lr[1:] = [0.0] * (L - 1)
        for l in range(L - 1):
            pre = np.hstack([states[l + 1], _ones(n)])
            dW = rule.batched(pre, states[l], "wake", lr[l], post_prob=probs[l])
            self.generative_weights_[l] += dW[:-1]
            self.generative_biases_[l] += dW[-1]
        self.generative_biases_[-1] += rule.batched(_ones(n), states[-1], "wake", lr[-1],
                                                    post_prob=probs[-1])[0]
        return Phase("wake", states, probs, lr)

    def sleep_step(self, n: int, random_state: Any = None) -> Phase:
        """One sleep step: ``n`` fantasies drawn top-down from the generative model,
        then every recognition synapse (and recognition bias) learns by eq. 11."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ParameterError(f"sleep_step: n must be a positive integer, got {n!r}")
        rng = self._random(random_state)
        rule = get_rule("wake-sleep")
        states, _ = self._down(int(n), rng)
        lr = [float(r) / n for r in self._sleep_lr]
        probs: list = [None]
        for l, (W, c) in enumerate(zip(self.recognition_weights_, self.recognition_biases_)):
            q = _sigmoid(states[l] @ W + c)
            probs.append(q)
            dW = rule.batched(np.hstack([states[l], _ones(n)]), states[l + 1], "sleep", lr[l + 1],
                              post_prob=q)
            W += dW[:-1]
            c += dW[-1]
        return Phase("sleep", states, probs, lr)

    def _fit_batch(self, X: np.ndarray, rows: Any, at: Position | None) -> None:
        """One wake step on the rows, one sleep step of as many fantasies."""
        batch = X[rows]
        self.wake_step(batch, self.random_state_)
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

    def fit(self, X: Any, y: Any = None, X_valid: Any = None) -> HelmholtzMachine:
        """Fresh weights, then ``n_iter`` shuffled passes of wake-sleep over X; with
        ``n_restarts``, the restart that scores best on ``X_valid`` (default ``X``).

        X is a (cases, visible units) array of 0/1 states, or a Dataset with ``data``
        and ``names`` (the names become the visible unit names)."""
        return super().fit(X, X_valid=X_valid)

    def _held_out_score(self, X: Any) -> float:
        """The restarts' criterion: the importance-sampled mean log-likelihood of ``X``
        (nats), 100 samples per case from a Generator seeded 0 (common to every candidate)."""
        return float(self.log_likelihood_is(X, 100, random_state=np.random.default_rng(0)).mean())

    def _begin_fit(self, X: Any) -> np.ndarray:
        self._validate()
        self.random_state_ = check_random_state(self.random_state)
        names = getattr(X, "names", None)
        self.__dict__.pop("generative_biases_", None)
        self.visible_names_ = None
        X = self._check_X(X)
        self._initialise(self.random_state_)
        self._set_names(names)
        self._n_epochs, self._batch_rows = int(self.n_iter), int(self.batch_size)
        self._clock = time.perf_counter()
        return X

    def partial_fit(self, X: Any, y: Any = None) -> HelmholtzMachine:
        """One pass of wake-sleep over X in order (weights created on the first call)."""
        if "generative_biases_" not in self.__dict__:
            self._validate()
            self.random_state_ = check_random_state(self.random_state)
            X_checked = self._check_X(X)
            self._initialise(self.random_state_)
            self._set_names(getattr(X, "names", None))
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

    def _set_names(self, names: Any) -> None:
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != self.generative_biases_[0].size:
                raise ParameterError(f"{len(names)} visible names for "
                                     f"{self.generative_biases_[0].size} visible units")
            self.visible_names_ = names

    # -- generation and recognition --------------------------------------------------
    def sample(self, n: int, all_layers: bool = False, random_state: Any = None):
        """``n`` fantasies from the generative model (ancestral, top-down): an int8
        array (n, visible units), or with ``all_layers`` a list of every layer's states,
        layer 0 first."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ParameterError(f"sample: n must be a non-negative integer, got {n!r}")
        states, _ = self._down(int(n), self._random(random_state))
        states = [s.astype(np.int8) for s in states]
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
            return self._up(X, self._random(random_state))[1]
        out, a = [], X
        for W, c in zip(self.recognition_weights_, self.recognition_biases_):
            a = _sigmoid(a @ W + c)
            out.append(a)
        return out

    def transform(self, X: Any) -> np.ndarray:
        """The deterministic recognition probabilities of all hidden layers, side by
        side: shape (cases, hidden units), layer 1 first."""
        return np.hstack(self.recognize(X))

    # -- quality ---------------------------------------------------------------------
    def _log_weights(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``log p(x, h) - log q(h | x)`` for one recognition sample h per row."""
        states, probs = self._up(X, rng)
        logits = self._generative_logits(states)
        log_p = sum(_log_bernoulli(s, x) for s, x in zip(states, logits))
        log_q = 0.0
        for l, (W, c) in enumerate(zip(self.recognition_weights_, self.recognition_biases_)):
            log_q = log_q + _log_bernoulli(states[l + 1], states[l] @ W + c)
        return log_p - log_q

    def log_importance_weights(self, X: Any, n_samples: int = 100,
                               random_state: Any = None) -> np.ndarray:
        """``log w_k = log p(x, h_k) - log q(h_k | x)`` with ``h_k`` drawn from the
        recognition model, shape (cases, n_samples). ``mean_k w_k`` is an unbiased
        estimate of ``p(x)``; ``-mean_k log w_k`` estimates the free energy of eq. 3.8."""
        self._check_fitted()
        X = self._check_X(X)
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ParameterError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = self._random(random_state)
        K = int(n_samples)
        out = np.empty((len(X), K))
        rows = max(1, _CELLS // (K * max(self.sizes_)))
        for start in range(0, len(X), rows):
            chunk = X[start:start + rows]
            rep = np.repeat(chunk, K, axis=0)
            out[start:start + len(chunk)] = self._log_weights(rep, rng).reshape(len(chunk), K)
        return out

    def log_likelihood_is(self, X: Any, n_samples: int = 100, random_state: Any = None) -> np.ndarray:
        """Importance-sampled ``log p(x)`` in nats for each row, with the recognition
        model as proposal: ``log (1/K) sum_k p(x, h_k) / q(h_k | x)``, via log-sum-exp.
        A consistent estimate; its expectation is a lower bound that tightens with K."""
        return _logmeanexp(self.log_importance_weights(X, n_samples, random_state), axis=1)

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
        """``log p(x)`` in nats for each row, summing ``p(x, h)`` over every hidden
        configuration (log-sum-exp). Needs at most MAX_EXACT_HIDDEN hidden units."""
        self._check_fitted()
        X = self._check_X(X)
        sizes = self.sizes_
        H = sum(sizes[1:])
        if H > MAX_EXACT_HIDDEN:
            raise InferenceError(f"exact_log_likelihood enumerates 2^H hidden states: this machine has "
                                 f"H = {H} hidden units ({'-'.join(map(str, sizes))}), over the limit "
                                 f"of {MAX_EXACT_HIDDEN}; use log_likelihood_is")
        n = len(X)
        total = np.full(n, -np.inf)
        chunk = max(1, min(1 << H, _CELLS // max(n, sizes[0], 1)))
        bounds = np.cumsum([0] + sizes[1:])
        for start in range(0, 1 << H, chunk):
            k = np.arange(start, min(start + chunk, 1 << H), dtype=np.int64)[:, None]
            S = ((k >> np.arange(H - 1, -1, -1)) & 1).astype(np.float64)
            hidden = [S[:, bounds[i]:bounds[i + 1]] for i in range(len(sizes) - 1)]
            # log p(h): every hidden layer given the one above, the top from its prior
            logits = self._generative_logits([np.zeros((len(S), sizes[0]))] + hidden)
            log_ph = sum(_log_bernoulli(s, x) for s, x in zip(hidden, logits[1:]))
            A = logits[0]                                             # (configs, visible)
            ll = X @ A.T - np.logaddexp(0.0, A).sum(axis=1) + log_ph  # (cases, configs)
            m = ll.max(axis=1)
            total = np.logaddexp(total, m + np.log(np.exp(ll - m[:, None]).sum(axis=1)))
        return total

    # -- networks and files ----------------------------------------------------------
    def to_network(self, visible_names: Sequence[str] | None = None, name: str = "helmholtz_machine",
                   description: str | None = None) -> Network:
        """The machine as a Network: generative synapses as ``directed`` edges (layer l+1
        to layer l), recognition synapses as ``recognition`` edges (layer l to l+1);
        unit ``bias`` = generative bias, ``recognition_bias`` = recognition bias (None for
        visible units), ``layer`` = layer index. Hidden units are named ``h{layer}_{i}``;
        visible units ``visible_names`` (default: ``visible_names_`` or ``v{i}``)."""
        self._check_fitted()
        sizes = self.sizes_
        names = visible_names if visible_names is not None else self.visible_names_
        if names is None:
            names = [f"v{i}" for i in range(sizes[0])]
        names = list(names)
        if len(names) != sizes[0]:
            raise ParameterError(f"to_network: {len(names)} visible names for {sizes[0]} visible units")
        layers = [names] + [[f"h{l}_{i}" for i in range(n)] for l, n in enumerate(sizes) if l > 0]
        units = [Unit(v, float(self.generative_biases_[0][i]), "visible", 0)
                 for i, v in enumerate(layers[0])]
        for l in range(1, len(sizes)):
            units += [Unit(h, float(self.generative_biases_[l][i]), "hidden", l,
                           float(self.recognition_biases_[l - 1][i])) for i, h in enumerate(layers[l])]
        edges = []
        for l in range(len(sizes) - 1):
            G = self.generative_weights_[l]
            edges += [Edge(a, b, float(G[i, j]), "directed") for i, a in enumerate(layers[l + 1])
                      for j, b in enumerate(layers[l])]
        for l in range(len(sizes) - 1):
            R = self.recognition_weights_[l]
            edges += [Edge(a, b, float(R[i, j]), "recognition") for i, a in enumerate(layers[l])
                      for j, b in enumerate(layers[l + 1])]
        if description is None:
            description = (f"Helmholtz machine {'-'.join(map(str, sizes))} (Dayan et al. 1995): "
                           "directed edges are the generative model, recognition edges the "
                           "bottom-up recognition model, trained by wake-sleep")
        return Network(units, edges, name=name, description=description)

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
        where = f"network {net.name!r}"
        by_layer: dict[int, list[Unit]] = {}
        for u in net.unit_list():
            if u.layer is None:
                raise ValidationError(f"{where}: unit {u.name!r} has no layer; a Helmholtz machine "
                                      "needs layer = 0 for visible units and 1, 2, ... above")
            by_layer.setdefault(u.layer, []).append(u)
        L = max(by_layer) + 1
        if L < 2 or sorted(by_layer) != list(range(L)):
            raise ValidationError(f"{where}: layers must be 0 (visible), 1, ..., with none missing; "
                                  f"found {sorted(by_layer)}")
        for u in net.unit_list():
            if (u.layer == 0) != (u.role == "visible"):
                raise ValidationError(f"{where}: unit {u.name!r} is {u.role} in layer {u.layer}; "
                                      "layer 0 must hold exactly the visible units")
            if u.layer == 0 and u.recognition_bias is not None:
                raise ValidationError(f"{where}: visible unit {u.name!r} has a recognition_bias; "
                                      "no recognition synapse reaches the visible layer")
            if u.layer > 0 and u.recognition_bias is None:
                raise ValidationError(f"{where}: hidden unit {u.name!r} has no recognition_bias")
        layer_of = {u.name: u.layer for u in net.unit_list()}
        for e in net.edges:
            la, lb = layer_of[e.source], layer_of[e.target]
            if e.kind == "symmetric":
                raise ValidationError(f"{where}: symmetric edge {e.source} -- {e.target}; a Helmholtz "
                                      "machine has only directed (generative) and recognition edges")
            if e.kind == "directed" and la != lb + 1:
                raise ValidationError(f"{where}: directed edge {e.source} -> {e.target} goes from layer "
                                      f"{la} to {lb}; generative edges go from layer l+1 to layer l")
            if e.kind == "recognition" and lb != la + 1:
                raise ValidationError(f"{where}: recognition edge {e.source} -> {e.target} goes from "
                                      f"layer {la} to {lb}; recognition edges go from layer l to l+1")
        sizes = [len(by_layer[l]) for l in range(L)]
        hm = cls(layer_sizes=tuple(sizes), **params)
        hm._validate()
        hm.random_state_ = check_random_state(hm.random_state)
        G, R = [], []
        for l in range(L - 1):
            lower, upper = by_layer[l], by_layer[l + 1]
            g = np.empty((len(upper), len(lower)))
            r = np.empty((len(lower), len(upper)))
            for i, a in enumerate(upper):
                for j, b in enumerate(lower):
                    if not net.graph.has_edge(a.name, b.name):
                        raise ValidationError(f"{where}: missing generative (directed) edge "
                                              f"{a.name} -> {b.name}")
                    if not net.recognition.has_edge(b.name, a.name):
                        raise ValidationError(f"{where}: missing recognition edge {b.name} -> {a.name}")
                    g[i, j] = net.weight(a.name, b.name)
                    r[j, i] = net.weight(b.name, a.name, recognition=True)
            G.append(g)
            R.append(r)
        hm.generative_weights_ = G
        hm.recognition_weights_ = R
        hm.generative_biases_ = [np.array([u.bias for u in by_layer[l]]) for l in range(L)]
        hm.recognition_biases_ = [np.array([u.recognition_bias for u in by_layer[l]])
                                  for l in range(1, L)]
        hm.n_iter_ = 0
        hm.n_updates_ = 0
        hm.visible_names_ = [u.name for u in by_layer[0]]
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
        L = len(hm._check_sizes())
        hm.random_state_ = check_random_state(hm.random_state)
        try:
            hm.generative_weights_ = [arrays[f"G{l}"] for l in range(L - 1)]
            hm.generative_biases_ = [arrays[f"g{l}"] for l in range(L)]
            hm.recognition_weights_ = [arrays[f"R{l}"] for l in range(L - 1)]
            hm.recognition_biases_ = [arrays[f"r{l}"] for l in range(L - 1)]
        except KeyError as exc:
            raise ParameterError(f"no array {exc} for layer_sizes {hm.layer_sizes!r}") from None
        if hm.sizes_ != hm._check_sizes():
            raise ParameterError(f"arrays of layers {hm.sizes_} where layer_sizes is {hm.layer_sizes!r}")
        hm.n_iter_, hm.n_updates_ = fitted.get("n_iter_", 0), fitted.get("n_updates_", 0)
        hm.visible_names_ = fitted.get("visible_names_")
        return hm


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
    """For every hidden unit, the difference between its mean recognition probability
    on the cases of one shift direction and on those of the other; returns the unit
    with the largest absolute difference (every hidden layer is searched).

    ``labels`` must take exactly two values (the shift directions; default: the
    ``labels`` of a Dataset ``X``); the difference is
    ``mean q | first - mean q | second`` in sorted order of the values. With
    ``stochastic`` (default) each layer is driven by sampled states of the layer below,
    as in the recognition model proper; otherwise by the deterministic pass."""
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
