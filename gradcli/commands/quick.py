"""The plainest JSON command lines, run without Typer: a cold start pays Python, gradcli's
own modules and the formula, not the ~35 ms of importing Typer and Click (issue 17.1).

    gradcli eval  FORMULA --json [--at NAME=VALUE,...]... [--wrt NAME,...]...
    gradcli check FORMULA --json [--at NAME=VALUE,...]... [--wrt NAME,...]...
    gradcli diff  FORMULA --json [--at NAME=VALUE,...]... [--wrt NAME,...]...

in any order, with `--at=...` / `--wrt=...` too, are read here and computed with the very calls
the commands make with their defaults (commands/eval.py: load_arg, run_session,
eval_json_pieces; commands/check.py: load_arg, check_session, check_json; commands/diff.py:
load_arg, diff_session, diff_json). Any other argument (an option, a short flag, a second
formula, '-', '--'), a completion request, or anything that raises while computing (a bad
formula, a missing file, a bad --at value) gives None, nothing having been written: the Typer
app (cliapp.py) then runs the command line from the start and says what it always said. The
output is written by cli.main as the commands write it (eval's JSON piece by piece, each made
as it is written, as commands/eval.py does), a failure while writing or making a piece reported
as the app reports it. tests/test_cold_start.py runs command lines both ways and compares every
byte and exit code.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional

#: The commands this path runs.
COMMANDS = ("eval", "check", "diff")


def read_argv(argv: list[str]) -> Optional[tuple[str, str, Optional[list], Optional[list]]]:
    """(command, formula, --at values, --wrt values) of a command line this path takes."""
    if len(argv) < 3 or argv[0] not in COMMANDS:
        return None
    formula = None
    json = False
    at: list[str] = []
    wrt: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--json" and not json:
            json = True
        elif arg in ("--at", "--wrt"):
            if i + 1 == len(argv) or argv[i + 1].startswith("-"):
                return None  # (Click would take it as the value; the app says what it means)
            (at if arg == "--at" else wrt).append(argv[i + 1])
            i += 1
        elif arg.startswith(("--at=", "--wrt=")):
            key, _, value = arg.partition("=")
            (at if key == "--at" else wrt).append(value)
        elif arg.startswith("-") or formula is not None:
            return None  # another option, '-' (stdin), '--', or a second argument
        else:
            formula = arg
        i += 1
    if formula is None or not json:
        return None
    return argv[0], formula, at or None, wrt or None


def prepare(argv: list[str]) -> Optional[tuple[list[str], "str | Iterator[str]", int]]:
    """The warnings, the JSON document and the exit code of `argv` if it is one of this path's
    command lines, computed and not yet written (eval's document: its pieces, each made as it
    is written, as commands/eval.py writes them); None: the app's turn (nothing was written).
    cli.main writes them (render.console's warn and write, as the commands do)."""
    if os.environ.get("_GRADCLI_COMPLETE"):
        return None  # shell completion: Click's
    read = read_argv(argv)
    if read is None:
        return None
    command, formula, at, wrt = read
    try:
        return _RUN[command](formula, at, wrt)
    except Exception:  # noqa: BLE001 - whatever it is, the app does it again and says so
        return None


def _eval(formula: str, at, wrt) -> tuple[list[str], Iterator[str], int]:
    """`gradcli eval FORMULA --json` as commands/eval.py runs it with its defaults: the document
    in pieces, each made as it is written (a 10^6-node one is never held whole, and is made
    by two processes: render/forked.py)."""
    from ..render.jsonout import eval_json_pieces
    from ..result import run_session
    from ..session import MAX_NODES, load_arg, split_names

    s = load_arg(formula, at, seed=None, max_nodes=MAX_NODES, wrt=split_names(wrt), exact=False)
    result = run_session(s, mode="reverse", subgradient="cs231n", floats=True)
    return result.warnings, eval_json_pieces(result), 0


def _check(formula: str, at, wrt) -> tuple[list[str], str, int]:
    """`gradcli check FORMULA --json` as commands/check.py runs it with its defaults."""
    from ..check import check_session
    from ..check.report import DEFAULT_ATOL, MAX_ELEMENTS
    from ..render.jsonout import check_json
    from ..render.names import output_names
    from ..session import MAX_NODES, load_arg, split_names

    s = load_arg(formula, at, seed=None, max_nodes=MAX_NODES, wrt=split_names(wrt), exact=False)
    report = check_session(s, expect=[], expect_node=[], answers=None, answers_text=None,
                           rtol=None, atol=DEFAULT_ATOL, places=None, subgradient="cs231n",
                           outputs=output_names(s.tape), max_elements=MAX_ELEMENTS)
    return report.warnings, check_json(report), 0 if report.ok else 1


def _diff(formula: str, at, wrt) -> tuple[list[str], str, int]:
    """`gradcli diff FORMULA --json` as commands/diff.py runs it with its defaults (--order 1)."""
    from ..diff import diff_session
    from ..render.jsonout import diff_json
    from ..session import MAX_NODES, load_arg, split_names

    s = load_arg(formula, at, seed=None, max_nodes=MAX_NODES, wrt=split_names(wrt))
    r = diff_session(s, 1)
    return r.warnings, diff_json(r), 0


_RUN = {"eval": _eval, "check": _check, "diff": _diff}
