"""What the language knows about without being told: worker kinds, artifact types, metrics.

A workflow's agents are instances of built-in worker kinds (the paper's seven stages); their
inputs and outputs are artifact types, which are ordinary models in the type language, so
guards (`when feasible`), loop conditions (`until accepted`) and prompt templates are checked
against them exactly like domain expressions are checked against a database schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# Artifact models, written in the type language (parsed by eigenlang.types).
ARTIFACT_MODELS: dict[str, dict[str, str]] = {
    "Persona": {"name": "str", "tone": "str", "expertise": "str", "constraints": "list[str]"},
    "Difficulty": {"level": "enum[easy, medium, hard]", "tool_calls": "int", "branching": "int",
                   "ambiguity": "float", "error_prone": "list[str]"},
    "ScenarioSeed": {"persona": "Persona", "context": "dict[str, any]", "difficulty": "Difficulty",
                     "intent": "str"},
    # `known`: what the user can tell the agent (τ²'s known_info); `gold_calls`: the planned
    # completion path [{name, arguments, side}], agent- and user-side, in order; `inform`:
    # the values the agent must tell the user (τ²'s communicate_info), the verifier's `communicate`
    "TaskSpec": {"intent": "str", "objective": "str", "persona": "Persona",
                 "difficulty": "Difficulty", "context": "dict[str, any]",
                 "known": "dict[str, any]", "alternatives": "dict[str, any]",
                 "say": "dict[str, any]", "inform": "list[str]", "must": "list[str]", "must_not": "list[str]",
                 "subgoals": "list[str]", "user_instructions": "str",
                 "gold_calls": "list[dict[str, any]]", "expect_feasible": "bool"},
    "Feasibility": {"feasible": "bool", "reasons": "list[str]", "path": "list[dict[str, any]]"},
    "Dialog": {"messages": "list[dict[str, any]]", "calls": "list[dict[str, any]]", "turns": "int"},
    "FinalState": {"initial_hash": "str", "hash": "str", "diff": "list[dict[str, any]]"},
    "ValidationReport": {"accepted": "bool", "checks": "dict[str, bool]", "reasons": "list[str]",
                         "round": "int"},
    "Verifier": {"assertions": "list[dict[str, any]]",
                 "expected_diff": "optional[list[dict[str, any]]]", "communicate": "list[str]"},
    # global template context
    "DomainInfo": {"name": "str", "description": "str", "policy": "str", "now": "str",
                   "tools": "list[dict[str, any]]", "user_tools": "list[dict[str, any]]"},
    # a few whole entries of each top-level database collection (deterministic), and the
    # collections' sizes: what a model needs to ground the ids it writes into a seed or task
    "WorldSample": {"counts": "dict[str, int]", "sample": "dict[str, any]"},
}

# Names every prompt template may use, besides its agent's inputs (in snake_case).
TEMPLATE_GLOBALS: dict[str, str] = {
    "domain": "DomainInfo",
    "world": "WorldSample",
    "agent": "str",
    "params": "dict[str, any]",
    "constraints": "list[str]",  # added by the prompt engineer during evolution
    "examples": "list[str]",
    "seed": "int",
}

VALIDATION_CHECKS = ("tool_validity", "grounding", "goal_completion", "realism", "compliance")

# Floats available to `stop_when` and `drift_when` (judge axes are added per workflow).
METRICS = ("acceptance_rate", "infeasible_rate", "repair_rounds_mean", "schema_error_rate",
           "calls_per_task", "judge_score") + VALIDATION_CHECKS

TOOL_SELECTORS = ("tools.all", "tools.read", "tools.write", "tools.generic", "user_tools.all")


@dataclass(frozen=True)
class WorkerKind:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    llm_calls: Callable[[dict], int]  # worst case per run, from the agent's settings
    keys: frozenset[str] = field(default_factory=frozenset)  # agent keys that make sense
    summary: str = ""


def _dialog_calls(a: dict) -> int:
    # per turn: one user-simulator call, then assistant calls until it answers in text
    turns = a.get("max_turns") or 30
    tool_rounds = int(a.get("params", {}).get("max_tool_rounds", 4))
    return turns * (1 + 1 + tool_rounds)


WORKERS: dict[str, WorkerKind] = {w.name: w for w in [
    WorkerKind("RandomPool", (), ("ScenarioSeed",), lambda a: 1, frozenset({"prompt"}),
               "samples a scenario seed: persona, environment context, difficulty factors"),
    WorkerKind("UserIntent", ("ScenarioSeed",), ("TaskSpec",), lambda a: 1, frozenset({"prompt"}),
               "turns a seed into a task: objective, hard requirements, latent subgoals"),
    WorkerKind("TaskValidation", ("TaskSpec",), ("Feasibility",), lambda a: 1,
               frozenset({"prompt", "uses"}),
               "probes feasibility with read tools on a fork of the environment"),
    WorkerKind("DialogSynthesis", ("TaskSpec",), ("Dialog", "FinalState"), _dialog_calls,
               frozenset({"user", "assistant", "max_turns"}),
               "a user simulator and the trajectory agent talk, calling tools"),
    WorkerKind("TrajectoryValidation", ("TaskSpec", "Dialog"), ("ValidationReport",),
               lambda a: len(a.get("checks") or VALIDATION_CHECKS),
               frozenset({"prompt", "checks"}),
               "checks tool validity, grounding, goal completion, realism, compliance"),
    WorkerKind("Modify", ("TaskSpec", "Dialog", "ValidationReport"), ("Dialog",), lambda a: 1,
               frozenset({"prompt"}), "repairs the task or the trajectory locally"),
    WorkerKind("VerificationFunction", ("TaskSpec", "FinalState"), ("Verifier",), lambda a: 1,
               frozenset({"prompt"}), "writes the executable verifier of the final state"),
]}


def snake(name: str) -> str:
    """TaskSpec → task_spec: how an input type is named inside a prompt template."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
