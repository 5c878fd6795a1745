"""The surface syntax of both program kinds, as pydantic models.

These models are the single description of which keys a program may have and of what shape
their values are. They serve three jobs: shape checking (pydantic errors are mapped back to
YAML positions by `parse.py`), the JSON Schema that `eigen schema` prints for editors, and the
typed view that later stages read. Embedded languages (types, expressions, flows) stay
strings here; `parse.py` parses them with positions.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- domain programs
class FieldDecl(Strict):
    """Long form of a database field or tool parameter."""

    type: str = Field(description="a type, e.g. 'str', 'list[Flight]', 'enum[a, b]'")
    description: str | None = None
    default: Any = None
    required: bool | None = Field(None, description="defaults to true unless a default is given")


FieldLike = Union[str, FieldDecl]


class Precondition(Strict):
    """What the backend enforces: the call is refused with `error` when `check` fails."""

    check: str = Field(description="expression that must hold before the tool runs")
    error: str = Field(description="message returned to the caller when it does not; "
                                   "{param} / {param.field} print argument values, {{ }} are braces")


class PolicyCheck(Strict):
    """What the policy asks of the agent: the call runs anyway; a failed check is a recorded
    violation on the trajectory (the agent is not told)."""

    check: str = Field(description="expression over the state before the call (scope of 'requires')")
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$",
                      description="snake_case name of the rule, unique within the tool")
    description: str = Field(description="what the policy asks, in words ({param} placeholders allowed)")


class ExprImplDecl(Strict):
    """A declarative implementation: the tool returns the value of an expression over `db`,
    `user_db`, `now` and its params (no Python; read and generic tools, actions)."""

    return_: str = Field(alias="return", description="expression whose value the tool returns, "
                                                      "e.g. 'db.users[user_id]'")


ImplLike = Union[str, ExprImplDecl]
IMPL_HELP = "'file.py:function' relative to the domain folder, or {return: EXPR} (no Python)"


class ToolDecl(Strict):
    kind: Literal["read", "write", "generic"]
    description: str = ""
    params: dict[str, FieldLike] = Field(default_factory=dict)
    returns: str | None = None
    impl: ImplLike = Field(description=IMPL_HELP)
    requires: list[Precondition] = Field(default_factory=list)
    policy: list[PolicyCheck] = Field(default_factory=list,
                                      description="policy checks: violations are recorded, the call runs")


class ActionDecl(Strict):
    """An environment action: run by the environment itself (task set-up, assertions), never
    offered to a model."""

    side: Literal["agent", "user"] = Field(description="whose state it belongs to (τ²-bench's env_type)")
    description: str = ""
    params: dict[str, FieldLike] = Field(default_factory=dict)
    returns: str | None = None
    impl: ImplLike = Field(description=IMPL_HELP)


class RuleDecl(Strict):
    description: str
    check: str | None = Field(None, description="expression over calls, messages, db, initial_db")


class DatabaseDecl(Strict):
    root: str
    types: dict[str, str] = Field(default_factory=dict, description="type aliases")
    models: dict[str, dict[str, FieldLike]]
    generate: str | None = Field(None, description="'generate.py:build' — build(seed, size) -> dict")


class OfflineDecl(Strict):
    """How the offline backend invents tasks in this domain (see docs/CONTRACTS.md §7)."""

    seed: str = Field(description="'scenarios.py:seed' — seed(rng, world, difficulty) -> {intent, context}")
    task: str = Field(description="'scenarios.py:task' — task(rng, world, seed) -> the planned task")


class DomainProgram(Strict):
    """A domain: the world agents act in."""

    eigenlang: Literal[1]
    domain: str
    description: str = ""
    policy: str | None = Field(None, description="path of the natural-language policy")
    now: str = Field(description="fixed clock, ISO datetime")
    database: DatabaseDecl
    user_database: DatabaseDecl | None = None
    sync: str | None = Field(None, description="'tools.py:sync' run after every step")
    offline: OfflineDecl | None = Field(None, description="task recipes for the offline backend")
    tools: dict[str, ToolDecl] = Field(default_factory=dict)
    user_tools: dict[str, ToolDecl] = Field(default_factory=dict)
    actions: dict[str, ActionDecl] = Field(default_factory=dict,
                                           description="environment actions (env.act), not tools")
    rules: dict[str, RuleDecl] = Field(default_factory=dict)


# ------------------------------------------------------------------------- workflow programs
class AgentDecl(Strict):
    """One worker agent in a workflow."""

    worker: str | None = Field(None, description="built-in worker kind; defaults to the agent's name")
    prompt: str | None = Field(None, description="jinja2 template, relative to the workflow file")
    in_: str | list[str] = Field(default_factory=list, alias="in")
    out: str | list[str] | None = None
    uses: str | list[str] | None = Field(None, description="tool access, e.g. 'tools.read'")
    user: str | None = None
    assistant: str | None = None
    max_turns: int | None = Field(None, ge=1, le=200)
    checks: list[str] | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    def inputs(self) -> list[str]:
        return [self.in_] if isinstance(self.in_, str) else list(self.in_)

    def outputs(self) -> list[str]:
        return [] if self.out is None else [self.out] if isinstance(self.out, str) else list(self.out)


class JudgeDecl(Strict):
    axes: dict[str, float]
    prompt: str | None = None


class PilotDecl(Strict):
    batch: int = Field(10, ge=1, le=1000)
    max_iterations: int = Field(16, ge=1, le=1000)
    stop_when: str | None = None


class MonitorDecl(Strict):
    audit_rate: float = Field(0.05, ge=0.0, le=1.0)
    drift_when: str | None = None


class EvolutionDecl(Strict):
    prompt_sets: int = Field(1, ge=1, le=1024)
    pilot: PilotDecl = Field(default_factory=PilotDecl)
    monitor: MonitorDecl = Field(default_factory=MonitorDecl)


class WorkflowProgram(Strict):
    """A workflow: a graph of worker agents that synthesises verified dialogues."""

    eigenlang: Literal[1]
    workflow: str
    description: str = ""
    domain: str = Field(description="a built-in domain name or a path to a domain folder")
    types: dict[str, dict[str, FieldLike]] = Field(default_factory=dict,
                                                   description="extra artifact types")
    agents: dict[str, AgentDecl]
    flow: str
    judge: JudgeDecl | None = None
    evolution: EvolutionDecl | None = None


PROGRAM_KINDS: dict[str, type[Strict]] = {"domain": DomainProgram, "workflow": WorkflowProgram}


def program_json_schema() -> dict:
    """JSON Schema accepting either program kind (for editors: `eigen schema`)."""
    dom = DomainProgram.model_json_schema(by_alias=True)
    wf = WorkflowProgram.model_json_schema(by_alias=True)
    defs = {**dom.pop("$defs", {}), **wf.pop("$defs", {})}
    defs["DomainProgram"], defs["WorkflowProgram"] = dom, wf
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "eigenlang program",
        "oneOf": [{"$ref": "#/$defs/DomainProgram"}, {"$ref": "#/$defs/WorkflowProgram"}],
        "$defs": defs,
    }
