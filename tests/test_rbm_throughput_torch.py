"""The PyTorch peer of benchmarks/rbm_throughput.py: optional, and the same CD-1 as
neurosim's, so the speed ratio compares like with like."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers import NO_TORCH, optional
from test_benchmarks import load

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TORCH = NO_TORCH + """
sys.path.insert(0, "tests")
import numpy as np
from test_benchmarks import load
bench = load("rbm_throughput")
torch, reason = bench.optional_torch()
X = bench.mnist_like(200, 0)
names = bench.contenders(X, X.astype(np.float32), 0)
print(torch is None, reason, any(n.startswith("torch") for n in names), "torch" in sys.modules)
"""


def test_the_benchmark_imports_and_runs_without_torch():
    """In a fresh interpreter where ``import torch`` fails: the benchmark still imports,
    records the reason, and leaves the torch contenders out."""
    out = subprocess.run([sys.executable, "-c", BLOCK_TORCH], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "True unavailable: No module named 'torch' (pip install torch) False False"


def test_torch_cd1_learns_what_neurosim_cd1_learns():
    """One pass over the same 3,000 cases from the same kind of start: the two CD-1 loops
    (different random streams) reach the same reconstruction error to 3%, far below the
    start's, and visible biases that agree to 3% on average (measured: 1.7%); a sign or
    scale error in either loop would not."""
    torch = optional("torch")
    bench = load("rbm_throughput")
    X = bench.mnist_like(3000, 1).astype(np.float32)
    W, b, c = (t.numpy() for t in bench.torch_cd1(torch, X, seed=2, n_components=100))
    ours = bench.RBM(100, batch_size=100, n_iter=1, learning_rate=0.1, persistent=False,
                     dtype=np.float32, random_state=2).fit(X)

    def reconstruction_error(W, b, c):
        H = 1 / (1 + np.exp(-(X @ W.T + c)))
        return float(np.mean((X - 1 / (1 + np.exp(-(H @ W + b)))) ** 2))

    theirs_err = reconstruction_error(W, b, c)
    ours_err = reconstruction_error(ours.components_, ours.intercept_visible_, ours.intercept_hidden_)
    start_err = reconstruction_error(0.01 * np.random.default_rng(0).normal(size=W.shape), 0 * b, 0 * c)
    assert abs(theirs_err - ours_err) < 0.03 * ours_err < 0.2 * start_err
    assert np.abs(b - ours.intercept_visible_).mean() < 0.03 * np.abs(b).mean()
