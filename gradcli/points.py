"""The point a formula is evaluated at: `--at x=4,y=-3` (repeatable) and API mappings.

A value is a number (3, -2.5, 1e-3, 1/3, pi, e, inf, nan), a vector or matrix literal
([2,-3,-3], [[1,2],[3,4]]), a file (@w.npy, @w.csv, @w.json), or a draw (randn(5,10),
rand(3), zeros(3), ones(2,2)) reproducible with --seed. `@point.json` (or .npz) gives several
names at once. A formula file may carry its own default point in comment lines `# at: ...`.
"""

from __future__ import annotations

import json
import math
import os
import re
from fractions import Fraction
from typing import Iterable, Mapping

import numpy as np

from .errors import InputError
from .ops import CONSTANTS
from .words import short

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}
_DRAW = re.compile(r"(randn|rand|zeros|ones)\s*\(\s*(\d+(\s*,\s*\d+)*)?\s*,?\s*\)")
_STRUCTURE = re.compile(r"[\[\],]")
_DEFAULTS = re.compile(r"^[ \t]*#[ \t]*at:(.*)$", re.MULTILINE)
MAX_ELEMENTS = 100_000_000


def split_items(spec: str) -> list[str]:
    """Split `x=1,w=[1,2],W=randn(2,3)` at the commas outside brackets and parentheses."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(spec):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    items.append(spec[start:])
    return items


def exact_scalar(t: str) -> Fraction | None:
    """A number exactly as written (0.1 is 1/10, 1/3 is 1/3); None for pi, e, inf, nan."""
    from .words import bounded_fraction

    t = "".join(t.split())
    if "/" in t:
        num, _, den = t.partition("/")
        if _NUMBER.fullmatch(num) and _NUMBER.fullmatch(den) and float(den) != 0:
            a, b = bounded_fraction(num), bounded_fraction(den)
            return None if a is None or b is None or b == 0 else a / b
        return None
    if _NUMBER.fullmatch(t):
        return bounded_fraction(t)
    return None


def to_fraction(v):
    """An API value for --exact: ints and fractions exact, floats as their shortest decimal."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return Fraction(int(v))
    if isinstance(v, (float, np.floating)) and math.isfinite(v):
        return Fraction(repr(float(v)))
    return v


def scalar(name: str, t: str) -> float:
    """One number as written: 3, -2.5, 1e-3, 1/3, pi, -e, inf, nan."""
    t = t.strip()
    body = t
    sign = 1.0
    if body[:1] in "+-":
        sign, body = (-1.0 if body[0] == "-" else 1.0), body[1:].strip()
    if body in CONSTANTS:
        return sign * CONSTANTS[body]
    if t.lower() in _SPECIAL:
        return _SPECIAL[t.lower()]
    if "/" in t:
        num, _, den = t.partition("/")
        a, b = num.strip(), den.strip()
        if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
            if float(b) == 0:
                raise InputError(f"--at {name}={short(t)}: division by zero in the value")
            return float(a) / float(b)
    if _NUMBER.fullmatch(t):
        return float(t)
    raise InputError(f"--at {name}={short(t)}: {short(t)!r} is not a number "
                     "(write 3, -2.5, 1e-3, 1/3, pi or e)")


