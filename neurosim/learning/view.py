"""The synapse view: everything a local learning rule may read, and nothing else.

A synapse ``pre -> post`` lives at the post-synaptic unit. It can see the state of
``pre`` as it last arrived, the state of ``post``, the probability ``post`` gave
itself from its own input (``post_prob``), a global phase signal, its own weight and
accumulators, and the learning rate. Backprop's synapses can also see ``post_error``
(a derivative sent backwards as an analog message), when the procedure sends one.
Reading anything else raises :class:`LocalityError`; every read is recorded, so the
audit can report what each rule needs.
"""

from __future__ import annotations

from typing import Any

from ..errors import LocalityError

__all__ = ["SynapseView", "FIELDS"]

FIELDS = ("pre", "post", "post_prob", "post_error", "phase", "weight", "acc", "lr")


class SynapseView:
    """Read-only, read-recording view of one synapse for one observation.

    Parameters
    ----------
    where : str
        The synapse, for error messages (e.g. ``"synapse a -> b"``).
    reads : set
        Field names read are added to it.
    **values
        The local quantities this procedure provides (a subset of ``FIELDS``).
    """

    __slots__ = ("_where", "_reads", "_values")

    def __init__(self, where: str, reads: set[str], **values: Any) -> None:
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_reads", reads)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        values = self._values
        if name in values:
            self._reads.add(name)
            return values[name]
        if name in FIELDS:
            raise LocalityError(f"{self._where}: {name!r} is not sent to this synapse in this "
                                f"procedure (it has {', '.join(values)})")
        raise LocalityError(f"{self._where}: a rule read {name!r}, which is not local to the "
                            f"synapse; it can see only {', '.join(FIELDS)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise LocalityError(f"{self._where}: a rule tried to set {name!r}; rules return a weight "
                            "change and may write only their own accumulators (view.acc)")
