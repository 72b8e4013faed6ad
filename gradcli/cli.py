"""The command line (Typer). Only this module maps errors to exit codes.

Heavy imports (numpy, lark, rich) happen inside the commands, so `gradcli --help` and
`gradcli --version` stay fast.
"""

from __future__ import annotations

import os
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
        if len(arg) > 2 and arg[:2] in takes_value:  # -afoo: a short option with its value
            i += 1
            continue
        # Not an option of ours: a formula such as "-x*y" or "-3".
        rest = args[:i] + args[i + 1 :]
        if "--" in rest:
            k = rest.index("--")
            return rest[: k + 1] + [arg] + rest[k + 1 :]
        return rest + ["--", arg]
    return args


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


def read_formula(arg: str) -> str:
    """The formula itself, or the contents of the file it names, or stdin for '-'."""
    if arg == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        return _decode(data, "standard input")
    looks_like_path = arg.endswith(".grad") or os.sep in arg or "/" in arg
    if os.path.isfile(arg) and (looks_like_path or "." in arg):
        try:
            with open(arg, "rb") as fh:
                return _decode(fh.read(), arg)
        except OSError as exc:
            raise InputError(f"cannot read {arg}: {exc.strerror}") from None
    if arg.endswith(".grad"):
        raise InputError(f"no such file: {arg}")
    return arg


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
    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap,
                   **({"color_system": None} if plain else {}))


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
        help="The point: --at x=-2,y=5,z=-4 (repeatable). Values: 3, -2.5, 1e-3, 1/3, pi, e."),
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
) -> None:
    """Evaluate FORMULA at a point and backpropagate: value, gradient, and every node."""
    from .api import evaluate_text

    text = read_formula(formula)
    result = evaluate_text(text, at or [], _split_names(wrt))
    chosen = Format.json if as_json else fmt
    if chosen is Format.json:
        warn(result.warnings)
        _write(result.to_json() + "\n")
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


def _write(text: str) -> None:
    out = sys.stdout
    for k in range(0, len(text), 1 << 20):
        out.write(text[k : k + (1 << 20)])
    out.flush()


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
