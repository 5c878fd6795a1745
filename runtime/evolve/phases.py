"""The three phases of self-evolving generation (paper section 4.4), over the ordinary engine.

1. Diversified initialisation: K prompt sets, each conditioned on summaries of the sets before.
2. Pilot optimisation, in synchronous rounds: every live set runs a small batch (in parallel
   for model backends), the judge critiques it, the workflow planner may edit the shared
   program (mutation API, compiler-checked), the prompt engineer revises each set's prompts.
   A set stops when `stop_when` holds, when nothing is left to revise, or at `max_iterations`.
3. Large-scale generation through the run store (instance i by set i mod K), audited window
   by window: a set whose window metrics satisfy `drift_when` re-enters phase 2 alone, and
   generation resumes with its new prompts from the next instance on.

Everything is a function of (program, seed, backend): with the offline backend and the
offline judge, engineer and planner, an evolution run is byte-for-byte reproducible. What it
decided is in OUT/evolution/ (docs/CONTRACTS.md §12); a crash in phase 3 resumes from the run
store and the last saved prompt sets; a crash earlier restarts the phases from the beginning.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.exec.engine import Runner, RunSetupError, RunSpec, prepare

from .critique import AXES, Critique
from .diversify import FOCUS_KEYS, model_focus, offline_focus
from .engineer import ModelEngineer, OfflineEngineer, scores_of
from .judge import ModelJudge, OfflineJudge, dumps
from .metrics import CriterionError, batch_metrics, holds, summary_line
from .planner import ModelPlanner, OfflinePlanner
from .prompts import PromptVersion, derive

PILOT_BASE = 10**9  # pilot instance indices: disjoint from the dataset's


def pilot_index(set_no: int, iteration: int, j: int, reentry: int = 0) -> int:
    """Disjoint for every (re-entry point, set < 2048, iteration < 1000, j < 1000)."""
    return PILOT_BASE + (reentry * 2048 + set_no) * 10**6 + iteration * 10**3 + j


@dataclass
class EvolveOptions:
    out: Path
    n: int
    max_attempts: int
    sets: int | None = None  # the program's evolution settings, unless given
    batch: int | None = None
    max_iterations: int | None = None
    window: int | None = None  # phase 3 audit window (instances); default max(40, 4 / audit_rate)
    judge: str = "auto"  # auto (model when the backend is one) | offline | model
    engineer: str = "auto"
    planner: str = "auto"
    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Evolution:
    def __init__(self, spec: RunSpec, opts: EvolveOptions, say: Callable[[str], None] = lambda s: None) -> None:
        self.spec, self.opts, self.say = spec, opts, say
        self.plan = prepare(spec)
        evo = self.plan.data.get("evolution") or {}
        pilot, monitor = evo.get("pilot") or {}, evo.get("monitor") or {}
        self.k = opts.sets or evo.get("prompt_sets") or 1
        self.batch = opts.batch or pilot.get("batch") or 10
        self.max_iterations = opts.max_iterations or pilot.get("max_iterations") or 4
        self.stop_when, self.drift_when = pilot.get("stop_when"), monitor.get("drift_when")
        self.audit_rate = float(monitor.get("audit_rate", 0.05))
        self.window = opts.window or max(40, round(4 / self.audit_rate) if self.audit_rate else 40)
        self.weights = dict((self.plan.data.get("judge") or {}).get("axes") or {a: 1.0 for a in AXES})
        self.axes = list(self.weights)
        here = Path(spec.workflow).resolve().parent  # template paths in plan.json are relative to it
        self.files = {k: str(here / v["file"]) if isinstance(v.get("file"), str) else k
                      for k, v in self.plan.data["prompts"].items()}
        self.keys = set(self.plan.data["prompts"]) - {"judge.prompt"}
        self.dir = Path(opts.out) / "evolution"
        self.model = spec.backend != "offline"
        self.roles = {r: (opts_r if opts_r != "auto" else ("model" if self.model else "offline"))
                      for r, opts_r in (("judge", opts.judge), ("engineer", opts.engineer),
                                        ("planner", opts.planner))}
        if not self.model and "model" in self.roles.values():
            raise RunSetupError("a model judge, engineer or planner needs a model backend (--backend openai|hf)")
        self.runner: Runner | None = None
        self.backend = self.ledger = None

    # ------------------------------------------------------------------ plumbing
    def _ask(self, agent: str) -> Callable[[list[dict]], Any]:
        from runtime.backends import make_backend, run_sync

        if self.backend is None:
            from runtime.backends import TokenLedger

            s = self.spec
            self.ledger = TokenLedger()  # the orchestration agents' tokens (judge, engineer, planner)
            self.backend = make_backend(s.backend, base_url=s.base_url, model=s.model, concurrency=s.concurrency,
                                        request_timeout=s.request_timeout, max_retries=s.max_retries,
                                        ledger=self.ledger)
        seeds = iter(range(10**9))  # a reproducible sampling seed per orchestration call
        return lambda messages: run_sync(self.backend.complete(
            messages, agent=agent, response_format={"type": "json_object"}, temperature=0.0, seed=next(seeds)))

    def _log(self, event: dict) -> None:
        with (self.dir / "log.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(_canon(event) + "\n")

    def _critiques_out(self, critiques: list[Critique], **where: Any) -> None:
        with (self.dir / "critiques.jsonl").open("a", encoding="utf-8") as fh:
            fh.writelines(dumps(c, **where) + "\n" for c in critiques)

    def _save_state(self, phase: str, sets: dict[str, dict[str, str]], done: list[str],
                    window_end: int = 0) -> None:
        tmp = self.dir / ".state.json.tmp"
        tmp.write_text(_canon({"phase": phase, "sets": sets, "workflow_hash": self.version.hash, "done": done,
                               "window_end": window_end}), encoding="utf-8")
        tmp.replace(self.dir / "state.json")

    def _judge(self):
        if self.roles["judge"] == "offline":
            return OfflineJudge(self.weights, self.keys)
        from runtime.workers.llm.render import render as render_role

        runner = self._runner()
        template = self.plan.data["prompts"].get("judge.prompt", {}).get("text")
        if not template:
            raise RunSetupError("a model judge needs the workflow's `judge: {prompt: ...}` template")
        import random

        from runtime.exec.engine import _prompt_dirs
        from runtime.workers.base import WorkerContext

        dirs = _prompt_dirs(self.spec, self.plan)

        def render(artifacts: dict) -> str:  # artifacts by type name, None where absent
            ctx = WorkerContext(runner.domain, runner.env, runner.world, random.Random(0), "judge", "judge", 0,
                                {}, {"prompt": template}, self.spec.backend)
            return render_role(ctx, "prompt", artifacts, 0, dirs)

        return ModelJudge(self.weights, self.keys, render, self._ask("judge"))

    def _runner(self) -> Runner:
        if self.runner is None or self.runner.spec.workflow_text != self.version.text:
            self.runner = Runner(dataclasses.replace(self.spec, workflow_text=self.version.text))
        return self.runner

    # ------------------------------------------------------------------ batches
    def run_batch(self, name: str, prompts: dict[str, PromptVersion], indices: list[int]) -> list[dict]:
        runner = self._runner()
        pset = (name, tuple((k, v.id, v.text) for k, v in sorted(prompts.items())))
        if not self.model:
            return [runner.run(i, pset) for i in indices]
        with ThreadPoolExecutor(max_workers=min(len(indices), self.spec.concurrency)) as pool:
            return list(pool.map(lambda i: runner.run(i, pset), indices))

    # ------------------------------------------------------------------ phase 1
    def diversify(self) -> dict[str, dict[str, PromptVersion]]:
        roots = {k: PromptVersion(v["id"], k, "", v["text"], author="workflow")
                 for k, v in self.plan.data["prompts"].items() if k in self.keys}
        sets: dict[str, dict[str, PromptVersion]] = {}
        summaries: list[list[str]] = []
        ask = self._ask("diversifier") if self.roles["engineer"] == "model" else None
        for k in range(self.k):
            name = f"s{k:02d}"
            if self.k == 1:
                focus, author = [], "workflow"
            elif ask is not None:
                focus, author = model_focus(ask, k, summaries, self.spec.seed, self.plan.domain.name)
            else:
                focus, author = offline_focus(k, summaries, self.spec.seed), "diversifier"
            summaries.append(focus)
            versions = {}
            for key, root in sorted(roots.items()):
                root = dataclasses.replace(root, set=name)
                if focus and key in FOCUS_KEYS:
                    v = derive(root, root.text, self.files[key], focus=tuple(focus), author=author, phase=1)
                else:
                    v = root
                versions[key] = self.store.add(v)
            sets[name] = versions
            self._log({"event": "set", "phase": 1, "set": name, "summary": focus,
                       "prompts": {k2: v.id for k2, v in versions.items()}})
        return sets

    # ------------------------------------------------------------------ phase 2
    def pilot(self, sets: dict[str, dict[str, PromptVersion]], phase: int = 2, reentry: int = 0,
              start_iteration: int = 0) -> dict[str, dict[str, PromptVersion]]:
        """Evolution loops for `sets`. In phase 3 (a drift re-entry) only prompts change: the
        program is the dataset's identity, fixed once generation has started."""
        live = dict(sets)
        base = {k: v["text"] for k, v in self.plan.data["prompts"].items()}
        engineer = ModelEngineer(self._ask("prompt_engineer")) if self.roles["engineer"] == "model" else OfflineEngineer()
        allow = self.spec.allow_paths
        planner = ModelPlanner(self._ask("planner"), allow) if self.roles["planner"] == "model" else OfflinePlanner(allow)
        judge = self._judge()
        for it in range(start_iteration, start_iteration + self.max_iterations):
            if not live:
                break
            order = sorted(live)
            jobs = {name: [pilot_index(int(name[1:]), it, j, reentry) for j in range(self.batch)] for name in order}
            results = self._parallel(lambda name, jobs=jobs: self._judged(name, live[name], jobs[name], judge), order)
            all_critiques = [c for name in order for c in results[name][1]]
            all_records = [r for name in order for r in results[name][0]]
            # the planner edits the program all sets share, from all sets' evidence
            last = it == start_iteration + self.max_iterations - 1
            ops = planner.revise(self.version, batch_metrics(all_records, all_critiques, self.axes), all_critiques) \
                if phase == 2 and not last else []
            workflow_edits = []
            if ops:
                new, edits = planner.apply(self.version, ops)
                workflow_edits = [dict(e) for e in edits]
                if new.hash != self.version.hash:
                    self.version = new
                    self.lineage.append(new)
                    self.lineage.save(self.dir / "workflow.jsonl")
            for name in order:
                records, critiques = results[name]
                metrics = batch_metrics(records, critiques, self.axes)
                scores = scores_of(metrics, self.axes)
                for v in live[name].values():
                    self.store.set_scores_after(v.id, name, scores)
                used = {k: v.id for k, v in sorted(live[name].items())}
                stop = None
                edits = []
                try:
                    stop_now = holds(self.stop_when, metrics)
                except CriterionError as exc:  # recorded; the set stops: its criterion cannot tell
                    stop_now, stop = True, f"stop_when failed: {exc}"
                if stop_now:
                    stop = stop or "stop_when holds"
                elif it == start_iteration + self.max_iterations - 1:
                    stop = "max_iterations"
                else:
                    for key in sorted(live[name]):
                        cur = live[name][key]
                        new = engineer.revise(cur, base[key], self.files[key], critiques, metrics, self.axes,
                                              phase=phase, iteration=it)
                        if new is not None:
                            live[name][key] = self.store.add(new)
                            edits.append({"key": key, "from": cur.id, "to": new.id,
                                          "reason": "; ".join(new.critiques)[:400]})
                    if not edits and not any(e["hash"] for e in workflow_edits):
                        stop = "nothing left to revise"
                self._critiques_out(critiques, set=name, phase=phase, iteration=it)
                self._log({"event": "iteration", "phase": phase, "set": name, "iteration": it,
                           "indices": [jobs[name][0], jobs[name][-1] + 1], "metrics": metrics,
                           "prompts": used,
                           "edits": edits, "workflow_edits": workflow_edits, "stop": stop})
                self.say(f"phase {phase} · set {name} · iteration {it}: {summary_line(metrics)}"
                         + (f" · {len(edits)} prompt edit(s)" if edits else "") + (f" · stop: {stop}" if stop else ""))
                sets[name] = dict(live[name])
                if stop:
                    del live[name]
        return sets

    def _judged(self, name: str, prompts: dict[str, PromptVersion], indices: list[int], judge: Any):
        records = self.run_batch(name, prompts, indices)
        return records, [judge.critique(r) for r in records]

    def _parallel(self, fn: Callable[[str], Any], names: list[str]) -> dict[str, Any]:
        if not self.model or len(names) == 1:
            return {n: fn(n) for n in names}
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            return dict(zip(names, pool.map(fn, names)))
