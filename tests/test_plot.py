"""`descend --plot` and `--compare`: the files are real pictures, and the path drawn is the path
descend --json reports (pixel coordinates are an affine map of the parameters)."""

from __future__ import annotations

import json
import re
import struct
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from cli_runner import run

from gradcli import evaluate

pytest.importorskip("matplotlib", reason="descend --plot needs matplotlib (gradcli[plot])")

SVG = "{http://www.w3.org/2000/svg}"
BOWL = "(w-3)^2 + 10*(v+1)^2"


def descend_json(*args: str) -> dict:
    r = run("descend", *args, "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def group(root: ET.Element, gid: str) -> ET.Element:
    found = [g for g in root.iter() if g.get("id") == gid]
    assert found, f"no element with id {gid!r} in the SVG"
    return found[0]


def path_pixels(root: ET.Element, gid: str) -> np.ndarray:
    """The vertices of the first <path> in the group `gid`, as (n, 2) pixel coordinates."""
    path = next(group(root, gid).iter(f"{SVG}path"))
    nums = [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", path.get("d"))]
    return np.array(nums).reshape(-1, 2)


def marker_pixels(root: ET.Element, gid: str) -> np.ndarray:
    """Where the marker drawn in the group `gid` sits (a <use x= y=>), in pixels."""
    use = next(group(root, gid).iter(f"{SVG}use"))
    return np.array([float(use.get("x")), float(use.get("y"))])


def assert_affine(data: np.ndarray, pixels: np.ndarray, tol: float = 0.02) -> None:
    """pixels = a * data + b for one a, b (a path drawn from exactly these points)."""
    assert len(data) == len(pixels)
    a, b = np.polyfit(data, pixels, 1)
    assert abs(a) > 1e-6
    assert np.max(np.abs(a * data + b - pixels)) < tol, (data, pixels)


def test_two_parameters_svg_draws_the_path_descend_reports(tmp_path):
    out = tmp_path / "path.svg"
    args = (BOWL, "--at", "w=0,v=0", "--lr", "0.02", "--steps", "12")
    doc = descend_json(*args)
    r = run("descend", *args, "--plot", str(out))
    assert r.exit_code == 0, r.stderr
    assert f"wrote {out}" in r.stderr
    root = ET.parse(out).getroot()  # valid XML
    assert root.tag == f"{SVG}svg"
    pixels = path_pixels(root, "path-sgd")
    w = np.array([s["params"]["w"] for s in doc["steps"]])
    v = np.array([s["params"]["v"] for s in doc["steps"]])
    assert_affine(w, pixels[:, 0])
    assert_affine(v, pixels[:, 1])
    # start and end are marked where the path starts and ends; contour lines are there
    assert np.allclose(marker_pixels(root, "start"), pixels[0], atol=0.01)
    assert np.allclose(marker_pixels(root, "end-sgd"), pixels[-1], atol=0.01)
    assert len(list(group(root, "contours").iter(f"{SVG}path"))) > 5


def test_png_and_pdf_files(tmp_path):
    png, pdf = tmp_path / "p.png", tmp_path / "p.pdf"
    for out in (png, pdf):
        r = run("descend", BOWL, "--at", "w=0,v=0", "--steps", "20", "--lr", "0.02",
                "--plot", str(out))
        assert r.exit_code == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1210, 528)  # 11 x 4.8 inches at 110 dpi
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert (png.stat().st_mode & 0o777) != 0o600  # the umask's mode, not mkstemp's


def test_compare_draws_each_optimiser_from_the_same_start(tmp_path):
    out = tmp_path / "c.svg"
    r = run("descend", "x^2 + 10*y^2", "--at", "x=-4,y=1", "--compare", "sgd,momentum,adam",
            "--steps", "30", "--lr", "0.05", "--plot", str(out))
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["sgd", "momentum", "adam"]
    root = ET.parse(out).getroot()
    firsts = []
    for name in ("sgd", "momentum", "adam"):
        doc = descend_json("x^2 + 10*y^2", "--at", "x=-4,y=1", "--optimizer", name,
                           "--steps", "30", "--lr", "0.05")
        pixels = path_pixels(root, f"path-{name}")
        xs = np.array([s["params"]["x"] for s in doc["steps"]])
        assert_affine(xs, pixels[:, 0])
        firsts.append(pixels[0])
        final = doc["final"]["loss"]
        assert f"loss {final:.6g}" in lines[["sgd", "momentum", "adam"].index(name)]
    assert np.allclose(firsts, firsts[0])


def test_more_parameters_draw_loss_and_trajectories_log_scale_when_wide(tmp_path):
    out = tmp_path / "many.svg"
    args = ("sum((w - [1, 2, 3])^2)", "--at", "w=[0,0,0]", "--lr", "0.2", "--steps", "40")
    doc = descend_json(*args)
    r = run("descend", *args, "--plot", str(out))
    assert r.exit_code == 0, r.stderr
    root = ET.parse(out).getroot()
    loss = np.array([s["loss"] for s in doc["steps"]])
    assert loss.max() / loss.min() > 1000
    pixels = path_pixels(root, "loss-sgd")
    assert_affine(np.log10(loss), pixels[:, 1])  # log scale: pixels follow log(loss)
    for j in range(3):
        w = np.array([s["params"]["w"][j] for s in doc["steps"]])
        assert_affine(w, path_pixels(root, f"param-sgd-{j}")[:, 1])


def test_narrow_loss_curve_stays_linear(tmp_path):
    out = tmp_path / "lin.svg"
    args = ("(a-1)^2 + (b-2)^2 + (c-3)^2 + 5", "--at", "a=0,b=0,c=0", "--steps", "10")
    doc = descend_json(*args)
    assert run("descend", *args, "--plot", str(out)).exit_code == 0
    loss = np.array([s["loss"] for s in doc["steps"]])
    assert_affine(loss, path_pixels(ET.parse(out).getroot(), "loss-sgd")[:, 1])


def test_contour_grid_is_one_vectorised_sweep_and_matches_evaluate(monkeypatch):
    from gradcli import engine, surface
    from gradcli.session import load

    s = load("(1-x)^2 + 100*(y-x^2)^2", {"x": 0, "y": 0})
    calls = []
    real = engine.forward
    monkeypatch.setattr(engine, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    box = surface.frame([np.array([[-1.2, 1.0], [0.5, 0.25]])])
    X, Y, Z = surface.loss_grid(s.tape, s.point, ["x", "y"], box, n=41)
    assert len(calls) == 1 and Z.shape == (41, 41)
    assert box[0] < -1.2 and box[1] > 0.5 and box[2] < 0.25 and box[3] > 1.0
    for i, j in [(0, 0), (7, 30), (40, 40), (20, 13)]:
        at = {"x": X[i, j], "y": Y[i, j]}
        assert Z[i, j] == pytest.approx(evaluate("(1-x)^2 + 100*(y-x^2)^2", at=at).value)


def test_flat_path_still_gets_a_window():
    from gradcli import surface

    x0, x1, y0, y1 = surface.frame([np.array([[0.0, 1.0], [4.0, 1.0]])])
    assert x0 < 0 and x1 > 4 and y1 - y0 > 1  # a third of the other side at least


def test_without_matplotlib_exit_2_naming_the_install(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = run("descend", BOWL, "--at", "w=0,v=0", "--plot", str(tmp_path / "p.svg"))
    assert r.exit_code == 2
    assert "pip install 'gradcli[plot]'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "p.svg").exists()


@pytest.mark.parametrize("args, words", [
    (("--plot", "p.gif"), ".svg, .png or .pdf"),
    (("--compare", "sgd,rmsprop", "--plot", "p.svg"), "rmsprop: not an optimiser"),
    (("--compare", "sgd,sgd"), "twice"),
    (("--compare", "sgd,adam", "--json"), "--json describes one descent"),
])
def test_bad_plot_options_exit_2(args, words):
    r = run("descend", BOWL, "--at", "w=0,v=0", *args)
    assert r.exit_code == 2 and words in r.stderr, r.stderr


def test_compare_with_newton_and_newton_alone(tmp_path):
    out = tmp_path / "n.svg"
    r = run("descend", "x^2 + 10*y^2", "--at", "x=-4,y=1", "--compare", "sgd,newton",
            "--plot", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[1].split()[:3] == ["newton", "loss", "0"]
    root = ET.parse(out).getroot()
    newton = path_pixels(root, "path-newton")
    sgd = path_pixels(root, "path-sgd")
    assert np.allclose(newton[0], sgd[0])  # the same start
    # one Newton step lands on the minimum of a quadratic: (0, 0), where sgd's x ends too
    assert abs(newton[-1][0] - sgd[-1][0]) < 0.5
    single = tmp_path / "one.svg"
    r = run("descend", "x^2 + 10*y^2", "--at", "x=-4,y=1", "--method", "newton",
            "--plot", str(single))
    assert r.exit_code == 0, r.stderr
    group(ET.parse(single).getroot(), "path-newton")
