"""demos/dbn_plausibility.py on a small random DBN and synthetic digits: every setting
runs, the JSON holds what the README's table and the figure show, and the settings
agree with what the engines compute alone."""

import json

import numpy as np

from helpers import load_demo
from neurosim.machines.dbn_readout import classify
from neurosim.modelfile import save
from test_dbn_network import random_dbn


def _fake_load_mnist(split="test", limit=None, **_):
    n = limit or 40
    rng = np.random.default_rng(7)
    return rng.random((n, 7)).astype(np.float32), np.arange(n) % 4


def test_demo_measures_every_setting(tmp_path, capsys, monkeypatch):
    demo = load_demo("dbn_plausibility")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    net = random_dbn((7, 5, 6, 8), 4, seed=3).to_network()
    save(net, tmp_path / "dbn.toml", format="populations")
    assert demo.main([str(tmp_path / "dbn.toml"), "--digits", "40", "--sweeps", "3", "--burn-in", "1",
                      "--training-cases", "2", "--updown-k", "2", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "dbn_plausibility.json").read_text())
    rows = {r["setting"]: r for r in result["settings"]}
    assert list(rows) == list(demo.SETTINGS) and result["digits"] == 40
    for name, row in rows.items():
        assert row["cases"] == 40 and 0 <= row["test_error"] <= 1
        if row["backend"] == "event":          # the neural read-out: binary messages only
            assert row["binary_messages_per_digit"] > 0 and row["analog_messages_per_digit"] == 0
    # a setting is the engine's own read-out with the same seed: the same labels, the same error
    alone = classify(net, *_fake_load_mnist(limit=40)[:1], "gibbs", np.random.default_rng(0), 3, 1,
                     backend="event", schedule="async", delay=0.5)
    assert rows["async delay 0.5"]["test_error"] == np.mean(alone.labels != np.arange(40) % 4)
    assert rows["async delay 0.5"]["binary_messages_per_digit"] == alone.ledger.binary / 40
    assert result["free_energy"]["method"] == "free-energy"
    assert rows["async delay 0.5"]["labels"] == alone.labels.tolist() and "vs_compiled" not in rows["compiled"]
    test = rows["async delay 0.5"]["vs_compiled"]                  # McNemar on the same digits
    y = np.arange(40) % 4
    compiled = np.array(rows["compiled"]["labels"])
    assert test["only_this_wrong"] == np.sum((alone.labels != y) & (compiled == y)) and 0 < test["p"] <= 1
    # training: up-down sends binary messages only, backprop analog only, over every synapse both ways
    training = result["training"]
    assert training["cases"] == 2 and training["updown_k"] == 2
    assert training["up-down"]["binary"] > 0 and training["up-down"]["analog"] == 0
    sizes = (7, 5, 6, 8, 4)             # v, h1, h2, top, labels: forward to every child, errors back to hidden parents
    forward = sum(a * b for a, b in zip(sizes, sizes[1:]))
    assert training["backprop"]["binary"] == 0
    assert training["backprop"]["analog"] == forward + forward - sizes[0] * sizes[1]
    assert (tmp_path / "out" / "dbn_plausibility.png").stat().st_size > 5_000


def test_an_unknown_setting_is_named(tmp_path, capsys):
    demo = load_demo("dbn_plausibility")
    try:
        demo.main(["model.toml", "--settings", "layer,sideways"])
    except SystemExit as exit:
        assert exit.code == 2
    assert "unknown setting 'sideways'" in capsys.readouterr().err


def test_settings_split_over_runs_are_drawn_together(tmp_path, capsys, monkeypatch):
    """--reuse: two runs measure half the settings each, a third draws them together;
    every setting draws from its own seeded generator, so the rows are a single run's."""
    demo = load_demo("dbn_plausibility")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    save(random_dbn((7, 5, 6, 8), 4, seed=3).to_network(), tmp_path / "dbn.toml", format="populations")
    common = [str(tmp_path / "dbn.toml"), "--digits", "20", "--sweeps", "2", "--burn-in", "1", "--training-cases", "0"]

    def run(out, *extra):
        assert demo.main([*common, "--out", str(tmp_path / out), *extra]) == 0
        return json.loads((tmp_path / out / "dbn_plausibility.json").read_text())

    whole = run("whole", "--settings", "layer,async delay 0.5")
    run("a", "--settings", "layer")
    run("b", "--settings", "async delay 0.5")
    merged = run("merged", "--settings", "layer,async delay 0.5", "--reuse", str(tmp_path / "a" / "dbn_plausibility.json"),
                 "--reuse", str(tmp_path / "b" / "dbn_plausibility.json"))
    strip = [{k: v for k, v in r.items() if k != "seconds_per_digit"} for r in whole["settings"]]
    assert [{k: v for k, v in r.items() if k != "seconds_per_digit"} for r in merged["settings"]] == strip
    with_other_seed = [*common, "--seed", "1", "--reuse", str(tmp_path / "a" / "dbn_plausibility.json"),
                       "--out", str(tmp_path / "c")]
    try:
        demo.main(with_other_seed)
        raise AssertionError("a run of another seed was reused")
    except SystemExit as exit:
        assert "its seed is 0, this run's 1" in str(exit)


