"""The torch backend of the compiled kernel (neurosim/compiled/arrays.py): the bipartite
kernel's statistics and change agree with numpy's on the same states, bfloat16 products
learn what float32 ones do (exact log-likelihood), seeds repeat, models move between
backends, and bad input gets one clear message; `rbm train` and `dbn train` (its greedy
stages and up-down) with `--backend torch --dtype bfloat16`; up-down's step against numpy's. Optional extra: skipped without torch,
failed under CI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import NO_TORCH, optional
from neurosim import RBM
from neurosim.cli import main
from neurosim.compiled import arrays, bipartite
from neurosim.errors import ParameterError
from neurosim.machines.dbn_train import Recipe, Trainer, train_rbm_layer
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)

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


def test_one_hot_label_draws_agree_with_numpy():
    """``bipartite.one_hot`` on tensors: the unit numpy's draw turns on, for the same
    probabilities and uniforms (the cumulative sum inverted at ``u`` in both libraries)."""
    p = RNG.random((50, 4)).astype(np.float32)
    p /= p.sum(axis=1, keepdims=True)
    u = RNG.random(50).astype(np.float32)
    ours = arrays.NUMPY.one_hot_(arrays.NUMPY.categorical(p, u), np.empty_like(p))
    ops = arrays.backend("torch").ops
    theirs = ops.one_hot_(ops.categorical(torch.tensor(p), torch.tensor(u)), torch.empty(p.shape))
    assert np.array_equal(theirs.numpy(), ours) and (ours.sum(axis=1) == 1).all()


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


@pytest.mark.parametrize("c_order", [True, False])
def test_centered_change_agrees_with_numpy(c_order):
    """Centered CD (no label group) of the same statistics: the moved offsets and the
    change of numpy and torch float32 agree to float32 rounding, bfloat16 products' weight
    change to bfloat16 rounding (1%)."""
    block, _ = _block()
    block = bipartite.Block(block.W if c_order else np.asfortranarray(block.W), block.b, block.c)
    stats = _fixed_statistics()._replace(Y=None)
    mu, lam = RNG.random(7).astype(np.float32), RNG.random(5).astype(np.float32)
    cd, results = bipartite.CD(centering=(0.1, 0.2)), []
    for name, dtype in (("numpy", "float32"), ("torch", "float32"), ("torch", "bfloat16")):
        be = arrays.backend(name, dtype=dtype)
        blk = bipartite.Block(*(be.asarray(a.copy(order="K")) for a in block[:3]))
        st = bipartite.Statistics(be.asarray(stats.V.copy()), None, be.asarray(stats.H.copy()), stats.n_pos)
        offsets = (be.asarray(mu.copy()), be.asarray(lam.copy()))
        d, _ = bipartite.change(blk, st, cd, 0.1, bipartite.buffers(None, blk, 6, 4, be), offsets=offsets)
        results.append(({k: be.to_numpy(v) for k, v in d.items()}, [be.to_numpy(x) for x in offsets]))
    (d, off), (td, toff), (bd, _) = results
    for key in d:
        np.testing.assert_allclose(td[key], d[key], rtol=1e-5, atol=1e-7)
    for x, tx in zip(off, toff):
        np.testing.assert_allclose(tx, x, rtol=1e-6)
    np.testing.assert_allclose(bd["W"], d["W"], rtol=0, atol=0.01 * np.abs(d["W"]).max())


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


@pytest.mark.parametrize("cpuinfo, supported", [
    ("flags\t\t: fpu sse2 avx2 avx512f\n", False),
    ("flags\t\t: fpu avx512f avx512_bf16\n", True),
    ("flags\t\t: fpu amx_bf16 amx_tile\n", True),
    ("Features\t: fp asimd bf16 i8mm\n", True),
    ("Features\t: fp asimd\n", False),
    (None, None),
])
def test_bfloat16_on_a_cpu_without_it(tmp_path, monkeypatch, capsys, cpuinfo, supported):
    """bfloat16 on a CPU whose /proc/cpuinfo lists no bfloat16 instructions is refused,
    naming float32 (torch would emulate it, slower than float32); where the file is
    missing (not Linux) it is allowed. The CLI says the same and exits 2."""
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(arrays, "CPUINFO", str(path))
    assert arrays.cpu_has_bfloat16() is supported
    if supported is False:
        with pytest.raises(ParameterError, match=r"needs a CPU with bfloat16 instructions .* use dtype float32"):
            arrays.backend("torch", "cpu", "bfloat16")
        assert main(["rbm", "train", "--hidden", "3", *TORCH_FLAGS, "--out", str(tmp_path / "r.npz")]) == 2
        assert "use dtype float32" in capsys.readouterr().err
    else:
        assert arrays.backend("torch", "cpu", "bfloat16").dtype == "bfloat16"
    assert arrays.backend("torch", "cpu", "float32").dtype == "float32"


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


# -- the command line: rbm train, dbn train ---------------------------------------------------
RBM_FLAGS = ["rbm", "train", "--hidden", "6", "--epochs", "3", "--batch", "40", "--checkpoint-minutes", "0"]
TORCH_FLAGS = ["--backend", "torch", "--dtype", "bfloat16"]


def _interrupt_after(monkeypatch, cls, method: str, calls: int) -> None:
    """SIGINT after ``calls`` calls of ``cls.method`` (a minibatch's step)."""
    done, step = [], getattr(cls, method)

    def interrupted(self, *args):
        step(self, *args)
        done.append(1)
        if len(done) == calls:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cls, method, interrupted)


