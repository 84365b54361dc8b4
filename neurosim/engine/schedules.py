"""Schedules: who updates when. Each one starts simpy processes on a Simulator.

Time is in sweeps. The units of a sweep, or the layers of a tick, fire in the middle
of their slots, so a sample recorded at a whole time sees only finished sweeps. The units
of a softmax population are one variable (:class:`~neurosim.engine.simulator.Group`): where
a unit would update, the group competes (:meth:`Simulator.compete`).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

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

    for n in sim.steppers(sim.neurons):  # a softmax population: one clock for the group
        sim.env.process(clock(n))


def sweep(sim: Simulator) -> None:
    """Random sequential sweeps: each sweep visits every free unit once, in a fresh order."""
    env, rng = sim.env, sim.rng

    def clock():
        t = env.now
        while True:
            yield env.timeout(t - env.now)  # the free units are those at the sweep's start
            free = sim.steppers(sim.free)  # a softmax population's free units: one variable
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
                sim.commit(group, sim.propose(group))
            t += 1

    if groups:
        env.process(clock())


def layer(sim: Simulator) -> None:
    """Layer-parallel: all free units of a layer (:meth:`Network.layers`) at one tick.

    Warns when a layer holds units that are not conditionally independent given the
    rest (neighbours or co-parents): updating them together is not exact Gibbs.
    """
    by_name = {n.name: n for n in sim.neurons}
    groups = [[by_name[u] for u in g] for g in sim.net.layers()]
    if sim.mode == "gibbs":
        _warn_dependent(sim, [[n for n in g if not n.clamped] for g in groups])
    _ticks(sim, groups)


def _warn_dependent(sim: Simulator, groups: list[list[Neuron]]) -> None:
    for group in groups:
        pair = _dependent_pair(sim, group)
        if pair:
            warnings.warn(f"layer schedule updates {pair[0]!r} and {pair[1]!r} together, but they "
                          "are neighbours or share a child: parallel updates of dependent units do "
                          "not sample the exact distribution (drop the layers from the model to get "
                          "a colouring that does)", stacklevel=4)
            return


def _dependent_pair(sim: Simulator, group: list[Neuron]) -> tuple[str, str] | None:
    """The first two units of ``group`` (in its order) joined in the moral graph: by a
    synapse, or as parents of one child; read from the links' blocks, a few matrix
    products per group (no graph of synapses)."""
    m = len(group)
    if m < 2:
        return None
    dependent = np.zeros((m, m), dtype=bool)
    members = {}  # population -> (positions in the group, indices in the population)
    for k, n in enumerate(group):
        members.setdefault(id(n.pop), ([], []))
        members[id(n.pop)][0].append(k)
        members[id(n.pop)][1].append(n.j)
    into: dict[int, list] = {}
    for link in sim.links:
        a, ra = members.get(id(link.pre), ((), ()))
        b, cb = members.get(id(link.post), ((), ()))
        if a and b:
            dependent[np.ix_(a, b)] |= link.present(ra, cb)
        if a and link.neal:
            into.setdefault(id(link.post), []).append((a, link.present(ra, slice(None)).astype(np.float64)))
    for parents in into.values():  # co-parents: a shared child in the same population
        for a1, c1 in parents:
            for a2, c2 in parents:
                dependent[np.ix_(a1, a2)] |= (c1 @ c2.T) > 0
    dependent |= dependent.T
    i, j = np.nonzero(np.triu(dependent, 1))
    return (group[i[0]].name, group[j[0]].name) if len(i) else None


def ancestral(sim: Simulator) -> None:
    """Top-down pass, one topological generation at a time: one fresh sample per tick."""
    by_name = {n.name: n for n in sim.neurons}
    _ticks(sim, [[by_name[u] for u in g] for g in sim.net.generations()])


SCHEDULES = {"async": poisson, "sweep": sweep, "layer": layer, "ancestral": ancestral}
