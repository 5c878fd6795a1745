"""Trajectory facts: calls and turns from messages, error categories, confirmations, rules,
and the grounding tokeniser."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from eigenlang import load_domain
from eigenlang.diagnostics import Origin, Span
from eigenlang.domain import RuleSpec
from eigenlang.expr import parse_expr
from runtime.env import Environment
from runtime.env.rules import (
    calls_of,
    check_rules,
    grounding_report,
    is_confirmation,
    message_facts,
    tokens,
)


@pytest.fixture(scope="module")
def airline():
    spec, diags = load_domain("airline")
    assert spec is not None, diags
    env = Environment.from_domain(spec, 3, size=0.1)
    db = env.db.to_json()
    res = next(r for r in db["reservations"].values()  # one the policy allows cancelling
               if _allowed(env.fork().call("cancel_reservation", {"reservation_id": r["reservation_id"]})))
    return spec, env, res


def _allowed(result) -> bool:
    return result.ok and not result.violations


class Talk:
    """Builds messages the way a backend does: tool results are the Environment's content."""

    def __init__(self, env, policy="policy"):
        self.env = env.fork()
        self.messages = [{"role": "system", "content": policy}]
        self.n = 0

    def user(self, text):
        self.messages.append({"role": "user", "content": text})

    def say(self, text):
        self.messages.append({"role": "assistant", "content": text})

    def call(self, name, args, side="agent"):
        self.n += 1
        cid = f"call_{self.n}"
        text = args if isinstance(args, str) else json.dumps(args)
        r = self.env.call(name, text, side)
        tc = {"id": cid, "type": "function", "function": {"name": name, "arguments": text}}
        mark = {"side": "user"} if side == "user" else {}
        self.messages.append({"role": "user" if side == "user" else "assistant", "content": None,
                              "tool_calls": [tc], **mark})
        self.messages.append({"role": "tool", "tool_call_id": cid, "name": name, "content": r.content, **mark})
        return r


@pytest.mark.parametrize("text", ["yes", "Yes please", "confirm", "Go ahead.", "yes, go ahead and cancel it",
                                  "Confirmed.", "OK", "That's correct.", "Yes, that's right. Please proceed.",
                                  "please do"])
def test_confirmations(text):
    assert is_confirmation(text)


@pytest.mark.parametrize("text", ["no", "No, don't.", "Yes, but wait", "Actually, make it the other one.",
                                  "My user id is mia_li_3668.", "Can you go ahead?", "yes?", "", None,
                                  "I don't want that", "Hold on, I changed my mind", "sure, but not now"])
def test_not_confirmations(text):
    assert not is_confirmation(text)


def test_calls_turns_categories_and_confirmation(airline):
    spec, env, res = airline
    t = Talk(env)
    t.user(f"I want to cancel {res['reservation_id']}.")
    t.call("get_user_details", {"user_id": res["user_id"]})
    t.call("get_reservation_details", {"reservation_id": 123})          # schema
    t.call("get_reservation_details", {"reservation_id": "NOPE00"})     # precondition
    t.call("get_reservation_detail", {"reservation_id": "NOPE00"})      # unknown tool
    t.call("get_reservation_details", "{not json")                      # bad json
    t.say("Shall I cancel it?")
    t.user("Yes, go ahead.")
    t.call("cancel_reservation", {"reservation_id": 7})                 # failed write: yes still holds
    t.call("cancel_reservation", {"reservation_id": res["reservation_id"]})
    t.call("get_reservation_details", {"reservation_id": "NOPE00"})     # a failed read
    t.say("Shall I change the passengers too?")
    t.user("Yes.")
    t.call("update_reservation_passengers", {"reservation_id": res["reservation_id"], "passengers": []})  # refused by the impl
    t.call("cancel_reservation", {"reservation_id": res["reservation_id"]})  # the "yes" is still unused
    t.call("cancel_reservation", {"reservation_id": res["reservation_id"]})  # after a successful write
    t.messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": "lost", "type": "function", "function": {"name": "calculate", "arguments": "{}"}}]})
    calls = calls_of(t.messages, spec)
    got = [(c["name"], c["ok"], c["error"], c["turn"], c["confirmed"]) for c in calls]
    assert got == [
        ("get_user_details", True, None, 1, False),
        ("get_reservation_details", False, "schema", 1, False),
        ("get_reservation_details", False, "precondition", 1, False),
        ("get_reservation_detail", False, "unknown_tool", 1, False),
        ("get_reservation_details", False, "bad_json", 1, False),
        ("cancel_reservation", False, "schema", 2, True),
        ("cancel_reservation", True, None, 2, True),
        ("get_reservation_details", False, "precondition", 2, False),
        ("update_reservation_passengers", False, "tool_error", 3, True),
        ("cancel_reservation", True, None, 3, True),  # a failed write left the "yes" unused
        ("cancel_reservation", True, None, 3, False),
        ("calculate", False, "no_result", 3, False),
    ]
    assert calls[4]["arguments"] == {} and calls[0]["kind"] == "read" and calls[6]["kind"] == "write"
    assert calls[3]["kind"] == "unknown" and all(c["side"] == "agent" for c in calls)
    facts = message_facts(t.messages)
    assert [f["turn"] for f in facts if f["role"] == "user"] == [1, 2, 3]


