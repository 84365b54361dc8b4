"""Centered greedy pretraining of the deep belief net (``Recipe(centered=True)``; Melchior,
Fischer and Wiskott 2016): a layer against algorithm 1 written out in centered
coordinates, the trainer's stages against the one layer function, the default numbers
unchanged (a digest), resumption bit for bit, old checkpoints, the CLI flags, and the flip
invariance the paper predicts, on exact log-likelihoods."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from dataclasses import replace

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.compiled import bipartite
from neurosim.compiled.bipartite import CD, Block
from neurosim.errors import NeurosimError, ParameterError
from neurosim.machines.ais import exact_log_partition, log_prob
from neurosim.machines.dbn import DeepBeliefNet
from neurosim.machines.dbn_fork import fork_run
from neurosim.machines.dbn_train import (Trainer, continuation_order, load_run, new_rbm, read_checkpoint, stage_names,
                                         train_rbm_layer, write_checkpoint)
from test_benchmarks import ROOT, load
from test_cli_mnist import fake_mnist  # noqa: F401  (a fixture)
from test_dbn import K, digits, quiet, recipe
from test_rbm_centering import algorithm_1_step

CENTERED = recipe(centered=True, offset_rate=0.05, validation=100, updown_continue=2, backprop_epochs=3)


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("settings, digest", [
    (dict(updown_epochs=2, backprop_epochs=2), "c84c99535c45c297"),
    (dict(updown_epochs=3, updown_continue=2, backprop_epochs=1, chain_labels="samples", next_layer_on="samples"),
     "c7d0b14816c3e610")])
def test_the_default_recipe_is_bit_for_bit_what_it_was(tmp_path, settings, digest):
    """Every stage of a small run (greedy, top, up-down, the continuation, backprop), and
    one labelled layer of train_rbm_layer, digested: the numbers of the code before
    centering, computed then and pinned here."""
    X, y = digits(200, 8)
    tr = Trainer(recipe(pretrain_epochs=2, validation=40, **settings), X, y, tmp_path, log=quiet)
    tr.run()
    assert _digest({**tr.dbn.state_dict(), **{f"p.{k}": v for k, v in tr.p.items()}}) == digest
    p = train_rbm_layer(X, 10, recipe(pretrain_epochs=2), np.random.default_rng(1), Y=np.eye(K, dtype=np.float32)[y])
    assert _digest(p) == "7451d747454e5a68"


def test_a_label_group_is_centered_as_more_visible_units():
    """A second route: the kernel's centered change of a block with a label group (offsets
    mu, lambda, mu_y) is that of the block with the labels stacked under the visible
    units (offsets mu and mu_y stacked), in both bias-sum forms; the offsets move alike."""
    rng = np.random.default_rng(7)
    W, U = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    b, b_lab, c = rng.standard_normal(5), rng.standard_normal(4), rng.standard_normal(3)
    V, H = (rng.random((12, 5)) < 0.5).astype(float), rng.random((12, 3))     # 6 positive, 6 negative cases
    Y = np.eye(4)[rng.integers(0, 4, 12)]
    mu, lam, mu_y = rng.random(5), rng.random(3), rng.random(4)
    for summed in (False, True):
        cd = CD(centering=(0.1, 0.2), summed_differences=summed)
        labelled = Block(W, b, c, U, b_lab)
        offsets = (mu.copy(), lam.copy(), mu_y.copy())
        d, _ = bipartite.change(labelled, bipartite.Statistics(V.copy(), Y.copy(), H.copy(), 6), cd, 0.3,
                                bipartite.buffers(None, labelled, 6, 6), offsets=offsets)
        stacked = Block(np.vstack([W, U]), np.concatenate([b, b_lab]), c)
        both = (np.concatenate([mu, mu_y]), lam.copy())
        e, _ = bipartite.change(stacked, bipartite.Statistics(np.hstack([V, Y]), None, H.copy(), 6), cd, 0.3,
                                bipartite.buffers(None, stacked, 6, 6), offsets=both)
        for got, want in ((d["W"], e["W"][:5]), (d["U"], e["W"][5:]), (d["b"], e["b"][:5]),
                          (d["b_lab"], e["b"][5:]), (d["c"], e["c"]), (offsets[0], both[0][:5]),
                          (offsets[2], both[0][5:]), (offsets[1], both[1])):
            assert np.allclose(got, want, rtol=0, atol=1e-14)
        assert np.abs(d["b_lab"] - bipartite.change(labelled, bipartite.Statistics(V.copy(), Y.copy(), H.copy(), 6),
                                                    replace(cd, centering=None), 0.3,
                                                    bipartite.buffers(None, labelled, 6, 6))[0]["b_lab"]).max() > 0.01


# -- algorithm 1 -------------------------------------------------------------------------------------
def _algorithm_1(V: np.ndarray, Y: np.ndarray | None, n_hidden: int, r, seed: int) -> dict:
    """Algorithm 1 of Melchior et al. (2016) as the paper writes it (:func:`algorithm_1_step`),
    in float64 on the centered parameters (W, U, b~, b_lab~, c~) and the offsets; the
    labels as more visible units. The chain is
    the library's CD-1 statistics of the ordinary parameters, as float32 arrays drawing
    from the same Generator as train_rbm_layer (which draws its initial weights first)."""
    rng = np.random.default_rng(seed)
    p, _ = new_rbm(V.shape[1], n_hidden, 0 if Y is None else Y.shape[1], r, rng)
    labels = Y is not None
    Z = V.astype(float) if not labels else np.hstack([V, Y]).astype(float)    # the visible side, labels last
    W = p["W"].astype(float) if not labels else np.vstack([p["W"], p["U"]]).astype(float)
    n_v, nu, lr = V.shape[1], r.offset_rate, r.learning_rate
    mu, lam = Z.mean(0), np.full(n_hidden, 0.5)
    q = np.clip(mu, 0.001, 0.999)
    b_ = np.concatenate([np.log(q[:n_v] / (1 - q[:n_v])), np.log(q[n_v:])])   # logit for v, log for the softmax
    c_, buf = np.zeros(n_hidden), None
    for _ in range(r.pretrain_epochs):
        for s in range(0, len(V), r.batch_size):
            b, c = bipartite.uncentered_biases(W, b_, c_, mu, lam)
            f32 = [x.astype(np.float32) for x in (W[:n_v], b[:n_v], c, W[n_v:], b[n_v:])]
            block = Block(*f32) if labels else Block(*f32[:3])
            buf = bipartite.buffers(buf, block, len(V[s:s + r.batch_size]), len(V[s:s + r.batch_size]))
            stats = bipartite.statistics(block, V[s:s + r.batch_size], CD(), rng, buf,
                                         None if Y is None else Y[s:s + r.batch_size])
            Zs = (stats.V if not labels else np.hstack([stats.V, stats.Y])).astype(float)
            W, b_, c_, mu, lam = algorithm_1_step(W, b_, c_, mu, lam, Zs, stats.H.astype(float), stats.n_pos, lr,
                                                  (nu, nu))
    b, c = bipartite.uncentered_biases(W, b_, c_, mu, lam)
    out = {"W": W[:n_v], "b": b[:n_v], "c": c, "visible": mu[:n_v], "hidden": lam}
    return out if not labels else {**out, "U": W[n_v:], "b_lab": b[n_v:], "labels": mu[n_v:]}


@pytest.mark.parametrize("labels", [False, True])
def test_a_centered_layer_is_algorithm_1(labels):
    """train_rbm_layer with centered=True (no momentum or weight cost: algorithm 1 has
    neither; rate 0.2, offset rate 0.1, 40 updates) against the transcription above. The
    layer is float32 and the transcription float64, so they agree to float32 rounding
    carried through 40 updates of parameters of size about 1 (eps 6e-8 per operation:
    measured 8e-7, bound 1e-5); a draw that rounding could flip would show as a difference
    of the size of a change (~1e-2). The offsets moved (lambda by 0.05-0.06) and the
    uncentered layer ends 0.6 away, so the check is not of an idle layer."""
    X, y = digits(200, 9)
    Y = np.eye(K, dtype=np.float32)[y] if labels else None
    r = recipe(centered=True, offset_rate=0.1, learning_rate=0.2, momentum=(0.0, 0.0), weight_decay=0.0,
               pretrain_epochs=2, batch_size=10)
    got = train_rbm_layer(X, 7, r, np.random.default_rng(5), Y=Y)
    want = _algorithm_1(X, Y, 7, r, 5)
    for name in ("W", "b", "c") + (("U", "b_lab") if labels else ()):
        assert np.abs(got[name] - want[name]).max() < 1e-5, name
    for name in ("visible", "hidden") + (("labels",) if labels else ()):
        assert np.abs(got["offsets"][name] - want[name]).max() < 1e-6, name
    assert np.abs(want["hidden"] - 0.5).max() > 0.01
    plain = train_rbm_layer(X, 7, replace(r, centered=False), np.random.default_rng(5), Y=Y)
    assert np.abs(plain["W"] - got["W"]).max() > 0.05           # the flag is honoured


def test_the_trainers_greedy_stages_are_the_layer_function(tmp_path):
    """The trainer's first RBM and its labelled top RBM, centered, are train_rbm_layer's
    on the same cases in the trainer's order from the Generator state the stage started
    at (recorded in the progress), bit for bit."""
    X, y = digits(300, 4)
    r = recipe(centered=True, updown_epochs=0, backprop_epochs=0, pretrain_epochs=3, hidden=(12, 16))
    tr = Trainer(r, X, y, tmp_path, log=quiet)
    dbn = tr.run()
    order = tr.order

    def layer(stage: int, V, Y=None):
        rng = np.random.default_rng()
        rng.bit_generator.state = tr.progress.stage_rng[stage]
        return train_rbm_layer(V[order], r.hidden[stage] if Y is None else r.hidden[-1], r, rng,
                               None if Y is None else Y[order], cd=r.greedy_cd(Y is not None))

    first = layer(0, X)
    assert np.array_equal(dbn.R[0], first["W"]) and np.array_equal(dbn.g[0], first["b"])
    assert np.array_equal(dbn.r[0], first["c"])
    top = layer(1, dbn.up(X)[-1], np.eye(K, dtype=np.float32)[y])
    for mine, theirs in (("W", "W"), ("U", "U"), ("b_pen", "b"), ("b_lab", "b_lab"), ("c", "c")):
        assert np.array_equal(getattr(dbn, mine), top[theirs]), mine


# -- checkpoints -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage, epoch, batch", [("rbm2", 1, 4), ("top", 3, 7), ("updown", 2, 3), ("continue", 1, 5)])
def test_a_centered_run_stopped_by_ctrl_c_resumes_to_the_uninterrupted_weights(tmp_path, stage, epoch, batch):
    """The checkpoint holds the stage's offsets (offsets.visible, .hidden, and .labels in
    the top RBM, which up-down and the continuation go on moving; best_offsets, those of
    the best up-down epoch); resumed, the run ends with the weights of an uninterrupted
    one, through up-down, the continuation and backprop."""
    X, y = digits(400, 4)
    r = CENTERED
    whole = Trainer(r, X, y, tmp_path / "whole", log=quiet).run().state_dict()

    def interrupt(tr):
        if (tr.stages[tr.progress.stage], tr.progress.epoch, tr.progress.batch) == (stage, epoch, batch):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(r, X, y, tmp_path / "cut", log=quiet, on_batch=interrupt).run()
    arrays, _ = read_checkpoint(tmp_path / "cut" / "checkpoint.npz")
    kept = sorted(k for k in arrays if k.startswith("offsets."))
    assert kept == sorted(["offsets.hidden", "offsets.visible"] + (["offsets.labels"] if stage != "rbm2" else []))
    assert any(k.startswith("best_offsets.") for k in arrays) == (stage in ("updown", "continue"))
    assert 0.0 < np.abs(arrays["offsets.hidden"] - 0.5).max() < 0.5            # moved, saved as they stood
    resumed = Trainer(r, X, y, tmp_path / "cut", log=quiet).run().state_dict()
    assert whole.keys() == resumed.keys()
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole)


def test_a_checkpoint_from_before_centering_resumes_uncentered(tmp_path):
    """A checkpoint whose recipe has no centered or offset_rate (written before they
    existed) resumes at their defaults, to the weights of a run of today's default."""
    X, y = digits(400, 4)
    whole = Trainer(recipe(), X, y, tmp_path / "whole", log=quiet).run().state_dict()

    def interrupt(tr):
        if (tr.stages[tr.progress.stage], tr.progress.epoch, tr.progress.batch) == ("rbm1", 2, 5):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(recipe(), X, y, tmp_path / "old", log=quiet, on_batch=interrupt).run()
    arrays, meta = read_checkpoint(tmp_path / "old" / "checkpoint.npz")
    for name in ("centered", "offset_rate"):
        del meta["recipe"][name]
    write_checkpoint(tmp_path / "old", arrays, meta)
    assert not load_run(tmp_path / "old").recipe.centered
    resumed = Trainer(recipe(), X, y, tmp_path / "old", log=quiet).run().state_dict()
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole)


