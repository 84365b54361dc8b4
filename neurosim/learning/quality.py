"""How well a trained net learned its data: the measures ``neurosim train`` reports.

* :func:`exact_quality`: ``KL(data || model) = sum_v p(v) log p(v) / P(v)`` and the mean
  log-likelihood ``(1/N) sum_n log P(v_n)`` (eq. 4 of Hinton 2005, by enumeration), of
  the symmetrised net (:func:`~neurosim.learning.procedures.symmetrised`) if the two
  synapses of a symmetric edge drifted apart (message delays): such a net has no energy.
* :func:`shifter_quality`: the shifter measures of Dayan, Hinton, Neal and Zemel (1995):
  the fraction of valid fantasies, the best unit's shift selectivity, and the held-out
  negative log-likelihood (importance sampled) beside the data's entropy.
"""

from __future__ import annotations

import numpy as np

from ..inference import kl_data_model, visible_log_prob
from ..network import Network
from .procedures import enumerable, symmetrised

__all__ = ["exact_quality", "shifter_quality"]


def exact_quality(net: Network, visible: list[str], data: np.ndarray, probs: np.ndarray | None = None) -> dict:
    """``{"kl_nats", "log_likelihood_nats"}`` of ``net`` on ``data`` (rows over ``visible``),
    whose distribution is ``probs`` over its rows if given, else its empirical one; a
    ``note`` instead when enumeration is unaffordable, and one saying so when the
    symmetrised net was measured.

    >>> import numpy as np
    >>> from neurosim import load_model
    >>> net = load_model("models/earthquake_truck.toml")
    >>> q = exact_quality(net, ["house_jumps"], np.array([[1], [0], [0], [0]]))
    >>> bool(q["kl_nats"] >= 0 and q["log_likelihood_nats"] < 0)
    True
    """
    from ..data import empirical_distribution

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
    """``{"valid_fantasy_fraction", "shift_selectivity", "nll_nats", "data_entropy_nats"}``
    of a Helmholtz machine ``net`` (with recognition edges) trained on the shifter: over
    ``cases`` fantasies, and ``cases`` held-out shifter patterns (100 importance samples
    each), every draw from ``rng``."""
    from ..data import shifter, shifter_entropy_nats
    from ..machines.helmholtz import HelmholtzMachine, shift_selectivity, valid_fantasy_fraction

    hm = HelmholtzMachine.from_network(net, random_state=rng)
    held_out = shifter(rng, cases)
    rows = held_out.data[:, [held_out.names.index(v) for v in hm.visible_names_]]
    return {"valid_fantasy_fraction": valid_fantasy_fraction(hm, cases, rng),
            "shift_selectivity": shift_selectivity(hm, rows, held_out.labels, random_state=rng).best,
            "nll_nats": float(-np.mean(hm.log_likelihood_is(rows, n_samples=100, random_state=rng))),
            "data_entropy_nats": shifter_entropy_nats()}
