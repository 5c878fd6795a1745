"""Batch metrics: the numbers `stop_when` and `drift_when` are written over.

Every name in `eigenlang.catalog.METRICS` plus the workflow's judge axes. A rate with nothing
to count is pessimistic (0.0 for "higher is better" checks): an empty batch must never make a
stop criterion hold by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eigenlang.catalog import VALIDATION_CHECKS

from .critique import Critique, agent_of


def _mean(values: Sequence[float], empty: float = 0.0) -> float:
    return round(sum(values) / len(values), 6) if values else empty


def batch_metrics(records: Sequence[dict], critiques: Sequence[Critique],
                  axes: Sequence[str]) -> dict[str, float]:
    n = len(records)
    reports = [r.get("validation") or ([r["artifacts"]["ValidationReport"]]
                                      if (r.get("artifacts") or {}).get("ValidationReport") else [])
               for r in records]
    validated = [rep for rep in reports if rep]
    m: dict[str, float] = {
        "acceptance_rate": _mean([1.0 if r.get("accepted") else 0.0 for r in records]),
        "infeasible_rate": _mean([1.0 if not r.get("accepted") and
                                  agent_of(str(r.get("stage"))) == "TaskValidation" else 0.0 for r in records]),
        "repair_rounds_mean": _mean([float(len(rep) - 1) for rep in validated]),
        "schema_error_rate": _mean([1.0 if any(f.code == "schema" for f in c.findings) else 0.0
                                    for c in critiques]),
        "calls_per_task": _mean([float(len(r.get("gold_calls") or [])) for r in records if r.get("accepted")]),
        "judge_score": _mean([c.judge_score for c in critiques]),
    }
    for check in VALIDATION_CHECKS:
        m[check] = _mean([1.0 if (rep[0].get("checks") or {}).get(check) else 0.0 for rep in validated])
    for axis in axes:
        m[axis] = _mean([c.scores[axis] for c in critiques if axis in c.scores])
    m["instances"] = float(n)
    return m


class CriterionError(Exception):
    """A stop/drift criterion could not be evaluated (a division by zero, a crossed limit):
    an error of the program to record, never a silent "does not hold"."""


def holds(text: str | None, metrics: dict[str, float]) -> bool:
    """Whether a stop/drift criterion holds over the metrics; False when there is none.
    Raises CriterionError, with the expression's message, when it cannot be evaluated."""
    if not text:
        return False
    from eigenlang.diagnostics import Origin
    from eigenlang.expr import EvalError, compile_expr, parse_expr

    expr, diags = parse_expr(text, Origin("<criterion>", ((1, 1),)))
    if expr is None:  # the compiler accepted it, so only a hand-made text gets here
        raise CriterionError(f"{text!r}: {diags[0].message if diags else 'does not parse'}")
    try:
        return compile_expr(expr)(dict(metrics)) is True
    except EvalError as exc:
        where = f" (column {exc.span.col})" if exc.span is not None else ""
        raise CriterionError(f"{text!r}: {exc.message}{where}") from None


def summary_line(metrics: dict[str, Any]) -> str:
    keys = ("acceptance_rate", "judge_score", "infeasible_rate", "tool_validity", "repair_rounds_mean")
    return ", ".join(f"{k} {metrics[k]:.2f}" for k in keys if k in metrics)
