"""Animated GIF of a run of the event engine: units flip, messages travel.

The run is recorded with a :class:`~neurosim.engine.Trace`, binned into frames
(:func:`replay`) and drawn frame by frame (:func:`animate_network`).

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from neurosim import load_model
>>> from neurosim.viz import animate_network
>>> net = load_model("models/earthquake_truck.toml")
>>> with tempfile.TemporaryDirectory() as d:
...     gif = animate_network(net, pathlib.Path(d) / "run.gif", np.random.default_rng(0),
...                           evidence={"house_jumps": 1}, sweeps=2)
...     gif.stat().st_size > 0
True
"""

from __future__ import annotations

import pathlib
from typing import Callable, Mapping, NamedTuple

import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.text import Text
from PIL import Image

from ..engine import Simulator, Trace
from ..errors import ValidationError
from ..network import Network
from ..outputs import atomic_write
from .draw import (CMAP, NODE_SIZE, Connection, check_drawable, connections, draw_connections, edge_widths,
                   label_units, layout)

__all__ = ["animate_network", "replay", "Replay"]

BINARY_COLOUR = "#ff7f0e"  # an edge that carried a binary message in this frame
ANALOG_COLOUR = "#2ca02c"  # ... an analog one (and no binary one)
IDLE_COLOUR = "0.8"
FLASH_COLOUR = "#ff7f0e"   # ring around a unit that updated in this frame
FLASH_SIZE = 1.6 * NODE_SIZE
_DPI = 80
MAX_FRAME_ARTISTS = 40_000  # frames x (units + connections) drawn: about a minute, frames held in memory


class Replay(NamedTuple):
    """A recorded run binned into frames: row f is the time bin of frame f.

    ``states`` is each unit's state at the end of the bin, ``updated`` whether it
    updated in the bin, ``binary`` and ``analog`` whether each connection carried such
    a message in the bin, and ``n_binary``, ``n_analog`` the messages sent up to the
    end of the bin, one per synapse reached (as the ledger counts them).
    """

    states: np.ndarray
    updated: np.ndarray
    binary: np.ndarray
    analog: np.ndarray
    n_binary: np.ndarray
    n_analog: np.ndarray


def _routes(sim: Simulator, conns: list[Connection]) -> dict[tuple[int, str], list[int]]:
    """``(sender, kind) -> connections`` a message reaches, one entry per synapse.

    A binary message goes along every out-synapse and, in Gibbs mode, up to the
    directed parents (Neal's child state); an analog one goes up to the parents.
    """
    net = sim.net
    by_pair = {frozenset((c.source, c.target)): k for k, c in enumerate(conns)}
    routes = {}
    for name in net.units:
        up = net.parents(name)
        binary = list(net.graph.successors(name)) + (up if sim.mode == "gibbs" else [])
        i = net.index(name)
        routes[(i, "binary")] = [by_pair[frozenset((name, r))] for r in binary]
        routes[(i, "analog")] = [by_pair[frozenset((name, r))] for r in up]
    return routes


def replay(sim: Simulator, trace: Trace, initial: np.ndarray, n_frames: int,
           frames_per_sweep: int) -> Replay:
    """Bin the run recorded in ``trace`` (from ``initial`` states) into ``n_frames`` frames.

    Frame f covers the times ``[f, f + 1) / frames_per_sweep`` (in sweeps).
    """
    conns = connections(sim.net)
    states = np.empty((n_frames, sim.net.n_units), dtype=np.int8)
    updated = np.zeros((n_frames, sim.net.n_units), dtype=bool)
    current = np.array(initial, dtype=np.int8)
    bins = np.floor(trace.times * frames_per_sweep).astype(int)
    k = 0
    for f in range(n_frames):
        while k < len(bins) and bins[k] == f:
            current[trace.units[k]] = trace.states[k]
            updated[f, trace.units[k]] = True
            k += 1
        states[f] = current
    lit = {kind: np.zeros((n_frames, len(conns)), dtype=bool) for kind in ("binary", "analog")}
    sent = {kind: np.zeros(n_frames, dtype=np.int64) for kind in ("binary", "analog")}
    routes = _routes(sim, conns)
    for t, sender, kind in trace.messages:
        f = int(np.floor(t * frames_per_sweep))
        reached = routes[(sender, kind)]
        lit[kind][f, reached] = True
        sent[kind][f] += len(reached)
    return Replay(states, updated, lit["binary"], lit["analog"],
                  np.cumsum(sent["binary"]), np.cumsum(sent["analog"]))


