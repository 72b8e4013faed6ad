"""One number read from the text a user typed: `3`, `-2.5`, `1e-3`, `1/3`, `pi`, `inf`, exactly
where it can be (`--exact`), or refused with a message naming it."""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction

from .errors import InputError
from .ops import CONSTANTS
from .words import short


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan,
            "+nan": math.nan, "-nan": math.nan}  # -nan as -inf is: NaN has no sign to keep


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
    np = sys.modules.get("numpy")  # a numpy number exists only once numpy is imported
    if (isinstance(v, int) or np is not None and isinstance(v, np.integer)) \
            and not isinstance(v, bool):
        return Fraction(int(v))
    if (isinstance(v, float) or np is not None and isinstance(v, np.floating)) \
            and math.isfinite(v):
        return Fraction(repr(float(v)))
    return v


def scalar(name: str, t: str) -> float:
    """One number as written: 3, -2.5, 1e-3, 1/3, pi, -e, inf, nan."""
    t = t.strip()
    body = t
    sign = 1.0
    if body.startswith(("+", "-")):  # ("" is in "+-": an empty cell is no sign)
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
            return _ratio(a, b)
    if _NUMBER.fullmatch(t):
        return float(t)
    raise InputError(f"--at {name}={short(t)}: {short(t)!r} is not a number "
                     "(write 3, -2.5, 1e-3, 1/3, pi or e)")


def _ratio(a: str, b: str) -> float:
    """a/b as written, exactly then rounded once: 10^400/3·10^399 is 3.33..., not inf/inf."""
    from .words import bounded_fraction

    fa, fb = bounded_fraction(a), bounded_fraction(b)
    if fa is None or fb is None or fb == 0:
        return float(a) / float(b)
    try:
        return float(fa / fb)
    except OverflowError:
        return math.copysign(math.inf, fa / fb)
