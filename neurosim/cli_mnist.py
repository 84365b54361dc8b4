"""``neurosim rbm train|evaluate``, ``neurosim dbn train|evaluate|export|classify`` and
``neurosim autoencoder train|evaluate``:
the arguments, parsed and handed to the library (:class:`~neurosim.machines.rbm.RBM` by
:func:`~neurosim.machines.runs.fit_run`, :class:`~neurosim.machines.dbn_train.Trainer`,
:mod:`~neurosim.machines.dbn_readout`). Files, checkpoints and ``--resume``:
docs/machines/dbn.md and docs/mnist-reproduction.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .cli_args import backend_flags, layer_sizes, strict_json
from .errors import NeurosimError

__all__ = ["add_parsers"]


# -- rbm ------------------------------------------------------------------------------------
def _load_rbm(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``(W (n_visible x n_hidden), b, c, meta)`` of a file ``RBM.load`` reads."""
    from .machines.rbm import RBM

    rbm = RBM.load(path)
    return rbm.components_.T, rbm.intercept_visible_, rbm.intercept_hidden_, RBM.load_info(path)


def cmd_rbm_train(args: argparse.Namespace) -> None:
    """``RBM(...).fit`` on binarised MNIST through :func:`~neurosim.machines.runs.fit_run`:
    checkpoints in ``OUT.checkpoint.npz`` (removed once OUT is written), Ctrl-C, --resume."""
    from .compiled.arrays import backend
    from .data import load_binary_mnist
    from .errors import DivergenceError
    from .machines.rbm import RBM, RBM_M_MOMENTUM
    from .machines.runs import check_resume, fit_run
    from .outputs import check_out

    out = check_out(args.out, (".npz", ".toml"))
    checkpoint = Path(f"{out}.checkpoint.npz")
    check_resume(checkpoint, args.resume)
    if args.resume:
        _check_binarization(checkpoint, args.binarize)
    backend(args.backend, args.device, args.dtype)          # checked before the data load; RBM checks again
    if (args.chains or args.tempering > 1) and not args.persistent:
        raise NeurosimError(f"--{'chains' if args.chains else 'tempering'} sets PCD's persistent chains: "
                            "add --persistent")
    X = load_binary_mnist("train", args.seed, args.limit, binarization=args.binarize)[0]
    momentum = {} if args.no_momentum else RBM_M_MOMENTUM
    rbm = RBM(n_components=args.hidden, learning_rate=args.lr, batch_size=args.batch, k=args.cd,
              persistent=args.persistent, **momentum, anneal_epochs=args.anneal, n_iter=args.epochs,
              weight_decay=args.weight_decay, shuffle=True, random_state=args.seed, dtype=args.dtype,
              backend=args.backend, device=args.device, centered=args.centered, offset_rate=args.offset_rate,
              visible_offset_rate=args.offset_rate, n_chains=args.chains, n_temperatures=args.tempering)
    meta = {"hidden": args.hidden, "epochs": args.epochs, "cd": args.cd, "persistent": args.persistent,
            "lr": args.lr, "anneal": args.anneal, "batch": args.batch, "weight_decay": args.weight_decay,
            "seed": args.seed, "train_cases": len(X), "backend": args.backend, "device": args.device,
            "dtype": args.dtype, "centered": args.centered, "offset_rate": args.offset_rate,
            "momentum": not args.no_momentum, "chains": args.chains or args.batch, "tempering": args.tempering,
            "binarization": args.binarize}
    try:
        seconds = fit_run(rbm, X, checkpoint, checkpoint_s=60 * args.checkpoint_minutes, info=meta)
    except DivergenceError as exc:
        checkpoint.unlink(missing_ok=True)                  # a diverged run is not worth resuming
        raise DivergenceError(f"--lr {args.lr}: {exc}; {out} not written") from None
    meta.update(train_seconds=seconds, train_minutes=seconds / 60, argv=sys.argv,
                samples_per_s=len(X) * args.epochs / seconds if seconds else None)
    rbm.save(out, info=meta)
    checkpoint.unlink()
    print(strict_json({**meta, "out": str(out)}) if args.json else
          f"wrote {out}: {args.hidden} hidden, {'centered ' if args.centered else ''}"
          f"{'PCD' if args.persistent else 'CD'}-{args.cd}, "
          f"{f'{args.chains} chains, ' if args.chains else ''}"
          f"{f'tempering at {args.tempering} temperatures, ' if args.tempering > 1 else ''}"
          f"{args.epochs} epochs in {seconds:.0f} s ({meta['samples_per_s'] or 0:,.0f} samples/s)")


