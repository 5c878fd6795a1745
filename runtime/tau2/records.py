"""What an imported τ²-bench task is as a run-store record, and how a reader rebuilds and
checks one (`eigen verify`, `eigen eval`, the trainer).

An imported record is an ordinary accepted record (docs/CONTRACTS.md §10) whose
`initial_state` is not a generator seed but τ²-bench's database:

    initial_state: {source: "tau2", domain, domain_hash, hash,
                    db: {file: "tau2/db-<16 hex>.json", sha256},
                    user_db: {file, sha256} | null,
                    init_actions: [{env_type, func_name, arguments}, ...]}

The database files are copied byte for byte into the run directory's `tau2/` folder (data,
never code), named by their content hash, so a run directory travels whole and every reader
rebuilds the same start: the file (its sha256 checked), loaded against the domain's schema,
then the task's initialization actions (`env.act`). `tau2.task` keeps τ²-bench's task object
as the file had it; `gold_calls` are its `evaluation_criteria.actions`, `final_state` is what
they reach (τ²-bench's gold replay: a gold action that fails keeps failing, as in τ²-bench),
and `verifier` is `build_verifier`'s. `messages` is τ²-bench's reference trajectory and no
more: the agent's system prompt (τ²-bench's, with the policy of the data folder), then each gold
action as a tool call with the tool's exact answer (a user-side action as the user's own tool
use, `side: user`). τ²-bench's tasks hold no words, so neither does the record: no user or
assistant text is made up (the task's user scenario is `user_instructions`).

Every function here that reads a record treats it as hostile: a file path that leaves
`tau2/`, a hash that does not match, a database that breaks the schema are `RecordError`s in
words.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.env.verifier import EnvAssertion, Verifier, verifier_from_diff

from .data import Criteria, Task, scenario_text

SOURCE = "tau2"
FILES_DIR = "tau2"
_FILE = re.compile(r"tau2/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,120}\Z")
SIDES = {"assistant": "agent", "user": "user"}


class RecordError(ValueError):
    """A τ²-bench record whose initial state cannot be rebuilt (said in words)."""


def is_tau2(record: Any) -> bool:
    initial = record.get("initial_state") if isinstance(record, dict) else None
    return isinstance(initial, dict) and initial.get("source") == SOURCE


# ---------------------------------------------------------------- the parts of a record


def gold_calls(task: Task) -> list[dict]:
    """τ²-bench's gold actions as gold calls `{name, arguments, side}` (user-side: `side: user`)."""
    actions = (task.evaluation_criteria.actions if task.evaluation_criteria else None) or []
    return [{"name": a.name, "arguments": a.arguments, "side": SIDES[a.requestor]} for a in actions]


def init_actions(task: Task) -> list[dict]:
    state = task.initial_state
    return [a.model_dump(mode="json") for a in (state.initialization_actions or [])] if state else []


def replay_gold(start: Any, calls: list[dict]) -> tuple[Any, list[Any]]:
    """(the environment the gold calls reach from a fork of `start`, each call's result).
    Failed calls are kept: τ²-bench's gold replay logs them and goes on."""
    env = start.fork()
    return env, [env.call(c["name"], c.get("arguments") or {}, c.get("side", "agent")) for c in calls]


def demonstration(gold: list[dict], results: list[Any]) -> list[dict]:
    """The gold calls as messages (docs/CONTRACTS.md §9): one tool call per message, each
    followed by its result; user-side calls as the user's tool use."""
    messages: list[dict] = []
    for i, (call, result) in enumerate(zip(gold, results)):
        cid = f"gold_{i}"
        user = call.get("side") == "user"
        tool_call = {"id": cid, "type": "function", "function": {
            "name": call["name"], "arguments": json.dumps(call.get("arguments") or {}, ensure_ascii=False)}}
        reply = {"role": "tool", "tool_call_id": cid, "name": call["name"], "content": result.content}
        if user:
            messages += [{"role": "user", "side": "user", "content": None, "tool_calls": [tool_call]},
                         {**reply, "side": "user"}]
        else:
            messages += [{"role": "assistant", "content": None, "tool_calls": [tool_call]}, reply]
    return messages


