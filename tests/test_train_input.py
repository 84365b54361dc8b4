"""Training refuses what it cannot do and never writes a wrong model: bad rates and
settings, bad data, divergence (both backends and the CLI), rules that do not fit the
net, message delays, and an --out that cannot be written."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

import neurosim.outputs
from neurosim import Edge, Network, Unit
from neurosim.errors import DivergenceError, ParameterError, ValidationError
from neurosim.learning import Rule, get_rule, register
from neurosim.learning.procedures import Settings, train

from helpers import run_cli


def train_compiled(*args, **kwargs):
    return train(*args, backend="compiled", **kwargs)


ROOT = Path(__file__).resolve().parents[1]
BOLTZMANN = ROOT / "models" / "boltzmann_6.toml"
TRAINERS = {"event": train, "compiled": train_compiled}


class Grow(Rule):
    """Every synapse grows by lr in every phase: diverges in one batch at lr = 1e308."""
    name, phases, procedure = "grow", ("positive", "negative"), "cd"

    def local(self, s):
        return s.lr

    def batched(self, pre, post, phase, lr, post_prob=None, post_error=None):
        return lr * np.ones_like(pre).T @ np.ones_like(post)


def _rbm():
    V, H = ["v0", "v1"], ["h0"]
    units = [Unit(v, 0.0, "visible") for v in V] + [Unit("h0", 0.0, "hidden")]
    return Network(units, [Edge(v, "h0", 0.1, "symmetric") for v in V], name="tiny"), V


DATA = np.array([[0, 1], [1, 0], [1, 1]])


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("v1,v2,v3\n1,0,1\n0,1,1\n1,1,0\n")
    return path


@pytest.fixture
def existing(tmp_path):
    """An --out that exists already: a failed run must leave it as it was."""
    path = tmp_path / "m.toml"
    path.write_text("old")
    return path


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize("lr", ["-1", "0", "nan", "inf", "-inf", "1e400"])
def test_train_refuses_a_rate_that_is_not_positive_and_finite(capsys, csv, existing, lr):
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "cd", "--data", csv, f"--lr={lr}",
                         "--out", existing)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].endswith(f"argument --lr: must be a positive finite number, got {lr}")
    assert existing.read_text() == "old"


@pytest.mark.parametrize("settings, message", [
    (dict(lr=-1.0), "lr must be > 0, got -1.0"),
    (dict(lr=0.0), "lr must be > 0, got 0.0"),
    (dict(lr=float("nan")), "lr must be finite, got nan"),
    (dict(lr=float("inf")), "lr must be finite, got inf"),
    (dict(epochs=0), "epochs must be >= 1, got 0"),
    (dict(batch=2.5), "batch must be an integer, got 2.5"),
    (dict(anneal=(2.0, 0.0)), "anneal temperature must be > 0, got 0.0"),
    (dict(anneal=(float("inf"),)), "anneal temperature must be finite, got inf"),
])
def test_settings_refuse_what_no_run_can_use(settings, message):
    with pytest.raises(ParameterError, match=f"^{message}$"):
        Settings(**settings)


# -- data ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", TRAINERS)
@pytest.mark.parametrize("data, message", [
    ([[1, 0, 1]], r"training data has 3 columns; the machine has 2 visible units \(v0, v1\)"),
    ([[1]], r"training data has 1 columns"),
    (np.zeros((0, 2)), "training data has no rows"),
    ([[1, 0.5]], r"training data\[0, 1\] = 0.5 \(unit 'v1'\): states must be 0 or 1"),
    ([[np.nan, 0]], r"training data\[0, 0\] = nan \(unit 'v0'\)"),
])
def test_training_data_must_be_rows_of_0_1_over_the_visible_units(backend, data, message):
    net, V = _rbm()
    with pytest.raises(ParameterError, match=message):
        TRAINERS[backend](net, get_rule("cd"), np.asarray(data), V, np.random.default_rng(0))


# -- divergence ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", TRAINERS)
def test_a_run_whose_parameters_become_non_finite_stops_naming_the_epoch_and_parameter(backend):
    net, V = _rbm()
    with pytest.raises(DivergenceError, match=r"^epoch 1 of 3: (synapse \w+ -> \w+|bias of \w+) = (inf|nan): "
                                              r"training diverged .*\(now 1e\+308\)$"):
        TRAINERS[backend](net, register(Grow()), DATA, V, np.random.default_rng(0),
                          Settings(epochs=3, lr=1e308))


@pytest.mark.parametrize("backend", ["event", "compiled"])
def test_train_cli_on_divergence_exits_2_and_leaves_out_untouched(capsys, csv, existing, tmp_path, backend):
    register(Grow())  # in this process, as --rule-module would
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "grow", "--data", csv, "--lr", "1e308",
                         "--epochs", 3, "--backend", backend, "--out", existing)
    assert code == 2 and out == ""
    assert err.startswith("neurosim: error: epoch 1 of 3: ") and len(err.strip().splitlines()) == 1
    assert existing.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["d.csv", "m.toml"]


@pytest.mark.parametrize("backend", ["event", "compiled"])
def test_train_cli_with_a_huge_rate_writes_no_model(capsys, csv, existing, backend):
    """The issue's case: --lr 1e300 used to write a model of +-1e300 weights, exit 0."""
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "boltzmann", "--data", csv, "--lr", "1e300",
                         "--epochs", 20, "--backend", backend, "--out", existing)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "epoch 1 of 20: " in err and "training diverged" in err and "1e+06" in err  # not exact's refusal
    assert existing.read_text() == "old"


