"""Edits of a flow's statements: its edges with their guards, back into chain statements
(the flow grammar's shapes), each statement keeping its place and comment."""

from __future__ import annotations

from ..fmt import FlowStmt

Edge = tuple[str, str, str | None]


def flow_edges(stmts: list[FlowStmt]) -> list[Edge]:
    """Every plain edge of the flow (loops excluded), with its guard."""
    return [e for s in stmts for e in _stmt_edges(s)]


def _stmt_edges(s: FlowStmt) -> list[Edge]:
    pairs = s.edges()
    return [(a, b, s.guard if i == len(pairs) - 1 else None) for i, (a, b) in enumerate(pairs)]


def _chains(edges: list[Edge], comment: str | None) -> list[FlowStmt]:
    """Edges back into statements: consecutive unguarded links make one chain (a guarded
    edge is a statement of its own, as the flow grammar wants)."""
    out: list[FlowStmt] = []
    for a, b, g in edges:
        last = out[-1] if out else None
        if last is not None and g is None and last.guard is None and last.names[-1] == a:
            last.names.append(b)
            last.guard = g
        else:
            out.append(FlowStmt(names=[a, b], guard=g))
    if out:
        out[0].comment = comment
    return out


def edit_edges(stmts: list[FlowStmt], fn) -> list[FlowStmt]:
    """Rewrite each chain statement's edges with `fn`, keeping the statement's place."""
    out: list[FlowStmt] = []
    for s in stmts:
        if s.names:
            out.extend(_chains(fn(_stmt_edges(s)), s.comment))
        else:
            out.append(s)
    return out


def add_edge(stmts: list[FlowStmt], src: str, dst: str, guard: str | None) -> list[FlowStmt]:
    """A new edge statement after the last statement that mentions src (else at the end)."""
    at = len(stmts)
    for i, s in enumerate(stmts):
        if src in s.names or (s.loop and src in (s.loop.check, s.loop.repair)):
            at = i + 1
    return stmts[:at] + [FlowStmt(names=[src, dst], guard=guard)] + stmts[at:]
