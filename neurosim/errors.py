"""Typed errors. Each names the file, line, unit or edge at fault."""

__all__ = ["NeurosimError", "ValidationError", "ModelFileError", "EvidenceError", "InferenceError",
           "LocalityError", "ParameterError", "DivergenceError"]


class NeurosimError(Exception):
    """Base class of every error neurosim raises on bad input."""


class ValidationError(NeurosimError):
    """A Network is malformed: unknown or duplicate unit, self-loop, directed cycle, ..."""


class ModelFileError(NeurosimError):
    """A model file cannot be read; the message starts with ``file:line:``."""


class EvidenceError(ValidationError):
    """Evidence names an unknown unit or a value other than 0 or 1."""


class InferenceError(NeurosimError):
    """An inference request the net cannot serve (too many states to enumerate, ...)."""


class LocalityError(NeurosimError):
    """A learning rule reached for something its synapse cannot see."""


class ParameterError(NeurosimError, ValueError):
    """A machine's parameter or its training data is invalid; the message names the value."""


class DivergenceError(NeurosimError, ArithmeticError):
    """Training made a parameter non-finite (too large a learning rate); the message names
    the parameter, and the epoch or update where it happened."""
