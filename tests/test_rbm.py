"""neurosim.RBM: parameters and data checks, scikit-learn's API, eq. 6 against the
registered rule, exact log Z and log P(v) against enumeration, sampling against the exact
distribution, files and Networks, and learning on bars and stripes; Gaussian visible units
(conditionals, free energy and log Z against enumeration and numerical integration,
learning) and the sparsity target."""

import copy
import math
import pickle
import re

import numpy as np
import pytest

from neurosim import RBM, Edge, InferenceError, Network, Unit, ValidationError, load
from neurosim.data import bars_stripes
from neurosim.inference import log_partition, log_prob, visible_log_prob
from neurosim.machines.rbm import MAX_EXACT_UNITS, RBM_M_MOMENTUM, NotFittedError, ParameterError
from helpers import kl_bound


def _states(n):
    k = np.arange(2 ** n)[:, None]
    return ((k >> np.arange(n - 1, -1, -1)) & 1).astype(np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _random_rbm(seed, n_visible, n_hidden, scale=1.0, **params):
    """A float64 RBM with weights and biases ~ N(0, scale), through a Network."""
    rng = np.random.default_rng(seed)
    vis = [f"v{i}" for i in range(n_visible)]
    hid = [f"h{j}" for j in range(n_hidden)]
    units = [Unit(n, float(rng.normal(0, scale)), "visible") for n in vis]
    units += [Unit(n, float(rng.normal(0, scale)), "hidden") for n in hid]
    edges = [Edge(v, h, float(rng.normal(0, scale)), "symmetric") for v in vis for h in hid]
    params = {"dtype": np.float64, "random_state": seed, **params}
    return RBM.from_network(Network(units, edges, name="random_rbm"), **params)


def _binary(seed, rows, cols):
    return np.random.default_rng(seed).integers(0, 2, (rows, cols)).astype(np.float64)


# -- parameters and data ------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [
    ("n_components", 0), ("n_components", 2.5), ("n_components", True),
    ("learning_rate", 0.0), ("learning_rate", -0.1), ("learning_rate", float("nan")),
    ("learning_rate", "fast"), ("batch_size", 0), ("n_iter", -1), ("k", 0), ("k", 1.0),
    ("persistent", "yes"), ("momentum", 1.0), ("momentum", -0.5), ("weight_decay", -1e-4),
    ("dtype", np.int32), ("dtype", "float16"), ("random_state", -3), ("random_state", "seed"),
    ("verbose", "loud"), ("visible", "binary"), ("visible", 3), ("sparsity_target", 0.0),
    ("sparsity_target", 1.0), ("sparsity_target", 1.5), ("sparsity_target", "low"),
    ("sparsity_cost", -0.1), ("sparsity_cost", float("inf")),
])
def test_bad_parameter_is_named_with_its_value(name, value):
    rbm = RBM(n_components=2, **{} if name == "n_components" else {name: value})
    if name == "n_components":
        rbm.set_params(n_components=value)
    with pytest.raises(ParameterError, match=rf"^{name} .*{re.escape(repr(value))}$"):
        rbm.fit(_binary(0, 4, 3))


def test_unknown_parameter_and_repr():
    with pytest.raises(ParameterError, match="unknown parameter 'n_hidden'"):
        RBM().set_params(n_hidden=3)
    assert repr(RBM(500, persistent=False, batch_size=100)) == "RBM(500, batch_size=100, persistent=False)"
    assert RBM().get_params()["dtype"] is None


@pytest.mark.parametrize("X, match", [
    (np.zeros(3), r"2-D array .* shape \(3,\)"),
    (np.zeros((2, 3, 1)), r"2-D array .* shape \(2, 3, 1\)"),
    (np.zeros((0, 3)), r"X has no rows: 0 sample\(s\) \(shape=\(0, 3\)\)"),
    (np.array([[0.0, np.nan, 1.0]]), r"X\[0, 1\] = nan: values must be finite \(no NaN or inf\)"),
    (np.array([[0.0, 1.0, 0.0], [0.0, 0.5, np.inf]]), r"X\[1, 2\] = inf: values must be finite"),
    (np.array([[0.0, 1.5, 0.0]]), r"X\[0, 1\] = 1.5: values must lie in \[0, 1\]"),
    (np.array([[0.0, 0.0, -0.25]]),
     r"X\[0, 2\] = -0.25: Negative values in data: values must lie in \[0, 1\]"),
    ([["a", "b", "c"]], "X must be a 2-D array of numbers"),
])
def test_bad_X_is_named(X, match):
    with pytest.raises(ParameterError, match=match):
        RBM(2, n_iter=1).fit(X)


