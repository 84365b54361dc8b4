"""Compile a Network to matrices: index maps, weight blocks, biases and an update plan.

The plan is a list of steps, each updating a group of units in parallel:

* **block Gibbs** for bipartite symmetric parts (an RBM: all hidden, then all visible);
* **chromatic Gibbs** for general symmetric parts: a graph colouring (networkx), so the
  units of a colour share no edge and updating them together is exact Gibbs;
* **ancestral** order for directed parts: topological generations, roots first, each
  unit drawn from eq. 1 of Hinton (2005), ``p_i = sigmoid(b_i + sum_j s_j w_ji)``;
* **mixed** nets (a DBN: symmetric top, directed below) get both: a Gibbs sweep of the
  root units, then an ancestral pass down. Units with directed parents never sit in a
  symmetric part (Network checks this), so the directed part is exactly sampled given
  the roots.

A softmax population (a one-of-n group, a DBN's labels) is one variable: its free units
always sit in one step, which draws exactly one of them on from the softmax of their
inputs (or none where another member is on); colourings treat the group as one node.
A linear population's units (real-valued, the deep autoencoder's code) are drawn as
their mean plus unit-variance Gaussian noise; a Neal plan (below) refuses them.

Evidence on a unit with parents makes its parents dependent (explaining away); then
every free unit is Gibbs-sampled by Neal's (1992) conditional, eq. 1 plus one term per
child, over a colouring of the moral graph: units of a colour share no child, so each
child's input changes through one unit of the group only.

Precision: unit i's total input is bounded by ``M_i = |b_i| + sum_j |w_ji|`` (its
incoming synapses). float32 rounds that input to about ``6e-8 * M_i`` and overflows near
3.4e38 (then ``inf - inf`` is NaN), so ``compile`` uses float32, the fast default, only
while every ``M_i <= F32_MAX_INPUT = 1e4`` (log-odds good to about 1e-3), and float64
otherwise, as exact inference does. An explicit ``dtype=float32`` beyond that bound, or
any ``M_i > F64_MAX_INPUT = 1e300`` (where float64 sums may overflow), is refused with a
:class:`ValidationError` naming the unit and its largest incoming parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import networkx as nx
import numpy as np

from ..errors import ValidationError
from ..network import NetArrays, Network

__all__ = ["compile", "CompiledNet", "Plan", "Step", "columns", "F32_MAX_INPUT", "F64_MAX_INPUT"]

F32_MAX_INPUT = 1e4     # largest |b_i| + sum_j |w_ji| computed in float32 (module doc)
F64_MAX_INPUT = 1e300   # beyond this, float64 sums of a unit's input may overflow

_MAX_RUNS = 4  # source rows in at most this many contiguous runs: one matmul per run


def columns(indices: Iterable[int]) -> slice | np.ndarray:
    """``indices`` as a slice when they form one contiguous run (a view, no copy)."""
    idx = np.asarray(sorted(indices), dtype=np.intp)
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _runs(rows: np.ndarray) -> list[slice | np.ndarray]:
    """Contiguous runs of sorted ``rows``; one gathered index array if they are many."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) > 1) + 1
    parts = np.split(rows, breaks)
    if len(parts) > _MAX_RUNS:
        return [rows]
    return [slice(int(p[0]), int(p[-1]) + 1) for p in parts]


@dataclass(frozen=True)
class Neal:
    """Child terms of one Gibbs group: ``children`` (columns), ``parent`` (for each
    child, the position in the group of its one parent there), ``incidence`` (children
    x group, 1 where that parent is), ``rows``: all parents of the children."""

    children: np.ndarray
    parent: np.ndarray
    incidence: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True, eq=False)  # hashed by identity: samplers cache weight blocks per step
