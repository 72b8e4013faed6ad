"""One loader for every command and the Python API: text -> limits -> parse -> point -> --wrt.

`read_formula(arg)` is the command line's half (the argument itself, a file, or '-' for stdin);
`load(text, ...)` is the rest, shared with the API, which is handed text. A `Session` is what
`load` returns: the text, its tape, the point (the formula's own `# at:` lines with the user's
values over them), the resolved `--wrt` names and the warnings so far. No output happens here.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from .errors import GradcliError, InputError, LimitError

if TYPE_CHECKING:
    from .tape import Tape

#: The largest formula text gradcli reads (bytes of UTF-8); bigger input is refused at once.
MAX_FORMULA_BYTES = 100 * 2**20
#: --max-nodes' default: generous (10^6-node formulas are a tested case), but a bound.
MAX_NODES = 10_000_000
#: With a command's own size limit (graph's picture), texts longer than this are still screened
#: before parsing, from the text alone.
SCREEN_CHARS = 100_000


@dataclass
class Session:
    """A loaded formula: ready for one compute call."""

    text: str
    tape: "Tape"
    point: dict
    wrt: list[str]  # the resolved --wrt names (every variable when none were given)
    warnings: list[str] = field(default_factory=list)
    seed: int | None = None
    exact: bool = False
    max_nodes: int = MAX_NODES  # --max-nodes: also bounds the nodes all sweeps visit together


# -- reading the argument (the command line's half) -----------------------------------------------

def formula_path(arg: str) -> str | None:
    """The file a formula argument names, or None when the argument is the formula itself.

    Only a clear path is a file: one ending in `.grad`, or any path written after an `@` (a
    formula never starts with '@'). Anything else is the formula, even when a file of that
    name exists (`a/b` is a divided by b)."""
    if arg.startswith("@") and len(arg) > 1:
        return arg[1:]
    if arg.endswith(".grad"):
        return arg
    return None


def formula_files(arg: str) -> str | None:
    """Where the `# at:` lines of the formula `arg` gives may read @files (points.Point's
    `files`): from a file, only inside its own folder; from stdin, nowhere; typed on the
    command line, anywhere, as --at may."""
    from .points import NO_FILES

    if arg == "-":
        return NO_FILES
    path = formula_path(arg)
    return None if path is None else os.path.dirname(os.path.abspath(path))


def read_formula(arg: str) -> str:
    """The formula itself, the contents of the file it names (`f.grad`, `@f.txt`), or stdin for
    '-'."""
    if arg == "-":
        if hasattr(sys.stdin, "buffer"):
            data = sys.stdin.buffer.read(MAX_FORMULA_BYTES + 1)
        else:  # pragma: no cover - a text-only stdin
            data = sys.stdin.read(MAX_FORMULA_BYTES + 1)
        _check_bytes(len(data), "standard input")
        return decode(data, "standard input")
    path = formula_path(arg)
    if path is not None and os.path.isfile(path):
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FORMULA_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        _check_bytes(len(data), path)
        return decode(data, path)
    if path is not None:
        raise InputError(f"no such file: {path}")
    if len(arg) > MAX_FORMULA_BYTES // 4:  # at most 4 bytes a character: only then count
        _check_bytes(len(arg.encode("utf-8", "surrogateescape")), "the formula")
    return arg


def read_stdin(where: str = "standard input") -> str:
    """All of standard input as text (for `--answers -`), up to MAX_FORMULA_BYTES."""
    data = (sys.stdin.buffer.read(MAX_FORMULA_BYTES + 1) if hasattr(sys.stdin, "buffer")
            else sys.stdin.read(MAX_FORMULA_BYTES + 1))
    _check_bytes(len(data), where)
    return decode(data, where)


def _check_bytes(size: int, where: str) -> None:
    if size > MAX_FORMULA_BYTES:
        raise LimitError(f"{where} is more than {MAX_FORMULA_BYTES >> 20} MB: gradcli reads "
                         "formulas up to that size")


def decode(data: bytes | str, where: str) -> str:
    """UTF-8 bytes as text (a leading byte-order mark dropped), naming `where` if they are not."""
    if isinstance(data, str):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def split_names(values: Sequence[str] | None) -> list[str] | None:
    """Repeated, comma-separated `--wrt` values as one list (None when there are none)."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


