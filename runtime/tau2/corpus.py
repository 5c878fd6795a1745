"""τ²-bench's conformance corpus: one JSON line per task with its gold calls, their exact
answers and the database changes as leaf diffs (`[[path, before, after], ...]`).

Diff conventions (τ²-bench's, not `State.diff`'s): `path` is a list of keys and indices; a
key present on one side only has the marker `"<MISSING>"` on the other; a list whose length
changed is one entry at the list's own path. `apply_diff` turns a state plus such a diff
into the expected state, checking every `before` on the way, so a state that starts out
different is reported where it differs rather than as a wrong final hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.env import State
from runtime.env.nodes import format_path, plain

MISSING_MARK = "<MISSING>"


def read_corpus(path: Path | str) -> list[dict]:
    """Every task line of a conformance JSONL file, in file order."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def canonical(value: Any) -> str:
    """Canonical JSON, under which 1 and 1.0 differ (as in the corpus)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class DiffMismatch(ValueError):
    """A diff's `before` does not match the state it is applied to."""


def apply_diff(state: State, diff: list) -> State:
    """`state` with every change of `diff` applied; raises DiffMismatch at the first entry
    whose `before` differs from the state's value at its path."""
    txn = state.edit()
    for path, before, after in diff:
        *parents, last = path
        node = txn.root
        try:
            for key in parents:
                node = node[key]
        except (KeyError, IndexError, TypeError):
            raise DiffMismatch(f"{format_path(path) or '<root>'}: the path does not exist") from None
        have = node.get(last, MISSING_MARK) if hasattr(node, "keys") else (
            node[last] if isinstance(last, int) and 0 <= last < len(node) else MISSING_MARK)
        have = plain(have) if have is not MISSING_MARK else MISSING_MARK
        if canonical(have) != canonical(before):
            raise DiffMismatch(f"{format_path(path) or '<root>'}: expected {_short(before)} before the "
                               f"change, the state has {_short(have)}")
        if after == MISSING_MARK:
            del node[last]
        elif hasattr(node, "keys") or last < len(node):
            node[last] = after
        elif last == len(node):
            node.append(after)
        else:
            raise DiffMismatch(f"{format_path(path)}: index past the end of the list")
    return txn.commit()


def describe_differences(expected: State, got: State, limit: int = 8) -> str:
    """The first `limit` differences between two states, one per line (for test failures)."""
    changes = expected.diff(got)
    lines = [f"  {format_path(c.path) or '<root>'}: expected {_short(c.before)}, got {_short(c.after)}"
             for c in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"  ... and {len(changes) - limit} more")
    return "\n".join(lines)


def _short(value: Any, width: int = 160) -> str:
    text = "MISSING" if value is MISSING_MARK or repr(value) == "MISSING" else canonical(value)
    return text if len(text) <= width else text[: width - 3] + "..."
