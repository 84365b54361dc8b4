"""Output files: checked before a run starts, written atomically, never half-written.

``check_out`` refuses an output path that cannot be written (a missing or read-only
directory, a directory in the way, a wrong suffix) before any work is done;
``check_out_directory`` does the same for a directory a run will make and fill.
``atomic_write`` writes to a temporary file beside the target, flushes it to disk and
renames it over the target; on any failure (a full disk, Ctrl-C) the temporary file is
removed and an existing target is left untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import NeurosimError

__all__ = ["OutputError", "check_out", "check_out_directory", "atomic_write", "atomic_write_text"]


class OutputError(NeurosimError):
    """An output path cannot be written; the message names it."""


def check_out(path: str | Path, suffixes: Iterable[str] | None = None, flag: str = "--out") -> Path:
    """``path`` as a Path if a file can be written there, else an OutputError naming it.

    >>> check_out("/nonexistent-dir/x.toml")
    Traceback (most recent call last):
    ...
    neurosim.outputs.OutputError: --out /nonexistent-dir/x.toml: no such directory /nonexistent-dir
    """
    path = Path(path)
    where = f"{flag} {path}"
    allowed = tuple(suffixes or ())
    if allowed and path.suffix.lower() not in allowed:
        raise OutputError(f"{where}: write a {' or '.join(allowed)} file")
    if path.is_dir():
        raise OutputError(f"{where}: is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: no such directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{where}: not writable (permission denied)")
    return path


def check_out_directory(directory: str | Path, flag: str = "--out") -> Path:
    """``directory`` as a Path if a run can be written there (else its nearest existing
    ancestor must be a writable directory), or an OutputError naming it."""
    directory = Path(directory)
    where = f"{flag} {directory}"
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{where}: a file is in the way; the run needs a directory")
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"{where}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: {existing} is not writable (permission denied)")
    return directory


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it to ``path``.

    The target appears whole or not at all; an OSError (a full disk, a read-only
    directory) becomes an OutputError naming ``path``."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an output file is not
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: not written: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
