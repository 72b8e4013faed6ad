"""The rule table: one entry per operator, its value and, right below it, its local partials.

`partials(y, *xs)` returns one local derivative ∂y/∂x_i per input; it receives the output `y`
so that exp, sigmoid, tanh and sqrt reuse it. The engine derives the reverse rule (g · p_i) and
the forward rule (Σ p_i · dx_i) from these, and the renderers print the very same numbers.

Every function works on numpy float64 scalars and arrays alike (values are numpy from the start).
Edge cases are decided here, once, and written in each entry's `note`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """One operator: how to compute it and its local derivatives."""

    name: str
    arity: int  # number of inputs; -1 for n-ary (at least one)
    value: Callable
    partials: Callable
    rule: str  # the local derivatives as a student writes them
    note: str = ""  # domain and subgradient convention
    symbol: str | None = None  # infix symbol, for binary and unary operators


def _where(cond, a, b):
    """np.where that gives a numpy scalar (not a 0-d array) for scalar inputs."""
    return np.where(cond, a, b)[()]


def _indicator(cond):
    return _where(cond, ONE, ZERO)


def _real(y, slope):
    """No slope where the function has no real value: a NaN value gets a NaN partial."""
    return _where(np.isnan(y), np.nan, slope)


def _pow_partials(y, a, b):
    # d/da a^b = b·a^(b-1), taken as 0 when b = 0 (so 0^0 has slope 0, not 0·∞).
    da = _where(b == 0, ZERO, b * a ** (b - 1))
    # d/db a^b = a^b·ln a for a > 0; 0 for a = 0 < b (the one-sided limit); NaN otherwise
    # (a negative base has no real derivative in the exponent).
    with np.errstate(all="ignore"):
        logs = np.log(np.where(a > 0, a, 1.0))
    db = _where(a > 0, y * logs, _where((a == 0) & (b > 0), ZERO, np.nan))
    return da, db


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


OPS: dict[str, Op] = {}


def _register(*ops: Op) -> None:
    for op in ops:
        OPS[op.name] = op


_register(
    Op("const", 0, None, None, "", "a number or a named constant (pi, e); carries no gradient"),
    Op("var", 0, None, None, "", "an input variable, set with --at"),
    Op("id", 1, lambda a: a,
       lambda y, a: (ONE,), "∂/∂a = 1", "a named copy (q = x)"),
    Op("add", 2, lambda a, b: a + b,
       lambda y, a, b: (ONE, ONE), "∂/∂a = 1, ∂/∂b = 1", symbol="+"),
    Op("sub", 2, lambda a, b: a - b,
       lambda y, a, b: (ONE, MINUS_ONE), "∂/∂a = 1, ∂/∂b = -1", symbol="-"),
    Op("mul", 2, lambda a, b: a * b,
       lambda y, a, b: (b, a), "∂/∂a = b, ∂/∂b = a", symbol="*"),
    Op("div", 2, lambda a, b: a / b,
       lambda y, a, b: (1.0 / b, -y / b), "∂/∂a = 1/b, ∂/∂b = -a/b²",
       "b = 0 gives ±Infinity (or NaN for 0/0) with a warning", symbol="/"),
    Op("neg", 1, lambda a: -a,
       lambda y, a: (MINUS_ONE,), "∂/∂a = -1", symbol="-"),
    Op("pow", 2, lambda a, b: a ** b,
       _pow_partials, "∂/∂a = b·a^(b-1), ∂/∂b = a^b·ln a",
       "0^0 = 1 with ∂/∂a = 0; a negative base needs an integer exponent (else NaN); "
       "∂/∂b is 0 at a = 0 < b and NaN for a < 0", symbol="^"),
    Op("exp", 1, np.exp,
       lambda y, a: (y,), "∂/∂a = exp(a)", "overflows to Infinity above a ≈ 709.78"),
    Op("log", 1, np.log,
       lambda y, a: (_real(y, 1.0 / a),), "∂/∂a = 1/a", "natural logarithm (ln); domain a > 0: "
       "log(0) = -Infinity, log(a < 0) = NaN"),
    Op("log2", 1, np.log2,
       lambda y, a: (_real(y, 1.0 / (a * LN2)),), "∂/∂a = 1/(a·ln 2)", "domain a > 0"),
    Op("log10", 1, np.log10,
       lambda y, a: (_real(y, 1.0 / (a * LN10)),), "∂/∂a = 1/(a·ln 10)", "domain a > 0"),
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
       lambda y, a: (_indicator(a > 0),), "∂/∂a = 1(a > 0)", "kink at 0: relu'(0) = 0"),
    Op("softplus", 1, lambda a: np.logaddexp(0.0, a),
       lambda y, a: (_sigmoid(a),), "∂/∂a = σ(a)", "log(1 + exp(a)), computed without overflow"),
    Op("abs", 1, np.abs,
       lambda y, a: (np.sign(a),), "∂/∂a = sign(a)", "kink at 0: abs'(0) = 0"),
    Op("sign", 1, np.sign,
       lambda y, a: (ZERO * a,), "∂/∂a = 0", "sign(0) = 0; the jump at 0 is given slope 0"),
    Op("max", -1, lambda *xs: reduce(np.maximum, xs),
       lambda y, *xs: tuple(_indicator(x >= y) for x in xs), "∂/∂a_i = 1(a_i ≥ every a_j)",
       "CS231n's convention: at a tie every maximal input gets slope 1"),
    Op("min", -1, lambda *xs: reduce(np.minimum, xs),
       lambda y, *xs: tuple(_indicator(x <= y) for x in xs), "∂/∂a_i = 1(a_i ≤ every a_j)",
       "at a tie every minimal input gets slope 1 (as for max)"),
    Op("atan2", 2, np.arctan2,
       lambda y, a, b: (b / (a * a + b * b), -a / (a * a + b * b)),
       "∂/∂y = x/(x² + y²), ∂/∂x = -y/(x² + y²)", "atan2(y, x); no slope at the origin (NaN)"),
)

#: How users may write a function, mapped to its op. `pow(a, b)` is the same op as `a ^ b`.
FUNCTIONS: dict[str, str] = {
    name: name
    for name in (
        "exp log log2 log10 sqrt sin cos tan asin acos atan sinh cosh tanh sigmoid relu "
        "softplus abs sign max min atan2 pow"
    ).split()
}
FUNCTIONS["ln"] = "log"

#: Named constants.
CONSTANTS: dict[str, float] = {"pi": float(np.pi), "e": float(np.e)}


def lookup(name: str) -> Op:
    """The op called `name`; a missing rule fails here, naming the op."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"no rule for op {name!r} in gradcli.ops.OPS") from None
