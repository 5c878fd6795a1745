"""Hand-built run directories for the trainer tests (docs/CONTRACTS.md §10).

Short dialogs in the message format of §9: an agent that looks an order up with a tool
call and answers, and on odd instances a user who runs a tool of their own (a user-side
call, as in telecom), so both views have something to learn. Small on purpose: the
trainer tests run on a CPU in seconds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

TOOLS = [{"type": "function", "function": {
    "name": "get_order", "description": "Look an order up by its id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
USER_TOOLS = [{"type": "function", "function": {
    "name": "check_phone", "description": "Read the phone's status bar.",
    "parameters": {"type": "object", "properties": {}}}}]
STATUSES = ["pending", "delivered", "cancelled", "processed"]
NAMES = ["Mia", "Ivan", "Lucas", "Ana", "Omar", "Yuki"]


def make_record(index: int, rng: random.Random) -> dict:
    order = f"#W{rng.randrange(1000, 9999)}"
    status = rng.choice(STATUSES)
    name = rng.choice(NAMES)
    args = json.dumps({"order_id": order})
    messages = [
        {"role": "system", "content": "You are a store agent. Be brief."},
        {"role": "user", "content": f"Hi, I'm {name}. Where is my order {order}?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{index}", "type": "function", "function": {"name": "get_order", "arguments": args}}]},
        {"role": "tool", "tool_call_id": f"c{index}", "name": "get_order",
         "content": json.dumps({"order_id": order, "status": status})},
        {"role": "assistant", "content": f"Your order {order} is {status}."},
    ]
    if index % 2:  # the user checks their phone (a user-side call) before answering
        messages += [
            {"role": "user", "side": "user", "content": None, "tool_calls": [
                {"id": f"u{index}", "type": "function", "function": {"name": "check_phone", "arguments": "{}"}}]},
            {"role": "tool", "side": "user", "tool_call_id": f"u{index}", "name": "check_phone",
             "content": "signal: 4 bars"},
        ]
    messages += [{"role": "user", "content": "Thanks, bye."},
                 {"role": "assistant", "content": "Goodbye!"}]
    return {"index": index, "id": f"toy-{index:06d}", "seed": index, "domain": "toy",
            "messages": messages, "tools": TOOLS, "user_tools": USER_TOOLS if index % 2 else [],
            "user_instructions": f"You are {name}. Ask where order {order} is.",
            "persona": {"name": name, "tone": "calm"}}


def make_run(path: Path, n: int = 12, seed: int = 0, broken: bool = False) -> Path:
    """A run directory with n accepted toy instances; `broken` adds a line that is not JSON
    and a record whose tool call has no result."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    records = [make_record(i, rng) for i in range(n)]
    lines = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in records]
    if broken:
        bad = make_record(n, rng)
        del bad["messages"][3]  # the tool result of the agent's call
        lines += ["{not json", json.dumps(bad, sort_keys=True)]
    (path / "instances.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (path / "manifest.json").write_text(json.dumps({"format": 1, "domain": "toy", "n": n, "seed": seed,
                                                    "counts": {"accepted": n}}), encoding="utf-8")
    return path


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors gain nothing from threads, and two OpenMP threads on two busy cores
    slow these tests down tenfold; import this fixture into a test module to use it."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def recorded_turns(tokenizer, messages: list[dict], tools: list[dict]):
    """A `generate` that answers each prompt with the next recorded assistant turn of
    `messages`, token for token as the chat template renders it: what a model that learned
    the format (and the conversation) produces."""
    from trainer.tokenize import encode, render

    turns = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            prompt = render(tokenizer, messages[:i], tools, add_generation_prompt=True)
            body = render(tokenizer, messages[:i + 1], tools)[len(prompt):]
            turns.append(encode(tokenizer, body[:body.rindex(tokenizer.eos_token) + len(tokenizer.eos_token)]))
    return lambda prompts: [turns.pop(0) for _ in prompts]