def test_X_checks_after_fitting():
    rbm = RBM(2, n_iter=1, random_state=0).fit(_binary(0, 6, 3))
    with pytest.raises(ParameterError, match="X has 4 features, but RBM is expecting 3 features as input"):
        rbm.transform(_binary(0, 2, 4))
    with pytest.raises(ParameterError, match=r"X\[0, 0\] = 0.5: exact log-probabilities need binary"):
        rbm.exact_log_prob([[0.5, 0, 1]])


def test_not_fitted():
    with pytest.raises(NotFittedError, match="call fit, partial_fit or RBM.from_network"):
        RBM(2).transform(np.zeros((1, 3)))


# -- scikit-learn's API ----------------------------------------------------------------------
@pytest.mark.parametrize("persistent", [False, True])
def test_shapes_and_attributes_as_sklearn(persistent):
    X = np.random.default_rng(0).random((23, 6))          # probabilities are fine for fitting
    rbm = RBM(4, batch_size=5, n_iter=2, random_state=0, persistent=persistent)
    assert rbm.fit(X) is rbm
    assert rbm.components_.shape == (4, 6) and rbm.components_.dtype == np.float64   # X's, as sklearn
    assert rbm.intercept_hidden_.shape == (4,) and rbm.intercept_visible_.shape == (6,)
    assert rbm.n_features_in_ == 6 and rbm.n_iter_ == 2 and rbm.n_updates_ == 2 * 5
    assert hasattr(rbm, "h_samples_") == persistent
    if persistent:
        assert rbm.h_samples_.shape == (5, 4) and set(np.unique(rbm.h_samples_)) <= {0.0, 1.0}
    assert rbm.transform(X).shape == (23, 4) and rbm.transform(X).dtype == np.float64
    v = rbm.gibbs(X > 0.5)
    assert v.shape == (23, 6) and v.dtype == bool
    assert rbm.score_samples(X).shape == (23,) and np.all(rbm.score_samples(X) <= 0)
    s = rbm.sample(7, n_steps=3)
    assert s.shape == (7, 6) and s.dtype == np.int8 and set(np.unique(s)) <= {0, 1}
    assert rbm.fit_transform(X).shape == (23, 4)
    n = rbm.n_updates_
    rbm.partial_fit(X[:3])
    assert rbm.n_updates_ == n + 1


def test_partial_fit_initialises_then_continues():
    X = _binary(1, 8, 5)
    rbm = RBM(3, random_state=0).partial_fit(X)
    W = rbm.components_.copy()
    rbm.partial_fit(X)
    assert rbm.components_.shape == (3, 5) and not np.array_equal(W, rbm.components_)


def test_same_seed_same_numbers():
    X = _binary(2, 40, 6)
    a = RBM(5, batch_size=8, n_iter=3, random_state=7, k=2).fit(X)
    b = RBM(5, batch_size=8, n_iter=3, random_state=7, k=2).fit(X)
    c = RBM(5, batch_size=8, n_iter=3, random_state=8, k=2).fit(X)
    assert np.array_equal(a.components_, b.components_)
    assert np.array_equal(a.intercept_hidden_, b.intercept_hidden_)
    assert not np.array_equal(a.components_, c.components_)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    d = RBM(5, batch_size=8, random_state=g1).fit(X)
    e = RBM(5, batch_size=8, random_state=g2).fit(X)
    assert d.random_state_ is g1 and np.array_equal(d.components_, e.components_)
    assert np.array_equal(a.score_samples(X), a.score_samples(X))   # integer seed: repeatable


