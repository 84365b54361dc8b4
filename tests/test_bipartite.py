"""The compiled backend's bipartite CD kernel (neurosim/compiled/bipartite.py) equals the
registered rule's batched form, as every caller uses it: the RBM (CD-k, PCD-k with fewer
chains than cases, Gaussian visibles, sparsity), the DBN trainer's greedy and labelled top
RBMs, the top RBM's CD-k in up-down, and BoltzmannMachine's "cd" and "pcd"."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurosim import RBM, Edge, Network, Unit
from neurosim.compiled import bipartite
from neurosim.learning import get_rule
from neurosim.machines.boltzmann import BoltzmannMachine
from neurosim.machines.dbn import DeepBeliefNet
from neurosim.machines.dbn_train import RBM_M, Recipe, new_rbm, rbm_step
from neurosim.numerics import sigmoid

RNG = np.random.default_rng(0)
X = (RNG.random((5, 6)) < 0.4).astype(float)


@pytest.fixture
def calls(monkeypatch):
    """Every call of bipartite.change: a copy of its statistics, block, CD, rate and result."""
    seen, real = [], bipartite.change

    def recording(block, stats, cd, lr, buf, activity=None, offsets=None):
        copy = bipartite.Statistics(stats.V.copy(), None if stats.Y is None else stats.Y.copy(), stats.H.copy(),
                                    stats.n_pos)
        params = bipartite.Block(*(None if a is None else a.copy() for a in block))
        d, q = real(block, stats, cd, lr, buf, activity, offsets)
        seen.append((copy, params, cd, lr, {k: v.copy() for k, v in d.items()}, None if q is None else q.copy()))
        return d, q

    monkeypatch.setattr(bipartite, "change", recording)
    return seen


def rule_change(stats: bipartite.Statistics, lr: float, rule: str) -> dict:
    """Eq. 6 by the rule's batched form, phase by phase (pre = visible, post = hidden), in
    float64; a bias is a synapse from an always-on unit."""
    V, Y, H = (None if a is None else np.asarray(a, np.float64) for a in stats[:3])
    b = stats.n_pos
    r, m = get_rule(rule), len(V) - b

    def both(pre, post):
        return (r.batched(pre[:b], post[:b], "positive", lr / b)
                + r.batched(pre[b:], post[b:], "negative", lr / m))

    ones = np.ones((len(V), 1))
    out = {"W": both(V, H), "b": both(ones, V)[0], "c": both(ones, H)[0]}
    if Y is not None:
        out.update(U=both(Y, H), b_lab=both(ones, Y)[0])
    return out


def check_rule(call, rule: str, atol: float) -> None:
    stats, _, cd, lr, d, q = call
    expected = rule_change(stats, lr, rule)
    if cd.sparsity is not None:
        target, cost = cd.sparsity
        expected["c"] = expected["c"] - lr * cost * (q - target)
    assert sorted(d) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(d[name], value, rtol=0, atol=atol, err_msg=name)


def hidden(block, V, Y=None):
    x = V @ block.W + (0 if Y is None else Y @ block.U)
    return sigmoid(x + block.c)


@pytest.mark.parametrize("params, rule", [
    (dict(persistent=False, k=1), "cd"),
    (dict(persistent=False, k=3, momentum=0.5, weight_decay=0.01), "cd"),
    (dict(persistent=True, k=2, batch_size=3), "pcd"),                 # 3 chains, 5 cases
    (dict(persistent=False, k=2, visible="gaussian"), "cd"),
    (dict(persistent=True, k=1, visible="gaussian", batch_size=4), "pcd"),
    (dict(persistent=False, sparsity_target=0.1, sparsity_cost=0.5), "cd"),
])
def test_rbm_update_is_the_rule(calls, params, rule):
    """RBM.partial_fit (twice: the second from trained weights) against the rule; the
    statistics are rbm.m's (hidden probabilities, last visible means) or PCD's."""
    data = RNG.standard_normal((5, 6)) if params.get("visible") == "gaussian" else X
    rbm = RBM(4, learning_rate=0.3, random_state=1, **params)
    for _ in range(2):
        before = rbm.components_.copy() if hasattr(rbm, "components_") else None
        rbm.partial_fit(data)
    assert len(calls) == 2
    for call in calls:
        check_rule(call, rule, 1e-13)
    stats, block = calls[1][:2]
    b = stats.n_pos
    np.testing.assert_allclose(stats.H[:b], hidden(block, stats.V[:b]), atol=1e-13)   # probabilities
    np.testing.assert_allclose(stats.H[b:], hidden(block, stats.V[b:]), atol=1e-13)
    assert len(stats.V) - b == (params.get("batch_size", 10) if params["persistent"] else b)
    sampled = np.isin(stats.V[b:], (0.0, 1.0)).all()
    assert sampled == (params["persistent"] and params.get("visible") != "gaussian")
    if not params.get("momentum") and not params.get("weight_decay"):
        np.testing.assert_array_equal(rbm.components_, before + calls[1][4]["W"].T)


@pytest.mark.parametrize("labels", [False, True])
def test_dbn_greedy_and_labelled_top_rbm_step_is_the_rule(calls, labels):
    """dbn_train.rbm_step (rbm.m's CD-1; the top RBM with a softmax label group) in float32:
    the change equals the rule's within float32 rounding, and is what was applied."""
    r = Recipe(hidden=(6, 4), weight_decay=0.0)
    rng = np.random.default_rng(2)
    p, vel = new_rbm(6, 4, 3 if labels else 0, r, rng)
    V, Y = X.astype(np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]] if labels else None
    before = {k: v.copy() for k, v in p.items()}
    rbm_step(p, vel, V, Y, r, 0.0, rng)
    (call,) = calls
    check_rule(call, "cd", 2e-7)
    stats, block = call[:2]
    for name, d in call[4].items():
        np.testing.assert_array_equal(p[name], before[name] + d)             # momentum 0: v = d
    np.testing.assert_allclose(stats.H, hidden(block, stats.V, stats.Y), atol=1e-6)
    if labels:
        assert np.array_equal(stats.Y[:5], Y)
        np.testing.assert_allclose(stats.Y[5:].sum(axis=1), 1, atol=1e-6)  # softmax probabilities
        assert not np.isin(stats.Y[5:], (0.0, 1.0)).all()


