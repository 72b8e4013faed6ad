"""`eval --explain`: the backward pass written out node by node, in the course's words and numbers.

    ∂f/∂q = z = -4
    ∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4

`explain()` gathers the steps as data: for each node that carries a gradient, from the output back
to the inputs (reverse tape order), one term per use of the node by a parent: the upstream
gradient ∂f/∂parent times the local partial ∂parent/∂node (or, for a structural tensor op, its
vjp). Every number is the engine's own (result.adjoints, result.partials, the op's vjp), so the
explanation's numbers are the JSON's. `text_lines()` writes the steps as lines of styled pieces
(for Rich or plain text), `latex()` as an `align*` environment.

The local partials are written with the op's own rule text (`ops.py`: "∂/∂a = b, ∂/∂b = a"), its
placeholders replaced by the inputs' labels: the user's names, else the node's source text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..engine import contribution
from .names import output_names
from .text import SMALL, fmt

if TYPE_CHECKING:  # pragma: no cover
    from ..result import Result
    from ..tape import Tape

VALUE = "green"  # the table's colours: values green, gradients red
GRAD = "red"
LABEL_WIDTH = 40
#: A call's arguments written out: at most this many (the first three and the last two, with
#: "…" and the count between), so that a step over a call of 10^4 arguments is not 10^4 labels.
MAX_ARGS = 6


def shown_args(nodes) -> list:
    """The argument ids a long call shows, with None where "…" stands (MAX_ARGS at most)."""
    n = len(nodes)
    if n <= MAX_ARGS:
        return list(nodes)
    return [nodes[0], nodes[1], nodes[2], None, nodes[n - 2], nodes[n - 1]]


class _Without(Sequence):
    """A call's inputs but the one in `pos` (max's "every other a_j"), without copying them."""

    __slots__ = ("ins", "pos")

    def __init__(self, ins: tuple, pos: int):
        self.ins, self.pos = ins, pos

    def __len__(self) -> int:
        return len(self.ins) - 1

    def __getitem__(self, k: int):
        if not 0 <= k < len(self.ins) - 1:
            raise IndexError(k)
        return self.ins[k + (k >= self.pos)]


def _more(nodes) -> str:
    return f"… {len(nodes) - MAX_ARGS + 1:,} more …"
LEGEND = "each node: Σ over its uses p of the upstream ∂{f}/∂p × the local ∂p/∂node"

Piece = tuple[str, "str | None"]  # a piece of text and its style (None: plain)
Line = list[Piece]


# -- the steps, as data --------------------------------------------------------------------------

@dataclass(slots=True)
class Term:
    """One use of a node by a parent: the parent's gradient times the local partial."""

    parent: int
    pos: int  # which input of the parent the node is
    upstream: object  # ∂f/∂parent
    local: object  # ∂parent/∂node; None for a structural op (matmul, sum, ...), which has a vjp
    value: object  # this use's share of ∂f/∂node (upstream · local, un-broadcast; or the vjp)


@dataclass(slots=True)
class Step:
    """One node of the backward pass: its gradient and the terms that add up to it."""

    node: int
    grad: object  # ∂f/∂node, the engine's adjoint
    terms: list[Term]  # empty for the output itself (the seed)


@dataclass(slots=True)
class Explanation:
    """The backward pass for one output."""

    output: int
    name: str  # what the output is called: the program's name, else f (f1, f2, … for several)
    steps: list[Step]
    total: int  # how many steps there are in all (more than len(steps) when capped)
    unreached: list[int] = field(default_factory=list)  # variables the output does not use

    @property
    def left_out(self) -> int:
        return self.total - len(self.steps)


def explain(r: "Result", k: int = 0, max_steps: int = 200) -> Explanation:
    """The backward pass from output k: one step per node that carries a gradient and that the
    output uses, in reverse tape order, at most `max_steps` of them (0: all)."""
    tape = r.tape
    o = tape.outputs[k]
    name = output_names(tape)[k]
    active, inputs = r.active, tape.inputs
    steps: list[Step] = []
    total = 0
    reached = bytearray(o + 1)
    if active[o]:
        reached[o] = 1
    uses: dict[int, list[tuple[int, int]]] = {}
    with np.errstate(all="ignore"):
        for i in range(o, -1, -1):
            if not reached[i]:
                continue
            total += 1
            keep = not max_steps or len(steps) < max_steps
            if keep:
                steps.append(_step(r, k, i, uses.pop(i, [])))
            for pos, j in enumerate(inputs[i]):
                if active[j]:
                    reached[j] = 1
                    if keep:  # a parent comes before its inputs: all its uses are known in time
                        uses.setdefault(j, []).append((i, pos))
    ids = [tape.variables[x] for x in r.wrt]
    unreached = [j for j in ids if j > o or not reached[j]]
    return Explanation(o, name, steps, total, unreached)


def _step(r: "Result", k: int, j: int, uses: list[tuple[int, int]]) -> Step:
    """Node j's terms, in the order the engine adds them (parents from the last one back)."""
    adj, values, tape = r.adjoints[k], r.values, r.tape
    terms = []
    for p, pos in uses:
        g = adj[p]
        ps = r.partials[p]
        # the engine's own step: g · p (or a structural op's vjp), un-broadcast to j's shape
        local = None if ps is None else ps[pos]
        c = contribution(tape, values, r.partials, p, pos, g)
        terms.append(Term(p, pos, g, local, c))
    return Step(j, adj[j], terms)


# -- the op's rule text, with the inputs' labels in place of its placeholders -------------------

