"""The command line (Typer). Only this module maps errors to exit codes.

Heavy imports (numpy, lark, rich) happen inside the commands, so `gradcli --help` and
`gradcli --version` stay fast.
"""

from __future__ import annotations

import os
import re
import sys
from enum import Enum
from typing import List, Optional

import typer
from typer.core import TyperCommand

from . import __version__
from .errors import GradcliError, InputError

EXIT_USAGE = 2
EXIT_INTERNAL = 3


class FormulaCommand(TyperCommand):
    """A command whose formula may start with '-' (`gradcli eval "-x^2" --at x=3`).

    Click would take "-x^2" for an option; an argument that starts with '-' and is no option
    of this command is moved behind a '--', where Click reads it as the formula.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _move_dash_formula(self, ctx, list(args)))


def _move_dash_formula(command: TyperCommand, ctx: typer.Context, args: list[str]) -> list[str]:
    takes_value: set[str] = set()
    flags: set[str] = set()
    for param in command.get_params(ctx):
        if getattr(param, "param_type_name", "") == "option":
            names = list(param.opts) + list(param.secondary_opts)
            (flags if param.is_flag or param.count else takes_value).update(names)
    if "--" in args:
        args = _options_before_dashes(args, takes_value, flags)
    i = 0
    seen_formula = False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return args
        if arg in takes_value:
            i += 2
            continue
        if arg in flags or arg == "-" or not arg.startswith("-"):
            seen_formula = seen_formula or arg not in flags
            i += 1
            continue
        if arg.startswith("--") and arg[2:3].isalpha() and (
                seen_formula or _close_option(arg, takes_value | flags)):
            i += 1  # a misspelt option (--jsn): Click says so and suggests --json
            continue
        if arg.startswith("--") and arg.split("=", 1)[0] in takes_value:
            i += 1
            continue
        if len(arg) > 2 and arg[:2] in takes_value and _attached_value(arg[2:]):
            i += 1  # -ax=1: a short option with its value attached
            continue
        # Not an option of ours: a formula such as "-x*y" or "-3".
        rest = args[:i] + args[i + 1 :]
        if "--" in rest:
            k = rest.index("--")
            return rest[: k + 1] + [arg] + rest[k + 1 :]
        return rest + ["--", arg]
    return args


def _attached_value(rest: str) -> bool:
    """Whether `rest` in `-arest` reads as an option's value (x=1, w0,w1, json, out.svg) rather
    than the rest of a formula that starts with a minus sign ("-w + w^2", "-a*b")."""
    if any(ch.isspace() for ch in rest):
        return False
    if "=" in rest or rest.startswith("@"):
        return True  # an --at value
    return not any(ch in "+-*/^()[]@" for ch in rest) and not rest[:1].isdigit()


def _close_option(arg: str, options: set[str]) -> bool:
    import difflib

    return bool(difflib.get_close_matches(arg.split("=", 1)[0], list(options), n=1, cutoff=0.6))


def _options_before_dashes(args: list[str], takes_value: set[str], flags: set[str]) -> list[str]:
    """`eval -- "-x^2" --at x=3`: options written after '--' are moved before it."""
    k = args.index("--")
    before, after, rest = args[:k], [], args[k + 1 :]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in takes_value and i + 1 < len(rest):
            before += rest[i : i + 2]
            i += 2
        elif arg in flags or (arg.startswith("--") and arg.split("=", 1)[0] in takes_value):
            before.append(arg)
            i += 1
        else:
            after.append(arg)
            i += 1
    return before + ["--"] + after


app = typer.Typer(
    name="gradcli",
    help="A gradient calculator for formulas: every node's value and backpropagated gradient.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    table = "table"
    json = "json"
    tree = "tree"
    dot = "dot"
    mermaid = "mermaid"
    latex = "latex"


class Mode(str, Enum):
    reverse = "reverse"
    forward = "forward"
    both = "both"


class Convention(str, Enum):
    cs231n = "cs231n"
    half = "half"
    zero = "zero"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """gradcli: forward values and backpropagated gradients for every node of a formula."""


#: The largest formula text gradcli reads (bytes of UTF-8); bigger input is refused at once.
MAX_FORMULA_BYTES = 100 * 2**20
#: --max-nodes' default: generous (10^6-node formulas are a tested case), but a bound.
MAX_NODES = 10_000_000


def read_formula(arg: str) -> str:
    """The formula itself, or the contents of the file it names, or stdin for '-'."""
    if arg == "-":
        if hasattr(sys.stdin, "buffer"):
            data = sys.stdin.buffer.read(MAX_FORMULA_BYTES + 1)
        else:  # pragma: no cover - a text-only stdin
            data = sys.stdin.read(MAX_FORMULA_BYTES + 1)
        _check_bytes(len(data), "standard input")
        return _decode(data, "standard input")
    looks_like_path = arg.endswith(".grad") or os.sep in arg or "/" in arg
    if os.path.isfile(arg) and (looks_like_path or "." in arg):
        try:
            with open(arg, "rb") as fh:
                data = fh.read(MAX_FORMULA_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read {arg}: {exc.strerror}") from None
        _check_bytes(len(data), arg)
        return _decode(data, arg)
    if arg.endswith(".grad"):
        raise InputError(f"no such file: {arg}")
    if len(arg) > MAX_FORMULA_BYTES // 4:  # at most 4 bytes a character: only then count
        _check_bytes(len(arg.encode("utf-8", "surrogateescape")), "the formula")
    return arg


def _check_bytes(size: int, where: str) -> None:
    if size > MAX_FORMULA_BYTES:
        raise InputError(f"{where} is more than {MAX_FORMULA_BYTES >> 20} MB: gradcli reads "
                         "formulas up to that size")


_COMMENT = re.compile(r"#[^\n]*")
_BINARY_SIGN = re.compile(r"[\w)\]][ \t\f\r]*[-+]")
_EXPONENT_SIGN = re.compile(r"\d[eE][-+]")


def nodes_at_least(text: str) -> int:
    """A cheap lower bound on the nodes a formula that parses has, from its text alone.

    Outside comments every '*', '/', '@' and '^' (with '**' once) is an operator that makes
    exactly one node, as does a '+' or '-' right after a name, a number, ')' or ']' (binary),
    minus the signs of exponents such as 1e-3. Runs at C speed: a 100 MB text takes ~0.5 s.
    """
    if "#" in text:
        text = _COMMENT.sub("", text)
    n = text.count("*") - text.count("**") + text.count("/") + text.count("@") + text.count("^")
    n += _BINARY_SIGN.subn("", text)[1] - _EXPONENT_SIGN.subn("", text)[1]
    return max(n, 0)


def check_nodes(text: str, max_nodes: int, count: Optional[int] = None) -> None:
    """Refuse a formula with more than `max_nodes` nodes (0: no limit), before parsing when the
    text alone shows it (a node needs a character, so only long texts are looked at), and
    after parsing from the tape's length (`count`)."""
    if not max_nodes:
        return
    if count is None:
        if len(text) <= max_nodes:
            return
        count = nodes_at_least(text)
        more = "at least "
    else:
        more = ""
    if count > max_nodes:
        raise InputError(f"the formula has {more}{count:,} nodes, more than --max-nodes "
                         f"{max_nodes:,}; raise --max-nodes (0: no limit) to go on")


