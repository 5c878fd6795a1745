"""Stage 3 — check: the semantic rules of a resolved workflow.

- the flow's shape: one start, no unbounded cycle, every declared agent used;
- types along edges: every input of an agent is produced on *every* path that reaches it
  (a must-availability data-flow over the flow graph, loops included);
- guards, loop conditions and evolution criteria are boolean expressions over what is in
  scope there (the source agent's outputs, or the run metrics);
- prompt templates parse, use only variables (and fields of them) that exist, reach no Python
  internals (eigenlang.templates), and include only files inside the program's folder.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.nodes as jn
import networkx as nx

from .catalog import METRICS, TEMPLATE_GLOBALS, snake
from .diagnostics import Span, display_path, name_hint
from .expr import check_expr, parse_expr
from .paths import PathPolicy
from .resolve import AgentIR, WorkflowIR
from .templates import FORBIDDEN_GLOBALS, environment, hazards, referenced_names, unsafe_name
from .types import BOOL, FLOAT, ModelT, Schema, Type, parse_type
from .diagnostics import Origin


def check_workflow(ir: WorkflowIR) -> nx.DiGraph:
    """Run every check; returns the flow graph (agents, edges incl. both loop directions)."""
    g = _flow_graph(ir)
    # with unknown agents in the flow the graph is partial: its shape would only mislead
    complete = all(n in ir.agents for n, _ in ir.flow.names)
    _check_shape(ir, g, complete)
    if complete:
        _check_types_flow(ir, g)
    _check_guards(ir)
    _check_evolution(ir)
    _check_templates(ir)
    return g


def _flow_graph(ir: WorkflowIR) -> nx.DiGraph:
    g = nx.DiGraph()
    mentioned = {n for n, _ in ir.flow.names if n in ir.agents}
    g.add_nodes_from(sorted(mentioned))
    for e in ir.flow.edges:
        if e.src in ir.agents and e.dst in ir.agents:
            g.add_edge(e.src, e.dst, loop=False, span=e.span)
    for lp in ir.flow.loops:
        if lp.check in ir.agents and lp.repair in ir.agents:
            g.add_edge(lp.check, lp.repair, loop=True, span=lp.span)
            g.add_edge(lp.repair, lp.check, loop=True, span=lp.span)
    return g


def _check_shape(ir: WorkflowIR, g: nx.DiGraph, complete: bool) -> None:
    diags, src = ir.diags, ir.parsed.source
    plain = nx.DiGraph((u, v) for u, v, d in g.edges(data=True) if not d["loop"])
    plain.add_nodes_from(g.nodes)
    for cycle in sorted(nx.simple_cycles(plain), key=lambda c: sorted(c))[:10]:
        first = min(cycle)
        span = g.edges[cycle[cycle.index(first)], cycle[(cycle.index(first) + 1) % len(cycle)]]["span"]
        path = " -> ".join(cycle[cycle.index(first):] + cycle[:cycle.index(first)] + [first])
        diags.error("E401", f"unbounded cycle in flow: {path}", span,
                    "repeat work with a bounded loop: 'loop A <-> B until <expr> max N'")
    for lp in ir.flow.loops:
        if lp.repair not in g:
            continue
        outside_in = [u for u in g.predecessors(lp.repair) if u != lp.check]
        if outside_in:
            diags.error("E403", f"the repair agent '{lp.repair}' of a loop may only be entered "
                        f"from the loop, but '{outside_in[0]}' leads to it", lp.repair_span)
    starts = [n for n in g.nodes if g.in_degree(n) == 0] if complete else []
    flow_span = src.span(("flow",))
    if complete and g.nodes and not starts:
        diags.error("E402", "the flow has no start: every agent has a predecessor", flow_span)
    elif len(starts) > 1:
        diags.error("E402", f"the flow has several starts: {', '.join(starts)}", flow_span,
                    "connect them so that one agent starts every instance")
    for name, agent in ir.agents.items():
        if name not in g.nodes:
            diags.warning("E404", f"agent '{name}' is declared but not used in the flow",
                          agent.span)


def _check_types_flow(ir: WorkflowIR, g: nx.DiGraph) -> None:
    """Must-availability: avail(n) = ∩ over predecessors p of (avail(p) ∪ out(p))."""
    if not g.nodes:
        return
    universe = {t for a in ir.agents.values() for t in a.outputs}
    avail = {n: (set() if g.in_degree(n) == 0 else set(universe)) for n in g.nodes}
    # visit in depth-first preorder from the starts: on an acyclic flow one pass converges,
    # and each loop adds at most one more pass (name order would be quadratic on chains)
    order = list(nx.dfs_preorder_nodes(g, source=None, sort_neighbors=sorted))
    changed = True
    while changed:
        changed = False
        for n in order:
            preds = list(g.predecessors(n))
            if not preds:
                continue
            new = set.intersection(*[avail[p] | set(ir.agents[p].outputs) for p in preds])
            if new != avail[n]:
                avail[n], changed = new, True
    for n in sorted(g.nodes):
        agent = ir.agents[n]
        for i, t in enumerate(agent.inputs):
            if t in avail[n] or t not in ir.schema.models:
                continue
            producers = sorted(a for a in ir.agents if t in ir.agents[a].outputs)
            hint = (f"produced by {', '.join(producers)}, which does not precede '{n}' on every path"
                    if producers else f"no agent produces {t}; declare one with 'out: {t}'")
            in_path = ("agents", n, "in") + ((i,) if isinstance(agent.decl.in_, list) else ())
            where = ir.parsed.source.span(in_path) if "in_" in agent.decl.model_fields_set else agent.span
            ir.diags.error("E302", f"input '{t}' of agent '{n}' is not produced upstream", where, hint)


def output_scope(ir: WorkflowIR, agent: str) -> dict[str, Type]:
    """Names usable in a guard on an edge out of `agent`: its outputs' fields, and each output
    by its snake_case type name."""
    scope: dict[str, Type] = {}
    a = ir.agents.get(agent)
    for t in (a.outputs if a else []):
        for fname, f in ir.schema.models.get(t, {}).items():
            scope.setdefault(fname, f.type)
        scope[snake(t)] = ModelT(t)
    return scope


def _bool_expr(ir: WorkflowIR, expr, scope: dict[str, Type], schema: Schema, span: Span) -> None:
    if expr is None:
        return
    t, d = check_expr(expr, scope, schema)
    ir.diags.extend(d)
    # a part with an error is `any`, which absorbs the whole type: one still not boolean is
    # not boolean whatever that error was (eigenlang.domain reports conditions alike)
    if str(t) not in ("bool", "any"):
        ir.diags.error("E303", f"a condition must be boolean, this is {t}", span)


def _check_guards(ir: WorkflowIR) -> None:
    for e in ir.flow.edges:
        if e.guard is not None and e.src in ir.agents:
            _bool_expr(ir, e.guard, output_scope(ir, e.src), ir.schema, e.span)
    for lp in ir.flow.loops:
        if lp.until is not None and lp.check in ir.agents:
            _bool_expr(ir, lp.until, output_scope(ir, lp.check), ir.schema, lp.span)


def metric_scope(ir: WorkflowIR) -> dict[str, Type]:
    scope: dict[str, Type] = {m: FLOAT for m in METRICS}
    if ir.program.judge:
        scope.update({axis: FLOAT for axis in ir.program.judge.axes})
    return scope


def _check_evolution(ir: WorkflowIR) -> None:
    evo = ir.program.evolution
    if evo is None:
        return
    for path, text in ((("evolution", "pilot", "stop_when"), evo.pilot.stop_when),
                       (("evolution", "monitor", "drift_when"), evo.monitor.drift_when)):
        if text:
            expr, d = parse_expr(text, ir.parsed.source.origin(path))
            ir.diags.extend(d)
            _bool_expr(ir, expr, metric_scope(ir), ir.schema, ir.parsed.source.span(path))


# ---------------------------------------------------------------------------- templates
_JINJA = environment()


def template_scope(ir: WorkflowIR, agent: AgentIR | None) -> dict[str, Type]:
    scope: dict[str, Type] = {}
    for name, text in TEMPLATE_GLOBALS.items():
        scope[name], _ = parse_type(text, Origin("<builtin>", ((1, 1),)))
    for t in (agent.inputs if agent else []):
        scope[snake(t)] = ModelT(t)
    if agent is None:  # the judge sees every artifact
        for t in ir.schema.models:
            scope.setdefault(snake(t), ModelT(t))
    return scope


def _check_templates(ir: WorkflowIR) -> None:
    # an agent of unknown kind has unknown inputs: its templates cannot be checked fairly
    jobs = [(a, f) for a in ir.agents.values() if a.kind for f in a.templates.values()]
    if ir.judge_template:
        jobs.append((None, ir.judge_template))
    for agent, file in jobs:
        check_template(ir, file, template_scope(ir, agent), ir.schema)


def check_template(ir: WorkflowIR, file: Path, scope: dict[str, Type], schema: Schema,
                   _seen: frozenset = frozenset()) -> None:
    """Syntax, safety, variables and field chains of a template and of the templates it
    includes (imports, extends), which must lie inside the program's folder."""
    shown = _shown(ir, file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        ir.diags.error("E107", f"cannot read template: {exc}", Span(shown, 1, 1))
        return
    try:
        tree = _JINJA.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        ir.diags.error("E501", f"template syntax error: {exc.message}", Span(shown, exc.lineno or 1, 1))
        return
    for line, message, hint in hazards(tree):
        ir.diags.error("E502", message, Span(shown, line, 1), hint)
    policy = ir.paths or PathPolicy.for_program(ir.parsed.path)
    for line, name in referenced_names(tree):
        target = file.parent / name
        why = unsafe_name(name)
        if why is not None or not policy.allows(target):
            ir.diags.error("E109", f"included template {name!r} is outside the program's folder", Span(shown, line, 1),
                           why or "include files next to the template, inside the program's folder "
                           "(or allow their folder with --allow-path DIR)")
        elif not target.is_file():
            ir.diags.error("E107", f"included template not found: {name}", Span(shown, line, 1))
        elif target not in _seen:
            check_template(ir, target, scope, schema, _seen | {file})
    bound = _bound_names(tree)
    for node in tree.find_all(jn.Name):
        if node.ctx != "load" or node.name in bound or node.name in _JINJA.globals or node.name in FORBIDDEN_GLOBALS:
            continue
        if node.name not in scope:
            ir.diags.error("E207", f"unknown template variable '{node.name}'",
                           Span(shown, node.lineno, 1), name_hint(node.name, scope))
    for node in tree.find_all(jn.Getattr):
        chain = _attr_chain(node)
        if chain is None or chain[0] not in scope or chain[0] in bound:
            continue
        t: Type | None = scope[chain[0]]
        for i, attr in enumerate(chain[1:], start=1):
            if attr.startswith("_"):
                break  # E502 above
            t = schema.resolve(t) if t is not None else None
            if not isinstance(t, ModelT):
                break
            fields = schema.models.get(t.name, {})
            if attr not in fields:
                ir.diags.error("E204", f"'{'.'.join(chain[:i])}' ({t.name}) has no field '{attr}'",
                               Span(shown, node.lineno, 1), name_hint(attr, fields))
                break
            t = fields[attr].type


def _attr_chain(node: jn.Getattr) -> list[str] | None:
    attrs = []
    cur: jn.Node = node
    while isinstance(cur, jn.Getattr):
        attrs.append(cur.attr)
        cur = cur.node
    if not isinstance(cur, jn.Name):
        return None
    # only check the outermost Getattr of a chain (find_all visits the inner ones too)
    return [cur.name] + attrs[::-1]


def _bound_names(tree: jn.Template) -> set[str]:
    names: set[str] = set()
    for node in tree.find_all((jn.For, jn.Assign, jn.Macro, jn.With, jn.AssignBlock)):
        targets = [getattr(node, "target", None)] + list(getattr(node, "targets", []) or [])
        for tgt in targets:
            if tgt is not None:
                names |= {n.name for n in tgt.find_all(jn.Name)} | (
                    {tgt.name} if isinstance(tgt, jn.Name) else set())
        if isinstance(node, jn.Macro):
            names.add(node.name)
            names |= {a.name for a in node.args}
    names |= {"loop", "range", "true", "false", "none"}
    return names


def _shown(ir: WorkflowIR, file: Path) -> str:
    """The template's path as the user would write it from where they ran the command."""
    return display_path(Path(ir.parsed.source.path).parent / file.relative_to(ir.base)
                        if file.is_relative_to(ir.base) else file)
