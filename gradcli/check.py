"""`gradcli check`: the analytic gradient against central differences, and grading hand answers.

Two jobs, both pure (numpy, no rich, no typer):

* **Gradient check.** For every variable (every element of a tensor variable) the reverse-mode
  gradient is compared with the central difference (f(x+h) - f(x-h)) / 2h, h = ε^(1/3)·max(1, |x|).
  The same points at h/4 and the one-sided differences tell a kink or a jump (where no derivative
  exists) from a wrong rule: at a kink the one-sided slopes disagree at every step size; at a jump
  the difference quotient grows as h shrinks; a smooth function does neither. A variable whose
  difference straddles a kink is reported as such and does not fail the check.
* **Grading.** Hand-computed node values and gradients (`--expect`, `--expect-node`, `--answers`)
  are compared with the correct ones. The report points at the first wrong node (values in forward
  order, then gradients in backward order: the wrong gradient closest to the output, since earlier
  mistakes propagate) and names the likely slip when one fits: a flipped sign, a local derivative
  without the upstream gradient, fan-out not summed, another gate's rule, and so on.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from . import engine
from .errors import GradcliError, InputError
from .tape import Tape

EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1.0 / 3.0)  # ≈ 6.1e-6: balances truncation (h²) against rounding (ε/h)
NOISE = 32.0  # rounding in f, in units of ε·|f| (|f| summed over a tensor output's elements)
CONVERGE = 1e-4  # central differences at h and h/4 agree this well where f is smooth
JUMP = 1e-3  # one-sided slopes differing by this (relative), at h and h/4 alike: a kink
SHRINK = 12  # how many times the step may shrink by 4 (to ~h/1.7e7) before giving up
TINY = float(np.finfo(np.float64).tiny)

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-10


# -- data -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tolerance:
    """When two numbers agree: within `rtol` (relative) plus `atol`, or, with `places`, when the
    answer is the correct value rounded to that many decimals."""

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    places: int | None = None

    def close(self, answer, correct) -> bool:
        """Whether a hand answer matches the correct value (elementwise for tensors)."""
        a = np.asarray(answer, dtype=np.float64)
        c = np.asarray(correct, dtype=np.float64)
        if a.shape != c.shape:
            return False
        with np.errstate(all="ignore"):
            diff = np.abs(a - c)
            if self.places is not None:
                limit = 0.5 * 10.0 ** -self.places * (1 + 1e-9) + 4 * EPS * np.abs(c)
            else:
                limit = self.rtol * np.maximum(np.abs(a), np.abs(c)) + self.atol
            finite = np.isfinite(a) & np.isfinite(c)
            same = (a == c) | (np.isnan(a) & np.isnan(c))
            return bool(np.all(np.where(finite, diff <= limit, same)))

    def describe(self) -> str:
        if self.places is not None:
            return f"answers rounded to {self.places} decimal{'s' if self.places != 1 else ''}"
        return f"rtol {self.rtol:g}"


@dataclass(slots=True)
class VariableCheck:
    """One variable: its analytic gradient, the central difference, and whether they agree."""

    name: str
    node: int
    analytic: object  # a number or array; a list of them (one per output) for several outputs
    numeric: object
    rel_error: float  # the largest over elements (and outputs)
    status: str  # "ok", "mismatch", "kink" or "undefined"
    note: str = ""
    expected: "Grade | None" = None  # a graded answer for this variable's gradient

    @property
    def ok(self) -> bool:
        """Whether the check passes for this variable (at a kink it does: no derivative exists)."""
        return self.status in ("ok", "kink")


@dataclass(slots=True)
class Kink:
    """A node evaluated exactly where its op has no derivative (relu(0), a max tie, ...)."""

    node: int
    op: str
    message: str


@dataclass(slots=True)
class Suspect:
    """A node whose local derivative disagrees with a central difference of its own op: the rule
    in the rule table (gradcli/ops.py) looks wrong."""

    node: int
    slot: int  # which input
    analytic: object
    numeric: object
    message: str


@dataclass(slots=True)
class Answer:
    """One hand answer: the value or the gradient of one node."""

    node: int
    kind: str  # "value" or "grad"
    answer: object  # np.float64 or an array
    text: str  # as written
    source: str  # where it came from: --expect, --expect-node, FILE:LINE


@dataclass(slots=True)
class Slip:
    """The likely mistake behind a wrong answer."""

    kind: str
    message: str
    via: int | None = None  # the consumer (for gradients) or input node the slip concerns


@dataclass(slots=True)
class Grade:
    """A hand answer marked right or wrong, with the correct value and the likely slip."""

    answer: Answer
    correct: object
    ok: bool
    slip: Slip | None = None

    @property
    def node(self) -> int:
        return self.answer.node

    @property
    def kind(self) -> str:
        return self.answer.kind


@dataclass(slots=True)
class CheckReport:
    """Everything `gradcli check` found."""

    result: object  # the api.Result at the point
    variables: list[VariableCheck]
    grades: list[Grade]
    kinks: list[Kink]
    tolerance: Tolerance
    warnings: list[str] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)  # looked for when a variable fails

    @property
    def tape(self) -> Tape:
        return self.result.tape

    @property
    def ok(self) -> bool:
        """True when every variable agrees (or sits at a kink) and every answer is right."""
        return all(v.ok for v in self.variables) and all(g.ok for g in self.grades)

    @property
    def first_wrong(self) -> Grade | None:
        """The first wrong answer: a wrong value in forward order (values are computed first);
        else the wrong gradient closest to the output (backward order)."""
        values = [g for g in self.grades if not g.ok and g.kind == "value"]
        if values:
            return min(values, key=lambda g: g.node)
        grads = [g for g in self.grades if not g.ok and g.kind == "grad"]
        if grads:
            return max(grads, key=lambda g: g.node)
        return None

    def to_dict(self) -> dict:
        """The `check --json` document (contract §4), as plain Python data."""
        tape = self.tape
        doc: dict = {
            "schema_version": 1,
            "expression": tape.text,
            "at": {k: _plain(v) for k, v in self.result.at.items()},
            "ok": self.ok,
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
        }
        if self.tolerance.places is not None:
            doc["places"] = self.tolerance.places
        variables = []
        for v in self.variables:
            entry = {"name": v.name, "analytic": _plain(v.analytic),
                     "numeric": _plain(v.numeric), "rel_error": _plain(v.rel_error),
                     "ok": v.ok, "status": v.status}
            if v.note:
                entry["note"] = v.note
            if v.expected is not None:
                entry["expected"] = _plain(v.expected.answer.answer)
                entry["expected_ok"] = v.expected.ok
                if v.expected.slip is not None:
                    entry["slip"] = _slip_dict(v.expected.slip)
            variables.append(entry)
        doc["variables"] = variables
        if self.grades:
            doc["nodes"] = [self._grade_dict(g) for g in self.grades]
            first = self.first_wrong
            doc["first_wrong"] = None if first is None else {
                "id": first.node, "kind": first.kind, "label": tape.label(first.node)}
        if self.suspects:
            doc["suspects"] = [{"id": x.node, "op": tape.ops[x.node].name,
                                "expr": tape.expr(x.node), "input": x.slot,
                                "analytic": _plain(x.analytic), "numeric": _plain(x.numeric),
                                "message": x.message} for x in self.suspects]
        doc["kinks"] = [{"id": k.node, "op": k.op, "expr": tape.expr(k.node),
                         "name": tape.names.get(k.node), "message": k.message}
                        for k in self.kinks]
        doc["warnings"] = list(self.warnings)
        return doc

    def _grade_dict(self, g: Grade) -> dict:
        tape = self.tape
        i = g.node
        entry = {"id": i, "name": tape.names.get(i), "expr": tape.expr(i), "op": tape.ops[i].name,
                 "kind": g.kind, "answer": _plain(g.answer.answer), "correct": _plain(g.correct),
                 "ok": g.ok, "source": g.answer.source}
        if g.slip is not None:
            entry["slip"] = _slip_dict(g.slip)
        return entry

    def to_json(self) -> str:
        """Strict RFC 8259 JSON: non-finite numbers are the strings "NaN", "Infinity"."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)