def test_rbm_train_on_torch_bfloat16_then_evaluate_and_resume(fake_mnist, tmp_path, capsys, monkeypatch):
    """`rbm train --backend torch --dtype bfloat16`: the file records the settings, holds
    float32 weights and evaluates (exact log Z) to within 1 nat of a numpy float32 run;
    interrupted and resumed it ends with the weights of the uninterrupted run (the torch
    draws are seeded from the checkpointed Generator at every update); --resume with
    other backend settings is refused by name, as any other setting."""
    logprob = {}
    for name, flags in (("numpy", []), ("torch", TORCH_FLAGS)):
        out = tmp_path / f"{name}.npz"
        assert main(RBM_FLAGS + flags + ["--out", str(out), "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        assert (r["backend"], r["device"], r["dtype"]) == ((name, "cpu", "bfloat16") if flags else
                                                            (name, "cpu", "float32"))
        assert main(["rbm", "evaluate", str(out), "--exact", "--floor-steps", "0", "--json"]) == 0
        logprob[name] = json.loads(capsys.readouterr().out)["test_logprob_nats"]
    whole = RBM.load(tmp_path / "torch.npz")
    assert (whole.backend, whole.device, whole.dtype) == ("torch", "cpu", "bfloat16")
    assert whole.components_.dtype == np.float32
    assert abs(logprob["torch"] - logprob["numpy"]) < 1.0, logprob
    cut = tmp_path / "cut.npz"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, RBM, "_fit_batch", 7)           # epoch 1, minibatch 2 of 5
        assert main(RBM_FLAGS + TORCH_FLAGS + ["--out", str(cut)]) == 130
    for other, said in ((["--backend", "torch"], "dtype='bfloat16' where this one has 'float32'"),
                        ([], "backend='torch' where this one has 'numpy'")):
        assert main(RBM_FLAGS + other + ["--out", str(cut), "--resume"]) == 2
        assert said in capsys.readouterr().err
    assert main(RBM_FLAGS + TORCH_FLAGS + ["--out", str(cut), "--resume"]) == 0
    assert np.array_equal(RBM.load(cut).components_, whole.components_)


@pytest.mark.parametrize("flags, message", [
    (["--dtype", "bfloat16"], "neurosim: error: dtype='bfloat16' needs backend='torch' (numpy has no bfloat16 "
                              "products); use backend='torch' or dtype float32"),
    (["--device", "cuda"], "device='cuda' needs backend='torch'"),
    (["--backend", "jax"], "backend must be one of 'numpy', 'torch', got 'jax'"),
    (["--backend", "torch", "--dtype", "float16"], "dtype of the products must be one of 'float32', 'bfloat16', "
                                                 "got 'float16'"),
    pytest.param(["--backend", "torch", "--device", "cuda"], "neurosim: error: no CUDA device; use --device cpu",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["--backend", "torch", "NO_TORCH"], "pip install neurosim[torch]"),
])
@pytest.mark.parametrize("command", ["rbm", "dbn", "dbm"])
def test_bad_backend_flags_exit_2_with_the_librarys_message(fake_mnist, tmp_path, capsys, monkeypatch, flags,
                                                            message, command):
    """Each bad choice exits 2 with the library's one-line message and leaves nothing behind."""
    if "NO_TORCH" in flags:
        flags = flags[:-1]
        monkeypatch.setitem(sys.modules, "torch", None)        # `import torch` fails
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / ("rbm.npz" if command == "rbm" else "run")
    argv = {"rbm": RBM_FLAGS, "dbn": ["dbn", "train", "--hidden", "8,8,8"],
            "dbm": ["dbm", "train", "--hidden", "8,8"]}[command] + flags + ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert list((tmp_path / "out").iterdir()) in ([], [out]) and not (out / "checkpoint.npz").exists()


