"""Training a deep belief net in stages, with checkpoints that survive a kill.

Stages: one RBM per directed layer (greedy, bottom-up, ``rbm.m``'s CD-1, eq. 6), the
top RBM with the labels, up-down fine-tuning, optionally its continuation on every case
from the best held-out epoch (section 6.1's two stages), and backprop fine-tuning; a
:class:`Recipe` holds every setting (``hinton2006``: the published one). A
:class:`Trainer` writes ``DIR/checkpoint.npz`` atomically after every stage, every
``checkpoint_s`` seconds and on Ctrl-C or SIGTERM (at the next minibatch), under a lock;
run again on the same DIR it resumes to the weights of an uninterrupted run, and refuses
a checkpoint that is truncated, corrupt or made with other settings. The recipe's
choices and the checkpoint's contents: docs/machines/dbn.md.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..compiled import arrays, bipartite
from ..compiled.bipartite import CD, Block
from ..errors import NeurosimError, ParameterError
from ..npz import read_npz
from ..outputs import atomic_write_text
from .base import UNIT, annealed, check_bool, check_number, check_rows, read_npz_meta, write_npz
from . import runs
from .runs import LockError
from .backprop import backprop_cg_step, backprop_net, backprop_predict, backprop_step
from .dbn import DeepBeliefNet, sigmoid

__all__ = ["Recipe", "PRESETS", "Trainer", "LockError", "train_rbm_layer", "centered_start", "offsets_of",
           "load_run", "Run", "annealed", "read_npz", "read_checkpoint", "write_checkpoint", "stage_names", "recipe_of",
           "changed_settings", "implied_settings", "trend_eta", "recipe_for", "best_epoch", "continuation_order"]


@dataclass
class Recipe:
    """Every setting of a run (``hinton2006``'s departures from the papers, each chosen on
    10,000 held-out digits: docs/machines/dbn.md). ``updown_cd``: (first epoch, k)
    pairs, the top RBM's CD-k schedule in up-down. ``updown_anneal``,
    ``backprop_anneal``: over that many last epochs the learning rate falls linearly to
    zero (:func:`annealed`). ``backprop_line_searches``: 0, SGD with momentum; N,
    conjugate gradient with N line searches per minibatch (``backpropclassify.m``: 3).
    ``validation``: the last that many cases are held out and the fine-tuning curves
    report their error. ``backprop_from``: ``"greedy"`` (the stack as greedy training
    left it, as ``mnistclassify.m``) or ``"updown"``; the softmax layer's initial
    weights come from a Generator of their own. ``backend``, ``device``, ``dtype``: the
    array library of every stage's products (:func:`~neurosim.compiled.arrays.backend`:
    ``"torch"``, ``"bfloat16"`` products). ``chain_labels``: the label group's
    reconstruction in the top RBM's chains, greedy and in up-down: its softmax
    ``"probabilities"`` (the appendix's pseudo-code) or one-hot ``"samples"`` (section 6.1,
    ``rbm_l2.m``; :class:`~neurosim.compiled.bipartite.CD`'s ``sample_labels``).
    ``updown_continue``: the two stages of section 6.1 (it needs ``validation``): up-down
    keeps a copy of the DBN at its epoch of lowest held-out error (the earliest of equals),
    and a stage ``"continue"`` runs that many more up-down epochs from that copy on every
    case, training and held out, at the constant rate ``continue_lr`` (None:
    ``updown_lr``) with up-down's last CD-k, its momentum and weight cost
    (:meth:`continuation`); backprop then starts from the greedy stack or the continued
    weights. ``centered``: every greedy RBM, the top one with its label group, trains by
    centered CD (Melchior, Fischer and Wiskott 2016, algorithm 1; :func:`centered_start`),
    its offsets following the data's means at ``offset_rate`` (visible, hidden and label
    offsets alike), and so does the top RBM's CD in up-down and the continuation, its
    offsets carried on from the greedy top RBM's; the directed layers and backprop learn
    as without it (docs/machines/dbn.md)."""

    hidden: tuple[int, ...] = (500, 500, 2000)
    n_labels: int = 10
    batch_size: int = 100
    pretrain_epochs: int = 50
    learning_rate: float = 0.1
    weight_decay: float = 0.0002
    momentum: tuple[float, float] = (0.5, 0.9)
    momentum_switch: int = 5
    init_scale: float = 0.1
    next_layer_on: str = "probabilities"
    chain_labels: str = "probabilities"
    updown_epochs: int = 200
    updown_lr: float = 0.003
    updown_momentum: float = 0.9
    updown_weight_decay: float = 0.0002
    updown_cd: tuple[tuple[int, int], ...] = ((0, 10),)
    updown_anneal: int = 100
    updown_continue: int = 0
    continue_lr: float | None = None
    backprop_epochs: int = 50
    backprop_lr: float = 0.1
    backprop_momentum: float = 0.9
    backprop_batch: int = 1000
    backprop_line_searches: int = 3
    backprop_top_only: int = 5
    backprop_anneal: int = 0
    backprop_from: str = "greedy"
    validation: int = 0
    seed: int = 0
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float32"
    centered: bool = False
    offset_rate: float = 0.01

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.momentum = tuple(self.momentum)
        self.updown_cd = tuple(tuple(p) for p in self.updown_cd)
        if len(self.hidden) < 2 or min(self.hidden) < 1:
            raise ParameterError(f"hidden must have at least two layers of >= 1 unit, got {self.hidden}")
        for name in ("n_labels", "batch_size", "backprop_batch", "pretrain_epochs", "updown_epochs",
                     "backprop_epochs", "validation", "updown_anneal", "backprop_anneal", "backprop_line_searches",
                     "updown_continue"):
            low = 1 if name in ("n_labels", "batch_size", "backprop_batch") else 0
            setattr(self, name, check_number(name, getattr(self, name), low, integer=True))
        if (not self.updown_cd or any(len(p) != 2 for p in self.updown_cd)
                or [s for s, _ in self.updown_cd] != sorted({0} | {s for s, _ in self.updown_cd})
                or min(k for _, k in self.updown_cd) < 1):
            raise ParameterError(f"updown_cd must be (first epoch, k) pairs with k >= 1, the first at "
                                 f"epoch 0 and later ones at rising epochs, got {self.updown_cd}")
        if self.backprop_from not in ("greedy", "updown"):
            raise ParameterError(f"backprop_from must be 'greedy' or 'updown', got {self.backprop_from!r}")
        for name in ("next_layer_on", "chain_labels"):
            if getattr(self, name) not in ("probabilities", "samples"):
                raise ParameterError(f"{name} must be 'probabilities' or 'samples', got {getattr(self, name)!r}")
        check_bool("centered", self.centered)
        self.offset_rate = check_number("offset_rate", self.offset_rate, 0.0, 1.0)
        if self.continue_lr is not None:
            self.continue_lr = check_number("continue_lr", self.continue_lr, 0, low_open=True)
        if self.updown_continue and not (self.validation and self.updown_epochs):
            raise ParameterError(f"updown_continue={self.updown_continue} continues from the up-down epoch of lowest "
                                 f"held-out error: it needs validation > 0 and updown_epochs > 0, got "
                                 f"validation={self.validation}, updown_epochs={self.updown_epochs}")

    def cd_k(self, epoch: int) -> int:
        """The top RBM's k in up-down at ``epoch``."""
        return max(k for start, k in self.updown_cd if start <= epoch)

    def continuation(self) -> dict:
        """:meth:`~.dbn.DeepBeliefNet.up_down_step`'s settings in the continuation: the
        constant rate ``continue_lr`` (None: ``updown_lr``), up-down's last CD-k, its
        momentum, weight cost and chain labels."""
        return {"lr": self.updown_lr if self.continue_lr is None else self.continue_lr,
                "k": self.cd_k(self.updown_epochs - 1), "momentum": self.updown_momentum,
                "weight_decay": self.updown_weight_decay, "sample_labels": self.chain_labels == "samples"}

    def greedy_cd(self, top: bool) -> CD:
        """The greedy stages' CD: ``rbm.m``'s CD-1 (:data:`RBM_M`), the top RBM's with the
        chain labels the recipe names, centered at ``offset_rate`` if ``centered``."""
        return replace(RBM_M, sample_labels=top and self.chain_labels == "samples",
                       centering=(self.offset_rate, self.offset_rate) if self.centered else None)

    def unused_cd(self) -> tuple[tuple[int, int], ...]:
        """The ``updown_cd`` entries that start at or after up-down's last epoch: never used."""
        return tuple(p for p in self.updown_cd if 0 < self.updown_epochs <= p[0])


