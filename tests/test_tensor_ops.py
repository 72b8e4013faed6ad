"""Tensor ops (matmul, dot, transpose, sum, mean, softmax, logsumexp, norm, stack), broadcasting,
elementwise ops on vectors, literals, shape errors and tensor JSON, checked against oracles.

One or more specs per tensor op: a formula over named inputs of given shapes and a reference
written by hand with numpy (not gradcli). For each case, at several seeded random points:

* the value equals the reference;
* the reverse gradient of `sum(G * (expr))`, G a random tensor of the output's shape (so a
  non-scalar output is seeded with G rather than with ones), equals central differences of
  `sum(G * ref(...))`, perturbing every element of every input;
* forward mode (engine.jvp, a random tangent on every input, G included) equals the reverse
  gradient contracted with that tangent, ⟨∇, t⟩, to 1e-10 relative.

tests/test_ops.py counts TENSOR_SPECS in its every-op-has-a-spec check.
"""

from __future__ import annotations

import json
import zlib
from importlib import resources
from pathlib import Path
from typing import Callable, NamedTuple

import jsonschema
import numpy as np
import pytest
from cli_runner import runner

from gradcli import engine, evaluate
from gradcli.cli import app
from gradcli.errors import GradcliError, ParseError, ShapeError
from gradcli.parse import parse

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
POINTS_PER_CASE = 3


# -- specs ----------------------------------------------------------------------------------------

