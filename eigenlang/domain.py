"""Domain programs: resolve and check a parsed domain into a `DomainSpec`.

A `DomainSpec` is everything the runtime needs to build an environment: the database schema,
tools with their JSON schemas, parsed preconditions and implementation references, and the
trajectory rules. Implementation files are only *read* here (to check that the named
functions exist, with Python's `ast`); the runtime imports them.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Diagnostics, Span, name_hint
from .expr import check_expr, parse_expr
from .parse import Parsed, parse_program
from .surface import DatabaseDecl, DomainProgram, FieldDecl, ToolDecl
from .types import BOOL, STR, DictT, Field, ListT, ModelT, Schema, Type, UnionT, parse_type

_TRAJECTORY = Schema.builtin_trajectory()


@dataclass(frozen=True)
class ImplRef:
    file: Path
    function: str

    def __str__(self) -> str:
        return f"{self.file.name}:{self.function}"


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
    error: str
    span: Span


@dataclass
class ToolSpec:
    name: str
    kind: str
    description: str
    params: dict[str, ParamSpec]
    returns: Type | None
    impl: ImplRef
    requires: list[PreconditionSpec]
    span: Span
    schema: Schema  # the schema whose models param types refer to
    side: str = "agent"

    def params_json_schema(self) -> dict:
        props: dict[str, Any] = {}
        defs: dict[str, Any] = {}
        for name, p in self.params.items():
            js = dict(self.schema.json_schema(p.type))
            defs.update(js.pop("$defs", {}))
            js.pop("$schema", None)
            if p.description:
                js["description"] = p.description
            props[name] = js
        out: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": [n for n, p in self.params.items() if p.required],
            "additionalProperties": False,
        }
        if defs:
            out["$defs"] = defs
        return out

    def openai_schema(self) -> dict:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": self.params_json_schema()}}


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

    def all_tools(self) -> dict[str, ToolSpec]:
        return {**self.tools, **self.user_tools}


def builtin_domains_dir() -> Path:
    return Path(os.environ.get("EIGEN_DOMAINS_DIR", Path(__file__).resolve().parents[1] / "domains"))


def find_domain(ref: str | Path, base: Path | None = None) -> Path | None:
    """A domain reference (a built-in name, a folder, or a domain.yaml) → its domain.yaml."""
    candidates = []
    ref_path = Path(ref)
    if base is not None and not ref_path.is_absolute():
        candidates.append(base / ref_path)
    candidates += [ref_path, builtin_domains_dir() / str(ref)]
    for c in candidates:
        if c.is_dir() and (c / "domain.yaml").is_file():
            return c / "domain.yaml"
        if c.is_file():
            return c
    return None


def load_domain(path: str | Path) -> tuple[DomainSpec | None, Diagnostics]:
    """Parse and check a domain program (a folder, a name, or a domain.yaml)."""
    found = find_domain(path)
    parsed = parse_program(found or Path(path))
    if parsed.kind not in (None, "domain"):
        parsed.diags.error("E102", f"expected a domain program, found a {parsed.kind}",
                           parsed.source.span(()))
        return None, parsed.diags
    spec = check_domain(parsed) if parsed.program is not None else None
    return (spec if not parsed.diags.errors else None), parsed.diags


def check_domain(parsed: Parsed) -> DomainSpec:
    """Resolve and check a parsed domain program; diagnostics go to `parsed.diags`."""
    prog: DomainProgram = parsed.program  # type: ignore[assignment]
    src, diags = parsed.source, parsed.diags
    root = parsed.path.parent

    policy = ""
    if prog.policy:
        ppath = root / prog.policy
        if ppath.is_file():
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
    impls = _ImplChecker(root, parsed)

    scope_base: dict[str, Type] = {"db": ModelT(prog.database.root), "now": STR}
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
        source=src.text)


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
    if not d and t not in (BOOL,) and getattr(t, "name", None) not in ("bool", "any"):
        parsed.diags.error("E303", f"a condition must be boolean, this is {t}",
                           parsed.source.span(path))
    return expr


def _tool(parsed: Parsed, path: tuple, name: str, t: ToolDecl, schema: Schema,
          scope_base: dict[str, Type], impls: "_ImplChecker", side: str) -> ToolSpec:
    params: dict[str, ParamSpec] = {}
    for pname, p in t.params.items():
        decl = _field_decl(p)
        ppath = path + ("params", pname) + (("type",) if isinstance(p, FieldDecl) else ())
        ty = _type(parsed, ppath, decl.type)
        has_default = isinstance(p, FieldDecl) and "default" in p.model_fields_set
        required = decl.required if decl.required is not None else not has_default
        params[pname] = ParamSpec(ty or STR, decl.type, decl.description, required, decl.default)
    returns = _type(parsed, path + ("returns",), t.returns) if t.returns else None
    if returns is not None:
        parsed.diags.extend(_check_type_names(schema, returns, parsed.source.span(path + ("returns",))))
    for pname, p in params.items():
        parsed.diags.extend(_check_type_names(schema, p.type, parsed.source.span(path + ("params", pname))))
    scope = {**scope_base, **{n: p.type for n, p in params.items()}}
    requires = []
    for i, pre in enumerate(t.requires):
        cpath = path + ("requires", i, "check")
        e = _expr(parsed, cpath, pre.check, scope, schema)
        requires.append(PreconditionSpec(e, pre.check, pre.error, parsed.source.span(cpath)))
    impl = impls.ref(path + ("impl",), t.impl) or ImplRef(parsed.path.parent / "missing.py", name)
    return ToolSpec(name, t.kind, t.description, params, returns, impl, requires,
                    parsed.source.span(path, key=True), schema, side)


class _ImplChecker:
    """Checks 'file.py:function' references by reading the file's syntax tree (no import)."""

    def __init__(self, root: Path, parsed: Parsed):
        self.root, self.parsed = root, parsed
        self._defs: dict[Path, set[str] | None] = {}

    def _functions(self, file: Path) -> set[str] | None:
        if file not in self._defs:
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
                self._defs[file] = {n.name for n in tree.body
                                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            except (OSError, SyntaxError, ValueError):
                self._defs[file] = None
        return self._defs[file]

    def ref(self, path: tuple, text: str | None) -> ImplRef | None:
        if not text:
            return None
        src, diags = self.parsed.source, self.parsed.diags
        where = src.span(path)
        if ":" not in text:
            diags.error("E208", f"implementation '{text}' should be 'file.py:function'", where)
            return None
        fname, func = text.rsplit(":", 1)
        file = (self.root / fname).resolve()
        if not file.is_file():
            diags.error("E107", f"implementation file not found: {fname}", where)
            return None
        funcs = self._functions(file)
        if funcs is None:
            diags.error("E208", f"{fname} has a Python syntax error", where)
            return None
        if func not in funcs:
            diags.error("E208", f"no function '{func}' in {fname}", where, name_hint(func, funcs))
            return None
        return ImplRef(file, func)
