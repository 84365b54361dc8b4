"""PCD with a number of persistent chains independent of the minibatch (``RBM(n_chains=)``)
and parallel tempering of its negative phase (``RBM(n_temperatures=)``,
:func:`neurosim.compiled.bipartite.tempered_gibbs`): one update against a plain numpy
transcription of Tieleman's rule, the samplers against exact enumeration with bounds from
the sample size, the swap's Metropolis rule, files, resume, the CLI and torch."""

from __future__ import annotations

import copy
import json
import os
import signal

import numpy as np
import pytest

from helpers import kl_bound, optional, run_cli
from neurosim import RBM
from neurosim.compiled import arrays, bipartite
from neurosim.errors import ParameterError
from neurosim.inference.exact import all_states
from neurosim.machines.ais import exact_log_partition, log_prob
from neurosim.numerics import sigmoid
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)

SIGMAS = 5.0            # a bound this many standard errors wide: a correct sampler fails it about once in 10^6


def _rbm_params(rng: np.random.Generator, nv: int = 6, nh: int = 4, scale: float = 1.0):
    """A random RBM's ``W`` (n_visible x n_hidden), ``b``, ``c``."""
    return scale * rng.standard_normal((nv, nh)), rng.standard_normal(nv), rng.standard_normal(nh)


def _exact_marginals(W, b, c, beta: float = 1.0) -> np.ndarray:
    """``P(v_i = 1)`` of ``p_beta(v) ~ sum_h exp(-beta E(v, h))`` by enumerating the visible states."""
    W, b, c = beta * W, beta * b, beta * c
    V = all_states(len(b)).astype(np.float64)
    return np.exp(log_prob(V, W, b, c, exact_log_partition(W, b, c))) @ V


def _assert_marginals(samples: np.ndarray, exact: np.ndarray) -> None:
    """Each unit's mean over ``samples`` (independent rows) within SIGMAS standard errors
    ``sqrt(p (1 - p) / N)`` of the exact marginal ``p``."""
    se = np.sqrt(exact * (1 - exact) / len(samples))
    np.testing.assert_array_less(np.abs(samples.mean(axis=0) - exact), SIGMAS * se)


