"""Issue 12, the language: indexing, comparisons and where, reduction axes and keep, points as
constant expressions, messages that fit the slip, cbrt and root.

Oracles are hand-worked numbers and numpy written out here (never gradcli's own code); the
per-op central-difference specs live in tests/test_ops.py (lt ... ne, where, cbrt, root) and
tests/test_tensor_ops.py (index, the keep forms of sum, mean and logsumexp).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from cli_runner import run

from gradcli import engine, evaluate
from gradcli.errors import GradcliError, InputError, ParseError, ShapeError
from gradcli.parse import index_variables, parse
from gradcli.points import constant_value


def _softmax(v):
    e = np.exp(v - np.max(v))
    return e / e.sum()


# -- 1. indexing --------------------------------------------------------------------------------

def test_cross_entropy_with_the_correct_class_score():
    """The done-when command: -s[y] + logsumexp(s), y an index given with --at."""
    r = run("eval", "-s[y] + logsumexp(s)", "--at", "s=[2,1,0.1],y=0", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    s = np.array([2.0, 1.0, 0.1])
    assert out["value"] == pytest.approx(-2.0 + math.log(math.exp(2) + math.exp(1) +
                                                         math.exp(0.1)), rel=1e-14)
    # ∂/∂s = softmax(s) - onehot(y); y is an index: no gradient, not in the gradient object
    assert out["gradient"]["s"] == pytest.approx(_softmax(s) - np.array([1.0, 0, 0]), abs=1e-14)
    assert list(out["gradient"]) == ["s"]
    y_node = next(n for n in out["nodes"] if n["expr"] == "y")
    assert y_node["grad"] is None


@pytest.mark.parametrize("y", [0, 1, 2, -1])
def test_the_index_is_read_at_run_time(y):
    s = [0.3, -1.2, 2.5]
    r = evaluate("-s[y] + logsumexp(s)", at={"s": s, "y": y})
    onehot = np.zeros(3)
    onehot[y] = 1
    assert r.value == pytest.approx(-s[y] + math.log(sum(math.exp(t) for t in s)), rel=1e-14)
    assert r.gradient["s"] == pytest.approx(_softmax(np.array(s)) - onehot, abs=1e-14)


def test_an_index_expression_and_its_variables():
    tape, _ = parse("s[y + 1] * w + y")
    assert index_variables(tape) == {"y"}
    r = evaluate("s[y + 1] * w", at={"s": [5.0, 7.0, 11.0], "y": 1, "w": 2.0})
    assert r.value == 22.0
    assert set(r.gradient) == {"s", "w"}
    assert list(r.gradient["s"]) == [0.0, 0.0, 2.0] and r.gradient["w"] == 11.0


@pytest.mark.parametrize("text,expected,grad", [
    ("x[0]", 1.0, [[1, 0, 0], [0, 0, 0]]),  # a row of a matrix is x[0]: see below
    ("W[1, 2]", 6.0, [[0, 0, 0], [0, 0, 1]]),
    ("sum(W[:, 0])", 5.0, [[1, 0, 0], [1, 0, 0]]),
    ("sum(W[1])", 15.0, [[0, 0, 0], [1, 1, 1]]),
    ("sum(W[:, 1:3] * [[1, 2], [3, 4]])", 2 + 6 + 15 + 24, [[0, 1, 2], [0, 3, 4]]),
    ("W[-1, -1] * W[0, 0]", 6.0, [[6, 0, 0], [0, 0, 1]]),
    ("sum(W[::-1, 0] * [10, 1])", 41.0, [[1, 0, 0], [10, 0, 0]]),
])
def test_matrix_indexing_by_hand(text, expected, grad):
    W = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    text = text.replace("x[0]", "W[0, 0]")
    r = evaluate(text, at={"W": W})
    assert r.value == expected
    assert np.asarray(r.gradient["W"]).tolist() == grad


def test_vector_slices_follow_numpy():
    x = np.array([1.0, -2.0, 3.0, 5.0, 8.0])
    for sub, ref in [("1:3", x[1:3]), (":2", x[:2]), ("3:", x[3:]), ("::2", x[::2]),
                     ("::-1", x[::-1]), ("-2:", x[-2:]), ("1:-1:2", x[1:-1:2])]:
        r = evaluate(f"x[{sub}]", at={"x": x})
        assert np.array_equal(r.values[r.tape.outputs[0]], ref), sub


def test_indexing_in_several_outputs_and_both_modes():
    r = evaluate("x[0] * x[1], x[1:3]", at={"x": [2.0, 3.0, 5.0]}, mode="both")
    # the Jacobian by hand: d(x0*x1) = [x1, x0, 0]; d sum(x[1:3]) = [0, 1, 1]
    assert r.adjoints[0][r.tape.variables["x"]].tolist() == [3.0, 2.0, 0.0]
    assert r.adjoints[1][r.tape.variables["x"]].tolist() == [0.0, 1.0, 1.0]
    tangent = r.tangent("x", r.tape.outputs[1])
    assert np.asarray(tangent).tolist() == [1.0, 1.0]  # seeded with ones


def test_forward_mode_of_an_index_along_a_direction():
    tape, _ = parse("W[1, :] @ v")
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    v = np.array([0.5, -1.0])
    values = engine.forward(tape, {"W": W, "v": v})
    partials = engine.local_partials(tape, values)
    dW = np.array([[9.0, 9.0], [1.0, 2.0]])
    t = engine.jvp(tape, values, partials, {tape.variables["W"]: dW})
    assert t[tape.outputs[0]] == pytest.approx(1.0 * 0.5 + 2.0 * -1.0)


def test_indexing_under_exact():
    r = evaluate("x[y] / 3 + z", at={"x": [1.5, 6.0], "y": "1", "z": "1/3"}, exact=True)
    assert r.value == Fraction(7, 3) or r.value == pytest.approx(7 / 3)
    assert r.gradient["z"] == 1


@pytest.mark.parametrize("text,at,words", [
    ("x[3]", {"x": [1, 2, 3]}, ["x[3]", "out of bounds", "(3,)"]),
    ("x[y]", {"x": [1, 2, 3], "y": 0.5}, ["x[y]", "0.5", "not a whole number"]),
    ("x[0]", {"x": 2.0}, ["x[0]", "no elements"]),
    ("x[2:1]", {"x": [1, 2, 3]}, ["x[2:1]", "selects no elements"]),
    ("W[0, 0, 0]", {"W": [[1, 2], [3, 4]]}, ["W[0, 0, 0]", "too many indices"]),
    ("x[y]", {"x": [1, 2], "y": [0, 1]}, ["x[y]", "one whole number"]),
])
def test_bad_indices_are_errors_naming_the_node(text, at, words):
    with pytest.raises(ShapeError) as info:
        evaluate(text, at=at)
    message = info.value.render()
    for word in words:
        assert word in message, message
    assert info.value.exit_code == 2


def test_a_bad_index_on_the_command_line_has_a_caret_under_its_bracket():
    r = run("eval", "1 + x[5]", "--at", "x=[1,2]")
    assert r.exit_code == 2
    assert "x[5]" in r.stderr and "out of bounds" in r.stderr
    lines = r.stderr.splitlines()
    caret = next(line for line in lines if line.strip() == "^")
    assert caret.index("^") - 2 == "1 + x[5]".index("[")  # the echo is indented by two


def test_a_literal_index_must_be_whole_at_parse_time():
    with pytest.raises(ParseError, match="whole number"):
        parse("x[0.5]")
    with pytest.raises(ParseError, match="whole number"):
        parse("x[1, [1, 2]]")


def test_an_index_variable_has_no_gradient_to_ask_for():
    with pytest.raises(InputError, match="index"):
        evaluate("s[y]", at={"s": [1, 2], "y": 0}, wrt=["y"])


def test_x0_is_no_longer_implicit_multiplication():
    r = run("eval", "x[0] + x[1]", "--at", "x=[3,4]")
    assert r.exit_code == 0 and "implicit" not in r.stderr
    assert "f = 7" in r.stdout


def test_index_inside_a_multiline_program():
    r = evaluate("h = W @ x\nL = -h[\n  y\n] + logsumexp(h)",
                 at={"W": [[1, 0], [0, 1]], "x": [1.0, 2.0], "y": 1})
    assert r.value == pytest.approx(-2 + math.log(math.e + math.e ** 2))


# -- 2. comparisons and where -------------------------------------------------------------------

def test_leaky_relu_with_where():
    r = run("eval", "where(x > 0, x, 0.01*x)", "--at", "x=-2")
    assert r.exit_code == 0, r.stderr
    assert "f = -0.02" in r.stdout and "∂f/∂x = 0.01" in r.stdout
    assert evaluate("where(x > 0, x, 0.01*x)", at={"x": 3}).gradient["x"] == 1.0


@pytest.mark.parametrize("r_,value,slope", [(0.5, 0.125, 0.5), (3.0, 2.5, 1.0), (-2.0, 1.5, -1.0)])
def test_huber_loss_by_hand(r_, value, slope):
    res = evaluate("where(abs(r) <= 1, r^2/2, abs(r) - 1/2)", at={"r": r_})
    assert res.value == value and res.gradient["r"] == slope


def test_comparisons_give_zero_or_one_and_no_gradient():
    at = {"a": 1.0, "b": 2.0}
    got = [evaluate(f"a {op} b", at=at).value for op in ("<", "<=", ">", ">=", "==", "!=")]
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    r = evaluate("where(x > 0, 1, 2) + (x > 0) * 5", at={"x": 0.3})
    assert r.value == 6.0 and r.gradient["x"] == 0.0
    r = evaluate("(x > 0) * x", at={"x": [-1.0, 2.0]})
    assert list(r.gradient["x"]) == [0.0, 1.0]


def test_where_broadcasts_and_sums_back():
    r = evaluate("sum(where(v > 0, v, c))", at={"v": [-1.0, 2.0, -3.0], "c": 7.0})
    assert r.value == 16.0
    assert list(r.gradient["v"]) == [0.0, 1.0, 0.0] and r.gradient["c"] == 2.0


def test_a_tie_is_flagged_as_a_kink():
    r = evaluate("where(x > 0, x, 0.01*x)", at={"x": 0.0})
    assert r.kinks and r.gradient["x"] == 0.01


def test_comparisons_do_not_chain():
    with pytest.raises(ParseError) as info:
        parse("a < b < c")
    assert "(a < b) * (b < c)" in info.value.render()


def test_where_and_comparisons_are_exact():
    r = evaluate("where(x > 1/3, x, 2*x)", at={"x": "1/4"}, exact=True)
    assert r.value == Fraction(1, 2) and r.gradient["x"] == 2


# -- 3. axes and keep ---------------------------------------------------------------------------

S = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [-0.3, 0.8, 1.9]]
T = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


def test_batch_cross_entropy_with_keep_against_numpy():
    S_, T_ = np.array(S), np.array(T)
    per_row = np.log(np.exp(S_).sum(axis=1, keepdims=True))
    want = -(T_ * (S_ - per_row)).sum()
    r = evaluate("-sum(T*(S - logsumexp(S, 1, keep)))", at={"S": S, "T": T})
    assert r.value == pytest.approx(want, rel=1e-14)
    probs = np.exp(S_) / np.exp(S_).sum(axis=1, keepdims=True)
    assert r.gradient["S"] == pytest.approx(probs * T_.sum(axis=1, keepdims=True) - T_, abs=1e-14)
    # without the axis, logsumexp takes every element (numpy's rule): another number
    wrong = evaluate("-sum(T*(S - logsumexp(S)))", at={"S": S, "T": T}).value
    assert wrong == pytest.approx(-(T_ * (S_ - np.log(np.exp(S_).sum()))).sum(), rel=1e-14)
    assert abs(wrong - want) > 1


def test_keep_for_sum_and_mean_broadcasts_per_row():
    r = evaluate("sum((A - mean(A, 1, keep))^2)", at={"A": [[1.0, 3.0], [2.0, 6.0]]})
    assert r.value == 1 + 1 + 4 + 4
    r = evaluate("A / sum(A, 0, keepdims)", at={"A": [[1.0, 3.0], [3.0, 1.0]]})
    assert r.values[r.tape.outputs[0]].tolist() == [[0.25, 0.75], [0.75, 0.25]]


def test_softmax_of_a_matrix_asks_for_its_axis():
    with pytest.raises(ShapeError, match=r"softmax\(A, 1\)"):
        evaluate("sum(softmax(S))", at={"S": S})
    rows = evaluate("softmax(S, 1)", at={"S": S}).values[-1]
    assert rows == pytest.approx(np.exp(S) / np.exp(S).sum(axis=1, keepdims=True))
    v = evaluate("softmax(v)", at={"v": [1.0, 2.0]}).values[-1]
    assert v == pytest.approx(_softmax(np.array([1.0, 2.0])))


@pytest.mark.parametrize("text,words", [
    ("sum(A, 1, kep)", "only be the word keep"),
    ("softmax(A, 1, keep)", "keep does not apply"),
    ("sum(A, x)", "whole number"),
])
def test_keep_and_axis_mistakes(text, words):
    with pytest.raises(ParseError, match=words):
        parse(text)


def test_keep_is_still_a_variable_name_elsewhere():
    r = evaluate("keep * sum(A, 0, keep)[0, 1]",
                 at={"keep": 2.0, "A": [[1.0, 2.0], [3.0, 4.0]]})
    assert r.value == 12.0


def test_the_readme_has_one_axis_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert readme.count("| function | no axis | `f(A, k)` | `f(A, k, keep)` |") == 1


# -- 4. points as constant expressions ----------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("pi/2", math.pi / 2), ("2*pi", 2 * math.pi), ("exp(1)", math.e), ("π", math.pi),
    ("-pi", -math.pi), ("sqrt(2)/2", math.sqrt(0.5)), ("2^-1", 0.5), ("1e-3", 1e-3),
])
def test_at_takes_constant_expressions(text, value):
    r = evaluate("x", at={"x": text})
    assert r.value == pytest.approx(value, rel=1e-15)
    r = run("eval", "x", "--at", f"x={text}", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["value"] == pytest.approx(value, rel=1e-15)


def test_a_vector_of_expressions():
    r = run("eval", "sum(v)", "--at", "v=[exp(1), 2*pi]", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["at"]["v"] == pytest.approx([math.e, 2 * math.pi])


def test_sin_at_pi_over_2_exact():
    r = run("eval", "sin(x)", "--at", "x=pi/2", "--exact", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["value"] == 1.0 and abs(out["gradient"]["x"]) < 1e-15


def test_constant_value_is_exact_where_rational():
    assert constant_value("2/9", exact=True) == Fraction(2, 9)
    assert constant_value("-0.20", exact=True) == Fraction(-1, 5)
    assert constant_value("1/3 + 1/6", exact=True) == Fraction(1, 2)
    assert constant_value("2^-2 * 3", exact=True) == Fraction(3, 4)
    assert type(constant_value("pi/2", exact=True)) is not Fraction
    assert constant_value("[[1, 2], [3, 2*2]]").tolist() == [[1, 2], [3, 4]]
    r = evaluate("x^2", at={"x": "1/3 + 1/6"}, exact=True)
    assert r.value == Fraction(1, 4) and r.gradient["x"] == 1


@pytest.mark.parametrize("text,words", [
    ("hello", ["'hello'", "not a number", "hello is not a constant"]),
    ("2*y", ["y is not a constant"]),
    ("q=1", ["without '='"]),
    ("1, 2", []),
    ("sin(", ["not a number"]),
    ("__import__('os').system('echo hacked')", ["not a number"]),
])
def test_values_that_are_not_constant_expressions(text, words):
    with pytest.raises(GradcliError) as info:
        constant_value(text, what="--at x")
    message = info.value.message
    assert message.startswith("--at x")
    for word in words:
        assert word in message, message


def test_a_point_is_never_evaluated_by_python(tmp_path):
    marker = tmp_path / "hacked"
    r = run("eval", "x", "--at", f"x=__import__('os').system('touch {marker}')")
    assert r.exit_code == 2 and not marker.exists()


# -- 5. messages --------------------------------------------------------------------------------

@pytest.mark.parametrize("text,fix", [("sin x", "sin(x)"), ("exp 2", "exp(2)"),
                                      ("y + tanh q", "tanh(q)")])
def test_a_function_call_needs_parentheses(text, fix):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert f"a function call needs parentheses: {fix}" in info.value.render()


@pytest.mark.parametrize("arg", ["samples/neuron.grd", "no/such/thing", "notes.txt",
                                 "dir\\x.grad2"])
def test_a_path_that_does_not_exist_is_no_such_file(arg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("eval", arg, "--at", "x=1")
    assert r.exit_code == 2
    assert f"no such file: {arg}" in r.stderr, r.stderr


def test_a_division_is_still_a_formula():
    r = run("eval", "a/b", "--at", "a=1,b=4")
    assert r.exit_code == 0 and "f = 0.25" in r.stdout


def test_formula_and_points_cannot_both_read_stdin():
    r = run("eval", "-", "--points", "-", input="x\n1\n")
    assert r.exit_code == 2
    assert "the formula and --points cannot both read standard input" in r.stderr


def test_a_near_miss_name_is_suggested():
    r = run("eval", "x * y", "--at", "X=1,y=2")
    assert r.exit_code == 2
    assert "no value for variable x" in r.stderr and "X was given: did you mean x?" in r.stderr


def test_a_formula_that_reads_as_an_option_says_to_use_dashes():
    r = run("eval", "-w", "--at", "w=3")  # -w is --wrt: it takes --at as its value
    assert r.exit_code == 2
    assert "--" in r.stderr and "gradcli eval --at w=3 -- -w" in r.stderr
    r = run("eval", "--at", "w=3", "--", "-w")
    assert r.exit_code == 0 and "f = -3" in r.stdout


def test_dash_h_is_help_and_after_dashes_a_formula():
    r = run("eval", "-h", "--at", "h=3")
    assert r.exit_code == 0 and "Usage" in r.stdout
    r = run("eval", "--at", "h=3", "--", "-h")
    assert r.exit_code == 0 and "f = -3" in r.stdout


# -- 6. real roots ------------------------------------------------------------------------------

def test_cbrt_and_root_of_negative_numbers():
    r = evaluate("cbrt(x)", at={"x": -8.0})
    assert r.value == -2.0 and r.gradient["x"] == pytest.approx(1 / 12, rel=1e-15)
    r = evaluate("root(x, 5)", at={"x": -32.0})
    assert r.value == pytest.approx(-2.0, rel=1e-15)
    assert r.gradient["x"] == pytest.approx(1 / (5 * 16), rel=1e-14)  # 1/(n·y^(n-1))
    r = evaluate("root(x, 2)", at={"x": -4.0})
    assert math.isnan(r.value) and r.warnings


def test_cbrt_is_exact_where_rational():
    r = evaluate("cbrt(x)", at={"x": "-8/27"}, exact=True)
    assert r.value == Fraction(-2, 3) and r.gradient["x"] == Fraction(3, 4)
    r = evaluate("root(x, 4)", at={"x": "16/81"}, exact=True)
    assert r.value == Fraction(2, 3)


def test_the_nan_warning_of_a_fractional_power_names_cbrt():
    r = evaluate("x^(1/3)", at={"x": -8.0})
    assert math.isnan(r.value)
    assert any("cbrt(x)" in w and "root(x, 3)" in w for w in r.warnings), r.warnings


# -- the grammar's tables ------------------------------------------------------------------------

def test_the_shipped_lalr_tables_match_the_grammar():
    out = subprocess.run([sys.executable, "-m", "gradcli.lalr_gen", "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
