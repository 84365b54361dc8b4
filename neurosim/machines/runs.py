"""Training runs that survive a kill: a lock, checkpoints, Ctrl-C and resuming, for every machine.

:class:`Checkpoints` is the one machinery: a :class:`Lock` (a file holding the training
process's id; a dead holder's lock is taken over), Ctrl-C and SIGTERM asking the run to
stop at the next minibatch, atomic checkpoints (:func:`~.base.write_npz`,
:func:`~.base.read_npz_meta`) every ``checkpoint_s`` seconds, and a resume refused if the
settings differ (:func:`check_unchanged`); :func:`check_resume` checks the caller's
intent (a new run or a resumed one) against the checkpoint on disk. It serves the DBN trainer (:mod:`.dbn_train`)
and :func:`fit_run`: ``machine.fit(X)`` that checkpoints the machine's arrays, training
state, Generator and position, and, called again, ends with exactly the weights of a
run never stopped (same seed, same BLAS thread count). See docs/architecture.md,
section "Machines".
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ..errors import NeurosimError, ParameterError
from ..outputs import OutputError
from .base import Machine, Position, read_npz_meta, write_npz

__all__ = ["Checkpoints", "Lock", "LockError", "check_resume", "check_unchanged", "fit_run"]

CHECKPOINT_FORMAT = "neurosim.checkpoint/1"


class LockError(NeurosimError):
    """Another process is training into the same run."""


class Lock:
    """``with Lock(path, where):`` holds the lock file ``path`` (created exclusively,
    holding this process's id; its folder is made if need be). A lock whose process has
    died is taken over; one without an id counts as held (a run started at the same
    instant may be about to write its id). ``where`` names the run in the messages."""

    def __init__(self, path: Path, where: str, into: str = "this directory") -> None:
        self.path, self.where, self.into = Path(path), where, into

    def __enter__(self) -> "Lock":
        for attempt in (0, 1):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = _lock_holder(self.path)
                if attempt or _alive(pid):
                    raise LockError(f"{self.where}: process {pid} is training into {self.into} "
                                    f"(remove {self.path} if it is not)") from None
                self.path.unlink(missing_ok=True)
                continue
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write the run's directory: "
                                  f"{exc.strerror or exc}") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return self
        raise AssertionError("unreachable")

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def _lock_holder(path: Path) -> int:
    """The process id in a lock file, read again after a moment if it is still being
    written; a LockError naming the file if it holds none."""
    for wait in (0.0, 0.2):
        time.sleep(wait)
        text = path.read_text().strip() if path.exists() else "0"
        if text.isdigit():
            return int(text)
    raise LockError(f"{path}: holds {text[:20]!r}, not a process id: another run may be starting "
                    "(remove the file if none is)")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Checkpoints:
    """``with Checkpoints(path, write, checkpoint_s, log, lock, name, into) as run:`` a
    resumable run under the :class:`Lock` ``lock``, where SIGINT and SIGTERM set
    :attr:`requested` instead of interrupting (the previous handlers come back on
    leaving). :meth:`begin` resumes from the checkpoint file ``path`` or writes a first
    one, :meth:`tick` saves ``checkpoint_s`` seconds after the last save, :meth:`stop`
    saves, logs and raises KeyboardInterrupt. ``write()`` writes a checkpoint; ``name``
    names the run in messages."""

    def __init__(self, path: Path, write: Callable[[], None], checkpoint_s: float, log: Callable[[str], None] | None,
                 lock: Path, name: str, into: str) -> None:
        self.path, self.write, self.checkpoint_s, self.name = Path(path), write, checkpoint_s, name
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._lock, self.requested = Lock(lock, name, into), False

    def __enter__(self) -> "Checkpoints":
        self._lock.__enter__()
        self._previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in self._previous:
            signal.signal(s, self._request)
        return self

    def _request(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._lock.__exit__()

    def begin(self, resume: Callable[[], str], fresh: Callable[[], None]) -> None:
        """``resume()`` (which returns where the run stands) if the checkpoint exists,
        else ``fresh()`` and a first checkpoint."""
        if self.path.exists():
            where = resume()
            self.saved = time.monotonic()
            self.log(f"resuming {self.name} at {where}")
        else:
            fresh()
            self.save()

    def save(self) -> None:
        self.write()
        self.saved = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.saved > self.checkpoint_s:
            self.save()

    def stop(self, where: str) -> None:
        self.save()
        self.log(f"stopped at {where}; checkpoint {self.name} saved, run again to resume")
        raise KeyboardInterrupt


def check_unchanged(name: str, what: str, started: dict, now: dict, n_started: int, n_now: int) -> None:
    """A NeurosimError naming every setting of ``now`` that differs from ``started`` (the
    checkpoint's) and the number of training cases if they differ: a run resumes only as
    it was started."""
    differ = [f"{k}={started.get(k)!r} where this one has {now[k]!r}" for k in now if started.get(k) != now[k]]
    if n_started != n_now:
        differ.append(f"{n_started} training cases where this one has {n_now}")
    if differ:
        raise NeurosimError(f"{name}: the checkpoint was made with {what} or data: {'; '.join(differ)} "
                            "(use the same ones to resume, or start a new run)")


def check_resume(checkpoint: str | Path, resume: bool, run: str | Path | None = None) -> None:
    """A new run (``resume`` false) refuses an existing ``checkpoint``, a resumed one a
    missing one: a NeurosimError naming ``run``, the directory holding the checkpoint, or
    else the checkpoint file itself (which stands beside the run's output)."""
    if Path(checkpoint).exists() == bool(resume):
        return
    if run is None:
        raise NeurosimError(f"--resume: {checkpoint} does not exist: no run to continue" if resume else
                            f"{checkpoint} holds an unfinished run: pass --resume to continue it, or remove it")
    raise NeurosimError(f"--resume: {run} holds no checkpoint to continue" if resume else
                        f"{run} holds a checkpoint: pass --resume to continue it, or choose a new --out")


# -- machines -----------------------------------------------------------------------------------
def _state(machine: Machine, X: Any, at: Position, seconds: float, info: dict | None) -> tuple[dict, dict]:
    """The checkpoint of ``machine`` at ``at``: its arrays (``m.``), its training state
    (``t.``), this epoch's order of rows, and meta (parameters, counters, position, the
    Generator's state, the number of cases, the training seconds, ``info``)."""
    arrays = {f"m.{k}": v for k, v in machine._arrays().items()}
    arrays.update({f"t.{k}": v for k, v in machine._training_state().items()})
    order = getattr(machine, "_order", None)
    if order is not None and at.batch > 0:
        arrays["order"] = order
    meta = {**machine._meta(info), "format": CHECKPOINT_FORMAT, "machine": type(machine).__name__,
            "position": asdict(at), "rng": machine.random_state_.bit_generator.state, "n_cases": int(X.shape[0]),
            "seconds": seconds}
    return arrays, meta


def _with_defaults(started: dict, machine: Machine) -> dict:
    """A checkpoint's parameters, each that it predates (a setting added to the machine
    since) at the machine's default for it, as JSON holds it: what the run was trained with."""
    defaults = type(machine)._json_defaults()
    return {**{k: v for k, v in defaults.items() if k not in started}, **started}


def _resume(machine: Machine, path: Path, X: Any) -> tuple[Position, float]:
    """Put ``machine`` (fresh from ``_begin_fit``) in the state the checkpoint ``path``
    holds; an error naming the parameters (or data) in which it differs."""
    arrays, meta = read_npz_meta(path, "checkpoint")
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("machine") != type(machine).__name__:
        raise NeurosimError(f"{path}: not a checkpoint of a {type(machine).__name__} training run")
    check_unchanged(str(path), "other settings", _with_defaults(meta["params"], machine), machine._json_params(),
                    meta["n_cases"], X.shape[0])
    restored = type(machine)._from_arrays({k[2:]: v for k, v in arrays.items() if k.startswith("m.")},
                                          machine.get_params(), meta["fitted"])
    machine.__dict__.update({k: v for k, v in restored.__dict__.items()
                             if k.endswith("_") and not k.startswith("_") and k != "random_state_"})
    machine._set_training_state({k[2:]: v for k, v in arrays.items() if k.startswith("t.")})
    machine._order = arrays.get("order")
    machine.random_state_.bit_generator.state = meta["rng"]
    return Position(**meta["position"]), float(meta["seconds"])


def fit_run(machine: Machine, X: Any, checkpoint: str | Path, checkpoint_s: float = 180.0,
            log: Callable[[str], None] | None = None, info: dict | None = None,
            after_batch: Callable[[Position], None] | None = None) -> float:
    """``machine.fit(X)``, resumable through the file ``checkpoint`` (see the module
    docstring); its lock is ``checkpoint`` + ``.lock``. If ``checkpoint`` exists the run
    continues from it. Logs each epoch's rate (``log``, default stderr); ``after_batch``
    is called after every minibatch (tests stop a run there). Returns the training
    seconds of the whole run, resumed parts included; the checkpoint stays (the caller
    removes it once the result is safe). Ctrl-C or SIGTERM: a checkpoint at the next
    minibatch, then KeyboardInterrupt."""
    if machine.get_params().get("n_restarts", 1) != 1:
        raise ParameterError(f"fit_run resumes one run: n_restarts must be 1, got {machine.n_restarts!r}")
    checkpoint = Path(checkpoint)
    name = type(machine).__name__.lower()
    at, seconds = Position(), 0.0
    run = Checkpoints(checkpoint, lambda: write_npz(checkpoint, *_state(machine, X, at, seconds, info)),
                      checkpoint_s, log, Path(f"{checkpoint}.lock"), str(checkpoint), "this run")
    with run:
        X = machine._begin_fit(X)

        def resume() -> str:
            nonlocal at, seconds
            at, seconds = _resume(machine, checkpoint, X)
            return f"epoch {at.epoch}, minibatch {at.batch}"

        run.begin(resume, lambda: None)
        n_batches = -(-X.shape[0] // machine._batch_rows)
        clock = time.monotonic()
        here = [0, 0.0]                                  # minibatches and seconds of this process

        def after(at: Position) -> None:                 # the Position the loop advances
            nonlocal clock, seconds
            if after_batch is not None:
                after_batch(at)
            now = time.monotonic()
            seconds, here[0], here[1], clock = seconds + now - clock, here[0] + 1, here[1] + now - clock, now
            if at.batch == n_batches:
                run.log(f"{name}: epoch {at.epoch + 1}/{machine._n_epochs}, "
                        f"{here[0] * X.shape[0] / n_batches / max(here[1], 1e-9):,.0f} samples/s")
            if run.requested:
                run.stop(f"epoch {at.epoch}, minibatch {at.batch}")
            run.tick()
            clock = max(clock, run.saved)                # a checkpoint is not training time

        machine._fit_loop(X, at, after)
        at = Position(machine._n_epochs)
        run.save()
        return seconds
