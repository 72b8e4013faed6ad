"""The parser's fast path: a one-regex tokenizer and a lean driver over Lark's own LALR tables.

The tables come from Lark, compiled into plain data by gradcli.lalr_gen and shipped in the
package as lalr_tables.json, so a run whose formula parses never imports Lark at all. The driver
calls the same builder callbacks Lark's inline transformer would (gradcli.parse.Builder); where
it meets anything it does not accept it returns False and Lark's own parser runs instead, so
every syntax error is Lark's.

This module does not import gradcli.parse: parse passes it the grammar and a way to build Lark's
parser.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from lark import Lark

#: After these tokens a new line continues the statement (as it does inside brackets).
CONTINUES = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW", "COMMA", "ASSIGN",
                       "LPAR", "LSQB", "CMP", "COLON"})

#: The tokenizer, compiled on first use: a formula gradcli.climb parses never needs it.
_TOKEN_SOURCE = (
    r"(?P<WS>[ \t\f\r]+|\#[^\n]*)"
    r"|(?P<NUMBER>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<NAME>[^\W\d]\w*)"
    r"|(?P<POW>\*\*|\^)"
    r"|(?P<DOT_T>\.T)"
    r"|(?P<SEP>;|\n)"
    r"|(?P<CMP><=|>=|==|!=|<|>)"
    r"|(?P<PUNCT>[-+*/@(),=\[\]:])"
)
_TOKEN: list = []
_PUNCT = {"-": "MINUS", "+": "PLUS", "*": "STAR", "/": "SLASH", "@": "AT", "(": "LPAR",
          ")": "RPAR", ",": "COMMA", "=": "ASSIGN", "[": "LSQB", "]": "RSQB", ":": "COLON"}


class _Tok:
    """A token for the builder's callbacks: what they read of Lark's Token, and no more."""

    __slots__ = ("type", "value", "start_pos", "end_pos")

    def __init__(self, type_: str, value: str, start: int, end: int):
        self.type = type_
        self.value = value
        self.start_pos = start
        self.end_pos = end


class FastLALR:
    """Drives the grammar's LALR tables with the builder's callbacks over a regex tokenizer.

    The tables come from Lark, compiled into plain data and shipped in the package (see
    gradcli.lalr_gen), so a run whose formula parses never imports Lark at all. A shift is
    [next state]; a reduce is [size, rule name, callback name or None, kept child positions or
    None]; a callback of None marks the single-child rules Lark inlines (`?expr: product`), which
    only change state.
    """

    def __init__(self, data: dict, multiline: bool):
        self.start = data["start"]
        self.end = data["end"]
        self.multiline = multiline
        self.states = {int(k): {kind: tuple(act) for kind, act in row.items()}
                       for k, row in data["states"].items()}

    @staticmethod
    def compile(lark: "Lark") -> dict:
        """Lark's parse table and callback wiring as JSON-ready data."""
        from lark.parse_tree_builder import ExpandSingleChild
        from lark.parsers.lalr_analysis import Shift

        inner = lark.parser.parser.parser
        table = inner.parse_table
        states: dict = {}
        for state, row in table.states.items():
            compiled = {}
            for kind, (action, arg) in row.items():
                if action is Shift:
                    compiled[kind] = [arg]
                    continue
                size = len(arg.expansion)
                if size == 1 and isinstance(inner.callbacks[arg], ExpandSingleChild):
                    compiled[kind] = [size, arg.origin.name, None, None]
                    continue
                keep = [k for k, sym in enumerate(arg.expansion)
                        if not (sym.is_term and sym.filter_out)]
                if any(not sym.is_term and sym.name.startswith("_") for sym in arg.expansion):
                    raise RuntimeError("inlined _rules are not supported by the fast path")
                name = arg.alias or arg.origin.name
                compiled[kind] = [size, arg.origin.name, name,
                                  None if len(keep) == size else keep]
            states[str(state)] = compiled
        return {"start": table.start_states["start"], "end": table.end_states["start"],
                "states": states}

    def parse(self, text: str, builder) -> bool:
        """Parse `text`; False (having built nothing to keep) where Lark must take over."""
        states = self.states
        state_stack = [self.start]
        value_stack: list = []
        continues = CONTINUES
        depth = 0
        prev = None
        pos = 0
        multiline = self.multiline
        if not _TOKEN:
            _TOKEN.append(re.compile(_TOKEN_SOURCE))
        for m in _TOKEN[0].finditer(text):
            start = m.start()
            if start != pos:
                return False  # a character no terminal matches
            pos = m.end()
            kind = m.lastgroup
            if kind == "WS":
                continue
            value = m.group()
            if kind == "PUNCT":
                kind = _PUNCT[value]
                if kind == "LPAR" or kind == "LSQB":
                    depth += 1
                elif (kind == "RPAR" or kind == "RSQB") and depth > 0:
                    depth -= 1
            elif kind == "SEP":
                if value == "\n" and multiline and (depth > 0 or prev in continues):
                    continue
                kind = "_SEP"
            prev = kind
            while True:
                act = states[state_stack[-1]].get(kind)
                if act is None:
                    return False
                if len(act) == 1:  # shift
                    state_stack.append(act[0])
                    value_stack.append(_Tok(kind, value, start, pos))
                    break
                if act[2] is None:  # an inlined single child (expr -> product): state only
                    state_stack[-1] = states[state_stack[-2]][act[1]][0]
                else:
                    self._reduce(act, state_stack, value_stack, builder)
        if pos != len(text):
            return False
        end = self.end
        while True:
            act = states[state_stack[-1]].get("$END")
            if act is None or len(act) == 1:
                return False
            if act[2] is None:
                state_stack[-1] = states[state_stack[-2]][act[1]][0]
            else:
                self._reduce(act, state_stack, value_stack, builder)
            if state_stack[-1] == end:
                return True

    def _reduce(self, act, state_stack: list, value_stack: list, builder) -> None:
        """Apply a reduce: the builder's callback on the rule's (kept) children."""
        size, origin, name, keep = act
        if size:
            children = value_stack[-size:]
            del state_stack[-size:]
            del value_stack[-size:]
            if keep is not None:
                children = [children[k] for k in keep]
        else:
            children = []
        value_stack.append(getattr(builder, name)(children))
        state_stack.append(self.states[state_stack[-1]][origin][0])


_FAST: dict[bool, FastLALR] = {}

#: The tables, generated from the grammar by gradcli.lalr_gen and shipped inside the package.
TABLES_FILE = "lalr_tables.json"


def tables(multiline: bool, grammar: Callable[[], str], lark: Callable[[], "Lark"]) -> FastLALR:
    """The fast path's tables: from memory, from the file shipped in the package (used only when
    it was made from this `grammar()`), or else compiled in memory from the Lark parser `lark()`
    builds (a checkout whose grammar changed: run `python -m gradcli.lalr_gen`). No cache folder
    is ever read or written, so no file another user can write decides what a formula computes."""
    fast = _FAST.get(multiline)
    if fast is not None:
        return fast
    import hashlib
    import json
    import os

    key = hashlib.sha256(grammar().encode("utf-8")).hexdigest()
    data = None
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), TABLES_FILE),
                  encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or data.get("grammar") != key:
            data = None
    except (OSError, ValueError):  # pragma: no cover - a broken install
        data = None
    if data is None:
        data = FastLALR.compile(lark())
    fast = _FAST[multiline] = FastLALR(data, multiline)
    return fast
