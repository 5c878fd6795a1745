"""What the offline agent may state: the grounding it has gathered so far.

Every id or number an agent says must have appeared before (the policy, the tool schemas, a
user message or an agent-side tool output: TrajectoryValidation's grounding check), so the
agent keeps the tokens it has seen and says nothing that is not among them.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.env.rules import is_claim, source_tokens, tokens
from runtime.env.verifier import normalise_text

from .wording import number

_BASE: dict[int, tuple[Any, dict[str, str]]] = {}  # domain → its system prompt's and schemas' tokens


class Grounds:
    """The tokens the agent has seen (normalised → raw) and the strings of its successful
    tool outputs (the entities a fault may mix up)."""

    def __init__(self, domain: Any, system: str, env: Any) -> None:
        self.seen = dict(_base(domain, system, env))
        self.outputs: list[str] = []

    def learn(self, text: str, output: bool = False) -> None:
        """A user message, or a tool result (`output`: a successful agent-side one)."""
        self.seen.update(source_tokens([text]))
        if output:
            try:
                self.outputs += [s for s in _strings(json.loads(text)) if s not in self.outputs]
            except ValueError:
                pass

    def grounded(self, text: str) -> bool:
        return all(norm in self.seen for _, _, _, norm in tokens(text) if is_claim(norm))

    def seen_number(self, x: float) -> bool:
        return normalise_text(number(x)) in self.seen


def _base(domain: Any, system: str, env: Any) -> dict[str, str]:
    """The tokens of the system prompt (the policy, the clock) and the tool schemas, which every
    dialogue of a domain may state: computed once per process and domain (tokenising them is
    most of a dialogue's cost).
    Keyed by the domain object, which the cache keeps alive (so its id is never reused)."""
    key = id(domain)
    if key not in _BASE or _BASE[key][0] is not domain:
        if len(_BASE) >= 16:
            _BASE.clear()
        schemas = json.dumps([env.tool_schemas("agent"), env.tool_schemas("user")])
        _BASE[key] = (domain, source_tokens([system, schemas]))
    return _BASE[key][1]


def _strings(value: Any) -> list[str]:
    """Every string (values and keys) in a JSON value, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
