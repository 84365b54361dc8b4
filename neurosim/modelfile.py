"""Model files: a Network as TOML, read with the standard library's ``tomllib``.

Two formats (docs/architecture.md, "The Network", gives both in full):

- *units*: ``name``, ``description``, optional ``n_units``/``n_edges``, one
  ``[[unit]]`` table per unit (name, bias, role, layer, recognition_bias) and one
  ``[[edge]]`` table per connection (from, to, weight, kind, delay, weight_reverse).
  A unit's bias defaults to 0, except in a file that declares its counts; an edge's
  weight has no default.
- *populations*, for large nets: ``[[population]]`` tables (name, size, role, layer,
  activation, units as a prefix ``"h1_"`` or a list) and ``[[projection]]`` tables
  (name, pre, post, kind, delay) in TOML, the arrays in an ``.npz`` beside it
  (``bias/POP``, ``weights/PROJ``; where present ``recognition_bias/POP``,
  ``mask/PROJ``, ``reverse/PROJ``, ``order/PROJ``) whose SHA-256 the TOML records.
  ``save`` writes it above MAX_UNIT_TABLES units and connections, for a softmax or
  linear population, or when asked: the ``.npz`` first, then the TOML, each atomically.

Every error is a :class:`ModelFileError` starting ``file:line:`` and naming the unit,
edge, population or projection. ``dumps`` writes a file that ``loads`` reads back to an
equal Network, bit for bit, and that a cut anywhere cannot turn into another valid net:
it declares its counts, ends every table with its required bias or weight and ends with
a newline.
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
from .population import Population, Projection, recognition_biases

__all__ = ["load", "loads", "save", "dumps", "MAX_UNIT_TABLES", "FORMATS"]

FORMATS = ("units", "populations")
MAX_UNIT_TABLES = 4096  # save(): more units + connections than this: the populations format

_TOP_KEYS = {"name", "description", "unit", "edge", "n_units", "n_edges"}
_POP_TOP_KEYS = {"name", "description", "weights", "sha256", "population", "projection", "n_populations",
                 "n_projections"}
_KEYS = {"unit": {"name", "bias", "role", "layer", "recognition_bias"},
         "edge": {"from", "to", "weight", "kind", "delay", "weight_reverse"},
         "population": {"name", "size", "role", "layer", "activation", "units"},
         "projection": {"name", "pre", "post", "kind", "delay"}}
_POP_ARRAYS = ("bias", "recognition_bias")
_PROJ_ARRAYS = ("weights", "mask", "reverse", "order")
_DTYPES = {"bias": "f8", "recognition_bias": "f8", "weights": "f8", "reverse": "f8", "mask": "b1",
           "order": "i8"}
_TEXT, _NUMBER, _INTEGER = ((str,), "a string"), ((int, float), "a number"), ((int,), "an integer")


class _File:
    """A model file's text and name: the lines of its tables and keys, and errors
    ``source:line: message``."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.lines = text.splitlines()
        self.tables: dict[str, list[int]] = {kind: [] for kind in _KEYS}
        for n, line in enumerate(self.lines, start=1):
            m = re.match(r"\s*\[\[\s*(unit|edge|population|projection)\s*\]\]", line)
            if m:
                self.tables[m.group(1)].append(n)
        self.starts = sorted(sum(self.tables.values(), []) + [len(self.lines) + 1])

    def fail(self, line: int | None, message: str) -> ModelFileError:
        return ModelFileError(f"{self.source}:{line if line is not None else '?'}: {message}")

    def table(self, kind: str, k: int) -> int | None:
        rows = self.tables[kind]
        return rows[k] if k < len(rows) else None

    def key(self, kind: str, k: int, key: str) -> int | None:
        """The line of ``key`` in the k-th [[kind]] table (else the table's own line)."""
        start = self.table(kind, k)
        if start is None:
            return None
        end = next(s for s in self.starts if s > start)
        pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
        return next((n for n in range(start + 1, end) if pattern.match(self.lines[n - 1])), start)

    def top(self, key: str) -> int | None:
        pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
        return next((n for n, line in enumerate(self.lines, 1) if pattern.match(line)), None)

    def check_top(self, doc: dict, allowed: set[str], where: str = "") -> None:
        for key in doc:
            if key not in allowed:
                raise self.fail(self.top(key), f"unknown key {key!r}{where} (expected one of "
                                f"{', '.join(sorted(allowed))})")


