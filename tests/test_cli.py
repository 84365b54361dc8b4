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


@pytest.fixture
def rbm_file(tmp_path):
    import numpy as np

    from neurosim import save
    from neurosim.learning.audit import _rbm

    path = tmp_path / "rbm.toml"
    save(_rbm(np.random.default_rng(0)), path)
    return path


def test_train_writes_a_model_every_command_can_load(capsys, rbm_file, tmp_path):
    out = tmp_path / "trained.toml"
    code, text, _ = run(capsys, "train", rbm_file, "--rule", "cd", "--data", "encoder-4-2-4", "--epochs", 30,
                        "--lr", 0.5, "--batch", 4, "--restarts", 1, "--out", out, "--json")
    r = json.loads(text)
    assert code == 0 and r["rule"] == "cd" and r["epochs"] == 30 and r["cases"] == 120
    assert r["ledger"]["binary"] > 0 and r["ledger"]["analog"] == 0 and r["ledger"]["updates"] == 120 * (2 + 8 + 2)  # hidden, then one Gibbs step
    assert r["locality"] == {"reads": ["lr", "phase", "post", "pre"], "violations": 0}
    assert r["symmetry_drift"] == 0.0 and 0 < r["quality"]["kl_nats"] < 4.16  # 4.16: the untrained net
    assert run(capsys, "infer", out, "--evidence", "a0=1", "--json")[0] == 0