_RULE = re.compile(r"∂/∂(\S+) = (.*?)(?=, ∂/∂|$)")
_TOKEN = re.compile(r"[A-Za-zα-ωΑ-Ω][A-Za-z0-9_]*|\d+(?:\.\d+)?| +|.")


@dataclass(frozen=True, slots=True)
class Sub:
    """What a placeholder of a rule stands for."""

    kind: str  # "node" (an input or the op's output), "grad" (∂f/∂parent), "text", "others"
    node: int = -1
    text: str = ""
    nodes: Sequence[int] = ()


def rule_tokens(r: "Result", p: int, pos: int) -> list | None:
    """The local partial ∂p/∂(input pos) as the op's rule writes it: a list of plain tokens and
    `Sub`s standing for labels. None when the op's rule text says nothing for this input."""
    tape = r.tape
    op = tape.ops[p]
    ins = tape.inputs[p]
    parts = _RULE.findall(op.rule)
    if len(parts) == len(ins):
        holders = {name: ins[q] for q, (name, _) in enumerate(parts)}
        rhs = parts[pos][1]
    elif len(parts) == 1:  # one rule for every input (max, min, stack), or an axis argument
        holders = {parts[0][0]: ins[pos]}
        rhs = parts[0][1]
    else:
        return None
    subs: dict[str, Sub] = {name: Sub("node", j) for name, j in holders.items()}
    subs.setdefault("G", Sub("grad", p))  # the upstream gradient, in the tensor rules
    subs.setdefault("y", Sub("node", p))  # the op's own output (softmax)
    if op.name == "mean":
        n = np.size(r.values[ins[0]]) // max(1, np.size(r.values[p]))
        subs.setdefault("n", Sub("text", text=str(n)))
    if op.name == "stack":
        subs.setdefault("k", Sub("text", text=str(pos)))
    if op.name in ("max", "min"):
        rhs = rhs.replace("every a_j", "a_j")
        subs["a_j"] = Sub("others", node=p, text=op.name,
                          nodes=_Without(ins, pos))
    return [subs.get(tok, tok) for tok in _TOKEN.findall(rhs)]


def _context(tokens: list, at: int) -> tuple[str, str]:
    """The nearest non-blank plain tokens before and after position `at`."""
    before = next((t for t in reversed(tokens[:at]) if not isinstance(t, Sub) and t.strip()), "")
    after = next((t for t in tokens[at + 1:] if not isinstance(t, Sub) and t.strip()), "")
    return before, after


def _raised(tokens: list, at: int) -> bool:
    """Whether the token at `at` carries a superscript (ᵀ, ², ^)."""
    nxt = tokens[at + 1] if at + 1 < len(tokens) else ""
    return isinstance(nxt, str) and nxt in ("ᵀ", "²", "^")


def _needs_no_brackets(tokens: list, at: int) -> bool:
    """A label alone, or alone between a call's brackets, needs no brackets of its own."""
    if len([t for t in tokens if isinstance(t, Sub) or t.strip()]) == 1:
        return True
    before, after = _context(tokens, at)
    return before in ("(", ",") and after in (")", ",")


# -- labels: what a node is called --------------------------------------------------------------

def atomic(label: str) -> bool:
    """Whether a label reads as one thing: a name, a number, a call `f(...)`, a literal `[...]`."""
    if re.fullmatch(r"[\w.]+|#\d+", label):
        return True
    m = re.match(r"[\w.]*([(\[])", label)
    if not m or label[-1] != (")" if m.group(1) == "(" else "]"):
        return False
    depth = 0
    for n in range(m.start(1), len(label)):
        ch = label[n]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                return n == len(label) - 1  # the first bracket closes only at the very end
    return False


