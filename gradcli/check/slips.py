"""Grading hand answers and naming the likely slip behind a wrong one.

Hand-computed node values and gradients are compared with the correct ones. For a wrong answer,
the slips a student makes are tried in turn (the answer follows from an earlier wrong answer, a
flipped sign, fan-out not summed, another gate's rule, a local derivative without the upstream
gradient, ...): the first whose wrong result equals the answer is the one named. A slip is data
(its kind, the nodes, the numbers); `gradcli.render.checkwords.slip_message` words it.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .. import engine
from ..errors import InputError
from ..ops import OPS
from ..tape import Tape
from .paths import path_slip
from .report import EPS, Answer, Grade, PathSearch, Slip, Tolerance

_DECIMALS = re.compile(r"[+-]?\d*\.(\d+)")


def grade(result, answers: Sequence[Answer], tol: Tolerance | None = None,
          exact=None) -> list[Grade]:
    """Mark each answer right or wrong; name the likely slip behind each wrong one. A later
    answer for the same node, kind and output replaces an earlier one. `exact` is the same
    result computed with fractions (--exact): its values are the correct ones shown."""
    tol = tol or Tolerance()
    tape: Tape = result.tape
    latest: dict[tuple[int, str, int | None], Answer] = {}
    for a in answers:
        if a.kind == "grad" and not result.active[a.node]:
            raise InputError(f"{a.source}: `{tape.label(a.node, 40)}` (node #{a.node}) is a "
                             "constant: it has no gradient")
        latest.pop((a.node, a.kind, a.output), None)
        latest[(a.node, a.kind, a.output)] = a
    given_values = {n: a.answer for (n, k, _), a in latest.items() if k == "value"}
    given_grads = {n: a.answer for (n, k, o), a in latest.items()
                   if k == "grad" and a.formula is None and o in (None, 0)}
    consumers = _consumers(tape) if any(k == "grad" for (_, k, _) in latest) else None
    grades = []
    for a in latest.values():
        if a.formula is not None:
            continue  # graded at many points: check.formulas
        grades.append(grade_one(result, a, tol, consumers, given_values, given_grads, exact))
    grades.sort(key=lambda g: (g.node, g.kind != "value", g.answer.output or 0))
    return grades


def correct_for(result, a: Answer, exact=None):
    """The correct value for an answer: the node's value, its gradient (of output `a.output`),
    or, for a formula with several outputs and no output named, the Jacobian column."""
    src = exact if exact is not None else result
    if a.kind == "value":
        return src.values[a.node]
    if a.output is not None or len(result.tape.outputs) == 1:
        return src.adjoints[a.output or 0][a.node]
    with np.errstate(all="ignore"):
        return np.stack([np.asarray(adj[a.node], dtype=np.float64) for adj in result.adjoints])


def grade_one(result, a: Answer, tol: Tolerance, consumers=None, given_values=None,
              given_grads=None, exact=None) -> Grade:
    """One answer graded, with its slip when it is wrong."""
    correct = correct_for(result, a, exact)
    g = Grade(a, correct, tol.close(a.answer, correct))
    if g.ok:
        return g
    if np.shape(a.answer) != np.shape(correct):
        g.slip = shape_slip(result, a, correct, tol)
        return g
    if tol.rounding and tol.places is None:
        d = _written_places(a, correct, tol)
        if d is not None:
            g.ok, g.rounded = True, d
            return g
    several = len(result.tape.outputs) > 1 and a.output is None
    if a.kind == "value":
        g.slip = _value_slip(result, a, tol, given_values or {})
    elif not several:
        if consumers is None:
            consumers = _consumers(result.tape)
        g.slip, g.search = _grad_slip(result, a, tol, consumers, given_grads or {},
                                      a.output or 0)
    if g.slip is None:
        g.slip = _rounded(a, correct, tol)
    return g


def shape_slip(result, a: Answer, correct, tol: Tolerance) -> Slip:
    """An answer of the wrong shape: the transpose of the right one, or simply another shape."""
    ans, want = np.shape(a.answer), np.shape(correct)
    numbers = {"yours": ans, "shape": want, "several": len(result.tape.outputs) > 1
               and a.output is None and a.kind == "grad"}
    if len(ans) == 2 and ans[::-1] == want:
        transposed = np.transpose(np.asarray(a.answer, dtype=np.float64))
        if tol.close(transposed, correct) or (tol.rounding and _written_places(
                Answer(a.node, a.kind, transposed, "", ""), correct, tol, a.text, True)):
            return Slip("transposed", a.node, numbers=numbers)
    return Slip("wrong_shape", a.node, numbers=numbers)


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _written_places(a: Answer, correct, tol: Tolerance, text: str | None = None,
                    transposed: bool = False) -> int | None:
    """When the answer is the correct value rounded to the decimals written (0.39 for
    0.393224; each element of a tensor to its own), how many decimals (the fewest written);
    None when it is not, or when nothing was rounded. Numbers written without a decimal point,
    and answers that are formulas of numbers (pi/4), must be right to rtol."""
    tokens = _NUMBER.findall(text if text is not None else a.text)
    ans = np.asarray(a.answer, dtype=np.float64)
    cor = np.asarray(correct, dtype=np.float64)
    if len(tokens) != ans.size or ans.shape != cor.shape:
        return None
    places = np.array([len(t.split(".")[1].split("e")[0].split("E")[0]) if "." in t and
                       "e" not in t.lower() else -1 for t in tokens], dtype=float)
    places = places.reshape(ans.shape[::-1]).T if transposed else places.reshape(ans.shape)
    with np.errstate(all="ignore"):
        diff = np.abs(ans - cor)
        limit_r = tol.rtol * np.maximum(np.abs(ans), np.abs(cor)) + tol.atol
        limit_d = np.where(places >= 0, 0.5 * 10.0 ** -np.maximum(places, 0) * (1 + 1e-9)
                           + 4 * EPS * np.abs(cor), -1.0)
        exact_ok = diff <= limit_r
        rounded_ok = diff <= limit_d
        if not np.all(np.isfinite(ans) & np.isfinite(cor) & (exact_ok | rounded_ok)):
            return None
        used = rounded_ok & ~exact_ok
    if not np.any(used):
        return None
    return int(np.min(places[used]))


def _rounded(a: Answer, correct, tol: Tolerance) -> Slip | None:
    """An answer that is the correct value rounded to the decimals written, when --rtol (or
    --places) turned the default acceptance of rounded answers off: say so."""
    d = _written_places(a, correct, tol)
    if d is None:
        return None
    return Slip("rounded", a.node, numbers={"written": a.text.strip(), "places": d})


def _consumers(tape: Tape) -> list[list[tuple[int, int]]]:
    """For each node, the (consumer, input slot) pairs that use it."""
    out: list[list[tuple[int, int]]] = [[] for _ in range(len(tape))]
    for k, ins in enumerate(tape.inputs):
        for slot, j in enumerate(ins):
            out[j].append((k, slot))
    return out


def _vjp(result, k: int, slot: int, g):
    """Node k's contribution to the gradient of its input in `slot`, for upstream gradient g."""
    with np.errstate(all="ignore"):
        return engine.contribution(result.tape, result.values, result.partials, k, slot, g)


