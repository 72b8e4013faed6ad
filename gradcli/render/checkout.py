"""The Rich report of `gradcli check`: the gradient check, kinks, graded answers, the verdict.

Every piece of user text goes through `Text`, never through markup (formulas hold `[` and `]`).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..check import CheckReport, Grade
from ..words import fmt, plural
from .checkwords import (formula_message, kink_message, slip_message, suspect_message, symbol,
                         tolerance_text, variable_note)
from .names import output_name, output_names
from .table import print_read_as

RIGHT = "green"
WRONG = "red"
KINK = "yellow"
LABEL_WIDTH = 30

_STATUS = {"ok": ("agrees", RIGHT), "mismatch": ("DISAGREES", "bold " + WRONG),
           "kink": ("kink", KINK), "undefined": ("undefined", WRONG)}


def variables_table(report: CheckReport, digits: int) -> Table:
    """One row per variable: analytic, central difference, relative error, verdict."""
    several = len(report.tape.outputs) > 1
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("variable", overflow="fold", max_width=LABEL_WIDTH)
    table.add_column("analytic" + (" (per output)" if several else ""), justify="right",
                     overflow="fold")
    table.add_column("numeric", justify="right", overflow="fold")
    table.add_column("rel. error", justify="right")
    table.add_column("", overflow="fold")
    for v in report.variables:
        word, style = _STATUS[v.status]
        table.add_row(Text(v.name, style="bold"), Text(_many(v.analytic, digits, several)),
                      Text(_many(v.numeric, digits, several)), Text(fmt(v.rel_error, 2)),
                      Text(word, style=style))
    return table


def _many(v, digits: int, several: bool) -> str:
    if several:
        return "; ".join(fmt(x, digits) for x in v)
    return fmt(v, digits)


def answers_table(report: CheckReport, digits: int) -> Table:
    """One row per graded answer: what it is, the answer, the correct value, right or wrong."""
    tape = report.tape
    out = output_name(tape)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("answer for", overflow="fold", max_width=LABEL_WIDTH + 6)
    table.add_column("yours", justify="right", overflow="fold")
    table.add_column("correct", justify="right", overflow="fold")
    table.add_column("", overflow="fold")
    first = report.first_wrong
    for g in report.grades:
        what = (f"value {tape.label(g.node, LABEL_WIDTH)}" if g.kind == "value" else
                f"∂{_out(tape, g, out)}/∂{symbol(tape, g.node, LABEL_WIDTH)}")
        written = g.answer.formula is not None or (g.rounded is not None and g.slip is None)
        verdict = _verdict_word(g)
        if g is first:
            verdict.append("  ← first wrong", style="bold")
        if g.slip is not None:
            verdict.append(f"  {_short_slip(g)}", style=WRONG)
        yours = g.answer.text.strip() if written else fmt(g.answer.answer, digits)
        table.add_row(str(g.node), Text(what), Text(yours),
                      Text(fmt(g.correct, digits)), verdict)
    return table


def _short_slip(g: Grade) -> str:
    s = g.slip
    if s.kind == "fanout_not_summed" and s.rule == "path":
        return "a term missing"
    return {"sign_flipped": "sign flipped", "fanout_not_summed": "fan-out not summed",
            "missing_upstream": "upstream gradient missing",
            "missing_local": "local derivative missing", "wrong_gate": "another gate's rule",
            "wrong_rule": "another rule", "other_input": "other input's derivative",
            "swapped": "upstream and local swapped",
            "propagated": "follows from an earlier mistake", "rounded": "rounded",
            "wrong_shape": "wrong shape", "transposed": "transposed"}.get(s.kind, s.kind)


def _verdict_word(g: Grade) -> Text:
    if not g.ok:
        return Text("wrong", style="bold " + WRONG)
    if g.rounded is not None:
        return Text(f"right to {g.rounded} {plural(g.rounded, 'decimal')}", style=RIGHT)
    if g.formula is not None:
        return Text(f"equal at all {g.formula.points_checked} points", style=RIGHT)
    return Text("right", style=RIGHT)


def render_check(console: Console, report: CheckReport, digits: int = 6) -> None:
    """Print the echo, the gradient check, the kinks, the graded answers and the verdict."""
    tape = report.tape
    print_read_as(console, tape)
    console.print()
    if report.variables:
        console.print(Text("gradient check: backprop against central differences", style="dim"))
        console.print(variables_table(report, digits))
        for v in report.variables:
            note = variable_note(v, tape)
            if note:
                line = Text(f"  {v.name}: ", style="bold")
                line.append(note)
                console.print(line)
    for x in report.suspects:
        line = Text("  suspect: ", style="bold " + WRONG)
        line.append(suspect_message(x, tape))
        console.print(line)
    for k in report.kinks:
        line = Text("  kink: ", style=KINK)
        line.append(f"node #{k.node} `{tape.label(k.node, 40)}`: {kink_message(k, tape)}")
        console.print(line)
    if report.grades:
        console.print()
        console.print(Text(f"your answers ({tolerance_text(report.tolerance)})", style="dim"))
        console.print(answers_table(report, digits))
        for g in report.grades:
            if g.formula is not None:
                line = Text(f"  #{g.node} {_what(report, g)}: ", style="bold")
                line.append(formula_message(g, tape, _out(tape, g)))
                console.print(line)
            if not g.ok and g.slip is not None:
                line = Text(f"  #{g.node} {_what(report, g)}: ", style="bold")
                line.append(slip_message(g.slip, tape, _out(tape, g)))
                console.print(line)
        first = report.first_wrong
        if first is not None:
            if first.kind == "value":
                why = ("the first wrong value in forward order: the values after it may only "
                       "inherit its mistake; fix it first")
            else:
                why = ("going backward from the output, the first wrong gradient: the ones "
                       "after it may only inherit its mistake; fix it first")
            line = Text("first wrong: ", style="bold " + WRONG)
            line.append(f"{_what(report, first)} (node #{first.node}) is "
                        f"{fmt(first.correct, digits)}, not {fmt(first.answer.answer, digits)}; "
                        f"{why}")
            console.print(line)
    console.print()
    console.print(verdict(report))


def _what(report: CheckReport, g: Grade) -> str:
    tape = report.tape
    if g.kind == "value":
        return f"value of {tape.label(g.node, LABEL_WIDTH)}"
    return f"∂{_out(tape, g)}/∂{symbol(tape, g.node, LABEL_WIDTH)}"


def _out(tape, g: Grade, default: str | None = None) -> str:
    """The output a gradient answer is for: its name (f2 for `--expect f2.x=...`), the output's
    own name, or (f1, f2) for a Jacobian column."""
    if g.answer.output is not None:
        return output_names(tape)[g.answer.output]
    if len(tape.outputs) > 1:
        return "(" + ", ".join(output_names(tape)) + ")"
    return default or output_name(tape)


def verdict(report: CheckReport) -> Text:
    """The last line: passed or failed. With answers, the headline is the grading; gradcli's own
    check (its gradient against central differences) is said apart, so a wrong answer never
    reads as "check failed: the gradient agrees"."""
    vs = report.variables
    bad_vars = [v for v in vs if not v.ok]
    kinks = [v.name for v in vs if v.status == "kink"]
    wrong = [g for g in report.grades if not g.ok]
    rtol = report.tolerance.rtol
    if bad_vars:
        own = (f"gradcli's own gradient disagrees with central differences for {len(bad_vars)} "
               f"of {len(vs)} {plural(len(vs), 'variable')}")
    elif vs and kinks:
        own = ("gradcli's own gradient agrees with central differences where a derivative "
               f"exists; {', '.join(kinks[:5])}{' ...' if len(kinks) > 5 else ''} "
               f"{'meets' if len(kinks) == 1 else 'meet'} a kink (no derivative there)")
    elif vs:
        own = f"gradcli's own gradient agrees with central differences (rtol {rtol:g})"
    else:
        own = ""
    text = Text("check passed: " if report.ok else "check failed: ",
                style=("bold " + RIGHT) if report.ok else ("bold " + WRONG))
    if not report.grades:
        if not vs:
            text.append("nothing to check (the formula has no variables)")
        else:
            text.append(own.replace("gradcli's own gradient", "the gradient"))
        return text
    n = len(report.grades)
    if wrong:
        text.append(f"{len(wrong)} of {n} {plural(n, 'answer')} wrong")
    else:
        rounded = [g.rounded for g in report.grades if g.rounded is not None]
        text.append(f"all {n} {plural(n, 'answer')} right" if n != 1 else "the answer is right")
        if rounded:
            d = min(rounded)
            text.append(f", to {d} {plural(d, 'decimal')} as written" if len(rounded) == n else
                        f" ({len(rounded)} of them to {d} {plural(d, 'decimal')}, as written)")
    if own:
        text.append("\n")
        text.append("  gradcli's own check: " + own.replace("gradcli's own gradient",
                                                            "its gradient"),
                    style="bold " + WRONG if bad_vars else "dim")
    return text
