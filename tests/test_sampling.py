"""neurosim.sample and neurosim.posterior(method="gibbs"): the library behind `neurosim
infer` and `neurosim sample`.

The Gibbs posterior is checked against exact enumeration on both backends. Event engine:
one chain, samples one sweep apart, so ``kl_bound`` keeps its allowance for
autocorrelation (inflation 2). Compiled backend: as many chains as samples, one kept
sweep each after a burn-in of 40 (as in test_compiled.py), so the samples are
independent (inflation 1).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, Network, Unit, load, posterior, sample
from neurosim.cli import main
from neurosim.errors import EvidenceError, ParameterError, ValidationError
from neurosim.inference import Posterior
from neurosim.inference import posterior as exact_posterior
from neurosim.sampling import AUTO_UNITS, SampledPosterior, choose_backend
from helpers import empirical_kl, kl_bound, random_belief_net, random_boltzmann

ROOT = Path(__file__).resolve().parents[1]
EARTHQUAKE = ROOT / "models" / "earthquake_truck.toml"
BM6 = ROOT / "models" / "boltzmann_6.toml"
GIBBS = {"event": dict(sweeps=4000, burn_in=20), "compiled": dict(sweeps=20000, chains=20000, burn_in=40)}
INFLATION = {"event": 2.0, "compiled": 1.0}


def nets():
    rng = np.random.default_rng(11)
    bm = random_boltzmann(rng, 3, 3)
    sbn = random_belief_net(rng, (2, 3))
    return {"boltzmann": (bm, {"v0": 1}), "belief net": (sbn, {"l1_0": 1, "l1_2": 0})}


@pytest.mark.parametrize("backend", ["event", "compiled"])
@pytest.mark.parametrize("kind", ["boltzmann", "belief net"])
def test_gibbs_posterior_matches_exact(kind, backend):
    net, evidence = nets()[kind]
    exact = posterior(net, evidence)
    post = posterior(net, evidence, method="gibbs", backend=backend, random_state=5, **GIBBS[backend])
    assert isinstance(post, SampledPosterior) and post.units == exact.units
    assert post.samples.backend == backend and len(post.kept) == GIBBS[backend]["sweeps"]
    kl = empirical_kl(post.kept, exact)
    bound = kl_bound(2 ** len(exact.units), len(post.kept), inflation=INFLATION[backend])
    assert kl < bound, f"KL {kl:.5f} >= bound {bound:.5f}"
    se = np.sqrt(INFLATION[backend] * 0.25 / len(post.kept))
    assert np.all(np.abs(post.marginal_array() - exact.marginal_array()) < 5 * se)


@pytest.mark.parametrize("schedule", ["async", "layer"])
def test_gibbs_posterior_under_each_event_schedule(schedule):
    net, evidence = nets()["boltzmann"]
    exact = posterior(net, evidence)
    post = posterior(net, evidence, method="gibbs", backend="event", schedule=schedule, random_state=6,
                     **GIBBS["event"])
    assert post.samples.schedule == schedule
    assert empirical_kl(post.kept, exact) < kl_bound(2 ** len(exact.units), len(post.kept))


def test_the_bound_has_power():
    """Samples of the net with its weights negated fail the same bound."""
    net, evidence = nets()["boltzmann"]
    flipped = Network([Unit(u.name, u.bias, u.role) for u in net.unit_list()],
                      [Edge(e.source, e.target, -e.weight, e.kind) for e in net.edges])
    post = posterior(flipped, evidence, method="gibbs", backend="compiled", random_state=5,
                     **GIBBS["compiled"])
    exact = posterior(net, evidence)
    assert empirical_kl(post.kept, exact) > kl_bound(2 ** len(exact.units), len(post.kept), inflation=1.0)


def test_sampled_posterior_has_the_exact_interface():
    net, evidence = nets()["boltzmann"]
    post = posterior(net, evidence, method="gibbs", sweeps=500, random_state=1)
    joint = post.joint()
    assert list(joint) == sorted(joint) and abs(sum(joint.values()) - 1) < 1e-12
    assert np.allclose(post.probs @ post.states, post.marginal_array())
    assert post.marginals() == dict(zip(post.units, post.marginal_array().tolist()))
    assert post.messages == {"binary": post.ledger.binary, "analog": post.ledger.analog}
    assert post.ledger.binary > 0 and post.ledger.updates >= 500 * len(post.units)


def test_posterior_without_method_is_todays_exact_posterior():
    net = load(EARTHQUAKE)
    post = posterior(net, {"house_jumps": 1})
    assert isinstance(post, Posterior)
    assert post.joint() == exact_posterior(net, {"house_jumps": 1}).joint()
    assert post.joint() == posterior(net, {"house_jumps": 1}, "exact").joint()


def test_same_seed_same_numbers():
    net, evidence = nets()["boltzmann"]
    a = posterior(net, evidence, method="gibbs", sweeps=300, random_state=3).joint()
    assert a == posterior(net, evidence, method="gibbs", sweeps=300,
                          random_state=np.random.default_rng(3)).joint()
    assert a != posterior(net, evidence, method="gibbs", sweeps=300, random_state=4).joint()


def run_json(capsys, *argv) -> dict:
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("backend", ["event", "compiled"])
def test_infer_cli_gives_the_library_numbers(capsys, backend):
    r = run_json(capsys, "infer", EARTHQUAKE, "--evidence", "house_jumps=1", "--method", "gibbs",
                 "--backend", backend, "--sweeps", 700, "--burn-in", 7, "--chains", 9, "--seed", 12,
                 "--json")
    post = posterior(load(EARTHQUAKE), {"house_jumps": 1}, "gibbs", backend=backend, sweeps=700,
                     burn_in=7, chains=9, random_state=12)
    assert r["marginals"] == post.marginals() and r["joint"] == post.joint()
    assert r["messages"] == post.messages and r["updates"] == post.ledger.updates
    assert r["backend"] == backend


@pytest.mark.parametrize("backend", ["event", "compiled"])
def test_sample_cli_gives_the_library_numbers(capsys, backend):
    r = run_json(capsys, "sample", BM6, "--n", 250, "--backend", backend, "--burn-in", 3, "--thin", 2,
                 "--chains", 40, "--seed", 8, "--json")
    drawn = sample(load(BM6), 250, backend, burn_in=3, thin=2, chains=40, random_state=8)
    assert drawn.states.shape == (250, len(drawn.units)) and drawn.backend == backend
    counts = {}
    for s in drawn.states:
        key = "".join(map(str, s))
        counts[key] = counts.get(key, 0) + 1
    assert r["counts"] == dict(sorted(counts.items())) and r["schedule"] == drawn.schedule
    assert r["updates"] == drawn.ledger.updates and r["messages"]["binary"] == drawn.ledger.binary


def test_ancestral_sampling_skips_the_burn_in():
    """Ancestral samples are independent: a burn-in would only spend random numbers."""
    net = load(ROOT / "models" / "sigmoid_belief_net.toml")
    a = sample(net, 50, "event", burn_in=0, random_state=2)
    b = sample(net, 50, "event", burn_in=500, random_state=2)
    assert a.schedule == "ancestral" and np.array_equal(a.states, b.states)


def test_auto_backend():
    small = load(EARTHQUAKE)
    assert choose_backend(small) == "event" and AUTO_UNITS == 64
    big = Network([Unit(f"u{i}", 0.0) for i in range(AUTO_UNITS + 1)],
                  [Edge(f"u{i}", f"u{i + 1}", 0.1, "symmetric") for i in range(AUTO_UNITS)])
    assert choose_backend(big) == "compiled" and choose_backend(big, "event") == "event"
    assert choose_backend(big, schedule="async") == "event"
    assert choose_backend(big.with_delay(0.5)) == "event"


@pytest.mark.parametrize("call, error, message", [
    (lambda net: sample(net, 10, "gpu"), ParameterError, "backend must be one of auto, event, compiled, "
                                                         "got 'gpu'"),
    (lambda net: sample(net, 10, "compiled", "async"), ValidationError, "schedule 'async'"),
    (lambda net: sample(net.with_delay(0.5), 10, "compiled"), ValidationError,
     r"message delays \(edge earthquake -> house_jumps: 0.5 sweeps\)"),
    (lambda net: posterior(net, {"house_jumps": 1}, "gibbs", backend="compiled", schedule="layer"),
     ValidationError, "only the event engine models this"),
    (lambda net: posterior(net, {}, "mcmc"), ParameterError, "method must be one of exact, gibbs"),
    (lambda net: posterior(net, {}, sweeps=10), ParameterError, "sweeps: options of method='gibbs'"),
    (lambda net: posterior(net, {}, "gibbs", schedule="ancestral"), ParameterError, "ancestral sampling "
                                                                                      "ignores evidence"),
    (lambda net: posterior(net, {"house": 1}, "gibbs"), EvidenceError, "unknown unit 'house'"),
    (lambda net: sample(net, 0), ParameterError, "n must be >= 1, got 0"),
    (lambda net: sample(net, 5, thin=0), ParameterError, "thin must be >= 1"),
    (lambda net: sample(net, 5, random_state=-1), ParameterError, "random_state"),
])
def test_bad_arguments_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call(load(EARTHQUAKE))
