"""Batch mode: `gradcli eval FORMULA --points data.csv`, one result per row, vectorised.

Oracles: the same formula evaluated row by row with gradcli.evaluate (the scalar path), and for the
long file a numpy computation of the sigmoid neuron's gradient written out by hand.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from gradcli import evaluate
from gradcli.batch import CsvPoints, run_batch
from gradcli.errors import InputError
from gradcli.parse import parse

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
NEURON = (SAMPLES / "neuron.grad").read_text(encoding="utf-8")
POINTS = SAMPLES / "points.csv"


def ok(*args: str, input: str | None = None):
    r = run(*args, input=input)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def fails(*args: str, input: str | None = None) -> str:
    r = run(*args, input=input)
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.startswith("gradcli: error:")
    return r.stderr


def _reject(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


def read_rows(path: Path) -> list[dict[str, float]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    names = [c.strip() for c in lines[0].split(",")]
    return [dict(zip(names, map(float, ln.split(",")))) for ln in lines[1:]]


def parse_csv_output(text: str) -> tuple[list[str], list[list[float]]]:
    lines = text.splitlines()
    return lines[0].split(","), [[float(c) for c in ln.split(",")] for ln in lines[1:]]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def same(a: float, b: float) -> bool:
    """Equal to 1e-14 relative, NaN equal to NaN, infinities exactly."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-14 * max(abs(a), abs(b)) + 1e-300


# -- CSV and JSON Lines against row-by-row evaluation ---------------------------------------------

def test_csv_output_equals_row_by_row_evaluate():
    r = ok("eval", str(SAMPLES / "neuron.grad"), "--points", str(POINTS))
    header, rows = parse_csv_output(r.stdout)
    points = read_rows(POINTS)
    assert len(rows) == len(points) == 5
    first = evaluate(NEURON, at=points[0])
    assert header == ["value"] + [f"d_{name}" for name in first.gradient]
    for got, at in zip(rows, points):
        expected = evaluate(NEURON, at=at)
        want = [expected.value] + list(expected.gradient.values())
        assert all(same(g, w) for g, w in zip(got, want)), (at, got, want)
        assert len(got) == len(want)
    # the CS231n point is the first row
    assert rows[0][0] == pytest.approx(0.7310585786300049, rel=1e-15)
    assert rows[0][1:] == pytest.approx([-0.19661193324148188, 0.39322386648296376,
                                         -0.39322386648296376, -0.5898357997244457,
                                         0.19661193324148188], rel=1e-14)


def test_json_lines_output_equals_row_by_row_evaluate():
    r = ok("eval", str(SAMPLES / "neuron.grad"), "--points", str(POINTS), "--json")
    lines = r.stdout.splitlines()
    points = read_rows(POINTS)
    assert len(lines) == len(points)
    for k, (line, at) in enumerate(zip(lines, points), start=1):
        doc = json.loads(line, parse_constant=_reject)
        assert set(doc) == {"schema_version", "row", "value", "gradient"}
        assert doc["row"] == k
        expected = evaluate(NEURON, at=at)
        assert list(doc["gradient"]) == list(expected.gradient)
        assert same(doc["value"], expected.value)
        for name, g in expected.gradient.items():
            assert same(doc["gradient"][name], g), (k, name)


def test_format_json_is_json_lines_too():
    a = ok("eval", str(SAMPLES / "neuron.grad"), "--points", str(POINTS), "--json").stdout
    b = ok("eval", str(SAMPLES / "neuron.grad"), "--points", str(POINTS), "-f", "json").stdout
    assert a == b


def test_wrt_limits_the_columns():
    r = ok("eval", str(SAMPLES / "neuron.grad"), "--points", str(POINTS), "--wrt", "w2,x0")
    header, rows = parse_csv_output(r.stdout)
    assert header == ["value", "d_w2", "d_x0"]
    for got, at in zip(rows, read_rows(POINTS)):
        expected = evaluate(NEURON, at=at, wrt=["w2", "x0"])
        assert got == pytest.approx([expected.value, expected.gradient["w2"],
                                     expected.gradient["x0"]], rel=1e-14)