def test_transform_is_sigmoid_of_the_input():
    rbm = _random_rbm(3, 5, 4)
    X = np.random.default_rng(0).random((9, 5))
    W, c = rbm.components_, rbm.intercept_hidden_
    np.testing.assert_allclose(rbm.transform(X), _sigmoid(X @ W.T + c), rtol=1e-12, atol=1e-14)
    r32 = RBM.from_network(rbm.to_network())
    np.testing.assert_allclose(r32.transform(X), _sigmoid(X @ W.T + c), rtol=1e-5, atol=1e-6)


# -- momentum and weight decay (eq. 6 against the rule: tests/test_bipartite.py) ------------------
def test_momentum_and_weight_decay():
    X = _binary(7, 6, 5)
    plain = _random_rbm(8, 5, 3, learning_rate=0.1)
    decayed = _random_rbm(8, 5, 3, learning_rate=0.1, weight_decay=0.01)
    W0 = plain.components_.copy()
    plain.partial_fit(X)
    decayed.partial_fit(X)
    np.testing.assert_allclose(decayed.components_ - plain.components_, -0.1 * 0.01 * W0, atol=1e-15)
    np.testing.assert_array_equal(decayed.intercept_visible_, plain.intercept_visible_)  # no decay
    moving = _random_rbm(8, 5, 3, learning_rate=0.1, momentum=0.5)
    moving.partial_fit(X)
    d1 = moving.components_ - W0
    np.testing.assert_allclose(d1, plain.components_ - W0, atol=1e-15)   # first step: no history
    W1 = moving.components_.copy()
    ref = copy.deepcopy(moving)
    ref.set_params(momentum=0.0)
    ref._velocity = None
    ref.partial_fit(X)
    moving.partial_fit(X)
    np.testing.assert_allclose(moving.components_ - W1, 0.5 * d1 + (ref.components_ - W1), atol=1e-14)


# -- learning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("persistent", [False, True])
def test_learning_improves_the_exact_log_likelihood(persistent):
    """Bars and stripes 3x3 (14 images), 9-8 RBM: CD-1 (and PCD-1) raise the exact mean
    log-likelihood well above the start and the uniform model (-9 log 2 = -6.24)."""
    data = bars_stripes(np.random.default_rng(0), size=3, n=400).data
    rbm = RBM(8, learning_rate=0.1, batch_size=20, n_iter=0, random_state=0,
              persistent=persistent).fit(data)
    start = rbm.exact_log_likelihood(data)
    rbm.set_params(n_iter=200).fit(data)
    end = rbm.exact_log_likelihood(data)
    assert start < -6.2
    assert end > start + 1.5, (start, end)


# -- exact quantities ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_visible, n_hidden", [(5, 4), (3, 6)])
def test_log_partition_and_log_prob_against_brute_force(n_visible, n_hidden):
    """log Z and log P(v) against enumeration of every joint state (v, h), both branches
    (summing over hidden or over visible states)."""
    rbm = _random_rbm(9, n_visible, n_hidden, scale=1.5)
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    V, H = _states(n_visible), _states(n_hidden)
    neg_energy = V @ b + (H @ c)[:, None] + H @ W @ V.T          # (2^nh, 2^nv): -E(v, h)
    m = neg_energy.max()
    log_z = m + math.log(np.exp(neg_energy - m).sum())
    assert rbm.log_partition() == pytest.approx(log_z, abs=1e-10)
    log_pv = np.log(np.exp(neg_energy - log_z).sum(axis=0))
    np.testing.assert_allclose(rbm.exact_log_prob(V), log_pv, atol=1e-10)
    assert np.exp(rbm.exact_log_prob(V)).sum() == pytest.approx(1.0, abs=1e-12)


def test_exact_size_limit():
    rbm = RBM.from_network(Network([Unit(f"v{i}", role="visible") for i in range(23)]
                                   + [Unit(f"h{j}") for j in range(23)]))
    with pytest.raises(InferenceError, match="n_features=23, n_components=23"):
        rbm.log_partition()


