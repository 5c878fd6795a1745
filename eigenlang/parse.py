"""Stage 1 — parse: YAML text → a typed surface program, every shape error with a position.

Shape errors come from pydantic and are mapped back to YAML positions. To report *all*
errors at once, a broken declaration (one agent, one tool, one model...) is dropped and the
rest is validated again, so later stages still check everything that is well-formed; the
dropped names are remembered so they do not cause follow-on "unknown name" errors.
"""

from __future__ import annotations

import types as pytypes
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .diagnostics import Diagnostics, did_you_mean, known_list
from .source import SourceFile, load_source, to_plain
from .surface import PROGRAM_KINDS, Strict

# Maps whose entries are named declarations: a broken entry is dropped, not the whole program.
NAMED_MAPS = {"agents", "tools", "user_tools", "actions", "models", "rules", "params", "types"}
MAX_RECOVERY_ROUNDS = 50


@dataclass
class Parsed:
    """The result of parsing one program file."""

    source: SourceFile
    kind: str | None = None
    program: Strict | None = None
    dropped: set[str] = field(default_factory=set)  # names whose declarations were broken

    @property
    def diags(self) -> Diagnostics:
        return self.source.diags

    @property
    def path(self) -> Path:
        return Path(self.source.path)


def parse_program(path: str | Path, text: str | None = None) -> Parsed:
    src = load_source(path, text)
    parsed = Parsed(src)
    if src.diags or src.plain is None:
        if not src.diags:
            src.diags.error("E101", "empty program: expected 'eigenlang: 1'", src.span(()))
        return parsed
    data = src.plain
    if not isinstance(data, dict):
        src.diags.error("E105", "a program is a YAML mapping of keys", src.span(()),
                        "start the file with 'eigenlang: 1'")
        return parsed
    version = data.get("eigenlang")
    if version != 1:
        where = src.span(("eigenlang",)) if "eigenlang" in data else src.span(())
        msg = ("missing 'eigenlang: 1' at the top of the program" if version is None
               else f"unsupported language version {version!r}")
        src.diags.error("E101", msg, where, "this compiler reads 'eigenlang: 1'")
        return parsed
    # a workflow names its domain too, so 'workflow:' decides first
    kind = "workflow" if "workflow" in data else "domain" if "domain" in data else None
    if kind is None:
        src.diags.error("E102", "unknown program kind: expected a 'domain:' or 'workflow:' key",
                        src.span(()))
        return parsed
    parsed.kind = kind
    parsed.program = _validate(src, PROGRAM_KINDS[parsed.kind], parsed.dropped)
    return parsed


def _validate(src: SourceFile, model: type[Strict], dropped: set[str]) -> Strict | None:
    try:  # the common case: valid, validated straight from the source's data
        return model.model_validate(src.plain)
    except ValidationError:
        pass
    plain = to_plain(src.plain)  # a copy: recovery drops broken declarations from it
    reported: set[tuple] = set()
    for _ in range(MAX_RECOVERY_ROUNDS):
        try:
            return model.model_validate(plain)
        except ValidationError as exc:
            progressed = False
            for err in _collapse(exc.errors(), plain):
                path, etype, msg = err
                key = (path, etype)
                if key not in reported:
                    reported.add(key)
                    _report(src, model, path, etype, msg, err_input=None)
                if _drop(plain, path, dropped):
                    progressed = True
            if not progressed:
                return None
    return None


