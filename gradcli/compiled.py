"""A scalar tape compiled once into straight-line Python over floats, then run many times.

Descent evaluates the same small tape thousands of times; the interpreted sweeps (engine.py)
pay for numpy scalars, a call per node for its value and another for its partials, and a loop.
`gradient_function(tape, output, wrt)` writes the forward sweep and the reverse sweep of one
output as the body of one Python function over floats and `math`, compiles it with compile()
and returns it: fn(x_1, ..., x_n) -> (value, (∂/∂wrt_1, ...)), the arguments being the tape's
variables in `tape.variables` order.

The generated text contains only this module's own expressions: node indices (v12, g12),
operators, `math` functions and constants written with repr() of a float. No user text goes
into it (names are never used: variables are positional arguments a0, a1, ...).

It is the interpreted sweep's twin, not its replacement: only the ops below compile (anything
else, a tensor constant, or a tape longer than MAX_NODES gives None: use engine.py). Where
float arithmetic refuses what numpy turns into a warning (math.log(0), math.exp(1000), 1/0,
math.pow of a negative base) the function raises ArithmeticError or ValueError: the caller
then runs the interpreted sweep at that point, which gives the value numpy gives and the
warning that explains it. tests/test_compiled.py checks it against engine.py on random
formulas.

`sweep_function(tape, flags)` is the same idea for `result.run`'s scalar path: every node's
value, local partials (as engine.local_partials gives them) and adjoint (as engine.backward
gives them, in the same order of accumulation), as Python floats, for a tape with one output.
It promises only what it can promise identically: at a kink (relu at 0), or where any value,
partial or adjoint is not finite, it raises ArithmeticError (as it does where math refuses),
and the caller runs the engine, whose warnings explain it.
"""

from __future__ import annotations

import math

from .ops import builtin
from .tape import Tape

#: Longer tapes are not compiled: compile() costs more than the sweeps it would save.
MAX_NODES = 5000

#: Ops with a float rule: forward expression and, per input, the local partial as an
#: expression (a = first input's value, b = second's, y = the node's value). None as a partial
#: means "the upstream gradient itself"; "-" its negation.
_UNARY = {
    "id": ("{a}", None),
    "neg": ("-{a}", "-"),
    "exp": ("exp({a})", "{y}"),
    "log": ("log({a})", "(1.0 / {a})"),
    "sqrt": ("sqrt({a})", "(0.5 / {y})"),
    "sin": ("sin({a})", "cos({a})"),
    "cos": ("cos({a})", "(-sin({a}))"),
    "tan": ("tan({a})", "(1.0 + {y} * {y})"),
    "tanh": ("tanh({a})", "(1.0 - {y} * {y})"),
    "sinh": ("sinh({a})", "cosh({a})"),
    "cosh": ("cosh({a})", "sinh({a})"),
    "atan": ("atan({a})", "(1.0 / (1.0 + {a} * {a}))"),
    "sigmoid": ("(1.0 / (1.0 + exp(-{a})))", "({y} * (1.0 - {y}))"),
    "relu": ("({a} if {a} > 0.0 or {a} != {a} else 0.0)", "(1.0 if {a} > 0.0 else 0.0)"),
}
_BINARY = {
    "add": ("{a} + {b}", None, None),
    "sub": ("{a} - {b}", None, "-"),
    "mul": ("{a} * {b}", "{b}", "{a}"),
    "div": ("{a} / {b}", "(1.0 / {b})", "(-{y} / {b})"),
}
_NAMESPACE = {name: getattr(math, name) for name in
              ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "atan")}
_NAMESPACE["_pow"] = math.pow
_NAMESPACE["_nan"] = math.nan
_NAMESPACE["_Fall"] = ArithmeticError
_NAMESPACE["__builtins__"] = {}


def _literal(value) -> str | None:
    """A scalar constant as Python source (repr of a float), or None if it cannot be one."""
    try:
        if getattr(value, "ndim", 0) or type(value).__name__ == "Fraction":
            return None
        f = float(value)
    except (TypeError, ValueError):
        return None
    return repr(f) if math.isfinite(f) else None


