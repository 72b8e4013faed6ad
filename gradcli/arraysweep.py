"""Batch chunks swept by a tape compiled once into straight-line numpy code over columns.

Batch mode runs one per-row tape over chunk after chunk. The interpreted sweeps (engine.py) pay,
per chunk, for a loop over the nodes and a fresh array (and its page faults) for every value,
partial and adjoint. `compile_sweep` writes one function instead: the forward sweep, then one
reverse sweep per output over the nodes that carry a gradient, with the local partials fused
in, as numpy calls writing (out=) into buffer slots reused across chunks (a dead value's slot
is taken over in place). The arrays handed back come from a pool, and one is used again only
when nobody else holds it (its reference count says so): a caller that keeps a chunk keeps it.

The arithmetic is the engine's operation for operation (ops.py's rules as numpy calls, same
operands, same order), so the numbers are bit for bit the engine's: a sign rides along a product
((-a)·b = -(a·b) exactly) but is made real before any sum (where a zero's sign could differ).
Ops without a rule here run through their ops.py functions, as the engine runs them. The text
holds only this module's own words (slots, temporaries, numpy names from the tables below);
literals and ops are in the namespace, never written from user text. tests/test_arraysweep.py
checks it against the engine on random formulas with NaN, ±Infinity and signed zeros.
"""

from __future__ import annotations

import sys
import threading
from typing import Mapping, Sequence

import numpy as np

from .engine import _scaled  # g · p as the engine's tensor sweep takes it
from .ops import builtin
from .tape import Tape

#: Longer tapes are swept by the engine: compile() would cost more than it saves.
MAX_NODES = 3000

#: The most bytes of handed-out arrays kept for reuse, per thread.
POOL_BYTES = 32 << 20

#: Forward rules as numpy calls with out=: op name -> ufunc names applied in turn; "A" is the
#: first input, "B" the second, "T" the running result.
_FORWARD = {
    "add": [("add", "A", "B")], "sub": [("subtract", "A", "B")],
    "mul": [("multiply", "A", "B")], "div": [("true_divide", "A", "B")],
    "neg": [("negative", "A")], "exp": [("exp", "A")], "log": [("log", "A")],
    "log2": [("log2", "A")], "log10": [("log10", "A")], "sqrt": [("sqrt", "A")],
    "sin": [("sin", "A")], "cos": [("cos", "A")], "tan": [("tan", "A")],
    "asin": [("arcsin", "A")], "acos": [("arccos", "A")], "atan": [("arctan", "A")],
    "sinh": [("sinh", "A")], "cosh": [("cosh", "A")], "tanh": [("tanh", "A")],
    "abs": [("absolute", "A")], "sign": [("sign", "A")], "cbrt": [("cbrt", "A")],
    "atan2": [("arctan2", "A", "B")], "softplus": [("logaddexp", 0.0, "A")],
    "relu": [("maximum", "A", 0.0)],
    # ops.py: 1.0 / (1.0 + np.exp(-a))
    "sigmoid": [("negative", "A"), ("exp", "T"), ("add", 1.0, "T"), ("true_divide", 1.0, "T")],
}

#: Local partials (ops.py's formulas, the same operations in the same order): op name -> one
#: entry per input: "1" (the gradient passes), "-1" (negated), "A"/"B"/"Y" (that value as
#: is), or (sign, steps) with steps as in _FORWARD ("Y" the node's value) and sign -1 for a
#: result that ops.py negates last.
_PARTIALS = {
    "id": ["1"], "add": ["1", "1"], "sub": ["1", "-1"], "neg": ["-1"],
    "mul": ["B", "A"],
    "div": [(1, [("true_divide", 1.0, "B")]), (-1, [("true_divide", "Y", "B")])],
    "exp": ["Y"],
    "sqrt": [(1, [("true_divide", 0.5, "Y")])],
    "sin": [(1, [("cos", "A")])], "cos": [(-1, [("sin", "A")])],
    "tan": [(1, [("multiply", "Y", "Y"), ("add", 1.0, "T")])],
    "tanh": [(1, [("multiply", "Y", "Y"), ("subtract", 1.0, "T")])],
    "atan": [(1, [("multiply", "A", "A"), ("add", 1.0, "T"), ("true_divide", 1.0, "T")])],
    "asin": [(1, [("multiply", "A", "A"), ("subtract", 1.0, "T"), ("sqrt", "T"),
                  ("true_divide", 1.0, "T")])],
    "acos": [(-1, [("multiply", "A", "A"), ("subtract", 1.0, "T"), ("sqrt", "T"),
                   ("true_divide", 1.0, "T")])],
    "sinh": [(1, [("cosh", "A")])], "cosh": [(1, [("sinh", "A")])],
    "sigmoid": [(1, [("subtract", 1.0, "Y"), ("multiply", "Y", "T")])],
    "cbrt": [(1, [("multiply", 3.0, "Y"), ("multiply", "T", "Y"), ("true_divide", 1.0, "T")])],
}

