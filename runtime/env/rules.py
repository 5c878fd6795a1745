"""Trajectory facts: the calls and messages of a dialogue as trajectory rules see them, the
rules' evaluation, and the grounding of what an assistant says.

    calls = calls_of(messages, domain)     # [Call{name, kind, arguments, ok, error, confirmed,
                                           #       turn, side, id, index}]
    failures = check_rules(domain, messages, initial_env, final_env)   # [RuleFailure]
    final, violations = replay_trajectory(initial_env, calls)          # policy violations
    is_confirmation("Yes, go ahead.")      # True

Conventions every backend follows when it writes `Dialog.messages` (docs/CONTRACTS.md §9):

- A `tool` message answers one tool call by `tool_call_id`; its content is the Environment's
  `ToolResult.content` verbatim. A failed call's content starts with "Error: " (that is how
  `Environment.call` words failures), so `ok` is recovered from the messages alone. The error
  *category* (`ToolResult.error`) may be written as the tool message's `error` key; without it,
  it is recovered from the Environment's wording: "unknown tool" → unknown_tool, "arguments
  of X ..." → bad_json, "invalid arguments for X:" → schema, one of the tool's `requires:`
  messages → precondition, "X raised" → crash, anything else → tool_error. A call that no tool
  message answers counts as failed with error "no_result".
- A *user turn* is a `user` message not marked `side: "user"` (the user's own tool calls,
  telecom, are marked and are not turns). `turn` of a call or message = the number of user
  turns up to it, so a call made in reply to the first user message has turn 1.
- `confirmed`: the last user turn before the call is a confirmation and no *successful* write
  was made since it (a failed write changed nothing, so its retry still rides on the same
  "yes").
- Rules see the agent's calls only (`calls`): every rule of the built-in domains is about what
  the agent does; the user's own tool calls are listed by `calls_of` with `side: "user"`.
- Per-tool `policy:` checks are judged by the Environment itself when a call is made
  (`ToolResult.violations`); a trajectory's violations are found by replaying its calls on
  a fork of its initial environment (`replay_trajectory`), never read from what a worker
  wrote, and carry the call's turn: `{tool, rule, description, turn}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eigenlang.expr import EvalError, Name, Quantifier, compile_expr

from . import errors as E
from .checks import message_template
from .state import MISSING
from .verifier import normalise_text

NO_RESULT = "no_result"  # a tool call that no tool message answers
CALL_FIELDS = ("name", "arguments", "side", "ok", "error", "turn")  # of Dialog.calls


@dataclass(frozen=True)
class RuleFailure:
    rule: str
    message: str


# ---------------------------------------------------------------- confirmations

_AFFIRM = ("yes", "yeah", "yep", "yup", "sure", "confirm", "confirmed", "i confirm", "go ahead",
           "please go ahead", "please do", "please proceed", "proceed", "do it", "ok", "okay",
           "correct", "that's correct", "that is correct", "that's right", "right",
           "absolutely", "definitely", "of course", "affirmative", "y")
# Words that turn a "yes" into something else ("yes, but ...", "actually, wait").
_NEGATE = {"no", "not", "nope", "nah", "never", "don't", "dont", "wait", "hold", "stop",
           "instead", "actually", "but", "rather", "change", "hmm"}
_WORD = re.compile(r"[a-z']+")


def is_confirmation(text: Any) -> bool:
    """An explicit yes: starts with an affirmative phrase, negates nothing, asks nothing."""
    if not isinstance(text, str) or "?" in text:
        return False
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    if not words or any(w in _NEGATE or w.endswith("n't") for w in words):
        return False
    head = " ".join(words[:3])
    return any(head == a or head.startswith(a + " ") for a in _AFFIRM)


# ---------------------------------------------------------------- calls and messages


def is_user_turn(message: Mapping) -> bool:
    return message.get("role") == "user" and message.get("side") != "user"


def message_facts(messages: Sequence[Mapping]) -> list[dict]:
    """Message{role, content, turn, side} for every message (content: text or None)."""
    out, turn = [], 0
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        if is_user_turn(m):
            turn += 1
        content = m.get("content")
        out.append({"role": m.get("role"), "content": content if isinstance(content, str) else None,
                    "turn": turn, "side": m.get("side", "agent")})
    return out


def parse_arguments(text: Any) -> dict:
    """A tool call's arguments as a dict ({} when they are not a JSON object)."""
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if isinstance(text, str) and text.strip() else {}
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def error_category(content: str, name: str, tool: Any) -> str:
    """The failure category of a failed call from the Environment's wording (see module doc)."""
    text = content.removeprefix("Error: ")
    if text.startswith(("unknown tool", "unknown user tool", "unknown side")):
        return E.UNKNOWN_TOOL
    if text.startswith(f"arguments of {name} "):
        return E.BAD_JSON
    if text.startswith(f"invalid arguments for {name}:"):
        return E.SCHEMA
    if tool is not None:
        if any(message_template(p, "error").matches(text) for p in tool.requires or ()) \
                or text.startswith("precondition could not be evaluated") \
                or text.endswith("(the check could not be compiled)"):
            return E.PRECONDITION
    if text.startswith(f"{name} raised "):
        return E.CRASH
    return E.TOOL_ERROR


