"""Drawings of a Network: units as nodes coloured by P(on), connections by sign and size.

Plot functions take and return matplotlib ``Axes``; nothing here calls ``plt.show()``
or chooses a backend (pyplot falls back to Agg on a machine with no display).

Example
-------
>>> from neurosim import load_model, posterior
>>> from neurosim.viz import draw_network
>>> net = load_model("models/earthquake_truck.toml")
>>> marginals = posterior(net, {"house_jumps": 1}).marginals()
>>> ax = draw_network(net, marginals=marginals, evidence={"house_jumps": 1})
>>> ax.get_title()
'earthquake_truck'
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch
from matplotlib.text import Annotation

from ..errors import ValidationError
from ..network import Edge, Network, Unit

__all__ = ["layout", "draw_network", "Connection", "connections", "edge_widths", "sign_colours",
           "bends", "draw_connections", "label_units", "check_drawable", "drawable", "population_summary", "CMAP", "POSITIVE", "NEGATIVE",
           "NEUTRAL", "NODE_SIZE", "MAX_DRAW_UNITS", "MAX_DRAW_CONNECTIONS"]

CMAP = "viridis"          # P(unit on): dark = off, bright = on
POSITIVE = "#d62728"      # red: excitatory connection
NEGATIVE = "#1f77b4"      # blue: inhibitory connection
NEUTRAL = "#d9d9d9"       # nodes without marginals
NODE_SIZE = 1200.0        # marker area in pt^2
MAX_WIDTH = 4.0           # line width (pt) of the strongest connection
MIN_WIDTH = 0.5           # so that near-zero weights stay visible
MAX_EDGE_LABELS = 12      # weights are written on the edges of nets this small
MAX_DRAW_UNITS = 200         # larger nets are refused (check_drawable): unreadable, and their
MAX_DRAW_CONNECTIONS = 2000  # bends (connections x units) and sampled colours take minutes
_CLEARANCE = 0.1          # a straight edge closer than this to another node is bent ...
_BEND = 0.3               # ... into an arc of this arc3 curvature


class Connection(NamedTuple):
    """One drawn line: a directed edge, or a symmetric edge (two synapses) once.

    ``weight_reverse`` is the synapse target->source of a symmetric edge whose two
    synapses differ (else None); the line is drawn for their mean, ``strength``.
    """

    source: str
    target: str
    weight: float
    kind: str
    weight_reverse: float | None = None

    @property
    def strength(self) -> float:
        """The weight the line is drawn for (coloured by its sign, as wide as its size)."""
        return self.weight if self.weight_reverse is None else (self.weight + self.weight_reverse) / 2

    @property
    def label(self) -> str:
        """The weight as written on the line: ``"w"``, or ``"w / w_reverse"``."""
        back = "" if self.weight_reverse is None else f" / {self.weight_reverse:g}"
        return f"{self.weight:g}{back}"


# -- layout ------------------------------------------------------------------------------
def _rows(net: Network) -> list[list[str]] | None:
    """Rows of units, top row first, or None when the net suggests no rows."""
    units = net.unit_list()
    if all(u.layer is not None for u in units):
        return net.layers()
    if not net.has_symmetric:
        return net.generations()
    hidden = [u.name for u in units if u.role == "hidden"]
    shown = [u.name for u in units if u.role != "hidden"]
    return [hidden, shown] if hidden and shown else None


def layout(net: Network) -> dict[str, tuple[float, float]]:
    """Positions of the units: rows of layers, generations or roles, else a spring layout.

    Rows, top to bottom, are the layers (highest first) if every unit has one; else
    the topological generations of a purely directed net (roots at the top); else
    hidden units above visible and label units. The units of a row are one apart and
    centred on x = 0; rows are one apart. Without rows, ``networkx.spring_layout``
    with seed 0. Deterministic.

    Parameters
    ----------
    net : Network

    Returns
    -------
    dict
        ``{unit name: (x, y)}``.

    Examples
    --------
    >>> from neurosim import load_model
    >>> layout(load_model("models/earthquake_truck.toml"))
    {'earthquake': (-0.5, 1.0), 'truck': (0.5, 1.0), 'house_jumps': (0.0, 0.0)}
    """
    rows = _rows(net)
    if rows is None:
        spring = nx.spring_layout(net.graph.to_undirected(), seed=0)
        return {name: (float(spring[name][0]), float(spring[name][1])) for name in net.units}
    pos = {}
    for k, row in enumerate(rows):
        y = float(len(rows) - 1 - k)
        for i, name in enumerate(row):
            pos[name] = (i - (len(row) - 1) / 2, y)
    return {name: pos[name] for name in net.units}


def check_drawable(net: Network) -> None:
    """ValidationError if ``net`` has more than MAX_DRAW_UNITS units or
    MAX_DRAW_CONNECTIONS connections: refused at once rather than drawn for minutes."""
    n_conns = net.n_edges
    if net.n_units > MAX_DRAW_UNITS or n_conns > MAX_DRAW_CONNECTIONS:
        raise ValidationError(f"{net.name!r} has {net.n_units} units and {n_conns} connections: too large "
                              f"to draw, which takes at most {MAX_DRAW_UNITS} units and "
                              f"{MAX_DRAW_CONNECTIONS} connections")


def population_summary(net: Network) -> Network:
    """``net`` summarised by layer: one unit per population (its bias the population's mean
    bias, its role and layer) and one edge per projection between two populations (its
    kind, its weight the mean over the projection's synapses), named as they are. A
    projection inside one population is left out (it would be a self-loop)."""
    units = [Unit(p.name, float(p.bias.mean()), p.role, p.layer) for p in net.populations]
    edges = [Edge(q.pre, q.post, float(q.weights.sum() / max(q.n_synapses, 1)), q.kind)
             for q in net.projections if q.pre != q.post]
    return Network(units, edges, name=net.name, description=net.description)


def drawable(net: Network) -> tuple[Network, bool]:
    """``(net, False)`` if it can be drawn unit by unit, else ``(population_summary(net),
    True)`` if that can be drawn and shows every projection (none inside a population);
    ValidationError (:func:`check_drawable`) if neither."""
    try:
        check_drawable(net)
        return net, False
    except ValidationError:
        if len(net.populations) == net.n_units or any(q.pre == q.post for q in net.projections):
            raise
        summary = population_summary(net)
        check_drawable(summary)
        return summary, True


# -- pieces shared with the animation -----------------------------------------------------
def connections(net: Network) -> list[Connection]:
    """Every connection of ``net`` once, in the order of ``net.edges``."""
    return [Connection(e.source, e.target, e.weight, e.kind, e.weight_reverse) for e in net.edges]


def edge_widths(conns: list[Connection]) -> np.ndarray:
    """Line widths proportional to |weight|, the largest ``MAX_WIDTH`` (at least ``MIN_WIDTH``)."""
    w = np.abs([c.strength for c in conns])
    top = w.max() if len(w) else 0.0
    scaled = MAX_WIDTH * w / top if top > 0 else np.zeros_like(w)
    return np.maximum(scaled, MIN_WIDTH)


def sign_colours(conns: list[Connection]) -> list[str]:
    return [POSITIVE if c.strength > 0 else NEGATIVE if c.strength < 0 else "0.5" for c in conns]


def _passes_a_node(a: np.ndarray, b: np.ndarray, others: np.ndarray) -> bool:
    """Whether the segment a-b passes within ``_CLEARANCE`` of any point of ``others``."""
    d = b - a
    t = np.clip((others - a) @ d / (d @ d), 0.0, 1.0)
    return bool(len(others)) and np.min(np.linalg.norm(a + t[:, None] * d - others, axis=1)) < _CLEARANCE


def bends(conns: list[Connection], pos: Mapping[str, tuple[float, float]]) -> list[float]:
    """``arc3`` curvature of each connection: 0 (straight) unless a straight line would
    run through another node (e.g. between non-adjacent units of one row); then an arc
    bowed towards the middle of the drawing."""
    if not conns:
        return []
    xy = {name: np.asarray(p, dtype=float) for name, p in pos.items()}
    centre = np.mean(list(xy.values()), axis=0)
    out = []
    for c in conns:
        a, b = xy[c.source], xy[c.target]
        others = np.array([p for name, p in xy.items() if name not in (c.source, c.target)])
        if not _passes_a_node(a, b, others.reshape(-1, 2)):
            out.append(0.0)
            continue
        # arc3 puts its control point at midpoint + rad * (dy, -dx)
        inward = (centre - (a + b) / 2) @ np.array([b[1] - a[1], a[0] - b[0]])
        out.append(-_BEND if inward < 0 else _BEND)
    return out


def draw_connections(ax: Axes, conns: list[Connection], pos: Mapping[str, tuple[float, float]],
                     colours: list, widths: np.ndarray, node_size: float = NODE_SIZE
                     ) -> list[FancyArrowPatch]:
    """Draw each connection as one patch (an arrow if directed, a dashed arrow if a
    recognition connection, a plain line if symmetric).

    A connection that would run through another node is drawn as an arc (:func:`bends`).
    Returns the patches in the order of ``conns``, so callers can restyle them.
    """
    graph = nx.DiGraph([(c.source, c.target) for c in conns])
    patches: list[FancyArrowPatch | None] = [None] * len(conns)
    for kind, style, line in (("directed", "-|>", "solid"), ("symmetric", "-", "solid"),
                              ("recognition", "-|>", "dashed")):
        idx = [k for k, c in enumerate(conns) if c.kind == kind]
        if not idx:
            continue
        drawn = nx.draw_networkx_edges(
            graph, pos, edgelist=[(conns[k].source, conns[k].target) for k in idx], ax=ax,
            arrows=True, arrowstyle=style, arrowsize=15, node_size=node_size, style=line,
            edge_color=[colours[k] for k in idx], width=[float(widths[k]) for k in idx])
        for k, patch in zip(idx, drawn):
            patches[k] = patch
    for patch, rad in zip(patches, bends(conns, pos)):
        patch.set_connectionstyle("arc3", rad=rad)
    return patches


def _label_edges(ax: Axes, conns: list[Connection], pos: Mapping[str, tuple[float, float]]) -> None:
    """Write each connection's weight on it (on the arc where it is bent)."""
    graph = nx.DiGraph([(c.source, c.target) for c in conns])
    rads = bends(conns, pos)
    for rad in sorted(set(rads)):
        nx.draw_networkx_edge_labels(
            graph, pos, ax=ax, font_size=8, rotate=False, node_size=NODE_SIZE,
            connectionstyle=f"arc3,rad={rad}",
            edge_labels={(c.source, c.target): c.label for c, r in zip(conns, rads) if r == rad})


def label_units(ax: Axes, net: Network, pos: Mapping[str, tuple[float, float]],
                clamp: Mapping[int, int], node_size: float = NODE_SIZE) -> list[Annotation]:
    """Write each unit's name, and its bias in small type, just below its node.

    Returns the text artists.
    """
    below = math.sqrt(node_size) / 2 + 2  # node radius in points, and a gap
    box = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8)
    texts = []
    for i, unit in enumerate(net.unit_list()):
        extra = f", clamped={clamp[i]}" if i in clamp else ""
        for text, size, drop in ((unit.name, 9, below), (f"b={unit.bias:g}{extra}", 7, below + 12)):
            texts.append(ax.annotate(text, pos[unit.name], xytext=(0, -drop), textcoords="offset points",
                                     ha="center", va="top", fontsize=size, bbox=box, zorder=4))
    return texts


