"""Training procedures in the event engine: who is clamped, who updates, when the
phase signal is sent. The synapses learn by their rule's local form (Plasticity).

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

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..engine import Simulator
from ..errors import DivergenceError, ParameterError, ValidationError
from ..inference.exact import MAX_FREE_UNITS, MAX_SCALE, visible_log_prob
from ..machines.base import binary_rows as _binary_rows, check_number as _check_number
from ..messages import Ledger
from ..network import Network
from .plasticity import Plasticity
from .restarts import best_of, split_held_out
from .rules import Rule
from .view import SynapseView

__all__ = ["TrainResult", "Settings", "train", "symmetry_drift", "symmetrised", "check_training",
           "diverged", "out_of_range", "run_with_restarts", "held_out_scorer", "enumerable", "PROCEDURES",
           "EXACT_BUDGET"]

EXACT_BUDGET = 2 ** 24  # (cases) x (hidden states) enumerated for an exact likelihood of training data


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


@dataclass
class TrainResult:
    network: Network
    ledger: Ledger
    reads: list[str]
    violations: int
    phase_signals: int
    cases: int
    symmetry_drift: float = 0.0
    history: list[float] = field(default_factory=list)
    restarts: dict = field(default_factory=dict)


def symmetry_drift(sim: Simulator) -> float:
    """Largest ``|w_ij - w_ji|`` over symmetric pairs: the two synapses of an edge."""
    drift = 0.0
    for (pre, post), (n, k) in sim.slots.items():
        back = sim.slots.get((post, pre))
        if back is not None:
            drift = max(drift, abs(n.in_weight[k] - back[0].in_weight[back[1]]))
    return drift


def symmetrised(net: Network) -> Network:
    """A copy in which the two synapses of each symmetric edge are set to their mean: the
    nearest net with an energy (eq. 2), for nets whose synapses drifted apart."""
    out = Network(net.unit_list(), net.edges, net.name, net.description)
    for e in net.edges:
        if e.kind == "symmetric" and e.weight_reverse is not None:
            mean = 0.5 * (e.weight + e.weight_reverse)
            out.set_weight(e.source, e.target, mean)
            out.set_weight(e.target, e.source, mean)
    return out


def diverged(epoch: int, s: Settings, where: str, value: float) -> DivergenceError:
    """The error for a parameter (``where``: "synapse a -> b", "bias of a") that left
    the trainable range in ``epoch`` (:func:`out_of_range`)."""
    return DivergenceError(f"epoch {epoch} of {s.epochs}: {where} = {value!r}: training diverged (a parameter "
                           f"became non-finite or passed +-{MAX_SCALE:g}, beyond which no exact answer "
                           f"holds); lower the learning rate (now {s.lr!r})")


def out_of_range(values: np.ndarray | float) -> np.ndarray:
    """True where a parameter is non-finite or beyond +-MAX_SCALE (1e6), the range of
    exact inference: a rule whose steps are at most ``lr`` per case does not carry a
    weight there at a sane rate, so it marks a diverging run."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(values) <= MAX_SCALE)


def _check_range(plast: Plasticity, epoch: int, s: Settings) -> None:
    """DivergenceError naming the first synapse or bias of ``plast`` out of range."""
    for n, k, where in plast.synapses:
        value = n.bias if k is None else n.in_weight[k]
        if out_of_range(value):
            raise diverged(epoch, s, where, float(value))


def check_training(net: Network, rule: Rule, data, visible: list[str]) -> np.ndarray:
    """``data`` as an array, or an error before any training: data that is not rows of
    0/1 over ``visible``, or a net that ``rule``'s procedure cannot train."""
    rows = np.asarray(data)
    _binary_rows(rows, len(visible), "training data", visible)
    if rule.procedure == "delta" and net.has_symmetric:
        edge = next(e for e in net.edges if e.kind == "symmetric")
        raise ValidationError(
            f"rule {rule.name!r} learns directed synapses from posterior samples (eq. 7); "
            f"{net.name!r} has symmetric edges ({edge.source} <-> {edge.target}, ...), which it has no "
            "negative phase to learn: use boltzmann, cd or pcd")
    if rule.procedure == "wake-sleep" and not net.has_recognition:
        raise ValidationError(f"wake-sleep needs recognition edges (kind = \"recognition\") in {net.name!r}")
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


def _clamp_row(sim: Simulator, visible: list[str], row: np.ndarray) -> None:
    sim.clamp(dict(zip(visible, row.tolist())))