def source(tape: Tape, output: int, wrt: list[str]) -> str | None:
    """The generated function's text (None when some node has no float rule)."""
    if len(tape) > MAX_NODES:
        return None
    ops, inputs = tape.ops, tape.inputs
    names = list(tape.variables)
    slot = {tape.variables[n]: k for k, n in enumerate(names)}
    # Which nodes the output needs, and which of those carry a gradient.
    need = [False] * len(tape)
    need[output] = True
    for i in range(output, -1, -1):
        if need[i]:
            for j in inputs[i]:
                need[j] = True
    active = [False] * len(tape)
    for n in wrt:
        active[tape.variables[n]] = True
    for i in range(output + 1):
        if inputs[i] and any(active[j] for j in inputs[i]):
            active[i] = True
    lines = [f"def _f({', '.join(f'a{k}' for k in range(len(names)))}):"]
    const: dict[int, str] = {}
    pow_exponent: dict[int, str] = {}
    for i in range(output + 1):
        if not need[i]:
            continue
        name = ops[i].name
        ins = inputs[i]
        if not ins:
            if i in slot:
                lines.append(f" v{i} = a{slot[i]}")
                continue
            lit = _literal(_consts(tape).get(i))
            if lit is None:
                return None
            const[i] = lit
            lines.append(f" v{i} = {lit}")
            continue
        if name in _UNARY and len(ins) == 1:
            expr = _UNARY[name][0].format(a=f"v{ins[0]}")
        elif name in _BINARY and len(ins) == 2:
            expr = _BINARY[name][0].format(a=f"v{ins[0]}", b=f"v{ins[1]}")
        elif name == "pow" and len(ins) == 2:
            a, b = ins
            if b in const and not active[b]:
                pow_exponent[i] = const[b]
                expr = f"v{a} * v{a}" if float(const[b]) == 2.0 else f"_pow(v{a}, {const[b]})"
            else:
                expr = f"_pow(v{a}, v{b})"
        else:
            return None
        lines.append(f" v{i} = {expr}")
    # The reverse sweep: adjoints g<i>, assigned at their first contribution, += after.
    assigned: set[int] = set()

    def send(j: int, term: str) -> None:
        if not active[j]:
            return
        if j in assigned:
            lines.append(f" g{j} += {term}" if not term.startswith("-") else
                         f" g{j} -= {term[1:]}")
        else:
            assigned.add(j)
            lines.append(f" g{j} = {term}")

    if active[output]:
        lines.append(f" g{output} = 1.0")
        assigned.add(output)
    for i in range(output, -1, -1):
        if not (need[i] and active[i] and inputs[i]) or i not in assigned:
            continue
        name, ins, g = ops[i].name, inputs[i], f"g{i}"
        if name in _UNARY:
            rule = _UNARY[name][1]
            rules = [rule]
        elif name in _BINARY:
            rules = list(_BINARY[name][1:])
        else:  # pow
            a, b = ins
            if i in pow_exponent:
                c = float(pow_exponent[i])
                da = ("0.0" if c == 0 else f"(2.0 * v{a})" if c == 2.0 else
                      f"({repr(c)} * _pow(v{a}, {repr(c - 1.0)}))")
                rules = [da, None]
            else:
                rules = [f"(0.0 if v{b} == 0.0 else v{b} * _pow(v{a}, v{b} - 1.0))",
                         f"(v{i} * log(v{a}) if v{a} > 0.0 else (0.0 if v{a} == 0.0 and "
                         f"v{b} > 0.0 else _nan))"]
        for j, rule in zip(ins, rules):
            if not active[j]:
                continue
            if rule is None:
                send(j, g)
            elif rule == "-":
                send(j, "-" + g)
            else:
                send(j, f"{g} * {rule.format(a=f'v{ins[0]}', b=f'v{ins[-1]}', y=f'v{i}')}")
    grads = [f"g{tape.variables[n]}" if tape.variables[n] in assigned else "0.0" for n in wrt]
    lines.append(f" return v{output}, ({', '.join(grads)}{',' if len(grads) == 1 else ''})")
    return "\n".join(lines) + "\n"


def gradient_function(tape: Tape, output: int, wrt: list[str]):
    """fn(*variables) -> (value, gradients over wrt), compiled; None when the tape has an op or
    a constant without a float rule, or more than MAX_NODES nodes."""
    text = source(tape, output, wrt)
    if text is None:
        return None
    namespace = dict(_NAMESPACE)
    exec(compile(text, "<gradcli compiled tape>", "exec"), namespace)  # our own text only
    return namespace["_f"]


def _consts(tape: Tape) -> dict:
    """The tape's constants as parsed (Python floats where they are numbers), without asking the
    tape for numpy's float64 copies."""
    consts = getattr(tape, "consts", None)
    return tape.literals if consts is None else consts


#: Tapes longer than this get no sweep function: compile() costs ~20-80 µs a node, growing
#: with the size (measured on random tapes of 7 to 661 nodes), about ten interpreted sweeps.
SWEEP_NODES = 1000
#: Terms per line of the finiteness check (a long `+` chain nests deeply in the compiler).
_CHUNK = 64
#: Ops whose engine partials give None for an input that carries no gradient (partial_each).
_EACH = ("div", "pow")


