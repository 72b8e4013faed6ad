"""Batch mode at scale (issue 13): columnar files in and out, --keep, several outputs, the
chunk pipeline, and a real Dask LocalCluster.

Oracles: the sigmoid neuron's value and gradient written out by hand in numpy (independent of
the engine), gradcli.evaluate row by row (the scalar path), and plain single-machine batch mode
with numpy's line reader (CsvPoints) for the polars and Dask paths.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from gradcli import evaluate
from gradcli.batch import CsvPoints, run_batch
from gradcli.columnar import FastCsvPoints
from gradcli.errors import InputError
from gradcli.parse import parse

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pl = pytest.importorskip("polars")

ROOT = Path(__file__).resolve().parent.parent
NEURON_FILE = str(ROOT / "samples" / "neuron.grad")
NAMES = ["w0", "x0", "w1", "x1", "w2"]


def ok(*args: str):
    r = run(*args)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    return r


def fails(*args: str) -> str:
    r = run(*args)
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.startswith("gradcli: error:")
    return r.stderr


def data(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-3, 3, n) for name in NAMES}


def neuron(d: dict[str, np.ndarray]) -> np.ndarray:
    """value, d_w0, d_x0, d_w1, d_x1, d_w2 by hand: σ(w0 x0 + w1 x1 + w2) and σ(1-σ) × inputs."""
    e = np.exp(-(d["w0"] * d["x0"] + d["w1"] * d["x1"] + d["w2"]))
    f = 1.0 / (1.0 + e)
    s = e / (1.0 + e) ** 2
    return np.column_stack([f, s * d["x0"], s * d["w0"], s * d["x1"], s * d["w1"], s])


def write_points(d: dict[str, np.ndarray], path: Path) -> str:
    """The columns in the format path's extension names."""
    kind = path.suffix
    if kind == ".csv":
        table = np.column_stack([d[n] for n in d])
        np.savetxt(path, table, fmt="%.17g", delimiter=",", header=",".join(d), comments="")
    elif kind == ".parquet":
        pq.write_table(pa.table(d), path, row_group_size=700)
    elif kind == ".feather":
        import pyarrow.feather as feather

        feather.write_feather(pa.table(d), path, chunksize=900)
    elif kind == ".arrows":
        table = pa.table(d)
        with pa.ipc.new_stream(str(path), table.schema) as w:
            for batch in table.to_batches(max_chunksize=800):
                w.write_batch(batch)
    elif kind == ".npz":
        np.savez(path, **d)
    elif kind == ".npy":
        rec = np.zeros(len(next(iter(d.values()))), dtype=[(n, "f8") for n in d])
        for n, col in d.items():
            rec[n] = col
        np.save(path, rec)
    return str(path)


def read_output(path: Path) -> tuple[list[str], np.ndarray]:
    """(columns, float table) of a CSV, JSON Lines or Parquet output file."""
    if path.suffix == ".parquet" or path.is_dir():
        t = pq.read_table(path)
        return t.column_names, np.column_stack([t[c].to_numpy() for c in t.column_names])
    text = path.read_text()
    if path.suffix == ".jsonl":
        docs = [json.loads(line) for line in text.splitlines()]
        assert [d["row"] for d in docs] == list(range(1, len(docs) + 1))
        cols = list(docs[0].get("inputs", {})) + ["value"] + [f"d_{x}" for x in
                                                             docs[0]["gradient"]]
        rows = [list(d.get("inputs", {}).values()) + [d["value"]] + list(d["gradient"].values())
                for d in docs]
        return cols, np.array(rows, dtype=np.float64)
    head, body = text.split("\n", 1)
    return head.split(","), np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)


HEADER = ["value"] + [f"d_{x}" for x in NAMES]


# -- every format, against the numpy oracle -------------------------------------------------------

