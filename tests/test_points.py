"""Points given with `--at`: vector and matrix literals, files (.npy, .csv, .json, @point.json,
@point.npz), random draws with --seed, `# at:` defaults in formula files, and clear errors.

Through gradcli.points.parse_at directly, the CLI in-process (CliRunner) and, for the commands the
issue names, the installed program in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from gradcli import evaluate
from gradcli.errors import InputError
from gradcli.points import parse_at

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def _reject(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


def eval_json(*args: str) -> tuple[dict, str]:
    r = run("eval", *args, "--json")
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout, parse_constant=_reject), r.stderr


def fails(*args: str) -> str:
    """Run eval, expect exit 2 with a message on stderr and nothing on stdout; the message."""
    r = run("eval", *args)
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr and r.stderr.startswith("gradcli: error:")
    return r.stderr


def input_error(*specs: str, seed: int | None = 0) -> str:
    with pytest.raises(InputError) as info:
        parse_at(list(specs), seed=seed)
    return info.value.message


def gradcli_cmd() -> list[str]:
    exe = shutil.which("gradcli")
    return [exe] if exe else [sys.executable, "-m", "gradcli"]


def sub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(gradcli_cmd() + list(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={**os.environ, "NO_COLOR": "1"})


# -- literals -------------------------------------------------------------------------------------

def test_vector_literal():
    at = parse_at(["w=[2,-3,-3]"])
    assert at["w"].dtype == np.float64 and at["w"].shape == (3,)
    assert at["w"].tolist() == [2.0, -3.0, -3.0]


def test_matrix_literal():
    at = parse_at(["W=[[1,2],[3,4]]"])
    assert at["W"].shape == (2, 2)
    assert at["W"].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_fractions_constants_and_exponents_inside_literals():
    w = parse_at(["w=[1/3, pi, -e, 2.5e-1, -1/4, .5]"])["w"]
    assert w.tolist() == [1 / 3, math.pi, -math.e, 0.25, -0.25, 0.5]
    W = parse_at(["W=[[ 1/2 , -pi ],[ 3 , 4e0 ]]"])["W"]
    assert W.tolist() == [[0.5, -math.pi], [3.0, 4.0]]


def test_literals_mixed_with_scalars_in_one_flag():
    at = parse_at(["x=4,W=[[1,2],[3,4]],w=[2,-3,-3],y=-1/2"])
    assert set(at) == {"x", "W", "w", "y"}
    assert at["x"] == 4.0 and at["y"] == -0.5
    assert at["W"].shape == (2, 2) and at["w"].shape == (3,)


def test_cli_vector_and_matrix_values_reach_the_formula():
    doc, _ = eval_json("W @ w", "--at", "W=[[1,2],[3,4]]", "--at", "w=[2,-3]")
    assert doc["at"] == {"W": [[1.0, 2.0], [3.0, 4.0]], "w": [2.0, -3.0]}
    assert doc["value"] == [2 - 6, 6 - 12]
    assert doc["gradient"] == {"W": [[2.0, -3.0], [2.0, -3.0]], "w": [4.0, 6.0]}


# -- files ----------------------------------------------------------------------------------------

def test_npy_file(tmp_path):
    W = np.arange(6.0).reshape(2, 3) - 2.5
    np.save(tmp_path / "w.npy", W)
    at = parse_at([f"W=@{tmp_path / 'w.npy'}"])
    np.testing.assert_array_equal(at["W"], W)
    np.save(tmp_path / "i.npy", np.array([1, 2, 3], dtype=np.int32))  # ints become float64
    v = parse_at([f"v=@{tmp_path / 'i.npy'}"])["v"]
    assert v.dtype == np.float64 and v.tolist() == [1.0, 2.0, 3.0]


def test_csv_file_is_a_matrix(tmp_path):
    (tmp_path / "w.csv").write_text("1,2,3\n4, 5.5 ,-6\n")
    W = parse_at([f"W=@{tmp_path / 'w.csv'}"])["W"]
    assert W.shape == (2, 3)
    assert W.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.5, -6.0]]


@pytest.mark.parametrize("text", ["1,2,3\n", "1\n2\n3\n", "1,2,3"])
def test_csv_single_row_or_column_is_a_vector(tmp_path, text):
    (tmp_path / "v.csv").write_text(text)
    v = parse_at([f"v=@{tmp_path / 'v.csv'}"])["v"]
    assert v.shape == (3,) and v.tolist() == [1.0, 2.0, 3.0]


def test_csv_file_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "w.csv").write_text("1,2\n3,4\n")
    monkeypatch.chdir(tmp_path)
    doc, _ = eval_json("sum(W)", "--at", "W=@w.csv")
    assert doc["at"]["W"] == [[1.0, 2.0], [3.0, 4.0]]
    assert doc["value"] == 10.0


def test_json_file_value(tmp_path):
    (tmp_path / "w.json").write_text("[[1, 2.5], [-3, 4e-1]]")
    W = parse_at([f"W=@{tmp_path / 'w.json'}"])["W"]
    assert W.shape == (2, 2) and W.tolist() == [[1.0, 2.5], [-3.0, 0.4]]
    (tmp_path / "x.json").write_text("3.5")
    assert parse_at([f"x=@{tmp_path / 'x.json'}"])["x"] == 3.5


def test_point_json_mapping(tmp_path):
    path = tmp_path / "point.json"
    path.write_text(json.dumps({"x": 1, "w": [2, -3], "W": [[1, 0], [0, 1]], "b": "1/4"}))
    at = parse_at([f"@{path}"])
    assert at["x"] == 1.0 and at["b"] == 0.25
    assert at["w"].tolist() == [2.0, -3.0] and at["W"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # together with other values, in one flag or several
    at = parse_at([f"@{path},y=7"])
    assert at["y"] == 7.0 and at["x"] == 1.0
    doc, _ = eval_json("x * sum(W @ w) + y", "--at", f"@{path}", "--at", "y=2")
    assert doc["value"] == 1.0 * (2 - 3) + 2


def test_point_npz_mapping(tmp_path):
    path = tmp_path / "point.npz"
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.savez(path, W=W, x=np.array([1.0, -1.0]), s=np.float64(2.0))
    at = parse_at([f"@{path}"])
    np.testing.assert_array_equal(at["W"], W)
    assert at["x"].tolist() == [1.0, -1.0] and at["s"] == 2.0
    doc, _ = eval_json("s * sum(W @ x)", "--at", f"@{path}")
    assert doc["value"] == 2.0 * ((1 - 2) + (3 - 4))
    assert doc["gradient"]["W"] == [[2.0, -2.0], [2.0, -2.0]]


def test_point_mapping_and_flag_giving_one_name_twice_is_an_error(tmp_path):
    path = tmp_path / "point.json"
    path.write_text('{"x": 1}')
    assert "x" in input_error(f"@{path}", "x=2")


# -- random draws ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,shape", [("randn(5,10)", (5, 10)), ("randn(3)", (3,)),
                                        ("rand(2, 3)", (2, 3)), ("zeros(4)", (4,)),
                                        ("ones(2,2)", (2, 2)), ("zeros(1, 3)", (1, 3))])
def test_draw_shapes(spec, shape):
    W = parse_at([f"W={spec}"], seed=1)["W"]
    assert W.shape == shape and W.dtype == np.float64


def test_draw_contents():
    at = parse_at(["Z=zeros(2,3),O=ones(3),U=rand(1000),N=randn(1000)"], seed=5)
    assert (at["Z"] == 0).all() and (at["O"] == 1).all()
    assert ((at["U"] >= 0) & (at["U"] < 1)).all() and len(set(at["U"].tolist())) == 1000
    assert 0.4 < at["U"].mean() < 0.6
    assert -0.2 < at["N"].mean() < 0.2 and 0.8 < at["N"].std() < 1.2
    assert (at["N"] < 0).any() and (at["N"] > 0).any()


def test_draws_in_one_command_are_independent():
    at = parse_at(["A=randn(3),B=randn(3)"], seed=0)
    assert at["A"].tolist() != at["B"].tolist()


def test_seed_repeats_the_draws():
    a = parse_at(["W=randn(3,4),u=rand(5)"], seed=42)
    b = parse_at(["W=randn(3,4),u=rand(5)"], seed=42)
    c = parse_at(["W=randn(3,4),u=rand(5)"], seed=43)
    np.testing.assert_array_equal(a["W"], b["W"])
    np.testing.assert_array_equal(a["u"], b["u"])
    assert not np.array_equal(a["W"], c["W"]) and not np.array_equal(a["u"], c["u"])


def test_cli_seed_reproducible_and_different_seeds_differ():
    args = ("sum(W @ x)", "--at", "W=randn(3,4),x=randn(4)")
    a, err_a = eval_json(*args, "--seed", "7")
    b, _ = eval_json(*args, "--seed", "7")
    c, _ = eval_json(*args, "--seed", "8")
    assert a["at"] == b["at"] and a["value"] == b["value"]
    assert a["at"]["W"] != c["at"]["W"] and a["at"]["x"] != c["at"]["x"]
    assert "seed" not in err_a  # with --seed, no reminder
    W, x = np.array(a["at"]["W"]), np.array(a["at"]["x"])
    assert a["value"] == pytest.approx(float(np.sum(W @ x)), rel=1e-12)


def test_cli_without_seed_warns_with_the_seed_that_repeats_the_draw():
    args = ("sum(W)", "--at", "W=randn(2,3)")
    first, err = eval_json(*args)
    m = re.search(r"--seed (\d+)", err)
    assert m, err
    assert any(f"--seed {m.group(1)}" in w for w in first["warnings"])
    again, err2 = eval_json(*args, "--seed", m.group(1))
    assert again["at"] == first["at"]
    assert "--seed" not in err2


def test_no_seed_warning_without_random_draws():
    _, err = eval_json("sum(W)", "--at", "W=ones(2,3)")
    assert err == ""


# -- `# at:` defaults in formula files ------------------------------------------------------------

def test_defaults_in_a_formula_file_and_their_override(tmp_path):
    path = tmp_path / "f.grad"
    path.write_text("# at: x=2, w=[1,2]\n# a comment\n#at: b=1/2\nsum(w*x) + b\n")
    doc, _ = eval_json(str(path))
    assert doc["at"] == {"x": 2.0, "w": [1.0, 2.0], "b": 0.5}
    assert doc["value"] == 6.5
    doc, _ = eval_json(str(path), "--at", "x=5")
    assert doc["at"] == {"x": 5.0, "w": [1.0, 2.0], "b": 0.5}
    assert doc["value"] == 15.5
    assert doc["gradient"] == {"w": [5.0, 5.0], "x": 3.0, "b": 1.0}
    doc, _ = eval_json(str(path), "--at", "w=[[1],[2]],b=0")  # a different shape too
    assert doc["at"] == {"x": 2.0, "w": [[1.0], [2.0]], "b": 0.0}
    assert doc["value"] == 6.0
    assert doc["gradient"]["w"] == [[2.0], [2.0]]


def test_sample_matmul_defaults_draw_the_documented_shapes():
    doc, _ = eval_json(str(SAMPLES / "matmul.grad"), "--seed", "0")
    shapes = {k: np.shape(v) for k, v in doc["at"].items()}
    assert shapes == {"W": (5, 10), "X": (10, 3), "dD": (5, 3)}
    over, _ = eval_json(str(SAMPLES / "matmul.grad"), "--seed", "0", "--at", "W=ones(5,10)")
    assert over["at"]["W"] == [[1.0] * 10] * 5
    assert over["at"]["X"] == doc["at"]["X"]


def test_bad_default_line_is_reported_as_such(tmp_path):
    path = tmp_path / "g.grad"
    path.write_text("# at: x=[1,\nx\n")
    msg = fails(str(path))
    assert "# at:" in msg and "unbalanced" in msg


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,words", [
    ("w=[[1,2],[3]]", ["different lengths"]),
    ("w=[[1,2],3]", ["different lengths"]),
    ("w=[1,2", ["unbalanced"]),
    ("w=[1,2]]", ["unbalanced"]),
    ("w=[[1,2]", ["unbalanced"]),
    ("w=[]", ["empty"]),
    ("w=[[]]", ["empty"]),
    ("w=[1,a]", ["'a'", "not a number"]),
    ("w=[1 2]", ["not a number"]),
    ("w=[1,2]x", ["after"]),
    ("w=", ["no value"]),
    ("w=randn(2,x)", ["not a number"]),
    ("w=hello", ["'hello'", "not a number"]),
    ("1w=3", ["not a variable name"]),
])
def test_malformed_values_are_input_errors(spec, words):
    msg = input_error(spec)
    assert spec.split("=")[0] in msg
    for word in words:
        assert word in msg, (spec, msg)


def test_an_empty_element_is_not_silently_dropped():
    """`[1,,2]` has a hole: reading it as the 2-vector [1, 2] would hide a typo."""
    msg = input_error("w=[1,,2]")
    assert "w" in msg


@pytest.mark.parametrize("spec", ["w=[[1,2],[3]]", "w=[1,2", "w=[]", "w=[1,a]"])
def test_cli_malformed_values_exit_2(spec):
    msg = fails("sum(w)", "--at", spec)
    assert "w=" in msg


def test_missing_files(tmp_path):
    for spec in (f"w=@{tmp_path / 'nope.npy'}", f"w=@{tmp_path / 'nope.csv'}",
                 f"@{tmp_path / 'nope.json'}", f"@{tmp_path / 'nope.npz'}"):
        msg = input_error(spec)
        assert "nope" in msg and "no such file" in msg


def test_json_mapping_file_that_is_not_an_object(tmp_path):
    for text in ("[1, 2]", "3", '"x"'):
        (tmp_path / "p.json").write_text(text)
        msg = input_error(f"@{tmp_path / 'p.json'}")
        assert "p.json" in msg and "object" in msg


def test_broken_json_file(tmp_path):
    (tmp_path / "p.json").write_text('{"x": ')
    msg = input_error(f"@{tmp_path / 'p.json'}")
    assert "p.json" in msg and "cannot read" in msg


def test_point_json_with_bad_names_or_values(tmp_path):
    (tmp_path / "p.json").write_text('{"1x": 3}')
    msg = input_error(f"@{tmp_path / 'p.json'}")  # by position: a file's text is never quoted
    assert "name number 1" in msg and "1x" not in msg
    (tmp_path / "p.json").write_text('{"w": [[1, 2], [3]]}')
    msg = input_error(f"@{tmp_path / 'p.json'}")
    assert "p.json" in msg and "w" in msg and "rectangular" in msg
    (tmp_path / "p.json").write_text('{"w": {"a": 1}}')
    assert "p.json" in input_error(f"@{tmp_path / 'p.json'}")


def test_ragged_and_empty_csv_files(tmp_path):
    (tmp_path / "r.csv").write_text("1,2\n3\n")
    msg = input_error(f"W=@{tmp_path / 'r.csv'}")
    assert "r.csv" in msg and "rectangular" in msg
    (tmp_path / "e.csv").write_text("\n\n")
    msg = input_error(f"W=@{tmp_path / 'e.csv'}")
    assert "e.csv" in msg and "no numbers" in msg


def test_non_numeric_csv_cell_names_the_file_and_the_cell(tmp_path):
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    msg = input_error(f"W=@{tmp_path / 'bad.csv'}")
    assert "row 2, column 2" in msg and "not a number" in msg  # where, never what (issue 15)
    assert "bad.csv" in msg and "'x'" not in msg, msg


def test_ragged_json_value_file(tmp_path):
    (tmp_path / "w.json").write_text("[[1, 2], [3]]")
    msg = input_error(f"W=@{tmp_path / 'w.json'}")
    assert "w.json" in msg


def test_missing_value_names_the_variable():
    msg = fails("W @ x", "--at", "W=[[1,2],[3,4]]")
    assert "x" in msg and "--at" in msg


# -- the issue's commands, in a real process ------------------------------------------------------

def test_issue_shape_mismatch_command_exits_2_naming_both_shapes():
    p = sub("eval", "W @ x", "--at", "W=[[1,2],[3,4]],x=[1,2,3]")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "(2, 2)" in p.stderr and "(3,)" in p.stderr and "@" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


@pytest.mark.parametrize("sample", ["matmul.grad", "two_layer.grad"])
def test_issue_sample_commands_succeed(sample):
    p = sub("eval", f"samples/{sample}", "--seed", "0")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and p.stdout.strip()


@pytest.mark.parametrize("sample,shapes", [
    ("matmul.grad", {"W": (5, 10), "X": (10, 3), "dD": (5, 3)}),
    ("two_layer.grad", {"I": (4, 3), "W1": (3, 5), "W2": (5, 2), "E": (4, 2)}),
])
def test_sample_gradients_have_the_inputs_shapes(sample, shapes):
    doc, _ = eval_json(str(SAMPLES / sample), "--seed", "0")
    assert {k: np.shape(v) for k, v in doc["at"].items()} == shapes
    assert {k: np.shape(v) for k, v in doc["gradient"].items()} == shapes
    if sample == "matmul.grad":
        W, X, dD = (np.array(doc["at"][k]) for k in ("W", "X", "dD"))
        np.testing.assert_allclose(doc["gradient"]["W"], dD @ X.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(doc["gradient"]["X"], W.T @ dD, rtol=1e-12, atol=1e-12)


def test_issue_net_json_command():
    p = sub("eval", "sum((sigmoid(X @ W1) @ W2 - Y)^2)", "--at", "@samples/net.json", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout, parse_constant=_reject)
    net = json.loads((SAMPLES / "net.json").read_text())
    assert set(doc["gradient"]) == set(net)
    for name, value in net.items():
        assert np.shape(doc["gradient"][name]) == np.shape(value), name
        assert doc["at"][name] == value
    expected = evaluate("sum((sigmoid(X @ W1) @ W2 - Y)^2)", at=net)
    assert doc["value"] == expected.value
