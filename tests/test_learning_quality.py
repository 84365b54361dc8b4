"""learning.quality: the measures of a trained net that `neurosim train` reports."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_boltzmann
from neurosim import Edge, Network, Unit, load_model
from neurosim.data import empirical_distribution, shifter_entropy_nats
from neurosim.inference import posterior
from neurosim.learning.procedures import symmetrised
from neurosim.learning.quality import exact_quality, shifter_quality

VISIBLE = ["v0", "v1", "v2"]
DATA = np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 0, 0], [1, 1, 0]])


def test_kl_and_log_likelihood_agree_with_enumeration_and_with_each_other():
    """The empirical distribution p: mean log-likelihood = sum_v p(v) log P(v) =
    -KL(p || P) - H(p), and each log P(v) is the evidence of exact inference."""
    net = random_boltzmann(np.random.default_rng(3), 3, 3)
    q = exact_quality(net, VISIBLE, DATA)
    log_p = [posterior(net, dict(zip(VISIBLE, map(int, row)))).log_evidence for row in DATA]
    assert q["log_likelihood_nats"] == pytest.approx(np.mean(log_p), abs=1e-12)
    _, p = empirical_distribution(DATA)
    entropy = -float(p @ np.log(p))
    assert q["log_likelihood_nats"] == pytest.approx(-q["kl_nats"] - entropy, abs=1e-9)
    assert q["kl_nats"] > 0 and "note" not in q


def test_a_given_distribution_is_scored_as_given():
    net = random_boltzmann(np.random.default_rng(4), 3, 2)
    rows = np.array([[1, 0, 1], [0, 1, 1]])
    skewed, even = (exact_quality(net, VISIBLE, rows, np.array(p)) for p in ([0.9, 0.1], [0.5, 0.5]))
    assert skewed["kl_nats"] != pytest.approx(even["kl_nats"])
    assert even["kl_nats"] == pytest.approx(exact_quality(net, VISIBLE, rows)["kl_nats"], abs=1e-12)


def test_a_drifted_net_is_measured_symmetrised_and_says_so():
    units = [Unit("v0", 0.2, "visible"), Unit("v1", -0.3, "visible"), Unit("v2", 0.1, "visible"),
             Unit("h0", 0.0, "hidden")]
    edges = [Edge(v, "h0", 1.0, "symmetric", weight_reverse=w) for v, w in zip(VISIBLE, (-1.0, 1.0, 0.5))]
    net = Network(units, edges, name="drifted")
    q = exact_quality(net, VISIBLE, DATA)
    assert q["note"].startswith("of the symmetrised net")
    assert {k: q[k] for k in ("kl_nats", "log_likelihood_nats")} == exact_quality(symmetrised(net), VISIBLE, DATA)


def test_too_many_hidden_units_give_a_note_instead():
    net = random_boltzmann(np.random.default_rng(5), 3, 25, density=0.2)
    assert exact_quality(net, VISIBLE, DATA) == {
        "note": "25 hidden units and 4 distinct cases: too many to enumerate"}


def test_shifter_quality_of_an_untrained_helmholtz_machine():
    """Every measure in its range, the same seed the same numbers: an untrained machine
    cannot beat the data's entropy (an importance-sampled likelihood is biased low, too)."""
    net = load_model("models/helmholtz_shifter.toml")
    q = shifter_quality(net, np.random.default_rng(0), cases=200)
    assert set(q) == {"valid_fantasy_fraction", "shift_selectivity", "nll_nats", "data_entropy_nats"}
    assert 0 <= q["valid_fantasy_fraction"] <= 1 and 0 <= q["shift_selectivity"] <= 1
    assert q["data_entropy_nats"] == shifter_entropy_nats() and q["nll_nats"] > q["data_entropy_nats"]
    assert shifter_quality(net, np.random.default_rng(0), cases=200) == q
