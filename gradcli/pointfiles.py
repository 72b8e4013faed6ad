"""Values read from files (`--at W=@w.npy`, `@w.csv`, `@w.json`, `@point.npz`): only real numbers,
with every size checked before anything large is loaded (.npy headers, JSON depth, dimensions),
and errors that never quote a file's contents."""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from .errors import InputError
from .scalars import scalar

#: The most elements one value may have (a tensor in --at, a file, a draw).
MAX_ELEMENTS = 100_000_000


def _array_from(name: str, data, where: str) -> np.ndarray | np.float64:
    value = _real_array(name, data, where)
    if value.ndim == 0:
        return np.float64(value)
    if value.size == 0:
        raise InputError(f"{where}: the value of {name} is empty")
    return value


#: numpy's own limit on dimensions; more is refused with a message (numpy would raise).
MAX_DIMS = 64

#: JSON nesting gradcli reads (a 64-dimension tensor needs 64): deeper is refused before json
#: recurses (10^5 levels used to end in "internal error").
MAX_JSON_DEPTH = 256


def _real_array(name: str, data, where: str) -> np.ndarray:
    """`data` (a file's array, JSON lists, an API value) as float64, or a clear refusal: complex,
    boolean, date, text and object arrays are not numbers; no more than MAX_DIMS dimensions or
    MAX_ELEMENTS elements; integers beyond float64's range are named."""
    what = f"{where}: the value of {name}"
    try:
        raw = data if isinstance(data, np.ndarray) else np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InputError(f"{what} is not a number or a rectangular array of numbers") from None
    kind = raw.dtype.kind
    if kind == "c":
        raise InputError(f"{what} holds complex numbers; gradcli works with real numbers "
                         "(give the real and imaginary parts as two variables)")
    if kind == "b":
        raise InputError(f"{what} holds booleans (true/false), not numbers; write 1 and 0")
    if kind in "mM":
        raise InputError(f"{what} holds dates or times, not numbers")
    if kind in "USV":
        raise InputError(f"{what} holds text, not numbers")
    if kind == "O":
        for x in raw.flat:
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.number)) \
                    or isinstance(x, (complex, np.complexfloating)):
                raise InputError(f"{what} is not a number or a rectangular array of numbers")
    if raw.ndim > MAX_DIMS:
        raise InputError(f"{what} has {raw.ndim} dimensions; gradcli takes up to {MAX_DIMS}")
    if raw.size > MAX_ELEMENTS:
        raise InputError(f"{what} has {raw.size:,} elements, more than the {MAX_ELEMENTS:,} "
                         "gradcli allows")
    try:
        return np.asarray(raw, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{what} holds an integer beyond float64's range (about 1.8e308)"
                         ) from None
    except (ValueError, TypeError):
        raise InputError(f"{what} is not a number or a rectangular array of numbers") from None


def _check_header(shape: tuple, dtype: np.dtype, what: str) -> None:
    """A .npy header checked before its data is read: a real-number dtype and a bounded size."""
    if dtype.kind not in "iuf" or dtype.hasobject:
        kinds = {"c": "complex numbers", "b": "booleans", "m": "times", "M": "dates",
                 "U": "text", "S": "bytes", "O": "Python objects", "V": "records"}
        raise InputError(f"{what}: the array holds {kinds.get(dtype.kind, str(dtype))}, not "
                         "real numbers")
    if len(shape) > MAX_DIMS:
        raise InputError(f"{what}: the array has {len(shape)} dimensions; gradcli takes up to "
                         f"{MAX_DIMS}")
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        raise InputError(f"{what}: the array has {size:,} elements, more than the "
                         f"{MAX_ELEMENTS:,} gradcli allows")


def _npy_header(fh, what: str) -> tuple:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        else:  # 3.0 (field names in UTF-8) is rare; anything else is not a .npy file
            raise ValueError(f"version {version}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError):
        raise InputError(f"{what}: not a valid .npy file") from None
    return shape, dtype


def _load_npy(path: str, what: str) -> np.ndarray:
    """A .npy file, its header checked first (a small file may declare a huge array)."""
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(fh, what)
    _check_header(shape, dtype, what)
    return np.load(path, allow_pickle=False)


def _load_npz(path: str, what: str) -> dict:
    """A .npz file: every member's header checked (and their total size) before any is read."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    shape, dtype = _npy_header(fh, f"{what}, {info.filename[:-4]}")
                _check_header(shape, dtype, f"{what}, {info.filename[:-4]}")
                total += math.prod(shape)
    except zipfile.BadZipFile:
        raise InputError(f"{what}: not a valid .npz file") from None
    if total > MAX_ELEMENTS:
        raise InputError(f"{what}: its arrays have {total:,} elements together, more than the "
                         f"{MAX_ELEMENTS:,} gradcli allows")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _load_json(fh, what: str):
    """JSON from a file, refused (not crashed on) when nested deeper than MAX_JSON_DEPTH."""
    text = fh.read()
    check_json_depth(text, what)
    return json.loads(text)


_JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_json_depth(text: str, what: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON text nested deeper than `limit` (json.loads recurses and would fail far
    deeper with RecursionError). One linear scan; strings are skipped."""
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for m in _JSON_BRACKETS.finditer(text):
        ch = m.group()
        if ch[0] == '"':
            continue
        if ch in "[{":
            depth += 1
            if depth > limit:
                raise InputError(f"{what}: the JSON is nested more than {limit} levels deep")
        else:
            depth -= 1


def load_file(name: str, path: str):
    """A value from a file: .npy, .csv/.txt (a matrix; one row or column is a vector), .json.
    Errors never quote the file's contents (a row of a file that is not numbers is not shown)."""
    if not os.path.isfile(path):
        raise InputError(f"--at {name}=@{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            return _array_from(name, _load_npy(path, f"--at {name}=@{path}"), path)
        if ext == ".json":
            with open(path, encoding="utf-8") as fh:
                return _array_from(name, _load_json(fh, f"--at {name}=@{path}"), path)
        with open(path, encoding="utf-8") as fh:
            rows = [line for line in fh if line.strip() and not line.lstrip().startswith("#")]
        if not rows:
            raise InputError(f"--at {name}=@{path}: the file has no numbers")
        table = []
        for k, row in enumerate(rows):
            cells = []
            for c, cell in enumerate(row.split(",")):
                try:
                    cells.append(scalar(name, cell))
                except InputError:
                    raise InputError(f"--at {name}=@{path}: row {k + 1}, column {c + 1} is not "
                                     "a number (the file must hold numbers separated by commas)"
                                     ) from None
            table.append(cells)
        value = _array_from(name, table, path)
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--at {name}=@{path}: cannot read it ({_why(exc, ext)})") from None
    if value.ndim == 2 and 1 in value.shape:
        value = value.reshape(-1)
        return np.float64(value[0]) if value.size == 1 else value
    return value


def _why(exc: Exception, ext: str) -> str:
    """Why a file could not be read, in words that never quote its contents (numpy's and json's
    own messages may show the bytes they choked on)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: byte {exc.start}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"not a valid {ext or 'numbers'} file"
