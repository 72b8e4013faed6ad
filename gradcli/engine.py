"""Forward sweep, local partials, reverse sweep (adjoints) and forward-mode tangents.

Each is one loop over the tape in order (or backwards); none recurses. Adjoints accumulate
(`+=`), so a name used twice (fan-out) receives the sum of its gradients.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError
from .tape import Tape


def forward(tape: Tape, at: Mapping[str, object]) -> list:
    """Every node's value, in tape order. `at` maps each variable name to its value."""
    missing = [name for name in tape.variables if name not in at]
    if missing:
        shown = missing[:5]
        listed = ", ".join(shown) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        example = ",".join(f"{m}=..." for m in shown)
        raise InputError(f"no value for {_plural(len(missing), 'variable')} {listed}: "
                         f"give {'it' if len(missing) == 1 else 'them'} with --at {example}")
    values: list = [None] * len(tape)
    for name, i in tape.variables.items():
        values[i] = at[name]
    for i, v in tape.literals.items():
        values[i] = v
    ops, inputs = tape.ops, tape.inputs
    with np.errstate(all="ignore"):
        for i, op in enumerate(ops):
            ins = inputs[i]
            if not ins:
                continue
            if len(ins) == 2:
                values[i] = op.value(values[ins[0]], values[ins[1]])
            elif len(ins) == 1:
                values[i] = op.value(values[ins[0]])
            else:
                values[i] = op.value(*[values[j] for j in ins])
    return values


def local_partials(tape: Tape, values: Sequence) -> list:
    """Each node's local derivatives ∂node/∂input, one tuple per node (empty for leaves)."""
    out: list = [()] * len(tape)
    ops, inputs = tape.ops, tape.inputs
    with np.errstate(all="ignore"):
        for i, op in enumerate(ops):
            ins = inputs[i]
            if not ins:
                continue
            if len(ins) == 2:
                out[i] = op.partials(values[i], values[ins[0]], values[ins[1]])
            elif len(ins) == 1:
                out[i] = op.partials(values[i], values[ins[0]])
            else:
                out[i] = op.partials(values[i], *[values[j] for j in ins])
    return out


def active(tape: Tape, wrt: Sequence[str]) -> list[bool]:
    """Which nodes depend on a variable in `wrt` (only these carry gradients)."""
    flags = [False] * len(tape)
    for name in wrt:
        flags[tape.variables[name]] = True
    inputs = tape.inputs
    for i in range(len(tape)):
        ins = inputs[i]
        if ins and not flags[i]:
            for j in ins:
                if flags[j]:
                    flags[i] = True
                    break
    return flags


def backward(tape: Tape, partials: Sequence, flags: Sequence[bool], output: int) -> list:
    """Adjoints ∂output/∂node for every active node (None elsewhere): one reverse sweep."""
    n = len(tape)
    adj: list = [None] * n
    if not flags[output]:
        return adj
    adj[output] = np.float64(1.0)
    inputs = tape.inputs
    with np.errstate(all="ignore"):
        for i in range(output, -1, -1):
            g = adj[i]
            if g is None:
                continue
            ins = inputs[i]
            if not ins:
                continue
            ps = partials[i]
            for k, j in enumerate(ins):
                if flags[j]:
                    contribution = g * ps[k]
                    prev = adj[j]
                    adj[j] = contribution if prev is None else prev + contribution
    # Active nodes the output does not reach have gradient 0, not "none".
    zero = np.float64(0.0)
    for i in range(n):
        if flags[i] and adj[i] is None:
            adj[i] = zero
    return adj


def jvp(tape: Tape, partials: Sequence, seed: Mapping[int, object]) -> list:
    """Tangents dnode/dt for a direction given on input nodes: one forward sweep."""
    n = len(tape)
    tangent: list = [None] * n
    for i, v in seed.items():
        tangent[i] = v
    inputs = tape.inputs
    with np.errstate(all="ignore"):
        for i in range(n):
            ins = inputs[i]
            if not ins:
                continue
            ps = partials[i]
            total = None
            for k, j in enumerate(ins):
                t = tangent[j]
                if t is not None:
                    term = ps[k] * t
                    total = term if total is None else total + term
            tangent[i] = total
    return tangent


def nonfinite_warnings(tape: Tape, values: Sequence, partials: Sequence,
                       flags: Sequence[bool]) -> list[str]:
    """One warning for each node where a non-finite number is born (not for those it reaches)."""
    warnings: list[str] = []
    inputs, ops = tape.inputs, tape.ops
    for i in range(len(tape)):
        ins = inputs[i]
        if not ins:
            continue
        if not _finite(values[i]):
            if all(_finite(values[j]) for j in ins):
                op = ops[i]
                note = f" ({op.note})" if op.note else ""
                warnings.append(
                    f"node {i} `{tape.expr(i, 40)}`: {op.name} gives {_word(values[i])}{note}")
            continue
        if not flags[i]:
            continue
        ps = partials[i]
        for k, j in enumerate(ins):
            if flags[j] and not _finite(ps[k]) and all(_finite(values[m]) for m in ins):
                op = ops[i]
                note = f" ({op.note})" if op.note else ""
                warnings.append(
                    f"node {i} `{tape.expr(i, 40)}` ({op.name}): its local derivative with "
                    f"respect to `{tape.label(j, 40)}` is {_word(ps[k])}{note}; gradients "
                    "through it are not finite")
                break
    return warnings


def _finite(v) -> bool:
    try:
        return math.isfinite(v)  # numpy float64 scalars are floats: the fast path
    except TypeError:
        return bool(np.all(np.isfinite(v)))


def _word(v) -> str:
    v = float(v) if np.ndim(v) == 0 else v
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v == float("inf"):
            return "Infinity"
        if v == float("-inf"):
            return "-Infinity"
        return repr(v)
    return "not finite"


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
