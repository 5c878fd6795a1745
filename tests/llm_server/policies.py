"""A scripted "competent model" for the LLM workers, served by tests/llm_server/server.py.

It answers each worker like a good model would, from the real world of one domain instance:
seeds and tasks come from the domain's offline recipes (the same knowledge the offline backend
has), the trajectory agent follows the task's gold calls one tool call at a time and asks for
a "yes" before each write, the user simulator tells what it knows and ends with ###STOP###.

Who is asking is read from the request the way a model would read it: the JSON workers end
with "Answer with the <Artifact> JSON object only.", the agent's system prompt says it is the
customer-service agent, the user simulator's says it is a customer. Tasks are remembered by
objective (the user opens with it), so the policy is safe under concurrent requests.

`LearnerPolicy` is the same model with bad habits that it drops when its prompt tells it to,
and answers for the orchestration's own requests (judge, prompt engineer, diversifier,
planner): `eigen evolve` against it can show its prompts, and so its data, getting better.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from pathlib import Path
from typing import Any

from eigenlang.emit import sha256
from runtime.env.rules import is_confirmation
from runtime.workers.llm.workers import DEFAULT_TOOL_ROUNDS

_ASKED = re.compile(r"Answer with the (\w+) JSON object only\.")
ASK_WRITE = "Next I would {action}. Shall I go ahead? Please answer yes to confirm."
DONE = "That went through: {action} is done. Is there anything else I can help you with?"


def _json_after(text: str, marker: str) -> Any:
    start = text.index(marker) + len(marker)
    value, _ = json.JSONDecoder().raw_decode(text[start:].lstrip())
    return value


def _words(name: str) -> str:
    return name.replace("_", " ")


class CompetentPolicy:
    """`tasks_dir`: a folder shared by several server processes (one policy each) serving one
    run, where each planned task is also written, so that a dialogue turn finds its task
    whichever server planned it (tests/runtime/test_multi_endpoint.py)."""

    def __init__(self, domain: str, seed: int, size: float, tasks_dir: str | None = None) -> None:
        from eigenlang.domain import find_domain, load_domain
        from runtime.env import Environment
        from runtime.workers.base import World

        spec, diags = load_domain(find_domain(domain, None))
        assert spec is not None, diags
        self.domain = spec
        self.env = Environment.from_domain(spec, seed, size)
        self.world = World(spec, self.env.db.to_json(),
                           self.env.user_db.to_json() if self.env.user_db is not None else None, spec.now)
        self.tasks: dict[str, dict] = {}  # objective → TaskSpec
        self.lock = threading.Lock()
        self.tasks_dir = Path(tasks_dir) if tasks_dir else None

    def __call__(self, request: dict) -> dict:
        messages = request.get("messages") or []
        system = messages[0].get("content") or "" if messages else ""
        asked = _ASKED.search(str(messages[-1].get("content") or "")) if messages else None
        if asked:
            out = self.artifact(asked.group(1), system, random.Random(request.get("seed") or 0))
            return {"role": "assistant", "content": json.dumps(out)}
        if system.startswith("You are a customer"):
            return {"role": "assistant", "content": self.user(system, messages)}
        return self.agent(messages)

    # ------------------------------------------------------------ JSON workers
    def ctx(self, rng: random.Random) -> Any:
        from runtime.workers.base import WorkerContext

        return WorkerContext(self.domain, self.env, self.world, rng, "policy", "policy", 0, {}, {}, "offline")

    def artifact(self, kind: str, system: str, rng: random.Random) -> dict:
        if kind == "ScenarioSeed":
            from runtime.workers.offline.pool import OfflineRandomPool

            return OfflineRandomPool().run(self.ctx(rng), {})["ScenarioSeed"]
        if kind == "TaskSpec":
            return self.plan(_json_after(system, "Scenario seed (JSON):"), rng)
        if kind == "Feasibility":
            return {"feasible": True, "reasons": [], "path": []}
        if kind == "ValidationReport":
            checks = ("tool_validity", "grounding", "goal_completion", "realism", "compliance")
            return {"accepted": True, "checks": {c: True for c in checks}, "reasons": []}
        if kind == "Dialog":  # Modify: drop the failed tool calls and their results
            msgs = _json_after(system, "Dialogue (JSON messages, OpenAI chat format):")
            failed = {m["tool_call_id"] for m in msgs if m.get("role") == "tool"
                      and str(m.get("content")).startswith("Error")}
            out = []
            for m in msgs:
                if m.get("role") == "tool" and m.get("tool_call_id") in failed:
                    continue
                if m.get("tool_calls"):
                    m = dict(m, tool_calls=[tc for tc in m["tool_calls"] if tc["id"] not in failed])
                    if not m["tool_calls"]:
                        if not m.get("content"):
                            continue
                        del m["tool_calls"]
                out.append(m)
            return {"messages": out}
        return {"error": f"no script for {kind}"}

    def plan(self, seed: dict, rng: random.Random) -> dict:
        """The TaskSpec answer for a scenario seed (the task is remembered for the dialogue)."""
        from runtime.workers.offline.intent import OfflineUserIntent

        task = OfflineUserIntent().run(self.ctx(rng), {"ScenarioSeed": seed})["TaskSpec"]
        with self.lock:
            self.tasks[task["objective"]] = task
        if self.tasks_dir is not None:  # written whole, then renamed: a reader never sees half
            path = self.tasks_dir / f"{sha256(task['objective'])[:24]}.json"
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(task))
            tmp.replace(path)
        keep = ("objective", "known", "must", "must_not", "subgoals", "alternatives", "say",
                "user_instructions", "gold_calls", "expect_feasible")
        return {k: task[k] for k in keep}

    def task_in(self, text: str) -> dict | None:
        with self.lock:
            found = [o for o in self.tasks if o in text]
        if not found and self.tasks_dir is not None:  # planned by another server
            for path in sorted(self.tasks_dir.glob("*.json")):
                task = json.loads(path.read_text())
                with self.lock:
                    self.tasks.setdefault(task["objective"], task)
            with self.lock:
                found = [o for o in self.tasks if o in text]
        return self.tasks[max(found, key=len)] if found else None

    # ------------------------------------------------------------ the user simulator
    def user(self, system: str, messages: list[dict]) -> str:
        task = self.task_in(system)
        if task is None:
            return "I am not sure what I wanted. ###STOP###"
        if not any(m.get("role") == "assistant" for m in messages):
            told = "; ".join(f"my {_words(k)} is {v if isinstance(v, str) else json.dumps(v)}"
                             for k, v in task["known"].items())
            return f"Hello. {task['objective']} {told[:1].upper() + told[1:]}." if told else \
                f"Hello. {task['objective']}"
        last = str(messages[-1].get("content") or "") if messages[-1].get("role") == "user" else ""
        if "anything else" in last.lower():
            return "No, that's all. Thank you! ###STOP###"
        if "shall i go ahead" in last.lower():
            return "Yes, please go ahead."
        return "Okay, please continue."

    # ------------------------------------------------------------ the trajectory agent
    def agent(self, messages: list[dict]) -> dict:
        first_user = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
        task = self.task_in(first_user)
        if task is None:
            return {"role": "assistant", "content": "Could you tell me what you need help with?"}
        gold = [c for c in task["gold_calls"] if c.get("side", "agent") == "agent"]
        results = {m.get("tool_call_id"): str(m.get("content")) for m in messages if m.get("role") == "tool"}
        done, confirmed = 0, False
        for m in messages:
            if m.get("role") == "user" and isinstance(m.get("content"), str):
                confirmed = is_confirmation(m["content"])
            for tc in m.get("tool_calls") or []:
                ok = not results.get(tc["id"], "Error").startswith("Error")
                if ok and done < len(gold) and tc["function"]["name"] == gold[done]["name"]:
                    spec = self.domain.tools.get(gold[done]["name"])
                    if spec is not None and spec.kind == "write":
                        confirmed = False  # one "yes" per write
                    done += 1
        if done == len(gold):
            last = gold[-1]["name"] if gold else "your request"
            return {"role": "assistant", "content": DONE.format(action=_words(last))}
        step = gold[done]
        spec = self.domain.tools.get(step["name"])
        if spec is not None and spec.kind == "write" and not confirmed and self.asks_first(messages):
            return {"role": "assistant", "content": ASK_WRITE.format(action=_words(step["name"]))}
        return {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
            "name": step["name"], "arguments": json.dumps(self.arguments(step, messages))}}]}

    # Hooks for models that are less competent (LearnerPolicy): this one always gets them right.
    def asks_first(self, messages: list[dict]) -> bool:
        """Whether the agent asks for a "yes" before a write."""
        return True

    def arguments(self, step: dict, messages: list[dict]) -> dict:
        """The arguments the agent sends for the gold call `step`."""
        return step["arguments"]


# ---------------------------------------------------------------- a model that learns from its prompt

# The habits a LearnerPolicy has until its system prompt carries the lesson: lesson → (the
# finding code whose prompt-engineer rule teaches it, a phrase of that rule's text). The texts
# live in one place, runtime/evolve/engineer.RULES, where both prompt engineers (the offline
# one, and this policy answering as the model engineer) take them from; the phrase is how the
# learner "understands" a constraint, whoever wrote it into its prompt.
LESSONS = {
    "argument_names": ("tool_validity", "exactly the argument names"),
    "whole_request": ("goal_completion", "complete the user's whole request"),
    "confirmation": ("compliance", "explicit yes from the user"),
    "preconditions": ("infeasible", "check its preconditions"),
}
PROGRESS = "I have looked up part of it; one moment while I check the rest."
WAITING = "Thanks, I'll wait."
GIVE_UP = "I'm sorry, I could not find that in our system, so I cannot make this change. " \
          "Is there anything else I can help you with?"
LOOKS = 200  # how many records a learner told to check preconditions looks at, at most
# What the scripted judge takes off an axis for each finding code (the paper's four axes).
PENALTY = {"infeasible": ("executability", 1.0), "schema": ("executability", 1.0),
           "rejected": ("executability", 0.5), "tool_validity": ("tool_correctness", 0.5),
           "compliance": ("tool_correctness", 0.5), "grounding": ("trajectory_coherence", 0.5),
           "realism": ("trajectory_coherence", 0.5), "goal_completion": ("trajectory_coherence", 0.5),
           "repair": ("trajectory_coherence", 0.25)}
FOCI = (("Users of this set sound terse and in a hurry.", "Prefer hard tasks with several changes."),
        ("Users of this set are friendly novices who need guidance.", "Prefer easy, single-change tasks."),
        ("Users of this set are formal experts who know their ids.", "Prefer medium tasks with a look-up first."))
_FINDING = re.compile(r"^- \[(\w+)\] (\S+): (.*)$", re.M)
_FAILURE = re.compile(r"^- (\w+) in \d+ of \d+ instances, e\.g\. (.*)$", re.M)
_AXIS = re.compile(r'"(\w+)": 0\.0')
_SET = re.compile(r"Write the focus of set (\d+)")


def knows(prompt: str, lesson: str) -> bool:
    """Whether a prompt carries the lesson (whitespace and case do not matter)."""
    return LESSONS[lesson][1] in " ".join(str(prompt).split()).lower()


def _system(messages: list[dict]) -> str:
    return str(messages[0].get("content") or "") if messages else ""


def _failed(messages: list[dict], name: str | None = None) -> bool:
    """Whether a tool call (of `name`, or any) failed in the dialogue so far."""
    return any(m.get("role") == "tool" and str(m.get("content")).startswith("Error")
               and (name is None or m.get("name") == name) for m in messages)


class LearnerPolicy(CompetentPolicy):
    """A competent model with realistic, detectable habits, each dropped as soon as its system
    prompt carries the constraint that names it (LESSONS):

    - the trajectory agent changes the database without asking for a "yes" first
      (compliance), and in those calls sends `order`/`payment_method`/... for the schema's
      `order_id`/`payment_method_id`/... (tool_validity); when the call fails it gives up
      instead of retrying with the names the error asks for (goal_completion). Told either
      of the last two lessons, it gets the change made;
    - the task writer plans without looking at the records: it keeps an order the request does
      not fit, and for about half the tasks plans the final change a second time, which the first
      one made impossible (infeasible). Told to check preconditions, it runs its plan on a copy
      of the database, and when it fails picks another record the request fits.

    Its repairs (Modify) change nothing: a rejected record keeps only the last round's
    ValidationReport, and a repair that dropped the failed call would hide it from the judge.
    Unlike CompetentPolicy, its agent says a word after DEFAULT_TOOL_ROUNDS calls in a row (the
    worker gives it no more), so that no turn ends in silence.

    It also answers the orchestration's requests: the judge (`Critique`, from the validators'
    findings listed in the prompt), the prompt engineer (`PromptRevision`, with the texts of
    runtime/evolve/engineer.RULES for the failure codes listed), the diversifier
    (`PromptSetFocus`) and the workflow planner (`WorkflowEdit`, never an edit).
    """

    def __call__(self, request: dict) -> dict:
        messages = request.get("messages") or []
        asked = _ASKED.search(str(messages[-1].get("content") or "")) if messages else None
        answer = {"Critique": self.critique, "PromptRevision": self.revision, "PromptSetFocus": self.focus,
                  "WorkflowEdit": self.workflow_edit}.get(asked.group(1)) if asked else None
        if answer is not None:
            return {"role": "assistant", "content": json.dumps(answer(_system(messages),
                                                                      str(messages[-1].get("content"))))}
        return super().__call__(request)

    # ------------------------------------------------------------ the trajectory agent
    def asks_first(self, messages: list[dict]) -> bool:
        return knows(_system(messages), "confirmation")

    def arguments(self, step: dict, messages: list[dict]) -> dict:
        system = _system(messages)
        careful = knows(system, "argument_names") or (knows(system, "whole_request") and _failed(messages, step["name"]))
        if careful or getattr(self.domain.tools.get(step["name"]), "kind", "") != "write":
            return step["arguments"]  # the schema's names (after a failure: what the error asked for)
        return {k.removesuffix("_id"): v for k, v in step["arguments"].items()}

    def agent(self, messages: list[dict]) -> dict:
        if _failed(messages) and not knows(_system(messages), "whole_request"):
            return {"role": "assistant", "content": GIVE_UP}
        calls = 0  # tool calls since the last text, the agent's or the user's
        for m in reversed(messages):
            if m.get("role") in ("user", "assistant") and str(m.get("content") or "").strip():
                break
            calls += bool(m.get("tool_calls"))
        if calls >= DEFAULT_TOOL_ROUNDS:
            return {"role": "assistant", "content": PROGRESS}
        return super().agent(messages)

    def user(self, system: str, messages: list[dict]) -> str:
        last = messages[-1] if messages else {}
        if last.get("role") == "user" and last.get("content") == PROGRESS:
            return WAITING  # not a "yes": it must not confirm a change by accident
        return super().user(system, messages)

    # ------------------------------------------------------------ the task writer
    def artifact(self, kind: str, system: str, rng: random.Random) -> dict:
        if kind == "Dialog":  # Modify: a repair it cannot make, it does not pretend to make
            return {"messages": _json_after(system, "Dialogue (JSON messages, OpenAI chat format):")}
        if kind != "TaskSpec":
            return super().artifact(kind, system, rng)
        seed = _json_after(system, "Scenario seed (JSON):")
        if not knows(system, "preconditions"):
            task = self.plan(seed, rng)
            return self._plan_twice(task) if int(sha256(task["objective"])[:8], 16) % 2 == 0 else task
        return self._checked(seed, rng)

    def _checked(self, seed: dict, rng: random.Random) -> dict:
        """The plan for the seed if it runs, else for the first record of the same request
        (the seed's intent) on which it does."""
        from runtime.workers.offline.recipes import recipe

        task, context = self.plan(seed, rng), seed["context"]
        for _ in range(LOOKS):
            if self._runs(task["gold_calls"]):
                break
            try:
                picked = recipe(self.domain, "seed")(rng, self.world, seed["difficulty"])
            except ValueError:  # nothing this world offers fits: keep the plan it has
                break
            if picked["intent"] == seed["intent"]:
                context = picked["context"]
                task = self.plan(dict(seed, context=context), rng)
        return dict(task, context=context)

    def _plan_twice(self, task: dict) -> dict:
        writes = [c for c in task["gold_calls"] if c.get("side", "agent") == "agent"
                  and getattr(self.domain.tools.get(c["name"]), "kind", "") == "write"]
        if not writes:
            return task
        # Only the answer changes: TaskValidation rejects the plan before any dialogue, and
        # where the second change happens to run, the dialogue makes it once (as remembered).
        return dict(task, gold_calls=task["gold_calls"] + [writes[-1]])

    def _runs(self, gold: list[dict]) -> bool:
        from runtime.workers.offline.task_validation import OfflineTaskValidation

        probe = OfflineTaskValidation().run(self.ctx(random.Random(0)), {"TaskSpec": {"gold_calls": gold}})
        return probe["Feasibility"]["feasible"]

    # ------------------------------------------------------------ the orchestration's requests
    def critique(self, system: str, ask: str) -> dict:
        """Each axis starts at 1 and loses PENALTY per distinct finding code against it; the
        dialogue axes are scored only when the prompt shows a dialogue."""
        axes = _AXIS.findall(ask.partition("Its shape:")[2])
        judged = ("executability",) + (("tool_correctness", "trajectory_coherence") if "Dialogue:" in system else ())
        scores = {a: 1.0 for a in axes if a in judged}
        findings = _FINDING.findall(ask)
        for code in dict.fromkeys(code for code, _, _ in findings):
            axis, cost = PENALTY.get(code, (None, 0.0))
            if axis in axes:
                scores[axis] = max(0.0, scores.get(axis, 1.0) - cost)
        keys = [key for _, key, _ in findings if key != "no prompt"]
        return {"scores": scores,
                "reasons": [f"{code}: {message[:120]}" for code, _, message in findings][:4]
                or ["the validators found nothing wrong"],
                "at_fault": max(dict.fromkeys(keys), key=keys.count) if keys else None}

    def revision(self, system: str, ask: str) -> dict:
        from runtime.evolve.engineer import NEGATIVE, RULES

        out: dict[str, list[str]] = {"constraints": [], "examples": [], "style": []}
        for code, example in _FAILURE.findall(ask):
            if code in RULES:
                kind, text = RULES[code]
                out[kind].append(text)
            if code in NEGATIVE:
                out["examples"].append(f"Wrong ({code}): {example[:160]}")
        return out

    def focus(self, system: str, ask: str) -> dict:
        found = _SET.search(ask)
        return {"focus": list(FOCI[int(found.group(1)) % len(FOCI) if found else 0])}

    def workflow_edit(self, system: str, ask: str) -> dict:
        return {"ops": [], "reason": "the failures are prompt failures; the program can stay as it is"}
