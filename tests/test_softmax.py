"""Softmax populations: one-of-n groups (the label units of Hinton, Osindero and Teh 2006)
in the Network, model files, exact inference, the compiled backend and the event engine.

The oracle is a hand enumeration of every binary state of a 9-unit DBN-shaped net, the
states with more or fewer than one label on given probability 0. Sampler tests compare
the empirical joint with exact enumeration: KL(empirical || exact) below
``helpers.kl_bound`` over the states exact inference lists (the G-test bound; compiled
chains are independent, inflation 1; the event engine's one chain, inflation 2, see
helpers.py, with 3 sweeps between samples). Fixed seeds.
"""

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from helpers import empirical_kl, kl_bound
from neurosim import EvidenceError, InferenceError, ModelFileError, Network, ValidationError, load, loads, posterior, save
from neurosim.compiled import Chains, compile
from neurosim.engine import Simulator
from neurosim.evidence import parse_evidence
from neurosim.inference import log_partition, log_prob
from neurosim.machines.dbn import DeepBeliefNet
from neurosim.machines.dbn_readout import classify
from neurosim.population import Population, Projection
from neurosim.numerics import sigmoid, softmax


def pop(name, n, role="hidden", layer=None, activation="logistic", rng=None):
    bias = np.zeros(n) if rng is None else rng.normal(size=n)
    return Population(name, tuple(f"{name}_{i}" for i in range(n)), bias, role, layer, activation)


def dbn_shaped(seed=0, below=True):
    """top (2) <-> pen (2) and label (3, softmax) <-> top; pen -> v (2) if ``below``."""
    rng = np.random.default_rng(seed)
    pops = [pop("v", 2, "visible", 0, rng=rng)] if below else []
    pops += [pop("pen", 2, "hidden", 1, rng=rng), pop("label", 3, "label", 1, "softmax", rng),
             pop("top", 2, "hidden", 2, rng=rng)]
    projs = [Projection("pen<->top", "pen", "top", rng.normal(size=(2, 2)), "symmetric"),
             Projection("label<->top", "label", "top", 1.5 * rng.normal(size=(3, 2)), "symmetric")]
    if below:
        projs.append(Projection("pen->v", "pen", "v", rng.normal(size=(2, 2)), "directed"))
    return Network.from_populations(pops, projs, name="tiny_dbn")


def by_hand(net, evidence=None):
    """{state over all units: probability}: every binary state, weighted by
    exp(b.s + sum of symmetric w s s over the roots) * prod_v P(v | pen), 0 unless
    exactly one label is on; then conditioned on ``evidence``."""
    P = {p.name: p for p in net.populations}
    at = {p.name: slice(net.index(p.units[0]), net.index(p.units[0]) + p.size) for p in net.populations}
    out = {}
    for bits in itertools.product((0, 1), repeat=net.n_units):
        s = np.array(bits, dtype=float)
        if s[at["label"]].sum() != 1 or any(s[net.index(u)] != v for u, v in (evidence or {}).items()):
            continue
        logp = sum(P[k].bias @ s[at[k]] for k in ("pen", "label", "top"))
        for q in net.projections:
            a, b = s[at[q.pre]], s[at[q.post]]
            if q.kind == "symmetric":
                logp += a @ q.weights @ b
            else:
                pv = sigmoid(P[q.post].bias + a @ q.weights)
                logp += np.log(np.where(b == 1, pv, 1 - pv)).sum()
        out[bits] = math.exp(logp)
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}, total


# -- the Network and its files ----------------------------------------------------------
def test_a_softmax_population_takes_part_in_symmetric_projections_to_others_only():
    label = pop("label", 3, "label", 1, "softmax")
    cases = [
        ([pop("h", 2), label], [Projection("h->label", "h", "label", np.ones((2, 3)))],
         r"^projection 'h->label' is directed: population 'label' is a softmax group, which takes part in "
         r"symmetric projections to other populations only$"),
        ([pop("h", 2), label], [Projection("label=>h", "label", "h", np.ones((3, 2)), "recognition")],
         r"projection 'label=>h' is recognition"),
        ([label], [Projection("label<->label", "label", "label", np.ones((3, 3)), "symmetric",
                              mask=np.triu(np.ones((3, 3), dtype=bool), 1))], r"projection 'label<->label' joins it to itself"),
        ([replace(label, activation="tanh")], [], r"activation 'tanh' is not one of logistic, softmax"),
    ]
    for pops, projs, match in cases:
        with pytest.raises(ValidationError, match=match):
            Network.from_populations(pops, projs)


