"""The formatter: one canonical text per program, with the author's comments kept.

Canonical means:
- top-level keys in a fixed order (`eigenlang`, `workflow`|`domain`, `description`, then the
  kind's other keys in the surface model's field order); keys of every declaration (agents,
  tools, params, models, judge, evolution...) in the surface model's order; unknown keys keep
  their relative order at the end, so a program with errors still formats;
- names inside a named map (agents, tools, models...) keep the author's order: it is meaning
  for people (the order agents are read in), not noise;
- indentation 2 (the YAML configuration of `eigenlang.source`), long scalars never wrapped;
  a flow collection (`{a: 1}`, `[a, b]`) that does not fit in 100 columns goes block style;
- multi-line strings as literal block scalars (`|`);
- the flow block one statement per line, single spaces around arrows (`A -> B -> C`,
  `A -> B when g`, `loop A <-> B until e max N`); its comment lines and trailing comments
  are kept, a line that does not parse is kept as written;
- at most one blank line in a row; none right below a parent key; no trailing blank lines.

Comments survive reordering: the comment lines above a key travel with that key (re-indented
to its column), an end-of-line comment stays on its line (at its column), and the document's
head comment stays at the top (only its last paragraph, when a blank line separates it and
it sits right above the first key, counts as that key's comment). ruamel stores the lines
above a key as the tail of the *previous* key's value, so before keys move those tails are
detached and re-attached as the moved key's own "before" comment.

Guard and `until` texts are copied verbatim (only trimmed), never re-spelled: the semantic
hash covers them, and formatting must not change it. A text that is not valid YAML, or not a
mapping, is returned unchanged (the checker reports why). As a last line of defence the
output is re-read and compared with the input as data; if the meaning differs the input is
returned unchanged.
"""

from __future__ import annotations

import itertools
import re
import types as pytypes
import typing
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString
from ruamel.yaml.tokens import CommentToken

from .diagnostics import Diagnostics, Origin
from .flow import Flow, Loop, parse_flow, render_flow
from .source import load_source, round_trip_yaml, to_plain
from .surface import PROGRAM_KINDS

HEAD_KEYS = ("eigenlang", "workflow", "domain", "description")  # when the kind is unknown
_FLOW_ORIGIN = Origin("<flow>", ((1, 1),))
LINE_WIDTH = 100  # a flow collection longer than this goes block style
_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


# ============================================================================ public API
def format_text(text: str) -> str:
    """The canonical text of a program; the input itself when it is not a YAML mapping."""
    return format_source(text)[0]


def format_source(text: str, path: str | Path = "<input>") -> tuple[str, Diagnostics]:
    """(canonical text, problems). A text that cannot be formatted (YAML that does not read,
    an empty document, one that is not a mapping) comes back unchanged, with the diagnostics
    that say why, as `eigen check` words them."""
    src = load_source(path, text)
    data = src.data
    if src.diags.errors:
        return text, src.diags
    if not isinstance(data, CommentedMap):
        if data is None:
            src.diags.error("E101", "empty program: expected 'eigenlang: 1'", src.span(()))
        else:
            src.diags.error("E105", "a program is a YAML mapping of keys", src.span(()),
                            "start the file with 'eigenlang: 1'")
        return text, src.diags
    meaning = _meaning(to_plain(data))
    kind = "workflow" if "workflow" in data else "domain" if "domain" in data else None
    model = PROGRAM_KINDS.get(kind) if kind else None
    _walk(data, model, head=("eigenlang", kind, "description") if kind else HEAD_KEYS)
    if kind == "workflow" and isinstance(data.get("flow"), str):
        data["flow"] = LiteralScalarString(format_flow(str(data["flow"])))
    _normalise_blank_lines(data)
    out = dump_text(data)
    out = out.rstrip("\n") + "\n" if not _ends_in_kept_block(data) else out
    return (out if _same_meaning(meaning, out) else text), src.diags


