"""The sentences of `gradcli check`'s report, built from its data (no rich: the text report and
`check --json` both use them): slips, suspect rules, kinks, per-variable notes, the tolerance.

The output is called what `render.names` calls it everywhere (`L` in `...; L = sum(v * h)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ops import OPS
from ..words import fmt, plural
from .names import output_name, output_names

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
    exact = "exact fractions, else " if tol.exact else ""
    if tol.rounding:
        return f"{exact}rtol {tol.rtol:g}, or right to the decimals written"
    return f"{exact}rtol {tol.rtol:g}"


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
        steps = "steps" if rule == "path" else "step"
        return (f"follows from your ∂{out}/∂{symbol(tape, k)} (node #{k}), which is wrong: "
                f"the {steps} from it to {label} {'are' if rule == 'path' else 'is'} right; "
                "fix that one first")
    if kind in ("wrong_shape", "transposed"):
        return _shape_message(slip, tape, out)
    if rule in ("path", "local") or kind == "wrong_rule":
        return _path_message(slip, tape, out)
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
                f"pass --places {d} (or leave out --rtol) to accept rounded answers")
    if kind == "fanout_not_summed" and n.get("formula"):
        parts = n["contributions"]
        others = [f"{_num(c)}" for c in parts if c is not n.get("taken")]
        return (f"a missing term (product rule / chain rule for a variable used {len(parts)} "
                f"times): your formula is only the term through {_quoted(tape, k)}; the "
                f"other {plural(len(parts) - 1, 'term')} ({', '.join(others)} here) "
                f"{'is' if len(parts) == 2 else 'are'} missing")
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
    if kind == "missing_local" and n.get("formula"):
        return (f"a missing chain factor: your formula is ∂{out}/∂{dk} "
                f"({_num(n['upstream'])} here) alone; the chain rule multiplies it by the inner "
                f"derivative ∂{dk}/∂{dj} ({_num(n['local'])} here)")
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
        a_, b_ = (symbol(tape, j) for j in tape.inputs[k][:2])
        g_ = f"∂{out}/∂{dk}"
        text = (f"{b_}ᵀ·{g_} instead of {g_}·{b_}ᵀ" if rule == "left" else
                f"{g_}·{a_}ᵀ instead of {a_}ᵀ·{g_}")
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


#: The other rules of check/paths.RULES, as a student would write them.
RULE_WORDS = {
    "tanh_no_square": "1 - tanh (the square left out)",
    "tanh_plus": "1 + tanh² (a plus for the minus)",
    "sigmoid_one_minus": "1 - σ (the factor σ left out)",
    "sigmoid_itself": "σ (the factor 1 - σ left out)",
    "relu_value": "relu's output itself (instead of its 0/1 mask)",
    "exp_input": "the input (instead of exp itself)",
    "log_itself": "log itself (instead of 1/x)",
    "sqrt_half": "1/√x (the ½ left out)",
    "pow_no_lower": "n·xⁿ (the exponent not lowered by one)",
    "pow_no_factor": "xⁿ⁻¹ (the factor n left out)",
    "sin_itself": "sin itself (instead of cos)",
    "cos_itself": "cos itself (instead of -sin)",
    "softplus_itself": "softplus itself (instead of σ)",
}

#: What a student calls an op's local derivative, where the rule table's text needs a gloss.
LOCAL_WORDS = {
    "relu": "its mask (1 where its input > 0, else 0)",
    "tanh": "1 - tanh²",
    "sigmoid": "σ·(1 - σ)",
    "abs": "the sign of its input",
}


def local_rule(tape: "Tape", k: int, slot: int) -> str:
    """Node k's local derivative for its input in `slot`, in words: `its mask (...)`, or the
    right-hand side of the op's rule (`cos(a)`, `b·a^(b-1)`)."""
    op = tape.ops[k]
    if op.name in LOCAL_WORDS:
        return LOCAL_WORDS[op.name]
    parts = [p.partition("=")[2].strip() for p in op.rule.split(", ") if "=" in p]
    if len(parts) == len(tape.inputs[k]):
        return parts[slot]
    return parts[0] if parts else op.name


