"""Every JSON document gradcli prints, built here and nowhere else (one SCHEMA_VERSION, one
encoding of non-finite numbers).

Strict JSON (RFC 8259): NaN and ±Infinity, which JSON has no numbers for, are the strings
"NaN", "Infinity" and "-Infinity" (`nonfinite`). Big documents (`eval_json`) are written piece
by piece rather than through json.dumps of one big dict, so a 10^6-node result does not build
10^6 dicts first; small ones build JSON-ready data with `plain` and go through `dumps`.
"""

from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

from ..words import is_array, nonfinite_word

if TYPE_CHECKING:  # pragma: no cover
    from ..result import Result
    from ..batch import Chunk
    from ..descend import Trajectory

#: The version of every JSON document and JSON Lines row gradcli prints (contract §4).
SCHEMA_VERSION = 1
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _u(ch: str) -> str:
    code = ord(ch)
    if code > 0xFFFF:  # a surrogate pair, as JSON writes characters beyond the BMP
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def inert_json(text: str) -> str:
    """JSON text with every character a terminal must not get (what json.dumps leaves raw:
    DEL, C1 controls, bidi and other format characters, line separators, lone surrogates,
    unassigned code points; `| jq` shows strings raw) written as a \\u escape, which JSON reads
    back as the same character: lossless, and the same rule as words.inert for text."""
    if text.isprintable():  # the usual case, at C speed
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _u(ch) for ch in text)


def _str(value) -> str:
    """One JSON string (or value), inert (inert_json)."""
    return inert_json(_encode(value))


def nonfinite(f: float) -> str:
    """The word for a non-finite float: NaN, Infinity or -Infinity."""
    return nonfinite_word(f)


def number(v) -> str:
    """A JSON number, or the strings "NaN", "Infinity", "-Infinity" for non-finite values."""
    try:
        f = float(v)
    except OverflowError:  # an exact Fraction beyond float64: its float is ±Infinity
        return f'"{nonfinite(math.inf if v > 0 else -math.inf)}"'
    except TypeError:
        if v is None:
            return "null"
        if hasattr(v, "tolist"):
            v = v.tolist()
        return "[" + ", ".join(number(x) for x in v) + "]"
    if f - f == 0:  # finite
        return repr(f)
    return f'"{nonfinite(f)}"'