DBN_FLAGS = ["dbn", "train", "--hidden", "30,30,60", "--pretrain-epochs", "30", "--updown-epochs", "2",
             "--backprop-epochs", "7", "--backprop-batch", "100", "--checkpoint-minutes", "0"]


def test_dbn_on_torch_bfloat16_classifies_as_numpys_and_resumes(fake_mnist, tmp_path, capsys, monkeypatch):
    """`dbn train --backend torch --dtype bfloat16`: the greedy RBMs, the top RBM,
    up-down and backprop (conjugate gradient; every layer learns from epoch 6) on torch. The generative and backprop test
    errors on the 100 fake test digits are each within 0.1 of numpy float32's: the classes are separable and both errors are 0 here; other
    draws (another CPU's bfloat16 GEMM) move an error below 0.1 by at most its binomial
    standard error sqrt(0.1 * 0.9 / 100) = 0.03, so the difference by about 0.04: the
    bound is 2.4 of those. Interrupted mid-stage (in rbm1, and in up-down) and resumed,
    the run ends with the checkpoint of an uninterrupted one; --resume on numpy is
    refused by name."""
    errors = {}
    for name, flags in (("numpy", []), ("torch", TORCH_FLAGS)):
        assert main(DBN_FLAGS + flags + ["--out", str(tmp_path / name)]) == 0
        assert json.loads((tmp_path / name / "command.json").read_text())["recipe"]["backend"] == name
        capsys.readouterr()
        assert main(["dbn", "evaluate", str(tmp_path / name), "--json"]) == 0
        scores = json.loads(capsys.readouterr().out)
        errors[name] = np.array([scores["test_error_generative"], scores["test_error_backprop"]])
    assert np.all(errors["numpy"] < 0.1) and np.all(abs(errors["torch"] - errors["numpy"]) <= 0.1), errors
    for method, calls, where in (("_rbm_step", 2 * 2 + 1, "stage rbm1, epoch 2, minibatch 1"),
                                 ("_updown_step", 2 + 1, "stage updown, epoch 1, minibatch 1"),
                                 ("_backprop_step", 6 * 2 + 1, "stage backprop, epoch 6, minibatch 1")):
        cut = tmp_path / f"cut{method}"
        with monkeypatch.context() as patch:
            _interrupt_after(patch, Trainer, method, calls)          # 2 minibatches an epoch
            assert main(DBN_FLAGS + TORCH_FLAGS + ["--out", str(cut)]) == 130
        assert f"stopped at {where};" in capsys.readouterr().err
        assert main(DBN_FLAGS + ["--backend", "numpy", "--out", str(cut), "--resume"]) == 2
        assert "was started with --backend torch; this command says --backend numpy" in capsys.readouterr().err
        assert main(DBN_FLAGS + TORCH_FLAGS + ["--out", str(cut), "--resume"]) == 0
        with np.load(cut / "checkpoint.npz") as resumed, np.load(tmp_path / "torch" / "checkpoint.npz") as whole:
            assert sorted(resumed.files) == sorted(whole.files)
            for key in whole.files:
                if key.startswith(("dbn.", "p.", "vel.", "greedy.")):
                    assert np.array_equal(resumed[key], whole[key]), (method, key)


