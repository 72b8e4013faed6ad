"""evaluate() over long columns (api.ColumnsResult): the value and the gradient from batch
mode's compiled sweep, everything else from the engine's run made when first read.

Oracles: the engine's plain run of the same formula at the same point (gradcli.result.run,
what evaluate gave before), field by field, bit for bit (any NaN equals any NaN, as batch
mode's own tests have it); and the neuron's gradient in closed form, σ(1−σ)·x."""

from __future__ import annotations

import random

import numpy as np
import pytest
from test_arraysweep import SPECIAL, random_formula

from gradcli import api

ROWS = api.COLUMN_ROWS + 4099  # two whole chunks of batch mode and part of a third


def columns(seed: int, names, n: int = ROWS, special: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        col = rng.uniform(-3, 3, n)
        if special:
            k = int(rng.integers(0, n // 50))
            col[rng.integers(0, n, k)] = rng.choice(SPECIAL, k)
            col[:len(SPECIAL)] = SPECIAL
        out[name] = col
    return out


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b))) and bool(
        np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64)))


def plain(text: str, at: dict, wrt=None):
    """What evaluate gave before: the engine's whole run (the same call, columns never long
    enough for the sweep)."""
    before, api.COLUMN_ROWS = api.COLUMN_ROWS, 1 << 62
    try:
        r = api.evaluate(text, at, wrt=wrt)
    finally:
        api.COLUMN_ROWS = before
    assert type(r) is api.NumpyResult
    return r


def check_same(text: str, at: dict, wrt=None) -> api.ColumnsResult:
    r = api.evaluate(text, at, wrt=wrt)
    assert type(r) is api.ColumnsResult, text
    assert r._later is not None  # nothing but the sweep so far
    want = plain(text, at, wrt)
    got_v = r.value if len(want.tape.outputs) > 1 else [r.value]
    for o, v in zip(want.tape.outputs, got_v):
        assert same(v, want.values[o]), text
    for k, row in enumerate(r.jacobian):
        for name in want.wrt:
            assert same(row[name], want.adjoints[k][want.tape.variables[name]]), (text, name)
    assert r._later is not None  # the value and gradient alone never ran the engine
    assert r.warnings == want.warnings, text
    assert r._later is None
    assert r.kinks == want.kinks and r.active == want.active and r.wrt == want.wrt
    for a, b in zip(r.values, want.values):
        assert same(a, b), text
    for adj_a, adj_b in zip(r.adjoints, want.adjoints):
        for a, b in zip(adj_a, adj_b):
            assert (a is None) == (b is None) and (a is None or same(a, b)), text
    for pa, pb in zip(r.partials, want.partials):
        assert (pa is None) == (pb is None), text
        for a, b in zip(pa or (), pb or ()):
            assert (a is None) == (b is None) and (a is None or same(a, b)), text
    return r


NEURON = "dot = w0*x0 + w1*x1 + w2\nf = 1 / (1 + exp(-dot))"


def test_the_neuron_over_long_columns():
    at = columns(1, ["w0", "x0", "w1", "x1", "w2"], special=False)
    r = check_same(NEURON, at)
    s = 1 / (1 + np.exp(-(at["w0"] * at["x0"] + at["w1"] * at["x1"] + at["w2"])))
    slope = s * (1 - s)  # the closed form, a different rounding: close, not equal
    assert np.allclose(r.value, s, rtol=1e-14, atol=0)
    for w, x in (("w0", "x0"), ("x0", "w0"), ("w1", "x1"), ("x1", "w1")):
        assert np.allclose(r.gradient[w], slope * at[x], rtol=1e-6, atol=1e-300)  # 1 - s cancels
    assert np.allclose(r.gradient["w2"], slope, rtol=1e-6, atol=1e-300)  # 1 - s cancels


@pytest.mark.parametrize("text, wrt", [
    ("x / y + exp(x * 400)", None),  # 1/0, overflow: the warnings are the engine's
    ("abs(x) + relu(y) + max(x, y, 0)", None),  # kinks at the zeros in the columns
    ("x * y, x - y, sin(x)", None),  # several outputs
    ("x", None),  # an output that is a variable
    ("x * y + z", ["x", "z"]),  # a --wrt subset
    ("x * 2, y + 1", ["x", "y"]),  # y does not reach the first output: its gradient is 0
    ("where(x < y, x * x, y) + x ^ 2 + x ^ y", None),
    ("log(x) + sqrt(y) + asin(x / 4)", None),  # NaN where out of the domain
])
def test_chosen_formulas_field_by_field(text, wrt):
    at = columns(2, ["x", "y", "z"])
    check_same(text, at, wrt)


@pytest.mark.parametrize("seed", range(12))
def test_random_formulas_field_by_field(seed):
    rng = random.Random(seed)
    names: list = []
    while not names:  # a formula of constants alone is a scalar: the engine's (tested below)
        text = random_formula(rng, 4, ["x", "y", "z"])
        names = sorted({n for n in ("x", "y", "z") if n in text})
    check_same(text, columns(seed, names))


