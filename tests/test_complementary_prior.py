"""demos/complementary_prior.py: the tied directed net converges to the RBM, and the
complementary prior makes inference by the transposed weights exact (Hinton 2005, 5.1)."""

import json

import numpy as np
import pytest

from helpers import load_demo
from neurosim import posterior
from neurosim.inference import all_states

demo = load_demo("complementary_prior")


@pytest.fixture(scope="module")
def result() -> dict:
    """The default run (seed 0, depths 1-20), without the figure."""
    return demo.run(demo.parse_args([]))


def rbm(seed: int):
    return demo.random_rbm(np.random.default_rng(seed))


def rbm_visible(model) -> np.ndarray:
    return demo.enumerated_visible(demo.tied_network(model, 1, rbm_top=True))


def test_json_output_and_figure(tmp_path, capsys):
    out = tmp_path / "cp.png"
    assert demo.main(["--max-depth", "4", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == set(demo.JSON_KEYS)
    assert printed["depths"] == [1, 2, 3, 4] and len(printed["kl"]) == 4
    assert out.stat().st_size > 10_000


def test_kl_goes_to_zero(result):
    # Depth L + 2 is depth L followed by one full Gibbs step v -> h -> v, which leaves
    # P_RBM invariant: KL cannot rise over two layers (data-processing inequality). The
    # chain's transition probabilities are all positive, so it contracts geometrically;
    # seed 0 measures 2.0e-14 at depth 20.
    kl = np.array(result["kl"])
    assert np.all(np.diff(kl[::2]) <= 0) and np.all(np.diff(kl[1::2]) <= 0)
    assert kl[-1] < 1e-12


@pytest.mark.parametrize("seed", range(1, 5))
def test_kl_never_rises_over_two_layers(seed):
    model = rbm(seed)
    p_rbm = rbm_visible(model)
    kl = np.array([demo.kl_divergence(demo.propagate(model, L)[0], p_rbm) for L in range(1, 13)])
    assert np.all(kl >= 0)
    assert np.all(np.diff(kl[::2]) <= 1e-15) and np.all(np.diff(kl[1::2]) <= 1e-15)


def test_propagation_equals_enumeration():
    model = rbm(1)
    for depth in range(1, 4):
        net = demo.tied_network(model, depth)
        dists = demo.propagate(model, depth)
        assert net.n_units == 4 + sum(3 if k % 2 else 4 for k in range(1, depth + 1))
        assert np.abs(demo.enumerated_visible(net) - dists[0]).max() < 1e-12
        exact = demo.enumerated_h1_posterior(net)
        assert np.abs(exact - demo.truncated_posterior(model, dists[1])).max() < 1e-12
    check = demo.enumeration_check(model, rbm_visible(model), 3)
    assert check["depths"] == [1, 2, 3] and check["max_difference"] < 1e-12


def test_complementary_prior_gives_the_factorial_posterior(result):
    assert result["posterior_max_error"] < 1e-10
    # Depth 1: an independent prior over h1, a plain belief net. Explaining away makes
    # the posterior differ from inference by W^T, and not factorial at all.
    assert result["truncated_posterior_error"][0] > 1e-3
    assert result["truncated_non_factorial"][0] > 1e-3


def test_rbm_on_top_is_the_infinite_net():
    """The chain graph (RBM between h1 and v2, directed h1 -> v) has the RBM's visible
    distribution, and its whole posterior is inference by the transposed weights, layer
    after layer: P(h1, v2 | v) = Q(h1 | v) P(v2 | h1)."""
    model = rbm(2)
    net = demo.tied_network(model, 2, rbm_top=True)
    assert np.abs(demo.enumerated_visible(net) - rbm_visible(model)).max() < 1e-12
    q = demo.transposed_weights_posterior(model)
    down = demo.conditional_table(model, 0)  # P(v-sized layer | h-sized layer above)
    hidden = demo.layer_names(1) + demo.layer_names(2)
    place = 1 << np.arange(len(hidden) - 1, -1, -1)
    for k, v in enumerate(all_states(4)):
        post = posterior(net, dict(zip(demo.layer_names(0), map(int, v))))
        exact = np.zeros(2 ** len(hidden))
        exact[post.states[:, [post.units.index(n) for n in hidden]] @ place] = post.probs
        assert np.abs(exact - (q[k][:, None] * down).ravel()).max() < 1e-12


def test_bad_depth_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        demo.parse_args(["--max-depth", "0"])
    assert stop.value.code == 2 and "--max-depth must be at least 1, got 0" in capsys.readouterr().err
