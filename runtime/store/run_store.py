"""The run directory: append-only, crash-safe, resumable, one writer (docs/CONTRACTS.md §10).

Records are committed strictly in index order, each as one `os.write` of one complete line to
`instances.jsonl` (accepted) or `rejected.jsonl`. So after any crash the two files hold the
records of indices 0..k-1, plus at most one torn last line, which reopening cuts off. A rerun
resumes at k: nothing lost (everything committed stays) and nothing duplicated (k is derived
from the files themselves, not from a separately written counter that could lag).

One process writes a run directory at a time: `RunLock` holds an OS lock (`flock`) on
`OUT/.lock` for the run's life, so a second `eigen run` or `eigen evolve` on the same `--out`
is refused with the holder's pid, and a killed run leaves no stale lock (the kernel drops it
with the process). Every committed record carries `integrity`: the sha256 of its canonical
JSON without that key, which `eigen verify` recomputes.

A crashed instance (a record with `crash`, runtime.env.crashes) is committed to
`rejected.jsonl` like a rejection, but counted apart, and its traceback goes to
`crashes/<index>.txt` (written before its record line, so a committed crash always has its
file; a file beyond the committed indices is rewritten, identically, on resume).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# 2: records carry `integrity`; the domain hash covers every .py file of the domain folder.
FORMAT = 2
# What must match for a rerun to continue a run rather than mix two different datasets.
IDENTITY = ("workflow_hash", "domain_hash", "backend", "model", "seed", "size")
FILES = {True: "instances.jsonl", False: "rejected.jsonl"}
LOCK = ".lock"
CRASHES = "crashes"  # crashes/<index:06d>.txt: one traceback per crashed instance; generator.txt
INTEGRITY = "integrity"
# running: open (or killed: rerun to resume); complete: N accepted; exhausted: max_attempts
# tried first; failed: stopped by an error (`reason` says which), resumable once it is fixed.
STATUSES = ("running", "complete", "exhausted", "failed")


class StoreError(Exception):
    """The directory cannot be used for this run (said in words)."""


class RunLocked(StoreError):
    """Another live process is writing the run directory (`pid`: the holder, when known)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def canonical_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_line(record: dict) -> bytes:
    return (canonical_text(record) + "\n").encode("utf-8")


def record_digest(record: dict) -> str:
    """The integrity hash of a record as read back from its line: sha256 of its canonical JSON
    without the `integrity` key. Binds messages, calls, task, verifier and every other field
    together; a hand edit that does not recompute it is caught. (It is not a signature:
    whoever edits a record on purpose can recompute it, which is why verify also replays.)"""
    body = {k: v for k, v in record.items() if k != INTEGRITY}
    return hashlib.sha256(canonical_text(body).encode("utf-8")).hexdigest()


def sealed(record: dict) -> dict:
    """The record as it will read back from its line (plain JSON: tuples as lists, keys as
    strings), with its `integrity` hash."""
    plain = json.loads(canonical_line({k: v for k, v in record.items() if k != INTEGRITY}))
    return {**plain, INTEGRITY: record_digest(plain)}


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(name: Any, fallback: str = "run") -> str:
    """A safe single path segment for a name taken from a program: letters, digits, `_.-`
    only, other runs of characters as one `-`, no leading dot or dash, at most 60 characters.
    `../../x` becomes `x`: a workflow's name never steers where a run is written."""
    text = _UNSAFE.sub("-", str(name or "")).strip(".-")[:60].strip(".-")
    return text or fallback


def default_run_dir(workflow: Any, domain: Any, seed: int, suffix: str = "") -> Path:
    """`runs/<workflow>-<domain>-<seed><suffix>`, every part a slug: always directly under runs/."""
    return Path("runs") / f"{slug(workflow, 'workflow')}-{slug(domain, 'domain')}-{int(seed)}{slug(suffix, '')}"


