"""The domain's offline task recipes (`offline:` in domain.yaml, docs/CONTRACTS.md §7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..base import WorkerError


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
