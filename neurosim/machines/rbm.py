"""Restricted Boltzmann machine with binary units, a drop-in for scikit-learn's BernoulliRBM.

Two layers, visible ``v`` and hidden ``h``, with symmetric edges only between them
(Hinton 2005, section 2). Energy (eq. 2): ``E(v, h) = -b.v - c.h - h W v`` with ``W =
components_`` (n_components x n_features), ``b = intercept_visible_``, ``c =
intercept_hidden_``. Given one layer the other's units are independent (eq. 1):
``P(h_j = 1 | v) = sigmoid(c_j + W_j . v)``, ``P(v_i = 1 | h) = sigmoid(b_i + h . W_:i)``.
Gaussian visible units of unit variance (``visible="gaussian"``; Hinton 2010, 13.2):
``E(v, h) = sum_i (v_i - b_i)^2 / 2 - c.h - h W v``, so ``v | h ~ N(b + h W, I)``.

Learning is contrastive divergence (eq. 6 of Hinton 2005; Hinton 2002),
``dw_ij = lr (<v_i h_j>^0 - <v_i h_j>^k)``, or persistent CD (Tieleman 2008), with the
statistics of Hinton's ``rbm.m``: the rule ``get_rule("cd"|"pcd").batched`` of
:mod:`neurosim.learning.rules`, run by the fused kernel of :mod:`neurosim.compiled.bipartite`
(tested equal). Options: momentum and its schedule, weight decay, a learning rate annealed
over the last epochs, a hidden-bias sparsity target (Lee, Ekanadham and Ng 2008), and
centering (Melchior, Fischer and Wiskott 2016): the centered gradient with offsets that
follow the data's means, applied to the ordinary parameters, so that a centered RBM is
stored, sampled and scored as any other. PCD may keep more (or fewer) chains than a
minibatch has rows (``n_chains``), and run them by parallel tempering (``n_temperatures``;
Desjardins et al. 2010).

Scores: the free energy ``F(v) = -b.v - sum_j softplus(c_j + W_j . v)``, scikit-learn's
pseudo-likelihood, and for small machines the exact ``log Z`` (eq. 3) and ``log P(v) =
-F(v) - log Z`` (eq. 4), computed in :mod:`neurosim.machines.ais`. Recipes, speed, the
differences from scikit-learn and the file format: ``docs/machines/rbm.md``.

References: G. E. Hinton (2005), IJCAI; (2002), Neural Computation 14; (2010), UTML TR
2010-003; T. Tieleman (2008), ICML; H. Lee, C. Ekanadham and A. Y. Ng (2008), NIPS;
J. Melchior, A. Fischer and L. Wiskott (2016), JMLR 17(99); G. Desjardins, A. Courville,
Y. Bengio, P. Vincent and O. Delalleau (2010), AISTATS; K. Cho, T. Raiko and A. Ilin
(2010), IJCNN.
"""

from __future__ import annotations

import numbers
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..compiled import arrays, bipartite
from ..compiled.bipartite import Block, CD
from ..errors import DivergenceError, InferenceError, ModelFileError, ParameterError, ValidationError
from ..inference.exact import MAX_FREE_UNITS
from ..network import Network
from ..population import Population, Projection
from ..numerics import softplus as _softplus
from .ais import exact_log_partition, free_energy, log_prob
from .base import (BINARY, FINITE, FLOATS, UNIT, Machine, NotFittedError, Position, annealed, check_bool,
                   check_dtype, check_number, check_random_state, check_rows, check_values,
                   first_non_finite, is_sparse, read_npz_meta, valid_random_state)

__all__ = ["RBM", "MAX_EXACT_UNITS", "VISIBLE_UNITS", "RBM_M_MOMENTUM", "NotFittedError", "ParameterError"]

MAX_EXACT_UNITS = MAX_FREE_UNITS   # exact scores enumerate 2^min(n_features, n_components) states
VISIBLE_UNITS = ("bernoulli", "gaussian")
RBM_M_MOMENTUM = MappingProxyType({"momentum": 0.5, "final_momentum": 0.9, "momentum_switch": 5})  # rbm.m's


def _check_visible(value: Any) -> bool:
    """True for Gaussian visible units, False for binary ones."""
    if isinstance(value, str) and value in VISIBLE_UNITS:
        return value == "gaussian"
    raise ParameterError(f"visible must be 'bernoulli' or 'gaussian', got {value!r}")


def _check_dtypes(value: Any) -> tuple[np.dtype | None, str]:
    """The weights' dtype (None: the data's) and the products' dtype: ``"bfloat16"`` is
    float32 master weights with bfloat16 products (torch only)."""
    if isinstance(value, str) and value == "bfloat16":
        return np.dtype(np.float32), "bfloat16"
    try:
        return check_dtype(value), "float32"
    except ParameterError:
        raise ParameterError(f"dtype must be None, numpy.float32, numpy.float64 or 'bfloat16' (backend='torch'), "
                             f"got {value!r}") from None


def _dense_rows(X: Any, fn, rows: int = 1024) -> np.ndarray:
    """``fn(block, first_row)`` of the rows of ``X``: of ``X`` itself if dense, else of
    blocks of ``rows`` densified rows at a time, the results stacked (a sparse matrix is
    never densified whole)."""
    if not is_sparse(X):
        return fn(X, 0)
    return np.concatenate([fn(X[s:s + rows].toarray(), s) for s in range(0, X.shape[0], rows)])


