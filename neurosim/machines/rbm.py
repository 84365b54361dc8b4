"""Restricted Boltzmann machine with binary units, a drop-in for scikit-learn's BernoulliRBM.

An RBM is a Boltzmann machine (Hinton 2005, section 2) whose units form two layers,
visible ``v`` and hidden ``h``, with symmetric edges only between the layers. Its energy
(eq. 2) is ``E(v, h) = -b.v - c.h - h W v`` with ``W = components_`` of shape
``(n_components, n_features)``, ``b = intercept_visible_``, ``c = intercept_hidden_``.
Given one layer the units of the other are independent (eq. 1):
``P(h_j = 1 | v) = sigmoid(c_j + W_j . v)`` and ``P(v_i = 1 | h) = sigmoid(b_i + h . W_:i)``,
so Gibbs sampling alternates whole layers.

**Learning** is contrastive divergence, eq. 6 of Hinton (2005),

    dw_ij = lr (<v_i h_j>^0 - <v_i h_j>^k),

where ``<.>^0`` is measured with the data on the visible units and ``<.>^k`` after ``k``
alternating Gibbs steps (CD-k; Hinton 2002). As in Hinton's ``rbm.m`` the positive
statistics use the data and the hidden probabilities; sampled hidden states drive the
chain; the last step's negative statistics use the visible probabilities and the hidden
probabilities they give. With ``persistent=True`` (PCD, Tieleman 2008, the procedure of
scikit-learn's BernoulliRBM) the chain is not restarted at the data: ``h_samples_`` holds
``batch_size`` persistent chains that advance ``k`` steps per update, and the negative
statistics are their sampled visible states and the hidden probabilities these give.
Each phase's sum is divided by its number of cases, and a bias is a synapse from a unit
that is always on. The change is ``get_rule("cd").batched`` (``"pcd"``) of
:mod:`neurosim.learning.rules`, positive phase plus negative phase; the fused kernel
(:mod:`neurosim.compiled.bipartite`) writes it as one matrix product and the tests check
that the two agree.

**Gaussian visible units** (``visible="gaussian"``; Hinton's practical guide, section
13.2, with unit variance): real-valued ``v`` and energy

    E(v, h) = sum_i (v_i - b_i)^2 / 2 - c.h - h W v,

so ``P(h_j = 1 | v) = sigmoid(c_j + W_j . v)`` as before and ``v | h ~ N(b + h W, I)``.
The variance is fixed at 1: **standardise the data** (each feature to mean 0 and
standard deviation 1) first. CD-k then uses the *mean* ``b + h W`` for the reconstruction
(the last step's negative statistics, "use the mean for the reconstruction"); the visible
states of any earlier step of CD-k>1, and those of the persistent chains of PCD, are
sampled with unit-variance noise so that the chains are true Gibbs chains. The updates are
those of binary units (``-dE/db_i = v_i - b_i``). A smaller learning rate than for binary
data is usual (the guide suggests one or two orders of magnitude). The free energy is
``F(v) = sum_i (v_i - b_i)^2 / 2 - sum_j softplus(c_j + W_j . v)``, and ``exp(-F) / Z``
is a density; :meth:`sample` and :meth:`gibbs` return real-valued samples.

**Sparsity** (optional; Lee, Ekanadham and Ng 2008; the practical guide, section 11):
with ``sparsity_target=p``, a running estimate ``q_j`` of each hidden unit's mean
activation is kept in ``hidden_activity_``, ``q = 0.9 q + 0.1 mean(P(h_j = 1 | v))`` over
each minibatch's positive phase (the first minibatch sets it), and
``- learning_rate * sparsity_cost * (q_j - p)`` is added to the change of the hidden bias
``c_j``. This is the *hidden bias only* form: the guide also applies the term to the unit's
incoming weights, which is not done here.

**Speed.** One CD-1 update of a 784-500 RBM on a minibatch of 100 is 392 MFLOP of
matrix products: three conditional probabilities of ``2 * 100 * 784 * 500`` flops each
and the weight change, one product of twice that over the stacked positive and negative
cases (with PCD the two hidden-probability products are one as well). Everything else is
done in place in preallocated float32 buffers: the logistic function, the uniform noise
(``rng.random(dtype=float32, out=...)``) and the Bernoulli draws. This fused update is
:mod:`neurosim.compiled.bipartite`, the compiled backend's fast path for a bipartite
block, which every machine that trains one by CD shares. ``benchmarks/rbm_throughput.py``
measures it against scikit-learn and the machine's sgemm rate. The library never sets
BLAS threads; on a small machine shared with other work, one BLAS thread
(``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl``) avoided stalls of threaded OpenBLAS on
these shapes (see the benchmark's README).

**Schedules.** :meth:`fit` owns the training loop (written once, in
:mod:`neurosim.machines.base`), schedules included: ``momentum`` then ``final_momentum``
from epoch ``momentum_switch`` on (``rbm.m``: 0.5, then 0.9 after 5 epochs), the learning
rate annealed linearly over the last ``anneal_epochs`` epochs, and ``shuffle`` (one
random order of the rows). ``neurosim rbm train`` is such a fit, run resumably by
:func:`neurosim.machines.runs.fit_run`. The defaults are scikit-learn's loop.

**Scores.** :meth:`score_samples` is scikit-learn's pseudo-likelihood (one randomly
flipped feature per case, free energies of both). For small machines the exact values
are available by enumerating ``2^min(n_features, n_components)`` states of the smaller
layer: :meth:`log_partition` (log Z, eq. 3), :meth:`exact_log_prob` (log P(v) of each row,
eq. 4) and :meth:`exact_log_likelihood` (their mean).

**Files.** :meth:`RBM.save` and :meth:`RBM.load` are the one RBM file format, shared with
``neurosim rbm train|evaluate``: ``.npz`` holds the arrays (``W`` = ``components_.T``,
``b``, ``c``, the persistent chains) and JSON ``meta`` with every constructor parameter,
so a machine comes back with its hyper-parameters; ``.toml`` is the model-file export of
:meth:`to_network` (weights and biases only: a model file has no place for
hyper-parameters). Files of the older ``rbm train`` (``W``, ``b``, ``c`` and its flags as
``meta``) still load. **Divergence**: :meth:`fit` (after each pass) and
:meth:`partial_fit` (after each update) raise DivergenceError naming the parameter that
became non-finite.

Example
-------
>>> import numpy as np
>>> from neurosim import RBM
>>> from neurosim.data import bars_stripes
>>> X = bars_stripes(size=2).data                 # the 6 distinct 2x2 bars and stripes
>>> rbm = RBM(n_components=4, learning_rate=0.2, batch_size=6, n_iter=400, persistent=False,
...           random_state=0)
>>> rbm.fit(X).components_.shape                  # (n_components, n_features), as sklearn
(4, 4)
>>> rbm.transform(X).shape
(6, 4)
>>> bool(rbm.exact_log_likelihood(X) > np.log(1 / 16))    # better than the uniform model
True
>>> net = rbm.to_network()
>>> net.units[:5], net.unit("h0").layer
(['v0', 'v1', 'v2', 'v3', 'h0'], 1)
>>> Z = np.random.default_rng(0).standard_normal((50, 3))     # standardised real data
>>> g = RBM(2, visible="gaussian", learning_rate=0.01, n_iter=5, random_state=0).fit(Z)
>>> g.gibbs(Z[:2]).dtype, bool(np.isfinite(g.exact_log_likelihood(Z)))
(dtype('float64'), True)

References: G. E. Hinton (2005), What kind of graphical model is the brain?, IJCAI;
G. E. Hinton (2002), Training products of experts by minimizing contrastive divergence;
T. Tieleman (2008), Training restricted Boltzmann machines using approximations to the
likelihood gradient, ICML; G. E. Hinton (2010), A practical guide to training restricted
Boltzmann machines, UTML TR 2010-003; H. Lee, C. Ekanadham and A. Y. Ng (2008), Sparse
deep belief net model for visual area V2, NIPS.
"""

