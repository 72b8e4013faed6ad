"""Issue 15 class 5, the quadratic costs: many outputs, --mode forward, --explain of long calls,
and check on a tensor. Each test holds its cost by counting (nodes visited, evaluations, output
size), not by timing; the values are checked against hand-worked oracles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_runner import run

from gradcli import engine
from gradcli.result import run as evaluate
from gradcli.session import load


def _count(monkeypatch, module, name):
    """Wrap module.name so that its calls are counted; returns the counter (a list of one)."""
    calls = [0]
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, counted)
    return calls


# -- 1. many outputs: each reverse sweep visits only the nodes its output reaches ----------------

def test_many_outputs_sweep_only_what_each_output_reaches(monkeypatch):
    k = 300
    text = ", ".join(f"x*y + {n}" for n in range(k))
    s = load(text, ["x=3,y=5"])
    visited = [0]
    real = engine._backward_scalars

    def counting(tape, values, partials, flags, output, adj, order=None):
        order = list(range(output, -1, -1) if order is None else order)
        visited[0] += len(order)
        return real(tape, values, partials, flags, output, adj, order)
    monkeypatch.setattr(engine, "_backward_scalars", counting)
    r = evaluate(s.tape, s.point, None)
    # each output reaches x, y, x*y and itself (its literal carries no gradient): 4 nodes, not
    # the whole tape before it (the old sweep: ~k²·2 nodes)
    assert visited[0] == 4 * k
    assert r.jacobian[0] == {"x": 5.0, "y": 3.0}
    assert r.jacobian[-1] == {"x": 5.0, "y": 3.0}
    assert all(len(adj.got) == 4 for adj in r.adjoints)  # sparse: no dense list per output


def test_many_outputs_json_lists_every_output_with_zeros_where_unreached():
    out = run("eval", "x*y, x+y, 2*x", "--at", "x=3,y=5", "--json")
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["jacobian"] == [{"x": 5.0, "y": 3.0}, {"x": 1.0, "y": 1.0},
                               {"x": 2.0, "y": 0.0}]
    grads = {n["expr"]: n["grad"] for n in doc["nodes"]}
    assert grads["x*y"] == [1.0, 0.0, 0.0]  # only the first output uses x*y
    assert grads["x+y"] == [0.0, 1.0, 0.0]
    assert grads["2"] is None  # a literal carries no gradient


def test_many_outputs_over_the_sweep_budget_is_exit_2_naming_max_nodes():
    # 40 outputs, each reaching the same 30-node chain: 40·31 node visits, a 200-node tape
    chain = "q = x" + " * x" * 15
    text = chain + "\n" + ", ".join(f"q + {n}" for n in range(40))
    out = run("eval", text, "--at", "x=1.01", "--max-nodes", "300")
    assert out.exit_code == 2
    assert "--max-nodes" in out.stderr and "reverse sweeps" in out.stderr
    assert "Traceback" not in out.stderr
    ok = run("eval", text, "--at", "x=1.01", "--max-nodes", "0", "--json")
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["jacobian"][0]["x"] == pytest.approx(16 * 1.01 ** 15)


# -- 2. --mode forward: each tangent sweep visits only the nodes that depend on its variable ---

def test_forward_mode_sweeps_only_dependent_nodes(monkeypatch):
    calls = _count(monkeypatch, engine, "_jvp_node")
    s = load("v0*x + v1*x + v2*x", ["v0=1,v1=2,v2=3,x=7"])
    r = evaluate(s.tape, s.point, None, mode="forward")
    # depends on v0: v0*x, the two adds (3); v1: the same 3; v2: v2*x and the last add (2);
    # x: the three products and the two adds (5). The old sweeps visited every node each time.
    assert calls[0] == 3 + 3 + 2 + 5
    f = s.tape.outputs[0]
    assert [r.tangent(v, f) for v in ("v0", "v1", "v2", "x")] == [7.0, 7.0, 7.0, 6.0]
    assert r.tangent("v2", s.tape.variables["v0"]) is None  # v0 does not depend on v2


def test_forward_mode_json_is_unchanged_for_small_formulas():
    out = run("eval", "x*y+z", "--at", "x=1,y=2,z=3", "--mode", "forward", "--json")
    assert out.exit_code == 0
    nodes = json.loads(out.stdout)["nodes"]
    assert nodes[2]["tangent"] == {"x": 2.0, "y": 1.0, "z": None}
    assert nodes[4]["tangent"] == {"x": 2.0, "y": 1.0, "z": 1.0}


def test_forward_mode_table_caps_its_tangent_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    names = [f"v{k}" for k in range(20)]
    text = " + ".join(f"{n}*x" for n in names)
    at = ",".join(f"{n}=1" for n in names) + ",x=2"
    out = run("eval", text, "--at", at, "--mode", "forward")
    assert out.exit_code == 0
    assert out.stdout.count("tangent ∂·/∂") == 8
    # first use first: v0, x, v1 ... v6
    assert "∂·/∂x" in out.stdout and "∂·/∂v6" in out.stdout and "∂·/∂v7" not in out.stdout
    assert "tangents for 13 more --wrt variables are left out" in out.stdout


def test_forward_mode_over_the_sweep_budget_is_exit_2():
    names = [f"v{k}" for k in range(40)]
    text = " + ".join(f"{n}*x" for n in names)  # each v reaches ~40 adds: ~1600 visits
    at = ",".join(f"{n}=1" for n in names) + ",x=2"
    out = run("eval", text, "--at", at, "--mode", "forward", "--max-nodes", "500")
    assert out.exit_code == 2
    assert "--max-nodes" in out.stderr and "forward sweeps" in out.stderr


# -- 3. --explain / LaTeX of a long call: each step no longer writes the whole call -------------

def _explained(n: int, fmt: str) -> str:
    text = "max(" + ", ".join(f"x{k % 10}" for k in range(n)) + ")"
    at = ",".join(f"x{k}={k}" for k in range(10))
    args = ["--explain"] if fmt == "text" else ["--format", "latex"]
    out = run("eval", text, "--at", at, "--max-rows", "0", *args)
    assert out.exit_code == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("fmt", ["text", "latex"])
def test_explain_of_a_long_call_grows_linearly(fmt):
    small, big = _explained(200, fmt), _explained(800, fmt)
    # 4× the arguments: 4× the output (each use one term), not 16× (each term the whole call)
    assert len(big) < 5 * len(small)
    assert "795 more" in big  # max(x0, x1, x2, … 795 more …, x8, x9)


def test_explain_of_a_short_call_is_written_out():
    out = run("eval", "max(a, b, c)", "--at", "a=1,b=5,c=2", "--explain")
    assert "∂f/∂b = 1(b ≥ max(a, c)) = 1" in out.stdout.replace("F", "f")


# -- 4. check on a tensor: a sample of elements, and only the downstream nodes re-run -----------

def test_check_of_a_big_tensor_samples_its_elements(monkeypatch, tmp_path):
    w = np.random.default_rng(1).standard_normal((30, 30))
    np.save(tmp_path / "w.npy", w)
    evaluations = _count(monkeypatch, engine, "forward_again")
    full = _count(monkeypatch, engine, "forward")
    out = run("check", "sum(tanh(W)*W) + a*a", "--at", f"W=@{tmp_path / 'w.npy'},a=2",
              "--max-elements", "50", "--json")
    assert out.exit_code == 0, out.stderr
    assert "W: checked 50 of its 900 elements, a random sample" in out.stderr
    assert "--max-elements 0 checks every one" in out.stderr
    # a smooth function: 4 evaluations per element checked (plus a's one element), each one
    # re-running only the nodes downstream of the variable, never the whole forward pass
    assert evaluations[0] == 4 * (50 + 1)
    assert full[0] <= 3
    doc = json.loads(out.stdout)
    v = {x["name"]: x for x in doc["variables"]}
    assert v["W"]["ok"] and v["a"]["ok"]
    assert v["a"]["numeric"] == pytest.approx(4.0, rel=1e-6)
    numeric = np.array([[np.nan if x == "NaN" else x for x in row] for row in v["W"]["numeric"]])
    checked = ~np.isnan(numeric)
    assert checked.sum() == 50  # the rest were not checked, and say so (NaN)
    oracle = np.tanh(w) + w / np.cosh(w) ** 2  # d/dW sum(tanh(W)·W)
    assert numeric[checked] == pytest.approx(oracle[checked], rel=1e-6, abs=1e-6)


def test_check_max_elements_0_checks_every_element(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(12.0).reshape(3, 4) / 10)
    out = run("check", "sum(W*W*W)", "--at", f"W=@{tmp_path / 'w.npy'}", "--max-elements", "0")
    assert out.exit_code == 0
    assert "checked" not in out.stderr and "agrees" in out.stdout


def test_check_still_fails_a_wrong_rule_on_a_sample(monkeypatch, tmp_path):
    import dataclasses

    from gradcli import ops, parse

    np.save(tmp_path / "w.npy", np.random.default_rng(2).standard_normal((20, 20)))
    bad = dataclasses.replace(ops.OPS["tanh"], partials=lambda y, a: (1 - y,))  # not 1 - y²
    monkeypatch.setitem(ops.OPS, "tanh", bad)
    monkeypatch.setitem(parse._OP, "tanh", bad)
    out = run("check", "sum(tanh(W))", "--at", f"W=@{tmp_path / 'w.npy'}",
              "--max-elements", "30")
    assert out.exit_code == 1
    assert "checked 30 of its 400 elements" in out.stderr
