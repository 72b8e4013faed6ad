"""`gradcli check`: the gradient against central differences, and grading hand answers."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from ..errors import InputError
from ..session import MAX_NODES, load_arg, read_stdin, split_names
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
  gradcli check samples/neuron.grad --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 --expect x0=0.39 --places 2
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
        help="Grade a hand-computed gradient: --expect x=-4,y=-4,z=3 (1/3, pi, [1,2] work).")
    ] = None,
    expect_node: Annotated[Optional[List[str]], typer.Option(
        "--expect-node", metavar="NODE=VALUE",
        help="Grade a node's value (q=3) or gradient ('grad q=-4'); NODE is a name or #id.")
    ] = None,
    answers: Annotated[Optional[str], typer.Option(
        "--answers", metavar="FILE",
        help="Grade a worked table: eval --json output, JSON {\"value\": {...}, \"grad\": "
             "{...}}, or text lines 'q value 3' / 'x grad -4'; - for stdin.")] = None,
    rtol: Annotated[float, typer.Option(
        "--rtol", help="Relative tolerance for the check and for answers.")] = 1e-6,
    atol: Annotated[float, typer.Option(
        "--atol", help="Absolute tolerance (for gradients near 0).")] = 1e-10,
    places: Annotated[Optional[int], typer.Option(
        "--places", min=0, max=15,
        help="Accept answers rounded to this many decimals (|answer - correct| ≤ 0.5·10^-N).")
    ] = None,
    subgradient: SubgradientOpt = Convention.cs231n,
    as_json: JsonOpt = False,
    digits: DigitsOpt = 6,
    seed: SeedOpt = None,
    max_nodes: MaxNodesOpt = MAX_NODES,
) -> None:
    """Check FORMULA's gradient against central differences and grade hand-computed answers.

    Exit 0 when everything agrees (a kink, where no derivative exists, is reported and does not
    fail), 1 when anything does not, 2 for bad input."""
    from ..check import check_session
    from ..render.console import make_console, warn, write

    if answers == "-" and formula == "-":
        raise InputError("--answers - and the formula - cannot both come from standard input")
    s = load_arg(formula, at, seed=seed, max_nodes=max_nodes, wrt=split_names(wrt))
    report = check_session(s, expect=expect or [], expect_node=expect_node or [],
                           answers=answers, answers_text=read_stdin() if answers == "-" else None,
                           rtol=rtol, atol=atol, places=places, subgradient=subgradient.value)
    warn(report.warnings)
    if as_json:
        from ..render.jsonout import check_json

        write(check_json(report) + "\n")
    else:
        from ..render.checkout import render_check

        render_check(make_console(soft_wrap=True), report, digits)
    if not report.ok:
        raise typer.Exit(1)

