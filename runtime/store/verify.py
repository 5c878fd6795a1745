"""`eigen verify`: re-check every accepted instance of a finished run directory from scratch.

A run directory is data from elsewhere: nothing in it is trusted, and no code is ever loaded
from inside it. For each line of `instances.jsonl` (docs/CONTRACTS.md §10):

1. the line parses as a JSON object with the fields a check needs;
2. its `integrity` hash equals the sha256 of its canonical JSON without that key (required
   from manifest format 2 on; format-1 runs have none: a warning, and the replay below is
   the whole check);
3. the domain is found again, never inside the run directory: `--domain` (the user's own
   choice), else the built-in domain of the recorded name, else the manifest's `domain_dir`
   (an absolute folder outside the run directory) only when its `domain_hash`, which covers
   every `.py` file of the folder, equals the recorded one; a folder's code runs only after
   that match. A domain that changed since the run makes its data unverifiable: a failure;
4. the initial state is rebuilt (`Environment.from_domain(domain, generator_seed, size)`,
   cached per (domain, seed, size)) and its hash equals `initial_state.hash`;
5. what is trained is what happened (`replay.py`): the tool schemas are the domain's; the
   tool calls in `messages` are exactly `calls`; every tool message is the output of
   replaying its call, in order, on a fresh fork; the dialog and the gold calls (each of
   which must exist and succeed) both reach `final_state.hash`;
6. the verifier's state checks are the ones the gold path's effect gives, its `communicate`
   holds the task's `inform` values, and it passes on the replayed final state with the
   record's messages.

Indices must increase line by line (the store commits in index order). Nothing here raises
for a bad record: every problem becomes a failure with the line and id it belongs to. A
missing path or a folder without a manifest raises `RunDirError` (the CLI's exit 2); a run
directory whose manifest or record files are damaged raises `DamagedRunDir` (exit 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .run_store import INTEGRITY, committed_shape, record_digest

MANIFEST = "manifest.json"
INSTANCES = "instances.jsonl"
REJECTED = "rejected.jsonl"
_BUILTIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


class RunDirError(ValueError):
    """The path is not a readable run directory."""


class DamagedRunDir(RunDirError):
    """A run directory whose manifest or record files cannot be read as what they must be."""


# ---------------------------------------------------------------- reading a run directory


def open_run_dir(run_dir: Path | str) -> tuple[Path, dict]:
    """(the directory, its manifest) or RunDirError with the reason in one line."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory")
    manifest_path = path / MANIFEST
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise RunDirError(f"{path}: not a run directory (no {MANIFEST})")
    if not manifest_path.is_file():
        raise DamagedRunDir(f"{manifest_path}: not a regular file; the run directory is damaged")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())[:200]
        raise DamagedRunDir(f"{manifest_path}: unreadable: {why}") from None
    if not isinstance(manifest, dict):
        raise DamagedRunDir(f"{manifest_path}: expected a JSON object, got {type(manifest).__name__}")
    return path, manifest


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    record: dict | None  # None when the line is broken
    error: str | None = None
    torn: bool = False  # the last line, without its newline: never committed (see run_store)