def test_up_down_top_rbm_is_the_rule(calls):
    """up_down_step's CD-k in the top RBM: sampled hidden states in both phases, sampled
    pen states, label probabilities (those the last hidden states were sampled from);
    its change is the rule's on those statistics."""
    rng = np.random.default_rng(3)
    dbn = DeepBeliefNet((6, 5, 4, 7), 3)
    dbn.add_rbm(0.3 * rng.standard_normal((6, 5)), np.zeros(6), np.zeros(5))
    dbn.add_rbm(0.3 * rng.standard_normal((5, 4)), np.zeros(5), np.zeros(4))
    dbn.set_top(0.3 * rng.standard_normal((4, 7)), 0.3 * rng.standard_normal((3, 7)), np.zeros(4), np.zeros(3),
                np.zeros(7))
    Y = np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]]
    dbn.up_down_step(X.astype(np.float32), Y, 0.1, 3, rng)
    (call,) = calls
    check_rule(call, "cd", 2e-7)
    stats = call[0]
    assert np.isin(stats.H, (0.0, 1.0)).all() and np.isin(stats.V, (0.0, 1.0)).all()
    assert np.array_equal(stats.Y[:5], Y)
    np.testing.assert_allclose(stats.Y[5:].sum(axis=1), 1, atol=1e-6)   # probabilities of the last step
    assert not np.isin(stats.Y[5:], (0.0, 1.0)).all()


@pytest.mark.parametrize("procedure", ["cd", "pcd"])
def test_boltzmann_machine_cd_is_the_rule_on_its_edges(calls, procedure):
    """BoltzmannMachine's "cd"/"pcd" on an RBM-shaped net with a missing edge: the kernel's
    change is the rule's, and the machine's update is it, zero where there is no edge."""
    units = [Unit(f"v{i}", role="visible") for i in range(3)] + [Unit(f"h{j}") for j in range(2)]
    edges = [Edge(f"v{i}", f"h{j}", 0.2 * (i - j), "symmetric") for i in range(3) for j in range(2) if (i, j) != (2, 1)]
    bm = BoltzmannMachine(Network(units, edges), procedure=procedure, k=2, n_chains=4, learning_rate=0.2,
                          random_state=4)
    upd = bm.compute_update(X[:, :3])
    (call,) = calls
    check_rule(call, procedure, 1e-14)
    dW = call[4]["W"]
    assert upd.weights[2, 4] == upd.weights[4, 2] == 0.0 and dW[2, 1] != 0.0
    np.testing.assert_array_equal(upd.weights[np.ix_([0, 1], [3, 4])], dW[:2])
    np.testing.assert_array_equal(upd.weights, upd.weights.T)
    np.testing.assert_array_equal(upd.biases, np.concatenate([call[4]["b"], call[4]["c"]]))
    stats = call[0]
    assert np.array_equal(bm.last_statistics_["negative"][:, :3], stats.V[5:])
    if procedure == "pcd":
        assert len(stats.V) == 5 + 4 and np.array_equal(bm.chains_[:, :3], stats.V[5:])