class TSpec(NamedTuple):
    expr: str  # a formula over the names in `shapes`
    shapes: dict  # input name -> shape (() for a scalar)
    ref: Callable[..., np.ndarray]  # the same function, by hand with numpy, by keyword
    sample: str = "normal"  # normal | positive | apart (no ties, away from 0)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _mm(a, b):
    """Matrix/vector products written as explicit sums (numpy's four 1-D/2-D cases)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 1 and b.ndim == 1:
        return np.float64(sum(a[k] * b[k] for k in range(a.shape[0])))
    if a.ndim == 1:
        return np.array([sum(a[k] * b[k, j] for k in range(a.shape[0]))
                         for j in range(b.shape[1])])
    if b.ndim == 1:
        return np.array([sum(a[i, k] * b[k] for k in range(b.shape[0]))
                         for i in range(a.shape[0])])
    return np.array([[sum(a[i, k] * b[k, j] for k in range(a.shape[1]))
                      for j in range(b.shape[1])] for i in range(a.shape[0])])


def _softmax(a, axis=-1):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _lse(a, axis=None):
    return np.log(np.sum(np.exp(a), axis=axis))


TENSOR_SPECS: dict[str, list[TSpec]] = {
    "matmul": [
        TSpec("A @ B", {"A": (3, 4), "B": (4, 2)}, lambda A, B: _mm(A, B)),
        TSpec("A @ v", {"A": (3, 4), "v": (4,)}, lambda A, v: _mm(A, v)),
        TSpec("v @ B", {"v": (4,), "B": (4, 2)}, lambda v, B: _mm(v, B)),
        TSpec("u @ v", {"u": (5,), "v": (5,)}, lambda u, v: _mm(u, v)),
        TSpec("A @ A.T", {"A": (2, 3)}, lambda A: _mm(A, A.T)),  # fan-out through @
    ],
    "dot": [
        TSpec("dot(u, v)", {"u": (4,), "v": (4,)}, lambda u, v: _mm(u, v)),
        TSpec("dot(A, B)", {"A": (2, 3), "B": (3, 3)}, lambda A, B: _mm(A, B)),
        TSpec("dot(A, v)", {"A": (2, 3), "v": (3,)}, lambda A, v: _mm(A, v)),
    ],
    "transpose": [
        TSpec("transpose(A)", {"A": (2, 3)}, lambda A: np.array(
            [[A[i, j] for i in range(A.shape[0])] for j in range(A.shape[1])])),
        TSpec("A.T", {"A": (3, 2)}, lambda A: np.array(
            [[A[i, j] for i in range(A.shape[0])] for j in range(A.shape[1])])),
        TSpec("v.T", {"v": (4,)}, lambda v: v.copy()),
    ],
    "sum": [
        TSpec("sum(A)", {"A": (3, 4)}, lambda A: np.float64(sum(A.ravel().tolist()))),
        TSpec("sum(v)", {"v": (5,)}, lambda v: np.float64(sum(v.tolist()))),
        TSpec("sum(A, 0)", {"A": (3, 4)}, lambda A: A[0] + A[1] + A[2]),
        TSpec("sum(A, 1)", {"A": (3, 4)}, lambda A: A[:, 0] + A[:, 1] + A[:, 2] + A[:, 3]),
        TSpec("sum(A, 1, keep)", {"A": (3, 4)},
              lambda A: (A[:, 0] + A[:, 1] + A[:, 2] + A[:, 3])[:, None]),
        TSpec("sum(x)", {"x": ()}, lambda x: x),
    ],
    "mean": [
        TSpec("mean(A)", {"A": (3, 4)}, lambda A: np.float64(sum(A.ravel().tolist()) / 12)),
        TSpec("mean(v)", {"v": (5,)}, lambda v: np.float64(sum(v.tolist()) / 5)),
        TSpec("mean(A, 0)", {"A": (3, 4)}, lambda A: (A[0] + A[1] + A[2]) / 3),
        TSpec("mean(A, 1)", {"A": (3, 4)}, lambda A: (A[:, 0] + A[:, 1] + A[:, 2] + A[:, 3]) / 4),
        TSpec("mean(A, 0, keep)", {"A": (3, 4)}, lambda A: ((A[0] + A[1] + A[2]) / 3)[None, :]),
    ],
    "softmax": [
        TSpec("softmax(v)", {"v": (5,)}, lambda v: np.exp(v) / np.sum(np.exp(v))),
        TSpec("softmax(A, -1)", {"A": (3, 4)}, lambda A: _softmax(A, -1)),
        TSpec("softmax(A, 1)", {"A": (3, 4)}, lambda A: _softmax(A, 1)),
        TSpec("softmax(A, 0)", {"A": (3, 4)}, lambda A: np.exp(A) / np.exp(A).sum(0)),
    ],
    "logsumexp": [
        TSpec("logsumexp(A, 1, keep)", {"A": (3, 4)}, lambda A: _lse(A, 1)[:, None]),
        TSpec("logsumexp(A, 0, keep)", {"A": (3, 4)}, lambda A: _lse(A, 0)[None, :]),
        TSpec("logsumexp(v)", {"v": (5,)}, lambda v: _lse(v)),
        TSpec("logsumexp(A)", {"A": (3, 4)}, lambda A: _lse(A)),
        TSpec("logsumexp(A, 0)", {"A": (3, 4)}, lambda A: _lse(A, 0)),
        TSpec("logsumexp(A, 1)", {"A": (3, 4)}, lambda A: _lse(A, 1)),
    ],
    "index": [  # issue 12: numpy's indexing with whole numbers and slices
        TSpec("v[1]", {"v": (5,)}, lambda v: np.float64(v.tolist()[1])),
        TSpec("v[-1]", {"v": (4,)}, lambda v: np.float64(v.tolist()[3])),
        TSpec("A[1, 2]", {"A": (3, 4)}, lambda A: np.float64(A.tolist()[1][2])),
        TSpec("A[:, 0]", {"A": (3, 4)}, lambda A: np.array([row[0] for row in A.tolist()])),
        TSpec("A[1]", {"A": (3, 4)}, lambda A: np.array(A.tolist()[1])),
        TSpec("v[1:4]", {"v": (6,)}, lambda v: np.array(v.tolist()[1:4])),
        TSpec("A[::-1, 1:]", {"A": (3, 4)},
              lambda A: np.array([row[1:] for row in A.tolist()[::-1]])),
    ],
    "norm": [
        TSpec("norm(v)", {"v": (5,)}, lambda v: np.sqrt(sum(t * t for t in v.tolist()))),
        TSpec("norm(A)", {"A": (3, 4)}, lambda A: np.sqrt(sum(t * t for t in A.ravel().tolist()))),
    ],
    "stack": [
        TSpec("[x, 2*x]", {"x": ()}, lambda x: np.array([x, 2 * x])),
        TSpec("[a, b]", {"a": (3,), "b": (3,)}, lambda a, b: np.array([a, b])),
        TSpec("[a, 2*b, a*b]", {"a": (4,), "b": (4,)}, lambda a, b: np.array([a, 2 * b, a * b])),
        TSpec("[x, 1, y]", {"x": (), "y": ()}, lambda x, y: np.array([x, 1.0, y])),
        TSpec("[[x, y], [y, x*y]]", {"x": (), "y": ()},
              lambda x, y: np.array([[x, y], [y, x * y]])),
        TSpec("[A, B]", {"A": (2, 3), "B": (2, 3)}, lambda A, B: np.array([A, B])),
    ],
}

BROADCAST_CASES = [
    TSpec("x + v", {"x": (), "v": (4,)}, lambda x, v: x + v),
    TSpec("v - x", {"v": (4,), "x": ()}, lambda v, x: v - x),
    TSpec("x * A", {"x": (), "A": (3, 4)}, lambda x, A: x * A),
    TSpec("r + A", {"r": (1, 4), "A": (3, 4)}, lambda r, A: r + A),
    TSpec("v + A", {"v": (4,), "A": (3, 4)}, lambda v, A: v + A),
    TSpec("c + A", {"c": (3, 1), "A": (3, 4)}, lambda c, A: c + A),
    TSpec("v * A", {"v": (4,), "A": (3, 4)}, lambda v, A: v * A),
    TSpec("A * c - x", {"A": (3, 4), "c": (3, 1), "x": ()}, lambda A, c, x: A * c - x),
    TSpec("c * r", {"c": (3, 1), "r": (1, 4)}, lambda c, r: c * r),
    TSpec("A / v", {"A": (2, 3), "v": (3,)}, lambda A, v: A / v, "apart"),
    TSpec("v ^ x", {"v": (3,), "x": ()}, lambda v, x: v ** x, "positive"),
]

ELEMENTWISE_CASES = [
    TSpec("exp(v)", {"v": (5,)}, lambda v: np.exp(v)),
    TSpec("log(v)", {"v": (5,)}, lambda v: np.log(v), "positive"),
    TSpec("sqrt(v)", {"v": (5,)}, lambda v: np.sqrt(v), "positive"),
    TSpec("sin(v) * cos(v)", {"v": (5,)}, lambda v: np.sin(v) * np.cos(v)),
    TSpec("tanh(A)", {"A": (2, 3)}, lambda A: np.tanh(A)),
    TSpec("sigmoid(v)", {"v": (5,)}, lambda v: _sigmoid(v)),
    TSpec("softplus(v)", {"v": (5,)}, lambda v: np.log1p(np.exp(v))),
    TSpec("relu(v)", {"v": (6,)}, lambda v: np.where(v > 0, v, 0.0), "apart"),
    TSpec("abs(v)", {"v": (6,)}, lambda v: np.where(v > 0, v, -v), "apart"),
    TSpec("-v ^ 3", {"v": (4,)}, lambda v: -(v * v * v)),
    TSpec("a ^ b", {"a": (4,), "b": (4,)}, lambda a, b: np.exp(b * np.log(a)), "positive"),
    TSpec("a / b", {"a": (4,), "b": (4,)}, lambda a, b: a / b, "apart"),
    TSpec("max(a, b)", {"a": (6,), "b": (6,)}, lambda a, b: np.where(a > b, a, b), "apart"),
    TSpec("min(a, b)", {"a": (6,), "b": (6,)}, lambda a, b: np.where(a < b, a, b), "apart"),
    TSpec("max(a, b, c)", {"a": (5,), "b": (5,), "c": (5,)},
          lambda a, b, c: np.where(a > b, a, b).clip(min=c), "apart"),
    TSpec("atan2(a, b)", {"a": (4,), "b": (4,)}, lambda a, b: np.arctan2(a, b), "apart"),
]

# max/min of one tensor reduce it to its largest/smallest element; their forward mode has a
# test of its own (test_forward_mode_of_max_of_one_tensor)
REDUCTION_CASES = [
    TSpec("max(v)", {"v": (6,)}, lambda v: np.float64(sorted(v.tolist())[-1]), "apart"),
    TSpec("min(A)", {"A": (2, 3)}, lambda A: np.float64(sorted(A.ravel().tolist())[0]), "apart"),
    TSpec("max(v) * v", {"v": (4,)}, lambda v: sorted(v.tolist())[-1] * v, "apart"),
]


def _cases():
    for op, specs in TENSOR_SPECS.items():
        for spec in specs:
            yield pytest.param(spec, id=f"{op}:{spec.expr}")
    for spec in BROADCAST_CASES:
        yield pytest.param(spec, id=f"broadcast:{spec.expr}")
    for spec in ELEMENTWISE_CASES:
        yield pytest.param(spec, id=f"elementwise:{spec.expr}")


SMOOTH_CASES = list(_cases())
ALL_CASES = SMOOTH_CASES + [pytest.param(s, id=f"reduction:{s.expr}") for s in REDUCTION_CASES]


# -- helpers --------------------------------------------------------------------------------------

def _rng(spec: TSpec, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32((spec.expr + salt).encode()))


def _draw(rng: np.random.Generator, shape: tuple, how: str = "normal"):
    if how == "positive":
        x = rng.uniform(0.3, 3.0, size=shape)
    else:
        x = rng.standard_normal(shape)
    return np.float64(x) if shape == () else np.asarray(x, dtype=np.float64)


def _point(spec: TSpec, rng: np.random.Generator) -> dict:
    if spec.sample != "apart":
        return {name: _draw(rng, shape, spec.sample) for name, shape in spec.shapes.items()}
    # every element of every input: distinct magnitudes at least 0.05 apart and at least 0.3
    # from 0, random signs, random order: no kinks and no ties, not even across inputs
    sizes = [int(np.prod(shape)) for shape in spec.shapes.values()]
    mags = 0.3 + 0.1 * rng.permutation(100)[: sum(sizes)] + rng.uniform(0, 0.05, sum(sizes))
    flat = mags * rng.choice([-1.0, 1.0], size=sum(sizes))
    out, k = {}, 0
    for (name, shape), n in zip(spec.shapes.items(), sizes):
        out[name] = np.float64(flat[k]) if shape == () else flat[k : k + n].reshape(shape)
        k += n
    return out


def _points(spec: TSpec):
    rng = _rng(spec)
    return [_point(spec, rng) for _ in range(POINTS_PER_CASE)]


def _with_g(spec: TSpec, at: dict, rng: np.random.Generator) -> dict:
    shape = np.shape(spec.ref(**at))
    g = rng.standard_normal(shape)
    return {**at, "G": np.float64(g) if shape == () else g}


def _loss(spec: TSpec, at: dict) -> float:
    """sum(G * ref(...)): the scalar whose gradient the seeded formula computes."""
    return float(np.sum(at["G"] * spec.ref(**{k: v for k, v in at.items() if k != "G"})))


def central_difference_gradient(f: Callable[[dict], float], at: dict, name: str) -> np.ndarray:
    """∂f/∂at[name] by central differences, one element of the input at a time."""
    x = np.array(at[name], dtype=np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        h = 1e-6 * max(1.0, abs(float(x[idx])))
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        out[idx] = (f({**at, name: up}) - f({**at, name: down})) / (up[idx] - down[idx])
    return out


def _engine_point(at: dict) -> dict:
    return {k: (np.float64(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64))
            for k, v in at.items()}


def seeded(expr: str) -> str:
    return f"sum(G * ({expr}))"


# -- coverage of the specs ------------------------------------------------------------------------

def test_every_tensor_spec_uses_the_op_it_specifies():
    for op, specs in TENSOR_SPECS.items():
        assert specs, op
        for spec in specs:
            tape, _ = parse(spec.expr)
            assert tape.ops[tape.outputs[0]].name == op, (op, spec.expr)
            assert set(tape.variables) == set(spec.shapes), spec.expr


def test_tensor_specs_cover_the_structural_ops():
    from gradcli.ops import OPS

    structural = {name for name, op in OPS.items() if not op.elementwise}
    assert structural <= set(TENSOR_SPECS), sorted(structural - set(TENSOR_SPECS))


# -- value, reverse and forward mode for every case ----------------------------------------------

@pytest.mark.parametrize("spec", ALL_CASES)
def test_value_matches_numpy_reference(spec):
    for at in _points(spec):
        r = evaluate(spec.expr, at=at)
        expected = spec.ref(**at)
        got = np.asarray(r.value, dtype=np.float64)
        assert got.shape == np.shape(expected), (spec.expr, got.shape, np.shape(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14, err_msg=spec.expr)


@pytest.mark.parametrize("spec", ALL_CASES)
def test_reverse_gradient_matches_central_differences(spec):
    rng = _rng(spec, "G")
    for at in _points(spec):
        at = _with_g(spec, at, rng)
        r = evaluate(seeded(spec.expr), at=at, wrt=list(spec.shapes))
        assert list(r.gradient) == list(spec.shapes)
        scale = max(1.0, abs(_loss(spec, at)))
        for name, shape in spec.shapes.items():
            analytic = np.asarray(r.gradient[name], dtype=np.float64)
            assert analytic.shape == shape, (spec.expr, name, analytic.shape, shape)
            numeric = central_difference_gradient(lambda p: _loss(spec, p), at, name)
            err = np.abs(analytic - numeric)
            ok = err <= 1e-6 * np.abs(numeric) + 1e-8 * scale
            assert ok.all(), (f"{spec.expr}: d/d{name}\nanalytic {analytic!r}\n"
                              f"central differences {numeric!r}")


@pytest.mark.parametrize("spec", SMOOTH_CASES)
def test_forward_mode_equals_reverse_gradient_contracted_with_the_tangent(spec):
    rng = _rng(spec, "tangent")
    inner, _ = parse(spec.expr)
    tape, _ = parse(seeded(spec.expr))
    out = tape.outputs[0]
    names = list(spec.shapes) + ["G"]
    for at in _points(spec):
        at = _engine_point(_with_g(spec, at, rng))
        values = engine.forward(tape, at)
        partials = engine.local_partials(tape, values)
        flags = engine.active(tape, names)
        adj = engine.backward(tape, values, partials, flags, out)
        tangents = {n: _draw(rng, np.shape(at[n]), "normal") for n in names}
        fwd = engine.jvp(tape, values, partials,
                         {tape.variables[n]: t for n, t in tangents.items()})[out]
        terms = [np.sum(np.asarray(adj[tape.variables[n]]) * tangents[n]) for n in names]
        rev = float(sum(terms))
        scale = sum(abs(float(t)) for t in terms)
        assert np.ndim(fwd) == 0, (spec.expr, np.shape(fwd))
        assert abs(float(fwd) - rev) <= 1e-10 * scale + 1e-300, (spec.expr, float(fwd), rev)

        # the expression alone: its output tangent has the output's shape and ⟨G, ṫ⟩ agrees
        x_at = {k: v for k, v in at.items() if k != "G"}
        ivalues = engine.forward(inner, x_at)
        ipartials = engine.local_partials(inner, ivalues)
        itang = engine.jvp(inner, ivalues, ipartials,
                           {inner.variables[n]: tangents[n] for n in spec.shapes})
        o = inner.outputs[0]
        assert np.shape(itang[o]) == np.shape(ivalues[o]), spec.expr
        own = float(np.sum(at["G"] * itang[o]))
        rev_x = float(sum(terms[:-1]))
        assert abs(own - rev_x) <= 1e-10 * scale + 1e-300, (spec.expr, own, rev_x)


# -- CS231n: D = W X ------------------------------------------------------------------------------

MATMUL_SAMPLE = (SAMPLES / "matmul.grad").read_text(encoding="utf-8")


@pytest.mark.parametrize("n,k,m", [(5, 10, 3), (1, 1, 1), (2, 7, 4), (8, 3, 1), (4, 6, 9)])
def test_cs231n_matmul_gradients_are_dD_XT_and_WT_dD(n, k, m):
    rng = np.random.default_rng(1000 * n + 10 * k + m)
    W, X, dD = rng.standard_normal((n, k)), rng.standard_normal((k, m)), rng.standard_normal((n, m))
    for text in ("D = W @ X\nf = sum(D * dD)", MATMUL_SAMPLE):
        r = evaluate(text, at={"W": W, "X": X, "dD": dD})
        dW = np.asarray(r.gradient["W"])
        dX = np.asarray(r.gradient["X"])
        assert dW.shape == (n, k) and dX.shape == (k, m)
        exp_dW, exp_dX = dD @ X.T, W.T @ dD
        np.testing.assert_allclose(dW, exp_dW, rtol=1e-12, atol=1e-12 * np.abs(exp_dW).max())
        np.testing.assert_allclose(dX, exp_dX, rtol=1e-12, atol=1e-12 * np.abs(exp_dX).max())
        np.testing.assert_allclose(r.value, np.sum((W @ X) * dD), rtol=1e-12)
        D = next(node for node in r.nodes if node.name == "D")
        assert D.op == "matmul"
        np.testing.assert_allclose(np.asarray(D.value), W @ X, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(D.grad), dD)  # the gradient flowing into D


# -- broadcasting: explicit sums back to each input's shape --------------------------------------

def test_broadcast_gradients_sum_over_the_broadcast_axes():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((3, 4))
    G = rng.standard_normal((3, 4))
    x = np.float64(0.7)
    cases = {
        ("x + A", "x"): ({"x": x}, G.sum()),
        ("r + A", "r"): ({"r": rng.standard_normal((1, 4))}, G.sum(axis=0, keepdims=True)),
        ("v + A", "v"): ({"v": rng.standard_normal(4)}, G.sum(axis=0)),
        ("c + A", "c"): ({"c": rng.standard_normal((3, 1))}, G.sum(axis=1, keepdims=True)),
    }
    for (expr, name), (extra, expected) in cases.items():
        r = evaluate(seeded(expr), at={"A": A, "G": G, **extra})
        got = np.asarray(r.gradient[name])
        assert got.shape == np.shape(extra[name]), (expr, got.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(np.asarray(r.gradient["A"]), G, rtol=1e-15)
    # v * A: dv sums G * A over the rows, dA is G * v in every row
    v = rng.standard_normal(4)
    r = evaluate(seeded("v * A"), at={"A": A, "G": G, "v": v})
    np.testing.assert_allclose(np.asarray(r.gradient["v"]), (G * A).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(r.gradient["A"]), G * v, rtol=1e-12)


def test_unseeded_tensor_output_is_seeded_with_ones():
    A = np.arange(6.0).reshape(2, 3)
    r = evaluate("2 * A + x", at={"A": A, "x": 1.5})
    np.testing.assert_array_equal(np.asarray(r.value), 2 * A + 1.5)
    np.testing.assert_array_equal(np.asarray(r.gradient["A"]), np.full((2, 3), 2.0))
    assert r.gradient["x"] == 6.0  # one for each of the six elements
    assert any("sum(" in w for w in r.warnings), r.warnings


# -- max(v) / min(v) of one tensor ---------------------------------------------------------------

def test_max_of_one_tensor_is_its_largest_element_and_gets_the_gradient():
    r = evaluate("max(v)", at={"v": [1.0, -4.0, 3.5, 2.0]})
    assert r.value == 3.5
    assert r.gradient["v"] == [0.0, 0.0, 1.0, 0.0]
    r = evaluate("min(A)", at={"A": [[1.0, -4.0], [3.5, 2.0]]})
    assert r.value == -4.0
    assert r.gradient["A"] == [[0.0, 1.0], [0.0, 0.0]]


def test_max_of_one_tensor_tie_gives_one_to_every_maximal_element():
    r = evaluate("max(v)", at={"v": [3.0, 1.0, 3.0, -3.0]})
    assert r.value == 3.0
    assert r.gradient["v"] == [1.0, 0.0, 1.0, 0.0]
    r = evaluate("min(A)", at={"A": [[0.0, 2.0], [0.0, 0.0]]})
    assert r.value == 0.0
    assert r.gradient["A"] == [[1.0, 0.0], [1.0, 1.0]]
    r = evaluate("2 * max(v)", at={"v": [5.0, 5.0]})
    assert r.gradient["v"] == [2.0, 2.0]


def test_max_of_two_vectors_is_elementwise_with_ties_to_both():
    r = evaluate("sum(max(a, b))", at={"a": [1.0, 5.0, 2.0], "b": [3.0, 4.0, 2.0]})
    assert r.value == 3.0 + 5.0 + 2.0
    assert r.gradient == {"a": [0.0, 1.0, 1.0], "b": [1.0, 0.0, 1.0]}


@pytest.mark.parametrize("expr", ["max(v)", "min(v)", "max(A)"])
def test_forward_mode_of_max_of_one_tensor(expr):
    """engine.jvp of max(v)/min(v) is ⟨∇, t⟩: the extreme element's tangent (a tie: the sum)."""
    v = np.array([1.0, 3.0, 2.0, 3.0])
    at = {"v": v} if "v" in expr else {"A": v.reshape(2, 2)}
    name = next(iter(at))
    tape, _ = parse(expr)
    values = engine.forward(tape, at)
    partials = engine.local_partials(tape, values)
    out = tape.outputs[0]
    adj = engine.backward(tape, values, partials, engine.active(tape, [name]), out)
    t = np.array([1.0, 10.0, 100.0, 1000.0]).reshape(np.shape(at[name]))
    tangent = engine.jvp(tape, values, partials, {tape.variables[name]: t})[out]
    assert np.ndim(tangent) == 0
    assert float(tangent) == float(np.sum(adj[tape.variables[name]] * t))


