"""Deep belief nets: greedy stacking, generative classification, generation, up-down,
backprop, and training that survives Ctrl-C and kill -9 with nothing lost."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurosim.errors import NeurosimError, ParameterError
from neurosim.machines.dbn import DeepBeliefNet
from neurosim.machines.backprop import (backprop_cg_step, backprop_gradient, backprop_net, backprop_predict,
                                        backprop_step)
from neurosim.machines.dbn_train import (LockError, Recipe, Trainer, annealed, changed_settings, implied_settings,
                                         load_run)
from neurosim.machines.dbn_readout import classify
from helpers import kl_bound

K, D = 4, 36
PROTOS = (np.random.default_rng(0).random((K, D)) < 0.3).astype(np.float32)


def digits(n, seed, flip=0.12):
    """Four noisy prototypes: a labelled data set a small DBN can learn in a second."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    return np.abs(PROTOS[y] - (rng.random((n, D)) < flip)).astype(np.float32), y


def recipe(**kw):
    base = dict(hidden=(24, 24, 40), n_labels=K, batch_size=20, pretrain_epochs=8, updown_epochs=4,
                backprop_epochs=6, backprop_line_searches=0, backprop_batch=100,   # SGD unless asked
                updown_cd=((0, 3), (2, 6)), backprop_top_only=2, seed=3)
    return Recipe(**{**base, **kw})


def quiet(msg):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    X, y = digits(2000, 1)
    tr = Trainer(recipe(), X, y, tmp_path_factory.mktemp("dbn"), log=quiet)
    return tr, tr.run()


def test_generative_classification_beats_chance_by_far(trained):
    """Four prototypes with 12% of pixels flipped (chance: 75% errors). Free-energy,
    Gibbs and backprop classification all under 5%."""
    tr, dbn = trained
    Xt, yt = digits(1000, 2)
    assert (dbn.predict(Xt) != yt).mean() < 0.05
    assert (classify(dbn.to_network(), Xt, "gibbs", np.random.default_rng(0)).labels != yt).mean() < 0.05
    assert (backprop_predict(tr.p, Xt) != yt).mean() < 0.05


def test_free_energy_classification_is_exact():
    """-F(pen, y) equals log sum_h exp(-E(pen, y, h)), enumerating the 2^6 hidden
    states of a small top RBM."""
    rng = np.random.default_rng(0)
    small = DeepBeliefNet((5, 4, 6), 3)
    small.add_rbm(rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=4))
    small.set_top(rng.normal(size=(4, 6)), rng.normal(size=(3, 6)), rng.normal(size=4), rng.normal(size=3),
                  rng.normal(size=6))
    pen = rng.random((7, 4)).astype(np.float32)
    H = ((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(float)
    for i in range(7):
        logp = [np.logaddexp.reduce(pen[i] @ small.b_pen + small.b_lab[y] + H @ (small.c + pen[i] @ small.W
                                                                                   + small.U[y])) for y in range(3)]
        assert np.allclose(-small.label_free_energies(pen[i:i + 1])[0], logp, atol=1e-4)


def test_fantasies_sample_the_top_rbm_given_the_label():
    """4000 independent chains, 30 steps each, label 1 clamped: the pen states' empirical
    distribution against the exact P(pen | y) ~ exp(b_pen.pen + sum_j softplus(c_j +
    pen.W_j + U_yj)), enumerating the 8 pen states (G-test bound)."""
    rng = np.random.default_rng(0)
    small = DeepBeliefNet((5, 3, 4), 2)
    small.add_rbm(rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3))
    small.set_top(rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), rng.normal(size=3), rng.normal(size=2),
                  rng.normal(size=4))
    pen = small.fantasies(np.ones(4000, dtype=int), np.random.default_rng(1), n_steps=30)[-1]
    P = ((np.arange(8)[:, None] >> np.arange(2, -1, -1)) & 1).astype(float)
    log_p = P @ small.b_pen + np.logaddexp(0, P @ small.W + small.c + small.U[1]).sum(axis=1)
    p = np.exp(log_p - np.logaddexp.reduce(log_p))
    codes, counts = np.unique(pen.astype(int) @ (1 << np.arange(2, -1, -1)), return_counts=True)
    q = counts / len(pen)
    assert np.sum(q * np.log(q / p[codes])) < kl_bound(8, len(pen), inflation=1.0)


