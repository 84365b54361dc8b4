"""The deep Boltzmann machine: doubled pretraining, mean-field, persistent chains, exact scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurosim import Network
from neurosim.compiled import bipartite
from neurosim.compiled.bipartite import CD, Block
from neurosim.errors import InferenceError, ParameterError, ValidationError
from neurosim.inference import exact
from neurosim.inference.factorial import kl_q_p
from neurosim.machines import DeepBoltzmannMachine
from neurosim.machines.dbm import ais_log_partition, odd_summed_out
from neurosim.machines.dbn_train import RBM_M, Recipe, train_rbm_layer
from neurosim.numerics import logsumexp, sigmoid
from neurosim.population import Population, Projection


def random_dbm(layers, scale=1.0, seed=0, **params) -> DeepBoltzmannMachine:
    """A DBM with random weights ``scale N(0, 1)`` and biases ``0.5 N(0, 1)``."""
    rng = np.random.default_rng(seed)
    names = ["v"] + [f"h{l}" for l in range(1, len(layers))]
    pops = [Population(p, tuple(f"{p}_{k}" for k in range(n)), 0.5 * rng.standard_normal(n),
                       "visible" if l == 0 else "hidden", l) for l, (p, n) in enumerate(zip(names, layers))]
    projs = [Projection(f"{a}<->{b}", a, b, scale * rng.standard_normal((m, n)), "symmetric")
             for a, b, m, n in zip(names[:-1], names[1:], layers[:-1], layers[1:])]
    return DeepBoltzmannMachine.from_network(Network.from_populations(pops, projs), random_state=seed, **params)


def binary(n, d, seed=1):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype(np.float32)


# -- pretraining: the doubling ------------------------------------------------------------------
def _kernel_and_reference(cd: CD, reference, seed=3):
    """Three CD-1 updates by the kernel and by ``reference`` (a transcription of Salakhutdinov's
    code) from the same arrays and the same random numbers."""
    rng = np.random.default_rng(seed)
    W, b, c = (0.3 * rng.standard_normal(s).astype(np.float32) for s in ((7, 5), 7, 5))
    V = binary(12, 7, seed)
    ours = Block(W.copy(), b.copy(), c.copy())
    theirs = {"W": W.copy(), "b": b.copy(), "c": c.copy()}
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(3):
        bipartite.step(ours, V, cd, 0.1, r1, weight_decay=0.01)
        reference(theirs, V, r2)
    for name in "Wbc":
        assert np.array_equal(getattr(ours, name), theirs[name]), name


def _update(p, V, h0, v1, h1, lr=0.1, decay=0.01):
    """``rbm.m``'s change (the DBN's bias sums), weight cost on the weights, no momentum, in the
    kernel's arithmetic order (as tests/test_bipartite.py's transcription of rbm.m)."""
    rate = lr / len(V)
    pos_neg = np.vstack([h0, h1])
    pos_neg[:len(V)] *= rate
    pos_neg[len(V):] *= -rate
    dW = np.vstack([V, v1]).T @ pos_neg
    dW -= lr * decay * p["W"]
    p["W"] += dW
    p["b"] += rate * (V - v1).sum(axis=0)
    p["c"] += pos_neg.sum(axis=0)


def test_first_rbm_sees_twice_its_weights_bottom_up():
    """rbm.m of the DBM code: ``poshidprobs = sigmoid(data (2 vishid) + 2 hidbiases)``, the
    reconstruction with the weights once; the kernel's ``up=2`` gives its numbers bit for bit."""
    def reference(p, V, rng):
        h0 = sigmoid(V @ (2 * p["W"]) + 2 * p["c"])
        hs = (rng.random(h0.shape, dtype=np.float32) < h0).astype(np.float32)
        v1 = sigmoid(hs @ p["W"].T + p["b"])
        _update(p, V, h0, v1, sigmoid(v1 @ (2 * p["W"]) + 2 * p["c"]))
    _kernel_and_reference(replace(RBM_M, up=2.0), reference)


