"""Constant parts of an expression, evaluated when it is checked.

A part that reads no name from the scope (`'a' * 10**9`, `str(['a' * 1000000] * 80000)`,
`1 / 0`) has the same value, or the same failure, every time it runs. The checker evaluates
each such part once, with the interpreter itself and under the run-time bounds, so that a
program whose constant parts always fail is refused by `eigen check` (E006) where the failure
is, instead of at run time, on every instance.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Diagnostics
from .ast import BoolOp, Expr, IfExp, Literal, Name, Quantifier, children, to_source
from .interp import compile_expr
from .values import EvalError, truth


def constant_failures(expr: Expr) -> list[Diagnostic]:
    """Evaluate every largest part of `expr` that reads no name from the scope (`'a' * 10**9`,
    `str(['a' * 1000000] * 80000)`, `1 / 0`): it would fail the same way every time it runs,
    so the program is refused now (E006), where the failure is, instead of at run time. The
    evaluation is the interpreter's own, under the same bounds as at run time. Parts that can
    never run are left alone: after a deciding constant operand of `and`/`or`, and the branch
    a constant condition does not take."""
    reads: dict[int, bool] = {}
    _reads_names(expr, reads)
    diags = Diagnostics()

    def value(node: Expr) -> tuple[bool, object]:
        """(True, value) of a part that reads no names; (False, None) after reporting it."""
        try:
            return True, compile_expr(node)({})
        except EvalError as exc:
            diags.error("E006", f"{to_source(node, 60)} always fails: {exc.message}",
                        exc.span or node.span, "this part reads no names, so it fails the "
                        "same way each time it runs")
            return False, None

    stack = [expr]
    while stack:
        node = stack.pop()
        if not reads[id(node)]:
            if not isinstance(node, Literal):
                value(node)
        elif isinstance(node, BoolOp):
            for operand in node.values:
                if reads[id(operand)]:
                    stack.append(operand)
                    continue
                ok, v = value(operand)
                if not ok or truth(v) != (node.op == "and"):
                    break  # the operands after this one never run
        elif isinstance(node, IfExp) and not reads[id(node.test)]:
            ok, v = value(node.test)
            if ok:
                stack.append(node.body if truth(v) else node.orelse)
        else:
            stack.extend(children(node))
    return diags


def _reads_names(e: Expr, out: dict[int, bool]) -> frozenset[str]:
    """The names `e` reads from its scope; records for every node whether it reads any.
    (Recursive: parsed and checked trees are at most MAX_DEPTH high.)"""
    if isinstance(e, Name):
        names = frozenset((e.id,))
    elif isinstance(e, Quantifier):
        names = _reads_names(e.source, out) | (_reads_names(e.body, out) - {e.var})
    else:
        names = frozenset().union(*(_reads_names(c, out) for c in children(e)))
    out[id(e)] = bool(names)
    return names
