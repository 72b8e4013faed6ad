"""Forward sweep, local partials, reverse sweep (adjoints) and forward-mode tangents.

Each is one loop over the tape in order (or backwards); none recurses. Adjoints accumulate
(`+=`), so a name used twice (fan-out) receives the sum of its gradients.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np

from . import lanes
from .errors import InputError, ShapeError
from .ops import MINUS_ONE, ONE, POW_NAN_NOTE, Op
from .ops import _matmul_vjp
from .tape import Tape, active, shape_str  # noqa: F401 (engine.active, as before)
from .words import bounded_fraction, nonfinite_word, plural, short


def _check_missing(tape: Tape, at: Mapping[str, object]) -> None:
    missing = [name for name in tape.variables if name not in at]
    if missing:
        shown = [short(m) for m in missing[:5]]
        listed = ", ".join(shown) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        example = ",".join(f"{m}=..." for m in shown)
        raise InputError(f"no value for {plural(len(missing), 'variable')} {listed}: "
                         f"give {'it' if len(missing) == 1 else 'them'} with --at {example}"
                         + _near_misses(missing, [k for k in at if k not in tape.variables]))


def _near_misses(missing: Sequence[str], unused: Sequence[str]) -> str:
    """`--at X=1` for a variable x: "; X was given: did you mean x?" (case or a close spelling)."""
    import difflib

    notes = []
    for m in missing[:5]:
        hits = [u for u in unused if u.lower() == m.lower()] or difflib.get_close_matches(
            m, list(unused), n=1, cutoff=0.75)
        if hits:
            notes.append(f"{short(hits[0])} was given: did you mean {short(m)}?")
    return "; " + "; ".join(notes) if notes else ""


def forward(tape: Tape, at: Mapping[str, object]) -> list:
    """Every node's value, in tape order. `at` maps each variable name to its value."""
    _check_missing(tape, at)
    values: list = [None] * len(tape)
    for name, i in tape.variables.items():
        values[i] = _float64(at[name])
    for i, v in tape.literals.items():
        values[i] = v
    ops, inputs = tape.ops, tape.inputs
    # Only tensors can grow (a column plus a row is a matrix): then each binary or n-ary node's
    # result shape is checked against MAX_TENSOR_ELEMENTS before numpy allocates it.
    tensors = any(type(v) is np.ndarray for v in at.values()) or any(
        type(v) is np.ndarray for v in tape.literals.values())
    i = 0
    try:
        with np.errstate(all="ignore"):
            for i, op in enumerate(ops):
                ins = inputs[i]
                if not ins:
                    continue
                if tensors and op.name in UFUNCS:  # a big array's elementwise op: every core
                    xs = [values[j] for j in ins]
                    check_result_size(tape, i, xs)
                    got = lanes.ufunc(UFUNCS[op.name], *xs)
                    values[i] = op.value(*xs) if got is None else got
                elif len(ins) == 2:
                    if tensors:
                        check_result_size(tape, i, [values[ins[0]], values[ins[1]]])
                    values[i] = op.value(values[ins[0]], values[ins[1]])
                elif len(ins) == 1:
                    values[i] = op.value(values[ins[0]])
                else:
                    if tensors:
                        check_result_size(tape, i, [values[j] for j in ins])
                    values[i] = op.value(*[values[j] for j in ins])
    except (ValueError, IndexError) as exc:  # numpy's shape errors
        raise shape_error(tape, values, i, exc) from None
    return values


#: Elementwise ops whose value on float64 arrays is exactly one numpy ufunc call: on arrays big
#: enough (lanes.fits) the engine's forward sweep splits that call over the cores.
UFUNCS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
          "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
          "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh,
          "cosh": np.cosh, "atan": np.arctan, "asin": np.arcsin, "acos": np.arccos,
          "log2": np.log2, "log10": np.log10, "abs": np.abs, "sign": np.sign}


def _float64(v):
    """A Python float or int --at value as np.float64, so that the sweep computes as numpy does
    (1/0 is Infinity with a warning, not a ZeroDivisionError); anything else as it is."""
    t = type(v)
    return np.float64(v) if t is float or t is int else v


def downstream(tape: Tape, node: int) -> list[int]:
    """The computed nodes that depend on `node`, in tape order: what a change to it re-runs."""
    flags = bytearray(len(tape))
    flags[node] = 1
    out = []
    inputs = tape.inputs
    for i in range(node + 1, len(tape)):
        ins = inputs[i]
        if ins and any(flags[j] for j in ins):
            flags[i] = 1
            out.append(i)
    return out


