"""The gold path as the offline dialogue walks it: one Step per gold call, with the known
facts (TaskSpec.known) its arguments come from, so the agent knows what to ask for first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.workers.base import WorkerError


@dataclass
class Step:
    """One gold call, with the known keys (param → key) the user must tell first."""

    index: int
    name: str
    side: str
    kind: str
    arguments: dict
    keys: dict


def gold_list(task: Mapping) -> list[Mapping]:
    gold = task.get("gold_calls")
    if not isinstance(gold, list):
        raise WorkerError("TaskSpec.gold_calls must be a list of {name, arguments, side}")
    for i, c in enumerate(gold):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise WorkerError(f"TaskSpec.gold_calls[{i}] is not a call {{name, arguments, side}}: {c!r}")
        if c.get("arguments") is not None and not isinstance(c["arguments"], Mapping):
            raise WorkerError(f"TaskSpec.gold_calls[{i}].arguments must be an object: {c['arguments']!r}")
    return gold


def resolve_known(task: Mapping) -> tuple[dict, dict, dict]:
    """(known, alternatives by known key, param → known key). An alternative names a known
    key, or a parameter of the gold path: then it applies to the known key holding the same
    value, or to the parameter itself, which the user is asked for like a known fact. One
    nested in a value (a flight's date) is dropped: no call argument can carry it alone."""
    known = mapping(task, "known")
    params = {p: v for c in gold_list(task) if c.get("side", "agent") != "user"
              for p, v in (c.get("arguments") or {}).items()}
    alt, alias = {}, {}
    for k, first in mapping(task, "alternatives").items():
        key = k if k in known else None
        if key is None and k in params:
            v = params[k]
            key = next((j for j, kv in known.items() if kv == v and type(kv) is type(v)), None)
            if key is None:
                key, known[k] = k, v
            else:
                alias[k] = key
        if key is not None and first != known[key]:
            alt[key] = first
    return known, alt, alias


def plan_steps(domain: Any, task: Mapping, known: Mapping, alias: Mapping) -> list[Step]:
    """The gold calls with, for each, the known keys its arguments come from: a parameter of
    that name (or alias), else a known id-like string of equal value."""
    steps = []
    for i, c in enumerate(gold_list(task)):
        side = "user" if c.get("side") == "user" else "agent"
        args = dict(c.get("arguments") or {})
        spec = ((domain.user_tools if side == "user" else domain.tools) or {}).get(c["name"])
        keys = {}
        for p, v in args.items():
            k = p if p in known else alias.get(p)
            if k is not None and known[k] == v:
                keys[p] = k
            elif (isinstance(v, str) and len(v) >= 3) or (isinstance(v, (list, dict)) and v):
                # (small numbers match too much by chance; a list of passengers or payments does not)
                k = next((k for k, kv in known.items() if kv == v), None)
                if k is not None:
                    keys[p] = k
        steps.append(Step(i, c["name"], side, spec.kind if spec else "unknown", args, keys))
    return steps


def calculator(domain: Any) -> str | None:
    """The domain's agent-side calculator: a generic tool whose one parameter is `expression`."""
    return next((n for n, t in (domain.tools or {}).items()
                 if t.kind == "generic" and list(t.params) == ["expression"]), None)


def mapping(task: Mapping, key: str) -> dict:
    value = task.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WorkerError(f"TaskSpec.{key} must be an object, got {type(value).__name__}")
    return dict(value)
