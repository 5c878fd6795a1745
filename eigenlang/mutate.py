"""The mutation API: typed edits of a program that yield a new, checked version or diagnostics.

The workflow planner (an LLM) and people edit programs through the same operations:

    v0 = ProgramVersion.load("workflows/eigendata.yaml")
    v1 = apply(v0, AddEdge(src="UserIntent", dst="VerificationFunction"), reason="critique #3")
    if isinstance(v1, list):            # diagnostics: the edit was refused, v0 is untouched
        ...
    write_back(v1)                      # the YAML, with the author's comments kept

An edit works on the ruamel round-trip tree of the version's text, so comments survive; the
result is re-checked by the compiler with the version's own path (relative prompt and domain
references resolve as before) and refused when it has errors: an invalid program is never
returned. Problems with the edit itself (an unknown agent, an edge that does not exist, a
malformed op) are E601 diagnostics with a "did you mean" hint. Versions carry their parent's
hash and the reason of the edit, and a `Lineage` keeps them as JSONL.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from .compiler import check_file, compile_workflow
from .diagnostics import Diagnostic, Span, did_you_mean, known_list, name_hint
from .emit import canonical_json, sha256
from .fmt import (
    FlowStmt,
    dump_text,
    parse_flow_lines,
    put_before,
    put_tail,
    render_flow_lines,
    take_tail,
)
from .parse import parse_program
from .source import SourceFile, load_source, to_plain
from .surface import AgentDecl, Strict, WorkflowProgram

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
OP_SPAN = Span("<op>", 1, 1)


# ============================================================================ operations
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
    if isinstance(raw, _Op):
        return raw
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return [_e601(f"op is not valid JSON: {exc.msg} at character {exc.pos}")]
    if isinstance(raw, dict) and "op" not in raw and "function" in raw:
        raw = raw["function"]  # {"type": "function", "function": {...}}
    if isinstance(raw, dict) and "op" not in raw and "name" in raw and "arguments" in raw:
        args = raw["arguments"]
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except json.JSONDecodeError as exc:
                return [_e601(f"tool-call arguments are not valid JSON: {exc.msg}")]
        if not isinstance(args, dict):
            return [_e601("tool-call arguments must be a JSON object")]
        raw = {**args, "op": raw["name"]}
    if not isinstance(raw, dict):
        return [_e601(f"an op is a JSON object, not {type(raw).__name__}")]
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


# ============================================================================ versions
class InvalidProgram(ValueError):
    """A program that does not check, where a valid one is needed (ProgramVersion.load)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.render() for d in diagnostics))


class ProgramVersion(BaseModel):
    """One checked version of a program: its text, semantic hash, and where it came from."""

    model_config = ConfigDict(frozen=True)

    text: str
    hash: str  # the plan hash (workflow) or sha256 of the canonical data (domain)
    parent: str | None = None
    reason: str | None = None
    op: dict | None = None
    path: str

    @classmethod
    def load(cls, path: str | Path) -> ProgramVersion:
        """Read and check a program file; raises InvalidProgram when it has errors."""
        found = check_text(str(path), None)
        if isinstance(found, list):
            raise InvalidProgram(found)
        text, digest = found
        return cls(text=text, hash=digest, path=str(path))

    @property
    def program(self) -> Strict | None:
        """The surface model (WorkflowProgram or DomainProgram) of this version."""
        return parse_program(self.path, self.text).program


def check_text(path: str, text: str | None) -> tuple[str, str] | list[Diagnostic]:
    """(text, semantic hash) of a valid program; its errors otherwise."""
    src = load_source(path, text)
    if src.diags:
        return src.diags.sorted()
    data = src.data
    if isinstance(data, dict) and "workflow" in data:
        plan, diags = compile_workflow(path, src.text)
        digest = plan.hash if plan is not None else None
    else:
        diags = check_file(path, src.text)
        digest = sha256(canonical_json(to_plain(data)))
    errors = [d for d in diags.sorted() if d.severity == "error"]
    return errors if errors or digest is None else (src.text, digest)