def forward_again(tape: Tape, values: Sequence, order: Sequence[int], node: int, value) -> list:
    """`values` with `node` set to `value` and only the nodes in `order` (downstream(node))
    computed again: one evaluation at a nearby point without re-running the rest."""
    new = list(values)
    new[node] = _float64(value)
    ops, inputs = tape.ops, tape.inputs
    with np.errstate(all="ignore"):
        for i in order:
            new[i] = ops[i].value(*[new[j] for j in inputs[i]])
    return new


#: The most elements one tensor (an input or any intermediate) may have: 800 MB of float64.
MAX_TENSOR_ELEMENTS = 100_000_000


def check_result_size(tape: Tape, i: int, xs: list) -> None:
    """Refuse node i before it is computed when its result would exceed MAX_TENSOR_ELEMENTS:
    the broadcast shape of an elementwise op, the (n, m) of a matmul, the stack of n inputs."""
    if not any(type(x) is np.ndarray for x in xs):
        return
    op = tape.ops[i]
    shapes = [np.shape(x) for x in xs]
    if op.name == "matmul" and all(len(s) >= 1 for s in shapes):
        (a, b) = shapes
        rows = a[-2:-1] if len(a) > 1 else ()
        cols = b[-1:] if len(b) > 1 else ()
        shape = np.broadcast_shapes(a[:-2], b[:-2]) + rows + cols
    elif op.name == "stack":
        shape = (len(xs),) + np.broadcast_shapes(*shapes)
    elif op.elementwise:
        shape = np.broadcast_shapes(*shapes)  # a mismatch: ValueError, the caller's shape error
    else:
        return
    size = math.prod(shape)
    if size > MAX_TENSOR_ELEMENTS:
        from .errors import LimitError

        raise LimitError(f"{short(tape.expr(i, 40))}: the result would have {size:,} elements "
                         f"(shape {shape_str(shape)}), more than the {MAX_TENSOR_ELEMENTS:,} "
                         "gradcli computes in one tensor; use smaller inputs")


#: The largest numerator or denominator (in bits) --exact keeps; past it a value is a float, so
#: that x^(2^60) by repeated squaring costs a warning, not the machine's memory.
EXACT_BITS = 4096


def forward_exact(tape: Tape, at: Mapping[str, object]) -> tuple[list, list[int]]:
    """Values as exact fractions wherever every input is one and the op has a rational rule
    (ops.Op.exact); elsewhere floats. Returns the values and the nodes where exactness was lost
    (rational inputs, but a result that is not rational: exp, sqrt, 1/0, ..., or too large to
    keep: more than EXACT_BITS bits)."""
    _check_missing(tape, at)
    values: list = [None] * len(tape)
    for name, i in tape.variables.items():
        values[i] = _float64(at[name])
    for i, v in tape.literals.items():
        values[i] = literal_fraction(tape, i)
    lost: list[int] = []
    ops, inputs = tape.ops, tape.inputs
    i = 0
    try:
        with np.errstate(all="ignore"):
            for i, op in enumerate(ops):
                ins = inputs[i]
                if not ins:
                    continue
                xs = [values[j] for j in ins]
                rational = all(type(x) is Fraction for x in xs)
                if rational and op.exact is not None:
                    try:
                        v = op.exact(*xs)
                        if (v.numerator.bit_length() <= EXACT_BITS
                                and v.denominator.bit_length() <= EXACT_BITS):
                            values[i] = v
                            continue
                    except (ZeroDivisionError, ValueError, OverflowError):
                        pass
                values[i] = op.value(*[as_float(x) for x in xs])
                if rational:
                    lost.append(i)
    except (ValueError, IndexError) as exc:
        raise shape_error(tape, [as_float(v) for v in values], i, exc) from None
    return values, lost