def _slip_dict(slip: Slip) -> dict:
    out = {"kind": slip.kind, "message": slip.message}
    if slip.via is not None:
        out["via"] = slip.via
    return out


def _plain(v):
    """Numbers, arrays and lists of them as JSON-ready data (non-finite numbers as strings)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return _plain(v[()])
        flat = [_plain(float(x)) for x in v.reshape(-1)]
        for n in reversed(v.shape[1:]):  # regroup into nested lists without recursion
            flat = [flat[k : k + n] for k in range(0, len(flat), n)]
        return flat
    f = float(v)
    if math.isfinite(f):
        return f
    return "NaN" if f != f else ("Infinity" if f > 0 else "-Infinity")


# -- the gradient check ---------------------------------------------------------------------------

def _output_sums(tape: Tape, point: Mapping[str, object]) -> tuple[np.ndarray, np.ndarray]:
    """Each output's value (a tensor output summed, as its gradient is seeded with ones) and the
    scale of its rounding error (the sum of absolute values)."""
    values = engine.forward(tape, point)
    with np.errstate(all="ignore"):
        outs = np.array([np.sum(values[o]) for o in tape.outputs], dtype=np.float64)
        scale = np.array([np.sum(np.abs(values[o])) for o in tape.outputs], dtype=np.float64)
    return outs, scale


def gradient_check(result, tol: Tolerance | None = None, names: Sequence[str] | None = None,
                   kinks: list[Kink] | None = None) -> list[VariableCheck]:
    """Compare each variable's analytic gradient with central differences (every element)."""
    tol = tol or Tolerance()
    tape: Tape = result.tape
    names = list(result.wrt if names is None else names)
    point = dict(result.at)
    f0, scale0 = _output_sums(tape, point)
    if kinks is None:
        kinks = find_kinks(result)
    reaches = _kink_reach(tape, kinks, names)
    checks = []
    for name in names:
        node = tape.variables[name]
        checks.append(_check_variable(tape, result, point, name, node, f0, scale0, tol,
                                      reaches.get(name, [])))
    return checks


def _check_variable(tape, result, point, name, node, f0, scale0, tol, kinks_reached):
    arr = np.array(point[name], dtype=np.float64)
    shape = arr.shape
    n_out = len(tape.outputs)
    analytic = np.stack([np.asarray(adj[node], dtype=np.float64).reshape(shape)
                         for adj in result.adjoints])  # (n_out, *shape)
    numeric = np.empty((n_out,) + shape)
    status = np.empty((n_out,) + shape, dtype=object)
    rel = np.empty((n_out,) + shape)
    seen: set[str] = set()  # what made a difference non-smooth: "kink", "jump"

    def f_at(idx, v):
        moved = arr.copy()
        moved[idx] = v
        local = dict(point)
        local[name] = np.float64(moved[()]) if shape == () else moved
        return _output_sums(tape, local)

    for idx in np.ndindex(*shape) if shape else [()]:
        xi = float(arr[idx])
        for k in range(n_out):
            key = (k,) + idx
            a = analytic[key]
            n, smooth, noise, why = _difference(f_at, idx, xi, k, f0, scale0)
            numeric[key] = n
            rel[key] = _rel_error(a, n)
            if why:
                seen.add(why)
            if not np.isfinite(n) or not np.isfinite(f0[k]):
                status[key] = "kink" if kinks_reached and np.isfinite(f0[k]) else "undefined"
            elif not smooth:
                status[key] = "kink"
            elif np.isfinite(a) and abs(a - n) <= (tol.rtol * max(abs(a), abs(n)) + tol.atol
                                                   + noise):
                status[key] = "ok"
            elif kinks_reached:
                status[key] = "kink"  # differentiable here, but a node sits exactly at a kink
            else:
                status[key] = "mismatch"

    flat = list(status.reshape(-1))
    overall = next((s for s in ("mismatch", "undefined", "kink") if s in flat), "ok")
    note = _variable_note(overall, flat, kinks_reached, tape, seen)
    with np.errstate(all="ignore"):
        worst = float(np.nanmax(rel)) if np.any(~np.isnan(rel)) else float("nan")
    return VariableCheck(name, node, _per_output(analytic, n_out), _per_output(numeric, n_out),
                         worst, overall, note)