# -- size limits -----------------------------------------------------------------------------------

_COMMENT = re.compile(r"#[^\n]*")
_BINARY_SIGN = re.compile(r"[\w)\]][ \t\f\r]*[-+]")
_EXPONENT_SIGN = re.compile(r"\d[eE][-+]")


def nodes_at_least(text: str) -> int:
    """A cheap lower bound on the nodes a formula that parses has, from its text alone.

    Outside comments every '*', '/', '@' and '^' (with '**' once) is an operator that makes
    exactly one node, as does a '+' or '-' right after a name, a number, ')' or ']' (binary),
    minus the signs of exponents such as 1e-3. Runs at C speed: a 100 MB text takes ~0.5 s.
    """
    if "#" in text:
        text = _COMMENT.sub("", text)
    n = text.count("*") - text.count("**") + text.count("/") + text.count("@") + text.count("^")
    n += _BINARY_SIGN.subn("", text)[1] - _EXPONENT_SIGN.subn("", text)[1]
    return max(n, 0)


def check_nodes(text: str, max_nodes: int, count: int | None = None) -> None:
    """Refuse a formula with more than `max_nodes` nodes (0: no limit), before parsing when the
    text alone shows it (a node needs a character, so only long texts are looked at), and
    after parsing from the tape's length (`count`)."""
    if not max_nodes:
        return
    if count is None:
        if len(text) <= max_nodes:
            return
        count = nodes_at_least(text)
        more = "at least "
    else:
        more = ""
    if count > max_nodes:
        raise LimitError(f"the formula has {more}{count:,} nodes, more than --max-nodes "
                         f"{max_nodes:,}; raise --max-nodes (0: no limit) to go on")


# -- the point and --wrt ---------------------------------------------------------------------------

def read_point(text: str, at: Sequence[str] | Mapping[str, object] | None, seed: int | None,
               warnings: list[str], exact: bool = False, files: str | None = "",
               source: str = "the formula") -> dict:
    """The formula's own `# at:` values, then the user's over them: `--at` strings, or (from the
    API) a mapping of names to numbers, nested lists, arrays or strings. `files`: where the
    `# at:` lines may read @files (points.Point; by default nowhere), `source` names them."""
    from .points import Point, coerce_point, defaults

    reader = Point(seed, exact, files, source)
    try:
        point = reader.parse(defaults(text))
    except GradcliError as exc:
        raise InputError(f"in the formula's '# at:' line: {exc.message}") from None
    reader.files = None  # the user's own values (--at, the API's mapping) may name any file
    if isinstance(at, Mapping):
        point.update(coerce_point(at, exact))
    else:
        point.update(reader.parse(at or []))
    if reader.drew and seed is None:
        warnings.append(f"random values were drawn with seed {reader.seed}; --seed "
                        f"{reader.seed} draws the same ones again")
    return point


