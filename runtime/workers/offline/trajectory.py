"""The offline TrajectoryValidation and Modify workers.

TrajectoryValidation runs the checks named in the agent's settings (default: all of
`eigenlang.catalog.VALIDATION_CHECKS`) on a dialogue and says why each one failed:

- tool_validity: every failed agent call of a caller's-fault category (unknown_tool,
  bad_json, schema) is followed by a successful call of the same tool; every call has a result;
- grounding: every id-like token or number (a token with a digit, two characters at least)
  an assistant message states appears in an earlier source: the policy, the tool schemas, a
  user turn or an agent-side tool output (`runtime.env.rules.grounding_walk`);
- goal_completion: the dialogue's calls (both sides, in order), replayed on a fresh fork of
  the initial environment, end in the same state (hash) as the gold calls replayed on another
  fork, and
  the agent told every value the task asks it to (`TaskSpec.inform`);
- realism: a system prompt, then user and assistant text alternating, tool calls answered
  right after they are made, no empty or repeated assistant messages, at least one user turn,
  and no user message pasting the user's instructions;
- compliance: every domain rule holds (`runtime.env.rules.check_rules`) and no call broke a
  tool's policy check (`runtime.env.rules.replay_trajectory`: the calls replayed on a fork).

Modify repairs what can be repaired without touching the final state (failed calls never
changed it): it drops unrecovered failed calls, puts grounded values in place of ungrounded
ones, and inserts a confirmation exchange before every unconfirmed write, then renumbers the
tool call ids. A wrong final state, or a call that broke a policy check (it ran: no rewording
undoes it), cannot be repaired: the dialogue comes back unchanged.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from eigenlang.catalog import VALIDATION_CHECKS
from runtime.env import errors as E
from runtime.env.nodes import format_path
from runtime.env.rules import (
    NO_RESULT,
    calls_of,
    check_rules,
    dialog_of,
    grounding_report,
    grounding_walk,
    is_claim,
    is_user_turn,
    replay_trajectory,
    tokens,
    violation_text,
)
from runtime.env.verifier import normalise_text
from runtime.workers.base import WorkerContext, WorkerError

from .phrases import CONFIRM, CONFIRM_ASK, tone_of
from .speech import announce

CALLER_FAULTS = (E.UNKNOWN_TOOL, E.BAD_JSON, E.SCHEMA)
MAX_REASONS = 5  # per check


def sources(env: Any) -> list[str]:
    """Grounding sources besides the messages: the tool schemas the agent was given (and
    the user's tools, which the policy describes)."""
    return [json.dumps([env.tool_schemas("agent"), env.tool_schemas("user")])]


def replay_gold(env: Any, gold: Any) -> Any:
    if not isinstance(gold, list) or not all(isinstance(c, Mapping) for c in gold):
        raise WorkerError("TaskSpec.gold_calls must be a list of {name, arguments, side}")
    fork = env.fork()
    fork.replay(gold)
    return fork


def unrecovered(calls: Sequence[Mapping]) -> list[Mapping]:
    """Agent calls that failed by the caller's fault and were never made again successfully,
    and calls that no tool message answers."""
    agent = [c for c in calls if c["side"] == "agent"]
    out = []
    for i, c in enumerate(agent):
        if c["error"] == NO_RESULT or (not c["ok"] and c["error"] in CALLER_FAULTS and not any(
                d["ok"] and d["name"] == c["name"] for d in agent[i + 1:])):
            out.append(c)
    return out


# ---------------------------------------------------------------- the checks


def _limit(reasons: list[str]) -> list[str]:
    if len(reasons) <= MAX_REASONS:
        return reasons
    return reasons[:MAX_REASONS] + [f"(+{len(reasons) - MAX_REASONS} more)"]


def check_tool_validity(messages: list, calls: list) -> list[str]:
    results = {m.get("tool_call_id"): m.get("content") for m in messages if m.get("role") == "tool"}
    out = []
    for c in unrecovered(calls):
        if c["error"] == NO_RESULT:
            out.append(f"tool_validity: call {c['id']} {c['name']} in message {c['index']} has no tool result")
        else:
            text = str(results.get(c["id"]) or "")[:160]
            out.append(f"tool_validity: call {c['id']} {c['name']} in message {c['index']} failed "
                       f"({c['error']}: {text!r}) and no later {c['name']} call succeeded")
    return out


def check_grounding(messages: list, env: Any) -> list[str]:
    return [f"grounding: {raw!r} stated in message {i} appears in no tool output or user message"
            for i, raw, _ in grounding_report(messages, sources(env))]


def check_goal(final: Any, gold: Any) -> list[str]:
    if final.hash() == gold.hash():
        return []
    diffs = []
    for name in ("db", "user_db"):
        a, b = getattr(gold, name), getattr(final, name)
        if a is not None and b is not None:
            diffs += [f"{name}.{format_path(ch.path)}" for ch in a.diff(b)]
    shown = ", ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")
    return [("goal_completion: the dialogue's calls end in another state than the gold calls; "
             f"they differ at {shown or 'the state hash'}")]


