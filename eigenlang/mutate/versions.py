"""Program versions and their lineage: a checked program's text with its semantic hash,
its parent's hash and the reason of the edit; `Lineage` keeps them (JSONL), `write_back`
writes a version's YAML atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..compiler import check_file, compile_workflow
from ..diagnostics import Diagnostic
from ..emit import canonical_json, sha256
from ..parse import parse_program
from ..source import load_source, to_plain
from ..surface import Strict


class InvalidProgram(ValueError):
    """A program that does not check, where a valid one is needed (ProgramVersion.load)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.render() for d in diagnostics))


class ProgramVersion(BaseModel):
    """One checked version of a program: its text, semantic hash, and where it came from."""

    model_config = ConfigDict(frozen=True)

    text: str
    hash: str  # the plan hash (workflow) or sha256 of the canonical data (domain)
    parent: str | None = None
    reason: str | None = None
    op: dict | None = None
    path: str

    @classmethod
    def load(cls, path: str | Path, allow: Iterable[str | Path] = ()) -> ProgramVersion:
        """Read and check a program file; raises InvalidProgram when it has errors."""
        found = check_text(str(path), None, allow)
        if isinstance(found, list):
            raise InvalidProgram(found)
        text, digest = found
        return cls(text=text, hash=digest, path=str(path))

    @property
    def program(self) -> Strict | None:
        """The surface model (WorkflowProgram or DomainProgram) of this version."""
        return parse_program(self.path, self.text).program


def check_text(path: str, text: str | None,
               allow: Iterable[str | Path] = ()) -> tuple[str, str] | list[Diagnostic]:
    """(text, semantic hash) of a valid program; its errors otherwise."""
    src = load_source(path, text)
    if src.diags:
        return src.diags.sorted()
    data = src.data
    if isinstance(data, dict) and "workflow" in data:
        plan, diags = compile_workflow(path, src.text, allow=allow)
        digest = plan.hash if plan is not None else None
    else:
        diags = check_file(path, src.text, allow=allow)
        digest = sha256(canonical_json(to_plain(data)))
    errors = [d for d in diags.sorted() if d.severity == "error"]
    return errors if errors or digest is None else (src.text, digest)


class Lineage(list):
    """The versions of one program, oldest first; a version's parent must be in the lineage."""

    def __init__(self, versions: Any = ()):
        super().__init__()
        for v in versions:
            self.append(v)

    def append(self, version: ProgramVersion) -> None:  # type: ignore[override]
        if self and version.parent is not None and version.parent not in {v.hash for v in self}:
            raise ValueError(f"version {version.hash[:12]} has parent {version.parent[:12]}, "
                             "which is not in this lineage")
        super().append(version)

    @property
    def head(self) -> ProgramVersion | None:
        return self[-1] if self else None

    def get(self, digest: str) -> ProgramVersion | None:
        """The latest version with this hash."""
        return next((v for v in reversed(self) if v.hash == digest), None)

    def ancestry(self, digest: str | None = None) -> list[ProgramVersion]:
        """The chain from the root to the (latest) version with this hash, or to the head.

        An edit and its inverse give a hash seen before, so a parent is looked up among the
        versions *before* its child: the lineage is append-only, parents come first."""
        idx = next((i for i in range(len(self) - 1, -1, -1)
                    if digest is None or self[i].hash == digest), None)
        chain: list[ProgramVersion] = []
        while idx is not None:
            chain.append(self[idx])
            parent = self[idx].parent
            idx = next((j for j in range(idx - 1, -1, -1) if self[j].hash == parent), None) \
                if parent else None
        return chain[::-1]

    def save(self, path: str | Path) -> None:
        _atomic_write(Path(path), "".join(v.model_dump_json() + "\n" for v in self))

    @classmethod
    def load(cls, path: str | Path) -> Lineage:
        """Read a JSONL lineage; a malformed line raises ValueError naming its line number."""
        out = cls()
        for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(ProgramVersion.model_validate_json(line))
                except ValidationError as exc:
                    raise ValueError(f"{path}:{no}: not a program version: {exc}") from None
        return out


def write_back(version: ProgramVersion, path: str | Path | None = None) -> Path:
    """Write a version's YAML (to its own path by default), atomically."""
    target = Path(path if path is not None else version.path)
    _atomic_write(target, version.text)
    return target


def _atomic_write(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
