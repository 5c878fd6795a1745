"""The run store alone: ordered commits, torn-line recovery, identity checks on resume."""

from __future__ import annotations

import json

import pytest

from runtime.store.run_store import RunStore, StoreError

IDENT = {"workflow_hash": "w", "domain_hash": "d", "backend": "offline", "model": None,
         "seed": 1, "size": 0.1}


def rec(i: int, ok: bool = True) -> dict:
    r = {"index": i, "accepted": ok, "id": f"x-{i}"}
    return r if ok else dict(r, stage="TaskValidation", reasons=["no"])


def test_commits_in_order_and_counts(tmp_path):
    s = RunStore(tmp_path, IDENT, {"n": 3})
    for i, ok in enumerate([True, False, True]):
        s.commit(rec(i, ok))
    with pytest.raises(ValueError):
        s.commit(rec(7))
    s.close("complete")
    lines = (tmp_path / "instances.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [0, 2]
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["counts"] == {"attempted": 3, "accepted": 2, "rejected": 1,
                           "by_stage": {"TaskValidation": 1}, "crashed": 0,
                           "crashes_by_stage": {}} and m["status"] == "complete"


def test_torn_last_line_is_cut_and_run_resumes(tmp_path):
    s = RunStore(tmp_path, IDENT, {})
    s.commit(rec(0))
    s.commit(rec(1, False))
    s.close("running")
    with open(tmp_path / "instances.jsonl", "ab") as f:  # a crash in the middle of a write
        f.write(b'{"index": 2, "accep')
    s2 = RunStore(tmp_path, IDENT, {})
    assert s2.next_index == 2 and s2.counts.accepted == 1 and s2.counts.rejected == 1
    s2.commit(rec(2))
    s2.close("complete")
    assert [json.loads(x)["index"] for x in (tmp_path / "instances.jsonl").read_text().splitlines()] == [0, 2]


def test_a_different_run_is_refused(tmp_path):
    RunStore(tmp_path, IDENT, {}).close("complete")
    with pytest.raises(StoreError, match="seed 1 there, 2 now"):
        RunStore(tmp_path, dict(IDENT, seed=2), {})


def test_damage_is_reported_not_papered_over(tmp_path):
    s = RunStore(tmp_path, IDENT, {})
    s.commit(rec(0))
    s.close("running")
    (tmp_path / "rejected.jsonl").write_text(json.dumps(rec(5, False)) + "\n")
    with pytest.raises(StoreError, match="not 0..1"):
        RunStore(tmp_path, IDENT, {})
    (tmp_path / "rejected.jsonl").write_text("garbage\n")
    with pytest.raises(StoreError, match="rejected.jsonl:1"):
        RunStore(tmp_path, IDENT, {})
