"""HTML: the self-contained report of `eval/check --format html` and the notebook displays.

One file, nothing fetched to view it: the formula as read, the value and gradient, the node
table (values green, gradients red, every number also in a `data-value` attribute as its JSON
number), the circuit as inline SVG (Graphviz's `dot`, when installed), the chain rule written
out, and for `check` the verdicts. Hovering a node in the circuit highlights its table row, and
hovering a row highlights the node: both carry `data-node="<id>"` and a few lines of inline
script toggle a class. Every piece of user text is escaped; the script reads no user text.

The notebook displays (`_repr_html_` in api.py) are fragments built from the same pieces.
"""

from __future__ import annotations

import html as _html
import io
import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import __version__
from .jsonout import number as json_number
from ..words import inert, short
from .text import fmt, read_as

if TYPE_CHECKING:  # pragma: no cover
    from ..check import CheckReport
    from ..descend import Trajectory
    from ..result import Result

CIRCUIT_LIMIT = 300  # nodes: a bigger circuit is left out of the report (unreadable)
NOTEBOOK_ROWS = 50  # node rows shown in a notebook cell

CSS = """
.gradcli-report{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
  color:#1f2328;line-height:1.45;max-width:1100px}
.gradcli-report h1{font-size:1.5em;margin:.2em 0 .4em}
.gradcli-report h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid #d0d7de;
  padding-bottom:.2em}
.gradcli-report pre,.gradcli-report code{font-family:ui-monospace,SFMono-Regular,Menlo,
  Consolas,monospace;font-size:.92em}
.gradcli-report pre{background:#f6f8fa;padding:.7em 1em;border-radius:6px;overflow-x:auto;
  white-space:pre-wrap}
.gradcli-report table{border-collapse:collapse;margin:.3em 0}
.gradcli-report th,.gradcli-report td{padding:.25em .7em;border-bottom:1px solid #d0d7de;
  text-align:left;vertical-align:top}
.gradcli-report th{background:#f6f8fa;font-weight:600}
.gradcli-report td.num{text-align:right;font-family:ui-monospace,Menlo,Consolas,monospace}
.gradcli-report .value{color:#1a7f37}.gradcli-report .grad{color:#cf222e}
.gradcli-report .muted{color:#6e7781}.gradcli-report .named{font-weight:600}
.gradcli-report .ok{color:#1a7f37;font-weight:600}.gradcli-report .bad{color:#cf222e;
  font-weight:600}.gradcli-report .kink{color:#9a6700;font-weight:600}
.gradcli-report tr.hl td{background:#fff8c5}
.gradcli-report tr[data-node]{cursor:default}
.gradcli-report .circuit svg{max-width:100%;height:auto}
.gradcli-report g.node.hl ellipse,.gradcli-report g.node.hl polygon,
.gradcli-report g.node.hl path{stroke:#bf8700;stroke-width:3px;fill:#fff8c5}
.gradcli-report .warn{color:#9a6700}
"""

SCRIPT = """
(function () {
  var reports = document.querySelectorAll('.gradcli-report');
  reports.forEach(function (rep) {
    function mark(id, on) {
      rep.querySelectorAll('[data-node="' + id + '"]').forEach(function (el) {
        el.classList.toggle('hl', on);
      });
    }
    rep.querySelectorAll('[data-node]').forEach(function (el) {
      var id = el.getAttribute('data-node');
      el.addEventListener('mouseenter', function () { mark(id, true); });
      el.addEventListener('mouseleave', function () { mark(id, false); });
    });
  });
})();
"""


def esc(text) -> str:
    """User text for HTML (element content and quoted attributes), inert (words.inert)."""
    return _html.escape(inert(str(text), lines=True), quote=True)


def _num(v, digits: int, cls: str) -> str:
    """A number's cell: the shown digits, and the exact JSON number in data-value."""
    if v is None:
        return '<td class="num muted">·</td>'
    shown = fmt(v.tolist() if isinstance(v, np.ndarray) else v, digits)
    return f'<td class="num {cls}" data-value="{esc(json_number(v))}">{esc(shown)}</td>'