PRESETS = {"hinton2006": Recipe()}


def implied_settings(settings: dict) -> dict:
    """``settings`` (None: not given) with what they imply: ``backprop_line_searches``
    without ``backprop_batch`` brings its optimiser's minibatch, 1000 cases for conjugate
    gradient (``backpropclassify.m``), 100 for SGD with momentum."""
    searches = settings.get("backprop_line_searches")
    if searches is None or settings.get("backprop_batch") is not None:
        return settings
    return {**settings, "backprop_batch": 1000 if searches else 100}


def trend_eta(epoch_seconds: list[float], remaining: int, window: int = 8) -> float:
    """Seconds for ``remaining`` more epochs on the least-squares line through the last
    ``window`` epochs' times (never sloping down)."""
    t = np.asarray(epoch_seconds[-window:], dtype=float)
    if remaining <= 0 or not len(t):
        return 0.0
    slope = max(np.polyfit(np.arange(len(t)), t, 1)[0], 0.0) if len(t) > 1 else 0.0
    last = t.mean() + slope * (len(t) - 1) / 2                  # the line's value at the last epoch
    return float(remaining * last + slope * remaining * (remaining + 1) / 2)


# -- one RBM update (rbm.m) -----------------------------------------------------------------
RBM_M = CD(summed_differences=True)   # rbm.m's CD-1 (labels: input vW + c + yU), the DBN's bias sums


