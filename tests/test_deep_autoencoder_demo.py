"""demos/deep_autoencoder.py on synthetic digit-shaped data (the demo's loader is
replaced, so no MNIST files are needed): tiny runs train, are scored and drawn; finished
runs are read through --run and --run2d; bad run directories get one line."""

import json

import numpy as np
import pytest

from helpers import load_demo

FIGURES = ("deep_autoencoder_reconstructions", "deep_autoencoder_codes2d", "deep_autoencoder_curves")
TINY = ["--limit", "200", "--test-limit", "100", "--pretrain-epochs", "2", "--backprop-epochs", "2",
        "--layers", "20,10,4", "--layers2d", "20,10,2", "--json"]


def _fake_load_mnist(split="train", limit=None, **_):
    """Pixels in [0, 1]: a class-specific bar of ink plus faint noise; labels 0-9."""
    n = limit or (300 if split == "train" else 100)
    labels = np.arange(n) % 10
    images = 0.3 * np.random.default_rng(len(split)).random((n, 28, 28))
    for k, d in enumerate(labels):
        images[k, 4 + 2 * d:6 + 2 * d, 4:24] = 1.0
    return images.reshape(n, 784).astype(np.float32), labels


@pytest.fixture
def demo(monkeypatch):
    module = load_demo("deep_autoencoder")
    monkeypatch.setattr(module, "load_mnist", _fake_load_mnist)
    return module


def test_demo_trains_scores_and_draws_then_reads_the_runs_it_made(demo, tmp_path, capsys):
    assert demo.main(TINY + ["--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["figures"] == [str(tmp_path / f"{name}.png") for name in FIGURES]
    for name in FIGURES:
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    assert out["run"]["layers"] == [20, 10, 4] and out["run2d"]["layers"] == [20, 10, 2]
    assert out["run"]["train_cases"] == 200 and out["test_cases"] == 100 and out["run"]["knn_k"] == 1
    for run in ("run", "run2d"):
        assert all(0 < out[run][k] < 784 for k in ("test_squared_error", "logistic_pca_test_squared_error",
                                                    "pca_test_squared_error"))
        assert 0 <= out[run]["knn_test_error"] <= 1 and 0 <= out[run]["pca_knn_test_error"] <= 1
    assert out["run"]["pca_knn_test_error"] < 0.5                    # 4-D PCA keeps the bars apart: chance 0.9
    saved = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    again = tmp_path / "again"
    assert demo.main(["--run", str(tmp_path / "run"), "--run2d", str(tmp_path / "run2d"), "--test-limit", "100",
                      "--out", str(again), "--json"]) == 0
    read = json.loads(capsys.readouterr().out)
    assert {k: read["run"][k] for k in out["run"]} == out["run"]      # the same run, the same numbers
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == saved and not (again / "run").exists()


def test_bad_run_directories_get_one_line(demo, tmp_path, capsys):
    r = demo.AutoencoderRecipe(layers=(8, 4), pretrain_epochs=1, backprop_epochs=1, backprop_batch=50)
    X = _fake_load_mnist(limit=100)[0]
    demo.AutoencoderTrainer(r, X, tmp_path / "done", log=lambda m: None).run()

    def stop(trainer):
        if trainer.progress.stage == 2 and trainer.progress.batch == 1:     # in backprop
            trainer._checkpoints.requested = True

    with pytest.raises(KeyboardInterrupt):
        demo.AutoencoderTrainer(r, X, tmp_path / "half", log=lambda m: None, on_batch=stop).run()
    capsys.readouterr()
    for argv, message in ((["--run", str(tmp_path / "half")], "is not finished (it stands at backprop, epoch 0 of 1)"),
                          (["--run2d", str(tmp_path / "done")], "its code layer has 4 units (784-8-4), not 2"),
                          (["--run", str(tmp_path / "none")], "no checkpoint.npz"),
                          (["--layers2d", "8,3"], "--layers2d 8,3: the code layer (the last) must have 2 units")):
        with pytest.raises(SystemExit) as exit:
            demo.main(argv + ["--out", str(tmp_path / "figures")])
        err = capsys.readouterr().err
        assert exit.value.code == 2 and message in err.splitlines()[-1], err       # after argparse's usage
    assert not (tmp_path / "figures").exists()
