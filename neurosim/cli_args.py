"""Argument machinery shared by every ``neurosim`` subcommand (cli.py and cli_mnist.py).

``single_valued(parser)`` makes the plain options that a parser is given from then
on refuse to be given twice with different values (``--lr given twice (0.1, 0.2)``)
instead of silently keeping the last; the top-level parser must be a ``Parser``, which
drops this bookkeeping from the parsed arguments. The ``*_int``/``*_float`` functions
are argparse types that refuse what the flag cannot mean (``--seed -1``, ``--lr nan``).
``strict_json`` is what ``--json`` prints: strict JSON, never a bare NaN.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, Callable

from .errors import NeurosimError

__all__ = ["Parser", "Once", "single_valued", "positive_int", "non_negative_int", "seed", "positive_float",
           "non_negative_float", "temperatures", "layer_sizes", "strict_json", "backend_flags", "run_directory_flags"]


class Once(argparse._StoreAction):
    """``store``, except that a second occurrence with a different value is an error
    (exit 2); the same value again is accepted."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in given and given[self.dest] != values:
            parser.error(f"{option_string} given twice ({_show(given[self.dest])}, {_show(values)})")
        given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def single_valued(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser``, whose options added from now on with the default ``store`` action are
    ``Once``: given twice with different values, an error."""
    parser.register("action", None, Once)
    parser.register("action", "store", Once)
    return parser


class Parser(argparse.ArgumentParser):
    """The top-level parser: drops ``Once``'s record of what was given."""

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        parsed.__dict__.pop("_given_once", None)
        return parsed


_KINDS = {int: "an integer", float: "a number"}


def _checked(kind: type, ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` (int or float), refused with ``rule`` unless ``ok`` holds."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {_KINDS[kind]}, got {text}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value

    return parse


positive_int = _checked(int, lambda v: v > 0, "must be a positive integer")
non_negative_int = _checked(int, lambda v: v >= 0, "must be >= 0")
seed = _checked(int, lambda v: v >= 0, "a seed must be a non-negative integer")   # of numpy's default_rng
positive_float = _checked(float, lambda v: 0 < v < math.inf, "must be a positive finite number")
non_negative_float = _checked(float, lambda v: 0 <= v < math.inf, "must be a finite number >= 0")
unit_float = _checked(float, lambda v: 0 <= v <= 1, "must be a number in [0, 1]")


def temperatures(text: str) -> tuple[float, ...]:
    """``T1,T2,...``: positive finite temperatures."""
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write temperatures as numbers separated by commas, "
                                         f"got {text}") from None
    if not all(0 < t < math.inf for t in values):
        raise argparse.ArgumentTypeError(f"temperatures must be positive and finite, got {text}")
    return values


def layer_sizes(text: str) -> tuple[int, ...]:
    """``"1000,500,250,30"`` -> (1000, 500, 250, 30); the recipe checks the sizes."""
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write sizes as integers separated by commas, got {text}")


def strict_json(result: dict) -> str:
    """``result`` as strict JSON (RFC 8259: no NaN or Infinity), else a NeurosimError
    naming the first non-finite number.

    >>> strict_json({"p": [0.5, float("nan")]})
    Traceback (most recent call last):
    ...
    neurosim.errors.NeurosimError: --json: result['p'][1] is nan, which JSON cannot hold
    """
    try:
        return json.dumps(result, indent=2, allow_nan=False)
    except ValueError:
        where, value = _non_finite(result, "result")
        raise NeurosimError(f"--json: {where} is {value}, which JSON cannot hold") from None


def _non_finite(obj, where: str) -> tuple[str, float] | None:
    """The path and value of the first NaN or infinite float in ``obj``, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = _non_finite(value, f"{where}[{key!r}]")
        if found:
            return found
    return None


def run_directory_flags(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint-minutes``, ``--out`` and ``--resume`` of a staged run in a directory
    (``dbn``, ``autoencoder`` and ``dbm train``)."""
    parser.add_argument("--checkpoint-minutes", type=non_negative_float, default=3.0, metavar="M",
                        help="checkpoint every M minutes of training (at the next minibatch), as well as after "
                             "every stage and on Ctrl-C; 0: after every minibatch")
    parser.add_argument("--out", required=True, help="the run's directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out with its own settings (a flag that differs is refused)")


def backend_flags(parser: argparse.ArgumentParser, what: str, given_only: bool = False,
                  flags: tuple[str, ...] = ("--backend", "--device", "--dtype")) -> None:
    """``--backend``, ``--device``, ``--dtype`` of ``what``, as strings: the library checks
    them (:func:`neurosim.compiled.arrays.backend`). ``given_only``: None when not given
    (the recipe's, which is numpy, cpu, float32). ``flags``: which of the three."""
    for flag, default, metavar, text in (
            ("--backend", "numpy", "numpy|torch", f"array library of {what}; torch: pip install neurosim[torch]"),
            ("--device", "cpu", "cpu|cuda", "device of a torch backend"),
            ("--dtype", "float32", "float32|bfloat16",
             "type of the matrix products; bfloat16: torch only, the weights stay float32")):
        if flag in flags:
            parser.add_argument(flag, default=None if given_only else default, metavar=metavar,
                                help=f"{text} ({'preset' if given_only else 'default'}: {default})")
