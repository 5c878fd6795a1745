"""Offline UserIntent: a scenario seed becomes a task spec, planned by the domain's recipe.

The recipe plans the completion path (gold calls) on the instance's world; this worker adds
what is domain-independent: the user-simulator instructions in the τ²-bench style (who the
user is, what they want, what they know, what they keep for later) and the difficulty actually
reached.
"""

from __future__ import annotations

from ..base import WorkerContext, WorkerError
from .recipes import recipe


class OfflineUserIntent:
    kind = "UserIntent"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        seed = inputs["ScenarioSeed"]
        planned = recipe(ctx.domain, "task")(ctx.rng, ctx.world, seed)
        if not isinstance(planned, dict) or not planned.get("gold_calls"):
            raise WorkerError(f"the {seed['intent']!r} recipe planned no tool calls")
        gold = [{"name": c["name"], "arguments": dict(c.get("arguments") or {}),
                 "side": c.get("side", "agent")} for c in planned["gold_calls"]]
        difficulty = dict(seed["difficulty"], tool_calls=len(gold))
        task = {
            "intent": seed["intent"],
            "objective": str(planned["objective"]),
            "persona": seed["persona"],
            "difficulty": difficulty,
            "context": seed["context"],
            "known": dict(planned.get("known") or {}),
            "alternatives": dict(planned.get("alternatives") or {}),
            "say": dict(planned.get("say") or {}),
            "must": list(planned.get("must") or []),
            "must_not": list(planned.get("must_not") or []),
            "subgoals": list(planned.get("subgoals") or []),
            "gold_calls": gold,
            "expect_feasible": True,  # the recipe does not know; TaskValidation finds out
        }
        task["user_instructions"] = user_instructions(task)
        return {"TaskSpec": task}


def user_instructions(task: dict) -> str:
    """The user simulator's brief: persona, reason for the call, known and latent information."""
    p = task["persona"]
    lines = [f"You are {p['name']}, a {p['tone']} customer ({p['expertise']} with such services)."]
    if p["constraints"]:
        lines.append("You " + " and ".join(p["constraints"]) + ".")
    lines.append(f"Reason for your call: {task['objective']}")
    if task["known"]:
        lines.append("You know: " + "; ".join(f"{k.replace('_', ' ')}: {v}"
                                               for k, v in task["known"].items()) + ".")
    for param, first in task["alternatives"].items():
        lines.append(f"At first you ask for {param.replace('_', ' ')} {first!r}, then change "
                     "your mind before confirming.")
    if task["subgoals"]:
        lines.append("Bring up only later, if it fits: " + "; ".join(task["subgoals"]) + ".")
    if task["must_not"]:
        lines.append("You do not want the agent to " + "; ".join(task["must_not"]) + ".")
    lines.append("Confirm an action only when it matches what you want. Do not invent details.")
    return "\n".join(lines)