def _path_message(slip: "Slip", tape: "Tape", out: str) -> str:
    """A slip found several steps back: which node, which rule, and the numbers."""
    n = slip.numbers
    i, k, j = slip.node, slip.via, slip.other
    op = tape.ops[k].name
    at = f"the {op} {_quoted(tape, k)} (node #{k})"
    target = _quoted(tape, i)
    dk, dj = symbol(tape, k), symbol(tape, j)
    if slip.kind == "missing_local" and n.get("formula"):
        return (f"a missing chain factor at {at}: the chain rule multiplies by its inner "
                f"derivative ∂{dk}/∂{dj}, {local_rule(tape, k, _slot(tape, k, j))}, which your "
                "formula leaves out")
    if slip.kind == "missing_local":
        local = "" if n.get("local") is None else f" = {_num(n['local'])}"
        return (f"the local derivative of {at} is missing: on the way from {out} to {target}, "
                f"∂{out}/∂{dk} = {_num(n['upstream'])} must be multiplied by {op}'s local "
                f"derivative ∂{dk}/∂{dj}, {local_rule(tape, k, _slot(tape, k, j))}{local}")
    if slip.kind == "wrong_rule":
        return (f"another rule for {at}: the answer uses {RULE_WORDS.get(slip.rule, slip.rule)} "
                f"= {_num(n['used'])} for ∂{dk}/∂{dj}; {op}'s local derivative is "
                f"{local_rule(tape, k, _slot(tape, k, j))} = {_num(n['local'])}")
    if slip.kind == "sign_flipped":
        return (f"sign flipped at {at}: its contribution to ∂{out}/∂{dj} is "
                f"{_num(n['contribution'])}, the answer carries it down to {target} with the "
                "opposite sign")
    # fanout_not_summed, several steps back: one use of j left out of its sum
    product = " (a product-rule term)" if op == "mul" else ""
    return (f"a missing term{product}: {_quoted(tape, j)} is used more than once on the way "
            f"from {out} to {target}, so ∂{out}/∂{dj} sums one term per use; the term through "
            f"{_quoted(tape, k)} (node #{k}, {_num(n['term'])}) is left out")


def _slot(tape: "Tape", k: int, j: int) -> int:
    ins = tape.inputs[k]
    return ins.index(j) if j in ins else 0


def shape_text(shape) -> str:
    """2×3, or `a scalar`."""
    return "×".join(str(d) for d in shape) if len(shape) else "a scalar"


def _shape_message(slip: "Slip", tape: "Tape", out: str) -> str:
    n = slip.numbers
    i = slip.node
    yours, want = shape_text(n["yours"]), shape_text(n["shape"])
    name = symbol(tape, i)
    if n.get("several"):
        what = (f"the Jacobian column ∂({', '.join(output_names(tape))})/∂{name} has one entry "
                f"per output: {want}")
    else:
        what = f"∂{out}/∂{name} has {name}'s shape {want}"
    head = f"your answer is {yours}; {what}"
    if slip.kind == "transposed":
        return f"{head}, and your answer is its transpose"
    return head


def _point_text(at: dict) -> str:
    return ", ".join(f"{k} = {fmt(v, 6)}" for k, v in at.items())


def formula_message(g, tape: "Tape", out: str | None = None) -> str:
    """How a formula answer fared at the points: equal at all, or the first point that differs."""
    out = out or output_name(tape)
    fc = g.formula
    how = "exactly, " if fc.exact else ""
    skipped = (f"; {fc.skipped} {plural(fc.skipped, 'point')} drawn where either is not finite "
               "(a pole) skipped" if fc.skipped else "")
    seed = f"--seed {fc.seed}" if fc.seed is not None else ""
    if fc.differs_at is None and fc.points_checked:
        return (f"equal to ∂{out}/∂{symbol(tape, g.node)} at all {fc.points_checked} points "
                f"({how}--at and {fc.points_checked - 1} drawn around it, {seed}{skipped})")
    if fc.differs_at is None:
        return f"no point where both your formula and the gradient are finite{skipped}"
    d = fc.differs_at
    return (f"your formula differs from ∂{out}/∂{symbol(tape, g.node)} at "
            f"{_point_text(d['at'])}: yours {_num(d['yours'])}, correct {_num(d['correct'])} "
            f"({how}{fc.points_checked} {plural(fc.points_checked, 'point')} compared, {seed}"
            f"{skipped})")
