"""Optional lookups the offline agent may add to the gold path (variety the policy allows):
the same search of the other kind, the details of something a read listed, and, after a write,
another look at a record it changed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .steps import Step
from .wording import parse


def lookups(domain: Any, after: str, steps: Sequence[Step], content: str) -> list[tuple[str, dict]]:
    """Reads an agent may add after reading `after` (its output `content`): a read tool taking
    the same parameters (a one-stop search beside a direct one), or one whose parameters are
    all keys of a record in the output (a leg's flight status, an item's details)."""
    tools = {n: t for n, t in (domain.tools or {}).items() if t.kind == "read" and t.params}
    out: list[tuple[str, dict]] = []
    mine = next((s for s in steps if s.name == after and s.side == "agent"), None)
    if after in tools:
        for n, t in tools.items():
            if n != after and mine is not None and set(t.params) == set(tools[after].params):
                out.append((n, dict(mine.arguments)))
    keyed = {n: t for n, t in tools.items() if any(p == "id" or p.endswith(("_id", "_number")) for p in t.params)}
    for record in _records(parse(content)):
        for n, t in keyed.items():
            if n != after and set(t.params) <= set(record) and \
                    all(isinstance(record[p], (str, int, float)) for p in t.params):
                out.append((n, {p: record[p] for p in t.params}))
    return out


def _records(value: Any, depth: int = 0) -> list[Mapping]:
    if depth > 3:
        return []
    if isinstance(value, Mapping):
        return [value] + [r for v in value.values() for r in _records(v, depth + 1)]
    if isinstance(value, list):
        return [r for v in value[:10] for r in _records(v, depth + 1)]
    return []


def changed_reads(domain: Any, env: Any, messages: Sequence[Mapping]) -> list[tuple[str, dict]]:
    """Successful agent reads of the dialogue whose output would differ now (after a write):
    what the agent may look at again to see the change."""
    calls = {tc["id"]: tc["function"] for m in messages if m.get("role") == "assistant"
             for tc in m.get("tool_calls") or []}
    before: dict[str, tuple[str, dict, str]] = {}
    for m in messages:
        fn = calls.get(m.get("tool_call_id")) if m.get("role") == "tool" and m.get("side") != "user" else None
        tool = (domain.tools or {}).get(fn["name"]) if fn else None
        if tool is not None and tool.kind == "read" and not str(m.get("content")).startswith("Error"):
            before[fn["name"] + fn["arguments"]] = (fn["name"], json.loads(fn["arguments"]), m["content"])
    return [(name, args) for name, args, content in before.values()
            if env.fork().call(name, args).content != content]
