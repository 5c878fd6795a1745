"""Stage 2 — resolve: bind every name in a workflow to what it means.

Agents to worker kinds, input/output names to artifact types, prompt paths to template
files, `uses:` to the domain's tools, flow mentions to agents, and `domain:` to a checked
domain program. Unknown names get "did you mean" hints; a file outside the program's folder
(eigenlang.paths) is an E109. The result is a `WorkflowIR` that
the checker and the lowering pass read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import ARTIFACT_MODELS, TOOL_SELECTORS, VALIDATION_CHECKS, WORKERS, WorkerKind
from .diagnostics import Diagnostic, Origin, Span, name_hint
from .domain import DomainSpec, find_domain, load_domain
from .flow import Flow, parse_flow
from .parse import Parsed
from .paths import PathPolicy
from .surface import AgentDecl, FieldDecl, WorkflowProgram
from .types import Field, Schema, parse_type

# Agent keys every kind accepts; the rest must be in the worker kind's `keys`.
COMMON_KEYS = {"worker", "in", "out", "params"}
_KEY_FIELDS = {"prompt": "prompt", "uses": "uses", "user": "user", "assistant": "assistant",
               "max_turns": "max_turns", "checks": "checks"}


@dataclass
class AgentIR:
    name: str
    decl: AgentDecl
    kind: WorkerKind | None
    inputs: list[str]
    outputs: list[str]
    templates: dict[str, Path]  # role ('prompt', 'user', 'assistant') → template file
    span: Span


@dataclass
class WorkflowIR:
    parsed: Parsed
    program: WorkflowProgram
    base: Path
    domain: DomainSpec | None
    schema: Schema  # artifact models: built-ins plus the workflow's own `types:`
    agents: dict[str, AgentIR]
    flow: Flow
    judge_template: Path | None = None
    extra: list[Diagnostic] = field(default_factory=list)
    paths: PathPolicy | None = None  # where its files may be (None: its folder and the built-ins)

    @property
    def diags(self):
        return self.parsed.diags


def artifact_schema(parsed: Parsed | None = None, user_types: dict | None = None) -> Schema:
    """The built-in artifact models, plus user-declared ones (with positions when parsed)."""
    models: dict[str, dict[str, Field]] = {}
    for mname, fields in ARTIFACT_MODELS.items():
        models[mname] = {}
        for fname, text in fields.items():
            t, _ = parse_type(text, Origin("<builtin>", ((1, 1),)))
            models[mname][fname] = Field(type=t, required=True, default=None, description=None,
                                         span=Span("<builtin>", 1, 1))
    for mname, fields in (user_types or {}).items():
        models[mname] = {}
        for fname, f in fields.items():
            decl = FieldDecl(type=f) if isinstance(f, str) else f
            path = ("types", mname, fname) + (("type",) if isinstance(f, FieldDecl) else ())
            origin = parsed.source.origin(path) if parsed else Origin("<input>", ((1, 1),))
            t, d = parse_type(decl.type, origin)
            if parsed:
                parsed.diags.extend(d)
            if t is not None:
                models[mname][fname] = Field(type=t, required=decl.required is not False,
                                             default=decl.default, description=decl.description,
                                             span=origin.span(1, 1))
    return Schema(root=None, models=models, aliases={})


def resolve_workflow(parsed: Parsed, allow: Iterable[str | Path] = ()) -> WorkflowIR:
    """`allow`: folders outside the program's own where its files may also be (--allow-path)."""
    prog: WorkflowProgram = parsed.program  # type: ignore[assignment]
    src, diags = parsed.source, parsed.diags
    base = parsed.path.parent
    policy = PathPolicy.for_program(parsed.path, allow)

    domain = None
    found = find_domain(prog.domain, base, policy)
    if found is None:
        diags.error("E107", f"domain not found: {prog.domain!r}", src.span(("domain",)),
                    "name a built-in domain (airline, retail, telecom) or a folder with domain.yaml")
    elif not policy.allows(found):
        policy.refuse(diags, "domain", prog.domain, src.span(("domain",)))
    else:
        domain, ddiags = load_domain(found, allow)
        if ddiags.errors:
            diags.error("E107", f"domain {prog.domain!r} has {len(ddiags.errors)} error(s), listed "
                        f"with their own positions", src.span(("domain",)))
        diags.extend(ddiags)

    schema = artifact_schema(parsed, prog.types)
    diags.extend(schema.check_names())
    agents = {name: _agent(parsed, name, decl, schema, domain, policy)
              for name, decl in prog.agents.items()}

    flow, fdiags = parse_flow(prog.flow, src.origin(("flow",)))
    diags.extend(fdiags)
    known = set(agents) | parsed.dropped
    for name, span in flow.names:
        if name not in known:
            diags.error("E201", f"unknown agent '{name}' in flow", span, name_hint(name, agents))

    judge_template = None
    if prog.judge and prog.judge.prompt:
        judge_template = _template(parsed, ("judge", "prompt"), prog.judge.prompt, policy)
    return WorkflowIR(parsed, prog, base, domain, schema, agents, flow, judge_template, paths=policy)