def plain(v):
    """Numbers, arrays and lists of them as JSON-ready data (non-finite numbers as strings)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if is_array(v):
        import numpy as np

        if v.ndim == 0:
            return plain(v[()])
        a = v.astype(np.float64, copy=False)
        if np.all(np.isfinite(a)):
            return a.tolist()
        flat = [plain(float(x)) for x in a.reshape(-1)]
        for n in reversed(a.shape[1:]):  # regroup into nested lists without recursion
            flat = [flat[k : k + n] for k in range(0, len(flat), n)]
        return flat
    try:
        f = float(v)
    except OverflowError:  # an exact Fraction beyond float64
        return nonfinite(math.inf if v > 0 else -math.inf)
    return f if math.isfinite(f) else nonfinite(f)


def dumps(doc) -> str:
    """A JSON-ready document (see `plain`) as strict JSON text."""
    return inert_json(json.dumps(doc, ensure_ascii=False, allow_nan=False))


def plain_map(d: Mapping) -> dict:
    return {name: plain(v) for name, v in d.items()}


def exact_text(v) -> str:
    """An exact value as a JSON string such as "-1/4" or "3"; null where it is not exact."""
    if type(v) is Fraction:
        return f'"{v}"'
    return "null"


def _mapping(d: dict) -> str:
    return "{" + ", ".join(f"{_str(k)}: {number(v)}" for k, v in d.items()) + "}"


def _cells(sweeps: Sequence, text) -> "Callable[[int], list[str]]":
    """Node i's entry in each sweep (one per output, or per --wrt variable), as JSON texts.

    Sparse sweeps (engine.Sparse: several outputs, forward mode) are read by the nodes each one
    reached, so the cost is one string per entry, not one lookup per sweep and node."""
    engine = sys.modules.get("gradcli.engine")  # (a Sparse sweep comes from the engine only)
    if not sweeps or engine is None or not all(isinstance(s, engine.Sparse) for s in sweeps):
        return lambda i: [text(s[i]) for s in sweeps]
    hits: dict[int, list] = {}
    for k, s in enumerate(sweeps):
        for i, v in s.got.items():
            hits.setdefault(i, []).append((k, v))
    n = len(sweeps)
    missing = sweeps[0].missing

    def cells(i: int) -> list[str]:
        row = [text(missing(i))] * n
        for k, v in hits.get(i, ()):
            row[k] = text(v)
        return row
    return cells


#: Nodes per piece of eval_json_pieces (~200 KB of JSON for a wide formula: smaller pieces stay
#: in the cache; 1024 was ~15% faster than 8192 at 10^5 nodes)
NODES_PER_PIECE = 1 << 10


def eval_json(r: "Result") -> str:
    """The `eval --json` document of contract §4."""
    return "".join(eval_json_pieces(r))


def eval_json_pieces(r: "Result", size: int = 0) -> Iterator[str]:
    """eval_json's text in pieces, `size` nodes at a time (0: NODES_PER_PIECE), each made as it
    is asked for: a 10^6-node document is written as it is made and never held whole (the
    columns of its nodes: render/jsonnodes.py)."""
    from . import forked
    from . import jsonnodes as J

    size = size or NODES_PER_PIECE
    tape = r.tape
    several = len(tape.outputs) > 1
    parts = [
        "{", f'"schema_version": {SCHEMA_VERSION}, ',
        f'"expression": {_str(tape.text)}, ',
        f'"at": {_mapping(r.at)}, ',
        f'"value": {number(r.value)}, ',
    ]
    if several:
        parts.append('"jacobian": [' + ", ".join(_mapping(row) for row in r.jacobian) + "], ")
    else:
        parts.append(f'"gradient": {_mapping(r.gradient)}, ')
    if r.exact:
        outs = [exact_text(r.values[o]) for o in tape.outputs]
        parts.append(f'"value_exact": {outs[0] if not several else "[" + ", ".join(outs) + "]"}, ')
        rows = ["{" + ", ".join(f"{_str(x)}: {exact_text(adj[tape.variables[x]])}"
                                for x in r.wrt) + "}" for adj in r.adjoints]
        if several:
            parts.append('"jacobian_exact": [' + ", ".join(rows) + "], ")
        else:
            parts.append(f'"gradient_exact": {rows[0]}, ')
    parts.append(f'"outputs": {json.dumps(tape.outputs)}, ')
    if r.mode != "reverse":
        parts.append(f'"mode": "{r.mode}", "sweeps": {json.dumps(r.sweeps)}, ')
    if r.kinks:
        parts.append(f'"subgradient": "{r.convention}", ')
    parts.append('"nodes": [')
    yield "".join(parts)
    inputs, names = tape.inputs, tape.names
    values, partials, active, adjoints = r.values, r.partials, r.active, r.adjoints
    single = adjoints[0] if len(adjoints) == 1 else None
    tangents = r.tangents
    keys = [_str(n) for n in r.wrt]
    kinks = set(r.kinks)
    grads = _cells(adjoints, number) if single is None else None
    grads_exact = _cells(adjoints, exact_text) if single is None and r.exact else None
    tangent_cells = _cells([tangents[n] for n in r.wrt], number) if tangents is not None else None
    named = {i: _str(name) for i, name in names.items()}
    plain = J.plain_text(tape.text)
    folds = J.spaced(tape.text)

    def columns_of(a: int, b: int, ins, vals, parts, grad) -> list[list[str]]:
        """Nodes a..b-1's columns (exprs, inputs, values, partials, grads) as JSON texts."""
        return [J.exprs(tape, a, b, plain, _str, folds), ins, vals, parts, grad]

    def extra(i: int) -> str:  # what node i adds after "grad"
        out = ""
        if tangents is not None:
            out += ', "tangent": {' + ", ".join(
                f"{key}: {cell}" for key, cell in zip(keys, tangent_cells(i))) + "}"
        if kinks and i in kinks:
            out += f', "kink": "{r.convention}"'
        if r.exact:
            out += f', "value_exact": {exact_text(values[i])}'
            if active[i]:
                out += ', "grad_exact": ' + (exact_text(single[i]) if single is not None else
                                            "[" + ", ".join(grads_exact(i)) + "]")
        return out

    def piece(a: int, b: int) -> str:  # nodes a..b-1
        flags = active[a:b]
        if single is not None:
            grad = J.numbers_where(single[a:b], flags, number)
        else:
            grad = ["[" + ", ".join(grads(i)) + "]" if active[i] else "null" for i in range(a, b)]
        ins = inputs[a:b]
        parts = J.partial_lists(partials[a:b], ins, active, number)
        columns = columns_of(a, b, J.inputs_lists(ins), J.numbers(values[a:b], number), parts,
                             grad)
        extras = ([extra(i) for i in range(a, b)] if tangents is not None or kinks or r.exact
                  else None)
        return J.join_nodes(tape, a, b, plain, named, columns, extras)

    def packed():  # piece() reading machine arrays (forked.pieces: nothing copied)
        p = J.Packed.of(r) if tangents is None and not kinks and not r.exact and single else None
        if p is None:
            return None
        import numpy as np

        variables = np.array(sorted(tape.variables.values()), np.int64)
        known = (variables, J.numbers(p.values[variables].tolist(), number))

        def piece_packed(a: int, b: int) -> str:
            grad = J.numbers_live(p.grads[a:b].tolist(), p.active[a:b], number)
            vals = J.numbers(p.values[a:b].tolist(), number)
            at, lengths, ids = p.edges(a, b)
            flat = r.partials.flat(a, b, p.values, p.ids, p.starts)
            if flat is not None:  # one float per edge, made an op at a time
                parts = J.flat_partials(flat, vals, a, p.active[ids], at, lengths, known,
                                        number)
            else:
                inputs = p.inputs(a, b)
                parts = (J.partial_lists(r.partials.piece(a, b, p.values, inputs), inputs,
                                         active, number),)
            columns = columns_of(a, b, p.input_lists(at, lengths, ids), vals, parts, grad)
            return J.join_nodes(tape, a, b, plain, named, columns, None, bare=True)
        return piece_packed

    # a long run: half made by a second process
    yield from forked.pieces(len(tape), size, piece, packed)
    yield f'], "warnings": {_str(r.warnings)}}}'


