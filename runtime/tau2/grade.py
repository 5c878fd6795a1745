"""τ²-bench's grading rule, for imported τ²-bench tasks (runtime/tau2/records.py).

τ²-bench (src/tau2/evaluator/, commit a2c0247) scores one simulation as the product, over the
task's `evaluation_criteria.reward_basis`, of:

- DB: the agent's databases equal the gold replay's (τ²-bench compares `get_db_hash()` and
  `get_user_db_hash()` of the environment that replays every tool call of the trajectory with
  those of the one that replays the gold actions; we compare the two environments' states,
  which are the same canonical dumps, exactly: 1 and 1.0 differ). ENV_ASSERTION: every env assertion holds on the
  agent's final environment. Both are 1 when the task has neither gold actions nor assertions;
- COMMUNICATE: every `communicate_info` string is in some assistant message with text,
  matched as τ²-bench does: `info.lower() in content.lower().replace(",", "")`;
- ACTION: every gold action is matched by a tool call of either side (same name; the
  arguments named by `compare_args`, or else by the call's own argument names, equal);
- NL_ASSERTION: a model judge says every `nl_assertions` entry holds (τ²-bench's judge
  prompt, temperature 0). Without a judge such a task is not graded (`reward` None), never
  passed; a task whose list is empty scores 1, as in τ²-bench.

A simulation that did not end by the agent or the user (ours: stopped at `max_turns` or
`max_context`) scores 0, as τ²-bench scores max-steps and too-many-errors terminations. A
trial passes when its reward is 1 (within 1e-6, τ²-bench's `is_successful`).

    grader = Grader(record, start_env)         # replays the gold actions once
    grade = grader.grade(messages)             # replays the trajectory, compares, asserts
    grade.reward, grade.passed, grade.failures()
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data import Criteria
from .records import gold_calls, replay_gold, task_of

Judge = Callable[[list[dict]], str]  # chat messages in, the judge's answer text out (raises on failure)


def is_successful(reward: float) -> bool:
    return (1 - 1e-6) <= reward <= (1 + 1e-6)


@dataclass
class Grade:
    """One trial graded. `reward` is None when part of the basis could not be graded
    (`ungraded` says which and why); `breakdown` has each reward type of the basis."""

    reward: float | None
    basis: list[str]
    breakdown: dict[str, float | None] = field(default_factory=dict)
    db_match: bool | None = None
    communicate: list[dict] = field(default_factory=list)  # {info, met}
    env_assertions: list[dict] = field(default_factory=list)  # {func_name, arguments, assert_value, met}
    actions: list[dict] = field(default_factory=list)  # {name, arguments, met}
    nl_assertions: list[dict] = field(default_factory=list)  # {nl_assertion, met, justification}
    ungraded: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.reward is None else is_successful(self.reward)

    def failures(self) -> list[str]:
        out = [self.note] if self.note else []
        if self.breakdown.get("DB") == 0.0:
            out.append("DB: the final databases differ from the gold replay's")
        out += [f"COMMUNICATE: never said {c['info']!r}" for c in self.communicate
                if not c["met"] and "COMMUNICATE" in self.basis]
        out += [f"ENV_ASSERTION: {a['func_name']}({json.dumps(a['arguments'])}) is not {a['assert_value']}"
                for a in self.env_assertions if not a["met"] and "ENV_ASSERTION" in self.basis]
        out += [f"ACTION: no call matches {a['name']}({json.dumps(a['arguments'])})" for a in self.actions
                if not a["met"] and "ACTION" in self.basis]
        out += [f"NL_ASSERTION: {a['nl_assertion']!r} not met" for a in self.nl_assertions if not a["met"]]
        return out + [f"not graded: {u}" for u in self.ungraded]


class Grader:
    """τ²-bench's grading of one imported task, from the record and its start environment
    (`runtime.store.verify._Worlds.record_env`, or the trainer's `Task.env`)."""

    def __init__(self, record: dict, start: Any) -> None:
        task = task_of(record)
        self.criteria: Criteria | None = task.evaluation_criteria
        self.start = start
        self.gold, _ = replay_gold(start, gold_calls(task))

    def grade(self, messages: Sequence[Any], *, truncated: bool = False, judge: Judge | None = None) -> Grade:
        """Grade one trajectory (messages in the format of docs/CONTRACTS.md §9)."""
        criteria = self.criteria
        if criteria is None:
            return Grade(1.0, [], note="the task has no evaluation criteria")
        basis = list(criteria.reward_basis)
        if truncated:
            return Grade(0.0, basis, note="the episode was cut (max turns or context) before the agent or the "
                                          "user ended it; τ²-bench scores such a simulation 0")
        grade = Grade(1.0, basis)
        final = replay_trajectory(self.start, messages)
        if criteria.actions is None and criteria.env_assertions is None:
            db, env_reward = True, 1.0
        else:
            # equal states ⇔ equal τ²-bench hashes (both cover the canonical dumps); comparing
            # forks of one state costs what differs, hashing a changed collection all of it
            db = final.db == self.gold.db and final.user_db == self.gold.user_db
            env_reward = 1.0
            for a in criteria.env_assertions or []:
                r = final.fork().act(a.func_name, a.arguments, "user" if a.env_type == "user" else "agent")
                met = bool(r.ok and r.value == a.assert_value)
                grade.env_assertions.append({"func_name": a.func_name, "arguments": a.arguments,
                                             "assert_value": a.assert_value, "met": met})
                env_reward *= 1.0 if met else 0.0
        grade.db_match = db
        parts: dict[str, float | None] = {}
        if "DB" in basis:
            parts["DB"] = 1.0 if db else 0.0
        if "ENV_ASSERTION" in basis:
            parts["ENV_ASSERTION"] = env_reward
        grade.actions = action_checks(criteria.actions or [], messages)
        if "ACTION" in basis:
            parts["ACTION"] = 1.0 if all(a["met"] for a in grade.actions) else 0.0
        grade.communicate = communicate_checks(criteria.communicate_info or [], messages)
        if "COMMUNICATE" in basis:
            parts["COMMUNICATE"] = 1.0 if all(c["met"] for c in grade.communicate) else 0.0
        if "NL_ASSERTION" in basis:
            parts["NL_ASSERTION"] = self._nl(criteria.nl_assertions or [], messages, judge, grade)
        grade.breakdown = parts
        if any(v is None for v in parts.values()):
            grade.reward = None
        else:
            for v in parts.values():
                grade.reward *= v
        return grade

    def _nl(self, assertions: list[str], messages: Sequence[Any], judge: Judge | None, grade: Grade) -> float | None:
        if not assertions:
            return 1.0
        if judge is None:
            grade.ungraded.append(f"{len(assertions)} nl_assertion(s) need a model judge (--judge)")
            return None
        try:
            checks = judge_nl_assertions(judge, messages, assertions)
        except JudgeError as exc:
            grade.ungraded.append(f"nl_assertions: {exc}")
            return None
        grade.nl_assertions = checks
        return 1.0 if all(c["met"] for c in checks) else 0.0


def replay_trajectory(start: Any, messages: Sequence[Any]) -> Any:
    """The environment after every tool call of `messages`, both sides, in order, on a fork
    of `start` (τ²-bench's `set_state(message_history=trajectory)`)."""
    env = start.fork()
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("assistant", "user"):
            continue
        side = "user" if m.get("side") == "user" else "agent"
        for call in m.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                env.call(fn.get("name"), fn.get("arguments") or "{}", side)
    return env


def _text(m: dict) -> str | None:
    content = m.get("content")
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None


def communicate_checks(infos: list[str], messages: Sequence[Any]) -> list[dict]:
    """τ²-bench's rule: an assistant message with text contains the info, lower-cased, the
    message's commas removed."""
    said = [t.lower().replace(",", "") for m in messages if isinstance(m, dict) and m.get("role") == "assistant"
            and m.get("side") != "user" and (t := _text(m)) is not None and t.strip()]
    return [{"info": info, "met": any(info.lower() in text for text in said)} for info in infos]


def _tool_calls(messages: Sequence[Any]) -> list[tuple[str, dict]]:
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("assistant", "user"):
            continue
        for call in m.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                continue
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args) if args.strip() else {}
                except ValueError:
                    continue  # not a call τ²-bench could have made
            if isinstance(args, dict):
                out.append((fn["name"], args))
    return out