def _difference(f_at, idx, xi: float, k: int, f0, scale0) -> tuple[float, bool, float, str]:
    """The numeric derivative of output k along one element: (estimate, smooth?, noise, why).

    Central differences at h and h/4 (h = ε^(1/3)·max(1, |x|)). Where they agree, the function is
    smooth at this scale and their Richardson combination (16·c(h/4) - c(h))/15 is the estimate.
    Where the one-sided slopes differ by the same amount at h and at h/4, the point sits on a kink.
    Otherwise (a kink or a domain edge just inside the step, or strong curvature) the step shrinks
    by 4, up to 12 times; a jump never settles.
    """
    h = STEP * max(1.0, abs(xi))
    h = (xi + h) - xi  # a step exactly representable next to xi
    if not np.isfinite(f0[k]):
        return float("nan"), False, 0.0, ""
    estimate, why, finite_seen = float("nan"), "", False
    noise = 0.0
    for _ in range(SHRINK):
        fp, sp = f_at(idx, xi + h)
        fm, sm = f_at(idx, xi - h)
        fp4, sp4 = f_at(idx, xi + h / 4)
        fm4, sm4 = f_at(idx, xi - h / 4)
        if not all(np.isfinite(v[k]) for v in (fp, fm, fp4, fm4)):
            h /= 4  # a domain edge inside the step
            continue
        finite_seen = True
        delta = NOISE * EPS * max(scale0[k], sp[k], sm[k], sp4[k], sm4[k])
        noise = delta / h
        c1 = (fp[k] - fm[k]) / (2 * h)
        c2 = (fp4[k] - fm4[k]) / (h / 2)
        jump1 = (fp[k] - f0[k]) / h - (f0[k] - fm[k]) / h
        dp2, dm2 = (fp4[k] - f0[k]) / (h / 4), (f0[k] - fm4[k]) / (h / 4)
        jump2 = dp2 - dm2
        if (abs(jump2) > JUMP * max(abs(dp2), abs(dm2)) + 32 * noise
                and abs(jump2) > 0.5 * abs(jump1)):
            return c1, False, 4 * noise, "kink"
        if abs(c1 - c2) <= CONVERGE * max(abs(c1), abs(c2)) + 8 * noise:
            return (16 * c2 - c1) / 15, True, 8 * noise, ""
        estimate = c1
        why = "jump" if abs(c2) > 2 * abs(c1) else "kink"
        h /= 4
    if not finite_seen:
        return float("nan"), False, 0.0, ""
    return estimate, False, 4 * noise, why


def _rel_error(a: float, n: float) -> float:
    """|a - n| / max(|a|, |n|), 0 when both are 0."""
    if not (np.isfinite(a) and np.isfinite(n)):
        return 0.0 if a == n else float("nan")
    return float(abs(a - n) / max(abs(a), abs(n), TINY))


def _per_output(arr: np.ndarray, n_out: int):
    if n_out == 1:
        return arr[0][()] if arr[0].ndim == 0 else arr[0]
    return [arr[k][()] if arr[k].ndim == 0 else arr[k] for k in range(n_out)]


def _variable_note(overall, flat, kinks_reached, tape, seen) -> str:
    count = sum(1 for s in flat if s == overall)
    where = "" if len(flat) == 1 else f" ({count} of {len(flat)} elements)"
    if overall == "mismatch":
        return f"the analytic gradient and the central difference disagree{where}"
    if overall == "undefined":
        return (f"the function is not finite at this point or around it{where}: no numeric "
                "derivative to compare with")
    if overall == "kink":
        if kinks_reached:
            names = ", ".join(f"`{tape.label(k.node, 30)}`" for k in kinks_reached[:3])
            return (f"not differentiable here{where}: {names} "
                    f"{'sits' if len(kinks_reached) == 1 else 'sit'} exactly at a kink; the "
                    "analytic value is gradcli's convention (a subgradient)")
        what = "jumps" if seen == {"jump"} else "has a kink"
        return (f"not differentiable here{where}: the function {what} at (or right next to) "
                "this point: the one-sided differences disagree however small the step, so "
                "there is no single derivative to compare with")
    return ""


# -- which rule is wrong --------------------------------------------------------------------------

def suspect_rules(result, rtol: float = 1e-6) -> list[Suspect]:
    """Check every node's own rule at its inputs: an elementwise op's local partials against a
    central difference of its value function, a structural op's vjp against a directional
    difference (⟨vjp(g), t⟩ = ⟨g, dy(t)⟩ for random g and t). Nodes at kinks are skipped."""
    tape: Tape = result.tape
    values = result.values
    at_kink = set(getattr(result, "kinks", None) or ())
    out: list[Suspect] = []
    for i, op in enumerate(tape.ops):
        ins = tape.inputs[i]
        if not ins or not result.active[i] or i in at_kink or op.value is None:
            continue
        xs = [values[j] for j in ins]
        for slot, j in enumerate(ins):
            if not result.active[j]:
                continue
            try:
                found = _rule_check(op, values[i], xs, slot, result.partials[i], i, rtol)
            except (ValueError, TypeError, IndexError, ZeroDivisionError):
                continue
            if found is not None:
                analytic, numeric = found
                out.append(Suspect(i, slot, analytic, numeric, (
                    f"node #{i} `{tape.expr(i, 40)}`: {op.name}'s rule gives "
                    f"∂/∂{symbol(tape, j)} = {_fmt(analytic)}, but a central difference of "
                    f"{op.name} itself gives {_fmt(numeric)} (the rule in gradcli/ops.py looks "
                    "wrong)" if op.vjp is None else
                    f"node #{i} `{tape.expr(i, 40)}`: {op.name}'s vjp for input "
                    f"{symbol(tape, j)} gives ⟨vjp(g), t⟩ = {_fmt(analytic)}, but a directional "
                    f"difference of {op.name} itself gives {_fmt(numeric)} (the rule in "
                    "gradcli/ops.py looks wrong)")))
    return out


