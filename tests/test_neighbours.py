"""The k-nearest-neighbour error (neurosim/machines/neighbours.py): against
scikit-learn's KNeighborsClassifier where no vote can tie, against a brute-force loop
where votes tie, blocks of bounded size, and bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from helpers import optional
from neurosim.errors import ParameterError
from neurosim.machines import neighbours
from neurosim.machines.neighbours import knn_error, knn_predict


def _data(seed: int, n_classes: int, n_train: int = 300, n_test: int = 200, d: int = 5):
    """Gaussian clusters around random class centres: continuous, so no two distances tie."""
    rng = np.random.default_rng(seed)
    centres = 0.8 * rng.standard_normal((n_classes, d))
    y, t = rng.integers(0, n_classes, n_train), rng.integers(0, n_classes, n_test)
    return (centres[y] + rng.standard_normal((n_train, d)), y, centres[t] + rng.standard_normal((n_test, d)), t)


def _brute_force(train, y, test, k):
    """One test row at a time: sort all distances, count the k nearest's labels, a tie
    going to the tied label met first in order of distance."""
    guess = []
    for x in test:
        nearest = [y[i] for i in np.argsort(np.linalg.norm(train - x, axis=1), kind="stable")[:k]]
        counts = Counter(nearest)
        guess.append(next(c for c in nearest if counts[c] == max(counts.values())))
    return np.array(guess)


@pytest.mark.parametrize("n_classes, k", [(10, 1), (2, 3), (2, 7), (3, 1), (2, 299)])
def test_agrees_with_scikit_learns_classifier_where_no_vote_ties(n_classes, k):
    """With 2 classes and k odd, or k = 1, no vote can tie, so scikit-learn's tie rule
    (the smallest label) never applies: every prediction must be the same."""
    KNeighborsClassifier = optional("sklearn.neighbors").KNeighborsClassifier
    train, y, test, t = _data(n_classes + k, n_classes)
    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(train, y).predict(test)
    np.testing.assert_array_equal(knn_predict(train, y, test, k), sk)
    assert knn_error(train, y, test, t, k) == np.mean(sk != t)
    assert 0 < knn_error(train, y, test, t, k) < 1 - 1 / n_classes       # neither perfect nor chance


@pytest.mark.parametrize("k", [2, 4, 6, 10])
def test_agrees_with_a_brute_force_loop_where_votes_tie(k):
    train, y, test, t = _data(k, 5, n_train=120, n_test=150)
    brute = _brute_force(train, y, test, k)
    tied = 0
    for x in test:                                       # how many rows the tie rule decides
        votes = Counter(y[np.argsort(np.linalg.norm(train - x, axis=1))[:k]]).most_common()
        tied += len(votes) > 1 and votes[0][1] == votes[1][1]
    assert tied >= 10
    np.testing.assert_array_equal(knn_predict(train, y, test, k), brute)
    assert knn_error(train, y, test, t, k) == np.mean(brute != t)


def test_a_tied_vote_goes_to_the_nearest_neighbours_class_and_a_majority_beats_it():
    train, y = np.array([[0.0], [1.0], [1.2], [-3.0]]), np.array(["a", "b", "b", "a"])
    test = np.array([[0.1], [0.4]])
    assert list(knn_predict(train, y, test, 1)) == ["a", "a"]
    assert list(knn_predict(train, y, test, 2)) == ["a", "a"]       # a at 0.1 or 0.4, b at 0.9 or 0.6: tied 1-1
    assert list(knn_predict(train, y, test, 3)) == ["b", "b"]       # two b's outvote the nearest a
    assert list(knn_predict(train, y, test, 4)) == ["a", "a"]       # 2-2: the nearest is a


def test_blocks_stay_under_the_cell_bound_and_give_the_same_answer(monkeypatch):
    train, y, test, t = _data(5, 4)
    whole = knn_predict(train, y, test, 3)
    sizes, nearest = [], neighbours._nearest

    def recording(train, squares, block, k):
        sizes.append(len(block) * len(train))
        return nearest(train, squares, block, k)

    monkeypatch.setattr(neighbours, "_nearest", recording)
    monkeypatch.setattr(neighbours, "CELLS", 1000)                 # 3 test rows x 300 training rows a block
    np.testing.assert_array_equal(knn_predict(train, y, test, 3), whole)
    assert max(sizes) <= 1000 and len(sizes) == -(-200 // 3) and sum(sizes) == 200 * 300


def test_the_default_bound_keeps_mnist_blocks_to_tens_of_megabytes():
    rows = neighbours.CELLS // 60000
    assert 100 <= rows and rows * 60000 * 8 <= 128e6              # float64 distances of one block


@pytest.mark.parametrize("k, message", [(0, "k must be >= 1, got 0"), (1.5, "k must be an integer"),
                                        (301, "k = 301 nearest neighbours, but there are only 300 training codes")])
def test_bad_k_is_refused(k, message):
    train, y, test, t = _data(0, 3)
    with pytest.raises(ParameterError, match=message):
        knn_error(train, y, test, t, k)


def test_mismatched_inputs_are_refused_by_name():
    train, y, test, t = _data(0, 3)
    with pytest.raises(ParameterError, match=r"train_labels must be one label per row of train_codes: 300 rows, "
                                             r"got shape \(299,\)"):
        knn_error(train, y[:-1], test, t)
    with pytest.raises(ParameterError, match=r"test_labels must be one label per row of test_codes: 200 rows"):
        knn_error(train, y, test, t[:5])
    with pytest.raises(ParameterError, match="test_codes has 4 features, but the training codes is expecting 5"):
        knn_error(train, y, test[:, :4], t)
    bad = test.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ParameterError, match=r"test_codes\[3, 1\]"):
        knn_error(train, y, bad, t)
