"""`neurosim dbn classify --backend event --method gibbs`: the DBN's label read-out in the
event engine (binary messages only), against the exact softmax and the compiled read-out."""

import math

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.engine import Simulator
from neurosim.machines.dbn_readout import classify, event_gibbs_readout, label_counts, top_rbm
from neurosim.modelfile import load
from neurosim.numerics import softmax
from test_cli_mnist import fake_mnist  # noqa: F401  (a fixture)
from test_dbn_network import _json, _train, logistic_labels, random_dbn


def test_the_label_group_draws_from_the_exact_softmax_given_the_top_units():
    """Top units clamped: each ``update_group(labels, softmax=True)`` is one independent
    draw from ``p(y = k | top) = softmax_k(b_y + U s)``; n draws: per label the count
    minus n p_k has standard deviation sqrt(n p_k (1 - p_k)); all within 4 of them (a
    false alarm has probability < 1e-3 over the 4 labels)."""
    dbn = random_dbn((7, 5, 6, 8), 4, seed=3)
    rbm = top_rbm(dbn.to_network())
    top = rbm.population("top").units
    s = np.array([[1, 0, 1, 1, 0, 0, 1, 0]])
    p = softmax(dbn.b_lab + dbn.U @ s[0])
    sim = Simulator(rbm, np.random.default_rng(2), init=np.zeros(rbm.n_units, dtype=int))
    sim.clamp(units=top, values=s)
    n = 4000
    draws = np.concatenate([sim.update_group(rbm.population("label").units, softmax=True) for _ in range(n)])
    assert (draws.sum(axis=1) == 1).all()                              # one of n: exactly one label on
    z = np.abs(draws.sum(axis=0) - n * p) / np.sqrt(n * p * (1 - p))
    assert z.max() < 4, (z, p)
    # negative control: the same units as independent logistic units are not one of n
    sim = Simulator(logistic_labels(rbm), np.random.default_rng(2), init=np.zeros(rbm.n_units, dtype=int))
    sim.clamp(units=top, values=s)
    free = np.concatenate([sim.update_group(rbm.population("label").units) for _ in range(200)])
    assert (free.sum(axis=1) != 1).any()


def _label_z(count, n: int, seed: int) -> np.ndarray:
    """For n random pen states: ``count(sim, pen, rbm)``, one case's label counts from a
    fresh top-RBM simulator (all units off: independent chains), after 30 sweeps of
    burn-in, one counted sweep; per label the count over n cases minus sum p(y | pen),
    in units of its standard deviation sqrt(sum p (1 - p)). Every case one label on."""
    dbn = random_dbn((7, 5, 6, 8), 4, seed=3)
    rbm = top_rbm(dbn.to_network())
    rng = np.random.default_rng(seed)
    pen = (rng.random((n, 6)) < 0.5).astype(np.int8)
    exact = softmax(-dbn.label_free_energies(pen.astype(np.float32)))
    counts = np.concatenate([count(rbm, rng, pen[c:c + 1]) for c in range(n)])
    assert (counts.sum(axis=1) == 1).all()
    return np.abs(counts.sum(axis=0) - exact.sum(axis=0)) / np.sqrt((exact * (1 - exact)).sum(axis=0))


@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
def test_the_engine_left_to_its_clock_samples_the_exact_label_posterior(schedule):
    """label_counts on the event engine (the top RBM on the engine's own clock, Poisson
    clocks under async), as test_dbn_network's compiled test: all labels within 4
    standard deviations (false alarm < 1e-3)."""
    z = _label_z(lambda rbm, rng, pen: label_counts(
        Simulator(rbm, rng, schedule, init=np.zeros(rbm.n_units, dtype=int)), rbm, pen, 1, 30), 2000, 5)
    assert z.max() < 4, z


def test_a_message_delay_shorter_than_half_a_sweep_changes_the_run():
    """The top RBM runs in continuous time, so any delay moves the messages' arrivals
    (the group-by-group protocol, a group every half sweep, hid delays below 0.5: the
    same labels and messages to the digit)."""
    dbn = random_dbn((7, 5, 6, 8), 4, seed=3)
    net, X = dbn.to_network(), np.random.default_rng(0).random((20, 7))
    runs = [event_gibbs_readout(dbn, net, X, np.random.default_rng(4), 5, 2, "async", delay)
            for delay in (0.0, 0.0, 0.1)]
    assert runs[0].ledger == runs[1].ledger and (runs[0].labels == runs[1].labels).all()   # seeded
    assert runs[2].ledger != runs[0].ledger


