"""`eigen check` on a domain, statically (nothing imported): implementations' parameters
against the declared params (E210), declarative tools (`impl: {return: EXPR}`) typed against
`returns:`, hints without `_private` helpers, and every independent error reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

from eigenlang import load_domain
from eigenlang.compiler import check_file
from eigenlang.declarative import ExprImpl
from runtime.env import Environment

HEAD = """\
eigenlang: 1
domain: d
now: "2024-05-15T15:00:00"
database:
  root: DB
  models:
    DB: {users: "dict[str, User]"}
    User: {user_id: str, age: int, joined: date}
  generate: gen.py:build
"""
GEN = "def build(seed, size=1.0):\n    return {'users': {'u1': {'user_id': 'u1', 'age': 30, 'joined': '2020-01-02'}}}\n"


def domain(tmp_path: Path, tools: str, code: str = "", gen: str = GEN) -> Path:
    (tmp_path / "domain.yaml").write_text(HEAD + "tools:\n" + textwrap.indent(textwrap.dedent(tools), "  "))
    (tmp_path / "tools.py").write_text(textwrap.dedent(code))
    (tmp_path / "gen.py").write_text(gen)
    return tmp_path / "domain.yaml"


def diags_of(path: Path) -> list[tuple[int, int, str, str]]:
    return [(d.span.line, d.span.col, d.code, d.message) for d in check_file(path).sorted()]


def test_parameters_that_do_not_fit_are_located(tmp_path):
    path = domain(tmp_path, """\
        get_user:
          kind: read
          params: {user_id: str, verbose: {type: bool, default: false}}
          impl: tools.py:get_user
        nothing:
          kind: read
          params: {user_id: str}
          impl: tools.py:no_ctx
        positional:
          kind: read
          params: {user_id: str}
          impl: tools.py:positional
        fine:
          kind: read
          params: {user_id: str, extra: int}
          impl: tools.py:fine
        """, """\
        def get_user(ctx, uid, verbose, extra):
            return ctx.db.users[uid]
        def no_ctx():
            pass
        def positional(ctx, user_id, /):
            pass
        def fine(ctx, user_id, limit=3, **more):
            pass
        """)
    got = diags_of(path)
    assert got == [
        (13, 14, "E210", "param 'user_id' is called 'uid' in tools.py: get_user(ctx, uid, verbose, extra)"),
        (14, 11, "E210", "tools.py: get_user(ctx, uid, verbose, extra) requires 'extra', which is not a declared param"),
        (18, 11, "E210", "tools.py: no_ctx() takes no 'ctx'"),
        (21, 14, "E210", "tools.py: 'user_id' of positional(ctx, user_id, /) is positional-only, but params "
                         "are passed by name"),
    ], got


def test_fixed_calling_conventions_are_checked(tmp_path):
    path = domain(tmp_path, """\
        get_user: {kind: read, params: {user_id: str}, impl: tools.py:get_user}
        """, "def get_user(ctx, user_id):\n    pass\n", gen="def build(seed):\n    return {}\n")
    (d,) = check_file(path)
    assert (d.code, d.span.line, d.message) == ("E210", 9, "gen.py: build(seed) cannot be called as build(seed, size)")


def test_hints_leave_private_helpers_out(tmp_path):
    path = domain(tmp_path, "get_user: {kind: read, params: {user_id: str}, impl: tools.py:get_usr}\n",
                  "def _cache(ctx):\n    pass\ndef _helper(ctx):\n    pass\ndef get_user(ctx, user_id):\n    pass\n"
                  "def list_users(ctx):\n    pass\n")
    (d,) = check_file(path)
    assert d.code == "E208" and d.hint == "did you mean 'get_user'?"
    path.write_text(path.read_text().replace("tools.py:get_usr", "tools.py:zzz"))
    (d,) = check_file(path)
    assert d.hint == "known: get_user, list_users"


def test_independent_errors_are_all_reported(tmp_path):
    """An unknown field makes its part `any`; a condition that is still not boolean is
    reported too, and so is each other mistake of the expression."""
    path = domain(tmp_path, """\
        get_user:
          kind: read
          params: {user_id: str, nights: int}
          impl: tools.py:get_user
          requires:
            - check: "db.users[user_id].nme == 'x' and nights + 1"
              error: a
            - check: "db.usres[user_id].age + 'a' > 0 or nights + 'b' > 0"
              error: b
        """, "def get_user(ctx, user_id, nights):\n    pass\n")
    got = diags_of(path)
    assert [(line, col, code) for line, col, code, _ in got] == [
        (16, 16, "E303"), (16, 35, "E204"), (18, 20, "E204"), (18, 59, "E301")], got
    assert got[0][3] == "a condition must be boolean, this is bool | int"


def test_declarative_tools_are_typed_against_returns(tmp_path):
    path = domain(tmp_path, """\
        get_user:
          kind: read
          params: {user_id: str}
          returns: User
          impl: {return: "db.users[user_id]"}
        get_age: {kind: read, params: {user_id: str}, returns: str, impl: {return: "db.users[user_id].age"}}
        maybe: {kind: read, params: {user_id: str}, returns: User, impl: {return: "get(db.users, user_id)"}}
        seniority:
          kind: read
          params: {user_id: str}
          returns: int
          impl: {return: "days_between(date(now), db.users[user_id].joined)"}
        write_it: {kind: write, params: {user_id: str}, impl: {return: "user_id"}}
        odd: {kind: read, impl: 5}
        """)
    got = [(line, code, message) for line, _, code, message in diags_of(path)]
    assert got == [
        (16, "E301", "the expression is int, but the tool returns str"),
        (17, "E301", "the expression is optional[User], but the tool returns User"),
        (23, "E108", "a write tool changes the database, which an expression cannot do"),
        (24, "E105", "wrong value shape for tools.odd.impl"),
    ], got


def test_a_declarative_tool_runs_without_python(tmp_path):
    path = domain(tmp_path, """\
        get_user:
          kind: read
          params: {user_id: str}
          returns: User
          impl: {return: "db.users[user_id]"}
        seniority:
          kind: read
          params: {user_id: str}
          returns: int
          impl: {return: "days_between(date(now), db.users[user_id].joined)"}
        """)  # tools.py is empty: nothing to import
    spec, diags = load_domain(path)
    assert spec is not None, diags.render()
    assert isinstance(spec.tools["get_user"].impl, ExprImpl)
    env = Environment.from_domain(spec, seed=0)
    assert env.call("get_user", {"user_id": "u1"}).content == \
        '{"user_id": "u1", "age": 30, "joined": "2020-01-02"}'
    assert env.call("seniority", {"user_id": "u1"}).content == '"1595"'  # τ²-bench prints str()
    r = env.call("get_user", {"user_id": "u9"})  # no requires: the expression's error is the tool's
    assert (r.ok, r.error, r.content) == (False, "tool_error", "Error: no key 'u9' in db.users")
