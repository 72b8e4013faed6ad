"""Issue 15, classes 1-3: safe to run on files students write.

1. No code from data: nothing is unpickled, the LALR tables ship in the package, no cache folder
   (hostile, symlinked, relative) changes what a formula computes or which file gets written.
2. Files are read only where the user named them: `@file` in a formula file's `# at:` lines, in a
   point file and in an answers file's `at` stays inside that file's own folder; errors never
   quote a file's contents; a formula argument is a file only when it is clearly a path.
3. What reaches a terminal is inert: control, C1 and bidi characters in user text are escaped in
   every renderer and message (words.inert).

Each test here failed on main before issue 15 (tests/test_fuzz.py draws more of the same).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run

import gradcli
from gradcli import lalr_gen
from gradcli.words import inert

PACKAGE = Path(gradcli.__file__).resolve().parent
REPO = PACKAGE.parent


def gradcli_process(*args: str, cwd: Path, env: dict | None = None, input: str | None = None):
    """`gradcli ARGS` as its own process (a cache folder is read at start, once per process)."""
    return subprocess.run([sys.executable, "-m", "gradcli", *args], cwd=cwd, input=input,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=120)


def unsafe(text: str) -> list[str]:
    """The characters of `text` that must never reach a terminal (newlines aside)."""
    return sorted({ch for ch in text.replace("\n", "") if not ch.isprintable()})


# -- 1. no code from data ------------------------------------------------------------------------

class _Plant:
    """A pickle that, when loaded, writes a file: proof that something was unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _old_cache_files(cache: Path) -> list[Path]:
    """Where gradcli (up to issue 15) kept Lark's pickle and the JSON tables."""
    folder = cache / "gradcli"
    folder.mkdir(parents=True, exist_ok=True)
    version = gradcli.__version__
    return [folder / f"lalr-{version}-{kind}.{what}" for kind in ("line", "multiline")
            for what in ("lark", "json")]


def test_a_planted_pickle_in_the_cache_folder_is_never_loaded(tmp_path):
    """A pickle planted where Lark's cache was ran as the victim on a mistyped formula."""
    cache, marker = tmp_path / "cache", tmp_path / "pwned"
    for f in _old_cache_files(cache):
        if f.suffix == ".lark":  # Lark reads a line, then unpickles before any check
            f.write_bytes(b"0\n" + pickle.dumps(_Plant(str(marker))))
    for formula in ("x+", "(x+\n*"):  # syntax errors: Lark's own parser runs
        out = gradcli_process("eval", formula, cwd=tmp_path, env={"XDG_CACHE_HOME": str(cache)})
        assert out.returncode == 2 and "syntax error" in out.stderr, out.stderr
    assert not marker.exists()


def test_a_planted_table_cache_changes_nothing(tmp_path):
    """A JSON table with the grammar's hash and add/mul swapped made `x+y` compute x*y."""
    import hashlib

    from lark import Lark

    from gradcli.lalr_fast import FastLALR
    from gradcli.parse import Builder, grammar_text

    cache = tmp_path / "cache"  # the tables anyone can compute, the grammar's hash, two swapped
    data = FastLALR.compile(Lark(grammar_text(), parser="lalr", lexer="basic",
                                 transformer=Builder()))
    data["grammar"] = hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()
    honest = json.dumps(data)
    swapped = honest.replace('"add"', '"@@"').replace('"mul"', '"add"').replace('"@@"', '"mul"')
    assert swapped != honest
    for f in _old_cache_files(cache):
        if f.suffix == ".json":
            f.write_text(swapped, encoding="utf-8")
    out = gradcli_process("eval", "x+y", "--at", "x=2,y=3", "--json", cwd=tmp_path,
                          env={"XDG_CACHE_HOME": str(cache)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == 5.0  # 2+3, not 2*3
    out = gradcli_process("check", "x+y", "--at", "x=2,y=3", "--expect", "x=3", cwd=tmp_path,
                          env={"XDG_CACHE_HOME": str(cache)})
    assert out.returncode == 1  # the gradient of x+y is 1, not y


def test_a_symlink_in_the_cache_folder_is_not_followed(tmp_path):
    """A symlink where the cache file was made gradcli overwrite a file of the victim's."""
    cache, victim = tmp_path / "cache", tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for f in _old_cache_files(cache):
        f.symlink_to(victim)
    for formula in ("x+", "x+\ny", "x*y"):
        gradcli_process("eval", formula, "--at", "x=1,y=2", cwd=tmp_path,
                        env={"XDG_CACHE_HOME": str(cache)})
    assert victim.read_text() == "precious\n"


def test_a_relative_cache_home_is_ignored(tmp_path):
    """XDG_CACHE_HOME=rel made gradcli write (and read) ./rel/gradcli in the working folder."""
    for formula in ("x+", "x*y"):
        gradcli_process("eval", formula, "--at", "x=1,y=2", cwd=tmp_path,
                        env={"XDG_CACHE_HOME": "rel"})
    assert not (tmp_path / "rel").exists()


def test_the_shipped_tables_are_the_grammars():
    """gradcli/lalr_tables.json is exactly what gradcli.lalr_gen makes of the grammar: a grammar
    change without regeneration fails here."""
    shipped = (PACKAGE / lalr_gen.TABLES_FILE).read_text(encoding="utf-8")
    assert shipped == lalr_gen.generate(), (
        f"gradcli/{lalr_gen.TABLES_FILE} is stale: the grammar changed. Run `{lalr_gen.COMMAND}` "
        "and commit the file")


def test_the_tables_are_the_same_for_any_hash_seed(tmp_path):
    """Lark numbers its states in hash order: the generator's output must not depend on it."""
    code = "from gradcli.lalr_gen import generate; print(generate(), end='')"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "3")}
    assert len(outs) == 1 and outs.pop() == (PACKAGE / "lalr_tables.json").read_text()


