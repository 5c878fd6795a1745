"""Phase 1: K prompt sets, each conditioned on summaries of the sets before it.

A set's *focus* is a few directives added to the prompts that shape tasks and users
(RandomPool, UserIntent, the user simulator). The offline diversifier picks, axis by axis,
the value the earlier sets' summaries cover least (ties: a seeded rotation), so K sets spread
over tones, expertise, difficulty and task formulations; the model diversifier shows the
model those summaries and asks for a different focus, falling back to the offline choice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

AXIS_VALUES: dict[str, tuple[str, ...]] = {
    "tone": ("polite", "terse", "impatient", "friendly", "anxious", "chatty", "formal"),
    "expertise": ("novice", "intermediate", "expert"),
    "difficulty": ("easy", "medium", "hard"),
    "formulation": (
        "a look-up before the change: the user does not know the ids and the agent must find them",
        "a preference change halfway through the dialogue",
        "an ambiguous opening that needs a clarifying question",
        "a request the policy forbids, where the right outcome is a polite refusal",
        "two related changes in one dialogue",
        "a user who gives a wrong detail first and corrects it when the agent checks",
    ),
}
DIRECTIVE = {
    "tone": "Users of this set sound {v}.",
    "expertise": "Users of this set are {v} with the service.",
    "difficulty": "Prefer {v} tasks.",
    "formulation": "Task formulation to cover: {v}.",
}
FOCUS_KEYS = ("RandomPool.prompt", "UserIntent.prompt", "DialogSynthesis.user")


def offline_focus(k: int, earlier: Sequence[Sequence[str]], seed: int) -> list[str]:
    """The focus of set k given the earlier sets' focus lines (their summaries)."""
    rng = random.Random(f"eigen:diversify:{seed}:{k}")
    text = "\n".join(line for summary in earlier for line in summary)
    out = []
    for axis, values in AXIS_VALUES.items():
        counts = [text.count(DIRECTIVE[axis].format(v=v)) for v in values]
        least = min(counts)
        choices = [v for v, c in zip(values, counts) if c == least]
        out.append(DIRECTIVE[axis].format(v=choices[rng.randrange(len(choices))]))
    return out


def model_focus(ask: Any, k: int, earlier: Sequence[Sequence[str]], seed: int, domain: str) -> tuple[list[str], str]:
    """(focus lines, author) from the model, or the offline choice when its answer is unusable."""
    shown = "\n".join(f"Set {i}: " + " ".join(s) for i, s in enumerate(earlier)) or "(none yet)"
    c = ask([{"role": "system", "content": f"You design diverse prompt sets for synthetic customer-service "
                                          f"dialogues in the {domain} domain."},
             {"role": "user", "content": f"Summaries of the prompt sets so far:\n{shown}\n\nWrite the focus of "
                                        "set " + str(k) + ": 3 to 5 short directives (user tone and expertise, "
                                        "difficulty, task formulation, edge cases) that differ from the sets "
                                        "so far. Its shape: {\"focus\": [\"...\"]}. Answer with the "
                                        "PromptSetFocus JSON object only."}])
    if c.ok:
        from runtime.workers.llm.parse import ParseError, extract_object

        try:
            focus = extract_object(c.content or "").get("focus")
        except ParseError:
            focus = None
        if isinstance(focus, list):
            lines = [" ".join(str(x).split())[:200] for x in focus if isinstance(x, str) and x.strip()][:5]
            if lines:
                return lines, "model-diversifier"
    return offline_focus(k, earlier, seed), "diversifier (model fell back)"
