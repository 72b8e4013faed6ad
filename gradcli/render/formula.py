"""Tapes as formulas: gradcli's own language (which parses back) or LaTeX.

A node used more than once becomes a named intermediate of a staged program (`s = sigmoid(...)`);
everything else is written inline. Printing is one explicit stack of pieces per statement, so a
10^5-deep formula prints in linear time and without recursion.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from ..errors import InputError
from ..ops import CONSTANTS, FUNCTIONS
from ..tape import Tape

if TYPE_CHECKING:
    import numpy as np

_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}
_LATEX_NAMES = {"sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log"}
_LATEX_SYMBOLS = {"<=": r"\le", ">=": r"\ge", "!=": r"\ne", "==": "="}
_LATEX_OTHER = {"asin": r"\arcsin", "acos": r"\arccos", "atan": r"\arctan", "sigmoid": r"\sigma"}


@dataclass
class Program:
    """A staged program: intermediates (name, node) in order, and the outputs' nodes."""

    tape: Tape
    intermediates: list[tuple[str, int]]
    names: dict[int, str]  # node -> its intermediate name
    roots: list[int]


def plan(tape: Tape, roots: Sequence[int], reserved: set[str]) -> Program:
    """Which nodes become named intermediates (those used more than once) and their names."""
    uses = [0] * len(tape)
    seen = [False] * len(tape)
    stack = list(roots)
    inputs = tape.inputs
    while stack:
        i = stack.pop()
        if seen[i]:
            continue
        seen[i] = True
        for j in inputs[i]:
            uses[j] += 1
            if not seen[j]:
                stack.append(j)
    taken = set(reserved) | set(tape.variables) | set(CONSTANTS) | set(FUNCTIONS)
    names: dict[int, str] = {}
    intermediates = []
    counter = 0
    for i in range(len(tape)):
        if not seen[i] or uses[i] < 2 or not inputs[i]:
            continue
        name = tape.names.get(i)
        if name is None or name in taken:
            counter += 1
            while f"t{counter}" in taken:
                counter += 1
            name = f"t{counter}"
        taken.add(name)
        names[i] = name
        intermediates.append((name, i))
    return Program(tape, intermediates, names, list(roots))


def text(program: Program, i: int, latex: bool = False) -> str:
    """Node i written out (its own definition: named inputs by name)."""
    tape, names = program.tape, program.names
    out: list[str] = []
    stack: list = [(i, True)]
    while stack:
        item = stack.pop()
        if type(item) is str:
            out.append(item)
            continue
        k, top = item
        if not top and k in names:
            out.append(_name(names[k], latex))
            continue
        stack.extend(reversed(_pieces(tape, k, names, latex)))
    return "".join(out)


def _prec(tape: Tape, k: int, names: dict, latex: bool) -> int:
    if k in names:
        return 5
    op = tape.ops[k].name
    if op == "const":
        v = tape.consts[k]
        if _tensor(v):
            return 5
        if "/" in number_text(v):
            return 2
        return 3 if v < 0 or (v == 0 and math.copysign(1, v) < 0) else 5
    if latex and op == "div":
        return 4
    return _PREC.get(op, 5)


