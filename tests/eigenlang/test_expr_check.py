"""Expression type checking: inferred types and every checker diagnostic, with positions."""

from __future__ import annotations

import pytest

from eigenlang.diagnostics import Origin, Span
from eigenlang.expr import Attr, Name, check_expr, parse_expr
from eigenlang.types import (ANY, BOOL, FLOAT, INT, NONE, STR, Field, ListT, ModelT, Schema,
                             parse_type, trajectory_scope, union)

ORIGIN = Origin.at(Span("domain.yaml", 7, 15))


def T(text: str):
    t, diags = parse_type(text, Origin.at(Span()))
    assert not diags, diags
    return t


def schema() -> Schema:
    s = Schema(
        models={
            "DB": {"users": Field(T("dict[str, User]")), "flights": Field(T("dict[str, Flight]")),
                   "by_num": Field(T("dict[int, str]"))},
            "User": {"name": Field(STR), "age": Field(INT), "tier": Field(T("Tier")),
                     "email": Field(T("optional[str]")), "tags": Field(T("list[str]"))},
            "Flight": {"number": Field(STR), "status": Field(T("enum[flown, scheduled]")),
                       "price": Field(FLOAT), "seats": Field(T("dict[Cabin, int]"))},
            "Pet": {"name": Field(STR), "legs": Field(INT)},
        },
        aliases={"Tier": T("enum[regular, gold]"), "Cabin": T("enum[economy, business]")},
        root="DB")
    return s.merged(Schema.builtin_trajectory())


SCOPE = {"db": ModelT("DB"), "uid": STR, "n": INT, "f": FLOAT, "ok": BOOL, "xs": ListT(INT),
         "names": ListT(STR), "a": ANY, "maybe": T("optional[int]"), "who": T("User | Pet"),
         "now": STR, **trajectory_scope()}


def check(text: str):
    e, diags = parse_expr(text, ORIGIN)
    assert not diags, diags
    return check_expr(e, SCOPE, schema())


def typeof(text: str):
    t, diags = check(text)
    assert not diags, [d.render() for d in diags]
    return t


