"""The checks of `eigen verify` on what a record *trains*: its messages, calls, tools, gold
path and verifier, each compared with what replaying it on the domain gives.

The environment is deterministic, so a record carries nothing that cannot be re-made: the
tool messages are the Environment's own outputs (`ToolResult.content` verbatim, an agent's
failed call included, with its error text), `calls` is what `runtime.env.rules.dialog_of`
derives from the messages, `tools` are the domain's schemas, and the verifier's state checks
are `verifier_from_diff` of the gold path's effect. Each function returns reasons, each
starting with the field it is about (`messages[7].content: ...`); an empty list is a pass.
"""

from __future__ import annotations

import json
from typing import Any

MAX_REASONS = 6  # per check: the first differences say enough
PREVIEW = 80


def _preview(value: Any) -> str:
    """A short one-line rendering: strings quoted, other values as JSON would show them."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    flat = " ".join(text.split())
    flat = flat if len(flat) <= PREVIEW else flat[:PREVIEW - 3] + "..."
    return repr(flat) if isinstance(value, str) else flat


def _capped(reasons: list[str]) -> list[str]:
    if len(reasons) <= MAX_REASONS:
        return reasons
    return reasons[:MAX_REASONS] + [f"... and {len(reasons) - MAX_REASONS} more like these"]


def tools_problems(record: dict, spec: Any) -> list[str]:
    """`tools` / `user_tools` (exported with the dialog) must be the domain's own schemas."""
    reasons = []
    for key, tools in (("tools", spec.tools), ("user_tools", spec.user_tools)):
        want = [t.openai_schema() for t in tools.values()]
        got = record.get(key, [] if key == "user_tools" else None)
        if got == want:
            continue
        if not isinstance(got, list):
            reasons.append(f"{key}: missing or not a list of tool schemas")
            continue
        names = [(t.get("function") or {}).get("name") if isinstance(t, dict) else None for t in got]
        diff = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
        where = f"{key}[{diff[0]}] ({names[diff[0]]})" if diff else key
        reasons.append(f"{where}: not the domain's tool schema" + ("" if diff else
                       f" ({len(got)} schemas recorded, the domain has {len(want)})"))
    return reasons


def dialog_problems(record: dict, spec: Any, env: Any, final_hash: Any) -> list[str]:
    """The dialog as trained: `calls` must be exactly the tool calls of `messages`, and every
    tool message must be the output of replaying its call, in order, on a fresh fork of the
    initial state; the replayed dialog must end in `final_state.hash`."""
    from runtime.env.rules import CALL_FIELDS, dialog_of
    from runtime.env.verifier import new_violations

    messages = record.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return ["messages: missing or not a list of objects"]
    reasons: list[str] = []
    derived = dialog_of(messages, spec, env)
    calls = record.get("calls")
    if not isinstance(calls, list):
        reasons.append("calls: missing or not a list")
    else:
        if len(calls) != len(derived["calls"]):
            reasons.append(f"calls: {len(calls)} recorded, the messages hold {len(derived['calls'])} tool calls")
        for i, (got, want) in enumerate(zip(calls, derived["calls"])):
            if not isinstance(got, dict):
                reasons.append(f"calls[{i}]: not an object")
                continue
            # the Dialog.calls fields, and whatever else the record lists that dialog_of derives
            for key in (*CALL_FIELDS, *(k for k in got if k in want and k not in CALL_FIELDS)):
                if got.get(key) != want[key]:
                    reasons.append(f"calls[{i}].{key} ({want['name']}): recorded {_preview(got.get(key))}, "
                                   f"the messages say {_preview(want[key])}")
                    break
    if record.get("turns") != derived["turns"]:
        reasons.append(f"turns: {record.get('turns')!r} recorded, the messages hold {derived['turns']} user turns")
    reasons += _validity_problems(record, derived["calls"])
    replay, dialog = _replay_messages(messages, env)
    reasons += replay
    reasons += [f"calls: policy: {v}" for v in new_violations(env, dialog)]  # checks the calls broke
    if dialog.hash() != final_hash:
        reasons.append(f"the dialog's calls replayed reach {dialog.hash()[:16]}, final_state.hash is "
                       f"{str(final_hash)[:16]}")
    return _capped(reasons)


def _validity_problems(record: dict, calls: list[dict]) -> list[str]:
    """An accepted dialog whose last validation passed `tool_validity` keeps no call that
    failed by the caller's fault (an unknown tool, bad JSON, bad arguments) unless the same
    tool later succeeded: a call of a tool that does not exist contradicts the record."""
    from runtime.workers.offline.trajectory import unrecovered

    validation = record.get("validation")
    last = validation[-1] if isinstance(validation, list) and validation else None
    checks = last.get("checks") if isinstance(last, dict) else None
    if not isinstance(checks, dict) or checks.get("tool_validity") is not True:
        return []
    bad = {id(c) for c in unrecovered(calls)}
    return [f"calls[{i}] {c['name']}: failed ({c['error']}) and was never made again successfully, "
            "though validation[-1] passed tool_validity" for i, c in enumerate(calls) if id(c) in bad]


