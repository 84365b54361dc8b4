"""Schedules: who updates when. Each one starts simpy processes on a Simulator.

Time is in sweeps. The units of a sweep, or the layers of a tick, fire in the middle
of their slots, so a sample recorded at a whole time sees only finished sweeps.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .neuron import Neuron
    from .simulator import Simulator

__all__ = ["SCHEDULES"]


def poisson(sim: Simulator) -> None:
    """Asynchronous: every free unit has its own Poisson clock of rate 1 (its own process)."""
    timeout, uniform, log = sim.env.timeout, sim.uniform, math.log  # bound early: hot path

    def clock(neuron: Neuron):
        update = neuron.update
        while True:
            yield timeout(-log(1.0 - uniform()))  # exponential waiting time, rate 1
            if not neuron.clamped:
                update()

    for n in sim.neurons:
        sim.env.process(clock(n))


def sweep(sim: Simulator) -> None:
    """Random sequential sweeps: each sweep visits every free unit once, in a fresh order."""
    env, rng = sim.env, sim.rng

    def clock():
        t = env.now
        while True:
            yield env.timeout(t - env.now)  # the free units are those at the sweep's start
            free = sim.free
            for slot, k in enumerate(rng.permutation(len(free))):
                yield env.timeout(t + (slot + 0.5) / len(free) - env.now)
                free[k].update()
            t += 1

    env.process(clock())


def _ticks(sim: Simulator, groups: list[list[Neuron]]) -> None:
    """One tick per time unit; the units of a group update together: all propose from
    the same received inputs, then all commit (and send)."""
    env = sim.env
    groups = [g for g in groups if g]

    def clock():
        t = env.now
        while True:
            for slot, group in enumerate(groups):
                yield env.timeout(t + (slot + 0.5) / len(groups) - env.now)
                group = [n for n in group if not n.clamped]
                proposals = [n.propose() for n in group]
                for n, new in zip(group, proposals):
                    if new != n.state:
                        n.set_state(new)
            t += 1

    if groups:
        env.process(clock())


def layer(sim: Simulator) -> None:
    """Layer-parallel: all free units of a layer (:meth:`Network.layers`) at one tick.

    Warns when a layer holds units that are not conditionally independent given the
    rest (neighbours or co-parents): updating them together is not exact Gibbs.
    """
    by_name = {n.name: n for n in sim.neurons}
    groups = sim.net.layers()
    if sim.mode == "gibbs":
        _warn_dependent(sim, [[u for u in g if not by_name[u].clamped] for g in groups])
    _ticks(sim, [[by_name[u] for u in g] for g in groups])


def _warn_dependent(sim: Simulator, groups: list[list[str]]) -> None:
    moral = sim.net.moral_graph()
    for group in groups:
        pair = next(((a, b) for i, a in enumerate(group) for b in group[i + 1:]
                     if moral.has_edge(a, b)), None)
        if pair:
            warnings.warn(f"layer schedule updates {pair[0]!r} and {pair[1]!r} together, but they "
                          "are neighbours or share a child: parallel updates of dependent units do "
                          "not sample the exact distribution (drop the layers from the model to get "
                          "a colouring that does)", stacklevel=4)
            return


def ancestral(sim: Simulator) -> None:
    """Top-down pass, one topological generation at a time: one fresh sample per tick."""
    by_name = {n.name: n for n in sim.neurons}
    _ticks(sim, [[by_name[u] for u in g] for g in sim.net.generations()])


SCHEDULES = {"async": poisson, "sweep": sweep, "layer": layer, "ancestral": ancestral}