def test_evidence_on_a_softmax_group_must_leave_it_one_of_n():
    net = dbn_shaped()
    assert net.evidence_indices({"label_0": 0, "label_1": 0}) == {net.index("label_0"): 0, net.index("label_1"): 0}
    for evidence, on in (({"label_0": 1, "label_2": 1}, 2), ({"label_0": 0, "label_1": 0, "label_2": 0}, 0)):
        with pytest.raises(EvidenceError, match=rf"^evidence turns {on} units of softmax population 'label' on; "
                                                r"exactly one unit of a one-of-n group is on \(write label=k\)$"):
            posterior(net, evidence)
    hidden_softmax = Network.from_populations([pop("h", 3, activation="softmax")])
    assert parse_evidence(["h=2"], hidden_softmax) == {"h_0": 0, "h_1": 0, "h_2": 1}   # POP=k: any softmax group


def test_the_populations_format_round_trips_a_softmax_population(tmp_path):
    net = dbn_shaped()
    save(net, tmp_path / "m.toml")                              # small, but [[unit]] tables cannot say softmax
    text = (tmp_path / "m.toml").read_text()
    assert "[[unit]]" not in text and 'activation = "softmax"' in text
    again = load(tmp_path / "m.toml")
    assert again == net and again.population("label").activation == "softmax"
    assert again.population("pen").activation == "logistic"
    with pytest.raises(ModelFileError, match=r"population 'label' is a softmax group, which the unit-by-unit "
                                             "format cannot express; save it in the populations format"):
        save(net, tmp_path / "u.toml", format="units")
    save(Network.from_populations([pop("h", 2)]), tmp_path / "small.toml")
    assert "[[unit]]" in (tmp_path / "small.toml").read_text()  # logistic small nets: as before
    bad = text.replace('activation = "softmax"', 'activation = "softmx"')
    with pytest.raises(ModelFileError, match=r"activation 'softmx' is not one of logistic, softmax"):
        loads(bad, str(tmp_path / "m.toml"))


# -- exact inference --------------------------------------------------------------------
@pytest.mark.parametrize("evidence", [None, {"v_0": 1, "v_1": 0}, {"label_1": 0}, {"label_2": 1, "v_1": 1}])
def test_exact_inference_enumerates_only_one_of_n_label_states(evidence):
    net = dbn_shaped()
    hand, _ = by_hand(net, evidence)
    post = posterior(net, evidence)
    free = [net.index(u) for u in post.units]
    assert len(post.states) == len(hand)                        # e.g. 3 * 2^6 = 192 states, not 2^9
    for state, p in zip(post.states, post.probs):
        full = np.zeros(net.n_units, dtype=int)
        full[free] = state
        for u, v in (evidence or {}).items():
            full[net.index(u)] = v
        assert p == pytest.approx(hand[tuple(full)], rel=1e-9, abs=1e-15)


def test_log_partition_and_log_prob_sum_over_one_of_n_states():
    net = dbn_shaped()
    _, z = by_hand(net)
    assert log_partition(net) == pytest.approx(math.log(z), rel=1e-12)
    states = np.array([[1, 0, 1, 1, 0, 1, 0, 0, 1], [1, 0, 1, 1, 0, 1, 1, 0, 1], [1, 0, 1, 1, 0, 0, 0, 0, 1]])
    logp = log_prob(net, states)
    assert np.isfinite(logp[0]) and logp[1] == logp[2] == -np.inf   # two labels on, or none: impossible
    lone = Network.from_populations([pop("y", 3, activation="softmax", rng=np.random.default_rng(1))])
    assert log_partition(lone) == pytest.approx(math.log(np.exp(lone.population("y").bias).sum()))


