"""Per-instance verifiers: executable checks of a final environment state.

A `Verifier` is data (pydantic; it travels in datasets as JSON):

- `assertions`: expressions over {db, user_db, initial_db, initial_user_db} that must hold;
- `expected_diff`: when set, the final state must equal the initial state with exactly these
  changes applied ("and nothing else changed"); paths start with "db" or "user_db";
- `communicate`: strings some assistant message must state (case-insensitive, numbers
  normalised so that "1,234.00" matches "1234", and whole: "12.5" is not said by "112.5");
- `env_assertions` (τ²-bench's env assertions, kept by `eigen import tau2`): environment
  actions (or tools of that side) run on a fork of the final state, whose value must equal
  `expected`; written only when there are some.

`check(initial_env, final_env, messages)` gives `VerifyResult(passed, failures)` with every
failure in words; a policy violation made between the two environments (`new_violations`)
is a failure too. `verifier_from_diff(initial, final)` writes a verifier from a gold
trajectory's effect: readable assertions for each changed leaf or inserted entity, plus the
exact expected diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, model_serializer

from eigenlang.diagnostics import Origin
from eigenlang.expr import Compare, EvalError, compile_expr, parse_expr, to_source
from eigenlang.expr.values import json_preview

from .state import MISSING, Change, State
from .views import wrap


class Assertion(BaseModel):
    expr: str
    description: str = ""


class ExpectedChange(BaseModel):
    """The value at `path` (["db", "reservations", "X", "status"]) after the episode;
    `deleted` when the key or item is gone."""

    path: list[str | int]
    after: Any = None
    deleted: bool = False


class EnvAssertion(BaseModel):
    """`Environment.act(name, arguments, side)` on a fork of the final state must succeed
    with the value `expected` (τ²-bench's `{env_type, func_name, arguments, assert_value}`)."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    side: str = "agent"
    expected: Any = True
    description: str = ""


class VerifyResult(BaseModel):
    passed: bool
    failures: list[str] = Field(default_factory=list)


_ORIGIN = Origin("<verifier>", ((1, 1),))


class Verifier(BaseModel):
    assertions: list[Assertion] = Field(default_factory=list)
    expected_diff: list[ExpectedChange] | None = None
    communicate: list[str] = Field(default_factory=list)
    env_assertions: list[EnvAssertion] = Field(default_factory=list)

    # expression text -> (compiled, (left, right, left text) of a top-level `==` or None),
    # or the syntax error in words; filled on first use, once per instance.
    _compiled: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:  # the data, not the compile cache
        if not isinstance(other, Verifier):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        """Without `env_assertions` when there are none: every verifier written before the
        key existed keeps its exact JSON (and its records their integrity hashes)."""
        data = handler(self)
        if not self.env_assertions:
            data.pop("env_assertions", None)
        return data

    def check(self, initial: Any, final: Any, messages: Sequence[Any] | None = None) -> VerifyResult:
        """Check `final` (an Environment) against this verifier; `initial` is where it began."""
        failures: list[str] = []
        if self.assertions:
            scope = {"db": wrap(final.db._root), "initial_db": wrap(initial.db._root)}
            if final.user_db is not None:
                scope["user_db"] = wrap(final.user_db._root)
            if initial.user_db is not None:
                scope["initial_user_db"] = wrap(initial.user_db._root)
            for a in self.assertions:
                problem = self._run(a, scope)
                if problem:
                    failures.append(problem)
        if self.expected_diff is not None:
            failures += _diff_failures(initial, final, self.expected_diff)
        if self.communicate:
            failures += _communicate_failures(self.communicate, messages or [])
        if self.env_assertions:
            failures += _env_assertion_failures(self.env_assertions, final)
        failures += [f"policy: {v}" for v in new_violations(initial, final)]
        return VerifyResult(passed=not failures, failures=failures)

    def _compile(self, text: str) -> Any:
        entry = self._compiled.get(text)
        if entry is None:
            expr, diags = parse_expr(text, _ORIGIN)
            if expr is None:
                entry = "syntax error: " + "; ".join(d.message for d in diags)
            else:
                sides = None
                if isinstance(expr, Compare) and expr.op == "==":
                    sides = (compile_expr(expr.left), compile_expr(expr.right), to_source(expr.left, 120))
                entry = (compile_expr(expr), sides)
            self._compiled[text] = entry
        return entry

    def _run(self, a: Assertion, scope: dict) -> str | None:
        label = a.description or a.expr
        entry = self._compile(a.expr)
        if isinstance(entry, str):
            return f"{a.expr}: {entry}"
        compiled, sides = entry
        try:
            if compiled(scope) is True:
                return None
        except EvalError as exc:
            return f"{label}: {_message(exc)}"
        if sides is not None:  # `x == y`: say what x was instead
            left, right, left_text = sides
            return f"{left_text}: expected {_value_text(right, scope)}, found {_value_text(left, scope)}"
        return f"{label}: does not hold"


def _env_assertion_failures(checks: Iterable[EnvAssertion], final: Any) -> list[str]:
    out = []
    for a in checks:
        r = final.fork().act(a.name, a.arguments, a.side)  # an assertion only reads: never on `final`
        if not r.ok or r.value != a.expected:
            got = f"it failed: {r.error}" if not r.ok else f"got {_show(r.value)}"
            out.append(f"{a.description or 'env assertion'}: {a.name}({_show(a.arguments)}) on the {a.side} side "
                       f"should give {_show(a.expected)}, {got}")
    return out


def new_violations(initial: Any, final: Any) -> list[Any]:
    """The policy violations (`runtime.env.checks.Violation`) made on the way from `initial`
    to `final`: an environment logs every violation of its calls in `stats.violations`, and
    a fork inherits its parent's log. Whatever the state, a trajectory that broke a policy
    check fails its verifier (τ²-bench scores such a task 0, GRPO rewards it 0)."""
    done = tuple(getattr(getattr(final, "stats", None), "violations", None) or ())
    before = tuple(getattr(getattr(initial, "stats", None), "violations", None) or ())
    return list(done[len(before):] if done[:len(before)] == before else done)


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def _value_text(compiled: Any, scope: dict) -> str:
    try:
        return _show(compiled(scope))
    except EvalError as exc:
        return f"<{_message(exc)}>"


# ---------------------------------------------------------------- expected diff


def _states(env: Any) -> dict[str, State | None]:
    return {"db": env.db, "user_db": env.user_db}


def _diff_failures(initial: Any, final: Any, expected: list[ExpectedChange]) -> list[str]:
    failures: list[str] = []
    want: dict[str, State | None] = {}
    by_state: dict[str, list[ExpectedChange]] = {"db": [], "user_db": []}
    for ch in expected:
        if not ch.path or ch.path[0] not in by_state:
            failures.append(f"expected change {ch.path!r}: a path must start with 'db' or 'user_db'")
        else:
            by_state[ch.path[0]].append(ch)
    for name, start in _states(initial).items():
        changes = by_state[name]
        if start is None:
            if changes:
                failures.append(f"expected changes to {name}, but the environment has none")
            continue
        txn = start.edit()
        # list items are removed from the end backwards so that indices stay valid
        removals = sorted((c for c in changes if c.deleted), reverse=True, key=lambda c: _path_key(c.path))
        for ch in [c for c in changes if not c.deleted] + removals:
            problem = _apply(txn.root, ch)
            if problem:
                failures.append(problem)
        want[name] = txn.commit()
    if failures:
        return failures
    for name, expected_state in want.items():
        found = _states(final)[name]
        if found is None:
            failures.append(f"{name}: missing in the final environment")
            continue
        render = _PathRenderer(name, _schema_of(final, name))
        for c in expected_state.diff(found):
            if not _numbers_equal(c.before, c.after):
                failures.append(_explain(render, c))
    return failures


def _apply(root: Any, ch: ExpectedChange) -> str | None:
    """Apply one expected change to a transaction's root view; a problem in words or None."""
    node = root
    path = ch.path[1:]
    where = _PathRenderer(str(ch.path[0]), None)(path)
    if not path:
        return f"{where}: an expected change must name a key or an index"
    try:
        for key in path[:-1]:
            if hasattr(node, "keys") and key not in node:
                node[key] = {}
            node = node[key]
        last = path[-1]
        if ch.deleted:
            if (isinstance(last, str) and last in node) or (isinstance(last, int) and last < len(node)):
                del node[last]
        elif isinstance(last, int) and not hasattr(node, "keys") and last == len(node):
            node.append(ch.after)
        else:
            node[last] = ch.after
    except (KeyError, IndexError, TypeError) as exc:
        return f"{where}: cannot apply the expected change to the initial state ({type(exc).__name__}: {exc})"
    return None


def _schema_of(env: Any, name: str) -> Any:
    return getattr(getattr(env, "domain", None), "schema" if name == "db" else "user_schema", None)


def _explain(render: _PathRenderer, c: Change) -> str:
    where = render(c.path)
    if c.before is MISSING:
        return f"{where}: expected nothing there, found {_show(c.after)}"
    if c.after is MISSING:
        return f"{where}: expected {_show(c.before)}, found nothing"
    return f"{where}: expected {_show(c.before)}, found {_show(c.after)}"


def _numbers_equal(a: Any, b: Any) -> bool:
    """1 and 1.0 are the same expected number (YAML and JSON writers differ); True is not 1."""
    num = (int, float)
    return (isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool)
            and not isinstance(b, bool) and a == b)


