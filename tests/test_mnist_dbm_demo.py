"""demos/mnist_dbm.py on synthetic digit-shaped data (the loaders of the demo and of the
CLI are replaced, so no MNIST files are needed): a tiny run trains, is scored and drawn;
the demo scores a run as `neurosim dbm evaluate --json --curves` does, and draws a run
from that JSON; bad input gets one line."""

import contextlib
import io
import json

import numpy as np
import pytest

import neurosim.data
from helpers import load_demo
from neurosim.cli import main as cli

FIGURES = ("dbm_filters", "dbm_samples", "dbm_curves")
TINY = ["--hidden", "20,10", "--limit", "200", "--pretrain-epochs", "2", "--epochs", "2", "--snapshot-every", "1",
        "--finetune-epochs", "7", "--test-limit", "50", "--ais-runs", "10", "--ais-betas", "50", "--reverse-sweeps", "20", "--sweeps", "5",
        "--json"]


def _fake_load_mnist(split="train", cache_dir=None, limit=None, binarize=False, rng=None, **_):
    """Pixels in [0, 1]: a class-specific bar of ink plus faint noise (binarised by ``rng``
    if asked); labels 0-9."""
    n = limit or (300 if split == "train" else 100)
    labels = np.arange(n) % 10
    images = 0.3 * np.random.default_rng(len(split)).random((n, 28, 28))
    for k, d in enumerate(labels):
        images[k, 4 + 2 * d:6 + 2 * d, 4:24] = 1.0
    images = images.reshape(n, 784).astype(np.float32)
    return ((rng.random(images.shape) < images).astype(np.float32) if binarize else images), labels


@pytest.fixture(scope="module")
def demo():
    """The demo module, every MNIST loader (the demo's, the CLI's, the binarising one's) fake."""
    module = load_demo("mnist_dbm")
    with pytest.MonkeyPatch.context() as mp:
        for target in (module, neurosim.data, neurosim.data.mnist):
            mp.setattr(target, "load_mnist", _fake_load_mnist)
        yield module


@pytest.fixture(scope="module")
def trained(demo, tmp_path_factory):
    """The tiny run's directory and the demo's JSON summary of it."""
    out = tmp_path_factory.mktemp("mnist_dbm")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert demo.main(TINY + ["--out", str(out)]) == 0
    return out, json.loads(printed.getvalue())


def test_demo_trains_scores_and_draws_then_draws_the_clis_evaluation(demo, trained, tmp_path, capsys):
    base, out = trained
    assert out["figures"] == [str(base / f"{name}.png") for name in FIGURES]
    for name in FIGURES:
        assert (base / f"{name}.png").stat().st_size > 5_000
    assert [c["epoch"] for c in out["curves"]] == [0, 1, 2] and 0 <= out["test_error"] <= 1
    assert all(-784 * np.log(2) < c["logprob_bound_nats"] < 0 for c in out["curves"])

    run = str(base / "run")
    assert cli(["dbm", "evaluate", run, "--json", "--curves", "--limit", "50", "--runs", "10", "--betas", "50",
                "--curve-betas", "50", "--reverse-sweeps", "20"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["curve_betas"] == 50 and evaluation["curve_cases"] == 50
    for key in ("test_logprob_bound_nats", "test_logprob_bound_lower_nats", "logZ_ais", "logZ_ais_std",
                "test_error", "curves"):
        assert out[key] == evaluation[key], key              # scored as the CLI scores it: same draws
    (tmp_path / "evaluation.json").write_text(json.dumps({**evaluation, "test_logprob_bound_nats": -1.5}))
    saved = (base / "run" / "dbm.npz").read_bytes()
    drawn = tmp_path / "drawn"
    assert demo.main(["--run", run, "--evaluation", str(tmp_path / "evaluation.json"), "--sweeps", "0",
                      "--out", str(drawn), "--json"]) == 0
    read = json.loads(capsys.readouterr().out)
    assert read["test_logprob_bound_nats"] == -1.5 and read["curves"] == evaluation["curves"]    # read, not scored
    assert (base / "run" / "dbm.npz").read_bytes() == saved and not (drawn / "run").exists()
    assert sorted(p.name for p in drawn.iterdir()) == sorted(f"{name}.png" for name in FIGURES)


def test_the_samples_are_the_chains_visible_probabilities_given_h1(demo, trained):
    dbm = demo.DeepBoltzmannMachine.load(trained[0] / "run" / "dbm.npz")
    W, b = (x.astype(np.float64) for x in (dbm.weights_[0], dbm.biases_[0]))
    h1 = dbm.chains_[:, 784:804].astype(np.float64)
    expected = 1 / (1 + np.exp(-(h1 @ W.T + b)))
    assert dbm.chains_.shape == (100, 784 + 20 + 10)
    np.testing.assert_allclose(demo.visible_probabilities(dbm, dbm.chains_), expected, atol=1e-6)


def test_bad_input_gets_one_line(demo, trained, tmp_path, capsys):
    run, other = trained[0] / "run", tmp_path / "other.json"
    other.write_text(json.dumps({"curves": [{"epoch": 0}, {"epoch": 10}]}))
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "recipe.json").write_text((run / "recipe.json").read_text())
    for argv, message in ((["--run", str(tmp_path / "half")], "stage 'pretrain' is not finished"),
                          (["--run", str(tmp_path / "none")], "not a DBM run (no recipe.json"),
                          (["--evaluation", str(other)], "--evaluation: give the run it scores with --run"),
                          (["--run", str(run), "--evaluation", str(other)],
                           "its curve is of epochs [0, 10], the snapshots of"),
                          (["--run", str(run), "--evaluation", str(tmp_path / "bad.json")], "cannot read it as JSON"),
                          (["--run", str(run), "--evaluation", str(run / "recipe.json")], 'no "curves"'),
                          (["--ais-runs", "0"], "--ais-runs: must be a positive integer, got 0"),
                          (["--sweeps", "-1"], "--sweeps: must be >= 0, got -1")):
        with pytest.raises(SystemExit) as exit:
            demo.main(argv + ["--out", str(tmp_path / "figures")])
        err = capsys.readouterr().err
        assert exit.value.code == 2 and message in err.splitlines()[-1], err
    assert not (tmp_path / "figures").exists()
