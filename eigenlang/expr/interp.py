"""The interpreter: an expression is compiled once into nested Python closures, then called
with a scope as often as needed.

No `eval`, `exec` or `getattr` on data: field access is `Mapping.__getitem__` only, names
starting with `_` are refused, and every closure pays one step out of a budget, so the work
of one evaluation is bounded whatever the expression (see `limits.py` for the other bounds).
Any failure surfaces as `EvalError(message, span)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..diagnostics import Span
from . import limits
from .ast import (BINDER_FUNCS, BUILTIN_ARITY, Attr, BinOp, BoolOp, Call, Compare, Expr, IfExp,
                  Index, ListLit, Literal, Name, Quantifier, Unary, arity_message, depth,
                  to_source)
from .builtins import BUILTINS
from .values import (EvalError, Run, checked_number, checked_size, contains, equal, get_key,
                     is_num, is_seq, iter_values, need_num, order, truth, typename)

Fn = Callable[[Run], Any]
_MISSING = object()


class Compiled:
    """A compiled expression: `compiled(scope, budget=100_000) -> value`."""

    __slots__ = ("expr", "_fn")

    def __init__(self, expr: Expr, fn: Fn):
        self.expr = expr
        self._fn = fn

    def __call__(self, scope: Mapping[str, Any], budget: int = limits.DEFAULT_BUDGET) -> Any:
        run = Run(scope, budget)
        try:
            return self._fn(run)
        except EvalError:
            raise
        except RecursionError:
            raise EvalError("value is nested too deeply to evaluate", self.expr.span) from None
        except Exception as exc:  # a Mapping from outside misbehaved, or a bug: never leak it
            raise EvalError(f"evaluation failed: {type(exc).__name__}: {exc}",
                            self.expr.span) from None

    def __reduce__(self):  # closures do not pickle; the AST does, so recompile on arrival
        return (compile_expr, (self.expr,))

    def __repr__(self) -> str:
        return f"Compiled({to_source(self.expr)!r})"


def compile_expr(expr: Expr) -> Compiled:
    """Compile a (parsed and checked) expression. Raises EvalError only for a hand-built tree
    that is nested deeper than the parser would allow."""
    if depth(expr) > limits.MAX_DEPTH:
        raise EvalError("expression is nested too deeply", expr.span)
    return Compiled(expr, _compile(expr))


def _compile(e: Expr) -> Fn:
    return _COMPILERS[type(e)](e)


def _fail(message: str, span: Span) -> Fn:
    def fn(run: Run) -> Any:
        raise EvalError(message, span)
    return fn


# ------------------------------------------------------------------------------ leaves
def _literal(e: Literal) -> Fn:
    value, span = e.value, e.span

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        return value
    return fn


def _name(e: Name) -> Fn:
    name, span = e.id, e.span
    if name.startswith("_"):
        return _fail(f"name '{name}' starts with '_' and is not accessible", span)

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        value = run.local.get(name, _MISSING)
        if value is not _MISSING:
            return value
        try:
            return run.scope[name]
        except KeyError:
            raise EvalError(f"unknown name '{name}'", span) from None
    return fn


def _listlit(e: ListLit) -> Fn:
    items, span = [_compile(i) for i in e.items], e.span

    def fn(run: Run) -> Any:
        run.charge(len(items), span)
        return [f(run) for f in items]
    return fn


# ------------------------------------------------------------------------------ lookups
def _attr(e: Attr) -> Fn:
    obj, name, span = _compile(e.obj), e.name, e.span
    if name.startswith("_"):
        return _fail(f"field '{name}' starts with '_' and is not accessible", span)

    def describe() -> str:
        return to_source(e.obj, 60)

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        return get_key(obj(run), name, span, describe)
    return fn


def _index(e: Index) -> Fn:
    obj, key, span = _compile(e.obj), _compile(e.key), e.span

    def describe() -> str:
        return to_source(e.obj, 60)

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        o, k = obj(run), key(run)
        if isinstance(o, str) or is_seq(o):
            if isinstance(k, bool) or not isinstance(k, int):
                raise EvalError(f"{typename(o)} index must be int, got {typename(k)}", span)
            if not -len(o) <= k < len(o):
                raise EvalError(f"index {k} is out of range for {describe()} "
                                f"(length {len(o)})", span)
            return o[k]
        return get_key(o, k, span, describe)
    return fn


# ------------------------------------------------------------------------------ operators
def _unary(e: Unary) -> Fn:
    operand, op, span = _compile(e.operand), e.op, e.span

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        v = operand(run)
        if op == "not":
            return not truth(v)
        need_num(v, span, f"unary '{op}'")
        return -v if op == "-" else v
    return fn


def _arith(op: str, a: Any, b: Any, run: Run, span: Span) -> Any:
    if is_num(a) and is_num(b):
        if op in ("/", "//", "%") and b == 0:
            raise EvalError("division by zero", span)
        if op == "**":
            return checked_number(_power(a, b, span), span)
        return checked_number(_NUM_OPS[op](a, b), span)
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        checked_size(len(a) + len(b), span, "string", "characters")
        run.charge(len(a) + len(b), span)
        return a + b
    if op == "+" and is_seq(a) and is_seq(b):
        checked_size(len(a) + len(b), span, "list")
        run.charge(len(a) + len(b), span)
        return [*a, *b]
    if op == "*":
        seq, n = (a, b) if not is_num(a) else (b, a)
        if (isinstance(seq, str) or is_seq(seq)) and isinstance(n, int) and \
                not isinstance(n, bool):
            size = len(seq) * max(n, 0)
            if isinstance(seq, str):
                checked_size(size, span, "string", "characters")
            else:
                checked_size(size, span, "list")
            run.charge(size, span)
            return seq * n if isinstance(seq, str) else list(seq) * n
    raise EvalError(f"cannot apply '{op}' to {typename(a)} and {typename(b)}", span)


def _power(a: int | float, b: int | float, span: Span) -> Any:
    """`a ** b` without ever computing a giant number: estimate the size first."""
    if isinstance(a, int) and isinstance(b, int):
        if b < 0:
            if a == 0:
                raise EvalError("zero cannot be raised to a negative power", span)
            return float(a) ** b  # |a| >= 1: shrinks towards 0, cannot overflow
        if abs(a) > 1 and b * (abs(a).bit_length() - 1) >= limits.MAX_INT_BITS:
            raise EvalError(f"integer result is too large (at least 2**{limits.MAX_INT_BITS})",
                            span)
        return a ** b
    try:
        return float(a) ** b
    except (OverflowError, ZeroDivisionError):
        raise EvalError("number result is out of range", span) from None


_NUM_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
}


def _binop(e: BinOp) -> Fn:
    left, right, op, span = _compile(e.left), _compile(e.right), e.op, e.span

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        return _arith(op, left(run), right(run), run, span)
    return fn


def _compare(e: Compare) -> Fn:
    left, right, op, span = _compile(e.left), _compile(e.right), e.op, e.span

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        a, b = left(run), right(run)
        if op == "==":
            return equal(a, b, run, span)
        if op == "!=":
            return not equal(a, b, run, span)
        if op == "in":
            return contains(b, a, run, span, op)
        if op == "not in":
            return not contains(b, a, run, span, op)
        order(a, b, span, op)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return fn


def _boolop(e: BoolOp) -> Fn:
    values, span, is_and = [_compile(v) for v in e.values], e.span, e.op == "and"

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        for f in values[:-1]:
            v = f(run)
            if truth(v) != is_and:  # `and` stops at a falsy value, `or` at a truthy one
                return v
        return values[-1](run)
    return fn


def _ifexp(e: IfExp) -> Fn:
    body, test, orelse, span = _compile(e.body), _compile(e.test), _compile(e.orelse), e.span

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        return body(run) if truth(test(run)) else orelse(run)
    return fn


# ------------------------------------------------------------------------------ calls
def _call(e: Call) -> Fn:
    span = e.span
    if e.func not in BUILTIN_ARITY:
        if e.func in BINDER_FUNCS:
            return _fail(f"{e.func}() needs a binder: {e.func}(x in xs: ...)", span)
        return _fail(f"unknown function '{e.func}'", span)
    low, high = BUILTIN_ARITY[e.func]
    if not low <= len(e.args) <= high:
        return _fail(arity_message(e.func, len(e.args)), span)
    args, impl = [_compile(a) for a in e.args], BUILTINS[e.func]

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        return impl(run, span, [f(run) for f in args])
    return fn


def _quantifier(e: Quantifier) -> Fn:
    span, var, func = e.span, e.var, e.func
    if func not in BINDER_FUNCS:
        return _fail(f"{func}() does not take a binder", span)
    if var.startswith("_"):
        return _fail(f"name '{var}' starts with '_' and is not accessible", e.var_span)
    source, body = _compile(e.source), _compile(e.body)

    def fn(run: Run) -> Any:
        run.steps += 1
        if run.steps > run.budget:
            run.exhausted(span)
        items = iter_values(source(run), e.source.span, f"{func}()")
        saved = run.local.get(var, _MISSING)
        try:
            return _reduce(func, items, var, body, run, span)
        finally:
            if saved is _MISSING:
                run.local.pop(var, None)
            else:
                run.local[var] = saved
    return fn


def _reduce(func: str, items: Any, var: str, body: Fn, run: Run, span: Span) -> Any:
    local = run.local
    if func == "any":
        for x in items:
            local[var] = x
            if truth(body(run)):
                return True
        return False
    if func == "all":
        for x in items:
            local[var] = x
            if not truth(body(run)):
                return False
        return True
    total: Any = 0
    for x in items:
        local[var] = x
        v = body(run)
        total += (1 if truth(v) else 0) if func == "count" else need_num(v, span, "sum()")
    return checked_number(total, span)


_COMPILERS: dict[type, Callable[[Any], Fn]] = {
    Literal: _literal, Name: _name, ListLit: _listlit, Attr: _attr, Index: _index,
    Unary: _unary, BinOp: _binop, Compare: _compare, BoolOp: _boolop, IfExp: _ifexp,
    Call: _call, Quantifier: _quantifier,
}
