"""Drawings and animations of networks: headless, checked through the artists they make."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import ArrowStyle, FancyArrowPatch
from PIL import Image

from neurosim import Edge, Network, Unit, ValidationError, load_model, posterior
from neurosim.engine import Simulator, Trace
from neurosim.viz import animate_network, draw_network, layout
from neurosim.viz.animate import replay
from neurosim.viz.draw import CMAP, MAX_WIDTH, NEGATIVE, NEUTRAL, POSITIVE

MODELS = Path(__file__).resolve().parent.parent / "models"
EVIDENCE = {"house_jumps": 1}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def quake() -> Network:
    return load_model(MODELS / "earthquake_truck.toml")


@pytest.fixture
def boltzmann() -> Network:
    return load_model(MODELS / "boltzmann_6.toml")


def _nodes(ax) -> PathCollection:
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    return nodes


def _edges(ax) -> list[FancyArrowPatch]:
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch)]


# -- layout ------------------------------------------------------------------------------
def test_layout_puts_layers_in_rows_top_down(quake):
    pos = layout(quake)
    assert pos["house_jumps"][1] < pos["earthquake"][1] == pos["truck"][1]
    assert pos["earthquake"][0] + pos["truck"][0] == 0.0  # a row is centred
    assert pos["house_jumps"][0] == 0.0
    assert layout(quake) == pos


def test_layout_of_a_directed_net_without_layers_follows_generations():
    net = Network([Unit("leaf"), Unit("mid"), Unit("root")],
                  [Edge("root", "mid", 1.0), Edge("mid", "leaf", 1.0)])
    pos = layout(net)
    assert pos["root"][1] > pos["mid"][1] > pos["leaf"][1]


def test_layout_of_a_boltzmann_machine_puts_visible_units_below_hidden(boltzmann):
    pos = layout(boltzmann)
    assert {pos[v][1] for v in ("v1", "v2", "v3")} == {0.0}
    assert {pos[h][1] for h in ("h1", "h2", "h3")} == {1.0}


def test_layout_falls_back_to_a_deterministic_spring_layout():
    net = Network([Unit("a"), Unit("b"), Unit("c")],
                  [Edge("a", "b", 1.0, "symmetric"), Edge("b", "c", -1.0, "symmetric")])
    pos = layout(net)
    assert pos == layout(net)
    assert len(set(pos.values())) == 3 and np.isfinite(list(pos.values())).all()


# -- draw_network ---------------------------------------------------------------------
def test_node_colours_are_the_colormap_of_the_marginals(quake):
    marginals = posterior(quake, EVIDENCE).marginals()
    ax = draw_network(quake, marginals=marginals, evidence=EVIDENCE)
    p = [marginals["earthquake"], marginals["truck"], 1.0]
    nodes = _nodes(ax)
    np.testing.assert_allclose(nodes.get_facecolors(), matplotlib.colormaps[CMAP](p))
    assert nodes.get_facecolors()[0][:3] != pytest.approx(nodes.get_facecolors()[2][:3])
    widths = nodes.get_linewidths()
    assert widths[2] > widths[0] == widths[1]  # the clamped unit is outlined
    assert any(a.get_ylabel() == "P(unit on)" for a in ax.figure.axes if a is not ax)


def test_without_marginals_nodes_are_neutral_and_there_is_no_colorbar(quake):
    ax = draw_network(quake)
    np.testing.assert_allclose(_nodes(ax).get_facecolors(), [to_rgba(NEUTRAL)] * 3)
    assert ax.figure.axes == [ax]
    assert ax.get_title() == "earthquake_truck"


def test_edges_are_coloured_by_sign_with_width_by_strength():
    net = Network([Unit("a"), Unit("b"), Unit("c")],
                  [Edge("a", "b", 2.0), Edge("a", "c", -0.5)])
    edges = _edges(draw_network(net, title="signs"))
    assert len(edges) == 2
    assert to_rgba(edges[0].get_edgecolor()) == to_rgba(POSITIVE)
    assert to_rgba(edges[1].get_edgecolor()) == to_rgba(NEGATIVE)
    assert edges[0].get_linewidth() == pytest.approx(MAX_WIDTH)
    assert edges[1].get_linewidth() == pytest.approx(MAX_WIDTH / 4)


def test_positive_belief_net_edges_are_red_arrows_with_weight_labels(quake):
    ax = draw_network(quake, marginals=posterior(quake, EVIDENCE).marginals(), evidence=EVIDENCE)
    edges = _edges(ax)
    assert len(edges) == 2
    for edge in edges:
        assert to_rgba(edge.get_edgecolor()) == to_rgba(POSITIVE)
        assert isinstance(edge.get_arrowstyle(), ArrowStyle.CurveFilledB)  # an arrow head
    assert [t.get_text() for t in ax.texts].count("20") == 2
    assert "b=-20, clamped=1" in [t.get_text() for t in ax.texts]


def test_png_is_written(quake, tmp_path):
    ax = draw_network(quake, marginals=posterior(quake, EVIDENCE).marginals(), evidence=EVIDENCE)
    png = tmp_path / "quake.png"
    ax.figure.savefig(png, dpi=80)
    assert png.stat().st_size > 10_000
    with Image.open(png) as image:
        assert image.size == (512, 384)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # not a blank canvas


def test_symmetric_connections_are_one_line_each_without_arrow_heads(boltzmann):
    ax = draw_network(boltzmann, marginals=posterior(boltzmann).marginals())
    edges = _edges(ax)
    assert len(edges) == len(boltzmann.edges) == 15
    assert all(isinstance(e.get_arrowstyle(), ArrowStyle.Curve) for e in edges)
    assert not any(t.get_text() == "-2.02" for t in ax.texts)  # over 12 connections: no labels


def test_edges_between_distant_units_of_a_row_are_bent(boltzmann):
    edges = _edges(draw_network(boltzmann))
    bent = {(e.source, e.target) for e, patch in zip(boltzmann.edges, edges)
            if patch.get_connectionstyle().rad != 0}
    assert bent == {("v1", "v3"), ("h1", "h3")}


def test_unequal_symmetric_synapses_show_both_weights():
    net = Network([Unit("a"), Unit("b")], [Edge("a", "b", 1.0, "symmetric", weight_reverse=0.5)])
    assert "1 / 0.5" in [t.get_text() for t in draw_network(net).texts]


@pytest.mark.parametrize("marginals, match", [
    ({"earthquake": 0.5}, "no probability for unit 'truck'"),
    ({"earthquake": 0.5, "truck": 1.5}, r"P\(truck on\) = 1.5"),
    ({"earthquake": 0.5, "truck": 0.5, "lorry": 0.1}, "unknown unit 'lorry'"),
])
def test_bad_marginals_are_named(quake, marginals, match):
    with pytest.raises(ValidationError, match=match):
        draw_network(quake, marginals=marginals, evidence=EVIDENCE)


# -- animation ------------------------------------------------------------------------
@pytest.mark.parametrize("net_file, evidence", [("earthquake_truck.toml", EVIDENCE),
                                                ("earthquake_truck.toml", None),
                                                ("boltzmann_6.toml", {"v1": 0})])
def test_replay_ends_where_the_simulator_does_and_counts_like_the_ledger(net_file, evidence):
    net = load_model(MODELS / net_file)
    trace = Trace()
    sim = Simulator(net, np.random.default_rng(3), evidence=evidence,
                    on_update=trace.on_update, on_message=trace.on_message)
    initial = sim.state
    sim.run(until=5)
    rep = replay(sim, trace, initial, n_frames=15, frames_per_sweep=3)
    np.testing.assert_array_equal(rep.states[-1], sim.state)
    assert (rep.n_binary[-1], rep.n_analog[-1]) == (sim.ledger.binary, sim.ledger.analog)
    assert rep.updated.sum() == len(trace)  # every update in its own bin, once
    assert rep.binary.any()


def test_animation_has_one_frame_per_bin_and_is_reproducible(quake, tmp_path):
    gif = animate_network(quake, tmp_path / "a.gif", np.random.default_rng(0), evidence=EVIDENCE,
                          sweeps=2, frames_per_sweep=4)
    assert gif == tmp_path / "a.gif"
    with Image.open(gif) as image:
        assert image.format == "GIF"
        assert image.n_frames == 2 * 4
    again = animate_network(quake, tmp_path / "b.gif", np.random.default_rng(0), evidence=EVIDENCE,
                            sweeps=2, frames_per_sweep=4)
    assert gif.read_bytes() == again.read_bytes()


def test_animation_frame_count_follows_frames_per_sweep(boltzmann, tmp_path):
    gif = animate_network(boltzmann, tmp_path / "b.gif", np.random.default_rng(1), schedule="async",
                          sweeps=3, frames_per_sweep=2)
    with Image.open(gif) as image:
        assert image.n_frames == 6


@pytest.mark.parametrize("kwargs, match", [({"path": "run.png"}, "does not end in .gif"),
                                           ({"sweeps": 0}, "sweeps must be a positive integer"),
                                           ({"frames_per_sweep": 1.5}, "frames_per_sweep"),
                                           ({"fps": 0}, "fps must be positive")])
def test_animation_arguments_are_checked(quake, tmp_path, kwargs, match):
    args = {"path": tmp_path / "x.gif", **kwargs}
    with pytest.raises(ValidationError, match=match):
        animate_network(quake, rng=np.random.default_rng(0), **args)
    assert not (tmp_path / "x.gif").exists()
