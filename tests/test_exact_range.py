"""Exact inference at extreme parameters: probabilities in [0, 1] summing to 1, or a refusal
naming the unit or edge beyond the supported range (issue 23)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, InferenceError, Network, Unit, load
from neurosim.cli import main
from neurosim.inference import (MAX_SCALE, kl_data_model, log_joint, moment_matched, posterior,
                                visible_log_prob)

EPS = np.finfo(float).eps


def _model(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _unit(name: str, bias: float) -> str:
    return f'[[unit]]\nname = "{name}"\nbias = {bias!r}\n'


def test_bias_1e16_is_refused_naming_the_unit(tmp_path, capsys):
    """Old: P(a=1) = 2 (bias 1e16 beside a bias 1: the 1 is lost, both states share all mass)."""
    path = _model(tmp_path, _unit("a", 1e16) + _unit("b", 1.0))
    assert main(["infer", str(path), "--method", "exact", "--json"]) == 2
    err = capsys.readouterr().err
    assert "unit 'a' has bias 1e+16" in err and f"{MAX_SCALE:g}" in err and len(err.splitlines()) == 1


def test_single_unit_bias_1e16_is_refused(tmp_path):
    with pytest.raises(InferenceError, match=r"unit 'a' has bias 1e\+16"):
        posterior(load(_model(tmp_path, _unit("a", 1e16))))


def test_weight_1e308_is_refused_naming_the_edge(tmp_path, capsys):
    """Old: NaN for every probability, exit 0, and bare NaN in the JSON."""
    text = (_unit("a", 0.0) + _unit("b", 0.0)
            + '[[edge]]\nfrom = "a"\nto = "b"\nweight = 1e308\nkind = "symmetric"\n')
    path = _model(tmp_path, text)
    assert main(["infer", str(path), "--method", "exact"]) == 2
    err = capsys.readouterr().err
    assert "edge a -> b has weight 1e+308" in err and "warning" not in err


def test_log_joint_refuses_rather_than_nan():
    net = Network([Unit("a"), Unit("b")], [Edge("a", "b", 1e308, "symmetric")])
    with pytest.raises(InferenceError, match=r"edge a -> b"):
        log_joint(net, np.ones((1, 2)))


def test_bias_50_marginals_stay_in_unit_interval(tmp_path, capsys):
    """Old: P(a=1) = 1.0000000000000038 (rounding in exp(lj - log_norm) summed over states)."""
    path = _model(tmp_path, _unit("a", 50.0) + _unit("b", -3.0) + _unit("c", -3.0))
    assert main(["infer", str(path), "--method", "exact", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(0.0 <= p <= 1.0 for p in out["marginals"].values())
    assert all(0.0 <= p <= 1.0 for p in out["joint"].values())
    assert abs(sum(out["joint"].values()) - 1.0) <= 8 * EPS
    q = moment_matched(posterior(load(path)))
    assert np.all((q >= 0) & (q <= 1))


@pytest.mark.parametrize("seed", range(20))
def test_posterior_is_normalised_at_large_in_range_parameters(seed):
    """Random biases up to 1e4 and weights up to 1e3, evidence on a visible unit: every
    probability in [0, 1], the joint sums to 1, log P(evidence) <= 0."""
    rng = np.random.default_rng(seed)
    units = [Unit(f"h{i}", float(rng.uniform(-1e4, 1e4))) for i in range(4)]
    units.append(Unit("v", float(rng.uniform(-1e3, 1e3)), role="visible"))
    edges = [Edge(f"h{i}", "v", float(rng.uniform(-1e3, 1e3))) for i in range(4)]
    net = Network(units, edges)
    for evidence in ({}, {"v": 0}, {"v": 1}):
        post = posterior(net, evidence)
        assert all(0.0 <= p <= 1.0 for p in post.marginals().values())
        assert np.all((post.probs >= 0) & (post.probs <= 1)) and abs(post.probs.sum() - 1) <= 8 * EPS
        assert np.all(post.log_probs <= 0) and post.log_evidence <= 0
    logp = visible_log_prob(net, ["v"], np.array([[0], [1]]))
    assert np.all(np.isfinite(logp)) and np.all(logp <= 0)
    assert math.isfinite(kl_data_model(net, ["v"], np.array([[0], [1]]), np.array([0.5, 0.5])))


def test_in_range_is_exact_at_the_limit():
    """The range is justified: at scale just under MAX_SCALE an independent unit's
    marginal is still sigmoid(b) to 1e-9 (float64 resolves ~eps * scale ~ 1e-10)."""
    net = Network([Unit("a", MAX_SCALE - 2.0), Unit("b", 1.0)])
    post = posterior(net)
    assert post.marginals()["b"] == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-9)
    with pytest.raises(InferenceError, match=r"unit 'a' has bias"):
        posterior(Network([Unit("a", MAX_SCALE), Unit("b", 1.0)]))
