"""The run directory: append-only, crash-safe, resumable (docs/CONTRACTS.md §10).

Records are committed strictly in index order, each as one `os.write` of one complete line to
`instances.jsonl` (accepted) or `rejected.jsonl`. So after any crash the two files hold the
records of indices 0..k-1, plus at most one torn last line, which reopening cuts off. A rerun
resumes at k: nothing lost (everything committed stays) and nothing duplicated (k is derived
from the files themselves, not from a separately written counter that could lag).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
# What must match for a rerun to continue a run rather than mix two different datasets.
IDENTITY = ("workflow_hash", "domain_hash", "backend", "model", "seed", "size")
FILES = {True: "instances.jsonl", False: "rejected.jsonl"}
# running: open (or killed: rerun to resume); complete: N accepted; exhausted: max_attempts
# tried first; failed: stopped by an error (`reason` says which), resumable once it is fixed.
STATUSES = ("running", "complete", "exhausted", "failed")


class StoreError(Exception):
    """The directory cannot be used for this run (said in words)."""


def canonical_line(record: dict) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            + "\n").encode("utf-8")


@dataclass
class Counts:
    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)

    def add(self, record: dict) -> None:
        self.attempted += 1
        if record["accepted"]:
            self.accepted += 1
        else:
            self.rejected += 1
            self.by_stage[record["stage"]] = self.by_stage.get(record["stage"], 0) + 1


class RunStore:
    def __init__(self, out: Path | str, identity: dict[str, Any], extra: dict[str, Any]) -> None:
        """Open (or create) `out` for the run `identity`; resume what is already there."""
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.out / "manifest.json"
        self.counts = Counts()
        old = self._read_manifest()
        if old is not None:
            clash = [k for k in IDENTITY if old.get(k) != identity.get(k)]
            if clash:
                raise StoreError(f"{self.out} holds a different run ({', '.join(clash)} differ: "
                                 + "; ".join(f"{k} {old.get(k)!r} there, {identity.get(k)!r} now"
                                             for k in clash) + "); use another --out")
        self.manifest = {"format": FORMAT, **(old or {}), **identity, **extra}
        self.next_index = self._recover()
        self._fds = {ok: os.open(self.out / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                     for ok, name in FILES.items()}
        self.write_manifest("running")

    def _read_manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            if any((self.out / f).exists() for f in FILES.values()):
                raise StoreError(f"{self.out} has records but no manifest.json; use another --out")
            return None
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.manifest_path}: unreadable ({exc})") from None

    def _recover(self) -> int:
        """Cut torn last lines; count what is committed; check indices are exactly 0..k-1."""
        seen: list[int] = []
        for name in FILES.values():
            path = self.out / name
            if not path.exists():
                continue
            data = path.read_bytes()
            good = data[: data.rfind(b"\n") + 1]
            if len(good) != len(data):  # a line torn by a crash: it was never committed
                with open(path, "r+b") as f:
                    f.truncate(len(good))
            for n, line in enumerate(good.splitlines(), 1):
                try:
                    record = json.loads(line)
                except ValueError:
                    raise StoreError(f"{path}:{n}: not a JSON record; the run store is damaged") from None
                seen.append(record["index"])
                self.counts.add(record)
        seen.sort()
        if seen != list(range(len(seen))):
            raise StoreError(f"{self.out}: committed indices are not 0..{len(seen) - 1}; "
                             "the run store is damaged")
        return len(seen)

    def commit(self, record: dict) -> None:
        """Append one record (the next index, strictly in order) in a single write."""
        if record["index"] != self.next_index:
            raise ValueError(f"commit out of order: {record['index']} != {self.next_index}")
        line = canonical_line(record)
        fd = self._fds[bool(record["accepted"])]
        written = os.write(fd, line)
        while written < len(line):  # short writes are rare (signals, full disk): finish the line
            written += os.write(fd, line[written:])
        self.counts.add(record)
        self.next_index += 1

    def write_manifest(self, status: str, reason: str | None = None) -> None:
        """Atomically (write a temporary file, fsync, rename). `reason` says why a run
        `failed`; any other status drops an earlier run's reason (a resumed run is running)."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r} (one of {', '.join(STATUSES)})")
        self.manifest.pop("reason", None)
        if reason is not None:
            self.manifest["reason"] = reason
        self.manifest.update(status=status, counts={
            "attempted": self.counts.attempted, "accepted": self.counts.accepted,
            "rejected": self.counts.rejected, "by_stage": dict(sorted(self.counts.by_stage.items()))})
        tmp = self.manifest_path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.manifest, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.manifest_path)

    def close(self, status: str, reason: str | None = None) -> None:
        for fd in self._fds.values():
            os.fsync(fd)
            os.close(fd)
        self._fds = {}
        self.write_manifest(status, reason)