def _boltzmann(net, rule, data, visible, s, rng, on_batch, epochs):
    """Eq. 5: positive phase settles with the data clamped, negative phase runs free;
    one sample of each phase per case, after (annealing and) ``sweeps`` sweeps."""
    sim = Simulator(net, rng, schedule=s.schedule)
    plast = Plasticity(sim, rule, s.lr)

    def settle():
        for temperature in s.anneal:
            sim.beta = 1.0 / temperature
            sim.run(until=sim.env.now + 1)
        sim.beta = 1.0
        sim.run(until=sim.env.now + s.sweeps)

    for epoch, batch in _batches(data, s, rng, epochs):
        plast.lr = s.lr_at(epoch)
        for row in batch:
            _clamp_row(sim, visible, row)
            settle()
            plast.observe("positive")
            sim.unclamp(visible)
            settle()
            plast.observe("negative")
        plast.apply(1.0 / len(batch))
        _check_range(plast, epoch, s)
        on_batch(sim)
    return _result(net, [sim], [plast], len(data) * len(epochs))


def _contrastive(net, rule, data, visible, s, rng, on_batch, epochs):
    """Eq. 6, CD-k: hidden units update in parallel from the clamped data (positive),
    then k steps of alternating Gibbs (negative). PCD keeps one persistent chain."""
    sim = Simulator(net, rng, schedule="layer")
    plast = Plasticity(sim, rule, s.lr)
    hidden = [u for u in net.units if u not in visible]
    persistent = rule.procedure == "pcd"
    chain = None
    for epoch, batch in _batches(data, s, rng, epochs):
        plast.lr = s.lr_at(epoch)
        for row in batch:
            _clamp_row(sim, visible, row)
            sim.update_units(hidden)
            plast.observe("positive")
            if persistent and chain is not None:
                sim.clamp(chain)
            sim.unclamp()
            for _ in range(s.k):
                sim.update_units(visible)
                sim.update_units(hidden)
            plast.observe("negative")
            chain = {n.name: n.state for n in sim.neurons}
        plast.apply(1.0 / len(batch))
        _check_range(plast, epoch, s)
        on_batch(sim)
    return _result(net, [sim], [plast], len(data) * len(epochs))


def _delta(net, rule, data, visible, s, rng, on_batch, epochs):
    """Eq. 7 on posterior samples from Neal's Gibbs sampling (data clamped)."""
    sim = Simulator(net, rng, schedule=s.schedule)
    plast = Plasticity(sim, rule, s.lr)
    for epoch, batch in _batches(data, s, rng, epochs):
        plast.lr = s.lr_at(epoch)
        for row in batch:
            _clamp_row(sim, visible, row)
            sim.run(until=sim.env.now + s.sweeps)
            plast.observe("wake")
        plast.apply(1.0 / len(batch))
        _check_range(plast, epoch, s)
        on_batch(sim)
    return _result(net, [sim], [plast], len(data) * len(epochs))


def _ancestral_pass(sim: Simulator) -> None:
    for generation in sim.net.generations():
        free = [u for u in generation if not sim.neurons[sim.net.index(u)].clamped]
        if free:
            sim.update_units(free)


def _wake_sleep(net, rule, data, visible, s, rng, on_batch, epochs):
    """Wake: a bottom-up recognition pass from the data; the generative synapses learn
    (eq. 7). Sleep: a top-down fantasy; the recognition synapses learn (eq. 11).
    During the warm-up only the generative synapses into the visible units learn."""
    gen = Simulator(net, rng, schedule="ancestral")
    rec = Simulator(net, rng, schedule="ancestral", pathway="recognition")
    gen_plast, rec_plast = Plasticity(gen, rule, s.lr), Plasticity(rec, rule, s.lr)
    visible_set = set(visible)
    for epoch, batch in _batches(data, s, rng, epochs):
        gen_plast.lr = rec_plast.lr = s.lr_at(epoch)
        for row in batch:
            _clamp_row(rec, visible, row)
            _ancestral_pass(rec)
            gen.clamp({n.name: n.state for n in rec.neurons})
            gen_plast.observe("wake")
            gen.unclamp()
            rec.unclamp()
            _ancestral_pass(gen)
            rec.clamp({n.name: n.state for n in gen.neurons})
            rec_plast.observe("sleep")
            rec.unclamp()
        if s.warming_up(epoch):
            _hold_above(gen_plast, visible_set)
        for plast in (gen_plast, rec_plast):
            plast.apply(1.0 / len(batch))
            _check_range(plast, epoch, s)
        on_batch(gen)
    return _result(net, [gen, rec], [gen_plast, rec_plast], len(data) * len(epochs))


def _hold_above(plast: Plasticity, visible: set[str]) -> None:
    """Discard the accumulated change of every synapse (and bias) into a unit that is not
    visible: the warm-up's learning rate of 0 for the hidden layers' generative model."""
    for idx, (n, _, _) in enumerate(plast.synapses):
        if n.name not in visible:
            plast.dw[idx] = 0.0


