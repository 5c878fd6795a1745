"""One instance, start to finish: walk the compiled DAG, run workers, build the record.

An instance walks the unrolled DAG in topological order. A node runs when an edge into it
fired (any one: OR-join), at most once; after it runs, each edge out of it fires when its
guard holds over the node's outputs. Artifacts live on a per-instance blackboard keyed by
type (a later round's `Dialog` replaces the earlier one). The record is a pure function of
(program, run seed, index): no clock, no process state, so every executor writes the same.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from eigenlang.catalog import snake
from eigenlang.diagnostics import Origin
from eigenlang.types import ModelT
from runtime.workers.base import WorkerContext, WorkerError, World, node_rng

# What an accepted dataset instance is made of: a workflow that produces less is rejected.
REQUIRED = ("TaskSpec", "Dialog", "FinalState", "Verifier")


@dataclass(frozen=True)
class RunSpec:
    """What makes a run (picklable: Ray actors rebuild their `Runner` from it)."""

    workflow: str
    domain: str | None = None  # overrides the workflow's `domain:`
    seed: int = 0
    size: float = 1.0
    backend: str = "offline"
    model: str | None = None
    # How to reach the model (not part of a run's identity: the store keys on backend+model).
    base_url: str | None = None
    concurrency: int = 16
    request_timeout: float = 60.0
    max_retries: int = 3
    # Orchestration (runtime.evolve): the program text after planner edits (paths still resolve
    # against `workflow`), and prompt sets replacing the plan's templates:
    # ((set name, (("Agent.role", version id, text), ...)), ...); instance i uses set i mod K.
    workflow_text: str | None = None
    prompt_sets: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = ()


class RunSetupError(Exception):
    """The run cannot start (a broken program, a domain without recipes, ...): said in words."""


@dataclass
class _Node:
    id: str
    agent: str
    kind: str
    round: int
    inputs: list[str]
    outputs: list[str]
    settings: dict
    prompts: dict[str, str]
    out_edges: list[tuple[str, Any]] = field(default_factory=list)  # (dst, compiled guard|None)


class Runner:
    """Everything one process needs to run instances: the plan, the world, the workers."""

    def __init__(self, spec: RunSpec, plan: Any = None) -> None:
        from runtime.env import Environment
        from runtime.workers.registry import workers_for

        plan = plan or prepare(spec)
        self.spec, self.plan, self.domain = spec, plan, plan.domain
        self.env = Environment.from_domain(self.domain, spec.seed, spec.size)
        self.world = World(self.domain, self.env.db.to_json(),
                           self.env.user_db.to_json() if self.env.user_db is not None else None,
                           self.domain.now)
        self.ledger = None  # model backends: tokens per instance, for the record's provenance
        options: dict[str, Any] = {}
        if spec.backend != "offline":
            from runtime.backends import TokenLedger

            self.ledger = TokenLedger()
            options = {"base_url": spec.base_url, "model": spec.model, "concurrency": spec.concurrency,
                       "request_timeout": spec.request_timeout, "max_retries": spec.max_retries,
                       "ledger": self.ledger, "prompt_dirs": _prompt_dirs(spec, plan)}
        try:
            self.workers = workers_for(spec.backend, **options)
        except ValueError as exc:
            raise RunSetupError(str(exc)) from exc
        self.schema = plan.ir.schema
        self._lock, self._variant_cache = threading.Lock(), {}
        self.variants = [self._variant(plan.data, name, prompts)
                         for name, prompts in spec.prompt_sets or ((None, ()),)]
        self.initial_state = {"domain": self.domain.name, "domain_hash": plan.data["domain"]["hash"],
                              "generator_seed": spec.seed, "size": spec.size, "hash": self.env.hash()}

    def _variant(self, data: dict, name: str | None, prompts: tuple) -> tuple[dict[str, _Node], dict]:
        """The nodes and provenance of one prompt set (the plan's own templates: no set)."""
        ids = {k: v["id"] for k, v in data["prompts"].items()}
        ids.update({key: pid for key, pid, _ in prompts})
        texts = {k: v["text"] for k, v in data["prompts"].items()}
        texts.update({key: text for key, _, text in prompts})
        provenance = {"workflow": data["workflow"], "workflow_hash": self.plan.hash,
                      "prompts": dict(sorted(ids.items())), "backend": self.spec.backend,
                      "model": self.spec.model}
        if name is not None:
            provenance["prompt_set"] = name
        return self._nodes(data, texts), provenance

    def _nodes(self, data: dict, texts: dict[str, str]) -> dict[str, _Node]:
        from eigenlang.expr import compile_expr, parse_expr

        nodes = {n["id"]: _Node(n["id"], n["agent"], n["kind"], n["round"], n["in"], n["out"],
                                n["settings"], {r: texts.get(f"{n['agent']}.{r}", "") for r in n["prompts"]})
                 for n in data["nodes"]}  # plan.json lists nodes in topological order
        for e in data["edges"]:
            guard = None
            if e["guard"]:
                expr, errs = parse_expr(e["guard"], Origin("<guard>", ((1, 1),)))
                if expr is None:  # the compiler accepted it: cannot happen short of a bug
                    raise RunSetupError(f"guard {e['guard']!r}: {errs[0].message}")
                guard = compile_expr(expr)
            nodes[e["src"]].out_edges.append((e["dst"], guard))
        return nodes

    # ------------------------------------------------------------------ one instance
    def run(self, index: int, prompt_set: tuple | None = None) -> dict:
        """One instance's record. `prompt_set` ((name, ((key, id, text), ...))) replaces the
        spec's prompt sets for this call: the orchestrator reuses one Runner (its world is
        the costly part) for every set and iteration."""
        variant = self.variants[index % len(self.variants)] if prompt_set is None else self._cached(prompt_set)
        if self.ledger is None:
            return self._run(index, variant)
        rid = self._head(index)["id"]
        with self.ledger.instance(rid):
            record = self._run(index, variant)
        record["provenance"] = {**record["provenance"], "tokens": self.ledger.for_instance(rid).to_json()}
        return record

    def _cached(self, prompt_set: tuple) -> tuple[dict[str, _Node], dict]:
        with self._lock:
            found = self._variant_cache.get(prompt_set)
            if found is None:
                if len(self._variant_cache) > 256:  # old iterations' sets are not coming back
                    self._variant_cache.clear()
                found = self._variant_cache[prompt_set] = self._variant(self.plan.data, *prompt_set)
            return found

    def _run(self, index: int, variant: tuple[dict[str, _Node], dict]) -> dict:
        nodes, prov = variant
        board: dict[str, dict] = {}
        active = set(self.plan.data["start"])
        trace: list[str] = []
        validation: list[dict] = []
        stalled: tuple[str, list[str]] | None = None
        for node in nodes.values():
            if node.id not in active:
                continue
            trace.append(node.id)
            try:
                produced = self._run_node(node, index, board)
            except _NodeFailed as exc:
                return self._rejected(index, node.id, exc.reasons, trace, board, prov, validation)
            board.update(produced)
            if "ValidationReport" in produced:
                validation.append(produced["ValidationReport"])
            fired = False
            for dst, guard in node.out_edges:
                if guard is None or _holds(guard, produced):
                    active.add(dst)
                    fired = True
            if node.out_edges and not fired:
                stalled = (node.id, _reasons_of(produced) or
                           [f"{node.id}: no outgoing condition held"])
        missing = [t for t in REQUIRED if t not in board]
        if stalled is not None or missing:
            stage, reasons = stalled or (trace[-1], [f"the workflow produced no {', '.join(missing)}"])
            return self._rejected(index, stage, reasons, trace, board, prov, validation)
        return self._accepted(index, board, trace, validation, prov)

    def _run_node(self, node: _Node, index: int, board: dict) -> dict:
        worker = self.workers.get(node.kind)
        if worker is None:
            raise _NodeFailed([f"{node.id}: backend {self.spec.backend!r} has no {node.kind} worker"])
        inputs = {t: board[t] for t in node.inputs if t in board}
        if len(inputs) < len(node.inputs):
            lacking = [t for t in node.inputs if t not in board]
            raise _NodeFailed([f"{node.id}: no {', '.join(lacking)} upstream on this path"])
        ctx = WorkerContext(self.domain, self.env, self.world, node_rng(self.spec.seed, index, node.id),
                            node.id, node.agent, node.round, node.settings, node.prompts,
                            self.spec.backend)
        try:
            produced = worker.run(ctx, inputs)
        except WorkerError as exc:
            raise _NodeFailed([f"{node.id}: {exc}"]) from None
        except Exception as exc:  # noqa: BLE001  a worker bug costs this instance, not the run
            raise _NodeFailed([f"{node.id}: worker crashed: {type(exc).__name__}: {exc}"]) from None
        problems = []
        for t in node.outputs:
            if t not in produced:
                problems.append(f"{node.id}: malformed output: no {t}")
                continue
            problems += [f"{node.id}: malformed {t}: {e}"
                         for e in self.schema.validate(produced[t], ModelT(t), limit=5)]
        if problems:
            raise _NodeFailed(problems)
        return {t: produced[t] for t in node.outputs}

    # ------------------------------------------------------------------ records
    def _head(self, index: int) -> dict:
        return {"index": index, "id": f"{self.domain.name}-{self.spec.seed}-{index:06d}",
                "seed": instance_seed(self.spec.seed, index), "domain": self.domain.name}

    def _accepted(self, index: int, board: dict, trace: list[str], validation: list[dict],
                  prov: dict) -> dict:
        task, dialog = board["TaskSpec"], board["Dialog"]
        return {**self._head(index), "accepted": True,
                "task": task, "scenario": board.get("ScenarioSeed"),
                "persona": task["persona"], "difficulty": task["difficulty"],
                "user_instructions": task["user_instructions"], "gold_calls": task["gold_calls"],
                "messages": dialog["messages"], "calls": dialog["calls"], "turns": dialog["turns"],
                "tools": self.plan.data["domain"]["tools"],
                "user_tools": self.plan.data["domain"]["user_tools"],
                "initial_state": self.initial_state, "final_state": board["FinalState"],
                "verifier": board["Verifier"], "feasibility": board.get("Feasibility"),
                "validation": validation, "trace": trace, "provenance": prov}

    def _rejected(self, index: int, stage: str, reasons: list[str], trace: list[str],
                  board: dict, prov: dict, validation: list[dict]) -> dict:
        # every validation round, as for accepted records: the judge learns from round 0 (what
        # the generator made), not from what is left after repairs
        return {**self._head(index), "accepted": False, "stage": stage, "reasons": reasons,
                "trace": trace, "artifacts": dict(sorted(board.items())), "validation": validation,
                "provenance": prov}


def prepare(spec: RunSpec) -> Any:
    """Compile the workflow and check that this backend can run it; cheap (no world built)."""
    from eigenlang.compiler import compile_workflow
    from runtime.workers.offline.recipes import has_recipes

    plan, diags = compile_workflow(spec.workflow, spec.workflow_text, domain=spec.domain)
    if plan is None:
        raise RunSetupError("\n".join(d.render() for d in diags.errors))
    domain = plan.domain
    if domain.generate is None:
        raise RunSetupError(f"domain {domain.name!r} has no database generator "
                            "(database.generate in its domain.yaml)")
    if spec.backend == "offline" and not has_recipes(domain):
        raise RunSetupError(f"domain {domain.name!r} declares no offline task recipes; add "
                            "`offline: {seed: scenarios.py:seed, task: scenarios.py:task}` to its "
                            "domain.yaml (docs/CONTRACTS.md §7) or use a model backend")
    produced = {t for n in plan.data["nodes"] for t in n["out"]}
    lacking = [t for t in REQUIRED if t not in produced]
    if lacking:
        raise RunSetupError(f"workflow {plan.data['workflow']!r} produces no {', '.join(lacking)}: "
                            "a dataset instance needs a task, a dialogue, its final state and a verifier")
    return plan


def _prompt_dirs(spec: RunSpec, plan: Any) -> tuple[str, ...]:
    """The folders of the workflow's prompt files: where their `{% include %}`s are found."""
    from pathlib import Path

    base = Path(spec.workflow).resolve().parent
    return tuple(sorted({str((base / p["file"]).parent) for p in plan.data["prompts"].values()
                         if isinstance(p.get("file"), str)})) or (str(base),)


class _NodeFailed(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(reasons)
        self.reasons = reasons


def instance_seed(seed: int, index: int) -> int:
    return int(hashlib.sha256(f"eigen:{seed}:{index}".encode()).hexdigest()[:12], 16)


def _holds(guard: Any, produced: dict[str, dict]) -> bool:
    """A guard over the node's outputs: their fields by name, and each output by snake name."""
    scope: dict[str, Any] = {}
    for t, value in produced.items():
        if isinstance(value, dict):
            for k, v in value.items():
                scope.setdefault(k, v)
        scope[snake(t)] = value
    from eigenlang.expr import EvalError

    try:
        return guard(scope) is True
    except EvalError:
        return False


def _reasons_of(produced: dict[str, dict]) -> list[str]:
    return [r for v in produced.values() if isinstance(v, dict)
            for r in (v.get("reasons") or []) if isinstance(r, str)]