def test_generation_with_a_label_clamped_draws_that_class(trained):
    _, dbn = trained
    images = dbn.generate(np.repeat(np.arange(K), 5), np.random.default_rng(1), n_steps=200)
    nearest = ((images[:, None, :] - PROTOS[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (nearest == np.repeat(np.arange(K), 5)).mean() >= 0.9


def test_up_down_keeps_the_model_good(trained):
    tr, dbn = trained
    assert [h["stage"] for h in tr.progress.history].count("updown") == 4
    assert set(tr.progress.seconds) == {"rbm1", "rbm2", "top", "updown", "backprop"}


def test_same_seed_same_weights_and_ctrl_c_resume(tmp_path):
    """SIGINT mid-epoch stops at the next minibatch with a checkpoint; running again
    finishes with exactly the weights of an uninterrupted run."""
    X, y = digits(400, 4)
    whole = Trainer(recipe(), X, y, tmp_path / "whole", log=quiet).run().state_dict()

    def interrupt(tr):
        if tr.stages[tr.progress.stage] == "top" and tr.progress.epoch == 3 and tr.progress.batch == 7:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(recipe(), X, y, tmp_path / "cut", log=quiet, on_batch=interrupt).run()
    saved = json.loads((tmp_path / "cut" / "progress.json").read_text())
    assert (saved["stage"], saved["epoch"], saved["batch"]) == (2, 3, 7)
    cut = load_run(tmp_path / "cut")
    assert not cut.finished and cut.reached == "top, epoch 3 of 8"
    again = Trainer(recipe(), X, y, tmp_path / "cut", log=quiet)
    resumed = again.run().state_dict()
    assert whole.keys() == resumed.keys()
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole)
    after = [e for e in again.progress.history if e["stage"] == "top" and e["epoch"] == 4]
    assert 0 < after[0]["samples_per_s"] < 1e9 and 0 < after[0]["eta_s"] < 1e6  # timed from minibatch 7


CHILD = """
import sys, time
import numpy as np
sys.path.insert(0, {tests!r})
from test_dbn import digits, recipe, quiet
from neurosim.machines.dbn_train import Trainer
X, y = digits(400, 4)
Trainer(recipe(), X, y, {dir!r}, checkpoint_s=0.0, log=quiet, on_batch=lambda tr: time.sleep(0.002)).run()
"""


def kill_mid_epoch(child_code: str, target: Path, stage: int) -> None:
    """Run ``child_code`` (a training into ``target``, formatted with ``tests`` and
    ``dir``) in a new process and kill -9 it once its progress.json is mid-epoch in stage
    number ``stage``."""
    child = subprocess.Popen([sys.executable, "-c", child_code.format(tests=str(Path(__file__).parent),
                                                                      dir=str(target))])
    deadline, p = time.time() + 60, {}
    while time.time() < deadline:
        try:
            p = json.loads((target / "progress.json").read_text())
            if p["stage"] == stage and p["batch"] > 0:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert p.get("stage") == stage, "the child finished before it could be killed"


def test_kill_minus_nine_mid_epoch_then_resume(tmp_path):
    X, y = digits(400, 4)
    whole = Trainer(recipe(), X, y, tmp_path / "whole", log=quiet).run().state_dict()
    target = tmp_path / "killed"
    kill_mid_epoch(CHILD, target, 3)                  # mid-epoch in up-down
    assert (target / "LOCK").exists()                 # left behind by the killed process
    resumed = Trainer(recipe(), X, y, target, log=quiet).run().state_dict()
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole)


def test_up_down_eta_weighs_the_dearer_cd_k_epochs_to_come(tmp_path):
    """After the first up-down epoch at CD-1, the ETA of three more (CD-1, CD-9, CD-9) is
    the time per FLOP of that epoch times their FLOPs, not three times its time."""
    X, y = digits(400, 1)
    tr = Trainer(recipe(pretrain_epochs=1, updown_epochs=4, updown_cd=((0, 1), (2, 9)), backprop_epochs=0),
                 X, y, tmp_path, log=quiet)
    dbn = tr.run()
    first = next(e for e in tr.progress.history if e["stage"] == "updown" and e["epoch"] == 1)
    cost = dbn.up_down_flops
    assert cost(9) > 2 * cost(1)
    assert first["eta_s"] / first["seconds"] == pytest.approx((cost(1) + 2 * cost(9)) / cost(1))


def test_validation_cases_are_held_out_and_scored_every_fine_tuning_epoch(tmp_path):
    """The last ``validation`` cases never reach training (the run equals one trained on
    the rest), and each up-down and backprop epoch reports their error."""
    X, y = digits(500, 6)
    r = recipe(pretrain_epochs=2, updown_epochs=2, backprop_epochs=2, backprop_top_only=1)
    held = Trainer(replace(r, validation=100), X, y, tmp_path / "held", log=quiet)
    held_dbn = held.run().state_dict()
    rest = Trainer(r, X[:400], y[:400], tmp_path / "rest", log=quiet).run().state_dict()
    assert all(np.array_equal(held_dbn[k], rest[k]) for k in rest)
    tuned = [e for e in held.progress.history if e["stage"] in ("updown", "backprop")]
    assert len(tuned) == 4 and all(0 <= e["valid_error"] <= 1 for e in tuned)
    final = backprop_predict(held.p, X[400:])
    assert tuned[-1]["valid_error"] == pytest.approx(np.mean(final != y[400:]))
    with pytest.raises(ParameterError, match="none left to train on"):
        Trainer(replace(r, validation=500), X, y, tmp_path / "none")


def test_annealing_falls_linearly_to_a_last_small_step():
    """lr up to the first minibatch of the last ``anneal`` epochs, then linear, minibatch
    by minibatch, down to lr / (anneal n_batches) at the last; ``anneal`` 0: lr throughout."""
    rates = [annealed(0.1, e, b, 4, 10, 2) for e in range(10) for b in range(4)]
    assert rates[:33] == [0.1] * 33
    assert np.allclose(np.diff(rates[32:]), -0.1 / 8) and rates[-1] == pytest.approx(0.1 / 8)
    assert {annealed(0.1, e, b, 4, 10, 0) for e in range(10) for b in range(4)} == {0.1}
    longer = [annealed(0.1, e, b, 4, 10, 100) for e in range(10) for b in range(4)]
    assert longer[0] == 0.1 and longer == [annealed(0.1, e, b, 4, 10, 10) for e in range(10) for b in range(4)]


def test_backprop_step_follows_the_cross_entropy_gradient():
    """With no momentum, a step changes every parameter by -lr times the gradient of
    the mean cross-entropy, checked against central finite differences (float64)."""
    rng = np.random.default_rng(0)
    dbn = DeepBeliefNet((6, 5, 4, 7), 3)
    dbn.add_rbm(rng.normal(size=(6, 5)), rng.normal(size=6), rng.normal(size=5))
    dbn.add_rbm(rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=4))
    dbn.set_top(rng.normal(size=(4, 7)), rng.normal(size=(3, 7)), rng.normal(size=4), rng.normal(size=3),
                rng.normal(size=7))
    p = {k: v.astype(np.float64) for k, v in backprop_net(dbn, rng).items()}
    X, Y = rng.random((8, 6)), np.eye(3)[rng.integers(0, 3, 8)]

    def loss(q):
        a = X
        for l in range(3):
            a = 1 / (1 + np.exp(-(a @ q[f"w{l}"] + q[f"b{l}"])))
        z = a @ q["w_out"] + q["b_out"]
        return np.mean(np.logaddexp.reduce(z, axis=1) - (z * Y).sum(axis=1))

    stepped = {k: v.copy() for k, v in p.items()}
    backprop_step(stepped, {k: np.zeros_like(v) for k, v in p.items()}, X, Y, lr=1.0, momentum=0.0)
    for name, w in p.items():
        for i in zip(*(np.atleast_1d(rng.integers(0, n, 3)) for n in w.shape)):
            up, down = ({**p, name: w.copy()} for _ in range(2))
            up[name][i] += 1e-6
            down[name][i] -= 1e-6
            assert -(stepped[name][i] - w[i]) == pytest.approx((loss(up) - loss(down)) / 2e-6, rel=1e-5, abs=1e-9)


