"""`gradcli descend`: gradient descent with a progress bar, the loss curve and the final point."""

import sys
from enum import Enum
from typing import Annotated, List, Optional

import typer

from ..session import MAX_NODES, load_arg, split_names
from .options import DigitsOpt, JsonOpt, MaxNodesOpt, SeedOpt, complete_grad_files

NAME = "descend"
FORMULA = True
EXAMPLES = """Examples:

\b
  gradcli descend "(w-3)^2 + (v+1)^2" --at w=0,v=0 --wrt w,v --lr 0.1 --steps 100
  gradcli descend samples/descend_neuron.grad --steps 500 --json
  gradcli descend "(w-3)^2 + 10*(v+1)^2" --optimizer adam --lr 0.3 --steps 200
  gradcli descend "x^2" --at x=1 --lr 1.5 --steps 1000     (diverges: exit 1)
"""


class Method(str, Enum):
    gradient = "gradient"
    newton = "newton"


class Optimizer(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


def command(
    formula: Annotated[str, typer.Argument(
        metavar="FORMULA", autocompletion=complete_grad_files,
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
    method: Annotated[Method, typer.Option(
        "--method", case_sensitive=False,
        help="gradient (the --optimizer's steps) or newton: θ ← θ − t·H⁻¹∇L, damped by a line "
             "search, H + μI where H is not positive definite (said on stderr); no --lr.")
    ] = Method.gradient,
    tol: Annotated[float, typer.Option("--tol", help="Stop early once ‖∇L‖ ≤ TOL.")] = 0.0,
    every: Annotated[Optional[int], typer.Option(
        "--every", min=1, help="Keep every Nth step in the record (JSON and table); default: "
        "every step up to 1000 steps, else about 1000 of them (--steps ÷ 1000).")] = None,
    plot: Annotated[Optional[str], typer.Option(
        "--plot", metavar="FILE.svg|png|pdf",
        help="Draw the descent: two parameters, the path on the loss's contour lines; more, "
             "the loss curve and each parameter (needs matplotlib: gradcli[plot]).")] = None,
    compare: Annotated[Optional[List[str]], typer.Option(
        "--compare", metavar="OPT,OPT,...",
        help="Run several optimisers from the same start (sgd,momentum,adam) and draw them on "
             "one --plot; prints a line for each.")] = None,
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
    every = every or compute.default_every(steps)
    point, names, zeroed = compute.starting_point(s.tape, s.point, split_names(wrt))
    warn(s.warnings)
    if zeroed:
        note(f"starting {', '.join(zeroed)} at 0 (no value given with --at)")
    if plot is not None or compare:
        from . import descend_plot

        rivals = descend_plot.parse_compare(compare)
        descend_plot.check_plot(plot)
        if rivals:
            settings = {"lr": lr, "steps": steps, "momentum": momentum, "tol": tol}
            code = descend_plot.run_compare(s, point, names, rivals, settings, every, plot,
                                            as_json, digits)
            raise typer.Exit(code)
    traj = compute.Trajectory(every=every, warnings=list(s.warnings))
    records = compute.descend(s.tape, point, names, lr=lr, steps=steps,
                              optimizer=optimizer.value, momentum=momentum, tol=tol,
                              method=method.value)
    if method is Method.newton:  # what the output calls the method
        optimizer = Method.newton
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
            how = "newton" if method is Method.newton else f"{optimizer.value}, --lr {lr:g}"
            console.print(Text(f"{traj.message} ({how})", style="dim"))
    if plot is not None:
        from .descend_plot import draw
        from ..render.plot import Run

        label = method.value if method is Method.newton else optimizer.value
        warn(draw(s.tape, point, names, [Run(label, lr, traj)], s.text, plot))
        note(f"wrote {plot}")
    if traj.stopped == "diverged":
        raise typer.Exit(1)
    if traj.stopped == "interrupted":
        raise typer.Exit(130)
