"""The driver: parse → resolve → check → lower → emit, collecting every diagnostic."""

from __future__ import annotations

import functools
import gc
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
def check_file(path: str | Path, text: str | None = None) -> Diagnostics:
    """All diagnostics of one program file (either kind)."""
    parsed = parse_program(path, text)
    if parsed.program is None:
        return parsed.diags
    if parsed.kind == "domain":
        check_domain(parsed)
        return parsed.diags
    ir = resolve_workflow(parsed)
    g = check_workflow(ir)
    if not parsed.diags.errors:
        lower(ir, g)
    return parsed.diags


@_no_gc
def compile_workflow(path: str | Path, text: str | None = None, *,
                     domain: str | None = None) -> tuple[Plan | None, Diagnostics]:
    """Compile a workflow; `domain` (a built-in name or a folder) replaces its `domain:`."""
    parsed = parse_program(path, text)
    if parsed.program is None:
        return None, parsed.diags
    if parsed.kind != "workflow":
        parsed.diags.error("E102", "expected a workflow program, found a domain program",
                           parsed.source.span(()), "compile a workflow; check a domain with 'eigen check'")
        return None, parsed.diags
    if domain is not None:  # a path given on the command line is relative to the caller
        ref = str(Path(domain).resolve()) if Path(domain).exists() else domain
        parsed.program = parsed.program.model_copy(update={"domain": ref})
    ir = resolve_workflow(parsed)
    g = check_workflow(ir)
    if parsed.diags.errors:
        return None, parsed.diags
    dag, cost = lower(ir, g)
    return Plan(ir, dag, cost, build_plan(ir, dag, cost)), parsed.diags