class _Plain:
    """How the text explanation writes labels, partials, products and numbers."""

    times = " · "
    tensor_times = " ⊙ "
    tensor_numbers = True  # write out g ⊙ p for tensors too (LaTeX keeps only the results)

    def __init__(self, r: "Result", ex: Explanation | None, digits: int,
                 numbered: set[int] | None = None):
        self.r, self.tape, self.ex, self.digits = r, r.tape, ex, digits
        self.kinks_told: set[int] = set()  # kinked nodes already explained
        self.numbered = set() if numbered is None else numbered  # nodes called #id (v_{id})

    def factor(self, v, first: bool) -> str:
        """A number as a factor or a term: -4 in front, (-4) after; fractions in brackets."""
        s = self.number(v)
        if type(v) is Fraction and v.denominator != 1:
            return f"({s})"
        return s if first or not s.startswith("-") else f"({s})"

    def label(self, i: int) -> str:
        """A node's name, else its source text when short, else #id (defined in the forward
        pass, as the table and the JSON number it)."""
        tape = self.tape
        name = tape.names.get(i)
        if name is not None:
            return name
        if self.ex is not None and i == self.ex.output:
            return self.ex.name
        if tape.ends[i] - tape.starts[i] <= LABEL_WIDTH or not tape.inputs[i]:
            return tape.expr(i, LABEL_WIDTH)
        self.numbered.add(i)
        return f"#{i}"

    def one_level(self, i: int) -> str:
        """Node i in terms of its inputs' labels: #7 + x, exp(#5)."""
        op, ins = self.tape.ops[i], self.tape.inputs[i]
        if op.name == "id":
            return self.label(ins[0])
        if op.name == "neg":
            return "-" + self.wrapped(ins[0])
        if op.symbol is not None and len(ins) == 2:
            return f"{self.wrapped(ins[0])} {op.symbol} {self.wrapped(ins[1])}"
        return f"{op.name}({self.args(ins)})"

    def args(self, nodes) -> str:
        """Labels of a call's arguments, a long list shortened (shown_args)."""
        return ", ".join(_more(nodes) if j is None else self.label(j)
                         for j in shown_args(nodes))

    def wrapped(self, i: int) -> str:
        lab = self.label(i)
        return lab if atomic(lab) else f"({lab})"

    def expression(self, i: int) -> str:
        """The node's own formula in brackets (for an output, not its name)."""
        if not self.tape.inputs[i]:
            return self.label(i)
        if self.tape.ends[i] - self.tape.starts[i] <= LABEL_WIDTH:
            lab = self.tape.expr(i, LABEL_WIDTH)
        else:
            lab = self.one_level(i)
        return lab if atomic(lab) else f"({lab})"

    eq = "="

    def name_of(self, name: str) -> str:
        return name

    def own(self, i: int) -> str:
        """Node i's own formula (for a named node, not its name)."""
        if self.tape.ends[i] - self.tape.starts[i] <= 2 * LABEL_WIDTH:
            return self.tape.expr(i, 2 * LABEL_WIDTH)
        return self.one_level(i)

    def partial(self, top: str, bottom: str) -> str:
        return f"∂{top}/∂{bottom}"

    def out(self) -> str:
        """The output's name as written here."""
        return self.ex.name

    def grad_of(self, i: int) -> str:
        return self.partial(self.out(), self.wrapped(i))

    def local_of(self, p: int, j: int) -> str:
        """∂p/∂j, the local partial; the output is written as its formula here, so that its local
        partial is not mistaken for the total gradient ∂f/∂j."""
        top = self.expression(p) if p == self.ex.output else self.wrapped(p)
        return self.partial(top, self.wrapped(j))

    def number(self, v) -> str:
        s = fmt(v, self.digits)
        if isinstance(v, np.ndarray) and v.size > SMALL:
            s = f"⟨{s}⟩"
        return s

    def rule(self, tokens: list) -> str:
        out = []
        for n, tok in enumerate(tokens):
            if not isinstance(tok, Sub):
                out.append(tok)
                continue
            if tok.kind == "grad":
                grad = self.grad_of(tok.node)
                out.append(f"({grad})" if _raised(tokens, n) else grad)
            elif tok.kind == "text":
                out.append(tok.text)
            elif tok.kind == "others":
                if len(tok.nodes) == 1:
                    out.append(self.wrapped(tok.nodes[0]))
                elif tok.nodes:
                    out.append(f"{tok.text}({self.args(tok.nodes)})")
                else:  # max(v) of one tensor: compare with the result
                    out.append(self.wrapped(tok.node))
            else:
                lab = self.label(tok.node)
                out.append(lab if atomic(lab) or _needs_no_brackets(tokens, n) else f"({lab})")
        return "".join(out)

    def dims(self, shape: tuple) -> str:
        return "×".join(map(str, shape)) if shape else "scalar"

    def shapes(self, items: list[tuple[str, tuple]], result: tuple[str, tuple]) -> str:
        listed = ", ".join(f"{sym} {self.dims(shape)}" for sym, shape in items)
        return f"shapes: {listed} → {result[0]} {self.dims(result[1])}"

    def vjp(self, op: str, grad: str) -> str:
        return f"vjp_{op}({grad})"

    def kink(self, p: int, op: str, rule: str, convention: str) -> str:
        return (f"{self.label(p)} is exactly at a kink of {op}: {rule}; the slope used is the "
                f"{convention} convention's (--subgradient)")

    def broadcast(self, full: tuple, final: tuple, j: int) -> str:
        return (f"broadcasting: summed from {self.dims(full)} down to {self.dims(final)}, "
                f"the shape of {self.label(j)}")


# -- the layout, shared by text and LaTeX --------------------------------------------------------

@dataclass(slots=True)
class _Row:
    """One line of the explanation: `lhs = rhs[0] = rhs[1] = …`; a note when lhs is None."""

    lhs: Line | None
    rhs: list[Line]


def _is_tensor(*vs) -> bool:
    return any(isinstance(v, np.ndarray) for v in vs)


def _step_rows(w, r: "Result", ex: Explanation, step: Step) -> list[_Row]:
    """The rows for one step: the chain rule with its numbers, then the local partials' rules."""
    j = step.node
    lhs: Line = [(w.grad_of(j), "bold")]
    if not step.terms:  # the output: its gradient with respect to itself
        if r.tape.inputs[j]:
            lhs = [(w.partial(w.out(), w.out()), "bold")]
        return [_Row(lhs, [[(w.number(step.grad), GRAD)]])]
    terms = step.terms
    seeded = terms[0].parent == ex.output and not isinstance(terms[0].upstream, np.ndarray)
    if len(terms) == 1 and terms[0].local is not None and seeded:
        # A use by the output itself: ∂f/∂q is the local partial (the upstream gradient is 1).
        t = terms[0]
        rule = _rule_text(w, r, t)
        value = w.number(t.local)
        rhs: list[Line] = []
        if rule is not None and rule != value:
            rhs.append([(rule, None)])
        rhs.append([(w.number(step.grad), GRAD)])
        return [_Row(lhs, rhs)] + _kink_rows(w, r, terms) + _shape_rows(w, r, step)
    symbols: Line = []
    numbers: Line = []
    products: Line = []
    notes: list[_Row] = []
    for n, t in enumerate(terms):
        plus = [] if n == 0 else [(" + ", None)]
        tensor = _is_tensor(t.upstream, t.local, t.value)
        if t.local is None:  # a structural op: its rule is the vjp itself (∂f/∂W = ∂f/∂D·Xᵀ)
            tokens = rule_tokens(r, t.parent, t.pos)
            text = w.rule(tokens) if tokens is not None else None
            if text is None:  # no rule text for this input: name the op's reverse rule
                text = w.vjp(w.tape.ops[t.parent].name, w.grad_of(t.parent))
            elif not any(isinstance(x, Sub) and x.kind == "grad" for x in tokens):
                text = w.grad_of(t.parent) + w.tensor_times + (text if atomic(text) else
                                                               f"({text})")
            symbols += plus + [(text, None)]
            numbers += plus + [(w.factor(t.value, n == 0), GRAD)]
            products += plus + [(w.factor(t.value, n == 0), GRAD)]
            continue
        times = w.tensor_times if tensor else w.times
        symbols += plus + [(w.grad_of(t.parent) + times + w.local_of(t.parent, j), None)]
        numbers += plus + [(w.factor(t.upstream, n == 0), GRAD), (times, None),
                           (w.factor(t.local, False), None)]
        products += plus + [(w.factor(t.value, n == 0), GRAD)]
        rule = _rule_text(w, r, t)
        value = w.number(t.local)
        if rule is not None and rule != value:
            notes.append(_Row(None, [[(w.local_of(t.parent, j), None)], [(rule, None)],
                                     [(value, None)]]))
    notes += _kink_rows(w, r, terms)
    rhs = [symbols]
    tensors = any(_is_tensor(t.upstream, t.local, t.value) for t in terms)
    if numbers != products and (w.tensor_numbers or not tensors):
        rhs.append(numbers)
    if len(terms) > 1:
        rhs.append(products)
    rhs.append([(w.number(step.grad), GRAD)])
    return [_Row(lhs, rhs)] + notes + _shape_rows(w, r, step)


