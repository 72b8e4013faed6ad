"""Reading hand answers: `--expect`, `--expect-node`, and `--answers` files (eval's JSON, a
mapping of values and gradients, or text lines), each resolved to a node of the tape."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

from .. import engine
from ..errors import GradcliError, InputError
from ..points import check_json_depth
from ..tape import Tape
from .report import Answer

_NODE_ID = re.compile(r"#\s*(\d+)")
_KINDS = {"value": "value", "val": "value", "grad": "grad", "gradient": "grad"}


def resolve(tape: Tape, ref: str, where: str) -> int:
    """A node reference: a variable, a named intermediate, `#3` for node 3, or `f` for the output
    of a formula that names none."""
    r = ref.strip()
    m = _NODE_ID.fullmatch(r)
    if m:
        i = int(m.group(1))
        if i >= len(tape):
            raise InputError(f"{where}: there is no node {r} (the formula has nodes #0 to "
                             f"#{len(tape) - 1})")
        return i
    if r in tape.variables:
        return tape.variables[r]
    if r in tape.bound:
        return tape.bound[r]
    if r == "f" and len(tape.outputs) == 1:
        return tape.outputs[0]
    known = list(tape.variables) + [n for n in tape.bound if n not in tape.variables]
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    raise InputError(f"{where}: the formula has no node {r!r} (its names: {shown or 'none'}; "
                     "#3 means node 3 as `gradcli eval` numbers them)")


def answer_value(text: str, where: str):
    """A hand answer as written: -4, 0.39, 1/3, pi, -pi, [1, 2], or a constant formula (2*pi,
    sigmoid(1))."""
    from ..points import Point, scalar

    t = text.strip()
    if not t:
        raise InputError(f"{where}: no value given")
    if t.startswith("["):
        try:
            return Point(0).value("answer", t)
        except InputError as exc:
            raise InputError(f"{where}: {exc.message.replace('--at answer=', '')}") from None
    try:
        return np.float64(scalar("answer", t))
    except InputError:
        pass
    return _constant_formula(t, where)


@dataclass(slots=True)
class FormulaText:
    """An answer that is a formula in the formula's variables (`2*x*sin(x)`): graded at many
    points by check.formulas."""

    tape: Tape
    text: str


def _constant_formula(t: str, where: str):
    """A formula of numbers (2*pi) as its value; a formula with variables as a FormulaText."""
    from ..parse import parse

    try:
        tape, _ = parse(t)
    except GradcliError:
        tape = None
    if tape is None or len(tape.outputs) != 1:
        raise InputError(f"{where}: {t!r} is not a number (write -4, 0.39, 1/3, pi, [1, 2], "
                         "a formula of numbers such as 2*pi, or a formula in the variables "
                         "such as 2*x*cos(x))")
    if tape.variables:
        return FormulaText(tape, t)
    values = engine.forward(tape, {})
    return values[tape.outputs[0]]


def formula_answers(tape: Tape, answers: list[Answer], point: dict, exact: bool = False) -> None:
    """Formula answers made ready: each variable of the answer must be one of the formula's;
    `formula` gets the answer's tape. With --exact, numbers written as fractions (2/9) become
    Fractions."""
    from ..points import exact_scalar

    for a in answers:
        if isinstance(a.answer, FormulaText):
            f = a.answer
            extra = [n for n in f.tape.variables if n not in tape.variables]
            if extra:
                known = ", ".join(list(tape.variables)[:10]) or "none"
                where = a.source if ":" in a.source else f"{a.source} {a.text}"
                raise InputError(f"{where}: {a.text!r} is not a number, nor a formula in the "
                                 f"formula's variables ({extra[0]} is not one of them: "
                                 f"{known})")
            missing = [n for n in f.tape.variables if n not in point]
            if missing:
                raise InputError(f"{a.source} {a.text}: {missing[0]} has no value (--at)")
            a.formula = f.tape
            a.answer = np.float64("nan")
        elif exact and np.ndim(a.answer) == 0:
            q = exact_scalar(a.text)
            if q is None:
                try:  # a constant expression (1/3 + 1/6): H12L's reader, exact where rational
                    from ..points import constant_value

                    q = constant_value(a.text, True, f"{a.source} {a.text}")
                except (ImportError, GradcliError):
                    q = None
            if type(q) is Fraction:
                a.answer = q


def _json_answer(data, where: str):
    """An answer from a JSON file: a number, a string (as on the command line) or nested lists."""
    if isinstance(data, bool) or data is None:
        raise InputError(f"{where}: {json.dumps(data)} is not a number")
    if isinstance(data, (int, float)):
        return np.float64(data)
    if isinstance(data, str):
        return answer_value(data, where)
    if isinstance(data, list):
        try:
            value = np.asarray(data, dtype=np.float64)
        except (ValueError, TypeError):
            return answer_value(json.dumps(data, ensure_ascii=False).replace('"', ""), where)
        if value.size == 0:
            raise InputError(f"{where}: an empty list is not an answer")
        return value
    raise InputError(f"{where}: {json.dumps(data)[:40]} is not a number")


def output_ref(tape: Tape, ref: str, outputs: Sequence[str] | None,
               where: str) -> tuple[str, int | None]:
    """`f2.x` -> (`x`, 1): the gradient of output f2 (outputs named as `render.names` names
    them; f1, f2, ... by default); a plain `x` -> (`x`, None)."""
    r = ref.strip()
    if "." not in r:
        return r, None
    head, _, rest = r.partition(".")
    names = list(outputs or [])
    if not names:
        n = len(tape.outputs)
        names = [(tape.names.get(o) if tape.inputs[o] else None)
                 or ("f" if n == 1 else f"f{k + 1}") for k, o in enumerate(tape.outputs)]
    if head.strip() in names:
        return rest.strip(), names.index(head.strip())
    raise InputError(f"{where}: {head.strip()!r} is not an output of the formula (its outputs: "
                     f"{', '.join(names)}; write {names[-1]}.x for ∂{names[-1]}/∂x)")


def parse_expect(tape: Tape, specs: Iterable[str],
                 outputs: Sequence[str] | None = None) -> list[Answer]:
    """`--expect x=-4,y=-4,z=3`: hand-computed gradients (of variables or any named node);
    `f2.y=1` names an output of a formula with several."""
    answers = []
    for ref, text, where in _items(specs, "--expect", "{ref}=-4"):
        ref, output = output_ref(tape, ref, outputs, where)
        node = resolve(tape, ref, "--expect")
        answers.append(Answer(node, "grad", answer_value(text, where), text.strip(),
                              "--expect", output))
    return answers


def _items(specs: Iterable[str], option: str, example: str):
    """(what is answered, the answer's text, where it was written) for each NAME=ANSWER item of
    the option's values; a missing '=' is an error showing `example`."""
    from ..points import split_items

    for spec in specs:
        for item in split_items(spec):
            if not item.strip():
                continue
            ref, eq, text = item.partition("=")
            where = f"{option} {item.strip()}"
            if not eq:
                shown = example.format(ref=ref.strip() or "x")
                raise InputError(f"{where}: missing '=': write {shown}")
            yield ref, text, where


def parse_expect_node(tape: Tape, specs: Iterable[str]) -> list[Answer]:
    """`--expect-node q=3` (a value), `--expect-node 'grad q=-4'`, `'value #2=3'`."""
    answers = []
    for ref, text, where in _items(specs, "--expect-node", "q=3 (a value) or 'grad q=-4'"):
        words = ref.split()
        kind = "value"
        if len(words) == 2 and words[0].lower() in _KINDS:
            kind, ref = _KINDS[words[0].lower()], words[1]
        elif len(words) != 1:
            raise InputError(f"{where}: write q=3 for a value, 'grad q=-4' for a gradient")
        node = resolve(tape, ref, "--expect-node")
        answers.append(Answer(node, kind, answer_value(text, where), text.strip(),
                              "--expect-node"))
    return answers


def read_answers(tape: Tape, path: str, text: str | None = None) -> tuple[list[Answer], dict]:
    """A file of hand answers: JSON as `gradcli eval --json` prints it (its `nodes`), JSON
    `{"value": {...}, "grad": {...}}`, or text lines `q value 3` / `x grad -4`. Returns the
    answers and the point the file carries (eval's `at`), if any."""
    if text is None:
        if not os.path.isfile(path):
            raise InputError(f"--answers {path}: no such file")
        from ..session import MAX_FORMULA_BYTES

        try:
            with open(path, encoding="utf-8-sig") as fh:
                text = fh.read(MAX_FORMULA_BYTES + 1)  # characters: /dev/zero stops here
            if len(text) > MAX_FORMULA_BYTES:
                raise InputError(f"--answers {path} is more than {MAX_FORMULA_BYTES >> 20} MB: "
                                 "gradcli reads answers files up to that size")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--answers {path}: cannot read it ({exc})") from None
    stripped = text.lstrip()
    if path.lower().endswith(".json") or stripped.startswith(("{", "[")):
        try:
            check_json_depth(text, f"--answers {path}")
            doc = json.loads(text)
        except ValueError as exc:
            raise InputError(f"--answers {path}: not valid JSON ({exc})") from None
        return _json_answers(tape, doc, path)
    return _text_answers(tape, text, path), {}


def _json_answers(tape: Tape, doc, path: str) -> tuple[list[Answer], dict]:
    at: dict = {}
    if isinstance(doc, dict) and "nodes" in doc:
        nodes = doc["nodes"]
        at = doc.get("at") or {}
        if not isinstance(at, dict):
            raise InputError(f"--answers {path}: `at` must be an object of names and values")
    elif isinstance(doc, list):
        nodes = doc
    elif isinstance(doc, dict):
        return _mapping_answers(tape, doc, path), {}
    else:
        raise InputError(f"--answers {path}: expected a JSON object or a list of nodes")
    if not isinstance(nodes, list):
        raise InputError(f"--answers {path}: `nodes` must be a list")
    answers = []
    for k, entry in enumerate(nodes):
        where = f"--answers {path}: nodes[{k}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object such as "
                             '{"id": 2, "value": 3, "grad": -4}')
        node = _json_node(tape, entry, where)
        if entry.get("op") == "const" or (node is not None and tape.ops[node].name == "const"):
            continue  # numbers are given, not computed: nothing to grade
        for kind in ("value", "grad"):
            data = entry.get(kind)
            if data is None or (kind == "value" and tape.ops[node].name == "var"):
                continue  # an input's value is given (the point), not computed
            if kind == "grad" and isinstance(data, list) and len(tape.outputs) > 1:
                raise InputError(f"{where}: gradients for several outputs cannot be graded")
            answers.append(Answer(node, kind, _json_answer(data, f"{where}.{kind}"),
                                  json.dumps(data)[:60], f"{path}: node {k}"))
    return answers, at


