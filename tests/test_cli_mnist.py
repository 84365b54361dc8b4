"""`neurosim rbm|dbn train|evaluate` on synthetic MNIST-shaped IDX files (never the network)."""

import json

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.data import mnist
from test_mnist_data import idx_bytes, use_hashes, write


@pytest.fixture
def fake_mnist(monkeypatch, tmp_path):
    """200 training and 100 test 'digits': a class-specific block of pixels, plus noise."""
    _fake_mnist(monkeypatch, tmp_path, 255)


@pytest.fixture
def gray_mnist(monkeypatch, tmp_path):
    """As ``fake_mnist`` with the block's pixels at intensity 200 (stochastically on 78%
    of the time, always on when thresholded) and the noise at 100 (on 39%; never)."""
    _fake_mnist(monkeypatch, tmp_path, 200, 100)


def _fake_mnist(monkeypatch, tmp_path, on: int, noise: int = 255) -> None:
    rng = np.random.default_rng(0)
    files = {}
    for split, (images, labels), n in (("train", mnist.MNIST_FILES["train"], 200),
                                       ("test", mnist.MNIST_FILES["test"], 100)):
        y = np.arange(n) % 10
        pixels = (rng.random((n, 28, 28)) < 0.05) * noise
        for i, label in enumerate(y):
            pixels[i, 2 * label:2 * label + 6, 4:24] = on
        files[images], files[labels] = idx_bytes(pixels), idx_bytes(y)
    use_hashes(monkeypatch, files)
    monkeypatch.setattr(mnist, "_VERIFIED", set())
    monkeypatch.setenv("NEUROSIM_DATA", str(write(tmp_path / "src", files)))
    monkeypatch.setenv("NEUROSIM_CACHE", str(tmp_path / "cache"))


