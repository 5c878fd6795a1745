"""Offline UserIntent: a scenario seed becomes a task spec, planned by the domain's recipe.

The recipe plans the completion path (gold calls) on the instance's world; this worker adds
what is domain-independent: the user-simulator instructions in the τ²-bench style (who the
user is, what they want, what they know, what they keep for later) and the difficulty actually
reached.
"""

from __future__ import annotations

from ..base import WorkerContext, WorkerError
from .phrases import key_words
from .recipes import check_plan, recipe
from .wording import article, join_and, natural


class OfflineUserIntent:
    kind = "UserIntent"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        seed = inputs["ScenarioSeed"]
        planned = recipe(ctx.domain, "task")(ctx.rng, ctx.world, seed)
        if not isinstance(planned, dict) or not planned.get("gold_calls"):
            raise WorkerError(f"the {seed['intent']!r} recipe planned no tool calls")
        gold = [{"name": c["name"], "arguments": dict(c.get("arguments") or {}),
                 "side": c.get("side", "agent")} for c in planned["gold_calls"]]
        check_plan(ctx.domain, seed["intent"], gold)  # an unknown tool is the recipe's bug: a crash
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
            "inform": [str(v) for v in planned.get("inform") or []],
            "must": list(planned.get("must") or []),
            "must_not": list(planned.get("must_not") or []),
            "subgoals": list(planned.get("subgoals") or []),
            "gold_calls": gold,
            "expect_feasible": True,  # the recipe does not know; TaskValidation finds out
        }
        task["user_instructions"] = user_instructions(task)
        return {"TaskSpec": task}


def user_instructions(task: dict) -> str:
    """The user simulator's brief: persona, reason for the call, known and latent information,
    in plain sentences (no JSON: a value is said the way the user would say it)."""
    p = task["persona"]
    tone, expertise = str(p.get("tone") or "calm"), str(p.get("expertise") or "")
    familiar = EXPERTISE_WORDS.get(expertise.lower(), f"{expertise} with such services")
    lines = [f"You are {p['name']}, {article(tone)} {tone} customer, {familiar}."]
    if p.get("constraints"):
        lines.append("You " + join_and([second_person(str(c)) for c in p["constraints"]]) + ".")
    lines.append(f"Reason for your call: {task['objective']}")
    if task["known"]:
        lines.append("You know these details: " + join_and([f"{key_words(k)} {natural(v)}"
                                                            for k, v in task["known"].items()]) + ".")
    for param, first in task["alternatives"].items():
        lines.append(f"At first you ask for {key_words(param)} {natural(first)}, then change "
                     "your mind before confirming.")
    if task["subgoals"]:
        lines.append("Bring up only later, if it fits: " + "; ".join(task["subgoals"]) + ".")
    if task["must_not"]:
        lines.append("You do not want the agent to " + "; ".join(task["must_not"]) + ".")
    lines.append("Confirm an action only when it matches what you want. Do not invent details.")
    return "\n".join(lines)


EXPERTISE_WORDS = {"novice": "new to such services", "intermediate": "somewhat familiar with such services",
                   "expert": "experienced with such services"}
_SECOND = {"is": "are", "was": "were", "has": "have", "does": "do", "doesn't": "don't", "isn't": "aren't",
           "hasn't": "haven't", "wasn't": "weren't"}


def second_person(phrase: str) -> str:
    """A persona constraint ("prefers short answers", "is on a mobile phone", "does not
    remember ids") as said to "you": "prefer short answers", "are on a mobile phone"."""
    head, _, rest = phrase.strip().partition(" ")
    low = head.lower()
    if low in _SECOND:
        head = _SECOND[low]
    elif low.endswith("ies") and len(low) > 4:
        head = head[:-3] + "y"
    elif low.endswith(("sses", "shes", "ches", "xes")):
        head = head[:-2]
    elif low.endswith("s") and not low.endswith(("ss", "us")) and len(low) > 3:
        head = head[:-1]
    return (head + " " + rest).strip()
