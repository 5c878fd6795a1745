"""How much a set of evaluation tasks overlaps the tasks a policy was trained on.

    report = overlap(train_records, eval_records)   # accepted records (docs/CONTRACTS.md §10)
    report.exact      # eval ids with an exact copy in training: reject such an evaluation
    report.near       # eval ids whose intent and objective match a training task modulo ids and numbers

- An **exact duplicate** is the same episode for a policy: the same initial state (hash), the
  same system prompt and tools, the same request (objective and the facts the user knows,
  which is all the scripted user says) and the same verifier. Persona and wording of the
  recorded dialogue are left out on purpose: they change nothing the policy is scored on,
  so two tasks that differ only there are still copies.
- A **near duplicate** has the intent and objective of a training task once every token
  with a digit (ids, amounts, dates) is masked: the same kind of request about other
  entities and values. Expected for templated tasks; it is what generalisation is tested on.
- **Unseen values**: the scalar arguments of an eval task's gold calls that no training
  task's gold calls use (an account id, an amount): the values a policy can only copy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_WITH_DIGIT = re.compile(r"\S*\d\S*")


def _task(record: Mapping) -> Mapping:
    task = record.get("task")
    return task if isinstance(task, Mapping) else {}


def _system(record: Mapping) -> str:
    messages = record.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], Mapping) \
            and messages[0].get("role") == "system":
        return str(messages[0].get("content") or "")
    return ""


def exact_key(record: Mapping) -> str:
    """What makes two records the same episode for a policy (see the module docstring)."""
    task = _task(record)
    initial = record.get("initial_state") if isinstance(record.get("initial_state"), Mapping) else {}
    parts = {"state": initial.get("hash"), "system": _system(record), "tools": record.get("tools"),
             "objective": task.get("objective"), "known": task.get("known"), "verifier": record.get("verifier")}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def intent_of(record: Mapping) -> str:
    scenario = record.get("scenario")
    intent = scenario.get("intent") if isinstance(scenario, Mapping) else _task(record).get("intent")
    return str(intent) if intent else "?"


def near_key(record: Mapping) -> str:
    """Intent and objective with every token that holds a digit masked."""
    objective = " ".join(str(_task(record).get("objective") or "").lower().split())
    return intent_of(record) + "|" + _WITH_DIGIT.sub("#", objective)


def gold_values(record: Mapping) -> set[str]:
    """The scalar argument values of a record's gold calls, as text ("A347", "12.5")."""
    out: set[str] = set()
    for call in record.get("gold_calls") or []:
        args = call.get("arguments") if isinstance(call, Mapping) else None
        for v in (args or {}).values() if isinstance(args, Mapping) else ():
            if isinstance(v, (str, int, float)) and not isinstance(v, bool):
                out.add(str(v))
    return out


@dataclass
class Overlap:
    eval_tasks: int
    train_tasks: int
    train_distinct: int  # distinct training episodes (exact keys)
    exact: list[str] = field(default_factory=list)  # eval ids with an exact copy in training
    near: list[str] = field(default_factory=list)  # eval ids with a near copy (and no exact one)
    unseen_some: int = 0  # eval tasks with at least one gold value no training task uses
    unseen_all: int = 0  # eval tasks whose gold values are all new

    def to_json(self) -> dict:
        return {"eval_tasks": self.eval_tasks, "train_tasks": self.train_tasks,
                "train_distinct": self.train_distinct, "exact": len(self.exact), "near": len(self.near),
                "unseen_some": self.unseen_some, "unseen_all": self.unseen_all, "exact_ids": self.exact[:20]}

    def summary(self) -> str:
        n = max(1, self.eval_tasks)
        return (f"{self.eval_tasks} eval tasks vs {self.train_tasks} training tasks ({self.train_distinct} distinct): "
                f"{len(self.exact)} exact duplicates, {len(self.near)} near duplicates (same intent and objective "
                f"modulo ids and numbers, {len(self.near) / n:.0%}); {self.unseen_some / n:.0%} use a gold value "
                f"no training task uses, {self.unseen_all / n:.0%} only such values")


def overlap(train: Sequence[Mapping], evaluated: Iterable[Mapping]) -> Overlap:
    """The overlap of `evaluated` records with `train` records."""
    exact = {exact_key(r) for r in train}
    near = {near_key(r) for r in train}
    values: set[str] = set().union(*(gold_values(r) for r in train)) if train else set()
    evaluated = list(evaluated)
    report = Overlap(len(evaluated), len(train), len(exact))
    for r in evaluated:
        rid = str(r.get("id"))
        if exact_key(r) in exact:
            report.exact.append(rid)
        elif near_key(r) in near:
            report.near.append(rid)
        mine = gold_values(r)
        new = mine - values
        report.unseen_some += bool(new)
        report.unseen_all += bool(mine) and new == mine
    return report


def records_of(tasks: Iterable[Any]) -> list[Mapping]:
    """The records of loaded tasks (trainer.rollout.Task) or records as they are."""
    return [getattr(t, "record", t) for t in tasks]