class Step:
    """Update ``units`` together from ``sources`` (row runs feeding them) and, in Neal
    mode, their children. ``fanout``/``analog_fanout``: messages the event engine
    would send per state change of each unit."""

    kind: str                         # "gibbs" | "ancestral"
    units: slice | np.ndarray
    index: np.ndarray                 # the same units as an index array
    sources: tuple
    neal: Neal | None
    fanout: np.ndarray
    analog_fanout: np.ndarray
    groups: tuple = ()                # softmax groups: (positions in the step, members outside it)
    linear: np.ndarray | None = None  # positions in the step of linear units (None: there are none)


@dataclass(frozen=True)
class Plan:
    """``mode`` is block, chromatic, ancestral, mixed or neal (see the module doc)."""

    mode: str
    steps: tuple[Step, ...]
    free: np.ndarray

    def describe(self, units: list[str]) -> str:
        return f"{self.mode}: " + " | ".join(
            f"{s.kind}({', '.join(units[i] for i in s.index[:4])}{', ...' if len(s.index) > 4 else ''})"
            for s in self.steps)


def _input_bounds(arrays: NetArrays) -> np.ndarray:
    """``M_i = |b_i| + sum_j |w_ji|``: the largest total input unit i can receive."""
    with np.errstate(over="ignore"):
        return np.abs(arrays.bias) + np.abs(arrays.weights).sum(axis=0)


def _too_large(net: Network, arrays: NetArrays, i: int, bound: float, limit: float, why: str) -> ValidationError:
    """The error naming unit ``i`` and its largest incoming parameter."""
    j = int(np.argmax(np.abs(arrays.weights[:, i])))
    w, b = float(arrays.weights[j, i]), float(arrays.bias[i])
    largest = f"bias {b!r}" if abs(b) >= abs(w) else f"edge {net.units[j]} -> {net.units[i]}, weight {w!r}"
    return ValidationError(f"compiled backend: unit {net.units[i]!r} has |bias| + sum |weight in| = "
                           f"{bound:.3g} (largest: {largest}), over {limit:g}: {why}")


def choose_dtype(net: Network, arrays: NetArrays, dtype=None) -> np.dtype:
    """float32 when every input bound ``M_i`` is within F32_MAX_INPUT, else float64;
    ``dtype`` given: that one, if the bounds allow it (module doc)."""
    bounds = _input_bounds(arrays)
    i = int(np.argmax(bounds)) if len(bounds) else 0
    top = float(bounds[i]) if len(bounds) else 0.0
    if not top <= F64_MAX_INPUT:
        raise _too_large(net, arrays, i, top, F64_MAX_INPUT, "sums of its input may overflow even in float64")
    wide = top > F32_MAX_INPUT
    if dtype is None:
        return np.dtype(np.float64 if wide else np.float32)
    dtype = np.dtype(dtype)
    if wide and dtype.itemsize < 8:
        raise _too_large(net, arrays, i, top, F32_MAX_INPUT,
                         f"{dtype} would round or overflow its input; use float64 (the default picks it)")
    return dtype


