"""The deep autoencoder (neurosim/machines/autoencoder.py) and the shared backprop
(neurosim/machines/backprop.py): gradients against finite differences, the unrolled net
against the stack's up- and down-passes, resuming, files and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim import load, posterior, save
from neurosim.compiled import Chains, compile
from neurosim.engine import Simulator
from neurosim.errors import DivergenceError, InferenceError, NeurosimError, ParameterError, ValidationError
from neurosim.machines import autoencoder as ae
from neurosim.machines.autoencoder import (AutoencoderRecipe, AutoencoderTrainer, DeepAutoencoder, decode, encode,
                                           down_pass, unroll, up_pass)
from neurosim.machines.backprop import backprop_gradient
from neurosim.machines.base import NotFittedError
from neurosim.machines.helmholtz import HelmholtzMachine
from neurosim.machines.neighbours import knn_error

RNG = np.random.default_rng(0)
X = np.clip(RNG.random((60, 12)) * (RNG.random((60, 12)) < 0.5) + 0.3 * (np.arange(60)[:, None] % 3 == 0), 0, 1)


def _net(rng, sizes, n_out):
    p = {}
    for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        p[f"w{l}"], p[f"b{l}"] = rng.standard_normal((a, b)), 0.5 * rng.standard_normal(b)
    p["w_out"], p["b_out"] = rng.standard_normal((sizes[-1], n_out)), 0.5 * rng.standard_normal(n_out)
    return p


@pytest.mark.parametrize("output, linear, summed", [("logistic", (1,), False), ("logistic", (), True),
                                                    ("softmax", (0,), False), ("softmax", (), True)])
def test_backprop_gradient_is_the_finite_difference_of_its_loss(output, linear, summed):
    """Central differences (step 1e-6, float64) of every parameter agree with the gradient
    to 1e-7 relative: the forward/backward pass of both outputs, with and without a linear layer."""
    rng = np.random.default_rng(1)
    p = _net(rng, [5, 4, 3], 5 if output == "logistic" else 4)
    Xs = rng.random((7, 5))
    Y = Xs if output == "logistic" else np.eye(4)[rng.integers(0, 4, 7)]
    loss, grads = backprop_gradient(p, Xs, Y, summed, output=output, linear=linear)
    assert set(grads) == set(p)
    for k, a in p.items():
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + 1e-6
            up = backprop_gradient(p, Xs, Y, summed, output=output, linear=linear)[0]
            a[i] = old - 1e-6
            down = backprop_gradient(p, Xs, Y, summed, output=output, linear=linear)[0]
            a[i] = old
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grads[k], numeric, rtol=1e-7, atol=1e-8, err_msg=k)
    assert np.isfinite(loss)


def test_logistic_loss_is_the_cross_entropy_against_the_pixels():
    rng = np.random.default_rng(2)
    p = _net(rng, [5, 3], 5)
    Xs = rng.random((4, 5))
    q = 1 / (1 + np.exp(-((1 / (1 + np.exp(-(Xs @ p["w0"] + p["b0"])))) @ p["w_out"] + p["b_out"])))
    expected = -(Xs * np.log(q) + (1 - Xs) * np.log(1 - q)).sum() / 4
    assert backprop_gradient(p, Xs, Xs, output="logistic")[0] == pytest.approx(expected, rel=1e-12)


def test_unrolled_net_before_fine_tuning_is_the_stacks_up_and_down_pass():
    """A stack pretrained on X (the top RBM linear), unrolled: its encoder gives the
    up-pass's top-layer means (the linear code ``v W + c``), its decoder the down-pass
    ``sigmoid(h W^T + b)`` layer by layer; fine-tuning then lowers the squared error."""
    m = DeepAutoencoder(layers=(8, 6, 3), pretrain_epochs=3, backprop_epochs=0).fit(X)
    assert [rbm["W"].shape for rbm in m.stack_] == [(12, 8), (8, 6), (6, 3)]
    acts = up_pass(m.stack_, X.astype(np.float32))
    np.testing.assert_allclose(acts[-1], m.transform(X), rtol=1e-5, atol=1e-6)
    assert (acts[1] > 0).all() and (acts[1] < 1).all() and (acts[-1] < 0).any()   # logistic below, linear top
    codes = RNG.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(down_pass(m.stack_, codes), m.inverse_transform(codes), rtol=1e-5, atol=1e-6)
    tuned = DeepAutoencoder(layers=(8, 6, 3), pretrain_epochs=3, backprop_epochs=10).fit(X, backprop_batch=20)
    before, after = (ae.squared_error(X, net.reconstruct(X)) for net in (m, tuned))
    assert after < 0.95 * before


def test_unroll_ties_the_decoder_to_the_transposed_recognition_weights():
    rng = np.random.default_rng(3)
    rbms = [{"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(4), "c": rng.standard_normal(3)},
            {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(3), "c": rng.standard_normal(2)}]
    p = unroll(rbms)
    assert sorted(p) == ["b0", "b1", "b2", "b_out", "w0", "w1", "w2", "w_out"]
    assert p["w2"] is not rbms[1]["W"] and np.array_equal(p["w2"], rbms[1]["W"].T)
    assert np.array_equal(p["b2"], rbms[1]["b"]) and np.array_equal(p["w_out"], rbms[0]["W"].T)
    x = rng.random((3, 4))
    np.testing.assert_allclose(decode(p, encode(p, x)), down_pass(rbms, up_pass(rbms, x)[-1]), rtol=1e-12)


def test_the_linear_top_rbm_learns_at_its_own_rate(monkeypatch):
    """rbmhidlinear.m: the top RBM's CD has linear hidden units and learning rate 0.001."""
    seen = []
    real = ae.rbm_step

    def spy(p, vel, V, Y, r, momentum, rng, buf, backend, cd):
        seen.append((V.shape[1], r.learning_rate, cd.gaussian_hidden))
        return real(p, vel, V, Y, r, momentum, rng, buf, backend, cd)

    monkeypatch.setattr(ae, "rbm_step", spy)
    DeepAutoencoder(layers=(8, 3), pretrain_epochs=1, backprop_epochs=0).fit(X)
    assert set(seen) == {(12, 0.1, False), (8, 0.001, True)}