def _rule_check(op, y, xs, slot, partials, seed, rtol):
    """(analytic, numeric) when the op's rule for input `slot` disagrees with its value function."""
    x = np.asarray(xs[slot], dtype=np.float64)
    with np.errstate(all="ignore"):
        if op.vjp is None:
            if partials is None:
                return None
            h = STEP * np.maximum(1.0, np.abs(x))
            up, down = list(xs), list(xs)
            up[slot], down[slot] = (x + h)[()], (x - h)[()]
            fp, fm = np.asarray(op.value(*up)), np.asarray(op.value(*down))
            numeric = (fp - fm) / (2 * h)  # h broadcasts like the input does
            analytic = np.broadcast_to(np.asarray(partials[slot], dtype=np.float64),
                                       numeric.shape)
            scale = np.maximum(np.abs(fp), np.abs(fm))
            noise = NOISE * EPS * scale / np.min(h)
        else:
            rng = np.random.default_rng(seed)
            t = rng.standard_normal(x.shape)[()]
            g = rng.standard_normal(np.shape(y))[()]
            h = STEP * max(1.0, float(np.max(np.abs(x))))
            up, down = list(xs), list(xs)
            up[slot], down[slot] = (x + h * t)[()], (x - h * t)[()]
            fp, fm = np.asarray(op.value(*up)), np.asarray(op.value(*down))
            numeric = np.sum(g * (fp - fm) / (2 * h))
            analytic = np.sum(np.asarray(op.vjp(g, y, *xs)[slot]) * t)
            noise = NOISE * EPS * float(np.sum(np.abs(g) * np.maximum(np.abs(fp), np.abs(fm)))) / h
        finite = np.isfinite(numeric) & np.isfinite(analytic)
        bad = finite & (np.abs(analytic - numeric)
                        > max(rtol, 1e-6) * np.maximum(np.abs(analytic), np.abs(numeric))
                        + 1e-9 + 8 * noise)
    if not np.any(bad):
        return None
    if np.ndim(numeric) == 0:
        return float(analytic), float(numeric)
    k = int(np.argmax(bad.reshape(-1)))
    return float(np.asarray(analytic).reshape(-1)[k]), float(np.asarray(numeric).reshape(-1)[k])


# -- kinks ----------------------------------------------------------------------------------------

def find_kinks(result) -> list[Kink]:
    """Nodes evaluated exactly where their op has no derivative (relu/abs/sign at 0, max/min
    ties, norm of zero), as the engine flags them; the slope there is a convention."""
    tape: Tape = result.tape
    out = []
    for i in getattr(result, "kinks", None) or []:
        op = tape.ops[i]
        rule = op.kink_rule or op.note
        convention = getattr(result, "convention", "cs231n")
        out.append(Kink(i, op.name, f"{op.name} at a kink: {rule}; the analytic gradient follows "
                        f"the {convention} convention (--subgradient)"))
    return out


def _kink_reach(tape: Tape, kinks: list[Kink], names: Sequence[str]) -> dict[str, list[Kink]]:
    """For each variable, the kinks that depend on it."""
    if not kinks:
        return {}
    out: dict[str, list[Kink]] = {}
    for name in names:
        flags = engine.active(tape, [name])
        hit = [k for k in kinks if flags[k.node]]
        if hit:
            out[name] = hit
    return out


# -- reading answers ------------------------------------------------------------------------------

_NODE_ID = re.compile(r"#\s*(\d+)")
_KINDS = {"value": "value", "val": "value", "grad": "grad", "gradient": "grad"}
_DECIMALS = re.compile(r"[+-]?\d*\.(\d+)")


def resolve(tape: Tape, ref: str, where: str) -> int:
    """A node reference: a variable, a named intermediate, `#3` for node 3, or `f` for the output
    of a formula that names none."""
    r = ref.strip()
    m = _NODE_ID.fullmatch(r)
    if m:
        i = int(m.group(1))
        if i >= len(tape):
            raise InputError(f"{where}: there is no node {r} (the formula has nodes #0 to "
                             f"#{len(tape) - 1})")
        return i
    if r in tape.variables:
        return tape.variables[r]
    if r in tape.bound:
        return tape.bound[r]
    if r == "f" and len(tape.outputs) == 1:
        return tape.outputs[0]
    known = list(tape.variables) + [n for n in tape.bound if n not in tape.variables]
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    raise InputError(f"{where}: the formula has no node {r!r} (its names: {shown or 'none'}; "
                     "#3 means node 3 as `gradcli eval` numbers them)")


def answer_value(text: str, where: str):
    """A hand answer as written: -4, 0.39, 1/3, pi, -pi, [1, 2], or a constant formula (2*pi,
    sigmoid(1))."""
    from .points import Point, scalar

    t = text.strip()
    if not t:
        raise InputError(f"{where}: no value given")
    if t.startswith("["):
        try:
            return Point(0).value("answer", t)
        except InputError as exc:
            raise InputError(f"{where}: {exc.message.replace('--at answer=', '')}") from None
    try:
        return np.float64(scalar("answer", t))
    except InputError:
        pass
    return _constant_formula(t, where)


def _constant_formula(t: str, where: str):
    from .parse import parse

    try:
        tape, _ = parse(t)
    except GradcliError:
        tape = None
    if tape is None or tape.variables or len(tape.outputs) != 1:
        raise InputError(f"{where}: {t!r} is not a number (write -4, 0.39, 1/3, pi, [1, 2], or "
                         "a formula of numbers such as 2*pi)")
    values = engine.forward(tape, {})
    return values[tape.outputs[0]]


def _json_answer(data, where: str):
    """An answer from a JSON file: a number, a string (as on the command line) or nested lists."""
    if isinstance(data, bool) or data is None:
        raise InputError(f"{where}: {json.dumps(data)} is not a number")
    if isinstance(data, (int, float)):
        return np.float64(data)
    if isinstance(data, str):
        return answer_value(data, where)
    if isinstance(data, list):
        try:
            value = np.asarray(data, dtype=np.float64)
        except (ValueError, TypeError):
            return answer_value(json.dumps(data, ensure_ascii=False).replace('"', ""), where)
        if value.size == 0:
            raise InputError(f"{where}: an empty list is not an answer")
        return value
    raise InputError(f"{where}: {json.dumps(data)[:40]} is not a number")


def parse_expect(tape: Tape, specs: Iterable[str]) -> list[Answer]:
    """`--expect x=-4,y=-4,z=3`: hand-computed gradients (of variables or any named node)."""
    from .points import split_items

    answers = []
    for spec in specs:
        for item in split_items(spec):
            if not item.strip():
                continue
            ref, eq, text = item.partition("=")
            where = f"--expect {item.strip()}"
            if not eq:
                raise InputError(f"{where}: missing '=': write {ref.strip() or 'x'}=-4")
            node = resolve(tape, ref, "--expect")
            answers.append(Answer(node, "grad", answer_value(text, where), text.strip(),
                                  "--expect"))
    return answers


