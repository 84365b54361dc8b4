"""A new run from another run's finished stages (``neurosim dbn train --from RUN``).

A recipe that differs from RUN's only in its up-down, continuation or backprop settings
starts where they part, from RUN's weights and Generator state at the start of that stage
(or, given only more backprop epochs, from RUN's backprop where it stands): training on
gives exactly the weights of a fresh run of the new recipe.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..errors import NeurosimError
from .dbn_train import (Progress, Recipe, best_epoch, changed_settings, read_checkpoint, recipe_of, stage_names,
                        write_checkpoint)

__all__ = ["fork_stage", "fork_run", "plan_fork", "continues_backprop"]

FINE_TUNING = ("updown", "continue", "backprop")
CONTINUATION = ("updown_continue", "continue_lr")


def setting_stage(name: str) -> str | None:
    """The fine-tuning stage a Recipe setting belongs to (None: a greedy stage's)."""
    if name in CONTINUATION:
        return "continue"
    return next((s for s in ("updown", "backprop") if name.startswith(f"{s}_")), None)


def fork_stage(old: Recipe, new: Recipe) -> str:
    """The first stage whose settings differ between ``old`` and ``new``: ``"updown"``,
    ``"continue"`` or ``"backprop"``; an error names the settings if the greedy stages differ."""
    changed = changed_settings(old, new)
    if not changed:
        raise NeurosimError("the same recipe as RUN: nothing to fork (continue RUN with --resume)")
    greedy = [name for name in changed if setting_stage(name) is None]
    if greedy:
        verb = "differs" if len(greedy) == 1 else "differ"
        raise NeurosimError(f"{', '.join(greedy)} {verb} from RUN's: its greedy stages cannot be reused")
    return next(s for s in FINE_TUNING if any(setting_stage(name) == s for name in changed))


def continues_backprop(old: Recipe, new: Recipe, done: Progress) -> bool:
    """Whether ``new`` is ``old`` with more backprop epochs than ``done`` (the old run's
    progress) has reached, and no step of backprop depends on the number of epochs."""
    changed = changed_settings(old, new)
    at = len(stage_names(old)) - 1
    reached = (old.backprop_epochs, 0) if done.stage > at else (done.epoch, done.batch)
    return (changed == ["backprop_epochs"] and done.stage >= at and (0, 0) < reached <= (new.backprop_epochs, 0)
            and (new.backprop_line_searches > 0 or new.backprop_anneal == 0))


def fork_run(source: str | Path, recipe: Recipe, directory: str | Path, n_cases: int) -> str:
    """Write ``directory/checkpoint.npz``: the run in ``source`` at the start of the first
    stage ``recipe`` changes (or where its backprop stands, if :func:`continues_backprop`),
    under ``recipe``; ``n_cases``: the training cases of the new run (they must be RUN's).
    Returns a line saying what was reused."""
    arrays, meta, note = plan_fork(source, recipe, directory, n_cases)
    Path(directory).mkdir(parents=True, exist_ok=True)
    write_checkpoint(Path(directory), arrays, meta)
    return note


def plan_fork(source: str | Path, recipe: Recipe, directory: str | Path, n_cases: int) -> tuple[dict, dict, str]:
    """What :func:`fork_run` writes, ``(arrays, meta, note)``, checked but not written
    (the CLI writes it under the new run's lock)."""
    if not (Path(source) / "checkpoint.npz").is_file():
        raise NeurosimError(f"--from {source}: no checkpoint.npz there (a run directory of `neurosim dbn train`)")
    d, meta = read_checkpoint(Path(source) / "checkpoint.npz")
    old, done = recipe_of(meta), Progress(**meta["progress"])
    stage = fork_stage(old, recipe)
    if meta["n_cases"] != n_cases:
        raise NeurosimError(f"--from {source}: RUN trained on {meta['n_cases']} cases, this run on "
                            f"{n_cases} (--limit must match)")
    stages = stage_names(recipe)
    if stage == "continue" and not recipe.updown_continue:
        raise NeurosimError(f"--from {source}: RUN's continuation has replaced its up-down weights, which a run "
                            "without one goes on from; fork from a run trained without --updown-continue")
    at = stages.index(stage)
    if done.stage < at:
        raise NeurosimError(f"--from {source}: RUN has not finished the stages before {stage} "
                            f"(it is at {stages[done.stage]}, epoch {done.epoch})")
    if stage == "updown" and old.updown_epochs and (done.stage, done.epoch, done.batch) > (at, 0, 0):
        raise NeurosimError(f"--from {source}: RUN's up-down has changed the weights a new up-down must start "
                            "from; fork from a run trained with --updown-epochs 0")
    greedy_needed = stage != "updown" and recipe.backprop_from == "greedy" and recipe.updown_epochs
    if greedy_needed and not any(k.startswith("greedy.") for k in d):
        raise NeurosimError(f"--from {source}: backprop starts from the greedy stack, and RUN kept no copy of "
                            "it through up-down; for backprop alone from the greedy stack, fork a run trained with "
                            "--updown-epochs 0 and pass --updown-epochs 0")
    if continues_backprop(old, recipe, done):
        return _continue_backprop(source, d, meta, recipe, directory)
    shared = stages[:at]
    progress = Progress(stage=at, seconds={s: t for s, t in done.seconds.items() if s in shared},
                        history=[h for h in done.history if h["stage"] in shared],
                        stage_rng=done.stage_rng[:at + 1])
    note = f"{directory}: starts at {stage} from {source} ({', '.join(shared)} reused)"
    if len(done.stage_rng) > at:
        rng = done.stage_rng[at]
    else:
        rng = meta["rng"]
        note += f"; RUN recorded no Generator state at the start of {stage}, so the fork draws from its last"
    arrays = {k: v for k, v in d.items() if k.startswith(("dbn.", "greedy.", "best.", "offsets.", "best_offsets."))}
    if stage == "continue":
        arrays.update(_best_copy(source, arrays, old, done))
        note += f"; the continuation starts from up-down epoch {best_epoch(done.history)}, the best held out"
    return arrays, {"recipe": asdict(recipe), "progress": asdict(progress), "rng": rng, "n_cases": n_cases}, note


def _best_copy(source: str | Path, arrays: dict, old: Recipe, done: Progress) -> dict:
    """The ``best.`` arrays a continuation starts from: RUN's own, or, for a run that kept
    none, its up-down weights (and centered, its top RBM's ``offsets.`` as
    ``best_offsets.``) if their last epoch was the best held out; else an error."""
    if any(k.startswith("best.") for k in arrays):
        return {}
    best = best_epoch(done.history)
    if best != old.updown_epochs:
        raise NeurosimError(f"--from {source}: RUN kept no copy of its best up-down epoch ({best} of "
                            f"{old.updown_epochs} on the held-out digits), and its weights are epoch "
                            f"{old.updown_epochs}'s; fork from a run trained with --updown-continue")
    best = {f"best.{k[4:]}": v for k, v in arrays.items() if k.startswith("dbn.")}
    return {**best, **{f"best_{k}": v for k, v in arrays.items() if k.startswith("offsets.")}}


def _continue_backprop(source: str | Path, arrays: dict, meta: dict, recipe: Recipe,
                       directory: str | Path) -> tuple[dict, dict, str]:
    """The checkpoint of RUN's backprop where it stands (its epoch count raised): what a
    fresh run of ``recipe`` holds at that epoch, as :func:`plan_fork` returns it."""
    done = Progress(**meta["progress"])
    at = len(stage_names(recipe)) - 1
    if done.stage > at:
        done.stage, done.epoch, done.batch = at, recipe_of(meta).backprop_epochs, 0
    note = (f"{directory}: continues {source}'s backprop at epoch {done.epoch}, minibatch {done.batch}, "
            f"to epoch {recipe.backprop_epochs} (all earlier training reused)")
    return arrays, {**meta, "recipe": asdict(recipe), "progress": asdict(done)}, note
