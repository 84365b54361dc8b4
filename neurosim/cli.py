"""The ``neurosim`` command: infer, sample, train, audit, draw, show, data.

``infer``, ``sample`` and ``train`` run on the event engine or the compiled backend
(``--backend``; ``auto`` picks compiled above AUTO_UNITS units); ``train --backend
torch`` runs the compiled backend on torch arrays (``--device``, ``--dtype``).

Bad input (a malformed model file, unknown unit, bad evidence) exits with code 2 and
one line naming the culprit; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from .cli_args import (Parser, backend_flags, non_negative_float, non_negative_int, positive_float, positive_int,
                       seed as seed_type, single_valued, strict_json, temperatures)
from .errors import NeurosimError, ParameterError
from .evidence import parse_evidence as _evidence
from .inference import bitstring
from .modelfile import load, save
from .outputs import atomic_write, check_out
from .network import Network
from .learning.procedures import ANNEAL, FINAL_LR_DIVISOR, MIN_CASES, RESTARTS, WARMUP_FRACTION
from .sampling import AUTO_UNITS, choose_backend, posterior, sample

__all__ = ["main"]

JOINT_LIMIT = 16  # free units above which exact "joint" lists only the most probable states
_TOP_STATES = 1024


def _load(args: argparse.Namespace) -> Network:
    """The model of ``args.model``; a DBN exported when its labels were independent units
    is read with them as one softmax group (:func:`~neurosim.machines.dbn.upgrade_labels`),
    as ``dbn classify`` reads it, and says so on stderr."""
    from .machines.dbn import upgrade_labels

    net = load(args.model)
    upgraded = upgrade_labels(net)
    if upgraded is not net:
        print(f"{args.model}: a deep belief net exported with independent label units; its labels are "
              "read as one softmax group (re-export it with `neurosim dbn export` to silence this)",
              file=sys.stderr)
        net = upgraded
    delay = getattr(args, "delay", None)
    return net if delay is None else net.with_delay(delay)


def _emit(result: dict, as_json: bool, text: str) -> None:
    print(strict_json(result) if as_json else text)


def _marginal_table(marginals: dict[str, float], joint: dict[str, float], units: list[str]) -> str:
    lines = [f"  P({name}=1) = {p:.5g}" for name, p in marginals.items()]
    top = sorted(joint.items(), key=lambda kv: -kv[1])[:8]
    lines += ["", f"  most probable states of ({', '.join(units)}):"]
    lines += [f"    {bits}  {p:.5g}" for bits, p in top]
    return "\n".join(lines)


# -- infer -------------------------------------------------------------------------------
def cmd_infer(args: argparse.Namespace) -> None:
    net = _load(args)
    evidence = _evidence(args.evidence, net)
    if args.method == "exact":
        result = _infer_exact(net, evidence)
    else:
        result = _infer_gibbs(net, evidence, args)
    header = f"{net.name}: {args.method} posterior given {evidence or 'no evidence'}"
    _emit(result, args.json, header + "\n" + _marginal_table(result["marginals"], result["joint"],
                                                              result["units"]))


def _infer_exact(net: Network, evidence: dict[str, int]) -> dict:
    post = posterior(net, evidence)
    joint = post.joint()
    result = {"method": "exact", "backend": "exact", "units": post.units, "marginals": post.marginals()}
    if len(post.units) > JOINT_LIMIT:
        joint = dict(sorted(joint.items(), key=lambda kv: -kv[1])[:_TOP_STATES])
        result["joint_truncated"] = True
    result.update(joint=joint, log_evidence=post.log_evidence,
                  messages={"binary": 0, "analog": 0}, updates=0)
    return result


def _infer_gibbs(net: Network, evidence: dict[str, int], args: argparse.Namespace) -> dict:
    post = posterior(net, evidence, "gibbs", backend=args.backend, sweeps=args.sweeps,
                     burn_in=args.burn_in, schedule=args.schedule, chains=args.chains,
                     random_state=args.seed)
    return {"method": "gibbs", "backend": post.samples.backend, "schedule": args.schedule,
            "seed": args.seed, "samples": args.sweeps, "burn_in": args.burn_in, "units": post.units,
            "marginals": post.marginals(), "joint": post.joint(), "messages": post.messages,
            "updates": post.ledger.updates}


# -- sample ------------------------------------------------------------------------------
def cmd_sample(args: argparse.Namespace) -> None:
    image = check_out(args.image, (".png",), flag="--image") if args.image else None
    net = _load(args)
    drawn = sample(net, args.n, args.backend, args.schedule, args.burn_in, args.thin, args.chains,
                   evidence=_evidence(args.evidence, net), random_state=args.seed)
    counts = Counter(bitstring(s) for s in drawn.states)
    result = {"units": net.units, "counts": dict(sorted(counts.items())), "n": args.n,
              "backend": drawn.backend, "schedule": drawn.schedule, "seed": args.seed,
              "messages": {"binary": drawn.ledger.binary, "analog": drawn.ledger.analog},
              "updates": drawn.ledger.updates}
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:10]
    text = "\n".join([f"{net.name}: {args.n} samples ({drawn.schedule}) of ({', '.join(net.units)})"]
                     + [f"  {bits}  {c}" for bits, c in top])
    if image:
        _write_pictures(image, net, drawn.states, args.model)
        text += f"\nwrote {image}"
    _emit(result, args.json, text)


def _write_pictures(path: Path, net: Network, states: np.ndarray, model: str, most: int = 100) -> None:
    """The visible units of the first ``most`` samples as pictures, 10 a row (black: on)."""
    import matplotlib.pyplot as plt

    from .viz import picture_shape, tiles

    visible = [i for i, u in enumerate(net.unit_list()) if u.role == "visible"]
    shape = picture_shape([net.units[i] for i in visible])
    if shape is None:
        raise NeurosimError(f"{model}: --image draws the visible units as a picture: a square number of "
                            f"them or pixels named p{{row}}{{col}}; {net.name!r} has {len(visible)}")
    shown = states[:most, visible]
    grid = tiles(shown, shape, min(10, len(shown)), fill=0.5)
    fig, ax = plt.subplots(figsize=(grid.shape[1] / 30 + 1, grid.shape[0] / 30 + 1))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{net.name}: {len(shown)} samples of its visible units")
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100, bbox_inches="tight"))
    finally:
        plt.close(fig)


# -- train and audit ---------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> None:
    """Train, measure, and only then write ``--out`` (atomically): a run that fails
    (bad data, divergence, ...) leaves no file and an existing one untouched."""
    from .data import load_data, match_visible
    from .learning import get_rule
    from .learning.procedures import train
    from .learning.quality import exact_quality, shifter_quality

    out_path = check_out(args.out)
    arrays = _train_arrays(args)
    if args.rule_module:
        _import_rules(args.rule_module)
    rule = get_rule(args.rule)
    net = _load(args)
    rng = np.random.default_rng(args.seed)
    dataset = load_data(args.data, rng, args.n)
    data = match_visible(dataset, net)
    visible = [u.name for u in net.unit_list() if u.role == "visible"]
    probs = dataset.probs if args.n is None else None  # a generator's exact distribution
    settings = _settings(args, rule.procedure, net, visible, len(data), probs is not None)
    backend = choose_backend(net, "compiled" if arrays else args.backend, args.schedule)
    result = train(net, rule, data, visible, rng, settings, probs=probs, backend=backend, arrays=arrays)
    where = backend if arrays is None else f"{backend} (torch, {arrays.device}, {arrays.dtype})"
    out = {"rule": rule.name, "backend": backend if arrays is None else "torch",
           **({} if arrays is None else {"device": arrays.device, "dtype": arrays.dtype}),
           "epochs": settings.epochs, "cases": result.cases,
           "data": args.data, "ledger": result.ledger.as_dict(),
           "locality": {"reads": result.reads, "violations": result.violations},
           "phase_signals": result.phase_signals, "symmetry_drift": result.symmetry_drift,
           "quality": exact_quality(result.network, visible, data, dataset.probs), "out": str(args.out)}
    if args.data == "shifter" and result.network.has_recognition:
        out["quality"].update(shifter_quality(result.network, rng))
    text = (f"trained {net.name} by {rule.name} ({rule.equation}) on the {where} backend for {settings.epochs} "
            f"epochs of {len(data)} cases; wrote {args.out}\n  messages: {out['ledger']}\n  synapses read: "
            f"{', '.join(result.reads)}; violations {result.violations}\n  symmetry drift "
            f"{result.symmetry_drift:.3g}\n  quality: {out['quality']}")
    if result.restarts:
        r = out["restarts"] = result.restarts
        text += (f"\n  restarts: kept {r['chosen'] + 1} of {r['candidates']} after {r['screen_epochs']} epochs, "
                 f"by held-out log-likelihood ({r['likelihood']}) of {r['held_out']}: "
                 + ", ".join(f"{x:.4g}" for x in r["held_out_log_likelihood_nats"]))
    report = strict_json(out) if args.json else text
    save(result.network, out_path)  # atomic
    print(report)


def _train_arrays(args: argparse.Namespace):
    """The torch arrays of ``--backend torch`` (``--device``, ``--dtype``; default cpu,
    float32), None for another backend; ParameterError for --device or --dtype without it."""
    from .compiled.arrays import backend

    if args.backend == "torch":
        return backend("torch", args.device or "cpu", args.dtype or "float32")
    given = [flag for flag in ("--device", "--dtype") if getattr(args, flag[2:]) is not None]
    if given:
        raise ParameterError(f"{' and '.join(given)} {'choose' if len(given) > 1 else 'chooses'} the torch arrays of the compiled backend; add "
                             f"--backend torch (got --backend {args.backend})")
    return None


def _settings(args: argparse.Namespace, procedure: str, net: Network, visible: list[str], rows: int,
              distribution: bool):
    """The flags as Settings, the flags not given taking :func:`recommended`'s defaults."""
    from .learning.procedures import recommended

    return recommended(procedure, net, visible, rows, distribution, epochs=args.epochs, lr=args.lr,
                       batch=args.batch, sweeps=args.sweeps, k=args.k, schedule=args.schedule,
                       anneal=args.anneal, final_lr=args.final_lr, restarts=args.restarts, screen=args.screen,
                       held_out=args.held_out, warmup_epochs=args.warmup_epochs,
                       log=lambda line: print(f"train: {line}", file=sys.stderr, flush=True))


