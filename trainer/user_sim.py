"""User simulators for rollouts: who answers the policy between its turns.

    class UserSimulator(Protocol):
        def reply(self, messages, task) -> dict | None

`messages` is the conversation so far in the message format of docs/CONTRACTS.md §9 (the
agent's messages plus the user's own tool use, marked `side: "user"`); `task` is the
accepted record (its `task` holds the objective and the `known` facts). The reply is a
`user` message: `{"role": "user", "content": text}`, or a user-side tool use
`{"role": "user", "side": "user", "content": None, "tool_calls": [...]}` that the rollout
executes on the environment (`side="user"`, telecom's dual control); None ends the
conversation.

- `ScriptedUser`: deterministic, built from the record's task. It opens as the record's
  dialogue opens (the task's own words, so that a policy trained on generated dialogues is
  evaluated on the openings it learned from; a record without one: the objective and every
  known fact), states the objective when asked if it has not yet, gives the known facts
  when asked again, says yes to a confirmation question, performs the
  user-side gold calls when asked, says goodbye once the agent has answered, and ends after
  the agent's reply to the goodbye or at `max_turns`. It reads everything from `messages`,
  so one instance serves any number of conversations.
- `ModelUser`: any HF causal LM (e.g. a user model from trainer/sft.py with role "user")
  behind the same interface: it sees the user's view (runtime.store.export.user_view, roles
  flipped) and its generated turn becomes the user message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from runtime.workers.offline.phrases import BYE, goal_sentence, words

CONFIRM_REPLY = "Yes, go ahead."
BYE_TEXT = BYE["polite"][0]  # "Thanks, that's all I needed."
# A confirmation question asks for a yes (the offline agent's CONFIRM_ASK phrases and the usual ways).
_CONFIRM_ASK = re.compile(r"\b(confirm|proceed|go ahead|yes/no|reply yes|shall i)\b", re.I)
# What a user says to close a conversation (the BYE phrase banks) and what an agent says to end one.
_CLOSING = re.compile(r"\b(that's all|that's everything|bye|goodbye|thank you so much|thanks for your help)\b"
                      r"|^(thanks|finally\. thanks)\.?$", re.I)
_ANYTHING_ELSE = re.compile(r"\banything else\b", re.I)


class UserSimulator(Protocol):
    def reply(self, messages: Sequence[dict], task: Mapping) -> dict | None: ...


def _task(record: Mapping) -> Mapping:
    task = record.get("task")
    return task if isinstance(task, Mapping) else record


def user_turns(messages: Sequence[dict]) -> int:
    """User messages that talk to the agent (not the user's own tool use)."""
    return sum(1 for m in messages if m.get("role") == "user" and m.get("side") != "user")


def is_closing(text: Any) -> bool:
    return isinstance(text, str) and bool(_CLOSING.search(text.strip()))


def _fact(key: str, value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.2f}"
    elif not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    return f"My {words(key)} is {value}."


def opening(task: Mapping) -> str:
    """The first message: the objective as a wish, then every known fact."""
    goal = goal_sentence(str(task.get("objective") or ""))
    known = task.get("known") if isinstance(task.get("known"), Mapping) else {}
    return " ".join(["Hi.", goal] + [_fact(k, v) for k, v in known.items()])


def recorded_opening(record: Mapping) -> str | None:
    """What the record's user first said to the agent, or None (no dialogue recorded)."""
    for m in record.get("messages") or []:
        if isinstance(m, Mapping) and m.get("role") == "user" and m.get("side") != "user":
            content = m.get("content")
            return content if isinstance(content, str) and content.strip() else None
    return None


def pending_user_calls(record: Mapping, messages: Sequence[dict]) -> list[dict]:
    """The user-side gold calls not performed yet (performed ones are counted in order)."""
    gold = record.get("gold_calls") if isinstance(record.get("gold_calls"), list) else _task(record).get("gold_calls")
    user_side = [c for c in gold or [] if isinstance(c, Mapping) and c.get("side") == "user"]
    done = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "user" and m.get("side") == "user")
    return user_side[done:]