def parse_expect_node(tape: Tape, specs: Iterable[str]) -> list[Answer]:
    """`--expect-node q=3` (a value), `--expect-node 'grad q=-4'`, `'value #2=3'`."""
    from .points import split_items

    answers = []
    for spec in specs:
        for item in split_items(spec):
            if not item.strip():
                continue
            ref, eq, text = item.partition("=")
            where = f"--expect-node {item.strip()}"
            if not eq:
                raise InputError(f"{where}: missing '=': write q=3 (a value) or 'grad q=-4'")
            words = ref.split()
            kind = "value"
            if len(words) == 2 and words[0].lower() in _KINDS:
                kind, ref = _KINDS[words[0].lower()], words[1]
            elif len(words) != 1:
                raise InputError(f"{where}: write q=3 for a value, 'grad q=-4' for a gradient")
            node = resolve(tape, ref, "--expect-node")
            answers.append(Answer(node, kind, answer_value(text, where), text.strip(),
                                  "--expect-node"))
    return answers


def read_answers(tape: Tape, path: str, text: str | None = None) -> tuple[list[Answer], dict]:
    """A file of hand answers: JSON as `gradcli eval --json` prints it (its `nodes`), JSON
    `{"value": {...}, "grad": {...}}`, or text lines `q value 3` / `x grad -4`. Returns the
    answers and the point the file carries (eval's `at`), if any."""
    if text is None:
        if not os.path.isfile(path):
            raise InputError(f"--answers {path}: no such file")
        try:
            with open(path, encoding="utf-8-sig") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--answers {path}: cannot read it ({exc})") from None
    stripped = text.lstrip()
    if path.lower().endswith(".json") or stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InputError(f"--answers {path}: not valid JSON ({exc})") from None
        return _json_answers(tape, doc, path)
    return _text_answers(tape, text, path), {}


def _json_answers(tape: Tape, doc, path: str) -> tuple[list[Answer], dict]:
    at: dict = {}
    if isinstance(doc, dict) and "nodes" in doc:
        nodes = doc["nodes"]
        at = doc.get("at") or {}
        if not isinstance(at, dict):
            raise InputError(f"--answers {path}: `at` must be an object of names and values")
    elif isinstance(doc, list):
        nodes = doc
    elif isinstance(doc, dict):
        return _mapping_answers(tape, doc, path), {}
    else:
        raise InputError(f"--answers {path}: expected a JSON object or a list of nodes")
    if not isinstance(nodes, list):
        raise InputError(f"--answers {path}: `nodes` must be a list")
    answers = []
    for k, entry in enumerate(nodes):
        where = f"--answers {path}: nodes[{k}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object such as "
                             '{"id": 2, "value": 3, "grad": -4}')
        node = _json_node(tape, entry, where)
        if entry.get("op") == "const" or (node is not None and tape.ops[node].name == "const"):
            continue  # numbers are given, not computed: nothing to grade
        for kind in ("value", "grad"):
            data = entry.get(kind)
            if data is None or (kind == "value" and tape.ops[node].name == "var"):
                continue  # an input's value is given (the point), not computed
            if kind == "grad" and isinstance(data, list) and len(tape.outputs) > 1:
                raise InputError(f"{where}: gradients for several outputs cannot be graded")
            answers.append(Answer(node, kind, _json_answer(data, f"{where}.{kind}"),
                                  json.dumps(data)[:60], f"{path}: node {k}"))
    return answers, at


def _json_node(tape: Tape, entry: dict, where: str) -> int:
    """The node a JSON entry means: by name when it has one, else by id (checked against the
    node's text, so a table exported for another formula is not graded by mistake)."""
    name = entry.get("name")
    if isinstance(name, str) and name:
        node = resolve(tape, name, where)
    elif isinstance(entry.get("id"), int) and not isinstance(entry.get("id"), bool):
        node = resolve(tape, f"#{entry['id']}", where)
    elif isinstance(entry.get("node"), str):
        node = resolve(tape, entry["node"], where)
    else:
        raise InputError(f"{where}: give the node's \"name\" or its \"id\"")
    expr = entry.get("expr")
    if isinstance(expr, str) and "…" not in expr:
        if "".join(expr.split()) != "".join(tape.expr(node, 10**9).split()):
            raise InputError(f"{where}: node #{node} is `{tape.expr(node, 40)}` in this formula, "
                             f"but `{expr[:40]}` in the answers (exported for another formula?)")
    return node


def _mapping_answers(tape: Tape, doc: dict, path: str) -> list[Answer]:
    answers = []
    aliases = {"value": "value", "values": "value", "grad": "grad", "grads": "grad",
               "gradient": "grad", "gradients": "grad"}
    unknown = [k for k in doc if k not in aliases]
    if unknown:
        raise InputError(f"--answers {path}: unknown key {unknown[0]!r}: write "
                         '{"value": {"q": 3}, "grad": {"x": -4}}')
    for key, table in doc.items():
        kind = aliases[key]
        if not isinstance(table, dict):
            raise InputError(f"--answers {path}: `{key}` must map node names to numbers")
        for ref, data in table.items():
            where = f"--answers {path}: {key}.{ref}"
            node = resolve(tape, ref, where)
            answers.append(Answer(node, kind, _json_answer(data, where), json.dumps(data)[:60],
                                  f"{path}: {key}.{ref}"))
    return answers


def _text_answers(tape: Tape, text: str, path: str) -> list[Answer]:
    """Lines `NODE value NUMBER` or `NODE grad NUMBER` (an optional `=` or `:` before the number);
    blank lines and `# comments` are skipped; `#3` (no space) is node 3."""
    answers = []
    for number, line in enumerate(text.splitlines(), 1):
        body = line.strip()
        if not body or (body.startswith("#") and not body[1:2].isdigit()):
            continue  # a blank line or a comment (`#3` is node 3, `# ...` a comment)
        body = re.split(r"\s#", body, maxsplit=1)[0].strip()  # a trailing comment
        where = f"--answers {path}:{number}"
        m = re.fullmatch(r"(\S+)\s+([A-Za-z]+)\s*[=:]?\s*(.+)", body)
        if not m or m.group(2).lower() not in _KINDS:
            raise InputError(f"{where}: expected `NODE value NUMBER` or `NODE grad NUMBER` "
                             f"(such as `q value 3` or `x grad -4`), got {body[:40]!r}")
        node = resolve(tape, m.group(1), where)
        kind = _KINDS[m.group(2).lower()]
        answers.append(Answer(node, kind, answer_value(m.group(3), where), m.group(3).strip(),
                              f"{path}:{number}"))
    if not answers:
        raise InputError(f"--answers {path}: no answers in it (lines such as `q value 3`)")
    return answers


