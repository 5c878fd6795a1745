"""`eigen verify`: re-check every accepted instance of a finished run directory from scratch.

For each line of `instances.jsonl` (docs/CONTRACTS.md §10):

1. the line parses as a JSON object with the fields a check needs;
2. the domain is found again (by name: a built-in, a folder next to the run, or the
   manifest's reference) and its `domain_hash` equals the one recorded: a domain edited
   since the run makes its data unverifiable, which is a failure, not a skip;
3. the initial state is rebuilt (`Environment.from_domain(domain, generator_seed, size)`,
   cached per (domain, seed, size)) and its hash equals `initial_state.hash`;
4. the gold calls (both sides) replayed on a fork reach `final_state.hash`, and so do the
   dialog's own calls, each with the outcome (ok or not) that the dialog recorded;
5. the record's verifier passes on the replayed final state with the record's messages.

Indices must increase line by line (the store commits in index order). Nothing here raises
for a bad record: every problem becomes a failure with the line and id it belongs to. A
missing or unreadable run directory raises `RunDirError` (one line, for the CLI's exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
INSTANCES = "instances.jsonl"
REJECTED = "rejected.jsonl"


class RunDirError(ValueError):
    """The path is not a readable run directory."""


# ---------------------------------------------------------------- reading a run directory


def open_run_dir(run_dir: Path | str) -> tuple[Path, dict]:
    """(the directory, its manifest) or RunDirError with the reason in one line."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise RunDirError(f"{path}: not a run directory (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{manifest_path}: unreadable: {exc}") from exc
    if not isinstance(manifest, dict):
        raise RunDirError(f"{manifest_path}: expected a JSON object")
    return path, manifest


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    record: dict | None  # None when the line is broken
    error: str | None = None


def read_lines(path: Path) -> Iterator[Line]:
    """Every line of a JSONL file as a record or an error; a missing file has no lines."""
    if not path.is_file():
        return
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                yield Line(number, None, "empty line")
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                yield Line(number, None, f"not valid JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield Line(number, None, f"expected a JSON object, got {type(value).__name__}")
                continue
            yield Line(number, value)


def read_records(path: Path) -> tuple[list[dict], list[str]]:
    """(the records that parse, 'line N: why' for each that does not)."""
    records, problems = [], []
    for line in read_lines(path):
        if line.record is None:
            problems.append(f"line {line.number}: {line.error}")
        else:
            records.append(line.record)
    return records, problems


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


# ---------------------------------------------------------------- verifying


class _Worlds:
    """Domains and initial environments, loaded once per run directory."""

    def __init__(self, run_dir: Path, manifest: dict, domain_override: str | None) -> None:
        self.run_dir, self.manifest, self.override = run_dir, manifest, domain_override
        self.domains: dict[str, tuple[Any, str] | str] = {}  # ref -> (spec, hash) or error
        self.envs: dict[tuple, Any] = {}  # (domain name, hash, seed, size) -> env or error

    def domain(self, name: str) -> tuple[Any, str]:
        """(DomainSpec, its current domain_hash) for a recorded domain name, or raises
        _Problem. The override wins; then the name itself; then the manifest's reference
        (a path, when the run used a domain folder outside the built-ins)."""
        refs = [self.override] if self.override else [name, self.manifest.get("domain"),
                                                       self.manifest.get("domain_dir")]
        errors = []
        for ref in refs:
            if not isinstance(ref, str) or not ref:
                continue
            got = self._load(ref)
            if isinstance(got, str):
                errors.append(got)
                continue
            spec, digest = got
            if spec.name != name and not self.override:
                errors.append(f"{ref!r} is domain {spec.name!r}")
                continue
            return spec, digest
        raise _Problem(f"cannot find domain {name!r}" + (f" ({'; '.join(errors)})" if errors else "")
                       + "; pass --domain PATH")

    def _load(self, ref: str) -> tuple[Any, str] | str:
        if ref not in self.domains:
            from eigenlang.domain import find_domain, load_domain
            from eigenlang.emit import domain_hash

            found = find_domain(ref, base=self.run_dir)
            if found is None:
                self.domains[ref] = f"no domain {ref!r}"
            else:
                spec, diags = load_domain(found)
                if spec is None:
                    first = diags.errors[0].message if diags.errors else "it does not load"
                    self.domains[ref] = f"domain {ref!r} has errors: {first}"
                else:
                    self.domains[ref] = (spec, domain_hash(spec))
        return self.domains[ref]

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


class _Problem(Exception):
    """A reason that stops checking one record."""


def verify_run(run_dir: Path | str, domain: str | None = None) -> VerifyRunResult:
    """Check every accepted instance of `run_dir`; `domain` overrides where the domain is
    looked up (a name or a folder) when the recorded name cannot be found."""
    path, manifest = open_run_dir(run_dir)
    result = VerifyRunResult(str(path))
    worlds = _Worlds(path, manifest, domain)
    last_index = None
    for line in read_lines(path / INSTANCES):
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
        if reasons:
            result.failures.append(VerifyFailure(line.number, rid, reasons))
        else:
            result.passed += 1
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
    from runtime.env.verifier import Verifier

    initial = _need(record, "initial_state", dict)
    final = _need(record, "final_state", dict)
    gold = _need(record, "gold_calls", list)
    name = initial.get("domain") or record.get("domain")
    if not isinstance(name, str) or not name:
        raise _Problem("initial_state.domain: missing")
    spec, digest = worlds.domain(name)
    if initial.get("domain_hash") != digest:
        raise _Problem(f"domain_hash mismatch: recorded {str(initial.get('domain_hash'))[:16]}, domain "
                       f"{name!r} now hashes to {digest[:16]} (it changed since the run)")
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

    replayed = env.fork()
    results = replayed.replay(gold)
    if replayed.hash() != want:
        failed = [f"{c.get('name') if isinstance(c, dict) else c!r}: {r.content[:120]}"
                  for c, r in zip(gold, results) if not r.ok]
        reasons.append(f"gold calls replayed reach {replayed.hash()[:16]}, final_state.hash is {str(want)[:16]}"
                       + (f" (failed: {'; '.join(failed)})" if failed else ""))

    calls = record.get("calls")
    if isinstance(calls, list):
        reasons += _check_dialog_calls(env, calls, want)

    try:
        verifier = Verifier.model_validate(record.get("verifier"))
    except Exception as exc:  # noqa: BLE001  # pydantic's message, first line only
        return reasons + [f"verifier: not a valid Verifier: {str(exc).splitlines()[0]}"]
    messages = record.get("messages") if isinstance(record.get("messages"), list) else []
    verdict = verifier.check(env, replayed, messages)
    reasons += [f"verifier: {f}" for f in verdict.failures]
    return reasons


def _check_dialog_calls(env: Any, calls: list, want: Any) -> list[str]:
    """The dialog's recorded calls, replayed, must reproduce the recorded outcomes and the
    final state: otherwise the trajectory does not show what the record claims."""
    reasons = []
    dialog = env.fork()
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            reasons.append(f"calls[{i}]: not an object")
            continue
        r = dialog.call(call.get("name"), call.get("arguments", {}), call.get("side", "agent"))
        if "ok" in call and bool(call["ok"]) != r.ok:
            reasons.append(f"calls[{i}] {call.get('name')}: recorded ok={bool(call['ok'])}, replay ok={r.ok}"
                           + ("" if r.ok else f" ({r.content[:120]})"))
    if dialog.hash() != want:
        reasons.append(f"the dialog's calls replayed reach {dialog.hash()[:16]}, final_state.hash is {str(want)[:16]}")
    return reasons