def test_given_the_top_units_the_labels_are_the_softmax_of_their_inputs():
    """Hinton et al. 2006, section 2: p(y = k | top) = softmax_k(b_y + U top)."""
    net = dbn_shaped()
    top = {"top_0": 1, "top_1": 0}
    post = posterior(net, {**top, "pen_0": 0, "pen_1": 1, "v_0": 1, "v_1": 1})
    U, b = net.projection("label<->top").weights, net.population("label").bias
    assert post.units == ["label_0", "label_1", "label_2"]
    np.testing.assert_allclose(post.marginal_array(), softmax(b + U @ [1, 0]), rtol=1e-12)


def test_a_group_too_large_to_enumerate_counts_its_states_not_two_to_the_n():
    def net(n_hidden):
        return Network.from_populations([pop("y", 50, activation="softmax"), pop("h", n_hidden)],
                                        [Projection("y<->h", "y", "h", np.zeros((50, n_hidden)), "symmetric")])
    assert len(posterior(net(12)).states) == 50 * 2 ** 12           # 62 units: 2^62 as binary units
    with pytest.raises(InferenceError, match=r"the posterior over 67 units of 'network' has 6553600 states "
                                             r"\(a softmax group of k units: k\), over the limit of 2\^22"):
        posterior(net(17))


# -- samplers against exact enumeration -------------------------------------------------
def _kl_check(samples, net, exact, inflation):
    free = [net.index(u) for u in exact.units]
    group = [net.index(u) for u in net.population("label").units]
    assert (samples[:, group].sum(axis=1) == 1).all()           # exactly one label on in every sample
    kl = empirical_kl(samples[:, free], exact)
    bound = kl_bound(len(exact.states), len(samples), inflation=inflation)
    assert kl < bound, f"KL {kl:.5f} >= bound {bound:.5f}"
    return kl


EVIDENCE = [None, {"v_0": 1, "v_1": 0}, {"label_1": 0}]


@pytest.mark.parametrize("evidence", EVIDENCE)
def test_compiled_chains_sample_the_exact_distribution(evidence):
    net = dbn_shaped()
    chains = Chains(compile(net), np.random.default_rng(3), 8000, evidence=evidence)
    samples = chains.sample(1, burn_in=30)
    assert chains.plan.mode == ("neal" if evidence and "v_0" in evidence else "mixed")
    label = {net.index(u) for u in net.population("label").units} - chains.clamped
    assert sum(label <= set(step.index.tolist()) for step in chains.plan.steps) == 1   # one step holds the group
    exact = posterior(net, evidence)
    _kl_check(samples, net, exact, 1.0)
    # negative control: the labels as independent logistic units are not this distribution
    logistic = Network.from_populations([replace(p, activation="logistic") for p in net.populations],
                                        net.projections)
    wrong = Chains(compile(logistic), np.random.default_rng(3), 8000, evidence=evidence).sample(1, burn_in=30)
    assert (wrong[:, sorted(label)].sum(axis=1) != 1).any()


@pytest.mark.parametrize("schedule, evidence, below", [
    ("sweep", None, True), ("sweep", {"v_0": 1, "v_1": 0}, True), ("async", None, True),
    ("async", {"label_1": 0}, True), ("layer", None, False), ("layer", {"label_0": 0}, False)])
def test_the_event_engine_samples_the_exact_distribution(schedule, evidence, below):
    """``layer`` on the top RBM alone: pen and labels share a layer and are independent
    given the top units (below it the pen units would share children)."""
    net = dbn_shaped(below=below)
    sim = Simulator(net, np.random.default_rng(5), schedule=schedule, evidence=evidence)
    samples = sim.sample(4000, burn_in=20, thin=3)
    exact = posterior(net, evidence)
    _kl_check(samples, net, exact, 2.0)
    # negative control: against a net whose label weights are negated the bound fails
    flipped = Network.from_populations(net.populations, [replace(q, weights=-q.weights) if q.pre == "label"
                                                         else q for q in net.projections])
    free = [net.index(u) for u in exact.units]
    assert empirical_kl(samples[:, free], posterior(flipped, evidence)) > kl_bound(len(exact.states), 4000, 2.0)


