"""Options and arguments shared by several commands, declared once (one help text each).

A command writes `at: AtOpt = None`; the default is the parameter's own, the rest is here.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, List, Optional

import typer

from ..session import MAX_NODES


class Format(str, Enum):
    table = "table"
    json = "json"
    tree = "tree"
    dot = "dot"
    mermaid = "mermaid"
    latex = "latex"
    html = "html"


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"


class Mode(str, Enum):
    reverse = "reverse"
    forward = "forward"
    both = "both"


class Convention(str, Enum):
    cs231n = "cs231n"
    half = "half"
    zero = "zero"


class BatchFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


#: Options whose value may be left out (`--keep` alone keeps every column, `--dask` alone starts
#: a local cluster): Typer has no optional values, so the argv gets the stand-in first.
OPTIONAL_VALUES = {"--keep": "*", "--dask": "local"}


def optional_values(args: list[str]) -> list[str]:
    """`--keep` or `--dask` with no value (last, or before another option) -> `--keep=*`,
    `--dask=local`; anything after `--` is left alone."""
    out = []
    for k, arg in enumerate(args):
        if arg == "--":
            return out + args[k:]
        if arg in OPTIONAL_VALUES and (k + 1 == len(args) or args[k + 1].startswith("-")):
            arg = f"{arg}={OPTIONAL_VALUES[arg]}"
        out.append(arg)
    return out


def complete_grad_files(incomplete: str) -> list[str]:
    """Tab completion of FORMULA: the .grad files (and, beside them, folders) that start with
    what is typed. None: the shell completes file names its own way (and walks into folders)."""
    import os

    head, tail = os.path.split(incomplete)
    try:
        entries = sorted(os.scandir(os.path.expanduser(head) or "."), key=lambda e: e.name)
    except OSError:
        return []
    shown = [e for e in entries if e.name.startswith(tail)
             and (tail.startswith(".") or not e.name.startswith("."))]
    files = [os.path.join(head, e.name) for e in shown
             if e.name.endswith(".grad") and e.is_file()]
    if not files:
        return []
    return files + [os.path.join(head, e.name) + "/" for e in shown if e.is_dir()]


FormulaArg = Annotated[str, typer.Argument(
    metavar="FORMULA", autocompletion=complete_grad_files,
    help="The formula, e.g. \"(x+y)*z\"; or a file (samples/neuron.grad); or - for stdin.")]

AtOpt = Annotated[Optional[List[str]], typer.Option(
    "--at", "-a", metavar="NAME=VALUE,...",
    help="The point: --at x=-2,y=5,z=-4 (repeatable). Values: 3, -2.5, 1/3, pi, e; "
         "'w=[2,-3]', 'W=[[1,2],[3,4]]', W=@w.npy, W=@w.csv, @point.json, "
         "'W=randn(5,10)', zeros(3), ones(2,2).")]

WrtOpt = Annotated[Optional[List[str]], typer.Option(
    "--wrt", "-w", metavar="NAME,...",
    help="Differentiate with respect to these variables only (default: all).")]

SeedOpt = Annotated[Optional[int], typer.Option(
    "--seed", min=0, help="Seed for randn(...)/rand(...) values in --at.")]

DigitsOpt = Annotated[int, typer.Option(
    "--digits", min=1, max=17, help="Significant digits shown.")]

MaxNodesOpt = Annotated[int, typer.Option(
    "--max-nodes", min=0, help="Refuse formulas with more nodes than this (0: no limit).")]

OutputOpt = Annotated[Optional[str], typer.Option(
    "--output", "-o", metavar="FILE",
    help="Write to FILE instead of stdout (--format html: one self-contained page; --points: "
         ".csv, .jsonl or .parquet, a folder of Parquet parts with --dask).")]

JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print the output as JSON (eval: same as --format json).")]

SubgradientOpt = Annotated[Convention, typer.Option(
    "--subgradient", case_sensitive=False,
    help="The slope at kinks: cs231n (max ties give 1 to each, relu'(0)=0), half (ties "
         "share, relu'(0)=1/2) or zero.")]

__all__ = ["AtOpt", "BatchFormat", "CheckFormat", "Convention", "DigitsOpt", "Format",
           "FormulaArg", "JsonOpt", "MAX_NODES", "MaxNodesOpt", "Mode", "OutputOpt", "SeedOpt",
           "SubgradientOpt", "WrtOpt"]