NEVER_SAID = "goal_completion: the assistant never said"


def check_told(messages: list, task: Mapping) -> list[str]:
    """The values the task asks the agent to tell (TaskSpec.inform), as the verifier's
    `communicate` will check them."""
    from runtime.env.verifier import Verifier

    inform = task.get("inform")
    told = Verifier(communicate=[str(v) for v in inform]) if isinstance(inform, list) else Verifier()
    return [f"goal_completion: {f}" for f in told.check(None, None, messages).failures]


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def check_realism(messages: list, task: Mapping) -> list[str]:
    out: list[str] = []
    if not messages or messages[0].get("role") != "system":
        out.append("realism: the dialogue does not start with the system prompt")
    pending: list[str] = []
    last_text_role = None
    said: dict[str, int] = {}
    for i, m in enumerate(messages[1:], 1):
        role = m.get("role")
        if role == "tool":
            if m.get("tool_call_id") in pending:
                pending.remove(m.get("tool_call_id"))
            else:
                out.append(f"realism: tool message {i} answers no pending tool call")
            continue
        if pending:
            out.append(f"realism: message {i} comes before the results of tool calls {pending}")
            pending = []
        if role not in ("user", "assistant"):
            out.append(f"realism: message {i} has role {role!r}")
            continue
        if m.get("tool_calls"):
            if role == "user" and m.get("side") != "user":
                out.append(f"realism: user message {i} makes tool calls but is not marked side 'user'")
            pending = [tc.get("id") for tc in m["tool_calls"] if isinstance(tc, Mapping)]
            continue
        content = m.get("content")
        if not isinstance(content, str) or not content.strip():
            out.append(f"realism: {role} message {i} is empty")
            continue
        if last_text_role is None and role != "user":
            out.append(f"realism: the assistant speaks first (message {i})")
        elif role == last_text_role:
            out.append(f"realism: two {role} messages in a row (message {i})")
        last_text_role = role
        if role == "assistant":
            key = normalise_text(content)
            if key in said:
                out.append(f"realism: assistant message {i} repeats message {said[key]}")
            said.setdefault(key, i)
    if pending:
        out.append(f"realism: tool calls {pending} have no result")
    if not any(is_user_turn(m) for m in messages):
        out.append("realism: the dialogue has no user turn")
    out += _pasted(messages, task)
    return out


def _pasted(messages: list, task: Mapping) -> list[str]:
    """The user pasting its instructions: all of them, or a long sentence of them that is not
    the objective (which the user may well say in its own first words)."""
    instructions = normalise_text(str(task.get("user_instructions") or ""))
    objective = normalise_text(str(task.get("objective") or ""))
    needles = [instructions] if len(instructions.split()) >= 5 else []
    needles += [s for s in _SENTENCE.split(instructions) if len(s.split()) >= 8 and s not in objective]
    out = []
    for i, m in enumerate(messages):
        if is_user_turn(m) and isinstance(m.get("content"), str):
            text = normalise_text(m["content"])
            if any(n in text for n in needles):
                out.append(f"realism: user message {i} pastes the user's instructions")
    return out


_ROLES = ("system", "user", "assistant", "tool")


def message_problem(messages: Any) -> str | None:
    """What makes `messages` something other than OpenAI chat messages, or None."""
    if not isinstance(messages, list):
        return "Dialog.messages is not a list"
    for i, m in enumerate(messages):
        where = f"Dialog.messages[{i}]"
        if not isinstance(m, Mapping) or m.get("role") not in _ROLES:
            return f"{where} is not a message with a role in {_ROLES}"
        if m.get("content") is not None and not isinstance(m.get("content"), str):
            return f"{where}.content is neither text nor null"
        if "side" in m and m["side"] not in ("agent", "user"):
            return f"{where}.side must be 'agent' or 'user'"
        if m["role"] == "tool" and not (isinstance(m.get("tool_call_id"), str) and isinstance(m.get("content"), str)):
            return f"{where}: a tool message needs a tool_call_id and text content"
        if "tool_calls" in m:
            tcs = m["tool_calls"]
            if m["role"] not in ("assistant", "user") or not isinstance(tcs, list):
                return f"{where}.tool_calls must be a list on an assistant (or side-user) message"
            for j, tc in enumerate(tcs):
                fn = tc.get("function") if isinstance(tc, Mapping) else None
                if not (isinstance(tc, Mapping) and isinstance(tc.get("id"), str) and isinstance(fn, Mapping)
                        and isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str)):
                    return f"{where}.tool_calls[{j}] needs an id and a function {{name, arguments: text}}"
    return None