def test_declared_error_category_wins(airline):
    spec = airline[0]
    msgs = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "calculate", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "name": "calculate", "content": "Error: boom", "error": "crash"}]
    assert calls_of(msgs, spec)[0]["error"] == "crash"


def test_check_rules_flags_a_write_without_confirmation(airline):
    spec, env, res = airline

    def talk(confirm: bool):
        t = Talk(env)
        t.user("Please cancel my reservation.")
        t.call("get_user_details", {"user_id": res["user_id"]})
        if confirm:
            t.say("Shall I cancel it?")
            t.user("Yes, go ahead.")
        t.call("cancel_reservation", {"reservation_id": res["reservation_id"]})
        t.say("Done.")
        return t

    bad = talk(False)
    failures = check_rules(spec, bad.messages, env, bad.env)
    assert [f.rule for f in failures] == ["confirm_before_write"]
    assert "cancel_reservation" in failures[0].message  # says which call broke it
    good = talk(True)
    assert check_rules(spec, good.messages, env, good.env) == []


def test_check_rules_identify_first_and_eval_errors(airline):
    spec, env, res = airline
    t = Talk(env)
    t.user("Cancel it.")
    t.say("Sure?")
    t.user("yes")
    t.call("cancel_reservation", {"reservation_id": res["reservation_id"]})
    assert [f.rule for f in check_rules(spec, t.messages, env, t.env)] == ["identify_user_first"]

    origin = Origin("<test>", ((1, 1),))
    expr, diags = parse_expr("calls[5].ok", origin)
    assert expr is not None, diags
    rules = {"broken": RuleSpec("broken", "A rule that cannot be evaluated here.", expr, "calls[5].ok",
                                Span("<test>", 1, 1)),
             "uncompiled": RuleSpec("uncompiled", "Not compiled.", None, "???", Span("<test>", 1, 1))}
    fake = SimpleNamespace(tools=spec.tools, user_tools={}, rules=rules, now=spec.now)
    failures = check_rules(fake, t.messages, env, t.env)
    assert [f.rule for f in failures] == ["broken", "uncompiled"]
    assert "index" in failures[0].message or "range" in failures[0].message


def test_user_side_calls_are_marked_and_not_turns():
    spec, diags = load_domain("telecom")
    assert spec is not None, diags
    env = Environment.from_domain(spec, 2, size=0.1)
    c = env.db.to_json()["customers"][0]
    t = Talk(env)
    t.user("Roaming does not work.")
    t.call("get_customer_by_id", {"customer_id": c["customer_id"]})
    t.say("Please turn on roaming on your phone.")
    t.call("toggle_roaming", {}, side="user")
    t.user("Done, it is on now.")
    t.say("Shall I enable roaming on your line?")
    t.user("Yes please.")
    t.call("enable_roaming", {"customer_id": c["customer_id"], "line_id": c["line_ids"][0]})
    calls = calls_of(t.messages, spec)
    assert [(x["name"], x["side"], x["turn"], x["ok"]) for x in calls] == [
        ("get_customer_by_id", "agent", 1, True), ("toggle_roaming", "user", 1, True),
        ("enable_roaming", "agent", 3, calls[2]["ok"])]
    assert calls[1]["kind"] == "write" and calls[2]["confirmed"]
    assert check_rules(spec, t.messages, env, t.env) == []


def test_tokens_and_grounding():
    norms = [n for *_, n in tokens("Refund of $1,100.00 to ZFA04Y on 2024-05-20.")]
    assert "1100" in norms and "2024-5-20" in norms and "zfa4y" in norms
    msgs = [{"role": "system", "content": "Policy: bags cost $50."},
            {"role": "user", "content": "My id is mia_li_3668."},
            {"role": "assistant", "content": "Looking up mia_li_3668; a bag costs 50 dollars."},
            {"role": "tool", "tool_call_id": "x", "content": json.dumps({"amount": 1100.0, "id": "ZFA04Y"})},
            {"role": "tool", "tool_call_id": "y", "content": "secret 4242", "side": "user"},
            {"role": "assistant", "content": "You get $1,100 back for ZFA04Y, 2 passengers; code 4242, ZFA05Y."}]
    assert [(i, raw) for i, raw, _ in grounding_report(msgs)] == [(5, "4242"), (5, "ZFA05Y")]
