"""Replay τ²-bench action lists on one of our environments.

τ²-bench writes three kinds of action, all replayed here:

- a tool call `{"name", "arguments", "requestor": "assistant"|"user"}` (gold actions, what
  `eigen domain replay` reads): run through `Environment.call` on the requestor's side;
- an initialization action `{"env_type", "func_name", "arguments"}` (a task's
  `initial_state.initialization_actions`): a named environment action of the domain, or a
  tool of that side when the domain declares no action of that name (`env.act`; τ²-bench
  calls either);
- an env assertion `{"env_type", "func_name", "arguments", "assert_value"}`: an environment
  action whose value is compared with `assert_value` (`check_assertions`).

The result keeps the environments themselves (after initialization and at the end), so a
grader compares states by hash without dumping them; `Replay.db` / `.user_db` are the
canonical dumps, computed on first use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eigenlang.diagnostics import did_you_mean

from runtime.env import Environment, State
from runtime.env.errors import StateLoadError

# τ²-bench's requestor / env_type → our side
SIDES = {"assistant": "agent", "user": "user"}


@dataclass
class StepResult:
    """The outcome of one initialization action or assertion: `ok`, its value (actions that
    return one) and the error text of a failure."""

    name: str
    ok: bool
    value: Any = None
    error: str | None = None


@dataclass
class Replay:
    """What a replay produced. `calls` are `{"name", "content", "error"}` (error: bool), one
    per action, in order; `init` the results of the initialization actions; `start` the
    environment after initialization, `env` the one after the last call."""

    calls: list[dict]
    env: Environment
    start: Environment
    init: list[StepResult] = field(default_factory=list)

    @property
    def db(self) -> dict:
        return self.env.db.to_json()

    @property
    def user_db(self) -> dict | None:
        return self.env.user_db.to_json() if self.env.user_db is not None else None

    def to_json(self) -> dict:
        """`{"calls", "db", "user_db"}`: what `eigen domain replay` prints."""
        return {"calls": self.calls, "db": self.db, "user_db": self.user_db}


def load_environment(domain: Any, db: Any = None, user_db: Any = None, *, seed: int = 0) -> Environment:
    """An environment of `domain` (a DomainSpec, or a name/folder `load_domain` accepts) over
    `db` / `user_db`: a file path (JSON, or TOML for .toml), JSON-like data, or None for the
    domain's generated database (seed `seed`). Raises StateLoadError with a located message
    when a database does not match the schema."""
    spec = _spec(domain)
    if db is None and user_db is None:
        return Environment.from_domain(spec, seed=seed)
    if db is None:
        raise StateLoadError("a user database was given without a database")
    return Environment.from_data(spec, _source(db), _source(user_db) if user_db is not None else None)


def replay(domain: Any, actions: Iterable[Mapping[str, Any]], *, db: Any = None, user_db: Any = None,
           init_actions: Iterable[Mapping[str, Any]] = ()) -> Replay:
    """Run `init_actions`, then `actions`, on a fresh environment and return every call's
    content. `domain` may also be an `Environment` (it is forked, never changed; `db` and
    `user_db` must then be None): load a database once, replay many tasks on it."""
    if isinstance(domain, Environment):
        if db is not None or user_db is not None:
            raise ValueError("replay on an Environment takes no db/user_db")
        env = domain.fork()
    else:
        env = load_environment(domain, db, user_db)
    init = [run_init_action(env, a) for a in init_actions]
    start = env.fork()
    calls = [run_call(env, a) for a in actions]
    return Replay(calls=calls, env=env, start=start, init=init)


def run_call(env: Environment, action: Mapping[str, Any]) -> dict:
    """One τ²-bench tool call → `{"name", "content", "error"}`."""
    action = action if isinstance(action, Mapping) else {}
    name = action.get("name")
    requestor = action.get("requestor", "assistant")
    side = SIDES.get(requestor) if isinstance(requestor, str) else None
    if side is None:
        return {"name": name, "content": f"Error: unknown requestor {requestor!r} "
                "(expected 'assistant' or 'user')", "error": True}
    result = env.call(name, action.get("arguments") or {}, side=side)
    return {"name": name, "content": result.content, "error": not result.ok}


def _act(env: Environment, name: Any, arguments: Any, env_type: Any) -> StepResult:
    """A domain action of that name (`env.act`), which falls back to the side's tool of that
    name when the domain declares no such action (τ²-bench calls either)."""
    side = SIDES.get(env_type) if isinstance(env_type, str) else None
    if side is None:
        return StepResult(str(name), False, error=f"unknown env_type {env_type!r}")
    r = env.act(name, arguments or {}, side)
    return StepResult(str(name), bool(r.ok), r.value, r.error)


def run_init_action(env: Environment, action: Mapping[str, Any]) -> StepResult:
    """One `{env_type, func_name, arguments}` initialization action."""
    return _act(env, action.get("func_name"), action.get("arguments"), action.get("env_type"))


def check_assertions(env: Environment, assertions: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Each env assertion with `met`: the action ran and its value equals `assert_value`
    (τ²-bench's default `assert_value` is true). A failing action is not met."""
    out = []
    for a in assertions:
        want = a.get("assert_value", True)
        # an assertion only reads: it runs on a fork, so it never changes what it checks
        r = _act(env.fork(), a.get("func_name"), a.get("arguments"), a.get("env_type"))
        out.append({**a, "met": bool(r.ok and r.value == want),
                    "value": r.value, "problem": r.error})
    return out


