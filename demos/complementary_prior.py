"""Complementary priors: a directed net with tied weights is an RBM (Hinton 2005, section 5.1).

An RBM with weights ``W`` (visible i, hidden j), visible biases ``b`` and hidden biases
``c`` has the two factorial conditionals of alternating Gibbs sampling (eq. 1):

    P(h_j = 1 | v) = sigmoid(c_j + sum_i v_i w_ij)      (up: the transposed weights)
    P(v_i = 1 | h) = sigmoid(b_i + sum_j w_ij h_j)      (down)

The tied directed net of depth L has layers 0 (visible), 1, ..., L, alternately
visible-sized (even) and hidden-sized (odd). Each layer below the top is a sigmoid
belief net layer driven by the layer above through ``W`` or ``W^T`` and its own
biases, so each layer is one half-step of alternating Gibbs sampling. The top layer
has no parents: its units are independent, with the biases of their kind. An
ancestral pass down the net runs that Gibbs chain for L half-steps. As L grows the
distribution over the visible layer goes to the RBM's equilibrium distribution: the
infinite net with tied weights is equivalent to the RBM.

(a) The distribution of every layer is propagated down exactly, as a product of
    conditional probability tables, ``P_k = P_{k+1} T_k`` with
    ``T_k[x, y] = P(layer k = y | layer k+1 = x)``. Its distance from the RBM is
    ``KL(P_L || P_RBM)`` over the 2^4 visible vectors, where ``P_RBM(v)`` is exact
    enumeration of the RBM (neurosim.inference.exact). Depth L + 2 is depth L followed
    by one full Gibbs step v -> h -> v, whose stationary distribution is ``P_RBM``, so
    KL never rises from L to L + 2 (data-processing inequality). From L to L + 1 it
    may rise, since the top layer changes kind. For depths up to 3 (at most 14 units)
    the propagated distribution is checked against neurosim's exact enumeration of
    the Network built for that depth.

(b) Inference by the transposed weights, ``Q(h1 | v) = prod_j P(h_j | v)`` above,
    is exact when the prior over h1 is complementary. In the chain graph with the RBM
    itself on top (symmetric ``W`` between h1 and a copy v2 of the visible layer,
    directed ``W`` from h1 down to v), the marginal of h1 is ``P_RBM(h1)`` and
    ``P(v | h1) = P_RBM(v | h1)``, so ``P(h1, v) = P_RBM(h1, v)`` and
    ``P(h1 | v) = P_RBM(h1 | v) = Q(h1 | v)``: the likelihood's explaining away is
    cancelled exactly by the prior. ``posterior_max_error`` is the largest
    ``|P(h1 | v) - Q(h1 | v)|`` over all v and h1, with ``P`` from
    ``neurosim.inference.exact.posterior`` on that chain graph. In the truncated net
    the prior over h1 is the layer-1 distribution of (a), not complementary, and the
    same error (``truncated_posterior_error``, per depth) is large at depth 1 (an
    independent prior: a plain one-hidden-layer belief net) and shrinks as L grows.

Seed 0 (4 visible, 3 hidden units): KL falls from 4.5e-3 at L = 1 to 2.0e-14 at L = 20,
about 20 times lower every two layers; ``posterior_max_error`` is 2.2e-16, against 0.098
for the belief net of depth 1.

Run: ``python demos/complementary_prior.py [--seed S] [--max-depth N] [--out PNG] [--json]``.
Writes the figure to ``--out`` (default ``out/complementary_prior.png``); ``--json`` prints
``depths``, ``kl``, ``posterior_max_error`` and ``truncated_posterior_error``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from neurosim import Edge, Network, Unit, posterior
from neurosim.inference import all_states, visible_log_prob
from neurosim.inference.factorial import factorial_probs

N_VISIBLE, N_HIDDEN = 4, 3
WEIGHT_SCALE, BIAS_SCALE = 1.0, 0.5
ENUMERATED_DEPTH = 3  # 4 + 3 + 4 + 3 = 14 units: exact enumeration takes milliseconds


class RBM(NamedTuple):
    """``weights[i, j]`` joins visible i and hidden j; ``b`` visible, ``c`` hidden biases."""

    weights: np.ndarray
    b: np.ndarray
    c: np.ndarray


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of the RBM's random parameters")
    ap.add_argument("--max-depth", type=int, default=20, help="deepest tied net (default 20)")
    ap.add_argument("--out", type=Path, default=Path("out/complementary_prior.png"), help="figure file")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args(argv)
    if args.max_depth < 1:
        ap.error(f"--max-depth must be at least 1, got {args.max_depth}")
    return args


def random_rbm(rng: np.random.Generator) -> RBM:
    """Weights ~ N(0, 1), biases ~ N(0, 0.5^2)."""
    return RBM(rng.normal(0.0, WEIGHT_SCALE, (N_VISIBLE, N_HIDDEN)),
               rng.normal(0.0, BIAS_SCALE, N_VISIBLE), rng.normal(0.0, BIAS_SCALE, N_HIDDEN))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# -- the tied net as a neurosim Network --------------------------------------------------
def is_visible_sized(k: int) -> bool:
    return k % 2 == 0


def layer_names(k: int) -> list[str]:
    """``v0_0 .. v0_3`` (the visible layer), ``h1_0 .. h1_2``, ``v2_0 ..``, ..."""
    kind, size = ("v", N_VISIBLE) if is_visible_sized(k) else ("h", N_HIDDEN)
    return [f"{kind}{k}_{i}" for i in range(size)]


def layer_biases(rbm: RBM, k: int) -> np.ndarray:
    return rbm.b if is_visible_sized(k) else rbm.c


def weights_into(rbm: RBM, k: int) -> np.ndarray:
    """Weights from layer k + 1 into layer k, indexed [unit of layer k, unit of layer k + 1]."""
    return rbm.weights if is_visible_sized(k) else rbm.weights.T


def tied_network(rbm: RBM, depth: int, rbm_top: bool = False) -> Network:
    """The tied net of layers ``depth`` (top) down to 0 (visible).

    Edges run from layer k + 1 to layer k with weight ``w_ij`` between visible-sized
    unit i and hidden-sized unit j. With ``rbm_top`` the edges between the top two
    layers are symmetric: the RBM itself stands for the infinite net above layer
    ``depth - 1`` (``depth=1`` gives the RBM, ``depth=2`` the chain graph of (b)).
    """
    units = [Unit(name, float(bias), "visible" if k == 0 else "hidden", k)
             for k in range(depth, -1, -1) for name, bias in zip(layer_names(k), layer_biases(rbm, k))]
    edges = []
    for k in range(depth - 1, -1, -1):
        kind = "symmetric" if rbm_top and k == depth - 1 else "directed"
        upper, lower = layer_names(k + 1), layer_names(k)
        w = weights_into(rbm, k)
        edges += [Edge(u, low, float(w[i, j]), kind) for j, u in enumerate(upper)
                  for i, low in enumerate(lower)]
    name = f"tied_rbm_top_{depth}" if rbm_top else f"tied_{depth}"
    return Network(units, edges, name=name, description="Hinton (2005), section 5.1")


# -- (a) exact propagation down the net --------------------------------------------------
def conditional_table(rbm: RBM, k: int) -> np.ndarray:
    """``T[x, y] = P(layer k = y | layer k + 1 = x)``, states in ``all_states`` order."""
    above = all_states(len(layer_names(k + 1))).astype(np.float64)
    below = all_states(len(layer_names(k)))
    q = sigmoid(layer_biases(rbm, k) + above @ weights_into(rbm, k).T)
    return np.stack([factorial_probs(row, below) for row in q])


def propagate(rbm: RBM, depth: int) -> list[np.ndarray]:
    """Exact distributions of layers 0..depth (index k: layer k) of the truncated net."""
    top = factorial_probs(sigmoid(layer_biases(rbm, depth)), all_states(len(layer_names(depth))))
    dists = [top]
    for k in range(depth - 1, -1, -1):
        dists.append(dists[-1] @ conditional_table(rbm, k))
    return dists[::-1]


def enumerated_visible(net: Network) -> np.ndarray:
    """P(layer 0 = v) for every v, by neurosim's exact enumeration of ``net``."""
    return np.exp(visible_log_prob(net, layer_names(0), all_states(N_VISIBLE)))


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) = sum_x q (1 + r) log(1 + r) - q r with r = p/q - 1 (the added terms sum
    to 0): every term is non-negative and ~ q r^2 / 2, so tiny KLs keep their digits."""
    r = (p - q) / q
    return float(np.sum(q * ((1.0 + r) * np.log1p(r) - r)))


# -- (b) the posterior over the first hidden layer ---------------------------------------
def transposed_weights_posterior(rbm: RBM) -> np.ndarray:
    """``Q[v, h] = prod_j P(h_j | v)``: factorial inference by ``W^T``. It is the table of
    layer 1 given layer 2 of the tied net, a visible-sized layer driving a hidden-sized one."""
    return conditional_table(rbm, 1)


def truncated_posterior(rbm: RBM, prior_h1: np.ndarray) -> np.ndarray:
    """``P(h1 | v)[v, h]`` by Bayes' rule from a prior over h1 and ``P(v | h1)``."""
    joint = prior_h1[:, None] * conditional_table(rbm, 0)
    return (joint / joint.sum(axis=0)).T


