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
    run.charge(len(a[0]), span)
    return list(a[0].keys())


def _values(run: Run, span, a):
    if not isinstance(a[0], Mapping):
        raise EvalError(f"values() needs a dict, got {typename(a[0])}", span)
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


def _lower(run: Run, span, a):
    s = need_str(a[0], span, "lower()")
    run.charge(len(s), span)
    return s.lower()


def _upper(run: Run, span, a):
    s = need_str(a[0], span, "upper()")
    run.charge(len(s), span)
    return s.upper()


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
    text = render(a[0], run, span)
    checked_size(len(text), span, "str()")
    return text


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


def render(v: Any, run: Run, span) -> str:
    """Text of a value: strings as they are, everything else in the language's literal
    spelling (`true`, `none`) or as JSON for lists and dicts."""
    if isinstance(v, str):
        return v
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_num(v):
        return repr(v)
    return json.dumps(_plain(v, run, span), ensure_ascii=False, sort_keys=True)


def _plain(v: Any, run: Run, span) -> Any:
    if isinstance(v, Mapping):
        run.charge(len(v), span, 1)
        return {str(k): _plain(x, run, span) for k, x in v.items()}
    if is_seq(v):
        run.charge(len(v), span, 1)
        return [_plain(x, run, span) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


BUILTINS: dict[str, Builtin] = {
    "len": _len, "any": _any, "all": _all, "sum": _sum,
    "min": _extreme(min, "min"), "max": _extreme(max, "max"),
    "keys": _keys, "values": _values, "get": _get, "lower": _lower, "upper": _upper,
    "contains": _contains, "startswith": _startswith, "abs": _abs, "round": _round,
    "str": _str, "int": _int, "float": _float,
}
