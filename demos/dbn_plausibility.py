"""The MNIST deep belief net run as neurons: what do binary messages, asynchrony and delays cost?

Classifies test digits with a trained DBN (a ``neurosim dbn export`` model file, or a
``neurosim dbn train`` run directory, exported on the fly) by the neural read-out
(``neurosim dbn classify --method gibbs``) in each setting of :data:`SETTINGS`: the
compiled reference and the event engine under ``layer``, ``sweep`` and ``async``
schedules, and ``async`` with message delays of 0.1, 0.5 and 1 sweep. Reports each
setting's test error (with its binomial standard error and McNemar's exact test against
the compiled one), messages and seconds per digit, beside the exact free-energy
read-out; with ``--training-cases N``, the messages per training case of up-down and
backprop in the event engine. Writes ``dbn_plausibility.json`` and
``dbn_plausibility.png`` to ``--out``. The settings and the results:
docs/plausibility.md.

With ``--dbm PATH`` (a saved ``DeepBoltzmannMachine``, ``.npz`` or ``.toml``, or a ``neurosim dbm
train`` run directory; ``quick``: a
784-100-200 DBM trained on 500 digits in about a second) it also reads one test
digit's DBM posterior in the event engine both ways (:mod:`neurosim.machines.dbm_event`):
mean-field to convergence (analog messages) and Gibbs in the posterior (binary messages)
for up to ``--dbm-sweeps`` sweeps, and reports the messages each sent and the first
sweep count at which the Gibbs means of the top layer are within ``--dbm-tolerance``
(mean absolute difference) of mean-field's ``q`` (the JSON's ``dbm``; docs/machines/dbm.md).
The DBN model may then be left out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurosim.data import load_mnist  # noqa: E402
from neurosim.learning import get_rule  # noqa: E402
from neurosim.learning.procedures import Settings, messages_per_case  # noqa: E402
from neurosim.machines.dbm import DeepBoltzmannMachine  # noqa: E402
from neurosim.machines.dbm_event import event_gibbs_means, event_mean_field  # noqa: E402
from neurosim.machines.dbn import DeepBeliefNet  # noqa: E402
from neurosim.machines.dbn_readout import classify, label_population  # noqa: E402
from neurosim.machines.dbn_train import load_run  # noqa: E402
from neurosim.modelfile import load  # noqa: E402
from neurosim.network import Network  # noqa: E402
from neurosim.outputs import atomic_write_text  # noqa: E402
from neurosim.population import Population, Projection  # noqa: E402

SETTINGS = {
    "compiled": dict(backend="compiled"),
    "layer": dict(backend="event", schedule="layer"),
    "sweep": dict(backend="event", schedule="sweep"),
    "async": dict(backend="event", schedule="async"),
    "async delay 0.1": dict(backend="event", schedule="async", delay=0.1),
    "async delay 0.5": dict(backend="event", schedule="async", delay=0.5),
    "async delay 1": dict(backend="event", schedule="async", delay=1.0),
}

DBM_CHECKPOINTS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def load_dbn(source: str) -> Network:
    """A DBN Network from a model file (``.toml``) or a ``neurosim dbn train`` run directory."""
    path = Path(source)
    if path.is_dir():
        run = load_run(path)
        return run.dbn.to_network(name=path.name or "dbn")
    return load(path)


def measure(net: Network, X: np.ndarray, y: np.ndarray, name: str, setting: dict, seed: int,
            sweeps: int, burn_in: int) -> dict:
    """One setting's test error (with its binomial standard error), messages and time per
    digit, and the label it gave each digit (for paired comparisons between settings)."""
    setting = {"method": "gibbs", **setting}
    start = time.perf_counter()
    out = classify(net, X, rng=np.random.default_rng(seed), sweeps=sweeps, burn_in=burn_in, **setting)
    seconds = time.perf_counter() - start
    error = float(np.mean(out.labels != y))
    row = {"setting": name, **setting, "test_error": error,
           "standard_error": float(np.sqrt(error * (1 - error) / len(y))), "cases": len(y),
           "binary_messages_per_digit": out.ledger.binary / len(y),
           "analog_messages_per_digit": out.ledger.analog / len(y), "seconds_per_digit": seconds / len(y),
           "labels": out.labels.tolist()}
    print(f"{name:>18}: test error {100 * error:5.2f}% +- {100 * row['standard_error']:.2f}, "
          f"{row['binary_messages_per_digit']:,.0f} binary and {row['analog_messages_per_digit']:,.0f} analog "
          f"messages per digit, {row['seconds_per_digit']:.3f} s per digit", file=sys.stderr)
    return row


def feed_forward(dbn: DeepBeliefNet, rng: np.random.Generator) -> Network:
    """The DBN's classifier for backprop (as ``backpropclassify.m`` unrolls it): the
    recognition layers, the top RBM's pen-to-top weights, and a new layer from the top
    units to the labels (N(0, 0.01)); the pixels and the labels are its visible units."""
    sizes = (*dbn.sizes, dbn.n_labels)
    names = ["v"] + [f"h{l}" for l in range(1, len(sizes) - 2)] + ["top", "label"]
    pops = [Population(name, tuple(f"{name}_{i}" for i in range(n)), np.zeros(n),
                       "visible" if name in ("v", "label") else "hidden", layer)
            for layer, (name, n) in enumerate(zip(names, sizes))]
    blocks = [*dbn.R, dbn.W, rng.normal(0, 0.01, (sizes[-2], sizes[-1]))]
    projs = [Projection(f"{a}->{b}", a, b, np.asarray(w, dtype=float)) for a, b, w in zip(names, names[1:], blocks)]
    return Network.from_populations(pops, projs, name="dbn_classifier")


def training_messages(net: Network, X: np.ndarray, y: np.ndarray, k: int, seed: int) -> dict:
    """Messages per training case, by the event engine's ledger
    (:func:`~neurosim.learning.procedures.messages_per_case`), for up-down on the DBN (CD-``k``
    at the top; binary messages) and for backprop on its classifier (:func:`feed_forward`;
    analog messages), on the cases ``X`` (pixels drawn as bits) with labels ``y``."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random(X.shape) < X).astype(np.int8)
    rows = np.hstack([pixels, np.eye(len(label_population(net).units), dtype=np.int8)[y]])
    dbn = DeepBeliefNet.from_network(net)
    visible = [u for p in net.populations if p.role in ("visible", "label") for u in p.units]
    classifier = feed_forward(dbn, rng)
    settings = Settings(lr=0.001, batch=1, k=k)
    out = {"cases": len(y), "updown_k": k,
           "up-down": messages_per_case(net, get_rule("up-down"), rows, visible, rng, settings),
           "backprop": messages_per_case(classifier, get_rule("backprop"), rows,
                                         [u for p in classifier.populations if p.role == "visible" for u in p.units],
                                         rng, settings)}
    for name in ("up-down", "backprop"):
        m = out[name]
        print(f"{name:>18}: {m['binary']:,.0f} binary and {m['analog']:,.0f} analog messages per training case, "
              f"{m['cpu_seconds_per_case']:.1f} CPU s per case", file=sys.stderr)
    return out