def _small_backprop_net(rng):
    dbn = DeepBeliefNet((6, 5, 4, 7), 3)
    dbn.add_rbm(rng.normal(size=(6, 5)), rng.normal(size=6), rng.normal(size=5))
    dbn.add_rbm(rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=4))
    dbn.set_top(rng.normal(size=(4, 7)), rng.normal(size=(3, 7)), rng.normal(size=4), rng.normal(size=3),
                rng.normal(size=7))
    return {k: v.astype(np.float64) for k, v in backprop_net(dbn, rng).items()}


def test_backprop_gradient_reports_the_loss_it_differentiates():
    rng = np.random.default_rng(1)
    p = _small_backprop_net(rng)
    X, labels = rng.random((8, 6)), rng.integers(0, 3, 8)
    loss, _ = backprop_gradient(p, X, np.eye(3)[labels])
    z = X
    for l in range(3):
        z = 1 / (1 + np.exp(-(z @ p[f"w{l}"] + p[f"b{l}"])))
    z = z @ p["w_out"] + p["b_out"]
    assert loss == pytest.approx(np.mean(np.logaddexp.reduce(z, axis=1) - z[np.arange(8), labels]), rel=1e-12)


def test_a_learned_case_keeps_its_small_loss_and_gradient_in_float32():
    """Right by a margin of 20 in every logit, a case's loss is 9 exp(-20) = 1.9e-8 and
    the right label's error -1.9e-8: below float32's spacing at 1, so a float32 softmax
    would give 0 for both and a gradient that no longer sums to 0 over the labels."""
    p = {"w_out": np.float32([[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]]), "b_out": np.zeros(10, np.float32)}
    X, Y = np.ones((1, 1), np.float32), np.eye(10, dtype=np.float32)[[0]]
    loss, grads = backprop_gradient(p, X, Y)
    exact = np.log1p(9 * np.exp(-20.0))
    assert loss == pytest.approx(exact, rel=1e-5)
    assert grads["b_out"].dtype == np.float32
    assert grads["b_out"][0] == pytest.approx(-exact, rel=1e-5)
    assert abs(grads["b_out"].astype(np.float64).sum()) < 1e-12