def _pieces(tape: Tape, k: int, names: dict, latex: bool) -> list:
    """Node k as pieces: strings and (child, False) items, parentheses where precedence asks."""
    op = tape.ops[k].name
    ins = tape.inputs[k]
    if op == "var":
        return [_name(tape.names[k], latex)]
    if op == "const":
        return [_number_text(tape.consts[k], latex)]

    def child(j: int, least: int) -> list:
        if _prec(tape, j, names, latex) >= least:
            return [(j, False)]
        if latex:
            return [r"\left(", (j, False), r"\right)"]
        return ["(", (j, False), ")"]

    if op in ("add", "sub"):
        return child(ins[0], 1) + [" + " if op == "add" else " - "] + child(ins[1], 2)
    if op in ("mul", "matmul"):
        if latex:
            lead = tape.ops[ins[0]].name == "const" and _prec(tape, ins[0], names, True) == 5
            sep = " " if lead or op == "matmul" else r" \cdot "
        else:
            sep = "*" if op == "mul" else " @ "
        return child(ins[0], 2) + [sep] + child(ins[1], 4)
    if op == "div":
        if latex:
            return [r"\frac{", (ins[0], False), "}{", (ins[1], False), "}"]
        return child(ins[0], 2) + ["/"] + child(ins[1], 4)
    if op == "neg":
        return ["-"] + child(ins[0], 2)
    if op == "pow":
        if latex:
            return child(ins[0], 5) + ["^{", (ins[1], False), "}"]
        return child(ins[0], 5) + ["^"] + child(ins[1], 3)
    if op == "transpose":
        return child(ins[0], 5) + [r"^{\top}" if latex else ".T"]
    if op == "stack":
        return ["["] + _joined(ins, latex) + ["]"]
    if op == "id":
        return [(ins[0], False)]
    symbol = tape.ops[k].symbol
    if symbol and len(ins) == 2 and op not in _PREC:  # a comparison: parenthesised, an atom
        if latex:
            symbol = _LATEX_SYMBOLS.get(symbol, symbol)
            return [r"\left(", (ins[0], False), f" {symbol} ", (ins[1], False), r"\right)"]
        return ["(", (ins[0], False), f" {symbol} ", (ins[1], False), ")"]
    if not tape.ops[k].function:
        raise InputError(f"gradcli cannot write the operator {op} as a formula yet")
    if latex:
        if op == "sqrt":
            return [r"\sqrt{", (ins[0], False), "}"]
        head = "\\" + op if op in _LATEX_NAMES else _LATEX_OTHER.get(
            op, r"\operatorname{" + op + "}")
        return [head + r"\left("] + _joined(ins, latex) + [r"\right)"]
    return [op + "("] + _joined(ins, latex) + [")"]


def _joined(ins, latex: bool) -> list:
    out: list = []
    for n, j in enumerate(ins):
        if n:
            out.append(", ")
        out.append((j, False))
    return out


def number_text(v: float) -> str:
    """A float as the language reads it back exactly: 2, 0.5, 1e-05, pi; ±1e999 for ±Infinity."""
    f = float(v)
    if math.isnan(f):
        return "(0/0)"
    if math.isinf(f):
        return "1e999" if f > 0 else "-1e999"
    for name, c in CONSTANTS.items():
        if f == c:
            return name
        if f == -c:
            return "-" + name
    if f == int(f) and abs(f) < 1e16:
        return str(int(f)) if not (f == 0 and math.copysign(1, f) < 0) else "-0"
    q = Fraction(f).limit_denominator(1000)
    if q.denominator > 1 and float(q.numerator) / float(q.denominator) == f:
        return f"{q.numerator}/{q.denominator}"  # 1/3 reads back as the same float
    return repr(f)


def _tensor(v) -> bool:
    """Whether a constant is an array (numpy is asked only about what is not a number)."""
    if isinstance(v, (float, int)):
        return False
    import numpy as np

    return bool(np.ndim(v))


def _number_text(v, latex: bool) -> str:
    if _tensor(v):
        import numpy as np

        rows = np.asarray(v).tolist()
        text = str(rows) if np.all(np.isfinite(v)) else _nested(np.asarray(v))
        if latex:
            return r"\begin{bmatrix}" + _bmatrix(np.asarray(v)) + r"\end{bmatrix}"
        return text
    t = number_text(v)
    if latex:
        t = t.replace("pi", r"\pi")
        m = re.fullmatch(r"(-?[\d.]+)e([-+]?\d+)", t)
        if m:
            t = rf"{m.group(1)} \times 10^{{{int(m.group(2))}}}"
    return t


def _nested(a: np.ndarray) -> str:
    flat = [number_text(x) for x in a.reshape(-1)]
    for n in reversed(a.shape[1:]):
        flat = ["[" + ", ".join(flat[k:k + n]) + "]" for k in range(0, len(flat), n)]
    return "[" + ", ".join(flat) + "]"


def _bmatrix(a: np.ndarray) -> str:
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        return _nested(a)
    return r" \\ ".join(" & ".join(number_text(x) for x in row) for row in a)