_ONE, _MINUS = "1", "-1"


class _Code:
    """The generated function in the making: SSA temporaries, instructions, then buffer slots."""

    def __init__(self) -> None:
        self.kind: list[str] = []  # per temp: col (read only), const, buf, out (pooled), ro
        self.text: list[str] = []  # per temp: how it is read (filled in at emission)
        self.instrs: list[tuple] = []  # (dest, fn, args): fn a ufunc name, "fill", or code
        self.namespace: dict = {"np": np}

    def temp(self, kind: str, text: str | None = None) -> int:
        self.kind.append(kind)
        self.text.append(text)
        return len(self.kind) - 1

    def const(self, value) -> str:
        name = f"K{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def ufunc(self, fn: str, args: list, kind: str = "buf") -> int:
        """dest = fn(*args) into a slot; fn "fill": args[0] everywhere; kind "ro": a call through
        ops.py (fn is code then), whose result may be one of its inputs: read only."""
        dest = self.temp(kind)
        self.instrs.append((dest, fn, args))
        return dest

    def generic(self, code: str, args: list) -> int:
        return self.ufunc(code, args, "ro")


def compile_sweep(tape: Tape, wrt: Sequence[str], flags: Sequence[bool],
                  given: Mapping[str, float] | Sequence[str] = ()) -> "ArraySweep | None":
    """The compiled sweep of a per-row tape for batch mode (every variable a column, the
    `given` ones filled from their --at values); None when the tape is too long for it. A
    formula batch-run again in the same process (the API, a notebook, the benchmarks) finds its
    sweep made already: the cache's key is the tape's whole structure and values."""
    if len(tape) > MAX_NODES or not tape.outputs:
        return None
    if not all(builtin(op) for op in tape.ops):  # a replaced rule: the engine runs it
        return None
    given = dict(given) if isinstance(given, Mapping) else dict.fromkeys(given, 0.0)
    key = (tuple(op.name for op in tape.ops), tuple(tape.inputs), tuple(tape.variables.items()),
           tuple((i, float(v).hex()) for i, v in tape.literals.items()), tuple(tape.outputs),
           tuple(wrt), tuple(flags), tuple((k, float(v).hex()) for k, v in given.items()))
    got = _SWEEPS.get(key)
    if got is None:
        if len(_SWEEPS) >= 64:
            _SWEEPS.clear()
        got = _SWEEPS[key] = ArraySweep(tape, list(wrt), list(flags), given)
    return got


_SWEEPS: dict[tuple, "ArraySweep"] = {}


class ArraySweep:
    """fn(columns, n) -> (values per output, [{variable: gradient column}] per output)."""

    def __init__(self, tape: Tape, wrt: list[str], flags: list[bool], given: dict):
        self.names = list(tape.variables)
        self.given = given
        self.needs = [name for name in self.names if name not in given]  # columns read
        self.wrt = wrt
        code = _Code()
        self.source, (self.slots, self.outs) = _generate(code, tape, wrt, flags, self.names)
        self.namespace = code.namespace
        exec(_code_of(self.source), self.namespace)  # our own text only: see the module doc
        self.fn = self.namespace["_sweep"]
        self.local = threading.local()

    def __call__(self, columns: Mapping[str, np.ndarray], n: int):
        state = _buffers(n, self.slots)
        own = self.local.__dict__.get("fixed")
        if self.given and (own is None or len(next(iter(own.values()))) < state.cap):
            own = self.local.fixed = {name: np.full(state.cap, v, dtype=np.float64)
                                      for name, v in self.given.items()}
        if own:
            cols = [own[name][:n] if name in own else columns[name] for name in self.names]
        else:
            cols = [columns[name] for name in self.names]
        slots = state.slots[:self.slots]
        if n != state.cap:
            slots = [s[:n] for s in slots]
        with np.errstate(all="ignore"):
            values, grads = self.fn(cols, n, slots, state.take(self.outs, n))
        wrt = self.wrt
        return values, [dict(zip(wrt, g)) for g in grads]