@pytest.mark.parametrize("mode", ["forward", "both"])
def test_cli_forward_mode_of_max_of_one_tensor(mode):
    r = runner.invoke(app, ["eval", "max(v)", "--at", "v=[1,3,2]", "--mode", mode, "--wrt", "v"])
    assert r.exit_code == 0, (r.exit_code, r.stderr)
    assert "internal error" not in r.stderr


# -- the two-layer net ----------------------------------------------------------------------------

def test_two_layer_net_matches_handwritten_forward_and_backward():
    net = json.loads((SAMPLES / "net.json").read_text(encoding="utf-8"))
    X, W1, W2, Y = (np.array(net[k], dtype=np.float64) for k in ("X", "W1", "W2", "Y"))
    assert X.shape == (4, 3) and W1.shape == (3, 5) and W2.shape == (5, 2) and Y.shape == (4, 2)
    # forward
    H = 1.0 / (1.0 + np.exp(-(X @ W1)))
    O = H @ W2  # noqa: E741 - the output, as the course names it
    E = O - Y
    loss = np.sum(E * E)
    # backward, by hand
    dO = 2.0 * E
    dW2 = H.T @ dO
    dH = dO @ W2.T
    dZ = dH * H * (1.0 - H)
    dW1 = X.T @ dZ
    dX = dZ @ W1.T
    dY = -dO
    r = evaluate("sum((sigmoid(X @ W1) @ W2 - Y)^2)", at=net)
    assert r.value == pytest.approx(loss, rel=1e-12)
    for name, expected in {"X": dX, "W1": dW1, "W2": dW2, "Y": dY}.items():
        got = np.asarray(r.gradient[name])
        assert got.shape == expected.shape, name
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12, err_msg=name)


