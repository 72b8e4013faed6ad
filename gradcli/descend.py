"""Gradient descent, θ ← θ − η∇L, as a generator of step records (numpy only, no I/O).

`descend` evaluates the loss and its gradient with the ordinary engine at each step and yields
one `Step` per evaluation: step 0 is the starting point, step k the parameters after k updates.
The last record it yields says why it stopped (`stop`). Every update is written with whole
numpy values (θ - lr*g), so scalar and tensor parameters take the same path. The caller draws
progress, thins the record (`Trajectory`) and may stop early (Ctrl-C) between steps.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

from .result import run
from .errors import InputError
from .session import check_wrt
from .tape import Tape
from .words import nonfinite_word

OPTIMIZERS = ("sgd", "momentum", "adam")


#: The most parameter and gradient numbers a Trajectory keeps over all its recorded steps.
KEEP_ELEMENTS = 20_000_000


def _elements(step: "Step") -> int:
    n = 0
    for v in (*step.params.values(), *step.gradient.values()):
        n += 1 if type(v) is float else int(np.size(v))  # floats: the compiled path's
    return n


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


#: The steps a long descent keeps by default (`descend --every` unset): a 200 000-step run's
#: JSON is ~150 kB, not 29 MB (issue 17).
KEPT_STEPS = 1000


def default_every(steps: int) -> int:
    """--every when not given: 1 up to KEPT_STEPS steps, else steps ÷ KEPT_STEPS."""
    return max(1, steps // KEPT_STEPS)


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
            tol: float = 0.0, method: str = "gradient") -> Iterator[Step]:
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
    if method == "newton":  # damped Newton steps (gradcli.newton); lr and optimizer unused
        from .newton import newton

        def decide(k: int, loss: float, norm: float) -> tuple[str | None, str]:
            return _stop(k, loss, norm, tol, steps, None)

        for fields in newton(tape, point, names, decide):
            yield Step(*fields)
        return
    output = tape.outputs[0]
    velocity: dict = {}
    first: dict = {}
    second: dict = {}
    k = 0
    fast = _compiled(tape, output, names, point)  # None: the interpreted sweeps every step
    while True:
        point.update(params)  # floats on the compiled path, numpy scalars for the engine
        quick = _fast_step(fast, tape, point, names) if fast is not None and k else None
        if quick is not None:  # finite loss and gradient from the compiled tape (issue 17)
            loss, gradient, norm = quick
            stop, message = _stop(k, loss, norm, tol, steps, lr)
            f64 = np.float64  # parameters as the engine's steps give them; gradients: floats
            yield Step(k, loss, {n: f64(v) for n, v in params.items()}, gradient, norm, stop,
                       message, ())
            if stop is not None:
                return
            k += 1
            _update(params, gradient, names, optimizer, lr, momentum, beta1, beta2, eps, k,
                    velocity, first, second, floats=True)
            continue
        if fast is not None:
            point.update({name: np.float64(v) for name, v in params.items()})
        r = run(tape, point, names)
        loss = r.values[output]
        if k == 0:
            _check_loss(loss, r.warnings)
        loss = float(loss)
        gradient = {name: r.adjoints[0][tape.variables[name]] for name in names}
        norm = _norm(gradient.values())
        stop, message = _stop(k, loss, norm, tol, steps, lr)
        warnings: tuple[str, ...] = tuple(r.warnings) if k == 0 or stop == "diverged" else ()
        kept = dict(params) if fast is None else {name: point[name] for name in params}
        yield Step(k, loss, kept, gradient, norm, stop, message, warnings)
        if stop is not None:
            return
        k += 1
        _update(params, gradient, names, optimizer, lr, momentum, beta1, beta2, eps, k,
                velocity, first, second)
        if fast is not None:
            params = {name: float(v) for name, v in params.items()}


def _update(params: dict, gradient: dict, names: list[str], optimizer: str, lr: float,
            momentum: float, beta1: float, beta2: float, eps: float, k: int, velocity: dict,
            first: dict, second: dict, floats: bool = False) -> None:
    """One optimiser step on `params`, in place (k: the update's number, from 1). `floats`:
    every number is a Python float (the compiled path), so there are no numpy warnings to hush."""
    with _QUIET if floats else np.errstate(all="ignore"):
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
                update = m_hat / ((math.sqrt(v_hat) if type(v_hat) is float else np.sqrt(v_hat))
                                  + eps)
            params[name] = params[name] - lr * update


_QUIET = nullcontext()

#: Whether descent runs a compiled tape (gradcli.compiled) when every variable is a number;
#: tests switch it off to compare with the interpreted sweeps.
COMPILE = True


def _compiled(tape: Tape, output: int, names: list[str], point: Mapping[str, object]):
    """The tape compiled over floats (gradcli.compiled), or None: a tensor variable, an op
    without a float rule, a long tape, or COMPILE off."""
    if not COMPILE or any(np.ndim(point.get(n, 0.0)) for n in tape.variables):
        return None
    from .compiled import gradient_function

    return gradient_function(tape, output, names)


def _fast_step(fn, tape: Tape, point: Mapping[str, object], names: list[str]):
    """(loss, gradient, norm) from the compiled tape, or None where floats refuse (log 0,
    an overflow, ...) or the result is not finite: the interpreted sweep then runs there, with
    numpy's values and the warnings that explain them."""
    try:
        loss, grads = fn(*[float(point[n]) for n in tape.variables])
    except (ArithmeticError, ValueError):
        return None
    norm = math.hypot(*grads)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        return None
    return loss, dict(zip(names, grads)), norm


def _stop(k: int, loss: float, norm: float, tol: float, steps: int,
          lr: float | None) -> tuple[str | None, str]:
    """Whether descent stops after evaluating step k, and why in words (lr None: Newton)."""
    if not math.isfinite(loss):
        hint = f" (try a smaller --lr than {lr:g})" if lr is not None else ""
        return "diverged", (f"the loss became {nonfinite_word(loss)} at step {k}; the result "
                            f"is the last finite step, {k - 1}{hint}")
    if not math.isfinite(norm):
        return "diverged", (f"the gradient is not finite at step {k} (loss {loss:g}); descent "
                            "cannot go on from there")
    if norm <= tol:
        return "converged", (f"converged at step {k}: the gradient is 0" if norm == 0 else
                             f"converged at step {k}: ‖∇L‖ = {norm:.3g} ≤ --tol {tol:g}")
    if k >= steps:
        return "steps", f"ran {steps} {'step' if steps == 1 else 'steps'}"
    return None, ""


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
            self._bound()
        if step.stop is not None:
            self.stopped, self.message = step.stop, step.message

    def _bound(self) -> None:
        """Keep at most KEEP_ELEMENTS numbers of parameters and gradients in the record: past
        it, keep every 2nd kept step (then every 4th, ...) and say so, so that 300 steps of a
        10^6-element parameter cost ~0.3 GB at most, not 4.8 GB. Step 0 and the last stay."""
        size = _elements(self.steps[-1])
        if size * len(self.steps) <= KEEP_ELEMENTS or len(self.steps) < 3:
            return
        self.every *= 2
        last = self.steps[-1]
        self.steps = [s for s in self.steps if s.step % self.every == 0 or s is last
                      or s.stop is not None]
        note = (f"the record keeps every {self.every}th step: the parameters have {size:,} "
                "numbers (--every sets the stride)")
        self.warnings[:] = [w for w in self.warnings if not w.startswith("the record keeps")]
        self.warnings.append(note)

    def interrupt(self) -> None:
        """Ctrl-C: keep the last step reached and say so."""
        if self.last is not None and (not self.steps or self.steps[-1] is not self.last):
            self.steps.append(self.last)
        self.stopped = "interrupted"
        at = f" after step {self.last.step}" if self.last is not None else " before step 0"
        self.message = f"interrupted{at}; the result is the last step reached"
