"""What asynchronous GRPO generates, in which order, and when it may (no Ray, no model).

    scheduler = Scheduler(lambda s: StepPlan(s, pool, config, shares=2), start=0, max_staleness=2, steps=10)
    scheduler.advance(version)          # after each update: opens the steps version + K may feed
    unit = scheduler.next_unit()        # what an idle rollout actor generates next
    scheduler.complete(unit, result)    # a finished unit; may open the step's next sampling round
    if scheduler.ready(step): batch = scheduler.take(step)

A step's rollouts are planned exactly as the synchronous loop samples them
(trainer/grpo.py `collect`): round 0 draws `tasks_per_step` tasks, each later round refills
the groups the dynamic filter dropped, without replacement, up to `max_refills` rounds, with
the torch seed `round_seed(seed, step, round)`. A round is cut into `shares` units (groups
i, i + shares, ...; unit i seeded `round_seed + i`), each generated whole by one actor, so
with one share a unit is the synchronous loop's call and `max_staleness: 0` is the
synchronous run. A step's batch is the first `tasks_per_step` kept groups in plan order,
whichever unit finished first: the tasks of a step are a function of (seed, step) and of
the rewards of its earlier rounds only, so a resumed run regenerates the steps it had in
flight from the checkpoint's step alone (no buffer in the checkpoint).

Staleness (AReaL's `max_head_offpolicyness`): the policy version is the number of steps
trained; step s is trained by version s. Units of step s are handed out only once the
trainer has reached version s − K, and an actor generates with the newest weights it has
been sent, so no group is ever staler than K when trained. The producer is throttled;
nothing generated is thrown away for being stale (`take` refuses a stale group as a bug,
it never happens). The price of planning by step: a step waits for its own slowest unit —
while it waits, actors already generate the next K steps, so with K ≥ 1 they do not idle
on a straggler; only the trainer may.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .grpo import Collected, GRPOConfig, round_seed, sample_tasks, select_groups
from .rollout import Rollout, Task


class StaleGroupError(RuntimeError):
    """A group older than max_staleness reached the trainer (a scheduling bug, never expected)."""


@dataclass(frozen=True, order=True)
class Unit:
    """One actor's job: `group_size` episodes of each task, in one lockstep batch, seeded."""

    step: int  # the step whose batch it feeds (from 0)
    round: int  # the step's sampling round (0, then refills)
    share: int  # which part of the round: groups share, share + shares, ...
    task_ids: tuple[str, ...] = field(compare=False)  # one per group
    indices: tuple[int, ...] = field(compare=False)  # the groups' positions in the round
    seed: int = field(compare=False)


@dataclass
class UnitResult:
    version: int  # the policy version whose weights generated the unit
    groups: list[list[Rollout]]  # one per task of the unit, group_size rollouts each
    busy_s: float = 0.0  # the actor's time generating it
    actor: str = ""  # which actor (for the logs)


