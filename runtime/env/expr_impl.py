"""Declarative implementations (`impl: {return: EXPR}`, eigenlang.declarative) made callable
as `fn(ctx, **params)`, the shape every implementation has.

The expression is compiled once and evaluated on the call's transaction views, in the scope
of `requires:` (checks.check_scope): `db`, `user_db`, `now` and the arguments. It cannot
change anything. A failure to evaluate (a missing key, a crossed bound) is the tool's error,
as a `ToolError` would be: the caller reads "Error: no key 'u9' in db.users".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eigenlang.expr import EvalError, compile_expr

from .checks import check_scope
from .errors import ImplLoadError, ToolError


def expression_impl(impl: Any) -> Callable[..., Any]:
    """The callable of an `ExprImpl` (a checked expression)."""
    if impl.expr is None:
        raise ImplLoadError(f"the expression implementation {impl.text!r} did not compile")
    compiled = compile_expr(impl.expr)

    def run(ctx: Any, **arguments: Any) -> Any:
        try:
            return compiled(check_scope(ctx.db, ctx.user_db, ctx.now, arguments))
        except EvalError as exc:
            raise ToolError(exc.message) from None

    run.__name__ = run.__qualname__ = "expression"
    return run
