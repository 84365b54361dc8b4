"""A deep Boltzmann machine (Salakhutdinov and Hinton 2009; Hinton's review, sections 8-9).

Layers ``h_0 = v, h_1, ..., h_L`` of binary units, symmetric weights ``W_l`` between
consecutive layers only, and the energy (eq. 1 of the 2009 paper)

    E(v, h) = - sum_l h_{l-1} W_l h_l - sum_l b_l h_l,

so that given its two neighbours a layer's units are independent,
``p(h_l = 1 | h_{l-1}, h_{l+1}) = sigmoid(h_{l-1} W_l + W_{l+1} h_{l+1} + b_l)``: the odd
layers given the even ones, and the even ones given the odd, are each one block.

* **Pretraining** (review, section 8; 2009, section 3.1): a stack of RBMs, each by the CD
  kernel of :mod:`neurosim.compiled.bipartite` (``dbn_train.train_rbm_layer``). The first
  RBM's hidden units see twice its weights and hidden biases (``CD(up=2)``: the visible
  units counted twice, standing in for the missing layer above), the last RBM's visible
  units twice its weights and visible biases (``CD(down=2)``), and the RBMs in between are
  ordinary RBMs whose weights and biases are halved when they are composed, so that every
  layer of the DBM averages the input of the two RBMs that contain it. A layer's bias is the
  sum of its halves: the hidden bias of the RBM below plus the visible bias of the RBM above.
* **Inference** (2009, section 3; eq. 6): mean-field fixed-point equations for a fully
  factorial ``q(h) = prod q_lj``, ``q_l = sigmoid(q_{l-1} W_l + q_{l+1} W_{l+1}^T + b_l)``,
  odd layers then even ones (each half exact coordinate ascent of the bound), started from
  a bottom-up pass with doubled input (``mf.m``), optionally damped.
* **Joint training** (review, section 9; 2009, section 2.2): the data-dependent statistics
  from mean-field, the model's from persistent Markov chains (compiled :class:`Chains` on
  the machine's Network, even then odd layers per step) that continue after every weight
  change. Each weight joins an odd and an even layer, so the chains' statistic is the even
  layer's sampled states times the odd layer's exact conditional probabilities.
* **Evaluation**: ``log Z`` by AIS with the odd layers summed out (2009, section 4.2);
  ``log Z`` and ``log p(v)`` by enumeration of the even layers on tiny
  machines, the odd layers summed out in closed form (tested against
  :mod:`neurosim.inference.exact` on :meth:`to_network`), and the variational lower bound
  ``log p(v) >= -E(v, q) + H(q) - log Z`` (2009, eq. 5) with the mean-field ``q``.

The published recipe (Salakhutdinov's ``rbm.m``, ``rbm_l2.m``, ``dbm_mf.m``, ``mf.m``) and
what is not built yet: docs/machines/dbm.md.

>>> import numpy as np
>>> X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(float)
>>> dbm = DeepBoltzmannMachine((6, 4, 3), n_iter=2, pretrain_epochs=2, batch_size=10, n_chains=10,
...                            random_state=0).fit(X)
>>> [q.shape for q in dbm.mean_field(X[:5])]
[(5, 4), (5, 3)]
>>> bool((dbm.log_prob_bound(X[:5]) <= dbm.log_prob(X[:5]) + 1e-6).all())
True
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from ..compiled import bipartite, compile
from ..compiled.arrays import DTYPES, Backend, NumpyOps, TorchOps
from ..compiled.arrays import backend as array_backend
from ..compiled.bipartite import NUMPY, SPARSITY_DECAY, Block, Statistics
from ..compiled.sampler import Chains
from ..errors import DivergenceError, InferenceError, ParameterError, ValidationError
from ..inference import exact
from ..network import Network
from ..numerics import bernoulli, logsumexp, sigmoid, softplus
from ..population import Population, Projection
from .base import (BINARY, UNIT, Machine, Position, check_number, check_random_state, check_rows, first_non_finite,
                   valid_random_state)
from .ais import AISResult, base_rate_biases, beta_schedule, check_runs, estimate
from .dbn_train import RBM_M, Recipe, train_rbm_layer

__all__ = ["DeepBoltzmannMachine", "MF_TOLERANCE", "layer_input", "mean_field_passes", "odd_summed_out",
           "check_layers", "check_products", "ais_log_partition"]

MF_TOLERANCE = 1e-7      # mf.m: stop when every layer's mean absolute change is below this
CHUNK = 1 << 14           # states enumerated at a time
CD_JOINT = bipartite.CD()  # eq. 6 of each weight block, the phases of unequal size (minibatch, chains)
NEGATIVE_PHASES = ("states", "probabilities")


def check_layers(layers: Any) -> tuple[int, ...]:
    """``layers`` as a tuple of at least two positive integers (visible, hidden...), else
    a ParameterError naming the entry."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, (Sequence, np.ndarray)) or len(layers) < 2:
        raise ParameterError(f"layers must be a sequence of at least two sizes (visible, hidden...), "
                             f"got {layers!r}")
    return tuple(check_number(f"layers[{i}]", n, 1, integer=True) for i, n in enumerate(layers))


def layer_input(H: list[np.ndarray], l: int, W: list[np.ndarray], b: list[np.ndarray],
                ops: NumpyOps | TorchOps = NUMPY.ops) -> np.ndarray:
    """Total input of layer ``l`` given the states (or probabilities) ``H`` of its
    neighbours: ``H[l-1] W_l + H[l+1] W_{l+1}^T + b_l`` (eq. 6 of the 2009 paper); a
    neighbour given as None is left out (its input held in ``b``, as ``mf.m``'s ``big_bias``).
    The products by ``ops`` (:mod:`neurosim.compiled.arrays`: numpy, or torch in its
    product dtype), a new array."""
    x = b[l] + (ops.dot(H[l - 1], W[l - 1]) if l > 0 and H[l - 1] is not None else 0)
    return x + ops.dot(H[l + 1], W[l].T) if l < len(W) else x


