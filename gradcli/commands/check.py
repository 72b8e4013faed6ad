"""`gradcli check`: the gradient against central differences, and grading hand answers."""

from typing import Annotated, List, Optional

import typer

from ..errors import InputError
from ..session import MAX_NODES, load_arg, read_stdin, split_names
from .options import CheckFormat, OutputOpt
from .options import (AtOpt, Convention, DigitsOpt, FormulaArg, JsonOpt, MaxNodesOpt, SeedOpt,
                      SubgradientOpt, WrtOpt)

NAME = "check"
FORMULA = True
EXAMPLES = ("""Examples:

\b
  gradcli check "(x+y)*z" --at x=-2,y=5,z=-4
  gradcli check "(x+y)*z" --at x=-2,y=5,z=-4 --expect x=-4,y=-4,z=3
  gradcli check "q = x + y; f = q * z" --at x=-2,y=5,z=-4 --expect-node q=3 """
            """--expect-node 'grad q=-4'
  gradcli check samples/neuron.grad --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 --expect x0=0.39
  gradcli check "x^2*sin(x)" --at x=1 --expect 'x=2*x*sin(x) + x^2*cos(x)'
  gradcli check "x/(x+y)" --at x=1,y=2 --exact --expect x=2/9
  gradcli eval "(x+y)*z" --at x=-2,y=5,z=-4 --json > table.json
  gradcli check "(x+y)*z" --answers table.json          (the point comes from the table)
\b
Exit status: 0 when everything agrees, 1 when anything does not, 2 for bad input.
""")


def command(
    formula: FormulaArg,
    at: AtOpt = None,
    wrt: WrtOpt = None,
    expect: Annotated[Optional[List[str]], typer.Option(
        "--expect", "-e", metavar="NAME=GRAD,...",
        help="Grade a hand-computed gradient: --expect x=-4,y=-4,z=3 (1/3, pi, [1,2] work); "
             "a formula: 'x=2*x*cos(x)'; an output of several: f2.y=1.")
    ] = None,
    expect_node: Annotated[Optional[List[str]], typer.Option(
        "--expect-node", metavar="NODE=VALUE",
        help="Grade a node's value (q=3) or gradient ('grad q=-4'); NODE is a name or #id.")
    ] = None,
    answers: Annotated[Optional[str], typer.Option(
        "--answers", metavar="FILE",
        help="Grade a worked table: eval --json output, JSON {\"value\": {...}, \"grad\": "
             "{...}}, or text lines 'q value 3' / 'x grad -4'; - for stdin.")] = None,
    rtol: Annotated[Optional[float], typer.Option(
        "--rtol", help="Relative tolerance for the check and for answers (default 1e-6; "
        "given, answers right only to the decimals written no longer pass).")] = None,
    atol: Annotated[float, typer.Option(
        "--atol", help="Absolute tolerance (for gradients near 0).")] = 1e-10,
    places: Annotated[Optional[int], typer.Option(
        "--places", min=0, max=15,
        help="Accept answers rounded to this many decimals (|answer - correct| ≤ 0.5·10^-N).")
    ] = None,
    exact: Annotated[bool, typer.Option(
        "--exact",
        help="Compare with exact fractions where every operation allows it: --expect x=2/9 "
             "is compared and shown as 2/9.")] = False,
    subgradient: SubgradientOpt = Convention.cs231n,
    hessian: Annotated[bool, typer.Option(
        "--hessian", help="Also check the Hessian against central differences of the "
                          "gradient.")] = False,
    as_json: JsonOpt = False,
    fmt: Annotated[CheckFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="text (default), json, or html: one self-contained page (-o FILE).")
    ] = CheckFormat.text,
    output: OutputOpt = None,
    digits: DigitsOpt = 6,
    seed: SeedOpt = None,
    max_nodes: MaxNodesOpt = MAX_NODES,
    max_elements: Annotated[int, typer.Option(
        "--max-elements", min=0,
        help="Check at most this many elements of each tensor variable (a random sample, with "
             "a warning; --seed picks it); 0: every element.")] = 200,  # numeric.MAX_ELEMENTS
) -> None:
    """Check FORMULA's gradient against central differences and grade hand-computed answers.

    Exit 0 when everything agrees (a kink, where no derivative exists, is reported and does not
    fail), 1 when anything does not, 2 for bad input."""
    from ..check import check_session
    from ..render.console import make_console, warn, write

    if answers == "-" and formula == "-":
        raise InputError("--answers - and the formula - cannot both come from standard input")
    from ..render.names import output_names

    s = load_arg(formula, at, seed=seed, max_nodes=max_nodes, wrt=split_names(wrt), exact=exact)
    report = check_session(s, expect=expect or [], expect_node=expect_node or [],
                           answers=answers, answers_text=read_stdin() if answers == "-" else None,
                           rtol=rtol, atol=atol, places=places, subgradient=subgradient.value,
                           outputs=output_names(s.tape), max_elements=max_elements)
    warn(report.warnings)
    second = None
    if hessian:
        from ..check.hessian import check_hessian

        second = check_hessian(s)
    if fmt is CheckFormat.html and not as_json:
        _html_report(report, output, formula, digits)
    elif output is not None:
        from ..errors import UsageError

        raise UsageError(f"-o {output}: writing to a file goes with --format html")
    elif as_json or fmt is CheckFormat.json:
        from ..render.jsonout import check_json, with_hessian_check

        doc = check_json(report)
        write((doc if second is None else with_hessian_check(doc, second)) + "\n")
    else:
        from ..render.checkout import render_check

        render_check(make_console(soft_wrap=True), report, digits)
        if second is not None:
            from ..render.second import render_hessian_check

            render_hessian_check(make_console(soft_wrap=True), second, digits)
    if not report.ok or (second is not None and not second.ok):
        raise typer.Exit(1)


def _html_report(report, output, formula: str, digits: int) -> None:
    """`check --format html [-o FILE]`: one self-contained page (render/html.py)."""
    from ..render.console import note, write, write_file
    from ..render.html import check_report

    page = check_report(report, digits)
    if output is None:
        write(page)
        return
    write_file(output, page.encode("utf-8"), inputs=(formula,))
    note(f"wrote {output}")
