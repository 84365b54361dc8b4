"""The benchmark and experiment scripts still import, and every stage ``dbn_stages.py`` times
still runs (they run by hand, so nothing else would notice an API change breaking them)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in
                 [*BENCHMARKS.glob("*.py"), *(ROOT / "experiments").glob("*.py")])


def load(name: str, folder: Path = BENCHMARKS):
    spec = importlib.util.spec_from_file_location(f"{folder.name}_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_imports(script):
    path = ROOT / script
    assert callable(load(path.stem, path.parent).main)


def test_tuning_scripts_live_in_experiments():
    assert {"updown_sweep.py", "top_rbm_sweep.py", "backprop_sweep.py", "classify_variants.py"} <= {
        Path(s).name for s in SCRIPTS if s.startswith("experiments/")}


def test_every_dbn_stage_runs_a_step():
    bench = load("dbn_stages")
    stages = bench.stages(np.random.default_rng(0))
    assert {"rbm1", "rbm2", "top", "updown_k10", "backprop", "backprop_cg3"} <= set(stages)
    for name, entry in stages.items():
        (entry if isinstance(entry, bench.CGStep) else entry[0])()
    cg = stages["backprop_cg3"]
    assert cg.steps == 1 and cg.evaluations >= 4          # the start, then >= 1 per line search
    assert cg.flops() == cg.evaluations * bench.backprop_flops(1000)


def test_dbn_stages_torch_contenders_run_a_step():
    """``--torch bfloat16``: up-down on the torch backend, a copy of the DBN of its own, and
    conjugate-gradient backprop."""
    from helpers import optional

    optional("torch")
    bench = load("dbn_stages")
    stages = bench.stages(np.random.default_rng(0), ("bfloat16",))
    for name in ("updown_k3_torch_bfloat16", "updown_k10_torch_bfloat16"):
        stages[name][0]()
    cg = stages["backprop_cg3_torch_bfloat16"]
    cg()
    assert cg.steps == 1 and cg.evaluations >= 4 and cg.settings["backend"].dtype == "bfloat16"


def test_every_autoencoder_stage_runs_a_step():
    """The RBMs (logistic and linear hidden units), the unrolled net's and logistic PCA's
    conjugate-gradient steps; FLOPs of one evaluation counted by hand for the unrolled
    784-1000-500-250-30 net (forward 2 m n_in n_out per block, backward and gradient 4,
    none into the pixels)."""
    bench = load("autoencoder_stages")
    stages = bench.stages(np.random.default_rng(0))
    assert set(stages) == {"rbm1", "rbm_code", "backprop_cg3", "logistic_pca_cg3"}
    for name, entry in stages.items():
        (entry if isinstance(entry, bench.CGStep) else entry[0])()
    weights = 2 * (784 * 1000 + 1000 * 500 + 500 * 250 + 250 * 30)
    assert stages["backprop_cg3"].evaluation_flops == 1000 * (6 * weights - 2 * 784 * 1000)
    for name in ("backprop_cg3", "logistic_pca_cg3"):
        assert stages[name].steps == 1 and stages[name].evaluations >= 4


def test_dbm_mean_field_gaps_shrink_with_iterations():
    """Undamped mean-field is coordinate ascent of the bound: the gap to the fixed point is
    >= 0 and never grows with more iterations; the damped one ends at the fixed point too."""
    from neurosim.machines.dbm import DeepBoltzmannMachine

    rng = np.random.default_rng(0)
    dbm = DeepBoltzmannMachine((12, 8, 6), n_iter=0, pretrain_epochs=0, random_state=0).fit(np.zeros((2, 12)))
    dbm.weights_ = [rng.normal(0, 1, W.shape).astype(np.float32) for W in dbm.weights_]
    V = (rng.random((100, 12)) < 0.5).astype(np.float32)
    rows = load("dbm_mean_field").measure(dbm, V)["rows"]
    undamped = [r["bound_gap_nats"] for r in rows if r["damping"] == 0.0]
    assert min(undamped) > -1e-6 and all(a >= b - 1e-6 for a, b in zip(undamped, undamped[1:]))
    assert rows[-1]["max_abs_q_error"] < 1e-4 and undamped[0] > 0


def test_dbm_flops_are_the_products_one_joint_update_makes(monkeypatch):
    """``torch_backend.dbm_flops`` against a count of every product (``2 m k n``) that one
    joint update of a small DBM makes through the backend's operations (numpy's), whose
    weights are strong enough for mean-field to run all its iterations."""
    from neurosim.compiled import arrays
    from neurosim.machines.base import Position

    bench, flops = load("torch_backend"), []
    for name in ("dot", "matmul"):
        real = getattr(arrays.NumpyOps, name)

        def counted(a, b, out=None, real=real):
            flops.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
            return real(a, b) if out is None else real(a, b, out)
        monkeypatch.setattr(arrays.NumpyOps, name, staticmethod(counted))
    layers, settings = (20, 8, 12), dict(batch_size=10, n_chains=7, mean_field_iterations=4, gibbs_steps=3)
    dbm, data = bench.dbm_machine(np.random.default_rng(0).random((10, 20)), 0, layers, init_scale=1.0, **settings)
    flops.clear()
    dbm._fit_batch(data, slice(0, 10), Position())
    assert sum(flops) == bench.dbm_flops(layers, 10, 7, 4, 3)["total"]
