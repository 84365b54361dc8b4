"""Forking a run at its first changed fine-tuning stage gives a fresh run's weights."""

import json
import os
import signal
from dataclasses import replace

import numpy as np
import pytest

from neurosim.errors import NeurosimError
from neurosim.machines.dbn_fork import fork_run
from neurosim.machines.dbn_train import Trainer, load_run, read_npz, write_checkpoint
from test_dbn import digits, quiet, recipe

BASE = recipe(pretrain_epochs=2, updown_epochs=2, backprop_epochs=3)
X, Y = digits(300, 6)


def train(r, directory):
    tr = Trainer(r, X, Y, directory, log=quiet)
    tr.run()
    return tr


def same_weights(a: Trainer, b: Trainer) -> bool:
    da, db = a.dbn.state_dict(), b.dbn.state_dict()
    return (da.keys() == db.keys() and all(np.array_equal(da[k], db[k]) for k in da)
            and a.p.keys() == b.p.keys() and all(np.array_equal(a.p[k], b.p[k]) for k in a.p))


@pytest.mark.parametrize("source, new", [
    (BASE, replace(BASE, backprop_line_searches=1)),                          # fork at backprop
    (replace(BASE, updown_epochs=0, backprop_epochs=0), BASE),                # fork at up-down
])
def test_a_fork_trains_on_to_the_weights_of_a_fresh_run(tmp_path, source, new):
    train(source, tmp_path / "source")
    note = fork_run(tmp_path / "source", new, tmp_path / "fork", len(X))
    shared = "rbm1, rbm2, top, updown" if new.updown_epochs == source.updown_epochs else "rbm1, rbm2, top"
    assert f"({shared} reused)" in note and "no Generator state" not in note
    forked = train(new, tmp_path / "fork")
    assert same_weights(forked, train(new, tmp_path / "fresh"))
    assert set(load_run(tmp_path / "fork").progress.seconds) == {"rbm1", "rbm2", "top", "updown", "backprop"}


def stopped_in(stage, epoch, r, directory):
    def interrupt(tr):
        if tr.stages[tr.progress.stage] == stage and (tr.progress.epoch, tr.progress.batch) == (epoch, 2):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(r, X, Y, directory, log=quiet, on_batch=interrupt).run()


CG = replace(BASE, backprop_line_searches=1, backprop_batch=60)


@pytest.mark.parametrize("source, finished", [
    (replace(CG, backprop_epochs=2), True),                          # a finished run, carried on
    (CG, False),                                                     # a run stopped inside backprop
    (replace(BASE, backprop_epochs=2), True),                        # SGD without annealing
])
def test_more_backprop_epochs_carry_on_from_where_the_run_stands(tmp_path, source, finished):
    new = replace(source, backprop_epochs=4)
    if finished:
        train(source, tmp_path / "source")
    else:
        stopped_in("backprop", 1, source, tmp_path / "source")
    note = fork_run(tmp_path / "source", new, tmp_path / "fork", len(X))
    assert note.endswith(f"backprop at epoch {2 if finished else 1}, minibatch {0 if finished else 2}, "
                         "to epoch 4 (all earlier training reused)")
    assert same_weights(train(new, tmp_path / "fork"), train(new, tmp_path / "fresh"))


@pytest.mark.parametrize("new", [
    replace(BASE, backprop_epochs=4, backprop_anneal=2),            # annealing: every step depends on 4
    replace(BASE, backprop_epochs=2),                                # fewer epochs than the run trained
])
def test_backprop_that_cannot_carry_on_starts_again(tmp_path, new):
    source = replace(new, backprop_epochs=3)
    train(source, tmp_path / "source")
    assert "starts at backprop" in fork_run(tmp_path / "source", new, tmp_path / "fork", len(X))
    assert same_weights(train(new, tmp_path / "fork"), train(new, tmp_path / "fresh"))