def _kink_rows(w, r: "Result", terms: list[Term]) -> list[_Row]:
    """A parent evaluated exactly at a kink: its slope is a convention (--subgradient)."""
    rows = []
    for p in dict.fromkeys(t.parent for t in terms):
        if p in r.kinks and p not in w.kinks_told:
            w.kinks_told.add(p)
            op = r.tape.ops[p]
            rule = op.kink_rule or op.note
            rows.append(_Row(None, [[(w.kink(p, op.name, rule, r.convention), "yellow")]]))
    return rows


def _rule_text(w, r: "Result", t: Term) -> str | None:
    tokens = rule_tokens(r, t.parent, t.pos)
    return None if tokens is None else w.rule(tokens)


def _shape_rows(w, r: "Result", step: Step) -> list[_Row]:
    """Where shapes matter: the ingredients of a tensor op's rule and the gradient's shape (the
    notes' dimension analysis: ∂f/∂D 5×3, X 10×3 → ∂f/∂W 5×10), and a sum over broadcast axes."""
    j = step.node
    rows = []
    broadcast: list[tuple[tuple, tuple]] = []
    for t in step.terms:
        items: list[tuple[str, tuple]] = []
        if t.local is None:
            tokens = rule_tokens(r, t.parent, t.pos) or []
            subs = [x for x in tokens if isinstance(x, Sub) and x.kind in ("grad", "node")]
            if not any(x.kind == "grad" for x in subs):
                items.append((w.grad_of(t.parent), np.shape(t.upstream)))
            for x in subs:
                if x.kind == "grad":
                    items.append((w.grad_of(x.node), np.shape(t.upstream)))
                else:
                    items.append((w.wrapped(x.node), np.shape(r.values[x.node])))
            seen = list(dict.fromkeys(items))
            rows.append(_Row(None, [[(w.shapes(seen, (w.grad_of(j), np.shape(r.values[j]))),
                                      "dim")]]))
        else:
            with np.errstate(all="ignore"):
                full = np.broadcast_shapes(np.shape(t.upstream), np.shape(t.local))
            if full != np.shape(t.value):
                broadcast.append((full, np.shape(t.value)))
    for full, final in dict.fromkeys(broadcast):
        rows.append(_Row(None, [[(w.broadcast(full, final, j), "dim")]]))
    return rows


# -- plain text and Rich ------------------------------------------------------------------------

def text_lines(r: "Result", digits: int = 6, max_steps: int = 200) -> tuple[list[Line], int]:
    """The explanation as lines of (text, style) pieces, and how many steps were left out."""
    numbered: set[int] = set()
    backward: list[Line] = []
    left = 0
    for k in range(len(r.tape.outputs)):
        ex = explain(r, k, max_steps)
        w = _Plain(r, ex, digits, numbered)
        backward.append([(f"backward pass for {ex.name}", "bold"),
                         (" (" + LEGEND.format(f=ex.name) + "):", "dim")])
        for step in ex.steps:
            for row in _step_rows(w, r, ex, step):
                backward.append(_text_row(row))
        if ex.left_out:
            left += ex.left_out
            backward.append([(f"  … {ex.left_out} more steps left out, nearer the inputs "
                              "(--max-rows 0 shows them all)", "dim")])
        for i in ex.unreached:
            backward.append([("  ", None), (w.grad_of(i), "bold"), (" = ", None),
                             (w.number(r.adjoints[k][i]), GRAD),
                             (f" ({ex.name} does not use {w.label(i)})", "dim")])
        backward.append(_gradient_line(w, r, ex, k, max_steps))
    forward = [[("forward pass:", "bold")]]
    forward += [[("  ", None)] + line for line in _forward(_Plain(r, None, digits, numbered), r,
                                                             max_steps)]
    return forward + backward, left


