"""`gradcli check` of a scalar formula over Python floats: the gradient check without numpy.

The plain check (no answers to grade, no --exact) of a formula whose result the scalar path gives
(result.run(..., floats=True): one output, scalar variables, every value, partial and adjoint
finite, no kink) compares each variable's gradient with the same central differences as
numeric.py (steps.py's arithmetic), each evaluation a run of the tape's compiled float sweep
(compiled.py) instead of numpy's forward sweep. Where anything is not plainly fine (an evaluation
the float sweep refuses, a variable whose status is not "ok": a mismatch wants the suspect
rules, a kink or an undefined difference the engine's view), it gives None and the numpy check
runs from the start, so every report but the plainest comes from the engine as before.
"""

from __future__ import annotations

import math
from typing import Sequence

from .report import CheckReport, Tolerance, VariableCheck
from .steps import difference, rel_error


def float_report(s, tol: Tolerance, names: Sequence[str] | None,
                 subgradient: str) -> CheckReport | None:
    """The check report of session `s` computed with floats, or None (the numpy check's turn)."""
    from .. import compiled
    from ..result import run

    tape = s.tape
    if s.exact or len(tape.outputs) != 1:
        return None
    point = dict(s.point)
    if any(type(point.get(n)) is not float for n in tape.variables):
        return None
    result = run(tape, point, None, s.warnings, subgradient=subgradient, floats=True)
    if result.kinks or not all(type(v) is float for v in result.values):
        return None  # the engine ran (numpy is imported now: the numpy check goes on)
    sweep = compiled.sweep_function(tape, result.active)
    if sweep is None:
        return None
    order = list(tape.variables)
    out = tape.outputs[0]
    f0 = result.values[out]
    adjoint = result.adjoints[0]
    checks = []
    for name in list(result.wrt if names is None else names):
        node = tape.variables[name]
        slot = order.index(name)
        args = [point[n] for n in order]

        def f_at(idx, v, args=args, slot=slot):
            moved = list(args)
            moved[slot] = v
            y = sweep(*moved)[0][out]
            return (y,), (abs(y),)

        a = adjoint[node]
        if type(a) is not float:
            return None
        try:
            n, smooth, noise, why = difference(f_at, (), point[name], 0, (f0,), (abs(f0),))
        except (ArithmeticError, ValueError):  # an evaluation the float sweep leaves to numpy
            return None
        if not (math.isfinite(n) and smooth and math.isfinite(a)
                and abs(a - n) <= tol.rtol * max(abs(a), abs(n)) + tol.atol + noise):
            return None  # not "ok": the numpy check says what it is
        checks.append(VariableCheck(name, node, a, n, rel_error(a, n), "ok"))
    return CheckReport(result, checks, [], [], tol, list(result.warnings), [])