def test_a_stopped_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    r = AutoencoderRecipe(layers=(8, 3), pretrain_epochs=2, backprop_epochs=2, backprop_batch=30)
    whole = AutoencoderTrainer(r, X, tmp_path / "whole", log=lambda m: None)
    whole.run()

    def stop(trainer):
        if trainer.progress.stage == 2 and trainer.progress.batch == 1:     # in backprop
            trainer._checkpoints.requested = True

    with pytest.raises(KeyboardInterrupt):
        AutoencoderTrainer(r, X, tmp_path / "part", log=lambda m: None, on_batch=stop).run()
    with pytest.raises(NeurosimError, match="stage backprop is missing .the run stands at backprop, epoch 0 of 2"):
        ae.evaluate(ae.load_run(tmp_path / "part"), X)
    resumed = AutoencoderTrainer(r, X, tmp_path / "part", log=lambda m: None)
    resumed.run()
    for net in ("autoencoder", "logistic_pca", "pca"):
        for k, v in whole.nets[net].items():
            np.testing.assert_array_equal(v, resumed.nets[net][k], err_msg=f"{net}.{k}")
    with pytest.raises(NeurosimError, match="another recipe"):
        AutoencoderTrainer(AutoencoderRecipe(layers=(8, 4)), X, tmp_path / "part", log=lambda m: None).run()
    errors = ae.evaluate(ae.load_run(tmp_path / "whole"), X)
    assert set(errors) == {"test_squared_error", "pca_test_squared_error", "logistic_pca_test_squared_error"}


def test_pca_baseline_is_the_best_rank_k_linear_reconstruction(tmp_path):
    r = AutoencoderRecipe(layers=(8, 3), pretrain_epochs=0, backprop_epochs=0)
    AutoencoderTrainer(r, X, tmp_path, log=lambda m: None).run()
    error = ae.evaluate(ae.load_run(tmp_path), X)["pca_test_squared_error"]
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    assert error == pytest.approx((s[3:] ** 2).sum() / len(X), rel=1e-5)     # Eckart-Young


def test_save_and_load_keep_the_codes(tmp_path):
    m = DeepAutoencoder(layers=(6, 2), pretrain_epochs=1, backprop_epochs=1).fit(X)
    m.save(tmp_path / "ae.npz")
    back = DeepAutoencoder.load(tmp_path / "ae.npz")
    assert back.layers == [6, 2] or back.layers == (6, 2)
    np.testing.assert_array_equal(back.transform(X), m.transform(X))
    assert m.transform(X).shape == (60, 2) and m.reconstruct(X).shape == X.shape


@pytest.mark.parametrize("layers, message", [((8, 0), "code layer"), ((8, 2.5), "code layer"),
                                             ((0, 3), "hidden layer 1"), ((), "at least"),
                                             ((True, 3), "hidden layer 1")])
