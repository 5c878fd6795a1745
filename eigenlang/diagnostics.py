"""Diagnostics: positions, error records, rendering, and "did you mean".

Every stage of the compiler reports problems as `Diagnostic`s instead of raising, so a
program's errors are all collected and printed at once, sorted by position:

    workflows/x.yaml:12:5: error[E201]: unknown agent 'UserIntnet'
      hint: did you mean 'UserIntent'?

Codes are stable (tests and users grep for them); `CODES` is the one registry of them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Span:
    """A place in a source file: 1-based line and column of the first character."""

    file: str = "<input>"
    line: int = 1
    col: int = 1
    end_line: int | None = field(default=None, compare=False)
    end_col: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Origin:
    """Maps character offsets inside an embedded text (an expression or a flow written as a
    YAML string) back to file positions.

    `line_starts[i]` is the (line, col) in the file of the first character of line i of the
    embedded text. A plain or quoted one-line YAML scalar has one entry; a block scalar (`|`)
    has one per line.
    """

    file: str
    line_starts: tuple[tuple[int, int], ...]

    @classmethod
    def at(cls, span: Span) -> "Origin":
        return cls(span.file, ((span.line, span.col),))

    def span(self, text_line: int, text_col: int, end_line: int | None = None,
             end_col: int | None = None) -> Span:
        """Span of (1-based) line/column `text_line:text_col` of the embedded text."""

        def place(ln: int, col: int) -> tuple[int, int]:
            idx = min(max(ln - 1, 0), len(self.line_starts) - 1)
            base_line, base_col = self.line_starts[idx]
            extra = ln - 1 - idx  # past the known lines: count lines from the last one
            return (base_line + extra, (base_col if extra == 0 else 1) + col - 1)

        line, col = place(text_line, text_col)
        if end_line is not None and end_col is not None:
            el, ec = place(end_line, end_col)
            return Span(self.file, line, col, el, ec)
        return Span(self.file, line, col)


# One registry of codes. Ranges: E0xx syntax, E1xx structure, E2xx names, E3xx types,
# E4xx flows, E5xx templates, E6xx mutation, E7xx runtime-facing checks (domains).
CODES: dict[str, str] = {
    "E001": "YAML syntax error",
    "E002": "expression syntax error",
    "E003": "flow syntax error",
    "E004": "type syntax error",
    "E005": "expression too large or too deeply nested",
    "E006": "part of an expression always fails (it reads no names: a limit, a division by zero)",
    "E007": "YAML beyond the reader's limits (alias expansion, nesting)",
    "E008": "YAML tag not allowed (programs hold plain data)",
    "E101": "missing or unsupported 'eigenlang' version",
    "E102": "unknown program kind",
    "E103": "unknown key",
    "E104": "missing required key",
    "E105": "wrong value shape",
    "E106": "duplicate name",
    "E107": "file not found",
    "E108": "invalid value",
    "E109": "path outside the program's folder",
    "E201": "unknown agent",
    "E202": "unknown tool",
    "E203": "unknown type or model",
    "E204": "unknown field",
    "E205": "unknown name in expression",
    "E206": "unknown function",
    "E207": "unknown template variable",
    "E208": "unknown implementation",
    "E209": "forbidden name (starts with '_')",
    "E210": "implementation's parameters do not fit how it is called (declared params, fn(ctx, **params))",
    "E301": "type mismatch",
    "E302": "agent input not produced upstream",
    "E303": "condition is not boolean",
    "E304": "wrong number of arguments",
    "E401": "unbounded cycle in flow",
    "E402": "agent not reachable from the flow's start",
    "E403": "invalid loop",
    "E404": "agent declared but not used in the flow",
    "E501": "template syntax error",
    "E502": "template construct not allowed (reaches Python internals)",
    "E601": "invalid mutation",
    "E602": "edit not allowed to a model",
    "E701": "unknown placeholder in a message",
    "E702": "malformed placeholder in a message",
    "E703": "generated world does not match the schema (eigen check --run-domain)",
    "E704": "offline recipe plans calls its tools refuse, or never picks an intent (--run-domain)",
    "E705": "domain code raised or did not finish in time (eigen check --run-domain)",
}


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    hint: str | None = None
    severity: Severity = "error"

    def render(self) -> str:
        head = f"{self.span}: {self.severity}[{self.code}]: {self.message}"
        return head + (f"\n  hint: {self.hint}" if self.hint else "")

    def sort_key(self) -> tuple:
        return (self.span.file, self.span.line, self.span.col, self.code, self.message)


class Diagnostics(list):
    """A list of diagnostics with helpers; stages append, the driver sorts and prints."""

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        assert code in CODES, code
        self.append(Diagnostic(code, message, span, hint))

    def warning(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        assert code in CODES, code
        self.append(Diagnostic(code, message, span, hint, "warning"))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self if d.severity == "error"]

    def sorted(self) -> list[Diagnostic]:
        seen: set[tuple] = set()
        out = []
        for d in sorted(self, key=Diagnostic.sort_key):
            k = d.sort_key()
            if k not in seen:
                seen.add(k)
                out.append(d)
        return out

    def render(self) -> str:
        return "\n".join(d.render() for d in self.sorted())


def display_path(path) -> str:
    """A path shown in diagnostics: normalised, and relative to the working directory when
    it lies below it (so messages read the same on every machine)."""
    import os

    p = os.path.normpath(str(path))
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return p
    return rel if not rel.startswith("..") else p


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    pool = sorted({c for c in candidates if isinstance(c, str)})
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    return f"did you mean '{close[0]}'?" if close else None


def known_list(candidates: Iterable[str], limit: int = 8) -> str:
    """`known: a, b, c (+3 more)` — a hint for when nothing is close."""
    pool = sorted(set(candidates))
    shown = ", ".join(pool[:limit])
    more = f" (+{len(pool) - limit} more)" if len(pool) > limit else ""
    return f"known: {shown}{more}" if pool else "nothing is declared"


def name_hint(name: str, candidates: Iterable[str]) -> str:
    pool = list(candidates)
    return did_you_mean(name, pool) or known_list(pool)
