"""Demos run end to end (short versions) and print the numbers they promise."""

import json
from pathlib import Path

import pytest

from helpers import load_demo



def test_explaining_away(tmp_path, capsys):
    code = load_demo("explaining_away").main(["--out", str(tmp_path), "--sweeps", "3000", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["exact"]["P(exactly one cause)"] == pytest.approx(0.99991, abs=5e-6)
    moment = result["factorial"]["moment-matched, min KL(P||Q)"]
    assert moment["mass on both-or-neither"] == pytest.approx(0.5)
    for figure in result["figures"]:
        assert Path(figure).stat().st_size > 10_000


def test_symmetry_drift(tmp_path, capsys):
    code = load_demo("symmetry_drift").main(["--delays", "0,0.5", "--epochs", "10", "--out", str(tmp_path),
                                         "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert code == 0 and rows[0]["symmetry_drift"] == 0.0 and rows[1]["symmetry_drift"] > 0.0
