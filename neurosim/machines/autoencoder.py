"""The deep autoencoder of Hinton and Salakhutdinov (Science, 2006): a stack of RBMs,
unrolled into an encoder and a decoder, fine-tuned by backpropagation.

Pretraining is greedy, one RBM per layer on the layer below's hidden probabilities
(pixels in [0, 1] used as probabilities), by the DBN trainer's CD-1 step
(:func:`~.dbn_train.rbm_step`, ``rbm.m``); the top RBM's hidden units are linear with
unit-variance Gaussian noise (``rbmhidlinear.m``: :attr:`~neurosim.compiled.bipartite.CD.gaussian_hidden`),
so the code is real-valued. :func:`unroll` turns the stack into a feed-forward net: the
encoder is the recognition weights ``W_l`` and hidden biases, the decoder their
transposes with the visible biases (tied initial weights), the code layer linear, the
output logistic. Fine-tuning is conjugate gradient with 3 line searches per minibatch of
1000 (:func:`~.backprop.backprop_cg_step`, ``backprop.m``/``CG_MNIST.m``) on the mean
cross-entropy between the input pixels and their reconstruction. The same run trains the
baselines: logistic PCA (a 784-30-784 net: linear code, logistic output, trained by the
same backprop) and PCA (numpy SVD). :class:`AutoencoderTrainer` checkpoints it all
(:class:`~.runs.Checkpoints`), resumable to the weights of an uninterrupted run. The
recipe and its sources: docs/machines/autoencoder.md.
"""

from __future__ import annotations

import math
import numbers
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..compiled import arrays
from ..compiled.bipartite import CD
from ..errors import DivergenceError, NeurosimError, ParameterError
from ..network import Network
from ..numerics import sigmoid
from ..population import Population, Projection
from . import runs
from .backprop import _features, backprop_cg_step
from .base import UNIT, Machine, check_number, check_rows, read_npz_meta
from .dbn import _unit_names
from .dbn_train import PRESETS, RBM_M, Progress, new_rbm, rbm_step, write_checkpoint
from .neighbours import knn_error

__all__ = ["AutoencoderRecipe", "AutoencoderTrainer", "DeepAutoencoder", "unroll", "encode", "decode", "up_pass",
           "down_pass", "squared_error", "reconstruct_net", "load_run", "evaluate",
           "pca_codes", "pca_decode", "RBM_LINEAR", "RBM_SETTINGS"]

RBM_LINEAR = CD(gaussian_hidden=True, summed_differences=True)   # rbmhidlinear.m's CD-1


def check_layers(layers: Any) -> tuple[int, ...]:
    """``layers`` (hidden sizes, the code last) as positive ints, else a ParameterError
    naming the bad size (a code layer of 0 by name)."""
    try:
        sizes = tuple(layers)
    except TypeError:
        raise ParameterError(f"layers must be a sequence of hidden-layer sizes, got {layers!r}") from None
    if not sizes:
        raise ParameterError("layers must name at least the code layer, got none")
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            what = "the code layer (the last)" if i == len(sizes) - 1 else f"hidden layer {i + 1}"
            raise ParameterError(f"layers: {what} must be a positive integer number of units, got {n!r}")
    return tuple(int(n) for n in sizes)


RBM_SETTINGS = PRESETS["hinton2006"]     # rbm.m's minibatch, rates, weight cost, momentum and initial weights


@dataclass
class AutoencoderRecipe:
    """Every setting of a run (defaults: ``mnistdeepauto.m``, ``rbmhidlinear.m``,
    ``backprop.m``; docs/machines/autoencoder.md); the RBMs' other settings are
    ``rbm.m``'s, the DBN preset's (:data:`RBM_SETTINGS`). ``layers``: hidden sizes, the
    code last. ``linear_learning_rate``: the top (linear-hidden) RBM's, for weights and biases."""

    layers: tuple[int, ...] = (1000, 500, 250, 30)
    pretrain_epochs: int = 10
    linear_learning_rate: float = 0.001
    backprop_epochs: int = 200
    backprop_batch: int = 1000
    backprop_line_searches: int = 3
    seed: int = 0
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self.layers = check_layers(self.layers)
        for name in ("backprop_batch", "backprop_line_searches", "pretrain_epochs", "backprop_epochs", "seed"):
            low = 1 if name in ("backprop_batch", "backprop_line_searches") else 0
            setattr(self, name, check_number(name, getattr(self, name), low, integer=True))
        self.linear_learning_rate = check_number("linear_learning_rate", self.linear_learning_rate, 0.0)


