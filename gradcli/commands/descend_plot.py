"""`descend --plot FILE` and `--compare A,B,...`: several descents, the loss surface, the picture.

Not a command of its own: commands/descend.py calls it. Each compared optimiser runs from the
same start with the same settings; its kept steps (the Trajectory) are the path that is drawn.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import UsageError


def methods() -> tuple[str, ...]:
    """The optimisers --compare takes: descend's own, and newton where descend has it."""
    from .. import descend as compute

    import inspect

    names = tuple(compute.OPTIMIZERS)
    if "method" in inspect.signature(compute.descend).parameters:
        names += ("newton",)  # descend(..., method="newton"): damped Newton steps
    return names


def parse_compare(values: Sequence[str] | None) -> list[str]:
    """--compare sgd,momentum,adam as a list of optimiser names, each known, none twice."""
    if not values:
        return []
    names = [n.strip().lower() for v in values for n in v.split(",") if n.strip()]
    known = methods()
    for n in names:
        if n not in known:
            raise UsageError(f"--compare {n}: not an optimiser; use some of {', '.join(known)}")
    if len(set(names)) != len(names):
        raise UsageError("--compare names an optimiser twice")
    if not names:
        raise UsageError("--compare needs optimiser names, such as sgd,momentum,adam")
    return names


def compare(tape, point, names, optimizers: Sequence[str], settings: dict, every: int):
    """Run descent once per optimiser from the same point; a plot Run for each."""
    from .. import descend as compute
    from ..render.plot import Run

    runs = []
    for name in optimizers:
        traj = compute.Trajectory(every=every)
        options = dict(settings)
        if name in compute.OPTIMIZERS:
            options["optimizer"] = name
        else:
            options["method"] = name
        try:
            for record in compute.descend(tape, point, names, **options):
                traj.add(record)
        except KeyboardInterrupt:
            traj.interrupt()
            runs.append(Run(name, settings["lr"], traj))
            raise
        runs.append(Run(name, settings["lr"], traj))
    return runs


def check_plot(path: str | None) -> None:
    """Refuse a --plot file name or a missing matplotlib before any descent runs."""
    if path is None:
        return
    from ..render.plot import plot_format, require_matplotlib

    plot_format(path)
    require_matplotlib()


def draw(tape, point, names, runs, expression: str, path: str) -> list[str]:
    """The picture: contour lines for two scalar parameters, curves otherwise. Returns the
    warnings to show (contours left out)."""
    from ..render.plot import draw_descent, path_points, scalar_pair

    check_plot(path)
    warnings = []
    grid = None
    if scalar_pair(runs[0].trajectory, names):
        from .. import surface
        from ..errors import InputError

        box = surface.frame([path_points(r.trajectory, names) for r in runs])
        try:
            grid = surface.loss_grid(tape, point, names, box)
        except InputError as exc:
            warnings.append(f"--plot: no contour lines ({exc.message}); the path is drawn alone")
    draw_descent(runs, names, expression, path, grid)
    return warnings


def run_compare(s, point, names, optimizers: Sequence[str], settings: dict, every: int,
                plot: str | None, as_json: bool, digits: int) -> int:
    """`descend --compare`: every optimiser from the same start, a summary line each, and the
    picture; returns the exit status (1 if any diverged)."""
    from ..render.console import make_console, note, warn
    from ..render.plot import render_compare

    if as_json:
        raise UsageError("--compare prints a summary and draws a --plot; --json describes one "
                         "descent: run one --optimizer at a time for JSON")
    runs = compare(s.tape, point, names, optimizers, settings, every)
    for run in runs:
        warn([w for w in run.trajectory.warnings if w not in s.warnings])
    render_compare(make_console(), runs, names, digits)
    if plot is not None:
        warn(draw(s.tape, point, names, runs, s.text, plot))
        note(f"wrote {plot}")
    return 1 if any(r.trajectory.stopped == "diverged" for r in runs) else 0
