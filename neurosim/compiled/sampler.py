"""Many independent chains at once: the rows of a state matrix, run by a compiled plan.

Every step computes the total input of a group of units for all chains with matrix
products, ``x = b + S[:, sources] @ W[sources, group]`` (eq. 1 of Hinton 2005), adds
Neal's child terms where evidence sits below, and samples the whole block with one
draw from the Generator. float32 unless the net needs float64 (see ``plan``); the same
seed gives the same numbers.

**Backends** (:mod:`neurosim.compiled.arrays`): ``backend=None`` is numpy, the
calls of the sampler before there was a torch backend (bit for bit). On torch the state
and the weight blocks live on the device (the blocks lowered to the product dtype once
per weight version), and the field, sigmoid, softmax groups, Neal's child terms and
draws run there; the draws come from a ``torch.Generator`` seeded by one integer drawn
from ``rng`` the first time it draws (and again whenever ``rng`` is replaced), so the same
seed gives the same numbers on the same backend, device and dtype. ``state`` is then a
tensor; ``rows`` is always a numpy array (a view on the CPU, a copy from a GPU).

>>> import numpy as np
>>> from neurosim import load
>>> from neurosim.compiled import compile, Chains
>>> chains = Chains(compile(load("models/earthquake_truck.toml")), np.random.default_rng(0),
...                 n_chains=1000, evidence={"house_jumps": 1})
>>> chains.run(50)
>>> m = chains.state[:, [chains.net.index["earthquake"], chains.net.index["truck"]]]
>>> bool(abs(m.mean() - 0.5) < 0.05), bool(m.sum(axis=1).max() <= 2)
(True, True)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import EvidenceError, ParameterError, ValidationError
from ..messages import Ledger
from ..numerics import log_sigmoid, sigmoid
from .arrays import Backend
from .bipartite import NUMPY, gaussian
from .plan import CompiledNet, Plan, Step

__all__ = ["Chains", "sigmoid", "log_sigmoid"]


class Chains:
    """``n_chains`` Markov chains over a compiled net, one row of ``state`` each.

    Parameters
    ----------
    net : CompiledNet
    rng : numpy.random.Generator
    n_chains : int
    evidence : {unit: 0|1}, optional
        Clamped in every chain. Per-chain clamps (training data): :meth:`clamp`.
    init : array (n_chains, n_units) of 0/1, optional; default uniform random.
    count : bool
        Count the event engine's messages in ``ledger`` (learners, audits); machines pass False.
    backend : Backend, optional
        The arrays' library, device and product dtype (:func:`~neurosim.compiled.arrays.backend`);
        None: numpy.

    ``rng`` may be replaced between updates; every draw goes through the current one
    (on torch: through a generator seeded from it, :attr:`generator`).
    """

    def __init__(self, net: CompiledNet, rng: np.random.Generator, n_chains: int = 1,
                 evidence: Mapping[str, int] | None = None, init: np.ndarray | None = None,
                 count: bool = True, backend: Backend | None = None) -> None:
        if not isinstance(rng, np.random.Generator):
            raise ValidationError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if isinstance(n_chains, bool) or not isinstance(n_chains, (int, np.integer)) or n_chains < 1:
            raise ValidationError(f"n_chains must be a positive integer, got {n_chains!r}")
        self.net, self.rng, self.m = net, rng, int(n_chains)
        self.backend = on_backend(net, backend)
        self.xp = self.backend.ops
        self.beta, self.count = 1.0, count
        self.ledger = Ledger()
        self._generator: tuple = (None, None)     # (the numpy rng, the backend's generator seeded from it)
        if init is None:
            self.state = self.backend.asarray(np.empty((self.m, net.n), dtype=net.dtype))
            self.state[:] = self._uniform(self.backend.asarray(np.empty((self.m, net.n), np.float32))) < 0.5
        else:
            init = np.asarray(init)
            if init.shape != (self.m, net.n) or not ((init == 0) | (init == 1)).all():
                raise ValidationError(f"init must be {self.m} x {net.n} states of 0 or 1, got shape "
                                      f"{init.shape}")
            self.state = self.backend.asarray(init.astype(net.dtype))
        self.clamped: set[int] = set()
        self._blocks: dict = {}
        self._groups: dict[tuple[str, ...], Step] = {}
        self._version = -1
        if evidence:
            self.clamp(evidence)

    # -- clamping ----------------------------------------------------------------------
    def clamp(self, evidence: Mapping[str, int] | None = None, *, units: Sequence[str] = (),
              values: np.ndarray | None = None) -> None:
        """Clamp units: ``evidence`` {unit: 0|1} in every chain, or ``units`` with
        per-chain ``values`` of shape (n_chains, len(units)) (one data case per chain;
        on linear units any finite numbers)."""
        if evidence:
            idx = self.net.network.evidence_indices(evidence)
            for i, v in idx.items():
                self.state[:, i] = v
            self.clamped |= set(idx)
        if len(units):
            cols = [self._unit(u) for u in units]
            values = np.asarray(values)
            if values.shape != (self.m, len(cols)) or not _states_ok(values, np.isin(cols, self.net.linear)):
                real = " (finite numbers on linear units)" if len(self.net.linear) else ""
                raise EvidenceError(f"clamped values must be {self.m} x {len(cols)} states of 0 or 1{real}, "
                                    f"got shape {values.shape}")
            self.state[:, cols] = self.xp.assignable(self.backend.asarray(values), self.state)
            self.clamped |= set(cols)

    def unclamp(self, units: Sequence[str] | None = None) -> None:
        self.clamped = set() if units is None else self.clamped - {self._unit(u) for u in units}

    def _unit(self, name: str) -> int:
        try:
            return self.net.index[name]
        except KeyError:
            raise EvidenceError(f"unknown unit {name!r} in network {self.net.network.name!r}") from None

    @property
    def plan(self) -> Plan:
        return self.net.plan(self.clamped)

    # -- running -----------------------------------------------------------------------
    def sweep(self, n: int = 1) -> None:
        """``n`` passes of the plan: every free unit updated once per pass in every chain."""
        for _ in range(n):
            for step in self.plan.steps:
                self.update(step)

    @property
    def rows(self) -> np.ndarray:
        """The sampler protocol's state rows (chains x units), as :attr:`Simulator.rows`:
        ``state`` as a numpy array (itself on numpy, a view of the tensor on the CPU)."""
        return self.backend.to_numpy(self.state)

    @property
    def generator(self):
        """The backend's generator for the current ``rng`` (numpy: ``rng`` itself; torch:
        seeded by one integer drawn from ``rng`` when first asked after ``rng`` was set)."""
        if self._generator[0] is not self.rng:
            self._generator = self.rng, self.backend.generator(self.rng)
        return self._generator[1]

    def reseed(self) -> None:
        """Seed the backend's generator afresh from ``rng`` at the next draw (numpy: no
        change): a trainer calls this at every update, so that a run resumed from a
        checkpoint of ``rng`` draws what an uninterrupted one does."""
        self._generator = (None, None)

    def _uniform(self, out):
        """``out`` filled with uniform draws on [0, 1) from :attr:`generator`."""
        return self.xp.uniform(self.generator, out)

    def run(self, sweeps: int) -> None:
        for _ in range(sweeps):
            self.sweep()

    def update(self, step: Step) -> np.ndarray:
        """Sample ``step``'s units in every chain; returns their probabilities (of a
        softmax group's units: of being the one on; of a linear unit: its mean), an
        array of the backend."""
        xp, x = self.xp, self.field(step)
        p = xp.sigmoid_(xp.copy(x) if step.groups or step.linear is not None else x)
        u = self._uniform(xp.empty_like(p))
        new = u < p if step.linear is None else xp.less(u, p, out=u)  # 0.0/1.0 beside real values
        for pos, outside in step.groups:
            p[:, pos], chosen = self._one_of_n(x[:, pos], outside)
            new[:, pos] = xp.assignable(chosen, new)
        if step.linear is not None:
            self._linear(step.linear, x, p, new)
        self._commit(step, new)
        return p

    def _linear(self, pos: np.ndarray, x, p, new) -> None:
        """Linear units at positions ``pos`` of a step (``rbmhidlinear.m``'s code units):
        their mean ``x`` into ``p``, their state ``x + z``, ``z ~ N(0, 1)``, into ``new``."""
        if self.beta != 1.0:
            self.net.network.refuse_linear(f"tempered sampling (beta = {self.beta!r})", ParameterError)
        mean = x[:, pos]
        p[:, pos] = mean
        new[:, pos] = gaussian(mean, self.generator, self.xp.empty_like(mean), self.xp.empty_like(mean))

    def _one_of_n(self, x: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A softmax group's draw (Hinton et al. 2006, section 2): unit k on with
        ``p_k = exp(x_k) / sum_l exp(x_l)`` for its inputs ``x`` (chains x units), all off
        in a chain where a member ``outside`` the draw is on; (p, new states)."""
        xp = self.xp
        p = xp.softmax(x)
        k = xp.one_of_n(x, self._uniform(xp.empty((self.m,), x)))
        new = k.reshape(-1, 1) == self.backend.asarray(np.arange(x.shape[1]))
        if len(outside):
            taken = self.state[:, outside].any(axis=1)
            p[taken], new[taken] = 0, False
        return p, new

    def update_group(self, units: Sequence[str], softmax: bool = False) -> np.ndarray:
        """Update ``units`` together in every chain and return their new states (chains x
        units, in unit order; numpy); the units of a softmax population draw one winner.
        ``softmax``: ``units`` are one softmax group whatever their populations say."""
        key = tuple(units)
        if key not in self._groups:
            self._groups[key] = self.net.step(units)
        step = self._groups[key]
        if not softmax:
            self.update(step)
            return self.rows[:, step.units]
        self._commit(step, self._one_of_n(self.field(step), np.zeros(0, dtype=np.intp))[1])
        return self.rows[:, step.units]

    def _commit(self, step: Step, new: np.ndarray) -> None:
        """Write ``step``'s new states and, if counting, what the event engine would send:
        one message per out-synapse of each unit that changed."""
        S = self.state
        if self.count:
            changed = self.backend.to_numpy((new != S[:, step.units]).sum(0))
            self.ledger.updates += self.m * len(step.index)
            self.ledger.binary += int(changed @ step.fanout)
            self.ledger.analog += int(changed @ step.analog_fanout)
        S[:, step.units] = self.xp.assignable(new, S)

    def field(self, step: Step) -> np.ndarray:
        """Total input (log-odds) of ``step``'s units in every chain, times ``beta`` (an
        array of the backend)."""
        xp, x = self.xp, None
        for rows, block in self._blocks_of(step)[0]:
            y = xp.dot(self.state[:, rows], block)
            x = y if x is None else xp.add(x, y, out=x)
        if x is None:
            x = xp.empty((self.m, len(step.index)), self.state)
            x[:] = 0
        x += self.backend.asarray(self.net.b)[step.units]
        if step.neal is not None:
            x += self._child_terms(step)
        if self.beta != 1.0:
            x *= self.beta
        return x

    def _blocks_of(self, step: Step) -> tuple[list, tuple | None]:
        """``step``'s weight blocks on the backend, copied once per weight version: the
        source runs' ``[(rows, W[rows, units])]`` in the product dtype, and Neal's
        ``(W[rows, children] in the product dtype, w[parent, child], incidence)``."""
        if self._version != self.net.version:  # weights changed: copy the blocks afresh
            self._blocks, self._version = {}, self.net.version
        if step not in self._blocks:
            W, on, lowered = self.net.W, self.backend.asarray, self.xp.lowered
            sources = [(rows, lowered(on(np.ascontiguousarray(W[rows][:, step.units])))) for rows in step.sources]
            nl = step.neal
            neal = None if nl is None else (lowered(on(W[np.ix_(nl.rows, nl.children)])),
                                            on(W[step.index[nl.parent], nl.children]), on(nl.incidence))
            self._blocks[step] = sources, neal
        return self._blocks[step]

    def _child_terms(self, step: Step) -> np.ndarray:
        """Neal (1992): for each child c of unit i in the group,
        ``log P(s_c | x_c with s_i=1) - log P(s_c | x_c with s_i=0)``."""
        (nl, S, xp), (W, w, incidence) = (step.neal, self.state, self.xp), self._blocks_of(step)[1]
        x = self.backend.asarray(self.net.b)[nl.children] + xp.dot(S[:, nl.rows], W)
        parents = step.index[nl.parent]
        x0 = x - S[:, parents] * w
        x1 = x0 + w
        sc = S[:, nl.children]
        sign = 2 * sc - 1  # log P(s_c | x) = log sigmoid(+-x)
        term = xp.log_sigmoid(sign * x1) - xp.log_sigmoid(sign * x0)
        return term @ incidence

    def sample(self, n: int, burn_in: int = 0, thin: int = 1) -> np.ndarray:
        """``n`` states from every chain after ``burn_in`` sweeps, ``thin`` sweeps apart:
        an array (n * n_chains, n_units) of 0/1 (of floats, if the net has linear units),
        chain-major within each kept sweep."""
        self.run(burn_in)
        out = np.empty((n, self.m, self.net.n), dtype=self.net.dtype if len(self.net.linear) else np.int8)
        for t in range(n):
            self.run(thin)
            out[t] = self.rows
        return out.reshape(n * self.m, self.net.n)


def _states_ok(values: np.ndarray, linear: np.ndarray) -> bool:
    """Every column of ``values`` holds 0s and 1s, or, where ``linear``, finite numbers."""
    binary = values[:, ~linear]
    return bool(((binary == 0) | (binary == 1)).all()) and (
        not linear.any() or values.dtype.kind in "biuf" and bool(np.isfinite(values[:, linear]).all()))


def on_backend(net: CompiledNet, backend: Backend | None) -> Backend:
    """``backend`` (None: numpy), or a ParameterError if ``net`` needs float64 and the
    backend computes in float32 or bfloat16 (torch)."""
    if backend is None or backend.name == "numpy":
        return NUMPY
    if net.dtype != np.float32:
        raise ParameterError(f"network {net.network.name!r} is compiled to {net.dtype} (compile chooses it where a "
                             f"unit's |bias| + sum |weight in| is over 1e4); the torch backend computes in "
                             f"float32 or bfloat16: use the numpy backend")
    return backend
