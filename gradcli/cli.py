"""The command line's entry point: `console()`, the console script (and `python -m gradcli`),
which runs `main()` and then ends the process at once (`leave`).

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
        from .commands import spare
        from .commands.quick import prepare

        ready = prepare(sys.argv[1:] if argv is None else argv)
        spare(ready)
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


def console() -> None:
    """The console script and `python -m gradcli`: main(), then the process ends (`leave`),
    with what the command made kept to the end (commands.SPARE)."""
    from . import commands

    commands.SPARE = []
    leave(main())


def leave(code: int) -> None:
    """End the process with `code` as Python would, without freeing every object first: after
    a 10^6-node eval, taking the tape, values and texts apart object by object takes 0.15 s
    after the last byte is written (mypy ends the same way, for the same reason). What a normal
    exit does that anyone can see still happens: the atexit functions run (multiprocessing's,
    logging's, finalizers of temporary folders) and the standard streams are flushed. Where
    another thread that is not a daemon still runs (the lanes' pool: Python waits for it), or
    a flush fails (Python reports that itself), the normal exit."""
    import threading

    if type(code) is not int:  # pragma: no cover - main gives an int
        sys.exit(code)
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving: a late Ctrl-C has nothing to stop
    except ValueError:  # pragma: no cover - not the main thread
        pass
    import atexit
    import os

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - Python's own exit reports it
        sys.exit(code)
    os._exit(code)


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
            try:
                for piece in doc:  # as commands/eval.py writes them
                    write(piece)
            finally:  # stopped early (a closed pipe, Ctrl-C): the maker's forked child ends now
                doc.close()
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
