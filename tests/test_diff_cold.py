"""`gradcli diff` of a scalar formula without numpy (issue 17.1), against the numpy path.

- `gradcli diff samples/neuron.grad --at ... --json`, as a whole process, imports no numpy (nor
  the ops' numpy rules, nor the engine), and prints what the numpy path prints.
- What the numpy-free path changes, each put back by `plain()` for the reference: constant
  folding (+ - * / and unary - in Python floats instead of numpy's rules), `elementwise` known
  from symbolic.ELEMENTWISE instead of the bound rules, the derivatives' values at a point
  (diff.float_values instead of engine.forward) and the builder's constants (Python floats, not
  numpy float64, when rendered). Differential: on random scalar formulas whose numbers are
  + - * / sqrt pow relu the JSON, text and LaTeX outputs are identical byte for byte; with exp,
  log, sin, ... the formulas are identical and the values agree to 1e-12 (math vs numpy in the
  last bit, the float paths' documented behaviour). Poles, NaN, kinks and tensors fall back to
  the engine, with the same warnings and errors.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from gradcli import diff, ops, symbolic
from gradcli.errors import InputError
from gradcli.render.formula import diff_latex, diff_program
from gradcli.render.jsonout import diff_json
from gradcli.session import load

from fresh_process import cli_modules

ROOT = Path(__file__).resolve().parent.parent
NEURON_AT = "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"

@contextlib.contextmanager
def plain(monkeypatch):
    """The numpy path, as diff ran before issue 17.1: numpy's rules fold constants, the bound
    rules say what is elementwise, the engine evaluates."""
    with monkeypatch.context() as m:
        m.setattr(symbolic, "_FLOAT_FOLD", {})
        m.setattr(symbolic, "ELEMENTWISE", frozenset())
        m.setattr(diff, "float_values", lambda tape, at, nodes: None)
        yield


def outputs(text: str, at: list[str] | None, order: int = 1, wrt=None) -> tuple:
    """diff's three documents (json, text, latex) and its warnings, or its error message."""
    try:
        r = diff.diff_session(load(text, at, wrt=wrt), order)
    except InputError as exc:
        return ("error", str(exc))
    return diff_json(r), diff_program(r), diff_latex(r), list(r.warnings), r


def both(monkeypatch, text: str, at: list[str] | None, order: int = 1, wrt=None):
    """(numpy-free, numpy) outputs; the reference renders numpy float64 constants, as before."""
    fast = outputs(text, at, order, wrt)
    with plain(monkeypatch):
        ref = outputs(text, at, order, wrt)
    if ref[0] != "error":
        ref[4].derivatives.tape.literals  # noqa: B018 - numpy's view, as the old builder kept
        ref = (diff_json(ref[4]), diff_program(ref[4]), diff_latex(ref[4]), ref[3], ref[4])
    return fast, ref


@pytest.fixture
def taken(monkeypatch):
    """Counts diff.float_values' answers: [numbers given, declined]."""
    seen = [0, 0]
    real = diff.float_values

    def spy(tape, at, nodes):
        v = real(tape, at, nodes)
        seen[v is None] += 1
        return v
    monkeypatch.setattr(diff, "float_values", spy)
    return seen


# -- the whole process ----------------------------------------------------------------------

def test_diff_json_of_the_neuron_imports_no_numpy(monkeypatch):
    stdout, loaded, code = cli_modules("diff", "samples/neuron.grad", "--at", NEURON_AT, "--json")
    assert code == 0
    assert loaded == [], loaded
    text = (ROOT / "samples" / "neuron.grad").read_text()
    fast, ref = both(monkeypatch, text, [NEURON_AT])
    assert stdout == fast[0] + "\n" == ref[0] + "\n"
    doc = json.loads(stdout)
    assert doc["values"]["w0"] == -0.19661193324148188 and doc["warnings"] == []


