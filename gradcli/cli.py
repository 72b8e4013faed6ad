"""The command line's entry point: `main()`, the console script (and `python -m gradcli`).

Every command line goes to the Typer app (gradcli/cliapp.py: the commands, formulas that start
with '-', the one guard that maps errors to exit codes), except the plainest JSON ones, which
commands/quick.py computes without importing Typer (about 35 ms of a cold start) and main
writes: `gradcli eval`, `check` or `diff` of a formula with --json and nothing but --at and
--wrt. Whatever quick.py cannot finish exactly as the app would, before anything is printed, it
leaves to the app.

`from gradcli.cli import app` (and the app module's other names) still works: they are loaded
from cliapp on first use.
"""

from __future__ import annotations

import signal
import sys
from typing import Optional

EXIT_USAGE = 2


def main(argv: Optional[list[str]] = None) -> int:
    """The console script: run the app, turning every failure into a message and exit code.

    Closed standard streams get stand-ins first; what fails outside a command (--help or
    --version into a full disk, Ctrl-C while Click reads the options, the last flush) ends in
    one line and exit 2 (130 for Ctrl-C), never a traceback."""
    from .render.console import drop_stdout, ensure_stdio, io_failure, say, settle_stdout

    ensure_stdio()
    try:  # the package's quiet Ctrl-C of start-up (gradcli/__init__.py) ends here
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # pragma: no cover - not the main thread
        pass
    try:
        from .commands.quick import prepare

        ready = prepare(sys.argv[1:] if argv is None else argv)
        if ready is None:
            from .cliapp import run_app

            code = run_app(argv)
        else:
            code = _write(*ready)
        sys.stdout.flush()
    except KeyboardInterrupt:
        say("gradcli: interrupted")
        return 130
    except BrokenPipeError:
        drop_stdout()
        return 0
    except (OSError, UnicodeEncodeError) as exc:
        settle_stdout()
        say(f"gradcli: error: {io_failure(exc)}")
        return EXIT_USAGE
    return code


def _write(warnings: list[str], doc, code: int) -> int:
    """commands/quick.py's output, written as the commands write it (`doc`: the document, or
    its pieces, each made as it is written). A failure while writing is reported as the app
    reports it: a closed pipe, a full disk or Ctrl-C by main (the same words as the app's
    guard), anything else (out of memory, the unexpected) by the app's guard."""
    from .render.console import warn, write

    try:
        warn(warnings)
        if isinstance(doc, str):
            write(doc + "\n")
        else:
            for piece in doc:  # as commands/eval.py writes them
                write(piece)
            write("\n")
    except (BrokenPipeError, OSError, UnicodeEncodeError):
        raise
    except Exception as exc:  # noqa: BLE001
        return _as_the_app_says(exc)
    return code


def _as_the_app_says(exc: Exception) -> int:
    """The exit code (and the message, and the JSON error) of the app's guard for `exc`."""
    import typer

    from .cliapp import _guard

    def again(**options):
        raise exc

    try:
        _guard(again)(as_json=True)
    except typer.Exit as done:
        return done.exit_code
    return 0  # pragma: no cover - the guard always ends in an exit


def __getattr__(name: str):
    # app, fail, FormulaCommand, ...: the Typer app's module, loaded on first use
    if name.startswith("__"):
        raise AttributeError(name)
    from . import cliapp

    try:
        return getattr(cliapp, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