@pytest.mark.parametrize("src", [".csv", ".parquet", ".feather", ".arrows", ".npz", ".npy"])
@pytest.mark.parametrize("dst", [".csv", ".jsonl", ".parquet"])
def test_every_format_round_trip(tmp_path, src, dst):
    d = data(2500)
    points = write_points(d, tmp_path / f"in{src}")
    out = tmp_path / f"out{dst}"
    r = ok("eval", NEURON_FILE, "--points", points, "-o", str(out))
    assert r.stdout == ""
    cols, got = read_output(out)
    assert cols == HEADER
    np.testing.assert_allclose(got, neuron(d), rtol=1e-12, atol=1e-300)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_columnar_readers_in_small_chunks_equal_plain_batch(tmp_path):
    """Chunks of 300 rows cut across the files' row groups and batches: identical arrays."""
    d = data(2000, seed=3)
    tape, _ = parse(Path(NEURON_FILE).read_text())
    csv = write_points(d, tmp_path / "p.csv")
    with open(csv, encoding="utf-8", newline="") as fh:
        ref = list(run_batch(tape, CsvPoints(csv, fh), {}, NAMES, rows=300))
    from gradcli.columnar import open_points

    for ext in (".parquet", ".feather", ".arrows", ".npz", ".npy"):
        reader = open_points(write_points(d, tmp_path / f"p{ext}"))
        chunks = list(run_batch(tape, reader, {}, NAMES, rows=300))
        assert max(len(c) for c in chunks) <= 300 and len(chunks) >= 7, ext
        starts = np.cumsum([0] + [len(c) for c in chunks])[:-1] + 1
        assert [c.first_row for c in chunks] == starts.tolist(), ext
        for get in [lambda c: c.value] + [lambda c, x=x: c.grads[x] for x in NAMES]:
            np.testing.assert_array_equal(np.concatenate([get(c) for c in chunks]),
                                          np.concatenate([get(c) for c in ref]))


def test_polars_csv_blocks_equal_the_line_reader(tmp_path):
    """Blocks of 64 bytes, CRLF, blank lines, spaces and a BOM: polars' blocks and the ones it
    hands to the line reader give exactly what numpy's line reader gives."""
    text = "\ufeffa , b\r\n" + "".join(
        f"{k * 0.5}, {-k / 3!r}\r\n" + ("\r\n" if k % 7 == 0 else "") for k in range(200))
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    fast = FastCsvPoints(str(path), block_bytes=64)
    with open(path, encoding="utf-8", newline="") as fh:
        slow = CsvPoints(str(path), fh)
        want = [b for _, b in slow.chunks(50)]
    got = [b for _, b in fast.chunks()]
    assert fast.columns == slow.columns == ["a", "b"]
    for name in ("a", "b"):
        np.testing.assert_array_equal(np.concatenate([b[name] for b in got]),
                                      np.concatenate([b[name] for b in want]))
    assert fast.rows_read == 200


def test_polars_csv_bad_cell_names_line_and_column_in_a_later_block(tmp_path):
    lines = ["a,b"] + [f"{k},{k}" for k in range(1, 300)]
    lines[250] = "7,x7"  # line 251 of the file
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        list(FastCsvPoints(str(path), block_bytes=128).chunks())
    assert info.value.message == f"{path} line 251, column b: 'x7' is not a number"
    msg = fails("eval", "a*b", "--points", str(path))
    assert "line 251" in msg and "column b" in msg and "'x7'" in msg


# -- --keep and several outputs -------------------------------------------------------------------

def test_keep_all_columns_in_front(tmp_path):
    d = data(50)
    points = write_points(d, tmp_path / "p.parquet")
    out = tmp_path / "o.csv"
    ok("eval", NEURON_FILE, "--points", points, "--keep", "-o", str(out))
    cols, got = read_output(out)
    assert cols == NAMES + HEADER
    np.testing.assert_array_equal(got[:, :5], np.column_stack([d[n] for n in NAMES]))
    np.testing.assert_allclose(got[:, 5:], neuron(d), rtol=1e-12)


def test_keep_some_columns_and_json_lines_rows(tmp_path):
    d = data(40)
    points = write_points(d, tmp_path / "p.csv")
    r = ok("eval", NEURON_FILE, "--points", points, "--keep", "x1,w0", "--json")
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [doc["row"] for doc in docs] == list(range(1, 41))
    assert list(docs[0]) == ["schema_version", "row", "inputs", "value", "gradient"]
    assert [list(doc["inputs"].values()) for doc in docs] == \
        np.column_stack([d["x1"], d["w0"]]).tolist()
    header = ok("eval", NEURON_FILE, "--points", points, "--keep", "x1,w0").stdout.split("\n")[0]
    assert header == "x1,w0," + ",".join(HEADER)


