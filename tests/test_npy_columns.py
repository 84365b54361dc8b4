"""A .npy data file's columns are named v0, v1, ...: a mismatch says so (issue 23)."""

from pathlib import Path

import numpy as np
import pytest

from neurosim import load
from neurosim.cli import main
from neurosim.data import DataError, load_data, match_visible

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("model, columns", [("encoder_424", 8), ("boltzmann_6", 5), ("boltzmann_6", 6)])
def test_npy_mismatch_names_its_columns(tmp_path, model, columns):
    """Old: only 'data columns that are not visible units: v0 (unknown), ...'."""
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, columns), dtype=np.int8))
    net = load(MODELS / f"{model}.toml")
    n_visible = sum(net.unit(u).role == "visible" for u in net.units)
    with pytest.raises(DataError) as err:
        match_visible(load_data(str(path), None), net)
    message = str(err.value)
    assert f"columns v0 .. v{columns - 1} are those of a .npy file" in message
    assert f"{columns} columns, the net has {n_visible} visible units" in message and "\n" not in message


def test_npy_hint_from_the_cli(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.eye(8, dtype=np.int8))
    out = tmp_path / "out.toml"
    code = main(["train", str(MODELS / "encoder_424.toml"), "--rule", "boltzmann", "--data", str(path),
                 "--epochs", "1", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "are those of a .npy file" in capsys.readouterr().err


def test_csv_mismatch_has_no_npy_hint(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a0,a1\n0,1\n")
    with pytest.raises(DataError) as err:
        match_visible(load_data(str(path), None), load(MODELS / "encoder_424.toml"))
    assert ".npy" not in str(err.value)
