"""`gradcli graph` and `eval --format dot|mermaid`: the circuit diagram as DOT, Mermaid, SVG, PNG.

The DOT and Mermaid texts are read back with small parsers written here: every node and edge
of the `eval --json` graph must be there, each label with the value and gradient the JSON gives
(formatted as the picture formats them). SVG and PNG need Graphviz's `dot`: those tests are
skipped, with the reason, when it is not installed; the error without it is tested either way.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from cli_runner import runner

from gradcli import evaluate
from gradcli.cli import app
from gradcli.render.graph import (GRAD_COLOUR, VALUE_COLOUR, dot_string, mermaid_text, to_dot,
                                  to_mermaid)
from gradcli.render.text import fmt

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CIRCUIT = [str(SAMPLES / "circuit.grad"), "--at", "x=-2,y=5,z=-4"]
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed "
                               "(apt-get install graphviz); SVG/PNG rendering is not tested")



def ok(*args: str, input: str | None = None):
    r = runner.invoke(app, list(args), input=input)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert "Traceback" not in r.stderr
    return r


def eval_doc(*args: str) -> dict:
    return json.loads(ok("eval", *args, "--json").stdout)


# -- small readers for the two text formats ---------------------------------------------------

DOT_NODE = re.compile(r"^  n(\d+) \[label=<(.*?)>, shape=(.*)\];$")
DOT_EDGE = re.compile(r"^  n(\d+) -> n(\d+);$")
MERMAID_NODE = re.compile(r'^  n(\d+)(\(\(|\(|\[)"(.*)"(\)\)|\)|\])$')
MERMAID_EDGE = re.compile(r"^  n(\d+) --> n(\d+)$")


def read_dot(text: str) -> tuple[dict[int, dict], Counter]:
    """Nodes (id -> title, value, grad, attrs) and the multiset of edges of our DOT output."""
    lines = text.strip().splitlines()
    assert lines[0] == "digraph gradcli {" and lines[-1] == "}"
    nodes: dict[int, dict] = {}
    edges: Counter = Counter()
    for line in lines[1:-1]:
        if m := DOT_NODE.match(line):
            label = m.group(2)
            nodes[int(m.group(1))] = {
                "title": html.unescape(re.search(r"<B>(.*?)</B>", label).group(1)),
                "value": _coloured(label, f'<FONT COLOR="{VALUE_COLOUR}">(.*?)</FONT>'),
                "grad": _coloured(label, f'<FONT COLOR="{GRAD_COLOUR}">(.*?)</FONT>'),
                "text": html.unescape(re.sub(r"<[^>]*>", " ", label)),
                "attrs": m.group(3),
            }
        elif m := DOT_EDGE.match(line):
            edges[(int(m.group(1)), int(m.group(2)))] += 1
        else:
            assert re.match(r"^  (graph|node|edge) \[.*\];$", line), line
    return nodes, edges


def read_mermaid(text: str) -> tuple[dict[int, dict], Counter]:
    lines = text.strip().splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[int, dict] = {}
    edges: Counter = Counter()
    for line in lines[1:]:
        if m := MERMAID_NODE.match(line):
            label = m.group(3)
            assert '"' not in label, "a quote inside a Mermaid label ends it"
            nodes[int(m.group(1))] = {
                "shape": m.group(2),
                "title": _mermaid_unescape(re.search(r"<b>(.*?)</b>", label).group(1)),
                "value": _coloured(label, f"<span style='color:{VALUE_COLOUR}'>(.*?)</span>"),
                "grad": _coloured(label, f"<span style='color:{GRAD_COLOUR}'>(.*?)</span>"),
                "text": _mermaid_unescape(re.sub(r"<[^>]*>", " ", label)),
            }
        elif m := MERMAID_EDGE.match(line):
            edges[(int(m.group(1)), int(m.group(2)))] += 1
        else:
            assert re.match(r"^  (classDef|class) ", line), line
    return nodes, edges


def _coloured(label: str, pattern: str) -> str | None:
    found = re.findall(pattern, label)
    assert len(found) <= 1, label
    return html.unescape(found[0]) if found else None


def _mermaid_unescape(text: str) -> str:
    return re.sub(r"#(\d+|[a-z]+);", lambda m: html.unescape(
        f"&#{m.group(1)};" if m.group(1).isdigit() else f"&{m.group(1)};"), text)


def json_edges(doc: dict) -> Counter:
    return Counter((j, n["id"]) for n in doc["nodes"] for j in n["inputs"])


def assert_matches_json(nodes: dict[int, dict], edges: Counter, doc: dict, digits: int) -> None:
    """Every node and edge of the JSON graph, each label carrying the JSON's numbers."""
    assert sorted(nodes) == [n["id"] for n in doc["nodes"]]
    assert edges == json_edges(doc)
    for n in doc["nodes"]:
        shown = nodes[n["id"]]
        value = fmt(n["value"], digits)
        if shown["value"] is None:  # a number is its own label
            assert n["op"] == "const" and shown["title"] == value, (n, shown)
        else:
            assert shown["value"] == value, (n, shown)
        if n["grad"] is None:
            assert shown["grad"] is None, (n, shown)
        else:
            assert shown["grad"] == fmt(n["grad"], digits), (n, shown)
        if n["name"] is not None:
            assert shown["title"] == n["name"], (n, shown)


