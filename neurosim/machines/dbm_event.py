"""A deep Boltzmann machine's posterior for one clamped visible vector, in the event engine.

Two ways of reading ``p(h | v)``, both counted in the engine's ledger:

* :func:`event_mean_field`: the mean-field fixed-point equations (Salakhutdinov and
  Hinton 2009, eq. 6), ``q_l = sigmoid(q_{l-1} W_l + q_{l+1} W_{l+1}^T + b_l)``, run by
  the :class:`~neurosim.engine.Simulator` in mean-field mode: every update of a hidden
  unit is a deterministic analog computation, and its ``q`` goes to each neighbour as an
  analog message. The schedule and the start are the machine's
  (:meth:`DeepBoltzmannMachine.mean_field`: ``mf.m``'s bottom-up pass with doubled input,
  then odd layers and even ones, :func:`~neurosim.machines.dbm.mean_field_passes`).
* :func:`event_gibbs_means`: Gibbs sampling in the posterior, ``v`` clamped, the hidden
  units sampled by eq. 1, binary messages only; the marginals are the fraction of sweeps
  in which each unit is on.

Either runs any Network of symmetric projections whose populations all have a layer
(visible ones clamped), :meth:`DeepBoltzmannMachine.to_network` among them. The
plausibility demo compares their messages for one MNIST digit (docs/machines/dbm.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..engine import Simulator
from ..errors import ValidationError
from ..messages import Ledger
from ..network import Network
from ..population import Population
from .base import check_number
from .dbm import mean_field_passes

__all__ = ["EventPosterior", "event_mean_field", "event_gibbs_means"]


@dataclass
class EventPosterior:
    """``means[k]``: hidden layer k's (bottom-up) mean-field ``q``, or fraction of sweeps
    on; ``steps``: mean-field passes after the start, or Gibbs sweeps averaged;
    ``ledger``: the messages and updates so far (set-up and burn-in included)."""

    means: list[np.ndarray]
    steps: int
    ledger: Ledger


def _hidden(net: Network) -> list[Population]:
    """The populations that are not visible, by layer (every population needs one)."""
    missing = next((p for p in net.populations if p.layer is None), None)
    if missing is not None:
        raise ValidationError(f"network {net.name!r}: population {missing.name!r} has no layer; "
                              "a layered posterior needs every population's")
    return sorted((p for p in net.populations if p.role != "visible"), key=lambda p: p.layer)


def _evidence(net: Network, v: np.ndarray) -> dict[str, int]:
    """The visible units (in the net's order) clamped to the bits ``v``."""
    units = [u for p in net.populations if p.role == "visible" for u in p.units]
    v = np.asarray(v)
    if v.shape != (len(units),) or not np.isin(v, (0, 1)).all():
        raise ValidationError(f"network {net.name!r} has {len(units)} visible units: v must be that many "
                              f"bits, got shape {v.shape}")
    return dict(zip(units, v.astype(int).tolist()))


def event_mean_field(net: Network, v: np.ndarray, iterations: int = 30, damping: float = 0.0) -> EventPosterior:
    """Mean-field in the event engine (module doc), ``v`` clamped: the start, each hidden
    layer bottom-up with its input from below (the layers above have sent nothing yet)
    doubled except at the top, then at most ``iterations`` passes of
    ``q <- damping q + (1 - damping) sigmoid(input)``, odd layers then even, until every
    layer moves less than ``MF_TOLERANCE``. Each update sends ``q`` to every neighbour."""
    iterations = check_number("iterations", iterations, 1, integer=True)
    damping = check_number("damping", damping, 0.0, 1.0, high_open=True)
    hidden = _hidden(net)
    sim = Simulator(net, np.random.default_rng(0), "layer", mode="mean-field",  # draws nothing
                    evidence=_evidence(net, v))
    Q = {}
    for k, p in enumerate(hidden):
        sim.gain = 2.0 if k < len(hidden) - 1 else 1.0
        Q[p.layer] = sim.update_group(p.units)[0]
    sim.gain, sim.damping = 1.0, float(damping)
    units = {p.layer: p.units for p in hidden}

    def update(layer: int) -> float:
        new = sim.update_group(units[layer])[0]
        change, Q[layer] = float(np.abs(new - Q[layer]).mean()), new
        return change

    passes = mean_field_passes(update, list(units), iterations)
    return EventPosterior([Q[p.layer] for p in hidden], passes, sim.ledger)


def event_gibbs_means(net: Network, v: np.ndarray, checkpoints: Sequence[int], rng: np.random.Generator,
                      burn_in: int = 0, schedule: str = "layer") -> list[EventPosterior]:
    """Gibbs sampling in the posterior (module doc), ``v`` clamped, the hidden units
    starting off: ``burn_in`` sweeps under ``schedule``, then the fraction of sweeps in
    which each hidden unit is on, after each of the increasing sweep counts ``checkpoints``,
    with the messages sent so far."""
    if any(b <= a for a, b in zip([0, *checkpoints], checkpoints)):
        raise ValidationError(f"checkpoints must be increasing positive sweep counts, got {list(checkpoints)}")
    hidden = _hidden(net)
    sim = Simulator(net, rng, schedule, evidence=_evidence(net, v), init=np.zeros(net.n_units, dtype=int))
    if burn_in:
        sim.sweep(burn_in)
    cols = [[net.index(u) for u in p.units] for p in hidden]
    total, done, out = np.zeros(net.n_units), 0, []
    for k in checkpoints:
        total += sim.sample(k - done).sum(axis=0)
        done = k
        out.append(EventPosterior([total[c] / done for c in cols], done, replace(sim.ledger)))
    return out
