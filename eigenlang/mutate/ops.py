"""The ops of the mutation API: one pydantic model per typed edit, and how an op is read
(JSON text, a dict with 'op', an LLM tool call) into one, or into E601 diagnostics.

`op_json_schema()` gives one OpenAI function schema per op, for a planner's tool calls. An
op's values are JSON data nested at most `MAX_OP_DEPTH` levels (eigenlang.oplimits).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError,
                      model_validator)

from ..diagnostics import Diagnostic, Span, known_list, name_hint
from ..oplimits import value_problem
from ..surface import AgentDecl

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
OP_SPAN = Span("<op>", 1, 1)
MAX_OP_DEPTH = 32  # levels of nesting an op may have (its own object counts as one)
_VALUES_HINT = f"an op is JSON data (string keys, finite numbers) nested at most {MAX_OP_DEPTH} levels"


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _one_line(v: str) -> str:
    v = v.strip()
    if not v or "\n" in v or "#" in v:
        raise ValueError("a guard is a one-line expression without '#'")
    return v


Guard = Annotated[str, AfterValidator(_one_line)]


class AddAgent(_Op):
    """Declare a new agent. `after`: wire an edge after -> name; `before`: name -> before;
    both, when after -> before is an edge: insert the agent on that edge."""

    op: Literal["add_agent"] = "add_agent"
    name: str = Field(pattern=NAME)
    agent: AgentDecl
    after: str | None = Field(None, pattern=NAME)
    before: str | None = Field(None, pattern=NAME)


class RemoveAgent(_Op):
    """Remove an agent, its edges and loops; with reconnect, its predecessors are connected
    to its successors (keeping the guards of the edges into it)."""

    op: Literal["remove_agent"] = "remove_agent"
    name: str = Field(pattern=NAME)
    reconnect: bool = False


class ReplaceAgent(_Op):
    """Replace an agent's declaration (its comments and place are kept)."""

    op: Literal["replace_agent"] = "replace_agent"
    name: str = Field(pattern=NAME)
    agent: AgentDecl


class AddEdge(_Op):
    """Add a flow edge src -> dst, optionally guarded by a boolean expression."""

    op: Literal["add_edge"] = "add_edge"
    src: str = Field(pattern=NAME)
    dst: str = Field(pattern=NAME)
    guard: Guard | None = None


class RemoveEdge(_Op):
    """Remove the flow edge src -> dst (or the loop between src and dst)."""

    op: Literal["remove_edge"] = "remove_edge"
    src: str = Field(pattern=NAME)
    dst: str = Field(pattern=NAME)


class RewireEdge(_Op):
    """Move one end (or both) of the edge src -> dst; its guard is kept."""

    op: Literal["rewire_edge"] = "rewire_edge"
    src: str = Field(pattern=NAME)
    dst: str = Field(pattern=NAME)
    new_src: str | None = Field(None, pattern=NAME)
    new_dst: str | None = Field(None, pattern=NAME)

    @model_validator(mode="after")
    def _moves(self) -> RewireEdge:
        if self.new_src is None and self.new_dst is None:
            raise ValueError("give new_src, new_dst or both")
        return self


class GuardEdge(_Op):
    """Set the guard of the edge src -> dst; null removes it."""

    op: Literal["guard_edge"] = "guard_edge"
    src: str = Field(pattern=NAME)
    dst: str = Field(pattern=NAME)
    guard: Guard | None


class SetPrompt(_Op):
    """Point one of an agent's prompt roles at a template file (relative to the workflow)."""

    op: Literal["set_prompt"] = "set_prompt"
    agent: str = Field(pattern=NAME)
    role: Literal["prompt", "user", "assistant"]
    path: str = Field(min_length=1)


class SetParam(_Op):
    """Set a value by dotted path, e.g. 'agents.DialogSynthesis.max_turns' or
    'evolution.pilot.batch'; missing mappings on the way are created; null removes the key."""

    op: Literal["set_param"] = "set_param"
    path: str = Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
    value: Any = None


OP_MODELS: tuple[type[_Op], ...] = (AddAgent, RemoveAgent, ReplaceAgent, AddEdge, RemoveEdge,
                                    RewireEdge, GuardEdge, SetPrompt, SetParam)