def test_mcnemar_against_a_hand_count():
    """Of 30 digits, 6 only the first read-out gets wrong, 1 only the second: the exact
    two-sided binomial(7, 1/2) tail of 1 or fewer is 2 * 8/128 = 0.125."""
    demo = load_demo("dbn_plausibility")
    y = np.zeros(30, dtype=int)
    a, b = y.copy(), y.copy()
    a[:6], b[6], a[10:13], b[10:13] = 1, 1, 1, 1          # 3 digits both get wrong: not counted
    assert demo.mcnemar(a, b, y) == {"only_this_wrong": 6, "only_reference_wrong": 1, "p": 0.125}
    assert demo.mcnemar(y, y, y)["p"] == 1.0


def test_dbm_section_reads_one_digit_by_mean_field_and_by_gibbs(tmp_path, capsys, monkeypatch):
    """--dbm PATH: the JSON's numbers are dbm_event's own for the same digit and seed,
    mean-field's analog messages are its formula, Gibbs sends binary messages only, and the
    sweeps to tolerance are the first checkpoint within it; no DBN model, no figure."""
    from neurosim.machines.dbm_event import event_gibbs_means, event_mean_field
    from test_dbm import random_dbm

    demo = load_demo("dbn_plausibility")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    dbm = random_dbm((7, 5, 4), scale=0.5, seed=2)
    dbm.save(tmp_path / "dbm.npz")            # a run directory: its joint stage's dbm.npz
    assert demo.main(["--dbm", str(tmp_path), "--dbm-sweeps", "300", "--burn-in", "5",
                      "--dbm-tolerance", "0.05", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "dbn_plausibility.json").read_text())["dbm"]
    assert not (tmp_path / "out" / "dbn_plausibility.png").exists() and result["layers"] == [7, 5, 4]
    rng = np.random.default_rng(0)
    v = (rng.random(7) < _fake_load_mnist(limit=1)[0][0]).astype(int)
    net = dbm.to_network()
    mf = event_mean_field(net, v, 1000)
    assert result["mean_field"]["passes"] == mf.steps and result["mean_field"]["converged"]
    assert result["mean_field"]["analog_messages"] == mf.ledger.analog == (mf.steps + 1) * (5 * (7 + 4) + 4 * 5)
    runs = event_gibbs_means(net, v, [10, 20, 50, 100, 200, 300], rng, burn_in=5)
    rows = result["gibbs"]["checkpoints"]
    assert [r["sweeps"] for r in rows] == [10, 20, 50, 100, 200, 300]
    assert [r["binary_messages"] for r in rows] == [r.ledger.binary for r in runs]
    assert all(r["analog_messages"] == 0 for r in rows)
    assert rows[-1]["mean_abs_diff"][-1] == float(np.abs(runs[-1].means[-1] - mf.means[-1]).mean())
    first = next(r for r in rows if r["mean_abs_diff"][-1] <= 0.05)
    assert (result["sweeps_to_tolerance"], result["binary_messages_to_tolerance"]) == (first["sweeps"],
                                                                                     first["binary_messages"])
    assert "mean-field converged" in capsys.readouterr().err


def test_dbm_quick_trains_its_own_and_nothing_is_refused_silently(tmp_path, capsys, monkeypatch):
    demo = load_demo("dbn_plausibility")
    monkeypatch.setattr(demo, "load_mnist", _fake_load_mnist)
    assert demo.main(["--dbm", "quick", "--dbm-sweeps", "15", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "dbn_plausibility.json").read_text())["dbm"]
    assert result["layers"] == [7, 100, 200] and [r["sweeps"] for r in result["gibbs"]["checkpoints"]] == [10, 15]
    for argv, message in ((["--out", str(tmp_path)], "give a DBN model, --dbm, or both"),
                          (["--dbm", "quick", "--dbm-sweeps", "0"], "--dbm-sweeps must be >= 1")):
        try:
            demo.main(argv)
            raise AssertionError(f"{argv} ran")
        except SystemExit as exit:
            assert exit.code == 2
        assert message in capsys.readouterr().err
