"""A model's text → an artifact (a JSON object valid under its artifact model).

Models wrap JSON in code fences, add a sentence after it, or write near-JSON (single quotes,
trailing commas, Python's True/None). We accept all of that, and nothing else: every
candidate is tried in a fixed order (fenced blocks, the whole text, the first balanced
object), each as JSON and then as a Python literal; the first object wins. The result is
checked against the artifact schema, and a failure says what could not be parsed and why.
Text nested deeper than `MAX_DEPTH` brackets is refused before any parser sees it (no
artifact is that deep; a parser would recurse on it), and a parser's RecursionError is a
parse failure like any other.
"""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache
from typing import Any

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.S)
_JSON_WORDS = {"true": "True", "false": "False", "null": "None"}
MAX_DEPTH = 64  # brackets; the deepest artifact (a Dialog's tool call arguments) needs about 8
_BRACKETS = re.compile(r"""[\[\]{}()"'\\]""")


class ParseError(ValueError):
    """The text holds no usable artifact; `problems` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def candidates(text: str) -> list[str]:
    """Where a JSON object may be in `text`, most explicit first."""
    out = [m.group(2).strip() for m in _FENCE.finditer(text)]
    if "```" in text and not out:  # an opened fence the model never closed (truncated)
        out.append(text.split("```", 1)[1].split("\n", 1)[-1].strip())
    out.append(text.strip())
    span = balanced_object(text)
    if span is not None:
        out.append(span)
    seen: list[str] = []
    return [c for c in out if c and not (c in seen or seen.append(c))]


def balanced_object(text: str) -> str | None:
    """The first `{...}` whose braces balance, strings (either quote) respected."""
    start = text.find("{")
    while start >= 0:
        depth, quote, escaped = 0, None, False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        if depth > 0:  # never closed (a truncated answer): every later brace is inside it
            return None
        start = text.find("{", start + 1)
    return None


def _pythonish(text: str) -> str:
    """JSON's true/false/null as Python words, outside strings, for `ast.literal_eval`."""
    out, i, quote = [], 0, None
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif ch.isalpha():
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            out.append(_JSON_WORDS.get(word, word))
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _plain(value: Any) -> Any:
    """A Python literal as JSON data (tuples become lists); anything else is refused."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("an object key is not a string")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ValueError(f"{type(value).__name__} is not JSON")


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting (`{[(`) of `text`, strings of either quote skipped: a
    cheap pass over the bracket, quote and backslash characters only."""
    depth = deepest = 0
    quote, skip = None, -1  # skip: the position of a character a backslash escapes
    for m in _BRACKETS.finditer(text):
        i, ch = m.start(), m.group()
        if i == skip:
            continue
        if quote:
            if ch == "\\":
                skip = i + 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "{[(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}])":
            depth -= 1
    return deepest


def value_depth(value: Any) -> int:
    """How deeply a parsed value nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if items is not None:
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in items if isinstance(x, (dict, list)))
    return deepest


def loads_lenient(text: str) -> tuple[Any, str | None]:
    """(value, None) for JSON or near-JSON text, else (None, why). Nothing deeper than
    MAX_DEPTH gets through: later code (schemas, the engine) may recurse on what it gets."""
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        return None, f"nested {depth} levels deep (at most {MAX_DEPTH})"
    try:
        value, why = json.loads(text), None
    except ValueError as exc:
        value, why = None, f"not JSON ({exc})"
    except RecursionError:  # nested deeper than the interpreter's stack: an answer, not a crash
        return None, "not JSON (nested too deeply to read)"
    if why is not None:
        try:
            value, why = _plain(ast.literal_eval(_pythonish(text))), None
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None, why
    if value_depth(value) > MAX_DEPTH:
        return None, f"nested more than {MAX_DEPTH} levels deep"
    return value, None


def extract_object(text: Any) -> dict:
    """The first JSON object in a model's text, or ParseError saying what was there."""
    if not isinstance(text, str) or not text.strip():
        raise ParseError(["the model answered no text"])
    problems = []
    for cand in candidates(text):
        value, why = loads_lenient(cand)
        if isinstance(value, dict):
            return value
        if why is None:
            why = f"a JSON {type(value).__name__}, not an object"
        problems.append(f"{_preview(cand)}: {why}")
    head = f"no JSON object in the answer ({len(text)} chars)"
    if "{" in text and balanced_object(text) is None:
        head += "; its braces never close (cut off?)"
    raise ParseError([head] + problems[:3])


@lru_cache(maxsize=1)
def _schema() -> Any:
    from eigenlang.resolve import artifact_schema

    return artifact_schema()


def parse_artifact(text: Any, type_name: str, *, defaults: dict | None = None,
                   forced: dict | None = None, schema: Any = None) -> dict:
    """An artifact of `type_name` from a model's text. `defaults` fill fields the model left
    out, `forced` replace what it must not decide; keys the model invented are dropped (the
    models are closed). Raises ParseError listing every problem."""
    from eigenlang.types import ModelT

    schema = schema or _schema()
    fields = schema.models.get(type_name)
    if fields is None:
        raise ParseError([f"unknown artifact type {type_name!r}"])
    obj = extract_object(text)
    if type_name == "Dialog" and "messages" not in obj and isinstance(obj.get("dialog"), dict):
        obj = obj["dialog"]  # a common wrapping; nothing else is unwrapped
    value = {**(defaults or {}), **{k: v for k, v in obj.items() if k in fields}, **(forced or {})}
    problems = schema.validate(value, ModelT(type_name), limit=8)
    if problems:
        raise ParseError([f"{type_name}: {p}" for p in problems])
    return value


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[:width - 3] + "...")
