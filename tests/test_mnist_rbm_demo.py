"""demos/mnist_rbm.py: a short run on synthetic digit-shaped data (the demo's loader is
replaced, so no MNIST files are needed): figures written, summary sane."""

import json
from pathlib import Path

import numpy as np

from helpers import load_demo


def _fake_load_mnist(split="train", cache_dir=None, limit=None, dtype=np.float32, binarize=False,
                     rng=None, *, download=True):
    """Binary 784-pixel images: a class-dependent bar of ink plus sparse noise; labels 0-9."""
    n = limit or 60
    labels = np.arange(n) % 10
    images = (np.random.default_rng(len(split)).random((n, 28, 28)) < 0.05)
    for k, d in enumerate(labels):
        images[k, 4 + 2 * d:6 + 2 * d, 4:24] = True
    assert binarize and isinstance(rng, np.random.Generator)
    return images.reshape(n, 784).astype(dtype), labels


def test_demo_runs_on_synthetic_digits(tmp_path, capsys, monkeypatch):
    demo = load_demo("mnist_rbm")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    code = demo.main(["--hidden", "12", "--epochs", "6", "--limit", "400", "--test-limit", "50",
                      "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["training_digits"] == 400 and out["test_digits"] == 50
    assert [h["momentum"] for h in out["history"]] == [0.5] * 5 + [0.9]
    errors = [h["reconstruction_error"] for h in out["history"]]
    assert errors[-1] < errors[0]                        # it learns something
    assert 0 < out["test_reconstruction_error"] < 784 and out["samples_per_s"] > 0
    assert out["figures"] == [str(tmp_path / "filters.png"), str(tmp_path / "reconstructions.png")]
    for figure in out["figures"]:
        assert Path(figure).stat().st_size > 5_000


def test_tiles_and_filters_are_normalised():
    demo = load_demo("mnist_rbm")
    grid = demo.tiles(np.zeros((3, 784)), (28, 28), cols=2, pad=1, fill=1.0)    # neurosim.viz.tiles
    assert grid.shape == (2 * 29 - 1, 2 * 29 - 1) and grid[28, 0] == 1.0 and grid[0, 0] == 0.0
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    W = np.random.default_rng(0).normal(0, 5, (4, 784))
    assert demo.plot_filters(ax, W, n=3) is ax
    shown = ax.images[0].get_array()
    assert shown.min() == 0.0 and shown.max() == 1.0 and shown.shape == (28, 3 * 29 - 1)
    plt.close(fig)