def stage_names(recipe: AutoencoderRecipe) -> list[str]:
    """One RBM per layer (the last linear-hidden), backprop, logistic PCA, PCA."""
    return [f"rbm{l + 1}" for l in range(len(recipe.layers))] + ["backprop", "logistic_pca", "pca"]


# -- the unrolled net ---------------------------------------------------------------------------
def unroll(rbms: list[dict]) -> dict[str, np.ndarray]:
    """The feed-forward net of a stack of RBMs (``W`` n_v x n_h, ``b``, ``c``, bottom
    first), as :func:`~.backprop.backprop_gradient` reads it: encoder ``w_l = W_l``,
    ``b_l = c_l``; decoder ``W^T`` and ``b`` of the RBMs top-down, the bottom one's as
    the output layer ``w_out``, ``b_out``. Its code layer is hidden layer ``len(rbms) - 1``."""
    L = len(rbms)
    p = {}
    for l, rbm in enumerate(rbms):
        p[f"w{l}"], p[f"b{l}"] = rbm["W"].copy(), rbm["c"].copy()
    for j, rbm in enumerate(reversed(rbms[1:])):
        p[f"w{L + j}"], p[f"b{L + j}"] = rbm["W"].T.copy(), rbm["b"].copy()
    p["w_out"], p["b_out"] = rbms[0]["W"].T.copy(), rbms[0]["b"].copy()
    return p


def _n_code(p: dict) -> int:
    """The code layer's index in an unrolled net: the middle of its hidden layers."""
    return sum(k.startswith("w") and k != "w_out" for k in p) // 2


def _encoder(p: dict) -> dict:
    L = _n_code(p) + 1
    return {**{k: p[k] for l in range(L) for k in (f"w{l}", f"b{l}")}, "w_out": p["w_out"]}


def _decoder(p: dict) -> dict:
    L = _n_code(p) + 1
    n = 2 * L - 1
    layers = {k: p[f"{k[0]}{int(k[1:]) + L}"] for l in range(n - L) for k in (f"w{l}", f"b{l}")}
    return {**layers, "w_out": p["w_out"], "b_out": p["b_out"]}


def encode(p: dict, X: np.ndarray) -> np.ndarray:
    """The codes of ``X``: the encoder's forward pass, the code layer linear."""
    return _features(_encoder(p), X, linear=(_n_code(p),))


def decode(p: dict, codes: np.ndarray) -> np.ndarray:
    """The reconstructions of ``codes``: the decoder's forward pass, logistic output."""
    d = _decoder(p)
    return sigmoid(_features(d, codes) @ d["w_out"] + d["b_out"])


def up_pass(rbms: list[dict], X: np.ndarray, linear_top: bool = True) -> list[np.ndarray]:
    """The stack's mean-field up-pass: each layer's ``P(h = 1 | v)``, the top's the mean
    ``v W + c`` of its linear units (``linear_top`` False: a stack still being pretrained,
    logistic throughout)."""
    acts = [X]
    for l, rbm in enumerate(rbms):
        z = acts[-1] @ rbm["W"] + rbm["c"]
        acts.append(z if linear_top and l == len(rbms) - 1 else sigmoid(z))
    return acts


def down_pass(rbms: list[dict], code: np.ndarray) -> np.ndarray:
    """The stack's mean-field down-pass from the top hidden layer: ``E[v | h] = sigmoid(h W^T + b)`` per RBM."""
    v = code
    for rbm in reversed(rbms):
        v = sigmoid(v @ rbm["W"].T + rbm["b"])
    return v


