"""`eigen export`: the accepted instances of a run directory as fine-tuning data.

Two views of each dialog (docs/CONTRACTS.md §9):

- agent (default): the trajectory agent's view. Messages marked `"side": "user"` (the user
  simulator's own tool use) are dropped, and so is the `side` key; tools = the record's
  agent-side `tools`.
- user: the user simulator's view, role-flipped for user-model SFT. The system message is the
  simulator's instructions (`user_instructions` and the persona); the user's turns become
  `assistant` turns, the agent's text turns become `user` turns, the agent's tool calls and
  results are dropped (the user never sees them), the user's own tool calls become assistant
  `tool_calls` with their `tool` results; tools = the record's `user_tools`.

Three formats, each from either view:

- openai: JSONL, one line per instance: `{"messages", "tools", "parallel_tool_calls": false}`
  (OpenAI chat fine-tuning). Messages keep only the keys that format knows.
- sharegpt: JSONL in LLaMA-Factory's sharegpt-with-tools layout: `{"conversations": [{"from":
  human|gpt|function_call|observation, "value"}], "system", "tools": <JSON text of the function
  definitions>}`. The system prompt goes in `system`. LLaMA-Factory wants human/observation and
  gpt/function_call to alternate, starting with human and ending with gpt/function_call, so:
  parallel calls become call/observation pairs in order (the data is sequential anyway,
  `parallel_tool_calls: false`), the text that accompanies a tool call is dropped, adjacent
  text turns of one speaker are joined, a conversation that the model side opens starts with
  the human turn `START_CUE`, and trailing human/observation turns are cut.
- hf: a `datasets.Dataset` saved with `save_to_disk` (a folder). Columns: `id`, `index`,
  `domain`, `intent`, `difficulty` (the level), `role` (the view), `messages` and `tools`
  (JSON text of the openai-format lists, so that every dialog fits one schema; load with
  `json.loads`).

A record that cannot be exported well-formed (a tool call without its result, no turn for the
model to learn) is skipped with its reason appended to `problems`; the others are written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .verify import INSTANCES, open_run_dir, read_lines

FORMATS = ("openai", "hf", "sharegpt")
ROLES = ("agent", "user")
START_CUE = "(The conversation begins.)"


class ExportError(ValueError):
    """An export that cannot run at all (bad format or role, no datasets library)."""


class _Skip(Exception):
    """A record that cannot be exported, with the reason."""


# ---------------------------------------------------------------- the two views


def agent_view(messages: list) -> list[dict]:
    """The agent's messages in OpenAI fine-tuning form (user-side messages dropped)."""
    out = []
    for m in _messages(messages):
        if m.get("side") == "user":
            continue
        role = m.get("role")
        if role in ("system", "user"):
            out.append({"role": role, "content": _text(m.get("content"))})
        elif role == "assistant":
            out.append(_assistant(m.get("content"), m.get("tool_calls")))
        elif role == "tool":
            out.append(_tool(m))
        else:
            raise _Skip(f"a message has unknown role {role!r}")
    return out


def user_system_prompt(record: dict) -> str:
    """The user simulator's instructions: the task's instructions, then the persona."""
    task = record.get("task") if isinstance(record.get("task"), dict) else {}
    text = record.get("user_instructions") or task.get("user_instructions")
    if not isinstance(text, str) or not text.strip():
        raise _Skip("no user_instructions for the user's system prompt")
    persona = record.get("persona") or task.get("persona")
    parts = [text.strip()]
    if isinstance(persona, dict):
        # instructions often already describe the persona: add only what they do not say
        said = text.lower()
        who = "; ".join(f"{k}: {persona[k]}" for k in ("name", "tone", "expertise")
                        if persona.get(k) and str(persona[k]).lower() not in said)
        if who:
            parts.append(f"Persona: {who}.")
        constraints = [str(c) for c in persona.get("constraints") or [] if str(c).lower() not in said]
        if constraints:
            parts.append("Constraints: " + "; ".join(constraints) + ".")
    return "\n\n".join(parts)


