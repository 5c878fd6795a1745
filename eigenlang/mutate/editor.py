"""What each op does to a program's ruamel round-trip tree (comments kept); problems with
the edit itself (an unknown agent, an edge that does not exist) are E601 diagnostics."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from ..diagnostics import Diagnostic, Span, did_you_mean, name_hint
from ..fmt import FlowStmt, parse_flow_lines, render_flow_lines
from ..source import SourceFile, to_plain
from ..surface import AgentDecl, WorkflowProgram
from .flowedit import add_edge, edit_edges, flow_edges
from .ops import (AddAgent, AddEdge, GuardEdge, RemoveAgent, RemoveEdge, ReplaceAgent, RewireEdge,
                  SetParam, SetPrompt, _e601)
from .yamledit import delete_key, insert_key, set_key, to_yaml


class Editor:
    """Edits one round-trip tree in place; problems with the edit go to `errors`."""

    def __init__(self, src: SourceFile):
        self.src, self.doc = src, src.data
        self.errors: list[Diagnostic] = []

    # -- lookups ---------------------------------------------------------------------------
    def fail(self, message: str, where: tuple = (), hint: str | None = None) -> None:
        self.errors.append(_e601(message, hint, self.src.span(where, key=True) if where else
                                 Span(self.src.path, 1, 1)))

    def agents(self) -> CommentedMap | None:
        if "workflow" not in self.doc:
            self.fail("this op edits a workflow; this program is not one")
            return None
        agents = self.doc.get("agents")
        if not isinstance(agents, CommentedMap):
            self.fail("the workflow has no 'agents' mapping")
            return None
        return agents

    def known(self, *names: str | None) -> bool:
        agents = self.agents()
        if agents is None:
            return False
        for name in names:
            if name is not None and name not in agents:
                self.fail(f"unknown agent '{name}'", ("agents",), name_hint(name, agents))
        return not self.errors

    def flow(self) -> list[FlowStmt] | None:
        text = self.doc.get("flow")
        if not isinstance(text, str):
            self.fail("the workflow has no 'flow' text")
            return None
        return parse_flow_lines(text)

    def save_flow(self, stmts: list[FlowStmt]) -> None:
        self.doc["flow"] = LiteralScalarString(render_flow_lines(stmts))

    def no_edge(self, src: str, dst: str, stmts: list[FlowStmt]) -> None:
        out = [f"{a} -> {b}" for a, b, _ in flow_edges(stmts) if a == src]
        self.fail(f"no edge {src} -> {dst} in the flow", ("flow",),
                  did_you_mean(f"{src} -> {dst}", out) or
                  (f"edges from {src}: {', '.join(out)}" if out else f"{src} has no outgoing edge"))

    # -- agents ----------------------------------------------------------------------------
    def add_agent(self, op: AddAgent) -> None:
        agents = self.agents()
        if agents is None:
            return
        if op.name in agents:
            self.fail(f"agent '{op.name}' already exists", ("agents", op.name),
                      "use replace_agent to change it")
            return
        if not self.known(op.after, op.before) or (stmts := self.flow()) is None:
            return
        keys = list(agents)
        pos = (keys.index(op.after) + 1 if op.after else
               keys.index(op.before) if op.before else len(keys))
        insert_key(agents, pos, op.name, to_yaml(_agent_data(op.agent)))
        edges = flow_edges(stmts)
        if op.after and op.before and any(e[:2] == (op.after, op.before) for e in edges):
            stmts = edit_edges(stmts, lambda es: [x for a, b, g in es for x in (
                [(a, op.name, g), (op.name, b, None)] if (a, b) == (op.after, op.before)
                else [(a, b, g)])])
        else:
            if op.after:
                stmts = add_edge(stmts, op.after, op.name, None)
            if op.before:
                stmts = add_edge(stmts, op.name, op.before, None)
        self.save_flow(stmts)

    def remove_agent(self, op: RemoveAgent) -> None:
        if not self.known(op.name) or (stmts := self.flow()) is None:
            return
        edges = flow_edges(stmts)
        preds = [(a, g) for a, b, g in edges if b == op.name and a != op.name]
        succs = [b for a, b, _ in edges if a == op.name and b != op.name]
        stmts = [s for s in stmts if not (s.loop and op.name in (s.loop.check, s.loop.repair))]
        stmts = edit_edges(stmts, lambda es: [e for e in es if op.name not in e[:2]])
        if op.reconnect:
            for p, guard in preds:
                for s in succs:
                    if p != s and not any(e[:2] == (p, s) for e in flow_edges(stmts)):
                        stmts = add_edge(stmts, p, s, guard)
        delete_key(self.doc["agents"], op.name)
        self.save_flow(stmts)

    def replace_agent(self, op: ReplaceAgent) -> None:
        if not self.known(op.name):
            return
        old, new = self.doc["agents"][op.name], _agent_data(op.agent)
        if not isinstance(old, CommentedMap):
            set_key(self.doc["agents"], op.name, to_yaml(new))
            return
        for key in [k for k in old if k not in new]:
            delete_key(old, key)
        for key, value in new.items():
            if to_plain(old.get(key)) != value or key not in old:
                set_key(old, key, to_yaml(value))

    def set_prompt(self, op: SetPrompt) -> None:
        if self.known(op.agent):
            agent = self.doc["agents"][op.agent]
            if not isinstance(agent, CommentedMap):
                self.fail(f"agent '{op.agent}' is not a mapping", ("agents", op.agent))
                return
            set_key(agent, op.role, op.path)

    # -- edges -----------------------------------------------------------------------------
    def add_edge(self, op: AddEdge) -> None:
        if not self.known(op.src, op.dst) or (stmts := self.flow()) is None:
            return
        if any(e[:2] == (op.src, op.dst) for e in flow_edges(stmts)):
            self.fail(f"the edge {op.src} -> {op.dst} exists already", ("flow",),
                      "use guard_edge to change its guard")
            return
        self.save_flow(add_edge(stmts, op.src, op.dst, op.guard))

    def remove_edge(self, op: RemoveEdge) -> None:
        if not self.known(op.src, op.dst) or (stmts := self.flow()) is None:
            return
        loops = [s for s in stmts if s.loop and {s.loop.check, s.loop.repair} == {op.src, op.dst}]
        if loops:
            self.save_flow([s for s in stmts if s not in loops])
        elif any(e[:2] == (op.src, op.dst) for e in flow_edges(stmts)):
            self.save_flow(edit_edges(stmts, lambda es: [e for e in es if e[:2] != (op.src, op.dst)]))
        else:
            self.no_edge(op.src, op.dst, stmts)

    def rewire_edge(self, op: RewireEdge) -> None:
        new = (op.new_src or op.src, op.new_dst or op.dst)
        if not self.known(op.src, op.dst, *new) or (stmts := self.flow()) is None:
            return
        edges = flow_edges(stmts)
        if not any(e[:2] == (op.src, op.dst) for e in edges):
            self.no_edge(op.src, op.dst, stmts)
        elif new != (op.src, op.dst) and any(e[:2] == new for e in edges):
            self.fail(f"the edge {new[0]} -> {new[1]} exists already", ("flow",),
                      "remove_edge the old one instead")
        else:
            self.save_flow(edit_edges(stmts, lambda es: [
                (*new, g) if (a, b) == (op.src, op.dst) else (a, b, g) for a, b, g in es]))

    def guard_edge(self, op: GuardEdge) -> None:
        if not self.known(op.src, op.dst) or (stmts := self.flow()) is None:
            return
        if not any(e[:2] == (op.src, op.dst) for e in flow_edges(stmts)):
            self.no_edge(op.src, op.dst, stmts)
            return
        self.save_flow(edit_edges(stmts, lambda es: [
            (a, b, op.guard) if (a, b) == (op.src, op.dst) else (a, b, g) for a, b, g in es]))

    # -- parameters ------------------------------------------------------------------------
    def set_param(self, op: SetParam) -> None:
        parts = op.path.split(".")
        if "workflow" in self.doc:
            allowed = [f.alias or n for n, f in WorkflowProgram.model_fields.items()]
            if parts[0] not in allowed:
                self.fail(f"unknown setting '{parts[0]}'", (), name_hint(parts[0], allowed))
                return
            if parts[0] == "agents" and len(parts) > 1 and not self.known(parts[1]):
                return
        node: Any = self.doc
        for i, part in enumerate(parts[:-1]):
            key: Any = int(part) if isinstance(node, CommentedSeq) and part.isdigit() else part
            if isinstance(node, CommentedMap):
                if key not in node:
                    if op.value is None:
                        return  # removing what is not there: nothing to do
                    set_key(node, key, CommentedMap())
            elif not (isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node)):
                self.fail(f"cannot set '{op.path}': '{'.'.join(parts[:i])}' is not a mapping",
                          tuple(parts[:i]))
                return
            node = node[key]
        last = parts[-1]
        if isinstance(node, CommentedSeq) and last.isdigit() and int(last) < len(node):
            node[int(last)] = to_yaml(op.value)
        elif not isinstance(node, CommentedMap):
            self.fail(f"cannot set '{op.path}': '{'.'.join(parts[:-1])}' is not a mapping",
                      tuple(parts[:-1]))
        elif op.value is None:
            if last in node:
                delete_key(node, last)
        else:
            set_key(node, last, to_yaml(op.value))


def _agent_data(agent: AgentDecl) -> dict:
    return agent.model_dump(mode="json", by_alias=True, exclude_unset=True)