def test_a_checkpoint_whose_offsets_do_not_fit_is_refused_by_name(tmp_path):
    X, y = digits(400, 4)

    def interrupt(tr):
        if (tr.stages[tr.progress.stage], tr.progress.epoch, tr.progress.batch) == ("rbm2", 1, 2):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Trainer(CENTERED, X, y, tmp_path, log=quiet, on_batch=interrupt).run()
    arrays, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    write_checkpoint(tmp_path, {**arrays, "offsets.hidden": np.zeros(40, np.float32)}, meta)
    with pytest.raises(NeurosimError, match=r"checkpoint.npz: not a neurosim checkpoint: offsets.hidden has shape "
                                            r"\(40,\) where rbm2's RBM has \(24,\)"):
        read_checkpoint(tmp_path / "checkpoint.npz")
    write_checkpoint(tmp_path, {k: v for k, v in arrays.items() if not k.startswith("offsets.")}, meta)
    with pytest.raises(NeurosimError, match="its recipe is centered and it holds no offsets.. for rbm2"):
        Trainer(CENTERED, X, y, tmp_path, log=quiet).run()


def test_bad_centering_settings_are_named():
    with pytest.raises(ParameterError, match="offset_rate"):
        recipe(centered=True, offset_rate=1.5)
    with pytest.raises(ParameterError, match="centered"):
        recipe(centered="yes")


