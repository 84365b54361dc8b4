"""BoltzmannMachine: eq. 5 through the rule's local form, Gibbs sampling and the exact
gradient against enumeration, CD-k, errors, files, and the 4-2-4 encoder."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, InferenceError, Network, Unit, ValidationError, load
from neurosim.compiled import compile as compile_
from neurosim.data import bars_stripes, encoder_424
from neurosim.inference import all_states, log_prob, posterior
from neurosim.learning import SynapseView, get_rule
from neurosim.population import Population, Projection
from neurosim.machines.boltzmann import BoltzmannMachine, ParameterError, Update
from helpers import empirical_kl, kl_bound, random_boltzmann, load_demo

ROOT = Path(__file__).resolve().parents[1]
ENCODER = ROOT / "models" / "encoder_424.toml"


def _rbm(rng, n_visible, n_hidden, scale=1.0):
    vis = [f"v{i}" for i in range(n_visible)]
    hid = [f"h{j}" for j in range(n_hidden)]
    units = [Unit(v, float(rng.normal(0, scale)), "visible") for v in vis]
    units += [Unit(h, float(rng.normal(0, scale)), "hidden") for h in hid]
    edges = [Edge(v, h, float(rng.normal(0, scale)), "symmetric") for v in vis for h in hid]
    return Network(units, edges, name="rbm")


def _rows(rng, m, n):
    return rng.integers(0, 2, (m, n))


# -- the learning rule -----------------------------------------------------------------
@pytest.mark.parametrize("procedure", ["boltzmann", "cd", "pcd"])
def test_weight_change_is_the_sum_of_the_local_rule(procedure):
    """One batch: the machine's change of every synapse (both directions of each symmetric
    edge) and every bias equals the rule's LOCAL form summed over the same states."""
    rng = np.random.default_rng(11)
    net = random_boltzmann(rng, 3, 3, density=0.8) if procedure == "boltzmann" else _rbm(rng, 4, 3)
    params = dict(procedure=procedure, learning_rate=0.05, n_chains=7, positive_sweeps=2,
                  negative_sweeps=3, k=2, random_state=5)
    bm = BoltzmannMachine(net, **params)
    X = _rows(rng, 5, len([u for u in net.unit_list() if u.role == "visible"]))
    upd = bm.compute_update(X)
    st = bm.last_statistics_
    rule = get_rule(st["rule"])
    assert st["rule"] == {"boltzmann": "boltzmann", "cd": "cd", "pcd": "pcd"}[procedure]
    reads: set[str] = set()

    def local_sum(i, j, pre_of, weight):
        total = 0.0
        for phase in ("positive", "negative"):
            S, P = st[phase], st[f"{phase}_prob"]
            part = sum(rule.local(SynapseView(f"synapse {i} -> {j}", reads, pre=pre_of(S, c), post=S[c, j],
                                              phase=phase, lr=st["lr"], weight=weight, acc={},
                                              post_prob=P[c, j]))
                       for c in range(len(S)))
            total += part / len(S)
        return total

    n_synapses = 0
    for pre, post, _ in net.synapses():
        i, j = net.index(pre), net.index(post)
        assert abs(local_sum(i, j, lambda S, c: S[c, i], bm.weights_[i, j]) - upd.weights[i, j]) <= 1e-12
        n_synapses += 1
    assert n_synapses == 2 * len(net.edges)
    for j in range(net.n_units):
        assert abs(local_sum("bias", j, lambda S, c: 1.0, bm.biases_[j]) - upd.biases[j]) <= 1e-12
    assert reads <= {"pre", "post", "phase", "lr"}
    # partial_fit applies exactly this change (no momentum, no decay), and writes it back
    # into the network's two synapses of each edge
    twin = BoltzmannMachine(net, **params).partial_fit(X)
    arr = net.to_arrays()
    np.testing.assert_allclose(twin.weights_, np.where(arr.symmetric, arr.weights, 0) + upd.weights,
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(twin.biases_, arr.bias + upd.biases, rtol=0, atol=1e-15)
    trained = twin.to_network()
    for e in net.edges:
        i, j = net.index(e.source), net.index(e.target)
        assert trained.weight(e.source, e.target) == trained.weight(e.target, e.source) == twin.weights_[i, j]


def test_persistent_chains_carry_over_and_restarted_ones_do_not():
    """persistent=True: the negative phase's states are the chains the next update starts
    from (and save/load keeps them); persistent=False leaves ``chains_`` alone."""
    net, X = load(ENCODER), encoder_424().data
    bm = BoltzmannMachine(net, n_chains=6, negative_sweeps=1, random_state=0)
    bm.partial_fit(X)
    first = bm.chains_.copy()
    assert np.array_equal(first, bm.last_statistics_["negative"])
    bm.partial_fit(X)
    assert np.array_equal(bm.chains_, bm.last_statistics_["negative"]) and not np.array_equal(bm.chains_, first)
    fresh = BoltzmannMachine(net, n_chains=6, persistent=False, anneal=[2.0], random_state=0)
    fresh.compute_update(X)
    start = fresh.chains_.copy()
    fresh.partial_fit(X)
    assert np.array_equal(fresh.chains_, start) and fresh.last_statistics_["negative"].shape == (6, 10)


def test_momentum_and_weight_decay():
    rng = np.random.default_rng(2)
    net = _rbm(rng, 3, 2)
    X = _rows(rng, 4, 3)
    plain = BoltzmannMachine(net, procedure="exact", learning_rate=0.1)
    g1 = plain.compute_update(X)
    bm = BoltzmannMachine(net, procedure="exact", learning_rate=0.1, momentum=0.5, weight_decay=0.01)
    bm.partial_fit(X)
    W0 = plain.weights_
    np.testing.assert_allclose(bm.weights_, W0 + g1.weights - 0.1 * 0.01 * W0, atol=1e-15)
    v1 = bm.weights_ - W0
    g2 = bm.compute_update(X)
    W1 = bm.weights_.copy()
    bm.partial_fit(X)
    np.testing.assert_allclose(bm.weights_, W1 + 0.5 * v1 + g2.weights - 0.1 * 0.01 * W1, atol=1e-14)


# -- sampling against enumeration ------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_free_running_gibbs_matches_exact(seed):
    """Independent chains (hidden-hidden and visible-visible edges included) sample the
    joint of eq. 3: KL(empirical || exact) within the G-test bound for independent draws."""
    net = random_boltzmann(np.random.default_rng(seed), 4, 3, density=0.7)
    bm = BoltzmannMachine(net, random_state=seed, anneal=[3.0, 2.0])
    n = 20_000
    samples = bm.sample(n, n_sweeps=30, visible_only=False)
    exact = posterior(net)
    assert samples.dtype == np.int8 and samples.shape == (n, 7)
    assert empirical_kl(samples, exact) < kl_bound(2 ** 7, n, inflation=1.0)
    visible = bm.sample(n, n_sweeps=30)
    states, log_pv = bm.visible_log_probs()
    counts = np.bincount(bm._codes(visible), minlength=16) / n
    kl = float(np.sum(counts[counts > 0] * (np.log(counts[counts > 0]) - log_pv[counts > 0])))
    assert kl < kl_bound(16, n, inflation=1.0)


def test_weights_set_on_the_machine_reach_the_compiled_chains(monkeypatch):
    """The machine compiles its net once, whatever the number of minibatches, and its
    current weights (changed by training, or set as ``load`` sets them) are the ones its
    chains sample: the samples fit the exact joint of ``network_``, not of the start net."""
    import neurosim.machines.boltzmann as module

    calls = []
    monkeypatch.setattr(module, "compile", lambda *a, **k: calls.append(a) or compile_(*a, **k))
    rng = np.random.default_rng(3)
    start = random_boltzmann(rng, 4, 3, density=0.7)
    bm = BoltzmannMachine(start, batch_size=2, n_iter=3, n_chains=5, random_state=0).fit(_rows(rng, 8, 4))
    assert len(calls) == 1 and bm.n_iter_ == 12
    assert [c.tolist() for c in bm.colour_classes_] == [s.index.tolist() for s in compile_(start).plan().steps]
    W = np.where(bm.edge_mask_, rng.normal(0, 1.5, bm.weights_.shape), 0.0)
    bm.weights_, bm.biases_ = np.triu(W, 1) + np.triu(W, 1).T, rng.normal(0, 1, 7)
    samples = bm.sample(20_000, n_sweeps=30, visible_only=False)
    assert empirical_kl(samples, posterior(bm.network_)) < kl_bound(2 ** 7, 20_000, inflation=1.0)
    assert empirical_kl(samples, posterior(start)) > kl_bound(2 ** 7, 20_000, inflation=1.0)


def test_negative_control_wrong_net_fails_the_bound():
    net = random_boltzmann(np.random.default_rng(0), 4, 3, density=0.7)
    samples = BoltzmannMachine(net, random_state=0).sample(20_000, n_sweeps=30, visible_only=False)
    wrong = Network([Unit(u.name, u.bias + 0.3, u.role) for u in net.unit_list()], net.edges)
    assert empirical_kl(samples, posterior(wrong)) > kl_bound(2 ** 7, 20_000, inflation=1.0)


def test_transform_exact_and_gibbs_agree_with_posterior():
    rng = np.random.default_rng(4)
    net = random_boltzmann(rng, 3, 3, density=0.9)          # hidden-hidden edges
    bm = BoltzmannMachine(net, n_chains=2000, random_state=1)
    X = _rows(rng, 4, 3)
    exact = bm.transform(X, method="exact")
    for row, marg in zip(X, exact):
        post = posterior(net, {f"v{i}": int(x) for i, x in enumerate(row)}).marginals()
        np.testing.assert_allclose(marg, [post[h] for h in ("h0", "h1", "h2")], rtol=0, atol=1e-12)
    gibbs = bm.transform(X, method="gibbs", n_sweeps=20)
    # each entry averages 2000 chains' conditional probabilities: SE <= 0.5 / sqrt(2000) = 0.011
    np.testing.assert_allclose(gibbs, exact, atol=0.05)
    rbm = _rbm(rng, 4, 3)
    bm = BoltzmannMachine(rbm)
    Y = _rows(rng, 3, 4)
    closed = bm.transform(Y)
    for row, marg in zip(Y, closed):
        post = posterior(rbm, {f"v{i}": int(x) for i, x in enumerate(row)}).marginals()
        np.testing.assert_allclose(marg, [post[f"h{j}"] for j in range(3)], rtol=0, atol=1e-12)


# -- exact quantities ------------------------------------------------------------------
def test_exact_quantities_agree_with_inference_exact():
    rng = np.random.default_rng(6)
    net = random_boltzmann(rng, 4, 3, density=0.8)
    bm = BoltzmannMachine(net)
    S = all_states(7)
    p = np.exp(log_prob(net, S))
    codes = (S[:, :4].astype(int) << np.arange(3, -1, -1)).sum(1)
    pv = np.bincount(codes, weights=p, minlength=16)
    states, log_pv = bm.visible_log_probs()
    np.testing.assert_array_equal(states, all_states(4))
    np.testing.assert_allclose(log_pv, np.log(pv), rtol=0, atol=1e-12)
    X = _rows(rng, 6, 4)
    assert bm.exact_log_likelihood(X) == pytest.approx(np.log(pv[(X << np.arange(3, -1, -1)).sum(1)]).mean(),
                                                       abs=1e-12)
    rows, probs = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1]]), np.array([0.3, 0.5, 0.2])
    kl = 0.5 * math.log(0.5 / pv[0b1001]) + 0.5 * math.log(0.5 / pv[0b0110])
    assert bm.exact_kl(rows, probs) == pytest.approx(kl, abs=1e-12)


