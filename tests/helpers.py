"""Shared helpers for statistical tests: random small nets and a KL bound."""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np

from neurosim import Edge, Network, Unit
from neurosim.inference import Posterior, bitstring
from neurosim.population import Population, Projection


def random_boltzmann(rng: np.random.Generator, n_visible: int, n_hidden: int, density: float = 0.6,
                     scale: float = 1.0) -> Network:
    """A Boltzmann machine with random sparse connectivity, weights and biases ~ N(0, scale)."""
    names = [f"v{i}" for i in range(n_visible)] + [f"h{i}" for i in range(n_hidden)]
    units = [Unit(n, float(rng.normal(0, scale)), "visible" if n[0] == "v" else "hidden") for n in names]
    edges = [Edge(a, b, float(rng.normal(0, scale)), "symmetric")
             for i, a in enumerate(names) for b in names[i + 1:] if rng.random() < density]
    return Network(units, edges, name="random_bm")


def random_belief_net(rng: np.random.Generator, sizes: tuple[int, ...], density: float = 0.7,
                      scale: float = 1.0) -> Network:
    """A layered sigmoid belief net, top layer first; the last layer is visible."""
    layers = [[f"l{k}_{i}" for i in range(n)] for k, n in enumerate(sizes)]
    units = [Unit(n, float(rng.normal(0, scale)), "visible" if k == len(sizes) - 1 else "hidden")
             for k, layer in enumerate(layers) for n in layer]
    edges = [Edge(a, b, float(rng.normal(0, scale)), "directed")
             for upper, lower in zip(layers, layers[1:]) for a in upper for b in lower
             if rng.random() < density]
    return Network(units, edges, name="random_sbn")


def linear_net(rng: np.random.Generator, symmetric: bool = False) -> Network:
    """Binary units ``a`` (layer 0, visible) and linear units ``z`` (layer 1): ``a -> z``
    directed (2 and 3 units), or ``a <-> z`` symmetric, a Gaussian-hidden RBM (3 and 2);
    weights 0.5 N(0, 1), biases 0.3 N(0, 1)."""
    n_a, n_z = (3, 2) if symmetric else (2, 3)
    pops = [Population("a", tuple(f"a{i}" for i in range(n_a)), 0.3 * rng.standard_normal(n_a), "visible", 0),
            Population("z", tuple(f"z{i}" for i in range(n_z)), 0.3 * rng.standard_normal(n_z), "hidden", 1,
                       "linear")]
    proj = Projection("a-z", "a", "z", 0.5 * rng.standard_normal((n_a, n_z)),
                      "symmetric" if symmetric else "directed")
    return Network.from_populations(pops, [proj], name="linear")


def empirical_kl(samples: np.ndarray, exact: Posterior) -> float:
    """KL(empirical || exact) in nats over the states of ``exact.units``."""
    counts = Counter(bitstring(s) for s in samples)
    p = exact.joint()
    n = len(samples)
    return sum(c / n * math.log(c / n / p[k]) for k, c in counts.items())


def kl_bound(n_states: int, n_samples: int, inflation: float = 2.0, sigmas: float = 5.0) -> float:
    """Upper bound on KL(empirical || exact) for a correct sampler.

    For independent samples, 2 N KL is asymptotically chi-squared with K - 1 degrees
    of freedom (the G-test): mean K - 1, standard deviation sqrt(2 (K - 1)). Markov
    chain samples are correlated; ``inflation`` scales N down to an effective sample
    size (measured below 1.6 for these nets and schedules with one sweep between
    samples, see test_engine_statistics.py). The bound sits ``sigmas`` standard
    deviations above the mean.
    """
    dof = n_states - 1
    return inflation * (dof + sigmas * math.sqrt(2 * dof)) / (2 * n_samples)


def load_demo(name: str, folder: str = "demos") -> ModuleType:
    """Import ``demos/<name>.py`` (demos and benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_dbn(rng: np.random.Generator, top: tuple[int, int] = (2, 3), below: tuple[int, ...] = (4,),
               scale: float = 1.0) -> Network:
    """A DBN-shaped chain graph: an RBM between the two top layers, directed layers below
    (the last one visible), fully connected between adjacent layers."""
    sizes = top + below
    layers = [[f"l{k}_{i}" for i in range(n)] for k, n in enumerate(sizes)]
    units = [Unit(n, float(rng.normal(0, scale)), "visible" if k == len(sizes) - 1 else "hidden",
                  layer=len(sizes) - 1 - k) for k, layer in enumerate(layers) for n in layer]
    edges = [Edge(a, b, float(rng.normal(0, scale)), "symmetric" if k == 0 else "directed")
             for k, (upper, lower) in enumerate(zip(layers, layers[1:])) for a in upper for b in lower]
    return Network(units, edges, name="random_dbn")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``neurosim ARGV``, argparse's own exits included."""
    from neurosim import cli

    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# the start of a ``python -c`` program in which ``import torch`` fails, as where it is not installed
NO_TORCH = '''
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("No module named 'torch'")
sys.meta_path.insert(0, NoTorch())
'''


def optional(module: str) -> ModuleType:
    """``import module`` for the tests of an optional extra: skipped where it is not
    installed, except under CI (``CI`` set), which installs every extra and so fails."""
    import os

    import pytest

    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)
