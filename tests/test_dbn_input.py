"""`neurosim dbn train|evaluate` on hostile input: a clear refusal (exit 2, one line
naming the flag or file), never a traceback, a half-written file or a silent rewrite.
Synthetic MNIST-shaped data (test_cli_mnist's fixture), never the network."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.errors import NeurosimError
from neurosim.machines import dbn_train, runs
from neurosim.machines.dbn_train import Recipe, Trainer, load_run, read_npz
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)
from test_dbn import digits, quiet, recipe

SMALL = ["dbn", "train", "--hidden", "20,20,30", "--pretrain-epochs", "1", "--updown-epochs", "1",
         "--backprop-epochs", "1"]


def run(argv, capsys) -> tuple[int, str]:
    """Exit code and stderr of ``neurosim ARGV`` (argparse's own exits included)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def one_line(err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if not line.startswith("mnist: ")]
    return len(lines) == 1 and "Traceback" not in err


# -- two runs into one directory --------------------------------------------------------------
@pytest.fixture
def live_pid():
    """The id of a live process that is not this one."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


@pytest.mark.parametrize("lock", ["live", "", "not a pid"])
def test_a_run_refused_by_the_lock_leaves_the_directory_alone(fake_mnist, tmp_path, capsys, live_pid, lock):
    """The other run holds the LOCK (or has just created it, its id not yet written):
    command.json stays the other run's, and nothing else is written."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "LOCK").write_text(str(live_pid) if lock == "live" else lock)
    (out / "command.json").write_text('{"argv": "the other run"}')
    code, err = run(SMALL + ["--out", str(out)], capsys)
    assert code == 2 and one_line(err) and f"{out / 'LOCK'}" in err
    assert (out / "command.json").read_text() == '{"argv": "the other run"}'
    assert sorted(p.name for p in out.iterdir()) == ["LOCK", "command.json"]


def test_a_run_that_began_after_the_check_is_not_overwritten(fake_mnist, tmp_path, capsys, monkeypatch):
    """Two runs started at the same instant: the winner takes the lock, trains and lets it
    go between the loser's first look at --out and the loser's lock. Under the lock the
    loser sees the winner's checkpoint and refuses, writing nothing."""
    assert main(SMALL + ["--out", str(tmp_path / "winner")]) == 0
    out = tmp_path / "run"
    take = runs.Lock.__enter__

    def winner_first(self):
        shutil.copytree(tmp_path / "winner", out, dirs_exist_ok=True)
        return take(self)

    monkeypatch.setattr(runs.Lock, "__enter__", winner_first)
    code, err = run(SMALL + ["--seed", "1", "--out", str(out)], capsys)
    assert code == 2 and one_line(err) and "holds a checkpoint" in err
    for name in ("command.json", "checkpoint.npz", "progress.json"):
        assert (out / name).read_bytes() == (tmp_path / "winner" / name).read_bytes()
    assert not (out / "LOCK").exists()


# -- numbers a flag cannot mean ---------------------------------------------------------------
@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--checkpoint-minutes", "-1"),
                                         ("--checkpoint-minutes", "nan"), ("--checkpoint-minutes", "inf"),
                                         ("--checkpoint-minutes", "-inf")])