def local_partials_exact(tape: Tape, values: Sequence, convention: str = "cs231n",
                         kinks: list[int] | None = None) -> list:
    """Local partials as fractions where the node and its inputs are exact, floats elsewhere."""
    floats = [as_float(v) for v in values]
    out = local_partials(tape, floats, convention, kinks)
    at_kink = set(kinks or ())
    ops, inputs = tape.ops, tape.inputs
    for i, op in enumerate(ops):
        ins = inputs[i]
        if not ins or op.exact_partials is None or type(values[i]) is not Fraction:
            continue
        xs = [values[j] for j in ins]
        if not all(type(x) is Fraction for x in xs):
            continue
        if i in at_kink and convention != "cs231n" and op.subgradient is not None:
            out[i] = tuple(_fraction(p) for p in out[i])  # 1/2 and 0 are exact too
            continue
        try:
            exact = op.exact_partials(values[i], *xs)
        except (ZeroDivisionError, ValueError, OverflowError):
            continue
        out[i] = tuple(p if p is not None else f for p, f in zip(exact, out[i]))
    return out


def literal_fraction(tape: Tape, i: int):
    """A number literal exactly as written (0.1 is 1/10); named constants and tensors as floats."""
    value = tape.literals[i]
    if np.ndim(value):
        return value
    # A folded minus sign may stand before parentheses: -(0), -(2.5)
    text = "".join(tape.source(i).split()).replace("(", "").replace(")", "")
    sign = 1
    while text[:1] in ("-", "+"):
        sign = -sign if text[0] == "-" else sign
        text = text[1:]
    exact = bounded_fraction(text)
    return value if exact is None else sign * exact  # None: pi, e, or a huge exponent


def as_float(v):
    """A value as float64 (fractions rounded to the nearest float)."""
    if type(v) is Fraction:
        try:
            return np.float64(float(v))
        except OverflowError:
            return np.float64(np.inf if v > 0 else -np.inf)
    return v


def _fraction(p):
    if type(p) is Fraction or np.ndim(p):
        return p
    f = float(p)
    return Fraction(repr(f)) if math.isfinite(f) else p


def shape_error(tape: Tape, values: Sequence, i: int, exc: Exception) -> ShapeError:
    """A shape mismatch at node i, naming the node, the operator and the input shapes."""
    op = tape.ops[i]
    ins = tape.inputs[i]
    shapes = [shape_str(np.shape(values[j])) for j in ins]
    pos = tape.starts[i]
    if op.symbol and len(ins) == 2:  # the caret goes under the operator itself
        gap_start = tape.ends[ins[0]]
        found = tape.text.find(op.symbol, gap_start, tape.starts[ins[1]])
        pos = found if found >= 0 else pos
        what = f"'{op.symbol}'"
    else:
        what = f"{op.name}()"
    detail = str(exc).split("\n")[0]
    if op.name == "index":  # s[y]: the caret under its '[', the indexed value's shape named
        found = tape.text.find("[", tape.ends[ins[0]], tape.ends[i])
        return ShapeError(f"index `{tape.expr(i, 40)}`: {detail} (`{tape.label(ins[0], 30)}` has "
                          f"shape {shapes[0]})", tape.text, found if found >= 0 else pos)
    if "axis" in detail and op.axis:
        message = f"{what} in `{tape.expr(i, 40)}`: {detail} (input shape {shapes[0]})"
    else:
        listed = " and ".join(shapes) if len(shapes) == 2 else ", ".join(shapes)
        message = f"shapes {listed} do not fit {what} in `{tape.expr(i, 40)}`"
        if op.note and not op.elementwise:
            message += f" ({op.note})"
        elif op.elementwise:
            message += " (elementwise operations broadcast as numpy does)"
    return ShapeError(message, tape.text, pos)


