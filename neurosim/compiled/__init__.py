"""The compiled backend: the same Network run as matrices, many chains at once."""

from .plan import CompiledNet, Plan, Step, compile
from .sampler import Chains, log_sigmoid, sigmoid

__all__ = ["compile", "CompiledNet", "Plan", "Step", "Chains", "sigmoid", "log_sigmoid"]