def test_last_rbm_sees_twice_its_weights_top_down():
    """rbm_l2.m: ``negdata = sigmoid(hidstates (2 vishid)' + 2 visbiases)``, the hidden units
    with the weights once; the kernel's ``down=2`` gives its numbers bit for bit."""
    def reference(p, V, rng):
        h0 = sigmoid(V @ p["W"] + p["c"])
        hs = (rng.random(h0.shape, dtype=np.float32) < h0).astype(np.float32)
        v1 = sigmoid(hs @ (2 * p["W"]).T + 2 * p["b"])
        _update(p, V, h0, v1, sigmoid(v1 @ p["W"] + p["c"]))
    _kernel_and_reference(replace(RBM_M, down=2.0), reference)


def test_doubling_is_refused_on_gaussian_units():
    with pytest.raises(ParameterError, match="binary units only"):
        CD(gaussian=True, down=2.0)
    with pytest.raises(ParameterError, match="binary units only"):
        CD(gaussian_hidden=True, up=2.0)


def test_pretraining_composes_doubled_first_halved_middle_and_doubled_last_rbms():
    """A 4-layer DBM: RBM 1 trained with twice its weights up, RBM 2 an ordinary RBM halved
    when composed, RBM 3 with twice its weights down; each layer's bias the sum of its halves."""
    X = binary(40, 6)
    dbm = DeepBoltzmannMachine((6, 5, 4, 3), n_iter=0, pretrain_epochs=3, batch_size=10, n_chains=4,
                               random_state=5).fit(X)
    rng = np.random.default_rng(5)
    r = dbm._recipe()
    p1 = train_rbm_layer(X, 5, r, rng, cd=replace(RBM_M, up=2.0))
    x2 = sigmoid(2 * (X @ p1["W"] + p1["c"]))
    p2 = train_rbm_layer(x2, 4, r, rng)
    x3 = sigmoid(x2 @ p2["W"] + p2["c"])
    p3 = train_rbm_layer(x3, 3, r, rng, cd=replace(RBM_M, down=2.0))
    expected_W = [p1["W"], p2["W"] / 2, p3["W"]]
    expected_b = [p1["b"], p1["c"] + p2["b"] / 2, p2["c"] / 2 + p3["b"], p3["c"]]
    for got, want in zip(dbm.weights_ + dbm.biases_, expected_W + expected_b):
        np.testing.assert_array_equal(got, want)
    assert isinstance(r, Recipe) and r.learning_rate == dbm.pretrain_learning_rate


# -- mean-field ---------------------------------------------------------------------------------
def _residual(dbm, V, Q) -> float:
    """Largest ``|q_l - sigmoid(input of l at q)|`` in float64."""
    W, b = dbm._float64()
    H = [V.astype(np.float64)] + [q.astype(np.float64) for q in Q]
    return max(float(np.abs(H[l] - sigmoid(dbm_input(H, l, W, b))).max()) for l in range(1, len(H)))


def dbm_input(H, l, W, b):
    from neurosim.machines.dbm import layer_input
    return layer_input(H, l, W, b)


def test_mean_field_converges_to_a_fixed_point_of_its_equations():
    dbm = random_dbm((6, 5, 4, 3), scale=0.5)
    V = binary(20, 6)
    assert _residual(dbm, V, dbm.mean_field(V, iterations=1)) > 1e-3      # one pass is not a fixed point
    Q = dbm.mean_field(V, iterations=300)
    assert _residual(dbm, V, Q) < 1e-5
    damped = dbm.mean_field(V, iterations=300, damping=0.5)                # weak weights: one fixed point
    assert _residual(dbm, V, damped) < 1e-5
    for q, d in zip(Q, damped):
        np.testing.assert_allclose(q, d, atol=1e-5)


def test_each_mean_field_pass_raises_the_bound():
    """Odd layers, then even ones: each half an exact coordinate ascent of the bound."""
    dbm = random_dbm((6, 5, 4, 3), scale=1.5, seed=2)
    V = binary(20, 6, seed=4)
    bounds = [dbm.set_params(mean_field_iterations=k).log_prob_bound(V, log_z=0.0) for k in range(1, 12)]
    steps = np.diff(bounds, axis=0)
    assert steps.min() > -1e-4 and steps.sum(axis=0).max() > 1e-3


