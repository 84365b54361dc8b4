"""Exact inference by enumeration: the ground truth every sampler is tested against.

The joint distribution of a Network (a chain graph) is

    P(s) = exp(-E_R(s_R)) / Z  *  prod_{i with parents} P(s_i | parents(i))

where R are the units with no directed parents, ``E_R`` is the Boltzmann energy of
eq. 2 of Hinton (2005) over R (biases and symmetric weights), ``Z`` its partition
function (eq. 3-4), and ``P(s_i=1 | parents) = sigmoid(b_i + sum_j s_j w_ji)`` (eq. 1).
A Boltzmann machine is all R; a sigmoid belief net has R = its roots, and Z factorises.
A softmax population (a one-of-n group: the labels of Hinton, Osindero and Teh 2006) has
the energy of binary units, but only its states with exactly one unit on exist: they
alone are enumerated, and any other state has probability 0.

Everything is computed in log space (log-sigmoid, log-sum-exp) and normalised there:
probabilities lie in [0, 1], a joint sums to 1 and log-probabilities are at most 0.

Supported range: float64 resolves a log-probability to about ``eps * scale``, where
``scale = sum_i |b_i| + sum |w|`` over every unit and every synapse (a symmetric edge
has two). Exact inference therefore refuses, with an :class:`InferenceError` naming the
unit or edge of largest magnitude, a net whose scale exceeds ``MAX_SCALE = 1e6``; within
it log-probabilities are exact to about 1e-9. (Beyond it, a bias of 1e16 next to a bias
of 1 would lose the 1 entirely: a wrong answer that looks exact.)

Example
-------
>>> from neurosim import load_model, posterior
>>> post = posterior(load_model("models/earthquake_truck.toml"), {"house_jumps": 1})
>>> round(post.marginals()["earthquake"], 4)
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import networkx as nx
import numpy as np

from ..errors import InferenceError
from ..network import NetArrays, Network
from ..numerics import logsumexp
from ..numerics import softplus as _softplus

__all__ = ["MAX_FREE_UNITS", "MAX_SCALE", "all_states", "bitstring", "log_joint", "energy",
           "log_partition", "log_prob", "posterior", "Posterior", "visible_log_prob", "kl_data_model"]

MAX_FREE_UNITS = 22
MAX_SCALE = 1e6  # largest sum |b| + |w| over a net that float64 enumerates to ~1e-9 (module doc)
_CHUNK = 1 << 15


def all_states(n: int) -> np.ndarray:
    """Every binary vector of length n, shape (2**n, n); row k is k in binary, unit 0 first."""
    k = np.arange(2 ** n, dtype=np.int64)[:, None]
    return ((k >> np.arange(n - 1, -1, -1)) & 1).astype(np.int8)


_BINARY = np.array([[0], [1]], dtype=np.int8)
Choice = tuple[np.ndarray, np.ndarray]  # (columns, the states they may take together: rows)


def _choices(net: Network, units: list[int], clamp: Mapping[int, int]) -> list[Choice]:
    """The variables of an enumeration over ``units`` (positions 0.. in that list), in
    the order of their first unit: a logistic unit alone (0 or 1); the members of one
    softmax group in ``units`` together, one of them on, or all off if ``clamp`` turns
    another member on."""
    pos = {u: k for k, u in enumerate(units)}
    choices, grouped = [], set()
    for group in net.softmax_groups():
        members = [pos[i] for i in group.tolist() if i in pos]
        if members:
            on = any(clamp.get(i, 0) for i in group.tolist())
            choices.append((np.array(members), np.zeros((1, len(members)), dtype=np.int8) if on
                            else np.eye(len(members), dtype=np.int8)))
            grouped.update(members)
    choices += [(np.array([k]), _BINARY) for k in range(len(units)) if k not in grouped]
    return sorted(choices, key=lambda c: int(c[0][0]))


def _count(choices: list[Choice]) -> int:
    return math.prod(len(states) for _, states in choices)


def _states(choices: list[Choice], n: int, start: int, stop: int) -> np.ndarray:
    """States ``start .. stop - 1`` of the enumeration (mixed radix, first variable most
    significant: with logistic units only, the rows of :func:`all_states`)."""
    k = np.arange(start, stop, dtype=np.int64)
    out = np.zeros((len(k), n), dtype=np.int8)
    for cols, states in reversed(choices):
        k, digit = np.divmod(k, len(states))
        out[:, cols] = states[digit]
    return out


def bitstring(state: np.ndarray) -> str:
    return "".join("1" if s else "0" for s in state)


def _checked(net: Network, arr: NetArrays | None = None) -> NetArrays:
    _binary(net)
    arr = net.to_arrays() if arr is None else arr
    Ws = np.where(arr.symmetric, arr.weights, 0.0)
    if not np.array_equal(Ws, Ws.T):
        i, j = np.argwhere(Ws != Ws.T)[0]
        a, b = net.units[i], net.units[j]
        raise InferenceError(f"symmetric edge {a} <-> {b} has unequal synapses ({Ws[i, j]!r} and "
                             f"{Ws[j, i]!r}): the energy of eq. 2 needs w_ij == w_ji")
    _check_scale(net, arr)
    return arr


def _binary(net: Network) -> None:
    """Refuse a net with linear (real-valued) units: the enumeration is of binary states."""
    net.refuse_linear("exact inference (an enumeration of binary states)", InferenceError)


def _check_scale(net: Network, arr: NetArrays) -> None:
    """Refuse a net whose ``sum |b| + sum |w|`` exceeds MAX_SCALE, naming its largest parameter."""
    with np.errstate(over="ignore"):
        scale = float(np.abs(arr.bias).sum() + np.abs(arr.weights).sum())
    if scale <= MAX_SCALE:  # False for inf and NaN too
        return
    i = int(np.argmax(np.abs(arr.bias)))
    j, k = np.unravel_index(int(np.argmax(np.abs(arr.weights))), arr.weights.shape)
    if abs(arr.bias[i]) >= abs(arr.weights[j, k]):
        culprit = f"unit {net.units[i]!r} has bias {float(arr.bias[i])!r}"
    else:
        culprit = f"edge {net.units[j]} -> {net.units[k]} has weight {float(arr.weights[j, k])!r}"
    raise InferenceError(f"exact inference on {net.name!r}: {culprit}; the sum of |bias| and |weight| "
                         f"over the net is {scale:.3g}, over the supported {MAX_SCALE:g} within which "
                         "float64 keeps log-probabilities exact to ~1e-9")


def _roots(arr: NetArrays) -> np.ndarray:
    return ~arr.directed.any(axis=0)


def log_joint(net: Network, states: np.ndarray, arrays: NetArrays | None = None) -> np.ndarray:
    """Unnormalised log probability ``-E_R(s_R) + sum log P(s_i | parents)`` of each row;
    ``arrays``: parameters in place of the net's own, in :meth:`Network.to_arrays`'s
    form (a machine's current ones), checked the same way."""
    arr = _checked(net, arrays)
    S = np.asarray(states, dtype=np.float64)
    roots = _roots(arr)
    Ws = np.where(arr.symmetric, arr.weights, 0.0)
    Wd = np.where(arr.directed, arr.weights, 0.0)
    out = S[:, roots] @ arr.bias[roots] + 0.5 * ((S @ Ws) * S).sum(axis=1)
    child = ~roots
    if child.any():
        X = S @ Wd[:, child] + arr.bias[child]
        out += (S[:, child] * X - _softplus(X)).sum(axis=1)
    for group in net.softmax_groups():  # a one-of-n group's other states do not exist
        out[S[:, group].sum(axis=1) != 1] = -np.inf
    return out


def energy(net: Network, states: np.ndarray) -> np.ndarray:
    """``-log_joint``: for a Boltzmann machine exactly the energy of eq. 2,
    ``E = -sum_i b_i s_i - sum_{i<j} s_i s_j w_ij``."""
    return -log_joint(net, states)


def log_partition(net: Network) -> float:
    """log Z of eq. 3: log-sum-exp over the states of the root units, one connected
    component of symmetric edges (and softmax groups) at a time (a lone logistic unit
    gives ``softplus(b)``)."""
    arr = _checked(net)
    roots = np.flatnonzero(_roots(arr))
    graph = nx.Graph()
    graph.add_nodes_from(roots.tolist())
    graph.add_edges_from((int(i), int(j)) for i, j in np.argwhere(arr.symmetric) if i < j)
    grouped = set()
    for group in net.softmax_groups():
        nx.add_path(graph, group.tolist())
        grouped.update(group.tolist())
    total = 0.0
    for comp in nx.connected_components(graph):
        idx = np.array(sorted(comp))
        if len(idx) == 1 and idx[0] not in grouped:
            total += float(_softplus(arr.bias[idx[0]]))
            continue
        choices = _choices(net, idx.tolist(), {})
        _enumerable(len(idx), choices, net, "the partition function of a component of")
        Ws = arr.weights[np.ix_(idx, idx)]
        total += _logsumexp_chunks(choices, len(idx),
                                   lambda S: S @ arr.bias[idx] + 0.5 * ((S @ Ws) * S).sum(axis=1))
    return total


def log_prob(net: Network, states: np.ndarray) -> np.ndarray:
    """Normalised log P(s) of each row of ``states`` (all units, in unit order)."""
    return log_joint(net, states) - log_partition(net)


def _enumerable(n: int, choices: list[Choice], net: Network, what: str) -> None:
    """At most 2^MAX_FREE_UNITS states (a softmax group of k units counts k, not 2^k)."""
    count = _count(choices)
    if count <= 2 ** MAX_FREE_UNITS:
        return
    if count == 2 ** n:
        raise InferenceError(f"exact inference enumerates 2^n states: {what} {n} units of "
                             f"{net.name!r} is over the limit of {MAX_FREE_UNITS}; use --method gibbs")
    raise InferenceError(f"exact inference enumerates every state: {what} {n} units of {net.name!r} "
                         f"has {count} states (a softmax group of k units: k), over the limit of "
                         f"2^{MAX_FREE_UNITS}; use --method gibbs")


def _logsumexp_chunks(choices: list[Choice], n: int, f) -> float:
    count = _count(choices)
    parts = [logsumexp(f(_states(choices, n, start, min(start + _CHUNK, count)).astype(np.float64)))
             for start in range(0, count, _CHUNK)]
    return logsumexp(np.array(parts))


@dataclass(frozen=True)
class Posterior:
    """The exact joint posterior over the free (unclamped) units.

    ``states[k]`` is a configuration of ``units``; ``log_probs[k]`` its log posterior
    probability (at most 0); ``log_evidence`` is log P(evidence) (0 with no evidence).
    """

    units: list[str]
    states: np.ndarray
    log_probs: np.ndarray
    log_evidence: float

    @property
    def probs(self) -> np.ndarray:
        """``exp(log_probs)``, rescaled to sum to 1 (to rounding)."""
        p = np.exp(self.log_probs)
        return p / p.sum()

    def marginal_array(self) -> np.ndarray:
        """``P(unit = 1)`` of each unit: sums of joint probabilities, clipped to [0, 1]
        against rounding."""
        return np.clip(self.probs @ self.states.astype(np.float64), 0.0, 1.0)

    def marginals(self) -> dict[str, float]:
        """``{unit: P(unit = 1)}``."""
        return dict(zip(self.units, map(float, self.marginal_array())))

    def joint(self) -> dict[str, float]:
        """``{bitstring over units: probability}`` for every state."""
        return {bitstring(s): float(p) for s, p in zip(self.states, self.probs)}


def posterior(net: Network, evidence: Mapping[str, int] | None = None) -> Posterior:
    """Exact P(free units | evidence) by enumerating every free state (2^n; a softmax
    group's free members: one of them on, or none if evidence turned another one on)."""
    _binary(net)
    clamp = net.evidence_indices(evidence)
    free = [i for i in range(net.n_units) if i not in clamp]
    choices = _choices(net, free, clamp)
    _enumerable(len(free), choices, net, "the posterior over")
    free_states = _states(choices, len(free), 0, _count(choices))
    full = np.zeros((len(free_states), net.n_units), dtype=np.int8)
    full[:, free] = free_states
    for i, v in clamp.items():
        full[:, i] = v
    lj = np.concatenate([log_joint(net, full[s:s + _CHUNK]) for s in range(0, len(full), _CHUNK)])
    log_norm = logsumexp(lj)
    log_evidence = min(0.0, log_norm - log_partition(net)) if clamp else 0.0
    return Posterior([net.units[i] for i in free], free_states, np.minimum(lj - log_norm, 0.0),
                     log_evidence)


def visible_log_prob(net: Network, visible: list[str], rows: np.ndarray) -> np.ndarray:
    """log P(v) of each row over the units ``visible`` (eq. 4), every other unit summed out."""
    rows = np.asarray(rows)
    return np.array([posterior(net, dict(zip(visible, map(int, row)))).log_evidence
                     if len(visible) < net.n_units else min(0.0, float(log_prob(net, row[None])[0]))
                     for row in rows])


def kl_data_model(net: Network, visible: list[str], rows: np.ndarray, probs: np.ndarray) -> float:
    """KL(data || model) in nats over the visible units: ``sum_v p(v) log p(v) / P(v)``,
    for a data distribution given as distinct ``rows`` with probabilities ``probs``."""
    probs = np.asarray(probs, dtype=float)
    keep = probs > 0
    logp = visible_log_prob(net, visible, np.asarray(rows)[keep])
    return float(np.sum(probs[keep] * (np.log(probs[keep]) - logp)))
