"""The fast paths of batch mode's columnar I/O (issue 13's speed targets), each against the plain
path it replaces:

- polars' CSV blocks count their lines only when a block is not clean (a clean block has one row
  per line): chunks, line numbers and error messages equal numpy's line reader's on random files
  with blank lines, CRLF, spaces and bad cells;
- Parquet written by polars (when polars read a CSV input) equals Parquet written by pyarrow (a
  Parquet input) and the CSV output, row for row;
- one columnar library per run: CSV in and out never imports pyarrow, Parquet in and out never
  imports polars; a failed run stops the Parquet writer's thread and leaves no file.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from gradcli.columnar import CsvPoints, FastCsvPoints
from gradcli.errors import InputError

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


# -- polars' CSV blocks against numpy's line reader -----------------------------------------------

def random_csv(rng: np.random.Generator, rows: int, blank: float, crlf: bool) -> tuple[str, list]:
    """A CSV text of two columns and the file line of each row (blank lines in between)."""
    eol = "\r\n" if crlf else "\n"
    out = ["a,b" + eol]
    lines = []
    line = 1
    for _ in range(rows):
        while rng.random() < blank:
            out.append(rng.choice(["", " ", "\t"]) + eol)
            line += 1
        a, b = rng.normal(size=2) * 10.0 ** rng.integers(-5, 6, size=2)
        cells = [repr(float(a)), f"{b:.17g}"]
        if rng.random() < 0.2:
            cells[1] = " " + cells[1]  # numpy reads it; polars refuses the block
        out.append(",".join(cells) + eol)
        line += 1
        lines.append(line)
    if rng.random() < 0.5:  # no newline at the end
        out[-1] = out[-1].rstrip("\r\n")
    return "".join(out), lines


def chunks_of(reader, rows: int) -> tuple[list[int], list[int], dict[str, np.ndarray]]:
    """(each chunk's first line, each chunk's rows, the columns)"""
    starts, sizes, blocks = [], [], []
    for start, block in reader.chunks(rows):
        starts.append(start)
        sizes.append(len(block["a"]))
        blocks.append(block)
    return starts, sizes, {n: np.concatenate([b[n] for b in blocks]) for n in ("a", "b")}


@pytest.mark.parametrize("seed", range(12))
def test_polars_blocks_equal_the_line_reader_on_random_files(tmp_path, seed):
    """Same numbers, same rows read, and each chunk's first line is its first row's line in the
    file (a block polars reads cleanly is not counted line by line, so this is what could go
    wrong)."""
    rng = np.random.default_rng(seed)
    text, row_lines = random_csv(rng, int(rng.integers(50, 400)), blank=[0.0, 0.02, 0.2][seed % 3],
                                 crlf=bool(seed % 2))
    path = tmp_path / "p.csv"
    path.write_bytes(text.encode())
    with open(path, encoding="utf-8", newline="") as fh:
        _, _, want = chunks_of(CsvPoints(str(path), fh), 1000)
    fast = FastCsvPoints(str(path), block_bytes=int(rng.integers(40, 2000)))
    starts, sizes, got = chunks_of(fast, 1000)
    for name in ("a", "b"):
        np.testing.assert_array_equal(got[name], want[name])
    assert fast.rows_read == len(row_lines) and len(starts) > 1
    # a chunk starts at its block's first line: its first row's, or a blank line before it
    first_rows = np.cumsum([0] + sizes)[:-1]
    for start, k in zip(starts, first_rows):
        before = row_lines[k - 1] if k else 1  # the previous row's line (or the header's)
        assert before < start <= row_lines[k]
    assert fast.done == len(text.encode())


@pytest.mark.parametrize("seed", range(8))
def test_polars_blocks_name_the_same_bad_cell_as_the_line_reader(tmp_path, seed):
    rng = np.random.default_rng(100 + seed)
    text, row_lines = random_csv(rng, 300, blank=0.05 * (seed % 2), crlf=bool(seed % 3 == 0))
    lines = text.splitlines(keepends=True)
    k = int(rng.integers(len(row_lines) // 2, len(row_lines)))  # in a later block
    line = row_lines[k]
    eol = "\r\n" if lines[line - 1].endswith("\r\n") else "\n"
    lines[line - 1] = rng.choice(["1,x7", "1,", "1,2,3", "1", ",2", "0x10,1"]) + eol
    path = tmp_path / "p.csv"
    path.write_bytes("".join(lines).encode())
    with pytest.raises(InputError) as slow:
        with open(path, encoding="utf-8", newline="") as fh:
            list(CsvPoints(str(path), fh).chunks(50))
    with pytest.raises(InputError) as fast:
        list(FastCsvPoints(str(path), block_bytes=int(rng.integers(64, 1500))).chunks(50))
    assert fast.value.message == slow.value.message
    assert f"line {line}" in fast.value.message


# -- Parquet out: polars' writer, pyarrow's writer, CSV --------------------------------------------

def points(n: int, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-3, 3, n) for name in NAMES}


def test_parquet_from_polars_equals_parquet_from_pyarrow_and_csv_row_for_row(tmp_path):
    """70 000 rows: several chunks and row groups. CSV in -> Parquet out is written by polars,
    Parquet in -> Parquet out by pyarrow; both equal the CSV output exactly."""
    d = points(70_000)
    csv = tmp_path / "p.csv"
    csv.write_text("w0,x0,w1,x1,w2\n" + "".join(
        ",".join(repr(float(d[n][k])) for n in NAMES) + "\n" for k in range(70_000)))
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table(d), parquet, row_group_size=30_000)
    ok("eval", NEURON_FILE, "--points", str(csv), "--keep", "w0", "-o", str(tmp_path / "a.parquet"))
    ok("eval", NEURON_FILE, "--points", str(parquet), "--keep", "w0", "-o",
       str(tmp_path / "b.parquet"))
    ok("eval", NEURON_FILE, "--points", str(csv), "--keep", "w0", "-o", str(tmp_path / "c.csv"))
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert "olars" in pq.ParquetFile(tmp_path / "a.parquet").metadata.created_by
    assert "arrow" in pq.ParquetFile(tmp_path / "b.parquet").metadata.created_by
    assert a.column_names == b.column_names == ["w0", "value"] + [f"d_{x}" for x in NAMES]
    assert a.schema == b.schema and a.num_rows == 70_000
    assert a.equals(b)
    head, body = (tmp_path / "c.csv").read_text().split("\n", 1)
    assert head.split(",") == a.column_names
    table = np.loadtxt(io.StringIO(body), delimiter=",")
    np.testing.assert_array_equal(np.column_stack([a[c].to_numpy() for c in a.column_names]),
                                  table)
    np.testing.assert_array_equal(a["w0"].to_numpy(), d["w0"])


def test_parquet_writer_thread_stops_and_no_file_is_left_on_a_bad_row(tmp_path):
    lines = ["a,b"] + [f"{k},1" for k in range(1, 100_001)]
    lines[80_000] = "1,oops"
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    msg = fails("eval", "a*b", "--points", str(path), "-o", str(tmp_path / "o.parquet"))
    assert "line 80001, column b: 'oops' is not a number" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]
    assert not [t for t in threading.enumerate() if t.name == "gradcli-parquet" and t.is_alive()]


# -- one columnar library per run -----------------------------------------------------------------

LOADED = ("import sys\nfrom gradcli.cli import main\ncode = main(sys.argv[1:])\n"
          "print(' '.join(m for m in ('polars', 'pyarrow') if m in sys.modules))\n"
          "sys.exit(code)\n")


@pytest.mark.parametrize("src,dst,loaded", [
    (".csv", ".csv", "polars"),
    (".csv", ".parquet", "polars"),
    (".parquet", ".parquet", "pyarrow"),
    (".parquet", ".csv", "polars pyarrow"),
])
def test_one_columnar_library_per_run(tmp_path, src, dst, loaded):
    """Each import is ~0.1 s of a 0.3-0.8 s run: CSV in and out, and CSV -> Parquet, never
    import pyarrow; Parquet -> Parquet never imports polars."""
    d = points(500)
    path = tmp_path / f"p{src}"
    if src == ".csv":
        path.write_text("w0,x0,w1,x1,w2\n" + "".join(
            ",".join(repr(float(d[n][k])) for n in NAMES) + "\n" for k in range(500)))
    else:
        pq.write_table(pa.table(d), path)
    out = tmp_path / f"o{dst}"
    p = subprocess.run([sys.executable, "-c", LOADED, "eval", NEURON_FILE, "--points", str(path),
                        "-o", str(out)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NO_COLOR": "1"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == loaded
    assert out.exists()


def test_polars_parquet_sink_that_cannot_write_raises_and_stops(tmp_path):
    """sink_parquet failing in its thread (here: no such folder) is raised by write() or close()
    in the caller, without a hang, and the thread ends."""
    from gradcli.render.batchfiles import PolarsParquetSink

    class Target:
        tmp = str(tmp_path / "no-such-folder" / "x.parquet")

    class Chunk:
        kept: dict = {}
        values = [np.ones(3)]
        jacobian = [{"a": np.ones(3)}]

    sink = PolarsParquetSink(Target(), ["value", "d_a"], ["a"], pl)
    with pytest.raises(OSError):
        for _ in range(10):
            sink.write(Chunk())
        sink.close()
    sink.thread.join(timeout=10)
    assert not sink.thread.is_alive()