def _json_node(tape: Tape, entry: dict, where: str) -> int:
    """The node a JSON entry means: by name when it has one, else by id (checked against the
    node's text, so a table exported for another formula is not graded by mistake)."""
    name = entry.get("name")
    if isinstance(name, str) and name:
        node = resolve(tape, name, where)
    elif isinstance(entry.get("id"), int) and not isinstance(entry.get("id"), bool):
        node = resolve(tape, f"#{entry['id']}", where)
    elif isinstance(entry.get("node"), str):
        node = resolve(tape, entry["node"], where)
    else:
        raise InputError(f"{where}: give the node's \"name\" or its \"id\"")
    expr = entry.get("expr")
    if isinstance(expr, str) and "…" not in expr:
        if "".join(expr.split()) != "".join(tape.expr(node, 10**9).split()):
            raise InputError(f"{where}: node #{node} is `{tape.expr(node, 40)}` in this formula, "
                             f"but `{expr[:40]}` in the answers (exported for another formula?)")
    return node


def _mapping_answers(tape: Tape, doc: dict, path: str) -> list[Answer]:
    answers = []
    aliases = {"value": "value", "values": "value", "grad": "grad", "grads": "grad",
               "gradient": "grad", "gradients": "grad"}
    unknown = [k for k in doc if k not in aliases]
    if unknown:
        raise InputError(f"--answers {path}: unknown key {unknown[0]!r}: write "
                         '{"value": {"q": 3}, "grad": {"x": -4}}')
    for key, table in doc.items():
        kind = aliases[key]
        if not isinstance(table, dict):
            raise InputError(f"--answers {path}: `{key}` must map node names to numbers")
        for ref, data in table.items():
            where = f"--answers {path}: {key}.{ref}"
            node = resolve(tape, ref, where)
            answers.append(Answer(node, kind, _json_answer(data, where), json.dumps(data)[:60],
                                  f"{path}: {key}.{ref}"))
    return answers


