"""Offline RandomPool: scenario seeds (persona, difficulty, and the domain's intent + context).

Persona and difficulty are domain-independent and sampled here; which user, order or
reservation a scenario is about is the domain's knowledge, asked of its `offline.seed` recipe.
"""

from __future__ import annotations

from ..base import WorkerContext
from .recipes import recipe

FIRST_NAMES = ("Mia", "Noah", "Aisha", "Lucas", "Sofia", "Yusuf", "Emma", "Hiro", "Olivia",
               "Mateo", "Priya", "Ethan", "Chloe", "Omar", "Lena", "Ivan", "Zara", "Kenji")
TONES = ("polite", "terse", "impatient", "friendly", "anxious", "chatty", "formal")
EXPERTISE = ("novice", "intermediate", "expert")
CONSTRAINTS = ("is in a hurry", "prefers short answers", "wants every change double-checked",
               "does not remember ids by heart", "shares details only when asked",
               "is on a mobile phone", "has been transferred twice already")

# level → (weight, tool-call target range, branching range, ambiguity range)
LEVELS = {"easy": (0.4, (2, 3), (0, 0), (0.0, 0.3)),
          "medium": (0.4, (3, 4), (0, 1), (0.2, 0.6)),
          "hard": (0.2, (5, 7), (1, 2), (0.5, 0.9))}


class OfflineRandomPool:
    kind = "RandomPool"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        rng = ctx.rng
        persona = {
            "name": rng.choice(FIRST_NAMES),
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
        return {"ScenarioSeed": {"persona": persona, "context": dict(picked.get("context") or {}),
                                 "difficulty": difficulty, "intent": str(picked["intent"])}}
