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

A large model is a TOML file for its structure and an ``.npz`` beside it for its
arrays (the *populations* format)::

    name = "dbn"
    weights = "dbn.npz"    # beside this file
    sha256 = "9f2c..."     # of dbn.npz
    n_populations = 2
    n_projections = 1
    [[population]]
    name = "h1"
    size = 500
    role = "hidden"
    layer = 1              # optional
    activation = "logistic"  # or "softmax": a one-of-n group (a DBN's labels)
    units = "h1_"          # the names h1_0 .. h1_499; or a list of names
    [[projection]]
    name = "h1->v"
    pre = "h1"
    post = "v"
    delay = 0.0            # optional
    kind = "directed"      # required

The ``.npz`` holds ``bias/POP`` for every population, ``weights/PROJ`` for every
projection and, where there are any, ``recognition_bias/POP``, ``mask/PROJ``,
``reverse/PROJ`` and ``order/PROJ`` (see :meth:`Network.from_populations`). Loading
checks the hash, every array's presence, dtype and shape, and the Network's rules; an
error names the file and the population or projection. ``save`` writes this format
for nets of more than MAX_UNIT_TABLES units and connections, for nets with a softmax
population (which a ``[[unit]]`` table cannot express), or when asked: the ``.npz``
first, then the TOML, each atomically.

``dumps`` writes a file that ``loads`` reads back to an equal Network, bit for bit, and
that a cut anywhere cannot turn into another valid net: it declares ``n_units`` and
``n_edges`` (a cut before a table leaves fewer tables than declared), ends every table
with its then required bias or weight (a cut inside the last table drops it) and ends
with a newline (a file that declares counts but does not end with one was cut mid-line).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import numpy as np

from .errors import ModelFileError, ValidationError
from .network import Edge, Network, Unit
from .npz import read_npz
from .outputs import atomic_write, atomic_write_text
from .population import Population, Projection

__all__ = ["load", "loads", "save", "dumps", "MAX_UNIT_TABLES", "FORMATS"]

FORMATS = ("units", "populations")
MAX_UNIT_TABLES = 4096  # save(): more units + connections than this: the populations format

_TOP_KEYS = {"name", "description", "unit", "edge", "n_units", "n_edges"}
_UNIT_KEYS = {"name", "bias", "role", "layer", "recognition_bias"}
_EDGE_KEYS = {"from", "to", "weight", "kind", "delay", "weight_reverse"}
_POP_TOP_KEYS = {"name", "description", "weights", "sha256", "population", "projection", "n_populations",
                 "n_projections"}
_POPULATION_KEYS = {"name", "size", "role", "layer", "activation", "units"}
_PROJECTION_KEYS = {"name", "pre", "post", "kind", "delay"}
_POP_ARRAYS = ("bias", "recognition_bias")
_PROJ_ARRAYS = ("weights", "mask", "reverse", "order")
_DTYPES = {"bias": "f8", "recognition_bias": "f8", "weights": "f8", "reverse": "f8", "mask": "b1",
           "order": "i8"}


