"""Second-order output: the Hessian table and a Hessian-vector product (eval --hessian/--hvp)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..words import fmt


def render_second(console, r, output: str, digits: int = 6) -> None:
    """The Hessian as a table (row x, column y: ∂²f/∂x∂y) and H·v as one line per variable."""
    if r.hessian is not None:
        table = Table(title=Text(f"Hessian ∂²{output}/∂x∂y"), title_justify="left")
        table.add_column(Text(""), style="bold")
        for y in r.wrt:
            table.add_column(Text(y), justify="right")
        for x in r.wrt:
            table.add_row(Text(x), *[Text(fmt(r.hessian[x][y], digits)) for y in r.wrt])
        console.print(table)
    if r.hvp is not None:
        v = ", ".join(f"{k}={fmt(x, digits)}" for k, x in r.direction.items())
        console.print(Text(f"H·v for v = ({v}):"))
        for x in r.wrt:
            console.print(Text(f"  (H·v)_{x} = {fmt(r.hvp[x], digits)}"))


def render_hessian_check(console, c, digits: int = 6) -> None:
    """check --hessian: each ∂²f/∂x∂y against central differences of the gradient."""
    table = Table(title=Text("Hessian vs central differences of the gradient"),
                  title_justify="left")
    for head in ("entry", "analytic", "numeric", "rel. error", ""):
        table.add_column(Text(head), justify="left" if head == "entry" else "right")
    for e in c.entries:
        table.add_row(Text(f"∂²/∂{e.row}∂{e.col}"), Text(fmt(e.analytic, digits)),
                      Text(fmt(e.numeric, digits)), Text(f"{e.rel_error:.1e}"),
                      Text("ok" if e.ok else "DIFFERS", style="green" if e.ok else "bold red"))
    console.print(table)
    bad = sum(not e.ok for e in c.entries)
    console.print(Text("the Hessian agrees with central differences" if not bad else
                       f"{bad} Hessian entries differ from central differences"))