def _show(value: Any, limit: int = 80) -> str:
    """A value for a failure message, cut to `limit` characters and written lazily: a value
    an assertion built by repeating a big part (`['a' * 1000000] * 80000`) costs only what
    is shown (a whole `json.dumps` of it would need gigabytes)."""
    if isinstance(value, str):
        text = repr(value[:limit])
        return text if len(value) <= limit and len(text) <= limit else text[: limit - 3] + "..."
    return json_preview(value, limit)


# ---------------------------------------------------------------- communicate

_NUMBER = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")


def normalise_text(text: str) -> str:
    """Lower case, single spaces, numbers without thousands separators or trailing zeros."""

    def number(m: re.Match) -> str:
        whole = m.group(1).replace(",", "").lstrip("0") or "0"
        frac = (m.group(2) or "").rstrip("0")
        return whole + ("." + frac if frac else "")

    return " ".join(_NUMBER.sub(number, text.lower()).split())


def _message_text(message: Any) -> tuple[str | None, str]:
    role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
    content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return role, content if isinstance(content, str) else ""


def said_in(needle: str, text: str) -> bool:
    """Whether normalised `text` states `needle` as a whole: not inside a longer word or
    number ("12.5" is not said by "112.5" or "12.55", "open" not by "reopened")."""
    pattern = _mention(normalise_text(needle))
    return bool(pattern.search(text)) if pattern is not None else True


