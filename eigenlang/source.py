"""Reading program files: YAML with positions (and, when asked for, comments) kept.

A `SourceFile` answers "where is this?" for any path into the program, so later stages can
point diagnostics at the exact key or value — including characters inside an embedded
expression or flow string (via `Origin`).

Two readers, one meaning. Compiling only needs the data and the positions, so a program is
first read by libyaml (PyYAML's C parser): many times faster than the pure-Python
round-trip reader on large programs. The formatter and the mutation API need the round-trip
tree with its comments (ruamel.yaml): `SourceFile.data` builds it on first use. Anything the
fast reader is not sure to read exactly as ruamel.yaml does (tags, anchored scalars,
directives, non-string keys, timestamps, empty values, tabs, any libyaml error) is read by
ruamel.yaml instead, so data, positions and syntax errors are the same whichever reader ran
(tests/eigenlang/test_source_fast.py compares the two on every program and on fuzzed ones).

Whatever the text, reading it is bounded and says what is wrong where (yaml_limits.py: alias
expansion, nesting, tags; here: undecodable bytes, characters YAML refuses, escapes that are
half a surrogate pair): every problem is a located diagnostic, never an exception.
"""

from __future__ import annotations

import re
from functools import lru_cache
from io import StringIO
from pathlib import Path
from typing import Any, Iterable

from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from . import yaml_limits
from .diagnostics import Diagnostics, Origin, Span, display_path

try:  # PyYAML built with libyaml (no CSafeLoader without it)
    from yaml import (
        AliasEvent,
        DocumentEndEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )
    from yaml import CSafeLoader as CLoader
    from yaml import YAMLError as YAMLErrorC
except ImportError:  # pragma: no cover - then every file is read by ruamel.yaml
    CLoader = None

PathKey = tuple[Any, ...]
_QUOTED = (DoubleQuotedScalarString, SingleQuotedScalarString)
_BLOCK = (LiteralScalarString, FoldedScalarString)