def local_partials(tape: Tape, values: Sequence, convention: str = "cs231n",
                   kinks: list[int] | None = None, flags: Sequence[bool] | None = None,
                   start: int = 0, stop: int | None = None,
                   inputs: Sequence | None = None) -> list:
    """Each node's local derivatives ∂node/∂input: a tuple per node (empty for leaves, None for
    structural ops such as matmul, whose reverse rule is a vjp).

    Where an op sits exactly at a kink (relu(0), a max tie, ...) its node id is appended to
    `kinks`, and the slope there follows `convention` (see ops.CONVENTIONS). Given `flags` (which
    nodes carry a gradient), ops with per-input rules skip the partials nobody reads (None).
    `start`, `stop`: only the nodes start..stop-1 (the list's item k is node start + k), so a
    writer can make them a piece at a time. `inputs`: those nodes' input ids (item k is node
    start + k's), in place of tape.inputs, with `values` any sequence indexed by node id (the
    --json writer's forked half reads machine arrays, not the tape's objects: see
    render/forked.py).
    """
    stop = len(tape) if stop is None else stop
    out: list = [()] * (stop - start)
    ops = tape.ops
    shift = 0 if inputs is None else start
    if inputs is None:
        inputs = tape.inputs
    with np.errstate(all="ignore"):
        for i in range(start, stop):
            op = ops[i]
            ins = inputs[i - shift]
            if not ins:
                continue
            if op.kink is not None:
                xs = [values[j] for j in ins]
                mask = op.kink(values[i], *xs)
                if np.any(mask):
                    if kinks is not None:
                        kinks.append(i)
                    if op.subgradient is not None and convention != "cs231n":
                        normal = op.partials(values[i], *xs)
                        alt = op.subgradient(convention, values[i], *xs)
                        out[i - start] = tuple(_select(mask, a, p) for a, p in zip(alt, normal))
                        continue
            if op.partials is None:
                out[i - start] = None  # a structural op: its vjp takes the place of partials
                continue
            if flags is not None and op.partial_each is not None and not all(
                    flags[j] for j in ins):
                xs = [values[j] for j in ins]
                out[i - start] = tuple(f(values[i], *xs) if flags[j] else None
                                       for f, j in zip(op.partial_each, ins))
                continue
            if len(ins) == 2:
                out[i - start] = op.partials(values[i], values[ins[0]], values[ins[1]])
            elif len(ins) == 1:
                out[i - start] = op.partials(values[i], values[ins[0]])
            else:
                out[i - start] = op.partials(values[i], *[values[j] for j in ins])
    return out


def _select(mask, a, b):
    return np.where(mask, a, b)[()]


def unbroadcast(g, shape: tuple):
    """Sum a gradient over the axes broadcasting added, so it has the input's shape again."""
    if np.shape(g) == shape:
        return g
    g = np.asarray(g)
    extra = g.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"a gradient of shape {g.shape} cannot be summed to shape {shape}")
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(k for k, n in enumerate(shape) if n == 1 and g.shape[k] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)[()] if shape == () else g.reshape(shape)


def seed_for(value):
    """The reverse sweep's starting gradient: 1 for a scalar output, ones for a tensor output
    (the gradients are then those of the sum of its elements)."""
    if isinstance(value, np.ndarray):
        return np.ones(value.shape)
    if type(value) is Fraction:
        return Fraction(1)
    return np.float64(1.0)


def backward(tape: Tape, values: Sequence, partials: Sequence, flags: Sequence[bool],
             output: int) -> list:
    """Adjoints ∂output/∂node for every active node (None elsewhere): one reverse sweep."""
    n = len(tape)
    adj: list = [None] * n
    if flags[output]:  # an output that depends on no variable leaves every gradient at 0
        adj[output] = seed_for(values[output])
        with np.errstate(all="ignore"):
            if any(type(v) is np.ndarray for v in values):
                _backward_tensors(tape, values, partials, flags, output, adj)
            else:
                _backward_scalars(tape, values, partials, flags, output, adj)
    # Active nodes the output does not reach have gradient 0, not "none".
    for i in range(n):
        if flags[i] and adj[i] is None:
            v = values[i]
            adj[i] = Fraction(0) if type(v) is Fraction else np.zeros(np.shape(v))[()]
    return adj


def _backward_scalars(tape: Tape, values, partials, flags, output: int, adj: list,
                      order: Sequence[int] | None = None) -> None:
    """The reverse sweep when every value is a scalar: no shapes to undo, arities unrolled.
    `order`: the nodes to visit, last first (default: every node from the output down)."""
    inputs, ops = tape.inputs, tape.ops
    for i in range(output, -1, -1) if order is None else order:
        g = adj[i]
        if g is None:
            continue
        ins = inputs[i]
        if not ins:
            continue
        ps = partials[i]
        if ps is None:  # a structural op on scalars (sum(x), ...)
            grads = ops[i].vjp(g, values[i], *[values[j] for j in ins])
            for j, c in zip(ins, grads):
                if flags[j] and c is not None:
                    prev = adj[j]
                    adj[j] = c if prev is None else prev + c
            continue
        if len(ins) == 2:
            a, b = ins
            if flags[a]:
                p = ps[0]
                c = g if p is ONE else _times(g, p)
                prev = adj[a]
                adj[a] = c if prev is None else prev + c
            if flags[b]:
                p = ps[1]
                c = g if p is ONE else (-g if p is MINUS_ONE else _times(g, p))
                prev = adj[b]
                adj[b] = c if prev is None else prev + c
        elif len(ins) == 1:
            a = ins[0]
            if flags[a]:
                p = ps[0]
                c = g if p is ONE else (-g if p is MINUS_ONE else _times(g, p))
                prev = adj[a]
                adj[a] = c if prev is None else prev + c
        else:
            for j, p in zip(ins, ps):
                if flags[j]:
                    c = _times(g, p)
                    prev = adj[j]
                    adj[j] = c if prev is None else prev + c


