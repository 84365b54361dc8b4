"""Monitors: opt-in recorders that return arrays. Plotting lives in ``neurosim.viz``."""

from __future__ import annotations

import numpy as np

__all__ = ["Trace"]


class Trace:
    """Record every update ``(time, unit, new state)`` and, optionally, every send.

    Pass ``trace.on_update`` (and ``trace.on_message``) to a Simulator. A send is one
    entry ``(time, sender, kind)`` however many synapses it reaches (the ledger counts
    synapses); the initial states and log-odds sent at time 0 are sends too.
    """

    def __init__(self) -> None:
        self._t: list[float] = []
        self._unit: list[int] = []
        self._state: list[int] = []
        self.messages: list[tuple[float, int, str]] = []

    def on_update(self, t: float, unit: int, state: int) -> None:
        self._t.append(t)
        self._unit.append(unit)
        self._state.append(state)

    def on_message(self, t: float, sender: int, kind: str) -> None:
        self.messages.append((t, sender, kind))

    @property
    def times(self) -> np.ndarray:
        return np.array(self._t)

    @property
    def units(self) -> np.ndarray:
        return np.array(self._unit, dtype=np.int64)

    @property
    def states(self) -> np.ndarray:
        return np.array(self._state, dtype=np.int8)

    def __len__(self) -> int:
        return len(self._t)