def calls_of(messages: Sequence[Mapping], domain: Any) -> list[dict]:
    """Every tool call of the dialogue, agent- and user-side, in order (see module doc)."""
    results: dict[str, Mapping] = {}
    for m in messages:
        if isinstance(m, Mapping) and m.get("role") == "tool" and isinstance(m.get("tool_call_id"), str):
            results.setdefault(m["tool_call_id"], m)
    calls: list[dict] = []
    turn, confirmed_turn = 0, False
    for index, m in enumerate(messages):
        if not isinstance(m, Mapping):
            continue
        if is_user_turn(m):
            turn += 1
            confirmed_turn = is_confirmation(m.get("content"))
        tool_calls = m.get("tool_calls") if m.get("role") in ("assistant", "user") else None
        for tc in tool_calls if isinstance(tool_calls, list) else ():
            side = "user" if m.get("side") == "user" else "agent"
            fn = tc.get("function") if isinstance(tc, Mapping) else None
            fn = fn if isinstance(fn, Mapping) else {}
            name = fn.get("name") if isinstance(fn.get("name"), str) else ""
            specs = (domain.user_tools if side == "user" else domain.tools) or {}
            spec = specs.get(name)
            cid = tc.get("id") if isinstance(tc, Mapping) else None
            cid = cid if isinstance(cid, str) else None
            result = results.get(cid) if cid is not None else None
            if result is None:
                ok, error = False, NO_RESULT
            else:
                content = result.get("content") if isinstance(result.get("content"), str) else ""
                ok = not content.startswith("Error: ")
                declared = result.get("error")
                error = None if ok else (declared if declared in E.ERROR_CATEGORIES
                                         else error_category(content, name, spec))
            kind = spec.kind if spec is not None else "unknown"
            calls.append({"name": name, "kind": kind, "arguments": parse_arguments(fn.get("arguments")),
                          "ok": ok, "error": error, "confirmed": confirmed_turn and side == "agent",
                          "turn": turn, "side": side, "id": cid, "index": index})
            if side == "agent" and kind == "write" and ok:
                confirmed_turn = False  # one "yes" covers one write
    return calls


def dialog_of(messages: list, domain: Any, env: Any = None) -> dict:
    """A Dialog artifact {messages, calls, turns} for `messages` (calls and turns derived).
    With `env` (the dialogue's initial environment), each call also lists the policy
    violations it made (`violations: [{tool, rule, description, turn}]`, found by replay)."""
    calls = calls_of(messages, domain)
    entries = [{k: c[k] for k in CALL_FIELDS} for c in calls]
    if env is not None:
        found = replay_trajectory(env, calls)[1] if has_policy(domain) else []
        for position, entry in enumerate(entries, 1):
            entry["violations"] = [{k: v[k] for k in VIOLATION_FIELDS} for v in found if v["call"] == position]
    return {"messages": messages, "calls": entries,
            "turns": sum(1 for m in messages if isinstance(m, Mapping) and is_user_turn(m))}