def sweep_source(tape: Tape, flags: list[bool]) -> str | None:
    """The text of fn(*variables) -> (values, partials, adjoints) for a one-output scalar tape
    (None when an op or a constant has no float rule, or the tape is too long)."""
    n = len(tape)
    if n > SWEEP_NODES or len(tape.outputs) != 1:
        return None
    ops, inputs, consts = tape.ops, tape.inputs, _consts(tape)
    slot = {i: k for k, i in enumerate(tape.variables.values())}
    lines = [f"def _f({', '.join(f'a{k}' for k in range(len(slot)))}):"]
    shown: list[str] = []  # each node's partials tuple, as text
    part: dict[tuple[int, int], str | None] = {}  # (node, input k) -> partial; None: 1, "-": -1
    check: list[str] = []  # what must be finite
    for i in range(n):
        ins = inputs[i]
        if not ins:
            if i in slot:
                lines.append(f" v{i} = a{slot[i]}")
                check.append(f"v{i}")
            else:
                lit = _literal(consts.get(i))
                if lit is None:
                    return None
                lines.append(f" v{i} = {lit}")
            shown.append("()")
            continue
        name = ops[i].name
        if not builtin(ops[i]):  # a rule replaced in the table (tests do): the engine's turn
            return None
        if name in _UNARY and len(ins) == 1:
            value, rules = _UNARY[name][0], [_UNARY[name][1]]
        elif name in _BINARY and len(ins) == 2:
            value, rules = _BINARY[name][0], list(_BINARY[name][1:])
        elif name == "pow" and len(ins) == 2:  # as engine's _pow_partials, on finite numbers
            value = "_pow({a}, {b})"
            rules = ["(0.0 if {b} == 0.0 else {b} * _pow({a}, {b} - 1.0))",
                     "({y} * log({a}) if {a} > 0.0 else (0.0 if {a} == 0.0 and {b} > 0.0 "
                     "else _nan))"]
        else:
            return None
        names = {"a": f"v{ins[0]}", "b": f"v{ins[-1]}", "y": f"v{i}"}
        if name == "relu":  # the kink: the engine says so, and picks the slope by convention
            lines.append(f" if v{ins[0]} == 0.0: raise _Fall")
        lines.append(f" v{i} = {value.format(**names)}")
        check.append(f"v{i}")
        texts = []
        for k, rule in enumerate(rules):
            if name in _EACH and not flags[ins[k]]:
                texts.append("None")
            elif rule is None:
                part[i, k] = None
                texts.append("1.0")
            elif rule == "-":
                part[i, k] = "-"
                texts.append("-1.0")
            else:
                expr = rule.format(**names)
                if not (expr[0] == "v" and expr[1:].isdigit()):
                    lines.append(f" q{i}_{k} = {expr}")
                    expr = f"q{i}_{k}"
                    check.append(expr)
                part[i, k] = expr
                texts.append(expr)
        shown.append("(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")")
    # The reverse sweep, in engine.backward's order: from the output down, each node's adjoint
    # sent to its inputs in order, the first contribution assigned, the later ones added.
    out = tape.outputs[0]
    assigned: set[int] = set()
    if flags[out]:
        lines.append(f" g{out} = 1.0")
        assigned.add(out)
    for i in range(out, -1, -1):
        if i not in assigned or not inputs[i]:
            continue
        for k, j in enumerate(inputs[i]):
            if not flags[j]:
                continue
            p = part[i, k]
            term = f"g{i}" if p is None else f"-g{i}" if p == "-" else f"g{i} * {p}"
            if j in assigned:
                lines.append(f" g{j} = g{j} + {term}")
            else:
                lines.append(f" g{j} = {term}")
                assigned.add(j)
                check.append(f"g{j}")
    # Everything finite, or the engine's turn (one sum: a NaN or an Infinity anywhere shows).
    for c in range(0, len(check), _CHUNK):
        terms = " + ".join(check[c : c + _CHUNK])
        lines.append(f" _s = {terms}" if c == 0 else f" _s = _s + ({terms})")
    if check:
        lines.append(" if _s - _s != 0.0: raise _Fall")
    grads = ["None" if not flags[i] else f"g{i}" if i in assigned else "0.0" for i in range(n)]
    lines.append(f" return [{', '.join(f'v{i}' for i in range(n))}], [{', '.join(shown)}], "
                 f"[{', '.join(grads)}]")
    return "\n".join(lines) + "\n"


def sweep_function(tape: Tape, flags: list[bool]):
    """fn(*variables) -> (values, partials, adjoints), lists of Python floats (None where the
    engine gives None), compiled; None when `sweep_source` gives None. The function raises
    ArithmeticError or ValueError wherever the engine must take over."""
    text = sweep_source(tape, flags)
    if text is None:
        return None
    namespace = dict(_NAMESPACE)
    exec(compile(text, "<gradcli compiled sweeps>", "exec"), namespace)  # our own text only
    return namespace["_f"]
