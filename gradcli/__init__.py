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


#: What the command sets in its own environment before numpy loads, unless the user set it: OpenBLAS
#: (numpy's BLAS) then lets its threads sleep 2^20 cycles after a call instead of spinning 2^28
#: (~0.1 s), a core each, while gradcli's own threads want the cores (gradcli/lanes.py). Issue
#: 17's two-layer net on 2 cores: 0.63-0.82x hand numpy with it, 0.88-1.01x without.
_COMMAND_ENVIRONMENT = {"OPENBLAS_THREAD_TIMEOUT": "20"}

# Run as the command (`gradcli ...`, `python -m gradcli`), a Ctrl-C while the rest is still being
# imported ends quietly with 130 rather than a traceback from inside an import; cli.main() sets
# the usual handling once it runs; and _COMMAND_ENVIRONMENT is set. Imported as a library, nothing
# is changed.
if _sys.argv and (_sys.argv[0] == "-m" or _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1]
                  in ("gradcli", "gradcli.exe")):
    try:
        import _signal

        _signal.signal(_signal.SIGINT, _quiet_interrupt)
    except (ImportError, ValueError, TypeError):  # pragma: no cover - not the main thread
        pass
    if "numpy" not in _sys.modules:  # read when numpy loads OpenBLAS; later it changes nothing
        import os as _os

        for _name, _value in _COMMAND_ENVIRONMENT.items():
            _os.environ.setdefault(_name, _value)

__all__ = ["evaluate", "Result", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `gradcli --version` and `--help` import neither numpy nor lark.
    if name in ("evaluate", "Result"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
