"""Event engine mechanics: messages counted, clamping, delays, determinism, errors."""

from pathlib import Path

import numpy as np
import pytest

from neurosim import Edge, Network, Unit, ValidationError, load
from neurosim.engine import Simulator, Trace
from helpers import linear_net, random_belief_net, random_boltzmann

MODELS = Path(__file__).resolve().parents[1] / "models"


def _changes(sim_init, trace, n_units):
    """Number of state changes of each unit, replayed from the trace."""
    state, changes = list(sim_init), np.zeros(n_units, dtype=int)
    for u, s in zip(trace.units, trace.states):
        if s != state[u]:
            changes[u] += 1
            state[u] = s
    return changes


@pytest.mark.parametrize("schedule", ["async", "sweep", "layer"])
def test_binary_messages_are_state_changes_times_out_degree(schedule):
    net = random_boltzmann(np.random.default_rng(0), 3, 3)
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(1), schedule=schedule, on_update=trace.on_update)
    init, initial_messages = sim.state.copy(), sim.ledger.binary
    sim.run(until=200)
    degree = np.array([len(net.neighbours(u)) for u in net.units])
    assert initial_messages == int(init @ degree)  # initial 1s are sent once
    assert sim.ledger.binary - initial_messages == int(_changes(init, trace, net.n_units) @ degree)
    assert sim.ledger.analog == 0
    assert sim.ledger.updates == len(trace)


def test_neals_gibbs_sends_states_both_ways_and_log_odds_up():
    """In a belief net each change goes to children and parents (binary); each change of a
    unit's input makes it send its predicted log-odds to every parent (analog)."""
    net = random_belief_net(np.random.default_rng(2), (2, 3, 3), density=1.0)
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(3), schedule="sweep", on_update=trace.on_update)
    init, b0, a0 = sim.state.copy(), sim.ledger.binary, sim.ledger.analog
    sim.run(until=100)
    changes = _changes(init, trace, net.n_units)
    fanout = np.array([len(net.children(u)) + len(net.parents(u)) for u in net.units])
    assert sim.ledger.binary - b0 == int(changes @ fanout)
    relayed = sum(changes[net.index(u)] * sum(len(net.parents(c)) for c in net.children(u))
                  for u in net.units)
    assert sim.ledger.analog - a0 == relayed


def test_ancestral_sends_binary_messages_down_only():
    net = random_belief_net(np.random.default_rng(2), (2, 3), density=1.0)
    sim = Simulator(net, np.random.default_rng(0), schedule="ancestral")
    sim.sample(50)
    assert sim.ledger.analog == 0 and sim.ledger.updates == 50 * net.n_units


def test_clamped_units_never_update():
    net = load(MODELS / "earthquake_truck.toml")
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(0), schedule="sweep", evidence={"house_jumps": 1},
                    on_update=trace.on_update)
    samples = sim.sample(100, burn_in=5)
    assert (samples[:, 2] == 1).all()
    assert set(trace.units.tolist()) == {0, 1}
    assert sim.ledger.updates == 2 * 105  # two free units, once per sweep


def test_same_seed_same_run_and_other_seed_differs():
    net = random_boltzmann(np.random.default_rng(0), 3, 3)
    runs = [Simulator(net, np.random.default_rng(s), schedule="async").sample(300) for s in (5, 5, 6)]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_delayed_messages_arrive_after_the_edge_delay():
    """b's running input follows a's state with a lag of exactly the edge's delay."""
    net = Network([Unit("a"), Unit("b")], [Edge("a", "b", 3.0, "symmetric", delay=0.3)])
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(0), schedule="async", init=np.array([0, 0]),
                    on_update=trace.on_update)
    checks = 0
    for t in np.arange(0.05, 30, 0.1):
        sim.run(until=t)
        a_updates = [(tt, s) for tt, u, s in zip(trace.times, trace.units, trace.states)
                     if u == 0 and tt <= t - 0.3]
        a_then = a_updates[-1][1] if a_updates else 0
        assert sim.neurons[1].input == pytest.approx(3.0 * a_then)
        checks += 1
    assert checks == 300 and 0 < trace.states[trace.units == 0].sum() < len(trace.states)


def test_layer_schedule_updates_a_layer_from_the_same_inputs():
    net = random_boltzmann(np.random.default_rng(0), 2, 2, density=1.0)
    sim = Simulator(net, np.random.default_rng(0), schedule="layer")
    sim.run(until=10)
    assert sim.ledger.updates == 10 * net.n_units


def test_errors_are_clear():
    bm = random_boltzmann(np.random.default_rng(0), 2, 2, density=1.0)
    with pytest.raises(ValidationError, match=r"ancestral sampling needs a purely directed net; v0 <-> v1"):
        Simulator(bm, np.random.default_rng(0), schedule="ancestral")
    sbn = random_belief_net(np.random.default_rng(0), (2, 2))
    with pytest.raises(ValidationError, match="ancestral sampling ignores evidence"):
        Simulator(sbn, np.random.default_rng(0), schedule="ancestral", evidence={"l1_0": 1})
    with pytest.raises(ValidationError, match="unknown schedule 'random'"):
        Simulator(bm, np.random.default_rng(0), schedule="random")
    with pytest.raises(ValidationError, match="init must be 4 states of 0 or 1"):
        Simulator(bm, np.random.default_rng(0), init=np.array([0, 1, 2, 0]))
    with pytest.raises(ValidationError, match="need n >= 0"):
        Simulator(bm, np.random.default_rng(0)).sample(10, thin=0)


def test_layer_schedule_warns_about_co_parents_in_one_layer():
    net = load(MODELS / "earthquake_truck.toml")
    with pytest.warns(UserWarning, match="'earthquake' and 'truck' together"):
        Simulator(net, np.random.default_rng(0), schedule="layer", evidence={"house_jumps": 1}).run(1)


@pytest.mark.parametrize("symmetric", [False, True])
def test_the_event_engine_refuses_linear_units_naming_the_population(symmetric):
    """Its units send binary messages; a real-valued population is refused at construction."""
    net = linear_net(np.random.default_rng(0), symmetric)
    with pytest.raises(ValidationError, match=r"^network 'linear': population 'z' is linear \(real-valued units\); "
                                              r"the event engine \(units that send binary messages\) needs binary"):
        Simulator(net, np.random.default_rng(0))