def _times(g, p):
    """g·p; a float times an exact fraction beyond float64's range is ±Infinity, not an error."""
    try:
        return g * p
    except OverflowError:
        return g * as_float(p)


def _backward_tensors(tape: Tape, values, partials, flags, output: int, adj: list,
                      order: Sequence[int] | None = None) -> None:
    """The reverse sweep with tensors: each input's share is contribution()'s (g·p or the
    op's vjp, summed back over the axes broadcasting added); a vjp runs once for all inputs.
    A partial that LaterPartials has not made yet is multiplied in without being made."""
    inputs = tape.inputs
    ndarray = np.ndarray
    pending = partials.pending if type(partials) is LaterPartials else None
    for i in range(output, -1, -1) if order is None else order:
        g = adj[i]
        if g is None:
            continue
        ins = inputs[i]
        if not ins:
            continue
        if pending and i in pending:
            c = _fused(tape.ops[i].name, g, values[i])
            if c is not None:  # g · (the partial), in one pass
                j = ins[0]
                prev = adj[j]
                adj[j] = c if prev is None else prev + c
                continue
        ps = partials[i]
        if ps is None:  # a structural op: one vjp call gives every input's share
            if tape.ops[i].vjp is _matmul_vjp:  # only the shares someone reads (issue 17)
                grads = tape.ops[i].vjp(g, values[i], values[ins[0]], values[ins[1]],
                                        need=(flags[ins[0]], flags[ins[1]]))
            else:
                grads = tape.ops[i].vjp(g, values[i], *[values[j] for j in ins])
            for k, j in enumerate(ins):
                if flags[j]:
                    c = _fitted(grads[k], values[j])
                    if c is not None:
                        prev = adj[j]
                        adj[j] = c if prev is None else prev + c
            continue
        for k, j in enumerate(ins):
            if flags[j]:
                c = _scaled(g, ps[k])
                v = values[j]
                if type(c) is ndarray or type(v) is ndarray:  # _fitted, inlined: the hot path
                    c = unbroadcast(c, np.shape(v))
                prev = adj[j]
                adj[j] = c if prev is None else prev + c


def _sigmoid_back(out, g, y):
    np.subtract(1.0, y, out=out)  # the slope as rules._sigmoid_slope makes it: y · (1 - y)
    np.multiply(y, out, out=out)
    np.multiply(g, out, out=out)  # then g · p, as _scaled multiplies


def _tanh_back(out, g, y):
    np.multiply(y, y, out=out)  # tanh's partial as its rule makes it: 1 - y · y
    np.subtract(1.0, out, out=out)
    np.multiply(g, out, out=out)


#: Unary ops whose local partial on a big float64 array the reverse sweep need not make: it
#: multiplies the gradient by it in one pass (lanes.run: cache-sized steps, over the cores),
#: with the operations, and the operand order, of making the partial and then g · p, so the
#: bits are the same (tests/test_lanes.py compares them).
FUSED = {"sigmoid": _sigmoid_back, "tanh": _tanh_back}


def _fused(name: str, g, y):
    """g · (node's partial) for a FUSED op's value y, or None where g does not fit (then the
    partial is made and multiplied as any other)."""
    if type(g) is not np.ndarray or not lanes.big(g, y):
        return None
    return lanes.run(FUSED[name], lanes.new(y), g, y)


class _Later:
    """A partial not made yet (LaterPartials)."""


_LATER = _Later()


