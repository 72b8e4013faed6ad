"""Newton's method for `descend --method newton`: θ ← θ − t·H⁻¹∇L, damped by a line search.

The Hessian comes from the symbolic gradient tape (gradcli.symbolic.SecondOrder), built once.
Each step solves H·d = −∇L by Cholesky; where H is not positive definite the step uses H + μI
with μ just large enough to make it so (Levenberg's fallback), and says so in the step's
warnings. The step length t starts at 1 and is halved until the loss falls enough (Armijo).
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from .errors import InputError
from .symbolic import SecondOrder
from .tape import Tape

#: The Armijo constant and the most halvings of the step per iteration.
ARMIJO = 1e-4
HALVINGS = 60


def newton(tape: Tape, point: Mapping[str, object], names: Sequence[str],
           decide: Callable[[int, float, float], tuple]) -> Iterator[tuple]:
    """Damped Newton steps on the formula's output over `names` (scalar parameters): per
    evaluation the fields of a descend.Step (step, loss, params, gradient, grad_norm, stop,
    message, warnings). `decide(k, loss, ‖∇L‖)` says whether to stop there and why."""
    names = list(names)
    for name in names:
        if np.ndim(point[name]):
            raise InputError(f"--method newton works on scalar parameters; {name} has shape "
                             f"{tuple(np.shape(point[name]))} (use the gradient methods)")
    so = SecondOrder(tape, names)
    point = dict(point)
    x = np.array([float(point[n]) for n in names])
    told = 0
    k = 0
    while True:
        point.update({n: np.float64(v) for n, v in zip(names, x)})
        loss, grad, hess = so.at(point)
        g = np.array([grad[n] for n in names])
        norm = float(np.linalg.norm(g)) if np.all(np.isfinite(g)) else math.inf
        stop, message = decide(k, loss, norm)
        warnings = []
        d = None
        if stop is None:
            H = np.array([[hess[a][b] for b in names] for a in names])
            d, shift = _direction(H, g)
            if d is None:
                stop = "diverged"
                message = f"the Hessian is not finite at step {k}; Newton cannot go on"
            elif shift:
                told += 1
                if told <= 3:
                    warnings.append(f"step {k + 1}: the Hessian is not positive definite; "
                                    f"taking a Newton step with H + {shift:.3g}·I instead")
                elif told == 4:
                    warnings.append("(further fallback steps are not reported)")
        params = {n: np.float64(v) for n, v in zip(names, x)}
        yield (k, float(loss), params, {n: np.float64(grad[n]) for n in names}, norm,
               stop, message, tuple(warnings))
        if stop is not None:
            return
        x = _line_search(so, point, names, x, d, g, loss)
        k += 1


def _direction(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Solve (H + μI)·d = −g with the smallest μ ≥ 0 (from 0 up) that makes it Cholesky."""
    if not np.all(np.isfinite(H)):
        return None, 0.0
    n = len(g)
    shift = 0.0
    scale = max(1.0, float(np.max(np.abs(H)))) if n else 1.0
    for _ in range(60):
        try:
            c = np.linalg.cholesky(H + shift * np.eye(n))
        except np.linalg.LinAlgError:
            shift = 1e-8 * scale if shift == 0 else shift * 10
            continue
        y = np.linalg.solve(c, -g)
        return np.linalg.solve(c.T, y), shift
    return -g, shift  # pragma: no cover - a gradient step when nothing else works


def _line_search(so: SecondOrder, point: dict, names: list[str], x: np.ndarray,
                 d: np.ndarray, g: np.ndarray, loss: float) -> np.ndarray:
    """x + t·d with t = 1, 1/2, 1/4, ... until the loss falls by Armijo's rule."""
    slope = float(g @ d)
    t = 1.0
    trial = dict(point)
    for _ in range(HALVINGS):
        cand = x + t * d
        trial.update({n: np.float64(v) for n, v in zip(names, cand)})
        value = _loss(so, trial)
        if math.isfinite(value) and value <= loss + ARMIJO * t * slope:
            return cand
        t /= 2
    return x + t * d


def _loss(so: SecondOrder, point: dict) -> float:
    from . import engine

    values = engine.forward(so.tape, {k: v for k, v in point.items()
                                      if k in so.tape.variables})
    return float(values[so.output])
