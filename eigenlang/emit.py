"""Stage 5 — emit: the plan artifact (`plan.json`) and its content hash.

The hash covers semantic content only: the program as data (so comments, whitespace and key
order do not count), the flow in canonical form, the prompt templates' text and the text of
the templates they include, and the domain (its program as data, policy text, its
implementation files, and every other `.py` file in its folder: a tool module may import a
helper by path). Two programs that mean the same thing hash the same; any change that can
change a run changes the hash. `eigen verify` runs a domain's code only when this hash
matches the run's, so it must cover all the code a domain can load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import networkx as nx

from .domain import DomainSpec
from .flow import render_flow
from .lower import Cost
from .resolve import WorkflowIR

PLAN_FORMAT = 1


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def domain_hash(domain: DomainSpec, *, code: bool = True) -> str:
    """The domain's content hash. `code=False` gives the hash run directories of format 1
    recorded (before every `.py` file of the folder was covered); `eigen verify` accepts it
    only for domains it trusts anyway (built-ins, `--domain`)."""
    from .parse import parse_program  # local: avoid an import cycle at module load

    parsed = parse_program(domain.root / "domain.yaml", domain.source)
    impl_files = sorted({t.impl.file for t in domain.all_tools().values() if hasattr(t.impl, "file")} |
                        {r.file for r in (domain.generate, domain.generate_user, domain.sync,
                                      domain.offline_seed, domain.offline_task) if r})
    content = {
        "program": parsed.source.plain,
        "policy": domain.policy,
        "impl": {f.name: sha256(f.read_bytes()) for f in impl_files if f.is_file()},
    }
    if code:
        content["code"] = python_files(domain.root)
    return sha256(canonical_json(content))


def python_files(root: Path) -> dict[str, str]:
    """{path relative to `root`: sha256} of every `.py` file under the folder (symlinked
    folders not followed, `__pycache__` and hidden folders skipped), in path order."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(folder) / name
                try:
                    digest = sha256(path.read_bytes())
                except OSError:
                    digest = "unreadable"
                out[os.path.relpath(path, root).replace(os.sep, "/")] = digest
    return out


# `{% include "x" %}`, `{% import "x" as m %}`, `{% from "x" import m %}`, `{% extends "x" %}`
# with a literal name. A scan rather than a jinja2 parse: emit stays free of jinja2 at import
# time, and a name computed at render time cannot be known here anyway (the checker reports
# templates it cannot resolve).
_REFERENCE = re.compile(r"""\{%-?\s*(?:include|import|from|extends)\s+(["'])([^"'\n]+)\1""")


def included_templates(path: Path, text: str) -> list[tuple[Path, str | None]]:
    """Every template `text` (the file `path`) pulls in, transitively: (file, its text, or
    None when it cannot be read). Names resolve against the including template's folder, as
    the checker resolves them; depth-first in order of appearance, each file once, so the
    order is stable and a cycle (a.j2 includes b.j2 includes a.j2) ends."""
    out: list[tuple[Path, str | None]] = []
    seen = {path.resolve()}

    def visit(file: Path, body: str) -> None:
        for m in _REFERENCE.finditer(body):
            target = (file.parent / m.group(2)).resolve()
            if target in seen:
                continue
            seen.add(target)
            try:
                content: str | None = target.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                content = None  # the checker has reported it; the id still depends on the name
            out.append((target, content))
            if content is not None:
                visit(target, content)

    visit(path, text)
    return out


def prompt_id(path: Path, text: str) -> str:
    """`<file name>@<12 hex>`: the template's text and, when it includes others, theirs too,
    so editing a shared `_domain.j2` changes the id of every prompt that includes it. A
    template that includes nothing keeps the plain `sha256(text)` id (the form the prompt
    store also uses for evolved versions)."""
    included = included_templates(path, text)
    if not included:
        return f"{path.name}@{sha256(text)[:12]}"
    return f"{path.name}@{sha256(canonical_json({'text': text, 'includes': _included(path, included)}))[:12]}"


