"""A domain's tools executing over copy-on-write states.

    env = Environment.from_domain(domain, seed=0)
    r = env.call("cancel_reservation", '{"reservation_id": "ZFA04Y"}')
    r.ok, r.content, r.error          # error: None or one of errors.ERROR_CATEGORIES
    r.violations                      # policy checks the call broke (never in r.content)
    rollout = env.fork()              # O(1); the two never see each other's calls
    env.act("set_user_info", {"name": "Ann"}, "user")   # an environment action (task set-up)

Every call is one transaction over `db` (and `user_db`): arguments are parsed, checked
against the tool's JSON schema, its `requires:` preconditions are evaluated, then its
`policy:` checks (a failed one is recorded, not refused: checks.py), the Python
implementation runs on mutable views, then the domain's `sync` (dual control) runs in the
same transaction. Any failure discards the transaction and comes back as an error result
(except a `ToolError(..., keep_changes=True)`, whose writes stay, as τ²-bench's do); nothing a
caller sends can raise out of `call`. The content of a result is the text τ²-bench would
print for it, shaped by the tool's `returns:` type (canonical.py); databases load canonical
too (`from_data`, `from_files`, `from_domain`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from eigenlang.diagnostics import did_you_mean

from . import errors as E
from .canonical import CanonError, canon, tool_content
from .checks import ToolChecks, Violation, check_scope
from .crashes import Crash, describe
from .errors import ImplLoadError, StateLoadError, ToolError
from .impls import load_impl
from .nodes import plain
from .state import State
from .views import wrap

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    content: str
    error: str | None = None  # the failure category (errors.ERROR_CATEGORIES) or None
    # policy checks of the tool that failed before the call (checks.py); never in `content`:
    # the agent is not told, the trajectory is judged
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class ActionResult:
    """What `Environment.act` gives: the action's return value, or why it failed."""

    ok: bool
    value: Any = None
    error: str | None = None  # the failure in words


@dataclass
class EnvStats:
    """Calls made through one environment (a fork starts from its parent's counts)."""

    calls: int = 0
    errors: Counter = field(default_factory=Counter)
    violations: tuple[Violation, ...] = ()  # in call order (a tuple: forks share it)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def copy(self) -> EnvStats:
        return EnvStats(self.calls, Counter(self.errors), self.violations)


class ToolContext:
    """What an implementation receives as `ctx`."""

    __slots__ = ("_counter", "_env", "_seed", "db", "now", "tool", "user_db")

    def __init__(self, db: Any, user_db: Any, now: str, tool: str, seed: str, env: Environment):
        self.db = db
        self.user_db = user_db
        self.now = now
        self.tool = tool
        self._seed = seed
        self._env = env
        self._counter = 0

    def new_id(self, prefix: str = "", length: int = 6) -> str:
        """A fresh id, a function of the state before the call, the tool, its canonical
        arguments and how many ids this call asked for before (never random)."""
        if not 1 <= length <= 40:
            raise ValueError("new_id length must be between 1 and 40")
        text = f"{self._env.hash()}\0{self.tool}\0{self._seed}\0{self._counter}"
        self._counter += 1
        n = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
        chars = []
        for _ in range(length):
            n, r = divmod(n, 36)
            chars.append(_ID_ALPHABET[r])
        return prefix + "".join(chars)


@dataclass
class _Tool:
    """A tool (or an environment action) made ready to run: its spec, implementation, and
    compiled `requires:` and `policy:` checks."""

    spec: Any
    side: str
    fn: Callable[..., Any]
    checks: ToolChecks
    validator: Any = None  # jsonschema validator, built on first use


class _Runtime:
    """Everything an environment derives from its domain once; shared by all forks."""

    def __init__(self, domain: Any) -> None:
        self.tools: dict[str, dict[str, _Tool]] = {"agent": {}, "user": {}}
        for side, specs in (("agent", domain.tools), ("user", getattr(domain, "user_tools", None) or {})):
            for name, spec in specs.items():
                self.tools[side][name] = _Tool(spec, side, load_impl(spec.impl), ToolChecks(spec, side))
        self.actions = {name: _Tool(spec, spec.side, load_impl(spec.impl), ToolChecks(spec, spec.side))
                        for name, spec in (getattr(domain, "actions", None) or {}).items()}
        sync = getattr(domain, "sync", None)
        self.sync = load_impl(sync) if sync is not None else None
        self.now = str(domain.now) if getattr(domain, "now", None) is not None else ""

    def validator(self, tool: _Tool) -> Any:
        if tool.validator is None:
            schema = tool.spec.params_json_schema()
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            tool.validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        return tool.validator


