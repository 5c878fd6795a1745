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
    depend on the size or state of the built-in domains. Returns the copied folder. The
    domain is copied in as `mini/`: a program names files inside its own folder only
    (eigenlang.paths)."""
    dst = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", dst)
    shutil.copytree(ROOT / "tests" / "fixtures" / "mini", dst / "mini",
                    ignore=shutil.ignore_patterns("__pycache__"))
    wf = dst / "eigendata.yaml"
    wf.write_text(wf.read_text().replace("domain: airline", "domain: mini"))
    return dst
