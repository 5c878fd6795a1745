"""The storage nodes of a state tree, and conversion to and from plain JSON data.

A state is a tree of `Obj` (dict) and `Arr` (list) nodes with JSON scalars at the leaves.
Both node types carry two slots:

- `_h`: the memoised content digest (bytes) or None. Set once, when a committed node is
  first hashed; a node is never mutated after it is committed, so the memo never goes stale.
- `_owner`: the `Token` of the transaction that created the node, or None. A node may be
  mutated in place only while its owner token is open; every other node is shared and
  immutable, and a writer copies it first (path copying).

Keeping these on the node itself (instead of a side table keyed by `id()`) makes the memo
and the ownership check O(1), and they die with the node: no leaks, no id reuse hazards.
"""

from __future__ import annotations

from typing import Any


class Token:
    """Ownership mark of one transaction. Closed on commit or discard; from then on the
    nodes it created are immutable like every other committed node."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = True


class Obj(dict):
    """A JSON object node (a dict, so reads run at C speed)."""

    __slots__ = ("_h", "_owner")

    def __reduce__(self):  # pickle as data; memo and ownership do not travel
        return (_rebuild_obj, (dict(self),))


class Arr(list):
    """A JSON array node."""

    __slots__ = ("_h", "_owner")

    def __reduce__(self):
        return (_rebuild_arr, (list(self),))


def _rebuild_obj(data: dict) -> Obj:
    return new_obj(data, None)


def _rebuild_arr(data: list) -> Arr:
    return new_arr(data, None)


def new_obj(items: Any, owner: Token | None) -> Obj:
    node = Obj(items)
    node._h = None
    node._owner = owner
    return node


def new_arr(items: Any, owner: Token | None) -> Arr:
    node = Arr(items)
    node._h = None
    node._owner = owner
    return node


def shallow_copy(node: Obj | Arr, owner: Token) -> Obj | Arr:
    """The one copy a transaction makes of a shared node before writing to it."""
    if isinstance(node, Obj):
        return new_obj(node, owner)
    return new_arr(node, owner)


def is_node(value: Any) -> bool:
    return type(value) is Obj or type(value) is Arr


SCALARS = (str, int, float, bool, type(None))


def freeze(value: Any, owner: Token | None, path: tuple = ()) -> Any:
    """Convert JSON-like data into nodes owned by `owner` (a deep copy).

    Views (anything with a `_node` slot) are unwrapped: a committed subtree is shared as is
    (O(1)); a subtree still mutable in some open transaction is copied, so that no mutable
    node is ever reachable from two places. Tuples become arrays. Anything that is not JSON
    data raises TypeError naming the path.
    """
    node = getattr(value, "_node", None) if not isinstance(value, SCALARS) else None
    if node is not None and is_node(node):
        value = node
    if is_node(value):
        if value._owner is None or not value._owner.open:
            return value  # committed: immutable, safe to share
        if isinstance(value, Obj):
            return new_obj({k: freeze(v, owner, path + (k,)) for k, v in value.items()}, owner)
        return new_arr([freeze(v, owner, path + (i,)) for i, v in enumerate(value)], owner)
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict) or _is_mapping(value):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{_where(path)}: object keys must be str, got {type(k).__name__}")
            out[k] = freeze(v, owner, path + (k,))
        return new_obj(out, owner)
    if isinstance(value, (list, tuple)) or _is_sequence(value):
        return new_arr([freeze(v, owner, path + (i,)) for i, v in enumerate(value)], owner)
    raise TypeError(f"{_where(path)}: not JSON data: {type(value).__name__}")


def plain(value: Any) -> Any:
    """A plain-JSON deep copy (dict/list/scalars) of a node, a view, or plain data."""
    node = getattr(value, "_node", None) if not isinstance(value, SCALARS) else None
    if node is not None:
        value = node
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict) or _is_mapping(value):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or _is_sequence(value):
        return [plain(v) for v in value]
    raise TypeError(f"not JSON data: {type(value).__name__}")


def _is_mapping(value: Any) -> bool:
    from collections.abc import Mapping

    return isinstance(value, Mapping)


def _is_sequence(value: Any) -> bool:
    from collections.abc import Sequence

    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _where(path: tuple) -> str:
    return format_path(path) if path else "<root>"


def format_path(path: tuple | list, root: str = "") -> str:
    """`reservations['ZFA04Y'].flights[0].status` — for messages, not for parsing."""
    out = root
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif key.isidentifier() and key.islower():
            out += f".{key}" if out else key
        else:
            out += f"[{key!r}]"
    return out
