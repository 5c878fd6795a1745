"""The versioned prompt store: every prompt text an evolution run used, and why it changed.

A version's `text` is a whole template: the workflow's base template with the prompt
engineer's additions appended (constraints, negative examples, style controls, the prompt
set's focus) inside `{% raw %}`, so what a critique taught is literal text the model reads
and no template variable can break it. The additions come from models (engineer, diversifier)
and from critiques quoting model output: each is one line with `{%` and `%}` broken apart, so
nothing in it can end the raw block — model text is data in the template, never template
source (docs/security.md). A version's text is always recomposed from the author's base. Its id is `<template file>@<sha256(text)[:12]>`, the
compiler's form, so records name prompt versions the same way whether evolved or not.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from eigenlang.emit import sha256

HEADINGS = (("focus", "Focus of this prompt set:"),
            ("constraints", "Constraints learned from earlier critiques:"),
            ("examples", "Do not repeat these mistakes seen in earlier outputs:"),
            ("style", "Style:"))


@dataclass(frozen=True)
class PromptVersion:
    id: str
    key: str  # "Agent.role"
    set: str
    text: str
    parent: str | None = None
    constraints: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    style: tuple[str, ...] = ()
    focus: tuple[str, ...] = ()
    critiques: tuple[str, ...] = ()  # what motivated this version (finding summaries)
    scores_before: dict[str, float] | None = None
    scores_after: dict[str, float] | None = None
    author: str = "workflow"  # workflow | diversifier | offline-engineer | model-engineer
    phase: int = 0
    iteration: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> PromptVersion:
        tuples = ("constraints", "examples", "style", "focus", "critiques")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in d.items() if k in cls.__dataclass_fields__})


def compose(base: str, *, constraints=(), examples=(), style=(), focus=()) -> str:
    """The base template plus the additions, each block only when it has lines."""
    parts = {"constraints": constraints, "examples": examples, "style": style, "focus": focus}
    blocks = ["\n".join([head] + [f"- {_one_line(x)}" for x in parts[name]])
              for name, head in HEADINGS if parts[name]]
    if not blocks:
        return base
    return base.rstrip("\n") + "\n\n{% raw %}" + "\n\n".join(blocks) + "\n{% endraw %}\n"


def _one_line(text: str) -> str:
    # a `{% endraw %}` inside an addition would end the literal block early
    return " ".join(str(text).split()).replace("{%", "{ %").replace("%}", "% }")


def version_id(file: str, text: str) -> str:
    """The compiler's id form (`eigenlang.emit.prompt_id`): includes next to `file` count."""
    from eigenlang.emit import prompt_id

    return prompt_id(Path(file), text)


def derive(parent: PromptVersion, base: str, file: str, **changes: Any) -> PromptVersion:
    """A child version: `changes` may set constraints/examples/style/focus (whole tuples) and
    the bookkeeping fields; the text is recomposed from `base`."""
    merged = replace(parent, parent=parent.id, scores_after=None, **changes)
    text = compose(base, constraints=merged.constraints, examples=merged.examples,
                   style=merged.style, focus=merged.focus)
    return replace(merged, text=text, id=version_id(file, text))


class PromptStore:
    """All versions of an evolution run, in creation order, saved as one JSON file (small:
    a few hundred versions at most) rewritten atomically after every change. `judge` says
    which judge critiqued them and with which prompt: `{judge: "model"|"offline", prompt:
    "<file>@<12 hex>" | null}` (the judge's prompt is the workflow's, never evolved)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.versions: list[PromptVersion] = []
        self.judge: dict[str, Any] | None = None
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.versions = [PromptVersion.from_json(v) for v in data.get("versions", [])]
            self.judge = data.get("judge") if isinstance(data.get("judge"), dict) else None

    def set_judge(self, kind: str, prompt_id: str | None) -> None:
        self.judge = {"judge": kind, "prompt": prompt_id}
        self.save()

    def add(self, version: PromptVersion) -> PromptVersion:
        self.versions.append(version)
        self.save()
        return version

    def get(self, vid: str, set_name: str | None = None) -> PromptVersion | None:
        return next((v for v in reversed(self.versions)
                     if v.id == vid and (set_name is None or v.set == set_name)), None)

    def lineage(self, vid: str, set_name: str | None = None) -> list[PromptVersion]:
        """Root first."""
        chain: list[PromptVersion] = []
        cur = self.get(vid, set_name)
        while cur is not None and cur not in chain:
            chain.append(cur)
            cur = self.get(cur.parent, cur.set) if cur.parent else None
        return chain[::-1]

    def set_scores_after(self, vid: str, set_name: str, scores: dict[str, float]) -> None:
        for i in range(len(self.versions) - 1, -1, -1):
            v = self.versions[i]
            if v.id == vid and v.set == set_name:
                if v.scores_after is None:
                    self.versions[i] = replace(v, scores_after=scores)
                    self.save()
                return

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {"versions": [v.to_json() for v in self.versions]}
        if self.judge is not None:
            data["judge"] = self.judge
        text = json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".prompts.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, self.path)
