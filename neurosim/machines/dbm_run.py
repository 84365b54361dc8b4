"""A deep Boltzmann machine's training run on disk (``neurosim dbm train|evaluate``).

Three stages, each resumable, in the run's directory:

* ``pretrain`` -> ``pretrained.npz``: the greedy RBMs with doubled inputs, composed
  (:class:`~.dbm.DeepBoltzmannMachine` with ``n_iter=0``; minutes, redone if stopped).
* ``joint`` -> ``dbm.npz``: joint training from the pretrained machine (``warm_start``)
  through :func:`.runs.fit_run` (``joint.checkpoint.npz`` while it runs), with a copy of
  the machine in ``snapshots/epoch_NNNN.npz`` every ``snapshot_every`` epochs (the
  learning curve).
* ``finetune`` -> ``classifier.npz``: discriminative fine-tuning as in Salakhutdinov's
  ``backprop.m``: a feed-forward net whose input is the image and the mean-field posterior
  ``q_2`` of the second hidden layer (:func:`augmented`), initialised from the DBM
  (:func:`classifier_net`: ``h_1 = sigmoid(v W_1 + q_2 W_2^T + b_1)``, then the layers
  above with their DBM weights, then a softmax layer), trained by the project's backprop
  (:func:`.backprop.backprop_cg_step`: 3 line searches per batch of ``FINETUNE_BATCH``
  cases, the softmax layer alone for the first ``FINETUNE_TOP_ONLY`` epochs).

:func:`evaluate` scores a finished run: log Z by AIS, the variational bound on the
binarised test digits, and the classifier's test error. docs/machines/dbm.md.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..compiled import arrays
from ..errors import DivergenceError, NeurosimError
from ..outputs import atomic_write_text
from . import runs
from .backprop import backprop_cg_step, backprop_predict
from .base import Position, read_npz_meta, write_npz
from .dbm import DeepBoltzmannMachine

__all__ = ["DBMRecipe", "STAGES", "DBMTrainer", "augmented", "classifier_net", "reached", "check_finished", "evaluate", "curves", "snapshots",
           "stage_seconds"]

STAGES = ("pretrain", "joint", "finetune")
FINETUNE_BATCH = 10_000     # backprop.m: 100 minibatches of 100 per conjugate-gradient batch
FINETUNE_TOP_ONLY = 5       # backprop.m: CG_MNIST_INIT (the softmax layer) while epoch < 6
LINE_SEARCHES = 3


@dataclass(frozen=True)
class DBMRecipe:
    """A run's settings. Defaults: Salakhutdinov's code (``demo.m``, ``dbm_mf.m``,
    ``backprop.m``) for the paper's 784-500-1000 DBM; the paper trained 500 joint epochs.
    ``joint_momentum``: the momentum of joint training from epoch 5 on, 0.5: ``dbm_mf.m``'s
    0.9 undoes joint training here (docs/machines/dbm.md, the first MNIST run); the
    pretraining RBMs keep 0.9. ``backend``, ``device``, ``dtype``: the array library of
    training's products (:func:`~neurosim.compiled.arrays.backend`: ``"torch"``,
    ``"bfloat16"`` products): the pretraining RBMs, joint training and fine-tuning;
    evaluation runs on numpy."""

    hidden: tuple[int, ...] = (500, 1000)
    pretrain_epochs: int = 100
    epochs: int = 500
    chains: int = 100
    mean_field_iterations: int = 30
    finetune_epochs: int = 100
    joint_momentum: float = 0.5
    snapshot_every: int = 10
    n_labels: int = 10
    seed: int = 0
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("pretrain_epochs", "epochs", "finetune_epochs"):
            _check_count(name, getattr(self, name), 0)
        for name in ("chains", "mean_field_iterations", "snapshot_every", "n_labels"):
            _check_count(name, getattr(self, name), 1)
        if isinstance(self.joint_momentum, bool) or not 0 <= self.joint_momentum < 1:
            raise NeurosimError(f"joint_momentum must be a number in [0, 1), got {self.joint_momentum!r}")
        if not self.hidden:
            raise NeurosimError("hidden: a deep Boltzmann machine needs at least one hidden layer")
        for i, n in enumerate(self.hidden):
            _check_count(f"hidden layer {i + 1}", n, 1)

    def machine(self, n_visible: int, **params: Any) -> DeepBoltzmannMachine:
        """The DBM of this recipe on ``n_visible`` inputs (``params`` override)."""
        return DeepBoltzmannMachine((n_visible,) + self.hidden, **{
            "pretrain_epochs": self.pretrain_epochs, "n_iter": self.epochs, "n_chains": self.chains,
            "mean_field_iterations": self.mean_field_iterations, "random_state": self.seed,
            "backend": self.backend, "device": self.device, "dtype": self.dtype, **params})


def _check_count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise NeurosimError(f"{name} must be an integer >= {low}, got {value!r}")


# -- the classifier ------------------------------------------------------------------------------
def augmented(dbm: DeepBoltzmannMachine, X: np.ndarray) -> np.ndarray:
    """The fine-tuning net's input (``backprop.m``): each row of ``X`` beside the mean-field
    posterior of the second hidden layer (nothing beside it for a one-layer machine)."""
    if len(dbm.weights_) < 2:
        return np.asarray(X, np.float32)
    return np.hstack([X, dbm.mean_field(X)[1]]).astype(np.float32)


def classifier_net(dbm: DeepBoltzmannMachine, n_labels: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The feed-forward net of :func:`augmented` inputs, in backprop's layout (``w0, b0,
    ..., w_out, b_out``): ``w0 = [W_1; W_2^T]`` (image and ``q_2`` into ``h_1``), then
    ``W_2, ..., W_L``, every hidden bias the DBM's; softmax weights and biases ``0.1 N(0, 1)``."""
    W, b = dbm.weights_, dbm.biases_
    p = {"w0": np.vstack([W[0], W[1].T]) if len(W) > 1 else W[0].copy(), "b0": b[1].copy()}
    for l in range(1, len(W)):
        p[f"w{l}"], p[f"b{l}"] = W[l].copy(), b[l + 1].copy()
    p["w_out"] = (0.1 * rng.standard_normal((W[-1].shape[1], n_labels))).astype(np.float32)
    p["b_out"] = (0.1 * rng.standard_normal(n_labels)).astype(np.float32)
    return p


