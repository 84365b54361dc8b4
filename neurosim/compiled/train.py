"""Training on the compiled backend: the event engine's procedures, run as matrices.

A minibatch of ``m`` cases is ``m`` chains. Each procedure samples the same phases as
its event-engine twin (``neurosim.learning.procedures``) and changes the weights by the
rule's **batched** form: the sum over the minibatch of the local changes, as outer
products (``Rule.batched``), divided by ``m`` as the event engine does. A bias is a
synapse from an always-on unit: a column of ones in ``pre``. The rule's local form is
also called once per phase on one synapse's view, so the reads are recorded and a rule
that reaches for anything non-local fails here as it does in the event engine. The
remedies (restarts, ``final_lr``, the wake-sleep warm-up) are the event engine's:
``run_with_restarts`` drives both backends.
"""

from __future__ import annotations

import numpy as np

from ..engine.simulator import _recognition_net
from ..errors import NeurosimError, ValidationError
from ..learning.procedures import (Settings, TrainResult, check_remedies, check_training, diverged,
                                   out_of_range, run_with_restarts)
from ..learning.rules import Rule
from ..learning.view import SynapseView
from ..messages import Ledger
from ..network import Network
from .plan import CompiledNet, compile
from .sampler import Chains, sigmoid

__all__ = ["train", "PROCEDURES"]