# -- grading --------------------------------------------------------------------------------------

def grade(result, answers: Sequence[Answer], tol: Tolerance | None = None) -> list[Grade]:
    """Mark each answer right or wrong; name the likely slip behind each wrong one. A later
    answer for the same node and kind replaces an earlier one."""
    tol = tol or Tolerance()
    tape: Tape = result.tape
    if len(tape.outputs) > 1 and answers:
        raise InputError("grading hand answers needs a formula with one output; this one has "
                         f"{len(tape.outputs)}")
    latest: dict[tuple[int, str], Answer] = {}
    for a in answers:
        if a.kind == "grad" and not result.active[a.node]:
            raise InputError(f"{a.source}: `{tape.label(a.node, 40)}` (node #{a.node}) is a "
                             "constant: it has no gradient")
        latest.pop((a.node, a.kind), None)
        latest[(a.node, a.kind)] = a
    given_values = {n: a.answer for (n, k), a in latest.items() if k == "value"}
    given_grads = {n: a.answer for (n, k), a in latest.items() if k == "grad"}
    consumers = _consumers(tape) if any(k == "grad" for (_, k) in latest) else None
    grades = []
    for a in latest.values():
        if a.kind == "value":
            correct = result.values[a.node]
        else:
            correct = result.adjoints[0][a.node]
        g = Grade(a, correct, tol.close(a.answer, correct))
        if not g.ok:
            if a.kind == "value":
                g.slip = _value_slip(result, a, tol, given_values)
            else:
                g.slip = _grad_slip(result, a, tol, consumers, given_grads)
            if g.slip is None:
                g.slip = _rounded(a, correct, tol)
        grades.append(g)
    grades.sort(key=lambda g: (g.node, g.kind != "value"))
    return grades


def _rounded(a: Answer, correct, tol: Tolerance) -> Slip | None:
    """An answer written with d decimals that is the correct value rounded: suggest --places d."""
    if tol.places is not None:
        return None
    m = _DECIMALS.fullmatch(a.text.strip())
    if not m:
        return None
    d = len(m.group(1))
    if Tolerance(places=d).close(a.answer, correct):
        return Slip("rounded", f"{a.text.strip()} is the correct value rounded to {d} "
                    f"decimal{'s' if d != 1 else ''}: pass --places {d} to accept rounded answers")
    return None


def _consumers(tape: Tape) -> list[list[tuple[int, int]]]:
    """For each node, the (consumer, input slot) pairs that use it."""
    out: list[list[tuple[int, int]]] = [[] for _ in range(len(tape))]
    for k, ins in enumerate(tape.inputs):
        for slot, j in enumerate(ins):
            out[j].append((k, slot))
    return out


def symbol(tape: Tape, i: int, limit: int = 30) -> str:
    """A node as it goes in ∂f/∂·: its name, or its text in parentheses."""
    label = tape.label(i, limit)
    return label if label.isidentifier() else f"({label})"


def _fmt(v) -> str:
    from .render.text import fmt

    return fmt(v, 6)


def _vjp(result, k: int, slot: int, g):
    """Node k's contribution to the gradient of its input in `slot`, for upstream gradient g."""
    tape = result.tape
    op = tape.ops[k]
    ins = tape.inputs[k]
    values = result.values
    j = ins[slot]
    with np.errstate(all="ignore"):
        if op.vjp is not None:
            c = op.vjp(g, values[k], *[values[m] for m in ins])[slot]
        else:
            c = g * result.partials[k][slot]
        if c is not None and np.shape(c) != np.shape(values[j]):
            c = engine.unbroadcast(c, np.shape(values[j]))
    return c


def _grad_slip(result, a: Answer, tol: Tolerance, consumers, given_grads) -> Slip | None:
    """The first named slip whose wrong gradient equals the answer."""
    tape = result.tape
    i = a.node
    adj = result.adjoints[0]
    correct = adj[i]
    uses = [(k, s) for k, s in consumers[i] if result.active[k] and adj[k] is not None]
    label = f"`{tape.label(i, 30)}`"

    def fits(candidate) -> bool:
        return (candidate is not None and tol.close(a.answer, candidate)
                and not tol.close(candidate, correct))

    # 1. Right step, wrong upstream: the answer follows from the student's own wrong gradients.
    if uses and all(k in given_grads for k, _ in uses):
        wrong_up = [k for k, _ in uses if not tol.close(given_grads[k], adj[k])]
        if wrong_up:
            try:
                total = sum(_vjp(result, k, s, np.asarray(given_grads[k], dtype=np.float64)
                                 .reshape(np.shape(adj[k]))) for k, s in uses)
            except ValueError:
                total = None
            if fits(total):
                k = max(wrong_up)
                return Slip("propagated", f"follows from your gradient of `{tape.label(k, 30)}` "
                            f"(node #{k}), which is wrong: the step from it to {label} is right; "
                            "fix that one first", k)
    # 2. The sign.
    if fits(-correct):
        return Slip("sign_flipped", f"sign flipped: the gradient is {_fmt(correct)}, the "
                    "answer has the opposite sign")
    contribs = [(k, s, _vjp(result, k, s, adj[k])) for k, s in uses]
    # 3. Fan-out: one contribution instead of their sum.
    if len(contribs) >= 2:
        for k, s, c in contribs:
            if fits(c):
                parts = " + ".join(_fmt(c2) for _, _, c2 in contribs)
                return Slip("fanout_not_summed",
                            f"fan-out not summed: {label} is used {len(contribs)} times, so its "
                            f"gradient is the sum of {len(contribs)} contributions ({parts} = "
                            f"{_fmt(correct)}); the answer is only the one from "
                            f"`{tape.label(k, 30)}`", k)
    # 4. One contribution computed with a wrong rule.
    for kind in ("wrong_gate", "missing_upstream", "missing_local", "other_input", "swapped"):
        for k, s, c in contribs:
            for w, message in _wrong_contributions(result, kind, k, s, adj[k]):
                candidate = w if len(contribs) == 1 else correct - c + w
                if fits(candidate):
                    return Slip(kind, message, k)
    # 5. One contribution with its sign flipped (fan-out).
    if len(contribs) >= 2:
        for k, s, c in contribs:
            if fits(correct - 2 * c):
                return Slip("sign_flipped", f"sign flipped in the contribution from "
                            f"`{tape.label(k, 30)}` ({_fmt(c)}, not {_fmt(-c)})", k)
    return None