class CompiledNet:
    """A Network as arrays: ``W[i, j]`` the synapse i -> j (a symmetric edge gives both
    directions), ``b`` the biases, in the Network's unit order; float32 unless the
    parameters need float64 (:func:`choose_dtype`).

    ``plan(clamped)`` returns the update plan for a set of clamped unit indices.
    Weights may change (training): through :meth:`set_weights`; plans keep only indices.
    """

    def __init__(self, net: Network, dtype=None) -> None:
        self.network = net
        self.units = net.units
        self.index = {u: i for i, u in enumerate(self.units)}
        self.n = net.n_units
        arrays = net.to_arrays()
        self.dtype = choose_dtype(net, arrays, dtype)
        self.W = arrays.weights.astype(self.dtype)
        self.b = arrays.bias.astype(self.dtype)
        self.symmetric = arrays.symmetric
        self.directed = arrays.directed
        self.incoming = arrays.symmetric | arrays.directed
        self.has_parents = self.directed.any(axis=0)
        self.groups = net.softmax_groups()
        self.linear = net.linear_units()
        self.version = 0
        self._plans: dict[frozenset[int], Plan] = {}

    # -- weights -----------------------------------------------------------------------
    def set_weights(self, W: np.ndarray | None = None, b: np.ndarray | None = None) -> None:
        """Replace weights and/or biases (only existing synapses may be non-zero); with
        neither, declare ``W`` and ``b`` changed in place. Either way the version goes up,
        so that chains re-read the weights."""
        if W is not None:
            W = np.asarray(W, dtype=self.dtype)
            if W.shape != self.W.shape:
                raise ValueError(f"weights must have shape {self.W.shape}, got {W.shape}")
            self.W = np.where(self.incoming, W, 0).astype(self.dtype)
        if b is not None:
            self.b = np.asarray(b, dtype=self.dtype).reshape(self.n).copy()
        self.version += 1

    def to_network(self) -> Network:
        """The Network with the current weights and biases written back."""
        return self.network.with_arrays(self.W.astype(np.float64), self.b.astype(np.float64))

    # -- plans -------------------------------------------------------------------------
    def plan(self, clamped: Iterable[int] = ()) -> Plan:
        key = frozenset(int(i) for i in clamped)
        if key not in self._plans:
            self._plans[key] = self._make_plan(key)
        return self._plans[key]

    def _make_plan(self, clamped: frozenset[int]) -> Plan:
        net = self.network
        free = [i for i in range(self.n) if i not in clamped]
        if any(self.has_parents[i] for i in clamped):
            net.refuse_linear("Gibbs sampling with evidence on a unit with parents (Neal's child terms)")
            groups = _colour(self._moral(), free, net, net.moral_graph, self.groups)
            steps = [self._step("gibbs", g, neal=True) for g in self._indices(groups)]
            return Plan("neal", tuple(steps), np.array(free, dtype=np.intp))
        roots = [i for i in free if not self.has_parents[i]]
        groups = _colour(self.symmetric, roots, net, lambda: _symmetric_graph(net), self.groups)
        steps = [self._step("gibbs", g) for g in self._indices(groups)]
        below = [[u for u in gen if self.index[u] not in clamped and self.has_parents[self.index[u]]]
                 for gen in net.generations()]
        steps += [self._step("ancestral", g) for g in self._indices([g for g in below if g])]
        if not net.has_directed:
            mode = "block" if len(groups) <= 2 else "chromatic"
        else:
            mode = "mixed" if net.has_symmetric else "ancestral"
        return Plan(mode, tuple(steps), np.array(free, dtype=np.intp))

    def _moral(self) -> np.ndarray:
        """Adjacency of the moral graph: every synapse either way, and co-parents."""
        D = self.directed.astype(np.float32)
        married = (D @ D.T) > 0
        np.fill_diagonal(married, False)
        return self.incoming | self.incoming.T | married

    def step(self, units: Iterable[str], kind: str = "gibbs") -> Step:
        """A parallel update of ``units`` (exact Gibbs only if they are independent given
        the rest, as in an RBM's layer; procedures such as CD-k ask for it by name)."""
        return self._step(kind, np.array(sorted(self.index[u] for u in units), dtype=np.intp))

    def _indices(self, groups: list[list[str]]) -> list[np.ndarray]:
        return [np.array(sorted(self.index[u] for u in g), dtype=np.intp) for g in groups]

    def _step(self, kind: str, g: np.ndarray, neal: bool = False) -> Step:
        rows = np.flatnonzero(self.incoming[:, g].any(axis=1))
        fanout = self.incoming[g].sum(axis=1).astype(np.int64)
        analog = np.zeros(len(g), dtype=np.int64)
        terms = None
        if neal:  # states also go up to parents; each child re-sends its log-odds to its parents
            terms = self._neal(g)
            n_parents = self.directed.sum(axis=0)
            analog = (self.directed[g] * n_parents).sum(axis=1).astype(np.int64)
            fanout = fanout + n_parents[g]
        softmax = tuple((np.flatnonzero(np.isin(g, G)), np.setdiff1d(G, g)) for G in self.groups
                        if np.isin(G, g).any())
        linear = np.flatnonzero(np.isin(g, self.linear))
        if len(linear):  # a linear unit sends its real value: analog messages
            analog[linear], fanout[linear] = analog[linear] + fanout[linear], 0
        return Step(kind, columns(g), g, tuple(_runs(rows)), terms, fanout, analog, softmax,
                    linear if len(linear) else None)

    def _neal(self, g: np.ndarray) -> Neal | None:
        D = self.directed
        children = np.flatnonzero(D[g].any(axis=0))
        if not len(children):
            return None
        parent = np.array([int(np.flatnonzero(D[g, c])[0]) for c in children], dtype=np.intp)
        incidence = np.zeros((len(children), len(g)), dtype=self.dtype)
        incidence[np.arange(len(children)), parent] = 1
        rows = np.flatnonzero(D[:, children].any(axis=1))
        return Neal(children, parent, incidence, rows)