def _forward(w, r: "Result", max_lines: int) -> list[Line]:
    """The forward pass in tape order: the program's named statements, each node called #id (or
    v_{id}) defined over its inputs, and the output(s)."""
    tape = r.tape
    out_name = dict(zip(tape.outputs, output_names(tape)))
    rows: dict[int, tuple[str, str]] = {}
    for st in tape.statements:
        for i in st.nodes:
            if st.name is not None and i not in out_name and tape.inputs[i]:
                rows[i] = (w.name_of(st.name), w.own(i))
    if max_lines and len(rows) > max_lines:
        rows = dict(sorted(rows.items())[-max_lines:])
    for o, name in out_name.items():
        rows[o] = (w.name_of(name), w.own(o) if tape.inputs[o] else "")
    done: set[int] = set()
    while not max_lines or len(done) < max_lines:
        due = w.numbered - done
        if not due:
            break
        i = max(due)  # the nearest the output first: the steps shown are those
        done.add(i)
        rows.setdefault(i, (w.label(i), w.one_level(i)))
    lines = []
    for i, (name, formula) in sorted(rows.items()):
        line: Line = [(name, "bold"), (f" {w.eq} ", None)]
        if formula and formula != name:
            line.append((f"{formula} = ", None))
        line.append((w.number(r.values[i]), VALUE))
        lines.append(line)
    return lines


def _text_row(row: _Row) -> Line:
    if row.lhs is None:  # a note under its step, set in past the `∂f/∂x = `
        out: Line = [("      ", None)]
        for n, piece in enumerate(row.rhs):
            if n:
                out.append((" = ", None))
            out += piece
        return out
    out = [("  ", None)] + row.lhs
    for piece in row.rhs:
        out.append((" = ", None))
        out += piece
    return out


def _gradient_line(w: _Plain, r: "Result", ex: Explanation, k: int, max_items: int) -> Line:
    names = r.wrt[:max_items] if max_items else r.wrt
    if not names:
        return [(f"∇{ex.name}: none (the formula has no variables)", None)]
    line: Line = [(f"∇{ex.name}: ", "bold")]
    for n, x in enumerate(names):
        if n:
            line.append((", ", None))
        line += [(w.partial(ex.name, x if atomic(x) else f"({x})") + " = ", None),
                 (w.number(r.adjoints[k][r.tape.variables[x]]), GRAD)]
    if len(names) < len(r.wrt):
        line.append((f", … ({len(r.wrt) - len(names)} more)", None))
    return line


def plain_text(r: "Result", digits: int = 6, max_steps: int = 200) -> str:
    """The explanation as plain text (what a pipe or NO_COLOR gets)."""
    lines, _ = text_lines(r, digits, max_steps)
    return "\n".join("".join(text for text, _ in line) for line in lines) + "\n"


def rich_lines(r: "Result", digits: int = 6, max_steps: int = 200) -> tuple[list, int]:
    """The explanation as Rich `Text` lines (user text is never read as markup)."""
    from rich.text import Text

    lines, left = text_lines(r, digits, max_steps)
    out = []
    for line in lines:
        text = Text()
        for piece, style in line:
            text.append(piece, style=style or "")
        out.append(text)
    return out, left


# -- LaTeX ---------------------------------------------------------------------------------------

_GREEK = dict(zip(
    "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ",
    r"\alpha \beta \gamma \delta \epsilon \zeta \eta \theta \iota \kappa \lambda \mu \nu \xi o "
    r"\pi \rho \sigma \tau \upsilon \phi \chi \psi \omega \Gamma \Delta \Theta \Lambda \Xi \Pi "
    r"\Sigma \Upsilon \Phi \Psi \Omega".split()))
_GREEK["ς"] = r"\varsigma"

_TEX_FUNCS = {
    "exp": r"\exp", "log": r"\log", "ln": r"\ln", "log2": r"\log_{2}", "log10": r"\log_{10}",
    "sin": r"\sin", "cos": r"\cos", "tan": r"\tan", "sinh": r"\sinh", "cosh": r"\cosh",
    "tanh": r"\tanh", "asin": r"\arcsin", "acos": r"\arccos", "atan": r"\arctan",
    "sigmoid": r"\sigma", "σ": r"\sigma", "max": r"\max", "min": r"\min",
}
_TEX_SYMBOLS = {
    "·": r" \cdot ", "⊙": r" \odot ", "Σ": r"\sum ", "≥": r" \geq ", "≤": r" \leq ",
    "²": "^{2}", "ᵀ": r"^{\top}", "×": r" \times ", "{": r"\{", "}": r"\}", "_": r"\_",
    "#": r"\#", "%": r"\%", "&": r"\&", "$": r"\$", "~": r"\~{}", "\\": r"\backslash ",
}


def _tex_word(word: str) -> str:
    """Letters, digits and underscores in math mode: Greek as commands, the rest upright."""
    if len(word) == 1:
        if word in _GREEK:
            return _GREEK[word]
        if word.isascii():
            return word
        return rf"\text{{{word}}}"
    if all(ch in _GREEK for ch in word):
        return " ".join(_GREEK[ch] for ch in word)
    body = word.replace("_", r"\_")
    return rf"\mathrm{{{body}}}" if word.isascii() else rf"\text{{{body}}}"


def tex_name(name: str) -> str:
    """A user's name in LaTeX: w0 and w_0 -> w_{0}, x_hat -> x_{\\mathrm{hat}}, θ -> \\theta."""
    if "_" in name.strip("_"):
        base, sub = name.strip("_").split("_", 1)
    else:
        m = re.fullmatch(r"(.*?\D)(\d+)", name)
        base, sub = (m.group(1), m.group(2)) if m else (name, "")
    tex = _tex_word(base)
    if sub:
        tex += "_{" + (sub if sub.isdigit() else _tex_word(sub)) + "}"
    return tex