class RunLock:
    """The one-writer lock of a run directory: `flock` on OUT/.lock, the holder's pid written
    into the file for the refusal message. Released by `release()` or when the process dies
    (the kernel drops flock locks with the last descriptor), so a SIGKILL leaves nothing stale.
    The descriptor is not inherited by child processes (Python opens files non-inheritable)."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.out}: cannot create the run directory ({exc.strerror or exc})") from None
        path = self.out / LOCK
        try:  # O_NOFOLLOW: a planted symlink must not make us truncate some other file
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the run lock ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = self._holder()
            os.close(self._fd)
            self._fd = None
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(f"{path}: cannot lock ({exc.strerror or exc})") from None
            raise RunLocked(f"{self.out} is being written by another run (pid {pid if pid else 'unknown'}); "
                            "wait for it to finish or use another --out", pid) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> int | None:
        try:
            text = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock


@dataclass
class Counts:
    """Committed records: accepted, rejected (not counting crashes) and crashed, and where."""

    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)
    crashed: int = 0
    crashes_by_stage: dict[str, int] = field(default_factory=dict)

    def add(self, record: dict) -> None:
        self.attempted += 1
        if record["accepted"]:
            self.accepted += 1
        elif is_crash(record):
            self.crashed += 1
            self.crashes_by_stage[record["stage"]] = self.crashes_by_stage.get(record["stage"], 0) + 1
        else:
            self.rejected += 1
            self.by_stage[record["stage"]] = self.by_stage.get(record["stage"], 0) + 1

    @property
    def crash_rate(self) -> float:
        return self.crashed / self.attempted if self.attempted else 0.0


def is_crash(record: dict) -> bool:
    return not record.get("accepted") and isinstance(record.get("crash"), dict)


def crash_file(index: int) -> str:
    """Where the traceback of instance `index` is, relative to the run directory."""
    return f"{CRASHES}/{index:06d}.txt"


class RunStore:
    def __init__(self, out: Path | str, identity: dict[str, Any], extra: dict[str, Any],
                 lock: RunLock | None = None) -> None:
        """Open (or create) `out` for the run `identity`; resume what is already there. Takes
        the directory's lock (RunLocked when another process holds it) unless the caller
        already holds it (`lock`, e.g. `eigen evolve` for its whole run); a lock the store
        took itself is released by `close()`."""
        self.out = Path(out)
        self._own_lock = lock is None
        self.lock = lock if lock is not None else RunLock(self.out)
        self._fds: dict[bool, int] = {}
        try:
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
            for ok, name in FILES.items():
                self._fds[ok] = os.open(self.out / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self.write_manifest("running")
        except BaseException:
            self._close_files()
            if self._own_lock:
                self.lock.release()
            raise

    def _read_manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            if any((self.out / f).exists() for f in FILES.values()):
                raise StoreError(f"{self.out} has records but no manifest.json; use another --out")
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise StoreError(f"{self.manifest_path}: unreadable ({_why(exc)}); the run store is damaged") from None
        if not isinstance(manifest, dict):
            raise StoreError(f"{self.manifest_path}: not a JSON object; the run store is damaged")
        return manifest

    def _recover(self) -> int:
        """Cut torn last lines; count what is committed; check indices are exactly 0..k-1."""
        seen: list[int] = []
        for accepted, name in FILES.items():
            path = self.out / name
            if not path.exists() and not path.is_symlink():
                continue
            if not path.is_file():
                raise StoreError(f"{path}: not a regular file; the run store is damaged")
            try:
                data = path.read_bytes()
                good = data[: data.rfind(b"\n") + 1]
                if len(good) != len(data):  # a line torn by a crash: it was never committed
                    with open(path, "r+b") as f:
                        f.truncate(len(good))
            except OSError as exc:
                raise StoreError(f"{path}: unreadable ({_why(exc)})") from None
            for n, line in enumerate(good.splitlines(), 1):
                record, problem = committed_record(line, accepted)
                if record is None:
                    raise StoreError(f"{path}:{n}: {problem}; the run store is damaged")
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
        if is_crash(record) and "traceback" in record["crash"]:
            record = self._crash_out(record)
        line = canonical_line(sealed(record))
        fd = self._fds[bool(record["accepted"])]
        written = os.write(fd, line)
        while written < len(line):  # short writes are rare (signals, full disk): finish the line
            written += os.write(fd, line[written:])
        self.counts.add(record)
        self.next_index += 1

    def _crash_out(self, record: dict) -> dict:
        """Write a crashed record's traceback to crashes/<index>.txt; the record as committed,
        naming that file instead of holding the text."""
        crash = dict(record["crash"])
        text = crash.pop("traceback")
        crash["file"] = crash_file(record["index"])
        head = [f"instance {record.get('id')} (index {record['index']})", f"stage: {crash.get('stage')}",
                f"source: {crash.get('source')} {crash.get('where')}",
                f"{crash.get('type')}: {crash.get('message')}", ""]
        self.write_crash_file(crash["file"], "\n".join(head) + "\n" + str(text))
        return {**record, "crash": crash}

    def write_crash_file(self, name: str, text: str) -> Path:
        """`name` (crashes/...) written atomically inside the run directory; never through a
        symlink planted where the folder or the file should be."""
        folder = self.out / CRASHES
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise StoreError(f"{folder}: not a directory; the run store is damaged")
        folder.mkdir(exist_ok=True)
        path = self.out / name
        tmp = folder / f".{path.name}.tmp"
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, path)
        return path

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
            "rejected": self.counts.rejected, "by_stage": dict(sorted(self.counts.by_stage.items())),
            "crashed": self.counts.crashed,
            "crashes_by_stage": dict(sorted(self.counts.crashes_by_stage.items()))})
        tmp = self.manifest_path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.manifest, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.manifest_path)

    def close(self, status: str, reason: str | None = None) -> None:
        """Sync and close the record files, write the final manifest, release the lock (when
        this store took it)."""
        try:
            for fd in self._fds.values():
                os.fsync(fd)
            self._close_files()
            self.write_manifest(status, reason)
        finally:
            self._close_files()
            if self._own_lock:
                self.lock.release()

    def _close_files(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


def committed_record(line: bytes | str, accepted: bool) -> tuple[dict | None, str | None]:
    """(the record, None), or (None, why) when one committed line is not a record the store
    can count: only the fields resuming relies on are checked (verify checks the rest)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return None, f"not a JSON record ({_why(exc)})"
    problem = committed_shape(record, accepted)
    return (None, problem) if problem else (record, None)


def committed_shape(record: Any, accepted: bool) -> str | None:
    """Why a parsed line of the accepted (or rejected) records is not a record (None when it is)."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record object"
    index = record.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return "no index (a non-negative integer)"
    if record.get("accepted") is not accepted:
        return f"accepted is {json.dumps(record.get('accepted'))}, expected {json.dumps(accepted)} in this file"
    if not accepted and not isinstance(record.get("stage"), str):
        return "a rejected record without its stage"
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return " ".join(str(exc).split())[:200]
