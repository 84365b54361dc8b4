"""The benchmark scripts still import, and every stage ``dbn_stages.py`` times still runs
(benchmarks run by hand, so nothing else would notice an API change breaking them)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_benchmark_imports(name):
    assert callable(load(name).main)


def test_every_dbn_stage_runs_a_step():
    bench = load("dbn_stages")
    stages = bench.stages(np.random.default_rng(0))
    assert {"rbm1", "rbm2", "top", "updown_k10", "backprop", "backprop_cg3"} <= set(stages)
    for name, entry in stages.items():
        (entry if isinstance(entry, bench.CGStep) else entry[0])()
    cg = stages["backprop_cg3"]
    assert cg.steps == 1 and cg.evaluations >= 4          # the start, then >= 1 per line search
    assert cg.flops() == cg.evaluations * bench.backprop_flops(1000)
