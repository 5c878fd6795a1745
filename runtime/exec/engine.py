"""One instance, start to finish: walk the compiled DAG, run workers, build the record.

An instance walks the unrolled DAG in topological order. A node runs when an edge into it
fired (any one: OR-join), at most once; after it runs, each edge out of it fires when its
guard holds over the node's outputs. Artifacts live on a per-instance blackboard keyed by
type (a later round's `Dialog` replaces the earlier one). The record is a pure function of
(program, run seed, index): no clock, no process state, so every executor writes the same.

A Python exception in a worker, a recipe or a tool (a tool's is caught by the environment,
which still answers the call with a `crash` error result) ends the instance as a *crash*:
a rejected record with a `crash` entry and its traceback (runtime.env.crashes), counted
apart from rejections, because it says the code is broken, not that the task was.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from eigenlang.catalog import snake
from eigenlang.diagnostics import Origin
from eigenlang.expr import EvalError
from eigenlang.types import ModelT
from runtime.env.crashes import Crash, describe
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
    base_url: str | tuple[str, ...] | None = None  # several: balanced over (runtime.backends.endpoints)
    concurrency: int = 16
    request_timeout: float = 60.0
    max_retries: int = 3
    # Orchestration (runtime.evolve): the program text after planner edits (paths still resolve
    # against `workflow`), and prompt sets replacing the plan's templates:
    # ((set name, (("Agent.role", version id, text), ...)), ...); instance i uses set i mod K.
    workflow_text: str | None = None
    prompt_sets: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = ()
    # Folders besides the workflow's own where the files it names may be (--allow-path;
    # eigenlang.paths). Not part of a run's identity: they widen where files are found only.
    allow_paths: tuple[str, ...] = ()


class RunSetupError(Exception):
    """The run cannot start (a broken program, a domain without recipes, ...): said in words."""


class GeneratorCrash(RunSetupError):
    """The domain's database generator raised: no instance can run. `traceback` is the
    portable traceback (the driver writes it to crashes/generator.txt)."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message, traceback)  # both in args: Ray pickles it back intact
        self.traceback = traceback

    def __str__(self) -> str:
        return str(self.args[0])


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
    out_edges: list[tuple[str, _Guard | None]] = field(default_factory=list)  # (dst, guard)


@dataclass(frozen=True)
class _Guard:
    """An edge's guard: its text as the plan has it, and the compiled expression."""

    text: str
    compiled: Any


class Runner:
    """Everything one process needs to run instances: the plan, the world, the workers."""

    def __init__(self, spec: RunSpec, plan: Any = None) -> None:
        from runtime.env import Environment
        from runtime.workers.registry import workers_for

        plan = plan or prepare(spec)
        self.spec, self.plan, self.domain = spec, plan, plan.domain
        self.env = _world(self.domain, spec)
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
                guard = _Guard(e["guard"], compile_expr(expr))
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
        inst = _Instance(self.env.fork())
        inst.env.crash_log = []  # this instance's tool crashes, from every fork its workers make
        record = self._walk(index, variant, inst)
        if inst.reasks:
            record["provenance"] = {**record["provenance"], "reasks": dict(sorted(inst.reasks.items()))}
        return record

    def _walk(self, index: int, variant: tuple[dict[str, _Node], dict], inst: _Instance) -> dict:
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
                produced = self._run_node(node, index, board, inst)
            except _NodeFailed as exc:
                return self._rejected(index, node.id, exc.reasons, trace, board, prov, validation)
            except _NodeCrashed as exc:
                return self._crashed(index, node.id, exc.crash, trace, board, prov, validation)
            board.update(produced)
            if "ValidationReport" in produced:
                validation.append(produced["ValidationReport"])
            fired = False
            for dst, guard in node.out_edges:
                try:
                    held = guard is None or _holds(guard, produced)
                except EvalError as exc:  # a broken guard is an error, not a "no"
                    reason = _guard_error(node.id, dst, guard, exc)
                    return self._rejected(index, node.id, [reason], trace, board, prov, validation)
                if held:
                    active.add(dst)
                    fired = True
            if node.out_edges and not fired:
                stalled = (node.id, _reasons_of(produced) or
                           [f"{node.id}: no outgoing condition held"])
        missing = [t for t in REQUIRED if t not in board]
        if stalled is not None or missing:
            stage, reasons = stalled or (trace[-1], [f"the workflow produced no {', '.join(missing)}"])
            return self._rejected(index, stage, reasons, trace, board, prov, validation)
        empty = _empty_verifier(board["Verifier"], self.env)
        if empty is not None:
            stage = next(n for n in reversed(trace) if "Verifier" in nodes[n].outputs)
            return self._rejected(index, stage, [empty], trace, board, prov, validation)
        return self._accepted(index, board, trace, validation, prov)

    def _run_node(self, node: _Node, index: int, board: dict, inst: _Instance) -> dict:
        worker = self.workers.get(node.kind)
        if worker is None:
            raise _NodeFailed([f"{node.id}: backend {self.spec.backend!r} has no {node.kind} worker"])
        inputs = {t: board[t] for t in node.inputs if t in board}
        if len(inputs) < len(node.inputs):
            lacking = [t for t in node.inputs if t not in board]
            raise _NodeFailed([f"{node.id}: no {', '.join(lacking)} upstream on this path"])
        ctx = WorkerContext(self.domain, inst.env, self.world, node_rng(self.spec.seed, index, node.id),
                            node.id, node.agent, node.round, node.settings, node.prompts,
                            self.spec.backend)
        try:
            produced = worker.run(ctx, inputs)
        except WorkerError as exc:  # a tool's crash may be why: the crash is the finding
            inst.count(ctx)
            if inst.env.crash_log:
                raise _NodeCrashed(inst.env.crash_log[0]) from None
            raise _NodeFailed([f"{node.id}: {exc}"]) from None
        except Exception as exc:  # noqa: BLE001  a bug costs this instance, not the run
            inst.count(ctx)
            raise _NodeCrashed(inst.env.crash_log[0] if inst.env.crash_log
                               else describe(exc, domain=self.domain)) from None
        inst.count(ctx)
        if inst.env.crash_log:
            raise _NodeCrashed(inst.env.crash_log[0])
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

    def _crashed(self, index: int, stage: str, crash: Crash, trace: list[str], board: dict,
                 prov: dict, validation: list[dict]) -> dict:
        """A rejected record with `crash` (its `traceback` goes to crashes/<index>.txt when the
        run store commits it)."""
        reason = f"crash: {stage}: {crash.source} {crash.where} raised {crash.type}: {crash.message}"
        record = self._rejected(index, stage, [reason], trace, board, prov, validation)
        record["crash"] = {"stage": stage, **crash.to_json()}
        return record