def test_at_supplies_a_variable_the_file_lacks(tmp_path):
    rows = [(2, -1, -3, -2), (1, 1, 1, 1), (0.5, -0.5, 2, 0.25)]
    path = write(tmp_path, "p.csv", "w0,x0,w1,x1\n" + "".join(
        ",".join(map(str, row)) + "\n" for row in rows))
    r = ok("eval", str(SAMPLES / "neuron.grad"), "--points", path, "--at", "w2=-3")
    header, out = parse_csv_output(r.stdout)
    assert header == ["value", "d_w0", "d_x0", "d_w1", "d_x1", "d_w2"]
    d_w2 = []
    for got, row in zip(out, rows):
        at = dict(zip(["w0", "x0", "w1", "x1"], row), w2=-3.0)
        expected = evaluate(NEURON, at=at)
        assert got == pytest.approx([expected.value] + list(expected.gradient.values()),
                                    rel=1e-14)
        d_w2.append(got[-1])
    assert len(set(d_w2)) == 3  # each row its own gradient for the fixed variable


def test_batch_reads_the_formula_files_defaults(tmp_path):
    formula = write(tmp_path, "f.grad", "# at: b=10\na * x + b\n")
    points = write(tmp_path, "p.csv", "a,x\n2,3\n-1,4\n")
    header, rows = parse_csv_output(ok("eval", formula, "--points", points).stdout)
    assert header == ["value", "d_a", "d_x", "d_b"]
    assert rows == [[16.0, 3.0, 2.0, 1.0], [6.0, 4.0, -1.0, 1.0]]