# -- gradients ------------------------------------------------------------------------------------

def _grad_slip(result, a: Answer, tol: Tolerance, consumers, given_grads,
               out: int = 0) -> tuple[Slip | None, PathSearch | None]:
    """The first named slip whose wrong gradient equals the answer, one step back, else on the
    paths from the output (with how far that search went)."""
    slip = _one_step(result, a, tol, consumers, given_grads if out == 0 else {}, out)
    if slip is not None:
        return slip, None
    return path_slip(result, a, tol, given_grads if out == 0 else {}, out)


def _one_step(result, a: Answer, tol: Tolerance, consumers, given_grads,
              out: int = 0) -> Slip | None:
    """The slips at the answered node's own uses (its consumers' rules)."""
    i = a.node
    adj = result.adjoints[out]
    correct = adj[i]
    uses = [(k, s) for k, s in consumers[i] if result.active[k] and adj[k] is not None]

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
                return Slip("propagated", i, max(wrong_up), "grad")
    # 2. The sign.
    if fits(-correct):
        return Slip("sign_flipped", i, rule="grad", numbers={"correct": correct})
    contribs = [(k, s, _vjp(result, k, s, adj[k])) for k, s in uses]
    # 3. Fan-out: one contribution instead of their sum.
    if len(contribs) >= 2:
        for k, s, c in contribs:
            if fits(c):
                return Slip("fanout_not_summed", i, k, numbers={
                    "contributions": [c2 for _, _, c2 in contribs], "correct": correct,
                    "taken": c})
    # 4. One contribution computed with a wrong rule.
    for kind in ("wrong_gate", "missing_upstream", "missing_local", "other_input", "swapped"):
        for k, s, c in contribs:
            for w, slip in _wrong_contributions(result, kind, i, k, s, adj[k]):
                candidate = w if len(contribs) == 1 else correct - c + w
                if fits(candidate):
                    return slip
    # 5. One contribution with its sign flipped (fan-out).
    if len(contribs) >= 2:
        for k, s, c in contribs:
            if fits(correct - 2 * c):
                return Slip("sign_flipped", i, k, "contribution", numbers={"contribution": c})
    return None


