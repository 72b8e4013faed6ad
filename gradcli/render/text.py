"""Plain-text helpers shared by renderers: number formatting and the fully parenthesised echo."""

from __future__ import annotations

import math

from ..tape import Tape


def fmt(v, digits: int = 6) -> str:
    """A number for people: up to `digits` significant digits, -0 shown as 0."""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x, digits) for x in v) + "]"
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0:
        return "0"
    return format(f, f".{digits}g")


def parenthesised(tape: Tape, root: int, limit: int = 2000) -> str:
    """How the parser read `root`: every operation in parentheses, names for named nodes.

    An explicit stack (no recursion), stopped after `limit` characters, so the echo of a
    10^6-node formula costs no more than its first lines.
    """
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
                out.append(" …")
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
            stack.append(name if name is not None else " ".join(tape.source(i).split()))
        elif op.name == "id":
            stack.append(ins[0])
        elif op.name == "neg":
            stack.extend((")", ins[0], "(-"))
        elif op.symbol is not None and len(ins) == 2:
            stack.extend((")", ins[1], f" {op.symbol} ", ins[0], "("))
        else:
            stack.append(")")
            for k in range(len(ins) - 1, -1, -1):
                stack.append(ins[k])
                if k:
                    stack.append(", ")
            stack.append(f"{op.name}(")
    return "".join(out)


def read_as(tape: Tape) -> list[str]:
    """The echo lines: one per named statement (`q = (x + y)`), then the output(s)."""
    lines = []
    for st in tape.statements:
        if st.name is not None:
            lines.append(f"{st.name} = {parenthesised(tape, st.nodes[0])}")
        else:
            lines.append(", ".join(parenthesised(tape, o) for o in st.nodes))
    return lines
