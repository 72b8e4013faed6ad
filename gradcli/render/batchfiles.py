"""Batch results to their files: CSV, JSON Lines or Parquet, to stdout or to -o FILE (written to
a temporary file beside it and moved into place when complete, so an interrupted run leaves no
half-written file under the final name), chunk by chunk, in a thread of its own.

Columns: the kept input columns (--keep), then `value,d_x,...` for one output, or for several
`f1,d_f1_x,...,f2,d_f2_x,...` named by render/names.py (a staged program's own output names).
CSV cells are numbers only, non-finite ones NaN, Infinity, -Infinity, as without the extra.
Parquet is written by pyarrow, or by polars when polars read the input (CSV).
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..errors import InputError
from .jsonout import jsonl_rows

if TYPE_CHECKING:  # pragma: no cover
    from ..batch import Chunk
    from ..tape import Tape

FORMATS = ("csv", "jsonl", "parquet")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
INSTALL = "pip install 'gradcli[scale]'"


def output_format(out: str | None, chosen: str | None, as_json: bool) -> str:
    """csv, jsonl or parquet: --output-format, else -o's extension, else --json, else CSV."""
    by_ext = None
    if out is not None and out != "-":
        ext = os.path.splitext(out)[1].lower()
        by_ext = EXTENSIONS.get(ext)
        if by_ext is None and chosen is None:
            raise InputError(f"-o {out}: cannot tell the format from {ext or 'no extension'}; "
                             "use .csv, .jsonl or .parquet, or --output-format csv|jsonl|parquet")
    if chosen is not None:
        if by_ext is not None and by_ext != chosen:
            raise InputError(f"--output-format {chosen} and -o {out} disagree")
        fmt = chosen
    else:
        fmt = by_ext or ("jsonl" if as_json else "csv")
    if as_json and fmt != "jsonl":
        raise InputError(f"--json writes JSON Lines; the output here is {fmt} ({out or ''}): "
                         "use one or the other")
    if fmt == "parquet" and (out is None or out == "-"):
        raise InputError("Parquet is a binary file: give it a name with -o FILE.parquet")
    return fmt


def column_names(tape: "Tape", wrt: Sequence[str], keep: Sequence[str] = ()) -> list[str]:
    """The output's columns: kept inputs, then value,d_x,... (or f1,d_f1_x,... for several)."""
    from .names import output_names

    if len(tape.outputs) == 1:
        cols = ["value"] + [f"d_{x}" for x in wrt]
    else:
        cols = []
        for name in output_names(tape):
            cols += [name] + [f"d_{name}_{x}" for x in wrt]
    clash = [k for k in keep if k in cols]
    if clash:
        raise InputError(f"--keep {clash[0]}: the output has a column {clash[0]} of its own; "
                         "keep the others (--keep x,y) or rename that column")
    return list(keep) + cols


def chunk_columns(chunk: "Chunk", wrt: Sequence[str]) -> list[np.ndarray]:
    """The chunk's columns in column_names' order."""
    cols = list(chunk.kept.values())
    for value, grads in zip(chunk.values, chunk.jacobian):
        cols.append(value)
        cols += [grads[x] for x in wrt]
    return cols


# -- sinks ---------------------------------------------------------------------------------------

class Target:
    """Where the bytes go: stdout, or a temporary file beside -o FILE that commit() moves into
    place and abort() removes."""

    def __init__(self, out: str | None, inputs: Sequence[str] = ()):
        self.out = out if out not in (None, "-") else None
        self.tmp = None
        if self.out is None:
            sys.stdout.flush()
            self.fh = getattr(sys.stdout, "buffer", None)
            self.text = self.fh is None
            if self.text:  # pragma: no cover - a text-only stdout
                self.fh = sys.stdout
            return
        import tempfile

        for source in inputs:
            try:
                same = os.path.exists(self.out) and os.path.samefile(self.out, source)
            except OSError:
                same = False
            if same:
                raise InputError(f"-o {self.out} is an input file itself: write the output to "
                                 "another file")
        if os.path.isdir(self.out):
            raise InputError(f"-o {self.out} is a folder (a folder of Parquet parts is --dask's "
                             "output)")
        folder = os.path.dirname(os.path.abspath(self.out))
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=".gradcli-", suffix=".part", dir=folder)
        except OSError as exc:
            raise InputError(f"cannot write {self.out}: {exc.strerror or exc}") from None
        self.fh = os.fdopen(fd, "wb")
        self.text = False

    def write(self, data: bytes) -> None:
        self.fh.write(data.decode("utf-8") if self.text else data)

    def commit(self) -> None:
        if self.tmp is None:
            self.fh.flush()
            return
        self.fh.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        os.replace(self.tmp, self.out)
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is None:
            return
        try:
            self.fh.close()
        except OSError:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass
        self.tmp = None


