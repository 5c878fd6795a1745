"""The README's two set-up commands: the main job and the test line CI runs."""

from __future__ import annotations

import re

from tests.helpers import ROOT


def setup_lines() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README opens with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_two_commands_and_ci_runs_the_second():
    main_job, tests = setup_lines()
    assert "eigen run workflows/eigendata.yaml" in main_job and "eigen verify" in main_job
    assert "--backend" not in main_job or "--backend offline" in main_job
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
