"""Stage 4 — lower: unroll bounded loops into an acyclic graph; count worst-case LLM calls.

`loop C <-> R until E max N` becomes the chain

    C  --not E-->  R#1 -> C#1  --not E-->  R#2 -> C#2 ... R#N -> C#N

and every other edge out of C (say `C -> V when accepted`) leaves from each round's copy of
C. An instance walks the DAG following edges whose guards hold; a node runs at most once per
instance, so the DAG bounds the work of every instance, and the static cost is a sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .resolve import WorkflowIR


@dataclass(frozen=True)
class Cost:
    worst_case_llm_calls: int  # every node of the unrolled DAG runs
    critical_path_llm_calls: int  # the most expensive single path from the start
    nodes: int


def node_id(agent: str, round_: int) -> str:
    return agent if round_ == 0 else f"{agent}#{round_}"


def lower(ir: WorkflowIR, flow_graph: nx.DiGraph) -> tuple[nx.DiGraph, Cost]:
    """The executable DAG: nodes carry agent, kind, in/out, loop round; edges carry guards."""
    dag = nx.DiGraph()
    loops_by_check = {lp.check: lp for lp in ir.flow.loops}
    loops_by_repair = {lp.repair: lp for lp in ir.flow.loops}

    def add(agent: str, round_: int) -> str:
        nid = node_id(agent, round_)
        a = ir.agents[agent]
        settings = a.decl.model_dump(by_alias=True)
        calls = a.kind.llm_calls(settings) if a.kind else 0
        dag.add_node(nid, agent=agent, kind=a.kind.name if a.kind else None, round=round_,
                     inputs=list(a.inputs), outputs=list(a.outputs), llm_calls=calls,
                     templates={r: str(p.relative_to(ir.base)) if p.is_relative_to(ir.base) else str(p)
                                for r, p in a.templates.items()})
        return nid

    def copies(agent: str) -> list[str]:
        if agent in loops_by_check:
            return [node_id(agent, r) for r in range(loops_by_check[agent].max_rounds + 1)]
        if agent in loops_by_repair:
            return [node_id(agent, r) for r in range(1, loops_by_repair[agent].max_rounds + 1)]
        return [node_id(agent, 0)]

    for agent in sorted(flow_graph.nodes):
        if agent in loops_by_check:
            for r in range(loops_by_check[agent].max_rounds + 1):
                add(agent, r)
        elif agent in loops_by_repair:
            for r in range(1, loops_by_repair[agent].max_rounds + 1):
                add(agent, r)
        else:
            add(agent, 0)

    for lp in ir.flow.loops:
        if lp.check not in ir.agents or lp.repair not in ir.agents:
            continue
        for r in range(1, lp.max_rounds + 1):
            dag.add_edge(node_id(lp.check, r - 1), node_id(lp.repair, r),
                         guard=f"not ({lp.until_text})", loop=True)
            dag.add_edge(node_id(lp.repair, r), node_id(lp.check, r), guard=None, loop=True)

    for e in ir.flow.edges:
        if e.src not in ir.agents or e.dst not in ir.agents:
            continue
        targets = [node_id(e.dst, 1 if e.dst in loops_by_repair else 0)]
        for s in copies(e.src):
            for t in targets:
                dag.add_edge(s, t, guard=e.guard_text, loop=False)

    if not nx.is_directed_acyclic_graph(dag):  # the checker reported the cycle already
        return dag, Cost(0, 0, dag.number_of_nodes())
    worst = sum(d["llm_calls"] for _, d in dag.nodes(data=True))
    best: dict[str, int] = {}
    for n in nx.topological_sort(dag):
        preds = [best[p] for p in dag.predecessors(n)]
        best[n] = dag.nodes[n]["llm_calls"] + (max(preds) if preds else 0)
    return dag, Cost(worst, max(best.values(), default=0), dag.number_of_nodes())
