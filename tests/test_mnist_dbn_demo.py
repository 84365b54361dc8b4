"""demos/mnist_dbn.py on synthetic digit-shaped data (the demo's loader is replaced, so
no MNIST files are needed): a small run trains, evaluates and draws every figure."""

import json

import numpy as np

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
