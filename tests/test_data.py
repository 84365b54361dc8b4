"""Training data: built-in generators checked against their exact distributions, files."""

import math

import numpy as np
import pytest

from helpers import kl_bound
from neurosim import Network, NeurosimError, Unit
from neurosim.data import (GENERATORS, LEFT, RIGHT, DataError, Dataset, bars_stripes,
                           empirical_distribution, encoder_424, generate, is_valid_shift,
                           load_data, match_visible, shift_direction, shifter, shifter_entropy_nats)

SIGMAS = 5.0


def binomial_bound(p: float, n: int) -> float:
    """``SIGMAS`` standard deviations of the mean of ``n`` Bernoulli(p) draws."""
    return SIGMAS * math.sqrt(p * (1 - p) / n)


def exact_shifter_prob() -> dict[bytes, float]:
    """Exact probability of every shifter image (4 x 8, p_on 0.2), by enumeration."""
    exact = shifter(None)
    return {row.tobytes(): p for row, p in zip(exact.data, exact.probs)}


def kl(rows: np.ndarray, probs: np.ndarray, exact: Dataset) -> float:
    """KL(empirical || exact) in nats."""
    q = {row.tobytes(): p for row, p in zip(exact.data, exact.probs)}
    return float(sum(p * math.log(p / q[row.tobytes()]) for row, p in zip(rows, probs)))


# -- shifter ---------------------------------------------------------------------------
def test_shifter_layout_follows_figure_1():
    cases = shifter(np.random.default_rng(0), 500)
    images = cases.data.reshape(-1, 4, 8)
    assert cases.names[:9] == ["p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p10"]
    assert cases.names[-1] == "p37" and cases.data.dtype == np.int8
    # the top two rows are one retina, the bottom two the other (figure 1's caption)
    assert (images[:, 1] == images[:, 0]).all() and (images[:, 2] == images[:, 3]).all()
    left = cases.labels == LEFT
    assert (images[left, 0] == np.roll(images[left, 3], -1, axis=1)).all()
    assert (images[~left, 0] == np.roll(images[~left, 3], 1, axis=1)).all()


def test_every_case_is_a_shift_in_its_labelled_direction():
    cases = shifter(np.random.default_rng(1), 3000)
    directions = np.array([shift_direction(image) for image in cases.data])
    assert all(is_valid_shift(image) for image in cases.data)
    clear = directions != 0
    assert (directions[clear] == np.where(cases.labels[clear] == RIGHT, 1, -1)).all()
    # ambiguous images: bottom rows of period 1 or 2
    p_ambiguous = 0.8 ** 8 + 0.2 ** 8 + 2 * 0.2 ** 4 * 0.8 ** 4
    assert abs((~clear).mean() - p_ambiguous) < binomial_bound(p_ambiguous, len(cases.data))


def test_shifter_rates():
    n = 5000
    cases = shifter(np.random.default_rng(2), n)
    bottom = cases.data[:, 24:]
    assert abs(bottom.mean() - 0.2) < binomial_bound(0.2, bottom.size)
    assert abs(cases.labels.mean() - 0.5) < binomial_bound(0.5, n)


def test_same_seed_same_cases():
    a, b = (shifter(np.random.default_rng(7), 50) for _ in range(2))
    c = shifter(np.random.default_rng(8), 50)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.data, c.data)


def test_shifter_enumeration():
    exact = shifter(None)
    assert exact.n_cases == 2 * 256 - 4 and exact.labels is None
    assert math.isclose(exact.probs.sum(), 1.0)
    assert all(is_valid_shift(image) for image in exact.data)
    ambiguous = [p for image, p in zip(exact.data, exact.probs) if shift_direction(image) == 0]
    assert sorted(ambiguous) == pytest.approx(sorted([0.2 ** 8, 0.2 ** 4 * 0.8 ** 4,
                                                      0.2 ** 4 * 0.8 ** 4, 0.8 ** 8]))


