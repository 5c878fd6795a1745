"""Words for data: how the offline user and agent say values, records and tool calls.

Domain-independent on purpose, so that a new domain reads naturally without phrase tables:
a value is said by its shape (a person, an address, a flight leg, a payment, a list), a
record by its identity and a few facts in sentences, and a tool call by the tool's own
description ("Cancel a whole reservation" + reservation_id → "cancel the whole reservation
ZFA04Y"; "Turn mobile data on or off" → "turn mobile data on").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any


_ACRONYMS = {"gb": "GB", "mb": "MB", "sim": "SIM", "apn": "APN", "vpn": "VPN", "mms": "MMS", "sms": "SMS",
             "dob": "date of birth", "nonfree": "non-free"}


def words(name: Any) -> str:
    """snake_case → words ("gb_amount" → "GB amount")."""
    return " ".join(_ACRONYMS.get(w, w) for w in str(name).replace("_", " ").split(" "))


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def join_and(parts: Sequence[str], word: str = "and") -> str:
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def is_id(text: Any) -> bool:
    """An identifier is said verbatim: one token with a digit ("credit_card_123", "#W12")."""
    return isinstance(text, str) and " " not in text.strip() and any(ch.isdigit() for ch in text)


def plural(key: str) -> bool:
    last = words(key).split()[-1] if words(key).split() else ""
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def number(x: float | int) -> str:
    """12 → "12", 12.5 → "12.50", 1.25 → "1.25": what a person reads out."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if float(x) == int(x):
        return str(int(x))
    return f"{x:.2f}" if round(x, 2) == x else f"{x:g}"


def money(x: float | int) -> str:
    return "$" + number(abs(x))


# ---------------------------------------------------------------- values

_PERSON = ("first_name", "last_name")
_ADDRESS = ("address1", "address2", "city", "state", "zip", "country")
_PAYMENT_IDS = ("payment_id", "payment_method_id", "method_id")


def person(value: Any) -> str | None:
    if isinstance(value, Mapping) and all(isinstance(value.get(k), str) for k in _PERSON):
        return f"{value['first_name']} {value['last_name']}"
    return None


