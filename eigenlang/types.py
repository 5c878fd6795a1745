"""The type system: type objects, the type syntax, schemas, JSON Schema and validation.

Types are written in YAML strings (`"dict[str, Reservation]"`, `"optional[enum[a, b]]"`) and
parsed by a small lark grammar (`grammar/types.lark`) with positions, so an unknown name in
`"dict[str, Usr]"` is reported at the column of `Usr`. A `Schema` holds a program's models
and aliases; it resolves names, reports unknown ones, renders a type as a JSON Schema and
validates JSON-like data against it (with `jsonschema`, one cached validator per type).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Union

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from .diagnostics import Diagnostic, Diagnostics, Origin, Span, name_hint

# ------------------------------------------------------------------------------ type objects
PRIM_NAMES = ("str", "int", "float", "bool", "none", "any", "date", "datetime")
GENERICS = {"list": 1, "dict": 2, "optional": 1, "enum": -1}  # -1: one or more values
MAX_TYPE_TEXT = 2_000
MAX_TYPE_DEPTH = 32


@dataclass(frozen=True)
class Prim:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ListT:
    item: Type

    def __str__(self) -> str:
        return f"list[{self.item}]"


@dataclass(frozen=True)
class DictT:
    key: Type
    value: Type

    def __str__(self) -> str:
        return f"dict[{self.key}, {self.value}]"


@dataclass(frozen=True)
class ModelT:
    """A reference to a model or a type alias, by name (resolved through a `Schema`)."""

    name: str
    span: Span | None = field(default=None, compare=False, repr=False)  # where it was written

    def __str__(self) -> str:
        return self.name


_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*\Z")


@dataclass(frozen=True)
class EnumT:
    values: tuple[str, ...]

    def __str__(self) -> str:
        shown = (v if _WORD.match(v) else '"' + v.replace('"', '\\"') + '"' for v in self.values)
        return f"enum[{', '.join(shown)}]"


@dataclass(frozen=True)
class UnionT:
    options: tuple[Type, ...]

    def __str__(self) -> str:
        rest = [o for o in self.options if o != NONE]
        if len(rest) == 1 and len(self.options) == 2:
            return f"optional[{rest[0]}]"
        return " | ".join(str(o) for o in self.options)


Type = Union[Prim, ListT, DictT, ModelT, EnumT, UnionT]

STR, INT, FLOAT, BOOL = Prim("str"), Prim("int"), Prim("float"), Prim("bool")
NONE, ANY, DATE, DATETIME = Prim("none"), Prim("any"), Prim("date"), Prim("datetime")


def union(*types: Type) -> Type:
    """The union of `types`: flattened, duplicates removed, `any` absorbs everything."""
    out: list[Type] = []
    for t in types:
        for o in (t.options if isinstance(t, UnionT) else (t,)):
            if o == ANY:
                return ANY
            if o not in out:
                out.append(o)
    if not out:
        return ANY
    return out[0] if len(out) == 1 else UnionT(tuple(out))


def optional(t: Type) -> Type:
    return union(t, NONE)


def walk_type(t: Type) -> Iterator[Type]:
    """Every type object inside `t`, `t` first (types are shallow: recursion is fine)."""
    yield t
    if isinstance(t, ListT):
        yield from walk_type(t.item)
    elif isinstance(t, DictT):
        yield from walk_type(t.key)
        yield from walk_type(t.value)
    elif isinstance(t, UnionT):
        for o in t.options:
            yield from walk_type(o)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def unquote_string(text: str) -> str:
    """The value of a quoted literal ('...' or "..."); unknown escapes are kept as written."""

    def repl(m: re.Match) -> str:
        e = m.group(1)
        if e[0] == "u" and len(e) == 5:
            return chr(int(e[1:], 16))
        return _ESCAPES.get(e, "\\" + e)

    return _ESCAPE_RE.sub(repl, text[1:-1])


# ------------------------------------------------------------------------------ type syntax
@cache
def _type_parser() -> Lark:
    grammar = (Path(__file__).parent / "grammar" / "types.lark").read_text()
    return Lark(grammar, parser="lalr", strict=lark_strict_available(), propagate_positions=False)


@cache
def lark_strict_available() -> bool:
    """lark's strict mode (conflict and regex-collision checks) needs `interegular`; without
    it the grammars still build (the test suite builds them strictly)."""
    try:
        import interegular  # noqa: F401
    except ImportError:
        return False
    return True


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch == "[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "]":
            depth -= 1
    return deepest


def parse_type(text: str, origin: Origin) -> tuple[Type | None, list[Diagnostic]]:
    """Parse a type written in the type syntax; `origin` maps its characters to the file."""
    diags = Diagnostics()
    here = origin.span(1, 1)
    if not isinstance(text, str) or not text.strip():
        diags.error("E004", "empty type", here, "write a type such as 'str' or 'list[int]'")
        return None, diags
    if len(text) > MAX_TYPE_TEXT or _bracket_depth(text) > MAX_TYPE_DEPTH:
        diags.error("E004", "type is too long or too deeply nested", here)
        return None, diags
    try:
        tree = _type_parser().parse(text)
    except UnexpectedInput as e:
        token = getattr(e, "token", None)
        at = (e.line, e.column)
        if token is not None and token.type == "$END":  # point just past the text
            end = text.rstrip()
            at = (end.count("\n") + 1, len(end) - (end.rfind("\n") + 1) + 1)
        diags.error("E004", _syntax_message(e, text), origin.span(*at))
        return None, diags
    t = _TypeBuilder(origin, diags).build(tree)
    return (None if diags.errors else t), diags


def _syntax_message(e: UnexpectedInput, text: str) -> str:
    token = getattr(e, "token", None)
    if token is not None and token.type == "$END":
        return "unexpected end of type"
    if token is not None:
        return f"unexpected '{token}' in type"
    pos = getattr(e, "pos_in_stream", None)
    ch = text[pos] if isinstance(pos, int) and 0 <= pos < len(text) else "?"
    return f"unexpected character '{ch}' in type"


class _TypeBuilder:
    """lark parse tree → Type, with the arity/shape errors the generic grammar leaves open."""

    def __init__(self, origin: Origin, diags: Diagnostics):
        self.origin, self.diags = origin, diags

    def span(self, tok: Token) -> Span:
        return self.origin.span(tok.line, tok.column, tok.end_line, tok.end_column)

    def build(self, node: Tree | Token) -> Type:
        if node.data == "union":
            return union(*(self.build(c) for c in node.children))
        word: Token = node.children[0]
        if node.data == "quoted":
            self.diags.error("E004", "a quoted string is only allowed as an enum value",
                             self.span(word))
            return ANY
        if node.data == "named":
            return self.named(word)
        args = node.children[1].children  # generic: WORD targs
        return self.generic(word, args)

    def named(self, word: Token) -> Type:
        name = str(word)
        if name in PRIM_NAMES:
            return Prim(name)
        if name in GENERICS:
            self.diags.error("E004", f"'{name}' needs arguments", self.span(word),
                             f"write e.g. '{name}[...]'")
            return ANY
        if not re.match(r"[A-Za-z_][A-Za-z0-9_]*\Z", name):
            self.diags.error("E004", f"'{name}' is not a type name", self.span(word))
            return ANY
        return ModelT(name, self.span(word))

    def generic(self, word: Token, args: list) -> Type:
        name = str(word)
        if name not in GENERICS:
            what = "takes no arguments" if name in PRIM_NAMES else "is not a type constructor"
            self.diags.error("E004", f"'{name}' {what}", self.span(word), name_hint(name, GENERICS))
            return ANY
        if name == "enum":
            return self.enum(args)
        want = GENERICS[name]
        if len(args) != want:
            self.diags.error("E004", f"'{name}' takes {want} type argument{'s' * (want > 1)}, "
                             f"got {len(args)}", self.span(word))
            return ANY
        ts = [self.build(a) for a in args]
        if name == "list":
            return ListT(ts[0])
        if name == "optional":
            return optional(ts[0])
        key = ts[0]
        for o in (key.options if isinstance(key, UnionT) else (key,)):
            if isinstance(o, (ListT, DictT)) or o in (FLOAT, BOOL, NONE):
                self.diags.error("E004", f"a dict key must be str, int, an enum or a date, not {o}",
                                 self.span(word))
        return DictT(key, ts[1])

    def enum(self, args: list) -> Type:
        values: list[str] = []
        for a in args:
            if isinstance(a, Tree) and a.data == "quoted":
                values.append(unquote_string(str(a.children[0])))
            elif isinstance(a, Tree) and a.data == "named":
                values.append(str(a.children[0]))
            else:
                first = next(a.scan_values(lambda v: isinstance(v, Token)))
                self.diags.error("E004", "enum values are names or quoted strings",
                                 self.span(first))
        return EnumT(tuple(dict.fromkeys(values)))


# ------------------------------------------------------------------------------ schemas
@dataclass(frozen=True)
class Field:
    """One field of a model (or one tool parameter)."""

    type: Type
    required: bool = True
    default: Any = None
    description: str | None = None
    span: Span = field(default_factory=Span, compare=False)


_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass
class Schema:
    """Models (name → field name → Field) and aliases (name → Type) of one program.

    Mutate `models`/`aliases` only while building; validators are cached per type.
    """

    root: str | None = None
    models: dict[str, dict[str, Field]] = field(default_factory=dict)
    aliases: dict[str, Type] = field(default_factory=dict)
    root_span: Span | None = None
    _validators: dict[Type, Any] = field(default_factory=dict, init=False, repr=False,
                                         compare=False)

    # -- names -------------------------------------------------------------------------------
    def resolve(self, t: Type) -> Type:
        """Follow aliases at the top of `t`; a circular alias resolves to `any`."""
        seen: set[str] = set()
        while isinstance(t, ModelT) and t.name in self.aliases:
            if t.name in seen or self._circular(t.name):
                return ANY
            seen.add(t.name)
            t = self.aliases[t.name]
        return t

    def options(self, t: Type) -> list[Type]:
        """The resolved, flattened options of `t` (one element unless it is a union)."""
        t = self.resolve(t)
        if not isinstance(t, UnionT):
            return [t]
        out: list[Type] = []
        for o in t.options:
            for r in self.options(o):
                if r not in out:
                    out.append(r)
        return out

    def field(self, model: str, name: str) -> Field | None:
        return self.models.get(model, {}).get(name)

    def _circular(self, alias: str) -> bool:
        """True when `alias` reaches itself through aliases and unions only (no structure in
        between), e.g. `A: "B | none"`, `B: A` — such a type has no finite meaning."""
        stack, seen = [self.aliases.get(alias)], set()
        while stack:
            t = stack.pop()
            if isinstance(t, UnionT):
                stack.extend(t.options)
            elif isinstance(t, ModelT) and t.name in self.aliases:
                if t.name == alias:
                    return True
                if t.name not in seen:
                    seen.add(t.name)
                    stack.append(self.aliases[t.name])
        return False

    def known_names(self) -> list[str]:
        return [*self.models, *self.aliases, *PRIM_NAMES]

    def check_names(self) -> list[Diagnostic]:
        """E203 for every reference to a model or alias that is not declared."""
        diags = Diagnostics()
        known = self.known_names()
        if self.root is not None and self.root not in self.models:
            diags.error("E203", f"unknown root model '{self.root}'", self.root_span or Span(),
                        name_hint(self.root, self.models))
        sources: list[tuple[Type, Span]] = [
            (f.type, f.span) for fields in self.models.values() for f in fields.values()]
        sources += [(t, t.span if isinstance(t, ModelT) and t.span else Span())
                    for t in self.aliases.values()]
        for t, fallback in sources:
            for sub in walk_type(t):
                if isinstance(sub, ModelT) and sub.name not in self.models \
                        and sub.name not in self.aliases:
                    diags.error("E203", f"unknown type '{sub.name}'", sub.span or fallback,
                                name_hint(sub.name, known))
        for name, t in self.aliases.items():
            if self._circular(name):
                span = next((s.span for s in walk_type(t) if isinstance(s, ModelT) and s.span),
                            Span())
                diags.error("E203", f"type alias '{name}' is defined in terms of itself", span,
                            "put the recursion inside a list, dict or model")
        return diags

    def merged(self, other: Schema) -> Schema:
        """A schema with the models and aliases of both (this one wins on a clash)."""
        return Schema(root=self.root, models={**other.models, **self.models},
                      aliases={**other.aliases, **self.aliases}, root_span=self.root_span)

    # -- JSON Schema -------------------------------------------------------------------------
    def json_schema(self, t: Type) -> dict:
        """JSON Schema (draft 2020-12) of `t`; models go to `$defs` so recursion works."""
        defs: dict[str, dict] = {}
        body = self._emit(t, defs, ())
        out = {"$schema": _JSON_SCHEMA_DIALECT, **body}
        if defs:
            out["$defs"] = {k: defs[k] for k in sorted(defs)}
        return out

    def _emit(self, t: Type, defs: dict[str, dict], aliases_open: tuple[str, ...]) -> dict:
        if isinstance(t, Prim):
            return dict(_PRIM_SCHEMAS[t.name])
        if isinstance(t, ListT):
            return {"type": "array", "items": self._emit(t.item, defs, aliases_open)}
        if isinstance(t, DictT):
            out: dict = {"type": "object",
                         "additionalProperties": self._emit(t.value, defs, aliases_open)}
            key = self.resolve(t.key)
            if isinstance(key, EnumT):
                out["propertyNames"] = {"enum": list(key.values)}
            elif key == INT:
                out["propertyNames"] = {"pattern": r"^-?[0-9]+$"}
            return out
        if isinstance(t, EnumT):
            return {"type": "string", "enum": list(t.values)}
        if isinstance(t, UnionT):
            return {"anyOf": [self._emit(o, defs, aliases_open) for o in t.options]}
        if t.name in self.models:
            if t.name not in defs:
                defs[t.name] = {}  # placeholder: a recursive reference finds it
                defs[t.name] = self._emit_model(t.name, defs)
            return {"$ref": f"#/$defs/{t.name}"}
        if t.name in self.aliases and not self._circular(t.name):
            if t.name in aliases_open:  # recursive alias (through a list/dict): name it
                defs.setdefault(t.name, {})
                return {"$ref": f"#/$defs/{t.name}"}
            body = self._emit(self.aliases[t.name], defs, aliases_open + (t.name,))
            if t.name in defs:
                defs[t.name] = body
                return {"$ref": f"#/$defs/{t.name}"}
            return body
        return {}  # unknown (reported by check_names) or circular: anything goes

    def _emit_model(self, name: str, defs: dict[str, dict]) -> dict:
        props: dict[str, dict] = {}
        for fname, f in self.models[name].items():
            p = self._emit(f.type, defs, ())
            if f.description:
                p = {**p, "description": f.description}
            if not f.required and _is_json(f.default):
                p = {**p, "default": f.default}
            props[fname] = p
        required = [n for n, f in self.models[name].items() if f.required]
        return {"title": name, "type": "object", "properties": props, "required": required,
                "additionalProperties": False}

    # -- validation --------------------------------------------------------------------------
    def validator(self, t: Type) -> Any:
        """The cached `jsonschema` validator of `t` (built on first use)."""
        v = self._validators.get(t)
        if v is None:
            from jsonschema import Draft202012Validator  # runtime-side dependency: lazy

            v = Draft202012Validator(self.json_schema(t), format_checker=_format_checker())
            self._validators[t] = v
        return v

    def validate(self, value: Any, t: Type, limit: int = 50) -> list[str]:
        """Readable errors of `value` against `t`, each prefixed with its path
        (`reservations.AB12.status: ...`); empty when the value is valid."""
        errors = sorted(self.validator(t).iter_errors(value),
                        key=lambda e: (_path_text(e.absolute_path), e.message))
        # a wrong type also breaks the enum/format of the same place: report it once
        typed = {_path_text(e.absolute_path) for e in errors if e.validator == "type"}
        errors = [e for e in errors if e.validator not in ("enum", "format")
                  or _path_text(e.absolute_path) not in typed]
        out = [f"{_path_text(e.absolute_path)}: {_error_text(e)}" for e in errors[:limit]]
        if len(errors) > limit:
            out.append(f"... and {len(errors) - limit} more errors")
        return out

    # -- built-ins ---------------------------------------------------------------------------
    @classmethod
    def builtin_trajectory(cls) -> Schema:
        """Models `Call` and `Message`, the types of `calls` and `messages` in rules."""
        def f(t: Type) -> Field:
            return Field(t)

        return cls(models={
            "Call": {"name": f(STR), "kind": f(STR), "arguments": f(DictT(STR, ANY)),
                     "ok": f(BOOL), "error": f(optional(STR)), "confirmed": f(BOOL),
                     "turn": f(INT)},
            "Message": {"role": f(STR), "content": f(optional(STR)), "turn": f(INT)},
        })


def trajectory_scope() -> dict[str, Type]:
    """Scope entries of trajectory rules that `Schema.builtin_trajectory()` types."""
    return {"calls": ListT(ModelT("Call")), "messages": ListT(ModelT("Message"))}


_PRIM_SCHEMAS: dict[str, dict] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
    "bool": {"type": "boolean"}, "none": {"type": "null"}, "any": {},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def _is_json(v: Any) -> bool:
    if v is None or isinstance(v, (str, int, float, bool)):
        return True
    if isinstance(v, list):
        return all(_is_json(x) for x in v)
    return isinstance(v, dict) and all(isinstance(k, str) and _is_json(x) for k, x in v.items())


@cache
def _format_checker() -> Any:
    """ISO dates and date-times as τ²-bench writes them (`2024-05-15T15:00:00`, no zone), which
    the stricter RFC 3339 checker of `jsonschema` would reject."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("date", raises=ValueError)(
        lambda v: not isinstance(v, str) or bool(_dt.date.fromisoformat(v)))
    checker.checks("date-time", raises=ValueError)(
        lambda v: not isinstance(v, str) or bool(_dt.datetime.fromisoformat(v)))
    return checker