class Lineage(list):
    """The versions of one program, oldest first; a version's parent must be in the lineage."""

    def __init__(self, versions: Any = ()):
        super().__init__()
        for v in versions:
            self.append(v)

    def append(self, version: ProgramVersion) -> None:  # type: ignore[override]
        if self and version.parent is not None and version.parent not in {v.hash for v in self}:
            raise ValueError(f"version {version.hash[:12]} has parent {version.parent[:12]}, "
                             "which is not in this lineage")
        super().append(version)

    @property
    def head(self) -> ProgramVersion | None:
        return self[-1] if self else None

    def get(self, digest: str) -> ProgramVersion | None:
        """The latest version with this hash."""
        return next((v for v in reversed(self) if v.hash == digest), None)

    def ancestry(self, digest: str | None = None) -> list[ProgramVersion]:
        """The chain from the root to the (latest) version with this hash, or to the head.

        An edit and its inverse give a hash seen before, so a parent is looked up among the
        versions *before* its child: the lineage is append-only, parents come first."""
        idx = next((i for i in range(len(self) - 1, -1, -1)
                    if digest is None or self[i].hash == digest), None)
        chain: list[ProgramVersion] = []
        while idx is not None:
            chain.append(self[idx])
            parent = self[idx].parent
            idx = next((j for j in range(idx - 1, -1, -1) if self[j].hash == parent), None) \
                if parent else None
        return chain[::-1]

    def save(self, path: str | Path) -> None:
        _atomic_write(Path(path), "".join(v.model_dump_json() + "\n" for v in self))

    @classmethod
    def load(cls, path: str | Path) -> Lineage:
        """Read a JSONL lineage; a malformed line raises ValueError naming its line number."""
        out = cls()
        for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(ProgramVersion.model_validate_json(line))
                except ValidationError as exc:
                    raise ValueError(f"{path}:{no}: not a program version: {exc}") from None
        return out


def write_back(version: ProgramVersion, path: str | Path | None = None) -> Path:
    """Write a version's YAML (to its own path by default), atomically."""
    target = Path(path if path is not None else version.path)
    _atomic_write(target, version.text)
    return target


