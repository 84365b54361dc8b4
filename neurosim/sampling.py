"""Drawing samples and turning them into a posterior, on either engine.

``sample(net, n)`` runs the event engine (one chain, unit by unit, every message
counted) or the compiled backend (``chains`` chains as rows of a matrix); ``backend=
"auto"`` picks compiled above AUTO_UNITS units unless the run asks for what only the
event engine models (a schedule other than sweep, message delays).

``posterior(net, evidence)`` is exact enumeration (:func:`neurosim.inference.posterior`);
``method="gibbs"`` estimates the same distribution from Gibbs samples with the evidence
clamped (Neal 1992; eq. 1 of Hinton 2005 at each update): P(s) is the fraction of
kept sweeps in state s, and a marginal the fraction in which the unit is on.

Example
-------
>>> from neurosim import load_model, posterior
>>> net = load_model("models/earthquake_truck.toml")
>>> post = posterior(net, {"house_jumps": 1}, method="gibbs", backend="compiled", sweeps=20000,
...                  chains=20000, random_state=0)
>>> round(post.marginals()["earthquake"], 1)
0.5
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .engine import Simulator
from .errors import ParameterError, ValidationError
from .inference import Posterior, bitstring
from .inference import posterior as exact_posterior
from .machines.base import check_number, check_random_state
from .messages import Ledger
from .network import Network

__all__ = ["AUTO_UNITS", "BACKENDS", "METHODS", "Samples", "SampledPosterior", "choose_backend",
           "sample", "posterior"]

AUTO_UNITS = 64   # backend "auto": the compiled backend for nets with more units than this
BACKENDS = ("auto", "event", "compiled")
METHODS = ("exact", "gibbs")
GIBBS_SCHEDULES = ("async", "sweep", "layer")  # the schedules that sample a posterior


@dataclass(frozen=True)
class Samples:
    """``states[k]``: the k-th sample over ``units`` (int8 0/1, every unit of the net);
    ``backend`` and ``schedule`` that drew them; ``ledger``: the messages and updates."""

    units: list[str]
    states: np.ndarray
    backend: str
    schedule: str
    ledger: Ledger


def choose_backend(net: Network, backend: str = "auto", schedule: str | None = None) -> str:
    """``event`` or ``compiled``: ``auto`` is compiled above AUTO_UNITS units unless the run
    asks for what only the event engine models (a schedule other than sweep, message
    delays); asking the compiled backend for that is a ValidationError."""
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    delayed = net.delayed_edge()
    event_only = (f"schedule {schedule!r} (--schedule {schedule})" if schedule not in (None, "sweep") else
                  f"message delays (edge {delayed.source} -> {delayed.target}: {delayed.delay:g} sweeps)"
                  if delayed else None)
    if backend == "auto":
        return "compiled" if net.n_units > AUTO_UNITS and event_only is None else "event"
    if backend == "compiled" and event_only:
        raise ValidationError(f"{event_only}: only the event engine models this; the compiled backend "
                              "runs every unit of a group at once with instant messages (use backend "
                              "'event', --backend event)")
    return backend


def sample(net: Network, n: int, backend: str = "auto", schedule: str | None = None, burn_in: int = 100,
           thin: int = 1, chains: int = 100, evidence: Mapping[str, int] | None = None,
           random_state: Any = None) -> Samples:
    """``n`` samples of every unit of ``net``, ``evidence`` clamped.

    The event engine runs one chain under ``schedule`` (default: ancestral for a belief
    net without evidence, sweep otherwise); the compiled backend runs ``min(chains, n)`` chains by its
    plan (``schedule`` must then be None or sweep) and keeps ``ceil(n / chains)`` sweeps
    of each, ``thin`` apart. ``burn_in`` sweeps are discarded first, except by ancestral
    sampling, whose samples are independent."""
    for name, value, low in (("n", n, 1), ("burn_in", burn_in, 0), ("thin", thin, 1), ("chains", chains, 1)):
        check_number(name, value, low=low, integer=True)
    backend = choose_backend(net, backend, schedule)
    rng = check_random_state(random_state)
    if backend == "event":
        schedule = schedule or ("sweep" if net.has_symmetric or evidence else "ancestral")
        sim = Simulator(net, rng, schedule=schedule, evidence=evidence)
        states = sim.sample(n, burn_in=0 if schedule == "ancestral" else burn_in, thin=thin)
        return Samples(list(net.units), states, backend, schedule, sim.ledger)
    from .compiled import Chains, compile

    c = Chains(compile(net), rng, min(chains, n), evidence=evidence)
    schedule = c.plan.mode
    states = c.sample(-(-n // c.m), burn_in=0 if schedule == "ancestral" else burn_in, thin=thin)[:n]
    return Samples(list(net.units), states, backend, schedule, c.ledger)


@dataclass(frozen=True)
class SampledPosterior:
    """P(free units | evidence) estimated from Gibbs samples: the interface of the exact
    :class:`~neurosim.inference.Posterior` (``units``, ``states``, ``probs``,
    ``marginals()``, ``joint()``) plus the ``samples`` it was counted from (their
    backend, schedule and message ledger). ``states`` are the distinct states seen."""

    units: list[str]
    kept: np.ndarray
    samples: Samples

    @property
    def ledger(self) -> Ledger:
        return self.samples.ledger

    @property
    def messages(self) -> dict[str, int]:
        return {"binary": self.ledger.binary, "analog": self.ledger.analog}

    def joint(self) -> dict[str, float]:
        """``{bitstring over units: fraction of the samples in that state}``, sorted by state."""
        counts = Counter(bitstring(s) for s in self.kept)
        return {bits: c / len(self.kept) for bits, c in sorted(counts.items())}

    @property
    def states(self) -> np.ndarray:
        return np.array([[int(b) for b in bits] for bits in self.joint()], dtype=np.int8)

    @property
    def probs(self) -> np.ndarray:
        return np.array(list(self.joint().values()))

    def marginal_array(self) -> np.ndarray:
        """``P(unit = 1)`` of each unit: the fraction of samples in which it is on."""
        return self.kept.mean(axis=0)

    def marginals(self) -> dict[str, float]:
        """``{unit: P(unit = 1)}``."""
        return {u: float(self.kept[:, k].mean()) for k, u in enumerate(self.units)}


def posterior(net: Network, evidence: Mapping[str, int] | None = None, method: str = "exact", *,
              backend: str | None = None, sweeps: int | None = None, burn_in: int | None = None,
              schedule: str | None = None, chains: int | None = None,
              random_state: Any = None) -> Posterior | SampledPosterior:
    """P(free units | evidence): exact by enumeration (the default), or ``method="gibbs"``:
    ``sweeps`` samples (default 10000) after ``burn_in`` sweeps (default 100) under
    ``schedule`` (async, sweep or layer; default sweep) on ``backend`` (default auto) with
    ``chains`` chains on the compiled backend (default 100). The sampling options are
    refused with ``method="exact"``, which has nothing to sample."""
    options = dict(backend=backend, sweeps=sweeps, burn_in=burn_in, schedule=schedule, chains=chains,
                   random_state=random_state)
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "exact":
        given = [k for k, v in options.items() if v is not None]
        if given:
            raise ParameterError(f"{', '.join(given)}: options of method='gibbs'; exact inference "
                                 "enumerates every state and draws nothing")
        return exact_posterior(net, evidence)
    schedule = schedule or "sweep"
    if schedule not in GIBBS_SCHEDULES:
        raise ParameterError(f"a Gibbs posterior needs schedule {', '.join(GIBBS_SCHEDULES)}, got "
                             f"{schedule!r} (ancestral sampling ignores evidence)")
    evidence = dict(evidence or {})
    drawn = sample(net, 10000 if sweeps is None else sweeps, backend or "auto", schedule,
                   100 if burn_in is None else burn_in, 1, 100 if chains is None else chains,
                   evidence, random_state)
    free = [i for i, u in enumerate(net.units) if u not in evidence]
    return SampledPosterior([net.units[i] for i in free], drawn.states[:, free], drawn)
