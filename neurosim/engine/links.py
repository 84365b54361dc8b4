"""The event engine's wiring: populations' input vectors and links between them.

A :class:`PopState` is a population in the engine: its running input vector
``input[j] = sum_i w_ij s_i`` (float64, over the presynaptic states as they last
arrived), and its biases. A :class:`Link` is one direction of one projection:
``W[i, :]`` is the row of synapses from unit i of pre to post (the reverse block,
transposed, for the backward direction of a symmetric projection). A change of state
of unit i is one slice-add, ``input += (new - old) * W[i, :]`` (eq. 1's running sum),
and the ledger counts one binary message per synapse of the row (a masked-out synapse
carries none); in mean-field mode the state is a probability ``q`` and the same sum
carries it as analog messages. Weights are copies: learning changes them here and
``write_back`` copies them out.

For Neal's Gibbs sampling (directed links in Gibbs mode) a link also holds what the
parents have heard from their children: ``up_state[j]``, ``up_logit[j]`` (the child's
state and log-odds ``b_j + input_j`` as last sent up), and every receiver of a binary
message on it sends its log-odds to all its parents (analog messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["PopState", "Link"]


class PopState:
    """One population in the engine: names, biases, running input, links in."""

    def __init__(self, name: str, units: tuple[str, ...], bias: np.ndarray, offset: int) -> None:
        self.name, self.units, self.offset = name, units, offset
        self.bias = np.array(bias, dtype=np.float64)
        self.input = np.zeros(len(units))
        self.n_parents = np.zeros(len(units), dtype=np.int64)   # directed synapses in (Gibbs mode)
        self.links_in: list[Link] = []


class Link:
    """Synapses ``pre -> post`` of one projection, one direction: ``W[i, j]`` where
    ``mask[i, j]`` (None: everywhere), delivered ``delay`` sweeps after a change."""

    def __init__(self, sim: Simulator, name: str, pre: PopState, post: PopState, W: np.ndarray,
                 mask: np.ndarray | None, delay: float, neal: bool) -> None:
        self.sim, self.name, self.pre, self.post = sim, name, pre, post
        self.W, self.mask, self.delay = W, mask, delay
        self.rows = list(W)                      # views W[i, :] (hot path: made once)
        self.last = [0] * W.shape[0]             # pre states as last delivered (a list: hot path)
        self.count = np.full(W.shape[0], W.shape[1]) if mask is None else mask.sum(axis=1)
        self.cols = None if mask is None else [np.flatnonzero(row) for row in mask]
        self.neal = neal                         # a directed link in Gibbs mode
        self.up_state = np.zeros(W.shape[1]) if neal else None
        self.up_logit = post.bias.copy() if neal else None
        self.analog_row: np.ndarray | None = None  # set by ``relay_counts`` once all links exist
        post.links_in.append(self)
        if neal:
            post.n_parents += W.shape[0] if mask is None else mask.sum(axis=0)

    def relay_counts(self) -> None:
        """Analog messages a binary message from each pre unit sets off: its receivers'
        parents (Neal's Gibbs)."""
        if self.neal:
            n_parents = self.post.n_parents
            self.analog_row = (np.full(self.W.shape[0], n_parents.sum()) if self.mask is None
                               else self.mask.astype(np.int64) @ n_parents)

    def present(self, rows, cols) -> np.ndarray:
        """Which synapses exist in the block ``[rows][:, cols]`` (bool)."""
        if self.mask is None:
            return np.ones((len(rows), self.W.shape[1] if isinstance(cols, slice) else len(cols)), dtype=bool)
        return self.mask[np.ix_(rows, cols)] if not isinstance(cols, slice) else self.mask[rows]

    def rows_to(self, j: int) -> list[int]:
        """Pre units with a synapse onto post unit j."""
        return list(range(self.W.shape[0])) if self.mask is None else np.flatnonzero(self.mask[:, j]).tolist()

    def deliver(self, i: int, new: int) -> None:
        """Pre unit i's state ``new`` arrives: ``input += (new - last) * W[i, :]`` (a bit,
        or a mean-field probability)."""
        dv = new - self.last[i]
        self.last[i] = new
        inp = self.post.input
        if dv == 1:
            np.add(inp, self.rows[i], out=inp)
        elif dv == -1:
            np.subtract(inp, self.rows[i], out=inp)
        elif dv:
            np.add(inp, dv * self.rows[i], out=inp)
        if self.neal:
            self._relay(i)

    def _relay(self, i: int) -> None:
        """Every receiver of row i sends its new log-odds to all its parents."""
        sim, post = self.sim, self.post
        cols = self.cols[i] if self.cols is not None else slice(None)
        x = post.bias[cols] + post.input[cols]
        sim.ledger.analog += int(self.analog_row[i])
        for link in post.links_in:
            if not link.neal:
                continue
            if link.delay:
                sim.after(link.delay, link.up_logit.__setitem__, cols, x)
            else:
                link.up_logit[cols] = x
        if sim.on_message is not None:
            js = range(len(post.units)) if self.cols is None else self.cols[i].tolist()
            for j in js:
                sim.on_message(sim.env.now, post.offset + j, "analog")
