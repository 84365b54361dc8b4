"""One base for the machines (neurosim/machines/base.py): parameters in scikit-learn's manner,
one set of checkers, NotFittedError, one .npz format, and resumable training (runs.fit_run)
for every machine that trains in minibatches."""

import os
import signal

import numpy as np
import pytest

from neurosim import RBM, load_model
from neurosim.errors import ModelFileError, ParameterError
from neurosim.machines import (BoltzmannMachine, DeepBeliefNet, DeepBoltzmannMachine, HelmholtzMachine,
                               SigmoidBeliefNet)
from neurosim.machines.base import (BINARY, FINITE, UNIT, DataTypeError, Machine, NotFittedError, binary_rows,
                                    check_dtype, check_number, check_random_state, check_rows, first_non_finite)
from neurosim.machines.runs import fit_run

ENCODER = "models/encoder_424.toml"
SBN = "models/sigmoid_belief_net.toml"


def _data(n_visible, rows=24, seed=0):
    return np.random.default_rng(seed).integers(0, 2, (rows, n_visible)).astype(np.float64)


# (machine factory, data) for each machine that trains in minibatches
MACHINES = {
    "rbm": (lambda **p: RBM(3, **{"batch_size": 5, "n_iter": 3, "momentum": 0.5, **p}), _data(4)),
    "boltzmann": (lambda **p: BoltzmannMachine(load_model(ENCODER), **{"batch_size": 5, "n_iter": 3, "n_chains": 10,
                                                                       "momentum": 0.5, **p}), _data(8)),
    "pcd": (lambda **p: BoltzmannMachine(RBM(3, n_iter=1, random_state=0).fit(np.eye(4)).to_network(),
                                         **{"procedure": "pcd", "batch_size": 5, "n_iter": 3, "n_chains": 6, **p}),
            _data(4)),
    "helmholtz": (lambda **p: HelmholtzMachine((4, 3, 2), **{"batch_size": 5, "n_iter": 3, **p}), _data(4)),
    "sbn": (lambda **p: SigmoidBeliefNet(load_model(SBN), **{"batch_size": 5, "n_iter": 3, **p}), _data(4)),
    "dbm": (lambda **p: DeepBoltzmannMachine((4, 3, 2), **{"batch_size": 5, "n_iter": 3, "n_chains": 6,
                                                           "pretrain_epochs": 2, **p}), _data(4)),
}


def _weights(m):
    return [np.asarray(a) for a in m._arrays().values() if np.asarray(a).dtype.kind == "f"]


def test_every_machine_is_on_the_one_base():
    for make, _ in MACHINES.values():
        assert isinstance(make(), Machine)
    assert issubclass(DeepBeliefNet, Machine)


@pytest.mark.parametrize("name", MACHINES)
def test_params_are_stored_by_init_and_checked_at_fit(name):
    make, X = MACHINES[name]
    m = make(random_state=0)
    params = m.get_params()
    assert params["random_state"] == 0 and params["batch_size"] == 5
    assert m.set_params(batch_size=0) is m and m.batch_size == 0          # stored, not checked
    with pytest.raises(ParameterError, match=r"^batch_size must be >= 1, got 0$"):
        m.fit(X)
    with pytest.raises(ParameterError, match=f"unknown parameter 'lr' of {type(m).__name__}"):
        m.set_params(lr=0.1)
    assert repr(make(random_state=7)).startswith(type(m).__name__ + "(") and "random_state=7" in repr(
        make(random_state=7))


@pytest.mark.parametrize("name", MACHINES)
def test_random_state_is_one_generator_however_given(name):
    """An int, the Generator it seeds, and a RandomState (scikit-learn's kind) are each
    accepted; the first two give the same weights."""
    make, X = MACHINES[name]
    by_int = _weights(make(random_state=4).fit(X))
    by_generator = _weights(make(random_state=np.random.default_rng(4)).fit(X))
    assert all(np.array_equal(a, b) for a, b in zip(by_int, by_generator))
    make(random_state=np.random.RandomState(4)).fit(X)
    with pytest.raises(ParameterError, match="random_state must be None, a non-negative integer"):
        make(random_state=-1).fit(X)