from __future__ import annotations

import math
import numbers
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..compiled import bipartite
from ..compiled.bipartite import Block, CD
from ..errors import DivergenceError, InferenceError, ModelFileError, ParameterError, ValidationError
from ..inference.exact import MAX_FREE_UNITS
from ..network import Network
from ..population import Population, Projection
from ..numerics import logsumexp as _logsumexp, softplus as _softplus
from .ais import exact_log_partition, free_energy
from .base import (Machine, NotFittedError, Position, annealed, check_bool, check_number, check_random_state,
                   read_npz_meta, valid_random_state)

__all__ = ["RBM", "MAX_EXACT_UNITS", "VISIBLE_UNITS", "NotFittedError", "ParameterError"]

MAX_EXACT_UNITS = MAX_FREE_UNITS   # exact scores enumerate 2^min(n_features, n_components) states
_STATES_PER_BLOCK = 1 << 12        # enumerated states per block in log_partition


# -- exact quantities (float64, small machines) ---------------------------------------------
def _free_energy(V: np.ndarray, W: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``F(v) = -log sum_h exp(-E(v, h))`` per row (:func:`.ais.free_energy`; ``W`` hidden x visible)."""
    return free_energy(V, W.T, b, c)


def _free_energy_gaussian(V: np.ndarray, W: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``F(v) = sum_i (v_i - b_i)^2 / 2 - sum_j softplus(c_j + W_j . v)`` per row
    (Gaussian visible units of unit variance)."""
    return 0.5 * ((V - b) ** 2).sum(axis=1) - _softplus(V @ W.T + c).sum(axis=1)


# -- parameter checks (the shared ones are in .base) -------------------------------------
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(value: Any) -> np.dtype | None:
    """numpy.float32 or numpy.float64 as a dtype; None (follow the data) stays None."""
    if value is None:
        return None
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt is None or dt not in _FLOATS:
        raise ParameterError(f"dtype must be None, numpy.float32 or numpy.float64, got {value!r}")
    return dt


def _check_visible(value: Any) -> bool:
    """True for Gaussian visible units, False for binary ones."""
    if isinstance(value, str) and value in VISIBLE_UNITS:
        return value == "gaussian"
    raise ParameterError(f"visible must be 'bernoulli' or 'gaussian', got {value!r}")


# -- input data --------------------------------------------------------------------------------
class DataTypeError(ParameterError, TypeError):
    """``X`` holds something that is not a number (a TypeError, as numpy's own)."""


def _data_dtype(X: Any) -> np.dtype:
    """The type a machine with ``dtype=None`` computes in: float32 data stays float32,
    anything else is float64 (as scikit-learn)."""
    dt = getattr(X, "dtype", None)
    return dt if dt is not None and dt in _FLOATS else np.dtype(np.float64)


def _is_sparse(X: Any) -> bool:
    """A scipy sparse matrix or array (recognised without importing scipy)."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _as_array(X: Any, what: str, dtype: np.dtype) -> np.ndarray:
    """``X`` as a 2-D C-contiguous array of ``dtype``; no copy when it already is one."""
    try:
        A = np.asarray(X)
        if A.dtype.kind == "O":
            A = A.astype(dtype)
    except TypeError as exc:
        raise DataTypeError(f"{what} must be a 2-D array of numbers (cases x features): {exc}") from None
    except ValueError as exc:
        raise ParameterError(f"{what} must be a 2-D array of numbers (cases x features): {exc}") from None
    if A.dtype.kind == "c":
        raise ParameterError(f"{what}: Complex data not supported ({A.dtype}); give real numbers")
    if A.dtype.kind not in "biuf":
        raise ParameterError(f"{what} must be a 2-D array of numbers (cases x features), got "
                             f"{type(X).__name__} of {A.dtype}")
    if A.ndim != 2:
        hint = (": Reshape your data, with .reshape(-1, 1) for one feature or .reshape(1, -1) for "
                "one case" if A.ndim == 1 else "")
        raise ParameterError(f"{what} must be a 2-D array (cases x features), got shape {A.shape}{hint}")
    return np.ascontiguousarray(A.astype(dtype, copy=False))


def _as_csr(X: Any, what: str, dtype: np.dtype) -> Any:
    """A scipy sparse ``X`` as a CSR matrix of ``dtype`` with explicit zeros kept."""
    if len(X.shape) != 2 or X.dtype.kind not in "biuf":
        raise ParameterError(f"{what} must be a 2-D sparse matrix of numbers, got shape "
                             f"{X.shape} of {X.dtype}")
    return X.tocsr().astype(dtype, copy=False)


def _check_values(A: Any, values: np.ndarray, bad: np.ndarray, what: str, rule: str) -> None:
    """ParameterError naming the first entry of ``A`` where ``bad`` (a mask of ``values``:
    ``A`` itself, or the stored values of a CSR matrix) holds."""
    if not bad.any():
        return
    if _is_sparse(A):
        i = int(np.flatnonzero(bad)[0])
        r, c, value = int(np.searchsorted(A.indptr, i, side="right")) - 1, int(A.indices[i]), values[i]
    else:
        r, c = np.argwhere(bad)[0]
        value = values[r, c]
    raise ParameterError(f"{what}[{r}, {c}] = {float(value)!r}: {rule}")


def _dense_rows(X: Any, fn, rows: int = 1024) -> np.ndarray:
    """``fn(block, first_row)`` of the rows of ``X``: of ``X`` itself if dense, else of
    blocks of ``rows`` densified rows at a time, the results stacked (a sparse matrix is
    never densified whole)."""
    if not _is_sparse(X):
        return fn(X, 0)
    return np.concatenate([fn(X[s:s + rows].toarray(), s) for s in range(0, X.shape[0], rows)])


VISIBLE_UNITS = ("bernoulli", "gaussian")



class RBM(Machine):
    """Restricted Boltzmann machine with binary (or Gaussian) visible units and binary
    hidden units, trained by CD-k or persistent CD (eq. 6 of Hinton 2005); scikit-learn's
    ``BernoulliRBM`` API.

    Parameters
    ----------
    n_components : int, default 256
        Number of hidden units.
    learning_rate : float, default 0.1
        Learning rate ``lr`` of eq. 6; the change of a minibatch is ``lr`` times the
        mean over its cases (as scikit-learn).
    batch_size : int, default 10
        Cases per minibatch; with ``persistent=True`` also the number of persistent chains.
    n_iter : int, default 10
        Passes over the training data in :meth:`fit`.
    verbose : int, default 0
        Print the mean pseudo-likelihood and the time after each pass (to stderr).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Normalised once per :meth:`fit` (or first use) to the Generator
        ``random_state_``; every draw (initial weights, Gibbs sampling, pseudo-likelihood
        corruption) goes through it. A RandomState (scikit-learn's kind) seeds it with one
        draw of its own.
    k : int, default 1
        Gibbs steps per update (CD-k, PCD-k).
    persistent : bool, default True
        Persistent contrastive divergence (PCD-k; scikit-learn's procedure); False: CD-k
        (Hinton's ``rbm.m``), the chain restarted at the data.
    momentum : float in [0, 1), default 0
        ``velocity = momentum * velocity + change``; the parameters move by the velocity.
        With ``final_momentum``, the momentum of the first ``momentum_switch`` epochs.
    final_momentum : None or float in [0, 1), default None
        The momentum from epoch ``momentum_switch`` on (``rbm.m``: 0.5 for 5 epochs,
        then 0.9); None: ``momentum`` throughout.
    momentum_switch : int, default 5
        Epochs of :meth:`fit` at ``momentum`` before ``final_momentum``.
    anneal_epochs : int, default 0
        Over the last that many epochs of :meth:`fit` the learning rate falls linearly
        towards zero, minibatch by minibatch (:func:`~neurosim.machines.base.annealed`;
        all of them if there are fewer); 0: constant.
    shuffle : bool, default False
        :meth:`fit` visits the rows in one random order (drawn once, before the initial
        weights, as ``neurosim rbm train``); False: in the order given (scikit-learn).
    weight_decay : float, default 0
        L2 penalty on the weights (not the biases): ``- lr * weight_decay * W`` is added
        to each weight change.
    dtype : None, numpy.float32 or numpy.float64, default None
        Type of the parameters and of the training arithmetic (inputs are converted).
        None: that of the data :meth:`fit` first sees, as scikit-learn (float32 stays
        float32, anything else is float64). float32 trains about twice as fast.
    visible : {"bernoulli", "gaussian"}, default "bernoulli"
        Binary visible units (data in [0, 1]), or Gaussian ones of unit variance (any
        finite data, expected standardised; the reconstruction uses the mean). Gaussian
        machines have no pseudo-likelihood (:meth:`score_samples` raises InferenceError)
        and no Network form (:meth:`to_network` and ``.toml`` :meth:`save` raise
        ParameterError).
    sparsity_target : None or float in (0, 1), default None
        Target mean activation ``p`` of each hidden unit; None: no sparsity term.
    sparsity_cost : float >= 0, default 0.1
        Weight of the sparsity term ``- learning_rate * sparsity_cost * (q_j - p)`` added
        to each hidden-bias change (hidden biases only; see the module docstring).

    Attributes
    ----------
    components_ : ndarray, shape (n_components, n_features)
        The weights ``W``.
    intercept_hidden_ : ndarray, shape (n_components,)
    intercept_visible_ : ndarray, shape (n_features,)
    h_samples_ : ndarray, shape (batch_size, n_components)
        Hidden states of the persistent chains (only with ``persistent=True``).
    hidden_activity_ : ndarray, shape (n_components,)
        Running estimate ``q`` of each hidden unit's mean activation (only once a
        sparsity target has been used in training).
    n_features_in_ : int
    n_iter_ : int
        Passes over the data made by :meth:`fit`.
    n_updates_ : int
        Weight updates (minibatches) since the weights were initialised.
    random_state_ : numpy.random.Generator

    The defaults are scikit-learn's procedure, PCD-1 with ``learning_rate=0.1``, minibatches
    of 10 and 10 passes: :meth:`fit` takes consecutive minibatches of ``batch_size`` rows of
    ``X`` in its order, the last one holding the rest, as scikit-learn (shuffle the rows
    first if they are sorted). Input may be an array or a scipy sparse matrix (densified
    one minibatch, or one block of rows, at a time). scikit-learn's estimator checks pass
    (``tests/test_rbm_sklearn.py``; scikit-learn is the optional extra
    ``neurosim[sklearn]``, imported only when scikit-learn asks for ``__sklearn_tags__``).

    Differences from scikit-learn: values of ``X`` outside [0, 1] (and NaN or inf) are
    refused with a ParameterError naming the entry, where BernoulliRBM trains on them; the
    negative phase of PCD is divided by the number of chains (``batch_size``), not by the
    minibatch's rows (they differ only for a last, shorter minibatch); float32 machines
    draw float32 noise; ``verbose`` prints to stderr; a training pass that makes a
    parameter non-finite raises DivergenceError (naming the epoch or update and the
    parameter; the machine keeps the non-finite values); there is no
    ``get_feature_names_out``. :meth:`gibbs` returns a bool array as scikit-learn does,
    :meth:`sample` returns int8 states.
    """

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.1,
                 batch_size: int = 10, n_iter: int = 10, verbose: int = 0,
                 random_state: Any = None, k: int = 1, persistent: bool = True,
                 momentum: float = 0.0, weight_decay: float = 0.0, dtype: Any = None,
                 visible: str = "bernoulli", sparsity_target: float | None = None,
                 sparsity_cost: float = 0.1, final_momentum: float | None = None,
                 momentum_switch: int = 5, anneal_epochs: int = 0, shuffle: bool = False) -> None:
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

    _FITTED = "components_"
    _FITTED_META = ("n_iter_", "n_updates_", "visible_names_", "hidden_names_")

    # -- parameters ----------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        """scikit-learn's description of this estimator: an unsupervised transformer of
        dense or sparse non-negative input whose output has the machine's ``dtype``.
        scikit-learn calls it; it is imported here only, so it stays optional."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        dtypes = ["float64", "float32"] if self.dtype is None else [np.dtype(self.dtype).name]

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
        self._dtype = _check_dtype(self.dtype)
        self._gaussian = _check_visible(self.visible)
        cost = check_number("sparsity_cost", self.sparsity_cost, 0.0)
        sparsity = None
        if self.sparsity_target is not None:
            target = check_number("sparsity_target", self.sparsity_target, 0.0, 1.0,
                                  low_open=True, high_open=True)
            sparsity = (target, cost)
        self._cd = CD(k=int(self.k), gaussian=self._gaussian, sparsity=sparsity)
        if not valid_random_state(self.random_state):
            check_random_state(self.random_state)          # raises, naming the value

    # -- data ----------------------------------------------------------------------------
    def _check_X(self, X: Any, what: str = "X", binary: bool = False, dtype: Any = None) -> Any:
        """``X`` as a 2-D C-contiguous array of ``dtype`` (default: that of the fitted
        weights, else the ``dtype`` parameter), or a scipy sparse matrix as a CSR matrix of
        ``dtype`` (its stored values checked, never densified whole), with values in [0, 1]
        (0 or 1 if ``binary``; any finite values for Gaussian visible units), or a
        ParameterError naming the culprit. No copy when it already is one."""
        if not isinstance(X, np.ndarray) and hasattr(X, "data") and hasattr(X, "names"):
            X = X.data                               # a neurosim Dataset
        if dtype is None:
            W = self.__dict__.get("components_")
            dtype = W.dtype if W is not None else _check_dtype(self.dtype)
        if dtype is None:
            dtype = _data_dtype(X)
        A = _as_csr(X, what, dtype) if _is_sparse(X) else _as_array(X, what, dtype)
        if A.shape[0] == 0:
            raise ParameterError(f"{what} has 0 sample(s) (shape={A.shape}) while a minimum of 1 "
                                 "is required (cases x features)")
        n = getattr(self, "n_features_in_", None)
        if n is not None and A.shape[1] != n:
            raise ParameterError(f"{what} has {A.shape[1]} features, but RBM is expecting {n} "
                                 f"features as input (it was fitted with {n})")
        if A.shape[1] == 0:
            raise ParameterError(f"{what} has 0 feature(s) (shape={A.shape}) while a minimum of 1 "
                                 "is required (cases x features)")
        values = A.data if _is_sparse(A) else A
        if _check_visible(self.visible):            # Gaussian units: any finite value
            _check_values(A, values, ~np.isfinite(values), what, "values must be finite (no NaN or inf)")
            return A
        if not (values.size == 0 or (values.min() >= 0 and values.max() <= 1)):  # NaN fails too
            _check_values(A, values, ~np.isfinite(values), what, "values must be finite (no NaN or inf)")
            _check_values(A, values, values < 0, what, "Negative values in data: values must lie in [0, 1]")
            _check_values(A, values, values > 1, what, "values must lie in [0, 1]")
        if binary:
            _check_values(A, values, (values != 0) & (values != 1), what,
                          "exact log-probabilities need binary states 0 or 1")
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

    def _reset_state(self) -> None:
        dt, nh = self.components_.dtype, self.components_.shape[0]
        if self.persistent:
            self.h_samples_ = np.zeros((int(self.batch_size), nh), dtype=dt)
        else:
            self.__dict__.pop("h_samples_", None)
        self.__dict__.pop("hidden_activity_", None)
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
        """One update (eq. 6) on ``batch`` (rows of the machine's dtype): the compiled
        backend's fused CD-k or PCD-k of a bipartite block
        (:mod:`neurosim.compiled.bipartite`), in buffers kept between updates. Its weight
        change, ``lr/b * H0.T @ V0 - lr/m * Hk.T @ Vk`` in one matrix product, equals the
        rule's batched form ``get_rule("cd").batched(H0, V0, "positive", lr/b) +
        get_rule("cd").batched(Hk, Vk, "negative", lr/m)`` (tested). Calling the rule
        itself (two products of half the size, two temporaries, two additions) cost 4 to 13%
        of the training throughput of a 784-500 RBM in four runs of
        ``benchmarks/rbm_throughput.py``, so the hot loop does not."""
        block = Block(self.components_.T, self.intercept_visible_, self.intercept_hidden_)
        chain = self.h_samples_ if self.persistent else None
        self._buffers = bipartite.buffers(self._buffers, block, len(batch), len(batch if chain is None else chain))
        self._learn(block, bipartite.statistics(block, batch, self._cd, rng, self._buffers, chain=chain))

    def _learn(self, block: Block, stats: bipartite.Statistics) -> None:
        """Eq. 6 for the chain's statistics (the kernel's :func:`~neurosim.compiled.bipartite.change`:
        sparsity updates ``hidden_activity_``), then momentum and weight decay as the
        parameters say."""
        d, q = bipartite.change(block, stats, self._cd, self._lr, self._buffers,
                                self.__dict__.get("hidden_activity_"))
        if q is not None:
            self.hidden_activity_ = q
        self._apply(block, d)

    def _apply(self, block: Block, d: dict[str, np.ndarray]) -> None:
        """Add a change, in place: velocities (``_velocity``, made at the first update with
        momentum) only while ``momentum`` is not 0."""
        velocity = None
        if self._momentum:
            if self._velocity is None:
                self._velocity = tuple(np.zeros_like(a) for a in (self.components_, self.intercept_visible_,
                                                                   self.intercept_hidden_))
            velocity = dict(zip("Wbc", (self._velocity[0].T, *self._velocity[1:])))
        bipartite.apply(block, d, self._lr, self._momentum, self._decay, velocity)
        self.n_updates_ += 1

    # -- estimator API -----------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "RBM":
        """Fresh weights (``N(0, 0.01^2)``, zero biases), then ``n_iter`` passes over ``X``
        (rows: cases, values in [0, 1]; an array or a scipy sparse matrix, densified one
        minibatch at a time) in consecutive minibatches of ``batch_size`` rows, the last
        one holding the rest, as scikit-learn's (with ``shuffle``, of the rows in one
        random order). The momentum and learning rate follow ``final_momentum``,
        ``momentum_switch`` and ``anneal_epochs``. Raises DivergenceError, naming the epoch
        and the parameter, when a pass leaves a parameter non-finite."""
        return super().fit(X)

    def _begin_fit(self, X: Any) -> Any:
        """Validate, convert ``X``, draw the order (``shuffle``) and the initial weights."""
        self._validate()
        self.__dict__.pop("n_features_in_", None)
        X = self._check_X(X, dtype=self._dtype or _data_dtype(X))
        rng = self.random_state_ = check_random_state(self.random_state)
        self._shuffled = rng.permutation(X.shape[0]) if self.shuffle else None
        self._initialize(X.shape[1], X.dtype, rng)
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
            self._step(batch.toarray() if _is_sparse(batch) else batch, self.random_state_)

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
        self._validate()
        first = "components_" not in self.__dict__
        if first:
            self.__dict__.pop("n_features_in_", None)
        X = self._check_X(X)
        if first:
            self.random_state_ = check_random_state(self.random_state)
            self._initialize(X.shape[1], X.dtype, self.random_state_)
        rng = self._ensure_ready()
        if self.persistent and getattr(self, "h_samples_", None) is None:
            self.h_samples_ = np.zeros((int(self.batch_size), self.components_.shape[0]),
                                       self.components_.dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging update is named below
            self._step(X.toarray() if _is_sparse(X) else X, rng)
        self._check_diverged(f"update {self.n_updates_}")
        return self

    def _check_diverged(self, when: str) -> None:
        """DivergenceError naming the first non-finite parameter (``when``: the epoch or
        update just done). One pass over each array: about 1% of a 784-500 update."""
        for name in ("components_", "intercept_visible_", "intercept_hidden_"):
            A = self.__dict__[name]
            if not np.isfinite(A).all():
                at = tuple(int(i) for i in np.argwhere(~np.isfinite(A))[0])
                raise DivergenceError(
                    f"{when}: {name}[{', '.join(map(str, at))}] = {float(A[at])!r}: training "
                    f"diverged (a parameter became non-finite); lower learning_rate "
                    f"(now {self.learning_rate!r})")

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
        return _dense_rows(self._check_X(X), lambda V, _: self._free_energy64(V.astype(np.float64)))

    def _free_energy64(self, X: np.ndarray) -> np.ndarray:
        fe = _free_energy_gaussian if _check_visible(self.visible) else _free_energy
        return fe(X, *self._params(np.float64))

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
        params = self._params(np.float64)

        def pseudo_likelihood(V, first):
            V = V.astype(np.float64)
            rows, cols = np.arange(len(V)), flips[first:first + len(V)]
            V_ = V.copy()
            V_[rows, cols] = 1.0 - V_[rows, cols]
            fe, fe_ = _free_energy(V, *params), _free_energy(V_, *params)
            return -nv * _softplus(-(fe_ - fe))

        return _dense_rows(X, pseudo_likelihood)

    # -- exact quantities (small machines) -------------------------------------------------------
    def log_partition(self) -> float:
        """Exact ``log Z`` (eq. 3) by enumerating the ``2^min(n_features, n_components)``
        states of the smaller layer and summing the other out in closed form (float64).
        Raises InferenceError above ``2^MAX_EXACT_UNITS`` states.

        Gaussian visible units: the visible layer is integrated out in closed form,

            Z = sum_h exp(c.h) int exp(-||v - b||^2 / 2 + h W v) dv
              = (2 pi)^(n_features / 2) sum_h exp(c.h + b.(h W) + ||h W||^2 / 2),

        over the ``2^n_components`` hidden states (so ``n_components`` is what is limited)."""
        W, b, c = self._params(np.float64)
        nh, nv = W.shape
        if _check_visible(self.visible):
            if nh > MAX_EXACT_UNITS:
                raise InferenceError(f"log_partition of Gaussian visible units enumerates "
                                     f"2^n_components hidden states: n_components={nh}; over the "
                                     f"limit of 2^{MAX_EXACT_UNITS}")
            logs = []
            for S in self._state_blocks(nh):
                A = S @ W                                  # (states, n_features): h W
                logs.append(S @ c + A @ b + 0.5 * np.einsum("ij,ij->i", A, A))
            return _logsumexp(np.concatenate(logs)) + 0.5 * nv * math.log(2 * math.pi)
        if min(nh, nv) > MAX_EXACT_UNITS:
            raise InferenceError(f"log_partition enumerates 2^min(n_features, n_components) states: "
                                 f"n_features={nv}, n_components={nh}; over the limit of "
                                 f"2^{MAX_EXACT_UNITS}")
        return exact_log_partition(W.T, b, c, MAX_EXACT_UNITS)

    @staticmethod
    def _state_blocks(n: int):
        """All ``2^n`` binary states of ``n`` units, in blocks of rows (float64)."""
        for start in range(0, 2 ** n, _STATES_PER_BLOCK):
            codes = np.arange(start, min(start + _STATES_PER_BLOCK, 2 ** n), dtype=np.int64)
            yield ((codes[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.float64)

    def exact_log_prob(self, X: Any) -> np.ndarray:
        """Exact ``log P(v) = -F(v) - log Z`` (eq. 4, nats) of each binary row of ``X``
        (float64); for Gaussian visible units the log density of each real row.
        See :meth:`log_partition` for the size limit."""
        X = self._check_X(X, binary=True)
        return _dense_rows(X, lambda V, _: -self._free_energy64(V.astype(np.float64))) - self.log_partition()

    def exact_log_likelihood(self, X: Any) -> float:
        """Exact mean log-likelihood of the rows of ``X`` (binary; real for Gaussian
        visible units: a log density), nats per case."""
        return float(self.exact_log_prob(X).mean())

    # -- networks and files -----------------------------------------------------------------------
    def to_network(self, name: str = "rbm", description: str | None = None) -> Network:
        """The machine as a Network: visible units ``v0 ..`` (role visible, layer 0; or the
        names of the Network it came from), hidden units ``h0 ..`` (role hidden, layer 1),
        with the biases, and a symmetric edge ``v_i -- h_j`` of weight ``W[j, i]`` for every
        pair. A Network has binary units only, so a machine with ``visible="gaussian"``
        raises ParameterError rather than write a Bernoulli model (keep such a machine with
        :mod:`pickle` or its arrays)."""
        self._check_fitted()
        self._check_binary_units("to_network")
        W, b, c = self._params(np.float64)
        nh, nv = W.shape
        vis = list(getattr(self, "visible_names_", None) or [f"v{i}" for i in range(nv)])
        hid = list(getattr(self, "hidden_names_", None) or [f"h{j}" for j in range(nh)])
        if description is None:
            description = (f"RBM {nv}-{nh}: binary visible and hidden units, symmetric edges "
                           f"between the layers (eq. 2 of Hinton 2005)")
        layers = [Population("visible0", tuple(vis), b, "visible", 0), Population("hidden1", tuple(hid), c, "hidden", 1)]
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
        ``net``, ready to transform, sample, score or train further. Units of role
        ``visible`` are the features and those of role ``hidden`` the components, each in
        unit order; every edge must be symmetric, join a visible and a hidden unit and have
        equal synapses. A visible-hidden pair with no edge gets weight 0 (the RBM is fully
        connected). ``params`` are the other constructor parameters; ``visible="gaussian"``
        raises ParameterError (a Network's units are binary)."""
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
        dt = rbm._dtype or np.dtype(np.float64)
        rbm.n_features_in_ = nv
        rbm.components_ = _rbm_block(net, vis, hid).astype(dt)
        rbm.intercept_visible_ = np.concatenate([p.bias for p in vis]).astype(dt)
        rbm.intercept_hidden_ = np.concatenate([p.bias for p in hid]).astype(dt)
        names = [u for p in vis for u in p.units]
        rbm.visible_names_ = None if names == [f"v{i}" for i in range(nv)] else names
        names = [u for p in hid for u in p.units]
        rbm.hidden_names_ = None if names == [f"h{j}" for j in range(nh)] else names
        rbm.random_state_ = check_random_state(rbm.random_state)
        rbm._reset_state()
        return rbm

    def _arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` arrays (see :meth:`save`)."""
        arrays = dict(W=self.components_.T, b=self.intercept_visible_, c=self.intercept_hidden_)
        for key in ("h_samples", "hidden_activity"):
            if self.__dict__.get(key + "_") is not None:
                arrays[key] = self.__dict__[key + "_"]
        return arrays

    def save(self, path: str | Path, name: str = "rbm", description: str | None = None,
             info: dict | None = None) -> None:
        """Write the machine, atomically, as :meth:`load` reads it back (the format of
        :meth:`Machine.save <neurosim.machines.base.Machine.save>`).

        ``.npz`` (the RBM file): the arrays ``W`` (n_features x n_components, i.e.
        ``components_.T``), ``b`` (visible biases), ``c`` (hidden biases), the persistent
        chains ``h_samples`` and ``hidden_activity`` when the machine has them, and ``meta``,
        JSON text of every constructor parameter (:meth:`get_params`), the fitted counters and
        unit names, and ``info`` (any JSON-able run information, e.g. the CLI's). A
        ``random_state`` that is a Generator or RandomState is stored as None (a generator's
        state is not kept); so is the momentum's velocity (training continued from the file
        starts with none). ``.toml``: a neurosim model file (:meth:`to_network`), weights and
        biases only; a model file has no place for hyper-parameters, so pass them to
        :meth:`load`. Binary visible units only for ``.toml``."""
        super().save(path, info, name=name, description=description)

    @classmethod
    def load(cls, path: str | Path, **params: Any) -> "RBM":
        """Read a machine written by :meth:`save` (``.npz``, with its hyper-parameters;
        also the older ``neurosim rbm train`` files, whose ``meta`` held the run's flags) or
        any model file :meth:`from_network` accepts (``.toml``). ``params`` override the
        stored constructor parameters. An unreadable, truncated or inconsistent file raises
        ModelFileError naming it."""
        return super().load(path, **params)

    @staticmethod
    def load_info(path: str | Path) -> dict:
        """The ``info`` record :meth:`save` stored in an ``.npz`` file (for the older CLI
        files, their whole ``meta``); ``{}`` for a model file."""
        path = Path(path)
        if path.suffix.lower() != ".npz":
            return {}
        meta = RBM._read(path)[1]
        return meta.get("info", {}) if meta.get("format") == _FORMAT else meta

    @classmethod
    def _read(cls, path: Path) -> tuple[dict, dict]:
        """The arrays and ``meta`` of an RBM ``.npz`` file (this format or the older CLI's)."""
        arrays, meta = read_npz_meta(path, "RBM file")
        if not {"W", "b", "c"} <= set(arrays):
            raise ModelFileError(f"{path}: not an RBM file (needs the arrays W, b and c; has "
                                 f"{', '.join(sorted(arrays)) or 'none'})")
        return arrays, meta

    @classmethod
    def _from_npz(cls, arrays: dict, meta: dict, params: dict) -> "RBM":
        """A fitted machine from the arrays and ``meta`` of an ``.npz`` file."""
        W, b, c = arrays["W"], arrays["b"], arrays["c"]
        if W.ndim != 2 or b.shape != (W.shape[0],) or c.shape != (W.shape[1],):
            raise ParameterError(f"W of shape {W.shape} does not fit b of shape {b.shape} and c of "
                                 f"shape {c.shape} (W is n_features x n_components)")
        for key, A in arrays.items():
            if not np.isfinite(A).all():
                at = tuple(int(i) for i in np.argwhere(~np.isfinite(A))[0])
                raise ParameterError(f"{key}[{', '.join(map(str, at))}] = {float(A[at])!r}: a "
                                     "parameter is not finite (a diverged run?)")
        if meta.get("format") == _FORMAT:
            return super()._from_npz(arrays, meta, params)
        return cls._from_arrays(arrays, {**_legacy_params(meta, W), **params}, {})

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "RBM":
        W = arrays["W"]
        rbm = cls(**params)
        rbm._validate()
        dt = rbm._dtype or (W.dtype if W.dtype in _FLOATS else np.dtype(np.float64))
        rbm.n_features_in_ = W.shape[0]
        rbm.components_ = np.ascontiguousarray(W.T, dtype=dt)
        rbm.intercept_visible_ = arrays["b"].astype(dt)
        rbm.intercept_hidden_ = arrays["c"].astype(dt)
        rbm.random_state_ = check_random_state(rbm.random_state)
        rbm._reset_state()
        h = arrays.get("h_samples")
        if rbm.persistent and h is not None and h.shape == rbm.h_samples_.shape:
            rbm.h_samples_ = h.astype(dt)
        if arrays.get("hidden_activity") is not None:
            rbm.hidden_activity_ = arrays["hidden_activity"].astype(dt)
        for key in cls._FITTED_META:
            setattr(rbm, key, fitted.get(key, getattr(rbm, key, None)))
        return rbm


_FORMAT = "neurosim.RBM/1"
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
    params["dtype"] = W.dtype.type if W.dtype in _FLOATS else None
    if "epochs" in meta:
        params["momentum"] = 0.9 if meta["epochs"] > 5 else 0.5
    return params