_PROSE = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "#": r"\#",
          "%": r"\%", "&": r"\&", "$": r"\$", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "‖": r"$\lVert$", "∂": r"$\partial$", "σ": r"$\sigma$",
          "≥": r"$\geq$", "≤": r"$\leq$", "·": r"$\cdot$", "²": r"$^{2}$", "ᵀ": r"$^{\top}$",
          "×": r"$\times$", "−": "-", "…": r"\dots{}", "⊙": r"$\odot$", "Σ": r"$\Sigma$"}


def tex_prose(text: str) -> str:
    """Words for a LaTeX \\text{...}: special characters escaped, maths symbols in $...$."""
    return "".join(_PROSE.get(ch, ch) for ch in text)


def tex_number(v, digits: int = 6) -> str:
    """A number (or a tensor: in full when small, else summarised) in LaTeX."""
    if isinstance(v, (list, tuple)):
        v = np.asarray(v, dtype=float)
    if isinstance(v, np.ndarray) and v.ndim > 0:
        if v.size <= SMALL and v.ndim <= 2:
            rows = [v] if v.ndim == 1 else list(v)
            body = r" \\ ".join(" & ".join(tex_number(x, digits) for x in row) for row in rows)
            return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"
        d = min(digits, 4)
        with np.errstate(all="ignore"):
            lo, hi, norm = np.min(v), np.max(v), np.sqrt(np.sum(np.square(v)))
        shape = r" \times ".join(map(str, v.shape))
        return (rf"\langle {shape};\ {tex_number(lo, d)} \ldots {tex_number(hi, d)};\ "
                rf"\lVert\cdot\rVert = {tex_number(norm, d)} \rangle")
    if type(v) is Fraction:  # --exact
        if v.denominator == 1:
            return str(v.numerator)
        sign = "-" if v < 0 else ""
        return rf"{sign}\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
    s = fmt(v, digits)
    if s == "NaN":
        return r"\mathrm{NaN}"
    if s.endswith("Infinity"):
        return s.replace("Infinity", r"\infty")
    m = re.fullmatch(r"(-?[\d.]+)e([+-]\d+)", s)
    if m:
        return rf"{m.group(1)} \times 10^{{{int(m.group(2))}}}"
    return s


# Precedence of a node's LaTeX, to know when it needs brackets as an operand.
_SUM, _PRODUCT, _FRACTION, _POWER, _ATOM = 1, 2, 3, 4, 5
_BUDGET = 9  # an unnamed node whose formula has more nodes than this is called v_{id}


