"""Populations and projections: how a Network stores its units and synapses.

A :class:`Population` is a named group of units with a bias vector (PyNN's Population,
Brian2's NeuronGroup); a :class:`Projection` a dense weight block from a pre to a post
population, optionally masked. A unit is a (population, index) pair, a synapse a
(projection, i, j) triple. This module checks each population and projection on its
own, with array operations (no loop over synapses); :class:`~neurosim.network.Network`
checks how they fit together (duplicate connections, cycles, the chain-graph rule).

Example
-------
>>> import numpy as np
>>> v = Population("v", ("v_0", "v_1"), np.zeros(2), role="visible", layer=0)
>>> h = Population("h", ("h_0",), np.zeros(1), layer=1)
>>> check_projection(Projection("h->v", "h", "v", np.ones((1, 3))), {"h": h, "v": v})
Traceback (most recent call last):
...
neurosim.errors.ValidationError: projection 'h->v' has a weight block of shape (1, 3); populations 'h' (1 unit) and 'v' (2 units) need (1, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .errors import ValidationError

__all__ = ["Population", "Projection", "ROLES", "KINDS", "ACTIVATIONS", "NAME_HELP", "valid_name",
           "check_choice", "check_population", "check_projection", "recognition_biases", "validation_error"]

ROLES = ("visible", "hidden", "label")
KINDS = ("directed", "symmetric", "recognition")
ACTIVATIONS = ("logistic", "softmax", "linear")
NAME_HELP = "letters (any script), digits, _ . -; not starting with a digit, . or -"


def valid_name(name: object) -> bool:
    """A unit or population name: a Python identifier (Unicode letters and digits, ``_``;
    no leading digit) that may also hold ``.`` and ``-`` after its first character. Never
    a space, ``=`` or ``,``, so ``--evidence NAME=V`` and bit strings stay unambiguous."""
    return (isinstance(name, str) and name[:1] not in ("", ".", "-")
            and name.replace(".", "_").replace("-", "_").isidentifier())


def check_choice(value: object, choices: tuple[str, ...], what: str, **where: object) -> None:
    """Refuse ``value`` unless it is one of ``choices``; ``what`` names it in the message."""
    if value not in choices:
        raise validation_error(f"{what} {value!r} is not one of {', '.join(choices)}", **where)


def validation_error(message: str, *, unit: int | None = None, edge: int | None = None,
                     population: str | None = None, projection: str | None = None) -> ValidationError:
    """A ValidationError carrying where it points: a unit or edge index (model files
    written unit by unit) or a population or projection name."""
    err = ValidationError(message)
    err.unit_index, err.edge_index = unit, edge
    err.population, err.projection = population, projection
    return err


@dataclass(eq=False)
class Population:
    """A group of units: ``p(s_k = 1) = sigmoid(bias[k] + input_k)`` (eq. 1, logistic), or,
    with ``activation="softmax"``, a one-of-n group (the label units of Hinton, Osindero
    and Teh 2006): the energy is that of binary units, but exactly one unit is on, and
    ``p(s_k = 1 | rest) = exp(bias[k] + input_k) / sum_l exp(bias[l] + input_l)``, or,
    with ``activation="linear"``, real-valued units with unit-variance Gaussian noise,
    ``s_k = bias[k] + input_k + z``, ``z ~ N(0, 1)`` (the code units of Hinton and
    Salakhutdinov 2006, ``rbmhidlinear.m``).

    ``recognition_bias`` (Helmholtz machines) is None or one value per unit; NaN marks a
    unit without one."""

    name: str
    units: tuple[str, ...]
    bias: np.ndarray
    role: str = "hidden"
    layer: int | None = None
    activation: str = "logistic"
    recognition_bias: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.units)


def recognition_biases(pop: Population) -> np.ndarray | None:
    """``pop``'s recognition biases, or None when no unit has one (all NaN)."""
    rbias = pop.recognition_bias
    return None if rbias is None or np.isnan(rbias).all() else rbias


@dataclass(eq=False)
class Projection:
    """Synapses ``pre -> post``: ``weights[i, j]`` from unit i of pre to unit j of post,
    where ``mask[i, j]`` (None: everywhere); a symmetric projection's ``reverse[i, j]`` is
    the synapse from post j back to pre i (None: equal to ``weights``). ``delay`` in sweeps."""

    name: str
    pre: str
    post: str
    weights: np.ndarray
    kind: str = "directed"
    mask: np.ndarray | None = None
    reverse: np.ndarray | None = None
    delay: float = 0.0

    @property
    def n_synapses(self) -> int:
        """Connections (a symmetric one counted once)."""
        return int(self.weights.size if self.mask is None else np.count_nonzero(self.mask))


def _units(n: int) -> str:
    return f"{n} unit{'s' if n != 1 else ''}"


def _sizes(pre: Population, post: Population) -> str:
    """The populations a block's shape comes from, for a message."""
    return f"populations {pre.name!r} ({_units(pre.size)}) and {post.name!r} ({_units(post.size)})"


def _vector(values: object, what: str, pop: str, names: tuple[str, ...], nan_ok: bool = False) -> np.ndarray:
    """``values`` as a float64 vector, one entry per unit, each finite (or NaN if ``nan_ok``)."""
    arr, n = _real(values, f"population {pop!r}: {what}", population=pop), len(names)
    if arr.shape != (n,):
        raise validation_error(f"population {pop!r} has a {what} of shape {arr.shape}; its "
                               f"{_units(n)} need ({n},)", population=pop)
    bad = ~(np.isfinite(arr) | (np.isnan(arr) if nan_ok else False))
    if bad.any():
        k = int(np.argmax(bad))
        raise validation_error(f"population {pop!r}: unit {names[k]!r}: {what} is {arr[k]}, must be "
                               "finite", population=pop)
    return arr