def user_view(record: dict) -> list[dict]:
    """The user simulator's messages, role-flipped (see the module docstring)."""
    out: list[dict] = [{"role": "system", "content": user_system_prompt(record)}]
    for m in _messages(record.get("messages")):
        role, side = m.get("role"), m.get("side")
        if side == "user":
            if role == "user":
                out.append(_assistant(m.get("content"), m.get("tool_calls")))
            elif role == "tool":
                out.append(_tool(m))
            else:
                raise _Skip(f"a user-side message has role {role!r}")
        elif role == "user":
            out.append({"role": "assistant", "content": _text(m.get("content"))})
        elif role == "assistant":
            text = m.get("content")
            if isinstance(text, str) and text.strip():  # the agent's words, never its tool calls
                out.append({"role": "user", "content": text})
        elif role not in ("system", "tool"):
            raise _Skip(f"a message has unknown role {role!r}")
    return out


def _messages(messages: Any) -> list[dict]:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _Skip("messages: missing or not a list of objects")
    return messages


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _assistant(content: Any, tool_calls: Any) -> dict:
    msg: dict[str, Any] = {"role": "assistant"}
    calls = []
    for c in tool_calls or []:
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(c.get("id"), str) or not isinstance(fn.get("name"), str):
            raise _Skip("a tool call lacks its id or function name")
        args = fn.get("arguments", "{}")
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False, sort_keys=True)
        calls.append({"id": c["id"], "type": "function", "function": {"name": fn["name"], "arguments": args}})
    if content is not None or not calls:
        msg["content"] = _text(content)
    if calls:
        msg["tool_calls"] = calls
    return msg


def _tool(m: dict) -> dict:
    if not isinstance(m.get("tool_call_id"), str):
        raise _Skip("a tool message lacks its tool_call_id")
    return {"role": "tool", "tool_call_id": m["tool_call_id"], "content": _text(m.get("content"))}


def link_problems(messages: list[dict]) -> list[str]:
    """Where tool calls and results do not pair up as OpenAI requires: every call answered
    by a tool message right after its assistant message, every tool message answering one."""
    problems, pending = [], []
    for i, m in enumerate(messages):
        if m["role"] == "tool":
            if m["tool_call_id"] in pending:
                pending.remove(m["tool_call_id"])
            else:
                problems.append(f"message {i}: tool result {m['tool_call_id']!r} answers no pending call")
            continue
        if pending:
            problems.append(f"message {i}: tool call(s) {', '.join(pending)} have no result")
            pending = []
        pending = [c["id"] for c in m.get("tool_calls") or []]
    if pending:
        problems.append(f"tool call(s) {', '.join(pending)} have no result")
    return problems


# ---------------------------------------------------------------- formats


def _tools(schemas: Any) -> list[dict]:
    """OpenAI tool schemas ({"type": "function", "function": {...}})."""
    out = []
    for t in schemas or []:
        if isinstance(t, dict):
            out.append(t if t.get("type") == "function" and isinstance(t.get("function"), dict)
                       else {"type": "function", "function": t})
    return out


def view_of(record: dict, role: str) -> tuple[list[dict], list[dict]]:
    """(messages, tools) of one record in one view, checked; raises _Skip."""
    if role == "user":
        messages, tools = user_view(record), _tools(record.get("user_tools"))
    else:
        messages, tools = agent_view(record.get("messages")), _tools(record.get("tools"))
    problems = link_problems(messages)
    if problems:
        raise _Skip(problems[0])
    if not any(m["role"] == "assistant" for m in messages):
        raise _Skip("no assistant turn to learn from")
    return messages, tools