_GATE_NAMES = {"add": "an add", "sub": "a sub", "mul": "a mul", "div": "a div", "max": "a max",
               "min": "a min"}


def _wrong_contributions(result, kind: str, k: int, slot: int, g):
    """What a contribution of node k to its input in `slot` becomes under a given slip."""
    tape = result.tape
    op = tape.ops[k]
    ins = tape.inputs[k]
    values = result.values
    j = ins[slot]
    who, at = f"`{tape.label(j, 30)}`", f"`{tape.label(k, 30)}`"
    dj, dk = symbol(tape, j), symbol(tape, k)  # for ∂k/∂j
    ps = result.partials[k]
    if ps is not None and any(p is None for p in ps):
        # the engine skips partials of inputs that carry no gradient; a slip may need them
        with np.errstate(all="ignore"):
            ps = op.partials(values[k], *[values[m] for m in ins])
    shape = np.shape(values[j])

    def fit(w):
        with np.errstate(all="ignore"):
            w = np.asarray(w, dtype=np.float64)
            if w.shape != shape:
                try:
                    w = engine.unbroadcast(np.broadcast_to(w, np.broadcast_shapes(
                        w.shape, np.shape(values[k]))), shape)
                except ValueError:
                    return None
            return w[()] if w.ndim == 0 else w

    out = []
    other = ins[1 - slot] if len(ins) == 2 else None
    if kind == "wrong_gate" and ps is not None:
        if op.name == "mul" and other != j:
            out.append((fit(g), f"add's rule on a mul gate at {at}: passed the upstream gradient "
                        f"{_fmt(g)} through unchanged; a mul gate multiplies it by the other "
                        f"input (`{tape.label(other, 30)}` = {_fmt(values[other])})"))
        if op.name in ("add", "sub") and other is not None and other != j:
            rule = ("an add gate passes it through unchanged" if op.name == "add" else
                    "a sub gate passes it through (negated for its right input)")
            out.append((fit(g * values[other]), f"mul's rule on {_GATE_NAMES[op.name]} gate at "
                        f"{at}: multiplied the upstream gradient by the other input "
                        f"(`{tape.label(other, 30)}` = {_fmt(values[other])}); {rule}"))
        if op.name == "sub" and slot == 1:
            out.append((fit(g), f"add's rule on a sub gate at {at}: the right input of a "
                        "subtraction gets the upstream gradient negated"))
        if op.name == "div" and other is not None and other != j:
            out.append((fit(g * values[other]), f"mul's rule on a div gate at {at}: for a/b, "
                        "∂/∂a = 1/b and ∂/∂b = -a/b²"))
        if op.name in ("max", "min") and len(ins) >= 2:
            which = "largest" if op.name == "max" else "smallest"
            winners = [m for k2, m in enumerate(ins) if np.all(ps[k2] == 1)]
            named = f" (`{tape.label(winners[0], 30)}`)" if len(winners) == 1 else ""
            out.append((fit(g * (1.0 - ps[slot])), f"{op.name} routed the gradient to the wrong "
                        f"input at {at}: it goes only to the {which} input{named}, the others "
                        "get 0"))
    elif kind == "missing_upstream" and ps is not None:
        out.append((fit(ps[slot]), f"local derivative without the upstream gradient: the "
                    f"answer is ∂{dk}/∂{dj} = {_fmt(ps[slot])} alone; the chain rule multiplies "
                    f"it by the upstream gradient ∂f/∂{dk} = {_fmt(g)}"))
    elif kind == "missing_local" and ps is not None:
        out.append((fit(g), f"upstream gradient without the local derivative: the answer is "
                    f"∂f/∂{dk} = {_fmt(g)} passed through unchanged; the chain rule multiplies "
                    f"it by ∂{dk}/∂{dj} = {_fmt(ps[slot])}"))
    elif kind == "other_input" and ps is not None and other is not None and other != j:
        note = ("; a mul gate swaps its inputs: each gets the upstream gradient times the other "
                "input" if op.name == "mul" else "")
        out.append((fit(g * ps[1 - slot]), f"the local derivative for the other input of {at}: "
                    f"used ∂{dk}/∂{symbol(tape, other)} = {_fmt(ps[1 - slot])} instead of "
                    f"∂{dk}/∂{dj} = {_fmt(ps[slot])}{note}"))
    elif kind == "swapped" and op.name in ("matmul", "dot") and len(ins) == 2:
        a_, b_ = np.asarray(values[ins[0]]), np.asarray(values[ins[1]])
        gg = np.asarray(g)
        with np.errstate(all="ignore"):
            try:
                if slot == 0 and a_.ndim == 2 and b_.ndim == 2:
                    w, text = b_.T @ gg, "Bᵀ·G instead of G·Bᵀ"
                elif slot == 1 and a_.ndim == 2 and b_.ndim == 2:
                    w, text = gg @ a_.T, "G·Aᵀ instead of Aᵀ·G"
                else:
                    w = None
            except ValueError:
                w = None
        if w is not None and w.shape == shape:
            out.append((w, f"upstream and local swapped at {at}: {text} (matrix products do not "
                        "commute)"))
    return [(w, m) for w, m in out if w is not None]


_VALUE_GATES = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
    "max": lambda a, b: np.maximum(a, b), "min": lambda a, b: np.minimum(a, b),
}
_VALUE_WORDS = {"add": "a sum", "sub": "a difference", "mul": "a product", "div": "a quotient",
                "pow": "a power", "max": "a max", "min": "a min"}


