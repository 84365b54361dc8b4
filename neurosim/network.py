"""Network: stochastic binary units joined by directed or symmetric edges.

A Network wraps a :class:`networkx.DiGraph`. A directed edge is one synapse, parent to
child (a belief-net connection). A symmetric edge is two synapses, one each way, that
start equal (a Boltzmann connection); whether they stay equal is something learning
measures, not something the Network assumes. A recognition edge is a bottom-up
synapse of a Helmholtz machine (Dayan et al. 1995): it is kept in a graph of its own
(``recognition``), takes no part in the generative model, and is used by wake-sleep.

Validation happens once, when the Network is built; every error names its culprit.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Mapping, NamedTuple

import networkx as nx
import numpy as np

from .errors import EvidenceError, ValidationError

__all__ = ["Unit", "Edge", "Network", "NetArrays", "ROLES", "KINDS"]

ROLES = ("visible", "hidden", "label")
KINDS = ("directed", "symmetric", "recognition")
_NAME_HELP = "letters (any script), digits, _ . -; not starting with a digit, . or -"


def _valid_name(name: object) -> bool:
    """A unit name: a Python identifier (Unicode letters and digits, ``_``; no leading
    digit) that may also hold ``.`` and ``-`` after its first character. Never a space,
    ``=`` or ``,``, so ``--evidence NAME=V`` and bit strings stay unambiguous."""
    return (isinstance(name, str) and name[:1] not in ("", ".", "-")
            and name.replace(".", "_").replace("-", "_").isidentifier())


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


def _error(message: str, *, unit: int | None = None, edge: int | None = None) -> ValidationError:
    err = ValidationError(message)
    err.unit_index, err.edge_index = unit, edge
    return err


def _finite(value: object, what: str, **where: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(f"{what} must be a number, got {value!r}", **where)
    if not math.isfinite(value):
        raise _error(f"{what} is {value}, must be finite", **where)
    return float(value)


class Network:
    """A validated graph of stochastic binary units.

    Parameters
    ----------
    units : iterable of Unit
        In order: this order is the unit order everywhere (bit strings, arrays).
    edges : iterable of Edge
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
        for what, text in (("name", name), ("description", description)):
            if not isinstance(text, str) or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
                raise _error(f"network {what} must be Unicode text, got {text!r}")
        self.name = name
        self.description = description
        self._units: list[Unit] = []
        self._index: dict[str, int] = {}
        self._edges: list[Edge] = []
        self.graph = nx.DiGraph()
        self.recognition = nx.DiGraph()
        for i, unit in enumerate(units):
            self._add_unit(i, unit)
        for k, edge in enumerate(edges):
            self._add_edge(k, edge)
        self._check_acyclic()
        self._check_chain_graph()

    # -- building and validation -------------------------------------------------
    def _add_unit(self, i: int, unit: Unit) -> None:
        if not _valid_name(unit.name):
            raise _error(f"unit {i + 1}: bad name {unit.name!r} ({_NAME_HELP})", unit=i)
        if unit.name in self._index:
            raise _error(f"duplicate unit {unit.name!r} (units {self._index[unit.name] + 1} "
                         f"and {i + 1})", unit=i)
        bias = _finite(unit.bias, f"unit {unit.name!r}: bias", unit=i)
        if unit.role not in ROLES:
            raise _error(f"unit {unit.name!r}: role {unit.role!r} is not one of {', '.join(ROLES)}",
                         unit=i)
        if unit.layer is not None and (isinstance(unit.layer, bool) or not isinstance(unit.layer, int)):
            raise _error(f"unit {unit.name!r}: layer must be an integer, got {unit.layer!r}", unit=i)
        rbias = unit.recognition_bias
        if rbias is not None:
            rbias = _finite(rbias, f"unit {unit.name!r}: recognition_bias", unit=i)
        unit = Unit(unit.name, bias, unit.role, unit.layer, rbias)
        self._index[unit.name] = i
        self._units.append(unit)
        self.graph.add_node(unit.name, bias=bias, role=unit.role, layer=unit.layer, index=i)
        self.recognition.add_node(unit.name)

    def _add_edge(self, k: int, edge: Edge) -> None:
        label = f"edge {edge.source} -> {edge.target}"
        for end in (edge.source, edge.target):
            if end not in self._index:
                raise _error(f"{label}: unknown unit {end!r}", edge=k)
        if edge.source == edge.target:
            raise _error(f"{label}: self-loop (a unit cannot connect to itself)", edge=k)
        if edge.kind not in KINDS:
            raise _error(f"{label}: kind {edge.kind!r} is not one of {', '.join(KINDS)}", edge=k)
        graph = self.recognition if edge.kind == "recognition" else self.graph
        if graph.has_edge(edge.source, edge.target) or graph.has_edge(edge.target, edge.source):
            raise _error(f"{label}: duplicate connection between {edge.source!r} and "
                         f"{edge.target!r}", edge=k)
        weight = _finite(edge.weight, f"{label}: weight", edge=k)
        delay = _finite(edge.delay, f"{label}: delay", edge=k)
        if delay < 0:
            raise _error(f"{label}: negative delay {delay}", edge=k)
        back = None
        if edge.weight_reverse is not None:
            if edge.kind != "symmetric":
                raise _error(f"{label}: weight_reverse is only for symmetric edges", edge=k)
            back = _finite(edge.weight_reverse, f"{label}: weight_reverse", edge=k)
        self._edges.append(Edge(edge.source, edge.target, weight, edge.kind, delay, back))
        graph.add_edge(edge.source, edge.target, weight=weight, kind=edge.kind, delay=delay, edge=k)
        if edge.kind == "symmetric":
            self.graph.add_edge(edge.target, edge.source, weight=weight if back is None else back,
                                kind="symmetric", delay=delay, edge=k)

    def _directed_view(self) -> nx.DiGraph:
        return nx.subgraph_view(self.graph, filter_edge=lambda u, v: self.graph[u][v]["kind"] == "directed")

    def _check_acyclic(self) -> None:
        for what, graph in (("directed", self._directed_view()), ("recognition", self.recognition)):
            try:
                cycle = nx.find_cycle(graph)
            except nx.NetworkXNoCycle:
                continue
            path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            raise _error(f"{what} cycle: {path}", edge=graph[cycle[-1][0]][cycle[-1][1]]["edge"])

    def _check_chain_graph(self) -> None:
        for i, unit in enumerate(self._units):
            parents, partners = self.parents(unit.name), self.neighbours(unit.name)
            if parents and partners:
                raise _error(
                    f"unit {unit.name!r} has directed parents ({', '.join(parents)}) and symmetric "
                    f"edges ({', '.join(partners)}); a unit may receive directed edges or take part "
                    "in symmetric ones, not both", unit=i)

    # -- read access ---------------------------------------------------------------
    @property
    def units(self) -> list[str]:
        """Unit names, in order."""
        return [u.name for u in self._units]

    @property
    def n_units(self) -> int:
        return len(self._units)

    def unit(self, name: str) -> Unit:
        return self._units[self.index(name)]

    def unit_list(self) -> list[Unit]:
        return list(self._units)

    @property
    def edges(self) -> list[Edge]:
        """Each connection once, in the order given, with its current weights."""
        out = []
        for e in self._edges:
            w = self._graph(e.kind)[e.source][e.target]["weight"]
            back = None
            if e.kind == "symmetric":
                wb = self.graph[e.target][e.source]["weight"]
                back = None if wb == w else wb
            out.append(Edge(e.source, e.target, w, e.kind, e.delay, back))
        return out

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise ValidationError(f"unknown unit {name!r} in network {self.name!r}") from None

    def bias(self, name: str) -> float:
        return self.graph.nodes[name]["bias"]

    def _graph(self, kind: str) -> nx.DiGraph:
        return self.recognition if kind == "recognition" else self.graph

    def weight(self, pre: str, post: str, recognition: bool = False) -> float:
        """Weight of the synapse ``pre -> post`` (of the recognition pathway if asked)."""
        graph = self.recognition if recognition else self.graph
        if not graph.has_edge(pre, post):
            kind = "recognition synapse" if recognition else "synapse"
            raise ValidationError(f"no {kind} {pre} -> {post} in network {self.name!r}")
        return graph[pre][post]["weight"]

    def parents(self, name: str) -> list[str]:
        return [u for u in self.graph.predecessors(name) if self.graph[u][name]["kind"] == "directed"]

    def children(self, name: str) -> list[str]:
        return [v for v in self.graph.successors(name) if self.graph[name][v]["kind"] == "directed"]

    def neighbours(self, name: str) -> list[str]:
        """Units joined to ``name`` by a symmetric edge."""
        return [v for v in self.graph.successors(name) if self.graph[name][v]["kind"] == "symmetric"]

    def recognition_parents(self, name: str) -> list[str]:
        """Units whose recognition synapses reach ``name`` (the layer below, in a
        Helmholtz machine)."""
        return list(self.recognition.predecessors(name))

    @property
    def has_recognition(self) -> bool:
        return self.recognition.number_of_edges() > 0

    def synapses(self) -> Iterator[tuple[str, str, dict]]:
        """Every synapse ``(pre, post, data)``: a symmetric edge gives two."""
        return iter(self.graph.edges(data=True))

    @property
    def has_symmetric(self) -> bool:
        return any(e.kind == "symmetric" for e in self._edges)

    @property
    def has_directed(self) -> bool:
        return any(e.kind == "directed" for e in self._edges)

    def layers(self) -> list[list[str]]:
        """Groups of units updated together by layer-parallel schedules, top layer first.

        If every unit has a ``layer`` these are the layers (highest number first).
        Otherwise a greedy colouring of the moral graph (each unit joined to its
        parents, children, symmetric neighbours and co-parents), so that the units
        of a group are conditionally independent given all others.
        """
        if all(u.layer is not None for u in self._units):
            levels = sorted({u.layer for u in self._units}, reverse=True)
            return [[u.name for u in self._units if u.layer == lv] for lv in levels]
        colour = nx.greedy_color(self.moral_graph(), strategy="largest_first")
        groups: dict[int, list[str]] = {}
        for name in self.units:
            groups.setdefault(colour[name], []).append(name)
        return [groups[c] for c in sorted(groups)]

    def moral_graph(self) -> nx.Graph:
        """Undirected graph joining every unit to its Markov blanket."""
        moral = nx.Graph()
        moral.add_nodes_from(self.units)
        moral.add_edges_from(self.graph.to_undirected().edges())
        for name in self.units:
            parents = self.parents(name)
            moral.add_edges_from((a, b) for i, a in enumerate(parents) for b in parents[i + 1:])
        return moral

    def generations(self) -> list[list[str]]:
        """Topological generations of the directed part: ancestral order, roots first."""
        return [sorted(g, key=self.index) for g in nx.topological_generations(self._directed_view())]

    def evidence_indices(self, evidence: Mapping[str, object] | None) -> dict[int, int]:
        """Check evidence ``{unit: 0|1}`` and map it to unit indices."""
        out: dict[int, int] = {}
        for name, value in (evidence or {}).items():
            if name not in self._index:
                raise EvidenceError(f"evidence on unknown unit {name!r} (units: {', '.join(self.units)})")
            if isinstance(value, bool) or value not in (0, 1):
                raise EvidenceError(f"evidence {name}={value!r}: a unit's state must be 0 or 1")
            out[self._index[name]] = int(value)
        return out

    def to_arrays(self) -> NetArrays:
        n = self.n_units
        W = np.zeros((n, n))
        sym = np.zeros((n, n), dtype=bool)
        directed = np.zeros((n, n), dtype=bool)
        for pre, post, data in self.graph.edges(data=True):
            i, j = self._index[pre], self._index[post]
            W[i, j] = data["weight"]
            sym[i, j] = data["kind"] == "symmetric"
            directed[i, j] = data["kind"] == "directed"
        return NetArrays(np.array([u.bias for u in self._units]), W, sym, directed)


    # -- write access (learning) ---------------------------------------------------
    def set_weight(self, pre: str, post: str, value: float, recognition: bool = False) -> None:
        """Set one synapse; for a symmetric edge the reverse synapse is left alone."""
        self.weight(pre, post, recognition)
        graph = self.recognition if recognition else self.graph
        graph[pre][post]["weight"] = _finite(value, f"synapse {pre} -> {post}: weight")

    def set_recognition_bias(self, name: str, value: float) -> None:
        i = self.index(name)
        self._units[i] = replace(self._units[i], recognition_bias=_finite(
            value, f"unit {name!r}: recognition_bias"))

    def set_bias(self, name: str, value: float) -> None:
        i = self.index(name)
        bias = _finite(value, f"unit {name!r}: bias")
        self._units[i] = replace(self._units[i], bias=bias)
        self.graph.nodes[name]["bias"] = bias

    def with_delay(self, delay: float) -> Network:
        """A copy in which every edge has the same message ``delay`` (in sweeps)."""
        edges = [Edge(e.source, e.target, e.weight, e.kind, delay, e.weight_reverse) for e in self.edges]
        return Network(self._units, edges, self.name, self.description)

    # -- comparison and display ----------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (self.name, self.description, self._units, self.edges) == \
               (other.name, other.description, other._units, other.edges)

    def __repr__(self) -> str:
        kinds = {k: sum(e.kind == k for e in self._edges) for k in KINDS}
        extra = f", {kinds['recognition']} recognition" if kinds["recognition"] else ""
        return (f"Network({self.name!r}: {self.n_units} units, {kinds['directed']} directed "
                f"and {kinds['symmetric']} symmetric edges{extra})")