def check_wrt(tape: "Tape", wrt: Iterable[str] | None) -> list[str]:
    """The variables to differentiate with respect to: `wrt` checked against the formula's
    inputs, in order, without repeats (every variable when `wrt` is None)."""
    from .parse import index_variables
    from .words import name_key, short  # lazily: --help and --version import no numpy

    indices = index_variables(tape)  # y in s[y]: a whole number, no gradient
    if wrt is None:
        return [name for name in tape.variables if name not in indices]
    out: list[str] = []
    seen: set[str] = set()
    for name in wrt:
        name = name_key(name.strip())
        if not name or name in seen:
            continue
        if name.startswith("-"):
            raise InputError(f"--wrt {short(name)}: {short(name)} is an option, not a variable; "
                             "a formula that starts with '-' and reads as an option (-w, -a, -h) "
                             "goes after '--', as in: gradcli eval --at w=3 -- -w")
        if name in indices:
            raise InputError(f"--wrt {short(name)}: {short(name)} is an index (a whole number "
                             "read at run time), so it has no gradient")
        if name not in tape.variables:
            shown = short(name)
            if name in tape.bound:
                raise InputError(f"--wrt {shown}: {shown} is an intermediate, not an input; its "
                                 "gradient is in the nodes table")
            names = list(tape.variables)
            known = ", ".join(short(n) for n in names[:10]) or "none"
            if len(names) > 10:
                known += f" and {len(names) - 10} more"
            raise InputError(f"--wrt {shown}: the formula has no variable {shown} "
                             f"(its variables: {known})")
        seen.add(name)
        out.append(name)
    if not out:
        raise InputError("--wrt names no variable")
    return out


# -- load ------------------------------------------------------------------------------------------

def load(text: str, at: Sequence[str] | Mapping[str, object] | None = None, *,
         seed: int | None = None, max_nodes: int = MAX_NODES,
         wrt: Iterable[str] | None = None, exact: bool = False,
         limit: Callable[["Tape"], None] | None = None, files: str | None = "",
         source: str = "the formula") -> Session:
    """Check the size of `text`, parse it, read the point (`# at:` lines, then `at` over them)
    and resolve `wrt`. `files`: the folder the `# at:` lines may read @files from (None: any;
    "" (points.NO_FILES), the default: none), `source` the file they come from.

    `max_nodes` (0: no limit) is checked on the text before parsing and on the tape after.
    A command with a limit of its own (graph: a picture's size) passes `limit`, called with the
    tape instead; it then screens only texts longer than SCREEN_CHARS before parsing.
    """
    from .parse import parse

    if limit is None or len(text) > SCREEN_CHARS:
        check_nodes(text, max_nodes)
    tape, warnings = parse(text)
    if limit is None:
        check_nodes(text, max_nodes, len(tape))
    else:
        limit(tape)
    point = read_point(text, at, seed, warnings, exact, files, source)
    names = check_wrt(tape, wrt)
    return Session(text, tape, point, names, warnings, seed, exact, max_nodes)


def load_arg(arg: str, at: Sequence[str] | None = None, **options) -> Session:
    """`load` for a command-line argument: the formula, a file, or '-' for stdin."""
    from .errors import ParseError

    path = formula_path(arg)
    source = "standard input" if arg == "-" else "the formula" if path is None else path
    try:
        s = load(read_formula(arg), at, files=formula_files(arg), source=source, **options)
        if path is None and _NAME_PATH.fullmatch(arg) and not any(
                n in s.point for n in s.tape.variables):  # no/such/thing: a path, surely
            raise InputError(f"no such file: {arg} (read as a formula, it has no value for "
                             f"{', '.join(s.tape.variables)})")
        return s
    except ParseError as exc:
        if path is None and arg != "-" and not exc.hint and os.path.isfile(arg):
            exc.hint = (f"{arg} is read as a formula; to read the file of that name, write "
                        f"@{arg} (or name it .grad)")
        if path is None and arg != "-" and _PATHLIKE.fullmatch(arg) and not os.path.isfile(arg):
            raise InputError(f"no such file: {arg}") from None  # samples/neuron.grd
        raise


#: A formula argument that does not parse and reads as a path: a '/' (or '\\') or a file suffix.
_NAME_PATH = re.compile(r"[^\W\d]\w*(/[^\W\d]\w*)+/?")
_PATHLIKE = re.compile(r"[^\s]*[/\\][^\s]*|[^\s]*\w\.(?!T)[A-Za-z][A-Za-z0-9]+")
