"""The tape: a flat list of nodes in dependency order (children before parents).

Nodes refer to their inputs by integer id. Forward mode is a loop over the tape, reverse mode the
same loop backwards; there is no tree, no topological sort and no recursion. Columns are kept as
parallel lists (not one object per node) so that a 10^6-node formula stays cheap.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from .ops import Op


@dataclass(slots=True)
class Statement:
    """One statement of a staged program: `name = expr` or a bare (output) expression."""

    name: str | None
    nodes: list[int]  # the value(s) it produces (several for `a, b`)
    pos: int  # offset of its first character in the text


@dataclass(slots=True)
class Tape:
    """A parsed formula: its nodes, names, variables and outputs."""

    text: str
    ops: list[Op] = field(default_factory=list)
    inputs: list[tuple[int, ...]] = field(default_factory=list)
    # the node's source span, [start, end): machine integers (8 bytes a node each, where a list of
    # Python ints past 256 costs 36), as a 10^6-node formula's positions are most of its ints
    starts: array = field(default_factory=lambda: array("q"))
    ends: array = field(default_factory=lambda: array("q"))
    names: dict[int, str] = field(default_factory=dict)  # node id -> user name
    # const node id -> value as parsed: a Python float for a number, a numpy array for a tensor
    # literal; `literals` is the same dict with its floats made numpy float64 (see there).
    consts: dict[int, object] = field(default_factory=dict)
    variables: dict[str, int] = field(default_factory=dict)  # var name -> node id, first use first
    bound: dict[str, int] = field(default_factory=dict)  # assigned name -> node id
    statements: list[Statement] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    _numpy: bool = field(default=False, repr=False, compare=False)

    @property
    def literals(self) -> dict[int, object]:
        """const node id -> value, every number a numpy float64, as the numpy sweeps compute
        with (1/0 is Infinity with a warning there, not an exception). Parsing stores Python
        floats (`consts`, so that a scalar formula needs no numpy): the first read converts them,
        in place, once (and imports numpy). Float paths (compiled.py) read `consts`."""
        if not self._numpy:
            import numpy as np

            consts = self.consts
            for i, v in consts.items():
                if type(v) is float:
                    consts[i] = np.float64(v)
            self._numpy = True
        return self.consts

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, op: Op, inputs: tuple[int, ...], start: int, end: int) -> int:
        """Append a node and return its id."""
        self.ops.append(op)
        self.inputs.append(inputs)
        self.starts.append(start)
        self.ends.append(end)
        return len(self.ops) - 1

    def source(self, i: int) -> str:
        """The node's full source text."""
        return self.text[self.starts[i] : self.ends[i]]

    def expr(self, i: int, limit: int = 60) -> str:
        """The node's source text on one line, shortened with … in the middle when long."""
        s, e = self.starts[i], self.ends[i]
        if e - s <= limit:
            text = self.text[s:e]
        else:
            half = (limit - 1) // 2
            text = self.text[s : s + half].rstrip() + "…" + self.text[e - half : e].lstrip()
        if "\n" in text or "\t" in text or "\r" in text:
            text = " ".join(text.split())
        if not text.isprintable():  # no control or bidi character reaches a terminal
            from .words import inert

            text = inert(text)
        return text

    def label(self, i: int, limit: int = 60) -> str:
        """What a person calls the node: its name if it has one, else its source text."""
        name = self.names.get(i)
        return name if name is not None else self.expr(i, limit)


def shape_str(shape: tuple) -> str:
    """A shape as numpy writes it: (2, 3), (3,), or () for a scalar."""
    return str(tuple(int(n) for n in shape))


def active(tape: Tape, wrt) -> list[bool]:
    """Which nodes depend on a variable in `wrt` (only these carry gradients)."""
    flags = [False] * len(tape)
    for name in wrt:
        flags[tape.variables[name]] = True
    inputs = tape.inputs
    for i in range(len(tape)):
        ins = inputs[i]
        if ins and not flags[i]:
            for j in ins:
                if flags[j]:
                    flags[i] = True
                    break
    return flags
