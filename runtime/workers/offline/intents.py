"""The intent table every domain's offline recipes are built on (docs/CONTRACTS.md §7).

A domain's `scenarios.py` lists its intents as `name → (weight, seed picker, planner)` and
delegates its `seed` and `task` functions here: picking an intent the world can offer, and
turning a planner's failure on an unfitting context into one clear `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# intent → (weight, seed picker(rng, world, difficulty) -> context | None,
#           planner(rng, world, context, difficulty) -> plan)
Intents = Mapping[str, tuple[float, Callable, Callable]]

DEFAULT_DIFFICULTY = {"level": "easy", "tool_calls": 0, "error_prone": []}


def pick_intent(rng: Any, world: Any, difficulty: dict, intents: Intents, nothing: str) -> dict:
    """An intent by weight, among those whose seed picker finds a context in this world;
    `nothing` says why no task can be built when none does."""
    names = list(intents)
    while names:
        name = rng.choices(names, weights=[intents[n][0] for n in names])[0]
        context = intents[name][1](rng, world, difficulty)
        if context is not None:
            return {"intent": name, "context": context}
        names.remove(name)
    raise ValueError(nothing)


def plan_intent(rng: Any, world: Any, seed: dict, intents: Intents, domain: str,
                spell_out: bool = True) -> dict:
    """The planner's plan for the scenario `seed`, with `alternatives` and `say` always
    present; with `spell_out`, error-prone values of agent writes become `must` items, so the
    dialogue gets them exactly."""
    intent = seed.get("intent")
    if intent not in intents:
        raise ValueError(f"unknown {domain} intent {intent!r}; known: {', '.join(intents)}")
    diff = DEFAULT_DIFFICULTY | dict(seed.get("difficulty") or {})
    try:
        plan = intents[intent][2](rng, world, dict(seed.get("context") or {}), diff)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"the {intent} context {seed.get('context')!r} does not fit this world: "
                         f"{type(exc).__name__}: {exc}") from None
    plan["alternatives"] = {k: v for k, v in (plan.get("alternatives") or {}).items() if v is not None}
    plan.setdefault("say", {})
    if spell_out:
        tools = getattr(world.domain, "tools", None) or {}
        for param in diff.get("error_prone") or []:
            for call in plan["gold_calls"]:
                if call.get("side", "agent") == "agent" and param in call["arguments"] \
                        and getattr(tools.get(call["name"]), "kind", None) == "write":
                    plan["must"].append(f"{call['name']} uses {param} = {call['arguments'][param]!r}")
    return plan


def gold_call(name: str, side: str = "agent", **arguments: Any) -> dict:
    """One planned call, in the TaskSpec.gold_calls shape."""
    return {"name": name, "arguments": arguments, "side": side}


def pad_reads(calls: list[dict], extras: list[dict], diff: dict, writes: list[dict]) -> list[dict]:
    """Reads first, then extra reads up to the difficulty's tool-call target, then writes."""
    target = int(diff.get("tool_calls") or 0)
    out = list(calls)
    for extra in extras:
        if len(out) + len(writes) >= target:
            break
        if extra not in out:
            out.append(extra)
    return out + writes