def test_a_negative_seed_or_a_nonsense_checkpoint_interval_is_refused(fake_mnist, tmp_path, capsys, flag, value):
    code, err = run(SMALL + [f"{flag}={value}", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and f"argument {flag}" in err and value in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_checkpoint_minutes_zero_checkpoints_after_every_minibatch(fake_mnist, tmp_path, capsys, monkeypatch):
    """200 cases: 2 minibatches of 100 per greedy or up-down epoch, 1 of backprop."""
    saves = []
    write = dbn_train.write_checkpoint
    monkeypatch.setattr(dbn_train, "write_checkpoint", lambda *a: saves.append(1) or write(*a))
    assert main(SMALL + ["--checkpoint-minutes", "0", "--out", str(tmp_path / "run")]) == 0
    per_stage = [2 + 1 + 1] * 4 + [1 + 1 + 1]            # every minibatch, the epoch, the stage's end
    assert len(saves) == 1 + sum(per_stage)


# -- --out ----------------------------------------------------------------------------------------
def test_an_out_below_a_file_is_refused_before_training(fake_mnist, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = run(SMALL + ["--out", str(tmp_path / "file" / "run")], capsys)
    assert code == 2 and one_line(err) and f"--out {tmp_path / 'file' / 'run'}" in err and "is a file" in err
    assert "rbm1: epoch" not in err


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys (read-only even for root)")
def test_an_out_in_a_read_only_place_is_refused_before_training(fake_mnist, capsys):
    code, err = run(SMALL + ["--out", "/sys/neurosim-test-run"], capsys)
    assert code == 2 and one_line(err) and "/sys" in err and "rbm1: epoch" not in err
    assert not Path("/sys/neurosim-test-run").exists()


def test_an_out_in_a_read_only_directory_is_refused_before_training(fake_mnist, tmp_path, capsys, monkeypatch):
    # os.access, not chmod: CI runs as root, who may write anywhere
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro)
    code, err = run(SMALL + ["--out", str(ro / "run")], capsys)
    assert code == 2 and one_line(err) and "not writable" in err and "rbm1: epoch" not in err


def test_a_full_disk_while_checkpointing_leaves_the_last_checkpoint_and_no_temporary_file(
        fake_mnist, tmp_path, capsys, monkeypatch):
    savez, calls = np.savez, []

    def full_on_the_second(fh, **arrays):
        calls.append(1)
        if len(calls) == 2:
            fh.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        savez(fh, **arrays)

    monkeypatch.setattr(np, "savez", full_on_the_second)
    out = tmp_path / "run"
    code, err = run(SMALL + ["--out", str(out)], capsys)
    monkeypatch.undo()
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err and str(out / "checkpoint.npz") in last and "No space left" in last
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "command.json", "progress.json"]
    assert load_run(out).progress.stage == 0                     # the first checkpoint, whole
    json.loads((out / "command.json").read_text())


# -- corrupt checkpoints --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished run of ``SMALL`` on 200 random MNIST-shaped cases."""
    rng = np.random.default_rng(0)
    X, y = (rng.random((200, 784)) < 0.1).astype(np.float32), np.arange(200) % 10
    r = Recipe(hidden=(20, 20, 30), pretrain_epochs=1, updown_epochs=1, backprop_epochs=1)
    directory = tmp_path_factory.mktemp("finished")
    Trainer(r, X, y, directory, log=quiet).run()
    return directory


def rewrite(path: Path, change) -> None:
    """``path`` written again with ``change(arrays, meta)`` applied."""
    arrays = read_npz(path, "checkpoint")
    meta = json.loads(str(arrays.pop("meta")))
    meta = change(arrays, meta)
    np.savez(path, **arrays, meta=np.array(meta if isinstance(meta, str) else json.dumps(meta)))


def corrupt(path: Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == "first half":
        path.write_bytes(data[:len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif kind == "bytes flipped":                                  # the zip's index intact, an array's CRC not
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    elif kind == "meta not JSON":
        rewrite(path, lambda arrays, meta: '{"recipe": ')
    elif kind == "meta without progress":
        rewrite(path, lambda arrays, meta: {k: v for k, v in meta.items() if k != "progress"})
    elif kind == "meta with a bad recipe":
        rewrite(path, lambda arrays, meta: {**meta, "recipe": {**meta["recipe"], "hidden": [20]}})
    elif kind == "an array of the wrong shape":
        rewrite(path, lambda arrays, meta: arrays.update({"dbn.W": arrays["dbn.W"].T}) or meta)
    elif kind == "a missing array":
        rewrite(path, lambda arrays, meta: arrays.pop("dbn.sizes") is None or meta)
    elif kind == "an object array":
        rewrite(path, lambda arrays, meta: arrays.update({"dbn.c": np.array([{}], dtype=object)}) or meta)


KINDS = ["first half", "garbage", "bytes flipped", "meta not JSON", "meta without progress",
         "meta with a bad recipe", "an array of the wrong shape", "a missing array", "an object array"]


@pytest.mark.parametrize("command", ["evaluate", "train --from", "train --resume"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_corrupt_checkpoint_is_named_in_one_line(fake_mnist, finished_run, tmp_path, capsys, command, kind):
    source = tmp_path / "source"
    shutil.copytree(finished_run, source)
    path = source / "checkpoint.npz"
    corrupt(path, kind)
    before = path.read_bytes()
    argv = {"evaluate": ["dbn", "evaluate", str(source)],
            "train --from": SMALL[:-1] + ["2", "--from", str(source), "--out", str(tmp_path / "fork")],
            "train --resume": SMALL + ["--resume", "--out", str(source)]}[command]
    code, err = run(argv, capsys)
    assert code == 2 and one_line(err) and str(path) in err, err
    assert path.read_bytes() == before and not (tmp_path / "fork").exists() and not (source / "LOCK").exists()


def test_the_library_names_a_corrupt_checkpoint_too(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "run")
    corrupt(tmp_path / "run" / "checkpoint.npz", "first half")
    with pytest.raises(NeurosimError, match="checkpoint.npz: not a readable checkpoint .* truncated or corrupt"):
        load_run(tmp_path / "run")


# -- --resume with other settings -----------------------------------------------------------------
def test_resume_names_the_settings_that_differ_and_writes_nothing(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    argv = ["dbn", "train", "--updown-epochs", "5", "--limit", "100", "--resume", "--out", str(out)]
    code, err = run(argv, capsys)
    assert code == 2 and one_line(err)
    assert (f"--resume: {out} was started with --updown-epochs 1 --limit 200; this command says "
            f"--updown-epochs 5 --limit 100 (drop the flags, or use --from {out} to fork)") in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_without_flags_continues_with_the_runs_own_settings(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMALL + ["--updown-cd", "0:2,1:3", "--out", str(out)]) == 0
    code, err = run(["dbn", "train", "--resume", "--out", str(out)], capsys)
    assert code == 0 and f"resuming {out} at stage done" in err
    code, err = run(["dbn", "train", "--resume", "--updown-cd", "0:2,1:3", "--hidden", "20,20,30",
                     "--out", str(out)], capsys)
    assert code == 0


def test_the_trainer_names_the_setting_a_resume_changes(tmp_path):
    X, y = digits(100, 5)
    Trainer(recipe(pretrain_epochs=1, updown_epochs=0, backprop_epochs=0), X, y, tmp_path, log=quiet).run()
    with pytest.raises(NeurosimError, match="pretrain_epochs=1 where this one has 2"):
        Trainer(recipe(pretrain_epochs=2, updown_epochs=0, backprop_epochs=0), X, y, tmp_path, log=quiet).run()


# -- other nonsense ---------------------------------------------------------------------------------
def test_layers_too_large_for_memory_are_named(fake_mnist, tmp_path, capsys):
    code, err = run(["dbn", "train", "--hidden", f"20,20,{10 ** 15}", "--pretrain-epochs", "1",
                     "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and f"--hidden 20,20,{10 ** 15}: not enough memory" in err.strip().splitlines()[-1]
    assert "Traceback" not in err and not (tmp_path / "run" / "LOCK").exists()


def test_evaluating_a_dbn_of_another_shape_on_mnist_is_refused(fake_mnist, tmp_path, capsys):
    X, y = digits(100, 5)
    Trainer(recipe(pretrain_epochs=1, updown_epochs=0, backprop_epochs=0), X, y, tmp_path, log=quiet).run()
    code, err = run(["dbn", "evaluate", str(tmp_path)], capsys)
    assert code == 2 and one_line(err) and "36 visible units; MNIST needs 784" in err


def test_a_dbn_state_of_the_wrong_shape_is_named():
    from neurosim.machines.dbn import DeepBeliefNet

    state = DeepBeliefNet((4, 3, 2), 2).state_dict()
    state.update(R0=np.zeros((3, 4)))
    with pytest.raises(NeurosimError, match=r"R0 has shape \(3, 4\); layers \(4, 3, 2\) need \(4, 3\)"):
        DeepBeliefNet.from_state_dict(state)


def test_an_updown_cd_entry_after_the_last_epoch_is_not_silently_dropped(fake_mnist, tmp_path, capsys):
    """The paper's 0:3,100:6,200:10 with the preset's 200 epochs never reaches CD-10."""
    code, err = run(SMALL + ["--updown-cd", "0:2,1:3,4:5", "--out", str(tmp_path / "run")], capsys)
    assert code == 0
    assert "warning: --updown-cd 1:3,4:5: up-down runs epochs 0 to 0 only" in err
    two = [("2" if SMALL[i - 1] == "--updown-epochs" else a) for i, a in enumerate(SMALL)]
    code, err = run(two + ["--updown-cd", "0:2,1:3", "--out", str(tmp_path / "ok")], capsys)
    assert code == 0 and "warning" not in err
