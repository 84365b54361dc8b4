"""Reading a DBN's label units from its Network (``neurosim dbn classify``).

**free-energy** (exact, compiled only): an up-pass of probabilities to the pen layer
``p``, then the label of lowest top-RBM free energy ``F(p, y)``
(:meth:`DeepBeliefNet.predict`, the numbers of ``neurosim dbn evaluate``).

**gibbs** (neural, sampled): ``v ~ Bernoulli(pixel)``, an up-pass of stochastic binary
units to a pen state ``h``, then :func:`top_rbm` with the pen clamped to ``h`` left to
run; the label on most often in the last ``sweeps`` of ``burn_in + sweeps`` is the
answer. The labels are the paper's softmax group, drawn from
``p(y = k | top) = exp(b_k + sum_j U_kj s_j) / sum_y exp(b_y + sum_j U_yj s_j)``, so
the counts sample ``p(y | h) = softmax(-F(h, .))``.

One loop, :func:`label_counts`, runs it on either engine through the sampler protocol
(``clamp``, ``sweep``, ``rows``): many chains of :class:`~neurosim.compiled.Chains`
(:func:`gibbs_readout`) or one :class:`~neurosim.engine.Simulator` on its own clock,
binary messages only (:func:`event_gibbs_readout`). Details: docs/machines/dbn.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import NeurosimError, ValidationError
from ..messages import Ledger
from ..network import Network
from ..numerics import bernoulli
from ..population import Population
from .dbn import DeepBeliefNet, upgrade_labels

__all__ = ["METHODS", "Readout", "label_population", "classify", "free_energy_readout", "gibbs_readout",
           "event_gibbs_readout", "top_rbm", "label_counts"]

METHODS = ("free-energy", "gibbs")
BACKENDS = ("compiled", "event")


@dataclass
class Readout:
    """Predicted labels and the messages an engine would send for them; ``given_up_pass``
    (gibbs): the exact ``argmin_y F(h, y)`` of the same sampled up-pass (a cross-check)."""

    labels: np.ndarray
    ledger: Ledger
    given_up_pass: np.ndarray | None = None


def label_population(net: Network) -> Population:
    """The population of role ``label``; a ValidationError when the net has none."""
    labels = [p for p in net.populations if p.role == "label"]
    if not labels:
        raise ValidationError(f"network {net.name!r} has no label units (no population of role "
                              "'label'): it cannot classify")
    return labels[0]


def classify(net: Network, X: np.ndarray, method: str, rng: np.random.Generator, sweeps: int = 50,
             burn_in: int = 10, batch: int = 1000, backend: str = "compiled", schedule: str = "sweep",
             delay: float = 0.0) -> Readout:
    """The labels of images ``X`` (cases x visible units) read by ``method`` on ``backend``
    (module doc); ``schedule`` and ``delay``: the event engine's. A DBN exported with
    logistic labels reads as one with the softmax group (:func:`upgrade_labels`)."""
    net = upgrade_labels(net)
    label_population(net)
    if backend not in BACKENDS:
        raise ValidationError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "event" and method != "gibbs":
        raise ValidationError(f"the {method} read-out is computed, not sampled: compiled only")
    dbn = DeepBeliefNet.from_network(net)
    if X.shape[1] != dbn.sizes[0]:
        raise NeurosimError(f"network {net.name!r} has {dbn.sizes[0]} visible units; the images have "
                            f"{X.shape[1]} pixels")
    if method == "free-energy":
        return free_energy_readout(dbn, X)
    if method == "gibbs" and backend == "event":
        return event_gibbs_readout(dbn, net, X, rng, sweeps, burn_in, schedule, delay)
    if method == "gibbs":
        return gibbs_readout(dbn, net, X, rng, sweeps, burn_in, batch)
    raise ValidationError(f"unknown read-out {method!r} (one of {', '.join(METHODS)})")


def free_energy_readout(dbn: DeepBeliefNet, X: np.ndarray) -> Readout:
    """:meth:`DeepBeliefNet.predict`; messages: each unit's probability over every
    recognition synapse (analog); the free energies are computed, not counted."""
    per_case = sum(R.size for R in dbn.R)
    return Readout(dbn.predict(X), Ledger(analog=per_case * len(X), updates=len(X) * sum(dbn.sizes[1:-1])))


def gibbs_readout(dbn: DeepBeliefNet, net: Network, X: np.ndarray, rng: np.random.Generator,
                  sweeps: int, burn_in: int, batch: int) -> Readout:
    """The gibbs read-out on the compiled backend, ``batch`` chains of :func:`top_rbm` at a
    time, one per image. Messages: each unit on after the up-pass sends one binary message
    over each of its recognition synapses (units start off), then the chains' own count."""
    from ..compiled import Chains, compile

    rbm = top_rbm(net)
    compiled = compile(rbm)
    ledger, out, exact = Ledger(), [], []
    for start in range(0, len(X), batch):
        layers = dbn.up(bernoulli(np.asarray(X[start:start + batch], dtype=np.float32), rng), rng)
        ledger.binary += sum(int(s.sum()) * R.shape[1] for s, R in zip(layers, dbn.R))
        ledger.updates += sum(s.size for s in layers[1:])
        chains = Chains(compiled, rng, len(layers[0]), init=np.zeros((len(layers[0]), compiled.n)))
        out.append(label_counts(chains, rbm, layers[-1], sweeps, burn_in).argmax(axis=1))
        _add(ledger, chains.ledger)
        exact.append(dbn.label_free_energies(layers[-1]).argmin(axis=1))
    none = np.zeros(0, dtype=np.intp)
    return Readout(np.concatenate(out) if out else none, ledger, np.concatenate(exact) if exact else none)


