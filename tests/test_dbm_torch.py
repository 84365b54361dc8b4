"""The deep Boltzmann machine trained on the torch backend (``DeepBoltzmannMachine(backend=
"torch")``, ``neurosim dbm train --backend torch``): the one mean-field loop and the one
joint update against numpy's on the same numbers, training that raises the exact
likelihood, bit-identical resumption, and numpy's numbers unchanged (a digest).

float32 products differ from numpy's only in summation order: a probability moves by a
few units of float32 rounding (eps = 1.2e-7) per pass. bfloat16 products round each
weight and each product's output to 8 significant bits, so a unit's input moves by about
``2^-8 M`` (``M = |b| + sum |w|``, below 5 on the machines here) and its probability by
a quarter of that (< 0.005 per pass). Optional extra: skipped without torch, failed under CI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import NO_TORCH, optional
from neurosim.cli import main
from neurosim.compiled import arrays
from neurosim.errors import ParameterError
from neurosim.machines import DeepBoltzmannMachine
from neurosim.machines.dbm import layer_input
from neurosim.numerics import sigmoid
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)
from test_dbm import binary, random_dbm, stopped_and_resumed

torch = optional("torch")
ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "bfloat16")
EPS32 = float(np.finfo(np.float32).eps)


def _torch(dtype: str = "float32") -> arrays.Backend:
    return arrays.backend("torch", "cpu", dtype)


def _digest(dbm: DeepBoltzmannMachine) -> str:
    h = hashlib.sha256()
    for a in dbm.weights_ + dbm.biases_ + [np.asarray(dbm.chains_)]:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# -- numpy unchanged --------------------------------------------------------------------------------
@pytest.mark.parametrize("options, digest", [
    ({}, "e5cbe1787ea42a8f"),
    (dict(negative_phase="probabilities", sparsity_targets=(0.2, 0.1, 0.3), sparsity_cost=0.01), "06c80d85141fc118"),
    (dict(pretrain_sampling=True, pretrain_cd_every=1, negative_phase="probabilities",
          sparsity_targets=(0.2, 0.1, 0.3), sparsity_cost=0.01), "2459119fbe3946bc")])
def test_numpy_training_is_bit_for_bit_what_it_was(options, digest):
    """Pretraining, three epochs of joint training (damped mean-field, momentum) and the
    chains, digested: the numbers of the numpy code before the backend (and of the
    options of dbm_mf.m, rbm.m and rbm_l2.m as they were merged), computed then and
    pinned here."""
    X = (np.random.default_rng(0).random((60, 8)) < 0.4).astype(np.float32)
    dbm = DeepBoltzmannMachine((8, 6, 5, 4), n_iter=3, pretrain_epochs=2, batch_size=20, n_chains=10,
                               mean_field_iterations=4, damping=0.3, momentum_switch=1, learning_rate=0.01,
                               random_state=3, **options).fit(X)
    assert _digest(dbm) == digest


# -- the same numbers on both libraries -----------------------------------------------------------
@pytest.mark.parametrize("damping", [0.0, 0.5])
def test_mean_field_on_torch_is_numpys_to_the_products_rounding(damping):
    """The one mean-field loop on torch arrays: float32 within 8 units of float32 rounding of
    numpy's after 5 passes; bfloat16 within 0.02 (5 passes of < 0.005), and not float32's."""
    dbm = random_dbm((12, 8, 6, 5), scale=0.5, seed=2)
    V = binary(30, 12, seed=3)
    ref = dbm._mean_field(V, 5, damping)
    err = {}
    for dtype in DTYPES:
        be = _torch(dtype)
        got = dbm._mean_field(be.asarray(V), 5, damping, be)
        assert all(isinstance(q, torch.Tensor) and q.dtype == torch.float32 for q in got[1:])
        err[dtype] = max(float(np.abs(q.numpy() - r).max()) for q, r in zip(got[1:], ref[1:]))
    assert err["float32"] < 8 * EPS32
    assert 1e-4 < err["bfloat16"] < 0.02, err


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
@pytest.mark.parametrize("sparsity", [None, (0.2, 0.1, 0.3)])
def test_a_joint_update_on_torch_float32_is_numpys_given_the_same_statistics(sparsity, device):
    """Two updates (the second with momentum) of a 5-4-3-2 machine from the same statistics
    ``Q``, ``S`` (and the sparsity penalty's running means): the weights, biases and
    velocities of torch float32 equal numpy's to float32 rounding (|dW| ~ 0.1 here); on a
    GPU the host arrays get the changes back."""
    rng = np.random.default_rng(1)
    Q = [rng.random((6, n)).astype(np.float32) for n in (5, 4, 3, 2)]
    S = [rng.random((9, n)).astype(np.float32) for n in (5, 4, 3, 2)]
    machines = []
    for backend in ("numpy", "torch"):
        dbm = random_dbm((5, 4, 3, 2), scale=0.5, seed=4, backend=backend, warm_start=True,
                         sparsity_targets=sparsity, device="cpu" if backend == "numpy" else device)
        dbm._begin_fit(binary(12, 5))
        on = (lambda x: x) if backend == "numpy" else (lambda x: torch.as_tensor(x, device=device))
        for momentum in (0.0, 0.5):
            dbm._update([on(q) for q in Q], [on(s) for s in S], 0.1, momentum)
        machines.append(dbm)
    ours, theirs = machines
    for name, a in ours._host_state().items():
        b = theirs._host_state()[name]
        assert isinstance(b, np.ndarray) and b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=0, atol=4 * EPS32, err_msg=name)
    assert not np.array_equal(ours.weights_[0], random_dbm((5, 4, 3, 2), scale=0.5, seed=4).weights_[0])


def test_the_probabilities_negative_phase_on_torch_is_its_equation():
    """``negative_phase="probabilities"`` on the torch chains: each even hidden layer's
    statistic is ``sigmoid`` of its input from the odd layers' statistics (numpy, float64)."""
    dbm = random_dbm((6, 5, 4, 3, 2), scale=0.5, seed=5, backend="torch", warm_start=True,
                     negative_phase="probabilities", n_chains=20)
    dbm._begin_fit(binary(10, 6))
    S = [s.numpy().astype(np.float64) for s in dbm._negative(3)]
    W, b = dbm._float64()
    for l in (2, 4):
        np.testing.assert_allclose(S[l], sigmoid(layer_input(S, l, W, b)), atol=1e-6)
    assert set(np.unique(S[0])) <= {0.0, 1.0}


# -- training ------------------------------------------------------------------------------------------
def _prototypes():
    """tests/test_dbm.py's data: two noisy prototypes over 6 pixels."""
    rng = np.random.default_rng(0)
    protos = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=np.float32)
    return np.abs(protos[rng.integers(0, 2, 200)] - (rng.random((200, 6)) < 0.05)).astype(np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_joint_training_on_torch_raises_the_exact_likelihood(dtype):
    """tests/test_dbm.py's test on torch: pretraining and 30 joint epochs there, the machine
    float32 numpy arrays, finite, and the exact mean log p(v) raised by more than 0.1 nat
    (measured: 0.34 and 0.29); same seed, same numbers."""
    X = _prototypes()
    params = dict(pretrain_epochs=20, batch_size=20, n_chains=100, learning_rate=0.0005, random_state=1,
                  backend="torch", dtype=dtype)
    before = DeepBoltzmannMachine((6, 4, 3), n_iter=0, **params).fit(X)
    after = DeepBoltzmannMachine((6, 4, 3), n_iter=30, **params).fit(X)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 and np.isfinite(a).all()
               for a in after.weights_ + after.biases_ + [after.chains_])
    assert after.log_prob(X).mean() > before.log_prob(X).mean() + 0.1
    assert _digest(after) == _digest(DeepBoltzmannMachine((6, 4, 3), n_iter=30, **params).fit(X))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ctrl_c_then_resume_on_torch_gives_the_uninterrupted_fit(tmp_path, dtype):
    """runs.fit_run on torch: stopped by SIGINT mid-epoch and resumed, the weights and chains
    of an uninterrupted fit bit for bit (the torch draws seeded from the checkpointed
    Generator at every update)."""
    def machine():
        return DeepBoltzmannMachine((6, 4, 3), n_iter=3, pretrain_epochs=2, batch_size=10, n_chains=8,
                                    momentum_switch=1, learning_rate=0.01, random_state=3, backend="torch",
                                    dtype=dtype)

    whole, resumed = stopped_and_resumed(machine, binary(40, 6), tmp_path / "dbm.ckpt.npz", (1, 2))
    assert _digest(resumed) == _digest(whole)