@pytest.mark.parametrize("train_lower", [True, False])
def test_cg_step_lowers_the_loss_and_trains_only_what_it_should(train_lower):
    rng = np.random.default_rng(2)
    p = _small_backprop_net(rng)
    X, Y = rng.random((30, 6)), np.eye(3)[rng.integers(0, 3, 30)]
    before = {k: v.copy() for k, v in p.items()}
    history = backprop_cg_step(p, X, Y, line_searches=3, train_lower=train_lower)
    assert len(history) == 4 and all(b < a for a, b in zip(history, history[1:]))
    assert history[-1] == pytest.approx(backprop_gradient(p, X, Y)[0], rel=1e-12)  # p was updated in place
    moved = {k for k in p if not np.array_equal(p[k], before[k])}
    assert moved == (set(p) if train_lower else {"w_out", "b_out"})


def test_cg_minimises_the_summed_cross_entropy_as_cg_classify_does(monkeypatch):
    """``CG_CLASSIFY.m`` hands ``minimize.m`` the loss summed over the minibatch, and the
    first trial step of a line search, ``1 / (1 + |grad f|^2)``, depends on that scale."""
    import neurosim.machines.backprop as bp
    rng = np.random.default_rng(4)
    p = _small_backprop_net(rng)
    X, Y = rng.random((30, 6)), np.eye(3)[rng.integers(0, 3, 30)]
    seen = {}

    def spy(fg, x, line_searches):
        seen["f"], seen["g"] = fg(x)
        return x, [seen["f"]]

    monkeypatch.setattr(bp, "minimize", spy)
    assert backprop_cg_step(p, X, Y) == [pytest.approx(backprop_gradient(p, X, Y)[0])]
    mean, grads = backprop_gradient(p, X, Y)
    assert seen["f"] == pytest.approx(30 * mean, rel=1e-12)
    assert np.allclose(seen["g"], 30 * np.concatenate([grads[k].ravel() for k in p]), rtol=1e-12, atol=0)


def test_cg_still_lowers_the_loss_of_a_learned_minibatch():
    """Digits learned to a loss of 2e-10 per case: the mean loss's first trial step
    (about 1) is 1e9 times too short to reach in 20 evaluations; the summed loss's is not."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 1000)
    Y = np.eye(10, dtype=np.float32)[labels]
    X = np.concatenate([Y, rng.random((1000, 10), dtype=np.float32)], axis=1)
    p = {"w_out": np.zeros((20, 10), np.float32), "b_out": np.zeros(10, np.float32)}
    for _ in range(5):
        history = backprop_cg_step(p, X, Y)
    assert history[-1] < 1e-9
    history = backprop_cg_step(p, X, Y)
    assert len(history) == 4 and history[-1] < history[0] / 10


def test_cg_on_the_softmax_layer_reaches_the_stationary_point():
    """A net of only the softmax layer is logistic regression: convex, so enough line
    searches find the point where its gradient vanishes (random labels keep it finite)."""
    rng = np.random.default_rng(3)
    p = {"w_out": 0.1 * rng.standard_normal((6, 3)), "b_out": np.zeros(3)}
    X, Y = rng.random((400, 6)), np.eye(3)[rng.integers(0, 3, 400)]
    history = backprop_cg_step(p, X, Y, line_searches=100)
    _, grads = backprop_gradient(p, X, Y)
    assert max(np.abs(g).max() for g in grads.values()) < 1e-6 and len(history) < 100


def _backprop_cut_and_resumed(r, X, y, tmp_path):
    """A run whole, and one stopped by Ctrl-C in backprop epoch 4, minibatch 2, then
    resumed: both trainers, finished."""
    whole = Trainer(r, X, y, tmp_path / "whole", log=quiet)
    whole.run()

    def interrupt(tr):
        if tr.stages[tr.progress.stage] == "backprop" and tr.progress.epoch == 4 and tr.progress.batch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(r, X, y, tmp_path / "cut", log=quiet, on_batch=interrupt).run()
    resumed = Trainer(r, X, y, tmp_path / "cut", log=quiet)
    resumed.run()
    return whole, resumed


def test_cg_backprop_trains_and_resumes_exactly(tmp_path):
    X, y = digits(400, 4)
    r = recipe(pretrain_epochs=2, updown_epochs=0, backprop_line_searches=2, backprop_batch=100,
               backprop_epochs=10)               # 6 left 2 of seeds 3-10 above 5% error, 10 none above 1%
    whole, resumed = _backprop_cut_and_resumed(r, X, y, tmp_path)
    assert all(np.array_equal(whole.p[k], resumed.p[k]) for k in whole.p)
    assert np.mean(whole.dbn.predict(X) != y) > 0.5            # weak features after 2 epochs...
    assert np.mean(backprop_predict(whole.p, X) != y) < 0.05   # ...that backprop makes good


def test_backprop_gives_no_eta_until_an_epoch_trains_every_layer(tmp_path):
    """Softmax-only epochs cost a small part of the others, so their rate predicts nothing."""
    lines = []
    r = recipe(pretrain_epochs=1, updown_epochs=0, backprop_epochs=4, backprop_top_only=2)
    tr = Trainer(r, *digits(200, 4), tmp_path, log=lines.append)
    tr.run()
    bp = [line for line in lines if line.startswith("backprop")]
    assert all(line.endswith("ETA after epoch 3, the first to train every layer") for line in bp[:2])
    assert all(re.search(r"ETA \d+\.\d min$", line) for line in bp[2:]) and len(bp) == 4
    etas = [e["eta_s"] for e in tr.progress.history if e["stage"] == "backprop"]
    assert etas[:2] == [None, None] and etas[3] == 0


def test_annealed_backprop_resumes_exactly(tmp_path):
    """Ctrl-C inside the annealed epochs of backprop: the resumed run's learning rates
    come from the saved progress, so it ends with the uninterrupted run's weights."""
    X, y = digits(400, 4)
    r = recipe(pretrain_epochs=1, updown_epochs=0, backprop_anneal=3)
    whole, resumed = _backprop_cut_and_resumed(r, X, y, tmp_path)
    assert all(np.array_equal(whole.p[k], resumed.p[k]) for k in whole.p)
    plain = Trainer(replace(r, backprop_anneal=0), X, y, tmp_path / "plain", log=quiet)
    plain.run()
    assert not np.array_equal(whole.p["w_out"], plain.p["w_out"])


