"""Exact inference: the published numbers, eq. 2-4 by a second method, stability."""

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, InferenceError, Network, Unit, load
from neurosim.inference import MAX_FREE_UNITS, all_states, energy, log_joint, log_partition, log_prob, posterior
from helpers import linear_net, random_belief_net, random_boltzmann

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_explaining_away_numbers():
    """Hinton (2005), figure 3: given the house jumped, one cause, not both or neither."""
    post = posterior(load(MODELS / "earthquake_truck.toml"), {"house_jumps": 1})
    joint = post.joint()
    assert post.units == ["earthquake", "truck"]
    assert post.marginals()["earthquake"] == pytest.approx(0.5, abs=5e-5)
    assert post.marginals()["truck"] == pytest.approx(0.5, abs=5e-5)
    assert joint["01"] + joint["10"] == pytest.approx(0.99991, abs=5e-6)
    # both and neither: e^-20 / (e^-20 + e^-10/2 + ...) ~ 2 e^-10 / 2 = 4.54e-5
    assert joint["11"] == pytest.approx(4.54e-5, rel=1e-3)
    assert joint["00"] == pytest.approx(4.54e-5, rel=1e-3)


def test_energy_is_eq2_for_a_boltzmann_machine():
    net = random_boltzmann(np.random.default_rng(0), 3, 3, density=1.0)
    arr = net.to_arrays()
    S = all_states(net.n_units)
    by_hand = [-sum(arr.bias[i] * s[i] for i in range(6))
               - sum(s[i] * s[j] * arr.weights[i, j] for i, j in itertools.combinations(range(6), 2))
               for s in S]
    np.testing.assert_allclose(energy(net, S), by_hand, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda rng: random_boltzmann(rng, 4, 4),
    lambda rng: random_belief_net(rng, (2, 3, 4)),
    lambda rng: _hybrid(rng),
], ids=["boltzmann", "belief_net", "hybrid"])
def test_partition_function_two_ways(make):
    """log Z by components equals log-sum-exp of log_joint over every state of every unit
    (directed conditionals sum to one, so only the roots' energy remains)."""
    net = make(np.random.default_rng(1))
    brute = np.logaddexp.reduce(log_joint(net, all_states(net.n_units)))
    assert log_partition(net) == pytest.approx(brute, abs=1e-10)
    assert np.exp(log_prob(net, all_states(net.n_units))).sum() == pytest.approx(1.0, abs=1e-12)


def _hybrid(rng):
    """A DBN-shaped net: symmetric top pair of layers, directed layers below."""
    units = [Unit(n, float(rng.normal())) for n in ("t0", "t1", "p0", "p1", "h0", "h1", "v0", "v1", "v2")]
    edges = [Edge(a, b, float(rng.normal()), "symmetric") for a in ("t0", "t1") for b in ("p0", "p1")]
    edges += [Edge(a, b, float(rng.normal())) for a in ("p0", "p1") for b in ("h0", "h1")]
    edges += [Edge(a, b, float(rng.normal())) for a in ("h0", "h1") for b in ("v0", "v1", "v2")]
    return Network(units, edges)


def test_belief_net_joint_is_the_product_of_eq1_conditionals():
    net = random_belief_net(np.random.default_rng(2), (2, 3))
    arr = net.to_arrays()
    for s in all_states(net.n_units):
        x = arr.bias + s @ arr.weights
        p = np.prod([1 / (1 + math.exp(-x[i])) if s[i] else 1 / (1 + math.exp(x[i])) for i in range(5)])
        assert math.exp(log_prob(net, s[None])[0]) == pytest.approx(p, rel=1e-12)


def test_posterior_is_bayes_rule():
    net = random_boltzmann(np.random.default_rng(3), 3, 3)
    post = posterior(net, {"v0": 1, "h2": 0})
    S = all_states(net.n_units)
    keep = (S[:, 0] == 1) & (S[:, 5] == 0)
    p = np.exp(log_prob(net, S[keep]))
    np.testing.assert_allclose(post.probs, p / p.sum(), rtol=1e-12)
    assert post.log_evidence == pytest.approx(math.log(p.sum()), abs=1e-12)


def test_stable_at_huge_biases_and_weights():
    units = [Unit("a", 60.0), Unit("b", -60.0), Unit("c", -800.0, role="visible")]
    net = Network(units, [Edge("a", "c", 900.0), Edge("b", "c", 900.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post = posterior(net, {"c": 1})
        lz = log_partition(net)
    assert np.isfinite(post.log_probs).all() and post.probs.sum() == pytest.approx(1.0)
    assert post.marginals()["a"] == pytest.approx(1.0)
    assert lz == pytest.approx(60.0 + math.log1p(math.exp(-60.0)) + math.log1p(math.exp(-60.0)))


def test_too_many_units_is_a_clear_error():
    units = [Unit(f"u{i}") for i in range(MAX_FREE_UNITS + 1)]
    edges = [Edge(f"u{i}", f"u{i + 1}", 1.0, "symmetric") for i in range(MAX_FREE_UNITS)]
    with pytest.raises(InferenceError, match=r"over the limit of 22; use --method gibbs"):
        posterior(Network(units, edges))


def test_unequal_symmetric_synapses_have_no_energy():
    net = Network([Unit("a"), Unit("b")], [Edge("a", "b", 1.0, "symmetric", weight_reverse=2.0)])
    with pytest.raises(InferenceError, match=r"symmetric edge a <-> b has unequal synapses"):
        log_partition(net)


def test_log_joint_with_arrays_is_log_joint_of_the_net_with_those_arrays():
    """A machine's current parameters given as arrays score the states exactly as the net
    rebuilt with them; unequal symmetric synapses are refused the same way."""
    import numpy as np
    from neurosim.inference.exact import all_states, log_joint
    from neurosim.learning.audit import _boltzmann_net
    from neurosim.network import NetArrays

    net = _boltzmann_net(np.random.default_rng(0))
    arr = net.to_arrays()
    W = np.where(arr.symmetric, np.random.default_rng(1).normal(size=arr.weights.shape), 0.0)
    W = np.triu(W, 1) + np.triu(W, 1).T
    b = np.random.default_rng(2).normal(size=net.n_units)
    S = all_states(net.n_units)
    given = NetArrays(b, W, arr.symmetric, arr.directed)
    np.testing.assert_array_equal(log_joint(net, S, given), log_joint(net.with_arrays(W, b), S))
    W[0, 8] += 1.0
    with pytest.raises(InferenceError, match="unequal synapses"):
        log_joint(net, S, NetArrays(b, W, arr.symmetric, arr.directed))


@pytest.mark.parametrize("symmetric", [False, True])
def test_exact_inference_refuses_linear_units_naming_the_population(symmetric):
    """Enumeration is over binary states: every entry point refuses a real-valued population."""
    net = linear_net(np.random.default_rng(0), symmetric)
    calls = [lambda: posterior(net), lambda: posterior(net, {"a0": 1}), lambda: log_partition(net),
             lambda: log_joint(net, np.zeros((1, net.n_units)))]
    for call in calls:
        with pytest.raises(InferenceError, match=r"^network 'linear': population 'z' is linear \(real-valued "
                                                 r"units\); exact inference \(an enumeration of binary states\) "
                                                 r"needs binary units$"):
            call()