class StepPlan:
    """One step's sampling rounds (see the module docstring), fed with finished units."""

    def __init__(self, step: int, pool: dict[str, list[Task]], config: GRPOConfig, shares: int) -> None:
        self.step, self.pool, self.config, self.shares = step, pool, config, max(1, shares)
        self.round = -1
        self.kept: list[tuple[int, int]] = []  # (round, group index) of the kept groups, in plan order
        self.groups: dict[tuple[int, int], list[Rollout]] = {}
        self.versions: dict[tuple[int, int], int] = {}
        self.rewards: list[float] = []
        self.sampled = self.refills = self.turns = self.cut_turns = 0
        self.taken: set[str] = set()
        self.open_units: dict[int, Unit] = {}  # share -> unit of the current round not finished yet
        self.done = False
        self._issued: list[Unit] = []
        self._open_round(0)

    def units(self) -> list[Unit]:
        """The units opened since the last call (each unit is handed out once)."""
        out, self._issued = self._issued, []
        return out

    def _open_round(self, round_: int) -> None:
        need = self.config.tasks_per_step - len(self.kept)
        tasks = [] if need <= 0 or round_ > self.config.max_refills else sample_tasks(
            self.pool, need, self.config.seed, self.step, round_, self.config.domains, self.taken)
        if not tasks:
            self.done = True
            return
        self.round = round_
        self.refills += round_ > 0
        self.taken.update(t.id for t in tasks)
        base = round_seed(self.config.seed, self.step, round_)
        for share in range(min(self.shares, len(tasks))):
            indices = tuple(range(share, len(tasks), self.shares))
            unit = Unit(self.step, round_, share, tuple(tasks[j].id for j in indices), indices, base + share)
            self.open_units[share] = unit
            self._issued.append(unit)

    def complete(self, unit: Unit, result: UnitResult) -> None:
        """Record a finished unit of the open round; the last one closes the round: the
        filter runs on all its groups and the next round (if any) opens."""
        if unit.round != self.round or self.open_units.get(unit.share) != unit:
            raise ValueError(f"unit {unit.step}/{unit.round}/{unit.share} is not open in this plan")
        if len(result.groups) != len(unit.indices):
            raise ValueError(f"unit {unit.step}/{unit.round}/{unit.share}: {len(result.groups)} groups "
                             f"for {len(unit.indices)} tasks")
        del self.open_units[unit.share]
        for j, group in zip(unit.indices, result.groups):
            self.groups[(unit.round, j)] = group
            self.versions[(unit.round, j)] = result.version
            self.turns += sum(r.turns for r in group)
            self.cut_turns += sum(r.cut_turns for r in group)
        if self.open_units:
            return
        order = sorted(j for (r, j) in self.groups if r == self.round)
        rewards = [[r.reward for r in self.groups[(self.round, j)]] for j in order]
        self.sampled += len(order)
        self.rewards += [x for rs in rewards for x in rs]
        self.kept += [(self.round, order[i]) for i in select_groups(rewards)]
        self._open_round(self.round + 1)

    def collected(self) -> Collected:
        kept = self.kept[:self.config.tasks_per_step]
        return Collected([self.groups[k] for k in kept], self.rewards, self.sampled, len(kept), self.refills,
                         self.turns, self.cut_turns)

    def kept_versions(self) -> list[int]:
        return [self.versions[k] for k in self.kept[:self.config.tasks_per_step]]

    def all_rollouts(self) -> list[Rollout]:
        """Every rollout of the step, kept or not, in plan order (for rollouts.jsonl)."""
        return [r for k in sorted(self.groups) for r in self.groups[k]]


class Scheduler:
    """The plans of the steps in flight, the units waiting for an actor (earliest step
    first: a re-queued unit goes before newer work), and the staleness gate."""

    def __init__(self, make_plan: Callable[[int], StepPlan], start: int, max_staleness: int, steps: int) -> None:
        self.make_plan, self.max_staleness, self.steps = make_plan, max_staleness, steps
        self.version = start
        self.next_step = start  # the first step not planned yet
        self.plans: dict[int, StepPlan] = {}
        self.queue: list[Unit] = []
        self._open_steps()

    def _open_steps(self) -> None:
        while self.next_step < self.steps and self.next_step <= self.version + self.max_staleness:
            plan = self.make_plan(self.next_step)
            self.plans[self.next_step] = plan
            self._push(plan.units())
            self.next_step += 1

    def _push(self, units: list[Unit]) -> None:
        for unit in units:
            heapq.heappush(self.queue, unit)

    def advance(self, version: int) -> None:
        """The trainer is now at `version` (steps trained): open what it may feed."""
        self.version = version
        self._open_steps()

    def next_unit(self) -> Unit | None:
        return heapq.heappop(self.queue) if self.queue else None

    def requeue(self, unit: Unit) -> None:
        """A unit whose actor died: generated again (same tasks and seed), before newer work."""
        heapq.heappush(self.queue, unit)

    def complete(self, unit: Unit, result: UnitResult) -> None:
        plan = self.plans[unit.step]
        plan.complete(unit, result)
        self._push(plan.units())

    def ready(self, step: int) -> bool:
        return step in self.plans and self.plans[step].done

    def take(self, step: int) -> StepPlan:
        """The finished plan of `step`, trained by version `step`; StaleGroupError if a kept
        group is staler than max_staleness (the gate makes that impossible)."""
        plan = self.plans.pop(step)
        for v in plan.kept_versions():
            if step - v > self.max_staleness:
                raise StaleGroupError(f"step {step + 1}: a group of policy version {v} is {step - v} versions "
                                      f"old (max_staleness {self.max_staleness})")
        return plan

    def in_flight(self) -> dict[str, Any]:
        return {"planned_steps": sorted(self.plans), "queued_units": len(self.queue)}
