"""Expression parsing: AST shapes, precise spans, syntax errors and static limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark import Lark

from eigenlang.diagnostics import Origin, Span
from eigenlang.expr import (Attr, BinOp, BoolOp, Call, Compare, IfExp, Index, ListLit, Literal,
                            Name, Quantifier, Unary, free_names, parse_expr, to_source, walk)

ORIGIN = Origin.at(Span("domain.yaml", 7, 15))  # the expression starts at line 7, column 15


def P(text: str):
    e, diags = parse_expr(text, ORIGIN)
    assert not diags, [d.render() for d in diags]
    return e


def errors(text: str) -> list[tuple[str, str, int]]:
    e, diags = parse_expr(text, ORIGIN)
    assert e is None
    return [(d.code, d.message, d.span.col) for d in diags]


def test_grammar_builds_in_lark_strict_mode():
    pytest.importorskip("interegular", reason="lark's strict mode needs lark[interegular]")
    grammar = (Path(__file__).resolve().parents[2] / "eigenlang/grammar/expr.lark").read_text()
    Lark(grammar, parser="lalr", lexer="basic", strict=True)


x, y, xs = Name("x"), Name("y"), Name("xs")


@pytest.mark.parametrize("text, expected", [
    ("1", Literal(1)), ("1.5", Literal(1.5)), ("2e3", Literal(2000.0)),
    ("'a\\'b'", Literal("a'b")), ('"tab\\there"', Literal("tab\there")),
    ("true", Literal(True)), ("False", Literal(False)), ("none", Literal(None)),
    ("None", Literal(None)),
    ("[]", ListLit(())), ("[1, 'a',]", ListLit((Literal(1), Literal("a")))),
    ("x.y", Attr(x, "y")), ("x['k']", Index(x, Literal("k"))),
    ("x.y[0].z", Attr(Index(Attr(x, "y"), Literal(0)), "z")),
    ("-x ** 2", Unary("-", BinOp("**", x, Literal(2)))),
    ("2 ** -1", BinOp("**", Literal(2), Unary("-", Literal(1)))),
    ("2 ** 3 ** 2", BinOp("**", Literal(2), BinOp("**", Literal(3), Literal(2)))),
    ("1 + 2 * 3", BinOp("+", Literal(1), BinOp("*", Literal(2), Literal(3)))),
    ("(1 + 2) * 3", BinOp("*", BinOp("+", Literal(1), Literal(2)), Literal(3))),
    ("x // 2 % 3", BinOp("%", BinOp("//", x, Literal(2)), Literal(3))),
    ("not x == y", Unary("not", Compare("==", x, y))),
    ("x not in xs", Compare("not in", x, xs)),
    ("0 <= x < 10", BoolOp("and", (Compare("<=", Literal(0), x), Compare("<", x, Literal(10))))),
    ("x and y and xs or x", BoolOp("or", (BoolOp("and", (x, y, xs)), x))),
    ("x if y else 0", IfExp(x, y, Literal(0))),
    ("len(xs)", Call("len", (xs,))),
    ("get(x, 'k', 0)", Call("get", (x, Literal("k"), Literal(0)))),
    ("any(v in xs: v > 1)", Quantifier("any", "v", xs, Compare(">", Name("v"), Literal(1)))),
    ("sum(v in x.items: v.price)",
     Quantifier("sum", "v", Attr(x, "items"), Attr(Name("v"), "price"))),
    ("foo()", Call("foo", ())),
])
def test_ast_shapes(text, expected):
    assert P(text) == expected


def test_literal_kinds_are_distinct():
    assert P("1") != P("true") and P("0") != P("false") and P("1") != P("1.0")


def test_spans_point_at_the_deciding_token():
    e = P("db.users[uid].nmae == 'x'")
    assert e.span == Span("domain.yaml", 7, 15 + 19, 7, 15 + 21)            # the '=='
    attr = e.left
    assert (attr.span.col, attr.span.end_col) == (15 + 14, 15 + 18)          # 'nmae'
    assert attr.obj.span.col == 15 + 8                                        # '['
    assert e.right.span.col == 15 + 22                                        # the literal
    q = P("all(c in calls: c.ok)")
    assert q.span.col == 15 and q.var_span.col == 15 + 4


def test_spans_through_a_multiline_origin():
    origin = Origin("d.yaml", ((10, 9), (11, 9), (12, 9)))
    e, _ = parse_expr("len(xs) > 0\nand\n  x.y", origin)
    assert e.values[1].span == Span("d.yaml", 12, 9 + 4, 12, 9 + 5)


@pytest.mark.parametrize("text, expected", [
    ("", [("E002", "empty expression", 15)]),
    ("a = b", [("E002", "unexpected character '='", 17)]),
    ("a && b", [("E002", "unexpected character '&'", 17)]),
    ("f(", [("E002", "unexpected end of expression", 17)]),
    ("(1 + 2", [("E002", "unexpected end of expression", 21)]),
    ("a b", [("E002", "unexpected 'b'", 17)]),
    ("'abc", [("E002", "unterminated string", 15)]),
    ("s == not in xs", [("E002", "unexpected 'not'", 20)]),   # keywords never lex as names
    ("x == if", [("E002", "unexpected 'if'", 20)]),
    ("a.and", [("E002", "unexpected 'and'", 17)]),
    ("x.lower()", [("E002", "unexpected '('", 22)]),
    ("[v for v in xs]", [("E002", "unexpected 'for'", 18)]),
    ("any(x: y)", [("E002", "expected 'name in collection' before ':' in any(...)", 15)]),
    ("x.__class__", [("E209", "field '__class__' starts with '_'", 17)]),
    ("_secret + 1", [("E209", "name '_secret' starts with '_'", 15)]),
    ("x['_k']", [("E209", "field '_k' starts with '_'", 17)]),
    ("any(_v in xs: 1)", [("E209", "name '_v' starts with '_'", 19)]),
    ("1" * 79, [("E005", "integer literal is too large", 15)]),
    (str(2**256), [("E005", "integer literal is too large", 15)]),
    ("1e999", [("E005", "number literal is out of range", 15)]),
    ("x" * 10_001, [("E005", "expression is 10001 characters long (at most 10000)", 15)]),
    ("(" * 101 + "1" + ")" * 101, [("E005", "brackets nested more than 100 deep", 115)]),
    ("-" * 150 + "1", [("E005", "expression is nested more than 100 levels deep", 15)]),
])
def test_errors(text, expected):
    assert errors(text) == expected


def test_hints():
    hints = {t: parse_expr(t, ORIGIN)[1][0].hint
             for t in ["a = b", "a || b", "f(", "a b", "a.", "(a"]}
    assert hints == {"a = b": "did you mean '=='?", "a || b": "did you mean 'or'?",
                     "f(": "expected an expression", "a b": "expected an operator",
                     "a.": "expected a name", "(a": "expected ')'"}


def test_limits_at_the_edge_are_accepted():
    P("(" * 100 + "1" + ")" * 100)
    assert P("not_x + iff + truex + inx") is not None  # keywords only as whole words
    P(str(2**256 - 1))
    P(" and ".join(["x"] * 1000))  # flattened: shallow however long
    P("'((((' + \"[[[[\"" + " + '('" * 90)  # brackets inside strings do not count


def test_to_source_round_trips():
    for text in ["-x ** 2", "(-x) ** 2", "2 ** -1", "(a + b) * c", "a - (b - c)",
                 "not a in b", "(not a) in b", "x if c else (y if d else z)",
                 "(x if c else y) + 1", "all(c in calls: c.kind != 'write' or c.confirmed)",
                 "a or b and c", "(a or b) and c", "[1, 'it\\'s', none, true]", "x.y[0]['k']"]:
        e = P(text)
        assert P(to_source(e)) == e, text


def test_walk_and_free_names():
    e = P("any(v in xs: v.n > limit) and len(other) > 0")
    assert free_names(e) == {"xs", "limit", "other"}
    assert sum(isinstance(n, Name) for n in walk(e)) == 4