class Environment:
    """A domain's tools over a database state (and, for dual control, a user state)."""

    def __init__(self, domain: Any, db: State | Any, user_db: State | Any | None = None) -> None:
        self.domain = domain
        self.db = db if isinstance(db, State) else State.from_json(db)
        self.user_db = user_db if user_db is None or isinstance(user_db, State) else State.from_json(user_db)
        self.stats = EnvStats()
        # the crashes of this instance's tool calls (crashes.py), shared by all its forks;
        # None: nobody listens (the run engine gives each instance its own list)
        self.crash_log: list[Crash] | None = None
        try:
            self._rt = _Runtime(domain)
        except ImplLoadError:
            raise
        except Exception as exc:  # a malformed spec: fail at construction, with the reason
            raise ImplLoadError(f"cannot prepare domain {getattr(domain, 'name', '?')}: "
                                f"{type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------ construction

    @classmethod
    def from_domain(cls, domain: Any, seed: int, size: float = 1.0, *, validate: bool = True) -> Environment:
        """A fresh environment over the domain's generated database for `seed`."""
        if getattr(domain, "generate", None) is None:
            raise StateLoadError(f"domain {domain.name!r} declares no database generator")
        data = load_impl(domain.generate)(seed, size)
        db = _state(domain.schema, data, "generated database", validate)
        user_db = None
        if getattr(domain, "generate_user", None) is not None:
            user_data = load_impl(domain.generate_user)(seed, size, data)
            user_db = _state(domain.user_schema, user_data, "generated user database", validate)
        return cls(domain, db, user_db)

    @classmethod
    def from_files(cls, domain: Any, db_path: Path | str, user_db_path: Path | str | None = None) -> Environment:
        """An environment over database files (JSON, or TOML for `.toml`), schema-checked."""
        return cls.from_data(domain, Path(db_path), Path(user_db_path) if user_db_path is not None else None)

    @classmethod
    def from_data(cls, domain: Any, db: Any, user_db: Any = None) -> Environment:
        """An environment over databases given as file paths, JSON-like data or States. Files
        and data are checked against the schema and made canonical (canonical.py): defaults
        filled, fields in declaration order, as τ²-bench's models hold them."""
        def load(schema: Any, value: Any, what: str) -> State:
            if isinstance(value, State):
                return value
            if isinstance(value, (str, Path)):
                return _state(schema, _read(Path(value)), str(value), True)
            return _state(schema, value, what, True)

        if user_db is not None and getattr(domain, "user_schema", None) is None:
            raise StateLoadError(f"domain {domain.name!r} has no user database")
        return cls(domain, load(domain.schema, db, "database"),
                   load(domain.user_schema, user_db, "user database") if user_db is not None else None)

    def fork(self) -> Environment:
        """O(1): shares the domain, the loaded tools and (copy-on-write) both states."""
        env = object.__new__(Environment)
        env.domain, env._rt = self.domain, self._rt
        env.db = self.db.fork()
        env.user_db = self.user_db.fork() if self.user_db is not None else None
        env.stats = self.stats.copy()
        env.crash_log = self.crash_log
        return env

    # ------------------------------------------------------------ queries

    def hash(self) -> str:
        """Content hash of db and user_db together."""
        user = self.user_db.hash() if self.user_db is not None else "-"
        return hashlib.sha256(f"{self.db.hash()}:{user}".encode()).hexdigest()

    def tool_schemas(self, side: str = "agent") -> list[dict]:
        """OpenAI function-calling schemas of one side's tools, in declaration order."""
        return [t.spec.openai_schema() for t in self._rt.tools.get(side, {}).values()]

    def tool_names(self, side: str = "agent") -> list[str]:
        return list(self._rt.tools.get(side, {}))

    # ------------------------------------------------------------ calls

    def replay(self, actions: Iterable[Mapping[str, Any]]) -> list[ToolResult]:
        """Run `[{name, arguments, side?}, ...]` in order; failed calls do not stop it."""
        out = []
        for a in actions:
            a = a if isinstance(a, Mapping) else {}
            out.append(self.call(a.get("name"), a.get("arguments", {}), a.get("side", "agent")))
        return out

    def call(self, name: str, arguments: Mapping[str, Any] | str | None = None, side: str = "agent") -> ToolResult:
        """Run one tool call atomically; every failure is an error result, never an exception."""
        self.stats.calls += 1
        try:
            result = self._call(name, arguments, side)
        except Exception as exc:  # a bug below us: still an error result, state unchanged
            result = _fail(E.CRASH, f"{type(exc).__name__}: {exc}")
            self._crashed(name, exc)
        if not result.ok:
            self.stats.errors[result.error] += 1
        if result.violations:
            self.stats.violations += result.violations
        return result

    def _call(self, name: str, arguments: Any, side: str, judged: bool = True) -> ToolResult:
        """One tool call; `judged`: evaluate the tool's policy checks (not for set-up calls)."""
        tools = self._rt.tools.get(side)
        if tools is None:
            return _fail(E.UNKNOWN_TOOL, f"unknown side {side!r} (expected 'agent' or 'user')")
        tool = tools.get(name) if isinstance(name, str) else None
        if tool is None:
            hint = did_you_mean(str(name), tools)
            which = "tool" if side == "agent" else "user tool"
            return _fail(E.UNKNOWN_TOOL, f"unknown {which} {name!r}" + (f"; {hint}" if hint else ""))

        args, canonical, problem = _parse_arguments(arguments)
        if problem:
            return _fail(E.BAD_JSON, f"arguments of {name} {problem}")
        problem = self._schema_problem(tool, args)
        if problem:
            return _fail(E.SCHEMA, f"invalid arguments for {name}: {problem}")
        for pname, param in tool.spec.params.items():
            if pname not in args and not param.required:
                args[pname] = plain(param.default)

        violations: tuple[Violation, ...] = ()
        if tool.checks:
            user_view = wrap(self.user_db._root) if self.user_db is not None else None
            scope = check_scope(wrap(self.db._root), user_view, self._rt.now, args)
            problem = tool.checks.refusal(scope, args)
            if problem:
                return _fail(E.PRECONDITION, problem)
            if judged:  # the call runs whatever the policy says; the trajectory is judged
                violations = tool.checks.violations(scope, args)

        try:
            content = self._transact(name, canonical, lambda ctx: _content(tool.fn(ctx, **args), tool.spec))
        except ToolError as exc:
            return _fail(E.TOOL_ERROR, exc.message, violations)
        except Exception as exc:
            self._crashed(name, exc)
            return _fail(E.CRASH, f"{name} raised {type(exc).__name__}: {exc}", violations)
        return ToolResult(True, content, None, violations)

    def _crashed(self, name: Any, exc: Exception) -> None:
        """A tool's implementation (or sync) raised something other than ToolError: a bug.
        The caller gets its `crash` error result; the instance's listener gets the crash."""
        if self.crash_log is not None:
            self.crash_log.append(describe(exc, source="tool", where=str(name), domain=self.domain))

    def _transact(self, name: str, canonical: str, body: Callable[[ToolContext], Any]) -> Any:
        """`body(ctx)` (an implementation, its output made) and then the domain's sync, as one
        transaction over both states: committed when both return, discarded when either
        raises (the exception propagates)."""
        txn = self.db.edit()
        utxn = self.user_db.edit() if self.user_db is not None else None
        ctx = ToolContext(txn.root, utxn.root if utxn else None, self._rt.now, name, canonical, self)
        try:
            out = body(ctx)
            if self._rt.sync is not None:
                ctx.tool = "<sync>"
                self._rt.sync(ctx)
        except ToolError as exc:
            if exc.keep_changes:  # the call fails, its writes stay; no sync (τ²-bench syncs after success)
                self.db = txn.commit()
                if utxn is not None:
                    self.user_db = utxn.commit()
            else:
                _discard(txn, utxn, None)
            raise
        except BaseException:
            _discard(txn, utxn, None)
            raise
        self.db = txn.commit()
        if utxn is not None:
            self.user_db = utxn.commit()
        return out

    # ------------------------------------------------------------ environment actions

    def act(self, name: str, arguments: Mapping[str, Any] | str | None = None,
            side: str | None = None) -> ActionResult:
        """Run one environment action (the domain's `actions:`) atomically, with `sync`, as a
        tool runs; when no action has the name, the `side`'s tool of that name (τ²-bench's
        set-up and assertion calls name either). Actions are never offered to a model, are
        not counted in `stats`, and no policy is judged. Never raises."""
        try:
            return self._act(name, arguments, side)
        except Exception as exc:  # a bug below us, in words
            return ActionResult(False, None, f"{type(exc).__name__}: {exc}")

    def _act(self, name: str, arguments: Any, side: str | None) -> ActionResult:
        action = self._rt.actions.get(name) if isinstance(name, str) else None
        if action is None:
            tool = self._rt.tools.get(side or "", {}).get(name) if isinstance(name, str) else None
            if tool is None:
                known = list(self._rt.actions) + list(self._rt.tools.get(side or "", {}))
                hint = did_you_mean(str(name), known)
                where = f" (nor a {side} tool)" if side in self._rt.tools else ""
                sides = [s for s, tools in self._rt.tools.items() if name in tools]
                if side is None and sides:
                    where = f" (there is a {sides[0]} tool of that name: pass side={sides[0]!r})"
                return ActionResult(False, None, f"unknown action {name!r}{where}" + (f"; {hint}" if hint else ""))
            r = self._call(name, arguments, side, judged=False)
            return ActionResult(True, r.content) if r.ok else \
                ActionResult(False, None, r.content.removeprefix("Error: "))
        if side is not None and side != action.side:
            return ActionResult(False, None, f"action {name!r} acts on the {action.side} side, not the {side} side")
        args, canonical, problem = _parse_arguments(arguments)
        problem = f"arguments of {name} {problem}" if problem else self._schema_problem(action, args)
        if problem:
            return ActionResult(False, None, f"invalid arguments for action {name}: {problem}")
        for pname, param in action.spec.params.items():
            if pname not in args and not param.required:
                args[pname] = plain(param.default)

        def body(ctx: ToolContext) -> Any:
            value = plain(action.fn(ctx, **args))
            returns = action.spec.returns
            bad = action.spec.schema.validate(value, returns) if returns is not None else []
            if bad:  # checked inside the transaction: a wrong answer changes nothing
                raise ToolError(f"action {name} returned a value that breaks its `returns:` type: {bad[0]}")
            return value

        try:
            return ActionResult(True, self._transact(name, canonical, body))
        except ToolError as exc:
            return ActionResult(False, None, exc.message)
        except Exception as exc:
            return ActionResult(False, None, f"{name} raised {type(exc).__name__}: {exc}")

    def _schema_problem(self, tool: _Tool, args: dict) -> str | None:
        unknown = [k for k in args if k not in tool.spec.params]
        if unknown:
            hint = did_you_mean(unknown[0], tool.spec.params)
            return f"unexpected argument {unknown[0]!r}" + (f"; {hint}" if hint else "")
        errs = sorted(self._rt.validator(tool).iter_errors(args), key=lambda e: (list(map(str, e.path)), e.message))
        if not errs:
            return None
        shown = [(".".join(map(str, e.path)) + ": " if e.path else "") + e.message for e in errs[:3]]
        more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
        return "; ".join(shown) + more

    def __repr__(self) -> str:
        return f"Environment({getattr(self.domain, 'name', '?')}, db={self.db!r})"


# ---------------------------------------------------------------- helpers


def _fail(category: str, message: str, violations: tuple[Violation, ...] = ()) -> ToolResult:
    return ToolResult(False, f"Error: {message}", category, violations)


def _discard(txn: Any, utxn: Any, result: ToolResult) -> ToolResult:
    txn.discard()
    if utxn is not None:
        utxn.discard()
    return result


def _parse_arguments(arguments: Any) -> tuple[dict, str, str | None]:
    """(private copy of the arguments, their canonical JSON text, problem or None)."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}
    if isinstance(arguments, (str, bytes)):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError) as exc:
            return {}, "", f"are not valid JSON: {exc}"
    if not isinstance(arguments, Mapping):
        return {}, "", f"must be a JSON object, got {type(arguments).__name__}"
    try:
        canonical = json.dumps(plain(arguments), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return {}, "", f"are not JSON data: {exc}"
    return json.loads(canonical), canonical, None


def _content(value: Any, spec: Any) -> str:
    """The text a caller sees: as τ²-bench prints it, shaped by the tool's `returns:` type
    (canonical.tool_content)."""
    return tool_content(value, getattr(spec, "returns", None), getattr(spec, "schema", None))


def _read(path: Path) -> Any:
    """A database file's content: JSON as bytes (validated and decoded in one pass by
    `_state`), TOML as data."""
    try:
        if path.suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        return path.read_bytes()
    except OSError as exc:
        raise StateLoadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise StateLoadError(f"{path}: not valid TOML: {exc}") from exc


def _state(schema: Any, data: Any, where: str, validate: bool) -> State:
    """`data` (JSON bytes or JSON-like data) as a canonical State of the schema's root
    model: checked, defaults filled, fields in declaration order (canonical.py)."""
    if validate and schema is not None and getattr(schema, "root", None):
        from eigenlang.types import ModelT

        try:
            return State(canon(schema).load(data, ModelT(schema.root)))
        except CanonError as exc:
            if exc.syntax:
                raise StateLoadError(f"{where}: not valid JSON: {exc.problems[0]}") from None
            raise StateLoadError(f"{where}: does not match the schema:\n{exc.render()}") from None
    if isinstance(data, (bytes, bytearray)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise StateLoadError(f"{where}: not valid JSON: {exc}") from None
    try:
        return State.from_json(data)
    except TypeError as exc:
        raise StateLoadError(f"{where}: {exc}") from exc
