"""Points files for batch mode, read in chunks: CSV, Parquet, Arrow IPC/Feather, .npz/.npy.

Every reader has the same face: `path`, `columns` (the names in the file), `chunks(rows)`
yielding (first line or row, {column: float64 array}) one bounded block at a time, `rows_read`
and `done` (bytes of the file read so far, for the progress bar).

CSV is read by polars when it is installed (`pip install 'gradcli[scale]'`): blocks of bytes cut
at a newline and parsed in native code, with gradcli's own line-by-line reader taking over a
block polars refuses or leaves gaps in (blank lines, empty cells), so messages name the line and
column exactly as without it. Parquet and Arrow files are read by pyarrow, batch by batch; .npz
and .npy by numpy with allow_pickle=False (nothing is ever unpickled). The heavy libraries are
imported inside the functions that need them.
"""

from __future__ import annotations

import io
import os
from typing import Iterator, Sequence

import numpy as np

from .errors import InputError
from .scalars import scalar

#: Rows per chunk: what is in flight (read ahead, swept, queued for the writer) stays a few MB,
#: so peak memory is flat in the file's length (65536 added ~40 MB at 10^6 rows)
CHUNK_ROWS = 32768
#: CSV bytes read per row asked for: one block of polars' CSV reader is this many times the
#: chunk's rows (4 MiB for 32768 rows; the line reader reads `rows` lines)
CSV_BYTES_PER_ROW = 128
INSTALL = "pip install 'gradcli[scale]'"
PARQUET = (".parquet", ".pq")
ARROW = (".arrow", ".feather", ".ipc", ".arrows")
NUMPY = (".npz", ".npy")


def need(module: str, what: str):
    """Import an optional library, or say which extra brings it (exit 2)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{what} needs {module.split('.')[0]}, which is not installed: "
                         f"{INSTALL}") from None


def has(module: str) -> bool:
    """Whether an optional library can be imported (it is imported, as its use would)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def kind_of(path: str) -> str:
    """csv, parquet, arrow, npz or npy, by the file's extension (CSV when it has none)."""
    low = path.lower()
    if low.endswith(PARQUET):
        return "parquet"
    if low.endswith(ARROW):
        return "arrow"
    if low.endswith(".npz"):
        return "npz"
    if low.endswith(".npy"):
        return "npy"
    return "csv"


def open_points(path: str, stream: io.TextIOBase | None = None):
    """The reader for `path` (by its extension), or for `stream` (CSV text, e.g. stdin)."""
    kind = "csv" if stream is not None else kind_of(path)
    if kind == "parquet":
        return ParquetPoints(path)
    if kind == "arrow":
        return ArrowPoints(path)
    if kind in ("npz", "npy"):
        return NumpyPoints(path)
    if stream is None and has("polars"):
        return FastCsvPoints(path)
    return CsvPoints(path, stream)


# -- CSV ------------------------------------------------------------------------------------------

def header_columns(path: str, header: str, line: int) -> list[str]:
    """The variable names of a CSV header line, checked: names, none twice."""
    header = header.lstrip("\ufeff")
    columns = [c.strip() for c in header.rstrip("\r\n").split(",")]
    for k, name in enumerate(columns):
        if not name.isidentifier():
            raise InputError(f"{path} line {line}: column {k + 1} of the header, {name!r}, is "
                             "not a variable name")
    seen = set()
    for name in columns:
        if name in seen:
            raise InputError(f"{path} line {line}: the header names {name} twice")
        seen.add(name)
    return columns


#: The longest line of a points file (characters): a row of 10^5 numbers fits; a file without
#: newlines (/dev/zero) is refused here rather than read into memory.
MAX_LINE_CHARS = 1 << 24


def long_line(path: str, line: int) -> InputError:
    from .errors import LimitError

    return LimitError(f"{path} line {line} is longer than {MAX_LINE_CHARS >> 20} MB: gradcli "
                      "reads points files of shorter lines (one row of numbers per line)")


def _empty(path: str) -> InputError:
    return InputError(f"{path} is empty: the first line must name the variables, as in x,y,z")


