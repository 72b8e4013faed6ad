"""`gradcli diff`: derivatives as formulas in gradcli's own language (or LaTeX, or JSON)."""

from enum import Enum
from typing import Annotated

import typer

from ..errors import InputError
from ..session import MAX_NODES, load_arg, split_names
from .options import AtOpt, DigitsOpt, FormulaArg, JsonOpt, MaxNodesOpt, SeedOpt, WrtOpt

NAME = "diff"
FORMULA = True
EXAMPLES = """Examples:

\b
  gradcli diff "x^2*sin(x)"                          (2*x*sin(x) + x^2*cos(x))
  gradcli diff samples/neuron.grad --wrt w0,x0 --format latex
  gradcli diff "x^2*y + y^3" --order 2 --at x=1,y=2
  gradcli diff "D = W @ X" --json                      (matrix forms: dW = dD @ X.T)
"""


class DiffFormat(str, Enum):
    text = "text"
    latex = "latex"
    json = "json"


def command(
    formula: FormulaArg,
    wrt: WrtOpt = None,
    order: Annotated[int, typer.Option(
        "--order", help="1: the gradient; 2: the Hessian's entries too.")] = 1,
    at: AtOpt = None,
    fmt: Annotated[DiffFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="text (formulas gradcli parses back), latex or json.")] = DiffFormat.text,
    as_json: JsonOpt = False,
    digits: DigitsOpt = 6,
    seed: SeedOpt = None,
    max_nodes: MaxNodesOpt = MAX_NODES,
) -> None:
    """Differentiate FORMULA symbolically: each partial derivative as a formula, shared
    subexpressions as named intermediates; with --at, their values there too."""
    from ..diff import ORDERS, diff_session
    from ..render.console import warn, write

    if order not in ORDERS:
        raise InputError(f"--order {order}: gradcli gives first (1) or second (2) derivatives")
    s = load_arg(formula, at, seed=seed, max_nodes=max_nodes, wrt=split_names(wrt))
    r = diff_session(s, order)
    warn(r.warnings)
    if as_json or fmt is DiffFormat.json:
        from ..render.jsonout import diff_json

        write(diff_json(r) + "\n")
    elif fmt is DiffFormat.latex:
        from ..render.formula import diff_latex

        write(diff_latex(r))
    else:
        from ..render.formula import diff_program

        write(diff_program(r, digits))