def test_bad_dtype_is_refused_by_name():
    X = binary(10, 6)
    with pytest.raises(ParameterError, match="^dtype must be None, 'float32' or 'bfloat16'"):
        DeepBoltzmannMachine((6, 4), dtype=np.float64).fit(X)
    with pytest.raises(ParameterError, match="^dtype='bfloat16' needs backend='torch'"):
        DeepBoltzmannMachine((6, 4), dtype="bfloat16").fit(X)
    with pytest.raises(ParameterError, match="^backend must be one of 'numpy', 'torch', got 'jax'"):
        DeepBoltzmannMachine((6, 4), backend="jax").fit(X)


WITHOUT_TORCH = NO_TORCH + """
import numpy as np
from neurosim.machines import DeepBoltzmannMachine
X = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(np.float32)
dbm = DeepBoltzmannMachine.load(sys.argv[1])          # trained on torch; loads and scores here
print(repr(dbm.log_prob(X).tolist()), dbm.backend, "torch" in sys.modules)
"""


def test_a_machine_trained_on_torch_loads_and_scores_without_torch(tmp_path):
    X = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(np.float32)
    dbm = DeepBoltzmannMachine((6, 4, 3), n_iter=2, pretrain_epochs=2, batch_size=10, n_chains=8,
                               random_state=0, backend="torch").fit(binary(40, 6))
    dbm.save(tmp_path / "dbm.npz")
    out = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(tmp_path / "dbm.npz")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-2:] == ["torch", "False"]
    np.testing.assert_allclose(json.loads(" ".join(out[:-2])), dbm.log_prob(X), rtol=0, atol=1e-12)


