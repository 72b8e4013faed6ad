"""Grading a formula answer (`--expect 'x = 2*x*sin(x) + x^2*cos(x)'`), as WeBWorK and MITx's
FormulaGrader do: the answer and the true partial are evaluated at the point and at 20 further
points drawn around it, skipping points where either is not finite (a pole). Both sides are
ordinary evaluations of parsed tapes (the answer by `engine.forward`, the truth by `result.run`):
no symbolic algebra, and never eval(). Where they differ, the slip search of `slips.py` runs at
the points that differ, and a slip is named only when it explains the answer at each of them.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Mapping

import numpy as np

from .. import engine
from .report import Answer, FormulaCheck, Grade, Tolerance
from .slips import correct_for, grade_one

POINTS = 20  # further points drawn around --at
ATTEMPTS = 200  # draws tried to find them (points at a pole are skipped)
SLIP_POINTS = 3  # differing points a slip must explain


def draw_points(tape, point: Mapping[str, object], seed: int | None, exact: bool = False,
                n: int = ATTEMPTS) -> tuple[list[dict], int]:
    """`n` points around `point`: each variable of the formula moved uniformly within
    ±(0.5 + |v|/2) of its value (a grid of 1/64 with --exact, so the points are rational).
    Returns the points and the seed used."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = dict(point)
        for name in tape.variables:
            if name not in point:
                continue
            v = np.asarray(point[name], dtype=np.float64)
            moved = v + rng.uniform(-1.0, 1.0, v.shape) * (0.5 + np.abs(v) / 2)
            if exact and moved.ndim == 0:
                p[name] = Fraction(round(float(moved) * 64), 64)
            elif exact:
                p[name] = np.round(moved * 64) / 64
            else:
                p[name] = np.float64(moved) if moved.ndim == 0 else moved
        out.append(p)
    return out, seed


def _finite(v) -> bool:
    if type(v) is Fraction:
        return True
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(np.asarray(v, dtype=np.float64))))


def grade_formula(result, a: Answer, tol: Tolerance, *, seed: int | None = None,
                  exact: bool = False, subgradient: str = "cs231n") -> Grade:
    """A formula answer compared at --at and at POINTS further points where both are finite."""
    from ..result import run

    tape = result.tape
    answer_tape = a.formula
    point = dict(result.at)
    plain = Tolerance(tol.rtol, tol.atol, None, False, exact)  # no rounding for formulas
    draws, used_seed = draw_points(tape, point, seed, exact)
    checked = skipped = 0
    differs: list[tuple[dict, object, object, object]] = []  # (point, yours, correct, result)
    first_yours = first_correct = None
    for p in [point] + draws:
        if checked >= POINTS + 1:
            break
        try:
            r = run(tape, p, None, subgradient=subgradient, exact=exact)
            if exact:
                yours = engine.forward_exact(answer_tape, p)[0][answer_tape.outputs[0]]
            else:
                with np.errstate(all="ignore"):
                    yours = engine.forward(answer_tape, p)[answer_tape.outputs[0]]
        except (ValueError, ArithmeticError):
            skipped += 1
            continue
        truth = correct_for(r, a)
        if first_correct is None and p is point:
            first_yours, first_correct = yours, truth
        if not (_finite(truth) and _finite(yours)):
            skipped += 1
            continue
        checked += 1
        if np.shape(yours) != np.shape(truth) or not plain.close(yours, truth):
            differs.append((p, yours, truth, r))
            if len(differs) >= SLIP_POINTS:
                break
    fc = FormulaCheck(checked, skipped, None, used_seed, exact)
    if first_correct is None:
        first_yours, first_correct = (differs[0][1], differs[0][2]) if differs else (
            float("nan"), float("nan"))
    a.answer = first_yours
    g = Grade(a, first_correct, not differs and checked > 0, formula=fc)
    if differs:
        p, yours, truth, r = differs[0]
        fc.differs_at = {"at": {k: p[k] for k in tape.variables if k in p}, "yours": yours,
                         "correct": truth}
        g.slip = _common_slip(differs, a, plain)
    return g


def _common_slip(differs, a: Answer, tol: Tolerance):
    """The slip that explains the answer at every differing point, if one does."""
    found = None
    for p, yours, truth, r in differs:
        if np.shape(yours) != np.shape(truth):
            return None
        if r.exact:
            from ..result import run

            r = run(r.tape, {k: np.float64(float(v)) if type(v) is Fraction else v
                             for k, v in p.items()}, None, subgradient=r.convention)
            yours = np.float64(float(yours)) if type(yours) is Fraction else yours
        trial = Answer(a.node, a.kind, yours, "", a.source, a.output)
        g = grade_one(r, trial, Tolerance(tol.rtol, tol.atol))
        s = g.slip
        if s is None or s.kind in ("rounded",):
            return None
        s.numbers["formula"] = True
        key = (s.kind, s.via, s.rule, s.other)
        if found is None:
            found, key0 = s, key
        elif key != key0:
            return None
    return found
