"""The rule table: one entry per operator, its value and, right below it, its local partials.

`partials(y, *xs)` returns one local derivative ∂y/∂x_i per input; it receives the output `y`
so that exp, sigmoid, tanh and sqrt reuse it. The engine derives the reverse rule (g · p_i) and
the forward rule (Σ p_i · dx_i) from these, and the renderers print the very same numbers.

Every function works on numpy float64 scalars and arrays alike (values are numpy from the start).
Edge cases are decided here, once, and written in each entry's `note`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import reduce
from typing import Callable

import numpy as np

LN2 = np.log(2.0)
LN10 = np.log(10.0)
ONE = np.float64(1.0)
MINUS_ONE = np.float64(-1.0)
ZERO = np.float64(0.0)


@dataclass(frozen=True, slots=True)
class Op:
    """One operator: how to compute it and its local derivatives.

    Elementwise ops give `partials`; the engine multiplies and undoes broadcasting. Structural
    ops (matmul, sum, softmax, ...) give `vjp(g, y, *xs)` -> one gradient per input (None for an
    input that takes none, such as an axis) and `jvp(ts, y, *xs)` -> the output's tangent, with
    `ts[k]` None where input k has no tangent.
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


def _where(cond, a, b):
    """np.where that gives a numpy scalar (not a 0-d array) for scalar inputs."""
    return np.where(cond, a, b)[()]


def _indicator(cond):
    return _where(cond, ONE, ZERO)


def _real(y, slope):
    """No slope where the function has no real value: a NaN value gets a NaN partial."""
    return _where(np.isnan(y), np.nan, slope)


def _pow_partials(y, a, b, need=(True, True)):
    da = db = None
    if need[0]:
        # d/da a^b = b·a^(b-1), taken as 0 when b = 0 (so 0^0 has slope 0, not 0·∞).
        da = _where(b == 0, ZERO, b * a ** (b - 1))
    if need[1]:
        # d/db a^b = a^b·ln a for a > 0; 0 for a = 0 < b (the one-sided limit); NaN otherwise
        # (a negative base has no real derivative in the exponent).
        with np.errstate(all="ignore"):
            logs = np.log(np.where(a > 0, a, 1.0))
        db = _where(a > 0, y * logs, _where((a == 0) & (b > 0), ZERO, np.nan))
    return da, db


#: How to pick a slope where a function has a kink (--subgradient).
CONVENTIONS = ("cs231n", "half", "zero")


def _ties(y, xs):
    """How many inputs reach the extreme y: per element, or over the elements of one tensor."""
    if len(xs) == 1:
        return np.sum(xs[0] == y)
    return sum(_indicator(x == y) for x in xs)


def _tied(convention: str, y, xs):
    """max/min partials at a tie under a convention (cs231n: 1 each; half: 1/k; zero: 0)."""
    count = _ties(y, xs)
    out = []
    for x in xs:
        hit = _indicator(x == y)
        if convention == "half":
            out.append(hit / count)
        elif convention == "zero":
            out.append(_where(count > 1, ZERO * hit, hit))
        else:
            out.append(hit)
    return tuple(out)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


OPS: dict[str, Op] = {}


