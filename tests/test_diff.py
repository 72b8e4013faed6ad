"""`gradcli diff`, `eval --hessian/--hvp`, `descend --method newton`, `check --hessian`:
the command line, through Typer's CliRunner, against hand-worked values and eval itself."""

from __future__ import annotations

import json
import time
from importlib import resources

import jsonschema
import pytest
from cli_runner import run

from gradcli import ops


def schema(name: str):
    path = resources.files("gradcli") / "schemas" / f"{name}.schema.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def test_diff_prints_the_derivative_as_a_formula():
    r = run("diff", "x^2*sin(x)")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "2*x*sin(x) + x^2*cos(x)\n"


@pytest.mark.parametrize("formula, at", [
    ("x^2*sin(x)", "x=1.3"),
    ("samples/neuron.grad", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"),
    ("q = x*y + exp(x/y); f = sigmoid(q)*tanh(q) - log(x^2 + 1)", "x=0.4,y=-1.7"),
    ("max(x, y)*relu(x - 1) + abs(y)^3 + atan2(y, x)", "x=2,y=-0.5"),
])
def test_round_trip_diff_then_eval_equals_evals_gradient(formula, at):
    truth = json.loads(run("eval", formula, "--at", at, "--json").stdout)["gradient"]
    doc = json.loads(run("diff", formula, "--json").stdout)
    schema("diff").validate(doc)
    for x, text in doc["derivatives"].items():
        got = json.loads(run("eval", text, "--at", at, "--json").stdout)["value"]
        assert got == pytest.approx(truth[x], rel=1e-12, abs=1e-14), (x, text)
    # the text output is a program too: its outputs are the gradient
    program = run("diff", formula).stdout
    values = json.loads(run("eval", program, "--at", at, "--json").stdout)["value"]
    values = values if isinstance(values, list) else [values]
    assert values == pytest.approx([truth[x] for x in doc["wrt"]], rel=1e-12)


def test_diff_order_2_and_values():
    r = run("diff", "x^2*y + y^3", "--order", "2", "--at", "x=1,y=2", "--json")
    doc = json.loads(r.stdout)
    schema("diff").validate(doc)
    assert doc["values"] == {"x": 4.0, "y": 13.0}
    assert doc["second_values"] == {"x": {"x": 4.0, "y": 2.0}, "y": {"x": 2.0, "y": 12.0}}
    assert doc["second"]["y"]["y"] == "6*y"


def test_diff_names_shared_subexpressions_and_writes_latex():
    r = run("diff", "s = sigmoid(w0*x0 + w1*x1 + w2); s", "--wrt", "w0,x0")
    assert r.stdout.splitlines()[0] == "s = sigmoid(w0*x0 + w1*x1 + w2)"
    r = run("diff", "samples/neuron.grad", "--wrt", "w0,x0", "--format", "latex")
    assert r.exit_code == 0
    assert r.stdout.startswith("\\begin{aligned}")
    assert "\\frac{\\partial f}{\\partial w_{0}}" in r.stdout


def test_matrix_forms_and_refusals():
    doc = json.loads(run("diff", "D = W @ X", "--json").stdout)
    assert doc["derivatives"] == {"W": "dD @ X.T", "X": "W.T @ dD"}
    r = run("diff", "sum(x*y)")
    assert r.exit_code == 2 and "sum has no derivative formula" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("diff", "x^2", "--order", "3")
    assert r.exit_code == 2 and "--order 3" in r.stderr
    r = run("diff", "x, y")
    assert r.exit_code == 2 and "one output" in r.stderr


def test_an_op_without_a_formula_is_refused_by_name(monkeypatch):
    from gradcli import parse

    monkeypatch.setitem(parse._OP, "sin", ops.replace(ops.OPS["sin"], formula_partials=None))
    r = run("diff", "x*sin(x)")
    assert r.exit_code == 2
    assert "sin has no derivative formula" in r.stderr


ROSENBROCK = "(1-x)^2 + 100*(y-x^2)^2"


def test_eval_hessian_and_hvp():
    r = run("eval", ROSENBROCK, "--at", "x=-1.2,y=1", "--hessian", "--hvp", "x=1,y=2", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    schema("eval").validate(doc)
    # by hand: f_xx = 2 - 400(y - 3x^2) = 1330, f_xy = -400x = 480, f_yy = 200
    assert doc["hessian"] == {"x": {"x": 1330.0, "y": 480.0}, "y": {"x": 480.0, "y": 200.0}}
    assert doc["hvp"] == pytest.approx({"x": 1330.0 + 960.0, "y": 480.0 + 400.0}, rel=1e-14)
    table = run("eval", ROSENBROCK, "--at", "x=-1.2,y=1", "--hessian")
    assert "Hessian" in table.stdout and "1330" in table.stdout
    bad = run("eval", ROSENBROCK, "--at", "x=-1.2,y=1", "--hvp", "z=1")
    assert bad.exit_code == 2 and "--hvp z" in bad.stderr


def test_descend_newton():
    r = run("descend", ROSENBROCK, "--at", "x=-1.2,y=1", "--method", "newton", "--steps", "30",
            "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    schema("descend").validate(doc)
    assert doc["optimizer"] == "newton"
    assert doc["final"]["params"]["x"] == pytest.approx(1, abs=1e-10)
    assert doc["final"]["params"]["y"] == pytest.approx(1, abs=1e-10)
    assert doc["final"]["step"] <= 30
    saddle = run("descend", "x^4 - 2*x^2 + y^2", "--at", "x=0.1,y=1", "--method", "newton")
    assert "not positive definite" in saddle.stderr


def test_check_hessian(monkeypatch):
    r = run("check", ROSENBROCK, "--at", "x=-1.2,y=1", "--hessian", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    schema("check").validate(doc)
    assert doc["hessian"]["ok"] and len(doc["hessian"]["entries"]) == 4
    # a wrong formula partial is caught: sin's slope written as cos(2a)
    from gradcli import parse

    wrong = ops.replace(ops.OPS["sin"], formula_partials=lambda b, y, a: (
        b.call("cos", b.mul(b.const(2.0), a)),))
    monkeypatch.setitem(parse._OP, "sin", wrong)
    r = run("check", "sin(x)*y", "--at", "x=0.7,y=2", "--hessian")
    assert r.exit_code == 1
    assert "DIFFERS" in r.stdout


@pytest.mark.slow
def test_a_100k_node_formula_diffs_in_linear_size():
    sizes = {}
    for n in (10_000, 100_000):
        terms = [f"sin(x*{k % 7 + 1} + y)*{k % 5 + 1}" for k in range(n // 6)]
        text = " + ".join(terms)
        start = time.perf_counter()
        r = run("diff", text, "--json")
        took = time.perf_counter() - start
        assert r.exit_code == 0, r.stderr
        sizes[n] = (len(text), len(r.stdout), took)
    (t1, o1, _), (t2, o2, _) = sizes[10_000], sizes[100_000]
    assert o2 / o1 < 1.3 * (t2 / t1)  # output grows like the input, not faster