def rbm_step(p: dict, vel: dict, V: np.ndarray, Y: np.ndarray | None, r: Recipe, momentum: float,
             rng: np.random.Generator, buf: dict | None = None, backend: arrays.Backend = bipartite.NUMPY,
             cd: CD = RBM_M, offsets: dict | None = None) -> dict:
    """``rbm.m``'s CD-1 (or ``cd``: e.g. ``rbmhidlinear.m``'s linear hidden units) on
    minibatch ``V`` (and one-hot labels ``Y``), in place, by
    :func:`neurosim.compiled.bipartite.step` on ``backend``, at ``r.learning_rate`` and
    ``r.weight_decay``; ``p``: W (n_v x n_h), b, c
    [, U, b_lab], ``vel`` likewise, numpy arrays (wrapped as the backend's: views on the
    CPU, copied back from a GPU); the draws from the backend's generator seeded from
    ``rng`` (numpy: ``rng``). ``offsets``: centered CD's (:func:`centered_start`), moved
    in place. Returns the kernel's buffers, to pass back as ``buf``."""
    on = {k: backend.asarray(v) for k, v in p.items()}
    on_vel = {k: backend.asarray(v) for k, v in vel.items()}
    on_off = {k: backend.asarray(v) for k, v in (offsets or {}).items()}
    block = Block(on["W"], on["b"], on["c"], on.get("U"), on.get("b_lab"))
    buf = bipartite.step(block, backend.asarray(V), cd, r.learning_rate, backend.generator(rng), momentum,
                         r.weight_decay, on_vel, backend.asarray(Y), buf=buf, backend=backend,
                         offsets=tuple(on_off.values()) or None)
    if not backend.shares_memory:                       # a GPU: the update's arrays back to the host
        for host, device in ((p, on), (vel, on_vel), (offsets or {}, on_off)):
            for k, a in host.items():
                np.copyto(a, backend.to_numpy(device[k]))
    return buf


def new_rbm(n_v: int, n_h: int, n_lab: int, r: Recipe, rng: np.random.Generator) -> tuple[dict, dict]:
    """A new RBM's arrays and zero velocities: weights ``init_scale N(0, 1)``, biases 0."""
    p = {"W": (r.init_scale * rng.standard_normal((n_v, n_h))).astype(np.float32),
         "b": np.zeros(n_v, np.float32), "c": np.zeros(n_h, np.float32)}
    if n_lab:
        p["U"] = (r.init_scale * rng.standard_normal((n_lab, n_h))).astype(np.float32)
        p["b_lab"] = np.zeros(n_lab, np.float32)
    return p, {k: np.zeros_like(v) for k, v in p.items()}


def centered_start(p: dict, V: np.ndarray, Y: np.ndarray | None, fresh: bool) -> dict:
    """Centered CD's offsets for an RBM stage on ``V`` (and one-hot labels ``Y``), as
    algorithm 1 of Melchior et al. (2016) starts them: ``{"visible": mu, "hidden": lambda[,
    "labels": mu_y]}`` (this order: :func:`~neurosim.compiled.bipartite.change`'s), ``mu``
    and ``mu_y`` the data's means (summed in float64: the same in any order of the rows),
    ``lambda = 0.5``. With ``fresh`` weights also, in
    place, the biases of its initial model, ``b~ = logit(mu)`` (``mu`` clipped to [0.001,
    0.999]), ``b_lab~ = log(mu_y)`` (the softmax's own, clipped alike), ``c~ = 0``, stored as
    the ordinary ``b = b~ - W lambda``, ``b_lab = b_lab~ - U lambda``, ``c = - W^T mu - U^T
    mu_y`` (:func:`~neurosim.compiled.bipartite.uncentered_biases` of the label group
    stacked under the visible units)."""
    offsets = {"visible": V.mean(axis=0, dtype=np.float64).astype(np.float32),
               "hidden": np.full(p["c"].shape, 0.5, np.float32)}
    if Y is not None:
        offsets["labels"] = Y.mean(axis=0, dtype=np.float64).astype(np.float32)
    if fresh:
        q = np.clip(offsets["visible"], 0.001, 0.999)
        b, W, mu = np.log(q / (1 - q)), p["W"], offsets["visible"]
        if Y is not None:
            b = np.concatenate([b, np.log(np.clip(offsets["labels"], 0.001, 0.999))])
            W, mu = np.concatenate([W, p["U"]]), np.concatenate([mu, offsets["labels"]])
        b, p["c"][:] = bipartite.uncentered_biases(W, b, np.zeros_like(p["c"]), mu, offsets["hidden"])
        p["b"][:] = b[:len(p["b"])]
        if Y is not None:
            p["b_lab"][:] = b[len(p["b"]):]
    return offsets


