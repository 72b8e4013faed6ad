"""gradcli: a command-line gradient calculator for formulas."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["evaluate", "Result", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `gradcli --version` and `--help` import neither numpy nor lark.
    if name in ("evaluate", "Result"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