def _wrong_contributions(result, kind: str, i: int, k: int, slot: int, g):
    """What the contribution of node k to its input in `slot` (node i) becomes under a slip of
    this kind: (wrong contribution, the slip) pairs."""
    tape = result.tape
    op = tape.ops[k]
    ins = tape.inputs[k]
    values = result.values
    j = ins[slot]
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

    def slip(rule: str = "", other: int | None = None, **numbers) -> Slip:
        return Slip(kind, i, k, rule, other, numbers)

    out = []
    other = ins[1 - slot] if len(ins) == 2 else None
    if kind == "wrong_gate" and ps is not None:
        if op.name == "mul" and other != j:
            out.append((fit(g), slip("add_on_mul", other, upstream=g,
                                     other_value=values[other])))
        if op.name in ("add", "sub") and other is not None and other != j:
            out.append((fit(g * values[other]), slip("mul_on_add", other,
                                                     other_value=values[other])))
        if op.name == "sub" and slot == 1:
            out.append((fit(g), slip("add_on_sub")))
        if op.name == "div" and other is not None and other != j:
            out.append((fit(g * values[other]), slip("mul_on_div")))
        if op.name in ("max", "min") and len(ins) >= 2:
            winners = [m for k2, m in enumerate(ins) if np.all(ps[k2] == 1)]
            out.append((fit(g * (1.0 - ps[slot])),
                        slip("route", winners[0] if len(winners) == 1 else None)))
    elif kind == "missing_upstream" and ps is not None:
        out.append((fit(ps[slot]), slip(local=ps[slot], upstream=g)))
    elif kind == "missing_local" and ps is not None:
        out.append((fit(g), slip(local=ps[slot], upstream=g)))
    elif kind == "other_input" and ps is not None and other is not None and other != j:
        out.append((fit(g * ps[1 - slot]), slip("", other, local=ps[slot],
                                                other_local=ps[1 - slot])))
    elif kind == "swapped" and op.name in ("matmul", "dot") and len(ins) == 2:
        a_, b_ = np.asarray(values[ins[0]]), np.asarray(values[ins[1]])
        gg = np.asarray(g)
        w = None
        with np.errstate(all="ignore"):
            try:
                if slot == 0 and a_.ndim == 2 and b_.ndim == 2:
                    w = b_.T @ gg  # Bᵀ·G instead of G·Bᵀ
                elif slot == 1 and a_.ndim == 2 and b_.ndim == 2:
                    w = gg @ a_.T  # G·Aᵀ instead of Aᵀ·G
            except ValueError:
                w = None
        if w is not None and w.shape == shape:
            out.append((w, slip("left" if slot == 0 else "right")))
    return [(w, s) for w, s in out if w is not None]


# -- values ---------------------------------------------------------------------------------------

def _value_slip(result, a: Answer, tol: Tolerance, given_values) -> Slip | None:
    tape = result.tape
    i = a.node
    correct = result.values[i]
    op = tape.ops[i]
    ins = tape.inputs[i]

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
                return Slip("propagated", i, max(wrong), "value")
    if fits(-correct):
        return Slip("sign_flipped", i, rule="value", numbers={"correct": correct})
    if op.noun and len(ins) == 2:
        # Another two-input gate's value: every op that has a noun ("a sum", "a max"), inputs
        # in order, then swapped (the same value again for a commutative op).
        x, y = result.values[ins[0]], result.values[ins[1]]
        for gate in OPS.values():
            if gate.name == op.name or not gate.noun or gate.value is None:
                continue
            for args in ((x, y), (y, x)):
                try:
                    with np.errstate(all="ignore"):
                        candidate = gate.value(*args)
                except Exception:  # noqa: BLE001 - a gate that cannot take these inputs
                    continue
                if fits(candidate):
                    return Slip("wrong_gate", i, rule=gate.name,
                                numbers={"candidate": candidate, "correct": correct})
    return None