def test_event_engine_and_compiled_label_marginals_agree():
    net = dbn_shaped(seed=2)
    exact = posterior(net).marginal_array()[[net.index(u) for u in net.population("label").units]]
    compiled = Chains(compile(net), np.random.default_rng(1), 8000).sample(1, burn_in=30)
    event = Simulator(net, np.random.default_rng(2)).sample(4000, burn_in=20, thin=3)
    cols = [net.index(u) for u in net.population("label").units]
    for samples, inflation in ((compiled, 1), (event, 2)):
        se = np.sqrt(exact * (1 - exact) * inflation / len(samples))
        assert np.all(np.abs(samples[:, cols].mean(axis=0) - exact) < 5 * se)


def test_update_group_of_a_softmax_population_draws_one_winner_on_both_engines():
    net = dbn_shaped(below=False)
    labels = net.population("label").units
    chains = Chains(compile(net), np.random.default_rng(0), 50)
    assert (chains.update_group(labels).sum(axis=1) == 1).all()
    chains.clamp({"label_2": 1})
    assert not chains.update_group(labels[:2]).any()            # another member is on: the rest stay off
    sim = Simulator(net, np.random.default_rng(0), schedule="layer")
    for _ in range(20):
        assert sim.update_group(labels).sum() == 1
    sim.clamp({"label_0": 1})
    assert not sim.update_group(labels[1:]).any()


# -- the DBN ----------------------------------------------------------------------------
def test_the_dbn_marks_its_labels_softmax_and_old_logistic_exports_still_load(tmp_path):
    from test_dbn_network import random_dbn
    dbn = random_dbn((6, 5, 4), 3, seed=1)
    rng = np.random.default_rng(0)
    net = dbn.to_network()
    assert net.population("label").activation == "softmax"
    old = Network.from_populations([replace(p, activation="logistic") for p in net.populations],
                                   net.projections, net.name, net.description)
    save(old, tmp_path / "old.toml", format="populations")
    back = DeepBeliefNet.from_network(load(tmp_path / "old.toml"))
    assert all(np.array_equal(a, b) for a, b in zip(back.state_dict().values(), dbn.state_dict().values()))
    X = rng.random((40, 6))
    new_read = classify(net, X, "gibbs", np.random.default_rng(4), sweeps=5, burn_in=2)
    old_read = classify(load(tmp_path / "old.toml"), X, "gibbs", np.random.default_rng(4), sweeps=5, burn_in=2)
    assert np.array_equal(new_read.labels, old_read.labels)     # the read-out makes old labels softmax


def test_infer_on_an_exported_dbn_treats_the_labels_as_one_of_n(tmp_path, capsys):
    """`neurosim show` names the group; `infer` (exact) lists only states with one label
    on and its label marginals sum to 1; `sample --evidence label=2` keeps every
    sample's label 2 on, the others off."""
    import json

    from helpers import run_cli
    from test_dbn_network import random_dbn

    save(random_dbn((3, 2, 3), 3, seed=5).to_network(), tmp_path / "tiny.toml")
    code, out, _ = run_cli(capsys, "show", tmp_path / "tiny.toml")
    assert code == 0 and "\n  softmax groups, one unit on at a time: label (3 units)\n" in out
    code, out, _ = run_cli(capsys, "infer", tmp_path / "tiny.toml", "--evidence", "v_0=1", "--json")
    r = json.loads(out)
    labels = [r["units"].index(f"label_{k}") for k in range(3)]
    assert code == 0 and len(r["joint"]) == 3 * 2 ** 7
    assert all(sum(int(bits[i]) for i in labels) == 1 for bits in r["joint"])
    assert sum(r["marginals"][f"label_{k}"] for k in range(3)) == pytest.approx(1, abs=1e-12)
    code, out, _ = run_cli(capsys, "sample", tmp_path / "tiny.toml", "--evidence", "label=2", "--backend", "event",
                           "--n", 200, "--json")
    r = json.loads(out)
    labels = [r["units"].index(f"label_{k}") for k in range(3)]
    assert code == 0 and all([bits[i] for i in labels] == ["0", "0", "1"] for bits in r["counts"])
