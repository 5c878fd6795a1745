"""τ²-bench's grading rule on imported tasks (runtime/tau2/grade.py): the product over the
reward basis of DB match, communicate, env assertions, actions and (with a judge) nl
assertions; a task needing a judge without one is not graded, never passed; `eigen eval`'s
report leaves such tasks out of pass^k and says how many."""

from __future__ import annotations

import json

import pytest

from runtime.store.verify import INSTANCES, _Worlds, open_run_dir, read_records
from runtime.tau2.grade import JUDGE_SYSTEM, Grader, grade_trials, judge_messages, make_judge
from tests.tau2.conftest import NO_TAU2, TAU2, TELECOM_FIRST

pytestmark = pytest.mark.skipif(not TAU2.is_dir(), reason=NO_TAU2)
TELECOM_ACTION = "[service_issue]break_apn_settings|lock_sim_card_pin[PERSONA:None]"


@pytest.fixture(scope="module")
def tasks(tau2_runs) -> dict[tuple[str, str], tuple[dict, object]]:
    """(domain, τ²-bench task id) -> (record, the start environment a reader rebuilds)."""
    out = {}
    for domain, run in tau2_runs.items():
        path, manifest = open_run_dir(run)
        worlds = _Worlds(path, manifest, None)
        for record in read_records(path / INSTANCES)[0]:
            spec, digest = worlds.domain(record["domain"])
            start = worlds.record_env(spec, digest, record["initial_state"])
            out[(domain, record["tau2"]["task_id"])] = (record, start)
    return out


def say(text: str) -> dict:
    return {"role": "assistant", "content": text}


def call(name: str, arguments: dict, side: str = "agent", cid: str = "x") -> list[dict]:
    """A tool call message and its (placeholder) result; the grader replays calls itself."""
    msg = {"role": "user" if side == "user" else "assistant", "content": None, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}
    if side == "user":
        msg["side"] = "user"
    return [msg, {"role": "tool", "tool_call_id": cid, "content": "", **({"side": "user"} if side == "user" else {})}]


def test_the_gold_path_passes_everywhere(tasks):
    for (domain, tid), (record, start) in tasks.items():
        info = record["tau2"]["task"]["evaluation_criteria"].get("communicate_info") or []
        grade = Grader(record, start).grade(record["messages"] + [say("To sum up: " + ", ".join(info))])
        if (domain, tid) in (("retail", "2"), ("retail", "24")):  # nl_assertions in the basis: no judge, no grade
            assert grade.reward is None and grade.passed is None and "need a model judge" in grade.ungraded[0]
            assert grade.breakdown["DB"] == 1.0 and grade.breakdown["NL_ASSERTION"] is None
        else:
            assert grade.reward == 1.0 and grade.passed, (domain, tid, grade.failures())


def test_communicate_is_tau2s_substring_rule(tasks):
    record, start = tasks[("airline", "7")]
    grader = Grader(record, start)
    gold = record["messages"]
    assert grader.grade(gold).reward == 0.0  # the refund total is never said
    assert grader.grade(gold).failures() == ["COMMUNICATE: never said '1628'"]
    for text, met in (("The total refund is $1,628.", True), ("REFUND 16,28", True),  # commas dropped anywhere
                      ("refund of $11628.00", True),  # a substring, as in τ²-bench (our verifier says no)
                      ("The total is 1629.", False), ("", False)):
        assert grader.grade(gold + [say(text)]).passed is met, text
    # only the agent's words count
    assert not grader.grade(gold + [{"role": "user", "content": "1628"}]).passed


def test_db_and_premature_ends(tasks):
    record, start = tasks[("airline", "1")]  # the gold path only reads
    grader = Grader(record, start)
    assert grader.grade([]).passed  # doing nothing leaves the database as the gold path does
    cancel = call("cancel_reservation", {"reservation_id": "EHGLP3"})
    grade = grader.grade(cancel)
    assert grade.reward == 0.0 and grade.db_match is False and grade.breakdown["DB"] == 0.0
    cut = grader.grade([], truncated=True)
    assert cut.reward == 0.0 and "scores such a simulation 0" in cut.note


def test_env_assertions_decide_telecom_not_the_database(tasks):
    record, start = tasks[("telecom", TELECOM_FIRST)]
    grader = Grader(record, start)
    gold = record["messages"]
    assert grader.grade(gold).passed and grader.grade(gold).basis == ["ENV_ASSERTION"]
    # without the user's toggle_data, mobile data stays off: an assertion fails
    agent_only = [m for m in gold if m.get("side") != "user"]
    grade = grader.grade(agent_only)
    assert grade.reward == 0.0 and any(not a["met"] for a in grade.env_assertions)
    # the databases differ from the gold path's, but DB is not in the basis
    extra = grader.grade(gold + call("toggle_wifi_calling", {}, "user"))
    assert extra.db_match is False and extra.passed