def _import_rules(path: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if spec is None or not Path(path).is_file():
        raise NeurosimError(f"{path}: no such rule module")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def cmd_audit(args: argparse.Namespace) -> None:
    from .learning.audit import audit

    rows = audit(np.random.default_rng(args.seed), args.epochs)
    result = {"task": "4-2-4 encoder data, event engine", "rows": [r.as_dict() for r in rows]}
    head = (f"{'algorithm':<17}{'binary/case':>12}{'analog/case':>12}{'phase':>7}{'symmetric':>11}"
            f"{'drift':>8}{'viol.':>6}  {'quality':<22}reads")
    lines = [head]
    for r in rows:
        q = ", ".join(f"{k} {v:.3g}" for k, v in r.quality.items())
        drift = "-" if r.symmetry_drift is None else f"{r.symmetry_drift:.2g}"
        lines.append(f"{r.algorithm:<17}{r.messages['binary']:>12.1f}{r.messages['analog']:>12.1f}"
                     f"{'yes' if r.phase_signal else 'no':>7}{'yes' if r.needs_symmetry else 'no':>11}"
                     f"{drift:>8}{r.violations:>6}  {q:<22}{', '.join(r.reads)}")
    _emit(result, args.json, "\n".join(lines))


# -- draw and show -----------------------------------------------------------------------
def cmd_draw(args: argparse.Namespace) -> None:
    """Refuse a wrong ``--out`` or a net too large to draw at once; write the picture
    whole or not at all."""
    from . import viz  # matplotlib only when drawing

    out = check_out(args.out, (".gif",) if args.animate else (".png",))
    full = _load(args)
    net, summarised = viz.drawable(full)  # a large net: one node per population
    if summarised and (args.evidence or args.animate):
        raise NeurosimError(f"{args.model}: drawn by population (too many units to draw one by one), so "
                            "without --evidence or --animate")
    evidence = _evidence(args.evidence, net)
    if args.animate:
        viz.animate_network(net, out, np.random.default_rng(args.seed), evidence=evidence,
                            schedule=args.schedule, sweeps=args.sweeps)
    else:
        import matplotlib.pyplot as plt

        marginals = None if summarised else _marginals_for_drawing(net, evidence, args.seed)
        title = (f"{net.name}, one node per population: " + ", ".join(f"{p.name} {p.size}" for p in full.populations)
                 if summarised else f"{net.name}" + (f" | {_fmt(evidence)}" if evidence else ""))
        ax = viz.draw_network(net, marginals=marginals, evidence=evidence, title=title)
        try:
            atomic_write(out, lambda fh: ax.figure.savefig(fh, format="png", dpi=120, bbox_inches="tight"))
        finally:
            plt.close(ax.figure)
    print(f"wrote {out}")


def _marginals_for_drawing(net: Network, evidence: dict[str, int], seed: int) -> dict[str, float]:
    """Exact when at most JOINT_LIMIT units are free, else from 2000 sweeps of the event engine."""
    post = (posterior(net, evidence) if net.n_units - len(evidence) <= JOINT_LIMIT else
            posterior(net, evidence, "gibbs", backend="event", sweeps=2000, random_state=seed))
    return {**post.marginals(), **{k: float(v) for k, v in evidence.items()}}


def _fmt(evidence: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in evidence.items())


def cmd_show(args: argparse.Namespace) -> None:
    net = load(args.model)
    print(describe(net))


def describe(net: Network) -> str:
    """A readable summary of a Network: unit by unit and edge by edge, or population by
    population and projection by projection if it has more than MAX_UNIT_TABLES of them."""
    from .modelfile import MAX_UNIT_TABLES

    kinds = Counter()
    for proj in net.projections:
        kinds[proj.kind] += proj.n_synapses
    kind = ("Boltzmann machine" if not kinds["directed"] else
            "sigmoid belief net" if not kinds["symmetric"] else "hybrid (symmetric and directed)")
    lines = [f"{net.name}: {kind}", f"  {net.description}" if net.description else None,
             f"  {net.n_units} units, {kinds['directed']} directed and {kinds['symmetric']} "
             f"symmetric edges" + (f", {kinds['recognition']} recognition" if kinds["recognition"] else "")]
    groups = [f"{p.name} ({p.size} units)" for p in net.populations if p.activation == "softmax"]
    lines += [f"  softmax groups, one unit on at a time: {', '.join(groups)}" if groups else None, ""]
    if net.n_units + net.n_edges > MAX_UNIT_TABLES:
        lines.append(f"  {'population':<16}{'units':>7}  {'role':<9}{'layer':>6}{'bias mean':>11}{'min':>10}{'max':>10}")
        for p in net.populations:
            layer = "" if p.layer is None else str(p.layer)
            lines.append(f"  {p.name:<16}{p.size:>7}  {p.role:<9}{layer:>6}{p.bias.mean():>11.4g}"
                         f"{p.bias.min():>10.4g}{p.bias.max():>10.4g}")
        lines += ["", f"  {'projection':<16}{'pre -> post':<16}{'kind':<12}{'synapses':>9}{'weight mean':>13}"
                      f"{'min':>10}{'max':>10}"]
        for q in net.projections:
            w = q.weights if q.mask is None else q.weights[q.mask]
            stats = f"{w.mean():>13.4g}{w.min():>10.4g}{w.max():>10.4g}" if w.size else ""
            delay = f"   delay {q.delay:g}" if q.delay else ""
            lines.append(f"  {q.name:<16}{q.pre + ' -> ' + q.post:<16}{q.kind:<12}{q.n_synapses:>9}{stats}{delay}")
        return "\n".join(line for line in lines if line is not None)
    lines.append(f"  {'unit':<16}{'role':<9}{'layer':>6}{'bias':>10}   connections")
    for unit in net.unit_list():
        links = ([f"<- {p}" for p in net.parents(unit.name)] + [f"-> {c}" for c in net.children(unit.name)]
                 + [f"<-> {n}" for n in net.neighbours(unit.name)])
        layer = "" if unit.layer is None else str(unit.layer)
        lines.append(f"  {unit.name:<16}{unit.role:<9}{layer:>6}{unit.bias:>10.4g}   {', '.join(links)}")
    lines += ["", f"  {'edge':<34}{'kind':<11}{'weight':>10}"]
    for e in net.edges:
        arrow = "->" if e.kind == "directed" else "<->"
        w = f"{e.weight:.4g}" + ("" if e.weight_reverse is None else f" / {e.weight_reverse:.4g}")
        delay = f"   delay {e.delay:g}" if e.delay else ""
        lines.append(f"  {e.source + ' ' + arrow + ' ' + e.target:<34}{e.kind:<11}{w:>10}{delay}")
    return "\n".join(line for line in lines if line is not None)


# -- data --------------------------------------------------------------------------------
def cmd_data(args: argparse.Namespace) -> None:
    """``neurosim data fetch mnist``: fetch, verify and cache; print where and the hashes."""
    from .data import DataError, mnist

    if args.dataset != "mnist":
        raise DataError(f"unknown data set {args.dataset!r}: `neurosim data fetch` knows mnist")
    cache = mnist.fetch_mnist(args.source, args.cache, log=lambda line: print(line, file=sys.stderr))
    files = {name: {"path": str(cache / name), "sha256": sha, "bytes": (cache / name).stat().st_size}
             for name, sha in mnist.MNIST_SHA256.items()}
    text = "\n".join([f"mnist: {len(files)} files in {cache}, SHA-256 verified"]
                     + [f"  {name:<25}{f['sha256']}" for name, f in files.items()])
    _emit({"dataset": "mnist", "cache": str(cache), "files": files}, args.json, text)


# -- parser ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="neurosim", description="Networks of stochastic binary neurons.")
    sub = p.add_subparsers(dest="command", required=True)

    shared = {  # options several commands take: name -> (flags, add_argument's keywords)
        "model": (["model"], dict(help="model file (TOML), e.g. models/earthquake_truck.toml")),
        "evidence": (["--evidence"], dict(action="extend", nargs="+", default=[], metavar="NAME=0|1",
                                          help="clamp units to observed states (repeatable; a unit given two "
                                               "values is an error); POP=k for a label population (label=3: "
                                               "unit 3 on, the others off)")),
        "seed": (["--seed"], dict(type=seed_type, default=0, help="random seed, >= 0 (default 0)")),
        "delay": (["--delay"], dict(type=non_negative_float, default=None, metavar="SWEEPS",
                                    help="give every edge this message delay (default: the model file's)")),
        "backend": (["--backend"], dict(choices=["event", "compiled", "auto"], default="auto",
                                        help=f"event engine (unit by unit, every message) or compiled "
                                             f"(matrices, many chains); auto: compiled above {AUTO_UNITS} "
                                             "units (default auto)")),
        "chains": (["--chains"], dict(type=positive_int, default=100,
                                      help="compiled backend: independent chains run at once (default 100)")),
    }

    def command(name: str, *options: str, **kwargs) -> argparse.ArgumentParser:
        """The subcommand ``name`` with the ``shared`` options named."""
        sp = single_valued(sub.add_parser(name, **kwargs))
        for option in options:
            flags, keywords = shared[option]
            sp.add_argument(*flags, **keywords)
        return sp

    sp = command("infer", "model", "evidence", "seed", "delay", "backend", "chains",
                 help="posterior over the free units given evidence")
    sp.add_argument("--method", choices=["exact", "gibbs"], default="exact")
    sp.add_argument("--schedule", choices=["async", "sweep", "layer"], default="sweep")
    sp.add_argument("--sweeps", type=positive_int, default=10000, help="samples kept, one per sweep")
    sp.add_argument("--burn-in", type=non_negative_int, default=100, help="sweeps discarded first")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_infer)

    sp = command("sample", "model", "evidence", "seed", "delay", "backend", "chains",
                 help="draw samples (of the units not clamped by --evidence)")
    sp.add_argument("--n", type=positive_int, default=1000)
    sp.add_argument("--schedule", choices=["ancestral", "async", "sweep", "layer"], default=None,
                    help="default: ancestral for belief nets without evidence, sweep (Gibbs) otherwise")
    sp.add_argument("--burn-in", type=non_negative_int, default=100)
    sp.add_argument("--thin", type=positive_int, default=1, help="sweeps between kept samples")
    sp.add_argument("--image", metavar="PNG", help="also draw the first 100 samples' visible units as pictures")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_sample)

    sp = command("draw", "model", "evidence", "seed", "delay",
                 help="draw the net (PNG), or animate the event engine (GIF)")
    sp.add_argument("--out", required=True, help="output file: .png, or .gif with --animate")
    sp.add_argument("--animate", action="store_true", help="watch the event engine run")
    sp.add_argument("--schedule", choices=["async", "sweep", "layer"], default="sweep")
    sp.add_argument("--sweeps", type=positive_int, default=20)
    sp.set_defaults(run=cmd_draw)

    sp = command("train", "model", "seed", "delay", help="train a net with a local learning rule")
    flags, keywords = shared["backend"]
    sp.add_argument(*flags, **{**keywords, "choices": [*keywords["choices"], "torch"],
                               "help": keywords["help"] + "; torch: compiled, on torch arrays"})
    backend_flags(sp, "--backend torch", given_only=True, flags=("--device", "--dtype"))
    sp.add_argument("--rule", required=True,
                    help="boltzmann, cd, pcd, delta, wake-sleep, backprop, or one of --rule-module")
    sp.add_argument("--data", required=True,
                    help="a CSV with a header of visible units, a .npy file, or shifter, bars-stripes, "
                         "encoder-4-2-4")
    sp.add_argument("--n", type=positive_int, default=None,
                    help="cases drawn from a generator, or rows of a file chosen at random (default: "
                         "the generator's exact distribution, every row of a file)")
    sp.add_argument("--epochs", type=positive_int, default=None,
                    help=f"passes over the data (default: enough for {MIN_CASES} cases, at least 10)")
    sp.add_argument("--lr", type=positive_float, default=0.5, help="learning rate (default 0.5)")
    sp.add_argument("--k", type=positive_int, default=1, help="Gibbs steps of CD-k and PCD-k")
    sp.add_argument("--batch", type=positive_int, default=10, help="cases between weight changes "
                                                                   "(default 10)")
    sp.add_argument("--sweeps", type=positive_int, default=5, help="settling sweeps per phase (default 5)")
    sp.add_argument("--schedule", choices=["async", "sweep", "layer"], default="sweep")
    sp.add_argument("--anneal", type=temperatures, default=None, metavar="T1,T2,...",
                    help="Boltzmann: settle through these temperatures first, one sweep each (default "
                         f"{','.join(f'{t:g}' for t in ANNEAL)})")
    sp.add_argument("--final-lr", type=positive_float, default=None,
                    help=f"learning rate of the last third of the epochs (default --lr / {FINAL_LR_DIVISOR})")
    sp.add_argument("--restarts", type=positive_int, default=None,
                    help="train this many candidates from independent starts for --screen epochs and "
                         "keep the one of highest held-out likelihood (default "
                         f"{RESTARTS} where that likelihood is affordable: exact, or importance-sampled "
                         "for a net with recognition edges; else 1)")
    sp.add_argument("--screen", type=positive_int, default=None, metavar="EPOCHS",
                    help="epochs before choosing among the restarts (default: a twelfth of --epochs)")
    sp.add_argument("--held-out", type=positive_float, default=0.2, metavar="FRACTION",
                    help="rows held out to choose among restarts (default 0.2; a generator's exact "
                         "distribution is scored whole, by its expected log-likelihood)")
    sp.add_argument("--warmup-epochs", type=non_negative_int, default=None,
                    help="wake-sleep: first epochs in which only the generative synapses into the "
                         "visible units learn (fixed hidden priors, Dayan et al. 1995; default "
                         f"{WARMUP_FRACTION:g} of --epochs for wake-sleep, else 0)")
    sp.add_argument("--rule-module", help="a Python file that registers your own rules")
    sp.add_argument("--out", required=True, help="the trained model file (TOML)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_train)

    sp = command("audit", "seed", help="messages, locality and quality of each learning algorithm")
    sp.add_argument("--epochs", type=positive_int, default=None, help="override each algorithm's epochs")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_audit)

    sp = command("show", "model", help="a readable summary of the net")
    sp.set_defaults(run=cmd_show)

    sp = command("data", help="fetch data sets (mnist) into the local cache")
    fetch = single_valued(sp.add_subparsers(dest="action", required=True).add_parser(
        "fetch", help="fetch, verify by SHA-256 and cache a data set"))
    fetch.add_argument("dataset", help="the data set: mnist")
    fetch.add_argument("--from", dest="source", metavar="DIR", default=None,
                       help="a directory with the IDX files (raw or .gz), tried before the network "
                            "(default: $NEUROSIM_DATA)")
    fetch.add_argument("--cache", metavar="DIR", default=None,
                       help="where the verified files go (default: $NEUROSIM_CACHE/mnist or "
                            "~/.cache/neurosim/mnist)")
    fetch.add_argument("--json", action="store_true")
    fetch.set_defaults(run=cmd_data)

    from .cli_mnist import add_parsers as add_mnist_parsers

    add_mnist_parsers(sub, positive_int, non_negative_int)
    from .cli_dbm import add_parsers as add_dbm_parsers

    add_dbm_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, *a, **k: print(f"neurosim: warning: {msg}", file=sys.stderr)
        try:
            args.run(args)
        except NeurosimError as exc:
            print(f"neurosim: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("neurosim: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # output piped into head, say: not an error
            sys.stderr.close()
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