VIOLATION_FIELDS = ("tool", "rule", "description", "turn")


def has_policy(domain: Any) -> bool:
    """Whether any tool of the domain declares `policy:` checks."""
    tools = {**(getattr(domain, "tools", None) or {}), **(getattr(domain, "user_tools", None) or {})}
    return any(getattr(t, "policy", None) for t in tools.values())


def replay_trajectory(env: Any, calls: Sequence[Mapping]) -> tuple[Any, list[dict]]:
    """Every call of a trajectory (both sides, failed ones too: a failed call changes nothing
    unless its tool keeps partial writes, as τ²-bench's do) replayed in order on a fork of
    `env`: (the environment after them, each policy violation as {tool, rule, description,
    turn, side, call}) where `call` is the call's 1-based position in `calls`."""
    fork = env.fork()
    violations = []
    for position, c in enumerate(calls, 1):
        result = fork.call(c.get("name"), c.get("arguments") or {}, c.get("side", "agent"))
        for v in result.violations:
            violations.append(dict(v.to_json(c.get("turn")), side=v.side, call=position))
    return fork, violations


def violation_text(v: Mapping) -> str:
    """One violation in words, rule first: "cancel_eligibility: agent call 3
    cancel_reservation in turn 2 broke a policy check: <what the rule asks>"."""
    where = f"{v.get('side', 'agent')} call {v['call']} " if v.get("call") else ""
    turn = f" in turn {v['turn']}" if v.get("turn") is not None else ""
    return f"{v['rule']}: {where}{v['tool']}{turn} broke a policy check: {v['description']}"


def state_diff(initial: Any, final: Any) -> list[dict]:
    """FinalState.diff: [{path: ["db", ...], before, after}] with `added`/`deleted` marking
    the absent side of an insertion or a deletion (its value is written as null)."""
    out = []
    for name in ("db", "user_db"):
        a, b = getattr(initial, name, None), getattr(final, name, None)
        if a is None or b is None:
            continue
        for ch in a.diff(b):
            entry = {"path": [name, *ch.path], "before": None if ch.before is MISSING else ch.before,
                     "after": None if ch.after is MISSING else ch.after}
            if ch.before is MISSING:
                entry["added"] = True
            if ch.after is MISSING:
                entry["deleted"] = True
            out.append(entry)
    return out


# ---------------------------------------------------------------- rules

_COMPILED: dict[str, Any] = {}  # rule text → compiled (rule and its `all` body), per process


def _compiled(rule: Any) -> tuple[Any, Any]:
    key = rule.text
    if key not in _COMPILED:
        if len(_COMPILED) > 1024:
            _COMPILED.clear()
        body = None
        e = rule.expr
        if isinstance(e, Quantifier) and e.func == "all" and isinstance(e.source, Name) \
                and e.source.id == "calls":
            body = (e.var, compile_expr(e.body))
        _COMPILED[key] = (compile_expr(e), body)
    return _COMPILED[key]


def rule_scope(domain: Any, messages: Sequence[Mapping], initial_env: Any, final_env: Any,
               calls: list[dict] | None = None) -> dict:
    """What a rule expression sees: agent calls, messages, the final and initial states."""
    calls = calls_of(messages, domain) if calls is None else calls
    scope: dict[str, Any] = {
        "calls": [c for c in calls if c["side"] == "agent"],
        "messages": message_facts(messages),
        "db": final_env.db.root, "initial_db": initial_env.db.root,
        "now": str(getattr(domain, "now", "") or ""),
    }
    if getattr(final_env, "user_db", None) is not None:
        scope["user_db"] = final_env.user_db.root
    if getattr(initial_env, "user_db", None) is not None:
        scope["initial_user_db"] = initial_env.user_db.root
    return scope


