"""`gradcli eval`: value, gradient and every node (table, tree, JSON, DOT, Mermaid, --explain)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..session import MAX_NODES, load_arg, split_names
from .options import (AtOpt, Convention, DigitsOpt, Format, FormulaArg, JsonOpt, MaxNodesOpt,
                      Mode, SeedOpt, SubgradientOpt, WrtOpt)

NAME = "eval"
FORMULA = True
EXAMPLES = """Examples:

\b
  gradcli eval "(x+y)*z" --at x=-2,y=5,z=-4
  gradcli eval samples/neuron.grad --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 --json
  gradcli eval "2*x+y, y-x" --at x=1,y=2             (several outputs: a Jacobian)
  gradcli eval "q = x + y; f = q * z" --at x=-2,y=5,z=-4 --format tree
  echo "-x^2" | gradcli eval - --at x=3
"""


def command(
    formula: FormulaArg,
    at: AtOpt = None,
    wrt: WrtOpt = None,
    as_json: JsonOpt = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", case_sensitive=False,
                                        help="Output format.")] = Format.table,
    digits: DigitsOpt = 6,
    max_rows: Annotated[int, typer.Option(
        "--max-rows", min=0, help="Table rows to show for big formulas (0: all).")] = 200,
    seed: SeedOpt = None,
    points: Annotated[Optional[str], typer.Option(
        "--points", metavar="FILE.csv",
        help="Batch mode: one result per CSV row (header = variable names), as CSV, or JSON "
             "Lines with --json.")] = None,
    mode: Annotated[Mode, typer.Option(
        "--mode", case_sensitive=False,
        help="reverse: gradients (backpropagation); forward: each node's tangent for every "
             "--wrt variable; both: side by side, with the sweeps a full Jacobian takes.")
    ] = Mode.reverse,
    exact: Annotated[bool, typer.Option(
        "--exact",
        help="Exact fractions wherever every operation allows it (+ - * /, integer powers, "
             "max/min/abs/relu); floats, with a warning, elsewhere. --at x=1/3 is exact.")
    ] = False,
    subgradient: SubgradientOpt = Convention.cs231n,
    explain: Annotated[bool, typer.Option(
        "--explain",
        help="Write the backward pass out node by node: the chain rule with the numbers "
             "(∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4). --format latex gives it as LaTeX.")
    ] = False,
    max_nodes: MaxNodesOpt = MAX_NODES,
) -> None:
    """Evaluate FORMULA at a point and backpropagate: value, gradient, and every node."""
    chosen = Format.json if as_json else fmt
    if explain or fmt is Format.latex:
        _check_explain(as_json, fmt, points, mode)
    s = load_arg(formula, at, seed=seed, max_nodes=max_nodes, wrt=split_names(wrt),
                 exact=exact and points is None)
    if points is not None:
        _batch(s, points, chosen is Format.json)
        return
    from ..result import run_session

    result = run_session(s, mode=mode.value, subgradient=subgradient.value)
    _present(result, chosen, explain, digits, max_rows)


def _check_explain(as_json: bool, fmt: Format, points: Optional[str], mode: Mode) -> None:
    """--explain (and --format latex) write prose: they combine with no other output format."""
    if as_json or fmt is Format.json:
        raise InputError("--explain writes the chain rule out as text (or LaTeX with --format "
                         "latex); --json already carries every node's partials and grad: use one "
                         "or the other")
    if fmt not in (Format.table, Format.latex):
        raise InputError(f"--explain cannot be combined with --format {fmt.value}: it is text, "
                         "or LaTeX with --format latex")
    if points is not None:
        raise InputError("--explain explains one point; --points evaluates a batch (use --at)")
    if mode is not Mode.reverse:
        raise InputError("--explain writes out the backward pass; --mode "
                         f"{mode.value} is shown by the table")


def _present(result, chosen: Format, explain: bool, digits: int, max_rows: int) -> None:
    """One result in the chosen format."""
    from ..render.console import make_console, warn, write

    warn(result.warnings)
    if chosen in (Format.dot, Format.mermaid):
        from ..render.graph import graph_text

        write(graph_text(result, chosen.value, digits) + "\n")
    elif chosen is Format.json:
        from ..render.jsonout import eval_json

        write(eval_json(result) + "\n")
    elif explain or chosen is Format.latex:
        left = _explain(result, chosen is Format.latex, digits, max_rows)
        if left:
            warn([f"the explanation leaves out {left} steps; --max-rows 0 shows them all"])
    elif chosen is Format.tree:
        from ..render.table import render_tree

        left = render_tree(make_console(), result, digits)
        if left:
            warn([f"the tree shows {len(result.tape) - left} of {len(result.tape)} nodes; "
                  "--json lists them all"])
    else:
        from ..render.table import render_table

        hidden = render_table(make_console(), result, digits, max_rows)
        if hidden:
            warn([f"the table leaves out {hidden} of {len(result.tape)} nodes; --max-rows 0 "
                  "shows them all, --json lists them all"])


def _explain(result, latex: bool, digits: int, max_steps: int) -> int:
    """`eval --explain`: the backward pass, step by step, as text (Rich) or as LaTeX; returns
    how many steps were left out."""
    from ..render import explain
    from ..render.console import make_console, write

    if latex:
        text, left = explain.latex(result, digits, max_steps)
        write(text)
        return left
    console = make_console(soft_wrap=True)
    lines, left = explain.rich_lines(result, digits, max_steps)
    for line in lines:
        console.print(line)
    return left


def _batch(s, path: str, as_json: bool) -> None:
    """`eval --points FILE`: stream CSV or JSON Lines, chunk by chunk, with a progress bar."""
    import sys

    from ..batch import batch
    from ..render.batchout import csv_header, csv_rows, jsonl_rows
    from ..render.console import file_bar, warn, write

    chunks = batch(s, path, sys.stdin if path == "-" else None)
    warn(s.warnings)
    progress = file_bar(path)
    row = 1
    try:
        for chunk in chunks:
            if row == 1 and not as_json:
                write(csv_header(s.wrt))
            write(jsonl_rows(chunk, s.wrt, row) if as_json else csv_rows(chunk, s.wrt))
            row += len(chunk)
            if progress is not None:
                progress.update(chunk.chars_read)
    finally:
        if progress is not None:
            progress.close()
