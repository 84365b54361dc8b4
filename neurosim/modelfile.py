"""Model files: a Network as TOML, read with the standard library's ``tomllib``.

A model file has a ``name``, a ``description``, one ``[[unit]]`` table per unit (in
unit order) and one ``[[edge]]`` table per connection::

    name = "earthquake_truck"
    n_units = 3            # optional: the number of [[unit]] tables
    n_edges = 2            # optional: the number of [[edge]] tables
    [[unit]]
    name = "earthquake"
    bias = -10.0
    role = "hidden"        # visible | hidden | label (default hidden)
    layer = 1              # optional
    [[edge]]
    from = "earthquake"
    to = "house_jumps"
    kind = "directed"      # directed | symmetric | recognition (default directed)
    delay = 0.0            # optional, in sweeps
    weight = 20.0          # required

A unit's bias defaults to 0, except in a file that declares its counts; an edge's
weight has no default. Every error is a :class:`ModelFileError` whose message starts
with ``file:line:``.

``dumps`` writes a file that ``loads`` reads back to an equal Network, bit for bit, and
that a cut anywhere cannot turn into another valid net: it declares ``n_units`` and
``n_edges`` (a cut before a table leaves fewer tables than declared), ends every table
with its then required bias or weight (a cut inside the last table drops it) and ends
with a newline (a file that declares counts but does not end with one was cut mid-line).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .errors import ModelFileError, ValidationError
from .network import Edge, Network, Unit
from .outputs import atomic_write_text

__all__ = ["load", "loads", "save", "dumps"]

_TOP_KEYS = {"name", "description", "unit", "edge", "n_units", "n_edges"}
_UNIT_KEYS = {"name", "bias", "role", "layer", "recognition_bias"}
_EDGE_KEYS = {"from", "to", "weight", "kind", "delay", "weight_reverse"}


class _Lines:
    """Line numbers of ``[[unit]]``/``[[edge]]`` tables and of keys inside them."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.tables: dict[str, list[int]] = {"unit": [], "edge": []}
        for n, line in enumerate(self.lines, start=1):
            m = re.match(r"\s*\[\[\s*(unit|edge)\s*\]\]", line)
            if m:
                self.tables[m.group(1)].append(n)

    def table(self, kind: str, k: int) -> int | None:
        rows = self.tables[kind]
        return rows[k] if k < len(rows) else None

    def key(self, kind: str, k: int, key: str) -> int | None:
        start = self.table(kind, k)
        if start is None:
            return None
        starts = sorted(self.tables["unit"] + self.tables["edge"] + [len(self.lines) + 1])
        end = next(s for s in starts if s > start)
        pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for n in range(start + 1, end):
            if pattern.match(self.lines[n - 1]):
                return n
        return start

    def top(self, key: str) -> int | None:
        pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
        return next((n for n, line in enumerate(self.lines, 1) if pattern.match(line)), None)


def _fail(source: str, line: int | None, message: str) -> ModelFileError:
    return ModelFileError(f"{source}:{line if line is not None else '?'}: {message}")