def _literal(name: str, text: str) -> np.ndarray:
    """A nested list literal such as [[1, 2], [3, 1/3]], read in one pass without recursion:
    the text between brackets and commas is sliced out, never grown a character at a time."""
    stack: list[list] = []
    result = None
    closed = False  # whether the element just before is a list that was closed
    last = 0  # where the current element's text starts
    for m in _STRUCTURE.finditer(text):
        pos, ch = m.start(), m.group()
        token = text[last:pos]
        last = pos + 1
        if ch == "[":
            if token.strip() or result is not None:
                raise InputError(f"--at {name}={short(text)}: unexpected '[' at offset {pos}")
            stack.append([])
            closed = False
            continue
        if result is not None:
            if ch == "]" and not token.strip():
                raise InputError(f"--at {name}={short(text)}: unbalanced ']' at offset {pos}")
            raise InputError(f"--at {name}={short(text)}: text after the closing ']'")
        if not token.strip() and not closed and (ch == "," or (stack and stack[-1])):
            raise InputError(f"--at {name}={short(text)}: an empty element before the "
                             f"'{ch}' at offset {pos}")
        if token.strip():
            if not stack:
                raise InputError(f"--at {name}={short(text)}: a number outside brackets at "
                                 f"offset {pos}")
            try:
                stack[-1].append(scalar(name, token))
            except InputError:
                raise InputError(f"--at {name}={short(text)}: {short(token.strip())!r} is not "
                                 "a number") from None
        if ch == ",":
            closed = False
            continue
        if not stack:  # ']'
            raise InputError(f"--at {name}={short(text)}: unbalanced ']' at offset {pos}")
        done = stack.pop()
        if stack:
            stack[-1].append(done)
        else:
            result = done
        closed = True
    if not stack and result is not None and text[last:].strip():
        raise InputError(f"--at {name}={short(text)}: text after the closing ']'")
    if stack or result is None:
        raise InputError(f"--at {name}={short(text)}: unbalanced '['")
    try:
        value = np.array(result, dtype=np.float64)
    except ValueError:
        raise InputError(f"--at {name}={short(text)}: the rows have different lengths") from None
    if value.size == 0:
        raise InputError(f"--at {name}={short(text)}: an empty vector has no values")
    return value


def _array_from(name: str, data, where: str) -> np.ndarray | np.float64:
    try:
        value = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError(f"{where}: the value of {name} is not a number or a rectangular array "
                         "of numbers") from None
    if value.ndim == 0:
        return np.float64(value)
    if value.size == 0:
        raise InputError(f"{where}: the value of {name} is empty")
    return value


