"""`gradcli eval`: value, gradient and every node (table, tree, JSON, DOT, Mermaid, --explain)."""

from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..session import MAX_NODES, load_arg, split_names
from . import spare
from .options import OutputOpt
from .options import (AtOpt, BatchFormat, Convention, DigitsOpt, Format, FormulaArg, JsonOpt,
                      MaxNodesOpt, Mode, SeedOpt, SubgradientOpt, WrtOpt)

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
        "--points", metavar="FILE",
        help="Batch mode: one result per row of a CSV (header = variable names), Parquet, "
             "Arrow/Feather, .npz or .npy file; as CSV, JSON Lines (--json) or Parquet (-o).")
    ] = None,
    keep: Annotated[Optional[str], typer.Option(
        "--keep", metavar="[COLUMN,...]",
        help="Batch mode: copy the input columns (all, or these) in front of the results.")
    ] = None,
    output_format: Annotated[Optional[BatchFormat], typer.Option(
        "--output-format", case_sensitive=False,
        help="Batch mode: csv, jsonl or parquet (default: by -o's extension).")] = None,
    dask: Annotated[Optional[str], typer.Option(
        "--dask", metavar="[ADDRESS]",
        help="Batch mode on a Dask cluster: the scheduler at ADDRESS (tcp://host:8786), or a "
             "local one; writes Parquet parts to -o out/. Needs gradcli[scale].")] = None,
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
    hessian: Annotated[bool, typer.Option(
        "--hessian", help="Also the Hessian ∂²f/∂x∂y over the --wrt variables (scalars).")
    ] = False,
    hvp: Annotated[Optional[str], typer.Option(
        "--hvp", metavar="NAME=VALUE,...",
        help="Also the Hessian-vector product H·v for v = --hvp 'x=1,y=0'.")] = None,
    output: OutputOpt = None,
    max_nodes: MaxNodesOpt = MAX_NODES,
) -> None:
    """Evaluate FORMULA at a point and backpropagate: value, gradient, and every node."""
    chosen = Format.json if as_json else fmt
    if explain or fmt is Format.latex:
        _check_explain(as_json, fmt, points, mode)
    if formula == "-" and points == "-":
        raise InputError("the formula and --points cannot both read standard input: give the "
                         "formula as text or a .grad file, or the points as a file")
    s = load_arg(formula, at, seed=seed, max_nodes=max_nodes, wrt=split_names(wrt),
                 exact=exact and points is None)
    if points is not None:
        from .batchrun import run_points

        run_points(s, points, chosen is Format.json, keep, output,
                   output_format and output_format.value, dask)
        return
    if keep is not None or output_format is not None or dask is not None:
        raise InputError("--keep, --output-format and --dask are for batch mode (--points)")
    from ..result import run_session

    # One point: the scalar path (result.py: Python floats, no numpy) wherever it can promise
    # the engine's output (to the last bit for + - * / sqrt pow relu; see README, "Numbers"),
    # for every format alike, so a table and its JSON show the same digits.
    result = run_session(s, mode=mode.value, subgradient=subgradient.value,
                         floats=not (hessian or hvp is not None))
    spare(s, result)
    if hessian or hvp is not None:
        _second_order(s, result, chosen, hessian, hvp, digits, max_rows)
        return
    if chosen is Format.html or output is not None:
        _html_report(result, chosen, output, formula, digits, max_rows)
        return
    _present(result, chosen, explain, digits, max_rows)


def _check_explain(as_json: bool, fmt: Format, points: Optional[str], mode: Mode) -> None:
    """--explain (and --format latex) write prose: they combine with no other output format."""
    from ..errors import UsageError

    if as_json or fmt is Format.json:
        raise UsageError("--explain writes the chain rule out as text (or LaTeX with --format "
                         "latex); --json already carries every node's partials and grad: use one "
                         "or the other")
    if fmt not in (Format.table, Format.latex, Format.html):
        raise UsageError(f"--explain cannot be combined with --format {fmt.value}: it is text, "
                         "or LaTeX with --format latex")
    if points is not None:
        raise UsageError("--explain explains one point; --points evaluates a batch (use --at)")
    if mode is not Mode.reverse:
        raise UsageError("--explain writes out the backward pass; --mode "
                         f"{mode.value} is shown by the table")


def _present(result, chosen: Format, explain: bool, digits: int, max_rows: int) -> None:
    """One result in the chosen format."""
    from ..render.console import make_console, warn, write

    warn(result.warnings)
    if chosen in (Format.dot, Format.mermaid):
        from ..render.graph import graph_text

        write(graph_text(result, chosen.value, digits) + "\n")
    elif chosen is Format.json:
        from ..render.jsonout import eval_json_pieces

        for piece in eval_json_pieces(result):  # written as it is made: never held whole
            write(piece)
        write("\n")
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


def _html_report(result, chosen: Format, output, formula: str, digits: int,
                 max_rows: int) -> None:
    """`eval --format html [-o FILE]`: one self-contained page (render/html.py)."""
    from ..errors import UsageError
    from ..render.console import note, warn, write, write_file
    from ..render.html import eval_report

    if chosen is not Format.html:
        raise UsageError(f"-o {output}: writing to a file goes with --format html")
    warn(result.warnings)
    page = eval_report(result, digits, max_rows)
    if output is None:
        write(page)
        return
    write_file(output, page.encode("utf-8"), inputs=(formula,))
    note(f"wrote {output}")


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


def _second_order(s, result, chosen: Format, hessian: bool, hvp: Optional[str], digits: int,
                  max_rows: int) -> None:
    """`eval --hessian` / `--hvp` (H11): the table (or JSON) and the second-order numbers."""
    from ..diff import second_order

    if chosen not in (Format.table, Format.json) or result.mode != "reverse" or s.exact:
        raise InputError("--hessian and --hvp go with the table or --json (not --format "
                         f"{chosen.value}, --mode forward|both or --exact)")
    r = second_order(s, hessian, hvp)
    if chosen is Format.json:
        from ..render.console import warn, write
        from ..render.jsonout import eval_json, with_second_order

        warn(result.warnings)
        write(with_second_order(eval_json(result), r.hessian, r.hvp) + "\n")
        return
    from ..render.console import make_console
    from ..render.names import output_name
    from ..render.second import render_second

    _present(result, chosen, False, digits, max_rows)
    render_second(make_console(), r, output_name(result.tape), digits)
