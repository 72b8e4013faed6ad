"""The Rich renderers: the per-node table and the graph as a tree.

Values are green and gradients red, as in the course's circuit diagrams. Every piece of user
text goes through `Text`, never through markup, so `[` and `]` in formulas print as written.
"""

from __future__ import annotations

import re

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..result import Result
from .names import output_names
from .text import SMALL, fmt, read_as, shape_of

VALUE = "green"
GRAD = "red"
LABEL_WIDTH = 40


def _partials_text(r: Result, i: int, digits: int) -> Text:
    tape = r.tape
    ins = tape.inputs[i]
    ps = r.partials[i]
    if ps is None:  # a structural op: show its rule, the numbers are Jacobians
        text = Text(operand_rule(tape, i), style="dim")
        if i in r.kinks:
            text.append(f" (kink: {r.convention})", style="yellow")
        return text
    text = Text(no_wrap=False)
    first = True
    for k, j in enumerate(ins):
        if not r.active[j]:
            continue
        if not first:
            text.append(", ")
        first = False
        who = tape.names.get(j) or f"#{j}"
        p = ps[k]
        if isinstance(p, np.ndarray) and p.size > SMALL:
            text.append(f"∂/∂{who}: {shape_of(p)}")  # the numbers are in --json
        else:
            text.append(f"∂/∂{who} = ")
            text.append(fmt(p, digits))
    if i in r.kinks:
        text.append(f" (kink: {r.convention})", style="yellow")
    return text


_HOLDER = re.compile(r"∂/∂([A-Za-z]) = ")


def operand_rule(tape, i: int) -> str:
    """A structural op's rule with the user's operand names, as --explain writes it:
    `∂/∂W = G·Xᵀ, ∂/∂X = Wᵀ·G` for `W @ X` (the rule table says A and B)."""
    rule = tape.ops[i].rule
    ins = tape.inputs[i]
    holders = _HOLDER.findall(rule)
    if len(holders) != len(ins) or len(set(holders)) != len(holders) or "G" in holders:
        return rule
    labels = []
    for j in ins:
        label = tape.label(j, 20)
        labels.append(label if label.isidentifier() else f"({label})")
    if len(set(labels)) != len(labels):
        return rule
    pattern = re.compile(r"(?<![A-Za-z])(" + "|".join(holders) + r")(?![A-Za-z])")
    return pattern.sub(lambda m: labels[holders.index(m.group(1))], rule)


TANGENT = "cyan"
#: Forward mode's table has a tangent column per --wrt variable: at most this many (--max-rows 0:
#: all of them), so that thousands of variables do not make a table of thousands of columns.
MAX_TANGENT_COLUMNS = 8


def node_table(r: Result, digits: int = 6, max_rows: int = 200) -> tuple[Table, int]:
    """The table of nodes in forward order; returns it with the number of rows left out.

    Reverse mode shows each node's gradient; forward mode its tangent for each --wrt variable;
    both shows the two side by side.
    """
    tape = r.tape
    n = len(tape)
    several = len(tape.outputs) > 1
    tensors = any(isinstance(v, np.ndarray) for v in r.values)
    columns: list[tuple[str, dict, object]] = [
        ("#", {"justify": "right", "style": "dim"}, lambda i: str(i)),
        ("node", {"overflow": "fold", "max_width": LABEL_WIDTH},
         lambda i: Text(tape.label(i, LABEL_WIDTH), style="bold" if i in tape.names else "")),
        ("op", {}, lambda i: tape.ops[i].name),
    ]
    if tensors:
        columns.append(("shape", {"justify": "right"}, lambda i: shape_of(r.values[i])))
    columns.append(("value", {"justify": "right", "style": VALUE, "overflow": "fold"},
                    lambda i: Text(fmt(r.values[i], digits, shape=False))))
    columns.append(("local partials", {"overflow": "fold"},
                    lambda i: _partials_text(r, i, digits)))
    tangent_names = r.wrt if r.tangents is not None else []
    if max_rows and len(tangent_names) > MAX_TANGENT_COLUMNS:  # a column per variable: capped
        tangent_names = tangent_names[:MAX_TANGENT_COLUMNS]
    if r.tangents is not None:
        for name in tangent_names:
            columns.append((f"tangent ∂·/∂{name}",
                            {"justify": "right", "style": TANGENT, "overflow": "fold"},
                            lambda i, name=name: _fmt_tangent(r, name, i, digits)))
    if r.mode != "forward":
        columns.append(("grad (per output)" if several else "grad",
                        {"justify": "right", "style": GRAD, "overflow": "fold"},
                        lambda i: Text(_fmt_grad(r, i, digits) if r.active[i] else "—")))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    if len(tangent_names) < len(r.wrt) and r.tangents is not None:
        table.caption = Text(f"the tangents for {len(r.wrt) - len(tangent_names)} more --wrt "
                             "variables are left out (--max-rows 0 or --json shows them)",
                             style="dim")
    for title, options, _ in columns:
        table.add_column(Text(title), **options)
    if max_rows and n > max_rows:
        head = max_rows // 2
        rows = list(range(head)) + [-1] + list(range(n - (max_rows - head), n))
        hidden = n - max_rows
    else:
        rows = range(n)
        hidden = 0
    for i in rows:
        if i < 0:
            table.add_row("…", Text(f"{hidden} more nodes"), *[""] * (len(columns) - 2))
            continue
        table.add_row(*[cell(i) for _, _, cell in columns])
    return table, hidden


