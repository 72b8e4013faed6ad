"""The loss surface around a descent path, for the contour plot of `descend --plot`.

`frame` picks the window that frames one or more paths; `loss_grid` evaluates the loss over a
grid of that window in one vectorised forward sweep (the batch engine: every grid point a row),
never a Python loop per point. Plain numpy out; the picture is drawn by render/plot.py.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from . import engine
from .batch import check_batchable, per_row
from .errors import InputError
from .tape import Tape

GRID = 201  # points along each axis (201 x 201 = 40 401 evaluations, one sweep)


def frame(paths: Sequence[np.ndarray], pad: float = 0.15) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): a window holding every finite point of `paths` (arrays of shape
    (n, 2)) with a margin, never flat in either direction."""
    pts = [p[np.all(np.isfinite(p), axis=1)] for p in paths if len(p)]
    pts = [p for p in pts if len(p)]
    if not pts:
        return (-1.0, 1.0, -1.0, 1.0)
    allp = np.concatenate(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = hi - lo
    # A path along one axis still needs room across it: at least a third of the other span.
    least = max(float(span.max()) / 3, 1e-3 * max(1.0, float(np.abs(allp).max())))
    if least == 0 or not math.isfinite(least):
        least = 1.0
    span = np.maximum(span, least)
    mid = (lo + hi) / 2
    half = span * (0.5 + pad)
    return (float(mid[0] - half[0]), float(mid[0] + half[0]),
            float(mid[1] - half[1]), float(mid[1] + half[1]))


def loss_grid(tape: Tape, point: Mapping[str, object], names: Sequence[str],
              box: tuple[float, float, float, float],
              n: int = GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, Y, Z (n x n each): the loss with parameters names[0], names[1] set to every grid point
    of `box` and every other variable at its value in `point`, in one forward sweep."""
    if len(names) != 2:
        raise InputError("a contour plot needs exactly two parameters")
    fixed = {k: v for k, v in point.items() if k in tape.variables and k not in names}
    check_batchable(tape, fixed)
    x0, x1, y0, y1 = box
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    rows = {names[0]: X.ravel(), names[1]: Y.ravel()}
    at = {name: np.full(X.size, float(v)) for name, v in fixed.items()}
    at.update(rows)
    tape = per_row(tape)
    values = engine.forward(tape, at)
    Z = np.broadcast_to(np.asarray(values[tape.outputs[0]], dtype=np.float64), (X.size,))
    return X, Y, Z.reshape(X.shape).copy()
