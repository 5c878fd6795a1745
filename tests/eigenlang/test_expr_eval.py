"""Expression evaluation: values, run-time errors with spans, and the step budget."""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import pytest

from eigenlang.diagnostics import Origin, Span
from eigenlang.expr import Attr, Call, EvalError, Name, compile_expr, parse_expr

ORIGIN = Origin.at(Span("domain.yaml", 7, 15))

DB = {
    "users": {"u1": {"name": "Ann", "age": 30, "tags": ["a", "b"], "email": None},
              "u2": {"name": "Bob", "age": 41, "tags": [], "email": "b@x.org"}},
    "flights": ({"n": "HAT1", "price": 100.5, "status": "flown"},
                {"n": "HAT2", "price": 50, "status": "scheduled"}),   # a tuple: any Sequence
}
ENV = {"db": DB, "uid": "u1", "n": 7, "xs": [3, 1, 2], "s": "Hello", "t": True, "nothing": None,
       "calls": [{"name": "book", "kind": "write", "confirmed": True},
                 {"name": "get", "kind": "read", "confirmed": False}]}


def run(text: str, env=ENV, budget: int = 100_000):
    e, diags = parse_expr(text, ORIGIN)
    assert not diags, diags
    return compile_expr(e)(env, budget)


def fails(text: str, env=ENV, budget: int = 100_000) -> tuple[str, int]:
    with pytest.raises(EvalError) as info:
        run(text, env, budget)
    return info.value.message, info.value.span.col


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 * 3", 7), ("7 // 2", 3), ("-7 // 2", -4), ("7 % 3", 1), ("7 / 2", 3.5),
    ("2 ** 10", 1024), ("2 ** -1", 0.5), ("2.0 ** 0.5", 2.0 ** 0.5), ("-2 ** 2", -4),
    ("'ab' + 'c'", "abc"), ("'ab' * 2", "abab"), ("2 * [0]", [0, 0]), ("[1] + [2]", [1, 2]),
    ("1 < 2 < 3", True), ("3 > 2 > 2", False), ("'a' < 'b'", True),
    ("1 == 1.0", True), ("true == 1", False), ("none == none", True), ("[1, 2] == [1, 2]", True),
    ("db.flights == db.flights", True), ("[1, [2]] == [1, [2.0]]", True), ("'1' == 1", False),
    ("{} == {}".replace("{} == {}", "db.users.u1 == db.users.u1"), True),
    ("0 and x", 0), ("1 and 2", 2), ("none or 'd'", "d"), ("'' or 0", 0), ("not []", True),
    ("1 if t else 2", 1), ("1 if nothing else 2", 2),
    ("db.users.u1.name", "Ann"), ("db.users[uid]['age']", 30), ("db.flights[-1].n", "HAT2"),
    ("s[0]", "H"), ("s[-1]", "o"), ("xs[1]", 1),
    ("uid in db.users", True), ("'zz' not in db.users", True), ("'ell' in s", True),
    ("2 in xs", True), ("[1] in [[1], [2]]", True), ("true in [1]", False),
    ("len(xs)", 3), ("len(db.users)", 2), ("len(s)", 5),
    ("any(xs)", True), ("all([1, 0])", False), ("sum(xs)", 6), ("sum([0.5, 1])", 1.5),
    ("min(xs)", 1), ("max(xs)", 3), ("min(4, 2, 9)", 2), ("max('a', 'b')", "b"),
    ("keys(db.users)", ["u1", "u2"]), ("values(db.users)[1].name", "Bob"),
    ("get(db.users, 'zz')", None), ("get(db.users, 'zz', 0)", 0), ("get(xs, 5, -1)", -1),
    ("get(xs, -1)", 2), ("lower(s)", "hello"), ("upper(s)", "HELLO"),
    ("contains(s, 'ell')", True), ("contains(xs, 3)", True), ("startswith(s, 'He')", True),
    ("abs(-3)", 3), ("round(2.567, 2)", 2.57), ("round(2.5)", 2), ("str(12)", "12"),
    ("str(true)", "true"), ("str(none)", "none"), ("str([1, 'a'])", '[1, "a"]'),
    ("int('42')", 42), ("int(3.9)", 3), ("int(t)", 1), ("float('1.5')", 1.5), ("float(2)", 2.0),
    ("any(u in db.users: u.age > 40)", True),       # iterating a mapping yields its values
    ("all(u in db.users: u.age > 40)", False), ("count(f in db.flights: f.price > 60)", 1),
    ("sum(f in db.flights: f.price)", 150.5), ("sum(x in []: x)", 0),
    ("all(c in calls: c.kind != 'write' or c.confirmed)", True),
    ("any(x in xs: any(x in [x * 10]: x == 30))", True),   # nested shadowing
    ("count(u in db.users: len(u.tags) == 0)", 1),
])
def test_values(text, expected):
    got = run(text)
    assert got == expected and type(got) is type(expected)


