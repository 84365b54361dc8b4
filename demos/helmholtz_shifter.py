"""A Helmholtz machine learns the shifter by wake-sleep (Dayan et al. 1995, figures 1 and 4).

Shift patterns (figure 1): a random bottom row (pixels on with probability 0.2), a top
row that is the bottom row shifted one pixel left or right with wrap-around, and the
middle rows copying the outer ones. The generative process has two levels: the
direction, then the pixels. A three-layer machine (32 visible, hidden units, top
units) is trained by the wake-sleep algorithm of section 4 (eq. 7 and 11 of Hinton
2005), online on fresh patterns, every weight change made by the registered
``wake-sleep`` rule. Then:

* the generative and recognition weights of every hidden unit, drawn as in figure 4
  (Hinton diagrams of 4 x 8 weight images: white positive, black negative);
* a grid of fantasies (ancestral samples of the generative model) and the fraction of
  them that are valid shift patterns;
* the shift selectivity of the top units: the difference between a unit's mean
  recognition probability on left-shift and on right-shift patterns;
* the held-out negative log-likelihood by importance sampling (nats) beside the exact
  entropy of the data (its floor), and ``KL(data || model)`` over all 508 patterns.

Appendix A of the paper warns that the logistic generative model "did not work well in
practice" for the shifter: "learning almost invariably got caught in one of a variety
of local minima". With plain settings (32-24-1, rate 0.3, batches of 10, 2,000,000
patterns, zero initial biases) 66% of fantasies are valid but the best top unit's
selectivity is only 0.23 (goal 0.8; the ceiling is 0.84, since 17% of patterns look the
same shifted either way): the first layer never finds all 16 shifted pairs. About 60
such settings were tried (sizes 16-48, rates 0.03-1, batches 1-20, initial scales,
sleep/wake rate ratios); none did.

What works is the paper's own remedy, fixed hidden priors early in learning (caption of
figure 4), plus restarts chosen by the likelihood:

* ``init_prior=(0.02, 0.5)``: every first-layer unit starts with generative and
  recognition bias ``logit(0.02)``, the top units with 0. A prior of 0.1 or 0.5 lets
  one unit take a top pixel with *both* of its possible partners below (a "V", which
  no direction explains); at 0.02 units settle on single shifted pairs.
* ``warmup=30_000`` updates during which only the generative synapses to the pixels
  learn: the first layer's prior and the top-down weights stay fixed, so the top units
  cannot become a bias for the layer below before there are features to group. Then
  every synapse learns, and the top units pick up the direction.
* Two top units (as in figure 4), and 4 restarts: each machine is trained for 50,000
  updates, the one with the lowest held-out negative log-likelihood (importance
  sampling on 500 fresh patterns, no labels) is kept and trained to 100,000 updates.
  A single run can fail: of the 8 candidates of seeds 0 and 1, each trained alone to
  100,000 updates, 6 met both goals (one at 0.801) and 2 stopped at 0.79. Those two
  had the highest held-out NLL of their seed at the choice (4.92 and 4.99 nats against
  4.84 for the one kept), so the learner's own measure picks a good one without
  looking at the labels.

Measured (2-core machine, defaults, about 55 s each): seeds 0-4 all meet both goals:
valid fantasies 0.915, 0.933, 0.925, 0.916, 0.928; top-unit selectivity 0.832, 0.824,
0.845, 0.822, 0.841; held-out NLL 4.74, 4.73, 4.75, 4.74, 4.70 nats against the data's
entropy of 4.58.

``--oracle-start`` is a diagnostic: it starts from the known first layer (one unit
per shifted pair) with untrained recognition and top weights, 32-16-1, without the
remedies. In 200,000 patterns (14 s) the top unit reaches a selectivity of 0.82, 87%
of fantasies are valid, and the held-out NLL is 4.78 nats.

Run: ``python demos/helmholtz_shifter.py [--iterations N] [--restarts K] [--screen M]
[--seed S] [--out DIR] [--json] [--oracle-start]``. Writes ``weights.png``,
``fantasies.png``, ``selectivity.png`` and
the trained machine as a model file ``helmholtz_shifter.toml``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurosim.data import LEFT, RIGHT, shift_direction, shifter, shifter_entropy_nats
from neurosim.machines.helmholtz import (HelmholtzMachine, shift_selectivity,
                                         valid_fantasy_fraction)
from matplotlib.patches import Rectangle

from neurosim.viz.hinton import hinton, hinton_mosaic

ROWS, COLS = 4, 8
GOALS = {"valid fantasy fraction": 0.5, "shift selectivity": 0.8}

# The defaults, chosen by measurement on a 2-core machine (see the docstring).
SETTINGS = dict(layer_sizes=(32, 24, 2), learning_rate=0.3, batch_size=10, init_scale=0.1,
                init_prior=(0.02, 0.5), warmup=30_000)
ORACLE_SETTINGS = dict(SETTINGS, layer_sizes=(32, 16, 1), init_prior=0.5, warmup=0)
ITERATIONS = 100_000          # wake-sleep steps (each: one minibatch of data, as many fantasies)
RESTARTS = 4                  # machines trained side by side until SCREEN steps
SCREEN = 50_000               # steps after which the machine with the lowest held-out NLL is kept
CHUNK = 10_000                # fresh training patterns drawn at a time


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=ITERATIONS,
                    help=f"wake-sleep steps of {SETTINGS['batch_size']} patterns each "
                         f"(default {ITERATIONS})")
    ap.add_argument("--restarts", type=int, default=RESTARTS,
                    help=f"machines trained from independent random starts (default {RESTARTS}); "
                         "the one with the lowest held-out NLL after --screen steps is kept")
    ap.add_argument("--screen", type=int, default=SCREEN,
                    help=f"steps before choosing among the restarts (default {SCREEN}; at most "
                         "--iterations)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/helmholtz_shifter"), help="output folder")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    ap.add_argument("--evaluations", type=int, default=20,
                    help="points on the learning curve (default 20)")
    ap.add_argument("--oracle-start", action="store_true",
                    help="diagnostic: start from the known answer's first layer (16 units, one per "
                         "shifted pair of pixels; recognition trained by sleep first), to separate "
                         "what wake-sleep can keep and learn on top of it from what it can find")
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error(f"--iterations must be at least 1, got {args.iterations}")
    if args.evaluations < 1:
        ap.error(f"--evaluations must be at least 1, got {args.evaluations}")
    if args.restarts < 1:
        ap.error(f"--restarts must be at least 1, got {args.restarts}")
    if args.screen < 1:
        ap.error(f"--screen must be at least 1, got {args.screen}")
    return args


# -- training ---------------------------------------------------------------------------
def pair_images() -> tuple[np.ndarray, np.ndarray]:
    """The 16 shift patterns with one bottom pixel on: one shifted pair each (8 columns
    x 2 directions), and their directions (-1 left, 1 right)."""
    images, directions = [], []
    for direction, roll in ((-1, -1), (1, 1)):
        for c in range(COLS):
            bottom = np.zeros(COLS, dtype=np.int8)
            bottom[c] = 1
            top = np.roll(bottom, roll)
            images.append(np.concatenate([top, top, bottom, bottom]))
            directions.append(direction)
    images = np.array(images)
    assert [shift_direction(x) for x in images] == directions
    return images, np.array(directions)


def oracle_machine(settings: dict, rng: np.random.Generator) -> HelmholtzMachine:
    """Diagnostic start: 32-16-1, each hidden unit generating one shifted pair (weight 16,
    pixel biases -8, prior 0.1), the top unit and recognition weights untrained; the
    recognition model is then trained by 2,000 sleep steps alone."""
    hm = HelmholtzMachine(**{**settings, "layer_sizes": (32, 16, 1)}, n_iter=1, random_state=rng)
    hm.initialize(visible_names=shifter(None).names)
    hm.generative_weights_[0][:] = 16.0 * pair_images()[0]
    hm.generative_biases_[0][:] = -8.0
    hm.generative_biases_[1][:] = np.log(0.1 / 0.9)
    for _ in range(2000):
        hm.sleep_step(hm.batch_size)
    return hm


def train(iterations: int, seed: int, evaluations: int = 20, settings: dict | None = None,
          log=None, oracle: bool = False, restarts: int = RESTARTS,
          screen: int = SCREEN) -> tuple[HelmholtzMachine, dict]:
    """Wake-sleep on fresh shift patterns; returns the machine and its learning curve
    (cases seen, held-out NLL by importance sampling, valid fantasy fraction).

    ``restarts`` machines from independent random starts learn from the same stream of
    patterns for ``screen`` steps; then the one with the lowest held-out NLL (a
    quantity the learner has: no labels are used) is kept and trained to
    ``iterations`` steps. ``curve["restarts"]`` records every candidate's NLL curve up
    to the choice and which one was kept."""
    settings = dict((ORACLE_SETTINGS if oracle else SETTINGS) if settings is None else settings)
    rng = np.random.default_rng(seed)
    data_rng, eval_rng = np.random.default_rng(rng.integers(2**63)), np.random.default_rng(seed + 1)
    held_out = shifter(eval_rng, 500).data
    machine_rng = np.random.default_rng(rng.integers(2**63))
    if oracle:
        machines = [oracle_machine(settings, machine_rng)]
    else:
        machines = [HelmholtzMachine(**settings, n_iter=1, random_state=r)
                    for r in ([machine_rng] if restarts == 1 else machine_rng.spawn(restarts))]
    B = machines[0].batch_size
    total = iterations * B
    choose_at = min(screen, iterations) * B if len(machines) > 1 else None
    marks = sorted({int(round(total * (k + 1) / evaluations)) for k in range(evaluations)}
                   | ({choose_at} if choose_at else set()))
    curves = [{"cases": [], "held-out NLL (nats)": [], "valid fantasy fraction": []}
              for _ in machines]
    chosen = {"candidates": len(machines), "chosen": 0, "chosen after cases": choose_at,
              "held-out NLL at the choice (nats)": None, "candidate NLL curves": None}
    seen, train_seconds = 0, 0.0
    for mark in marks:
        while seen < mark:
            n = min(CHUNK, mark - seen)
            chunk = shifter(data_rng, n)
            start = time.perf_counter()
            for hm in machines:
                hm.partial_fit(chunk)
            train_seconds += time.perf_counter() - start
            seen += n
        for hm, curve in zip(machines, curves):
            nll = float(-hm.log_likelihood_is(held_out, 50,
                                              random_state=np.random.default_rng(7)).mean())
            valid = valid_fantasy_fraction(hm, 1000, np.random.default_rng(8))
            curve["cases"].append(seen)
            curve["held-out NLL (nats)"].append(nll)
            curve["valid fantasy fraction"].append(valid)
        if log is not None:
            nlls = " ".join(f"{c['held-out NLL (nats)'][-1]:.3f}" for c in curves)
            valids = " ".join(f"{c['valid fantasy fraction'][-1]:.3f}" for c in curves)
            print(f"  {seen:>9,} cases  {train_seconds:6.1f} s  held-out NLL {nlls} nats  "
                  f"valid fantasies {valids}", file=log, flush=True)
        if len(machines) > 1 and seen == choose_at:
            nlls = [c["held-out NLL (nats)"][-1] for c in curves]
            k = int(np.argmin(nlls))
            chosen.update({"chosen": k, "held-out NLL at the choice (nats)": nlls,
                           "candidate NLL curves": [c["held-out NLL (nats)"] for c in curves]})
            if log is not None:
                print(f"  kept restart {k} of {len(machines)} (lowest held-out NLL, "
                      f"{nlls[k]:.3f} nats)", file=log, flush=True)
            machines, curves = [machines[k]], [curves[k]]
    curve = curves[0]
    curve["train seconds"] = train_seconds
    curve["restarts"] = chosen
    return machines[0], curve


# -- evaluation -------------------------------------------------------------------------
def evaluate(hm: HelmholtzMachine, seed: int) -> dict:
    rng = np.random.default_rng(seed + 2)
    test = shifter(rng, 1000)
    exact = shifter(None)                      # every distinct pattern, with its probability
    entropy = shifter_entropy_nats()
    nll_test = -hm.log_likelihood_is(test, 100, random_state=np.random.default_rng(3))
    cross = float(exact.probs @ -hm.log_likelihood_is(exact, 200, random_state=np.random.default_rng(4)))
    free = float(hm.free_energy(test, 10, random_state=np.random.default_rng(5)).mean())
    top = shift_selectivity(hm, test.data, test.labels, random_state=np.random.default_rng(6))
    top_layer = len(hm.sizes_) - 1
    top_only = np.abs(top.by_layer[-1])
    unambiguous = np.array([shift_direction(x) != 0 for x in test.data])
    sel_unamb = shift_selectivity(hm, test.data[unambiguous], test.labels[unambiguous],
                                  random_state=np.random.default_rng(6))
    fantasies = hm.sample(10_000, random_state=np.random.default_rng(9))
    directions = [shift_direction(f) for f in fantasies]
    valid = float(np.mean([d is not None for d in directions]))
    amb = float(np.mean(~unambiguous))
    return {
        "valid fantasy fraction": valid,
        "fantasies": {"left": float(np.mean([d == -1 for d in directions])),
                      "right": float(np.mean([d == 1 for d in directions])),
                      "both (period 1 or 2)": float(np.mean([d == 0 for d in directions])),
                      "invalid": 1.0 - valid,
                      "all pixels off": float(np.mean(fantasies.sum(axis=1) == 0))},
        "shift selectivity": {
            "top unit": float(top_only.max()), "top layer": top_layer,
            "top unit index": int(top_only.argmax()),
            "signed difference (left - right)": float(top.by_layer[-1][int(top_only.argmax())]),
            "best unit, any hidden layer": {"difference": top.best, "layer": top.layer, "unit": top.unit},
            "ceiling (all cases)": 1.0 - amb,
            "top unit, unambiguous cases only": float(np.abs(sel_unamb.by_layer[-1]).max()),
            "fraction of test cases shifted both ways": amb},
        "held-out NLL (nats, importance sampling, K=100)": float(nll_test.mean()),
        "held-out NLL standard error": float(nll_test.std(ddof=1) / np.sqrt(len(nll_test))),
        "free-energy bound (nats)": free,
        "data entropy (nats)": entropy,
        "cross-entropy over all 508 patterns (nats)": cross,
        "KL(data || model) (nats)": cross - entropy,
    }


# -- figures ----------------------------------------------------------------------------
def plot_weights(path: Path, hm: HelmholtzMachine) -> None:
    """Figure 4: every first-layer hidden unit's generative weights (to the 4 x 8
    pixels) and recognition weights (from them), and the weights of the layer above."""
    G, R = hm.generative_weights_[0], hm.recognition_weights_[0].T
    n = len(G)
    ncols = min(n, 8)
    nrows = -(-n // ncols)
    top_g, top_r = hm.generative_weights_[-1], hm.recognition_weights_[-1].T
    mosaic_h = 12 * nrows * (ROWS + 1.9) / (ncols * (COLS + 1))
    fig = Figure(figsize=(12, 2 * mosaic_h + 2.6), dpi=80, layout="constrained")
    gen_ax, rec_ax, upper = fig.subfigures(3, 1, height_ratios=[mosaic_h + 0.4, mosaic_h + 0.4, 2.2])
    for sf, W, name in ((gen_ax, G, "generative"), (rec_ax, R, "recognition")):
        hinton_mosaic(sf.subplots(), W, (ROWS, COLS), ncols, titles=[f"h1_{i}" for i in range(n)],
                      fontsize=8)
        sf.suptitle(f"layer 1-2 {name} weights of each hidden unit, as 4 x 8 pixel images "
                    f"(white +, black -; largest |w| = {np.abs(W).max():.1f})", fontsize=10)
    axes = upper.subplots(2, 1)
    gen = np.vstack([top_g, hm.generative_biases_[-2][None, :]])
    hinton(axes[0], gen, title=f"layer 2-3 generative weights (rows: top units, then the layer-2 "
                               f"biases; largest {np.abs(gen).max():.1f})", fontsize=9)
    biases = ", ".join(f"{c:+.1f}" for c in hm.recognition_biases_[-1])
    hinton(axes[1], top_r, title=f"layer 2-3 recognition weights (rows: top units; largest "
                                 f"{np.abs(top_r).max():.1f}; recognition biases {biases})", fontsize=9)
    fig.savefig(path)


def plot_fantasies(path: Path, hm: HelmholtzMachine, valid: float, n: int = 96, ncols: int = 16) -> None:
    """A grid of fantasies, each framed by what it is: left, right, both, or invalid."""
    fantasies = hm.sample(n, random_state=np.random.default_rng(11))
    nrows = -(-n // ncols)
    gap = 1
    canvas = np.full((nrows * (ROWS + gap) + gap, ncols * (COLS + gap) + gap), 0.5)
    fig = Figure(figsize=(12, 12 * canvas.shape[0] / canvas.shape[1] + 0.4), dpi=80, layout="constrained")
    ax = fig.subplots()
    colours = {None: "#d62728", -1: "#1f77b4", 1: "#ff7f0e", 0: "#2ca02c"}
    for k, f in enumerate(fantasies):
        r0, c0 = gap + (k // ncols) * (ROWS + gap), gap + (k % ncols) * (COLS + gap)
        canvas[r0:r0 + ROWS, c0:c0 + COLS] = f.reshape(ROWS, COLS)
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), COLS, ROWS, fill=False, lw=2.0,
                               edgecolor=colours[shift_direction(f)]))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"fantasies of the generative model: {valid:.0%} of 10,000 are valid shift patterns "
                 "(frame: blue left, orange right, green both, red invalid)", fontsize=10)
    fig.savefig(path)


def plot_selectivity(path: Path, hm: HelmholtzMachine, curve: dict, ev: dict, seed: int) -> None:
    test = shifter(np.random.default_rng(seed + 2), 1000)
    q_top = hm.recognize(test, stochastic=True, random_state=np.random.default_rng(6))[-1]
    unit = ev["shift selectivity"]["top unit index"]
    fig = Figure(figsize=(11, 4), dpi=80, layout="constrained")
    left_ax, curve_ax = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 21)
    for label, name, colour in ((LEFT, "left shifts", "#1f77b4"), (RIGHT, "right shifts", "#ff7f0e")):
        q = q_top[test.labels == label, unit]
        left_ax.hist(q, bins=bins, alpha=0.6, color=colour,
                     label=f"{name}: mean q = {q.mean():.2f}")
    left_ax.set_yscale("log")
    left_ax.set_xlabel(f"recognition probability of top unit h{len(hm.sizes_) - 1}_{unit}")
    left_ax.set_ylabel("test patterns")
    sel = ev["shift selectivity"]
    left_ax.set_title(f"shift selectivity {sel['top unit']:.2f} (ceiling {sel['ceiling (all cases)']:.2f}; "
                      f"goal {GOALS['shift selectivity']})", fontsize=10)
    left_ax.legend(fontsize=8)
    x = np.asarray(curve["cases"])
    restarts = curve.get("restarts", {})
    others = [c for k, c in enumerate(restarts.get("candidate NLL curves") or [])
              if k != restarts["chosen"]]
    for k, c in enumerate(others):
        curve_ax.plot(x[:len(c)], c, color="0.6", lw=1,
                      label=f"the {len(others)} other restarts (dropped)" if k == 0 else None)
    if others:
        curve_ax.axvline(restarts["chosen after cases"], color="0.6", ls=":", lw=1)
    curve_ax.plot(x, curve["held-out NLL (nats)"], marker="o", ms=3, label="held-out NLL (IS)")
    curve_ax.axhline(ev["data entropy (nats)"], color="k", ls="--", lw=1,
                     label=f"data entropy {ev['data entropy (nats)']:.3f} nats")
    curve_ax.set_xlabel("training patterns")
    curve_ax.set_ylabel("nats per pattern")
    curve_ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k")
    twin = curve_ax.twinx()
    twin.plot(x, curve["valid fantasy fraction"], color="#2ca02c", marker="s", ms=3,
              label="valid fantasy fraction")
    twin.set_ylim(0, 1)
    twin.set_ylabel("valid fantasy fraction")
    handles = curve_ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    curve_ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="center right")
    curve_ax.set_title("learning curve" + (" (restart kept by held-out NLL at the dotted line)"
                                           if others else ""), fontsize=10)
    fig.savefig(path)


# -- report -----------------------------------------------------------------------------
def report(ev: dict, curve: dict, settings: dict, files: list[Path]) -> None:
    sel = ev["shift selectivity"]
    print("Helmholtz machine on the shifter, trained by wake-sleep")
    print(f"  settings: {settings}; {curve['cases'][-1]:,} training patterns in "
          f"{curve['train seconds']:.1f} s (all restarts)")
    restarts = curve["restarts"]
    if restarts["candidates"] > 1:
        nlls = ", ".join(f"{v:.3f}" for v in restarts["held-out NLL at the choice (nats)"])
        print(f"  restarts:             kept {restarts['chosen']} of {restarts['candidates']} after "
              f"{restarts['chosen after cases']:,} patterns by held-out NLL ({nlls} nats)")
    print(f"  valid fantasies:      {ev['valid fantasy fraction']:.3f}  (goal >= {GOALS['valid fantasy fraction']})")
    print(f"  top-unit selectivity: {sel['top unit']:.3f}  (goal >= {GOALS['shift selectivity']}; "
          f"ceiling {sel['ceiling (all cases)']:.3f}, {sel['top unit, unambiguous cases only']:.3f} "
          "on patterns shifted one way only)")
    best = sel["best unit, any hidden layer"]
    print(f"  best unit anywhere:   {abs(best['difference']):.3f} (layer {best['layer']}, unit {best['unit']})")
    print(f"  held-out NLL:         {ev['held-out NLL (nats, importance sampling, K=100)']:.3f} "
          f"+- {ev['held-out NLL standard error']:.3f} nats; data entropy "
          f"{ev['data entropy (nats)']:.3f} nats; KL(data || model) {ev['KL(data || model) (nats)']:.3f}")
    print(f"  free-energy bound:    {ev['free-energy bound (nats)']:.3f} nats")
    for f in files:
        print(f"  wrote {f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    hm, curve = train(args.iterations, args.seed, args.evaluations,
                      log=None if args.json else sys.stdout, oracle=args.oracle_start,
                      restarts=args.restarts, screen=args.screen)
    ev = evaluate(hm, args.seed)
    files = [args.out / "weights.png", args.out / "fantasies.png", args.out / "selectivity.png",
             args.out / "helmholtz_shifter.toml"]
    plot_weights(files[0], hm)
    plot_fantasies(files[1], hm, ev["valid fantasy fraction"])
    plot_selectivity(files[2], hm, curve, ev, args.seed)
    names = shifter(None).names
    hm.save(files[3], visible_names=names, name="helmholtz_shifter_trained")
    settings = {**(ORACLE_SETTINGS if args.oracle_start else SETTINGS),
                "iterations": args.iterations,
                "restarts": 1 if args.oracle_start else args.restarts, "screen": args.screen,
                "seed": args.seed, "oracle start": args.oracle_start}
    goals = {"valid fantasy fraction >= 0.5": ev["valid fantasy fraction"] >= GOALS["valid fantasy fraction"],
             "top-unit selectivity >= 0.8": ev["shift selectivity"]["top unit"] >= GOALS["shift selectivity"]}
    if args.json:
        print(json.dumps({"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                          "train seconds": curve["train seconds"],
                          "wall seconds": time.perf_counter() - wall, "curve": curve, **ev,
                          "goals met": goals, "figures": [str(f) for f in files[:3]],
                          "model": str(files[3])}, indent=2))
    else:
        report(ev, curve, settings, files)
        print(f"  wall time:            {time.perf_counter() - wall:.1f} s")
        print("  goals met: " + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in goals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
