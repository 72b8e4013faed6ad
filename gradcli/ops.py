"""The rule table: one entry per operator, what it is here, its numpy rules in gradcli/rules.py.

Each op's value function and, right below it, its local partials `partials(y, *xs)` (one local
derivative ∂y/∂x_i per input; it receives the output `y` so that exp, sigmoid, tanh and sqrt reuse
it) live in `rules.py`, keyed by the op's name; the engine derives the reverse rule (g · p_i) and
the forward rule (Σ p_i · dx_i) from these, and the renderers print the very same numbers. This
module holds everything else about an op (its name, arity, symbol, rule as a student writes it,
note, poles, aliases, exact and formula rules) and imports no numpy, so that a scalar formula is
parsed, evaluated with floats (compiled.py) and printed without it.

The numpy rules are bound to the ops by `install()`, once: engine.py, batch.py, symbolic.py and
every other numpy user import a numpy name of this module (ONE, _matmul_vjp, ...) or install()
itself, which installs them; and an op whose rules are not bound yet has those attributes unset,
so that the first read of op.value, op.partials, op.vjp, ... installs them (_Unbound.__getattr__):
no code path sees an op without its rules. After that each is a plain Op whose rules are slots,
read as fast as ever (tests/test_cold_start.py checks both).
Edge cases are decided once, written in each entry's `note`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable

#: The fields of an Op that hold numpy rules (bound by install(), from rules.RULES).
RULE_FIELDS = ("value", "partials", "vjp", "jvp", "kink", "subgradient", "partial_each")


@dataclass(frozen=True, slots=True)
class Op:
    """One operator: how to compute it and its local derivatives.

    Elementwise ops give `partials`; the engine multiplies and undoes broadcasting. Structural
    ops (matmul, sum, softmax, ...) give `vjp(g, y, *xs)` -> one gradient per input (None for an
    input that takes none, such as an axis) and `jvp(ts, y, *xs)` -> the output's tangent, with
    `ts[k]` None where input k has no tangent. The table's entries get these from rules.py when
    something first reads one (see install()).
    """

    name: str
    arity: int  # number of inputs; -1 for n-ary (at least one)
    value: Callable
    partials: Callable | None
    rule: str  # the local derivatives as a student writes them
    note: str = ""  # domain and subgradient convention
    symbol: str | None = None  # infix symbol, for binary and unary operators
    vjp: Callable | None = None
    jvp: Callable | None = None
    max_arity: int | None = None  # when more inputs are allowed (sum(A, axis)): the most
    axis: bool = False  # the optional last argument is a constant integer axis
    kink: Callable | None = None  # kink(y, *xs): where the op is not differentiable (bool mask)
    subgradient: Callable | None = None  # (convention, y, *xs) -> partials used at a kink
    kink_rule: str = ""  # what each convention does there, for people
    exact: Callable | None = None  # the value on Fractions (--exact); raises where not rational
    partial_each: tuple | None = None  # one function per input, so that the engine computes
    # only the partials of inputs that carry a gradient (pow's ln a for a constant exponent)
    exact_partials: Callable | None = None  # the partials on Fractions (None: not rational)
    pole: int | None = None  # which input being 0 makes an Infinity a pole (1/0, log 0, 0^-1),
    # not an overflow: the warning then gives the op's note instead of "beyond float64's range"
    aliases: tuple[str, ...] = ()  # other names users may call it by (ln for log)
    function: bool = True  # whether a formula may call it by name, as name(...)
    noun: str = ""  # what its value is, for people: "a sum" (check's wrong-gate slips)
    formula_partials: Callable | None = None  # (b, y, *xs) -> one node id per input: the
    # partials as formulas, built with a symbolic builder b (gradcli.symbolic); None: no formula
    formula_vjp: Callable | None = None  # structural ops: (b, g, y, *xs) -> each input's share

    @property
    def elementwise(self) -> bool:
        """Whether the op works element by element (so batch mode may vectorise it)."""
        return self.vjp is None


class _Unbound(Op):
    """An entry of the table whose numpy rules are not bound yet: its rule slots are unset, and
    reading one binds them all (install()), which also makes it a plain Op. (Only this class
    has a __getattr__: on Op itself, Python would route every attribute read through it, which
    doubles the cost of the engine's op.value on the hot path.)"""

    __slots__ = ()

    def __getattr__(self, name: str):
        # Reached only when a slot is unset. Bind the rules (imports numpy), then read it.
        if name in RULE_FIELDS:
            install()
            return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


#: How to pick a slope where a function has a kink (--subgradient).
CONVENTIONS = ("cs231n", "half", "zero")

OPS: dict[str, Op] = {}

#: Every op made by entry(), whose rules install() binds (those still in OPS and any other).
_LAZY: list[Op] = []
_installed = False


def entry(name: str, arity: int, rule: str, note: str = "", **about) -> Op:
    """An op of the table: what it is, its numpy rules left unbound until install()."""
    op = _Unbound(name, arity, None, None, rule, note, **about)
    for f in RULE_FIELDS:
        object.__delattr__(op, f)
    _LAZY.append(op)
    return op


def _bound(op: Op) -> bool:
    try:
        object.__getattribute__(op, "value")
    except AttributeError:
        return False
    return True


def _fill(op: Op, **about) -> None:
    """Set fields of an entry while the table is being built (the ops are frozen afterwards)."""
    for key, value in about.items():
        object.__setattr__(op, key, value)


def install() -> None:
    """Bind every op's numpy rules (value, partials, vjp, ...) from rules.py: imports numpy.
    Cheap after the first call; safe to call again (from any thread)."""
    global _installed
    if _installed:
        return
    from . import rules

    for op in list(_LAZY):
        if _bound(op):
            continue
        table = rules.RULES.get(op.name, {})
        for f in RULE_FIELDS[1:]:
            object.__setattr__(op, f, table.get(f))
        # value last: _bound() (another thread's install) then means every field is set
        object.__setattr__(op, "value", table.get("value"))
        object.__setattr__(op, "__class__", Op)  # bound: a plain Op from now on
        if op.arity != 0 and op.partials is None and op.vjp is None:
            raise MissingRule(op.name)
    _installed = True


def installed() -> bool:
    """Whether the numpy rules are bound (numpy is imported then)."""
    return _installed


def __getattr__(name: str):
    # The numpy names that used to live here (ONE, MINUS_ONE, _matmul_vjp, ...): importing one
    # (`from .ops import ONE`) binds the rules too, so engine.py installs them as it loads.
    if name.startswith("__"):
        raise AttributeError(name)
    install()
    from . import rules

    try:
        return getattr(rules, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _register(*ops: Op) -> None:
    for op in ops:
        if _bound(op) and op.arity != 0 and op.partials is None and op.vjp is None:
            raise MissingRule(op.name)  # an op with inputs needs partials or a vjp
        OPS[op.name] = op


def lookup(name: str) -> Op:
    """The op called `name`; a missing rule fails here, naming the op."""
    try:
        return OPS[name]
    except KeyError:
        raise MissingRule(name) from None


class MissingRule(KeyError):
    """An op with no rule in OPS: a bug in gradcli (not in the user's input), naming the op."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no rule for op {self.name!r} in gradcli.ops.OPS"



_register(
    Op("const", 0, None, None, "", "a number or a named constant (pi, e); carries no gradient",
       function=False),
    Op("var", 0, None, None, "", "an input variable, set with --at", function=False),
    entry("id", 1, "∂/∂a = 1", "a named copy (q = x)", function=False),
    entry("add", 2, "∂/∂a = 1, ∂/∂b = 1", symbol="+", function=False, noun="a sum"),
    entry("sub", 2, "∂/∂a = 1, ∂/∂b = -1", symbol="-", function=False, noun="a difference"),
    entry("mul", 2, "∂/∂a = b, ∂/∂b = a", symbol="*", function=False, noun="a product"),
    entry("div", 2, "∂/∂a = 1/b, ∂/∂b = -a/b²",
          "b = 0 gives ±Infinity (or NaN for 0/0) with a warning", symbol="/", pole=1,
          function=False, noun="a quotient"),
    entry("neg", 1, "∂/∂a = -1", symbol="-", function=False),
    entry("pow", 2, "∂/∂a = b·a^(b-1), ∂/∂b = a^b·ln a",
          "0^0 = 1 with ∂/∂a = 0; a negative base needs an integer exponent (else NaN); "
          "∂/∂b is 0 at a = 0 < b and NaN for a < 0", symbol="^", pole=0, noun="a power"),
    entry("exp", 1, "∂/∂a = exp(a)", "overflows to Infinity above a ≈ 709.78"),
    entry("log", 1, "∂/∂a = 1/a", "natural logarithm (ln); domain a > 0: "
          "log(0) = -Infinity, log(a < 0) = NaN", pole=0, aliases=("ln",)),
    entry("log2", 1, "∂/∂a = 1/(a·ln 2)", "domain a > 0", pole=0),
    entry("log10", 1, "∂/∂a = 1/(a·ln 10)", "domain a > 0", pole=0),
    entry("sqrt", 1, "∂/∂a = 1/(2·sqrt(a))", "domain a ≥ 0; the slope at 0 is Infinity"),
    entry("sin", 1, "∂/∂a = cos(a)"),
    entry("cos", 1, "∂/∂a = -sin(a)"),
    entry("tan", 1, "∂/∂a = 1 + tan²(a)"),
    entry("asin", 1, "∂/∂a = 1/sqrt(1 - a²)", "domain -1 ≤ a ≤ 1; the slope at ±1 is Infinity"),
    entry("acos", 1, "∂/∂a = -1/sqrt(1 - a²)",
          "domain -1 ≤ a ≤ 1; the slope at ±1 is -Infinity"),
    entry("atan", 1, "∂/∂a = 1/(1 + a²)"),
    entry("sinh", 1, "∂/∂a = cosh(a)"),
    entry("cosh", 1, "∂/∂a = sinh(a)"),
    entry("tanh", 1, "∂/∂a = 1 - tanh²(a)"),
    entry("sigmoid", 1, "∂/∂a = σ(a)·(1 - σ(a))",
          "σ(a) = 1/(1 + exp(-a)), as the course computes it"),
    entry("relu", 1, "∂/∂a = 1(a > 0)", "kink at 0: relu'(0) = 0",
          kink_rule="relu'(0) is 0 (cs231n, zero) or 1/2 (half)"),
    entry("softplus", 1, "∂/∂a = σ(a)", "log(1 + exp(a)), computed without overflow"),
    entry("abs", 1, "∂/∂a = sign(a)", "kink at 0: abs'(0) = 0",
          kink_rule="abs'(0) is 0 in every convention"),
    entry("sign", 1, "∂/∂a = 0", "sign(0) = 0; the jump at 0 is given slope 0",
          kink_rule="the jump of sign at 0 has slope 0"),
    entry("max", -1, "∂/∂a_i = 1(a_i ≥ every a_j)",
          "CS231n's convention: at a tie every maximal input gets slope 1; "
          "max(v) of one tensor is its largest element",
          kink_rule="at a tie every maximal input gets 1 (cs231n), 1/k of k tied (half), 0 (zero)",
          noun="a max"),
    entry("min", -1, "∂/∂a_i = 1(a_i ≤ every a_j)",
          "at a tie every minimal input gets slope 1 (as for max)",
          kink_rule="at a tie every minimal input gets 1 (cs231n), 1/k of k tied (half), 0 (zero)",
          noun="a min"),
    entry("atan2", 2, "∂/∂y = x/(x² + y²), ∂/∂x = -y/(x² + y²)",
          "atan2(y, x); no slope at the origin (NaN)"),
)

# -- tensors -------------------------------------------------------------------------------------
# Structural ops follow numpy's shape rules; each gives its reverse (vjp) and forward (jvp) rule.

_register(
    entry("matmul", 2, "∂/∂A = G·Bᵀ, ∂/∂B = Aᵀ·G",
          "numpy's shape rules: (n,k)@(k,m), (n,k)@(k,), (k,)@(k,m), (k,)@(k,)", symbol="@",
          function=False),
    entry("dot", 2, "∂/∂a = G·bᵀ, ∂/∂b = aᵀ·G",
          "dot(a, b): the inner product of vectors; for matrices, the matrix product"),
    entry("transpose", 1, "∂/∂A = Gᵀ",
          "transpose(A), also written A.T; a vector or scalar is its own transpose"),
    entry("sum", 1, "∂/∂a_i = 1",
          "sum(A) adds every element; sum(A, k) adds along axis k; sum(A, k, keep) keeps axis k "
          "(length 1)", max_arity=3, axis=True),
    entry("mean", 1, "∂/∂a_i = 1/n",
          "mean(A) of every element; mean(A, k) along axis k; mean(A, k, keep) keeps axis k",
          max_arity=3, axis=True),
    entry("softmax", 1, "∂/∂a = y ⊙ (G - Σ G ⊙ y)",
          "softmax(v) of a vector; softmax(A, k) along axis k (a matrix needs its axis), "
          "computed without overflow", max_arity=2, axis=True),
    entry("logsumexp", 1, "∂/∂a = G · softmax(a)",
          "log Σ exp(a) over every element (or along axis k; logsumexp(A, k, keep) keeps axis k), "
          "computed without overflow", max_arity=3, axis=True),
    entry("norm", 1, "∂/∂a = a/‖a‖",
          "the Euclidean (Frobenius) norm of every element; its slope at 0 is taken as 0",
          kink_rule="‖a‖ at a = 0 is given slope 0"),
    entry("stack", -1, "∂/∂a_k = G[k]",
          "a [a, b, ...] literal with variables: its elements stacked along a new first axis",
          function=False),
)

# -- comparisons, where, real roots, indexing (issue 12) ------------------------------------------
# A comparison gives 1.0 or 0.0 and passes no gradient (its slope is 0 away from a tie, where it
# jumps); where(c, a, b) passes the gradient to the branch it picks. Indexing follows numpy's
# basic indexing with whole-number indices: the gradient goes back to the indexed elements.

#: The NaN warning's words for a negative base under a fractional power (x^(1/3) at x = -8).
POW_NAN_NOTE = ("a negative base needs a whole exponent: by float rules x^(1/3) is NaN for x < 0; "
                "for the real root write cbrt(x) or root(x, 3), which give cbrt(-8) = -2")

#: Comparison operators: symbol -> op name.
COMPARISONS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}



def _compare(name: str, symbol: str) -> Op:
    return entry(name, 2, "∂/∂a = 0, ∂/∂b = 0",
                 f"a {symbol} b is 1 where true, else 0; no gradient flows through a comparison",
                 symbol=symbol, function=False,
                 kink_rule=f"a {symbol} b jumps at a = b: its slope is 0 on both sides")


_register(
    *[_compare(name, symbol) for symbol, name in COMPARISONS.items()],
    entry("where", 3, "∂/∂cond = 0, ∂/∂a = 1(cond ≠ 0), ∂/∂b = 1(cond = 0)",
          "where(cond, a, b): a where cond is nonzero (true), else b, element by element; both "
          "branches are computed, and no gradient flows through cond"),
    entry("cbrt", 1, "∂/∂a = 1/(3·cbrt(a)²)",
          "the real cube root: cbrt(-8) = -2 (x^(1/3) is NaN for x < 0); the slope at 0 is "
          "Infinity"),
    entry("root", 2, "∂/∂a = 1/(n·root(a, n)^(n-1)), ∂/∂n = -root(a, n)·ln|a|/n²",
          "root(a, n) = a^(1/n), real for a < 0 when n is odd (root(-8, 3) = -2); NaN for a < 0 "
          "and an even or fractional n; the slope at 0 is Infinity"),
)
_register(entry("index", -1, "∂/∂a = G at the indexed elements, 0 elsewhere",
                "numpy's indexing with whole numbers: s[y], W[1, 2], W[:, 0], x[1:3], x[-1]; an "
                "index is read at run time and carries no gradient", function=False))
_INDEX_OPS: dict[tuple, Op] = {}


def index_op(layout: tuple) -> Op:
    """The index op for one layout of subscripts (one Op per layout, shared by its nodes).
    Indexing works on tensors: the rules are installed (numpy) here."""
    op = _INDEX_OPS.get(layout)
    if op is None:
        from .rules import index_rules

        install()
        op = _INDEX_OPS[layout] = replace(lookup("index"), **index_rules(layout))
    return op


# -- exact rational rules (--exact) ---------------------------------------------------------------
# Each takes and gives fractions.Fraction; an op without one (exp, sin, ...) falls back to floats.
# A rule raises ZeroDivisionError (1/0, 0^-1) or ValueError (a non-integer power) where the
# result is not a rational number; the engine then computes that node in floats.

F0, F1 = Fraction(0), Fraction(1)


def _exact_pow(a, b):
    if b.denominator != 1:
        raise ValueError("a non-integer power is not rational")
    if abs(b) > 10_000:
        raise ValueError("the power is too large to keep exact")
    return a ** int(b)


def _exact_pow_partials(y, a, b):
    da = F0 if b == 0 else b * _exact_pow(a, b - 1)
    db = F0 if (a == 0 and b > 0) else None  # a^b·ln a is not rational (for a ≠ 1)
    if a == 1:
        db = F0
    return da, db


def _exact_extreme(pick):
    def partials(y, *xs):
        return tuple(F1 if x == y else F0 for x in xs)

    return lambda *xs: pick(xs), partials


_EXACT = {
    "id": (lambda a: a, lambda y, a: (F1,)),
    "add": (lambda a, b: a + b, lambda y, a, b: (F1, F1)),
    "sub": (lambda a, b: a - b, lambda y, a, b: (F1, -F1)),
    "mul": (lambda a, b: a * b, lambda y, a, b: (b, a)),
    "div": (lambda a, b: a / b, lambda y, a, b: (1 / b, -y / b)),
    "neg": (lambda a: -a, lambda y, a: (-F1,)),
    "pow": (_exact_pow, _exact_pow_partials),
    "relu": (lambda a: max(a, F0), lambda y, a: (F1 if a > 0 else F0,)),
    "abs": (abs, lambda y, a: (F1 if a > 0 else (-F1 if a < 0 else F0),)),
    "sign": (lambda a: Fraction((a > 0) - (a < 0)), lambda y, a: (F0,)),
    "max": _exact_extreme(max),
    "min": _exact_extreme(min),
}
for _name, (_value, _partials) in _EXACT.items():
    _fill(lookup(_name), exact=_value, exact_partials=_partials)


def _exact_root(a, n):
    """The nth root of a rational a when it is rational (root(-8, 3) = -2, cbrt(8/27) = 2/3)."""
    if n.denominator != 1 or n <= 0 or n > 64:
        raise ValueError("not a whole root")
    k = int(n)
    if a < 0 and k % 2 == 0:
        raise ValueError("an even root of a negative number is not real")
    parts = []
    for m in (abs(a.numerator), a.denominator):
        r = round(m ** (1.0 / k)) if m.bit_length() < 1000 else None
        hit = next((c for c in (r, (r or 0) - 1, (r or 0) + 1) if c is not None and c >= 0
                    and c ** k == m), None)
        if hit is None:
            raise ValueError("the root is not rational")
        parts.append(hit)
    out = Fraction(parts[0], parts[1])
    return -out if a < 0 else out


def _exact_root_partials(y, a, n):
    if y == 0:
        raise ZeroDivisionError("the slope at 0 is Infinity")
    return 1 / (n * y ** (int(n) - 1)), None  # ∂/∂n has a logarithm: not rational


_EXACT_12 = {
    **{name: ((lambda t: lambda a, b: Fraction(int(bool(t(a, b)))))(test),
              lambda y, a, b: (F0, F0))
       for name, test in (("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b),
                          ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b),
                          ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b))},
    "where": (lambda c, a, b: a if c != 0 else b,
              lambda y, c, a, b: (F0, F1 if c != 0 else F0, F0 if c != 0 else F1)),
    "root": (_exact_root, _exact_root_partials),
    "cbrt": (lambda a: _exact_root(a, Fraction(3)),
             lambda y, a: (_exact_root_partials(y, a, Fraction(3))[0],)),
}
for _name, (_value, _partials) in _EXACT_12.items():
    _fill(lookup(_name), exact=_value, exact_partials=_partials)


def _f_root(b, y, a, n):
    one = b.const(1.0)
    da = b.div(one, b.mul(n, b.pow(y, b.sub(n, one))))  # 1/(n·y^(n-1))
    dn = b.neg(b.div(b.mul(y, b.call("log", b.call("abs", a))), b.pow(n, b.const(2.0))))
    return da, dn


# Formula partials (Op.formula_partials, as for sin) of the issue-12 ops; indexing has none.
_FORMULAS_12 = {
    **{name: (lambda b, y, a, c: (b.const(0.0), b.const(0.0))) for name in COMPARISONS.values()},
    "where": lambda b, y, c, a, e: (b.const(0.0),
                                    b.call("where", c, b.const(1.0), b.const(0.0)),
                                    b.call("where", c, b.const(0.0), b.const(1.0))),
    "cbrt": lambda b, y, a: (b.div(b.const(1.0), b.mul(b.const(3.0),
                                                        b.pow(y, b.const(2.0)))),),
    "root": _f_root,
}
for _name, _formula in _FORMULAS_12.items():
    _fill(lookup(_name), formula_partials=_formula)

# -- formula partials (gradcli diff, second derivatives) -------------------------------------
# The same partials as formulas over the node ids of the inputs and the output, built with a
# symbolic builder `b` (gradcli.symbolic.Builder: b.const, b.add, b.sub, b.mul, b.div, b.neg,
# b.pow, b.call). The conventions are the cs231n ones the engine uses: relu'(0) = 0 is
# sign(relu(a)); d max/d a_i = 1(a_i ≥ max) is 1 - sign(max - a_i), 1 at a tie.


def _f_pow(b, y, a, e):
    # d/da a^e = e·a^(e-1) (the builder folds a constant e - 1 and drops x^1); d/de = a^e·ln a
    return b.mul(e, b.pow(a, b.sub(e, b.const(1.0)))), b.mul(y, b.call("log", a))


def _f_sq1(b, a):
    return b.sub(b.const(1.0), b.pow(a, b.const(2.0)))  # 1 - a^2


def _f_extreme(sign):
    def partials(b, y, *xs):
        if len(xs) == 1:
            return (None,)  # max(v) of one tensor: no formula
        one = b.const(1.0)
        return tuple(b.sub(one, b.call("sign", b.sub(y, x) if sign > 0 else b.sub(x, y)))
                     for x in xs)

    return partials


def _f_atan2(b, y, a, c):
    r = b.add(b.pow(a, b.const(2.0)), b.pow(c, b.const(2.0)))
    return b.div(c, r), b.neg(b.div(a, r))


_FORMULAS = {
    "id": lambda b, y, a: (b.const(1.0),),
    "add": lambda b, y, a, c: (b.const(1.0), b.const(1.0)),
    "sub": lambda b, y, a, c: (b.const(1.0), b.const(-1.0)),
    "mul": lambda b, y, a, c: (c, a),
    "div": lambda b, y, a, c: (b.div(b.const(1.0), c),
                               b.neg(b.div(a, b.pow(c, b.const(2.0))))),
    "neg": lambda b, y, a: (b.const(-1.0),),
    "pow": _f_pow,
    "exp": lambda b, y, a: (y,),
    "log": lambda b, y, a: (b.div(b.const(1.0), a),),
    "log2": lambda b, y, a: (b.div(b.const(1.0), b.mul(a, b.call("log", b.const(2.0)))),),
    "log10": lambda b, y, a: (b.div(b.const(1.0), b.mul(a, b.call("log", b.const(10.0)))),),
    "sqrt": lambda b, y, a: (b.div(b.const(1.0), b.mul(b.const(2.0), y)),),
    "sin": lambda b, y, a: (b.call("cos", a),),
    "cos": lambda b, y, a: (b.neg(b.call("sin", a)),),
    "tan": lambda b, y, a: (b.add(b.const(1.0), b.pow(y, b.const(2.0))),),
    "asin": lambda b, y, a: (b.div(b.const(1.0), b.call("sqrt", _f_sq1(b, a))),),
    "acos": lambda b, y, a: (b.neg(b.div(b.const(1.0), b.call("sqrt", _f_sq1(b, a)))),),
    "atan": lambda b, y, a: (b.div(b.const(1.0), b.add(b.const(1.0),
                                                        b.pow(a, b.const(2.0)))),),
    "sinh": lambda b, y, a: (b.call("cosh", a),),
    "cosh": lambda b, y, a: (b.call("sinh", a),),
    "tanh": lambda b, y, a: (b.sub(b.const(1.0), b.pow(y, b.const(2.0))),),
    "sigmoid": lambda b, y, a: (b.mul(y, b.sub(b.const(1.0), y)),),  # σ' = σ(1 - σ)
    "relu": lambda b, y, a: (b.call("sign", y),),  # 1(a > 0), 0 at the kink
    "softplus": lambda b, y, a: (b.call("sigmoid", a),),
    "abs": lambda b, y, a: (b.call("sign", a),),
    "sign": lambda b, y, a: (b.mul(b.const(0.0), a),),  # 0, or NaN where a is (as ZERO*a)
    "max": _f_extreme(1),
    "min": _f_extreme(-1),
    "atan2": _f_atan2,
}
_FORMULA_VJPS = {
    # matrix forms for matrices (2-D operands): dA = G @ B.T, dB = A.T @ G
    "matmul": lambda b, g, y, a, c: (b.matmul(g, b.call("transpose", c)),
                                     b.matmul(b.call("transpose", a), g)),
    "transpose": lambda b, g, y, a: (b.call("transpose", g),),
}
for _name, _formula in _FORMULAS.items():
    _fill(lookup(_name), formula_partials=_formula)
for _name, _formula in _FORMULA_VJPS.items():
    _fill(lookup(_name), formula_vjp=_formula)


def _functions() -> dict[str, str]:
    """Every name a formula may call, its aliases included, mapped to its op's name."""
    out: dict[str, str] = {}
    for op in OPS.values():
        if op.function:
            out[op.name] = op.name
            for alias in op.aliases:
                out[alias] = op.name
    return out


#: How users may write a function, mapped to its op (derived from OPS: Op.function and
#: Op.aliases). `pow(a, b)` is the same op as `a ^ b`; `ln` is `log`.
FUNCTIONS: dict[str, str] = _functions()


#: The ops as gradcli defines them. The compiled fast paths (compiled.py, arraysweep.py) carry
#: their own copies of these rules, so they take only ops that are still these very objects: an
#: op replaced in OPS (a test's wrong rule, an extension) goes through its own rules instead.
BUILTIN: dict[str, Op] = dict(OPS)


def builtin(op: Op) -> bool:
    """Whether `op` is gradcli's own op of that name (not a replacement)."""
    return BUILTIN.get(op.name) is op


#: Named constants.
CONSTANTS: dict[str, float] = {"pi": math.pi, "π": math.pi, "e": math.e}