# -- the bound and the exact scores ---------------------------------------------------------------
def test_exact_log_partition_and_log_prob_agree_with_enumerating_the_network():
    """The machine sums the odd layers out in closed form; inference.exact enumerates every unit."""
    dbm = random_dbm((4, 3, 3, 2), seed=3)
    net = dbm.to_network()
    assert dbm.log_partition() == pytest.approx(exact.log_partition(net), abs=1e-9)
    V = exact.all_states(4)
    np.testing.assert_allclose(dbm.log_prob(V), exact.visible_log_prob(net, list(net.populations[0].units), V),
                               atol=1e-9)
    assert np.exp(dbm.log_prob(V)).sum() == pytest.approx(1.0, abs=1e-9)


def test_bound_is_log_prob_minus_the_kl_of_q_from_the_exact_posterior():
    """``log p(v) - bound = KL(q || p(h | v))`` (every v of a 4-3-2 DBM), computed by enumeration."""
    dbm = random_dbm((4, 3, 2), seed=6)
    net = dbm.to_network()
    V = exact.all_states(4)
    bound, logp = dbm.log_prob_bound(V), dbm.log_prob(V)
    Q = np.hstack(dbm.mean_field(V))
    for v, q, gap in zip(V, Q, logp - bound):
        post = exact.posterior(net, {f"v_{i}": int(x) for i, x in enumerate(v)})
        assert gap == pytest.approx(kl_q_p(q, post), abs=2e-5)
    assert (logp - bound).min() > -2e-5 and (logp - bound).max() > 1e-3   # a two-layer posterior is not factorial


@pytest.mark.parametrize("layers", [(5, 4), (5, 4, 3)])
def test_bound_is_exact_when_the_posterior_is_factorial(layers):
    """One hidden layer (an RBM), or two layers joined by zero weights: p(h | v) is a product
    of its marginals, mean-field finds it, and the bound is log p(v)."""
    dbm = random_dbm(layers, seed=7)
    if len(layers) == 3:
        dbm.weights_[1][:] = 0
    V = exact.all_states(5)
    np.testing.assert_allclose(dbm.log_prob_bound(V), dbm.log_prob(V), atol=1e-5)


# -- persistent chains --------------------------------------------------------------------------
def _exact_statistics(dbm):
    """``E[h_{l-1} h_l^T]`` and ``E[h_l]`` under the model, by enumerating the Network."""
    post = exact.posterior(dbm.to_network())
    S, p = post.states.astype(np.float64), post.probs
    cols = dbm._slices()
    pairs = [(S[:, a].T * p) @ S[:, b] for a, b in zip(cols[:-1], cols[1:])]
    return pairs, [p @ S[:, c] for c in cols]


def _check_statistics(dbm, stats, m):
    """Each statistic is a mean over ``m`` independent chains of a number in [0, 1]: its
    standard deviation is at most ``1 / (2 sqrt m)``; 4.5 of them, over ~30 statistics,
    fail by chance with probability < 3e-4."""
    tol = 4.5 / (2 * np.sqrt(m))
    pairs, means = _exact_statistics(dbm)
    for l, want in enumerate(pairs):
        assert np.abs(stats[l].T @ stats[l + 1] / m - want).max() < tol, l
    for l, want in enumerate(means):
        assert np.abs(stats[l].mean(axis=0) - want).max() < tol, l


def test_persistent_chains_statistics_match_exact_expectations_and_follow_weight_changes():
    m = 20000
    dbm = random_dbm((4, 3, 2), seed=8, n_chains=m)
    _check_statistics(dbm, dbm.model_statistics(steps=100), m)
    other = random_dbm((4, 3, 2), seed=9)
    for mine, new in zip(dbm.weights_ + dbm.biases_, other.weights_ + other.biases_):
        mine[:] = new                                       # a weight change, in place as training makes it
    stats = dbm.model_statistics(steps=100)
    _check_statistics(dbm, stats, m)
    with pytest.raises(AssertionError):                     # the old model's statistics would not pass
        _check_statistics(random_dbm((4, 3, 2), seed=8), stats, m)


