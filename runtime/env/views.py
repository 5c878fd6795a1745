"""Read-only and mutable views over state nodes.

Views are what user code (tool implementations, expressions, verifiers) sees of a state:

- `DictView` / `ListView`: read-only `Mapping` / `Sequence` over committed nodes.
- `MutDictView` / `MutListView`: `MutableMapping` / `MutableSequence` inside a transaction.

Mapping views give attribute access to keys (`v.reservations["X"].status`); a name that is
also a method (`items`, `keys`, `values`, `get`, `pop`, ...) resolves to the method, and keys
starting with `_` are never reachable by attribute. Containers read through a view come back
as views; scalars come back as themselves. Views compare equal to equal plain data.

Copy-on-write: a mutable view holds its node and the way back to its parent (parent view and
key). The first write through a view copies its node (shallowly) and installs the copy in the
parent, which is itself copied first if it is still shared — so one write copies exactly the
nodes on the path from the root, and each node at most once per transaction (the copy is
owned by the transaction's token and is mutated in place afterwards). Each mutable view
caches its child views so that one path has one view; structural list edits re-key the cache
by node identity, and a child that leaves the tree is detached (later writes to it go to a
private copy, as writes to a removed Python object would not show in the tree).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

from .nodes import SCALARS, Arr, Obj, freeze, plain, shallow_copy

_DETACHED = object()


class TxnClosedError(RuntimeError):
    """A write through a view of a transaction that was already committed or discarded."""


def _unwrap(value: Any) -> Any:
    node = getattr(value, "_node", None) if not isinstance(value, SCALARS) else None
    return value if node is None else node


def _eq(node: Any, other: Any) -> bool:
    """Structural equality of a node with plain data or another view (Python semantics)."""
    other = _unwrap(other)
    if isinstance(node, dict):
        if isinstance(other, dict):
            return node == other
        return isinstance(other, Mapping) and node == {k: _unwrap(v) for k, v in other.items()}
    if isinstance(other, list):
        return node == other
    if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
        return node == [_unwrap(v) for v in other]
    return False


class _ViewBase:
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return _eq(self._node, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking containers are unhashable

    def __repr__(self) -> str:  # cut: the root view of a database would print megabytes
        text = repr(plain(self._node)) if len(self._node) <= 200 else f"<{len(self._node)} items>"
        return f"{type(self).__name__}({text if len(text) <= 500 else text[:497] + '...'})"

    def __copy__(self) -> Any:
        return plain(self._node)

    def __deepcopy__(self, memo: dict) -> Any:
        return plain(self._node)

    def __reduce__(self):
        return (plain, (plain(self._node),))


def _attr_key(view: Any, name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return view[name]
    except KeyError:
        raise AttributeError(f"no key {name!r}") from None


# ---------------------------------------------------------------- read-only views


def wrap(value: Any) -> Any:
    """A read-only view of a node, or the scalar itself."""
    if isinstance(value, dict):
        return DictView(value)
    if isinstance(value, list):
        return ListView(value)
    return value


class DictView(_ViewBase, Mapping):
    """Read-only view of an object node."""

    __slots__ = ("_node",)

    def __init__(self, node: dict) -> None:
        object.__setattr__(self, "_node", node)

    def __getitem__(self, key: str) -> Any:
        return wrap(self._node[key])

    def __getattr__(self, name: str) -> Any:
        return _attr_key(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only view")

    def __iter__(self) -> Iterator[str]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, key: object) -> bool:
        return key in self._node

    def get(self, key: str, default: Any = None) -> Any:
        return wrap(self._node[key]) if key in self._node else default


class ListView(_ViewBase, Sequence):
    """Read-only view of an array node."""

    __slots__ = ("_node",)

    def __init__(self, node: list) -> None:
        object.__setattr__(self, "_node", node)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [wrap(v) for v in self._node[index]]
        return wrap(self._node[index])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only view")

    def __iter__(self) -> Iterator[Any]:
        return (wrap(v) for v in self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, value: object) -> bool:
        return _unwrap(value) in self._node


# ---------------------------------------------------------------- mutable views


class _MutBase(_ViewBase):
    """Shared copy-on-write machinery of the two mutable views."""

    __slots__ = ()

    def _writable(self) -> Obj | Arr:
        """This view's node, made private to the transaction (path-copying if needed)."""
        txn = self._txn
        if not txn.open:
            raise TxnClosedError("this transaction was already committed or discarded")
        node = self._node
        if node._owner is txn._token:
            return node
        copy = shallow_copy(node, txn._token)
        parent = self._parent
        if parent is not None:
            parent._writable()[self._key] = copy
        elif self._key is None:  # the root view
            txn._set_root(copy)
        object.__setattr__(self, "_node", copy)
        return copy

    def _child(self, key: Any, value: Any) -> Any:
        """A cached mutable view for a container child, or the scalar itself."""
        if not isinstance(value, (dict, list)):
            return value
        kid = self._kids.get(key)
        if kid is None or kid._node is not value:
            if kid is not None:  # stale: never let it write over the current value
                kid._set_parent(None, _DETACHED)
            cls = MutDictView if isinstance(value, dict) else MutListView
            kid = cls(self._txn, value, self, key)
            self._kids[key] = kid
        return kid

    def _detach(self, key: Any) -> None:
        kid = self._kids.pop(key, None)
        if kid is not None:
            kid._set_parent(None, _DETACHED)

    def _set_parent(self, parent: Any, key: Any) -> None:
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_key", key)

    def _freeze(self, value: Any) -> Any:
        return freeze(value, self._txn._token)