def test_blank_lines_crlf_and_spaces_are_tolerated(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbfa , b\r\n1, 2\r\n\r\n3 ,4\r\n\r\n")
    header, rows = parse_csv_output(ok("eval", "a*b", "--points", str(path)).stdout)
    assert header == ["value", "d_a", "d_b"]
    assert rows == [[2.0, 2.0, 1.0], [12.0, 4.0, 3.0]]
    lines = ok("eval", "a*b", "--points", str(path), "--json").stdout.splitlines()
    assert [json.loads(ln)["row"] for ln in lines] == [1, 2]


def test_unused_column_is_a_warning_not_an_error(tmp_path):
    path = write(tmp_path, "p.csv", "a,zz\n1,2\n")
    r = ok("eval", "3*a", "--points", path)
    assert "zz" in r.stderr and "warning" in r.stderr
    assert parse_csv_output(r.stdout)[1] == [[3.0, 3.0]]


@pytest.mark.parametrize("formula", ["max(a, b)", "min(a, b)", "max(a)", "min(a)",
                                     "relu(a) + abs(b)"])
def test_kinked_functions_row_by_row(tmp_path, formula):
    """Each row is a point of its own: max(a) of one scalar is a, whatever the other rows hold."""
    points = [(1.0, 5.0), (2.0, -1.0), (3.0, 3.0), (0.0, 0.0), (-2.0, 7.0)]
    path = write(tmp_path, "p.csv", "a,b\n" + "".join(f"{a},{b}\n" for a, b in points))
    r = ok("eval", formula, "--points", path)
    header, rows = parse_csv_output(r.stdout)
    for got, (a, b) in zip(rows, points):
        expected = evaluate(formula, at={"a": a, "b": b} if "b" in formula else {"a": a})
        assert got == [expected.value] + list(expected.gradient.values()), (formula, a, b)


# -- chunks ---------------------------------------------------------------------------------------

def _batch(text: str, csv: str, fixed=None, rows: int | None = None):
    tape, _ = parse(text)
    wrt = list(tape.variables)
    points = CsvPoints("p.csv", io.StringIO(csv))
    kwargs = {} if rows is None else {"rows": rows}
    return list(run_batch(tape, points, fixed or {}, wrt, **kwargs)), wrt


def test_small_chunks_give_identical_results():
    csv = POINTS.read_text()
    whole, wrt = _batch(NEURON, csv)
    small, _ = _batch(NEURON, csv, rows=2)
    assert len(whole) == 1 and [len(c) for c in small] == [2, 2, 1]
    assert [c.first_line for c in small] == [2, 4, 6]
    np.testing.assert_array_equal(np.concatenate([c.value for c in small]), whole[0].value)
    for name in wrt:
        np.testing.assert_array_equal(np.concatenate([c.grads[name] for c in small]),
                                      whole[0].grads[name])
    # and they equal the scalar path
    for k, at in enumerate(read_rows(POINTS)):
        expected = evaluate(NEURON, at=at)
        assert same(float(whole[0].value[k]), expected.value)


def test_small_chunks_with_a_fixed_value():
    csv = "a\n1\n2\n3\n4\n5\n"
    chunks, _ = _batch("a * c", csv, fixed={"c": np.float64(3.0)}, rows=2)
    assert np.concatenate([c.value for c in chunks]).tolist() == [3.0, 6.0, 9.0, 12.0, 15.0]
    assert np.concatenate([c.grads["c"] for c in chunks]).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert np.concatenate([c.grads["a"] for c in chunks]).tolist() == [3.0] * 5


def test_bad_row_in_a_later_chunk_names_its_line():
    with pytest.raises(InputError) as info:
        _batch("a*b", "a,b\n1,2\n3,4\n\n5,6\n7,oops\n", rows=2)
    msg = info.value.message
    assert "line 6" in msg and "column b" in msg and "'oops'" in msg


def test_long_file_matches_numpy(tmp_path):
    """200 000 rows (four chunks, in a real process): every row against numpy."""
    n, period = 200_000, 19_997  # a period that no chunk boundary lines up with
    rng = np.random.default_rng(2024)
    base = rng.uniform(-3, 3, size=(period, 5))
    lines = [",".join(map(repr, row)) for row in base.tolist()]
    reps = -(-n // period)
    path, out_path = tmp_path / "big.csv", tmp_path / "out.csv"
    path.write_text("w0,x0,w1,x1,w2\n" + "\n".join((lines * reps)[:n]) + "\n")
    data = np.tile(base, (reps, 1))[:n]
    exe = shutil.which("gradcli")
    cmd = [exe] if exe else [sys.executable, "-m", "gradcli"]
    with open(out_path, "wb") as out_fh:
        p = subprocess.run(cmd + ["eval", "samples/neuron.grad", "--points", str(path)],
                           stdout=out_fh, stderr=subprocess.PIPE, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    header, body = out_path.read_text().split("\n", 1)
    assert header == "value,d_w0,d_x0,d_w1,d_x1,d_w2"
    cells = body.replace("\n", ",").split(",")
    assert cells[-1] == ""
    out = np.array(cells[:-1], dtype=np.float64).reshape(-1, 6)
    assert out.shape == (n, 6)
    w0, x0, w1, x1, w2 = data.T
    e = np.exp(-(w0 * x0 + w1 * x1 + w2))
    f = 1.0 / (1.0 + e)
    s = e / (1.0 + e) ** 2  # df/d(dot) = σ(1 - σ), written without cancellation
    expected = np.column_stack([f, s * x0, s * w0, s * x1, s * w1, s])
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0)


# -- errors ---------------------------------------------------------------------------------------

def test_bad_row_names_the_line_and_column(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\n1,2\n3,4\n5,x7\n")
    msg = fails("eval", "a*b", "--points", path)
    assert "line 4" in msg and "column b" in msg and "'x7'" in msg and "p.csv" in msg


def test_empty_cell_names_the_line_and_column(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\n1,\n")
    msg = fails("eval", "a*b", "--points", path)
    assert "line 2" in msg and "column b" in msg and "empty" in msg


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, "p.csv", text)
    msg = fails("eval", "a*b", "--points", path)
    assert "p.csv" in msg and "empty" in msg


def test_header_only_file(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\n")
    msg = fails("eval", "a*b", "--points", path)
    assert "p.csv" in msg and "no rows" in msg


def test_missing_column(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\n1,2\n")
    msg = fails("eval", "a*b*c", "--points", path)
    assert "p.csv" in msg and "no column for c" in msg


def test_too_many_and_too_few_cells(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\n1,2\n1,2,3\n")
    msg = fails("eval", "a*b", "--points", path)
    assert "line 3" in msg and "3 cells" in msg and "header has 2" in msg
    path = write(tmp_path, "q.csv", "a,b\n1,2\n4\n")
    msg = fails("eval", "a*b", "--points", path)
    assert "line 3" in msg and "1 cell" in msg and "header has 2" in msg


@pytest.mark.parametrize("header,what", [("a,1b", "'1b'"), ("a,a", "twice"), ("a,", "''")])
def test_bad_header(tmp_path, header, what):
    path = write(tmp_path, "p.csv", header + "\n1,2\n")
    msg = fails("eval", "a", "--points", path)
    assert "line 1" in msg and what in msg


def test_tensor_formula_is_refused(tmp_path):
    path = write(tmp_path, "p.csv", "a\n1\n")
    msg = fails("eval", "sum(a)", "--points", path)
    assert "batch" in msg and "sum" in msg
    msg = fails("eval", "a * [1, 2]", "--points", path)
    assert "batch" in msg


def test_several_outputs_get_a_column_each(tmp_path):
    """Several outputs are no longer refused (issue 13): f1, d_f1_a, ..., against evaluate."""
    path = write(tmp_path, "p.csv", "a,b\n1,2\n-3,0.5\n")
    header, rows = parse_csv_output(ok("eval", "a*b, a+b", "--points", path).stdout)
    assert header == ["f1", "d_f1_a", "d_f1_b", "f2", "d_f2_a", "d_f2_b"]
    for got, (a, b) in zip(rows, [(1, 2), (-3, 0.5)]):
        r = evaluate("a*b, a+b", at={"a": a, "b": b})
        assert got == [r.value[0], *r.jacobian[0].values(), r.value[1], *r.jacobian[1].values()]


def test_tensor_at_value_is_refused(tmp_path):
    path = write(tmp_path, "p.csv", "a\n1\n")
    msg = fails("eval", "a*c", "--points", path, "--at", "c=[1,2]")
    assert "c" in msg and "(2,)" in msg


def test_missing_points_file(tmp_path):
    msg = fails("eval", "a", "--points", str(tmp_path / "nope.csv"))
    assert "nope.csv" in msg


# -- CSV is numbers only --------------------------------------------------------------------------

def test_csv_cells_are_numbers_only(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\n1,2\n0,5\n-1,3\n1e308,10\n2,0\n")
    r = ok("eval", "log(a) * b + b / a", "--points", path)
    lines = r.stdout.splitlines()
    assert lines[0] == "value,d_a,d_b"
    cells = [c for ln in lines[1:] for c in ln.split(",")]
    assert len(cells) == 5 * 3
    assert any(c in ("NaN", "Infinity", "-Infinity") for c in cells)
    for cell in cells:
        float(cell)  # every cell is a number Python (and spreadsheets) read as one
        assert cell == cell.strip() and cell[0] not in "=+@\t\r", cell
        assert cell in ("NaN", "Infinity", "-Infinity") or math.isfinite(float(cell)), cell
    for cell in lines[0].split(","):
        assert cell[0] not in "=+-@", cell


def test_json_lines_nonfinite_are_strings(tmp_path):
    path = write(tmp_path, "p.csv", "a\n0\n-1\n")
    r = ok("eval", "log(a)", "--points", path, "--json")
    docs = [json.loads(ln, parse_constant=_reject) for ln in r.stdout.splitlines()]
    assert docs[0]["value"] == "-Infinity" and docs[0]["gradient"]["a"] == "Infinity"
    assert docs[1]["value"] == "NaN" and docs[1]["gradient"]["a"] == "NaN"


# -- stdin ----------------------------------------------------------------------------------------

def test_points_from_stdin():
    csv = POINTS.read_text()
    a = ok("eval", str(SAMPLES / "neuron.grad"), "--points", "-", input=csv).stdout
    b = ok("eval", str(SAMPLES / "neuron.grad"), "--points", str(POINTS)).stdout
    assert a == b and a.count("\n") == 6


def test_points_from_stdin_in_a_real_process():
    exe = shutil.which("gradcli")
    cmd = [exe] if exe else [sys.executable, "-m", "gradcli"]
    p = subprocess.run(cmd + ["eval", "samples/neuron.grad", "--points", "-", "--json"],
                       input=POINTS.read_bytes(), capture_output=True, cwd=ROOT, timeout=120,
                       env={**os.environ, "NO_COLOR": "1"})
    assert p.returncode == 0, p.stderr
    docs = [json.loads(ln, parse_constant=_reject) for ln in p.stdout.decode().splitlines()]
    assert [d["row"] for d in docs] == [1, 2, 3, 4, 5]
    for doc, at in zip(docs, read_rows(POINTS)):
        assert same(doc["value"], evaluate(NEURON, at=at).value)


def test_bad_stdin_row_exits_2_in_a_real_process():
    exe = shutil.which("gradcli")
    cmd = [exe] if exe else [sys.executable, "-m", "gradcli"]
    p = subprocess.run(cmd + ["eval", "a*b", "--points", "-"], input=b"a,b\n1,2\n3,=cmd()\n",
                       capture_output=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert "line 3" in err and "column b" in err and "Traceback" not in err