# -- DOT ---------------------------------------------------------------------------------------

def test_circuit_dot_has_every_node_edge_and_number():
    r = ok("graph", *CIRCUIT, "--format", "dot")
    nodes, edges = read_dot(r.stdout)
    doc = eval_doc(*CIRCUIT)
    assert_matches_json(nodes, edges, doc, 4)
    assert len(nodes) == 5 and sum(edges.values()) == 4
    # the course's numbers: x, y get -4, z gets 3, the output -12 with gradient 1
    assert (nodes[0]["value"], nodes[0]["grad"]) == ("-2", "-4")
    assert (nodes[3]["value"], nodes[3]["grad"]) == ("-4", "3")
    assert (nodes[4]["value"], nodes[4]["grad"]) == ("-12", "1")
    assert "peripheries=2" in nodes[4]["attrs"]  # the output is marked
    assert "rankdir=LR" in r.stdout  # inputs on the left, as in the course's circuits
    assert r.stderr == ""


@pytest.mark.parametrize("digits", [3, 6, 17])
def test_neuron_dot_labels_carry_the_json_numbers(digits):
    at = ["--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"]
    text = ("s = w0*x0 + w1*x1 + w2\n"
            "f = 1 / (1 + exp(-s))\n")
    nodes, edges = read_dot(ok("graph", text, *at, "--digits", str(digits)).stdout)
    assert_matches_json(nodes, edges, eval_doc(text, *at), digits)
    titles = [n["title"] for n in nodes.values()]
    assert "s" in titles and "f" in titles  # named intermediates keep their names


def test_shared_node_appears_once_with_several_out_edges():
    doc = eval_doc("x*x + sin(x)", "--at", "x=2")
    nodes, edges = read_dot(ok("graph", "x*x + sin(x)", "--at", "x=2").stdout)
    assert_matches_json(nodes, edges, doc, 4)
    assert [n["title"] for n in nodes.values()].count("x") == 1
    assert sum(c for (a, _), c in edges.items() if a == 0) == 3  # x -> mul (twice), x -> sin
    assert nodes[0]["grad"] == fmt(2 * 2 + math.cos(2), 4)  # fan-out summed


def test_staged_program_names_and_copies():
    text = "q = x + y; a = q; f = a * z"
    doc = eval_doc(text, "--at", "x=-2,y=5,z=-4")
    nodes, edges = read_dot(ok("graph", text, "--at", "x=-2,y=5,z=-4").stdout)
    assert_matches_json(nodes, edges, doc, 4)
    titles = {n["title"] for n in nodes.values()}
    assert {"x", "y", "z", "q", "a", "f"} <= titles


