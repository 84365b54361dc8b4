"""Centered RBM training (Melchior, Fischer and Wiskott 2016): the conversion between the
centered and the ordinary parameters against exact enumeration, the kernel's centered
change against the formula written out, the uncentered numbers kept bit for bit, the
RBM's parameter, file and resume, the CLI flag, and what centering does to learning."""

from __future__ import annotations

import itertools
import os
import signal

import numpy as np
import pytest
from test_cli_mnist import fake_mnist  # noqa: F401  (a fixture)

from neurosim import RBM
from neurosim.cli import main
from neurosim.compiled import bipartite
from neurosim.compiled.bipartite import CD, Block
from neurosim.errors import ModelFileError, ParameterError
from neurosim.machines.base import read_npz_meta, write_npz
from neurosim.machines.runs import fit_run

NV, NH = 4, 3


def _states(n: int) -> np.ndarray:
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)))


def _centered_energy(V, H, W, b, c, mu, lam) -> np.ndarray:
    """``E~(v, h) = -(v - mu).b~ - (h - lambda).c~ - (v - mu)^T W (h - lambda)``, every pair of rows."""
    Vc, Hc = V - mu, H - lam
    return -(Vc @ b)[:, None] - (Hc @ c)[None, :] - Vc @ W @ Hc.T


def _centered_log_p(W, b, c, mu, lam) -> np.ndarray:
    """``log p(v)`` of every visible state by enumerating every (v, h) of the centered energy."""
    E = _centered_energy(_states(NV), _states(NH), W, b, c, mu, lam)
    log_unnorm = np.logaddexp.reduce(-E, axis=1)
    return log_unnorm - np.logaddexp.reduce(log_unnorm)


def _centered_rbm(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((NV, NH)), rng.standard_normal(NV), rng.standard_normal(NH),
            rng.random(NV), rng.random(NH))


def test_centered_energy_is_the_ordinary_energy_of_the_converted_biases_plus_a_constant():
    W, b_, c_, mu, lam = _centered_rbm()
    b, c = bipartite.uncentered_biases(W, b_, c_, mu, lam)
    V, H = _states(NV), _states(NH)
    ordinary = -(V @ b)[:, None] - (H @ c)[None, :] - V @ W @ H.T
    constant = mu @ b_ + lam @ c_ - mu @ W @ lam
    assert np.allclose(_centered_energy(V, H, W, b_, c_, mu, lam) - ordinary, constant, rtol=0, atol=1e-12)


def test_moving_the_offsets_with_the_reparameterisation_keeps_p_v():
    """Algorithm 1's re-parameterisation, written out: b~ += W (lambda' - lambda),
    c~ += W^T (mu' - mu). Exact p(v) of the centered energy is unchanged, the ordinary
    biases are unchanged, and the library's exact log p(v) of them is the same p(v)."""
    W, b_, c_, mu, lam = _centered_rbm(1)
    rng = np.random.default_rng(2)
    mu2, lam2 = rng.random(NV), rng.random(NH)
    b2, c2 = b_ + W @ (lam2 - lam), c_ + W.T @ (mu2 - mu)
    before, after = _centered_log_p(W, b_, c_, mu, lam), _centered_log_p(W, b2, c2, mu2, lam2)
    assert np.allclose(after, before, rtol=0, atol=1e-12)
    assert not np.allclose(_centered_log_p(W, b_, c_, mu2, lam2), before, atol=1e-3)   # offsets alone do move it
    for x, y in zip(bipartite.uncentered_biases(W, b2, c2, mu2, lam2), bipartite.uncentered_biases(W, b_, c_, mu, lam)):
        assert np.allclose(x, y, rtol=0, atol=1e-12)
    rbm = RBM(NH, n_iter=0).fit(_states(NV))
    b, c = bipartite.uncentered_biases(W, b_, c_, mu, lam)
    rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_ = W.T.copy(), b, c
    assert np.allclose(rbm.exact_log_prob(_states(NV)), before, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ["C", "F"])