def _check_binarization(checkpoint: Path, binarization: str) -> None:
    """--resume continues on the digits the run started on: its --binarize (the RBM's
    parameters, checked by ``fit_run``, do not say how the data were binarized)."""
    from .machines.base import read_npz_meta

    was = read_npz_meta(checkpoint, "checkpoint")[1].get("info", {}).get("binarization", "stochastic")
    if was != binarization:
        raise NeurosimError(f"--resume: {checkpoint} was started with --binarize {was}; this command says "
                            f"--binarize {binarization} (use the same one to resume, or start a new run)")


def cmd_rbm_evaluate(args: argparse.Namespace) -> None:
    from .data import load_binary_mnist
    from .machines.ais import MAX_EXACT, best_log_partition, exact_log_partition, log_prob

    W, b, c, meta = _load_rbm(Path(args.model))
    if W.shape[0] != 784:
        raise NeurosimError(f"{args.model}: {W.shape[0]} visible units; MNIST needs 784")
    seed, binarization = meta.get("seed", 0), meta.get("binarization", "stochastic")
    test = load_binary_mnist("test", seed, args.limit, binarization=binarization)[0]
    result = {"model": str(args.model), "hidden": int(W.shape[1]), "test_cases": len(test),
              "binarization": binarization,
              **{f"train_{k}" if k == "argv" else k: meta[k] for k in ("argv", "train_minutes") if k in meta}}
    log_z = None
    if args.exact:
        if min(W.shape) > MAX_EXACT:
            raise NeurosimError(f"--exact: {W.shape[1]} hidden units; exact log Z enumerates at most "
                                f"{MAX_EXACT} (use --ais)")
        log_z = result["logZ_exact"] = exact_log_partition(W, b, c)
    if args.ais or not args.exact:
        bases = {name: load_binary_mnist("train", seed, binarization=binarization)[0] if name == "data" else None
                 for name in (("data", "uniform") if args.base_rate == "both" else (args.base_rate,))}
        ais = best_log_partition(W, b, c, np.random.default_rng(args.seed), bases, args.runs, args.betas,
                                 test[:100] if args.floor_steps else None, args.floor_steps, where=args.model,
                                 hint="try --base-rate both or more --betas")
        result.update(logZ_ais=ais.estimate.log_z, logZ_ais_std=ais.estimate.log_z_std, ais_runs=args.runs,
                      ais_betas=args.betas, ais_base_rate=ais.base_rate)
        if len(bases) > 1:
            result["logZ_ais_by_base_rate"] = ais.log_z
        log_z = result.get("logZ_exact", ais.estimate.log_z)
        if ais.floor is not None:
            result.update(logZ_floor=ais.floor,
                          test_logprob_upper_nats=float(np.mean(log_prob(test, W, b, c, ais.floor))))
        if args.reverse_sweeps:
            result.update(_reverse_ais(W, b, c, test, bases[ais.base_rate], seed, binarization, args))
    result["test_logprob_nats"] = float(np.mean(log_prob(test, W, b, c, log_z)))
    print(strict_json(result) if args.json else
          "\n".join(f"  {k}: {v}" for k, v in result.items()))


def _reverse_ais(W, b, c, test: np.ndarray, base: np.ndarray | None, seed: int, binarization: str,
                 args: argparse.Namespace) -> dict:
    """Reverse AIS from ``--runs`` chains started at training digits and run
    ``--reverse-sweeps`` Gibbs steps: a stochastic upper bound on log Z if they are samples
    of the model, and so the lower bracket ``test_logprob_lower_nats``."""
    from .data import load_binary_mnist
    from .machines.ais import ais_log_partition, log_prob, model_samples

    rng = np.random.default_rng([args.seed, 1])
    V0 = load_binary_mnist("train", seed, args.runs, binarization=binarization)[0]
    rev = ais_log_partition(W, b, c, rng, args.runs, args.betas, base,
                            start=model_samples(W, b, c, V0, rng, args.reverse_sweeps))
    return {"logZ_ais_reverse": rev.log_z, "logZ_ais_reverse_std": rev.log_z_std,
            "reverse_sweeps": args.reverse_sweeps,
            "test_logprob_lower_nats": float(np.mean(log_prob(test, W, b, c, rev.log_z)))}