def _fmt_tangent(r: Result, name: str, i: int, digits: int) -> Text:
    t = r.tangents[name][i]
    return Text("—" if t is None else fmt(t, digits, shape=False))


def _fmt_grad(r: Result, i: int, digits: int) -> str:
    adj = r.adjoints
    if len(adj) == 1:
        return fmt(adj[0][i], digits, shape=False)
    return "; ".join(fmt(a[i], digits, shape=False) for a in adj)


def summary(r: Result, digits: int = 6) -> Group:
    """The output value(s) and the gradient (or the Jacobian for several outputs)."""
    names = output_names(r.tape)
    lines: list = []
    for name, o in zip(names, r.tape.outputs):
        line = Text(f"{name} = ")
        line.append(fmt(r.values[o], digits), style=VALUE)
        lines.append(line)
    if len(names) == 1:
        # Short gradients on one line, longer ones one partial derivative per line.
        items = list(r.gradient.items())
        if not items:
            lines.append(Text(f"∇{names[0]}: none (the formula has no variables)"))
            return Group(*lines)
        one_line = len(items) <= 3 and not any(np.ndim(g) for _, g in items)
        grad = Text(f"∇{names[0]}:" + (" " if one_line else ""))
        for k, (x, g) in enumerate(items):
            grad.append(", " if one_line and k else "" if one_line else "\n  ")
            grad.append(f"∂{names[0]}/∂{x} = ")
            grad.append(fmt(r.adjoints[0][r.tape.variables[x]], digits), style=GRAD)
        lines.append(grad)
    else:
        jac = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                    title="Jacobian", title_justify="left")
        jac.add_column("")
        for x in r.wrt:
            jac.add_column(Text(f"∂/∂{x}"), justify="right", style=GRAD)
        for name, adj in zip(names, r.adjoints):
            jac.add_row(Text(name), *[fmt(adj[r.tape.variables[x]], digits) for x in r.wrt])
        lines.append(jac)
    if r.mode != "reverse":
        sweeps = r.sweeps
        lines.append(Text(
            f"A full Jacobian takes {sweeps['forward']} forward "
            f"sweep{'s' if sweeps['forward'] != 1 else ''} (one per input) or "
            f"{sweeps['reverse']} reverse sweep{'s' if sweeps['reverse'] != 1 else ''} "
            "(one per output).", style="dim"))
    return Group(*lines)


def print_read_as(console: Console, tape) -> None:
    """The "read as:" echo: how the parser read the formula, fully parenthesised."""
    echo = read_as(tape)
    head = Text("read as:" + (" " if len(echo) == 1 else ""), style="dim")
    if len(echo) == 1:
        head.append(echo[0])
        console.print(head)
    else:
        console.print(head)
        for line in echo:
            console.print(Text("  " + line))


def render_table(console: Console, r: Result, digits: int = 6, max_rows: int = 200) -> int:
    """Print the echo, the node table and the summary; returns the number of rows left out."""
    print_read_as(console, r.tape)
    table, hidden = node_table(r, digits, max_rows)
    console.print(table)
    console.print()
    console.print(summary(r, digits))
    return hidden


def render_tree(console: Console, r: Result, digits: int = 6, max_nodes: int = 500) -> int:
    """The graph as a tree from each output down to the inputs; a node met again is referenced,
    not repeated. Built with an explicit stack. Returns how many nodes were left out."""
    tape = r.tape
    seen: set[int] = set()
    shown = 0
    trees = []
    for name, o in zip(output_names(r.tape), tape.outputs):
        root = Tree(_tree_label(r, o, digits, name))
        trees.append(root)
        seen.add(o)
        shown += 1
        stack = [(j, root) for j in reversed(tape.inputs[o])]
        while stack:
            i, parent = stack.pop()
            if i in seen:
                parent.add(Text(f"↑ {tape.label(i, LABEL_WIDTH)} (#{i}, above)", style="dim"))
                continue
            if shown >= max_nodes:
                continue
            seen.add(i)
            shown += 1
            branch = parent.add(_tree_label(r, i, digits))
            stack.extend((j, branch) for j in reversed(tape.inputs[i]))
    for t in trees:
        console.print(t)
    console.print(summary(r, digits))
    return len(tape) - len(seen)


def _tree_label(r: Result, i: int, digits: int, out_name: str | None = None) -> Text:
    tape = r.tape
    op = tape.ops[i]
    name = tape.names.get(i)
    text = Text()
    if out_name and not name:
        text.append(f"{out_name} = ", style="bold")
    if name:
        text.append(name, style="bold")
        if tape.inputs[i]:
            text.append(f" = {op.name}", style="")
    elif not tape.inputs[i]:
        text.append(tape.expr(i, LABEL_WIDTH))
    else:
        text.append(op.name)
        text.append(f"  {tape.expr(i, LABEL_WIDTH)}", style="dim")
    text.append("  value ")
    text.append(fmt(r.values[i], digits), style=VALUE)
    if r.active[i]:
        text.append("  grad ")
        text.append(_fmt_grad(r, i, digits), style=GRAD)
    text.append(f"  #{i}", style="dim")
    return text
