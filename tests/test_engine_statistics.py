"""The event engine samples the exact distribution: every schedule, random nets, fixed seeds.

Each test compares the empirical joint over the free units with exact enumeration,
KL(empirical || exact) below ``kl_bound`` (see helpers.py for the justification).
Negative controls show the bound rejects a wrong sampler.
"""

import numpy as np
import pytest

from neurosim import Network, Unit, posterior
from neurosim.engine import Simulator
from helpers import empirical_kl, kl_bound, random_belief_net, random_boltzmann

N = 4000
BURN_IN = 20


def _free(net, exact):
    return [net.index(u) for u in exact.units]


def _check(net, schedule, evidence, seed, n=N):
    exact = posterior(net, evidence)
    sim = Simulator(net, np.random.default_rng(seed), schedule=schedule, evidence=evidence)
    samples = sim.sample(n, burn_in=BURN_IN)[:, _free(net, exact)]
    kl = empirical_kl(samples, exact)
    bound = kl_bound(2 ** len(exact.units), n)
    assert kl < bound, f"KL {kl:.4f} >= bound {bound:.4f} ({schedule}, evidence {evidence})"
    return kl


NETS = {
    "bm": lambda s: random_boltzmann(np.random.default_rng(s), 3, 4),
    "sbn": lambda s: random_belief_net(np.random.default_rng(s), (2, 2, 3)),
}
EVIDENCE = {"bm": {"v0": 1, "v2": 0}, "sbn": {"l2_0": 1, "l2_2": 0}}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
@pytest.mark.parametrize("kind", ["bm", "sbn"])
def test_free_running_matches_exact(kind, schedule, seed):
    _check(NETS[kind](seed), schedule, None, 10 + seed)


@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
@pytest.mark.parametrize("kind", ["bm", "sbn"])
def test_posterior_with_evidence_matches_exact(kind, schedule):
    _check(NETS[kind](5), schedule, EVIDENCE[kind], 20)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ancestral_sampling_matches_exact(seed):
    _check(NETS["sbn"](seed), "ancestral", None, 30 + seed)


def test_negative_control_wrong_weights_are_rejected():
    """Samples of a net with its weights negated fail the bound against the original."""
    net = NETS["bm"](0)
    flipped = Network(net.unit_list(), [e.__class__(e.source, e.target, -e.weight, e.kind)
                                         for e in net.edges])
    exact = posterior(net)
    samples = Simulator(flipped, np.random.default_rng(0), schedule="sweep").sample(N, burn_in=BURN_IN)
    assert empirical_kl(samples, exact) > 2 * kl_bound(2 ** net.n_units, N)


def test_negative_control_synchronous_updates_of_neighbours_are_rejected():
    """All units of a dense Boltzmann machine in one layer: a synchronous update is not
    Gibbs sampling, and its stationary distribution is wrong; the engine warns too."""
    base = random_boltzmann(np.random.default_rng(4), 3, 3, density=1.0, scale=1.5)
    one_layer = Network([Unit(u.name, u.bias, u.role, 0) for u in base.unit_list()], base.edges)
    exact = posterior(base)
    with pytest.warns(UserWarning, match="not sample the exact distribution"):
        samples = Simulator(one_layer, np.random.default_rng(0), schedule="layer").sample(N, burn_in=BURN_IN)
    assert empirical_kl(samples, exact) > 2 * kl_bound(2 ** base.n_units, N)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
@pytest.mark.parametrize("kind", ["bm", "sbn"])
def test_ten_unit_nets(kind, schedule):
    """The issue's upper size: 10 units, 1024 states, more samples."""
    net = (random_boltzmann(np.random.default_rng(7), 4, 6) if kind == "bm"
           else random_belief_net(np.random.default_rng(7), (3, 3, 4)))
    _check(net, schedule, None, 40, n=40000)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
@pytest.mark.parametrize("kind", ["bm", "sbn"])
def test_autocorrelation_inflation_is_below_the_allowance(kind, schedule):
    """The bound allows the chains' samples to be worth half as many independent ones;
    measured over 20 nets, 2 N KL / (K - 1) averages below 1.6 (1.0 for iid samples)."""
    ratios = []
    for seed in range(20):
        net = NETS[kind](100 + seed)
        exact = posterior(net)
        s = Simulator(net, np.random.default_rng(seed), schedule=schedule).sample(N, burn_in=BURN_IN)
        ratios.append(2 * N * empirical_kl(s, exact) / (2 ** net.n_units - 1))
    assert np.mean(ratios) < 1.6