def test_bad_layer_sizes_are_refused_by_name(layers, message):
    with pytest.raises(ParameterError, match=message):
        AutoencoderRecipe(layers=layers)


def test_data_outside_the_unit_interval_is_refused(tmp_path):
    bad = X.copy()
    bad[4, 7] = 1.5
    with pytest.raises(ParameterError, match=r"X\[4, 7\] = 1.5: values must lie in \[0, 1\]"):
        AutoencoderTrainer(AutoencoderRecipe(layers=(3,)), bad, tmp_path)


def test_nan_in_fine_tuning_stops_cleanly_keeping_the_last_checkpoint(tmp_path, monkeypatch):
    def poisoned(p, *args, **kwargs):
        p["w0"][0, 0] = np.nan
        return [1.0]

    monkeypatch.setattr(ae, "backprop_cg_step", poisoned)
    r = AutoencoderRecipe(layers=(4, 2), pretrain_epochs=1, backprop_epochs=1)
    with pytest.raises(DivergenceError, match="backprop diverged at epoch 0, minibatch 0: p.w0 is not finite"):
        AutoencoderTrainer(r, X, tmp_path, log=lambda m: None).run()
    run = ae.load_run(tmp_path)
    assert run.reached == "backprop, epoch 0 of 1" and not (tmp_path / "LOCK").exists()
    assert all(np.isfinite(rbm["W"]).all() for rbm in run.rbms)


# -- the Network of the unrolled net ------------------------------------------------------------
PIXELS = (np.random.default_rng(7).random((120, 16)) < 0.3).astype(np.float32)   # binary: clampable states


@pytest.fixture(scope="module", params=[(8, 4, 2), (3,)], ids=["8-4-2", "3"])
def fitted(request):
    return DeepAutoencoder(request.param, pretrain_epochs=2, backprop_epochs=2).fit(PIXELS)


def test_to_network_holds_exactly_the_unrolled_weights_and_biases(fitted):
    """Encoder ``w0 .. w{L-1}`` as recognition projections with recognition biases ``b0 ..``,
    decoder ``w{L} .. w_out`` as directed ones with biases ``b{L} .. b_out``; the code
    population linear with generative bias 0; values equal to the float32 arrays."""
    net, p, L = fitted.to_network(), fitted.weights_, len(fitted.layers)
    names = ["v"] + [f"h{l}" for l in range(1, L)] + ["code"]
    assert [(q.name, q.size, q.role, q.layer, q.activation) for q in net.populations] == \
        [(n, s, "hidden" if l else "visible", l, "linear" if l == L else "logistic")
         for l, (n, s) in enumerate(zip(names, (16,) + fitted.layers))]
    decoder = [f"w{k}" for k in range(L, 2 * L - 1)] + ["w_out"]              # top-down
    expected = {f"{names[l]}=>{names[l + 1]}": p[f"w{l}"] for l in range(L)}
    expected.update({f"{names[L - j]}->{names[L - j - 1]}": p[w] for j, w in enumerate(decoder)})
    assert {q.name for q in net.projections} == set(expected)
    for name, w in expected.items():
        assert np.array_equal(net.projection(name).weights, w), name
    for l, pop in enumerate(net.populations):
        bias = p["b_out"] if l == 0 else np.zeros(fitted.layers[-1]) if l == L else p[f"b{2 * L - 1 - l}"]
        assert np.array_equal(pop.bias, bias), pop.name
        assert (pop.recognition_bias is None) if l == 0 else np.array_equal(pop.recognition_bias, p[f"b{l - 1}"])
    assert net.name == "deep_autoencoder" and fitted.to_network("ae").name == "ae"


def _mean_pass(cn, units, values):
    """A noise-free pass of a compiled pathway: ``units`` clamped to ``values`` (a chain
    per row), every step's state set to what ``update`` returns (probabilities; a linear
    unit's mean)."""
    chains = Chains(cn, np.random.default_rng(0), len(values), init=np.zeros((len(values), cn.n)), count=False)
    chains.clamp(units=units, values=values)
    for step in chains.plan.steps:
        chains.state[:, step.units] = chains.update(step)
    return chains.rows


