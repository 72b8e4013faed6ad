"""The numpy half of the rule table: each op's value function and, right below it, its local
partials (structural ops: `vjp` and `jvp`), kink test and subgradients, keyed by the op's name.

`ops.py` holds what an op is (name, arity, symbol, rule text, note, exact and formula rules) and
imports no numpy, so that a scalar formula can be parsed and evaluated without it; `ops.install()`
binds these rules to its ops the first time anything needs them (engine, batch, symbolic and every
other numpy user import a name that installs them; reading a rule of an op before that installs
them too). Of gradcli it imports only `lanes` (big arrays' elementwise work on every core).

Every function works on numpy float64 scalars and arrays alike (values are numpy from the start).
Edge cases are decided here, once, and written in each op's `note` in ops.py.
"""

from __future__ import annotations

from functools import reduce
from typing import Callable

import numpy as np

from . import lanes

LN2 = np.log(2.0)
LN10 = np.log(10.0)
ONE = np.float64(1.0)
MINUS_ONE = np.float64(-1.0)
ZERO = np.float64(0.0)

#: op name -> its rules: value, partials and, where it has them, vjp, jvp, kink, subgradient,
#: partial_each (the fields of ops.Op that need numpy).
RULES: dict[str, dict[str, Callable | tuple | None]] = {}


def _rules(name: str, value: Callable, partials: Callable | None = None, **more) -> None:
    RULES[name] = {"value": value, "partials": partials, **more}


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
    if type(a) is np.ndarray and a.ndim and a.dtype == np.float64:  # the same steps, one array
        if lanes.big(a):  # in cache-sized steps, over the cores
            return lanes.run(_sigmoid_into, lanes.new(a), a)
        return _sigmoid_into(np.empty(a.shape), a)
    return 1.0 / (1.0 + np.exp(-a))


def _sigmoid_into(t, a):
    """1 / (1 + exp(-a)) written into t, step by step as the scalar formula computes it."""
    np.negative(a, out=t)
    np.exp(t, out=t)
    np.add(1.0, t, out=t)
    return np.true_divide(1.0, t, out=t)


def _sigmoid_slope(y):
    """σ' = y·(1 - y), in one new array for an array y."""
    if type(y) is np.ndarray and y.ndim and y.dtype == np.float64:
        if lanes.big(y):
            return lanes.run(_slope_into, lanes.new(y), y)
        return _slope_into(np.empty(y.shape), y)
    return y * (1.0 - y)


def _slope_into(t, y):
    np.subtract(1.0, y, out=t)
    return np.multiply(y, t, out=t)




_rules("id", lambda a: a, lambda y, a: (ONE,))
_rules("add", lambda a, b: a + b, lambda y, a, b: (ONE, ONE))
_rules("sub", lambda a, b: a - b, lambda y, a, b: (ONE, MINUS_ONE))
_rules("mul", lambda a, b: a * b, lambda y, a, b: (b, a))
_rules("div", lambda a, b: a / b, lambda y, a, b: (1.0 / b, -y / b),
       partial_each=(lambda y, a, b: 1.0 / b, lambda y, a, b: -y / b))
_rules("neg", lambda a: -a, lambda y, a: (MINUS_ONE,))
_rules("pow", lambda a, b: a ** b, _pow_partials,
       partial_each=(lambda y, a, b: _pow_partials(y, a, b, need=(True, False))[0],
                     lambda y, a, b: _pow_partials(y, a, b, need=(False, True))[1]))
_rules("exp", np.exp, lambda y, a: (y,))
_rules("log", np.log, lambda y, a: (_real(y, 1.0 / a),))
_rules("log2", np.log2, lambda y, a: (_real(y, 1.0 / (a * LN2)),))
_rules("log10", np.log10, lambda y, a: (_real(y, 1.0 / (a * LN10)),))
_rules("sqrt", np.sqrt, lambda y, a: (0.5 / y,))
_rules("sin", np.sin, lambda y, a: (np.cos(a),))
_rules("cos", np.cos, lambda y, a: (-np.sin(a),))
_rules("tan", np.tan, lambda y, a: (1.0 + y * y,))
_rules("asin", np.arcsin, lambda y, a: (1.0 / np.sqrt(1.0 - a * a),))
_rules("acos", np.arccos, lambda y, a: (-1.0 / np.sqrt(1.0 - a * a),))
_rules("atan", np.arctan, lambda y, a: (1.0 / (1.0 + a * a),))
_rules("sinh", np.sinh, lambda y, a: (np.cosh(a),))
_rules("cosh", np.cosh, lambda y, a: (np.sinh(a),))
_rules("tanh", np.tanh, lambda y, a: (1.0 - y * y,))
_rules("sigmoid", _sigmoid, lambda y, a: (_sigmoid_slope(y),))
_rules("relu", lambda a: np.maximum(a, 0.0), lambda y, a: (_indicator(a > 0),),
       kink=lambda y, a: a == 0,
       subgradient=lambda conv, y, a: (ZERO * a + (0.5 if conv == "half" else 0.0),))
