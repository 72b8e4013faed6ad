"""The reverse sweep of a scalar tape with each node's local partials computed inside the loop.

`gradients` gives what `engine.active`, `engine.local_partials` and `engine.backward` give
together (active flags, local partials, adjoints of one output), the same numbers, in one
backward loop over Python floats:

- The common ops (+ - * / neg ^ exp log sqrt sin cos tanh sigmoid id) have their partial
  written inline: g·∂node/∂input is computed where it is added, no tuple of partials is built.
  Every other op (kinks, max, where, ...) takes the general rule for its node (its Op's own
  partials, the --subgradient convention at a kink), as local_partials computes it.
- Python floats where numpy scalars give the very same number (+ - * / and ** are IEEE double
  operations either way; the partials of sin and cos are numpy's cos and sin, as the rule table
  computes them). Where Python raises instead (x/0, 0^-1, an overflow in ^) or gives a complex
  number (a negative base under a fractional power), that node takes numpy's rule instead.
- Active flags are known from the leaves up front (a node is inactive only if every input is):
  every computed node starts active, and the sweep itself finds the rare computed node none of
  whose inputs carries a gradient (2*pi, exp(0.5)). Its users may turn out inactive too: each
  node's first adjoint comes from its highest user, whose inputs tuple the sweep records (a
  tuple the tape keeps: no allocation), so only the windows from such a node up to its highest
  user are scanned (`_State.settle`). When some node is not reached from the output, a vjp
  passed an input nothing, or the windows would cover more than the tape, the full flags pass
  runs instead, from the lowest node found.
- The local partials (Result.partials, printed by eval --json) are engine.local_partials', made
  on first read (`Partials`); a run that shows no partials never computes them.

Tensors and exact fractions take the plain path (engine.active, local_partials, backward). No
recursion: one loop from the output down.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import engine
from .ops import lookup
from .tape import Tape

if TYPE_CHECKING:
    from .piecepartials import Flat

(_ADD, _SUB, _MUL, _DIV, _NEG, _POW, _EXP, _LOG, _SQRT, _SIN, _COS, _TANH, _SIGMOID,
 _ID) = map(lookup, ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin",
                     "cos", "tanh", "sigmoid", "id"))
_MINUS_ONE = array("l", [-1])


class Partials(Sequence):
    """Each node's local partials exactly as engine.local_partials gives them (with the same
    convention and flags), computed on the first read. `finite`: the sweep has shown that every
    partial of an active node with respect to an active input is a finite number (so
    nonfinite_warnings has no partial to warn about)."""

    __slots__ = ("_tape", "_values", "_convention", "_flags", "_list", "finite")

    def __init__(self, tape: Tape, values: Sequence, convention: str, flags: Sequence[bool],
                 finite: bool):
        self._tape, self._values, self._convention, self._flags = tape, values, convention, flags
        self._list: list | None = None
        self.finite = finite

    def computed(self) -> list:
        if self._list is None:
            self._list = engine.local_partials(self._tape, self._values, self._convention, None,
                                               self._flags)
        return self._list

    def __len__(self) -> int:
        return len(self._tape)

    def __getitem__(self, i):
        if type(i) is slice and self._list is None and i.step in (None, 1):
            # a piece (the --json writer reads 1 024 nodes at a time): made for that piece
            # alone and not kept, so the whole table never sits in memory at once
            a, b, _ = i.indices(len(self._tape))
            return engine.local_partials(self._tape, self._values, self._convention, None,
                                         self._flags, a, max(a, b))
        return self.computed()[i]

    def __iter__(self):
        return iter(self.computed())

    def piece(self, a: int, b: int, values: Sequence, inputs: Sequence) -> list:
        """Nodes a..b-1's partials (as self[a:b]) from `values` (indexed by node id) and their
        `inputs` (item k is node a + k's) in place of the tape's (engine.local_partials)."""
        if self._list is not None:
            return self._list[a:b]
        return engine.local_partials(self._tape, values, self._convention, None, self._flags,
                                     a, b, inputs)

    def flat(self, a: int, b: int, values: np.ndarray, ids: np.ndarray,
             starts: np.ndarray) -> "Flat | None":
        """Nodes a..b-1's partials as one float64 entry per input edge, from machine arrays
        (piecepartials.flat: the same numbers, one numpy call per op); None where that cannot
        give them, or where they are made and kept already (self.piece reads those)."""
        if self._list is not None:
            return None
        from . import piecepartials  # the forked --json writer's alone

        return piecepartials.flat(self._tape, values, ids, starts, a, b, self._flags,
                                  self._convention)


class _NoPartials:
    """Read by nonfinite_warnings when every active partial is known to be finite."""

    def __getitem__(self, i):
        return None


def nonfinite_warnings(tape: Tape, values: Sequence, partials: Sequence,
                       flags: Sequence[bool]) -> list[str]:
    """engine.nonfinite_warnings, without computing the local partials when the sweep has shown
    them finite (`Partials.finite`), and with no pass at all when every value is finite too."""
    if type(partials) is Partials and partials.finite:
        try:
            if math.isfinite(math.fsum(values)):  # any Infinity or NaN would make it one
                return []
        except (TypeError, ValueError, OverflowError):
            pass  # a tensor, or finite values whose sum overflows
        return engine.nonfinite_warnings(tape, values, _NoPartials(), flags)
    return engine.nonfinite_warnings(tape, values, partials, flags)


def gradients(tape: Tape, values: Sequence, wrt: Sequence[str], output: int,
              convention: str = "cs231n", kinks: list[int] | None = None):
    """(flags, partials, adjoints) of one output: what engine.active(tape, wrt), then
    engine.local_partials(tape, values, convention, kinks, flags) and engine.backward(tape,
    values, partials, flags, output) give, with the partials made on first read. Nodes at a kink
    are appended to `kinks`, in tape order, as local_partials appends them."""
    v = values[output]
    if type(v) is np.float64 or type(v) is float:
        found: list[int] = []
        got = _sweep(tape, values, wrt, output, convention, found)
        if got is not None:
            flags, adj, finite = got
            if kinks is not None:
                kinks.extend(reversed(found))
            return flags, Partials(tape, values, convention, flags, finite), adj
    flags = engine.active(tape, wrt)
    later = engine.LaterPartials.nodes(tape, values, flags)
    if later:  # big sigmoid or tanh arrays: their partials made only if read
        partials = engine.LaterPartials(tape, values, convention, kinks, flags, later)
    else:
        partials = engine.local_partials(tape, values, convention, kinks, flags)
    return flags, partials, engine.backward(tape, values, partials, flags, output)


def _leaf_flags(tape: Tape, wrt: Sequence[str]) -> list[bool]:
    """Every computed node active, the leaves exact: a wrt variable is active, a constant or
    another variable not (engine.active's answer wherever some input of a node is active)."""
    flags = [True] * len(tape)
    variables = tape.variables
    chosen = {variables[name] for name in wrt}
    for i in variables.values():
        if i not in chosen:
            flags[i] = False
    for i in tape.literals:
        flags[i] = False
    return flags


def _sweep(tape: Tape, values: Sequence, wrt: Sequence[str], output: int, convention: str,
           kinks: list[int]):
    """(flags, adjoints, finite) or None where the plain sweep must run (a tensor value)."""
    n = len(tape)
    flags = _leaf_flags(tape, wrt)
    inputs, ops = tape.inputs, tape.ops
    adj: list = [None] * n
    # the inputs tuple of the node that sent each node its first adjoint (its highest user
    # that sends one): a tuple the tape keeps anyway, so recording it allocates nothing
    src: list = [None] * n
    state = _State(tape, values, flags, adj, src, convention, kinks)
    for i in range(n - 1, output, -1):  # after the output: nothing reaches them
        state.unreached(i)
    if flags[output]:
        adj[output] = 1.0
    fl = float
    cos, sin = np.cos, np.sin
    ADD, MUL, SUB, DIV, EXP, TANH, SIN, COS, NEG, POW, LOG, SQRT, SIGMOID, ID = (
        _ADD, _MUL, _SUB, _DIV, _EXP, _TANH, _SIN, _COS, _NEG, _POW, _LOG, _SQRT, _SIGMOID, _ID)
    i = output
    with np.errstate(all="ignore"):
        while i >= 0:
            try:
                for i in range(i, -1, -1):
                    g = adj[i]
                    if g is None:
                        if inputs[i]:
                            state.unreached(i)
                        continue
                    op = ops[i]
                    ins = inputs[i]
                    if op is ADD:
                        a, b = ins
                        if flags[a]:
                            prev = adj[a]
                            if prev is None:
                                adj[a] = g
                                src[a] = ins
                            else:
                                adj[a] = prev + g
                            if flags[b]:
                                prev = adj[b]
                                if prev is None:
                                    adj[b] = g
                                    src[b] = ins
                                else:
                                    adj[b] = prev + g
                        elif flags[b]:
                            prev = adj[b]
                            if prev is None:
                                adj[b] = g
                                src[b] = ins
                            else:
                                adj[b] = prev + g
                        else:
                            state.inactive(i)
                    elif op is MUL:
                        a, b = ins
                        if flags[a]:
                            c = g * fl(values[b])
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                            if flags[b]:
                                c = g * fl(values[a])
                                prev = adj[b]
                                if prev is None:
                                    adj[b] = c
                                    src[b] = ins
                                else:
                                    adj[b] = prev + c
                        elif flags[b]:
                            c = g * fl(values[a])
                            prev = adj[b]
                            if prev is None:
                                adj[b] = c
                                src[b] = ins
                            else:
                                adj[b] = prev + c
                        else:
                            state.inactive(i)
                    elif op is SUB:
                        a, b = ins
                        if flags[a]:
                            prev = adj[a]
                            if prev is None:
                                adj[a] = g
                                src[a] = ins
                            else:
                                adj[a] = prev + g
                            if flags[b]:
                                prev = adj[b]
                                if prev is None:
                                    adj[b] = -g
                                    src[b] = ins
                                else:
                                    adj[b] = prev - g
                        elif flags[b]:
                            prev = adj[b]
                            if prev is None:
                                adj[b] = -g
                                src[b] = ins
                            else:
                                adj[b] = prev - g
                        else:
                            state.inactive(i)
                    elif op is DIV:
                        a, b = ins
                        d = fl(values[b])
                        if flags[a]:
                            c = g * (1.0 / d)  # d = 0: ZeroDivisionError, numpy's rule below
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                            if flags[b]:
                                c = g * (-fl(values[i]) / d)
                                prev = adj[b]
                                if prev is None:
                                    adj[b] = c
                                    src[b] = ins
                                else:
                                    adj[b] = prev + c
                        elif flags[b]:
                            c = g * (-fl(values[i]) / d)
                            prev = adj[b]
                            if prev is None:
                                adj[b] = c
                                src[b] = ins
                            else:
                                adj[b] = prev + c
                        else:
                            state.inactive(i)
                    elif op is EXP:
                        a = ins[0]
                        if flags[a]:
                            c = g * fl(values[i])
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is TANH:
                        a = ins[0]
                        if flags[a]:
                            y = fl(values[i])
                            c = g * (1.0 - y * y)
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is SIN:
                        a = ins[0]
                        if flags[a]:
                            c = g * fl(cos(values[a]))
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is COS:
                        a = ins[0]
                        if flags[a]:
                            c = g * fl(-sin(values[a]))
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is NEG:
                        a = ins[0]
                        if flags[a]:
                            prev = adj[a]
                            if prev is None:
                                adj[a] = -g
                                src[a] = ins
                            else:
                                adj[a] = prev - g
                        else:
                            state.inactive(i)
                    elif op is POW and not flags[ins[1]]:
                        a, b = ins
                        if flags[a]:
                            e = fl(values[b])
                            # b·a^(b-1), 0 for b = 0; Python raises for 0^-1 or an overflow
                            p = e * fl(values[a]) ** (e - 1.0) if e != 0.0 else 0.0
                            if type(p) is not float:  # complex: a negative base, fractional b
                                if not state.general(i, g):
                                    return None
                                continue
                            c = g * p
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is LOG:
                        a = ins[0]
                        if flags[a]:
                            y = fl(values[i])
                            c = g * (1.0 / fl(values[a]) if y == y else math.nan)
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is SQRT:
                        a = ins[0]
                        if flags[a]:
                            c = g * (0.5 / fl(values[i]))
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is SIGMOID:
                        a = ins[0]
                        if flags[a]:
                            y = fl(values[i])
                            c = g * (y * (1.0 - y))
                            prev = adj[a]
                            if prev is None:
                                adj[a] = c
                                src[a] = ins
                            else:
                                adj[a] = prev + c
                        else:
                            state.inactive(i)
                    elif op is ID:
                        a = ins[0]
                        if flags[a]:
                            prev = adj[a]
                            if prev is None:
                                adj[a] = g
                                src[a] = ins
                            else:
                                adj[a] = prev + g
                        else:
                            state.inactive(i)
                    elif not ins:
                        continue
                    elif not state.general(i, g):
                        return None
                break
            except ArithmeticError:
                # Python refused where numpy gives ±Infinity or NaN (x/0, 0^-1, an overflow in
                # ^): numpy's rule for node i (each branch raises before its first add)
                if not state.general(i, adj[i]):
                    return None
                i -= 1
    return state.finish()


class _State:
    """What the sweep learns besides the adjoints: computed nodes it does not reach, computed
    nodes with no active input, kinks, and whether every partial it used was finite."""

    __slots__ = ("tape", "values", "flags", "adj", "src", "convention", "kinks", "unsure",
                 "found", "full", "missed", "lowest")

    def __init__(self, tape, values, flags, adj, src, convention, kinks):
        self.tape, self.values, self.flags, self.adj, self.src = tape, values, flags, adj, src
        self.convention, self.kinks = convention, kinks
        self.unsure = False  # a general node saw a non-finite number, or a vjp
        self.found: list[int] = []  # computed nodes found inactive, highest first
        self.full = False  # settle every flag from `lowest` up (not only the users of `found`)
        self.missed = False  # some computed node has no adjoint: 0 if it is active
        self.lowest = 0  # the last (lowest) node found inactive or not reached

    def inactive(self, i: int) -> None:
        """Node i has no input that carries a gradient: inactive (the nodes that use it may be
        too: the flags are settled at the end). It passes nothing on."""
        self.flags[i] = False
        self.adj[i] = None
        self.found.append(i)
        self.lowest = i

    def unreached(self, i: int) -> None:
        """A computed node with no adjoint: its kink (if any) is still flagged, as
        local_partials flags it; whether it is active is settled at the end."""
        self.full = self.missed = True
        self.lowest = i
        op = self.tape.ops[i]
        if op.kink is not None:
            values = self.values
            mask = op.kink(values[i], *[values[j] for j in self.tape.inputs[i]])
            if np.any(mask):
                self.kinks.append(i)

    def general(self, i: int, g) -> bool:
        """Node i by its op's own rule (as local_partials and _backward_scalars compute it);
        False where a value is a tensor (the plain sweep takes over)."""
        tape, values, flags, adj, src = self.tape, self.values, self.flags, self.adj, self.src
        ins = tape.inputs[i]
        xs = [values[j] for j in ins]
        y = values[i]
        if type(y) is np.ndarray or any(type(x) is np.ndarray for x in xs):
            return False
        op = tape.ops[i]
        if not any(flags[j] for j in ins):
            self.inactive(i)
            if op.kink is not None and np.any(op.kink(y, *xs)):
                self.kinks.append(i)
            return True
        ps = _node_partials(op, y, xs, ins, flags, self.convention, i, self.kinks)
        if not engine.finite(g):
            self.unsure = True
        if ps is None:  # a structural op on scalars (sum(x), ...)
            self.unsure = True  # its vjp may pass nothing on to an input
            self.full = True  # and then `src` may miss a user of that input
            grads = op.vjp(g, y, *xs)
            for j, c in zip(ins, grads):
                if flags[j] and c is not None:
                    if type(c) is np.ndarray:
                        return False
                    prev = adj[j]
                    adj[j] = c if prev is None else prev + c
            return True
        for j, p in zip(ins, ps):
            if flags[j]:
                if type(p) is np.ndarray:
                    return False
                if not engine.finite(p):
                    self.unsure = True
                c = engine._times(g, p)
                if type(c) is np.float64:
                    c = float(c)
                prev = adj[j]
                if prev is None:
                    adj[j] = c
                    src[j] = ins
                else:
                    adj[j] = prev + c
        return True

    def settle(self) -> bool:
        """The flags made exact without the full pass, when every computed node was reached
        (no `full`). A computed node that turns out inactive uses only inactive nodes, at least
        one of them computed (the sweep itself finds those with none). Every user of a computed
        node u sent it an adjoint (u was flagged active then), the first from its highest user,
        whose inputs tuple is src[u]: u's users lie in u+1 .. that user. Only those windows are
        scanned, upwards, each node by the full pass's rule; a node found inactive opens its
        own. False when the windows would cover more than the full pass does (the caller runs
        it then: every flag set here is right)."""
        flags, adj, src, inputs = self.flags, self.adj, self.src, self.tape.inputs
        found = self.found[::-1]  # lowest first
        budget = len(inputs) - found[0]  # the length of the full pass
        m = len(found)
        i = limit = -1
        k = 0
        while True:
            i += 1
            if i > limit:  # past every open window: on to the next node the sweep found
                if k == m:
                    return True
                i = found[k]
            if k < m and found[k] == i:
                k += 1
            else:
                ins = inputs[i]
                if not ins or not flags[i] or flags[ins[0]]:
                    continue
                for j in ins:
                    if flags[j]:
                        break
                else:
                    flags[i] = False
                    adj[i] = None
                if flags[i]:
                    continue
            user = src[i]  # node i is inactive: where is its highest user?
            if user is None:  # none (the output)
                continue
            top = i
            while True:  # the first node above i with that very inputs tuple
                try:
                    top = inputs.index(user, top + 1, i + 1 + budget)
                except ValueError:
                    return False
                if inputs[top] is user:
                    break
            budget -= top - i
            if top > limit:
                limit = top

    def finish(self):
        """(flags, adjoints, finite): the flags made exact where the sweep had to guess,
        adjoints dropped where a node turns out inactive and set to 0 where an active node is
        not reached; the gradients of the variables as numpy numbers, as the plain sweep's."""
        flags, adj, tape = self.flags, self.adj, self.tape
        finite = not self.unsure
        zero = np.float64(0.0)
        if self.full or self.found and not self.settle():
            # In tape order a node is inactive when every input is: only a node whose first
            # input is inactive can be (the rest are active already). Below the lowest node
            # found inactive or not reached, every flag is right already.
            inputs = tape.inputs
            for i in range(self.lowest, len(inputs)):
                ins = inputs[i]
                if ins and not flags[ins[0]]:
                    for j in ins:
                        if flags[j]:
                            break
                    else:
                        flags[i] = False
                        adj[i] = None
        if self.missed:  # active computed nodes the output does not reach have gradient 0
            for i, ins in enumerate(tape.inputs):
                if ins and flags[i] and adj[i] is None:
                    adj[i] = zero
                    finite = False  # their partials were not seen
        for i in tape.variables.values():
            g = adj[i]
            if g is None:
                if flags[i]:  # a variable the output does not use
                    adj[i] = zero
            else:
                if type(g) is float:
                    adj[i] = g = np.float64(g)
                if finite and not math.isfinite(g):
                    finite = False
        return flags, adj, finite


def _node_partials(op, y, xs: list, ins, flags, convention: str, i: int, kinks: list[int]):
    """Node i's local partials, as engine.local_partials computes them."""
    if op.kink is not None:
        mask = op.kink(y, *xs)
        if np.any(mask):
            kinks.append(i)
            if op.subgradient is not None and convention != "cs231n":
                normal = op.partials(y, *xs)
                alt = op.subgradient(convention, y, *xs)
                return tuple(engine._select(mask, a, p) for a, p in zip(alt, normal))
    if op.partials is None:
        return None
    if op.partial_each is not None and not all(flags[j] for j in ins):
        return tuple(f(y, *xs) if flags[j] else None for f, j in zip(op.partial_each, ins))
    return op.partials(y, *xs)