def enumerated_h1_posterior(net: Network) -> np.ndarray:
    """``P(h1 | v)[v, h]`` by ``neurosim.inference.exact.posterior``, other layers summed out."""
    place = 1 << np.arange(N_HIDDEN - 1, -1, -1)
    rows = []
    for v in all_states(N_VISIBLE):
        post = posterior(net, dict(zip(layer_names(0), map(int, v))))
        cols = [post.units.index(name) for name in layer_names(1)]
        rows.append(np.bincount(post.states[:, cols] @ place, weights=post.probs,
                                minlength=2 ** N_HIDDEN))
    return np.array(rows)


def distance_from_factorial(post: np.ndarray) -> float:
    """Largest ``|P(h | v) - prod_j P(h_j | v)|``: P against the product of its own marginals."""
    states = all_states(N_HIDDEN)
    return max(float(np.abs(row - factorial_probs(row @ states, states)).max()) for row in post)


def max_abs(x: np.ndarray) -> float:
    return float(np.abs(x).max())


# -- the demo ---------------------------------------------------------------------------
def enumeration_check(rbm: RBM, p_rbm: np.ndarray, depth: int) -> dict:
    """Depths 1..depth again, by exact enumeration of each tied Network, and the largest
    difference from the propagated tables."""
    out: dict = {"depths": [], "kl": [], "posterior_error": [], "max_difference": 0.0}
    for L in range(1, depth + 1):
        net, dists = tied_network(rbm, L), propagate(rbm, L)
        p, post = enumerated_visible(net), enumerated_h1_posterior(net)
        out["depths"].append(L)
        out["kl"].append(kl_divergence(p, p_rbm))
        out["posterior_error"].append(max_abs(post - transposed_weights_posterior(rbm)))
        out["max_difference"] = max(out["max_difference"], max_abs(p - dists[0]),
                                    max_abs(post - truncated_posterior(rbm, dists[1])))
    return out