def _dbn(sizes=(12, 8, 6, 10), n_labels=4, seed=0):
    """A random float32 DBN (directed layers untied, as after some up-down)."""
    from neurosim.machines.dbn import DeepBeliefNet

    rng = np.random.default_rng(seed)
    d = DeepBeliefNet(sizes, n_labels)
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        d.add_rbm(rng.standard_normal((a, b)), rng.standard_normal(a), rng.standard_normal(b))
        d.G[-1] = rng.standard_normal((b, a)).astype(np.float32)
    d.set_top(*(rng.standard_normal(s) for s in ((sizes[-2], sizes[-1]), (n_labels, sizes[-1]), sizes[-2],
                                                  n_labels, sizes[-1])))
    return d


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
@pytest.mark.parametrize("persistent", [False, True])
def test_up_down_step_agrees_with_numpy_on_the_same_draws(monkeypatch, persistent, device):
    """``up_down_step`` on torch float32 changes every parameter (and momentum, and the
    persistent chain) as numpy does, to float32 rounding, given the same uniform draws:
    both backends' draws are replaced by one numpy stream (the generators differ), two
    steps with momentum and weight cost. On a GPU the host arrays get the changes back."""
    def uniform(rng, out):
        u = rng.random(tuple(out.shape), dtype=np.float32)
        if isinstance(out, np.ndarray):
            out[...] = u
        else:
            out.copy_(torch.from_numpy(u))                       # to the tensor's device
        return out

    monkeypatch.setattr(arrays.NumpyOps, "uniform", staticmethod(uniform))
    monkeypatch.setattr(arrays.TorchOps, "uniform", staticmethod(uniform))
    monkeypatch.setattr(arrays.Backend, "generator", lambda self, rng: rng)
    data = np.random.default_rng(1)
    X = data.random((9, 12), dtype=np.float32)
    Y = np.eye(4, dtype=np.float32)[data.integers(0, 4, 9)]
    out = {}
    for name in ("numpy", "torch"):
        d, velocity, chains, rng = _dbn(), {}, {} if persistent else None, np.random.default_rng(2)
        for _ in range(2):
            d.up_down_step(X, Y, 0.1, 3, rng, 0.5, 0.01, velocity, chains, directed_lr=0.2,
                           backend=arrays.backend(name, device if name == "torch" else "cpu"))
        out[name] = d.state_dict(), velocity, chains
    start = _dbn().state_dict()
    (p_np, v_np, c_np), (p_t, v_t, c_t) = out["numpy"], out["torch"]
    for key in start:
        assert p_t[key].dtype == p_np[key].dtype and isinstance(p_t[key], np.ndarray)
        np.testing.assert_allclose(p_t[key] - start[key], p_np[key] - start[key], rtol=1e-4, atol=1e-5,
                                   err_msg=key)
    assert sorted(v_t) == sorted(v_np) == sorted(k for k in start if k not in ("sizes", "n_labels"))
    for key in v_np:
        assert bool(np.any(v_np[key] != 0)), key
        np.testing.assert_allclose(v_t[key], v_np[key], rtol=1e-4, atol=1e-5, err_msg=key)
    if persistent:
        assert np.array_equal(c_t["top"], c_np["top"])


def _digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``fake_mnist``'s digits in memory: a class-specific block of pixels, plus noise."""
    y = np.arange(n) % 10
    X = (rng.random((n, 28, 28)) < 0.05).astype(np.float32)
    for i, label in enumerate(y):
        X[i, 2 * label:2 * label + 6, 4:24] = 1
    return X.reshape(n, -1), y


def test_up_down_in_bfloat16_classifies_as_numpys():
    """A tiny DBN (784-30-30-60) whose greedy stack is left half trained (15 epochs of 2
    minibatches) so that up-down does the work: 30 epochs at rate 0.03 take the generative
    test error of 100 digits from 0.1-0.3 (seeds 0-4, torch bfloat16) to 0.06-0.15, and
    numpy float32's to 0.0-0.2 (seeds 0-4). bfloat16 (greedy and up-down) ends within
    0.1 of numpy on the same seed: that is 2.4 binomial standard errors of the difference
    of two errors near 0.1 on 100 cases (sqrt(2 * 0.1 * 0.9 / 100) = 0.042), and half
    numpy's own spread over seeds."""
    from neurosim.machines.dbn import DeepBeliefNet

    rng = np.random.default_rng(0)
    (X, y), (Xt, yt) = _digits(200, rng), _digits(100, rng)
    errors = {}
    for name, dtype in (("numpy", "float32"), ("torch", "bfloat16")):
        d = DeepBeliefNet((784, 30, 30, 60), 10).fit(X, y, pretrain_epochs=15, updown_epochs=30, updown_lr=0.03,
                                                     updown_anneal=0, backprop_epochs=0, backend=name,
                                                     dtype=dtype, random_state=0)
        errors[name] = float(np.mean(d.predict(Xt) != yt))
    assert errors["numpy"] <= 0.2 and abs(errors["torch"] - errors["numpy"]) <= 0.1, errors


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dbn_greedy_stage_on_cuda_learns_as_on_the_cpu():
    """On a GPU: a greedy RBM stage (``train_rbm_layer``) copies its arrays back to the
    host after every update and reconstructs as well as on the CPU."""
    X = _prototypes(400)
    errors = []
    for device in ("cpu", "cuda"):
        p = train_rbm_layer(X, 20, Recipe(pretrain_epochs=3, batch_size=20, backend="torch", device=device),
                            np.random.default_rng(0))
        H = 1 / (1 + np.exp(-(X @ p["W"] + p["c"])))
        errors.append(float(np.mean((X - 1 / (1 + np.exp(-(H @ p["W"].T + p["b"])))) ** 2)))
    assert abs(errors[0] - errors[1]) < 0.1 * errors[0], errors


