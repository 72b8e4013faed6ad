"""The Typer app of the command line: formulas that start with '-', and the one guard that maps
errors to exit codes. The commands are in gradcli/commands/, one module each; the console script
is cli.main, which runs this app (`run_app`) for every command line that commands/quick.py does
not take.

Heavy imports (numpy, lark, rich) happen inside the commands, so `gradcli --help` and
`gradcli --version` stay fast.
"""

import os
import sys
from contextlib import contextmanager
from typing import Optional

import typer
from typer.core import TyperCommand

from . import __version__
from .commands import COMMANDS
from .errors import GradcliError

EXIT_USAGE = 2
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")  # --show-completion SHELL
EXIT_INTERNAL = 3


class FormulaCommand(TyperCommand):
    """A command whose formula may start with '-' (`gradcli eval "-x^2" --at x=3`).

    Click would take "-x^2" for an option; an argument that starts with '-' and is no option
    of this command is moved behind a '--', where Click reads it as the formula.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        from .commands.options import optional_values

        return super().parse_args(ctx, _move_dash_formula(self, ctx, optional_values(list(args))))

    def make_context(self, info_name, args, parent=None, **extra):
        """Click's usage errors (an unknown option, a bad value) as JSON too under --json."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            # Click's UsageError (Typer may carry its own copy of Click: matched by its traits)
            if getattr(exc, "exit_code", None) == EXIT_USAGE and hasattr(exc, "format_message") \
                    and _argv_wants_json(list(args)):
                _print_json_error("usage", exc.format_message())
            raise


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
    """`eval -- "-x^2" --at x=3`: options written after '--' are moved before it. The first
    argument after '--' is the formula even when it reads as an option (`-- -w`, `-- -h`)."""
    k = args.index("--")
    before, after, rest = args[:k], args[k + 1 : k + 2], args[k + 2 :]
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
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
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


def _argv_wants_json(args: list[str]) -> bool:
    """Whether a command line asks for JSON: --json, --format json, -f json, --format=json."""
    if "--" in args:
        args = args[: args.index("--")]
    for k, arg in enumerate(args):
        if arg == "--json" or arg in ("--format=json", "-fjson"):
            return True
        if arg in ("--format", "-f") and k + 1 < len(args) and args[k + 1].lower() == "json":
            return True
    return False


def _wants_json(kwargs: dict) -> bool:
    """Whether a command's parsed options ask for JSON (--json or --format json)."""
    fmt = kwargs.get("fmt")
    return kwargs.get("as_json") is True or getattr(fmt, "value", fmt) == "json"


def _print_json_error(kind: str, message: str, line: int | None = None,
                      column: int | None = None) -> None:
    """The error as a JSON document on stdout, for `| jq` (the message still goes to stderr)."""
    from .render.jsonout import error_json

    try:
        sys.stdout.write(error_json(kind, message, line, column) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print an error to stderr (if it is still open) and leave with `code`."""
    from .render.console import say

    say(f"gradcli: error: {message}")
    raise typer.Exit(code)


def run_app(argv: Optional[list[str]]) -> int:
    """Run the Typer app on `argv` (None: sys.argv[1:]); the exit code."""
    named = _named_shell(sys.argv[1:] if argv is None else argv)
    try:
        if named:  # Click's own instruction prints that shell's completion script
            os.environ["_GRADCLI_COMPLETE"] = f"source_{named}"
        with _only_the_command(sys.argv[1:] if argv is None else argv):
            app(args=argv, prog_name="gradcli", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    finally:
        if named:
            os.environ.pop("_GRADCLI_COMPLETE", None)
    return 0


@contextmanager
def _only_the_command(args: list[str]):
    """`gradcli eval ...` builds Click's view of `eval` alone: Typer turns every registered
    command's signature into Click parameters on each run (~10 ms of a cold start for six).
    Help, completion and anything else see them all."""
    full = list(app.registered_commands)
    if args and not os.environ.get("_GRADCLI_COMPLETE"):
        app.registered_commands[:] = [i for i in full if i.name == args[0]] or full
    try:
        yield
    finally:
        app.registered_commands[:] = full


def _named_shell(args: list[str]) -> Optional[str]:
    """`gradcli --show-completion zsh`: Typer's flag prints the script of the shell it runs in
    (and would ignore the name); a named shell gets its own script."""
    if len(args) == 2 and args[0] == "--show-completion" and args[1] in SHELLS:
        return args[1]
    return None


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
            if _wants_json(kwargs):
                _print_json_error(exc.kind, exc.message, getattr(exc, "line", None),
                                  getattr(exc, "column", None))
            fail(exc.render(), exc.exit_code)
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise typer.Exit(0)
        except KeyboardInterrupt:
            from .render.console import say

            say("gradcli: interrupted")
            raise typer.Exit(130)
        except (OSError, UnicodeEncodeError) as exc:  # stdout closed or full; stdin closed;
            from .render.console import io_failure, settle_stdout  # an encoding such as latin-1

            settle_stdout()
            fail(io_failure(exc))
        except MemoryError:
            if _wants_json(kwargs):
                _print_json_error("limit", "out of memory")
            fail("out of memory: the formula or its output is too large for this machine")
        except RecursionError:  # pragma: no cover - the core does not recurse
            fail("internal error: recursion too deep (please report this formula)", EXIT_INTERNAL)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
            if _wants_json(kwargs):
                _print_json_error("internal", f"{type(exc).__name__}: {exc}")
            fail(f"internal error: {type(exc).__name__}: {exc} (please report this command)",
                 EXIT_INTERNAL)

    return wrapper


def _quiet_broken_pipe() -> None:
    # The reader went away (gradcli ... | head): stop quietly, as Unix tools do.
    from .render.console import drop_stdout

    drop_stdout()


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
