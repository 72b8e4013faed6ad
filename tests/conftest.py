"""Shared fixtures: the one Typer `CliRunner` and `run()` helper (defined in cli_runner.py).

Tests take the `cli_runner` / `cli_run` fixtures, or import the same objects directly with
`from cli_runner import run, runner`.
"""

from __future__ import annotations

import pytest

# cli_runner (and so typer and gradcli) is imported by the fixtures that need it, so a test that
# needs neither, such as test_layers.py (it reads source with ast), runs on a bare Python too.


@pytest.fixture
def cli_runner():
    """The shared CliRunner (stdout and stderr apart)."""
    import cli_runner as _cli

    return _cli.runner


@pytest.fixture
def cli_run():
    """`run(*args, input=None)`: gradcli in-process; .exit_code, .stdout, .stderr."""
    import cli_runner as _cli

    return _cli.run
