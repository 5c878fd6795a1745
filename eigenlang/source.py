"""Reading program files: YAML with positions and comments kept (ruamel.yaml round-trip).

A `SourceFile` holds the round-trip tree and answers "where is this?" for any path into it,
so later stages can point diagnostics at the exact key or value — including characters inside
an embedded expression or flow string (via `Origin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Iterable

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from .diagnostics import Diagnostics, Origin, Span, display_path

PathKey = tuple[Any, ...]


def round_trip_yaml() -> YAML:
    """The one YAML configuration used to read and write programs."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    y.allow_duplicate_keys = False
    return y


@dataclass
class SourceFile:
    path: str
    text: str
    data: Any = None
    diags: Diagnostics = field(default_factory=Diagnostics)

    # -- positions ---------------------------------------------------------------------------
    def _node(self, path: PathKey) -> Any:
        node = self.data
        for key in path:
            node = node[key]
        return node

    def span(self, path: PathKey, *, key: bool = False) -> Span:
        """Span of the value at `path` (or of its key, with key=True).

        Falls back to the closest enclosing node that has a position, so any path (even one
        into data that does not exist, as pydantic's "missing" errors give) yields a place.
        """
        path = tuple(path)
        for depth in range(len(path), 0, -1):
            parent_path, last = path[: depth - 1], path[depth - 1]
            try:
                parent = self._node(parent_path)
            except (KeyError, IndexError, TypeError):
                continue
            lc = getattr(parent, "lc", None)
            if lc is None:
                continue
            try:
                if isinstance(parent, CommentedMap) and last in parent:
                    kl, kc, vl, vc = lc.key(last) + lc.value(last)
                    line, col = (kl, kc) if (key or depth < len(path)) else (vl, vc)
                    return Span(self.path, line + 1, col + 1)
                if isinstance(parent, CommentedSeq) and isinstance(last, int) and last < len(parent):
                    line, col = lc.item(last)
                    return Span(self.path, line + 1, col + 1)
            except (KeyError, TypeError, IndexError, AttributeError):
                pass
            # the key does not exist: point at the parent mapping itself
            return Span(self.path, lc.line + 1, lc.col + 1)
        return Span(self.path, 1, 1)

    def origin(self, path: PathKey) -> Origin:
        """Where the characters of the string at `path` sit in the file."""
        value = self._node(path)
        start = self.span(path)
        if isinstance(value, (DoubleQuotedScalarString, SingleQuotedScalarString)):
            return Origin(self.path, ((start.line, start.col + 1),))
        if isinstance(value, (LiteralScalarString, FoldedScalarString)):
            lines = self.text.splitlines()
            first = start.line  # 0-based index of the line after the `|` indicator
            indent = None
            for ln in lines[first:]:
                if ln.strip():
                    indent = len(ln) - len(ln.lstrip(" "))
                    break
            indent = indent or 0
            n = max(1, str(value).count("\n") + 1)
            return Origin(self.path, tuple((first + 1 + i, indent + 1) for i in range(n)))
        return Origin(self.path, ((start.line, start.col),))

    def keys(self, path: PathKey) -> Iterable[str]:
        node = self._node(path)
        return list(node.keys()) if isinstance(node, dict) else []


def load_source(path: str | Path, text: str | None = None) -> SourceFile:
    """Read a YAML program; a syntax error becomes an E001 diagnostic, never an exception."""
    p = display_path(path)
    src = SourceFile(p, "")
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            src.diags.error("E107", f"file not found: {p}", Span(p, 1, 1))
            return src
        except (OSError, UnicodeDecodeError) as exc:
            src.diags.error("E107", f"cannot read {p}: {exc}", Span(p, 1, 1))
            return src
    src.text = text
    try:
        src.data = round_trip_yaml().load(StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "invalid YAML"
        src.diags.error("E001", f"YAML syntax error: {msg}", Span(p, line, col),
                        "check indentation and quoting; expressions with ':' need quotes")
    except (YAMLError, ValueError, RecursionError) as exc:  # odd inputs: still a diagnostic
        src.diags.error("E001", f"YAML syntax error: {exc}".splitlines()[0], Span(p, 1, 1))
    return src


def dump_yaml(data: Any) -> str:
    buf = StringIO()
    round_trip_yaml().dump(data, buf)
    return buf.getvalue()


def to_plain(node: Any) -> Any:
    """ruamel containers → plain dict/list/str (for hashing and pydantic)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node