# -- descend --json ---------------------------------------------------------------------

def descend_json(traj: "Trajectory", expression: str, wrt: Sequence[str], optimizer: str,
                 lr: float) -> str:
    """The `descend --json` document (contract §4)."""
    final = traj.final
    doc = {
        "schema_version": SCHEMA_VERSION,
        "expression": expression,
        "optimizer": optimizer,
        "lr": plain(lr),
        "wrt": list(wrt),
        "steps": [{"step": s.step, "loss": plain(s.loss), "params": plain_map(s.params),
                   "grad_norm": plain(s.grad_norm)} for s in traj.steps],
        "final": None if final is None else {
            "step": final.step, "loss": plain(final.loss),
            "params": plain_map(final.params), "gradient": plain_map(final.gradient)},
        "stopped": traj.stopped,
        "message": traj.message,
        "warnings": list(traj.warnings),
    }
    return dumps(doc)


# -- errors with --json (H14) -----------------------------------------------------------------

ERROR_KINDS = ("syntax", "input", "shape", "usage", "limit")


def error_json(kind: str, message: str, line: int | None = None,
               column: int | None = None) -> str:
    """The error document --json prints on stdout (schema: gradcli/schemas/error.schema.json)."""
    if kind not in ERROR_KINDS:
        kind = "input"
    return dumps({"schema_version": SCHEMA_VERSION,
                  "error": {"kind": kind, "message": message, "line": line, "column": column}})