class _Tex(_Plain):
    """How the LaTeX explanation writes labels, partials, products and numbers."""

    times = r" \cdot "
    tensor_times = r" \odot "
    tensor_numbers = False

    def __init__(self, r: "Result", ex: Explanation | None, digits: int, shared: "_TexShared"):
        self.shared = shared
        super().__init__(r, ex, digits, shared.used)

    # labels
    def node(self, i: int) -> tuple[str, int]:
        """Node i's label and precedence: its name, else its formula when short, else v_{i}."""
        tape = self.tape
        name = tape.names.get(i)
        if name is not None:
            return tex_name(name), _ATOM
        if not tape.inputs[i]:
            return self.leaf(i)
        if self.ex is not None and i == self.ex.output:
            return tex_name(self.ex.name), _ATOM
        cache = self.shared.labels
        if i not in cache:
            found = self.formula(i, [_BUDGET], root=True)
            cache[i] = found if found is not None else (self.shared.numbered(i), _ATOM)
        if i not in self.shared.short:
            self.shared.used.add(i)
        return cache[i]

    eq = "&="

    def name_of(self, name: str) -> str:
        return tex_name(name)

    def own(self, i: int) -> str:
        return self._own(i)[0]

    def _own(self, i: int) -> tuple[str, int]:
        """Node i's own formula (not its name): written out when short, else over its inputs."""
        if not self.tape.inputs[i]:
            return self.leaf(i)
        found = self.formula(i, [_BUDGET], root=True)
        return found if found is not None else self._one_level(i)

    def leaf(self, i: int) -> tuple[str, int]:
        tape = self.tape
        if tape.ops[i].name == "var":
            return tex_name(tape.names.get(i) or tape.source(i)), _ATOM
        src = " ".join(tape.source(i).split())
        if src == "pi":
            return r"\pi", _ATOM
        if src == "e":
            return "e", _ATOM
        tex = tex_number(self.r.values[i], 12)
        return tex, (_PRODUCT if tex.startswith("-") else _ATOM)

    def formula(self, i: int, budget: list[int], root: bool = False) -> tuple[str, int] | None:
        """Node i's formula in LaTeX down to names and leaves, or None when it takes more than
        the budget's nodes. Each call spends one unit, so this recurses at most _BUDGET deep."""
        budget[0] -= 1
        if budget[0] < 0:
            return None
        tape = self.tape
        if not root and (tape.names.get(i) is not None or not tape.inputs[i]):
            return self.node(i)
        kids = []
        for j in tape.inputs[i]:
            got = self.formula(j, budget)
            if got is None:
                return None
            kids.append(got)
        found = self.compose(i, kids)
        if root:
            self.shared.short.add(i)
        return found

    def one_level(self, i: int) -> str:
        return self._one_level(i)[0]

    def _one_level(self, i: int) -> tuple[str, int]:
        """Node i in terms of its inputs' labels (each a name, a short formula or a v_{id})."""
        ins = self.tape.inputs[i]
        return self.compose(i, [(rf"\dots\text{{ {_more(ins)[2:-2]} }}\dots", _ATOM)
                                if j is None else self.node(j) for j in shown_args(ins)])

    def args(self, nodes) -> str:
        return ", ".join(rf"\dots\text{{ {_more(nodes)[2:-2]} }}\dots" if j is None
                         else self.label(j) for j in shown_args(nodes))

    def compose(self, i: int, kids: list[tuple[str, int]]) -> tuple[str, int]:
        op = self.tape.ops[i].name

        def at_least(kid, level):
            tex, lv = kid
            return tex if lv >= level else rf"\left({tex}\right)"

        if op == "id":
            return kids[0]
        if op in ("add", "sub"):
            right = at_least(kids[1], _PRODUCT if op == "sub" else _SUM)
            if kids[1][1] == _PRODUCT and kids[1][0].startswith("-"):
                right = rf"\left({kids[1][0]}\right)"
            return f"{at_least(kids[0], _SUM)} {'+' if op == 'add' else '-'} {right}", _SUM
        if op in ("mul", "matmul", "dot") and len(kids) == 2:
            sep = r" \, " if op == "matmul" else r" \cdot "
            right = kids[1][0] if kids[1][1] >= _PRODUCT and not kids[1][0].startswith(
                "-") else rf"\left({kids[1][0]}\right)"
            return f"{at_least(kids[0], _PRODUCT)}{sep}{right}", _PRODUCT
        if op == "div":
            return rf"\frac{{{kids[0][0]}}}{{{kids[1][0]}}}", _FRACTION
        if op == "neg":
            inner = kids[0][0] if kids[0][1] >= _PRODUCT and not kids[0][0].startswith(
                "-") else rf"\left({kids[0][0]}\right)"
            return f"-{inner}", _PRODUCT
        if op == "pow":
            return f"{at_least(kids[0], _ATOM)}^{{{kids[1][0]}}}", _POWER
        if op == "sqrt":
            return rf"\sqrt{{{kids[0][0]}}}", _ATOM
        if op == "abs":
            return rf"\left\lvert {kids[0][0]} \right\rvert", _ATOM
        if op == "norm":
            return rf"\left\lVert {kids[0][0]} \right\rVert", _ATOM
        if op == "transpose":
            return rf"{at_least(kids[0], _ATOM)}^{{\top}}", _POWER
        if op == "stack" and np.ndim(self.r.values[self.tape.inputs[i][0]]) == 0:  # np.stack:
            # its inputs all have one shape
            return rf"\begin{{bmatrix}} {' & '.join(k for k, _ in kids)} \end{{bmatrix}}", _ATOM
        func = _TEX_FUNCS.get(op, rf"\operatorname{{{op}}}")
        return rf"{func}\left({', '.join(k for k, _ in kids)}\right)", _ATOM

    def label(self, i: int) -> str:
        return self.node(i)[0]

    def wrapped(self, i: int) -> str:
        tex, level = self.node(i)
        return tex if level >= _ATOM else rf"\left({tex}\right)"

    def expression(self, i: int) -> str:
        tex, level = self._own(i)
        return tex if level >= _ATOM else rf"\left({tex}\right)"

    def partial(self, top: str, bottom: str) -> str:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"

    def out(self) -> str:
        return tex_name(self.ex.name)

    def number(self, v) -> str:
        return tex_number(v, self.digits)

    def factor(self, v, first: bool) -> str:
        s = self.number(v)
        return s if first or not s.startswith("-") else rf"\left({s}\right)"

    def dims(self, shape: tuple) -> str:
        return r" \times ".join(map(str, shape)) if shape else r"\text{scalar}"

    def shapes(self, items: list[tuple[str, tuple]], result: tuple[str, tuple]) -> str:
        listed = r",\ ".join(rf"{sym}\colon {self.dims(shape)}" for sym, shape in items)
        return rf"\text{{shapes: }} {listed} \to {result[0]}\colon {self.dims(result[1])}"

    def vjp(self, op: str, grad: str) -> str:
        return rf"\operatorname{{vjp}}_{{\mathrm{{{tex_prose(op)}}}}}\left({grad}\right)"

    def kink(self, p: int, op: str, rule: str, convention: str) -> str:
        return (rf"\text{{a kink: }} {self.label(p)}"
                rf"\text{{ takes the {tex_prose(convention)} slope}}")

    def broadcast(self, full: tuple, final: tuple, j: int) -> str:
        return (rf"\text{{broadcasting: summed from }} {self.dims(full)} \text{{ down to }} "
                rf"{self.dims(final)}\text{{, the shape of }} {self.label(j)}")

    def rule(self, tokens: list) -> str:
        out: list[str] = []
        closers: list[str] = []
        norm_open = False
        plain = [t for t in tokens]
        for n, tok in enumerate(plain):
            if isinstance(tok, Sub):
                if tok.kind == "grad":
                    grad = self.grad_of(tok.node)
                    out.append(rf"\left({grad}\right)" if _raised(plain, n) else grad)
                elif tok.kind == "text":
                    out.append(tok.text)
                elif tok.kind == "others":
                    if len(tok.nodes) == 1:
                        out.append(self.wrapped(tok.nodes[0]))
                    elif tok.nodes:
                        func = _TEX_FUNCS.get(tok.text, tok.text)
                        out.append(func + r"\left(" + self.args(tok.nodes) + r"\right)")
                    else:
                        out.append(self.wrapped(tok.node))
                else:
                    tex, level = self.node(tok.node)
                    if level < _ATOM and not _needs_no_brackets(plain, n):
                        tex = rf"\left({tex}\right)"
                    out.append(tex)
                continue
            nxt = plain[n + 1] if n + 1 < len(plain) else ""
            if tok == "(":
                prev = out[-1] if out else ""
                if prev == "^":
                    out[-1] = "^{"
                    closers.append("}")
                elif prev == r"\sqrt":
                    out[-1] = r"\sqrt{"
                    closers.append("}")
                else:
                    out.append("(")
                    closers.append(")")
            elif tok == ")":
                out.append(closers.pop() if closers else ")")
            elif tok == "‖":
                out.append(r"\rVert " if norm_open else r"\lVert ")
                norm_open = not norm_open
            elif tok == "1" and nxt == "(":
                out.append(r"\mathbb{1}")
            elif tok == "sqrt":
                out.append(r"\sqrt")
            elif tok in _TEX_SYMBOLS:
                out.append(_TEX_SYMBOLS[tok])
            elif tok in _TEX_FUNCS:
                out.append(_TEX_FUNCS[tok])
            elif re.fullmatch(r"[A-Za-zα-ωΑ-Ω][A-Za-z0-9_]*", tok):
                out.append(tex_name(tok) if len(tok) <= 2 else rf"\operatorname{{{tok}}}")
            elif tok.isascii():
                out.append(tok)
            else:  # a symbol this table does not know yet: keep the LaTeX compilable
                out.append(rf"\text{{[U+{ord(tok):04X}]}}")
        out += closers[::-1]
        return "".join(out).strip()


