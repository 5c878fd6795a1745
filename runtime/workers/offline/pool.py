"""Offline RandomPool: scenario seeds (persona, difficulty, and the domain's intent + context).

Tone, expertise, constraints and difficulty are domain-independent and sampled here; which
user, order or reservation a scenario is about is the domain's knowledge, asked of its
`offline.seed` recipe. The persona is the account holder the recipe picked: their real name,
found in the world from the context's ids (`holder_name`). A context may name someone else
calling for the holder (`"caller": {"name": ..., "relation": ...}`): then the persona is that
person, and a constraint says for whom they call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import WorkerContext
from .recipes import recipe

FIRST_NAMES = ("Mia", "Noah", "Aisha", "Lucas", "Sofia", "Yusuf", "Emma", "Hiro", "Olivia",
               "Mateo", "Priya", "Ethan", "Chloe", "Omar", "Lena", "Ivan", "Zara", "Kenji")
TONES = ("polite", "terse", "impatient", "friendly", "anxious", "chatty", "formal")
EXPERTISE = ("novice", "intermediate", "expert")
# third person: the persona is described; the user's instructions turn them to "you"
CONSTRAINTS = ("is in a hurry", "prefers short answers", "wants every change double-checked",
               "does not remember ids by heart", "shares details only when asked",
               "is on a mobile phone", "has been transferred twice already")

# level → (weight, tool-call target range, branching range, ambiguity range)
LEVELS = {"easy": (0.4, (2, 3), (0, 0), (0.0, 0.3)),
          "medium": (0.4, (3, 4), (0, 1), (0.2, 0.6)),
          "hard": (0.2, (5, 7), (1, 2), (0.5, 0.9))}
_HOLDER_KEYS = ("user_id", "customer_id", "account_id", "owner_id", "src")  # looked up first


class OfflineRandomPool:
    kind = "RandomPool"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        rng = ctx.rng
        fallback = rng.choice(FIRST_NAMES)  # a world without names (always drawn: stable streams)
        persona = {
            "name": fallback,
            "tone": rng.choice(TONES),
            "expertise": rng.choice(EXPERTISE),
            "constraints": sorted(rng.sample(CONSTRAINTS, rng.randint(0, 2))),
        }
        level = rng.choices(list(LEVELS), weights=[v[0] for v in LEVELS.values()])[0]
        _, calls, branching, ambiguity = LEVELS[level]
        write_params = sorted({p for t in ctx.domain.tools.values() if t.kind == "write"
                               for p in t.params})
        difficulty = {
            "level": level,
            "tool_calls": rng.randint(*calls),
            "branching": rng.randint(*branching),
            "ambiguity": round(rng.uniform(*ambiguity), 2),
            "error_prone": sorted(rng.sample(write_params, min(len(write_params),
                                                              rng.randint(0, 2)))),
        }
        picked = recipe(ctx.domain, "seed")(rng, ctx.world, difficulty)
        context = dict(picked.get("context") or {})
        holder = holder_name(ctx.world.db, context)
        caller = context.get("caller")
        if isinstance(caller, Mapping) and isinstance(caller.get("name"), str):
            persona["name"] = caller["name"]
            relation = f"your {caller['relation']} " if isinstance(caller.get("relation"), str) else ""
            persona["constraints"] = sorted(persona["constraints"] + [
                f"is calling on behalf of {relation}{holder or 'the account holder'}"])
        elif holder:
            persona["name"] = holder
        return {"ScenarioSeed": {"persona": persona, "context": context,
                                 "difficulty": difficulty, "intent": str(picked["intent"])}}


def holder_name(db: Any, context: Mapping) -> str | None:
    """The real name of the person a scenario is about: the first record that a context id
    finds in the world (a dict collection keyed by it, or a list entry whose same-named field
    holds it) and that carries a name ({first_name, last_name}, `name`, `full_name`, or an
    `owner`)."""
    keys = sorted(context, key=lambda k: (k not in _HOLDER_KEYS, list(context).index(k)))
    for key in keys:
        value = context[key]
        if not isinstance(value, str) or not isinstance(db, Mapping):
            continue
        for collection in db.values():
            record = collection.get(value) if isinstance(collection, Mapping) else next(
                (r for r in collection if isinstance(r, Mapping) and r.get(key) == value), None) \
                if isinstance(collection, list) else None
            name = _name_of(record)
            if name:
                return name
    return None


def _name_of(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return None
    for holder in (record, record.get("name")):
        if isinstance(holder, Mapping) and isinstance(holder.get("first_name"), str):
            return " ".join(str(holder[k]) for k in ("first_name", "last_name") if holder.get(k))
    for key in ("full_name", "name", "owner"):
        if isinstance(record.get(key), str) and record[key].strip():
            name = record[key].strip()
            return name[:1].upper() + name[1:]
    return None