def _included(path: Path, included: list[tuple[Path, str | None]]) -> list[list]:
    """[[name relative to the template's folder, text], ...]: no absolute paths, so the id
    and the hash are the same on every machine and checkout."""
    base = path.parent.resolve()
    return [[os.path.relpath(f, base).replace(os.sep, "/"), body] for f, body in included]


def build_plan(ir: WorkflowIR, dag: nx.DiGraph, cost: Cost) -> dict:
    prompts: dict[str, dict] = {}
    for a in ir.agents.values():
        for role, file in a.templates.items():
            text = file.read_text(encoding="utf-8")
            prompts[f"{a.name}.{role}"] = {"file": _rel(file, ir.base), "id": prompt_id(file, text),
                                           "text": text}
    if ir.judge_template:
        text = ir.judge_template.read_text(encoding="utf-8")
        prompts["judge.prompt"] = {"file": _rel(ir.judge_template, ir.base),
                                   "id": prompt_id(ir.judge_template, text), "text": text}
    nodes = []
    for n in nx.topological_sort(dag) if nx.is_directed_acyclic_graph(dag) else sorted(dag.nodes):
        d = dag.nodes[n]
        nodes.append({"id": n, "agent": d["agent"], "kind": d["kind"], "round": d["round"],
                      "in": d["inputs"], "out": d["outputs"], "llm_calls": d["llm_calls"],
                      "prompts": {role: prompts[f"{d['agent']}.{role}"]["id"]
                                  for role in d["templates"] if f"{d['agent']}.{role}" in prompts},
                      "settings": _settings(ir, d["agent"])})
    edges = [{"src": u, "dst": v, "guard": d.get("guard"), "loop": d.get("loop", False)}
             for u, v, d in sorted(dag.edges(data=True), key=lambda e: (e[0], e[1]))]
    dom = ir.domain
    plan = {
        "format": PLAN_FORMAT,
        "workflow": ir.program.workflow,
        "description": ir.program.description,
        "domain": {
            "name": dom.name if dom else None,
            "ref": ir.program.domain,
            "path": str(dom.root) if dom else None,
            "hash": domain_hash(dom) if dom else None,
            "tools": [t.openai_schema() for t in dom.tools.values()] if dom else [],
            "user_tools": [t.openai_schema() for t in dom.user_tools.values()] if dom else [],
        },
        "start": [n for n in dag.nodes if dag.in_degree(n) == 0],
        "nodes": nodes,
        "edges": edges,
        "prompts": prompts,
        "judge": ir.program.judge.model_dump() if ir.program.judge else None,
        "evolution": ir.program.evolution.model_dump() if ir.program.evolution else None,
        "cost": {"worst_case_llm_calls": cost.worst_case_llm_calls,
                 "critical_path_llm_calls": cost.critical_path_llm_calls, "nodes": cost.nodes},
    }
    plan["hash"] = semantic_hash(ir, plan)
    return plan


def semantic_hash(ir: WorkflowIR, plan: dict) -> str:
    program = ir.program.model_dump(by_alias=True, exclude={"flow"})
    content = {
        "program": program,
        "flow": render_flow(ir.flow),
        "prompts": {k: v["text"] for k, v in plan["prompts"].items()},
        "includes": _includes_of(ir, plan["prompts"]),
        "domain": plan["domain"]["hash"],
    }
    return sha256(canonical_json(content))


def _includes_of(ir: WorkflowIR, prompts: dict[str, dict]) -> dict[str, list]:
    """Per prompt, the templates it includes with their text: they render too, so editing a
    shared block changes what the program means."""
    out = {}
    for key, p in prompts.items():
        file = ir.base / p["file"]  # `file` is relative to the workflow, or absolute
        included = included_templates(file, p["text"])
        if included:
            out[key] = _included(file, included)
    return out


def _settings(ir: WorkflowIR, agent: str) -> dict:
    decl = ir.agents[agent].decl
    return decl.model_dump(by_alias=True, exclude_none=True,
                           exclude={"prompt", "user", "assistant", "in_", "out", "worker"})


def _rel(file: Path, base: Path) -> str:
    try:
        return str(file.relative_to(base))
    except ValueError:
        return str(file)
