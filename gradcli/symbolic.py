"""Derivatives as tapes: the reverse sweep run symbolically (source transformation).

Each adjoint becomes a node of a new `Tape` (built from the ops' `formula_partials`, formulas
over the node ids of their inputs and output), not a number. The derivative tape holds the
formula's own nodes too, so shared subexpressions stay shared and an n-node formula's gradient
tape has O(n) nodes. Doing it again gives second derivatives; a forward (tangent) sweep over the
gradient tape gives Hessian-vector products (forward-over-reverse, as JAX does).

`Builder` tidies as it builds, by local rules only: constants folded (+ - * / ^ and unary -),
x*1, x+0, x^1, x^0, --x, numeric factors gathered to the front, and 0*x only where x cannot be
NaN or ±Infinity (built from variables, finite numbers and ops finite on finite inputs; overflow
aside). Identical nodes are built once (hash-consing). Nothing here recurses.

A scalar formula needs no numpy here (issue 17.1: `diff --json` starts without it): scalar
constants are Python floats in the builder tape's `consts` (its `literals` are numpy's view, as
for a parsed tape), folding + - * / and unary - is float arithmetic (the same IEEE results as
numpy's float64; a zero divisor is not folded, as numpy's Infinity or NaN is not), and only pow,
a replaced op, a tensor or the sweeps at a point (SecondOrder, evaluate) import numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .errors import InputError
from .ops import Op, builtin, lookup
from .tape import Tape, active
from .words import short

#: Ops whose value is finite wherever their inputs are (overflow aside): 0*x may drop x.
_FINITE_ON_FINITE = frozenset({
    "id", "add", "sub", "mul", "neg", "exp", "sin", "cos", "tan", "atan", "sinh", "cosh",
    "tanh", "sigmoid", "relu", "softplus", "abs", "sign", "max", "min", "atan2", "matmul",
    "transpose"})
_FOLD = frozenset({"add", "sub", "mul", "div", "neg", "pow"})
#: Folded with Python floats (pow, which needs numpy's rule, is not): IEEE-exact operations.
_FLOAT_FOLD = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
               "mul": lambda a, b: a * b, "div": lambda a, b: a / b, "neg": lambda a: -a}
#: gradcli's own ops that work element by element (their vjp is None): known without reading
#: op.elementwise, which binds the numpy rules (tests/test_diff_cold.py checks the list).
ELEMENTWISE = frozenset({
    "var", "const", "id", "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log2",
    "log10", "sqrt", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "sigmoid", "relu", "softplus", "abs", "sign", "max", "min", "atan2"})


def _number(v) -> float | None:
    """A plain number (Python float or int, numpy float64) as a Python float; None otherwise."""
    return float(v) if isinstance(v, (float, int)) else None


def _is_tensor(v) -> bool:
    """Whether a constant's value is an array (numpy asked only for what is not a number)."""
    if isinstance(v, (float, int)):
        return False
    import numpy as np

    return bool(np.ndim(v))


def elementwise(op: Op) -> bool:
    """op.elementwise, without binding the numpy rules for gradcli's own scalar ops."""
    if op.name in ELEMENTWISE and builtin(op):
        return True
    return op.elementwise


class NoFormula(InputError):
    """An op on the path to the output that has no formula partials (yet)."""