# -- where a run stands ---------------------------------------------------------------------------
def reached(directory: str | Path) -> str:
    """The first stage of the run in ``directory`` not finished, or ``"done"``."""
    d = Path(directory)
    for stage, done in zip(STAGES, ("pretrained.npz", "dbm.npz", "classifier.npz")):
        if not (d / done).exists():
            return stage
    return "done"


def snapshots(directory: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every snapshot of the joint stage, in order."""
    return sorted((int(p.stem.split("_")[1]), p) for p in (Path(directory) / "snapshots").glob("epoch_*.npz"))


class DBMTrainer:
    """Runs a :class:`DBMRecipe` on ``(X, labels)`` into ``directory`` (module doc), under
    the lock ``directory/LOCK``; run again, it resumes at the stage it reached (a run made
    with another recipe or data is refused, naming what differs). The recipe's backend is
    checked here (torch imported if it asks for it)."""

    def __init__(self, recipe: DBMRecipe, X: np.ndarray, labels: np.ndarray, directory: str | Path,
                 checkpoint_s: float = 180.0, log: Callable[[str], None] | None = None) -> None:
        self.r, self.X, self.labels, self.dir = recipe, X, np.asarray(labels), Path(directory)
        self.backend = arrays.backend(recipe.backend, recipe.device, recipe.dtype)
        self.checkpoint_s = checkpoint_s
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def run(self, begin: Callable[[], None] | None = None) -> dict[str, float]:
        """Every stage not yet finished; returns each stage's training seconds."""
        with runs.Lock(self.dir / "LOCK", str(self.dir), "this directory"):
            if begin is not None:
                begin()
            self._check_same()
            if reached(self.dir) == "pretrain":
                self._pretrain()
            if reached(self.dir) == "joint":
                self._joint()
            if reached(self.dir) == "finetune":
                self._finetune()
        return stage_seconds(self.dir)

    def _check_same(self) -> None:
        path = self.dir / "recipe.json"
        if path.exists():
            started = json.loads(path.read_text())
            recipe = asdict(DBMRecipe(**started["recipe"]))       # settings added since: their defaults
            runs.check_unchanged(str(self.dir), "another recipe", json.loads(json.dumps(recipe)),
                                 json.loads(json.dumps(asdict(self.r))), started["n_cases"], len(self.X))
        else:
            atomic_write_text(path, json.dumps({"recipe": asdict(self.r), "n_cases": len(self.X)}, indent=1))

    def _pretrain(self) -> None:
        start = time.perf_counter()
        dbm = self.r.machine(self.X.shape[1], n_iter=0).fit(self.X)
        dbm.save(self.dir / "pretrained.npz", info={"seconds": time.perf_counter() - start})
        self.log(f"{self.dir}: pretrained in {time.perf_counter() - start:.0f} s")

    def _joint(self) -> None:
        dbm = DeepBoltzmannMachine.load(self.dir / "pretrained.npz", warm_start=True, n_iter=self.r.epochs,
                                        final_momentum=self.r.joint_momentum)
        checkpoint = self.dir / "joint.checkpoint.npz"
        n_batches = -(-len(self.X) // dbm.batch_size)
        (self.dir / "snapshots").mkdir(exist_ok=True)

        def snapshot(at: Position) -> None:
            if at.batch == n_batches and (at.epoch + 1) % self.r.snapshot_every == 0:
                dbm.save(self.dir / "snapshots" / f"epoch_{at.epoch + 1:04d}.npz")

        try:
            seconds = runs.fit_run(dbm, self.X, checkpoint, self.checkpoint_s, self.log, after_batch=snapshot)
        except DivergenceError as exc:
            raise DivergenceError(f"{self.dir}: joint training: {exc}; the last checkpoint is kept") from None
        dbm.save(self.dir / "dbm.npz", info={"seconds": seconds})
        checkpoint.unlink()

    def _finetune(self) -> None:
        dbm = DeepBoltzmannMachine.load(self.dir / "dbm.npz")
        path, r = self.dir / "finetune.checkpoint.npz", self.r
        state: dict = {}

        def fresh() -> None:
            rng = np.random.default_rng([r.seed, 2])
            state.update(p=classifier_net(dbm, r.n_labels, rng), epoch=0, seconds=0.0, history=[], rng=rng)

        def resume() -> str:
            arrays, meta = read_npz_meta(path, "checkpoint")
            rng = np.random.default_rng()
            rng.bit_generator.state = meta["rng"]
            state.update(p={k[2:]: v for k, v in arrays.items()}, epoch=meta["epoch"], seconds=meta["seconds"],
                         history=meta["history"], rng=rng)
            return f"fine-tuning epoch {state['epoch']}"

        def write() -> None:
            write_npz(path, {f"p.{k}": v for k, v in state["p"].items()},
                      {"epoch": state["epoch"], "seconds": state["seconds"], "history": state["history"],
                       "rng": state["rng"].bit_generator.state})

        checkpoints = runs.Checkpoints(path, write, self.checkpoint_s, self.log, self.dir / "finetune.lock",
                                       str(path), "this run")
        with checkpoints:
            checkpoints.begin(resume, fresh)
            A, Y = augmented(dbm, self.X), np.eye(r.n_labels, dtype=np.float32)[self.labels]
            while state["epoch"] < r.finetune_epochs and not checkpoints.requested:
                self._finetune_epoch(state, A, Y)
                write()
            if checkpoints.requested:
                checkpoints.stop(f"fine-tuning epoch {state['epoch']}")
        write_npz(self.dir / "classifier.npz", {f"p.{k}": v for k, v in state["p"].items()},
                  {"seconds": state["seconds"], "history": state["history"]})
        path.unlink()

    def _finetune_epoch(self, state: dict, A: np.ndarray, Y: np.ndarray) -> None:
        """One epoch of conjugate gradient on batches of ``FINETUNE_BATCH`` in a new order;
        the epoch's state replaces ``state`` only when it is complete and finite."""
        start, p = time.perf_counter(), {k: v.copy() for k, v in state["p"].items()}
        order, epoch = state["rng"].permutation(len(A)), state["epoch"]
        losses = []
        for lo in range(0, len(A), FINETUNE_BATCH):
            idx = order[lo:lo + FINETUNE_BATCH]
            losses.append(backprop_cg_step(p, A[idx], Y[idx], LINE_SEARCHES, epoch >= FINETUNE_TOP_ONLY,
                                           self.backend)[-1])
        if not all(np.isfinite(v).all() for v in p.values()):
            raise DivergenceError(f"{self.dir}: fine-tuning diverged in epoch {epoch + 1}; the last checkpoint "
                                  "is kept")
        seconds = time.perf_counter() - start
        n = min(10_000, len(A))
        train_error = float(np.mean(backprop_predict(p, A[:n]) != self.labels[:n]))
        state.update(p=p, epoch=epoch + 1, seconds=state["seconds"] + seconds)
        state["history"].append({"epoch": epoch + 1, "seconds": seconds, "loss": float(np.mean(losses)),
                                 "train_error": train_error})
        self.log(f"fine-tuning: epoch {epoch + 1}/{self.r.finetune_epochs}, loss {np.mean(losses):.4f}, "
                 f"error {100 * train_error:.2f}% on the first {n} training digits, {seconds:.1f} s")


def stage_seconds(directory: str | Path) -> dict[str, float]:
    """The training seconds of each finished stage."""
    d, out = Path(directory), {}
    for stage, name in zip(STAGES, ("pretrained.npz", "dbm.npz", "classifier.npz")):
        if (d / name).exists():
            meta = read_npz_meta(d / name, "run file")[1]
            out[stage] = float(meta.get("info", meta).get("seconds", 0.0))
    return out


# -- evaluation -------------------------------------------------------------------------------------
def check_finished(directory: str | Path) -> None:
    """A NeurosimError naming the first stage of the run in ``directory`` not finished."""
    if not (Path(directory) / "recipe.json").exists():
        raise NeurosimError(f"{directory}: not a DBM run (no recipe.json; train one with `neurosim dbm train --out`)")
    stage = reached(directory)
    if stage != "done":
        raise NeurosimError(f"{directory}: stage {stage!r} is not finished (continue it with `neurosim dbm train "
                            f"--out {directory} --resume`)")


def evaluate(directory: str | Path, V_test: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
             V_base: np.ndarray, rng: np.random.Generator, n_runs: int = 100, n_betas: int = 14500,
             reverse_sweeps: int | None = 1000) -> dict:
    """A finished run's scores: ``log Z`` by AIS (``n_runs`` runs, ``n_betas``
    temperatures, base rate from the binary rows ``V_base``), the mean variational bound
    on the binary test rows ``V_test``, and the classifier's error on ``(X_test, y_test)``;
    unless ``reverse_sweeps`` is None, also ``log Z`` by reverse AIS from the persistent
    chains continued that many alternations (an upper bound in expectation if they are
    samples of the model) and the bound with it (``test_logprob_bound_lower_nats``).
    A NeurosimError names the stage a half-written run has not finished."""
    check_finished(directory)
    dbm = DeepBoltzmannMachine.load(Path(directory) / "dbm.npz", random_state=rng)
    ais = dbm.ais_log_partition(n_runs, n_betas, V_base)
    bound = dbm.log_prob_bound(V_test, 0.0)
    p = {k[2:]: v for k, v in read_npz_meta(Path(directory) / "classifier.npz", "classifier")[0].items()}
    error = float(np.mean(backprop_predict(p, augmented(dbm, X_test)) != y_test))
    scores = {"test_logprob_bound_nats": float(np.mean(bound) - ais.log_z), "logZ_ais": float(ais.log_z),
              "logZ_ais_std": float(ais.log_z_std), "test_error": error}
    if reverse_sweeps is not None:
        rev = dbm.ais_log_partition(n_runs, n_betas, V_base, reverse_sweeps=reverse_sweeps)
        scores.update(logZ_ais_reverse=float(rev.log_z), logZ_ais_reverse_std=float(rev.log_z_std),
                      test_logprob_bound_lower_nats=float(np.mean(bound) - rev.log_z))
    return scores


def curves(directory: str | Path, V_test: np.ndarray, V_base: np.ndarray, rng: np.random.Generator,
           n_runs: int, n_betas: int) -> list[dict]:
    """The learning curve of the joint stage: each snapshot's AIS ``log Z`` and mean bound
    on ``V_test`` (the pretrained machine as epoch 0)."""
    points = [(0, Path(directory) / "pretrained.npz")] + snapshots(directory)
    out = []
    for epoch, path in points:
        dbm = DeepBoltzmannMachine.load(path, random_state=rng)
        ais = dbm.ais_log_partition(n_runs, n_betas, V_base)
        out.append({"epoch": epoch, "logZ_ais": float(ais.log_z), "logZ_ais_std": float(ais.log_z_std),
                    "logprob_bound_nats": float(np.mean(dbm.log_prob_bound(V_test, ais.log_z)))})
    return out