def squared_error(X: np.ndarray, R: np.ndarray) -> float:
    """The mean over images of the summed squared pixel error (the published measure)."""
    return float(((np.asarray(X, np.float64) - R) ** 2).sum(axis=1).mean())


def logistic_pca_net(n_visible: int, n_code: int, rng: np.random.Generator, scale: float = 0.1) -> dict:
    """Logistic PCA as a ``n_visible``-``n_code``-``n_visible`` net: a linear code and a
    logistic output, weights ``scale N(0, 1)``, biases 0."""
    return {"w0": (scale * rng.standard_normal((n_visible, n_code))).astype(np.float32),
            "b0": np.zeros(n_code, np.float32),
            "w_out": (scale * rng.standard_normal((n_code, n_visible))).astype(np.float32),
            "b_out": np.zeros(n_visible, np.float32)}


# -- the staged, resumable trainer -------------------------------------------------------------------
class AutoencoderTrainer:
    """Runs an :class:`AutoencoderRecipe` on ``X`` (n x n_visible, in [0, 1]) into
    ``directory``: ``checkpoint.npz`` after every stage, every ``checkpoint_s`` seconds
    and on Ctrl-C/SIGTERM, under a lock; run again, it resumes (a checkpoint made with
    other settings or data is refused). A non-finite loss or weight in fine-tuning stops
    the run with a DivergenceError, the last checkpoint kept."""

    def __init__(self, recipe: AutoencoderRecipe, X: Any, directory: str | Path, checkpoint_s: float = 180.0,
                 log: Callable[[str], None] | None = None,
                 on_batch: Callable[["AutoencoderTrainer"], None] | None = None) -> None:
        self.r, self.X = recipe, check_rows(X, "X", np.float32, values=UNIT)
        self.dir, self.checkpoint_s, self.on_batch = Path(directory), checkpoint_s, on_batch
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.stages = stage_names(recipe)
        self.backend = arrays.backend(recipe.backend, recipe.device, recipe.dtype)

    def _fresh(self) -> None:
        self.rng = np.random.default_rng(self.r.seed)
        self.order = np.random.default_rng([self.r.seed, 1]).permutation(len(self.X))
        self.rbms, self.p, self.vel, self.nets, self.progress = [], {}, {}, {}, Progress()

    def _save(self) -> None:
        a = {f"rbm{l}.{k}": v for l, rbm in enumerate(self.rbms) for k, v in rbm.items()}
        a.update({f"p.{k}": v for k, v in self.p.items()})
        a.update({f"vel.{k}": v for k, v in self.vel.items()})
        a.update({f"{net}.{k}": v for net, d in self.nets.items() for k, v in d.items()})
        write_checkpoint(self.dir, a, {"recipe": asdict(self.r), "progress": asdict(self.progress),
                                       "rng": self.rng.bit_generator.state, "n_cases": len(self.X)})

    def _load(self) -> str:
        d, meta = read_npz_meta(self.dir / "checkpoint.npz", "checkpoint")
        runs.check_unchanged(str(self.dir), "another recipe", recipe_dict(meta), asdict(self.r),
                             meta["n_cases"], len(self.X))
        self._fresh()
        self.rng.bit_generator.state = meta["rng"]
        self.progress = Progress(**meta["progress"])
        self.rbms, self.nets = stack_of(d), nets_of(d)
        self.p = {k[2:]: v for k, v in d.items() if k.startswith("p.")}
        self.vel = {k[4:]: v for k, v in d.items() if k.startswith("vel.")}
        return self._where()

    def _where(self) -> str:
        pr = self.progress
        stage = self.stages[pr.stage] if pr.stage < len(self.stages) else "done"
        return f"stage {stage}, epoch {pr.epoch}, minibatch {pr.batch}"

    def run(self, begin: Callable[[], None] | None = None) -> dict:
        """Train (or resume) to the end; returns the fine-tuned net. ``begin()`` runs under the lock first."""
        self._checkpoints = runs.Checkpoints(self.dir / "checkpoint.npz", self._save, self.checkpoint_s, self.log,
                                             self.dir / "LOCK", str(self.dir), "this directory")
        with self._checkpoints:
            if begin is not None:
                begin()
            self._checkpoints.begin(self._load, self._fresh)
            while self.progress.stage < len(self.stages) and not self._checkpoints.requested:
                self._run_stage(self.stages[self.progress.stage])
            if self._checkpoints.requested:
                self._checkpoints.stop(self._where())
        return self.nets.get("autoencoder", {})

    def _run_stage(self, stage: str) -> None:
        pr, r = self.progress, self.r
        if stage == "pca":
            mean = self.X.mean(axis=0, dtype=np.float64)
            components = np.linalg.svd(self.X - mean, full_matrices=False)[2][:r.layers[-1]]
            self.nets["pca"] = {"mean": mean, "components": components}
            return self._next()
        epochs, batch = ((r.pretrain_epochs, RBM_SETTINGS.batch_size) if stage.startswith("rbm")
                         else (r.backprop_epochs, r.backprop_batch))
        if pr.epoch == 0 and pr.batch == 0:
            self._start(stage)
        n_batches, clock = -(-len(self.X) // batch), time.monotonic()
        while pr.epoch < epochs:
            while pr.batch < n_batches:
                if self._checkpoints.requested:
                    return
                self._step(stage, self.order[pr.batch * batch:(pr.batch + 1) * batch], pr.epoch)
                pr.batch += 1
                if self.on_batch:
                    self.on_batch(self)
                self._checkpoints.tick()
            pr.batch, pr.epoch = 0, pr.epoch + 1
            seconds, clock = time.monotonic() - clock, time.monotonic()
            pr.seconds[stage] = pr.seconds.get(stage, 0.0) + seconds
            pr.history.append({"stage": stage, "epoch": pr.epoch, "seconds": seconds, **self._metric(stage)})
            self.log(f"{stage}: epoch {pr.epoch}/{epochs}, squared error {pr.history[-1]['squared_error']:.2f} "
                     f"(first {min(1000, len(self.X))} cases), {seconds:.1f} s")
            self._checkpoints.tick()
        self._finish(stage)
        self._next()

    def _next(self) -> None:
        pr = self.progress
        pr.stage, pr.epoch, pr.batch = pr.stage + 1, 0, 0
        self._checkpoints.save()

    def _stage_data(self) -> np.ndarray:
        """The current RBM's data: the training data's up-pass through the RBMs learned so far."""
        if getattr(self, "_V_stage", None) != self.progress.stage:
            self._V, self._V_stage = up_pass(self.rbms, self.X, linear_top=False)[-1], self.progress.stage
        return self._V

    def _start(self, stage: str) -> None:
        r = self.r
        if stage.startswith("rbm"):
            self.p, self.vel = new_rbm(self._stage_data().shape[1], r.layers[len(self.rbms)], 0, RBM_SETTINGS,
                                       self.rng)
            return
        self.p = unroll(self.rbms) if stage == "backprop" else logistic_pca_net(
            self.X.shape[1], r.layers[-1], np.random.default_rng([r.seed, 3]), RBM_SETTINGS.init_scale)
        self.vel = {}

    def _step(self, stage: str, idx: np.ndarray, epoch: int) -> None:
        r, rbm = self.r, RBM_SETTINGS
        if stage.startswith("rbm"):
            top = len(self.rbms) == len(r.layers) - 1
            rate = replace(rbm, learning_rate=r.linear_learning_rate) if top else rbm
            self._buf = rbm_step(self.p, self.vel, self._stage_data()[idx], None, rate,
                                 rbm.momentum[epoch >= rbm.momentum_switch], self.rng, getattr(self, "_buf", None),
                                 self.backend, RBM_LINEAR if top else RBM_M)
            return
        X = self.X[idx]
        linear = (_n_code(self.p),) if stage == "backprop" else (0,)
        history = backprop_cg_step(self.p, X, X, r.backprop_line_searches, True, self.backend, "logistic",
                                   linear, summed=False)
        bad = [k for k, v in self.p.items() if not np.isfinite(v).all()]
        if bad or not np.all(np.isfinite(history)):
            raise DivergenceError(f"{self.dir}: {stage} diverged at epoch {epoch}, minibatch {self.progress.batch}: "
                                  f"{'p.' + bad[0] + ' is not finite' if bad else 'the loss is not finite'}; the "
                                  "last checkpoint is kept")

    def _metric(self, stage: str) -> dict:
        """A learning-curve point on the first 1000 training cases: the squared error of
        the RBM's reconstruction of its data, or of the net's reconstruction of the pixels."""
        if stage.startswith("rbm"):
            V, p = self._stage_data()[:1000], self.p
            top = len(self.rbms) == len(self.r.layers) - 1
            H = V @ p["W"] + p["c"]
            return {"squared_error": squared_error(V, sigmoid((H if top else sigmoid(H)) @ p["W"].T + p["b"]))}
        X = self.X[:1000]
        return {"squared_error": squared_error(X, reconstruct_net(self.p, X, stage))}

    def _finish(self, stage: str) -> None:
        if stage.startswith("rbm"):
            self.rbms.append(self.p)
        else:
            self.nets["autoencoder" if stage == "backprop" else stage] = self.p
        self.p, self.vel, self._V_stage = {}, {}, None


def reconstruct_net(p: dict, X: np.ndarray, stage: str = "backprop") -> np.ndarray:
    """``X`` through an unrolled autoencoder (``"backprop"``) or the logistic PCA net."""
    if stage == "backprop":
        return decode(p, encode(p, X))
    return sigmoid(_features(p, X, linear=(0,)) @ p["w_out"] + p["b_out"])


# -- run directories ----------------------------------------------------------------------------------
def recipe_dict(meta: dict) -> dict:
    """The recipe a checkpoint records, as :func:`dataclasses.asdict` writes it (tuples)."""
    return asdict(AutoencoderRecipe(**meta["recipe"]))


def stack_of(d: dict) -> list[dict]:
    n = len({k.split(".")[0] for k in d if k.startswith("rbm")})
    return [{k: d[f"rbm{l}.{k}"] for k in ("W", "b", "c")} for l in range(n)]


def nets_of(d: dict) -> dict[str, dict]:
    nets: dict[str, dict] = {}
    for key, v in d.items():
        net, _, name = key.partition(".")
        if net in ("autoencoder", "logistic_pca", "pca"):
            nets.setdefault(net, {})[name] = v
    return nets


@dataclass
class Run:
    """What a training directory holds: the recipe, progress, the RBM stack and the
    trained nets (``autoencoder``, ``logistic_pca``, ``pca``) it has reached."""

    directory: str
    recipe: AutoencoderRecipe
    progress: Progress
    rbms: list
    nets: dict
    n_cases: int

    @property
    def finished(self) -> bool:
        return self.progress.stage >= len(stage_names(self.recipe))

    @property
    def reached(self) -> str:
        if self.finished:
            return "done"
        stage = stage_names(self.recipe)[self.progress.stage]
        epochs = self.recipe.pretrain_epochs if stage.startswith("rbm") else self.recipe.backprop_epochs
        return f"{stage}, epoch {self.progress.epoch} of {epochs}"


def load_run(directory: str | Path) -> Run:
    """The run in ``directory``; a NeurosimError if it holds no readable checkpoint."""
    path = Path(directory) / "checkpoint.npz"
    if not path.exists():
        raise NeurosimError(f"{directory}: no checkpoint.npz (train into it with `neurosim autoencoder train --out`)")
    d, meta = read_npz_meta(path, "checkpoint")
    try:
        recipe, progress = AutoencoderRecipe(**meta["recipe"]), Progress(**meta["progress"])
    except (KeyError, TypeError) as exc:
        raise NeurosimError(f"{path}: not an autoencoder checkpoint: {exc}") from None
    return Run(str(directory), recipe, progress, stack_of(d), nets_of(d), int(meta.get("n_cases", 0)))


def pca_codes(pca: dict, X: np.ndarray) -> np.ndarray:
    """PCA's codes of ``X``: its projection ``(x - mean) V^T`` on the components ``V``."""
    return (X - pca["mean"]) @ pca["components"].T


def pca_decode(pca: dict, codes: np.ndarray) -> np.ndarray:
    """PCA's reconstruction ``mean + codes V`` from its codes."""
    return codes @ pca["components"] + pca["mean"]


def evaluate(run: Run, X: np.ndarray, labels: Any = None, train: Any = None, train_labels: Any = None,
             k: int = 1) -> dict[str, Any]:
    """The squared errors (:func:`squared_error`) on ``X`` of the deep autoencoder, logistic
    PCA and PCA of a finished run; a NeurosimError names the first stage not yet trained.
    With ``labels`` of ``X``, ``train`` digits and their ``train_labels``: the ``k``-nearest-neighbour
    test errors (:func:`~.neighbours.knn_error`) of the autoencoder's codes and of PCA's."""
    missing = [s for s in ("backprop", "logistic_pca", "pca") if (s if s != "backprop" else "autoencoder")
               not in run.nets]
    if missing:
        raise NeurosimError(f"{run.directory}: stage {missing[0]} is missing (the run stands at {run.reached}); "
                            f"finish it with `neurosim autoencoder train --resume --out {run.directory}`")
    n_visible = len(run.nets["pca"]["mean"])
    X = check_rows(X, "X", np.float32, n_columns=n_visible, values=UNIT)
    net, pca = run.nets["autoencoder"], run.nets["pca"]
    errors: dict[str, Any] = {
        "test_squared_error": squared_error(X, reconstruct_net(net, X)),
        "logistic_pca_test_squared_error": squared_error(X, reconstruct_net(run.nets["logistic_pca"], X,
                                                                            "logistic_pca")),
        "pca_test_squared_error": squared_error(X, pca_decode(pca, pca_codes(pca, X)))}
    given = [a is not None for a in (labels, train, train_labels)]
    if any(given) and not all(given):
        raise ParameterError("the nearest-neighbour errors need all of labels, train and train_labels")
    if all(given):
        train = check_rows(train, "train", np.float32, n_columns=n_visible, values=UNIT)
        errors.update(knn_test_error=knn_error(encode(net, train), train_labels, encode(net, X), labels, k),
                      pca_knn_test_error=knn_error(pca_codes(pca, train), train_labels, pca_codes(pca, X),
                                                   labels, k), knn_k=k)
    return errors


# -- the machine ------------------------------------------------------------------------------------
class DeepAutoencoder(Machine):
    """A deep autoencoder (module doc): ``fit`` pretrains, unrolls and fine-tunes;
    :meth:`transform` gives the codes, :meth:`inverse_transform` the images of codes,
    :meth:`reconstruct` both. ``weights_``: the unrolled net (``w0, b0, ..., w_out,
    b_out``; the code layer is hidden layer ``len(layers) - 1``). Saved as ``.npz``."""

    _FITTED = "weights_"
    _FITTED_META = ()

    def __init__(self, layers: tuple[int, ...] = (1000, 500, 250, 30), pretrain_epochs: int = 10,
                 backprop_epochs: int = 200, random_state: int = 0, backend: str = "numpy") -> None:
        self.layers, self.pretrain_epochs, self.backprop_epochs = layers, pretrain_epochs, backprop_epochs
        self.random_state, self.backend = random_state, backend

    def recipe(self, **settings: Any) -> AutoencoderRecipe:
        """This machine's parameters as a recipe, ``settings`` overriding the others."""
        return AutoencoderRecipe(**{"layers": self.layers, "pretrain_epochs": self.pretrain_epochs,
                                    "backprop_epochs": self.backprop_epochs, "seed": self.random_state,
                                    "backend": self.backend, **settings})

    def fit(self, X: Any, y: Any = None, checkpoint: str | Path | None = None, checkpoint_s: float = 180.0,
            verbose: int = 0, **settings: Any) -> "DeepAutoencoder":
        """Every stage of :meth:`recipe` on ``X`` (pixels in [0, 1]) by
        :class:`AutoencoderTrainer`; ``checkpoint``: the run's directory, resumed if it
        holds a checkpoint (None: a temporary one). ``stack_``: the pretrained RBMs;
        ``baselines_``: the logistic PCA net and PCA's mean and components."""
        log = None if verbose else (lambda msg: None)
        with tempfile.TemporaryDirectory(prefix="neurosim-autoencoder-") as scratch:
            trainer = AutoencoderTrainer(self.recipe(**settings), X, checkpoint or scratch,
                                         checkpoint_s if checkpoint else math.inf, log)
            trainer.run()
        self.stack_ = trainer.rbms
        self.baselines_ = {k: v for k, v in trainer.nets.items() if k != "autoencoder"}
        self.weights_ = trainer.nets.get("autoencoder") or unroll(trainer.rbms)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The codes of ``X``."""
        self._check_fitted()
        return encode(self.weights_, check_rows(X, "X", np.float32, len(self.weights_["w0"]), values=UNIT))

    def inverse_transform(self, codes: Any) -> np.ndarray:
        """The images (pixel probabilities) the decoder makes of ``codes``."""
        self._check_fitted()
        return decode(self.weights_, np.asarray(codes, np.float32))

    def reconstruct(self, X: Any) -> np.ndarray:
        """``X`` encoded and decoded."""
        return self.inverse_transform(self.transform(X))

    def to_network(self, name: str = "deep_autoencoder", description: str | None = None) -> Network:
        """The unrolled net as a Helmholtz-machine-shaped Network: populations ``v`` (the
        pixels, layer 0), ``h1``, ..., ``h{L-1}`` (logistic) and ``code`` (linear:
        ``s = bias + input + N(0, 1)``, layer L, the top); the encoder as recognition
        projections ``v=>h1``, ..., ``h{L-1}=>code`` (``w0, ..., w{L-1}``; recognition
        biases ``b0, ..., b{L-1}``), the decoder as directed projections ``code->h{L-1}``,
        ..., ``h1->v`` (``w{L}, ..., w_out``; biases ``b{L}, ..., b_out``). The code
        layer's generative bias is 0 (the decoder starts from the codes); the visible
        units have no recognition bias. A mean pass of the recognition pathway is
        :meth:`transform`, of the generative one from clamped codes :meth:`inverse_transform`."""
        self._check_fitted()
        p, L = self.weights_, _n_code(self.weights_) + 1
        names = ["v"] + [f"h{l}" for l in range(1, L)] + ["code"]
        sizes = [len(p["b_out"])] + [len(p[f"b{l}"]) for l in range(L)]
        into = ["_out"] + [str(2 * L - 1 - l) for l in range(1, L)]   # the decoder's arrays into layer l < L
        bias = [p[f"b{k}"] for k in into] + [np.zeros(sizes[L])]
        pops = [Population(names[l], _unit_names(names[l], sizes[l]), bias[l], "visible" if l == 0 else "hidden", l,
                           "linear" if l == L else "logistic", None if l == 0 else p[f"b{l - 1}"])
                for l in range(L + 1)]
        projs = [Projection(f"{names[l + 1]}->{names[l]}", names[l + 1], names[l], p[f"w{into[l]}"])
                 for l in reversed(range(L))]
        projs += [Projection(f"{names[l]}=>{names[l + 1]}", names[l], names[l + 1], p[f"w{l}"], "recognition")
                  for l in range(L)]
        if description is None:
            description = (f"deep autoencoder {'-'.join(map(str, sizes))} (Hinton and Salakhutdinov 2006), "
                           "unrolled: recognition projections are the encoder, directed ones the decoder; the "
                           "code units are linear")
        return Network.from_populations(pops, projs, name=name, description=description)

    def _arrays(self) -> dict[str, np.ndarray]:
        return dict(self.weights_)

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "DeepAutoencoder":
        machine = cls(**params)
        machine.weights_ = dict(arrays)
        return machine
