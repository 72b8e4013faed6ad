"""The compiled batch sweep (gradcli.arraysweep, what batch.sweep runs) against the engine's
interpreted sweeps (batch.sweep_engine): bit for bit the same values and gradient columns on
random elementwise formulas over random columns with NaN, ±Infinity and signed zeros in them,
several outputs, --wrt subsets and --at values standing in for columns."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from gradcli import arraysweep
from gradcli.batch import plan_for, sweep, sweep_engine
from gradcli.parse import parse

UNARY = ["sin", "cos", "tan", "tanh", "exp", "sigmoid", "relu", "atan", "sinh", "cosh", "-",
         "log", "sqrt", "abs", "sign", "softplus", "cbrt", "asin", "acos", "log2", "log10"]
BINARY = ["+", "-", "*", "/", "^", "max", "min", "atan2", "<", "where", "root"]
VARS = ["x", "y", "z", "w"]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 710.0, -710.0, 1.0, -1.0]


def random_formula(rng: random.Random, depth: int, names=VARS) -> str:
    if depth == 0 or rng.random() < 0.2:
        if rng.random() < 0.75:
            return rng.choice(names)
        return repr(round(rng.uniform(-3, 3), 3))
    if rng.random() < 0.45:
        f = rng.choice(UNARY)
        inner = random_formula(rng, depth - 1, names)
        return f"-({inner})" if f == "-" else f"{f}({inner})"
    op = rng.choice(BINARY)
    a, b = random_formula(rng, depth - 1, names), random_formula(rng, depth - 1, names)
    if op == "^":
        return f"({a})^{rng.choice(['2', '3', '0.5', '0', '-1', '2.0', b])}"
    if op in ("max", "min"):
        more = f", {random_formula(rng, depth - 1, names)}" if rng.random() < 0.3 else ""
        return f"{op}({a}, {b}{more})"
    if op in ("atan2", "root"):
        return f"{op}({a}, {b})"
    if op == "where":
        return f"where(({a}) < ({b}), {a}, {b})"
    return f"(({a}) {op} ({b}))"


def columns(rng: np.random.Generator, names, n: int) -> dict:
    out = {}
    for name in names:
        col = rng.uniform(-3, 3, n)
        k = rng.integers(0, n // 3 + 1)
        col[rng.integers(0, n, k)] = rng.choice(SPECIAL, k)
        out[name] = col
    return out


def same(a, b) -> bool:
    """Equal as batch mode prints them: bit for bit, except that any NaN equals any NaN."""
    a, b = np.broadcast_to(a, np.shape(b)), np.asarray(b)
    return a.shape == b.shape and bool(np.all((a == b) & (np.signbit(a) == np.signbit(b))
                                              | (np.isnan(a) & np.isnan(b))))


def check(text: str, cols: dict, wrt, fixed=None, n=None):
    tape, _ = parse(text)
    fixed = fixed or {}
    present = [c for c in cols if c not in fixed]
    plan = plan_for(tape, present, fixed, wrt, "<test>")
    assert plan.compiled() is not None
    n = n or len(next(iter(cols.values())))
    block = {k: v for k, v in cols.items() if k in present}
    want_v, want_j = sweep_engine(plan, block, n)
    for _ in range(2):  # twice: the second run reuses the buffers
        got_v, got_j = sweep(plan, block, n)
        assert len(got_v) == len(want_v)
        for gv, wv in zip(got_v, want_v):
            assert same(gv, wv), (text, plan.compiled().source)
        for gj, wj in zip(got_j, want_j):
            assert list(gj) == list(wj)
            for name in wj:
                assert np.shape(gj[name]) == (n,)
                assert same(gj[name], wj[name]), (text, name, plan.compiled().source)
    return got_v, got_j


@pytest.mark.parametrize("seed", range(250))
def test_compiled_sweep_matches_the_engine(seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    lines = []
    outputs = rng.choice([1, 1, 1, 2, 3])
    for k in range(outputs):
        lines.append(random_formula(rng, rng.randint(1, 5)))
    text = ", ".join(lines)
    tape, _ = parse(text)
    names = list(tape.variables)
    if not names:
        return
    cols = columns(nrng, names, rng.choice([1, 7, 64, 301]))
    wrt = [v for v in names if rng.random() < 0.7] or names[:1]
    fixed = {}
    if len(names) > 1 and rng.random() < 0.3:
        name = rng.choice(names)
        fixed[name] = float(rng.choice([0.5, -2.0, 0.0, float("nan"), float("inf")]))
    check(text, cols, wrt, fixed)


@pytest.mark.parametrize("text", [
    "dot = w0*x0 + w1*x1 + w2\nf = 1 / (1 + exp(-dot))",
    "h0 = tanh(w00*x0 + w01*x1 + b0)\nh1 = tanh(w10*x0 + w11*x1 + b1)\n"
    "p = sigmoid(v0*h0 + v1*h1 + c)\nf = (p - y)^2",
    "x", "x + x", "x * x", "-x", "x - x", "2 * 3 + x", "exp(2) * x - x / 3", "max(x)",
    "x * 0 + 1", "q = x\nq * q", "a = x * y\nb = a + x\na * b, b - a", "x - y - y - x",
    "-(-x) * -y", "sin(x) - -y", "x ^ 2 - (x - y) ^ 2",
])
def test_fixed_formulas(text):
    nrng = np.random.default_rng(1)
    tape, _ = parse(text)
    names = list(tape.variables)
    cols = columns(nrng, names, 50)
    check(text, cols, names)
    if len(names) > 1:
        check(text, cols, names[1:])
        check(text, cols, names[:1], {names[-1]: 1.5})


def test_a_formula_without_a_gradient_output_and_a_constant_output():
    cols = {"x": np.linspace(-1, 1, 9), "y": np.linspace(2, 3, 9)}
    v, j = check("3 * 4, exp(y), x * y", cols, ["x"])
    assert np.all(v[0] == 12.0) and np.all(j[0]["x"] == 0.0) and np.all(j[1]["x"] == 0.0)


def test_chunks_kept_by_the_caller_are_never_overwritten():
    tape, _ = parse("f = x * y + sin(x)")
    plan = plan_for(tape, ["x", "y"], {}, ["x", "y"], "<test>")
    rng = np.random.default_rng(3)
    kept = []
    for k in range(6):
        block = {"x": rng.standard_normal(100), "y": rng.standard_normal(100)}
        v, j = sweep(plan, block, 100)
        kept.append((block, v[0].copy(), {k: g.copy() for k, g in j[0].items()}, v, j))
        if k % 2:
            del v, j  # dropped: its arrays may be used again
    for block, v0, g0, v, j in kept:
        assert same(v[0], v0) and all(same(j[0][k], g0[k]) for k in g0)
        assert same(v[0], block["x"] * block["y"] + np.sin(block["x"]))


def test_the_last_chunk_may_be_shorter_and_a_bigger_one_grows_the_buffers():
    tape, _ = parse("f = tanh(x) * y")
    plan = plan_for(tape, ["x", "y"], {}, ["x"], "<test>")
    rng = np.random.default_rng(4)
    for n in (50, 13, 80, 1):
        block = {"x": rng.standard_normal(n), "y": rng.standard_normal(n)}
        v, j = sweep(plan, block, n)
        assert v[0].shape == (n,) and j[0]["x"].shape == (n,)
        assert same(j[0]["x"], (1 - np.tanh(block["x"]) ** 2) * block["y"])


def test_columns_that_are_not_float64_go_through_the_engine():
    tape, _ = parse("f = x * y")
    plan = plan_for(tape, ["x", "y"], {}, ["x"], "<test>")
    block = {"x": np.arange(5), "y": np.arange(5.0)[::-1].copy()}
    v, j = sweep(plan, block, 5)
    assert same(v[0], np.arange(5) * np.arange(5.0)[::-1])


def test_plans_pickle_without_their_compiled_sweep():
    cloudpickle = pytest.importorskip("cloudpickle")  # as Dask ships a Plan to its workers
    tape, _ = parse("f = x * y")
    plan = plan_for(tape, ["x", "y"], {}, ["x"], "<test>")
    assert plan.compiled() is not None
    assert "_compiled" not in plan.__getstate__()
    again = pickle.loads(cloudpickle.dumps(plan))
    block = {"x": np.arange(4.0), "y": np.ones(4)}
    assert same(sweep(again, block, 4)[0][0], np.arange(4.0))


def test_the_generated_text_names_no_user_text():
    tape, _ = parse("__import__ = x * 2\nos = __import__ + y\nsin(os)")
    plan = plan_for(tape, ["x", "y"], {}, ["x", "y"], "<test>")
    source = plan.compiled().source
    assert "__import__" not in source and "os" not in source.replace("cos", "")
    assert "'" not in source and '"' not in source  # no strings at all: names stay outside
    assert arraysweep.compile_sweep(tape, ["x"], plan.flags) is not None


def test_the_cache_tells_apart_at_values_and_wrt_lists():
    tape, _ = parse("f = x * w + w")
    x = np.linspace(-1, 1, 11)
    for w in (2.0, 3.0, 2.0):
        plan = plan_for(tape, ["x"], {"w": w}, ["x", "w"], "<test>")
        v, j = sweep(plan, {"x": x}, 11)
        assert same(v[0], x * w + w) and same(j[0]["x"], np.full(11, w))
        assert same(j[0]["w"], x + 1.0)
    plan = plan_for(tape, ["x", "w"], {}, ["w"], "<test>")
    v, j = sweep(plan, {"x": x, "w": x}, 11)
    assert list(j[0]) == ["w"] and same(j[0]["w"], x + 1.0)
