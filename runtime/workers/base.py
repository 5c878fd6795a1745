"""The worker interface: one worker kind (a stage of the workflow) for one backend.

A worker reads artifacts (JSON objects keyed by their artifact type, see
`eigenlang.catalog.ARTIFACT_MODELS`) and returns artifacts. It never writes anywhere: the
engine validates what it returns, records it, and decides where the instance goes next.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class World:
    """An instance's initial state as plain JSON, for code that reads the world (recipes,
    offline workers) without tool calls. Read-only by convention: never mutate `db`."""

    domain: Any  # eigenlang.domain.DomainSpec
    db: Mapping[str, Any]
    user_db: Mapping[str, Any] | None
    now: str


@dataclass
class WorkerContext:
    domain: Any  # DomainSpec
    env: Any  # runtime.env.Environment: the instance's initial state; fork before calling tools
    world: World
    rng: random.Random  # seeded by (run seed, instance index, node id)
    node: str  # "Modify#2"
    agent: str  # "Modify"
    round: int  # loop round (0 outside loops)
    settings: dict = field(default_factory=dict)  # the agent's settings in plan.json
    prompts: dict[str, str] = field(default_factory=dict)  # role → template text
    backend: str = "offline"
    # what the worker counts about this run of the node: LLM workers' re-asks after an
    # unparseable answer, and how many re-asked answers were unparseable too (the engine
    # writes them into the record's provenance, per agent)
    reasks: int = 0
    reasks_failed: int = 0


class Worker(Protocol):
    kind: str

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]: ...


class WorkerError(Exception):
    """A worker cannot produce its output for a reason worth recording (not a bug)."""


def node_rng(seed: int, index: int, node: str) -> random.Random:
    """The random stream of one node of one instance: independent of execution order, process
    and executor (str seeds are hashed with SHA-512 by `random`, never by `hash()`)."""
    return random.Random(f"eigen:{seed}:{index}:{node}")
