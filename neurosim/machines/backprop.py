"""Backpropagation, written once: a DBN's discriminative fine-tuning (``backpropclassify.m``)
and the deep autoencoder's (``backprop.m``, :mod:`.autoencoder`).

A feed-forward net of logistic (or linear) hidden layers and an output layer whose
cross-entropy is the loss: softmax against labels, or logistic against the input
pixels (:func:`backprop_gradient`). For the DBN: the recognition stack and the
pen-to-top weights, with a softmax output layer on top, trained on the labels' cross-entropy by SGD with momentum (:func:`backprop_step`) or,
as published, conjugate-gradient line searches per minibatch (:func:`backprop_cg_step`);
for the first epochs only the softmax layer learns. Every matrix product runs on the
``backend`` passed in (:func:`~neurosim.compiled.arrays.backend`; numpy by default): the
parameters stay float32 numpy arrays (views on the CPU), the updates and the softmax
layer's error are computed on them, and the gradients come back as numpy arrays.
Notes: docs/machines/dbn.md.
"""

from __future__ import annotations

import numpy as np

from ..compiled import arrays
from ..compiled.bipartite import NUMPY
from ..optimize import minimize
from .dbn import DeepBeliefNet

__all__ = ["backprop_net", "backprop_gradient", "backprop_step", "backprop_cg_step", "backprop_predict"]


