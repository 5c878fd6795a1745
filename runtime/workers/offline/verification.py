"""Offline VerificationFunction: the executable verifier of a validated final state.

The verifier pins exactly the effect of the task's gold path (every changed field, and
"nothing else changed"); it is built from a fresh replay, and only when that replay reaches
the final state the validated dialogue reached — otherwise the dialogue and the task disagree
and no verifier is written.
"""

from __future__ import annotations

from ..base import WorkerContext, WorkerError


class OfflineVerificationFunction:
    kind = "VerificationFunction"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from runtime.env import verifier_from_diff

        task, final = inputs["TaskSpec"], inputs["FinalState"]
        gold_env = ctx.env.fork()
        failed = [r for r in gold_env.replay(task["gold_calls"]) if not r.ok]
        if failed:
            raise WorkerError(f"the gold path fails on a fresh state: {failed[0].content}")
        if gold_env.hash() != final["hash"]:
            raise WorkerError("the validated final state differs from the gold path's outcome")
        verifier = verifier_from_diff(ctx.env, gold_env)
        if not verifier.check(ctx.env, gold_env, []).passed:  # a verifier must accept its own gold
            raise WorkerError("the verifier rejects the gold outcome")
        return {"Verifier": verifier.model_dump(mode="json")}
