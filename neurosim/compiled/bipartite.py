"""The compiled backend's fast path for a bipartite block: CD-k and PCD-k, fused.

A bipartite block is two layers with symmetric weights between them and none within a
layer: the visible side (binary or unit-variance Gaussian units, and optionally a softmax
group of label units, as in the top RBM of Hinton, Osindero and Teh 2006) and the hidden
side (binary, or linear with unit-variance Gaussian noise: the code layer of the deep
autoencoder, ``rbmhidlinear.m``). Given one side the units of the other are independent (eq. 1 of Hinton
2005), so Gibbs sampling alternates whole layers, one matrix product each. Learning is
eq. 6, ``dw_ij = lr (<v_i h_j>^0 - <v_i h_j>^k)``: each phase's sum divided by its
number of cases, a bias a synapse from an always-on unit, then weight cost and momentum,
``v = momentum v + change - lr weight_cost w`` (weights only) and ``w += v``.

Every machine that trains a bipartite block by CD runs it here: :class:`~neurosim.RBM`
(CD-k, PCD-k, Gaussian visibles, sparsity), the DBN trainer's greedy RBMs and labelled
top RBM (``rbm.m``), the top RBM's CD-k in up-down fine-tuning,
:class:`~neurosim.BoltzmannMachine`'s ``"cd"``/``"pcd"`` procedures, and the deep
Boltzmann machine's pretraining RBMs (``CD(up=2)``, ``CD(down=2)``; its joint update
applies :func:`change` to each of its blocks). The weight change is
the registered rule's batched form (``get_rule("cd").batched``, ``"pcd"``) of the
chain's statistics, written as one matrix product per weight block over the stacked
positive and negative cases (tests/test_bipartite.py checks the two agree for every
caller). All array work is in place in preallocated buffers (:func:`buffers`).

**Statistics** (:class:`CD`): the positive phase is the data and the hidden
probabilities they give, or samples of them (``samples``: up-down, the appendix of
Hinton et al. 2006); the chain starts from sampled hidden states of the data, or from
persistent ones (``chain``: PCD, Tieleman 2008); each of ``k`` steps samples the visible
layer from the hidden one (labels: softmax probabilities, or one-hot samples of them) and the hidden layer from that.
The negative phase is the last step's visible means and hidden probabilities (``rbm.m``:
"use the probabilities for the reconstruction"), its sampled visible states (PCD,
up-down) and hidden probabilities, or (``samples``) hidden samples. The two phases may differ in
size (PCD's chains, as many as the caller keeps), each divided by its own. With
``CD.temperatures`` the persistent chains run by parallel tempering (:func:`tempered_gibbs`;
Desjardins et al. 2010) and the negative phase is that of their ``beta = 1`` set.

**Centering** (``CD.centering``; Melchior, Fischer and Wiskott 2016): the same chain, the
change the centered gradient with offsets ``mu``, ``lambda`` (and ``mu_y`` for a label
group) that follow the data's means, mapped onto the ordinary parameters the block holds
(:func:`change`), so that every sampler and scorer of an ordinary RBM applies as it is.

**Backends** (:mod:`neurosim.compiled.arrays`): the arrays are numpy's or torch's (any
device), the products in their dtype or in bfloat16 (float32 master weights; the cast
policy is that module's). :func:`buffers` takes the backend; the other functions follow
their arrays, and ``rng`` is the backend's generator (:meth:`~neurosim.compiled.arrays.Backend.generator`).
numpy's numbers are bit for bit those of the kernel before there was a torch backend.

**Arithmetic order.** Two callers of long standing sum in different orders, and their
results are kept bit for bit: ``labels_first`` (a hidden unit's input is ``vW + yU + c``
in up-down, ``vW + c + yU`` in the greedy top RBM) and ``summed_differences`` (visible
biases change by ``lr/m sum(v+ - v-)`` in the DBN, by ``lr/b sum v+ - lr/m sum v-`` in
the RBM, whose PCD phases may differ in size). The weight change's product is written in
the memory order of the weights (``V.T @ H`` for a C-ordered ``W``, ``H.T @ V`` for the
RBM's ``components_.T``), which is both the fast and the historic form.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> block = Block(0.1 * rng.standard_normal((6, 3)), np.zeros(6), np.zeros(3))
>>> V = (rng.random((4, 6)) < 0.5).astype(float)
>>> W0 = block.W.copy()
>>> buf = step(block, V, CD(k=1), lr=0.1, rng=rng)    # in place; the buffers for the next step
>>> block.W.shape, bool((block.W != W0).any())
((6, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import ParameterError
from . import arrays

__all__ = ["Block", "CD", "Statistics", "step", "statistics", "tempered_gibbs", "swap_log_ratio",
           "inverse_temperatures", "change", "apply", "apply_change", "buffers",
           "bernoulli", "gaussian", "one_hot", "hidden_probabilities", "visible_means", "uncentered_biases", "SPARSITY_DECAY"]

NUMPY = arrays.backend("numpy")
Array = Any                        # a numpy array or a torch tensor (:mod:`neurosim.compiled.arrays`)
Ops = arrays.NumpyOps | arrays.TorchOps
SPARSITY_DECAY = 0.9               # q <- 0.9 q + 0.1 (mean positive-phase hidden probability)


class Block(NamedTuple):
    """A bipartite block's parameters: the caller's own arrays, changed in place. ``W``:
    n_visible x n_hidden in any memory order (an RBM passes ``components_.T``); ``b``,
    ``c``: visible and hidden biases; ``U`` (n_labels x n_hidden) and ``b_lab``: a softmax
    label group on the visible side, or None."""

    W: Array
    b: Array
    c: Array
    U: Array | None = None
    b_lab: Array | None = None


@dataclass(frozen=True)
class CD:
    """How a caller runs CD-k (see the module docstring). ``sparsity``: ``(target p,
    cost)``: ``- lr cost (q_j - p)`` is added to each hidden-bias change, ``q`` the running
    mean activation (Lee, Ekanadham and Ng 2008; hidden biases only). ``gaussian``:
    unit-variance Gaussian visible units; ``gaussian_hidden``: linear hidden units with
    unit-variance Gaussian noise, ``h = v W + c + z`` (``rbmhidlinear.m``; their
    probabilities are the means ``v W + c``). ``up``, ``down``: factors on the total input
    of the hidden and of the visible units, ``sigmoid(up (v W + c))`` and ``sigmoid(down
    (h W^T + b))`` (labels unscaled), the statistics and the change as without them: a
    deep Boltzmann machine's pretraining (Salakhutdinov and Hinton 2009, section 3.1;
    Hinton's review, section 8), whose first RBM has bottom-up weights twice its top-down
    ones (``up=2``) and whose last has top-down weights twice its bottom-up ones
    (``down=2``); binary units only. ``sample_labels``: the label group's reconstruction
    at every step is a one-hot sample of its softmax, not the probabilities, and drives
    the hidden units and the label statistics as such ("exactly one unit allowed to be
    active", Hinton, Osindero and Teh 2006, section 6.1; ``rbm_l2.m``). ``temperatures``:
    ``K > 1`` runs the persistent chain by parallel tempering (:func:`tempered_gibbs`; K
    sets of chains, the negative phase that of the ``beta = 1`` set)."""

    k: int = 1
    gaussian: bool = False
    gaussian_hidden: bool = False
    samples: bool = False
    labels_first: bool = False
    summed_differences: bool = False
    sparsity: tuple[float, float] | None = None
    up: float = 1.0
    down: float = 1.0
    centering: tuple[float, float] | None = None
    sample_labels: bool = False
    temperatures: int = 1

    def __post_init__(self) -> None:
        if (self.gaussian_hidden and self.up != 1.0) or (self.gaussian and self.down != 1.0):
            raise ParameterError("CD: the factors up and down scale the input of binary units only")
        if self.centering is not None and (self.gaussian or self.gaussian_hidden or self.up != 1.0
                                           or self.down != 1.0):
            raise ParameterError("CD: centering is for binary units with unscaled input only")
        if self.temperatures > 1 and (self.gaussian or self.gaussian_hidden or self.up != 1.0 or self.down != 1.0
                                      or self.samples):
            raise ParameterError("CD: temperatures (parallel tempering) is for binary units with unscaled input "
                                 "and probability statistics only")


class Statistics(NamedTuple):
    """Both phases stacked, views into the buffers: rows ``:n_pos`` positive, the rest
    negative. ``V`` visible states, ``Y`` labels (or None), ``H`` hidden statistics."""

    V: Array
    Y: Array | None
    H: Array
    n_pos: int


# -- array functions (in place) -------------------------------------------------------------
def bernoulli(prob: Array, rng: Any, noise: Array, out: Array) -> Array:
    """``out = (u < prob)`` as 0.0/1.0, ``u`` uniform drawn into ``noise`` from ``rng``
    (the generator of the arrays' library); ``out`` may be ``prob``."""
    xp = arrays.ops_of(noise)
    xp.uniform(rng, noise)
    xp.less(noise, prob, out=out)
    return out


def gaussian(mean: Array, rng: Any, noise: Array, out: Array) -> Array:
    """``out = mean + z``, ``z ~ N(0, 1)`` drawn into ``noise``; ``out`` may be ``mean``."""
    xp = arrays.ops_of(noise)
    xp.normal(rng, noise)
    return xp.add(mean, noise, out=out)


def one_hot(prob: Array, rng: Any, noise: Array, out: Array) -> Array:
    """``out`` = one-hot rows, unit ``k`` of row ``i`` with probability ``prob[i, k]``, one
    uniform per row drawn into ``noise``; ``out`` may be ``prob``."""
    xp = arrays.ops_of(noise)
    xp.uniform(rng, noise)
    return xp.one_hot_(xp.categorical(prob, noise), out)


def hidden_probabilities(block: Block, V: Array, Y: Array | None, cd: CD, out: Array, xp: Ops | None = None) -> Array:
    """``P(h = 1 | v, y) = sigmoid(up (v W + c + y U))`` (eq. 1), summed in the caller's order,
    or the mean ``v W + c + y U`` of linear hidden units (``cd.gaussian_hidden``);
    products by ``xp`` (default: in the arrays' own dtype)."""
    xp = xp or arrays.ops_of(out)
    xp.matmul(V, block.W, out=out)
    if Y is not None and cd.labels_first:
        out += xp.matmul(Y, block.U)
    out += block.c
    if Y is not None and not cd.labels_first:
        out += xp.matmul(Y, block.U)
    if cd.up != 1.0:
        out *= cd.up
    return out if cd.gaussian_hidden else xp.sigmoid_(out)


def visible_means(block: Block, H: Array, cd: CD, V: Array, Y: Array | None, xp: Ops | None = None,
                  beta: Array | None = None) -> None:
    """``E[v | h]``: ``sigmoid(down (b + h W^T))`` (binary) or ``b + h W^T`` (Gaussian), and
    the labels' ``softmax(b_lab + h U^T)``, into ``V`` and ``Y``; products by ``xp``.
    ``beta``: a column of inverse temperatures, ``sigmoid(beta (b + h W^T))`` row by row."""
    xp = xp or arrays.ops_of(V)
    xp.matmul(H, block.W.T, out=V)
    V += block.b
    if cd.down != 1.0:
        V *= cd.down
    if beta is not None:
        V *= beta
    if not cd.gaussian:
        xp.sigmoid_(V)
    if Y is not None:
        Y[:] = xp.softmax(xp.matmul(H, block.U.T) + block.b_lab)


def buffers(buf: dict | None, block: Block, n_pos: int, m: int, backend: arrays.Backend = NUMPY) -> dict:
    """Work arrays for ``n_pos`` positive and ``m`` negative cases, in the library of
    ``backend`` (the block's arrays), reused from ``buf`` when they fit (reallocated only
    for more cases or other shapes, dtype or backend). ``dW`` has the memory order of ``W``."""
    xp, W = backend.ops, block.W
    nv, nh = W.shape
    nl = 0 if block.U is None else len(block.U)
    key = (nv, nh, nl, W.dtype, xp.c_contiguous(W), backend)
    if buf is not None and buf["key"] == key and buf["n_pos"] >= n_pos and buf["m"] >= m:
        return buf
    rows, most = n_pos + m, max(n_pos, m)
    return dict(key=key, xp=xp, n_pos=n_pos, m=m, V=xp.empty((rows, nv), W), Y=xp.empty((rows, nl), W),
                H=xp.empty((rows, nh), W), Hs=xp.empty((most, nh), W), noise_h=xp.empty((most, nh), W),
                noise_v=xp.empty((m, nv), W), noise_y=xp.empty((m,), W), dW=xp.empty_like(W),
                dU=None if block.U is None else xp.empty_like(block.U))


# -- the chain -------------------------------------------------------------------------------
def statistics(block: Block, data: Array, cd: CD, rng: Any, buf: dict,
               labels: Array | None = None, chain: Array | None = None, swap: int = 0) -> Statistics:
    """Both phases' statistics of CD-k on ``data`` (and one-hot ``labels``), from the
    data's sampled hidden states or, with ``chain``, from persistent hidden states that
    this advances ``k`` steps in place (their sampled states at the end). Draws, in order:
    the data's hidden states (unless PCD with probabilities), then per step the visible
    states (not at the last step of plain CD), the labels (``cd.sample_labels``) and the
    hidden states (not at the last step unless they are the statistics or the chain's). The products use a copy of the
    weights in the product dtype of the buffers' backend, made once here (numpy: the
    weights themselves). With ``cd.temperatures`` K > 1, ``chain`` holds K sets of
    persistent chains (:func:`tempered_gibbs`, ``swap`` its pairs' parity) and the
    negative phase is the ``beta = 1`` set's visible states and hidden probabilities."""
    xp = buf["xp"]
    block = block._replace(W=xp.lowered(block.W), U=xp.lowered(block.U))
    b = len(data)
    if cd.temperatures > 1:
        return _tempered_statistics(block, data, cd, rng, buf, labels, chain, swap)
    m = b if chain is None else len(chain)
    V, H = buf["V"][:b + m], buf["H"][:b + m]
    Y = None if labels is None else buf["Y"][:b + m]
    V[:b] = data
    if Y is not None:
        Y[:b] = labels
    Vp, Vn, Hp, Hn = V[:b], V[b:], H[:b], H[b:]
    Yp, Yn = (None, None) if Y is None else (Y[:b], Y[b:])
    noise_v, noise_h, Hs = buf["noise_v"][:m], buf["noise_h"], buf["Hs"]
    draw_v = gaussian if cd.gaussian else bernoulli
    draw_h = gaussian if cd.gaussian_hidden else bernoulli
    stacked = chain is not None and not cd.samples   # positive probabilities in one product with the negative
    h = chain
    if not stacked:
        hs = draw_h(hidden_probabilities(block, Vp, Yp, cd, Hp, xp), rng, noise_h[:b], Hp if cd.samples else Hs[:b])
        h = hs if chain is None else chain
    for s in range(cd.k):
        visible_means(block, h, cd, Vn, Yn, xp)
        if s < cd.k - 1 or chain is not None or cd.samples:
            draw_v(Vn, rng, noise_v, Vn)
        if cd.sample_labels and Yn is not None:
            one_hot(Yn, rng, buf["noise_y"][:m], Yn)
        if s < cd.k - 1:
            h = draw_h(hidden_probabilities(block, Vn, Yn, cd, Hn, xp), rng, noise_h[:m], Hs[:m])
    if stacked:
        hidden_probabilities(block, V, Y, cd, H, xp)
    else:
        hidden_probabilities(block, Vn, Yn, cd, Hn, xp)
    if cd.samples:
        draw_h(Hn, rng, noise_h[:m], Hn)
        if chain is not None:
            chain[:] = Hn
    elif chain is not None:
        draw_h(Hn, rng, noise_h[:m], chain)
    return Statistics(V, Y, H, b)


def _tempered_statistics(block: Block, data: Array, cd: CD, rng: Any, buf: dict, labels: Array | None,
                         chain: Array | None, swap: int) -> Statistics:
    """:func:`statistics` of PCD by parallel tempering: the data and the ``beta = 1`` chains'
    visible states after :func:`tempered_gibbs`, with their hidden probabilities at
    ``beta = 1``, in one product."""
    if chain is None or labels is not None or len(chain) % cd.temperatures:
        raise ParameterError(f"CD(temperatures={cd.temperatures}): needs persistent chains, a multiple of "
                             f"{cd.temperatures} of them, and no label group")
    b, m = len(data), len(chain) // cd.temperatures
    V, H = buf["V"][:b + m], buf["H"][:b + m]
    V[:b] = data
    V[b:] = tempered_gibbs(block, chain, cd, rng, buf, swap)[-m:]
    hidden_probabilities(block, V, None, cd, H, buf["xp"])
    return Statistics(V, None, H, b)


def inverse_temperatures(K: int) -> list[float]:
    """``beta_k = k / (K - 1)``, ``k = 0 .. K-1``: K evenly spaced in [0, 1], the last the model's."""
    return [k / (K - 1) for k in range(K)]


def tempered_gibbs(block: Block, chain: Array, cd: CD, rng: Any, buf: dict, swap: int = 0) -> Array:
    """Parallel tempering (Desjardins et al. 2010; Cho, Raiko and Ilin 2010) of ``K =
    cd.temperatures`` sets of ``M`` chains, ``chain`` (K M x n_hidden) their hidden
    states, set ``k`` (rows ``k M .. (k+1) M``) at ``beta_k`` (:func:`inverse_temperatures`).
    The whole energy is tempered, ``p_beta(v, h) ~ exp(-beta E(v, h))``, biases included
    (as Desjardins et al.): ``beta_0 = 0`` is then the uniform distribution, which one step
    samples exactly, and the swap's ratio is exact in the joint energy. Each set takes
    ``cd.k`` Gibbs steps, ``v ~ sigmoid(beta (h W^T + b))``, ``h ~ sigmoid(beta (v W + c))``;
    then neighbours ``(k, k+1)``, ``k = swap mod 2, +2, ..`` (even and odd pairs
    alternating with ``swap``), exchange their states ``(v, h)`` chain by chain with the
    Metropolis probability :func:`swap_log_ratio` (one uniform per pair and chain). Advances
    ``chain`` in place; returns the visible states (K M x n_visible, a buffer)."""
    xp, K = buf["xp"], cd.temperatures
    t = _tempering_buffers(buf, block, chain, K)
    V, A, P, beta = t["V"], t["A"], t["P"], t["beta"]
    for _ in range(cd.k):
        visible_means(block, chain, cd, V, None, xp, beta)
        bernoulli(V, rng, t["noise_v"], V)
        xp.matmul(V, block.W, out=A)          # the hidden input v W + c (eq. 1), kept for the energy
        A += block.c
        P[:] = A
        P *= beta
        bernoulli(xp.sigmoid_(P), rng, t["noise_h"], chain)
    energy = -((V * block.b).sum(axis=1) + (chain * A).sum(axis=1))   # E(v, h) = -b.v - h.(v W + c)
    _swap(V, chain, energy.reshape(K, -1), inverse_temperatures(K), swap % 2, rng, t["noise_s"], xp)
    return V


def swap_log_ratio(beta_i: float, beta_j: float, E_i: Array, E_j: Array) -> Array:
    """``log`` of the Metropolis ratio of exchanging the states of two chains at inverse
    temperatures ``beta_i``, ``beta_j`` with joint energies ``E_i``, ``E_j``: ``(beta_i -
    beta_j)(E_i - E_j)``; the swap is accepted with probability ``min(1, exp(.))``."""
    return (beta_i - beta_j) * (E_i - E_j)


def _swap(V: Array, chain: Array, energy: Array, betas: list[float], first: int, rng: Any, noise: Array,
          xp: Ops) -> None:
    """The swaps of :func:`tempered_gibbs` in place: pair ``(k, k+1)`` for ``k = first,
    first + 2, ..``, chain by chain accepted iff ``log u < swap_log_ratio`` (``u`` uniform:
    probability ``min(1, exp(ratio))``), the accepted states exchanged by arithmetic on
    0/1 values (exact)."""
    K, M = energy.shape
    for n, k in enumerate(range(first, K - 1, 2)):
        u = xp.uniform(rng, noise[n])
        ratio = swap_log_ratio(betas[k], betas[k + 1], energy[k], energy[k + 1])
        accept = (xp.log(u) < ratio).reshape(-1, 1)
        for S in (V, chain):
            lo, hi = S[k * M:(k + 1) * M], S[(k + 1) * M:(k + 2) * M]
            d = (hi - lo) * accept
            lo += d
            hi -= d


def _tempering_buffers(buf: dict, block: Block, chain: Array, K: int) -> dict:
    """The work arrays of :func:`tempered_gibbs` for ``chain``, kept in ``buf``."""
    xp, (nv, nh), rows = buf["xp"], block.W.shape, len(chain)
    t = buf.get("tempering")
    if t is not None and t["V"].shape == (rows, nv) and t["K"] == K:
        return t
    beta = xp.empty((rows, 1), chain)
    for k, x in enumerate(inverse_temperatures(K)):
        beta[k * (rows // K):(k + 1) * (rows // K)] = x
    t = dict(K=K, V=xp.empty((rows, nv), chain), A=xp.empty((rows, nh), chain), P=xp.empty((rows, nh), chain),
             noise_v=xp.empty((rows, nv), chain), noise_h=xp.empty((rows, nh), chain), beta=beta,
             noise_s=xp.empty((K // 2, rows // K), chain))
    buf["tempering"] = t
    return t


# -- the change ------------------------------------------------------------------------------
def _product(V: Array, H: Array, out: Array, xp: Ops) -> Array:
    """``V.T @ H`` into ``out``, written in ``out``'s memory order."""
    if xp.c_contiguous(out):
        return xp.matmul(V.T, H, out=out)
    xp.matmul(H.T, V, out=out.T)
    return out


def _bias_change(S: Array, b: int, rate_pos: float, rate_neg: float, cd: CD) -> Array:
    """``rate_pos sum s+ - rate_neg sum s-`` over the cases, in the caller's form."""
    if cd.summed_differences:
        return rate_pos * (S[:b] - S[b:]).sum(axis=0)
    d = S[:b].sum(axis=0)
    d *= rate_pos
    d -= rate_neg * S[b:].sum(axis=0)
    return d


def change(block: Block, stats: Statistics, cd: CD, lr: float, buf: dict,
           activity: Array | None = None,
           offsets: tuple[Array, ...] | None = None) -> tuple[dict[str, Array], Array | None]:
    """Eq. 6 for the stacked statistics: ``{"W", "b", "c"[, "U", "b_lab"]}``, the weight
    change as one product per weight block after scaling the positive hidden rows by
    ``lr / n_pos`` and the negative ones by ``-lr / m`` (equal to the rule's batched form,
    tested), the hidden-bias change the same rows summed. With ``cd.sparsity`` also
    the running activity ``q = 0.9 q + 0.1 mean(H+)`` (``activity``; None: the first
    minibatch sets it), returned second. Overwrites ``stats.H``.

    With ``cd.centering``, ``offsets = (mu, lambda)`` move first (:func:`_center`, in
    place) and the change is the centered one (Melchior et al. 2016, algorithm 1),
    ``dW = lr (<(v - mu)(h - lambda)^T>+ - <...>-)``, ``db~ = lr (<v>+ - <v>-)``, ``dc~ =
    lr (<h>+ - <h>-)``, on the centered biases ``b~ = b + W lambda``, ``c~ = c + W^T mu``
    (:func:`uncentered_biases`), returned for the ordinary ones the block holds: ``db = db~
    - dW lambda``, ``dc = dc~ - dW^T mu`` (the paper's "centering as a different update rule").
    The paper's re-parameterisation ``b~ += W (lambda' - lambda)``, ``c~ += W^T (mu' - mu)``
    when the offsets move is what keeps ``b`` and ``c`` unchanged, so here it costs nothing.
    A label group is centered as more visible units (its energy is linear in ``y`` as
    theirs is in ``v``): ``offsets = (mu, lambda, mu_y)``, ``dU = lr (<(y - mu_y)(h -
    lambda)^T>+ - <...>-)``, ``db_lab = db_lab~ - dU lambda``, ``dc = dc~ - dW^T mu - dU^T
    mu_y``. Also overwrites ``stats.V`` (and ``stats.Y``). Offsets 0 at rates 0: the
    uncentered numbers, bit for bit."""
    V, Y, H, b = stats
    rate_pos, rate_neg = lr / b, lr / (len(V) - b)
    d = {"b": _bias_change(V, b, rate_pos, rate_neg, cd)}
    if Y is not None:
        d["b_lab"] = _bias_change(Y, b, rate_pos, rate_neg, cd)
    if cd.sparsity is not None:
        activity = _activity(activity, H[:b])
    if cd.centering is not None:
        _center(stats, cd.centering, offsets)
    H[:b] *= rate_pos
    H[b:] *= -rate_neg
    d["W"] = _product(V, H, buf["dW"], buf["xp"])
    d["c"] = H.sum(axis=0)
    if Y is not None:
        d["U"] = _product(Y, H, buf["dU"], buf["xp"])
    if cd.centering is not None:
        _uncenter(d, offsets)
    if cd.sparsity is not None:
        target, cost = cd.sparsity
        d["c"] -= (lr * cost) * (activity - target)
    return d, activity


def _center(stats: Statistics, rates: tuple[float, float], offsets: tuple[Array, ...] | None) -> None:
    """Algorithm 1's offsets, in place: ``mu = (1 - nu_mu) mu + nu_mu <v>+`` and ``lambda =
    (1 - nu_lambda) lambda + nu_lambda <h>+`` (the positive phase's means; a rate 0 keeps
    its offset), with labels also ``mu_y`` at ``nu_mu``, then ``v - mu``, ``h - lambda``
    (and ``y - mu_y``) in both phases of ``stats``."""
    V, Y, H, b = stats
    wanted = "(mu, lambda)" if Y is None else "(mu, lambda, mu_y) with a label group"
    if offsets is None or len(offsets) != (2 if Y is None else 3):
        raise ParameterError(f"CD(centering=...): change needs the offsets {wanted}")
    for x, S, nu in zip(offsets, (V, H, Y), (rates[0], rates[1], rates[0])):
        if nu:
            x *= 1.0 - nu
            x += nu * S[:b].mean(axis=0)
        S -= x


def _uncenter(d: dict[str, Array], offsets: tuple[Array, ...]) -> None:
    """The centered bias changes as the ordinary ones, in place: ``db -= dW lambda``, ``dc
    -= dW^T mu`` (labels: ``db_lab -= dU lambda``, ``dc -= dU^T mu_y``)."""
    mu, lam = offsets[:2]
    d["b"] -= d["W"] @ lam
    d["c"] -= mu @ d["W"]
    if len(offsets) == 3:
        d["b_lab"] -= d["U"] @ lam
        d["c"] -= offsets[2] @ d["U"]


def uncentered_biases(W: Array, b_centered: Array, c_centered: Array, mu: Array,
                      lam: Array) -> tuple[Array, Array]:
    """The ordinary biases of a centered RBM: ``b = b~ - W lambda``, ``c = c~ - W^T mu``.
    The centered energy ``E~(v, h) = -(v - mu).b~ - (h - lambda).c~ - (v - mu)^T W (h -
    lambda)`` (Melchior et al. 2016) is ``E(v, h) = -v.b - h.c - v^T W h`` plus the
    constant ``mu.b~ + lambda.c~ - mu^T W lambda``: the same distribution."""
    return b_centered - W @ lam, c_centered - mu @ W


def _activity(q: Array | None, H_pos: Array) -> Array:
    """``q = 0.9 q + 0.1 mean(H_pos)`` per hidden unit, in place (None or another shape: the mean)."""
    mean = H_pos.mean(axis=0)
    if q is None or q.shape != mean.shape:
        return mean
    q *= SPARSITY_DECAY
    q += (1.0 - SPARSITY_DECAY) * mean
    return q


def apply_change(w: Array, d: Array, velocity: Array | None = None, momentum: float = 0.0,
                 decay: float = 0.0) -> None:
    """``w += v``, ``v = momentum v + d - decay w`` (``decay``: the weight cost times the
    rate; 0 for biases), in place; without ``velocity``, ``w += d - decay w``. Overwrites ``d``."""
    if decay:
        d -= decay * w
    if velocity is not None:
        velocity *= momentum
        velocity += d
        d = velocity
    w += d


def apply(block: Block, d: dict[str, Array], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
          velocity: dict[str, Array] | None = None) -> None:
    """Every change of ``d`` to its parameter of ``block``, weight cost on the weights only,
    momentum with the arrays of ``velocity`` (by name) if given."""
    decay = lr * weight_decay
    for name, dx in d.items():
        apply_change(getattr(block, name), dx, None if velocity is None else velocity[name], momentum,
                     decay if name in ("W", "U") else 0.0)


def step(block: Block, data: Array, cd: CD, lr: float, rng: Any,
         momentum: float = 0.0, weight_decay: float = 0.0, velocity: dict[str, Array] | None = None,
         labels: Array | None = None, chain: Array | None = None, buf: dict | None = None,
         backend: arrays.Backend = NUMPY, offsets: tuple[Array, ...] | None = None, swap: int = 0) -> dict:
    """One CD-k update of ``block`` on a minibatch, in place: :func:`statistics`,
    :func:`change` (``offsets``: those of centered CD, moved in place), :func:`apply`, the
    arrays and ``rng`` those of ``backend`` (``swap``: :func:`tempered_gibbs`'s parity). Returns the buffers (pass them back next time)."""
    buf = buffers(buf, block, len(data), len(data) if chain is None else len(chain) // cd.temperatures, backend)
    d, _ = change(block, statistics(block, data, cd, rng, buf, labels, chain, swap), cd, lr, buf, offsets=offsets)
    apply(block, d, lr, momentum, weight_decay, velocity)
    return buf