class Builder:
    """Appends tidied, hash-consed nodes to a new Tape (the structures parse builds)."""

    def __init__(self) -> None:
        self.tape = Tape("")
        self.safe: list[bool] = []  # whether the node is finite wherever the variables are
        self._seen: dict = {}

    # -- leaves ---------------------------------------------------------------------------------
    def var(self, name: str) -> int:
        i = self.tape.variables.get(name)
        if i is None:
            i = self._append("var", ())
            self.tape.variables[name] = i
            self.tape.names[i] = name
        return i

    def const(self, value) -> int:
        f = _number(value)
        if f is None:
            import numpy as np

            if np.ndim(value):  # tensor literals are not shared
                i = self._append("const", (), finite=bool(np.all(np.isfinite(value))))
                self.tape.consts[i] = value
                return i
            f = float(np.float64(value))
        key = ("const", f.hex())
        i = self._seen.get(key)
        if i is not None:
            return i
        i = self._append("const", (), finite=math.isfinite(f))
        if self.tape._numpy:  # numpy's view already taken: keep it float64 throughout
            import numpy as np

            self.tape.consts[i] = np.float64(f)
        else:
            self.tape.consts[i] = f  # a Python float, numpy float64 when `literals` is read
        self._seen[key] = i
        return i

    def value_of(self, i: int) -> float | None:
        """A scalar constant's value (a Python float), or None."""
        v = self.tape.consts.get(i)
        return None if v is None else _number(v)

    def is_const(self, i: int, c: float) -> bool:
        v = self.value_of(i)
        return v is not None and v == c

    # -- tidied operators -----------------------------------------------------------------------
    def add(self, a: int, b: int) -> int:
        if self.is_const(b, 0.0):
            return a
        if self.is_const(a, 0.0):
            return b
        if self.value_of(a) is None:
            nb = self._negated(b)  # a + -b is a - b
            if nb is not None:
                return self.raw("sub", a, nb)
        if self._op(a) == "neg":
            return self.sub(b, self.tape.inputs[a][0])
        return self.raw("add", a, b)

    def _negated(self, i: int) -> int | None:
        """-i when that is at hand without a minus sign: -x, -3, -2*x, (-2*x)*y; else None."""
        name = self._op(i)
        if name == "neg":
            return self.tape.inputs[i][0]
        v = self.value_of(i)
        if v is not None:
            return self.const(-v) if v < 0 else None
        if name == "mul":
            a, b = self.tape.inputs[i]
            va = self.value_of(a)
            if va is not None:
                return self._scaled(-float(va), b) if va < 0 else None
            if self._op(a) in ("neg", "mul"):
                na = self._negated(a) if self._op(a) == "neg" or self.value_of(
                    self.tape.inputs[a][0]) is not None else None
                if na is not None:
                    return self.raw("mul", na, b)
        return None

    def sub(self, a: int, b: int) -> int:
        if self.is_const(b, 0.0):
            return a
        if self.is_const(a, 0.0):
            return self.neg(b)
        if self.value_of(a) is None:
            nb = self._negated(b)  # a - -b is a + b
            if nb is not None:
                return self.raw("add", a, nb)
        if a == b and self.safe[a]:
            return self.const(0.0)
        return self.raw("sub", a, b)

    def neg(self, a: int) -> int:
        if self._op(a) == "neg":
            return self.tape.inputs[a][0]  # --x
        c, rest = self._split(a)
        if rest is None:
            return self.const(-c)
        if c != 1.0:  # -(2*x) is -2*x
            return self._scaled(-c, rest)
        return self.raw("neg", a)

    def mul(self, a: int, b: int) -> int:
        ca, ra = self._split(a)
        cb, rb = self._split(b)
        c = ca * cb
        if not math.isfinite(c):
            return self.raw("mul", a, b)
        if ra is None and rb is None:
            return self.const(c)
        if c == 0.0 and all(r is None or self.safe[r] for r in (ra, rb)):
            return self.const(0.0)  # 0*x, x finite wherever the variables are
        if ra is None or rb is None:
            return self._scaled(c, rb if ra is None else ra)
        if self._op(rb) == "div" and self.is_const(self.tape.inputs[rb][0], 1.0):
            return self.div(self._scaled(c, ra), self.tape.inputs[rb][1])  # x*(1/y) is x/y
        if c == -1.0:  # -(x*y): a minus sign that + and - can take over
            return self.raw("neg", self.raw("mul", ra, rb))
        if cb == 1.0 and ca != -1.0:  # a keeps its number in front: (2*x)*y
            return self.raw("mul", a, b)
        # the factors' numbers gathered in front: (ca*ra)*(cb*rb) = (ca*cb*ra)*rb
        return self.raw("mul", self._scaled(c, ra), rb)

    def div(self, a: int, b: int) -> int:
        if self.is_const(b, 1.0):
            return a
        return self.raw("div", a, b)

    def pow(self, a: int, b: int) -> int:
        if self.is_const(b, 1.0):
            return a  # x^1
        if self.is_const(b, 0.0):
            return self.const(1.0)  # x^0 = 1, NaN^0 too (numpy)
        return self.raw("pow", a, b)

    def matmul(self, a: int, b: int) -> int:
        return self.raw("matmul", a, b)

    def call(self, name: str, *xs: int) -> int:
        if name == "transpose" and self._op(xs[0]) == "transpose":
            return self.tape.inputs[xs[0]][0]
        return self.raw(name, *xs)

    def op(self, name: str, *xs: int) -> int:
        """Any op by name, tidied where a rule applies (copying a formula's nodes)."""
        method = _TIDY.get(name)
        if method is not None and len(xs) == (1 if name == "neg" else 2):
            return method(self, *xs)
        if name == "id":
            return xs[0]  # a named copy is its input
        return self.raw(name, *xs)

    # -- plumbing -------------------------------------------------------------------------------
    def raw(self, name: str, *xs: int) -> int:
        """The node `name(xs)`, folded when every input is a number, shared when built before."""
        key = (name, xs)
        i = self._seen.get(key)
        if i is not None:
            return i
        op = lookup(name)
        if name in _FOLD:
            vals = [self.value_of(x) for x in xs]
            if all(v is not None for v in vals):
                folded = _fold(op, vals)
                if folded is not None:
                    return self.const(folded)
        finite = name in _FINITE_ON_FINITE and all(self.safe[x] for x in xs)
        i = self._append(name, xs, finite=finite)
        self._seen[key] = i
        return i

    def _append(self, name: str, xs: tuple, finite: bool = True) -> int:
        self.safe.append(finite)
        return self.tape.add(lookup(name), xs, 0, 0)

    def _op(self, i: int) -> str:
        return self.tape.ops[i].name

    def _split(self, i: int) -> tuple[float, int | None]:
        """A node as (number, rest): 3 -> (3, None); 2*x -> (2, x); -x -> (-1, x); x -> (1, x)."""
        v = self.value_of(i)
        if v is not None:
            return float(v), None
        name = self._op(i)
        if name == "mul":
            a, b = self.tape.inputs[i]
            va = self.value_of(a)
            if va is not None:
                return float(va), b
        elif name == "neg":
            return -1.0, self.tape.inputs[i][0]
        return 1.0, i

    def _scaled(self, c: float, rest: int) -> int:
        if c == 1.0:
            return rest
        if c == -1.0:
            return self.raw("neg", rest) if self._op(rest) != "neg" else self.tape.inputs[rest][0]
        if not math.isfinite(c):
            return self.raw("mul", self.const(c), rest)
        if c == 0.0 and self.safe[rest]:
            return self.const(0.0)
        if self._op(rest) == "mul":  # 2*(x*y) as (2*x)*y, one level down
            a, b = self.tape.inputs[rest]
            if self._op(a) not in ("mul", "const"):
                return self.raw("mul", self.raw("mul", self.const(c), a), b)
        return self.raw("mul", self.const(c), rest)