def _text_answers(tape: Tape, text: str, path: str) -> list[Answer]:
    """Lines `NODE value NUMBER` or `NODE grad NUMBER` (an optional `=` or `:` before the number);
    blank lines and `# comments` are skipped; `#3` (no space) is node 3."""
    answers = []
    for number, line in enumerate(text.splitlines(), 1):
        body = line.strip()
        if not body or (body.startswith("#") and not body[1:2].isdigit()):
            continue  # a blank line or a comment (`#3` is node 3, `# ...` a comment)
        body = re.split(r"\s#", body, maxsplit=1)[0].strip()  # a trailing comment
        where = f"--answers {path}:{number}"
        m = re.fullmatch(r"(\S+)\s+([A-Za-z]+)\s*[=:]?\s*(.+)", body)
        if not m or m.group(2).lower() not in _KINDS:
            raise InputError(f"{where}: expected `NODE value NUMBER` or `NODE grad NUMBER` "
                             f"(such as `q value 3` or `x grad -4`), got {body[:40]!r}")
        node = resolve(tape, m.group(1), where)
        kind = _KINDS[m.group(2).lower()]
        answers.append(Answer(node, kind, answer_value(m.group(3), where), m.group(3).strip(),
                              f"{path}:{number}"))
    if not answers:
        raise InputError(f"--answers {path}: no answers in it (lines such as `q value 3`)")
    return answers
