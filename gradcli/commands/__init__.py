"""One module per command: its options, `session.load(...)`, one compute call, one renderer.

cli.py registers them (`COMMANDS`, in the order `gradcli --help` lists them). A module holds
`NAME`, `EXAMPLES` (the help's epilog), `FORMULA` (whether its first argument is a formula that
may start with '-') and `command`, the Typer callback; heavy imports stay inside `command`.
`quick.py` runs the plainest `eval --json` and `check --json` command lines without Typer.

The command modules import Typer, so they are loaded on first use of `COMMANDS` (the app's
registration), not with this package (which quick.py is part of).
"""

#: The commands' module names, in help order.
NAMES = ("eval", "diff", "graph", "descend", "check", "schema")


def __getattr__(name: str):
    if name == "COMMANDS":
        import importlib

        return tuple(importlib.import_module(f"{__name__}.{n}") for n in NAMES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