def test_entropy_closed_form():
    def h(p):
        return -p * math.log(p) - (1 - p) * math.log(1 - p)
    p_ambiguous = 0.8 ** 8 + 0.2 ** 8 + 2 * 0.2 ** 4 * 0.8 ** 4
    expected = 8 * h(0.2) + math.log(2) * (1 - p_ambiguous)
    assert shifter_entropy_nats() == pytest.approx(expected, rel=1e-12)
    assert shifter_entropy_nats() == pytest.approx(4.579165472855711, rel=1e-12)
    # copies of rows carry no information
    assert shifter_entropy_nats(rows=2) == pytest.approx(expected, rel=1e-12)


def test_entropy_matches_monte_carlo():
    n = 20000
    prob = exact_shifter_prob()
    p = np.array(list(prob.values()))
    variance = float((p * np.log(p) ** 2).sum() - shifter_entropy_nats() ** 2)
    cases = shifter(np.random.default_rng(3), n)
    estimate = -np.mean([math.log(prob[image.tobytes()]) for image in cases.data])
    assert abs(estimate - shifter_entropy_nats()) < SIGMAS * math.sqrt(variance / n)


def test_drawn_shifter_cases_fit_the_enumeration():
    n = 20000
    exact = shifter(None)
    rows, probs = empirical_distribution(shifter(np.random.default_rng(4), n).data)
    assert kl(rows, probs, exact) < kl_bound(exact.n_cases, n, inflation=1.0)


def test_shift_direction():
    bottom = np.array([1, 0, 0, 0, 0, 0, 1, 1])
    left, right = np.roll(bottom, -1), np.roll(bottom, 1)
    image = np.array([left, left, bottom, bottom])
    assert shift_direction(image) == -1 and shift_direction(image.ravel()) == -1
    assert shift_direction([right, right, bottom, bottom]) == 1
    assert shift_direction([[1, 0] * 4] * 2 + [[0, 1] * 4] * 2) == 0
    assert shift_direction(np.zeros((4, 8))) == 0 and shift_direction(np.ones((4, 8))) == 0
    assert shift_direction([left, bottom, left, bottom]) is None        # rows in the wrong order
    assert shift_direction([bottom, bottom, bottom, bottom]) is None    # not shifted
    assert shift_direction([left, left, bottom]) is None                # odd number of rows
    assert shift_direction(2 * image) is None                           # not 0/1
    assert is_valid_shift(image) and not is_valid_shift([bottom, bottom, bottom, bottom])


@pytest.mark.parametrize("kwargs, match", [
    ({"rows": 3}, "rows must be an even number"),
    ({"cols": 0}, "cols must be a positive integer"),
    ({"p_on": 1.0}, "p_on must lie strictly between 0 and 1"),
    ({"n": 0}, "n must be a positive whole number of cases, got 0"),
])
def test_shifter_bad_parameters(kwargs, match):
    with pytest.raises(DataError, match=match):
        shifter(np.random.default_rng(0), **{"n": 5, **kwargs})


# -- bars and stripes, encoder ---------------------------------------------------------
def test_bars_stripes_size_3():
    exact = bars_stripes()
    images = exact.data.reshape(-1, 3, 3)
    assert exact.n_cases == 14 and exact.names[:4] == ["p00", "p01", "p02", "p10"]
    assert math.isclose(exact.probs.sum(), 1.0)
    bars = (images == images[:, :1, :]).all(axis=(1, 2))
    stripes = (images == images[:, :, :1]).all(axis=(1, 2))
    assert (bars | stripes).all()
    both = bars & stripes     # all off and all on
    assert images[both].sum(axis=(1, 2)).tolist() == [0, 9]
    assert exact.probs[both] == pytest.approx([1 / 8, 1 / 8])
    assert exact.probs[~both] == pytest.approx([1 / 16] * 12)


def test_bars_stripes_draws_fit_the_distribution():
    n = 5000
    exact = bars_stripes()
    drawn = bars_stripes(np.random.default_rng(5), n=n)
    assert drawn.n_cases == n and drawn.probs is None
    rows, probs = empirical_distribution(drawn.data)
    assert kl(rows, probs, exact) < kl_bound(exact.n_cases, n, inflation=1.0)


def test_encoder_424():
    exact = encoder_424()
    assert exact.data.shape == (4, 8) and (exact.n_cases, exact.n_visible) == (4, 8)
    assert exact.names == ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
    assert np.array_equal(exact.data[:, :4], np.eye(4)) and np.array_equal(exact.data[:, 4:], np.eye(4))
    assert exact.probs.tolist() == [0.25] * 4