class CsvSink:
    """CSV: polars formats the numbers when it is installed, Python's repr otherwise (and for a
    chunk holding an infinity, which polars would write as inf)."""

    def __init__(self, target: Target, columns: Sequence[str], wrt: Sequence[str]):
        self.target, self.columns, self.wrt = target, list(columns), list(wrt)
        try:
            import polars
            self.pl = polars
        except ImportError:
            self.pl = None
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(self.columns)
        self.header = buf.getvalue().encode("utf-8")
        self.started = False

    def write(self, chunk: "Chunk") -> None:
        if not self.started:
            self.target.write(self.header)
            self.started = True
        cols = chunk_columns(chunk, self.wrt)
        if self.pl is not None and not any(np.isinf(c).any() for c in cols):
            frame = self.pl.DataFrame({f"c{k}": c for k, c in enumerate(cols)})
            if self.target.text:  # pragma: no cover - a text-only stdout
                self.target.write(frame.write_csv(include_header=False).encode("ascii"))
            else:
                frame.write_csv(self.target.fh, include_header=False)
        else:
            self.target.write(_csv_text(cols).encode("ascii"))

    def close(self) -> None:
        if not self.started:  # pragma: no cover - batch raises before: no rows
            self.target.write(self.header)


def _csv_text(cols: Sequence[np.ndarray]) -> str:
    from .jsonout import nonfinite

    def cell(v: float) -> str:
        return repr(v) if math.isfinite(v) else nonfinite(v)

    lists = [c.tolist() for c in cols]
    return "".join(",".join(map(cell, row)) + "\n" for row in zip(*lists))


class JsonlSink:
    def __init__(self, target: Target, wrt: Sequence[str], keep: Sequence[str]):
        self.target, self.wrt, self.keep = target, list(wrt), list(keep)

    def write(self, chunk: "Chunk") -> None:
        self.target.write(jsonl_rows(chunk, self.wrt, chunk.first_row, self.keep)
                          .encode("utf-8"))

    def close(self) -> None:
        pass


class ParquetSink:
    """Parquet through pyarrow's ParquetWriter, one row group per chunk. No dictionary
    encoding: gradients are all distinct, and trying it first made the writer 3× slower."""

    def __init__(self, target: Target, columns: Sequence[str], wrt: Sequence[str]):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"writing Parquet needs pyarrow, which is not installed: {INSTALL}"
                             ) from None
        self.pa, self.target, self.wrt = pa, target, list(wrt)
        self.schema = pa.schema([(name, pa.float64()) for name in columns])
        # pyarrow writes the temporary file by its name (native I/O, not a Python file object)
        self.writer = pq.ParquetWriter(target.tmp if target.tmp else target.fh, self.schema,
                                       use_dictionary=False)

    def write(self, chunk: "Chunk") -> None:
        # from the numbers' buffers: pa.array(ndarray) imports pandas when it is installed
        pa = self.pa
        arrays = [pa.Array.from_buffers(pa.float64(), len(c), [None, pa.py_buffer(c)])
                  for c in (np.ascontiguousarray(c, dtype=np.float64)
                            for c in chunk_columns(chunk, self.wrt))]
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


class PolarsParquetSink:
    """Parquet through polars' streaming sink (snappy, as pyarrow's writer), so a run reading
    CSV with polars imports no second library (pyarrow's import is ~60 ms more). The sink runs
    in a thread of its own and pulls the chunks' frames from a queue (a source of Python frames
    registered with polars), so memory holds a few chunks, whatever the number of rows."""

    def __init__(self, target: Target, columns: Sequence[str], wrt: Sequence[str], pl):
        from polars.io.plugins import register_io_source

        from ..columnar import CHUNK_ROWS

        self.pl, self.columns, self.wrt = pl, list(columns), list(wrt)
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.failure: list[BaseException] = []
        self.ended = False  # the queue's _END was taken

        def frames(with_columns, predicate, n_rows, batch_size):
            while True:
                frame = self.q.get()
                if frame is _END:
                    self.ended = True
                    return
                yield frame if with_columns is None else frame.select(with_columns)

        schema = {name: pl.Float64 for name in self.columns}
        lazy = register_io_source(frames, schema=schema)

        def run() -> None:
            try:
                # row groups of a chunk, as pyarrow's writer: polars' default (2^20 rows)
                # would buffer ~50 MB more at 10^7 rows
                lazy.sink_parquet(target.tmp, compression="snappy", row_group_size=CHUNK_ROWS)
            except BaseException as exc:  # raised by close()
                self.failure.append(exc)
                while not self.ended:  # let write() and close() return
                    self.ended = self.q.get() is _END

        self.thread = threading.Thread(target=run, name="gradcli-parquet", daemon=True)
        self.thread.start()

    def write(self, chunk: "Chunk") -> None:
        if self.failure:
            raise self.failure[0]
        cols = (np.ascontiguousarray(c, dtype=np.float64) for c in chunk_columns(chunk, self.wrt))
        self.q.put(self.pl.DataFrame(dict(zip(self.columns, cols))))

    def close(self) -> None:
        self.q.put(_END)
        self.thread.join()
        if self.failure:
            raise self.failure[0]

    def abort(self) -> None:
        """Stop the sink (the target removes what it wrote)."""
        if self.thread.is_alive():
            try:
                self.q.put(_END, timeout=5)
            except queue.Full:  # pragma: no cover - a sink stuck in a write call
                return
            self.thread.join(timeout=5)