def test_joint_training_raises_the_exact_likelihood():
    """Two noisy prototypes over 6 pixels: from pretraining, joint training raises the exact mean
    log p(v) of the training data."""
    rng = np.random.default_rng(0)
    protos = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=np.float32)
    X = np.abs(protos[rng.integers(0, 2, 200)] - (rng.random((200, 6)) < 0.05)).astype(np.float32)
    params = dict(pretrain_epochs=20, batch_size=20, n_chains=100, learning_rate=0.0005, random_state=1)
    before = DeepBoltzmannMachine((6, 4, 3), n_iter=0, **params).fit(X)
    after = DeepBoltzmannMachine((6, 4, 3), n_iter=30, **params).fit(X)
    assert after.n_iter_ == 30
    assert after.log_prob(X).mean() > before.log_prob(X).mean() + 0.1
    assert np.array_equal(after.weights_[0], DeepBoltzmannMachine((6, 4, 3), n_iter=30, **params)
                          .fit(X).weights_[0])                                    # same seed, same numbers


# -- the Network and files ----------------------------------------------------------------------
def test_network_round_trip_and_files(tmp_path):
    dbm = random_dbm((4, 3, 2), seed=10, n_chains=7)
    dbm.model_statistics(steps=2)
    net = dbm.to_network()
    assert [p.name for p in net.populations] == ["v", "h1", "h2"]
    assert all(p.kind == "symmetric" for p in net.projections)
    back = DeepBoltzmannMachine.from_network(net)
    for a, b in zip(dbm.weights_ + dbm.biases_, back.weights_ + back.biases_):
        np.testing.assert_array_equal(a, b)
    assert exact.log_partition(net) == pytest.approx(back.log_partition(), abs=1e-9)
    dbm.save(tmp_path / "dbm.npz")
    loaded = DeepBoltzmannMachine.load(tmp_path / "dbm.npz")
    np.testing.assert_array_equal(loaded.chains_, dbm.chains_)
    np.testing.assert_array_equal(loaded.transform(binary(5, 4)), dbm.transform(binary(5, 4)))
    dbm.save(tmp_path / "dbm.toml")
    assert DeepBoltzmannMachine.load(tmp_path / "dbm.toml").log_partition() == pytest.approx(dbm.log_partition())


def test_sample_draws_the_exact_visible_distribution():
    dbm = random_dbm((3, 3, 2), seed=11)
    n = 20000
    S = dbm.sample(n, n_sweeps=50)
    codes = S.astype(int) @ (1 << np.arange(2, -1, -1))
    counts = np.bincount(codes, minlength=8) / n
    p = np.exp(dbm.log_prob(exact.all_states(3)))
    assert np.abs(counts - p).max() < 4.5 * 0.5 / np.sqrt(n)


# -- bad input --------------------------------------------------------------------------------
def test_layers_may_be_any_sequence_of_integers():
    for layers in ([6, 4], np.array([6, 4]), (np.int64(6), 4)):
        assert [len(b) for b in DeepBoltzmannMachine(layers, n_iter=1, pretrain_epochs=1, batch_size=2,
                                                     n_chains=2).fit(binary(4, 6)).biases_] == [6, 4]


@pytest.mark.parametrize("layers, match", [((6,), "at least two"), ("6,4", "at least two"),
                                           ((6, 0), r"layers\[1\] must be >= 1"),
                                           ((6, 2.5), r"layers\[1\] must be an integer"),
                                           ((True, 3), r"layers\[0\] must be an integer")])
def test_bad_layers_are_refused_by_name(layers, match):
    with pytest.raises(ParameterError, match=match):
        DeepBoltzmannMachine(layers).fit(binary(4, 6))


@pytest.mark.parametrize("name, value", [("n_chains", 0), ("n_chains", 2.0), ("mean_field_iterations", 0),
                                         ("gibbs_steps", -1), ("batch_size", 0)])
def test_bad_counts_are_refused_by_name(name, value):
    with pytest.raises(ParameterError, match=f"^{name} must be"):
        DeepBoltzmannMachine((6, 4), **{name: value}).fit(binary(4, 6))


