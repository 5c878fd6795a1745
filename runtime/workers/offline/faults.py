"""The faults the offline dialogue injects so that the validators have real work: bad
arguments, a write on the wrong entity, a misstated number (dialog.py FAULT_RATES says how
often). Each helper only proposes; the dialogue decides and records what happened.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.env.rules import is_claim, tokens
from runtime.env.verifier import normalise_text


def corrupt(env: Any, rng: random.Random, name: str, args: Mapping, kinds: tuple[str, ...],
            error_prone: Sequence[str]) -> dict | None:
    """Arguments with one wrong type or misspelt value (preferring error-prone params)
    that the environment rejects (a schema error when only types are allowed)."""
    scalar = [p for p, v in args.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    params = [p for p in scalar if p in error_prone] or scalar
    for _ in range(4):
        if not params:
            return None
        p = params[rng.randrange(len(params))]
        v, kind = args[p], kinds[rng.randrange(len(kinds))]
        if kind == "misspell" and isinstance(v, str) and len(v) >= 3:
            bad_value: Any = misspell(v, rng)
        elif isinstance(v, str):
            digits = "".join(ch for ch in v if ch.isdigit())[:9]
            bad_value = int(digits) if digits else len(v)
        else:
            bad_value = str(v)
        bad = {**args, p: bad_value}
        r = env.fork().call(name, bad)
        if not r.ok and (kinds != ("type",) or r.error == "schema"):
            return bad
    return None


def other_entity(env: Any, rng: random.Random, name: str, args: Mapping, outputs: Sequence[str]) -> dict | None:
    """The same write on another entity seen in this dialogue's outputs (another
    reservation of the user...), when the environment accepts it and it breaks no policy
    check (the fault is the wrong entity, not a forbidden action)."""
    gold = env.fork()
    gold.call(name, dict(args))
    for p, v in args.items():
        if not isinstance(v, str):
            continue
        kind = shape(v)
        options = [s for s in outputs if s != v and shape(s) == kind]
        rng.shuffle(options)
        for s in options[:12]:
            trial = env.fork()
            result = trial.call(name, {**args, p: s})
            if result.ok and not result.violations and trial.hash() != gold.hash():
                return {**args, p: s}
    return None


def misstate(text: str, rng: random.Random, seen: Mapping[str, str]) -> str | None:
    """`text` with one digit of an id or number changed so that it matches nothing seen, or
    None when it has no such token."""
    claims = [(s, e, raw) for s, e, raw, norm in tokens(text) if is_claim(norm)]
    rng.shuffle(claims)
    for start, end, raw in claims:
        digits = [i for i, ch in enumerate(raw) if ch.isdigit()]
        i = digits[rng.randrange(len(digits))]
        new = raw[:i] + str((int(raw[i]) + 1 + rng.randrange(8)) % 10) + raw[i + 1:]
        norm = normalise_text(new)
        if is_claim(norm) and norm not in seen:
            return text[:start] + new + text[end:]
    return None


def shape(text: str) -> str:
    """Ids of one kind look alike: upper case and digits → X, lower case → a, the rest kept."""
    return "".join("X" if ch.isupper() or ch.isdigit() else "a" if ch.islower() else ch for ch in text)


def misspell(value: str, rng: random.Random) -> str:
    i = rng.randrange(len(value))
    ch = value[i]
    pool = "0123456789" if ch.isdigit() else "ABCDEFGHJKLMNPQRSTUVWXYZ" if ch.isupper() \
        else "abcdefghijkmnopqrstuvwxyz" if ch.islower() else None
    if pool is None:  # punctuation: swap the neighbours instead
        j = i + 1 if i + 1 < len(value) else i - 1
        chars = list(value)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    pool = pool.replace(ch, "")
    return value[:i] + pool[rng.randrange(len(pool))] + value[i + 1:]
