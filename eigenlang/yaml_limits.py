"""What reading a YAML program may cost, and what it may hold, whoever wrote it.

YAML says a lot in few bytes: an alias repeats its anchored node wherever it is used, so nine
levels of nine aliases each ("billion laughs", 447 bytes) expand to 9**9 strings once the data
is copied out of the shared tree. Both readers (libyaml's fast reader and ruamel.yaml, see
`source.py`) count alias uses and the nodes they add, and stop at the limits below with a
located diagnostic before anything is copied. Nesting is bounded, so no later stage can
recurse too deeply, and only the core tags of plain data are accepted: a program is data
(strings, numbers, booleans, null, lists, mappings), never `!!python/...`, `!!binary`, `!!set`,
`!!timestamp` or a local `!tag`.

The ruamel.yaml side is a composer and a constructor of our own (`round_trip_yaml` in
`source.py` installs them); the fast reader declines whatever comes near a limit, so that
ruamel.yaml decides and reports it, the same way whichever reader ran first.
"""

from __future__ import annotations

import warnings
from typing import Any

from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLFutureWarning, YAMLWarning
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode

MAX_ALIAS_USES = 10_000      # aliases (`*name`) in one program
MAX_ALIAS_NODES = 100_000    # nodes that aliases add when expanded, all uses together
MAX_DEPTH = 100              # nesting of mappings and lists (the shipped programs use 10)

CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset({"!", *(CORE + t for t in ("str", "int", "float", "bool", "null",
                                                    "map", "seq"))})

# ruamel.yaml reports through Python warnings, which would be printed raw: a reused anchor
# (legal YAML: later aliases mean the new node, as the spec says) and YAML 1.1 float
# spellings (read all the same). Neither is a problem of the program, so neither is shown.
warnings.filterwarnings("ignore", category=YAMLWarning)
warnings.filterwarnings("ignore", category=YAMLFutureWarning)


class ReadError(MarkedYAMLError):
    """A located problem met while reading (a limit crossed, a tag refused, a value that cannot
    be built): `code`, `message` and `hint` are the diagnostic's."""

    def __init__(self, code: str, message: str, mark: Any, hint: str | None = None):
        super().__init__(problem=message, problem_mark=mark)
        self.code, self.message, self.hint = code, message, hint


def tag_text(tag: str) -> str:
    """A tag as it is written: `!!binary`, `!custom`."""
    return "!!" + tag[len(CORE):] if tag.startswith(CORE) else tag


def node_count(value: Any, limit: int) -> int:
    """Nodes of plain data (a mapping's keys count, as they do in `LimitedComposer.size`);
    stops counting once past `limit`, so measuring a huge value costs no more than that."""
    count, stack = 0, [value]
    while stack and count <= limit:
        v = stack.pop()
        count += 1
        if isinstance(v, dict):
            count += len(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return count


def alias_limit_error(anchor: str, uses: int, nodes: int, size: int, mark: Any) -> ReadError | None:
    """The error for the alias that crosses a limit, or None while both hold."""
    if uses > MAX_ALIAS_USES:
        return ReadError("E007", f"more than {MAX_ALIAS_USES} aliases in one program", mark,
                          "write the repeated part out, or repeat less of it")
    if nodes > MAX_ALIAS_NODES:
        return ReadError("E007", f"aliases expand to more than {MAX_ALIAS_NODES} nodes "
                          f"('*{anchor}' repeats {size} here)", mark,
                          "aliases of aliases multiply: nine levels of nine make 9**9 copies")
    return None


class LimitedComposer(Composer):
    """ruamel.yaml's composer with the limits: alias uses and expansion counted before an
    alias is composed, tags outside plain data refused. Nesting is bounded by ruamel.yaml's
    own `max_depth` (set by `configure`)."""

    warn_double_anchors = False

    def compose_document(self) -> Any:
        self.alias_uses = 0
        self.alias_nodes = 0
        self.sizes: dict[int, int] = {}
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:  # (an undefined one is ruamel.yaml's own error)
                size = self.size(node)
                self.alias_uses += 1
                self.alias_nodes += size
                err = alias_limit_error(event.anchor, self.alias_uses, self.alias_nodes, size,
                                        event.start_mark)
                if err is not None:
                    raise err
        else:
            tag = event.ctag
            if tag is not None and str(tag) not in ALLOWED_TAGS:
                raise ReadError("E008", f"YAML tag '{tag_text(str(tag))}' is not allowed: a "
                                 "program holds plain data", event.start_mark,
                                 "remove the tag; quote a value to make it a string")
        return super().compose_node(parent, index)

    def size(self, node: Any) -> int:
        """Nodes in `node` with its aliases expanded (a mapping's keys count), each node
        measured once. A node still being composed (a recursive alias, read as null) is 1."""
        if isinstance(node, ScalarNode) or node.end_mark is None:
            return 1
        found = self.sizes.get(id(node))
        if found is None:
            if isinstance(node, MappingNode):
                found = 1 + sum(self.size(k) + self.size(v) for k, v in node.value)
            else:
                found = 1 + sum(self.size(v) for v in node.value)
            self.sizes[id(node)] = found
        return found


class CheckedConstructor(RoundTripConstructor):
    """ruamel.yaml's round-trip constructor, with a located error instead of a traceback when
    a tagged or odd scalar cannot be built (`!!int` with no digits, a 5000-digit integer)."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (YAMLError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001  any other failure is this node's
            what = f"{node.value!r}" if isinstance(node, ScalarNode) else "this value"
            if isinstance(node, ScalarNode) and len(what) > 40:
                what = what[:37] + "..."
            why = str(exc).split(";")[0]  # (not Python's advice on how to raise its limits)
            raise ReadError("E001", f"cannot read {what} as {tag_text(str(node.tag))}: {why}",
                            node.start_mark, "write a plain value: a number, a quoted string, "
                            "true/false, null") from None


def configure(y: Any) -> Any:
    """Install the limits on a ruamel.yaml `YAML` instance."""
    y.Composer = LimitedComposer
    y.Constructor = CheckedConstructor
    y.max_depth = MAX_DEPTH
    return y


def is_depth_error(exc: Exception) -> bool:
    return isinstance(exc, MaxDepthExceededError)
