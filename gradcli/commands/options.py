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


class Mode(str, Enum):
    reverse = "reverse"
    forward = "forward"
    both = "both"


class Convention(str, Enum):
    cs231n = "cs231n"
    half = "half"
    zero = "zero"


FormulaArg = Annotated[str, typer.Argument(
    metavar="FORMULA",
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

JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print the output as JSON (eval: same as --format json).")]

SubgradientOpt = Annotated[Convention, typer.Option(
    "--subgradient", case_sensitive=False,
    help="The slope at kinks: cs231n (max ties give 1 to each, relu'(0)=0), half (ties "
         "share, relu'(0)=1/2) or zero.")]

__all__ = ["AtOpt", "Convention", "DigitsOpt", "Format", "FormulaArg", "JsonOpt", "MAX_NODES",
           "MaxNodesOpt", "Mode", "SeedOpt", "SubgradientOpt", "WrtOpt"]