def test_a_second_process_is_refused(tmp_path):
    X, y = digits(100, 5)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "LOCK").write_text(str(os.getppid()))  # a live process
    with pytest.raises(LockError, match="is training into this directory"):
        Trainer(recipe(), X, y, tmp_path, log=quiet).run()


def test_resuming_with_another_recipe_is_refused(tmp_path):
    X, y = digits(100, 5)
    Trainer(recipe(pretrain_epochs=1, updown_epochs=0, backprop_epochs=0), X, y, tmp_path, log=quiet).run()
    with pytest.raises(NeurosimError, match="another recipe"):
        Trainer(recipe(pretrain_epochs=2), X, y, tmp_path, log=quiet).run()


@pytest.mark.parametrize("kw, match", [(dict(hidden=(5,)), "hidden"), (dict(batch_size=0), "batch_size"),
                                       (dict(pretrain_epochs=1.5), "pretrain_epochs must be an integer"),
                                       (dict(next_layer_on="means"), "next_layer_on"),
                                       (dict(chain_labels="argmax"), "chain_labels"),
                                       (dict(updown_epochs=-1), "updown_epochs"),
                                       (dict(validation=-1), "validation"),
                                       (dict(backprop_anneal=-2), "backprop_anneal"),
                                       (dict(backprop_line_searches=-1), "backprop_line_searches"),
                                       (dict(updown_cd=()), "updown_cd"),
                                       (dict(updown_cd=((5, 3),)), "updown_cd"),
                                       (dict(updown_cd=((0, 3), (0, 6))), "updown_cd"),
                                       (dict(updown_cd=((0, 3), (100, 0))), "updown_cd"),
                                       (dict(updown_cd=((0, 3, 1),)), "updown_cd")])
def test_bad_recipes_are_named(kw, match):
    with pytest.raises(ParameterError, match=match):
        recipe(**kw)


@pytest.mark.parametrize("cg, batch, expected", [(None, None, None), (3, None, 1000), (0, None, 100),
                                                 (3, 500, 500), (None, 50, 50)])
def test_the_backprop_minibatch_follows_the_optimiser_named(cg, batch, expected):
    """--backprop-cg N implies backpropclassify.m's 1000 cases for conjugate gradient, 100 for SGD."""
    given = {"seed": 1, "backprop_line_searches": cg, "backprop_batch": batch}
    implied = implied_settings(given)
    assert implied["backprop_batch"] == expected and list(implied) == list(given)
    assert implied_settings({"backprop_line_searches": 0}) == {"backprop_line_searches": 0, "backprop_batch": 100}
    assert implied_settings({}) == {}


def test_unused_cd_entries_are_those_at_or_after_the_last_updown_epoch():
    r = recipe(updown_epochs=4, updown_cd=((0, 3), (3, 5), (4, 6), (9, 7)))
    assert r.unused_cd() == ((4, 6), (9, 7)) and r.cd_k(3) == 5
    assert recipe(updown_epochs=5, updown_cd=((0, 3), (4, 6))).unused_cd() == ()
    assert recipe(updown_epochs=0, updown_cd=((0, 3), (4, 6))).unused_cd() == ()      # no up-down at all


def test_changed_settings_compares_a_recipe_or_some_settings_in_their_order():
    old = recipe()
    new = replace(old, seed=9, hidden=(24, 24, 41))
    assert changed_settings(old, new) == ["hidden", "seed"] and changed_settings(old, old) == []
    assert changed_settings(old, {"seed": 9, "batch_size": 20, "hidden": (24, 24, 41)}) == ["seed", "hidden"]
    assert changed_settings(old, {"updown_cd": ((5, 3),)}) == ["updown_cd"]       # compared, not validated


def test_bad_labels_are_named(tmp_path):
    X, y = digits(10, 0)
    with pytest.raises(ParameterError, match="labels"):
        Trainer(recipe(), X, y + 10, tmp_path)


def test_an_untrained_dbn_says_so():
    with pytest.raises(ParameterError, match="train it first"):
        DeepBeliefNet((4, 3, 2), 2).predict(np.zeros((1, 4)))


