"""`eigen import tau2`: τ²-bench tasks become a run directory that `eigen verify` passes and
`eigen export` / `eigen report` read; what it records is τ²-bench's task (ids, split, user
scenario, gold actions, start state, a verifier from the gold replay); a record edited
afterwards, or a database copy that changed, fails verification; bad input is exit 1 with
a located message and no traceback."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from runtime.store.run_store import record_digest
from runtime.store.verify import verify_run
from tests.helpers import eigen
from tests.tau2.conftest import NO_TAU2, TASKS, TAU2, TELECOM_FIRST, data_folder

needs_tau2 = pytest.mark.skipif(not TAU2.is_dir(), reason=NO_TAU2)
DOMAINS = tuple(TASKS)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "instances.jsonl").read_text().splitlines()]


def rewrite(run: Path, tmp_path: Path, edit) -> Path:
    """A copy of `run` whose records went through `edit(record)` and were sealed again (so
    only the re-derivation can catch the change)."""
    copy = tmp_path / f"edited-{getattr(edit, '__name__', 'x')}"
    shutil.copytree(run, copy, symlinks=True)
    lines = []
    for r in records(copy):
        edit(r)
        r["integrity"] = record_digest(r)
        lines.append(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    (copy / "instances.jsonl").write_text("\n".join(lines) + "\n")
    return copy


@needs_tau2
@pytest.mark.parametrize("domain", DOMAINS)
def test_import_verify_export_report(domain, tau2_runs, tmp_path):
    run = tau2_runs[domain]
    result = verify_run(run)
    assert result.ok and result.passed == len(TASKS[domain]), [f.reasons for f in result.failures]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["workflow"] == "tau2-import"
    assert manifest["tau2"]["task_ids"] == TASKS[domain] and manifest["tau2"]["split"] is None
    got = records(run)
    assert [r["tau2"]["task_id"] for r in got] == TASKS[domain]
    assert all(r["provenance"]["task_id"] == r["tau2"]["task_id"] for r in got)
    for r in got:  # τ²-bench's database files, copied byte for byte, named by content hash
        for ref in (r["initial_state"]["db"], r["initial_state"]["user_db"]):
            if ref is not None:
                copy = run / ref["file"]
                source = TAU2 / "data" / domain / (copy.name.split("-")[0] + copy.suffix)
                assert copy.read_bytes() == source.read_bytes()
                assert hashlib.sha256(copy.read_bytes()).hexdigest() == ref["sha256"]
    for role in ("agent", "user"):
        res = eigen("export", str(run), "--format", "openai", "--role", role, "-o", str(tmp_path / f"{role}.jsonl"))
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "agent.jsonl").read_text().splitlines()]
    with_agent_calls = [r for r in got if any(c["side"] == "agent" for c in r["gold_calls"])]
    assert len(rows) == len(with_agent_calls)
    for row, rec in zip(rows, with_agent_calls):  # the gold path, each call with its exact answer, no words
        calls = [json.loads(c["function"]["arguments"]) for m in row["messages"] for c in m.get("tool_calls", [])]
        assert calls == [c["arguments"] for c in rec["gold_calls"] if c["side"] == "agent"]
        assert all(m.get("content") in (None, "") for m in row["messages"] if m["role"] == "assistant")
    report = eigen("report", str(run))
    assert report.returncode == 0, report.stderr


@needs_tau2
def test_what_a_record_holds(tau2_runs):
    first = next(r for r in records(tau2_runs["telecom"]) if r["tau2"]["task_id"] == TELECOM_FIRST)
    task = first["tau2"]["task"]
    assert task["id"] == TELECOM_FIRST and first["tau2"]["splits"] == ["base", "full", "train"]
    # the user scenario as τ²-bench renders it for its user simulator
    assert first["user_instructions"].startswith("Instructions:\n\tDomain: telecom\n\tReason for call:\n\t\tYou mobile")
    assert first["messages"][0]["content"].startswith("<instructions>\nYou are a customer service agent")
    assert "<main_policy>" in first["messages"][0]["content"]
    sides = [c["side"] for c in first["gold_calls"]]
    assert sides == ["user", "agent"]  # toggle_data by the user, refuel_data by the agent
    assert first["initial_state"]["init_actions"] == task["initial_state"]["initialization_actions"]
    verifier = first["verifier"]  # reward basis ENV_ASSERTION only: no database diff, the assertions
    assert verifier["expected_diff"] is None and [a["name"] for a in verifier["env_assertions"]] == [
        "assert_mobile_data_status", "assert_internet_speed", "assert_data_refueling_amount"]
    airline7 = next(r for r in records(tau2_runs["airline"]) if r["tau2"]["task_id"] == "7")
    assert airline7["verifier"]["communicate"] == ["1628"] and airline7["verifier"]["expected_diff"]
    assert "env_assertions" not in airline7["verifier"]
    judged = {r["tau2"]["task_id"]: r["tau2"]["needs_judge"] for r in records(tau2_runs["retail"])}
    assert judged == {"2": True, "5": False, "24": True, "35": False} and not airline7["tau2"]["needs_judge"]
    retail35 = next(r for r in records(tau2_runs["retail"]) if r["tau2"]["task_id"] == "35")
    assert any(not p["ok"] for p in retail35["feasibility"]["path"])  # a gold call τ²-bench also fails


@needs_tau2
def test_reimport_is_idempotent_and_other_inputs_are_refused(tau2_runs, tmp_path):
    run = tau2_runs["airline"]
    before = (run / "instances.jsonl").read_bytes()
    folder = data_folder(tmp_path, "airline", TASKS["airline"])
    res = eigen("import", "tau2", str(folder), "--domain", "airline", "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert (run / "instances.jsonl").read_bytes() == before
    res = eigen("import", "tau2", str(folder), "--domain", "airline", "--split", "test", "--out", str(run))
    assert res.returncode == 1 and "holds a different run" in res.stderr and "Traceback" not in res.stderr


@needs_tau2
def test_split(tmp_path):
    folder = data_folder(tmp_path, "retail", TASKS["retail"])
    out = tmp_path / "run"
    res = eigen("import", "tau2", str(folder), "--domain", "retail", "--split", "test", "--out", str(out))
    assert res.returncode == 0, res.stderr
    split = json.loads((TAU2 / "data" / "retail" / "split_tasks.json").read_text())["test"]
    want = [t for t in TASKS["retail"] if t in split]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tau2"]["split"] == "test" and manifest["tau2"]["task_ids"] == want
    assert [r["tau2"]["task_id"] for r in records(out)] == want
    assert all(r["provenance"]["split"] == "test" for r in records(out))
    assert "split 'test' names" in res.stderr  # the ids of the split this folder does not hold


@needs_tau2
def test_edited_records_fail_verification(tau2_runs, tmp_path):
    run = tau2_runs["airline"]

    def gold(r):
        for c in r["gold_calls"]:
            if c["name"] == "cancel_reservation":
                c["arguments"]["reservation_id"] = "AAAAAA"

    def verifier(r):
        r["verifier"]["communicate"] = []

    def escape(r):
        r["initial_state"]["db"]["file"] = "tau2/../../outside.json"

    for edit, words in ((gold, "gold_calls: not the task's"), (verifier, "verifier: not the one"),
                        (escape, "is not a file name under tau2/")):
        result = verify_run(rewrite(run, tmp_path, edit))
        reasons = [x for f in result.failures for x in f.reasons]
        assert not result.ok and any(words in x for x in reasons), reasons
    changed = tmp_path / "changed-db"
    shutil.copytree(run, changed)
    db = next((changed / "tau2").iterdir())
    db.write_text("{}")
    reasons = [x for f in verify_run(changed).failures for x in f.reasons]
    assert reasons and all("the file changed since the import" in x for x in reasons), reasons


@needs_tau2
@pytest.mark.parametrize("setup,words", [
    ("missing folder", "no such folder"),
    ("no tasks.json", "tasks.json: no such file"),
    ("bad json", "tasks.json:1:3: not valid JSON"),
    ("bad task", "task [0] (id \"0\"): user_scenario: Field required"),
    ("other domain", "1 task(s) are not airline tasks: user_scenario.instructions.domain is 'retail'"),
    ("unknown split", "no split 'nope' (the file has base, test, train)"),
    ("no policy", "no policy.md"),
])
def test_bad_input_is_exit_1_without_traceback(setup, words, tmp_path):
    folder = data_folder(tmp_path, "airline", ["0", "1"])
    args = []
    if setup == "missing folder":
        folder = tmp_path / "nowhere"
    elif setup == "no tasks.json":
        (folder / "tasks.json").unlink()
    elif setup == "bad json":
        (folder / "tasks.json").write_text("[{,]")
    elif setup == "bad task":
        tasks = json.loads((folder / "tasks.json").read_text())
        del tasks[0]["user_scenario"]
        (folder / "tasks.json").write_text(json.dumps(tasks))
    elif setup == "other domain":
        folder = data_folder(tmp_path, "retail", ["5"])
    elif setup == "unknown split":
        args = ["--split", "nope"]
    elif setup == "no policy":
        (folder / "policy.md").unlink()
    res = eigen("import", "tau2", str(folder), "--domain", "airline", "--out", str(tmp_path / "run"), *args)
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and words in res.stderr, res.stderr
    assert not (tmp_path / "run" / "instances.jsonl").exists()  # nothing imported from a folder that is wrong
