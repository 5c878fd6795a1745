"""Which tasks `eigen eval` runs: a split by id hash, a list of ids, or what a training run
did not train on.

    tasks, notes = select_tasks(tasks, split="held-out", fraction=0.25)   # as training held them out
    tasks, notes = select_tasks(tasks, ids=Path("ids.txt"))              # one id a line, or JSON
    tasks, notes = select_tasks(tasks, held_out_of=[Path("out/grpo")])   # not trained on, no copy

`held_out_of` names training output folders (`eigen train sft|grpo` writes `config.json`,
GRPO also `tasks.json`): a task is left out when that run trained on its id, or when it is
an exact copy of a task the run trained on (trainer/overlap.py: same initial state,
request and verifier under another id). The notes say how many each rule left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import held_out, load_instances
from .overlap import exact_key

SPLITS = ("train", "held-out")


class SelectionError(ValueError):
    """A selection that cannot be made, in one line."""


def read_ids(path: Path) -> set[str]:
    """Ids from a file: a JSON array, a JSON object with a `held_out` array (GRPO's
    tasks.json), or one id a line (blank lines and `#` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SelectionError(f"{path}: cannot read: {exc}") from exc
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SelectionError(f"{path}: not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("held_out")
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise SelectionError(f"{path}: expected a JSON array of ids (or an object with a `held_out` array)")
        return set(data)
    return {line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}


def trained_records(out_dir: Path) -> list[dict]:
    """The accepted records a training run (an `eigen train sft|grpo` output folder) trained on."""
    try:
        config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SelectionError(f"{out_dir}: not a training output folder (config.json: {exc})") from exc
    data = config.get("data")
    sources = [data] if isinstance(data, str) else data if isinstance(data, list) else []
    if not sources:
        raise SelectionError(f"{out_dir}/config.json names no training data")
    listed: set[str] | None = None
    tasks_file = out_dir / "tasks.json"
    if tasks_file.is_file():  # GRPO: the train ids it sampled from, per domain
        try:
            listed = {i for ids in json.loads(tasks_file.read_text(encoding="utf-8"))["train"].values() for i in ids}
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            raise SelectionError(f"{tasks_file}: unreadable train ids: {exc}") from exc
    fraction = float(config.get("held_out") or 0.0)
    records = []
    for source in sources:
        path = Path(source)
        try:
            got, _ = load_instances(path if path.is_dir() else path.parent)
        except ValueError as exc:
            raise SelectionError(f"{out_dir}: its training data {source}: {exc}") from exc
        for r in got:
            rid = r.get("id")
            if isinstance(rid, str) and (rid in listed if listed is not None else not held_out(rid, fraction)):
                records.append(r)
    return records


def select_tasks(tasks: Sequence[Any], split: str | None = None, fraction: float | None = None,
                 ids: Path | None = None, held_out_of: Sequence[Path] = ()) -> tuple[list[Any], list[str]]:
    """(the tasks kept, in order; a note per rule on what it left out). Tasks are loaded
    `trainer.rollout.Task`s (anything with `.id` and `.record`)."""
    kept, notes = list(tasks), []
    if split is not None:
        if split not in SPLITS:
            raise SelectionError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
        if fraction is None:
            raise SelectionError("--split needs --fraction: the held_out fraction the training config used")
        want = split == "held-out"
        before = len(kept)
        kept = [t for t in kept if held_out(t.id, fraction) == want]
        notes.append(f"--split {split} (fraction {fraction}): {before - len(kept)} of {before} left out")
    if ids is not None:
        wanted = read_ids(ids)
        before = len(kept)
        kept = [t for t in kept if t.id in wanted]
        missing = len(wanted - {t.id for t in tasks})
        notes.append(f"--ids {ids}: {before - len(kept)} of {before} left out"
                     + (f"; {missing} listed id(s) are not among the tasks" if missing else ""))
    for out_dir in held_out_of:
        trained = trained_records(Path(out_dir))
        trained_ids = {r.get("id") for r in trained}
        copies = {exact_key(r) for r in trained}
        by_id = [t for t in kept if t.id in trained_ids]
        by_copy = [t for t in kept if t.id not in trained_ids and exact_key(t.record) in copies]
        kept = [t for t in kept if t.id not in trained_ids and exact_key(t.record) not in copies]
        notes.append(f"--held-out-of {out_dir}: {len(by_id)} trained on, {len(by_copy)} exact copies of "
                     f"trained tasks left out")
    return kept, notes