def test_bad_calls_are_refused_by_name():
    dbm = random_dbm((4, 3, 2))
    with pytest.raises(ParameterError, match="^iterations must be >= 1"):
        dbm.mean_field(binary(2, 4), iterations=0)
    with pytest.raises(ParameterError, match="^damping must be < 1"):
        dbm.mean_field(binary(2, 4), damping=1.0)
    with pytest.raises(ParameterError, match="^n_samples must be >= 1"):
        dbm.sample(0)
    with pytest.raises(ParameterError, match=r"X\[0, 0\] = 0.5.*0 or 1"):
        dbm.log_prob(np.full((1, 4), 0.5))
    with pytest.raises(ParameterError, match="4 features"):
        dbm.transform(binary(2, 5))
    with pytest.raises(InferenceError, match=r"even layers \(30 units here\), at most 22: .*log_z="):
        random_dbm((25, 3, 5)).log_partition()
    net = Network.from_populations([Population("v", ("a", "b"), np.zeros(2), "visible", 0),
                                    Population("h1", ("c",), np.zeros(1), "hidden", 1)],
                                   [Projection("v->h1", "v", "h1", np.ones((2, 1)), "directed")])
    with pytest.raises(ValidationError, match="projection 'v->h1'"):
        DeepBoltzmannMachine.from_network(net)


# -- AIS ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layers, seed", [((6, 4, 3), 12), ((5, 4, 3, 2), 13), ((6, 5), 14)])
def test_ais_log_partition_agrees_with_enumeration_within_a_tenth_of_a_nat(layers, seed):
    dbm = random_dbm(layers, seed=seed)
    data = binary(50, layers[0], seed)
    est = dbm.ais_log_partition(n_runs=100, n_betas=3000, data=data)
    assert abs(est.log_z - dbm.log_partition()) < 0.1
    assert est.log_z_std < 0.1 and len(est.log_weights) == 100


def exact_even_samples(dbm, n, rng):
    """``n`` exact samples of the even layers (v, h2, ...): every state enumerated, the odd
    layers summed out; odd entries None."""
    W, b = dbm._float64()
    even = list(range(0, len(b), 2))
    sizes = [len(b[l]) for l in even]
    S = ((np.arange(2 ** sum(sizes))[:, None] >> np.arange(sum(sizes))) & 1).astype(float)
    H = [None] * len(b)
    for l, part in zip(even, np.split(S, np.cumsum(sizes)[:-1], axis=1)):
        H[l] = part
    log_w = odd_summed_out(H, W, b)
    idx = rng.choice(len(S), n, p=np.exp(log_w - logsumexp(log_w)))
    return [None if h is None else h[idx] for h in H]


@pytest.mark.parametrize("layers, seed", [((6, 4, 3), 12), ((6, 5), 14)])
def test_reverse_ais_from_exact_samples_agrees_with_enumeration(layers, seed):
    dbm = random_dbm(layers, seed=seed)
    rng = np.random.default_rng(seed)
    W, b = dbm._float64()
    est = ais_log_partition(W, b, rng, n_betas=3000, start=exact_even_samples(dbm, 100, rng))
    assert abs(est.log_z - dbm.log_partition()) < 0.1 and len(est.log_weights) == 100


@pytest.mark.parametrize("layers, seed, scale", [((8, 5, 4), 3, 2.0), ((10, 6), 4, 1.5)])
def test_forward_and_reverse_ais_bracket_log_z(layers, seed, scale):
    """With 10 temperatures and 10 runs (40 repetitions), forward AIS errs low and reverse
    AIS from exact samples errs high, each mean more than 2 standard errors from exact
    log Z (measured: about -0.8 and +0.8 nats, standard errors 0.18 and 0.14, on the first)."""
    dbm = random_dbm(layers, scale=scale, seed=seed)
    rng, (W, b), log_z = np.random.default_rng(1), dbm._float64(), dbm.log_partition()
    fwd = np.array([ais_log_partition(W, b, rng, 10, 10).log_z for _ in range(40)]) - log_z
    rev = np.array([ais_log_partition(W, b, rng, 10, 10, start=exact_even_samples(dbm, 10, rng)).log_z
                    for _ in range(40)]) - log_z
    assert fwd.mean() + 2 * fwd.std() / np.sqrt(40) < 0 < rev.mean() - 2 * rev.std() / np.sqrt(40)


def test_reverse_ais_from_the_machines_chains_agrees_with_enumeration():
    """``reverse_sweeps``: samples continued from the persistent chains; on a tiny machine
    200 alternations mix, and the estimate is within 0.1 nat of exact log Z."""
    dbm = random_dbm((6, 4, 3), seed=12, n_chains=10)
    dbm.model_statistics(5)
    est = dbm.ais_log_partition(n_runs=100, n_betas=3000, reverse_sweeps=200)
    assert abs(est.log_z - dbm.log_partition()) < 0.1 and len(est.log_weights) == 100


