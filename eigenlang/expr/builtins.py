"""Run-time implementations of the built-in functions (the only functions expressions call).

Each takes the evaluation state, the call's span and the evaluated arguments, checks the
argument kinds itself (values typed `any` reach here unchecked) and pays for bulk work out of
the step budget. Argument counts were checked when the call was compiled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from . import limits
from .dates import BUILTINS as DATE_BUILTINS
from .values import (EvalError, Run, checked_number, checked_size, equal, is_num, is_seq,
                     iter_values, need_int, need_num, need_str, order, short, truth, typename)

Builtin = Callable[[Run, Any, list[Any]], Any]


def _len(run: Run, span, a):
    v = a[0]
    if isinstance(v, (str, Mapping)) or is_seq(v):
        return len(v)
    raise EvalError(f"len() needs a list, dict or string, got {typename(v)}", span)


def _collection(run: Run, span, v: Any, what: str) -> list[Any]:
    items = list(iter_values(v, span, what))
    run.charge(len(items), span)
    return items


def _any(run: Run, span, a):
    return any(truth(x) for x in _collection(run, span, a[0], "any()"))


def _all(run: Run, span, a):
    return all(truth(x) for x in _collection(run, span, a[0], "all()"))


def _sum(run: Run, span, a):
    total: Any = 0
    for x in _collection(run, span, a[0], "sum()"):
        total += need_num(x, span, "sum()")
    return checked_number(total, span)


def _extreme(pick: Callable, name: str) -> Builtin:
    def fn(run: Run, span, a):
        items = _collection(run, span, a[0], f"{name}()") if len(a) == 1 else list(a)
        if not items:
            raise EvalError(f"{name}() of an empty collection", span)
        for x in items[1:]:
            order(items[0], x, span, name + "()")
        return pick(items)

    return fn


def _keys(run: Run, span, a):
    if not isinstance(a[0], Mapping):
        raise EvalError(f"keys() needs a dict, got {typename(a[0])}", span)
    checked_size(len(a[0]), span, "keys()")
    run.charge(len(a[0]), span)
    return list(a[0].keys())


def _values(run: Run, span, a):
    if not isinstance(a[0], Mapping):
        raise EvalError(f"values() needs a dict, got {typename(a[0])}", span)
    checked_size(len(a[0]), span, "values()")
    return _collection(run, span, a[0], "values()")


def _get(run: Run, span, a):
    obj, key = a[0], a[1]
    default = a[2] if len(a) == 3 else None
    if isinstance(key, str) and key.startswith("_"):
        raise EvalError(f"key '{key}' starts with '_' and is not accessible", span)
    if isinstance(obj, Mapping):
        try:
            return obj[key] if key in obj else default
        except TypeError:  # unhashable key
            return default
    if is_seq(obj):
        if isinstance(key, bool) or not isinstance(key, int):
            raise EvalError(f"get() on a list needs an int index, got {typename(key)}", span)
        return obj[key] if -len(obj) <= key < len(obj) else default
    raise EvalError(f"get() needs a dict or list, got {typename(obj)}", span)


# One character's upper or lower case is at most this many characters ('ﬃ'.upper() == 'FFI').
_CASE_GROWTH = 3
_CASE_CHUNK = 65_536


def _case(name: str, convert: Callable[[str], str]) -> Builtin:
    """upper()/lower(): sized before the result is built. Case mapping never shortens a
    string and grows only non-ASCII text, by at most 3x, so only a long non-ASCII string needs
    measuring: piece by piece (the length of a case mapping is per character), never whole."""
    what = name + "()"

    def fn(run: Run, span, a):
        s = need_str(a[0], span, what)
        checked_size(len(s), span, what, "characters")
        run.charge(len(s), span)
        if len(s) * _CASE_GROWTH > limits.MAX_SIZE and not s.isascii():
            run.charge(len(s), span)
            checked_size(sum(len(convert(s[i:i + _CASE_CHUNK]))
                             for i in range(0, len(s), _CASE_CHUNK)), span, what, "characters")
        return convert(s)

    return fn


def _contains(run: Run, span, a):
    coll, item = a
    if isinstance(coll, str):
        run.charge(len(coll), span)
        return need_str(item, span, "contains()") in coll
    if is_seq(coll):
        run.charge(len(coll), span, 1)
        return any(equal(item, x, run, span) for x in coll)
    raise EvalError(f"contains() needs a string or list, got {typename(coll)}", span)


def _startswith(run: Run, span, a):
    return need_str(a[0], span, "startswith()").startswith(need_str(a[1], span, "startswith()"))


def _abs(run: Run, span, a):
    return abs(need_num(a[0], span, "abs()"))


def _round(run: Run, span, a):
    x = need_num(a[0], span, "round()")
    if len(a) == 1:
        return checked_number(round(x), span)
    digits = need_int(a[1], span, "round()")
    return checked_number(round(x, max(-400, min(400, digits))), span)


def _str(run: Run, span, a):
    return render(a[0], run, span)


def _int(run: Run, span, a):
    v = a[0]
    if isinstance(v, bool):
        return int(v)
    if is_num(v):
        return checked_number(int(v), span)
    if isinstance(v, str):
        text = v.strip()
        if len(text) <= limits.MAX_INT_DIGITS + 1:
            try:
                return checked_number(int(text), span)
            except ValueError:
                pass
        raise EvalError(f"cannot convert {short(v)} to int", span)
    raise EvalError(f"int() needs a number or a string, got {typename(v)}", span)


def _float(run: Run, span, a):
    v = a[0]
    if is_num(v):
        return checked_number(float(v), span)
    if isinstance(v, str) and len(v) <= 400:
        try:
            return checked_number(float(v), span)
        except (ValueError, EvalError):
            pass
        raise EvalError(f"cannot convert {short(v)} to float", span)
    raise EvalError(f"float() needs a number or a string, got {typename(v)}", span)


def render(v: Any, run: Run, span, what: str = "str()") -> str:
    """Text of a value: strings as they are, everything else in the language's literal
    spelling (`true`, `none`) or as JSON for lists and dicts. The text's length is known
    before it is written (see `_sized_plain`), so a value that repeats one big part
    (`['a' * 1000000] * 80000`) is refused in milliseconds, not rendered into gigabytes."""
    if isinstance(v, str):
        return v
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_num(v):
        return repr(v)
    text = _JSON.encode(_sized_plain(v, run, span, what))
    run.charge(len(text), span)
    # the estimate leaves out escapes ("\n", "\u0001"): at most 6x, checked now it is bounded
    if len(text) > limits.MAX_SIZE:
        checked_size(len(text), span, what, "characters")
    return text


_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # (json.dumps builds one a call)


def _too_long(size: int, span, what: str) -> None:
    raise EvalError(f"{what} would be at least {size} characters long (at most "
                    f"{limits.MAX_SIZE})", span)


def _sized_plain(v: Any, run: Run, span, what: str) -> Any:
    """A plain copy of `v` (dicts with str keys, lists, scalars) for `json.dumps`, and on the
    way the length of its JSON text but for escapes: a lower bound, raised against MAX_SIZE
    as it grows, so nothing is built past the limit. Each container is measured and copied
    once, however often it is repeated (memo by identity: the copies share it too), and pays
    one step per item."""
    # keyed by identity, holding the value itself: views made on access (the run-time state's)
    # must stay alive, or a later one could reuse a freed one's id
    memo: dict[int, tuple[Any, Any, int]] = {}
    limit = limits.MAX_SIZE

    def walk(x: Any) -> tuple[Any, int]:
        if isinstance(x, str):
            return x, len(x) + 2
        if x is None or x is True:
            return x, 4
        if x is False:
            return x, 5
        if isinstance(x, (int, float)):
            return x, len(repr(x))
        found = memo.get(id(x))
        if found is not None:
            return found[1], found[2]
        if isinstance(x, Mapping):
            run.charge(len(x), span, 1)
            out: Any = {}
            size = 2 * len(x) or 2  # braces and ", " separators
            for k, item in x.items():
                key = str(k)
                out[key], n = walk(item)
                size += len(key) + 4 + n  # "key": value
                if size > limit:
                    _too_long(size, span, what)
        elif is_seq(x):
            run.charge(len(x), span, 1)
            out = []
            size = 2 * len(x) or 2
            for item in x:
                p, n = walk(item)
                out.append(p)
                size += n
                if size > limit:
                    _too_long(size, span, what)
        else:  # not JSON-like (a foreign object in the scope): its str(), quoted
            out = str(x)
            size = len(out) + 2
        memo[id(x)] = x, out, size
        return out, size

    return walk(v)[0]


BUILTINS: dict[str, Builtin] = {
    "len": _len, "any": _any, "all": _all, "sum": _sum,
    "min": _extreme(min, "min"), "max": _extreme(max, "max"),
    "keys": _keys, "values": _values, "get": _get,
    "lower": _case("lower", str.lower), "upper": _case("upper", str.upper),
    "contains": _contains, "startswith": _startswith, "abs": _abs, "round": _round,
    "str": _str, "int": _int, "float": _float,
    **DATE_BUILTINS,
}
