"""Learners: how a backend's synapses learn from what a procedure shows them.

A training procedure (:mod:`neurosim.learning.procedures`) is written once, against
the sampler protocol that :class:`~neurosim.engine.Simulator` and
:class:`~neurosim.compiled.Chains` both implement: ``clamp(units=, values=)``,
``unclamp``, ``update_group``, ``sweep(n)``, ``rows`` (chains x units), ``ledger``,
``beta``. What differs between the backends is the learner:

* :class:`EventLearner`: one Simulator per pathway, holding one case at a time; every
  synapse applies the rule's **local form** (:class:`~.plasticity.Plasticity`).
* :class:`CompiledLearner`: fresh Chains per minibatch, one chain per case; the rule's
  **batched form** changes all synapses at once (the sum of the local changes over the
  rows), and the local form is probed on one synapse so that reads are recorded and a
  non-local rule fails here too.

Both give a procedure the same verbs: ``cases(batch)`` (the row blocks a sampler
holds), ``sampler(pathway, m)``, ``observe(phase, sampler, pathway)`` (the phase
signal: learn from the sampler's states), ``hold(units)`` (discard the generative
changes into all other units), ``apply(epoch, m)`` (the minibatch's change, divided by
its ``m`` cases) and ``analog(m)`` (backprop's deterministic pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..compiled.arrays import Backend
from ..compiled.plan import CompiledNet, compile
from ..compiled.sampler import Chains, on_backend
from ..engine.simulator import Simulator
from ..errors import DivergenceError, NeurosimError
from ..inference.exact import MAX_SCALE
from ..messages import Ledger
from ..network import Network
from ..numerics import sigmoid
from .plasticity import Plasticity
from .rules import Rule
from .view import SynapseView

if TYPE_CHECKING:
    from .procedures import Settings

__all__ = ["TrainResult", "EventLearner", "CompiledLearner", "Analog", "diverged", "out_of_range",
           "symmetry_drift", "LEARNERS"]


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


def symmetry_drift(sim: Simulator) -> float:
    """Largest ``|w_ij - w_ji|`` over symmetric pairs: the two synapses of an edge."""
    drift = 0.0
    for (pre, post), (n, k) in sim.slots.items():
        back = sim.slots.get((post, pre))
        if back is not None:
            drift = max(drift, abs(n.in_weight[k] - back[0].in_weight[back[1]]))
    return drift


def _where(units: list[str], i: int | None, j: int) -> str:
    """How errors and views name synapse ``i -> j`` (``i`` None: the bias of ``j``)."""
    return f"bias of {units[j]}" if i is None else f"synapse {units[i]} -> {units[j]}"


def _total(ledgers: list[Ledger]) -> Ledger:
    return Ledger(*(sum(getattr(x, f) for x in ledgers) for f in ("binary", "analog", "updates")))


class Analog:
    """Backprop's sampler: a deterministic pass of real-valued activities over rows
    (cases) of a feed-forward net with weights ``W`` and biases ``b``. Forward:
    ``y_j = sigmoid(b_j + sum_i y_i w_ij)`` generation by generation, every unit
    sending its activity to its children (analog). Backward: ``delta_j = t_j - y_j`` at
    the targets (cross-entropy error), ``delta_i = y_i (1 - y_i) sum_j w_ij delta_j``
    elsewhere, every non-target unit receiving its children's error derivatives
    (analog) weighed by its own forward weights (weight transport)."""

    def __init__(self, net: Network, params: Callable[[], tuple[np.ndarray, np.ndarray]], inputs: list[str],
                 targets: list[str]) -> None:
        index = {u: i for i, u in enumerate(net.units)}
        self.params = params  # the learner's current (W, b)
        self.inputs = [index[u] for u in inputs]
        self.targets = [index[u] for u in targets]
        gens = [np.array([index[u] for u in g if u not in inputs], dtype=np.intp) for g in net.generations()]
        self.gens = [g for g in gens if len(g)]
        directed = net.to_arrays().directed
        self.n_parents, self.n_children = directed.sum(axis=0), directed.sum(axis=1)
        self.ledger = Ledger()
        self.rows = self.error = None

    def forward_backward(self, cases: np.ndarray) -> None:
        """``rows`` (activities) and ``error`` (the deltas) for ``cases``: inputs then
        targets, in the order given."""
        (W, b), m, targets = self.params(), len(cases), self.targets
        Y = np.zeros((m, len(b)), dtype=W.dtype)
        Y[:, self.inputs] = cases[:, :len(self.inputs)]
        for g in self.gens:
            Y[:, g] = sigmoid(b[g] + Y @ W[:, g])
        delta = np.zeros_like(Y)
        delta[:, targets] = cases[:, len(self.inputs):] - Y[:, targets]
        hidden = [np.setdiff1d(g, targets) for g in self.gens]
        for rest in reversed(hidden):
            delta[:, rest] = Y[:, rest] * (1 - Y[:, rest]) * (delta @ W[rest].T)
        self.ledger.analog += m * int(sum(self.n_parents[g].sum() for g in self.gens)
                                      + sum(self.n_children[h].sum() for h in hidden))
        self.ledger.updates += m * int(sum(len(g) for g in self.gens))
        self.rows, self.error = Y, delta


class EventLearner:
    """The event engine's learner: one :class:`Simulator` per pathway (built at once,
    in order, each drawing its initial states), every case held alone; its
    :class:`Plasticity` applies the rule's local form synapse by synapse."""

    backend = "event"

    def __init__(self, net: Network, rule: Rule, s: Settings, rng: np.random.Generator,
                 pathways: tuple[str, ...], schedule: str | None, mode: str | None = None) -> None:
        self.net, self.rule, self.s = net, rule, s
        self.sims = {p: Simulator(net, rng, schedule=schedule or s.schedule, mode=mode, pathway=p)
                     for p in pathways}
        self.plasts = {p: Plasticity(sim, rule, s.lr) for p, sim in self.sims.items()}
        self.networks = {p: sim.net for p, sim in self.sims.items()}
        self._analog: Analog | None = None
        self._signals = 0  # backprop's phase signals
        self.lr = s.lr
        self._params = None  # backprop's weights and biases: (W, b), float64
        self._dw: dict[tuple[int | None, int], float] = {}
        self._reads: set[str] = set()

    def begin(self, epoch: int) -> None:
        self.lr = self.s.lr_at(epoch)
        for plast in self.plasts.values():
            plast.lr = self.lr

    def cases(self, batch: np.ndarray) -> Iterator[np.ndarray]:
        """One case at a time: the engine runs one chain."""
        for row in batch:
            yield row[None]

    def sampler(self, pathway: str = "generative", m: int = 1) -> Simulator:
        return self.sims[pathway]

    def observe(self, phase: str, x: Simulator | Analog, pathway: str = "generative",
                posts: set[str] | None = None) -> None:
        """The phase signal: every synapse of ``pathway`` (into ``posts``, if given) adds
        its rule's local change on ``x``'s states (those of another pathway's sampler
        are clamped onto its own, sent as messages)."""
        if isinstance(x, Analog):
            return self._observe_analog(phase, x)
        sim, plast = self.sims[pathway], self.plasts[pathway]
        if x is sim:
            return plast.observe(phase, units=posts)
        sim.clamp(units=sim.net.units, values=x.rows)
        plast.observe(phase, units=posts)
        sim.unclamp()

    def hold(self, units: list[str]) -> None:
        """Discard the accumulated generative change of every synapse (and bias) into a
        unit not in ``units``."""
        plast, keep = self.plasts["generative"], set(units)
        for idx, (n, _, _) in enumerate(plast.synapses):
            if n.name not in keep:
                plast.dw[idx] = 0.0

    def apply(self, epoch: int, m: int) -> None:
        """Change every weight by ``1/m`` of its accumulated change; DivergenceError
        naming the first synapse or bias out of range."""
        for plast in self.plasts.values():
            plast.apply(1.0 / m)
            for n, k, where in plast.synapses:
                value = n.bias if k is None else n.in_weight[k]
                if not abs(value) <= MAX_SCALE:  # out_of_range, for one float (NaN too)
                    raise diverged(epoch, self.s, where, float(value))
        if self._dw:
            self._apply_analog(epoch, m)

    # -- backprop: the local form on each synapse of the analog pass --------------------
    def analog(self, inputs: list[str], targets: list[str]) -> Analog:
        """The analog pass over this learner's weights (float64, changed in place)."""
        if self._analog is None:
            arrays = self.net.to_arrays()
            self._params = (arrays.weights, arrays.bias.copy())
            self._analog = Analog(self.net, lambda: self._params, inputs, targets)
        return self._analog

    def _observe_analog(self, phase: str, x: Analog) -> None:
        """Each synapse ``i -> j`` (and bias) of each case reads ``pre = y_i``, ``post =
        y_j`` and ``post_error = delta_j``, the error derivative sent back to it."""
        W, b = self._params
        units, index = self.net.units, self.net.index
        self._signals += 1
        for Y, delta in zip(x.rows, x.error):
            for g in x.gens:
                for j in g.tolist():
                    for i in [index(p) for p in self.net.parents(units[j])] + [None]:
                        view = SynapseView(_where(units, i, j), self._reads, pre=1.0 if i is None else float(Y[i]),
                                           post=float(Y[j]), post_error=float(delta[j]), phase=phase,
                                           weight=float(b[j] if i is None else W[i, j]), acc={}, lr=self.lr)
                        self._dw[i, j] = self._dw.get((i, j), 0.0) + self.rule.local(view)

    def _apply_analog(self, epoch: int, m: int) -> None:
        W, b = self._params
        units = self.net.units
        for (i, j), change in self._dw.items():
            if i is None:
                b[j] += change / m
            else:
                W[i, j] += change / m
            value = b[j] if i is None else W[i, j]
            if out_of_range(value):
                raise diverged(epoch, self.s, _where(units, i, j), float(value))
        self._dw.clear()

    @property
    def ledger(self) -> Ledger:
        """Every message the simulators (and backprop's analog pass) sent."""
        return _total([sim.ledger for sim in self.sims.values()] + ([self._analog.ledger] if self._analog else []))

    def result(self, cases: int) -> TrainResult:
        if self._params is not None:
            trained = self.net.with_arrays(*self._params)
        else:
            trained = self.net.copy()
            for sim in self.sims.values():
                sim.write_back(trained)
        plasts = list(self.plasts.values())
        reads = set(self._reads).union(*(p.reads for p in plasts))
        return TrainResult(trained, self.ledger, sorted(reads), sum(p.violations for p in plasts),
                           sum(p.phase_signals for p in plasts) + self._signals, cases,
                           symmetry_drift(self.sims["generative"]) if self.sims else 0.0)


