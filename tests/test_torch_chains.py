"""The compiled engine's general sampler and learner on the torch backend
(neurosim/compiled/sampler.py ``Chains(backend=)``, neurosim/learning/learners.py
``CompiledLearner(arrays=)``, ``neurosim train --backend torch``).

Samplers against exact enumeration: KL(empirical || exact) below ``helpers.kl_bound``
(the G-test bound; the chains are independent, inflation 1) or marginals within 5
standard errors, fixed seeds. bfloat16 samples the distribution of its rounded weights:
each weight and each product's output rounded to 8 significant bits moves a log-odds by
at most about ``2^-8 M_i`` (``M_i = |b_i| + sum |w_ji|``, below 10 here: < 0.04), so
the KL from the exact distribution is of order ``E[dx^2] / 8 < 2e-4``, under a tenth of
every bound used. Optional extra: skipped without torch, failed under CI."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from helpers import empirical_kl, kl_bound, optional, random_boltzmann, run_cli
from neurosim import load, posterior
from neurosim.compiled import Chains, arrays, compile
from neurosim.data import load_data, match_visible
from neurosim.errors import ParameterError
from neurosim.learning import get_rule
from neurosim.learning.learners import CompiledLearner
from neurosim.learning.procedures import Settings, train
from neurosim.learning.quality import exact_quality
from test_softmax import EVIDENCE, _kl_check, dbn_shaped

torch = optional("torch")
DTYPES = ("float32", "bfloat16")


def _torch(dtype: str = "float32", device: str = "cpu") -> arrays.Backend:
    return arrays.backend("torch", device, dtype)


# -- sampling against exact enumeration ------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("evidence", EVIDENCE)
def test_softmax_groups_and_neal_sample_the_exact_distribution(dtype, evidence):
    """A DBN-shaped net with a softmax label group (mixed plan; Neal's child terms with
    the visible units clamped), 8000 independent chains, one sample each."""
    net = dbn_shaped()
    chains = Chains(compile(net), np.random.default_rng(3), 8000, evidence=evidence, backend=_torch(dtype))
    samples = chains.sample(1, burn_in=30)
    assert chains.plan.mode == ("neal" if evidence and "v_0" in evidence else "mixed")
    assert isinstance(chains.state, torch.Tensor) and isinstance(chains.rows, np.ndarray)
    _kl_check(samples, net, posterior(net, evidence), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_boltzmann_machine_samples_the_exact_distribution(dtype):
    """Chromatic Gibbs on a random 7-unit Boltzmann machine: 4000 chains x 2 samples,
    2 sweeps apart (inflation 1.6, the measured bound of helpers.kl_bound)."""
    net = random_boltzmann(np.random.default_rng(0), 4, 3)
    chains = Chains(compile(net), np.random.default_rng(1), 4000, backend=_torch(dtype))
    assert chains.plan.mode == "chromatic"
    samples = chains.sample(2, burn_in=30, thin=2)
    exact = posterior(net)
    kl = empirical_kl(samples, exact)
    assert kl < kl_bound(len(exact.states), len(samples), inflation=1.6), kl


@pytest.mark.parametrize("dtype", DTYPES)
def test_explaining_away_by_neal_matches_exact_marginals(dtype):
    """earthquake_truck with house_jumps=1 (Neal's child terms): the marginals of
    earthquake and truck within 5 standard errors of exact, 2000 chains."""
    net = load("models/earthquake_truck.toml")
    chains = Chains(compile(net), np.random.default_rng(0), 2000, evidence={"house_jumps": 1},
                    backend=_torch(dtype))
    samples = chains.sample(1, burn_in=50)
    exact = posterior(net, {"house_jumps": 1})
    for unit in ("earthquake", "truck"):
        p = exact.marginals()[unit]
        assert abs(samples[:, net.index(unit)].mean() - p) < 5 * np.sqrt(p * (1 - p) / len(samples)), unit


# -- the same states on both backends ---------------------------------------------------------
@pytest.mark.parametrize("net, evidence", [(random_boltzmann(np.random.default_rng(2), 4, 4), None),
                                           (dbn_shaped(), {"v_0": 1, "v_1": 0}), (dbn_shaped(), None)])
def test_field_equals_numpys_on_the_same_states(net, evidence):
    """Every step's total input (Neal's terms included), from the same states: torch
    float32 equal to numpy's to float32 rounding; bfloat16 within ``2^-7 M_i``."""
    cn = compile(net)
    init = (np.random.default_rng(4).random((50, net.n_units)) < 0.5).astype(float)
    ref = Chains(cn, np.random.default_rng(0), 50, evidence=evidence, init=init)
    bound = np.abs(cn.b) + np.abs(cn.W).sum(axis=0)
    for dtype in DTYPES:
        mine = Chains(cn, np.random.default_rng(0), 50, evidence=evidence, init=init, backend=_torch(dtype))
        np.testing.assert_array_equal(mine.rows, ref.rows)
        for step in ref.plan.steps:
            x, y = ref.field(step), mine.field(step).numpy()
            if dtype == "float32":
                np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-5)
            else:
                assert (np.abs(y - x) <= 2 ** -7 * bound[step.units]).all()
                assert not np.array_equal(y, x)                # bfloat16 products, not float32


