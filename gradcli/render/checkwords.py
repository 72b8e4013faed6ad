"""The sentences of `gradcli check`'s report, built from its data (no rich: the text report and
`check --json` both use them): slips, suspect rules, kinks, per-variable notes, the tolerance.

The output is called what `render.names` calls it everywhere (`L` in `...; L = sum(v * h)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ops import OPS
from ..words import fmt, plural
from .names import output_name

if TYPE_CHECKING:  # pragma: no cover
    from ..check import Kink, Slip, Suspect, Tolerance, VariableCheck
    from ..tape import Tape

LABEL = 30  # how much of a node's text a sentence quotes


def symbol(tape: "Tape", i: int, limit: int = LABEL) -> str:
    """A node as it goes in ∂f/∂·: its name, or its text in parentheses."""
    label = tape.label(i, limit)
    return label if label.isidentifier() else f"({label})"


def _quoted(tape: "Tape", i: int) -> str:
    return f"`{tape.label(i, LABEL)}`"


def _num(v) -> str:
    return fmt(v, 6)


def article(name: str) -> str:
    """An op's name with its article: `an add`, `a mul`."""
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def noun(name: str) -> str:
    """What an op computes, for people: `a sum`, `a quotient` (the Op's `noun`)."""
    return OPS[name].noun or article(name)


def tolerance_text(tol: "Tolerance") -> str:
    """How answers are compared: `rtol 1e-06`, or `answers rounded to 2 decimals`."""
    if tol.places is not None:
        return f"answers rounded to {tol.places} {plural(tol.places, 'decimal')}"
    return f"rtol {tol.rtol:g}"


def variable_note(v: "VariableCheck", tape: "Tape") -> str:
    """Why a variable's check did not simply agree ('' when it did)."""
    where = "" if v.size == 1 else f" ({v.count} of {v.size} elements)"
    if v.status == "mismatch":
        return f"the analytic gradient and the central difference disagree{where}"
    if v.status == "undefined":
        return (f"the function is not finite at this point or around it{where}: no numeric "
                "derivative to compare with")
    if v.status == "kink":
        if v.kinks:
            names = ", ".join(_quoted(tape, k) for k in v.kinks[:3])
            return (f"not differentiable here{where}: {names} "
                    f"{'sits' if len(v.kinks) == 1 else 'sit'} exactly at a kink; the "
                    "analytic value is gradcli's convention (a subgradient)")
        what = "jumps" if v.jump else "has a kink"
        return (f"not differentiable here{where}: the function {what} at (or right next to) "
                "this point: the one-sided differences disagree however small the step, so "
                "there is no single derivative to compare with")
    return ""


def kink_message(k: "Kink", tape: "Tape") -> str:
    """A node at a kink: the op's rule there and the convention the analytic value follows."""
    op = tape.ops[k.node]
    rule = op.kink_rule or op.note
    return (f"{k.op} at a kink: {rule}; the analytic gradient follows the {k.convention} "
            "convention (--subgradient)")


def suspect_message(x: "Suspect", tape: "Tape") -> str:
    """A node whose own rule disagrees with a difference of its value function."""
    i = x.node
    op = tape.ops[i]
    j = tape.inputs[i][x.slot]
    head = f"node #{i} `{tape.expr(i, 40)}`: {op.name}'s "
    if op.vjp is None:
        return (f"{head}rule gives ∂/∂{symbol(tape, j)} = {_num(x.analytic)}, but a central "
                f"difference of {op.name} itself gives {_num(x.numeric)} (the rule in "
                "gradcli/ops.py looks wrong)")
    return (f"{head}vjp for input {symbol(tape, j)} gives ⟨vjp(g), t⟩ = {_num(x.analytic)}, but "
            f"a directional difference of {op.name} itself gives {_num(x.numeric)} (the rule in "
            "gradcli/ops.py looks wrong)")