def validate(ctx: WorkerContext, task: Mapping, dialog: Mapping, checks: Sequence[str] | None = None) -> dict:
    """A ValidationReport for a dialogue (a malformed one fails every check, with why)."""
    if not isinstance(task, Mapping) or not isinstance(dialog, Mapping):
        raise WorkerError("TrajectoryValidation needs a TaskSpec and a Dialog")
    checks = list(checks or ctx.settings.get("checks") or VALIDATION_CHECKS)
    messages = dialog.get("messages")
    problem = message_problem(messages)
    if problem is not None:
        return {"accepted": False, "checks": {c: False for c in checks},
                "reasons": [f"malformed dialogue: {problem}"], "round": int(ctx.round)}
    calls = calls_of(messages, ctx.domain)
    final, violations = replay_trajectory(ctx.env, calls)
    results: dict[str, bool] = {}
    reasons: list[str] = []
    for check in checks:
        if check == "tool_validity":
            found = check_tool_validity(messages, calls)
        elif check == "grounding":
            found = check_grounding(messages, ctx.env)
        elif check == "goal_completion":
            found = check_goal(final, replay_gold(ctx.env, task.get("gold_calls"))) + check_told(messages, task)
        elif check == "realism":
            found = check_realism(messages, task)
        elif check == "compliance":
            found = [f"compliance: {f.rule}: {f.message}"
                     for f in check_rules(ctx.domain, messages, ctx.env, final)]
            found += [f"compliance: {violation_text(v)}" for v in violations]
        else:
            found = [f"{check}: unknown check (known: {', '.join(VALIDATION_CHECKS)})"]
        results[check] = not found
        reasons += _limit(found)
    return {"accepted": all(results.values()), "checks": results, "reasons": reasons,
            "round": int(ctx.round)}


class OfflineTrajectoryValidation:
    kind = "TrajectoryValidation"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        return {"ValidationReport": validate(ctx, inputs.get("TaskSpec"), inputs.get("Dialog"))}


# ---------------------------------------------------------------- repairs


