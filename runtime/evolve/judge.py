"""The judge: one `Critique` per instance on the workflow's declared axes.

`OfflineJudge` scores from the validators' findings alone (deterministic, no model). The
model judge renders the workflow's judge prompt with the instance's artifacts and the
findings, asks for `{"scores": {axis: 0..1}, "reasons": [...], "at_fault": "Agent.role"}`,
and keeps the findings whatever it answers: a judge may weigh facts, not erase them. An
answer that cannot be read falls back to the offline critique, and says so in its reasons.
"""

from __future__ import annotations

import json
from typing import Any

from eigenlang.catalog import ARTIFACT_MODELS

from .critique import Critique, findings_of, most_at_fault, offline_scores, weighted

ASK = ("Validator findings (facts, already checked by executing the tools):\n{facts}\n\n"
       "Its shape: {{\"scores\": {{{axes}}}, \"reasons\": [\"...\"], \"at_fault\": \"Agent.role\" or "
       "null}}, scores from 0 to 1. Answer with the Critique JSON object only.")


class OfflineJudge:
    name = "offline"

    def __init__(self, weights: dict[str, float], keys: set[str]) -> None:
        self.weights, self.keys = weights, keys

    def critique(self, record: dict) -> Critique:
        findings = findings_of(record, self.keys)
        scores = {a: s for a, s in offline_scores(record, findings).items() if a in self.weights}
        return Critique(record["index"], record["id"], bool(record.get("accepted")), scores,
                        weighted(scores, self.weights), [f.message for f in findings][:8],
                        most_at_fault(findings), findings, self.name)


class ModelJudge(OfflineJudge):
    """The workflow's judge prompt, answered by a model. `render(artifacts) -> str` renders the
    judge template (artifacts by type name, None where absent); `ask(messages) -> Completion`
    calls the backend: the judge does not care which backend or event loop it runs on."""

    name = "model"

    def __init__(self, weights: dict[str, float], keys: set[str], render: Any, ask: Any) -> None:
        super().__init__(weights, keys)
        self.render, self.ask = render, ask

    def _render(self, record: dict) -> str:
        artifacts = _artifacts(record)
        return self.render({t: artifacts.get(t) for t in ARTIFACT_MODELS})

    def critique(self, record: dict) -> Critique:
        base = super().critique(record)
        facts = "\n".join(f"- [{f.code}] {f.key or 'no prompt'}: {f.message}" for f in base.findings) or "- none"
        try:
            system = self._render(record)
        except Exception as exc:  # noqa: BLE001  a template that cannot render: say it, keep facts
            return _fallback(base, f"judge prompt does not render: {type(exc).__name__}: {exc}")
        ask = ASK.format(facts=facts, axes=", ".join(f'"{a}": 0.0' for a in self.weights))
        c = self.ask([{"role": "system", "content": system}, {"role": "user", "content": ask}])
        if not c.ok:
            return _fallback(base, f"judge call failed: {c.error}")
        try:
            answer = _parse(c.content or "")
        except ValueError as exc:
            return _fallback(base, f"judge answer unparseable: {exc}")
        scores = dict(base.scores)
        for axis, v in (answer.get("scores") or {}).items():
            if axis in self.weights and isinstance(v, int | float) and not isinstance(v, bool):
                scores[axis] = min(1.0, max(0.0, float(v)))
        reasons = [str(r) for r in answer.get("reasons") or [] if str(r).strip()][:8]
        fault = answer.get("at_fault")
        fault = _key_of(fault, self.keys) or base.at_fault
        return Critique(base.index, base.id, base.accepted, scores, weighted(scores, self.weights),
                        reasons + base.reasons, fault, base.findings, self.name)


def _fallback(base: Critique, why: str) -> Critique:
    base.reasons = [why] + base.reasons
    base.judge = "offline (model judge fell back)"
    return base


def _artifacts(record: dict) -> dict[str, Any]:
    if not record.get("accepted"):
        return dict(record.get("artifacts") or {})
    out = {"TaskSpec": record.get("task"), "ScenarioSeed": record.get("scenario"),
           "Dialog": {"messages": record.get("messages"), "calls": record.get("calls"),
                      "turns": record.get("turns")},
           "FinalState": record.get("final_state"), "Verifier": record.get("verifier"),
           "Feasibility": record.get("feasibility")}
    if record.get("validation"):
        out["ValidationReport"] = record["validation"][-1]
    return out


def _parse(text: str) -> dict:
    from runtime.workers.llm.parse import ParseError, extract_object

    try:
        return extract_object(text)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


def _key_of(name: Any, keys: set[str]) -> str | None:
    """"DialogSynthesis.user" as is; a bare agent name → its prompt (or assistant) key."""
    if not isinstance(name, str) or not name:
        return None
    if name in keys:
        return name
    for role in ("prompt", "assistant", "user"):
        if f"{name}.{role}" in keys:
            return f"{name}.{role}"
    return None


def dumps(critique: Critique, **extra: Any) -> str:
    return json.dumps({**extra, **critique.to_json()}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