def slip_message(slip: "Slip", tape: "Tape", out: str | None = None) -> str:
    """The likely slip in words; `out` is the output's name (from `render.names` by default)."""
    out = out or output_name(tape)
    n = slip.numbers
    kind, rule = slip.kind, slip.rule
    i, k = slip.node, slip.via
    label = _quoted(tape, i)
    if kind == "propagated" and rule == "value":
        return (f"follows from your value of {_quoted(tape, k)} (node #{k}), which is wrong: "
                f"{label} is computed right from it")
    if kind == "propagated":
        return (f"follows from your gradient of {_quoted(tape, k)} (node #{k}), which is wrong: "
                f"the step from it to {label} is right; fix that one first")
    if kind == "sign_flipped" and rule == "value":
        return f"sign flipped: the value is {_num(n['correct'])}"
    if kind == "sign_flipped" and rule == "contribution":
        c = n["contribution"]
        return (f"sign flipped in the contribution from {_quoted(tape, k)} ({_num(c)}, "
                f"not {_num(-c)})")
    if kind == "sign_flipped":
        return (f"sign flipped: the gradient is {_num(n['correct'])}, the answer has the "
                "opposite sign")
    if kind == "rounded":
        d = n["places"]
        return (f"{n['written']} is the correct value rounded to {d} {plural(d, 'decimal')}: "
                f"pass --places {d} to accept rounded answers")
    if kind == "fanout_not_summed":
        parts = n["contributions"]
        return (f"fan-out not summed: {label} is used {len(parts)} times, so its gradient is the "
                f"sum of {len(parts)} contributions ({' + '.join(_num(c) for c in parts)} = "
                f"{_num(n['correct'])}); the answer is only the one from {_quoted(tape, k)}")
    if kind == "wrong_gate" and k is None:  # a value: another gate's operation
        return (f"computed {noun(rule)} of the inputs ({_num(n['candidate'])}); {label} is "
                f"{tape.ops[i].noun or article(tape.ops[i].name)}: {_num(n['correct'])}")
    at = _quoted(tape, k) if k is not None else ""
    dk, dj = (symbol(tape, k) if k is not None else "f"), symbol(tape, i)
    if kind == "wrong_gate":
        return _gate_message(slip, tape, at)
    if kind == "missing_upstream":
        return (f"local derivative without the upstream gradient: the answer is "
                f"∂{dk}/∂{dj} = {_num(n['local'])} alone; the chain rule multiplies it by the "
                f"upstream gradient ∂{out}/∂{dk} = {_num(n['upstream'])}")
    if kind == "missing_local":
        return (f"upstream gradient without the local derivative: the answer is "
                f"∂{out}/∂{dk} = {_num(n['upstream'])} passed through unchanged; the chain rule "
                f"multiplies it by ∂{dk}/∂{dj} = {_num(n['local'])}")
    if kind == "other_input":
        note = ("; a mul gate swaps its inputs: each gets the upstream gradient times the other "
                "input" if tape.ops[k].name == "mul" else "")
        return (f"the local derivative for the other input of {at}: used "
                f"∂{dk}/∂{symbol(tape, slip.other)} = {_num(n['other_local'])} instead of "
                f"∂{dk}/∂{dj} = {_num(n['local'])}{note}")
    if kind == "swapped":
        text = "Bᵀ·G instead of G·Bᵀ" if rule == "left" else "G·Aᵀ instead of Aᵀ·G"
        return f"upstream and local swapped at {at}: {text} (matrix products do not commute)"
    return kind.replace("_", " ")


def _gate_message(slip: "Slip", tape: "Tape", at: str) -> str:
    """Another gate's rule for a gradient: which rule was used, and what the gate's own does."""
    rule, n = slip.rule, slip.numbers
    gate = tape.ops[slip.via].name
    if rule == "add_on_mul":
        return (f"add's rule on a mul gate at {at}: passed the upstream gradient "
                f"{_num(n['upstream'])} through unchanged; a mul gate multiplies it by the other "
                f"input ({_quoted(tape, slip.other)} = {_num(n['other_value'])})")
    if rule == "mul_on_add":
        own = ("an add gate passes it through unchanged" if gate == "add" else
               "a sub gate passes it through (negated for its right input)")
        return (f"mul's rule on {article(gate)} gate at {at}: multiplied the upstream gradient "
                f"by the other input ({_quoted(tape, slip.other)} = {_num(n['other_value'])}); "
                f"{own}")
    if rule == "add_on_sub":
        return (f"add's rule on a sub gate at {at}: the right input of a subtraction gets the "
                "upstream gradient negated")
    if rule == "mul_on_div":
        return f"mul's rule on a div gate at {at}: for a/b, ∂/∂a = 1/b and ∂/∂b = -a/b²"
    which = "largest" if gate == "max" else "smallest"
    named = f" ({_quoted(tape, slip.other)})" if slip.other is not None else ""
    return (f"{gate} routed the gradient to the wrong input at {at}: it goes only to the "
            f"{which} input{named}, the others get 0")
