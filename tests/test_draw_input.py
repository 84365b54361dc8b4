"""`neurosim draw` refuses at once what it cannot draw, and writes its picture whole or
not at all."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

import neurosim.cli as cli
import neurosim.outputs
from neurosim import Edge, Network, Unit
from neurosim.errors import ValidationError
from neurosim.modelfile import save
from neurosim.viz import animate_network, draw_network
from neurosim.viz.animate import MAX_FRAME_ARTISTS
from neurosim.viz.draw import MAX_DRAW_CONNECTIONS, MAX_DRAW_UNITS

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
EARTHQUAKE = ROOT / "models" / "earthquake_truck.toml"


def _chain(n: int) -> Network:
    units = [Unit(f"u{i}", 0.0, "visible" if i % 2 else "hidden") for i in range(n)]
    return Network(units, [Edge(f"u{i}", f"u{i + 1}", 0.5, "symmetric") for i in range(n - 1)], name=f"chain{n}")


def _dense(n: int) -> Network:
    units = [Unit(f"u{i}", 0.0, "hidden") for i in range(n)]
    edges = [Edge(f"u{i}", f"u{j}", 0.1, "symmetric") for i in range(n) for j in range(i + 1, n)]
    return Network(units, edges, name=f"dense{n}")


@pytest.mark.parametrize("out, animate, message", [
    ("x.txt", False, r"--out {dir}/x.txt: write a .png file"),
    ("x.gif", False, r"--out {dir}/x.gif: write a .png file"),
    ("x.png", True, r"--out {dir}/x.png: write a .gif file"),
    ("missing/x.png", False, r"--out {dir}/missing/x.png: no such directory {dir}/missing"),
])
def test_draw_refuses_a_wrong_out_before_anything_else(capsys, tmp_path, out, animate, message):
    # the model does not even exist: --out is checked first
    code, printed, err = run_cli(capsys, "draw", tmp_path / "nowhere.toml", "--out", tmp_path / out,
                             *(["--animate"] if animate else []))
    assert code == 2 and printed == ""
    assert err.strip() == "neurosim: error: " + message.format(dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_draw_refuses_a_directory_as_out(capsys, tmp_path):
    (tmp_path / "pic.png").mkdir()
    code, _, err = run_cli(capsys, "draw", EARTHQUAKE, "--out", tmp_path / "pic.png")
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("animate", [False, True])
def test_draw_on_a_full_disk_leaves_no_file(capsys, tmp_path, monkeypatch, animate):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(neurosim.outputs.os, "fsync", full)
    out = tmp_path / ("x.gif" if animate else "x.png")
    code, printed, err = run_cli(capsys, "draw", EARTHQUAKE, "--out", out, "--sweeps", 2,
                             *(["--animate"] if animate else []))
    assert code == 2 and printed == "" and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("net", [_chain(MAX_DRAW_UNITS + 1), _dense(64)], ids=["units", "connections"])
@pytest.mark.parametrize("animate", [False, True])
def test_draw_refuses_a_net_too_large_at_once(capsys, tmp_path, monkeypatch, net, animate):
    assert net.n_units > MAX_DRAW_UNITS or len(net.edges) > MAX_DRAW_CONNECTIONS
    model = tmp_path / "big.toml"
    save(net, model)
    monkeypatch.setattr(cli, "_marginals_for_drawing", pytest.fail)  # the slow part: never reached
    monkeypatch.setattr(cli, "sample", pytest.fail)  # sampling moved to neurosim.sampling
    out = tmp_path / ("x.gif" if animate else "x.png")
    code, printed, err = run_cli(capsys, "draw", model, "--out", out, *(["--animate"] if animate else []))
    assert code == 2 and printed == "" and not out.exists()
    assert err.strip() == (f"neurosim: error: {net.name!r} has {net.n_units} units and {len(net.edges)} "
                           f"connections: too large to draw, which takes at most {MAX_DRAW_UNITS} units "
                           f"and {MAX_DRAW_CONNECTIONS} connections")


def test_the_library_refuses_a_net_too_large_to_draw(tmp_path):
    with pytest.raises(ValidationError, match="too large to draw"):
        draw_network(_chain(MAX_DRAW_UNITS + 1))
    with pytest.raises(ValidationError, match="too large to draw"):
        animate_network(_dense(64), tmp_path / "x.gif", np.random.default_rng(0))
    assert list(tmp_path.iterdir()) == []


def test_an_animation_too_long_to_draw_is_refused_at_once(capsys, tmp_path):
    sweeps = MAX_FRAME_ARTISTS // (4 * 5) + 1  # earthquake_truck: 3 units and 2 connections, 4 frames a sweep
    code, printed, err = run_cli(capsys, "draw", EARTHQUAKE, "--animate", "--sweeps", sweeps,
                             "--out", tmp_path / "x.gif")
    assert code == 2 and printed == "" and list(tmp_path.iterdir()) == []
    assert f"animating 'earthquake_truck' for {sweeps} sweeps draws {4 * sweeps} frames of 5 units" in err


def test_the_largest_net_drawn_is_drawn(capsys, tmp_path):
    model, out = tmp_path / "chain.toml", tmp_path / "chain.png"
    save(_chain(MAX_DRAW_UNITS), model)
    code, printed, _ = run_cli(capsys, "draw", model, "--out", out)
    assert code == 0 and printed == f"wrote {out}\n" and out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.png", "chain.toml"]