_CODE: dict[str, object] = {}


def _code_of(source: str):
    """compile() of a generated text, kept for the process: a formula batch-run again (the API,
    a notebook, the benchmarks) compiles once. The text holds no values (they are in the
    namespace), so equal texts are equal code."""
    code = _CODE.get(source)
    if code is None:
        if len(_CODE) >= 128:
            _CODE.clear()
        code = _CODE[source] = compile(source, "<gradcli.arraysweep>", "exec")
    return code


_LOCAL = threading.local()


def _buffers(n: int, slots: int) -> "_State":
    """This thread's buffers, with room for n rows and at least `slots` slots. Every compiled
    sweep of the thread shares them (one sweep runs at a time in a thread), so a second run of
    a formula, or of another, finds its memory mapped already."""
    state = getattr(_LOCAL, "state", None)
    if state is None or state.cap < n:
        state = _LOCAL.state = _State(max(n, 1))
    while len(state.slots) < slots:
        state.slots.append(np.empty(state.cap))
    return state


class _State:
    """One thread's buffers: the slots (reused every chunk) and the pool of arrays handed out,
    each taken again once only the pool holds it (nobody else has a reference, or a view)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.slots: list[np.ndarray] = []
        self.pool: list[np.ndarray] = []

    def take(self, k: int, n: int) -> list[np.ndarray]:
        """k arrays of n rows to hand out: from the pool where nobody holds one any more."""
        getrefcount = sys.getrefcount
        out = []
        for a in self.pool:  # the first k free ones, not a scan of the whole pool each chunk
            if len(out) == k:
                break
            if getrefcount(a) <= 3:  # the pool's list, the loop variable, getrefcount's argument
                out.append(a)
        while len(out) < k:
            a = np.empty(self.cap)
            if (len(self.pool) + 1) * self.cap * 8 <= POOL_BYTES:
                self.pool.append(a)
            out.append(a)
        return out if n == self.cap else [a[:n] for a in out]


def _generate(code: _Code, tape: Tape, wrt: list[str], flags: list[bool],
              names: list[str]) -> tuple[str, list]:
    ops, inputs = tape.ops, tape.inputs
    n_nodes = len(tape)
    literals = tape.literals
    # Which nodes are columns (they depend on a variable) and which are constants (computed
    # here, once, by ops.py as the engine computes them).
    column = [False] * n_nodes
    for i in range(n_nodes):
        if i in literals:
            continue
        ins = inputs[i]
        column[i] = not ins or any(column[j] for j in ins)
    value: list = [None] * n_nodes  # node -> temp
    var_index = {tape.variables[name]: k for k, name in enumerate(names)}
    consts: list = [None] * n_nodes
    with np.errstate(all="ignore"):
        for i in range(n_nodes):
            ins = inputs[i]
            if column[i]:
                continue
            if not ins:
                consts[i] = literals[i]
            else:  # as engine.forward computes it
                consts[i] = ops[i].value(*[consts[j] for j in ins])
            value[i] = code.temp("const", code.const(consts[i]))
    for i, k in var_index.items():
        value[i] = code.temp("col", f"c{k}")
    # -- forward --------------------------------------------------------------------------------
    op_names: dict[int, str] = {}
    for i in range(n_nodes):
        if not column[i] or not inputs[i]:
            continue
        op = ops[i]
        ins = inputs[i]
        args = [value[j] for j in ins]
        rule = _forward_rule(op, ins, consts)
        if op.name == "id":
            value[i] = args[0]
        elif rule is not None:
            value[i] = _steps(code, rule, args, None)
        else:
            name = op_names.setdefault(i, code.const(op))
            value[i] = code.generic(f"{name}.value", args)
    # -- per output: the reverse sweep ------------------------------------------------------
    results = []
    for out in tape.outputs:
        adj: dict[int, tuple] = {}
        if flags[out]:
            adj[out] = (_ONE, 1)
        ones = [None]
        for i in range(out, -1, -1):
            if i not in adj or not inputs[i] or not column[i]:
                continue
            g = adj.pop(i)
            ins = inputs[i]
            if not any(flags[j] for j in ins):
                continue
            contributions = _node_partials(code, tape, i, value, consts, flags, op_names, g,
                                           ones)
            for j, c in contributions:
                prev = adj.get(j)
                adj[j] = c if prev is None else _accumulate(code, prev, c, ones)
        grads = {}
        for name in wrt:
            j = tape.variables[name]
            grads[name] = _materialise(code, adj.get(j, (None, 1)), ones)
        results.append((value[out], grads))
    return _emit(code, results)


def _forward_rule(op, ins, consts):
    if op.name in _FORWARD:
        return _FORWARD[op.name]
    if op.name in ("max", "min") and len(ins) >= 2:
        fn = "maximum" if op.name == "max" else "minimum"
        steps = [(fn, "A", "B")]
        steps += [(fn, "T", f"X{k}") for k in range(2, len(ins))]
        return steps
    if op.name == "pow" and len(ins) == 2 and _is_two(consts[ins[1]]):
        return [("power", "A", "B")]  # a ** 2.0: numpy squares, np.power too
    return None


def _is_two(v) -> bool:
    return v is not None and np.ndim(v) == 0 and type(v) is np.float64 and float(v) == 2.0


def _steps(code: _Code, steps, args, y) -> int:
    """Run ufunc steps: "A"/"B"/"Xk" the inputs, "Y" the node's value, "T" the running result."""
    t = None
    for fn, *operands in steps:
        named = {"A": args[0], "B": args[1] if len(args) > 1 else None, "Y": y, "T": t}
        t = code.ufunc(fn, [float(o) if not isinstance(o, str) else named[o] if o in named
                            else args[int(o[1:])] for o in operands])
    return t


