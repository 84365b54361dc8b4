"""How well a trained net learned its data, as ``neurosim train`` reports it: exactly
(:func:`exact_quality`, by enumeration) and, for a Helmholtz machine on the shifter, by
the measures of Dayan, Hinton, Neal and Zemel (1995) (:func:`shifter_quality`).
"""

from __future__ import annotations

import numpy as np

from ..data import empirical_distribution, shifter, shifter_entropy_nats
from ..inference import kl_data_model, visible_log_prob
from ..network import Network
from .procedures import enumerable, symmetrised

__all__ = ["exact_quality", "shifter_quality"]


def exact_quality(net: Network, visible: list[str], data: np.ndarray, probs: np.ndarray | None = None) -> dict:
    """``KL(data || model) = sum_v p(v) log p(v) / P(v)`` and the mean log-likelihood
    ``(1/N) sum_n log P(v_n)`` (eq. 4 of Hinton 2005) of ``net`` on ``data`` (rows over
    ``visible``), ``p`` being ``probs`` over its rows if given, else its empirical
    distribution. A net whose symmetric synapses drifted apart (message delays) has no
    energy: its :func:`~neurosim.learning.procedures.symmetrised` copy is measured, and a
    ``note`` says so; a ``note`` alone when enumeration is unaffordable.

    >>> from neurosim import load_model
    >>> q = exact_quality(load_model("models/boltzmann_6.toml"), ["v1", "v2", "v3"], np.eye(3, dtype=int))
    >>> round(q["kl_nats"], 3), round(q["log_likelihood_nats"], 3)   # KL + log-likelihood = -log 3
    (2.666, -3.764)
    """
    rows, probs = (data, probs) if probs is not None else empirical_distribution(data)
    if not enumerable(net, visible, len(rows) + len(data)):
        return {"note": f"{net.n_units - len(visible)} hidden units and {len(rows)} distinct cases: too many "
                        "to enumerate"}
    drifted = any(p.kind == "symmetric" and p.reverse is not None and not np.array_equal(p.reverse, p.weights)
                  for p in net.projections)
    measured = symmetrised(net) if drifted else net
    quality = {"kl_nats": kl_data_model(measured, visible, rows, probs),
               "log_likelihood_nats": float(np.mean(visible_log_prob(measured, visible, data)))}
    if drifted:
        quality["note"] = ("of the symmetrised net: the two synapses of a symmetric edge drifted apart, "
                           "so each pair is measured at its mean")
    return quality


def shifter_quality(net: Network, rng: np.random.Generator, cases: int = 1000) -> dict:
    """The fraction of valid fantasies among ``cases``, the best unit's shift selectivity,
    and the negative log-likelihood of ``cases`` held-out patterns (importance sampled,
    100 samples each) beside the data's entropy, of a Helmholtz machine ``net`` trained
    on the shifter; every draw from ``rng``."""
    from ..machines.helmholtz import HelmholtzMachine, shift_selectivity, valid_fantasy_fraction

    hm = HelmholtzMachine.from_network(net, random_state=rng)
    held_out = shifter(rng, cases)
    rows = held_out.data[:, [held_out.names.index(v) for v in hm.visible_names_]]
    return {"valid_fantasy_fraction": valid_fantasy_fraction(hm, cases, rng),
            "shift_selectivity": shift_selectivity(hm, rows, held_out.labels, random_state=rng).best,
            "nll_nats": float(-np.mean(hm.log_likelihood_is(rows, n_samples=100, random_state=rng))),
            "data_entropy_nats": shifter_entropy_nats()}