def test_keep_alone_before_another_option(tmp_path):
    points = write_points({"a": np.array([1.0, 2.0])}, tmp_path / "p.csv")
    r = ok("eval", "3*a", "--points", points, "--keep", "--json")
    assert json.loads(r.stdout.splitlines()[1])["inputs"] == {"a": 2.0}


def test_keep_unknown_column(tmp_path):
    points = write_points(data(3), tmp_path / "p.csv")
    msg = fails("eval", NEURON_FILE, "--points", points, "--keep", "w0,zz")
    assert "--keep zz" in msg and "p.csv" in msg


def test_several_outputs_named_by_the_program(tmp_path):
    """A staged program's own output names; each output's gradient against evaluate."""
    program = "q = a * b\nr = sin(a) + b\nq, r"
    d = {"a": np.array([0.5, -1.0, 2.0]), "b": np.array([3.0, 0.25, -2.0])}
    points = write_points(d, tmp_path / "p.npz")
    out = tmp_path / "o.parquet"
    ok("eval", program, "--points", points, "--keep", "a", "-o", str(out))
    cols, got = read_output(out)
    assert cols == ["a", "q", "d_q_a", "d_q_b", "r", "d_r_a", "d_r_b"]
    for row, (a, b) in zip(got, zip(d["a"], d["b"])):
        e = evaluate(program, at={"a": a, "b": b})
        want = [a, e.value[0], *e.jacobian[0].values(), e.value[1], *e.jacobian[1].values()]
        np.testing.assert_allclose(row, want, rtol=1e-15)
    r = ok("eval", "a*b, a-b", "--points", points, "--json")
    doc = json.loads(r.stdout.splitlines()[2])
    assert doc["value"] == [-4.0, 4.0] and doc["jacobian"] == [{"a": -2.0, "b": 2.0},
                                                               {"a": 1.0, "b": -1.0}]


# -- errors ---------------------------------------------------------------------------------------

def test_missing_column_in_parquet(tmp_path):
    points = write_points({"a": np.ones(3)}, tmp_path / "p.parquet")
    msg = fails("eval", "a*b", "--points", points)
    assert "p.parquet has no column for b" in msg


def test_string_column_and_null_cell_in_parquet(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": ["1", "x"]}), path)
    assert "s.parquet, column b" in fails("eval", "a*b", "--points", str(path))
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, None], "b": [1.0, 2.0, 3.0]}), path)
    msg = fails("eval", "a*b", "--points", str(path))
    assert "n.parquet row 3, column a" in msg and "empty" in msg


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table(data(100)), good)
    path.write_bytes(good.read_bytes()[: 400])
    msg = fails("eval", NEURON_FILE, "--points", str(path))
    assert "bad.parquet" in msg and "Parquet" in msg
    path.write_text("w0,x0\n1,2\n")
    assert "bad.parquet" in fails("eval", NEURON_FILE, "--points", str(path))


def test_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    msg = fails("eval", "a", "--points", str(path))
    assert "p.npz" in msg and "pickle" in msg.lower()


