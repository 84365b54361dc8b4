"""The DBN as a population Network: to_network/from_network, `dbn export`, `dbn classify`,
and the model file read by show, infer and sample."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from neurosim import Network
from neurosim.cli import main
from neurosim.compiled import Chains, compile
from neurosim.errors import ValidationError
from neurosim.machines.dbn import DeepBeliefNet, upgrade_labels
from neurosim.machines.dbn_readout import classify, label_counts, top_rbm
from neurosim.modelfile import load, save
from neurosim.numerics import softmax
from test_cli_mnist import fake_mnist  # noqa: F401  (a fixture)


def random_dbn(sizes, n_labels, seed=0) -> DeepBeliefNet:
    rng = np.random.default_rng(seed)
    dbn = DeepBeliefNet(sizes, n_labels)
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        dbn.add_rbm(rng.normal(size=(a, b)), rng.normal(size=a), rng.normal(size=b))
        dbn.G[-1] += rng.normal(size=dbn.G[-1].shape).astype(np.float32)   # untied, as after up-down
    dbn.set_top(rng.normal(size=(sizes[-2], sizes[-1])), rng.normal(size=(n_labels, sizes[-1])),
                rng.normal(size=sizes[-2]), rng.normal(size=n_labels), rng.normal(size=sizes[-1]))
    return dbn


def same(a: DeepBeliefNet, b: DeepBeliefNet) -> bool:
    da, db = a.state_dict(), b.state_dict()
    return da.keys() == db.keys() and all(np.array_equal(da[k], db[k]) and da[k].dtype == db[k].dtype
                                          for k in da)


@pytest.mark.parametrize("sizes,n_labels", [((7, 5, 4, 6), 3), ((6, 4), 2), ((5, 4, 3, 3, 4), 0)])
def test_to_network_round_trips_bit_for_bit_through_the_model_file(sizes, n_labels, tmp_path):
    dbn = random_dbn(sizes, n_labels)
    net = dbn.to_network()
    assert same(DeepBeliefNet.from_network(net), dbn)
    save(net, tmp_path / "dbn.toml", format="populations")
    assert same(DeepBeliefNet.from_network(load(tmp_path / "dbn.toml")), dbn)


def test_the_network_means_what_the_dbn_means():
    dbn = random_dbn((7, 5, 4, 6), 3)
    net = dbn.to_network()
    assert [p.name for p in net.populations] == ["v", "h1", "h2", "label", "top"]
    assert {q.name: q.kind for q in net.projections} == {
        "h2->h1": "directed", "h1->v": "directed", "v->h1": "recognition", "h1->h2": "recognition",
        "h2<->top": "symmetric", "label<->top": "symmetric"}
    # per-unit views: a generative weight, a recognition weight, a top-RBM weight both ways
    assert net.weight("h2_3", "h1_1") == dbn.G[1][3, 1]
    assert net.weight("v_2", "h1_4", recognition=True) == dbn.R[0][2, 4]
    assert net.weight("label_2", "top_5") == net.weight("top_5", "label_2") == dbn.U[2, 5]
    assert net.unit("h1_0").recognition_bias == dbn.r[0][0] and net.unit("h1_0").bias == dbn.g[1][0]
    # compiled: Gibbs on the top RBM, then an ancestral pass down; with a label clamped the
    # directed part below is drawn from the pen layer exactly as DeepBeliefNet.down does
    c = compile(net, dtype=np.float64)
    steps = c.plan().steps
    assert c.plan().mode == "mixed" and [s.kind for s in steps] == ["gibbs", "gibbs", "ancestral", "ancestral"]
    assert {c.units[i] for i in steps[2].index} == set(net.population("h1").units)


def test_from_network_refuses_what_is_not_a_dbn():
    net = random_dbn((7, 5, 4, 6), 3).to_network()
    pops, projs = list(net.populations), [q for q in net.projections if q.name != "v->h1"]
    with pytest.raises(ValidationError, match="recognition projection v -> h1 is missing"):
        DeepBeliefNet.from_network(Network.from_populations(pops, projs))


def test_a_full_scale_dbn_builds_with_no_work_per_synapse():
    import time

    dbn = random_dbn((784, 500, 500, 2000), 10)
    start = time.perf_counter()
    net = dbn.to_network()
    back = DeepBeliefNet.from_network(net)
    assert time.perf_counter() - start < 1.0          # measured: 0.02 s (Network(units, edges): minutes)
    assert same(back, dbn) and net.n_units == 3794


def test_gibbs_label_counts_sample_the_exact_label_posterior():
    """Pen states clamped, one sample per chain after burn-in: chains are independent, so
    for each label the count over n chains minus sum_chains p(y | pen) has standard
    deviation sqrt(sum p (1 - p)); every label stays within 4 of them (a false alarm has
    probability < 1e-3 over the 4 labels)."""
    dbn = random_dbn((7, 5, 6, 8), 4, seed=3)
    net = dbn.to_network()
    rng = np.random.default_rng(1)
    n = 4000
    pen = (rng.random((n, 6)) < 0.5).astype(np.float32)
    exact = softmax(-dbn.label_free_energies(pen))                  # p(y | pen), chains x labels
    rbm = top_rbm(net)
    chains = Chains(compile(rbm, dtype=np.float64), rng, n, init=np.zeros((n, rbm.n_units)))
    counts = label_counts(chains, rbm, pen, sweeps=1, burn_in=30)
    assert (counts.sum(axis=1) == 1).all()                           # one label on: a softmax group
    sd = np.sqrt((exact * (1 - exact)).sum(axis=0))
    z = np.abs(counts.sum(axis=0) - exact.sum(axis=0)) / sd
    assert z.max() < 4, z
    # negative control: the labels as independent logistic units fail the same test
    rbm = logistic_labels(rbm)
    chains = Chains(compile(rbm, dtype=np.float64), rng, n, init=np.zeros((n, rbm.n_units)))
    counts = label_counts(chains, rbm, pen, sweeps=1, burn_in=30)
    assert (np.abs(counts.sum(axis=0) - exact.sum(axis=0)) / sd).max() > 4


def logistic_labels(net):
    """``net`` with its labels as independent logistic units (a wrong model, for negative
    controls; also the form DBN models were exported in before the labels were softmax)."""
    pops = [replace(p, activation="logistic") for p in net.populations]
    return Network.from_populations(pops, net.projections, net.name, net.description)


def test_a_dbn_exported_with_logistic_labels_is_upgraded_to_the_softmax_group(tmp_path):
    """A model file written before the labels were a softmax population (every
    population ``activation = "logistic"``) loads as the same DBN with a softmax label
    group, and reads out as the new file does, draw for draw; a net that is not a DBN
    keeps its logistic label units."""
    dbn = random_dbn((7, 5, 6, 8), 4, seed=3)
    save(logistic_labels(dbn.to_network()), tmp_path / "old.toml", format="populations")
    old = load(tmp_path / "old.toml")
    assert old.population("label").activation == "logistic" and not old.softmax_groups()
    net = upgrade_labels(old)
    assert net.population("label").activation == "softmax" and len(net.softmax_groups()) == 1
    assert same(DeepBeliefNet.from_network(net), dbn) and net.edge_order() == old.edge_order()
    fresh = dbn.to_network()
    assert upgrade_labels(fresh) is fresh                                 # already softmax: untouched
    X = np.random.default_rng(0).random((30, 7))
    assert (classify(old, X, "gibbs", np.random.default_rng(1)).labels
            == classify(fresh, X, "gibbs", np.random.default_rng(1)).labels).all()
    rbm = logistic_labels(top_rbm(fresh))                                 # not a DBN: no layers 0, 1
    assert upgrade_labels(rbm) is rbm


def _train(tmp_path, hidden="30,30,60", pretrain="20"):
    run = tmp_path / "run"
    assert main(["dbn", "train", "--hidden", hidden, "--pretrain-epochs", pretrain, "--updown-epochs", "1",
                 "--backprop-epochs", "0", "--out", str(run)]) == 0
    return run


def _json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_export_then_classify_gives_the_runs_error_and_gibbs_agrees(fake_mnist, tmp_path, capsys):  # noqa: F811
    run = _train(tmp_path)
    model = tmp_path / "dbn.toml"
    assert main(["dbn", "export", str(run), "--out", str(model)]) == 0
    assert model.exists() and (tmp_path / "dbn.npz").exists()
    evaluated = _json(capsys, ["dbn", "evaluate", str(run), "--json"])
    fe = _json(capsys, ["dbn", "classify", str(model), "--method", "free-energy", "--json"])
    assert fe["test_error"] == evaluated["test_error_generative"]          # exactly
    assert (fe["cases"], fe["backend"], fe["method"]) == (100, "compiled", "free-energy")
    assert set(fe) == {"test_error", "cases", "backend", "method", "messages", "seconds"}
    gibbs = _json(capsys, ["dbn", "classify", str(model), "--method", "gibbs", "--seed", "0", "--json"])
    assert gibbs["messages"]["binary"] > 0 and gibbs["messages"]["analog"] == 0
    # The gibbs read-out estimates, by counting label firings, the exact read-out of the same
    # sampled up-pass (argmin_y F(h, y)): McNemar on the same 100 digits: if both have one
    # error rate, the digits only one gets wrong split evenly, b - c ~ N(0, b + c); allow
    # 3 standard deviations
    from neurosim.data import load_mnist
    from neurosim.machines.dbn_readout import classify

    X, y = load_mnist("test")
    r = classify(load(model), X, "gibbs", np.random.default_rng(0))
    assert np.mean(r.labels != y) == gibbs["test_error"]                   # the CLI is this call
    g, f = r.labels, r.given_up_pass
    b, c = int(np.sum((g != y) & (f == y))), int(np.sum((g == y) & (f != y)))
    assert abs(b - c) <= 3 * math.sqrt(b + c) + 1, (b, c)
    assert np.mean(g == f) > 0.8
    assert gibbs["test_error"] < 0.5                                        # chance: 0.9


def test_classify_refuses_bad_models(fake_mnist, tmp_path, capsys):  # noqa: F811
    run = _train(tmp_path, "10,10,12", "1")
    model = tmp_path / "dbn.toml"
    assert main(["dbn", "export", str(run), "--out", str(model)]) == 0
    assert main(["dbn", "classify", str(model), "--backend", "event", "--method", "free-energy"]) == 2
    assert "compiled only" in capsys.readouterr().err
    # no label units
    net = load(model)
    pops = [p for p in net.populations if p.role != "label"]
    projs = [q for q in net.projections if q.pre != "label"]
    save(Network.from_populations(pops, projs), tmp_path / "nolabel.toml", format="populations")
    assert main(["dbn", "classify", str(tmp_path / "nolabel.toml")]) == 2
    assert "no label units" in capsys.readouterr().err
    # a weight block of the wrong shape: named by file and projection
    npz = tmp_path / "dbn.npz"
    arrays = dict(np.load(npz))
    arrays["weights/h1->v"] = arrays["weights/h1->v"][:, :-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    bad = (tmp_path / "dbn.toml").read_text().replace('"dbn.npz"', '"bad.npz"')
    import hashlib

    bad = bad.replace(_sha(npz), hashlib.sha256((tmp_path / "bad.npz").read_bytes()).hexdigest())
    (tmp_path / "bad.toml").write_text(bad)
    for argv in (["dbn", "classify", str(tmp_path / "bad.toml")], ["show", str(tmp_path / "bad.toml")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "bad.npz" in err and "h1->v" in err, err
    # truncated, then missing
    npz.write_bytes(npz.read_bytes()[:100])
    for argv in (["dbn", "classify", str(model)], ["show", str(model)]):
        assert main(argv) == 2
        assert "dbn.npz" in capsys.readouterr().err
    npz.unlink()
    assert main(["dbn", "classify", str(model)]) == 2
    assert "dbn.npz" in capsys.readouterr().err


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sample_with_a_label_clamped_matches_exact_enumeration(tmp_path, capsys):
    """`neurosim sample MODEL --evidence label=1` (compiled, one sample per chain after
    burn-in: independent samples) against the exact posterior of the 8 free units; the
    bound is tests/helpers.kl_bound's G-test bound with no inflation (independent chains)."""
    from helpers import empirical_kl, kl_bound
    from neurosim.inference import posterior

    net = random_dbn((3, 2, 3), 2, seed=5).to_network()
    save(net, tmp_path / "tiny.toml", format="populations")
    n = 20000
    r = _json(capsys, ["sample", str(tmp_path / "tiny.toml"), "--evidence", "label=1", "--backend", "compiled",
                       "--chains", str(n), "--n", str(n), "--burn-in", "30", "--json"])
    assert r["schedule"] == "mixed"
    exact = posterior(net, {"label_0": 0, "label_1": 1})
    cols = [r["units"].index(u) for u in exact.units]
    samples = np.array([[int(bits[i]) for i in cols] for bits, c in r["counts"].items() for _ in range(c)])
    assert all(bits[r["units"].index("label_1")] == "1" and bits[r["units"].index("label_0")] == "0"
               for bits in r["counts"])
    assert empirical_kl(samples, exact) < kl_bound(2 ** len(exact.units), n, inflation=1.0)
    # a wrong label is a different distribution: the same samples fail against it
    assert empirical_kl(samples, posterior(net, {"label_0": 1, "label_1": 0})) > \
        kl_bound(2 ** len(exact.units), n, inflation=1.0)