def test_sampler_matches_the_exact_distribution():
    """Gibbs fantasies of a 4-3 RBM against exact P(v): KL(empirical || exact) within the
    bound of a correct sampler (seeded)."""
    rbm = _random_rbm(10, 4, 3, scale=1.0, random_state=0)
    n = 4000
    S = rbm.sample(n, n_steps=30)
    codes = (S.astype(int) << np.arange(3, -1, -1)).sum(axis=1)
    counts = np.bincount(codes, minlength=16) / n
    log_p = rbm.exact_log_prob(_states(4))
    keep = counts > 0
    kl = float(np.sum(counts[keep] * (np.log(counts[keep]) - log_p[keep])))
    assert kl < kl_bound(16, n, inflation=1.0), kl


# -- Networks and files --------------------------------------------------------------------------
def test_to_network_agrees_with_exact_inference():
    rbm = _random_rbm(11, 4, 3)
    net = rbm.to_network()
    assert net.units == ["v0", "v1", "v2", "v3", "h0", "h1", "h2"]
    assert net.unit("v1").role == "visible" and net.unit("v1").layer == 0
    assert net.unit("h2").role == "hidden" and net.unit("h2").layer == 1
    assert net.weight("v1", "h2") == net.weight("h2", "v1") == float(rbm.components_[2, 1])
    assert all(e.kind == "symmetric" for e in net.edges) and len(net.edges) == 12
    assert log_partition(net) == pytest.approx(rbm.log_partition(), abs=1e-10)
    V = _states(4)
    np.testing.assert_allclose(visible_log_prob(net, net.units[:4], V), rbm.exact_log_prob(V), atol=1e-10)
    S = _states(7)
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    neg_energy = S[:, :4] @ b + S[:, 4:] @ c + np.einsum("ij,ni,nj->n", W, S[:, 4:], S[:, :4])
    np.testing.assert_allclose(log_prob(net, S), neg_energy - rbm.log_partition(), atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip(tmp_path, dtype):
    X = _binary(12, 30, 5)
    rbm = RBM(3, batch_size=10, n_iter=5, random_state=0, dtype=dtype).fit(X)
    path = tmp_path / "rbm.toml"
    rbm.save(path)
    back = RBM.load(path, dtype=dtype)
    for name in ("components_", "intercept_visible_", "intercept_hidden_"):
        assert getattr(back, name).dtype == dtype
        np.testing.assert_array_equal(getattr(back, name), getattr(rbm, name))
    assert back.n_components == 3 and back.n_features_in_ == 5
    assert load(path).units == rbm.to_network().units
    np.testing.assert_array_equal(back.transform(X), rbm.transform(X))
    back.partial_fit(X)                                  # ready to train further


def test_from_network_keeps_names_and_checks_structure():
    data = bars_stripes(size=2)
    units = [Unit(n, 0.1, "visible") for n in data.names] + [Unit("a", -0.2), Unit("b", 0.3)]
    edges = [Edge("a", "p00", 0.5, "symmetric"), Edge("p11", "b", -1.0, "symmetric")]
    rbm = RBM.from_network(Network(units, edges, name="named"))
    assert rbm.components_.tolist() == [[0.5, 0, 0, 0], [0, 0, 0, -1.0]]   # missing pairs: 0
    assert rbm.to_network().units == data.names + ["a", "b"]
    bad = [
        (Network(units[:5], [Edge("p00", "p01", 1.0, "symmetric")]), "joins two visible units"),
        (Network(units[:5], [Edge("a", "p00", 1.0)]), "directed edge a -> p00"),
        (Network(units[:4] + [Unit("y", role="label"), units[4]]), "role 'label'"),
        (Network(units[:4]), "needs visible and hidden units"),
        (Network(units[:5], [Edge("a", "p00", 1.0, "symmetric", weight_reverse=0.5)]), "unequal synapses"),
    ]
    for net, match in bad:
        with pytest.raises(ValidationError, match=match):
            RBM.from_network(net)
    with pytest.raises(ParameterError, match="n_components=5 but network"):
        RBM.from_network(Network(units), n_components=5)


# -- scikit-learn itself (optional) ------------------------------------------------------------
def test_same_api_as_sklearn_on_the_same_parameters():
    sk = pytest.importorskip("sklearn.neural_network")
    X = (np.random.default_rng(13).random((20, 6)) < 0.4).astype(np.float64)
    ours = RBM(4, batch_size=5, n_iter=3, learning_rate=0.05, random_state=0, persistent=True,
               dtype=np.float64).fit(X)
    theirs = sk.BernoulliRBM(4, batch_size=5, n_iter=3, learning_rate=0.05, random_state=0).fit(X)
    shared = set(theirs.get_params()) & set(ours.get_params())
    assert shared == {"n_components", "learning_rate", "batch_size", "n_iter", "verbose", "random_state"}
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape
        setattr(theirs, name, getattr(ours, name).copy())        # the same fitted parameters
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-12)
    np.testing.assert_allclose(ours.free_energy(X), theirs._free_energy(X), rtol=1e-12)
    assert ours.score_samples(X).shape == theirs.score_samples(X).shape
    assert ours.gibbs(X).shape == theirs.gibbs(X).shape and ours.gibbs(X).dtype == theirs.gibbs(X).dtype