def test_train_from_csv_with_a_user_rule_module(capsys, rbm_file, tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a0,a1,a2,a3,b0,b1,b2,b3\n1,0,0,0,1,0,0,0\n0,1,0,0,0,1,0,0\n")
    module = tmp_path / "my_rules.py"
    module.write_text(
        "from neurosim.learning import HebbianContrast, register\n"
        "class Anti(HebbianContrast):\n"
        "    pass\n"
        "rule = Anti('anti-cd', 'mine')\n"
        "rule.procedure = 'cd'\n"
        "register(rule)\n")
    code, text, _ = run(capsys, "train", rbm_file, "--rule", "anti-cd", "--rule-module", module,
                        "--data", csv, "--epochs", 2, "--out", tmp_path / "t.toml", "--json")
    assert code == 0 and json.loads(text)["rule"] == "anti-cd"


@pytest.mark.parametrize("argv, message", [
    (["--rule", "oja", "--data", "encoder-4-2-4"], "unknown learning rule 'oja'"),
    (["--rule", "cd", "--data", "shifter"], "visible units missing from the data: a0"),
    (["--rule", "cd", "--data", "nowhere.csv"], "nowhere.csv"),
    (["--rule", "wake-sleep", "--data", "encoder-4-2-4"], "wake-sleep needs recognition edges"),
])
def test_train_errors(capsys, rbm_file, tmp_path, argv, message):
    code, _, err = run(capsys, "train", rbm_file, *argv, "--out", tmp_path / "t.toml")
    assert code == 2 and message in err and "Traceback" not in err


def test_audit_shows_who_sends_what(capsys):
    code, text, _ = run(capsys, "audit", "--epochs", 5, "--json")
    rows = {r["algorithm"]: r for r in json.loads(text)["rows"]}
    assert code == 0 and set(rows) == {"boltzmann", "cd", "pcd", "sbn-gibbs-delta", "wake-sleep", "up-down",
                                         "backprop"}
    for name in ("boltzmann", "cd", "pcd", "wake-sleep", "up-down"):
        assert rows[name]["messages"]["binary"] > 0 and rows[name]["messages"]["analog"] == 0
    assert rows["sbn-gibbs-delta"]["messages"]["analog"] > 0
    assert rows["backprop"]["messages"] == {"binary": 0, "analog": 24.0}
    assert all(r["violations"] == 0 for r in rows.values())
    assert "post_error" in rows["backprop"]["reads"] and "post_prob" in rows["wake-sleep"]["reads"]


def test_train_wake_sleep_on_the_shifter_reports_its_measures(capsys, tmp_path):
    code, text, _ = run(capsys, "train", ROOT / "models" / "helmholtz_shifter.toml", "--rule", "wake-sleep",
                        "--data", "shifter", "--n", 40, "--epochs", 1, "--out", tmp_path / "hs.toml", "--json")
    q = json.loads(text)["quality"]
    assert code == 0 and 0 <= q["valid_fantasy_fraction"] <= 1 and 0 <= q["shift_selectivity"] <= 1
    assert q["nll_nats"] > q["data_entropy_nats"] == pytest.approx(4.5792, abs=1e-4)
    from neurosim.machines import HelmholtzMachine
    assert HelmholtzMachine.load(tmp_path / "hs.toml").visible_names_[0] == "p00"


# -- --backend -------------------------------------------------------------------------
def test_infer_on_the_compiled_backend_explains_away(capsys):
    code, out, _ = run(capsys, "infer", EARTHQUAKE, "--evidence", "house_jumps=1", "--method", "gibbs",
                       "--backend", "compiled", "--chains", 2000, "--sweeps", 20000, "--json")
    r = json.loads(out)
    assert code == 0 and r["backend"] == "compiled" and r["samples"] == 20000
    # 2000 independent chains: standard error of a marginal <= 0.5/sqrt(2000) = 0.011
    assert r["marginals"]["earthquake"] == pytest.approx(0.5, abs=0.06)
    assert r["joint"].get("01", 0) + r["joint"].get("10", 0) > 0.99
    assert r["updates"] > 0 and r["messages"]["analog"] > 0   # Neal's relays, as in the event engine


def big_rbm(tmp_path, n_visible=60, n_hidden=10):
    lines = [f'[[unit]]\nname = "v{i}"\nrole = "visible"\nlayer = 0\n' for i in range(n_visible)]
    lines += [f'[[unit]]\nname = "h{j}"\nlayer = 1\n' for j in range(n_hidden)]
    lines += [f'[[edge]]\nfrom = "v{i}"\nto = "h{j}"\nweight = 0.1\nkind = "symmetric"\n'
              for i in range(n_visible) for j in range(n_hidden)]
    path = tmp_path / "big.toml"
    path.write_text("\n".join(lines))
    return path


def test_auto_backend_picks_compiled_above_the_documented_size(capsys, tmp_path):
    from neurosim.cli import AUTO_UNITS

    assert AUTO_UNITS == 64
    code, out, _ = run(capsys, "sample", big_rbm(tmp_path), "--n", 50, "--json")
    r = json.loads(out)
    assert code == 0 and r["backend"] == "compiled" and r["schedule"] == "block" and r["n"] == 50
    assert sum(r["counts"].values()) == 50
    code, out, _ = run(capsys, "sample", EARTHQUAKE, "--n", 50, "--json")
    assert json.loads(out)["backend"] == "event"


@pytest.mark.parametrize("argv, message", [
    (["sample", EARTHQUAKE, "--backend", "compiled", "--schedule", "async"], "--schedule async"),
    (["sample", EARTHQUAKE, "--backend", "compiled", "--delay", "0.5"], "message delays"),
])
def test_event_only_options_on_the_compiled_backend_exit_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_train_on_the_compiled_backend(capsys, tmp_path):
    out_file = tmp_path / "trained.toml"
    code, out, _ = run(capsys, "train", ROOT / "models" / "encoder_424.toml", "--rule", "boltzmann",
                       "--data", "encoder-4-2-4", "--epochs", 150, "--batch", 4, "--lr", 0.5,
                       "--restarts", 1, "--backend", "compiled", "--out", out_file, "--json")
    r = json.loads(out)
    assert code == 0 and r["backend"] == "compiled" and r["cases"] == 600
    assert r["locality"] == {"reads": ["lr", "phase", "post", "pre"], "violations": 0}
    assert r["symmetry_drift"] == 0 and r["quality"]["kl_nats"] < 2.0  # 4.1 before training
    assert run(capsys, "infer", out_file, "--json")[0] == 0


def test_sample_draws_the_visible_units_as_pictures(capsys, tmp_path):
    """`--image`: the shifter's 4 x 8 pixels (named p{row}{col}) of the first samples as
    one PNG, the pixels black where on; a net whose visible units form no picture is
    refused by name and nothing is written."""
    import matplotlib.image as mpimg

    code, out, _ = run(capsys, "sample", ROOT / "models" / "helmholtz_shifter.toml", "--n", 30, "--seed", 1,
                       "--image", tmp_path / "s.png")
    assert code == 0 and f"wrote {tmp_path / 's.png'}" in out
    picture = mpimg.imread(tmp_path / "s.png")
    assert picture.ndim == 3 and min(picture.shape[:2]) > 20
    code, _, err = run(capsys, "sample", ROOT / "models" / "encoder_424.toml", "--n", 5, "--image",
                       tmp_path / "e.png")
    assert code == 2 and "encoder_424" in err and "has 8" in err and not (tmp_path / "e.png").exists()
    code, _, err = run(capsys, "sample", EARTHQUAKE, "--image", tmp_path / "e.txt")
    assert code == 2 and f"--image {tmp_path / 'e.txt'}: write a .png file" in err


def test_tiles_place_each_picture_in_its_cell():
    import numpy as np
    from neurosim.viz import picture_shape, tiles

    images = np.arange(3 * 6).reshape(3, 6)
    grid = tiles(images, (2, 3), cols=2, pad=1, fill=-1)
    assert grid.shape == (5, 7)
    np.testing.assert_array_equal(grid[:2, :3], images[0].reshape(2, 3))
    np.testing.assert_array_equal(grid[:2, 4:], images[1].reshape(2, 3))
    np.testing.assert_array_equal(grid[3:, :3], images[2].reshape(2, 3))
    assert (grid[3:, 4:] == -1).all() and (grid[2] == -1).all()
    assert picture_shape(["p00", "p01", "p10", "p11", "p20", "p21"]) == (3, 2)
    assert picture_shape(["p00", "p11"]) is None and picture_shape(["a"] * 7) is None