def dump_text(data: Any) -> str:
    """The project's YAML configuration, without re-wrapping long scalars: a long expression
    stays on one line (wrapped quoted strings read badly and make noisy diffs)."""
    yaml = round_trip_yaml()
    yaml.width = 1 << 16
    buf = StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def format_file(path: str | Path, check: bool = False,
                diags: Diagnostics | None = None) -> tuple[bool, str]:
    """Format one file in place (or only report, with check=True): (changed, new text).

    What stops formatting (a file that cannot be read or decoded, YAML that does not read, a
    document that is not a mapping) leaves the file alone and is added to `diags`. Raises
    OSError when the file cannot be written; the CLI reports that.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        problems = load_source(p).diags  # reads it again, to say why and where
        if diags is not None:
            diags.extend(problems)
        return False, ""
    new, problems = format_source(text, p)
    if diags is not None:
        diags.extend(problems)
    changed = new != text
    if changed and not check:
        p.write_text(new, encoding="utf-8")
    return changed, new


# ============================================================================ flow blocks
@dataclass
class FlowStmt:
    """One line of a flow block: a chain of edges, a loop, or a line kept verbatim
    (a comment, a blank line, or a statement that does not parse)."""

    names: list[str] = field(default_factory=list)  # a chain A -> B -> C
    guard: str | None = None  # guards the chain's last edge
    loop: Loop | None = None
    raw: str | None = None
    comment: str | None = None  # a trailing '# ...' of a statement

    def edges(self) -> list[tuple[str, str]]:
        return list(zip(self.names, self.names[1:]))

    def render(self) -> str:
        if self.raw is not None:
            return self.raw
        if self.loop is not None:
            body = render_flow(Flow(loops=[self.loop])).rstrip("\n")
        else:  # the statement syntax of render_flow, with the chain kept on one line
            body = " -> ".join(self.names) + (f" when {self.guard}" if self.guard else "")
        return body + (f"  {self.comment}" if self.comment else "")


def parse_flow_lines(text: str) -> list[FlowStmt]:
    """Split a flow text into statements, one per line, keeping comments and blank lines."""
    stmts: list[FlowStmt] = []
    for line in text.split("\n"):
        # '#' cannot occur inside a flow statement (the grammar's guard text excludes it)
        code, hash_, rest = line.partition("#")
        comment = (hash_ + rest).rstrip() or None
        if not code.strip():
            stmts.append(FlowStmt(raw=comment or ""))
            continue
        flow, diags = parse_flow(code, _FLOW_ORIGIN)
        if any(d.code in ("E003", "E403") for d in diags) or not (flow.edges or flow.loops):
            stmts.append(FlowStmt(raw=line.strip()))
        elif flow.loops:
            stmts.append(FlowStmt(loop=flow.loops[0], comment=comment))
        else:
            names = [flow.edges[0].src] + [e.dst for e in flow.edges]
            stmts.append(FlowStmt(names=names, guard=flow.edges[-1].guard_text, comment=comment))
    return stmts


def render_flow_lines(stmts: list[FlowStmt]) -> str:
    """Canonical flow text: one statement per line, no leading, trailing or doubled blanks."""
    lines: list[str] = []
    for s in stmts:
        line = s.render()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def format_flow(text: str) -> str:
    return render_flow_lines(parse_flow_lines(text))


# ============================================================================ the tree walk
def _walk(node: Any, tp: Any, col: int = 0, head: tuple[str, ...] = ()) -> None:
    """Reorder keys after the surface model (children first), make multi-line strings literal
    block scalars, and re-seat comments. `col` is the output column of this node's keys (or
    dashes); `head` (the document root only) names the keys that go first."""
    shape = _narrow(tp, node)
    if isinstance(node, CommentedMap):
        child_types: dict[Any, Any] = {}
        order: list[Any] = list(node)
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            fields = [(f.alias or n, f.annotation) for n, f in shape.model_fields.items()]
            child_types = dict(fields)
            first = [k for k in head if k in node]
            known = [k for k, _ in fields if k in node and k not in first]
            order = first + known + [k for k in node if k not in first and k not in child_types]
        elif head:
            first = [k for k in head if k in node]
            order = first + [k for k in node if k not in first]
        elif typing.get_origin(shape) is dict:
            child_types = {k: typing.get_args(shape)[1] for k in node}
        for key in list(node):
            value = node[key]
            if isinstance(value, str):
                node[key] = _block(value)
                if node[key] is not value:
                    _lift_eol_comment(node, key)
                continue
            _walk(value, child_types.get(key), col + 2)
            _unwrap_long(node, key, col + len(str(key)) + 2)
        if node:
            _reorder(node, order, root=bool(head), col=col)
    elif isinstance(node, CommentedSeq):
        item_tp = typing.get_args(shape)[0] if typing.get_origin(shape) is list else None
        for i, value in enumerate(node):
            if isinstance(value, str):
                node[i] = _block(value)
            else:
                _walk(value, item_tp, col + 2)


def _narrow(tp: Any, node: Any) -> Any:
    """The branch of an annotation that fits `node` (a union's model branch for a mapping)."""
    if tp is None:
        return None
    if typing.get_origin(tp) in (typing.Union, pytypes.UnionType):
        for arg in typing.get_args(tp):
            found = _narrow(arg, node)
            if found is not None:
                return found
        return None
    if isinstance(node, dict):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        return tp if typing.get_origin(tp) is dict else None
    if isinstance(node, list):
        return tp if typing.get_origin(tp) is list else None
    return None


def _block(value: str) -> str:
    """Multi-line strings (a line break inside, not only at the end) become `|` scalars."""
    if "\n" in value.strip("\n") and not isinstance(value, LiteralScalarString):
        return LiteralScalarString(str(value))
    return value


def _lift_eol_comment(node: CommentedMap, key: Any) -> None:
    """A string that became a block scalar cannot keep a comment at the end of its line (the
    block follows there): the comment moves to the line above the key."""
    slot = node.ca.items.get(key)
    tok = slot[2] if slot else None
    if not isinstance(tok, CommentToken):
        return
    cut = tok.value.find("\n")
    eol, rest = (tok.value, "") if cut < 0 else (tok.value[: cut + 1], tok.value[cut + 1:])
    slot[2] = CommentToken(rest, CommentMark(0)) if rest else None
    if eol.strip():
        put_before(node, key, eol.strip() + "\n")


def _inline_len(node: Any) -> int:
    if isinstance(node, dict):
        return 2 + sum(len(str(k)) + 2 + _inline_len(v) + 2 for k, v in node.items())
    if isinstance(node, list):
        return 2 + sum(_inline_len(v) + 2 for v in node)
    return len(str(node)) + (2 if isinstance(node, str) else 0)


def _unwrap_long(parent: CommentedMap, key: Any, start: int) -> None:
    """A flow collection (`{a: 1}`, `[a, b]`) that would not fit on its line becomes block
    style, rather than being wrapped mid-way by the emitter. Its end-of-line comment stays
    on the key's line; the lines after it move below the last entry."""
    node = parent[key]
    if not (_is_flow_style(node) and start + _inline_len(node) > LINE_WIDTH):
        return
    rest = take_tail(parent, key)
    slot = parent.ca.items.get(key)
    if slot and isinstance(slot[2], CommentToken):
        slot[2] = CommentToken(" " + slot[2].value.lstrip(" "), CommentMark(0))
        node.ca.comment = [slot[2], None]
    node.fa.set_block_style()
    put_tail(parent, key, rest)


# ============================================================================ comments
def _is_flow_style(node: Any) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq)) and bool(node.fa.flow_style())