# -- the pieces -----------------------------------------------------------------------------

def node_table(r: "Result", digits: int = 6, max_rows: int = 0) -> str:
    """The node table: #, node, op, value, local partials, gradient (one per output)."""
    from .table import _partials_text

    tape = r.tape
    several = len(r.adjoints) > 1
    heads = ["#", "node", "op", "value", "local partials"]
    heads += [f"grad ∂{o}/∂node" for o in _output_names(r)] if several else ["grad"]
    out = ['<table class="nodes"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in heads)
           + "</tr></thead><tbody>"]
    n = len(tape)
    shown = range(n) if not max_rows or n <= max_rows else range(max_rows)
    for i in shown:
        label = tape.label(i, 60)
        cls = ' class="named"' if i in tape.names else ""
        cells = [f'<td class="muted">{i}</td>', f"<td{cls}><code>{esc(label)}</code></td>",
                 f"<td>{esc(tape.ops[i].name)}</td>", _num(r.values[i], digits, "value"),
                 f"<td>{esc(_partials_text(r, i, digits).plain)}</td>"]
        for adj in r.adjoints:
            cells.append(_num(adj[i] if r.active[i] else None, digits, "grad"))
        out.append(f'<tr data-node="{i}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if len(shown) < n:
        out.append(f'<p class="muted">{n - len(shown)} more nodes are left out; '
                   "--max-rows 0 shows them all.</p>")
    return "".join(out)


def _output_names(r: "Result") -> list[str]:
    from .names import output_names

    return list(output_names(r.tape))


_PROLOG = re.compile(r"\A.*?(?=<svg)", re.S)
_NODE = re.compile(r'<g id="(node\d+)" class="node">(\s*)<title>n(\d+)</title>')


def circuit_svg(r: "Result", digits: int = 4) -> str | None:
    """The circuit (graph --format svg) ready to inline, each node's <g> carrying data-node;
    None when Graphviz's dot is not installed or the formula is too big to draw."""
    from .graph import GraphvizError, find_dot, render_image, to_dot

    if find_dot() is None or len(r.tape) > CIRCUIT_LIMIT:
        return None
    try:
        svg = render_image(to_dot(r, digits), "svg").decode("utf-8")
    except GraphvizError:
        return None
    svg = _PROLOG.sub("", svg, count=1)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return _NODE.sub(r'<g id="\1" class="node" data-node="\3">\2<title>n\3</title>', svg)


def explanation(r: "Result", digits: int = 6, max_steps: int = 200) -> str:
    """The chain rule written out (eval --explain), coloured as in the terminal."""
    from . import explain

    lines, left = explain.rich_lines(r, digits, max_steps)
    text = _rich_html(*lines)
    more = (f'<p class="muted">{left} more steps are left out; --max-rows 0 shows them all.</p>'
            if left else "")
    return f'<pre class="explain">{text}</pre>{more}'


def _summary(r: "Result", digits: int) -> str:
    """Value and gradient, as a small table."""
    rows = []
    value = r.value
    rows.append(f'<tr><th>value</th><td class="num value" data-value="{esc(json_number(value))}">'
                f"{esc(fmt(value, digits))}</td></tr>")
    for k, row in enumerate(r.jacobian):
        outs = _output_names(r)
        for name, g in row.items():
            head = f"∂{outs[k]}/∂{name}"
            rows.append(f'<tr><th>{esc(head)}</th><td class="num grad" data-name="{esc(name)}" '
                        f'data-value="{esc(json_number(g))}">{esc(fmt(g, digits))}</td></tr>')
    return '<table class="summary">' + "".join(rows) + "</table>"


def _formula(r: "Result", digits: int) -> str:
    tape = r.tape
    point = ", ".join(f"{n} = {fmt(_plain(r.at[n]), digits)}" for n in tape.variables
                      if n in r.at)
    parts = [f'<pre class="formula">{esc(tape.text.strip())}</pre>']
    echo = "\n".join(read_as(tape))
    parts.append(f'<p>read as:</p><pre class="read-as">{esc(echo)}</pre>')
    if point:
        parts.append(f'<p>at <code class="point">{esc(point)}</code></p>')
    return "".join(parts)


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


def _warnings(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    return f'<h2>Warnings</h2><ul class="warn">{items}</ul>'


def _circuit_section(r: "Result", digits: int) -> str:
    svg = circuit_svg(r, min(digits, 4))
    if svg is None:
        from .graph import find_dot

        why = ("Graphviz's dot is not installed (apt-get install graphviz)" if find_dot() is None
               else f"the formula has more than {CIRCUIT_LIMIT} nodes")
        return f'<h2>Circuit</h2><p class="muted">The circuit is left out: {esc(why)}.</p>'
    return ('<h2>Circuit</h2><p class="muted">values <span class="value">green</span>, '
            'gradients <span class="grad">red</span>; hover a node to find its row.</p>'
            f'<div class="circuit">{svg}</div>')


def _check_section(report: "CheckReport", digits: int) -> str:
    """The verdicts: one row per variable (backprop against central differences), the graded
    answers, and the last line as the terminal says it."""
    from .checkout import verdict

    words = {"ok": ("ok", "ok"), "mismatch": ("MISMATCH", "bad"), "kink": ("kink", "kink"),
             "undefined": ("undefined", "kink")}
    rows = []
    for v in report.variables:
        word, cls = words.get(v.status, (v.status, "muted"))
        rows.append(f'<tr data-variable="{esc(v.name)}"><td class="named">{esc(v.name)}</td>'
                    + _num(_array(v.analytic), digits, "grad")
                    + _num(_array(v.numeric), digits, "")
                    + _num(v.rel_error, 3, "muted")
                    + f'<td class="{cls} verdict">{esc(word)}</td></tr>')
    verdict_cls = "ok" if report.ok else "bad"
    table = ('<table class="check"><thead><tr><th>variable</th><th>analytic (backprop)</th>'
             "<th>numeric (central difference)</th><th>rel. error</th><th></th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>")
    return (f'<h2>Check: <span class="{verdict_cls}" id="check-ok" data-ok='
            f'"{str(report.ok).lower()}">{"passed" if report.ok else "failed"}</span></h2>'
            f"{table}{_answers(report, digits)}"
            f'<pre class="verdict">{_rich_html(verdict(report))}</pre>')


def _answers(report: "CheckReport", digits: int) -> str:
    """The graded hand answers: one row each, the slip named under a wrong one."""
    from .checkwords import slip_message
    from .names import output_name

    if not report.grades:
        return ""
    tape = report.tape
    rows = []
    for g in report.grades:
        what = (f"value of {tape.label(g.node, 40)}" if g.kind == "value"
                else f"∂{output_name(tape)}/∂{tape.label(g.node, 40)}")
        cls, word = ("ok", "right") if g.ok else ("bad", "wrong")
        rows.append(f'<tr data-node="{g.node}"><td class="muted">{g.node}</td>'
                    f"<td>{esc(what)}</td>" + _num(_array(g.answer.answer), digits, "")
                    + _num(_array(g.correct), digits, "grad")
                    + f'<td class="{cls} verdict">{word}</td></tr>')
        if not g.ok and g.slip is not None:
            message = slip_message(g.slip, tape, output_name(tape))
            rows.append(f'<tr><td></td><td colspan="4" class="muted">{esc(message)}</td></tr>')
    return ("<h3>Your answers</h3><table class=\"answers\"><thead><tr><th>#</th>"
            "<th>answer for</th><th>yours</th><th>correct</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _rich_html(*renderables) -> str:
    """Rich renderables (coloured text) as HTML with inline styles."""
    from rich.console import Console

    console = Console(record=True, file=io.StringIO(), width=140, color_system="truecolor",
                      soft_wrap=True, highlight=False, force_jupyter=False)
    for item in renderables:
        console.print(item)
    return console.export_html(inline_styles=True, code_format="{code}").strip()


def _array(v):
    if isinstance(v, (list, tuple)):
        return np.asarray(v, dtype=np.float64)
    return v


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"generator\" content=\"gradcli {esc(__version__)}\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f'<div class="gradcli-report">{body}</div>'
            f"<script>{SCRIPT}</script></body></html>\n")


def _title(r: "Result") -> str:
    """The formula's statements without comments, on one line."""
    lines = [ln.split("#", 1)[0].strip() for ln in r.tape.text.splitlines()]
    return "gradcli: " + short("; ".join(ln for ln in lines if ln), 90)


# -- whole documents and notebook fragments ----------------------------------------------------

def eval_report(r: "Result", digits: int = 6, max_rows: int = 200) -> str:
    """`eval --format html`: the whole report as one self-contained page."""
    body = [f"<h1>{esc(_title(r))}</h1>", _formula(r, digits), _summary(r, digits),
            _circuit_section(r, digits), "<h2>Nodes</h2>", node_table(r, digits, max_rows),
            "<h2>Chain rule</h2>", explanation(r, digits, max_rows), _warnings(r.warnings),
            f'<p class="muted">made by gradcli {esc(__version__)}</p>']
    return _page(_title(r), "".join(body))


def check_report(report: "CheckReport", digits: int = 6, max_rows: int = 200) -> str:
    """`check --format html`: the verdicts, then the same sections as eval's report."""
    r = report.result
    body = [f"<h1>{esc(_title(r))}</h1>", _formula(r, digits), _check_section(report, digits),
            _summary(r, digits), _circuit_section(r, digits), "<h2>Nodes</h2>",
            node_table(r, digits, max_rows), "<h2>Chain rule</h2>",
            explanation(r, digits, max_rows), _warnings(report.warnings),
            f'<p class="muted">made by gradcli {esc(__version__)}</p>']
    return _page(_title(r), "".join(body))


def result_fragment(r: "Result", digits: int = 6) -> str:
    """A Result in a notebook: value and gradient, the circuit (with Graphviz), the nodes."""
    svg = circuit_svg(r, 4)
    parts = [f"<style>{CSS}</style><div class=\"gradcli-report\">", _summary(r, digits)]
    if svg is not None:
        parts.append(f'<div class="circuit">{svg}</div>')
    parts.append(node_table(r, digits, NOTEBOOK_ROWS))
    parts.append(f"</div><script>{SCRIPT}</script>")
    return "".join(parts)


def check_fragment(report: "CheckReport", digits: int = 6) -> str:
    """A check report in a notebook: the verdicts."""
    return (f"<style>{CSS}</style><div class=\"gradcli-report\">"
            f"{_check_section(report, digits)}</div>")


def trajectory_fragment(traj: "Trajectory", names: Sequence[str], digits: int = 6,
                        rows: int = 12) -> str:
    """A descent in a notebook: why it stopped, and the first and last kept steps."""
    steps = traj.steps
    half = rows // 2
    cut = len(steps) > rows
    chosen = steps[:half] + [None] + steps[-(rows - half):] if cut else list(steps)
    heads = ["step", "loss"] + list(names)
    out = [f"<style>{CSS}</style><div class=\"gradcli-report\">",
           f"<p>{esc(traj.message or traj.stopped)}</p><table class=\"steps\"><thead><tr>"
           + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr></thead><tbody>"]
    for s in chosen:
        if s is None:
            out.append(f'<tr><td class="muted" colspan="{len(heads)}">…</td></tr>')
            continue
        cells = [f'<td class="muted">{s.step}</td>', _num(s.loss, digits, "")]
        cells += [_num(s.params[n], digits, "value") for n in names]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)
