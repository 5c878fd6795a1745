"""Golden diagnostics: each tests/golden/*.yaml is a broken program whose expected
diagnostics are written at its end, as comments (so line numbers above stay put).

Regenerate after an intended change:  EIGEN_UPDATE_GOLDEN=1 python -m pytest tests/eigenlang/test_golden.py
then read the diff: every changed line is a changed message users will see.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eigenlang.compiler import check_file

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
MARK = "# --- expected diagnostics"
FILES = sorted(GOLDEN.glob("*.yaml"))


def split(text: str) -> tuple[str, list[str]]:
    if MARK not in text:
        return text, []
    body, _, tail = text.partition(MARK)
    lines = [ln[2:] if ln.startswith("# ") else ln[1:] for ln in tail.splitlines()[1:]]
    return body, [ln for ln in lines if ln.strip()]


def actual(path: Path, body: str) -> list[str]:
    rel = path.relative_to(ROOT)
    # the golden programs share the repository's fixture domain and reference prompts, as a
    # user would with `--allow-path .`; paths.yaml tests the folder rule with files outside it
    diags = check_file(rel, body, allow=[ROOT])
    prefix = f"{rel}:"
    out = []
    for line in diags.render().splitlines():
        out.append(line[len(prefix):] if line.startswith(prefix) else line)
    return out


def test_golden_files_exist():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_golden(path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)  # diagnostics show paths relative to where eigen runs
    text = path.read_text()
    body, expected = split(text)
    got = actual(path, body)
    if os.environ.get("EIGEN_UPDATE_GOLDEN"):
        block = "\n".join("# " + ln for ln in got)
        path.write_text(body.rstrip("\n") + "\n\n" + MARK + " (EIGEN_UPDATE_GOLDEN=1 rewrites this)\n"
                        + block + "\n")
        return
    assert got, f"{path.name}: a golden program must have at least one diagnostic"
    assert got == expected