def _backprop_problem(seed=0):
    """A random 30-20-15 net with a 4-way softmax, 50 binary cases, one-hot labels."""
    rng = np.random.default_rng(seed)
    sizes = (30, 20, 15, 4)
    p = {}
    for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        name = "_out" if l == len(sizes) - 2 else l
        p[f"w{name}"] = (0.5 * rng.standard_normal((a, b))).astype(np.float32)
        p[f"b{name}"] = rng.standard_normal(b).astype(np.float32)
    X = (rng.random((50, sizes[0])) < 0.3).astype(np.float32)
    return p, X, np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], 50)]


def test_backprop_gradient_agrees_with_numpy():
    """``backprop_gradient`` on torch: float32 gives numpy's loss and gradients to float32
    rounding (measured: 2e-7 of the largest entry); bfloat16 products round each operand
    to 8 significant bits (relative 2^-9), which moves each entry by about 0.4% of the
    largest (measured 0.39%) and leaves every gradient within cosine 1 - 1e-5 of numpy's
    (measured 0.999992); the bound 1e-4 is ten times that. The gradients are numpy arrays."""
    from neurosim.machines.backprop import backprop_gradient

    p, X, Y = _backprop_problem()
    loss, grads = backprop_gradient(p, X, Y)
    for dtype, close in (("float32", 1e-5), ("bfloat16", 2e-2)):
        t_loss, t_grads = backprop_gradient(p, X, Y, backend=arrays.backend("torch", "cpu", dtype))
        assert abs(t_loss - loss) <= close * loss
        for k, g in grads.items():
            tg = t_grads[k]
            assert isinstance(tg, np.ndarray) and tg.dtype == np.float32 and tg.shape == g.shape
            assert np.abs(tg - g).max() <= close * np.abs(g).max(), (dtype, k)
            assert (tg * g).sum() / np.linalg.norm(tg) / np.linalg.norm(g) >= 1 - 1e-4, (dtype, k)


def test_backprop_cg_and_sgd_on_torch():
    """Conjugate gradient (3 line searches, the first 2 steps on the softmax layer alone)
    and SGD on torch: float32 follows numpy's CG losses to 1e-3 for 6 steps (float32
    rounding through the line searches, measured 2e-4 at most in the first 7; they part
    later, 0.24 and 0.24 at step 8, 0.052 and 0.062 at step 10) and SGD's to 1e-5;
    bfloat16 CG takes another path down (measured 2.06 to 0.056 in 10 steps, numpy 0.052;
    on another seed 1.61 to 0.17, numpy 0.098) and must end below a quarter of the start;
    bfloat16 SGD's loss is within 1% of numpy's (measured 1e-4). The parameters stay
    float32 numpy arrays."""
    from neurosim.machines.backprop import backprop_cg_step, backprop_gradient, backprop_step

    p0, X, Y = _backprop_problem()
    start = backprop_gradient(p0, X, Y)[0]
    curves, ends = {}, {}
    for name, dtype in (("numpy", "float32"), ("float32", "float32"), ("bfloat16", "bfloat16")):
        be = arrays.backend("numpy" if name == "numpy" else "torch", "cpu", dtype)
        p, q = ({k: v.copy() for k, v in p0.items()} for _ in range(2))
        curves[name] = [backprop_cg_step(p, X, Y, 3, i >= 2, backend=be)[-1] for i in range(10)]
        vel = {k: np.zeros_like(v) for k, v in q.items()}
        for _ in range(30):
            backprop_step(q, vel, X, Y, 0.1, 0.9, backend=be)
        ends[name] = backprop_gradient(q, X, Y)[0]
        assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in (*p.values(), *q.values()))
    np.testing.assert_allclose(curves["float32"][:6], curves["numpy"][:6], rtol=1e-3)
    assert curves["bfloat16"][-1] < start / 4, curves
    np.testing.assert_allclose(ends["float32"], ends["numpy"], rtol=1e-5)
    assert abs(ends["bfloat16"] - ends["numpy"]) < 1e-2 * ends["numpy"], ends
