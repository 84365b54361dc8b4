"""Network: stochastic binary units joined by directed or symmetric edges.

A directed edge is one synapse, parent to child (a belief-net connection); a symmetric
edge two synapses, one each way, that start equal (a Boltzmann connection); a
recognition edge a bottom-up synapse of a Helmholtz machine (Dayan et al. 1995), used
by wake-sleep only. Storage is populations and projections (:mod:`neurosim.population`);
the per-unit and per-edge views and the networkx graphs are derived from the arrays.
Validation happens once, when the Network is built; every error names its culprit.
docs/architecture.md ("The Network") describes the grouping and the checks.

Example
-------
>>> from neurosim import Network, Unit, Edge
>>> net = Network(
...     [Unit("earthquake", -10.0), Unit("truck", -10.0),
...      Unit("house_jumps", -20.0, role="visible")],
...     [Edge("earthquake", "house_jumps", 20.0), Edge("truck", "house_jumps", 20.0)],
...     name="earthquake_truck")
>>> net.parents("house_jumps")
['earthquake', 'truck']
>>> [p.name for p in net.populations], [q.name for q in net.projections]
(['hidden', 'visible'], ['hidden->visible'])
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Iterator, Mapping, NamedTuple, Sequence

import networkx as nx
import numpy as np

from .errors import EvidenceError, ValidationError
from .population import (KINDS, NAME_HELP, ROLES, Population, Projection, check_choice, check_population,
                         check_projection, recognition_biases, valid_name, validation_error)

__all__ = ["Unit", "Edge", "Network", "NetArrays", "ROLES", "KINDS", "MAX_CYCLE_CHECK"]

MAX_CYCLE_CHECK = 2_000_000  # synapses on a cycle of populations checked one by one (see _check_acyclic)
_LIST = 8                    # names listed in a message before "..."


@dataclass(frozen=True)
class Unit:
    """A stochastic binary unit: ``p(s=1) = sigmoid(bias + sum_j s_j w_ji)`` (eq. 1)."""

    name: str
    bias: float = 0.0
    role: str = "hidden"
    layer: int | None = None
    recognition_bias: float | None = None  # Helmholtz machines: bias of the recognition pathway


@dataclass(frozen=True)
class Edge:
    """A connection ``source -> target``.

    For a symmetric edge ``weight`` is the synapse source->target and
    ``weight_reverse`` the synapse target->source (``None``: equal to ``weight``).
    ``delay`` is the time a message takes along the edge (one sweep = 1).
    """

    source: str
    target: str
    weight: float
    kind: str = "directed"
    delay: float = 0.0
    weight_reverse: float | None = field(default=None)


class NetArrays(NamedTuple):
    """Dense array form of a Network (small nets: exact inference, tests).

    ``weights[i, j]`` is the synapse from unit i to unit j; ``symmetric`` and
    ``directed`` mark which synapses are of which kind.
    """

    bias: np.ndarray
    weights: np.ndarray
    symmetric: np.ndarray
    directed: np.ndarray


class _Connections(NamedTuple):
    """Every connection, projection by projection (row-major within one): projection
    ``q``, rows ``i``, columns ``j``; ``bounds[q]`` its slice; ``edge`` the position of
    each in the edge order."""

    q: np.ndarray
    i: np.ndarray
    j: np.ndarray
    bounds: list[slice]
    edge: np.ndarray


def _finite(value: object, what: str, **where: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise validation_error(f"{what} must be a number, got {value!r}", **where)
    if not math.isfinite(value):
        raise validation_error(f"{what} is {value}, must be finite", **where)
    return float(value)


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names[:_LIST]) + (f", ... ({len(names)} in all)" if len(names) > _LIST else "")


def _present(proj: Projection) -> np.ndarray:
    """Where ``proj`` has a synapse: its mask, or everywhere."""
    return np.ones(proj.weights.shape, dtype=bool) if proj.mask is None else proj.mask


def _check_text(name: object, description: object) -> None:
    for what, text in (("name", name), ("description", description)):
        if not isinstance(text, str) or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            raise validation_error(f"network {what} must be Unicode text, got {text!r}")


class Network:
    """A validated net of stochastic binary units, stored as populations and projections.

    Parameters
    ----------
    units : iterable of Unit
        In order: this order is the unit order everywhere (bit strings, arrays).
    edges : iterable of Edge
        In order: this order is the order of ``edges`` and of model files.
    name, description : str

    Raises
    ------
    ValidationError
        Unknown or duplicate unit, self-loop, duplicate connection, directed cycle,
        non-finite number, bad role or kind, negative delay, or a unit with both
        directed parents and symmetric edges. The message names the culprit.
    """

    def __init__(self, units: Iterable[Unit], edges: Iterable[Edge] = (),
                 name: str = "network", description: str = "") -> None:
        _check_text(name, description)
        units = _checked_units(units)
        edges = _checked_edges(edges, {u.name: i for i, u in enumerate(units)})
        pops, where = _group_units(units)
        projs, rank = _group_edges(edges, pops, where)
        self._setup(name, description, pops, projs, rank)
        self._check_acyclic()
        self._check_chain_graph()

    @classmethod
    def from_populations(cls, populations: Iterable[Population], projections: Iterable[Projection] = (),
                         name: str = "network", description: str = "",
                         order: Mapping[str, np.ndarray] | None = None) -> Network:
        """A Network of these populations (in order: the unit order) and projections,
        checked with array operations; arrays are copied.

        The edge order (of ``edges`` and model files) is projection by projection,
        row-major within each, unless ``order`` gives, for every projection by name,
        an integer array of its shape holding each synapse's position (0 to the
        number of connections - 1; -1 where the mask has none): see ``edge_order``."""
        _check_text(name, description)
        pops = [check_population(p) for p in populations]
        if not pops:
            raise validation_error("a network needs at least one population")
        projs = _checked_projections(pops, projections)
        net = cls.__new__(cls)
        net._setup(name, description, pops, projs, None if order is None else _checked_order(order, projs))
        net._check_duplicates()
        net._check_acyclic()
        net._check_chain_graph()
        net._check_softmax()
        net._check_linear()
        return net

    def _setup(self, name: str, description: str, pops: list[Population], projs: list[Projection],
               rank: list[np.ndarray] | None) -> None:
        """Index the populations and projections; ``rank[q][i, j]``: the position of
        synapse (q, i, j) in the edge order (None: projection by projection, row-major)."""
        self.name, self.description = name, description
        self._pops, self._projs, self._rank = pops, projs, rank
        self._pop_index = {p.name: k for k, p in enumerate(pops)}
        self._end = [(self._pop_index[q.pre], self._pop_index[q.post]) for q in projs]  # (pre, post) of q
        self._offsets = list(itertools.accumulate((p.size for p in pops), initial=0))
        self._names = [u for p in pops for u in p.units]
        self._pop_of = [k for k, p in enumerate(pops) for _ in range(p.size)]
        self._index: dict[str, int] = {}
        for i, unit in enumerate(self._names):
            if self._index.setdefault(unit, i) != i:
                first = self._pops[self._pop_of[self._index[unit]]].name
                raise validation_error(f"duplicate unit {unit!r} (in populations {first!r} and "
                                       f"{self._pops[self._pop_of[i]].name!r})", population=first)
        self._proj_index: dict[str, int] = {}
        self._incoming: dict[int, list[int]] = defaultdict(list)
        self._outgoing: dict[int, list[int]] = defaultdict(list)
        for q, proj in enumerate(projs):
            if self._proj_index.setdefault(proj.name, q) != q:
                raise validation_error(f"duplicate projection {proj.name!r}", projection=proj.name)
            self._outgoing[self._end[q][0]].append(q)
            self._incoming[self._end[q][1]].append(q)
        self._derived: dict[str, object] = {}         # depends on weights: cleared by set_*
        self._mask_rank: dict[int, np.ndarray] = {}  # _rank_of's cache, per masked projection
        self._starts = list(itertools.accumulate((p.n_synapses for p in projs), initial=0))  # row-major edges

    def _locate(self, name: str) -> tuple[int, int]:
        """The population of unit ``name`` and the unit's index there."""
        u = self.index(name)
        return self._pop_of[u], u - self._offsets[self._pop_of[u]]

    # -- validation of the structure ----------------------------------------------------
    def _check_duplicates(self) -> None:
        """No two synapses of one pathway join the same pair of units (either way)."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for q, proj in enumerate(self._projs):
            groups[proj.kind == "recognition", frozenset(self._end[q])].append(q)
        for qs in groups.values():
            for a, b in itertools.combinations_with_replacement(qs, 2):
                self._check_overlap(a, b)

    def _check_overlap(self, a: int, b: int) -> None:
        A, B = _present(self._projs[a]), _present(self._projs[b])
        pa, pb = self._end[a], self._end[b]
        pairs = []
        if a != b and pa == pb:
            pairs.append(A & B)
        if pa == pb[::-1]:
            pairs.append(A & B.T)
        for both in pairs:
            if both.any():
                i, j = np.unravel_index(int(np.argmax(both)), both.shape)
                u, v = self._pops[pa[0]].units[i], self._pops[pa[1]].units[j]
                names = f"{self._projs[a].name!r}" + ("" if a == b else f" and {self._projs[b].name!r}")
                raise validation_error(f"projection{'s' if a != b else ''} {names}: duplicate connection "
                                       f"between {u!r} and {v!r}", projection=self._projs[a].name)

    def _check_acyclic(self) -> None:
        """No directed cycle in the directed part or in the recognition part.

        Checked on the graph of populations first: only projections inside one of its
        strongly connected components (a self-projection included) can lie on a cycle.
        Those synapses, if at most MAX_CYCLE_CHECK, are checked one by one; beyond that
        a cycle of dense blocks is certainly a cycle of units and is named as such,
        and a cycle of masked blocks is refused as too large to check."""
        for kind in ("directed", "recognition"):
            qs = [q for q, p in enumerate(self._projs) if p.kind == kind]
            pops = nx.DiGraph([self._end[q] for q in qs])
            component = {p: c for c, comp in enumerate(nx.strongly_connected_components(pops)) for p in comp}
            inside = [q for q in qs if component[self._end[q][0]] == component[self._end[q][1]]]
            if not inside:
                continue
            size = sum(self._projs[q].n_synapses for q in inside)
            if size <= MAX_CYCLE_CHECK:
                self._check_acyclic_units(kind, inside)
            elif all(self._projs[q].mask is None for q in inside):
                cycle = [q for q in inside if self._end[q][0] != self._end[q][1]]
                raise validation_error(f"{kind} cycle between populations through projections "
                                       f"{_listed([repr(self._projs[q].name) for q in cycle])}",
                                       projection=self._projs[cycle[0]].name)
            else:
                raise validation_error(
                    f"projections {_listed([repr(self._projs[q].name) for q in inside])} form a {kind} "
                    f"cycle between populations with {size} masked synapses, more than the "
                    f"{MAX_CYCLE_CHECK} checked one by one: split the populations so that the "
                    "projections form no cycle", projection=self._projs[inside[0]].name)

    def _check_acyclic_units(self, kind: str, qs: list[int]) -> None:
        """networkx's find_cycle over the synapses of projections ``qs``, in edge order."""
        pairs = [(q, *self._pairs(q)) for q in qs]
        which = np.concatenate([np.full(len(i), q) for q, i, _ in pairs])
        rows, cols = np.concatenate([i for _, i, _ in pairs]), np.concatenate([j for _, _, j in pairs])
        position = np.concatenate([self._rank_of(q, i, j) for q, i, j in pairs])
        order = np.argsort(position, kind="stable")
        pre, post = self._global(which[order], rows[order], cols[order])
        graph = nx.DiGraph()
        graph.add_nodes_from(sorted(set(pre.tolist()) | set(post.tolist())))
        graph.add_edges_from((a, b, {"k": k}) for a, b, k in zip(pre.tolist(), post.tolist(), order.tolist()))
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return
        path = " -> ".join([self._names[u] for u, _ in cycle] + [self._names[cycle[0][0]]])
        k = graph[cycle[-1][0]][cycle[-1][1]]["k"]
        if self._rank is not None:
            raise validation_error(f"{kind} cycle: {path}", edge=int(position[k]))
        proj = self._projs[int(which[k])].name
        raise validation_error(f"{kind} cycle: {path} (projection {proj!r})", projection=proj)

    def _check_chain_graph(self) -> None:
        """A unit may receive directed edges or take part in symmetric ones, not both."""
        parent = [np.zeros(p.size, dtype=bool) for p in self._pops]
        partner = [np.zeros(p.size, dtype=bool) for p in self._pops]
        for q, proj in enumerate(self._projs):
            a, b = self._end[q]
            present = _present(proj)
            if proj.kind == "directed":
                parent[b] |= present.any(axis=0)
            elif proj.kind == "symmetric":
                partner[b] |= present.any(axis=0)
                partner[a] |= present.any(axis=1)
        for k, p in enumerate(self._pops):
            both = parent[k] & partner[k]
            if both.any():
                i = self._offsets[k] + int(np.argmax(both))
                name = self._names[i]
                raise validation_error(
                    f"unit {name!r} has directed parents ({_listed(self.parents(name))}) and symmetric "
                    f"edges ({_listed(self.neighbours(name))}); a unit may receive directed edges or "
                    "take part in symmetric ones, not both", unit=i, population=p.name)

    def _check_softmax(self) -> None:
        """A softmax population (a one-of-n group) takes part in symmetric projections to
        other populations only, as the label units of a top RBM: its conditional is the
        softmax of its units' inputs, which no directed conditional or synapse inside the
        group (one unit is on at a time) would fit."""
        for q, proj in enumerate(self._projs):
            a, b = self._end[q]
            if proj.kind == "symmetric" and a != b or not proj.n_synapses:
                continue
            for pop in (self._pops[k] for k in dict.fromkeys((a, b))):
                if pop.activation == "softmax":
                    what = f"is {proj.kind}" if a != b else "joins it to itself"
                    raise validation_error(f"projection {proj.name!r} {what}: population {pop.name!r} is a "
                                           "softmax group, which takes part in symmetric projections to "
                                           "other populations only", projection=proj.name)

    def _check_linear(self) -> None:
        """A symmetric projection joins a linear population (real-valued units) to binary
        ones only, as a Gaussian-hidden RBM: ``exp(b.v + c.h + v W h - |h|^2 / 2)`` is
        normalisable for any ``W`` then, but not between linear units with large weights."""
        for q, proj in enumerate(self._projs):
            a, b = (self._pops[k] for k in self._end[q])
            if proj.kind == "symmetric" and proj.n_synapses and a.activation == b.activation == "linear":
                raise validation_error(f"projection {proj.name!r} is symmetric between linear populations "
                                       f"{a.name!r} and {b.name!r}: a symmetric projection joins linear units "
                                       "to binary ones only", projection=proj.name)

    def refuse_linear(self, what: str, error: type[Exception] = ValidationError) -> None:
        """Raise ``error`` naming the first linear population, if any: ``what`` needs binary units."""
        pop = next((p for p in self._pops if p.activation == "linear"), None)
        if pop is not None:
            raise error(f"network {self.name!r}: population {pop.name!r} is linear (real-valued units); "
                        f"{what} needs binary units")

    # -- connections in edge order (derived from the masks, cached) ---------------------
    def _pairs(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of projection q's synapses, row-major."""
        proj = self._projs[q]
        if proj.mask is None:
            return np.divmod(np.arange(proj.weights.size, dtype=np.intp), proj.weights.shape[1])
        return np.nonzero(proj.mask)

    @cached_property
    def _conn(self) -> _Connections:
        """Every connection, projection by projection (row-major within one)."""
        pairs = [self._pairs(q) for q in range(len(self._projs))]
        cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp))
        edge = (np.arange(self._starts[-1]) if self._rank is None else
                cat([rank[i, j] for rank, (i, j) in zip(self._rank, pairs)]))
        return _Connections(cat([np.full(len(i), q, dtype=np.intp) for q, (i, _) in enumerate(pairs)]),
                            cat([i for i, _ in pairs]), cat([j for _, j in pairs]),
                            [slice(a, b) for a, b in zip(self._starts, self._starts[1:])], edge)

    @cached_property
    def _in_edge_order(self) -> np.ndarray:
        """Indices into the connections, in edge order."""
        return np.argsort(self._conn.edge, kind="stable")

    def _global(self, q: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit indices of the pre and post ends of synapses (q, i, j)."""
        start = np.array(self._offsets, dtype=np.intp)[np.array(self._end, dtype=np.intp).reshape(-1, 2)]
        return start[q, 0] + i, start[q, 1] + j

    def _values(self, c: _Connections, reverse: bool = False) -> np.ndarray:
        """The weight (or reverse weight) of every connection, in ``c``'s order."""
        parts = []
        for q, proj in enumerate(self._projs):
            parts.append((_back(proj) if reverse else proj.weights)[c.i[c.bounds[q]], c.j[c.bounds[q]]])
        return np.concatenate(parts) if parts else np.zeros(0)

    def edge_order(self) -> dict[str, np.ndarray] | None:
        """Each projection's ``rank[i, j]``, the position of synapse (i, j) in ``edges``
        (-1: none), if the edges are not simply projection by projection, row-major
        (a net built unit by unit, edges in another order); else None."""
        if self._rank is None or np.array_equal(self._conn.edge, np.arange(self.n_edges)):
            return None
        return {p.name: rank for p, rank in zip(self._projs, self._rank)}

    def _rank_of(self, q: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Edge-order positions of synapses (q, i, j) of one projection."""
        if self._rank is not None:
            return self._rank[q][i, j]
        proj = self._projs[q]
        if proj.mask is None:
            return self._starts[q] + i * proj.weights.shape[1] + j
        if q not in self._mask_rank:
            self._mask_rank[q] = np.cumsum(proj.mask, axis=None).reshape(proj.mask.shape) - 1
        return self._starts[q] + self._mask_rank[q][i, j]

    def _adjacent(self, name: str, kind: str, incoming: bool, outgoing: bool) -> list[str]:
        """Units joined to ``name`` by ``kind`` projections into it and/or out of it, in
        edge order."""
        p, k = self._locate(name)
        sides = [(q, True) for q in self._incoming[p] if incoming] + \
            [(q, False) for q in self._outgoing[p] if outgoing]
        keys, found = [], []
        for q, into in sides:
            proj = self._projs[q]
            if proj.kind != kind:
                continue
            if proj.mask is None:
                other = np.arange(proj.weights.shape[0 if into else 1])
            else:
                other = np.flatnonzero(proj.mask[:, k] if into else proj.mask[k])
            keys.append(self._rank_of(q, other, k) if into else self._rank_of(q, k, other))
            found.append(self._offsets[self._end[q][0 if into else 1]] + other)
        if not keys:
            return []
        order = np.argsort(np.concatenate(keys), kind="stable")
        return [self._names[i] for i in np.concatenate(found)[order].tolist()]

    # -- read access ---------------------------------------------------------------------
    @property
    def populations(self) -> tuple[Population, ...]:
        """The populations, in unit order (read only: change values with set_*)."""
        return tuple(self._pops)

    @property
    def projections(self) -> tuple[Projection, ...]:
        """The projections (read only: change values with set_*)."""
        return tuple(self._projs)

    def population(self, name: str) -> Population:
        try:
            return self._pops[self._pop_index[name]]
        except KeyError:
            raise ValidationError(f"unknown population {name!r} in network {self.name!r}") from None

    def projection(self, name: str) -> Projection:
        try:
            return self._projs[self._proj_index[name]]
        except KeyError:
            raise ValidationError(f"unknown projection {name!r} in network {self.name!r}") from None

    @property
    def units(self) -> list[str]:
        """Unit names, in order."""
        return list(self._names)

    @property
    def n_units(self) -> int:
        return len(self._names)

    @property
    def n_edges(self) -> int:
        """Connections (a symmetric one counted once; recognition ones included)."""
        return self._starts[-1]

    def unit(self, name: str) -> Unit:
        p, k = self._locate(name)
        pop = self._pops[p]
        rbias = None if pop.recognition_bias is None else float(pop.recognition_bias[k])
        return Unit(name, float(pop.bias[k]), pop.role, pop.layer,
                    None if rbias is None or math.isnan(rbias) else rbias)

    def unit_list(self) -> list[Unit]:
        return [self.unit(name) for name in self._names]

    @property
    def edges(self) -> list[Edge]:
        """Each connection once, in the order given, with its current weights."""
        c, order = self._conn, self._in_edge_order
        pre, post = self._global(c.q[order], c.i[order], c.j[order])
        w = self._values(c)[order]
        back = self._values(c, reverse=True)[order]
        projs = [self._projs[q] for q in c.q[order].tolist()]
        names = self._names
        return [Edge(names[a], names[b], x, p.kind, p.delay, None if y == x else y)
                for a, b, x, y, p in zip(pre.tolist(), post.tolist(), w.tolist(), back.tolist(), projs)]

    def delayed_edge(self) -> Edge | None:
        """The first edge, in edge order, whose messages are delayed; None (at once and
        without building the edges when no projection has a delay) if there is none."""
        if not any(p.delay > 0 for p in self._projs):
            return None
        return next((e for e in self.edges if e.delay > 0), None)

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise ValidationError(f"unknown unit {name!r} in network {self.name!r}") from None

    def bias(self, name: str) -> float:
        p, k = self._locate(name)
        return float(self._pops[p].bias[k])

    def _synapse(self, pre: str, post: str, recognition: bool) -> tuple[Projection, int, int, bool]:
        """Projection, row, column of the synapse ``pre -> post``, and whether it is the
        reverse synapse of a symmetric connection stored ``post -> pre``."""
        a, b = self._index.get(pre), self._index.get(post)
        if a is not None and b is not None:
            pa, pb = self._pop_of[a], self._pop_of[b]
            i, j = a - self._offsets[pa], b - self._offsets[pb]
            for q in self._outgoing[pa]:
                proj = self._projs[q]
                if (proj.kind == "recognition") != recognition:
                    continue
                if self._end[q][1] == pb and (proj.mask is None or proj.mask[i, j]):
                    return proj, i, j, False
            for q in self._incoming[pa]:
                proj = self._projs[q]
                if proj.kind == "symmetric" and not recognition and self._end[q][0] == pb \
                        and (proj.mask is None or proj.mask[j, i]):
                    return proj, j, i, True
        kind = "recognition synapse" if recognition else "synapse"
        raise ValidationError(f"no {kind} {pre} -> {post} in network {self.name!r}")

    def weight(self, pre: str, post: str, recognition: bool = False) -> float:
        """Weight of the synapse ``pre -> post`` (of the recognition pathway if asked)."""
        proj, i, j, back = self._synapse(pre, post, recognition)
        return float((_back(proj) if back else proj.weights)[i, j])

    def parents(self, name: str) -> list[str]:
        return self._adjacent(name, "directed", incoming=True, outgoing=False)

    def children(self, name: str) -> list[str]:
        return self._adjacent(name, "directed", incoming=False, outgoing=True)

    def neighbours(self, name: str) -> list[str]:
        """Units joined to ``name`` by a symmetric edge."""
        return self._adjacent(name, "symmetric", incoming=True, outgoing=True)

    def recognition_parents(self, name: str) -> list[str]:
        """Units whose recognition synapses reach ``name`` (the layer below, in a
        Helmholtz machine)."""
        return self._adjacent(name, "recognition", incoming=True, outgoing=False)

    def _has(self, kind: str) -> bool:
        return any(p.kind == kind and p.n_synapses for p in self._projs)

    @property
    def has_recognition(self) -> bool:
        return self._has("recognition")

    @property
    def has_symmetric(self) -> bool:
        return self._has("symmetric")

    @property
    def has_directed(self) -> bool:
        return self._has("directed")

    def synapses(self) -> Iterator[tuple[str, str, dict]]:
        """Every synapse ``(pre, post, data)`` of the generative part, a symmetric edge
        giving two; grouped by pre unit (in unit order), each group in edge order
        (the order of ``graph.edges``). ``data``: weight, kind, delay, edge (its index)."""
        c = self._conn
        gen = np.array([p.kind != "recognition" for p in self._projs] or [False])[c.q]
        sym = np.array([p.kind == "symmetric" for p in self._projs] or [False])[c.q]
        pre, post = self._global(c.q, c.i, c.j)
        w, back = self._values(c), self._values(c, reverse=True)
        a = np.concatenate([pre[gen], post[sym]])
        b = np.concatenate([post[gen], pre[sym]])
        val = np.concatenate([w[gen], back[sym]])
        k = np.concatenate([c.edge[gen], c.edge[sym]])
        q = np.concatenate([c.q[gen], c.q[sym]])
        order = np.lexsort((k, a))
        names, projs = self._names, self._projs
        for x, y, v, e, p in zip(a[order].tolist(), b[order].tolist(), val[order].tolist(),
                                 k[order].tolist(), q[order].tolist()):
            yield names[x], names[y], {"weight": v, "kind": projs[p].kind, "delay": projs[p].delay, "edge": e}

    @property
    def graph(self) -> nx.DiGraph:
        """The generative synapses as a networkx DiGraph (derived, cached until a set_*):
        nodes carry bias, role, layer, index; edges weight, kind, delay, edge."""
        return self._pathway(recognition=False)

    @property
    def recognition(self) -> nx.DiGraph:
        """The recognition synapses as a networkx DiGraph (derived, cached until a set_*)."""
        return self._pathway(recognition=True)

    def _pathway(self, recognition: bool) -> nx.DiGraph:
        key = "recognition" if recognition else "graph"
        if key not in self._derived:
            graph = nx.DiGraph()
            graph.add_nodes_from(self._names if recognition else (
                (u.name, {"bias": u.bias, "role": u.role, "layer": u.layer, "index": i})
                for i, u in enumerate(self.unit_list())))
            for k, e in enumerate(self.edges):
                if (e.kind == "recognition") == recognition:
                    graph.add_edge(e.source, e.target, weight=e.weight, kind=e.kind, delay=e.delay, edge=k)
                if e.kind == "symmetric" and not recognition:
                    graph.add_edge(e.target, e.source, kind="symmetric", delay=e.delay, edge=k,
                                   weight=e.weight if e.weight_reverse is None else e.weight_reverse)
            self._derived[key] = graph
        return self._derived[key]

    def layers(self) -> list[list[str]]:
        """Groups of units updated together by layer-parallel schedules, top layer first.

        If every unit has a ``layer`` these are the layers (highest number first).
        Otherwise a greedy colouring of the moral graph (each unit joined to its
        parents, children, symmetric neighbours and co-parents), so that the units
        of a group are conditionally independent given all others.
        """
        if all(p.layer is not None for p in self._pops):
            levels = sorted({p.layer for p in self._pops}, reverse=True)
            return [[u for p in self._pops if p.layer == lv for u in p.units] for lv in levels]
        colour = nx.greedy_color(self.moral_graph(), strategy="largest_first")
        groups: dict[int, list[str]] = {}
        for name in self._names:
            groups.setdefault(colour[name], []).append(name)
        return [groups[c] for c in sorted(groups)]

    def moral_graph(self) -> nx.Graph:
        """Undirected graph joining every unit to its Markov blanket."""
        moral = nx.Graph()
        moral.add_nodes_from(self._names)
        moral.add_edges_from(self.graph.to_undirected().edges())
        for name in self._names:
            parents = self.parents(name)
            moral.add_edges_from((a, b) for i, a in enumerate(parents) for b in parents[i + 1:])
        return moral

    def generations(self) -> list[list[str]]:
        """Topological generations of the directed part: ancestral order, roots first.

        When every directed projection is dense and they join distinct populations,
        the generations of units are those of populations (a dense block gives each
        unit of post every unit of pre as a parent); otherwise they are computed unit
        by unit."""
        directed = [q for q, p in enumerate(self._projs) if p.kind == "directed"]
        if all(self._projs[q].mask is None for q in directed):
            pops = nx.DiGraph([self._end[q] for q in directed])
            pops.add_nodes_from(range(len(self._pops)))
            return [[u for k in sorted(g) for u in self._pops[k].units]
                    for g in nx.topological_generations(pops)]
        view = nx.subgraph_view(self.graph, filter_edge=lambda u, v: self.graph[u][v]["kind"] == "directed")
        return [sorted(g, key=self.index) for g in nx.topological_generations(view)]

    def evidence_indices(self, evidence: Mapping[str, object] | None) -> dict[int, int]:
        """Check evidence ``{unit: 0|1}`` and map it to unit indices. On a softmax group
        it may turn one unit on, and may turn all units off only if one stays free."""
        out: dict[int, int] = {}
        for name, value in (evidence or {}).items():
            if name not in self._index:
                raise EvidenceError(f"evidence on unknown unit {name!r} (units: {_listed(self._names)})")
            if isinstance(value, bool) or value not in (0, 1):
                raise EvidenceError(f"evidence {name}={value!r}: a unit's state must be 0 or 1")
            out[self._index[name]] = int(value)
        for group in self.softmax_groups():
            given = [out[i] for i in group.tolist() if i in out]
            if sum(given) > 1 or (given and len(given) == len(group) and not any(given)):
                pop = self._pops[self._pop_of[int(group[0])]].name
                raise EvidenceError(f"evidence turns {sum(given)} units of softmax population {pop!r} on; "
                                    f"exactly one unit of a one-of-n group is on (write {pop}=k)")
        return out

    def softmax_groups(self) -> list[np.ndarray]:
        """The unit indices of each softmax population (a one-of-n group), in unit order."""
        return self._of_activation("softmax")

    def linear_units(self) -> np.ndarray:
        """The unit indices of the linear populations (real-valued units), in unit order."""
        return np.concatenate(self._of_activation("linear") or [np.zeros(0, dtype=np.intp)])

    def _of_activation(self, activation: str) -> list[np.ndarray]:
        return [np.arange(self._offsets[k], self._offsets[k + 1]) for k, p in enumerate(self._pops)
                if p.activation == activation]

    def to_arrays(self) -> NetArrays:
        """The generative part as dense n x n arrays, block by block (no loop over synapses)."""
        n = self.n_units
        W = np.zeros((n, n))
        sym = np.zeros((n, n), dtype=bool)
        directed = np.zeros((n, n), dtype=bool)
        for q, proj in enumerate(self._projs):
            if proj.kind == "recognition":
                continue
            rows, cols = self._block_slices(q)
            present = _present(proj)
            np.copyto(W[rows, cols], proj.weights, where=present)
            (sym if proj.kind == "symmetric" else directed)[rows, cols] |= present
            if proj.kind == "symmetric":
                np.copyto(W[cols, rows], _back(proj).T, where=present.T)
                sym[cols, rows] |= present.T
        bias = np.concatenate([p.bias for p in self._pops]) if self._pops else np.zeros(0)
        return NetArrays(bias, W, sym, directed)

    def _block_slices(self, q: int) -> tuple[slice, slice]:
        a, b = self._end[q]
        return (slice(self._offsets[a], self._offsets[a + 1]), slice(self._offsets[b], self._offsets[b + 1]))

    # -- write access (learning) ---------------------------------------------------------
    def set_weight(self, pre: str, post: str, value: float, recognition: bool = False) -> None:
        """Set one synapse; for a symmetric edge the reverse synapse is left alone."""
        proj, i, j, back = self._synapse(pre, post, recognition)
        value = _finite(value, f"synapse {pre} -> {post}: weight")
        if proj.kind == "symmetric" and proj.reverse is None:
            proj.reverse = proj.weights.copy()
        (proj.reverse if back else proj.weights)[i, j] = value
        self._derived.clear()

    def set_recognition_bias(self, name: str, value: float) -> None:
        p, k = self._locate(name)
        value = _finite(value, f"unit {name!r}: recognition_bias")
        pop = self._pops[p]
        if pop.recognition_bias is None:
            pop.recognition_bias = np.full(pop.size, np.nan)
        pop.recognition_bias[k] = value
        self._derived.clear()

    def set_bias(self, name: str, value: float) -> None:
        p, k = self._locate(name)
        self._pops[p].bias[k] = _finite(value, f"unit {name!r}: bias")
        self._derived.clear()

    def set_block(self, projection: str, weights: np.ndarray, reverse: np.ndarray | None = None) -> None:
        """Set every synapse of ``projection`` at once: ``weights[i, j]`` from unit i of pre
        to unit j of post, and for a symmetric projection ``reverse[i, j]`` from post j back
        to pre i (None: equal to ``weights``). Checked as a projection is when a net is
        built: the shape (named by population), finite values (naming the synapse);
        entries where the mask has no synapse are dropped."""
        proj = self.projection(projection)
        checked = check_projection(replace(proj, weights=weights, reverse=reverse), {p.name: p for p in self._pops})
        np.copyto(proj.weights, checked.weights)
        same = checked.reverse is None or np.array_equal(checked.reverse, checked.weights)
        proj.reverse = None if same else checked.reverse
        self._derived.clear()

    def set_biases(self, population: str, values: np.ndarray, recognition: bool = False) -> None:
        """Set the bias of every unit of ``population`` at once (its recognition biases if
        ``recognition``: NaN where a unit has none); checked as when a net is built."""
        pop = self.population(population)
        if recognition:
            pop.recognition_bias = check_population(replace(pop, recognition_bias=values)).recognition_bias
        else:
            np.copyto(pop.bias, check_population(replace(pop, bias=values)).bias)
        self._derived.clear()

    def copy(self) -> Network:
        """An equal Network with arrays of its own: the same populations, projections
        (names included) and edge order."""
        return Network.from_populations(self._pops, self._projs, self.name, self.description, self.edge_order())

    def with_arrays(self, weights: np.ndarray, bias: np.ndarray) -> Network:
        """A copy whose generative synapses and biases are read from dense arrays of the
        form of :meth:`to_arrays` (the inverse of it); recognition is kept."""
        projs = []
        for q, proj in enumerate(self._projs):
            if proj.kind != "recognition":
                rows, cols = self._block_slices(q)
                present = _present(proj)
                block = np.where(present, weights[rows, cols], 0.0)
                back = np.where(present, weights[cols, rows].T, 0.0) if proj.kind == "symmetric" else None
                proj = replace(proj, weights=block, reverse=None if back is None or np.array_equal(back, block)
                               else back)
            projs.append(proj)
        bias = np.asarray(bias, dtype=np.float64)
        pops = [replace(p, bias=bias[self._offsets[k]:self._offsets[k + 1]]) for k, p in enumerate(self._pops)]
        return self._copy(pops, projs)

    def with_delay(self, delay: float) -> Network:
        """A copy in which every edge has the same message ``delay`` (in sweeps)."""
        return self._copy(self._pops, [replace(p, delay=delay) for p in self._projs])

    def pathway(self, name: str = "generative") -> Network:
        """The net a pathway samples: this one (generative), or the recognition pathway as
        a directed Network of its own: the recognition projections, directed, layers negated,
        edge order kept, the recognition biases (0 where a unit has none) as biases."""
        if name == "generative":
            return self
        if name != "recognition":
            raise ValidationError(f"unknown pathway {name!r} (generative or recognition)")
        pops = [replace(p, layer=None if p.layer is None else -p.layer,
                        bias=np.zeros(p.size) if p.recognition_bias is None else np.nan_to_num(p.recognition_bias))
                for p in self._pops]
        projs = [replace(q, kind="directed") for q in self._projs if q.kind == "recognition"]
        order = self.edge_order()
        if order is not None:  # renumber the recognition synapses' positions 0, 1, ...
            ranks = [order[q.name] for q in projs]
            kept = np.sort(np.concatenate([r[r >= 0] for r in ranks] or [np.zeros(0, dtype=np.int64)]))
            order = {q.name: np.where(r >= 0, np.searchsorted(kept, r), -1) for q, r in zip(projs, ranks)}
        return Network.from_populations(pops, projs, self.name + ":recognition", self.description, order)

    def _copy(self, pops: list[Population], projs: list[Projection]) -> Network:
        """A Network of the same structure with these values (checked, copied)."""
        pops = [check_population(p) for p in pops]
        net = Network.__new__(Network)
        net._setup(self.name, self.description, pops, _checked_projections(pops, projs), self._rank)
        return net

    # -- comparison and display ----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Equal name, description, units and edges (in order), as the unit and edge
        views show them; compared array by array when both nets share a structure."""
        if not isinstance(other, Network):
            return NotImplemented
        if (self.name, self.description, self._names) != (other.name, other.description, other._names):
            return False
        if self._same_structure(other):
            return all(np.array_equal(a.bias, b.bias) and _same(recognition_biases(a), recognition_biases(b))
                       for a, b in zip(self._pops, other._pops)) and \
                all(np.array_equal(a.weights, b.weights) and np.array_equal(_back(a), _back(b))
                    for a, b in zip(self._projs, other._projs))
        return (self.unit_list(), self.edges) == (other.unit_list(), other.edges)

    def _same_structure(self, other: Network) -> bool:
        if len(self._pops) != len(other._pops) or len(self._projs) != len(other._projs):
            return False
        if any((a.units, a.role, a.layer, a.activation) != (b.units, b.role, b.layer, b.activation)
               for a, b in zip(self._pops, other._pops)):
            return False
        if any(self._end[q] != other._end[q] or (a.kind, a.delay) != (b.kind, b.delay)
               or not _same(a.mask, b.mask) for q, (a, b) in enumerate(zip(self._projs, other._projs))):
            return False
        if (self._rank is None) != (other._rank is None):
            return np.array_equal(self._conn.edge, other._conn.edge)
        return self._rank is None or all(np.array_equal(a, b) for a, b in zip(self._rank, other._rank))

    def __repr__(self) -> str:
        kinds = {k: sum(p.n_synapses for p in self._projs if p.kind == k) for k in KINDS}
        extra = f", {kinds['recognition']} recognition" if kinds["recognition"] else ""
        return (f"Network({self.name!r}: {self.n_units} units, {kinds['directed']} directed "
                f"and {kinds['symmetric']} symmetric edges{extra})")


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Both None, or equal arrays (NaN equal to NaN)."""
    return a is None and b is None or a is not None and b is not None and np.array_equal(a, b, equal_nan=True)


def _back(proj: Projection) -> np.ndarray:
    """The synapses post -> pre of a symmetric projection (``weights`` otherwise)."""
    return proj.weights if proj.reverse is None else proj.reverse


def _checked_projections(pops: list[Population], projections: Iterable[Projection]) -> list[Projection]:
    """Each projection checked against the (checked) populations, whose names must differ."""
    by_name: dict[str, Population] = {}
    for p in pops:
        if p.name in by_name:
            raise validation_error(f"duplicate population {p.name!r}", population=p.name)
        by_name[p.name] = p
    return [check_projection(q, by_name) for q in projections]


# -- Network(units, edges): per-unit and per-edge checks, then grouping ------------------
def _checked_order(order: Mapping[str, np.ndarray], projs: list[Projection]) -> list[np.ndarray]:
    """Rank arrays (see from_populations): one per projection, of its shape, -1 exactly
    where there is no synapse, and together every position 0..n-1 once."""
    unknown = set(order) - {p.name for p in projs}
    if unknown:
        raise validation_error(f"edge order for unknown projection {sorted(unknown)[0]!r}")
    ranks, positions = [], []
    for proj in projs:
        rank = np.asarray(order.get(proj.name))
        present = _present(proj)
        if rank.dtype.kind not in "iu" or rank.shape != proj.weights.shape or \
                not np.array_equal(rank < 0, ~present):
            raise validation_error(f"projection {proj.name!r}: its edge order must be integers of shape "
                                   f"{proj.weights.shape}, -1 exactly where there is no synapse",
                                   projection=proj.name)
        ranks.append(rank.astype(np.int64))
        positions.append(ranks[-1][present])
    every = np.sort(np.concatenate(positions)) if positions else np.zeros(0, dtype=np.int64)
    if not np.array_equal(every, np.arange(len(every))):
        raise validation_error(f"the edge order must number the {len(every)} connections 0 to "
                               f"{len(every) - 1}, each once")
    return ranks


def _checked_units(units: Iterable[Unit]) -> list[Unit]:
    out: list[Unit] = []
    seen: dict[str, int] = {}
    for i, unit in enumerate(units):
        if not valid_name(unit.name):
            raise validation_error(f"unit {i + 1}: bad name {unit.name!r} ({NAME_HELP})", unit=i)
        if unit.name in seen:
            raise validation_error(f"duplicate unit {unit.name!r} (units {seen[unit.name] + 1} and {i + 1})",
                                   unit=i)
        bias = _finite(unit.bias, f"unit {unit.name!r}: bias", unit=i)
        check_choice(unit.role, ROLES, f"unit {unit.name!r}: role", unit=i)
        if unit.layer is not None and (isinstance(unit.layer, bool) or not isinstance(unit.layer, int)):
            raise validation_error(f"unit {unit.name!r}: layer must be an integer, got {unit.layer!r}", unit=i)
        rbias = unit.recognition_bias
        if rbias is not None:
            rbias = _finite(rbias, f"unit {unit.name!r}: recognition_bias", unit=i)
        seen[unit.name] = i
        out.append(Unit(unit.name, bias, unit.role, unit.layer, rbias))
    return out


def _checked_edges(edges: Iterable[Edge], index: dict[str, int]) -> list[Edge]:
    out: list[Edge] = []
    n = len(index)
    joined: set[int] = set()  # (recognition?, unit, unit) as one int, both ways: small and fast
    for k, edge in enumerate(edges):
        label = f"edge {edge.source} -> {edge.target}"
        for end in (edge.source, edge.target):
            if end not in index:
                raise validation_error(f"{label}: unknown unit {end!r}", edge=k)
        if edge.source == edge.target:
            raise validation_error(f"{label}: self-loop (a unit cannot connect to itself)", edge=k)
        if edge.kind not in KINDS:  # tested inline: this loop runs once per edge
            check_choice(edge.kind, KINDS, f"{label}: kind", edge=k)
        a, b, rec = index[edge.source], index[edge.target], (edge.kind == "recognition") * n * n
        if rec + a * n + b in joined:
            raise validation_error(f"{label}: duplicate connection between {edge.source!r} and "
                                   f"{edge.target!r}", edge=k)
        weight = _finite(edge.weight, f"{label}: weight", edge=k)
        delay = _finite(edge.delay, f"{label}: delay", edge=k)
        if delay < 0:
            raise validation_error(f"{label}: negative delay {delay}", edge=k)
        back = None
        if edge.weight_reverse is not None:
            if edge.kind != "symmetric":
                raise validation_error(f"{label}: weight_reverse is only for symmetric edges", edge=k)
            back = _finite(edge.weight_reverse, f"{label}: weight_reverse", edge=k)
        joined.update((rec + a * n + b, rec + b * n + a))
        out.append(Edge(edge.source, edge.target, weight, edge.kind, delay, back))
    return out


def _fresh(base: str, taken: set[str], sep: str) -> str:
    """``base``, else ``base{sep}2``, ``base{sep}3``, ...: the first name not taken (now taken)."""
    name = next(n for n in itertools.chain([base], (f"{base}{sep}{k}" for k in itertools.count(2)))
                if n not in taken)
    taken.add(name)
    return name


def _group_units(units: list[Unit]) -> tuple[list[Population], dict[str, tuple[int, int]]]:
    """Consecutive units of one layer and role as one population, named by role (and
    layer); ``where[unit] = (population, index)``."""
    pops: list[Population] = []
    where: dict[str, tuple[int, int]] = {}
    taken: set[str] = set()
    for (layer, role), run in itertools.groupby(units, key=lambda u: (u.layer, u.role)):
        run = list(run)
        rbias = None
        if any(u.recognition_bias is not None for u in run):
            rbias = np.array([np.nan if u.recognition_bias is None else u.recognition_bias for u in run])
        where.update((u.name, (len(pops), k)) for k, u in enumerate(run))
        pops.append(Population(_fresh(role if layer is None else f"{role}{layer}", taken, "_"),
                               tuple(u.name for u in run), np.array([u.bias for u in run], dtype=np.float64),
                               role, layer, "logistic", rbias))
    return pops, where


_ARROWS = {"directed": "->", "symmetric": "<->", "recognition": "=>"}


def _group_edges(edges: list[Edge], pops: list[Population],
                 where: dict[str, tuple[int, int]]) -> tuple[list[Projection], list[np.ndarray]]:
    """The edges between two populations of one kind and delay as one projection, and
    each synapse's position in ``edges``."""
    groups: dict[tuple, list[int]] = {}
    for k, e in enumerate(edges):
        groups.setdefault((where[e.source][0], where[e.target][0], e.kind, e.delay), []).append(k)
    projs, ranks, taken = [], [], set()
    for (a, b, kind, delay), ks in groups.items():
        group = [edges[k] for k in ks]
        i = np.array([where[e.source][1] for e in group], dtype=np.intp)
        j = np.array([where[e.target][1] for e in group], dtype=np.intp)
        shape = (pops[a].size, pops[b].size)
        W = np.zeros(shape)
        W[i, j] = [e.weight for e in group]
        mask = np.zeros(shape, dtype=bool)
        mask[i, j] = True
        reverse = None
        if any(e.weight_reverse is not None for e in group):
            reverse = W.copy()
            reverse[i, j] = [e.weight if e.weight_reverse is None else e.weight_reverse for e in group]
        rank = np.full(shape, -1, dtype=np.int64)
        rank[i, j] = ks
        name = _fresh(f"{pops[a].name}{_ARROWS[kind]}{pops[b].name}", taken, " #")
        projs.append(Projection(name, pops[a].name, pops[b].name, W, kind, None if mask.all() else mask,
                                reverse, delay))
        ranks.append(rank)
    return projs, ranks
