"""Output files: checked before work starts, written whole or not at all."""

import errno
import os

import pytest

from neurosim.outputs import OutputError, atomic_write, atomic_write_text, check_out, check_out_directory


def test_check_out_names_each_unwritable_path(tmp_path):
    with pytest.raises(OutputError, match="no such directory"):
        check_out(tmp_path / "missing" / "x.npz")
    with pytest.raises(OutputError, match="is a directory"):
        check_out(tmp_path)
    with pytest.raises(OutputError, match=r"write a \.png file"):
        check_out(tmp_path / "x.txt", suffixes=(".png",))
    assert check_out(tmp_path / "x.png", suffixes=(".png",)) == tmp_path / "x.png"


def test_check_out_directory_names_what_is_in_the_way(tmp_path, monkeypatch):
    assert check_out_directory(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert check_out_directory(tmp_path) == tmp_path
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"--out .*file: a file is in the way; the run needs a directory"):
        check_out_directory(tmp_path / "file")
    with pytest.raises(OutputError, match=r"--from .*sub: .*file is a file, not a directory"):
        check_out_directory(tmp_path / "file" / "sub", flag="--from")
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(tmp_path))   # root may write anywhere
    with pytest.raises(OutputError, match="is not writable"):
        check_out_directory(tmp_path / "run")


def test_check_out_refuses_a_read_only_directory(tmp_path, monkeypatch):
    # os.access, not chmod: CI runs as root, who may write anywhere
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(tmp_path))
    with pytest.raises(OutputError, match="not writable"):
        check_out(tmp_path / "x.npz")


def test_check_out_refuses_a_read_only_file(tmp_path, monkeypatch):
    target = tmp_path / "x.npz"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(target))
    with pytest.raises(OutputError, match="not writable"):
        check_out(target)


def test_atomic_write_on_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.toml"
    target.write_text("old")

    def full(fh):
        fh.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError, match="No space left"):
        atomic_write(target, full)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.toml"]


def test_atomic_write_interrupted_leaves_no_temporary(tmp_path):
    def interrupted(fh):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.npz", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_round_trips(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "é\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é\n"
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) == "0o644"