def open_sink(fmt: str, target: Target, columns: Sequence[str], wrt: Sequence[str],
              keep: Sequence[str], polars_read: bool = False):
    """The sink of a format. Parquet: pyarrow's writer, or polars' when polars read the input
    (`polars_read`: a CSV file), so a run imports one columnar library, not both."""
    if fmt == "parquet":
        if polars_read:
            try:
                import polars
                from polars.io.plugins import register_io_source  # noqa: F401 - polars >= 1.13
            except ImportError:  # pragma: no cover - an old polars: pyarrow writes
                polars = None
            if polars is not None:
                return PolarsParquetSink(target, columns, wrt, polars)
        return ParquetSink(target, columns, wrt)
    if fmt == "jsonl":
        return JsonlSink(target, wrt, keep)
    return CsvSink(target, columns, wrt)


# -- the loop ------------------------------------------------------------------------------------

_END = object()


def write_batch(chunks: Iterable["Chunk"], sink, target: Target, progress=None) -> int:
    """Write every chunk through `sink` (a thread of its own formats and writes while the next
    chunk is swept); commit the target when all went well, remove it otherwise. Rows written."""
    q: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def drain() -> None:
        while True:
            chunk = q.get()
            if chunk is _END:
                return
            if failure:
                continue
            try:
                sink.write(chunk)
            except BaseException as exc:  # raised in the main thread below
                failure.append(exc)

    thread = threading.Thread(target=drain, name="gradcli-write", daemon=True)
    thread.start()
    rows = 0
    ok = False
    try:
        for chunk in chunks:
            if failure:
                break
            q.put(chunk)
            rows += len(chunk)
            if progress is not None:
                progress.update(chunk.chars_read)
        q.put(_END)
        thread.join()
        if failure:
            raise failure[0]
        sink.close()
        target.commit()
        ok = True
    finally:
        if not ok:
            if thread.is_alive():
                failure.append(InputError("stopped"))  # the writer skips what is left
                try:
                    q.put(_END, timeout=5)
                except queue.Full:  # pragma: no cover - a writer stuck in a write call
                    pass
                thread.join(timeout=5)
            getattr(sink, "abort", lambda: None)()  # PolarsParquetSink's thread
            target.abort()
    return rows


# -- --dask: a folder of Parquet parts -----------------------------------------------------------

def write_parquet_part(frame, path: str) -> int:
    """One partition's results (a pandas DataFrame) as one Parquet file (runs on a worker): to a
    temporary name, then moved into place; an fsspec URL (s3://...) is written directly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "://" in path:
        import fsspec

        with fsspec.open(path, "wb") as fh:
            pq.write_table(table, fh)
    else:
        tmp = path + ".part"
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    return table.num_rows


class FolderTarget:
    """-o out/ for --dask: parts go to a temporary folder beside it, moved into place whole when
    every part is written (an old out/ is replaced then); a URL is written in place."""

    def __init__(self, out: str | None):
        if out is None or out == "-":
            raise InputError("--dask writes a folder of Parquet parts: give it with -o out/")
        self.out = out.rstrip("/") or out
        self.url = "://" in out
        self.tmp = None
        if self.url:
            self.folder = self.out
            return
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise InputError(f"-o {out}: a file of that name exists; --dask writes a folder")
        import tempfile

        parent = os.path.dirname(os.path.abspath(self.out))
        try:
            self.tmp = tempfile.mkdtemp(prefix=".gradcli-", suffix=".parts", dir=parent)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
        os.chmod(self.tmp, 0o777 & ~_umask())
        self.folder = self.tmp

    def commit(self) -> None:
        if self.tmp is None:
            return
        import shutil

        old = None
        if os.path.isdir(self.out):
            old = self.tmp + ".old"
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        self.tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        if self.tmp is not None:
            import shutil

            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