def _register(*ops: Op) -> None:
    for op in ops:
        if op.arity != 0 and op.partials is None and op.vjp is None:
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
    Op("id", 1, lambda a: a,
       lambda y, a: (ONE,), "∂/∂a = 1", "a named copy (q = x)", function=False),
    Op("add", 2, lambda a, b: a + b,
       lambda y, a, b: (ONE, ONE), "∂/∂a = 1, ∂/∂b = 1", symbol="+", function=False,
       noun="a sum"),
    Op("sub", 2, lambda a, b: a - b,
       lambda y, a, b: (ONE, MINUS_ONE), "∂/∂a = 1, ∂/∂b = -1", symbol="-", function=False,
       noun="a difference"),
    Op("mul", 2, lambda a, b: a * b,
       lambda y, a, b: (b, a), "∂/∂a = b, ∂/∂b = a", symbol="*", function=False,
       noun="a product"),
    Op("div", 2, lambda a, b: a / b,
       lambda y, a, b: (1.0 / b, -y / b), "∂/∂a = 1/b, ∂/∂b = -a/b²",
       "b = 0 gives ±Infinity (or NaN for 0/0) with a warning", symbol="/",
       partial_each=(lambda y, a, b: 1.0 / b, lambda y, a, b: -y / b), pole=1, function=False,
       noun="a quotient"),
    Op("neg", 1, lambda a: -a,
       lambda y, a: (MINUS_ONE,), "∂/∂a = -1", symbol="-", function=False),
    Op("pow", 2, lambda a, b: a ** b,
       _pow_partials, "∂/∂a = b·a^(b-1), ∂/∂b = a^b·ln a",
       "0^0 = 1 with ∂/∂a = 0; a negative base needs an integer exponent (else NaN); "
       "∂/∂b is 0 at a = 0 < b and NaN for a < 0", symbol="^",
       partial_each=(lambda y, a, b: _pow_partials(y, a, b, need=(True, False))[0],
                     lambda y, a, b: _pow_partials(y, a, b, need=(False, True))[1]),
       pole=0, noun="a power"),
    Op("exp", 1, np.exp,
       lambda y, a: (y,), "∂/∂a = exp(a)", "overflows to Infinity above a ≈ 709.78"),
    Op("log", 1, np.log,
       lambda y, a: (_real(y, 1.0 / a),), "∂/∂a = 1/a", "natural logarithm (ln); domain a > 0: "
       "log(0) = -Infinity, log(a < 0) = NaN", pole=0, aliases=("ln",)),
    Op("log2", 1, np.log2,
       lambda y, a: (_real(y, 1.0 / (a * LN2)),), "∂/∂a = 1/(a·ln 2)", "domain a > 0", pole=0),
    Op("log10", 1, np.log10,
       lambda y, a: (_real(y, 1.0 / (a * LN10)),), "∂/∂a = 1/(a·ln 10)", "domain a > 0",
       pole=0),
    Op("sqrt", 1, np.sqrt,
       lambda y, a: (0.5 / y,), "∂/∂a = 1/(2·sqrt(a))",
       "domain a ≥ 0; the slope at 0 is Infinity"),
    Op("sin", 1, np.sin, lambda y, a: (np.cos(a),), "∂/∂a = cos(a)"),
    Op("cos", 1, np.cos, lambda y, a: (-np.sin(a),), "∂/∂a = -sin(a)"),
    Op("tan", 1, np.tan, lambda y, a: (1.0 + y * y,), "∂/∂a = 1 + tan²(a)"),
    Op("asin", 1, np.arcsin,
       lambda y, a: (1.0 / np.sqrt(1.0 - a * a),), "∂/∂a = 1/sqrt(1 - a²)",
       "domain -1 ≤ a ≤ 1; the slope at ±1 is Infinity"),
    Op("acos", 1, np.arccos,
       lambda y, a: (-1.0 / np.sqrt(1.0 - a * a),), "∂/∂a = -1/sqrt(1 - a²)",
       "domain -1 ≤ a ≤ 1; the slope at ±1 is -Infinity"),
    Op("atan", 1, np.arctan, lambda y, a: (1.0 / (1.0 + a * a),), "∂/∂a = 1/(1 + a²)"),
    Op("sinh", 1, np.sinh, lambda y, a: (np.cosh(a),), "∂/∂a = cosh(a)"),
    Op("cosh", 1, np.cosh, lambda y, a: (np.sinh(a),), "∂/∂a = sinh(a)"),
    Op("tanh", 1, np.tanh, lambda y, a: (1.0 - y * y,), "∂/∂a = 1 - tanh²(a)"),
    Op("sigmoid", 1, _sigmoid,
       lambda y, a: (y * (1.0 - y),), "∂/∂a = σ(a)·(1 - σ(a))",
       "σ(a) = 1/(1 + exp(-a)), as the course computes it"),
    Op("relu", 1, lambda a: np.maximum(a, 0.0),
       lambda y, a: (_indicator(a > 0),), "∂/∂a = 1(a > 0)", "kink at 0: relu'(0) = 0",
       kink=lambda y, a: a == 0,
       subgradient=lambda conv, y, a: (ZERO * a + (0.5 if conv == "half" else 0.0),),
       kink_rule="relu'(0) is 0 (cs231n, zero) or 1/2 (half)"),
    Op("softplus", 1, lambda a: np.logaddexp(0.0, a),
       lambda y, a: (_sigmoid(a),), "∂/∂a = σ(a)", "log(1 + exp(a)), computed without overflow"),
    Op("abs", 1, np.abs,
       lambda y, a: (np.sign(a),), "∂/∂a = sign(a)", "kink at 0: abs'(0) = 0",
       kink=lambda y, a: a == 0, kink_rule="abs'(0) is 0 in every convention"),
    Op("sign", 1, np.sign,
       lambda y, a: (ZERO * a,), "∂/∂a = 0", "sign(0) = 0; the jump at 0 is given slope 0",
       kink=lambda y, a: a == 0, kink_rule="the jump of sign at 0 has slope 0"),
    Op("max", -1, lambda *xs: reduce(np.maximum, xs) if len(xs) > 1 else np.max(xs[0]),
       lambda y, *xs: tuple(_indicator(x >= y) for x in xs), "∂/∂a_i = 1(a_i ≥ every a_j)",
       "CS231n's convention: at a tie every maximal input gets slope 1; "
       "max(v) of one tensor is its largest element",
       kink=lambda y, *xs: _ties(y, xs) > 1, subgradient=lambda c, y, *xs: _tied(c, y, xs),
       kink_rule="at a tie every maximal input gets 1 (cs231n), 1/k of k tied (half), 0 (zero)",
       noun="a max"),
    Op("min", -1, lambda *xs: reduce(np.minimum, xs) if len(xs) > 1 else np.min(xs[0]),
       lambda y, *xs: tuple(_indicator(x <= y) for x in xs), "∂/∂a_i = 1(a_i ≤ every a_j)",
       "at a tie every minimal input gets slope 1 (as for max)",
       kink=lambda y, *xs: _ties(y, xs) > 1, subgradient=lambda c, y, *xs: _tied(c, y, xs),
       kink_rule="at a tie every minimal input gets 1 (cs231n), 1/k of k tied (half), 0 (zero)",
       noun="a min"),
    Op("atan2", 2, np.arctan2,
       lambda y, a, b: (b / (a * a + b * b), -a / (a * a + b * b)),
       "∂/∂y = x/(x² + y²), ∂/∂x = -y/(x² + y²)", "atan2(y, x); no slope at the origin (NaN)"),
)