def test_same_seed_same_numbers_and_a_replaced_rng_reseeds():
    """Same seed, same samples; another seed, others. Replacing ``rng`` between updates
    (as learners and machines do) seeds the torch generator afresh from it: the draws
    after it depend on it alone."""
    net = dbn_shaped()

    def run(seed, replaced=None):
        chains = Chains(compile(net), np.random.default_rng(seed), 30, backend=_torch())
        first = chains.sample(3)
        if replaced is not None:
            chains.rng = np.random.default_rng(replaced)
            chains.state[:] = 0
        return first, chains.sample(3)

    a, b = run(0), run(0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(run(1)[0], a[0])
    assert np.array_equal(run(0, replaced=7)[1], run(1, replaced=7)[1])


def test_a_net_that_needs_float64_is_refused_on_torch():
    net = random_boltzmann(np.random.default_rng(0), 2, 2, scale=1e5)
    with pytest.raises(ParameterError, match="is compiled to float64 .* use the numpy backend"):
        Chains(compile(net), np.random.default_rng(0), 2, backend=_torch())


# -- the learner ------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, model", [("cd", "encoder_424"), ("delta", "sigmoid_belief_net"),
                                         ("wake-sleep", "helmholtz_shifter")])
def test_the_batched_change_equals_numpys_on_the_same_states(rule, model):
    """``CompiledLearner.change`` (the rule's batched form; delta and wake-sleep use eq. 1's
    ``post_prob``) on the same states: torch float32 equal to numpy's to float32 rounding,
    and the locality probe records the same reads."""
    net = load(f"models/{model}.toml")
    rng = np.random.default_rng(0)
    S = (rng.random((20, net.n_units)) < 0.5).astype(np.float32)
    s = Settings(lr=0.3)
    ref = CompiledLearner(net, get_rule(rule), s, rng, ("generative",))
    mine = CompiledLearner(net, get_rule(rule), s, rng, ("generative",), arrays=_torch())
    for cn in (ref.cns["generative"], mine.cns["generative"]):  # weights that make post_prob matter
        cn.set_weights(np.random.default_rng(1).normal(size=cn.W.shape), np.random.default_rng(2).normal(size=cn.n))
    phase = get_rule(rule).phases[0]
    for x, y in zip(ref.change(ref.cns["generative"], S, phase), mine.change(mine.cns["generative"], S, phase)):
        assert isinstance(y, np.ndarray)
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
    assert mine.reads == ref.reads and ref.reads


ENCODER = load("models/encoder_424.toml")
VISIBLE = [u.name for u in ENCODER.unit_list() if u.role == "visible"]


def _encoder_kls(backend: arrays.Backend | None) -> np.ndarray:
    """Exact KL (nats) of the 4-2-4 encoder after CD-1, 400 updates at lr 0.3, seeds 0-5."""
    data = load_data("encoder-4-2-4", np.random.default_rng(0), None)
    rows = match_visible(data, ENCODER)
    kls = []
    for seed in range(6):
        result = train(ENCODER, get_rule("cd"), rows, VISIBLE, np.random.default_rng(seed),
                       Settings(epochs=400, lr=0.3, batch=4), probs=data.probs, backend="compiled", arrays=backend)
        kls.append(exact_quality(result.network, VISIBLE, rows, data.probs)["kl_nats"])
    return np.array(kls)


