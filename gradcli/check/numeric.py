"""The gradient check against central differences, kinks, and which rule looks wrong.

For every variable (every element of a tensor variable) the reverse-mode gradient is compared
with the central difference (f(x+h) - f(x-h)) / 2h, h = ε^(1/3)·max(1, |x|). The same points at
h/4 and the one-sided differences tell a kink or a jump (where no derivative exists) from a wrong
rule: at a kink the one-sided slopes disagree at every step size; at a jump the difference
quotient grows as h shrinks; a smooth function does neither. A variable whose difference
straddles a kink is reported as such and does not fail the check.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .. import engine
from ..tape import Tape
from .report import EPS, MAX_ELEMENTS, Kink, Suspect, Tolerance, VariableCheck
from .steps import NOISE, STEP
from .steps import difference as _difference
from .steps import rel_error as _rel_error



# -- the gradient check ---------------------------------------------------------------------------

# MAX_ELEMENTS (report.py): elements of one tensor variable checked by default; a bigger one is
# checked on a random sample of that many (each element costs several evaluations), said so.


def _output_sums(tape: Tape, point: Mapping[str, object],
                 values: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each output's value (a tensor output summed, as its gradient is seeded with ones) and the
    scale of its rounding error (the sum of absolute values)."""
    if values is None:
        values = engine.forward(tape, point)
    with np.errstate(all="ignore"):
        outs = np.array([np.sum(values[o]) for o in tape.outputs], dtype=np.float64)
        scale = np.array([np.sum(np.abs(values[o])) for o in tape.outputs], dtype=np.float64)
    return outs, scale


def gradient_check(result, tol: Tolerance | None = None, names: Sequence[str] | None = None,
                   kinks: list[Kink] | None = None, max_elements: int = MAX_ELEMENTS,
                   warnings: list[str] | None = None, seed: int | None = None
                   ) -> list[VariableCheck]:
    """Compare each variable's analytic gradient with central differences: every element, or
    for a tensor of more than `max_elements` (0: no limit) a random sample of that many (drawn
    with `seed`), said in `warnings`. Each evaluation re-runs only the nodes downstream of the
    variable."""
    tol = tol or Tolerance()
    tape: Tape = result.tape
    names = list(result.wrt if names is None else names)
    point = dict(result.at)
    f0, scale0 = _output_sums(tape, point)
    if kinks is None:
        kinks = find_kinks(result)
    reaches = _kink_reach(tape, kinks, names)
    checks = []
    for name in names:
        node = tape.variables[name]
        checks.append(_check_variable(tape, result, point, name, node, f0, scale0, tol,
                                      reaches.get(name, []), max_elements, warnings, seed))
    return checks


def _elements(shape: tuple, name: str, max_elements: int, warnings, seed):
    """The element indices to check: all, or a sorted random sample of max_elements."""
    size = int(np.prod(shape)) if shape else 1
    if not max_elements or size <= max_elements:
        return list(np.ndindex(*shape)) if shape else [()], size
    rng = np.random.default_rng(0 if seed is None else seed)
    picked = np.sort(rng.choice(size, size=max_elements, replace=False))
    if warnings is not None:
        warnings.append(f"{name}: checked {max_elements:,} of its {size:,} elements, a random "
                        "sample (each element costs several evaluations); --max-elements 0 "
                        "checks every one")
    return [np.unravel_index(int(k), shape) for k in picked], max_elements


def _check_variable(tape, result, point, name, node, f0, scale0, tol, kinks_reached,
                    max_elements=MAX_ELEMENTS, warnings=None, seed=None):
    arr = np.array(point[name], dtype=np.float64)
    shape = arr.shape
    n_out = len(tape.outputs)
    analytic = np.stack([np.asarray(adj[node], dtype=np.float64).reshape(shape)
                         for adj in result.adjoints])  # (n_out, *shape)
    numeric = np.full((n_out,) + shape, np.nan)  # NaN: an element the sample left out
    status = np.full((n_out,) + shape, None, dtype=object)
    rel = np.full((n_out,) + shape, np.nan)
    order = engine.downstream(tape, node)  # what a change to the variable re-runs
    values = result.values
    seen: set[str] = set()  # what made a difference non-smooth: "kink", "jump"

    def f_at(idx, v):
        moved = arr.copy()
        moved[idx] = v
        value = np.float64(moved[()]) if shape == () else moved
        return _output_sums(tape, point, engine.forward_again(tape, values, order, node, value))

    elements, _ = _elements(shape, name, max_elements, warnings, seed)
    for idx in elements:
        xi = float(arr[idx])
        for k in range(n_out):
            key = (k,) + idx
            a = analytic[key]
            with np.errstate(all="ignore"):  # overflow near float64's edge is handled here
                n, smooth, noise, why = _difference(f_at, idx, xi, k, f0, scale0)
            numeric[key] = n
            rel[key] = _rel_error(a, n)
            if why:
                seen.add(why)
            if not np.isfinite(n) or not np.isfinite(f0[k]):
                status[key] = "kink" if kinks_reached and np.isfinite(f0[k]) else "undefined"
            elif not smooth:
                status[key] = "kink"
            elif np.isfinite(a) and abs(a - n) <= (tol.rtol * max(abs(a), abs(n)) + tol.atol
                                                   + noise):
                status[key] = "ok"
            elif kinks_reached:
                status[key] = "kink"  # differentiable here, but a node sits exactly at a kink
            else:
                status[key] = "mismatch"

    flat = [x for x in status.reshape(-1) if x is not None]
    overall = next((s for s in ("mismatch", "undefined", "kink") if s in flat), "ok")
    with np.errstate(all="ignore"):
        worst = float(np.nanmax(rel)) if np.any(~np.isnan(rel)) else float("nan")
    return VariableCheck(name, node, _per_output(analytic, n_out), _per_output(numeric, n_out),
                         worst, overall, count=flat.count(overall), size=len(flat),
                         jump=seen == {"jump"}, kinks=[k.node for k in kinks_reached])