def _replay_messages(messages: list[dict], env: Any) -> tuple[list[str], Any]:
    """Run every tool call of `messages` in order on a fork; compare each tool message with
    the result of its call (content, side, name, error category when written). Tool messages
    must answer the calls of the message right before them, as the OpenAI format (and
    `eigen export`) require."""
    dialog = env.fork()
    reasons: list[str] = []
    pending: dict[str, tuple[str, str, Any]] = {}  # call id -> (tool name, side, result)
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "tool":
            cid = m.get("tool_call_id")
            if not isinstance(cid, str) or cid not in pending:
                reasons.append(f"messages[{i}]: a tool message that answers no call of the message before it")
                continue
            name, side, result = pending.pop(cid)
            if m.get("content") != result.content:
                reasons.append(f"messages[{i}].content: the tool message of {name} says {_preview(m.get('content'))}, "
                               f"replaying the call gives {_preview(result.content)}")
            if (m.get("side") == "user") != (side == "user"):
                reasons.append(f"messages[{i}].side: the result of a {side}-side call of {name} is marked "
                               f"{m.get('side', 'agent')!r}")
            if "name" in m and m["name"] != name:
                reasons.append(f"messages[{i}].name: {_preview(m['name'])} answers a call of {name}")
            if "error" in m and m["error"] != result.error:
                reasons.append(f"messages[{i}].error: {_preview(m['error'])}, replaying gives {result.error!r}")
            continue
        for cid, (name, _, _) in pending.items():
            reasons.append(f"messages[{i}]: the call {cid} of {name} before it has no tool message")
        pending = {}
        tool_calls = m.get("tool_calls") if role in ("assistant", "user") else None
        if tool_calls is None:
            continue
        if not isinstance(tool_calls, list):
            reasons.append(f"messages[{i}].tool_calls: not a list")
            continue
        side = "user" if m.get("side") == "user" else "agent"  # as runtime.env.rules.calls_of reads it
        for j, tc in enumerate(tool_calls):
            fn = tc.get("function") if isinstance(tc, dict) else None
            if not isinstance(fn, dict) or not isinstance(tc.get("id"), str) or not isinstance(fn.get("name"), str):
                reasons.append(f"messages[{i}].tool_calls[{j}]: not a tool call {{id, function: {{name, arguments}}}}")
                continue
            if tc["id"] in pending:
                reasons.append(f"messages[{i}].tool_calls[{j}].id: {tc['id']!r} is used twice")
            pending[tc["id"]] = (fn["name"], side, dialog.call(fn["name"], fn.get("arguments"), side))
    for cid, (name, _, _) in pending.items():
        reasons.append(f"messages: the last call {cid} of {name} has no tool message")
    return reasons, dialog


def gold_problems(record: dict, env: Any, final_hash: Any) -> tuple[list[str], Any]:
    """(reasons, the state the gold path reaches). Every gold call must name a tool of the
    domain and succeed on a fresh fork, in order, and together they must reach
    `final_state.hash`; `gold_calls` must be the task's own."""
    gold = record.get("gold_calls")
    reasons: list[str] = []
    task = record.get("task")
    if isinstance(task, dict) and "gold_calls" in task and task["gold_calls"] != gold:
        reasons.append("gold_calls: differ from task.gold_calls")
    gold_env = env.fork()
    for i, call in enumerate(gold if isinstance(gold, list) else []):
        ok = (isinstance(call, dict) and isinstance(call.get("name"), str)
              and isinstance(call.get("arguments", {}), dict) and call.get("side", "agent") in ("agent", "user"))
        if not ok:
            reasons.append(f"gold_calls[{i}]: not a call {{name, arguments, side}}")
            continue
        result = gold_env.call(call["name"], call.get("arguments", {}), call.get("side", "agent"))
        if not result.ok:
            reasons.append(f"gold_calls[{i}] {call['name']}: fails on replay: {_preview(result.content)}")
    if gold_env.hash() != final_hash:
        reasons.append(f"gold calls replayed reach {gold_env.hash()[:16]}, final_state.hash is {str(final_hash)[:16]}")
    return _capped(reasons), gold_env


def verifier_problems(record: dict, env: Any, gold_env: Any, gold_ok: bool = True) -> list[str]:
    """The verifier (the reward of RL on this task) must hold the state checks that the gold
    path's effect gives, every value the task says the agent must tell, and pass on the gold
    outcome with the record's messages."""
    from runtime.env import Verifier, verifier_from_diff

    try:
        verifier = Verifier.model_validate(record.get("verifier"))
    except Exception as exc:  # noqa: BLE001  # pydantic's message, first line only
        return [f"verifier: not a valid Verifier: {str(exc).splitlines()[0]}"]
    reasons = []
    if gold_ok:
        got, want = verifier.model_dump(mode="json"), verifier_from_diff(env, gold_env).model_dump(mode="json")
        for key in ("assertions", "expected_diff"):
            if got[key] != want[key]:
                n = len(got[key]) if isinstance(got[key], list) else 0
                m = len(want[key]) if isinstance(want[key], list) else 0
                reasons.append(f"verifier.{key}: not the checks the gold path's effect gives "
                               f"({n} recorded, {m} expected)")
    task = record.get("task") if isinstance(record.get("task"), dict) else {}
    inform = task.get("inform") if isinstance(task.get("inform"), list) else []
    for value in inform:
        if str(value) not in verifier.communicate:
            reasons.append(f"verifier.communicate: lacks the task's inform value {_preview(str(value))}")
    messages = record.get("messages") if isinstance(record.get("messages"), list) else []
    verdict = verifier.check(env, gold_env, messages)
    return reasons + [f"verifier: {f}" for f in verdict.failures]