def test_a_run_without_recorded_generator_states_forks_from_its_last_and_says_so(tmp_path):
    train(BASE, tmp_path / "source")
    d = read_npz(tmp_path / "source" / "checkpoint.npz", "checkpoint")
    meta = json.loads(str(d.pop("meta")))
    meta["progress"].pop("stage_rng")                                          # as before 2026-12-05
    write_checkpoint(tmp_path / "source", d, meta)
    note = fork_run(tmp_path / "source", replace(BASE, backprop_lr=0.05), tmp_path / "fork", len(X))
    assert "no Generator state at the start of backprop" in note
    assert load_run(tmp_path / "fork").progress.stage == 4


@pytest.mark.parametrize("new, n_cases, match", [
    (BASE, 300, "the same recipe as RUN"),
    (replace(BASE, pretrain_epochs=3, seed=4), 300, "pretrain_epochs, seed differ from RUN's"),
    (replace(BASE, updown_lr=0.01), 300, "up-down has changed the weights"),
    (replace(BASE, backprop_lr=0.05), 299, "RUN trained on 300 cases, this run on 299"),
])
def test_forks_that_cannot_reuse_the_run_are_refused_by_name(tmp_path, new, n_cases, match):
    train(BASE, tmp_path / "source")
    with pytest.raises(NeurosimError, match=match):
        fork_run(tmp_path / "source", new, tmp_path / "fork", n_cases)
    assert not (tmp_path / "fork").exists()


def test_a_fork_needs_a_run_to_start_from(tmp_path):
    with pytest.raises(NeurosimError, match="no checkpoint.npz there"):
        fork_run(tmp_path / "none", BASE, tmp_path / "fork", len(X))


def test_a_fork_needs_the_shared_stages_finished(tmp_path):
    stopped_in("top", 0, BASE, tmp_path / "source")
    with pytest.raises(NeurosimError, match="has not finished the stages before backprop .it is at top"):
        fork_run(tmp_path / "source", replace(BASE, backprop_lr=0.05), tmp_path / "fork", len(X))


# -- where backprop starts ------------------------------------------------------------------
TOP_ONLY = replace(BASE, backprop_epochs=2, backprop_top_only=2)     # backprop leaves the stack alone


@pytest.mark.parametrize("start", ["greedy", "updown"])
def test_backprop_starts_from_the_stack_the_recipe_names(tmp_path, start):
    tr = train(replace(TOP_ONLY, backprop_from=start), tmp_path / "run")
    stack = tr.greedy if start == "greedy" else tr.dbn
    other = tr.dbn if start == "greedy" else tr.greedy
    assert np.array_equal(tr.p["w0"], stack.R[0]) and np.array_equal(tr.p["w2"], stack.W)
    assert (other is None) == (start == "updown")
    assert other is None or not np.array_equal(tr.p["w0"], other.R[0])      # up-down moved the weights


def test_backprop_from_the_greedy_stack_is_the_same_with_or_without_up_down(tmp_path):
    """The backprop path (``--updown-epochs 0``) is the preset's backprop, to the bit."""
    with_updown = train(BASE, tmp_path / "with")
    alone = train(replace(BASE, updown_epochs=0), tmp_path / "alone")
    assert with_updown.p.keys() == alone.p.keys()
    assert all(np.array_equal(with_updown.p[k], alone.p[k]) for k in alone.p)


def test_the_greedy_stack_survives_a_stop_inside_up_down(tmp_path):
    stopped_in("updown", 1, BASE, tmp_path / "cut")
    assert same_weights(train(BASE, tmp_path / "cut"), train(BASE, tmp_path / "whole"))


def test_a_fork_to_greedy_backprop_needs_the_greedy_stack(tmp_path):
    train(replace(BASE, backprop_from="updown"), tmp_path / "source")
    with pytest.raises(NeurosimError, match="RUN kept no copy of it through up-down"):
        fork_run(tmp_path / "source", BASE, tmp_path / "fork", len(X))


def test_checkpoints_from_before_backprop_from_started_backprop_from_up_down(tmp_path):
    train(TOP_ONLY, tmp_path / "run")
    d = read_npz(tmp_path / "run" / "checkpoint.npz", "checkpoint")
    meta = json.loads(str(d.pop("meta")))
    meta["recipe"].pop("backprop_from")
    write_checkpoint(tmp_path / "run", d, meta)
    assert load_run(tmp_path / "run").recipe.backprop_from == "updown"