def test_the_wheel_carries_the_tables():
    """hatch builds the wheel from gradcli/ (packages = ["gradcli"]): the JSON is in it, and
    nothing (.gitignore, an exclude) leaves it out."""
    text = (REPO / "pyproject.toml").read_text()
    assert 'packages = ["gradcli"]' in text
    assert "json" not in (REPO / ".gitignore").read_text()


# -- 2. files only where the user named them ---------------------------------------------------

@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside the student's folder that would read as a number (so reading it shows)."""
    path = tmp_path / "secret.csv"
    path.write_text("7\n")
    (tmp_path / "student").mkdir()
    return path


def test_at_lines_of_a_formula_file_do_not_read_outside_its_folder(secret, tmp_path):
    student = tmp_path / "student"
    (student / "t.grad").write_text(f"# at: x=@{secret}\nx\n")
    (student / "u.grad").write_text("# at: x=@../secret.csv\nx\n")
    for name in ("t.grad", "u.grad"):
        r = run("eval", str(student / name), "--json")
        assert r.exit_code == 2 and "not read" in r.stderr and "own folder" in r.stderr, r.stderr
        assert r.stdout == "" or '"value"' not in r.stdout


def test_at_lines_read_beside_the_formula_file(tmp_path):
    (tmp_path / "w.csv").write_text("1,2,3\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "v.csv").write_text("4\n")
    (tmp_path / "t.grad").write_text("# at: w=@w.csv, v=@sub/v.csv\nsum(w)*v\n")
    r = run("eval", str(tmp_path / "t.grad"), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["value"] == 24.0


def test_a_symlink_beside_the_formula_file_does_not_escape_its_folder(secret, tmp_path):
    student = tmp_path / "student"
    (student / "link.csv").symlink_to(secret)
    (student / "t.grad").write_text("# at: x=@link.csv\nx\n")
    r = run("eval", str(student / "t.grad"))
    assert r.exit_code == 2 and "not read" in r.stderr


def test_at_lines_from_stdin_read_no_file(secret, tmp_path):
    r = run("eval", "-", input=f"# at: x=@{secret}\nx\n")
    assert r.exit_code == 2 and "not read" in r.stderr and "command line" in r.stderr


def test_the_command_line_still_names_any_file(secret, tmp_path):
    r = run("eval", "x", "--at", f"x=@{secret}", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["value"] == 7.0


def test_a_point_file_reads_only_beside_itself(secret, tmp_path):
    student = tmp_path / "student"
    (student / "p.json").write_text(json.dumps({"x": "@../secret.csv"}))
    r = run("eval", "x", "--at", f"@{student / 'p.json'}")
    assert r.exit_code == 2 and "not read" in r.stderr
    (student / "near.csv").write_text("5\n")
    (student / "q.json").write_text(json.dumps({"x": "@near.csv"}))
    r = run("eval", "x", "--at", f"@{student / 'q.json'}", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["value"] == 5.0


def test_an_answers_files_at_reads_only_beside_itself(secret, tmp_path):
    student = tmp_path / "student"
    answers = {"at": {"x": f"@{secret}"}, "nodes": [{"name": "x", "grad": 1}]}
    (student / "a.json").write_text(json.dumps(answers))
    r = run("check", "x", "--answers", str(student / "a.json"))
    assert r.exit_code == 2 and "not read" in r.stderr, r.stderr


def test_errors_never_quote_a_files_contents(tmp_path):
    (tmp_path / "shadow").write_text("user:$6$saltsalt$hash:19000:0:99999:7:::\n")
    header = b"{'descr': 'SECRET', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (118 - len(header)) + b"\n"  # numpy's header: padded to 128 bytes in all
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00" + bytes([len(header), 0]) + header)
    (tmp_path / "p.json").write_text('{"SECRET key": 1}')
    for spec in (f"x=@{tmp_path / 'shadow'}", f"x=@{tmp_path / 'bad.npy'}",
                 f"@{tmp_path / 'p.json'}"):
        r = run("eval", "x", "--at", spec)
        assert r.exit_code == 2, r.stderr
        assert "saltsalt" not in r.stderr and "SECRET" not in r.stderr


def test_a_formula_that_parses_is_never_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_text("1000\n")
    r = run("eval", "a/b", "--at", "a=6,b=2", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["value"] == 3.0
    r = run("eval", "@a/b", "--json")  # the marker: a formula never starts with '@'
    assert r.exit_code == 0 and json.loads(r.stdout)["value"] == 1000.0


def test_done_when_etc_passwd(tmp_path):
    """`printf '# at: x=@/etc/passwd\\nx\\n' > t.grad && gradcli eval t.grad`: nothing read."""
    (tmp_path / "t.grad").write_text("# at: x=@/etc/passwd\nx\n")
    out = gradcli_process("eval", "t.grad", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert "not read" in out.stderr and "/bin/" not in out.stderr and ":0:" not in out.stderr


# -- 3. what reaches a terminal is inert ----------------------------------------------------------

HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\x9b\u202e\u2066\x00\x7f\u2028"
COMMENTED = f"(x # {HOSTILE.replace(chr(0), '')}\n* y)"


def test_inert_escapes_every_control_and_keeps_the_rest():
    assert inert("x*θ + [1, 2] ∂") == "x*θ + [1, 2] ∂"
    assert inert("a\x1b[31mb\rc\u202ed\x9b") == "a\\x1b[31mb\\rc\\u202ed\\x9b"
    assert inert("a\nb", lines=True) == "a\nb" and inert("a\nb") == "a\\nb"
    assert inert(inert(HOSTILE)) == inert(HOSTILE) and unsafe(inert(HOSTILE)) == []


@pytest.mark.parametrize("args", [
    (), ("--explain",), ("--format", "tree"), ("--mode", "both", "--wrt", "x"),
    ("--format", "dot"), ("--format", "mermaid"),
])
def test_node_spans_are_inert_in_every_renderer(args):
    r = run("eval", COMMENTED, "--at", "x=1,y=2", *args)
    assert r.exit_code == 0, r.stderr
    assert unsafe(r.stdout) == [] and unsafe(r.stderr) == []
    assert "\\x1b" in r.stdout  # shown, escaped


def test_graph_labels_carry_no_control():
    for fmt in ("dot", "mermaid"):
        r = run("graph", COMMENTED, "--at", "x=1,y=2", "--format", fmt)
        assert r.exit_code == 0 and unsafe(r.stdout) == [], r.stderr


def test_warnings_quoting_a_node_are_inert():
    r = run("eval", f"log(x # {HOSTILE.replace(chr(0), '')}\n)", "--at", "x=0")
    assert "warning" in r.stderr and unsafe(r.stderr) == []


@pytest.mark.parametrize("args", [
    ("eval", "x", "--at", f"x={HOSTILE}"),
    ("eval", "x", "--at", f"y{HOSTILE}=1"),
    ("eval", "x*y", "--at", "x=1,y=2", "--wrt", f"z{HOSTILE}"),
    ("eval", f"missing{HOSTILE}.grad"),
    ("eval", f"x + {HOSTILE}"),
    ("eval", "x", "--at", f"x=@nowhere{HOSTILE}.csv"),
    ("check", "x*y", "--at", "x=1,y=2", "--expect", f"x=5{HOSTILE}"),
    ("check", "x*y", "--at", "x=1,y=2", "--expect", f"q{HOSTILE}=5"),
])
def test_error_messages_are_inert(args):
    r = run(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert unsafe(r.stderr) == [] and unsafe(r.stdout) == []


def test_a_carriage_return_cannot_make_a_failed_check_read_passed():
    r = run("check", "x*y", "--at", "x=1,y=2", "--expect",
            "x=5\r" + " " * 5 + "check passed" + " " * 40)
    assert r.exit_code != 0 and "\r" not in r.stdout + r.stderr


def test_an_answers_files_text_is_inert(tmp_path):
    (tmp_path / "a.txt").write_text(f"x grad 3 # {HOSTILE.replace(chr(0), '')}\n"
                                    f"y grad 9{HOSTILE.replace(chr(0), '')}\n")
    r = run("check", "x*y", "--at", "x=1,y=2", "--answers", str(tmp_path / "a.txt"))
    assert unsafe(r.stdout) == [] and unsafe(r.stderr) == []
    nodes = [{"id": 0, "expr": f"x{HOSTILE}", "grad": 2}]  # exported "for another formula"
    (tmp_path / "a.json").write_text(json.dumps({"nodes": nodes}))
    r = run("check", "x*y", "--at", "x=1,y=2", "--answers", str(tmp_path / "a.json"))
    assert r.exit_code == 2 and unsafe(r.stdout) == [] and unsafe(r.stderr) == [], r.stderr


def test_a_syntax_errors_source_line_is_inert():
    r = run("eval", "x \u202e+ * y\x1b")
    assert r.exit_code == 2 and unsafe(r.stderr) == [] and "\\u202e" in r.stderr