def _last(node: Any) -> Any:
    return list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1


def _is_block_scalar(value: Any) -> bool:
    return isinstance(value, (LiteralScalarString, FoldedScalarString))


def tail_slot(node: Any, key: Any) -> tuple[list, int, Any]:
    """Where ruamel keeps the comment text that follows the value of `node[key]`: the slot of
    the deepest last entry of a block collection, else the entry's own end-of-line slot.
    Returns (slot, index in slot, the scalar the slot follows)."""
    value = node[key]
    while isinstance(value, (CommentedMap, CommentedSeq)) and value and not _is_flow_style(value):
        node, key = value, _last(value)
        value = node[key]
    slot = node.ca.items.setdefault(key, [None, None, None, None])
    return slot, (0 if isinstance(node, CommentedSeq) else 2), value


def take_tail(node: Any, key: Any) -> str:
    """Detach and return the whole lines that follow the value of `node[key]` (comments and
    blank lines), leaving its end-of-line comment in place."""
    slot, i, owner = tail_slot(node, key)
    tok = slot[i]
    if not isinstance(tok, CommentToken):
        return ""
    text = tok.value
    if _is_block_scalar(owner):
        eol, rest = "", text  # a block scalar consumes its own line break
    else:
        cut = text.find("\n")
        eol, rest = (text, "") if cut < 0 else (text[: cut + 1], text[cut + 1:])
    if eol.strip():
        tok.value = eol
    else:
        slot[i] = None
        if _is_flow_style(owner) and owner.ca.comment and owner.ca.comment[0] is tok:
            owner.ca.comment[0] = None  # a flow collection shares the token with its key
    return rest


