"""`gradcli diff`'s compute: a loaded formula's derivatives as a tape (plain data, no text).

The derivative tape comes from gradcli.symbolic (the reverse sweep run symbolically); with a
point, each derivative is also evaluated there (second derivatives made symmetric as
`eval --hessian` makes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import engine, symbolic
from .errors import InputError
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
        if np.ndim(v):
            raise InputError(f"--at {name}: diff's values are for scalar variables; "
                             f"{name} has shape {tuple(np.shape(v))}")
    values = engine.forward(d.tape, at)
    r.at = dict(at)
    r.values = {x: float(values[d.first[x]]) for x in d.wrt}
    if d.second:
        hess = {x: {y: float(values[d.second[x][y]]) for y in d.wrt} for x in d.wrt}
        symbolic.symmetrize(hess)
        r.second_values = hess
    for x, v in r.values.items():
        if not engine.finite(v):
            r.warnings.append(f"∂{r.output}/∂{x} is {nonfinite_word(v)} at this point")


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
            if np.ndim(x):
                raise InputError(f"--hvp {name}: give a number for each variable")
        v = so.hvp(s.point, {k: float(x) for k, x in direction.items()})
        direction = {k: float(x) for k, x in direction.items()}
    return SecondOrderResult(list(s.wrt), h, v, direction)
