"""The event engine: a Network run unit by unit on simpy.

Each unit is a :class:`~neurosim.engine.neuron.Neuron` with local state. A schedule
(see :mod:`neurosim.engine.schedules`) decides when units update; an update applies
eq. 1 (Gibbs mode adds Neal's child terms for directed edges) and a changed state is
sent over the unit's out-edges, after each edge's delay. The ledger counts every
message; monitors are opt-in.

Time is measured in sweeps: under every schedule each free unit updates once per
unit of time (on average, for Poisson clocks).

Example
-------
>>> import numpy as np
>>> from neurosim import load_model
>>> from neurosim.engine import Simulator
>>> net = load_model("models/earthquake_truck.toml")
>>> sim = Simulator(net, np.random.default_rng(0), evidence={"house_jumps": 1})
>>> samples = sim.sample(200, burn_in=10)
>>> samples.shape
(200, 3)
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import simpy

from ..errors import EvidenceError, ValidationError
from ..messages import Ledger
from ..network import Network
from ..numerics import one_of_n
from .links import Link, PopState
from .neuron import Neuron
from .schedules import SCHEDULES

__all__ = ["Simulator", "Group", "MODES"]

MODES = ("gibbs", "ancestral", "mean-field")
_BUFFER = 8192


class Simulator:
    """Run ``net`` in simpy, one process per unit (Poisson clocks) or a clock process.

    Parameters
    ----------
    net : Network
    rng : numpy.random.Generator
        Every random draw comes from it: same seed, same run.
    schedule : "async" | "sweep" | "layer" | "ancestral"
        ``async``: each unit its own Poisson clock (rate 1); ``sweep``: random
        sequential sweeps; ``layer``: all units of a layer at one tick
        (:meth:`Network.layers`); ``ancestral``: one top-down pass per tick.
    mode : "gibbs" | "ancestral"
        Gibbs: each update samples the unit's full conditional (eq. 1, plus Neal's
        child terms in belief nets, which need analog messages from children).
        Ancestral: each unit samples from what it receives, with no child terms:
        from its parents (belief nets, no evidence) and, stepped by
        :meth:`update_group`, from its symmetric neighbours (a DBN's top RBM; the
        ancestral schedule needs a purely directed net). Mean-field: each update is the
        deterministic :meth:`Neuron.mean_field` (damped by ``damping``, the input times
        ``gain``), and the unit sends its probability ``q`` as analog messages at every
        update; symmetric nets, layer schedule (stepped by :meth:`update_group`).
        Default: ancestral for the ancestral schedule, else Gibbs.
    evidence : {unit: 0 | 1}
        Clamped units; they never update.
    init : array of 0/1 (mean-field: of values in [0, 1]), optional
        Initial states (default: uniformly random free units; mean-field: all 0).
    on_update, on_message : callables, optional
        Monitors: ``on_update(t, unit_index, new_state)`` for every update,
        ``on_message(t, sender_index, kind)`` for every send (see ``monitors``).
    """

    def __init__(self, net: Network, rng: np.random.Generator, schedule: str = "sweep",
                 mode: str | None = None, evidence: Mapping[str, int] | None = None,
                 init: np.ndarray | None = None,
                 on_update: Callable[[float, int, int], None] | None = None,
                 on_message: Callable[[float, int, str], None] | None = None,
                 pathway: str = "generative") -> None:
        net = net.pathway(pathway)
        net.refuse_linear("the event engine (units that send binary messages)")
        if schedule not in SCHEDULES:
            raise ValidationError(f"unknown schedule {schedule!r} (one of {', '.join(SCHEDULES)})")
        mode = mode or ("ancestral" if schedule == "ancestral" else "gibbs")
        if mode not in MODES:
            raise ValidationError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
        clamp = net.evidence_indices(evidence)
        if mode == "ancestral":
            _check_ancestral(net, clamp, schedule)
        if mode == "mean-field":
            _check_mean_field(net, schedule)
        self.net, self.rng, self.schedule, self.mode = net, rng, schedule, mode
        self.env = simpy.Environment()
        self.ledger = Ledger()
        self.beta = 1.0  # inverse temperature; annealing lowers the temperature towards 1
        self.damping, self.gain = 0.0, 1.0  # mean-field updates (Neuron.mean_field)
        self._dtype = np.float64 if mode == "mean-field" else np.int8
        self.on_update, self.on_message = on_update, on_message
        self._uniforms: list[float] = []
        self.pathway = pathway
        self._slots: dict[tuple[str, str], tuple[Neuron, int]] | None = None
        self._build(neal=mode == "gibbs")
        self._initialise(clamp, init)
        self._started = False

    # -- set-up ------------------------------------------------------------------------
    def _build(self, neal: bool) -> None:
        """One PopState per population, one Link per projection direction (the
        generative synapses: recognition ones form their own pathway), one Neuron per unit."""
        net = self.net
        self.pops: dict[str, PopState] = {}
        offset = 0
        for p in net.populations:  # a recognition pathway's biases are its recognition biases
            self.pops[p.name] = PopState(p.name, p.units, p.bias, offset)
            offset += p.size
        self.links: list[Link] = []
        for q in net.projections:
            if q.kind == "recognition":
                continue
            pre, post = self.pops[q.pre], self.pops[q.post]
            self.links.append(Link(self, q.name, pre, post, q.weights.copy(), q.mask, q.delay,
                                   neal and q.kind == "directed"))
            if q.kind == "symmetric":
                back = q.weights if q.reverse is None else q.reverse
                self.links.append(Link(self, q.name + " (reverse)", post, pre, back.T.copy(),
                                       None if q.mask is None else q.mask.T, q.delay, False))
        self.neurons = [Neuron(self, name, pop.offset + j, float(pop.bias[j]), pop, j)
                        for pop in self.pops.values() for j, name in enumerate(pop.units)]
        self._group_of: dict[int, list[Neuron]] = {}  # a softmax population's units: its members
        for p in net.populations:
            if p.activation == "softmax":
                members = self._members(self.pops[p.name])
                self._group_of.update((n.index, members) for n in members)
        self._wire()

    def _wire(self) -> None:
        """Each unit's outgoing links, its parents' links and its message counts."""
        for link in self.links:
            link.relay_counts()
            pre, post = self._members(link.pre), self._members(link.post)
            for n, count in zip(pre, link.count.tolist()):
                if count:
                    n.out.append(link)
                    n.n_binary += count
                    if link.neal:
                        n.children.append(link)
            if link.neal:
                parents = link.W.shape[0] if link.mask is None else link.mask.sum(axis=0)
                for n, k in zip(post, np.broadcast_to(parents, (len(post),)).tolist()):
                    if k:
                        n.ups.append(link)
                        n.n_binary += k
                        n.n_analog += k

    def _members(self, pop: PopState) -> list[Neuron]:
        return self.neurons[pop.offset:pop.offset + len(pop.units)]

    @property
    def slots(self) -> dict[tuple[str, str], tuple[Neuron, int]]:
        """The per-synapse view ``{(pre, post): (neuron, k)}``, ``neuron.in_weight[k]``
        the synapse, in the order of ``net.synapses()`` (built on first use: learning
        and audits on small nets)."""
        if self._slots is None:
            by_name = {n.name: n for n in self.neurons}
            k_of = {}
            for n in self.neurons:
                for k, (link, i) in enumerate(n.incoming()):
                    k_of[link.pre.units[i], n.name] = k
            self._slots = {(pre, post): (by_name[post], k_of[pre, post]) for pre, post, _ in self.net.synapses()}
        return self._slots

    def _initialise(self, clamp: dict[int, int], init: np.ndarray | None) -> None:
        analog = self.mode == "mean-field"
        if init is None:
            init = np.zeros(self.net.n_units) if analog else (self.rng.random(self.net.n_units) < 0.5).astype(int)
        init = np.asarray(init)
        valid = ((init >= 0) & (init <= 1)).all() if analog else np.isin(init, (0, 1)).all()
        if init.shape != (self.net.n_units,) or not valid:
            raise ValidationError(f"init must be {self.net.n_units} states of "
                                  f"{'values in [0, 1]' if analog else '0 or 1'}, got {init!r}")
        for n in self.neurons:
            if n.n_analog:
                n.send_log_odds(instant=True)
        for n in self.neurons:
            n.clamped = n.index in clamp
            if n.clamped or not analog:
                state = clamp.get(n.index, int(init[n.index]))
                if state:
                    n.set_state(1, instant=True)
            elif init[n.index]:
                n.set_state(float(init[n.index]), instant=True, analog=True)

    # -- random numbers (hot path: drawn in blocks from the one Generator) -------------
    def uniform(self) -> float:
        if not self._uniforms:
            self._uniforms = self.rng.random(_BUFFER).tolist()
            self._uniforms.reverse()
        return self._uniforms.pop()

    def after(self, delay: float, fn: Callable, *args) -> None:
        """Call ``fn(*args)`` ``delay`` time units from now (a message in flight); at
        once for a delay of 0."""
        if delay:
            self.env.timeout(delay).callbacks.append(lambda _: fn(*args))
        else:
            fn(*args)

    # -- clamping and plasticity (used by training procedures) --------------------------
    def clamp(self, evidence: Mapping[str, int] | None = None, *, units: Sequence[str] = (),
              values: np.ndarray | None = None) -> None:
        """Clamp units to observed states; a change of state is sent as usual. ``units``
        with ``values`` of shape (1, len(units)): the sampler protocol of
        :class:`~neurosim.compiled.Chains` (this engine runs one chain)."""
        evidence = dict(evidence or {})
        if len(units):
            values = np.asarray(values)
            if values.shape != (1, len(units)) or not np.isin(values, (0, 1)).all():
                raise EvidenceError(f"clamped values must be 1 x {len(units)} states of 0 or 1 (the event "
                                    f"engine runs one chain), got shape {values.shape}")
            evidence.update(zip(units, values[0].astype(int).tolist()))
        for i, value in self.net.evidence_indices(evidence).items():
            n = self.neurons[i]
            n.clamped = True
            if n.state != value:
                n.set_state(value)

    def unclamp(self, names: list[str] | None = None) -> None:
        for n in self.neurons if names is None else [self.neurons[self.net.index(u)] for u in names]:
            n.clamped = False

    def update_units(self, names: list[str]) -> None:
        """Update these units together, now: all propose from the same inputs, then all
        commit (a layer-parallel step driven by a training procedure)."""
        group = [self.neurons[self.net.index(u)] for u in names]
        self.commit(group, self.propose(group))

    def commit(self, group: list[Neuron], states: list) -> None:
        """Send what ``group`` proposed: each changed bit as binary messages; in mean-field
        mode every ``q``, changed or not, as analog ones (an analog unit's output is its
        value, sent at each update)."""
        analog = self.mode == "mean-field"
        for n, new in zip(group, states):
            if analog or new != n.state:
                n.set_state(new, analog=analog)

    def propose(self, group: list[Neuron]) -> list[int] | list[float]:
        """New states for ``group`` from the inputs received so far, not yet sent: eq. 1
        for each unit, one draw (:meth:`compete`'s) for the members of a softmax population;
        in mean-field mode each unit's :meth:`Neuron.mean_field`."""
        if self.mode == "mean-field":
            return [n.mean_field() for n in group]
        if not self._group_of:
            return [n.propose() for n in group]
        drawn: dict[int, dict[Neuron, int]] = {}
        out = []
        for n in group:
            members = self._group_of.get(n.index)
            if members is None:
                out.append(n.propose())
                continue
            if id(members) not in drawn:
                mine = [m for m in group if self._group_of.get(m.index) is members]
                drawn[id(members)] = dict(zip(mine, self._one_of_n(mine, members)))
            out.append(drawn[id(members)][n])
        return out

    def steppers(self, neurons: list[Neuron]) -> list[Neuron | Group]:
        """``neurons`` as a schedule visits them: the members of each softmax population
        among them as one :class:`Group`, at its first member's place."""
        if not self._group_of:
            return neurons
        out, seen = [], set()
        for n in neurons:
            members = self._group_of.get(n.index)
            if members is None:
                out.append(n)
            elif id(members) not in seen:
                seen.add(id(members))
                out.append(Group(self, [m for m in neurons if self._group_of.get(m.index) is members]))
        return out

    def update_group(self, names: Sequence[str], softmax: bool = False) -> np.ndarray:
        """The sampler protocol's step (:meth:`Chains.update_group`): half a sweep of
        simulated time passes (messages in flight whose delay has run out arrive), then
        ``names`` update from the inputs they have received. Each unit by eq. 1 (a softmax
        population's as one :class:`Group`), in the order of the schedule: ``sweep`` one at
        a time in a fresh random order, ``layer`` all at one tick (propose, then commit),
        ``async`` each as often as its Poisson clock (rate 1 per sweep) ticks in the slot, in
        time order. ``softmax``: ``names`` compete as one group whatever their populations
        say (:meth:`compete`). Returns the group's states (1 x units)."""
        if softmax and self.mode == "mean-field":
            raise ValidationError("mean-field mode runs logistic units: no softmax group")
        self.env.run(until=self.env.now + 0.5)
        group = [self.neurons[self.net.index(u)] for u in names]
        if softmax:
            self.compete(group)
        elif self.schedule == "layer":
            self.update_units(names)
        else:
            steps = self.steppers(group)
            ticks = (np.arange(len(steps)) if self.schedule != "async"
                     else np.repeat(np.arange(len(steps)), self.rng.poisson(1.0, len(steps))))
            for k in self.rng.permutation(ticks):
                steps[k].update()
        return np.array([[n.state for n in group]], dtype=self._dtype)

    def compete(self, group: list[Neuron]) -> None:
        """A one-of-n group's local competition: at one tick, from the inputs its members
        received as binary messages, one winner ``k`` is drawn with
        ``p(y = k | top) = exp(b_k + sum_j U_kj s_j) / sum_y exp(b_y + sum_j U_yj s_j)``
        (the group's exact conditional; Hinton et al. 2006, section 2) with one uniform;
        the winner turns on, the others off, and each unit that changed sends its state
        as usual. No other message type: the members' inputs meet inside the group. Part
        of a softmax population stays off while another member is on."""
        members = self._group_of.get(group[0].index, group) if group else group
        self.commit(group, self._one_of_n(group, members))

    def _one_of_n(self, group: list[Neuron], members: list[Neuron]) -> list[int]:
        """:meth:`compete`'s draw for ``group``, part of the one-of-n group ``members``:
        all off if a member outside ``group`` is on."""
        self.ledger.updates += len(group)
        if any(m.state for m in members if m not in group):
            new = [0] * len(group)
        else:
            x = np.array([[n.bias + float(n.pop.input[n.j]) for n in group]]) * self.beta
            k = int(one_of_n(x, self.uniform())[0])
            new = [int(i == k) for i in range(len(group))]
        if self.on_update is not None:
            for n, v in zip(group, new):
                self.on_update(self.env.now, n.index, v)
        return new

    def weight(self, pre: str, post: str) -> float:
        neuron, k = self._slot(pre, post)
        return neuron.in_weight[k]

    def set_weight(self, pre: str, post: str, value: float) -> None:
        neuron, k = self._slot(pre, post)
        neuron.set_weight(k, value)

    def _slot(self, pre: str, post: str) -> tuple[Neuron, int]:
        """The post neuron and the synapse's place among its incoming ones."""
        if self._slots is not None and (pre, post) in self._slots:
            return self._slots[pre, post]
        try:
            n, a = self.neurons[self.net.index(post)], self.net.index(pre)
        except ValidationError:
            n = a = None
        k = None if n is None else next((k for k, (link, i) in enumerate(n.incoming())
                                         if link.pre.offset + i == a), None)
        if k is not None:
            return n, k
        raise ValidationError(f"no synapse {pre} -> {post} in the {self.pathway} pathway")

    def write_back(self, net: Network) -> None:
        """Copy this pathway's current weights and biases into ``net``, block by block
        (:meth:`Network.set_block`: a link's ``W`` is its projection's block, the
        reverse link's ``W`` the reverse block transposed)."""
        recognition = self.pathway == "recognition"
        links = {link.name: link for link in self.links}
        for q in self.net.projections:
            if q.name in links:  # the other pathway's projections have no links here
                back = links.get(q.name + " (reverse)")
                net.set_block(q.name, links[q.name].W, None if back is None else back.W.T)
        for pop in self.pops.values():
            if not recognition:
                net.set_biases(pop.name, pop.bias)
                continue
            arrives = np.zeros(len(pop.units), dtype=bool)  # recognition biases exist where synapses arrive
            for link in pop.links_in:
                arrives |= True if link.mask is None else link.mask.any(axis=0)
            if arrives.any():
                old = net.population(pop.name).recognition_bias
                net.set_biases(pop.name, np.where(arrives, pop.bias, np.nan if old is None else old),
                               recognition=True)

    # -- running ----------------------------------------------------------------------
    @property
    def free(self) -> list[Neuron]:
        return [n for n in self.neurons if not n.clamped]

    @property
    def state(self) -> np.ndarray:
        return np.array([n.state for n in self.neurons], dtype=self._dtype)

    def _start(self) -> None:
        if not self._started:
            SCHEDULES[self.schedule](self)
            self._started = True

    def run(self, until: float) -> None:
        """Advance simulated time to ``until`` (in sweeps)."""
        self._start()
        self.env.run(until=until)

    def sweep(self, n: float = 1) -> None:
        """The sampler protocol's ``sweep`` (:meth:`Chains.sweep`): ``n`` sweeps of
        simulated time pass under the schedule."""
        self.run(until=self.env.now + n)

    @property
    def rows(self) -> np.ndarray:
        """The sampler protocol's state rows: (1 chain x units)."""
        return self.state[None]

    def sample(self, n: int, burn_in: float = 0, thin: float = 1) -> np.ndarray:
        """Run on and record the state of every unit ``n`` times, ``thin`` sweeps apart,
        after ``burn_in`` sweeps. Returns an int8 array of shape (n, n_units) (mean-field:
        float64 probabilities)."""
        if n < 0 or burn_in < 0 or thin <= 0:
            raise ValidationError(f"need n >= 0, burn_in >= 0 and thin > 0 (got {n}, {burn_in}, {thin})")
        self._start()
        out = np.empty((n, self.net.n_units), dtype=self._dtype)
        neurons, env, t0 = self.neurons, self.env, self.env.now + burn_in

        def recorder():
            for k in range(n):
                yield env.timeout(t0 + (k + 1) * thin - env.now)
                out[k] = [u.state for u in neurons]

        self.env.run(until=self.env.process(recorder()))
        return out


class Group:
    """The units of a softmax population as one variable of a schedule: an update is
    one :meth:`Simulator.compete` of its free units; clamped when all are."""

    __slots__ = ("sim", "members")

    def __init__(self, sim: Simulator, members: list[Neuron]) -> None:
        self.sim, self.members = sim, members

    @property
    def clamped(self) -> bool:
        return all(m.clamped for m in self.members)

    def update(self) -> None:
        free = [m for m in self.members if not m.clamped]
        if free:
            self.sim.compete(free)


def _check_mean_field(net: Network, schedule: str) -> None:
    """Mean-field mode: the fixed-point equations of a Boltzmann machine's symmetric
    connections, layer by layer."""
    if schedule != "layer":
        raise ValidationError(f"mean-field mode updates whole layers (schedule 'layer'), got schedule {schedule!r}")
    bad = next((q for q in net.projections if q.kind != "symmetric"), None)
    if bad is not None:
        raise ValidationError(f"mean-field mode needs symmetric projections; {bad.name!r} is {bad.kind}")
    soft = next((p for p in net.populations if p.activation == "softmax"), None)
    if soft is not None:
        raise ValidationError(f"mean-field mode runs logistic units; population {soft.name!r} is softmax")


def _check_ancestral(net: Network, clamp: dict[int, int], schedule: str) -> None:
    if net.has_symmetric and schedule == "ancestral":
        e = next(e for e in net.edges if e.kind == "symmetric")
        raise ValidationError(f"ancestral sampling needs a purely directed net; {e.source} <-> "
                              f"{e.target} is symmetric: sample it by Gibbs (schedule async, sweep or layer)")
    below = [net.units[i] for i in clamp if net.parents(net.units[i])]
    if below:
        raise ValidationError(f"ancestral sampling ignores evidence on units with parents "
                              f"({', '.join(below)}); use Gibbs to sample a posterior")
