"""The torch backend of the compiled kernel (neurosim/compiled/arrays.py): the bipartite
kernel's statistics and change agree with numpy's on the same states, bfloat16 products
learn what float32 ones do (exact log-likelihood), seeds repeat, models move between
backends, and bad input gets one clear message. Optional extra: skipped without torch,
failed under CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import NO_TORCH, optional
from neurosim import RBM
from neurosim.compiled import arrays, bipartite
from neurosim.errors import ParameterError

torch = optional("torch")
ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(3)


def _block(nv=7, nh=5, nl=3):
    """A random float32 block with a label group, and its torch copy."""
    W, U = (0.5 * RNG.standard_normal(s).astype(np.float32) for s in ((nv, nh), (nl, nh)))
    b, c, b_lab = (RNG.standard_normal(n).astype(np.float32) for n in (nv, nh, nl))
    block = bipartite.Block(W, b, c, U, b_lab)
    return block, bipartite.Block(*(torch.tensor(a) for a in block))


def _fixed_statistics(nv=7, nh=5, nl=3, n_pos=6, m=4):
    """Stacked statistics of fixed states: binary visibles, one-hot labels, probabilities."""
    V = (RNG.random((n_pos + m, nv)) < 0.5).astype(np.float32)
    Y = np.eye(nl, dtype=np.float32)[RNG.integers(0, nl, n_pos + m)]
    H = RNG.random((n_pos + m, nh)).astype(np.float32)
    return bipartite.Statistics(V, Y, H, n_pos)


@pytest.mark.parametrize("labels_first", [False, True])
def test_conditionals_agree_with_numpy(labels_first):
    """``P(h | v, y)`` and ``E[v | h]``, softmax labels included, on the same states: equal
    to float32 rounding."""
    block, tblock = _block()
    cd = bipartite.CD(labels_first=labels_first)
    V, Y, H, _ = _fixed_statistics()
    out = bipartite.hidden_probabilities(block, V, Y, cd, np.empty_like(H))
    tout = bipartite.hidden_probabilities(tblock, torch.tensor(V), torch.tensor(Y), cd, torch.empty(H.shape))
    np.testing.assert_allclose(tout.numpy(), out, rtol=1e-5, atol=1e-6)
    Vm, Ym = np.empty_like(V), np.empty_like(Y)
    tVm, tYm = torch.empty(V.shape), torch.empty(Y.shape)
    bipartite.visible_means(block, H, cd, Vm, Ym)
    bipartite.visible_means(tblock, torch.tensor(H), cd, tVm, tYm)
    np.testing.assert_allclose(tVm.numpy(), Vm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tYm.numpy(), Ym, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cd", [bipartite.CD(), bipartite.CD(summed_differences=True, sparsity=(0.1, 0.5))])
@pytest.mark.parametrize("c_order", [True, False])
def test_change_and_update_agree_with_numpy(cd, c_order):
    """Eq. 6 of the same statistics (weights in either memory order, labels, sparsity,
    momentum and weight cost): the changes and the updated parameters of numpy and torch
    float32 agree to float32 rounding; bfloat16 products give the same weight change to
    bfloat16 rounding (1%)."""
    block, _ = _block()
    if not c_order:
        block = block._replace(W=np.asfortranarray(block.W))
    n_pos, m = (5, 5) if cd.summed_differences else (6, 4)      # the DBN's phases are of equal size
    stats = _fixed_statistics(n_pos=n_pos, m=m)
    results = {}
    for name, dtype in (("numpy", "float32"), ("torch", "float32"), ("torch", "bfloat16")):
        be = arrays.backend(name, dtype=dtype)
        blk = bipartite.Block(*(be.asarray(a.copy(order="K")) for a in block))
        st = bipartite.Statistics(*(be.asarray(a.copy()) for a in stats[:3]), stats.n_pos)
        buf = bipartite.buffers(None, blk, n_pos, m, be)
        d, q = bipartite.change(blk, st, cd, 0.1, buf, None)
        velocity = {k: be.asarray(np.full(np.shape(v), 0.01, np.float32)) for k, v in d.items()}
        d = {k: be.to_numpy(v).copy() for k, v in d.items()}
        bipartite.apply(blk, {k: be.asarray(v.copy()) for k, v in d.items()}, 0.1, 0.5, 0.01, velocity)
        results[name, dtype] = d, be.to_numpy(q), [be.to_numpy(a) for a in blk]
    (d, q, params), (td, tq, tparams), (bd, _, _) = results.values()
    for key in d:
        np.testing.assert_allclose(td[key], d[key], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bd["W"], d["W"], rtol=0, atol=0.01 * np.abs(d["W"]).max())
    for a, ta in zip(params, tparams):
        np.testing.assert_allclose(ta, a, rtol=1e-5, atol=1e-7)
    if cd.sparsity is not None:
        np.testing.assert_allclose(tq, q, rtol=1e-6)


def _prototypes(rows: int, seed: int = 0) -> np.ndarray:
    """784-pixel binary cases: 10 random prototypes (15% ink), each pixel flipped with
    probability 0.05."""
    rng = np.random.default_rng(seed)
    protos = rng.random((10, 784)) < 0.15
    X = protos[rng.integers(0, 10, rows)] ^ (rng.random((rows, 784)) < 0.05)
    return X.astype(np.float32)


def test_bfloat16_learns_what_float32_learns():
    """A 784-16 RBM (2^16 states enumerated: the 784-20 of issue 25 at a sixteenth of the
    cost), CD-1, 5 epochs over 1,000 prototype-like digits, on torch from one seed (so
    the same draws): the exact test log-likelihood with bfloat16 products is within
    0.5 nat of float32's, and both far above the untrained machine's."""
    X, test = _prototypes(1000), _prototypes(300, seed=1)
    ll = {}
    for dtype in (np.float32, "bfloat16"):
        rbm = RBM(16, learning_rate=0.05, batch_size=20, n_iter=5, persistent=False, random_state=0,
                  backend="torch", dtype=dtype).fit(X)
        assert rbm.components_.dtype == np.float32
        ll[str(dtype)] = rbm.exact_log_likelihood(test)
    untrained = RBM(16, n_iter=0, random_state=0).fit(X).exact_log_likelihood(test)
    f32, bf16 = ll.values()
    assert abs(bf16 - f32) < 0.5, ll
    assert min(f32, bf16) > untrained + 100, (ll, untrained)


@pytest.mark.parametrize("dtype", [np.float32, "bfloat16"])
@pytest.mark.parametrize("persistent", [False, True])
def test_same_seed_same_numbers(dtype, persistent):
    """Same seed, backend, device and dtype: the same weights, bit for bit (momentum,
    sparsity and partial_fit included); another seed: others."""
    X = _prototypes(120)
    kw = dict(n_components=8, batch_size=20, n_iter=2, persistent=persistent, momentum=0.5,
              sparsity_target=0.1, backend="torch", dtype=dtype)
    a, b, c = (RBM(random_state=s, **kw).fit(X).partial_fit(X[:30]) for s in (5, 5, 6))
    assert np.array_equal(a.components_, b.components_)
    assert np.array_equal(a.hidden_activity_, b.hidden_activity_)
    assert not np.array_equal(a.components_, c.components_)


def test_torch_model_saves_float32_and_runs_on_numpy(tmp_path):
    """A bfloat16-trained model's file holds float32 weights; loaded (as saved, or onto
    numpy) it transforms and samples, and numpy continues its training."""
    X = _prototypes(100)
    rbm = RBM(6, batch_size=20, n_iter=1, backend="torch", dtype="bfloat16", random_state=0).fit(X)
    rbm.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        assert f["W"].dtype == np.float32
    loaded = RBM.load(tmp_path / "m.npz")
    assert loaded.backend == "torch" and loaded.dtype == "bfloat16"
    np.testing.assert_array_equal(loaded.transform(X), rbm.transform(X))
    assert loaded.sample(3, 5).shape == (3, 784)
    on_numpy = RBM.load(tmp_path / "m.npz", backend="numpy", dtype=np.float32).partial_fit(X[:20])
    assert on_numpy.components_.dtype == np.float32 and np.isfinite(on_numpy.components_).all()


WITHOUT_TORCH = NO_TORCH + """
import numpy as np
from neurosim import RBM
from neurosim.errors import ParameterError
X = (np.random.default_rng(0).random((40, 9)) < 0.3).astype(float)
RBM(3, n_iter=1, random_state=0).fit(X)
loaded = RBM.load(sys.argv[1])                 # trained on torch; loads and samples here
print(loaded.sample(2, 3).shape)
try:
    RBM(3, backend="torch").fit(X)