def test_several_outputs_and_wrt():
    doc = eval_doc("2*x + y, y - x", "--at", "x=1,y=2", "--wrt", "x")
    nodes, edges = read_dot(ok("graph", "2*x + y, y - x", "--at", "x=1,y=2", "--wrt", "x").stdout)
    assert_matches_json(nodes, edges, doc, 4)
    y = next(n for n in nodes.values() if n["title"] == "y")
    assert y["grad"] is None  # y is outside --wrt: no gradient shown
    outputs = [i for i, n in nodes.items() if "peripheries=2" in n["attrs"]]
    assert outputs == doc["outputs"]


def test_constants_show_once_without_gradient():
    nodes, _ = read_dot(ok("graph", "x + 1 + pi", "--at", "x=1").stdout)
    consts = [n for n in nodes.values() if "dashed" in n["attrs"]]
    assert {n["title"] for n in consts} == {"1", "pi"}
    assert all(n["grad"] is None for n in consts)
    pi = next(n for n in consts if n["title"] == "pi")
    assert pi["value"] == "3.142"


def test_nonfinite_values_are_labelled_and_warned():
    r = ok("graph", "log(x) + 1/y", "--at", "x=0,y=0")
    nodes, _ = read_dot(r.stdout)
    assert any(n["value"] == "-Infinity" for n in nodes.values())
    assert any(n["value"] == "Infinity" for n in nodes.values())
    assert "warning" in r.stderr


def test_escaping_user_text_in_dot():
    # The comment sits inside the unnamed sum's span, so its quotes, backslash, <, >, & and [
    # reach that node's label and tooltip; they must come out escaped.
    text = 'f = (x +  # "c" \\ <b>&[1]\n  y) * θ\n'
    out = ok("graph", text, "--at", "x=1,y=2,θ=3").stdout
    for line in out.splitlines():
        for quoted in re.findall(r'tooltip="((?:[^"\\]|\\.)*)"', line):
            assert '"' not in quoted.replace('\\"', "")
    assert '\\"c\\" \\\\ <b>&[1]' in out  # in the quoted tooltip: \" and \\
    assert "&quot;c&quot; \\ &lt;b&gt;&amp;[1]" in out  # in the HTML-like label
    nodes, _ = read_dot(out)
    add = next(n for n in nodes.values() if n["title"] == "+")
    assert '# "c" \\ <b>&[1]' in add["text"]
    assert any(n["title"] == "θ" for n in nodes.values())
    assert dot_string('say "hi" \\ bye\nnext') == '"say \\"hi\\" \\\\ bye\\nnext"'


def test_escaping_user_text_in_mermaid():
    text = 'f = (x +  #"q"<t>&`k`[1]%\n  y) * θ\n'
    out = ok("graph", text, "--at", "x=1,y=2,θ=3", "--format", "mermaid").stdout
    nodes, edges = read_mermaid(out)
    assert len(nodes) == 5 and sum(edges.values()) == 4
    add = next(n for n in nodes.values() if n["title"] == "+")
    assert add["value"] == "3"
    assert '#"q"<t>&`k`[1]%' in add["text"]
    assert "<t>" not in out and "#lt;t#gt;" in out
    assert mermaid_text('a"b#c<d>e&f`g%') == "a#quot;b#35;c#lt;d#gt;e#amp;f#96;g#37;"
    assert mermaid_text("w[0] (x)") == "w[0] (x)"  # brackets are safe inside quotes