def _atomic_write(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ============================================================================ applying edits
def apply(version: ProgramVersion, op: Any, reason: str) -> ProgramVersion | list[Diagnostic]:
    """Apply one edit (an op model, dict, JSON text or tool call); the new version, or the
    diagnostics why it was refused (the input version is never changed)."""
    parsed = _op_problems(op)
    if isinstance(parsed, list):
        return parsed
    src = load_source(version.path, version.text)
    if src.diags or not isinstance(src.data, CommentedMap):
        return src.diags.sorted() or [_e601("the program is not a YAML mapping")]
    edit = _Editor(src)
    getattr(edit, parsed.op)(parsed)
    if edit.errors:
        return edit.errors
    found = check_text(version.path, dump_text(src.data))
    if isinstance(found, list):
        return found
    text, digest = found
    return ProgramVersion(text=text, hash=digest, parent=version.hash, reason=reason,
                          op=op_dict(parsed), path=version.path)


def apply_many(version: ProgramVersion, ops: list[Any],
               reason: str) -> ProgramVersion | list[Diagnostic]:
    """Apply edits in order, each checked on the result of the one before; stops at the first
    refused op and returns its diagnostics (after an E601 saying which op it was).

    The result is one version whose parent is `version`: a batch of edits made for one
    reason is one step of the lineage. Its `op` is the op itself for a batch of one, else
    {"op": "batch", "ops": [...]}."""
    cur, done = version, []
    for i, op in enumerate(ops):
        result = apply(cur, op, reason)
        if isinstance(result, list):
            kind = op.op if isinstance(op, _Op) else (op.get("op") if isinstance(op, dict) else "?")
            return [_e601(f"op {i + 1} of {len(ops)} ({kind}) was refused; no op was applied")] + result
        cur = result
        done.append(result.op)
    if not done:
        return version
    return cur.model_copy(update={"parent": version.hash,
                                  "op": done[0] if len(done) == 1 else {"op": "batch", "ops": done}})


def _e601(message: str, hint: str | None = None, span: Span = OP_SPAN) -> Diagnostic:
    return Diagnostic("E601", message, span, hint)


class _Editor:
    """Edits one round-trip tree in place; problems with the edit go to `errors`."""

    def __init__(self, src: SourceFile):
        self.src, self.doc = src, src.data
        self.errors: list[Diagnostic] = []

    # -- lookups ---------------------------------------------------------------------------
    def fail(self, message: str, where: tuple = (), hint: str | None = None) -> None:
        self.errors.append(_e601(message, hint, self.src.span(where, key=True) if where else
                                 Span(self.src.path, 1, 1)))

    def agents(self) -> CommentedMap | None:
        if "workflow" not in self.doc:
            self.fail("this op edits a workflow; this program is not one")
            return None
        agents = self.doc.get("agents")
        if not isinstance(agents, CommentedMap):
            self.fail("the workflow has no 'agents' mapping")
            return None
        return agents

    def known(self, *names: str | None) -> bool:
        agents = self.agents()
        if agents is None:
            return False
        for name in names:
            if name is not None and name not in agents:
                self.fail(f"unknown agent '{name}'", ("agents",), name_hint(name, agents))
        return not self.errors

    def flow(self) -> list[FlowStmt] | None:
        text = self.doc.get("flow")
        if not isinstance(text, str):
            self.fail("the workflow has no 'flow' text")
            return None
        return parse_flow_lines(text)

    def save_flow(self, stmts: list[FlowStmt]) -> None:
        self.doc["flow"] = LiteralScalarString(render_flow_lines(stmts))

    def no_edge(self, src: str, dst: str, stmts: list[FlowStmt]) -> None:
        out = [f"{a} -> {b}" for a, b, _ in flow_edges(stmts) if a == src]
        self.fail(f"no edge {src} -> {dst} in the flow", ("flow",),
                  did_you_mean(f"{src} -> {dst}", out) or
                  (f"edges from {src}: {', '.join(out)}" if out else f"{src} has no outgoing edge"))

    # -- agents ----------------------------------------------------------------------------
    def add_agent(self, op: AddAgent) -> None:
        agents = self.agents()
        if agents is None:
            return
        if op.name in agents:
            self.fail(f"agent '{op.name}' already exists", ("agents", op.name),
                      "use replace_agent to change it")
            return
        if not self.known(op.after, op.before) or (stmts := self.flow()) is None:
            return
        keys = list(agents)
        pos = (keys.index(op.after) + 1 if op.after else
               keys.index(op.before) if op.before else len(keys))
        insert_key(agents, pos, op.name, to_yaml(_agent_data(op.agent)))
        edges = flow_edges(stmts)
        if op.after and op.before and any(e[:2] == (op.after, op.before) for e in edges):
            stmts = edit_edges(stmts, lambda es: [x for a, b, g in es for x in (
                [(a, op.name, g), (op.name, b, None)] if (a, b) == (op.after, op.before)
                else [(a, b, g)])])
        else:
            if op.after:
                stmts = add_edge(stmts, op.after, op.name, None)
            if op.before:
                stmts = add_edge(stmts, op.name, op.before, None)
        self.save_flow(stmts)

    def remove_agent(self, op: RemoveAgent) -> None:
        if not self.known(op.name) or (stmts := self.flow()) is None:
            return
        edges = flow_edges(stmts)
        preds = [(a, g) for a, b, g in edges if b == op.name and a != op.name]
        succs = [b for a, b, _ in edges if a == op.name and b != op.name]
        stmts = [s for s in stmts if not (s.loop and op.name in (s.loop.check, s.loop.repair))]
        stmts = edit_edges(stmts, lambda es: [e for e in es if op.name not in e[:2]])
        if op.reconnect:
            for p, guard in preds:
                for s in succs:
                    if p != s and not any(e[:2] == (p, s) for e in flow_edges(stmts)):
                        stmts = add_edge(stmts, p, s, guard)
        delete_key(self.doc["agents"], op.name)
        self.save_flow(stmts)

    def replace_agent(self, op: ReplaceAgent) -> None:
        if not self.known(op.name):
            return
        old, new = self.doc["agents"][op.name], _agent_data(op.agent)
        if not isinstance(old, CommentedMap):
            set_key(self.doc["agents"], op.name, to_yaml(new))
            return
        for key in [k for k in old if k not in new]:
            delete_key(old, key)
        for key, value in new.items():
            if to_plain(old.get(key)) != value or key not in old:
                set_key(old, key, to_yaml(value))

    def set_prompt(self, op: SetPrompt) -> None:
        if self.known(op.agent):
            agent = self.doc["agents"][op.agent]
            if not isinstance(agent, CommentedMap):
                self.fail(f"agent '{op.agent}' is not a mapping", ("agents", op.agent))
                return
            set_key(agent, op.role, op.path)

    # -- edges -----------------------------------------------------------------------------
    def add_edge(self, op: AddEdge) -> None:
        if not self.known(op.src, op.dst) or (stmts := self.flow()) is None:
            return
        if any(e[:2] == (op.src, op.dst) for e in flow_edges(stmts)):
            self.fail(f"the edge {op.src} -> {op.dst} exists already", ("flow",),
                      "use guard_edge to change its guard")
            return
        self.save_flow(add_edge(stmts, op.src, op.dst, op.guard))

    def remove_edge(self, op: RemoveEdge) -> None:
        if not self.known(op.src, op.dst) or (stmts := self.flow()) is None:
            return
        loops = [s for s in stmts if s.loop and {s.loop.check, s.loop.repair} == {op.src, op.dst}]
        if loops:
            self.save_flow([s for s in stmts if s not in loops])
        elif any(e[:2] == (op.src, op.dst) for e in flow_edges(stmts)):
            self.save_flow(edit_edges(stmts, lambda es: [e for e in es if e[:2] != (op.src, op.dst)]))
        else:
            self.no_edge(op.src, op.dst, stmts)

    def rewire_edge(self, op: RewireEdge) -> None:
        new = (op.new_src or op.src, op.new_dst or op.dst)
        if not self.known(op.src, op.dst, *new) or (stmts := self.flow()) is None:
            return
        edges = flow_edges(stmts)
        if not any(e[:2] == (op.src, op.dst) for e in edges):
            self.no_edge(op.src, op.dst, stmts)
        elif new != (op.src, op.dst) and any(e[:2] == new for e in edges):
            self.fail(f"the edge {new[0]} -> {new[1]} exists already", ("flow",),
                      "remove_edge the old one instead")
        else:
            self.save_flow(edit_edges(stmts, lambda es: [
                (*new, g) if (a, b) == (op.src, op.dst) else (a, b, g) for a, b, g in es]))

    def guard_edge(self, op: GuardEdge) -> None:
        if not self.known(op.src, op.dst) or (stmts := self.flow()) is None:
            return
        if not any(e[:2] == (op.src, op.dst) for e in flow_edges(stmts)):
            self.no_edge(op.src, op.dst, stmts)
            return
        self.save_flow(edit_edges(stmts, lambda es: [
            (a, b, op.guard) if (a, b) == (op.src, op.dst) else (a, b, g) for a, b, g in es]))

    # -- parameters ------------------------------------------------------------------------
    def set_param(self, op: SetParam) -> None:
        parts = op.path.split(".")
        if "workflow" in self.doc:
            allowed = [f.alias or n for n, f in WorkflowProgram.model_fields.items()]
            if parts[0] not in allowed:
                self.fail(f"unknown setting '{parts[0]}'", (), name_hint(parts[0], allowed))
                return
            if parts[0] == "agents" and len(parts) > 1 and not self.known(parts[1]):
                return
        node: Any = self.doc
        for i, part in enumerate(parts[:-1]):
            key: Any = int(part) if isinstance(node, CommentedSeq) and part.isdigit() else part
            if isinstance(node, CommentedMap):
                if key not in node:
                    if op.value is None:
                        return  # removing what is not there: nothing to do
                    set_key(node, key, CommentedMap())
            elif not (isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node)):
                self.fail(f"cannot set '{op.path}': '{'.'.join(parts[:i])}' is not a mapping",
                          tuple(parts[:i]))
                return
            node = node[key]
        last = parts[-1]
        if isinstance(node, CommentedSeq) and last.isdigit() and int(last) < len(node):
            node[int(last)] = to_yaml(op.value)
        elif not isinstance(node, CommentedMap):
            self.fail(f"cannot set '{op.path}': '{'.'.join(parts[:-1])}' is not a mapping",
                      tuple(parts[:-1]))
        elif op.value is None:
            if last in node:
                delete_key(node, last)
        else:
            set_key(node, last, to_yaml(op.value))


