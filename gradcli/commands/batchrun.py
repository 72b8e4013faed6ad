"""`eval --points FILE`'s run (a helper of commands/eval.py, not a command): open the points,
sweep chunk by chunk, write CSV / JSON Lines / Parquet to stdout or -o; or, with --dask, hand
the partitions to a Dask cluster and write a folder of Parquet parts."""

from __future__ import annotations

import sys
from typing import Optional

from ..errors import InputError


def run_points(s, path: str, as_json: bool, keep: Optional[str], out: Optional[str],
               output_format: Optional[str], dask: Optional[str]) -> None:
    """Batch mode, on this machine or (dask is not None) on a Dask cluster."""
    if dask is not None:
        _run_dask(s, path, keep, out, output_format, as_json, None if dask in ("", "local")
                  else dask)
        return
    from ..batch import batch
    from ..render.batchfiles import Target, column_names, open_sink, output_format as fmt_of
    from ..render.batchfiles import write_batch
    from ..render.console import file_bar, warn

    fmt = fmt_of(out, output_format, as_json)
    chunks = batch(s, path, sys.stdin if path == "-" else None, keep)
    first = next(chunks)  # the checks run, and the first chunk is read, before any output
    warn(s.warnings)
    kept = list(first.kept)
    columns = column_names(s.tape, s.wrt, kept)
    inputs = [p for p in (path, getattr(s, "path", None)) if p and p != "-"]
    target = Target(out, inputs)
    try:
        sink = open_sink(fmt, target, columns, s.wrt, kept, _polars_read(path))
    except BaseException:
        target.abort()
        raise
    progress = file_bar(path)
    try:
        write_batch(_chain(first, chunks), sink, target, progress)
    finally:
        if progress is not None:
            progress.close()


def _polars_read(path: str) -> bool:
    """Whether polars read the points (a CSV file, polars installed): then polars writes
    Parquet too, and pyarrow is not imported."""
    from ..columnar import kind_of

    return path != "-" and kind_of(path) == "csv" and "polars" in sys.modules


def _chain(first, rest):
    yield first
    yield from rest


def _run_dask(s, path: str, keep: Optional[str], out: Optional[str],
              output_format: Optional[str], as_json: bool, address: Optional[str]) -> None:
    from .. import cluster
    from ..render.batchfiles import FolderTarget, column_names, write_parquet_part
    from ..render.console import Bar, warn

    if as_json or output_format not in (None, "parquet"):
        raise InputError("--dask writes a folder of Parquet parts (-o out/); JSON Lines and CSV "
                         "are for batch mode on this machine")
    if path == "-":
        raise InputError("--dask reads its points from files (a path, a glob, an fsspec URL), "
                         "not from standard input")
    target = FolderTarget(out)
    try:
        frame, plan, kept = cluster.prepare(s, path, keep)
        columns = column_names(s.tape, s.wrt, kept)
        warn(s.warnings)
        client = cluster.Cluster(address)
        bar = Bar(frame.npartitions, "partitions") if sys.stderr.isatty() else None
        try:
            parts, rows = cluster.run(client, frame, plan, kept, columns, write_parquet_part,
                                      target.folder, bar and (lambda done, _n: bar.update(done)))
        finally:
            if bar is not None:
                bar.close()
            client.close()
        target.commit()
    except BaseException:
        target.abort()
        raise
    from ..render.console import note

    note(f"{rows} rows in {parts} Parquet parts under {target.out}/")
