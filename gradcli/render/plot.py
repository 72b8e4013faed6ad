"""`descend --plot`: the descent path on the loss surface's contour lines, as SVG, PNG or PDF.

Two parameters: contour lines over a window that frames the path(s), the path θ⁰ → θ¹ → … as
connected points, start and end marked, the minimum found, optimiser and lr in the title, and
the loss curve beside it. More parameters: the loss curve (log scale when it spans more than
1000×) and each parameter's trajectory. Several runs (`--compare`) share one picture.

matplotlib is optional (`pip install 'gradcli[plot]'`) and imported only here, inside the
functions; the figure is drawn on the Agg canvas, never through pyplot, so a notebook's own
backend is left alone. The file is written to a temporary name and moved into place.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import InputError, UsageError
from ..words import short
from .text import fmt

if TYPE_CHECKING:  # pragma: no cover
    from ..descend import Trajectory

FORMATS = ("svg", "png", "pdf")
INSTALL = "pip install 'gradcli[plot]'"
COLOURS = {"sgd": "#0969da", "momentum": "#cf222e", "adam": "#1a7f37", "newton": "#8250df"}
OTHER_COLOURS = ("#bf8700", "#57606a", "#e16f24", "#1b7c83")
NO_LR = ("newton",)
LOG_SPAN = 1000  # a loss curve spanning more than this factor is drawn on a log scale
MARKERS_SHOWN = 60  # at most this many points of a path get a dot (the line joins them all)
PARAMS_LISTED = 12  # parameter trajectories named in the legend


@dataclass
class Run:
    """One descent to draw: the optimiser's name, its learning rate and what was kept of it."""

    label: str
    lr: float
    trajectory: "Trajectory"


def plot_format(path: str) -> str:
    """svg, png or pdf, from the file's extension."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise UsageError(f"--plot {short(path)}: the file name must end in .svg, .png or .pdf")
    return ext


def require_matplotlib():
    """matplotlib's Figure and Agg canvas, or an exit-2 error naming the install command."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(f"--plot draws with matplotlib, which is not installed: {INSTALL}") \
            from None
    return Figure, FigureCanvasAgg


def path_points(trajectory: "Trajectory", names: Sequence[str]) -> np.ndarray:
    """The kept steps' parameters (finite loss only) as an (n, k) array, one column per
    scalar parameter element."""
    rows = [np.concatenate([np.ravel(np.asarray(s.params[n], dtype=np.float64)) for n in names])
            for s in trajectory.steps if s.finite]
    if not rows:
        return np.zeros((0, len(names)))
    return np.vstack(rows)


def element_labels(trajectory: "Trajectory", names: Sequence[str]) -> list[str]:
    """w, or W[0,1] for each element of a tensor parameter, in path_points' column order."""
    first = trajectory.steps[0].params
    out = []
    for n in names:
        shape = np.shape(first[n])
        if not shape:
            out.append(n)
        else:
            out += [f"{n}[{','.join(str(k) for k in idx)}]" for idx in np.ndindex(*shape)]
    return out


def scalar_pair(trajectory: "Trajectory", names: Sequence[str]) -> bool:
    """Whether the descent moves exactly two scalar parameters (a contour plot)."""
    return len(names) == 2 and all(np.ndim(trajectory.steps[0].params[n]) == 0 for n in names)


def _losses(trajectory: "Trajectory") -> tuple[np.ndarray, np.ndarray]:
    kept = [s for s in trajectory.steps if s.finite]
    return (np.array([s.step for s in kept], dtype=np.float64),
            np.array([s.loss for s in kept], dtype=np.float64))


def _colour(label: str, k: int) -> str:
    return COLOURS.get(label, OTHER_COLOURS[k % len(OTHER_COLOURS)])


def _title(runs: Sequence[Run], expression: str) -> str:
    formula = short(" ".join(expression.split()), 60)
    stepped = [r for r in runs if r.label not in NO_LR]  # Newton's step takes no lr
    names = ", ".join(r.label for r in stepped)
    if len({r.lr for r in stepped}) == 1:
        names = f"{names}, lr {stepped[0].lr:g}" if len(runs) == 1 else \
            f"{names} (lr {stepped[0].lr:g})"
    else:
        names = ", ".join(f"{r.label} (lr {r.lr:g})" for r in stepped)
    others = [r.label for r in runs if r.label in NO_LR]
    return ", ".join([names] * bool(stepped) + others) + f":  {formula}"


def _levels(Z: np.ndarray, count: int = 22) -> np.ndarray | None:
    """Contour levels spaced geometrically above the grid's minimum: dense near the valley
    floor, sparse up the walls (a bowl's ellipses and a narrow valley both read well)."""
    finite = Z[np.isfinite(Z)]
    if finite.size < 4:
        return None
    zmin, zmax = float(finite.min()), float(finite.max())
    span = zmax - zmin
    if not (span > 0 and math.isfinite(span)):
        return None
    return zmin + np.geomspace(span * 1e-4, span, count)


def _markers(n: int) -> int:
    return max(1, math.ceil(n / MARKERS_SHOWN))


