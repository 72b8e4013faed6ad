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

#: What the command made, kept to the end when the process ends right after the command
#: (cli.console sets a list; cli.leave ends the process): a 10^6-node tape and result are then
#: never taken apart object by object (0.1 s), the system frees the memory at once. None (the
#: default: tests and other in-process callers of cli.main): nothing is kept.
SPARE: list | None = None


def spare(*objects) -> None:
    """Keep `objects` to the end of the process, if it ends right after this command."""
    if SPARE is not None:
        SPARE.extend(objects)


def __getattr__(name: str):
    if name == "COMMANDS":
        import importlib

        return tuple(importlib.import_module(f"{__name__}.{n}") for n in NAMES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
