"""Installing and using gradcli like a well-kept CLI (issue 16): the README's set-up commands are
what CI runs, CI installs every extra, the man page is the help text, and Tab completes.

Completion is asked the way the shells' scripts ask it: a whole `gradcli` process with Click's
environment variables (_GRADCLI_COMPLETE=complete_bash, COMP_WORDS, COMP_CWORD), and once through
bash itself with the script `--show-completion bash` prints.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cli_runner import run

ROOT = Path(__file__).resolve().parent.parent
CI = (ROOT / ".ci" / "run").read_text()
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPT = Path(sys.executable).parent / "gradcli"


def readme_setup_commands() -> list[str]:
    """The one-line commands in the ```bash blocks of README's "Set up" section."""
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def ci_lines() -> list[str]:
    return [line.strip() for line in CI.splitlines()]


# -- the README's commands and CI ---------------------------------------------------------------

def test_readme_set_up_is_two_one_line_commands_that_ci_runs_word_for_word():
    commands = readme_setup_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    for command in commands:
        assert command in ci_lines(), f".ci/run does not run the README's {command!r}"


def test_readme_first_command_makes_and_uses_a_venv_before_pip():
    steps = [s.strip() for s in readme_setup_commands()[0].split("&&")]
    assert steps[0] == "python3 -m venv .venv"
    assert steps[1] == ". .venv/bin/activate"
    assert steps[2].startswith("pip install -e '.[test]'")
    assert steps[3].startswith("gradcli eval ")


def test_ci_installs_every_extra_in_pyproject():
    installs = re.findall(r"pip install [^\n]*-e '\.\[([^\]]*)\]'", CI)
    named = set().union(*(set(x.split(",")) for x in installs))
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert extras <= named, f".ci/run does not install the extras {sorted(extras - named)}"


def test_ci_builds_checks_and_installs_the_wheel_outside_the_checkout():
    for needle in ("python -m build", "twine check", "dist/*.whl", "mktemp -d", "gradcli --version",
                   "COMP_WORDS=", "--show-completion bash", "apt-get install", "graphviz",
                   "texlive-latex-base"):
        assert needle in CI, needle
    test_extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert "build" in test_extra and "twine" in test_extra


def test_sdist_and_wheel_carry_the_man_page():
    hatch = PYPROJECT["tool"]["hatch"]["build"]["targets"]
    assert "docs" in hatch["sdist"]["include"] and "tests" in hatch["sdist"]["include"]
    assert hatch["wheel"]["shared-data"]["docs/gradcli.1"] == "share/man/man1/gradcli.1"


# -- the man page --------------------------------------------------------------------------------

def manpage_module():
    spec = importlib.util.spec_from_file_location("manpage", ROOT / "tests" / "manpage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_man_page_equals_a_fresh_generation():
    committed = (ROOT / "docs" / "gradcli.1").read_text()
    assert committed == manpage_module().generate(), (
        "docs/gradcli.1 is stale: the help text changed. Run: python tests/manpage.py --write")


def plain(roff: str) -> str:
    """The man page's words, roff escapes undone (enough to find options and names)."""
    text = re.sub(r"\\\[u([0-9A-F]{4})\]", lambda m: chr(int(m.group(1), 16)), roff)
    return re.sub(r"\\f[BIR]", "", text).replace("\\-", "-").replace("\\e", "\\")


def test_man_page_names_every_command_and_every_option_of_its_help():
    page = plain(manpage_module().generate())
    commands = re.findall(r"^  (\w+) ", run("--help").stdout.split("Commands:", 1)[1], re.M)
    assert {"eval", "check", "graph", "descend", "schema"} <= set(commands)
    for name in commands:
        help_text = run(name, "--help").stdout
        assert f'.SS "gradcli {name} [OPTIONS]' in page, name
        for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text)):
            assert option in page, (name, option)
        assert "Examples:" in help_text, f"gradcli {name} --help has no examples"
    for option in ("--install-completion", "--show-completion", "--version"):
        assert option in page


def test_man_page_is_ascii_and_renders_without_warnings():
    text = (ROOT / "docs" / "gradcli.1").read_text()
    assert text.isascii() and "\b" not in text
    if not shutil.which("groff"):
        pytest.skip("no groff")
    p = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", str(ROOT / "docs" / "gradcli.1")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    out = subprocess.run(["groff", "-man", "-Tutf8", str(ROOT / "docs" / "gradcli.1")],
                         capture_output=True, text=True).stdout
    assert "θ ← θ − η∇L" in out  # the escapes come back as the help's own characters


# -- completion -----------------------------------------------------------------------------------

def complete(words: str, cwd: Path | None = None) -> list[str]:
    """What bash's completion function gets for the command line `words` (the cursor at its
    end; a trailing space starts a new word)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "_GRADCLI_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    p = subprocess.run([sys.executable, "-m", "gradcli"], env=env, capture_output=True,
                       text=True, cwd=cwd or ROOT)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return p.stdout.split()


def test_completes_command_names():
    from gradcli.commands import COMMANDS

    assert complete("gradcli ") == [module.NAME for module in COMMANDS]
    assert complete("gradcli ch") == ["check"]


def test_completes_options():
    assert "--install-completion" in complete("gradcli --")
    options = complete("gradcli eval x --")
    assert {"--at", "--wrt", "--format", "--mode", "--subgradient", "--json"} <= set(options)
    assert complete("gradcli eval x --subg") == ["--subgradient"]


def test_completes_format_mode_and_subgradient_values():
    assert complete("gradcli eval x --format j") == ["json"]
    assert {"table", "json", "tree", "dot", "mermaid", "latex"} <= set(
        complete("gradcli eval x --format "))
    assert complete("gradcli eval x --mode ") == ["reverse", "forward", "both"]
    assert complete("gradcli eval x --mode f") == ["forward"]
    assert complete("gradcli check x --subgradient ") == ["cs231n", "half", "zero"]


def test_completes_grad_files_for_the_formula(tmp_path):
    (tmp_path / "net.grad").write_text("x*y\n")
    (tmp_path / "neuron.grad").write_text("sigmoid(w*x)\n")
    (tmp_path / "notes.txt").write_text("not a formula\n")
    (tmp_path / ".hidden.grad").write_text("x\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "deep.grad").write_text("x\n")
    assert complete("gradcli eval ne", cwd=tmp_path) == ["net.grad", "neuron.grad", "nested/"]
    assert complete("gradcli eval neu", cwd=tmp_path) == ["neuron.grad"]
    assert complete("gradcli check nested/", cwd=tmp_path) == ["nested/deep.grad"]
    assert complete("gradcli eval .h", cwd=tmp_path) == [".hidden.grad"]
    # No .grad file fits: nothing, so the shell completes file names its own way.
    assert complete("gradcli eval not", cwd=tmp_path) == []
    assert complete("gradcli eval x --at ", cwd=tmp_path) == []


def test_show_completion_prints_each_shells_script():
    def show(*args):
        p = subprocess.run([sys.executable, "-m", "gradcli", "--show-completion", *args],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert "complete -o default -F _gradcli_completion gradcli" in show("bash")
    assert show("zsh").lstrip().startswith("#compdef gradcli")
    assert show("fish").startswith("complete --command gradcli")
    assert "--install-completion" in run("--help").stdout


@pytest.mark.skipif(not shutil.which("bash") or not SCRIPT.exists(),
                    reason="needs bash and the installed gradcli script")
def test_bash_sources_the_script_and_completes():
    script = ('source <(gradcli --show-completion bash)\n'
              'COMP_WORDS=(gradcli eval --mode ""); COMP_CWORD=3\n'
              '_gradcli_completion gradcli; printf "%s\\n" "${COMPREPLY[@]}"\n'
              'COMP_WORDS=(gradcli de); COMP_CWORD=1\n'
              '_gradcli_completion gradcli; printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = {**os.environ, "PATH": f"{SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    p = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["reverse", "forward", "both", "descend"]


def test_zsh_and_fish_are_asked_their_own_way():
    def ask(shell: str, line: str, **extra: str) -> str:
        env = {**os.environ, "_GRADCLI_COMPLETE": f"complete_{shell}",
               "_TYPER_COMPLETE_ARGS": line, **extra}
        p = subprocess.run([sys.executable, "-m", "gradcli"], env=env, capture_output=True,
                           text=True, cwd=ROOT)
        assert p.returncode == 0, p.stderr
        return p.stdout

    zsh = ask("zsh", "gradcli eval x --subgradient ")
    assert zsh.startswith("_arguments") and re.findall(r'"(\w+)"', zsh) == ["cs231n", "half",
                                                                          "zero"]
    assert ask("zsh", "gradcli eval zz").strip() == "_files"  # no .grad file: zsh's own files
    fish = ask("fish", "gradcli eval x --mode ", _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert fish.split() == ["reverse", "forward", "both"]
