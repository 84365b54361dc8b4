"""The one base of the machines: parameters in scikit-learn's manner, validation, files.

Every machine is a :class:`Machine`: ``__init__`` only stores its parameters
(:meth:`~Machine.get_params`, :meth:`~Machine.set_params` and ``repr`` read the
constructor's signature); validation happens once, at ``fit``, with the checkers below,
which name the bad value, the row, the column or the unit; a method that needs weights
before there are any raises :class:`NotFittedError`. :meth:`Machine.save` and
:meth:`Machine.load` are one file format (``.npz``: the arrays and JSON ``meta`` of
parameters, fitted counters and run information; ``.toml``: the model file of
``to_network``). :meth:`Machine._fit_loop` is the one training loop in minibatches, with
a hook after every minibatch for :mod:`neurosim.machines.runs`. See docs/architecture.md,
section "Machines".
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import modelfile
from ..errors import ModelFileError, NeurosimError, ParameterError, ValidationError
from ..npz import read_npz
from ..outputs import atomic_write, check_out

__all__ = ["Machine", "NetworkMachine", "NotFittedError", "Position", "annealed", "check_number", "check_bool",
           "check_random_state", "valid_random_state", "check_dtype", "DataTypeError", "check_rows", "check_values",
           "binary_rows", "cases", "first_non_finite", "json_scalar", "BINARY", "UNIT", "FINITE"]

SUFFIXES = (".npz", ".toml")


class NotFittedError(NeurosimError, AttributeError):
    """The machine has no weights yet: call ``fit``, ``partial_fit`` or ``from_network``."""


# -- parameter checks ------------------------------------------------------------------------
def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 integer: bool = False, low_open: bool = False, high_open: bool = False) -> Any:
    """``value`` as an int (``integer``) or a finite float within ``[low, high]`` (ends
    open as asked), else a ParameterError naming ``name`` and the value."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ParameterError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not integer and not math.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ParameterError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return int(value) if integer else float(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def valid_random_state(value: Any) -> bool:
    """None, a non-negative integer, a numpy Generator or a (legacy) numpy RandomState."""
    return (value is None or isinstance(value, (np.random.Generator, np.random.RandomState))
            or (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0))


def check_random_state(value: Any) -> np.random.Generator:
    """The one generator every draw goes through: a Generator is used as given; None or
    a non-negative integer seeds a new one; a RandomState (scikit-learn's kind) seeds a new
    one from one draw of its own, so that sharing it still gives different streams."""
    if not valid_random_state(value):
        raise ParameterError(f"random_state must be None, a non-negative integer, a "
                             f"numpy.random.Generator or a numpy.random.RandomState, got {value!r}")
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, np.random.RandomState):
        return np.random.default_rng(value.randint(0, 2 ** 63 - 1, dtype=np.int64))
    return np.random.default_rng(value)


# -- data -------------------------------------------------------------------------------------
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class DataTypeError(ParameterError, TypeError):
    """``X`` holds something that is not a number (a TypeError, as numpy's own)."""


def check_dtype(value: Any) -> np.dtype | None:
    """numpy.float32 or numpy.float64 as a dtype; None (follow the data) stays None."""
    try:
        dt = None if value is None else np.dtype(value)
    except TypeError:
        dt = ()
    if dt is not None and dt not in FLOATS:
        raise ParameterError(f"dtype must be None, numpy.float32 or numpy.float64, got {value!r}")
    return dt