def prepare(spec: RunSpec) -> Any:
    """Compile the workflow and check that this backend can run it; cheap (no world built)."""
    from eigenlang.compiler import compile_workflow
    from runtime.workers.offline.recipes import has_recipes

    plan, diags = compile_workflow(spec.workflow, spec.workflow_text, domain=spec.domain, allow=spec.allow_paths)
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


class _NodeCrashed(Exception):
    def __init__(self, crash: Crash) -> None:
        super().__init__(crash.type)
        self.crash = crash


@dataclass
class _Instance:
    """What one instance's nodes share besides the blackboard: its environment (whose crash
    log collects tool crashes) and its LLM workers' re-asks per agent."""

    env: Any
    reasks: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, ctx: WorkerContext) -> None:
        if ctx.reasks or ctx.reasks_failed:
            tally = self.reasks.setdefault(ctx.agent, {"asked": 0, "failed": 0})
            tally["asked"] += ctx.reasks
            tally["failed"] += ctx.reasks_failed


def _world(domain: Any, spec: RunSpec) -> Any:
    """The run's generated world. A generator that raises stops the run (no instance can run
    without a world): GeneratorCrash with its traceback; a clear loading or schema problem is
    a RunSetupError in its own words."""
    from runtime.env import Environment
    from runtime.env.errors import ImplLoadError, StateLoadError

    try:
        return Environment.from_domain(domain, spec.seed, spec.size)
    except (ImplLoadError, StateLoadError) as exc:
        raise RunSetupError(f"domain {domain.name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001  the generator's bug, with its traceback
        crash = describe(exc, source="generator", domain=domain)
        raise GeneratorCrash(f"the database generator of domain {domain.name!r} crashed: {crash.where}: "
                             f"{crash.type}: {crash.message} (traceback in crashes/generator.txt)",
                             crash.traceback) from None


def instance_seed(seed: int, index: int) -> int:
    return int(hashlib.sha256(f"eigen:{seed}:{index}".encode()).hexdigest()[:12], 16)


def _holds(guard: _Guard, produced: dict[str, dict]) -> bool:
    """A guard over the node's outputs: their fields by name, and each output by snake name.
    Raises EvalError when it cannot be evaluated (the caller rejects the instance: reading
    that as "false" would hide the error behind "no outgoing condition held")."""
    scope: dict[str, Any] = {}
    for t, value in produced.items():
        if isinstance(value, dict):
            for k, v in value.items():
                scope.setdefault(k, v)
        scope[snake(t)] = value
    return guard.compiled(scope) is True


def _guard_error(src: str, dst: str, guard: _Guard, exc: EvalError) -> str:
    """The rejection reason of a guard that raised: which edge, the guard, where in it, why."""
    text = guard.text if len(guard.text) <= 80 else guard.text[:77] + "..."
    where = f" (column {exc.span.col} of the guard)" if exc.span is not None else ""
    return f"guard_error: {src} -> {dst} when {text}: {exc.message}{where}"


def _empty_verifier(verifier: dict, env: Any) -> str | None:
    """The rejection reason of a verifier that checks nothing: one an episode where the agent
    does nothing and says nothing passes (no assertion, no expected change, no `communicate`
    item it fails), so a reward built on it pays for idleness. None for a real verifier."""
    from runtime.env.verifier import Verifier

    try:
        idle = Verifier.model_validate(verifier).check(env, env, [])
    except Exception as exc:  # noqa: BLE001  # a malformed verifier is no verifier either
        return f"empty_verifier: the verifier cannot be read: {type(exc).__name__}: {exc}"
    if idle.passed:
        return ("empty_verifier: the verifier passes an episode in which the agent does nothing and says "
                "nothing (add a communicate item or an expected change)")
    return None


def _reasons_of(produced: dict[str, dict]) -> list[str]:
    return [r for v in produced.values() if isinstance(v, dict)
            for r in (v.get("reasons") or []) if isinstance(r, str)]
