"""Gradient descent, θ ← θ − η∇L, as a generator of step records (numpy only, no I/O).

`descend` evaluates the loss and its gradient with the ordinary engine at each step and yields
one `Step` per evaluation: step 0 is the starting point, step k the parameters after k updates.
The last record it yields says why it stopped (`stop`). Every update is written with whole
numpy values (θ - lr*g), so scalar and tensor parameters take the same path. The caller draws
progress, thins the record (`Trajectory`) and may stop early (Ctrl-C) between steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

from .result import run
from .errors import InputError
from .session import check_wrt
from .tape import Tape
from .words import nonfinite_word

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True, slots=True)
class Step:
    """The state after `step` updates: the loss, the parameters and the gradient there."""

    step: int
    loss: float
    params: dict  # name -> numpy scalar or array
    gradient: dict  # name -> ∂loss/∂name at params
    grad_norm: float  # Euclidean norm of the whole gradient
    stop: str | None = None  # set on the last record: "steps", "converged" or "diverged"
    message: str = ""  # why it stopped, in words
    warnings: tuple[str, ...] = ()

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


def starting_point(tape: Tape, at: Mapping[str, object],
                   wrt: Iterable[str] | None) -> tuple[dict, list[str], list[str]]:
    """The point to start from, the parameters, and the parameters --at left out (set to 0).

    Parameters default to every variable of the formula. A parameter without a value starts
    at 0; any other variable without a value is an error (from the engine, naming it).
    """
    params = _check_wrt(tape, wrt)
    point = dict(at)
    zeroed = [name for name in params if name not in point]
    for name in zeroed:
        point[name] = np.float64(0.0)
    return point, params, zeroed


def _check_wrt(tape: Tape, wrt: Iterable[str] | None) -> list[str]:
    """The parameters: `wrt` resolved as every command does (session.check_wrt)."""
    if not tape.variables:
        raise InputError("the formula has no variables: there is nothing to descend on")
    return check_wrt(tape, wrt)


def check_settings(lr: float, steps: int, optimizer: str, momentum: float, beta1: float,
                   beta2: float, eps: float, tol: float) -> None:
    """Refuse settings descent cannot use, naming the option."""
    if not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr {lr}: the learning rate must be a positive number such as 0.1")
    if steps < 0:
        raise InputError(f"--steps {steps}: the number of steps must be 0 or more")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer {optimizer}: use one of {', '.join(OPTIMIZERS)}")
    for option, v in (("--momentum", momentum), ("--beta1", beta1), ("--beta2", beta2)):
        if not (0 <= v < 1):
            raise InputError(f"{option} {v}: must be at least 0 and less than 1")
    if not (math.isfinite(eps) and eps > 0):
        raise InputError(f"--eps {eps}: must be a small positive number such as 1e-8")
    if not (tol >= 0):
        raise InputError(f"--tol {tol}: must be 0 or more")


def descend(tape: Tape, point: Mapping[str, object], wrt: Iterable[str] | None = None,
            lr: float = 0.1, steps: int = 100, optimizer: str = "sgd", momentum: float = 0.9,
            beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
            tol: float = 0.0) -> Iterator[Step]:
    """Minimise the formula's single output over the `wrt` variables, one Step per evaluation.

    `point` gives every variable a value (the parameters' starting values among them); the
    variables not in `wrt` stay fixed. Stops after `steps` updates, when the gradient's norm is
    at most `tol` ("converged"), or when the loss or gradient stops being finite ("diverged":
    that record's parameters are the ones that broke; the one before is the last finite).
    """
    check_settings(lr, steps, optimizer, momentum, beta1, beta2, eps, tol)
    if len(tape.outputs) != 1:
        raise InputError(f"descent needs one output, a scalar loss; the formula has "
                         f"{len(tape.outputs)} outputs (separated by commas)")
    names = _check_wrt(tape, wrt)
    point = dict(point)
    params = {name: _as_float(point[name]) if name in point else None for name in names}
    missing = [name for name, v in params.items() if v is None]
    if missing:
        raise InputError(f"no starting value for {', '.join(missing)}: give it with --at")
    output = tape.outputs[0]
    velocity: dict = {}
    first: dict = {}
    second: dict = {}
    k = 0
    while True:
        point.update(params)
        r = run(tape, point, names)
        loss = r.values[output]
        if k == 0:
            _check_loss(loss, r.warnings)
        loss = float(loss)
        gradient = {name: r.adjoints[0][tape.variables[name]] for name in names}
        norm = _norm(gradient.values())
        stop, message = None, ""
        warnings: tuple[str, ...] = tuple(r.warnings) if k == 0 else ()
        if not math.isfinite(loss):
            stop = "diverged"
            message = (f"the loss became {nonfinite_word(loss)} at step {k}; the result is the "
                       f"last finite step, {k - 1} (try a smaller --lr than {lr:g})")
            warnings = tuple(r.warnings)
        elif not math.isfinite(norm):
            stop = "diverged"
            message = (f"the gradient is not finite at step {k} (loss {loss:g}); descent "
                       "cannot go on from there")
            warnings = tuple(r.warnings)
        elif norm <= tol:
            stop = "converged"
            message = (f"converged at step {k}: the gradient is 0" if norm == 0 else
                       f"converged at step {k}: ‖∇L‖ = {norm:.3g} ≤ --tol {tol:g}")
        elif k >= steps:
            stop = "steps"
            message = f"ran {steps} {'step' if steps == 1 else 'steps'}"
        yield Step(k, loss, dict(params), gradient, norm, stop, message, warnings)
        if stop is not None:
            return
        k += 1
        with np.errstate(all="ignore"):
            for name in names:
                g = gradient[name]
                if optimizer == "sgd":
                    update = g
                elif optimizer == "momentum":
                    # Heavy ball: v ← μv + g, θ ← θ − ηv.
                    update = momentum * velocity.get(name, 0.0) + g
                    velocity[name] = update
                else:
                    # Adam: running means of g and g², corrected for their start at 0.
                    m = beta1 * first.get(name, 0.0) + (1 - beta1) * g
                    v = beta2 * second.get(name, 0.0) + (1 - beta2) * g * g
                    first[name], second[name] = m, v
                    m_hat = m / (1 - beta1 ** k)
                    v_hat = v / (1 - beta2 ** k)
                    update = m_hat / (np.sqrt(v_hat) + eps)
                params[name] = params[name] - lr * update


def _as_float(v):
    return np.asarray(v, dtype=np.float64)[()]


def _check_loss(loss, warnings: list[str]) -> None:
    if np.ndim(loss) != 0:
        shape = tuple(int(n) for n in np.shape(loss))
        raise InputError(f"the loss must be a single number; this formula gives a tensor of "
                         f"shape {shape}: wrap it in sum(...) or mean(...)")
    if not math.isfinite(float(loss)):
        why = f" ({warnings[0]})" if warnings else ""
        raise InputError(f"the loss is {nonfinite_word(float(loss))} at the starting "
                         f"point{why}; start somewhere else with --at")


def _norm(values: Iterable) -> float:
    """‖g‖ over all parameters, scaled so that huge but finite gradients do not overflow."""
    flat = [np.ravel(np.asarray(v, dtype=np.float64)) for v in values]
    if not flat:
        return 0.0
    g = np.concatenate(flat)
    if not np.all(np.isfinite(g)):
        return math.nan if np.any(np.isnan(g)) else math.inf
    scale = float(np.max(np.abs(g))) if g.size else 0.0
    if scale == 0:
        return 0.0
    return scale * math.sqrt(float(np.sum((g / scale) ** 2)))


@dataclass
class Trajectory:
    """What is kept of a descent: every `every`-th step, the last step, and the result.

    `final` is the last step with a finite loss (after a divergence, the one before it).
    """

    every: int = 1
    steps: list[Step] = field(default_factory=list)
    final: Step | None = None
    last: Step | None = None
    stopped: str = ""
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def add(self, step: Step) -> None:
        """Record one step from `descend`."""
        prev = self.last
        if not step.finite and prev is not None and prev.finite \
                and (not self.steps or self.steps[-1] is not prev):
            self.steps.append(prev)  # keep the last finite step next to the divergence
        self.last = step
        if step.finite:
            self.final = step
        self.warnings.extend(w for w in step.warnings if w not in self.warnings)
        if step.step % self.every == 0 or step.stop is not None:
            self.steps.append(step)
        if step.stop is not None:
            self.stopped, self.message = step.stop, step.message

    def interrupt(self) -> None:
        """Ctrl-C: keep the last step reached and say so."""
        if self.last is not None and (not self.steps or self.steps[-1] is not self.last):
            self.steps.append(self.last)
        self.stopped = "interrupted"
        at = f" after step {self.last.step}" if self.last is not None else " before step 0"
        self.message = f"interrupted{at}; the result is the last step reached"
