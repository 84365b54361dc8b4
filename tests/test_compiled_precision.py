"""The compiled backend at parameters float32 cannot hold: it computes in float64 (or
refuses) and so samples what exact inference or the closed form says (issue 23)."""

from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, Network, Unit, load, posterior
from neurosim.cli import main
from neurosim.compiled import Chains, compile
from neurosim.compiled.plan import F32_MAX_INPUT
from neurosim.errors import ValidationError
from helpers import empirical_kl, kl_bound

MODELS = Path(__file__).resolve().parents[1] / "models"
CHAINS = 4000


def _samples(net: Network, evidence: dict | None, seed: int = 0, burn_in: int = 50) -> np.ndarray:
    return Chains(compile(net), np.random.default_rng(seed), CHAINS, evidence=evidence).sample(1, burn_in)


def test_weight_1e39_samples_only_11():
    """P(11) = 1 - O(exp(-1e39)); from any start a chain leaves 00 with probability >= 3/4
    per sweep, so after 50 sweeps all 4000 chains sit at 11 but with probability
    < 4000 * 0.25**50 ~ 1e-27. Old: float32 made the weight inf, inf * 0 = NaN, half 00."""
    net = Network([Unit("a"), Unit("b")], [Edge("a", "b", 1e39, "symmetric")])
    assert np.all(_samples(net, None) == 1)


def test_weight_1e39_from_the_cli(tmp_path, capsys):
    path = tmp_path / "m.toml"
    path.write_text('[[unit]]\nname = "a"\n[[unit]]\nname = "b"\n'
                    '[[edge]]\nfrom = "a"\nto = "b"\nweight = 1e39\nkind = "symmetric"\n')
    assert main(["infer", str(path), "--method", "gibbs", "--backend", "compiled", "--json"]) == 0
    out = capsys.readouterr()
    assert '"11": 1.0' in out.out and "warning" not in out.err


def _cancelling(bias: float, weights: list[float]) -> Network:
    """Child ``c`` of roots p0.. with the given weights: clamping every root to 1 gives
    c the total input ``bias + sum(weights)``."""
    roots = [Unit(f"p{k}", 0.0) for k in range(len(weights))]
    edges = [Edge(f"p{k}", "c", w) for k, w in enumerate(weights)]
    return Network(roots + [Unit("c", bias, role="visible")], edges)


@pytest.mark.parametrize("bias, weights", [
    (0.0, [3e38, 3e38, -3e38, -3e38]),   # each fits float32, the sum overflows: inf - inf
    (1e39, [-1e39]),                     # a bias beyond float32 against an equal weight
    (0.0, [1e30] * 4 + [-1e30] * 4),     # in float32 range and no overflow: still float64
])
def test_total_input_that_cancels_gives_one_half(bias, weights):
    """The clamped child's input is exactly 0, so P(c=1) = 1/2: 4000 independent chains
    give a mean within 5 standard deviations, 5 * sqrt(0.25 / 4000) = 0.04.
    Old: float32 turned the input into inf or NaN, P(c=1) = 0 or 1."""
    net = _cancelling(bias, weights)
    roots = {u: 1 for u in net.units if u != "c"}
    c = _samples(net, roots, burn_in=2)[:, net.index("c")]
    assert abs(c.mean() - 0.5) < 5 * np.sqrt(0.25 / CHAINS)


def test_large_in_range_weights_agree_with_exact():
    """Inputs up to 6e4 (float64) with cancelling weights: samples of all four units
    against exact enumeration, KL under the G-test bound for independent samples."""
    units = [Unit("a", 0.3), Unit("b", -0.4), Unit("c", 1.1), Unit("d", 0.5, role="visible")]
    edges = [Edge("a", "d", 30000.3), Edge("b", "d", -30000.3), Edge("c", "d", -1.7)]
    net = Network(units, edges)
    assert compile(net).dtype == np.float64
    samples = _samples(net, None, seed=1, burn_in=2)
    kl = empirical_kl(samples, posterior(net))
    assert kl < kl_bound(16, CHAINS, inflation=1.0)


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_normal_nets_stay_float32(path):
    """No speed regression: the shipped models compile to float32 as before."""
    assert compile(load(path)).dtype == np.float32


def test_float32_up_to_the_bound_float64_beyond():
    at = Network([Unit("a", F32_MAX_INPUT / 2), Unit("b")], [Edge("b", "a", -F32_MAX_INPUT / 2)])
    over = Network([Unit("a", F32_MAX_INPUT / 2), Unit("b")], [Edge("b", "a", -F32_MAX_INPUT)])
    assert compile(at).dtype == np.float32 and compile(over).dtype == np.float64


def test_explicit_float32_beyond_its_range_is_refused():
    net = Network([Unit("a"), Unit("b")], [Edge("a", "b", 1e39)])
    with pytest.raises(ValidationError, match=r"unit 'b' .* edge a -> b, weight 1e\+39.*use float64"):
        compile(net, dtype=np.float32)


def test_input_that_overflows_float64_is_refused(tmp_path, capsys):
    """Two weights of 1e308 into one unit sum to inf even in float64: refused, exit 2."""
    text = ('[[unit]]\nname = "a"\n[[unit]]\nname = "b"\n[[unit]]\nname = "c"\n'
            '[[edge]]\nfrom = "a"\nto = "c"\nweight = 1e308\n'
            '[[edge]]\nfrom = "b"\nto = "c"\nweight = -1e308\n')
    path = tmp_path / "m.toml"
    path.write_text(text)
    assert main(["infer", str(path), "--method", "gibbs", "--backend", "compiled"]) == 2
    err = capsys.readouterr().err
    assert "unit 'c'" in err and "edge a -> c, weight 1e+308" in err and len(err.splitlines()) == 1