def _agent_data(agent: AgentDecl) -> dict:
    return agent.model_dump(mode="json", by_alias=True, exclude_unset=True)


# ============================================================================ flow edits
Edge = tuple[str, str, str | None]


def flow_edges(stmts: list[FlowStmt]) -> list[Edge]:
    """Every plain edge of the flow (loops excluded), with its guard."""
    return [e for s in stmts for e in _stmt_edges(s)]


def _stmt_edges(s: FlowStmt) -> list[Edge]:
    pairs = s.edges()
    return [(a, b, s.guard if i == len(pairs) - 1 else None) for i, (a, b) in enumerate(pairs)]


def _chains(edges: list[Edge], comment: str | None) -> list[FlowStmt]:
    """Edges back into statements: consecutive unguarded links make one chain (a guarded
    edge is a statement of its own, as the flow grammar wants)."""
    out: list[FlowStmt] = []
    for a, b, g in edges:
        last = out[-1] if out else None
        if last is not None and g is None and last.guard is None and last.names[-1] == a:
            last.names.append(b)
            last.guard = g
        else:
            out.append(FlowStmt(names=[a, b], guard=g))
    if out:
        out[0].comment = comment
    return out


def edit_edges(stmts: list[FlowStmt], fn) -> list[FlowStmt]:
    """Rewrite each chain statement's edges with `fn`, keeping the statement's place."""
    out: list[FlowStmt] = []
    for s in stmts:
        if s.names:
            out.extend(_chains(fn(_stmt_edges(s)), s.comment))
        else:
            out.append(s)
    return out