# -- dbn ------------------------------------------------------------------------------------
def cmd_dbn_train(args: argparse.Namespace) -> None:
    """Everything is checked before training starts; the run's files are written under
    its lock only (a run started at the same instant into the same --out cannot rewrite
    them), each atomically."""
    from .compiled.arrays import backend
    from .data import load_mnist
    from .machines.dbn_fork import plan_fork
    from .machines.dbn_train import PRESETS, Trainer, implied_settings, write_checkpoint
    from .machines.runs import check_resume
    from .outputs import atomic_write_text, check_out_directory

    out = check_out_directory(args.out)
    if args.resume and args.source:
        raise NeurosimError("--from starts a new run and --resume continues one: give one of them")
    check_resume(out / "checkpoint.npz", args.resume, out)
    given = implied_settings(dict(pretrain_epochs=args.pretrain_epochs, updown_epochs=args.updown_epochs,
                                  backprop_epochs=args.backprop_epochs, hidden=args.hidden,
                                  updown_anneal=args.updown_anneal, updown_cd=args.updown_cd,
                                  backprop_anneal=args.backprop_anneal, backprop_line_searches=args.backprop_cg,
                                  backprop_batch=args.backprop_batch, backprop_from=args.backprop_from,
                                  chain_labels=args.chain_labels, updown_continue=args.updown_continue,
                                  continue_lr=args.continue_lr, validation=args.validation, seed=args.seed,
                                  backend=args.backend, device=args.device, dtype=args.dtype,
                                  centered=args.centered, offset_rate=args.offset_rate))
    overrides = {k: v for k, v in given.items() if v is not None}
    recipe, limit = (_resumed(out, overrides, args.limit) if args.resume
                     else (replace(PRESETS[args.preset], **overrides), args.limit))
    if recipe.unused_cd():
        print(f"neurosim: warning: --updown-cd {_flag_text(recipe.unused_cd())}: up-down runs epochs 0 to "
              f"{recipe.updown_epochs - 1} only, so this CD-k is never used (raise --updown-epochs)", file=sys.stderr)
    if args.offset_rate is not None and not recipe.centered:
        print("neurosim: warning: --offset-rate moves the offsets of centered training only; without --centered "
              "it is recorded and unused", file=sys.stderr)
    backend(recipe.backend, recipe.device, recipe.dtype)    # checked before the data load; Trainer checks again
    X, labels = load_mnist("train", limit=limit)
    trainer = Trainer(recipe, X, labels, out, checkpoint_s=60 * args.checkpoint_minutes)
    fork = plan_fork(args.source, recipe, out, len(X) - recipe.validation) if args.source else None

    def begin() -> None:                                     # under the lock
        check_resume(out / "checkpoint.npz", args.resume, out)   # again: another run may have begun since
        if fork:
            write_checkpoint(out, *fork[:2])
            print(fork[2], file=sys.stderr)
        if not args.resume:
            atomic_write_text(out / "command.json", json.dumps({"argv": sys.argv, "recipe": asdict(recipe)},
                                                               indent=1))

    try:
        trainer.run(begin)
    except MemoryError:
        raise NeurosimError(f"--hidden {_flag_text(recipe.hidden)}: not enough memory for these layers "
                            f"(the checkpoint in {out} holds the stages finished)") from None
    seconds = trainer.progress.seconds
    print(f"trained {out}: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()))


_FLAGS = {"backprop_line_searches": "--backprop-cg"}


def _resumed(out: Path, overrides: dict, limit: int | None) -> tuple:
    """The recipe and ``--limit`` of the run in ``out``, which --resume continues; an
    error naming every flag of this command that says otherwise."""
    from .machines.dbn_train import changed_settings, read_checkpoint, recipe_of

    meta = read_checkpoint(out / "checkpoint.npz")[1]
    recipe = recipe_of(meta)
    started = {**asdict(recipe), "limit": meta["n_cases"] + recipe.validation}
    said = {**overrides, "limit": started["limit"] if limit is None else limit}
    differ = changed_settings(recipe, overrides)
    if said["limit"] != started["limit"]:
        differ.append("limit")
    if differ:
        flags = {k: _FLAGS.get(k, "--" + k.replace("_", "-")) for k in differ}
        was, now = (" ".join(f"{flags[k]} {_flag_text(values[k])}" for k in differ) for values in (started, said))
        raise NeurosimError(f"--resume: {out} was started with {was}; this command says {now} (drop the "
                            f"flag{'s' * (len(differ) > 1)}, or use --from {out} to fork)")
    return recipe, started["limit"]


def _flag_text(value) -> str:
    """A setting as its flag writes it: ``(500, 500, 2000)`` -> ``500,500,2000``,
    ``((0, 3), (100, 6))`` -> ``0:3,100:6``."""
    if isinstance(value, tuple):
        return ",".join(":".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


def cmd_dbn_evaluate(args: argparse.Namespace) -> None:
    from .data import load_mnist
    from .machines.dbn_train import load_run

    run = load_run(args.directory)
    X, labels = load_mnist("test", limit=args.limit)
    if run.dbn.sizes[0] != X.shape[1]:
        raise NeurosimError(f"{args.directory}: its DBN has {run.dbn.sizes[0]} visible units; MNIST needs "
                            f"{X.shape[1]}")
    result = {"directory": str(args.directory), "finished": run.finished, "reached": run.reached,
              "test_cases": len(X), **run.test_errors(X, labels), "backprop_from": run.recipe.backprop_from,
              "seconds": run.progress.seconds, "curves": run.progress.history}

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}%"

    best = ("" if run.best is None else
            f"  generative, up-down epoch {result['best_updown_epoch']} (the best held out, the continuation's "
            f"start) {pct(result['test_error_generative_best_updown'])}\n")
    start = {"greedy": "greedy", "updown": "continued up-down" if run.recipe.updown_continue else "up-down"}
    text = (f"{args.directory}: {'finished run' if run.finished else f'unfinished run ({run.reached})'}, "
            f"{len(X)} test digits\n"
            f"  generative (free energy) test error {pct(result['test_error_generative'])}\n" + best +
            f"  backprop fine-tuned test error     {pct(result['test_error_backprop'])}"
            f" (from the {start[run.recipe.backprop_from]} weights)\n"
            + "\n".join(f"  {k:<9} {v / 60:7.1f} min" for k, v in run.progress.seconds.items()))
    print(strict_json({k: v for k, v in result.items() if k != "curves" or args.curves})
          if args.json else text)


def cmd_dbn_export(args: argparse.Namespace) -> None:
    """The run's DBN as a model file: TOML for the structure beside an ``.npz`` of its arrays."""
    from .machines.dbn_train import load_run
    from .modelfile import save
    from .outputs import check_out

    out = check_out(args.out, (".toml",))
    run = load_run(args.directory)
    net = run.dbn.to_network(name=Path(args.directory).name or "dbn")
    save(net, out, format="populations")
    print(f"wrote {out} and {out.with_suffix('.npz')}: {net.n_units} units in {len(net.populations)} "
          f"populations, {net.n_edges} connections in {len(net.projections)} projections")


def cmd_dbn_classify(args: argparse.Namespace) -> None:
    """``dbn classify``: the test error of a DBN model file's label read-out."""
    import time

    from .data import load_mnist
    from .machines.dbn_readout import classify
    from .modelfile import load

    if args.backend == "compiled" and (args.schedule is not None or args.delay is not None):
        raise NeurosimError("dbn classify: --schedule and --delay are the event engine's (--backend event); "
                            "the compiled backend updates whole groups in a fixed order with no delays")
    net = load(args.model)
    X, labels = load_mnist("test", limit=args.limit)
    start = time.perf_counter()
    result = classify(net, X, args.method, np.random.default_rng(args.seed), args.sweeps, args.burn_in,
                      backend=args.backend, schedule=args.schedule or "sweep", delay=args.delay or 0.0)
    seconds = time.perf_counter() - start
    out = {"test_error": float(np.mean(result.labels != labels)), "cases": len(X), "backend": args.backend,
           "method": args.method, "messages": {"binary": result.ledger.binary, "analog": result.ledger.analog},
           "seconds": seconds}
    text = (f"{args.model}: {args.method} read-out on the {args.backend} backend, {len(X)} test digits: "
            f"test error {100 * out['test_error']:.2f}%, {out['messages']['binary']} binary and "
            f"{out['messages']['analog']} analog messages, {seconds:.2f} s")
    print(strict_json(out) if args.json else text)


# -- autoencoder ---------------------------------------------------------------------------------
def cmd_autoencoder_train(args: argparse.Namespace) -> None:
    """:class:`~neurosim.machines.autoencoder.AutoencoderTrainer` on MNIST's training
    digits into ``--out``; ``--resume`` continues it with its own settings (a flag that
    differs is refused by the trainer, naming the setting)."""
    from .compiled.arrays import backend
    from .data import load_mnist
    from .machines.autoencoder import AutoencoderRecipe, AutoencoderTrainer, load_run
    from .machines.runs import check_resume
    from .outputs import atomic_write_text, check_out_directory

    out = check_out_directory(args.out)
    check_resume(out / "checkpoint.npz", args.resume, out)
    given = dict(layers=args.layers, pretrain_epochs=args.pretrain_epochs, backprop_epochs=args.backprop_epochs,
                 seed=args.seed, backend=args.backend, device=args.device, dtype=args.dtype)
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.resume:
        run = load_run(out)
        recipe, limit = replace(run.recipe, **overrides), args.limit or run.n_cases
    else:
        recipe, limit = AutoencoderRecipe(**overrides), args.limit
    backend(recipe.backend, recipe.device, recipe.dtype)    # checked before the data load
    X = load_mnist("train", limit=limit)[0]
    trainer = AutoencoderTrainer(recipe, X, out, checkpoint_s=60 * args.checkpoint_minutes)

    def begin() -> None:                                     # under the lock
        check_resume(out / "checkpoint.npz", args.resume, out)
        if not args.resume:
            atomic_write_text(out / "command.json", json.dumps({"argv": sys.argv, "recipe": asdict(recipe)},
                                                               indent=1))

    trainer.run(begin)
    print(f"trained {out}: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in trainer.progress.seconds.items()))


def cmd_autoencoder_evaluate(args: argparse.Namespace) -> None:
    """The squared errors of a finished run's autoencoder, logistic PCA and PCA on MNIST's
    test digits, and the k-nearest-neighbour test errors of its codes and PCA's (the
    training digits: the first ``n_cases`` the run was trained on)."""
    import time

    from .data import load_mnist
    from .machines.autoencoder import evaluate, load_run

    run = load_run(args.directory)
    X, labels = load_mnist("test", limit=args.limit)
    start = time.perf_counter()
    errors = evaluate(run, X, labels, *load_mnist("train", limit=run.n_cases), k=args.k)
    result = {"directory": str(args.directory), "test_cases": len(X), "train_cases": run.n_cases, **errors,
              "seconds": sum(run.progress.seconds.values()), "stage_seconds": run.progress.seconds,
              "evaluate_seconds": time.perf_counter() - start, "layers": list(run.recipe.layers),
              "recipe": asdict(run.recipe)}
    if args.curves:
        result["curves"] = run.progress.history
    text = (f"{args.directory}: {len(X)} test digits, mean squared error per image: deep autoencoder "
            f"{errors['test_squared_error']:.2f}, logistic PCA {errors['logistic_pca_test_squared_error']:.2f}, "
            f"PCA {errors['pca_test_squared_error']:.2f}; {args.k}-nearest-neighbour test error of the codes "
            f"{100 * errors['knn_test_error']:.2f}%, of PCA's {100 * errors['pca_knn_test_error']:.2f}%; "
            f"trained in {result['seconds'] / 60:.1f} min")
    print(strict_json(result) if args.json else text)


def add_parsers(sub: argparse._SubParsersAction, positive, non_negative) -> None:
    from .cli_args import non_negative_float, positive_float, run_directory_flags, seed, single_valued, unit_float
    from .data import BINARIZATIONS
    from .machines.dbn_train import PRESETS

    sp = sub.add_parser("rbm", help="RBMs on binarised MNIST: CD-k, PCD; test log-probability by AIS")
    actions = sp.add_subparsers(dest="action", required=True)
    tr = single_valued(actions.add_parser("train", help="train an RBM on MNIST"))
    tr.add_argument("--hidden", type=positive, default=500)
    tr.add_argument("--epochs", type=positive, default=50)
    tr.add_argument("--cd", type=positive, default=1, help="Gibbs steps: CD-k or PCD-k")
    tr.add_argument("--persistent", action="store_true", help="persistent CD")
    tr.add_argument("--chains", type=positive, default=None, metavar="N",
                    help="--persistent: N persistent chains (default: --batch); the negative statistics are their "
                         "mean, the positive ones the minibatch's (Tieleman 2008)")
    tr.add_argument("--tempering", type=positive, default=1, metavar="K",
                    help="--persistent: the chains by parallel tempering at K inverse temperatures evenly spaced "
                         "in [0, 1] (Desjardins et al. 2010), statistics from beta = 1; about K times PCD's Gibbs "
                         "work (default 1: plain Gibbs)")
    tr.add_argument("--lr", type=positive_float, default=0.05)
    tr.add_argument("--anneal", type=non_negative, default=0,
                    help="the learning rate falls linearly to zero over the last N epochs")
    tr.add_argument("--batch", type=positive, default=100)
    tr.add_argument("--no-momentum", action="store_true",
                    help="plain gradient steps (PyDeep's recipe); default: rbm.m's momentum, 0.5 then 0.9")
    tr.add_argument("--weight-decay", type=non_negative_float, default=0.0002)
    tr.add_argument("--centered", action="store_true",
                    help="centered training (Melchior, Fischer and Wiskott 2016): offsets follow the data's means")
    tr.add_argument("--offset-rate", type=unit_float, default=0.01, metavar="NU",
                    help="--centered: the offsets' sliding-average rate, visible and hidden (0: fixed)")
    tr.add_argument("--limit", type=positive, default=None, help="train on the first N digits only")
    tr.add_argument("--binarize", choices=BINARIZATIONS, default="stochastic",
                    help="pixels on with probability their intensity, seeded (Salakhutdinov and Murray; the "
                         "default), or where the intensity exceeds 0.5 (PyDeep's data); rbm evaluate scores "
                         "the test digits binarized the same way")
    tr.add_argument("--seed", type=non_negative, default=0)
    backend_flags(tr, "training")
    tr.add_argument("--out", required=True,
                    help="FILE.npz (weights and hyper-parameters, as RBM.save) or FILE.toml (a model file: "
                         "weights only)")
    tr.add_argument("--checkpoint-minutes", type=non_negative_float, default=3.0, metavar="M",
                    help="checkpoint OUT.checkpoint.npz every M minutes of training (at the next minibatch), and "
                         "on Ctrl-C; 0: after every minibatch")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run whose checkpoint is OUT.checkpoint.npz (the same flags; one that "
                         "differs is refused by name)")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(run=cmd_rbm_train)
    ev = single_valued(actions.add_parser(
        "evaluate", help="test log-probability in nats (log Z by AIS or exact)"))
    ev.add_argument("model")
    ev.add_argument("--ais", action="store_true", help="log Z by AIS (the default without --exact)")
    ev.add_argument("--exact", action="store_true", help="exact log Z (at most 20 hidden units)")
    ev.add_argument("--runs", type=positive, default=100, help="AIS runs")
    ev.add_argument("--betas", type=positive, default=14500, help="AIS inverse temperatures")
    ev.add_argument("--base-rate", choices=["both", "data", "uniform"], default="both",
                    help="AIS starting model: the training pixels' log-odds (Salakhutdinov and Murray), "
                         "all biases zero (steadier for RBMs far from the data's marginals), or both, "
                         "keeping the larger log Z (the default)")
    ev.add_argument("--floor-steps", type=non_negative, default=3000,
                    help="Gibbs steps of 100 chains from test digits whose distinct states give a certain "
                         "lower bound on log Z (logZ_floor) and so an upper bound on the test log-probability; "
                         "0: skip")
    ev.add_argument("--reverse-sweeps", type=non_negative, default=1000, metavar="S",
                    help="reverse AIS from --runs Gibbs chains started at training digits and run S steps: "
                         "an upper bound on log Z in expectation if they sample the model, so the lower bracket "
                         "test_logprob_lower_nats; 0: skip (default 1000)")
    ev.add_argument("--limit", type=positive, default=None, help="the first N test digits only")
    ev.add_argument("--seed", type=non_negative, default=0, help="AIS seed")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(run=cmd_rbm_evaluate)

    sp = sub.add_parser("dbn", help="deep belief nets on MNIST (Hinton, Osindero and Teh 2006)")
    actions = sp.add_subparsers(dest="action", required=True)
    tr = single_valued(actions.add_parser(
        "train", help="greedy pretraining, up-down and backprop fine-tuning"))
    tr.add_argument("--preset", choices=sorted(PRESETS), default="hinton2006")
    tr.add_argument("--pretrain-epochs", type=non_negative, default=None, help="epochs per RBM")
    tr.add_argument("--updown-epochs", type=non_negative, default=None)
    tr.add_argument("--backprop-epochs", type=non_negative, default=None)
    tr.add_argument("--updown-cd", type=_cd_schedule, default=None, metavar="K | E:K,E:K,...",
                    help="Gibbs steps of the top RBM during up-down: one k, or k from each first "
                         "epoch E on (preset: 10; the paper: 0:3,100:6,200:10)")
    for stage in ("updown", "backprop"):
        tr.add_argument(f"--{stage}-anneal", type=non_negative, default=None, metavar="N",
                        help=f"over the last N {stage} epochs the learning rate falls linearly to zero")
    tr.add_argument("--backprop-cg", type=non_negative, default=None, metavar="N",
                    help="backprop by conjugate gradient, N line searches per minibatch (preset and "
                         "published: 3), minibatches of 1000 unless --backprop-batch says otherwise; 0: SGD "
                         "with momentum on minibatches of 100")
    tr.add_argument("--backprop-batch", type=positive, default=None, metavar="N",
                    help="backprop minibatch size (preset: 1000)")
    tr.add_argument("--backprop-from", choices=("greedy", "updown"), default=None,
                    help="backprop starts from the greedy stack (preset, as backpropclassify.m) or from "
                         "the up-down weights")
    tr.add_argument("--updown-continue", type=non_negative, default=None, metavar="N",
                    help="the two stages of section 6.1 (needs --validation): keep up-down's epoch of lowest "
                         "held-out error, then train it N more up-down epochs on every digit, held-out ones "
                         "too, at a constant rate with up-down's last CD-k (preset: 0, none)")
    tr.add_argument("--continue-lr", type=positive_float, default=None, metavar="R",
                    help="the continuation's constant learning rate (default: up-down's, 0.003)")
    tr.add_argument("--chain-labels", choices=("probabilities", "samples"), default=None,
                    help="the labels' reconstruction in the top RBM's chains, greedy and in up-down: "
                         "softmax probabilities (preset, the appendix) or one-hot samples (section 6.1)")
    tr.add_argument("--centered", action="store_true", default=None,
                    help="centered CD in every greedy RBM, the top one's labels too (Melchior, Fischer and "
                         "Wiskott 2016): offsets follow the data's means; up-down and backprop as without. "
                         "Measured worse on MNIST (held out: 23.2%% greedy against 2.98%%; the top RBM's hidden "
                         "offset, docs/machines/dbn.md)")
    tr.add_argument("--offset-rate", type=unit_float, default=None, metavar="NU",
                    help="--centered: the offsets' sliding-average rate, visible, hidden and label (default "
                         "0.01; 0: fixed)")
    tr.add_argument("--hidden", type=_sizes, default=None, metavar="N1,N2,...,NTOP",
                    help="hidden layer sizes, top last (preset: 500,500,2000)")
    tr.add_argument("--limit", type=positive, default=None, help="train on the first N digits only")
    tr.add_argument("--validation", type=non_negative, default=None, metavar="N",
                    help="hold out the last N of them; the fine-tuning curves report their error")
    tr.add_argument("--seed", type=seed, default=None)
    backend_flags(tr, "every stage: the greedy RBMs, the top RBM, up-down and backprop", given_only=True)
    run_directory_flags(tr)
    tr.add_argument("--from", dest="source", metavar="RUN", default=None,
                    help="start from RUN's weights at the first stage whose settings differ (up-down, "
                         "its continuation or backprop); the same weights as a fresh run, without its shared "
                         "stages")
    tr.set_defaults(run=cmd_dbn_train)
    ev = single_valued(actions.add_parser(
        "evaluate", help="test errors (generative, backprop) and stage times"))
    ev.add_argument("directory")
    ev.add_argument("--limit", type=positive, default=None, help="the first N test digits only")
    ev.add_argument("--curves", action="store_true", help="JSON: add every epoch's rate and time")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(run=cmd_dbn_evaluate)
    ex = single_valued(actions.add_parser(
        "export", help="write a run's DBN as a model file (TOML beside an .npz of its weights)"))
    ex.add_argument("directory")
    ex.add_argument("--out", required=True, help="FILE.toml; its arrays go to FILE.npz beside it")
    ex.set_defaults(run=cmd_dbn_export)
    cl = single_valued(actions.add_parser(
        "classify", help="test error of a DBN model file's label read-out (free energy or Gibbs)"))
    cl.add_argument("model")
    cl.add_argument("--backend", choices=("compiled", "event"), default="compiled")
    cl.add_argument("--method", choices=("free-energy", "gibbs"), default="free-energy",
                    help="free-energy: exact, the label of lowest top-RBM free energy after an up-pass of "
                         "probabilities; gibbs: a stochastic binary up-pass, then the labels (a softmax "
                         "group) sampled in the top RBM, the label that fires most")
    cl.add_argument("--sweeps", type=positive, default=50, help="gibbs: sweeps whose label firings count")
    cl.add_argument("--burn-in", type=non_negative, default=10, help="gibbs: sweeps before counting")
    cl.add_argument("--schedule", choices=("sweep", "layer", "async"), default=None,
                    help="event backend: how a group of units updates in its step (default sweep)")
    cl.add_argument("--delay", type=non_negative_float, default=None, metavar="D",
                    help="event backend: the top RBM's synapses deliver D sweeps after a change (default 0)")
    cl.add_argument("--limit", type=positive, default=None, help="the first N test digits only")
    cl.add_argument("--seed", type=seed, default=0)
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(run=cmd_dbn_classify)

    sp = sub.add_parser("autoencoder", help="the deep autoencoder of Hinton and Salakhutdinov 2006 on MNIST, "
                                            "against PCA and logistic PCA")
    actions = sp.add_subparsers(dest="action", required=True)
    tr = single_valued(actions.add_parser(
        "train", help="pretrain a stack of RBMs, unroll it and fine-tune it by conjugate gradient"))
    tr.add_argument("--layers", type=layer_sizes, default=None, metavar="N1,N2,...,CODE",
                    help="hidden layer sizes, the code layer last (default: 1000,500,250,30)")
    tr.add_argument("--pretrain-epochs", type=non_negative, default=None, help="epochs per RBM (default 10)")
    tr.add_argument("--backprop-epochs", type=non_negative, default=None,
                    help="epochs of conjugate-gradient fine-tuning, also of logistic PCA (default 200)")
    tr.add_argument("--limit", type=positive, default=None, help="train on the first N digits only")
    tr.add_argument("--seed", type=seed, default=None)
    backend_flags(tr, "the RBMs' CD and backprop's products", given_only=True)
    run_directory_flags(tr)
    tr.set_defaults(run=cmd_autoencoder_train)
    ev = single_valued(actions.add_parser(
        "evaluate", help="test squared error per image: the autoencoder, logistic PCA and PCA; the "
                    "k-nearest-neighbour test error of its codes and of PCA's"))
    ev.add_argument("directory")
    ev.add_argument("--limit", type=positive, default=None, help="the first N test digits only")
    ev.add_argument("--k", type=positive, default=1,
                    help="neighbours in the vote of the k-nearest-neighbour test errors (default 1)")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--curves", action="store_true", help="JSON: add every epoch's squared error and time")
    ev.set_defaults(run=cmd_autoencoder_evaluate)


def _cd_schedule(text: str) -> tuple[tuple[int, int], ...]:
    """``"10"`` -> ((0, 10),); ``"0:3,100:6"`` -> ((0, 3), (100, 6)). The recipe checks the rest."""
    try:
        if ":" not in text:
            return ((0, int(text)),)
        return tuple((int(e), int(k)) for e, k in (pair.split(":") for pair in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write one k, or first-epoch:k pairs separated by commas "
                                         f"(0:3,100:6,200:10), got {text}")


def _sizes(text: str) -> tuple[int, ...]:
    sizes = layer_sizes(text)
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"at least two layers of >= 1 unit, got {text}")
    return sizes
