"""`gradcli graph`: the circuit diagram (DOT, Mermaid, or SVG/PNG through Graphviz)."""

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..session import load_arg, split_names
from .options import AtOpt, FormulaArg, SeedOpt, WrtOpt

NAME = "graph"
FORMULA = True
EXAMPLES = """Examples:

\b
  gradcli graph samples/circuit.grad --at x=-2,y=5,z=-4                  (DOT on stdout)
  gradcli graph samples/circuit.grad --at x=-2,y=5,z=-4 --format mermaid
  gradcli graph "(x+y)*z" --at x=-2,y=5,z=-4 --format svg -o circuit.svg  (needs Graphviz)
  gradcli graph "(x+y)*z" --at x=-2,y=5,z=-4 | dot -Tpng -o circuit.png
"""


class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"
    png = "png"


def command(
    formula: FormulaArg,
    at: AtOpt = None,
    wrt: WrtOpt = None,
    fmt: Annotated[Optional[GraphFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        help="dot or mermaid (text, nothing to install); svg or png (need Graphviz's dot). "
             "Default: from -o's extension, else dot.")] = None,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")] = None,
    digits: Annotated[int, typer.Option(
        "--digits", min=1, max=17, help="Significant digits in the labels.")] = 4,
    max_nodes: Annotated[int, typer.Option(
        "--max-nodes", min=0, help="Refuse to draw more nodes than this (0: no limit).")] = 200,
    seed: SeedOpt = None,
) -> None:
    """Draw FORMULA's circuit: each node with its value (green) and gradient (red)."""
    from ..result import run_session
    from ..render.console import warn, write_bytes
    from ..render.graph import check_size, choose_format, graph_text, render_image

    kind = choose_format(fmt.value if fmt else None, output)
    to_stdout = output is None or output == "-"
    if kind == "png" and to_stdout and sys.stdout.isatty():
        raise InputError("PNG is binary: write it to a file with -o FILE.png")
    s = load_arg(formula, at, seed=seed, wrt=split_names(wrt), max_nodes=max_nodes,
                 limit=lambda tape: check_size(tape, max_nodes))
    result = run_session(s)
    warn(result.warnings)
    if kind in ("dot", "mermaid"):
        data = (graph_text(result, kind, digits) + "\n").encode("utf-8")
    else:
        data = render_image(graph_text(result, "dot", digits), kind)
    if to_stdout:
        write_bytes(data)
        return
    from ..render.console import say, write_file

    write_file(output, data, inputs=(formula,))
    say(f"gradcli: wrote {output} ({kind}, {len(s.tape)} nodes)")
