"""The neurosim command: the issue's numbers, JSON shapes, exit code 2 on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neurosim.cli import main

ROOT = Path(__file__).resolve().parents[1]
EARTHQUAKE = str(ROOT / "models" / "earthquake_truck.toml")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_infer_exact_gives_the_papers_numbers(capsys):
    code, out, _ = run(capsys, "infer", EARTHQUAKE, "--evidence", "house_jumps=1", "--method", "exact", "--json")
    r = json.loads(out)
    assert code == 0 and r["method"] == "exact" and r["units"] == ["earthquake", "truck"]
    assert f"{r['marginals']['earthquake']:.4f}" == f"{r['marginals']['truck']:.4f}" == "0.5000"
    assert f"{r['joint']['01'] + r['joint']['10']:.5f}" == "0.99991"
    assert f"{r['joint']['11']:.3g}" == f"{r['joint']['00']:.3g}" == "4.54e-05"
    assert r["messages"] == {"binary": 0, "analog": 0} and r["updates"] == 0


@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
def test_infer_gibbs_json(capsys, schedule):
    model = ROOT / "models" / "boltzmann_6.toml"
    code, out, _ = run(capsys, "infer", model, "--evidence", "v1=1", "--method", "gibbs",
                       "--schedule", schedule, "--sweeps", 500, "--burn-in", 10, "--seed", 3, "--json")
    r = json.loads(out)
    assert code == 0 and r["units"] == ["v2", "v3", "h1", "h2", "h3"]
    assert sum(r["joint"].values()) == pytest.approx(1.0)
    assert all(len(bits) == 5 for bits in r["joint"])
    assert r["messages"]["binary"] > 0 and r["messages"]["analog"] == 0
    assert r["updates"] == pytest.approx(5 * 510, rel=0.1)


def test_infer_gibbs_on_a_belief_net_sends_analog_messages(capsys):
    code, out, _ = run(capsys, "infer", ROOT / "models" / "sigmoid_belief_net.toml", "--evidence",
                       "v1=1", "--method", "gibbs", "--sweeps", 200, "--json")
    assert json.loads(out)["messages"]["analog"] > 0


def test_sample_json(capsys):
    code, out, _ = run(capsys, "sample", ROOT / "models" / "sigmoid_belief_net.toml", "--n", 300, "--json")
    r = json.loads(out)
    assert r["schedule"] == "ancestral" and len(r["units"]) == 9 and sum(r["counts"].values()) == 300
    code, out, _ = run(capsys, "sample", ROOT / "models" / "boltzmann_6.toml", "--n", 100, "--json")
    assert json.loads(out)["schedule"] == "sweep"


def test_show(capsys):
    code, out, _ = run(capsys, "show", EARTHQUAKE)
    assert code == 0 and "sigmoid belief net" in out and "house_jumps" in out and "<- earthquake" in out


def test_text_output(capsys):
    code, out, _ = run(capsys, "infer", EARTHQUAKE, "--evidence", "house_jumps=1")
    assert "P(earthquake=1) = 0.5" in out and "01  0.49995" in out


@pytest.mark.parametrize("argv, message", [
    (["infer", EARTHQUAKE, "--evidence", "house=1"], "evidence on unknown unit 'house'"),
    (["infer", EARTHQUAKE, "--evidence", "house_jumps=2"], "write NAME=0 or NAME=1"),
    (["infer", "missing.toml"], "missing.toml: cannot read model file"),
    (["sample", EARTHQUAKE, "--schedule", "ancestral", "--n", "3"], None),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    if message is None:
        assert code == 0
        return
    assert code == 2 and err.startswith("neurosim: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_malformed_model_file_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[unit]]\nname = "a"\n[[edge]]\nfrom = "a"\nto = "b"\nweight = 1.0\n')
    code, _, err = run(capsys, "show", bad)
    assert code == 2 and f"{bad}:3: edge a -> b: unknown unit 'b'" in err


def test_layer_warning_reaches_stderr(capsys):
    code, _, err = run(capsys, "infer", EARTHQUAKE, "--evidence", "house_jumps=1", "--method", "gibbs",
                       "--schedule", "layer", "--sweeps", 10)
    assert code == 0 and "neurosim: warning: layer schedule updates 'earthquake' and 'truck'" in err


def test_console_entry_points():
    for cmd in ([sys.executable, "-m", "neurosim"], ):
        r = subprocess.run(cmd + ["infer", EARTHQUAKE, "--evidence", "house_jumps=1", "--json"],
                           capture_output=True, text=True, check=False)
        assert r.returncode == 0 and json.loads(r.stdout)["marginals"]["truck"] == pytest.approx(0.5)
    r = subprocess.run([sys.executable, "-m", "neurosim", "infer", EARTHQUAKE, "--sweeps", "0"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "must be a positive integer" in r.stderr
