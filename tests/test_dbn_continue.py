"""The two stages of Hinton, Osindero and Teh (2006, section 6.1): up-down keeps its best
held-out epoch, and ``updown_continue`` more epochs train that copy on every case."""

import json
import os
import signal
from dataclasses import replace

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.errors import NeurosimError, ParameterError
from neurosim.machines.dbn import DeepBeliefNet
from neurosim.machines.dbn_fork import fork_run
from neurosim.machines.dbn_train import (Trainer, best_epoch, continuation_order, load_run, read_npz, stage_names,
                                         write_checkpoint)
from test_benchmarks import ROOT, load
from test_cli_mnist import fake_mnist  # noqa: F401  (a fixture)
from test_dbn import digits, kill_mid_epoch, quiet, recipe

TWO = recipe(validation=100, updown_epochs=4, updown_continue=3, backprop_epochs=0)
X, Y = digits(500, 6, flip=0.3)
SCRIPTED = {1: 0.3, 2: 0.1, 3: 0.2, 4: 0.1}       # held-out errors: epoch 2 best, tied by the last


def scripted_metric(real, kept: dict):
    """``Trainer._epoch_metric`` (``real``) with up-down's held-out error of each epoch as
    SCRIPTED says, keeping a copy of the DBN at every up-down epoch's end in ``kept``."""
    def metric(self, stage):
        out = real(self, stage)
        if stage == "updown":
            out["valid_error"] = SCRIPTED[self.progress.epoch]
            kept[self.progress.epoch] = {k: v.copy() for k, v in self.dbn.state_dict().items()}
        return out
    return metric


@pytest.fixture
def scripted(monkeypatch):
    kept = {}
    monkeypatch.setattr(Trainer, "_epoch_metric", scripted_metric(Trainer._epoch_metric, kept))
    return kept


def run(r, directory, **kw):
    tr = Trainer(r, X, Y, directory, log=quiet, **kw)
    tr.run()
    return tr


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_continuation_starts_from_the_best_held_out_epoch_the_earliest_of_equals(tmp_path, scripted,
                                                                                     monkeypatch):
    started = {}
    real_start = Trainer._continue_start

    def start(self):
        real_start(self)
        started.update({k: v.copy() for k, v in self.dbn.state_dict().items()})

    monkeypatch.setattr(Trainer, "_continue_start", start)
    tr = run(TWO, tmp_path)
    assert best_epoch(tr.progress.history) == 2
    assert same(started, scripted[2]) and not same(started, scripted[4])
    assert same(tr.best.state_dict(), scripted[2])
    tuned = [e for e in tr.progress.history if e["stage"] == "continue"]
    assert [e["epoch"] for e in tuned] == [1, 2, 3]
    assert all("valid_error" not in e and 0 <= e["train_error"] <= 1 for e in tuned)
    assert tuned[-1]["train_error"] == np.mean(tr.dbn.predict(X[:400]) != Y[:400])
    assert set(tr.progress.seconds) == {"rbm1", "rbm2", "top", "updown", "continue"}


def test_the_continuation_trains_on_every_case_training_and_held_out(tmp_path, monkeypatch):
    seen = []
    real = DeepBeliefNet.up_down_step
    monkeypatch.setattr(DeepBeliefNet, "up_down_step", lambda self, X_, *a, **k: (seen.append(X_.copy()),
                                                                                   real(self, X_, *a, **k))[1])
    run(TWO, tmp_path)
    per_epoch = 400 // TWO.batch_size
    updown, tail = seen[:4 * per_epoch], seen[4 * per_epoch:]
    assert sum(map(len, updown)) == 4 * 400 and len(tail) == 3 * 25 and sum(map(len, tail)) == 3 * 500
    rows = np.concatenate(tail[:25])
    assert np.array_equal(np.unique(rows, axis=0), np.unique(X, axis=0))        # every case, the held-out ones too
    assert not np.array_equal(np.unique(np.concatenate(updown), axis=0), np.unique(X, axis=0))


def test_the_experiment_loop_is_the_trainers_continuation_bit_for_bit(tmp_path):
    """experiments/continuation_spread.py's epochs, from the best copy with the stage's
    Generator state and order, give the trainer's continued weights exactly."""
    spread = load("continuation_spread", ROOT / "experiments")
    tr = run(TWO, tmp_path)
    rng = np.random.default_rng()
    rng.bit_generator.state = tr.progress.stage_rng[stage_names(TWO).index("continue")]
    dbn = DeepBeliefNet.from_state_dict(tr.best.state_dict())
    steps = spread.continue_up_down(dbn, X, np.eye(4, dtype=np.float32)[Y], TWO.continuation(), TWO.batch_size,
                                    continuation_order(TWO.seed, len(X)), rng, 3)
    assert list(steps) == [1, 2, 3]
    assert same(dbn.state_dict(), tr.dbn.state_dict()) and not same(dbn.state_dict(), tr.best.state_dict())