def _fold(op: Op, vals: list[float]):
    """op on numbers, when the result is finite (else None: the node is kept). Floats for the
    IEEE-exact ops (the bits numpy's float64 gives); numpy's own rule otherwise (pow, an op
    replaced in the table)."""
    rule = _FLOAT_FOLD.get(op.name)
    if rule is not None and builtin(op):
        try:
            v = rule(*vals)
        except ZeroDivisionError:  # numpy: Infinity or NaN, not folded either
            return None
        return v if math.isfinite(v) else None
    import numpy as np

    with np.errstate(all="ignore"):
        v = op.value(*[np.float64(x) for x in vals])
    return v if np.isfinite(v) else None


_TIDY = {"add": Builder.add, "sub": Builder.sub, "mul": Builder.mul, "div": Builder.div,
         "pow": Builder.pow, "neg": Builder.neg, "matmul": Builder.matmul}


def _order(b: Builder, g: int, p: int) -> int:
    """g·p with the plainer factor first (x^2*cos(x), 2*x*sin(x)), as people write it."""
    return b.mul(p, g) if _rank(b, p) <= _rank(b, g) else b.mul(g, p)


def _rank(b: Builder, i: int) -> int:
    c, rest = b._split(i)
    if rest is None:
        return 0
    name = b._op(rest)
    if name == "var":
        return 1
    if name == "pow" and b._op(b.tape.inputs[rest][0]) == "var":
        return 2
    return 3


# -- the symbolic reverse sweep ------------------------------------------------------------------

def copy_into(b: Builder, tape: Tape) -> list[int]:
    """Copy a tape's nodes into the builder (tidied); returns old id -> new id."""
    m = [0] * len(tape)
    ops, inputs, literals = tape.ops, tape.inputs, tape.consts
    names = tape.names
    for i, op in enumerate(ops):
        ins = inputs[i]
        if not ins:
            if op.name == "var":
                m[i] = b.var(names[i])
            else:
                m[i] = b.const(literals[i])
            continue
        m[i] = b.op(op.name, *[m[j] for j in ins])
        name = names.get(i)
        if name is not None and op.name != "var":
            j = m[i]
            if b.tape.ops[j].name not in ("var", "const") and j not in b.tape.names:
                b.tape.names[j] = name  # the user's name for an intermediate, kept for printing
    return m