def quick_dbm(seed: int) -> DeepBoltzmannMachine:
    """The default DBM of ``--dbm``: 784-100-200 (``n``-100-200 for ``n`` pixels), 10
    pretraining and 10 joint epochs on the first 500 training digits (about a second on
    one core): a stand-in for the 784-500-1000 run."""
    X, _ = load_mnist("train", limit=500)
    return DeepBoltzmannMachine((X.shape[1], 100, 200), pretrain_epochs=10, n_iter=10, learning_rate=0.005,
                                random_state=seed).fit(X)


def load_dbm(source: str) -> DeepBoltzmannMachine:
    """A saved DeepBoltzmannMachine (``.npz`` or ``.toml``), or a ``neurosim dbm train`` run
    directory's jointly trained machine (its ``dbm.npz``)."""
    path = Path(source)
    return DeepBoltzmannMachine.load(path / "dbm.npz" if path.is_dir() else path)


def dbm_messages(net: Network, x: np.ndarray, rng: np.random.Generator, sweeps: int, burn_in: int,
                 tolerance: float, iterations: int = 1000) -> dict:
    """One digit's DBM posterior read both ways in the event engine, the pixels ``x``
    drawn as bits: mean-field to convergence (at most ``iterations`` passes), analog
    messages; Gibbs in the posterior, binary messages, its means after ``burn_in`` sweeps
    read at each of :data:`DBM_CHECKPOINTS` below ``sweeps`` and at ``sweeps``, each with
    the messages sent so far and its mean absolute difference from the ``q`` of every
    hidden layer; and the first checkpoint whose top-layer difference is at most ``tolerance``."""
    v = (rng.random(x.shape) < x).astype(int)
    start = time.perf_counter()
    mf = event_mean_field(net, v, iterations)
    mf_seconds = time.perf_counter() - start
    start = time.perf_counter()
    runs = event_gibbs_means(net, v, [c for c in DBM_CHECKPOINTS if c < sweeps] + [sweeps], rng, burn_in)
    rows = [{"sweeps": r.steps, "binary_messages": r.ledger.binary, "analog_messages": r.ledger.analog,
             "updates": r.ledger.updates,
             "mean_abs_diff": [float(np.abs(m - q).mean()) for m, q in zip(r.means, mf.means)]} for r in runs]
    reached = next((r for r in rows if r["mean_abs_diff"][-1] <= tolerance), None)
    out = {"layers": [p.size for p in net.populations], "pixels_on": int(v.sum()), "tolerance": tolerance,
           "mean_field": {"passes": mf.steps, "converged": mf.steps < iterations, "max_passes": iterations,
                          "analog_messages": mf.ledger.analog, "binary_messages": mf.ledger.binary,
                          "updates": mf.ledger.updates, "seconds": mf_seconds},
           "gibbs": {"schedule": "layer", "burn_in": burn_in, "checkpoints": rows,
                     "seconds": time.perf_counter() - start},
           "sweeps_to_tolerance": reached and reached["sweeps"],
           "binary_messages_to_tolerance": reached and reached["binary_messages"]}
    _say_dbm(out)
    return out


