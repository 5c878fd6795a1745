"""The driver: parse → resolve → check → lower → emit, collecting every diagnostic."""

from __future__ import annotations

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


def compile_workflow(path: str | Path, text: str | None = None) -> tuple[Plan | None, Diagnostics]:
    parsed = parse_program(path, text)
    if parsed.program is None:
        return None, parsed.diags
    if parsed.kind != "workflow":
        parsed.diags.error("E102", "expected a workflow program, found a domain program",
                           parsed.source.span(()), "compile a workflow; check a domain with 'eigen check'")
        return None, parsed.diags
    ir = resolve_workflow(parsed)
    g = check_workflow(ir)
    if parsed.diags.errors:
        return None, parsed.diags
    dag, cost = lower(ir, g)
    return Plan(ir, dag, cost, build_plan(ir, dag, cost)), parsed.diags