class _Lines:
    """Line numbers of ``[[unit]]``/``[[edge]]`` (or population/projection) tables and of
    keys inside them."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.tables: dict[str, list[int]] = {"unit": [], "edge": [], "population": [], "projection": []}
        for n, line in enumerate(self.lines, start=1):
            m = re.match(r"\s*\[\[\s*(unit|edge|population|projection)\s*\]\]", line)
            if m:
                self.tables[m.group(1)].append(n)

    def table(self, kind: str, k: int) -> int | None:
        rows = self.tables[kind]
        return rows[k] if k < len(rows) else None

    def key(self, kind: str, k: int, key: str) -> int | None:
        start = self.table(kind, k)
        if start is None:
            return None
        starts = sorted(sum(self.tables.values(), []) + [len(self.lines) + 1])
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
    if "population" in doc or "weights" in doc:
        return _load_populations(doc, text, where, source)
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
    name, description = _texts(doc, where, source)
    try:
        return Network(units, edges, name=name, description=description)
    except ValidationError as exc:
        raise _fail(source, _line(exc, where), str(exc)) from None


def _texts(doc: dict, where: _Lines, source: str) -> tuple[str, str]:
    """The model's name (default: the file's stem) and description."""
    name = doc.get("name", Path(source).stem)
    description = doc.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise _fail(source, where.top(key), f"{key} must be a string, got {value!r}")
    return name, description


def _line(exc: ValidationError, where: _Lines, names: dict[str, dict[str, int]] | None = None) -> int | None:
    """The line of the table a ValidationError points at (unit, edge, population or
    projection; ``names[kind][name]`` numbers the population and projection tables)."""
    if getattr(exc, "edge_index", None) is not None:
        return where.table("edge", exc.edge_index)
    if getattr(exc, "unit_index", None) is not None and names is None:
        return where.table("unit", exc.unit_index)
    for kind in ("projection", "population"):
        found = getattr(exc, kind, None)
        if names and found in names[kind]:
            return where.table(kind, names[kind][found])
    return None


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


# -- the populations format: structure in TOML, arrays in an .npz beside it --------------
def _load_populations(doc: dict, text: str, where: _Lines, source: str) -> Network:
    for key in doc:
        if key not in _POP_TOP_KEYS:
            raise _fail(source, where.top(key), f"unknown key {key!r} in a populations model file "
                        f"(expected one of {', '.join(sorted(_POP_TOP_KEYS))})")
    pops = [_population(e, k, where, source) for k, e in enumerate(_tables(doc, "population", where, source))]
    if not pops:
        raise _fail(source, 1, "no [[population]] tables: a model needs at least one population")
    projs = [_projection(e, k, where, source) for k, e in enumerate(_tables(doc, "projection", where, source))]
    _check_counts(doc, text, {"population": len(pops), "projection": len(projs)}, where, source)
    name, description = _texts(doc, where, source)
    arrays, npz = _weights(doc, where, source)
    names = {"population": {p.name: k for k, p in enumerate(pops)},
             "projection": {q.name: k for k, q in enumerate(projs)}}
    _check_arrays(arrays, names, npz, where, source)
    pops = [Population(p.name, p.units, arrays[f"bias/{p.name}"], p.role, p.layer, p.activation,
                       arrays.get(f"recognition_bias/{p.name}")) for p in pops]
    projs = [Projection(q.name, q.pre, q.post, arrays[f"weights/{q.name}"], q.kind, arrays.get(f"mask/{q.name}"),
                        arrays.get(f"reverse/{q.name}"), q.delay) for q in projs]
    order = {q.name: arrays[f"order/{q.name}"] for q in projs if f"order/{q.name}" in arrays} or None
    try:
        return Network.from_populations(pops, projs, name, description, order=order)
    except ValidationError as exc:
        raise _fail(source, _line(exc, where, names), f"{exc} (arrays in {npz})") from None


def _population(entry: dict, k: int, where: _Lines, source: str) -> Population:
    """A population's structure; its arrays come from the .npz."""
    _check_keys(entry, _POPULATION_KEYS, "population", k, where, source)
    args = ("population", k, where, source)
    name = _get(entry, "name", (str,), "a string", *args)
    size = _get(entry, "size", (int,), "an integer", *args)
    units = _get(entry, "units", (str, list), "a prefix or a list of names", *args)
    if isinstance(units, str):
        units = [f"{units}{i}" for i in range(max(size, 0))]
    if size < 1 or len(units) != size or not all(isinstance(u, str) for u in units):
        raise _fail(source, where.key("population", k, "units"), f"population {name!r}: size {size} needs "
                    f"a prefix or a list of {size} names, got {len(units)}")
    return Population(name, tuple(units), np.zeros(0),
                      _get(entry, "role", (str,), "a string", *args, default="hidden"),
                      _get(entry, "layer", (int,), "an integer", *args, default=None),
                      _get(entry, "activation", (str,), "a string", *args, default="logistic"))


def _projection(entry: dict, k: int, where: _Lines, source: str) -> Projection:
    """A projection's structure; its arrays come from the .npz."""
    _check_keys(entry, _PROJECTION_KEYS, "projection", k, where, source)
    args = ("projection", k, where, source)
    return Projection(_get(entry, "name", (str,), "a string", *args), _get(entry, "pre", (str,), "a string", *args),
                      _get(entry, "post", (str,), "a string", *args), np.zeros(0),
                      _get(entry, "kind", (str,), "a string", *args),
                      delay=float(_get(entry, "delay", (int, float), "a number", *args, default=0.0)))


def _weights(doc: dict, where: _Lines, source: str) -> tuple[dict[str, np.ndarray], Path]:
    """The arrays of the .npz named by ``weights``, after checking its SHA-256."""
    for key in ("weights", "sha256"):
        if not isinstance(doc.get(key), str):
            raise _fail(source, where.top(key) or 1, f"a populations model file needs {key} = \"...\" "
                        f"(a string), got {doc.get(key)!r}")
    npz = Path(source).parent / doc["weights"]
    try:
        arrays = read_npz(npz, "model's weights")
    except ModelFileError as exc:
        raise _fail(source, where.top("weights"), str(exc)) from None
    digest = _sha256(npz)
    if digest != doc["sha256"].lower():
        raise _fail(source, where.top("sha256"), f"{npz}: SHA-256 is {digest} but this file records "
                    f"{doc['sha256']}: the weights were changed or belong to another model")
    return arrays, npz


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model's weights: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _check_arrays(arrays: dict[str, np.ndarray], names: dict[str, dict[str, int]], npz: Path, where: _Lines,
                  source: str) -> None:
    """Every population has its bias, every projection its weights; nothing else is
    there; each array has the dtype it needs (shapes: Network.from_populations)."""
    for kind, required, keys in (("population", "bias", _POP_ARRAYS), ("projection", "weights", _PROJ_ARRAYS)):
        for name, k in names[kind].items():
            if f"{required}/{name}" not in arrays:
                raise _fail(source, where.table(kind, k), f"{npz}: no array '{required}/{name}' for {kind} "
                            f"{name!r}")
    for key, arr in arrays.items():
        what, _, name = key.partition("/")
        kind = "population" if what in _POP_ARRAYS else "projection" if what in _PROJ_ARRAYS else None
        if kind is None or name not in names[kind]:
            raise _fail(source, where.top("weights"), f"{npz}: array {key!r} belongs to no population or projection of "
                        "this model")
        if arr.dtype != np.dtype(_DTYPES[what]):
            raise _fail(source, where.table(kind, names[kind][name]), f"{npz}: {kind} {name!r}: array "
                        f"{key!r} has dtype {arr.dtype}, needs {np.dtype(_DTYPES[what])}")


