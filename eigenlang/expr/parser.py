"""Expression text → AST, with positions mapped through an `Origin` to the program file.

Order of work, chosen so that no input can make the parser recurse deeply or run long:
1. length and bracket-nesting limits on the raw text (E005),
2. lark LALR parse (iterative) of `grammar/expr.lark` (E002 on a syntax error),
3. a non-recursive transformer builds the AST, reporting forbidden `_` names (E209) and
   oversized literals (E005),
4. the height of the AST is bounded (E005), which also bounds every later recursion.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

from ..diagnostics import Diagnostic, Diagnostics, Origin, Span
from ..types import lark_strict_available, unquote_string
from . import limits
from .ast import (Attr, BinOp, BoolOp, Call, Compare, Expr, IfExp, Index, ListLit, Literal,
                  Name, Quantifier, Unary, depth)


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent.parent / "grammar" / "expr.lark").read_text()
    # The basic lexer, not lark's contextual one: a keyword must never lex as a NAME just
    # because the parser state does not expect it there (`s == not in xs`).
    return Lark(grammar, parser="lalr", lexer="basic", strict=lark_strict_available(),
                maybe_placeholders=False)


def parse_expr(text: str, origin: Origin) -> tuple[Expr | None, list[Diagnostic]]:
    """Parse one expression. Returns (None, diagnostics) when anything is wrong."""
    diags = Diagnostics()
    start = origin.span(1, 1)
    if not isinstance(text, str) or not text.strip():
        diags.error("E002", "empty expression", start)
        return None, diags
    if len(text) > limits.MAX_SOURCE_CHARS:
        diags.error("E005", f"expression is {len(text)} characters long "
                    f"(at most {limits.MAX_SOURCE_CHARS})", start)
        return None, diags
    deep = _too_deep_at(text)
    if deep is not None:
        diags.error("E005", f"brackets nested more than {limits.MAX_DEPTH} deep",
                    origin.span(*_line_col(text, deep)))
        return None, diags
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        message, hint, offset = _syntax_error(e, text)
        diags.error("E002", message, origin.span(*_line_col(text, offset)), hint)
        return None, diags
    expr = _Builder(origin, diags).transform(tree)
    if not diags.errors and depth(expr) > limits.MAX_DEPTH:
        diags.error("E005", f"expression is nested more than {limits.MAX_DEPTH} levels deep",
                    start, "split it into smaller expressions")
    return (None if diags.errors else expr), diags


# ------------------------------------------------------------------------------ raw text
def _too_deep_at(text: str) -> int | None:
    """Offset of the first bracket nested deeper than the limit (string literals skipped)."""
    level, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote or ch == "\n":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            level += 1
            if level > limits.MAX_DEPTH:
                return i
        elif ch in ")]}":
            level -= 1
        i += 1
    return None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


_SHOWN = {"NAME": "a name", "INT": "a number", "FLOAT": "a number", "STRING": "a string"}
_LOOKS_LIKE = {"=": "'=='", "&": "'and'", "|": "'or'", "!": "'not' or '!='"}


def _syntax_error(e: UnexpectedInput, text: str) -> tuple[str, str | None, int]:
    """(message, hint, offset into text) for a lark error."""
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else "?"
        hint = f"did you mean {_LOOKS_LIKE[ch]}?" if ch in _LOOKS_LIKE else None
        if ch in "'\"":
            return "unterminated string", None, e.pos_in_stream
        return f"unexpected character '{ch}'", hint, e.pos_in_stream
    hint = _expected_hint(set(getattr(e, "expected", ()) or ()))
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        return f"unexpected '{e.token}'", hint, e.token.start_pos or 0
    return "unexpected end of expression", hint, len(text.rstrip())


def _expected_hint(expected: set[str]) -> str | None:
    """Name what may come next in words, not as a list of twenty terminals."""
    if not expected:
        return None
    if expected == {"NAME"}:
        return "expected a name"
    if "NAME" in expected:
        return "expected an expression"
    if {"PLUS", "EQ"} <= expected:
        return "expected an operator"
    shown = sorted(_terminal_text(t) for t in expected)
    return f"expected {', '.join(shown[:8])}"


def _terminal_text(name: str) -> str:
    if name in _SHOWN:
        return _SHOWN[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if pattern.type == "str" else name


# ------------------------------------------------------------------------------ tree → AST
class _Builder(Transformer_NonRecursive):
    """Builds AST nodes bottom-up without recursion (deep inputs are rejected afterwards)."""

    def __init__(self, origin: Origin, diags: Diagnostics):
        super().__init__()
        self.origin, self.diags = origin, diags

    def span(self, tok: Token) -> Span:
        return self.origin.span(tok.line, tok.column, tok.end_line, tok.end_column)

    def forbid(self, name: str, where: Token | Span, what: str) -> None:
        if name.startswith("_"):
            span = where if isinstance(where, Span) else self.span(where)
            self.diags.error("E209", f"{what} '{name}' starts with '_'", span,
                             "names and fields starting with '_' are not accessible")

    # atoms
    def name(self, c):
        self.forbid(str(c[0]), c[0], "name")
        return Name(str(c[0]), self.span(c[0]))

    def int_lit(self, c):
        text = str(c[0])
        if len(text) > limits.MAX_INT_DIGITS or int(text).bit_length() > limits.MAX_INT_BITS:
            self.diags.error("E005", "integer literal is too large", self.span(c[0]),
                             f"integers must stay below 2**{limits.MAX_INT_BITS}")
            return Literal(0, self.span(c[0]))
        return Literal(int(text), self.span(c[0]))

    def float_lit(self, c):
        value = float(str(c[0]))
        if not math.isfinite(value):
            self.diags.error("E005", "number literal is out of range", self.span(c[0]))
            value = 0.0
        return Literal(value, self.span(c[0]))

    def str_lit(self, c):
        return Literal(unquote_string(str(c[0])), self.span(c[0]))

    def const(self, c):
        value = {"true": True, "false": False, "none": None}[str(c[0]).lower()]
        return Literal(value, self.span(c[0]))

    def arglist(self, c):
        return tuple(c)

    def list_lit(self, c):
        return ListLit(c[1] if len(c) > 1 else (), self.span(c[0]))

    def paren(self, c):
        return c[0]

    # postfix
    def attr(self, c):
        obj, _dot, name = c
        self.forbid(str(name), name, "field")
        return Attr(obj, str(name), self.span(name))

    def index(self, c):
        obj, lsqb, key = c
        if isinstance(key, Literal) and isinstance(key.value, str):
            self.forbid(key.value, key.span, "field")
        return Index(obj, key, self.span(lsqb))

    def call(self, c):
        self.forbid(str(c[0]), c[0], "function")
        return Call(str(c[0]), c[1] if len(c) > 1 else (), self.span(c[0]))

    def binder_call(self, c):
        func, binding, _colon, body = c
        self.forbid(str(func), func, "function")
        if not (isinstance(binding, Compare) and binding.op == "in"
                and isinstance(binding.left, Name)):
            self.diags.error("E002", f"expected 'name in collection' before ':' in {func}(...)",
                             self.span(func), f"write e.g. {func}(x in xs: ...)")
            return Call(str(func), (), self.span(func))
        var = binding.left
        return Quantifier(str(func), var.id, binding.right, body, self.span(func), var.span)

    # operators
    def unary(self, c):
        return Unary(str(c[0]), c[1], self.span(c[0]))

    def binop(self, c):
        return BinOp(str(c[1]), c[0], c[2], self.span(c[1]))

    def boolop(self, c):
        left, op, right = c
        if isinstance(left, BoolOp) and left.op == str(op):  # flatten long chains
            return BoolOp(left.op, left.values + (right,), left.span)
        return BoolOp(str(op), (left, right), self.span(op))

    def comp_op(self, c):
        return (" ".join(str(t) for t in c), c[0])

    def compare(self, c):
        parts = [Compare(c[i][0], c[i - 1], c[i + 1], self.span(c[i][1]))
                 for i in range(1, len(c), 2)]
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts), parts[0].span)

    def ifexp(self, c):
        body, if_tok, test, _else, orelse = c
        return IfExp(body, test, orelse, self.span(if_tok))
