"""What `gradcli descend` prints: the loss curve in unicode blocks, a table of steps, the result.

`curve_rows` is plain text (no Rich) so it can be tested alone; `render_descent` prints through
Rich, with every piece of user text (names, messages) wrapped in `Text`, never markup.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .text import ARRAY_LIMIT, compact, fmt

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..descend import Step, Trajectory

BLOCKS = " ▁▂▃▄▅▆▇█"  # 0..8 eighths of a cell
VALUE = "green"
GRAD = "red"
CURVE = "cyan"
MAX_PARAM_COLUMNS = 5


def curve_rows(ys: Sequence[float], width: int = 60, height: int = 8, log: bool | None = None,
               xs: Sequence[float] | None = None) -> tuple[list[str], float, float, bool]:
    """The curve of `ys` (at steps `xs`, default 0, 1, 2, ...) as `height` rows of `width`
    block characters, top row first.

    Column c shows the curve at x = x0 + c·(xn - x0)/(width - 1), interpolated between the
    recorded points, so the first and last columns are the first and last values and a thinned
    record keeps its time axis. Non-finite values are left out. Returns the rows, the bottom and
    top of the scale, and whether the scale is logarithmic (by default: when every value is
    positive and they span more than 1000×).
    """
    points = [(float(x), float(y)) for x, y in zip(range(len(ys)) if xs is None else xs, ys)
              if math.isfinite(y)]
    if not points or width < 1 or height < 1:
        return [], math.nan, math.nan, False
    values = [y for _, y in points]
    lo, hi = min(values), max(values)
    if log is None:
        log = lo > 0 and hi / lo > 1000
    elif log and lo <= 0:
        log = False
    f = math.log10 if log else (lambda y: y)
    flo, fhi = f(lo), f(hi)
    levels = height * 8
    x0, xn = points[0][0], points[-1][0]
    cols = []
    k = 0
    for c in range(width):
        x = x0 + (xn - x0) * c / (width - 1) if width > 1 else xn
        while k + 1 < len(points) and points[k + 1][0] <= x:
            k += 1
        if k + 1 < len(points) and points[k + 1][0] > points[k][0]:
            (xa, ya), (xb, yb) = points[k], points[k + 1]
            t = (x - xa) / (xb - xa)
            fy = f(ya) + t * (f(yb) - f(ya))
        else:
            fy = f(points[k][1])
        if fhi == flo:
            cols.append(levels // 2)
        else:
            # At least one eighth, so the lowest point still shows.
            cols.append(1 + round((fy - flo) / (fhi - flo) * (levels - 1)))
    rows = []
    for r in range(height - 1, -1, -1):
        base = r * 8
        rows.append("".join(BLOCKS[max(0, min(8, level - base))] for level in cols))
    return rows, lo, hi, log


value_text = compact  # a parameter for the table


def table_steps(steps: Sequence["Step"], rows: int = 9) -> list["Step"]:
    """A few steps for the table: 0, 1, 2, 5, 10, 20, 50, ... (the first kept at or after
    each), and the last."""
    if not steps:
        return []
    chosen: list = []
    targets = [0, 1, 2]
    t = 5
    while t <= steps[-1].step:
        targets.append(t)
        t = t * 2 if str(t)[0] == "5" else t * 5 // 2 if str(t)[0] == "2" else t * 2
    k = 0
    for target in targets:
        while k < len(steps) and steps[k].step < target:
            k += 1
        if k < len(steps) and (not chosen or chosen[-1] is not steps[k]):
            chosen.append(steps[k])
    if chosen[-1] is not steps[-1]:
        chosen.append(steps[-1])
    if len(chosen) > rows:
        chosen = chosen[: rows - 2] + chosen[-2:]
    return chosen


def render_descent(console: "Console", traj: "Trajectory", digits: int = 6,
                   width: int | None = None) -> None:
    """The loss curve, a table of a few steps, and the final loss and parameters."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    steps = traj.steps
    final = traj.final
    finite = [s for s in steps if s.finite]
    if width is None:
        width = max(10, min(72, console.width - 14))
    rows, lo, hi, log = curve_rows([s.loss for s in finite], width=width, height=8,
                                   xs=[s.step for s in finite])
    if rows:
        title = Text("loss", style="bold")
        title.append(f"  ({'log scale, ' if log else ''}{len(finite)} recorded steps)",
                     style="dim")
        console.print(title)
        top, bottom = fmt(hi, 3), fmt(lo, 3)
        pad = max(len(top), len(bottom))
        for k, row in enumerate(rows):
            label = top if k == 0 else bottom if k == len(rows) - 1 else ""
            line = Text(label.rjust(pad) + " │", style="dim")
            line.append(row, style=CURVE)
            console.print(line, no_wrap=True, crop=False)
        axis = Text(" " * pad + " └" + "─" * len(rows[0]), style="dim")
        console.print(axis, no_wrap=True)
        first, last = f"step {finite[0].step}", f"step {finite[-1].step}"
        gap = max(1, len(rows[0]) - len(first) - len(last))
        console.print(Text(" " * pad + "  " + first + " " * gap + last, style="dim"),
                      no_wrap=True)
        console.print()

    shown = table_steps(steps)
    if shown:
        names = list(shown[0].params)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("step", justify="right", style="dim")
        table.add_column("loss", justify="right", style=VALUE)
        table.add_column("‖∇‖", justify="right", style=GRAD)
        for name in names[:MAX_PARAM_COLUMNS]:
            table.add_column(Text(name), justify="right")
        if len(names) > MAX_PARAM_COLUMNS:
            table.add_column(Text(f"… {len(names) - MAX_PARAM_COLUMNS} more"))
        for s in shown:
            cells = [str(s.step), fmt(s.loss, digits), fmt(s.grad_norm, 3)]
            cells += [value_text(s.params[n], digits) for n in names[:MAX_PARAM_COLUMNS]]
            if len(names) > MAX_PARAM_COLUMNS:
                cells.append("")
            table.add_row(*cells)
        console.print(table)
        console.print()

    if final is None:
        return
    head = Text(f"final (step {final.step}")
    if traj.stopped == "diverged" and final is not traj.last:
        head.append(", the last finite step")
    head.append("): loss = ")
    head.append(fmt(final.loss, digits), style=VALUE)
    if finite and finite[0].step == 0 and final.step != 0:
        head.append(f"  (from {fmt(finite[0].loss, digits)} at step 0)", style="dim")
    console.print(head)
    for name, v in final.params.items():
        grad = final.gradient[name]
        if getattr(v, "size", 1) > ARRAY_LIMIT:
            # A tensor: its entries on lines of their own (numpy's layout), the gradient's norm.
            line = Text(f"  {name} = ")
            line.append(tensor_text(v, digits), style=VALUE)
            line.append(f"\n  ‖∂loss/∂{name}‖ = ", style="dim")
            line.append(fmt(float(np.sqrt(np.sum(np.square(grad)))), 3), style=GRAD)
        else:
            line = Text(f"  {name} = ")
            line.append(value_text(v, digits), style=VALUE)
            line.append("   ∂loss/∂" + name + " = ", style="dim")
            line.append(value_text(grad, 3), style=GRAD)
        console.print(line)


def tensor_text(v, digits: int, limit: int = 400) -> str:
    """A tensor's entries as numpy lays them out (summarised beyond `limit` entries)."""
    body = np.array2string(np.asarray(v), precision=min(digits, 8), threshold=limit,
                           max_line_width=100, separator=", ")
    shape = "×".join(str(int(n)) for n in np.shape(v))
    return f"array {shape}\n    " + body.replace("\n", "\n    ")
