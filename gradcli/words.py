"""Plain-text helpers with one home: shortening, plurals, numbers for people, non-finite words.

A leaf module (fractions and math only; numpy only for a value that is already a numpy array),
so that every layer may use it, and a scalar formula's path imports no numpy through it.
"""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction

#: How non-finite numbers are spelled everywhere (text, JSON strings, warnings).
NAN, INFINITY, MINUS_INFINITY = "NaN", "Infinity", "-Infinity"

SMALL = 12  # tensors with at most this many elements are shown in full


def is_array(v) -> bool:
    """Whether `v` is a numpy array (numpy is not imported to find out: without it, none is)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(v, np.ndarray)


def _ndim(v) -> int:
    """np.ndim(v), without importing numpy for a plain number."""
    if isinstance(v, (int, float, Fraction)) or v is None:
        return 0
    import numpy as np

    return np.ndim(v)


def short(text: str, limit: int = 40) -> str:
    """`text` cut to at most `limit` characters, ending in … when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inert(text: str, lines: bool = False) -> str:
    """`text` safe to reach a terminal: every character that is not printable (C0 and C1
    controls such as ESC, CR and the CSI byte, DEL, bidi and other format characters such as
    U+202E, line and paragraph separators) shown as an escape (`\\x1b`, `\\r`, `\\u202e`);
    the rest unchanged. With `lines`, newlines are kept (a message of several lines). The one
    place user text is made inert: error messages, warnings, every node's source text (table,
    explain, tree, DOT, Mermaid) go through it. Idempotent: inert(inert(t)) == inert(t)."""
    if text.isprintable():  # the usual case, at C speed
        return text
    if lines and "\n" in text:
        return "\n".join(inert(line) for line in text.split("\n"))
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(ch: str) -> str:
    code = ord(ch)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def plural(n: int, word: str) -> str:
    """`word` for one, `word`s for any other count (the count itself is not included)."""
    return word if n == 1 else word + "s"


def count(n: int, word: str) -> str:
    """`1 argument`, `2 arguments`."""
    return f"{n} {plural(n, word)}"


def nonfinite_word(v) -> str:
    """NaN, Infinity or -Infinity for a non-finite scalar (repr for a finite one); a tensor is
    "not finite"."""
    v = float(v) if _ndim(v) == 0 else v
    if isinstance(v, float):
        if v != v:
            return NAN
        if v == math.inf:
            return INFINITY
        if v == -math.inf:
            return MINUS_INFINITY
        return repr(v)
    return "not finite"


def fmt(v, digits: int = 6, shape: bool = True) -> str:
    """A number for people: up to `digits` significant digits, -0 shown as 0. Small tensors are
    shown in full, larger ones summarised by (shape,) min, max and norm."""
    if is_array(v):
        if v.size > SMALL:
            return summary(v, digits, shape)
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return _nested(v, digits)
    return _scalar(v, digits)


_END = object()


def _nested(v, digits: int) -> str:
    """A (nested) list as [a, [b, c]], walked with a stack of iterators (no recursion)."""
    out = ["["]
    stack = [iter(v)]
    first = [True]
    while stack:
        x = next(stack[-1], _END)
        if x is _END:
            stack.pop()
            first.pop()
            out.append("]")
            continue
        if not first[-1]:
            out.append(", ")
        first[-1] = False
        if is_array(x):
            if x.size > SMALL:
                out.append(summary(x, digits))
                continue
            x = x.tolist()
        if isinstance(x, (list, tuple)):
            out.append("[")
            stack.append(iter(x))
            first.append(True)
        else:
            out.append(_scalar(x, digits))
    return "".join(out)


def _scalar(v, digits: int) -> str:
    if v is None:
        return ""
    if type(v) is Fraction:
        return str(v)  # exact: -1/4, 3
    f = float(v)
    if math.isnan(f):
        return NAN
    if math.isinf(f):
        return INFINITY if f > 0 else MINUS_INFINITY
    if f == 0:
        return "0"
    return format(f, f".{digits}g")


def summary(v, digits: int = 6, shape: bool = True) -> str:
    """A big tensor in one line: its shape, smallest and largest element, and its norm."""
    import numpy as np

    d = min(digits, 4)
    with np.errstate(all="ignore"):
        lo, hi = np.min(v), np.max(v)
        norm = np.sqrt(np.sum(np.square(v)))
    head = f"{'×'.join(map(str, v.shape))}: " if shape else ""
    return f"{head}min {fmt(lo, d)} max {fmt(hi, d)} norm {fmt(norm, d)}"


def shape_of(v) -> str:
    """A value's shape for a table cell: '' for a scalar, 5×3 for a matrix."""
    if _ndim(v) == 0:
        return ""
    import numpy as np

    shape = np.shape(v)
    return "×".join(map(str, shape)) if shape else ""


#: Literals longer than this many digits, or with a larger exponent, are kept as floats.
EXACT_DIGITS = 1200  # about 4096 bits
_EXPONENT = re.compile(r"[eE]([+-]?\d+)$")


def bounded_fraction(text: str) -> Fraction | None:
    """Fraction(text) for a plain number, unless its exponent would build an integer of
    millions of digits (1e99999999): None then, and the caller keeps the float."""
    m = _EXPONENT.search(text)
    if m and abs(int(m.group(1))) > EXACT_DIGITS:
        return None
    if len(text) > EXACT_DIGITS:
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def name_key(name: str) -> str:
    """A name as gradcli compares it: NFKC-normalised, as Python normalises identifiers, so that
    `ﬁ` is `fi` and `x₁` is `x1` in the formula, in --at, --wrt and in files alike."""
    if name.isascii():
        return name
    import unicodedata

    return unicodedata.normalize("NFKC", name)


def superscript(name: str) -> str | None:
    """The first superscript character in `name` (x² means a power, never a name), or None."""
    if name.isascii():
        return None
    import unicodedata

    for ch in name:
        if unicodedata.decomposition(ch).startswith("<super>"):
            return ch
    return None
