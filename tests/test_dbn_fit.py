"""DeepBeliefNet.fit: the estimator's way into the DBN trainer. It runs the one staged
loop (dbn_train.Trainer), so it gives `neurosim dbn train`'s weights bit for bit, and
resumes a run directory as the trainer does."""

import os
import signal
from dataclasses import replace

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.data import load_mnist
from neurosim.errors import NeurosimError, ParameterError
from neurosim.machines.dbn import DeepBeliefNet
from neurosim.machines.dbn_train import Trainer, load_run
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)
from test_dbn import digits, quiet, recipe

REDUCED = dict(pretrain_epochs=1, updown_epochs=2, updown_anneal=1, backprop_epochs=1, backprop_batch=100)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_fit_gives_the_weights_of_dbn_train(fake_mnist, tmp_path, monkeypatch):
    """784-20-20-40 on 200 fake digits, every stage of a reduced hinton2006 (conjugate-
    gradient backprop included): the CLI's run and fit agree to the bit, and fit's
    temporary run directory is gone afterwards."""
    argv = ["dbn", "train", "--hidden", "20,20,40", "--pretrain-epochs", "1", "--updown-epochs", "2",
            "--updown-anneal", "1", "--backprop-epochs", "1", "--backprop-batch", "100", "--seed", "5",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    cli = load_run(tmp_path / "run")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    X, y = load_mnist("train")
    dbn = DeepBeliefNet((784, 20, 20, 40), 10).fit(X, y, "hinton2006", random_state=5, **REDUCED)
    assert _same(dbn.state_dict(), cli.dbn.state_dict()) and _same(dbn.backprop_, cli.backprop)
    assert list((tmp_path / "scratch").iterdir()) == []
    assert set(dbn.progress_.seconds) == {"rbm1", "rbm2", "top", "updown", "backprop"}


def test_fit_with_a_recipe_is_the_trainer_and_resumes_its_directory(tmp_path):
    """A Recipe (SGD backprop) gives the Trainer's weights; a run the trainer left at
    Ctrl-C in the top RBM, continued by fit(checkpoint=DIR), ends with the same weights."""
    X, y = digits(400, 4)
    r = recipe()
    whole = Trainer(r, X, y, tmp_path / "whole", log=quiet)
    whole.run()
    fitted = DeepBeliefNet((36,) + r.hidden, 4).fit(X, y, replace(r, hidden=(9, 9, 9), n_labels=7))
    assert _same(fitted.state_dict(), whole.dbn.state_dict()) and _same(fitted.backprop_, whole.p)

    def interrupt(tr):
        if tr.stages[tr.progress.stage] == "top" and (tr.progress.epoch, tr.progress.batch) == (3, 7):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(r, X, y, tmp_path / "cut", log=quiet, on_batch=interrupt).run()
    resumed = DeepBeliefNet((36,) + r.hidden, 4).fit(X, y, r, checkpoint=tmp_path / "cut")
    assert _same(resumed.state_dict(), whole.dbn.state_dict())
    assert load_run(tmp_path / "cut").finished
    with pytest.raises(NeurosimError, match="seed=3 where this one has 4"):
        DeepBeliefNet((36,) + r.hidden, 4).fit(X, y, r, checkpoint=tmp_path / "cut", random_state=4)


def test_fit_without_backprop_epochs_has_no_classifier():
    X, y = digits(100, 1)
    dbn = DeepBeliefNet((36, 6, 6, 8), 4).fit(X, y, recipe(), pretrain_epochs=1, updown_epochs=0,
                                              backprop_epochs=0)
    assert dbn.backprop_ is None and dbn.W.shape == (6, 8) and len(dbn.R) == 2


SAME = lambda X, y: (X, y)  # noqa: E731


@pytest.mark.parametrize("data, kw, match", [
    (SAME, dict(recipe="hinton2007"), "recipe must be a Recipe or one of hinton2006, got 'hinton2007'"),
    (SAME, dict(pretrain_epoch=3), "'pretrain_epoch' is not a setting of a Recipe"),
    (SAME, dict(hidden=(6, 6, 9)), r"hidden=\(6, 6, 9\) where this DBN has \(6, 6, 8\) \(sizes \(36, 6, 6, 8\)\)"),
    (SAME, dict(n_labels=3), "n_labels=3 where this DBN has 4"),
    (SAME, dict(random_state=np.random.default_rng(0)), "random_state must be an integer"),
    (SAME, dict(random_state=-1), "random_state must be >= 0"),
    (SAME, dict(batch_size=0), "batch_size must be >= 1"),
    (lambda X, y: (X[:, :30], y), {}, "X has 30 columns; this DBN has 36 visible units"),
    (lambda X, y: (X * 2, y), {}, r"X\[0, \d+\] = 2.0: values must lie in \[0, 1\]"),
    (lambda X, y: (X, y + 0.5), {}, r"labels must be one integer in 0..3 per row of X; got float64 of shape \(40,\)"),
    (lambda X, y: (X, y[:10]), {}, r"shape \(10,\) for 40 rows")])
def test_bad_fits_are_refused_by_name(data, kw, match):
    with pytest.raises(ParameterError, match=match):
        DeepBeliefNet((36, 6, 6, 8), 4).fit(*data(*digits(40, 0)), **{"recipe": recipe(pretrain_epochs=1), **kw})


def test_a_dbn_without_labels_cannot_be_fitted():
    X, y = digits(40, 0)
    with pytest.raises(ParameterError, match="n_labels must be >= 1, got 0"):
        DeepBeliefNet((36, 6, 6, 8), 0).fit(X, y)


def test_fit_takes_what_settings_imply_and_warns_of_unused_cd():
    """As `dbn train` does: backprop by SGD (no line searches) brings minibatches of 100,
    by conjugate gradient 1000, unless a batch is given; a CD-k entry after up-down's last
    epoch is named in a warning."""
    from neurosim.machines.dbn_train import recipe_for

    dbn = DeepBeliefNet((36, 6, 6, 8), 4)
    assert recipe_for(dbn, "hinton2006", None, {"backprop_line_searches": 0}).backprop_batch == 100
    assert recipe_for(dbn, "hinton2006", None, {"backprop_line_searches": 3}).backprop_batch == 1000
    assert recipe_for(dbn, "hinton2006", None, {"backprop_line_searches": 0, "backprop_batch": 7}).backprop_batch == 7
    X, y = digits(40, 0)
    with pytest.warns(UserWarning, match=r"updown_cd \[\(3, 6\)\]: up-down runs epochs 0 to 0"):
        dbn.fit(X, y, recipe(pretrain_epochs=1), updown_epochs=1, updown_cd=((0, 1), (3, 6)), backprop_epochs=0)