class CompiledLearner:
    """The compiled backend's learner: fresh :class:`Chains` per minibatch, one chain per
    case; the rule's batched form changes every synapse of a pathway at once.

    ``arrays`` (:func:`~neurosim.compiled.arrays.backend`; None: numpy): the library the
    chains and the batched form run on. On torch the rule's ``batched`` receives tensors
    (the built-in rules use operators only; its product is float32), eq. 1's ``post_prob``
    comes from the weights in the product dtype, and the change returns to the numpy
    weights (float32 masters) of the compiled net, where it is applied; backprop's analog
    pass stays numpy."""

    backend = "compiled"

    def __init__(self, net: Network, rule: Rule, s: Settings, rng: np.random.Generator,
                 pathways: tuple[str, ...], schedule: str | None = None, mode: str | None = None,
                 arrays: Backend | None = None) -> None:
        self.net, self.rule, self.s, self.rng = net, rule, s, rng
        self.cns = {"generative": compile(net)}
        self.arrays = on_backend(self.cns["generative"], arrays)
        self._lowered: dict[int, tuple] = {}   # id(compiled net): (weight version, cn.W, W on the backend)
        self.bias_mask = {"generative": None}
        if "recognition" in pathways:
            rec = self.cns["recognition"] = compile(net, pathway="recognition")
            self.bias_mask["recognition"] = rec.directed.any(axis=0)  # where recognition synapses arrive
        self.networks = {p: cn.network for p, cn in self.cns.items()}
        self.dtype = self.cns["generative"].dtype
        self.changes: dict[str, tuple] = {p: (0, 0) for p in self.cns}
        self.ledgers: list[Ledger] = []
        self.reads: set[str] = set()
        self.phase_signals = 0
        self.lr = s.lr
        self._analog: Analog | None = None

    def begin(self, epoch: int) -> None:
        self.lr = self.s.lr_at(epoch)

    def cases(self, batch: np.ndarray) -> Iterator[np.ndarray]:
        """The whole minibatch at once: one chain per case."""
        yield batch.astype(self.dtype)

    def sampler(self, pathway: str = "generative", m: int = 1) -> Chains:
        c = Chains(self.cns[pathway], self.rng, m, backend=self.arrays)
        self.ledgers.append(c.ledger)
        return c

    def analog(self, inputs: list[str], targets: list[str]) -> Analog:
        """The analog pass over the compiled weights (float32 unless the net needs float64)."""
        if self._analog is None:
            cn = self.cns["generative"]
            self._analog = Analog(self.net, lambda: (cn.W, cn.b), inputs, targets)
            self.ledgers.append(self._analog.ledger)
        return self._analog

    def observe(self, phase: str, x: Chains | Analog, pathway: str = "generative",
                posts: set[str] | None = None) -> None:
        """The phase signal: add the batched change on ``x``'s rows to ``pathway``'s
        accumulated change (of the synapses into ``posts``, if given)."""
        cn = self.cns[pathway]
        error = x.error if isinstance(x, Analog) else None
        dw, db = self.change(cn, x.state if isinstance(x, Chains) else x.rows, phase, post_error=error)
        if posts is not None:
            keep = np.isin(cn.units, list(posts))
            dw, db = np.where(keep, dw, 0), np.where(keep, db, 0)
        before_w, before_b = self.changes[pathway]
        self.changes[pathway] = (before_w + dw, before_b + db)

    def change(self, cn: CompiledNet, S: np.ndarray, phase: str, post_error: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(dW, db)`` (numpy): the batched rule on states ``S`` (rows = cases; numpy, or
        the backend's arrays), mean over rows; ``post_prob`` is eq. 1 from ``cn``'s weights."""
        be, xp = self.arrays, self.arrays.ops
        S, m = be.asarray(S), len(S)
        pre = xp.empty((m, cn.n + 1), S)
        pre[:, :-1], pre[:, -1] = S, 1
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by name in apply
            post_prob = xp.sigmoid_(xp.dot(S, self._weights(cn)) + be.asarray(cn.b))
            try:
                d = be.to_numpy(self.rule.batched(pre, S, phase, self.lr, post_prob=post_prob,
                                                  post_error=be.asarray(post_error)))
            except NotImplementedError:
                raise NeurosimError(f"rule {self.rule.name!r} has no batched form; train it with "
                                    "--backend event") from None
        self._probe(cn, S, phase, post_prob, post_error)
        self.phase_signals += 1
        return np.where(cn.incoming, d[:-1], 0) / m, d[-1] / m

    def _weights(self, cn: CompiledNet):
        """``cn.W`` on the backend in the product dtype, copied once per weight version."""
        version, source, W = self._lowered.get(id(cn), (None, None, None))
        if version != cn.version or source is not cn.W:
            W = self.arrays.ops.lowered(self.arrays.asarray(cn.W))
            self._lowered[id(cn)] = cn.version, cn.W, W
        return W

    def _probe(self, cn: CompiledNet, S: np.ndarray, phase: str, post_prob: np.ndarray,
               post_error: np.ndarray | None) -> None:
        """Run the local form on one synapse's view: records reads, fails if non-local."""
        i, j = (int(a[0]) for a in np.nonzero(cn.incoming)) if cn.incoming.any() else (None, 0)
        values = dict(pre=1.0 if i is None else float(S[0, i]), post=float(S[0, j]), phase=phase,
                      weight=float(cn.b[j] if i is None else cn.W[i, j]), acc={}, lr=self.lr,
                      post_prob=float(post_prob[0, j]))
        if post_error is not None:
            values["post_error"] = float(post_error[0, j])
        self.rule.local(SynapseView(_where(cn.units, i, j), self.reads, **values))

    def hold(self, units: list[str]) -> None:
        """Discard the accumulated generative change into every unit not in ``units``."""
        keep = np.isin(self.cns["generative"].units, units)
        dw, db = self.changes["generative"]
        self.changes["generative"] = (np.where(keep, dw, 0), np.where(keep, db, 0))

    def apply(self, epoch: int, m: int) -> None:
        """Add each pathway's accumulated change (already a mean over its rows);
        DivergenceError naming the first parameter out of range."""
        for pathway, cn in self.cns.items():
            dw, db = self.changes[pathway]
            self.changes[pathway] = (0, 0)
            if self.bias_mask[pathway] is not None:
                db = np.where(self.bias_mask[pathway], db, 0)
            with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
                cn.set_weights(cn.W + dw, cn.b + db)
            prefix = "" if pathway == "generative" else pathway + " "
            bad_w, bad_b = out_of_range(cn.W), out_of_range(cn.b)
            if bad_w.any() or bad_b.any():
                i, j = np.argwhere(bad_w)[0] if bad_w.any() else (None, int(np.argmax(bad_b)))
                value = cn.W[i, j] if i is not None else cn.b[j]
                raise diverged(epoch, self.s, prefix + _where(cn.units, i, j), float(value))

    def result(self, cases: int) -> TrainResult:
        gen = self.cns["generative"]
        trained = gen.to_network()
        if "recognition" in self.cns:
            rec, has_rec = self.cns["recognition"], self.bias_mask["recognition"]
            cols = {p.name: [rec.index[u] for u in p.units] for p in self.net.populations}
            for q in self.net.projections:
                if q.kind == "recognition":
                    trained.set_block(q.name, rec.W[np.ix_(cols[q.pre], cols[q.post])])
            for p in self.net.populations:  # recognition biases where they were or synapses arrive
                old = np.full(p.size, np.nan) if p.recognition_bias is None else p.recognition_bias
                keep = ~np.isnan(old) | has_rec[cols[p.name]]
                if keep.any():
                    trained.set_biases(p.name, np.where(keep, rec.b[cols[p.name]], old), recognition=True)
        drift = float(np.max(np.abs(gen.W - gen.W.T)[gen.symmetric], initial=0.0))
        return TrainResult(trained, _total(self.ledgers), sorted(self.reads), 0, self.phase_signals, cases, drift)


LEARNERS = {"event": EventLearner, "compiled": CompiledLearner}
