"""An agent's prompt templates, rendered with its inputs and the template globals.

The scope is exactly what `eigen check` checks templates against (eigenlang.catalog
TEMPLATE_GLOBALS, plus each input artifact under its snake_case name), so a template that
passes the checker renders. `{% include %}` resolves next to the workflow's prompt files.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eigenlang.catalog import snake

from ..base import WorkerContext, WorkerError

_ENVS: dict[tuple[str, ...], Any] = {}
_TEMPLATES: dict[tuple, Any] = {}  # (folders, text) → compiled template: compile once per process
_LOCK = threading.Lock()


def _jinja(dirs: Sequence[str | Path]) -> Any:
    """One jinja2 environment per set of include folders (templates cached inside it)."""
    key = tuple(str(d) for d in dirs)
    with _LOCK:
        env = _ENVS.get(key)
        if env is None:
            import jinja2

            env = jinja2.Environment(loader=jinja2.FileSystemLoader(list(key)),
                                     undefined=jinja2.StrictUndefined, autoescape=False,
                                     keep_trailing_newline=True)
            _ENVS[key] = env
        return env


def domain_info(ctx: WorkerContext) -> dict:
    """The `domain` global (DomainInfo): what every prompt may say about the world."""
    d = ctx.domain
    return {"name": d.name, "description": d.description or "", "policy": d.policy or "",
            "now": str(d.now or ""), "tools": ctx.env.tool_schemas("agent"),
            "user_tools": ctx.env.tool_schemas("user")}


def scope(ctx: WorkerContext, inputs: dict[str, dict], seed: int) -> dict:
    params = ctx.settings.get("params") if isinstance(ctx.settings.get("params"), dict) else {}
    out: dict[str, Any] = {
        "domain": domain_info(ctx), "agent": ctx.agent, "params": params,
        "constraints": list(params.get("constraints") or []),
        "examples": list(params.get("examples") or []), "seed": seed}
    out.update({snake(t): v for t, v in inputs.items()})
    return out


def render(ctx: WorkerContext, role: str, inputs: dict[str, dict], seed: int,
           dirs: Sequence[str | Path] = ()) -> str:
    """The agent's `role` template (prompt, user, assistant) rendered; WorkerError when the
    agent has no such template or it does not render (a missing field in an input...)."""
    text = (ctx.prompts or {}).get(role)
    if not text:
        raise WorkerError(f"agent {ctx.agent} has no {role!r} prompt template")
    import jinja2

    try:
        key = (tuple(str(d) for d in dirs), text)
        template = _TEMPLATES.get(key)
        if template is None:
            template = _TEMPLATES[key] = _jinja(dirs).from_string(text)
        return template.render(scope(ctx, inputs, seed)).strip()
    except jinja2.TemplateError as exc:
        raise WorkerError(f"{role} template does not render: {type(exc).__name__}: {exc}") from None
