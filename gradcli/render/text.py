"""The fully parenthesised echo of a formula; number formatting lives in gradcli.words and is
re-exported here for the renderers."""

from __future__ import annotations

from ..tape import Tape
from ..words import SMALL, fmt, inert, shape_of, summary

__all__ = ["SMALL", "fmt", "parenthesised", "read_as", "shape_of", "summary"]


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
            pieces: list = [name if name is not None else inert(" ".join(tape.source(i).split()))]
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


#: Pictures and descent tables show tensors with more entries than this by their shape.
ARRAY_LIMIT = 6


def compact(v, digits: int) -> str:
    """A value for a picture or a narrow cell: a number, a short list, or a tensor's shape."""
    if hasattr(v, "ndim") and hasattr(v, "tolist"):  # numpy scalar or array
        if v.ndim == 0:
            return fmt(float(v), digits)
        if v.size > ARRAY_LIMIT:
            return "array " + "×".join(str(int(n)) for n in v.shape)
        return fmt(v.tolist(), digits)
    return fmt(v, digits)