def _say_dbm(out: dict) -> None:
    mf = out["mean_field"]
    print(f"DBM {'-'.join(map(str, out['layers']))}, one digit: mean-field {'converged' if mf['converged'] else 'stopped'}"
          f" after {mf['passes']} passes, {mf['analog_messages']:,} analog messages ({mf['binary_messages']:,} "
          f"binary from the clamped pixels)", file=sys.stderr)
    for r in out["gibbs"]["checkpoints"]:
        print(f"{r['sweeps']:>8} Gibbs sweeps (+{out['gibbs']['burn_in']} burn-in): {r['binary_messages']:>13,} "
              f"binary messages, top layer within {r['mean_abs_diff'][-1]:.4f} of mean-field (mean |difference|)",
              file=sys.stderr)
    if out["sweeps_to_tolerance"] is None:
        print(f"Gibbs did not come within {out['tolerance']} of mean-field's top layer", file=sys.stderr)
    else:
        print(f"within {out['tolerance']}: {out['sweeps_to_tolerance']} sweeps, {out['binary_messages_to_tolerance']:,}"
              f" binary messages, {out['binary_messages_to_tolerance'] / mf['analog_messages']:.1f} x mean-field's "
              f"analog ones", file=sys.stderr)


def mcnemar(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> dict:
    """McNemar's exact test of two read-outs on the same digits: of the digits exactly
    one of them gets wrong (``only_a``, ``only_b``), each is equally likely to be either's
    under the null of one error rate; ``p``: the two-sided binomial(n, 1/2) tail."""
    only_a, only_b = int(np.sum((a != y) & (b == y))), int(np.sum((a == y) & (b != y)))
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"only_this_wrong": only_a, "only_reference_wrong": only_b, "p": p}


