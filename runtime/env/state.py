"""Immutable JSON states with structural sharing: O(1) forks, path-copying edits,
memoised content hashes and structural diffs.

    s0 = State.from_json({"reservations": {"X": {"status": "active"}}})
    txn = s0.edit()
    txn.root.reservations["X"].status = "cancelled"
    s1 = txn.commit()                 # s0 is untouched; s1 shares every unchanged node
    s0.diff(s1)  # [Change(path=('reservations', 'X', 'status'), before='active', after='cancelled')]

A committed node is never mutated again, so a fork is just another reference to the same
root, and a node's hash, once computed, is valid forever (it is memoised on the node).

Hash encoding (documented because stored hashes depend on it): each container hashes to
sha256 of its children in canonical order — objects by sorted key — where a child is written
as a type tag plus its content: `N` none, `T`/`F` booleans, `i<digits>;` int,
`d<repr>;` float, `s<byte length>:<utf-8>` string, `#<32-byte digest>` container. So key
order is irrelevant, while 1, 1.0 and True hash differently (diffs agree: they are changes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .nodes import Arr, Obj, Token, format_path, freeze, plain
from .views import DictView, ListView, MutDictView, MutListView, wrap


class _Missing:
    """The value on the absent side of an insertion or deletion in a `Change`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_Missing, ())


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Change:
    """One difference between two states: the value at `path` went from `before` to
    `after` (plain copies; `MISSING` on the absent side of an insertion or deletion)."""

    path: tuple
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{format_path(self.path) or '<root>'}: {self.before!r} -> {self.after!r}"


class State:
    """An immutable JSON tree (the root is an object or an array)."""

    __slots__ = ("_root",)

    def __init__(self, root: Obj | Arr) -> None:
        self._root = root  # already frozen; use State.from_json for plain data

    @classmethod
    def from_json(cls, data: Any) -> State:
        """Take `data` (plain JSON-like data, or a view) as a new state: deep-copied once."""
        root = freeze(data, None)
        if not isinstance(root, (Obj, Arr)):
            raise TypeError(f"a state's root must be an object or an array, got {type(data).__name__}")
        return cls(root)

    @property
    def root(self) -> DictView | ListView:
        """A read-only view of the whole state."""
        return wrap(self._root)

    def fork(self) -> State:
        """O(1): the fork shares every node; neither side can change the other."""
        return State(self._root)

    def edit(self) -> Txn:
        return Txn(self)

    def to_json(self) -> Any:
        return plain(self._root)

    def get(self, path: Iterable, default: Any = MISSING) -> Any:
        """The plain value at `path` (a sequence of keys and indices), or `default`."""
        node: Any = self._root
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return default
        return plain(node)

    def hash(self) -> str:
        return digest(self._root).hex()

    def diff(self, other: State) -> list[Change]:
        """Changes that turn `self` into `other`, in a deterministic order (object keys
        sorted, array indices ascending). Shared subtrees are skipped without a look."""
        out: list[Change] = []
        _diff(self._root, other._root, (), out)
        return out

    def __eq__(self, other: object) -> bool:
        """Exact equality (1, 1.0 and True differ; key order does not matter). States that
        share most of their nodes (forks of one state) compare in time proportional to what
        differs, without hashing the new nodes."""
        if not isinstance(other, State):
            return NotImplemented
        return _equal(self._root, other._root)

    __hash__ = None  # type: ignore[assignment]  # use .hash() for the content digest

    def __repr__(self) -> str:
        kind = "object" if isinstance(self._root, Obj) else "array"
        return f"State({kind} of {len(self._root)})"


