"""The driver: parse → resolve → check → lower → emit, collecting every diagnostic."""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from .check import check_workflow
from .diagnostics import Diagnostics
from .domain import DomainSpec, check_domain
from .emit import build_plan
from .lower import Cost, lower
from .parse import parse_program
from .resolve import WorkflowIR, resolve_workflow


@dataclass
class Plan:
    """A compiled workflow: the executable DAG and the `plan.json` content."""

    ir: WorkflowIR
    graph: nx.DiGraph
    cost: Cost
    data: dict

    @property
    def hash(self) -> str:
        return self.data["hash"]

    @property
    def domain(self) -> DomainSpec | None:
        return self.ir.domain


def _no_gc(fn):
    """Pause the cyclic GC during a compile: it allocates many long-lived small objects and
    nothing cyclic worth collecting, and full collections were most of the time at 10k agents."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()
    return wrapper


@_no_gc
def check_file(path: str | Path, text: str | None = None, *, domain: str | None = None,
               allow: Iterable[str | Path] = ()) -> Diagnostics:
    """All diagnostics of one program file (either kind). `allow`: folders besides the
    program's own where the files it names may be (eigenlang.paths; `--allow-path`);
    `domain`: replaces a workflow's `domain:` (as for `compile_workflow`; a domain program
    ignores it)."""
    allow = list(allow)
    parsed = parse_program(path, text)
    if parsed.program is None:
        return parsed.diags
    if parsed.kind == "domain":
        check_domain(parsed, allow)
        return parsed.diags
    _use_domain(parsed, domain, allow)
    ir = resolve_workflow(parsed, allow)
    g = check_workflow(ir)
    if not parsed.diags.errors:
        lower(ir, g)
    return parsed.diags


def _use_domain(parsed, domain: str | None, allow: list) -> None:
    """Replace a parsed workflow's `domain:` with one the caller names (a built-in name or a
    folder); a path is relative to the caller, and its folder is allowed (eigenlang.paths)."""
    if domain is None:
        return
    ref = str(Path(domain).resolve()) if Path(domain).exists() else domain
    if Path(domain).exists():
        allow.append(Path(ref) if Path(ref).is_dir() else Path(ref).parent)
    parsed.program = parsed.program.model_copy(update={"domain": ref})


@_no_gc
def compile_workflow(path: str | Path, text: str | None = None, *, domain: str | None = None,
                     allow: Iterable[str | Path] = ()) -> tuple[Plan | None, Diagnostics]:
    """Compile a workflow; `domain` (a built-in name or a folder) replaces its `domain:`; the
    caller names it, so its folder is allowed as `allow`'s folders are (eigenlang.paths)."""
    allow = list(allow)
    parsed = parse_program(path, text)
    if parsed.program is None:
        return None, parsed.diags
    if parsed.kind != "workflow":
        parsed.diags.error("E102", "expected a workflow program, found a domain program",
                           parsed.source.span(()), "compile a workflow; check a domain with 'eigen check'")
        return None, parsed.diags
    _use_domain(parsed, domain, allow)
    ir = resolve_workflow(parsed, allow)
    g = check_workflow(ir)
    if parsed.diags.errors:
        return None, parsed.diags
    dag, cost = lower(ir, g)
    return Plan(ir, dag, cost, build_plan(ir, dag, cost)), parsed.diags
