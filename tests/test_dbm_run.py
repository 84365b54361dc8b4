"""A DBM's run on disk (neurosim/machines/dbm_run.py) and `neurosim dbm train|evaluate`:
the fine-tuning net against the DBM it starts from, exact resumption of the joint and
fine-tuning stages after Ctrl-C, and bad input named."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.errors import NeurosimError
from neurosim.machines.backprop import _features
from neurosim.machines.dbm import DeepBoltzmannMachine
from neurosim.machines.dbm_run import (DBMRecipe, DBMTrainer, augmented, check_finished, classifier_net, evaluate,
                                       reached, snapshots)
from neurosim.numerics import sigmoid
from test_cli_mnist import fake_mnist  # noqa: F401  (a fixture)

RNG = np.random.default_rng(0)
X = np.clip(RNG.random((120, 16)) * (RNG.random((120, 16)) < 0.6) + 0.4 * (np.arange(120)[:, None] % 3 == 0), 0, 1)
Y = np.arange(120) % 3
TINY = DBMRecipe(hidden=(8, 6), pretrain_epochs=3, epochs=4, chains=10, finetune_epochs=7, snapshot_every=2,
                 n_labels=3)


def _trained(tmp_path, recipe=TINY, **kw):
    DBMTrainer(recipe, X, Y, tmp_path, log=lambda msg: None, **kw).run()
    return tmp_path


def _arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "meta"}


def test_classifier_net_is_the_dbm_with_q2_as_input():
    """``backprop.m``'s net: h1 = sigmoid(v W1 + q2 W2^T + b1), h2 = sigmoid(h1 W2 + b2),
    computed by backprop's own forward pass on the augmented input."""
    dbm = DeepBoltzmannMachine((16, 8, 6), n_iter=1, pretrain_epochs=2, batch_size=20, n_chains=10,
                               random_state=0).fit(X)
    A = augmented(dbm, X)
    q2 = dbm.mean_field(X)[1]
    np.testing.assert_array_equal(A[:, 16:], q2)
    W, b = dbm.weights_, dbm.biases_
    h1 = sigmoid(X @ W[0] + q2 @ W[1].T + b[1])
    h2 = sigmoid(h1 @ W[1] + b[2])
    p = classifier_net(dbm, 3, np.random.default_rng(0))
    np.testing.assert_allclose(_features(p, A), h2, rtol=1e-5, atol=1e-6)
    assert p["w_out"].shape == (6, 3) and p["b_out"].shape == (3,)


def test_run_stages_snapshots_and_scores(tmp_path):
    d = _trained(tmp_path)
    assert reached(d) == "done" and [e for e, _ in snapshots(d)] == [2, 4]
    assert not (d / "joint.checkpoint.npz").exists() and not (d / "finetune.checkpoint.npz").exists()
    history = json.loads(str(np.load(d / "classifier.npz")["meta"]))["history"]
    assert [h["epoch"] for h in history] == list(range(1, 8))
    V = (X > 0.5).astype(np.float32)
    scores = evaluate(d, V, X, Y, V, np.random.default_rng(0), n_runs=100, n_betas=1000, reverse_sweeps=200)
    exact = DeepBoltzmannMachine.load(d / "dbm.npz")
    for key in ("logZ_ais", "logZ_ais_reverse"):
        assert abs(scores[key] - exact.log_partition()) < 0.1, key
    assert scores["test_logprob_bound_lower_nats"] == pytest.approx(
        scores["test_logprob_bound_nats"] + scores["logZ_ais"] - scores["logZ_ais_reverse"])
    assert scores["test_logprob_bound_nats"] <= float(exact.log_prob(V).mean()) + 0.1
    assert scores["test_error"] < 0.5                       # 3 classes: chance is 2/3


def _interrupt_at(marker: str):
    """A log that sends SIGINT to this process at the first message containing ``marker``."""
    sent = []

    def log(msg: str) -> None:
        if marker in msg and not sent:
            sent.append(msg)
            os.kill(os.getpid(), signal.SIGINT)
    return log


@pytest.mark.parametrize("marker", ["epoch 2/4", "fine-tuning: epoch 3/7"])
def test_ctrl_c_then_resume_gives_the_uninterrupted_run(tmp_path, marker):
    """Stopped by SIGINT in the joint stage or in fine-tuning, then run again: the same
    DBM and classifier, bit for bit, as a run never stopped."""
    whole = _trained(tmp_path / "whole")
    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        DBMTrainer(TINY, X, Y, stopped, log=_interrupt_at(marker), checkpoint_s=1e9).run()
    assert reached(stopped) == ("joint" if "fine" not in marker else "finetune")
    with pytest.raises(NeurosimError, match="stage '(joint|finetune)' is not finished"):
        check_finished(stopped)
    _trained(stopped)
    for name in ("dbm.npz", "classifier.npz", "snapshots/epoch_0004.npz"):
        a, b = _arrays(whole / name), _arrays(stopped / name)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")


def test_a_resumed_run_refuses_another_recipe(tmp_path):
    _trained(tmp_path)
    with pytest.raises(NeurosimError, match="finetune_epochs=7 where this one has 8"):
        DBMTrainer(DBMRecipe(**{**TINY.__dict__, "finetune_epochs": 8}), X, Y, tmp_path).run()


@pytest.mark.parametrize("field, value", [("hidden", (8, 0)), ("chains", 0), ("mean_field_iterations", 0),
                                          ("chains", 2.5), ("epochs", -1), ("hidden", ()),
                                          ("joint_momentum", 1.0)])
def test_bad_recipe_is_named(field, value):
    with pytest.raises(NeurosimError, match="hidden|chains|mean_field_iterations|epochs|joint_momentum"):
        DBMRecipe(**{field: value})


def test_cli_train_evaluate_and_bad_input(fake_mnist, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    assert main(["dbm", "evaluate", str(out)]) == 2
    assert "not a DBM run" in capsys.readouterr().err
    argv = ["dbm", "train", "--hidden", "20,10", "--pretrain-epochs", "5", "--epochs", "2", "--chains", "20",
            "--finetune-epochs", "40", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "command.json").read_text())["recipe"]["hidden"] == [20, 10]
    capsys.readouterr()
    assert main(["dbm", "evaluate", str(out), "--runs", "10", "--betas", "300", "--json", "--curves",
                 "--reverse-sweeps", "50",
                 "--curve-betas", "100"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("test_logprob_bound_nats", "logZ_ais", "logZ_ais_std", "test_error", "seconds",
                "logZ_ais_reverse", "test_logprob_bound_lower_nats"):
        assert np.isfinite(r[key]), key
    assert [c["epoch"] for c in r["curves"]] == [0]         # no snapshot within 2 epochs (every 10)
    assert r["test_error"] < 0.2                           # 10 classes: chance is 0.9
    assert main(argv) == 2                                  # exists: --resume or a new --out
    assert "--resume" in capsys.readouterr().err
    for flag, value in (("--chains", "0"), ("--mean-field-iterations", "0"), ("--hidden", "20,x")):
        with pytest.raises(SystemExit):
            main(["dbm", "train", flag, value, "--out", str(tmp_path / "bad")])
        assert flag in capsys.readouterr().err
