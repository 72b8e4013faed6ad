"""gradcli: a command-line gradient calculator for formulas."""

# No `from __future__ import annotations` here: on a cold start that statement imports the
# __future__ module, and a Ctrl-C landing in it (before the handler below is set) printed a
# traceback through this file. sys and _signal are built in: importing them runs no Python code.
import sys as _sys

__version__ = "0.1.0"


def _quiet_interrupt(signum, frame) -> None:  # pragma: no cover - timing
    import os

    os.write(2, b"gradcli: interrupted\n")
    os._exit(130)


# Run as the command (`gradcli ...`, `python -m gradcli`), a Ctrl-C while the rest is still being
# imported ends quietly with 130 rather than a traceback from inside an import; cli.main() sets
# the usual handling once it runs. Imported as a library, nothing is changed.
if _sys.argv and (_sys.argv[0] == "-m" or _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1]
                  in ("gradcli", "gradcli.exe")):
    try:
        import _signal

        _signal.signal(_signal.SIGINT, _quiet_interrupt)
    except (ImportError, ValueError, TypeError):  # pragma: no cover - not the main thread
        pass

__all__ = ["evaluate", "Result", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `gradcli --version` and `--help` import neither numpy nor lark.
    if name in ("evaluate", "Result"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