def test_population_evidence_is_unambiguous(tmp_path, capsys):
    from neurosim.evidence import parse_evidence
    from neurosim.errors import EvidenceError

    net = random_dbn((3, 2, 3), 3).to_network()
    assert parse_evidence(["label=2"], net) == {"label_0": 0, "label_1": 0, "label_2": 1}
    assert parse_evidence(["label=2", "label_2=1", "v_0=0"], net)["v_0"] == 0
    for items, message in ((["label=3"], "write label=0 .. label=2"), (["label=x"], "label units"),
                           (["label=1", "label_1=0"], "given twice"), (["h1=1"], "role 'hidden'"),
                           (["label=3"], "NAME=0 or NAME=1")):
        with pytest.raises(EvidenceError, match=message):
            parse_evidence(items, None if message.startswith("NAME") else net)  # no net: units only
    save(net, tmp_path / "tiny.toml", format="populations")
    assert main(["infer", str(tmp_path / "tiny.toml"), "--evidence", "label=7"]) == 2
    assert "label=0 .. label=2" in capsys.readouterr().err


def test_draw_summarises_a_large_net_by_population(tmp_path, capsys):
    from neurosim.viz import drawable

    net = random_dbn((60, 50, 50, 80), 10).to_network()
    summary, summarised = drawable(net)
    assert summarised and summary.units == ["v", "h1", "h2", "label", "top"]
    assert summary.weight("h1", "h2", recognition=True) == pytest.approx(net.projection("h1->h2").weights.mean())
    assert summary.weight("label", "top") == pytest.approx(net.projection("label<->top").weights.mean())
    small = random_dbn((3, 2, 3), 2).to_network()
    assert drawable(small) == (small, False)                       # small nets: unit by unit, as before
    save(net, tmp_path / "dbn.toml")
    for model in (tmp_path / "dbn.toml", "models/helmholtz_shifter.toml"):   # recognition edges: dashed
        assert main(["draw", str(model), "--out", str(tmp_path / "net.png")]) == 0
    assert main(["draw", str(tmp_path / "dbn.toml"), "--out", str(tmp_path / "x.png"), "--evidence", "label=1"]) == 2
    assert "by population" in capsys.readouterr().err


def test_save_and_load_as_a_model_file(tmp_path):
    dbn = random_dbn((7, 5, 4, 6), 3)
    dbn.save(tmp_path / "dbn.toml")       # small, but its labels are softmax: populations, not [[unit]] tables
    assert "[[unit]]" not in (tmp_path / "dbn.toml").read_text() and (tmp_path / "dbn.npz").exists()
    assert same(DeepBeliefNet.load(tmp_path / "dbn.toml"), dbn)
    assert same(DeepBeliefNet.load(tmp_path / "dbn.toml", n_labels=3), dbn)
    with pytest.raises(Exception, match="n_labels=4 does not match"):
        DeepBeliefNet.load(tmp_path / "dbn.toml", n_labels=4)