def put_tail(node: Any, key: Any, text: str) -> None:
    """Append whole lines (comments, blank lines) after the value of `node[key]`."""
    if not text:
        return
    slot, i, owner = tail_slot(node, key)
    tok = slot[i]
    if isinstance(tok, CommentToken):
        tok.value = (tok.value if tok.value.endswith("\n") else tok.value + "\n") + text
    else:
        slot[i] = CommentToken(("" if _is_block_scalar(owner) else "\n") + text, CommentMark(0))
        if _is_flow_style(owner):
            owner.ca.comment = [slot[i], None]


def put_before(node: CommentedMap, key: Any, text: str) -> None:
    """Attach whole lines above `key` (they move with the key)."""
    if not text:
        return
    slot = node.ca.items.setdefault(key, [None, None, None, None])
    slot[1] = [CommentToken(text, CommentMark(0))] + list(slot[1] or [])


def _take_head(node: CommentedMap) -> str:
    """The lines between a nested map's parent key and its first key."""
    head = node.ca.comment
    if not head:
        return ""
    text = ""
    if isinstance(head[0], CommentToken):
        value = head[0].value
        cut = value.find("\n")
        if 0 <= cut < len(value) - 1:
            text, head[0].value = value[cut + 1:], value[: cut + 1]
    if len(head) > 1 and head[1]:
        text += "".join(t.value for t in head[1] if isinstance(t, CommentToken))
        head[1].clear()
    return text


def _reorder(node: CommentedMap, order: list[Any], root: bool, col: int) -> None:
    """Put the keys of `node` in `order`; the lines above each key travel with it, re-indented
    to the key's column, with at most one blank line in a row."""
    if _is_flow_style(node):  # a flow map `{a: 1, b: 2}` holds no comments inside
        for key in order:
            node.move_to_end(key)
        return
    keys = list(node)
    before = {keys[0]: _take_root_head(node) if root else _take_head(node)}
    for prev, nxt in itertools.pairwise(keys):
        before[nxt] = take_tail(node, prev)
    for key in keys:  # ruamel keeps some lines above a key in the key's own slot
        slot = node.ca.items.get(key)
        if slot and slot[1]:
            before[key] += "".join(t.value for t in slot[1] if isinstance(t, CommentToken))
            slot[1] = None
    end = take_tail(node, keys[-1])
    for key in order:
        node.move_to_end(key)
    # no blank line right below the parent key (or the document's head comment)
    before[order[0]] = before[order[0]].lstrip(" \t\n")
    for key in order:
        put_before(node, key, _lines(before[key], col))
    put_tail(node, order[-1], _lines(end, 0) if root else end)
    if root and node.ca.comment and node.ca.comment[1]:
        head = "".join(t.value for t in node.ca.comment[1] if isinstance(t, CommentToken))
        node.ca.comment[1] = [CommentToken(_lines(head, 0), CommentMark(0))]


