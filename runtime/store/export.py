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

Erroneous turns (`errors`, default "mask"): an assistant turn whose tool call failed by the
caller's fault (an unknown tool, arguments that are not JSON or break the schema) or was
refused by a precondition, that broke a policy check, or that a repair marked
`"trainable": false`, is a turn the model must not learn, even when the agent recovered from it
(a recovered bad call is kept in accepted records: the dialogue is right, that turn is not).
- mask: the turn stays, marked `"weight": 0` — the per-message flag of every format: OpenAI
  fine-tuning's own `weight` on assistant messages (openai), the same key inside the `messages`
  JSON (hf), and on the turn's `function_call`/`gpt` entry (sharegpt; a merged gpt turn takes
  the lowest weight). The trainer's loss mask (trainer/tokenize.py) leaves such a turn out.
  LLaMA-Factory ignores the key: export sharegpt with `drop` for it.
- drop: the erroneous tool calls and their tool results are removed (an assistant message left
  with neither calls nor text goes too), so every remaining call still has its result.
- keep: everything is trained.

A record that cannot be exported well-formed (a tool call without its result, no turn for the
model to learn) is skipped with its reason appended to `problems`; the others are written. A
damaged run directory exports nothing (`DamagedRunDir`, naming the file and line): a line that
is not a JSON object, or a record that no longer hashes to its `integrity` hash (edited after
the run; `eigen verify` says what changed). A torn last line (a run that was killed while
writing it) was never committed: it is skipped with a note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .verify import INSTANCES, DamagedRunDir, open_run_dir, read_lines, record_problem

FORMATS = ("openai", "hf", "sharegpt")
ROLES = ("agent", "user")
ERRORS = ("mask", "drop", "keep")
START_CUE = "(The conversation begins.)"
WEIGHT = "weight"  # the per-message training flag: 0 = do not learn this turn
# failed calls that are the caller's fault, or refused by a precondition: never learned
UNTRAINED_ERRORS = ("unknown_tool", "bad_json", "schema", "precondition")


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
            out.append(_weighted(_assistant(m.get("content"), m.get("tool_calls")), m))
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


def user_view(record: dict, messages: list[dict] | None = None) -> list[dict]:
    """The user simulator's messages, role-flipped (see the module docstring); `messages`
    instead of the record's own (with_errors' result)."""
    out: list[dict] = [{"role": "system", "content": user_system_prompt(record)}]
    for m in _messages(record.get("messages") if messages is None else messages):
        role, side = m.get("role"), m.get("side")
        if side == "user":
            if role == "user":
                out.append(_weighted(_assistant(m.get("content"), m.get("tool_calls")), m))
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


def _weighted(msg: dict, source: dict) -> dict:
    if source.get(WEIGHT) == 0:
        msg[WEIGHT] = 0
    return msg


def untrained_calls(record: dict) -> set[int]:
    """Positions (0-based, over every tool call of the messages in order, both sides) of the
    calls that must not be learned: failed by the caller's fault or refused by a precondition
    (UNTRAINED_ERRORS), or that broke a policy check. The record's `calls` say it (they are
    derived from the messages, and `eigen verify` checks that); a record without them is read
    from its tool messages' wording."""
    from runtime.env.rules import error_category

    messages = _messages(record.get("messages"))
    calls = record.get("calls") if isinstance(record.get("calls"), list) else []
    tool_calls = [tc for m in messages for tc in (m.get("tool_calls") or []) if isinstance(tc, dict)]
    if len(calls) != len(tool_calls) or not all(isinstance(c, dict) for c in calls):
        results: dict[str, dict] = {}
        for m in messages:
            if m.get("role") == "tool" and isinstance(m.get("tool_call_id"), str):
                results.setdefault(m["tool_call_id"], m)
        calls = []
        for tc in tool_calls:
            result = results.get(tc.get("id"), {})
            text = result.get("content") if isinstance(result.get("content"), str) else ""
            name = str((tc.get("function") or {}).get("name") or "")
            failed = text.startswith("Error: ")
            calls.append({"ok": not failed, "error": (result.get("error") or error_category(text, name, None))
                          if failed else None, "violations": []})
    return {i for i, c in enumerate(calls)
            if (not c.get("ok") and c.get("error") in UNTRAINED_ERRORS) or c.get("violations")}