def loads(text: str, source: str = "<string>") -> Network:
    """Parse model-file text; ``source`` names the file in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise _fail(source, int(m.group(1)) if m else None, f"invalid TOML: {exc}") from None
    where = _Lines(text)
    for key in doc:
        if key not in _TOP_KEYS:
            raise _fail(source, where.top(key), f"unknown key {key!r} (expected one of "
                        f"{', '.join(sorted(_TOP_KEYS))})")
    strict = "n_units" in doc or "n_edges" in doc  # written by dumps: every bias present
    units = [_unit(entry, k, where, source, strict) for k, entry in enumerate(_tables(doc, "unit", where, source))]
    if not units:
        raise _fail(source, 1, "no [[unit]] tables: a model needs at least one unit")
    edges = [_edge(entry, k, where, source) for k, entry in enumerate(_tables(doc, "edge", where, source))]
    _check_counts(doc, text, {"unit": len(units), "edge": len(edges)}, where, source)
    name = doc.get("name", Path(source).stem)
    description = doc.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise _fail(source, where.top(key), f"{key} must be a string, got {value!r}")
    try:
        return Network(units, edges, name=name, description=description)
    except ValidationError as exc:
        if getattr(exc, "edge_index", None) is not None:
            line = where.table("edge", exc.edge_index)
        elif getattr(exc, "unit_index", None) is not None:
            line = where.table("unit", exc.unit_index)
        else:
            line = None
        raise _fail(source, line, str(exc)) from None


def _check_counts(doc: dict, text: str, found: dict[str, int], where: _Lines, source: str) -> None:
    """Declared ``n_units``/``n_edges`` must match the tables found, and a file that
    declares them must end with a newline: otherwise it was cut short."""
    declared = [kind for kind in found if f"n_{kind}s" in doc]
    for kind in declared:
        key, value = f"n_{kind}s", doc[f"n_{kind}s"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _fail(source, where.top(key), f"{key} must be a count (an integer >= 0), got {value!r}")
        if value != found[kind]:
            raise _fail(source, where.top(key), f"{key} = {value} but the file has {found[kind]} "
                        f"[[{kind}]] table{'s' if found[kind] != 1 else ''}: is it cut short?")
    if declared and not text.endswith("\n"):
        raise _fail(source, len(where.lines), "the file declares its counts but does not end with a "
                    "newline: is its last line cut short?")


def _tables(doc: dict, kind: str, where: _Lines, source: str) -> list[dict]:
    entries = doc.get(kind, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _fail(source, where.top(kind), f"{kind!r} must be a list of [[{kind}]] tables")
    return entries


def _check_keys(entry: dict, allowed: set[str], kind: str, k: int, where: _Lines, source: str) -> None:
    for key in entry:
        if key not in allowed:
            raise _fail(source, where.key(kind, k, key), f"{kind} {k + 1}: unknown key {key!r} "
                        f"(expected one of {', '.join(sorted(allowed))})")


def _get(entry: dict, key: str, types: tuple, what: str, kind: str, k: int, where: _Lines,
         source: str, default: object = ...) -> object:
    if key not in entry:
        if default is ...:
            raise _fail(source, where.table(kind, k), f"{kind} {k + 1}: missing {key!r}")
        return default
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise _fail(source, where.key(kind, k, key), f"{kind} {k + 1}: {key} must be {what}, "
                    f"got {value!r}")
    return value


def _unit(entry: dict, k: int, where: _Lines, source: str, strict: bool) -> Unit:
    """A unit; its bias defaults to 0 unless the file declares its counts (``strict``)."""
    _check_keys(entry, _UNIT_KEYS, "unit", k, where, source)
    args = (where, source)
    return Unit(
        name=_get(entry, "name", (str,), "a string", "unit", k, *args),
        bias=float(_get(entry, "bias", (int, float), "a number", "unit", k, *args,
                        **({} if strict else {"default": 0.0}))),
        role=_get(entry, "role", (str,), "a string", "unit", k, *args, default="hidden"),
        layer=_get(entry, "layer", (int,), "an integer", "unit", k, *args, default=None),
        recognition_bias=_float_or_none(_get(entry, "recognition_bias", (int, float), "a number",
                                             "unit", k, *args, default=None)),
    )


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)


def _edge(entry: dict, k: int, where: _Lines, source: str) -> Edge:
    _check_keys(entry, _EDGE_KEYS, "edge", k, where, source)
    args = (where, source)
    return Edge(
        source=_get(entry, "from", (str,), "a string", "edge", k, *args),
        target=_get(entry, "to", (str,), "a string", "edge", k, *args),
        weight=float(_get(entry, "weight", (int, float), "a number", "edge", k, *args)),
        kind=_get(entry, "kind", (str,), "a string", "edge", k, *args, default="directed"),
        delay=float(_get(entry, "delay", (int, float), "a number", "edge", k, *args, default=0.0)),
        weight_reverse=_float_or_none(_get(entry, "weight_reverse", (int, float), "a number", "edge", k,
                                           *args, default=None)),
    )


def load(path: str | Path) -> Network:
    """Read a model file; errors start with ``path:line:``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return loads(text, str(path))


def _quote(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    body = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c
                   for c in text)
    return f'"{body}"'


def dumps(net: Network) -> str:
    """The model file of ``net``: ``loads(dumps(net)) == net`` exactly."""
    q = _quote
    out = [f"name = {q(net.name)}", f"description = {q(net.description)}",
           f"n_units = {net.n_units}", f"n_edges = {len(net.edges)}", ""]
    for unit in net.unit_list():
        out += ["[[unit]]", f"name = {q(unit.name)}", f"role = {q(unit.role)}"]
        if unit.layer is not None:
            out.append(f"layer = {unit.layer}")
        if unit.recognition_bias is not None:
            out.append(f"recognition_bias = {unit.recognition_bias!r}")
        out += [f"bias = {unit.bias!r}", ""]  # last: a cut inside the table drops it
    for edge in net.edges:
        out += ["[[edge]]", f"from = {q(edge.source)}", f"to = {q(edge.target)}", f"kind = {q(edge.kind)}"]
        if edge.delay:
            out.append(f"delay = {edge.delay!r}")
        if edge.weight_reverse is not None:
            out.append(f"weight_reverse = {edge.weight_reverse!r}")
        out += [f"weight = {edge.weight!r}", ""]  # last: a cut inside the table drops it
    return "\n".join(out)


def save(net: Network, path: str | Path) -> None:
    """Write ``net`` as a model file, atomically (temporary file, then rename)."""
    atomic_write_text(path, dumps(net))