class LaterPartials(Sequence):
    """local_partials' list for a tensor tape, except that the partials of big FUSED nodes
    (float64 arrays of at least lanes.MIN_ELEMENTS whose input carries a gradient) are made
    only when something reads them. The reverse sweep multiplies the gradient by such a
    partial without making it (an array as big, and a pass over it, saved: the two-layer net's
    σ' of issue 17); the table, --json, the warnings and forward mode read it, made then
    exactly as local_partials makes it, and kept."""

    def __init__(self, tape: Tape, values: Sequence, convention: str,
                 kinks: list[int] | None, flags: Sequence[bool], later: Sequence[int]):
        self._tape, self._values, self._convention, self._flags = tape, values, convention, flags
        self._list: list = []
        a = 0
        for i in later:  # in tape order, so that kinks are appended in tape order
            self._list += local_partials(tape, values, convention, kinks, flags, a, i)
            self._list.append(_LATER)
            a = i + 1
        self._list += local_partials(tape, values, convention, kinks, flags, a, len(tape))
        self.pending = set(later)

    @staticmethod
    def nodes(tape: Tape, values: Sequence, flags: Sequence[bool]) -> list[int]:
        """The nodes whose partial can wait: a FUSED op of gradcli's own, active, whose input
        is active, on a big float64 array."""
        from .ops import builtin

        ops, inputs = tape.ops, tape.inputs
        return [i for i, op in enumerate(ops) if op.name in FUSED
                and type(values[i]) is np.ndarray and flags[i] and len(inputs[i]) == 1
                and flags[inputs[i][0]] and builtin(op) and lanes.big(values[i])]

    def __len__(self) -> int:
        return len(self._list)

    def __getitem__(self, i):
        if type(i) is slice:
            return [self[k] for k in range(*i.indices(len(self._list)))]
        p = self._list[i]
        if p is _LATER:
            k = range(len(self._list))[i]
            p = self._list[k] = local_partials(self._tape, self._values, self._convention, None,
                                               self._flags, k, k + 1)[0]
            self.pending.discard(k)
        return p

    def __iter__(self):
        for k in range(len(self._list)):
            yield self[k]


def contribution(tape: Tape, values: Sequence, partials: Sequence, k: int, slot: int, g):
    """The gradient node k sends to its input in `slot`, given k's upstream gradient g.

    For an op with local partials: g · partials[k][slot] (g itself for a partial of 1, -g for
    -1), or None when that partial is None (local_partials skips inputs that carry no
    gradient). For a structural op (partials[k] is None): its vjp's share for that input, which
    may be None (an axis argument). Either way the result is summed back to the input's shape
    (unbroadcast). Call it inside np.errstate(all="ignore") to silence numpy's warnings.
    """
    ins = tape.inputs[k]
    ps = partials[k]
    if ps is None:
        c = tape.ops[k].vjp(g, values[k], *[values[m] for m in ins])[slot]
    else:
        c = _scaled(g, ps[slot])
    return _fitted(c, values[ins[slot]])


def _scaled(g, p):
    """g · p, or None for a partial nobody computed (as _times: never an OverflowError)."""
    if p is ONE:
        return g
    if p is MINUS_ONE:
        return -g
    if p is None:
        return None
    if type(g) is np.ndarray and type(p) is np.ndarray and g.size >= lanes.MIN_ELEMENTS:
        got = lanes.ufunc(np.multiply, g, p)  # a big array: every core
        if got is not None:
            return got
    try:
        return g * p
    except OverflowError:  # a float times an exact fraction beyond float64's range
        return g * as_float(p)


def _fitted(c, value):
    """A contribution summed back to its input's shape (undoing broadcasting)."""
    if c is not None and (type(c) is np.ndarray or type(value) is np.ndarray):
        return unbroadcast(c, np.shape(value))
    return c


def jvp(tape: Tape, values: Sequence, partials: Sequence, seed: Mapping[int, object]) -> list:
    """Tangents dnode/dt for a direction given on input nodes: one forward sweep."""
    n = len(tape)
    tangent: list = [None] * n
    for i, v in seed.items():
        tangent[i] = v
    with np.errstate(all="ignore"):
        for i in range(n):
            _jvp_node(tape, values, partials, tangent, i)
    return tangent


def _jvp_node(tape: Tape, values: Sequence, partials: Sequence, tangent, i: int) -> None:
    """Node i's tangent from its inputs' (`tangent` maps node ids to tangents; None: none)."""
    ins = tape.inputs[i]
    if not ins:
        return
    ts = [tangent[j] for j in ins]
    if all(t is None for t in ts):
        return
    op = tape.ops[i]
    if op.jvp is not None:
        total = op.jvp(ts, values[i], *[values[j] for j in ins])
    else:
        ps = partials[i]
        total = None
        for k, t in enumerate(ts):
            if t is not None:
                term = ps[k] * t
                total = term if total is None else total + term
    v = values[i]
    if total is not None and (type(total) is np.ndarray or type(v) is np.ndarray):
        shape = np.shape(v)
        if np.shape(total) != shape:
            if np.size(total) > math.prod(shape):  # a reduction such as max(v)
                total = unbroadcast(total, shape)
            else:  # an input that broadcast up to the output's shape
                total = np.broadcast_to(total, shape).copy()
    tangent[i] = total