def is_sparse(X: Any) -> bool:
    """A scipy sparse matrix or array (recognised without importing scipy)."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def cases(X: Any) -> Any:
    """The array of a Dataset (anything with ``data`` and ``names``), else X itself."""
    if not isinstance(X, np.ndarray) and hasattr(X, "data") and hasattr(X, "names"):
        return X.data
    return X


# rules of check_values: (mask of the bad values, what the message says)
FINITE = ((lambda v: ~np.isfinite(v), "values must be finite (no NaN or inf)"),)
UNIT = FINITE + ((lambda v: v < 0, "Negative values in data: values must lie in [0, 1]"),
                 (lambda v: v > 1, "values must lie in [0, 1]"))
BINARY = ((lambda v: (v != 0) & (v != 1), "states must be 0 or 1"),)


def check_rows(X: Any, what: str = "X", dtype: np.dtype | None = np.float64, n_columns: int | None = None,
               columns: Sequence[str] | None = None, values: tuple = BINARY, owner: str = "the machine") -> Any:
    """``X`` (an array, a Dataset or a scipy sparse matrix) as a 2-D C-contiguous array of
    ``dtype`` (None: float32 data stays float32, anything else is float64, as scikit-learn),
    or a CSR matrix of it (never densified), of ``n_columns`` columns if given,
    its values (a CSR's stored ones) checked by ``values`` (:data:`BINARY`, :data:`UNIT`,
    :data:`FINITE`): a ParameterError names the row, the column and its unit in ``columns``.
    No copy when ``X`` already is such an array."""
    X = cases(X)
    if dtype is None:
        dtype = X.dtype if getattr(X, "dtype", None) is not None and X.dtype in FLOATS else np.float64
    if is_sparse(X) and (len(X.shape) != 2 or X.dtype.kind not in "biuf"):
        raise ParameterError(f"{what} must be a 2-D sparse matrix of numbers, got shape {X.shape} of {X.dtype}")
    A = X.tocsr().astype(dtype, copy=False) if is_sparse(X) else _as_array(X, what, dtype, n_columns)
    if A.shape[0] == 0:
        raise ParameterError(f"{what} has no rows: 0 sample(s) (shape={A.shape}) while a minimum of 1 is "
                             "required (cases x features)")
    if n_columns is not None and A.shape[1] != n_columns and columns is not None:
        raise ParameterError(f"{what} has {A.shape[1]} columns; the machine has {n_columns} visible units "
                             f"({', '.join(columns)})")
    if n_columns is not None and A.shape[1] != n_columns:          # scikit-learn's words
        raise ParameterError(f"{what} has {A.shape[1]} features, but {owner} is expecting {n_columns} features "
                             f"as input (it was fitted with {n_columns})")
    if A.shape[1] == 0:
        raise ParameterError(f"{what} has 0 feature(s) (shape={A.shape}) while a minimum of 1 is "
                             "required (cases x features)")
    check_values(A, what, values, columns)
    return A


def _as_array(X: Any, what: str, dtype: Any, n_columns: int | None) -> np.ndarray:
    """``X`` as a 2-D C-contiguous array of ``dtype``; no copy when it already is one."""
    try:
        A = np.asarray(X)
        A = A.astype(dtype) if A.dtype.kind in "OUS" else A       # objects, numbers as text
    except (TypeError, ValueError) as exc:
        kind = DataTypeError if isinstance(exc, TypeError) else ParameterError
        raise kind(f"{what} must be a 2-D array of numbers (cases x features): {exc}") from None
    if A.dtype.kind == "c":
        raise ParameterError(f"{what}: Complex data not supported ({A.dtype}); give real numbers")
    if A.dtype.kind not in "biuf":
        raise ParameterError(f"{what} must be a 2-D array of numbers (cases x features), got "
                             f"{type(X).__name__} of {A.dtype}")
    if A.ndim != 2:
        hint = (": Reshape your data, with .reshape(-1, 1) for one feature or .reshape(1, -1) for "
                "one case" if A.ndim == 1 else "")
        raise ParameterError(f"{what} must be a 2-D array of shape (n_cases, {n_columns or 'n_features'}), "
                             f"got shape {A.shape}{hint}")
    return np.ascontiguousarray(A.astype(dtype, copy=False))


def check_values(A: Any, what: str, rules: tuple, columns: Sequence[str] | None = None) -> None:
    """ParameterError naming the first entry of ``A`` (an array, or a CSR matrix: its
    stored values, in the order of its rows) of the first rule ``(mask of values,
    message)`` that holds anywhere. :data:`UNIT` costs a minimum and a maximum when it holds."""
    v = A.data if is_sparse(A) else A
    if rules is UNIT and (v.size == 0 or (v.min() >= 0 and v.max() <= 1)):     # NaN fails it
        return
    for bad, rule in rules:
        mask = bad(v)
        if mask.any():
            i = np.flatnonzero(mask)[0]
            r, c = ((np.searchsorted(A.indptr, i, side="right") - 1, A.indices[i]) if is_sparse(A)
                    else np.unravel_index(i, A.shape))
            unit = "" if columns is None else f" (unit {columns[c]!r})"
            raise ParameterError(f"{what}[{r}, {c}] = {float(v.flat[i])!r}{unit}: {rule}")


def binary_rows(X: Any, n_columns: int, what: str, columns: Sequence[str]) -> np.ndarray:
    """``X`` as a float (n, n_columns) array of 0/1 (:func:`check_rows`), or a ParameterError
    naming the culprit (the row, the column and its unit in ``columns``)."""
    A = check_rows(X, what, np.float64, n_columns, columns)
    return A.toarray() if is_sparse(A) else A


def first_non_finite(A: np.ndarray) -> str | None:
    """``"[i, j] = nan"``: the index and value of the first non-finite entry of ``A``, or None."""
    if np.isfinite(A).all():
        return None
    at = tuple(int(i) for i in np.argwhere(~np.isfinite(A))[0])
    return f"[{', '.join(map(str, at))}] = {float(A[at])!r}"


def json_scalar(value: Any) -> Any:
    """A numpy scalar or array as the Python number or list JSON can write."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _same(a: Any, b: Any) -> bool:
    """A parameter equal to its default (arrays and odd values: only if identical)."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


# -- the training loop -------------------------------------------------------------------------
def annealed(lr: float, epoch: int, batch: int, n_batches: int, epochs: int, anneal: int) -> float:
    """The learning rate of minibatch ``batch`` of ``epoch`` in a stage of ``epochs``
    epochs: ``lr min(1, epochs left / anneal)``, the epochs left counted minibatch by
    minibatch. Constant up to the last ``anneal`` epochs, then falling linearly to
    ``lr / (anneal n_batches)`` at the last minibatch; ``anneal`` 0: constant. An
    ``anneal`` longer than the stage anneals all of it (a shortened preset run)."""
    left = epochs - epoch - batch / n_batches            # epochs left, this minibatch included
    return lr if anneal <= 0 else lr * min(1.0, left / min(anneal, epochs))


@dataclass
class Position:
    """Where a training loop stands: the epoch, and the minibatches of it done."""

    epoch: int = 0
    batch: int = 0


class Machine:
    """The base of every machine (see the module docstring). A subclass names the
    attribute that exists once it has weights (``_FITTED``) and, for files, its arrays
    (:meth:`_arrays`, :meth:`_from_arrays`)."""

    _FITTED = "weights_"
    _FITTED_META: tuple[str, ...] = ("n_iter_",)

    # -- parameters ----------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters and their current values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "Machine":
        """Set parameters by name (checked at the next fit); an unknown name is refused."""
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise ParameterError(f"unknown parameter {key!r} of {type(self).__name__} "
                                     f"(parameters: {', '.join(names)})")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        """The parameters that differ from their defaults; a required one, or the only one
        not keyword-only, by position (``RBM(500, batch_size=100)``)."""
        names = self._param_names()
        sig = [p for p in inspect.signature(type(self).__init__).parameters.values() if p.name in names]
        alone = sum(p.kind == p.POSITIONAL_OR_KEYWORD for p in sig) == 1
        args = []
        for p in sig:
            value = getattr(self, p.name)
            if p.default is p.empty or (alone and p.kind == p.POSITIONAL_OR_KEYWORD):
                if p.default is p.empty or not _same(value, p.default):
                    args.append(repr(value))
            elif not _same(value, p.default):
                args.append(f"{p.name}={value!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    # -- fitted state ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self._FITTED not in self.__dict__:
            raise NotFittedError(f"this {type(self).__name__} has no weights yet: call fit, partial_fit "
                                 f"or {type(self).__name__}.from_network first")

    def _say(self, message: str) -> None:
        """One line of ``verbose`` output (stderr)."""
        if getattr(self, "verbose", 0):
            print(message, file=sys.stderr, flush=True)

    # -- the training loop -------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, X_valid: Any = None) -> "Machine":
        """Fresh weights (:meth:`_begin_fit`), then the training loop over ``X``; with
        ``n_restarts`` > 1 (a parameter of the machines that have it), the restart of
        highest held-out log-likelihood on ``X_valid`` (:meth:`_fit_restarts`)."""
        if check_number("n_restarts", self.get_params().get("n_restarts", 1), 1, integer=True) > 1:
            return self._fit_restarts(X, X if X_valid is None else X_valid)
        self._fit_loop(self._begin_fit(X))
        return self

    def _fit_restarts(self, X: Any, X_valid: Any) -> "Machine":
        """Restarts chosen on held-out likelihood: ``n_restarts`` copies of the machine,
        each with its own Generator (``spawn`` of ``random_state``'s), train
        ``restart_epochs`` epochs; the one of highest ``_held_out_score(X_valid)`` (mean
        log-likelihood, nats) trains on to ``n_iter`` epochs and becomes this machine,
        exactly a fit from its Generator. ``restart_scores_`` holds every candidate's
        score, ``restart_chosen_`` the kept one."""
        screen = check_number("restart_epochs", self.restart_epochs, 1, integer=True)
        streams = check_random_state(self.random_state).spawn(self.n_restarts)
        candidates = [type(self)(**{**self.get_params(), "random_state": rng, "n_restarts": 1}) for rng in streams]
        data, scores = [], []
        for machine in candidates:
            data.append(machine._begin_fit(X))
            n_epochs, machine._n_epochs = machine._n_epochs, min(screen, machine._n_epochs)
            machine._fit_loop(data[-1])
            machine._n_epochs = n_epochs
            scores.append(float(machine._held_out_score(X_valid)))
        k = int(np.argmax(scores))
        best = candidates[k]
        best._fit_loop(data[k], Position(min(screen, best._n_epochs)))
        params = set(self._param_names())
        self.__dict__.update({key: v for key, v in best.__dict__.items() if key not in params})
        self.restart_scores_, self.restart_chosen_ = scores, k
        return self

    def _fit_loop(self, X: Any, at: Position | None = None,
                  after_batch: Callable[[Position], None] | None = None) -> None:
        """``_n_epochs`` epochs over ``X`` in minibatches of ``_batch_rows`` rows (both set
        by :meth:`_begin_fit`), the last one holding the rest: ``_epoch_order(X, epoch)``
        gives each epoch's order of rows (None: as given; a resumed run keeps ``_order``),
        ``_fit_batch(X, rows, at)`` makes one update, ``_end_epoch(X, epoch)`` closes an
        epoch. ``after_batch(at)`` is called after every minibatch (checkpoints, stopping:
        it may raise)."""
        at = at or Position()
        size = self._batch_rows
        n_batches = -(-X.shape[0] // size)
        while at.epoch < self._n_epochs:
            if at.batch == 0:
                self._order = self._epoch_order(X, at.epoch)
            while at.batch < n_batches:
                lo, hi = at.batch * size, (at.batch + 1) * size
                self._fit_batch(X, slice(lo, hi) if self._order is None else self._order[lo:hi], at)
                at.batch += 1
                if after_batch is not None:
                    after_batch(at)
            self._end_epoch(X, at.epoch)
            at.epoch, at.batch = at.epoch + 1, 0

    def _epoch_order(self, X: Any, epoch: int) -> np.ndarray | None:
        """The rows of ``X`` in the order of this epoch (None: as given)."""
        return None

    def _end_epoch(self, X: Any, epoch: int) -> None:
        """After each epoch (counters, divergence checks, ``verbose`` output)."""

    def _training_state(self) -> dict[str, np.ndarray]:
        """Arrays beyond :meth:`_arrays` that decide the rest of a run (velocities, chains)."""
        return {}

    def _set_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_training_state` gave."""

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def _json_defaults(cls) -> dict:
        """The defaults of ``__init__``'s keyword parameters, as :meth:`_json_params` holds
        them (those JSON cannot hold left out)."""
        params = inspect.signature(cls.__init__).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        return {k: v for k, v in json.loads(json.dumps(defaults, default=lambda _: None)).items() if v is not None
                or defaults[k] is None}

    def _json_params(self) -> dict:
        """``get_params()`` as JSON holds it (tuples and arrays as lists): a Generator or
        RandomState is stored as None (a generator's state is not kept), a dtype by its
        name (a string as it is: ``"bfloat16"``), a Network not at all (the file's ``network`` entry holds it)."""
        params = {}
        for key, value in self.get_params().items():
            if key == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
                value = None
            elif key == "dtype" and value is not None and not isinstance(value, str):
                value = np.dtype(value).name
            elif hasattr(value, "unit_list"):
                continue
            params[key] = value
        return json.loads(json.dumps(params, default=json_scalar))

    def _meta(self, info: dict | None) -> dict:
        fitted = {key: self.__dict__.get(key) for key in self._FITTED_META}
        return {"format": f"neurosim.{type(self).__name__}/1", "params": self._json_params(),
                "fitted": fitted, "info": info or {}}

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray], params: dict, fitted: dict) -> "Machine":
        raise NotImplementedError

    def save(self, path: str | Path, info: dict | None = None, **network: Any) -> None:
        """Write the machine, atomically, as :meth:`load` reads it back: ``.npz``, its
        arrays and ``meta`` (the constructor's parameters, the fitted counters and
        ``info``, any JSON-able run information); ``.toml``, the model file of
        ``to_network(**network)`` (weights and biases only)."""
        path = check_out(path, SUFFIXES, f"{type(self).__name__}.save")
        if path.suffix.lower() == ".toml":
            modelfile.save(self.to_network(**network), path)  # large nets: TOML beside an .npz
            return
        self._check_fitted()
        write_npz(path, self._arrays(), self._meta(info))

    @classmethod
    def load(cls, path: str | Path, **params: Any) -> "Machine":
        """Read a machine written by :meth:`save` (``.npz``) or any model file that
        ``from_network`` accepts (``.toml``); ``params`` override the stored parameters.
        An unreadable, truncated or inconsistent file raises ModelFileError naming it."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            article = "an" if cls.__name__[0] in "AEIOR" else "a"        # "an RBM"
            raise ModelFileError(f"{path}: {article} {cls.__name__} file is .npz (arrays and hyper-parameters) "
                                 f"or .toml (a model file), not {path.suffix or 'a file without suffix'!r}")
        if suffix == ".toml":
            return cls.from_network(modelfile.load(path), **params)
        arrays, meta = cls._read(path)
        try:
            return cls._from_npz(arrays, meta, params)
        except (ParameterError, ValidationError) as exc:
            raise ModelFileError(f"{path}: {exc}") from None

    @classmethod
    def load_info(cls, path: str | Path) -> dict:
        """The ``info`` record :meth:`save` stored in an ``.npz`` file; ``{}`` for a model file."""
        path = Path(path)
        return cls._read(path)[1].get("info", {}) if path.suffix.lower() == ".npz" else {}

    @classmethod
    def _read(cls, path: Path) -> tuple[dict, dict]:
        """The arrays and parsed ``meta`` of a machine's ``.npz`` file, checked to be of
        this class's format."""
        arrays, meta = read_npz_meta(path, f"{cls.__name__} file")
        if meta.get("format") != f"neurosim.{cls.__name__}/1":
            raise ModelFileError(f"{path}: not a {cls.__name__} file (format {meta.get('format')!r})")
        return arrays, meta

    @classmethod
    def _from_npz(cls, arrays: dict, meta: dict, params: dict) -> "Machine":
        stored = dict(meta.get("params", {}))
        unknown = set(stored) - set(cls._param_names())
        if unknown:
            raise ParameterError(f"meta: unknown parameter {sorted(unknown)[0]!r} (parameters: "
                                 f"{', '.join(cls._param_names())})")
        if stored.get("dtype") not in (None, "bfloat16"):       # bfloat16: torch products, no numpy type
            stored["dtype"] = np.dtype(stored["dtype"]).type
        return cls._from_arrays(arrays, {**stored, **params}, meta.get("fitted", {}))