def test_bad_row_leaves_no_output_file(tmp_path):
    """A bad row in a later chunk: no file under -o's name, no temporary left, an old file kept."""
    lines = ["a,b"] + [f"{k},1" for k in range(1, 100_001)]
    lines[90_000] = "1,oops"
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    for name in ("o.csv", "o.parquet", "o.jsonl"):
        msg = fails("eval", "a*b", "--points", str(path), "-o", str(tmp_path / name))
        assert "line 90001" in msg
        assert not (tmp_path / name).exists()
    (tmp_path / "o.csv").write_text("old\n")
    fails("eval", "a*b", "--points", str(path), "-o", str(tmp_path / "o.csv"))
    assert (tmp_path / "o.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "p.csv"]


def test_output_format_choices(tmp_path):
    points = write_points(data(5), tmp_path / "p.csv")
    assert "Parquet" in fails("eval", NEURON_FILE, "--points", points, "--output-format",
                              "parquet")
    assert "disagree" in fails("eval", NEURON_FILE, "--points", points, "-o",
                               str(tmp_path / "o.csv"), "--output-format", "jsonl")
    assert ".xyz" in fails("eval", NEURON_FILE, "--points", points, "-o", str(tmp_path / "o.xyz"))
    assert "-o" in fails("eval", NEURON_FILE, "--points", points, "-o", points)
    r = ok("eval", NEURON_FILE, "--points", points, "--output-format", "jsonl")
    assert json.loads(r.stdout.splitlines()[0])["row"] == 1


def test_plain_csv_works_without_the_extra_and_names_it_for_the_rest(tmp_path):
    """polars and pyarrow unimportable: CSV as ever, Parquet an exit-2 naming the extra."""
    points = write_points(data(20), tmp_path / "p.csv")
    parquet = write_points(data(20), tmp_path / "p.parquet")
    code = ("import sys\nfor m in ('polars', 'pyarrow', 'pyarrow.parquet'): sys.modules[m] = None\n"
            "from gradcli.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "NO_COLOR": "1"}
    p = subprocess.run([sys.executable, "-c", code, "eval", NEURON_FILE, "--points", points],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    header, body = p.stdout.split("\n", 1)
    assert header.split(",") == HEADER
    np.testing.assert_allclose(np.loadtxt(io.StringIO(body), delimiter=","),
                               neuron(data(20)), rtol=1e-14)
    p = subprocess.run([sys.executable, "-c", code, "eval", NEURON_FILE, "--points", parquet],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "pip install 'gradcli[scale]'" in p.stderr
    assert "Traceback" not in p.stderr


# -- Dask -----------------------------------------------------------------------------------------

def test_unreachable_scheduler(tmp_path):
    pytest.importorskip("distributed")
    points = write_points(data(10), tmp_path / "p.parquet")
    msg = fails("eval", NEURON_FILE, "--points", points, "--dask", "tcp://127.0.0.1:9",
                "-o", str(tmp_path / "out"))
    assert "tcp://127.0.0.1:9" in msg and "scheduler" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet"]


def test_dask_local_cluster_equals_plain_batch_row_for_row(tmp_path):
    """A real distributed.LocalCluster (2 worker processes) over 4 Parquet parts: the result
    folder, read in order, equals single-machine batch mode row for row, bit for bit."""
    pytest.importorskip("distributed")
    from gradcli import cluster
    from gradcli.commands import batchrun

    parts = tmp_path / "parts"
    parts.mkdir()
    whole = {n: [] for n in NAMES}
    for k in range(4):
        d = data(3000 + 500 * k, seed=k)
        write_points(d, parts / f"p{k}.parquet")
        for n in NAMES:
            whole[n].append(d[n])
    whole = {n: np.concatenate(v) for n, v in whole.items()}
    single = tmp_path / "single.parquet"
    write_points(whole, tmp_path / "all.parquet")
    ok("eval", NEURON_FILE, "--points", str(tmp_path / "all.parquet"), "--keep", "w0",
       "-o", str(single))

    made = []
    real = cluster.Cluster

    def two_workers(address, workers=None):
        c = real(address, workers=2)
        made.append(c)
        return c

    out = tmp_path / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(cluster, "Cluster", two_workers)
    try:
        r = ok("eval", NEURON_FILE, "--points", str(parts / "*.parquet"), "--keep", "w0",
               "--dask", "-o", str(out))
    finally:
        mp.undo()
    assert len(made) == 1 and made[0].local is not None
    assert sorted(p.name for p in out.iterdir()) == [f"part.{k:05d}.parquet" for k in range(4)]
    assert "rows in 4 Parquet parts" in r.stderr
    cols, got = read_output(out)
    cols_single, want = read_output(single)
    assert cols == cols_single == ["w0"] + HEADER
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got[:, 1:], neuron(whole), rtol=1e-12)
    assert batchrun  # the CLI's path was the one taken