# -- tensors -------------------------------------------------------------------------------------
# Structural ops follow numpy's shape rules; each gives its reverse (vjp) and forward (jvp) rule.


def _matmul_vjp(g, y, a, b, need=(True, True)):
    """Both inputs' shares; `need` (from the engine: which inputs carry a gradient) skips the
    product nobody reads (X's share in X @ W when only W is a parameter): None there."""
    a2, b2 = np.ndim(a), np.ndim(b)
    if a2 == 1 and b2 == 1:  # inner product: a scalar
        return g * b, g * a
    if a2 == 1:  # (k,) @ (k, m) -> (m,)
        return b @ g if need[0] else None, np.outer(a, g) if need[1] else None
    if b2 == 1:  # (n, k) @ (k,) -> (n,)
        return np.outer(g, b) if need[0] else None, a.T @ g if need[1] else None
    return (g @ np.swapaxes(b, -1, -2) if need[0] else None,
            np.swapaxes(a, -1, -2) @ g if need[1] else None)


def _matmul_jvp(ts, y, a, b):
    ta, tb = ts
    out = None
    if ta is not None:
        out = np.matmul(ta, b)
    if tb is not None:
        term = np.matmul(a, tb)
        out = term if out is None else out + term
    return out


def _dot(a, b):
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        raise ValueError("dot takes vectors or matrices; write * to scale by a number")
    return np.dot(a, b)[()]


def _axis(xs) -> int | None:
    return int(xs[1]) if len(xs) > 1 else None


def _keep(xs) -> bool:
    """Whether a reduction keeps the reduced axis (sum(A, 1, keep): the third input is 1)."""
    return len(xs) > 2 and bool(xs[2])


def _expand(g, a, axis, keep=False):
    """A reduction's gradient spread back over the reduced axis (or all elements)."""
    if axis is not None and np.ndim(a) > 0 and not keep:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, np.shape(a)).copy() if np.ndim(a) else g


def _sum(a, *axis):
    return np.sum(a, axis=_axis((a, *axis)), keepdims=_keep((a, *axis)))[()]


def _mean(a, *axis):
    return np.mean(a, axis=_axis((a, *axis)), keepdims=_keep((a, *axis)))[()]