def _collapse(errors: list[dict], plain: Any) -> list[tuple[tuple, str, str]]:
    """pydantic error list → (path into the data, error type, message), one per place.

    Union branches add tags such as 'str' or 'FieldDecl' to the location; those are not keys
    in the data, so they are removed and the branch errors merge into one.
    """
    out: dict[tuple, tuple[str, str]] = {}
    for e in errors:
        path: list = []
        node = plain
        loc = e["loc"]
        for i, part in enumerate(loc):
            if isinstance(node, dict) and part in node:
                path.append(part)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                path.append(part)
                node = node[part]
            elif i == len(loc) - 1 and e["type"] in ("missing", "extra_forbidden"):
                path.append(part)  # the absent (or unexpected) key itself
            # anything else is a union-branch tag such as 'str' or 'FieldDecl': skip it
        key = tuple(path)
        etype = e["type"]
        if key in out and out[key][0] != etype and etype != "extra_forbidden":
            etype, msg = "union", "wrong value shape"
        else:
            msg = e["msg"]
        if etype == "extra_forbidden" or key not in out or out[key][0] == "union" or etype == "union":
            out[key] = (etype, msg)
    # a failed union branch at P is noise when another branch explains a place below P
    deeper = [k for k in out if any(len(o) > len(k) and o[:len(k)] == k for o in out)]
    for k in deeper:
        del out[k]
    return [(k, t, m) for k, (t, m) in out.items()]


def _report(src: SourceFile, model: type[BaseModel], path: tuple, etype: str, msg: str,
            err_input: Any) -> None:
    where = ".".join(str(p) for p in path) or "program"
    if etype == "extra_forbidden":
        allowed = _allowed_keys(model, path[:-1])
        hint = did_you_mean(str(path[-1]), allowed) or known_list(allowed)
        if " " in str(path[-1]):  # `{description: a, b}`: the comma split the value
            hint = "a comma inside {...} starts a new key: quote the text that holds it"
        src.diags.error("E103", f"unknown key '{path[-1]}' in {'.'.join(map(str, path[:-1])) or 'program'}",
                        src.span(path, key=True), hint)
    elif etype == "missing":
        src.diags.error("E104", f"missing required key '{path[-1]}' in "
                        f"{'.'.join(map(str, path[:-1])) or 'program'}", src.span(path))
    elif etype == "union":
        src.diags.error("E105", f"wrong value shape for {where}", src.span(path),
                        "expected 'file.py:function', or a mapping with 'return:'" if path[-1:] == ("impl",)
                        else "expected a type string such as 'str', or a mapping with 'type:'")
    else:
        src.diags.error("E105", f"{where}: {msg.lower()}", src.span(path))


def _drop(plain: Any, path: tuple, dropped: set[str]) -> bool:
    """Remove the innermost named declaration that contains `path`. True if something went
    (in this round: the errors of one round all point into the data as it was before it, so
    a declaration another error of the round removed counts as gone, not as a reason to
    remove the one around it)."""
    for i in range(len(path) - 1, 0, -1):
        # a named declaration, or one field of a model (a model's fields are named too)
        if path[i - 1] in NAMED_MAPS or (i >= 2 and path[i - 2] in ("models", "types")):
            container = _at(plain, path[:i])
            if container is _GONE or (isinstance(container, dict) and path[i] not in container):
                return True  # it, or a declaration around it, went earlier in this round
            if isinstance(container, dict):
                del container[path[i]]
                dropped.add(str(path[i]))
                return True
    # an unknown top-level or section key can be removed outright
    if path:
        parent = plain
        try:
            for part in path[:-1]:
                parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            return True
    return False


_GONE = object()


def _at(plain: Any, path: tuple) -> Any:
    """The data at `path`, or _GONE when a part of it is no longer there."""
    node = plain
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _GONE
    return node


def _allowed_keys(model: type[BaseModel], path: tuple) -> list[str]:
    """The keys a mapping at `path` may have, by walking the surface model's annotations."""
    tp: Any = model
    for part in path:
        tp = _descend(tp, part)
        if tp is None:
            return []
    tp = _unwrap_model(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _unwrap_model(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, pytypes.UnionType):
        for arg in typing.get_args(tp):
            inner = _unwrap_model(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return tp


def _descend(tp: Any, part: Any) -> Any:
    tp = _unwrap_model(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    return None