# -- one update: the kernel against Tieleman's rule written out ------------------------------------------
def _pcd_update(rbm: RBM, V0: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One PCD-k update of ``rbm`` (its state unchanged) written out in numpy: ``k`` Gibbs
    steps of the M chains, ``dW = lr (<v h>_data - <v h>_model)`` with the positive mean
    over the minibatch's B rows and the negative over the chains (Tieleman 2008), centered
    by offsets that move first (Melchior et al. 2016, algorithm 1), then weight decay and
    momentum. The draws in the kernel's order."""
    W, b, c, H = (a.astype(np.float64) for a in (rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_,
                                                   rbm.h_samples_))
    lr, B, M = rbm.learning_rate, len(V0), len(H)
    for s in range(rbm.k):
        Vk = (rng.random((M, W.shape[1])) < sigmoid(H @ W + b)).astype(np.float64)
        if s < rbm.k - 1:
            H = (rng.random((M, W.shape[0])) < sigmoid(Vk @ W.T + c)).astype(np.float64)
    H0, Hk = sigmoid(V0 @ W.T + c), sigmoid(Vk @ W.T + c)
    chains = (rng.random(Hk.shape) < Hk).astype(np.float64)
    mu, lam = np.zeros(len(b)), np.zeros(len(c))
    out = {}
    if rbm.centered:
        mu = (1 - rbm.visible_offset_rate) * rbm.visible_offset_ + rbm.visible_offset_rate * V0.mean(axis=0)
        lam = (1 - rbm.offset_rate) * rbm.hidden_offset_ + rbm.offset_rate * H0.mean(axis=0)
        out.update(visible_offset_=mu, hidden_offset_=lam)
    dW = lr * ((H0 - lam).T @ (V0 - mu) / B - (Hk - lam).T @ (Vk - mu) / M)
    db = lr * (V0.mean(axis=0) - Vk.mean(axis=0)) - lam @ dW
    dc = lr * (H0.mean(axis=0) - Hk.mean(axis=0)) - dW @ mu
    dW -= lr * rbm.weight_decay * W
    velocity = [rbm.momentum * v + d for v, d in zip(rbm._velocity, (dW, db, dc))]
    out.update(components_=W + velocity[0], intercept_visible_=b + velocity[1], intercept_hidden_=c + velocity[2],
               h_samples_=chains)
    return out


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("n_chains,k", [(3, 1), (17, 2), (5, 1)])
def test_one_update_with_m_chains_is_tieleman_rule_written_out(centered, n_chains, k):
    """An update of B = 5 rows and M chains (M < B, M > B, M = B), with momentum, weight decay
    and centering (nu_mu, nu both moving): the kernel's parameters, offsets and chains
    equal the numpy transcription's from the same state and draws."""
    data = np.random.default_rng(0)
    X = (data.random((5, 7)) < 0.4).astype(np.float64)
    rbm = RBM(4, learning_rate=0.3, batch_size=5, n_chains=n_chains, k=k, momentum=0.5, weight_decay=0.01,
              centered=centered, offset_rate=0.1, visible_offset_rate=0.2, random_state=1)
    rbm.partial_fit(X).partial_fit(X[::-1].copy())       # a state with non-zero velocity and chains
    assert rbm.h_samples_.shape == (n_chains, 4) and rbm.h_samples_.any()
    expected = _pcd_update(rbm, X, copy.deepcopy(rbm.random_state_))
    rbm.partial_fit(X)
    for name, value in expected.items():
        np.testing.assert_allclose(getattr(rbm, name), value, rtol=1e-12, atol=1e-13, err_msg=name)


def test_n_chains_none_is_batch_size_bit_for_bit():
    """``n_chains=None`` is ``n_chains=batch_size``: the same numbers, bit for bit (the
    digest tests pin those of the code before ``n_chains``)."""
    X = (np.random.default_rng(2).random((23, 9)) < 0.3).astype(np.float64)
    fits = [RBM(5, batch_size=4, n_iter=3, momentum=0.5, random_state=3, n_chains=m).fit(X) for m in (None, 4)]
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_"):
        assert np.array_equal(getattr(fits[0], name), getattr(fits[1], name)), name
    assert fits[0].h_samples_.shape == (4, 5)


# -- the samplers against exact enumeration (weights frozen: no change applied) -----------------------
def _frozen_chains(block, cd, n_chains: int, updates: int, seed: int) -> np.ndarray:
    """The visible states of the model's chains (the negative phase of :func:`bipartite.statistics`)
    after ``updates`` updates whose change is never applied, from hidden states 0."""
    rng = np.random.default_rng(seed)
    chain = np.zeros((cd.temperatures * n_chains, len(block.c)))
    data = np.zeros((2, len(block.b)))
    buf = bipartite.buffers(None, block, len(data), n_chains)
    for t in range(updates):
        stats = bipartite.statistics(block, data, cd, rng, buf, chain=chain, swap=t)
    return stats.V[len(data):].copy()


@pytest.mark.parametrize("temperatures", [1, 4])
def test_frozen_chains_sample_the_exact_visible_marginals(temperatures):
    """20,000 independent persistent chains of a 6-4 RBM (weights ~ N(0, 1)), PCD-1 and
    tempering at 4 temperatures, after 60 updates at frozen weights: each visible unit's
    mean within 5 standard errors of the exact marginal (enumeration of the 2^6 states)."""
    block = bipartite.Block(*_rbm_params(np.random.default_rng(4)))
    V = _frozen_chains(block, bipartite.CD(k=1, temperatures=temperatures), 20_000, 60, seed=5)
    _assert_marginals(V, _exact_marginals(*block[:3]))


def _bimodal(nv: int = 8, w: float = 8.0) -> bipartite.Block:
    """One hidden unit joined to ``nv`` visible ones by weight ``w``, biases ``-w/2`` and
    ``-w nv / 2``: two modes of equal energy 0, all off and all on (h = v_i), each
    ``P(v_i = 1 | h = 0) = sigmoid(-w/2)``; leaving the all-off mode needs half the
    visible units on at once."""
    return bipartite.Block(np.full((nv, 1), w), np.full(nv, -w / 2), np.array([-w * nv / 2]))


def test_tempering_visits_both_modes_where_gibbs_stays_in_one():
    """The bimodal RBM, 100 chains started in the all-off mode, 250 updates of k = 1: the
    exact marginal of every visible unit is 1/2 (by symmetry, checked by enumeration).
    With 10 temperatures the model's chains spend between a quarter and three quarters
    of the time in the all-on mode, and most chains visit both; plain Gibbs leaves the
    all-off mode with probability about 70 sigmoid(-4)^4 / 2 = 4e-6 per step, so over
    25,000 chain-steps at most a few chains escape (the bound: 5 of 100)."""
    block = _bimodal()
    np.testing.assert_allclose(_exact_marginals(*block[:3]), 0.5, atol=1e-12)
    visits = {}
    for K in (1, 10):
        rng, cd = np.random.default_rng(6), bipartite.CD(k=1, temperatures=K)
        chain, buf = np.zeros((K * 100, 1)), bipartite.buffers(None, block, 1, 100)
        on = np.array([bipartite.statistics(block, np.zeros((1, 8)), cd, rng, buf, chain=chain, swap=t).V[1:]
                       .mean(axis=1) > 0.5 for t in range(250)])
        visits[K] = on.mean(), (on.any(axis=0) & ~on.all(axis=0)).mean()
    assert 0.25 < visits[10][0] < 0.75 and visits[10][1] > 0.9
    assert visits[1][0] < 0.05 and visits[1][1] <= 0.05


# -- the swap: the Metropolis rule ----------------------------------------------------------------
def test_swap_log_ratio_by_hand():
    """``(beta_i - beta_j)(E_i - E_j)``: a cold chain in a high energy state swaps with a hot
    one in a low energy state always (ratio > 0), the reverse with probability exp(-.)."""
    assert bipartite.swap_log_ratio(0.25, 1.0, np.float64(-2.0), np.float64(-6.0)) == pytest.approx(-3.0)
    assert bipartite.swap_log_ratio(0.25, 1.0, np.float64(-6.0), np.float64(-2.0)) == pytest.approx(3.0)
    assert bipartite.inverse_temperatures(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def _joint(W, b, c, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """All joint states ``(v, h)`` (rows) and ``p_beta(v, h) ~ exp(-beta E(v, h))``."""
    nv = len(b)
    S = all_states(nv + len(c)).astype(np.float64)
    log_p = beta * (S[:, :nv] @ b + S[:, nv:] @ c + np.einsum("si,ij,sj->s", S[:, :nv], W, S[:, nv:]))
    p = np.exp(log_p - log_p.max())
    return S, p / p.sum()


@pytest.mark.parametrize("K,swap", [(2, 0), (3, 0), (3, 1)])
def test_tempered_step_keeps_the_product_of_the_tempered_distributions(K, swap):
    """Detailed balance, checked as stationarity by enumeration: 200,000 independent sets of
    chains of a 2-1 RBM (strong weights) start with each temperature's hidden state drawn
    from its exact ``p_beta(h)``; after one step and one round of swaps (even pairs, odd
    pairs) the joint states ``(v, h)`` of two neighbouring temperatures are distributed
    as the product of the exact ``p_beta(v, h)``: KL(empirical || exact) under the G-test's
    5-sigma bound over the 64 cells (independent samples: no inflation). A swap accepted
    with any other probability than Metropolis' moves mass between the temperatures."""
    W, b, c = np.array([[3.0], [-2.5]]), np.array([-1.0, 1.5]), np.array([0.5])
    betas, rng, n = bipartite.inverse_temperatures(K), np.random.default_rng(7), 200_000
    joints = [_joint(W, b, c, beta) for beta in betas]
    chain = np.concatenate([S[rng.choice(len(S), n, p=p), 2:] for S, p in joints])
    cd = bipartite.CD(k=1, temperatures=K)
    V = bipartite.tempered_gibbs(bipartite.Block(W, b, c), chain, cd, rng, bipartite.buffers(None, bipartite.Block(
        W, b, c), 1, n), swap)
    code = (np.hstack([V, chain]) @ [4, 2, 1]).astype(int).reshape(K, n)      # (v0, v1, h) in the states' order
    lo = swap % 2
    cells = np.bincount(8 * code[lo] + code[lo + 1], minlength=64) / n
    exact = np.outer(joints[lo][1], joints[lo + 1][1]).ravel()
    seen = cells > 0
    kl = float(np.sum(cells[seen] * np.log(cells[seen] / exact[seen])))
    assert kl < kl_bound(64, n, inflation=1.0)


def test_swaps_are_accepted_with_the_metropolis_probability():
    """Two temperatures, every pair of chains in the same states: the fraction exchanged is
    ``min(1, exp(swap_log_ratio))`` within 5 standard errors (100,000 pairs), and a swap
    exchanges the visible and hidden states whole."""
    rng, n = np.random.default_rng(8), 100_000
    for E_hot, E_cold in ((-1.0, -4.0), (-4.0, -1.0), (-2.0, -2.5)):
        V = np.repeat([[0.0, 1.0], [1.0, 1.0]], n, axis=0)
        H = np.repeat([[1.0], [0.0]], n, axis=0)
        energy = np.repeat([[E_hot], [E_cold]], n, axis=1)
        bipartite._swap(V, H, energy, [0.5, 1.0], 0, rng, np.empty((1, n)), arrays.NUMPY)
        swapped = H[:n, 0] == 0
        assert np.array_equal(V[:n][swapped], np.tile([1.0, 1.0], (swapped.sum(), 1)))
        assert np.array_equal(V[n:][swapped], np.tile([0.0, 1.0], (swapped.sum(), 1)))
        p = min(1.0, np.exp(bipartite.swap_log_ratio(0.5, 1.0, E_hot, E_cold)))
        assert abs(swapped.mean() - p) <= SIGMAS * np.sqrt(p * (1 - p) / n) + 1e-12


# -- the machine: parameters, files, resume --------------------------------------------------------
@pytest.mark.parametrize("params,name", [
    (dict(n_chains=0), "n_chains"), (dict(n_chains=2.5), "n_chains"), (dict(n_chains="10"), "n_chains"),
    (dict(n_chains=10, persistent=False), "n_chains"), (dict(n_temperatures=0), "n_temperatures"),
    (dict(n_temperatures=3, persistent=False), "n_temperatures"),
    (dict(n_temperatures=3, visible="gaussian"), "n_temperatures")])
def test_bad_chain_settings_are_refused_by_name(params, name):
    with pytest.raises(ParameterError, match=name):
        RBM(3, **params).fit(np.zeros((4, 5)))


def test_tempering_trains_and_keeps_its_chains_through_save_and_load(tmp_path):
    """Tempering at 3 temperatures with 7 chains: ``h_samples_`` has 21 rows (the model's
    chains last), kept by save and load; training moves the weights and the model's
    chains learn bars and stripes as well as PCD's do (exact log-likelihood)."""
    from neurosim.data import bars_stripes

    X = bars_stripes(size=2).data.astype(np.float64)
    common = dict(learning_rate=0.1, batch_size=6, n_iter=2000, momentum=0.5, random_state=0, n_chains=7)
    pt = RBM(6, n_temperatures=3, **common).fit(X)
    pcd = RBM(6, **common).fit(X)
    assert pt.h_samples_.shape == (21, 6)
    assert pt.exact_log_likelihood(X) > max(pcd.exact_log_likelihood(X) - 0.3, np.log(1 / 16) + 0.2)
    pt.save(tmp_path / "pt.npz")
    back = RBM.load(tmp_path / "pt.npz")
    assert back.n_temperatures == 3 and back.n_chains == 7 and np.array_equal(back.h_samples_, pt.h_samples_)


@pytest.mark.parametrize("extra", [["--chains", "13"], ["--chains", "4", "--tempering", "3"]])
def test_cli_chains_resume_bit_identical_and_refuse_another_value(fake_mnist, tmp_path, capsys, monkeypatch, extra):
    """``rbm train --chains N [--tempering K]``: stored in the meta; a run stopped by Ctrl-C
    after 3 minibatches and resumed ends bit for bit where an uninterrupted one does;
    resuming with another --chains is refused by name (exit 2)."""
    from neurosim.machines import runs

    base = ["rbm", "train", "--hidden", "5", "--epochs", "2", "--batch", "10", "--persistent", "--limit", "40",
            "--checkpoint-minutes", "0", *extra]
    code, out, _ = run_cli(capsys, *base, "--out", str(tmp_path / "a.npz"), "--json")
    assert code == 0 and json.loads(out)["chains"] == int(extra[1])
    whole = RBM.load(tmp_path / "a.npz")
    assert whole.h_samples_.shape == (int(extra[1]) * (int(extra[3]) if len(extra) > 2 else 1), 5)
    original = runs.fit_run

    def stopping(machine, X, checkpoint, **kw):
        def interrupt(at):
            if (at.epoch, at.batch) == (0, 3):
                os.kill(os.getpid(), signal.SIGINT)
        return original(machine, X, checkpoint, after_batch=interrupt, **kw)

    monkeypatch.setattr(runs, "fit_run", stopping)
    assert run_cli(capsys, *base, "--out", str(tmp_path / "b.npz"))[0] == 130
    monkeypatch.setattr(runs, "fit_run", original)
    assert (tmp_path / "b.npz.checkpoint.npz").exists()
    other = [*base[:-len(extra)], "--chains", "99", *extra[2:]]
    code, _, err = run_cli(capsys, *other, "--out", str(tmp_path / "b.npz"), "--resume")
    assert code == 2 and "n_chains" in err
    code, _, _ = run_cli(capsys, *base, "--out", str(tmp_path / "b.npz"), "--resume")
    assert code == 0
    resumed = RBM.load(tmp_path / "b.npz")
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name


def test_cli_chains_without_persistent_exit_2(fake_mnist, tmp_path, capsys):
    code, _, err = run_cli(capsys, "rbm", "train", "--chains", "5", "--out", str(tmp_path / "a.npz"))
    assert code == 2 and "--chains" in err and "--persistent" in err


# -- torch -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperatures", [1, 3])
def test_torch_update_with_chains_equals_numpys_on_the_same_draws(monkeypatch, temperatures):
    """Three updates of B = 6 rows, 4 chains (x3 temperatures), momentum and centering, on
    torch float32 and numpy float32 with both backends' draws replaced by one numpy
    stream: the same parameters to float32 rounding and the same chains."""
    torch = optional("torch")

    def uniform(rng, out):
        u = rng.random(tuple(out.shape), dtype=np.float32)
        if isinstance(out, np.ndarray):
            out[...] = u
        else:
            out.copy_(torch.from_numpy(u))
        return out

    monkeypatch.setattr(arrays.NumpyOps, "uniform", staticmethod(uniform))
    monkeypatch.setattr(arrays.TorchOps, "uniform", staticmethod(uniform))
    monkeypatch.setattr(arrays.Backend, "generator", lambda self, rng: rng)
    X = (np.random.default_rng(9).random((6, 10)) < 0.4).astype(np.float32)
    fits = {name: RBM(5, learning_rate=0.2, batch_size=6, n_chains=4, n_temperatures=temperatures, momentum=0.5,
                      centered=True, random_state=2, backend=name, dtype=np.float32)
            for name in ("numpy", "torch")}
    for rbm in fits.values():
        for _ in range(3):
            rbm.partial_fit(X)
    a, b = fits["numpy"], fits["torch"]
    for name in ("components_", "intercept_visible_", "intercept_hidden_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-4, atol=1e-5, err_msg=name)
    assert b.h_samples_.shape == (4 * temperatures, 5) and np.array_equal(b.h_samples_, a.h_samples_)
