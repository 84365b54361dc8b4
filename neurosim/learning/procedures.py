"""Training procedures, written once: who is clamped, who updates, when the phase
signal is sent, for a minibatch. They run on both backends through the sampler protocol
(``clamp(units=, values=)``, ``unclamp``, ``update_group``, ``sweep``, ``rows``,
``ledger``, ``beta``) of :class:`~neurosim.engine.Simulator` and
:class:`~neurosim.compiled.Chains`; a learner (:mod:`.learners`) makes the difference:
the event engine holds one case at a time and its synapses learn by the rule's local
form, the compiled backend holds the minibatch as chains and applies the batched form.

Every procedure takes a Network, a rule, the training data (rows over ``visible``)
and a Generator, and returns a :class:`TrainResult`: the trained Network, the message
ledger, what the synapses read, and how far symmetric pairs drifted apart.

The remedies the demos need to reach their goals are settings of every procedure, on
both backends (:func:`run_with_restarts`): restarts chosen on held-out likelihood
(``restarts``, ``screen``, ``held_out``; :mod:`neurosim.learning.restarts`), a lower
learning rate for the last third of the epochs (``final_lr``), and, for wake-sleep, a
warm-up in which the hidden layers' generative model stays fixed (``warmup_epochs``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from ..compiled.arrays import Backend
from ..compiled.sampler import Chains
from ..engine import Simulator
from ..errors import ParameterError, ValidationError
from ..inference.exact import MAX_FREE_UNITS, visible_log_prob
from ..machines.base import binary_rows as _binary_rows, check_number as _check_number
from ..messages import Ledger
from ..network import Network
from .learners import (LEARNERS, CompiledLearner, EventLearner, TrainResult, diverged, out_of_range,
                       symmetry_drift)
from .restarts import best_of, split_held_out
from .rules import Rule

__all__ = ["TrainResult", "Settings", "train", "symmetry_drift", "symmetrised", "check_training",
           "diverged", "out_of_range", "run_with_restarts", "held_out_scorer", "enumerable", "PROCEDURES",
           "EXACT_BUDGET", "messages_per_case", "recommended"]

Sampler = Union[Simulator, Chains]  # the sampler protocol's two implementations
Learner = Union[EventLearner, CompiledLearner]

EXACT_BUDGET = 2 ** 24  # (cases) x (hidden states) enumerated for an exact likelihood of training data

# recommended(): the remedies that bring the 4-2-4 encoder near its demo's quality
# (demos/boltzmann_encoder.py; measured in docs/architecture.md, section "Learning")
MIN_CASES = 12_000          # epochs: enough for this many training cases, at least 10
RESTARTS = 12               # restarts where the held-out likelihood is affordable
ANNEAL = (8.0, 6.0, 4.0, 3.0, 2.0, 1.5)   # Boltzmann: the demo's temperatures
FINAL_LR_DIVISOR = 25       # final_lr: lr / 25 for the last third of the epochs
WARMUP_FRACTION = 0.3       # wake-sleep warm-up: as the shifter demo's 30,000 of 100,000 updates


@dataclass
class Settings:
    """``epochs`` passes over the data; weights change after every ``batch`` cases;
    ``sweeps``: settling sweeps per phase (Boltzmann, Neal's Gibbs); ``anneal``:
    temperatures, one sweep each, before those sweeps (Boltzmann; Ackley et al. 1985);
    ``k``: Gibbs steps of CD-k / PCD-k; ``schedule`` of the settling phases.

    Remedies (:func:`run_with_restarts`): ``final_lr``, the learning rate of the last
    third of the epochs (the demo's 0.5, then 0.1); ``restarts`` candidates trained
    from independent starts for ``screen`` epochs (default a twelfth of ``epochs``, as
    the demo checks after 250 of 3000 updates), the one with the highest held-out
    log-likelihood trained on; ``held_out``, the fraction
    of the rows held out to choose on (data given as a distribution are scored by their
    exact expected log-likelihood instead); ``warmup_epochs`` (wake-sleep): the first
    epochs, in which only the generative synapses into the visible units learn (Dayan
    et al. 1995, figure 4: fixed hidden priors early in learning). ``log``: called with
    a line of progress per restart (the CLI prints it on stderr)."""

    epochs: int = 1
    lr: float = 0.1
    batch: int = 1
    sweeps: int = 10
    k: int = 1
    schedule: str = "sweep"
    anneal: tuple[float, ...] = ()
    final_lr: float | None = None
    restarts: int = 1
    screen: int | None = None
    held_out: float = 0.2
    warmup_epochs: int = 0
    log: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """ParameterError naming a setting no run can use (``lr`` <= 0, NaN or infinite, ...)."""
        for name in ("epochs", "batch", "sweeps", "k", "restarts"):
            _check_number(name, getattr(self, name), low=1, integer=True)
        _check_number("lr", self.lr, low=0, low_open=True)
        if self.final_lr is not None:
            _check_number("final_lr", self.final_lr, low=0, low_open=True)
        for temperature in self.anneal:
            _check_number("anneal temperature", temperature, low=0, low_open=True)
        if self.screen is not None:
            _check_number("screen", self.screen, low=1, high=self.epochs, integer=True)
        _check_number("held_out", self.held_out, low=0, high=1, low_open=True, high_open=True)
        _check_number("warmup_epochs", self.warmup_epochs, low=0, high=self.epochs, integer=True)

    @property
    def screen_epochs(self) -> int:
        """Epochs each restart trains before the choice."""
        return self.screen if self.screen is not None else max(1, self.epochs // 12)

    def lr_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (1-based): ``final_lr`` in the last third."""
        last_third = epoch > self.epochs - self.epochs // 3
        return self.final_lr if self.final_lr is not None and last_third else self.lr

    def warming_up(self, epoch: int) -> bool:
        return epoch <= self.warmup_epochs


def recommended(procedure: str, net: Network, visible: list[str], rows: int, distribution: bool = False,
                **given) -> Settings:
    """Settings with the demos' remedies as defaults (``neurosim train``'s): what ``given``
    (Settings fields; None: not given) leaves open is ``epochs`` enough for MIN_CASES
    cases of ``rows`` (at least 10), RESTARTS restarts where the held-out likelihood of
    ``net`` is affordable (:func:`enumerable`, or a recognition model), the ANNEAL
    temperatures, ``final_lr = lr / FINAL_LR_DIVISOR`` and, for wake-sleep, a warm-up of
    WARMUP_FRACTION of the epochs. ``distribution``: the rows are a distribution, scored whole."""
    s = {k: v for k, v in given.items() if v is not None}
    epochs = s.setdefault("epochs", max(10, -(-MIN_CASES // rows)))
    held = rows if distribution else max(1, round(s.get("held_out", Settings.held_out) * rows))
    scorable = rows > 1 and (enumerable(net, visible, held) or net.has_recognition)
    s.setdefault("restarts", RESTARTS if scorable else 1)
    s.setdefault("warmup_epochs", int(WARMUP_FRACTION * epochs) if procedure == "wake-sleep" else 0)
    s.setdefault("anneal", ANNEAL)
    s.setdefault("final_lr", s.get("lr", Settings.lr) / FINAL_LR_DIVISOR)
    return Settings(**s)


def symmetrised(net: Network) -> Network:
    """A copy in which the two synapses of each symmetric edge are set to their mean: the
    nearest net with an energy (eq. 2), for nets whose synapses drifted apart."""
    out = net.copy()
    for q in net.projections:
        if q.kind == "symmetric" and q.reverse is not None:
            out.set_block(q.name, 0.5 * (q.weights + q.reverse))
    return out


def check_training(net: Network, rule: Rule, data, visible: list[str]) -> np.ndarray:
    """``data`` as an array, or an error before any training: data that is not rows of
    0/1 over ``visible``, or a net that ``rule``'s procedure cannot train."""
    rows = np.asarray(data)
    _binary_rows(rows, len(visible), "training data", visible)
    net.refuse_linear(f"training by rule {rule.name!r} (its probabilities are eq. 1's)")
    if rule.procedure == "delta" and net.has_symmetric:
        edge = next(e for e in net.edges if e.kind == "symmetric")
        raise ValidationError(
            f"rule {rule.name!r} learns directed synapses from posterior samples (eq. 7); "
            f"{net.name!r} has symmetric edges ({edge.source} <-> {edge.target}, ...), which it has no "
            "negative phase to learn: use boltzmann, cd or pcd")
    if rule.procedure in ("wake-sleep", "up-down") and not net.has_recognition:
        raise ValidationError(f"{rule.procedure} needs recognition edges (kind = \"recognition\") in {net.name!r}")
    if rule.procedure == "up-down" and not net.has_symmetric:
        raise ValidationError(f"up-down trains a deep belief net: a top RBM (symmetric edges) over directed "
                              f"layers; {net.name!r} has no symmetric edges (train it by wake-sleep)")
    if rule.procedure == "backprop":
        _check_feed_forward(net, visible)
    delayed = net.delayed_edge()
    if delayed is not None and rule.procedure not in CLOCKED:
        raise ValidationError(
            f"{net.name!r} has message delays (edge {delayed.source} -> {delayed.target}: {delayed.delay:g} "
            f"sweeps), which rule {rule.name!r} cannot model: its procedure steps units without running "
            f"the clock, so a delayed message would never arrive; train with delays by "
            f"{' or '.join(CLOCKED)}")
    return rows


def _check_feed_forward(net: Network, visible: list[str]) -> None:
    if net.has_symmetric:
        raise ValidationError(f"backprop trains a directed (feed-forward) net; {net.name!r} has "
                              "symmetric edges")
    inputs = [u for u in visible if not net.parents(u)]
    targets = [u for u in visible if net.parents(u)]
    if not inputs or not targets:
        raise ValidationError("backprop needs visible input units (no parents) and visible target "
                              f"units (with parents); {net.name!r} has inputs {inputs} and targets {targets}")


def _batches(data: np.ndarray, s: Settings, rng: np.random.Generator, epochs: range):
    """``(epoch, batch)``: a pass over ``data`` shuffled for each of ``epochs`` (1-based),
    in batches of ``s.batch`` cases."""
    for epoch in epochs:
        order = rng.permutation(len(data))
        for start in range(0, len(order), s.batch):
            yield epoch, data[order[start:start + s.batch]]


def _settle(x: Sampler, s: Settings) -> None:
    """Annealing (one sweep at each temperature of ``s.anneal``), then ``s.sweeps`` sweeps
    at temperature 1."""
    for temperature in s.anneal:
        x.beta = 1.0 / temperature
        x.sweep(1)
    x.beta = 1.0
    x.sweep(s.sweeps)


def _boltzmann(L: Learner, batches, s: Settings, visible: list[str]) -> None:
    """Eq. 5: a positive phase settled with the data clamped, a free negative phase
    continued from it; one sample of each per case."""
    for epoch, batch in batches:
        L.begin(epoch)
        for rows in L.cases(batch):
            x = L.sampler(m=len(rows))
            x.clamp(units=visible, values=rows)
            _settle(x, s)
            L.observe("positive", x)
            x.unclamp(visible)
            _settle(x, s)
            L.observe("negative", x)
        L.apply(epoch, len(batch))


def _contrastive(L: Learner, batches, s: Settings, visible: list[str]) -> None:
    """Eq. 6, CD-k: the hidden units updated in parallel from the data (positive), then
    k steps of alternating Gibbs (negative). PCD: the negative chains persist, the
    minibatch's cases taking over the first of them."""
    units = L.net.units
    hidden = [u for u in units if u not in visible]
    chains = None
    for epoch, batch in batches:
        L.begin(epoch)
        for rows in L.cases(batch):
            m = len(rows)
            x = L.sampler(m=m)
            x.clamp(units=visible, values=rows)
            x.update_group(hidden)
            L.observe("positive", x)
            if chains is not None:
                x.clamp(units=units, values=chains[:m])
            x.unclamp()
            for _ in range(s.k):
                x.update_group(visible)
                x.update_group(hidden)
            L.observe("negative", x)
            if L.rule.procedure == "pcd":
                chains = x.rows.copy() if chains is None else np.vstack([x.rows, chains[m:]])
        L.apply(epoch, len(batch))


def _delta(L: Learner, batches, s: Settings, visible: list[str]) -> None:
    """Eq. 7 on posterior samples from Neal's Gibbs sampling (data clamped)."""
    for epoch, batch in batches:
        L.begin(epoch)
        for rows in L.cases(batch):
            x = L.sampler(m=len(rows))
            x.clamp(units=visible, values=rows)
            x.sweep(s.sweeps)
            L.observe("wake", x)
        L.apply(epoch, len(batch))


def _ancestral_pass(x: Sampler, net: Network, clamped: list[str] = ()) -> None:
    """Each generation of ``net`` (roots first) drawn in parallel from its parents,
    clamped units kept."""
    for generation in net.generations():
        free = [u for u in generation if u not in clamped]
        if free:
            x.update_group(free)


def _wake_sleep(L: Learner, batches, s: Settings, visible: list[str]) -> None:
    """Wake: a bottom-up recognition pass from the data; the generative synapses learn
    (eq. 7). Sleep: a top-down fantasy; the recognition synapses learn (eq. 11).
    During the warm-up only the generative synapses into the visible units learn."""
    for epoch, batch in batches:
        L.begin(epoch)
        for rows in L.cases(batch):
            rec = L.sampler("recognition", len(rows))
            rec.clamp(units=visible, values=rows)
            _ancestral_pass(rec, L.networks["recognition"], visible)
            L.observe("wake", rec)
            rec.unclamp()
            gen = L.sampler("generative", len(rows))
            _ancestral_pass(gen, L.networks["generative"])
            L.observe("sleep", gen, "recognition")
        if s.warming_up(epoch):
            L.hold(visible)
        L.apply(epoch, len(batch))


def _up_down(L: Learner, batches, s: Settings, visible: list[str]) -> None:
    """Up-down (Hinton, Osindero and Teh 2006, appendix B) on a DBN's Network (a top RBM
    over the pen layer and the labels, directed generative and recognition layers below;
    ``visible``: the data units and the labels). Wake: a stochastic recognition pass up
    from the data; with the labels clamped the top units sample from it, and the
    generative synapses of the directed layers learn by eq. 7, the top RBM's by the
    positive phase of eq. 6. Then CD-k in the top RBM (pen units, the labels as one
    softmax group, the top units); its negative phase; sleep: a generative pass down from
    the chain's pen states, and the recognition synapses learn by eq. 11."""
    gen, rec = L.networks["generative"], L.networks["recognition"]
    labels = [u for p in gen.populations if p.role == "label" for u in p.units]
    data = [u for u in visible if u not in labels]
    roots = set(gen.generations()[0])                  # the top RBM: pen, labels, top
    top = [u for u in gen.layers()[0] if u in roots]
    pen = [u for u in gen.units if u in roots and u not in top and u not in labels]
    below = [u for u in gen.units if u not in roots]   # the directed layers
    index = {u: i for i, u in enumerate(gen.units)}
    wake_units = below + pen
    wake_cols, data_cols = [index[u] for u in wake_units], [visible.index(u) for u in data]
    label_cols = [visible.index(u) for u in labels]
    for epoch, batch in batches:
        L.begin(epoch)
        for rows in L.cases(batch):
            m = len(rows)
            r = L.sampler("recognition", m)
            r.clamp(units=data, values=rows[:, data_cols])
            for generation in rec.generations()[1:]:
                r.update_group(generation)
            x = L.sampler("generative", m)
            x.clamp(units=wake_units, values=r.rows[:, wake_cols])
            if labels:
                x.clamp(units=labels, values=rows[:, label_cols])
            x.update_group(top)
            L.observe("wake", x, posts=set(below))
            L.observe("positive", x, posts=roots)
            x.unclamp()
            for _ in range(s.k):
                x.update_group(pen)
                if labels:
                    x.update_group(labels, softmax=True)
                x.update_group(top)
            L.observe("negative", x, posts=roots)
            for generation in gen.generations()[1:]:
                x.update_group(generation)
            L.observe("sleep", x, "recognition")
        L.apply(epoch, len(batch))


def _backprop(L: Learner, batches, s: Settings, visible: list[str]) -> None:
    """The contrast case (:class:`~.learners.Analog`): a deterministic forward pass of
    analog activities and a backward pass of error derivatives through the forward
    weights; inputs: the visible units without parents; targets: the other visible
    units; cross-entropy error."""
    net = L.net
    inputs = [u for u in visible if not net.parents(u)]
    targets = [u for u in visible if net.parents(u)]
    order = [visible.index(u) for u in inputs + targets]
    x = L.analog(inputs, targets)
    for epoch, batch in batches:
        L.begin(epoch)
        for rows in L.cases(batch):
            x.forward_backward(rows[:, order])
            L.observe("backward", x)
        L.apply(epoch, len(batch))


CLOCKED = ("boltzmann", "delta")  # procedures that settle by running the event engine's clock
# procedure: (what happens to each minibatch, pathways, the event engine's schedule and mode)
PROCEDURES: dict[str, tuple[Callable, tuple[str, ...], str | None, str | None]] = {
    "boltzmann": (_boltzmann, ("generative",), None, None),
    "cd": (_contrastive, ("generative",), "layer", None),
    "pcd": (_contrastive, ("generative",), "layer", None),
    "delta": (_delta, ("generative",), None, None),
    "wake-sleep": (_wake_sleep, ("generative", "recognition"), "layer", "ancestral"),
    "up-down": (_up_down, ("generative", "recognition"), "layer", "ancestral"),
    "backprop": (_backprop, (), None, None),
}


def enumerable(net: Network, visible: list[str], cases: int) -> bool:
    """Whether the exact log-likelihood of ``cases`` rows over ``visible`` is affordable:
    at most MAX_FREE_UNITS hidden units and ``cases * 2^hidden <= EXACT_BUDGET``."""
    hidden = net.n_units - len(visible)
    return hidden <= MAX_FREE_UNITS and cases * 2 ** hidden <= EXACT_BUDGET


def held_out_scorer(net: Network, visible: list[str], rows: np.ndarray, s: Settings,
                    rng: np.random.Generator, probs: np.ndarray | None = None):
    """``(training rows, score, how)`` for choosing among restarts: ``score(network)`` is the
    mean log-likelihood ``(1/N) sum_n log P(v_n)`` of a held-out ``s.held_out`` of the
    rows, or, for data given as a distribution (distinct ``rows`` with ``probs``), its
    exact expected log-likelihood ``sum_v p(v) log P(v)`` (all rows train; nothing held
    out). Exact by enumeration (eq. 4) when :func:`enumerable`; otherwise, for a net
    with a recognition model, importance-sampled from it (100 samples per case, the same
    random numbers for every candidate)."""
    if probs is None:
        if len(rows) < 2:
            raise ParameterError(f"restarts choose on held-out rows; {len(rows)} training row leaves none")
        rows, cases = split_held_out(rows, s.held_out, rng)
        weights = np.full(len(cases), 1.0 / len(cases))
    else:
        cases, weights = rows, np.asarray(probs, dtype=float)
    if enumerable(net, visible, len(cases)):
        return (rows, lambda trained: float(weights @ visible_log_prob(symmetrised(trained), visible, cases)),
                "exact")
    if not net.has_recognition:
        raise ValidationError(f"restarts choose on held-out likelihood: exact for up to {MAX_FREE_UNITS} hidden "
                              f"units and {EXACT_BUDGET} (cases x hidden states), importance-sampled for a net with "
                              f"a recognition model; {net.name!r} has {net.n_units - len(visible)} hidden units, "
                              f"{len(cases)} held-out cases and no recognition model")
    from ..machines.helmholtz import HelmholtzMachine

    seed = int(rng.integers(2 ** 63))
    order = [visible.index(v) for v in HelmholtzMachine.from_network(net).visible_names_]

    def importance_sampled(trained: Network) -> float:
        hm = HelmholtzMachine.from_network(trained)
        return float(weights @ hm.log_likelihood_is(cases[:, order], 100, random_state=seed))

    return rows, importance_sampled, "importance-sampled, 100 samples per case"


def run_with_restarts(fit: Callable[[Network, np.ndarray, np.random.Generator, range], TrainResult],
                      net: Network, rows: np.ndarray, visible: list[str], s: Settings,
                      rng: np.random.Generator, probs: np.ndarray | None = None) -> TrainResult:
    """Train by ``fit(start, rows, rng, epochs)`` (one procedure on one backend) with the
    remedies of ``s``: ``s.restarts`` candidates train ``s.screen_epochs`` epochs each
    (:func:`~neurosim.learning.restarts.best_of`), the one with the highest held-out
    log-likelihood (:func:`held_out_scorer`) trains on to ``s.epochs``. The ledger and
    cases count every candidate; ``restarts`` records the choice."""
    if s.restarts == 1:
        return fit(net, rows, rng, range(1, s.epochs + 1))
    rows, score, how = held_out_scorer(net, visible, rows, s, rng, probs)
    screen = s.screen_epochs
    log = s.log or (lambda line: None)

    count = iter(range(1, s.restarts + 1))

    def scored(result: TrainResult) -> float:
        value = score(result.network)
        log(f"restart {next(count)}/{s.restarts}: held-out log-likelihood {value:.4g} nats after {screen} epochs")
        return value

    choice = best_of(lambda r: fit(net, rows, r, range(1, screen + 1)), scored, s.restarts, rng)
    if screen < s.epochs:
        log(f"kept restart {choice.index + 1}; training it on to epoch {s.epochs}")
    runs = choice.candidates + ([fit(choice.best.network, rows, rng, range(screen + 1, s.epochs + 1))]
                                if screen < s.epochs else [])
    last = runs[-1] if screen < s.epochs else choice.best
    ledger = Ledger(*(sum(getattr(r.ledger, f) for r in runs) for f in ("binary", "analog", "updates")))
    chosen = {"candidates": s.restarts, "chosen": choice.index, "screen_epochs": screen,
              "held_out": "the data distribution (expected log-likelihood)" if probs is not None
              else f"{s.held_out:g} of the rows", "likelihood": how,
              "held_out_log_likelihood_nats": choice.scores}
    return TrainResult(last.network, ledger, sorted(set().union(*(r.reads for r in runs))),
                       sum(r.violations for r in runs), sum(r.phase_signals for r in runs),
                       sum(r.cases for r in runs), last.symmetry_drift, restarts=chosen)


def check_remedies(rule: Rule, s: Settings) -> None:
    """ValidationError for a remedy ``rule``'s procedure has no use for."""
    if s.warmup_epochs and rule.procedure != "wake-sleep":
        raise ValidationError(f"warmup_epochs holds the hidden layers' generative model of wake-sleep; rule "
                              f"{rule.name!r} trains by {rule.procedure!r}")


def train(net: Network, rule: Rule, data: np.ndarray, visible: list[str],
          rng: np.random.Generator, settings: Settings | None = None,
          probs: np.ndarray | None = None, backend: str = "event", arrays: Backend | None = None) -> TrainResult:
    """Train ``net`` by ``rule``'s procedure on ``backend`` ("event": the event engine,
    the rule's local form case by case; "compiled": chains per minibatch, its batched
    form, on ``arrays``: :func:`~neurosim.compiled.arrays.backend`, None numpy), with the
    remedies of ``settings`` (:func:`run_with_restarts`); returns a
    copy. ``probs``: the data are a distribution, distinct ``data`` rows with these
    probabilities (restarts are then chosen on its exact expected log-likelihood).

    Raises ParameterError or ValidationError before training (bad settings or data, a
    net the procedure cannot train) and DivergenceError, naming the epoch and the
    parameter, as soon as a weight or bias becomes non-finite."""
    s = settings or Settings()
    if backend not in LEARNERS:
        raise ValidationError(f"unknown backend {backend!r} (event or compiled)")
    if arrays is not None and backend != "compiled":
        raise ValidationError(f"arrays={arrays.name!r} is the compiled backend's array library; the {backend} "
                              "engine runs unit by unit (use backend 'compiled')")
    if rule.procedure not in PROCEDURES:
        where = "event engine" if backend == "event" else "compiled backend"
        raise ValidationError(f"rule {rule.name!r} asks for procedure {rule.procedure!r}; the {where} "
                              f"has {', '.join(PROCEDURES)}")
    rows = check_training(net, rule, data, visible)
    if backend == "compiled" and net.delayed_edge() is not None:
        raise ValidationError(f"{net.name!r} has message delays: the compiled backend runs with instant "
                              "messages; train it in the event engine")
    check_remedies(rule, s)

    def fit(start: Network, rows: np.ndarray, r: np.random.Generator, epochs: range) -> TrainResult:
        return _run(backend, start, rule, rows, visible, s, r, epochs, arrays).result(len(rows) * len(epochs))

    return run_with_restarts(fit, net, rows, visible, s, rng, probs)


def _run(backend: str, net: Network, rule: Rule, rows: np.ndarray, visible: list[str], s: Settings,
         rng: np.random.Generator, epochs: range, arrays: Backend | None = None) -> Learner:
    """Run ``rule``'s procedure over ``epochs`` on ``backend``'s learner (the compiled one
    on ``arrays``); returns the learner."""
    procedure, pathways, schedule, mode = PROCEDURES[rule.procedure]
    extra = {} if arrays is None else {"arrays": arrays}
    learner = LEARNERS[backend](net, rule, s, rng, pathways, schedule, mode, **extra)
    procedure(learner, _batches(rows, s, rng, epochs), s, list(visible))
    return learner


def messages_per_case(net: Network, rule: Rule, data: np.ndarray, visible: list[str],
                      rng: np.random.Generator, settings: Settings | None = None) -> dict[str, float]:
    """What training ``net`` by ``rule``'s procedure costs in the event engine, per
    training case, by its ledger: ``binary``, ``analog`` messages and unit ``updates``;
    ``cases``; ``seconds_build`` (the simulators and per-synapse plasticity),
    ``seconds_per_case`` and ``cpu_seconds_per_case`` (this process's CPU time: a shared
    machine's wall clock overstates it). The trained weights are not written back (at
    DBN scale that is a copy synapse by synapse)."""
    s = settings or Settings()
    rows = check_training(net, rule, data, visible)
    procedure, pathways, schedule, mode = PROCEDURES[rule.procedure]
    start = time.perf_counter()
    learner = EventLearner(net, rule, s, rng, pathways, schedule, mode)
    built, cpu = time.perf_counter(), time.process_time()
    procedure(learner, _batches(rows, s, rng, range(1, s.epochs + 1)), s, list(visible))
    cases = len(rows) * s.epochs
    ledger = learner.ledger
    return {"binary": ledger.binary / cases, "analog": ledger.analog / cases, "updates": ledger.updates / cases,
            "cases": cases, "seconds_build": built - start,
            "seconds_per_case": (time.perf_counter() - built) / cases,
            "cpu_seconds_per_case": (time.process_time() - cpu) / cases}
