"""The circuit diagram: a result as Graphviz DOT or Mermaid text, and DOT drawn as SVG or PNG.

Edges run input → output, as in the course's circuit diagrams; a node used several times is
drawn once, with one out-edge per use. Every node shows its name or op, its value (green) and
its gradient (red), the colours of the table. Built by one loop over the tape, which is already
in dependency order (no recursion). User text is escaped for each format: HTML entities inside
DOT's HTML-like labels, backslashes and quotes inside DOT strings, and Mermaid's `#code;`
entities inside Mermaid's quoted labels.

Text formats need nothing but this module; SVG and PNG run Graphviz's `dot` program.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from typing import TYPE_CHECKING

from ..errors import GradcliError, InputError
from ..words import inert
from .names import output_names_by_node
from .text import compact

if TYPE_CHECKING:  # pragma: no cover
    from ..result import Result
    from ..tape import Tape

VALUE_COLOUR = "#1a7f37"  # green, as the table's values
GRAD_COLOUR = "#cf222e"  # red, as the table's gradients
MUTED_COLOUR = "#6e7781"
EXPR_LIMIT = 32  # characters of an unnamed node's source text shown under its op
POINT_LIMIT = 6  # variables listed in the caption

TEXT_FORMATS = ("dot", "mermaid")
IMAGE_FORMATS = ("svg", "png")
EXTENSIONS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid",
              ".svg": "svg", ".png": "png"}

INSTALL_ADVICE = ("install Graphviz (Debian/Ubuntu: `sudo apt-get install graphviz`; macOS: "
                  "`brew install graphviz`; others: https://graphviz.org/download/)")


class GraphvizError(GradcliError):
    """Graphviz's `dot` program is missing or failed: SVG and PNG need it."""


# -- what each node shows ---------------------------------------------------------------------

def kind(tape: "Tape", i: int) -> str:
    """'var', 'const' (a leaf that is no variable) or 'op'."""
    if tape.ops[i].name == "var":
        return "var"
    return "op" if tape.inputs[i] else "const"


number = compact  # a value or gradient for a picture


def gradient_text(r: "Result", i: int, digits: int) -> str | None:
    """Node i's gradient as shown (one entry per output when there are several), or None."""
    if not r.active[i]:
        return None
    if len(r.adjoints) == 1:
        return number(r.adjoints[0][i], digits)
    return "[" + ", ".join(number(adj[i], digits) for adj in r.adjoints) + "]"


def node_parts(r: "Result", i: int, digits: int, outs: dict[int, str]) -> dict:
    """The pieces of node i's label: title, op, source text, value, gradient, kind."""
    tape = r.tape
    k = kind(tape, i)
    op = tape.ops[i]
    name = tape.names.get(i)
    if k == "const":
        title, op_text, expr = tape.expr(i, EXPR_LIMIT), "", ""
    elif k == "var":
        title, op_text, expr = name or tape.expr(i, EXPR_LIMIT), "", ""
    else:
        symbol = op.symbol if op.symbol and len(tape.inputs[i]) == 2 else op.name
        title = name or outs.get(i) or ""
        op_text = symbol
        expr = "" if name else tape.expr(i, EXPR_LIMIT)
    return {"kind": k, "title": title, "op": op_text, "expr": expr,
            "value": number(r.values[i], digits), "grad": gradient_text(r, i, digits),
            "output": i in outs}


def caption_point(r: "Result", digits: int) -> str:
    """`x = -2, y = 5, z = -4` (the first few variables of the point)."""
    items = [(n, r.at[n]) for n in r.tape.variables if n in r.at]
    shown = ", ".join(f"{n} = {number(v, digits)}" for n, v in items[:POINT_LIMIT])
    if len(items) > POINT_LIMIT:
        shown += f", … ({len(items) - POINT_LIMIT} more)"
    return shown


def grad_legend(r: "Result") -> str:
    outs = list(output_names_by_node(r.tape).values())
    if len(outs) == 1:
        return f"gradient ∂{outs[0]}/∂node"
    return "gradients ∂" + ", ∂".join(outs) + " /∂node"


