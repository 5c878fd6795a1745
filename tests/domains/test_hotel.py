"""A new domain written the way a user would, from docs/language.md alone (tests/fixtures/hotel:
two declarative read tools, a date-based policy check, `{param}` error texts, four offline
intents) goes through check, run, verify, export and report: the commands a user runs, in
subprocesses, on a small run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eigenlang import load_domain
from eigenlang.declarative import ExprImpl
from runtime.env import Environment
from tests.helpers import ROOT, eigen

HOTEL = ROOT / "tests" / "fixtures" / "hotel"
WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hotel") / "run"
    p = eigen("run", WORKFLOW, "--domain", str(HOTEL), "--n", "12", "--size", "0.5", "--out", str(out), "-q")
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def test_the_domain_checks_clean_with_its_code_run():
    p = eigen("check", str(HOTEL), "--run-domain")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "error" not in p.stdout and "warning" not in p.stdout
    # and the reference workflow checks against it without copying anything
    p = eigen("check", WORKFLOW, "--domain", str(HOTEL))
    assert p.returncode == 0, p.stdout + p.stderr


def test_declarative_tools_and_the_date_rule_run_without_python():
    domain, diags = load_domain(HOTEL)
    assert domain is not None, diags.render()
    assert isinstance(domain.tools["get_booking"].impl, ExprImpl)
    env = Environment.from_domain(domain, seed=0, size=0.5)
    bookings = env.db.to_json()["bookings"]
    some = next(iter(bookings))
    r = env.call("get_booking", {"booking_id": some})
    assert r.ok and json.loads(r.content)["booking_id"] == some
    assert env.call("get_booking", {"booking_id": "BK0"}).content == "Error: Booking BK0 not found"
    # free cancellation: 48 hours before check-in, or 24 hours after booking (`now` 2024-06-10T12:00)
    late = next(b for b in bookings.values() if b["status"] == "confirmed" and b["check_in"] <= "2024-06-12"
                and b["created_at"] < "2024-06-09 12:00:00")
    r = env.fork().call("cancel_booking", {"booking_id": late["booking_id"]})
    assert r.ok and [v.rule for v in r.violations] == ["free_cancellation"]
    early = next(b for b in bookings.values() if b["status"] == "confirmed" and b["check_in"] >= "2024-06-13")
    assert not env.fork().call("cancel_booking", {"booking_id": early["booking_id"]}).violations


def test_check_run_verify_export_report(run_dir, tmp_path):
    records = [json.loads(line) for line in (run_dir / "instances.jsonl").read_text().splitlines()]
    assert len(records) == 12
    assert len({r["task"]["intent"] for r in records}) >= 3
    # the agent's system prompt states the domain's clock
    assert all("2024-06-10T12:00:00" in r["messages"][0]["content"] for r in records)
    called = {c["name"] for r in records for c in r["gold_calls"]}
    assert {"get_guest", "get_booking"} <= called  # the declarative tools, in accepted data
    rejected = (run_dir / "rejected.jsonl").read_text()
    assert "free_cancellation" in rejected or "precondition" in rejected  # infeasible for real reasons

    v = eigen("verify", str(run_dir))
    assert v.returncode == 0, v.stdout + v.stderr
    sft = tmp_path / "sft.jsonl"
    e = eigen("export", str(run_dir), "--format", "openai", "-o", str(sft))
    assert e.returncode == 0, e.stdout + e.stderr
    lines = [json.loads(line) for line in sft.read_text().splitlines()]
    assert len(lines) == 12 and all(x["messages"][0]["role"] == "system" for x in lines)
    rep = eigen("report", str(run_dir))
    assert rep.returncode == 0, rep.stdout + rep.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report and (run_dir / "report.html").is_file()


def test_a_model_agent_is_told_the_clock_too():
    """The trajectory agent's system prompt (workflows/prompts/_domain.j2) states `now:`."""
    import random

    from runtime.exec.engine import Runner, RunSpec, _prompt_dirs
    from runtime.workers.base import WorkerContext
    from runtime.workers.llm.render import render

    runner = Runner(RunSpec(WORKFLOW, str(HOTEL), 0, 0.5))
    text = runner.plan.data["prompts"]["DialogSynthesis.assistant"]["text"]
    ctx = WorkerContext(runner.domain, runner.env, runner.world, random.Random(0), "DialogSynthesis",
                        "DialogSynthesis", 0, {}, {"assistant": text}, "openai")
    task = {"TaskSpec": {"objective": "x", "known": {}, "gold_calls": []}}
    prompt = render(ctx, "assistant", task, 0, _prompt_dirs(runner.spec, runner.plan))
    assert "The current time is 2024-06-10T12:00:00." in prompt
    assert "free of charge up to 48 hours before check-in" in prompt  # and the policy
