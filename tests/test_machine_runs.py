"""RBM.fit owns the training loop of `neurosim rbm train` (rbm.m's momentum schedule, annealing,
one shuffled order), and machines.runs makes any machine's fit resumable: a lock, checkpoints,
Ctrl-C, and a resumed run that ends with exactly the weights of an uninterrupted one."""

import os
import signal

import numpy as np
import pytest

from neurosim import RBM
from neurosim.cli import main
from neurosim.errors import NeurosimError
from neurosim.machines.base import Position, annealed
from neurosim.data import load_binary_mnist
from neurosim.machines.runs import LockError, check_resume, fit_run
from test_cli_mnist import fake_mnist  # noqa: F401  (the fixture)


def _old_cli_loop(X, seed, hidden, epochs, lr, anneal, batch, cd, persistent, weight_decay):
    """`neurosim rbm train`'s loop as it was before RBM.fit owned it (the reference)."""
    rng = np.random.default_rng(seed)
    rbm = RBM(n_components=hidden, learning_rate=lr, batch_size=batch, k=cd, persistent=persistent,
              momentum=0.5, weight_decay=weight_decay, random_state=rng, dtype=np.float32)
    order = rng.permutation(len(X))
    n_batches = -(-len(X) // batch)
    for epoch in range(epochs):
        rbm.set_params(momentum=0.5 if epoch < 5 else 0.9)
        for b, s in enumerate(range(0, len(X), batch)):
            if anneal:
                rbm.set_params(learning_rate=annealed(lr, epoch, b, n_batches, epochs, anneal))
            rbm.partial_fit(X[order[s:s + batch]])
    return rbm


def _cli_rbm(seed, hidden, epochs, lr, anneal, batch, cd, persistent, weight_decay):
    """The RBM `neurosim rbm train` builds from its flags."""
    return RBM(n_components=hidden, learning_rate=lr, batch_size=batch, k=cd, persistent=persistent,
               momentum=0.5, final_momentum=0.9, momentum_switch=5, anneal_epochs=anneal, n_iter=epochs,
               weight_decay=weight_decay, shuffle=True, random_state=seed, dtype=np.float32)


FLAGS = dict(seed=3, hidden=7, epochs=7, lr=0.05, anneal=2, batch=30, cd=2, weight_decay=0.0002)


@pytest.mark.parametrize("persistent", [False, True])
def test_cli_api_and_the_old_loop_give_the_same_weights(fake_mnist, tmp_path, capsys, persistent):
    """7 epochs cross the momentum switch, the last 2 anneal, 200 cases in batches of 30
    leave a short last minibatch: the CLI, RBM.fit and the loop the CLI had agree bit for bit."""
    argv = ["rbm", "train", "--hidden", "7", "--epochs", "7", "--lr", "0.05", "--anneal", "2", "--batch", "30",
            "--cd", "2", "--seed", "3", "--out", str(tmp_path / "rbm.npz")] + ["--persistent"] * persistent
    assert main(argv) == 0
    cli = RBM.load(tmp_path / "rbm.npz")
    assert not (tmp_path / "rbm.npz.checkpoint.npz").exists()
    assert capsys.readouterr().err.count("rbm: epoch ") == 7
    X = load_binary_mnist("train", 3)[0]
    api = _cli_rbm(persistent=persistent, **FLAGS).fit(X)
    old = _old_cli_loop(X, persistent=persistent, **FLAGS)
    for name in ("components_", "intercept_visible_", "intercept_hidden_"):
        assert np.array_equal(getattr(api, name), getattr(old, name))
        assert np.array_equal(getattr(cli, name), getattr(api, name))
    assert api.n_iter_ == 7 and api.n_updates_ == 7 * 7 == old.n_updates_


def test_schedule_parameters_change_the_weights_as_they_say():
    """final_momentum, anneal_epochs and shuffle each change a seeded fit; the defaults are
    scikit-learn's plain loop (the sklearn suite pins those)."""
    X = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.float64)
    base = dict(n_components=3, n_iter=4, batch_size=8, random_state=0)
    plain = RBM(**base).fit(X).components_
    for extra in (dict(momentum=0.5, final_momentum=0.9, momentum_switch=2), dict(anneal_epochs=2),
                  dict(shuffle=True)):
        assert not np.array_equal(RBM(**base, **extra).fit(X).components_, plain)
    assert np.array_equal(RBM(**base, final_momentum=None).fit(X).components_, plain)
    assert np.array_equal(RBM(**base, momentum_switch=0, final_momentum=0.0).fit(X).components_, plain)


def _data():
    return (np.random.default_rng(5).random((70, 9)) < 0.3).astype(np.float32)


def _machine():
    return RBM(5, learning_rate=0.1, batch_size=8, n_iter=4, persistent=True, momentum=0.5, final_momentum=0.9,
               momentum_switch=2, anneal_epochs=2, shuffle=True, sparsity_target=0.1, random_state=11)