@pytest.mark.parametrize("text, expected", [
    ("1", INT), ("1.5", FLOAT), ("'s'", STR), ("true", BOOL), ("none", NONE),
    ("[1, 2]", ListT(INT)), ("[1, 'a']", ListT(union(INT, STR))), ("[]", ListT(ANY)),
    ("db.users[uid]", ModelT("User")), ("db.users[uid].tier", ModelT("Tier")),
    ("db.users[uid]['age']", INT), ("db.users.someone", ModelT("User")),
    ("db.by_num[3]", STR), ("xs[0]", INT), ("uid[0]", STR),
    ("n + 1", INT), ("n + f", FLOAT), ("n / 2", FLOAT), ("n // 2", INT), ("f // 2", FLOAT),
    ("n ** 2", INT), ("-f", FLOAT), ("'a' + uid", STR), ("xs + [1]", ListT(INT)),
    ("'-' * 3", STR), ("3 * xs", ListT(INT)),
    ("n > 1 and uid == 'x'", BOOL), ("not n", BOOL), ("maybe or 0", INT),
    ("n if ok else f", union(INT, FLOAT)), ("maybe + 1", INT),
    ("len(xs)", INT), ("len(db.users)", INT), ("sum(xs)", INT), ("min(xs)", INT),
    ("max(names)", STR), ("min(n, f)", union(INT, FLOAT)), ("keys(db.users)", ListT(STR)),
    ("values(db.users)", ListT(ModelT("User"))),
    ("get(db.users, uid)", union(ModelT("User"), NONE)),
    ("get(db.users, uid, 0)", union(ModelT("User"), INT)), ("lower(uid)", STR),
    ("contains(uid, 'x')", BOOL), ("contains(names, 'x')", BOOL), ("startswith(now, '2024')", BOOL),
    ("abs(f)", FLOAT), ("round(f)", INT), ("round(f, 2)", FLOAT), ("str(xs)", STR),
    ("int('3')", INT), ("float(n)", FLOAT), ("any(xs)", BOOL),
    ("any(u in db.users: u.age > 18)", BOOL), ("count(x in xs: x > 1)", INT),
    ("sum(fl in db.flights: fl.price)", FLOAT), ("sum(x in xs: x)", INT),
    ("all(c in calls: c.kind != 'write' or c.confirmed)", BOOL),
    ("any(m in messages: m.role == 'user' and contains(lower(m.content), 'yes'))", BOOL),
    ("a.b.c[0] + 1", ANY),
    ("who.name", STR), ("who.legs", INT),  # a field of at least one option of the union
    ("db.flights['f1'].seats['economy']", INT),
    ("db.flights['f1'].status in ['flown', 'scheduled']", BOOL),
    ("uid in db.users", BOOL), ("'x' in uid", BOOL), ("n in xs", BOOL), ("a in a", BOOL),
    ("0 < n <= 10", BOOL), ("now >= '2024-05-01'", BOOL),
])
def test_types(text, expected):
    assert typeof(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("nme", [("E205", "unknown name 'nme'", 15, "did you mean 'names'?")]),
    ("dbb.users", [("E205", "unknown name 'dbb'", 15, "did you mean 'db'?")]),
    ("len", [("E205", "unknown name 'len'", 15, "'len' is a function: call it as len(...)")]),
    ("db.users[uid].agee > 1", [("E204", "unknown field 'agee' on User", 29,
                                 "did you mean 'age'?")]),
    ("db.userz", [("E204", "unknown field 'userz' on DB", 18, "did you mean 'users'?")]),
    ("db.users[uid]['nmae']", [("E204", "unknown field 'nmae' on User", 29,
                                "did you mean 'name'?")]),
    ("who.wings", [("E204", "unknown field 'wings' on User | Pet", 19, "known: age, email, legs, "
                    "name, tags, tier")]),
    ("lenn(xs)", [("E206", "unknown function 'lenn'", 15, "did you mean 'len'?")]),
    ("filter(x in xs: x)", [("E206", "unknown function 'filter'", 15,
                            "known: all, any, count, sum")]),
    ("len(xs, xs)", [("E304", "len() takes 1 argument, got 2", 15, None)]),
    ("get(db.users)", [("E304", "get() takes 2 to 3 arguments, got 1", 15, None)]),
    ("count(xs)", [("E304", "count() needs a binder", 15, "write count(x in xs: condition)")]),
    ("len(x in xs: x)", [("E304", "len() does not take a binder ('x in ...:')", 15, None)]),
    ("uid == 1", [("E301", "comparing str with int with '==' is always false", 19, None)]),
    ("ok != 1", [("E301", "comparing bool with int with '!=' is always true", 18, None)]),
    ("uid < n", [("E301", "cannot order str and int with '<'", 19,
                  "'<' and friends compare two numbers or two strings")]),
    ("'a' + 1", [("E301", "cannot add str and int with '+'", 19, None)]),
    ("uid - 'a'", [("E301", "cannot subtract str and str with '-'", 19, None)]),
    ("-uid", [("E301", "unary '-' needs a number, got str", 15, None)]),
    ("n in n", [("E301", "'in' needs a list, dict or string on the right, got int", 17, None)]),
    ("n in names", [("E301", "cannot look for int in list[str]", 17, None)]),
    ("n in db.users", [("E301", "cannot look for int in the keys of dict[str, User]", 17, None)]),
    ("db.users[3]", [("E301", "key of dict[str, User] must be str, got int", 24, None)]),
    ("db.by_num['x']", [("E301", "key of dict[int, str] must be int, got str", 25, None)]),
    ("xs['a']", [("E301", "list index must be int, got str", 18, None)]),
    ("n[0]", [("E301", "int cannot be indexed", 16, None)]),
    ("n.x", [("E301", "int has no field 'x'", 17, None)]),
    ("db.flights['f'].status == 'flwn'", [("E301", "'flwn' is not a value of enum[flown, "
                                           "scheduled]", 41, "did you mean 'flown'?")]),
    ("db.flights['f'].seats['econ']", [("E301", "'econ' is not a value of enum[economy, "
                                        "business]", 37, "did you mean 'economy'?")]),
    ("db.users[uid].tier in ['gold', 'platinum']", [
        ("E301", "'platinum' is not a value of enum[regular, gold]", 46, None)]),
    ("sum(names)", [("E301", "sum() adds numbers, got a list of str", 19, None)]),
    ("sum(x in names: x)", [("E301", "sum() adds numbers, got str", 31, None)]),
    ("any(c in n: c)", [("E301", "any() needs a list or dict to iterate over, got int", 24, None)]),
    ("len(n)", [("E301", "len() needs a list, dict or string, got int", 19, None)]),
    ("lower(n)", [("E301", "lower() needs a string, got int", 21, None)]),
    ("keys(xs)", [("E301", "keys() needs a dict, got list[int]", 20, None)]),
    ("abs('x')", [("E301", "abs() needs a number, got str", 19, None)]),
    ("min(names, 1)", [("E301", "min() compares numbers or strings, got list[str]", 19, None)]),
    ("max(xs)", []), ("max(x in xs: x)", [("E304", "max() does not take a binder ('x in ...:')",
                                           15, None)]),
])
def test_diagnostics(text, expected):
    t, diags = check(text)
    assert t is not None
    assert [(d.code, d.message, d.span.col, d.hint) for d in diags] == expected


def test_any_is_permissive():
    for text in ["a + 1", "a.b.c", "a[0][1]", "a < 3", "len(a)", "any(v in a: v.x)", "-a",
                 "a == 'x'", "sum(a)", "keys(a)", "lower(a) + 'x'", "'x' in a"]:
        assert check(text)[1] == [], text


def test_collects_all_errors_without_cascades():
    t, diags = check("nme + db.userz + lenn(1) + (uid < 3)")
    assert [d.code for d in diags] == ["E205", "E204", "E206", "E301"]
    assert t == ANY


def test_binder_scoping():
    assert check("any(u in db.users: u.nam == uid)")[1][0].message == "unknown field 'nam' on User"
    # the binder is only visible inside the body
    assert [d.code for d in check("any(u in db.users: true) and u.age > 1")[1]] == ["E205"]
    # shadowing a scope name inside the body
    assert typeof("all(n in names: len(n) > 0)") == BOOL


def test_hand_built_forbidden_names_are_rejected():
    _, diags = check_expr(Attr(Name("db"), "__dict__"), SCOPE, schema())
    assert [d.code for d in diags] == ["E209"]
    _, diags = check_expr(Name("_x"), {"_x": INT}, schema())
    assert [d.code for d in diags] == ["E209"]


def test_hand_built_deep_tree_is_rejected_not_recursed():
    e = Name("n")
    for _ in range(5000):
        e = Attr(e, "x")
    t, diags = check_expr(e, SCOPE, schema())
    assert t == ANY and [d.code for d in diags] == ["E005"]