# -- the command line ---------------------------------------------------------------------------------
def test_dbm_train_on_torch_records_it_evaluates_and_refuses_another_backend(fake_mnist, tmp_path, capsys):  # noqa: F811
    """`dbm train --backend torch --dtype bfloat16` on 200 digits: recipe.json and the
    machine say torch, `dbm evaluate` reads the run, and --resume with --backend numpy is
    refused naming the run's backend."""
    out = tmp_path / "run"
    argv = ["dbm", "train", "--hidden", "20,10", "--pretrain-epochs", "2", "--epochs", "2", "--chains", "20",
            "--finetune-epochs", "2", "--limit", "200", "--backend", "torch", "--dtype", "bfloat16",
            "--out", str(out)]
    assert main(argv) == 0
    recipe = json.loads((out / "recipe.json").read_text())["recipe"]
    assert (recipe["backend"], recipe["device"], recipe["dtype"]) == ("torch", "cpu", "bfloat16")
    dbm = DeepBoltzmannMachine.load(out / "dbm.npz")
    assert (dbm.backend, dbm.dtype) == ("torch", "bfloat16") and dbm.n_iter_ == 2
    capsys.readouterr()
    assert main(["dbm", "evaluate", str(out), "--runs", "10", "--betas", "100", "--reverse-sweeps", "0",
                 "--limit", "50", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["recipe"]["backend"] == "torch" and np.isfinite(r["test_logprob_bound_nats"])
    assert main(argv[:-6] + ["--backend", "numpy", "--dtype", "float32", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "backend='torch' where this one has 'numpy'" in err[0], err