class _Run:
    """What a procedure shares: the compiled net(s), the rule, the ledgers, the reads."""

    def __init__(self, net: Network, rule: Rule, visible: list[str], s: Settings,
                 rng: np.random.Generator, epochs: range | None = None) -> None:
        self.net, self.rule, self.visible, self.s, self.rng = net, rule, visible, s, rng
        self.epochs = range(1, s.epochs + 1) if epochs is None else epochs
        self.lr = s.lr
        self.cn = compile(net)
        self.hidden = [u for u in net.units if u not in visible]
        self.ledgers: list[Ledger] = []
        self.reads: set[str] = set()
        self.phase_signals = 0

    def chains(self, cn: CompiledNet, m: int) -> Chains:
        c = Chains(cn, self.rng, m)
        self.ledgers.append(c.ledger)
        return c

    def change(self, cn: CompiledNet, S: np.ndarray, phase: str, post_prob=None, post_error=None,
               mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(dW, db)``: the batched rule on states ``S`` (rows = cases), mean over rows."""
        m = len(S)
        pre = np.hstack([S, np.ones((m, 1), dtype=S.dtype)])
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by name in apply
                d = self.rule.batched(pre, S, phase, self.lr, post_prob=post_prob, post_error=post_error)
        except NotImplementedError:
            raise NeurosimError(f"rule {self.rule.name!r} has no batched form; train it with "
                                "--backend event") from None
        self._probe(cn, S, phase, post_prob, post_error, mask)
        self.phase_signals += 1
        mask = cn.incoming if mask is None else mask
        return np.where(mask, d[:-1], 0) / m, d[-1] / m

    def _probe(self, cn, S, phase, post_prob, post_error, mask) -> None:
        """Run the local form on one synapse's view: records reads, fails if non-local."""
        mask = cn.incoming if mask is None else mask
        i, j = (int(a[0]) for a in np.nonzero(mask)) if mask.any() else (None, 0)
        values = dict(pre=1.0 if i is None else float(S[0, i]), post=float(S[0, j]), phase=phase,
                      weight=float(cn.b[j] if i is None else cn.W[i, j]), acc={}, lr=self.lr,
                      post_prob=float(sigmoid(cn.b[j:j + 1] + S[:1] @ cn.W[:, j:j + 1])[0, 0])
                      if post_prob is None else float(post_prob[0, j]))
        if post_error is not None:
            values["post_error"] = float(post_error[0, j])
        where = f"bias of {cn.units[j]}" if i is None else f"synapse {cn.units[i]} -> {cn.units[j]}"
        self.rule.local(SynapseView(where, self.reads, **values))

    def batches(self, data: np.ndarray):
        """``(epoch, batch)``: a pass over ``data`` shuffled for each of ``epochs`` (1-based),
        at that epoch's learning rate."""
        for epoch in self.epochs:
            self.lr = self.s.lr_at(epoch)
            order = self.rng.permutation(len(data))
            for start in range(0, len(order), self.s.batch):
                yield epoch, data[order[start:start + self.s.batch]].astype(self.cn.dtype)

    def apply(self, cn: CompiledNet, epoch: int, *changes: tuple[np.ndarray, np.ndarray],
              pathway: str = "") -> None:
        """Add the changes to ``cn``'s weights and biases; DivergenceError naming the
        first parameter out of range (``out_of_range``; one pass over W: less than a sweep)."""
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
            cn.set_weights(cn.W + sum(dw for dw, _ in changes), cn.b + sum(db for _, db in changes))
        bad_w, bad_b = out_of_range(cn.W), out_of_range(cn.b)
        if bad_w.any():
            i, j = np.argwhere(bad_w)[0]
            raise diverged(epoch, self.s, f"{pathway}synapse {cn.units[i]} -> {cn.units[j]}", float(cn.W[i, j]))
        if bad_b.any():
            j = int(np.argmax(bad_b))
            raise diverged(epoch, self.s, f"{pathway}bias of {cn.units[j]}", float(cn.b[j]))

    def settle(self, c: Chains) -> None:
        for temperature in self.s.anneal:
            c.beta = 1.0 / temperature
            c.sweep()
        c.beta = 1.0
        c.run(self.s.sweeps)

    def result(self, trained: Network, cases: int) -> TrainResult:
        ledger = Ledger(*(sum(getattr(x, f) for x in self.ledgers) for f in ("binary", "analog", "updates")))
        W = self.cn.W
        drift = float(np.max(np.abs(W - W.T)[self.cn.symmetric], initial=0.0))
        return TrainResult(trained, ledger, sorted(self.reads), 0, self.phase_signals, cases, drift)


def _boltzmann(run: _Run, data: np.ndarray) -> Network:
    """Eq. 5: a positive phase settled with the data clamped, a free negative phase
    continued from it; one sample of each per case."""
    cn = run.cn
    for epoch, batch in run.batches(data):
        c = run.chains(cn, len(batch))
        c.clamp(units=run.visible, values=batch)
        run.settle(c)
        pos = run.change(cn, c.state.copy(), "positive")
        c.unclamp()
        run.settle(c)
        run.apply(cn, epoch, pos, run.change(cn, c.state, "negative"))
    return cn.to_network()


def _contrastive(run: _Run, data: np.ndarray) -> Network:
    """Eq. 6, CD-k: hidden units updated in parallel from the data (positive), then k
    steps of alternating Gibbs (negative). PCD: the negative chains persist."""
    cn, persistent = run.cn, run.rule.procedure == "pcd"
    up, down = cn.step(run.hidden), cn.step(run.visible)
    chains = None
    for epoch, batch in run.batches(data):
        c = run.chains(cn, len(batch))
        c.clamp(units=run.visible, values=batch)
        c.update(up)
        pos = run.change(cn, c.state.copy(), "positive")
        if persistent and chains is not None:
            c.state[:] = chains[:len(batch)]
        c.unclamp()
        for _ in range(run.s.k):
            c.update(down)
            c.update(up)
        run.apply(cn, epoch, pos, run.change(cn, c.state, "negative"))
        if persistent:
            chains = c.state.copy() if chains is None else np.vstack([c.state, chains[len(batch):]])
    return cn.to_network()


def _generative_prob(cn: CompiledNet, S: np.ndarray) -> np.ndarray:
    """Eq. 1 from the directed parents: ``p_i = sigmoid(b_i + sum_j s_j w_ji)``."""
    return sigmoid(cn.b + S @ np.where(cn.directed, cn.W, 0))


def _delta(run: _Run, data: np.ndarray) -> Network:
    """Eq. 7 on posterior samples from Neal's Gibbs sampling (data clamped)."""
    cn = run.cn
    for epoch, batch in run.batches(data):
        c = run.chains(cn, len(batch))
        c.clamp(units=run.visible, values=batch)
        c.run(run.s.sweeps)
        S = c.state
        run.apply(cn, epoch, run.change(cn, S, "wake", post_prob=_generative_prob(cn, S), mask=cn.directed))
    return cn.to_network()


def _wake_sleep(run: _Run, data: np.ndarray) -> Network:
    """Wake: a bottom-up recognition pass; the generative synapses learn (eq. 7).
    Sleep: a top-down fantasy; the recognition synapses learn (eq. 11)."""
    net, gen = run.net, run.cn
    rec = compile(_recognition_net(net))
    rec.set_weights(b=[u.recognition_bias or 0.0 for u in net.unit_list()])
    has_rec = rec.directed.any(axis=0)  # recognition biases only where synapses arrive
    is_visible = np.isin(gen.units, run.visible)
    for epoch, batch in run.batches(data):
        c = run.chains(rec, len(batch))
        c.clamp(units=run.visible, values=batch)
        c.sweep()
        wake = run.change(gen, c.state, "wake", post_prob=_generative_prob(gen, c.state), mask=gen.directed)
        f = run.chains(gen, len(batch))
        f.sweep()
        dw, db = run.change(rec, f.state, "sleep", post_prob=_generative_prob(rec, f.state),
                            mask=rec.directed)
        if run.s.warming_up(epoch):  # the hidden layers' generative model is held
            wake = (np.where(is_visible, wake[0], 0), np.where(is_visible, wake[1], 0))
        run.apply(gen, epoch, wake)
        run.apply(rec, epoch, (dw, np.where(has_rec, db, 0)), pathway="recognition ")
    trained = gen.to_network()
    for pre, post in net.recognition.edges():
        trained.set_weight(pre, post, float(rec.W[rec.index[pre], rec.index[post]]), recognition=True)
    for u in net.unit_list():
        if u.recognition_bias is not None or has_rec[rec.index[u.name]]:
            trained.set_recognition_bias(u.name, float(rec.b[rec.index[u.name]]))
    return trained


def _backprop(run: _Run, data: np.ndarray) -> Network:
    """The contrast case, as matrices: a deterministic forward pass (analog activities),
    error derivatives sent back through the forward weights, cross-entropy error at the
    visible units with parents; inputs are the visible units without parents."""
    net, cn = run.net, run.cn
    inputs = [cn.index[u] for u in run.visible if not net.parents(u)]
    targets = [cn.index[u] for u in run.visible if net.parents(u)]
    gens = [np.array([cn.index[u] for u in g if cn.index[u] not in inputs], dtype=np.intp)
            for g in net.generations()]
    gens = [g for g in gens if len(g)]
    col = {i: k for k, i in enumerate(cn.index[u] for u in run.visible)}
    ledger = Ledger()
    run.ledgers.append(ledger)
    n_parents, n_children = cn.directed.sum(axis=0), cn.directed.sum(axis=1)
    for epoch, batch in run.batches(data):
        Y = np.zeros((len(batch), cn.n), dtype=cn.dtype)
        Y[:, inputs] = batch[:, [col[i] for i in inputs]]
        for g in gens:
            Y[:, g] = sigmoid(cn.b[g] + Y @ cn.W[:, g])
        delta = np.zeros_like(Y)
        delta[:, targets] = batch[:, [col[i] for i in targets]] - Y[:, targets]
        for g in reversed(gens):
            rest = np.setdiff1d(g, targets)
            delta[:, rest] = Y[:, rest] * (1 - Y[:, rest]) * (delta @ cn.W[rest].T)
        ledger.analog += len(batch) * int(sum(n_parents[g].sum() for g in gens)
                                           + sum(n_children[np.setdiff1d(g, targets)].sum() for g in gens))
        ledger.updates += len(batch) * int(sum(len(g) for g in gens))
        run.apply(cn, epoch, run.change(cn, Y, "backward", post_error=delta, mask=cn.directed))
    return cn.to_network()


PROCEDURES = {"boltzmann": _boltzmann, "cd": _contrastive, "pcd": _contrastive, "delta": _delta,
              "wake-sleep": _wake_sleep, "backprop": _backprop}


def train(net: Network, rule: Rule, data: np.ndarray, visible: list[str],
          rng: np.random.Generator, settings: Settings | None = None,
          probs: np.ndarray | None = None) -> TrainResult:
    """Train ``net`` on the compiled backend by ``rule``'s procedure, with the remedies of
    ``settings``; returns a copy. Fails as the event engine's ``train`` does (bad
    settings or data, divergence)."""
    s = settings or Settings()
    if rule.procedure not in PROCEDURES:
        raise ValidationError(f"rule {rule.name!r} asks for procedure {rule.procedure!r}; the compiled "
                              f"backend has {', '.join(PROCEDURES)}")
    rows = check_training(net, rule, data, visible)
    if net.delayed_edge() is not None:
        raise ValidationError(f"{net.name!r} has message delays: the compiled backend runs with instant "
                              "messages; train it in the event engine")
    check_remedies(rule, s)

    def fit(start: Network, rows: np.ndarray, r: np.random.Generator, epochs: range) -> TrainResult:
        run = _Run(start, rule, list(visible), s, r, epochs)
        return run.result(PROCEDURES[rule.procedure](run, rows), len(rows) * len(epochs))

    return run_with_restarts(fit, net, rows, visible, s, rng, probs)
