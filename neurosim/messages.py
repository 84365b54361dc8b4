"""Message types and the ledger that counts them.

A unit's only output is its binary state, sent along its out-edges when it changes
(``BINARY``). Algorithms that need more send typed ``ANALOG`` messages: Neal's Gibbs
sampling for belief nets needs each child's predicted probability (sent as its
log-odds, the same information, stable at any bias); backprop needs derivatives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["BINARY", "ANALOG", "Ledger"]

BINARY = "binary"
ANALOG = "analog"


@dataclass
class Ledger:
    """Counts of messages by type, and of unit updates."""

    binary: int = 0
    analog: int = 0
    updates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
