"""The graph CLI's flags: repeated flags never silently keep the last, seeds are
non-negative, --json is strict JSON."""

import json
from pathlib import Path

import pytest

import neurosim.cli as cli
from neurosim.cli import main

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
EARTHQUAKE = str(ROOT / "models" / "earthquake_truck.toml")
BOLTZMANN = str(ROOT / "models" / "boltzmann_6.toml")


def posterior_json(capsys, *evidence_flags):
    code, out, err = run_cli(capsys, "infer", EARTHQUAKE, *evidence_flags, "--json")
    assert code == 0, err
    return json.loads(out)


def test_repeated_evidence_flags_accumulate(capsys):
    both = posterior_json(capsys, "--evidence", "house_jumps=1", "earthquake=0")
    repeated = posterior_json(capsys, "--evidence", "house_jumps=1", "--evidence", "earthquake=0")
    assert repeated["units"] == ["truck"] and repeated["marginals"] == both["marginals"]
    assert repeated["marginals"]["truck"] > 0.99  # explained by the truck, not the earthquake


@pytest.mark.parametrize("flags", [
    ["--evidence", "house_jumps=1", "house_jumps=0"],
    ["--evidence", "house_jumps=1", "--evidence", "house_jumps=0"],
])
def test_two_values_for_one_unit_exit_2_naming_it(capsys, flags):
    code, out, err = run_cli(capsys, "infer", EARTHQUAKE, *flags)
    assert code == 2 and out == ""
    assert err.strip() == ("neurosim: error: evidence for unit 'house_jumps' given twice, as "
                           "house_jumps=1 and house_jumps=0")


def test_the_same_value_twice_is_accepted(capsys):
    once = posterior_json(capsys, "--evidence", "house_jumps=1")
    assert posterior_json(capsys, "--evidence", "house_jumps=1", "--evidence", "house_jumps=1") == once


@pytest.mark.parametrize("argv, flag, values", [
    (["infer", EARTHQUAKE, "--method", "gibbs", "--method", "exact"], "--method", "gibbs, exact"),
    (["infer", EARTHQUAKE, "--seed", "1", "--seed", "2"], "--seed", "1, 2"),
    (["sample", EARTHQUAKE, "--n", "10", "--n", "20"], "--n", "10, 20"),
    (["train", BOLTZMANN, "--rule", "cd", "--data", "x.csv", "--out", "m.toml", "--lr", "0.1", "--lr", "0.2"],
     "--lr", "0.1, 0.2"),
    (["train", BOLTZMANN, "--rule", "cd", "--rule", "pcd", "--data", "x.csv", "--out", "m.toml"],
     "--rule", "cd, pcd"),
    (["draw", EARTHQUAKE, "--out", "a.png", "--out", "b.png"], "--out", "a.png, b.png"),
    (["data", "fetch", "mnist", "--cache", "a", "--cache", "b"], "--cache", "a, b"),
])
def test_a_single_valued_flag_given_twice_with_different_values_exits_2(capsys, argv, flag, values):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].endswith(f"error: {flag} given twice ({values})")


def test_a_single_valued_flag_repeated_with_the_same_value_is_accepted(capsys):
    code, out, _ = run_cli(capsys, "infer", EARTHQUAKE, "--method", "exact", "--method", "exact", "--json")
    assert code == 0 and json.loads(out)["method"] == "exact"


@pytest.mark.parametrize("argv", [
    ["infer", EARTHQUAKE, "--method", "gibbs", "--sweeps", "10"],
    ["sample", EARTHQUAKE, "--n", "3"],
    ["train", BOLTZMANN, "--rule", "cd", "--data", "encoder-4-2-4", "--out", "never.toml"],
    ["draw", EARTHQUAKE, "--out", "never.png"],
    ["audit", "--epochs", "1"],
])
def test_a_negative_seed_exits_2_with_one_line(capsys, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv, "--seed", "-1")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("argument --seed: a seed must be a non-negative integer, got -1")
    assert list(tmp_path.iterdir()) == []


def test_json_output_is_strict_and_a_non_finite_number_is_named(capsys, monkeypatch):
    real = cli._infer_exact

    def with_nan(net, evidence):
        result = real(net, evidence)
        result["marginals"]["truck"] = float("nan")
        return result

    monkeypatch.setattr(cli, "_infer_exact", with_nan)
    code, out, err = run_cli(capsys, "infer", EARTHQUAKE, "--evidence", "house_jumps=1", "--json")
    assert code == 2 and out == ""
    assert err.strip() == "neurosim: error: --json: result['marginals']['truck'] is nan, which JSON cannot hold"


@pytest.mark.parametrize("argv", [
    ["rbm", "train", "--out", "x.npz", "--lr", "0.1", "--lr", "0.2"],
    ["rbm", "evaluate", "x.npz", "--runs", "10", "--runs", "20"],
    ["dbn", "train", "--out", "run", "--pretrain-epochs", "2", "--pretrain-epochs", "3"],
    ["dbn", "evaluate", "run", "--limit", "10", "--limit", "20"],
])
def test_the_mnist_commands_refuse_a_flag_given_twice_with_different_values(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "given twice" in capsys.readouterr().err
