"""Reading ``.npz`` files written by neurosim (RBMs, DBN checkpoints), with one clear
error for every way such a file can be missing, truncated or corrupt."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import ModelFileError

__all__ = ["read_npz"]


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, or a ModelFileError naming it.

    A truncated or corrupt archive raises ``BadZipFile`` (no OSError or ValueError) at
    opening or only at reading an array, a cut member ``ValueError`` or ``EOFError``, a
    damaged deflate stream ``zlib.error``; object arrays, which would need pickle, are
    refused. ``what`` names the file's kind in the message (``"checkpoint"``)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with z:
                return {key: z[key] for key in z.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        detail = str(exc).splitlines()[0].split(". ")[0] if str(exc) else "no detail"
        raise ModelFileError(f"{path}: not a readable {what} (.npz): truncated or corrupt "
                             f"({type(exc).__name__}: {detail})") from None