# -- eval --points FILE --json: JSON Lines ------------------------------------------------

def jsonl_rows(chunk: "Chunk", wrt: Sequence[str], first_index: int,
               keep: Sequence[str] = ()) -> str:
    """The chunk's rows as JSON Lines: {"schema_version", "row", "inputs"? (--keep), "value",
    "gradient"}; several outputs give "value": [...] and "jacobian": [{...}, ...] as eval --json
    does (strict JSON)."""
    keys = [_str(name) for name in wrt]
    kept = [(_str(name), chunk.kept[name].tolist()) for name in keep]
    outs = [v.tolist() for v in chunk.values]
    jac = [[g[name].tolist() for name in wrt] for g in chunk.jacobian]
    several = len(outs) > 1
    out = []
    for k in range(len(outs[0])):
        grads = ["{" + ", ".join(f"{key}: {number(col[k])}" for key, col in zip(keys, cols))
                 + "}" for cols in jac]
        inputs = ""
        if kept:
            inputs = ', "inputs": {' + ", ".join(f"{key}: {number(col[k])}"
                                                 for key, col in kept) + "}"
        if several:
            body = (f'"value": [{", ".join(number(o[k]) for o in outs)}], '
                    f'"jacobian": [{", ".join(grads)}]')
        else:
            body = f'"value": {number(outs[0][k])}, "gradient": {grads[0]}'
        out.append(f'{{"schema_version": {SCHEMA_VERSION}, "row": {first_index + k}{inputs}, '
                   f'{body}}}\n')
    return "".join(out)


# -- check --json (H2's section) ----------------------------------------------------------------

if TYPE_CHECKING:  # pragma: no cover
    from ..check import CheckReport


def check_json(report: "CheckReport") -> str:
    """The `check --json` document of contract §4 (schema: gradcli/schemas/check.schema.json)."""
    from .checkwords import kink_message, slip_message, suspect_message, variable_note
    from .names import output_name, output_names

    tape = report.tape
    out = output_name(tape)
    tol = report.tolerance
    doc: dict = {
        "schema_version": SCHEMA_VERSION,
        "expression": tape.text,
        "at": {k: plain(v) for k, v in report.result.at.items()},
        "ok": report.ok,
        "rtol": tol.rtol,
        "atol": tol.atol,
    }
    if tol.places is not None:
        doc["places"] = tol.places

    def slip(s, output: int | None = None) -> dict:
        name = out if output is None else output_names(tape)[output]
        entry = {"kind": s.kind, "message": slip_message(s, tape, name)}
        if s.via is not None:
            entry["via"] = s.via
        return entry

    variables = []
    for v in report.variables:
        entry = {"name": v.name, "analytic": plain(v.analytic), "numeric": plain(v.numeric),
                 "rel_error": plain(v.rel_error), "ok": v.ok, "status": v.status}
        note = variable_note(v, tape)
        if note:
            entry["note"] = note
        if v.expected is not None:
            entry["expected"] = plain(v.expected.answer.answer)
            entry["expected_ok"] = v.expected.ok
            if v.expected.rounded is not None:
                entry["rounded"] = v.expected.rounded
            if v.expected.formula is not None:
                entry.update(_formula_fields(v.expected))
            if v.expected.slip is not None:
                entry["slip"] = slip(v.expected.slip)
        variables.append(entry)
    doc["variables"] = variables
    if report.grades:
        nodes = []
        for g in report.grades:
            i = g.node
            entry = {"id": i, "name": tape.names.get(i), "expr": tape.expr(i),
                     "op": tape.ops[i].name, "kind": g.kind, "answer": plain(g.answer.answer),
                     "correct": plain(g.correct), "ok": g.ok, "source": g.answer.source}
            if report.tolerance.exact:
                for key, v in (("answer_exact", g.answer.answer), ("correct_exact", g.correct)):
                    if type(v) is Fraction:
                        entry[key] = str(v)
            if g.answer.output is not None:
                entry["output"] = output_names(tape)[g.answer.output]
            if g.rounded is not None:
                entry["rounded"] = g.rounded
            if g.formula is not None:
                entry.update(_formula_fields(g))
            if g.slip is not None:
                entry["slip"] = slip(g.slip, g.answer.output)
            nodes.append(entry)
        doc["nodes"] = nodes
        first = report.first_wrong
        doc["first_wrong"] = None if first is None else {
            "id": first.node, "kind": first.kind, "label": tape.label(first.node)}
    if report.suspects:
        doc["suspects"] = [{"id": x.node, "op": tape.ops[x.node].name, "expr": tape.expr(x.node),
                            "input": x.slot, "analytic": plain(x.analytic),
                            "numeric": plain(x.numeric), "message": suspect_message(x, tape)}
                           for x in report.suspects]
    doc["kinks"] = [{"id": k.node, "op": k.op, "expr": tape.expr(k.node),
                     "name": tape.names.get(k.node), "message": kink_message(k, tape)}
                    for k in report.kinks]
    doc["warnings"] = list(report.warnings)
    return dumps(doc)