def run(args: argparse.Namespace) -> dict:
    rbm = random_rbm(np.random.default_rng(args.seed))
    p_rbm = enumerated_visible(tied_network(rbm, 1, rbm_top=True))
    q = transposed_weights_posterior(rbm)
    depths = list(range(1, args.max_depth + 1))
    kl, post_error, non_factorial = [], [], []
    for L in depths:
        dists = propagate(rbm, L)
        post = truncated_posterior(rbm, dists[1])
        kl.append(kl_divergence(dists[0], p_rbm))
        post_error.append(max_abs(post - q))
        non_factorial.append(distance_from_factorial(post))
    complementary = enumerated_h1_posterior(tied_network(rbm, 2, rbm_top=True))
    return {"depths": depths, "kl": kl, "posterior_max_error": max_abs(complementary - q),
            "truncated_posterior_error": post_error, "truncated_non_factorial": non_factorial,
            "enumeration": enumeration_check(rbm, p_rbm, min(ENUMERATED_DEPTH, args.max_depth)),
            "seed": args.seed}


JSON_KEYS = ("depths", "kl", "posterior_max_error", "truncated_posterior_error")


def plot_convergence(ax: Axes, result: dict) -> Axes:
    """KL and posterior error of the truncated net against its depth, on a log scale."""
    enum = result["enumeration"]
    ax.semilogy(result["depths"], result["kl"], "o-", ms=4, color="C0",
                label="KL(P_L || P_RBM) over the visible layer, nats")
    ax.semilogy(result["depths"], result["truncated_posterior_error"], "s-", ms=4, color="C1",
                label="max |P(h1|v) - inference by W^T|")
    ax.semilogy(enum["depths"], enum["kl"], "o", ms=10, mfc="none", color="k",
                label="the same by exact enumeration of the Network")
    ax.semilogy(enum["depths"], enum["posterior_error"], "s", ms=10, mfc="none", color="k")
    ax.text(0.98, 0.98, "RBM on top of h1 (complementary prior):\n"
            f"max |P(h1|v) - inference by W^T| = {result['posterior_max_error']:.1e}",
            transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.set_xlabel("depth L of the tied directed net (layers above the visible one)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("nats / probability")
    ax.set_title(f"Tied net of depth L vs the RBM ({N_VISIBLE} visible, {N_HIDDEN} hidden, "
                 f"seed {result['seed']})", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    return ax


def plot(path: Path, result: dict) -> None:
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    plot_convergence(fig.subplots(), result)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def report(result: dict, path: Path) -> None:
    enum = result["enumeration"]
    print(f"RBM {N_VISIBLE}-{N_HIDDEN}, seed {result['seed']}. Tied directed net of depth L, "
          "independent top layer:\n")
    print(f"{'L':>3s} {'KL(P_L||P_RBM)':>15s} {'max|P(h1|v)-Q|':>15s} {'P(h1|v) vs its marginals':>26s}")
    for row in zip(result["depths"], result["kl"], result["truncated_posterior_error"],
                   result["truncated_non_factorial"]):
        print(f"{row[0]:3d} {row[1]:15.3e} {row[2]:15.3e} {row[3]:26.3e}")
    print("\nQ(h1|v) = prod_j sigmoid(c_j + sum_i v_i w_ij), inference by the transposed weights.")
    print(f"Depths 1-{enum['depths'][-1]} by exact enumeration of the Network: largest difference "
          f"{enum['max_difference']:.1e}")
    print(f"RBM on top of h1 (complementary prior), exact posterior: max|P(h1|v)-Q| = "
          f"{result['posterior_max_error']:.1e}")
    print(f"\nFigure: {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    plot(args.out, result)
    if args.json:
        print(json.dumps({key: result[key] for key in JSON_KEYS}))
    else:
        report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