def _node_partials(code, tape, i, value, consts, flags, op_names, g, ones):
    """Node i's contributions to its inputs (input node, (temp, sign)), in the engine's order."""
    op = tape.ops[i]
    ins = tape.inputs[i]
    args = [value[j] for j in ins]
    y = value[i]
    rules = _PARTIALS.get(op.name)
    if op.name == "pow" and len(ins) == 2 and _is_two(consts[ins[1]]) and not flags[ins[1]]:
        # ops.py: where(b == 0, 0, b * a ** (b - 1)); for b = 2: a ** 1.0 is a, so 2.0 * a
        rules = [(1, [("multiply", 2.0, "A")]), None]
    out = []
    if rules is None or len(rules) != len(ins):
        name = op_names.setdefault(i, code.const(op))
        every = all(flags[j] for j in ins)
        if op.partial_each is not None and not every:
            ps = {}
            for k, j in enumerate(ins):
                if flags[j]:
                    ps[k] = code.generic(f"{name}.partial_each[{k}]", [y] + args)
        else:
            p = code.generic(f"{name}.partials", [y] + args)
            ps = {k: code.generic(f"_item{k}", [p]) for k, j in enumerate(ins) if flags[j]}
        gm = _materialise(code, g, ones)
        for k, j in enumerate(ins):
            if flags[j]:
                out.append((j, (code.generic("_scaled", [gm, ps[k]]), 1)))
        return out
    for k, j in enumerate(ins):
        if not flags[j]:
            continue
        rule = rules[k]
        if rule == _ONE:
            out.append((j, g))
            continue
        if rule == _MINUS:
            out.append((j, (g[0], -g[1])))
            continue
        if isinstance(rule, str):  # a value as is
            p, sign = {"A": args[0], "B": args[-1], "Y": y}[rule], 1
        else:
            sign, steps = rule
            p = _steps(code, steps, args, y)
        out.append((j, _times(code, g, (p, sign), ones)))
    return out


def _times(code, g, p, ones):
    """g · p with signs multiplied; a gradient of ones (the seed) times p is p itself."""
    (gt, gs), (pt, ps) = g, p
    if gt == _ONE:
        if code.kind[pt] == "const":  # ones · constant: a full column
            return (code.ufunc("multiply", [_ones(code, ones), pt]), gs * ps)
        return (pt, gs * ps)
    return (code.ufunc("multiply", [gt, pt]), gs * ps)


def _ones(code, ones):
    if ones[0] is None:
        ones[0] = code.ufunc("fill", [1.0])
    return ones[0]


def _materialise(code, g, ones) -> int:
    """A gradient as an array: zeros for none, ones for the seed, negated if its sign is -."""
    t, sign = g
    if t is None:
        return code.ufunc("fill", [0.0])
    if t == _ONE:
        t = _ones(code, ones)
    return t if sign > 0 else code.ufunc("negative", [t])