def test_generate():
    assert set(GENERATORS) == {"shifter", "bars-stripes", "encoder-4-2-4"}
    assert generate("encoder-4-2-4", None).n_cases == 4
    assert generate("shifter", np.random.default_rng(0), 10).labels.shape == (10,)
    with pytest.raises(DataError, match=r"unknown data set 'shifty' \(built-in: shifter, "
                                        r"bars-stripes, encoder-4-2-4\)"):
        generate("shifty", None)
    assert issubclass(DataError, NeurosimError)


def test_dataset_validates_itself():
    with pytest.raises(DataError, match="2 columns need as many distinct names"):
        Dataset("x", ["a", "a"], np.zeros((3, 2), dtype=np.int8))
    with pytest.raises(DataError, match="probs sum to"):
        Dataset("x", ["a"], np.zeros((2, 1), dtype=np.int8), probs=np.array([0.5, 0.4]))


# -- empirical distribution ------------------------------------------------------------
def test_empirical_distribution():
    data = np.array([[1, 1], [0, 1], [1, 1], [0, 0], [1, 1]], dtype=np.int8)
    rows, probs = empirical_distribution(data)
    assert rows.tolist() == [[0, 0], [0, 1], [1, 1]] and rows.dtype == np.int8
    assert probs.tolist() == [0.2, 0.2, 0.6]
    rows, probs = empirical_distribution(data, weights=[1, 1, 1, 2, 0])
    assert probs.tolist() == [0.4, 0.2, 0.4]
    with pytest.raises(DataError, match="at least one row"):
        empirical_distribution(np.zeros((0, 3)))


# -- files -----------------------------------------------------------------------------
def write_csv(path, dataset):
    lines = [", ".join(dataset.names)] + [" , ".join(map(str, row)) for row in dataset.data]
    path.write_text("\n".join(lines) + "\n")


def test_csv_round_trip(tmp_path):
    cases = shifter(np.random.default_rng(0), 40)
    write_csv(tmp_path / "shift.csv", cases)
    loaded = load_data(str(tmp_path / "shift.csv"), None)
    assert loaded.name == "shift" and loaded.names == cases.names
    assert np.array_equal(loaded.data, cases.data) and loaded.data.dtype == np.int8


def test_csv_tolerates_blank_lines_and_bom(tmp_path):
    (tmp_path / "d.csv").write_text("\ufeffa,b\n\n 1 ,0\n   \n0,1\r\n", encoding="utf-8")
    loaded = load_data(str(tmp_path / "d.csv"), None)
    assert loaded.names == ["a", "b"] and loaded.data.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize("text, message", [
    ("a,b,c\n0,1,0\n1,1,1\n0,1\n", "data.csv:4: expected 3 values, got 2"),
    ("a,b,c\n0,1,0\n\n1,2,1\n", "data.csv:4: value '2' in column 'b' is not 0 or 1"),
    ("a,b,c\n0,1,0\n1,1,\n", "data.csv:3: value '' in column 'c' is not 0 or 1"),
    ("a,b,c\n0,1,0\n1,1,10\n", "data.csv:3: value '10' in column 'c' is not 0 or 1"),
    ("", "data.csv: empty file: expected a header row naming the visible units"),
    ("\n  \n", "data.csv: empty file: expected a header row naming the visible units"),
    ("0,1,0\n1,1,0\n", "data.csv:1: missing header: the first row must name the visible units, "
                       "got '0,1,0'"),
    ("a,b,a\n0,1,0\n", "data.csv:1: duplicate column name 'a' (columns 1 and 3)"),
    ("a,,c\n0,1,0\n", "data.csv:1: column 2 of the header has no name"),
    ("a,b\n", "data.csv:1: a header but no data rows"),
])
def test_csv_errors(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(text)
    with pytest.raises(DataError) as err:
        load_data("data.csv", None)
    assert str(err.value) == message


@pytest.mark.parametrize("array", [
    np.array([[True, False], [False, True]]),
    np.array([[1, 0], [0, 1]], dtype=np.int64),
    np.array([[1, 0], [0, 1]], dtype=np.uint8),
    np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
])
def test_npy_round_trip(tmp_path, array):
    np.save(tmp_path / "d.npy", array)
    loaded = load_data(str(tmp_path / "d.npy"), None)
    assert loaded.names == ["v0", "v1"] and loaded.data.dtype == np.int8
    assert loaded.data.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize("array, message", [
    (np.array([[1, 0], [0, 1], [1, 2], [3, 0]]), "data.npy: value 2 at index (2, 1) is not 0 or 1"),
    (np.array([[1.0, 0.5]]), "data.npy: value 0.5 at index (0, 1) is not 0 or 1"),
    (np.array([[1.0, np.nan]]), "data.npy: value nan at index (0, 1) is not 0 or 1"),
    (np.array([1, 0, 1]), "data.npy: expected a 2-D array (cases x visible units), got shape (3,)"),
    (np.zeros((2, 2, 2)), "data.npy: expected a 2-D array (cases x visible units), got shape (2, 2, 2)"),
    (np.array([["1", "0"]]), "data.npy: array of dtype <U1; expected booleans, integers or floats "
                             "equal to 0 or 1"),
    (np.zeros((0, 4)), "data.npy: empty array of shape (0, 4)"),
])
def test_npy_errors(tmp_path, monkeypatch, array, message):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "data.npy", array)
    with pytest.raises(DataError) as err:
        load_data("data.npy", None)
    assert str(err.value) == message


