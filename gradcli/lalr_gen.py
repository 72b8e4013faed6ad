"""Build gradcli/lalr_tables.json, the fast path's LALR tables, from grammars/gradcli.lark.

The tables ship inside the package, so no file a user (or another user) can write ever decides
what a formula computes. Regenerate them after every grammar change:

    python -m gradcli.lalr_gen           # rewrites gradcli/lalr_tables.json
    python -m gradcli.lalr_gen --check   # exit 1 when the shipped file is stale

tests/test_security.py fails (naming the first command) while the shipped file differs from
what this module makes of the grammar. Lark numbers its LALR states in an order that changes
with Python's hash seed, so the states are renumbered canonically (breadth first from the start
state, symbols in sorted order): the same grammar always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .lalr_fast import TABLES_FILE, FastLALR

COMMAND = "python -m gradcli.lalr_gen"


def canonical(data: dict) -> dict:
    """`data` (FastLALR.compile's) with its states renumbered breadth first from the start."""
    states = data["states"]
    order = [str(data["start"])]
    number = {order[0]: 0}
    k = 0
    while k < len(order):
        row = states[order[k]]
        k += 1
        for sym in sorted(row):
            act = row[sym]
            if len(act) == 1 and str(act[0]) not in number:
                number[str(act[0])] = len(order)
                order.append(str(act[0]))
    if len(order) != len(states):  # pragma: no cover - Lark makes no unreachable states
        raise RuntimeError("the LALR table has states the start state never reaches")
    renumbered = {}
    for old in order:
        row = states[old]
        renumbered[str(number[old])] = {
            sym: ([number[str(row[sym][0])]] if len(row[sym]) == 1 else row[sym])
            for sym in sorted(row)}
    return {"start": 0, "end": number[str(data["end"])], "states": renumbered}


def generate(grammar: str | None = None) -> str:
    """The text of lalr_tables.json for `grammar` (default: gradcli's own)."""
    from lark import Lark

    from .parse import Builder, grammar_text

    text = grammar_text() if grammar is None else grammar
    lark = Lark(text, parser="lalr", lexer="basic", transformer=Builder(), cache=False)
    data = canonical(FastLALR.compile(lark))
    data["grammar"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the shipped tables; the exit code says which."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(__file__).resolve().parent / TABLES_FILE
    text = generate()
    if "--check" in args:
        same = target.is_file() and target.read_text(encoding="utf-8") == text
        print(f"{target}: {'up to date' if same else 'STALE: run ' + COMMAND}")
        return 0 if same else 1
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