def _template(parsed: Parsed, path: tuple, rel: str, policy: PathPolicy) -> Path | None:
    file = policy.folder / rel
    if not policy.allows(file):
        policy.refuse(parsed.diags, "prompt template", rel, parsed.source.span(path))
        return None
    if not file.is_file():
        parsed.diags.error("E107", f"prompt template not found: {rel}", parsed.source.span(path),
                           f"looked for {file}")
        return None
    return file


def _agent(parsed: Parsed, name: str, decl: AgentDecl, schema: Schema,
           domain: DomainSpec | None, policy: PathPolicy) -> AgentIR:
    src, diags = parsed.source, parsed.diags
    at = ("agents", name)
    kind_name = decl.worker or name
    kind = WORKERS.get(kind_name)
    if kind is None:
        where = src.span(at + ("worker",)) if decl.worker else src.span(at, key=True)
        diags.error("E201", f"unknown worker kind '{kind_name}'" +
                    ("" if decl.worker else f" (agent '{name}' has no 'worker:')"), where,
                    name_hint(kind_name, WORKERS))
    else:
        for key, attr in _KEY_FIELDS.items():
            if getattr(decl, attr) is not None and key not in kind.keys:
                diags.error("E103", f"'{key}' does not apply to a {kind.name} agent",
                            src.span(at + (key,), key=True),
                            f"{kind.name} takes: {', '.join(sorted(kind.keys | COMMON_KEYS))}")

    inputs = decl.inputs() if "in_" in decl.model_fields_set else list(kind.inputs if kind else [])
    outputs = decl.outputs() if decl.out is not None else list(kind.outputs if kind else [])
    for role, names in (("in", inputs), ("out", outputs)):
        for i, tname in enumerate(names):
            if tname not in schema.models:
                p = at + (role,) + ((i,) if isinstance(getattr(decl, "in_" if role == "in" else "out"), list) else ())
                diags.error("E203", f"unknown artifact type '{tname}'", src.span(p),
                            name_hint(tname, schema.models))

    templates: dict[str, Path] = {}
    for role in ("prompt", "user", "assistant"):
        rel = getattr(decl, role)
        if rel:
            t = _template(parsed, at + (role,), rel, policy)
            if t is not None:
                templates[role] = t

    uses = [decl.uses] if isinstance(decl.uses, str) else (decl.uses or [])
    tool_names = list(domain.all_tools()) if domain else []
    for i, sel in enumerate(uses):
        p = at + ("uses",) + ((i,) if isinstance(decl.uses, list) else ())
        if sel in TOOL_SELECTORS:
            continue
        if sel.startswith("tools.") and domain is not None:
            if sel[len("tools."):] not in tool_names:
                diags.error("E202", f"unknown tool '{sel[len('tools.'):]}'", src.span(p),
                            name_hint(sel[len("tools."):], tool_names))
        elif not sel.startswith("tools."):
            diags.error("E108", f"'uses' takes a tool selector, not {sel!r}", src.span(p),
                        name_hint(sel, list(TOOL_SELECTORS)))
    for i, check in enumerate(decl.checks or []):
        if check not in VALIDATION_CHECKS:
            diags.error("E108", f"unknown validation check '{check}'",
                        src.span(at + ("checks", i)), name_hint(check, VALIDATION_CHECKS))
    return AgentIR(name, decl, kind, inputs, outputs, templates, src.span(at, key=True))