class Txn:
    """One atomic edit of a state. `txn.root` is a mutable view; writes copy only the nodes
    on the written paths, each at most once. `commit()` returns the new state; dropping or
    `discard()`-ing the transaction leaves the original state exactly as it was."""

    __slots__ = ("_base", "_root", "_token", "_view")

    def __init__(self, base: State) -> None:
        self._base = base
        self._root: Obj | Arr = base._root
        self._token = Token()
        self._view: MutDictView | MutListView | None = None

    @property
    def open(self) -> bool:
        return self._token.open

    @property
    def root(self) -> MutDictView | MutListView:
        if self._view is None:
            cls = MutDictView if isinstance(self._root, Obj) else MutListView
            self._view = cls(self, self._root)
        return self._view

    @property
    def changed(self) -> bool:
        return self._root is not self._base._root

    def _set_root(self, node: Obj | Arr) -> None:
        self._root = node

    def commit(self) -> State:
        """Close the transaction and return the new state (the base itself if nothing changed)."""
        if not self._token.open:
            raise RuntimeError("transaction already closed")
        self._token.open = False
        return self._base if self._root is self._base._root else State(self._root)

    def discard(self) -> None:
        """Close the transaction without a new state; its views refuse further writes."""
        self._token.open = False


# ---------------------------------------------------------------- hashing


def _enc_scalar(value: Any) -> bytes:
    if value is None:
        return b"N"
    if value is True:
        return b"T"
    if value is False:
        return b"F"
    t = type(value)
    if t is str:
        data = value.encode("utf-8", "surrogatepass")
        return b"s%d:%s" % (len(data), data)
    if t is int:
        return b"i%d;" % value
    if t is float:
        return b"d" + repr(value).encode() + b";"
    raise TypeError(f"not JSON data: {t.__name__}")


def digest(node: Obj | Arr) -> bytes:
    """The memoised 32-byte content digest of a committed node."""
    memo = node._h
    if memo is not None:
        return memo
    parts: list[bytes] = []
    if type(node) is Obj:
        parts.append(b"{")
        for key in sorted(node):
            parts.append(_enc_scalar(key))
            value = node[key]
            t = type(value)
            parts.append(b"#" + digest(value) if (t is Obj or t is Arr) else _enc_scalar(value))
    else:
        parts.append(b"[")
        for value in node:
            t = type(value)
            parts.append(b"#" + digest(value) if (t is Obj or t is Arr) else _enc_scalar(value))
    memo = hashlib.sha256(b"".join(parts)).digest()
    node._h = memo
    return memo


# ---------------------------------------------------------------- equality and diff


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is Obj and tb is Obj:
        if a._h is not None and b._h is not None:
            return a._h == b._h
        if len(a) != len(b):
            return False
        # one C-speed pass finds the children that are not shared; only those are compared
        differing = [k for k, v in a.items() if b.get(k, MISSING) is not v]
        return all(k in b and _equal(a[k], b[k]) for k in differing)
    if ta is Arr and tb is Arr:
        if a._h is not None and b._h is not None:
            return a._h == b._h
        return len(a) == len(b) and all(x is y or _equal(x, y) for x, y in zip(a, b))
    return ta is tb and ta is not Obj and ta is not Arr and a == b



def _same_scalar(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _diff(a: Any, b: Any, path: tuple, out: list[Change]) -> None:
    if a is b:
        return
    ta, tb = type(a), type(b)
    if ta is Obj and tb is Obj:
        if a._h is not None and a._h == b._h:
            return
        # one C-speed pass finds the keys whose values are not shared, then only those sort
        differing = [k for k, v in a.items() if b.get(k, MISSING) is not v]
        differing += [k for k in b if k not in a]
        for key in sorted(differing):
            if key not in b:
                out.append(Change(path + (key,), plain(a[key]), MISSING))
            elif key not in a:
                out.append(Change(path + (key,), MISSING, plain(b[key])))
            else:
                _diff(a[key], b[key], path + (key,), out)
    elif ta is Arr and tb is Arr:
        if a._h is not None and a._h == b._h:
            return
        for i in range(min(len(a), len(b))):
            _diff(a[i], b[i], path + (i,), out)
        for i in range(len(b), len(a)):
            out.append(Change(path + (i,), plain(a[i]), MISSING))
        for i in range(len(a), len(b)):
            out.append(Change(path + (i,), MISSING, plain(b[i])))
    elif not _same_scalar(a, b):
        out.append(Change(path, plain(a), plain(b)))
