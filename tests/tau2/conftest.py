"""Imported τ²-bench runs shared by the tests of this folder: a handful of tasks of each domain
(chosen for what they exercise), imported once per session from a data folder that holds only
those tasks, the way a user points `eigen import tau2` at their own τ²-bench data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAU2 = (ROOT / ".." / "shared" / "tau2").resolve()
NO_TAU2 = f"τ²-bench reference folder not found at {TAU2}"

TELECOM_FIRST = "[mobile_data_issue]data_mode_off|data_usage_exceeded[PERSONA:None]"
TASKS = {
    # 0: no gold actions (a refusal); 1: reads only; 7: a cabin change and two cancellations,
    # communicate_info; 13: in the test split
    "airline": ["0", "1", "7", "13"],
    # 2: communicate_info, nl_assertions in the basis, gold calls τ²-bench answers with an error;
    # 5: test split; 24: no gold actions; 35: a failing gold call that keeps its partial write
    "retail": ["2", "5", "24", "35"],
    # (in tasks.json order) initialization actions and env assertions; only user-side gold
    # actions; ACTION in the basis
    "telecom": [TELECOM_FIRST, "[mobile_data_issue]airplane_mode_on|data_mode_off[PERSONA:None]",
                "[service_issue]break_apn_settings|lock_sim_card_pin[PERSONA:None]"],
}


def data_folder(tmp: Path, domain: str, ids: list[str] | None = None) -> Path:
    """A τ²-bench data folder for `domain` holding only the tasks `ids` (all when None): the
    reference kit's other files linked in."""
    source = TAU2 / "data" / domain
    folder = tmp / f"data-{domain}"
    folder.mkdir()
    for f in source.iterdir():
        if f.name != "tasks.json":
            (folder / f.name).symlink_to(f)
    tasks = json.loads((source / "tasks.json").read_text())
    if ids is not None:
        tasks = [t for t in tasks if t["id"] in ids]
        assert len(tasks) == len(ids), f"{domain}: tasks {ids} not all in the reference kit"
    (folder / "tasks.json").write_text(json.dumps(tasks))
    return folder


@pytest.fixture(scope="session")
def tau2_runs(tmp_path_factory) -> dict[str, Path]:
    """domain -> a run directory of its TASKS, imported in this process."""
    if not TAU2.is_dir():
        pytest.skip(NO_TAU2)
    from runtime.tau2.importer import import_tau2

    tmp = tmp_path_factory.mktemp("tau2")
    runs = {}
    for domain, ids in TASKS.items():
        result = import_tau2(data_folder(tmp, domain, ids), domain, tmp / f"run-{domain}")
        assert result.imported == len(ids) and not result.rejected, result.rejected
        runs[domain] = result.out
    return runs