except ParameterError as e:
    print(e)
print("torch" in sys.modules)
"""


def test_without_torch(tmp_path):
    """Where ``import torch`` fails: numpy training never imports it, a torch-trained
    model loads and samples, and asking for torch names the extra to install."""
    X = (np.random.default_rng(0).random((40, 9)) < 0.3).astype(float)
    RBM(3, n_iter=1, backend="torch", random_state=0).fit(X).save(tmp_path / "t.npz")
    out = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(tmp_path / "t.npz")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "(2, 9)"
    assert out[1].startswith("backend='torch' needs PyTorch") and out[1].endswith("pip install neurosim[torch]")
    assert out[2] == "False"


@pytest.mark.parametrize("params, message", [
    (dict(backend="jax"), r"backend must be one of 'numpy', 'torch', got 'jax'"),
    (dict(dtype="bfloat16"), r"dtype='bfloat16' needs backend='torch'"),
    (dict(backend="torch", dtype="float16"), r"dtype must be None, numpy.float32, numpy.float64 or 'bfloat16'"),
    (dict(device="cuda"), r"device='cuda' needs backend='torch'"),
    (dict(backend="torch", device="tpu9"), r"device must be 'cpu', 'cuda' or another torch device, got 'tpu9'"),
])
def test_bad_input(params, message):
    with pytest.raises(ParameterError, match=message):
        RBM(3, **params).fit(np.zeros((4, 5)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu():
    with pytest.raises(ParameterError, match=r"^no CUDA device; use --device cpu$"):
        RBM(3, backend="torch", device="cuda").fit(np.zeros((4, 5)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_trains_like_the_cpu():
    """On a GPU: the same code with device="cuda"; the host arrays follow every update."""
    X = _prototypes(400)
    ll = [RBM(20, batch_size=20, n_iter=2, persistent=True, momentum=0.5, backend="torch", device=d,
              random_state=0).fit(X).score_samples(X).mean() for d in ("cpu", "cuda")]
    assert abs(ll[0] - ll[1]) < 0.05 * abs(ll[0])


@pytest.mark.filterwarnings("ignore:Estimator .* does not inherit from `sklearn.base.BaseEstimator`",
                            "ignore:Skipping check check_array_api_input")
def test_sklearn_checks_pass_on_torch():
    """scikit-learn's estimator checks: RBM(backend="torch", dtype="bfloat16") passes every
    check RBM() passes."""
    optional("sklearn")
    from sklearn.utils.estimator_checks import check_estimator

    def passed(estimator):
        return {r["check_name"] for r in check_estimator(estimator, on_fail=None) if r["status"] == "passed"}

    assert passed(RBM()) <= passed(RBM(backend="torch", dtype="bfloat16"))