def test_npy_not_an_array_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.npy").write_text("0,1\n")
    with pytest.raises(DataError, match=r"^data.npy: cannot read as a .npy array"):
        load_data("data.npy", None)
    with open(tmp_path / "z.npy", "wb") as archive:
        np.savez(archive, np.eye(2))
    with pytest.raises(DataError, match=r"^z.npy: an .npz archive, not a single .npy array$"):
        load_data("z.npy", None)


@pytest.mark.parametrize("spec, message", [
    ("missing.csv", "missing.csv: no such file"),
    ("missing.npy", "missing.npy: no such file"),
    ("folder.csv", "folder.csv: not a file"),
    ("data.txt", "data.txt: neither a built-in data set (shifter, bars-stripes, encoder-4-2-4) "
                 "nor a .csv or .npy file"),
    ("shifty", "shifty: neither a built-in data set (shifter, bars-stripes, encoder-4-2-4) "
               "nor a .csv or .npy file"),
])
def test_bad_specs(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "data.txt").write_text("a\n1\n")
    with pytest.raises(DataError) as err:
        load_data(spec, None)
    assert str(err.value) == message


def test_load_data_n(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "d.npy", np.eye(6, dtype=bool))
    part = load_data("d.npy", np.random.default_rng(0), n=3)
    assert part.n_cases == 3 and len({row.tobytes() for row in part.data}) == 3
    assert np.array_equal(part.data, load_data("d.npy", np.random.default_rng(0), n=3).data)
    with pytest.raises(DataError, match=r"^d.npy: asked for n=7 cases, the file has 6$"):
        load_data("d.npy", np.random.default_rng(0), n=7)
    assert load_data("shifter", np.random.default_rng(0), n=12).n_cases == 12
    assert load_data("bars-stripes", None).n_cases == 14
    with pytest.raises(DataError, match="n must be a positive whole number of cases, got -1"):
        load_data("bars-stripes", np.random.default_rng(0), n=-1)
    with pytest.raises(TypeError, match="drawing n cases needs rng"):
        load_data("shifter", None, n=5)


# -- matching a net ----------------------------------------------------------------------
def test_match_visible():
    order = ["b1", "b0", "b2", "b3", "a0", "a1", "a2", "a3"]
    net = Network([Unit("h", role="hidden")] + [Unit(name, role="visible") for name in order])
    data = match_visible(encoder_424(), net)
    assert data.tolist()[:2] == [[0, 1, 0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 1, 0, 0]]
    cases = Dataset("d", ["b0", "a0", "h"], np.zeros((1, 3), dtype=np.int8))
    with pytest.raises(DataError) as err:
        match_visible(cases, Network([Unit("a0", role="visible"), Unit("a1", role="visible"),
                                      Unit("h")], name="n"))
    assert str(err.value) == ("data set 'd' does not fit network 'n': visible units missing from the "
                              "data: a1; data columns that are not visible units: b0 (unknown), "
                              "h (hidden)")
