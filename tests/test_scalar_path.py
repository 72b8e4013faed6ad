"""The scalar path (result.run(..., floats=True): compiled.sweep_function over Python floats)
against the engine's sweeps (floats=False), and the API's parse cache.

Where both paths compute with IEEE-exact operations (+ - * /, negation, sqrt, relu) and libm's
pow, every number, every warning and the JSON document are identical. numpy's exp, log, tanh,
... may differ from libm's (math) in the last bit on machines where numpy has SIMD versions of
them, so formulas using those agree to 1e-12 and give the same warnings and structure.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
import subprocess
import sys

import numpy as np
import pytest

from gradcli import api, compiled
from gradcli import result as R
from gradcli.parse import parse
from gradcli.result import run
from gradcli.tape import active

EXACT_UNARY = ["sqrt", "relu", "-"]
ALL_UNARY = EXACT_UNARY + ["sin", "cos", "tanh", "exp", "sigmoid", "atan", "sinh", "cosh",
                           "log", "tan"]
VARS = ["x", "y", "z"]


def formula(rng: random.Random, depth: int, unary: list[str], var_powers: bool) -> str:
    """A random expression (iteratively built: a list of pieces combined bottom-up)."""
    leaves = [rng.choice(VARS) if rng.random() < 0.7 else repr(round(rng.uniform(-3, 3), 2))
              for _ in range(2 ** depth)]
    while len(leaves) > 1:
        nxt = []
        for a, b in zip(leaves[::2], leaves[1::2]):
            r = rng.random()
            if r < 0.3:
                f = rng.choice(unary)
                if f in ("log", "sqrt"):
                    a = f"(0.5 + ({a})^2)"
                nxt.append(f"-({a})" if f == "-" else f"{f}({a})")
            elif r < 0.4:
                e = rng.choice(["2", "3", "0.5", "0", "-1", "y"] if var_powers else
                               ["2", "3", "0.5", "0", "-1"])
                nxt.append(f"(0.25 + ({a})^2)^{e}" if e in ("0.5", "-1", "y") else f"({a})^{e}")
            elif r < 0.5:
                nxt.append(f"({a}) / (1.5 + ({b})^2)")
            else:
                nxt.append(f"({a}) {rng.choice('+-*')} ({b})")
        leaves = nxt
    return leaves[0]


def program(rng: random.Random, unary: list[str], var_powers: bool) -> str:
    """One to three statements: named intermediates, some of them unused by the output."""
    lines = []
    names = []
    for k in range(rng.randint(0, 2)):
        body = formula(rng, rng.randint(1, 3), unary, var_powers)
        if names and rng.random() < 0.5:
            body = f"({body}) * {rng.choice(names)}"
        lines.append(f"s{k} = {body}")
        names.append(f"s{k}")
    out = formula(rng, rng.randint(1, 4), unary, var_powers)
    if names:
        out = f"({out}) + {rng.choice(names)}"
    lines.append(out)
    return "\n".join(lines)


def both(tape, point, wrt=None, warnings=()):
    """The engine's result and the scalar path's (called until it compiles the tape)."""
    plain = run(tape, dict(point), wrt, list(warnings))
    for _ in range(R.COMPILE_AT):
        fast = run(tape, dict(point), wrt, list(warnings), floats=True)
    return plain, fast


def took_fast(r) -> bool:
    return type(r.values[r.tape.outputs[0]]) is float


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300) or (math.isnan(a) and math.isnan(b))


def compare(plain, fast, eq) -> None:
    n = len(plain.tape)
    assert plain.warnings == fast.warnings
    assert plain.active == fast.active and plain.wrt == fast.wrt and plain.kinks == fast.kinks
    assert len(fast.values) == len(fast.partials) == len(fast.adjoints[0]) == n
    for i in range(n):
        assert eq(float(plain.values[i]), float(fast.values[i])), i
        p, q = plain.partials[i], fast.partials[i]
        assert len(p) == len(q), i
        for x, y in zip(p, q):
            assert eq(None if x is None else float(x), None if y is None else float(y)), i
        g, h = plain.adjoints[0][i], fast.adjoints[0][i]
        assert eq(None if g is None else float(g), None if h is None else float(h)), i
    assert [(m.id, m.op, m.expr, m.name, m.inputs) for m in plain.nodes] == \
        [(m.id, m.op, m.expr, m.name, m.inputs) for m in fast.nodes]


def random_points(rng, tape, k=3):
    for _ in range(k):
        yield {v: rng.choice([rng.uniform(-2, 2), float(rng.randint(-2, 2))])
               for v in tape.variables}


@pytest.mark.parametrize("seed", range(150))
def test_exact_ops_give_identical_results_and_json(seed):
    rng = random.Random(seed)
    text = program(rng, EXACT_UNARY, var_powers=False)
    tape, warnings = parse(text)
    fast_seen = 0
    for point in random_points(rng, tape):
        plain, fast = both(tape, point, None, warnings)
        compare(plain, fast, same)
        assert api.Result.to_json(plain) == api.Result.to_json(fast), text
        assert list(plain.nodes) == list(fast.nodes)
        assert plain.value == fast.value and plain.gradient == fast.gradient
        fast_seen += took_fast(fast)
    if seed % 10 == 0:  # the scalar path is really taken (a test that cannot fail is none)
        assert fast_seen or any(w for w in plain.warnings) or plain.kinks, text


@pytest.mark.parametrize("seed", range(150))
def test_every_float_op_agrees_with_the_engine(seed):
    rng = random.Random(1000 + seed)
    text = program(rng, ALL_UNARY, var_powers=True)
    tape, warnings = parse(text)
    wrt = None if rng.random() < 0.6 or not tape.variables else rng.sample(list(tape.variables),
                                                     max(1, len(tape.variables) - 1))
    for point in random_points(rng, tape):
        plain, fast = both(tape, point, wrt, warnings)
        compare(plain, fast, close)


def test_the_scalar_path_is_taken_for_most_random_formulas():
    rng = random.Random(7)
    taken = 0
    for _ in range(60):
        tape, _ = parse(program(rng, ALL_UNARY, var_powers=True))
        point = {v: rng.uniform(0.3, 1.5) for v in tape.variables}
        taken += took_fast(both(tape, point)[1])
    assert taken >= 50


@pytest.mark.parametrize("text, point", [
    ("sqrt(x - 2)", {"x": 1.0}),  # NaN born
    ("1 / (x - 1)", {"x": 1.0}),  # a pole
    ("log(x) * y", {"x": 0.0, "y": 2.0}),  # log(0)
    ("relu(x) * y", {"x": 0.0, "y": 2.0}),  # a kink
    ("relu(x - y) + x", {"x": 3.0, "y": 3.0}),
    ("exp(x)", {"x": 1000.0}),  # overflow
    ("x * 1e300 * 1e300 + y", {"x": 1.0, "y": 1.0}),  # overflow without an exception
    ("sqrt(sqrt(sqrt(sqrt(sqrt(sqrt(x))))))", {"x": 1e-320}),  # only the gradient overflows
    ("(x - 1)^-1 + y", {"x": 1.0, "y": 0.0}),  # 0^-1
    ("x^y", {"x": -2.0, "y": 0.5}),  # a negative base
    ("x^y", {"x": -2.0, "y": 2.0}),  # d/dy is NaN
    ("x + y", {"x": math.nan, "y": 1.0}),  # a NaN given
    ("x + y", {"x": math.inf, "y": 1.0}),
    ("a = x * y\na, a + 1", {"x": 2.0, "y": 3.0}),  # several outputs
    ("max(x, y) + x", {"x": 2.0, "y": 2.0}),  # an op without a float rule (and a tie)
    ("x * y", {"x": 2.0}),  # a missing value: the engine's error
])
def test_what_the_scalar_path_cannot_promise_goes_to_the_engine(text, point):
    tape, warnings = parse(text)
    try:
        plain = run(tape, dict(point), None, list(warnings))
    except Exception as exc:  # the same error either way
        with pytest.raises(type(exc)) as info:
            both(tape, point, None, warnings)
        assert str(info.value) == str(exc)
        return
    _, fast = both(tape, point, None, warnings)
    assert not took_fast(fast)
    assert plain.warnings == fast.warnings
    assert api.Result.to_json(plain) == api.Result.to_json(fast)


def test_tensors_exact_and_forward_mode_go_to_the_engine():
    tape, _ = parse("sum(W * x)")
    for _ in range(R.COMPILE_AT):
        r = run(tape, {"W": np.array([1.0, 2.0]), "x": 3.0}, None, floats=True)
    assert isinstance(r.gradient["W"], list) and r.gradient["W"] == [3.0, 3.0]
    tape, _ = parse("x * y + 1/3")
    for _ in range(R.COMPILE_AT):
        r = run(tape, {"x": Fraction(2), "y": Fraction(1, 2)}, None, exact=True, floats=True)
    assert r.exact and type(r.values[-1]).__name__ == "Fraction"
    for _ in range(R.COMPILE_AT):
        r = run(tape, {"x": 2.0, "y": 0.5}, None, mode="both", floats=True)
    assert r.tangents is not None and not took_fast(r)
    tape, _ = parse("[1, 2] * x")
    for _ in range(R.COMPILE_AT):
        r = run(tape, {"x": 2.0}, None, floats=True)
    assert r.value == [2.0, 4.0] and r.warnings


def test_numpy_float64_and_python_floats_give_the_same_json():
    text = open("samples/neuron.grad", encoding="utf-8").read()
    at = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    docs = set()
    for point in (at, {k: np.float64(v) for k, v in at.items()}):
        for _ in range(R.COMPILE_AT + 1):
            docs.add(api.evaluate(text, point).to_json())
    tape, warnings = parse(text)
    docs.add(api.Result.to_json(run(tape, {k: np.float64(v) for k, v in at.items()}, None,
                                    warnings)))
    assert len(docs) == 1


def test_the_generated_sweep_names_no_user_text():
    tape, _ = parse("__import__ = 2\nos = x * __import__\nsin(os) + exp(x)")
    text = compiled.sweep_source(tape, active(tape, ["x"]))
    assert "__import__" not in text and "os" not in text.replace("cos", "")


def test_the_scalar_path_needs_no_numpy():
    code = ("import sys\n"
            "from gradcli.parse import parse\n"
            "from gradcli.result import run\n"
            "tape, w = parse(open('samples/neuron.grad').read())\n"
            "at = dict(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)\n"
            "r = run(tape, at, None, w, floats=True)\n"
            "from gradcli import api\n"
            "assert api.evaluate('x * y', {'x': 2.0, 'y': 3.0}).gradient == {'x': 3.0, 'y': 2.0}\n"
            "print(r.value, r.gradient['x0'], len(list(r.nodes)), r.warnings)\n"
            "assert 'numpy' not in sys.modules, 'numpy imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0.7310585786300049", "0.39322386648296376", "15", "[]"]


# -- the API's parse cache ---------------------------------------------------------------------

def snapshot(tape):
    return (tape.text, list(tape.ops), list(tape.inputs), list(tape.starts), list(tape.ends),
            dict(tape.names), {k: float(v) for k, v in R.compiled._consts(tape).items()},
            dict(tape.variables), dict(tape.bound), [(s.name, list(s.nodes), s.pos)
                                                   for s in tape.statements],
            list(tape.outputs))


def test_the_cache_reuses_a_tape_and_a_changed_text_is_parsed_again():
    a = api.evaluate("x * y + 0.125", {"x": 2.0, "y": 3.0})
    b = api.evaluate("x * y + 0.125", {"x": 2.0, "y": 5.0})
    c = api.evaluate("x * y - 0.125", {"x": 2.0, "y": 3.0})
    assert a.tape is b.tape and c.tape is not a.tape
    assert (a.value, b.value, c.value) == (6.125, 10.125, 5.875)
    assert a.gradient == {"x": 3.0, "y": 2.0} and b.gradient == {"x": 5.0, "y": 2.0}


def test_nothing_a_user_does_with_results_changes_the_cached_tape():
    text = "h = tanh(w * x + b)\nl = (h - 1)^2\nl"
    at = {"w": 0.5, "x": 2.0, "b": -0.1}
    r = api.evaluate(text, at)
    before = snapshot(r.tape)
    r.to_json(), repr(r), list(r.nodes), str(r.explain()), r._repr_html_(), r.sweeps
    api.evaluate(text, at, wrt=["w"]), api.evaluate(text, at, mode="both")
    api.evaluate(text, at, exact=True), api.evaluate(text, at, subgradient="half")
    api.evaluate(text, {"w": np.array([0.5, 1.0]), "x": 2.0, "b": -0.1})
    api.check(text, at), api.descend(text, at, wrt=["w", "b"], steps=3)
    again = api.evaluate(text, at)
    assert again.tape is r.tape and snapshot(again.tape) == before
    plain = run(parse(text)[0], {k: np.float64(v) for k, v in at.items()}, None)
    assert api.Result.to_json(plain).replace(" ", "") and again.gradient == pytest.approx(
        plain.gradient, rel=1e-12)


def test_the_caches_are_bounded_and_long_texts_are_not_kept():
    for k in range(api.CACHE_TEXTS + 10):
        api.evaluate(f"x * {k + 1}", {"x": 2.0})
    assert len(api._TEXTS) == api.CACHE_TEXTS
    assert "x * 1" not in api._TEXTS and f"x * {api.CACHE_TEXTS + 10}" in api._TEXTS
    assert len(R._PLANS) <= R.PLAN_SLOTS
    long_text = " + ".join(f"x{k}" for k in range(3000))
    assert len(long_text) > api.CACHE_CHARS
    r = api.evaluate(long_text, {f"x{k}": 1.0 for k in range(3000)})
    assert r.value == 3000.0 and long_text not in api._TEXTS


def test_at_lines_errors_and_odd_points_behave_as_before():
    text = "# at: x=2, y=randn()\nx * y"
    a = api.evaluate(text, seed=3)
    b = api.evaluate(text, seed=3)
    assert a.value == b.value and a.at["x"] == 2.0
    assert api.evaluate(text, {"y": 1.5}).value == 3.0
    assert api.evaluate("x * y", {"x": "2", "y": 3}).value == 6.0
    assert api.evaluate("x * y", {"x": 2, "y": 3.0}, exact=True).value == 6.0
    from gradcli.errors import InputError

    for _ in range(2):
        with pytest.raises(InputError, match="has no variable q"):
            api.evaluate("x * y", {"x": 2.0, "y": 3.0}, wrt=["q"])
        with pytest.raises(InputError):
            api.evaluate("x * y", {"x": 2.0, "y": True})
    r = api.evaluate("x * y", {"x": 2.0, "y": 3.0, "z": 1.0, "pi": 3.0})
    assert r.warnings == ["z is not used by the formula; its value is ignored",
                          "pi is a constant (3.141592653589793); the value given for it is "
                          "not used"]
    assert api.evaluate("x * y", {"x": 2.0, "y": 3.0}, wrt=iter(["y"])).gradient == {"y": 2.0}


def test_a_tape_is_compiled_at_its_compile_at_th_use_once_numpy_is_imported():
    tape, _ = parse("x * y + sin(x)")
    kinds = [took_fast(run(tape, {"x": 0.5, "y": 2.0}, None, floats=True))
             for _ in range(R.COMPILE_AT + 2)]
    assert kinds == [False] * (R.COMPILE_AT - 1) + [True] * 3
    text = "x * y + cos(x) - 0.5"
    kinds = [took_fast(api.evaluate(text, {"x": 0.5, "y": 2.0})) for _ in range(R.COMPILE_AT)]
    assert kinds == [False] * (R.COMPILE_AT - 1) + [True]


def test_ints_floats_and_strings_in_the_api_point_give_the_same_document():
    from gradcli.session import load

    text = "q = x + y\nf = q * z / 3"
    docs = set()
    for at in ({"x": -2, "y": 5, "z": -4}, {"x": -2.0, "y": 5.0, "z": -4.0},
               {"x": "-2", "y": np.float64(5), "z": np.int64(-4)}):
        for _ in range(R.COMPILE_AT):
            docs.add(api.evaluate(text, at).to_json())
        s = load(text, at, max_nodes=0)
        docs.add(api.Result.to_json(R.run_session(s)))
    assert len(docs) == 1


def test_a_rule_replaced_in_the_op_table_is_seen_by_a_cached_text(monkeypatch):
    from dataclasses import replace

    from gradcli.ops import OPS

    first = api.evaluate("log(x) + 0.25", at={"x": 0.0}).warnings
    assert any("natural logarithm" in w for w in first)
    monkeypatch.setitem(OPS, "log", replace(OPS["log"], pole=None))
    later = api.evaluate("log(x) + 0.25", at={"x": 0.0}).warnings
    assert any("beyond float64's range" in w for w in later), later