def add_edge(stmts: list[FlowStmt], src: str, dst: str, guard: str | None) -> list[FlowStmt]:
    """A new edge statement after the last statement that mentions src (else at the end)."""
    at = len(stmts)
    for i, s in enumerate(stmts):
        if src in s.names or (s.loop and src in (s.loop.check, s.loop.repair)):
            at = i + 1
    return stmts[:at] + [FlowStmt(names=[src, dst], guard=guard)] + stmts[at:]


# ============================================================================ YAML edits
def to_yaml(value: Any) -> Any:
    """JSON-like data as round-trip nodes: short scalar lists in flow style, text with line
    breaks as literal blocks."""
    if isinstance(value, dict):
        m = CommentedMap()
        for k, v in value.items():
            m[k] = to_yaml(v)
        return m
    if isinstance(value, list):
        seq = CommentedSeq(to_yaml(v) for v in value)
        if all(not isinstance(v, (dict, list)) for v in value) and len(str(value)) < 60:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and "\n" in value.strip("\n"):
        return LiteralScalarString(value)
    return value


def set_key(m: CommentedMap, key: Any, value: Any) -> None:
    """Set a key; the comment lines that followed the old value (or the map) stay in place."""
    if key in m:
        tail = take_tail(m, key)
        m[key] = value
    else:
        tail = take_tail(m, list(m)[-1]) if m else ""
        m[key] = value
    put_tail(m, key, tail)


def insert_key(m: CommentedMap, pos: int, key: Any, value: Any) -> None:
    """Insert a key at `pos`; the lines above the next key stay above it."""
    keys = list(m)
    tail = take_tail(m, keys[pos - 1]) if 0 < pos <= len(keys) else ""
    m.insert(pos, key, value)
    put_tail(m, key, tail)


def delete_key(m: CommentedMap, key: Any) -> None:
    """Delete a key; the lines after its value move to the key before it."""
    keys = list(m)
    tail = take_tail(m, key)
    i = keys.index(key)
    del m[key]
    if i > 0:
        put_tail(m, keys[i - 1], tail)
    elif len(keys) > 1:
        put_before(m, keys[1], tail)