def action_checks(actions: list[Any], messages: Sequence[Any]) -> list[dict]:
    """Each gold action, met when a tool call of either side matches it (τ²-bench's
    `Action.compare_with_tool_call`)."""
    calls = _tool_calls(messages)

    def matches(action: Any, name: str, args: dict) -> bool:
        if action.name != name:
            return False
        keys = action.compare_args if action.compare_args is not None else list(args)
        if not keys:
            return True
        return ({k: v for k, v in args.items() if k in keys}
                == {k: v for k, v in action.arguments.items() if k in keys})

    return [{"name": a.name, "arguments": a.arguments, "met": any(matches(a, n, g) for n, g in calls)}
            for a in actions]


# ---------------------------------------------------------------- the NL judge

_PAD = " " * 8
# τ²-bench's judge prompt (evaluator_nl_assertions.py at a2c0247, MIT licence), byte for byte
# with its source indentation; None is a line without the indentation.
_SYSTEM_LINES: list[str | None] = [
    None, "TASK",
    "- You will be given a list of expected outcomes and a conversation that was collected during a test case run.",
    "- The conversation is between an agent and a customer.",
    "- Your job is to evaluate whether the agent satisfies each of the expected outcomes.",
    "- Grade each expected outcome individually.",
    None, "FORMAT",
    "- Your response should be a JSON object with the following fields:",
    "- `reasoning`: a short explanation for your classification",
    "- `metExpectation`: `true` if the agent satisfies the expected outcomes, `false` otherwise",
    "- `expectedOutcome`: repeat the expectation from the input that you are grading",
    "", "Example response structure:", "{", '    "results": [', "        {",
    '            "expectedOutcome": "<one of the expected outcomes from the input>",',
    '            "reasoning": "<reasoning trace>",', '            "metExpectation": <false or true>,',
    "        }", "    ]", "}", ""]