def test_the_arrays_handed_out_are_read_only_views():
    at = columns(3, ["x", "y"], special=False)
    r = api.evaluate("x * y", at)
    g = r.gradient["x"]
    assert not g.flags.writeable and np.shares_memory(g, r.gradient["x"])
    with pytest.raises(ValueError, match="read-only"):
        g *= 2
    mine = g.copy()
    mine *= 2  # a copy is the caller's own
    assert same(r.gradient["x"], at["y"]) and same(mine, 2 * at["y"])
    small = api.evaluate("x * y", {"x": np.ones(3), "y": np.arange(3.0)})  # the engine's path
    assert type(small) is api.NumpyResult and not small.value.flags.writeable
    assert not small.gradient["x"].flags.writeable
    assert at["x"].flags.writeable  # the caller's own arrays are left as they were


@pytest.mark.parametrize("at, text, why", [
    ({"x": np.ones(ROWS), "y": 2.0}, "x * y", "a number among the columns"),
    ({"x": np.ones(100), "y": np.ones(100)}, "x * y", "short columns"),
    ({"x": np.ones(2 * ROWS)[::2], "y": np.ones(ROWS)}, "x * y", "not contiguous"),
    ({"x": np.ones((ROWS, 1)), "y": np.ones((ROWS, 1))}, "x * y", "a matrix"),
    ({"x": np.ones(ROWS), "y": np.ones(ROWS)}, "sum(x * y)", "a reduction"),
    ({"x": np.ones(ROWS), "y": np.ones(ROWS)}, "max(x) * y", "max of one column"),
    ({"x": np.ones(ROWS), "y": np.ones(ROWS)}, "x * y, 3", "an output of constants"),
])
def test_what_the_engine_keeps(at, text, why):
    r = api.evaluate(text, at)
    assert type(r) is api.NumpyResult, why
    want = plain(text, at)
    assert same(np.asarray(r.value[0] if isinstance(r.value, list) else r.value),
                np.asarray(want.values[want.tape.outputs[0]]))


def test_the_warnings_before_the_run_are_kept():
    at = columns(8, ["x", "y", "unused"], special=False)
    r = check_same("x * y + 1e999 * 0", at)  # the parser's warning (a number too large)
    assert any("too large" in w for w in r.warnings)
    assert any("unused" in w for w in r.warnings)


def test_float32_columns_are_read_as_float64_as_the_engine_reads_them():
    x = columns(6, ["x"])["x"]
    x[np.abs(x) > 1e38] = np.inf  # as float32 holds them
    at = {"x": x.astype(np.float32), "y": columns(7, ["y"])["y"]}
    check_same("x * y + exp(x)", at)


def test_options_the_sweep_does_not_have_keep_the_engine():
    at = columns(4, ["x", "y"], special=False)
    for options in ({"mode": "both"}, {"subgradient": "half"}, {"mode": "forward"}):
        assert type(api.evaluate("abs(x) * y", at, **options)) is api.NumpyResult, options
    assert type(api.evaluate("abs(x) * y", at)) is api.ColumnsResult


def test_columns_of_different_lengths_are_the_engines_error():
    from gradcli.errors import GradcliError

    with pytest.raises(GradcliError) as fast:
        api.evaluate("x * y", {"x": np.ones(ROWS), "y": np.ones(ROWS + 1)})
    with pytest.raises(GradcliError) as slow:
        plain("x * y", {"x": np.ones(ROWS), "y": np.ones(ROWS + 1)})
    assert str(fast.value) == str(slow.value)


def test_the_rest_is_made_once_when_first_read():
    at = columns(5, ["x", "y"])
    r = api.evaluate("x / y", at)
    repr(r)
    assert r._later is not None  # repr shows the value and gradient only
    warnings = r.warnings
    assert r._later is None and warnings  # 1/0 in the columns
    assert r.warnings is warnings  # made once, kept
    r.warnings = ["mine"]  # the fields stay assignable, as a Result's are
    assert r.warnings == ["mine"]
    doc = r.to_json()
    assert '"warnings"' in doc


def test_changing_the_columns_in_place_afterwards_changes_nothing():
    """A descent step between evaluate() and reading the nodes: they describe the point that
    was evaluated, as the engine's run made at once would."""
    at = columns(9, ["w", "x"], special=False)
    want = plain("w * x + exp(w)", {k: v.copy() for k, v in at.items()})
    r = api.evaluate("w * x + exp(w)", at)
    at["w"] -= 0.1 * r.gradient["w"]  # the caller's own array, changed in place
    at["x"][:] = np.nan
    assert r.warnings == want.warnings and not any("finite" in w for w in r.warnings)
    for a, b in zip(r.values, want.values):
        assert same(a, b)


def test_a_copy_of_the_result_is_the_same_result():
    import copy

    at = columns(10, ["x", "y"])
    r = api.evaluate("x / y", at)
    c = copy.copy(r)
    assert c.warnings == r.warnings and same(c.value, r.value)
    assert same(c.nodes[2].value, r.nodes[2].value)