def test_exact_gradient_matches_finite_differences():
    rng = np.random.default_rng(8)
    net = random_boltzmann(rng, 3, 3, density=0.9)
    bm = BoltzmannMachine(net)
    X = _rows(rng, 5, 3)
    g = bm.exact_gradient(X)
    assert np.array_equal(g.weights, g.weights.T)
    W0, b0, eps = bm.weights_.copy(), bm.biases_.copy(), 1e-5

    def ll(W, b):
        bm.weights_, bm.biases_ = W, b
        return bm.exact_log_likelihood(X)

    for i, j in np.argwhere(np.triu(bm.edge_mask_, 1)):
        E = np.zeros_like(W0)
        E[i, j] = E[j, i] = eps
        fd = (ll(W0 + E, b0) - ll(W0 - E, b0)) / (2 * eps)
        assert g.weights[i, j] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    for i in range(net.n_units):
        e = np.zeros_like(b0)
        e[i] = eps
        fd = (ll(W0, b0 + e) - ll(W0, b0 - e)) / (2 * eps)
        assert g.biases[i] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    assert np.all(g.weights[~bm.edge_mask_] == 0)


@pytest.mark.parametrize("k", [1, 2])
def test_expected_cd_update_is_the_mean_of_cd_update(k):
    rng = np.random.default_rng(10)
    bm = BoltzmannMachine(_rbm(rng, 4, 3), learning_rate=1.0, random_state=3)
    X = _rows(rng, 6, 4)
    expected = bm.expected_cd_update(X, k).vector()
    draws = np.array([bm.cd_update(X, k).vector() for _ in range(4000)])
    mean, se = draws.mean(axis=0), draws.std(axis=0) / math.sqrt(len(draws))
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-12)   # each |z| > 5: p < 6e-7


