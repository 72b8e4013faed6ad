"""`gradcli check`: the analytic gradient against central differences, and grading hand answers.

Pure compute (numpy where a value needs it, no rich, no typer, no wording): the result is a
`CheckReport` of plain data; `gradcli.render.checkout` prints it and
`gradcli.render.jsonout.check_json` writes its JSON.

* `report.py`: the data (Tolerance, VariableCheck, Kink, Suspect, Answer, Slip, Grade, CheckReport);
* `numeric.py`: the gradient check against central differences, kinks, suspect rules;
  `steps.py` its arithmetic, `floats.py` the same check of a scalar formula without numpy;
* `answers.py`: reading hand answers (`--expect`, `--expect-node`, `--answers FILE`);
* `slips.py`: grading them and naming the likely slip;
* here: the entry points, `check_session` (a loaded formula: nothing is parsed twice), `check_text`
  (the command line's strings) and `check` (the Python API).
"""

from __future__ import annotations

import json
import math
import os
from typing import Iterable, Mapping, Sequence

from ..errors import GradcliError, InputError
from ..session import Session, load
from .report import (DEFAULT_ATOL, DEFAULT_RTOL, MAX_ELEMENTS, Answer, CheckReport, Grade, Kink,
                     Slip, Suspect, Tolerance, VariableCheck)