def natural(value: Any) -> str:
    """A value as a person says it: never JSON, never "key: value; key: value"."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, str):
        return value if is_id(value) or "_" not in value else words(value)
    if isinstance(value, Mapping):
        return _record_words(value)
    if isinstance(value, (list, tuple)):
        parts = [natural(v) for v in value]
        if any(", " in p for p in parts) and len(parts) > 1:  # "A, born X; and B, born Y"
            return "; ".join(parts[:-1]) + "; and " + parts[-1]
        return join_and(parts)
    return str(value)


def _record_words(value: Mapping) -> str:
    name = person(value)
    if name is None and isinstance(value.get("name"), Mapping):
        name = person(value["name"])
    if name is not None:
        born = value.get("dob") or value.get("date_of_birth")
        return name + (f", born {born}" if isinstance(born, str) else "")
    if any(k in value for k in ("address1", "city")) and all(k in _ADDRESS for k in value):
        parts = [value.get("address1"), value.get("address2"), value.get("city"),
                 " ".join(str(value[k]) for k in ("state", "zip") if value.get(k)), value.get("country")]
        return ", ".join(str(p) for p in parts if p)
    if "flight_number" in value and "date" in value:
        return f"{value['flight_number']} on {value['date']}"
    method = next((value[k] for k in _PAYMENT_IDS if isinstance(value.get(k), str)), None)
    if method is not None and isinstance(value.get("amount"), (int, float)):
        return f"{money(value['amount'])} with {method}"
    if isinstance(value.get("name"), str) and isinstance(value.get("options"), Mapping):
        return f"{value['name']} ({', '.join(f'{words(k)} {natural(v)}' for k, v in value['options'].items())})"
    if value and all(is_id(k) for k in value) and all(isinstance(v, (int, float)) for v in value.values()):
        return join_and([f"{number(v)} to {k}" for k, v in value.items()])  # {account: amount}
    scalars = [(k, v) for k, v in value.items() if not isinstance(v, (Mapping, list))]
    return join_and([f"{words(k)} {natural(v)}" for k, v in scalars])


def identity(record: Any, key_hint: str | None = None) -> str | None:
    """How a record is named in a sentence: "Mia Li", "flight EGA264", "reservation ZFA04Y",
    "Over-Ear Headphones"; None when it has no name or id."""
    if not isinstance(record, Mapping):
        return None
    name = person(record) or (person(record["name"]) if isinstance(record.get("name"), Mapping) else None)
    if name:
        return name
    if isinstance(record.get("name"), str):
        return record["name"]
    for k, v in record.items():
        if isinstance(v, str) and v and " " not in v and (k.endswith(("_id", "_number")) or k == "id"):
            entity = words(k.removesuffix("_id").removesuffix("_number")) if k != "id" else ""
            return f"{entity} {v}".strip()
    return None


# ---------------------------------------------------------------- tool calls

_CLAUSE_END = re.compile(r"\s*(?:\(|;|:|\.\s|\.$| - | — |, which\b|, so\b|, \w+ing\b)")
_USER = [(r"\s+of (?:the|a) (?:user|customer)\b(?=[.,;]|$)", ""),
         (r"\b(?:the|a) (?:user|customer)'s\b", "your"),
         (r"\b(?:to|for|with) (?:the|a) (?:user|customer)\b", lambda m: m.group(0).split()[0] + " you"),
         (r"\bthe phone's\b", "your phone's"), (r"\bthe phone\b", "your phone"),
         (r"\bthe device\b", "your device")]
_PAST = {"set": "set", "put": "put", "reset": "reset", "send": "sent", "pay": "paid", "make": "made",
         "get": "got", "take": "taken", "give": "given", "run": "run", "find": "found", "show": "shown",
         "cancel": "cancelled", "refuel": "refuelled", "turn": "turned", "request": "requested"}
_ENTITY_PARAM = re.compile(r"^(?P<entity>[a-z][a-z_]*?)_(?:id|name|number)$")


def first_clause(description: str) -> str:
    text = " ".join(str(description or "").split())
    m = _CLAUSE_END.search(text)
    return (text[:m.start()] if m else text).rstrip(" .,")


def past(verb_phrase: str) -> str:
    """"cancel the order" → "cancelled the order" (the first word is the verb)."""
    head, _, rest = verb_phrase.partition(" ")
    low = head.lower()
    if low in _PAST:
        done = _PAST[low]
    elif low.endswith("e"):
        done = low + "d"
    elif low.endswith("y") and low[-2:-1] not in "aeiou":
        done = low[:-1] + "ied"
    else:
        done = low + "ed"
    return (done + " " + rest).strip()


def action_phrase(tool: Any, name: str, args: Mapping, grounded: Callable[[str], bool],
                  toggles: Mapping[str, bool] | None = None) -> tuple[str, list[str]]:
    """(the call as a verb phrase from the tool's description, the arguments it did not
    place). An argument is placed where the description names its entity ("a reservation"
    + reservation_id → "reservation ZFA04Y"); only grounded values are said."""
    description = first_clause(getattr(tool, "description", "") or "")
    text = (description[:1].lower() + description[1:]) if description else words(name)
    for pattern, repl in _USER:
        text = re.sub(pattern, repl, text)
    if " on or off" in text and toggles:
        on = next(iter(toggles.values()))
        text = text.replace(" on or off", " on" if on else " off")
    rest = []
    for param, value in args.items():
        said = natural(value)
        m = _ENTITY_PARAM.match(param)
        placed = False
        if m and isinstance(value, str) and grounded(said):
            entity = words(m.group("entity"))
            found = re.search(rf"\b(?:a|an|the|one)\s+((?:[a-z-]+\s+)?){re.escape(entity)}\b", text)
            if found:
                adjective = found.group(1)
                named = (f"the {adjective}{entity} {said}" if adjective else f"{entity} {said}") \
                    if param.endswith(("_id", "_number")) else f"the {said} {entity}"
                text = text[:found.start()] + named + text[found.end():]
                placed = True
        if not placed:
            rest.append(param)
    return text, rest


def detail(param: str, value: Any) -> str:
    """One argument the action phrase did not place, as a phrase: "paid with X", "for $30"."""
    said = natural(value)
    if "payment" in param and isinstance(value, str):
        return f"paid with {said}"
    if param in ("src", "source", "from"):
        return f"from {said}"
    if param in ("dst", "destination_account", "to"):
        return f"to {said}"
    if param == "reason" or param.endswith("_reason"):
        return f"for the reason \"{said}\""
    if param == "amount" and isinstance(value, (int, float)):
        return f"for {number(value)}"
    if param == "summary":
        return f"with the summary \"{said}\""
    return f"{words(param)} {said}"


# ---------------------------------------------------------------- tool outputs

def parse(content: str) -> Any:
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return content


def fact(key: str, value: Any) -> str:
    """"the status is pending", "the flights are ...", "it is available", "roaming is on"."""
    if isinstance(value, bool):
        if key.endswith("_enabled"):
            return f"{words(key.removesuffix('_enabled'))} is {'on' if value else 'off'}"
        if "_" not in key:
            return f"it is {'' if value else 'not '}{key}"
        return f"the {words(key)} is {'yes' if value else 'no'}"
    if plural(key) and isinstance(value, (int, float)):
        return f"the number of {words(key)} is {natural(value)}"
    verb = "are" if plural(key) else "is"
    return f"the {words(key)} {verb} {natural(value)}"


def facts(record: Mapping, keys: Sequence[str]) -> str:
    return join_and([fact(k, record[k]) for k in keys if k in record])


def salient(record: Mapping, focus: Sequence[str] = (), skip: Sequence[Any] = (), limit: int = 3) -> list[str]:
    """The keys of a record worth saying: the `focus` keys first (what the next write will
    change, what the user asked), then the status, then short scalars (not values in `skip`,
    such as the ids the user just gave, and not emails or other ids)."""
    keys = [k for k in dict.fromkeys(focus) if k in record and record[k] is not None]
    if record.get("status") is not None and "status" not in keys:
        keys.append("status")
    for k, v in record.items():
        if len(keys) >= limit:
            break
        if k in keys or v in skip or v is None or isinstance(v, (Mapping, list)) or v == "":
            continue
        if isinstance(v, str) and (_looks_like_id(v) or "@" in v or len(v) > 40):
            continue
        keys.append(k)
    return keys[:max(limit, len([k for k in focus if k in record]))]


def _looks_like_id(text: str) -> bool:
    """An id rather than a fact: a digit with letters, '#' or '_' ("L1002", "#W12"; not a date)."""
    return is_id(text) and any(ch.isalpha() or ch in "#_" for ch in text)