def with_errors(record: dict, errors: str = "mask") -> list[dict]:
    """The record's messages with its erroneous turns (untrained_calls, and assistant messages
    a repair marked `"trainable": false`) marked `weight: 0` (mask) or removed with their tool
    results (drop); unchanged for keep. See the module docstring."""
    if errors not in ERRORS:
        raise ExportError(f"unknown errors mode {errors!r} (one of {', '.join(ERRORS)})")
    messages = _messages(record.get("messages"))
    if errors == "keep":
        return messages
    bad = untrained_calls(record)
    out: list[dict] = []
    dropped: list[str] = []  # ids of dropped calls whose results are still to come
    position = 0
    for m in messages:
        if m.get("role") == "tool" and m.get("tool_call_id") in dropped:
            dropped.remove(m["tool_call_id"])
            continue
        calls = [tc for tc in (m.get("tool_calls") or []) if isinstance(tc, dict)]
        wrong = {position + j for j in range(len(calls))} & bad
        marked = m.get("trainable") is False and m.get("role") == "assistant"
        position += len(calls)
        if not wrong and not marked:
            out.append(m)
        elif errors == "mask":
            out.append({**m, WEIGHT: 0})
        else:
            gone = [tc for j, tc in enumerate(calls) if marked or position - len(calls) + j in bad]
            dropped += [tc.get("id") for tc in gone]
            kept = [tc for tc in calls if tc not in gone]
            text = m.get("content")
            if kept or (isinstance(text, str) and text.strip() and not marked):
                out.append({**m, "tool_calls": kept} if kept else {k: v for k, v in m.items() if k != "tool_calls"})
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


def view_of(record: dict, role: str, errors: str = "mask") -> tuple[list[dict], list[dict]]:
    """(messages, tools) of one record in one view, its erroneous turns handled as `errors`
    says, checked; raises _Skip."""
    raw = with_errors(record, errors)
    if role == "user":
        messages, tools = user_view(record, raw), _tools(record.get("user_tools"))
    else:
        messages, tools = agent_view(raw), _tools(record.get("tools"))
    problems = link_problems(messages)
    if problems:
        raise _Skip(problems[0])
    if not any(m["role"] == "assistant" and m.get(WEIGHT) != 0 for m in messages):
        raise _Skip("no assistant turn to learn from")
    return messages, tools


def untrained_turns(messages: list[dict]) -> int:
    return sum(1 for m in messages if m.get(WEIGHT) == 0)


def to_sharegpt(messages: list[dict], tools: list[dict]) -> dict:
    """One openai-view dialog in LLaMA-Factory's sharegpt-with-tools layout."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns: list[list[Any]] = []  # [from, value, weight]
    for i, m in enumerate(messages):
        weight = 0 if m.get(WEIGHT) == 0 else 1
        if m["role"] == "user":
            turns.append(["human", m["content"], 1])
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
                                                          ensure_ascii=False), weight])
                turns.append(["observation", results[c["id"]], 1])
        elif m["role"] == "assistant":
            turns.append(["gpt", m["content"], weight])
    odd, even = ("human", "observation"), ("gpt", "function_call")
    merged: list[list[Any]] = []
    for tag, value, weight in turns:
        if merged and merged[-1][0] == tag and tag in ("human", "gpt"):
            merged[-1][1] += "\n\n" + value
            merged[-1][2] = min(merged[-1][2], weight)  # never learn a wrong turn merged into a right one
        elif merged and (merged[-1][0] in odd) == (tag in odd):
            raise _Skip(f"{merged[-1][0]} followed by {tag}: cannot alternate in sharegpt")
        else:
            merged.append([tag, value, weight])
    if merged and merged[0][0] in even:
        merged.insert(0, ["human", START_CUE, 1])
    while merged and merged[-1][0] in odd:
        merged.pop()
    if not merged:
        raise _Skip("no model turn left in sharegpt form")
    return {"conversations": [{"from": t, "value": v, **({WEIGHT: 0} if w == 0 else {})} for t, v, w in merged],
            "system": system, "tools": json.dumps([t["function"] for t in tools], ensure_ascii=False)}


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
               problems: list[str] | None = None, errors: str = "mask", stats: dict | None = None) -> int:
    """Write the accepted instances of `run_dir` to `out`; the number of records written.
    Skipped records (and unreadable lines) are described in `problems` when given; `stats`
    gets `untrained` (turns marked weight 0) and `dropped` (tool calls removed)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if role not in ROLES:
        raise ExportError(f"unknown role {role!r} (agent or user)")
    if errors not in ERRORS:
        raise ExportError(f"unknown errors mode {errors!r} (one of {', '.join(ERRORS)})")
    stats = stats if stats is not None else {}
    stats.update(untrained=0, dropped=0)
    path, _ = open_run_dir(run_dir)
    problems = problems if problems is not None else []
    rows = []
    for line in read_lines(path / INSTANCES):
        if line.torn:
            problems.append(f"line {line.number}: {line.error}")
            continue
        problem = line.error if line.record is None else record_problem(line.record, accepted=True)
        if problem:
            raise DamagedRunDir(f"{path / INSTANCES}:{line.number}: {problem}; the run directory is damaged, "
                                "nothing exported")
        rec = line.record
        try:
            messages, tools = view_of(rec, role, errors)
            stats["untrained"] += untrained_turns(messages)
            if errors == "drop":
                stats["dropped"] += len(untrained_calls(rec))
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
