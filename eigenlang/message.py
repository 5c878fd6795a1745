"""Message templates: `{param}` placeholders in a tool's `requires:` errors and `policy:`
descriptions.

    error: "Reservation {reservation_id} not found"      # → "Reservation NOPE00 not found"
    error: "Item {item.item_id} is not available"       # a dotted path into a parameter
    error: "Use {{ and }} for braces"                    # → "Use { and } for braces"

A placeholder names a parameter of the tool, optionally followed by `.field` steps (a
model field or dictionary key; a number steps into a list). The value is printed like
Python's `str()` (τ²-bench builds its error texts with f-strings): `True`, `None`, `1.5`,
`{'a': 1}`. A step that is missing at run time prints `None`. Placeholders are data
lookups, never code: nothing else may appear between the braces.

`parse_message` splits the text (E702 for a stray or unclosed brace), `check_message`
checks every placeholder against the tool's parameters and the schema (E701).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .diagnostics import Diagnostic, Origin, did_you_mean, name_hint
from .types import ANY, DictT, ListT, ModelT, Prim, Schema, Type, union

_PLACEHOLDER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|\d+))*\Z")
_BRACES = re.compile(r"\{\{|\}\}|\{|\}")


@dataclass(frozen=True)
class Placeholder:
    path: tuple[str, ...]  # ("item", "item_id")
    col: int  # 1-based column of its `{` in the text's line `line`
    line: int = 1

    @property
    def text(self) -> str:
        return "{" + ".".join(self.path) + "}"


@dataclass(frozen=True)
class MessageTemplate:
    """A message split into literal text and placeholders, ready to render."""

    text: str  # as written
    parts: tuple[str | Placeholder, ...]

    @classmethod
    def literal(cls, text: str) -> MessageTemplate:
        return cls(text, (text,) if text else ())

    @property
    def placeholders(self) -> list[Placeholder]:
        return [p for p in self.parts if isinstance(p, Placeholder)]

    def render(self, values: Mapping[str, Any]) -> str:
        """The message with every placeholder replaced by `str()` of its value."""
        return "".join(p if isinstance(p, str) else _show(_lookup(values, p.path)) for p in self.parts)

    def matches(self, message: str) -> bool:
        """Whether `message` is a rendering of this template (any text in each placeholder).
        Glob matching, leftmost-first: linear in the message, whatever an argument holds."""
        literals = [""]
        for p in self.parts:
            if isinstance(p, str):
                literals[-1] += p
            else:
                literals.append("")
        if len(literals) == 1:
            return message == literals[0]
        first, *middle, last = literals
        end = len(message) - len(last)
        if end < len(first) or not message.startswith(first) or not message.endswith(last):
            return False
        pos = len(first)
        for lit in middle:
            found = message.find(lit, pos, end)
            if found < 0:
                return False
            pos = found + len(lit)
        return True


def parse_message(text: str, origin: Origin | None = None) -> tuple[MessageTemplate, list[Diagnostic]]:
    """Split `text` into literals and placeholders. A stray `}` or an unclosed or malformed
    `{...}` is E702 (located at the brace when `origin` is given); it stays literal text."""
    diags: list[Diagnostic] = []
    parts: list[str | Placeholder] = []
    buf: list[str] = []
    pos = 0
    while True:
        m = _BRACES.search(text, pos)
        if m is None:
            buf.append(text[pos:])
            break
        buf.append(text[pos:m.start()])
        tok = m.group(0)
        if tok in ("{{", "}}"):
            buf.append(tok[0])
            pos = m.end()
            continue
        line, col = _line_col(text, m.start())
        where = origin.span(line, col) if origin is not None else None
        if tok == "}":
            if where is not None:
                diags.append(Diagnostic("E702", "a '}' closes no placeholder", where,
                                        "write '}}' for a literal brace"))
            buf.append("}")
            pos = m.end()
            continue
        close = text.find("}", m.end())
        inner = text[m.end():close] if close >= 0 else ""
        if close < 0 or not _PLACEHOLDER.match(inner):
            if where is not None:
                what = "an unclosed '{'" if close < 0 else f"'{{{inner}}}' is not a placeholder"
                diags.append(Diagnostic("E702", what, where,
                                        "a placeholder is a parameter name, optionally with .field "
                                        "steps, such as {reservation_id}; write '{{' for a literal brace"))
            end = m.end() if close < 0 else close + 1  # the whole malformed text stays literal
            buf.append(text[m.start():end])
            pos = end
            continue
        if "".join(buf):
            parts.append("".join(buf))
        buf = []
        parts.append(Placeholder(tuple(inner.split(".")), col, line))
        pos = close + 1
    if "".join(buf):
        parts.append("".join(buf))
    merged: list[str | Placeholder] = []
    for p in parts:  # adjacent literals (after escapes) as one string
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return MessageTemplate(text, tuple(merged)), diags


def check_message(template: MessageTemplate, params: Mapping[str, Type], schema: Schema,
                  origin: Origin) -> list[Diagnostic]:
    """E701 for each placeholder that names no parameter, or a field its type lacks."""
    out: list[Diagnostic] = []
    for ph in template.placeholders:
        where = origin.span(ph.line, ph.col)
        head = ph.path[0]
        if head not in params:
            out.append(Diagnostic("E701", f"unknown placeholder {ph.text}: the tool has no parameter '{head}'",
                                  where, name_hint(head, params) if params else "the tool has no parameters"))
            continue
        t: Type = params[head]
        for i, step in enumerate(ph.path[1:], 1):
            t, problem, hint = _step(schema, t, step)
            if problem:
                out.append(Diagnostic("E701", f"unknown placeholder {ph.text}: {'.'.join(ph.path[:i])} "
                                      f"{problem}", where, hint))
                break
    return out


# ---------------------------------------------------------------- helpers


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _step(schema: Schema, t: Type, step: str) -> tuple[Type, str | None, str | None]:
    """(the type below `step`, a problem in words or None, a hint)."""
    found: list[Type] = []
    fields: list[str] = []
    for o in schema.options(t):
        if o == ANY:
            return ANY, None, None
        if isinstance(o, ModelT) and o.name in schema.models:
            f = schema.field(o.name, step)
            if f is not None:
                found.append(f.type)
            fields += list(schema.models[o.name])
        elif isinstance(o, ModelT):
            return ANY, None, None  # an unknown model is reported elsewhere (E203)
        elif isinstance(o, DictT):
            found.append(o.value)
        elif isinstance(o, ListT) and step.isdigit():
            found.append(o.item)
    if found:
        return union(*found), None, None
    if fields:
        return ANY, f"has no field '{step}'", did_you_mean(step, fields)
    kind = t.name if isinstance(t, Prim) else str(t)
    return ANY, f"is {kind}: it has no '{step}' to look up", None


def _lookup(values: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = values.get(path[0])
    for step in path[1:]:
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, Sequence) and not isinstance(node, str) and step.isdigit() \
                and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    return node


def _show(value: Any) -> str:
    """`str()` of a JSON value, with views turned into plain data first."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return str(value)
    return str(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value