# -- literals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("[1, 2]", [1.0, 2.0]),
    ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
    ("[-1, 2.5, 1e-3]", [-1.0, 2.5, 1e-3]),
    ("[[[1], [2]], [[3], [4]]]", [[[1.0], [2.0]], [[3.0], [4.0]]]),
])
def test_number_literals_fold_to_one_constant(text, expected):
    tape, _ = parse(text)
    assert len(tape) == 1
    assert tape.ops[0].name == "const"
    np.testing.assert_array_equal(tape.literals[0], np.array(expected))
    r = evaluate(text)
    assert r.value == expected
    assert r.gradient == {}
    assert r.nodes[0].grad is None


def test_literal_in_a_formula_is_a_constant_operand():
    r = evaluate("sum([[1, 2], [3, 4]] @ v)", at={"v": [1.0, -1.0]})
    assert r.value == (1 - 2) + (3 - 4)
    assert r.gradient["v"] == [4.0, 6.0]  # column sums of the matrix
    ops = [n.op for n in r.nodes]
    assert ops.count("const") == 1 and "stack" not in ops


def test_literal_with_variables_stacks():
    r = evaluate("[x, 2*x]", at={"x": 3.0})
    assert r.value == [3.0, 6.0]
    assert r.gradient == {"x": 3.0}  # seeded with ones: 1 + 2
    assert r.nodes[r.outputs[0]].op == "stack"
    r = evaluate("sum(G * [x, 2*x])", at={"x": 3.0, "G": [10.0, 100.0]})
    assert r.gradient["x"] == 210.0
    assert r.gradient["G"] == [3.0, 6.0]


