"""Training data from a spec: a built-in data set's name, a ``.csv`` file or a ``.npy`` file.

CSV: a header row naming the visible units, then one case per line, values 0 or 1
separated by commas (whitespace around a value is allowed, blank lines are skipped,
no quoting)::

    p00,p01,p02
    0, 1, 0
    1, 1, 0

NPY: a 2-D array, one case per row, of booleans, integers or floats that are exactly
0 or 1; its units are named ``v0 .. v{n-1}``.

Every error is a :class:`DataError` naming the file (and, for CSV, the line), so the
CLI can print it as one line and exit with code 2.

Example
-------
>>> import numpy as np
>>> load_data("encoder-4-2-4", np.random.default_rng(0), n=2).data.shape
(2, 8)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..network import Network
from .generators import GENERATORS, DataError, Dataset, _count, _require_rng, generate

__all__ = ["load_data", "match_visible", "DataError"]

_BITS = frozenset("01")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _read_text(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"{source}: cannot read: {exc.strerror}") from None


def _csv_header(source: str, line_no: int, line: str) -> list[str]:
    """Unit names from the header line: present, named, distinct."""
    names = [field.strip() for field in line.split(",")]
    if all(_NUMBER.fullmatch(name) for name in names):
        raise DataError(f"{source}:{line_no}: missing header: the first row must name the visible "
                        f"units, got {line.strip()!r}")
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if not name:
            raise DataError(f"{source}:{line_no}: column {j + 1} of the header has no name")
        if name in seen:
            raise DataError(f"{source}:{line_no}: duplicate column name {name!r} "
                            f"(columns {seen[name] + 1} and {j + 1})")
        seen[name] = j
    return names


def _csv_row(source: str, line_no: int, line: str, names: list[str]) -> str:
    """One case as a string of ``'0'``/``'1'`` characters, one per column."""
    fields = [field.strip() for field in line.split(",")]
    if len(fields) != len(names):
        raise DataError(f"{source}:{line_no}: expected {len(names)} values, got {len(fields)}")
    bits = "".join(fields)
    if len(bits) != len(names) or not _BITS.issuperset(bits):
        j = next(j for j, field in enumerate(fields) if field not in _BITS)
        raise DataError(f"{source}:{line_no}: value {fields[j]!r} in column {names[j]!r} is not 0 or 1")
    return bits


def _read_csv(path: Path, source: str) -> Dataset:
    lines = [(no, line) for no, line in enumerate(_read_text(path, source).splitlines(), start=1)
             if line.strip()]
    if not lines:
        raise DataError(f"{source}: empty file: expected a header row naming the visible units")
    (header_no, header), *body = lines
    names = _csv_header(source, header_no, header)
    if not body:
        raise DataError(f"{source}:{header_no}: a header but no data rows")
    # Hot path for large files: validate each line as text, convert all at once.
    text = "".join(_csv_row(source, no, line, names) for no, line in body)
    data = np.frombuffer(text.encode("ascii"), dtype=np.uint8) - np.uint8(ord("0"))
    return Dataset(path.stem, names, data.astype(np.int8).reshape(len(body), len(names)))


def _read_npy(path: Path, source: str) -> Dataset:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{source}: cannot read as a .npy array: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{source}: an .npz archive, not a single .npy array")
    if array.ndim != 2:
        raise DataError(f"{source}: expected a 2-D array (cases x visible units), got shape "
                        f"{array.shape}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{source}: array of dtype {array.dtype}; expected booleans, integers or "
                        "floats equal to 0 or 1")
    if 0 in array.shape:
        raise DataError(f"{source}: empty array of shape {array.shape}")
    bad = (array != 0) & (array != 1)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{source}: value {array[row, col].item()!r} at index ({row}, {col}) "
                        "is not 0 or 1")
    return Dataset(path.stem, _npy_names(array.shape[1]), array.astype(np.int8))


def _npy_names(n: int) -> list[str]:
    """The unit names of a .npy file's ``n`` columns: ``v0 .. v{n-1}``."""
    return [f"v{j}" for j in range(n)]


