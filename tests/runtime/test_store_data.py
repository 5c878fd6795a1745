"""`eigen verify`, `eigen export`, `eigen report` over hand-built run directories.

The fixtures write run directories by the contract (docs/CONTRACTS.md §10) from real worlds:
airline at size 0.1 with real cancellations (gold calls replayed to get the final state, the
verifier written by `verifier_from_diff`), and telecom with a user-side tool call.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eigenlang.domain import load_domain
from eigenlang.emit import domain_hash
from runtime.cli import data_cmds
from runtime.env import Environment, verifier_from_diff
from runtime.env.state import MISSING
from runtime.store.export import START_CUE, export_run, link_problems, user_system_prompt
from runtime.store.report import build_report, reason_group, write_report
from runtime.store.run_store import FORMAT, sealed
from runtime.store.verify import RunDirError, verify_run
from tests.helpers import eigen

SIZE = 0.1
SEED = 0


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Records as the run store writes them: sealed with their integrity hash."""
    path.write_text("".join(canonical(sealed(r)) + "\n" for r in records), encoding="utf-8")


class Script:
    """Plays a dialog against a fork of the world, writing messages and calls as a run would."""

    def __init__(self, env: Environment, system: str) -> None:
        self.env = env
        self.messages: list[dict] = [{"role": "system", "content": system}]
        self.calls: list[dict] = []
        self.turns = 0

    def user(self, text: str) -> "Script":
        self.turns += 1
        self.messages.append({"role": "user", "content": text})
        return self

    def agent(self, text: str) -> "Script":
        self.messages.append({"role": "assistant", "content": text})
        return self

    def call(self, name: str, arguments: dict, side: str = "agent") -> "Script":
        r = self.env.call(name, arguments, side=side)
        cid = f"call_{len(self.calls)}"
        tc = [{"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]
        result = {"role": "tool", "tool_call_id": cid, "name": name, "content": r.content}
        if side == "user":
            self.messages += [{"role": "user", "content": None, "tool_calls": tc, "side": "user"},
                              {**result, "side": "user"}]
        else:
            self.messages += [{"role": "assistant", "content": None, "tool_calls": tc}, result]
        self.calls.append({"name": name, "arguments": arguments, "side": side, "ok": r.ok,
                           "error": r.error, "turn": self.turns})
        return self


def accepted_record(spec, digest: str, initial: Environment, script: Script, index: int, *,
                    intent: str, level: str, persona: dict, rounds: int, communicate=()) -> dict:
    final = script.env
    gold = [{"name": c["name"], "arguments": c["arguments"], "side": c["side"]} for c in script.calls]
    diff = [{"path": ["db", *c.path], "before": None if c.before is MISSING else c.before,
             "after": None if c.after is MISSING else c.after} for c in initial.db.diff(final.db)]
    difficulty = {"level": level, "tool_calls": len(gold), "branching": 0, "ambiguity": 0.1, "error_prone": []}
    instructions = f"You want to {intent.replace('_', ' ')}."
    task = {"intent": intent, "objective": instructions, "persona": persona, "difficulty": difficulty,
            "context": {}, "known": {}, "alternatives": {}, "say": {}, "must": [], "must_not": [],
            "subgoals": [], "user_instructions": instructions, "gold_calls": gold, "expect_feasible": True}
    validation = [{"accepted": i == rounds, "checks": {}, "reasons": [] if i == rounds else ["realism: tone: stiff"],
                   "round": i} for i in range(rounds + 1)]
    trace = ["RandomPool", "UserIntent", "TaskValidation", "DialogSynthesis", "TrajectoryValidation"]
    for i in range(1, rounds + 1):
        trace += [f"Modify#{i}", f"TrajectoryValidation#{i}"]
    trace.append("VerificationFunction")
    return {
        "index": index, "id": f"{spec.name}-{SEED}-{index:06d}", "seed": 1000 + index, "domain": spec.name,
        "accepted": True, "task": task,
        "scenario": {"persona": persona, "context": {}, "difficulty": difficulty, "intent": intent},
        "persona": persona, "difficulty": difficulty, "user_instructions": instructions, "gold_calls": gold,
        "messages": script.messages, "calls": script.calls, "turns": script.turns,
        "tools": initial.tool_schemas("agent"), "user_tools": initial.tool_schemas("user"),
        "initial_state": {"domain": spec.name, "domain_hash": digest, "generator_seed": SEED, "size": SIZE,
                          "hash": initial.hash()},
        "final_state": {"initial_hash": initial.hash(), "hash": final.hash(), "diff": diff},
        "verifier": verifier_from_diff(initial, final, communicate=communicate).model_dump(),
        "feasibility": {"feasible": True, "reasons": [], "path": gold},
        "validation": validation, "trace": trace,
        "provenance": {"workflow": "eigendata", "workflow_hash": "w" * 64, "prompts": {},
                       "backend": "offline", "model": None},
    }


def rejected_record(name: str, index: int, stage: str, reasons: list[str], trace: list[str], intent: str) -> dict:
    return {"index": index, "id": f"{name}-{SEED}-{index:06d}", "seed": 1000 + index, "domain": name,
            "accepted": False, "stage": stage, "reasons": reasons, "trace": trace,
            "artifacts": {"ScenarioSeed": {"intent": intent}},
            "provenance": {"workflow": "eigendata", "workflow_hash": "w" * 64, "prompts": {},
                           "backend": "offline", "model": None}}


def manifest(name: str, digest: str, accepted: int, rejected: int) -> dict:
    return {"format": FORMAT, "workflow": "eigendata", "workflow_hash": "w" * 64, "domain": name,
            "domain_hash": digest, "prompts": {}, "backend": "offline", "model": None, "seed": SEED,
            "size": SIZE, "n": accepted, "max_attempts": 10, "status": "complete",
            "counts": {"attempted": accepted + rejected, "accepted": accepted, "rejected": rejected}}


def _allowed(result) -> bool:
    """The call succeeds and breaks none of its tool's policy checks."""
    return result.ok and not result.violations


@pytest.fixture(scope="module")
def airline_run(tmp_path_factory) -> Path:
    spec, diags = load_domain("airline")
    assert spec is not None, diags.render()
    digest = domain_hash(spec)
    env = Environment.from_domain(spec, SEED, SIZE)
    # the first two reservations (by id) that the policy lets us cancel
    db = env.db.to_json()
    cancellable = [rid for rid in sorted(db["reservations"])
                   if _allowed(env.fork().call("cancel_reservation", {"reservation_id": rid}))][:2]
    assert len(cancellable) == 2
    records = []
    personas = [{"name": "Mia", "tone": "polite", "expertise": "novice", "constraints": []},
                {"name": "Omar", "tone": "terse", "expertise": "expert", "constraints": ["is in a hurry"]}]
    for k, (rid, index) in enumerate(zip(cancellable, (0, 2))):
        user = db["reservations"][rid]["user_id"]
        s = (Script(env.fork(), spec.policy[:200])
             .user(f"Hi, I'm {user} and I want to cancel reservation {rid}.")
             .call("get_user_details", {"user_id": user})
             .agent(f"I found reservation {rid}. Shall I cancel it? Please confirm.")
             .user("yes")
             .call("cancel_reservation", {"reservation_id": rid})
             .agent(f"Reservation {rid} is cancelled and refunded.")
             .user("Thanks, bye."))
        records.append(accepted_record(spec, digest, env, s, index, intent="cancel_reservation",
                                       level=("easy", "medium")[k], persona=personas[k], rounds=k,
                                       communicate=[f"{rid} is cancelled"]))
    full = ["RandomPool", "UserIntent", "TaskValidation", "DialogSynthesis", "TrajectoryValidation"]
    rejected = [
        rejected_record("airline", 1, "TaskValidation", ["policy: cancel_allowed: flight HAT001 has departed"],
                        full[:3], "cancel_reservation"),
        rejected_record("airline", 3, "TrajectoryValidation",
                        ["compliance: confirm_before_write: cancelled without a yes",
                         "grounding: user id not from the dialog"], full, "change_flight"),
        rejected_record("airline", 4, "TaskValidation", ["policy: cancel_allowed: flight HAT002 has departed"],
                        full[:3], "cancel_reservation"),
    ]
    out = tmp_path_factory.mktemp("airline_run")
    write_jsonl(out / "instances.jsonl", records)
    write_jsonl(out / "rejected.jsonl", rejected)
    (out / "manifest.json").write_text(json.dumps(manifest("airline", digest, 2, 3), indent=2, sort_keys=True))
    return out


@pytest.fixture(scope="module")
def telecom_run(tmp_path_factory) -> Path:
    spec, diags = load_domain("telecom")
    assert spec is not None, diags.render()
    env = Environment.from_domain(spec, SEED, SIZE)
    phone = env.db.to_json()["customers"][0]["phone_number"]
    s = (Script(env.fork(), "You are a telecom support agent.")
         .agent("Hi! How can I help you today?")
         .user(f"My phone has no internet. My number is {phone}.")
         .call("get_customer_by_phone", {"phone_number": phone})
         .agent("I found your account. Please turn airplane mode on and tell me what you see.")
         .call("toggle_airplane_mode", {}, side="user")
         .user("Done, airplane mode is on now.")
         .agent("Thanks, that resets the radio.")
         .user("Great, bye."))
    persona = {"name": "Lena", "tone": "anxious", "expertise": "novice", "constraints": ["is on a mobile phone"]}
    record = accepted_record(spec, domain_hash(spec), env, s, 0, intent="fix_mobile_data", level="hard",
                             persona=persona, rounds=0)
    out = tmp_path_factory.mktemp("telecom_run")
    write_jsonl(out / "instances.jsonl", [record])
    (out / "manifest.json").write_text(json.dumps(manifest("telecom", domain_hash(spec), 1, 0)))
    return out


def tampered(src: Path, dst: Path, edit) -> Path:
    """A copy of a run directory whose instances.jsonl lines went through `edit(lines)`."""
    shutil.copytree(src, dst)
    lines = (dst / "instances.jsonl").read_text(encoding="utf-8").splitlines()
    (dst / "instances.jsonl").write_text("".join(line + "\n" for line in edit(lines)), encoding="utf-8")
    return dst


def edit_record(i: int, change):
    """Change record i and reseal it (its integrity hash recomputed): what each test shows is
    caught by the check it is about (tests/security covers edits that leave the hash stale)."""
    def edit(lines):
        record = json.loads(lines[i])
        change(record)
        lines[i] = canonical(sealed(record))
        return lines
    return edit


# ------------------------------------------------------------------ verify


def test_verify_passes_on_good_runs(airline_run, telecom_run):
    for run, n in ((airline_run, 2), (telecom_run, 1)):
        result = verify_run(run)
        assert result.ok, result.to_json()
        assert (result.lines, result.checked, result.passed, result.failed) == (n, n, n, 0)
        assert result.warnings == []


def _cancel_other(record):
    other = record["gold_calls"][1]["arguments"]["reservation_id"]
    record["gold_calls"][1]["arguments"]["reservation_id"] = other[:-1] + ("A" if other[-1] != "A" else "B")


def test_verify_fails_on_a_changed_gold_call(airline_run, tmp_path):
    run = tampered(airline_run, tmp_path / "r", edit_record(0, _cancel_other))
    result = verify_run(run)
    assert not result.ok and result.passed == 1
    [failure] = result.failures
    assert failure.line == 1 and failure.id == "airline-0-000000"
    assert any("gold calls replayed reach" in r for r in failure.reasons), failure.reasons


def test_verify_fails_on_a_changed_final_hash(airline_run, tmp_path):
    run = tampered(airline_run, tmp_path / "r", edit_record(1, lambda r: r["final_state"].update(hash="0" * 64)))
    [failure] = verify_run(run).failures
    assert failure.line == 2
    assert any("final_state.hash is 0000" in r for r in failure.reasons)
    assert any("dialog's calls" in r for r in failure.reasons)


def test_verify_fails_on_a_broken_line_and_keeps_checking(airline_run, tmp_path):
    run = tampered(airline_run, tmp_path / "r", lambda lines: [lines[0][: len(lines[0]) // 2], lines[1]])
    result = verify_run(run)
    assert (result.lines, result.checked, result.passed) == (2, 1, 1)
    [failure] = result.failures
    assert failure.line == 1 and failure.id is None and "not valid JSON" in failure.reasons[0]


def test_verify_fails_on_verifier_domain_and_order(airline_run, tmp_path):
    def lie(record):
        record["verifier"]["communicate"] = ["a refund of one million dollars"]
        record["calls"][1]["ok"] = False

    result = verify_run(tampered(airline_run, tmp_path / "a", edit_record(0, lie)))
    reasons = result.failures[0].reasons
    assert any(r.startswith("verifier: the assistant never said") for r in reasons), reasons
    assert any("calls[1].ok (cancel_reservation): recorded false, the messages say true" in r for r in reasons), reasons

    result = verify_run(tampered(airline_run, tmp_path / "b",
                                 edit_record(1, lambda r: r["initial_state"].update(domain_hash="f" * 64))))
    assert "domain_hash mismatch" in result.failures[0].reasons[0]

    result = verify_run(tampered(airline_run, tmp_path / "c", lambda lines: lines[::-1]))
    assert any("comes after index 2" in r for r in result.failures[0].reasons)

    assert verify_run(tmp_path / "a", domain="telecom").failures[0].reasons[0].startswith("domain_hash mismatch")


def test_verify_bad_dirs(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        verify_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match="no manifest.json"):
        verify_run(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(RunDirError, match="unreadable"):
        verify_run(tmp_path)


# ------------------------------------------------------------------ export


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_openai_agent_view(airline_run, telecom_run, tmp_path):
    assert export_run(airline_run, "openai", "agent", tmp_path / "a.jsonl") == 2
    rows = read_jsonl(tmp_path / "a.jsonl")
    record = read_jsonl(airline_run / "instances.jsonl")[0]
    assert set(rows[0]) == {"messages", "tools", "parallel_tool_calls"} and rows[0]["parallel_tool_calls"] is False
    assert rows[0]["tools"] == record["tools"]
    for row in rows:
        assert link_problems(row["messages"]) == []
        ids = [c["id"] for m in row["messages"] for c in m.get("tool_calls", [])]
        answered = [m["tool_call_id"] for m in row["messages"] if m["role"] == "tool"]
        assert ids == answered and len(ids) == 2
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant", "tool", "assistant", "user",
                                                        "assistant", "tool", "assistant", "user"]

    assert export_run(telecom_run, "openai", "agent", tmp_path / "t.jsonl") == 1
    [row] = read_jsonl(tmp_path / "t.jsonl")
    text = json.dumps(row)
    assert '"side"' not in text and "toggle_airplane_mode" not in json.dumps(row["messages"])
    assert [c["function"]["name"] for m in row["messages"] for c in m.get("tool_calls", [])] == ["get_customer_by_phone"]


def test_export_user_view(telecom_run, tmp_path):
    record = read_jsonl(telecom_run / "instances.jsonl")[0]
    assert export_run(telecom_run, "openai", "user", tmp_path / "u.jsonl") == 1
    [row] = read_jsonl(tmp_path / "u.jsonl")
    msgs = row["messages"]
    assert msgs[0]["role"] == "system"
    assert record["user_instructions"] in msgs[0]["content"] and "anxious" in msgs[0]["content"]
    assert "is on a mobile phone" in msgs[0]["content"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "tool", "assistant",
                                         "user", "assistant"]
    assert msgs[1]["content"] == "Hi! How can I help you today?"  # the agent's words, now "user"
    assert msgs[2]["content"].startswith("My phone has no internet")
    assert [c["function"]["name"] for c in msgs[4]["tool_calls"]] == ["toggle_airplane_mode"]
    assert msgs[5]["tool_call_id"] == msgs[4]["tool_calls"][0]["id"] and "Airplane Mode" in msgs[5]["content"]
    assert "get_customer_by_phone" not in json.dumps(msgs)  # the agent's tool use is invisible to the user
    assert link_problems(msgs) == []
    assert [t["function"]["name"] for t in row["tools"]] == [t["function"]["name"] for t in record["user_tools"]]


def test_user_system_prompt_adds_only_what_the_instructions_lack():
    persona = {"name": "Ivan", "tone": "terse", "expertise": "expert", "constraints": ["is in a hurry", "x"]}
    text = user_system_prompt({"user_instructions": "You are Ivan, a terse customer who is in a hurry.",
                               "persona": persona})
    assert text == "You are Ivan, a terse customer who is in a hurry.\n\nPersona: expertise: expert.\n\nConstraints: x."


def check_sharegpt(row: dict) -> None:
    conv = row["conversations"]
    assert conv and len(conv) % 2 == 0
    for i, turn in enumerate(conv):
        assert turn["from"] in (("human", "observation") if i % 2 == 0 else ("gpt", "function_call")), conv
        if turn["from"] == "function_call":
            call = json.loads(turn["value"])
            assert set(call) == {"name", "arguments"} and isinstance(call["arguments"], dict)
    assert isinstance(json.loads(row["tools"]), list) and isinstance(row["system"], str)


def test_export_sharegpt_both_views(airline_run, telecom_run, tmp_path):
    assert export_run(airline_run, "sharegpt", "agent", tmp_path / "a.jsonl") == 2
    rows = read_jsonl(tmp_path / "a.jsonl")
    for row in rows:
        check_sharegpt(row)
    assert [t["from"] for t in rows[0]["conversations"]] == ["human", "function_call", "observation", "gpt", "human",
                                                             "function_call", "observation", "gpt"]
    assert "cancel_reservation" in [t["name"] for t in json.loads(rows[0]["tools"])]

    assert export_run(telecom_run, "sharegpt", "agent", tmp_path / "t.jsonl") == 1
    [row] = read_jsonl(tmp_path / "t.jsonl")
    check_sharegpt(row)
    assert row["conversations"][0] == {"from": "human", "value": START_CUE}  # the agent spoke first

    assert export_run(telecom_run, "sharegpt", "user", tmp_path / "u.jsonl") == 1
    [row] = read_jsonl(tmp_path / "u.jsonl")
    check_sharegpt(row)
    assert "toggle_airplane_mode" in [t["name"] for t in json.loads(row["tools"])]
    assert json.loads([t for t in row["conversations"] if t["from"] == "function_call"][0]["value"])["name"] == \
        "toggle_airplane_mode"


def test_export_hf_loads_back(airline_run, telecom_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    assert export_run(airline_run, "hf", "agent", tmp_path / "hf") == 2
    export_run(airline_run, "openai", "agent", tmp_path / "a.jsonl")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == 2
    assert ds[0]["id"] == "airline-0-000000" and ds[1]["index"] == 2
    assert ds["difficulty"] == ["easy", "medium"] and ds["intent"] == ["cancel_reservation"] * 2
    assert [json.loads(m) for m in ds["messages"]] == [r["messages"] for r in read_jsonl(tmp_path / "a.jsonl")]
    assert export_run(telecom_run, "hf", "user", tmp_path / "hfu") == 1
    ds = datasets.load_from_disk(str(tmp_path / "hfu"))
    assert ds[0]["role"] == "user" and json.loads(ds[0]["messages"])[2]["role"] == "assistant"


def test_export_skips_what_it_cannot_write(airline_run, tmp_path):
    def dangling(record):  # drop the result of the first tool call
        record["messages"] = [m for m in record["messages"] if m.get("tool_call_id") != "call_0"]

    run = tampered(airline_run, tmp_path / "r", edit_record(0, dangling))
    problems: list[str] = []
    assert export_run(run, "openai", "agent", tmp_path / "o.jsonl", problems=problems) == 1
    assert len(problems) == 1 and "call_0" in problems[0] and "airline-0-000000" in problems[0]
    problems = []
    assert export_run(run, "openai", "user", tmp_path / "u.jsonl", problems=problems) == 2  # the user never saw it


# ------------------------------------------------------------------ report


def test_reason_group():
    assert reason_group("compliance: confirm_before_write: cancelled without a yes") == \
        "compliance: confirm_before_write"
    assert reason_group("grounding: user id not from the dialog") == "grounding"
    assert reason_group("TaskValidation#1: no Dialog upstream") == "TaskValidation#1"
    assert reason_group("Reservation not found") == "Reservation not found"
    assert reason_group("step 3 cancel_reservation: tool_error: Error: not eligible") == \
        "step N cancel_reservation: tool_error"
    assert reason_group("step 4 cancel_reservation: tool_error: Error: other") == \
        "step N cancel_reservation: tool_error"
    assert reason_group("a rather long sentence that explains: what happened") == "a rather long sentence that explains"


def test_report_numbers_and_files(airline_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(airline_run, run)
    report = write_report(run)
    assert report["counts"]["accepted"] == 2 and report["counts"]["rejected"] == 3
    assert report["acceptance"]["overall"] == 0.4
    stages = {s["stage"]: s for s in report["acceptance"]["stages"]}
    assert stages["TaskValidation"] == {"stage": "TaskValidation", "reached": 5, "rejected": 2, "crashed": 0,
                                        "acceptance": 0.6}
    assert stages["TrajectoryValidation"]["reached"] == 3 and stages["TrajectoryValidation"]["rejected"] == 1
    assert stages["Modify#1"]["reached"] == 1
    assert list(stages)[-3:] == ["Modify#1", "TrajectoryValidation#1", "VerificationFunction"]  # run order
    rej = {r["stage"]: r for r in report["rejections"]}
    assert rej["TaskValidation"]["reasons"][0]["reason"] == "policy: cancel_allowed"
    assert rej["TaskValidation"]["reasons"][0]["count"] == 2 and len(rej["TaskValidation"]["reasons"][0]["examples"]) == 2
    assert {g["reason"] for g in rej["TrajectoryValidation"]["reasons"]} == {"compliance: confirm_before_write", "grounding"}
    assert report["repair_rounds"]["histogram"] == {"0": 1, "1": 1}
    assert report["difficulty"] == {"easy": 1, "medium": 1}
    assert report["calls_per_task"]["histogram"] == {"2": 2}
    assert report["tool_usage"] == {"cancel_reservation": 2, "get_user_details": 2}
    assert report["personas"] == {"tone": {"polite": 1, "terse": 1}, "expertise": {"expert": 1, "novice": 1}}
    assert report["intents"] == {"cancel_reservation": {"accepted": 2, "rejected": 2},
                                 "change_flight": {"accepted": 0, "rejected": 1}}
    assert report["diversity"]["tool_sequences"] == 1 and report["diversity"]["share"] == 0.5
    assert report["turns"] == {"histogram": {"3": 2}, "mean": 3.0, "min": 3, "max": 3}
    assert report["run"]["domain"] == "airline" and report["run"]["seed"] == SEED

    assert json.loads((run / "report.json").read_text()) == report
    html = (run / "report.html").read_text()
    assert "policy: cancel_allowed" in html and "TaskValidation" in html
    for p in report["plots"]:
        assert (run / p).read_bytes()[:4] == b"\x89PNG" and p in html
    assert len(report["plots"]) >= 8
    first = {p: (run / p).read_bytes() for p in ["report.json", "report.html", *report["plots"]]}
    write_report(run)  # the same directory gives the same files, byte for byte
    assert {p: (run / p).read_bytes() for p in first} == first


def test_report_on_an_empty_run(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"workflow": "w", "status": "running"}))
    report = write_report(tmp_path)
    assert report["counts"]["attempted"] == 0 and report["acceptance"]["overall"] is None
    assert (tmp_path / "report.html").is_file()
    assert build_report(tmp_path)["diversity"]["share"] is None


# ------------------------------------------------------------------ the commands


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    data_cmds.register(app)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_cli_commands(cli, airline_run, telecom_run, tmp_path):
    res = cli("verify", airline_run)
    assert res.exit_code == 0, res.output
    assert "passed" in res.output
    bad = tampered(airline_run, tmp_path / "bad", edit_record(0, _cancel_other))
    res = cli("verify", bad)
    assert res.exit_code == 1 and "airline-0-000000" in res.output
    res = cli("verify", tmp_path / "missing")
    assert res.exit_code == 2 and "no such run directory" in res.output and "Traceback" not in res.output

    res = cli("export", telecom_run, "-f", "sharegpt", "--role", "user", "-o", tmp_path / "x.jsonl")
    assert res.exit_code == 0, res.output
    assert len(read_jsonl(tmp_path / "x.jsonl")) == 1
    assert cli("export", telecom_run, "-f", "csv", "-o", tmp_path / "y").exit_code == 2
    assert cli("export", telecom_run, "--role", "judge", "-o", tmp_path / "y").exit_code == 2

    run = tmp_path / "rep"
    shutil.copytree(airline_run, run)
    res = cli("report", run)
    assert res.exit_code == 0, res.output
    assert "report.html" in res.output and "40.0%" in res.output


def test_eigen_entry_point_has_the_commands(tmp_path):
    res = eigen("verify", str(tmp_path / "missing"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