# -- Gaussian visible units ------------------------------------------------------------------------
def _random_grbm(seed, n_visible, n_hidden, scale=1.0, **params):
    """A float64 RBM with Gaussian visible units and weights and biases ~ N(0, scale)."""
    return _random_rbm(seed, n_visible, n_hidden, scale, **params).set_params(visible="gaussian")


def _neg_energy_gaussian(V, H, W, b, c):
    """-E(v, h) = -||v - b||^2 / 2 + c.h + h W v for every pair: shape (len(H), len(V))."""
    return -0.5 * ((V - b) ** 2).sum(axis=1) + (H @ c)[:, None] + H @ W @ V.T


def _grid_log_z(rbm, half_width=25.0, step=0.1):
    """log Z by the trapezoid rule on a square grid (1 or 2 visible units): the integrand,
    a sum of unit-variance Gaussians, is smooth and decays fast, so the rule is accurate far
    beyond 1e-6 at this step."""
    axis = np.arange(-half_width, half_width + step / 2, step)
    n = rbm.components_.shape[1]
    grid = np.stack(np.meshgrid(*[axis] * n, indexing="ij"), axis=-1).reshape(-1, n)
    log_f = -rbm.free_energy(grid)
    m = log_f.max()
    return m + math.log(np.exp(log_f - m).sum() * step ** n)


def test_gaussian_X_any_finite_values():
    X = np.random.default_rng(0).normal(0, 3, (20, 3))
    rbm = RBM(2, n_iter=1, visible="gaussian", learning_rate=0.01, random_state=0).fit(X)
    assert rbm.transform(X).shape == (20, 2)
    for bad, match in [(np.array([[0.0, np.nan, 7.5]]),
                        r"X\[0, 1\] = nan: values must be finite \(no NaN or inf\)"),
                       (np.array([[-9.0, 2.0, -np.inf]]), r"X\[0, 2\] = -inf: values must be finite")]:
        with pytest.raises(ParameterError, match=match):
            RBM(2, n_iter=1, visible="gaussian").fit(bad)
        with pytest.raises(ParameterError, match=match):
            rbm.transform(bad)


def test_gaussian_hidden_conditional_and_free_energy_against_enumeration():
    """P(h_j = 1 | v) and F(v) = -log sum_h exp(-E(v, h)) from the energy, all 2^4 h."""
    rbm = _random_grbm(20, 3, 4, scale=0.8)
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    V, H = np.random.default_rng(1).normal(0, 2, (7, 3)), _states(4)
    neg_energy = _neg_energy_gaussian(V, H, W, b, c)                # (16, 7)
    m = neg_energy.max(axis=0)
    log_sum = m + np.log(np.exp(neg_energy - m).sum(axis=0))
    np.testing.assert_allclose(rbm.free_energy(V), -log_sum, rtol=0, atol=1e-12)
    posterior = np.exp(neg_energy - log_sum)                         # P(h | v), columns
    np.testing.assert_allclose(rbm.transform(V), (H.T @ posterior).T, rtol=0, atol=1e-12)