def test_centered_change_is_the_formula_written_out(order):
    """On a fixed minibatch (5 cases) and fixed chain states (3): the offsets move toward
    the positive means, dW is the centered covariance difference, and the bias changes
    are the centered ones mapped to the ordinary biases; stepping the centered
    parameters and converting back gives the same block (a second route)."""
    rng = np.random.default_rng(3)
    W = np.asarray(0.3 * rng.standard_normal((NV + 2, NH + 1)), order=order)
    block = Block(W, rng.standard_normal(NV + 2), rng.standard_normal(NH + 1))
    V = (rng.random((8, NV + 2)) < 0.5).astype(float)
    H = rng.random((8, NH + 1))
    mu, lam = rng.random(NV + 2), rng.random(NH + 1)
    mu0, lam0, lr, (nu_mu, nu_lam) = mu.copy(), lam.copy(), 0.3, (0.1, 0.2)
    buf = bipartite.buffers(None, block, 5, 3)
    stats = bipartite.Statistics(V.copy(), None, H.copy(), 5)
    d, _ = bipartite.change(block, stats, CD(centering=(nu_mu, nu_lam)), lr, buf, offsets=(mu, lam))

    assert np.allclose(mu, (1 - nu_mu) * mu0 + nu_mu * V[:5].mean(0), rtol=0, atol=1e-15)
    assert np.allclose(lam, (1 - nu_lam) * lam0 + nu_lam * H[:5].mean(0), rtol=0, atol=1e-15)
    Vc, Hc = V - mu, H - lam
    dW = lr * (Vc[:5].T @ Hc[:5] / 5 - Vc[5:].T @ Hc[5:] / 3)
    db_, dc_ = lr * (V[:5].mean(0) - V[5:].mean(0)), lr * (H[:5].mean(0) - H[5:].mean(0))
    assert np.allclose(d["W"], dW, rtol=0, atol=1e-14)
    assert np.allclose(d["b"], db_ - dW @ lam, rtol=0, atol=1e-14)
    assert np.allclose(d["c"], dc_ - dW.T @ mu, rtol=0, atol=1e-14)

    b_, c_ = block.b + W @ lam, block.c + W.T @ mu      # the centered biases at the new offsets
    b_new, c_new = bipartite.uncentered_biases(W + dW, b_ + db_, c_ + dc_, mu, lam)
    assert np.allclose(block.b + d["b"], b_new, rtol=0, atol=1e-13)
    assert np.allclose(block.c + d["c"], c_new, rtol=0, atol=1e-13)


@pytest.mark.parametrize("chain", [False, True])
def test_zero_offsets_at_rate_zero_are_the_uncentered_update_bit_for_bit(chain):
    """CD-1 / PCD-1 steps with momentum, weight cost and sparsity: the centered path with
    mu = lambda = 0 that never move gives the uncentered numbers exactly."""
    rng = np.random.default_rng(4)
    X = (rng.random((40, 7)) < 0.3).astype(np.float32)
    results = []
    for centering in (None, (0.0, 0.0)):
        r = np.random.default_rng(5)
        block = Block(0.1 * r.standard_normal((7, 5)).astype(np.float32), np.zeros(7, np.float32),
                      np.zeros(5, np.float32))
        velocity = {k: np.zeros_like(a) for k, a in zip("Wbc", block)}
        h = np.zeros((10, 5), np.float32) if chain else None
        offsets = (np.zeros(7, np.float32), np.zeros(5, np.float32)) if centering else None
        cd, buf = CD(k=1, sparsity=(0.1, 0.1), centering=centering), None
        for s in range(0, 40, 10):
            buf = bipartite.step(block, X[s:s + 10], cd, 0.1, r, 0.5, 0.001, velocity, chain=h, buf=buf,
                                 offsets=offsets)
        results.append(block)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_centering_refuses_what_it_does_not_cover():
    with pytest.raises(ParameterError, match="centering is for binary units"):
        CD(gaussian=True, centering=(0.01, 0.01))
    with pytest.raises(ParameterError, match="centered=True is for binary visible units"):
        RBM(3, centered=True, visible="gaussian").fit(np.zeros((4, 2)))
    with pytest.raises(ParameterError, match="offset_rate"):
        RBM(3, centered=True, offset_rate=1.5).fit(np.zeros((4, 2)))
    block = Block(np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.zeros((2, 2)), np.zeros(2))
    stats = bipartite.Statistics(np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((4, 2)), 2)
    with pytest.raises(ParameterError, match=r"needs the offsets \(mu, lambda, mu_y\) with a label group"):
        bipartite.change(block, stats, CD(centering=(0.1, 0.1)), 0.1, bipartite.buffers(None, block, 2, 2),
                         offsets=(np.zeros(2), np.zeros(2)))