class _Table:
    """The k-th ``[[kind]]`` table of a file, its keys checked; :meth:`get` reads one."""

    def __init__(self, file: _File, kind: str, k: int, entry: dict) -> None:
        self.file, self.kind, self.k, self.entry = file, kind, k, entry
        for key in entry:
            if key not in _KEYS[kind]:
                raise file.fail(file.key(kind, k, key), f"{kind} {k + 1}: unknown key {key!r} "
                                f"(expected one of {', '.join(sorted(_KEYS[kind]))})")

    def get(self, key: str, type_: tuple[tuple, str] = _TEXT, default: object = ...) -> object:
        """The value of ``key``, of ``type_`` (a number as a float); ``default`` if absent
        (``...``: required)."""
        if key not in self.entry:
            if default is ...:
                raise self.file.fail(self.file.table(self.kind, self.k),
                                     f"{self.kind} {self.k + 1}: missing {key!r}")
            return default
        value, (types, what) = self.entry[key], type_
        if isinstance(value, bool) or not isinstance(value, types):
            raise self.file.fail(self.file.key(self.kind, self.k, key), f"{self.kind} {self.k + 1}: {key} must be "
                                 f"{what}, got {value!r}")
        return float(value) if type_ is _NUMBER else value


def loads(text: str, source: str = "<string>") -> Network:
    """Parse model-file text; ``source`` names the file in error messages."""
    file = _File(text, source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise file.fail(int(m.group(1)) if m else None, f"invalid TOML: {exc}") from None
    if "population" in doc or "weights" in doc:
        return _load_populations(doc, file)
    file.check_top(doc, _TOP_KEYS)
    strict = "n_units" in doc or "n_edges" in doc  # written by dumps: every bias present
    units, edges = _read_tables(doc, file, {"unit": lambda t: _unit(t, strict), "edge": _edge})
    name, description = _texts(doc, file)
    try:
        return Network(units, edges, name=name, description=description)
    except ValidationError as exc:
        raise file.fail(_line(exc, file), str(exc)) from None


def _read_tables(doc: dict, file: _File, readers: dict) -> list[list]:
    """Each kind's tables, read in turn by ``readers[kind]`` (the first kind needs at
    least one table), then the declared counts checked."""
    found: dict[str, list] = {}
    for kind, read in readers.items():
        entries = doc.get(kind, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise file.fail(file.top(kind), f"{kind!r} must be a list of [[{kind}]] tables")
        found[kind] = [read(_Table(file, kind, k, entry)) for k, entry in enumerate(entries)]
        if not found[next(iter(readers))]:
            raise file.fail(1, f"no [[{kind}]] tables: a model needs at least one {kind}")
    _check_counts(doc, {kind: len(items) for kind, items in found.items()}, file)
    return list(found.values())


def _texts(doc: dict, file: _File) -> tuple[str, str]:
    """The model's name (default: the file's stem) and description."""
    name = doc.get("name", Path(file.source).stem)
    description = doc.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise file.fail(file.top(key), f"{key} must be a string, got {value!r}")
    return name, description


def _line(exc: ValidationError, file: _File, names: dict[str, dict[str, int]] | None = None) -> int | None:
    """The line of the table a ValidationError points at (unit, edge, population or
    projection; ``names[kind][name]`` numbers the population and projection tables)."""
    if getattr(exc, "edge_index", None) is not None:
        return file.table("edge", exc.edge_index)
    if getattr(exc, "unit_index", None) is not None and names is None:
        return file.table("unit", exc.unit_index)
    for kind in ("projection", "population"):
        found = getattr(exc, kind, None)
        if names and found in names[kind]:
            return file.table(kind, names[kind][found])
    return None


def _check_counts(doc: dict, found: dict[str, int], file: _File) -> None:
    """Declared ``n_units``/``n_edges`` must match the tables found, and a file that
    declares them must end with a newline: otherwise it was cut short."""
    declared = [kind for kind in found if f"n_{kind}s" in doc]
    for kind in declared:
        key, value = f"n_{kind}s", doc[f"n_{kind}s"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise file.fail(file.top(key), f"{key} must be a count (an integer >= 0), got {value!r}")
        if value != found[kind]:
            raise file.fail(file.top(key), f"{key} = {value} but the file has {found[kind]} "
                            f"[[{kind}]] table{'s' if found[kind] != 1 else ''}: is it cut short?")
    if declared and not file.text.endswith("\n"):
        raise file.fail(len(file.lines), "the file declares its counts but does not end with a "
                        "newline: is its last line cut short?")


def _unit(t: _Table, strict: bool) -> Unit:
    """A unit; its bias defaults to 0 unless the file declares its counts (``strict``)."""
    return Unit(t.get("name"), t.get("bias", _NUMBER, ... if strict else 0.0), t.get("role", default="hidden"),
                t.get("layer", _INTEGER, None), t.get("recognition_bias", _NUMBER, None))


def _edge(t: _Table) -> Edge:
    return Edge(t.get("from"), t.get("to"), t.get("weight", _NUMBER), t.get("kind", default="directed"),
                t.get("delay", _NUMBER, 0.0), t.get("weight_reverse", _NUMBER, None))


# -- the populations format: structure in TOML, arrays in an .npz beside it --------------
def _load_populations(doc: dict, file: _File) -> Network:
    file.check_top(doc, _POP_TOP_KEYS, " in a populations model file")
    pops, projs = _read_tables(doc, file, {"population": _population, "projection": _projection})
    name, description = _texts(doc, file)
    arrays, npz = _weights(doc, file)
    names = {"population": {p.name: k for k, p in enumerate(pops)},
             "projection": {q.name: k for k, q in enumerate(projs)}}
    _check_arrays(arrays, names, npz, file)
    pops = [Population(p.name, p.units, arrays[f"bias/{p.name}"], p.role, p.layer, p.activation,
                       arrays.get(f"recognition_bias/{p.name}")) for p in pops]
    projs = [Projection(q.name, q.pre, q.post, arrays[f"weights/{q.name}"], q.kind, arrays.get(f"mask/{q.name}"),
                        arrays.get(f"reverse/{q.name}"), q.delay) for q in projs]
    order = {q.name: arrays[f"order/{q.name}"] for q in projs if f"order/{q.name}" in arrays} or None
    try:
        return Network.from_populations(pops, projs, name, description, order=order)
    except ValidationError as exc:
        raise file.fail(_line(exc, file, names), f"{exc} (arrays in {npz})") from None


def _population(t: _Table) -> Population:
    """A population's structure; its arrays come from the .npz."""
    name, size = t.get("name"), t.get("size", _INTEGER)
    units = t.get("units", ((str, list), "a prefix or a list of names"))
    if isinstance(units, str):
        units = [f"{units}{i}" for i in range(max(size, 0))]
    if size < 1 or len(units) != size or not all(isinstance(u, str) for u in units):
        raise t.file.fail(t.file.key("population", t.k, "units"), f"population {name!r}: size {size} needs "
                          f"a prefix or a list of {size} names, got {len(units)}")
    return Population(name, tuple(units), np.zeros(0), t.get("role", default="hidden"),
                      t.get("layer", _INTEGER, None), t.get("activation", default="logistic"))


def _projection(t: _Table) -> Projection:
    """A projection's structure; its arrays come from the .npz."""
    return Projection(t.get("name"), t.get("pre"), t.get("post"), np.zeros(0), t.get("kind"),
                      delay=t.get("delay", _NUMBER, 0.0))


def _weights(doc: dict, file: _File) -> tuple[dict[str, np.ndarray], Path]:
    """The arrays of the .npz named by ``weights``, after checking its SHA-256."""
    for key in ("weights", "sha256"):
        if not isinstance(doc.get(key), str):
            raise file.fail(file.top(key) or 1, f"a populations model file needs {key} = \"...\" "
                            f"(a string), got {doc.get(key)!r}")
    npz = Path(file.source).parent / doc["weights"]
    try:
        arrays = read_npz(npz, "model's weights")
    except ModelFileError as exc:
        raise file.fail(file.top("weights"), str(exc)) from None
    digest = _sha256(npz)
    if digest != doc["sha256"].lower():
        raise file.fail(file.top("sha256"), f"{npz}: SHA-256 is {digest} but this file records "
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


def _check_arrays(arrays: dict[str, np.ndarray], names: dict[str, dict[str, int]], npz: Path, file: _File) -> None:
    """Every population has its bias, every projection its weights; nothing else is
    there; each array has the dtype it needs (shapes: Network.from_populations)."""
    for kind, required in (("population", "bias"), ("projection", "weights")):
        for name, k in names[kind].items():
            if f"{required}/{name}" not in arrays:
                raise file.fail(file.table(kind, k), f"{npz}: no array '{required}/{name}' for {kind} {name!r}")
    for key, arr in arrays.items():
        what, _, name = key.partition("/")
        kind = "population" if what in _POP_ARRAYS else "projection" if what in _PROJ_ARRAYS else None
        if kind is None or name not in names[kind]:
            raise file.fail(file.top("weights"), f"{npz}: array {key!r} belongs to no population or projection "
                            "of this model")
        if arr.dtype != np.dtype(_DTYPES[what]):
            raise file.fail(file.table(kind, names[kind][name]), f"{npz}: {kind} {name!r}: array "
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
        if recognition_biases(pop) is not None:
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
    other = [p for p in net.populations if p.activation != "logistic"]
    if other:
        raise ModelFileError(f"network {net.name!r}: population {other[0].name!r} is "
                             f"{'a softmax group' if other[0].activation == 'softmax' else 'linear'}, which "
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
    than MAX_UNIT_TABLES units and connections together, or a softmax or linear population."""
    path = Path(path)
    if format is None:
        large = net.n_units + net.n_edges > MAX_UNIT_TABLES
        format = "populations" if large or any(p.activation != "logistic" for p in net.populations) else "units"
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
