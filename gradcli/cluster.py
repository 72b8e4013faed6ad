"""Batch mode on a Dask cluster (`eval --points 'data/*.parquet' --dask [ADDRESS]`).

The same chunk function as on one machine (batch.sweep) runs over the partitions of a Dask
DataFrame (map_partitions) on a `distributed` cluster: the one at ADDRESS, or a LocalCluster of
worker processes when none is given. The Plan (the per-row tape and the --at values) is
scattered to the workers once; each partition's result is written as one Parquet file by the
writer the caller passes in (render/batchfiles), and each finished partition is reported to
`on_done` for the progress bar. dask and distributed are imported here, lazily.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .batch import CHUNK_ROWS, Plan, keep_columns, plan_for, sweep
from .columnar import kind_of, need
from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

CONNECT_TIMEOUT = "5s"


class Cluster:
    """A Dask client and, when gradcli started it, its LocalCluster (closed together)."""

    def __init__(self, address: str | None, workers: int | None = None):
        distributed = need("distributed", "--dask")
        import logging

        self.address = address
        self.local = None
        try:
            if address:
                self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT,
                                                 set_as_default=False)
            else:
                n = workers or max(1, min(os.cpu_count() or 1, 8))
                self.local = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR)
                self.client = distributed.Client(self.local, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            where = address or "a local cluster"
            raise InputError(f"cannot reach the Dask scheduler at {where}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
                             ) from None

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.local is not None:
                self.local.close()


def read_frame(path: str):
    """The points as a Dask DataFrame: Parquet (a file, a folder, a glob, an fsspec URL) or
    CSV; a file that cannot be read is an InputError naming it."""
    need("dask.dataframe", "--dask")
    import dask.dataframe as dd

    kind = kind_of(path.rstrip("/*"))
    try:
        if kind == "parquet" or not os.path.splitext(path.rstrip("/"))[1]:
            frame = dd.read_parquet(path)
        elif kind == "csv":
            frame = dd.read_csv(path, dtype=np.float64, skipinitialspace=True)
        else:
            raise InputError(f"--dask reads Parquet or CSV points; {path} is {kind}")
    except InputError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read {path}: {detail[:200]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def partition(frame, plan: Plan, keep: Sequence[str], columns: Sequence[str]):
    """One partition (a pandas DataFrame) through the sweeps, chunk by chunk: the output frame."""
    import pandas as pd

    n = len(frame)
    data = {name: frame[name].to_numpy(dtype=np.float64) for name in plan.needs + list(keep)}
    pieces: list[list[np.ndarray]] = [[] for _ in columns]
    for s in range(0, n, CHUNK_ROWS):
        block = {name: col[s:s + CHUNK_ROWS] for name, col in data.items()}
        values, jacobian = sweep(plan, block, min(CHUNK_ROWS, n - s))
        cols = [block[k] for k in keep]
        for value, grads in zip(values, jacobian):
            cols.append(value)
            cols += [grads[x] for x in plan.wrt]
        for k, c in enumerate(cols):
            pieces[k].append(np.asarray(c, dtype=np.float64))
    out = {name: (np.concatenate(p) if p else np.zeros(0)) for name, p in zip(columns, pieces)}
    return pd.DataFrame(out, index=frame.index)


def prepare(s: "Session", path: str, keep: str | None):
    """Read the frame's columns, check the formula against them: (frame, plan, kept columns)."""
    frame = read_frame(path)
    columns = list(frame.columns)
    kept = keep_columns(keep, columns, path)
    plan = plan_for(s.tape, columns, s.point, s.wrt, path)
    for name in plan.needs + kept:
        if frame[name].dtype.kind not in "biuf":
            raise InputError(f"{path}, column {name}: its type is {frame[name].dtype}, not "
                             "numbers")
    unused = [c for c in columns if c not in s.tape.variables and c not in kept]
    if unused:
        s.warnings.append(f"{path}: column{'s' if len(unused) > 1 else ''} "
                          f"{', '.join(unused[:5])} not used by the formula")
    return frame, plan, kept


def run(cluster: Cluster, frame, plan: Plan, kept: Sequence[str], columns: Sequence[str],
        write_part: Callable, folder: str, on_done: Callable[[int, int], None] | None = None
        ) -> tuple[int, int]:
    """map_partitions over the frame on the cluster, one Parquet part per partition written by
    `write_part(frame, path)` into `folder`: (partitions, rows)."""
    with cluster.client.as_current():
        return _run(cluster.client, frame, plan, kept, columns, write_part, folder, on_done)


def _run(client, frame, plan, kept, columns, write_part, folder, on_done) -> tuple[int, int]:
    import dask
    import pandas as pd
    from distributed import as_completed

    shipped = client.scatter(plan, broadcast=True)  # the tape goes to each worker once
    meta = pd.DataFrame({name: np.zeros(0) for name in columns})
    parts = frame.map_partitions(partition, shipped, list(kept), list(columns), meta=meta,
                                 enforce_metadata=False)
    pieces = parts.to_delayed()
    writes = [dask.delayed(write_part)(p, _join(folder, f"part.{k:05d}.parquet"))
              for k, p in enumerate(pieces)]
    futures = client.compute(writes)
    rows = 0
    done = 0
    try:
        for future in as_completed(futures):
            rows += future.result()
            done += 1
            if on_done is not None:
                on_done(done, len(futures))
    except InputError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"the Dask cluster failed on a partition: {detail[:300]}") from None
    finally:
        client.cancel(futures)
    return len(futures), rows


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name if "://" in folder else os.path.join(folder, name)