def _count_reduced(a, axis):
    return np.size(a) if axis is None else np.shape(a)[axis]


def _softmax(a, *axis):
    ax = _axis((a, *axis))
    if ax is None and np.ndim(a) > 1:
        # numpy's rule would take every element; the course means each row: say which
        raise ValueError(f"softmax of a {np.ndim(a)}-D tensor needs an axis: softmax(A, 1) "
                         "along each row, softmax(A, 0) along each column")
    ax = -1 if ax is None else ax
    if np.ndim(a) == 0:
        return ONE
    z = a - np.max(a, axis=ax, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=ax, keepdims=True)


def _softmax_vjp(g, y, a, *axis):
    ax = _axis((a, *axis))
    ax = -1 if ax is None else ax
    if np.ndim(a) == 0:
        return (ZERO * g,) + (None,) * len(axis)
    return (y * (g - np.sum(g * y, axis=ax, keepdims=True)),) + (None,) * len(axis)


def _softmax_jvp(ts, y, a, *axis):
    ax = _axis((a, *axis))
    ax = -1 if ax is None else ax
    t = ts[0]
    if np.ndim(a) == 0:
        return ZERO * t
    return y * (t - np.sum(t * y, axis=ax, keepdims=True))


def _logsumexp(a, *axis):
    ax = _axis((a, *axis))
    m = np.max(a, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(a - m), axis=ax, keepdims=True)) + m
    if _keep((a, *axis)):
        return out
    return (np.squeeze(out, axis=ax) if ax is not None else out.reshape(()))[()]


def _lse_weights(y, a, axis, keep=False):
    yk = y if axis is None or np.ndim(a) == 0 or keep else np.expand_dims(y, axis)
    return np.exp(a - yk)


def _norm(a):
    return np.sqrt(np.sum(a * a))[()]


def _norm_vjp(g, y, a):
    # The slope of ‖a‖ at a = 0 is taken as 0 (a kink; any unit vector would do).
    return (g * _where(y > 0, a / np.where(y > 0, y, 1.0), ZERO * a),)


def _stack_vjp(g, y, *xs):
    return tuple(g[k] for k in range(len(xs)))


def _stack_jvp(ts, y, *xs):
    return np.stack([np.zeros(np.shape(x)) if t is None else np.broadcast_to(t, np.shape(x))
                     for t, x in zip(ts, xs)])


def _tangent_sum(ts, xs, fn):
    t = ts[0]
    return None if t is None else fn(t, *xs[1:])