def _per_output(arr: np.ndarray, n_out: int):
    if n_out == 1:
        return arr[0][()] if arr[0].ndim == 0 else arr[0]
    return [arr[k][()] if arr[k].ndim == 0 else arr[k] for k in range(n_out)]



# -- which rule is wrong --------------------------------------------------------------------------

def suspect_rules(result, rtol: float = 1e-6) -> list[Suspect]:
    """Check every node's own rule at its inputs: an elementwise op's local partials against a
    central difference of its value function, a structural op's vjp against a directional
    difference (⟨vjp(g), t⟩ = ⟨g, dy(t)⟩ for random g and t). Nodes at kinks are skipped."""
    tape: Tape = result.tape
    values = result.values
    at_kink = set(getattr(result, "kinks", None) or ())
    out: list[Suspect] = []
    for i, op in enumerate(tape.ops):
        ins = tape.inputs[i]
        if not ins or not result.active[i] or i in at_kink or op.value is None:
            continue
        xs = [values[j] for j in ins]
        for slot, j in enumerate(ins):
            if not result.active[j]:
                continue
            try:
                found = _rule_check(op, values[i], xs, slot, result.partials[i], i, rtol)
            except (ValueError, TypeError, IndexError, ZeroDivisionError):
                continue
            if found is not None:
                out.append(Suspect(i, slot, *found))
    return out


def _rule_check(op, y, xs, slot, partials, seed, rtol):
    """(analytic, numeric) when the op's rule for input `slot` disagrees with its value function."""
    x = np.asarray(xs[slot], dtype=np.float64)
    with np.errstate(all="ignore"):
        if op.vjp is None:
            if partials is None:
                return None
            h = STEP * np.maximum(1.0, np.abs(x))
            up, down = list(xs), list(xs)
            up[slot], down[slot] = (x + h)[()], (x - h)[()]
            fp, fm = np.asarray(op.value(*up)), np.asarray(op.value(*down))
            numeric = (fp - fm) / (2 * h)  # h broadcasts like the input does
            analytic = np.broadcast_to(np.asarray(partials[slot], dtype=np.float64),
                                       numeric.shape)
            scale = np.maximum(np.abs(fp), np.abs(fm))
            noise = NOISE * EPS * scale / np.min(h)
        else:
            rng = np.random.default_rng(seed)
            t = rng.standard_normal(x.shape)[()]
            g = rng.standard_normal(np.shape(y))[()]
            h = STEP * max(1.0, float(np.max(np.abs(x))))
            up, down = list(xs), list(xs)
            up[slot], down[slot] = (x + h * t)[()], (x - h * t)[()]
            fp, fm = np.asarray(op.value(*up)), np.asarray(op.value(*down))
            numeric = np.sum(g * (fp - fm) / (2 * h))
            analytic = np.sum(np.asarray(op.vjp(g, y, *xs)[slot]) * t)
            noise = NOISE * EPS * float(np.sum(np.abs(g) * np.maximum(np.abs(fp), np.abs(fm)))) / h
        finite = np.isfinite(numeric) & np.isfinite(analytic)
        bad = finite & (np.abs(analytic - numeric)
                        > max(rtol, 1e-6) * np.maximum(np.abs(analytic), np.abs(numeric))
                        + 1e-9 + 8 * noise)
    if not np.any(bad):
        return None
    if np.ndim(numeric) == 0:
        return float(analytic), float(numeric)
    k = int(np.argmax(bad.reshape(-1)))
    return float(np.asarray(analytic).reshape(-1)[k]), float(np.asarray(numeric).reshape(-1)[k])


# -- kinks ----------------------------------------------------------------------------------------

def find_kinks(result) -> list[Kink]:
    """Nodes evaluated exactly where their op has no derivative (relu/abs/sign at 0, max/min
    ties, norm of zero), as the engine flags them; the slope there is a convention."""
    tape: Tape = result.tape
    convention = getattr(result, "convention", "cs231n")
    return [Kink(i, tape.ops[i].name, convention) for i in getattr(result, "kinks", None) or []]


def _kink_reach(tape: Tape, kinks: list[Kink], names: Sequence[str]) -> dict[str, list[Kink]]:
    """For each variable, the kinks that depend on it."""
    if not kinks:
        return {}
    out: dict[str, list[Kink]] = {}
    for name in names:
        flags = engine.active(tape, [name])
        hit = [k for k in kinks if flags[k.node]]
        if hit:
            out[name] = hit
    return out


# -- reading answers ------------------------------------------------------------------------------
