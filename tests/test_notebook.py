"""samples/cs231n.ipynb, executed by a real Jupyter kernel (nbclient + ipykernel), and what
its cells show: the short reprs, the HTML tables, the LaTeX explanation, numpy arrays back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "samples" / "cs231n.ipynb"


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    folder = tmp_path_factory.mktemp("nb")
    shutil.copy(ROOT / "samples" / "neuron.grad", folder)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    return [c for c in nb.cells if c.cell_type == "code"]


def data(cell, mime: str) -> str:
    """The cell's result in one MIME type ('' when it has none)."""
    for out in cell.outputs:
        assert out.output_type != "error", out
        if out.output_type == "execute_result":
            return out.data.get(mime, "")
    return ""


def test_every_cell_runs_and_shows_only_its_result(cells):
    for cell in cells:
        kinds = {o.output_type for o in cell.outputs}
        assert kinds <= {"execute_result", "stream"}, (cell.source, kinds)


def test_result_repr_is_short_and_html_is_the_node_table(cells):
    text = data(cells[1], "text/plain")
    assert text == "<gradcli Result f = -12, gradient {x: -4, y: -4, z: 3}, 5 nodes>"
    html = data(cells[1], "text/html")
    rows = re.findall(r'<tr data-node="(\d+)">', html)
    assert rows == ["0", "1", "2", "3", "4"]
    assert 'data-value="-12.0"' in html and 'data-value="-4.0"' in html
    if shutil.which("dot"):
        assert "<svg" in html and 'class="node" data-node="2"' in html
    assert data(cells[2], "text/plain") == "(-12.0, {'x': -4.0, 'y': -4.0, 'z': 3.0})"


def test_explanation_is_latex_in_the_notebook(cells):
    latex = data(cells[3], "text/latex")
    assert latex.startswith("\\begin{align*}") and latex.rstrip().endswith("\\end{align*}")
    assert "∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4" in data(cells[3], "text/plain")


def test_neuron_and_check_match_the_course_notes(cells):
    assert "f = 0.731059" in data(cells[4], "text/plain")
    assert data(cells[5], "text/plain") == \
        "{'w0': -0.2, 'x0': 0.39, 'w1': -0.39, 'x1': -0.59, 'w2': 0.2}"
    text = data(cells[6], "text/plain")
    assert text.startswith("<gradcli CheckReport not ok:") and "1 of 2 answers wrong" in text
    html = data(cells[6], "text/html")
    assert 'data-ok="false"' in html and "wrong" in html


def test_staged_value_and_numpy_arrays_back(cells):
    assert data(cells[7], "text/plain").startswith("<gradcli Result f = 1.54564, gradient")
    assert data(cells[8], "text/plain") == "('ndarray', (5, 10))"
    assert data(cells[9], "text/plain") == "(True, True)"


def test_descent_shows_its_path(cells):
    text = data(cells[10], "text/plain")
    assert text.startswith("<gradcli Descent sgd, lr 0.04: loss 19 -> ")
    html = data(cells[10], "text/html")
    assert "<table" in html
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert "<svg" in html and 'id="path-sgd"' in html