_register(
    Op("matmul", 2, np.matmul, None, "∂/∂A = G·Bᵀ, ∂/∂B = Aᵀ·G",
       "numpy's shape rules: (n,k)@(k,m), (n,k)@(k,), (k,)@(k,m), (k,)@(k,)", symbol="@",
       vjp=_matmul_vjp, jvp=_matmul_jvp, function=False),
    Op("dot", 2, _dot, None, "∂/∂a = G·bᵀ, ∂/∂b = aᵀ·G",
       "dot(a, b): the inner product of vectors; for matrices, the matrix product",
       vjp=_matmul_vjp, jvp=_matmul_jvp),
    Op("transpose", 1, lambda a: np.transpose(a), None, "∂/∂A = Gᵀ",
       "transpose(A), also written A.T; a vector or scalar is its own transpose",
       vjp=lambda g, y, a: (np.transpose(g),),
       jvp=lambda ts, y, a: np.transpose(ts[0])),
    Op("sum", 1, _sum, None, "∂/∂a_i = 1",
       "sum(A) adds every element; sum(A, k) adds along axis k; sum(A, k, keep) keeps axis k "
       "(length 1)", max_arity=3, axis=True,
       vjp=lambda g, y, a, *ax: (_expand(g, a, _axis((a, *ax)), _keep((a, *ax))),)
       + (None,) * len(ax),
       jvp=lambda ts, y, a, *ax: _tangent_sum(ts, (a, *ax), _sum)),
    Op("mean", 1, _mean, None, "∂/∂a_i = 1/n",
       "mean(A) of every element; mean(A, k) along axis k; mean(A, k, keep) keeps axis k",
       max_arity=3, axis=True,
       vjp=lambda g, y, a, *ax: (_expand(g, a, _axis((a, *ax)), _keep((a, *ax))) / _count_reduced(
           a, _axis((a, *ax))),) + (None,) * len(ax),
       jvp=lambda ts, y, a, *ax: _tangent_sum(ts, (a, *ax), _mean)),
    Op("softmax", 1, _softmax, None, "∂/∂a = y ⊙ (G - Σ G ⊙ y)",
       "softmax(v) of a vector; softmax(A, k) along axis k (a matrix needs its axis), "
       "computed without overflow",
       max_arity=2, axis=True, vjp=_softmax_vjp, jvp=_softmax_jvp),
    Op("logsumexp", 1, _logsumexp, None, "∂/∂a = G · softmax(a)",
       "log Σ exp(a) over every element (or along axis k; logsumexp(A, k, keep) keeps axis k), "
       "computed without overflow", max_arity=3, axis=True,
       vjp=lambda g, y, a, *ax: (_expand(g, a, _axis((a, *ax)), _keep((a, *ax))) * _lse_weights(
           y, a, _axis((a, *ax)), _keep((a, *ax))),) + (None,) * len(ax),
       jvp=lambda ts, y, a, *ax: None if ts[0] is None else _sum(
           _lse_weights(y, a, _axis((a, *ax)), _keep((a, *ax))) * ts[0], *ax)),
    Op("norm", 1, _norm, None, "∂/∂a = a/‖a‖",
       "the Euclidean (Frobenius) norm of every element; its slope at 0 is taken as 0",
       vjp=_norm_vjp, kink=lambda y, a: y == 0, kink_rule="‖a‖ at a = 0 is given slope 0",
       jvp=lambda ts, y, a: _where(y > 0, np.sum(a * ts[0]) / np.where(y > 0, y, 1.0), ZERO)),
    Op("stack", -1, lambda *xs: np.stack(xs), None, "∂/∂a_k = G[k]",
       "a [a, b, ...] literal with variables: its elements stacked along a new first axis",
       vjp=_stack_vjp, jvp=_stack_jvp, function=False),
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


def _compare(name: str, symbol: str, test: Callable) -> Op:
    return Op(name, 2, lambda a, b: _indicator(test(a, b)),
              lambda y, a, b: (ZERO * a, ZERO * b), "∂/∂a = 0, ∂/∂b = 0",
              f"a {symbol} b is 1 where true, else 0; no gradient flows through a comparison",
              symbol=symbol, function=False, kink=lambda y, a, b: a == b,
              kink_rule=f"a {symbol} b jumps at a = b: its slope is 0 on both sides")


def _where_partials(y, c, a, b):
    take = _indicator(c != 0)
    return ZERO * c, take, 1.0 - take


def _real_root(a, n):
    """a^(1/n), real for a negative a and an odd whole n (cbrt(-8) = -2); NaN for an even n."""
    with np.errstate(all="ignore"):
        odd = (n == np.round(n)) & (np.abs(np.remainder(n, 2)) == 1)
        mag = np.abs(a) ** (1.0 / n)
        return _where(a < 0, _where(odd, -mag, np.nan), a ** (1.0 / n))


def _root_da(y, a, n):
    # d/da a^(1/n) = a^(1/n - 1)/n = y/(n·a), written 1/(n·y^(n-1)) so that a < 0 works too
    return _real(y, 1.0 / (n * y ** (n - 1.0)))


def _root_dn(y, a, n):
    # d/dn a^(1/n) = -a^(1/n)·ln|a|/n²; 0 at a = 0 (y = 0 for every n > 0)
    with np.errstate(all="ignore"):
        logs = np.log(np.where(a != 0, np.abs(a), 1.0))
    return _real(y, -y * logs / (n * n))


_register(
    *[_compare(name, symbol, test) for symbol, name, test in (
        ("<", "lt", np.less), ("<=", "le", np.less_equal), (">", "gt", np.greater),
        (">=", "ge", np.greater_equal), ("==", "eq", np.equal), ("!=", "ne", np.not_equal))],
    Op("where", 3, lambda c, a, b: _where(c != 0, a, b), _where_partials,
       "∂/∂cond = 0, ∂/∂a = 1(cond ≠ 0), ∂/∂b = 1(cond = 0)",
       "where(cond, a, b): a where cond is nonzero (true), else b, element by element; both "
       "branches are computed, and no gradient flows through cond"),
    Op("cbrt", 1, np.cbrt,
       lambda y, a: (1.0 / (3.0 * y * y),), "∂/∂a = 1/(3·cbrt(a)²)",
       "the real cube root: cbrt(-8) = -2 (x^(1/3) is NaN for x < 0); the slope at 0 is "
       "Infinity"),
    Op("root", 2, _real_root,
       lambda y, a, n: (_root_da(y, a, n), _root_dn(y, a, n)),
       "∂/∂a = 1/(n·root(a, n)^(n-1)), ∂/∂n = -root(a, n)·ln|a|/n²",
       "root(a, n) = a^(1/n), real for a < 0 when n is odd (root(-8, 3) = -2); NaN for a < 0 "
       "and an even or fractional n; the slope at 0 is Infinity",
       partial_each=(lambda y, a, n: _root_da(y, a, n), lambda y, a, n: _root_dn(y, a, n))),
)


def _whole(k) -> int:
    """An index as a Python int: numpy's IndexError words unless it is one whole number."""
    if np.ndim(k):
        raise IndexError(f"an index must be one whole number, not a tensor of shape "
                         f"{tuple(np.shape(k))}")
    f = float(k)
    if not f == f or f in (np.inf, -np.inf) or f != int(f):
        raise IndexError(f"the index {f:g} is not a whole number")
    return int(f)


def _subscript(layout: tuple, ks) -> tuple:
    """numpy's index tuple from a layout (None: one whole number; (start?, stop?, step?): a
    slice with the parts that are given) and the index inputs' values, in order."""
    out = []
    k = 0
    for part in layout:
        if part is None:
            out.append(_whole(ks[k]))
            k += 1
            continue
        bounds = []
        for given in part:
            if given:
                bounds.append(_whole(ks[k]))
                k += 1
            else:
                bounds.append(None)
        if bounds[2] == 0:
            raise IndexError("a slice step cannot be 0")
        out.append(slice(*bounds))
    return tuple(out)


def _index_value(layout):
    def value(a, *ks):
        if np.ndim(a) == 0:
            raise IndexError("a number has no elements to index: only vectors and matrices do")
        y = np.asarray(a)[_subscript(layout, ks)]
        if np.ndim(y) and np.size(y) == 0:
            raise IndexError("the slice selects no elements")
        return y.copy() if type(y) is np.ndarray else np.float64(y)

    return value


def _index_vjp(layout):
    def vjp(g, y, a, *ks):
        out = np.zeros(np.shape(a))
        out[_subscript(layout, ks)] = g
        return (out,) + (None,) * len(ks)

    return vjp


def _index_jvp(layout):
    def jvp(ts, y, a, *ks):
        t = ts[0]
        if t is None:
            return None
        picked = np.broadcast_to(t, np.shape(a))[_subscript(layout, ks)]
        return picked.copy() if type(picked) is np.ndarray else np.float64(picked)

    return jvp


_register(Op("index", -1, _index_value((None,)), None,
             "∂/∂a = G at the indexed elements, 0 elsewhere",
             "numpy's indexing with whole numbers: s[y], W[1, 2], W[:, 0], x[1:3], x[-1]; an "
             "index is read at run time and carries no gradient", function=False,
             vjp=_index_vjp((None,)), jvp=_index_jvp((None,))))
_INDEX_OPS: dict[tuple, Op] = {}


def index_op(layout: tuple) -> Op:
    """The index op for one layout of subscripts (one Op per layout, shared by its nodes)."""
    op = _INDEX_OPS.get(layout)
    if op is None:
        op = _INDEX_OPS[layout] = replace(lookup("index"), value=_index_value(layout),
                                          vjp=_index_vjp(layout), jvp=_index_jvp(layout))
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
    OPS[_name] = replace(lookup(_name), exact=_value, exact_partials=_partials)


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
    OPS[_name] = replace(lookup(_name), exact=_value, exact_partials=_partials)


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
    OPS[_name] = replace(lookup(_name), formula_partials=_formula)

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
    OPS[_name] = replace(lookup(_name), formula_partials=_formula)
for _name, _formula in _FORMULA_VJPS.items():
    OPS[_name] = replace(lookup(_name), formula_vjp=_formula)


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

#: Named constants.
CONSTANTS: dict[str, float] = {"pi": float(np.pi), "π": float(np.pi), "e": float(np.e)}
