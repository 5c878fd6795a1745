"""What the offline agent says about tool calls: a read's findings in a sentence, the
announcement of a write (the action, its details and what it will do), and the instruction
for a step the user performs on their own device.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.env.rules import is_claim, tokens
from runtime.env.verifier import normalise_text, said_in

from .effects import Effects, effects_of, sentences
from .phrases import _OWN
from .wording import (
    action_phrase,
    cap,
    detail,
    fact,
    identity,
    join_and,
    natural,
    number,
    parse,
    person,
    salient,
    words,
)

Grounded = Callable[[str], bool]
_LEAD_VERBS = ("get", "find", "check", "search", "list", "lookup", "show", "fetch", "read")
READ_OK = ["I've pulled up {what}: {facts}.", "Here is {what}: {facts}.", "I can see {what}: {facts}."]


def subject(name: str) -> str:
    """What a read tool returns, from its name: get_flight_status → "flight status"."""
    parts = name.split("_")
    if parts and parts[0] in _LEAD_VERBS:
        parts = parts[1:]
    if "by" in parts:
        parts = parts[:parts.index("by")]
    return words("_".join(parts)) or words(name)


def read_note(name: str, args: Mapping, content: str, focus: Sequence[str], holder: str,
              pick: Callable[[Sequence[str]], str]) -> str:
    """One sentence about a successful read's output."""
    value = parse(content)
    if isinstance(value, bool) or value is None:
        return "I've checked that."
    if isinstance(value, (int, float)):
        return f"That comes to {number(value)}."
    if isinstance(value, str):
        about = [natural(v) for k, v in args.items() if k not in _OWN and isinstance(v, (str, int, float))]
        where = f" for {about[0]} on {about[1]}" if len(about) == 2 and re.match(r"\d{4}-\d\d-\d\d", about[1]) \
            else f" for {join_and(about)}" if about else ""
        text = " ".join(value.split())
        if len(text) > 80 or not text:
            return "I've checked that."
        return f"The {subject(name)}{where} is {text.rstrip('.')}."
    if isinstance(value, list):
        if not value:
            return f"I found no {subject(name)}."
        names = [" then ".join(identity(x) or natural(x) for x in v) if isinstance(v, list)
                 else identity(v) or natural(v) for v in value[:3]]
        names += [f"{len(value) - 3} more"] if len(value) > 3 else []
        return f"I found {len(value)} result{'s' if len(value) != 1 else ''}: {join_and(names)}."
    if not isinstance(value, Mapping):
        return "I've checked that."
    who = person(value) or (person(value["name"]) if isinstance(value.get("name"), Mapping) else None)
    if who is None and isinstance(value.get("full_name"), str):
        who = value["full_name"]
    what = identity(value)
    keys = salient(value, focus, skip=[*args.values(), what, (what or "").split(" ")[-1]])
    if who and holder and who.split()[0] == holder.split()[0]:
        greeting = f"Thank you, {who.split()[0]}. I've found your account."
        rest = [k for k in keys if k in focus]
        return greeting + (f" {cap(join_and([fact(k, value[k]) for k in rest]))}." if rest else "")
    what = what or f"the {subject(name)}"
    if not keys:
        return f"I've pulled up {what}."
    return pick(READ_OK).format(what=what, facts=join_and([fact(k, value[k]) for k in keys]))


def changed_fields(effects: Effects | None) -> list[str]:
    """The top-level fields of records a write changes (a read may mention their values)."""
    return [c.field for c in effects.changes if not c.nested] if effects else []


@dataclass
class Announcement:
    """A write as the agent announces it: the action ("cancel the whole reservation X"), its
    details ("paid with credit_card_1"), and what it will do (grounded sentences)."""

    action: str
    details: str
    effects: Effects | None
    said: list[str] = field(default_factory=list)

    def text(self, with_money: bool = True) -> str:
        lines = self.said if with_money else [s for s in self.said if "$" not in s]
        return " ".join(lines)

    @property
    def phrase(self) -> str:
        return self.action + self.details


def announce(domain: Any, env: Any, name: str, args: Mapping, grounded: Grounded,
             effects: Effects | None = None) -> Announcement:
    """What the agent says before a write (see Announcement); `effects` when already known."""
    tool = (domain.tools or {}).get(name)
    effects = effects if effects is not None else effects_of(env, name, args)
    said = sentences(effects, grounded) if effects else []
    action, rest = action_phrase(tool, name, args, grounded)
    told = normalise_text(" ".join(said))
    route, linked, others = [], [], []
    for p in rest:
        if p in ("user_id", "customer_id") or p.endswith("_id") and isinstance(args[p], str) and "payment" not in p \
                and said_in(str(args[p]), told):
            continue  # the caller, or a record the effects already name
        if args[p] in ("", None, [], {}):
            continue
        d = detail(p, args[p])
        if not grounded(d) or _repeats(natural(args[p]), told):
            continue
        (route if d.startswith(("from ", "to ")) else linked if d.startswith(("for ", "paid ")) else others).append(d)
    details = (" " + " ".join(route) if route else "") + (", " + join_and(linked) if linked else "") \
        + (", with " + join_and(others) if others else "")
    return Announcement(action, details, effects, said)


def _repeats(value: str, told: str) -> bool:
    """Whether the effects already say a value: all of its ids and numbers, or the words."""
    if not told:
        return False
    claims = [norm for _, _, _, norm in tokens(value) if is_claim(norm)]
    return all(said_in(c, told) for c in claims) if claims else said_in(value, told)


def user_step(domain: Any, env: Any, name: str, args: Mapping, grounded: Grounded) -> str:
    """What the agent asks the user to do on their device: "turn mobile data on"."""
    tool = (domain.user_tools or {}).get(name)
    effects = effects_of(env, name, args, side="user")
    action, rest = action_phrase(tool, name, args, grounded, effects.toggles if effects else None)
    action = re.sub(r"^(show|list|display|measure)\b", "check", action)
    details = [detail(p, args[p]) for p in rest if grounded(detail(p, args[p]))]
    return action + (", with " + join_and(details) if details else "")


def unsaid(values: Sequence[Any], texts: Sequence[str]) -> list[str]:
    """The values (TaskSpec.inform) that none of the texts states."""
    said = [normalise_text(t) for t in texts]
    return [str(v) for v in values if not any(said_in(str(v), t) for t in said)]


def record_question(record: Any, said: str, rng: Any) -> tuple[str, str] | None:
    """(a question about another fact of a record, its answer): a follow-up the user may ask
    after a question task; None when every fact was said."""
    if not isinstance(record, Mapping):
        return None
    told = normalise_text(said)
    keys = [k for k in salient(record, limit=6) if not said_in(natural(record[k]), told)]
    if not keys:
        return None
    key = keys[rng.randrange(len(keys))]
    return f"And what is the {words(key)}?", cap(fact(key, record[key])) + "."