def mean_field_passes(update: Callable[[int], float], layers: Sequence[int], iterations: int) -> int:
    """``mf.m``'s schedule: up to ``iterations`` passes, each ``update(l)`` (one layer's
    fixed-point equation, returning its mean absolute change) for the odd ``layers``, then
    the even ones; stop after a pass in which every change is below ``MF_TOLERANCE``.
    Returns the passes made."""
    order = [l for l in layers if l % 2] + [l for l in layers if l % 2 == 0]
    for k in range(iterations):
        if all([update(l) < MF_TOLERANCE for l in order]):  # a list: every layer updates
            return k + 1
    return iterations


def odd_summed_out(H: list[np.ndarray | None], W: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """``log sum_{odd layers} exp(-E)`` for each row of the even layers' states ``H[0],
    H[2], ...`` (the odd entries unused): given the even layers the odd units are
    independent, so ``sum_{l even} b_l h_l + sum_{l odd} sum_j softplus(x_lj)``, ``x_l``
    from :func:`layer_input`."""
    even = range(0, len(b), 2)
    return (sum(H[l] @ b[l] for l in even)
            + sum(softplus(layer_input(H, l, W, b)).sum(axis=1) for l in range(1, len(b), 2)))


def check_products(dtype: Any) -> str:
    """The products' dtype of the ``dtype`` parameter: ``"float32"`` for None, float32 or
    ``"float32"``, ``"bfloat16"`` (torch), else a ParameterError naming the value."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    if dtype is None or dtype is np.float32:
        return "float32"
    raise ParameterError(f"dtype must be None, 'float32' or 'bfloat16' (backend='torch'; the parameters are "
                         f"float32 either way), got {dtype!r}")


def ais_log_partition(W: list[np.ndarray], b: list[np.ndarray], rng: np.random.Generator, n_runs: int = 100,
                      n_betas: int = 14500, data: np.ndarray | None = None, dtype=np.float32,
                      start: list[np.ndarray] | None = None) -> AISResult:
    """``log Z`` of the DBM ``(W, b)`` by annealed importance sampling with the odd layers
    summed out (Salakhutdinov and Hinton 2009, section 4.2; with one hidden layer the
    RBM's of Salakhutdinov and Murray 2008, which :mod:`~neurosim.machines.ais` runs
    here): from the base rate A (visible biases ``b_A`` of the data's pixel means, every
    other parameter 0; ``log Z_A = sum softplus(b_A) + (hidden units) log 2``) through

        log p*_beta(v, h_2, ...) = (1 - beta) b_A.v + beta sum_{l even} b_l h_l
                                   + sum_{l odd} sum_j softplus(beta x_lj),

    each run stepping by one Gibbs alternation (odd layers, then even) that leaves
    ``p_beta`` invariant. Sampling in ``dtype``, the log weights in float64.

    ``start``: reverse AIS (Neal 2001, section 6; Burda, Grosse and Salakhutdinov 2015):
    one run from each row of the even layers' states ``start[0], start[2], ...`` (samples
    of the model B; odd entries unused), through the same distributions from ``beta = 1``
    down to 0. Its weights estimate ``Z_A / Z_B`` without bias if the rows are exact
    samples, so ``log Z_B = log Z_A - log mean(w)`` is a stochastic upper bound on
    ``log Z`` (Jensen), against forward AIS's stochastic lower bound."""
    check_runs(rng, n_runs if start is None else len(start[0]))
    b_a = base_rate_biases(data, len(b[0]))
    betas = beta_schedule(n_betas)
    Wf, bf, baf = [w.astype(dtype) for w in W], [x.astype(dtype) for x in b], b_a.astype(dtype)
    odd, even = range(1, len(b), 2), range(0, len(b), 2)

    def draw(x: np.ndarray, uniform=dtype) -> np.ndarray:
        return (rng.random(x.shape, dtype=uniform) < sigmoid(x)).astype(dtype)

    if start is None:
        H: list = [draw(np.broadcast_to(b_a if l == 0 else np.zeros(len(x)), (n_runs, len(x))), np.float64)
                   if l % 2 == 0 else None for l, x in enumerate(b)]   # as the RBM's: float64 uniforms
    else:
        H, betas = [np.asarray(start[l], dtype) if l % 2 == 0 else None for l in range(len(b))], betas[::-1]
    log_w = np.zeros(len(H[0]))
    for k, (cur, beta) in enumerate(zip(betas[:-1], betas[1:]), start=2):
        X = {l: layer_input(H, l, Wf, bf).astype(np.float64) for l in odd}
        linear = sum(H[l].astype(np.float64) @ b[l] for l in even) - H[0].astype(np.float64) @ b_a
        log_w += (beta - cur) * linear + sum((softplus(beta * X[l]) - softplus(cur * X[l])).sum(axis=1)
                                             for l in odd)
        if k < len(betas):                              # a transition leaving p_beta invariant
            for l in odd:
                H[l] = draw(beta * X[l].astype(dtype))
            for l in even:
                x = beta * layer_input(H, l, Wf, bf)
                H[l] = draw(x + (1 - beta) * baf if l == 0 else x)
    log_z_a = float(softplus(b_a).sum() + sum(len(x) for x in b[1:]) * np.log(2))
    if start is None:
        return estimate(log_w, log_z_a)
    reverse = estimate(log_w, -log_z_a)                 # log (Z_A / Z_B) = -log Z_A + log mean(w)
    return AISResult(-reverse.log_z, reverse.log_z_std, log_w)


def _stacked(buf: dict, Q_lo: Any, S_lo: Any, Q_hi: Any, S_hi: Any) -> Statistics:
    """A block's statistics for :func:`~neurosim.compiled.bipartite.change`, stacked in its
    buffers ``V``, ``H``: the positive phase ``(Q_lo, Q_hi)`` (mean-field, the layers below
    and above) in the first rows, the negative ``(S_lo, S_hi)`` (the chains) after them."""
    n, m = len(Q_lo), len(S_lo)
    V, H = buf["V"][:n + m], buf["H"][:n + m]
    V[:n], V[n:], H[:n], H[n:] = Q_lo, S_lo, Q_hi, S_hi
    return Statistics(V, None, H, n)


