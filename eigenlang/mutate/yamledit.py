"""Edits of ruamel round-trip maps that keep the author's comments where they were."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from ..fmt import put_before, put_tail, take_tail


def to_yaml(value: Any) -> Any:
    """JSON-like data as round-trip nodes: short scalar lists in flow style, text with line
    breaks as literal blocks."""
    if isinstance(value, dict):
        m = CommentedMap()
        for k, v in value.items():
            m[k] = to_yaml(v)
        return m
    if isinstance(value, list):
        seq = CommentedSeq(to_yaml(v) for v in value)
        if all(not isinstance(v, (dict, list)) for v in value) and len(str(value)) < 60:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and "\n" in value.strip("\n"):
        return LiteralScalarString(value)
    return value


def set_key(m: CommentedMap, key: Any, value: Any) -> None:
    """Set a key; the comment lines that followed the old value (or the map) stay in place."""
    if key in m:
        tail = take_tail(m, key)
        m[key] = value
    else:
        tail = take_tail(m, list(m)[-1]) if m else ""
        m[key] = value
    put_tail(m, key, tail)


def insert_key(m: CommentedMap, pos: int, key: Any, value: Any) -> None:
    """Insert a key at `pos`; the lines above the next key stay above it."""
    keys = list(m)
    tail = take_tail(m, keys[pos - 1]) if 0 < pos <= len(keys) else ""
    m.insert(pos, key, value)
    put_tail(m, key, tail)


def delete_key(m: CommentedMap, key: Any) -> None:
    """Delete a key; the lines after its value move to the key before it."""
    keys = list(m)
    tail = take_tail(m, key)
    i = keys.index(key)
    del m[key]
    if i > 0:
        put_tail(m, keys[i - 1], tail)
    elif len(keys) > 1:
        put_before(m, keys[1], tail)