def _backprop(net, rule, data, visible, s, rng, on_batch, epochs):
    """The contrast case: a deterministic forward pass in which every unit sends its
    real-valued activity (analog), and a backward pass in which every unit sends its
    error derivative to its parents (analog), which weigh it by their own forward
    weights (weight transport). Inputs: visible units without parents; targets: the
    other visible units; cross-entropy error."""
    inputs = [u for u in visible if not net.parents(u)]
    targets = [u for u in visible if net.parents(u)]
    trained = Network(net.unit_list(), net.edges, net.name, net.description)
    order = [u for g in net.generations() for u in g if u not in inputs]
    w = {(a, b): trained.weight(a, b) for a, b, _ in net.synapses()}
    bias = {u: trained.bias(u) for u in net.units}
    ledger, reads, dw = Ledger(), set(), {}
    col = {u: i for i, u in enumerate(visible)}
    for epoch, batch in _batches(data, s, rng, epochs):
        for row in batch:
            y = {u: float(row[col[u]]) for u in inputs}
            for u in order:
                parents = net.parents(u)
                ledger.analog += len(parents)
                y[u] = float(1.0 / (1.0 + np.exp(-(bias[u] + sum(w[p, u] * y[p] for p in parents)))))
            delta = {u: float(row[col[u]]) - y[u] for u in targets}
            for u in reversed(order):
                if u not in delta:
                    children = net.children(u)
                    ledger.analog += len(children)
                    delta[u] = y[u] * (1 - y[u]) * sum(w[u, c] * delta[c] for c in children)
            for u in order:
                for pre in net.parents(u) + [None]:
                    where = f"bias of {u}" if pre is None else f"synapse {pre} -> {u}"
                    view = SynapseView(where, reads, pre=1.0 if pre is None else y[pre], post=y[u],
                                       post_error=delta[u], phase="backward",
                                       weight=bias[u] if pre is None else w[pre, u], acc={},
                                       lr=s.lr_at(epoch))
                    dw[pre, u] = dw.get((pre, u), 0.0) + rule.local(view)
            ledger.updates += len(order)
        for (pre, u), change in dw.items():
            params, key = (bias, u) if pre is None else (w, (pre, u))
            params[key] += change / len(batch)
            if out_of_range(params[key]):
                raise diverged(epoch, s, f"bias of {u}" if pre is None else f"synapse {pre} -> {u}",
                               params[key])
        dw.clear()
    for (a, b), value in w.items():
        trained.set_weight(a, b, value)
    for u, value in bias.items():
        trained.set_bias(u, value)
    return TrainResult(trained, ledger, sorted(reads), 0, 0, len(data) * len(epochs))


def _result(net: Network, sims: list[Simulator], plasts: list[Plasticity], cases: int) -> TrainResult:
    trained = Network(net.unit_list(), net.edges, net.name, net.description)
    for sim in sims:
        sim.write_back(trained)
    ledger = Ledger(*(sum(getattr(sim.ledger, f) for sim in sims) for f in ("binary", "analog", "updates")))
    return TrainResult(trained, ledger, sorted(set().union(*(p.reads for p in plasts))),
                       sum(p.violations for p in plasts), sum(p.phase_signals for p in plasts),
                       cases, symmetry_drift(sims[0]))


CLOCKED = ("boltzmann", "delta")  # procedures that settle by running the event engine's clock
PROCEDURES: dict[str, Callable] = {
    "boltzmann": _boltzmann, "cd": _contrastive, "pcd": _contrastive,
    "delta": _delta, "wake-sleep": _wake_sleep, "backprop": _backprop,
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
          on_batch: Callable[[Simulator], None] = lambda sim: None,
          probs: np.ndarray | None = None) -> TrainResult:
    """Train ``net`` in the event engine by ``rule``'s procedure, with the remedies of
    ``settings`` (:func:`run_with_restarts`); returns a copy. ``probs``: the data are a
    distribution, distinct ``data`` rows with these probabilities (restarts are then
    chosen on its exact expected log-likelihood).

    Raises ParameterError or ValidationError before training (bad settings or data, a
    net the procedure cannot train) and DivergenceError, naming the epoch and the
    parameter, as soon as a weight or bias becomes non-finite."""
    s = settings or Settings()
    if rule.procedure not in PROCEDURES:
        raise ValidationError(f"rule {rule.name!r} asks for procedure {rule.procedure!r}; the event "
                              f"engine has {', '.join(PROCEDURES)}")
    rows = check_training(net, rule, data, visible)
    check_remedies(rule, s)
    procedure = PROCEDURES[rule.procedure]
    return run_with_restarts(lambda start, rows, r, epochs: procedure(start, rule, rows, visible, s, r, on_batch,
                                                                      epochs), net, rows, visible, s, rng, probs)