def test_gaussian_visible_conditional_is_unit_normal_around_b_plus_hW():
    rbm = _random_grbm(21, 3, 2, scale=1.0)
    W, b = rbm.components_, rbm.intercept_visible_
    n = 40000
    for h in ([0.0, 0.0], [1.0, 0.0], [1.0, 1.0]):
        V = rbm._sample_visible(np.tile(h, (n, 1)), rbm.random_state_)
        mean = b + np.array(h) @ W
        assert np.all(np.abs(V.mean(axis=0) - mean) < 5 / math.sqrt(n)), (V.mean(axis=0), mean)
        np.testing.assert_allclose(V.var(axis=0), 1.0, atol=5 * math.sqrt(2 / n))
    v = rbm.gibbs(np.zeros((5, 3)))
    s = rbm.sample(4, n_steps=3)
    assert v.dtype == np.float64 and v.shape == (5, 3) and s.dtype == np.float64 and s.shape == (4, 3)
    assert len(np.unique(s)) == s.size                                 # real values, not states


@pytest.mark.parametrize("n_visible, n_hidden, seed", [(1, 3, 22), (2, 2, 23), (2, 4, 24)])
def test_gaussian_log_partition_against_numerical_integration(n_visible, n_hidden, seed):
    rbm = _random_grbm(seed, n_visible, n_hidden, scale=1.0)
    log_z = rbm.log_partition()
    assert log_z == pytest.approx(_grid_log_z(rbm), abs=1e-6)
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    H = _states(n_hidden)                        # closed form term by term: sum_h Z_h
    terms = (H @ c + H @ W @ b + 0.5 * ((H @ W) ** 2).sum(axis=1)
             + 0.5 * n_visible * math.log(2 * math.pi))
    assert log_z == pytest.approx(math.log(np.exp(terms).sum()), abs=1e-12)
    if n_visible == 1:                           # the density integrates to 1
        axis = np.arange(-25, 25.05, 0.1)[:, None]
        assert np.exp(rbm.exact_log_prob(axis)).sum() * 0.1 == pytest.approx(1.0, abs=1e-9)


def test_gaussian_exact_size_limit():
    n = MAX_EXACT_UNITS + 1
    rbm = _random_grbm(25, 2, n)
    with pytest.raises(InferenceError, match=f"2\\^n_components hidden states: n_components={n}"):
        rbm.log_partition()


@pytest.mark.parametrize("persistent, k", [(False, 1), (False, 3), (True, 1), (True, 2)])
def test_gaussian_update_written_out(persistent, k):
    """partial_fit with Gaussian visible units against CD-k / PCD-k written out with the
    same draws: the mean for the last reconstruction of CD, unit-variance samples for the
    earlier CD steps and for the persistent chains."""
    rbm = _random_grbm(26, 5, 3, scale=0.5, learning_rate=0.05, batch_size=4,
                       persistent=persistent, k=k)
    X = np.random.default_rng(7).normal(0, 1, (6, 5))
    W, b, c = rbm.components_.copy(), rbm.intercept_visible_.copy(), rbm.intercept_hidden_.copy()
    rng = copy.deepcopy(rbm.random_state_)

    def bern(p):
        return (rng.random(p.shape) < p).astype(float)

    def gauss(mean):
        return mean + rng.standard_normal(mean.shape)

    if persistent:
        h = np.zeros((4, 3))
        for step in range(k):
            v_neg = gauss(h @ W + b)
            if step < k - 1:
                h = bern(_sigmoid(v_neg @ W.T + c))
        h_pos, h_neg = _sigmoid(X @ W.T + c), _sigmoid(v_neg @ W.T + c)
        h_next = bern(h_neg)
    else:
        h_pos = _sigmoid(X @ W.T + c)
        h = bern(h_pos)
        for step in range(k):
            v_neg = h @ W + b
            if step < k - 1:
                h = bern(_sigmoid(gauss(v_neg) @ W.T + c))
        h_neg = _sigmoid(v_neg @ W.T + c)
    lr = 0.05
    dW = lr * (h_pos.T @ X / len(X) - h_neg.T @ v_neg / len(v_neg))
    rbm.partial_fit(X)
    np.testing.assert_allclose(rbm.components_ - W, dW, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rbm.intercept_visible_ - b, lr * (X.mean(0) - v_neg.mean(0)), atol=1e-12)
    np.testing.assert_allclose(rbm.intercept_hidden_ - c, lr * (h_pos.mean(0) - h_neg.mean(0)),
                               atol=1e-12)
    if persistent:
        np.testing.assert_array_equal(rbm.h_samples_, h_next)