def _prototypes(seed: int, invert: bool, n: int = 300) -> np.ndarray:
    """12 pixels: 4 sparse prototypes (20% on), one per case, 5% of the pixels flipped;
    ``invert``: 1 - that (mostly on, the case centering is for)."""
    rng = np.random.default_rng(seed)
    P = rng.random((4, 12)) < 0.2
    X = P[rng.integers(0, 4, n)] ^ (rng.random((n, 12)) < 0.05)
    return (~X if invert else X).astype(float)


def _gain(X: np.ndarray, seed: int, centered: bool) -> float:
    rbm = RBM(8, learning_rate=0.2, batch_size=20, n_iter=30, shuffle=True, random_state=seed, centered=centered)
    return rbm.fit(X).exact_log_likelihood(X)


def test_centered_pcd_learns_at_least_as_well_as_uncentered():
    """PCD-1 at the same rate (0.2, 30 epochs of 300 cases), 6 seeds, exact log-likelihood
    of the training cases. Mostly-on data: centered is ahead on every seed (measured
    0.09-1.26 nats, mean 0.63); sparse data: ahead on the mean (measured 0.03; one seed
    of six behind by 0.07). The uncentered model depends on which value is 'on' (the
    flip moves it by 0.05-1.39 nats); the centered one hardly does (0.006-0.058: the
    paper's flip invariance, which holds in expectation)."""
    dense, sparse, flips = [], [], []
    for seed in range(6):
        X, Xf = _prototypes(100 + seed, True), _prototypes(100 + seed, False)
        centered, centered_f = _gain(X, seed, True), _gain(Xf, seed, True)
        dense.append(centered - _gain(X, seed, False))
        sparse.append(centered_f - _gain(Xf, seed, False))
        flips.append(abs(centered - centered_f))
    assert min(dense) > 0 and np.mean(dense) > 0.3
    assert np.mean(sparse) > 0
    assert max(flips) < 0.2


def _data() -> np.ndarray:
    return (np.random.default_rng(6).random((50, 9)) < 0.3).astype(np.float32)


def test_rbm_starts_at_algorithm_1s_initial_model():
    """Offsets: the data's mean and 0.5; biases: b~ = logit(mu), c~ = 0, stored as the
    ordinary b = b~ - W lambda, c = -W^T mu; the weights are those of the uncentered RBM."""
    X = _data()
    rbm = RBM(4, n_iter=0, centered=True, random_state=0).fit(X)
    plain = RBM(4, n_iter=0, random_state=0).fit(X)
    mu = X.mean(0)
    assert np.array_equal(rbm.components_, plain.components_)
    assert np.allclose(rbm.visible_offset_, mu, rtol=0, atol=1e-7) and np.all(rbm.hidden_offset_ == 0.5)
    W = rbm.components_.T.astype(np.float64)
    assert np.allclose(rbm.intercept_visible_, np.log(mu / (1 - mu)) - W @ np.full(4, 0.5), rtol=0, atol=1e-5)
    assert np.allclose(rbm.intercept_hidden_, -mu @ W, rtol=0, atol=1e-6)