def check_rules(domain: Any, messages: Sequence[Mapping], initial_env: Any, final_env: Any) -> list[RuleFailure]:
    """Every domain rule that does not hold for this dialogue, in declaration order."""
    scope = rule_scope(domain, messages, initial_env, final_env)
    failures: list[RuleFailure] = []
    for name, rule in (getattr(domain, "rules", None) or {}).items():
        what = rule.description or rule.text
        if rule.expr is None:
            failures.append(RuleFailure(name, f"{what} (the rule could not be compiled)"))
            continue
        try:
            compiled, body = _compiled(rule)
            if compiled(scope) is True:
                continue
        except EvalError as exc:
            failures.append(RuleFailure(name, f"{what}: {exc.message}"))
            continue
        failures.append(RuleFailure(name, what + _first_offender(body, scope)))
    return failures


def _first_offender(body: Any, scope: dict) -> str:
    """For `all(c in calls: ...)`, which call breaks it, so that a reason says where."""
    if body is None:
        return ""
    var, compiled = body
    for i, call in enumerate(scope["calls"]):
        try:
            ok = compiled({**scope, var: call}) is True
        except EvalError:
            ok = False
        if not ok:
            return f" (broken by agent call {i + 1}: {call['name']} in turn {call['turn']})"
    return ""


# ---------------------------------------------------------------- grounding

# Raw tokens: numbers with thousands separators first, then words made of letters, digits
# and the characters ids use (`#W123`, `mia_li_3668`, `2024-05-20`, `a@b.com`, `12.50`).
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|[A-Za-z0-9_#@][A-Za-z0-9_#@.\-]*")
_TRIM = ".-"


def tokens(text: Any) -> list[tuple[int, int, str, str]]:
    """(start, end, raw, normalised) of every token of `text`. Normalised with the verifier's
    `normalise_text`, so "$1,100.00" in a message and `1100` in a tool output meet."""
    if not isinstance(text, str):
        return []
    out = []
    for m in _TOKEN.finditer(text):
        raw, start = m.group(0), m.start()
        stripped = raw.rstrip(_TRIM)
        lead = len(stripped) - len(stripped.lstrip(_TRIM))
        raw, start = stripped[lead:], start + lead
        if raw:
            out.append((start, start + len(raw), raw, normalise_text(raw)))
    return out


def is_claim(norm: str) -> bool:
    """A token worth checking: it has a digit and two characters at least (ids, amounts,
    dates); single digits (counts, "2 passengers") are not claims about the data."""
    return len(norm) >= 2 and any(ch.isdigit() for ch in norm)


def source_tokens(texts: Iterable[Any]) -> dict[str, str]:
    """Normalised → raw (first seen) for every token of `texts`."""
    out: dict[str, str] = {}
    for text in texts:
        for _, _, raw, norm in tokens(text):
            out.setdefault(norm, raw)
    return out


def grounding_walk(messages: Sequence[Mapping], extra_sources: Iterable[str] = ()):
    """Yield (index, known) for every agent-visible assistant message, where `known` maps the
    normalised tokens of every earlier source to their raw form: the system prompt,
    `extra_sources` (tool schemas), user turns and agent-side tool outputs. The agent never
    sees the user's own tool outputs (side "user"). `known` is live: do not keep it."""
    known = source_tokens(extra_sources)
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("side") == "user":
            continue
        role = m.get("role")
        if role == "assistant":
            yield i, known
        elif role in ("system", "user", "tool"):
            for _, _, raw, norm in tokens(m.get("content")):
                known.setdefault(norm, raw)


def grounding_report(messages: Sequence[Mapping], extra_sources: Iterable[str] = ()) -> list[tuple[int, str, str]]:
    """(message index, raw token, normalised token) of every claim an assistant message makes
    that appears in no earlier source (see `grounding_walk`)."""
    out = []
    for i, known in grounding_walk(messages, extra_sources):
        for _, _, raw, norm in tokens(messages[i].get("content")):
            if is_claim(norm) and norm not in known:
                out.append((i, raw, norm))
    return out
