"""A run directory's accepted instances as training conversations.

`load_conversations(run_dir, role)` reads `instances.jsonl` (docs/CONTRACTS.md §10) and
turns every record into the view of one role, by the export's own code
(`runtime.store.export.view_of`): "agent" is the trajectory agent's view, "user" the user
simulator's view with roles flipped, so in both the trained turns are the `assistant` ones.
A record that cannot be viewed (broken line, tool call without a result, no turn to learn
from) is skipped and its reason returned; nothing here raises for bad data, only for a
path that is not a run directory (`RunDirError`).

`split` sends an instance to the held-out set by a hash of its id: the same instance is
held out in every run, whatever else the run contains and in whatever order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from runtime.store.export import view_of
from runtime.store.verify import INSTANCES, RunDirError, open_run_dir, read_records

ROLES = ("agent", "user")
T = TypeVar("T")

__all__ = [
    "ROLES",
    "Conversation",
    "RunDirError",
    "first_call_view",
    "first_of_each_id",
    "held_out",
    "load_conversations",
    "load_instances",
    "split",
]


@dataclass(frozen=True)
class Conversation:
    id: str
    index: int
    role: str  # the view: "agent" or "user"; the trained turns are `assistant` in both
    messages: list[dict]  # OpenAI chat messages
    tools: list[dict]  # OpenAI tool schemas of the trained side
    record: dict = field(repr=False, compare=False)  # the accepted record (task, verifier, ...)


def load_instances(run_dir: Path | str) -> tuple[list[dict], list[str]]:
    """(the accepted records of a run, 'line N: why' for the lines that do not parse)."""
    path, _ = open_run_dir(run_dir)
    return read_records(path / INSTANCES)


def load_conversations(run_dir: Path | str, role: str = "agent") -> tuple[list[Conversation], list[str]]:
    """(the run's accepted instances as conversations of `role`, in file order; problems)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    records, problems = load_instances(run_dir)
    conversations: list[Conversation] = []
    seen: set[str] = set()
    for number, record in enumerate(records, 1):
        rid = record.get("id")
        if not isinstance(rid, str) or not rid:
            problems.append(f"record {number}: no id")
            continue
        if rid in seen:
            problems.append(f"record {number} ({rid}): duplicate id")
            continue
        seen.add(rid)
        try:
            messages, tools = view_of(record, role)
        except Exception as exc:  # noqa: BLE001  # the export's reason (its _Skip) or a malformed record
            problems.append(f"record {number} ({rid}): {str(exc) or type(exc).__name__}")
            continue
        index = record.get("index")
        conversations.append(Conversation(rid, index if isinstance(index, int) else -1, role,
                                          messages, tools, record))
    return conversations, problems


def first_call_view(conversation: Conversation, in_context: bool = False,
                    through: Literal["call", "reply"] = "call") -> Conversation | None:
    """The conversation up to and including the trained side's first tool call: what the
    user said, then the call whose arguments copy it. Without the system prompt and tool
    schemas (`in_context` False) it is short and dense in copies, for a curriculum's first
    stage; with them (`in_context` True) the copy is made at the distance it has in a real
    episode, for the stage that bridges to full conversations (SFTConfig.view). `through`
    "reply" goes on past the call's result to the trained side's first words after it: the
    second copy of an episode, values from a tool's JSON into a sentence (a balance, a
    status). None when the trained side never calls a tool (or, for "reply", never speaks
    after one)."""
    messages = [m for m in conversation.messages if in_context or m.get("role") != "system"]
    end = next((i for i, m in enumerate(messages) if m.get("role") == "assistant" and m.get("tool_calls")), None)
    if end is not None and through == "reply":
        end = next((i for i, m in enumerate(messages) if i > end and m.get("role") == "assistant"
                    and not m.get("tool_calls") and m.get("content") and messages[i - 1].get("role") == "tool"), None)
    if end is None:
        return None
    return replace(conversation, messages=messages[:end + 1], tools=conversation.tools if in_context else [])


def first_of_each_id(items: Sequence[T], seen: set[str], problems: list[str], where: str) -> list[T]:
    """The items (anything with an `.id`) whose id is not in `seen` yet, which this adds;
    an id seen before (in this source or an earlier one) is left out, with where and why."""
    kept = []
    for item in items:
        if item.id in seen:
            problems.append(f"{where}: {item.id}: duplicate id")
            continue
        seen.add(item.id)
        kept.append(item)
    return kept


def held_out(instance_id: str, fraction: float, salt: str = "eigen") -> bool:
    """Whether an instance is in the held-out set: the first 8 bytes of
    sha256(salt:id), as a number in [0, 1), fall below `fraction`."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1], not {fraction}")
    digest = hashlib.sha256(f"{salt}:{instance_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < fraction


def split(conversations: Sequence[Conversation], fraction: float = 0.1,
          salt: str = "eigen") -> tuple[list[Conversation], list[Conversation]]:
    """(train, held_out), each in input order. Both views of an instance land on the same
    side, since only the id decides (a rehearsal copy's `#first_call` suffix is not part of it)."""
    train, held = [], []
    for c in conversations:
        (held if held_out(c.id.split("#", 1)[0], fraction, salt) else train).append(c)
    return train, held