def _formula_fields(g) -> dict:
    """A formula answer's fields: the formula, the points compared, the first that differs."""
    fc = g.formula
    d = fc.differs_at
    return {"expected_formula": g.answer.text.strip(), "points_checked": fc.points_checked,
            "points_skipped": fc.skipped, "seed": fc.seed,
            "differs_at": None if d is None else {"at": {k: plain(v) for k, v in d["at"].items()},
                                                  "yours": plain(d["yours"]),
                                                  "correct": plain(d["correct"])}}


# -- diff --json (H11's section) ---------------------------------------------------------------

def diff_json(r) -> str:
    """The `gradcli diff --json` document (schema: gradcli/schemas/diff.schema.json)."""
    from .formula import diff_text

    t = diff_text(r)
    doc: dict = {"schema_version": SCHEMA_VERSION, "expression": r.expression,
                 "wrt": list(r.wrt),
                 "derivatives": {x: t.alone((x,)) for x in r.wrt}}
    if r.derivatives.second:
        doc["second"] = {x: {y: t.alone((x, y)) for y in r.wrt} for x in r.wrt}
    if r.derivatives.seed_name is not None:
        doc["upstream"] = r.derivatives.seed_name
    if r.values is not None:
        doc["at"] = plain_map(r.at)
        doc["values"] = plain_map(r.values)
        if r.second_values is not None:
            doc["second_values"] = {x: plain_map(row) for x, row in r.second_values.items()}
    doc["warnings"] = list(r.warnings)
    return dumps(doc)


def with_second_order(doc: str, hessian: dict | None, hvp: dict | None) -> str:
    """An eval or check JSON document with "hessian" ({x: {y: h}}) and/or "hvp" ({x: (Hv)_x})
    added as its last members."""
    extra = ""
    if hessian is not None:
        extra += ', "hessian": ' + dumps({x: plain_map(row) for x, row in hessian.items()})
    if hvp is not None:
        extra += ', "hvp": ' + dumps(plain_map(hvp))
    return doc[:-1] + extra + "}" if extra else doc


def with_hessian_check(doc: str, c) -> str:
    """A check JSON document with "hessian": {"ok", "entries": [{row, col, analytic, numeric,
    rel_error, ok}]} as its last member (check --hessian)."""
    entries = [{"row": e.row, "col": e.col, "analytic": plain(e.analytic),
                "numeric": plain(e.numeric), "rel_error": plain(e.rel_error), "ok": e.ok}
               for e in c.entries]
    return doc[:-1] + ', "hessian": ' + dumps({"ok": c.ok, "entries": entries}) + "}"
