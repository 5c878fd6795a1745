"""The flow sub-language: edges, guards and bounded loops between agents.

`parse_flow` turns the `flow:` text into statements with positions. Guard and `until`
expressions are parsed by the expression grammar (`eigenlang.expr`) at their exact place.
Rendering (`render_flow`) is the inverse, used by the formatter and the mutation API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, Origin, Span
from .expr import parse_expr

MAX_FLOW_CHARS = 200_000
# A plain chain `A -> B -> C  # comment`, the bulk of a large flow, is read without the parser
# (ten times faster, same tokens). Names starting with a keyword go to the parser, whose
# lexer treats such a prefix as the keyword.
_CHAIN = re.compile(r"[ \t]*[A-Za-z_]\w*(?:[ \t]*->[ \t]*[A-Za-z_]\w*)*[ \t]*(?:#.*)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_]\w*", re.ASCII)
_KEYWORDS = ("when", "loop", "until", "max")


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    span: Span
    guard_text: str | None = None
    guard: object | None = None  # an expression AST (eigenlang.expr), when guarded


@dataclass(frozen=True)
class Loop:
    check: str  # the agent whose output decides (e.g. TrajectoryValidation)
    repair: str  # the agent that repairs (e.g. Modify)
    until_text: str
    until: object | None
    max_rounds: int
    span: Span
    check_span: Span
    repair_span: Span


@dataclass
class Flow:
    nodes: list[str] = field(default_factory=list)  # agents standing alone on a line
    edges: list[Edge] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    names: list[tuple[str, Span]] = field(default_factory=list)  # every agent mention


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("eigenlang.grammar").joinpath("flow.lark").read_text()
    return Lark(grammar, parser="lalr", strict=True, propagate_positions=True)


def parse_flow(text: str, origin: Origin, *, fast: bool = True) -> tuple[Flow, list[Diagnostic]]:
    """The statements of a flow; `fast=False` sends every line to the parser (for tests)."""
    diags: list[Diagnostic] = []
    flow = Flow()
    if len(text) > MAX_FLOW_CHARS:
        diags.append(Diagnostic("E005", f"flow too long ({len(text)} characters)", origin.span(1, 1)))
        return flow, diags
    # Parse line by line so one bad line does not hide errors on the others.
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        chain = _chain_tokens(line) if fast else None
        if chain is not None:
            _edge(chain, i, origin, flow, diags)
            continue
        try:
            tree = _parser().parse(line + "\n")
        except UnexpectedInput as exc:
            diags.append(_syntax_error(exc, line, i, origin))
            continue
        for stmt in tree.children:
            node = stmt.children[0]
            if node.data == "edge":
                _edge(node.children, i, origin, flow, diags)
            else:
                _loop(node, i, origin, flow, diags)
    return flow, diags


def _chain_tokens(line: str) -> list[Token] | None:
    """The NAME tokens of a plain chain line, as the parser would give them; else None."""
    if _CHAIN.fullmatch(line) is None:
        return None
    code = line.split("#", 1)[0]
    toks = [Token("NAME", m.group(), m.start(), 1, m.start() + 1, 1, m.end() + 1, m.end())
            for m in _NAME.finditer(code)]
    return None if any(t.startswith(_KEYWORDS) for t in toks) else toks


def _sub_origin(origin: Origin, line_no: int, col: int) -> Origin:
    """Origin of an expression that starts at `line_no:col` of the flow text."""
    at = origin.span(line_no, col)
    return Origin(origin.file, ((at.line, at.col),))


def _tok_span(tok: Token, line_no: int, origin: Origin) -> Span:
    return origin.span(line_no, tok.column, line_no, tok.end_column)


def _edge(children: list, line_no: int, origin: Origin, flow: Flow, diags: list) -> None:
    names = [t for t in children if t.type == "NAME"]
    guard_tok = next((t for t in children if t.type == "GUARD_TEXT"), None)
    for t in names:
        flow.names.append((str(t), _tok_span(t, line_no, origin)))
    if len(names) == 1 and guard_tok is None:
        flow.nodes.append(str(names[0]))
    guard = None
    if guard_tok is not None and len(names) < 2:
        diags.append(Diagnostic("E003", "a 'when' guard needs an edge: 'A -> B when ...'",
                                _tok_span(guard_tok, line_no, origin)))
        return
    if guard_tok is not None:
        if len(names) > 2:
            diags.append(Diagnostic("E003", "a 'when' guard applies to one edge; split the chain",
                                    _tok_span(guard_tok, line_no, origin),
                                    f"write '{names[-2]} -> {names[-1]} when ...' on its own line"))
        text = str(guard_tok).rstrip()
        guard, d = parse_expr(text, _sub_origin(origin, line_no, guard_tok.column))
        diags.extend(d)
    for a, b in zip(names, names[1:]):
        last = b is names[-1]
        flow.edges.append(Edge(str(a), str(b), _tok_span(a, line_no, origin),
                               str(guard_tok).rstrip() if (guard_tok and last) else None,
                               guard if last else None))


def _loop(node, line_no: int, origin: Origin, flow: Flow, diags: list) -> None:
    toks = {t.type: t for t in node.children if isinstance(t, Token) and t.type != "NAME"}
    names = [t for t in node.children if isinstance(t, Token) and t.type == "NAME"]
    a, b = names
    for t in names:
        flow.names.append((str(t), _tok_span(t, line_no, origin)))
    until_tok = toks["UNTIL_TEXT"]
    text = str(until_tok).rstrip()
    expr, d = parse_expr(text, _sub_origin(origin, line_no, until_tok.column))
    diags.extend(d)
    rounds = int(str(toks["INT"])[:9])
    span = _tok_span(toks["LOOP"], line_no, origin)
    if not 1 <= rounds <= 100:
        diags.append(Diagnostic("E403", f"loop bound must be between 1 and 100, not {rounds}",
                                _tok_span(toks["INT"], line_no, origin)))
        rounds = max(1, min(rounds, 100))
    if str(a) == str(b):
        diags.append(Diagnostic("E403", "a loop needs two different agents", span))
    flow.loops.append(Loop(str(a), str(b), text, expr, rounds, span,
                           _tok_span(a, line_no, origin), _tok_span(b, line_no, origin)))


def _syntax_error(exc: UnexpectedInput, line: str, line_no: int, origin: Origin) -> Diagnostic:
    col = max(1, getattr(exc, "column", 1) or 1)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END" or col > len(line):
        msg, col = "incomplete flow statement", len(line.rstrip()) or 1
    elif isinstance(exc, UnexpectedCharacters):
        msg = f"unexpected character {line[col - 1]!r} in flow"
    else:
        tok = getattr(exc, "token", None)
        msg = f"unexpected {str(tok)!r} in flow" if tok is not None else "flow syntax error"
    hint = "flow statements: 'A -> B', 'A -> B when <expr>', 'loop A <-> B until <expr> max N'"
    return Diagnostic("E003", msg, origin.span(line_no, col), hint)


def render_flow(flow: Flow) -> str:
    """Canonical text of a flow: chains merged where unguarded, one statement per line."""
    lines: list[str] = list(flow.nodes)
    for e in flow.edges:
        lines.append(f"{e.src} -> {e.dst}" + (f" when {e.guard_text}" if e.guard_text else ""))
    for lp in flow.loops:
        lines.append(f"loop {lp.check} <-> {lp.repair} until {lp.until_text} max {lp.max_rounds}")
    return "\n".join(lines) + "\n"