@pytest.mark.parametrize("name", MACHINES)
def test_npz_round_trip_keeps_weights_and_parameters(name, tmp_path):
    make, X = MACHINES[name]
    m = make(random_state=2, learning_rate=0.2).fit(X)
    m.save(tmp_path / "m.npz", info={"note": "x"})
    back = type(m).load(tmp_path / "m.npz")
    assert all(np.array_equal(a, b) for a, b in zip(_weights(m), _weights(back)))
    assert back.learning_rate == 0.2 and back.random_state == 2 and back.n_iter == 3
    assert back.n_iter_ == m.n_iter_
    assert type(m).load_info(tmp_path / "m.npz") == {"note": "x"}          # one load_info for every machine
    other = RBM if type(m) is not RBM else HelmholtzMachine
    with pytest.raises(ModelFileError, match=r"m\.npz: not an? \w+ file"):
        other.load(tmp_path / "m.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "m.npz").read_bytes()[:200])
    with pytest.raises(ModelFileError, match=r"cut\.npz: not a readable"):
        type(m).load(tmp_path / "cut.npz")


def test_toml_stays_the_model_file_export(tmp_path):
    hm = MACHINES["helmholtz"][0](random_state=0).fit(_data(4))
    hm.save(tmp_path / "h.toml")
    assert load_model(tmp_path / "h.toml") == hm.to_network()
    dbn = DeepBeliefNet((4, 3, 2), 2)
    with pytest.raises(ParameterError, match="this DBN has 0 of 1 directed layers"):
        dbn.save(tmp_path / "d.npz")


def test_dbn_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    dbn = DeepBeliefNet((4, 3, 2), 2)
    dbn.add_rbm(rng.normal(size=(4, 3)), np.zeros(4), np.zeros(3))
    dbn.set_top(rng.normal(size=(3, 2)), rng.normal(size=(2, 2)), np.zeros(3), np.zeros(2), np.zeros(2))
    dbn.save(tmp_path / "d.npz")
    back = DeepBeliefNet.load(tmp_path / "d.npz")
    assert back.sizes == (4, 3, 2) and all(np.array_equal(v, back.state_dict()[k])
                                           for k, v in dbn.state_dict().items())
    assert repr(back) == "DeepBeliefNet((4, 3, 2), 2)"
    dbn.save(tmp_path / "d.toml")                      # issue 24: a DBN has a model-file form now
    assert all(np.array_equal(v, DeepBeliefNet.load(tmp_path / "d.toml").state_dict()[k])
               for k, v in dbn.state_dict().items())


def test_not_fitted_is_one_error():
    for m in (RBM(2), HelmholtzMachine((3, 2))):
        with pytest.raises(NotFittedError, match=f"this {type(m).__name__} has no weights yet"):
            m.save("x.npz")


def test_the_checkers_name_the_value():
    assert check_number("k", 3, 1, integer=True) == 3 and check_number("lr", 0.5, 0, low_open=True) == 0.5
    for args, message in [(("k", 0, 1, None, True), "k must be >= 1, got 0"),
                          (("k", 2.5, 1, None, True), "k must be an integer, got 2.5"),
                          (("m", 1.0, 0.0, 1.0, False, False, True), "m must be < 1.0, got 1.0"),
                          (("x", float("nan")), "x must be finite, got nan")]:
        with pytest.raises(ParameterError, match=f"^{message}$"):
            check_number(*args)
    rs = np.random.RandomState(0)
    assert check_random_state(rs).random() != check_random_state(rs).random()      # separate streams
    with pytest.raises(ParameterError, match=r"X\[1, 0\] = 0.5 \(unit 'a'\): states must be 0 or 1"):
        binary_rows([[0, 1], [0.5, 1]], 2, "X", ["a", "b"])


def test_one_input_check_for_dense_and_sparse_rows():
    """check_rows (every machine's input): a bad entry is named by row, column and unit
    alike in an array and in a CSR matrix's stored values; sparse input stays sparse."""
    sp = pytest.importorskip("scipy.sparse")
    A = np.zeros((3, 4))
    A[2, 3], A[1, 1] = 1.5, 1.0
    for X in (A, sp.csr_matrix(A), sp.coo_matrix(A)):
        for rules, rule in ((UNIT, "values must lie in"), (BINARY, "states must be 0 or 1")):
            with pytest.raises(ParameterError, match=fr"^D\[2, 3\] = 1.5 \(unit 'd'\): {rule}"):
                check_rows(X, "D", columns="abcd", values=rules)
    A[2, 3] = -np.inf
    with pytest.raises(ParameterError, match=r"^X\[2, 3\] = -inf: values must be finite"):
        check_rows(sp.csr_matrix(A), values=FINITE)
    A[2, 3] = 1.0
    assert check_rows(sp.csr_matrix(A), dtype=np.float32).dtype == np.float32
    assert check_rows(sp.csr_matrix(A)).format == "csr"
    np.testing.assert_array_equal(binary_rows(sp.csr_matrix(A), 4, "X", "abcd"), A)   # densified for 0/1
    assert check_rows(A.astype(np.float32), dtype=None).dtype == np.float32         # None: the data's float
    assert check_rows(A.astype(int), dtype=None).dtype == np.float64
    np.testing.assert_array_equal(binary_rows([["1", "0"]], 2, "X", "ab"), [[1.0, 0.0]])   # numbers as text
    for X, kind, message in [(np.zeros((0, 4)), ParameterError, "X has no rows"),
                             (np.zeros(4), ParameterError, r"2-D array of shape \(n_cases, 4\), got shape \(4,\)"),
                             ([[{}]], DataTypeError, "X must be a 2-D array of numbers"),
                             (np.zeros((2, 3)), ParameterError, "X has 3 features, but RBM is expecting 4")]:
        with pytest.raises(kind, match=message):
            check_rows(X, n_columns=4, owner="RBM")
    assert check_dtype(None) is None and check_dtype("float32") == np.float32
    with pytest.raises(ParameterError, match="dtype must be None, numpy.float32 or numpy.float64, got 'int8'"):
        check_dtype("int8")
    assert first_non_finite(np.ones((2, 2))) is None
    assert first_non_finite(np.array([[1.0, 2.0], [np.nan, 0.0]])) == "[1, 0] = nan"


@pytest.mark.parametrize("name", MACHINES)
def test_every_machine_resumes_exactly(name, tmp_path):
    """Ctrl-C after minibatch 2 of epoch 1, then fit_run again: the weights (and the random
    stream after) of an uninterrupted fit, bit for bit."""
    make, X = MACHINES[name]
    whole = make(random_state=9).fit(X)

    def interrupt(at):
        if (at.epoch, at.batch) == (1, 2):
            os.kill(os.getpid(), signal.SIGINT)

    path = tmp_path / "c.npz"
    with pytest.raises(KeyboardInterrupt):
        fit_run(make(random_state=9), X, path, log=lambda m: None, after_batch=interrupt)
    resumed = make(random_state=9)
    fit_run(resumed, X, path, log=lambda m: None)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(whole), _weights(resumed)))
    assert whole.random_state_.random() == resumed.random_state_.random()


