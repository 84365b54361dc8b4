"""Ways of reading a label out of one trained DBN, compared on the same weights.

Hinton et al. (2006, section 6.1) classify with a deterministic up-pass (probabilities)
to the pen layer, then the label whose top-RBM free energy with that label clamped is
lowest; :meth:`DeepBeliefNet.predict` does this.
The variants, on the test set and on the first 10,000 training digits:

- ``deterministic``: the above;
- ``stochastic_1``: one up-pass with sampled binary states, then the free energies;
- ``stochastic_mean_N``: free energies averaged over N sampled up-passes;
- ``gibbs_10``: the slides' recipe, 10 steps of alternating Gibbs at the top with the
  pen units clamped and mean-field labels (:func:`gibbs_10`; not the library's read-out,
  ``neurosim dbn classify --method gibbs``, which samples the up-pass and the labels).

If a variant beats the deterministic one by more than a standard error (about 0.12%
at 1.5% on 10,000 digits), classification and not learning is where error is lost.

Usage: ``python experiments/classify_variants.py RUN_DIR [--passes 5,20] [--seed 0]
--out FILE.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from neurosim.data import load_mnist  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.machines.dbn import DeepBeliefNet  # noqa: E402
from neurosim.machines.dbn_train import load_run  # noqa: E402
from neurosim.numerics import sigmoid, softmax  # noqa: E402


def mean_free_energies(dbn: DeepBeliefNet, X: np.ndarray, passes: int,
                       rng: np.random.Generator, batch: int = 1000) -> np.ndarray:
    """Label free energies (n x n_labels) averaged over ``passes`` sampled up-passes."""
    out = np.zeros((len(X), dbn.n_labels))
    for _ in range(passes):
        for i in range(0, len(X), batch):
            out[i:i + batch] += dbn.label_free_energies(dbn.up(X[i:i + batch], rng)[-1])
    return out / passes


def gibbs_10(dbn: DeepBeliefNet, X: np.ndarray, rng: np.random.Generator, n_steps: int = 10) -> np.ndarray:
    """The slides' recipe: an up-pass of probabilities, a neutral label state, ``n_steps``
    of alternating Gibbs in the top RBM with the pen units clamped (sampled top units,
    label probabilities), then the label probabilities' argmax."""
    pen = dbn.up(X)[-1]
    lab = np.full((len(X), dbn.n_labels), 1.0 / dbn.n_labels, dtype=np.float32)
    for _ in range(n_steps):
        p = sigmoid(pen @ dbn.W + lab @ dbn.U + dbn.c)
        h = (rng.random(p.shape, dtype=p.dtype) < p).astype(p.dtype)
        lab = softmax(h @ dbn.U.T + dbn.b_lab)
    return lab.argmax(axis=1)


def errors(dbn: DeepBeliefNet, X: np.ndarray, labels: np.ndarray, passes: list[int],
           seed: int) -> dict[str, float]:
    def err(pred: np.ndarray) -> float:
        return float(np.mean(pred != labels))

    result = {"deterministic": err(dbn.predict(X))}
    for n in sorted(set(passes) | {1}):
        name = "stochastic_1" if n == 1 else f"stochastic_mean_{n}"
        result[name] = err(mean_free_energies(dbn, X, n, np.random.default_rng(seed)).argmin(axis=1))
    result["gibbs_10"] = err(np.concatenate(
        [gibbs_10(dbn, X[i:i + 1000], np.random.default_rng([seed, i])) for i in range(0, len(X), 1000)]))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a `neurosim dbn train` directory past its top RBM")
    ap.add_argument("--passes", default="5,20", help="numbers of sampled up-passes to average")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        passes = [int(p) for p in a.passes.split(",")]
    except ValueError:
        sys.exit(f"classify_variants: --passes must be integers joined by commas, got {a.passes!r}")
    if min(passes) < 1:
        sys.exit(f"classify_variants: --passes must be >= 1, got {a.passes!r}")
    try:
        run = load_run(a.run)
    except NeurosimError as err:
        sys.exit(f"classify_variants: {err}")
    start = time.perf_counter()
    X_test, y_test = load_mnist("test")
    X_train, y_train = load_mnist("train")
    result = {"run": str(a.run), "reached": run.reached, "seed": a.seed,
              "standard_error_at_1.5pct_on_10k": float(np.sqrt(0.015 * 0.985 / 10_000)),
              "test": errors(run.dbn, X_test, y_test, passes, a.seed),
              "train_first10k": errors(run.dbn, X_train[:10_000], y_train[:10_000], passes, a.seed)}
    result["seconds"] = round(time.perf_counter() - start, 1)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    for split in ("test", "train_first10k"):
        print(split, "  ".join(f"{k} {100 * v:.2f}%" for k, v in result[split].items()))


if __name__ == "__main__":
    main()