def event_gibbs_readout(dbn: DeepBeliefNet, net: Network, X: np.ndarray, rng: np.random.Generator,
                        sweeps: int, burn_in: int, schedule: str = "sweep", delay: float = 0.0) -> Readout:
    """The gibbs read-out in the event engine, digit by digit, binary messages only, in
    two simulators that live through all the digits (docs/machines/dbn.md): the
    recognition pathway (ancestral, each layer above ``v`` updated once, bottom-up) and
    :func:`top_rbm` under ``schedule`` with message ``delay`` (sweeps). Messages as the
    engine counts them: one per out-synapse of a unit that changed state."""
    from ..engine import Simulator

    names = dbn.layer_names()
    up = Simulator(net, rng, "layer", mode="ancestral", init=np.zeros(net.n_units, dtype=int),
                   pathway="recognition")
    rbm = top_rbm(net, delay)
    sim = Simulator(rbm, rng, schedule, init=np.zeros(rbm.n_units, dtype=int))
    out = np.zeros(len(X), dtype=np.intp)
    exact = np.zeros(len(X), dtype=np.intp)
    for c, x in enumerate(np.asarray(X, dtype=np.float32)):
        up.clamp(units=net.population(names[0]).units, values=bernoulli(x[None], rng))
        for layer in names[1:]:
            h = up.update_group(net.population(layer).units)
        out[c] = label_counts(sim, rbm, h, sweeps, burn_in)[0].argmax()
        exact[c] = dbn.label_free_energies(h.astype(np.float32)).argmin(axis=1)[0]
    ledger = Ledger()
    for part in (up.ledger, sim.ledger):
        _add(ledger, part)
    return Readout(out, ledger, exact)


def _add(ledger: Ledger, other: Ledger) -> None:
    """``ledger += other``, count by count."""
    for name in ("binary", "analog", "updates"):
        setattr(ledger, name, getattr(ledger, name) + getattr(other, name))


def top_rbm(net: Network, delay: float = 0.0) -> Network:
    """The top RBM of a DBN's Network as a Network of its own: the pen, top and label
    populations and their symmetric projections, each with ``delay`` (in sweeps)."""
    keep = {p.name for p in net.populations if p.role == "label"} | {_top(net)}
    projs = [replace(q, delay=float(delay)) for q in net.projections
             if q.kind == "symmetric" and (q.pre in keep or q.post in keep)]
    names = {q.pre for q in projs} | {q.post for q in projs}
    return Network.from_populations([p for p in net.populations if p.name in names], projs,
                                    net.name + ":top")


def _pen(rbm: Network) -> Population:
    """The pen population of a :func:`top_rbm`: neither the labels nor the top."""
    top = _top(rbm)
    return next(p for p in rbm.populations if p.role != "label" and p.name != top)


def _top(net: Network) -> str:
    """The name of the top population (the one in the highest layer)."""
    return max((p for p in net.populations if p.role != "label"), key=lambda p: p.layer).name


def label_counts(sampler, rbm: Network, pen_states: np.ndarray, sweeps: int, burn_in: int) -> np.ndarray:
    """The read-out's one loop, on either engine (the sampler protocol's ``clamp``,
    ``sweep``, ``rows``) running :func:`top_rbm` ``rbm``: clamp its pen units to
    ``pen_states`` (one row per chain), let ``burn_in`` sweeps pass, then read the label
    group after each of ``sweeps`` more; returns how often each label was on (chains x
    labels)."""
    sampler.clamp(units=_pen(rbm).units, values=pen_states)
    if burn_in:
        sampler.sweep(burn_in)
    cols = [rbm.index(u) for u in label_population(rbm).units]
    counts = np.zeros((len(pen_states), len(cols)), dtype=np.int64)
    for _ in range(sweeps):
        sampler.sweep(1)
        counts += sampler.rows[:, cols].astype(np.int64)
    return counts