def _draw_loss(ax, runs: Sequence[Run]) -> None:
    allloss = []
    for k, run in enumerate(runs):
        steps, loss = _losses(run.trajectory)
        allloss.append(loss)
        ax.plot(steps, loss, color=_colour(run.label, k), lw=1.6, label=run.label,
                gid=f"loss-{run.label}")
    values = np.concatenate(allloss) if allloss else np.zeros(0)
    positive = values[values > 0]
    # A loss that reaches exactly 0 (Newton on a quadratic) still gets a log scale; the 0
    # itself cannot be drawn on one.
    if positive.size > 1 and values.min() >= 0 and positive.max() > LOG_SPAN * positive.min():
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.grid(True, alpha=0.3)
    if len(runs) > 1:
        ax.legend(frameon=False)


def _draw_contour(ax, runs: Sequence[Run], names: Sequence[str], grid) -> None:
    if grid is not None:
        X, Y, Z = grid
        levels = _levels(Z)
        if levels is not None:
            Zm = np.ma.masked_invalid(Z)
            cs = ax.contour(X, Y, Zm, levels=levels, cmap="viridis", linewidths=0.8, alpha=0.75)
            cs.set_gid("contours")
        ax.set_xlim(float(X.min()), float(X.max()))
        ax.set_ylim(float(Y.min()), float(Y.max()))
    start = None
    for k, run in enumerate(runs):
        pts = path_points(run.trajectory, names)
        if not len(pts):
            continue
        colour = _colour(run.label, k)
        final = run.trajectory.final
        end = f"{run.label}: loss {fmt(final.loss, 4)} at step {final.step}" if final else run.label
        (line,) = ax.plot(pts[:, 0], pts[:, 1], "-o", color=colour, lw=1.3, ms=3,
                          markevery=_markers(len(pts)), label=end, zorder=3)
        line.set_gid(f"path-{run.label}")
        ax.plot(pts[-1, 0], pts[-1, 1], "*", color=colour, ms=15, mec="black", mew=0.8,
                zorder=5, gid=f"end-{run.label}")
        start = pts[0]
    if start is not None:
        ax.plot(start[0], start[1], "o", color="white", mec="black", mew=1.5, ms=9, zorder=6,
                label="start θ⁰", gid="start")
    if len(runs) == 1 and runs[0].trajectory.final is not None:
        f = runs[0].trajectory.final
        at = ", ".join(f"{n} = {fmt(float(f.params[n]), 4)}" for n in names)
        ax.annotate(f"minimum found: {at}", xy=(0.02, 0.02), xycoords="axes fraction",
                    fontsize=9, bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85})
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.set_title("path on the loss's contour lines")


def _draw_params(ax, runs: Sequence[Run], names: Sequence[str]) -> None:
    for k, run in enumerate(runs):
        pts = path_points(run.trajectory, names)
        steps, _ = _losses(run.trajectory)
        labels = element_labels(run.trajectory, names)
        single = len(runs) == 1
        for j in range(pts.shape[1]):
            label = labels[j] if single and j < PARAMS_LISTED else None
            colour = None if single else _colour(run.label, k)
            ax.plot(steps, pts[:, j], lw=1.2, color=colour, label=label,
                    alpha=1 if single else 0.6, gid=f"param-{run.label}-{j}")
    ax.set_xlabel("step")
    ax.set_ylabel("parameter value")
    ax.set_title("parameters")
    ax.grid(True, alpha=0.3)
    if len(runs) == 1:
        ax.legend(frameon=False, fontsize=8)


def render_compare(console, runs: Sequence[Run], names: Sequence[str], digits: int) -> None:
    """One line per compared optimiser: where it ended and why it stopped."""
    from rich.text import Text

    width = max(len(r.label) for r in runs)
    for k, run in enumerate(runs):
        traj = run.trajectory
        line = Text(f"{run.label:<{width}}  ", style=f"bold {_colour(run.label, k)}")
        final = traj.final
        if final is not None:
            at = ", ".join(f"{n} = {fmt(_plain(final.params[n]), digits)}" for n in names)
            line.append(f"loss {fmt(final.loss, digits)} at step {final.step}: {at}")
        line.append(f"  ({traj.message})", style="dim")
        console.print(line)


def _plain(v):
    a = np.asarray(v, dtype=np.float64)
    return float(a) if a.ndim == 0 else a.tolist()


def draw_descent(runs: Sequence[Run], names: Sequence[str], expression: str, path: str,
                 grid=None) -> None:
    """Draw the runs into `path` (svg, png or pdf by its extension). `grid` is (X, Y, Z) of the
    loss for a contour plot of two scalar parameters, or None."""
    from .console import write_file

    fmt_ = plot_format(path)
    write_file(path, _render(runs, names, expression, grid, fmt_))


def descent_svg(runs: Sequence[Run], names: Sequence[str], expression: str, grid=None) -> str:
    """The same picture as SVG text (for a notebook cell), without its XML prolog."""
    svg = _render(runs, names, expression, grid, "svg").decode("utf-8")
    return svg[svg.find("<svg"):]


def _render(runs: Sequence[Run], names: Sequence[str], expression: str, grid, fmt_: str) -> bytes:
    Figure, Canvas = require_matplotlib()
    import io

    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "gradcli", "font.size": 10}):
        fig = Figure(figsize=(11, 4.8), layout="constrained")
        Canvas(fig)
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
        if scalar_pair(runs[0].trajectory, names):
            _draw_contour(left, runs, names, grid)
            _draw_loss(right, runs)
        else:
            _draw_loss(left, runs)
            _draw_params(right, runs, names)
        fig.suptitle(_title(runs, expression))
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt_, dpi=110, metadata=_METADATA[fmt_])
    return buf.getvalue()


_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}