def _mention(needle: str) -> re.Pattern | None:
    if not needle:
        return None  # an empty needle asks for nothing
    left = r"(?<!\w)(?<!\d[.,])" if needle[0].isalnum() else ""
    right = r"(?![.,]?\d)(?!\w)" if needle[-1].isalnum() else ""
    return re.compile(left + re.escape(needle) + right)


def _communicate_failures(needles: Iterable[str], messages: Sequence[Any]) -> list[str]:
    said = [normalise_text(text) for role, text in map(_message_text, messages) if role == "assistant"]
    return [f"the assistant never said {needle!r}" for needle in needles
            if not any(said_in(needle, text) for text in said)]


# ---------------------------------------------------------------- writing verifiers


def verifier_from_diff(initial: Any, final: Any, *, nothing_else: bool = True,
                       communicate: Iterable[str] = ()) -> Verifier:
    """A verifier that accepts exactly the effect `initial` → `final` of a gold trajectory."""
    assertions: list[Assertion] = []
    expected: list[ExpectedChange] = []
    for name in ("db", "user_db"):
        before, after = _states(initial)[name], _states(final)[name]
        if before is None or after is None:
            continue
        render = _PathRenderer(name, _schema_of(final, name))
        resized: set[tuple] = set()  # lists whose length is already asserted
        changes = before.diff(after)
        for c in changes:
            assertions += _assertions_for(render, c, after, resized)
            full = [name, *c.path]
            expected.append(ExpectedChange(path=full, deleted=True) if c.after is MISSING
                            else ExpectedChange(path=full, after=c.after))
        if not nothing_else:  # no expected diff to pin the rest of a touched entity: assert it
            was = _PathRenderer("initial_" + name, _schema_of(final, name))
            assertions += _unchanged_parts(render, was, changes, before, after)
    return Verifier(assertions=assertions, expected_diff=expected if nothing_else else None,
                    communicate=list(communicate))


