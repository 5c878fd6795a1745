"""Fixtures of the security tests: a private copy of the reference workflow to attack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    """tmp/wf/eigendata.yaml (built-in airline domain) with its prompts/ beside it."""
    dst = tmp_path / "wf"
    shutil.copytree(ROOT / "workflows", dst)
    return dst / "eigendata.yaml"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that only an executed attack creates (its absence proves nothing ran)."""
    return tmp_path / "PWNED"


@pytest.fixture(scope="session")
def cli():
    """`eigen ARGS` in this process (the real typer app; no interpreter start-up per call):
    returns (returncode, stdout, stderr) as a CompletedProcess-like object."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from runtime.cli.main import app

    def run(*args: str) -> SimpleNamespace:
        res = CliRunner().invoke(app, [str(a) for a in args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception  # a traceback the user would have seen
        return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)

    return run
