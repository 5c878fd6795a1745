"""Static checking of expressions: infer a type for every node against a scope and a schema.

Errors are collected, never raised: unknown names (E205), fields (E204) and functions (E206),
forbidden `_` names (E209), wrong argument counts (E304) and type mismatches (E301). A node
with an error gets the type `any`, so one mistake does not cause a cascade of follow-ons, and
`any` typed values are accepted everywhere (they are checked at run time instead). A
well-typed expression then has its constant parts evaluated: one that always fails (a crossed
limit, a division by zero) is E006.

Unions are permissive in the Python way: an operation is accepted when it is valid for at
least one option (`x + 1` with `x: optional[int]`), and `a.b` when at least one model of the
union has the field `b`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..diagnostics import Diagnostic, Diagnostics, Span, did_you_mean, name_hint
from ..types import (ANY, BOOL, FLOAT, INT, NONE, STR, DictT, EnumT, ListT, ModelT, Prim,
                     Schema, Type, union)
from . import dates, limits
from .ast import (BINDER_FUNCS, BUILTIN_ARITY, BUILTIN_NAMES, Attr, BinOp, BoolOp, Call, Compare,
                  Expr, IfExp, Index, ListLit, Literal, Name, Quantifier, Unary, arity_message,
                  depth)
from .fold import constant_failures

_STRLIKE = ("str", "date", "datetime")


def check_expr(expr: Expr, scope: dict[str, Type], schema: Schema
               ) -> tuple[Type, list[Diagnostic]]:
    """The type of `expr` in `scope`, and every problem found in it."""
    checker = _Checker(schema)
    if depth(expr) > limits.MAX_DEPTH:  # hand-built trees: parsed ones are already bounded
        checker.diags.error("E005", "expression is nested too deeply", expr.span)
        return ANY, checker.diags
    t = checker.check(expr, dict(scope))
    if not checker.diags:  # a part with a type error would only fail again, less clearly
        checker.diags.extend(constant_failures(expr))
    return t, checker.diags


class _Checker:
    def __init__(self, schema: Schema):
        self.schema = schema
        self.diags = Diagnostics()

    # -- helpers ---------------------------------------------------------------------------
    def opts(self, t: Type) -> list[Type]:
        return self.schema.options(t)

    def cat(self, t: Type) -> str:
        """Category of one resolved option: any none bool num str list dict model."""
        if isinstance(t, Prim):
            return {"int": "num", "float": "num"}.get(
                t.name, "str" if t.name in _STRLIKE else t.name)
        if isinstance(t, EnumT):
            return "str"
        if isinstance(t, ListT):
            return "list"
        if isinstance(t, DictT):
            return "dict"
        if isinstance(t, ModelT) and t.name in self.schema.models:
            return "model"
        return "any"  # unknown model names are reported by Schema.check_names

    def cats(self, t: Type) -> set[str]:
        return {self.cat(o) for o in self.opts(t)}

    def accepts(self, t: Type, *wanted: str) -> bool:
        cs = self.cats(t)
        return "any" in cs or bool(cs & set(wanted))

    def mismatch(self, message: str, span: Span, hint: str | None = None) -> Type:
        self.diags.error("E301", message, span, hint)
        return ANY

    def overlap(self, a: Type, b: Type) -> bool:
        """Could a value of `a` equal a value of `b`?"""
        ca, cb = self.cats(a), self.cats(b)
        return "any" in ca or "any" in cb or bool(ca & cb) or \
            bool({"dict", "model"} & ca and {"dict", "model"} & cb)

    def literal_in_enum(self, t: Type, lit: Expr) -> None:
        """`status == 'flwn'` against an enum: the literal must be one of its values."""
        if not (isinstance(lit, Literal) and isinstance(lit.value, str)):
            return
        enums = [o for o in self.opts(t) if isinstance(o, EnumT)]
        if enums and len(enums) == len(self.opts(t)) - (NONE in self.opts(t)):
            values = [v for e in enums for v in e.values]
            if lit.value not in values:
                self.diags.error("E301", f"'{lit.value}' is not a value of {enums[0]}", lit.span,
                                 did_you_mean(lit.value, values))

    def num_result(self, a: Type, b: Type, op: str) -> Type:
        if "any" in self.cats(a) | self.cats(b):
            return ANY
        if op == "/":
            return FLOAT
        both_int = all(o == INT for o in self.opts(a) + self.opts(b) if o != NONE)
        return INT if both_int else FLOAT

    def items(self, t: Type, span: Span, what: str) -> Type:
        """Type of the elements met when iterating `t` (a mapping yields its values)."""
        out: list[Type] = []
        for o in self.opts(t):
            c = self.cat(o)
            if c == "any":
                return ANY
            if c == "list":
                out.append(o.item)
            elif c == "dict":
                out.append(o.value)
            elif c == "model":
                out.extend(f.type for f in self.schema.models[o.name].values())
        if not out and NONE not in self.opts(t):
            return self.mismatch(f"{what} needs a list or dict to iterate over, got {t}", span)
        return union(*out) if out else ANY

    # -- nodes -----------------------------------------------------------------------------
    def check(self, e: Expr, scope: dict[str, Type]) -> Type:
        method: Callable = getattr(self, "_" + type(e).__name__.lower())
        return method(e, scope)

    def _literal(self, e: Literal, scope) -> Type:
        return {bool: BOOL, int: INT, float: FLOAT, str: STR}.get(type(e.value), NONE)

    def _name(self, e: Name, scope) -> Type:
        if e.id.startswith("_"):
            self.diags.error("E209", f"name '{e.id}' starts with '_'", e.span)
            return ANY
        if e.id not in scope:
            hint = name_hint(e.id, scope)
            if e.id in BUILTIN_NAMES:
                hint = f"'{e.id}' is a function: call it as {e.id}(...)"
            self.diags.error("E205", f"unknown name '{e.id}'", e.span, hint)
            return ANY
        return scope[e.id]

    def _listlit(self, e: ListLit, scope) -> Type:
        return ListT(union(*(self.check(i, scope) for i in e.items)) if e.items else ANY)

    def _attr(self, e: Attr, scope) -> Type:
        obj = self.check(e.obj, scope)
        if e.name.startswith("_"):
            self.diags.error("E209", f"field '{e.name}' starts with '_'", e.span)
            return ANY
        return self.field(obj, e.name, e.span)

    def field(self, obj: Type, name: str, span: Span) -> Type:
        found: list[Type] = []
        models: list[str] = []
        for o in self.opts(obj):
            c = self.cat(o)
            if c == "any":
                return ANY
            if c == "model":
                models.append(o.name)
                f = self.schema.field(o.name, name)
                if f is not None:
                    found.append(f.type)
            elif c == "dict" and self.accepts(o.key, "str"):
                found.append(o.value)
        if found:
            return union(*found)
        if models:
            fields = {f for m in models for f in self.schema.models[m]}
            self.diags.error("E204", f"unknown field '{name}' on {' | '.join(models)}", span,
                             name_hint(name, fields))
            return ANY
        if self.opts(obj) == [NONE]:
            return self.mismatch(f"none has no field '{name}'", span)
        return self.mismatch(f"{obj} has no field '{name}'", span)

    def _index(self, e: Index, scope) -> Type:
        obj, key = self.check(e.obj, scope), self.check(e.key, scope)
        found: list[Type] = []
        for o in self.opts(obj):
            c = self.cat(o)
            if c == "any":
                return ANY
            if c == "list":
                if not self.accepts(key, "num"):
                    return self.mismatch(f"list index must be int, got {key}", e.key.span)
                found.append(o.item)
            elif c == "str":
                if not self.accepts(key, "num"):
                    return self.mismatch(f"string index must be int, got {key}", e.key.span)
                found.append(STR)
            elif c == "dict":
                if not self.overlap(key, o.key):
                    return self.mismatch(f"key of {o} must be {o.key}, got {key}", e.key.span)
                self.literal_in_enum(o.key, e.key)
                found.append(o.value)
            elif c == "model":
                if isinstance(e.key, Literal) and isinstance(e.key.value, str):
                    found.append(self.field(o, e.key.value, e.key.span))
                elif not self.accepts(key, "str"):
                    return self.mismatch(f"key of {o} must be str, got {key}", e.key.span)
                else:
                    found.append(ANY)
        if found:
            return union(*found)
        return self.mismatch(f"{obj} cannot be indexed", e.span)

    def _unary(self, e: Unary, scope) -> Type:
        t = self.check(e.operand, scope)
        if e.op == "not":
            return BOOL
        if not self.accepts(t, "num"):
            return self.mismatch(f"unary '{e.op}' needs a number, got {t}", e.span)
        return t if "any" not in self.cats(t) else ANY

    def _binop(self, e: BinOp, scope) -> Type:
        a, b = self.check(e.left, scope), self.check(e.right, scope)
        ca, cb = self.cats(a), self.cats(b)
        if "any" in ca or "any" in cb:
            return ANY
        if "num" in ca and "num" in cb:
            return self.num_result(a, b, e.op)
        if e.op == "+" and "str" in ca and "str" in cb:
            return STR
        if e.op == "+" and "list" in ca and "list" in cb:
            return ListT(union(*(o.item for o in self.opts(a) + self.opts(b)
                                 if isinstance(o, ListT))))
        if e.op == "*":
            for seq, n in ((a, cb), (b, ca)):
                if "num" in n and self.cats(seq) & {"str", "list"}:
                    return seq
        verb = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "//": "divide",
                "%": "take the remainder of", "**": "raise"}[e.op]
        return self.mismatch(f"cannot {verb} {a} and {b} with '{e.op}'", e.span)

    def _compare(self, e: Compare, scope) -> Type:
        a, b = self.check(e.left, scope), self.check(e.right, scope)
        if e.op not in ("in", "not in"):
            dates.check_compare(self, a, b, e.op, e.span)
        if e.op in ("==", "!="):
            if not self.overlap(a, b):
                self.mismatch(f"comparing {a} with {b} with '{e.op}' is always "
                              f"{'false' if e.op == '==' else 'true'}", e.span)
            self.literal_in_enum(a, e.right)
            self.literal_in_enum(b, e.left)
        elif e.op in ("<", "<=", ">", ">="):
            ca, cb = self.cats(a) - {"none"}, self.cats(b) - {"none"}
            if not ("any" in ca or "any" in cb or (ca & cb & {"num", "str"})):
                self.mismatch(f"cannot order {a} and {b} with '{e.op}'", e.span,
                              "'<' and friends compare two numbers or two strings")
        else:
            self.membership(a, b, e)
        return BOOL

    def membership(self, item: Type, coll: Type, e: Compare) -> None:
        for o in self.opts(coll):
            c = self.cat(o)
            if c == "any" or c == "none":
                return
            if c == "list":
                if not self.overlap(item, o.item):
                    self.mismatch(f"cannot look for {item} in {o}", e.span)
                elif isinstance(e.right, ListLit):
                    for lit in e.right.items:
                        self.literal_in_enum(item, lit)
                return
            if c == "dict":
                if not self.overlap(item, o.key):
                    self.mismatch(f"cannot look for {item} in the keys of {o}", e.span)
                return
            if c in ("model", "str"):
                if not self.accepts(item, "str"):
                    self.mismatch(f"cannot look for {item} in {o}", e.span)
                return
        self.mismatch(f"'{e.op}' needs a list, dict or string on the right, got {coll}", e.span)

    def _boolop(self, e: BoolOp, scope) -> Type:
        types = [self.check(v, scope) for v in e.values]
        if e.op == "or":  # `x or default`: a falsy none falls through to the next operand
            types = [union(*[o for o in self.opts(t) if o != NONE] or [NONE])
                     for t in types[:-1]] + types[-1:]
        return union(*types)

    def _ifexp(self, e: IfExp, scope) -> Type:
        self.check(e.test, scope)
        return union(self.check(e.body, scope), self.check(e.orelse, scope))

    def _quantifier(self, e: Quantifier, scope) -> Type:
        src = self.check(e.source, scope)
        if e.func not in BINDER_FUNCS:
            self.check(e.body, {**scope, e.var: ANY})
            if e.func in BUILTIN_NAMES:
                self.diags.error("E304", f"{e.func}() does not take a binder ('{e.var} in ...:')",
                                 e.span)
            else:
                self.diags.error("E206", f"unknown function '{e.func}'", e.span,
                                 name_hint(e.func, BINDER_FUNCS))
            return ANY
        if e.var.startswith("_"):
            self.diags.error("E209", f"name '{e.var}' starts with '_'", e.var_span)
        item = self.items(src, e.source.span, f"{e.func}()")
        body = self.check(e.body, {**scope, e.var: item})
        if e.func == "count":
            return INT
        if e.func == "sum":
            if not self.accepts(body, "num"):
                return self.mismatch(f"sum() adds numbers, got {body}", e.body.span)
            return ANY if "any" in self.cats(body) else union(*[o for o in self.opts(body)
                                                                 if o != NONE] or [INT])
        return BOOL

    def _call(self, e: Call, scope) -> Type:
        args = [self.check(a, scope) for a in e.args]
        if e.func not in BUILTIN_ARITY:
            if e.func in BINDER_FUNCS:
                self.diags.error("E304", f"{e.func}() needs a binder", e.span,
                                 f"write {e.func}(x in xs: condition)")
            else:
                self.diags.error("E206", f"unknown function '{e.func}'", e.span,
                                 name_hint(e.func, BUILTIN_NAMES))
            return ANY
        low, high = BUILTIN_ARITY[e.func]
        if not low <= len(args) <= high:
            self.diags.error("E304", arity_message(e.func, len(args)), e.span)
            return ANY
        rule = getattr(self, "_fn_" + e.func, None)
        if rule is None:  # the date built-ins type themselves (dates.py)
            return dates.TYPE_RULES[e.func](self, e, args)
        return rule(e, args)

    # -- built-in functions ----------------------------------------------------------------
    def need(self, e: Call, i: int, t: Type, wanted: tuple[str, ...], what: str) -> bool:
        if self.accepts(t, *wanted):
            return True
        self.mismatch(f"{e.func}() needs {what}, got {t}", e.args[i].span)
        return False

    def _fn_len(self, e, a):
        self.need(e, 0, a[0], ("list", "dict", "model", "str"), "a list, dict or string")
        return INT

    def _fn_any(self, e, a):
        self.items(a[0], e.args[0].span, f"{e.func}()")
        return BOOL

    _fn_all = _fn_any

    def _fn_sum(self, e, a):
        item = self.items(a[0], e.args[0].span, "sum()")
        if not self.accepts(item, "num"):
            return self.mismatch(f"sum() adds numbers, got a list of {item}", e.args[0].span)
        return item

    def _fn_min(self, e, a):
        if len(a) == 1:
            a = [self.items(a[0], e.args[0].span, f"{e.func}()")]
        for t, arg in zip(a, e.args, strict=True):
            if not self.accepts(t, "num", "str"):
                return self.mismatch(f"{e.func}() compares numbers or strings, got {t}", arg.span)
        return union(*a)

    _fn_max = _fn_min

    def _fn_keys(self, e, a):
        if not self.need(e, 0, a[0], ("dict", "model"), "a dict"):
            return ListT(ANY)
        keys = [o.key if isinstance(o, DictT) else STR for o in self.opts(a[0])
                if self.cat(o) in ("dict", "model")]
        return ListT(ANY if "any" in self.cats(a[0]) else union(*keys))

    def _fn_values(self, e, a):
        if not self.need(e, 0, a[0], ("dict", "model"), "a dict"):
            return ListT(ANY)
        return ListT(self.items(a[0], e.args[0].span, "values()"))

    def _fn_get(self, e, a):
        default = a[2] if len(a) == 3 else NONE
        if not self.need(e, 0, a[0], ("dict", "model", "list"), "a dict or list"):
            return ANY
        found: list[Type] = []
        for o in self.opts(a[0]):
            c = self.cat(o)
            if c == "any":
                return ANY
            if c == "dict":
                if not self.overlap(a[1], o.key):
                    return self.mismatch(f"key of {o} must be {o.key}, got {a[1]}", e.args[1].span)
                found.append(o.value)
            elif c == "list":
                found.append(o.item)
            elif c == "model":
                key = e.args[1]
                if isinstance(key, Literal) and isinstance(key.value, str):
                    found.append(self.field(o, key.value, key.span))
                else:
                    found.append(ANY)
        return union(*found, default)

    def _fn_lower(self, e, a):
        self.need(e, 0, a[0], ("str",), "a string")
        return STR

    _fn_upper = _fn_lower

    def _fn_contains(self, e, a):
        if self.need(e, 0, a[0], ("str", "list"), "a string or list") and \
                self.cats(a[0]) == {"str"}:
            self.need(e, 1, a[1], ("str",), "a string to look for")
        return BOOL

    def _fn_startswith(self, e, a):
        self.need(e, 0, a[0], ("str",), "a string")
        self.need(e, 1, a[1], ("str",), "a string prefix")
        return BOOL

    def _fn_abs(self, e, a):
        return a[0] if self.need(e, 0, a[0], ("num",), "a number") else ANY

    def _fn_round(self, e, a):
        ok = self.need(e, 0, a[0], ("num",), "a number")
        if len(a) == 2:
            self.need(e, 1, a[1], ("num",), "a number of digits")
            return a[0] if ok else ANY
        return INT

    def _fn_str(self, e, a):
        return STR

    def _fn_int(self, e, a):
        self.need(e, 0, a[0], ("num", "str", "bool"), "a number or a string")
        return INT

    def _fn_float(self, e, a):
        self.need(e, 0, a[0], ("num", "str"), "a number or a string")
        return FLOAT