def _decode(data: bytes | str, where: str) -> str:
    if isinstance(data, str):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def _split_names(values: Optional[List[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def make_console(stderr: bool = False, soft_wrap: bool = False):
    """A Rich console: colours on a terminal, plain text in a pipe, none at all under NO_COLOR."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    options = {"color_system": None} if plain else {}
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        options["width"] = 160  # a file or a pipe: wide tables rather than wrapped cells
    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap, **options)


def warn(messages: list[str]) -> None:
    """Warnings go to stderr, one line each."""
    if not messages:
        return
    from rich.text import Text

    console = make_console(stderr=True, soft_wrap=True)
    for message in messages:
        line = Text("warning: ", style="yellow bold")
        line.append(message)
        console.print(line)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print an error to stderr and leave with `code`."""
    sys.stderr.write(f"gradcli: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


EVAL_EXAMPLES = """Examples:

\b
  gradcli eval "(x+y)*z" --at x=-2,y=5,z=-4
  gradcli eval samples/neuron.grad --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 --json
  gradcli eval "2*x+y, y-x" --at x=1,y=2             (several outputs: a Jacobian)
  gradcli eval "q = x + y; f = q * z" --at x=-2,y=5,z=-4 --format tree
  echo "-x^2" | gradcli eval - --at x=3
"""


@app.command("eval", cls=FormulaCommand, no_args_is_help=True, epilog=EVAL_EXAMPLES)
def eval_command(
    formula: str = typer.Argument(
        ..., metavar="FORMULA",
        help="The formula, e.g. \"(x+y)*z\"; or a file (samples/neuron.grad); or - for stdin."),
    at: Optional[List[str]] = typer.Option(
        None, "--at", "-a", metavar="NAME=VALUE,...",
        help="The point: --at x=-2,y=5,z=-4 (repeatable). Values: 3, -2.5, 1/3, pi, e; "
             "'w=[2,-3]', 'W=[[1,2],[3,4]]', W=@w.npy, W=@w.csv, @point.json, "
             "'W=randn(5,10)', zeros(3), ones(2,2)."),
    wrt: Optional[List[str]] = typer.Option(
        None, "--wrt", "-w", metavar="NAME,...",
        help="Differentiate with respect to these variables only (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (same as --format json)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", case_sensitive=False,
                               help="Output format."),
    digits: int = typer.Option(6, "--digits", min=1, max=17,
                               help="Significant digits in the table and tree."),
    max_rows: int = typer.Option(200, "--max-rows", min=0,
                                 help="Table rows to show for big formulas (0: all)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help="Seed for randn(...)/rand(...) values in --at."),
    points: Optional[str] = typer.Option(
        None, "--points", metavar="FILE.csv",
        help="Batch mode: one result per CSV row (header = variable names), as CSV, or JSON "
             "Lines with --json."),
    mode: Mode = typer.Option(
        Mode.reverse, "--mode", case_sensitive=False,
        help="reverse: gradients (backpropagation); forward: each node's tangent for every "
             "--wrt variable; both: side by side, with the sweeps a full Jacobian takes."),
    exact: bool = typer.Option(
        False, "--exact",
        help="Exact fractions wherever every operation allows it (+ - * /, integer powers, "
             "max/min/abs/relu); floats, with a warning, elsewhere. --at x=1/3 is exact."),
    subgradient: Convention = typer.Option(
        Convention.cs231n, "--subgradient", case_sensitive=False,
        help="The slope at kinks: cs231n (max ties give 1 to each, relu'(0)=0), half (ties "
             "share, relu'(0)=1/2) or zero."),
    explain: bool = typer.Option(
        False, "--explain",
        help="Write the backward pass out node by node: the chain rule with the numbers "
             "(∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4). --format latex gives it as LaTeX."),
    max_nodes: int = typer.Option(
        MAX_NODES, "--max-nodes", min=0,
        help="Refuse formulas with more nodes than this (0: no limit)."),
) -> None:
    """Evaluate FORMULA at a point and backpropagate: value, gradient, and every node."""
    from .api import read_point, run
    from .parse import parse

    if explain or fmt is Format.latex:
        _check_explain(as_json, fmt, points, mode)
    text = read_formula(formula)
    check_nodes(text, max_nodes)
    if points is not None:
        _batch(text, points, at or [], _split_names(wrt), seed, as_json or fmt is Format.json,
               max_nodes)
        return
    tape, warnings = parse(text)
    check_nodes(text, max_nodes, len(tape))
    point = read_point(text, at or [], seed, warnings, exact)
    result = run(tape, point, _split_names(wrt), warnings, mode=mode.value,
                 subgradient=subgradient.value, exact=exact)
    chosen = Format.json if as_json else fmt
    if chosen in (Format.dot, Format.mermaid):
        from .render.graph import graph_text

        warn(result.warnings)
        _write(graph_text(result, chosen.value, digits) + "\n")
        return
    if chosen is Format.json:
        warn(result.warnings)
        _write(result.to_json() + "\n")
        return
    if explain or chosen is Format.latex:
        _explain(result, chosen is Format.latex, digits, max_rows)
        return
    from .render.table import render_table, render_tree

    console = make_console()
    warn(result.warnings)
    if chosen is Format.tree:
        left = render_tree(console, result, digits)
        if left:
            warn([f"the tree shows {len(result.tape) - left} of {len(result.tape)} nodes; "
                  "--json lists them all"])
    else:
        hidden = render_table(console, result, digits, max_rows)
        if hidden:
            warn([f"the table leaves out {hidden} of {len(result.tape)} nodes; --max-rows 0 "
                  "shows them all, --json lists them all"])


def _check_explain(as_json: bool, fmt: Format, points: Optional[str], mode: Mode) -> None:
    """--explain (and --format latex) write prose: they combine with no other output format."""
    if as_json or fmt is Format.json:
        fail("--explain writes the chain rule out as text (or LaTeX with --format latex); "
             "--json already carries every node's partials and grad: use one or the other")
    if fmt not in (Format.table, Format.latex):
        fail(f"--explain cannot be combined with --format {fmt.value}: it is text, or LaTeX "
             "with --format latex")
    if points is not None:
        fail("--explain explains one point; --points evaluates a batch (use --at)")
    if mode is not Mode.reverse:
        fail(f"--explain writes out the backward pass; --mode {mode.value} is shown by the table")


def _explain(result, latex: bool, digits: int, max_steps: int) -> None:
    """`eval --explain`: the backward pass, step by step, as text (Rich) or as LaTeX."""
    from .render import explain

    warn(result.warnings)
    if latex:
        text, left = explain.latex(result, digits, max_steps)
        _write(text)
    else:
        console = make_console(soft_wrap=True)
        lines, left = explain.rich_lines(result, digits, max_steps)
        for line in lines:
            console.print(line)
    if left:
        warn([f"the explanation leaves out {left} steps; --max-rows 0 shows them all"])


def _batch(text: str, path: str, at: list[str], wrt: Optional[list[str]], seed: Optional[int],
           as_json: bool, max_nodes: int = 0) -> None:
    """`eval --points FILE`: stream CSV or JSON Lines, chunk by chunk, with a progress bar."""
    from .api import _check_wrt, read_point
    from .batch import CsvPoints, run_batch
    from .parse import parse
    from .render.batchout import csv_header, csv_rows, jsonl_rows

    tape, warnings = parse(text)
    check_nodes(text, max_nodes, len(tape))
    fixed = read_point(text, at, seed, warnings)
    names = _check_wrt(tape, wrt)
    try:
        reader = CsvPoints(path, sys.stdin if path == "-" else None)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    shadowed = [n for n in fixed if n in reader.columns]
    if shadowed:
        warnings.append(f"--at {', '.join(shadowed)}: {path} has a column of that name, which "
                        "gives the values instead")
    unused = [c for c in reader.columns if c not in tape.variables]
    if unused:
        warnings.append(f"{path}: column{'s' if len(unused) > 1 else ''} "
                        f"{', '.join(unused[:5])} not used by the formula")
    chunks = run_batch(tape, reader, fixed, names)
    warn(warnings)
    progress = _progress(path)
    row = 1
    try:
        for chunk in chunks:
            if row == 1 and not as_json:
                _write(csv_header(names))
            _write(jsonl_rows(chunk, names, row) if as_json else csv_rows(chunk, names))
            row += len(chunk)
            if progress is not None:
                progress.update(chunk.chars_read)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    finally:
        if progress is not None:
            progress.close()


def _not_utf8(path: str, exc: UnicodeDecodeError) -> InputError:
    where = "standard input" if path == "-" else path
    return InputError(f"{where} is not valid UTF-8 text (byte 0x{exc.object[exc.start]:02x})")


class _Bar:
    """A progress bar on stderr, by characters of the file read."""

    def __init__(self, total: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("reading points"), BarColumn(),
                                 TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                                 console=make_console(stderr=True), transient=True)
        self.task = self.progress.add_task("points", total=total)
        self.progress.start()

    def update(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        self.progress.stop()


def _progress(path: str):
    """A bar for long files when stderr is a terminal; None otherwise."""
    if path == "-" or not sys.stderr.isatty():
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    return _Bar(size) if size > 8 << 20 else None


def _write(text: str) -> None:
    out = sys.stdout
    for k in range(0, len(text), 1 << 20):
        out.write(text[k : k + (1 << 20)])
    out.flush()


# -- graph: the circuit diagram ----------------------------------------------------------------

class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"
    png = "png"


GRAPH_EXAMPLES = """Examples:

\b
  gradcli graph samples/circuit.grad --at x=-2,y=5,z=-4                  (DOT on stdout)
  gradcli graph samples/circuit.grad --at x=-2,y=5,z=-4 --format mermaid
  gradcli graph "(x+y)*z" --at x=-2,y=5,z=-4 --format svg -o circuit.svg  (needs Graphviz)
  gradcli graph "(x+y)*z" --at x=-2,y=5,z=-4 | dot -Tpng -o circuit.png
"""


@app.command("graph", cls=FormulaCommand, no_args_is_help=True, epilog=GRAPH_EXAMPLES)
def graph_command(
    formula: str = typer.Argument(
        ..., metavar="FORMULA",
        help="The formula, e.g. \"(x+y)*z\"; or a file (samples/neuron.grad); or - for stdin."),
    at: Optional[List[str]] = typer.Option(
        None, "--at", "-a", metavar="NAME=VALUE,...",
        help="The point: --at x=-2,y=5,z=-4 (repeatable)."),
    wrt: Optional[List[str]] = typer.Option(
        None, "--wrt", "-w", metavar="NAME,...",
        help="Differentiate with respect to these variables only (default: all)."),
    fmt: Optional[GraphFormat] = typer.Option(
        None, "--format", "-f", case_sensitive=False,
        help="dot or mermaid (text, nothing to install); svg or png (need Graphviz's dot). "
             "Default: from -o's extension, else dot."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                         help="Write to FILE instead of stdout."),
    digits: int = typer.Option(4, "--digits", min=1, max=17,
                               help="Significant digits in the labels."),
    max_nodes: int = typer.Option(200, "--max-nodes", min=0,
                                  help="Refuse to draw more nodes than this (0: no limit)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help="Seed for randn(...)/rand(...) values in --at."),
) -> None:
    """Draw FORMULA's circuit: each node with its value (green) and gradient (red)."""
    from .api import read_point, run
    from .parse import parse
    from .render.graph import check_size, choose_format, graph_text, render_image

    kind = choose_format(fmt.value if fmt else None, output)
    to_stdout = output is None or output == "-"
    if kind == "png" and to_stdout and sys.stdout.isatty():
        raise InputError("PNG is binary: write it to a file with -o FILE.png")
    text = read_formula(formula)
    if len(text) > 100_000:  # a text far too big to draw is refused before parsing it
        check_nodes(text, max_nodes)
    tape, warnings = parse(text)
    check_size(tape, max_nodes)
    result = run(tape, read_point(text, at or [], seed, warnings), _split_names(wrt), warnings)
    warn(result.warnings)
    if kind in ("dot", "mermaid"):
        data = (graph_text(result, kind, digits) + "\n").encode("utf-8")
    else:
        data = render_image(graph_text(result, "dot", digits), kind)
    if to_stdout:
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # pragma: no cover - a text-only stdout
            _write(data.decode("utf-8", "replace"))
        else:
            sys.stdout.flush()
            out.write(data)
            out.flush()
        return
    try:
        with open(output, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    sys.stderr.write(f"gradcli: wrote {output} ({kind}, {len(tape)} nodes)\n")


# -- descend: gradient descent -----------------------------------------------------------------

class Optimizer(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


DESCEND_EXAMPLES = """Examples:

\b
  gradcli descend "(w-3)^2 + (v+1)^2" --at w=0,v=0 --wrt w,v --lr 0.1 --steps 100
  gradcli descend samples/descend_neuron.grad --steps 500 --json
  gradcli descend "(w-3)^2 + 10*(v+1)^2" --optimizer adam --lr 0.3 --steps 200
  gradcli descend "x^2" --at x=1 --lr 1.5 --steps 1000     (diverges: exit 1)
"""


@app.command("descend", cls=FormulaCommand, no_args_is_help=True, epilog=DESCEND_EXAMPLES)
def descend_command(
    formula: str = typer.Argument(
        ..., metavar="FORMULA",
        help="The loss, one scalar output; or a file (samples/descend_neuron.grad); or -."),
    at: Optional[List[str]] = typer.Option(
        None, "--at", "-a", metavar="NAME=VALUE,...",
        help="The starting point (repeatable); parameters it leaves out start at 0."),
    wrt: Optional[List[str]] = typer.Option(
        None, "--wrt", "-w", metavar="NAME,...",
        help="The parameters to move (default: every variable); the others stay fixed."),
    lr: float = typer.Option(0.1, "--lr", help="The learning rate η in θ ← θ − η∇L."),
    steps: int = typer.Option(100, "--steps", min=0, help="How many updates to make."),
    optimizer: Optimizer = typer.Option(
        Optimizer.sgd, "--optimizer", case_sensitive=False,
        help="sgd (plain θ ← θ − η∇L), momentum (heavy ball, see --momentum) or adam."),
    momentum: float = typer.Option(0.9, "--momentum", help="μ for --optimizer momentum."),
    tol: float = typer.Option(0.0, "--tol", help="Stop early once ‖∇L‖ ≤ TOL."),
    every: int = typer.Option(1, "--every", min=1,
                              help="Keep every Nth step in the record (JSON and table)."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print the trajectory as JSON (no curve or table)."),
    digits: int = typer.Option(6, "--digits", min=1, max=17,
                               help="Significant digits in the table."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help="Seed for randn(...)/rand(...) values in --at."),
    max_nodes: int = typer.Option(
        MAX_NODES, "--max-nodes", min=0,
        help="Refuse formulas with more nodes than this (0: no limit)."),
) -> None:
    """Minimise FORMULA by gradient descent, θ ← θ − η∇L: a progress bar, the loss curve,
    a table of steps and the final parameters. Exit 1 if the loss stops being finite."""
    from rich.text import Text

    from .api import read_point
    from .descend import Trajectory, descend, starting_point
    from .parse import parse

    text = read_formula(formula)
    check_nodes(text, max_nodes)
    tape, warnings = parse(text)
    check_nodes(text, max_nodes, len(tape))
    point, names, zeroed = starting_point(tape, read_point(text, at or [], seed, warnings),
                                          _split_names(wrt))
    warn(warnings)
    if zeroed:
        note = Text("note: ", style="bold")
        note.append(f"starting {', '.join(zeroed)} at 0 (no value given with --at)")
        make_console(stderr=True, soft_wrap=True).print(note)
    traj = Trajectory(every=every, warnings=list(warnings))
    records = descend(tape, point, names, lr=lr, steps=steps, optimizer=optimizer.value,
                      momentum=momentum, tol=tol)
    bar = _DescentBar(steps) if sys.stderr.isatty() else None
    try:
        for record in records:
            traj.add(record)
            warn(list(record.warnings))
            if bar is not None:
                bar.update(record.step, record.loss)
    except KeyboardInterrupt:
        traj.interrupt()
    finally:
        if bar is not None:
            bar.close()
    if traj.final is None:
        raise KeyboardInterrupt  # nothing computed yet: just "interrupted"
    if traj.stopped in ("diverged", "interrupted"):
        warn([traj.message])
    if as_json:
        _write(traj.to_json(text, names, optimizer.value, lr) + "\n")
    else:
        from .render.curve import render_descent

        console = make_console()
        render_descent(console, traj, digits)
        if traj.stopped in ("steps", "converged"):
            console.print(Text(f"{traj.message} ({optimizer.value}, --lr {lr:g})", style="dim"))
    if traj.stopped == "diverged":
        raise typer.Exit(1)
    if traj.stopped == "interrupted":
        raise typer.Exit(130)


class _DescentBar:
    """Descent's progress bar on stderr, with the current loss."""

    def __init__(self, total: int):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        self.progress = Progress(TextColumn("descent"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}", markup=False),
                                 TimeElapsedColumn(), console=make_console(stderr=True),
                                 transient=True)
        self.task = self.progress.add_task("descent", total=total, loss="…")
        self.progress.start()

    def update(self, step: int, loss: float) -> None:
        from .render.text import fmt

        self.progress.update(self.task, completed=step, loss=fmt(loss, 4))

    def close(self) -> None:
        self.progress.stop()


# -- check: analytic against numeric gradients, and grading hand answers ------------------------

CHECK_EXAMPLES = """Examples:

\b
  gradcli check "(x+y)*z" --at x=-2,y=5,z=-4
  gradcli check "(x+y)*z" --at x=-2,y=5,z=-4 --expect x=-4,y=-4,z=3
  gradcli check "q = x + y; f = q * z" --at x=-2,y=5,z=-4 --expect-node q=3 --expect-node 'grad q=-4'
  gradcli check samples/neuron.grad --at w0=2,x0=-1,w1=-3,x1=-2,w2=-3 --expect x0=0.39 --places 2
  gradcli eval "(x+y)*z" --at x=-2,y=5,z=-4 --json > table.json
  gradcli check "(x+y)*z" --answers table.json          (the point comes from the table)
\b
Exit status: 0 when everything agrees, 1 when anything does not, 2 for bad input.
"""


@app.command("check", cls=FormulaCommand, no_args_is_help=True, epilog=CHECK_EXAMPLES)
def check_command(
    formula: str = typer.Argument(
        ..., metavar="FORMULA",
        help="The formula, e.g. \"(x+y)*z\"; or a file (samples/neuron.grad); or - for stdin."),
    at: Optional[List[str]] = typer.Option(
        None, "--at", "-a", metavar="NAME=VALUE,...",
        help="The point: --at x=-2,y=5,z=-4 (repeatable), as for eval."),
    wrt: Optional[List[str]] = typer.Option(
        None, "--wrt", "-w", metavar="NAME,...",
        help="Check the gradient with respect to these variables only (default: all)."),
    expect: Optional[List[str]] = typer.Option(
        None, "--expect", "-e", metavar="NAME=GRAD,...",
        help="Grade a hand-computed gradient: --expect x=-4,y=-4,z=3 (1/3, pi, [1,2] work)."),
    expect_node: Optional[List[str]] = typer.Option(
        None, "--expect-node", metavar="NODE=VALUE",
        help="Grade a node's value (q=3) or gradient ('grad q=-4'); NODE is a name or #id."),
    answers: Optional[str] = typer.Option(
        None, "--answers", metavar="FILE",
        help="Grade a worked table: eval --json output, JSON {\"value\": {...}, \"grad\": "
             "{...}}, or text lines 'q value 3' / 'x grad -4'; - for stdin."),
    rtol: float = typer.Option(1e-6, "--rtol",
                               help="Relative tolerance for the check and for answers."),
    atol: float = typer.Option(1e-10, "--atol",
                               help="Absolute tolerance (for gradients near 0)."),
    places: Optional[int] = typer.Option(
        None, "--places", min=0, max=15,
        help="Accept answers rounded to this many decimals (|answer - correct| ≤ 0.5·10^-N)."),
    subgradient: Convention = typer.Option(
        Convention.cs231n, "--subgradient", case_sensitive=False,
        help="The slope at kinks: cs231n, half or zero (as for eval)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    digits: int = typer.Option(6, "--digits", min=1, max=17,
                               help="Significant digits in the report."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help="Seed for randn(...)/rand(...) values in --at."),
    max_nodes: int = typer.Option(
        MAX_NODES, "--max-nodes", min=0,
        help="Refuse formulas with more nodes than this (0: no limit)."),
) -> None:
    """Check FORMULA's gradient against central differences and grade hand-computed answers.

    Exit 0 when everything agrees (a kink, where no derivative exists, is reported and does not
    fail), 1 when anything does not, 2 for bad input."""
    from .check import check_text

    if answers == "-" and formula == "-":
        raise InputError("--answers - and the formula - cannot both come from standard input")
    text = read_formula(formula)
    check_nodes(text, max_nodes)
    if max_nodes and len(text) > max_nodes:  # only a long text can have too many nodes
        from .parse import parse

        check_nodes(text, max_nodes, len(parse(text)[0]))
    answers_text = None
    if answers == "-":
        answers_text = _decode(sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer")
                               else sys.stdin.read(), "standard input")
    report = check_text(text, at or [], wrt=_split_names(wrt), seed=seed, expect=expect or [],
                        expect_node=expect_node or [], answers=answers,
                        answers_text=answers_text, rtol=rtol, atol=atol, places=places,
                        subgradient=subgradient.value)
    warn(report.warnings)
    if as_json:
        _write(report.to_json() + "\n")
    else:
        from .render.checkout import render_check

        render_check(make_console(soft_wrap=True), report, digits)
    if not report.ok:
        raise typer.Exit(1)


# -- schema: the published JSON Schemas ----------------------------------------------------------

SCHEMA_EXAMPLES = """Examples:

\b
  gradcli schema                 (the schemas there are, one a line)
  gradcli schema eval            (the schema of eval --json)
  gradcli schema batch           (one JSON Lines row of eval --points FILE --json)
"""


def _schema_files() -> dict[str, object]:
    """The schemas shipped in the package, by name (eval, check, descend, batch, ...)."""
    from importlib import resources

    folder = resources.files("gradcli").joinpath("schemas")
    suffix = ".schema.json"
    return {p.name[: -len(suffix)]: p for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(suffix)}


@app.command("schema", epilog=SCHEMA_EXAMPLES)
def schema_command(
    name: Optional[str] = typer.Argument(
        None, metavar="NAME",
        help="Which output: eval, check, descend or batch (a JSON Lines row of --points). "
             "Without NAME: the list."),
) -> None:
    """Print the JSON Schema (draft 2020-12) that a command's --json output follows."""
    schemas = _schema_files()
    if name is None:
        import json

        for key, path in schemas.items():
            title = json.loads(path.read_text(encoding="utf-8")).get("title", "")
            _write(f"{key:<10} {title}\n")
        return
    path = schemas.get(name.strip().lower())
    if path is None:
        shown = name if len(name) <= 40 else name[:39] + "…"
        raise InputError(f"no schema named {shown!r}; there are: {', '.join(schemas)}")
    _write(path.read_text(encoding="utf-8"))


def main(argv: Optional[list[str]] = None) -> int:
    """The console script: run the app, turning every failure into a message and exit code."""
    try:
        app(args=argv, prog_name="gradcli", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    return 0


def _guard(func):
    """Map our errors (and anything unexpected) to one line on stderr and an exit code."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except GradcliError as exc:
            fail(exc.render(), exc.exit_code)
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise typer.Exit(0)
        except KeyboardInterrupt:
            sys.stderr.write("gradcli: interrupted\n")
            raise typer.Exit(130)
        except MemoryError:
            fail("out of memory: the formula or its output is too large for this machine")
        except RecursionError:  # pragma: no cover - the core does not recurse
            fail("internal error: recursion too deep (please report this formula)", EXIT_INTERNAL)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
            fail(f"internal error: {type(exc).__name__}: {exc} (please report this command)",
                 EXIT_INTERNAL)

    return wrapper


def _quiet_broken_pipe() -> None:
    # The reader went away (gradcli ... | head): stop quietly, as Unix tools do.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# Wrap every command after registration, keeping Typer's view of the signatures.
for _info in app.registered_commands:
    _info.callback = _guard(_info.callback)