@pytest.mark.parametrize("stop_at", [(0, 1), (1, 4), (2, 9)])
def test_ctrl_c_then_resume_gives_the_weights_of_an_uninterrupted_fit(tmp_path, stop_at):
    """SIGINT after minibatch k of an epoch (the last one too): a checkpoint, then
    KeyboardInterrupt; fit_run again continues to exactly RBM.fit's weights, with the
    momentum's velocity, the persistent chains and the sparsity estimate carried over."""
    X, path = _data(), tmp_path / "rbm.ckpt.npz"
    whole = _machine().fit(X)

    def interrupt(at):
        if (at.epoch, at.batch) == stop_at:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit_run(_machine(), X, path, log=lambda m: None, after_batch=interrupt)
    assert path.exists() and not (tmp_path / "rbm.ckpt.npz.lock").exists()
    resumed = _machine()
    fit_run(resumed, X, path, log=lambda m: None)
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_", "hidden_activity_"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name
    assert resumed.n_updates_ == whole.n_updates_ and resumed.n_iter_ == 4
    assert resumed.random_state_.random() == whole.random_state_.random()   # the same stream after


def test_a_checkpoint_with_other_settings_or_data_is_refused_by_name(tmp_path):
    X, path = _data(), tmp_path / "c.npz"
    with pytest.raises(KeyboardInterrupt):
        fit_run(_machine(), X, path, log=lambda m: None,
                after_batch=lambda at: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(NeurosimError, match=r"learning_rate=0.1 where this one has 0.2"):
        fit_run(_machine().set_params(learning_rate=0.2), X, path, log=lambda m: None)
    with pytest.raises(NeurosimError, match=r"70 training cases where this one has 69"):
        fit_run(_machine(), X[:69], path, log=lambda m: None)


def test_a_second_process_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    (tmp_path / "c.npz.lock").write_text(str(os.getppid()))       # a live process
    with pytest.raises(LockError, match="is training into this run"):
        fit_run(_machine(), _data(), path, log=lambda m: None)


def test_check_resume_refuses_a_new_run_over_a_checkpoint_and_a_resume_without_one(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    check_resume(checkpoint, False)
    with pytest.raises(NeurosimError, match=f"--resume: {checkpoint} does not exist: no run to continue"):
        check_resume(checkpoint, True)
    with pytest.raises(NeurosimError, match=f"--resume: {tmp_path / 'run'} holds no checkpoint to continue"):
        check_resume(checkpoint, True, tmp_path / "run")
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    check_resume(checkpoint, True)
    with pytest.raises(NeurosimError, match="holds an unfinished run: pass --resume to continue it, or remove it"):
        check_resume(checkpoint, False)
    with pytest.raises(NeurosimError, match=f"{tmp_path / 'run'} holds a checkpoint: pass --resume"):
        check_resume(checkpoint, False, tmp_path / "run")


def test_rbm_train_interrupted_then_resumed_by_the_cli(fake_mnist, tmp_path, capsys, monkeypatch):
    """Ctrl-C mid-epoch: exit 130 and a checkpoint beside --out; --resume finishes with
    the weights of an uninterrupted run. --resume without a checkpoint, a new run over one,
    and a resume with another flag (or other --binarize) each exit 2 naming the cause."""
    flags = ["rbm", "train", "--hidden", "6", "--epochs", "3", "--batch", "40", "--checkpoint-minutes", "0"]
    assert main(flags + ["--out", str(tmp_path / "whole.npz")]) == 0
    out = tmp_path / "cut.npz"
    assert main(flags + ["--out", str(out), "--resume"]) == 2
    assert "no run to continue" in capsys.readouterr().err
    calls = []
    fit_batch = RBM._fit_batch

    def interrupted(self, X, rows, at):
        fit_batch(self, X, rows, at)
        calls.append(at)
        if len(calls) == 7:                               # epoch 1, minibatch 2 of 5
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(RBM, "_fit_batch", interrupted)
        assert main(flags + ["--out", str(out)]) == 130
    assert not out.exists() and (tmp_path / "cut.npz.checkpoint.npz").exists()
    assert "stopped at epoch 1, minibatch 2" in capsys.readouterr().err
    assert main(flags + ["--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(flags + ["--lr", "0.1", "--out", str(out), "--resume"]) == 2
    assert "learning_rate=0.05 where this one has 0.1" in capsys.readouterr().err
    assert main(flags + ["--binarize", "threshold", "--out", str(out), "--resume"]) == 2
    assert "started with --binarize stochastic; this command says --binarize threshold" in capsys.readouterr().err
    assert main(flags + ["--out", str(out), "--resume"]) == 0
    assert "resuming" in capsys.readouterr().err
    whole, cut = RBM.load(tmp_path / "whole.npz"), RBM.load(out)
    assert np.array_equal(whole.components_, cut.components_)
    assert not (tmp_path / "cut.npz.checkpoint.npz").exists()


def test_a_checkpoint_older_than_a_setting_resumes_at_its_default(tmp_path):
    """A checkpoint written before a parameter existed holds no value for it: it resumes
    as if at the parameter's default (the behaviour it was trained with), and is refused
    if this run asks for another value."""
    from neurosim.machines.base import read_npz_meta, write_npz
    X, path = _data(), tmp_path / "c.npz"
    whole = _machine().fit(X)
    with pytest.raises(KeyboardInterrupt):
        fit_run(_machine(), X, path, log=lambda m: None,
                after_batch=lambda at: os.kill(os.getpid(), signal.SIGINT) if at == Position(1, 2) else None)
    arrays, meta = read_npz_meta(path, "checkpoint")
    del meta["params"]["centered"], meta["params"]["backend"]        # as before those settings were added
    write_npz(path, arrays, meta)
    with pytest.raises(NeurosimError, match=r"centered=False where this one has True"):
        fit_run(_machine().set_params(centered=True), X, path, log=lambda m: None)
    resumed = _machine()
    fit_run(resumed, X, path, log=lambda m: None)
    assert np.array_equal(resumed.components_, whole.components_)