def test_ais_of_a_one_layer_dbm_is_the_rbm_ais_estimate():
    """With one hidden layer the DBM's AIS is the RBM's (Salakhutdinov and Murray 2008),
    which runs the same annealing: the RBM entry point passes (W, b, c) as the layers
    (the RBM's AIS is tested against exact log Z in test_ais.py)."""
    from neurosim.machines.ais import ais_log_partition as rbm_ais
    dbm = random_dbm((6, 5), seed=15)
    ours = dbm.ais_log_partition(n_runs=20, n_betas=200)
    W, b = dbm._float64()
    theirs = rbm_ais(W[0], b[0], b[1], np.random.default_rng(15), n_runs=20, n_betas=200)
    np.testing.assert_allclose(ours.log_weights, theirs.log_weights, rtol=0, atol=1e-9)


def stopped_and_resumed(machine, X, path, stop_at: tuple[int, int]):
    """``(whole, resumed)``: ``machine()`` fitted, and ``machine()`` fitted by runs.fit_run
    into the checkpoint ``path``, stopped by SIGINT at ``stop_at`` (epoch, minibatch), then
    resumed by a fresh ``machine()``."""
    import os
    import signal

    from neurosim.machines.runs import fit_run
    whole = machine().fit(X)

    def interrupt(at):
        if (at.epoch, at.batch) == stop_at:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit_run(machine(), X, path, log=lambda m: None, after_batch=interrupt)
    resumed = machine()
    fit_run(resumed, X, path, log=lambda m: None)
    return whole, resumed


@pytest.mark.parametrize("stop_at", [(0, 2), (1, 4)])
def test_ctrl_c_then_resume_gives_the_weights_of_an_uninterrupted_fit(tmp_path, stop_at):
    """runs.fit_run: a checkpoint at SIGINT, then the run continues to exactly fit's weights,
    the chains and the momentum's velocities carried over."""
    def machine():
        return DeepBoltzmannMachine((6, 4, 3), n_iter=3, pretrain_epochs=2, batch_size=10, n_chains=8,
                                    momentum_switch=1, learning_rate=0.01, random_state=3)

    whole, resumed = stopped_and_resumed(machine, binary(40, 6), tmp_path / "dbm.ckpt.npz", stop_at)
    for a, b in zip(resumed.weights_ + resumed.biases_ + [resumed.chains_], whole.weights_ + whole.biases_ +
                    [whole.chains_]):
        assert np.array_equal(a, b)
    assert resumed.n_iter_ == 3


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """A learning rate that overflows the weights: DivergenceError naming the minibatch and the
    parameter, raised before the checkpoint (saved after every minibatch here) could take it."""
    from neurosim.errors import DivergenceError
    from neurosim.machines.base import read_npz_meta
    from neurosim.machines.runs import fit_run
    path = tmp_path / "c.npz"
    dbm = DeepBoltzmannMachine((6, 4, 3), n_iter=2, pretrain_epochs=1, batch_size=10, n_chains=8,
                               learning_rate=1e38, random_state=0)
    with pytest.raises(DivergenceError, match=r"^epoch 1 of 2, minibatch \d+: (weights|biases)_\[\d\]\[.*\] = "
                                              r"-?(inf|nan): training diverged .*learning_rate \(now 1e\+38\)$"):
        fit_run(dbm, binary(40, 6), path, checkpoint_s=0.0, log=lambda m: None)
    arrays, _ = read_npz_meta(path, "checkpoint")
    assert all(np.isfinite(a).all() for k, a in arrays.items() if k.startswith("m."))


def test_the_event_engine_runs_the_dbms_network():
    """The Network has symmetric projections only: the event engine's Gibbs sweeps sample its
    exact joint distribution (KL bound of tests/helpers.py), as the machine's own chains do."""
    from helpers import empirical_kl, kl_bound

    from neurosim.sampling import sample
    dbm = random_dbm((3, 2, 2), scale=0.8, seed=16)
    net, n = dbm.to_network(), 8000
    post = exact.posterior(net)
    event = sample(net, n, backend="event", burn_in=20, random_state=0)
    assert event.backend == "event" and event.ledger.analog == 0
    assert empirical_kl(event.states, post) < kl_bound(2 ** net.n_units, n)
    ours = dbm.sample(n, n_sweeps=30, visible_only=False).astype(np.int8)      # independent chains
    assert empirical_kl(ours, post) < kl_bound(2 ** net.n_units, n, inflation=1.0)