def test_train_then_evaluate(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["dbn", "train", "--hidden", "30,30,60", "--pretrain-epochs", "40", "--updown-epochs", "2",
            "--backprop-epochs", "30", "--out", str(out)]
    assert main(argv) == 0
    assert (out / "checkpoint.npz").exists() and not (out / "LOCK").exists()
    assert json.loads((out / "command.json").read_text())["recipe"]["hidden"] == [30, 30, 60]
    capsys.readouterr()
    assert main(["dbn", "evaluate", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["finished"] and r["reached"] == "done" and r["test_cases"] == 100
    assert r["test_error_generative"] < 0.2 and r["test_error_backprop"] < 0.2   # chance: 0.9
    assert r["backprop_from"] == "greedy"
    assert set(r["seconds"]) == {"rbm1", "rbm2", "top", "updown", "backprop"}
    # a second train into the same directory must ask for --resume; --resume of a finished run is a no-op
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0


def test_validation_held_out_and_in_the_curves_and_anneal_and_cd_in_the_recipe(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["dbn", "train", "--hidden", "20,20,30", "--pretrain-epochs", "2", "--updown-epochs", "1",
            "--backprop-epochs", "1", "--validation", "50", "--backprop-anneal", "1", "--updown-anneal", "0",
            "--backprop-cg", "2", "--updown-cd", "0:2,1:3", "--out", str(out)]
    assert main(argv) == 0
    recipe = json.loads((out / "command.json").read_text())["recipe"]
    assert (recipe["validation"], recipe["backprop_anneal"], recipe["updown_anneal"]) == (50, 1, 0)
    assert recipe["updown_cd"] == [[0, 2], [1, 3]]
    assert (recipe["backprop_line_searches"], recipe["backprop_batch"]) == (2, 1000)  # backpropclassify.m
    history = json.loads((out / "progress.json").read_text())["history"]
    assert [e["stage"] for e in history if "valid_error" in e] == ["updown", "backprop"]
    capsys.readouterr()
    too_many = ["dbn", "train", "--validation", "200", "--out", str(tmp_path / "none")]
    assert main(too_many) == 2 and "none left to train on" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_sampled_chain_labels_reach_the_top_rbm_and_up_down(fake_mnist, tmp_path, monkeypatch):
    """``--chain-labels samples``: in the recipe, and every CD chain of the top RBM (greedy
    and up-down) draws one-hot labels; the lower RBMs have no labels to draw."""
    from neurosim.compiled import bipartite
    seen = []
    statistics = bipartite.statistics
    monkeypatch.setattr(bipartite, "statistics", lambda block, data, cd, *a, **k: (
        seen.append((block.U is not None, cd.sample_labels)), statistics(block, data, cd, *a, **k))[1])
    out = tmp_path / "run"
    assert main(["dbn", "train", "--hidden", "20,20,30", "--pretrain-epochs", "1", "--updown-epochs", "1",
                 "--backprop-epochs", "0", "--chain-labels", "samples", "--out", str(out)]) == 0
    assert json.loads((out / "command.json").read_text())["recipe"]["chain_labels"] == "samples"
    assert set(seen) == {(False, False), (True, True)}


@pytest.mark.parametrize("schedule, message", [("3,6", "first-epoch:k pairs"), ("x", "first-epoch:k pairs"),
                                               ("5:3", "updown_cd"), ("0:3,0:6", "updown_cd"),
                                               ("0", "updown_cd")])
def test_bad_cd_schedules_exit_2(tmp_path, capsys, schedule, message):
    argv = ["dbn", "train", "--updown-cd", schedule, "--out", str(tmp_path / "run")]
    try:
        code = main(argv)
    except SystemExit as stop:                           # argparse's own exit on bad syntax
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_evaluate_without_a_run_exits_2(tmp_path, capsys):
    assert main(["dbn", "evaluate", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_resume_without_a_checkpoint_exits_2(fake_mnist, tmp_path, capsys):
    assert main(["dbn", "train", "--resume", "--out", str(tmp_path / "new")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_from_a_run_trains_only_the_changed_stages(fake_mnist, tmp_path, capsys):
    small = ["dbn", "train", "--hidden", "20,20,30", "--pretrain-epochs", "2", "--updown-epochs", "1",
             "--backprop-epochs", "2"]
    assert main(small + ["--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(small + ["--backprop-cg", "1", "--from", str(tmp_path / "run"), "--out", str(tmp_path / "cg")]) == 0
    err = capsys.readouterr().err
    assert "starts at backprop" in err and "(rbm1, rbm2, top, updown reused)" in err
    assert "rbm1: epoch" not in err and "backprop: epoch 2/2" in err
    assert json.loads((tmp_path / "cg" / "command.json").read_text())["recipe"]["backprop_line_searches"] == 1
    assert main(["dbn", "evaluate", str(tmp_path / "cg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_error_backprop"] is not None
    up = ["--backprop-from", "updown", "--from", str(tmp_path / "run"), "--out", str(tmp_path / "up")]
    assert main(small + up) == 0 and "starts at backprop" in capsys.readouterr().err
    assert main(["dbn", "evaluate", str(tmp_path / "up")]) == 0
    assert "(from the up-down weights)" in capsys.readouterr().out
    three = [("3" if a == "2" and small[k - 1] == "--pretrain-epochs" else a) for k, a in enumerate(small)]
    for argv, message in ((three, "pretrain_epochs differ"),
                          (small + ["--resume"], "give one of them"),
                          (small, "the same recipe as RUN")):
        argv = argv + ["--from", str(tmp_path / "run"), "--out", str(tmp_path / "bad")]
        assert main(argv) == 2 and message in capsys.readouterr().err


def test_rbm_train_then_evaluate_exact_and_ais(fake_mnist, tmp_path, capsys):
    out = tmp_path / "rbm.npz"
    assert main(["rbm", "train", "--hidden", "6", "--epochs", "5", "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["samples_per_s"] > 0 and r["train_cases"] == 200 and out.exists()
    assert r["train_minutes"] == pytest.approx(r["train_seconds"] / 60) and isinstance(r["argv"], list)
    assert main(["rbm", "evaluate", str(out), "--exact", "--ais", "--betas", "3000", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["train_minutes"] == r["train_minutes"] and e["train_argv"] == r["argv"]
    assert abs(e["logZ_ais"] - e["logZ_exact"]) < 0.1 and e["test_cases"] == 100
    by_base = e["logZ_ais_by_base_rate"]                           # --base-rate both, the default
    assert set(by_base) == {"data", "uniform"}
    assert e["logZ_ais"] == by_base[e["ais_base_rate"]] == max(by_base.values())
    assert e["logZ_floor"] < e["logZ_exact"] and e["test_logprob_upper_nats"] > e["test_logprob_nats"]
    assert abs(e["logZ_ais_reverse"] - e["logZ_exact"]) < 0.1 and e["reverse_sweeps"] == 1000
    assert e["test_logprob_lower_nats"] == pytest.approx(e["test_logprob_nats"] + e["logZ_exact"]
                                                         - e["logZ_ais_reverse"])
    assert main(["rbm", "evaluate", str(out), "--exact", "--ais", "--betas", "3000", "--base-rate", "uniform",
                 "--json"]) == 0
    u = json.loads(capsys.readouterr().out)
    assert abs(u["logZ_ais"] - u["logZ_exact"]) < 0.1 and u["ais_base_rate"] == "uniform"
    assert -784 * np.log(2) < e["test_logprob_nats"] < 0


def test_rbm_binarize_threshold_trains_and_scores_thresholded_digits(gray_mnist, tmp_path, capsys, monkeypatch):
    """--binarize threshold (PyDeep's data): training and evaluation both see pixels on
    exactly where the intensity exceeds 0.5; the seeded draws are not used."""
    from neurosim.data import load_binary_mnist, load_mnist
    from neurosim.machines import runs
    from neurosim.machines.rbm import RBM

    images = load_mnist("train")[0]
    thresholded = load_binary_mnist("train", 3, binarization="threshold")[0]
    assert np.array_equal(thresholded, (images > 0.5).astype(np.float32))
    assert not np.array_equal(thresholded, load_binary_mnist("train", 3)[0])
    seen, fit_run = [], runs.fit_run

    def recording(machine, X, *args, **kwargs):
        seen.append(X)
        return fit_run(machine, X, *args, **kwargs)

    monkeypatch.setattr(runs, "fit_run", recording)
    out = tmp_path / "t.npz"
    assert main(["rbm", "train", "--hidden", "6", "--epochs", "2", "--binarize", "threshold", "--out", str(out),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["binarization"] == "threshold"
    assert np.array_equal(seen[0], thresholded)
    assert main(["rbm", "evaluate", str(out), "--exact", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["binarization"] == "threshold"
    rbm = RBM.load(out)
    test = load_binary_mnist("test", 0, binarization="threshold")[0]
    assert e["test_logprob_nats"] == pytest.approx(rbm.exact_log_likelihood(test), abs=1e-6)
    with pytest.raises(Exception, match="binarization 'otsu'"):
        load_binary_mnist("test", 0, binarization="otsu")


def test_rbm_train_anneal_shrinks_the_last_epochs_steps(fake_mnist, tmp_path, capsys):
    """Annealing over the last of 3 epochs: the same first 2 epochs (same seed), then a
    last epoch at a rate falling from 1 to 0.1 of it (10 minibatches), which moves the
    weights about half as far."""
    from neurosim.cli_mnist import _load_rbm

    def weights(epochs: int, anneal: int) -> np.ndarray:
        out = tmp_path / f"rbm_{epochs}_{anneal}.npz"
        assert main(["rbm", "train", "--hidden", "8", "--epochs", str(epochs), "--anneal", str(anneal),
                     "--batch", "20", "--out", str(out), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["anneal"] == anneal
        return _load_rbm(out)[0]

    two = weights(2, 0)
    constant, falling = (np.abs(weights(3, a) - two).sum() for a in (0, 1))
    assert falling < 0.75 * constant


def test_rbm_evaluate_warns_when_ais_falls_below_the_floor(fake_mnist, tmp_path, capsys, monkeypatch):
    from neurosim.machines import ais

    out = tmp_path / "rbm.npz"
    assert main(["rbm", "train", "--hidden", "6", "--epochs", "2", "--out", str(out)]) == 0
    missed = ais.AISResult(-1e3, 0.0, np.zeros(2))                 # an AIS run that missed every mode
    monkeypatch.setattr(ais, "ais_log_partition", lambda *a, **k: missed)
    capsys.readouterr()
    assert main(["rbm", "evaluate", str(out), "--floor-steps", "50", "--json"]) == 0
    captured = capsys.readouterr()
    r = json.loads(captured.out)
    assert r["logZ_ais"] < r["logZ_floor"] and "below" in captured.err and "rbm.npz" in captured.err


def test_rbm_exact_on_a_large_rbm_exits_2(fake_mnist, tmp_path, capsys):
    out = tmp_path / "big.npz"
    assert main(["rbm", "train", "--hidden", "25", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["rbm", "evaluate", str(out), "--exact"]) == 2
    assert "use --ais" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["rbm", "dbn"])
def test_unreadable_files_are_named(tmp_path, capsys, command):
    bad = tmp_path / "checkpoint.npz"
    bad.write_text("not an npz file")
    target = str(bad) if command == "rbm" else str(tmp_path)
    assert main([command, "evaluate", target]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not a readable" in err and len(err.strip().splitlines()) == 1
    np.savez(bad, x=np.zeros(2))
    assert main([command, "evaluate", target]) == 2
    assert str(bad) in capsys.readouterr().err


# -- autoencoder ---------------------------------------------------------------------------------
AE_TRAIN = ["autoencoder", "train", "--layers", "20,10,4", "--pretrain-epochs", "2", "--backprop-epochs", "2"]


def test_autoencoder_train_then_evaluate_with_its_baselines(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(AE_TRAIN + ["--out", str(out)]) == 0
    assert json.loads((out / "command.json").read_text())["recipe"]["layers"] == [20, 10, 4]
    capsys.readouterr()
    assert main(["autoencoder", "evaluate", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["test_cases"] == 100 and r["layers"] == [20, 10, 4]
    assert set(r["stage_seconds"]) == {"rbm1", "rbm2", "rbm3", "backprop", "logistic_pca"}
    assert r["seconds"] == pytest.approx(sum(r["stage_seconds"].values()))
    errors = [r[k] for k in ("test_squared_error", "logistic_pca_test_squared_error", "pca_test_squared_error")]
    assert all(0 < e < 784 for e in errors)
    assert r["train_cases"] == 200 and r["knn_k"] == 1
    assert 0 <= r["knn_test_error"] < 0.5 and 0 <= r["pca_knn_test_error"] < 0.5      # chance: 0.9
    assert r["recipe"]["backprop_epochs"] == 2 and "curves" not in r
    assert main(["autoencoder", "evaluate", str(out), "--json", "--curves"]) == 0
    curves = json.loads(capsys.readouterr().out)["curves"]
    assert [(c["stage"], c["epoch"]) for c in curves] == [(s, e) for s in ("rbm1", "rbm2", "rbm3", "backprop",
                                                                           "logistic_pca") for e in (1, 2)]
    assert all(c["squared_error"] > 0 and c["seconds"] >= 0 for c in curves)
    assert main(AE_TRAIN + ["--out", str(out)]) == 2 and "--resume" in capsys.readouterr().err
    assert main(AE_TRAIN + ["--out", str(out), "--resume"]) == 0          # finished: a no-op
    assert main(AE_TRAIN[:3] + ["20,10,5", "--out", str(out), "--resume"]) == 2
    assert "layers=(20, 10, 4) where this one has (20, 10, 5)" in capsys.readouterr().err


@pytest.mark.parametrize("layers, message", [("20,0", "the code layer (the last) must be a positive integer"),
                                             ("-3,4", "hidden layer 1 must be a positive integer"),
                                             ("20,x", "integers separated by commas")])
def test_autoencoder_bad_layer_sizes_exit_2(fake_mnist, tmp_path, capsys, layers, message):
    try:
        code = main(["autoencoder", "train", f"--layers={layers}", "--out", str(tmp_path / "run")])
    except SystemExit as exc:                                            # argparse's own error
        code = exc.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_autoencoder_evaluate_votes_among_the_training_digits_the_run_was_trained_on(fake_mnist, tmp_path, capsys):
    """--limit 50: the neighbours are the first 50 training digits, 0 to 9 five times each.
    k = 50 is all of them, a 10-way tie every time, which goes to the nearest's class: the
    errors of k = 1. k = 51 is refused."""
    out = tmp_path / "run"
    assert main(AE_TRAIN + ["--limit", "50", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["autoencoder", "evaluate", str(out), "--k", "3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["train_cases"], r["knn_k"], r["test_cases"]) == (50, 3, 100)

    def knn(k):
        assert main(["autoencoder", "evaluate", str(out), "--k", k, "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        return r["knn_test_error"], r["pca_knn_test_error"]

    assert knn("50") == knn("1")
    assert main(["autoencoder", "evaluate", str(out), "--k", "50"]) == 0
    assert "50-nearest-neighbour test error of the codes" in capsys.readouterr().out
    assert main(["autoencoder", "evaluate", str(out), "--k", "51"]) == 2
    assert "k = 51 nearest neighbours, but there are only 50 training codes" in capsys.readouterr().err


def test_autoencoder_evaluate_of_a_half_written_run_names_the_missing_stage(fake_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["autoencoder", "train", "--layers", "8,3", "--pretrain-epochs", "1", "--backprop-epochs", "0",
                 "--out", str(out)]) == 0
    from neurosim.machines.autoencoder import load_run
    from neurosim.machines.dbn_train import write_checkpoint
    from neurosim.machines.base import read_npz_meta

    d, meta = read_npz_meta(out / "checkpoint.npz", "checkpoint")
    d = {k: v for k, v in d.items() if not k.startswith("pca.")}
    meta["progress"]["stage"] = 4                                       # back to before the PCA stage
    write_checkpoint(out, d, meta)
    assert load_run(out).reached == "pca, epoch 0 of 0"
    capsys.readouterr()
    assert main(["autoencoder", "evaluate", str(out), "--json"]) == 2
    assert "stage pca is missing" in capsys.readouterr().err
    assert main(["autoencoder", "evaluate", str(tmp_path / "none")]) == 2
    assert "no checkpoint.npz" in capsys.readouterr().err