@needs_dot
def test_escaped_dot_is_accepted_by_graphviz():
    text = 'f = (x +  # a "comment" \\ <b>&[1]</b>\n  y) * θ\n'
    r = evaluate(text, at={"x": 1, "y": 2, "θ": 3})
    done = subprocess.run(["dot", "-Tsvg"], input=to_dot(r).encode("utf-8"),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert b"<svg" in done.stdout and b"Warning" not in done.stderr


# -- Mermaid -----------------------------------------------------------------------------------

def test_mermaid_has_the_same_nodes_and_edges_as_dot():
    dot_nodes, dot_edges = read_dot(ok("graph", *CIRCUIT).stdout)
    m_nodes, m_edges = read_mermaid(ok("graph", *CIRCUIT, "--format", "mermaid").stdout)
    assert m_edges == dot_edges
    assert sorted(m_nodes) == sorted(dot_nodes)
    for i in dot_nodes:
        for key in ("title", "value", "grad"):
            assert m_nodes[i][key] == dot_nodes[i][key], (i, key)
    assert_matches_json(m_nodes, m_edges, eval_doc(*CIRCUIT), 4)
    assert m_nodes[0]["shape"] == "(" and m_nodes[2]["shape"] == "(("  # inputs boxed, ops round


def test_mermaid_neuron_and_classes():
    at = ["--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"]
    text = "s = w0*x0 + w1*x1 + w2; f = 1 / (1 + exp(-s))"
    out = ok("graph", text, *at, "--format", "mermaid", "--digits", "2").stdout
    nodes, edges = read_mermaid(out)
    assert_matches_json(nodes, edges, eval_doc(text, *at), 2)
    f = next(i for i, n in nodes.items() if n["title"] == "f")
    assert nodes[f]["value"] == "0.73" and nodes[f]["grad"] == "1"
    assert re.search(rf"^  class .*\bn{f}\b.* output$", out, re.M)


# -- eval --format dot|mermaid -----------------------------------------------------------------

@pytest.mark.parametrize("kind, reader", [("dot", read_dot), ("mermaid", read_mermaid)])
def test_eval_format_dot_and_mermaid(kind, reader):
    r = ok("eval", *CIRCUIT, "--format", kind)
    nodes, edges = reader(r.stdout)
    assert_matches_json(nodes, edges, eval_doc(*CIRCUIT), 6)  # eval's own --digits default


def test_eval_format_dot_formula_starting_with_minus():
    nodes, _ = read_dot(ok("eval", "-x^2", "--at", "x=3", "--format", "dot").stdout)
    assert nodes[max(nodes)]["value"] == "-9"


def test_graph_reads_stdin_and_unicode():
    r = ok("graph", "-", "--at", "θ=2", "--format", "mermaid", input="θ * θ\n")
    nodes, edges = read_mermaid(r.stdout)
    assert nodes[0]["title"] == "θ" and nodes[0]["grad"] == "4"
    assert sum(edges.values()) == 2


# -- files, formats, limits --------------------------------------------------------------------

@pytest.mark.parametrize("name, first", [("c.dot", "digraph gradcli {"), ("c.gv", "digraph"),
                                         ("c.mmd", "flowchart LR")])
def test_output_file_format_from_extension(tmp_path, name, first):
    target = tmp_path / name
    r = ok("graph", *CIRCUIT, "-o", str(target))
    assert r.stdout == ""
    assert target.read_text(encoding="utf-8").startswith(first)
    assert f"wrote {target}" in r.stderr


def test_unwritable_output_is_exit_2(tmp_path):
    r = runner.invoke(app, ["graph", *CIRCUIT, "-o", str(tmp_path / "no" / "such" / "c.dot")])
    assert r.exit_code == 2
    assert "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_max_nodes_cut_off():
    formula = " + ".join(f"x{k}" for k in range(150))
    r = runner.invoke(app, ["graph", formula, "--max-nodes", "100"])
    assert r.exit_code == 2
    assert "299 nodes" in r.stderr and "--max-nodes 100" in r.stderr
    assert "--max-nodes 300" in r.stderr and "eval" in r.stderr
    assert r.stdout == ""
    at = ",".join(f"x{k}={k}" for k in range(150))
    nodes, edges = read_dot(ok("graph", formula, "--at", at, "--max-nodes", "0").stdout)
    assert len(nodes) == 299 and sum(edges.values()) == 298


def test_default_max_nodes_is_200():
    formula = " + ".join(f"x{k}" for k in range(101))  # 201 nodes
    r = runner.invoke(app, ["graph", formula])
    assert r.exit_code == 2 and "more than --max-nodes 200" in r.stderr


def test_deep_formula_does_not_recurse():
    depth = 20_000
    text = "sin(" * depth + "x" + ")" * depth
    r = ok("graph", "-", "--at", "x=1", "--max-nodes", "0", input=text)
    assert r.stdout.count(" -> ") == depth


def test_bad_inputs_are_exit_2():
    for args in (["graph", "(x+*y", "--at", "x=1,y=2"], ["graph", "x+y", "--at", "x=1"],
                 ["graph", "x", "--at", "x=1", "--format", "jpeg"],
                 ["graph", "x", "--at", "x=1", "--wrt", "nope"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr


# -- SVG and PNG through Graphviz --------------------------------------------------------------

def test_missing_graphviz_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no dot
    for kind in ("svg", "png"):
        r = runner.invoke(app, ["graph", *CIRCUIT, "--format", kind, "-o",
                                str(tmp_path / f"c.{kind}")])
        assert r.exit_code == 2, r.stderr
        message = " ".join(r.stderr.split())
        assert "apt-get install graphviz" in message and "brew install graphviz" in message
        assert "--format dot" in message and "--format mermaid" in message
        assert "Traceback" not in r.stderr
        assert not (tmp_path / f"c.{kind}").exists()


@needs_dot
def test_svg_has_every_node_and_number(tmp_path):
    target = tmp_path / "circuit.svg"
    ok("graph", *CIRCUIT, "--format", "svg", "-o", str(target))
    svg = html.unescape(target.read_text(encoding="utf-8"))
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    doc = eval_doc(*CIRCUIT)
    assert svg.count('class="node"') == len(doc["nodes"])
    assert svg.count('class="edge"') == sum(json_edges(doc).values())
    for n in doc["nodes"]:
        assert f">{fmt(n['value'], 4)}</text>" in svg
    assert VALUE_COLOUR in svg and GRAD_COLOUR in svg


@needs_dot
def test_svg_to_stdout_and_png_to_file(tmp_path):
    r = ok("graph", *CIRCUIT, "--format", "svg")
    assert "<svg" in r.stdout
    target = tmp_path / "c.png"
    ok("graph", *CIRCUIT, "-o", str(target))  # format from the extension
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_graph_svg_real_program(tmp_path):
    exe = shutil.which("gradcli")
    cmd = [exe] if exe else [sys.executable, "-m", "gradcli"]
    target = tmp_path / "neuron.svg"
    text = "s = w0*x0 + w1*x1 + w2\nf = 1 / (1 + exp(-s))\n"
    source = tmp_path / "neuron.grad"
    source.write_text(text, encoding="utf-8")
    p = subprocess.run(cmd + ["graph", str(source), "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3",
                              "--format", "svg", "-o", str(target)],
                       capture_output=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    svg = html.unescape(target.read_text(encoding="utf-8"))
    assert ">0.7311</text>" in svg and ">-0.1966</text>" in svg  # f and ∂f/∂w0


def test_missing_graphviz_real_program(tmp_path):
    exe = shutil.which("gradcli")
    cmd = [exe] if exe else [sys.executable, "-m", "gradcli"]
    env = {"PATH": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    p = subprocess.run(cmd + ["graph", *CIRCUIT, "--format", "svg"], capture_output=True,
                       cwd=ROOT, env=env, timeout=60)
    err = p.stderr.decode()
    assert p.returncode == 2 and p.stdout == b""
    assert err.startswith("gradcli: error: --format svg needs Graphviz") and "Traceback" not in err


# -- tensors (when the core has them) ----------------------------------------------------------

def _tensors_available() -> bool:
    try:
        import numpy as np

        evaluate("sum(w*w)", at={"w": np.array([1.0, 2.0])})
    except Exception:  # noqa: BLE001 - any failure means: not yet
        return False
    return True


@pytest.mark.skipif(not _tensors_available(), reason="the core has no tensors yet")
def test_tensor_values_as_lists_and_big_ones_as_shapes():
    import numpy as np

    r = evaluate("sum(W*W) + sum(v*v)", at={"W": np.arange(12.0).reshape(3, 4),
                                             "v": np.array([1.0, -2.0])})
    nodes, edges = read_dot(to_dot(r))
    v = next(n for n in nodes.values() if n["title"] == "v")
    assert v["value"] == "[1, -2]" and v["grad"] == "[2, -4]"
    W = next(n for n in nodes.values() if n["title"] == "W")
    assert W["value"] == "array 3×4" and W["grad"] == "array 3×4"
    m_nodes, m_edges = read_mermaid(to_mermaid(r))
    assert m_edges == edges
