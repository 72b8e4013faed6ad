"""The "nodes" array of `eval --json`, column by column (what jsonout.eval_json_pieces writes).

A 10^6-node document is made in pieces of a few thousand nodes: each field is formatted for
the whole piece at once (one `map` over a column, at C speed: float.__repr__ for every number,
the formula's text sliced for every expr), and the piece is put together by one join. Nothing
here builds a per-node Python string by hand, and nothing holds more than one piece.

Every function returns exactly what jsonout's per-node builders did (`number`, `_str` of
`tape.expr`); wherever a column is not plain floats or plain text it falls back to them, value
by value (`slow`). tests/test_jsonout_stream.py compares the two on random formulas.

The forked writer's pieces (Packed) go further: a node's inputs and partials are not joined
node by node but given to join_nodes as three columns (first text, ", ", the rest:
edge_columns), and a partial that is a value already written (mul's ∂/∂a is b, exp's is
itself), or 1 or -1, reuses that text instead of formatting the float again (flat_partials).
"""

from __future__ import annotations

import operator
from itertools import chain, compress, islice, repeat
from typing import Callable, Sequence

#: JSON's words for what float.__repr__ writes as nan, inf and -inf (jsonout.nonfinite)
_WORDS = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}
_REPR = float.__repr__  # also np.float64's value (a float subclass), as number() writes it
_NULL = "null".__str__
_NAME = operator.attrgetter("name")
#: tape.expr's default limit: a node's source text longer than this is shortened with …
EXPR_LIMIT = 60
_HALF = (EXPR_LIMIT - 1) // 2


def numbers(seq: Sequence, slow: Callable[[object], str]) -> list[str]:
    """number(v) for each v: float.__repr__ over the column when every v is a float (or
    np.float64), with NaN/±Infinity as JSON strings; `slow` (jsonout.number) value by value
    otherwise (Fractions, arrays, None)."""
    try:
        out = list(map(_REPR, seq))
    except TypeError:  # not all floats
        return list(map(slow, seq))
    if not _WORDS.keys().isdisjoint(out):
        out = list(map(_WORDS.get, out, out))
    return out


def numbers_where(seq: Sequence, flags: Sequence, slow: Callable[[object], str]) -> list[str]:
    """number(seq[k]) where flags[k], "null" elsewhere."""
    if all(flags):
        return numbers(seq, slow)
    got = numbers(list(compress(seq, flags)), slow)
    pick = (_NULL, iter(got).__next__)  # by flag: "null", or the next number
    return list(map(operator.call, map(pick.__getitem__, map(bool, flags))))


def partial_lists(partials: Sequence, inputs: Sequence, active: Sequence,
                  slow: Callable[[object], str]) -> list[str]:
    """Each node's "partials" entries joined by ", ": number(ps[k]) where the node has partials
    and input k is active, "null" elsewhere."""
    if None not in partials:
        flat = list(chain.from_iterable(partials))
        ids = list(chain.from_iterable(inputs))
        if len(flat) == len(ids) and all(map(operator.eq, map(len, partials), map(len, inputs))):
            texts = iter(numbers_where(flat, list(map(active.__getitem__, ids)), slow))
            return list(map(", ".join, map(islice, repeat(texts), map(len, inputs))))
    return [", ".join(slow(ps[k]) if ps is not None and active[j] else "null"
                      for k, j in enumerate(ins)) for ps, ins in zip(partials, inputs)]


def flat_partials(flat, value_texts: list[str], a: int, live, at, lengths, known,
                  slow: Callable[[object], str]) -> tuple[list[str], list[str], list[str]]:
    """The "partials" column of nodes a..b-1 (as edge_columns' three) from one entry per input
    edge (piecepartials.Flat: the partial, and the node whose value it is), the piece's values
    as written (`value_texts`), and `known` (node ids, sorted, and their values' texts: the
    variables, which nodes of every piece read). `live`: per edge, whether its input is active
    (else "null"); `at`, `lengths`: where each node's edges begin (from 0), how many it has.
    A partial that is a value already written, or 1 or -1, takes that text as it stands:
    float.__repr__ runs only for the others (one in three, in the benchmark's wide formula)."""
    import numpy as np

    partials, of = flat
    m = len(value_texts)
    src = of - a  # into value_texts where the partial is one of the piece's values (a node's
    out = src < 0  # inputs come before it: of < b)
    src[out] = -1
    ids, texts = known
    if len(ids):
        where = np.flatnonzero(out & (of >= 0))
        slot = np.minimum(np.searchsorted(ids, of[where]), len(ids) - 1)
        hit = ids[slot] == of[where]
        src[where[hit]] = m + 3 + slot[hit]
    src[partials == 1.0] = m
    src[partials == -1.0] = m + 1
    src[~live] = m + 2
    rest = np.flatnonzero(src < 0)
    base = m + 3 + len(texts)
    src[rest] = np.arange(base, base + rest.size)
    pool = value_texts + ["1.0", "-1.0", "null"] + texts + numbers(partials[rest].tolist(), slow)
    return edge_columns(pool, src, at, lengths)


