"""The one `CliRunner` and `run()` helper the CLI tests share (fixtures for them: conftest.py).

`run(*args, input=None)` invokes `gradcli` in-process and returns Click's result, whose
`.exit_code`, `.stdout` and `.stderr` are apart (and `.exception` for a crash). Test modules
import them: `from cli_runner import run, runner` (a module of its own name, since
tests/benchmarks has a conftest.py too and `conftest` is not one module to import from).
"""

from __future__ import annotations

from typer.testing import CliRunner

from gradcli.cli import app

runner = CliRunner()


def run(*args: str, input: str | bytes | None = None):
    """`gradcli ARGS...` in-process; the result has .exit_code, .stdout and .stderr apart."""
    return runner.invoke(app, list(args), input=input)
