"""The event engine: units as simpy processes exchanging binary messages."""

from .monitors import Trace
from .schedules import SCHEDULES
from .simulator import MODES, Simulator

__all__ = ["Simulator", "Trace", "SCHEDULES", "MODES"]
