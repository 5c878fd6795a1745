"""Helpers shared by tests in several folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def eigen(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the real `eigen` entry point in a subprocess."""
    return subprocess.run([sys.executable, "-m", "runtime.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def workflow_copy(tmp_path: Path) -> Path:
    """A copy of workflows/ whose eigendata.yaml uses the small test domain, so tests do not
    depend on the size or state of the built-in domains. Returns the copied folder."""
    dst = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", dst)
    wf = dst / "eigendata.yaml"
    wf.write_text(wf.read_text().replace("domain: airline", f"domain: {ROOT / 'tests/fixtures/mini'}"))
    return dst
