"""Declarative tools: an implementation written in the expression language, no Python.

    get_user_details:
      kind: read
      params: {user_id: str}
      returns: User
      impl: {return: "db.users[user_id]"}
      requires:
        - check: "user_id in db.users"
          error: "User {user_id} not found"

The expression sees what `requires:` sees (`db`, `user_db`, `now`, every param by name) on
the state before the call, and its type must fit `returns:` (E301). Expressions cannot change
anything, so only `read` and `generic` tools (and environment actions) may be declarative;
a `write` tool needs Python (E108). At run time the environment evaluates it under the
expression language's bounds; a failure (a missing key) is the tool's error message, as a
`ToolError` would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .diagnostics import Span
from .expr import check_expr, parse_expr
from .parse import Parsed
from .types import ANY, FLOAT, INT, NONE, STR, DictT, EnumT, ListT, ModelT, Prim, Schema, Type


@dataclass(frozen=True)
class ExprImpl:
    """A tool's implementation as an expression: the tool returns its value."""

    expr: Any  # eigenlang.expr.Expr
    text: str
    span: Span

    def __str__(self) -> str:
        return f"{{return: {self.text}}}"


def check_expr_impl(parsed: Parsed, path: tuple, text: str, kind: str | None,
                    scope: dict[str, Type], schema: Schema, returns: Type | None) -> ExprImpl | None:
    """Parse and type-check `impl: {return: EXPR}` at `path` (the tool's or action's key)."""
    src, diags = parsed.source, parsed.diags
    where = path + ("impl", "return")
    if kind == "write":
        diags.error("E108", "a write tool changes the database, which an expression cannot do",
                    src.span(path + ("impl",)),
                    "give it a Python implementation 'file.py:function', or make it kind: read")
    expr, d = parse_expr(text, src.origin(where))
    diags.extend(d)
    if expr is None:
        return None
    t, d = check_expr(expr, scope, schema)
    diags.extend(d)
    if not d and returns is not None and not assignable(schema, t, returns):
        hint = ("declare returns: optional[...] or make sure of the key with requires:"
                if NONE in schema.options(t) and assignable(schema, _without_none(schema, t), returns)
                else "change the expression or the tool's returns:")
        diags.error("E301", f"the expression is {t}, but the tool returns {returns}",
                    src.span(where), hint)
    return ExprImpl(expr, text, src.span(where))


def _without_none(schema: Schema, t: Type) -> Type:
    from .types import union

    return union(*[o for o in schema.options(t) if o != NONE] or [NONE])


def assignable(schema: Schema, got: Type, want: Type) -> bool:
    """May a value of type `got` stand where `want` is declared? Lenient where the run-time
    value is the same text: a `str` may be a date, a datetime or an enum value."""
    gots, wants = schema.options(got), schema.options(want)
    unknown = [o for o in gots + wants if isinstance(o, ModelT) and o.name not in schema.models]
    if ANY in gots or ANY in wants or unknown:  # an unknown name is reported already (E203)
        return True
    return all(any(_one(schema, g, w) for w in wants) for g in gots)


def _one(schema: Schema, g: Type, w: Type) -> bool:
    if g == w:
        return True
    if isinstance(g, Prim) and isinstance(w, Prim):
        text = {"str", "date", "datetime"}
        return (g, w) == (INT, FLOAT) or (g.name in text and w.name in text and STR in (g, w))
    if isinstance(g, EnumT):
        return w == STR or (isinstance(w, EnumT) and set(g.values) <= set(w.values))
    if g == STR and isinstance(w, EnumT):
        return True
    if isinstance(g, ListT) and isinstance(w, ListT):
        return assignable(schema, g.item, w.item)
    if isinstance(g, DictT) and isinstance(w, DictT):
        return assignable(schema, g.key, w.key) and assignable(schema, g.value, w.value)
    if isinstance(g, ModelT) and isinstance(w, DictT) and g.name in schema.models:
        return assignable(schema, STR, w.key) and all(
            assignable(schema, f.type, w.value) for f in schema.models[g.name].values())
    return False