def _npy_hint(dataset: Dataset, visible: list[str]) -> str:
    """Why a .npy file's columns fit no net whose visible units are named otherwise."""
    n = len(dataset.names)
    if dataset.names != _npy_names(n):
        return ""
    return (f" (columns v0 .. v{n - 1} are those of a .npy file, which has no header: {n} columns, the net has "
            f"{len(visible)} visible units; name the columns after them in a CSV header, or name the "
            f"visible units v0 .. v{len(visible) - 1})")


_READERS = {".csv": _read_csv, ".npy": _read_npy}


def _subsample(dataset: Dataset, rng: np.random.Generator, n: object, source: str) -> Dataset:
    """``n`` distinct cases of ``dataset`` chosen at random, kept in file order."""
    n = _count(n)
    _require_rng(rng)
    if n > dataset.n_cases:
        raise DataError(f"{source}: asked for n={n} cases, the file has {dataset.n_cases}")
    keep = np.sort(rng.choice(dataset.n_cases, size=n, replace=False))
    return Dataset(dataset.name, dataset.names, dataset.data[keep])


def load_data(spec: str, rng: np.random.Generator | None, n: int | None = None) -> Dataset:
    """Training data named by ``spec``: a built-in data set, a .csv or a .npy file.

    Parameters
    ----------
    spec : str
        A key of :data:`~neurosim.data.GENERATORS`, or a path ending in ``.csv`` or
        ``.npy`` (see the module doc for the formats).
    rng : numpy.random.Generator or None
        Source of every draw; may be None when ``n`` is None.
    n : int, optional
        Number of cases. For a built-in, ``n`` cases drawn from its distribution
        (``None``: the exact distribution, see :func:`~neurosim.data.generate`). For a
        file, ``n`` of its rows chosen at random without replacement, in file order
        (``None``: every row).

    Raises
    ------
    DataError
        Unknown spec, missing or unreadable file, malformed contents (the message
        names the file, and for CSV the line), or bad ``n``.
    """
    if spec in GENERATORS:
        return generate(spec, rng, n)
    path = Path(spec)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{spec}: neither a built-in data set ({', '.join(GENERATORS)}) nor a .csv "
                        "or .npy file")
    if not path.is_file():
        raise DataError(f"{spec}: {'not a file' if path.exists() else 'no such file'}")
    dataset = reader(path, spec)
    return dataset if n is None else _subsample(dataset, rng, n, spec)


def match_visible(dataset: Dataset, net: Network) -> np.ndarray:
    """The data's columns rearranged into the order of ``net``'s visible units.

    Parameters
    ----------
    dataset : Dataset
    net : Network
        Its visible units (role ``"visible"``, in unit order) must be exactly the
        data set's column names.

    Returns
    -------
    ndarray of int8, shape (n_cases, n_visible)
        Column ``j`` holds the data of the ``j``-th visible unit of ``net``; rows (and
        so ``dataset.probs`` and ``dataset.labels``) keep their order.

    Raises
    ------
    DataError
        Names the visible units missing from the data, and the data columns that are
        not visible units of the net (with their role there, or "unknown"); for a
        .npy file, says that its columns are named v0, v1, ...

    Examples
    --------
    >>> from neurosim import Network, Unit
    >>> from neurosim.data import encoder_424
    >>> net = Network([Unit(f"{g}{i}", role="visible") for g in "ba" for i in range(4)])
    >>> match_visible(encoder_424(), net)[1].tolist()
    [0, 1, 0, 0, 0, 1, 0, 0]
    """
    visible = [name for name in net.units if net.unit(name).role == "visible"]
    column = {name: j for j, name in enumerate(dataset.names)}
    is_visible = set(visible)
    missing = [name for name in visible if name not in column]
    extra = [name for name in dataset.names if name not in is_visible]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"visible units missing from the data: {', '.join(missing)}")
        if extra:
            known = set(net.units)
            roles = [f"{name} ({net.unit(name).role if name in known else 'unknown'})"
                     for name in extra]
            parts.append(f"data columns that are not visible units: {', '.join(roles)}")
        raise DataError(f"data set {dataset.name!r} does not fit network {net.name!r}: "
                        + "; ".join(parts) + _npy_hint(dataset, visible))
    return dataset.data[:, [column[name] for name in visible]]
