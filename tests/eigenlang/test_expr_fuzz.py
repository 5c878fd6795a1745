"""Fuzzing the whole expression pipeline: for any text, parse → check → compile → eval
raises nothing but EvalError (at evaluation), and printing a parsed AST parses back to it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eigenlang.diagnostics import Diagnostic, Origin, Span
from eigenlang.expr import EvalError, check_expr, compile_expr, parse_expr, to_source
from eigenlang.types import ANY, INT, STR, Field, ListT, ModelT, Schema, parse_type

ORIGIN = Origin.at(Span("fuzz.yaml", 3, 9))
SETTINGS = settings(max_examples=2000, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _t(text: str):
    return parse_type(text, ORIGIN)[0]


SCHEMA = Schema(models={"DB": {"users": Field(_t("dict[str, User]")), "n": Field(INT)},
                        "User": {"name": Field(STR), "age": Field(INT),
                                 "tags": Field(_t("list[str]")),
                                 "tier": Field(_t("enum[gold, silver]"))}}, root="DB")
SCOPE = {"db": ModelT("DB"), "xs": ListT(INT), "s": STR, "n": INT, "a": ANY, "uid": STR}
USERS = {"u1": {"name": "Ann", "age": 3, "tags": ["x"], "tier": "gold"},
         "u2": {"name": "Bo", "age": 70, "tags": [], "tier": "silver"}}
ENVS = [  # well-typed, and ill-typed values behind `any` and even behind declared types
    {"db": {"users": USERS, "n": 2}, "xs": [1, 5, 9], "s": "abc", "n": 4, "a": None, "uid": "u1"},
    {"db": {"users": {}, "n": 0}, "xs": [], "s": "", "n": 0, "a": {"b": [1, {"c": "d"}]},
     "uid": "zz"},
    {"db": [1, 2], "xs": "oops", "s": 5, "n": 1.5, "a": [[], {}, "", 0, True], "uid": None},
]

VALID = [
    "all(c in xs: c > 0 or c == -1)", "uid in db.users and db.users[uid].age >= 18",
    "count(u in db.users: u.tier == 'gold') > len(xs) // 2", "sum(x in xs: x * 2) - n ** 2",
    "get(db.users, uid, none) == none", "lower(s) + upper(str(n)) if n else 'no'",
    "any(u in db.users: contains(u.name, 'A') and not startswith(u.name, 'B'))",
    "max(xs) if xs else min(1, 2.5, -3)", "[1, 'a', true, none][n % 4]", "a.b[1].c",
    "round(abs(-n / 3), 2) <= float('1.5') != int('2')", "keys(db.users)[0] in values(db.users)",
    "0 <= n < 10 and s not in ['x', \"y\"]", "sum(a) + sum(v in a: v)", "a[a] * a ** -a",
]
TOKENS = [
    "a", "b", "xs", "db", "users", "uid", "n", "s", "v", "_", "__x", "0", "1", "2.5", "1e9",
    "'q'", '"w"', "'", '"', "\\", " ", "\n", "(", ")", "[", "]", ",", ":", ".", "+", "-", "*",
    "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "=", "!", "and", "or", "not",
    " in ", "if", "else", "true", "None", "len(", "any(", "all(", "count(", "sum(", "min(",
    "max(", "keys(", "values(", "get(", "lower(", "str(", "int(", "float(", "round(", "abs(",
    "contains(", "startswith(", "upper(", "v in xs:", "9" * 30, "é", "\x00", "#", "@", "{", "}",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
any_text = st.text(max_size=80)
edits = st.lists(st.tuples(st.integers(0, 120), st.integers(0, 6), st.sampled_from(TOKENS)),
                 min_size=1, max_size=4)
mutated = st.tuples(st.sampled_from(VALID), edits).map(
    lambda p: _mutate(p[0], p[1]))


# well-formed expressions built from the grammar, so that evaluation is exercised in depth
LEAVES = ["a", "xs", "db", "s", "n", "uid", "v", "0", "1", "-1", "2.5", "'x'", "''", "true",
          "none", "[]", "db.users", "1e300", "9" * 70, "[1, 2]", "'gold'"]
BINARY = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "in",
          "not in", "and", "or"]
FUNCS = ["len", "any", "all", "sum", "min", "max", "keys", "values", "get", "lower", "upper",
         "contains", "startswith", "abs", "round", "str", "int", "float", "nope"]
FIELDS = ["users", "name", "age", "tags", "tier", "n", "b", "c"]


def _compound(sub: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(sub, st.sampled_from(BINARY), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "not "]), sub).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sub, st.sampled_from(FIELDS)).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(sub, sub).map(lambda t: f"({t[0]})[{t[1]}]"),
        st.tuples(st.sampled_from(FUNCS), st.lists(sub, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(st.sampled_from(["any", "all", "count", "sum"]), sub, sub).map(
            lambda t: f"{t[0]}(v in {t[1]}: {t[2]})"),
        st.tuples(sub, sub, sub).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(sub, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
    )


generated = st.recursive(st.sampled_from(LEAVES), _compound, max_leaves=25)


def _mutate(text: str, ops: list[tuple[int, int, str]]) -> str:
    for pos, cut, insert in ops:
        pos %= len(text) + 1
        text = text[:pos] + insert + text[pos + cut:]
    return text


def exercise(text: str) -> None:
    expr, diags = parse_expr(text, ORIGIN)
    assert all(isinstance(d, Diagnostic) for d in diags)
    if expr is None:
        assert diags, "a rejected expression must say why"
        return
    again, _ = parse_expr(to_source(expr, limit=1_000_000), ORIGIN)
    assert again == expr, to_source(expr)
    _, diags = check_expr(expr, SCOPE, SCHEMA)
    assert all(isinstance(d, Diagnostic) for d in diags)
    compiled = compile_expr(expr)
    for env in ENVS:
        try:
            compiled(env, budget=5_000)
        except EvalError as e:
            assert e.span is not None and e.message


def test_valid_corpus_parses_and_checks():
    for text in VALID:
        expr, diags = parse_expr(text, ORIGIN)
        assert expr is not None and not diags, text
        exercise(text)


@SETTINGS
@given(st.one_of(token_soup, any_text))
def test_random_text_never_raises(text):
    exercise(text)


@SETTINGS
@given(mutated)
def test_mutated_expressions_never_raise(text):
    exercise(text)


@SETTINGS
@given(generated)
def test_generated_expressions_never_raise(text):
    exercise(text)
