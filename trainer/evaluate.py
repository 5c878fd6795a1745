"""pass^k and pass@k of a policy on verifiable tasks (`eigen eval`).

With n trials of a task of which c pass (τ-bench's estimators, unbiased for k ≤ n):

    pass^k = C(c, k) / C(n, k)            # all of k fresh trials pass (consistency)
    pass@k = 1 − C(n − c, k) / C(n, k)    # at least one of k trials passes

each averaged over the tasks of a domain (and over all tasks), for k = 1..n.

    report = evaluate("out/grpo/final", "runs/retail", trials=4)
    print_table(report); Path("eval.json").write_text(json.dumps(report.to_json()))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any


def pass_hat_k(n: int, c: int, k: int) -> float:
    """C(c, k) / C(n, k): the chance that k trials drawn without replacement all pass."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    return comb(c, k) / comb(n, k)


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 − C(n − c, k) / C(n, k): the chance that at least one of k trials passes."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def aggregate(counts: Sequence[tuple[int, int]], k_max: int) -> dict[str, dict[int, float]]:
    """{"pass^k": {k: mean}, "pass@k": {k: mean}} over tasks given as (n, c), k = 1..k_max."""
    out: dict[str, dict[int, float]] = {"pass^k": {}, "pass@k": {}}
    for k in range(1, k_max + 1):
        out["pass^k"][k] = sum(pass_hat_k(n, c, k) for n, c in counts) / len(counts) if counts else 0.0
        out["pass@k"][k] = sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) if counts else 0.0
    return out


@dataclass
class EvalReport:
    model: str
    trials: int
    per_task: dict[str, dict] = field(default_factory=dict)  # id -> {domain, n, c}
    problems: list[str] = field(default_factory=list)
    selection: list[str] = field(default_factory=list)  # what `eigen eval`'s task selection left out
    # imported τ²-bench tasks whose trials could not all be graded (nl_assertions without a
    # judge): id -> their entry with `ungraded`; left out of pass^k, never counted as passed
    ungraded: dict[str, dict] = field(default_factory=dict)

    def domains(self) -> list[str]:
        return sorted({t["domain"] for t in self.per_task.values()})

    def scores(self, domain: str | None = None) -> dict[str, dict[int, float]]:
        counts = [(t["n"], t["c"]) for t in self.per_task.values() if domain is None or t["domain"] == domain]
        return aggregate(counts, self.trials)

    def to_json(self) -> dict:
        by_domain = {d: self.scores(d) | {"tasks": sum(1 for t in self.per_task.values() if t["domain"] == d)}
                     for d in self.domains()}
        return {"model": self.model, "trials": self.trials, "tasks": len(self.per_task),
                "all": self.scores(), "domains": by_domain, "per_task": self.per_task, "problems": self.problems,
                "selection": self.selection, "ungraded": self.ungraded}


def evaluate(model: Any, tasks: str | Path | Sequence[Any], trials: int = 4, user: str = "scripted",
             max_turns: int = 8, max_new_tokens: int = 128, temperature: float = 1.0, seed: int = 0,
             domain: str | None = None, device: str = "cpu", tokenizer: Any = None,
             batch_tasks: int = 8, max_context: int = 4096, judge: Any = None) -> EvalReport:
    """Run `trials` episodes of every task and count the passes. `model` is a path (or a
    loaded model with `tokenizer`); `tasks` a run directory, an instances.jsonl file, or
    already loaded `Task`s. Sampling is seeded: the same call gives the same report.
    Imported τ²-bench tasks are graded by τ²-bench's rule (runtime/tau2/grade.py; `judge`
    grades their nl_assertions)."""
    import torch

    from .rollout import RolloutConfig, load_tasks, make_user, run_episodes
    from .sft import load_model_and_tokenizer

    if trials < 1:
        raise ValueError("trials must be at least 1")
    name = str(model) if isinstance(model, (str, Path)) else type(model).__name__
    if isinstance(model, (str, Path)):
        model, tokenizer = load_model_and_tokenizer(model, device=device)
    problems: list[str] = []
    if isinstance(tasks, (str, Path)):
        tasks, problems = load_tasks([tasks], domain)
    report = EvalReport(name, trials, problems=list(problems))
    from runtime.tau2.grade import grade_trials
    from runtime.tau2.records import is_tau2

    config = RolloutConfig(max_turns=max_turns, max_new_tokens=max_new_tokens, temperature=temperature,
                           max_context=max_context)
    sim = make_user(user, max_turns, device)
    model.eval()
    for i in range(0, len(tasks), batch_tasks):
        chunk = list(tasks[i:i + batch_tasks])
        torch.manual_seed(seed * 1_000_003 + i)
        rollouts = run_episodes(model, tokenizer, [t for t in chunk for _ in range(trials)], sim, config)
        for j, t in enumerate(chunk):
            mine = rollouts[j * trials:(j + 1) * trials]
            if is_tau2(t.record):
                entry = grade_trials(t.record, t.env, mine, judge)
                (report.ungraded if "ungraded" in entry else report.per_task)[t.id] = entry
                continue
            report.per_task[t.id] = {"domain": t.domain, "n": trials, "c": sum(int(r.reward > 0) for r in mine)}
    return report


def print_table(report: EvalReport, console: Any = None) -> None:
    """pass^k and pass@k per domain as a rich table: a row per (domain, k), so that it
    stays readable in 80 columns whatever the number of trials."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.model}: {len(report.per_task)} tasks × {report.trials} trials")
    for name in ("domain", "tasks", "k", "pass^k", "pass@k"):
        table.add_column(name, justify="left" if name == "domain" else "right", no_wrap=True)
    rows = [(d, report.scores(d), sum(1 for t in report.per_task.values() if t["domain"] == d))
            for d in report.domains()]
    rows.append(("all", report.scores(), len(report.per_task)))
    for d, s, n in rows:
        for k in range(1, report.trials + 1):
            table.add_row(d if k == 1 else "", str(n) if k == 1 else "", str(k), f"{s['pass^k'][k]:.3f}",
                          f"{s['pass@k'][k]:.3f}", end_section=k == report.trials)
    (console or Console()).print(table)
    if report.ungraded:
        (console or Console()).print(
            f"{len(report.ungraded)} τ²-bench task(s) not graded and left out of pass^k: their reward basis "
            "includes nl_assertions and no judge graded them (eigen eval --judge)", markup=False, highlight=False)