def test_cli_dbn_train_centered(fake_mnist, tmp_path, capsys):
    """--centered --offset-rate reach the recipe; --resume with another rate is refused by
    flag; the same command without the flags resumes the centered run; --offset-rate
    without --centered trains uncentered, with a warning."""
    out = tmp_path / "run"
    flags = ["dbn", "train", "--hidden", "8,8,12", "--pretrain-epochs", "1", "--updown-epochs", "1",
             "--backprop-epochs", "0", "--limit", "200", "--out", str(out)]
    assert main(flags + ["--centered", "--offset-rate", "0.02"]) == 0
    run = load_run(out)
    assert run.finished and run.recipe.centered and run.recipe.offset_rate == 0.02
    assert json.loads((out / "command.json").read_text())["recipe"]["centered"] is True
    capsys.readouterr()
    assert main(flags + ["--resume", "--offset-rate", "0.05"]) == 2
    assert "started with --offset-rate 0.02; this command says --offset-rate 0.05" in capsys.readouterr().err
    assert main(flags + ["--resume"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(flags[:-1] + [str(tmp_path / "plain"), "--offset-rate", "0.02"]) == 0
    assert "warning: --offset-rate moves the offsets of centered training only" in capsys.readouterr().err
    assert not load_run(tmp_path / "plain").recipe.centered


def test_up_down_centers_the_top_rbm_alone():
    """One up-down step from the same DBN and draws, centered and not: the directed
    layers' changes are the same (centering overwrites the chain's states in place, after
    the recognition changes have read them), the top RBM's differ, and the offsets move
    toward the positive phase's means."""
    X, y = digits(20, 2)
    Y = np.eye(K, dtype=np.float32)[y]
    dbn = DeepBeliefNet((36, 8, 10), K)
    rng = np.random.default_rng(0)
    dbn.add_rbm(0.3 * rng.standard_normal((36, 8)), rng.standard_normal(36), rng.standard_normal(8))
    dbn.set_top(0.3 * rng.standard_normal((8, 10)), 0.3 * rng.standard_normal((K, 10)), rng.standard_normal(8),
                np.zeros(K), rng.standard_normal(10))
    after = {}
    offsets = {"visible": np.full(8, 0.5, np.float32), "hidden": np.full(10, 0.5, np.float32),
               "labels": np.full(K, 0.25, np.float32)}
    for centered in (False, True):
        d = DeepBeliefNet.from_state_dict(dbn.state_dict())
        d.up_down_step(X, Y, 0.1, 2, np.random.default_rng(1), offsets=offsets if centered else None, offset_rate=0.5)
        after[centered] = d.state_dict()
    for name in ("R0", "r0", "G0", "g0"):
        assert np.array_equal(after[False][name], after[True][name]), name
    for name in ("W", "U", "b_pen", "b_lab", "c"):
        assert np.abs(after[False][name] - after[True][name]).max() > 1e-4, name
    assert np.allclose(offsets["labels"], 0.5 * 0.25 + 0.5 * Y.mean(0), rtol=0, atol=1e-6)
    assert np.abs(offsets["hidden"] - 0.5).max() > 0.01


def test_a_fork_of_a_centered_run_at_up_down_trains_on_to_a_fresh_runs_weights(tmp_path):
    """The fork carries the top RBM's offsets as greedy training left them (a run with
    --updown-epochs 0 keeps them), so that up-down goes on from them as in a fresh run."""
    X, y = digits(300, 6)
    new = recipe(centered=True, pretrain_epochs=2, updown_epochs=2, backprop_epochs=2)
    Trainer(replace(new, updown_epochs=0, backprop_epochs=0), X, y, tmp_path / "source", log=quiet).run()
    fork_run(tmp_path / "source", new, tmp_path / "fork", len(X))
    forked = Trainer(new, X, y, tmp_path / "fork", log=quiet).run().state_dict()
    fresh = Trainer(new, X, y, tmp_path / "fresh", log=quiet).run().state_dict()
    assert all(np.array_equal(forked[k], fresh[k]) for k in fresh)


def test_the_experiment_loop_continues_a_centered_run_as_the_trainer_does(tmp_path):
    """experiments/continuation_spread.py's epochs, from the best copy and its offsets,
    with the stage's Generator state and order, give the trainer's continued weights."""
    spread = load("continuation_spread", ROOT / "experiments")
    X, y = digits(400, 4)
    r = replace(CENTERED, backprop_epochs=0)
    tr = Trainer(r, X, y, tmp_path, log=quiet)
    tr.run()
    rng = np.random.default_rng()
    rng.bit_generator.state = tr.progress.stage_rng[stage_names(r).index("continue")]
    dbn = DeepBeliefNet.from_state_dict(tr.best.state_dict())
    offsets = {k: v.copy() for k, v in tr.best_offsets.items()}
    steps = spread.continue_up_down(dbn, X, np.eye(K, dtype=np.float32)[y], r.continuation(), r.batch_size,
                                    continuation_order(r.seed, len(X)), rng, r.updown_continue, None, offsets,
                                    r.offset_rate)
    assert list(steps) == [1, 2]
    assert all(np.array_equal(dbn.state_dict()[k], v) for k, v in tr.dbn.state_dict().items())
    assert all(np.array_equal(offsets[k], v) for k, v in tr.offsets.items())


# -- what centering does ------------------------------------------------------------------------------
def _flipped(W, b, c):
    """The RBM on ``1 - v`` with the distribution of ``(W, b, c)`` on ``v``: ``E(v, h) =
    E'(1 - v, h) + const`` for ``W' = -W``, ``b' = -b``, ``c' = c + W^T 1``."""
    return -W, -b, c + W.sum(axis=0)


def _log_likelihood(p: dict, V: np.ndarray) -> float:
    W, b, c = (p[k].astype(float) for k in "Wbc")
    return float(log_prob(V, W, b, c, exact_log_partition(W, b, c)).mean())


def test_centering_makes_a_layer_invariant_to_flipping_its_data():
    """The paper's flip invariance, exactly: a layer trained on ``X`` and one trained on
    ``1 - X`` from the flipped initial model (the same distribution on flipped states)
    with the same draws. Centered, every update is the flipped update (``mu -> 1 - mu``,
    ``dW -> -dW``, ``dc -> dc + dW^T 1``; CD-1's draws are of hidden units, whose
    probabilities are the same), so the two log-likelihoods differ only by float32
    rounding (measured: 8e-8 nats; bound 1e-4). Uncentered, the update is not the flipped
    one and the two drift apart (measured 0.37 nats on these 10-pixel data, mostly on;
    0.03-0.07 on two other draws of such data; bound 0.03). 10 visible, 6 hidden,
    200 cases, 20 epochs, momentum 0.5/0.9, no weight cost (it acts on the ordinary W
    alone, which the flip does not commute with)."""
    rng = np.random.default_rng(11)
    P = rng.random((3, 10)) < 0.7
    X = (P[rng.integers(0, 3, 200)] ^ (rng.random((200, 10)) < 0.1)).astype(np.float32)
    W0 = (0.1 * rng.standard_normal((10, 6))).astype(np.float32)
    r = recipe(pretrain_epochs=20, batch_size=20, weight_decay=0.0, learning_rate=0.1)
    gaps = {}
    for centered in (False, True):
        rc = replace(r, centered=centered)
        start = (W0, np.zeros(10, np.float32), np.zeros(6, np.float32))
        if centered:                            # algorithm 1's initial model, itself flip-symmetric
            mu = X.mean(0)
            start = (W0, *bipartite.uncentered_biases(W0, np.log(mu / (1 - mu)), np.zeros(6, np.float32),
                                                      mu, np.full(6, 0.5, np.float32)))
        a = train_rbm_layer(X, 6, rc, np.random.default_rng(3), init=start)
        b = train_rbm_layer(1 - X, 6, rc, np.random.default_rng(3), init=_flipped(*start))
        gaps[centered] = abs(_log_likelihood(a, X) - _log_likelihood(b, 1 - X))
    assert gaps[True] < 1e-4
    assert gaps[False] > 0.03