def _entropy(q: np.ndarray) -> np.ndarray:
    """``H(q) = - sum_j q_j log q_j + (1 - q_j) log(1 - q_j)`` of each row (0 log 0 = 0)."""
    q = q.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q), 0.0) + np.where(q < 1, (1 - q) * np.log1p(-q), 0.0)
    return -terms.sum(axis=1)


class DeepBoltzmannMachine(Machine):
    """A deep Boltzmann machine (module doc): greedy pretraining with doubled inputs, then
    joint training by mean-field and persistent chains.

    Parameters
    ----------
    layers : sequence of int, default (784, 500, 1000)
        Units per layer, visible first (the paper's MNIST DBM: 784-500-1000).
    learning_rate, weight_decay : float, default 0.001, 0.0002
        Joint training (``dbm_mf.m``): eq. 6 per weight block, weight cost on weights only.
    learning_rate_decay, min_learning_rate : float, default 1.000015, 0.0001
        ``dbm_mf.m``: the learning rate divided by ``learning_rate_decay`` at every update
        of joint training, down to ``min_learning_rate`` (1: constant).
    momentum, final_momentum, momentum_switch : default 0.5, 0.9, 5
        The momentum of both stages, ``final_momentum`` from epoch ``momentum_switch`` on.
    batch_size : int, default 100
    n_iter : int, default 10
        Epochs of joint training; the minibatches in a new random order every epoch.
    n_chains : int, default 100
        Persistent chains (``dbm_mf.m``: one per case of a minibatch).
    gibbs_steps : int, default 5
        Alternations (even layers, then odd) of the chains per weight update (``dbm_mf.m``: 5).
    mean_field_iterations : int, default 30
        Mean-field updates per minibatch at most (``mf.m``: 30, stopping at ``MF_TOLERANCE``).
    damping : float in [0, 1), default 0
        ``q <- damping q + (1 - damping) sigmoid(...)`` at every mean-field update.
    negative_phase : {"states", "probabilities"}, default "states"
        The chains' statistic of the even hidden layers: their sampled states (unbiased,
        with the odd layers' exact conditional probabilities), or ``dbm_mf.m``'s
        ``negpenprobs``: their probabilities given the odd layers' probabilities.
    sparsity_targets : sequence of float in (0, 1), one per hidden layer, or None (default)
        ``dbm_mf.m``'s sparsity penalty (targets 0.2, 0.1 there): see :meth:`_sparsity`.
    sparsity_cost : float, default 0.001
    pretrain_epochs : int, default 10
        Epochs of each pretraining RBM (0: no pretraining, random weights).
    pretrain_learning_rate, pretrain_weight_decay : float, default 0.05, 0.001
        The RBMs' CD-1 (``rbm.m``, ``rbm_l2.m``).
    pretrain_sampling : bool, default False
        ``rbm.m``, ``rbm_l2.m``: every RBM sees binary states drawn afresh at every
        minibatch, from the data (first RBM) or from the doubled-input probabilities of
        the layer below (the next ones), instead of the probabilities themselves.
    pretrain_cd_every : int, default 0
        ``rbm_l2.m``: the RBMs above the first run CD-k with ``k = ceil(epoch /
        pretrain_cd_every)`` at ``pretrain_learning_rate / k`` (0: CD-1 throughout).
    init_scale : float, default 0.001
        Initial weights ``init_scale N(0, 1)``, biases 0.
    warm_start : bool, default False
        ``fit`` starts joint training from the current weights and persistent chains (no
        pretraining, no initialisation): a pretrained machine's second stage.
    backend : {"numpy", "torch"}, default "numpy"
        The array library of training (:meth:`fit`: the pretraining RBMs, and joint
        training's mean-field, persistent chains and weight change); torch is imported only
        then (``pip install neurosim[torch]``) and draws from a ``torch.Generator`` seeded
        from ``random_state_`` at every update. The fitted arrays are numpy's either way;
        the other methods (mean-field, sampling, the bound, AIS) run on numpy.
    device : str, default "cpu"
        The torch device of training (``"cuda"`` on a GPU; each update then copies the
        parameters and the chains back to the host).
    dtype : None, "float32" or "bfloat16", default None
        The matrix products' type in training: float32 (None), or ``"bfloat16"``
        (``backend="torch"``; the cast policy of :mod:`neurosim.compiled.arrays`). The
        parameters are float32 either way.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
    verbose : int, default 0

    Attributes
    ----------
    weights_ : list of float32 arrays, ``weights_[l - 1]`` is ``W_l`` (n_{l-1} x n_l)
    biases_ : list of float32 arrays, ``biases_[l]`` is ``b_l``
    chains_ : float32 array (n_chains, sum(layers)): the persistent chains' states
    n_iter_ : int, epochs of joint training done
    """

    _FITTED = "weights_"
    _FITTED_META = ("n_iter_",)

    def __init__(self, layers: Sequence[int] = (784, 500, 1000), *, learning_rate: float = 0.001,
                 weight_decay: float = 0.0002, learning_rate_decay: float = 1.000015,
                 min_learning_rate: float = 0.0001, momentum: float = 0.5, final_momentum: float = 0.9,
                 momentum_switch: int = 5, batch_size: int = 100, n_iter: int = 10, n_chains: int = 100,
                 gibbs_steps: int = 5, mean_field_iterations: int = 30, damping: float = 0.0,
                 negative_phase: str = "states", sparsity_targets: Sequence[float] | None = None,
                 sparsity_cost: float = 0.001,
                 pretrain_epochs: int = 10, pretrain_learning_rate: float = 0.05,
                 pretrain_weight_decay: float = 0.001, pretrain_sampling: bool = False,
                 pretrain_cd_every: int = 0, init_scale: float = 0.001, warm_start: bool = False,
                 backend: str = "numpy", device: str = "cpu", dtype: str | None = None,
                 random_state: Any = None, verbose: int = 0) -> None:
        self.layers = layers
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.learning_rate_decay = learning_rate_decay
        self.min_learning_rate = min_learning_rate
        self.momentum = momentum
        self.final_momentum = final_momentum
        self.momentum_switch = momentum_switch
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.n_chains = n_chains
        self.gibbs_steps = gibbs_steps
        self.mean_field_iterations = mean_field_iterations
        self.damping = damping
        self.negative_phase = negative_phase
        self.sparsity_targets = sparsity_targets
        self.sparsity_cost = sparsity_cost
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_weight_decay = pretrain_weight_decay
        self.pretrain_sampling = pretrain_sampling
        self.pretrain_cd_every = pretrain_cd_every
        self.init_scale = init_scale
        self.warm_start = warm_start
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # -- parameters ----------------------------------------------------------------------
    def _validate(self) -> None:
        """Check every parameter; a bad one is named."""
        self._layers = check_layers(self.layers)
        for name in ("batch_size", "n_chains", "gibbs_steps", "mean_field_iterations"):
            check_number(name, getattr(self, name), 1, integer=True)
        for name in ("n_iter", "pretrain_epochs", "momentum_switch", "pretrain_cd_every"):
            check_number(name, getattr(self, name), 0, integer=True)
        for name in ("learning_rate", "pretrain_learning_rate", "init_scale", "min_learning_rate"):
            check_number(name, getattr(self, name), 0.0, low_open=True)
        check_number("learning_rate_decay", self.learning_rate_decay, 1.0)
        for name in ("warm_start", "pretrain_sampling"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("weight_decay", "pretrain_weight_decay", "sparsity_cost"):
            check_number(name, getattr(self, name), 0.0)
        if self.negative_phase not in NEGATIVE_PHASES:
            raise ParameterError(f"negative_phase must be one of {NEGATIVE_PHASES}, got {self.negative_phase!r}")
        self._targets = self._check_targets()
        for name in ("momentum", "final_momentum", "damping"):
            check_number(name, getattr(self, name), 0.0, 1.0, high_open=True)
        self._products = check_products(self.dtype)
        if not valid_random_state(self.random_state):
            check_random_state(self.random_state)          # raises, naming the value

    def _check_targets(self) -> tuple[float, ...] | None:
        """``sparsity_targets``: None, or one probability in (0, 1) per hidden layer."""
        t = self.sparsity_targets
        if t is None:
            return None
        n = len(self._layers) - 1
        if isinstance(t, (str, bytes)) or not isinstance(t, (Sequence, np.ndarray)) or len(t) != n:
            raise ParameterError(f"sparsity_targets must give one target per hidden layer ({n}), got {t!r}")
        return tuple(check_number(f"sparsity_targets[{i}]", x, 0.0, 1.0, low_open=True, high_open=True)
                     for i, x in enumerate(t))

    def _validate_training(self) -> None:
        """:meth:`_validate` and the training backend (``backend``, ``device``, the products'
        dtype): checked, and torch imported, only when training asks for it, so that a
        machine trained on torch loads and runs on numpy where torch is absent."""
        self._validate()
        self._backend = array_backend(self.backend, self.device, self._products)

    def _ready(self) -> np.random.Generator:
        """Fitted and valid; the Generator ``random_state_`` (made once)."""
        self._check_fitted()
        self._validate()
        if "random_state_" not in self.__dict__:
            self.random_state_ = check_random_state(self.random_state)
        return self.random_state_

    def _check_X(self, X: Any, what: str = "X", values: tuple = UNIT) -> np.ndarray:
        """``X`` as float32 rows of ``layers[0]`` columns, values in [0, 1] (``BINARY``: 0 or 1)."""
        A = check_rows(X, what, np.float32, self._layers[0], values=values, owner="DeepBoltzmannMachine")
        return A.toarray() if hasattr(A, "toarray") else A

    # -- the energy and its conditionals -------------------------------------------------
    def _start(self, V: Any, W: list, b: list, ops: NumpyOps | TorchOps) -> list:
        """``mf.m``'s start: a bottom-up pass, each layer below the top with doubled input
        from below (standing in for the layer above), ``q_l = sigmoid(2 q_{l-1} W_l + b_l)``."""
        Q, L = [V], len(W)
        for l in range(1, L + 1):
            Q.append(ops.sigmoid_((2.0 if l < L else 1.0) * ops.dot(Q[-1], W[l - 1]) + b[l]))
        return Q

    def mean_field(self, X: Any, iterations: int | None = None, damping: float | None = None) -> list[np.ndarray]:
        """The mean-field posterior ``q_l`` of every hidden layer given the rows of ``X``
        (visible probabilities allowed): at most ``iterations`` passes (default
        ``mean_field_iterations``) of the fixed-point equations ``q_l = sigmoid(q_{l-1} W_l
        + q_{l+1} W_{l+1}^T + b_l)``, odd layers then even, damped by ``damping`` (default
        the parameter), until every layer's mean absolute change is below ``MF_TOLERANCE``."""
        self._ready()
        iterations = check_number("iterations", self.mean_field_iterations if iterations is None else iterations,
                                  1, integer=True)
        damping = check_number("damping", self.damping if damping is None else damping, 0.0, 1.0, high_open=True)
        return self._mean_field(self._check_X(X), iterations, damping)[1:]

    def _mean_field(self, V: Any, iterations: int, damping: float, be: Backend = NUMPY) -> list:
        """[V, q_1, ..., q_L] (see :meth:`mean_field`); the visible input to ``h_1``
        computed once. On the backend ``be`` (``V`` its array): the parameters wrapped as
        its arrays, the weights in its product dtype (numpy: the arrays themselves)."""
        ops, (W, b) = be.ops, self._parameters(be)
        Q = self._start(V, W, b, ops)
        H = [None] + Q[1:]
        b = [b[0], b[1] + ops.dot(V, W[0])] + b[2:]

        def update(l: int) -> float:
            new = ops.sigmoid_(layer_input(H, l, W, b, ops))
            if damping:
                new = damping * H[l] + (1 - damping) * new
            change, H[l] = abs(new - H[l]).mean(), new
            return change  # compared with MF_TOLERANCE in the layer's dtype

        mean_field_passes(update, range(1, len(H)), iterations)
        return [V] + H[1:]

    def _parameters(self, be: Backend) -> tuple[list, list]:
        """The weights and biases as the arrays of ``be`` (numpy: themselves; torch: views on
        the CPU), the weights in its product dtype (a copy for bfloat16)."""
        return [be.ops.lowered(be.asarray(W)) for W in self.weights_], [be.asarray(x) for x in self.biases_]

    def transform(self, X: Any) -> np.ndarray:
        """The mean-field posteriors of every hidden layer side by side, (n, n_1 + ... + n_L)."""
        return np.hstack(self.mean_field(X))

    # -- pretraining ----------------------------------------------------------------------
    def _recipe(self) -> Recipe:
        """The pretraining RBMs' settings as the DBN trainer's recipe (its layers unused),
        on the training backend."""
        return Recipe(batch_size=int(self.batch_size), pretrain_epochs=int(self.pretrain_epochs),
                      learning_rate=float(self.pretrain_learning_rate),
                      weight_decay=float(self.pretrain_weight_decay),
                      momentum=(float(self.momentum), float(self.final_momentum)),
                      momentum_switch=int(self.momentum_switch), init_scale=float(self.init_scale),
                      backend=self.backend, device=self.device, dtype=self._products)

    def _pretrain(self, X: np.ndarray, rng: np.random.Generator) -> None:
        """Greedy RBMs with doubled inputs, composed into the DBM (module doc): RBM ``r``
        of ``L`` trained with ``up = 2`` if it has an RBM above, ``down = 2`` if it is the
        last of several, and halved when composed if it has RBMs on both sides; each next
        RBM's data are the hidden probabilities with that doubled input (with
        ``pretrain_sampling``, binary states drawn from them at every minibatch)."""
        L, r, data = len(self._layers) - 1, self._recipe(), X
        draw = bernoulli if self.pretrain_sampling else None
        self.weights_, self.biases_ = [], [np.zeros(n, np.float32) for n in self._layers]
        for k in range(1, L + 1):
            cd = replace(RBM_M, up=2.0 if k == 1 < L else 1.0, down=2.0 if k == L > 1 else 1.0)
            p = train_rbm_layer(data, self._layers[k], r, rng, cd=cd, draw=draw,
                                cd_every=int(self.pretrain_cd_every) if k > 1 else 0)
            half = np.float32(0.5 if 1 < k < L else 1.0)
            self.weights_.append(half * p["W"])
            self.biases_[k - 1] += half * p["b"]
            self.biases_[k] += half * p["c"]
            data = sigmoid(cd.up * (data @ p["W"] + p["c"]))

    def _initialize(self, rng: np.random.Generator) -> None:
        """Weights ``init_scale N(0, 1)``, biases 0 (no pretraining)."""
        self.weights_ = [(self.init_scale * rng.standard_normal((a, b))).astype(np.float32)
                         for a, b in zip(self._layers[:-1], self._layers[1:])]
        self.biases_ = [np.zeros(n, np.float32) for n in self._layers]

    # -- the persistent chains --------------------------------------------------------------
    def _slices(self) -> list[slice]:
        """Each layer's columns in the Network's unit order."""
        ends = np.cumsum((0,) + self._layers)
        return [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]

    def _new_chains(self, m: int, rng: np.random.Generator, init: np.ndarray | None = None,
                    backend: Backend | None = None) -> tuple[Chains, tuple]:
        """``m`` chains on the compiled Network of the current weights (uniform random
        states, or ``init``) on ``backend`` (None: numpy), and its steps: the even layers,
        the odd layers."""
        net = self.to_network()
        chains = Chains(compile(net, dtype=np.float32), rng, m, init=init, count=False, backend=backend)
        names = [p.units for p in net.populations]
        return chains, tuple(chains.net.step([u for l in range(parity, len(names), 2) for u in names[l]])
                             for parity in (0, 1))

    def _sync(self, chains: Chains) -> None:
        """The current weights and biases into the chains' compiled net, in place (both
        directions of each symmetric block), and its version up."""
        net, cols = chains.net, self._slices()
        for l, W in enumerate(self.weights_, start=1):
            net.W[cols[l - 1], cols[l]] = W
            net.W[cols[l], cols[l - 1]] = W.T
        net.b[:] = np.concatenate(self.biases_)
        net.set_weights()

    def _alternate(self, chains: Chains, plan: tuple, steps: int) -> list[np.ndarray]:
        """``steps`` Gibbs alternations (``plan``: even layers given odd, then odd given
        even) of every chain; per layer, the even layers' states and the odd layers'
        conditional probabilities given them (the chains' statistics, Rao-Blackwellised),
        or with ``negative_phase="probabilities"`` the even hidden layers' probabilities
        given the odd layers' probabilities (``dbm_mf.m``); arrays of the chains' backend."""
        even, odd = plan
        for _ in range(steps):
            chains.update(even)
            p = chains.update(odd)
        S = chains.xp.copy(chains.state)
        S[:, odd.units] = p
        S = [S[:, c] for c in self._slices()]
        if self.negative_phase == "probabilities":        # dbm_mf.m's negpenprobs
            W, b = self._parameters(chains.backend)
            for l in range(2, len(S), 2):
                S[l] = chains.xp.sigmoid_(layer_input(S, l, W, b, chains.xp))
        return S

    def model_statistics(self, steps: int | None = None) -> list[np.ndarray]:
        """Advance the persistent chains ``steps`` alternations (default ``gibbs_steps``) and
        return each layer's statistics (see :meth:`_alternate`), chains x units."""
        self._ready()
        steps = check_number("steps", self.gibbs_steps if steps is None else steps, 1, integer=True)
        if self.__dict__.get("_chains") is None or len(self._chains.state) != int(self.n_chains):
            self._persistent(self._new_chains(int(self.n_chains), self.random_state_))
        return [self._chains.backend.to_numpy(s) for s in self._negative(steps)]

    def _persistent(self, chains: tuple[Chains, tuple]) -> None:
        self._chains, self._plan = chains
        self.chains_ = self._chains.rows

    def _negative(self, steps: int) -> list:
        """The persistent chains, on the current weights, ``steps`` alternations on, their
        draws seeded afresh from ``random_state_`` (:meth:`Chains.reseed`); ``chains_``
        their states on the host (numpy, or a view of torch's on the CPU: the chains' own)."""
        self._sync(self._chains)
        self._chains.reseed()
        S = self._alternate(self._chains, self._plan, steps)
        self.chains_ = self._chains.rows
        return S

    # -- training ----------------------------------------------------------------------------
    def _begin_fit(self, X: Any) -> np.ndarray:
        """Validate, convert ``X``, pretrain (or random weights) and fresh chains, or with
        ``warm_start`` the current weights and chains."""
        self._validate_training()
        X = self._check_X(X)
        warm = self.warm_start and "weights_" in self.__dict__
        if warm and self.weights_[0].shape[0] != X.shape[1]:
            raise ValidationError(f"warm_start: the machine has {self.weights_[0].shape[0]} visible units, X has "
                                  f"{X.shape[1]} columns")
        rng = self.random_state_ = check_random_state(self.random_state)
        if not warm:
            self._pretrain(X, rng) if self.pretrain_epochs else self._initialize(rng)
        chains = self.__dict__.get("chains_") if warm else None
        keep = chains is not None and np.shape(chains) == (int(self.n_chains), sum(self._layers))
        self._persistent(self._new_chains(int(self.n_chains), rng, init=np.array(chains) if keep else None,
                                          backend=self._backend))
        self._velocity = [{"W": np.zeros_like(W), "c": np.zeros_like(self.biases_[l])}
                          for l, W in enumerate(self.weights_, start=1)]
        self._velocity[0]["b"] = np.zeros_like(self.biases_[0])
        self._buffers = [None] * len(self.weights_)
        self._means = None if self._targets is None else [np.full(n, t, np.float32)
                                                           for n, t in zip(self._layers[1:], self._targets)]
        self.n_iter_ = 0
        self._n_epochs, self._batch_rows = int(self.n_iter), int(self.batch_size)
        self._clock = time.perf_counter()
        return X

    def _epoch_order(self, X: np.ndarray, epoch: int) -> np.ndarray:
        return self.random_state_.permutation(len(X))

    def _fit_batch(self, X: np.ndarray, rows: Any, at: Position) -> None:
        """One joint update: the minibatch's binary states drawn from its probabilities,
        mean-field statistics, the chains' statistics, eq. 6 per weight block (the kernel's
        :func:`~neurosim.compiled.bipartite.change`), momentum and weight cost. On the
        training backend but the minibatch's draw (numpy's, from ``random_state_``)."""
        rng, be = self.random_state_, self._backend
        V = bernoulli(X[rows], rng)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is named at the epoch's end
            Q = self._mean_field(be.asarray(V), int(self.mean_field_iterations), float(self.damping), be)
            S = self._negative(int(self.gibbs_steps))
            momentum = float(self.final_momentum if at.epoch >= self.momentum_switch else self.momentum)
            self._update(Q, S, self.learning_rate_at(at.epoch * -(-len(X) // self._batch_rows) + at.batch), momentum)
        self._check_diverged(f"epoch {at.epoch + 1} of {self.n_iter}, minibatch {at.batch + 1}")

    def learning_rate_at(self, t: int) -> float:
        """``dbm_mf.m``'s rate at update ``t`` of joint training (from 0):
        ``max(learning_rate / learning_rate_decay ** t, min_learning_rate)``, never above
        ``learning_rate``."""
        lr = float(self.learning_rate)
        return min(lr, max(lr / float(self.learning_rate_decay) ** t, float(self.min_learning_rate)))

    def _check_diverged(self, when: str) -> None:
        """DivergenceError naming the first non-finite parameter, after every update: before
        ``runs.fit_run`` could checkpoint it, so the last good checkpoint stays."""
        for name, arrays in (("weights_", self.weights_), ("biases_", self.biases_)):
            for i, A in enumerate(arrays):
                bad = first_non_finite(A)
                if bad:
                    raise DivergenceError(f"{when}: {name}[{i}]{bad}: training diverged (a parameter became "
                                          f"non-finite); lower learning_rate (now {self.learning_rate!r})")

    def _update(self, Q: list, S: list, lr: float, momentum: float) -> None:
        """Eq. 6 for every block ``(h_{l-1}, h_l)``: positive phase ``Q``, negative ``S``;
        each bias changed once (the visible one by the first block, ``b_l`` by block l).
        On the training backend: the arrays of :meth:`_host_state` as its arrays (views on
        the CPU, copied back from a GPU)."""
        be, host = self._backend, self._host_state()
        on = {k: be.asarray(a) for k, a in host.items()}
        for l in range(1, len(self.weights_) + 1):
            block = Block(on[f"W{l}"], on[f"b{l - 1}"], on[f"b{l}"])
            buf = self._buffers[l - 1] = bipartite.buffers(self._buffers[l - 1], block, len(Q[0]), len(S[0]), be)
            d, _ = bipartite.change(block, _stacked(buf, Q[l - 1], S[l - 1], Q[l], S[l]), CD_JOINT, lr, buf)
            if l > 1:
                del d["b"]
            if self._means is not None:
                self._sparsity(d, l, Q, lr, [on[f"sparsity_mean_{k}"] for k in range(1, len(self._means) + 1)])
            bipartite.apply(block, d, lr, momentum, float(self.weight_decay), {k: on[f"velocity_{k}{l}"] for k in d})
        if not be.shares_memory:                       # a GPU: the update's arrays back to the host
            for k, a in host.items():
                np.copyto(a, be.to_numpy(on[k]))

    def _host_state(self) -> dict[str, np.ndarray]:
        """The numpy arrays an update changes in place, by name: the weights, the biases and
        :meth:`_training_state`."""
        return {**{k: a for k, a in self._arrays().items() if k != "chains"}, **self._training_state()}

    def _sparsity(self, d: dict, l: int, Q: list, lr: float, means: list) -> None:
        """``dbm_mf.m``'s sparsity penalty on block ``l``'s change ``d``, in place: with
        each hidden layer's running mean ``m_k = 0.9 m_k + 0.1 <q_k>`` (``means``, the
        backend's arrays of ``_means``; from the targets ``t_k``; moved once per update, at
        its own block) and ``g_k = sparsity_cost (m_k - t_k)``, the penalty pushes every
        unit's total input: ``c -= lr g_l``, ``W_l -= lr (<q_{l-1}> g_l^T + g_{l-1}
        <q_l>^T)`` (the second term for a hidden layer below; outer products by broadcasting)."""
        m = means[l - 1]
        m *= SPARSITY_DECAY
        m += (1 - SPARSITY_DECAY) * Q[l].mean(axis=0)
        g = [None] + [float(self.sparsity_cost) * (x - t) for x, t in zip(means, self._targets)]
        d["c"] -= lr * g[l]
        d["W"] -= lr * (Q[l - 1].mean(axis=0)[:, None] * g[l])
        if l > 1:
            d["W"] -= lr * (g[l - 1][:, None] * Q[l].mean(axis=0))

    def _end_epoch(self, X: np.ndarray, epoch: int) -> None:
        self.n_iter_ = epoch + 1
        self._say(f"[DBM] epoch {epoch + 1}, time = {time.perf_counter() - self._clock:.2f}s")
        self._clock = time.perf_counter()

    def _training_state(self) -> dict[str, np.ndarray]:
        """The momentum's velocities and the sparsity's running means (the chains are among
        :meth:`_arrays`)."""
        state = {f"velocity_{k}{l}": v for l, vel in enumerate(self._velocity, start=1) for k, v in vel.items()}
        return state | {f"sparsity_mean_{l}": m for l, m in enumerate(self._means or (), start=1)}

    def _set_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Velocities, and the persistent chains continued from ``chains_`` (a resumed run)."""
        for l, vel in enumerate(self._velocity, start=1):
            for k in vel:
                vel[k][:] = arrays[f"velocity_{k}{l}"]
        for l, m in enumerate(self._means or (), start=1):
            m[:] = arrays[f"sparsity_mean_{l}"]
        self._persistent(self._new_chains(len(self.chains_), self.random_state_, init=self.chains_,
                                          backend=self._backend))

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, n_samples: int, n_sweeps: int = 1000, visible_only: bool = True) -> np.ndarray:
        """``n_samples`` states from independent chains started uniformly at random, after
        ``n_sweeps`` alternations: the visible layer (or every unit), 0/1 as float32."""
        rng = self._ready()
        n = check_number("n_samples", n_samples, 1, integer=True)
        sweeps = check_number("n_sweeps", n_sweeps, 1, integer=True)
        chains, plan = self._new_chains(n, rng)
        self._alternate(chains, plan, sweeps)
        S = chains.rows.astype(np.float32)
        return S[:, self._slices()[0]] if visible_only else S

    # -- exact quantities (tiny machines) and the bound ---------------------------------------
    def _float64(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return [W.astype(np.float64) for W in self.weights_], [b.astype(np.float64) for b in self.biases_]

    def _enumerated(self, layers: list[int], fixed: list[np.ndarray]) -> float:
        """``log sum exp`` of :func:`odd_summed_out` over every state of the even ``layers``
        (at most ``MAX_FREE_UNITS`` units), the other even layers at ``fixed`` (one row each)."""
        W, b = self._float64()
        sizes = [len(b[l]) for l in layers]
        n = sum(sizes)
        if n > exact.MAX_FREE_UNITS:
            raise InferenceError(f"exact log-probabilities of a deep Boltzmann machine enumerate its even layers "
                                 f"({n} units here), at most {exact.MAX_FREE_UNITS}: estimate log Z by "
                                 f"ais_log_partition() and pass it to log_prob_bound(X, log_z=)")
        parts = []
        for start in range(0, 2 ** n, CHUNK):
            codes = np.arange(start, min(2 ** n, start + CHUNK))
            S = ((codes[:, None] >> np.arange(n)) & 1).astype(np.float64)
            H: list = [None if l % 2 else np.broadcast_to(x, (len(S), len(x))) for l, x in enumerate(fixed)]
            for l, part in zip(layers, np.split(S, np.cumsum(sizes)[:-1], axis=1)):
                H[l] = part
            parts.append(logsumexp(odd_summed_out(H, W, b)))
        return float(logsumexp(np.array(parts)))

    def log_partition(self) -> float:
        """``log Z`` by enumeration of the even layers (v, h2, ...), the odd ones summed out
        in closed form (:func:`odd_summed_out`): tiny machines only."""
        self._ready()
        even = list(range(0, len(self.biases_), 2))
        return self._enumerated(even, [np.zeros(len(b)) for b in self.biases_])

    def log_prob(self, X: Any) -> np.ndarray:
        """Exact ``log p(v) = log sum_h exp(-E(v, h)) - log Z`` of each binary row: the even
        hidden layers enumerated, the odd ones summed out."""
        self._ready()
        V = self._check_X(X, values=BINARY).astype(np.float64)
        hidden_even = list(range(2, len(self.biases_), 2))
        rest = [np.zeros(len(b)) for b in self.biases_[1:]]
        return np.array([self._enumerated(hidden_even, [v] + rest) for v in V]) - self.log_partition()

    def ais_log_partition(self, n_runs: int = 100, n_betas: int = 14500, data: Any = None,
                          reverse_sweeps: int | None = None) -> AISResult:
        """``log Z`` by AIS with the odd layers summed out (:func:`ais_log_partition`);
        ``data`` (binary rows) sets the base rate, None: all its biases 0. With
        ``reverse_sweeps``, reverse AIS (a stochastic upper bound on ``log Z``) from
        ``n_runs`` samples of the model: chains started at the persistent chains' states
        (in turn) and run ``reverse_sweeps`` alternations on the current weights."""
        rng = self._ready()
        n_betas = check_number("n_betas", n_betas, 3, integer=True)
        V = None if data is None else self._check_X(data, "data", BINARY)
        start = None
        if reverse_sweeps is not None:
            sweeps = check_number("reverse_sweeps", reverse_sweeps, 1, integer=True)
            n = check_number("n_runs", n_runs, 2, integer=True)
            init = None if self.__dict__.get("chains_") is None else np.resize(np.asarray(self.chains_),
                                                                                 (n, sum(self._layers)))
            chains, plan = self._new_chains(n, rng, init)
            self._alternate(chains, plan, sweeps)
            start = [chains.rows[:, c].astype(np.float32) for c in self._slices()]
        return ais_log_partition(self.weights_, self._float64()[1], rng, n_runs, n_betas, V, start=start)

    def log_prob_bound(self, X: Any, log_z: float | None = None) -> np.ndarray:
        """The variational lower bound on ``log p(v)`` of each row (2009, eq. 5) with the
        mean-field ``q``: ``-E(v, q) + H(q) - log Z`` (the energy is linear in each unit,
        so its mean under a factorial ``q`` is ``E`` at ``q``), in float64; ``log_z``
        default :meth:`log_partition`."""
        self._ready()
        Q = [q.astype(np.float64) for q in self._mean_field(self._check_X(X, values=BINARY),
                                                             int(self.mean_field_iterations),
                                                             float(self.damping))]
        W = [w.astype(np.float64) for w in self.weights_]
        neg_energy = sum(((Q[l] @ W[l]) * Q[l + 1]).sum(axis=1) for l in range(len(W)))
        neg_energy = neg_energy + sum(Q[l] @ b.astype(np.float64) for l, b in enumerate(self.biases_))
        entropy = sum(_entropy(q) for q in Q[1:])
        return neg_energy + entropy - (self.log_partition() if log_z is None else float(log_z))

    # -- the Network and files -----------------------------------------------------------------
    def to_network(self, name: str = "dbm", description: str | None = None) -> Network:
        """The machine as a Network: populations ``v`` (visible, layer 0), ``h1`` ... ``hL``
        (hidden, layer l), unit ``k`` of ``P`` named ``P_k``, and symmetric projections
        ``v<->h1``, ``h1<->h2``, ... of the weights ``W_l``; nothing else."""
        self._check_fitted()
        names = ["v"] + [f"h{l}" for l in range(1, len(self.weights_) + 1)]
        pops = [Population(p, tuple(f"{p}_{k}" for k in range(len(b))), b.astype(np.float64),
                           "visible" if l == 0 else "hidden", l) for l, (p, b) in enumerate(zip(names, self.biases_))]
        projs = [Projection(f"{a}<->{b}", a, b, W.astype(np.float64), "symmetric")
                 for a, b, W in zip(names[:-1], names[1:], self.weights_)]
        if description is None:
            description = (f"deep Boltzmann machine {'-'.join(map(str, (len(b) for b in self.biases_)))}: "
                           f"symmetric weights between consecutive layers (Salakhutdinov and Hinton 2009)")
        return Network.from_populations(pops, projs, name=name, description=description)

    @classmethod
    def from_network(cls, net: Network, **params: Any) -> "DeepBoltzmannMachine":
        """The inverse of :meth:`to_network`: one population per layer 0 (visible), 1, ...,
        L (hidden), symmetric projections between consecutive layers only, with equal
        synapses both ways (the weights of ``net``, as float32; the unit names are not kept:
        :meth:`to_network` names unit ``k`` of layer ``P`` ``P_k``)."""
        if not isinstance(net, Network):
            raise ValidationError(f"from_network needs a neurosim Network, got {type(net).__name__}")
        pops = sorted(net.populations, key=lambda p: -1 if p.layer is None else p.layer)
        for l, p in enumerate(pops):
            if p.layer != l or p.role != ("visible" if l == 0 else "hidden") or p.activation != "logistic":
                raise ValidationError(f"network {net.name!r}: population {p.name!r} (layer {p.layer}, role {p.role}, "
                                      f"{p.activation}) is not layer {l} of a deep Boltzmann machine: one logistic "
                                      f"population per layer 0 (visible), 1, 2, ... (hidden)")
        by_name = {p.name: l for l, p in enumerate(pops)}
        weights = [None] * (len(pops) - 1)
        for proj in net.projections:
            lo, hi = sorted((by_name[proj.pre], by_name[proj.post]))
            if proj.kind != "symmetric" or hi != lo + 1 or proj.mask is not None or (
                    proj.reverse is not None and not np.array_equal(proj.reverse, proj.weights)):
                raise ValidationError(f"network {net.name!r}: projection {proj.name!r} is not a full symmetric block "
                                      f"between consecutive layers with equal synapses both ways")
            weights[lo] = proj.weights if by_name[proj.pre] == lo else proj.weights.T
        layers = tuple(p.size for p in pops)
        machine = cls(**{**params, "layers": layers})
        machine._validate()
        machine.weights_ = [np.zeros(s, np.float32) if W is None else W.astype(np.float32)
                            for W, s in zip(weights, zip(layers[:-1], layers[1:]))]
        machine.biases_ = [p.bias.astype(np.float32) for p in pops]
        machine.n_iter_ = 0
        return machine

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"W{l}": W for l, W in enumerate(self.weights_, start=1)}
        arrays.update({f"b{l}": b for l, b in enumerate(self.biases_)})
        if self.__dict__.get("chains_") is not None:
            arrays["chains"] = np.asarray(self.chains_)
        return arrays

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "DeepBoltzmannMachine":
        machine = cls(**params)
        machine._validate()
        sizes = machine._layers
        shapes = {**{f"W{l}": (sizes[l - 1], sizes[l]) for l in range(1, len(sizes))},
                  **{f"b{l}": (n,) for l, n in enumerate(sizes)}}
        for key, shape in shapes.items():
            if key not in arrays or arrays[key].shape != shape:
                got = arrays[key].shape if key in arrays else "missing"
                raise ParameterError(f"{key} must have shape {shape} for layers {sizes}, got {got}")
            bad = first_non_finite(arrays[key])
            if bad:
                raise ParameterError(f"{key}{bad}: a parameter is not finite (a diverged run?)")
        machine.weights_ = [arrays[f"W{l}"].astype(np.float32) for l in range(1, len(sizes))]
        machine.biases_ = [arrays[f"b{l}"].astype(np.float32) for l in range(len(sizes))]
        machine.n_iter_ = fitted.get("n_iter_", 0)
        chains = arrays.get("chains")
        if chains is not None and chains.shape == (int(machine.n_chains), sum(sizes)):
            machine.random_state_ = check_random_state(machine.random_state)
            machine._persistent(machine._new_chains(len(chains), machine.random_state_, init=chains))
        return machine
