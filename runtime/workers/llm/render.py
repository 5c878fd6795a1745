"""An agent's prompt templates, rendered with its inputs and the template globals.

The scope is exactly what `eigen check` checks templates against (eigenlang.catalog
TEMPLATE_GLOBALS, plus each input artifact under its snake_case name), so a template that
passes the checker renders. Every template renders in eigenlang.templates' sandbox, checked
or not (a prompt version read back from a run directory, a library caller's text): no Python
internals, no `lipsum`/`cycler`/`joiner`/`namespace`. `{% include %}` resolves inside the
workflow's prompt folders only (no absolute names, no `..`, no symlink out of them).
`tojson` writes compact JSON with sorted keys: prompts carry database entries and artifacts,
and the spaces would only cost tokens.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eigenlang.catalog import snake

from ..base import WorkerContext, WorkerError

_ENVS: dict[tuple[str, ...], Any] = {}
_TEMPLATES: dict[tuple, Any] = {}  # (folders, text) → compiled template: compile once per process
_LOCK = threading.Lock()
# The `world` global: up to WORLD_ENTRIES entries of each top-level collection, in full, while
# a collection's sample stays under WORLD_CHARS of JSON (always one entry at least): airline
# flights run to 4.5k characters each, and the sample is there to show real ids, not to copy
# the database into every prompt. `params.world_entries` changes the count per agent.
WORLD_ENTRIES = 5
WORLD_CHARS = 6_000


def _jinja(dirs: Sequence[str | Path]) -> Any:
    """One sandboxed environment per set of include folders (templates cached inside it)."""
    key = tuple(str(d) for d in dirs)
    with _LOCK:
        env = _ENVS.get(key)
        if env is None:
            from eigenlang.templates import ConfinedLoader, environment

            env = environment(ConfinedLoader(list(key)))
            env.policies["json.dumps_kwargs"] = {"sort_keys": True, "separators": (",", ":")}
            _ENVS[key] = env
        return env


def domain_info(ctx: WorkerContext) -> dict:
    """The `domain` global (DomainInfo): what every prompt may say about the world."""
    d = ctx.domain
    return {"name": d.name, "description": d.description or "", "policy": d.policy or "",
            "now": str(d.now or ""), "tools": ctx.env.tool_schemas("agent"),
            "user_tools": ctx.env.tool_schemas("user")}


def world_sample(db: Mapping[str, Any] | None, rng: random.Random, entries: int = WORLD_ENTRIES,
                 budget: int = WORLD_CHARS, focus: Sequence[str] = ()) -> dict:
    """The `world` global (WorldSample): `counts` of every top-level collection (a dict of
    entries by id, or a list) and a `sample` of each, entries in full; top-level values that
    are not collections are shown whole. Entries named in `focus` (the ids of a seed's
    context) come first, so a task is written about the real records; the rest are drawn
    with `rng` from the sorted keys. The sample is a function of db, rng and focus only."""
    counts: dict[str, int] = {}
    sample: dict[str, Any] = {}
    wanted = set(focus)
    for name in sorted(db or {}):
        value = db[name]
        if isinstance(value, Mapping):
            keys: list = sorted(value)
            named = [k for k in keys if k in wanted]
        elif isinstance(value, list):
            keys = list(range(len(value)))
            named = [i for i in keys if _own_id(value[i]) in wanted]
        else:
            sample[name] = value
            continue
        named_set = set(named)
        rest = [k for k in keys if k not in named_set]
        drawn = sorted(rng.sample(rest, min(max(entries - len(named), 0), len(rest))))
        picked = _fit(named + drawn, value, budget)
        counts[name] = len(value)
        sample[name] = {k: value[k] for k in picked} if isinstance(value, Mapping) else [value[i] for i in picked]
    return {"counts": counts, "sample": sample}


def _own_id(entry: Any) -> Any:
    """A list entry's own id: its first `*_id` field (`bill_id` of a bill that also names
    its `customer_id`), the convention of the domains' generators."""
    if isinstance(entry, Mapping):
        return next((v for k, v in entry.items() if str(k).endswith("_id")), None)
    return None


def _fit(keys: list, coll: Any, budget: int) -> list:
    """The leading `keys` whose entries' JSON fits in `budget` characters (one at least)."""
    out, used = [], 0
    for k in keys:
        size = len(json.dumps(coll[k], separators=(",", ":"), default=str))
        if out and used + size > budget:
            break
        out.append(k)
        used += size
    return out


def context_ids(inputs: dict[str, dict]) -> list[str]:
    """The ids an input artifact's `context` names (a ScenarioSeed's, a TaskSpec's), sorted."""
    ids: set[str] = set()
    for artifact in inputs.values():
        context = artifact.get("context") if isinstance(artifact, Mapping) else None
        for v in (context.values() if isinstance(context, Mapping) else ()):
            ids.update(x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str))
    return sorted(ids)


def scope(ctx: WorkerContext, inputs: dict[str, dict], seed: int) -> dict:
    params = ctx.settings.get("params") if isinstance(ctx.settings.get("params"), dict) else {}
    n = params.get("world_entries")
    n = n if isinstance(n, int) and not isinstance(n, bool) else WORLD_ENTRIES
    # its own stream, seeded by the render seed (drawn from ctx.rng): the two templates of a
    # dialogue, rendered with one seed, see the same sample, and no draw of ctx.rng is taken
    world = world_sample(ctx.world.db if ctx.world is not None else None, random.Random(f"eigen:world:{seed}"),
                         n, focus=context_ids(inputs))
    out: dict[str, Any] = {
        "domain": domain_info(ctx), "world": world, "agent": ctx.agent, "params": params,
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
    except jinja2.TemplateError as exc:  # SecurityError (the sandbox said no) is one
        raise WorkerError(f"{role} template does not render: {type(exc).__name__}: {exc}") from None