def build_verifier(start: Any, final: Any, criteria: Criteria | None) -> Verifier:
    """The verifier of an imported task, for the parts of its `reward_basis` a verifier can
    state: DB → the gold replay's exact effect (`verifier_from_diff`: readable assertions and
    the expected diff of both databases); COMMUNICATE → `communicate_info`; ENV_ASSERTION →
    the env assertions, re-run on the final state. ACTION and NL_ASSERTION have no verifier
    form: `runtime.tau2.grade` grades them (NL only with a judge)."""
    basis = set(criteria.reward_basis) if criteria else set()
    verifier = verifier_from_diff(start, final) if "DB" in basis else Verifier()
    if "COMMUNICATE" in basis and criteria and criteria.communicate_info:
        verifier.communicate = list(criteria.communicate_info)
    if "ENV_ASSERTION" in basis and criteria and criteria.env_assertions:
        verifier.env_assertions = [
            EnvAssertion(name=a.func_name, arguments=a.arguments, side=SIDES[a.env_type],
                         expected=a.assert_value, description=a.message or "")
            for a in criteria.env_assertions]
    return verifier


def needs_judge(task: Task) -> bool:
    """Whether grading the task needs a model judge: nl_assertions in its reward basis, and some."""
    c = task.evaluation_criteria
    return bool(c and "NL_ASSERTION" in c.reward_basis and c.nl_assertions)


def task_of(record: dict) -> Task:
    """τ²-bench's task object of a record (`tau2.task`), checked; raises RecordError."""
    block = record.get("tau2")
    raw = block.get("task") if isinstance(block, dict) else None
    if not isinstance(raw, dict):
        raise RecordError("tau2.task: missing or not an object")
    try:
        return Task.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RecordError(f"tau2.task: not a τ²-bench task: {'.'.join(map(str, first['loc']))}: "
                          f"{first['msg']}") from None


# ---------------------------------------------------------------- the initial state


def file_ref(name: str, file: Path, data: bytes) -> dict:
    """`{file, sha256}` for a database copied into the run directory as `tau2/<name>-<hash><suffix>`."""
    digest = hashlib.sha256(data).hexdigest()
    return {"file": f"{FILES_DIR}/{name}-{digest[:16]}{file.suffix}", "sha256": digest}


def _read_ref(run_dir: Path, ref: Any, where: str) -> Path:
    """The run directory's file that `ref` names, after checking that it stays in `tau2/`, is
    a regular file (not a link) and hashes to the recorded sha256."""
    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str) or not isinstance(ref.get("sha256"), str):
        raise RecordError(f"{where}: expected {{file, sha256}}")
    name = ref["file"]
    if not _FILE.match(name) or ".." in name:
        raise RecordError(f"{where}.file: {json.dumps(name)[:80]} is not a file name under {FILES_DIR}/")
    path = run_dir / name
    if path.is_symlink() or path.parent.is_symlink() or not path.is_file():
        raise RecordError(f"{where}.file: {path}: no such file (the run directory keeps τ²-bench's databases "
                          f"in {FILES_DIR}/)")
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise RecordError(f"{where}.file: {path}: cannot read: {exc.strerror or exc}") from None
    if digest != ref["sha256"]:
        raise RecordError(f"{where}: {path} hashes to {digest[:16]}, the record says {ref['sha256'][:16]} "
                          "(the file changed since the import)")
    return path


def start_env(run_dir: Path | str, spec: Any, initial: dict, cache: dict) -> Any:
    """The environment a τ²-bench record starts from: its database files from the run
    directory (loaded once per `cache`, a dict the caller keeps), then its initialization
    actions on a fork. Raises RecordError."""
    from runtime.env import Environment

    from .replay import replay

    run_dir = Path(run_dir)
    db = _read_ref(run_dir, initial.get("db"), "initial_state.db")
    user = initial.get("user_db")
    user_db = _read_ref(run_dir, user, "initial_state.user_db") if user is not None else None
    key = (SOURCE, spec.name, id(spec), str(db), str(user_db))
    base = cache.get(key)
    if base is None:
        try:
            base = Environment.from_data(spec, db, user_db)
        except Exception as exc:  # noqa: BLE001  # StateLoadError (located) or a domain that cannot be built
            base = f"cannot load τ²-bench's database: {exc}"
        cache[key] = base
    if isinstance(base, str):
        raise RecordError(base)
    actions = initial.get("init_actions") or []
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise RecordError("initial_state.init_actions: expected a list of {env_type, func_name, arguments}")
    result = replay(base, [], init_actions=actions)
    failed = [f"{s.name}: {s.error}" for s in result.init if not s.ok]
    if failed:
        raise RecordError(f"initial_state.init_actions: {failed[0]}" + (f" (and {len(failed) - 1} more)"
                                                                         if len(failed) > 1 else ""))
    return result.start


