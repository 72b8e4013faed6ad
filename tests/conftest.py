"""Shared fixtures: the one Typer `CliRunner` and `run()` helper (defined in cli_runner.py).

Tests take the `cli_runner` / `cli_run` fixtures, or import the same objects directly with
`from cli_runner import run, runner`.
"""

from __future__ import annotations

import pytest

import cli_runner as _cli


@pytest.fixture
def cli_runner():
    """The shared CliRunner (stdout and stderr apart)."""
    return _cli.runner


@pytest.fixture
def cli_run():
    """`run(*args, input=None)`: gradcli in-process; .exit_code, .stdout, .stderr."""
    return _cli.run
