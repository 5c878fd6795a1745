"""What a mutation op may carry, and what an op from a model may change.

Ops come from people (`eigen mutate`) and from models (the workflow planner); both are checked
by the compiler after the edit. Two things are checked before it, here:

- **values** (`value_problem`): an op is JSON data — objects with string keys, lists, strings,
  finite numbers within 64 bits, booleans, null — nested at most MAX_DEPTH levels. Anything
  else is refused with a reason, never a RecursionError or a YAML writer's exception.
- **trust** (`model_problems`): an op whose origin is "model" may edit the flow, agents and
  settings, but it names no file and keeps the program's `domain:`. A template role of a new or
  changed agent may only name a template this program already uses; prompt *text* changes go
  through the versioned prompt store (runtime/evolve/prompts.py), where a model's words are
  appended as literal text. A model never edits a domain program. The same op from a person
  (origin "author") may name files inside the program's folder (eigenlang.paths).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

Origin = Literal["author", "model"]
ORIGINS = ("author", "model")
MAX_DEPTH = 32
_INT_LIMIT = 2**63
TEMPLATE_ROLES = ("prompt", "user", "assistant")


def value_problem(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why `value` is not JSON data an op may carry, or None. Iterative: any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return f"it is nested deeper than {limit} levels"
        if isinstance(v, Mapping):
            for k, x in v.items():
                if not isinstance(k, str):
                    return f"an object key is a {type(k).__name__}, not a string"
                stack.append((x, depth + 1))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if not -_INT_LIMIT <= v < _INT_LIMIT:
                return "an integer is out of the 64-bit range"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return "a number is not finite (NaN or infinity)"
        elif isinstance(v, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in v):
                return "a string holds an unpaired surrogate (not UTF-8 text)"
        else:
            return f"a {type(v).__name__} is not JSON data"
    return None


def file_refs(data: Any) -> dict[tuple[str, ...], Any]:
    """Where a workflow's data names files: `domain`, each agent's template roles, the judge's
    prompt; {path in the program: value}."""
    refs: dict[tuple[str, ...], Any] = {}
    if not isinstance(data, Mapping):
        return refs
    if "domain" in data:
        refs[("domain",)] = data["domain"]
    agents = data.get("agents")
    for name, agent in (agents.items() if isinstance(agents, Mapping) else ()):
        for role in TEMPLATE_ROLES:
            if isinstance(agent, Mapping) and role in agent:
                refs[("agents", str(name), role)] = agent[role]
    judge = data.get("judge")
    if isinstance(judge, Mapping) and "prompt" in judge:
        refs[("judge", "prompt")] = judge["prompt"]
    return refs


def model_problems(before: Any, after: Any) -> list[tuple[tuple[str, ...], str, str]]:
    """What an edit from a model may not do, as (where, message, hint): compare the program's
    file references before and after the edit."""
    if not (isinstance(before, Mapping) and "workflow" in before):
        return [((), "a model may not edit a domain program", "domain programs are edited by their author")]
    old, new = file_refs(before), file_refs(after)
    out = []
    if new.get(("domain",)) != old.get(("domain",)):
        out.append((("domain",), f"a model may not change the domain (to {new.get(('domain',))!r})",
                    "the domain is the program author's choice (or --domain on the command line)"))
    known = {v for k, v in old.items() if k != ("domain",) and isinstance(v, str)}
    for where, value in sorted(new.items()):
        if where != ("domain",) and not (isinstance(value, str) and value in known):
            out.append((where, f"a model may not name files: {'.'.join(where)} = {value!r} is not a "
                        "template this program uses",
                        "a model changes prompt text through the prompt store; only the author names files"))
    return out