def train_rbm_layer(V: np.ndarray, n_hidden: int, r: Recipe, rng: np.random.Generator,
                    Y: np.ndarray | None = None, init: tuple | None = None, cd: CD = RBM_M,
                    draw: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                    cd_every: int = 0) -> dict:
    """A whole RBM stage without checkpoints (small models, tests, a deep Boltzmann
    machine's pretraining with ``cd``'s doubled inputs); ``init``: starting ``(W, b, c)``
    instead of random weights (e.g. the layer below's, transposed). ``draw(rows, rng)``:
    the minibatch an update sees, made from its rows of ``V`` at every minibatch (e.g.
    binary states: ``rbm.m``, ``rbm_l2.m``); ``cd_every``: ``rbm_l2.m``'s CD-k, ``k =
    ceil(epoch / cd_every)`` (epochs from 1) at ``learning_rate / k``. ``r.centered``:
    centered CD (:func:`centered_start`; with ``init``, its biases are kept); the offsets
    are returned under ``"offsets"``."""
    backend = arrays.backend(r.backend, r.device, r.dtype)
    p, vel = new_rbm(V.shape[1], n_hidden, 0 if Y is None else Y.shape[1], r, rng)
    if init is not None:
        p.update({k: np.array(x, dtype=np.float32) for k, x in zip(("W", "b", "c"), init)})
    offsets = None
    if r.centered:
        offsets = centered_start(p, V, Y, init is None)
        cd = replace(cd, centering=(r.offset_rate, r.offset_rate))
    for epoch in range(r.pretrain_epochs):
        mom, buf, cd_e, r_e = r.momentum[epoch >= r.momentum_switch], None, cd, r
        if cd_every:
            k = -(-(epoch + 1) // cd_every)
            cd_e, r_e = replace(cd, k=k), replace(r, learning_rate=r.learning_rate / k)
        for s in range(0, len(V), r.batch_size):
            batch = V[s:s + r.batch_size] if draw is None else draw(V[s:s + r.batch_size], rng)
            buf = rbm_step(p, vel, batch, None if Y is None else Y[s:s + r.batch_size], r_e, mom, rng, buf, backend,
                           cd_e, offsets)
    return p if offsets is None else {**p, "offsets": offsets}


# -- the staged trainer ------------------------------------------------------------------------
def stage_names(recipe: Recipe) -> list[str]:
    """The stages of a run, in order: one RBM per directed layer, the top RBM, up-down,
    its continuation (with ``updown_continue`` only), backprop."""
    return ([f"rbm{l + 1}" for l in range(len(recipe.hidden) - 1)] + ["top", "updown"]
            + ["continue"] * (recipe.updown_continue > 0) + ["backprop"])


def best_epoch(history: list[dict], stage: str = "updown") -> int | None:
    """The epoch (1, 2, ...) of ``stage`` in ``history`` with the lowest held-out error,
    the earliest of equals; None if none was scored."""
    scored = [(e["valid_error"], e["epoch"]) for e in history if e["stage"] == stage and "valid_error" in e]
    return min(scored)[1] if scored else None


def continuation_order(seed: int, n: int) -> np.ndarray:
    """The continuation's order of the ``n`` cases (training, then held out), the same
    every epoch as the other stages' order: a permutation from a Generator seeded
    ``(seed, 4)``."""
    return np.random.default_rng([seed, 4]).permutation(n)


@dataclass
class Progress:
    """Where a run stands. ``stage_rng``: the Generator's state at the start of each
    stage reached, where a fork (:mod:`.dbn_fork`) begins."""

    stage: int = 0
    epoch: int = 0
    batch: int = 0
    seconds: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    stage_rng: list = field(default_factory=list)


class Trainer:
    """Runs a :class:`Recipe` on ``(X, labels)`` into ``directory``, resumably.

    ``X``: (n, n_visible) in [0, 1]; ``labels``: (n,) ints below ``n_labels``.
    ``on_batch(trainer)`` is called after every minibatch (tests use it to stop a run).
    """

    def __init__(self, recipe: Recipe, X: np.ndarray, labels: np.ndarray, directory: str | Path,
                 checkpoint_s: float = 180.0, log: Callable[[str], None] | None = None,
                 on_batch: Callable[["Trainer"], None] | None = None) -> None:
        X, labels = check_rows(X, "X", np.float32, values=UNIT), np.asarray(labels)
        if (labels.shape != (len(X),) or labels.dtype.kind not in "iu"
                or not 0 <= labels.min() <= labels.max() < recipe.n_labels):
            raise ParameterError(f"labels must be one integer in 0..{recipe.n_labels - 1} per row of X; got "
                                 f"{labels.dtype} of shape {labels.shape} for {len(X)} rows")
        n = len(X) - recipe.validation
        if n < 1:
            raise ParameterError(f"validation holds out {recipe.validation} of {len(X)} cases: none left to train on")
        self.X_valid, self.labels_valid = X[n:], labels[n:]
        self.r, self.X, self.labels, self.X_all = recipe, X[:n], labels[:n], X
        self.Y_all = np.eye(recipe.n_labels, dtype=np.float32)[labels]
        self.Y = self.Y_all[:n]
        self.dir = Path(directory)
        self.checkpoint_s, self.on_batch = checkpoint_s, on_batch
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.stages = stage_names(recipe)
        self.backend = arrays.backend(recipe.backend, recipe.device, recipe.dtype)

    # -- state -----------------------------------------------------------------------------
    def _fresh(self) -> None:
        r = self.r
        self.rng = np.random.default_rng(r.seed)
        self.order = np.random.default_rng([r.seed, 1]).permutation(len(self.X))
        self.dbn = DeepBeliefNet((self.X.shape[1],) + r.hidden, r.n_labels)
        self.progress = Progress()
        self.p, self.vel, self.offsets = {}, {}, {}
        self.greedy = None       # the greedy stack, kept through up-down for backprop_from="greedy"
        self.best = None         # with updown_continue: the DBN at up-down's best held-out epoch
        self.best_offsets = {}   # centered: its top RBM's offsets

    def _save(self) -> None:
        arrays = {f"dbn.{k}": v for k, v in self.dbn.state_dict().items()}
        arrays.update({f"p.{k}": v for k, v in self.p.items()})
        arrays.update({f"vel.{k}": v for k, v in self.vel.items()})
        arrays.update({f"offsets.{k}": v for k, v in self.offsets.items()})
        arrays.update({f"best_offsets.{k}": v for k, v in self.best_offsets.items()})
        for prefix, kept in (("greedy", self.greedy), ("best", self.best)):
            if kept is not None:
                arrays.update({f"{prefix}.{k}": v for k, v in kept.state_dict().items()})
        meta = {"recipe": asdict(self.r), "progress": asdict(self.progress),
                "rng": self.rng.bit_generator.state, "n_cases": len(self.X)}
        write_checkpoint(self.dir, arrays, meta)

    def _load(self) -> str:
        d, meta = read_checkpoint(self.dir / "checkpoint.npz")
        runs.check_unchanged(str(self.dir), "another recipe", asdict(recipe_of(meta)), asdict(self.r),
                             meta["n_cases"], len(self.X))
        self._fresh()
        self.rng.bit_generator.state = meta["rng"]
        self.progress = Progress(**meta["progress"])
        self.dbn = stack(d, "dbn.")
        self.p = {k[2:]: v for k, v in d.items() if k.startswith("p.")}
        self.vel = {k[4:]: v for k, v in d.items() if k.startswith("vel.")}
        self.offsets, self.best_offsets = (offsets_of(d, prefix) for prefix in ("offsets.", "best_offsets."))
        self.greedy, self.best = stack(d, "greedy."), stack(d, "best.")
        return self._where()

    # -- running -----------------------------------------------------------------------------
    def run(self, begin: Callable[[], None] | None = None) -> DeepBeliefNet:
        """Train (or resume) to the end of the recipe; returns the DBN. ``begin()`` is
        called under the lock before anything else (the CLI's last checks and writes)."""
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
            return self.dbn

    def _where(self) -> str:
        pr = self.progress
        stage = self.stages[pr.stage] if pr.stage < len(self.stages) else "done"
        return f"stage {stage}, epoch {pr.epoch}, minibatch {pr.batch}"

    def _run_stage(self, stage: str) -> None:
        epochs, batch, step, start = self._stage_plan(stage)
        pr = self.progress
        if pr.epoch == 0 and pr.batch == 0:
            pr.stage_rng[pr.stage:] = [self.rng.bit_generator.state]
            start()
        order = continuation_order(self.r.seed, len(self.X_all)) if stage == "continue" else self.order
        n_batches = self._n_batches = -(-len(order) // batch)
        clock = time.monotonic()
        done_before = pr.batch                 # minibatches of this epoch done before a resume
        while pr.epoch < epochs:
            while pr.batch < n_batches:
                if self._checkpoints.requested:
                    return
                idx = order[pr.batch * batch:(pr.batch + 1) * batch]
                step(idx, pr.epoch)
                pr.batch += 1
                if self.on_batch:
                    self.on_batch(self)
                self._checkpoints.tick()
            pr.batch, pr.epoch = 0, pr.epoch + 1
            elapsed = time.monotonic() - clock
            pr.seconds[stage] = pr.seconds.get(stage, 0.0) + elapsed
            clock = time.monotonic()
            self._report(stage, epochs, n_batches, batch, done_before, elapsed)
            if stage == "updown" and self.r.updown_continue and best_epoch(pr.history) == pr.epoch:
                self.best = DeepBeliefNet.from_state_dict(self.dbn.state_dict())     # a copy
                self.best_offsets = {k: v.copy() for k, v in self.offsets.items()}
            done_before = 0
            self._checkpoints.tick()
        self._finish(stage)
        pr.stage, pr.epoch, pr.batch = pr.stage + 1, 0, 0
        self._checkpoints.save()

    def _report(self, stage, epochs, n_batches, batch, done_before, elapsed) -> None:
        """Log the epoch just finished, with an ETA: remaining epochs weighed by their cost
        (up-down: its CD-k's FLOPs), backprop's by the trend of its recent epochs
        (:func:`trend_eta`), none while only the softmax layer learns."""
        pr = self.progress
        timed = (n_batches - done_before) / n_batches                  # of the epoch just finished
        rate = (n_batches - done_before) * batch / max(elapsed, 1e-9)
        if stage == "backprop":
            first = self.r.backprop_top_only if self.r.backprop_top_only < epochs else 0
            rates = [e["samples_per_s"] for e in pr.history if e["stage"] == stage and e["epoch"] > first]
            rates = [r for r in rates + [rate] if r > 0]       # an epoch resumed at its end timed nothing
            eta = (trend_eta([n_batches * batch / r for r in rates], epochs - pr.epoch)
                   if pr.epoch > first else None)
        else:
            per_cost = elapsed / max(timed * self._epoch_cost(stage, pr.epoch - 1), 1e-12)
            eta = per_cost * sum(self._epoch_cost(stage, e) for e in range(pr.epoch, epochs))
        entry = {"stage": stage, "epoch": pr.epoch, "samples_per_s": rate, "seconds": elapsed,
                 "eta_s": eta, **self._epoch_metric(stage)}
        pr.history.append(entry)
        until = (f"ETA {eta / 60:.1f} min" if eta is not None else
                 f"ETA after epoch {self.r.backprop_top_only + 1}, the first to train every layer")
        self.log(f"{stage}: epoch {pr.epoch}/{epochs}, {rate:,.0f} samples/s, {until}")

    def _epoch_cost(self, stage: str, epoch: int) -> float:
        """Relative cost of one epoch of a stage: constant, except up-down, whose CD-k
        schedule makes later epochs dearer (the continuation: its last CD-k's)."""
        if stage == "updown":
            return self.dbn.up_down_flops(self.r.cd_k(epoch))
        return self.dbn.up_down_flops(self.r.continuation()["k"]) if stage == "continue" else 1.0

    def _epoch_metric(self, stage: str) -> dict:
        """A learning curve point on the first 1000 training cases: reconstruction error
        (greedy stages) or classification error (and ``valid_error`` on held-out cases,
        but in the continuation, which trains on them)."""
        X, labels = self.X[:1000], self.labels[:1000]
        if stage.startswith("rbm") or stage == "top":
            V = self._stage_data()[:1000]
            p = self.p
            H = sigmoid(V @ p["W"] + p["c"] + (self.Y[:1000] @ p["U"] if stage == "top" else 0))
            return {"reconstruction_error": float(np.mean((V - sigmoid(H @ p["W"].T + p["b"])) ** 2))}
        predict = self.dbn.predict if stage != "backprop" else (lambda Z: backprop_predict(self.p, Z))
        out = {"train_error": float(np.mean(predict(X) != labels))}
        if len(self.X_valid) and stage != "continue":
            out["valid_error"] = float(np.mean(predict(self.X_valid) != self.labels_valid))
        return out

    # -- the stages --------------------------------------------------------------------------
    def _stage_plan(self, stage: str):
        r = self.r
        if stage.startswith("rbm") or stage == "top":
            return r.pretrain_epochs, r.batch_size, self._rbm_step, lambda: self._rbm_start(stage)
        if stage == "updown":
            return r.updown_epochs, r.batch_size, self._updown_step, self._updown_start
        if stage == "continue":
            return r.updown_continue, r.batch_size, self._continue_step, self._continue_start
        return r.backprop_epochs, r.backprop_batch, self._backprop_step, self._backprop_start

    def _layer_input(self) -> np.ndarray:
        """The data of a greedy stage: the data pushed up through the layers learned so
        far (probabilities, or samples from a Generator of their own: resumable)."""
        rng = (np.random.default_rng([self.r.seed, 2, self.progress.stage])
               if self.r.next_layer_on == "samples" else None)
        return np.concatenate([self.dbn.up(self.X[i:i + 10000], rng)[-1] for i in range(0, len(self.X), 10000)])

    def _rbm_start(self, stage: str) -> None:
        V = self._stage_data()
        n_lab = self.r.n_labels if stage == "top" else 0
        n_h = self.r.hidden[-1] if stage == "top" else self.r.hidden[self.progress.stage]
        self.p, self.vel = new_rbm(V.shape[1], n_h, n_lab, self.r, self.rng)
        if self.r.centered:
            self.offsets = centered_start(self.p, V, self.Y if n_lab else None, fresh=True)

    def _stage_data(self) -> np.ndarray:
        """The current greedy stage's data, computed once per stage (and on resume)."""
        if getattr(self, "_V_stage", None) != self.progress.stage:
            self._V, self._V_stage = self._layer_input(), self.progress.stage
        return self._V

    def _rbm_step(self, idx: np.ndarray, epoch: int) -> None:
        top = self.stages[self.progress.stage] == "top"
        mom = self.r.momentum[epoch >= self.r.momentum_switch]
        self._buf = rbm_step(self.p, self.vel, self._stage_data()[idx], self.Y[idx] if top else None, self.r, mom,
                             self.rng, getattr(self, "_buf", None), self.backend, self.r.greedy_cd(top),
                             self.offsets or None)

    def _updown_start(self) -> None:
        if self.r.backprop_from == "greedy":
            self.greedy = DeepBeliefNet.from_state_dict(self.dbn.state_dict())   # a copy

    def _updown_step(self, idx: np.ndarray, epoch: int) -> None:
        r = self.r
        lr = annealed(r.updown_lr, epoch, self.progress.batch, self._n_batches, r.updown_epochs, r.updown_anneal)
        self.dbn.up_down_step(self.X[idx], self.Y[idx], lr, r.cd_k(epoch), self.rng,
                              r.updown_momentum, r.updown_weight_decay, self.vel, backend=self.backend,
                              sample_labels=r.chain_labels == "samples", offsets=self.offsets or None,
                              offset_rate=r.offset_rate)

    def _continue_start(self) -> None:
        """The continuation starts from a copy of the best up-down epoch's DBN, with new
        (zero) velocities."""
        if self.best is None:
            raise NeurosimError(f"{self.dir}: the continuation starts from up-down's best held-out epoch, and the "
                                "checkpoint holds no copy of it")
        self.dbn = DeepBeliefNet.from_state_dict(self.best.state_dict())
        self.offsets = {k: v.copy() for k, v in self.best_offsets.items()}

    def _continue_step(self, idx: np.ndarray, epoch: int) -> None:
        self.dbn.up_down_step(self.X_all[idx], self.Y_all[idx], rng=self.rng, velocity=self.vel,
                              backend=self.backend, offsets=self.offsets or None, offset_rate=self.r.offset_rate,
                              **self.r.continuation())

    def _backprop_start(self) -> None:
        """The feed-forward net from the greedy stack or the up-down weights; the softmax
        layer's weights from a Generator of their own (seeded ``(seed, 3)``)."""
        r = self.r
        start = self.dbn
        if r.backprop_from == "greedy" and r.updown_epochs:
            if self.greedy is None:
                raise NeurosimError(f"{self.dir}: backprop starts from the greedy stack, and the checkpoint "
                                    "holds no copy of it")
            start = self.greedy
        self.p = backprop_net(start, np.random.default_rng([r.seed, 3]))
        self.vel = {k: np.zeros_like(v) for k, v in self.p.items()}

    def _backprop_step(self, idx: np.ndarray, epoch: int) -> None:
        r = self.r
        if r.backprop_line_searches:
            backprop_cg_step(self.p, self.X[idx], self.Y[idx], r.backprop_line_searches,
                             epoch >= r.backprop_top_only, self.backend)
            return
        lr = annealed(r.backprop_lr, epoch, self.progress.batch, self._n_batches, r.backprop_epochs,
                      r.backprop_anneal)
        backprop_step(self.p, self.vel, self.X[idx], self.Y[idx], lr, r.backprop_momentum,
                      epoch >= r.backprop_top_only, self.backend)

    def _finish(self, stage: str) -> None:
        d, p = self.dbn, self.p
        if stage.startswith("rbm"):
            d.add_rbm(p["W"], p["b"], p["c"])
        elif stage == "top":
            d.set_top(p["W"], p["U"], p["b"], p["b_lab"], p["c"])
        if stage != "backprop":  # the backprop net stays in the checkpoint as p.*
            self.p, self.vel = {}, {}
        if stage.startswith("rbm"):  # the top RBM's offsets go on into up-down (and stay for a fork)
            self.offsets = {}
        self._V_stage = self._V = None


# -- run directories ---------------------------------------------------------------------------
def recipe_of(meta: dict) -> Recipe:
    """The recipe a checkpoint's ``meta`` records. Checkpoints written before
    ``backprop_from`` existed started backprop from the up-down weights."""
    return Recipe(**{"backprop_from": "updown", **meta["recipe"]})


def recipe_for(dbn: DeepBeliefNet, recipe: str | Recipe, random_state: int | None, settings: dict) -> Recipe:
    """``recipe`` (a name in :data:`PRESETS` or a Recipe) with ``settings`` and what they
    imply (:func:`implied_settings`) in place, ``random_state`` as its seed, and the layers
    and labels of ``dbn``; an error names a setting that is unknown or contradicts ``dbn``
    (:meth:`DeepBeliefNet.fit`)."""
    base = PRESETS.get(recipe) if isinstance(recipe, str) else recipe
    if not isinstance(base, Recipe):
        raise ParameterError(f"recipe must be a Recipe or one of {', '.join(PRESETS)}, got {recipe!r}")
    unknown = sorted(set(settings) - {f.name for f in fields(Recipe)})
    if unknown:
        raise ParameterError(f"{unknown[0]!r} is not a setting of a Recipe")
    settings = implied_settings(settings)
    if random_state is not None:
        settings = {**settings, "seed": check_number("random_state", random_state, 0, integer=True)}
    r, own = replace(base, **settings), {"hidden": dbn.sizes[1:], "n_labels": dbn.n_labels}
    differ = [k for k in own if k in settings and getattr(r, k) != own[k]]
    if differ:
        raise ParameterError(f"{differ[0]}={getattr(r, differ[0])} where this DBN has {own[differ[0]]} "
                             f"(sizes {dbn.sizes})")
    return replace(r, **own)


def changed_settings(old: Recipe, new: Recipe | dict) -> list[str]:
    """The names of the settings in which ``new`` (a Recipe, or some settings by name)
    differs from ``old``, in ``new``'s order."""
    given = {f.name: getattr(new, f.name) for f in fields(Recipe)} if isinstance(new, Recipe) else new
    return [k for k, v in given.items() if getattr(old, k) != v]


def offsets_of(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The offsets of centered CD a checkpoint keeps under ``prefix`` (``"offsets."``, the
    current RBM's; ``"best_offsets."``, those of the best up-down epoch's top RBM), in
    :func:`centered_start`'s order; empty if none."""
    return {k: arrays[prefix + k] for k in ("visible", "hidden", "labels") if prefix + k in arrays}


def stack(arrays: dict[str, np.ndarray], prefix: str) -> DeepBeliefNet | None:
    """The DBN a checkpoint keeps under ``prefix``: ``"dbn."``, ``"greedy."``, the
    greedy stack kept through up-down, or ``"best."``, the DBN at up-down's best held-out
    epoch (each if any)."""
    state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    return DeepBeliefNet.from_state_dict(state) if state else None


def write_checkpoint(directory: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """``directory/checkpoint.npz`` from ``arrays`` and ``meta`` (recipe, progress, the
    Generator's state, the number of training cases) and ``progress.json`` beside it,
    each atomically (an OSError such as a full disk is an OutputError)."""
    write_npz(directory / "checkpoint.npz", arrays, meta)
    atomic_write_text(directory / "progress.json", json.dumps(meta["progress"], indent=1))


def read_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the ``meta`` of a run's ``checkpoint.npz``, checked: an error
    naming the file if it is unreadable, its meta is missing or malformed, or its DBN's
    arrays or centered CD's offsets do not have the shapes of its recipe's layers."""
    arrays, meta = read_npz_meta(path, "checkpoint")
    try:
        recipe, progress = recipe_of(meta), Progress(**meta["progress"])
        n_cases = int(meta["n_cases"])
        if "state" not in meta["rng"]:
            raise ValueError(f"rng is not a Generator's state: {str(meta['rng'])[:40]}")
        for prefix in ("dbn.", "greedy.", "best."):
            try:
                dbn = stack(arrays, prefix)
            except ParameterError as exc:
                raise ParameterError(f"{prefix}{exc}") from None
            if dbn is not None and dbn.sizes[1:] != recipe.hidden:
                raise ParameterError(f"{prefix}sizes {dbn.sizes} where its recipe has hidden={recipe.hidden}")
        _check_offsets(arrays, recipe, progress, int(arrays["dbn.sizes"][0]))
    except KeyError as exc:
        raise NeurosimError(f"{path}: not a neurosim checkpoint: no {exc} entry") from None
    except (ValueError, TypeError) as exc:
        raise NeurosimError(f"{path}: not a neurosim checkpoint: {exc}") from None
    if progress.stage > len(stage_names(recipe)) or n_cases < 1:
        raise NeurosimError(f"{path}: not a neurosim checkpoint: stage {progress.stage}, {n_cases} cases")
    return arrays, meta


def _check_offsets(arrays: dict[str, np.ndarray], recipe: Recipe, progress: Progress, n_visible: int) -> None:
    """A ValueError naming an offset (``offsets.``, ``best_offsets.``) whose shape is not
    that of its RBM's layer: the greedy stage's where the run stands, the top RBM's after;
    or naming the offsets a centered run must hold and does not (inside a greedy stage,
    in up-down or its continuation)."""
    sizes, stages = (n_visible,) + recipe.hidden, stage_names(recipe)
    stage = stages[min(progress.stage, len(stages) - 1)]
    l = int(stage[3:]) - 1 if stage.startswith("rbm") else len(sizes) - 2
    top = {"visible": sizes[-2], "hidden": sizes[-1], "labels": recipe.n_labels}
    for prefix, want in (("offsets.", {"visible": sizes[l], "hidden": sizes[l + 1], "labels": recipe.n_labels}),
                         ("best_offsets.", top)):
        for name, x in offsets_of(arrays, prefix).items():
            if x.shape != (want[name],):
                raise ValueError(f"{prefix}{name} has shape {x.shape} where {stage}'s RBM has ({want[name]},)")
    inside = stage in ("updown", "continue") or (stage != "backprop" and (progress.epoch, progress.batch) > (0, 0))
    if recipe.centered and inside and not offsets_of(arrays, "offsets."):
        raise ValueError(f"its recipe is centered and it holds no offsets.* for {stage}")


@dataclass
class Run:
    """What a training directory holds: the DBN, the backprop net (if that stage ran),
    the recipe and the progress (stage seconds, learning curves); with ``updown_continue``,
    ``best``, the DBN at up-down's best held-out epoch (the continuation's start)."""

    dbn: DeepBeliefNet
    backprop: dict | None
    recipe: Recipe
    progress: Progress
    finished: bool
    best: DeepBeliefNet | None = None

    @property
    def reached(self) -> str:
        """Where training stands, e.g. ``"updown, epoch 212 of 300"`` or ``"done"``."""
        if self.finished:
            return "done"
        stage = stage_names(self.recipe)[self.progress.stage]
        epochs = {"updown": self.recipe.updown_epochs, "continue": self.recipe.updown_continue,
                  "backprop": self.recipe.backprop_epochs}.get(stage, self.recipe.pretrain_epochs)
        return f"{stage}, epoch {self.progress.epoch} of {epochs}"

    def test_errors(self, X: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
        """The error rates on ``(X, labels)`` of the generative (free-energy) read-out and
        of the backprop net; None for a stage the run has not reached. With a best
        up-down epoch kept, also its epoch and its DBN's generative error
        (``test_error_generative_best_updown``: the first stage's network)."""
        def error(predict) -> float:
            return float(np.mean(predict(X) != labels))

        out = {"test_error_generative": None if self.dbn.W is None else error(self.dbn.predict),
               "test_error_backprop": None if self.backprop is None else
               error(lambda Z: backprop_predict(self.backprop, Z))}
        if self.best is not None:
            out.update(best_updown_epoch=best_epoch(self.progress.history),
                       test_error_generative_best_updown=error(self.best.predict))
        return out


def load_run(directory: str | Path) -> Run:
    path = Path(directory) / "checkpoint.npz"
    if not path.exists():
        raise NeurosimError(f"{directory}: no checkpoint.npz (train into it with `neurosim dbn train --out`)")
    d, meta = read_checkpoint(path)
    recipe, progress = recipe_of(meta), Progress(**meta["progress"])
    dbn = stack(d, "dbn.")
    n_stages = len(stage_names(recipe))
    backprop = None
    if progress.stage >= n_stages and recipe.backprop_epochs > 0:
        backprop = {k[2:]: v for k, v in d.items() if k.startswith("p.")}
        expected = backprop_net(dbn, np.random.default_rng(0))
        wrong = [k for k in expected if k not in backprop or backprop[k].shape != expected[k].shape]
        if wrong:
            raise NeurosimError(f"{path}: not a neurosim checkpoint: the backprop net's p.{wrong[0]} is "
                                f"{'missing' if wrong[0] not in backprop else backprop[wrong[0]].shape}, "
                                f"expected {expected[wrong[0]].shape}")
    return Run(dbn, backprop, recipe, progress, progress.stage >= n_stages, stack(d, "best."))
