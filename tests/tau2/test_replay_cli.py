"""`eigen domain replay` as a user runs it (real subprocesses): exactly one JSON object on
stdout with every call's content, the final database and user database; bad input is exit 1
with located messages on stderr and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.env import State
from runtime.tau2.corpus import apply_diff, read_corpus
from tests.helpers import eigen

TAU2 = (Path(__file__).resolve().parents[2] / ".." / "shared" / "tau2").resolve()
needs_tau2 = pytest.mark.skipif(not TAU2.is_dir(), reason=f"τ²-bench reference folder not found at {TAU2}")


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _failed(res, *fragments: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stdout[:500], res.stderr)
    assert res.stdout == "" and "Traceback" not in res.stderr
    for f in fragments:
        assert f in res.stderr, res.stderr


@needs_tau2
def test_replays_a_tau2_task_exactly(tmp_path):
    """Airline task 7 (a cabin change, a cancellation, another cancellation): every content
    byte-equal to τ²-bench's and the final db equal to τ²-bench's."""
    task = next(t for t in read_corpus(TAU2 / "conformance" / "airline.jsonl") if t["task_id"] == "7")
    gold = {t["id"]: t for t in json.loads((TAU2 / "data" / "airline" / "tasks.json").read_text())}["7"]
    calls = _write(tmp_path, "calls.json", gold["evaluation_criteria"]["actions"])  # as τ²-bench writes them
    db_file = TAU2 / "data" / "airline" / "db.json"
    res = eigen("domain", "replay", "airline", str(calls), "--db", str(db_file))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # exactly one JSON object
    assert set(out) == {"calls", "db", "user_db"} and out["user_db"] is None
    assert out["calls"] == [{"name": c["name"], "content": c["content"], "error": c["error"]} for c in task["calls"]]
    initial = json.loads(db_file.read_text())
    for r in initial["reservations"].values():  # τ²-bench's loaded db: the file plus status null
        r.setdefault("status", None)
    assert State.from_json(out["db"]) == apply_diff(State.from_json(initial), task["final_db_diff"])


@needs_tau2
def test_telecom_user_side_calls(tmp_path):
    data = TAU2 / "data" / "telecom"
    calls = _write(tmp_path, "calls.json", [
        {"name": "get_customer_by_phone", "arguments": {"phone_number": "555-123-2002"}, "requestor": "assistant"},
        {"name": "toggle_airplane_mode", "arguments": {}, "requestor": "user"}])
    res = eigen("domain", "replay", "telecom", str(calls), "--db", str(data / "db.toml"),
                "--user-db", str(data / "user_db.toml"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [c["error"] for c in out["calls"]] == [False, False]
    assert out["user_db"]["device"]["airplane_mode"] is True and "surroundings" in out["user_db"]
    _failed(eigen("domain", "replay", "telecom", str(calls), "--db", str(data / "db.toml")), "--user-db")


def test_failed_calls_are_answers_not_errors(tmp_path):
    calls = _write(tmp_path, "calls.json", [
        {"name": "get_reservation_details", "arguments": {"reservation_id": "NOPE00"}, "requestor": "assistant"},
        {"name": "calculate", "arguments": {"expression": "2**3"}}])  # requestor defaults to the agent
    res = eigen("domain", "replay", "airline", str(calls), "--size", "0.05")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["calls"] == [
        {"name": "get_reservation_details", "content": "Error: Reservation NOPE00 not found", "error": True},
        {"name": "calculate", "content": "8.0", "error": False}]
    assert len(out["db"]["reservations"]) == 100


def test_bad_input_is_located(tmp_path):
    bad = _write(tmp_path, "calls.json", [{"name": "get_reservaton_details", "argumnets": {}},
                                          3, {"name": "calculate", "requestor": "bot", "arguments": []},
                                          {"name": "get_user_details", "requestor": "user", "arguments": {}}])
    _failed(eigen("domain", "replay", "airline", str(bad), "--size", "0.05"),
            f"{bad}: [0].name: unknown tool 'get_reservaton_details'; did you mean 'get_reservation_details'?",
            f"{bad}: [0].argumnets: unknown key (an action has name, arguments and requestor); did you mean 'arguments'?",
            f"{bad}: [1]: expected an object", f"{bad}: [2].requestor: expected 'assistant' or 'user'",
            f"{bad}: [2].arguments: expected an object", f"{bad}: [3].name: domain 'airline' has no user tools")
    broken = _write(tmp_path, "broken.json", '[{"name": "calculate",\n  "arguments": {]')
    _failed(eigen("domain", "replay", "airline", str(broken), "--size", "0.05"), f"{broken}:2:17: not valid JSON")
    world = {"flights": {}, "users": {}, "reservations": {"R1": {"reservation_id": "R1"}}}
    db_file = _write(tmp_path, "db.json", world)
    calls = _write(tmp_path, "ok.json", [{"name": "list_all_airports", "arguments": {}}])
    _failed(eigen("domain", "replay", "airline", str(calls), "--db", str(db_file)),
            f"{db_file}: does not match the schema", "reservations.R1.user_id: required field is missing")
    _failed(eigen("domain", "replay", "nowhere", str(calls)), "nowhere")
