"""A τ²-bench data folder, read and checked before anything is imported from it.

The folder is what τ²-bench ships for one domain (`data/tau2/domains/<domain>/`):

- `tasks.json`: a JSON list of tasks (`id`, `user_scenario`, `initial_state`,
  `evaluation_criteria`, ...), checked here against the shape of τ²-bench's own task models;
- `split_tasks.json` (optional unless a split is asked for): `{split name: [task id, ...]}`;
- the database: `db.json` or `db.toml`, and `user_db.toml` / `user_db.json` for a domain
  with a user side (telecom);
- the policy: `policy.md`, or telecom's `main_policy.md` + `tech_support_manual.md`, which
  τ²-bench joins into one agent policy.

Every problem is a `Tau2DataError` whose lines name the file and, for tasks, the task and
the field (`tasks.json: task [3] (id "3"): evaluation_criteria.actions[0].name: Field
required`); nothing here raises anything else for bad input.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

DB_FILES = ("db.json", "db.toml")
USER_DB_FILES = ("user_db.toml", "user_db.json")
MAX_PROBLEMS = 20  # a broken file is reported this far; the rest is counted


class Tau2DataError(ValueError):
    """A τ²-bench data folder that cannot be imported; `problems` are located messages."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS} more problem(s)")
        super().__init__("\n".join(shown))
        self.problems = problems


# ---------------------------------------------------------------- τ²-bench's task shape


class _Model(BaseModel):
    model_config = {"extra": "ignore"}  # as τ²-bench's models: unknown keys are not an error


class Instructions(_Model):
    domain: str
    reason_for_call: str
    known_info: str | None = None
    unknown_info: str | None = None
    task_instructions: str


class UserScenario(_Model):
    persona: str | None = None
    instructions: Instructions | str


Requestor = Literal["assistant", "user"]


class Action(_Model):
    action_id: str
    requestor: Requestor = "assistant"
    name: str
    arguments: dict
    info: str | None = None
    compare_args: list[str] | None = None


class EnvCall(_Model):
    env_type: Requestor
    func_name: str
    arguments: dict


class EnvAssertion(EnvCall):
    assert_value: bool = True
    message: str | None = None


class InitialState(_Model):
    initialization_data: dict | None = None
    initialization_actions: list[EnvCall] | None = None
    message_history: list | None = None


RewardType = Literal["DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE"]


class Criteria(_Model):
    actions: list[Action] | None = None
    env_assertions: list[EnvAssertion] | None = None
    communicate_info: list[str] | None = None
    nl_assertions: list[str] | None = None
    reward_basis: list[RewardType] = ["DB", "COMMUNICATE"]  # τ²-bench's default


class Task(_Model):
    id: str
    user_scenario: UserScenario
    ticket: str | None = None
    initial_state: InitialState | None = None
    evaluation_criteria: Criteria | None = None


def scenario_text(scenario: UserScenario) -> str:
    """The user simulator's instructions exactly as τ²-bench renders them (`str(UserScenario)`)."""
    inst = scenario.instructions
    if isinstance(inst, Instructions):
        tab = "\t"
        lines = [f"Domain: {inst.domain}", f"Reason for call:\n{textwrap.indent(inst.reason_for_call, tab)}"]
        if inst.known_info is not None:
            lines.append(f"Known info:\n{textwrap.indent(inst.known_info, tab)}")
        if inst.unknown_info is not None:
            lines.append(f"Unknown info:\n{textwrap.indent(inst.unknown_info, tab)}")
        lines.append(f"Task instructions:\n{textwrap.indent(inst.task_instructions, tab)}")
        inst_text = "\n".join(lines)
    else:
        inst_text = inst
    out = []
    if scenario.persona is not None:
        out += ["Persona:", textwrap.indent(scenario.persona, "\t")]
    out += ["Instructions:", textwrap.indent(inst_text, "\t")]
    return "\n".join(out)


# τ²-bench's agent system prompt (src/tau2/agent/llm_agent.py at a2c0247, MIT licence)
AGENT_INSTRUCTION = """\
You are a customer service agent that helps the user according to the <policy> provided below.
In each turn you can either:
- Send a message to the user.
- Make a tool call.
You cannot do both at the same time.

Try to be helpful and always follow the policy. Always make sure you generate valid JSON only."""


def agent_system_prompt(policy: str) -> str:
    return f"<instructions>\n{AGENT_INSTRUCTION}\n</instructions>\n<policy>\n{policy}\n</policy>"


# ---------------------------------------------------------------- the folder


@dataclass
class SourceFile:
    path: Path
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Tau2Data:
    """A checked τ²-bench data folder: its tasks (models and the raw JSON objects, in file
    order), splits, database files and policy."""

    folder: Path
    tasks: list[Task]
    raw: dict[str, dict]  # task id -> the task's JSON object as the file has it
    splits: dict[str, list[str]]
    db: SourceFile
    user_db: SourceFile | None
    policy: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256 (provenance)

    def select(self, split: str | None) -> tuple[list[Task], list[str]]:
        """(the tasks of `split` in tasks.json order, or all of them; notes on ids the split
        names that tasks.json lacks). Raises Tau2DataError for an unknown split or one that
        selects nothing."""
        if split is None:
            return list(self.tasks), []
        where = self.folder / "split_tasks.json"
        if not self.splits:
            raise Tau2DataError([f"{where}: no such file, so there is no split {split!r}"])
        if split not in self.splits:
            raise Tau2DataError([f"{where}: no split {split!r} (the file has "
                                 f"{', '.join(sorted(self.splits)) or 'none'})"])
        wanted = set(self.splits[split])
        chosen = [t for t in self.tasks if t.id in wanted]
        missing = sorted(wanted - {t.id for t in chosen})
        notes = [f"split {split!r} names {len(missing)} task id(s) that tasks.json does not have "
                 f"(e.g. {missing[0]!r}); they are left out"] if missing else []
        if not chosen:
            raise Tau2DataError([f"{where}: split {split!r} names {len(wanted)} task id(s), none of them in "
                                 f"{self.folder / 'tasks.json'}"])
        return chosen, notes

    def splits_of(self, task_id: str) -> list[str]:
        return sorted(name for name, ids in self.splits.items() if task_id in ids)


