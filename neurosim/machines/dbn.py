"""Deep belief nets (Hinton, Osindero and Teh 2006; Hinton 2005, sections 5-8).

A DBN with layers ``n_0 (visible), n_1, ..., n_{L-1} (pen), n_top`` and ``n_labels``
label units is a sigmoid belief net ``n_{L-1} -> ... -> n_0`` (generative weights,
top-down) under an RBM, the top-level associative memory, whose visible side is the
pen layer together with the label units (a softmax group: exactly one label is on).
Each directed layer also has recognition weights (bottom-up) for fast inference.

**Greedy learning** (section 6 of the 2005 paper): the first RBM models the data; its
hidden probabilities (or samples) are the data for the next; the last RBM sees the pen
activities and the labels. Recognition and generative weights start tied: ``R_l = W_l``
and ``G_l = W_l^T``, with the complementary-prior argument of section 5.1 making the
bottom-up pass exact for the RBM just learned.

**Up-down fine-tuning** (contrastive wake-sleep; Hinton et al. 2006, appendix B;
the review, section 6): a stochastic bottom-up pass with the recognition weights;
the generative weights learn by the delta rule (eq. 7) to reconstruct each layer from
the one above; the top RBM learns by CD-k from the wake pen states and the labels;
a stochastic top-down pass from the end of the CD chain follows, and the recognition
weights learn by the delta rule with the roles reversed (eq. 11).

**Generative classification**: an up-pass with the recognition weights (probabilities)
to the pen layer, then the label whose top-RBM free energy with that label clamped is
lowest, ``F(p, y) = -b_pen.p - b_y - sum_j softplus(c_j + p.W_j + U_yj)``: exact,
because summing out the top hidden units of an RBM is exact.

**Generation**: alternating Gibbs sampling in the top RBM with a label clamped, then a
top-down pass with the generative weights.

**Backprop fine-tuning** (Hinton and Salakhutdinov 2006, ``backpropclassify.m``):
the recognition stack plus the pen-to-top weights of the top RBM become a
feed-forward net with a softmax output layer, trained by cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..compiled import bipartite
from ..compiled.bipartite import CD, Block
from ..errors import ParameterError, ValidationError
from ..network import Network
from ..population import Population, Projection
from ..numerics import sigmoid, softmax, softplus as _softplus
from .base import Machine

__all__ = ["DeepBeliefNet", "sigmoid", "softmax", "LABEL", "TOP"]

LABEL, TOP = "label", "top"   # population names of to_network (the lower layers: v, h1, h2, ...)


def _updown_cd(k: int) -> CD:
    """The top RBM's CD-k in up-down (the appendix's pseudo-code): sampled hidden states in
    both phases, sampled pen states, label probabilities; input ``vW + yU + c``."""
    return CD(k, samples=True, labels_first=True, summed_differences=True)


def _bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(p.shape, dtype=p.dtype) < p).astype(p.dtype)


@dataclass(repr=False)
class DeepBeliefNet(Machine):
    """The parameters of a DBN (see the module doc) and what it does with them.

    ``sizes``: ``(n_visible, n_1, ..., n_pen, n_top)``. Lists run bottom-up: ``R[l]``
    (n_l x n_{l+1}) and ``r[l]`` are the recognition weights and biases into layer
    l+1, ``G[l]`` (n_{l+1} x n_l) and ``g[l]`` the generative weights and biases into
    layer l. The top RBM: ``W`` (n_pen x n_top), ``U`` (n_labels x n_top), visible
    biases ``b_pen``, ``b_lab``, hidden biases ``c``.

    Its parameters (:meth:`get_params`) are ``sizes`` and ``n_labels``; :meth:`save`
    writes ``.npz`` (:meth:`state_dict`) or a model file (``.toml``: :meth:`to_network`,
    TOML beside an ``.npz`` at this scale).
    """

    sizes: tuple[int, ...]
    n_labels: int
    R: list[np.ndarray] = field(default_factory=list)
    r: list[np.ndarray] = field(default_factory=list)
    G: list[np.ndarray] = field(default_factory=list)
    g: list[np.ndarray] = field(default_factory=list)
    W: np.ndarray | None = None
    U: np.ndarray | None = None
    b_pen: np.ndarray | None = None
    b_lab: np.ndarray | None = None
    c: np.ndarray | None = None

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ParameterError(f"sizes must name at least a visible and a top layer, each >= 1 "
                                 f"unit; got {self.sizes!r}")
        if int(self.n_labels) < 0:
            raise ParameterError(f"n_labels must be >= 0, got {self.n_labels!r}")
        self.sizes, self.n_labels = sizes, int(self.n_labels)

    # -- building ------------------------------------------------------------------------
    @property
    def n_directed(self) -> int:
        """Directed layers (pairs below the top RBM)."""
        return len(self.sizes) - 2

    def add_rbm(self, W: np.ndarray, b_visible: np.ndarray, c_hidden: np.ndarray) -> None:
        """Stack a trained lower RBM (``W``: n_l x n_{l+1}) with tied weights."""
        dt = np.float32
        self.R.append(np.array(W, dtype=dt))
        self.r.append(np.array(c_hidden, dtype=dt))
        self.G.append(np.array(W, dtype=dt).T.copy())
        self.g.append(np.array(b_visible, dtype=dt))

    def set_top(self, W: np.ndarray, U: np.ndarray, b_pen: np.ndarray, b_lab: np.ndarray,
                c: np.ndarray) -> None:
        dt = np.float32
        self.W, self.U = np.array(W, dtype=dt), np.array(U, dtype=dt)
        self.b_pen, self.b_lab, self.c = (np.array(x, dtype=dt) for x in (b_pen, b_lab, c))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter as a flat dict of arrays (checkpoints, ``np.savez``)."""
        out = {"sizes": np.array(self.sizes), "n_labels": np.array(self.n_labels)}
        for name in ("R", "r", "G", "g"):
            out.update({f"{name}{i}": a for i, a in enumerate(getattr(self, name))})
        for name in ("W", "U", "b_pen", "b_lab", "c"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_state_dict(cls, d: dict) -> "DeepBeliefNet":
        dbn = cls(tuple(int(s) for s in d["sizes"]), int(d["n_labels"]))
        for name in ("R", "r", "G", "g"):
            getattr(dbn, name).extend(np.array(d[f"{name}{i}"]) for i in range(len(dbn.sizes))
                                      if f"{name}{i}" in d)
        for name in ("W", "U", "b_pen", "b_lab", "c"):
            if name in d:
                setattr(dbn, name, np.array(d[name]))
        dbn._check_shapes()
        return dbn

    def _check_shapes(self) -> None:
        """A ParameterError naming the first array whose shape is not its layers' (a
        corrupt or foreign state dict)."""
        s, top = self.sizes, self.sizes[-1]
        expected = {"W": (s[-2], top), "U": (self.n_labels, top), "b_pen": (s[-2],), "b_lab": (self.n_labels,),
                    "c": (top,)}
        arrays = {name: getattr(self, name) for name in expected}
        for l in range(self.n_directed):
            expected.update({f"R{l}": (s[l], s[l + 1]), f"r{l}": (s[l + 1],), f"G{l}": (s[l + 1], s[l]),
                             f"g{l}": (s[l],)})
        for name in ("R", "r", "G", "g"):
            if len(getattr(self, name)) > self.n_directed:
                raise ParameterError(f"{len(getattr(self, name))} arrays {name}0, {name}1, ... for "
                                     f"{self.n_directed} directed layers")
            arrays.update({f"{name}{l}": a for l, a in enumerate(getattr(self, name))})
        for name, a in arrays.items():
            if a is not None and a.shape != expected[name]:
                raise ParameterError(f"{name} has shape {a.shape}; layers {s} need {expected[name]}")

    @classmethod
    def _param_names(cls) -> list[str]:
        return ["sizes", "n_labels"]

    def _check_fitted(self) -> None:
        self._check_ready()

    def _arrays(self) -> dict[str, np.ndarray]:
        return self.state_dict()

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "DeepBeliefNet":
        return cls.from_state_dict({**arrays, "sizes": np.array(params["sizes"]),
                                    "n_labels": np.array(params["n_labels"])})

    def _check_ready(self) -> None:
        if self.W is None or len(self.R) != self.n_directed:
            raise ParameterError(f"this DBN has {len(self.R)} of {self.n_directed} directed layers"
                                 f"{'' if self.W is not None else ' and no top RBM'}: train it first")

    # -- the Network ---------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Population names of the layers below the top: ``v``, ``h1``, ..., the pen layer last."""
        return ["v"] + [f"h{l}" for l in range(1, len(self.sizes) - 1)]

    def to_network(self, name: str = "dbn", description: str | None = None) -> Network:
        """The DBN as a population Network (the module doc's model, in the kinds of
        :mod:`neurosim.network`): populations ``v`` (visible, layer 0), ``h1`` ... (the pen
        layer last), ``label`` (role label, the pen layer's layer) and ``top``; directed
        projections ``h{l+1}->h{l}`` (``G``, generative biases as the lower population's
        ``bias``), recognition projections ``h{l}->h{l+1}`` (``R``, ``r`` as the upper
        population's ``recognition_bias``), and the top RBM as symmetric projections
        ``pen<->top`` (``W``) and ``label<->top`` (``U``) with biases ``b_pen``, ``b_lab``,
        ``c``; the label population is a softmax group (one label on), as in the paper. The
        compiled plan of this net is Gibbs on the top RBM, then an ancestral pass down:
        :meth:`generate`. Built from the arrays, with no work per synapse; :meth:`from_network` inverts it bit
        for bit (float32 parameters, as trained)."""
        self._check_ready()
        names, n_dir = self.layer_names(), self.n_directed
        biases = list(self.g) + [self.b_pen]
        pops = [Population(nm, _unit_names(nm, n), biases[l], "visible" if l == 0 else "hidden", l,
                           recognition_bias=None if l == 0 else self.r[l - 1])
                for l, (nm, n) in enumerate(zip(names, self.sizes[:-1]))]
        if self.n_labels:
            pops.append(Population(LABEL, _unit_names(LABEL, self.n_labels), self.b_lab, "label", n_dir,
                                   "softmax"))
        pops.append(Population(TOP, _unit_names(TOP, self.sizes[-1]), self.c, "hidden", n_dir + 1))
        projs = [Projection(f"{names[l + 1]}->{names[l]}", names[l + 1], names[l], self.G[l], "directed")
                 for l in reversed(range(n_dir))]
        projs += [Projection(f"{names[l]}->{names[l + 1]}", names[l], names[l + 1], self.R[l], "recognition")
                  for l in range(n_dir)]
        projs.append(Projection(f"{names[-1]}<->{TOP}", names[-1], TOP, self.W, "symmetric"))
        if self.n_labels:
            projs.append(Projection(f"{LABEL}<->{TOP}", LABEL, TOP, self.U, "symmetric"))
        if description is None:
            description = (f"deep belief net {'-'.join(map(str, self.sizes))} + {self.n_labels} labels "
                           "(Hinton, Osindero and Teh 2006): a top RBM over the pen layer and labels, "
                           "directed generative and recognition projections below")
        return Network.from_populations(pops, projs, name=name, description=description)

    @classmethod
    def from_network(cls, net: Network, **params: Any) -> "DeepBeliefNet":
        """The inverse of :meth:`to_network`: populations in layers 0, 1, ... (one a layer,
        plus a ``label`` population of role label beside the pen layer), the top layer
        joined to the pen layer and the labels by symmetric projections, adjacent lower
        layers by a directed and a recognition projection. The labels may be softmax or
        logistic (files exported before they were marked softmax). Anything else is refused,
        naming the population or projection. ``params`` (``sizes``, ``n_labels``: as
        :meth:`load` passes them) must match the net."""
        if not isinstance(net, Network):
            raise ValidationError(f"from_network needs a neurosim Network, got {type(net).__name__}")
        where = f"network {net.name!r}"
        labels = [p for p in net.populations if p.role == "label"]
        if len(labels) > 1:
            raise ValidationError(f"{where}: populations {labels[0].name!r} and {labels[1].name!r} both "
                                  "hold labels; a DBN has one label population")
        layers = sorted((p for p in net.populations if p.role != "label"), key=lambda p: (p.layer is None, p.layer))
        if [p.layer for p in layers] != list(range(len(layers))) or len(layers) < 2:
            raise ValidationError(f"{where}: a DBN needs one population in each layer 0, 1, ..., top; "
                                  f"found layers {[(p.name, p.layer) for p in layers]}")
        blocks = {(q.pre, q.post, q.kind): q for q in net.projections}
        if len(blocks) != len(net.projections):
            raise ValidationError(f"{where}: two projections of one kind join the same populations")

        def block(pre: Population, post: Population, kind: str) -> np.ndarray:
            q = blocks.pop((pre.name, post.name, kind), None)
            if q is None or q.mask is not None or q.reverse is not None or q.delay:
                what = "missing" if q is None else "masked, asymmetric or delayed"
                raise ValidationError(f"{where}: the {kind} projection {pre.name} -> {post.name} is {what}; "
                                      "a DBN needs a dense one")
            return q.weights

        *lower, top = layers
        dbn = cls(tuple(p.size for p in layers), labels[0].size if labels else 0)
        for l in range(len(lower) - 1):
            a, b = lower[l], lower[l + 1]
            if b.recognition_bias is None or np.isnan(b.recognition_bias).any():
                raise ValidationError(f"{where}: population {b.name!r} has no recognition bias")
            dbn.add_rbm(block(a, b, "recognition"), a.bias, b.recognition_bias)
            dbn.G[l] = block(b, a, "directed").astype(np.float32)
        U = block(labels[0], top, "symmetric") if labels else np.zeros((0, top.size))
        dbn.set_top(block(lower[-1], top, "symmetric"), U, lower[-1].bias,
                    labels[0].bias if labels else np.zeros(0), top.bias)
        for key, value in params.items():
            if key not in cls._param_names() or value != dbn.get_params()[key]:
                raise ParameterError(f"{key}={value!r} does not match {where} (a DBN with sizes "
                                     f"{dbn.sizes} and {dbn.n_labels} labels)")
        if blocks:
            extra = next(iter(blocks.values()))
            raise ValidationError(f"{where}: projection {extra.name!r} ({extra.kind} {extra.pre} -> "
                                  f"{extra.post}) has no place in a DBN")
        return dbn

    # -- inference -----------------------------------------------------------------------
    def up(self, X: np.ndarray, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """Bottom-up pass with the recognition weights: every layer up to the pen layer,
        probabilities (``rng`` None) or samples."""
        layers = [np.asarray(X, dtype=np.float32)]
        for R, r in zip(self.R, self.r):
            p = sigmoid(layers[-1] @ R + r)
            layers.append(p if rng is None else _bernoulli(p, rng))
        return layers

    def label_free_energies(self, pen: np.ndarray) -> np.ndarray:
        """``F(pen, y)`` of the top RBM for every case and label (n x n_labels)."""
        x = pen @ self.W + self.c
        out = np.empty((len(pen), self.n_labels), dtype=np.float64)
        for y in range(self.n_labels):
            out[:, y] = -self.b_lab[y] - _softplus(x + self.U[y]).sum(axis=1)
        return out - (pen @ self.b_pen)[:, None]

    def predict(self, X: np.ndarray, batch: int = 1000) -> np.ndarray:
        """Generative classification: the label of lowest free energy after an up-pass."""
        self._check_ready()
        return np.concatenate([self.label_free_energies(self.up(X[i:i + batch])[-1]).argmin(axis=1)
                               for i in range(0, len(X), batch)])

    # -- generation ----------------------------------------------------------------------
    def down(self, top_pen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Top-down pass with the generative weights from pen states; visible probabilities."""
        s = top_pen
        for l in reversed(range(self.n_directed)):
            p = sigmoid(s @ self.G[l] + self.g[l])
            s = p if l == 0 else _bernoulli(p, rng)
        return s

    def generate(self, labels: Sequence[int], rng: np.random.Generator, n_steps: int = 1000,
                 record_every: int | None = None) -> np.ndarray | list[np.ndarray]:
        """Images with each label clamped: :meth:`fantasies`, then a down pass (visible
        probabilities). With ``record_every`` returns the images every that many steps (a film)."""
        frames = [self.down(pen, rng) for pen in self.fantasies(labels, rng, n_steps, record_every)]
        return frames if record_every else frames[-1]

    def fantasies(self, labels: Sequence[int], rng: np.random.Generator, n_steps: int,
                  record_every: int | None = None) -> list[np.ndarray]:
        """Pen states of alternating Gibbs sampling (top units, then pen units: eq. 1) in the
        top RBM, a chain per label clamped, from random states: ``compiled.Chains`` on
        :func:`~neurosim.machines.dbn_readout.top_rbm`; every ``record_every`` steps, else the last."""
        from ..compiled import Chains, compile
        from .dbn_readout import top_rbm

        self._check_ready()
        net = top_rbm(self.to_network())
        chains = Chains(compile(net), rng, len(labels))
        chains.clamp(units=net.population(LABEL).units, values=np.eye(self.n_labels)[np.asarray(labels)])
        pen, top = (net.population(p).units for p in (self.layer_names()[-1], TOP))
        frames = []
        for step in range(1, n_steps + 1):
            chains.update_group(top)
            states = chains.update_group(pen)
            if step % (record_every or n_steps) == 0:
                frames.append(states.astype(np.float32))
        return frames

    # -- up-down fine-tuning -------------------------------------------------------------
    def up_down_step(self, X: np.ndarray, Y: np.ndarray, lr: float, k: int,
                     rng: np.random.Generator, momentum: float = 0.0, weight_decay: float = 0.0,
                     velocity: dict[str, np.ndarray] | None = None,
                     chains: dict[str, np.ndarray] | None = None,
                     directed_lr: float | None = None) -> None:
        """One contrastive wake-sleep update on a minibatch (``Y`` one-hot labels).
        Each change is the mean over the minibatch of the delta rule (eq. 7 wake, eq. 11
        sleep) or of CD-k (eq. 6) at the top: the appendix's pseudo-code. Hinton et al.
        (2006, section 6.1) also used momentum and weight decay: with ``velocity`` (a dict
        this method fills, keyed like :meth:`state_dict`) each change becomes
        ``v = momentum v + change - lr weight_decay w`` (weights only) and ``w += v``.
        ``chains`` (a dict this method fills): the top RBM's negative phase continues
        the previous step's chains instead of starting at the wake states (persistent
        CD, Tieleman 2008: not in the paper), so the sleep phase starts from fantasies; a
        minibatch of another size runs plain CD-k and leaves the chains alone.
        ``directed_lr``: the rate of the directed layers' generative and recognition
        weights, where it differs from the top RBM's ``lr`` (the appendix's pseudo-code
        uses one rate "for simplicity")."""
        self._check_ready()
        if momentum and velocity is None:
            raise ParameterError(f"momentum {momentum} needs a velocity dict to keep between steps "
                                 "(pass velocity={})")
        m = len(X)
        directed_lr = lr if directed_lr is None else directed_lr
        directed_rate = directed_lr / m
        wake = self.up(X, rng)                               # wake: sampled bottom-up
        top, cd = Block(self.W, self.b_pen, self.c, self.U, self.b_lab), _updown_cd(k)
        persist = chains is not None and chains.get("top", np.empty((m, len(self.c)))).shape == (m, len(self.c))
        chain = chains.get("top") if persist else None
        self._cd_buffers = buf = bipartite.buffers(getattr(self, "_cd_buffers", None), top, m, m)
        stats = bipartite.statistics(top, wake[-1], cd, rng, buf, Y, chain)   # CD-k in the top RBM
        if persist and chain is None:
            chains["top"] = stats.H[m:].copy()           # the chain advanced in place
        sleep = [None] * self.n_directed + [stats.V[m:]]     # sleep: top-down from the chain
        for l in reversed(range(self.n_directed)):
            p = sigmoid(sleep[l + 1] @ self.G[l] + self.g[l])
            sleep[l] = p if l == 0 else _bernoulli(p, rng)
        change = {}
        for l in range(self.n_directed):                     # generative: eq. 7 on wake states
            err = wake[l] - sigmoid(wake[l + 1] @ self.G[l] + self.g[l])
            err *= directed_rate
            change[f"G{l}"], change[f"g{l}"] = wake[l + 1].T @ err, err.sum(axis=0)
        d, _ = bipartite.change(top, stats, cd, lr, buf)   # top RBM: eq. 6, both phases in one product
        change.update(W=d["W"], U=d["U"], b_pen=d["b"], b_lab=d["b_lab"], c=d["c"])
        for l in range(self.n_directed):                     # recognition: eq. 11 on sleep states
            err = sleep[l + 1] - sigmoid(sleep[l] @ self.R[l] + self.r[l])
            err *= directed_rate
            change[f"R{l}"], change[f"r{l}"] = sleep[l].T @ err, err.sum(axis=0)
        self._apply(change, {"W": lr * weight_decay, "U": lr * weight_decay,
                             "G": directed_lr * weight_decay, "R": directed_lr * weight_decay},
                    momentum, velocity)

    def up_down_flops(self, k: int) -> float:
        """Floating-point operations of matrix products in :meth:`up_down_step`, per case,
        with CD-k: six passes through the directed layers (wake up-pass, sleep down-pass,
        the predictions and changes of both phases) and ``2k + 3`` through the top RBM (its
        hidden units from the wake pen, ``k`` Gibbs steps of two products each, and the
        change, both phases in one product per block)."""
        lower = sum(a * b for a, b in zip(self.sizes[:-2], self.sizes[1:-1]))
        top = (self.sizes[-2] + self.n_labels) * self.sizes[-1]
        return 2.0 * (6 * lower + (2 * k + 3) * top)

    def _apply(self, change: dict[str, np.ndarray], decay: dict[str, float], momentum: float,
               velocity: dict[str, np.ndarray] | None) -> None:
        """``decay``: the weight cost times the rate, by a weight's initial (biases: none)."""
        params = self.state_dict()                           # the arrays themselves, by name
        for name, d in change.items():
            v = None if velocity is None else velocity.setdefault(name, np.zeros_like(params[name]))
            bipartite.apply_change(params[name], d, v, momentum, decay.get(name[0], 0.0))


def _unit_names(population: str, n: int) -> tuple[str, ...]:
    return tuple(f"{population}_{i}" for i in range(n))


# -- the greedy variational bound --------------------------------------------------------------
def _states(n: int) -> np.ndarray:
    if n > 16:
        raise ParameterError(f"the exact greedy bound enumerates 2^{n} states of a layer; at most 2^16")
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def greedy_bound(rbms: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], V: np.ndarray) -> np.ndarray:
    """The variational bound on ``log p(v)`` of the DBN made by stacking ``rbms``
    (bottom first; each ``(W, b, c)`` with ``W``: n_below x n_above), per row of ``V``:

        log p(v) >= G_1(v) + sum_{l=1}^{L-1} < G_{l+1}(h_l) - G~_l(h_l) >_{Q(h_l | v)} - log Z_L

    (the slides' "variational bound"; Hinton et al. 2006, section 4), where ``G_l`` is
    the negative free energy of RBM l as a function of its visible layer, ``G~_l`` as a
    function of its hidden layer, and ``Q(h_l | v)`` the factorial up-pass through the
    RBMs' weights. Computed exactly: every hidden layer is enumerated (at most 16 units)
    and ``log Z_L`` too, so use it on small models. With one RBM it is ``log p(v)``."""
    from .ais import exact_log_partition

    W1, b1, c1 = (np.asarray(x, dtype=np.float64) for x in rbms[0])
    V = np.asarray(V, dtype=np.float64)
    bound = V @ b1 + _softplus(V @ W1 + c1).sum(axis=1)            # G_1(v)
    Q = None                                                        # Q(h_l | v): rows x 2^n_l
    below = V
    for l in range(len(rbms) - 1):
        W, b, c = (np.asarray(x, dtype=np.float64) for x in rbms[l])
        W2, b2, c2 = (np.asarray(x, dtype=np.float64) for x in rbms[l + 1])
        H = _states(W.shape[1])
        P = sigmoid(below @ W + c)                                  # (states below or rows) x n_l
        T = np.exp(H @ np.log(np.clip(P, 1e-300, None)).T + (1 - H) @ np.log(np.clip(1 - P, 1e-300, None)).T).T
        Q = T if Q is None else Q @ T                               # rows x 2^n_l
        g_next = H @ b2 + _softplus(H @ W2 + c2).sum(axis=1)        # G_{l+1}(h_l)
        g_this = H @ c + _softplus(H @ W.T + b).sum(axis=1)         # G~_l(h_l)
        bound += Q @ (g_next - g_this)
        below = H
    return bound - exact_log_partition(*rbms[-1])
