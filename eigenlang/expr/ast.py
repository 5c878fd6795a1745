"""Expression AST: frozen dataclasses, one per construct, each with a source `Span`.

A node's span points at the token that best locates an error in it: the operator of a
binary or comparison, the field name of `a.b`, the `[` of `a[k]`, the function name of a
call, the first token of a literal or name. Spans do not take part in equality or hashing,
so two expressions that mean the same thing compare equal wherever they were written.

`children()` and `walk()` are iterative helpers so that callers never need recursion to
inspect an expression.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from ..diagnostics import Span

_NOSPAN = Span()


@dataclass(frozen=True)
class Literal:
    value: int | float | str | bool | None
    span: Span = field(default=_NOSPAN, compare=False)
    # `1 == True` in Python: keep the kind in the comparison so the two literals differ.
    kind: str = field(default="", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", type(self.value).__name__)


@dataclass(frozen=True)
class Name:
    id: str
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class Attr:
    """`obj.name`: a key lookup on a mapping."""

    obj: Expr
    name: str
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class Index:
    """`obj[key]`: a key lookup on a mapping, an item of a list or a character of a string."""

    obj: Expr
    key: Expr
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class Unary:
    op: str  # '-', '+', 'not'
    operand: Expr
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class BinOp:
    op: str  # '+', '-', '*', '/', '//', '%', '**'
    left: Expr
    right: Expr
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class Compare:
    """One comparison; a chain `a < b < c` is parsed as `a < b and b < c`."""

    op: str  # '==', '!=', '<', '<=', '>', '>=', 'in', 'not in'
    left: Expr
    right: Expr
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class BoolOp:
    """`a and b and c` (n-ary, flattened); Python semantics: the deciding operand's value."""

    op: str  # 'and', 'or'
    values: tuple[Expr, ...]
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class IfExp:
    """`body if test else orelse`."""

    body: Expr
    test: Expr
    orelse: Expr
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class Call:
    """A call to a built-in function with positional arguments."""

    func: str
    args: tuple[Expr, ...]
    span: Span = field(default=_NOSPAN, compare=False)


@dataclass(frozen=True)
class Quantifier:
    """`func(var in source: body)` with func one of any/all/count/sum."""

    func: str
    var: str
    source: Expr
    body: Expr
    span: Span = field(default=_NOSPAN, compare=False)
    var_span: Span = field(default=_NOSPAN, compare=False)


Expr = Union[Literal, Name, ListLit, Attr, Index, Unary, BinOp, Compare, BoolOp, IfExp, Call,
             Quantifier]

# Built-ins: name → (fewest, most) positional arguments; binder forms are listed apart.
BUILTIN_ARITY: dict[str, tuple[int, int]] = {
    "len": (1, 1), "any": (1, 1), "all": (1, 1), "sum": (1, 1),
    "min": (1, 16), "max": (1, 16), "keys": (1, 1), "values": (1, 1), "get": (2, 3),
    "lower": (1, 1), "upper": (1, 1), "contains": (2, 2), "startswith": (2, 2),
    "abs": (1, 1), "round": (1, 2), "str": (1, 1), "int": (1, 1), "float": (1, 1),
    # dates.py: date and datetime arithmetic on ISO strings
    "date": (1, 1), "datetime": (1, 1), "add_days": (2, 2), "add_hours": (2, 2),
    "days_between": (2, 2), "hours_between": (2, 2),
}
BINDER_FUNCS = ("any", "all", "count", "sum")
BUILTIN_NAMES = tuple(sorted({*BUILTIN_ARITY, *BINDER_FUNCS}))


def arity_message(func: str, got: int) -> str:
    low, high = BUILTIN_ARITY[func]
    want = str(low) if low == high else f"{low} to {high}"
    return f"{func}() takes {want} argument{'s' * (high > 1)}, got {got}"


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of `e`, in source order."""
    if isinstance(e, (Literal, Name)):
        return ()
    if isinstance(e, ListLit):
        return e.items
    if isinstance(e, Attr):
        return (e.obj,)
    if isinstance(e, Index):
        return (e.obj, e.key)
    if isinstance(e, Unary):
        return (e.operand,)
    if isinstance(e, (BinOp, Compare)):
        return (e.left, e.right)
    if isinstance(e, BoolOp):
        return e.values
    if isinstance(e, IfExp):
        return (e.body, e.test, e.orelse)
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Quantifier):
        return (e.source, e.body)
    raise TypeError(f"not an expression node: {type(e).__name__}")


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of `e`, pre-order, without recursion."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def depth(e: Expr) -> int:
    """Height of the tree (a leaf is 1), computed without recursion."""
    deepest, stack = 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in children(node))
    return deepest


def free_names(e: Expr) -> set[str]:
    """Names `e` reads from its scope (binder variables excluded)."""
    out: set[str] = set()
    stack: list[tuple[Expr, frozenset[str]]] = [(e, frozenset())]
    while stack:
        node, bound = stack.pop()
        if isinstance(node, Name) and node.id not in bound:
            out.add(node.id)
        elif isinstance(node, Quantifier):
            stack.append((node.source, bound))
            stack.append((node.body, bound | {node.var}))
        else:
            stack.extend((c, bound) for c in children(node))
    return out


_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "//": 6,
         "%": 6, "neg": 7, "**": 8}


def to_source(e: Expr, limit: int = 80) -> str:
    """Canonical text of `e` (for messages); cut to `limit` characters. Recursive, so it is
    only meant for parsed expressions, whose depth the parser bounds."""
    text = _src(e, 0)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _src(e: Expr, outer: int) -> str:
    def wrap(prec: int, text: str) -> str:
        return f"({text})" if prec < outer else text

    if isinstance(e, Literal):
        return _literal_text(e.value)
    if isinstance(e, Name):
        return e.id
    if isinstance(e, ListLit):
        return "[" + ", ".join(_src(i, 0) for i in e.items) + "]"
    if isinstance(e, Attr):
        return f"{_src(e.obj, 9)}.{e.name}"
    if isinstance(e, Index):
        return f"{_src(e.obj, 9)}[{_src(e.key, 0)}]"
    if isinstance(e, Unary):
        if e.op == "not":
            return wrap(3, f"not {_src(e.operand, 3)}")
        return wrap(7, f"{e.op}{_src(e.operand, 7)}")
    if isinstance(e, BinOp):
        p = _PREC[e.op]
        if e.op == "**":
            return wrap(p, f"{_src(e.left, p + 1)} ** {_src(e.right, 7)}")
        return wrap(p, f"{_src(e.left, p)} {e.op} {_src(e.right, p + 1)}")
    if isinstance(e, Compare):
        return wrap(4, f"{_src(e.left, 5)} {e.op} {_src(e.right, 5)}")
    if isinstance(e, BoolOp):
        p = _PREC[e.op]
        return wrap(p, f" {e.op} ".join(_src(v, p + 1) for v in e.values))
    if isinstance(e, IfExp):
        return wrap(0, f"{_src(e.body, 1)} if {_src(e.test, 1)} else {_src(e.orelse, 0)}")
    if isinstance(e, Call):
        return f"{e.func}(" + ", ".join(_src(a, 0) for a in e.args) + ")"
    if isinstance(e, Quantifier):
        return f"{e.func}({e.var} in {_src(e.source, 5)}: {_src(e.body, 0)})"
    raise TypeError(f"not an expression node: {type(e).__name__}")


def _literal_text(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
    return repr(v)