# -- the greedy variational bound --------------------------------------------------------------
from neurosim.machines.ais import exact_log_partition, log_prob  # noqa: E402
from neurosim.machines.dbn import greedy_bound  # noqa: E402


def random_rbm(rng, n_v, n_h):
    return rng.normal(0, 1, (n_v, n_h)), rng.normal(0, 1, n_v), rng.normal(0, 1, n_h)


def exact_two_layer_log_p(rbm1, rbm2, V):
    """log p(v) = log sum_h1 p_2(h1) p_1(v | h1), by enumerating h1."""
    (W1, b1, _), (W2, b2, c2) = rbm1, rbm2
    H = ((np.arange(2 ** W1.shape[1])[:, None] >> np.arange(W1.shape[1])) & 1).astype(float)
    log_p2 = log_prob(H, W2, b2, c2, exact_log_partition(W2, b2, c2))
    x = H @ W1.T + b1                                  # 2^n_h x n_v
    log_v_given_h = V @ (x - np.logaddexp(0, x)).T + (1 - V) @ (-np.logaddexp(0, x)).T
    return np.logaddexp.reduce(log_v_given_h + log_p2, axis=1)


def test_one_rbm_bound_is_its_log_likelihood_and_tied_layers_keep_it():
    rng = np.random.default_rng(0)
    W, b, c = random_rbm(rng, 6, 4)
    V = (rng.random((5, 6)) < 0.5).astype(float)
    exact = log_prob(V, W, b, c, exact_log_partition(W, b, c))
    assert np.allclose(greedy_bound([(W, b, c)], V), exact, atol=1e-10)
    assert np.allclose(greedy_bound([(W, b, c), (W.T, c, b)], V), exact, atol=1e-10)
    assert np.allclose(greedy_bound([(W, b, c), (W.T, c, b), (W, b, c)], V), exact, atol=1e-10)


def test_bound_is_below_the_exact_log_likelihood():
    rng = np.random.default_rng(1)
    V = (rng.random((8, 6)) < 0.5).astype(float)
    for _ in range(5):
        rbm1, rbm2 = random_rbm(rng, 6, 4), random_rbm(rng, 4, 5)
        assert np.all(greedy_bound([rbm1, rbm2], V) <= exact_two_layer_log_p(rbm1, rbm2, V) + 1e-10)


def test_what_a_new_layer_adds_to_the_bound_is_its_gain_in_likelihood():
    """Hinton et al. (2006), section 4: the bound changes, when RBM 2 replaces its tied
    start, by exactly how much better RBM 2 models the aggregated posterior of RBM 1:
    E_data E_Q(h1|v) [log p_2(h1) - log p_1(h1)], p_1(h1) being RBM 1's own marginal."""
    rng = np.random.default_rng(2)
    W, b, c = rbm1 = random_rbm(rng, 6, 4)
    rbm2 = random_rbm(rng, 4, 5)
    V = (rng.random((7, 6)) < 0.5).astype(float)
    H = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(float)
    P = 1 / (1 + np.exp(-(V @ W + c)))
    Q = np.exp(np.log(P) @ H.T + np.log(1 - P) @ (1 - H).T)          # Q(h1 | v), 7 x 16
    log_p1 = log_prob(H, W.T, c, b, exact_log_partition(W, b, c))     # RBM 1's marginal over h1
    log_p2 = log_prob(H, *rbm2, exact_log_partition(*rbm2))
    gain = greedy_bound([rbm1, rbm2], V) - greedy_bound([rbm1], V)
    assert np.allclose(gain, Q @ (log_p2 - log_p1), atol=1e-10)


def small_untied_dbn(rng: np.random.Generator) -> DeepBeliefNet:
    """An 8-6-5-7 DBN with 3 labels and random, untied weights."""
    dbn = DeepBeliefNet((8, 6, 5, 7), 3)
    for n_v, n_h in ((8, 6), (6, 5)):
        dbn.add_rbm(rng.normal(0, 0.5, (n_v, n_h)), rng.normal(0, 0.5, n_v), rng.normal(0, 0.5, n_h))
    dbn.set_top(rng.normal(0, 0.5, (5, 7)), rng.normal(0, 0.5, (3, 7)), rng.normal(0, 0.5, 5),
                rng.normal(0, 0.5, 3), rng.normal(0, 0.5, 7))
    return dbn


def copy_dbn(dbn: DeepBeliefNet) -> DeepBeliefNet:
    return DeepBeliefNet.from_state_dict({k: v.copy() for k, v in dbn.state_dict().items()})


def pseudo_code_gibbs(ref: DeepBeliefNet, negtop: np.ndarray, k: int, sample, sample_label=None) -> tuple:
    """Appendix B's negative phase: k steps of alternating Gibbs in the top RBM from
    ``negtop``; the last (pen states, label probabilities, top states); with
    ``sample_label``, the labels drawn from their probabilities by it."""
    from neurosim.machines.dbn import sigmoid, softmax

    for _ in range(k):
        negpen = sample(sigmoid(negtop @ ref.W.T + ref.b_pen))
        neglab = softmax(negtop @ ref.U.T + ref.b_lab)
        if sample_label is not None:
            neglab = sample_label(neglab)
        negtop = sample(sigmoid(negpen @ ref.W + neglab @ ref.U + ref.c))
    return negpen, neglab, negtop