def test_a_constant_continuation_rate_of_its_own(tmp_path, monkeypatch):
    rates = []
    real = DeepBeliefNet.up_down_step
    monkeypatch.setattr(DeepBeliefNet, "up_down_step", lambda self, X_, Y_, lr, k, *a, **kw: (
        rates.append((lr, k)), real(self, X_, Y_, lr, k, *a, **kw))[1])
    run(replace(TWO, continue_lr=0.0123, updown_anneal=2), tmp_path)
    assert set(rates[-75:]) == {(0.0123, 6)}                     # constant, up-down's last CD-k
    assert len({lr for lr, _ in rates[:80]}) > 1                # up-down itself anneals


def interrupted(r, stage, epoch, batch, directory):
    def interrupt(tr):
        if tr.stages[tr.progress.stage] == stage and (tr.progress.epoch, tr.progress.batch) == (epoch, batch):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run(r, directory, on_batch=interrupt)


@pytest.mark.parametrize("stage, epoch, batch", [("continue", 1, 7),      # mid-continuation
                                                 ("updown", 3, 4)])       # after the best epoch, before its tie
def test_a_run_stopped_by_ctrl_c_resumes_to_the_uninterrupted_weights(tmp_path, scripted, stage, epoch, batch):
    whole = run(TWO, tmp_path / "whole")
    interrupted(TWO, stage, epoch, batch, tmp_path / "cut")
    saved = read_npz(tmp_path / "cut" / "checkpoint.npz", "checkpoint")
    assert any(k.startswith("best.") for k in saved)
    assert load_run(tmp_path / "cut").reached == f"{stage}, epoch {epoch} of {3 if stage == 'continue' else 4}"
    resumed = run(TWO, tmp_path / "cut")
    assert same(whole.dbn.state_dict(), resumed.dbn.state_dict())
    assert same(whole.best.state_dict(), resumed.best.state_dict())
    assert best_epoch(resumed.progress.history) == 2


CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_dbn_continue import TWO, X, Y
from neurosim.machines.dbn_train import Trainer
Trainer(TWO, X, Y, {dir!r}, checkpoint_s=0.0, log=lambda m: None, on_batch=lambda tr: time.sleep(0.002)).run()
"""


def test_kill_minus_nine_in_the_continuation_then_resume(tmp_path):
    whole = run(TWO, tmp_path / "whole")
    kill_mid_epoch(CHILD, tmp_path / "killed", stage_names(TWO).index("continue"))
    resumed = run(TWO, tmp_path / "killed")
    assert same(whole.dbn.state_dict(), resumed.dbn.state_dict())


def test_a_continuation_needs_held_out_cases_and_up_down_epochs():
    with pytest.raises(ParameterError, match=r"updown_continue=3 .* needs validation > 0 .* validation=0"):
        replace(TWO, validation=0)
    with pytest.raises(ParameterError, match="updown_epochs=0"):
        replace(TWO, updown_epochs=0)
    with pytest.raises(ParameterError, match="continue_lr must be > 0"):
        replace(TWO, continue_lr=0.0)
    assert stage_names(replace(TWO, updown_continue=0)) == ["rbm1", "rbm2", "top", "updown", "backprop"]


@pytest.mark.parametrize("start", ["greedy", "updown"])
def test_backprop_after_a_continuation_starts_from_the_stack_the_recipe_names(tmp_path, start):
    tr = run(replace(TWO, backprop_epochs=1, backprop_top_only=1, backprop_from=start), tmp_path)
    stack = tr.greedy if start == "greedy" else tr.dbn          # tr.dbn: the continued weights
    assert np.array_equal(tr.p["w0"], stack.R[0]) and not np.array_equal(tr.p["w0"], tr.best.R[0])


# -- forks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [replace(TWO, updown_continue=1),             # another continuation
                                    replace(TWO, continue_lr=0.01),              # another rate
                                    replace(TWO, updown_continue=0)])            # none, best epoch the last
def test_a_fork_at_the_continuation_trains_on_to_a_fresh_runs_weights(tmp_path, monkeypatch, source):
    if not source.updown_continue:                                             # the scripted best: the last
        monkeypatch.setitem(SCRIPTED, 4, 0.05)
        monkeypatch.setattr(Trainer, "_epoch_metric", scripted_metric(Trainer._epoch_metric, {}))
    run(source, tmp_path / "source")
    note = fork_run(tmp_path / "source", TWO, tmp_path / "fork", 400)
    assert "starts at continue" in note and "(rbm1, rbm2, top, updown reused)" in note
    forked, fresh = run(TWO, tmp_path / "fork"), run(TWO, tmp_path / "fresh")
    assert same(forked.dbn.state_dict(), fresh.dbn.state_dict())
    assert same(forked.best.state_dict(), fresh.best.state_dict())


def test_forks_the_continuation_cannot_start_are_refused(tmp_path, scripted):
    run(replace(TWO, updown_continue=0), tmp_path / "plain")          # best epoch 2 of 4: no copy kept
    with pytest.raises(NeurosimError, match=r"kept no copy of its best up-down epoch \(2 of 4"):
        fork_run(tmp_path / "plain", TWO, tmp_path / "fork", 400)
    run(TWO, tmp_path / "two")
    with pytest.raises(NeurosimError, match="continuation has replaced its up-down weights"):
        fork_run(tmp_path / "two", replace(TWO, updown_continue=0), tmp_path / "fork", 400)
    assert not (tmp_path / "fork").exists()


def test_a_checkpoint_with_a_best_copy_of_other_layers_is_refused(tmp_path):
    run(TWO, tmp_path)
    d = read_npz(tmp_path / "checkpoint.npz", "checkpoint")
    meta = json.loads(str(d.pop("meta")))
    d["best.W"] = np.zeros((3, 40), np.float32)
    write_checkpoint(tmp_path, d, meta)
    with pytest.raises(NeurosimError, match=r"not a neurosim checkpoint: best.W has shape \(3, 40\)"):
        load_run(tmp_path)


# -- the command line and the experiment ------------------------------------------------------------
SMALL = ["dbn", "train", "--hidden", "20,20,30", "--pretrain-epochs", "2", "--updown-epochs", "2",
         "--backprop-epochs", "0", "--validation", "50"]


def test_the_flags_reach_the_recipe_and_evaluate_reports_the_stage(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMALL + ["--updown-continue", "2", "--continue-lr", "0.001", "--out", str(out)]) == 0
    recipe_ = json.loads((out / "command.json").read_text())["recipe"]
    assert (recipe_["updown_continue"], recipe_["continue_lr"]) == (2, 0.001)
    capsys.readouterr()
    assert main(["dbn", "evaluate", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["seconds"]) == {"rbm1", "rbm2", "top", "updown", "continue"} and r["reached"] == "done"
    assert r["best_updown_epoch"] in (1, 2) and 0 <= r["test_error_generative_best_updown"] <= 1
    run_ = load_run(out)
    from neurosim.data import load_mnist
    Xt, yt = load_mnist("test")
    assert r["test_error_generative"] == np.mean(run_.dbn.predict(Xt) != yt)        # the continued network
    assert main(["dbn", "evaluate", str(out)]) == 0
    assert "(the best held out, the continuation's start)" in capsys.readouterr().out
    assert main(SMALL[:-2] + ["--updown-continue", "2", "--out", str(tmp_path / "none")]) == 2
    assert "updown_continue=2 continues from the up-down epoch" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_the_spread_experiment_writes_a_line_per_epoch(fake_mnist, tmp_path):
    assert main(SMALL + ["--out", str(tmp_path / "run")]) == 0
    spread = load("continuation_spread", ROOT / "experiments")
    assert spread.main([str(tmp_path / "run"), "--epochs", "2", "--lr", "0.002", "--out",
                        str(tmp_path / "spread.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "spread.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [0, 1, 2] and all(e["lr"] == 0.002 and e["k"] == 10 for e in lines)
    assert all(0 <= e["test_error"] <= 1 and 0 <= e["train_error"] <= 1 and 0 <= e["dead_top_units"] <= 30
               for e in lines)
    assert "seconds" in lines[1] and "seconds" not in lines[0]


def test_top_activity_is_minus_the_free_energys_slope_in_the_top_biases():
    """dF(p, y)/dc_j = -sigmoid(c_j + p.W_j + U_yj): the mean top activity by central
    differences of ``label_free_energies`` in float64, a second way to the same number."""
    rng = np.random.default_rng(0)
    dbn = DeepBeliefNet((6, 5, 4), 3)
    dbn.add_rbm(rng.normal(size=(6, 5)), rng.normal(size=6), rng.normal(size=5))
    dbn.set_top(rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=5), rng.normal(size=3),
                rng.normal(size=4))
    for name in ("R", "r", "G", "g"):
        setattr(dbn, name, [a.astype(np.float64) for a in getattr(dbn, name)])
    for name in ("W", "U", "b_pen", "b_lab", "c"):
        setattr(dbn, name, getattr(dbn, name).astype(np.float64))
    V, y = rng.random((50, 6)), rng.integers(0, 3, 50)
    pen, h, slope = dbn.up(V)[-1], 1e-5, []
    for j in range(4):
        F = []
        for step in (h, -h):
            dbn.c[j] += step
            F.append(dbn.label_free_energies(pen)[np.arange(50), y])
            dbn.c[j] -= step
        slope.append(np.mean((F[0] - F[1]) / (2 * h)))
    assert np.allclose(dbn.top_activity(V, y, batch=7), -np.array(slope), atol=1e-8)
