"""The Helmholtz machine: wake-sleep is the registered rule, estimators agree with
enumeration, networks and files round-trip, errors name their culprit.

Statistical checks use fixed seeds and bounds derived from the sample size (see
helpers.py for ``kl_bound``); never loosen a bound to make a test pass.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, InferenceError, Network, Unit, load, posterior
from neurosim.data import shifter, shifter_entropy_nats
from neurosim.inference import all_states
from neurosim.learning import SynapseView, get_rule
from neurosim.errors import ParameterError, ValidationError
from neurosim.machines.helmholtz import (MAX_EXACT_HIDDEN, HelmholtzMachine, NotFittedError,
                                         shift_selectivity, valid_fantasy_fraction)
from helpers import empirical_kl, kl_bound, load_demo

ROOT = Path(__file__).resolve().parents[1]


def _machine(sizes=(3, 2, 2), scale=1.0, seed=0, **params):
    """A machine with random weights and biases of the given scale (no training)."""
    hm = HelmholtzMachine(sizes, init_scale=scale, random_state=seed, **params).initialize()
    rng = np.random.default_rng(seed + 100)
    for b in hm.generative_biases_ + hm.recognition_biases_:
        b[:] = rng.normal(0, scale, b.shape)
    return hm


def _copy(arrays):
    return [a.copy() for a in arrays]


# -- wake and sleep are the rule's local form, summed over the batch ---------------------
def _local_sum(rule, pre, post, post_prob, phase, lr, where):
    """Sum over cases of ``rule.local`` for every synapse pre[:, i] -> post[:, j]."""
    out = np.zeros((pre.shape[1], post.shape[1]))
    reads: set = set()
    for b in range(len(pre)):
        for i in range(pre.shape[1]):
            for j in range(post.shape[1]):
                view = SynapseView(f"{where} {i} -> {j}", reads, pre=pre[b, i], post=post[b, j],
                                   post_prob=post_prob[b, j], phase=phase, lr=lr, weight=0.0)
                out[i, j] += rule.local(view)
    return out, reads


@pytest.mark.parametrize("batch", [1, 5])
def test_wake_step_is_the_local_rule_summed_over_the_batch(batch):
    hm = _machine(learning_rate=[0.3, 0.2, 0.1])
    X = np.random.default_rng(1).integers(0, 2, (batch, 3))
    G0, b0, R0, c0 = (_copy(hm.generative_weights_), _copy(hm.generative_biases_),
                      _copy(hm.recognition_weights_), _copy(hm.recognition_biases_))
    phase = hm.wake_step(X, random_state=np.random.default_rng(2))
    rule = get_rule("wake-sleep")
    s, p = phase.states, phase.probs
    np.testing.assert_array_equal(s[0], X)
    assert phase.lr == pytest.approx([0.3 / batch, 0.2 / batch, 0.1 / batch])
    for l in range(2):
        # the predictions the rule saw are the generative model's before the update
        x = s[l + 1] @ G0[l] + b0[l]
        np.testing.assert_allclose(p[l], 1 / (1 + np.exp(-x)), rtol=0, atol=1e-15)
        pre = np.hstack([s[l + 1], np.ones((batch, 1))])
        expected, reads = _local_sum(rule, pre, s[l], p[l], "wake", phase.lr[l], "generative")
        np.testing.assert_allclose(hm.generative_weights_[l] - G0[l], expected[:-1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(hm.generative_biases_[l] - b0[l], expected[-1], rtol=0, atol=1e-12)
        assert reads <= {"pre", "post", "post_prob", "lr"}
    expected, _ = _local_sum(rule, np.ones((batch, 1)), s[2], p[2], "wake", phase.lr[2], "top bias")
    np.testing.assert_allclose(hm.generative_biases_[2] - b0[2], expected[0], rtol=0, atol=1e-12)
    # the recognition pathway does not learn while awake
    for a, b in zip(R0 + c0, hm.recognition_weights_ + hm.recognition_biases_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [1, 4])
def test_sleep_step_is_the_local_rule_summed_over_the_batch(batch):
    hm = _machine(sleep_learning_rate=[0.0, 0.25, 0.5])
    G0, b0, R0, c0 = (_copy(hm.generative_weights_), _copy(hm.generative_biases_),
                      _copy(hm.recognition_weights_), _copy(hm.recognition_biases_))
    phase = hm.sleep_step(batch, random_state=np.random.default_rng(3))
    rule = get_rule("wake-sleep")
    s, q = phase.states, phase.probs
    assert q[0] is None
    for l in range(2):
        x = s[l] @ R0[l] + c0[l]
        np.testing.assert_allclose(q[l + 1], 1 / (1 + np.exp(-x)), rtol=0, atol=1e-15)
        pre = np.hstack([s[l], np.ones((batch, 1))])
        expected, reads = _local_sum(rule, pre, s[l + 1], q[l + 1], "sleep", phase.lr[l + 1], "recognition")
        np.testing.assert_allclose(hm.recognition_weights_[l] - R0[l], expected[:-1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(hm.recognition_biases_[l] - c0[l], expected[-1], rtol=0, atol=1e-12)
        assert reads <= {"pre", "post", "post_prob", "lr"}
    for a, b in zip(G0 + b0, hm.generative_weights_ + hm.generative_biases_):
        np.testing.assert_array_equal(a, b)


def test_fit_is_wake_then_sleep_per_batch():
    """fit = shuffled batches, each a wake step then a sleep step of as many fantasies,
    all drawing from the one generator random_state_."""
    X = np.random.default_rng(4).integers(0, 2, (7, 3))
    fitted = HelmholtzMachine((3, 2, 2), n_iter=2, batch_size=3, random_state=5).fit(X)
    by_hand = HelmholtzMachine((3, 2, 2), n_iter=2, batch_size=3, random_state=5).initialize()
    rng = by_hand.random_state_
    for _ in range(2):
        order = rng.permutation(7)
        for start in range(0, 7, 3):
            batch = X[order[start:start + 3]]
            by_hand.wake_step(batch, rng)
            by_hand.sleep_step(len(batch), rng)
    for a, b in zip(fitted.generative_weights_ + fitted.recognition_weights_,
                    by_hand.generative_weights_ + by_hand.recognition_weights_):
        np.testing.assert_array_equal(a, b)
    assert fitted.n_iter_ == 2 and fitted.n_updates_ == 6


def test_same_seed_same_numbers():
    X = shifter(np.random.default_rng(0), 300).data
    a = HelmholtzMachine((32, 4, 1), n_iter=2, batch_size=10, random_state=3).fit(X)
    b = HelmholtzMachine((32, 4, 1), n_iter=2, batch_size=10, random_state=3).fit(X)
    np.testing.assert_array_equal(a.sample(50, random_state=1), b.sample(50, random_state=1))
    for x, y in zip(a.recognition_weights_, b.recognition_weights_):
        np.testing.assert_array_equal(x, y)


# -- the compiled passes draw as plain ancestral loops would -----------------------------
def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def test_compiled_passes_draw_exactly_as_layer_by_layer_loops():
    """Sampling goes through compiled.Chains; its draws are those of the plain loops (one
    uniform per unit and layer, top layer first going down, layer 1 first going up), so
    seeded numbers published before the reroute still hold."""
    hm = _machine((4, 3, 2), scale=1.5, seed=8)
    G, g, R, r = hm.generative_weights_, hm.generative_biases_, hm.recognition_weights_, hm.recognition_biases_
    rng = np.random.default_rng(5)
    down = [None, None, (rng.random((50, 2)) < _sigmoid(g[2])).astype(float)]
    for l in (1, 0):
        down[l] = (rng.random((50, g[l].size)) < _sigmoid(down[l + 1] @ G[l] + g[l])).astype(float)
    for a, b in zip(hm.sample(50, all_layers=True, random_state=np.random.default_rng(5)), down):
        np.testing.assert_array_equal(a, b)
    X = np.random.default_rng(6).integers(0, 2, (40, 4)).astype(float)
    rng, s, q = np.random.default_rng(7), X, []
    for W, c in zip(R, r):
        q.append(_sigmoid(s @ W + c))
        s = (rng.random(q[-1].shape) < q[-1]).astype(float)
    for a, b in zip(hm.recognize(X, stochastic=True, random_state=np.random.default_rng(7)), q):
        np.testing.assert_array_equal(a, b)


def test_weight_lists_are_the_samplers_weights():
    """A change in place, or an array put into a list, is what the next pass samples from."""
    hm = _machine((3, 2, 1), seed=9)
    hm.generative_biases_[2][:] = -50.0                         # in place: the top unit off
    assert not hm.sample(200, all_layers=True, random_state=0)[2].any()
    hm.generative_biases_[2] = np.array([50.0])                  # a new array: the top unit on
    assert hm.sample(200, all_layers=True, random_state=0)[2].all()
    hm.recognition_weights_[0] = np.zeros((3, 2))
    hm.recognition_biases_[0] = np.array([-50.0, 50.0])
    q = hm.recognize(np.ones((5, 3)), stochastic=True, random_state=0)[0]
    np.testing.assert_allclose(q, [[0.0, 1.0]] * 5, atol=1e-15)
    assert hm.recognition_biases_[0].base is not None             # replaced by a view of the compiled net


def test_deterministic_recognition_transform_score_and_verbose(capsys):
    """recognize(stochastic=False) is eq. 3.10's pass of probabilities, transform puts its
    layers side by side, score is the mean negative free energy, verbose prints each pass."""
    hm = _machine((4, 3, 2), seed=10)
    X = all_states(4)
    q1 = _sigmoid(X @ hm.recognition_weights_[0] + hm.recognition_biases_[0])
    q2 = _sigmoid(q1 @ hm.recognition_weights_[1] + hm.recognition_biases_[1])
    for a, b in zip(hm.recognize(X), (q1, q2)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hm.transform(X), np.hstack([q1, q2]), rtol=0, atol=1e-15)
    assert hm.n_layers_ == 3 and hm.sizes_ == [4, 3, 2]
    assert hm.score(X, n_samples=3, random_state=1) == pytest.approx(
        -hm.free_energy(X, 3, random_state=1).mean(), abs=1e-12)
    HelmholtzMachine((4, 3, 2), n_iter=2, verbose=True, random_state=0).fit(X)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["[HelmholtzMachine] pass 1", "[HelmholtzMachine] pass 2"]


# -- estimators against enumeration ----------------------------------------------------
def test_exact_log_likelihood_matches_exact_inference_on_the_network():
    hm = _machine((4, 3, 2), scale=1.5, seed=1)
    net = hm.to_network()
    X = all_states(4)
    ours = hm.exact_log_likelihood(X)
    for x, value in zip(X, ours):
        evidence = {f"v{i}": int(v) for i, v in enumerate(x)}
        assert value == pytest.approx(posterior(net, evidence).log_evidence, abs=1e-10)
    assert np.logaddexp.reduce(ours) == pytest.approx(0.0, abs=1e-12)


def test_importance_sampling_agrees_with_exact_within_its_standard_error():
    """log mean_k w_k estimates log p(x); its standard error (delta method) is
    sd(w) / (sqrt(K) mean(w)). Require agreement within 5 standard errors, plus the
    estimator's bias -se^2/2, for every pattern of a 4-3-2 machine whose recognition
    model was first trained by the sleep phase (a random proposal has heavy-tailed
    weights, whose sample standard deviation cannot be trusted)."""
    hm = _machine((4, 3, 2), scale=1.5, seed=2, sleep_learning_rate=1.0)
    for _ in range(300):
        hm.sleep_step(100)
    X = all_states(4)
    K = 20_000
    log_w = hm.log_importance_weights(X, K, random_state=np.random.default_rng(0))
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    se = w.std(axis=1, ddof=1) / (math.sqrt(K) * w.mean(axis=1))
    estimate = hm.log_likelihood_is(X, K, random_state=np.random.default_rng(0))
    exact = hm.exact_log_likelihood(X)
    assert np.all(np.abs(estimate - exact) < 5 * se + se ** 2), (estimate - exact, se)
    assert se.max() < 0.05        # the check has teeth: K is large enough to resolve 0.25 nats
    # Jensen: the free energy (mean of -log w) is an upper bound on -log p(x)
    assert np.all(-log_w.mean(axis=1) >= -exact - 5 * log_w.std(axis=1) / math.sqrt(K))


def test_ancestral_sampling_matches_the_exact_visible_marginal():
    hm = _machine((4, 3, 2), scale=1.5, seed=3)
    n = 20_000
    samples = hm.sample(n, random_state=np.random.default_rng(1))
    post = posterior(hm.to_network())               # the joint of every unit, no evidence
    visible = [u for u in post.units if u.startswith("v")]
    assert visible == [f"v{i}" for i in range(4)]
    exact_marginal = np.exp(hm.exact_log_likelihood(all_states(4)))
    counts = np.bincount(samples @ (1 << np.arange(3, -1, -1)), minlength=16) / n
    kl = float(np.sum(counts[counts > 0] * np.log(counts[counts > 0] / exact_marginal[counts > 0])))
    assert kl < kl_bound(16, n, inflation=1.0)      # independent samples: no inflation


def test_ancestral_sampling_of_all_layers_matches_the_exact_joint():
    hm = _machine((3, 2, 2), scale=2.0, seed=4)
    n = 20_000
    layers = hm.sample(n, all_layers=True, random_state=np.random.default_rng(2))
    joint = np.hstack(layers)                       # unit order of to_network: layer 0 first
    exact = posterior(hm.to_network())
    assert exact.units == hm.to_network().units
    assert empirical_kl(joint, exact) < kl_bound(2 ** 7, n, inflation=1.0)


def test_negative_control_wrong_generative_model_fails_the_bound():
    hm = _machine((3, 2, 2), scale=2.0, seed=4)
    wrong = _machine((3, 2, 2), scale=2.0, seed=4)
    wrong.generative_biases_[2] = -wrong.generative_biases_[2]
    n = 20_000
    joint = np.hstack(wrong.sample(n, all_layers=True, random_state=np.random.default_rng(2)))
    assert empirical_kl(joint, posterior(hm.to_network())) > kl_bound(2 ** 7, n, inflation=1.0)


def test_exact_log_likelihood_refuses_too_many_hidden_units():
    hm = HelmholtzMachine((5, MAX_EXACT_HIDDEN, 1), random_state=0).initialize()
    with pytest.raises(InferenceError, match=r"H = 21 hidden units .*use log_likelihood_is"):
        hm.exact_log_likelihood(np.zeros((1, 5)))


def test_no_overflow_warnings_at_large_weights():
    hm = _machine((4, 3, 2), scale=1.0, seed=5)
    for W in hm.generative_weights_ + hm.recognition_weights_:
        W *= 200.0
    for b in hm.generative_biases_ + hm.recognition_biases_:
        b[:] = np.sign(b) * 80.0
    X = all_states(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = hm.exact_log_likelihood(X)
        est = hm.log_likelihood_is(X, 50, random_state=0)
        hm.sample(100, random_state=0)
        hm.free_energy(X, 5, random_state=0)
        hm.wake_step(X, random_state=0)
        hm.sleep_step(10, random_state=0)
    assert np.all(np.isfinite(exact)) and np.all(est[np.isfinite(est)] <= 1e-9)
    assert np.logaddexp.reduce(exact) == pytest.approx(0.0, abs=1e-9)


# -- networks and model files ----------------------------------------------------------
def test_to_network_layout():
    hm = _machine((3, 2, 1), seed=6)
    net = hm.to_network(visible_names=["a", "b", "c"])
    assert net.units == ["a", "b", "c", "h1_0", "h1_1", "h2_0"]
    assert [net.unit(u).layer for u in net.units] == [0, 0, 0, 1, 1, 2]
    assert net.unit("a").role == "visible" and net.unit("a").recognition_bias is None
    assert net.unit("h1_1").bias == hm.generative_biases_[1][1]
    assert net.unit("h1_1").recognition_bias == hm.recognition_biases_[0][1]
    assert net.weight("h1_0", "c") == hm.generative_weights_[0][0, 2]
    assert net.weight("c", "h1_0", recognition=True) == hm.recognition_weights_[0][2, 0]
    assert net.weight("h2_0", "h1_1") == hm.generative_weights_[1][0, 1]
    assert net.parents("a") == ["h1_0", "h1_1"] and net.recognition_parents("h2_0") == ["h1_0", "h1_1"]
    assert not net.has_symmetric


def test_network_and_file_round_trip_exactly(tmp_path):
    hm = _machine((4, 3, 2), scale=1.7, seed=7)
    back = HelmholtzMachine.from_network(hm.to_network(visible_names=list("wxyz")))
    for name in ("generative_weights_", "generative_biases_", "recognition_weights_", "recognition_biases_"):
        for a, b in zip(getattr(hm, name), getattr(back, name)):
            np.testing.assert_array_equal(a, b)
    assert back.visible_names_ == list("wxyz")
    path = tmp_path / "hm.toml"
    back.save(path)
    loaded = HelmholtzMachine.load(path)
    assert loaded.to_network() == back.to_network() == hm.to_network(visible_names=list("wxyz"))
    assert load(path) == hm.to_network(visible_names=list("wxyz"))
    np.testing.assert_array_equal(loaded.exact_log_likelihood(all_states(4)),
                                  hm.exact_log_likelihood(all_states(4)))


def test_shipped_model_file_loads():
    net = load(ROOT / "models" / "helmholtz_shifter.toml")
    hm = HelmholtzMachine.from_network(net)
    assert hm.sizes_[0] == 32 and hm.visible_names_ == shifter(None).names
    assert net.has_recognition and len(hm.sizes_) == 3
    assert 0 < np.abs(hm.generative_weights_[0]).max() < 1.0     # small random start


def _net(units, edges):
    return Network(units, edges, name="bad")


@pytest.mark.parametrize("change, message", [
    ("no layer", r"unit 'h' has no layer"),
    ("gap", r"layers must be 0 \(visible\), 1, \.\.\., with none missing; found \[0, 2\]"),
    ("visible in layer 1", r"unit 'x' is visible in layer 1"),
    ("no recognition bias", r"hidden unit 'h' has no recognition_bias"),
    ("visible recognition bias", r"visible unit 'v' has a recognition_bias"),
    ("missing generative", r"missing generative \(directed\) edge h -> v"),
    ("missing recognition", r"missing recognition edge v -> h"),
    ("upward directed", r"directed edge v -> h goes from layer 0 to 1"),
    ("symmetric", r"symmetric edge"),
])
def test_from_network_names_what_is_wrong(change, message):
    v = Unit("v", 0.0, "visible", 0, None)
    h = Unit("h", 0.0, "hidden", 1, 0.5)
    edges = [Edge("h", "v", 1.0), Edge("v", "h", 2.0, "recognition")]
    if change == "no layer":
        h = Unit("h", 0.0, "hidden", None, 0.5)
    elif change == "gap":
        h = Unit("h", 0.0, "hidden", 2, 0.5)
    elif change == "visible in layer 1":
        edges += [Unit("x", 0.0, "visible", 1, 0.5)]
    elif change == "no recognition bias":
        h = Unit("h", 0.0, "hidden", 1, None)
    elif change == "visible recognition bias":
        v = Unit("v", 0.0, "visible", 0, 1.0)
    elif change == "missing generative":
        edges = edges[1:]
    elif change == "missing recognition":
        edges = edges[:1]
    elif change == "upward directed":
        edges = [Edge("v", "h", 1.0), edges[1]]
    elif change == "symmetric":
        edges = [Edge("h", "v", 1.0, "symmetric")]
    units = [v, h] + [e for e in edges if isinstance(e, Unit)]
    edges = [e for e in edges if isinstance(e, Edge)]
    with pytest.raises(ValidationError, match=message):
        HelmholtzMachine.from_network(_net(units, edges))


# -- parameters and inputs -------------------------------------------------------------
@pytest.mark.parametrize("params, message", [
    (dict(layer_sizes=(32,)), r"at least 2 layers"),
    (dict(layer_sizes=(32, 0, 1)), r"layer_sizes\[1\] must be a positive integer, got 0"),
    (dict(layer_sizes="32-24"), r"layer_sizes must be a sequence"),
    (dict(learning_rate=-0.1), r"learning_rate must be finite and non-negative, got -0.1"),
    (dict(learning_rate=[0.1, 0.2]), r"learning_rate has 2 entries for 3 layers"),
    (dict(sleep_learning_rate=float("nan")), r"sleep_learning_rate must be finite"),
    (dict(learning_rate="fast"), r"learning_rate must be a non-negative number"),
    (dict(batch_size=0), r"batch_size must be >= 1, got 0"),
    (dict(n_iter=2.5), r"n_iter must be an integer, got 2.5"),
    (dict(init_scale=-1), r"init_scale must be >= 0.0, got -1"),
    (dict(init_prior=1.0), r"init_prior must be a probability strictly between 0 and 1"),
    (dict(init_prior=(0.1, 0.2, 0.3)), r"init_prior has 3 entries for 2 hidden layers"),
    (dict(init_prior="sparse"), r"init_prior must be a probability"),
    (dict(warmup=-1), r"warmup must be >= 0, got -1"),
    (dict(warmup=1.5), r"warmup must be an integer, got 1.5"),
    (dict(random_state="seed"), r"random_state must be None, a non-negative integer"),
])
def test_bad_parameters_are_named_at_fit(params, message):
    hm = HelmholtzMachine(**{"layer_sizes": (4, 2, 1), **params})   # __init__ only stores
    with pytest.raises(ParameterError, match=message):
        hm.fit(np.zeros((3, 4)))


@pytest.mark.parametrize("X, message", [
    (np.full((2, 4), 2), r"X\[0, 0\] = 2.0 \(unit 'v0'\): states must be 0 or 1"),
    (np.zeros((2, 5)), r"X has 5 columns; the machine has 4 visible units"),
    (np.zeros((2, 2, 2)), r"X must be a 2-D array of shape \(n_cases, 4\)"),
    (np.zeros((0, 4)), r"X has no rows"),
])
def test_bad_data_is_named(X, message):
    with pytest.raises(ParameterError, match=message):
        HelmholtzMachine((4, 2, 1)).fit(X)


def test_unfitted_machine_says_so():
    hm = HelmholtzMachine((4, 2, 1))
    for call in (lambda: hm.sample(3), lambda: hm.to_network(), lambda: hm.recognize(np.zeros((1, 4)))):
        with pytest.raises(NotFittedError, match="no weights yet"):
            call()
    assert not hasattr(hm, "generative_weights_")


def test_get_set_params_and_repr():
    hm = HelmholtzMachine((4, 2, 1), batch_size=5)
    assert hm.get_params()["batch_size"] == 5
    assert hm.set_params(learning_rate=0.2) is hm and hm.learning_rate == 0.2
    assert repr(hm) == "HelmholtzMachine(layer_sizes=(4, 2, 1), learning_rate=0.2, batch_size=5)"
    with pytest.raises(ParameterError, match="unknown parameter 'lr'"):
        hm.set_params(lr=1)


def test_init_prior_sets_the_hidden_biases_of_both_models():
    hm = HelmholtzMachine((4, 3, 2), init_prior=(0.02, 0.5), random_state=0).initialize()
    np.testing.assert_array_equal(hm.generative_biases_[0], 0.0)
    np.testing.assert_allclose(hm.generative_biases_[1], math.log(0.02 / 0.98), rtol=1e-12)
    np.testing.assert_allclose(hm.recognition_biases_[0], math.log(0.02 / 0.98), rtol=1e-12)
    np.testing.assert_array_equal(hm.generative_biases_[2], 0.0)
    np.testing.assert_array_equal(hm.recognition_biases_[1], 0.0)
    # the default draws the same weights as before the parameter existed: biases add no draws
    plain = HelmholtzMachine((4, 3, 2), random_state=0).initialize()
    for a, b in zip(hm.generative_weights_ + hm.recognition_weights_,
                    plain.generative_weights_ + plain.recognition_weights_):
        np.testing.assert_array_equal(a, b)
    assert all(not b.any() for b in plain.generative_biases_ + plain.recognition_biases_)
    one = HelmholtzMachine((4, 3, 2), init_prior=0.1, random_state=0).initialize()
    assert np.allclose(np.concatenate(one.generative_biases_[1:]), math.log(0.1 / 0.9))


def test_warmup_holds_the_hidden_generative_model_then_releases_it():
    """During warmup the wake phase changes only the synapses into the visible layer
    (rate 0 above, the rule unchanged); the sleep phase trains every recognition synapse."""
    X = shifter(np.random.default_rng(0), 60).data
    hm = HelmholtzMachine((32, 4, 2), learning_rate=0.3, batch_size=10, warmup=3,
                          init_prior=(0.1, 0.5), random_state=1).initialize()
    upper = _copy(hm.generative_weights_[1:] + hm.generative_biases_[1:])
    G0, R0 = _copy(hm.generative_weights_[:1]), _copy(hm.recognition_weights_)
    hm.partial_fit(X[:30])                          # 3 updates, all inside the warmup
    assert hm.n_updates_ == 3
    for a, b in zip(upper, hm.generative_weights_[1:] + hm.generative_biases_[1:]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(G0[0], hm.generative_weights_[0])
    assert all(not np.array_equal(a, b) for a, b in zip(R0, hm.recognition_weights_))
    phase = hm.wake_step(X[:10], random_state=2)    # n_updates_ == warmup: everything learns
    assert phase.lr == pytest.approx([0.03, 0.03, 0.03])
    assert not np.array_equal(upper[0], hm.generative_weights_[1])
    assert not np.array_equal(upper[-1], hm.generative_biases_[-1])
    held = HelmholtzMachine((32, 4, 2), learning_rate=0.3, warmup=5, random_state=1).initialize()
    assert held.wake_step(X[:10], random_state=2).lr == pytest.approx([0.03, 0.0, 0.0])


# -- the shifter -----------------------------------------------------------------------
def test_short_shifter_training_improves_held_out_likelihood():
    rng = np.random.default_rng(0)
    train, test = shifter(rng, 20_000), shifter(rng, 500)
    hm = HelmholtzMachine((32, 16, 1), learning_rate=0.3, batch_size=10, n_iter=1, random_state=1)
    hm.initialize()
    before = -hm.log_likelihood_is(test, 50, random_state=2).mean()
    valid_before = valid_fantasy_fraction(hm, 500, np.random.default_rng(3))
    hm.fit(train)
    after = -hm.log_likelihood_is(test, 50, random_state=2).mean()
    assert before > 20 and after < 10.0, (before, after)
    assert after > shifter_entropy_nats() - 0.1      # no model beats the entropy (up to IS noise)
    assert hm.visible_names_ == train.names
    assert valid_before < 0.01 < 0.05 < valid_fantasy_fraction(hm, 500, np.random.default_rng(3))


class _Stub:
    """A stand-in machine whose recognition probabilities and fantasies are given."""

    def __init__(self, q=None, fantasies=None):
        self.q, self.fantasies = q, fantasies

    def recognize(self, X, stochastic=True, random_state=None):
        return self.q

    def sample(self, n, random_state=None):
        return self.fantasies[:n]


def test_shift_selectivity_finds_the_best_unit_of_any_layer():
    labels = np.array([0, 0, 1, 1])
    q1 = np.array([[0.5, 0.9], [0.5, 0.7], [0.5, 0.3], [0.5, 0.1]])    # unit 1: 0.8 - 0.2
    q2 = np.array([[0.1], [0.2], [0.95], [0.95]])                        # -0.8
    sel = shift_selectivity(_Stub([q1, q2]), np.zeros((4, 32)), labels)
    assert (sel.layer, sel.unit) == (2, 0) and sel.difference == pytest.approx(-0.8)
    assert sel.best == pytest.approx(0.8) and sel.labels == (0, 1)
    np.testing.assert_allclose(sel.by_layer[0], [0.0, 0.6])
    with pytest.raises(ParameterError, match="exactly two values"):
        shift_selectivity(_Stub([q1]), np.zeros((4, 32)), np.array([0, 1, 2, 2]))


def test_valid_fantasy_fraction_counts_shift_patterns():
    good = shifter(np.random.default_rng(0), 3).data
    bad = good.copy()
    bad[:, 0] = 1 - bad[:, 0]                       # row 0 no longer copies into row 1
    fantasies = np.vstack([good, bad[:1]])
    assert valid_fantasy_fraction(_Stub(fantasies=fantasies), 4, 0) == 0.75


# -- demos (short runs) ----------------------------------------------------------------
def test_wake_sleep_averagingload_demo(tmp_path, capsys):
    code = load_demo("wake_sleep_averaging").main(["--out", str(tmp_path), "--steps", "600", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    exact = out["distributions"]["exact posterior P"]
    learned = out["distributions"]["sleep-phase recognition Q"]
    assert exact["mass on both-or-neither"] < 0.05
    assert learned["mass on both-or-neither"] > 0.4           # the vague factorial average
    assert Path(out["figures"][0]).stat().st_size > 10_000


def test_helmholtz_shifter_demo_runs(tmp_path, capsys):
    code = load_demo("helmholtz_shifter").main(["--out", str(tmp_path), "--iterations", "300",
                                            "--evaluations", "2", "--restarts", "2", "--screen",
                                            "100", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    restarts = out["curve"]["restarts"]      # two machines to 1,000 cases, the lower NLL kept
    nlls = restarts["held-out NLL at the choice (nats)"]
    assert restarts["chosen after cases"] == 1000 and len(nlls) == 2
    assert restarts["chosen"] == int(np.argmin(nlls))
    assert out["curve"]["cases"] == [1000, 1500, 3000]
    assert out["curve"]["held-out NLL (nats)"][0] == nlls[restarts["chosen"]]
    assert out["data entropy (nats)"] == pytest.approx(shifter_entropy_nats())
    assert 0 <= out["valid fantasy fraction"] <= 1
    assert out["KL(data || model) (nats)"] > 0
    for figure in out["figures"]:
        assert Path(figure).stat().st_size > 10_000
    assert HelmholtzMachine.load(out["model"]).visible_names_[:2] == ["p00", "p01"]


def test_wake_sleep_keeps_the_pair_solution_and_learns_the_direction():
    """Fast version of the goals from the diagnostic start (first layer = the 16 shifted
    pairs): wake-sleep keeps it, and the top unit becomes shift-selective."""
    demo = load_demo("helmholtz_shifter")
    rng = np.random.default_rng(0)
    hm = demo.oracle_machine(demo.ORACLE_SETTINGS, np.random.default_rng(1))
    for _ in range(5):
        hm.partial_fit(shifter(rng, 10_000))
    test = shifter(rng, 1000)
    selectivity = np.abs(shift_selectivity(hm, test.data, test.labels).by_layer[-1]).max()
    assert selectivity > 0.5
    assert valid_fantasy_fraction(hm, 1000, np.random.default_rng(2)) > 0.5


@pytest.mark.slow
def test_demo_defaults_meet_both_shifter_goals_from_a_random_start(tmp_path, capsys):
    """The issue's goals, from random weights (no oracle): at least half the fantasies
    are valid shift patterns and a top unit's recognition probability differs by 0.8
    between left and right shifts (ceiling about 0.84). The restart is chosen by
    held-out NLL, never by the selectivity measured here. About a minute."""
    code = load_demo("helmholtz_shifter").main(["--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and not out["settings"]["oracle start"]
    assert out["valid fantasy fraction"] >= 0.5
    assert out["shift selectivity"]["top unit"] >= 0.8
    assert out["held-out NLL (nats, importance sampling, K=100)"] < 5.0
    restarts = out["curve"]["restarts"]
    nlls = restarts["held-out NLL at the choice (nats)"]
    assert restarts["candidates"] == 4 and restarts["chosen"] == int(np.argmin(nlls))
