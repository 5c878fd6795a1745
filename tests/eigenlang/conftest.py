from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A copy of workflows/ whose eigendata.yaml uses the small test domain, so compiler tests
    do not depend on the size or state of the built-in domains."""
    dst = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", dst)
    wf = dst / "eigendata.yaml"
    wf.write_text(wf.read_text().replace("domain: airline", f"domain: {ROOT / 'tests/fixtures/mini'}"))
    return dst