def _accumulate(code, prev, c, ones):
    """prev + c as the engine adds them (a + (-b) is a - b exactly; both negative: one is
    negated first, as the engine has it)."""
    (pt, ps), (ct, cs) = prev, c
    pt = _ones(code, ones) if pt == _ONE else pt  # x + x: the seed reaches x twice
    ct = _ones(code, ones) if ct == _ONE else ct
    if ps > 0 and cs > 0:
        return (code.ufunc("add", [pt, ct]), 1)
    if ps > 0:
        return (code.ufunc("subtract", [pt, ct]), 1)
    if cs > 0:
        return (code.ufunc("subtract", [ct, pt]), 1)
    return (code.ufunc("subtract", [code.ufunc("negative", [pt]), ct]), 1)


def _emit(code: _Code, results) -> tuple[str, list]:
    """Liveness, buffer slots (a dying input's slot taken over in place), and the text."""
    kind = code.kind
    returned = set()
    for v, grads in results:
        returned.add(v)
        returned.update(grads.values())
    for t in returned:
        if kind[t] == "buf":
            kind[t] = "out"
    last = {}
    for k, (dest, fn, args) in enumerate(code.instrs):
        for a in args:
            if isinstance(a, int):
                last[a] = k
    end = len(code.instrs)
    for t in returned:
        last[t] = end
    for dest, fn, args in reversed(code.instrs):  # an ops.py result may be (a view of) one of
        if kind[dest] == "ro" and dest in last:  # its inputs: they live as long as it does
            for a in args:
                if isinstance(a, int):
                    last[a] = max(last[a], last[dest])
    free: list[int] = []
    nslots = 0
    nouts = 0
    slot: dict[int, int] = {}
    lines = []
    text = code.text
    for k, (dest, fn, args) in enumerate(code.instrs):
        dying = [a for a in dict.fromkeys(a for a in args if isinstance(a, int))
                 if last.get(a) == k and kind[a] == "buf"]
        operands = [text[a] if isinstance(a, int) else repr(a) for a in args]
        if kind[dest] == "buf":
            if fn != "fill" and dying:
                slot[dest] = slot[dying[0]]
                dying = dying[1:]
            elif free:
                slot[dest] = free.pop()
            else:
                slot[dest] = nslots
                nslots += 1
            text[dest] = f"s{slot[dest]}"
            where = text[dest]
        elif kind[dest] == "out":
            text[dest] = where = f"o{nouts}"
            nouts += 1
        else:  # ro
            text[dest] = f"t{dest}"
            where = None
        for a in dying:
            free.append(slot[a])
        if last.get(dest) is None and kind[dest] == "buf":  # never read: free again
            free.append(slot[dest])
        if fn == "fill":
            lines.append(f" {text[dest]}.fill({operands[0]})")
        elif kind[dest] in ("buf", "out"):
            code.namespace[fn] = getattr(np, fn)  # a name from this module's tables
            out = f"out={where}" if fn in ("maximum", "minimum") else where  # numpy wants it so
            lines.append(f" {fn}({', '.join(operands)}, {out})")
        elif fn.startswith("_item"):
            lines.append(f" t{dest} = {operands[0]}[{fn[5:]}]")
        else:
            lines.append(f" t{dest} = {fn}({', '.join(operands)})")
    def shown(t):
        if kind[t] == "const":
            return f"np.broadcast_to({text[t]}, (n,))"
        if kind[t] == "ro":  # an ops.py result may be one of its inputs: never hand out a slot
            return f"_own({text[t]}, S)"
        return text[t]

    outs = []
    for v, grads in results:
        vt = shown(v)
        outs.append((vt, "(" + "".join(f"{shown(t)}, " for t in grads.values()) + ")"))
    lines.append(f" return [{', '.join(v for v, _ in outs)}], [{', '.join(g for _, g in outs)}]")
    code.namespace["_scaled"] = _scaled
    code.namespace["_own"] = _own
    head = ["def _sweep(C, n, S, O):"]
    ncols = sum(1 for k in kind if k == "col")
    if ncols:
        head.append(f" {', '.join(f'c{k}' for k in range(ncols))}, = C")
    if nslots:
        head.append(f" {', '.join(f's{k}' for k in range(nslots))}, = S")
    if nouts:
        head.append(f" {', '.join(f'o{k}' for k in range(nouts))}, = O")
    return "\n".join(head + lines) + "\n", (nslots, nouts)


def _own(a, slots):
    """a, or a copy of it when it lies in one of the slots (which the next chunk overwrites)."""
    if isinstance(a, np.ndarray) and any(np.may_share_memory(a, s) for s in slots):
        return a.copy()
    return a