def paired(rows: list[dict], y: np.ndarray, reference: str = "compiled") -> None:
    """Add to each row with labels its McNemar test against the ``reference`` setting."""
    ref = next((r for r in rows if r["setting"] == reference and "labels" in r), None)
    for r in rows:
        if ref is not None and r is not ref and "labels" in r:
            r["vs_" + reference] = mcnemar(np.array(r["labels"]), np.array(ref["labels"]), y)


def _colours(rows: list[dict], event: str) -> list[str]:
    return ["0.6" if r["backend"] == "compiled" else event for r in rows]


def draw(result: dict, path: Path) -> None:
    """Test error (with two standard errors) and binary messages per digit, one bar per
    setting; with ``training``, the messages per training case of up-down and backprop."""
    rows, free_energy, training = result["settings"], result["free_energy"], result.get("training")
    names = [r["setting"] for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3 if training else 2, figsize=(15 if training else 11, 4),
                             gridspec_kw={"width_ratios": [3, 3, 1.4] if training else [1, 1]})
    ax_err, ax_msg = axes[:2]
    ax_err.bar(x, [100 * r["test_error"] for r in rows], yerr=[200 * r["standard_error"] for r in rows],
               color=_colours(rows, "C0"), capsize=3)
    ax_err.axhline(100 * free_energy["test_error"], color="C3", ls="--",
                   label=f"free energy (computed): {100 * free_energy['test_error']:.2f}%")
    ax_err.set_ylabel("test error (%)")
    ax_err.legend(loc="lower right")
    ax_msg.bar(x, [r["binary_messages_per_digit"] / 1e6 for r in rows], color=_colours(rows, "C1"))
    ax_msg.set_ylabel("binary messages per test digit (millions)")
    for ax in (ax_err, ax_msg):
        ax.set_xticks(x, names, rotation=30, ha="right")
    if training:
        ax = axes[2]
        procs = ["up-down", "backprop"]
        for offset, kind, colour in ((-0.2, "binary", "C1"), (0.2, "analog", "C2")):
            ax.bar(np.arange(2) + offset, [training[p][kind] / 1e6 for p in procs], 0.4, color=colour, label=kind)
        ax.set_xticks(range(2), [f"up-down\n(CD-{training['updown_k']})", "backprop"])
        ax.set_ylabel("messages per training case (millions)")
        ax.legend()
    fig.suptitle(f"The MNIST DBN run as neurons: Gibbs read-out of {rows[0]['cases']} test digits")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def reused(paths: list[str], run: dict) -> dict:
    """What earlier runs of the same study measured (``--reuse``): settings by name, and
    the training messages, from JSON files whose model, digits, sweeps, burn-in and seed
    are ``run``'s; SystemExit naming the file and the field that differs."""
    found: dict = {"settings": {}}
    for path in paths:
        old = json.loads(Path(path).read_text())
        for key, value in run.items():
            if old.get(key) != value:
                raise SystemExit(f"--reuse {path}: its {key} is {old.get(key)!r}, this run's {value!r}")
        found["settings"].update({r["setting"]: r for r in old["settings"]})
        found.update({k: old[k] for k in ("free_energy", "training") if k in old})
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", help="a DBN model file (neurosim dbn export) or a dbn train run directory")
    p.add_argument("--digits", type=int, default=1000, help="test digits (the first N)")
    p.add_argument("--sweeps", type=int, default=50, help="sweeps whose label firings count")
    p.add_argument("--burn-in", type=int, default=10, help="sweeps before counting")
    p.add_argument("--settings", default=",".join(SETTINGS), help="which settings, comma-separated")
    p.add_argument("--training-cases", type=int, default=2,
                   help="training cases of up-down and of backprop run through the event engine (0: none)")
    p.add_argument("--updown-k", type=int, default=10, help="Gibbs steps at the top during up-down (preset: 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse", action="append", default=[], metavar="JSON",
                   help="take the settings (and training messages) an earlier run of the same study measured: "
                        "split the settings over processes, then draw them together")
    p.add_argument("--dbm", metavar="PATH|quick",
                   help="also one digit's DBM posterior, mean-field against Gibbs: a saved DeepBoltzmannMachine "
                        "(.npz or .toml), a dbm train run directory, or 'quick' for one trained on 500 digits "
                        "in about a second")
    p.add_argument("--dbm-sweeps", type=int, default=2000, help="Gibbs sweeps in the DBM's posterior at most")
    p.add_argument("--dbm-tolerance", type=float, default=0.02,
                   help="mean |Gibbs mean - mean-field q| of the DBM's top layer to reach")
    p.add_argument("--out", default="out/dbn_plausibility", help="where the JSON and the figure go")
    args = p.parse_args(argv)
    if args.model is None and args.dbm is None:
        p.error("give a DBN model, --dbm, or both")
    if args.dbm_sweeps < 1 or not args.dbm_tolerance > 0:
        p.error(f"--dbm-sweeps must be >= 1 and --dbm-tolerance > 0 (got {args.dbm_sweeps}, {args.dbm_tolerance})")
    result = {"command": "python demos/dbn_plausibility.py " + " ".join(argv or sys.argv[1:]), "seed": args.seed}
    if args.model is not None:
        result.update(dbn_study(p, args))
    if args.dbm is not None:
        dbm = quick_dbm(args.seed) if args.dbm == "quick" else load_dbm(args.dbm)
        result["dbm"] = {"model": args.dbm, "digit": 0, **dbm_messages(
            dbm.to_network(), load_mnist("test", limit=1)[0][0], np.random.default_rng(args.seed), args.dbm_sweeps,
            args.burn_in, args.dbm_tolerance)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "dbn_plausibility.json", json.dumps(result, indent=1) + "\n")
    if "settings" in result:
        draw(result, out / "dbn_plausibility.png")
    print(f"wrote {out / 'dbn_plausibility.json'}" + (f" and {out / 'dbn_plausibility.png'}" if "settings" in result
                                                       else ""), file=sys.stderr)
    return 0


def dbn_study(p: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The DBN's settings (module doc), free energy and training messages, or those an
    earlier run measured (``--reuse``)."""
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        p.error(f"unknown setting {unknown[0]!r} (one of {', '.join(SETTINGS)})")
    run = {"model": str(args.model), "digits": args.digits, "sweeps": args.sweeps, "burn_in": args.burn_in,
           "seed": args.seed}
    done = reused(args.reuse, run)
    net = load_dbn(args.model)
    X, y = load_mnist("test", limit=args.digits)
    free_energy = done.get("free_energy") or measure(net, X, y, "free energy", dict(backend="compiled",
                                                     method="free-energy"), args.seed, args.sweeps, args.burn_in)
    rows = [done["settings"].get(n) or measure(net, X, y, n, SETTINGS[n], args.seed, args.sweeps, args.burn_in)
            for n in names]
    paired(rows, y)
    result = {**run, "digits": len(y), "free_energy": free_energy, "settings": rows}
    if "training" in done:
        result["training"] = done["training"]
    elif args.training_cases:
        X_train, y_train = load_mnist("train", limit=args.training_cases)
        result["training"] = training_messages(net, X_train, y_train, args.updown_k, args.seed)
    return result


if __name__ == "__main__":
    sys.exit(main())