def drop_calls(messages: list, ids: set) -> list:
    """Without the tool calls `ids` and their results; a message left empty goes too."""
    out = []
    for m in messages:
        if m.get("role") == "tool" and m.get("tool_call_id") in ids:
            continue
        if m.get("tool_calls") and any(tc.get("id") in ids for tc in m["tool_calls"]):
            m = {**m, "tool_calls": [tc for tc in m["tool_calls"] if tc.get("id") not in ids]}
            if not m["tool_calls"]:
                if not (isinstance(m.get("content"), str) and m["content"].strip()):
                    continue
                del m["tool_calls"]
        out.append(m)
    return out


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _nearest(norm: str, known: Mapping[str, str]) -> str | None:
    """The grounded token closest to an ungrounded one (ties: the most recently seen)."""
    best, best_d = None, max(1, len(norm) // 3) + 1
    for cand in reversed(list(known)):
        if is_claim(cand) and abs(len(cand) - len(norm)) <= 2:
            d = _distance(norm, cand)
            if d < best_d:
                best, best_d = cand, d
    return best


def fix_grounding(messages: list, extra: list[str]) -> list:
    """Each ungrounded claim replaced by the nearest grounded token, or its sentence dropped."""
    messages = copy.deepcopy(messages)
    for i, known in grounding_walk(messages, extra):
        text = messages[i].get("content")
        if not isinstance(text, str):
            continue
        unfixable = set()
        for start, end, _, norm in reversed(tokens(text)):
            if is_claim(norm) and norm not in known:
                cand = _nearest(norm, known)
                if cand is None:
                    unfixable.add(norm)
                else:
                    text = text[:start] + known[cand] + text[end:]
        if unfixable:
            kept = [s for s in _SENTENCE.split(text) if not unfixable & {t[3] for t in tokens(s)}]
            text = " ".join(kept) or text
        messages[i] = {**messages[i], "content": text}
    return messages


def confirm_writes(messages: list, domain: Any, rng: Any, tone: str, extra: list[str], env: Any) -> list:
    """A confirmation exchange (the agent announces the write and what it will do, the user
    says yes) before each unconfirmed agent write; `env` is the dialogue's initial state."""
    messages = list(messages)
    every = calls_of(messages, domain)
    calls = [c for c in every if c["side"] == "agent" and c["kind"] == "write" and not c["confirmed"]]
    at = {}
    for c in calls:
        at.setdefault(c["index"], c)  # one exchange per message
    known_at = {i: dict(k) for i, k in grounding_walk(messages, extra) if i in at}
    for index in sorted(at, reverse=True):
        c, known = at[index], known_at.get(index, {})
        grounded = lambda text, k=known: all(n in k for _, _, _, n in tokens(text) if is_claim(n))
        before = env.fork()
        before.replay([{"name": d["name"], "arguments": d["arguments"], "side": d["side"]}
                       for d in every if d["index"] < index])
        ann = announce(domain, before, c["name"], c["arguments"], grounded)
        effects = ann.text()
        ask = CONFIRM_ASK[rng.randrange(len(CONFIRM_ASK))].format(action=ann.phrase,
                                                                 effects=effects + " " if effects else "")
        yes_bank = CONFIRM.get(tone) or CONFIRM["neutral"]
        yes = {"role": "user", "content": yes_bank[rng.randrange(len(yes_bank))]}
        prev = messages[index - 1] if index > 0 else {}
        if prev.get("role") == "assistant" and not prev.get("tool_calls") and isinstance(prev.get("content"), str):
            messages[index - 1] = {**prev, "content": prev["content"] + " " + ask}  # no two in a row
            messages.insert(index, yes)
        else:
            messages[index:index] = [{"role": "assistant", "content": ask}, yes]
    return messages


def renumber(messages: list) -> list:
    """Tool call ids call_1, call_2, ... in order of appearance, results following them."""
    mapping: dict[str, str] = {}
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = []
            for tc in m["tool_calls"]:
                new = mapping.setdefault(tc.get("id"), f"call_{len(mapping) + 1}")
                calls.append({**tc, "id": new})
            m = {**m, "tool_calls": calls}
        elif m.get("role") == "tool" and m.get("tool_call_id") in mapping:
            m = {**m, "tool_call_id": mapping[m["tool_call_id"]]}
        out.append(m)
    return out


def repair(ctx: WorkerContext, task: Mapping, dialog: Mapping, report: Mapping) -> dict:
    """The dialogue with every repairable failure of `report` repaired (see module doc)."""
    if not isinstance(dialog, Mapping) or not isinstance(report, Mapping):
        raise WorkerError("Modify needs a Dialog and a ValidationReport")
    failed = {k for k, ok in (report.get("checks") or {}).items() if not ok}
    # a value the agent misstated (an ungrounded claim) is repaired with grounding; a wrong state is not
    goal = [str(r) for r in report.get("reasons") or [] if str(r).startswith("goal_completion:")]
    wrong_state = "goal_completion" in failed and not (goal and all(r.startswith(NEVER_SAID) for r in goal))
    if not failed or wrong_state or message_problem(dialog.get("messages")) or (
            "compliance" in failed and _broke_policy(ctx, dialog["messages"])):
        return copy.deepcopy(dict(dialog))
    messages = [dict(m) for m in dialog["messages"]]
    extra = sources(ctx.env)
    if "tool_validity" in failed:
        messages = drop_calls(messages, {c["id"] for c in unrecovered(calls_of(messages, ctx.domain))})
    if "grounding" in failed:
        messages = fix_grounding(messages, extra)
    if "compliance" in failed:
        tone = tone_of((task or {}).get("persona") or {}) if isinstance(task, Mapping) else "neutral"
        messages = confirm_writes(messages, ctx.domain, ctx.rng, tone, extra, ctx.env)
    return dialog_of(renumber(messages), ctx.domain, ctx.env)


def _broke_policy(ctx: WorkerContext, messages: list) -> bool:
    """Whether a call broke a policy check: the call ran, no rewording undoes it."""
    return bool(replay_trajectory(ctx.env, calls_of(messages, ctx.domain))[1])


class OfflineModify:
    kind = "Modify"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        return {"Dialog": repair(ctx, inputs.get("TaskSpec"), inputs.get("Dialog"),
                                 inputs.get("ValidationReport"))}