@pytest.mark.parametrize("sample_labels", [False, True])
def test_up_down_step_is_the_published_pseudo_code(sample_labels):
    """Hinton, Osindero and Teh (2006), appendix B, written out naively with the same
    random draws in the same order, gives the same parameters as ``up_down_step``; with
    ``sample_labels``, section 6.1's one-hot label (one uniform a case, after the pen
    states) in the chain and in the label statistics."""
    from neurosim.machines.dbn import sigmoid
    from neurosim.numerics import categorical

    rng = np.random.default_rng(0)
    dbn = small_untied_dbn(rng)
    ref = copy_dbn(dbn)
    X = (rng.random((4, 8)) < 0.5).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    dbn.up_down_step(X, Y, 0.1, 2, np.random.default_rng(7), sample_labels=sample_labels)

    g, r = np.random.default_rng(7), 0.1 / 4

    def sample(p):
        return (g.random(p.shape, dtype=np.float32) < p).astype(np.float32)

    def sample_label(p):
        return np.eye(p.shape[1], dtype=np.float32)[categorical(p, g.random(len(p), dtype=np.float32))]

    wakehid = sample(sigmoid(X @ ref.R[0] + ref.r[0]))
    wakepen = sample(sigmoid(wakehid @ ref.R[1] + ref.r[1]))
    waketop = sample(sigmoid(wakepen @ ref.W + Y @ ref.U + ref.c))
    negpen, neglab, negtop = pseudo_code_gibbs(ref, waketop, 2, sample, sample_label if sample_labels else None)
    if sample_labels:
        assert (neglab.sum(axis=1) == 1).all()
    sleephid = sample(sigmoid(negpen @ ref.G[1] + ref.g[1]))
    sleepvis = sigmoid(sleephid @ ref.G[0] + ref.g[0])
    psleeppen = sigmoid(sleephid @ ref.R[1] + ref.r[1])
    psleephid = sigmoid(sleepvis @ ref.R[0] + ref.r[0])
    pvis = sigmoid(wakehid @ ref.G[0] + ref.g[0])
    phid = sigmoid(wakepen @ ref.G[1] + ref.g[1])
    expected = {
        "G0": ref.G[0] + r * wakehid.T @ (X - pvis), "g0": ref.g[0] + r * (X - pvis).sum(0),
        "G1": ref.G[1] + r * wakepen.T @ (wakehid - phid), "g1": ref.g[1] + r * (wakehid - phid).sum(0),
        "W": ref.W + r * (wakepen.T @ waketop - negpen.T @ negtop),
        "U": ref.U + r * (Y.T @ waketop - neglab.T @ negtop),
        "b_pen": ref.b_pen + r * (wakepen - negpen).sum(0), "b_lab": ref.b_lab + r * (Y - neglab).sum(0),
        "c": ref.c + r * (waketop - negtop).sum(0),
        "R1": ref.R[1] + r * sleephid.T @ (negpen - psleeppen), "r1": ref.r[1] + r * (negpen - psleeppen).sum(0),
        "R0": ref.R[0] + r * sleepvis.T @ (sleephid - psleephid), "r0": ref.r[0] + r * (sleephid - psleephid).sum(0),
    }
    got = dbn.state_dict()
    for name, value in expected.items():
        assert np.allclose(got[name], value, atol=1e-5), name


def test_persistent_chains_continue_from_the_last_negative_top_state():
    """With ``chains`` the first step is the plain step; the next step's negative phase
    continues from the top states the last one ended in, with the draws in the
    pseudo-code's order; a minibatch of another size runs plain CD and keeps the chains."""
    from neurosim.machines.dbn import sigmoid

    X = (np.random.default_rng(1).random((4, 8)) < 0.5).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    dbn, chains = small_untied_dbn(np.random.default_rng(0)), {}
    plain = copy_dbn(dbn)
    dbn.up_down_step(X, Y, 0.1, 2, np.random.default_rng(7), chains=chains)
    plain.up_down_step(X, Y, 0.1, 2, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(dbn.state_dict().values(), plain.state_dict().values()))
    previous = chains["top"].copy()
    assert previous.shape == (4, dbn.sizes[-1]) and set(np.unique(previous)) <= {0.0, 1.0}

    ref, g = copy_dbn(dbn), np.random.default_rng(8)

    def sample(p):
        return (g.random(p.shape, dtype=np.float32) < p).astype(np.float32)

    wakepen = sample(sigmoid(sample(sigmoid(X @ ref.R[0] + ref.r[0])) @ ref.R[1] + ref.r[1]))
    waketop = sample(sigmoid(wakepen @ ref.W + Y @ ref.U + ref.c))
    negpen, _, negtop = pseudo_code_gibbs(ref, previous, 2, sample)
    dbn.up_down_step(X, Y, 0.1, 2, np.random.default_rng(8), chains=chains)
    assert np.array_equal(chains["top"], negtop)
    assert np.allclose(dbn.W, ref.W + 0.1 / 4 * (wakepen.T @ waketop - negpen.T @ negtop), atol=1e-5)

    kept = chains["top"].copy()
    dbn.up_down_step(X[:3], Y[:3], 0.1, 2, np.random.default_rng(9), chains=chains)
    assert np.array_equal(chains["top"], kept)


