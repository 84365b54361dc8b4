"""Evidence written on the command line: ``NAME=0|1`` for a unit, ``POP=k`` for a label population.

``NAME=0`` or ``NAME=1`` clamps the unit NAME. ``POP=k`` names a population of role
``label`` or a softmax population (a one-of-n group, as a DBN's ten labels) and clamps
its unit k (counting from 0) on and every other unit of it off: ``label=3`` is
``label_3=1`` and ``label_j=0`` for every other j. A unit's name wins over a
population's, so no existing evidence changes meaning; a population that is not a label
population is refused by name.

>>> from neurosim.machines.dbn import DeepBeliefNet
>>> import numpy as np
>>> dbn = DeepBeliefNet((2, 2), 3)
>>> dbn.set_top(np.zeros((2, 2)), np.zeros((3, 2)), np.zeros(2), np.zeros(3), np.zeros(2))
>>> parse_evidence(["label=1", "v_0=1"], dbn.to_network())
{'label_0': 0, 'label_1': 1, 'label_2': 0, 'v_0': 1}
"""

from __future__ import annotations

from typing import Sequence

from .errors import EvidenceError
from .network import Network

__all__ = ["parse_evidence"]


def parse_evidence(items: Sequence[str], net: Network | None = None) -> dict[str, int]:
    """``NAME=0|1`` and (with ``net``) ``POP=k`` items as one dict {unit: 0|1}; a unit
    given two different values is an error naming it."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        pop = _label_population(net, name) if sep else None
        if pop is None:
            if not sep or value not in ("0", "1"):
                raise EvidenceError(f"evidence {item!r}: write NAME=0 or NAME=1"
                                    + (" (or POP=k for a label population)" if net is not None else ""))
            values = {name: int(value)}
        else:
            n = pop.size
            if not value.isdigit() or int(value) >= n:
                raise EvidenceError(f"evidence {item!r}: population {name!r} has {n} label units; "
                                    f"write {name}=0 .. {name}={n - 1}")
            values = {u: int(k == int(value)) for k, u in enumerate(pop.units)}
        for unit, v in values.items():
            if out.get(unit, v) != v:
                raise EvidenceError(f"evidence for unit {unit!r} given twice, as {unit}={out[unit]} and {item}")
            out[unit] = v
    return out


def _label_population(net: Network | None, name: str):
    """The label population ``name`` of ``net``, or None where ``name`` means a unit (or
    names nothing: the unit check reports it)."""
    if net is None or name in net.units or name not in {p.name for p in net.populations}:
        return None
    pop = net.population(name)
    if pop.role != "label" and pop.activation != "softmax":
        raise EvidenceError(f"evidence {name}=...: population {name!r} has role {pop.role!r}; POP=k clamps "
                            "one unit of a label or softmax population (one-of-n) on; clamp other units "
                            "one by one")
    return pop
