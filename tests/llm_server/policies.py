"""A scripted "competent model" for the LLM workers, served by tests/llm_server/server.py.

It answers each worker like a good model would, from the real world of one domain instance:
seeds and tasks come from the domain's offline recipes (the same knowledge the offline backend
has), the trajectory agent follows the task's gold calls one tool call at a time and asks for
a "yes" before each write, the user simulator tells what it knows and ends with ###STOP###.

Who is asking is read from the request the way a model would read it: the JSON workers end
with "Answer with the <Artifact> JSON object only.", the agent's system prompt says it is the
customer-service agent, the user simulator's says it is a customer. Tasks are remembered by
objective (the user opens with it), so the policy is safe under concurrent requests.
"""

from __future__ import annotations

import json
import random
import re
import threading
from typing import Any

from runtime.env.rules import is_confirmation

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
    def __init__(self, domain: str, seed: int, size: float) -> None:
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
            from runtime.workers.offline.intent import OfflineUserIntent

            seed = _json_after(system, "Scenario seed (JSON):")
            task = OfflineUserIntent().run(self.ctx(rng), {"ScenarioSeed": seed})["TaskSpec"]
            with self.lock:
                self.tasks[task["objective"]] = task
            keep = ("objective", "known", "must", "must_not", "subgoals", "alternatives", "say",
                    "user_instructions", "gold_calls", "expect_feasible")
            return {k: task[k] for k in keep}
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

    def task_in(self, text: str) -> dict | None:
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
        if spec is not None and spec.kind == "write" and not confirmed:
            return {"role": "assistant", "content": ASK_WRITE.format(action=_words(step["name"]))}
        return {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
            "name": step["name"], "arguments": json.dumps(step["arguments"])}}]}