def test_a_joint_update_is_eq_6_for_every_block_and_changes_each_bias_once():
    """``dW_l = lr (Q_{l-1}^T Q_l / b - S_{l-1}^T S_l / m)`` and ``db_l = lr (mean Q_l - mean S_l)``,
    the middle layers' biases too (each belongs to two blocks but changes once)."""
    dbm = DeepBoltzmannMachine((5, 4, 3, 2), n_iter=0, pretrain_epochs=1, batch_size=6, n_chains=9,
                               weight_decay=0.0, random_state=0).fit(binary(12, 5))
    rng = np.random.default_rng(1)
    Q = [rng.random((6, n)).astype(np.float32) for n in (5, 4, 3, 2)]
    S = [rng.random((9, n)).astype(np.float32) for n in (5, 4, 3, 2)]
    W0, b0 = [W.copy() for W in dbm.weights_], [b.copy() for b in dbm.biases_]
    dbm._update(Q, S, 0.1, 0.0)
    for l in range(3):
        want = 0.1 * (Q[l].T @ Q[l + 1] / 6 - S[l].T @ S[l + 1] / 9)
        np.testing.assert_allclose(dbm.weights_[l] - W0[l], want, atol=1e-6)
    for l in range(4):
        np.testing.assert_allclose(dbm.biases_[l] - b0[l], 0.1 * (Q[l].mean(axis=0) - S[l].mean(axis=0)), atol=1e-6)


def test_sparsity_is_dbm_mf_m_penalty_on_every_units_total_input():
    """``dbm_mf.m``, transcribed with its names (momentum 0, no weight cost): running means from
    the targets, ``sparsegrads = cost (means - target)``, the visible-hidden weights less ``data'
    sparsegrads / numcases``, the hidden-pen ones less ``poshidprobs' sparsegrads2 / numcases +
    (pospenprobs' sparsegrads)' / numcases``, the hidden biases less ``sum(sparsegrads) /
    numcases``; two updates, so that the means move from the targets."""
    dbm = DeepBoltzmannMachine((5, 4, 3), n_iter=0, pretrain_epochs=1, batch_size=6, n_chains=6, weight_decay=0.0,
                               sparsity_targets=(0.2, 0.1), sparsity_cost=0.05, random_state=0).fit(binary(12, 5))
    rng = np.random.default_rng(1)
    vishid, hidpen = (W.astype(np.float64) for W in dbm.weights_)
    visbiases, hidbiases, penbiases = (b.astype(np.float64) for b in dbm.biases_)
    hidmeans, penmeans, lr, n = np.full(4, 0.2), np.full(3, 0.1), 0.1, 6
    for _ in range(2):
        Q = [rng.random((6, k)).astype(np.float32) for k in (5, 4, 3)]
        S = [rng.random((6, k)).astype(np.float32) for k in (5, 4, 3)]
        dbm._update(Q, S, lr, 0.0)
        data, poshidprobs, pospenprobs = Q
        negdata, neghidprobs, negpenprobs = S
        hidmeans = 0.9 * hidmeans + 0.1 * poshidprobs.sum(0) / n
        penmeans = 0.9 * penmeans + 0.1 * pospenprobs.sum(0) / n
        sparsegrads = 0.05 * (np.tile(hidmeans, (n, 1)) - 0.2)
        sparsegrads2 = 0.05 * (np.tile(penmeans, (n, 1)) - 0.1)
        vishid += lr * ((data.T @ poshidprobs - negdata.T @ neghidprobs) / n - data.T @ sparsegrads / n)
        hidpen += lr * ((poshidprobs.T @ pospenprobs - neghidprobs.T @ negpenprobs) / n
                        - poshidprobs.T @ sparsegrads2 / n - (pospenprobs.T @ sparsegrads).T / n)
        visbiases += lr / n * (data.sum(0) - negdata.sum(0))
        hidbiases += lr / n * (poshidprobs.sum(0) - neghidprobs.sum(0)) - lr / n * sparsegrads.sum(0)
        penbiases += lr / n * (pospenprobs.sum(0) - negpenprobs.sum(0)) - lr / n * sparsegrads2.sum(0)
    for ours, theirs in zip(dbm.weights_ + dbm.biases_, [vishid, hidpen, visbiases, hidbiases, penbiases]):
        np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_the_probabilities_negative_phase_is_dbm_mf_m_negpenprobs():
    """``negative_phase="probabilities"``: the same chains, the visible states and the odd
    layers' probabilities as before, the even hidden layers ``sigmoid(p(h1) W2 + b2)``."""
    kw = dict(n_iter=0, pretrain_epochs=1, batch_size=6, n_chains=7, random_state=4)
    dbms = [DeepBoltzmannMachine((5, 4, 3), negative_phase=phase, **kw).fit(binary(12, 5))
            for phase in ("states", "probabilities")]
    states, probs = (dbm.model_statistics(3) for dbm in dbms)
    for l in (0, 1):
        assert np.array_equal(states[l], probs[l])
    W, b = dbms[1].weights_, dbms[1].biases_
    np.testing.assert_allclose(probs[2], sigmoid(probs[1] @ W[1] + b[2]), atol=1e-6)
    assert set(np.unique(states[2])) <= {0.0, 1.0}