def test_rbm_offsets_follow_the_data_and_are_saved(tmp_path):
    """After training the hidden offset is near the mean hidden probability of the data
    (a sliding average with rate 0.05 over 50 updates); save and load keep the offsets, and
    partial_fit continues from them as the unsaved machine does."""
    X = _data()
    rbm = RBM(4, learning_rate=0.1, batch_size=5, n_iter=5, centered=True, offset_rate=0.05,
              visible_offset_rate=0.0, random_state=1).fit(X)
    assert np.allclose(rbm.visible_offset_, X.mean(0), rtol=0, atol=1e-7)          # rate 0: fixed
    assert np.abs(rbm.hidden_offset_ - rbm.transform(X).mean(0)).max() < 0.05
    rbm.save(tmp_path / "c.npz")
    back = RBM.load(tmp_path / "c.npz")
    for name in ("visible_offset_", "hidden_offset_", "components_", "intercept_visible_", "intercept_hidden_"):
        assert np.array_equal(getattr(back, name), getattr(rbm, name)), name
    back.random_state_ = np.random.default_rng(9)
    rbm.random_state_ = np.random.default_rng(9)
    assert np.array_equal(back.partial_fit(X[:5]).components_, rbm.partial_fit(X[:5]).components_)
    assert np.array_equal(back.hidden_offset_, rbm.hidden_offset_)
    assert not np.array_equal(back.hidden_offset_, RBM.load(tmp_path / "c.npz").hidden_offset_)


def test_centered_fit_interrupted_then_resumed_ends_with_the_uninterrupted_weights(tmp_path):
    X, path = _data(), tmp_path / "rbm.ckpt.npz"

    def machine():
        return RBM(4, learning_rate=0.1, batch_size=8, n_iter=3, momentum=0.5, shuffle=True, centered=True,
                   random_state=2)

    whole = machine().fit(X)

    def interrupt(at):
        if (at.epoch, at.batch) == (1, 3):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit_run(machine(), X, path, log=lambda m: None, after_batch=interrupt)
    resumed = machine()
    fit_run(resumed, X, path, log=lambda m: None)
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_", "visible_offset_",
                 "hidden_offset_"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name


def test_cli_rbm_train_centered(fake_mnist, tmp_path, capsys):
    """--centered --no-momentum: the file is an ordinary RBM with its offsets beside it,
    the flags in its parameters and info; evaluate --exact reads it as any RBM."""
    out = tmp_path / "c.npz"
    flags = ["rbm", "train", "--hidden", "5", "--epochs", "2", "--batch", "50", "--persistent", "--centered",
             "--offset-rate", "0.02", "--no-momentum", "--weight-decay", "0", "--out", str(out)]
    assert main(flags) == 0
    assert "centered PCD-1" in capsys.readouterr().out
    rbm, info = RBM.load(out), RBM.load_info(out)
    assert rbm.centered and rbm.offset_rate == rbm.visible_offset_rate == 0.02 and rbm.momentum == 0.0
    assert info["centered"] and info["offset_rate"] == 0.02 and info["momentum"] is False
    assert rbm.visible_offset_.shape == (784,) and rbm.hidden_offset_.shape == (5,)
    assert main(["rbm", "evaluate", str(out), "--exact", "--limit", "10"]) == 0
    with pytest.raises(SystemExit) as exit_:
        main(flags[:-2] + ["--offset-rate", "2", "--out", str(tmp_path / "x.npz")])
    assert exit_.value.code == 2
    assert "must be a number in [0, 1]" in capsys.readouterr().err


def test_a_file_whose_offsets_do_not_fit_is_refused_by_name(tmp_path):
    RBM(4, n_iter=1, centered=True, random_state=0).fit(_data()).save(tmp_path / "c.npz")
    arrays, meta = read_npz_meta(tmp_path / "c.npz", "RBM file")
    write_npz(tmp_path / "bad.npz", {**arrays, "hidden_offset": np.zeros(3)}, meta)
    with pytest.raises(ModelFileError, match=r"bad.npz: hidden_offset of shape \(3,\) does not fit W"):
        RBM.load(tmp_path / "bad.npz")