@pytest.mark.parametrize("sample_labels", [False, True])
def test_labelled_top_rbm_step_keeps_the_bits_of_rbm_m(sample_labels):
    """dbn_train.rbm_step through the kernel gives, bit for bit, what the trainer's own
    transcription of rbm.m gave before the kernel (the hinton2006 preset's weights must
    not move): float32, CD-1 with a softmax label group, momentum and weight cost. With
    ``sample_labels``, ``rbm_l2.m``'s label reconstruction: a one-hot sample of the
    softmax (one uniform a case, after the hidden states) drives the hidden units and
    enters the label statistics."""
    from neurosim.numerics import categorical, softmax

    def rbm_m(p, vel, V, Y, r, momentum, rng):          # the trainer's code before the kernel
        m = len(V)
        h0 = sigmoid(V @ p["W"] + p["c"] + Y @ p["U"])
        hs = (rng.random(h0.shape, dtype=h0.dtype) < h0).astype(h0.dtype)
        v1 = sigmoid(hs @ p["W"].T + p["b"])
        y1 = softmax(hs @ p["U"].T + p["b_lab"]).astype(V.dtype)
        if sample_labels:
            y1 = np.eye(y1.shape[1], dtype=V.dtype)[categorical(y1, rng.random(m, dtype=V.dtype))]
        h1 = sigmoid(v1 @ p["W"] + p["c"] + y1 @ p["U"])
        lr, decay = r.learning_rate / m, r.learning_rate * r.weight_decay
        pos_neg = np.vstack([h0, h1])
        pos_neg[:m] *= lr
        pos_neg[m:] *= -lr
        grads = {"W": np.vstack([V, v1]).T @ pos_neg, "b": lr * (V - v1).sum(axis=0), "c": pos_neg.sum(axis=0),
                 "U": np.vstack([Y, y1]).T @ pos_neg, "b_lab": lr * (Y - y1).sum(axis=0)}
        for name, d in grads.items():
            if name in ("W", "U"):
                d -= decay * p[name]
            vel[name] *= momentum
            vel[name] += d
            p[name] += vel[name]

    r = Recipe(hidden=(6, 9), weight_decay=0.01)
    p, vel = new_rbm(12, 9, 4, r, np.random.default_rng(5))
    q, qvel = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in vel.items()}
    data = np.random.default_rng(6).random((30, 12)).astype(np.float32)
    Y = np.eye(4, dtype=np.float32)[np.random.default_rng(7).integers(0, 4, 30)]
    ours, theirs, buf = np.random.default_rng(8), np.random.default_rng(8), None
    for s in range(0, 30, 10):
        buf = rbm_step(p, vel, data[s:s + 10], Y[s:s + 10], r, 0.5 + 0.2 * s / 10, ours, buf,
                       cd=replace(RBM_M, sample_labels=sample_labels))
        rbm_m(q, qvel, data[s:s + 10], Y[s:s + 10], r, 0.5 + 0.2 * s / 10, theirs)
    for name in p:
        assert np.array_equal(p[name], q[name]) and np.array_equal(vel[name], qvel[name]), name


# -- linear (Gaussian) hidden units: rbmhidlinear.m ------------------------------------------
LINEAR = bipartite.CD(gaussian_hidden=True, summed_differences=True)


def _linear_block(rng: np.random.Generator) -> bipartite.Block:
    return bipartite.Block(0.5 * rng.standard_normal((3, 2)), 0.3 * rng.standard_normal(3),
                           0.3 * rng.standard_normal(2))