def _name(name: str, latex: bool) -> str:
    if not latex:
        return name
    m = re.fullmatch(r"([A-Za-z]+)_?(\d+)", name)
    if m:
        base = m.group(1)
        base = base if len(base) == 1 else r"\mathrm{" + base + "}"
        return f"{base}_{{{m.group(2)}}}"
    if len(name) == 1:
        return name
    if name.startswith("d") and len(name) == 2:
        return name
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


def latex_name(name: str) -> str:
    """A variable name in LaTeX: w0 is w_{0}, theta_1 is \\mathrm{theta}_{1}."""
    return _name(name, True)


# -- gradcli diff's output -------------------------------------------------------------------------

@dataclass
class DiffText:
    """A DiffResult as formulas: the shared program and each derivative on its own."""

    program: Program
    labels: dict  # (x,) or (x, y) -> the statement name (dx, dxdy)
    roots: dict  # (x,) or (x, y) -> node

    def expr(self, key: tuple, latex: bool = False) -> str:
        root = self.roots[key]
        name = self.program.names.get(root)
        return _name(name, latex) if name is not None else text(self.program, root, latex)

    def alone(self, key: tuple) -> str:
        """One derivative as a formula that stands alone: its intermediates, then itself."""
        root = self.roots[key]
        own = plan(self.program.tape, [root], set(self.labels.values()))
        lines = [f"{n} = {text(own, i)}" for n, i in own.intermediates]
        lines.append(text(own, root))
        return "; ".join(lines)


def diff_text(r) -> DiffText:
    """The derivatives of a DiffResult laid out as one staged program."""
    d = r.derivatives
    keys: list[tuple] = [(x,) for x in d.wrt]
    if d.second:
        keys += [(x, y) for x in d.wrt for y in d.wrt]
    roots = {k: d.first[k[0]] if len(k) == 1 else d.second[k[0]][k[1]] for k in keys}
    reserved = set(d.tape.variables)
    labels: dict = {}
    for k in keys:
        name = "d" + "d".join(k)
        while name in reserved:
            name += "_"
        reserved.add(name)
        labels[k] = name
    program = plan(d.tape, [roots[k] for k in keys], reserved)
    return DiffText(program, labels, roots)


def diff_program(r, digits: int = 6) -> str:
    """`gradcli diff`'s text: the derivative alone when there is one and nothing to name, else
    a staged program (intermediates, one line per derivative, the derivatives as its outputs)
    that gradcli parses back; with --at, the values as # comments."""
    from ..words import fmt

    t = diff_text(r)
    keys = list(t.labels)
    lines = [f"{n} = {text(t.program, i)}" for n, i in t.program.intermediates]
    if len(keys) == 1:
        lines.append(t.expr(keys[0]))
    else:
        lines += [f"{t.labels[k]} = {t.expr(k)}" for k in keys]
        lines.append(", ".join(t.labels[k] for k in keys))
    if r.values is not None:
        at = ", ".join(f"{k}={fmt(v, digits)}" for k, v in r.at.items())
        shown = [f"{t.labels[(x,)]} = {fmt(v, digits)}" for x, v in r.values.items()]
        if r.second_values:
            shown += [f"{t.labels[(x, y)]} = {fmt(h, digits)}"
                      for x, row in r.second_values.items() for y, h in row.items()]
        lines.append(f"# at {at}: " + ", ".join(shown))
    return "\n".join(lines) + "\n"


def diff_latex(r) -> str:
    """`gradcli diff --format latex`: an aligned block, intermediates first."""
    t = diff_text(r)
    f = _name(r.output, True)
    rows = [f"{_name(n, True)} &= {text(t.program, i, True)}" for n, i in t.program.intermediates]
    for k in t.labels:
        if len(k) == 1:
            head = rf"\frac{{\partial {f}}}{{\partial {_name(k[0], True)}}}"
        elif k[0] == k[1]:
            head = rf"\frac{{\partial^2 {f}}}{{\partial {_name(k[0], True)}^2}}"
        else:
            head = (rf"\frac{{\partial^2 {f}}}{{\partial {_name(k[0], True)}\,"
                    rf"\partial {_name(k[1], True)}}}")
        rows.append(f"{head} &= {t.expr(k, True)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n"