def _tex_row(row: _Row) -> str:
    if row.lhs is None:
        pieces = ["".join(t for t, _ in piece) for piece in row.rhs]
        if len(pieces) >= 3 and (r"\langle" in pieces[-1] or "bmatrix" in pieces[-1]):
            return (r"&\qquad " + " = ".join(pieces[:-1]) + " \\\\\n" + r"&\qquad\quad = "
                    + pieces[-1])
        return r"&\qquad " + " = ".join(pieces)
    lhs = "".join(t for t, _ in row.lhs)
    terms = [_terms(piece) for piece in row.rhs]
    tensors = any("bmatrix" in t or r"\langle" in t for piece in terms for t in piece)
    if any(len(piece) >= 3 or len(piece) >= 2 and tensors for piece in terms):
        # a long sum: one term to a line, each piece of the chain on lines of its own
        lines = []
        for k, piece in enumerate(terms):
            lines.append((f"{lhs} &= " if k == 0 else "&= ") + piece[0])
            lines += [r"&\quad + " + term for term in piece[1:]]
        return " \\\\\n".join(lines)
    pieces = [" + ".join(piece) for piece in terms]
    if tensors and len(pieces) >= 2:  # tensors take room: each piece on a line of its own
        return f"{lhs} &= {pieces[0]}" + "".join(f" \\\\\n&= {p}" for p in pieces[1:])
    if len(pieces) >= 3:  # the chain rule in symbols, then its numbers on an aligned line
        return f"{lhs} &= {pieces[0]} \\\\\n&= " + " = ".join(pieces[1:])
    return lhs + " &= " + " = ".join(pieces)


def _terms(piece: Line) -> list[str]:
    """A piece of a row split into the terms of its sum (at the layout's own ` + `)."""
    out = [""]
    for text, _ in piece:
        if text == " + ":
            out.append("")
        else:
            out[-1] += text
    return out


class _TexShared:
    """What the LaTeX writers of every output share: labels, and the nodes called v_{id}."""

    def __init__(self, tape: "Tape"):
        self.labels: dict[int, tuple[str, int]] = {}
        self.short: set[int] = set()  # unnamed nodes written out as their formula
        self.used: set[int] = set()  # unnamed nodes called v_{id}: they need a definition
        taken = set(tape.names.values()) | set(tape.variables)
        self.letter = next((c for c in "vuts" if not any(
            re.fullmatch(rf"{c}_?\d+", n) for n in taken)), "v")

    def numbered(self, i: int) -> str:
        return rf"{self.letter}_{{{i}}}"


def latex(r: "Result", digits: int = 6, max_steps: int = 200) -> tuple[str, int]:
    """The explanation as one `align*` environment (amsmath; \\mathbb{1} needs amssymb), and how
    many steps were left out."""
    tape = r.tape
    shared = _TexShared(tape)
    left = 0
    several = len(tape.outputs) > 1
    # The backward steps first: they decide which unnamed nodes are called v_{id}.
    backward: list[str] = []
    for k in range(len(tape.outputs)):
        ex = explain(r, k, max_steps)
        w = _Tex(r, ex, digits, shared)
        if several:
            backward.append(rf"\intertext{{Backward pass for ${tex_name(ex.name)}$:}}")
        else:
            backward.append("% backward pass: from the output back to the inputs")
        for step in ex.steps:
            for row in _step_rows(w, r, ex, step):
                backward.append(_tex_row(row))
        if ex.left_out:
            left += ex.left_out
            backward.append(rf"&\qquad \text{{\dots\ {ex.left_out} more steps left out, nearer "
                            r"the inputs (\texttt{-{}-max-rows 0} shows them all)}")
        for i in ex.unreached:
            backward.append(rf"{w.grad_of(i)} &= {w.number(r.adjoints[k][i])} \quad "
                            rf"\text{{(${tex_name(ex.name)}$ does not use ${w.label(i)}$)}}")
    forward = _forward(_Tex(r, None, digits, shared), r, max_steps)
    rows = ["% forward pass"] + ["".join(text for text, _ in line) for line in forward]
    rows += backward
    if len(rows) > 30:
        rows.insert(0, r"% longer than a page: \allowdisplaybreaks in the preamble lets it break")
    last = max(n for n, row in enumerate(rows) if not row.startswith("%"))
    body = []
    for n, row in enumerate(rows):
        end = row.startswith("%") or row.startswith(r"\intertext") or n == last
        body.append(row if end else row + r" \\")
    return "\\begin{align*}\n" + "\n".join(body) + "\n\\end{align*}\n", left