def test_up_down_momentum_and_weight_decay_smooth_the_plain_changes():
    """With a velocity, two steps give ``v = momentum v + change - lr decay w`` (weights
    only) and ``w += v``, where ``change`` is what the plain step (the pseudo-code) does
    from the same parameters with the same draws."""
    lr, momentum, decay = 0.1, 0.8, 0.01
    X = (np.random.default_rng(1).random((4, 8)) < 0.5).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    dbn, velocity = small_untied_dbn(np.random.default_rng(0)), {}
    previous_v = None
    for seed in (7, 8):
        before = copy_dbn(dbn).state_dict()
        plain = copy_dbn(dbn)
        plain.up_down_step(X, Y, lr, 2, np.random.default_rng(seed))
        dbn.up_down_step(X, Y, lr, 2, np.random.default_rng(seed), momentum, decay, velocity)
        got, changed = dbn.state_dict(), plain.state_dict()
        for name in velocity:
            v = changed[name] - before[name] - (lr * decay * before[name] if name[0] in "GRWU" else 0)
            if previous_v is not None:
                v = v + momentum * previous_v[name]
            assert np.allclose(got[name], before[name] + v, atol=1e-6), name
        assert set(velocity) == set(before) - {"sizes", "n_labels"}
        previous_v = {k: got[k] - before[k] for k in velocity}
    with pytest.raises(ParameterError, match="velocity"):
        dbn.up_down_step(X, Y, lr, 2, np.random.default_rng(9), momentum)


def test_greedy_bound_demo_stays_below_the_ceiling():
    """Every bound is below the mean log-likelihood, which is below -H(data) (Gibbs'
    inequality): a bound above the ceiling would be a bug."""
    from helpers import load_demo

    bounds, entropy = load_demo("greedy_bound").stack(3, 8, seed=0)
    assert len(bounds) == 3 and all(np.isfinite(bounds))
    assert max(bounds) < -entropy


def test_directed_lr_scales_only_the_directed_layers():
    """``directed_lr`` equal to ``lr`` is the one-rate step bit for bit; at 0 the directed
    layers keep their weights (weight cost included) and the top RBM learns as before;
    at twice ``lr`` (no momentum, no weight cost) their change doubles."""
    X = (np.random.default_rng(1).random((4, 8)) < 0.5).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    start = small_untied_dbn(np.random.default_rng(0))
    runs = {}
    for directed_lr in (None, 0.1, 0.0, 0.2):
        dbn = copy_dbn(start)
        dbn.up_down_step(X, Y, 0.1, 2, np.random.default_rng(7), momentum=0.5, weight_decay=0.01,
                         velocity={}, directed_lr=directed_lr)
        runs[directed_lr] = dbn.state_dict()
    directed = [n for n in runs[None] if n[0] in "GgRr"]
    top = ["W", "U", "b_pen", "b_lab", "c"]
    assert all(np.array_equal(runs[None][n], runs[0.1][n]) for n in runs[None])
    assert all(np.array_equal(runs[0.0][n], start.state_dict()[n]) for n in directed)
    assert all(np.array_equal(runs[0.0][n], runs[0.1][n]) for n in top)
    assert not all(np.array_equal(runs[0.1][n], start.state_dict()[n]) for n in directed)

    one, two = copy_dbn(start), copy_dbn(start)
    one.up_down_step(X, Y, 0.1, 2, np.random.default_rng(7))
    two.up_down_step(X, Y, 0.1, 2, np.random.default_rng(7), directed_lr=0.2)
    s0, s1, s2 = start.state_dict(), one.state_dict(), two.state_dict()
    for n in directed:
        assert np.allclose(s2[n] - s0[n], 2 * (s1[n] - s0[n]), atol=1e-6), n


def test_trend_eta_extends_the_recent_epochs_line():
    """Constant epochs: remaining times the epoch; a linear rise: the exact sum of the
    line's next values; a fall: held at the window's mean, never extrapolated below it."""
    from neurosim.machines.dbn_train import trend_eta

    assert trend_eta([10.0, 10.0, 10.0], 4) == pytest.approx(40.0)
    assert trend_eta([30.0, 32.0, 34.0, 36.0], 3) == pytest.approx(38 + 40 + 42)
    assert trend_eta([1.0, 2.0] + [30.0, 32.0, 34.0, 36.0], 3, window=4) == pytest.approx(38 + 40 + 42)
    assert trend_eta([50.0, 40.0, 30.0], 2) == pytest.approx(80.0)
    assert trend_eta([7.0], 5) == pytest.approx(35.0) and trend_eta([7.0, 9.0], 0) == 0.0