JUDGE_SYSTEM = "\n".join("" if line is None else _PAD + line for line in _SYSTEM_LINES)


class JudgeError(RuntimeError):
    """The judge gave no usable answer (said in words)."""


def judge_messages(messages: Sequence[Any], assertions: list[str]) -> list[dict]:
    """The judge's request as τ²-bench builds it: every message but the system prompt as
    `role: content`, and the assertions as a Python list."""
    lines = [f"{m.get('role')}: {_text(m)}" for m in messages
             if isinstance(m, dict) and m.get("role") != "system"]
    trajectory = "\n".join(lines)
    user = (f"\n{_PAD}conversation:\n{_PAD}{trajectory}\n{_PAD}\n{_PAD}expectedOutcomes:\n"
            f"{_PAD}{assertions}\n{_PAD}")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def judge_nl_assertions(judge: Judge, messages: Sequence[Any], assertions: list[str]) -> list[dict]:
    """[{nl_assertion, met, justification}] from the judge's JSON answer; JudgeError when
    there is none (τ²-bench would crash; here the trial stays ungraded)."""
    try:
        answer = judge(judge_messages(messages, assertions))
    except Exception as exc:  # noqa: BLE001  # an endpoint failure, in words
        raise JudgeError(f"the judge failed: {exc}") from None
    try:
        data = json.loads(answer)
        results = data.get("results", [])
        return [{"nl_assertion": str(r["expectedOutcome"]), "met": _true(r["metExpectation"]),
                 "justification": str(r.get("reasoning", ""))} for r in results]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise JudgeError(f"the judge's answer is not the results JSON ({type(exc).__name__}: {exc}): "
                         f"{str(answer)[:120]!r}") from None


def _true(value: Any) -> bool:
    """pydantic's bool reading of `metExpectation`, as τ²-bench's model takes it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return value.lower() in ("true", "yes", "1", "on")
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"metExpectation {value!r} is not a boolean")


def make_judge(backend: str, model: str | None = None, base_url: str | None = None) -> Judge:
    """A judge over one of the project's backends (openai, hf, vllm): τ²-bench asks at
    temperature 0."""
    from runtime.backends import make_backend, run_sync

    engine = make_backend(backend, base_url=base_url, model=model, concurrency=4)

    def ask(messages: list[dict]) -> str:
        done = run_sync(engine.complete(messages, None, agent="nl_assertions", temperature=0.0))
        if not done.ok or not isinstance(done.content, str):
            raise JudgeError(done.error or "no text in the answer")
        return done.content

    return ask


# ---------------------------------------------------------------- eigen eval


def grade_trials(record: dict, start: Any, rollouts: Sequence[Any], judge: Judge | None = None) -> dict:
    """`eigen eval`'s entry for one imported task from its trials (each with `messages` and
    `truncated`): {domain, n, c, rule, reward_mean, failures (of the first failed trial)} and,
    when a trial could not be graded, `ungraded` (why; the task is then left out of pass^k)."""
    grader = Grader(record, start)
    grades = [grader.grade(r.messages, truncated=r.truncated, judge=judge) for r in rollouts]
    entry: dict = {"domain": record.get("domain"), "n": len(grades), "rule": "tau2",
                   "c": sum(1 for g in grades if g.passed)}
    rewards = [g.reward for g in grades if g.reward is not None]
    entry["reward_mean"] = sum(rewards) / len(rewards) if rewards else None
    failed = next((g for g in grades if g.passed is False), None)
    if failed is not None:
        entry["failures"] = failed.failures()[:4]
    missing = next((g.ungraded for g in grades if g.reward is None), None)
    if missing:
        entry["ungraded"] = "; ".join(missing)
    return entry
