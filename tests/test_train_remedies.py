"""The remedies of `neurosim train` (restarts chosen on held-out likelihood, a final
learning rate, the wake-sleep warm-up), on both backends, and the small functions they
are built from (neurosim/learning/restarts.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from neurosim import load
from neurosim.cli import main
from neurosim.data import encoder_424, load_data, match_visible
from neurosim.errors import ParameterError, ValidationError
from neurosim.inference import visible_log_prob
from neurosim.learning import get_rule
from neurosim.learning.procedures import Settings, train
from neurosim.learning.restarts import best_of, split_held_out


def train_compiled(*args, **kwargs):
    return train(*args, backend="compiled", **kwargs)


ROOT = Path(__file__).resolve().parents[1]
ENCODER = ROOT / "models" / "encoder_424.toml"
SHIFTER = ROOT / "models" / "helmholtz_shifter.toml"
BACKENDS = {"event": train, "compiled": train_compiled}


def encoder():
    net, data = load(ENCODER), encoder_424()
    return net, match_visible(data, net), data.names, data.probs


# -- the small functions ---------------------------------------------------------------------
def test_best_of_keeps_the_highest_score_from_independent_streams():
    seen = []
    choice = best_of(lambda r: seen.append(r) or float(r.random()), lambda x: -abs(x - 0.5), 5,
                     np.random.default_rng(3))
    assert len(seen) == 5 and len({id(r) for r in seen}) == 5
    expected = [float(r.random()) for r in np.random.default_rng(3).spawn(5)]
    assert choice.candidates == expected
    assert choice.index == int(np.argmin([abs(x - 0.5) for x in expected])) and choice.best == expected[choice.index]


def test_best_of_one_restart_uses_the_generator_and_scores_nothing():
    rng = np.random.default_rng(0)
    choice = best_of(lambda r: r, lambda x: pytest.fail("scored"), 1, rng)
    assert choice.best is rng and choice.scores == []


def test_a_nan_score_never_wins():
    scores = iter([float("nan"), -5.0, float("nan")])
    assert best_of(lambda r: None, lambda _: next(scores), 3, np.random.default_rng(0)).index == 1


def test_split_held_out():
    rows = np.arange(20)[:, None]
    train_rows, held = split_held_out(rows, 0.25, np.random.default_rng(0))
    assert len(held) == 5 and len(train_rows) == 15
    assert sorted(np.concatenate([train_rows, held])[:, 0]) == list(range(20))
    assert list(held[:, 0]) == sorted(held[:, 0]) and list(train_rows[:, 0]) == sorted(train_rows[:, 0])
    assert [len(part) for part in split_held_out(rows[:2], 0.01, np.random.default_rng(0))] == [1, 1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(restarts=0), "restarts must be >= 1"), (dict(epochs=5, screen=6), "screen must be <= 5"),
    (dict(held_out=1.0), "held_out must be < 1"), (dict(held_out=0), "held_out must be > 0"),
    (dict(final_lr=-0.1), "final_lr must be > 0"), (dict(epochs=3, warmup_epochs=4), "warmup_epochs must be <= 3"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        Settings(**kwargs)


def test_schedule_of_the_learning_rate_and_warm_up():
    s = Settings(epochs=9, lr=0.5, final_lr=0.1, warmup_epochs=2)
    assert [s.lr_at(e) for e in range(1, 10)] == [0.5] * 6 + [0.1] * 3
    assert [s.warming_up(e) for e in (1, 2, 3)] == [True, True, False]
    assert Settings(epochs=9, lr=0.5).lr_at(9) == 0.5 and Settings(epochs=35).screen_epochs == 2


# -- the procedures --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_restarts_keep_the_candidate_of_highest_exact_likelihood(backend):
    """With the choice at the last epoch, the kept net's exact expected log-likelihood
    is the highest recorded score, recomputed independently."""
    net, data, visible, probs = encoder()
    s = Settings(epochs=20, lr=0.5, batch=4, sweeps=3, restarts=3, screen=20)
    result = BACKENDS[backend](net, get_rule("boltzmann"), data, visible, np.random.default_rng(1), s,
                               probs=probs)
    scores = result.restarts["held_out_log_likelihood_nats"]
    assert len(scores) == 3 and len(set(scores)) == 3 and result.restarts["chosen"] == int(np.argmax(scores))
    assert result.restarts["likelihood"] == "exact"
    assert float(probs @ visible_log_prob(result.network, visible, data)) == pytest.approx(max(scores), abs=1e-12)
    assert result.cases == 3 * 20 * len(data)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_restarts_on_rows_hold_out_a_fraction_and_train_on_after_the_screen(backend):
    net = load(ENCODER)
    dataset = load_data("encoder-4-2-4", np.random.default_rng(0), 40)
    data = match_visible(dataset, net)
    s = Settings(epochs=6, batch=4, sweeps=2, restarts=2, screen=2, held_out=0.25)
    result = BACKENDS[backend](net, get_rule("boltzmann"), data, dataset.names, np.random.default_rng(2), s)
    assert result.cases == (2 * 2 + 4) * 30                     # 10 of 40 rows held out
    assert result.restarts["held_out"] == "0.25 of the rows" and result.restarts["screen_epochs"] == 2
    assert all(-8 * np.log(2) < x < 0 for x in result.restarts["held_out_log_likelihood_nats"])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_final_lr_changes_only_the_last_third(backend):
    """Epochs 1-2 of 3 at lr, then a learning rate of 1e-12: the net is the one after 2
    epochs, to 1e-9."""
    net, data, visible, _ = encoder()
    rule = get_rule("cd")
    two = BACKENDS[backend](net, rule, data, visible, np.random.default_rng(4), Settings(epochs=2, lr=0.5))
    three = BACKENDS[backend](net, rule, data, visible, np.random.default_rng(4),
                              Settings(epochs=3, lr=0.5, final_lr=1e-12))
    a, b = two.network.to_arrays(), three.network.to_arrays()
    assert np.abs(a.weights).max() > 0.05
    assert np.allclose(a.weights, b.weights, atol=1e-9) and np.allclose(a.bias, b.bias, atol=1e-9)


def shifter_rows(n=40):
    net = load(SHIFTER)
    dataset = load_data("shifter", np.random.default_rng(0), n)
    return net, match_visible(dataset, net), [u.name for u in net.unit_list() if u.role == "visible"]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_warm_up_holds_the_hidden_layers_generative_model(backend):
    net, data, visible = shifter_rows()
    result = BACKENDS[backend](net, get_rule("wake-sleep"), data, visible, np.random.default_rng(0),
                               Settings(epochs=2, lr=0.3, batch=10, warmup_epochs=2))
    before, after = net.to_arrays(), result.network.to_arrays()
    into_visible = np.isin(net.units, visible)
    held = dict(rtol=0, atol=1e-6)  # the compiled backend holds weights in float32 (|w| < 4: 2.4e-7)
    assert np.allclose(before.weights[:, ~into_visible], after.weights[:, ~into_visible], **held)
    assert np.allclose(before.bias[~into_visible], after.bias[~into_visible], **held)
    assert not np.array_equal(before.weights[:, into_visible], after.weights[:, into_visible])
    rec = [(a, b) for a, b in net.recognition.edges()]
    assert any(net.weight(a, b, recognition=True) != result.network.weight(a, b, recognition=True)
               for a, b in rec)
    free = BACKENDS[backend](net, get_rule("wake-sleep"), data, visible, np.random.default_rng(0),
                             Settings(epochs=2, lr=0.3, batch=10)).network.to_arrays()
    assert not np.allclose(before.weights[:, ~into_visible], free.weights[:, ~into_visible], atol=0.01)


def test_restarts_of_a_helmholtz_machine_are_importance_sampled():
    """26 hidden units: too many to enumerate; the recognition model is the proposal."""
    net, data, visible = shifter_rows(50)
    result = train_compiled(net, get_rule("wake-sleep"), data, visible, np.random.default_rng(0),
                            Settings(epochs=2, lr=0.3, batch=10, restarts=2, screen=1))
    scores = result.restarts["held_out_log_likelihood_nats"]
    assert len(scores) == 2 and all(-32 * np.log(2) < x < 0 for x in scores)
    assert result.restarts["likelihood"].startswith("importance-sampled")


def test_remedies_a_procedure_cannot_use_are_refused():
    net, data, visible, probs = encoder()
    with pytest.raises(ValidationError, match="warmup_epochs holds the hidden layers' generative model"):
        train(net, get_rule("boltzmann"), data, visible, np.random.default_rng(0),
              Settings(epochs=2, warmup_epochs=1))
    big = load(ROOT / "models" / "helmholtz_shifter.toml")
    plain = type(big)([u for u in big.unit_list()], [e for e in big.edges if e.kind != "recognition"], "plain")
    rows = shifter_rows()[1]
    with pytest.raises(ValidationError, match="26 hidden units, 8 held-out cases and no recognition model"):
        train(plain, get_rule("delta"), rows, shifter_rows()[2], np.random.default_rng(0),
              Settings(epochs=2, restarts=2))


# -- the command -----------------------------------------------------------------------------
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_restarts_are_reported(capsys, tmp_path):
    code, out, err = run(capsys, "train", ENCODER, "--rule", "boltzmann", "--data", "encoder-4-2-4", "--epochs", 12,
                         "--batch", 4, "--restarts", 3, "--screen", 4, "--final-lr", 0.05, "--out",
                         tmp_path / "t.toml", "--json")
    r = json.loads(out)
    assert code == 0 and r["restarts"]["candidates"] == 3 and r["cases"] == (3 * 4 + 8) * 4
    assert r["restarts"]["held_out"].startswith("the data distribution")
    progress = err.splitlines()                                 # one line per restart as it is scored
    scores = r["restarts"]["held_out_log_likelihood_nats"]
    assert progress[:3] == [f"train: restart {k + 1}/3: held-out log-likelihood {x:.4g} nats after 4 epochs"
                            for k, x in enumerate(scores)]
    assert progress[3] == f"train: kept restart {r['restarts']['chosen'] + 1}; training it on to epoch 12"


@pytest.mark.parametrize("flags, message", [
    (["--rule", "boltzmann", "--warmup-epochs", "1"], "warmup_epochs holds"),
    (["--rule", "cd", "--held-out", "1.5"], "held_out must be < 1"),
    (["--rule", "cd", "--screen", "20"], "screen must be <= 10"),
])
def test_cli_bad_remedies_exit_2(capsys, tmp_path, flags, message):
    code, _, err = run(capsys, "train", ENCODER, "--data", "encoder-4-2-4", "--epochs", 10, *flags,
                       "--out", tmp_path / "t.toml")
    assert code == 2 and message in err and not (tmp_path / "t.toml").exists()
