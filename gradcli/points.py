"""The point a formula is evaluated at: `--at x=4,y=-3` (repeatable) and API mappings."""

from __future__ import annotations

import math
import re
from typing import Iterable, Mapping

import numpy as np

from .errors import InputError
from .ops import CONSTANTS

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}


def split_items(spec: str) -> list[str]:
    """Split `x=1,w=[1,2]` at the commas that are not inside brackets."""
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


def parse_value(name: str, text: str) -> np.float64:
    """A scalar value as written after `name=`: a number, a fraction 1/3, pi, e, inf or nan."""
    t = text.strip()
    if not t:
        raise InputError(f"--at {name}= has no value: write {name}=3")
    if t.startswith("["):
        raise InputError(f"--at {name}={_short(t)}: vector and matrix values are not supported "
                         "in this version; give scalars")
    sign = 1.0
    body = t
    if body[0] in "+-":
        sign, body = (-1.0 if body[0] == "-" else 1.0), body[1:].strip()
    if body in CONSTANTS:
        return np.float64(sign * CONSTANTS[body])
    if t.lower() in _SPECIAL:
        return np.float64(_SPECIAL[t.lower()])
    if "/" in t:
        num, _, den = t.partition("/")
        a, b = num.strip(), den.strip()
        if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
            if float(b) == 0:
                raise InputError(f"--at {name}={_short(t)}: division by zero in the value")
            return np.float64(float(a) / float(b))
    if _NUMBER.fullmatch(t):
        return np.float64(float(t))
    raise InputError(f"--at {name}={_short(t)}: {_short(t)!r} is not a number "
                     "(write 3, -2.5, 1e-3, 1/3, pi or e)")


def parse_at(specs: Iterable[str]) -> dict[str, np.float64]:
    """All `--at` flags merged into one mapping; a name given twice is an error."""
    at: dict[str, np.float64] = {}
    for spec in specs:
        for item in split_items(spec):
            if not item.strip():
                if spec.strip():
                    continue  # a trailing comma: x=1,
                raise InputError("--at is empty: write --at x=1,y=2")
            name, eq, text = item.partition("=")
            name = name.strip()
            if not eq:
                raise InputError(f"--at {_short(item.strip())}: missing '=': write "
                                 f"{_short(name) or 'x'}=3")
            if not name.isidentifier():
                raise InputError(f"--at {_short(item.strip())}: {_short(name)!r} is not a "
                                 "variable name")
            if name in at:
                raise InputError(f"--at gives {name} twice")
            at[name] = parse_value(name, text)
    return at


def coerce_point(at: Mapping[str, object] | None) -> dict[str, np.float64]:
    """An API mapping of names to numbers (or strings as --at takes them) as float64."""
    out: dict[str, np.float64] = {}
    for name, value in (at or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"{name!r} is not a variable name")
        if isinstance(value, str):
            out[name] = parse_value(name, value)
        elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                               np.floating)):
            raise InputError(f"the value of {name} must be a number, got {type(value).__name__}")
        else:
            try:
                out[name] = np.float64(value)
            except OverflowError:
                raise InputError(f"the value of {name} is too large for float64") from None
    return out


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
