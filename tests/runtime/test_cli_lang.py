"""The language commands of the `eigen` CLI, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, eigen, workflow_copy


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    return workflow_copy(tmp_path) / "eigendata.yaml"


def test_check_ok_and_exit_codes(wf: Path, tmp_path: Path):
    ok = eigen("check", str(wf), "tests/fixtures/mini")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 files checked, 0 error(s)" in ok.stderr
    bad = eigen("check", "tests/golden/unknown_keys.yaml")
    assert bad.returncode == 1
    assert "tests/golden/unknown_keys.yaml:4:1: error[E103]: unknown key 'agnets'" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    usage = eigen("check")
    assert usage.returncode == 2


def test_check_never_prints_a_traceback_on_garbage(tmp_path: Path):
    cases = {"binary.yaml": b"\x00\xff\xfe garbage", "list.yaml": b"- 1\n- 2\n",
             "deep.yaml": b"a: " + b"[" * 5000, "empty.yaml": b"",
             "tabs.yaml": b"eigenlang: 1\nworkflow: x\n\tagents: {}\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    res = eigen("check", *[str(tmp_path / n) for n in cases], str(tmp_path / "missing.yaml"))
    assert res.returncode == 1
    assert "Traceback" not in res.stdout + res.stderr
    assert res.stdout.count("error[") >= len(cases) + 1


def test_compile_graph_schema(wf: Path, tmp_path: Path):
    out = tmp_path / "plan"
    res = eigen("compile", str(wf), "-o", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert plan["workflow"] == "eigendata" and len(plan["hash"]) == 64
    for suffix in ("dot", "svg", "png"):
        pic = tmp_path / f"g.{suffix}"
        res = eigen("graph", str(wf), "-o", str(pic))
        assert res.returncode == 0, res.stdout + res.stderr
        assert pic.stat().st_size > 500
    assert "TrajectoryValidation#3" in (tmp_path / "g.dot").read_text()
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert eigen("graph", str(wf), "-o", str(tmp_path / "g.txt")).returncode == 2
    schema = json.loads(eigen("schema").stdout)
    assert {"DomainProgram", "WorkflowProgram"} <= set(schema["$defs"])


def test_help_imports_nothing_heavy():
    code = ("import sys\nfrom runtime.cli.main import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('ray', 'torch', 'openai', 'matplotlib', 'transformers', 'jsonschema')"
            " if m in sys.modules]\nprint('HEAVY', heavy)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in res.stdout, res.stdout + res.stderr