def check_size(tape: "Tape", max_nodes: int) -> None:
    """Refuse a picture with more than `max_nodes` nodes (0: no limit), saying what to do."""
    n = len(tape)
    if max_nodes and n > max_nodes:
        raise InputError(
            f"the graph has {n} nodes, more than --max-nodes {max_nodes}: a picture that big "
            f"is unreadable. Raise the limit (--max-nodes {_round_up(n)}, or 0 for none), or "
            "list the nodes with `gradcli eval FORMULA --json`")


def _round_up(n: int) -> int:
    step = 10 ** max(0, len(str(n)) - 1)
    return -(-n // step) * step


# -- DOT --------------------------------------------------------------------------------------

def html(text: str) -> str:
    """Text for a Graphviz HTML-like label (no control character: words.inert)."""
    return (inert(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def dot_string(text: str) -> str:
    """A DOT quoted string: backslashes and quotes escaped, line breaks as \\n."""
    text = inert(text.replace("\r\n", "\n").replace("\r", "\n"), lines=True)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n") + '"'


_DOT_SHAPES = {
    "var": 'shape=box, style="rounded,filled", fillcolor="#f6f8fa"',
    "const": 'shape=box, style="rounded,dashed", color="#8c959f"',
    "op": "shape=ellipse",
}


def _dot_label(p: dict) -> str:
    lines = []
    head = ""
    if p["title"]:
        head = f"<B>{html(p['title'])}</B>"
    if p["op"]:
        op = html(p["op"])
        head = f'{head} <FONT COLOR="{MUTED_COLOUR}">{op}</FONT>' if head else f"<B>{op}</B>"
    lines.append(head)
    if p["expr"]:
        lines.append(f'<FONT POINT-SIZE="9" COLOR="{MUTED_COLOUR}">{html(p["expr"])}</FONT>')
    if p["value"] != p["title"]:  # a number's own text is its value
        lines.append(f'<FONT COLOR="{VALUE_COLOUR}">{html(p["value"])}</FONT>')
    if p["grad"] is not None:
        lines.append(f'<FONT COLOR="{GRAD_COLOUR}">{html(p["grad"])}</FONT>')
    return "<" + "<BR/>".join(lines) + ">"


def to_dot(r: "Result", digits: int = 4) -> str:
    """The circuit as Graphviz DOT: left to right, values green, gradients red."""
    tape = r.tape
    outs = output_names_by_node(tape)
    caption = (f'<<FONT COLOR="{VALUE_COLOUR}">value</FONT>  ·  '
               f'<FONT COLOR="{GRAD_COLOUR}">{html(grad_legend(r))}</FONT>')
    point = caption_point(r, digits)
    if point:
        caption += f"  ·  at {html(point)}"
    caption += ">"
    out = [
        "digraph gradcli {",
        f'  graph [rankdir=LR, fontname="Helvetica", fontsize=11, labelloc=b, '
        f"label={caption}, tooltip={dot_string(' '.join(tape.text.split())[:500])}];",
        '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.06"];',
        '  edge [color="#57606a", arrowsize=0.7];',
    ]
    for i in range(len(tape)):
        p = node_parts(r, i, digits, outs)
        attrs = [f"label={_dot_label(p)}", _DOT_SHAPES[p["kind"]],
                 f"tooltip={dot_string(tape.expr(i, 200))}"]
        if p["output"]:
            attrs.append("peripheries=2")
        out.append(f"  n{i} [{', '.join(attrs)}];")
    for i in range(len(tape)):
        for j in tape.inputs[i]:
            out.append(f"  n{j} -> n{i};")
    out.append("}")
    return "\n".join(out)


# -- Mermaid ----------------------------------------------------------------------------------

_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;",
                     "`": "#96;", "%": "#37;", "\n": " ", "\r": " "}


def mermaid_text(text: str) -> str:
    """Text for inside a quoted Mermaid label: markup characters as #code; entities."""
    text = inert(text)
    if not any(ch in _MERMAID_ENTITIES for ch in text):
        return text
    return "".join(_MERMAID_ENTITIES.get(ch, ch) for ch in text)


_MERMAID_SHAPES = {"var": ('("', '")'), "const": ('["', '"]'), "op": ('(("', '"))')}


def _mermaid_label(p: dict) -> str:
    lines = []
    head = f"<b>{mermaid_text(p['title'])}</b>" if p["title"] else ""
    if p["op"]:
        op = mermaid_text(p["op"])
        head = f"{head} <i>{op}</i>" if head else f"<b>{op}</b>"
    lines.append(head)
    if p["expr"]:
        lines.append(f"<small>{mermaid_text(p['expr'])}</small>")
    if p["value"] != p["title"]:  # a number's own text is its value
        lines.append(f"<span style='color:{VALUE_COLOUR}'>{mermaid_text(p['value'])}</span>")
    if p["grad"] is not None:
        lines.append(f"<span style='color:{GRAD_COLOUR}'>{mermaid_text(p['grad'])}</span>")
    return "<br/>".join(lines)


def to_mermaid(r: "Result", digits: int = 4) -> str:
    """The circuit as a Mermaid flowchart (GitHub renders it inside a ```mermaid block)."""
    tape = r.tape
    outs = output_names_by_node(tape)
    out = ["flowchart LR"]
    classes: dict[str, list[str]] = {"var": [], "const": [], "op": [], "output": []}
    for i in range(len(tape)):
        p = node_parts(r, i, digits, outs)
        left, right = _MERMAID_SHAPES[p["kind"]]
        out.append(f"  n{i}{left}{_mermaid_label(p)}{right}")
        classes[p["kind"]].append(f"n{i}")
        if p["output"]:
            classes["output"].append(f"n{i}")
    for i in range(len(tape)):
        for j in tape.inputs[i]:
            out.append(f"  n{j} --> n{i}")
    out.append("  classDef var fill:#f6f8fa,stroke:#57606a")
    out.append("  classDef const fill:#ffffff,stroke:#8c959f,stroke-dasharray:3 3")
    out.append("  classDef op fill:#ffffff,stroke:#57606a")
    out.append("  classDef output stroke-width:3px")
    for name, ids in classes.items():
        # Long class lists are split so no line grows without bound.
        for k in range(0, len(ids), 200):
            out.append(f"  class {','.join(ids[k : k + 200])} {name}")
    return "\n".join(out)


def graph_text(r: "Result", format: str, digits: int = 4) -> str:
    """DOT or Mermaid text for a result (`format` is 'dot' or 'mermaid')."""
    if format == "dot":
        return to_dot(r, digits)
    if format == "mermaid":
        return to_mermaid(r, digits)
    raise InputError(f"unknown text format {format!r}: use dot or mermaid")


# -- SVG and PNG through Graphviz --------------------------------------------------------------

def choose_format(format: str | None, output: str | None) -> str:
    """--format if given, else from the output file's extension, else DOT."""
    if format:
        return format
    if output:
        for ext, name in EXTENSIONS.items():
            if str(output).lower().endswith(ext):
                return name
    return "dot"


def find_dot() -> str | None:
    """The path of Graphviz's `dot` program, or None."""
    return shutil.which("dot")


def render_image(dot_text: str, format: str, timeout: float = 120) -> bytes:
    """Lay DOT out with Graphviz and return the SVG or PNG bytes."""
    if format not in IMAGE_FORMATS:
        raise InputError(f"unknown image format {format!r}: use svg or png")
    exe = find_dot()
    if exe is None:
        raise GraphvizError(
            f"--format {format} needs Graphviz's `dot` program, which is not installed (or not "
            f"on PATH): {INSTALL_ADVICE}. Without it, --format dot or --format mermaid give the "
            "same diagram as text (paste Mermaid into GitHub Markdown or mermaid.live)")
    try:
        done = subprocess.run([exe, f"-T{format}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"Graphviz's dot took more than {math.floor(timeout)} s to lay the "
                            "graph out; try a smaller formula or --max-nodes") from None
    except OSError as exc:
        raise GraphvizError(f"cannot run {exe}: {exc.strerror or exc}") from None
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[0] if detail else f"exit status {done.returncode}"
        raise GraphvizError(f"Graphviz's dot could not draw the graph: {reason}")
    return done.stdout