# -- many sweeps: each one only over the nodes it reaches (issue 15) ------------------------------

class Sparse(Sequence):
    """One sweep's numbers, kept only for the nodes the sweep reached: indexing gives the number,
    else `missing(i)` (a zero of the node's shape for adjoints, None for tangents)."""

    __slots__ = ("got", "n", "missing")

    def __init__(self, got: dict, n: int, missing):
        self.got, self.n, self.missing = got, n, missing

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        v = self.got.get(i)
        return v if v is not None else self.missing(i)

    def __iter__(self):
        return (self[i] for i in range(self.n))


def _zero_of(values: Sequence, flags: Sequence[bool]):
    def zero(i: int):
        if not flags[i]:
            return None
        v = values[i]
        return Fraction(0) if type(v) is Fraction else np.zeros(np.shape(v))[()]
    return zero


def _none(i: int):
    return None


def _reach(starts: Sequence[int], edges, keep: Sequence[bool], budget: list[int], what: str):
    """For each start, the nodes reachable from it along `edges` (through nodes with `keep`), in
    ascending order. Every node found spends one unit of budget[0]; over it: a LimitError."""
    out = []
    for s in starts:
        seen = {s}
        stack = [s]
        while stack:
            i = stack.pop()
            for j in edges[i]:
                if keep[j] and j not in seen:
                    seen.add(j)
                    stack.append(j)
        budget[0] -= len(seen)
        if budget[0] < 0:
            from .errors import LimitError

            raise LimitError(f"{what}; raise --max-nodes (0: no limit) to go on")
        out.append(sorted(seen))
    return out


def _sweep_limit(count: int, sweeps: str, limit: int) -> str:
    return (f"the {count:,} {sweeps} would visit more than --max-nodes {limit:,} nodes in all "
            "(each sweep visits the nodes it reaches)")


def backward_many(tape: Tape, values: Sequence, partials: Sequence, flags: Sequence[bool],
                  outputs: Sequence[int], max_nodes: int = 0) -> list[Sparse]:
    """One reverse sweep per output, each only over the nodes that output reaches (not the
    whole tape), with its adjoints kept sparse. All the sweeps together may visit at most
    `max_nodes` nodes (0: no limit), checked before any arithmetic."""
    n = len(tape)
    budget = [max_nodes or n * len(outputs) + 1]
    starts = [o for o in outputs if flags[o]]
    orders = iter(_reach(starts, tape.inputs, flags, budget,
                         _sweep_limit(len(outputs), "reverse sweeps (one per output)",
                                      max_nodes)))
    tensors = any(type(v) is np.ndarray for v in values)
    sweep = _backward_tensors if tensors else _backward_scalars
    scratch: list = [None] * n
    zero = _zero_of(values, flags)
    out = []
    with np.errstate(all="ignore"):
        for o in outputs:
            if not flags[o]:
                out.append(Sparse({}, n, zero))
                continue
            order = next(orders)
            scratch[o] = seed_for(values[o])
            sweep(tape, values, partials, flags, o, scratch, order[::-1])
            got = {}
            for i in order:
                if scratch[i] is not None:
                    got[i] = scratch[i]
                    scratch[i] = None
            out.append(Sparse(got, n, zero))
    return out


def jvp_many(tape: Tape, values: Sequence, partials: Sequence, seeds: Mapping[int, object],
             max_nodes: int = 0) -> list[Sparse]:
    """One forward sweep per seeded input node, each only over the nodes that depend on it, with
    its tangents kept sparse (None where a node does not depend on it). All the sweeps together
    may visit at most `max_nodes` nodes (0: no limit), checked before any arithmetic."""
    n = len(tape)
    users: list[list[int]] = [[] for _ in range(n)]
    for i, ins in enumerate(tape.inputs):
        for j in ins:
            users[j].append(i)
    everything = [True] * n
    budget = [max_nodes or n * len(seeds) + 1]
    orders = _reach(list(seeds), users, everything, budget,
                    _sweep_limit(len(seeds), "forward sweeps (one per --wrt variable)",
                                 max_nodes))
    out = []
    with np.errstate(all="ignore"):
        for (start, seed), order in zip(seeds.items(), orders):
            tangent: dict = {start: seed}
            get = tangent.get
            view = _Lookup(get)
            for i in order:
                if i != start:
                    _jvp_node(tape, values, partials, view, i)
            out.append(Sparse(tangent, n, _none))
    return out


