"""No verifier checks nothing: a task whose goal is information gets `communicate` items
(TaskSpec.inform), the offline agent says them, goal_completion checks that it did, and a
run rejects an instance whose verifier an idle agent would pass (`empty_verifier`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from runtime.env.verifier import Verifier, normalise_text, said_in
from runtime.store.report import build_report
from runtime.workers.offline.trajectory import check_told
from runtime.exec.driver import RunOptions, execute, open_run
from runtime.exec.engine import RunSpec
from tests.helpers import ROOT
from tests.runtime.test_run_e2e import WORKFLOW

MINI = ROOT / "tests" / "fixtures" / "mini"


def mini_run(out: Path, domain: Path = MINI, n: int = 24) -> list[dict]:
    spec = RunSpec(WORKFLOW, str(domain), 0, 0.25)
    opts = RunOptions(out, n, 10 * n, "local", 1)
    plan, store = open_run(spec, opts)
    assert execute(spec, plan, store, opts) == "complete"
    return [json.loads(x) for x in (out / "instances.jsonl").read_text().splitlines()]


def test_values_are_said_whole():
    assert said_in("12.5", normalise_text("The balance is 12.50.")) and said_in("open", "status: open;")
    assert not said_in("12.5", "it is 112.5") and not said_in("12.5", "it is 12.55")
    assert not said_in("512", "0.512") and not said_in("open", "reopened")
    assert not said_in("A347", normalise_text("account A3478"))


def test_look_ups_must_tell_the_balance_and_status(tmp_path):
    records = mini_run(tmp_path / "run")
    looks = [r for r in records if r["scenario"]["intent"] == "check_balance"]
    assert looks
    for r in looks:
        account = r["task"]["known"]["account_id"]
        state = r["task"]["inform"]
        assert r["verifier"]["communicate"] == state and len(state) == 2
        said = " ".join(m["content"] for m in r["messages"] if m["role"] == "assistant" and m.get("content"))
        assert all(said_in(v, normalise_text(said)) for v in state), (account, state, said)
    for r in records:  # every accepted verifier fails an idle agent: it checks something
        v = Verifier.model_validate(r["verifier"])
        assert v.communicate or v.assertions
    # an agent that looked the account up but never said the balance fails the verifier
    r = looks[0]
    quiet = [m for m in r["messages"] if not (m["role"] == "assistant" and m.get("content"))]
    assert Verifier(communicate=r["verifier"]["communicate"]).check(None, None, quiet).failures == [
        f"the assistant never said {v!r}" for v in r["task"]["inform"]]
    assert check_told(quiet, r["task"]) and not check_told(r["messages"], r["task"])


def test_a_verifier_that_checks_nothing_is_rejected_and_counted(tmp_path):
    """The mini bank with the look-ups' `inform` removed (the old recipe): every look-up's
    verifier is just "nothing changed", which an idle agent passes."""
    domain = tmp_path / "mini"
    shutil.copytree(MINI, domain)
    recipes = domain / "scenarios.py"
    text = recipes.read_text()
    assert '"inform": [' in text
    recipes.write_text(text.replace('"inform": [', '"no_inform": ['))
    out = tmp_path / "run"
    records = mini_run(out, domain)
    assert records and all(r["scenario"]["intent"] != "check_balance" for r in records)
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    empty = [r for r in rejected if any(x.startswith("empty_verifier:") for x in r["reasons"])]
    assert empty and all(r["stage"] == "VerificationFunction" for r in empty)
    assert all(r["artifacts"]["TaskSpec"]["intent"] == "check_balance" for r in empty)
    report = build_report(out)
    groups = {g["reason"]: g["count"] for s in report["rejections"] for g in s["reasons"]}
    assert groups.get("empty_verifier") == len(empty)
