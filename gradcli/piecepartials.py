"""A piece of a scalar tape's local partials, one numpy call per op instead of one rule call per
node: what `engine.local_partials` gives for nodes a..b-1, as one flat float64 array with an
entry per input edge (the edges of node a, then of node a + 1, ...).

The `eval --json` writer prints every node's partials; at 10^6 nodes, calling each node's rule
on numpy scalars was a quarter of the writer's time. Here the common ops' partials are made for
the whole piece at once, by the very operations their rules use (rules.py), in the same order,
on the same float64 numbers: + - * / and negation are IEEE operations, correctly rounded, so an
array gives each element exactly the bits the scalar rule gives it.

- add, sub, neg, id: the constants 1 and -1.   mul: the other input's value.
- div: 1.0 / b and -y / b.   exp: y.   tanh: 1.0 - y * y.   sigmoid: y * (1.0 - y).
- pow with the exponent 2 (x^2) and an exponent that carries no gradient: 2 * a (the rule's
  b * a ** (b - 1), where a ** 1.0 is a itself).

Every other node (sin, cos, log, other powers, kinks, max, ...) gets its partials from its rule
called node by node on np.float64 scalars, as engine.local_partials calls it (op.partials(y, x)
for a one-input op with no kink and one rule, grouped by op; local_partials itself for the
rest): a transcendental function over an array may take a vectorised path whose last bit
differs from the scalar call's, so nothing here assumes it does not.

An entry of an input that carries no gradient may hold any number (the writer prints null for
it; local_partials may leave it None). tests/test_piecepartials.py compares every entry of an
active input with local_partials' on random formulas, bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from . import engine
from .tape import Tape

#: op name -> its code here (0: every other op, whose partials local_partials makes)
_ADD, _SUB, _MUL, _DIV, _NEG, _ID, _EXP, _TANH, _SIGMOID, _POW = range(1, 11)
CODES = {"add": _ADD, "sub": _SUB, "mul": _MUL, "div": _DIV, "neg": _NEG, "id": _ID,
         "exp": _EXP, "tanh": _TANH, "sigmoid": _SIGMOID, "pow": _POW}


class Flat(NamedTuple):
    """A piece's partials, one entry per input edge: `partials` (float64) and `of`, the node
    whose value each partial is, exactly (mul's ∂/∂a is b's value, exp's its own), or -1."""

    partials: np.ndarray
    of: np.ndarray


def flat(tape: Tape, values: np.ndarray, ids: np.ndarray, starts: np.ndarray, a: int, b: int,
         flags: Sequence[bool], convention: str = "cs231n") -> Flat | None:
    """Nodes a..b-1's local partials as local_partials(tape, values, convention, None, flags,
    a, b) gives them, flattened: entry e is the partial of the node owning edge e with respect
    to input ids[starts[a] + e]. `values`: float64, indexed by node id; `ids`, `starts`: every
    node's input ids one after another and where each node's begin (jsonnodes.Packed). None
    where a node of the piece is structural (no partials: its vjp stands in) or a rule gives
    something that is not a float; the caller then reads local_partials' tuples."""
    e0, e1 = int(starts[a]), int(starts[b])
    out = np.full(e1 - e0, np.nan)
    of = np.full(e1 - e0, -1, np.int64)
    if e1 == e0:
        return Flat(out, of)
    ops = tape.ops[a:b]
    names = [op.name for op in ops]
    codes = np.fromiter(map(CODES.get, names, [0] * len(names)), np.int8, len(names))
    at = starts[a:b + 1].astype(np.int64) - e0
    lengths = np.diff(at)
    owner = np.repeat(np.arange(b - a), lengths)  # edge -> its node, from 0
    code = codes[owner]
    first = np.zeros(e1 - e0, bool)
    first[at[:-1][lengths > 0]] = True  # the edge of a node's first input
    second = ~first
    edge_ids = ids[e0:e1]
    x = values[edge_ids]  # each edge's input value
    y = values[a:b][owner]  # each edge's node value
    with np.errstate(all="ignore"):
        for c, fill in ((_ADD, 1.0), (_NEG, -1.0), (_ID, 1.0)):
            out[code == c] = fill
        sub = code == _SUB
        out[sub & first] = 1.0
        out[sub & second] = -1.0
        mul = code == _MUL
        m = np.flatnonzero(mul & first)  # ∂(a·b)/∂a = b: the next edge's value
        out[m] = x[m + 1]
        of[m] = edge_ids[m + 1]
        m = np.flatnonzero(mul & second)
        out[m] = x[m - 1]
        of[m] = edge_ids[m - 1]
        div = code == _DIV
        m = np.flatnonzero(div & first)
        out[m] = 1.0 / x[m + 1]
        m = div & second
        out[m] = np.negative(y[m]) / x[m]
        m = code == _EXP
        out[m] = y[m]
        of[m] = a + owner[m]
        m = code == _TANH
        out[m] = 1.0 - y[m] * y[m]
        m = code == _SIGMOID
        out[m] = y[m] * (1.0 - y[m])
        slow = codes == 0
        pw = np.flatnonzero(code == _POW)
        if pw.size:
            slow |= _pow(out, pw, x, edge_ids, owner, first, flags, b - a)
        slow &= lengths > 0
        bounds = at.tolist()
        alike: dict[int, tuple] = {}  # one-input ops with one plain rule: their nodes, together
        for k in np.flatnonzero(slow).tolist():
            op = ops[k]
            lo, hi = bounds[k], bounds[k + 1]
            if (hi - lo == 1 and op.kink is None and op.partial_each is None
                    and op.partials is not None):
                alike.setdefault(id(op), (op, []))[1].append(k)
                continue
            # a kink, per-input rules, several inputs or no partials: local_partials itself
            got = engine.local_partials(tape, values, convention, None, flags, a + k, a + k + 1,
                                        [tuple(edge_ids[lo:hi].tolist())])[0]
            if got is None:
                return None  # a structural op: no partials of its own
            try:
                out[lo:hi] = [np.nan if p is None else p for p in got]
            except (TypeError, ValueError):
                return None  # not floats
        for op, ks in alike.values():
            # local_partials' call, op.partials(y, x), node by node on the same np.float64s
            edges = at[ks]
            got = list(map(op.partials, values[a + np.array(ks)], x[edges]))
            try:
                out[edges] = [p for p, in got]
            except (TypeError, ValueError):
                return None  # not one float each
    return Flat(out, of)


def _pow(out: np.ndarray, pw: np.ndarray, x: np.ndarray, ids: np.ndarray, owner: np.ndarray,
         first: np.ndarray, flags: Sequence[bool], m: int) -> np.ndarray:
    """pow's partials where the exponent is exactly 2 and carries no gradient (x^2: 2 * a; its
    ∂/∂b is printed as null); the mask of the piece's other pow nodes, left to the rule."""
    base = pw[first[pw]]  # each pow node's edge to its base; its exponent's edge follows
    exponent = x[base + 1]
    live = np.fromiter(map(flags.__getitem__, ids[base + 1].tolist()), bool, base.size)
    fast = (exponent == 2.0) & ~live
    out[base[fast]] = 2.0 * x[base[fast]]
    rest = np.zeros(m, bool)
    rest[owner[base[~fast]]] = True
    return rest