def _real(values: object, what: str, **where: str) -> np.ndarray:
    """A float64 copy of a real-valued array (ints and floats; not bool, complex or text)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise validation_error(f"{what} must be an array of real numbers, got dtype {arr.dtype}", **where)
    return np.array(arr, dtype=np.float64)


def check_population(pop: object) -> Population:
    """A validated copy of ``pop``: names, float64 vectors, role, layer, activation."""
    if not isinstance(pop, Population):
        raise validation_error(f"expected a Population, got {type(pop).__name__}")
    name = pop.name
    if not valid_name(name):
        raise validation_error(f"population {name!r}: bad name ({NAME_HELP})", population=str(name))
    units = tuple(pop.units) if not isinstance(pop.units, str) else ()
    if not units:
        raise validation_error(f"population {name!r} has no units", population=name)
    for k, unit in enumerate(units):
        if not valid_name(unit):
            raise validation_error(f"population {name!r}: unit {k + 1}: bad name {unit!r} ({NAME_HELP})",
                                   population=name)
    check_choice(pop.role, ROLES, f"population {name!r}: role", population=name)
    if pop.layer is not None and (isinstance(pop.layer, bool) or not isinstance(pop.layer, (int, np.integer))):
        raise validation_error(f"population {name!r}: layer must be an integer, got {pop.layer!r}",
                               population=name)
    check_choice(pop.activation, ACTIVATIONS, f"population {name!r}: activation", population=name)
    rbias = pop.recognition_bias
    return Population(name, units, _vector(pop.bias, "bias", name, units), pop.role,
                      None if pop.layer is None else int(pop.layer), pop.activation,
                      None if rbias is None else _vector(rbias, "recognition_bias", name, units, nan_ok=True))


def check_projection(proj: object, pops: Mapping[str, Population]) -> Projection:
    """A validated copy of ``proj``; weights (and reverse) are zero where ``mask`` is False,
    and an all-True mask becomes None (dense)."""
    if not isinstance(proj, Projection):
        raise validation_error(f"expected a Projection, got {type(proj).__name__}")
    name = proj.name
    where = {"projection": name}
    if not isinstance(name, str) or not name.isprintable() or not name.strip():
        raise validation_error(f"projection name must be printable text, got {name!r}", **where)
    for end in ("pre", "post"):
        if getattr(proj, end) not in pops:
            raise validation_error(f"projection {name!r}: unknown {end} population "
                                   f"{getattr(proj, end)!r}", **where)
    pre, post = pops[proj.pre], pops[proj.post]
    check_choice(proj.kind, KINDS, f"projection {name!r}: kind", **where)
    delay = proj.delay
    if isinstance(delay, bool) or not isinstance(delay, (int, float, np.floating, np.integer)) \
            or not math.isfinite(delay) or delay < 0:
        raise validation_error(f"projection {name!r}: delay must be a finite number >= 0, got {delay!r}",
                               **where)
    mask = _mask(proj, pre, post)
    weights = _block(proj.weights, "weight block", proj, pre, post, mask)
    reverse = None
    if proj.reverse is not None:
        if proj.kind != "symmetric":
            raise validation_error(f"projection {name!r}: a reverse block is only for symmetric "
                                   "projections", **where)
        reverse = _block(proj.reverse, "reverse block", proj, pre, post, mask)
    return Projection(name, proj.pre, proj.post, weights, proj.kind, mask, reverse, float(delay))


def _mask(proj: Projection, pre: Population, post: Population) -> np.ndarray | None:
    shape, name = (pre.size, post.size), proj.name
    mask = proj.mask
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != shape:
            raise validation_error(f"projection {name!r} has a mask of dtype {mask.dtype} and shape "
                                   f"{mask.shape}; {_sizes(pre, post)} need booleans of shape {shape}",
                                   projection=name)
        mask = None if mask.all() else mask.copy()
    if pre is post:
        diagonal = np.ones(pre.size, dtype=bool) if mask is None else np.diagonal(mask)
        if diagonal.any():
            k = int(np.argmax(diagonal))
            raise validation_error(f"projection {name!r}: synapse {pre.units[k]} -> {pre.units[k]}: "
                                   "self-loop (a unit cannot connect to itself; give a mask without "
                                   "the diagonal)", projection=name)
    return mask


def _block(values: object, what: str, proj: Projection, pre: Population, post: Population,
           mask: np.ndarray | None) -> np.ndarray:
    """A float64 block of shape (n_pre, n_post), finite where the mask is set, zero elsewhere."""
    name, shape = proj.name, (pre.size, post.size)
    block = _real(values, f"projection {name!r}: {what}", projection=name)
    if block.shape != shape:
        raise validation_error(f"projection {name!r} has a {what} of shape {block.shape}; "
                               f"{_sizes(pre, post)} need {shape}", projection=name)
    if mask is not None:
        block[~mask] = 0.0
    bad = ~np.isfinite(block)
    if bad.any():
        i, j = np.unravel_index(int(np.argmax(bad)), shape)
        raise validation_error(f"projection {name!r}: synapse {pre.units[i]} -> {post.units[j]}: "
                               f"{what.split()[0]} is {block[i, j]}, must be finite", projection=name)
    return block