Op = Annotated[AddAgent | RemoveAgent | ReplaceAgent | AddEdge | RemoveEdge | RewireEdge
               | GuardEdge | SetPrompt | SetParam, Field(discriminator="op")]
_OP_ADAPTER: TypeAdapter = TypeAdapter(Op)
OP_NAMES = [m.model_fields["op"].default for m in OP_MODELS]


def op_dict(op: _Op) -> dict:
    """JSON-ready form of an op (only what was given, plus its `op`)."""
    return {"op": op.op, **op.model_dump(mode="json", by_alias=True, exclude_unset=True)}


class OpError(ValueError):
    """A malformed op; `diagnostics` holds its E601 diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("; ".join(d.message + (f" ({d.hint})" if d.hint else "")
                                   for d in diagnostics))


def parse_op(raw: Any) -> _Op:
    """An op from JSON text, a dict with 'op', or an LLM tool call {name, arguments}.
    Raises OpError (a ValueError) with E601 diagnostics when it is malformed."""
    diags = _op_problems(raw)
    if isinstance(diags, _Op):
        return diags
    raise OpError(diags)


def _op_problems(raw: Any) -> _Op | list[Diagnostic]:
    if isinstance(raw, _Op):  # a caller's op model may hold any Python value in `value`/`params`
        try:
            problem = value_problem({"op": raw.op, **raw.model_dump(by_alias=True, exclude_unset=True)},
                                    MAX_OP_DEPTH)
        except (RecursionError, ValueError, TypeError) as exc:
            problem = f"its values cannot be read ({type(exc).__name__})"
        return raw if problem is None else [_e601(f"{raw.op}: refused: {problem}", _VALUES_HINT)]
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return [_e601(f"op is not valid JSON: {exc.msg} at character {exc.pos}")]
        except (RecursionError, UnicodeDecodeError, ValueError) as exc:
            return [_e601(f"op is not readable JSON ({type(exc).__name__})", _VALUES_HINT)]
    if isinstance(raw, dict) and "op" not in raw and "function" in raw:
        raw = raw["function"]  # {"type": "function", "function": {...}}
    if isinstance(raw, dict) and "op" not in raw and "name" in raw and "arguments" in raw:
        args = raw["arguments"]
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except json.JSONDecodeError as exc:
                return [_e601(f"tool-call arguments are not valid JSON: {exc.msg}")]
            except (RecursionError, ValueError) as exc:
                return [_e601(f"tool-call arguments are not readable JSON ({type(exc).__name__})")]
        if not isinstance(args, dict):
            return [_e601("tool-call arguments must be a JSON object")]
        raw = {**args, "op": raw["name"]}
    if not isinstance(raw, dict):
        return [_e601(f"an op is a JSON object, not {type(raw).__name__}")]
    problem = value_problem(raw, MAX_OP_DEPTH)
    if problem is not None:
        kind = raw.get("op")
        return [_e601(f"{kind if isinstance(kind, str) and kind in OP_NAMES else 'op'}: refused: {problem}",
                      _VALUES_HINT)]
    kind = raw.get("op")
    if kind not in OP_NAMES:
        what = "missing 'op'" if kind is None else f"unknown op {kind!r}"
        return [_e601(what, name_hint(str(kind), OP_NAMES) if kind is not None
                      else known_list(OP_NAMES))]
    try:
        return _OP_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        return [_e601(f"{kind}: {'.'.join(str(p) for p in e['loc'][1:]) or 'op'}: {e['msg']}")
                for e in exc.errors()]


def op_json_schema() -> list[dict]:
    """One OpenAI function (tool) schema per op, for an LLM planner's tool calls."""
    tools = []
    for model in OP_MODELS:
        schema = _inline_refs(model.model_json_schema(by_alias=True))
        schema.pop("title", None)
        schema.pop("description", None)
        schema["properties"].pop("op", None)
        schema["required"] = [r for r in schema.get("required", []) if r != "op"]
        tools.append({"type": "function", "function": {
            "name": model.model_fields["op"].default,
            "description": " ".join((model.__doc__ or "").split()),
            "parameters": schema}})
    return tools


def _inline_refs(schema: dict) -> dict:
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(dict(defs[node["$ref"].rsplit("/", 1)[-1]]))
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)


def _e601(message: str, hint: str | None = None, span: Span = OP_SPAN) -> Diagnostic:
    return Diagnostic("E601", message, span, hint)