def algorithm_1_step(W, b_, c_, mu, lam, V, H, n: int, lr: float, rates: tuple[float, float]) -> tuple:
    """One update of algorithm 1 as the paper writes it, on the centered parameters (W,
    b~, c~) and the offsets, from a chain's stacked statistics ``V``, ``H`` (``n``
    positive rows): the offsets move at ``rates`` (nu_mu, nu_lambda), b~ and c~ are
    re-parameterised so that the distribution stays, then the centered gradient.
    Returns the new ``(W, b~, c~, mu, lambda)``."""
    (nu_mu, nu_lam), m = rates, len(V) - n
    mu2, lam2 = (1 - nu_mu) * mu + nu_mu * V[:n].mean(0), (1 - nu_lam) * lam + nu_lam * H[:n].mean(0)
    b_, c_ = b_ + W @ (lam2 - lam), c_ + W.T @ (mu2 - mu)       # the re-parameterisation
    Vc, Hc = V - mu2, H - lam2
    return (W + lr * (Vc[:n].T @ Hc[:n] / n - Vc[n:].T @ Hc[n:] / m), b_ + lr * (V[:n].mean(0) - V[n:].mean(0)),
            c_ + lr * (H[:n].mean(0) - H[n:].mean(0)), mu2, lam2)


def test_rbm_follows_algorithm_1_in_centered_coordinates():
    """A second route: algorithm 1 as the paper writes it, on the centered parameters
    (W, b~, c~) with the offsets, re-parameterising b~ and c~ when the offsets move,
    driven by the same chain (the ordinary block's statistics, the same draws). After
    40 PCD-1 updates without momentum its ordinary biases and weights are the RBM's."""
    X = _prototypes(7, True, n=50)
    rbm = RBM(4, learning_rate=0.5, batch_size=10, n_iter=0, centered=True, offset_rate=0.3,
              visible_offset_rate=0.2, random_state=3).fit(X)
    W, mu, lam = rbm.components_.T.copy(), rbm.visible_offset_.copy(), rbm.hidden_offset_.copy()
    W0 = W.copy()
    b_, c_ = rbm.intercept_visible_ + W @ lam, rbm.intercept_hidden_ + W.T @ mu
    rng, h = np.random.default_rng(), rbm.h_samples_.copy()
    rng.bit_generator.state = rbm.random_state_.bit_generator.state
    buf, lr = None, 0.5
    for step in range(40):
        batch = X[10 * (step % 5):10 * (step % 5) + 10]
        rbm.partial_fit(batch)
        b, c = bipartite.uncentered_biases(W, b_, c_, mu, lam)
        block = Block(W, b, c)
        buf = bipartite.buffers(buf, block, 10, 10)
        V, _, H, n = bipartite.statistics(block, batch, CD(), rng, buf, chain=h)
        W, b_, c_, mu, lam = algorithm_1_step(W, b_, c_, mu, lam, V, H, n, lr, (0.2, 0.3))
    b, c = bipartite.uncentered_biases(W, b_, c_, mu, lam)
    assert np.allclose(rbm.components_.T, W, rtol=0, atol=1e-12)
    assert np.allclose(rbm.intercept_visible_, b, rtol=0, atol=1e-12)
    assert np.allclose(rbm.intercept_hidden_, c, rtol=0, atol=1e-12)
    assert np.allclose(rbm.hidden_offset_, lam, rtol=0, atol=1e-15) and np.array_equal(rbm.h_samples_, h)
    assert np.abs(W - W0).max() > 0.05 and np.abs(lam - 0.5).max() > 0.002      # it did learn
    assert np.abs(mu - X.mean(0)).max() > 0.05                                   # and the offsets moved