def _two_cluster_data(seed, n=600):
    """4-D points around +m or -m, m = (2, 2, -2, -2), unit-variance noise."""
    rng = np.random.default_rng(seed)
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    return sign * np.array([2.0, 2.0, -2.0, -2.0]) + rng.standard_normal((n, 4))


@pytest.mark.parametrize("persistent", [False, True])
def test_gaussian_learning_improves_the_exact_log_likelihood(persistent):
    """CD-1 (and PCD-1) on two unit-variance clusters: the model starts near N(0, I)
    (mean log density -4/2 log 2 pi - 5 * 4/2 = -13.7) and must approach the clusters'
    (-4/2 log 2 pi - 4/2 - log 2 = -6.4)."""
    X = _two_cluster_data(0)
    rbm = RBM(3, learning_rate=0.01, batch_size=20, n_iter=0, visible="gaussian",
              random_state=0, dtype=np.float64, persistent=persistent).fit(X)
    start = rbm.exact_log_likelihood(X)
    rbm.set_params(n_iter=30).fit(X)
    end = rbm.exact_log_likelihood(X)
    assert start < -13
    assert end > -7.5, (start, end)


def test_gaussian_has_no_pseudo_likelihood_and_verbose_reports_reconstruction(capsys):
    X = _two_cluster_data(1, n=40)
    rbm = RBM(2, n_iter=2, verbose=1, visible="gaussian", learning_rate=0.01, random_state=0).fit(X)
    assert re.search(r"Iteration 2, reconstruction error = [0-9.]+, time", capsys.readouterr().err)
    with pytest.raises(InferenceError, match="score_samples .* visible='gaussian'"):
        rbm.score_samples(X)


def test_gaussian_has_no_network_form(tmp_path):
    rbm = _random_grbm(27, 3, 2)
    for call in (rbm.to_network, lambda: rbm.save(tmp_path / "g.toml")):
        with pytest.raises(ParameterError, match="visible='gaussian' cannot be expressed"):
            call()
    assert not (tmp_path / "g.toml").exists()
    with pytest.raises(ParameterError, match="^from_network: visible='gaussian'"):
        RBM.from_network(_random_rbm(27, 3, 2).to_network(), visible="gaussian")
    back = pickle.loads(pickle.dumps(rbm))                      # the way to keep one
    X = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(back.free_energy(X), rbm.free_energy(X))
    assert back.log_partition() == rbm.log_partition()


# -- sparsity target -----------------------------------------------------------------------------
def test_sparsity_term_on_the_hidden_bias_only():
    """Two updates with a sparsity target against the same updates without: only the hidden
    biases differ, by -lr * cost * (q - p), q the running mean of the positive phase."""
    X1, X2 = _binary(30, 6, 5), _binary(31, 4, 5)
    plain = _random_rbm(32, 5, 3, learning_rate=0.1)
    sparse = _random_rbm(32, 5, 3, learning_rate=0.1, sparsity_target=0.05, sparsity_cost=0.5)
    q1 = plain.transform(X1).mean(axis=0)
    plain.partial_fit(X1)
    sparse.partial_fit(X1)
    np.testing.assert_array_equal(sparse.components_, plain.components_)
    np.testing.assert_array_equal(sparse.intercept_visible_, plain.intercept_visible_)
    c_shift = -0.1 * 0.5 * (q1 - 0.05)
    np.testing.assert_allclose(sparse.intercept_hidden_ - plain.intercept_hidden_, c_shift, atol=1e-14)
    np.testing.assert_allclose(sparse.hidden_activity_, q1, atol=1e-15)
    q2 = 0.9 * q1 + 0.1 * sparse.transform(X2).mean(axis=0)
    c_before = sparse.intercept_hidden_.copy()
    plain.intercept_hidden_[:] = c_before                    # same start for the second update
    plain.partial_fit(X2)
    sparse.partial_fit(X2)
    np.testing.assert_allclose(sparse.intercept_hidden_ - plain.intercept_hidden_,
                               -0.1 * 0.5 * (q2 - 0.05), atol=1e-14)
    np.testing.assert_allclose(sparse.hidden_activity_, q2, atol=1e-15)
    assert not hasattr(plain, "hidden_activity_")