def test_cd1_improves_the_exact_log_likelihood():
    """CD-1 (eq. 6) on a 9-4 RBM and 3 x 3 bars and stripes, fixed seed."""
    ds = bars_stripes(size=3)
    X = np.repeat(ds.data, np.rint(ds.probs * 16).astype(int), axis=0)
    net = _rbm(np.random.default_rng(0), 9, 4, scale=0.1)
    net = Network([Unit(u.name, 0.0, u.role) for u in net.unit_list()], net.edges)
    bm = BoltzmannMachine(net, procedure="cd", k=1, learning_rate=0.1, batch_size=8, n_iter=500,
                          random_state=0)
    before = BoltzmannMachine(net).exact_log_likelihood(X)
    after = bm.fit(X).exact_log_likelihood(X)
    assert before == pytest.approx(-9 * math.log(2), abs=0.05)
    assert after > before + 1.0
    pcd = BoltzmannMachine(net, procedure="pcd", k=1, learning_rate=0.1, batch_size=8, n_iter=1000,
                           n_chains=50, random_state=0).fit(X)
    assert pcd.exact_log_likelihood(X) > before + 1.0


# -- the 4-2-4 encoder -----------------------------------------------------------------
def test_encoder_model_file():
    net = load(ENCODER)
    assert net.units == [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)] + ["h0", "h1"]
    assert all(e.kind == "symmetric" for e in net.edges) and len(net.edges) == 29
    assert not any({e.source[0], e.target[0]} == {"a", "b"} for e in net.edges)
    assert encoder_424().names == net.units[:8]