class MutDictView(_MutBase, MutableMapping):
    """Mutable view of an object node inside a transaction."""

    __slots__ = ("_key", "_kids", "_node", "_parent", "_txn")

    def __init__(self, txn: Any, node: Obj, parent: Any = None, key: Any = None) -> None:
        object.__setattr__(self, "_txn", txn)
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_kids", {})

    def __getitem__(self, key: str) -> Any:
        return self._child(key, self._node[key])

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be str, got {type(key).__name__}")
        new = self._freeze(value)
        node = self._writable()
        self._detach(key)
        node[key] = new

    def __delitem__(self, key: str) -> None:
        if key not in self._node:
            raise KeyError(key)
        node = self._writable()
        self._detach(key)
        del node[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, key: object) -> bool:
        return key in self._node

    def get(self, key: str, default: Any = None) -> Any:
        node = self._node
        return self._child(key, node[key]) if key in node else default

    def __getattr__(self, name: str) -> Any:
        return _attr_key(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            raise AttributeError(f"cannot set {name!r}: keys starting with '_' need item access")
        if hasattr(type(self), name):
            raise AttributeError(f"{name!r} is a method name; write view[{name!r}] = ... instead")
        self[name] = value

    def __delattr__(self, name: str) -> None:
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(f"use `del view[{name!r}]`")
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"no key {name!r}") from None


class MutListView(_MutBase, MutableSequence):
    """Mutable view of an array node inside a transaction."""

    __slots__ = ("_key", "_kids", "_node", "_parent", "_txn")

    def __init__(self, txn: Any, node: Arr, parent: Any = None, key: Any = None) -> None:
        object.__setattr__(self, "_txn", txn)
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_kids", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot set attribute {name!r} on a list view")

    def _index(self, index: int) -> int:
        n = len(self._node)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return i

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._node)))]
        i = self._index(index)
        return self._child(i, self._node[i])

    def __setitem__(self, index: int | slice, value: Any) -> None:
        if isinstance(index, slice):
            new = [self._freeze(v) for v in value]
            self._writable()[index] = new
            self._rekey()
            return
        i = self._index(index)
        new = self._freeze(value)
        node = self._writable()
        self._detach(i)
        node[i] = new

    def __delitem__(self, index: int | slice) -> None:
        if isinstance(index, slice):
            del self._writable()[index]
        else:
            i = self._index(index)
            node = self._writable()
            self._detach(i)
            del node[i]
        self._rekey()

    def __len__(self) -> int:
        return len(self._node)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self._node)):
            yield self[i]

    def __contains__(self, value: object) -> bool:
        return _unwrap(value) in self._node

    def insert(self, index: int, value: Any) -> None:
        new = self._freeze(value)
        self._writable().insert(index, new)
        self._rekey()

    def append(self, value: Any) -> None:  # no re-keying: existing indices do not move
        new = self._freeze(value)
        self._writable().append(new)

    def extend(self, values: Any) -> None:
        new = [self._freeze(v) for v in values]
        self._writable().extend(new)

    def clear(self) -> None:
        self._writable().clear()
        self._rekey()

    def reverse(self) -> None:
        self._writable().reverse()
        self._rekey()

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        """Sort in place; `key` receives read-only views of the elements."""
        node = self._writable()
        keyfn = (lambda v: key(wrap(v))) if key is not None else None
        node.sort(key=keyfn, reverse=reverse)
        self._rekey()

    def _rekey(self) -> None:
        """After a structural edit, move cached child views to their elements' new indices
        (found by node identity) and detach the ones whose element left the list."""
        if not self._kids:
            return
        where: dict[int, list[int]] = {}
        for i, v in enumerate(self._node):
            if isinstance(v, (dict, list)):
                where.setdefault(id(v), []).append(i)
        old = sorted(self._kids.items(), key=lambda kv: kv[0])
        self._kids.clear()
        for _, kid in old:
            spots = where.get(id(kid._node))
            if spots:
                i = spots.pop(0)
                kid._set_parent(self, i)
                self._kids[i] = kid
            else:
                kid._set_parent(None, _DETACHED)
