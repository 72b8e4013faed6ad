"""`gradcli diff`'s compute: a loaded formula's derivatives as a tape (plain data, no text).

The derivative tape comes from gradcli.symbolic (the reverse sweep run symbolically); with a
point, each derivative is also evaluated there (second derivatives made symmetric as
`eval --hessian` makes them).

A scalar formula at a point of Python floats is evaluated by `float_values` (floats and `math`,
no numpy: issue 17.1); wherever it cannot promise the engine's output (an op without a float
rule, a replaced op, a value that is not finite, math refusing, relu at its kink) the engine
does it, with numpy. For + - * / sqrt pow relu the numbers are the engine's to the bit; for
exp, log, sin, ... `math` and numpy may differ in the last bit (the float paths' documented
behaviour, as in compiled.py).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from . import symbolic
from .errors import InputError
from .ops import builtin
from .session import Session
from .words import nonfinite_word


@dataclass
class DiffResult:
    """Derivatives of one formula: their nodes in one tape, and their values at a point."""

    expression: str
    output: str  # what the output is called (its name, or f)
    derivatives: symbolic.Derivatives
    order: int
    at: dict | None = None
    values: dict | None = None  # x -> ∂f/∂x at the point
    second_values: dict | None = None  # x -> y -> ∂²f/∂x∂y at the point
    warnings: list[str] = field(default_factory=list)

    @property
    def wrt(self) -> list[str]:
        return self.derivatives.wrt


ORDERS = (1, 2)


def diff_session(s: Session, order: int = 1) -> DiffResult:
    """Differentiate a loaded formula (session.load) symbolically; evaluate at its point if
    it has one."""
    if order not in ORDERS:
        raise InputError(f"--order {order}: gradcli gives first (1) or second (2) derivatives")
    tape = s.tape
    if not s.wrt:
        raise InputError("the formula has no variables: every derivative is 0")
    d = symbolic.derivatives(tape, s.wrt, order)
    out = tape.outputs[0]
    r = DiffResult(tape.text, tape.names.get(out) or "f", d, order, warnings=list(s.warnings))
    if d.seed_name is not None:
        r.warnings.append(
            f"matrix forms: {d.seed_name} is the upstream gradient of the output (∂L/∂output); "
            "they assume every @ multiplies matrices (2-D) and nothing is broadcast")
    if s.point:
        _values(r, s.point)
    return r


def _values(r: DiffResult, point: dict) -> None:
    d = r.derivatives
    if d.seed_name is not None:
        raise InputError("--at with tensor formulas: diff prints their matrix forms; "
                         "gradcli eval gives the gradient's values at a point")
    at = {k: v for k, v in point.items() if k in d.tape.variables}
    for name, v in at.items():
        if type(v) is not float and symbolic._is_tensor(v):
            import numpy as np

            raise InputError(f"--at {name}: diff's values are for scalar variables; "
                             f"{name} has shape {tuple(np.shape(v))}")
    wanted = list(d.first.values()) + [j for row in d.second.values() for j in row.values()]
    values = float_values(d.tape, at, wanted)
    if values is None:
        from . import engine

        values = engine.forward(d.tape, at)
    r.at = dict(at)
    r.values = {x: float(values[d.first[x]]) for x in d.wrt}
    if d.second:
        hess = {x: {y: float(values[d.second[x][y]]) for y in d.wrt} for x in d.wrt}
        symbolic.symmetrize(hess)
        r.second_values = hess
    for x, v in r.values.items():
        if not math.isfinite(v):
            r.warnings.append(f"∂{r.output}/∂{x} is {nonfinite_word(v)} at this point")


def _relu(a: float) -> float:
    if a > 0.0:
        return a
    if a < 0.0:
        return 0.0
    raise ArithmeticError  # ±0 (numpy's maximum keeps -0.0) or NaN: the engine's


def _sign(a: float) -> float:
    if a > 0.0:
        return 1.0
    if a < 0.0:
        return -1.0
    if a == 0.0:
        return 0.0  # numpy's sign of -0.0 too
    raise ArithmeticError  # NaN


#: Float rules, each the engine's numpy rule on one number: exact for + - * / sqrt relu (IEEE)
#: and pow (the same libm pow numpy's float64 calls), to the last bit or so for the rest.
_FLOAT_RULES = {
    "id": lambda a: a, "neg": operator.neg, "add": operator.add, "sub": operator.sub,
    "mul": operator.mul, "div": operator.truediv, "pow": math.pow, "sqrt": math.sqrt,
    "relu": _relu, "sign": _sign, "abs": math.fabs,
    **{name: getattr(math, name)
       for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "atan")}}


def float_values(tape, at: dict, nodes) -> list | None:
    """The values of `nodes` and of the nodes they need, as Python floats (engine.forward's
    numbers there, without numpy; None elsewhere), or None where this cannot promise them: a
    variable missing or not a finite float, a constant or op without a float rule (a replaced
    op too), or any needed value that is not finite or that math refuses (1/0, log 0, a negative
    base, overflow). (A derivative tape holds nodes no output needs, such as pow's ln a for a
    constant exponent; numpy computes them, NaN or not, and nothing reads them.)"""
    n = len(tape)
    ops, inputs = tape.ops, tape.inputs
    need = bytearray(n)
    for i in nodes:
        need[i] = 1
    for i in range(n - 1, -1, -1):
        if need[i]:
            for j in inputs[i]:
                need[j] = 1
    values: list = [None] * n
    for name, i in tape.variables.items():
        v = at.get(name)
        if type(v) is not float or not math.isfinite(v):
            return None
        values[i] = v
    for i, v in tape.consts.items():
        if not isinstance(v, float) or not math.isfinite(v):
            return None
        values[i] = float(v)
    isfinite = math.isfinite
    try:
        for i in range(n):
            if not need[i]:
                continue
            ins = inputs[i]
            if not ins:
                if values[i] is None:  # a leaf that is neither a variable nor a number
                    return None
                continue
            op = ops[i]
            rule = _FLOAT_RULES.get(op.name)
            if rule is None or not builtin(op):
                return None
            v = rule(*[values[j] for j in ins])
            if not isfinite(v):
                return None
            values[i] = v
    except (ArithmeticError, ValueError, TypeError):
        return None
    return values


@dataclass
class SecondOrderResult:
    """eval --hessian / --hvp: the Hessian over the --wrt variables and H·v at the point."""

    wrt: list[str]
    hessian: dict | None
    hvp: dict | None
    direction: dict | None


def second_order(s: Session, hessian: bool, hvp: str | None) -> SecondOrderResult:
    """The Hessian (reverse over reverse) and/or a Hessian-vector product (forward over
    reverse) of a loaded one-output formula at its point."""
    so = symbolic.SecondOrder(s.tape, s.wrt)
    h = so.at(s.point)[2] if hessian else None
    v = None
    direction = None
    if hvp is not None:
        from .points import Point

        direction = Point(None).parse([hvp])
        for name, x in direction.items():
            if name not in s.wrt:
                raise InputError(f"--hvp {name}: not a variable differentiated here "
                                 f"({', '.join(s.wrt)})")
            if symbolic._is_tensor(x):
                raise InputError(f"--hvp {name}: give a number for each variable")
        v = so.hvp(s.point, {k: float(x) for k, x in direction.items()})
        direction = {k: float(x) for k, x in direction.items()}
    return SecondOrderResult(list(s.wrt), h, v, direction)
