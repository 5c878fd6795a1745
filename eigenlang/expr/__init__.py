"""The expression language: one side-effect-free, typed, bounded language used for tool
preconditions, trajectory rules, verifiers, flow guards and evolution criteria.

    expr, diags = parse_expr("len(xs) > 0", origin)
    t, diags = check_expr(expr, {"xs": ListT(INT)}, schema)
    value = compile_expr(expr)({"xs": [1, 2]})          # True; raises EvalError on failure
"""

from .ast import (BINDER_FUNCS, BUILTIN_NAMES, Attr, BinOp, BoolOp, Call, Compare, Expr, IfExp,
                  Index, ListLit, Literal, Name, Quantifier, Unary, children, free_names,
                  to_source, walk)
from .checker import check_expr
from .interp import Compiled, EvalError, compile_expr
from .parser import parse_expr

__all__ = [
    "parse_expr", "check_expr", "compile_expr", "Compiled", "EvalError", "Expr",
    "Literal", "Name", "ListLit", "Attr", "Index", "Unary", "BinOp", "Compare", "BoolOp",
    "IfExp", "Call", "Quantifier", "children", "walk", "free_names", "to_source",
    "BUILTIN_NAMES", "BINDER_FUNCS",
]
