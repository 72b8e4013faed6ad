"""The point a formula is evaluated at: `--at x=4,y=-3` (repeatable) and API mappings.

A value is a number (3, -2.5, 1e-3, 1/3, pi, e, inf, nan), a vector or matrix literal
([2,-3,-3], [[1,2],[3,4]]), a file (@w.npy, @w.csv, @w.json), or a draw (randn(5,10),
rand(3), zeros(3), ones(2,2)) reproducible with --seed. `@point.json` (or .npz) gives several
names at once. A formula file may carry its own default point in comment lines `# at: ...`.
"""

from __future__ import annotations

import math
import os
import re
import sys
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Mapping

from .errors import InputError
from .scalars import _NUMBER, _SPECIAL, exact_scalar, scalar, to_fraction  # noqa: F401
from .words import name_key, short

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

# numpy (and pointfiles, which reads files with it) is imported where a value needs it: a
# tensor, a draw, a file, an API value, a constant expression. A plain number (--at x=3) is a
# Python float, so that a scalar formula's whole run can go without numpy (the engine makes
# its inputs numpy float64 as it starts).

#: Names of pointfiles that this module used to give (`from gradcli.points import
#: check_json_depth`): still here, loaded on first use.
_FROM_POINTFILES = ("MAX_DIMS", "MAX_ELEMENTS", "MAX_JSON_DEPTH", "_array_from", "_load_json",
                    "_load_npz", "_real_array", "_why", "check_json_depth", "load_file")