def test_binder_does_not_leak_and_restores_shadowed_names():
    assert run("[any(n in xs: n > 2), n]") == [True, 7]


@pytest.mark.parametrize("text, message, col", [
    ("db.users.zz", "no key 'zz' in db.users", 24),
    ("db.users[uid].nope", "no key 'nope' in db.users[uid]", 29),
    ("nothing.x", "cannot look up key 'x' in none (nothing)", 23),
    ("xs[5]", "index 5 is out of range for xs (length 3)", 17),
    ("xs['a']", "list index must be int, got str", 17),
    ("'a' + 1", "cannot apply '+' to str and int", 19),
    ("n < 'a'", "cannot compare int and str with '<'", 17),
    ("nothing < 1", "cannot compare none and int with '<'", 23),
    ("1 / 0", "division by zero", 17), ("1 // 0", "division by zero", 17),
    ("5 % 0", "division by zero", 17), ("0 ** -1", "zero cannot be raised to a negative power", 17),
    ("(-8) ** 0.5", "result is not a real number (complex)", 20),
    ("1e300 * 1e300", "number result is out of range", 21),
    ("2.0 ** 5000", "number result is out of range", 19),
    ("-s", "unary '-' needs a number, got str", 15),
    ("3 in n", "'in' needs a list, dict or string on the right, got int", 17),
    ("1 in s", "'in' on a string needs a string on the left, got int", 17),
    ("len(n)", "len() needs a list, dict or string, got int", 15),
    ("min([])", "min() of an empty collection", 15),
    ("min([1, 'a'])", "cannot compare int and str with 'min()'", 15),
    ("sum(['a'])", "sum() needs a number, got str", 15),
    ("any(c in s: c)", "any() needs a list or dict to iterate over, got str", 24),
    ("int('x1')", "cannot convert 'x1' to int", 15),
    ("float('inf')", "cannot convert 'inf' to float", 15),
    ("undefined", "unknown name 'undefined'", 15),
    ("lenn(xs)", "unknown function 'lenn'", 15),
    ("count(xs)", "count() needs a binder: count(x in xs: ...)", 15),
])
def test_runtime_errors(text, message, col):
    assert fails(text) == (message, col)


def test_error_renders_with_position():
    with pytest.raises(EvalError) as info:
        run("db.users.zz")
    assert str(info.value) == "domain.yaml:7:24: no key 'zz' in db.users"


def test_budget():
    assert run("count(x in xs: x > 1)", budget=50) == 2
    message, _ = fails("count(x in xs: x > 1)", budget=5)
    assert message == "evaluation exceeded its budget of 5 steps"
    big = {"xs": list(range(1000))}
    with pytest.raises(EvalError, match="budget"):
        run("all(x in xs: all(y in xs: x + y >= 0))", big)


def test_only_mapping_getitem_is_used():
    class Strict(Mapping):  # a read-only view that exposes nothing but the Mapping protocol
        def __init__(self, data):
            self._data = data

        def __getitem__(self, key):
            v = self._data[key]
            return Strict(v) if isinstance(v, dict) else v

        def __iter__(self):
            return iter(self._data)

        def __len__(self):
            return len(self._data)

        secret = "not reachable"

    env = {"db": Strict(DB)}
    assert run("db.users.u1.age + len(db.users)", env) == 32
    assert fails("db.secret", env)[0] == "no key 'secret' in db"
    assert fails("db.users.u1.items", env)[0] == "no key 'items' in db.users.u1"


def test_misbehaving_mapping_becomes_eval_error():
    class Broken(Mapping):
        def __getitem__(self, key):
            raise RuntimeError("boom")

        def __iter__(self):
            raise RuntimeError("boom")

        def __len__(self):
            return 1

    with pytest.raises(EvalError, match="RuntimeError: boom"):
        run("any(v in x: v)", {"x": Broken()})


def test_hand_built_forbidden_access_fails_at_run_time():
    for expr in [Attr(Name("x"), "__class__"), Name("__builtins__"), Call("get", (Name("x"),
                                                                                  Name("k")))]:
        with pytest.raises(EvalError, match="'_'"):
            compile_expr(expr)({"x": {"__class__": 1}, "__builtins__": 1, "k": "_hidden"})


def test_compiled_is_reusable_and_picklable():
    e, _ = parse_expr("sum(x in xs: x) * n", ORIGIN)
    compiled = compile_expr(e)
    assert [compiled({"xs": [i], "n": 2}) for i in range(3)] == [0, 2, 4]
    clone = pickle.loads(pickle.dumps(compiled))
    assert clone({"xs": [1, 2], "n": 3}) == 9
    err = pickle.loads(pickle.dumps(EvalError("m", Span("f", 1, 2))))
    assert (err.message, err.span) == ("m", Span("f", 1, 2))