_rules("softplus", lambda a: np.logaddexp(0.0, a), lambda y, a: (_sigmoid(a),))
_rules("abs", np.abs, lambda y, a: (np.sign(a),), kink=lambda y, a: a == 0)
_rules("sign", np.sign, lambda y, a: (ZERO * a,), kink=lambda y, a: a == 0)
_rules("max", lambda *xs: reduce(np.maximum, xs) if len(xs) > 1 else np.max(xs[0]),
       lambda y, *xs: tuple(_indicator(x >= y) for x in xs),
       kink=lambda y, *xs: _ties(y, xs) > 1, subgradient=lambda c, y, *xs: _tied(c, y, xs))
_rules("min", lambda *xs: reduce(np.minimum, xs) if len(xs) > 1 else np.min(xs[0]),
       lambda y, *xs: tuple(_indicator(x <= y) for x in xs),
       kink=lambda y, *xs: _ties(y, xs) > 1, subgradient=lambda c, y, *xs: _tied(c, y, xs))
_rules("atan2", np.arctan2, lambda y, a, b: (b / (a * a + b * b), -a / (a * a + b * b)))

# -- tensors -------------------------------------------------------------------------------------
# Structural ops follow numpy's shape rules; each gives its reverse (vjp) and forward (jvp) rule.


def _products(a, b) -> int:
    """The multiply-adds of a @ b (any shapes matmul takes; 0 for a scalar among them)."""
    sa, sb = np.shape(a), np.shape(b)
    if not sa or not sb:
        return 0
    return int(np.prod(sa, dtype=np.int64)) * (int(sb[-1]) if len(sb) > 1 else 1)


def _matmul(a, b):
    y = np.matmul(a, b)
    lanes.blas_called(_products(a, b))  # its threads may spin a while now (lanes' doc)
    return y


def _matmul_vjp(g, y, a, b, need=(True, True)):
    """Both inputs' shares; `need` (from the engine: which inputs carry a gradient) skips the
    product nobody reads (X's share in X @ W when only W is a parameter): None there."""
    grads = _matmul_shares(g, a, b, need)
    # As _matmul: the multiply-adds of the shares made, G·Bᵀ (G's size times B's rows) and
    # Aᵀ·G (the outer product of a one-output layer, which lanes makes, is counted too: a
    # window too many costs the second core for a while, never a bit).
    rows_b = np.shape(b)[-2] if np.ndim(b) >= 2 else 1
    lanes.blas_called((0 if grads[0] is None else int(np.size(g)) * rows_b)
                      + (0 if grads[1] is None else _products(a, g)))
    return grads


def _matmul_shares(g, a, b, need):
    a2, b2 = np.ndim(a), np.ndim(b)
    if a2 == 1 and b2 == 1:  # inner product: a scalar
        return g * b, g * a
    if a2 == 1:  # (k,) @ (k, m) -> (m,)
        return b @ g if need[0] else None, np.outer(a, g) if need[1] else None
    if b2 == 1:  # (n, k) @ (k,) -> (n,)
        return np.outer(g, b) if need[0] else None, a.T @ g if need[1] else None
    if need[0] and _outer_fits(g, b):  # (n, 1) @ (1, k): an outer product, big
        return lanes.outer(g, b.T), a.T @ g if need[1] else None
    return (g @ np.swapaxes(b, -1, -2) if need[0] else None,
            np.swapaxes(a, -1, -2) @ g if need[1] else None)


