"""One RBM file format (issue 23, section 3): ``RBM.save``/``RBM.load`` and the CLI's
``rbm train``/``rbm evaluate`` write and read the same ``.npz`` (arrays and every
hyper-parameter); ``.toml`` is the model-file (graph) export, weights and biases only; the
older CLI ``.npz`` still loads; bad files and suffixes are one-line errors naming the file."""

import json
import zipfile

import numpy as np
import pytest

from neurosim import RBM, load
from neurosim.errors import ModelFileError
from neurosim.outputs import OutputError

PARAMS = dict(n_components=3, learning_rate=0.05, batch_size=4, n_iter=3, random_state=5, k=2,
              persistent=True, momentum=0.5, weight_decay=1e-3, dtype=np.float64, sparsity_target=0.2,
              sparsity_cost=0.3)


def _fitted(**params):
    X = (np.random.default_rng(0).random((20, 5)) < 0.4).astype(np.float64)
    return RBM(**{**PARAMS, **params}).fit(X), X


def test_npz_round_trip_keeps_every_parameter_and_the_fitted_state(tmp_path):
    rbm, X = _fitted()
    path = tmp_path / "m.npz"
    rbm.save(path)
    assert zipfile.is_zipfile(path)                        # an .npz is an .npz, not TOML text
    back = RBM.load(path)
    assert back.get_params() == rbm.get_params()
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_",
                 "hidden_activity_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rbm, name))
        assert getattr(back, name).dtype == getattr(rbm, name).dtype
    assert (back.n_iter_, back.n_updates_, back.n_features_in_) == (3, 15, 5)
    np.testing.assert_array_equal(back.transform(X), rbm.transform(X))
    back.partial_fit(X[:4])                                # trains on from the file
    assert back.n_updates_ == 16 and np.isfinite(back.components_).all()
    assert RBM.load(path, n_iter=7, dtype=np.float32).get_params()["n_iter"] == 7   # overrides


def test_params_that_json_cannot_hold(tmp_path):
    rbm, _ = _fitted(random_state=np.random.default_rng(1), learning_rate=np.float32(0.05), dtype=None)
    rbm.save(tmp_path / "g.npz")
    back = RBM.load(tmp_path / "g.npz")
    assert back.random_state is None and back.dtype is None   # a generator is not kept
    assert back.learning_rate == pytest.approx(0.05) and back.components_.dtype == np.float64


def test_toml_is_the_model_file_export(tmp_path):
    rbm, X = _fitted()
    path = tmp_path / "m.toml"
    rbm.save(path)
    assert load(path).units == rbm.to_network().units      # a neurosim model file
    back = RBM.load(path, dtype=np.float64, persistent=True)
    np.testing.assert_array_equal(back.components_, rbm.components_)
    assert back.momentum == 0.0                            # hyper-parameters are not in a model file
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*part"))


def test_the_cli_and_the_api_read_each_others_files(tmp_path):
    from neurosim.cli_mnist import _load_rbm

    rbm, _ = _fitted()
    rbm.save(tmp_path / "api.npz", info={"seed": 4})
    W, b, c, meta = _load_rbm(tmp_path / "api.npz")
    np.testing.assert_array_equal(W, rbm.components_.T)
    assert meta == {"seed": 4} == RBM.load_info(tmp_path / "api.npz")


def test_an_older_cli_file_still_loads(tmp_path):
    """The .npz of `neurosim rbm train` before one format: W (visible x hidden), b, c and
    the run's flags as meta."""
    rng = np.random.default_rng(2)
    W, b, c = (rng.normal(size=s).astype(np.float32) for s in ((5, 3), (5,), (3,)))
    meta = {"hidden": 3, "epochs": 8, "cd": 2, "persistent": True, "lr": 0.05, "anneal": 0, "batch": 100,
            "weight_decay": 0.0002, "seed": 7, "train_cases": 60000}
    path = tmp_path / "old.npz"
    np.savez(path, W=W, b=b, c=c, meta=np.array(json.dumps(meta)))
    rbm = RBM.load(path)
    np.testing.assert_array_equal(rbm.components_, W.T)
    np.testing.assert_array_equal(rbm.intercept_visible_, b)
    assert (rbm.n_components, rbm.learning_rate, rbm.batch_size, rbm.k, rbm.persistent, rbm.weight_decay,
            rbm.n_iter, rbm.momentum) == (3, 0.05, 100, 2, True, 0.0002, 8, 0.9)
    assert rbm.components_.dtype == np.float32 and RBM.load_info(path)["seed"] == 7
    np.savez(path, W=W, b=b, c=c, meta=np.array(json.dumps({**meta, "epochs": 5})))
    assert RBM.load(path).momentum == 0.5                   # rbm.m's schedule never reached its 0.9


def _truncated(path):
    path.write_bytes(path.read_bytes()[:300])


def _member_cut(path):
    data = {i.filename: zipfile.ZipFile(path).read(i.filename) for i in zipfile.ZipFile(path).infolist()}
    with zipfile.ZipFile(path, "w") as z:
        for name, body in data.items():
            z.writestr(name, body[:20] if name == "W.npy" else body)


def _non_finite(path):
    z = dict(np.load(path))
    z["c"][1] = np.nan
    np.savez(path, **z)


def _not_an_rbm(path):
    np.savez(path, x=np.zeros(2))


@pytest.mark.parametrize("spoil, message", [
    (_truncated, "not a readable RBM file .*BadZipFile"),
    (_member_cut, "not a readable RBM file .*ValueError"),
    (lambda p: p.write_text("not an npz"), "not a readable RBM file"),
    (lambda p: np.save(p.with_suffix(".npz.npy"), np.zeros(3)) or p.with_suffix(".npz.npy").replace(p),
     "a single .npy array"),
    (_non_finite, r"c\[1\] = nan: a parameter is not finite"),
    (_not_an_rbm, "not an RBM file .*needs the arrays W, b and c"),
    (lambda p: p.unlink(), "no such file"),
])
def test_a_bad_file_is_one_error_naming_it(tmp_path, spoil, message):
    path = tmp_path / "m.npz"
    _fitted()[0].save(path)
    spoil(path)
    with pytest.raises(ModelFileError, match=message) as info:
        RBM.load(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_suffixes(tmp_path):
    rbm, _ = _fitted()
    with pytest.raises(OutputError, match=r"x\.txt: write a \.npz or \.toml file"):
        rbm.save(tmp_path / "x.txt")
    with pytest.raises(OutputError, match="no such directory"):
        rbm.save(tmp_path / "missing" / "x.npz")
    (tmp_path / "x.pkl").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"x\.pkl: an RBM file is \.npz .* or \.toml .*, not '\.pkl'"):
        RBM.load(tmp_path / "x.pkl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pkl"]