# -- rules that do not fit; message delays -------------------------------------------------
@pytest.mark.parametrize("backend", TRAINERS)
def test_the_delta_rule_on_a_boltzmann_machine_is_refused_before_training(backend):
    net, V = _rbm()
    with pytest.raises(ValidationError, match=r"rule 'delta' learns directed synapses .* 'tiny' has "
                                              r"symmetric edges \(v0 <-> h0, \.\.\.\).*use boltzmann, cd or pcd"):
        TRAINERS[backend](net, get_rule("delta"), DATA, V, np.random.default_rng(0))


def test_train_cli_delta_on_a_boltzmann_machine_exits_2_and_writes_nothing(capsys, csv, existing):
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "delta", "--data", csv, "--out", existing)
    assert code == 2 and out == "" and "rule 'delta' learns directed synapses" in err
    assert existing.read_text() == "old"


def test_train_with_message_delays_writes_the_drifted_model_and_reports_the_drift(capsys, csv, existing):
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "boltzmann", "--data", csv, "--delay", "0.5",
                         "--schedule", "async", "--epochs", 3, "--seed", 1, "--out", existing, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["symmetry_drift"] > 0
    assert r["quality"]["kl_nats"] > 0 and r["quality"]["note"].startswith("of the symmetrised net")
    assert "weight_reverse" in existing.read_text()  # the two synapses, as trained


@pytest.mark.parametrize("rule", ["cd", "pcd"])
def test_lockstep_procedures_refuse_message_delays_they_cannot_model(rule):
    """CD steps layers without running the clock: a delayed message never arrived, and
    CD and PCD trained the same wrong net."""
    net, V = _rbm()
    with pytest.raises(ValidationError, match=rf"'tiny' has message delays \(edge v0 -> h0: 0.5 sweeps\), "
                                              rf"which rule '{rule}' cannot model: .* by boltzmann or delta$"):
        train(net.with_delay(0.5), get_rule(rule), DATA, V, np.random.default_rng(0))


def test_the_compiled_backend_refuses_message_delays():
    net, V = _rbm()
    with pytest.raises(ValidationError, match="'tiny' has message delays: the compiled backend runs with "
                                              "instant messages"):
        train_compiled(net.with_delay(0.5), get_rule("boltzmann"), DATA, V, np.random.default_rng(0))


def test_train_cli_cd_with_delays_exits_2_and_writes_nothing(capsys, csv, existing):
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "cd", "--data", csv, "--delay", "0.5",
                         "--out", existing)
    assert code == 2 and out == "" and "which rule 'cd' cannot model" in err
    assert existing.read_text() == "old"


# -- --out ---------------------------------------------------------------------------------
@pytest.mark.parametrize("where, message", [
    ("missing/m.toml", "no such directory"),
    (".", "is a directory"),
])
def test_train_refuses_an_unwritable_out(capsys, csv, tmp_path, where, message):
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "cd", "--data", csv,
                         "--out", tmp_path / where)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_train_refuses_a_read_only_out_before_training(capsys, csv, existing, monkeypatch):
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(existing))  # CI runs as root
    monkeypatch.setattr("neurosim.learning.procedures.train", pytest.fail)  # never reached
    code, _, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "cd", "--data", csv, "--out", existing)
    assert code == 2 and "not writable" in err and existing.read_text() == "old"


def test_train_on_a_full_disk_leaves_out_untouched_and_no_temporary(capsys, csv, existing, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(neurosim.outputs.os, "fsync", full)
    code, out, err = run_cli(capsys, "train", BOLTZMANN, "--rule", "cd", "--data", csv, "--out", existing)
    assert code == 2 and out == "" and "No space left on device" in err and str(existing) in err
    assert existing.read_text() == "old" and sorted(p.name for p in existing.parent.iterdir()) == \
        ["d.csv", "m.toml"]