@pytest.mark.parametrize("params, match", [
    (dict(negative_phase="samples"), "negative_phase must be one of"),
    (dict(sparsity_targets=(0.2,)), r"one target per hidden layer \(2\)"),
    (dict(sparsity_targets=(0.2, 1.0)), r"sparsity_targets\[1\]"),
    (dict(sparsity_cost=-1), "sparsity_cost"),
    (dict(pretrain_cd_every=-1), "pretrain_cd_every"),
    (dict(pretrain_sampling="yes"), "pretrain_sampling must be True or False")])
def test_bad_dbm_mf_m_options_are_refused_by_name(params, match):
    with pytest.raises(ParameterError, match=match):
        DeepBoltzmannMachine((5, 4, 3), **params).fit(binary(12, 5))


def test_resume_carries_the_sparsity_means(tmp_path):
    """The running means are training state: an interrupted sparse run resumes to the
    uninterrupted run's weights."""
    def machine():
        return DeepBoltzmannMachine((6, 4, 3), n_iter=2, pretrain_epochs=1, batch_size=10, n_chains=8,
                                    learning_rate=0.05, sparsity_targets=(0.2, 0.1), sparsity_cost=0.1,
                                    random_state=3)

    whole, resumed = stopped_and_resumed(machine, binary(40, 6), tmp_path / "dbm.ckpt.npz", (0, 2))
    for a, b in zip(resumed.weights_ + resumed.biases_, whole.weights_ + whole.biases_):
        assert np.array_equal(a, b)


def test_rbm_l2_m_pretraining_samples_every_minibatch_and_grows_cd_k(monkeypatch):
    """``pretrain_sampling``: every RBM's minibatches are binary and drawn afresh (the same
    rows differ between epochs); ``pretrain_cd_every=2``: the second RBM runs CD-1, CD-1,
    CD-2 at rates 0.05, 0.05, 0.025 over three epochs, the first CD-1 at 0.05 throughout."""
    from neurosim.machines import dbn_train
    seen = []
    step = dbn_train.rbm_step
    monkeypatch.setattr(dbn_train, "rbm_step", lambda p, vel, V, Y, r, mom, rng, buf, be, cd, *offsets: (
        seen.append((V.shape[1], cd.k, r.learning_rate, V.copy())),
        step(p, vel, V, Y, r, mom, rng, buf, be, cd, *offsets))[1])
    X = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    DeepBoltzmannMachine((6, 4, 3), n_iter=0, pretrain_epochs=3, batch_size=10, pretrain_sampling=True,
                         pretrain_cd_every=2, random_state=0).fit(X)
    assert [(n, k, lr) for n, k, lr, _ in seen] == [(6, 1, 0.05)] * 6 + [(4, 1, 0.05)] * 4 + [(4, 2, 0.025)] * 2
    assert all(set(np.unique(V)) <= {0.0, 1.0} for *_, V in seen)
    assert not np.array_equal(seen[0][3], seen[2][3])          # rows 0-9, drawn again in epoch 2