class ScriptedUser:
    """The deterministic user of tests and CPU benches (see the module docstring)."""

    def __init__(self, max_turns: int = 8) -> None:
        self.max_turns = max_turns

    def reply(self, messages: Sequence[dict], task: Mapping) -> dict | None:
        spec = _task(task)
        turns = user_turns(messages)
        if turns == 0:
            return {"role": "user", "content": recorded_opening(task) or opening(spec)}
        if turns >= self.max_turns:
            return None
        last = messages[-1] if messages else {}
        if last.get("role") == "tool" and last.get("side") == "user":  # report what the phone showed
            out = str(last.get("content") or "")
            return {"role": "user", "content": f"Done. It says: {out[:200]}"}
        said = [m for m in messages if m.get("role") == "user" and m.get("side") != "user"]
        if said and said[-1].get("content") == BYE_TEXT:
            return None  # the agent has had its word after the goodbye
        text = str(last.get("content") or "") if last.get("role") == "assistant" else ""
        pending = pending_user_calls(task, messages)
        if _CONFIRM_ASK.search(text) and "?" in text:
            return {"role": "user", "content": CONFIRM_REPLY}
        if pending and text and not _ANYTHING_ELSE.search(text):
            call = pending[0]
            args = call.get("arguments") or {}
            return {"role": "user", "side": "user", "content": None, "tool_calls": [{
                "id": f"user_call_{turns}", "type": "function", "function": {
                    "name": call.get("name"),
                    "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}}]}
        if text.rstrip().endswith("?") and not _ANYTHING_ELSE.search(text):
            goal = goal_sentence(str(spec.get("objective") or ""))
            if goal and not any(goal.rstrip(".") in str(m.get("content") or "") for m in said):
                return {"role": "user", "content": goal}  # a greeting opened: now the request
            known = spec.get("known") if isinstance(spec.get("known"), Mapping) else {}
            return {"role": "user", "content": " ".join(_fact(k, v) for k, v in known.items()) or BYE_TEXT}
        return {"role": "user", "content": BYE_TEXT}


class ModelUser:
    """A user simulator backed by a causal LM trained on the user's view.

    The user's view is rebuilt from `messages` (the export's `user_view`), the model
    generates the next user turn through the tokenizer's chat template, and tool calls in
    it become user-side tool use. The conversation ends at `max_turns` or after the agent
    answers a closing message of the user's."""

    def __init__(self, model: Any, tokenizer: Any, max_turns: int = 8, temperature: float = 1.0,
                 max_new_tokens: int = 128, parse: Any = None, generate: Any = None) -> None:
        """`generate` replaces HF generation (prompt ids in, generated ids out, batched as
        in rollout.run_episodes): a vLLM engine, or a scripted user model in tests."""
        from .tiny import parse_assistant

        self.model, self.tokenizer = model, tokenizer
        self.max_turns, self.temperature, self.max_new_tokens = max_turns, temperature, max_new_tokens
        self.parse = parse or parse_assistant
        self.generate = generate

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", **kwargs: Any) -> ModelUser:
        from .sft import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(path, device=device)
        model.eval()
        return cls(model, tokenizer, **kwargs)

    def reply(self, messages: Sequence[dict], task: Mapping) -> dict | None:
        from runtime.store.export import user_view

        from .rollout import generate_batch
        from .tokenize import prompt_ids

        said = [m for m in messages if m.get("role") == "user" and m.get("side") != "user"]
        if len(said) >= self.max_turns:
            return None
        if said and is_closing(said[-1].get("content")) and messages[-1].get("role") == "assistant":
            return None
        record = {"user_instructions": task.get("user_instructions") or _task(task).get("user_instructions")
                  or opening(_task(task)), "persona": task.get("persona"), "messages": list(messages)}
        try:
            view = user_view(record)
        except Exception:  # noqa: BLE001  # a view the export cannot build: end rather than crash
            return None
        tools = [t if t.get("type") == "function" else {"type": "function", "function": t}
                 for t in task.get("user_tools") or [] if isinstance(t, dict)]
        ids = prompt_ids(self.tokenizer, view, tools)
        if self.generate is not None:
            (generated,) = self.generate([ids])
        else:
            (generated,) = generate_batch(self.model, self.tokenizer, [ids], self.temperature, self.max_new_tokens)
        text = self.tokenizer.decode(generated, skip_special_tokens=False)
        message = self.parse(text)
        if message.get("tool_calls"):
            calls = [dict(c, id=f"user_call_{len(said)}_{i}") for i, c in enumerate(message["tool_calls"])]
            return {"role": "user", "side": "user", "content": message.get("content"), "tool_calls": calls}
        return {"role": "user", "content": message.get("content") or ""}
