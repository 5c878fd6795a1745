"""Date and time built-ins: `date` and `datetime` are types of the type language and ISO
strings at run time ('2024-05-15', '2024-05-15T15:00:00'; a space instead of the 'T' reads
the same).

    date(x)              -> date      the day of a datetime (an ISO date stays itself)
    datetime(x)          -> datetime  an ISO text as a datetime ('2024-05-15' is its midnight)
    add_days(x, n)       -> x's kind  n days later (negative: earlier; whole days for a date)
    add_hours(x, n)      -> datetime  n hours later
    days_between(a, b)   -> int|float how many days `a` is after `b` (negative when before);
                                      whole days between two dates
    hours_between(a, b)  -> float     how many hours `a` is after `b`

A date and a datetime never meet: comparing them (`d < now`), or asking for the days
between them, is a type error (E301) when both types are known and an `EvalError` at run
time otherwise, since their ISO texts would compare as strings ('2024-05-15' sorts before
'2024-05-15T00:00:00'). Convert one side with `date()` or `datetime()`.

Results are written with `isoformat()`: at most 32 characters whatever the input, so the
output is sized before it is built; an input text longer than `MAX_ISO` is refused unread.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from ..types import DATE, DATETIME, FLOAT, INT, NONE, STR, Prim, Type, union
from .values import EvalError, Run, need_num, short, typename

MAX_ISO = 64  # characters of an ISO text a date function reads

_Value = _dt.date  # a datetime is a date too: check datetime first


# ------------------------------------------------------------------------------ run time
def parse_iso(v: Any, span, what: str) -> _Value:
    """An ISO text as a `date` (10 characters or fewer) or a `datetime` (longer)."""
    if not isinstance(v, str):
        raise EvalError(f"{what} needs an ISO date or datetime string, got {typename(v)}", span)
    if len(v) > MAX_ISO:
        raise EvalError(f"{what}: {short(v)} is not an ISO date or datetime "
                        f"(longer than {MAX_ISO} characters)", span)
    try:
        if len(v) <= 10:
            return _dt.date.fromisoformat(v)
        return _dt.datetime.fromisoformat(v)
    except ValueError:
        raise EvalError(f"{what}: {short(v)} is not an ISO date or datetime "
                        "(write '2024-05-15' or '2024-05-15T15:00:00')", span) from None


def _is_datetime(v: _Value) -> bool:
    return isinstance(v, _dt.datetime)


def _kind(v: _Value) -> str:
    return "datetime" if _is_datetime(v) else "date"


def _text(v: _Value) -> str:
    return v.isoformat()


def _shifted(v: _Value, delta: _dt.timedelta, span, what: str) -> str:
    try:
        return _text(v + delta)
    except OverflowError:
        raise EvalError(f"{what}: the result is outside the years 1 to 9999", span) from None


def _delta(amount: Any, unit: str, span, what: str) -> _dt.timedelta:
    n = need_num(amount, span, what)
    try:
        return _dt.timedelta(**{unit: n})
    except OverflowError:
        raise EvalError(f"{what}: {short(n)} {unit} is out of range", span) from None


def _date(run: Run, span, a):
    v = parse_iso(a[0], span, "date()")
    return _text(v.date() if _is_datetime(v) else v)


def _datetime(run: Run, span, a):
    v = parse_iso(a[0], span, "datetime()")
    return _text(v if _is_datetime(v) else _dt.datetime.combine(v, _dt.time()))


def _add_days(run: Run, span, a):
    v = parse_iso(a[0], span, "add_days()")
    n = need_num(a[1], span, "add_days()")
    if not _is_datetime(v) and isinstance(n, float) and not n.is_integer():
        raise EvalError(f"add_days() on a date needs a whole number of days, got {n!r}", span)
    return _shifted(v, _delta(n, "days", span, "add_days()"), span, "add_days()")


def _add_hours(run: Run, span, a):
    v = parse_iso(a[0], span, "add_hours()")
    if not _is_datetime(v):
        raise EvalError(f"add_hours() needs a datetime, got the date {a[0]!r} "
                        "(a date has no hours: datetime(d) is its midnight)", span)
    return _shifted(v, _delta(a[1], "hours", span, "add_hours()"), span, "add_hours()")


def _difference(a: Any, b: Any, span, what: str) -> tuple[_dt.timedelta, bool]:
    """(a - b, whether both were dates)."""
    x, y = parse_iso(a, span, what), parse_iso(b, span, what)
    if _kind(x) != _kind(y):
        raise EvalError(f"{what} of a {_kind(x)} ({a!r}) and a {_kind(y)} ({b!r}): convert "
                        "one with date() or datetime()", span)
    try:
        return x - y, not _is_datetime(x)
    except TypeError:  # one with a time zone, one without
        raise EvalError(f"{what}: {a!r} and {b!r} mix a time zone with none", span) from None


def _days_between(run: Run, span, a):
    delta, dates = _difference(a[0], a[1], span, "days_between()")
    return delta.days if dates else delta.total_seconds() / 86400


def _hours_between(run: Run, span, a):
    delta, _ = _difference(a[0], a[1], span, "hours_between()")
    return delta.total_seconds() / 3600


BUILTINS: dict[str, Callable[[Run, Any, list[Any]], Any]] = {
    "date": _date, "datetime": _datetime, "add_days": _add_days, "add_hours": _add_hours,
    "days_between": _days_between, "hours_between": _hours_between,
}


# ------------------------------------------------------------------------------ types
def time_kind(checker: Any, t: Type) -> str | None:
    """'date' or 'datetime' when every option of `t` but none is that type; else None."""
    kinds = {o.name if isinstance(o, Prim) else "" for o in checker.opts(t) if o != NONE}
    if len(kinds) == 1 and kinds <= {"date", "datetime"}:
        return kinds.pop()
    return None


def mixed(checker: Any, a: Type, b: Type) -> bool:
    """Is one side a date and the other a datetime?"""
    return {time_kind(checker, a), time_kind(checker, b)} == {"date", "datetime"}


MIXED_HINT = "convert one side: date(x) is the day of a datetime, datetime(d) the midnight of a date"


def check_compare(checker: Any, a: Type, b: Type, op: str, span) -> None:
    """E301 for a date compared with a datetime (their texts would compare as strings)."""
    if mixed(checker, a, b):
        checker.mismatch(f"comparing a date with a datetime with '{op}' compares their text "
                         "('2024-05-15' sorts before '2024-05-15T00:00:00')", span, MIXED_HINT)


def _need_time(checker: Any, e: Any, i: int, t: Type) -> bool:
    return checker.need(e, i, t, ("str",), "a date, a datetime or an ISO string")


def _same_kind(checker: Any, t: Type) -> Type:
    kind = time_kind(checker, t)
    if kind is not None:
        return Prim(kind)
    return STR if "any" not in checker.cats(t) else t


def _type_date(checker, e, a):
    _need_time(checker, e, 0, a[0])
    return DATE


def _type_datetime(checker, e, a):
    _need_time(checker, e, 0, a[0])
    return DATETIME


def _type_add_days(checker, e, a):
    ok = _need_time(checker, e, 0, a[0])
    checker.need(e, 1, a[1], ("num",), "a number of days")
    return _same_kind(checker, a[0]) if ok else STR


def _type_add_hours(checker, e, a):
    if time_kind(checker, a[0]) == "date":
        checker.mismatch("add_hours() needs a datetime, got a date", e.args[0].span,
                         "a date has no hours: datetime(d) is its midnight")
    else:
        _need_time(checker, e, 0, a[0])
    checker.need(e, 1, a[1], ("num",), "a number of hours")
    return DATETIME


def _type_between(checker, e, a):
    for i in (0, 1):
        _need_time(checker, e, i, a[i])
    if mixed(checker, a[0], a[1]):
        checker.mismatch(f"{e.func}() of a date and a datetime", e.span, MIXED_HINT)
    kinds = {time_kind(checker, a[0]), time_kind(checker, a[1])}
    if e.func == "hours_between" or "datetime" in kinds:
        return FLOAT
    return INT if kinds == {"date"} else union(INT, FLOAT)


TYPE_RULES: dict[str, Callable[[Any, Any, list[Type]], Type]] = {
    "date": _type_date, "datetime": _type_datetime, "add_days": _type_add_days,
    "add_hours": _type_add_hours, "days_between": _type_between, "hours_between": _type_between,
}