def _take_root_head(doc: CommentedMap) -> str:
    """ruamel keeps the lines above the document's first key in its head comment. The head
    stays on top; only a last paragraph (after a blank line) right above the first key is
    that key's own comment and moves with it."""
    if not doc.ca.comment or not doc.ca.comment[1]:
        return ""
    text = "".join(t.value for t in doc.ca.comment[1] if isinstance(t, CommentToken))
    cut = text.rstrip("\n").rfind("\n\n")
    if cut < 0 or text.endswith("\n\n"):
        return ""
    doc.ca.comment[1] = [CommentToken(text[: cut + 2], CommentMark(0))]
    return text[cut + 2:]


def _lines(text: str, col: int) -> str:
    """Whole comment lines, re-indented to `col`; runs of blank lines squeezed to one."""
    if not text:
        return ""
    out: list[str] = []
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        line = line.strip()
        if line or (out and out[-1]) or not out:
            out.append(" " * col + line if line else "")
    if out and not any(out):
        out = [""]
    return "".join(line + "\n" for line in out)


def _normalise_blank_lines(node: Any) -> None:
    """At most one blank line in a row inside the comment tokens the reordering left alone."""
    ca = getattr(node, "ca", None)
    if ca is not None:
        for key, slot in ca.items.items():
            if isinstance(node, (dict, list)) and _in(node, key):
                owner = node[key]
                for j, part in enumerate(slot):
                    whole = isinstance(part, list) or (_is_block_scalar(owner) and j in (0, 2))
                    for tok in part if isinstance(part, list) else [part]:
                        _squeeze(tok, whole)
        for part in list(ca.comment or [])[1:] + [getattr(ca, "end", None)]:
            for tok in part if isinstance(part, list) else [part]:
                _squeeze(tok, True)
    for value in node.values() if isinstance(node, dict) else node if isinstance(node, list) else []:
        _normalise_blank_lines(value)


def _in(node: Any, key: Any) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and key < len(node)


def _squeeze(tok: Any, whole_lines: bool) -> None:
    if isinstance(tok, CommentToken) and tok.value:
        text = ("\n" if whole_lines else "") + tok.value
        text = _BLANK_RUN.sub("\n\n", text)
        tok.value = text[1:] if whole_lines else text


def _ends_in_kept_block(data: CommentedMap) -> bool:
    """True when the document ends in a `|+` scalar, whose trailing newlines are content."""
    if not data:
        return False
    last = tail_slot(data, _last(data))[2]
    return _is_block_scalar(last) and last.endswith("\n\n")


# ============================================================================ safety net
def _meaning(data: Any) -> Any:
    """Plain program data, with the flow as its list of statements (comments dropped)."""
    if isinstance(data, dict) and isinstance(data.get("flow"), str):
        stmts = parse_flow_lines(data["flow"])
        for s in stmts:
            s.comment = None
        data["flow"] = [s.render() for s in stmts if s.raw is None or s.raw[:1] not in ("", "#")]
    return data


def _same_meaning(before: Any, after: str) -> bool:
    """The formatted text reads back as the same data as the input."""
    try:
        return _meaning(to_plain(load_source("<output>", after).data)) == before
    except Exception:  # noqa: BLE001 — any surprise means "do not trust the output"
        return False