def _legend_handles(cmap: Colormap) -> list[Line2D]:
    dot = dict(marker="o", linestyle="none", markersize=9, markeredgecolor="black")
    return [Line2D([], [], markerfacecolor=cmap(1.0), label="on", **dot),
            Line2D([], [], markerfacecolor=cmap(0.0), label="off", **dot),
            Line2D([], [], markerfacecolor="white", label="updated",
                   **{**dot, "markeredgecolor": FLASH_COLOUR, "markeredgewidth": 2.5}),
            Line2D([], [], color=BINARY_COLOUR, linewidth=3, label="binary message"),
            Line2D([], [], color=ANALOG_COLOUR, linewidth=3, label="analog message")]


class _Scene(NamedTuple):
    """The figure of an animation and the artists that change from frame to frame."""

    fig: Figure
    nodes: PathCollection
    edges: list[FancyArrowPatch]
    texts: list[Text]


def _scene(net: Network, clamp: Mapping[int, int], cmap: Colormap, initial: np.ndarray) -> _Scene:
    fig = Figure(figsize=(5.6, 4.6), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pos = layout(net)
    conns = connections(net)
    edges = draw_connections(ax, conns, pos, [IDLE_COLOUR] * len(conns), edge_widths(conns))
    nodes = nx.draw_networkx_nodes(net.graph, pos, nodelist=net.units, ax=ax, node_size=NODE_SIZE,
                                   node_color=cmap(initial.astype(float)), edgecolors="black")
    labels = label_units(ax, net, pos, clamp, node_size=FLASH_SIZE)
    ax.margins(x=0.2, y=0.3)
    ax.set_axis_off()
    fig.legend(handles=_legend_handles(cmap), loc="lower center", ncol=5, fontsize=7,
               frameon=False, handlelength=1.5, columnspacing=1.0)
    fig.subplots_adjust(bottom=0.1)
    return _Scene(fig, nodes, edges, labels + [ax.set_title("", fontsize=10)])


def _render(scene: _Scene, draw_frame: Callable[[int], None], n_frames: int) -> list[Image.Image]:
    """Draw every frame by blitting: the static parts (legend, axes) are drawn once,
    then each frame restores them and redraws only the artists that change."""
    canvas = scene.fig.canvas
    moving = [*scene.edges, scene.nodes, *scene.texts]  # back to front
    for artist in moving:
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(scene.fig.bbox)
    frames = []
    for f in range(n_frames):
        draw_frame(f)
        canvas.restore_region(background)
        for artist in moving:
            scene.fig.draw_artist(artist)
        rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
        frames.append(rgb.quantize(method=Image.Quantize.FASTOCTREE))
    return frames


def animate_network(net: Network, path: str | pathlib.Path, rng: np.random.Generator,
                    evidence: Mapping[str, int] | None = None, schedule: str = "sweep",
                    sweeps: int = 20, frames_per_sweep: int = 4, fps: float = 8) -> pathlib.Path:
    """Run ``net`` in the event engine for ``sweeps`` sweeps and write the run as a GIF.

    Frame f shows the time bin ``[f, f + 1) / frames_per_sweep``: each node is bright
    if its unit is on and dark if off (``CMAP``) at the end of the bin; a unit that
    updated in the bin is drawn larger with an orange ring; a connection that carried a
    binary message lights up orange, one that carried only an analog message (Neal's
    Gibbs sampling in belief nets) green. The title gives the time and the running
    numbers of binary and analog messages, one per synapse reached, as the simulator's
    ledger counts them (including the messages that set the initial states). Clamped
    units have a thick outline.

    Parameters
    ----------
    net : Network
    path : str or pathlib.Path
        The GIF to write (its name must end in ``.gif``).
    rng : numpy.random.Generator
        Drives the simulator: same seed, same GIF.
    evidence : {unit: 0 | 1}, optional
        Clamped units.
    schedule : str
        A simulator schedule (``"sweep"``, ``"async"``, ``"layer"``, ``"ancestral"``).
    sweeps, frames_per_sweep : int
        The GIF has ``sweeps * frames_per_sweep`` frames.
    fps : float
        Frames per second of the GIF.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValidationError
        Non-positive ``sweeps``, ``frames_per_sweep`` or ``fps``, a path not ending in
        ``.gif``, a net too large to draw (``check_drawable``) or to animate for this many
        frames (``MAX_FRAME_ARTISTS``), or anything the Simulator rejects (schedule,
        evidence).
    OutputError
        The GIF cannot be written (it is written whole or not at all).
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".gif":
        raise ValidationError(f"animate_network writes a GIF; {str(path)!r} does not end in .gif")
    for what, value in (("sweeps", sweeps), ("frames_per_sweep", frames_per_sweep)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{what} must be a positive integer, got {value!r}")
    if not fps > 0:
        raise ValidationError(f"fps must be positive, got {fps!r}")
    check_drawable(net)
    n_frames, n_artists = sweeps * frames_per_sweep, net.n_units + net.n_edges
    if n_frames * n_artists > MAX_FRAME_ARTISTS:
        raise ValidationError(f"animating {net.name!r} for {sweeps} sweeps draws {n_frames} frames of "
                              f"{n_artists} units and connections, over the {MAX_FRAME_ARTISTS} "
                              "(frames x units and connections) drawn in about a minute: "
                              "use fewer sweeps or a smaller net")

    trace = Trace()
    sim = Simulator(net, rng, schedule=schedule, evidence=evidence,
                    on_update=trace.on_update, on_message=trace.on_message)
    initial = sim.state  # set by the constructor, before any update
    sim.run(until=sweeps)
    rep = replay(sim, trace, initial, n_frames, frames_per_sweep)

    clamp = net.evidence_indices(evidence)
    cmap = colormaps[CMAP]
    scene = _scene(net, clamp, cmap, initial)
    widths = edge_widths(connections(net))
    is_clamped = np.array([i in clamp for i in range(net.n_units)])

    def draw_frame(f: int) -> None:
        flash = rep.updated[f]
        scene.nodes.set_facecolor(cmap(rep.states[f].astype(float)))
        scene.nodes.set_sizes(np.where(flash, FLASH_SIZE, NODE_SIZE))
        scene.nodes.set_edgecolor([FLASH_COLOUR if u else "black" for u in flash])
        scene.nodes.set_linewidth(np.where(is_clamped, 3.5, np.where(flash, 3.0, 1.0)))
        for k, patch in enumerate(scene.edges):
            colour = BINARY_COLOUR if rep.binary[f, k] else ANALOG_COLOUR if rep.analog[f, k] else None
            patch.set_color(colour or IDLE_COLOUR)
            patch.set_linewidth(widths[k] + (2.0 if colour else 0.0))
        scene.texts[-1].set_text(f"{net.name}: t = {f / frames_per_sweep:.2f} to "
                                 f"{(f + 1) / frames_per_sweep:.2f} sweeps\n"
                                 f"{rep.n_binary[f]} binary, {rep.n_analog[f]} analog messages")

    frames = _render(scene, draw_frame, n_frames)
    # Each frame's title differs, so Pillow keeps every frame (it merges identical ones).
    atomic_write(path, lambda fh: frames[0].save(fh, format="GIF", save_all=True, append_images=frames[1:],
                                                  duration=round(1000 / fps), loop=0))
    return path
