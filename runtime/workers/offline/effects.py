"""What a write will do, said before it is made: the offline agent's dry run.

Policies ask the agent to say what a change will do before the user says yes: amounts charged
or refunded, fees, new dates, new statuses. A careful human agent works that out; the offline
agent runs the write on a throw-away fork of the dialogue's state and reads the difference
(`effects_of`). Only what the agent has grounds for is said: every id and number must have
appeared before (the policy, a tool output, the user's words: the grounding check). An amount
nobody has seen yet is derived from numbers that were seen (`derivation`: the price
differences of the changed items times the passengers, $50 times the new paid bags, the price
per GB times the GB) and computed with the domain's calculator, when it has one, before it is
stated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.env.rules import state_diff

from .wording import article, cap, identity, join_and, money, natural, number, plural, words

_METHOD_KEYS = ("payment_id", "payment_method_id", "method_id", "payment_method")
_REFUND_WORDS = ("refund", "credit")
MAX_CHANGES = 4  # change sentences in one announcement


@dataclass
class Money:
    amount: float  # signed: > 0 the user pays, < 0 the user gets money back
    method: str | None  # the payment method it goes through, when the record names one
    where: str  # what it lands on when no method is named ("your bill")
    stated: str | None = None  # how it is said when the amount itself is not grounded
    label: str | None = None  # what is created when it is not a payment ("certificate")


@dataclass
class Change:
    field: str
    owner: str | None  # "flight EGA264", "Mia Li": the list element or record it belongs to
    before: Any
    after: Any
    nested: bool = False  # inside a record's field (a flight of a reservation), not a field of it
    parent: tuple = ()  # the path of the object holding the field


@dataclass
class Effects:
    money: list[Money] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    toggles: dict[str, bool] = field(default_factory=dict)  # user-side booleans the call flips
    diff: list[dict] = field(default_factory=list)  # the dry run's state difference


def dry_run(env: Any, name: str, args: Mapping, side: str = "agent") -> list[dict] | None:
    """The state difference the call would make, or None when it would fail."""
    fork = env.fork()
    if not fork.call(name, json.dumps(args, ensure_ascii=False), side).ok:
        return None
    return state_diff(env, fork)


def effects_of(env: Any, name: str, args: Mapping, side: str = "agent") -> Effects | None:
    """What the call would do to the records it names (by its id arguments) and to money."""
    diff = dry_run(env, name, args, side)
    if diff is None:
        return None
    out = Effects(diff=diff)
    ids = {v for v in args.values() if isinstance(v, str) and len(v) >= 2}  # the records it names
    methods_used: set[str] = set()
    for d in diff:
        path, before, after = d["path"], d.get("before"), d.get("after")
        if path[0] == "user_db":
            if isinstance(after, bool) and isinstance(before, bool):
                out.toggles[str(path[-1])] = after
            continue
        if d.get("added"):
            for entry in _money_entries(after):
                m = _money(entry, path)
                if m is not None:
                    out.money.append(m)
                    methods_used.add(m.method or "")
            credit = _credit(after)
            if credit is not None:
                out.money.append(credit)
            continue
        if d.get("deleted"):
            continue
        key = str(path[-1])
        if "difference" in key and isinstance(after, (int, float)) and not isinstance(after, bool):
            out.money.append(Money(float(after), _method_arg(args), "the order"))
            continue
        record, owner = _owner(env.db, path, ids)
        if record is None:
            continue
        out.changes.append(Change(key, owner, before, after, len(path) > 4, tuple(path[:-1])))
    out.changes = _grouped(out.changes, env.db)
    # balances of methods already named by a payment say the same thing twice
    out.changes = [c for c in out.changes
                   if not (c.field in ("balance", "amount") and any(m and m in str(c.owner) for m in methods_used))]
    return out


def _grouped(changes: list[Change], db: Any) -> list[Change]:
    """Several fields of one named object (an address, an item's options) said as one change
    of the whole: "the address will change from A to B"."""
    by: dict[tuple, list[Change]] = {}
    for c in changes:
        by.setdefault(c.parent, []).append(c)
    out: list[Change] = []
    for parent, group in by.items():
        if len(group) < 2 or len(parent) < 4 or not isinstance(parent[-1], str):  # a record's own fields stay apart
            out += group
            continue
        whole = db.get(list(parent[1:]), None)
        before = dict(whole) if isinstance(whole, Mapping) else {c.field: c.before for c in group}
        after = {**before, **{c.field: c.after for c in group}}
        out.append(Change(str(parent[-1]), group[0].owner, before, after, len(parent) > 4, parent[:-1]))
    return out


def _money_entries(value: Any) -> list[Mapping]:
    """Payment-like dicts in an added value (a new payment, a refund, a bill line, a new
    reservation's payment history)."""
    if isinstance(value, Mapping):
        if isinstance(value.get("amount"), (int, float)) and not isinstance(value.get("amount"), bool) \
                and (any(k in value for k in _METHOD_KEYS) or "transaction_type" in value or "item_type" in value):
            return [value]
        return [e for v in value.values() for e in _money_entries(v)]
    if isinstance(value, list):
        return [e for v in value for e in _money_entries(v)]
    return []


def _money(entry: Mapping, path: Sequence) -> Money | None:
    amount = float(entry["amount"])
    kind = str(entry.get("transaction_type") or entry.get("item_type") or "").lower()
    if any(w in kind for w in _REFUND_WORDS):
        amount = -abs(amount)
    method = next((entry[k] for k in _METHOD_KEYS if isinstance(entry.get(k), str)), None)
    where = f"your {words(str(path[1])).rstrip('s')}" if len(path) > 1 else "your account"
    return Money(amount, method, where) if amount else None


def _credit(value: Any) -> Money | None:
    """A new payment method with an amount on it (a certificate sent as compensation)."""
    if isinstance(value, Mapping) and isinstance(value.get("amount"), (int, float)) \
            and not isinstance(value.get("amount"), bool) and isinstance(value.get("source"), str) \
            and not any(k in value for k in _METHOD_KEYS):
        return Money(-float(value["amount"]), None, "your account", label=words(value["source"]))
    return None


def _method_arg(args: Mapping) -> str | None:
    return next((v for k, v in args.items() if "payment" in k and isinstance(v, str)), None)


def _owner(db: Any, path: Sequence, ids: set) -> tuple[Any, str | None]:
    """The record (reachable under the call's id arguments) a changed field belongs to, and
    how to name the innermost named thing on the way: (None, None) when the change is not
    about a record the call names. Reads records, never a whole collection (`db.get` copies)."""
    inner = list(path[1:-1])  # below "db", above the field
    node, named, hit = None, None, False
    for depth in range(2, len(inner) + 1):
        step = inner[depth - 1]
        node = db.get(inner[:depth], None)
        if node is None:
            return None, None
        if step in ids or (isinstance(node, Mapping) and any(node.get(k) in ids for k in node
                                                              if k.endswith("_id") or k == "id")):
            hit = True
        if isinstance(step, int) or depth == len(inner):
            named = identity(node) or named
    if len(inner) == 1 and inner[0] in ids:  # a field of the root collection entry itself
        hit = True
    return (node, named) if hit else (None, None)


# ---------------------------------------------------------------- saying it

Grounded = Callable[[str], bool]


def money_sentence(m: Money, done: bool = False) -> str:
    """"$50 will be charged to credit_card_1." (or, once done, "$50 was charged to ...")."""
    said = m.stated or money(m.amount)
    if m.label:
        return f"{cap(article(m.label))} {m.label} of {said} {'was' if done else 'will be'} added to {m.where}."
    if m.amount < 0:
        verb = "is on its way back to" if done else "will be refunded to"
        return f"{said} {verb} {m.method}." if m.method else f"You {'got' if done else 'will get'} {said} back on {m.where}."
    verb = "was charged to" if done else "will be charged to"
    return f"{said} {verb} {m.method}." if m.method else f"{said} {'was' if done else 'will be'} added to {m.where}."


def _change_clause(c: Change, done: bool = False) -> str:
    name = words(c.field)
    will = "is now" if done else "will be"
    if isinstance(c.after, bool):
        return f"{name.removesuffix(' enabled')} {will} {'on' if c.after else 'off'}"
    if c.before is None or c.before == "" or done:
        return f"the {name} {will} {natural(c.after)}"
    if c.after is None or c.after == "":
        return f"the {name} {will} cleared"
    return f"the {name} will change from {natural(c.before)} to {natural(c.after)}"


def change_sentences(changes: Sequence[Change], done: bool = False) -> list[str]:
    """One sentence per record: "For flight EGA264, the date will change from A to B and the
    price will change from C to D."."""
    owners: dict[str | None, list[Change]] = {}
    for c in changes:
        owners.setdefault(c.owner, []).append(c)
    out = []
    for owner, group in owners.items():
        clauses = join_and([_change_clause(c, done) for c in group])
        out.append(f"For {owner}, {clauses}." if owner else cap(clauses) + ".")
    return out


def sentences(effects: Effects, grounded: Grounded, limit: int = MAX_CHANGES) -> list[str]:
    """The grounded sentences of what will happen: changes first (the status first), then money."""
    changes = sorted(effects.changes, key=lambda c: c.field != "status")
    kept = [c for c in changes if grounded(_change_clause(c))][:limit]
    return change_sentences(kept) + [s for s in (money_sentence(m) for m in effects.money) if grounded(s)]


def ungrounded_money(effects: Effects, grounded: Grounded) -> list[Money]:
    return [m for m in effects.money if not grounded(money_sentence(m))]


# ---------------------------------------------------------------- deriving amounts

def derivation(m: Money, effects_diff: Sequence[dict] | None, args: Mapping, seen: Callable[[float], bool]
               ) -> tuple[str, str] | None:
    """(an arithmetic expression over numbers already seen that gives the amount, and the same
    in words for a domain without a calculator), or None. Tried in order: the price changes of
    the changed records times a small count (fare differences per passenger), a seen unit
    price times the change of a count (bag fees), times a numeric argument (price per GB), or
    times a small count (a per-passenger certificate)."""
    target = abs(m.amount)
    prices = [(d["before"], d["after"]) for d in effects_diff or []
              if "price" in str(d["path"][-1]) and not d.get("added")
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (d["before"], d["after"]))]
    if prices and all(seen(b) and seen(a) for b, a in prices):
        delta = sum(a - b for b, a in prices)
        for k in range(1, 10):
            if delta and abs(abs(k * delta) - target) < 0.005:
                new = " + ".join(number(a) for _, a in prices)
                old = " + ".join(number(b) for b, _ in prices)
                body = f"({new}) - ({old})" if len(prices) > 1 else f"{new} - {old}"
                expr = body if k == 1 else f"{k} * ({body})"
                return expr, f"{expr} = {money(target)}"
    counts = [d["after"] - d["before"] for d in effects_diff or []
              if isinstance(d.get("before"), int) and isinstance(d.get("after"), int)
              and not isinstance(d["before"], bool) and "price" not in str(d["path"][-1]) and d["after"] != d["before"]]
    factors = [(c, None) for c in counts if c > 0]
    factors += [(float(v), k) for k, v in args.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    factors += [(k, None) for k in range(2, 10)]
    for factor, param in factors:
        unit = target / factor
        if unit >= 1 and round(unit, 2) == round(unit, 6) and seen(unit):
            expr = f"{number(unit)} * {number(factor)}"
            if param is not None:
                thing = words(param).replace(" amount", "").replace(" count", "").strip()
                thing = thing.upper() if len(thing) <= 3 else thing
                return expr, f"{money(unit)} per {thing} for {number(factor)} {thing}"
            return expr, f"{number(factor)} × {money(unit)}"
    return None


def total(items: Sequence[Money]) -> str | None:
    """An expression for the sum of several amounts of one direction ("241 + 120")."""
    return " + ".join(number(abs(m.amount)) for m in items) if len(items) > 1 else None


# ---------------------------------------------------------------- follow-up questions

def follow_up(effects: Effects, grounded: Grounded, rng: Any) -> tuple[str, str] | None:
    """A question a customer may ask about what was done, and its answer from the state
    (both grounded), or None."""
    options: list[tuple[str, str]] = []
    refunds = [m for m in effects.money if m.amount < 0]
    charges = [m for m in effects.money if m.amount > 0]
    if refunds:
        options.append((QUESTIONS["refund"][rng.randrange(len(QUESTIONS["refund"]))],
                        " ".join(money_sentence(m, done=True) for m in refunds)))
    if charges:
        options.append((QUESTIONS["charge"][rng.randrange(len(QUESTIONS["charge"]))],
                        " ".join(money_sentence(m, done=True) for m in charges)))
    for c in effects.changes[:MAX_CHANGES]:
        if c.after is None or c.after == "" or isinstance(c.after, (Mapping, list)):
            continue
        thing = words(c.field) + (f" of {c.owner}" if c.owner else "")
        if isinstance(c.after, bool):
            name = words(c.field).removesuffix(" enabled")
            options.append((f"Just to be sure, is {name} {'on' if c.after else 'off'} now?",
                            f"Yes, {name} is now {'on' if c.after else 'off'}."))
        elif "date" in c.field:
            options.append((f"So what is the new {thing}?", f"The {thing} is now {natural(c.after)}."))
        elif plural(c.field) and isinstance(c.after, (int, float)):
            name = words(c.field)
            name = name[:-1] if c.after == 1 else name
            where = f" on {c.owner}" if c.owner else ""
            options.append((f"And how many {words(c.field)} are there{where} now?",
                            f"There {'is' if c.after == 1 else 'are'} now {natural(c.after)} {name}{where}."))
        else:
            options.append((f"And what is the {thing} now?", f"The {thing} is now {natural(c.after)}."))
    options = [(q, a) for q, a in options if grounded(a)]
    return options[rng.randrange(len(options))] if options else None


QUESTIONS = {
    "refund": ["How much am I getting back, and where does it go?", "How much will be refunded?",
               "And the refund, how much is it and where will it go?"],
    "charge": ["How much was I charged in the end?", "What did that cost me, and on which card?",
               "How much will I pay for that?"],
}


def amounts(effects: Effects) -> list[float]:
    return [abs(m.amount) for m in effects.money]


def summary(effects: Effects) -> str:
    """Everything, grounded or not: for tests and debugging."""
    return " ".join(change_sentences(effects.changes) + [money_sentence(m) for m in effects.money])