def test_a_pole_at_the_point_falls_back_to_numpy_and_warns():
    out = subprocess.run([sys.executable, "-m", "gradcli", "diff", "1/x + y", "--at",
                          "x=0,y=1", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["values"]["x"] == "-Infinity" and "-Infinity" in out.stderr
    _, loaded, _ = cli_modules("diff", "1/x + y", "--at", "x=0,y=1", "--json")
    assert "numpy" in loaded


def test_importing_diff_symbolic_and_the_formula_renderer_imports_no_numpy():
    code = ("import sys, gradcli.diff, gradcli.symbolic, gradcli.render.formula;"
            "print('numpy' in sys.modules, 'gradcli.engine' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_the_elementwise_list_agrees_with_the_bound_rules():
    ops.install()
    for name in symbolic.ELEMENTWISE:
        op = ops.lookup(name)
        assert op.elementwise and ops.builtin(op), name
    assert not ops.lookup("matmul").elementwise  # (the list is not everything)


def test_a_replaced_op_is_asked_about_its_own_rules(monkeypatch):
    import dataclasses

    ops.install()
    odd = dataclasses.replace(ops.OPS["sin"], vjp=lambda *a: None)
    assert not symbolic.elementwise(odd)
    assert symbolic.elementwise(ops.OPS["sin"])


# -- differential: random scalar formulas ---------------------------------------------------

EXACT_UNARY = ("sqrt({})", "relu({})", "-{}", "({})^2", "({})^3", "({})^-1", "({})^0.5")
EXACT_NUMBERS = ("2", "3", "0.5", "1.5", "0.1", "7", "1e-3", "(2*3)", "(1/3)", "(2^0.5)",
                 "(-4)", "(0.1 + 0.2)", "(2^3)", "pi")
LIBM_UNARY = ("exp({})", "log({})", "sin({})", "cos({})", "tan({})", "tanh({})", "sinh({})",
              "cosh({})", "atan({})", "sigmoid({})", "softplus({})", "abs({})")


def random_formula(rng: random.Random, names: list[str], unary: tuple, depth: int) -> str:
    """A random expression (built with a work list, not by recursion)."""
    leaves = names + list(EXACT_NUMBERS)
    parts = [rng.choice(names)]
    for _ in range(depth):
        r = rng.random()
        a = parts.pop() if parts else rng.choice(names)
        if r < 0.55:
            b = rng.choice(leaves) if rng.random() < 0.5 else rng.choice(names)
            op = rng.choice(" + , - , * , / ".split(","))
            parts.append(f"({a}{op}{b})" if rng.random() < 0.5 else f"({b}{op}{a})")
        elif r < 0.65:
            parts.append(f"({a})^{rng.choice(names)}")
        else:
            parts.append(rng.choice(unary).format(a))
        if rng.random() < 0.3:
            parts.append(rng.choice(names))
    expr = parts.pop()
    while parts:
        expr = f"{expr} {rng.choice('+-*')} {parts.pop()}"
    return expr


def random_program(rng: random.Random, unary: tuple) -> str:
    names = ["x", "y", "z"][: rng.randint(1, 3)]
    if rng.random() < 0.4:  # a named intermediate (and sometimes an unused one)
        q = random_formula(rng, names, unary, rng.randint(1, 3))
        rest = random_formula(rng, names + ["q"], unary, rng.randint(1, 4))
        unused = "u = x * 2; " if rng.random() < 0.3 else ""
        return f"q = {q}; {unused}f = {rest} + q"
    return random_formula(rng, names, unary, rng.randint(1, 6))


def random_point(rng: random.Random, exact: bool) -> str:
    def one() -> str:
        if exact and rng.random() < 0.5:
            return repr(rng.choice([1.0, 2.0, -1.0, 0.5, 3.0, -2.5, 0.25, 4.0]))
        return repr(rng.uniform(0.2, 3.0) * rng.choice([1, 1, -1]))
    return ",".join(f"{n}={one()}" for n in "xyz")


@pytest.mark.parametrize("seed", range(120))
def test_exact_formulas_give_the_numpy_paths_bytes(monkeypatch, seed):
    rng = random.Random(seed)
    text = random_program(rng, EXACT_UNARY)
    at = [random_point(rng, exact=True)]
    order = 2 if seed % 4 == 0 else 1
    fast, ref = both(monkeypatch, text, at, order)
    assert fast[:4] == ref[:4], text


@pytest.mark.parametrize("seed", range(60))
def test_exact_formulas_without_a_point_give_the_same_formulas(monkeypatch, seed):
    rng = random.Random(1000 + seed)
    text = random_program(rng, EXACT_UNARY + LIBM_UNARY)
    fast, ref = both(monkeypatch, text, None, 1 + seed % 2)
    assert fast[:4] == ref[:4], text


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    return a == pytest.approx(b, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("seed", range(80))
def test_libm_formulas_agree_to_1e_12_with_the_same_formulas_and_warnings(monkeypatch, seed):
    rng = random.Random(5000 + seed)
    text = random_program(rng, EXACT_UNARY + LIBM_UNARY)
    at = [random_point(rng, exact=False)]
    fast, ref = both(monkeypatch, text, at, 2 if seed % 5 == 0 else 1)
    if ref[0] == "error" or fast[0] == "error":
        assert fast == ref
        return
    a, b = json.loads(fast[0]), json.loads(ref[0])
    for key in ("values", "second_values"):
        assert _close(a.pop(key, None), b.pop(key, None)), (text, key)
    assert a == b, text  # the formulas, the point and the warnings
    assert fast[3] == ref[3]


def test_most_random_points_take_the_float_path(monkeypatch, taken):
    for seed in range(60):
        rng = random.Random(seed)
        text = random_program(rng, EXACT_UNARY)
        outputs(text, [random_point(rng, exact=True)])
    assert taken[0] >= 40, taken  # the rest: poles, NaN, kinks (the engine's)


def test_folding_in_floats_gives_numpys_constants(monkeypatch):
    """Each folded constant as numpy's rule folds it (the same bits), and pow by numpy's."""
    import numpy as np

    rng = random.Random(7)
    specials = [0.0, -0.0, 1.0, -1.0, 3.0, 0.1, 1e308, -1e308, 5e-324, math.inf, -math.inf,
                math.nan, 1 / 3]
    pairs = [(rng.choice(specials), rng.choice(specials)) for _ in range(300)]
    pairs += [(rng.uniform(-1e3, 1e3), rng.uniform(-1e3, 1e3)) for _ in range(300)]
    for name in ("add", "sub", "mul", "div", "neg", "pow"):
        op = ops.lookup(name)
        for a, b in pairs:
            vals = [a] if name == "neg" else [a, b]
            got = symbolic._fold(op, vals)
            with np.errstate(all="ignore"):
                want = op.value(*[np.float64(v) for v in vals])
            if not np.isfinite(want):
                assert got is None, (name, vals)
            else:
                assert got is not None and float(got).hex() == float(want).hex(), (name, vals)
                if name != "pow":
                    assert type(got) is float


# -- fallbacks: poles, NaN, kinks, tensors -------------------------------------------------

FALLBACKS = [
    ("1/x + y", "x=0,y=1"),           # a pole: -Infinity, with a warning
    ("log(x) * y", "x=0,y=2"),
    ("sqrt(x) + y", "x=0,y=1"),       # 1/(2*sqrt(0))
    ("x^y", "x=-2,y=0.5"),            # a negative base: NaN
    ("x^-1 + x", "x=0"),
    ("relu(x) * y", "x=0,y=3"),       # relu at its kink
    ("relu(x) * y", "x=-0.0,y=3"),
    ("exp(x) * y", "x=800,y=1"),      # overflow
    ("x*y", "x=nan,y=1"),
    ("x*y", "x=inf,y=2"),
    ("x/y - y/x", "x=1e-320,y=1e300"),
    ("asin(x) + acos(y)", "x=0.5,y=0.25"),  # ops without a float rule
    ("max(x, y) + min(x, 2*y)", "x=1,y=1"),
    ("x*y", "x=[1,2],y=3"),           # a tensor at the point: an error, the same one
    ("D = W @ X", None),              # matrix forms
    ("D = W @ X", "W=[[1,2]],X=[[3],[4]]"),
]


@pytest.mark.parametrize("text, at", FALLBACKS)
def test_fallbacks_say_what_the_numpy_path_says(monkeypatch, text, at):
    points = None if at is None else [at]
    fast, ref = both(monkeypatch, text, points)
    assert fast[:4] == ref[:4]


def test_poles_and_nan_really_fall_back(monkeypatch, taken):
    for text, at in FALLBACKS[:11]:
        outputs(text, [at])
    assert taken == [0, 11]


def test_float_values_declines_what_it_cannot_promise():
    from gradcli.parse import parse

    def values(text, at):
        tape, _ = parse(text)
        return diff.float_values(tape, at, tape.outputs)

    assert values("x*y + 2", {"x": 1.0, "y": 2.0})[-1] == 4.0
    assert values("x*y + 2", {"x": 1.0}) is None               # missing: the engine's error
    assert values("x*y + 2", {"x": 1, "y": 2.0}) is None        # not a float
    assert values("x*y + 2", {"x": math.nan, "y": 2.0}) is None
    assert values("x / y", {"x": 1.0, "y": 0.0}) is None
    assert values("x * 1e400", {"x": 1.0}) is None
    assert values("sign(x) + abs(x)", {"x": -0.0})[-1] == 0.0
    assert values("sign(x)", {"x": -2.0})[-1] == -1.0
    assert values("relu(x)", {"x": 0.0}) is None               # the kink: the engine's
    # a node no output needs is not computed (numpy's NaN there is read by nobody)
    tape, _ = parse("q = log(x); f = x*2")
    assert diff.float_values(tape, {"x": -1.0}, tape.outputs) == [-1.0, None, 2.0, -2.0]
    assert diff.float_values(tape, {"x": -1.0}, [tape.bound["q"]]) is None


def test_a_replaced_op_is_evaluated_by_its_own_rule(monkeypatch):
    import dataclasses

    ops.install()
    wrong = dataclasses.replace(ops.OPS["mul"], value=lambda a, b: a * b + 1.0)
    monkeypatch.setitem(ops.OPS, "mul", wrong)
    from gradcli.parse import parse

    tape, _ = parse("x*y")
    assert tape.ops[-1] is wrong
    assert diff.float_values(tape, {"x": 1.0, "y": 2.0}, tape.outputs) is None


def test_a_builder_whose_literals_were_read_keeps_numpy_float64():
    b = symbolic.Builder()
    b.const(2.0)
    b.tape.literals  # noqa: B018 - numpy's view taken
    i = b.const(3.0)
    assert type(b.tape.consts[i]).__name__ == "float64"
    assert b.value_of(i) == 3.0 and type(b.value_of(i)) is float
    assert b.const(3) == i  # the same number is the same node


def test_second_derivatives_at_a_point_are_symmetric_and_the_engines(monkeypatch, taken):
    fast, ref = both(monkeypatch, "x^2*y + y^3 + x*y/(1 + x^2)", ["x=1,y=2"], order=2)
    assert fast[:4] == ref[:4]
    doc = json.loads(fast[0])
    assert doc["second_values"]["x"]["y"] == doc["second_values"]["y"]["x"]
    assert taken[0] >= 1