def to_sharegpt(messages: list[dict], tools: list[dict]) -> dict:
    """One openai-view dialog in LLaMA-Factory's sharegpt-with-tools layout."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns: list[list[str]] = []  # [from, value]
    for i, m in enumerate(messages):
        if m["role"] == "user":
            turns.append(["human", m["content"]])
        elif m["role"] == "assistant" and m.get("tool_calls"):
            results = {}  # the results right after this message (ids may recur later)
            for r in messages[i + 1:]:
                if r["role"] != "tool":
                    break
                results[r["tool_call_id"]] = r["content"]
            for c in m["tool_calls"]:
                try:
                    args = json.loads(c["function"]["arguments"])
                except ValueError:
                    args = c["function"]["arguments"]
                turns.append(["function_call", json.dumps({"name": c["function"]["name"], "arguments": args},
                                                          ensure_ascii=False)])
                turns.append(["observation", results[c["id"]]])
        elif m["role"] == "assistant":
            turns.append(["gpt", m["content"]])
    odd, even = ("human", "observation"), ("gpt", "function_call")
    merged: list[list[str]] = []
    for tag, value in turns:
        if merged and merged[-1][0] == tag and tag in ("human", "gpt"):
            merged[-1][1] += "\n\n" + value
        elif merged and (merged[-1][0] in odd) == (tag in odd):
            raise _Skip(f"{merged[-1][0]} followed by {tag}: cannot alternate in sharegpt")
        else:
            merged.append([tag, value])
    if merged and merged[0][0] in even:
        merged.insert(0, ["human", START_CUE])
    while merged and merged[-1][0] in odd:
        merged.pop()
    if not merged:
        raise _Skip("no model turn left in sharegpt form")
    return {"conversations": [{"from": t, "value": v} for t, v in merged], "system": system,
            "tools": json.dumps([t["function"] for t in tools], ensure_ascii=False)}


def _intent(record: dict) -> str:
    for part in ("task", "scenario"):
        value = record.get(part)
        if isinstance(value, dict) and isinstance(value.get("intent"), str):
            return value["intent"]
    return ""


def _level(record: dict) -> str:
    for value in (record.get("difficulty"), (record.get("task") or {}).get("difficulty")):
        if isinstance(value, dict) and isinstance(value.get("level"), str):
            return value["level"]
    return ""


def export_run(run_dir: Path | str, fmt: str, role: str = "agent", out: Path | str = "export.jsonl",
               problems: list[str] | None = None) -> int:
    """Write the accepted instances of `run_dir` to `out`; the number of records written.
    Skipped records (and unreadable lines) are described in `problems` when given."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if role not in ROLES:
        raise ExportError(f"unknown role {role!r} (agent or user)")
    path, _ = open_run_dir(run_dir)
    problems = problems if problems is not None else []
    rows = []
    for line in read_lines(path / INSTANCES):
        if line.record is None:
            problems.append(f"line {line.number}: {line.error}")
            continue
        rec = line.record
        try:
            messages, tools = view_of(rec, role)
            if fmt == "openai":
                rows.append({"messages": messages, "tools": tools, "parallel_tool_calls": False})
            elif fmt == "sharegpt":
                rows.append(to_sharegpt(messages, tools))
            else:
                rows.append({"id": str(rec.get("id", "")), "index": _int(rec.get("index")),
                             "domain": str(rec.get("domain", "")), "intent": _intent(rec),
                             "difficulty": _level(rec), "role": role,
                             "messages": json.dumps(messages, ensure_ascii=False),
                             "tools": json.dumps(tools, ensure_ascii=False)})
        except _Skip as exc:
            problems.append(f"line {line.number} ({rec.get('id', '?')}): skipped: {exc}")
    out = Path(out)
    if fmt == "hf":
        _save_hf(rows, out)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


HF_COLUMNS = ("id", "index", "domain", "intent", "difficulty", "role", "messages", "tools")


def _save_hf(rows: list[dict], out: Path) -> None:
    try:
        import datasets
    except ImportError as exc:
        raise ExportError("the hf format needs the `datasets` library (pip install datasets)") from exc
    features = datasets.Features({c: datasets.Value("int64" if c == "index" else "string") for c in HF_COLUMNS})
    columns = {c: [row[c] for row in rows] for c in HF_COLUMNS}
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(out))