def test_sparsity_drives_hidden_activity_to_the_target():
    """Bars and stripes 3x3, 16 hidden units: without a target the mean hidden activation
    stays well above 0.1; with target 0.1 it ends within 0.015 of it (measured 0.104 to
    0.107 over seeds 0-2), every unit's mean is below 0.2, and the machine still beats the
    uniform model (-9 log 2 = -6.24 nats)."""
    data = bars_stripes(np.random.default_rng(0), size=3, n=200).data
    params = dict(learning_rate=0.1, batch_size=20, n_iter=150, random_state=0)
    free = RBM(16, **params).fit(data)
    sparse = RBM(16, sparsity_target=0.1, sparsity_cost=10.0, **params).fit(data)
    free_mean = free.transform(data).mean(axis=0)
    sparse_mean = sparse.transform(data).mean(axis=0)
    assert free_mean.mean() > 0.2, free_mean
    assert abs(sparse_mean.mean() - 0.1) < 0.015, sparse_mean
    assert sparse_mean.max() < 0.2, sparse_mean
    assert sparse.exact_log_likelihood(data) > -6.0


def test_from_network_reads_the_block_at_full_scale():
    """784-500 as populations: the weight block is read whole (0.002 s measured; edge by
    edge it took 0.9 s), and the machine writes the same net back bit for bit."""
    import time
    from neurosim.population import Population, Projection
    rng = np.random.default_rng(0)
    pops = [Population("visible0", tuple(f"v{i}" for i in range(784)), rng.normal(size=784), "visible", 0),
            Population("hidden1", tuple(f"h{j}" for j in range(500)), rng.normal(size=500), "hidden", 1)]
    W = rng.normal(size=(784, 500))
    net = Network.from_populations(pops, [Projection("visible0<->hidden1", "visible0", "hidden1", W, "symmetric")],
                                   name="rbm", description="784-500")
    start = time.perf_counter()
    rbm = RBM.from_network(net)
    assert time.perf_counter() - start < 0.25
    assert rbm.components_.tobytes() == W.T.tobytes() and rbm.visible_names_ is None
    assert rbm.to_network(description="784-500") == net


def test_rbm_m_momentum_preset_switches_after_five_epochs_and_leaves_the_defaults_alone():
    """``RBM(**RBM_M_MOMENTUM)`` (``neurosim rbm train``'s schedule): five epochs at 0.5 (the
    weights of momentum 0.5 throughout), then 0.9 (other weights)."""
    X = _binary(3, 20, 6)

    def fit(epochs: int, **params) -> RBM:
        return RBM(4, batch_size=10, n_iter=epochs, persistent=False, random_state=0, **params).fit(X)

    assert (RBM().momentum, RBM().final_momentum) == (0.0, None)        # scikit-learn's defaults
    np.testing.assert_array_equal(fit(5, **RBM_M_MOMENTUM).components_, fit(5, momentum=0.5).components_)
    switched, fixed = fit(6, **RBM_M_MOMENTUM).components_, fit(6, momentum=0.5).components_
    assert not np.array_equal(switched, fixed)
    with pytest.raises(TypeError):
        RBM_M_MOMENTUM["momentum"] = 0.0                                  # a preset, read-only