# -- the drawing --------------------------------------------------------------------------
def _probabilities(net: Network, marginals: Mapping[str, float],
                   clamp: Mapping[int, int]) -> np.ndarray:
    for name in marginals:
        net.index(name)
    p = np.empty(net.n_units)
    for i, name in enumerate(net.units):
        if i in clamp:
            p[i] = clamp[i]
        elif name not in marginals:
            raise ValidationError(f"marginals: no probability for unit {name!r}")
        else:
            p[i] = marginals[name]
        if not 0.0 <= p[i] <= 1.0:
            raise ValidationError(f"marginals: P({name} on) = {p[i]:g} is not in [0, 1]")
    return p


def draw_network(net: Network, ax: Axes | None = None, marginals: Mapping[str, float] | None = None,
                 evidence: Mapping[str, int] | None = None, title: str | None = None) -> Axes:
    """Draw ``net``: nodes coloured by P(unit on), connections by sign and strength.

    Nodes sit at :func:`layout` and are labelled with their name and bias. With
    ``marginals`` the face colour of a node is ``CMAP`` of its probability of being
    on (a colorbar says so); clamped ``evidence`` units take their clamped value and
    a thick outline. Connections are red if excitatory, blue if inhibitory, with
    widths proportional to |weight|; directed ones are arrows, symmetric ones a single
    line each. Nets of at most 12 connections have their weights written on the edges.

    Parameters
    ----------
    net : Network
    ax : matplotlib Axes, optional
        Drawn into; default a new figure's.
    marginals : {unit: probability}, optional
        P(unit on) for every unclamped unit (e.g. ``posterior(net, ev).marginals()``).
        Without it nodes are a neutral grey.
    evidence : {unit: 0 | 1}, optional
        Clamped units.
    title : str, optional
        Default: the net's name.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    ValidationError
        ``marginals`` misses a unit, names an unknown one, or holds a value outside
        [0, 1]; ``evidence`` names an unknown unit or a value other than 0 or 1; the
        net is too large to draw (:func:`check_drawable`).
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    check_drawable(net)
    clamp = net.evidence_indices(evidence)
    pos = layout(net)
    if ax is None:  # rows 1.5 inches apart, so that nodes and their labels do not overlap
        ax = plt.subplots(figsize=(6.4, max(4.8, 1.5 * len({y for _, y in pos.values()}))))[1]
    cmap = plt.get_cmap(CMAP)
    if marginals is None:
        faces = [NEUTRAL] * net.n_units
    else:
        faces = cmap(_probabilities(net, marginals, clamp))
        ax.figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=ax, shrink=0.8,
                           label="P(unit on)")
    conns = connections(net)
    draw_connections(ax, conns, pos, sign_colours(conns), edge_widths(conns))
    if len(conns) <= MAX_EDGE_LABELS:
        _label_edges(ax, conns, pos)
    nx.draw_networkx_nodes(net.graph, pos, nodelist=net.units, ax=ax, node_size=NODE_SIZE,
                           node_color=faces, edgecolors="black",
                           linewidths=[3.5 if i in clamp else 1.0 for i in range(net.n_units)])
    label_units(ax, net, pos, clamp)
    ax.set_title(net.name if title is None else title)
    ax.margins(x=0.2, y=0.3)
    ax.set_axis_off()
    return ax
