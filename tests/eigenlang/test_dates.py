"""Date and datetime arithmetic in the expression language (eigenlang/expr/dates.py): typed
`date`/`datetime`, ISO strings at run time, and a date never silently meets a datetime."""

from __future__ import annotations

import pytest

from eigenlang.diagnostics import Origin, Span
from eigenlang.expr import EvalError, check_expr, compile_expr, parse_expr
from eigenlang.types import ANY, BOOL, DATE, DATETIME, FLOAT, INT, STR, Field, ModelT, Schema

ORIGIN = Origin.at(Span("domain.yaml", 3, 10))
SCHEMA = Schema(root="DB", models={"DB": {"stays": Field(ModelT("Stay"))},
                                   "Stay": {"check_in": Field(DATE), "booked": Field(DATETIME),
                                            "note": Field(STR)}})
SCOPE = {"now": DATETIME, "d": DATE, "s": STR, "n": INT, "x": ANY, "stay": ModelT("Stay")}
ENV = {"now": "2024-05-15T15:00:00", "d": "2024-05-20", "s": "2024-05-14 09:30:00", "n": 3, "x": None,
       "stay": {"check_in": "2024-05-17", "booked": "2024-05-15 03:00:00", "note": "hi"}}


def typed(text: str):
    e, diags = parse_expr(text, ORIGIN)
    assert not diags, diags
    return check_expr(e, SCOPE, SCHEMA)


def run(text: str, env=ENV):
    e, diags = parse_expr(text, ORIGIN)
    assert not diags, diags
    return compile_expr(e)(env)


@pytest.mark.parametrize("text, expected", [
    ("date(now)", "2024-05-15"),
    ("date(d)", "2024-05-20"),
    ("datetime(d)", "2024-05-20T00:00:00"),
    ("datetime(s)", "2024-05-14T09:30:00"),  # a space or a 'T': both read, 'T' written
    ("add_days(d, 2)", "2024-05-22"),
    ("add_days(d, -20)", "2024-04-30"),
    ("add_days(now, 1.5)", "2024-05-17T03:00:00"),
    ("add_hours(now, 30)", "2024-05-16T21:00:00"),
    ("days_between(d, date(now))", 5),
    ("days_between(date(now), d)", -5),
    ("days_between(now, s)", pytest.approx(1 + 5.5 / 24)),
    ("hours_between(now, s)", 29.5),
    ("hours_between(now, stay.booked) <= 24", True),
    ("hours_between(datetime(stay.check_in), now) >= 48", False),
    ("date(now) < d and add_days(date(now), n) <= d", True),
])
def test_values(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize("text, type_", [
    ("date(now)", DATE), ("datetime(d)", DATETIME), ("add_days(d, 1)", DATE),
    ("add_days(now, 1)", DATETIME), ("add_days(s, 1)", STR), ("add_hours(s, 1)", DATETIME),
    ("days_between(d, stay.check_in)", INT), ("days_between(now, s)", FLOAT),
    ("hours_between(d, d)", FLOAT), ("hours_between(now, stay.booked) <= 24", BOOL),
    ("add_days(x, 1)", ANY),
])
def test_types(text, type_):
    t, diags = typed(text)
    assert not diags, [d.render() for d in diags]
    assert t == type_


@pytest.mark.parametrize("text, col, words", [
    # a date compared with a datetime would compare their text: '2024-05-15' < '2024-05-15T...'
    ("d < now", 12, "comparing a date with a datetime with '<'"),
    ("stay.check_in >= now", 24, "comparing a date with a datetime"),
    ("d == now", 12, "comparing a date with a datetime with '=='"),
    ("days_between(d, now)", 10, "days_between() of a date and a datetime"),
    ("hours_between(stay.booked, stay.check_in)", 10, "hours_between() of a date and a datetime"),
    ("add_hours(d, 1)", 20, "add_hours() needs a datetime, got a date"),
    ("add_days(n, 1)", 19, "add_days() needs a date, a datetime or an ISO string, got int"),
    ("add_days(d, 'two')", 22, "add_days() needs a number of days, got str"),
])
def test_type_errors(text, col, words):
    _, diags = typed(text)
    assert [d.code for d in diags] == ["E301"], [d.render() for d in diags]
    assert words in diags[0].message and diags[0].span.col == col
    if "comparing" in words or "of a date" in words:
        assert "date(x)" in diags[0].hint


def test_a_str_may_be_compared_with_either():
    """A str is untyped ISO text: nothing is claimed, nothing is reported."""
    for text in ("s < now", "s < d", "date(s) < d", "stay.note < now"):
        assert typed(text)[1] == []


@pytest.mark.parametrize("text, env, words", [
    ("days_between(s, x)", dict(ENV, x="2024-05-15"), "of a datetime ('2024-05-14 09:30:00') and a date"),
    ("add_hours(x, 1)", dict(ENV, x="2024-05-15"), "a date has no hours"),
    ("add_days(x, 1.5)", dict(ENV, x="2024-05-15"), "whole number of days"),
    ("date(x)", dict(ENV, x="15/05/2024"), "'15/05/2024' is not an ISO date or datetime"),
    ("date(x)", dict(ENV, x=None), "needs an ISO date or datetime string, got none"),
    ("date(x)", dict(ENV, x="2024-05-15" + " " * 100), "longer than 64 characters"),
    ("add_days(x, 10 ** 9)", dict(ENV, x="2024-05-15"), "out of range"),
    ("add_days(x, 3000000)", dict(ENV, x="2024-05-15"), "outside the years 1 to 9999"),
    ("hours_between(x, now)", dict(ENV, x="2024-05-15T10:00:00+02:00"), "mix a time zone with none"),
])
def test_run_time_errors(text, env, words):
    with pytest.raises(EvalError) as info:
        run(text, env)
    assert words in info.value.message
    assert info.value.span.line == 3


def test_a_constant_that_is_no_date_is_refused_when_checked():
    _, diags = typed("add_days('2024-02-30', 1) > d")
    assert [d.code for d in diags] == ["E006"]
    assert "'2024-02-30' is not an ISO date" in diags[0].message
