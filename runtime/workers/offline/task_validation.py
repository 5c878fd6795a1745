"""Offline TaskValidation: a tool-grounded feasibility probe on a fork of the instance's state.

The planned path is executed on a throw-away fork (the real state is never touched): the task
is feasible when every call succeeds — schema, preconditions and the tools' business rules
all hold —, no call breaks one of its tool's `policy:` checks (the tool would run it; a
policy-following agent would not ask), and the domain's trajectory rules accept the path
done by a compliant agent.
"""

from __future__ import annotations

import json

from ..base import WorkerContext


class OfflineTaskValidation:
    kind = "TaskValidation"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        task = inputs["TaskSpec"]
        env = ctx.env.fork()
        reasons: list[str] = []
        path: list[dict] = []
        for i, call in enumerate(task["gold_calls"]):
            result = env.call(call["name"], call["arguments"], call.get("side", "agent"))
            path.append({"name": call["name"], "side": call.get("side", "agent"), "ok": result.ok,
                         "error": result.error})
            if not result.ok:
                reasons.append(f"step {i + 1} {call['name']}: {result.error}: {result.content}")
            # a gold path that breaks a policy check is one no policy-following agent takes
            reasons += [f"policy: {v.rule}: step {i + 1} {call['name']} broke a policy check: {v.description}"
                        for v in result.violations]
        if not reasons:
            reasons += _rule_problems(ctx, task["gold_calls"], env)
        return {"Feasibility": {"feasible": not reasons, "reasons": reasons, "path": path}}


def _rule_problems(ctx: WorkerContext, gold: list[dict], final_env) -> list[str]:
    """Domain rules over the path as a compliant agent would run it (each write confirmed)."""
    from runtime.env.rules import check_rules

    messages = compliant_messages(ctx.domain, gold, ctx.env)
    return [f"policy: {f.rule}: {f.message}"
            for f in check_rules(ctx.domain, messages, ctx.env, final_env)]


def compliant_messages(domain, gold: list[dict], env) -> list[dict]:
    """The skeleton dialogue of a path: one user turn per agent action, an explicit "yes"
    right before every write, user-side calls in the user's own messages (CONTRACTS §9)."""
    env = env.fork()
    messages: list[dict] = [{"role": "system", "content": domain.policy},
                            {"role": "user", "content": "Hi, I need help."}]
    for i, call in enumerate(gold):
        side = call.get("side", "agent")
        result = env.call(call["name"], call["arguments"], side)
        tool_call = {"id": f"call_{i}", "type": "function",
                     "function": {"name": call["name"],
                                  "arguments": json.dumps(call["arguments"], sort_keys=True)}}
        tool_msg = {"role": "tool", "tool_call_id": f"call_{i}", "name": call["name"],
                    "content": result.content}
        if side == "user":
            messages += [{"role": "user", "content": None, "tool_calls": [tool_call], "side": "user"},
                         dict(tool_msg, side="user")]
            continue
        tool = domain.tools.get(call["name"])
        if tool is not None and tool.kind == "write":
            messages += [{"role": "assistant", "content": f"Shall I go ahead with {call['name']}?"},
                         {"role": "user", "content": "Yes, please go ahead."}]
        messages += [{"role": "assistant", "content": None, "tool_calls": [tool_call]}, tool_msg]
    messages.append({"role": "assistant", "content": "Done."})
    return messages