def test_encoder_learning_improves_fast():
    demo = load_demo("boltzmann_encoder")
    run = demo.train(iterations=300, seed=1, check=300, max_restarts=0)
    assert run["kl"][0] == pytest.approx(8 * math.log(2) - math.log(4), abs=1e-9)   # all weights 0
    assert run["kl"][-1] < 1.5 and run["kl"][-1] < run["kl"][0] - 2.5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encoder_reaches_kl_below_0_1_with_the_demo_settings(seed):
    demo = load_demo("boltzmann_encoder")
    run = demo.train(seed=seed)
    assert run["kl"][-1] <= 0.1
    data = run["data"]
    codes = demo.hidden_codes(run["machine"].to_network(), data.data, data.names)
    assert demo.distinct_corners(codes["given a and b"]) and demo.distinct_corners(codes["given a"])


def test_encoder_demo_runs(tmp_path, capsys):
    code = load_demo("boltzmann_encoder").main(["--iterations", "120", "--check", "100", "--max-restarts", "0",
                                            "--out", str(tmp_path), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["history"]["updates"][-1] == 120
    assert len(result["codes"]["given a"]) == 4
    for figure in result["figures"]:
        assert 10_000 < Path(figure).stat().st_size < 200_000


def test_cd_gradient_angle_demo_runs(tmp_path, capsys):
    code = load_demo("cd_gradient_angle").main(["--iterations", "60", "--checkpoints", "2", "--minibatches", "5",
                                            "--out", str(tmp_path), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    cd1 = result["runs"]["CD-1"]
    assert cd1["updates"] == [0, 60] and len(cd1["angles"]) == 2
    assert 0 <= cd1["angles"][0]["angle_expected_update"] <= 180
    for figure in result["figures"]:
        assert 10_000 < Path(figure).stat().st_size < 200_000


# -- estimator conventions, errors, files ----------------------------------------------
def test_init_stores_parameters_only():
    net = load(ENCODER)
    bm = BoltzmannMachine(net, learning_rate=-1, n_chains="many")     # not validated yet
    assert bm.learning_rate == -1 and bm.network is net
    assert not hasattr(bm, "weights_")
    with pytest.raises(ParameterError, match="learning_rate must be > 0.0, got -1"):
        bm.fit(encoder_424().data)


def test_same_seed_same_numbers_and_one_generator():
    net, X = load(ENCODER), encoder_424().data
    a = BoltzmannMachine(net, n_iter=20, random_state=7).fit(X)
    b = BoltzmannMachine(net, n_iter=20, random_state=7).fit(X)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    gen = np.random.default_rng(7)
    c = BoltzmannMachine(net, n_iter=20, random_state=gen).fit(X)
    assert c.random_state_ is gen
    np.testing.assert_array_equal(c.weights_, a.weights_)
    assert net == load(ENCODER)                                      # the given net is untouched


def _directed():
    return Network([Unit("v", role="visible"), Unit("h")], [Edge("h", "v", 1.0)])


def _two_visible_23_hidden():
    units = [Unit("v0", role="visible")] + [Unit(f"h{i}") for i in range(22)]
    return Network(units, [Edge("v0", "h0", 0.1, "symmetric")])


@pytest.mark.parametrize("params, match", [
    (dict(learning_rate=0), "learning_rate must be > 0.0, got 0"),
    (dict(learning_rate=float("nan")), "learning_rate must be finite"),
    (dict(n_iter=0), "n_iter must be >= 1, got 0"),
    (dict(n_iter=2.5), "n_iter must be an integer, got 2.5"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(n_chains=True), "n_chains must be an integer, got True"),
    (dict(positive_sweeps=0), "positive_sweeps must be >= 1"),
    (dict(momentum=1.0), "momentum must be < 1.0, got 1.0"),
    (dict(weight_decay=-0.1), "weight_decay must be >= 0.0"),
    (dict(procedure="sgd"), "procedure must be one of boltzmann, cd, pcd, exact, got 'sgd'"),
    (dict(anneal=[4, 0]), "anneal temperature 0 must be > 0.0"),
    (dict(anneal="hot"), "anneal must be a sequence of temperatures"),
    (dict(random_state="seed"), "random_state must be None, a non-negative int"),
    (dict(persistent="yes"), "persistent must be True or False"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ParameterError, match=match):
        BoltzmannMachine(load(ENCODER), **params).fit(encoder_424().data)


def test_bad_networks_and_data_are_named():
    X = encoder_424().data
    with pytest.raises(ValidationError, match="edge h -> v is directed"):
        BoltzmannMachine(_directed()).fit([[1]])
    with pytest.raises(ValidationError, match="no visible units"):
        BoltzmannMachine(Network([Unit("a"), Unit("b")], [Edge("a", "b", 1.0, "symmetric")])).fit([[1]])
    with pytest.raises(ValidationError, match="edge a0 <-> a1 joins two visible units.*RBM-shaped"):
        BoltzmannMachine(load(ENCODER), procedure="cd").fit(X)
    with pytest.raises(ValidationError, match="unequal synapses"):
        BoltzmannMachine(Network([Unit("v", role="visible"), Unit("h")],
                                 [Edge("v", "h", 1.0, "symmetric", weight_reverse=2.0)])).fit([[1]])
    bm = BoltzmannMachine(load(ENCODER))
    with pytest.raises(ParameterError, match=r"X\[1, 2\] = 0.5 \(unit 'a2'\): states must be 0 or 1"):
        bm.fit(np.where(X == 1, 1.0, 0.0) + np.pad([[0, 0, 0.5]], ((1, 2), (0, 5))))
    with pytest.raises(ParameterError, match="X has 3 columns; the machine has 8 visible units"):
        bm.fit(X[:, :3])
    with pytest.raises(ParameterError, match=r"shape \(n_cases, 8\), got shape \(8,\)"):
        bm.fit(X[0])
    with pytest.raises(ParameterError, match="data_probs must sum to 1"):
        bm.exact_kl(X, [0.5] * 4)
    with pytest.raises(ValidationError, match="cd_update needs an RBM-shaped network"):
        bm.cd_update(X)
    softmax = Network.from_populations([Population("v", ("v0", "v1"), np.zeros(2), "visible"),
                                        Population("y", ("y0", "y1", "y2"), np.zeros(3), activation="softmax")],
                                       [Projection("v<->y", "v", "y", np.zeros((2, 3)), "symmetric")])
    with pytest.raises(ValidationError, match="population 'y' of .* is softmax: a Boltzmann machine's units are "
                                              r"logistic \(eq. 1\)"):
        BoltzmannMachine(softmax).fit([[1, 0]])
    with pytest.raises(InferenceError, match="23 units .* over the limit of 22"):
        BoltzmannMachine(_two_visible_23_hidden()).exact_log_likelihood([[1]])


def test_save_load_round_trip(tmp_path):
    net, X = load(ENCODER), encoder_424().data
    bm = BoltzmannMachine(net, n_iter=30, learning_rate=0.5, random_state=0).fit(np.tile(X, (5, 1)))
    path = tmp_path / "trained.toml"
    bm.save(path)
    back = BoltzmannMachine.load(path)
    np.testing.assert_array_equal(back.weights_, bm.weights_)
    np.testing.assert_array_equal(back.biases_, bm.biases_)
    assert back.to_network() == bm.to_network()
    assert back.exact_kl(X, [0.25] * 4) == bm.exact_kl(X, [0.25] * 4)
    assert isinstance(bm.exact_gradient(X), Update)
