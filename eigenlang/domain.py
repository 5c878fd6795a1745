"""Domain programs: resolve and check a parsed domain into a `DomainSpec`.

A `DomainSpec` is everything the runtime needs to build an environment: the database schema,
tools with their JSON schemas, parsed preconditions and implementation references, and the
trajectory rules. Implementation files are only *read* here (eigenlang.impl_check: the
named functions exist and their parameters fit the declarations, by Python's `ast`); the
runtime imports them, so a domain's Python runs when a domain is loaded for running
(docs/security.md). Every file a domain names must lie inside its folder (eigenlang.paths):
an E109 otherwise. A tool may instead be declarative, `impl: {return: EXPR}`
(eigenlang.declarative), and then has no Python at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .declarative import ExprImpl, check_expr_impl
from .diagnostics import Diagnostic, Diagnostics, Span, name_hint
from .expr import check_expr, parse_expr
from .impl_check import ImplChecker, ImplRef
from .message import MessageTemplate, check_message, parse_message
from .parse import Parsed, parse_program
from .paths import PathPolicy, builtin_domains_dir
from .surface import ActionDecl, DatabaseDecl, DomainProgram, ExprImplDecl, FieldDecl, ToolDecl
from .types import BOOL, DATETIME, STR, DictT, Field, ListT, ModelT, Schema, Type, UnionT, parse_type

_TRAJECTORY = Schema.builtin_trajectory()
__all__ = ["ActionSpec", "DomainSpec", "ExprImpl", "ImplRef", "ParamSpec", "PolicySpec",
           "PreconditionSpec", "RuleSpec", "ToolSpec", "check_domain", "find_domain",
           "load_domain", "params_json_schema"]

@dataclass
class ParamSpec:
    type: Type
    type_text: str
    description: str | None = None
    required: bool = True
    default: Any = None


@dataclass
class PreconditionSpec:
    expr: Any
    text: str
    error: str  # as written
    span: Span
    message: MessageTemplate | None = None  # `error` with its {param} placeholders parsed

    def template(self) -> MessageTemplate:
        return self.message or MessageTemplate.literal(self.error or f"precondition failed: {self.text}")


@dataclass
class PolicySpec:
    """A per-tool policy check: when `expr` is false on the state before the call, the call
    still runs and the trajectory records a violation of `rule`."""

    rule: str
    expr: Any
    text: str
    description: str  # as written
    span: Span
    message: MessageTemplate | None = None  # `description` with its placeholders parsed

    def template(self) -> MessageTemplate:
        return self.message or MessageTemplate.literal(self.description)


def params_json_schema(params: dict[str, ParamSpec], schema: Schema) -> dict:
    """The JSON Schema of a parameter list (a tool's, an action's)."""
    props: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    for name, p in params.items():
        js = dict(schema.json_schema(p.type))
        defs.update(js.pop("$defs", {}))
        js.pop("$schema", None)
        if p.description:
            js["description"] = p.description
        props[name] = js
    out: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "required": [n for n, p in params.items() if p.required],
        "additionalProperties": False,
    }
    if defs:
        out["$defs"] = defs
    return out


@dataclass
class ToolSpec:
    name: str
    kind: str
    description: str
    params: dict[str, ParamSpec]
    returns: Type | None
    impl: ImplRef | ExprImpl  # Python, or a declarative expression
    requires: list[PreconditionSpec]
    span: Span
    schema: Schema  # the schema whose models param types refer to
    side: str = "agent"
    policy: list[PolicySpec] = field(default_factory=list)

    def params_json_schema(self) -> dict:
        return params_json_schema(self.params, self.schema)

    def openai_schema(self) -> dict:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": self.params_json_schema()}}


@dataclass
class ActionSpec:
    """An environment action (`env.act`): set-up and assertion functions that no model is
    offered. `side` is whose state it is about (τ²-bench's env_type); the implementation gets
    the same `ctx` as a tool's."""

    name: str
    side: str
    description: str
    params: dict[str, ParamSpec]
    returns: Type | None
    impl: ImplRef | ExprImpl
    span: Span
    schema: Schema

    def params_json_schema(self) -> dict:
        return params_json_schema(self.params, self.schema)


@dataclass
class RuleSpec:
    name: str
    description: str
    expr: Any
    text: str | None
    span: Span


@dataclass
class DomainSpec:
    name: str
    root: Path
    description: str
    policy: str
    now: str
    schema: Schema
    user_schema: Schema | None
    tools: dict[str, ToolSpec]
    user_tools: dict[str, ToolSpec]
    rules: dict[str, RuleSpec]
    generate: ImplRef | None
    generate_user: ImplRef | None
    sync: ImplRef | None
    offline_seed: ImplRef | None = None  # scenarios.py:seed — the offline backend's task recipes
    offline_task: ImplRef | None = None
    source: str = ""  # the program text (hashed into plans)
    actions: dict[str, ActionSpec] = field(default_factory=dict)  # env.act; never offered to a model

    def all_tools(self) -> dict[str, ToolSpec]:
        return {**self.tools, **self.user_tools}



def find_domain(ref: str | Path, base: Path | None = None, paths: PathPolicy | None = None) -> Path | None:
    """A domain reference (a built-in name, a folder, or a domain.yaml) → its domain.yaml:
    next to `base` first, then as given, then among the built-ins. With `paths`, the first
    candidate inside its roots wins; one outside is returned only when no candidate is inside
    (the caller reports it)."""
    candidates = []
    ref_path = Path(ref)
    if base is not None and not ref_path.is_absolute():
        candidates.append(base / ref_path)
    candidates += [ref_path, builtin_domains_dir() / str(ref)]
    found = []
    for c in candidates:
        if c.is_dir() and (c / "domain.yaml").is_file():
            found.append(c / "domain.yaml")
        elif c.is_file():
            found.append(c)
    inside = [f for f in found if paths is None or paths.allows(f)]
    return (inside or found or [None])[0]


def load_domain(path: str | Path, allow: Iterable[str | Path] = ()) -> tuple[DomainSpec | None, Diagnostics]:
    """Parse and check a domain program (a folder, a name, or a domain.yaml). Its files must
    lie in its folder or under `allow`."""
    found = find_domain(path)
    parsed = parse_program(found or Path(path))
    if parsed.kind not in (None, "domain"):
        parsed.diags.error("E102", f"expected a domain program, found a {parsed.kind}",
                           parsed.source.span(()))
        return None, parsed.diags
    spec = check_domain(parsed, allow) if parsed.program is not None else None
    return (spec if not parsed.diags.errors else None), parsed.diags


def check_domain(parsed: Parsed, allow: Iterable[str | Path] = ()) -> DomainSpec:
    """Resolve and check a parsed domain program; diagnostics go to `parsed.diags`."""
    prog: DomainProgram = parsed.program  # type: ignore[assignment]
    src, diags = parsed.source, parsed.diags
    root = parsed.path.parent
    paths = PathPolicy.for_program(parsed.path, allow)

    policy = ""
    if prog.policy:
        ppath = root / prog.policy
        if not paths.allows(ppath):
            paths.refuse(diags, "policy file", prog.policy, src.span(("policy",)))
        elif ppath.is_file():
            policy = ppath.read_text(encoding="utf-8")
        else:
            diags.error("E107", f"policy file not found: {prog.policy}", src.span(("policy",)))
    try:
        datetime.fromisoformat(prog.now)
    except ValueError:
        diags.error("E108", f"'now' is not an ISO date-time: {prog.now!r}", src.span(("now",)),
                    "write it like \"2024-05-15T15:00:00\"")

    schema = _schema(parsed, ("database",), prog.database)
    user_schema = _schema(parsed, ("user_database",), prog.user_database) if prog.user_database else None
    impls = ImplChecker(root, parsed, paths)

    scope_base: dict[str, Type] = {"db": ModelT(prog.database.root), "now": DATETIME}
    if user_schema is not None and prog.user_database:
        scope_base["user_db"] = ModelT(prog.user_database.root)
    merged = _merged(schema, user_schema)

    tools = {n: _tool(parsed, ("tools", n), n, t, merged, scope_base, impls, "agent")
             for n, t in prog.tools.items()}
    user_tools = {n: _tool(parsed, ("user_tools", n), n, t, merged, scope_base, impls, "user")
                  for n, t in prog.user_tools.items()}
    for n in set(tools) & set(user_tools):
        diags.error("E106", f"'{n}' is both an agent tool and a user tool",
                    src.span(("user_tools", n), key=True))
    actions = {n: _action(parsed, ("actions", n), n, a, merged, scope_base, impls)
               for n, a in prog.actions.items()}
    if prog.actions and user_schema is None:
        for n, a in prog.actions.items():
            if a.side == "user":
                diags.error("E108", f"action '{n}' is on the user side, but the domain has no user_database",
                            src.span(("actions", n, "side")))

    rules: dict[str, RuleSpec] = {}
    rule_schema = _merged(merged, _TRAJECTORY)
    rule_scope = {**scope_base, "initial_db": scope_base["db"],
                  "calls": ListT(ModelT("Call")), "messages": ListT(ModelT("Message"))}
    for name, r in prog.rules.items():
        expr = None
        if r.check:
            expr = _expr(parsed, ("rules", name, "check"), r.check, rule_scope, rule_schema)
        rules[name] = RuleSpec(name, r.description, expr, r.check, src.span(("rules", name), key=True))

    return DomainSpec(
        name=prog.domain, root=root, description=prog.description, policy=policy, now=prog.now,
        schema=schema, user_schema=user_schema, tools=tools, user_tools=user_tools, rules=rules,
        generate=impls.ref(("database", "generate"), prog.database.generate),
        generate_user=impls.ref(("user_database", "generate"),
                                prog.user_database.generate if prog.user_database else None),
        sync=impls.ref(("sync",), prog.sync),
        offline_seed=impls.ref(("offline", "seed"), prog.offline.seed) if prog.offline else None,
        offline_task=impls.ref(("offline", "task"), prog.offline.task) if prog.offline else None,
        source=src.text, actions=actions)


# ----------------------------------------------------------------------------- helpers
def _field_decl(f: str | FieldDecl) -> FieldDecl:
    return FieldDecl(type=f) if isinstance(f, str) else f


def _type(parsed: Parsed, path: tuple, text: str) -> Type | None:
    t, d = parse_type(text, parsed.source.origin(path))
    parsed.diags.extend(d)
    return t


def _schema(parsed: Parsed, path: tuple, db: DatabaseDecl) -> Schema:
    aliases: dict[str, Type] = {}
    for name, text in db.types.items():
        t = _type(parsed, path + ("types", name), text)
        if t is not None:
            aliases[name] = t
    models: dict[str, dict[str, Field]] = {}
    for mname, fields in db.models.items():
        models[mname] = {}
        for fname, f in fields.items():
            decl = _field_decl(f)
            fpath = path + ("models", mname, fname) + (("type",) if isinstance(f, FieldDecl) else ())
            t = _type(parsed, fpath, decl.type)
            if t is None:
                continue
            required = decl.required if decl.required is not None else (
                "default" not in (f.model_fields_set if isinstance(f, FieldDecl) else set()))
            models[mname][fname] = Field(type=t, required=required, default=decl.default,
                                         description=decl.description,
                                         span=parsed.source.span(path + ("models", mname, fname), key=True))
    schema = Schema(root=db.root, models=models, aliases=aliases)
    parsed.diags.extend(schema.check_names())
    if db.root not in models:
        parsed.diags.error("E203", f"database root '{db.root}' is not a declared model",
                           parsed.source.span(path + ("root",)), name_hint(db.root, models))
    return schema


def _check_type_names(schema: Schema, t: Type, span: Span) -> list:
    """E203 for model names in a tool's param or return type that the schema lacks."""
    out = []
    known = list(schema.models) + list(schema.aliases)
    for name in _model_names(t):
        if name not in schema.models and name not in schema.aliases:
            out.append(Diagnostic("E203", f"unknown type '{name}'", span, name_hint(name, known)))
    return out


def _model_names(t: Any) -> list[str]:
    if isinstance(t, ModelT):
        return [t.name]
    if isinstance(t, ListT):
        return _model_names(t.item)
    if isinstance(t, DictT):
        return _model_names(t.key) + _model_names(t.value)
    if isinstance(t, UnionT):
        return [n for o in t.options for n in _model_names(o)]
    return []


def _merged(a: Schema, b: Schema | None) -> Schema:
    if b is None:
        return a
    return Schema(root=a.root, models={**a.models, **b.models}, aliases={**a.aliases, **b.aliases})


def _expr(parsed: Parsed, path: tuple, text: str, scope: dict[str, Type], schema: Schema) -> Any:
    expr, d = parse_expr(text, parsed.source.origin(path))
    parsed.diags.extend(d)
    if expr is None:
        return None
    t, d = check_expr(expr, scope, schema)
    parsed.diags.extend(d)
    # a part with an error is `any`, which absorbs the whole type: a type that is still not
    # boolean is so whatever that error was, and is reported with it
    if t not in (BOOL,) and getattr(t, "name", None) not in ("bool", "any"):
        parsed.diags.error("E303", f"a condition must be boolean, this is {t}",
                           parsed.source.span(path))
    return expr


def _signature(parsed: Parsed, path: tuple, decl: ToolDecl | ActionDecl,
               schema: Schema) -> tuple[dict[str, ParamSpec], Type | None]:
    """The typed parameters and return type of a tool or an action (E203 for unknown models)."""
    params: dict[str, ParamSpec] = {}
    for pname, p in decl.params.items():
        fd = _field_decl(p)
        ppath = path + ("params", pname) + (("type",) if isinstance(p, FieldDecl) else ())
        ty = _type(parsed, ppath, fd.type)
        has_default = isinstance(p, FieldDecl) and "default" in p.model_fields_set
        required = fd.required if fd.required is not None else not has_default
        params[pname] = ParamSpec(ty or STR, fd.type, fd.description, required, fd.default)
    returns = _type(parsed, path + ("returns",), decl.returns) if decl.returns else None
    if returns is not None:
        parsed.diags.extend(_check_type_names(schema, returns, parsed.source.span(path + ("returns",))))
    for pname, p in params.items():
        parsed.diags.extend(_check_type_names(schema, p.type, parsed.source.span(path + ("params", pname))))
    return params, returns


def _message(parsed: Parsed, path: tuple, text: str, params: dict[str, ParamSpec],
             schema: Schema) -> MessageTemplate:
    """A message with placeholders, checked against the parameters (E701/E702 at the text)."""
    origin = parsed.source.origin(path)
    template, diags = parse_message(text, origin)
    parsed.diags.extend(diags)
    parsed.diags.extend(check_message(template, {n: p.type for n, p in params.items()}, schema, origin))
    return template


def _tool(parsed: Parsed, path: tuple, name: str, t: ToolDecl, schema: Schema,
          scope_base: dict[str, Type], impls: ImplChecker, side: str) -> ToolSpec:
    params, returns = _signature(parsed, path, t, schema)
    scope = {**scope_base, **{n: p.type for n, p in params.items()}}
    requires = []
    for i, pre in enumerate(t.requires):
        cpath = path + ("requires", i, "check")
        e = _expr(parsed, cpath, pre.check, scope, schema)
        message = _message(parsed, path + ("requires", i, "error"), pre.error, params, schema)
        requires.append(PreconditionSpec(e, pre.check, pre.error, parsed.source.span(cpath), message))
    policy: list[PolicySpec] = []
    for i, pc in enumerate(t.policy):
        cpath = path + ("policy", i, "check")
        if any(p.rule == pc.rule for p in policy):
            parsed.diags.error("E106", f"policy rule '{pc.rule}' appears twice in tool '{name}'",
                               parsed.source.span(path + ("policy", i, "rule")))
        e = _expr(parsed, cpath, pc.check, scope, schema)
        message = _message(parsed, path + ("policy", i, "description"), pc.description, params, schema)
        policy.append(PolicySpec(pc.rule, e, pc.check, pc.description, parsed.source.span(cpath), message))
    impl = _impl(parsed, path, name, t, t.kind, scope, schema, returns, params, impls)
    return ToolSpec(name, t.kind, t.description, params, returns, impl, requires,
                    parsed.source.span(path, key=True), schema, side, policy)


def _action(parsed: Parsed, path: tuple, name: str, a: ActionDecl, schema: Schema,
            scope_base: dict[str, Type], impls: ImplChecker) -> ActionSpec:
    params, returns = _signature(parsed, path, a, schema)
    scope = {**scope_base, **{n: p.type for n, p in params.items()}}
    impl = _impl(parsed, path, name, a, None, scope, schema, returns, params, impls)
    return ActionSpec(name, a.side, a.description, params, returns, impl,
                      parsed.source.span(path, key=True), schema)


def _impl(parsed: Parsed, path: tuple, name: str, decl: ToolDecl | ActionDecl, kind: str | None,
          scope: dict[str, Type], schema: Schema, returns: Type | None,
          params: dict[str, ParamSpec], impls: ImplChecker) -> ImplRef | ExprImpl:
    """A tool's or action's implementation: a checked Python reference whose parameters fit
    the declared params, or a declarative expression whose type fits `returns:`."""
    if isinstance(decl.impl, ExprImplDecl):
        found = check_expr_impl(parsed, path, decl.impl.return_, kind, scope, schema, returns)
        return found or ExprImpl(None, decl.impl.return_, parsed.source.span(path + ("impl",)))
    ref = impls.ref(path + ("impl",), decl.impl)
    impls.check_params(path, ref, params)
    return ref or ImplRef(parsed.path.parent / "missing.py", name)