# -- restarts chosen on held-out likelihood ------------------------------------------------------
@pytest.mark.parametrize("name", ["boltzmann", "helmholtz"])
def test_restarts_keep_the_best_held_out_candidate_and_equal_its_plain_fit(name):
    """Three restarts screened for 2 epochs: the kept one has the highest held-out score,
    each score is that of a 2-epoch fit from the candidate's stream, and the result is a
    plain 4-epoch fit from the kept stream, bit for bit (the spawned streams of seed 3)."""
    make, X = MACHINES[name]
    X_valid = _data(X.shape[1], rows=10, seed=1)
    m = make(random_state=3, n_iter=4, n_restarts=3, restart_epochs=2).fit(X, X_valid=X_valid)
    streams = np.random.default_rng(3).spawn(3)
    assert m.restart_chosen_ == int(np.argmax(m.restart_scores_)) and len(m.restart_scores_) == 3
    for j, score in enumerate(m.restart_scores_):
        assert make(random_state=np.random.default_rng(3).spawn(3)[j], n_iter=2).fit(X)._held_out_score(
            X_valid) == score
    plain = make(random_state=streams[m.restart_chosen_], n_iter=4).fit(X)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(m), _weights(plain)))
    with pytest.raises(ParameterError, match="n_restarts must be >= 1, got 0"):
        make(n_restarts=0).fit(X)
    with pytest.raises(ParameterError, match="fit_run resumes one run: n_restarts must be 1"):
        fit_run(make(n_restarts=2), X, "unused.npz")


def test_restarts_on_held_out_likelihood_escape_the_encoders_shared_code():
    """The 4-2-4 encoder (the demo's settings, 250 updates): most runs end with two
    patterns sharing a hidden code; of 16 restarts the one of highest exact likelihood of
    the four patterns has four distinct codes, and the lowest KL of them all."""
    from neurosim.data import encoder_424

    data = encoder_424()
    settings = dict(learning_rate=0.5, positive_sweeps=5, negative_sweeps=5, n_chains=100,
                    persistent=False, anneal=(8.0, 6.0, 4.0, 3.0, 2.0, 1.5))
    bm = BoltzmannMachine(load_model(ENCODER), n_iter=250, n_restarts=16, restart_epochs=250, random_state=0,
                          **settings).fit(np.tile(data.data, (25, 1)), X_valid=data.data)
    codes = {tuple(int(p > 0.5) for p in row) for row in bm.transform(data.data, method="exact")}
    assert len(codes) == 4
    shared = sum(s < -np.log(4) - 0.3 for s in bm.restart_scores_)        # KL > 0.3 nats: a shared code
    assert shared >= 8 and bm.exact_kl(data.data, data.probs) < 0.5