def test_actions_follow_compare_with_tool_call(tasks):
    record, start = tasks[("telecom", TELECOM_ACTION)]  # ENV_ASSERTION and ACTION: transfer, compare_args []
    grader = Grader(record, start)
    gold = record["messages"]
    assert grader.grade(gold).basis == ["ENV_ASSERTION", "ACTION"] and grader.grade(gold).passed
    other_words = json.loads(json.dumps(gold))
    for m in other_words:
        for c in m.get("tool_calls") or []:
            if c["function"]["name"] == "transfer_to_human_agents":
                c["function"]["arguments"] = json.dumps({"summary": "something else"})
    assert grader.grade(other_words).passed  # compare_args [] compares no argument
    without = [m for m in gold if not any(c["function"]["name"] == "transfer_to_human_agents"
                                          for c in m.get("tool_calls") or [])]
    without = [m for m in without if m.get("role") != "tool" or m.get("name") != "transfer_to_human_agents"]
    grade = grader.grade(without)
    assert grade.breakdown["ACTION"] == 0.0 and grade.reward == 0.0


def test_action_arguments_are_compared_on_the_calls_own_names():
    from runtime.tau2.data import Action
    from runtime.tau2.grade import action_checks

    gold = [Action(action_id="a", name="f", arguments={"a": 1, "b": 2})]

    def met(arguments: dict, name: str = "f") -> bool:
        return action_checks(gold, call(name, arguments))[0]["met"]

    assert met({"a": 1, "b": 2}) and met({"b": 2.0, "a": 1})
    assert met({"a": 1})  # τ²-bench compares the keys the call has: a missing one is not checked
    assert not met({"a": 1, "b": 3}) and not met({"a": 1, "b": 2, "c": 0}) and not met({"a": 1, "b": 2}, "g")
    assert action_checks([Action(action_id="a", name="f", arguments={"a": 1}, compare_args=["a"])],
                         call("f", {"a": 1, "z": 9}))[0]["met"]


class _Rollout:
    def __init__(self, messages: list[dict], truncated: bool = False) -> None:
        self.messages, self.truncated = messages, truncated


def test_nl_assertions_with_a_judge_over_http(tasks):
    from tests.llm_server.server import ScriptedPolicy, serve

    record, start = tasks[("retail", "2")]
    assertions = record["tau2"]["task"]["evaluation_criteria"]["nl_assertions"]
    gold = record["messages"] + [say(", ".join(record["verifier"]["communicate"]))]
    verdict = {"results": [{"expectedOutcome": a, "reasoning": "ok", "metExpectation": True} for a in assertions]}
    no = {"results": [{"expectedOutcome": assertions[0], "reasoning": "no", "metExpectation": False}]}
    replies = [{"role": "assistant", "content": json.dumps(verdict)}, {"role": "assistant", "content": json.dumps(no)},
               {"role": "assistant", "content": "I think so."}]
    with serve(ScriptedPolicy(replies)) as srv:
        judge = make_judge("openai", "test-model", srv.base_url)
        grader = Grader(record, start)
        assert grader.grade(gold, judge=judge).reward == 1.0
        assert grader.grade(gold, judge=judge).reward == 0.0
        unread = grader.grade(gold, judge=judge)
        assert unread.reward is None and "not the results JSON" in unread.ungraded[0]
        body = srv.requests[0]["body"]
    assert body["messages"] == judge_messages(gold, assertions) and body["temperature"] == 0.0
    assert JUDGE_SYSTEM.startswith("\n        TASK\n        - You will be given")
    assert JUDGE_SYSTEM.endswith("}\n        ")
    assert body["messages"][1]["content"].endswith(f"expectedOutcomes:\n        {assertions}\n        ")


def test_eval_report_leaves_ungraded_tasks_out(tasks):
    from rich.console import Console

    from trainer.evaluate import EvalReport, print_table

    report = EvalReport("m", 2)
    for key in (("retail", "2"), ("retail", "5")):
        record, start = tasks[key]
        trials = [_Rollout(record["messages"] + [say(", ".join(record["verifier"]["communicate"]))]),
                  _Rollout(record["messages"], truncated=True)]
        entry = grade_trials(record, start, trials)
        (report.ungraded if "ungraded" in entry else report.per_task)[record["id"]] = entry
    assert set(report.per_task) == {"retail-tau2-5"} and set(report.ungraded) == {"retail-tau2-2"}
    assert report.per_task["retail-tau2-5"]["c"] == 1 and report.scores()["pass^k"][2] == 0.0
    console = Console(width=120, record=True)
    print_table(report, console)
    assert "1 τ²-bench task(s) not graded and left out of pass^k" in console.export_text()
    assert json.loads(json.dumps(report.to_json()))["ungraded"]["retail-tau2-2"]["n"] == 2
