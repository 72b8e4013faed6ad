"""One naming policy (render/names.py): the table, --explain, the tree, the graph and check's
report call the output by the same name."""

from __future__ import annotations

import json

import pytest
from cli_runner import run

from gradcli.parse import parse
from gradcli.render.names import output_name, output_names


@pytest.mark.parametrize("formula, names", [
    ("(x+y)*z", ["f"]),
    ("f*2+1", ["F"]),               # the formula's own f: the output is F, never ∂f/∂f
    ("f*F + L", ["out"]),
    ("q = x + y; L = q * z", ["L"]),  # the program's own name
    ("2*x + y, y - x", ["f1", "f2"]),
    ("f1 + x, x", ["F1", "F2"]),
])
def test_output_names(formula, names):
    tape, _ = parse(formula)
    assert output_names(tape) == names
    assert output_name(tape) == names[0]


def test_table_explain_tree_and_check_agree_on_the_name():
    at = ["--at", "f=3"]
    table = run("eval", "f*2+1", *at).stdout
    explain = run("eval", "f*2+1", *at, "--explain").stdout
    tree = run("eval", "f*2+1", *at, "--format", "tree").stdout
    check = run("check", "f*2+1", *at, "--expect", "f=2").stdout
    graph = run("graph", "f*2+1", *at, "--format", "mermaid").stdout
    for text in (table, explain, check):
        assert "∂F/∂f" in text, text
        assert "∂f/∂f" not in text, text
    assert "F" in tree
    assert "F = 7" in graph or "F =" in graph or '"F' in graph or "F<" in graph, graph


def test_slip_messages_use_the_programs_output_name():
    # ∂q/∂x = y = 3 alone: the upstream ∂L/∂q = z is missing, and the message names L
    r = run("check", "q = x * y; L = q * z", "--at", "x=2,y=3,z=4", "--expect", "x=3", "--json")
    doc = json.loads(r.stdout)
    text = json.dumps(doc, ensure_ascii=False)
    assert "∂f/" not in text
    assert "∂L/" in text