def read_lines(path: Path) -> Iterator[Line]:
    """Every line of a JSONL file as a record or an error; a missing file has no lines, and
    a path that is there but is not a file is DamagedRunDir. A last line without its newline
    was being written when the run stopped: the store cuts it on resume, so it is `torn`."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_file():
        raise DamagedRunDir(f"{path}: not a regular file; the run directory is damaged")
    with path.open("r", encoding="utf-8", errors="replace", newline="\n") as fh:
        for number, text in enumerate(fh, 1):
            if not text.endswith("\n"):
                yield Line(number, None, "torn last line (no newline: a record being written when the "
                                         "run stopped, never committed)", torn=True)
                return
            if not text.strip():
                yield Line(number, None, "empty line")
                continue
            try:
                value = json.loads(text)
            except RecursionError:
                yield Line(number, None, "not valid JSON: nested too deeply")
                continue
            except ValueError as exc:
                yield Line(number, None, f"not valid JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield Line(number, None, f"expected a JSON object, got {type(value).__name__}")
                continue
            yield Line(number, value)


def read_records(path: Path, accepted: bool | None = None) -> tuple[list[dict], list[str]]:
    """(the records that can be used, 'line N: why' for each that cannot): a line must parse
    as a JSON object and, when it carries an `integrity` hash, still hash to it (an edited
    record is not used, by the report or the trainer either). With `accepted` (the file's
    kind) a record also needs what the store counts it by (`index`, `accepted`, a
    rejection's `stage`)."""
    records, problems = [], []
    for line in read_lines(path):
        problem = line.error if line.record is None else record_problem(line.record, accepted)
        if problem:
            problems.append(f"line {line.number}: {problem}")
        else:
            records.append(line.record)
    return records, problems


def record_problem(record: dict, accepted: bool | None = None) -> str | None:
    """Why a parsed record cannot be used as it stands (see read_records), or None."""
    if accepted is not None:
        problem = committed_shape(record, accepted)
        if problem:
            return problem
    if INTEGRITY in record and record[INTEGRITY] != record_digest(record):
        return "the record does not hash to its integrity hash (edited after the run; `eigen verify` says what changed)"
    return None


# ---------------------------------------------------------------- results


@dataclass
class VerifyFailure:
    line: int
    id: str | None
    reasons: list[str]


@dataclass
class VerifyRunResult:
    run_dir: str
    lines: int = 0  # lines in instances.jsonl
    checked: int = 0  # records that parsed and were checked
    passed: int = 0
    failures: list[VerifyFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"run_dir": self.run_dir, "lines": self.lines, "checked": self.checked,
                "passed": self.passed, "failed": self.failed, "warnings": list(self.warnings),
                "failures": [{"line": f.line, "id": f.id, "reasons": list(f.reasons)}
                             for f in self.failures]}


# ---------------------------------------------------------------- finding domains


class _Problem(Exception):
    """A reason that stops checking one record."""


def manifest_format(manifest: dict) -> int:
    value = manifest.get("format", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


class _Worlds:
    """Domains and initial environments, loaded once per run directory.

    Where a domain may come from, and when its code (tools, generator) may run: `--domain`
    and the built-ins are the user's own code; the manifest's `domain_dir` is a claim of the
    run directory, so its folder is used only when its content hash (which covers every
    `.py` file in it) equals the recorded `domain_hash`, and never when it lies inside the
    run directory. Parsing `domain.yaml` runs no code; `initial_env` does, and is reached
    only with a domain returned here."""

    def __init__(self, run_dir: Path, manifest: dict, domain_override: str | None) -> None:
        self.run_dir, self.manifest, self.override = Path(run_dir).resolve(), manifest, domain_override
        self.legacy = manifest_format(manifest) < 2  # hashes recorded before `code` was covered
        self.loaded: dict[Path, tuple[Any, str, str] | str] = {}  # domain.yaml -> (spec, hash, legacy) or error
        self.envs: dict[tuple, Any] = {}  # (domain name, hash, seed, size) -> env or error

    def domain(self, name: Any, want: Any = None) -> tuple[Any, str]:
        """(DomainSpec, its domain_hash) for a recorded domain `name` whose recorded hash is
        `want` (default: the manifest's, when it names the same domain), or raises _Problem.
        The hash returned is the one that matched `want`, else the current one (the caller
        reports the difference)."""
        if not isinstance(name, str) or not name:
            raise _Problem("initial_state.domain: missing")
        if want is None and self.manifest.get("domain") == name:
            want = self.manifest.get("domain_hash")
        errors, fallback = [], None
        for where, found, trusted in self._candidates(name):
            got = found if isinstance(found, str) else self._load(found)
            if isinstance(got, str):
                errors.append(f"{where}: {got}")
                continue
            spec, digest, legacy = got
            if spec.name != name and not self.override:
                errors.append(f"{where} is domain {spec.name!r}")
                continue
            if isinstance(want, str) and digest == want:
                return spec, digest
            if trusted and self.legacy and isinstance(want, str) and legacy == want:
                return spec, legacy
            if trusted:
                fallback = fallback or (spec, digest)
            else:
                errors.append(f"{where} hashes to {digest[:16]}, not the recorded {str(want)[:16]}: its code "
                              "is not run")
        if fallback is not None:
            return fallback
        raise _Problem(f"cannot find domain {name!r}" + (f" ({'; '.join(errors)})" if errors else "")
                       + "; pass --domain PATH")

    def _candidates(self, name: str) -> Iterator[tuple[str, Path | str, bool]]:
        """(how it is found, its domain.yaml or why it is refused, trusted), in the order
        they are tried."""
        from eigenlang.domain import builtin_domains_dir, find_domain

        if self.override:
            found = find_domain(self.override)
            yield f"--domain {self.override}", found if found is not None else "no such domain", True
            return
        if _BUILTIN_NAME.match(name):
            yield f"built-in {name}", builtin_domains_dir() / name / "domain.yaml", True
        folder = self.manifest.get("domain_dir")
        if isinstance(folder, str) and folder:
            path = Path(folder)
            if not path.is_absolute():
                yield f"domain_dir {folder}", "not an absolute path", False
            elif _inside(path, self.run_dir):
                yield f"domain_dir {folder}", "inside the run directory: never loaded from there", False
            else:
                yield f"domain_dir {folder}", path / "domain.yaml", False

    def _load(self, found: Path) -> tuple[Any, str, str] | str:
        if found not in self.loaded:
            self.loaded[found] = _load_domain(found)
        return self.loaded[found]

    def initial_env(self, spec: Any, digest: str, seed: Any, size: Any) -> Any:
        key = (spec.name, digest, seed, size)
        if key not in self.envs:
            from runtime.env import Environment

            try:
                self.envs[key] = Environment.from_domain(spec, seed, size)
            except Exception as exc:  # noqa: BLE001  # a generator or state error, in words
                self.envs[key] = f"cannot rebuild the initial state: {type(exc).__name__}: {exc}"
        env = self.envs[key]
        if isinstance(env, str):
            raise _Problem(env)
        return env

    def record_env(self, spec: Any, digest: str, initial: dict) -> Any:
        """The initial Environment of a record's `initial_state`: the domain's generated world
        (`generator_seed`, `size`), or, for an imported τ²-bench task (`source: tau2`), its
        database files in the run directory and its set-up actions (runtime/tau2/records.py)."""
        if initial.get("source") == "tau2":
            from runtime.tau2.records import RecordError, start_env

            try:
                return start_env(self.run_dir, spec, initial, self.envs)
            except RecordError as exc:
                raise _Problem(str(exc)) from None
        return self.initial_env(spec, digest, initial.get("generator_seed"), initial.get("size", 1.0))


def _load_domain(found: Path) -> tuple[Any, str, str] | str:
    """(spec, domain_hash, its format-1 form) of a domain.yaml, or why not. Runs no domain code."""
    from eigenlang.domain import load_domain
    from eigenlang.emit import domain_hash

    if not found.is_file():
        return "no domain there"
    try:
        spec, diags = load_domain(found)
    except Exception as exc:  # noqa: BLE001  # the compiler's own bug, in words
        return f"does not load ({type(exc).__name__}: {exc})"
    if spec is None:
        return f"has errors: {diags.errors[0].message if diags.errors else 'it does not load'}"
    return spec, domain_hash(spec), domain_hash(spec, code=False)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


# ---------------------------------------------------------------- verifying


def verify_run(run_dir: Path | str, domain: str | None = None) -> VerifyRunResult:
    """Check every accepted instance of `run_dir`; `domain` names the domain to check against
    (a built-in name or a folder) instead of the recorded one."""
    path, manifest = open_run_dir(run_dir)
    result = VerifyRunResult(str(path))
    worlds = _Worlds(path, manifest, domain)
    last_index, unsealed = None, 0
    for line in read_lines(path / INSTANCES):
        if line.torn:
            result.warnings.append(f"{INSTANCES}:{line.number}: {line.error}; not checked")
            continue
        result.lines += 1
        if line.record is None:
            result.failures.append(VerifyFailure(line.number, None, [f"line {line.number}: {line.error}"]))
            continue
        record = line.record
        result.checked += 1
        rid = record.get("id") if isinstance(record.get("id"), str) else None
        reasons: list[str] = []
        index = record.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            if last_index is not None and index <= last_index:
                reasons.append(f"index {index} comes after index {last_index} (the store writes in index order)")
            last_index = index
        else:
            reasons.append("index: missing or not an integer")
        try:
            reasons += check_record(record, worlds)
        except _Problem as exc:
            reasons.append(str(exc))
        except Exception as exc:  # noqa: BLE001  # a malformed record must not stop the others
            reasons.append(f"cannot check: {type(exc).__name__}: {exc}")
        # last: the checks above name the field that changed; this one only says that one did
        if INTEGRITY in record:
            if record[INTEGRITY] != record_digest(record):
                reasons.append(f"{INTEGRITY}: the record does not hash to its recorded integrity hash "
                               "(edited after the run)")
        elif worlds.legacy:
            unsealed += 1
        else:
            reasons.append(f"{INTEGRITY}: missing (a format-{manifest_format(manifest)} run seals every record)")
        if reasons:
            result.failures.append(VerifyFailure(line.number, rid, reasons))
        else:
            result.passed += 1
    if unsealed:
        result.warnings.append(f"{unsealed} record(s) carry no {INTEGRITY} hash (a format-1 run): checked by "
                               "replay and the verifier only")
    counts = manifest.get("counts")
    accepted = counts.get("accepted") if isinstance(counts, dict) else None
    if isinstance(accepted, int) and accepted != result.lines:
        result.warnings.append(f"manifest counts {accepted} accepted, {INSTANCES} has {result.lines} line(s)")
    return result


def _need(record: dict, key: str, kind: type) -> Any:
    value = record.get(key)
    if not isinstance(value, kind):
        raise _Problem(f"{key}: missing or not a JSON {'object' if kind is dict else 'array'}")
    return value


def check_record(record: dict, worlds: _Worlds) -> list[str]:
    """The failures of one accepted record (empty when it verifies)."""
    from .replay import dialog_problems, gold_problems, tools_problems, verifier_problems

    initial = _need(record, "initial_state", dict)
    final = _need(record, "final_state", dict)
    _need(record, "gold_calls", list)
    name = initial.get("domain") or record.get("domain")
    spec, digest = worlds.domain(name, initial.get("domain_hash"))
    if initial.get("domain_hash") != digest:
        raise _Problem(f"domain_hash mismatch: recorded {str(initial.get('domain_hash'))[:16]}, domain "
                       f"{name!r} now hashes to {digest[:16]} (it changed since the run)")
    if initial.get("source") == "tau2":  # an imported τ²-bench task: its own checks
        from runtime.tau2.records import check_record as check_tau2

        return check_tau2(record, spec, worlds.record_env(spec, digest, initial))
    seed, size = initial.get("generator_seed"), initial.get("size", 1.0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _Problem("initial_state.generator_seed: missing or not an integer")
    if not isinstance(size, (int, float)) or isinstance(size, bool) or size <= 0:
        raise _Problem("initial_state.size: missing or not a positive number")
    env = worlds.initial_env(spec, digest, seed, size)
    reasons = []
    if initial.get("hash") != env.hash():
        reasons.append(f"initial_state.hash {str(initial.get('hash'))[:16]} != rebuilt {env.hash()[:16]}")
    want = final.get("hash")
    reasons += tools_problems(record, spec)
    reasons += dialog_problems(record, spec, env, want)
    gold_reasons, gold_env = gold_problems(record, env, want)
    reasons += gold_reasons
    reasons += verifier_problems(record, env, gold_env, gold_ok=not gold_reasons)
    return reasons