def parse_lines(path: str, columns: Sequence[str], lines: Sequence[str],
                start: int) -> np.ndarray | None:
    """CSV lines (the first is line `start`) as a float64 table; None when all are blank.
    A bad row is an InputError naming its line and column."""
    kept = [ln for ln in lines if ln.strip()]
    if not kept:
        return None
    try:
        table = np.loadtxt(kept, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
        if table.shape[1] != len(columns):
            raise ValueError("width")
    except ValueError:
        bad_cell(path, columns, lines, start)
        raise  # pragma: no cover - bad_cell always raises
    return table


def bad_cell(path: str, columns: Sequence[str], lines: Sequence[str], start: int) -> None:
    """Raise the InputError for the first bad row of `lines`: its line, its column."""
    ncol = len(columns)
    for offset, ln in enumerate(lines):
        if not ln.strip():
            continue
        cells = ln.rstrip("\r\n").split(",")
        where = f"{path} line {start + offset}"
        if len(cells) != ncol:
            raise InputError(f"{where} has {len(cells)} cells; the header has {ncol}")
        for name, cell in zip(columns, cells):
            if not cell.strip():
                raise InputError(f"{where}, column {name}: the cell is empty")
            try:
                scalar(name, cell)
                float(cell)
            except (InputError, ValueError):
                raise InputError(f"{where}, column {name}: {cell.strip()[:40]!r} is not a "
                                 "number") from None
    raise InputError(f"{path}: a row near line {start} cannot be read")


def _open(path: str, mode: str = "r"):
    try:
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


class CsvPoints:
    """A CSV file of points read line by line (numpy only): a header of variable names, then
    one row of numbers per point. Used for standard input and when polars is not installed."""

    def __init__(self, path: str, stream: io.TextIOBase | None = None):
        self.path = path
        self.fh = stream if stream is not None else _open(path)
        self.line = 0
        header = self._next_line()
        while header is not None and not header.strip():
            header = self._next_line()
        if header is None:
            raise _empty(path)
        self.columns = header_columns(path, header, self.line)
        self.rows_read = 0
        self.done = len(header)

    def _next_line(self) -> str | None:
        line = self.fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return None
        self.line += 1
        if len(line) > MAX_LINE_CHARS:
            raise long_line(self.path, self.line)
        return line

    @property
    def chars_read(self) -> int:
        return self.done

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(line number of the chunk's first row, {column: float64 array}) per chunk."""
        while True:
            start = self.line + 1
            lines = []
            for _ in range(rows):  # readline with a bound: /dev/zero is no endless line
                line = self.fh.readline(MAX_LINE_CHARS + 1)
                if not line:
                    break
                if len(line) > MAX_LINE_CHARS:
                    raise long_line(self.path, start + len(lines))
                lines.append(line)
            if not lines:
                break
            table = parse_lines(self.path, self.columns, lines, start)
            self.line += len(lines)
            self.done += sum(map(len, lines))
            if table is not None:
                self.rows_read += table.shape[0]
                yield start, {name: table[:, k] for k, name in enumerate(self.columns)}


class FastCsvPoints:
    """A CSV file read by polars in blocks of bytes cut at a newline (memory: one block)."""

    def __init__(self, path: str, block_bytes: int | None = None):
        self.path = path
        self.fh = _open(path, "rb")
        self.block_bytes = block_bytes
        self.line = 0
        header = self.fh.readline(MAX_LINE_CHARS + 1)
        self.line = 1
        while header and not header.strip():
            header = self.fh.readline(MAX_LINE_CHARS + 1)
            self.line += 1
        if len(header) > MAX_LINE_CHARS:
            raise long_line(path, self.line)
        if not header:
            raise _empty(path)
        self.columns = header_columns(path, header.decode("utf-8"), self.line)
        self.rows_read = 0
        self.done = len(header)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        import polars as pl

        # big blocks: polars' per-call cost and its threads' start-up are paid once per block
        size = self.block_bytes or max(rows * CSV_BYTES_PER_ROW, 1 << 12)
        schema = {name: pl.Float64 for name in self.columns}
        rest = b""
        while True:
            data = self.fh.read(size)
            if data:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # one very long line: read on until its end
                    rest += data
                    if len(rest) > MAX_LINE_CHARS:
                        raise long_line(self.path, self.line + 1)
                    continue
                # one copy of the block (the bytes after its last newline start the next)
                block = b"".join((rest, memoryview(data)[:cut]))
                rest = data[cut:]
                del data
            else:
                block, rest = rest, b""
                if not block:
                    break
            start = self.line + 1
            table, nlines = self._parse(pl, schema, block, start)
            self.line += nlines
            self.done += len(block)
            if table is not None:
                n = len(next(iter(table.values())))
                self.rows_read += n
                yield start, table

    def _parse(self, pl, schema, block: bytes,
               start: int) -> tuple[dict[str, np.ndarray] | None, int]:
        """The block's columns (None when all its lines are blank) and its number of lines.
        A block polars reads without an empty cell has one row per line (a blank line is a row
        of nulls to polars), so its lines are not counted; any other goes to the line reader."""
        try:
            frame = pl.read_csv(block, has_header=False, schema=schema, quote_char=None)
            ok = not any(col.null_count() for col in frame.iter_columns())
        except Exception:  # polars refuses the block: the line-by-line reader says why
            ok = False
        if ok:
            return ({name: frame.get_column(name).to_numpy() for name in self.columns},
                    frame.height)
        nlines = block.count(b"\n") + (not block.endswith(b"\n"))
        lines = block.decode("utf-8").splitlines(keepends=True)
        table = parse_lines(self.path, self.columns, lines, start)
        if table is None:
            return None, nlines
        return {name: table[:, k] for k, name in enumerate(self.columns)}, nlines


# -- Parquet and Arrow ----------------------------------------------------------------------------

def _numeric_type(pa, t) -> bool:
    types = pa.types
    return (types.is_integer(t) or types.is_floating(t) or types.is_boolean(t)
            or types.is_decimal(t))


class _ArrowBatches:
    """What the Parquet and Arrow readers share: the schema's check and the batches' columns."""

    path: str
    columns: list[str]

    def _setup(self, schema, size: int, total_rows: int | None) -> None:
        import pyarrow as pa

        self.pa = pa
        self.columns = list(schema.names)
        self.types = {f.name: f.type for f in schema}
        self.size = size
        self.total_rows = total_rows
        self.rows_read = 0
        self.done = 0
        self.wanted: list[str] | None = None

    def want(self, names: Sequence[str]) -> None:
        """Read only these columns; each must hold numbers."""
        for name in names:
            t = self.types[name]
            if not _numeric_type(self.pa, t):
                raise InputError(f"{self.path}, column {name}: its type is {t}, not numbers")
        self.wanted = list(names)

    def _block(self, batch, first_row: int) -> dict[str, np.ndarray]:
        pa = self.pa
        out = {}
        for name in (self.wanted if self.wanted is not None else self.columns):
            col = batch.column(batch.schema.get_field_index(name))
            if col.null_count:
                k = int(np.flatnonzero(~np.asarray(col.is_valid()))[0])
                raise InputError(f"{self.path} row {first_row + k}, column {name}: the cell is "
                                 "empty (null)")
            if col.type != pa.float64():
                col = col.cast(pa.float64())
            out[name] = _float64s(col)
        return out

    def _advance(self, n: int) -> None:
        self.rows_read += n
        if self.total_rows:
            self.done = int(self.size * self.rows_read / self.total_rows)


def _float64s(col) -> np.ndarray:
    """A float64 Arrow array without nulls as numpy, read from its data buffer: the array's own
    to_numpy() imports pandas when it is installed (~0.3 s of a 1 s run). Copied: a view would
    hold the Arrow buffer alive for the chunk's life, which grew peak memory by a quarter at
    10^6 rows (the Arrow pool keeps what it frees late)."""
    data = np.frombuffer(col.buffers()[1], dtype=np.float64, count=len(col), offset=col.offset * 8)
    return data.copy()


def _unreadable(path: str, what: str, exc: BaseException) -> InputError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"cannot read {path} as {what}: {detail[:200]}")


class ParquetPoints(_ArrowBatches):
    """A Parquet file, read batch by batch (memory: one batch of the wanted columns)."""

    def __init__(self, path: str):
        pq = need("pyarrow.parquet", "reading Parquet")
        self.path = path
        if not os.path.exists(path):
            raise InputError(f"cannot read {path}: No such file or directory")
        try:
            # pre_buffer would read ahead whole row groups (the whole file, in effect): off,
            # so memory stays one batch (10^7 rows: 100 MiB with it off, 460 MiB on)
            self.file = pq.ParquetFile(path, pre_buffer=False)
            schema = self.file.schema_arrow
            total = self.file.metadata.num_rows
        except Exception as exc:  # pyarrow's ArrowInvalid, OSError...
            raise _unreadable(path, "Parquet", exc) from None
        self._setup(schema, os.path.getsize(path), total)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        try:
            batches = self.file.iter_batches(batch_size=rows, columns=self.wanted)
            for batch in batches:
                first = self.rows_read + 1
                block = self._block(batch, first)
                self._advance(batch.num_rows)
                if batch.num_rows:
                    yield first, block
        except InputError:
            raise
        except Exception as exc:
            raise _unreadable(self.path, "Parquet", exc) from None


class ArrowPoints(_ArrowBatches):
    """An Arrow IPC file (Feather v2) or stream, record batch by record batch."""

    def __init__(self, path: str):
        pa = need("pyarrow", "reading Arrow IPC / Feather")
        import pyarrow.ipc as ipc

        self.path = path
        if not os.path.exists(path):
            raise InputError(f"cannot read {path}: No such file or directory")
        try:
            source = pa.memory_map(path)
            try:
                self.reader = ipc.open_file(source)
                self.batches = (self.reader.get_batch(i)
                                for i in range(self.reader.num_record_batches))
            except pa.ArrowInvalid:
                self.reader = ipc.open_stream(pa.memory_map(path))
                self.batches = iter(self.reader)
            schema = self.reader.schema
        except Exception as exc:
            raise _unreadable(path, "Arrow IPC / Feather", exc) from None
        self._setup(schema, os.path.getsize(path), None)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        try:
            for batch in self.batches:
                for k in range(0, batch.num_rows, rows):
                    part = batch.slice(k, rows)
                    first = self.rows_read + 1
                    block = self._block(part, first)
                    self._advance(part.num_rows)
                    self.done = min(self.size, self.done + part.nbytes)
                    yield first, block
        except InputError:
            raise
        except Exception as exc:
            raise _unreadable(self.path, "Arrow IPC / Feather", exc) from None


# -- numpy ----------------------------------------------------------------------------------------

class NumpyPoints:
    """Columns from numpy: a .npz of 1-D arrays (one per variable) or a .npy structured array
    (one field per variable). np.load with allow_pickle=False: object arrays are refused."""

    def __init__(self, path: str):
        self.path = path
        try:
            if path.lower().endswith(".npy"):
                data = np.load(path, allow_pickle=False, mmap_mode="r")
                if data.dtype.names is None:
                    raise InputError(f"{path} holds one array of shape {data.shape} without "
                                     "column names: save a structured array (one field per "
                                     "variable) or a .npz of 1-D arrays (np.savez(path, x=..., "
                                     "y=...))")
                arrays = {name: data[name] for name in data.dtype.names}
            else:
                npz = np.load(path, allow_pickle=False)
                arrays = {name: npz[name] for name in npz.files}
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(f"cannot read {path}: No such file or directory") from None
        except Exception as exc:  # a bad zip, object arrays (pickles), a truncated file
            raise _unreadable(path, "numpy data", exc) from None
        if not arrays:
            raise InputError(f"{path} holds no arrays")
        lengths = set()
        for name, a in arrays.items():
            if a.ndim != 1:
                raise InputError(f"{path}, column {name}: shape {a.shape}; each column must be "
                                 "1-D (one value per point)")
            if a.dtype.kind not in "biuf":
                raise InputError(f"{path}, column {name}: its type is {a.dtype}, not numbers")
            lengths.add(len(a))
        if len(lengths) != 1:
            raise InputError(f"{path}: the columns have different lengths "
                             f"({', '.join(f'{n} {len(a)}' for n, a in arrays.items())})")
        self.arrays = arrays
        self.columns = list(arrays)
        self.total_rows = lengths.pop()
        self.size = os.path.getsize(path)
        self.rows_read = 0
        self.done = 0

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for k in range(0, self.total_rows, rows):
            block = {name: np.asarray(a[k:k + rows], dtype=np.float64)
                     for name, a in self.arrays.items()}
            self.rows_read += len(next(iter(block.values())))
            self.done = int(self.size * self.rows_read / max(self.total_rows, 1))
            yield k + 1, block