@pytest.mark.parametrize("text,bad", [("[[1,2],[3]]", "[3]"), ("[[1],[2, 3]]", "[2, 3]"),
                                      ("x * [[1, 2], [3]]", "[3]")])
def test_ragged_literal_is_an_error_at_the_odd_element(text, bad):
    with pytest.raises(GradcliError) as info:
        evaluate(text, at={"x": 1.0})
    err = info.value
    assert isinstance(err, ParseError)
    assert err.pos == text.index(bad)
    assert "shape" in err.message


def test_ragged_stack_of_variables_is_a_shape_error():
    with pytest.raises(ShapeError) as info:
        evaluate("[a, b]", at={"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]})
    assert "(2,)" in info.value.message and "(3,)" in info.value.message


def test_ragged_literal_on_the_command_line_exits_2():
    r = runner.invoke(app, ["eval", "[[1,2],[3]]"])
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr
    assert "^" in r.stderr and "shape" in r.stderr


# -- shape errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["W @ x", "W@x", "(W) @ (x + 1)", "y = W  @  x\nsum(y)"])
def test_matmul_shape_mismatch_names_both_shapes_with_caret_at_the_operator(text):
    with pytest.raises(ShapeError) as info:
        evaluate(text, at={"W": [[1, 2], [3, 4]], "x": [1, 2, 3]})
    err = info.value
    assert "(2, 2)" in err.message and "(3,)" in err.message and "'@'" in err.message
    assert err.pos == text.index("@")
    assert text[err.pos] == "@"
    rendered = err.render()
    assert "(2, 2)" in rendered and "(3,)" in rendered
    line, caret = rendered.splitlines()[-2:]
    assert line.strip() and caret.strip() == "^"
    assert line[caret.index("^")] == "@"


@pytest.mark.parametrize("text,op", [("a + b", "+"), ("a * b", "*"), ("a - b", "-"),
                                     ("a / b", "/")])
def test_elementwise_shape_mismatch_names_both_shapes(text, op):
    with pytest.raises(ShapeError) as info:
        evaluate(text, at={"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]})
    err = info.value
    assert "(2,)" in err.message and "(3,)" in err.message and f"'{op}'" in err.message
    assert err.pos == text.index(op)


def test_elementwise_mismatch_of_matrices():
    with pytest.raises(ShapeError) as info:
        evaluate("A * B", at={"A": np.ones((2, 3)), "B": np.ones((3, 2))})
    assert "(2, 3)" in info.value.message and "(3, 2)" in info.value.message


@pytest.mark.parametrize("text", ["sum(A, 5)", "mean(A, 2)", "softmax(A, 3)",
                                  "logsumexp(A, 7)"])
def test_bad_axis_is_a_shape_error_naming_the_axis_and_shape(text):
    with pytest.raises(ShapeError) as info:
        evaluate(text, at={"A": np.ones((2, 2))})
    err = info.value
    axis = text.rstrip(")").split(",")[-1].strip()
    assert f"axis {axis}" in err.message and "(2, 2)" in err.message, err.message


@pytest.mark.parametrize("text", ["sum(A, 0.5)", "sum(A, k)"])
def test_axis_must_be_a_whole_number_literal(text):
    with pytest.raises(ParseError) as info:
        evaluate(text, at={"A": np.ones((2, 2)), "k": 0})
    assert "axis" in info.value.message


def test_matmul_shape_error_on_the_command_line():
    r = runner.invoke(app, ["eval", "W @ x", "--at", "W=[[1,2],[3,4]],x=[1,2,3]"])
    assert r.exit_code == 2
    assert "(2, 2)" in r.stderr and "(3,)" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.strip() == "W @ x")
    assert lines[k][lines[k + 1].index("^")] == "@"


# -- JSON for tensors -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    path = resources.files("gradcli") / "schemas" / "eval.schema.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def _strict(text: str):
    def reject(token):
        raise AssertionError(f"non-RFC-8259 token {token}")
    return json.loads(text, parse_constant=reject)


def test_tensor_json_is_nested_lists_and_validates(validator):
    W = [[1.0, 2.0], [3.0, 4.0]]
    r = evaluate("W @ x", at={"W": W, "x": [1.0, -1.0]})
    doc = _strict(r.to_json())
    errors = list(validator.iter_errors(doc))
    assert not errors, errors[0].message
    assert doc["value"] == [-1.0, -1.0]
    assert doc["at"] == {"W": W, "x": [1.0, -1.0]}
    assert doc["gradient"] == {"W": [[1.0, -1.0], [1.0, -1.0]], "x": [4.0, 6.0]}
    out = doc["nodes"][doc["outputs"][0]]
    assert out["op"] == "matmul" and out["value"] == [-1.0, -1.0] and out["grad"] == [1.0, 1.0]


@pytest.mark.parametrize("args", [
    ["sum((sigmoid(X @ W1) @ W2 - Y)^2)", "--at", f"@{SAMPLES / 'net.json'}"],
    ["softmax(A, 0)", "--at", "A=[[1,2],[3,4]]"],
    ["[A, 2*B]", "--at", "A=ones(2,3),B=[[1,2,3],[4,5,6]]"],  # a 3-D stack
    ["[x, 2*x], sum(v)", "--at", "x=1,v=[1,2,3]"],
    ["log(v)", "--at", "v=[1,0,-1]"],  # -Infinity and NaN in a tensor: strings
    [str(SAMPLES / "matmul.grad"), "--seed", "3"],
])
def test_cli_tensor_json_validates(validator, args):
    r = runner.invoke(app, ["eval", *args, "--json"])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    doc = _strict(r.stdout)
    errors = list(validator.iter_errors(doc))
    assert not errors, errors[0].message


def test_nonfinite_elements_of_a_tensor_are_strings():
    doc = _strict(evaluate("log(v)", at={"v": [1.0, 0.0, -1.0]}).to_json())
    assert doc["value"] == [0.0, "-Infinity", "NaN"]
    assert doc["warnings"]
