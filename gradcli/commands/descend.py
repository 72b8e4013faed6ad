"""`gradcli descend`: gradient descent with a progress bar, the loss curve and the final point."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, List, Optional

import typer

from ..session import MAX_NODES, load_arg, split_names
from .options import DigitsOpt, JsonOpt, MaxNodesOpt, SeedOpt

NAME = "descend"
FORMULA = True
EXAMPLES = """Examples:

\b
  gradcli descend "(w-3)^2 + (v+1)^2" --at w=0,v=0 --wrt w,v --lr 0.1 --steps 100
  gradcli descend samples/descend_neuron.grad --steps 500 --json
  gradcli descend "(w-3)^2 + 10*(v+1)^2" --optimizer adam --lr 0.3 --steps 200
  gradcli descend "x^2" --at x=1 --lr 1.5 --steps 1000     (diverges: exit 1)
"""


class Optimizer(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


def command(
    formula: Annotated[str, typer.Argument(
        metavar="FORMULA",
        help="The loss, one scalar output; or a file (samples/descend_neuron.grad); or -.")],
    at: Annotated[Optional[List[str]], typer.Option(
        "--at", "-a", metavar="NAME=VALUE,...",
        help="The starting point (repeatable); parameters it leaves out start at 0.")] = None,
    wrt: Annotated[Optional[List[str]], typer.Option(
        "--wrt", "-w", metavar="NAME,...",
        help="The parameters to move (default: every variable); the others stay fixed.")
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="The learning rate η in θ ← θ − η∇L.")] = 0.1,
    steps: Annotated[int, typer.Option("--steps", min=0, help="How many updates to make.")] = 100,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", case_sensitive=False,
        help="sgd (plain θ ← θ − η∇L), momentum (heavy ball, see --momentum) or adam.")
    ] = Optimizer.sgd,
    momentum: Annotated[float, typer.Option(
        "--momentum", help="μ for --optimizer momentum.")] = 0.9,
    tol: Annotated[float, typer.Option("--tol", help="Stop early once ‖∇L‖ ≤ TOL.")] = 0.0,
    every: Annotated[int, typer.Option(
        "--every", min=1, help="Keep every Nth step in the record (JSON and table).")] = 1,
    as_json: JsonOpt = False,
    digits: DigitsOpt = 6,
    seed: SeedOpt = None,
    max_nodes: MaxNodesOpt = MAX_NODES,
) -> None:
    """Minimise FORMULA by gradient descent, θ ← θ − η∇L: a progress bar, the loss curve,
    a table of steps and the final parameters. Exit 1 if the loss stops being finite."""
    from .. import descend as compute
    from ..render.console import DescentBar, make_console, note, warn, write

    s = load_arg(formula, at, seed=seed, max_nodes=max_nodes, wrt=None)
    point, names, zeroed = compute.starting_point(s.tape, s.point, split_names(wrt))
    warn(s.warnings)
    if zeroed:
        note(f"starting {', '.join(zeroed)} at 0 (no value given with --at)")
    traj = compute.Trajectory(every=every, warnings=list(s.warnings))
    records = compute.descend(s.tape, point, names, lr=lr, steps=steps,
                              optimizer=optimizer.value, momentum=momentum, tol=tol)
    bar = DescentBar(steps) if sys.stderr.isatty() else None
    try:
        for record in records:
            traj.add(record)
            warn(list(record.warnings))
            if bar is not None:
                bar.update(record.step, record.loss)
    except KeyboardInterrupt:
        traj.interrupt()
    finally:
        if bar is not None:
            bar.close()
    if traj.final is None:
        raise KeyboardInterrupt  # nothing computed yet: just "interrupted"
    if traj.stopped in ("diverged", "interrupted"):
        warn([traj.message])
    if as_json:
        from ..render.jsonout import descend_json

        write(descend_json(traj, s.text, names, optimizer.value, lr) + "\n")
    else:
        from rich.text import Text

        from ..render.curve import render_descent

        console = make_console()
        render_descent(console, traj, digits)
        if traj.stopped in ("steps", "converged"):
            console.print(Text(f"{traj.message} ({optimizer.value}, --lr {lr:g})", style="dim"))
    if traj.stopped == "diverged":
        raise typer.Exit(1)
    if traj.stopped == "interrupted":
        raise typer.Exit(130)
