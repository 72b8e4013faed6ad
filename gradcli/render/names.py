"""One naming policy for what people read: what to call each output (table, tree, graph,
--explain, check's report and slip messages all ask here, so they agree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..tape import Tape

#: Names tried in turn for an unnamed output, skipping any the formula itself uses.
_BASES = ("f", "F", "L", "out", "result")


def output_names(tape: "Tape") -> list[str]:
    """A name per output: the program's own (`L = ...`), else f (f1, f2, … for several).

    When the formula uses f itself (`f*2+1` with a variable f), the next free base is taken
    (F, then L, out, result), so ∂F/∂f never reads as ∂f/∂f.
    """
    taken = set(tape.variables) | set(tape.bound)
    base = next((b for b in _BASES if not any(
        n == b or n.startswith(b) and n[len(b):].isdigit() for n in taken)), "f")
    outs = tape.outputs
    names = []
    for k, o in enumerate(outs):
        name = tape.names.get(o) if tape.inputs[o] else None
        names.append(name or (base if len(outs) == 1 else f"{base}{k + 1}"))
    return names


def output_name(tape: "Tape", k: int = 0) -> str:
    """What to call output k (the first by default)."""
    return output_names(tape)[k]


def output_names_by_node(tape: "Tape") -> dict[int, str]:
    """Output node id -> its name (the first name where one node is several outputs)."""
    names: dict[int, str] = {}
    for o, name in zip(tape.outputs, output_names(tape)):
        names.setdefault(o, name)
    return names