def backprop_net(dbn: DeepBeliefNet, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The feed-forward net of backprop fine-tuning: the recognition stack and the
    pen-to-top weights (``w0``, ``b0``, ...), then a softmax layer (``w_out``, ``b_out``)
    with weights ``0.1 N(0, 1)``."""
    p = {f"w{l}": w.copy() for l, w in enumerate(dbn.R + [dbn.W])}
    p.update({f"b{l}": b.copy() for l, b in enumerate(dbn.r + [dbn.c])})
    p["w_out"] = (0.1 * rng.standard_normal((dbn.sizes[-1], dbn.n_labels))).astype(np.float32)
    p["b_out"] = np.zeros(dbn.n_labels, np.float32)
    return p


def _n_hidden(p: dict) -> int:
    return sum(k.startswith("w") and k != "w_out" for k in p)


def _forward(on: dict, a, xp, linear: tuple[int, ...] = ()) -> list:
    """The input ``a`` and every hidden layer's activities: ``sigmoid(a w_l + b_l)``, or
    ``a w_l + b_l`` for the layers in ``linear`` (the code layer of an autoencoder);
    ``on``: the arrays on the backend whose ops are ``xp``."""
    acts = [a]
    for l in range(_n_hidden(on)):
        z = xp.dot(acts[-1], on[f"w{l}"]) + on[f"b{l}"]
        acts.append(z if l in linear else xp.sigmoid_(z))
    return acts


def _features(p: dict, X: np.ndarray, be: arrays.Backend = NUMPY, linear: tuple[int, ...] = ()) -> np.ndarray:
    """The activities of the last hidden layer (products on ``be``)."""
    on = {k: be.asarray(v) for k, v in p.items()}
    return be.to_numpy(_forward(on, be.asarray(np.asarray(X, dtype=p["w_out"].dtype)), be.ops, linear)[-1])


def _output_error(z: np.ndarray, Y: np.ndarray, output: str) -> tuple[float, np.ndarray]:
    """The summed cross-entropy of the output layer's total inputs ``z`` against ``Y`` and
    its derivative in ``z``: ``"softmax"``, ``-sum Y log softmax(z)`` (one-hot ``Y``),
    derivative ``softmax(z) - Y``, in float64 (float32 rounds ``1 - q`` to 0);
    ``"logistic"``, ``-sum Y log q + (1 - Y) log(1 - q)``, ``q = sigmoid(z)`` (``Y`` in
    [0, 1]: an autoencoder's input pixels), derivative ``q - Y``, in ``z``'s dtype through
    ``e = exp(-|z|)``: ``-log(1 - q) = max(z, 0) + log1p(e)`` and ``-log q`` that minus
    ``z``, never rounded to 0; the sum accumulated in float64."""
    if output == "logistic":
        e = np.exp(-np.abs(z))
        loss = np.log1p(e)
        loss += np.maximum(z, 0) - Y * z
        q = np.where(z >= 0, 1, e)
        q /= 1 + e
        return float(loss.sum(dtype=np.float64)), q - Y
    z = z.astype(np.float64)
    log_q = z - z.max(axis=1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    return -float((log_q * Y).sum()), np.exp(log_q) - Y


def backprop_gradient(p: dict, X: np.ndarray, Y: np.ndarray, summed: bool = False,
                      backend: arrays.Backend = NUMPY, output: str = "softmax",
                      linear: tuple[int, ...] = ()) -> tuple[float, dict[str, np.ndarray]]:
    """The mean cross-entropy of the output layer (``output``: :func:`_output_error`;
    ``summed``: the sum) against ``Y`` and its gradient for every array of ``p``: the
    hidden layers ``w0, b0, ...`` (logistic, or linear for the indices in ``linear``)
    and the output layer ``w_out, b_out`` (only those two: the output layer alone, on
    features ``X``), the products on ``backend``. The output layer's error is computed
    on the host in float64, as ``backpropclassify.m`` does (float32 rounds ``1 - q`` to 0)."""
    be, xp = backend, backend.ops
    on = {k: be.asarray(v) for k, v in p.items()}
    acts = _forward(on, be.asarray(X), xp, linear)
    z = be.to_numpy(xp.dot(acts[-1], on["w_out"]) + on["b_out"])
    per_case = 1 if summed else len(X)
    loss, error = _output_error(z, Y, output)
    delta = be.asarray((error / per_case).astype(_dtype(acts[-1])))
    grads = {"w_out": xp.dot(acts[-1].T, delta), "b_out": delta.sum(axis=0)}
    back = xp.dot(delta, on["w_out"].T)
    for l in reversed(range(_n_hidden(p))):
        if l not in linear:
            back *= acts[l + 1]
            back *= 1 - acts[l + 1]
        grads[f"w{l}"], grads[f"b{l}"] = xp.dot(acts[l].T, back), back.sum(axis=0)
        if l:
            back = xp.dot(back, on[f"w{l}"].T)
    return loss / per_case, {k: be.to_numpy(g) for k, g in grads.items()}


def _dtype(a) -> np.dtype:
    """numpy's dtype of ``a`` (a torch array: float32, the master dtype)."""
    return a.dtype if isinstance(a, np.ndarray) else np.dtype(np.float32)


def _trained(p: dict, X: np.ndarray, train_lower: bool, be: arrays.Backend,
             linear: tuple[int, ...] = ()) -> tuple[dict, np.ndarray]:
    """The arrays that learn and the input they see: all of them on ``X``, or the
    output layer alone on the features of ``X``."""
    if train_lower:
        return p, X
    return {"w_out": p["w_out"], "b_out": p["b_out"]}, _features(p, X, be, linear)


def backprop_step(p: dict, vel: dict, X: np.ndarray, Y: np.ndarray, lr: float, momentum: float,
                  train_lower: bool = True, backend: arrays.Backend = NUMPY) -> None:
    """One SGD step with momentum on the mean cross-entropy of :func:`backprop_gradient`;
    ``train_lower`` False: the softmax layer only (the first epochs). In place."""
    q, inputs = _trained(p, X, train_lower, backend)
    _, grads = backprop_gradient(q, inputs, Y, backend=backend)
    for k, g in grads.items():
        vel[k] = momentum * vel[k] - lr * g
        p[k] += vel[k]


def backprop_cg_step(p: dict, X: np.ndarray, Y: np.ndarray, line_searches: int = 3,
                     train_lower: bool = True, backend: arrays.Backend = NUMPY, output: str = "softmax",
                     linear: tuple[int, ...] = (), summed: bool = True) -> list[float]:
    """``line_searches`` conjugate-gradient line searches (:func:`neurosim.optimize.minimize`)
    on the cross-entropy of minibatch ``X`` (:func:`backprop_gradient`'s ``output`` and
    ``linear``) summed over its cases (``CG_CLASSIFY.m``; the mean's first trial step is
    far too short, docs/machines/dbn.md) or, ``summed`` False, its mean (``CG_MNIST.m``,
    the autoencoder); ``train_lower`` False: the output layer only. In place; returns the
    mean loss before and after each search."""
    q, inputs = _trained(p, X, train_lower, backend, linear)
    keys = list(q)
    shapes = [q[k].shape for k in keys]
    cuts = np.cumsum([q[k].size for k in keys])[:-1]

    def unpack(x: np.ndarray) -> dict:
        return {k: part.reshape(s) for k, part, s in zip(keys, np.split(x, cuts), shapes)}

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grads = backprop_gradient(unpack(x), inputs, Y, summed, backend, output, linear)
        return loss, np.concatenate([grads[k].ravel() for k in keys])

    x, history = minimize(fg, np.concatenate([q[k].ravel() for k in keys]), line_searches)
    for k, v in unpack(x).items():
        p[k][...] = v
    return [f / len(X) for f in history] if summed else history


def backprop_predict(params: dict, X: np.ndarray) -> np.ndarray:
    """Labels from a backprop-fine-tuned net (the ``p.*`` arrays of a finished run)."""
    return (_features(params, X) @ params["w_out"] + params["b_out"]).argmax(axis=1)