def read_data(folder: Path | str, domain: str, user_side: bool) -> Tau2Data:
    """Read and check a τ²-bench data folder for `domain` (its tasks must say that domain);
    `user_side`: the domain has a user database, which the folder must then hold."""
    folder = Path(folder)
    if not folder.is_dir():
        raise Tau2DataError([f"{folder}: no such folder (give your τ²-bench data folder for the domain, "
                             "holding tasks.json, the database and the policy)"])
    problems: list[str] = []
    tasks_file = _read(folder / "tasks.json", problems)
    tasks, raw = _tasks(folder / "tasks.json", tasks_file, domain, problems) if tasks_file else ([], {})
    splits_file = _read(folder / "split_tasks.json", problems, optional=True)
    splits = _splits(folder / "split_tasks.json", splits_file, problems) if splits_file else {}
    db = _first(folder, DB_FILES, problems, "the database")
    user_db = _first(folder, USER_DB_FILES, problems, "the user database") if user_side else None
    policy_files: list[SourceFile] = []
    policy = _policy(folder, problems, policy_files)
    if problems:
        raise Tau2DataError(problems)
    files = {f.path.name: f.sha256 for f in (tasks_file, splits_file, db, user_db, *policy_files) if f is not None}
    return Tau2Data(folder, tasks, raw, splits, db, user_db, policy, files)


def _read(path: Path, problems: list[str], optional: bool = False) -> SourceFile | None:
    if not path.is_file():
        if not optional:
            problems.append(f"{path}: no such file")
        return None
    try:
        return SourceFile(path, path.read_bytes())
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        return None


def _first(folder: Path, names: tuple[str, ...], problems: list[str], what: str) -> SourceFile | None:
    for name in names:
        if (folder / name).is_file():
            return _read(folder / name, problems)
    problems.append(f"{folder}: no {' or '.join(names)} ({what})")
    return None


def _policy(folder: Path, problems: list[str], read: list[SourceFile]) -> str:
    """τ²-bench's agent policy: `policy.md`, or telecom's main policy and manual joined as
    τ²-bench joins them; the files read are appended to `read`."""
    if (folder / "policy.md").is_file():
        f = _read(folder / "policy.md", problems)
        read += [f] if f else []
        return _text(f, problems) if f else ""
    main, manual = folder / "main_policy.md", folder / "tech_support_manual.md"
    if main.is_file() and manual.is_file():
        a, b = _read(main, problems), _read(manual, problems)
        if a and b:
            read += [a, b]
            return (f"<main_policy>\n{_text(a, problems)}\n</main_policy>\n"
                    f"<tech_support_policy>\n{_text(b, problems)}\n</tech_support_policy>")
        return ""
    problems.append(f"{folder}: no policy.md (or main_policy.md with tech_support_manual.md): the agent's policy")
    return ""


def _text(f: SourceFile, problems: list[str]) -> str:
    try:
        return f.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{f.path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return ""


def _json(f: SourceFile, problems: list[str]) -> Any:
    try:
        return json.loads(f.data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        problems.append(f"{f.path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    except json.JSONDecodeError as exc:
        problems.append(f"{f.path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}")
    except RecursionError:
        problems.append(f"{f.path}: not valid JSON: nested too deeply")
    return None


def _tasks(path: Path, f: SourceFile, domain: str, problems: list[str]) -> tuple[list[Task], dict[str, dict]]:
    data = _json(f, problems)
    if data is None:
        return [], {}
    if not isinstance(data, list):
        problems.append(f"{path}: expected a JSON list of tasks, got a JSON {_kind(data)}")
        return [], {}
    tasks, raw, seen, other = [], {}, set(), []
    for i, item in enumerate(data):
        tid = item.get("id") if isinstance(item, dict) else None
        head = f"{path}: task [{i}]" + (f" (id {json.dumps(tid)})" if tid is not None else "")
        if not isinstance(item, dict):
            problems.append(f"{head}: expected an object, got a JSON {_kind(item)}")
            continue
        try:
            task = Task.model_validate(item)
        except ValidationError as exc:
            problems += [f"{head}: {_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
            continue
        if task.id in seen:
            problems.append(f"{head}: duplicate task id")
            continue
        inst = task.user_scenario.instructions
        if isinstance(inst, Instructions) and inst.domain != domain:
            other.append((f"task [{i}] (id {json.dumps(tid)})", inst.domain))
            continue
        seen.add(task.id)
        tasks.append(task)
        raw[task.id] = item
    if other:  # one line, not one per task: the folder is another domain's
        where, found = other[0]
        problems.append(f"{path}: {len(other)} task(s) are not {domain} tasks: user_scenario.instructions.domain "
                        f"is {found!r} in {where}" + (" and others" if len(other) > 1 else ""))
    if not data:
        problems.append(f"{path}: no tasks")
    return tasks, raw


def _splits(path: Path, f: SourceFile, problems: list[str]) -> dict[str, list[str]]:
    data = _json(f, problems)
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(i, str) for i in v)
                                             for v in data.values()):
        problems.append(f"{path}: expected an object of split name -> list of task ids")
        return {}
    return data


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("Instructions", "str", "function-after[...]"):
            continue  # the union branch pydantic names, not a key of the file
        else:
            out += ("." if out else "") + str(part)
    return out or "<task>"


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")
