"""The published JSON Schema for `gradcli eval --json`, validated against real output."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from cli_runner import runner

from gradcli import evaluate
from gradcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def _reject_constant(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


@pytest.fixture(scope="module")
def schema() -> dict:
    path = resources.files("gradcli") / "schemas" / "eval.schema.json"
    assert path.is_file(), "the schema ships inside the package"
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


@pytest.fixture(scope="module")
def validator(schema) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def cli_json(*args: str, input: str | None = None) -> dict:
    r = runner.invoke(app, ["eval", *args, "--json"], input=input)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return json.loads(r.stdout, parse_constant=_reject_constant)


def assert_valid(validator, doc) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def assert_invalid(validator, doc) -> None:
    assert not validator.is_valid(doc), "the schema should reject this document"


def test_schema_is_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["node"]["additionalProperties"] is False


CASES = [
    pytest.param(["(x+y)*z", "--at", "x=-2,y=5,z=-4"], None, id="single"),
    pytest.param(["2*x + y, y - x", "--at", "x=1,y=2"], None, id="several-outputs"),
    pytest.param(["x*y, x+y, x-y", "--at", "x=1,y=2", "--wrt", "y"], None, id="three-outputs-wrt"),
    pytest.param(["log(x)", "--at", "x=0"], None, id="nonfinite-log"),
    pytest.param(["x/x + sqrt(y)", "--at", "x=0,y=-1"], None, id="nonfinite-nan"),
    pytest.param(["1/x, log(x)", "--at", "x=0"], None, id="nonfinite-several"),
    pytest.param(["q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4"], None, id="staged-names"),
    pytest.param(["a = x; b = a; c = b * y", "--at", "x=2,y=3"], None, id="staged-aliases"),
    pytest.param(["(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "x"], None, id="wrt"),
    pytest.param(["θ*η + pi", "--at", "θ=2,η=3"], None, id="unicode"),
    pytest.param(["2+3"], None, id="constants-only"),
    pytest.param(["x", "--at", "x=1,unused=2"], None, id="warning"),
    pytest.param(["-", "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"],
                 (SAMPLES / "neuron.grad").read_text(encoding="utf-8"), id="neuron-stdin"),
    pytest.param(["max(x, y, 0) + relu(x) + abs(y) + atan2(y, x)", "--at", "x=0,y=0"], None,
                 id="kinks"),
]


@pytest.mark.parametrize("args, stdin", CASES)
def test_real_output_validates(validator, args, stdin):
    assert_valid(validator, cli_json(*args, input=stdin))


def test_sample_files_validate(validator):
    assert_valid(validator, cli_json(str(SAMPLES / "circuit.grad"), "--at", "x=-2,y=5,z=-4"))
    assert_valid(validator, cli_json(str(SAMPLES / "jacobian.grad"), "--at", "x=1,y=2"))
    assert_valid(validator, cli_json(str(SAMPLES / "neuron.grad"),
                                      "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"))


def test_api_to_json_validates(validator):
    r = evaluate("q = x * y; f = exp(q) / x", at={"x": 0.0, "y": 2.0})
    assert_valid(validator, json.loads(r.to_json(), parse_constant=_reject_constant))
    r = evaluate("sin(x), cos(x)", at={"x": 1.0})
    assert_valid(validator, json.loads(r.to_json()))


def test_billion_laughs_infinity_validates(validator):
    text = "a1 = x*x; " + "; ".join(f"a{k} = a{k - 1}*a{k - 1}" for k in range(2, 61))
    doc = cli_json(text, "--at", "x=2")
    assert doc["value"] == "Infinity"
    assert_valid(validator, doc)


# -- the schema really constrains -------------------------------------------------------------

@pytest.fixture(scope="module")
def good() -> dict:
    return cli_json("q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4")


@pytest.fixture(scope="module")
def good_several() -> dict:
    return cli_json("2*x + y, y - x", "--at", "x=1,y=2")


def mutate(doc: dict, fn) -> dict:
    d = copy.deepcopy(doc)
    fn(d)
    return d


def _set(path, value):
    def fn(d):
        obj = d
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return fn


def _del(path):
    def fn(d):
        obj = d
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return fn


BAD_SINGLE = [
    ("not an object", lambda d: d.clear() or d.update({"value": 1})),
    ("missing nodes", _del(["nodes"])),
    ("missing value", _del(["value"])),
    ("missing warnings", _del(["warnings"])),
    ("missing gradient", _del(["gradient"])),
    ("gradient and jacobian", _set(["jacobian"], [{"x": 1.0}, {"x": 2.0}])),
    ("extra top-level key", _set(["extra"], 1)),
    ("schema version 2", _set(["schema_version"], 2)),
    ("value lowercase nan", _set(["value"], "nan")),
    ("value a word", _set(["value"], "minus twelve")),
    ("value an object", _set(["value"], {"f": -12.0})),
    ("value null", _set(["value"], None)),
    ("gradient a list", _set(["gradient"], [-4.0, -4.0, 3.0])),
    ("gradient entry a word", _set(["gradient", "x"], "four")),
    ("at entry null", _set(["at", "x"], None)),
    ("expression a number", _set(["expression"], 12)),
    ("outputs of strings", _set(["outputs"], ["f"])),
    ("outputs negative", _set(["outputs"], [-1])),
    ("warnings of numbers", _set(["warnings"], [1])),
    ("node missing grad", _del(["nodes", 0, "grad"])),
    ("node missing name", _del(["nodes", 0, "name"])),
    ("node extra key", _set(["nodes", 0, "colour"], "green")),
    ("node id a string", _set(["nodes", 0, "id"], "0")),
    ("node inputs of floats", _set(["nodes", 2, "inputs"], [0.5, 1])),
    ("node partials a word", _set(["nodes", 2, "partials"], ["one", 1.0])),
    ("node grad an object", _set(["nodes", 0, "grad"], {"f": 1.0})),
    ("node name a number", _set(["nodes", 0, "name"], 7)),
    ("node name with a space", _set(["nodes", 0, "name"], "x y")),
    ("node op capitalised", _set(["nodes", 0, "op"], "Var")),
    ("nodes empty", _set(["nodes"], [])),
    ("nodes an object", _set(["nodes"], {"0": {}})),
]


@pytest.mark.parametrize("what, fn", BAD_SINGLE, ids=[w for w, _ in BAD_SINGLE])
def test_wrong_documents_fail(validator, good, what, fn):
    assert_valid(validator, good)
    assert_invalid(validator, mutate(good, fn))


BAD_SEVERAL = [
    ("missing jacobian", _del(["jacobian"])),
    ("jacobian and gradient", _set(["gradient"], {"x": 2.0})),
    ("jacobian an object", _set(["jacobian"], {"x": 2.0})),
    ("scalar value with a jacobian", _set(["value"], 4.0)),
    ("jacobian of one row", _set(["jacobian"], [{"x": 2.0, "y": 1.0}])),
    ("jacobian row of lists", _set(["jacobian", 0], [2.0, 1.0])),
]


@pytest.mark.parametrize("what, fn", BAD_SEVERAL, ids=[w for w, _ in BAD_SEVERAL])
def test_wrong_several_output_documents_fail(validator, good_several, what, fn):
    assert_valid(validator, good_several)
    assert_invalid(validator, mutate(good_several, fn))


def test_obviously_wrong_documents_fail(validator):
    for doc in ([], "gradcli", 12, None, {}, {"value": -12.0, "gradient": {"x": 1}}):
        assert_invalid(validator, doc)