def _colour(adjacency: np.ndarray, units: list[int], net: Network,
            graph: Callable[[], nx.Graph], softmax: list[np.ndarray] = ()) -> list[list[str]]:
    """Independent sets of the graph ``adjacency`` covering ``units`` (indices): the net's
    layers when they are independent (checked on the array), else, on the networkx
    ``graph()`` with each softmax group's units merged into one node, two sides when
    bipartite (block Gibbs) or a DSATUR colouring."""
    if not units:
        return []
    names = net.units
    if not adjacency[np.ix_(units, units)].any():
        return [[names[i] for i in units]]
    chosen = set(units)
    layered = [[net.index(u) for u in layer if net.index(u) in chosen] for layer in net.layers()]
    layered = [g for g in layered if g]
    if all(p.layer is not None for p in net.populations) and \
            not any(adjacency[np.ix_(g, g)].any() for g in layered):
        return [[names[i] for i in g] for g in layered]
    sub = _ordered_subgraph(graph(), [names[i] for i in units])
    merged = [[names[i] for i in G.tolist() if i in chosen] for G in softmax]
    merged = [m for m in merged if len(m) > 1]
    if merged:
        for first, *rest in merged:
            for other in rest:
                nx.contracted_nodes(sub, first, other, self_loops=False, copy=False)
    if nx.is_bipartite(sub):
        colour = nx.bipartite.color(sub)
    else:
        colour = nx.greedy_color(sub, strategy="DSATUR")
    for first, *rest in merged:
        colour.update(dict.fromkeys(rest, colour[first]))
    groups: dict[int, list[str]] = {}
    for i in units:
        groups.setdefault(colour[names[i]], []).append(names[i])
    return [groups[c] for c in sorted(groups)]


def _ordered_subgraph(graph: nx.Graph, nodes: list[str]) -> nx.Graph:
    """The subgraph on ``nodes``, its nodes and edges in the order given (a networkx
    subgraph view iterates a set, whose order changes with PYTHONHASHSEED, and with it
    the colouring: the same seed would give other numbers in another process)."""
    keep = set(nodes)
    sub = nx.Graph()
    sub.add_nodes_from(nodes)
    sub.add_edges_from((a, b) for a, b in graph.edges(nodes) if b in keep)
    return sub


def _symmetric_graph(net: Network) -> nx.Graph:
    """The symmetric connections as an undirected networkx graph, in synapse order."""
    sym = nx.Graph()
    sym.add_nodes_from(net.units)
    sym.add_edges_from((a, b) for a, b, d in net.synapses() if d["kind"] == "symmetric")
    return sym


def compile(net: Network, dtype=None, pathway: str = "generative") -> CompiledNet:  # noqa: A001
    """Compile a validated Network's ``pathway`` (:meth:`Network.pathway`) to arrays and
    update plans (module doc); ``dtype`` None: float32 unless the parameters need float64."""
    if not isinstance(net, Network):
        raise TypeError(f"compile() takes a neurosim Network, got {type(net).__name__}")
    return CompiledNet(net.pathway(pathway), dtype)