def _assertions_for(render: _PathRenderer, c: Change, after: State, resized: set) -> list[Assertion]:
    """Readable assertions for one change: the new value of each leaf written, membership
    of an inserted or removed key, and the new length of a list that grew or shrank."""
    path, parent = c.path, c.path[:-1]
    out: list[Assertion] = []
    if path and isinstance(path[-1], int) and (c.before is MISSING or c.after is MISSING):
        if parent not in resized:
            resized.add(parent)
            n = len(after.get(parent))
            out.append(Assertion(expr=f"len({render(parent)}) == {n}",
                                 description=f"{render(parent)} has {_items(n)}"))
        if c.after is MISSING:
            return out
    elif c.after is MISSING:
        return [Assertion(expr=f"{literal(path[-1])} not in {render(parent)}",
                          description=f"{render(path)} is removed")]
    elif c.before is MISSING and path:
        out.append(Assertion(expr=f"{literal(path[-1])} in {render(parent)}",
                             description=f"{render(path)} is added"))
    for sub, value in _leaves(c.after):
        expr = render(path + sub)
        if isinstance(value, (dict, list)):  # empty container, or a list's length
            out.append(Assertion(expr=f"len({expr}) == {len(value)}",
                                 description=f"{expr} has {_items(len(value))}"))
        else:
            out.append(Assertion(expr=f"{expr} == {literal(value)}",
                                 description=f"{expr} becomes {literal(value)}"))
    return out


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _unchanged_parts(render: _PathRenderer, was: _PathRenderer, changes: list[Change],
                     before: State, after: State) -> list[Assertion]:
    """`x == initial_x` for every untouched part of each changed entity (an entity is a
    change's first two path steps: a collection and a key), so that assertions alone also
    catch a wrong value next to the right one."""
    changed = {c.path for c in changes}
    on_path = {c.path[:i] for c in changes for i in range(len(c.path))}
    entities = sorted({c.path[:2] for c in changes if len(c.path) > 2}, key=_path_key)
    out: list[Assertion] = []

    def walk(prefix: tuple, old: Any, new: Any) -> None:
        keys = sorted(new) if isinstance(new, dict) else range(min(len(old), len(new)))
        for k in keys:
            path = prefix + (k,)
            if path in changed:
                continue
            if path in on_path:
                walk(path, old[k], new[k])
            elif isinstance(new, list) or k in old:
                out.append(Assertion(expr=f"{render(path)} == {was(path)}",
                                     description=f"{render(path)} is unchanged"))

    for entity in entities:
        old, new = before.get(entity), after.get(entity)
        if isinstance(old, (dict, list)) and type(old) is type(new):
            walk(entity, old, new)
    return out


def _path_key(path: tuple) -> list:
    return [(0, k, "") if isinstance(k, int) else (1, 0, k) for k in path]


def _leaves(value: Any, prefix: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    """Scalar leaves of a value, plus (len) markers for lists and empty containers."""
    if isinstance(value, dict):
        if not value:
            yield prefix, value
        for k in sorted(value):
            yield from _leaves(value[k], prefix + (k,))
    elif isinstance(value, list):
        yield prefix, value
        for i, v in enumerate(value):
            yield from _leaves(v, prefix + (i,))
    else:
        yield prefix, value


_KEYWORDS = {"if", "else", "and", "or", "not", "in", "true", "false", "none", "True", "False", "None"}
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def literal(value: Any) -> str:
    """An expression-language literal for a JSON scalar."""
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch in "\n\t\r":
                out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
            elif ord(ch) < 0x20:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "none"
    return repr(value)


class _PathRenderer:
    """Expression text for a path: `.field` where the schema says a model field,
    `["key"]` for dictionary keys, `[i]` for list items. Without a schema, snake_case
    names become fields and everything else brackets."""

    def __init__(self, root: str, schema: Any) -> None:
        self.root, self.schema = root, schema

    def __call__(self, path: Sequence) -> str:
        text = self.root
        t = self._start()
        for key in path:
            as_field, t = self._step(t, key)
            if isinstance(key, int):
                text += f"[{key}]"
            elif as_field and _IDENT.match(key) and key not in _KEYWORDS:
                text += f".{key}"
            else:
                text += f"[{literal(key)}]"
        return text

    def _start(self) -> Any:
        if self.schema is None or not getattr(self.schema, "root", None):
            return None
        from eigenlang.types import ModelT

        return ModelT(self.schema.root)

    def _step(self, t: Any, key: Any) -> tuple[bool, Any]:
        """(whether `key` is a model field here, the type below it)."""
        if t is None:
            return isinstance(key, str) and key.islower() and not key[:1].isdigit(), None
        from eigenlang.types import DictT, ListT, ModelT

        for option in self.schema.options(t):
            if isinstance(option, ModelT) and isinstance(key, str):
                f = self.schema.field(option.name, key)
                if f is not None:
                    return True, f.type
            elif isinstance(option, DictT) and isinstance(key, str):
                return False, option.value
            elif isinstance(option, ListT) and isinstance(key, int):
                return False, option.item
        return False, None