class ActionsError(ValueError):
    """An action list that cannot be replayed; `problems` are located messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_actions(path: Path | str, env: Environment) -> list[dict]:
    """A τ²-bench action list (`[{"name", "arguments", "requestor"}, ...]`, as a task's
    `evaluation_criteria.actions` holds them; requestor defaults to the assistant) from a JSON file,
    checked against `env`'s tools before anything runs: every problem (not JSON, not a list of
    objects, an unknown tool or requestor, arguments that are not an object) is reported at
    once, located by file and item (`calls.json: [2].name: ...`). Raises ActionsError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ActionsError([f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"]) from None
    try:
        actions = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ActionsError([f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"]) from None
    except RecursionError:
        raise ActionsError([f"{path}: not valid JSON: nested too deeply"]) from None
    if not isinstance(actions, list):
        raise ActionsError([f"{path}: expected a JSON list of actions "
                            '({"name", "arguments", "requestor"}), got a JSON ' + _json_kind(actions)])
    problems = [f"{path}: [{i}]{where}: {message}" for i, a in enumerate(actions)
                for where, message in _action_problems(a, env)]
    if problems:
        raise ActionsError(problems)
    return actions


# what a τ²-bench task's gold action holds; action_id, info and compare_args are not replayed
_ACTION_KEYS = frozenset({"name", "arguments", "requestor", "action_id", "info", "compare_args"})


def _action_problems(action: Any, env: Environment) -> list[tuple[str, str]]:
    if not isinstance(action, dict):
        return [("", f"expected an object with name, arguments and requestor, got a JSON {_json_kind(action)}")]
    out = []
    unknown = sorted(set(action) - _ACTION_KEYS)
    if unknown:
        hint = did_you_mean(unknown[0], ("name", "arguments", "requestor"))
        out.append((f".{unknown[0]}", "unknown key (an action has name, arguments and requestor)"
                                      + (f"; {hint}" if hint else "")))
    requestor = action.get("requestor", "assistant")
    side = SIDES.get(requestor) if isinstance(requestor, str) else None
    if side is None:
        out.append((".requestor", f"expected 'assistant' or 'user', got {json.dumps(requestor)}"))
    name = action.get("name")
    if not isinstance(name, str):
        out.append((".name", f"expected a tool name, got {json.dumps(name)}"))
    elif side is not None and name not in env.tool_names(side):
        tools = env.tool_names(side)
        if not tools:
            out.append((".name", f"domain {env.domain.name!r} has no {side} tools"))
        else:
            hint = did_you_mean(name, tools)
            out.append((".name", f"unknown {'user ' if side == 'user' else ''}tool {name!r}"
                                 + (f"; {hint}" if hint else "")))
    if not isinstance(action.get("arguments", {}), dict):
        out.append((".arguments", f"expected an object, got a JSON {_json_kind(action['arguments'])}"))
    return out


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _spec(domain: Any) -> Any:
    if isinstance(domain, (str, Path)):
        from eigenlang.domain import load_domain

        spec, diags = load_domain(domain)
        if spec is None:
            raise StateLoadError(diags.render() or f"domain not found: {domain}")
        return spec
    return domain


def _source(value: Any) -> Any:
    """A path stays a path (read and located by the loader); data and states pass through."""
    if isinstance(value, (State, Mapping, list)):
        return value
    return Path(value)
