"""A tool's checks at run time: `requires:` (the backend refuses) and `policy:` (the agent
is judged).

Both are evaluated on the state before the call, in the compiler's scope: `db`, `user_db`
(when the domain has one), `now`, and every argument by name (a parameter shadows a global).

- A failed precondition refuses the call: its `error` text, with `{param}` placeholders filled
  from the arguments, is the caller's "Error: ..." message. A check that cannot be evaluated
  refuses too.
- Policy checks run only for a call that passed every precondition (so they may assume what
  `requires:` guarantees). The call runs whatever they say; each failed check is a
  `Violation` that the environment attaches to the `ToolResult` and logs in `env.stats`,
  and that the agent never sees. A policy check that cannot be evaluated is a violation too:
  an unproven policy is not a kept one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eigenlang.expr import EvalError, compile_expr
from eigenlang.message import MessageTemplate


@dataclass(frozen=True)
class Violation:
    """A policy check of `tool` that did not hold when the call was made."""

    tool: str
    rule: str
    description: str  # the rule's description, placeholders filled
    side: str = "agent"

    def to_json(self, turn: int | None = None) -> dict:
        """`{tool, rule, description, turn}` as trajectories record it."""
        out: dict[str, Any] = {"tool": self.tool, "rule": self.rule, "description": self.description}
        if turn is not None:
            out["turn"] = turn
        return out

    def __str__(self) -> str:
        return f"{self.rule}: {self.tool} broke a policy check: {self.description}"


def message_template(spec: Any, text_attr: str) -> MessageTemplate:
    """A precondition's or policy check's message template (hand-built specs without one get
    their text as is, a precondition without text "precondition failed: <check>")."""
    make = getattr(spec, "template", None)
    if callable(make):
        return make()
    text = str(getattr(spec, text_attr, "") or "")
    if not text and text_attr == "error":
        text = f"precondition failed: {getattr(spec, 'text', '')}"
    return MessageTemplate.literal(text)


def _compiled(spec: Any) -> Any:
    return compile_expr(spec.expr) if spec.expr is not None else None


class ToolChecks:
    """The compiled `requires:` and `policy:` of one tool; built once per domain."""

    __slots__ = ("policy", "requires", "side", "tool")

    def __init__(self, spec: Any, side: str) -> None:
        self.tool, self.side = spec.name, side
        self.requires = [(_compiled(p), message_template(p, "error"), p.text)
                         for p in getattr(spec, "requires", None) or ()]
        self.policy = [(p.rule, _compiled(p), message_template(p, "description"))
                       for p in getattr(spec, "policy", None) or ()]

    def __bool__(self) -> bool:
        return bool(self.requires or self.policy)

    def refusal(self, scope: dict, args: dict) -> str | None:
        """The message of the first failed precondition, or None when all hold."""
        for compiled, template, text in self.requires:
            if compiled is None:
                return f"{template.render(args) or text} (the check could not be compiled)"
            try:
                ok = compiled(scope)
            except EvalError as exc:
                return getattr(exc, "message", None) or str(exc)
            except Exception as exc:  # noqa: BLE001  # a bug in the check, in words
                return f"precondition could not be evaluated: {type(exc).__name__}: {exc}"
            if not ok:
                return template.render(args) or f"precondition failed: {text}"
        return None

    def violations(self, scope: dict, args: dict) -> tuple[Violation, ...]:
        """Every policy check that does not hold, in declaration order."""
        out = []
        for rule, compiled, template in self.policy:
            problem = None if compiled is not None else "the check could not be compiled"
            try:
                ok = compiled is not None and compiled(scope) is True
            except EvalError as exc:
                ok, problem = False, f"the check could not be evaluated: {getattr(exc, 'message', None) or exc}"
            except Exception as exc:  # noqa: BLE001  # a bug in the check, in words
                ok, problem = False, f"the check could not be evaluated: {type(exc).__name__}: {exc}"
            if not ok:
                description = template.render(args) + (f" ({problem})" if problem else "")
                out.append(Violation(self.tool, rule, description, self.side))
        return tuple(out)


def check_scope(db: Any, user_db: Any, now: str, args: dict) -> dict:
    """What `requires:` and `policy:` expressions see."""
    scope: dict[str, Any] = {"db": db, "now": now}
    if user_db is not None:
        scope["user_db"] = user_db
    scope.update(args)  # as in the compiler's check: a parameter shadows a global name
    return scope
