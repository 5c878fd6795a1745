"""Applying ops: `apply` (one edit → a new checked version, or the diagnostics why not) and
`apply_many` (a batch, one lineage step). The input version is never changed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..diagnostics import Diagnostic
from ..fmt import dump_text
from ..oplimits import ORIGINS, Origin, model_problems
from ..source import load_source, to_plain
from .editor import Editor
from .ops import OP_NAMES, OP_SPAN, _e601, _Op, _op_problems, op_dict
from .versions import ProgramVersion, check_text


def apply(version: ProgramVersion, op: Any, reason: str, *, origin: Origin = "author",
          allow: Iterable[str | Path] = ()) -> ProgramVersion | list[Diagnostic]:
    """Apply one edit (an op model, dict, JSON text or tool call); the new version, or the
    diagnostics why it was refused (the input version is never changed). `origin` "model"
    limits what the edit may change (eigenlang.oplimits); `allow`: folders besides the
    program's own where the files it names may be."""
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
    parsed = _op_problems(op)
    if isinstance(parsed, list):
        return parsed
    src = load_source(version.path, version.text)
    if src.diags or not isinstance(src.data, CommentedMap):
        return src.diags.sorted() or [_e601("the program is not a YAML mapping")]
    before = to_plain(src.data) if origin == "model" else None
    try:
        edit = Editor(src)
        getattr(edit, parsed.op)(parsed)
        if edit.errors:
            return edit.errors
        text = dump_text(src.data)
    except Exception as exc:  # noqa: BLE001  an odd value is a refused edit, never a crash
        return [_e601(f"{parsed.op}: the edit could not be written ({type(exc).__name__}: {str(exc)[:200]})")]
    if origin == "model":
        refused = model_problems(before, to_plain(src.data))
        if refused:
            return [Diagnostic("E602", message, OP_SPAN, hint) for _, message, hint in refused]
    try:
        found = check_text(version.path, text, allow)
    except Exception as exc:  # noqa: BLE001  the compiler promises diagnostics; keep the promise here too
        return [_e601(f"{parsed.op}: the edited program could not be checked ({type(exc).__name__})")]
    if isinstance(found, list):
        return found
    text, digest = found
    return ProgramVersion(text=text, hash=digest, parent=version.hash, reason=reason,
                          op=op_dict(parsed), path=version.path)


def apply_many(version: ProgramVersion, ops: list[Any], reason: str, *, origin: Origin = "author",
               allow: Iterable[str | Path] = ()) -> ProgramVersion | list[Diagnostic]:
    """Apply edits in order, each checked on the result of the one before; stops at the first
    refused op and returns its diagnostics (after an E601 saying which op it was).

    The result is one version whose parent is `version`: a batch of edits made for one
    reason is one step of the lineage. Its `op` is the op itself for a batch of one, else
    {"op": "batch", "ops": [...]}."""
    cur, done = version, []
    for i, op in enumerate(ops):
        result = apply(cur, op, reason, origin=origin, allow=allow)
        if isinstance(result, list):
            kind = op.op if isinstance(op, _Op) else (op.get("op") if isinstance(op, dict) else "?")
            kind = kind if isinstance(kind, str) and kind in OP_NAMES else "?"
            return [_e601(f"op {i + 1} of {len(ops)} ({kind}) was refused; no op was applied")] + result
        cur = result
        done.append(result.op)
    if not done:
        return version
    return cur.model_copy(update={"parent": version.hash,
                                  "op": done[0] if len(done) == 1 else {"op": "batch", "ops": done}})