# The modules that compute with numpy (answers, formulas, numeric, slips) are imported where they
# are used, so that the plain check of a scalar formula (floats.py) runs without numpy; their
# names are still importable from here (loaded on first use).
_LAZY = {"answer_value": "answers", "formula_answers": "answers", "parse_expect": "answers",
         "parse_expect_node": "answers", "read_answers": "answers", "resolve": "answers",
         "grade_formula": "formulas", "find_kinks": "numeric", "gradient_check": "numeric",
         "suspect_rules": "numeric", "grade": "slips"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def run_check(result, answers: Sequence[Answer] = (), tol: Tolerance | None = None,
              names: Sequence[str] | None = None, *, exact=None, seed: int | None = None,
              subgradient: str = "cs231n", max_elements: int = MAX_ELEMENTS) -> CheckReport:
    """Gradient check, kinks and grades for an evaluated result (`exact`: the same computed
    with fractions, for --exact; formula answers are drawn around the point with `seed`)."""
    from .formulas import grade_formula
    from .numeric import find_kinks, gradient_check, suspect_rules
    from .slips import grade

    tol = tol or Tolerance()
    kinks = find_kinks(result)
    plain = [a for a in answers if a.formula is None]
    formulas = {(a.node, a.kind, a.output): a for a in answers if a.formula is not None}
    grades = grade(result, plain, tol, exact)
    grades = [g for g in grades if (g.node, g.kind, g.answer.output) not in formulas]
    for a in formulas.values():
        grades.append(grade_formula(result, a, tol, seed=seed, exact=exact is not None,
                                    subgradient=subgradient))
    grades.sort(key=lambda g: (g.node, g.kind != "value", g.answer.output or 0))
    sampled: list[str] = []  # a tensor checked on a sample of its elements (--max-elements)
    variables = gradient_check(result, tol, names, kinks, max_elements, sampled, seed)
    by_node = {g.node: g for g in grades if g.kind == "grad" and g.answer.output in (None, 0)}
    for v in variables:
        v.expected = by_node.get(v.node)
    suspects = suspect_rules(result) if any(v.status == "mismatch" for v in variables) else []
    warnings = list(result.warnings) + sampled
    for g in grades:
        if g.search is not None and g.search.capped:
            warnings.append(f"the search for a slip behind the answer for node #{g.node} stopped "
                            f"at its cap ({g.search.limit:,} places tried on the paths from the "
                            "output): a slip further back was not looked for")
    return CheckReport(result, variables, grades, kinks, tol, warnings, suspects)


def check_session(s: Session, *, expect: Sequence[str] = (), expect_node: Sequence[str] = (),
                  answers: str | None = None, answers_text: str | None = None,
                  rtol: float | None = None, atol: float = DEFAULT_ATOL,
                  places: int | None = None, subgradient: str = "cs231n",
                  outputs: Sequence[str] | None = None, exact: bool | None = None,
                  seed: int | None = None, max_elements: int = MAX_ELEMENTS) -> CheckReport:
    """`gradcli check` on a loaded formula (`session.load`): its tape is not parsed again.

    `expect` and `expect_node` are strings as on the command line (`x=-4,y=3`; `q=3`,
    `grad q=-4`; `x=2*x*cos(x)` a formula answer; `f2.y=1` for an output of several, named as
    `outputs` lists them); `answers` is the path of an answers file (`answers_text` its contents
    when it came from stdin). A point carried by the answers file (eval's `at`) fills in the
    variables the session has no value for. Without `rtol` (and `places`), an answer right to
    the decimals it was written with is right ("right to 2 decimals"). `exact` (default: the
    session's --exact) compares rational answers as fractions."""
    from ..result import run
    from ..points import coerce_point

    rounding = rtol is None and places is None
    rtol = DEFAULT_RTOL if rtol is None else rtol
    exact = s.exact if exact is None else exact
    _check_tolerances(rtol, atol, places)
    tape = s.tape
    if answers is None and not expect and not expect_node and not exact:
        from .floats import float_report  # the plain check of a scalar formula, without numpy

        report = float_report(s, Tolerance(rtol, atol, places, rounding, exact), s.wrt,
                              subgradient)
        if report is not None:
            return report
    from .answers import formula_answers, parse_expect, parse_expect_node, read_answers

    given: list[Answer] = []
    file_at: dict = {}
    if answers is not None:
        given, file_at = read_answers(tape, answers, answers_text)
    given += parse_expect(tape, expect, outputs)
    given += parse_expect_node(tape, expect_node)
    point = dict(s.point)
    if file_at:
        try:
            # @files in the answers file's `at`: only beside it (from stdin: none), issue 15
            beside = "" if answers_text is not None else os.path.dirname(os.path.abspath(answers))
            extra = coerce_point({k: v for k, v in file_at.items() if k not in point},
                                 exact, files=beside, source=f"the answers file {answers}")
        except GradcliError as exc:
            raise InputError(f"--answers {answers}: its `at`: {exc.message}") from None
        point.update(extra)
    formula_answers(tape, given, point, exact)
    # Every variable carries a gradient (a --wrt subset only limits the variables checked), so
    # answers for the others' gradients are graded too. With --exact the check and the slip
    # search run on floats; the fractions are the correct values answers are compared with.
    floats = {k: _as_float(v) for k, v in point.items()} if exact else point
    result = run(tape, floats, None, s.warnings, subgradient=subgradient)
    exact_result = None
    if exact:
        exact_result = run(tape, point, None, [], subgradient=subgradient, exact=True)
        result.warnings += [w for w in exact_result.warnings if w not in result.warnings]
    return run_check(result, given, Tolerance(rtol, atol, places, rounding, exact), s.wrt,
                     exact=exact_result, seed=s.seed if seed is None else seed,
                     subgradient=subgradient, max_elements=max_elements)


def _as_float(v):
    from fractions import Fraction

    import numpy as np

    if type(v) is Fraction:
        return np.float64(float(v))
    if isinstance(v, np.ndarray) and v.dtype == object:
        return v.astype(np.float64)
    return v


def check_text(text: str, at_specs: Sequence[str], *, wrt: Iterable[str] | None = None,
               seed: int | None = None, expect: Sequence[str] = (),
               expect_node: Sequence[str] = (), answers: str | None = None,
               answers_text: str | None = None, rtol: float | None = None,
               atol: float = DEFAULT_ATOL, places: int | None = None,
               subgradient: str = "cs231n", max_nodes: int = 0,
               exact: bool = False) -> CheckReport:
    """`gradcli check` with the point as `--at` strings: `load` then `check_session`."""
    _check_tolerances(DEFAULT_RTOL if rtol is None else rtol, atol, places)
    s = load(text, list(at_specs), seed=seed, max_nodes=max_nodes, wrt=wrt, exact=exact)
    return check_session(s, expect=expect, expect_node=expect_node, answers=answers,
                         answers_text=answers_text, rtol=rtol, atol=atol, places=places,
                         subgradient=subgradient)


def check(text: str, at: Mapping[str, object] | None = None, *, wrt: Iterable[str] | None = None,
          expect: Mapping[str, object] | None = None,
          expect_node: Iterable[str] | None = None, answers: str | None = None,
          rtol: float | None = None, atol: float = DEFAULT_ATOL, places: int | None = None,
          subgradient: str = "cs231n", seed: int | None = None,
          exact: bool = False) -> CheckReport:
    """The Python API of `gradcli check`: `check("(x+y)*z", at={...}, expect={"x": -4})`.

    `expect` maps names (or `#3`, or `f2.x`) to hand-computed gradients (numbers, arrays, or
    strings as on the command line, formulas too); `expect_node` takes strings as
    `--expect-node` does (`q=3`, `grad q=-4`); `answers` is the path of an answers file. The
    point is the formula's own `# at:` lines with `at` over them, as on the command line."""
    _check_tolerances(DEFAULT_RTOL if rtol is None else rtol, atol, places)
    s = load(text, dict(at or {}), seed=seed, max_nodes=0, wrt=wrt, exact=exact)
    return check_session(s, expect=[f"{k}={_spec(v)}" for k, v in (expect or {}).items()],
                         expect_node=list(expect_node or ()), answers=answers, rtol=rtol,
                         atol=atol, places=places, subgradient=subgradient)


def _check_tolerances(rtol: float, atol: float, places: int | None) -> None:
    if not (rtol >= 0 and math.isfinite(rtol)):
        raise InputError(f"--rtol {rtol}: give a tolerance ≥ 0, such as 1e-6")
    if not (atol >= 0 and math.isfinite(atol)):
        raise InputError(f"--atol {atol}: give a tolerance ≥ 0, such as 1e-10")
    if places is not None and not 0 <= places <= 15:
        raise InputError(f"--places {places}: give a number of decimals from 0 to 15")


def _spec(v) -> str:
    if isinstance(v, str):
        return v
    import numpy as np

    arr = np.asarray(v, dtype=np.float64)
    return repr(float(arr)) if arr.ndim == 0 else json.dumps(arr.tolist())


__all__ = ["Answer", "CheckReport", "DEFAULT_ATOL", "DEFAULT_RTOL", "Grade", "Kink", "Slip",
           "Suspect", "Tolerance", "VariableCheck", "answer_value", "check", "check_session",
           "check_text", "find_kinks", "gradient_check", "grade", "parse_expect",
           "parse_expect_node", "read_answers", "resolve", "run_check", "suspect_rules"]