def _value_slip(result, a: Answer, tol: Tolerance, given_values) -> Slip | None:
    tape = result.tape
    i = a.node
    correct = result.values[i]
    op = tape.ops[i]
    ins = tape.inputs[i]
    label = f"`{tape.label(i, 30)}`"

    def fits(candidate) -> bool:
        return (candidate is not None and tol.close(a.answer, candidate)
                and not tol.close(candidate, correct))

    # Inputs the student computed (intermediates) must be given; variables and numbers are known.
    if ins and op.value is not None and all(j in given_values or not tape.inputs[j] for j in ins):
        wrong = [j for j in ins if j in given_values
                 and not tol.close(given_values[j], result.values[j])]
        if wrong:
            xs = [given_values.get(j, result.values[j]) for j in ins]
            try:
                with np.errstate(all="ignore"):
                    candidate = op.value(*[np.asarray(x, dtype=np.float64)[()] for x in xs])
            except (ValueError, TypeError):
                candidate = None
            if fits(candidate):
                j = max(wrong)
                return Slip("propagated", f"follows from your value of `{tape.label(j, 30)}` "
                            f"(node #{j}), which is wrong: {label} is computed right from it", j)
    if fits(-correct):
        return Slip("sign_flipped", f"sign flipped: the value is {_fmt(correct)}")
    if op.name in _VALUE_GATES and len(ins) == 2:
        x, y = result.values[ins[0]], result.values[ins[1]]
        for name, fn in _VALUE_GATES.items():
            if name == op.name:
                continue
            for swap in (False, True):
                if swap and name not in ("sub", "div", "pow"):
                    continue
                with np.errstate(all="ignore"):
                    candidate = fn(y, x) if swap else fn(x, y)
                if fits(candidate):
                    return Slip("wrong_gate", f"computed {_VALUE_WORDS[name]} of the inputs "
                                f"({_fmt(candidate)}); {label} is {_VALUE_WORDS[op.name]}: "
                                f"{_fmt(correct)}")
    return None


# -- the whole check ------------------------------------------------------------------------------

def run_check(result, answers: Sequence[Answer] = (), tol: Tolerance | None = None,
              names: Sequence[str] | None = None) -> CheckReport:
    """Gradient check, kinks and grades for an evaluated result."""
    tol = tol or Tolerance()
    kinks = find_kinks(result)
    grades = grade(result, answers, tol)
    variables = gradient_check(result, tol, names, kinks)
    by_node = {g.node: g for g in grades if g.kind == "grad"}
    for v in variables:
        v.expected = by_node.get(v.node)
    suspects = suspect_rules(result) if any(v.status == "mismatch" for v in variables) else []
    return CheckReport(result, variables, grades, kinks, tol, list(result.warnings), suspects)


def check(text: str, at: Mapping[str, object] | None = None, *, wrt: Iterable[str] | None = None,
          expect: Mapping[str, object] | None = None,
          expect_node: Iterable[str] | None = None, answers: str | None = None,
          rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL, places: int | None = None,
          subgradient: str = "cs231n") -> CheckReport:
    """The Python API of `gradcli check`: `check("(x+y)*z", at={...}, expect={"x": -4})`.

    `expect` maps names (or `#3`) to hand-computed gradients; `expect_node` takes strings as
    `--expect-node` does (`q=3`, `grad q=-4`); `answers` is the path of an answers file."""
    from .api import run
    from .parse import parse
    from .points import coerce_point

    tape, warnings = parse(text)
    given: list[Answer] = []
    file_at: dict = {}
    if answers is not None:
        given, file_at = read_answers(tape, answers)
    if expect:
        given += parse_expect(tape, [f"{k}={_spec(v)}" for k, v in expect.items()])
    if expect_node:
        given += parse_expect_node(tape, list(expect_node))
    _check_tolerances(rtol, atol, places)
    point = coerce_point({**file_at, **dict(at or {})})
    result = run(tape, point, None, warnings, subgradient=subgradient)
    tol = Tolerance(rtol, atol, places)
    names = result.wrt if wrt is None else _wrt_names(tape, wrt)
    return run_check(result, given, tol, names)


def check_text(text: str, at_specs: Sequence[str], *, wrt: Iterable[str] | None = None,
               seed: int | None = None, expect: Sequence[str] = (),
               expect_node: Sequence[str] = (), answers: str | None = None,
               answers_text: str | None = None, rtol: float = DEFAULT_RTOL,
               atol: float = DEFAULT_ATOL, places: int | None = None,
               subgradient: str = "cs231n") -> CheckReport:
    """`gradcli check` with the point as `--at` strings (the CLI's entry)."""
    from .api import read_point, run
    from .parse import parse
    from .points import coerce_point

    _check_tolerances(rtol, atol, places)
    tape, warnings = parse(text)
    given: list[Answer] = []
    file_at: dict = {}
    if answers is not None:
        given, file_at = read_answers(tape, answers, answers_text)
    given += parse_expect(tape, expect)
    given += parse_expect_node(tape, expect_node)
    point = read_point(text, at_specs, seed, warnings)
    if file_at:
        try:
            extra = coerce_point({k: v for k, v in file_at.items() if k not in point})
        except GradcliError as exc:
            raise InputError(f"--answers {answers}: its `at`: {exc.message}") from None
        point.update(extra)
    result = run(tape, point, None, warnings, subgradient=subgradient)
    names = result.wrt if wrt is None else _wrt_names(tape, wrt)
    return run_check(result, given, Tolerance(rtol, atol, places), names)


def _check_tolerances(rtol: float, atol: float, places: int | None) -> None:
    if not (rtol >= 0 and math.isfinite(rtol)):
        raise InputError(f"--rtol {rtol}: give a tolerance ≥ 0, such as 1e-6")
    if not (atol >= 0 and math.isfinite(atol)):
        raise InputError(f"--atol {atol}: give a tolerance ≥ 0, such as 1e-10")
    if places is not None and not 0 <= places <= 15:
        raise InputError(f"--places {places}: give a number of decimals from 0 to 15")


def _wrt_names(tape: Tape, wrt: Iterable[str]) -> list[str]:
    from .api import _check_wrt

    return _check_wrt(tape, wrt)


def _spec(v) -> str:
    if isinstance(v, str):
        return v
    arr = np.asarray(v, dtype=np.float64)
    return repr(float(arr)) if arr.ndim == 0 else json.dumps(arr.tolist())


__all__ = ["Answer", "CheckReport", "Grade", "Kink", "Slip", "Tolerance", "VariableCheck",
           "answer_value", "check", "check_text", "find_kinks", "gradient_check", "grade",
           "parse_expect", "parse_expect_node", "read_answers", "resolve", "run_check"]