def load_file(name: str, path: str):
    """A value from a file: .npy, .csv/.txt (a matrix; one row or column is a vector), .json."""
    if not os.path.isfile(path):
        raise InputError(f"--at {name}=@{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            return _array_from(name, np.load(path, allow_pickle=False), path)
        if ext == ".json":
            with open(path, encoding="utf-8") as fh:
                return _array_from(name, json.load(fh), path)
        with open(path, encoding="utf-8") as fh:
            rows = [line for line in fh if line.strip() and not line.lstrip().startswith("#")]
        if not rows:
            raise InputError(f"--at {name}=@{path}: the file has no numbers")
        table = []
        for k, row in enumerate(rows):
            cells = []
            for c, cell in enumerate(row.split(",")):
                try:
                    cells.append(scalar(name, cell))
                except InputError:
                    raise InputError(f"--at {name}=@{path}: row {k + 1}, column {c + 1}: "
                                     f"{short(cell.strip())!r} is not a number") from None
            table.append(cells)
        value = _array_from(name, table, path)
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--at {name}=@{path}: cannot read it ({exc})") from None
    if value.ndim == 2 and 1 in value.shape:
        value = value.reshape(-1)
        return np.float64(value[0]) if value.size == 1 else value
    return value


def _draw(name: str, kind: str, dims: str | None, rng: np.random.Generator):
    shape = tuple(int(d) for d in dims.replace(" ", "").split(",")) if dims else ()
    size = math.prod(shape)
    if size == 0:
        raise InputError(f"--at {name}={kind}{shape}: a tensor with no elements has no values")
    if size > MAX_ELEMENTS:
        raise InputError(f"--at {name}={kind}{shape}: {size} elements is more than the "
                         f"{MAX_ELEMENTS} gradcli allows")
    if kind == "zeros":
        value = np.zeros(shape)
    elif kind == "ones":
        value = np.ones(shape)
    elif kind == "rand":
        value = rng.random(shape)
    else:
        value = rng.standard_normal(shape)
    return np.float64(value) if shape == () else value


class Point:
    """Reads values; draws (randn, rand) share one generator so a seed repeats all of them."""

    def __init__(self, seed: int | None = None, exact: bool = False):
        self.seed = seed
        self.exact = exact
        self._rng: np.random.Generator | None = None
        self.drew = False

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            if self.seed is None:
                self.seed = int(np.random.SeedSequence().entropy % (2**31))
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def value(self, name: str, text: str):
        """One `name=text` value."""
        t = text.strip()
        if not t:
            raise InputError(f"--at {name}= has no value: write {name}=3")
        if t.startswith("["):
            return _literal(name, t)
        if t.startswith("@"):
            return load_file(name, t[1:])
        m = _DRAW.fullmatch(t)
        if m:
            if m.group(1) in ("randn", "rand"):
                self.drew = True
            return _draw(name, m.group(1), m.group(2), self.rng)
        value = np.float64(scalar(name, t))
        if self.exact:
            exact = exact_scalar(t)
            if exact is not None:
                return exact
        return value

    def mapping_file(self, path: str) -> dict:
        """`@point.json` or `@point.npz`: several names at once."""
        if not os.path.isfile(path):
            raise InputError(f"--at @{path}: no such file")
        try:
            if path.lower().endswith(".npz"):
                with np.load(path, allow_pickle=False) as data:
                    raw = {k: data[k] for k in data.files}
            else:
                with open(path, encoding="utf-8") as fh:
                    raw = json.load(fh)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"--at @{path}: cannot read it ({exc})") from None
        if not isinstance(raw, dict):
            raise InputError(f"--at @{path}: the file must hold an object of names and values, "
                             'such as {"x": 1, "w": [2, -3]}')
        out = {}
        for name, data in raw.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise InputError(f"--at @{path}: {name!r} is not a variable name")
            if isinstance(data, str):
                out[name] = self.value(name, data)
            else:
                out[name] = _array_from(name, data, path)
        return out

    def parse(self, specs: Iterable[str]) -> dict:
        """All `--at` flags merged into one mapping; a name given twice is an error."""
        at: dict = {}
        for spec in specs:
            for item in split_items(spec):
                if not item.strip():
                    if spec.strip():
                        continue  # a trailing comma: x=1,
                    raise InputError("--at is empty: write --at x=1,y=2")
                name, eq, text = item.partition("=")
                name = name.strip()
                if not eq and name.startswith("@"):
                    for key, value in self.mapping_file(name[1:]).items():
                        if key in at:
                            raise InputError(f"--at gives {key} twice")
                        at[key] = value
                    continue
                if not eq:
                    raise InputError(f"--at {short(item.strip())}: missing '=': write "
                                     f"{short(name) or 'x'}=3")
                if not name.isidentifier():
                    raise InputError(f"--at {short(item.strip())}: {short(name)!r} is not a "
                                     "variable name")
                if name in at:
                    raise InputError(f"--at gives {name} twice")
                at[name] = self.value(name, text)
        return at


def parse_at(specs: Iterable[str], seed: int | None = None) -> dict:
    """`--at` flags as one mapping of names to float64 scalars or arrays."""
    return Point(seed).parse(specs)


def defaults(text: str) -> list[str]:
    """The default point a formula file carries in `# at: W=randn(5,10), X=...` lines."""
    return [m.group(1).strip() for m in _DEFAULTS.finditer(text) if m.group(1).strip()]


def coerce_point(at: Mapping[str, object] | None, exact: bool = False) -> dict:
    """An API mapping of names to numbers, nested lists or arrays (or --at strings)."""
    out: dict = {}
    for name, value in (at or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"{name!r} is not a variable name")
        if isinstance(value, str):
            out[name] = Point(0, exact).value(name, value)
        elif exact and isinstance(value, (Fraction, int, float, np.integer, np.floating)) \
                and not isinstance(value, bool):
            out[name] = to_fraction(value)
        elif isinstance(value, bool) or value is None:
            raise InputError(f"the value of {name} must be a number, got {type(value).__name__}")
        else:
            try:
                out[name] = _array_from(name, value, "the point")
            except OverflowError:
                raise InputError(f"the value of {name} is too large for float64") from None
    return out
