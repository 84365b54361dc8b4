"""demos/mnist_dbn.py on synthetic digit-shaped data (the demo's loader is replaced, so
no MNIST files are needed): a small run trains, evaluates and draws every figure."""

import json
import os
import signal

import numpy as np
import pytest

from helpers import load_demo


def _fake_load_mnist(split="train", limit=None, **_):
    n = limit or 100
    labels = np.arange(n) % 10
    images = np.random.default_rng(len(split)).random((n, 28, 28)) < 0.05
    for k, d in enumerate(labels):
        images[k, 4 + 2 * d:6 + 2 * d, 4:24] = True
    return images.reshape(n, 784).astype(np.float32), labels


def test_demo_runs_on_synthetic_digits(tmp_path, capsys, monkeypatch):
    demo = load_demo("mnist_dbn")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    code = demo.main(["--dir", str(tmp_path / "run"), "--out", str(tmp_path), "--limit", "300",
                      "--test-limit", "100", "--hidden", "20,20,40", "--gap", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and set(out["seconds"]) == {"rbm1", "rbm2", "top", "updown", "backprop"}
    assert 0 <= out["test_error_generative"] <= 1 and 0 <= out["test_error_backprop"] <= 1
    for name in ("filters", "samples", "fantasy", "misclassified", "curves"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    # a finished run is read, not trained again
    assert demo.main(["--dir", str(tmp_path / "run"), "--out", str(tmp_path), "--test-limit", "100",
                      "--gap", "5", "--json"]) == 0


def test_no_train_draws_a_run_as_it_stands(tmp_path, capsys, monkeypatch):
    """--no-train draws an unfinished run (here stopped in backprop) and trains nothing."""
    demo = load_demo("mnist_dbn")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    args = ["--dir", str(tmp_path / "run"), "--out", str(tmp_path), "--test-limit", "100", "--gap", "5",
            "--json", "--no-train"]
    with pytest.raises(SystemExit):                  # nothing to draw yet
        demo.main(args)
    assert "holds no run" in capsys.readouterr().err
    recipe = demo.PRESETS["hinton2006"]
    small = type(recipe)(**{**recipe.__dict__, **demo.QUICK, "hidden": (20, 20, 40), "backprop_batch": 100})

    def interrupt(tr):
        if tr.stages[tr.progress.stage] == "backprop" and tr.progress.batch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        demo.Trainer(small, *_fake_load_mnist(limit=300), tmp_path / "run", log=lambda m: None,
                     on_batch=interrupt).run()
    saved = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    assert demo.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reached"] == "backprop, epoch 0 of 10" and out["test_error_backprop"] is None
    assert 0 <= out["test_error_generative"] <= 1 and (tmp_path / "samples.png").exists()
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == saved     # nothing trained