class RBM(Machine):
    """Restricted Boltzmann machine with binary (or Gaussian) visible units and binary
    hidden units, trained by CD-k or persistent CD (eq. 6 of Hinton 2005); scikit-learn's
    ``BernoulliRBM`` API. The defaults are scikit-learn's procedure (PCD-1).

    Parameters
    ----------
    n_components : int, default 256
        Number of hidden units.
    learning_rate : float, default 0.1
        ``lr`` of eq. 6; a minibatch's change is ``lr`` times the mean over its cases.
    batch_size : int, default 10
        Cases per minibatch; with ``persistent=True`` also the number of persistent chains
        unless ``n_chains`` says otherwise.
    n_iter : int, default 10
        Passes over the training data in :meth:`fit`.
    verbose : int, default 0
        Print the mean pseudo-likelihood and the time after each pass (to stderr).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Normalised once per :meth:`fit` (or first use) to the Generator ``random_state_``,
        through which every draw goes.
    k : int, default 1
        Gibbs steps per update (CD-k, PCD-k).
    persistent : bool, default True
        Persistent CD (scikit-learn's procedure); False: CD-k (``rbm.m``), the chain
        restarted at the data.
    momentum : float in [0, 1), default 0
        ``velocity = momentum * velocity + change``; the parameters move by the velocity.
    final_momentum : None or float in [0, 1), default None
        The momentum from epoch ``momentum_switch`` on (``rbm.m``: 0.5, then 0.9, as
        ``RBM(**RBM_M_MOMENTUM)``); None: ``momentum`` throughout.
    momentum_switch : int, default 5
        Epochs of :meth:`fit` at ``momentum`` before ``final_momentum``.
    anneal_epochs : int, default 0
        The learning rate falls linearly over the last that many epochs of :meth:`fit`
        (:func:`~neurosim.machines.base.annealed`); 0: constant.
    shuffle : bool, default False
        :meth:`fit` visits the rows in one random order drawn before the initial weights;
        False: in the order given (scikit-learn).
    weight_decay : float, default 0
        L2 penalty: ``- lr * weight_decay * W`` is added to each weight change.
    dtype : None, numpy.float32, numpy.float64 or "bfloat16", default None
        Type of the parameters and the arithmetic; None: that of the data :meth:`fit`
        first sees (float32 stays float32, anything else is float64). ``"bfloat16"``
        (``backend="torch"``): float32 parameters and arithmetic, training's matrix
        products in bfloat16 (the cast policy of :mod:`neurosim.compiled.arrays`).
    backend : {"numpy", "torch"}, default "numpy"
        The array library of training (:meth:`fit`, :meth:`partial_fit`: the kernel of
        :mod:`neurosim.compiled.bipartite`); torch is imported only then (``pip install
        neurosim[torch]``) and draws from a ``torch.Generator`` seeded from
        ``random_state_``. The fitted arrays are numpy's either way; the other methods
        run on numpy.
    device : str, default "cpu"
        The torch device of training (``"cuda"`` on a GPU; each update then copies the
        parameters back to the host).
    visible : {"bernoulli", "gaussian"}, default "bernoulli"
        Binary visible units (data in [0, 1]) or Gaussian ones of unit variance (finite,
        standardised data; no pseudo-likelihood and no Network form).
    sparsity_target : None or float in (0, 1), default None
        Target mean activation ``p`` of each hidden unit; None: no sparsity term.
    sparsity_cost : float >= 0, default 0.1
        ``- learning_rate * sparsity_cost * (q_j - p)`` is added to each hidden-bias change,
        ``q_j`` the running mean activation ``hidden_activity_``.
    centered : bool, default False
        Centered training (Melchior, Fischer and Wiskott 2016, algorithm 1; binary units):
        the change is the centered gradient ``<(v - mu)(h - lambda)^T>^0 - <...>^k`` with
        the offsets ``visible_offset_`` (``mu``, starting at the data's mean) and
        ``hidden_offset_`` (``lambda``, starting at 0.5), written for the ordinary ``W``,
        ``b``, ``c`` (:func:`~neurosim.compiled.bipartite.change`); fresh weights start
        at the paper's centered biases ``b~ = logit(mu)``, ``c~ = 0``, converted by
        :func:`~neurosim.compiled.bipartite.uncentered_biases` (``b = b~ - W lambda``,
        ``c = c~ - W^T mu``).
    offset_rate : float in [0, 1], default 0.01
        ``nu`` of the hidden offset's sliding average, ``lambda = (1 - nu) lambda + nu
        <h>^0`` per update (PyDeep's default).
    visible_offset_rate : float in [0, 1], default 0.01
        The same for ``mu`` and the data ``<v>^0``; 0: ``mu`` stays the data's mean.
    n_chains : None or int >= 1, default None
        Persistent chains of PCD (``persistent=True`` only), independent of the minibatch:
        ``dW = lr (<v h>_data - <v h>_model)`` (Tieleman 2008), the positive statistics the
        mean over the minibatch's rows, the negative ones over the chains. None: ``batch_size``.
    n_temperatures : int >= 1, default 1
        ``K > 1``: the persistent chains' negative phase by parallel tempering (Desjardins
        et al. 2010; :func:`~neurosim.compiled.bipartite.tempered_gibbs`): ``n_chains``
        chains at each of K inverse temperatures evenly spaced in [0, 1], the whole energy
        tempered, swaps between neighbours by the Metropolis rule on the joint energy, the
        statistics from the ``beta = 1`` chains. About K times the Gibbs work of PCD.
        Binary visible units and ``persistent=True`` only. 1: plain Gibbs (PCD-k).

    Attributes
    ----------
    components_ : ndarray, shape (n_components, n_features)
        The weights ``W``.
    intercept_hidden_ : ndarray, shape (n_components,)
    intercept_visible_ : ndarray, shape (n_features,)
    h_samples_ : ndarray, shape (n_temperatures * n_chains, n_components)
        Hidden states of the persistent chains (only with ``persistent=True``); with
        tempering the sets of ``n_chains`` rows in order of rising inverse temperature,
        the model's (``beta = 1``) last.
    hidden_activity_ : ndarray, shape (n_components,)
        Running mean activation ``q`` of each hidden unit (once a sparsity target is used).
    visible_offset_, hidden_offset_ : ndarray, shapes (n_features,), (n_components,)
        The offsets ``mu`` and ``lambda`` of centered training (``centered=True``).
    n_features_in_ : int
    n_iter_ : int
        Passes over the data made by :meth:`fit`.
    n_updates_ : int
        Weight updates since the weights were initialised.
    random_state_ : numpy.random.Generator

    Examples
    --------
    >>> import numpy as np
    >>> from neurosim import RBM
    >>> from neurosim.data import bars_stripes
    >>> X = bars_stripes(size=2).data                 # the 6 distinct 2x2 bars and stripes
    >>> rbm = RBM(4, learning_rate=0.2, batch_size=6, n_iter=400, persistent=False, random_state=0)
    >>> rbm.fit(X).components_.shape, rbm.transform(X).shape
    ((4, 4), (6, 4))
    >>> bool(rbm.exact_log_likelihood(X) > np.log(1 / 16))    # better than the uniform model
    True
    """

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.1,
                 batch_size: int = 10, n_iter: int = 10, verbose: int = 0,
                 random_state: Any = None, k: int = 1, persistent: bool = True,
                 momentum: float = 0.0, weight_decay: float = 0.0, dtype: Any = None,
                 visible: str = "bernoulli", sparsity_target: float | None = None,
                 sparsity_cost: float = 0.1, final_momentum: float | None = None,
                 momentum_switch: int = 5, anneal_epochs: int = 0, shuffle: bool = False,
                 backend: str = "numpy", device: str = "cpu", centered: bool = False,
                 offset_rate: float = 0.01, visible_offset_rate: float = 0.01, n_chains: int | None = None,
                 n_temperatures: int = 1) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.visible = visible
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.final_momentum = final_momentum
        self.momentum_switch = momentum_switch
        self.anneal_epochs = anneal_epochs
        self.shuffle = shuffle
        self.backend = backend
        self.device = device
        self.centered = centered
        self.offset_rate = offset_rate
        self.visible_offset_rate = visible_offset_rate
        self.n_chains = n_chains
        self.n_temperatures = n_temperatures

    _FITTED = "components_"
    _FITTED_META = ("n_iter_", "n_updates_", "visible_names_", "hidden_names_")

    # -- parameters ----------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        """scikit-learn's description of this estimator: an unsupervised transformer of
        dense or sparse non-negative input whose output has the machine's ``dtype``.
        scikit-learn calls it; it is imported here only, so it stays optional."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        dt = _check_dtypes(self.dtype)[0]
        dtypes = ["float64", "float32"] if dt is None else [dt.name]

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=dtypes),
                    input_tags=InputTags(sparse=True, positive_only=True))

    def _validate(self) -> None:
        """Check every parameter (at fit, partial_fit, from_network); names the bad value."""
        check_number("n_components", self.n_components, 1, integer=True)
        self._lr = check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_number("batch_size", self.batch_size, 1, integer=True)
        check_number("n_iter", self.n_iter, 0, integer=True)
        if not isinstance(self.verbose, (bool, numbers.Integral)):
            raise ParameterError(f"verbose must be an integer or a bool, got {self.verbose!r}")
        check_number("k", self.k, 1, integer=True)
        check_bool("persistent", self.persistent)
        check_bool("shuffle", self.shuffle)
        self._momentum = check_number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        if self.final_momentum is not None:
            check_number("final_momentum", self.final_momentum, 0.0, 1.0, high_open=True)
        check_number("momentum_switch", self.momentum_switch, 0, integer=True)
        check_number("anneal_epochs", self.anneal_epochs, 0, integer=True)
        self._decay = check_number("weight_decay", self.weight_decay, 0.0)
        self._dtype, self._products = _check_dtypes(self.dtype)
        self._gaussian = _check_visible(self.visible)
        cost = check_number("sparsity_cost", self.sparsity_cost, 0.0)
        sparsity = None
        if self.sparsity_target is not None:
            target = check_number("sparsity_target", self.sparsity_target, 0.0, 1.0,
                                  low_open=True, high_open=True)
            sparsity = (target, cost)
        check_bool("centered", self.centered)
        rates = (check_number("visible_offset_rate", self.visible_offset_rate, 0.0, 1.0),
                 check_number("offset_rate", self.offset_rate, 0.0, 1.0))
        if self.centered and self._gaussian:
            raise ParameterError("centered=True is for binary visible units; this RBM has visible='gaussian'")
        self._check_chains()
        self._cd = CD(k=int(self.k), gaussian=self._gaussian, sparsity=sparsity,
                      centering=rates if self.centered else None, temperatures=int(self.n_temperatures))
        if not valid_random_state(self.random_state):
            check_random_state(self.random_state)          # raises, naming the value

    def _check_chains(self) -> None:
        """``n_chains`` and ``n_temperatures``: positive integers, of persistent chains only
        (tempering: of binary visible units)."""
        if self.n_chains is not None:
            check_number("n_chains", self.n_chains, 1, integer=True)
        check_number("n_temperatures", self.n_temperatures, 1, integer=True)
        for name, value, default in (("n_chains", self.n_chains, None), ("n_temperatures", self.n_temperatures, 1)):
            if value != default and not self.persistent:
                raise ParameterError(f"{name}={value!r} sets persistent chains; this RBM has persistent=False "
                                     "(CD-k restarts its chains at the data)")
        if self.n_temperatures != 1 and self._gaussian:
            raise ParameterError(f"n_temperatures={self.n_temperatures!r}: parallel tempering is for binary "
                                 "visible units; this RBM has visible='gaussian'")

    def _chain_shape(self) -> tuple[int, int]:
        """The shape of ``h_samples_``: ``n_temperatures * n_chains`` rows (``n_chains``
        None: ``batch_size``), one per hidden unit."""
        chains = int(self.batch_size if self.n_chains is None else self.n_chains)
        return int(self.n_temperatures) * chains, self.components_.shape[0]

    def _validate_training(self) -> None:
        """:meth:`_validate` and the training backend (``backend``, ``device``, the products'
        dtype): checked, and torch imported, only when training asks for it, so that a
        model trained on torch loads and runs on numpy where torch is absent."""
        self._validate()
        self._backend = arrays.backend(self.backend, self.device, self._products)

    # -- data ----------------------------------------------------------------------------
    def _check_X(self, X: Any, what: str = "X", binary: bool = False, fitting: bool = False) -> Any:
        """``X`` as :func:`~neurosim.machines.base.check_rows` gives it (an array, or a CSR
        matrix never densified whole) in the type of the weights (when ``fitting`` or before
        there are any: the ``dtype`` parameter, else the data's), with values in [0, 1] (0 or
        1 if ``binary``; any finite values for Gaussian visible units), or a ParameterError
        naming the culprit."""
        W = None if fitting else self.__dict__.get("components_")
        dtype = W.dtype if W is not None else _check_dtypes(self.dtype)[0]
        gaussian = _check_visible(self.visible)
        A = check_rows(X, what, dtype, getattr(self, "n_features_in_", None), values=FINITE if gaussian else UNIT,
                       owner="RBM")
        if binary and not gaussian:
            check_values(A, what, ((BINARY[0][0], "exact log-probabilities need binary states 0 or 1"),))
        return A

    # -- fitted state ----------------------------------------------------------------------
    def _initialize(self, n_features: int, dt: np.dtype, rng: np.random.Generator) -> None:
        """Weights ~ N(0, 0.01^2) and zero biases, as scikit-learn, of type ``dt``."""
        nh = int(self.n_components)
        self.n_features_in_ = n_features
        self.components_ = rng.standard_normal((nh, n_features), dtype=dt)
        self.components_ *= 0.01
        self.intercept_hidden_ = np.zeros(nh, dtype=dt)
        self.intercept_visible_ = np.zeros(n_features, dtype=dt)
        self._reset_state()

    def _init_offsets(self, X: Any, fresh: bool) -> None:
        """Centered training's offsets (algorithm 1 of Melchior et al. 2016): ``mu`` the
        mean of the rows of ``X``, ``lambda = 0.5``; with ``fresh`` weights also the
        biases of its initial model, ``b~ = logit(mu)`` (``mu`` clipped to [0.001, 0.999])
        and ``c~ = logit(lambda) = 0``, stored as the ordinary ``b``, ``c``
        (:func:`~neurosim.compiled.bipartite.uncentered_biases`)."""
        W = self.components_.T
        mu = np.asarray(X.mean(axis=0), dtype=W.dtype).ravel()
        lam = np.full(W.shape[1], 0.5, W.dtype)
        if fresh:
            p = np.clip(mu, 0.001, 0.999)
            b, c = bipartite.uncentered_biases(W, np.log(p / (1 - p)), np.zeros_like(lam), mu, lam)
            self.intercept_visible_[:], self.intercept_hidden_[:] = b, c
        self.visible_offset_, self.hidden_offset_ = mu, lam

    def _reset_state(self) -> None:
        if self.persistent:
            self.h_samples_ = np.zeros(self._chain_shape(), dtype=self.components_.dtype)
        else:
            self.__dict__.pop("h_samples_", None)
        for name in ("hidden_activity_", "visible_offset_", "hidden_offset_"):
            self.__dict__.pop(name, None)
        self._velocity = None
        self._buffers = None
        self.n_iter_ = 0
        self.n_updates_ = 0

    def _ensure_ready(self) -> np.random.Generator:
        """Validate and make ``random_state_`` (once) for methods called after fitting."""
        self._check_fitted()
        self._validate()
        if "random_state_" not in self.__dict__:
            self.random_state_ = check_random_state(self.random_state)
        return self.random_state_

    # -- one update -----------------------------------------------------------------------
    def _step(self, batch: np.ndarray, rng: np.random.Generator) -> None:
        """One update (eq. 6) on ``batch`` (rows of the machine's dtype): the fused CD-k or
        PCD-k of :mod:`neurosim.compiled.bipartite`, in buffers kept between updates. Its
        change ``lr/b * H0.T @ V0 - lr/m * Hk.T @ Vk``, one matrix product, equals
        ``get_rule("cd").batched`` of both phases (tested); the hot loop does not call the
        rule, which costs 4-13% of the throughput (``docs/machines/rbm.md``). On the
        training backend (``_backend``): the arrays of :meth:`_host_state` as its arrays
        (views on the CPU), the draws from its generator, seeded from ``rng`` at every
        update (numpy: ``rng`` itself), so that a resumed run draws what an uninterrupted
        one does."""
        be = self._backend
        if self._momentum and self._velocity is None:
            self._velocity = tuple(np.zeros_like(a) for a in (self.components_, self.intercept_visible_,
                                                               self.intercept_hidden_))
        self._on_device = {name: be.asarray(a) for name, a in self._host_state().items()}
        block = Block(*(self._on_device[name] for name in "Wbc"))
        chain = self._on_device.get("h_samples")
        m = len(batch) if chain is None else len(chain) // self._cd.temperatures
        self._buffers = bipartite.buffers(self._buffers, block, len(batch), m, be)
        self._learn(block, bipartite.statistics(block, be.asarray(batch), self._cd, be.generator(rng), self._buffers,
                                                chain=chain, swap=self.n_updates_))
        if not be.shares_memory:                  # a GPU: the update's arrays back to the host
            for name, a in self._host_state().items():
                np.copyto(a, be.to_numpy(self._on_device.get(name, a)))
        self._on_device = {}

    def _host_state(self) -> dict[str, np.ndarray]:
        """The numpy arrays an update changes in place, by name (``W`` is ``components_.T``)."""
        state = dict(W=self.components_.T, b=self.intercept_visible_, c=self.intercept_hidden_)
        if self.persistent:
            state["h_samples"] = self.h_samples_
        for name in _OPTIONAL_STATE:
            if self.__dict__.get(name + "_") is not None:
                state[name] = self.__dict__[name + "_"]
        if self._momentum and self._velocity is not None:
            state.update(zip(("vW", "vb", "vc"), (self._velocity[0].T, *self._velocity[1:])))
        return state

    def _learn(self, block: Block, stats: bipartite.Statistics) -> None:
        """Eq. 6 for the chain's statistics (the kernel's :func:`~neurosim.compiled.bipartite.change`:
        sparsity updates ``hidden_activity_``), then momentum and weight decay as the
        parameters say."""
        offsets = None
        if self.centered:
            offsets = (self._on_device["visible_offset"], self._on_device["hidden_offset"])
        d, q = bipartite.change(block, stats, self._cd, self._lr, self._buffers,
                                self._on_device.get("hidden_activity"), offsets)
        if q is not None:
            self.hidden_activity_ = self._backend.to_numpy(q)
        self._apply(block, d)

    def _apply(self, block: Block, d: dict[str, np.ndarray]) -> None:
        """Add a change, in place: velocities (``_velocity``, made at the first update with
        momentum, on the device as ``_on_device``) only while ``momentum`` is not 0."""
        velocity = None
        if self._momentum:
            velocity = {name: self._on_device["v" + name] for name in "Wbc"}
        bipartite.apply(block, d, self._lr, self._momentum, self._decay, velocity)
        self.n_updates_ += 1

    # -- estimator API -----------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "RBM":
        """Fresh weights (``N(0, 0.01^2)``, zero biases), then ``n_iter`` passes over ``X``
        (cases x features in [0, 1]; an array or a scipy sparse matrix) in consecutive
        minibatches of ``batch_size`` rows, the last holding the rest, as scikit-learn's.
        Raises DivergenceError, naming the epoch and the parameter, if one becomes non-finite."""
        return super().fit(X)

    def _begin_fit(self, X: Any) -> Any:
        """Validate, convert ``X``, draw the order (``shuffle``) and the initial weights."""
        self._validate_training()
        self.__dict__.pop("n_features_in_", None)
        X = self._check_X(X, fitting=True)
        rng = self.random_state_ = check_random_state(self.random_state)
        self._shuffled = rng.permutation(X.shape[0]) if self.shuffle else None
        self._initialize(X.shape[1], X.dtype, rng)
        if self.centered:
            self._init_offsets(X, fresh=True)
        self._n_epochs, self._batch_rows = int(self.n_iter), int(self.batch_size)
        self._clock = time.perf_counter()
        return X

    def _epoch_order(self, X: Any, epoch: int) -> np.ndarray | None:
        return self._shuffled

    def _fit_batch(self, X: Any, rows: np.ndarray, at: Position) -> None:
        """One update of :meth:`fit`, at the momentum and learning rate of its schedule."""
        if self.final_momentum is not None:
            self._momentum = float(self.final_momentum if at.epoch >= self.momentum_switch else self.momentum)
        if self.anneal_epochs:
            self._lr = annealed(float(self.learning_rate), at.epoch, at.batch, -(-X.shape[0] // self._batch_rows),
                                self._n_epochs, int(self.anneal_epochs))
        batch = X[rows]
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is named at the epoch's end
            self._step(batch.toarray() if is_sparse(batch) else batch, self.random_state_)

    def _end_epoch(self, X: Any, epoch: int) -> None:
        self._check_diverged(f"epoch {epoch + 1} of {self.n_iter}")
        self.n_iter_ = epoch + 1
        if self.verbose:
            score = (f"reconstruction error = {self._reconstruction_error(X):.4f}" if self._gaussian
                     else f"pseudo-likelihood = {self.score_samples(X).mean():.2f}")
            self._say(f"[RBM] Iteration {epoch + 1}, {score}, time = {time.perf_counter() - self._clock:.2f}s")
            self._clock = time.perf_counter()

    def _training_state(self) -> dict[str, np.ndarray]:
        state = dict(zip(("velocity_W", "velocity_b", "velocity_c"), self._velocity or ()))
        if self._shuffled is not None:
            state["shuffled"] = self._shuffled
        return state

    def _set_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        if "velocity_W" in arrays:
            self._velocity = tuple(arrays[k] for k in ("velocity_W", "velocity_b", "velocity_c"))
        if "shuffled" in arrays:
            self._shuffled = arrays["shuffled"]

    def partial_fit(self, X: Any, y: Any = None) -> "RBM":
        """One update with all of ``X`` as the minibatch, continuing from the current
        weights (the first call initialises them, as :meth:`fit` does). Raises
        DivergenceError, naming the update and the parameter, when the update leaves a
        parameter non-finite."""
        self._validate_training()
        first = "components_" not in self.__dict__
        if first:
            self.__dict__.pop("n_features_in_", None)
        X = self._check_X(X)
        if first:
            self.random_state_ = check_random_state(self.random_state)
            self._initialize(X.shape[1], X.dtype, self.random_state_)
        rng = self._ensure_ready()
        if self.centered and self.__dict__.get("visible_offset_") is None:
            self._init_offsets(X, fresh=first)
        if self.persistent and getattr(self, "h_samples_", None) is None:
            self.h_samples_ = np.zeros(self._chain_shape(), self.components_.dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging update is named below
            self._step(X.toarray() if is_sparse(X) else X, rng)
        self._check_diverged(f"update {self.n_updates_}")
        return self

    def _check_diverged(self, when: str) -> None:
        """DivergenceError naming the first non-finite parameter (``when``: the epoch or
        update just done). One pass over each array: about 1% of a 784-500 update."""
        for name in ("components_", "intercept_visible_", "intercept_hidden_"):
            bad = first_non_finite(self.__dict__[name])
            if bad:
                raise DivergenceError(f"{when}: {name}{bad}: training diverged (a parameter became "
                                      f"non-finite); lower learning_rate (now {self.learning_rate!r})")

    def _params(self, dtype=None):
        self._check_fitted()
        dt = self.components_.dtype if dtype is None else dtype
        return (self.components_.astype(dt, copy=False), self.intercept_visible_.astype(dt, copy=False),
                self.intercept_hidden_.astype(dt, copy=False))

    def transform(self, X: Any) -> np.ndarray:
        """Hidden probabilities ``P(h = 1 | v) = sigmoid(X W^T + c)`` of each row of ``X``,
        shape (n_samples, n_components), in the machine's dtype."""
        self._check_fitted()
        return _dense_rows(self._check_X(X), lambda V, _: self._hidden(V))

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def _block(self) -> tuple[Block, CD]:
        W, b, c = self._params()
        return Block(W.T, b, c), CD(gaussian=_check_visible(self.visible))

    def _hidden(self, V):
        block, cd = self._block()
        return bipartite.hidden_probabilities(block, V, None, cd, np.empty((len(V), len(block.c)), block.c.dtype))

    def _sample_hidden(self, V, rng):
        H = self._hidden(V)
        return bipartite.bernoulli(H, rng, np.empty_like(H), H)

    def _visible_mean(self, H):
        """``E[v | h]``: ``sigmoid(b + h W)`` (binary units) or ``b + h W`` (Gaussian)."""
        block, cd = self._block()
        V = np.empty((len(H), len(block.b)), block.b.dtype)
        bipartite.visible_means(block, H, cd, V, None)
        return V

    def _sample_visible(self, H, rng):
        V = self._visible_mean(H)
        draw = bipartite.gaussian if _check_visible(self.visible) else bipartite.bernoulli
        return draw(V, rng, np.empty_like(V), V)

    def _reconstruction_error(self, X) -> float:
        """Mean squared difference per case between ``X`` and ``E[v | h]``, ``h`` sampled
        from ``P(h | X)``: the usual one-step reconstruction error (draws from
        ``random_state_``)."""
        def squared_error(V, _):
            R = self._visible_mean(self._sample_hidden(V, self.random_state_))
            R -= V
            return np.einsum("ij,ij->i", R, R, dtype=np.float64)

        return float(_dense_rows(X, squared_error).mean())

    def gibbs(self, v: Any) -> np.ndarray:
        """One alternating Gibbs step from the visible states ``v``: sample ``h ~ P(h | v)``,
        then ``v' ~ P(v | h)``. Returns ``v'`` as a bool array, as scikit-learn does; for
        Gaussian visible units the real-valued sample ``v' ~ N(b + h W, 1)`` in the
        machine's dtype."""
        rng = self._ensure_ready()
        V = _dense_rows(self._check_X(v, "v"),
                        lambda B, _: self._sample_visible(self._sample_hidden(B, rng), rng))
        return V if self._gaussian else V.astype(bool)

    def sample(self, n_samples: int, n_steps: int = 1000) -> np.ndarray:
        """``n_samples`` fantasies: independent chains from uniformly random visible states
        (standard normal ones for Gaussian units), each run ``n_steps`` alternating Gibbs
        steps. Returns int8 visible states; for Gaussian visible units the real-valued
        samples (machine's dtype) of the last step."""
        rng = self._ensure_ready()
        check_number("n_samples", n_samples, 1, integer=True)
        check_number("n_steps", n_steps, 1, integer=True)
        shape, dt = (n_samples, self.components_.shape[1]), self.components_.dtype
        if self._gaussian:
            V = rng.standard_normal(shape, dtype=dt)
        else:
            V = bipartite.bernoulli(np.full(shape, 0.5, dt), rng, np.empty(shape, dt), np.empty(shape, dt))
        for _ in range(n_steps):
            V = self._sample_visible(self._sample_hidden(V, rng), rng)
        return V if self._gaussian else V.astype(np.int8)

    def free_energy(self, X: Any) -> np.ndarray:
        """``F(v) = -b.v - sum_j softplus(c_j + W_j . v)`` of each row (float64), so that
        ``P(v) = exp(-F(v)) / Z``; for Gaussian visible units
        ``F(v) = sum_i (v_i - b_i)^2 / 2 - sum_j softplus(c_j + W_j . v)`` (a density)."""
        X, (W, b, c) = self._check_X(X), self._params(np.float64)
        return _dense_rows(X, lambda V, _: free_energy(V, W.T, b, c, _check_visible(self.visible)))

    def score_samples(self, X: Any) -> np.ndarray:
        """Pseudo-likelihood of each row, as scikit-learn computes it: one randomly chosen
        feature of each case is flipped and ``n_features * log sigmoid(F(v~) - F(v))`` is
        returned (float64). Random: an integer ``random_state`` seeds a fresh generator on
        every call (repeatable, as scikit-learn); otherwise ``random_state_`` draws.
        For the exact log-likelihood of small machines see :meth:`exact_log_prob`.
        Binary visible units only: with ``visible="gaussian"`` it raises InferenceError
        (there is no feature to flip; use :meth:`free_energy` or :meth:`exact_log_prob`)."""
        self._check_fitted()
        if _check_visible(self.visible):
            raise InferenceError("score_samples is the pseudo-likelihood of binary features "
                                 "(one flipped per case); this RBM has visible='gaussian': use "
                                 "free_energy, or exact_log_prob for small machines")
        X = self._check_X(X)
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool):
            rng = np.random.default_rng(self.random_state)
        else:
            rng = self._ensure_ready()
        n, nv = X.shape
        flips = rng.integers(0, nv, n)
        W, b, c = self._params(np.float64)

        def pseudo_likelihood(V, first):
            V = V.astype(np.float64)
            rows, cols = np.arange(len(V)), flips[first:first + len(V)]
            V_ = V.copy()
            V_[rows, cols] = 1.0 - V_[rows, cols]
            fe, fe_ = free_energy(V, W.T, b, c), free_energy(V_, W.T, b, c)
            return -nv * _softplus(-(fe_ - fe))

        return _dense_rows(X, pseudo_likelihood)

    # -- exact quantities (small machines) -------------------------------------------------------
    def log_partition(self) -> float:
        """Exact ``log Z`` (eq. 3, float64) by :func:`~neurosim.machines.ais.exact_log_partition`:
        the ``2^min(n_features, n_components)`` states of the smaller layer enumerated, the
        other summed out in closed form (Gaussian visible units: the ``2^n_components``
        hidden states, the visible layer integrated out). Raises InferenceError above
        ``2^MAX_EXACT_UNITS`` states."""
        W, b, c = self._params(np.float64)
        (nh, nv), gaussian = W.shape, _check_visible(self.visible)
        if (nh if gaussian else min(nh, nv)) > MAX_EXACT_UNITS:
            what = (f"of Gaussian visible units enumerates 2^n_components hidden states: n_components={nh}"
                    if gaussian else f"enumerates 2^min(n_features, n_components) states: n_features={nv}, "
                                     f"n_components={nh}")
            raise InferenceError(f"log_partition {what}; over the limit of 2^{MAX_EXACT_UNITS}")
        return exact_log_partition(W.T, b, c, MAX_EXACT_UNITS, gaussian=gaussian)

    def exact_log_prob(self, X: Any) -> np.ndarray:
        """Exact ``log P(v) = -F(v) - log Z`` (eq. 4, nats) of each binary row of ``X``
        (float64); for Gaussian visible units the log density of each real row.
        See :meth:`log_partition` for the size limit."""
        X = self._check_X(X, binary=True)
        (W, b, c), log_z = self._params(np.float64), self.log_partition()
        return _dense_rows(X, lambda V, _: log_prob(V, W.T, b, c, log_z, _check_visible(self.visible)))

    def exact_log_likelihood(self, X: Any) -> float:
        """Exact mean log-likelihood of the rows of ``X`` (binary; real for Gaussian
        visible units: a log density), nats per case."""
        return float(self.exact_log_prob(X).mean())

    # -- networks and files -----------------------------------------------------------------------
    def to_network(self, name: str = "rbm", description: str | None = None) -> Network:
        """The machine as a Network: populations of visible units ``v0 ..`` (layer 0; or the
        names of the Network it came from) and hidden units ``h0 ..`` (layer 1) with their
        biases, and one symmetric projection of weights ``W.T``. Binary units only:
        ``visible="gaussian"`` raises ParameterError."""
        self._check_fitted()
        self._check_binary_units("to_network")
        W, b, c = self._params(np.float64)
        nh, nv = W.shape
        vis = list(getattr(self, "visible_names_", None) or [f"v{i}" for i in range(nv)])
        hid = list(getattr(self, "hidden_names_", None) or [f"h{j}" for j in range(nh)])
        if description is None:
            description = (f"RBM {nv}-{nh}: binary visible and hidden units, symmetric edges "
                           f"between the layers (eq. 2 of Hinton 2005)")
        layers = [Population("visible0", tuple(vis), b, "visible", 0),
                  Population("hidden1", tuple(hid), c, "hidden", 1)]
        edges = Projection("visible0<->hidden1", "visible0", "hidden1", W.T, "symmetric")
        return Network.from_populations(layers, [edges], name=name, description=description)

    def _check_binary_units(self, what: str) -> None:
        if _check_visible(self.visible):
            raise ParameterError(f"{what}: visible='gaussian' cannot be expressed as a neurosim "
                                 "Network or model file (their units are binary); pickle the "
                                 "machine or keep components_, intercept_visible_ and "
                                 "intercept_hidden_ instead")

    @classmethod
    def from_network(cls, net: Network, **params: Any) -> "RBM":
        """The inverse of :meth:`to_network`: a fitted machine with the weights and biases of
        ``net`` (visible units: the features, hidden units: the components, in unit order;
        symmetric visible-hidden edges with equal synapses only; a pair with no edge gets
        weight 0). ``params`` are the other constructor parameters (binary units only)."""
        if not isinstance(net, Network):
            raise ValidationError(f"from_network needs a neurosim Network, got {type(net).__name__}")
        where = f"network {net.name!r}"
        vis = [p for p in net.populations if p.role == "visible"]
        hid = [p for p in net.populations if p.role == "hidden"]
        other = [p for p in net.populations if p.role not in ("visible", "hidden")]
        if other:
            raise ValidationError(f"{where}: unit {other[0].units[0]!r} has role {other[0].role!r}; "
                                  "an RBM has only visible and hidden units")
        nv, nh = sum(p.size for p in vis), sum(p.size for p in hid)
        if not nv or not nh:
            raise ValidationError(f"{where}: an RBM needs visible and hidden units, got "
                                  f"{nv} visible and {nh} hidden")
        n = params.get("n_components", nh)
        if n != nh:
            raise ParameterError(f"n_components={n!r} but {where} has {nh} hidden units")
        rbm = cls(**{**params, "n_components": nh})
        rbm._validate()
        rbm._check_binary_units("from_network")
        rbm._set_weights({"W": _rbm_block(net, vis, hid).T, "b": np.concatenate([p.bias for p in vis]),
                          "c": np.concatenate([p.bias for p in hid])})
        names = [u for p in vis for u in p.units]
        rbm.visible_names_ = None if names == [f"v{i}" for i in range(nv)] else names
        names = [u for p in hid for u in p.units]
        rbm.hidden_names_ = None if names == [f"h{j}" for j in range(nh)] else names
        return rbm

    def _arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` arrays (see :meth:`save`)."""
        arrays = dict(W=self.components_.T, b=self.intercept_visible_, c=self.intercept_hidden_)
        for key in ("h_samples", *_OPTIONAL_STATE):
            if self.__dict__.get(key + "_") is not None:
                arrays[key] = self.__dict__[key + "_"]
        return arrays

    @classmethod
    def _read(cls, path: Path) -> tuple[dict, dict]:
        """The arrays and ``meta`` of an RBM ``.npz`` file (:meth:`Machine.save
        <neurosim.machines.base.Machine.save>`: ``W`` is ``components_.T``). A file of the
        older ``neurosim rbm train`` (``W``, ``b``, ``c`` and its flags as ``meta``) is read
        as if of this format: its flags as parameters, its whole ``meta`` as ``info``."""
        arrays, meta = read_npz_meta(path, "RBM file")
        if not {"W", "b", "c"} <= set(arrays):
            raise ModelFileError(f"{path}: not an RBM file (needs the arrays W, b and c; has "
                                 f"{', '.join(sorted(arrays)) or 'none'})")
        if meta.get("format") != _FORMAT:
            meta = {"format": _FORMAT, "params": _legacy_params(meta, arrays["W"]), "fitted": {}, "info": meta}
        return arrays, meta

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "RBM":
        rbm = cls(**params)
        rbm._validate()
        rbm._set_weights(arrays)
        for key in cls._FITTED_META:
            setattr(rbm, key, fitted.get(key, getattr(rbm, key, None)))
        return rbm

    def _set_weights(self, arrays: dict) -> None:
        """The fitted state from the arrays of :meth:`_arrays` (checked: shapes fitting, every
        value finite), in the ``dtype`` parameter's type, else ``W``'s if a float."""
        W, b, c = arrays["W"], arrays["b"], arrays["c"]
        if W.ndim != 2 or b.shape != (W.shape[0],) or c.shape != (W.shape[1],):
            raise ParameterError(f"W of shape {W.shape} does not fit b of shape {b.shape} and c of "
                                 f"shape {c.shape} (W is n_features x n_components)")
        for key, A in arrays.items():
            bad = first_non_finite(A)
            if bad:
                raise ParameterError(f"{key}{bad}: a parameter is not finite (a diverged run?)")
        dt = self._dtype or (W.dtype if W.dtype in FLOATS else np.dtype(np.float64))
        self.n_features_in_ = W.shape[0]
        self.components_ = np.ascontiguousarray(W.T, dtype=dt)
        self.intercept_visible_, self.intercept_hidden_ = b.astype(dt), c.astype(dt)
        self.random_state_ = check_random_state(self.random_state)
        self._reset_state()
        h = arrays.get("h_samples")
        if self.persistent and h is not None and h.shape == self.h_samples_.shape:
            self.h_samples_ = h.astype(dt)
        for name, n in zip(_OPTIONAL_STATE, (W.shape[1], W.shape[0], W.shape[1])):
            if arrays.get(name) is not None:
                if arrays[name].shape != (n,):
                    raise ParameterError(f"{name} of shape {arrays[name].shape} does not fit W of shape "
                                         f"{W.shape} (n_features x n_components)")
                setattr(self, name + "_", arrays[name].astype(dt))


_FORMAT = "neurosim.RBM/1"
_OPTIONAL_STATE = ("hidden_activity", "visible_offset", "hidden_offset")   # saved when present
_LEGACY_PARAMS = {"lr": "learning_rate", "batch": "batch_size", "cd": "k", "persistent": "persistent",
                  "weight_decay": "weight_decay", "epochs": "n_iter"}


def _rbm_block(net: Network, vis: list[Population], hid: list[Population]) -> np.ndarray:
    """``W[j, i]`` (hidden x visible) of :meth:`RBM.from_network`, projection by
    projection; 0 where no synapse joins a pair. Refuses, naming the first synapse at
    fault, a projection that is not symmetric, joins two units of one role, or whose
    two synapses differ."""
    where = f"network {net.name!r}"
    offset = {p.name: sum(x.size for x in side[:k]) for side in (vis, hid) for k, p in enumerate(side)}
    W = np.zeros((sum(p.size for p in hid), sum(p.size for p in vis)))
    for q in net.projections:
        pre, post = net.population(q.pre), net.population(q.post)
        present = np.ones(q.weights.shape, dtype=bool) if q.mask is None else q.mask
        if not present.any():
            continue
        i, j = np.unravel_index(int(np.argmax(present)), present.shape)
        a, b = pre.units[i], post.units[j]
        if q.kind != "symmetric":
            raise ValidationError(f"{where}: {q.kind} edge {a} -> {b}; an RBM has only symmetric edges")
        if pre.role == post.role:
            raise ValidationError(f"{where}: edge {a} -- {b} joins two {pre.role} units; an RBM "
                                  "connects only visible to hidden")
        if q.reverse is not None and not np.array_equal(q.reverse, q.weights):
            i, j = np.unravel_index(int(np.argmax(q.reverse != q.weights)), present.shape)
            raise ValidationError(f"{where}: symmetric edge {pre.units[i]} -- {post.units[j]} has unequal "
                                  f"synapses ({float(q.weights[i, j])!r} and {float(q.reverse[i, j])!r})")
        block = q.weights.T if pre.role == "visible" else q.weights       # hidden x visible
        h, v = (post, pre) if pre.role == "visible" else (pre, post)
        rows, cols = slice(offset[h.name], offset[h.name] + h.size), slice(offset[v.name], offset[v.name] + v.size)
        np.copyto(W[rows, cols], block, where=present.T if pre.role == "visible" else present)
    return W


def _legacy_params(meta: dict, W: np.ndarray) -> dict:
    """Constructor parameters from the flags of an older ``neurosim rbm train`` file
    (``hidden``, ``lr``, ``batch``, ``cd``, ``persistent``, ``weight_decay``, ``epochs``;
    its momentum schedule ended at 0.9 after 5 epochs, at 0.5 before)."""
    params = {new: meta[old] for old, new in _LEGACY_PARAMS.items() if old in meta}
    params["n_components"] = W.shape[1]
    params.setdefault("persistent", False)
    params["dtype"] = W.dtype.name if W.dtype in FLOATS else None
    if "epochs" in meta:
        m = RBM_M_MOMENTUM
        params["momentum"] = m["final_momentum"] if meta["epochs"] > m["momentum_switch"] else m["momentum"]
    return params