def _path_text(path: Any) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.match(r"[A-Za-z0-9_\-]+\Z", str(p)):
            out += ("." if out else "") + str(p)
        else:
            out += f"[{str(p)!r}]"
    return out or "(root)"


def _short(v: Any, width: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= width else r[: width - 3] + "..."


def _describe(s: dict) -> str:
    """A JSON Schema written back in the type syntax, for messages."""
    if "$ref" in s or "title" in s:
        return s.get("title") or s["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in s:
        return " | ".join(_describe(o) for o in s["anyOf"])
    if "enum" in s:
        return " | ".join(map(repr, s["enum"]))
    fmt = {"date": "date", "date-time": "datetime"}.get(s.get("format", ""))
    kind = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
            "null": "none", "array": "list", "object": "dict"}.get(s.get("type", ""), "any")
    return fmt or kind


def _error_text(e: Any) -> str:
    v = e.validator
    if v == "type" or v == "anyOf":
        return f"expected {_describe(e.schema)}, got {_short(e.instance)}"
    if v == "enum":
        return f"{_short(e.instance)} is not one of {' | '.join(map(repr, e.validator_value))}"
    if v == "required":
        return e.message.replace("is a required property", "is missing")
    if v == "format":
        return f"{_short(e.instance)} is not an ISO {_describe(e.schema)}"
    msg = e.message
    return msg if len(msg) <= 200 else msg[:197] + "..."