# ---------------------------------------------------------------- eigen verify


def check_record(record: dict, spec: Any, start: Any) -> list[str]:
    """Why an imported record does not verify (empty when it does), given its domain and the
    start `start_env` rebuilt: the initial hash, the tool schemas, the dialogue as any record's
    (`runtime.store.replay.dialog_problems`: calls, turns, every tool message replayed), whose
    calls are the gold calls; the gold calls and user instructions are τ²-bench's task's, they
    reach `final_state`, and the verifier is `build_verifier`'s and passes on that state."""
    from runtime.env.rules import state_diff
    from runtime.store.replay import dialog_problems, tools_problems

    reasons: list[str] = []
    initial, final = record.get("initial_state") or {}, record.get("final_state")
    if initial.get("hash") != start.hash():
        reasons.append(f"initial_state.hash {str(initial.get('hash'))[:16]} != rebuilt {start.hash()[:16]}")
    reasons += tools_problems(record, spec)
    reasons += dialog_problems(record, spec, start, final.get("hash") if isinstance(final, dict) else None)
    messages = record.get("messages")
    if not (isinstance(messages, list) and messages and isinstance(messages[0], dict)
            and messages[0].get("role") == "system"):
        reasons.append("messages[0]: not the agent's system prompt")
    calls = record.get("calls") if isinstance(record.get("calls"), list) else []
    made = [{"name": c.get("name"), "arguments": c.get("arguments"), "side": c.get("side")}
            for c in calls if isinstance(c, dict)]
    try:
        task = task_of(record)
    except RecordError as exc:
        return reasons + [str(exc)]
    block = record.get("tau2") or {}
    if block.get("task_id") != task.id:
        reasons.append(f"tau2.task_id: {block.get('task_id')!r}, the task's id is {task.id!r}")
    if block.get("needs_judge") is not needs_judge(task):
        reasons.append(f"tau2.needs_judge: {block.get('needs_judge')!r}, the task's criteria say {needs_judge(task)}")
    if record.get("user_instructions") != scenario_text(task.user_scenario):
        reasons.append("user_instructions: not the task's user scenario as τ²-bench renders it")
    if initial.get("init_actions", []) != init_actions(task):
        reasons.append("initial_state.init_actions: not the task's initialization actions")
    gold = gold_calls(task)
    if record.get("gold_calls") != gold:
        reasons.append("gold_calls: not the task's evaluation_criteria.actions")
    if made != gold:
        reasons.append("messages: the tool calls are not the task's gold actions in order")
    final_env, results = replay_gold(start, gold)
    reasons += [f"gold_calls[{i}] {c['name']}: cannot run in this domain: {r.content}"
                for i, (c, r) in enumerate(zip(gold, results)) if r.error in ("unknown_tool", "crash")]
    if not isinstance(final, dict) or final.get("hash") != final_env.hash():
        got = final.get("hash") if isinstance(final, dict) else None
        reasons.append(f"gold calls replayed reach {final_env.hash()[:16]}, final_state.hash is {str(got)[:16]}")
    elif final.get("diff") != state_diff(start, final_env) or final.get("initial_hash") != start.hash():
        reasons.append("final_state: diff or initial_hash is not what the gold calls give")
    try:
        verifier = Verifier.model_validate(record.get("verifier"))
    except ValidationError as exc:
        return reasons + [f"verifier: not a valid Verifier: {str(exc).splitlines()[0]}"]
    want = build_verifier(start, final_env, task.evaluation_criteria)
    if verifier.model_dump(mode="json") != want.model_dump(mode="json"):
        reasons.append("verifier: not the one the task's reward_basis and its gold replay give")
    # the gold calls hold no words: what they must say is graded on an agent's dialogue only
    silent = verifier.model_copy(update={"communicate": []})
    reasons += [f"verifier: {f}" for f in silent.check(start, final_env, []).failures]
    return reasons