def test_cd_on_torch_learns_as_well_as_on_numpy():
    """Six seeds on each backend: the mean exact KL of torch float32 and bfloat16 within 3
    standard errors (two-sample, from the runs' spread) of numpy's, and all of them far
    below the untrained net's ln 64 = 4.16 nats (uniform over 256 visible states, 4 data)."""
    ref = _encoder_kls(None)
    for dtype in DTYPES:
        kls = _encoder_kls(_torch(dtype))
        se = np.sqrt(ref.var(ddof=1) / len(ref) + kls.var(ddof=1) / len(kls))
        assert abs(kls.mean() - ref.mean()) < 3 * se, (dtype, kls, ref)
        assert kls.mean() < 1.5 and ref.mean() < 1.5


# -- neurosim train --backend torch -----------------------------------------------------------
TRAIN = ["train", "models/encoder_424.toml", "--data", "encoder-4-2-4", "--restarts", "1", "--json"]


@pytest.mark.parametrize("rule, dtype", [("boltzmann", "float32"), ("cd", "bfloat16")])
def test_train_on_torch_says_so_and_learns(tmp_path, capsys, rule, dtype):
    """``--backend torch`` trains on the compiled engine's torch arrays; the JSON names
    the backend, device and dtype; the encoder learns (KL well under the untrained 4.16)."""
    import json

    code, out, err = run_cli(capsys, *TRAIN, "--rule", rule, "--epochs", "150", "--backend", "torch",
                             "--dtype", dtype, "--out", tmp_path / "t.toml")
    assert code == 0, err
    result = json.loads(out)
    assert (result["backend"], result["device"], result["dtype"]) == ("torch", "cpu", dtype)
    assert result["locality"] == {"reads": ["lr", "phase", "post", "pre"], "violations": 0}
    assert result["quality"]["kl_nats"] < 2.0 and (tmp_path / "t.toml").exists()


@pytest.mark.parametrize("flags, message", [
    (["--device", "cpu"], "--device chooses the torch arrays of the compiled backend; add --backend torch "
                          "(got --backend auto)"),
    (["--backend", "event", "--dtype", "bfloat16", "--device", "cpu"], "--device and --dtype choose"),
    (["--backend", "compiled", "--dtype", "float32"], "--dtype chooses"),
    (["--backend", "torch", "--dtype", "float16"], "dtype of the products must be one of 'float32', 'bfloat16', "
                                                   "got 'float16'"),
    pytest.param(["--backend", "torch", "--device", "cuda"], "neurosim: error: no CUDA device; use --device cpu",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["--backend", "torch", "NO_TORCH"], "pip install neurosim[torch]"),
])
def test_bad_backend_flags_exit_2(tmp_path, capsys, monkeypatch, flags, message):
    if "NO_TORCH" in flags:
        flags = flags[:-1]
        monkeypatch.setitem(sys.modules, "torch", None)        # `import torch` fails
    code, out, err = run_cli(capsys, *TRAIN, "--rule", "cd", *flags, "--out", tmp_path / "t.toml")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "t.toml").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_chains_on_cuda_sample_the_exact_distribution():
    net = dbn_shaped()
    chains = Chains(compile(net), np.random.default_rng(3), 8000, evidence=EVIDENCE[1], backend=_torch(device="cuda"))
    assert chains.state.device.type == "cuda"
    _kl_check(chains.sample(1, burn_in=30), net, posterior(net, EVIDENCE[1]), 1.0)


def test_backprop_on_torch_equals_numpys():
    """Backprop has no draws: its analog pass stays numpy and its batched change runs on
    torch; the trained weights equal the numpy compiled run's to float32 rounding, with
    the same messages and reads."""
    from neurosim.data import encoder_424
    from neurosim.learning.audit import ALGORITHMS

    net, data = ALGORITHMS["backprop"][1](np.random.default_rng(2)), encoder_424()
    s = Settings(epochs=3, lr=1.0, batch=3)
    ref, mine = (train(net, get_rule("backprop"), data.data, data.names, np.random.default_rng(3), s,
                       backend="compiled", arrays=a) for a in (None, _torch()))
    assert mine.ledger == ref.ledger and mine.reads == ref.reads == ["lr", "post_error", "pre"]
    np.testing.assert_allclose(mine.network.to_arrays().weights, ref.network.to_arrays().weights, rtol=0, atol=1e-6)