def _prefix(units: tuple[str, ...]) -> str | None:
    """``p`` if the names are ``p0, p1, ...`` (written as ``units = "p"``)."""
    p = units[0][:-1]
    return p if units[0].endswith("0") and all(u == f"{p}{k}" for k, u in enumerate(units)) else None


def dumps_populations(net: Network, weights: str, sha256: str) -> str:
    """The structure of ``net`` as a populations model file whose arrays are in the
    .npz ``weights`` (a path relative to the file) of hash ``sha256``."""
    q = _quote
    out = [f"name = {q(net.name)}", f"description = {q(net.description)}", f"weights = {q(weights)}",
           f"sha256 = {q(sha256)}", f"n_populations = {len(net.populations)}",
           f"n_projections = {len(net.projections)}", ""]
    for pop in net.populations:
        prefix = _prefix(pop.units)
        units = q(prefix) if prefix is not None else "[" + ", ".join(q(u) for u in pop.units) + "]"
        out += ["[[population]]", f"name = {q(pop.name)}", f"size = {pop.size}", f"role = {q(pop.role)}"]
        out += [f"layer = {pop.layer}"] if pop.layer is not None else []
        out += [f"activation = {q(pop.activation)}", f"units = {units}", ""]  # required, last
    for proj in net.projections:
        out += ["[[projection]]", f"name = {q(proj.name)}", f"pre = {q(proj.pre)}", f"post = {q(proj.post)}",
                f"delay = {proj.delay!r}", f"kind = {q(proj.kind)}", ""]  # required, last
    return "\n".join(out)


def _arrays(net: Network) -> dict[str, np.ndarray]:
    """The .npz contents of ``net`` (see the module doc)."""
    out: dict[str, np.ndarray] = {}
    for pop in net.populations:
        out[f"bias/{pop.name}"] = pop.bias
        if pop.recognition_bias is not None and not np.isnan(pop.recognition_bias).all():
            out[f"recognition_bias/{pop.name}"] = pop.recognition_bias
    order = net.edge_order() or {}
    for proj in net.projections:
        out[f"weights/{proj.name}"] = proj.weights
        for what, arr in (("mask", proj.mask), ("reverse", proj.reverse), ("order", order.get(proj.name))):
            if arr is not None:
                out[f"{what}/{proj.name}"] = arr
    return out


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
    softmax = [p.name for p in net.populations if p.activation != "logistic"]
    if softmax:
        raise ModelFileError(f"network {net.name!r}: population {softmax[0]!r} is a softmax group, which "
                             "the unit-by-unit format cannot express; save it in the populations format")
    q = _quote
    out = [f"name = {q(net.name)}", f"description = {q(net.description)}",
           f"n_units = {net.n_units}", f"n_edges = {net.n_edges}", ""]
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


def save(net: Network, path: str | Path, format: str | None = None) -> None:  # noqa: A002
    """Write ``net`` as a model file, atomically (temporary file, then rename).

    ``format``: "units" (one TOML file, table by table), "populations" (TOML beside an
    .npz of the same stem, written first) or None: populations when the net has more
    than MAX_UNIT_TABLES units and connections together, or a softmax population."""
    path = Path(path)
    if format is None:
        large = net.n_units + net.n_edges > MAX_UNIT_TABLES
        format = "populations" if large or net.softmax_groups() else "units"
    if format not in FORMATS:
        raise ModelFileError(f"{path}: unknown model file format {format!r} (one of {', '.join(FORMATS)})")
    if format == "units":
        atomic_write_text(path, dumps(net))
        return
    npz = path.with_name(path.stem + ".npz")
    if npz == path:
        raise ModelFileError(f"{path}: a populations model file needs a name other than its .npz's")
    atomic_write(npz, lambda fh: np.savez(fh, **_arrays(net)))
    atomic_write_text(path, dumps_populations(net, npz.name, _sha256(npz)))
