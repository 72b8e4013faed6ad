"""The command line (Typer): the app, formulas that start with '-', and the one guard that maps
errors to exit codes. The commands are in gradcli/commands/, one module each.

Heavy imports (numpy, lark, rich) happen inside the commands, so `gradcli --help` and
`gradcli --version` stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer
from typer.core import TyperCommand

from . import __version__
from .commands import COMMANDS
from .errors import GradcliError

# Old homes of names now in session.py (tests and scripts import them from here).
from .session import (MAX_FORMULA_BYTES, MAX_NODES, check_nodes,  # noqa: F401
                      nodes_at_least, read_formula)

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


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print an error to stderr and leave with `code`."""
    sys.stderr.write(f"gradcli: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


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


def _register() -> None:
    """Register the commands (gradcli/commands/, in help order), each behind the one guard."""
    for module in COMMANDS:
        formula = module.FORMULA
        app.command(module.NAME, cls=FormulaCommand if formula else None,
                    no_args_is_help=formula, epilog=module.EXAMPLES)(module.command)
    # Wrap every command after registration, keeping Typer's view of the signatures.
    for info in app.registered_commands:
        info.callback = _guard(info.callback)


_register()
