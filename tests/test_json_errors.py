"""With --json, an error is also a JSON document on stdout (error.schema.json), exit 2; every
schema says its schema_version and needs no document that is not shipped."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from cli_runner import run

from gradcli.session import MAX_FORMULA_BYTES


@pytest.fixture(scope="module")
def validator():
    path = resources.files("gradcli") / "schemas" / "error.schema.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


@pytest.mark.parametrize("args, kind, line, column", [
    (("eval", "sin(x", "--at", "x=1", "--json"), "syntax", 1, 6),
    (("eval", "x +\n* y", "--at", "x=1,y=2", "--json"), "syntax", 2, 1),
    (("eval", "[1,2] @ [1,2,3]", "--format", "json"), "shape", 1, 7),
    (("eval", "x + y", "--at", "x=1", "--json"), "input", None, None),
    (("check", "x*y", "--at", "x=1,y=oops", "--json"), "input", None, None),
    (("eval", "x", "--at", "x=1", "--bogus", "--json"), "usage", None, None),
    (("descend", "x^2", "--at", "x=1", "--steps", "-3", "--json"), "usage", None, None),
    (("descend", "x^2", "--compare", "sgd,adam", "--json"), "usage", None, None),
    (("eval", "x*x*x*x", "--at", "x=1", "--max-nodes", "3", "--json"), "limit", None, None),
])
def test_error_is_json_on_stdout_and_words_on_stderr(validator, args, kind, line, column):
    r = run(*args)
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert not list(validator.iter_errors(doc))
    err = doc["error"]
    assert doc["schema_version"] == 1 and err["kind"] == kind
    assert (err["line"], err["column"]) == (line, column)
    assert err["message"] and err["message"] in r.stderr
    assert "\n" not in err["message"]


def test_the_issue_example_column_is_where_the_caret_is():
    r = run("eval", "sin(x", "--at", "x=1", "--json")
    caret = r.stderr.splitlines()[2].index("^") - 2  # "  sin(x" / "       ^"
    assert json.loads(r.stdout)["error"]["column"] == caret + 1 == 6


def test_a_huge_formula_is_a_limit_error(tmp_path):
    big = tmp_path / "big.grad"
    big.write_bytes(b"x" * (MAX_FORMULA_BYTES + 1))
    r = run("eval", str(big), "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["kind"] == "limit"


def test_without_json_stdout_stays_empty():
    r = run("eval", "sin(x", "--at", "x=1")
    assert r.exit_code == 2 and r.stdout == "" and "syntax error" in r.stderr


def test_every_schema_has_schema_version_and_self_contained_descriptions():
    folder = resources.files("gradcli") / "schemas"
    names = [p.name for p in folder.iterdir() if p.name.endswith(".schema.json")]
    assert "error.schema.json" in names and "batch.schema.json" in names
    for name in names:
        text = (folder / name).read_text(encoding="utf-8")
        doc = json.loads(text)
        assert "schema_version" in doc["required"], name
        assert doc["properties"]["schema_version"]["const"] == 1, name
        for word in ("contract", "§", "issue", "design.md", "README"):
            assert word not in text, (name, word)


def test_batch_rows_carry_schema_version(tmp_path):
    points = tmp_path / "p.csv"
    points.write_text("x,y\n1,2\n3,4\n", encoding="utf-8")
    r = run("eval", "x*y", "--points", str(points), "--json")
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [(d["schema_version"], d["row"]) for d in rows] == [(1, 1), (1, 2)]
