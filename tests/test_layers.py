"""The layering of gradcli is a test: every import under gradcli/ points down the flow.

    0  errors  ops  rules  tape  words            leaves (and the package root, for __version__);
                                                  rules: the ops' numpy rules, which ops binds
    1  parse  lalr_fast  lalr_gen  syntax_errors  text -> Tape; the shipped LALR tables;
       climb                                      the fast path for the common subset
    2  engine  symbolic  compiled                 sweeps; derivative tapes; compiled scalar tapes;
       arraysweep  reverse  piecepartials         the scalar reverse sweep; partials by the piece
    3  points  scalars  pointfiles                --at values: one number; values from files
    4  session  result                            load(); run(): a Result, plain data
    5  batch  check (package)  descend  diff      compute: plain data out (also surface,
       surface  newton  columnar  cluster         newton, columnar readers, the Dask cluster)
    6  render/*                                   every byte of output
    7  commands/*  api                            one command each; the public Python API
    8  cli  cliapp                                the entry point; the Typer app and the error guard

The rule: a module may import a module of a LOWER layer, or a peer of its OWN layer as long as
the peer imports of that layer form no cycle (so `render/table` may use `render/text`, `result` may
use `session`, and `check/slips` may use `check/report`). Every import counts: top-level ones,
those inside functions (lazy), those under `if TYPE_CHECKING:`, relative (`from ..render import
text`) and absolute (`import gradcli.render.text`). The entry points `gradcli/__init__.py` and
`gradcli/__main__.py` are exempt. A module that is in no layer fails the test until it is given
one here. Besides: only render/*, commands/* and cli import rich, typer or click.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradcli"

LAYERS = [
    ["gradcli", "errors", "lanes", "ops", "rules", "tape", "words"],
    ["parse", "lalr_fast", "lalr_gen", "syntax_errors", "climb"],
    ["engine", "symbolic", "compiled", "arraysweep", "reverse", "piecepartials"],
    ["points", "scalars", "pointfiles"],
    ["session", "result"],
    ["batch", "check", "descend", "diff", "surface", "newton", "columnar", "cluster"],
    ["render"],
    ["commands", "api"],
    ["cli", "cliapp"],
]
LAYER = {name: k for k, names in enumerate(LAYERS) for name in names}
ENTRY_POINTS = {"gradcli.__init__", "gradcli.__main__"}
PRESENTATION = {"render", "commands", "cli", "cliapp"}
UI_LIBRARIES = {"rich", "typer", "click"}


def module_name(path: Path) -> str:
    """gradcli/render/table.py -> gradcli.render.table (a package's __init__ keeps its name)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts)


def layer_key(module: str) -> str:
    """The name LAYERS knows a module by: gradcli.render.table -> render, gradcli -> gradcli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def is_package(module: str, modules: set[str]) -> bool:
    return f"{module}.__init__" in modules


def imports(module: str, source: str, modules: set[str]) -> list[tuple[int, str]]:
    """(line, imported gradcli module or third-party top name) for every import in `source`."""
    package = module.rsplit(".", 1)[0] if not module.endswith(".__init__") else module[:-9]
    if module.endswith(".__init__"):
        module = package
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("gradcli"):
                # `from . import engine` and `from .render import text` name modules
                subs = [f"{target}.{a.name}" for a in node.names
                        if f"{target}.{a.name}" in modules
                        or f"{target}.{a.name}.__init__" in modules]
                out += [(node.lineno, t) for t in (subs or [target])]
            else:
                out.append((node.lineno, target))
    return out


def sources() -> dict[str, str]:
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))
            if "__pycache__" not in p.parts}


def violations(srcs: dict[str, str]) -> list[str]:
    """Every import that breaks the layering, as 'module:line -> target: why'."""
    modules = set(srcs)
    bad: list[str] = []
    peers: dict[str, set[str]] = {}
    for module, source in srcs.items():
        if module in ENTRY_POINTS:
            continue
        here = layer_key(module)
        if here not in LAYER:
            bad.append(f"{module}: in no layer; add {here!r} to LAYERS in tests/test_layers.py")
            continue
        for line, target in imports(module, source, modules):
            top = target.split(".")[0]
            if top in UI_LIBRARIES and here not in PRESENTATION:
                bad.append(f"{module}:{line} -> {target}: only render/, commands/ and cli "
                           "import rich, typer or click")
            if top != "gradcli":
                continue
            if target.endswith(".__init__"):
                target = target[:-9]
            there = layer_key(target)
            if target in ENTRY_POINTS or there not in LAYER:
                if target != "gradcli":
                    bad.append(f"{module}:{line} -> {target}: imports a module in no layer")
                continue
            if LAYER[there] > LAYER[here]:
                bad.append(f"{module}:{line} -> {target}: points up, from layer {LAYER[here]} "
                           f"({here}) to layer {LAYER[there]} ({there})")
            elif LAYER[there] == LAYER[here] and target != module:
                peers.setdefault(module, set()).add(target)
    bad += [f"peer import cycle: {' -> '.join(c)}" for c in cycles(peers)]
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles an iterative depth-first search meets in a small graph (none: acyclic)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return found


def test_every_import_points_down_the_flow():
    bad = violations(sources())
    assert not bad, "imports against the flow:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("module, line", [
    ("gradcli.engine", "from .render import text"),
    ("gradcli.engine", "import gradcli.render.text"),
    ("gradcli.parse", "def f():\n    from . import api\n"),
    ("gradcli.points", "from .session import load"),
    ("gradcli.descend", "from .render.jsonout import descend_json"),
    ("gradcli.session", "def f():\n    from .commands import options\n"),
    ("gradcli.render.text", "from .. import cli"),
    ("gradcli.result", "if TYPE_CHECKING:\n    from .batch import Chunk\n"),
    ("gradcli.result", "def f():\n    from .render.jsonout import eval_json\n"),
    ("gradcli.engine", "import rich"),
    ("gradcli.session", "def f():\n    from rich.text import Text\n"),
])
def test_an_import_against_the_flow_is_caught(module, line):
    srcs = sources()
    key = module if module in srcs else f"{module}.__init__"
    srcs[key] = srcs[key] + "\n" + line + "\n"
    assert violations(srcs) != [] and len(violations(srcs)) > len(violations(sources()))


def test_a_peer_cycle_is_caught():
    srcs = sources()
    srcs["gradcli.session"] += "\ndef _f():\n    from . import result\n"
    assert any("cycle" in v for v in violations(srcs))


def test_a_module_in_no_layer_is_caught():
    srcs = dict(sources())
    srcs["gradcli.stray"] = "x = 1\n"
    assert any("gradcli.stray: in no layer" in v for v in violations(srcs))
