"""`check --hessian`: the symbolic Hessian against central differences of the gradient.

Column y of the numeric Hessian is (∇f(p + h·e_y) − ∇f(p − h·e_y)) / 2h, each gradient from
the ordinary reverse sweep, with h = 6e-6·max(1, |p_y|) (about ε^(1/3): truncation and rounding
errors balance). Plain data out; render/second.py prints it, jsonout adds it to the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..result import run
from ..session import Session
from ..symbolic import SecondOrder

#: Relative tolerance of the comparison; the absolute one scales with the gradient's size.
HESSIAN_RTOL = 1e-5
HESSIAN_ATOL = 1e-6


@dataclass(frozen=True, slots=True)
class HessianEntry:
    row: str
    col: str
    analytic: float
    numeric: float
    rel_error: float
    ok: bool


@dataclass
class HessianCheck:
    wrt: list[str]
    entries: list[HessianEntry]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)


def check_hessian(s: Session) -> HessianCheck:
    """Compare every ∂²f/∂x∂y from the derivative tape with central differences."""
    so = SecondOrder(s.tape, s.wrt)
    _, grad, hess = so.at(s.point)
    scale = max([1.0] + [abs(g) for g in grad.values() if np.isfinite(g)])
    numeric: dict[str, dict[str, float]] = {x: {} for x in s.wrt}
    for y in s.wrt:
        p = float(s.point[y])
        h = 6e-6 * max(1.0, abs(p))
        sides = []
        for sign in (1, -1):
            point = dict(s.point)
            point[y] = np.float64(p + sign * h)
            sides.append(run(s.tape, point, s.wrt).gradient)
        for x in s.wrt:
            numeric[x][y] = (sides[0][x] - sides[1][x]) / (2 * h)
    entries = []
    for x in s.wrt:
        for y in s.wrt:
            a, n = hess[x][y], numeric[x][y]
            err = abs(a - n)
            rel = err / max(abs(a), abs(n), 1e-300)
            ok = bool(err <= HESSIAN_ATOL * scale + HESSIAN_RTOL * max(abs(a), abs(n)))
            entries.append(HessianEntry(x, y, a, n, float(rel), ok))
    return HessianCheck(list(s.wrt), entries)