_SEP = ("", ", ")


def edge_columns(pool: list[str], src, at, lengths) -> tuple[list[str], list[str], list[str]]:
    """Each node's edge texts (pool[src[e]] for its edges e) joined by ", ", as three columns
    whose concatenation it is, node by node: the first text, the ", " after it, the rest (""
    where there is none). join_nodes puts the three together in its one join, so no string is
    made per node. `at`, `lengths`: where each node's edges begin (from 0), how many it has.
    `pool` gets the empty text and the joined rest of any node with over two inputs."""
    import numpy as np

    edges = len(src)
    pool.append("")
    src = np.append(src, len(pool) - 1)  # index `edges`: the empty text
    begin = at[:-1]
    first = src[np.where(lengths >= 1, begin, edges)]
    rest = src[np.where(lengths >= 2, begin + 1, edges)]
    for k in np.flatnonzero(lengths > 2).tolist():
        rest[k] = len(pool)
        pool.append(", ".join(map(pool.__getitem__, src[at[k] + 1:at[k + 1]].tolist())))
    get = pool.__getitem__
    return (list(map(get, first.tolist())), list(map(_SEP.__getitem__, (lengths >= 2).tolist())),
            list(map(get, rest.tolist())))


def numbers_live(floats: list[float], live, slow: Callable[[object], str]) -> list[str]:
    """numbers(floats), with "null" where not `live` (a bool array)."""
    import numpy as np

    out = numbers(floats, slow)
    for k in np.flatnonzero(~live).tolist():
        out[k] = "null"
    return out


