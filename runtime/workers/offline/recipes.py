"""The domain's offline task recipes (`offline:` in domain.yaml, docs/CONTRACTS.md §7)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..base import WorkerError


class RecipeError(Exception):
    """A recipe's plan is broken (a bug in the domain's scenarios.py, e.g. a call of a tool
    the domain does not have): the engine records it as a crash of the recipe, not as an
    infeasible task."""

    crash_source = "recipe"

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message, where)
        self.crash_where = where

    def __str__(self) -> str:
        return str(self.args[0])


def recipe(domain: Any, which: str) -> Callable:
    """`seed` or `task` of the domain's recipes, loaded once per process."""
    ref = getattr(domain, f"offline_{which}", None)
    if ref is None:
        raise WorkerError(f"domain {domain.name!r} declares no offline task recipes "
                          f"(`offline: {{seed: ..., task: ...}}` in domain.yaml)")
    from runtime.env.impls import load_impl  # the loader tools use: by path, cached

    return load_impl(ref)


def has_recipes(domain: Any) -> bool:
    return getattr(domain, "offline_seed", None) is not None and \
        getattr(domain, "offline_task", None) is not None


def check_plan(domain: Any, intent: str, calls: list[dict]) -> None:
    """RecipeError when a planned call names no tool of its side."""
    from eigenlang.diagnostics import did_you_mean

    for i, call in enumerate(calls, 1):
        side = call.get("side", "agent")
        tools = (domain.tools if side == "agent" else getattr(domain, "user_tools", None)) or {}
        if call.get("name") not in tools:
            hint = did_you_mean(str(call.get("name")), [t for t in tools if not t.startswith("_")])
            which = "tool" if side == "agent" else "user tool"
            ref = getattr(domain, "offline_task", None)
            where = f"{Path(str(ref.file)).name}:{ref.function}" if ref is not None else None
            raise RecipeError(f"the {intent!r} recipe plans call {i} of an unknown {which} "
                              f"{call.get('name')!r}" + (f"; {hint}" if hint else ""), where)
