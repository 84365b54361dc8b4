"""`neurosim rbm train|evaluate` on hostile input (issue 23): a diverging run, bad rates and
seeds, an unwritable --out (checked before training) and bad model files each exit 2 with one
line naming the culprit, and write nothing. Synthetic MNIST, as tests/test_cli_mnist.py."""

import json

import numpy as np
import pytest

from neurosim import RBM
from neurosim.cli import main
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)

SMALL = ["rbm", "train", "--hidden", "6", "--epochs", "2"]


def _run(argv):
    try:
        return main(argv)
    except SystemExit as stop:                             # argparse's own exit
        return stop.code


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def outdir(tmp_path):
    """A folder of its own for outputs (the fake MNIST lives beside it)."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def test_a_diverging_run_exits_2_naming_the_epoch_and_parameter_and_writes_nothing(fake_mnist, outdir,
                                                                                 capsys):
    out = outdir / "rbm.npz"
    out.write_bytes(b"an earlier model")
    assert main(SMALL + ["--lr", "1e30", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    err = lines[-1]
    assert not any("warning" in line for line in lines)          # numpy's overflow warnings: the error names it
    assert err.startswith("neurosim: error: --lr 1e+30: epoch 1 of 2: ")
    assert "components_[" in err and "training diverged" in err and f"{out} not written" in err
    assert out.read_bytes() == b"an earlier model" and _files(outdir) == ["rbm.npz"]


@pytest.mark.parametrize("flag, value", [("--lr", "0"), ("--lr", "-1"), ("--lr", "nan"), ("--lr", "inf"),
                                         ("--weight-decay", "-1"), ("--weight-decay", "nan"),
                                         ("--weight-decay", "inf"), ("--seed", "-1")])
def test_bad_rates_and_seeds_are_refused_by_name(fake_mnist, outdir, capsys, flag, value):
    assert _run(SMALL + [flag, value, "--out", str(outdir / "rbm.npz")]) == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err and _files(outdir) == []


def test_evaluate_refuses_a_negative_seed(tmp_path, capsys):
    assert _run(["rbm", "evaluate", str(tmp_path / "rbm.npz"), "--seed", "-1"]) == 2
    assert "argument --seed: must be >= 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("target, message", [("missing/rbm.npz", "no such directory"),
                                             ("adir.npz", "is a directory"),
                                             ("rbm.txt", r"write a .npz or .toml file"),
                                             ("ro/rbm.npz", "not writable")])
def test_an_unwritable_out_is_refused_before_training(fake_mnist, outdir, capsys, monkeypatch, target,
                                                       message):
    (outdir / "adir.npz").mkdir()
    (outdir / "ro").mkdir()
    if target.startswith("ro/"):                           # a read-only directory, even for root
        import neurosim.outputs

        real = neurosim.outputs.os.access
        monkeypatch.setattr(neurosim.outputs.os, "access",
                            lambda p, mode: False if str(p).endswith("ro") else real(p, mode))
    before = _files(outdir)
    assert main(SMALL + ["--out", str(outdir / target)]) == 2
    err = capsys.readouterr().err
    assert f"--out {outdir / target}: " in err and message in err
    assert "rbm: epoch" not in err and "mnist:" not in err     # refused before data or training
    assert _files(outdir) == before and _files(outdir / "ro") == []


def _truncated(path):
    path.write_bytes(path.read_bytes()[:600])


def _corrupt(path):
    data = bytearray(path.read_bytes())
    data[-60:] = bytes(60)                                 # the zip's central directory
    path.write_bytes(bytes(data))


def _nan(path):
    z = dict(np.load(path))
    z["W"][2, 1] = np.nan
    np.savez(path, **z)


@pytest.mark.parametrize("spoil", [_truncated, _corrupt, _nan])
def test_evaluate_on_a_bad_npz_is_one_line_naming_it(fake_mnist, tmp_path, capsys, spoil):
    out = tmp_path / "rbm.npz"
    assert main(SMALL + ["--out", str(out)]) == 0
    spoil(out)
    capsys.readouterr()
    assert main(["rbm", "evaluate", str(out), "--exact", "--floor-steps", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neurosim: error: {out}: ") and len(err.strip().splitlines()) == 1


def test_a_cli_model_loads_in_the_api_with_its_hyper_parameters(fake_mnist, tmp_path, capsys):
    out = tmp_path / "rbm.npz"
    argv = SMALL + ["--cd", "2", "--persistent", "--lr", "0.02", "--batch", "50", "--anneal", "1",
                    "--seed", "3", "--out", str(out), "--json"]
    assert main(argv) == 0
    rbm = RBM.load(out)
    assert (rbm.n_components, rbm.k, rbm.persistent, rbm.learning_rate, rbm.batch_size, rbm.n_iter,
            rbm.weight_decay, rbm.momentum) == (6, 2, True, 0.02, 50, 2, 0.0002, 0.5)
    assert rbm.h_samples_.shape == (50, 6) and rbm.n_updates_ == 2 * 4
    assert RBM.load_info(out)["seed"] == 3 == json.loads(capsys.readouterr().out)["seed"]
    api = tmp_path / "api.npz"
    rbm.save(api)                                          # and an API file evaluates in the CLI
    assert main(["rbm", "evaluate", str(api), "--exact", "--floor-steps", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hidden"] == 6