class Packed:
    """The columns of a scalar result that a piece reads, as machine arrays: values and the
    adjoint (float64; an inactive node's adjoint 0, never written), and the inputs (every
    node's ids one after another, and where each node's start). forked.pieces has both of its
    processes read these, which writes nothing to the pages they share (see there)."""

    __slots__ = ("values", "grads", "ids", "starts", "active")

    def __init__(self, values, grads, ids, starts, active):
        self.values, self.grads, self.ids, self.starts = values, grads, ids, starts
        self.active = active

    @classmethod
    def of(cls, r) -> "Packed | None":
        """For one output's result whose values are all np.float64 (what a scalar tape's sweep
        makes, and what indexing `values` gives back: the partials made from it see the very
        type the sweep's did, so a rule's 1/0 is Infinity, not an error, both ways) and whose
        active adjoints are floats, partials made on demand (reverse.Partials); else None."""
        import numpy as np

        if getattr(r.partials, "piece", None) is None or len(r.adjoints) != 1:
            return None
        values, adjoint, active = r.values, r.adjoints[0], r.active
        if not set(map(type, values)) <= {np.float64}:
            return None
        if not set(map(type, compress(adjoint, active))) <= {float, np.float64}:
            return None  # an active node's adjoint that is not a float (None, an array)
        grads = np.fromiter(map(_ZERO.get, adjoint, adjoint), np.float64, len(adjoint))
        inputs = r.tape.inputs
        # node ids, and where each node's ids start, in 4 bytes while they fit (a tape is
        # bounded far below 2^31 nodes, but its edges are counted here)
        lengths = np.fromiter(map(len, inputs), np.int32, len(inputs))
        starts = np.zeros(len(inputs) + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        edges = int(starts[-1])
        if edges < 2**31 and len(inputs) < 2**31:
            starts = starts.astype(np.int32)
        ids = np.fromiter(chain.from_iterable(inputs), starts.dtype, edges)
        return cls(np.fromiter(values, np.float64, len(values)), grads, ids, starts,
                   np.fromiter(active, bool, len(active)))

    def inputs(self, a: int, b: int) -> list[tuple[int, ...]]:
        """Nodes a..b-1's input ids, as tape.inputs[a:b]."""
        at, _, ids = self.edges(a, b)
        ids, bounds = ids.tolist(), at.tolist()
        return list(map(tuple, map(ids.__getitem__, map(slice, bounds, islice(bounds, 1, None)))))

    def edges(self, a: int, b: int):
        """Nodes a..b-1's edges: where each node's begin (from 0, with the end) and how many
        each has (int64 arrays), and their input ids."""
        import numpy as np

        at = self.starts[a:b + 1].astype(np.int64)
        ids = self.ids[at[0]:at[-1]]
        at -= at[0]
        return at, np.diff(at), ids

    def input_lists(self, at, lengths, ids) -> tuple[list[str], list[str], list[str]]:
        """The "inputs" column of a piece with these edges (self.edges), as edge_columns'."""
        import numpy as np

        return edge_columns(list(map(str, ids.tolist())), np.arange(len(ids)), at, lengths)


_ZERO = {None: 0.0}  # an inactive node's adjoint (written as null)


def plain_text(text: str) -> bool:
    """Whether every node's expr is its JSON string without escapes: the formula holds no
    quote, backslash or unprintable character (line breaks and tabs aside, which tape.expr
    turns into spaces)."""
    rest = text.replace("\n", "").replace("\t", "").replace("\r", "")
    return rest.isprintable() and '"' not in rest and "\\" not in rest


def spaced(text: str) -> bool:
    """Whether the formula holds a line break or tab (which tape.expr folds into spaces): asked
    once per document, not per piece (it reads the whole text when the answer is no)."""
    return "\n" in text or "\t" in text or "\r" in text


def exprs(tape, a: int, b: int, plain: bool, quoted: Callable[[str], str],
          folds: bool) -> list[str]:
    """tape.expr(i) for nodes a..b-1: as it stands where `plain` (see plain_text: the caller
    adds the quotes), else through `quoted` (jsonout._str). `folds`: spaced(tape.text).

    In plain text, tape.expr is the node's slice of the text, or for a long one (over
    EXPR_LIMIT characters) its first and last HALF characters around "…" (stripped at the
    cut): both made here for the whole column at once. A node whose text then holds a line
    break or tab asks tape.expr itself (which folds the white space)."""
    expr = tape.expr
    if not plain:
        return [quoted(expr(i)) for i in range(a, b)]
    text = tape.text
    cut = text.__getitem__
    starts, ends = tape.starts[a:b], tape.ends[a:b]
    long = list(map(EXPR_LIMIT.__lt__, map(operator.sub, ends, starts)))
    if any(long):
        short = list(map(operator.not_, long))
        whole = map(cut, map(slice, compress(starts, short), compress(ends, short)))
        s, e = list(compress(starts, long)), list(compress(ends, long))
        heads = map(str.rstrip, map(cut, map(slice, s, map(_HALF.__add__, s))))
        tails = map(str.lstrip, map(cut, map(slice, map(_HALF.__rsub__, e), e)))
        cuts = map("…".join, zip(heads, tails))
        pick = (whole.__next__, cuts.__next__)  # by `long`: the whole slice, or the cut one
        out = list(map(operator.call, map(pick.__getitem__, long)))
    else:
        out = list(map(cut, map(slice, starts, ends)))
    if folds:
        for k in compress(range(b - a), map(operator.not_, map(str.isprintable, out))):
            out[k] = expr(a + k)
    return out


def inputs_lists(inputs: Sequence) -> list[str]:
    """Each node's input ids as a JSON array: [3, 7]."""
    return list(map(repr, map(list, inputs)))


class _OpText(dict):
    """op name -> the text from "op" to the expr's value: ', "op": "mul", "expr": "'."""

    def __init__(self, quote: str):
        super().__init__()
        self.quote = quote

    def __missing__(self, name: str) -> str:
        text = self[name] = f', "op": "{name}", "expr": {self.quote}'
        return text


def join_nodes(tape, a: int, b: int, plain: bool, named: dict, columns: Sequence[list[str]],
               extras: list[str] | None, bare: bool = False) -> str:
    """Nodes a..b-1 as JSON objects separated by ", " (with a leading ", " unless a is 0).
    columns = exprs, inputs, values, partials, grads (as JSON texts, exprs without their
    quotes where `plain`); inputs and partials each a column of texts, or where `bare` a tuple
    of columns whose concatenation, node by node, is the text without its brackets
    (edge_columns); named: node id -> its name as a JSON string; `extras` (or None) the text
    each node adds after "grad". One join over the columns interleaved with the text between
    them."""
    q = '"' if plain else ""
    op_text = _OpText(q)
    if not bare:
        columns = [*columns[:1], (columns[1],), columns[2], (columns[3],), *columns[4:]]
    inputs_key = ', "inputs": [' if bare else ', "inputs": '
    unnamed = q + ', "name": null' + inputs_key
    names = (list(map({i: f'{q}, "name": {t}{inputs_key}' for i, t in named.items()}.get,
                      range(a, b), repeat(unnamed))) if named else unnamed)
    exprs, inputs, values, partials, grads = columns
    pieces = [', {"id": ', list(map(str, range(a, b))),
              list(map(op_text.__getitem__, map(_NAME, tape.ops[a:b]))), exprs, names, *inputs,
              '], "value": ' if bare else ', "value": ', values, ', "partials": [', *partials,
              '], "grad": ', grads, "}"]
    if extras is not None:
        pieces.insert(-1, extras)
    # the columns interleaved, node by node, by slice assignment (a text: the same for every
    # node), then one join
    k, m = len(pieces), b - a
    out: list = [None] * (k * m)
    for j, column in enumerate(pieces):
        out[j::k] = [column] * m if type(column) is str else column
    if a == 0 and m:
        out[0] = '{"id": '
    return "".join(out)