def reverse(b: Builder, tape: Tape, m: Sequence[int], output: int, wrt: Sequence[str],
            seed: int | None = None) -> dict[str, int]:
    """The symbolic reverse sweep of `tape` (copied into b as m) from `output`: for each name
    in wrt, the node of b holding ∂output/∂name. Contributions to a node are summed in the
    formula's order once the sweep reaches it; adjoints are shared nodes, never copies."""
    flags = active(tape, wrt)
    n = len(tape)
    parts: list = [None] * n  # contributions received, in sweep order
    adj: list = [None] * n
    if flags[output]:
        parts[output] = [b.const(1.0) if seed is None else seed]
    inputs, ops = tape.inputs, tape.ops
    for i in range(output, -1, -1):
        got = parts[i]
        if got is None:
            continue
        parts[i] = None
        g = got[-1]
        for c in reversed(got[:-1]):  # in the order the formula wrote them
            g = b.add(g, c)
        adj[i] = g
        ins = inputs[i]
        if not ins:
            continue
        op = ops[i]
        if b.is_const(g, 0.0):
            continue
        mi, mx = m[i], [m[j] for j in ins]
        if op.formula_partials is not None:
            shares = [None if p is None or not flags[j] else _order(b, g, p)
                      for p, j in zip(op.formula_partials(b, mi, *mx), ins)]
        elif op.formula_vjp is not None:
            shares = list(op.formula_vjp(b, g, mi, *mx))
        else:
            shares = [None] * len(ins)
        for k, j in enumerate(ins):
            if not flags[j]:
                continue
            c = shares[k]
            if c is None:
                raise NoFormula(_refusal(op.name, tape, i))
            if parts[j] is None:
                parts[j] = [c]
            else:
                parts[j].append(c)
    zero = None
    out = {}
    for name in wrt:
        j = tape.variables[name]
        if adj[j] is None:
            zero = b.const(0.0) if zero is None else zero
            out[name] = zero
        else:
            out[name] = adj[j]
    return out


def _refusal(opname: str, tape: Tape, i: int) -> str:
    where = tape.expr(i, 40)
    at = f" (in `{where}`)" if where else ""
    return (f"{opname} has no derivative formula{at}: gradcli cannot write this derivative as a "
            "formula (eval gives its value at a point)")


@dataclass
class Derivatives:
    """A formula's derivative tape: the nodes of ∂f/∂x (and ∂²f/∂x∂y) for each --wrt name."""

    tape: Tape  # holds the formula's own nodes, the first and (order 2) second derivatives
    wrt: list[str]
    first: dict[str, int]
    second: dict[str, dict[str, int]] = field(default_factory=dict)
    seed_name: str | None = None  # a tensor output's upstream gradient, a new variable (dD)


def derivatives(tape: Tape, wrt: Sequence[str], order: int = 1,
                output: int | None = None) -> Derivatives:
    """First (and with order 2 second) derivatives of the formula's output, as one tape."""
    if output is None:
        if len(tape.outputs) != 1:
            raise InputError(f"derivatives as formulas need one output; the formula has "
                             f"{len(tape.outputs)} (separated by commas): differentiate each "
                             "on its own")
        output = tape.outputs[0]
    tensor = _tensor_formula(tape)
    b = Builder()
    m = copy_into(b, tape)
    seed_name = None
    seed = None
    if tensor:
        seed_name = _fresh("d" + (tape.names.get(output) or "y"), tape)
        seed = b.var(seed_name)
    first = reverse(b, tape, m, output, wrt, seed)
    d = Derivatives(b.tape, list(wrt), first, seed_name=seed_name)
    b.tape.outputs = [first[x] for x in wrt]
    if order >= 2:
        if tensor:
            raise InputError("--order 2 works on scalar formulas; this one has tensor "
                             "operations (its second derivatives are not matrices)")
        b2 = Builder()
        m2 = copy_into(b2, b.tape)
        d.first = {x: m2[first[x]] for x in wrt}
        d.second = {x: reverse(b2, b.tape, m2, first[x], wrt) for x in wrt}
        d.tape = b2.tape
        d.tape.outputs = list(d.first.values())
    return d