def round_trip_yaml() -> YAML:
    """The one YAML configuration used to read and write programs."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    y.allow_duplicate_keys = False
    return yaml_limits.configure(y)  # alias, nesting and tag limits (yaml_limits.py)


class SourceFile:
    """One program file: its text, its data and where every part of it is.

    `plain` is the data as plain dict/list/str/int/float/bool/None (what `to_plain` gives);
    `data` the ruamel.yaml round-trip tree (comments kept), built on first use. Positions
    come from the round-trip tree once it exists (the formatter and the mutation API edit
    it in place), else from the fast reader's position tree.
    """

    def __init__(self, path: str, text: str = "", diags: Diagnostics | None = None):
        self.path = path
        self.text = text
        self.diags = diags if diags is not None else Diagnostics()
        self.plain: Any = None
        self._lc: LineCol | None = None  # the fast reader's positions (None: none or rt)
        self._rt: Any = None
        self._rt_loaded = False

    # -- data ----------------------------------------------------------------------------
    @property
    def data(self) -> Any:
        """The round-trip tree (CommentedMap …), read on first use."""
        if not self._rt_loaded:
            self._rt_loaded = True
            if self.text:  # (a file that could not be read has no text)
                self._rt = _read_round_trip(self.text, self.path, self.diags)
        return self._rt

    def _use_rt(self) -> bool:
        return self._rt_loaded or self._lc is None

    # -- positions ---------------------------------------------------------------------------
    def _node(self, path: PathKey) -> Any:
        node = self.data if self._use_rt() else self.plain
        for key in path:
            node = node[key]
        return node

    def _located(self, path: PathKey) -> tuple[Any, Any]:
        """(node at `path`, its position record: ruamel's `lc` or a fast `LineCol`; None for
        a scalar). Raises as indexing the data does when the path does not exist."""
        if self._use_rt():
            node = self._node(path)
            return node, getattr(node, "lc", None)
        node, lc = self.plain, self._lc
        for key in path:
            node = node[key]
            lc = lc.kids[key] if isinstance(lc, LineCol) else None
        return node, lc if isinstance(lc, LineCol) else None

    def span(self, path: PathKey, *, key: bool = False) -> Span:
        """Span of the value at `path` (or of its key, with key=True).

        Falls back to the closest enclosing node that has a position, so any path (even one
        into data that does not exist, as pydantic's "missing" errors give) yields a place.
        """
        path = tuple(path)
        for depth in range(len(path), 0, -1):
            parent_path, last = path[: depth - 1], path[depth - 1]
            try:
                parent, lc = self._located(parent_path)
            except (KeyError, IndexError, TypeError):
                continue
            if lc is None:
                continue
            try:
                if isinstance(parent, dict) and last in parent:
                    kl, kc, vl, vc = lc.key(last) + lc.value(last)
                    line, col = (kl, kc) if (key or depth < len(path)) else (vl, vc)
                    return Span(self.path, line + 1, col + 1)
                if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
                    line, col = lc.item(last)
                    return Span(self.path, line + 1, col + 1)
            except (KeyError, TypeError, IndexError, AttributeError):
                pass
            # the key does not exist: point at the parent mapping itself
            return Span(self.path, lc.line + 1, lc.col + 1)
        return Span(self.path, 1, 1)

    def _style(self, path: PathKey) -> str:
        """'quoted', 'block' or 'plain': how the string at `path` is written."""
        value = self._node(path)  # a missing path raises here, whichever tree is used
        if self._use_rt():
            return ("quoted" if isinstance(value, _QUOTED) else
                    "block" if isinstance(value, _BLOCK) else "plain")
        if not path or not isinstance(value, str):
            return "plain"
        _, parent = self._located(path[:-1])
        kid = parent.kids[path[-1]] if parent is not None else None
        return "quoted" if kid in ("'", '"') else "block" if kid in ("|", ">") else "plain"

    def origin(self, path: PathKey) -> Origin:
        """Where the characters of the string at `path` sit in the file."""
        style = self._style(path)
        start = self.span(path)
        if style == "quoted":
            return Origin(self.path, ((start.line, start.col + 1),))
        if style == "block":
            lines = self.text.splitlines()
            first = start.line  # 0-based index of the line after the `|` indicator
            indent = None
            for ln in lines[first:]:
                if ln.strip():
                    indent = len(ln) - len(ln.lstrip(" "))
                    break
            indent = indent or 0
            n = max(1, str(self._node(path)).count("\n") + 1)
            return Origin(self.path, tuple((first + 1 + i, indent + 1) for i in range(n)))
        return Origin(self.path, ((start.line, start.col),))

    def keys(self, path: PathKey) -> Iterable[str]:
        node = self._node(path)
        return list(node.keys()) if isinstance(node, dict) else []


# ------------------------------------------------------------------------ the fast reader
class LineCol:
    """Positions of one mapping or sequence, as ruamel.yaml's `lc` gives them (0-based):
    `line`/`col` of the container, `data[key] = (key line, key col, value line, value col)`
    for a mapping, `data[index] = (line, col)` for a sequence. `kids` has the shape of the
    container: the child's `LineCol`, or for a quoted/block string its style character."""

    __slots__ = ("col", "data", "kids", "line")

    def __init__(self, line: int, col: int, data: dict, kids: dict | list):
        self.line, self.col, self.data, self.kids = line, col, data, kids

    def key(self, k: Any) -> tuple[int, int]:
        d = self.data[k]
        return d[0], d[1]

    def value(self, k: Any) -> tuple[int, int]:
        d = self.data[k]
        return d[2], d[3]

    def item(self, i: int) -> tuple[int, int]:
        return self.data[i]


class _Decline(Exception):
    """The fast reader is not sure to read this as ruamel.yaml does."""


_RESOLVER = VersionedResolver(version=(1, 2))  # ruamel.yaml's own rules for plain scalars
_CONSTRUCTOR = round_trip_yaml().constructor  # … and its own numbers (ScalarInt, ScalarFloat)
_STR = "tag:yaml.org,2002:str"
# First characters for which the resolver has a rule; any other plain scalar is a string.
_RULE_STARTS = frozenset(_RESOLVER.versioned_resolver)
_BUILT = {"tag:yaml.org,2002:" + t for t in ("null", "bool", "int", "float")}
# Characters the two readers treat differently: libyaml takes tabs as separators in more
# places, NEL / LS / PS as line breaks (ruamel.yaml does not, so lines would differ), and a
# byte-order mark inside the text as nothing (ruamel.yaml counts it as a column).
_DECLINE_CHARS = ("\t", "\x85", "\u2028", "\u2029", "\ufeff")


@lru_cache(maxsize=4096)
def _plain_scalar(text: str) -> Any:
    """The value of an unquoted scalar under YAML 1.2, built by ruamel.yaml's constructor."""
    if text and text[0] not in _RULE_STARTS and None not in _RULE_STARTS:
        return text
    tag = _RESOLVER.resolve(ScalarNode, text, (True, False))
    name = str(tag)
    if name == _STR:
        return text
    if name not in _BUILT or text == "":
        raise _Decline(text)  # timestamps, merge keys, ...; and empty values (positions differ)
    return _CONSTRUCTOR.yaml_constructors[name](_CONSTRUCTOR, ScalarNode(tag, text))


def fast_load(text: str) -> tuple[Any, LineCol | None] | None:
    """(plain data, positions) read by libyaml, or None when ruamel.yaml must read it: on
    any libyaml error (ruamel.yaml then reports it, with its own message) and on anything
    the two readers might disagree on."""
    if CLoader is None or any(c in text for c in _DECLINE_CHARS):
        return None
    loader = CLoader(text)
    try:
        get = loader.get_event
        get()  # stream start
        ev = get()
        if isinstance(ev, StreamEndEvent):
            return None, None  # an empty file
        if ev.version is not None or ev.tags:  # %YAML / %TAG directives change the rules
            raise _Decline("directive")
        value, lc = _Reader(get).node(get())
        if not isinstance(get(), DocumentEndEvent) or not isinstance(get(), StreamEndEvent):
            raise _Decline("more than one document")
        return value, lc if isinstance(lc, LineCol) else None
    except (_Decline, YAMLErrorC, RecursionError, ValueError, TypeError, YAMLError):
        return None
    finally:
        loader.dispose()


def _mark(ev, kid) -> tuple[int, int]:
    """Where a node starts; an alias is placed where its anchored node is, as in ruamel.yaml."""
    if type(ev) is AliasEvent:
        return kid.line, kid.col
    return ev.start_mark.line, ev.start_mark.column


class _Reader:
    """Builds plain data and `LineCol`s from libyaml events, as ruamel.yaml would."""

    def __init__(self, get):
        self.get = get
        self.anchors: dict[str, tuple[Any, LineCol]] = {}
        self.named: set[str] = set()  # every anchor name met so far, finished or not
        self.depth = 0  # mappings and lists open around the next node
        self.sizes: dict[str, int] = {}  # nodes of each anchored value (yaml_limits.node_count)
        self.alias_uses = 0
        self.alias_nodes = 0

    def node(self, ev) -> tuple[Any, Any]:
        """One node from its first event: (plain value, LineCol | style character | None)."""
        kind = type(ev)
        if kind is ScalarEvent:
            if ev.anchor is not None or ev.tag is not None:
                raise _Decline("scalar with anchor or tag")  # ruamel.yaml keeps its own types
            return (_plain_scalar(ev.value), None) if not ev.style else (ev.value, ev.style)
        if kind is AliasEvent:
            # ruamel.yaml shares the anchored node, positions included; to_plain copies it
            if ev.anchor not in self.anchors:
                raise _Decline("unknown alias")  # (or a recursive one): ruamel.yaml decides
            value, lc = self.anchors[ev.anchor]
            self._count_alias(ev.anchor, value)  # before the copy: an alias bomb copies nothing
            return to_plain(value), lc
        if ev.tag is not None:
            raise _Decline("tag")
        if ev.anchor is not None:
            if ev.anchor in self.named:
                raise _Decline("anchor used twice")  # ruamel.yaml warns and rebinds at start
            self.named.add(ev.anchor)
        self.depth += 1
        if self.depth >= yaml_limits.MAX_DEPTH:  # near the limit: ruamel.yaml decides
            raise _Decline("deep")
        if kind is MappingStartEvent:
            value, lc = self._mapping(ev)
        elif kind is SequenceStartEvent:
            value, lc = self._sequence(ev)
        else:
            raise _Decline(kind.__name__)
        self.depth -= 1
        if ev.anchor is not None:
            self.anchors[ev.anchor] = (value, lc)
        return value, lc

    def _count_alias(self, anchor: str, value: Any) -> None:
        """Count one use of `*anchor` against yaml_limits; past a limit, ruamel.yaml reads the
        text and reports where (its composer counts the same way)."""
        size = self.sizes.get(anchor)
        if size is None:
            size = self.sizes[anchor] = yaml_limits.node_count(value, yaml_limits.MAX_ALIAS_NODES)
        self.alias_uses += 1
        self.alias_nodes += size
        if yaml_limits.alias_limit_error(anchor, self.alias_uses, self.alias_nodes, size, None):
            raise _Decline("aliases")

    def _mapping(self, ev) -> tuple[dict, LineCol]:
        get = self.get
        out: dict = {}
        data: dict = {}
        kids: dict = {}
        while True:
            kev = get()
            if type(kev) is MappingEndEvent:
                break
            if type(kev) is not ScalarEvent or kev.anchor is not None or kev.tag is not None:
                raise _Decline("complex key")
            key = kev.value if kev.style else _plain_scalar(kev.value)
            if not isinstance(key, str) or key in out:  # non-string or duplicate key
                raise _Decline("key")
            vev = get()
            out[key], kid = self.node(vev)
            kids[key] = kid
            data[key] = (kev.start_mark.line, kev.start_mark.column) + _mark(vev, kid)
        return out, LineCol(ev.start_mark.line, ev.start_mark.column, data, kids)

    def _sequence(self, ev) -> tuple[list, LineCol]:
        get = self.get
        items: list = []
        data: dict = {}
        kids: list = []
        while True:
            iev = get()
            if type(iev) is SequenceEndEvent:
                break
            value, kid = self.node(iev)
            data[len(items)] = _mark(iev, kid)
            items.append(value)
            kids.append(kid)
        return items, LineCol(ev.start_mark.line, ev.start_mark.column, data, kids)


def _read_round_trip(text: str, path: str, diags: Diagnostics) -> Any:
    """ruamel.yaml round-trip read; every failure becomes a located diagnostic: a syntax error
    E001, a crossed limit E007, a refused tag E008 (yaml_limits.py)."""
    try:
        return round_trip_yaml().load(StringIO(text))
    except yaml_limits.ReadError as exc:
        mark = exc.problem_mark
        diags.error(exc.code, exc.message, Span(path, mark.line + 1, mark.column + 1), exc.hint)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if yaml_limits.is_depth_error(exc):
            diags.error("E007", f"mappings and lists nested more than {yaml_limits.MAX_DEPTH} "
                        "levels deep", Span(path, line, col))
            return None
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "invalid YAML"
        diags.error("E001", f"YAML syntax error: {msg}", Span(path, line, col),
                    "check indentation and quoting; expressions with ':' need quotes")
    except ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line, col = _line_col(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else 0
        diags.error("E001", f"YAML syntax error: character U+{char:04X} is not allowed in YAML "
                    "text", Span(path, line, col), "write it as an escape in a double-quoted "
                    "string (\\x07), or remove it")
    except RecursionError:  # (nesting is bounded above; a safety net)
        diags.error("E007", "YAML nested too deeply to read", Span(path, 1, 1))
    except (YAMLError, ValueError) as exc:  # odd inputs: still a diagnostic
        diags.error("E001", f"YAML syntax error: {exc}".splitlines()[0], Span(path, 1, 1))
    return None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset into `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def load_source(path: str | Path, text: str | None = None, *, fast: bool = True) -> SourceFile:
    """Read a YAML program; a syntax error becomes an E001 diagnostic, never an exception.
    `fast=False` reads with ruamel.yaml only (the reference the fast reader is tested on)."""
    p = display_path(path)
    src = SourceFile(p, "")
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            src.diags.error("E107", f"file not found: {p}", Span(p, 1, 1))
            return src
        except UnicodeDecodeError as exc:
            src.diags.error("E001", f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} cannot "
                            "be decoded", Span(p, *_byte_line_col(exc.object, exc.start)),
                            "save the file as UTF-8")
            return src
        except OSError as exc:
            src.diags.error("E107", f"cannot read {p}: {exc}", Span(p, 1, 1))
            return src
    src.text = text
    found = fast_load(text) if fast else None
    if found is not None:
        src.plain, src._lc = found
    else:  # the fast reader declined: the round-trip reader decides (and reports errors)
        data = src.data
        src.plain = to_plain(data) if data is not None else None
    if ("\\u" in text or "\\U" in text) and src.plain is not None:
        _refuse_surrogates(src)
    return src


def _byte_line_col(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset into UTF-8 text."""
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[start:offset].decode("utf-8", "replace")) + 1


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_surrogates(src: SourceFile) -> None:
    """A `"\\ud800"` escape gives half a UTF-16 pair: not a character, and text holding it
    cannot be printed or written as UTF-8. Such a program is refused where it says so."""
    stack: list[tuple[PathKey, Any]] = [((), src.plain)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and _SURROGATE.search(k):
                    _surrogate_error(src, path + (k,), k, key=True)
                stack.append((path + (k,), x))
        elif isinstance(v, list):
            stack.extend((path + (i,), x) for i, x in enumerate(v))
        elif isinstance(v, str) and _SURROGATE.search(v):
            _surrogate_error(src, path, v)
    if src.diags.errors:
        src.plain = None


def _surrogate_error(src: SourceFile, path: PathKey, text: str, key: bool = False) -> None:
    half = _SURROGATE.search(text).group()
    src.diags.error("E001", f"\\u{ord(half):04x} is half of a UTF-16 surrogate pair, not a "
                    "character", src.span(path, key=key),
                    "write the character itself (or a \\U00XXXXXX escape)")


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
    if isinstance(node, TaggedScalar):  # `!!str text` (the only tagged scalar the limits allow)
        return str(node.value)
    return node
