"""The sleep phase averages explanations (Hinton 2005, section 4.1).

"The wake-sleep algorithm ... does the wrong thing when a data-vector can be generated
by two quite different hidden configurations: Instead of picking one of these hidden
configurations and sticking with it, it averages the configurations to produce a vague
factorial distribution that gives significant probability to many poor configurations."

A Helmholtz machine with a fixed generative model, an explaining-away net in the
spirit of figure 3: two rare causes (prior bias -4, P = 0.018 each) of one visible
effect (bias -8, weight +8 from each cause). Given that the effect is on, either
cause alone explains it (exact posterior 0.48 each) and both or neither is about 27
times less likely (0.018 each). The recognition weights are trained by the sleep phase alone
(eq. 11, the registered ``wake-sleep`` rule): fantasies from the generative model,
recognition synapses learning to predict the causes from the effect. The factorial
recognition distribution it learns is compared with the exact posterior
(``neurosim.posterior`` on ``hm.to_network()``) and with mean field, the factorial
distribution that minimises ``KL(Q || P)`` (the looseness of the bound of eq. 10).

Run: ``python demos/wake_sleep_averaging.py [--steps N] [--seed S] [--out DIR] [--json]``.
Writes ``wake_sleep_averaging.png`` in the out dir.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurosim import Edge, Network, Unit, posterior
from neurosim.inference import bitstring
from neurosim.inference.factorial import factorial_probs, kl, kl_q_p, mean_field, moment_matched
from neurosim.machines.helmholtz import HelmholtzMachine
from neurosim.viz.traces import plot_distributions

EFFECT = "house_jumps"
CAUSES = {"h1_0": "earthquake", "h1_1": "truck"}
PRIOR, EFFECT_BIAS, WEIGHT = -4.0, -8.0, 8.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000, help="sleep steps (default 3000, about 2 s)")
    ap.add_argument("--fantasies", type=int, default=200, help="fantasies per sleep step (default 200)")
    ap.add_argument("--learning-rate", type=float, default=1.0,
                    help="recognition learning rate (default 1.0, per step: the mean over its fantasies)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/wake_sleep_averaging"), help="output folder")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args(argv)
    for name in ("steps", "fantasies"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not args.learning_rate > 0:
        ap.error(f"--learning-rate must be positive, got {args.learning_rate}")
    return args


def explaining_away_machine(learning_rate: float, seed: int) -> HelmholtzMachine:
    """The generative model (fixed: wake rate 0) with zero recognition weights."""
    units = [Unit(EFFECT, EFFECT_BIAS, "visible", 0)]
    units += [Unit(h, PRIOR, "hidden", 1, recognition_bias=0.0) for h in CAUSES]
    edges = [Edge(h, EFFECT, WEIGHT, "directed") for h in CAUSES]
    edges += [Edge(EFFECT, h, 0.0, "recognition") for h in CAUSES]
    net = Network(units, edges, name="explaining_away_helmholtz")
    return HelmholtzMachine.from_network(net, learning_rate=0.0, sleep_learning_rate=learning_rate,
                                         random_state=seed)


def sleep_train(hm: HelmholtzMachine, steps: int, fantasies: int, every: int = 10) -> np.ndarray:
    """Sleep phase only; returns the recognition probabilities q(cause | effect on)
    after every ``every`` steps (rows), starting before the first."""
    on = np.ones((1, 1))
    trace = [hm.recognize(on)[0][0]]
    for k in range(steps):
        hm.sleep_step(fantasies)
        if (k + 1) % every == 0:
            trace.append(hm.recognize(on)[0][0])
    return np.array(trace)


def summary(hm: HelmholtzMachine) -> dict:
    post = posterior(hm.to_network(visible_names=[EFFECT]), {EFFECT: 1})
    assert post.units == list(CAUSES), post.units
    q_sleep = hm.recognize(np.ones((1, 1)))[0][0]
    q_mf = mean_field(post, np.random.default_rng(0))
    dists = {"exact posterior P": post.probs,
             "sleep-phase recognition Q": factorial_probs(q_sleep, post.states),
             "product of exact marginals": factorial_probs(moment_matched(post), post.states),
             "mean field, min KL(Q||P)": factorial_probs(q_mf, post.states)}
    poor = np.array([bitstring(s) in ("00", "11") for s in post.states])
    out = {"states": [bitstring(s) for s in post.states],
           "q sleep": q_sleep.tolist(), "q mean field": q_mf.tolist(),
           "exact marginals": moment_matched(post).tolist(), "distributions": {}}
    for name, p in dists.items():
        q = {"sleep-phase recognition Q": q_sleep, "mean field, min KL(Q||P)": q_mf,
             "product of exact marginals": moment_matched(post)}.get(name)
        out["distributions"][name] = {
            "probs": dict(zip(out["states"], np.asarray(p).tolist())),
            "mass on both-or-neither": float(np.asarray(p)[poor].sum()),
            **({} if q is None else {"KL(P||Q)": kl(post.probs, p), "KL(Q||P)": kl_q_p(q, post)})}
    return out


def plot(path: Path, out: dict, trace: np.ndarray, every: int, steps: int, fantasies: int) -> None:
    fig = Figure(figsize=(11, 4.2), dpi=90, layout="constrained")
    bars, curve = fig.subplots(1, 2, width_ratios=[1.35, 1])
    dists = {k: list(v["probs"].values()) for k, v in out["distributions"].items()}
    plot_distributions(bars, out["states"], dists, annotate=True)
    bars.set_xlabel("hidden state (earthquake, truck), given house_jumps = 1")
    bars.set_ylabel("probability")
    m = out["distributions"]
    bars.set_title("the sleep phase averages the two explanations: mass on both-or-neither "
                   f"{m['sleep-phase recognition Q']['mass on both-or-neither']:.2f} "
                   f"(exact {m['exact posterior P']['mass on both-or-neither']:.2f})", fontsize=9)
    bars.legend(fontsize=8, loc="upper left")
    x = np.arange(len(trace)) * every * fantasies
    for j, (h, name) in enumerate(CAUSES.items()):
        curve.plot(x, trace[:, j], label=f"q({name} | house jumps)")
    for j, (h, name) in enumerate(CAUSES.items()):
        curve.axhline(out["exact marginals"][j], color="k", ls="--", lw=1,
                      label="exact marginals P(cause | house jumps)" if j == 0 else None)
    curve.set_ylim(0, 1)
    curve.set_xlabel("fantasies seen in the sleep phase")
    curve.xaxis.set_major_formatter("{x:,.0f}")
    curve.set_title("recognition probabilities during sleep learning (eq. 11)", fontsize=9)
    curve.legend(fontsize=8)
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    hm = explaining_away_machine(args.learning_rate, args.seed)
    every = max(1, args.steps // 200)
    trace = sleep_train(hm, args.steps, args.fantasies, every)
    out = summary(hm)
    path = args.out / "wake_sleep_averaging.png"
    plot(path, out, trace, every, args.steps, args.fantasies)
    out["figures"] = [str(path)]
    out["settings"] = {"steps": args.steps, "fantasies": args.fantasies,
                       "learning_rate": args.learning_rate, "seed": args.seed}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("Wake-sleep averaging (Hinton 2005, section 4.1): explaining-away net, house_jumps = 1")
    print("  state (earthquake, truck):  " + "  ".join(f"{s:>7}" for s in out["states"])
          + "   both-or-neither   KL(P||Q)  KL(Q||P)")
    for name, d in out["distributions"].items():
        probs = "  ".join(f"{p:7.4f}" for p in d["probs"].values())
        kls = "" if "KL(P||Q)" not in d else f"   {d['KL(P||Q)']:8.4f}  {d['KL(Q||P)']:8.4f}"
        print(f"  {name:<28} {probs}   {d['mass on both-or-neither']:15.4f}{kls}")
    print(f"  learned q = {np.round(out['q sleep'], 4).tolist()}, exact marginals "
          f"{np.round(out['exact marginals'], 4).tolist()}, mean field {np.round(out['q mean field'], 4).tolist()}")
    print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
