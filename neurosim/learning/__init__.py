"""Local learning rules as synapse-level plugins, and the view that keeps them local."""

from .rules import Backprop, Delta, HebbianContrast, Rule, WakeSleep, get_rule, register, rule_names
from .view import FIELDS, SynapseView

__all__ = ["Rule", "HebbianContrast", "Delta", "WakeSleep", "Backprop", "register", "get_rule",
           "rule_names", "SynapseView", "FIELDS"]