def _outer_fits(g, b) -> bool:
    """Whether g @ b.T is a big float64 outer product (b a column: a layer with one output)."""
    return (type(g) is np.ndarray and type(b) is np.ndarray and g.ndim == 2 and b.ndim == 2
            and g.shape[1] == 1 and b.shape[1] == 1 and g.dtype == np.float64
            and b.dtype == np.float64 and g.shape[0] * b.shape[0] >= lanes.MIN_ELEMENTS)


def _matmul_jvp(ts, y, a, b):
    ta, tb = ts
    out = None
    if ta is not None:
        out = _matmul(ta, b)
    if tb is not None:
        term = _matmul(a, tb)
        out = term if out is None else out + term
    return out


def _dot(a, b):
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        raise ValueError("dot takes vectors or matrices; write * to scale by a number")
    y = np.dot(a, b)[()]
    lanes.blas_called(_products(a, b))
    return y


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



_rules("matmul", _matmul, vjp=_matmul_vjp, jvp=_matmul_jvp)
_rules("dot", _dot, vjp=_matmul_vjp, jvp=_matmul_jvp)
_rules("transpose", lambda a: np.transpose(a), vjp=lambda g, y, a: (np.transpose(g),),
       jvp=lambda ts, y, a: np.transpose(ts[0]))
_rules("sum", _sum,
       vjp=lambda g, y, a, *ax: (_expand(g, a, _axis((a, *ax)), _keep((a, *ax))),)
       + (None,) * len(ax),
       jvp=lambda ts, y, a, *ax: _tangent_sum(ts, (a, *ax), _sum))
_rules("mean", _mean,
       vjp=lambda g, y, a, *ax: (_expand(g, a, _axis((a, *ax)), _keep((a, *ax))) / _count_reduced(
           a, _axis((a, *ax))),) + (None,) * len(ax),
       jvp=lambda ts, y, a, *ax: _tangent_sum(ts, (a, *ax), _mean))
_rules("softmax", _softmax, vjp=_softmax_vjp, jvp=_softmax_jvp)
_rules("logsumexp", _logsumexp,
       vjp=lambda g, y, a, *ax: (_expand(g, a, _axis((a, *ax)), _keep((a, *ax))) * _lse_weights(
           y, a, _axis((a, *ax)), _keep((a, *ax))),) + (None,) * len(ax),
       jvp=lambda ts, y, a, *ax: None if ts[0] is None else _sum(
           _lse_weights(y, a, _axis((a, *ax)), _keep((a, *ax))) * ts[0], *ax))
_rules("norm", _norm, vjp=_norm_vjp, kink=lambda y, a: y == 0,
       jvp=lambda ts, y, a: _where(y > 0, np.sum(a * ts[0]) / np.where(y > 0, y, 1.0), ZERO))
_rules("stack", lambda *xs: np.stack(xs), vjp=_stack_vjp, jvp=_stack_jvp)

# -- comparisons, where, real roots, indexing (issue 12) ------------------------------------------
# A comparison gives 1.0 or 0.0 and passes no gradient (its slope is 0 away from a tie, where it
# jumps); where(c, a, b) passes the gradient to the branch it picks. Indexing follows numpy's
# basic indexing with whole-number indices: the gradient goes back to the indexed elements.


def _compare(name: str, test: Callable) -> None:
    _rules(name, lambda a, b: _indicator(test(a, b)), lambda y, a, b: (ZERO * a, ZERO * b),
           kink=lambda y, a, b: a == b)


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


for _name, _test in (("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                     ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)):
    _compare(_name, _test)
_rules("where", lambda c, a, b: _where(c != 0, a, b), _where_partials)
_rules("cbrt", np.cbrt, lambda y, a: (1.0 / (3.0 * y * y),))
_rules("root", _real_root, lambda y, a, n: (_root_da(y, a, n), _root_dn(y, a, n)),
       partial_each=(lambda y, a, n: _root_da(y, a, n), lambda y, a, n: _root_dn(y, a, n)))


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


_rules("index", _index_value((None,)), vjp=_index_vjp((None,)), jvp=_index_jvp((None,)))


def index_rules(layout: tuple) -> dict:
    """The rules of the index op for one layout of subscripts (ops.index_op)."""
    return {"value": _index_value(layout), "partials": None, "vjp": _index_vjp(layout),
            "jvp": _index_jvp(layout)}