def _visible_states(n: int) -> np.ndarray:
    return np.array([[(s >> i) & 1 for i in range(n)] for s in range(2 ** n)], dtype=float)


def test_gaussian_hidden_visible_conditional_is_exact_enumeration():
    """``P(v_i = 1 | h)`` of the kernel against the joint ``exp(-E(v, h))``, ``E = -b.v - c.h
    - v W h + |h|^2 / 2``, enumerated over the 8 visible states at fixed real-valued h."""
    rng = np.random.default_rng(3)
    block = _linear_block(rng)
    H = rng.standard_normal((4, 2))
    states = _visible_states(3)
    V = np.empty((4, 3))
    bipartite.visible_means(block, H, LINEAR, V, None)
    for h, v_mean in zip(H, V):
        log_p = states @ block.b + states @ block.W @ h + block.c @ h - h @ h / 2
        p = np.exp(log_p - log_p.max())
        np.testing.assert_allclose(v_mean, (p / p.sum()) @ states, rtol=1e-12)


def test_gaussian_hidden_conditional_is_unit_variance_normal_around_the_input():
    """``h | v ~ N(v W + c, I)``: the positive statistics are the means exactly; 20,000 draws
    have mean and variance within 4 standard errors (1/sqrt(n) and sqrt(2/n))."""
    rng = np.random.default_rng(4)
    block = _linear_block(rng)
    n = 20000
    data = np.tile([1.0, 0.0, 1.0], (n, 1))
    buf = bipartite.buffers(None, block, n, n)
    stats = bipartite.statistics(block, data, LINEAR, rng, buf)
    mean = data[0] @ block.W + block.c
    np.testing.assert_array_equal(stats.H[:n], np.tile(mean, (n, 1)))
    draws = buf["Hs"][:n]
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 / np.sqrt(n))
    assert np.all(np.abs(draws.var(axis=0) - 1) < 4 * np.sqrt(2 / n))


def test_gaussian_hidden_gibbs_chain_samples_the_exact_visible_marginal():
    """20,000 independent persistent chains, 30 steps of the kernel's Gibbs sampler each,
    visit the visible states with ``P(v) ~ exp(b.v + |c + v W|^2 / 2)`` (h integrated out),
    each frequency within 4 binomial standard errors."""
    rng = np.random.default_rng(5)
    block = _linear_block(rng)
    m = 20000
    chain = rng.standard_normal((m, 2))
    data = np.zeros((1, 3))
    buf = bipartite.buffers(None, block, 1, m)
    for _ in range(30):
        stats = bipartite.statistics(block, data, LINEAR, rng, buf, chain=chain)
    states = _visible_states(3)
    log_p = states @ block.b + ((states @ block.W + block.c) ** 2).sum(axis=1) / 2
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    codes = stats.V[1:] @ (2 ** np.arange(3))
    freq = np.bincount(codes.astype(int), minlength=8) / m
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / m))


def test_sampled_labels_are_one_hot_draws_of_the_softmax():
    """``one_hot``: every row has exactly one unit on, and over 20,000 rows each unit's
    frequency is its probability within 4.5 binomial standard errors (a false alarm in
    about 1 of 10^5 runs per unit); the up-down chain's label rows are one-hot too."""
    rng = np.random.default_rng(0)
    p = np.array([0.05, 0.6, 0.1, 0.25], dtype=np.float32)
    n = 20_000
    out = np.tile(p, (n, 1))
    bipartite.one_hot(out, rng, np.empty(n, np.float32), out)
    assert np.array_equal(out.sum(axis=1), np.ones(n)) and set(np.unique(out)) == {0.0, 1.0}
    assert (np.abs(out.mean(axis=0) - p) < 4.5 * np.sqrt(p * (1 - p) / n)).all()
    from neurosim.machines.dbn import _updown_cd
    block = bipartite.Block(*(0.5 * rng.standard_normal(s).astype(np.float32) for s in ((6, 5), 6, 5, (3, 5), 3)))
    V, Y = (rng.random((8, 6)) < 0.5).astype(np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    for sample in (False, True):
        stats = bipartite.statistics(block, V, _updown_cd(4, sample), rng, bipartite.buffers(None, block, 8, 8), Y)
        one_hot_rows = set(np.unique(stats.Y[8:])) == {0.0, 1.0} and (stats.Y[8:].sum(axis=1) == 1).all()
        assert one_hot_rows == sample
