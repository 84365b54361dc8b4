"""Discriminative fine-tuning of a DBN by backpropagation (``backpropclassify.m``).

The recognition stack and the pen-to-top weights, with a softmax output layer on top,
trained on the labels' cross-entropy by SGD with momentum (:func:`backprop_step`) or,
as published, conjugate-gradient line searches per minibatch (:func:`backprop_cg_step`);
for the first epochs only the softmax layer learns. Notes: docs/machines/dbn.md.
"""

from __future__ import annotations

import numpy as np

from ..numerics import sigmoid
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


def _features(p: dict, X: np.ndarray) -> np.ndarray:
    """The activities of the last sigmoid layer."""
    a = np.asarray(X, dtype=p["w_out"].dtype)
    for l in range(_n_hidden(p)):
        a = sigmoid(a @ p[f"w{l}"] + p[f"b{l}"])
    return a


def backprop_gradient(p: dict, X: np.ndarray, Y: np.ndarray,
                      summed: bool = False) -> tuple[float, dict[str, np.ndarray]]:
    """The mean cross-entropy ``-mean log softmax(z)[label]`` of one-hot ``Y`` (``summed``:
    the sum) and its gradient for every array of ``p`` (only ``w_out``, ``b_out``: the
    softmax layer alone, on features ``X``). The softmax layer's error is computed in
    float64, as ``backpropclassify.m`` does (float32 rounds ``1 - q`` to 0)."""
    acts = [X]
    for l in range(_n_hidden(p)):
        acts.append(sigmoid(acts[-1] @ p[f"w{l}"] + p[f"b{l}"]))
    z = (acts[-1] @ p["w_out"] + p["b_out"]).astype(np.float64)
    log_q = z - z.max(axis=1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    per_case = 1 if summed else len(X)
    loss = -float((log_q * Y).sum()) / per_case
    delta = ((np.exp(log_q) - Y) / per_case).astype(acts[-1].dtype)
    grads = {"w_out": acts[-1].T @ delta, "b_out": delta.sum(axis=0)}
    back = delta @ p["w_out"].T
    for l in reversed(range(_n_hidden(p))):
        back = back * acts[l + 1] * (1 - acts[l + 1])
        grads[f"w{l}"], grads[f"b{l}"] = acts[l].T @ back, back.sum(axis=0)
        if l:
            back = back @ p[f"w{l}"].T
    return loss, grads


def _trained(p: dict, X: np.ndarray, train_lower: bool) -> tuple[dict, np.ndarray]:
    """The arrays that learn and the input they see: all of them on ``X``, or the
    softmax layer alone on the features of ``X``."""
    if train_lower:
        return p, X
    return {"w_out": p["w_out"], "b_out": p["b_out"]}, _features(p, X)


def backprop_step(p: dict, vel: dict, X: np.ndarray, Y: np.ndarray, lr: float, momentum: float,
                  train_lower: bool = True) -> None:
    """One SGD step with momentum on the mean cross-entropy of :func:`backprop_gradient`;
    ``train_lower`` False: the softmax layer only (the first epochs). In place."""
    q, inputs = _trained(p, X, train_lower)
    _, grads = backprop_gradient(q, inputs, Y)
    for k, g in grads.items():
        vel[k] = momentum * vel[k] - lr * g
        p[k] += vel[k]


def backprop_cg_step(p: dict, X: np.ndarray, Y: np.ndarray, line_searches: int = 3,
                     train_lower: bool = True) -> list[float]:
    """``line_searches`` conjugate-gradient line searches (:func:`neurosim.optimize.minimize`)
    on the cross-entropy of minibatch ``X`` summed over its cases (``CG_CLASSIFY.m``; the
    mean's first trial step is far too short, docs/machines/dbn.md); ``train_lower``
    False: the softmax layer only. In place; returns the mean loss before and after each search."""
    q, inputs = _trained(p, X, train_lower)
    keys = list(q)
    shapes = [q[k].shape for k in keys]
    cuts = np.cumsum([q[k].size for k in keys])[:-1]

    def unpack(x: np.ndarray) -> dict:
        return {k: part.reshape(s) for k, part, s in zip(keys, np.split(x, cuts), shapes)}

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grads = backprop_gradient(unpack(x), inputs, Y, summed=True)
        return loss, np.concatenate([grads[k].ravel() for k in keys])

    x, history = minimize(fg, np.concatenate([q[k].ravel() for k in keys]), line_searches)
    for k, v in unpack(x).items():
        p[k][...] = v
    return [f / len(X) for f in history]


def backprop_predict(params: dict, X: np.ndarray) -> np.ndarray:
    """Labels from a backprop-fine-tuned net (the ``p.*`` arrays of a finished run)."""
    return (_features(params, X) @ params["w_out"] + params["b_out"]).argmax(axis=1)
