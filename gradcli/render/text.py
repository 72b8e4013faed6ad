"""Plain-text helpers shared by renderers: number formatting and the fully parenthesised echo."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..tape import Tape


SMALL = 12  # tensors with at most this many elements are shown in full


def fmt(v, digits: int = 6, shape: bool = True) -> str:
    """A number for people: up to `digits` significant digits, -0 shown as 0. Small tensors are
    shown in full, larger ones summarised by (shape,) min, max and norm."""
    if v is None:
        return ""
    if isinstance(v, np.ndarray):
        if v.size <= SMALL:
            return fmt(v.tolist(), digits)
        return summary(v, digits, shape)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x, digits) for x in v) + "]"
    if type(v) is Fraction:
        return str(v)  # exact: -1/4, 3
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0:
        return "0"
    return format(f, f".{digits}g")


def summary(v: np.ndarray, digits: int = 6, shape: bool = True) -> str:
    """A big tensor in one line: its shape, smallest and largest element, and its norm."""
    d = min(digits, 4)
    with np.errstate(all="ignore"):
        lo, hi = np.min(v), np.max(v)
        norm = np.sqrt(np.sum(np.square(v)))
    head = f"{'×'.join(map(str, v.shape))}: " if shape else ""
    return f"{head}min {fmt(lo, d)} max {fmt(hi, d)} norm {fmt(norm, d)}"


def shape_of(v) -> str:
    """A value's shape for a table cell: '' for a scalar, 5×3 for a matrix."""
    shape = np.shape(v)
    return "×".join(map(str, shape)) if shape else ""


def parenthesised(tape: Tape, root: int, limit: int = 240) -> str:
    """How the parser read `root`: every operation in parentheses, names for named nodes.

    Walked with an explicit stack (no recursion). When the text would pass `limit` characters,
    its beginning and its end are shown around a `…`, each found by a walk that stops early, so
    the echo of a 10^6-node formula costs no more than that of a small one.
    """
    head, complete = _pieces(tape, root, limit, forward=True)
    if complete:
        return head
    tail, _ = _pieces(tape, root, limit // 2, forward=False)
    return head[: limit // 2] + " … " + tail[-(limit // 2) :]


def _pieces(tape: Tape, root: int, limit: int, forward: bool) -> tuple[str, bool]:
    """Up to `limit` characters from the start (or, walking mirrored, the end) of the echo."""
    out: list[str] = []
    size = 0
    stack: list = [root]
    ops, inputs, names = tape.ops, tape.inputs, tape.names
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            size += len(item)
            if size > limit:
                break
            continue
        i = item
        name = names.get(i)
        if name is not None and i != root:
            stack.append(name)
            continue
        op = ops[i]
        ins = inputs[i]
        if not ins:
            pieces: list = [name if name is not None else " ".join(tape.source(i).split())]
        elif op.name == "id":
            pieces = [ins[0]]
        elif op.name == "neg":
            pieces = ["(-", ins[0], ")"]
        elif op.symbol is not None and len(ins) == 2:
            pieces = ["(", ins[0], f" {op.symbol} ", ins[1], ")"]
        else:
            pieces = [f"{op.name}("]
            for k, j in enumerate(ins):
                if k:
                    pieces.append(", ")
                pieces.append(j)
            pieces.append(")")
        # The stack pops last-in first: push in reverse to walk left to right.
        stack.extend(reversed(pieces) if forward else pieces)
    complete = not stack
    text = "".join(out) if forward else "".join(reversed(out))
    return text, complete


def read_as(tape: Tape) -> list[str]:
    """The echo lines: one per named statement (`q = (x + y)`), then the output(s)."""
    lines = []
    for st in tape.statements:
        if st.name is not None:
            lines.append(f"{st.name} = {parenthesised(tape, st.nodes[0])}")
        else:
            lines.append(", ".join(parenthesised(tape, o) for o in st.nodes))
    return lines