class NetworkMachine(Machine):
    """A machine whose first parameter is the Network it trains from (never modified):
    ``_setup()`` validates it and sets the arrays named in ``_STATE`` from it. Its
    ``.npz`` holds those arrays and the network's model file text; :meth:`from_network`
    (and so ``load`` of a ``.toml``) starts from a model file's weights."""

    _STATE: tuple[str, ...] = ("weights_", "biases_")

    def _setup(self) -> None:
        raise NotImplementedError

    @classmethod
    def from_network(cls, net: Any, **params: Any) -> "NetworkMachine":
        """A machine with the weights of ``net``, ready to sample, score or train on."""
        machine = cls(net, **params)
        machine._setup()
        return machine

    def _arrays(self) -> dict[str, np.ndarray]:
        """The arrays of ``_STATE`` (without the trailing ``_``) and ``network``, the
        model file text of the net the machine was built on."""
        arrays = {name[:-1]: getattr(self, name) for name in self._STATE}
        return {**arrays, "network": np.array(modelfile.dumps(self.network))}

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "NetworkMachine":
        network = params.pop("network", None)
        if network is None:
            network = modelfile.loads(str(arrays["network"]), "the file's network")
        machine = cls.from_network(network, **params)
        for name in cls._STATE:
            if arrays[name[:-1]].shape != getattr(machine, name).shape:
                raise ParameterError(f"{name[:-1]} has shape {arrays[name[:-1]].shape}; the network needs "
                                     f"{getattr(machine, name).shape}")
            setattr(machine, name, arrays[name[:-1]])
        machine.n_iter_ = fitted.get("n_iter_", 0)
        return machine


def write_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """``arrays`` and ``meta`` (as JSON text) into the ``.npz`` file ``path``, atomically."""
    text = np.array(json.dumps(meta, default=json_scalar))
    atomic_write(path, lambda fh: np.savez(fh, **arrays, meta=text))


def read_npz_meta(path: Path, what: str) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the parsed ``meta`` of a neurosim ``.npz`` file, or a one-line
    ModelFileError naming it (missing, not a zip, truncated, corrupt, meta not JSON)."""
    arrays = read_npz(path, what)
    try:
        meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    except ValueError as exc:
        raise ModelFileError(f"{path}: the {what}'s meta is not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: the {what}'s meta is not a JSON object")
    return arrays, meta
