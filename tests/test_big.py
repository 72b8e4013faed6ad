"""Any depth and size (contract §5): 10^5-deep nesting and 10^6-node formulas.

Marked slow (about 30 s together on two cores); they still run in CI. Each expected value is
computed independently of gradcli (closed forms, or numpy over the generated terms).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradcli import evaluate

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEPTH = 100_000


def _reject_constant(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


def gradcli_cmd() -> list[str]:
    exe = shutil.which("gradcli")
    return [exe] if exe else [sys.executable, "-m", "gradcli"]


def run_cli(args: list[str], stdin: str, timeout: float = 120) -> tuple[dict | None, str, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    p = subprocess.run(gradcli_cmd() + args, input=stdin.encode("utf-8"), capture_output=True,
                       env=env, cwd=ROOT, timeout=timeout)
    err = p.stderr.decode("utf-8")
    assert "Traceback" not in err, err[-2000:]
    doc = None
    if p.returncode == 0 and "--json" in args:
        doc = json.loads(p.stdout, parse_constant=_reject_constant)
    return doc, err, p.returncode


# -- deep nesting through the real program (stdin) --------------------------------------------

def test_100k_nested_parentheses_cli():
    text = "(" * DEPTH + "x" + ")" * DEPTH
    doc, err, code = run_cli(["eval", "-", "--at", "x=3", "--json"], text)
    assert code == 0, err
    assert doc["value"] == 3.0
    assert doc["gradient"] == {"x": 1.0}


def test_100k_unary_minuses_cli():
    text = "-" * DEPTH + "x"  # an even number of minus signs: x itself
    doc, err, code = run_cli(["eval", "-", "--at", "x=3", "--json"], text)
    assert code == 0, err
    assert doc["value"] == 3.0
    assert doc["gradient"] == {"x": 1.0}
    doc, err, code = run_cli(["eval", "-", "--at", "x=3", "--json"], "-" * (DEPTH - 1) + "x")
    assert code == 0, err
    assert doc["value"] == -3.0 and doc["gradient"] == {"x": -1.0}


def test_100k_nested_parentheses_table_is_short():
    text = "(" * DEPTH + "x" + ")" * DEPTH
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    p = subprocess.run(gradcli_cmd() + ["eval", "-", "--at", "x=3"], input=text.encode(),
                       capture_output=True, env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert b"Traceback" not in p.stderr
    # The echo and the node labels are cut: the output does not repeat the 200 000 parentheses.
    assert len(p.stdout) < 50_000


def test_syntax_error_deep_inside_100k_parentheses():
    text = "(" * DEPTH + "x +* 1" + ")" * DEPTH
    _, err, code = run_cli(["eval", "-", "--at", "x=3"], text)
    assert code == 2
    assert "'*'" in err
    assert len(err) < 2000, "the echoed line is cut to a window around the caret"


# -- a 10^5-deep right-nested chain through the API -------------------------------------------

def test_100k_right_nested_sum():
    text = "x + (" * (DEPTH - 1) + "x" + ")" * (DEPTH - 1)
    r = evaluate(text, at={"x": 0.5})
    assert r.value == pytest.approx(0.5 * DEPTH, rel=1e-12)
    assert r.gradient["x"] == DEPTH


def test_100k_nested_function_chain():
    n = DEPTH
    text = "tanh(" * n + "x" + ")" * n
    r = evaluate(text, at={"x": 0.7})
    # Independently: v_k = tanh(v_{k-1}), dv_n/dx = prod(1 - v_k^2).
    v, g = 0.7, 1.0
    for _ in range(n):
        v = math.tanh(v)
        g *= 1.0 - v * v
    assert r.value == pytest.approx(v, rel=1e-9)
    assert r.gradient["x"] == pytest.approx(g, rel=1e-6, abs=1e-300)
    assert len(r.nodes) == n + 1


def test_100k_right_nested_power_of_products():
    # x * (y * (x * (y * ...))): right-nested, alternating; value x^a y^b, exact at 1 and -1.
    n = DEPTH
    text = "".join("x * (" if k % 2 == 0 else "y * (" for k in range(n - 1)) + "x" + ")" * (n - 1)
    r = evaluate(text, at={"x": 1.0, "y": -1.0})
    nx, ny = text.count("x"), text.count("y")
    assert nx + ny == n and ny % 2 == 1
    assert r.value == (-1.0) ** ny
    assert r.gradient["x"] == nx * (-1.0) ** ny
    assert r.gradient["y"] == ny * (-1.0) ** (ny - 1)


# -- a 10^6-node formula through the API ------------------------------------------------------

def test_million_node_sum_of_products():
    rng = np.random.default_rng(20240611)
    terms, nvars = 250_000, 100
    i = rng.integers(0, nvars, terms)
    j = rng.integers(0, nvars, terms)
    c = rng.integers(1, 10, terms)
    x = (np.arange(nvars) % 7 - 3) / 4.0
    text = "+".join(f"{a}*x{b}*x{d}" for a, b, d in zip(c.tolist(), i.tolist(), j.tolist()))

    start = time.perf_counter()
    r = evaluate(text, at={f"x{k}": float(x[k]) for k in range(nvars)})
    elapsed = time.perf_counter() - start

    # 100 variables + per term: const, 2 muls, 1 add (none before the first term).
    assert len(r.nodes) == nvars + 4 * terms - 1 >= 1_000_000
    # Expected, by counting coefficients: f = sum c x_i x_j, so
    # df/dx_k = sum c (x_j [i=k] + x_i [j=k]).
    value = float(np.sum(c * x[i] * x[j]))
    grad = np.zeros(nvars)
    np.add.at(grad, i, c * x[j])
    np.add.at(grad, j, c * x[i])
    assert r.value == pytest.approx(value, rel=1e-12, abs=1e-9)
    got = np.array([r.gradient[f"x{k}"] for k in range(nvars)])
    np.testing.assert_allclose(got, grad, rtol=1e-12, atol=1e-9)
    out = r.nodes[-1]
    assert out.grad == 1.0 and out.op == "add"
    assert elapsed < 120, f"{elapsed:.1f}s for a 10^6-node formula"


# -- the 'billion laughs' staged program ------------------------------------------------------

def _laughs(n: int = 60) -> str:
    return "a1 = x*x; " + "; ".join(f"a{k} = a{k - 1}*a{k - 1}" for k in range(2, n + 1))


def test_billion_laughs_finite():
    # a60 = x^(2^60): at x = 1 the value is 1 and the gradient 2^60, exactly.
    start = time.perf_counter()
    doc, err, code = run_cli(["eval", "-", "--at", "x=1", "--json"], _laughs())
    assert code == 0, err
    assert doc["value"] == 1.0
    assert doc["gradient"] == {"x": float(2 ** 60)}
    assert len(doc["nodes"]) == 61
    assert max(len(n["expr"]) for n in doc["nodes"]) < 100  # node texts are not expanded
    assert time.perf_counter() - start < 30


def test_billion_laughs_overflows_to_infinity_with_a_warning():
    doc, err, code = run_cli(["eval", "-", "--at", "x=2", "--json"], _laughs())
    assert code == 0, err
    assert doc["value"] == "Infinity"
    assert doc["gradient"]["x"] in ("Infinity", "NaN")
    assert doc["warnings"] and "warning" in err


@pytest.mark.parametrize("fmt", ["table", "tree"])
def test_billion_laughs_table_and_tree_stay_linear(fmt):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    start = time.perf_counter()
    p = subprocess.run(gradcli_cmd() + ["eval", "-", "--at", "x=1", "--format", fmt],
                       input=_laughs().encode(), capture_output=True, env=env, cwd=ROOT,
                       timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(p.stdout) < 100_000  # a shared subgraph is shown once, not 2^60 times
    assert b"a60" in p.stdout
    assert time.perf_counter() - start < 30