_STRUCTURAL_OK = frozenset({"matmul", "transpose"})


def _tensor_formula(tape: Tape) -> bool:
    """Whether the formula works on tensors (an @, a transpose, a reduction, a [..] literal)."""
    consts = tape.consts
    for i, op in enumerate(tape.ops):
        if not elementwise(op) or (op.name == "const" and _is_tensor(consts.get(i, 0.0))):
            return True
    return False


def _fresh(name: str, tape: Tape) -> str:
    from .ops import CONSTANTS, FUNCTIONS

    while name in tape.variables or name in tape.bound or name in CONSTANTS \
            or name in FUNCTIONS:
        name += "_"
    return name


# -- numbers at a point: Hessians and Hessian-vector products ----------------------------------

class SecondOrder:
    """A scalar formula's gradient tape, built once, evaluated at many points (Newton, check)."""

    def __init__(self, tape: Tape, wrt: Sequence[str]):
        if len(tape.outputs) != 1:
            raise InputError(f"a Hessian needs one output, a scalar; the formula has "
                             f"{len(tape.outputs)} outputs (separated by commas)")
        if _tensor_formula(tape):
            raise InputError("--hessian works on scalar formulas over scalar variables; this "
                             "one has tensor operations")
        self.source = tape
        self.wrt = list(wrt)
        b = Builder()
        m = copy_into(b, tape)
        self.first = reverse(b, tape, m, tape.outputs[0], self.wrt)
        self.output = m[tape.outputs[0]]
        self.tape = b.tape
        self.tape.outputs = [self.first[x] for x in self.wrt]

    def _sweep(self, point: Mapping[str, object]):
        import numpy as np

        from . import engine

        at = {}
        for name in self.tape.variables:
            v = point.get(name)
            if v is not None and np.ndim(v):
                raise InputError(f"the Hessian is over scalar variables; {short(name)} has "
                                 f"shape {tuple(np.shape(v))}")
            at[name] = v
        values = engine.forward(self.tape, {k: v for k, v in at.items() if v is not None})
        partials = engine.local_partials(self.tape, values)
        return values, partials

    def at(self, point: Mapping[str, object]) -> tuple[float, dict, dict]:
        """Value, gradient {x: g} and Hessian {x: {y: h}} at a point (reverse over reverse),
        made exactly symmetric where its two halves agree to rounding."""
        from . import engine

        values, partials = self._sweep(point)
        flags = active(self.tape, self.wrt)
        hess: dict[str, dict[str, float]] = {}
        for x in self.wrt:
            row = {}
            o = self.first[x]
            adj = engine.backward(self.tape, values, partials, flags, o) if flags[o] else None
            for y in self.wrt:
                j = self.tape.variables[y]
                row[y] = 0.0 if adj is None or adj[j] is None else float(adj[j])
            hess[x] = row
        symmetrize(hess)
        grad = {x: float(values[self.first[x]]) for x in self.wrt}
        return float(values[self.output]), grad, hess

    def hvp(self, point: Mapping[str, object], v: Mapping[str, float]) -> dict[str, float]:
        """H·v at a point: one tangent sweep over the gradient tape (forward over reverse)."""
        import numpy as np

        from . import engine

        values, partials = self._sweep(point)
        seed = {self.tape.variables[x]: np.float64(v.get(x, 0.0)) for x in self.wrt}
        tangent = engine.jvp(self.tape, values, partials, seed)
        out = {}
        for x in self.wrt:
            t = tangent[self.first[x]]
            out[x] = 0.0 if t is None else float(t)
        return out


def symmetrize(hess: dict[str, dict[str, float]]) -> None:
    """Average h[x][y] and h[y][x] where they agree to rounding, so the two halves are equal."""
    names = list(hess)
    for a, x in enumerate(names):
        for y in names[a + 1:]:
            p, q = hess[x][y], hess[y][x]
            if p == q or not (math.isfinite(p) and math.isfinite(q)):
                continue
            if abs(p - q) <= 1e-9 * max(abs(p), abs(q)):
                hess[x][y] = hess[y][x] = (p + q) / 2


def evaluate(tape: Tape, point: Mapping[str, object], nodes: Sequence[int]) -> list:
    """The values of some nodes of a derivative tape at a point."""
    from . import engine

    values = engine.forward(tape, {k: v for k, v in point.items() if k in tape.variables})
    return [values[i] for i in nodes]