def test_messages_of_one_digit_are_binary_and_as_the_ledger_defines_them():
    """One digit, one sweep, all units starting off: every unit that turned on sends one
    binary message per out-synapse: v to h1 and h1 to h2 (recognition), the pen layer to
    the top units, the top units to pen and labels, the one winning label to the top."""
    dbn = random_dbn((7, 5, 6, 8), 4, seed=3)
    net = dbn.to_network()
    x = np.random.default_rng(0).random((1, 7))
    r = event_gibbs_readout(dbn, net, x, np.random.default_rng(4), sweeps=1, burn_in=0)
    # the same draws, step by step
    rng = np.random.default_rng(4)
    up = Simulator(net, rng, "layer", mode="ancestral", init=np.zeros(net.n_units, dtype=int), pathway="recognition")
    rbm = top_rbm(net)
    sim = Simulator(rbm, rng, init=np.zeros(rbm.n_units, dtype=int))
    v = (rng.random((1, 7), dtype=np.float32) < x.astype(np.float32)).astype(np.int8)
    up.clamp(units=net.population("v").units, values=v)
    h1 = up.update_group(net.population("h1").units)
    h2 = up.update_group(net.population("h2").units)
    counts = label_counts(sim, rbm, h2, 1, 0)
    top = sim.state[[rbm.index(u) for u in rbm.population("top").units]]
    assert up.ledger.binary == v.sum() * 5 + h1.sum() * 6
    assert sim.ledger.binary == h2.sum() * 8 + top.sum() * (6 + 4) + 1 * 8
    assert r.ledger.binary == up.ledger.binary + sim.ledger.binary > 0 and r.ledger.analog == 0
    assert r.ledger.updates == 5 + 6 + 8 + 4 and r.labels[0] == counts[0].argmax()


def test_event_and_compiled_gibbs_read_outs_agree(fake_mnist, tmp_path, capsys):  # noqa: F811
    """On the same 100 test digits: both read-outs are the same procedure (a sampled
    up-pass, then label counts in the top RBM) with independent draws, so they have one
    error rate: McNemar, the digits only one gets wrong split evenly, b - c ~ N(0, b + c);
    3 standard deviations (as test_dbn_network for gibbs against exact-given-up-pass).
    And the event labels estimate argmin_y F(h, y) of their own up-pass as the compiled
    ones do (agreement > 0.8, as there)."""
    from neurosim.data import load_mnist

    run = _train(tmp_path)
    model = tmp_path / "dbn.toml"
    assert main(["dbn", "export", str(run), "--out", str(model)]) == 0
    X, y = load_mnist("test")
    net = load(model)
    compiled = classify(net, X, "gibbs", np.random.default_rng(0))
    event = classify(net, X, "gibbs", np.random.default_rng(1), backend="event")
    b = int(np.sum((event.labels != y) & (compiled.labels == y)))
    c = int(np.sum((event.labels == y) & (compiled.labels != y)))
    assert abs(b - c) <= 3 * math.sqrt(b + c) + 1, (b, c)
    assert np.mean(event.labels == event.given_up_pass) > 0.8
    assert event.ledger.analog == 0 and event.ledger.binary > 0
    out = _json(capsys, ["dbn", "classify", str(model), "--backend", "event", "--method", "gibbs", "--seed", "1",
                         "--json"])
    assert set(out) == {"test_error", "cases", "backend", "method", "messages", "seconds"}
    assert (out["backend"], out["method"], out["cases"]) == ("event", "gibbs", 100)
    assert out["test_error"] == np.mean(event.labels != y)                 # the CLI is this call
    assert out["messages"] == {"binary": event.ledger.binary, "analog": 0}
    print(f"event {np.mean(event.labels != y):.2f}, compiled {np.mean(compiled.labels != y):.2f}, "
          f"McNemar b={b} c={c}, messages per digit {event.ledger.binary / len(X):.0f}")


def test_schedule_and_delay_are_the_event_engines(fake_mnist, tmp_path, capsys):  # noqa: F811
    run = _train(tmp_path, "10,10,12", "1")
    model = tmp_path / "dbn.toml"
    assert main(["dbn", "export", str(run), "--out", str(model)]) == 0
    for schedule in ("sweep", "layer", "async"):
        out = _json(capsys, ["dbn", "classify", str(model), "--backend", "event", "--method", "gibbs",
                             "--schedule", schedule, "--delay", "0.5", "--limit", "5", "--json"])
        assert out["cases"] == 5 and out["messages"]["analog"] == 0 and out["messages"]["binary"] > 0
    for extra in (["--schedule", "sweep"], ["--delay", "0"]):
        assert main(["dbn", "classify", str(model), "--method", "gibbs", *extra]) == 2
        assert "--schedule and --delay are the event engine's" in capsys.readouterr().err
    assert main(["dbn", "classify", str(model), "--backend", "event", "--method", "free-energy"]) == 2
    assert "compiled only" in capsys.readouterr().err
