"""Deep belief nets (Hinton, Osindero and Teh 2006; Hinton 2005, sections 5-8).

Layers ``n_0 (visible), n_1, ..., n_pen, n_top`` and ``n_labels`` labels: a sigmoid
belief net ``pen -> ... -> v`` (generative weights ``G``, recognition weights ``R``)
under a top RBM over the pen layer and a softmax label group (one label on).

- Greedy learning: stacked RBMs with tied weights, ``R_l = W_l``, ``G_l = W_l^T``.
- Up-down fine-tuning (appendix B): a sampled up-pass; ``G`` learns by eq. 7 on the
  wake states, the top RBM by CD-k (eq. 6), ``R`` by eq. 11 on a down-pass from the
  chain's end (:meth:`DeepBeliefNet.up_down_step`).
- Classification: an up-pass of probabilities, then the label of lowest free energy
  ``F(p, y) = -b_pen.p - b_y - sum_j softplus(c_j + p.W_j + U_yj)``.
- Generation: Gibbs in the top RBM with a label clamped, then a down-pass.
- :func:`greedy_bound`: the variational bound of the greedy stack (section 4).

Recipes, history and the reasons behind the code: docs/machines/dbn.md.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..compiled import arrays, bipartite
from ..compiled.bipartite import CD, Block
from ..errors import NeurosimError, ParameterError, ValidationError
from ..inference.exact import all_states
from ..network import Network
from ..population import Population, Projection
from ..numerics import sigmoid, softmax, softplus as _softplus
from .base import Machine

__all__ = ["DeepBeliefNet", "upgrade_labels", "greedy_bound", "sigmoid", "softmax", "LABEL", "TOP"]

LABEL, TOP = "label", "top"   # population names of to_network (the lower layers: v, h1, h2, ...)


def _updown_cd(k: int, sample_labels: bool = False, centering: tuple[float, float] | None = None) -> CD:
    """The top RBM's CD-k in up-down (appendix B): sampled hidden and pen states, label
    probabilities (or one-hot samples), input ``vW + yU + c``; centered at the rates
    ``centering`` if given."""
    return CD(k, samples=True, labels_first=True, summed_differences=True, sample_labels=sample_labels,
              centering=centering)


NUMPY = bipartite.NUMPY.ops


def _layer(x: Any, W: Any, b: Any, rng: Any, xp: arrays.NumpyOps | arrays.TorchOps) -> Any:
    """``sigmoid(x W + b)`` (products by ``xp``: numpy's ``x @ W``, torch's in its product
    dtype), or with ``rng`` (the arrays' generator) binary states ``u < p`` drawn from it,
    one uniform per unit, in place: a new array of the arrays' library."""
    p = xp.dot(x, W)
    p += b
    xp.sigmoid_(p)
    return p if rng is None else bipartite.bernoulli(p, rng, xp.empty_like(p), p)


@dataclass(repr=False)
class DeepBeliefNet(Machine):
    """A DBN's parameters (module doc). ``sizes``: ``(n_visible, n_1, ..., n_pen, n_top)``.
    Bottom-up lists: ``R[l]`` (n_l x n_{l+1}), ``r[l]`` recognition weights and biases
    into layer l+1; ``G[l]`` (n_{l+1} x n_l), ``g[l]`` generative ones into layer l. The
    top RBM: ``W`` (n_pen x n_top), ``U`` (n_labels x n_top), biases ``b_pen``,
    ``b_lab``, ``c``. :meth:`save` writes ``.npz`` or a model file (:meth:`to_network`)."""

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
        """Set the labelled top RBM (float32 copies)."""
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

    def _arrays(self) -> dict[str, np.ndarray]:
        return self.state_dict()

    @classmethod
    def _from_arrays(cls, arrays: dict, params: dict, fitted: dict) -> "DeepBeliefNet":
        return cls.from_state_dict({**arrays, "sizes": np.array(params["sizes"]),
                                    "n_labels": np.array(params["n_labels"])})

    def _check_fitted(self) -> None:
        """A ParameterError unless every layer and the top RBM are trained."""
        if self.W is None or len(self.R) != self.n_directed:
            raise ParameterError(f"this DBN has {len(self.R)} of {self.n_directed} directed layers"
                                 f"{'' if self.W is not None else ' and no top RBM'}: train it first")

    # -- training ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, recipe: Any = "hinton2006", checkpoint: str | Path | None = None,
            checkpoint_s: float = 180.0, random_state: int | None = None, verbose: int = 0,
            **settings: Any) -> "DeepBeliefNet":
        """Every stage of ``recipe`` (a name in :data:`~.dbn_train.PRESETS` or a
        :class:`~.dbn_train.Recipe`; ``settings`` override its fields, ``random_state``
        its seed) with this DBN's layers, on ``X`` (n x ``sizes[0]``, in [0, 1]) and
        labels ``y`` below ``n_labels``, by :class:`~.dbn_train.Trainer`: the weights of
        ``neurosim dbn train`` with that recipe. ``checkpoint``: the run's directory,
        resumed if it holds a checkpoint (None: a temporary one, removed after).
        ``backprop_``: the fine-tuned classifier (None without backprop epochs);
        ``progress_``: stage seconds and learning curves."""
        from .dbn_train import Trainer, recipe_for

        r = recipe_for(self, recipe, random_state, settings)
        if r.unused_cd():
            warnings.warn(f"updown_cd {list(r.unused_cd())}: up-down runs epochs 0 to {r.updown_epochs - 1}, "
                          "so these entries are never used", stacklevel=2)
        log = None if verbose else (lambda msg: None)                # None: the Trainer's stderr
        with tempfile.TemporaryDirectory(prefix="neurosim-dbn-") as scratch:
            trainer = Trainer(r, X, y, checkpoint or scratch, checkpoint_s if checkpoint else math.inf, log)
            if trainer.X.shape[1] != self.sizes[0]:
                raise ParameterError(f"X has {trainer.X.shape[1]} columns; this DBN has {self.sizes[0]} visible units")
            trained = trainer.run()
        vars(self).update({f.name: getattr(trained, f.name) for f in fields(self)})
        self.backprop_ = trainer.p if r.backprop_epochs else None
        self.progress_ = trainer.progress
        return self

    # -- the Network ---------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Population names of the layers below the top: ``v``, ``h1``, ..., the pen layer last."""
        return ["v"] + [f"h{l}" for l in range(1, len(self.sizes) - 1)]

    def to_network(self, name: str = "dbn", description: str | None = None) -> Network:
        """The DBN as a population Network: populations ``v``, ``h1``, ... (pen last),
        ``label`` (a softmax group in the pen's layer) and ``top``; directed projections
        ``h{l+1}->h{l}`` (``G``; ``g`` the lower population's bias), recognition ones
        ``h{l}->h{l+1}`` (``R``; ``r`` the upper's ``recognition_bias``) and the symmetric
        ``pen<->top`` (``W``) and ``label<->top`` (``U``). Built from the arrays;
        :meth:`from_network` inverts it bit for bit (docs/machines/dbn.md)."""
        self._check_fitted()
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
        """The inverse of :meth:`to_network`: one population a layer (plus one of role
        label), symmetric projections at the top, a directed and a recognition projection
        between adjacent lower layers; labels softmax or logistic (older files). Anything
        else is refused, naming the population or projection; ``params`` (``sizes``,
        ``n_labels``, as :meth:`load` passes them) must match the net."""
        if not isinstance(net, Network):
            raise ValidationError(f"from_network needs a neurosim Network, got {type(net).__name__}")
        net.refuse_linear("a deep belief net (logistic units)")
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
        return self._up_layers(np.asarray(X, dtype=np.float32), rng, NUMPY, self.R, self.r)

    @staticmethod
    def _up_layers(X: Any, rng: Any, xp: arrays.NumpyOps | arrays.TorchOps, R: list, r: list) -> list:
        """:meth:`up` in any array library: ``X`` and the weights ``R`` (perhaps the product
        dtype's copies), biases ``r`` its arrays, ``rng`` its generator."""
        layers = [X]
        for W, b in zip(R, r):
            layers.append(_layer(layers[-1], W, b, rng, xp))
        return layers

    def label_free_energies(self, pen: np.ndarray) -> np.ndarray:
        """``F(pen, y)`` of the top RBM for every case and label (n x n_labels)."""
        x = pen @ self.W + self.c
        out = np.empty((len(pen), self.n_labels), dtype=np.float64)
        for y in range(self.n_labels):
            out[:, y] = -self.b_lab[y] - _softplus(x + self.U[y]).sum(axis=1)
        return out - (pen @ self.b_pen)[:, None]

    def top_activity(self, X: np.ndarray, labels: np.ndarray, batch: int = 1000) -> np.ndarray:
        """Each top unit's probability of being on, ``sigmoid(c + p.W + U_y)`` (eq. 1),
        averaged over the cases of ``X`` after an up-pass of probabilities ``p``, each
        case with its label ``y`` (a unit near 0 has died)."""
        self._check_fitted()
        total = np.zeros(len(self.c))
        for i in range(0, len(X), batch):
            pen = self.up(X[i:i + batch])[-1]
            total += sigmoid(pen @ self.W + self.U[np.asarray(labels[i:i + batch])] + self.c).sum(axis=0)
        return total / len(X)

    def predict(self, X: np.ndarray, batch: int = 1000) -> np.ndarray:
        """Generative classification: the label of lowest free energy after an up-pass."""
        self._check_fitted()
        return np.concatenate([self.label_free_energies(self.up(X[i:i + batch])[-1]).argmin(axis=1)
                               for i in range(0, len(X), batch)])

    # -- generation ----------------------------------------------------------------------
    def down(self, top_pen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Top-down pass with the generative weights from pen states; visible probabilities."""
        return self._down_layers(top_pen, rng)[0]

    def _down_layers(self, top_pen: Any, rng: Any, xp: arrays.NumpyOps | arrays.TorchOps = NUMPY,
                     G: list | None = None, g: list | None = None) -> list:
        """Every layer of a top-down pass from pen states, bottom-up: visible
        probabilities, sampled hidden states, ``top_pen`` last. In any array library:
        ``G``, ``g`` its arrays (default: the DBN's own), ``rng`` its generator."""
        G, g = self.G if G is None else G, self.g if g is None else g
        layers = [None] * self.n_directed + [top_pen]
        for l in reversed(range(self.n_directed)):
            layers[l] = _layer(layers[l + 1], G[l], g[l], None if l == 0 else rng, xp)
        return layers

    def generate(self, labels: Sequence[int], rng: np.random.Generator, n_steps: int = 1000,
                 record_every: int | None = None) -> np.ndarray | list[np.ndarray]:
        """Images (visible probabilities) with each label clamped: :meth:`fantasies`, then
        :meth:`down`; with ``record_every``, every that many steps (a film)."""
        frames = [self.down(pen, rng) for pen in self.fantasies(labels, rng, n_steps, record_every)]
        return frames if record_every else frames[-1]

    def fantasies(self, labels: Sequence[int], rng: np.random.Generator, n_steps: int,
                  record_every: int | None = None) -> list[np.ndarray]:
        """Pen states of Gibbs sampling (top, then pen: eq. 1) in the top RBM, one chain per
        label clamped, from random states (``Chains`` on
        :func:`~neurosim.machines.dbn_readout.top_rbm`); every ``record_every`` steps, else the last."""
        from ..compiled import Chains, compile
        from .dbn_readout import top_rbm

        self._check_fitted()
        net = top_rbm(self.to_network())
        chains = Chains(compile(net), rng, len(labels))
        chains.clamp(units=net.population(LABEL).units, values=np.eye(self.n_labels)[np.asarray(labels)])
        pen = [net.index(u) for u in net.population(self.layer_names()[-1]).units]
        frames = []
        for step in range(1, n_steps + 1):
            chains.sweep()                                   # the plan: top, then pen
            if step % (record_every or n_steps) == 0:
                frames.append(chains.rows[:, pen].astype(np.float32))
        return frames

    # -- up-down fine-tuning -------------------------------------------------------------
    def up_down_step(self, X: np.ndarray, Y: np.ndarray, lr: float, k: int,
                     rng: np.random.Generator, momentum: float = 0.0, weight_decay: float = 0.0,
                     velocity: dict[str, np.ndarray] | None = None,
                     chains: dict[str, np.ndarray] | None = None,
                     directed_lr: float | None = None, backend: arrays.Backend | None = None,
                     sample_labels: bool = False, offsets: dict[str, np.ndarray] | None = None,
                     offset_rate: float = 0.01) -> None:
        """One up-down update on a minibatch (``Y`` one-hot labels), in place: the minibatch
        mean of eq. 7 (wake), CD-k (eq. 6) at the top and eq. 11 (sleep). ``velocity`` (a
        dict this fills): ``v = momentum v + change - lr weight_decay w`` (weights only),
        ``w += v``. ``chains`` (a dict this fills): persistent CD at the top (Tieleman
        2008; a minibatch of another size runs plain CD-k). ``directed_lr``: the directed
        layers' rate, where it differs from ``lr``. ``backend``
        (:func:`~neurosim.compiled.arrays.backend`; None: numpy): the array library every
        pass, product and change runs in; the parameters, ``velocity`` and ``chains`` stay
        numpy arrays (wrapped as tensors: views on the CPU, copied back from a GPU), the
        products use one copy of each weight matrix in the product dtype, and the draws come
        from the backend's generator seeded from ``rng`` (numpy: ``rng`` itself).
        ``sample_labels``: one-hot label samples in the top RBM's chain (:func:`_updown_cd`).
        ``offsets``: the top RBM's CD is centered (Melchior et al. 2016; ``{"visible": mu,
        "hidden": lambda, "labels": mu_y}``, numpy arrays this moves toward the positive
        phase's means at ``offset_rate``: :func:`~neurosim.compiled.bipartite.change`);
        the directed layers learn as without."""
        self._check_fitted()
        if momentum and velocity is None:
            raise ParameterError(f"momentum {momentum} needs a velocity dict to keep between steps "
                                 "(pass velocity={})")
        be = backend or bipartite.NUMPY
        xp, gen = be.ops, be.generator(rng)
        host = {name: a for name, a in self.state_dict().items() if name not in ("sizes", "n_labels")}
        on = {name: be.asarray(a) for name, a in host.items()}        # the parameters, in place
        n_dir, m = self.n_directed, len(X)
        R, G = ([xp.lowered(on[f"{name}{l}"]) for l in range(n_dir)] for name in "RG")
        r, g = ([on[f"{name}{l}"] for l in range(n_dir)] for name in "rg")
        directed_lr = lr if directed_lr is None else directed_lr
        directed_rate = directed_lr / m
        wake = self._up_layers(be.asarray(np.asarray(X, dtype=np.float32)), gen, xp, R, r)  # wake: sampled
        top = Block(on["W"], on["b_pen"], on["c"], on["U"], on["b_lab"])
        cd = _updown_cd(k, sample_labels, None if offsets is None else (offset_rate, offset_rate))
        on_off = {name: be.asarray(a) for name, a in (offsets or {}).items()}
        persist = chains is not None and chains.get("top", np.empty((m, len(self.c)))).shape == (m, len(self.c))
        chain = be.asarray(chains.get("top")) if persist else None
        self._cd_buffers = buf = bipartite.buffers(getattr(self, "_cd_buffers", None), top, m, m, be)
        stats = bipartite.statistics(top, wake[-1], cd, gen, buf, be.asarray(Y), chain)   # CD-k in the top RBM
        if persist and chain is None:
            chains["top"] = be.to_numpy(stats.H[m:]).copy()           # the chain advanced in place
        sleep = self._down_layers(stats.V[m:], gen, xp, G, g)      # sleep: top-down from the chain
        change = {}
        for l in range(n_dir):                               # generative: eq. 7 on wake states
            change[f"G{l}"], change[f"g{l}"] = _delta(wake[l + 1], wake[l], G[l], g[l], directed_rate, xp)
        for l in range(n_dir):                               # recognition: eq. 11 on sleep states
            change[f"R{l}"], change[f"r{l}"] = _delta(sleep[l], sleep[l + 1], R[l], r[l], directed_rate, xp)
        d, _ = bipartite.change(top, stats, cd, lr, buf,   # top RBM: eq. 6, both phases in one product
                                offsets=tuple(on_off.values()) or None)   # (centered: overwrites sleep[-1])
        change.update(W=d["W"], U=d["U"], b_pen=d["b"], b_lab=d["b_lab"], c=d["c"])
        self._apply(change, {"W": lr * weight_decay, "U": lr * weight_decay,
                             "G": directed_lr * weight_decay, "R": directed_lr * weight_decay},
                    momentum, velocity, be, on, host)
        if not be.shares_memory:                             # a GPU: the update's arrays back to the host
            for kept, device in ((host, on), (offsets or {}, on_off)):
                for name, a in kept.items():
                    np.copyto(a, be.to_numpy(device[name]))
            if chain is not None:
                np.copyto(chains["top"], be.to_numpy(chain))

    def up_down_flops(self, k: int) -> float:
        """Floating-point operations of the matrix products of :meth:`up_down_step` per case
        with CD-k: six passes through the directed layers and ``2k + 3`` through the top RBM."""
        lower = sum(a * b for a, b in zip(self.sizes[:-2], self.sizes[1:-1]))
        top = (self.sizes[-2] + self.n_labels) * self.sizes[-1]
        return 2.0 * (6 * lower + (2 * k + 3) * top)

    def _apply(self, change: dict[str, Any], decay: dict[str, float], momentum: float,
               velocity: dict[str, np.ndarray] | None, be: arrays.Backend, on: dict[str, Any],
               host: dict[str, np.ndarray]) -> None:
        """Each change to its parameter of ``on`` (the arrays of ``host`` on ``be``, by name), with
        momentum in ``velocity`` (numpy arrays this fills, wrapped and copied back as the
        parameters are). ``decay``: the weight cost times the rate, by a weight's initial
        (biases: none)."""
        for name, d in change.items():
            v = None if velocity is None else velocity.setdefault(name, np.zeros_like(host[name]))
            v_on = be.asarray(v)
            bipartite.apply_change(on[name], d, v_on, momentum, decay.get(name[0], 0.0))
            if v is not None and not be.shares_memory:
                np.copyto(v, be.to_numpy(v_on))


def upgrade_labels(net: Network) -> Network:
    """``net`` with a DBN's label population a softmax group: as it is, or, for a DBN
    model exported when its labels were independent logistic units, a copy that says so.
    Any net that is not a DBN (:meth:`DeepBeliefNet.from_network` refuses it) is returned
    unchanged."""
    if not any(p.role == "label" and p.activation == "logistic" for p in net.populations):
        return net
    try:
        DeepBeliefNet.from_network(net)
    except NeurosimError:
        return net
    pops = [replace(p, activation="softmax") if p.role == "label" else p for p in net.populations]
    return Network.from_populations(pops, net.projections, net.name, net.description, net.edge_order())


def _delta(pre: Any, post: Any, W: Any, b: Any, rate: float,
           xp: arrays.NumpyOps | arrays.TorchOps = NUMPY) -> tuple[Any, Any]:
    """Eq. 7 (eq. 11 with the pathways swapped), summed over the rows: ``err = rate (post
    - sigmoid(pre W + b))``, then ``(pre^T err, sum err)``, in any array library (products
    by ``xp``). The rate scales ``err`` before the product, where the rule's batched form
    scales after it: the order the hinton2006 preset's weights were trained in
    (docs/machines/dbn.md)."""
    err = post - _layer(pre, W, b, None, xp)
    err *= rate
    return xp.dot(pre.T, err), err.sum(axis=0)


def _unit_names(population: str, n: int) -> tuple[str, ...]:
    return tuple(f"{population}_{i}" for i in range(n))


# -- the greedy variational bound --------------------------------------------------------------
def _states(n: int) -> np.ndarray:
    """Every state of a layer of ``n`` units, row k with unit j = bit j of k."""
    if n > 16:
        raise ParameterError(f"the exact greedy bound enumerates 2^{n} states of a layer; at most 2^16")
    return all_states(n)[:, ::-1].astype(np.float64)


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
