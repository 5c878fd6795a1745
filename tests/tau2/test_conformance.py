"""Conformance with τ²-bench: every gold action of every τ²-bench task, replayed on our
domains from τ²-bench's own database files, must answer exactly what τ²-bench answered
(content byte for byte, error flag) and leave exactly τ²-bench's databases behind; telecom
tasks must also start from τ²-bench's post-initialization state and meet the same env
assertions. The corpus (`conformance/*.jsonl`, made by τ²-bench itself) lives in the shared
reference folder beside the checkout; without it these tests skip.

    python -m pytest tests/tau2 -k retail          # one domain
    python -m pytest tests/tau2 -k "airline-12"    # one task
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import pytest

from runtime.env import Environment, State
from runtime.tau2.corpus import DiffMismatch, apply_diff, describe_differences, read_corpus
from runtime.tau2.replay import check_assertions, replay

ROOT = Path(__file__).resolve().parents[2]
TAU2 = (ROOT / ".." / "shared" / "tau2").resolve()
DOMAINS = ("airline", "retail", "telecom")
DB_FILES = {"airline": ("db.json", None), "retail": ("db.json", None), "telecom": ("db.toml", "user_db.toml")}
# τ²-bench's get_hash() of its freshly loaded databases (conformance/README.md): sha256 of
# json.dumps(model_dump(), sort_keys=True, default=str)
LOADED_HASHES = {
    "airline": ("124e39a664b56402bcd09cb8a6a9cece6acb8462337c969799d5658e3250f263", None),
    "retail": ("b25c9cb211f5efcaee5dd646054a73c4a9f43f4f5acc32c10713cd9f9ac20e9c", None),
    "telecom": ("304cf5ef059852e117ea801ab9a5efc24c9713ec887679dc2e30acceb4b6742d",
                "e1f3a8637388808221228ff3f87294444e6b64caf721f5eb243a85d0a9380b28"),
}
NO_CORPUS = f"τ²-bench reference folder not found at {TAU2}"


@cache
def corpus(domain: str) -> dict[str, dict]:
    path = TAU2 / "conformance" / f"{domain}.jsonl"
    return {str(t["task_id"]): t for t in read_corpus(path)} if path.is_file() else {}


def _task_params() -> list:
    params = [pytest.param(d, tid, id=f"{d}-{tid}") for d in DOMAINS for tid in corpus(d)]
    return params or [pytest.param(None, None, id="no-corpus", marks=pytest.mark.skip(reason=NO_CORPUS))]


@cache
def _loaded(domain: str) -> Environment | str:
    """The domain's environment over τ²-bench's database files, or why it could not be built."""
    from eigenlang.domain import load_domain

    spec, diags = load_domain(ROOT / "domains" / domain)
    if spec is None:
        return f"domains/{domain} does not load:\n{diags.render()}"
    db, user_db = DB_FILES[domain]
    data = TAU2 / "data" / domain
    try:
        return Environment.from_data(spec, data / db, data / user_db if user_db else None)
    except Exception as exc:  # shown as the failure of every task of the domain
        return f"τ²-bench's {domain} database does not load: {type(exc).__name__}: {exc}"


def base_env(domain: str) -> Environment:
    if not TAU2.is_dir():
        pytest.skip(NO_CORPUS)
    env = _loaded(domain)
    if isinstance(env, str):
        pytest.fail(env, pytrace=False)
    return env


def _tau2_hash(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@pytest.mark.parametrize("domain", DOMAINS)
def test_loaded_databases_equal_tau2s(domain: str):
    """Loading τ²-bench's files gives exactly τ²-bench's loaded databases (defaults filled)."""
    env = base_env(domain)
    want_db, want_user = LOADED_HASHES[domain]
    problems = []
    dumps = TAU2 / "conformance" / "initial_dumps"
    for what, state, want, dump in (("db", env.db, want_db, dumps / f"{domain}_db.json"),
                                    ("user_db", env.user_db, want_user, dumps / f"{domain}_user_db.json")):
        if want is None:
            continue
        if state is None:
            problems.append(f"{what}: not loaded")
        elif _tau2_hash(state.to_json()) != want:
            if dump.is_file():
                hint = describe_differences(State.from_json(json.loads(dump.read_text())), state)
            else:  # τ²-bench's dump is the raw file plus a null for every unset optional field
                raw = json.loads((TAU2 / "data" / domain / DB_FILES[domain][0]).read_text())
                hint = "differences from the raw file:\n" + describe_differences(State.from_json(raw), state)
            problems.append(f"{what}: hash differs from τ²-bench's loaded database\n{hint}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("domain", "task_id"), _task_params())
def test_gold_actions_replay_like_tau2(domain: str, task_id: str):
    env = base_env(domain)
    task = corpus(domain)[task_id]
    init = (task.get("initial_state") or {}).get("initialization_actions") or []
    result = replay(env, task["calls"], init_actions=init)
    problems: list[str] = []

    for step in result.init:
        if not step.ok:
            problems.append(f"initialization action {step.name} failed: {step.error}")
    if "init_db_diff" in task:
        _compare_state(problems, "db after initialization", env.db, task["init_db_diff"], result.start.db)
        _compare_state(problems, "user db after initialization", env.user_db, task["init_user_db_diff"],
                       result.start.user_db)

    for i, (want, got) in enumerate(zip(task["calls"], result.calls)):
        head = f"call {i} {want['name']}({json.dumps(want['arguments'], ensure_ascii=False)[:200]})"
        if want["error"] != got["error"]:
            problems.append(f"{head}: error flag {got['error']}, τ²-bench {want['error']}")
        if want["content"] != got["content"]:
            problems.append(f"{head}: content differs{_first_difference(want['content'], got['content'])}")

    _compare_state(problems, "final db", result.start.db, task["final_db_diff"], result.env.db)
    if "final_user_db_diff" in task:
        _compare_state(problems, "final user db", result.start.user_db, task["final_user_db_diff"],
                       result.env.user_db)

    if task.get("env_assertions"):
        for want, got in zip(task["env_assertions"], check_assertions(result.env, task["env_assertions"])):
            if want["met"] != got["met"]:
                problems.append(f"env assertion {want['func_name']}({json.dumps(want['arguments'])}): met "
                                f"{got['met']} (value {got['value']!r}, {got['problem']}), τ²-bench {want['met']}")

    assert not problems, f"{domain} task {task_id}: {len(problems)} difference(s)\n" + "\n".join(problems)


def _compare_state(problems: list[str], what: str, before: State | None, diff: list, got: State | None) -> None:
    if before is None or got is None:
        if diff:
            problems.append(f"{what}: no such database here, τ²-bench changed {len(diff)} value(s)")
        return
    try:
        expected = apply_diff(before, diff)
    except DiffMismatch as exc:
        problems.append(f"{what}: τ²-bench's diff does not apply to our state: {exc}")
        return
    if expected != got:
        problems.append(f"{what} differs from τ²-bench's:\n{describe_differences(expected, got)}")


def _first_difference(want: str, got: str, context: int = 120) -> str:
    i = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    lo = max(0, i - 40)
    return (f" at character {i}\n    τ²-bench: ...{want[lo:i + context]!r}\n"
            f"    ours:     ...{got[lo:i + context]!r}")