class _Lookup:
    """A dict read like a list (None where a node has no entry), written like one."""

    __slots__ = ("get", "set")

    def __init__(self, get):
        self.get = get
        self.set = get.__self__.__setitem__

    def __getitem__(self, i):
        return self.get(i)

    def __setitem__(self, i, v):
        if v is not None:
            self.set(i, v)


#: Ops whose value and local partials are finite wherever all their inputs are finite (sigmoid
#: of a huge number is 0 or 1, its slope 0; sin, cos, atan, tanh are bounded; comparisons give
#: 0 or 1; the rest pick or reorder their inputs). For an array node of one of these with finite
#: inputs, nonfinite_warnings skips the pass over its elements (issue 17).
FINITE_OF_FINITE = frozenset({"id", "neg", "abs", "sign", "relu", "max", "min", "sigmoid", "tanh",
                              "sin", "cos", "atan", "lt", "le", "gt", "ge", "eq", "ne", "where",
                              "transpose"})


def nonfinite_warnings(tape: Tape, values: Sequence, partials: Sequence,
                       flags: Sequence[bool]) -> list[str]:
    """One warning for each node where a non-finite number is born (not for those it reaches)."""
    warnings: list[str] = []
    inputs, ops = tape.inputs, tape.ops
    ndarray = np.ndarray
    known: dict[int, bool] = {}  # array nodes: whether every element is finite, found once

    def fin(j: int) -> bool:
        v = values[j]
        if type(v) is not ndarray:
            return finite(v)
        got = known.get(j)
        if got is None:
            got = known[j] = finite(v)
        return got

    for i in range(len(tape)):
        ins = inputs[i]
        if not ins:
            continue
        v = values[i]
        if type(v) is ndarray:
            if ops[i].name in FINITE_OF_FINITE and all(fin(j) for j in ins):
                known[i] = True  # and so are its local partials: nothing to say here
                continue
            ok = fin(i)
        else:
            ok = finite(v)
        if not ok:
            if all(fin(j) for j in ins):
                op = ops[i]
                note = f" ({op.note})" if op.note else ""
                if not np.any(np.isnan(values[i])) and not _at_pole(op, values, ins):
                    note = " (the result is beyond float64's range, about ±1.8e308)"
                elif op.name == "pow" and np.any(np.asarray(values[ins[0]]) < 0):
                    note = f" ({POW_NAN_NOTE})"
                word = nonfinite_word(values[i])
                warnings.append(f"node {i} `{tape.expr(i, 40)}`: {op.name} gives {word}{note}")
            continue
        if not flags[i]:
            continue
        ps = partials[i]
        if ps is None:
            continue
        for k, j in enumerate(ins):
            if flags[j] and not finite(ps[k]) and all(fin(m) for m in ins):
                op = ops[i]
                note = f" ({op.note})" if op.note else ""
                warnings.append(
                    f"node {i} `{tape.expr(i, 40)}` ({op.name}): its local derivative with "
                    f"respect to `{tape.label(j, 40)}` is {nonfinite_word(ps[k])}{note}; gradients "
                    "through it are not finite")
                break
    return warnings


def _at_pole(op: Op, values: Sequence, ins: Sequence[int]) -> bool:
    """Whether an Infinity comes from a pole (1/0, log 0, 0^-1: Op.pole's input is 0) rather
    than an overflow. The op's note explains poles; overflows get their own words."""
    k = op.pole
    return k is not None and bool(np.any(np.asarray(values[ins[k]]) == 0))


def finite(v) -> bool:
    """Whether a value (scalar or array) holds only finite numbers."""
    try:
        return math.isfinite(v)  # numpy float64 scalars are floats: the fast path
    except OverflowError:
        return True  # a Fraction beyond float64's range is still a finite number
    except TypeError:
        if type(v) is np.ndarray and v.dtype.kind == "f":
            return lanes.all_finite(v)  # in cache-sized steps, a big array on every core
        return bool(np.all(np.isfinite(v)))