def __getattr__(name: str):
    if name in _FROM_POINTFILES:
        from . import pointfiles

        return getattr(pointfiles, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# One character class inside the parentheses: linear time on any text (the nested
# `\s*(\d+(\s*,\s*\d+)*)?\s*,?\s*` it replaces backtracked cubically). _draw reads the dims.
_DRAW = re.compile(r"(randn|rand|zeros|ones)[ \t]*\(([0-9, \t]*)\)")
_STRUCTURE = re.compile(r"[\[\],]")
_DEFAULTS = re.compile(r"^[ \t]*#[ \t]*at:(.*)$", re.MULTILINE)
#: `Point(files=NO_FILES)`: @file values are refused (a formula read from stdin; see Point).
NO_FILES = ""


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


def constant_value(text: str, exact: bool = False, what: str = "the value"):
    """A constant expression of the formula language as a value: 3, -2.5, 1/3, inf, nan, pi,
    π, pi/2, 2*pi, exp(1), sqrt(2)/2, [exp(1), 2*pi], [[1, 2], [3, 4]].

    Read with gradcli's own grammar and engine (never eval): any formula without variables and
    with one output. Gives a numpy float64 or array; with `exact`, a fractions.Fraction where
    the value is rational as written (2/9, -0.20, 1/3 + 1/6), floats elsewhere (pi/2). Raises
    InputError whose message starts with `what` (such as "--at x=pi/2" or "--expect b").
    """
    import numpy as np

    from .errors import GradcliError

    t = text.strip()
    if not t:
        raise InputError(f"{what}: no value")
    special = _SPECIAL.get(t.lower())
    if special is not None:
        return np.float64(special)
    if exact:
        fraction = exact_scalar(t)
        if fraction is not None:
            return fraction
    if _NUMBER.fullmatch(t):
        return np.float64(float(t))
    from .engine import forward, forward_exact
    from .parse import parse

    def refuse(why: str) -> InputError:
        return InputError(f"{what}: {short(t)!r} is not a number or a constant expression "
                          f"({why}; write 3, -2.5, 1/3, pi/2, 2*pi, exp(1) or [1, 2*pi])")

    try:
        tape, _ = parse(t)
    except GradcliError as exc:
        raise refuse(exc.message) from None
    if tape.variables:
        names = ", ".join(short(n, 20) for n in list(tape.variables)[:3])
        one = len(tape.variables) == 1
        raise refuse(f"{names} {'is not a constant' if one else 'are not constants'}")
    if len(tape.statements) != 1 or tape.statements[0].name is not None \
            or len(tape.outputs) != 1:
        raise refuse("a value is one expression, without '=', ';' or ','")
    try:
        values = forward_exact(tape, {})[0] if exact else forward(tape, {})
    except GradcliError as exc:
        raise refuse(exc.message) from None
    value = values[tape.outputs[0]]
    if isinstance(value, Fraction):
        return value
    if not np.all(np.isfinite(value)):  # 1/0, exp(1000), log(-1): say so, do not go on with it
        raise InputError(f"{what}: {short(t)!r} is not a finite number (a division by zero, "
                         "an overflow or a value outside a function's domain; write inf or nan "
                         "for such a value)")
    if np.ndim(value):
        return np.asarray(value, dtype=np.float64)
    return np.float64(value)


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
    import numpy as np

    try:
        value = np.array(result, dtype=np.float64)
    except ValueError:
        raise InputError(f"--at {name}={short(text)}: the rows have different lengths") from None
    if value.size == 0:
        raise InputError(f"--at {name}={short(text)}: an empty vector has no values")
    return value


def _draw(name: str, kind: str, dims: str | None, rng: np.random.Generator):
    import numpy as np

    from .pointfiles import MAX_DIMS, MAX_ELEMENTS

    parts = [d.strip() for d in dims.split(",")] if dims and dims.strip() else []
    if parts and not parts[-1] and len(parts) > 1:
        parts.pop()  # randn(3,): a trailing comma, as Python allows
    if any(not d or len(d) > 12 for d in parts) or len(parts) > MAX_DIMS:
        raise InputError(f"--at {name}={kind}(...): the shape must be up to {MAX_DIMS} whole "
                         "numbers separated by commas, such as randn(5, 10)")
    shape = tuple(int(d) for d in parts)
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
    """Reads values; draws (randn, rand) share one generator so a seed repeats all of them.

    `files` says which @files this reader may open: None, any (the command line, the API);
    a folder, only files inside it, symlinks resolved (values written in a file: a formula
    file's `# at:` lines, a point file's strings, an answers file's `at`, each confined to that
    file's own folder); NO_FILES, none (a formula from stdin). `source` names that file in
    the refusal.
    """

    def __init__(self, seed: int | None = None, exact: bool = False,
                 files: str | None = None, source: str = ""):
        self.seed = seed
        self.exact = exact
        self._rng: np.random.Generator | None = None
        self.drew = False
        self.files = files
        self.source = source

    def _path(self, shown: str, path: str) -> str:
        """The file `path` (as written after '@') to open, or an InputError if this reader may
        not read it: nothing is opened, or even looked at, before this check."""
        if self.files is None:
            return path
        source = self.source or "a file"
        if not self.files:
            raise InputError(f"{shown}: not read: @files are read only when given on the command "
                             f"line, not from {source}")
        folder = os.path.realpath(self.files)
        full = os.path.realpath(os.path.join(folder, path))
        if os.path.commonpath([full, folder]) != folder:
            raise InputError(f"{shown}: not read: a file named in {source} is read only from "
                             f"{source}'s own folder ({folder}), and this one is outside it")
        return full

    @property
    def rng(self) -> np.random.Generator:
        import numpy as np

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
            try:
                return _literal(name, t)
            except InputError as plain:  # '[exp(1), 2*pi]': a literal of expressions
                try:
                    return constant_value(t, False, f"--at {name}={short(t)}")
                except InputError:
                    raise plain from None
        if t.startswith("@"):
            from .pointfiles import load_file

            return load_file(name, self._path(f"--at {name}={short(t)}", t[1:]))
        m = _DRAW.fullmatch(t)
        if m:
            if m.group(1) in ("randn", "rand"):
                self.drew = True
            return _draw(name, m.group(1), m.group(2), self.rng)
        try:
            value = scalar(name, t)  # a Python float (the engine makes it numpy float64)
        except InputError:  # pi/2, 2*pi, exp(1): a constant expression of the language
            return constant_value(t, self.exact, f"--at {name}={short(t)}")
        if self.exact:
            exact = exact_scalar(t)
            if exact is not None:
                return exact
        return value

    def mapping_file(self, path: str) -> dict:
        """`@point.json` or `@point.npz`: several names at once. Its own @file strings are read
        only inside its own folder."""
        from .pointfiles import _array_from, _load_json, _load_npz, _why

        path = self._path(f"--at @{short(path)}", path)
        if not os.path.isfile(path):
            raise InputError(f"--at @{path}: no such file")
        try:
            if path.lower().endswith(".npz"):
                raw = _load_npz(path, f"--at @{path}")
            else:
                with open(path, encoding="utf-8") as fh:
                    raw = _load_json(fh, f"--at @{path}")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"--at @{path}: cannot read it "
                             f"({_why(exc, os.path.splitext(path)[1].lower())})") from None
        if not isinstance(raw, dict):
            raise InputError(f"--at @{path}: the file must hold an object of names and values, "
                             'such as {"x": 1, "w": [2, -3]}')
        out = {}
        files, source = self.files, self.source
        self.files, self.source = os.path.dirname(os.path.abspath(path)), f"@{path}"
        try:
            for k, (name, data) in enumerate(raw.items(), 1):
                name = name_key(name) if isinstance(name, str) else name
                if not isinstance(name, str) or not name.isidentifier():
                    raise InputError(f"--at @{path}: its name number {k} is not a variable "
                                     "name")
                if isinstance(data, str):
                    out[name] = self.value(name, data)
                else:
                    out[name] = _array_from(name, data, path)
        finally:
            self.files, self.source = files, source
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
                name = name_key(name.strip())  # ﬁ is fi, as in the formula
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


def coerce_point(at: Mapping[str, object] | None, exact: bool = False,
                 files: str | None = None, source: str = "") -> dict:
    """An API mapping of names to numbers, nested lists or arrays (or --at strings); `files`
    and `source` as for Point (a mapping read from a file reads @files only beside it)."""
    from .pointfiles import _array_from

    np = sys.modules.get("numpy")  # a numpy number exists only once numpy is imported
    numbers = (Fraction, int, float) if np is None else (Fraction, int, float, np.integer,
                                                          np.floating)
    out: dict = {}
    for name, value in (at or {}).items():
        name = name_key(name) if isinstance(name, str) else name
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"{short(repr(name))} is not a variable name")
        if isinstance(value, str):
            out[name] = Point(0, exact, files, source).value(name, value)
        elif exact and isinstance(value, numbers) \
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