def test_noise_free_passes_of_the_compiled_network_are_transform_and_inverse_transform(fitted):
    """The recognition pathway's mean pass from the pixels gives :meth:`transform`'s codes,
    the generative pathway's from clamped codes :meth:`inverse_transform`'s images. Both
    sides compute in float32 (``compile`` picks it: every |bias| + sum |w| is far below
    1e4) from the same float32 weights (bit for bit equal today); the tolerance allows
    another summation order of at most 16 products a unit, ~1e-7 relative each: codes of
    magnitude below 10 to 1e-5, probabilities to 1e-6."""
    net = fitted.to_network()
    visible, code = net.population("v").units, net.population("code").units
    rec, gen = compile(net, pathway="recognition"), compile(net)
    assert rec.dtype == gen.dtype == np.float32
    codes = fitted.transform(PIXELS)
    S = _mean_pass(rec, visible, PIXELS)
    np.testing.assert_allclose(S[:, [rec.index[u] for u in code]], codes, rtol=0, atol=1e-5)
    S = _mean_pass(gen, code, codes)
    np.testing.assert_allclose(S[:, [gen.index[u] for u in visible]], fitted.inverse_transform(codes), rtol=0,
                               atol=1e-6)


def test_the_network_round_trips_through_its_model_file(fitted, tmp_path):
    """TOML + .npz (``save`` picks the populations format for the linear code): every
    weight, bias and recognition bias comes back bit for bit, the code still linear."""
    net = fitted.to_network()
    save(net, tmp_path / "ae.toml")
    again = load(tmp_path / "ae.toml")
    assert again == net and again.population("code").activation == "linear"
    for a, b in zip(net.projections, again.projections):
        assert (a.name, a.kind) == (b.name, b.kind) and a.weights.tobytes() == b.weights.tobytes()
    for a, b in zip(net.populations, again.populations):
        assert a.bias.tobytes() == b.bias.tobytes()
        assert a.recognition_bias is None and b.recognition_bias is None or \
            a.recognition_bias.tobytes() == b.recognition_bias.tobytes()


def test_what_needs_binary_units_refuses_the_network_naming_the_code():
    net = DeepAutoencoder((4, 2), pretrain_epochs=1, backprop_epochs=1).fit(PIXELS).to_network()
    refusals = [(InferenceError, "exact inference", lambda: posterior(net, {"v_0": 1})),
                (ValidationError, "the event engine", lambda: Simulator(net, np.random.default_rng(0))),
                (ValidationError, "the event engine",
                 lambda: Simulator(net, np.random.default_rng(0), pathway="recognition")),
                (ValidationError, "a Helmholtz machine", lambda: HelmholtzMachine.from_network(net))]
    for error, what, call in refusals:
        with pytest.raises(error, match=rf"^network 'deep_autoencoder(:recognition)?': population 'code' is "
                                        rf"linear \(real-valued units\); {what}"):
            call()


def test_to_network_before_fitting_is_refused():
    with pytest.raises(NotFittedError, match="no weights yet"):
        DeepAutoencoder().to_network()


def test_evaluate_gives_the_nearest_neighbour_errors_of_the_codes_and_of_pcas(tmp_path):
    """The errors are knn_error's on the encoder's codes and on the projections onto the top
    principal components (computed here by another SVD: distances ignore the components' signs)."""
    AutoencoderTrainer(AutoencoderRecipe(layers=(8, 3), pretrain_epochs=2, backprop_epochs=2), X[:40], tmp_path,
                       log=lambda m: None).run()
    run, y = ae.load_run(tmp_path), np.arange(60) % 3
    errors = ae.evaluate(run, X[40:], y[40:], X[:40], y[:40], k=3)
    assert errors["knn_k"] == 3 and set(errors) >= {"test_squared_error", "pca_test_squared_error"}
    net = run.nets["autoencoder"]
    assert errors["knn_test_error"] == knn_error(encode(net, X[:40]), y[:40], encode(net, X[40:]), y[40:], 3)
    V = np.linalg.svd(X[:40] - X[:40].mean(axis=0))[2][:3]
    expected = knn_error((X[:40] - X[:40].mean(axis=0)) @ V.T, y[:40], (X[40:] - X[:40].mean(axis=0)) @ V.T,
                         y[40:], 3)
    assert errors["pca_knn_test_error"] == expected and 0 <= expected < 2 / 3
    assert ae.evaluate(run, X[40:], y[40:], X[:40], y[:40])["knn_k"] == 1
    with pytest.raises(ParameterError, match="need all of labels, train and train_labels"):
        ae.evaluate(run, X[40:], y[40:])
    with pytest.raises(ParameterError, match="k = 41 nearest neighbours, but there are only 40 training codes"):
        ae.evaluate(run, X[40:], y[40:], X[:40], y[:40], k=41)
