"""Offline VerificationFunction: the executable verifier of a validated final state.

The verifier pins exactly the effect of the task's gold path (every changed field, and
"nothing else changed"), and the values the task says the agent must tell the user
(`TaskSpec.inform` → `communicate`). It is built from a fresh replay, and only when that
replay reaches the final state the validated dialogue reached — otherwise the dialogue and
the task disagree and no verifier is written. Every id or number in an `inform` value must
appear in an output of the gold path's agent-side calls (the grounding rule of
runtime/env/rules.py): a value the agent cannot look up is not a fair demand.
Whether the dialogue did say it is TrajectoryValidation's goal_completion check, which sees
the Dialog (this worker does not).
"""

from __future__ import annotations

from ..base import WorkerContext, WorkerError


class OfflineVerificationFunction:
    kind = "VerificationFunction"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from runtime.env import verifier_from_diff
        from runtime.env.rules import is_claim, source_tokens, tokens

        task, final = inputs["TaskSpec"], inputs["FinalState"]
        gold_env = ctx.env.fork()
        gold = task["gold_calls"]
        results = gold_env.replay(gold)
        failed = [r for r in results if not r.ok]
        if failed:
            raise WorkerError(f"the gold path fails on a fresh state: {failed[0].content}")
        if gold_env.hash() != final["hash"]:
            raise WorkerError("the validated final state differs from the gold path's outcome")
        inform = [str(v) for v in task.get("inform") or []]
        seen = source_tokens(r.content for c, r in zip(gold, results) if c.get("side", "agent") != "user")
        unknown = [raw for v in inform for _, _, raw, norm in tokens(v) if is_claim(norm) and norm not in seen]
        if unknown:
            raise WorkerError(f"the task asks the agent to tell {unknown[0]!r}, which no output of the gold path shows")
        verifier = verifier_from_diff(ctx.env, gold_env, communicate=inform)
        state_only = verifier.model_copy(update={"communicate": []})
        if not state_only.check(ctx.env, gold_env, []).passed:  # a verifier must accept its own gold
            raise WorkerError("the verifier rejects the gold outcome")
        return {"Verifier": verifier.model_dump(mode="json")}
