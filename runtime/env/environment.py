"""A domain's tools executing over copy-on-write states.

    env = Environment.from_domain(domain, seed=0)
    r = env.call("cancel_reservation", '{"reservation_id": "ZFA04Y"}')
    r.ok, r.content, r.error          # error: None or one of errors.ERROR_CATEGORIES
    rollout = env.fork()              # O(1); the two never see each other's calls

Every call is one transaction over `db` (and `user_db`): arguments are parsed, checked
against the tool's JSON schema, its `requires:` preconditions are evaluated, the Python
implementation runs on mutable views, then the domain's `sync` (dual control) runs in the
same transaction. Any failure discards the transaction and comes back as an error result;
nothing a caller sends can raise out of `call`.
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
from eigenlang.expr import EvalError, compile_expr

from . import errors as E
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


@dataclass
class EnvStats:
    """Calls made through one environment (a fork starts from its parent's counts)."""

    calls: int = 0
    errors: Counter = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def copy(self) -> EnvStats:
        return EnvStats(self.calls, Counter(self.errors))


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
    """A tool made ready to run: its spec, implementation, compiled preconditions."""

    spec: Any
    side: str
    fn: Callable[..., Any]
    checks: list[tuple[Any, str]]  # (compiled expression, error message)
    validator: Any = None  # jsonschema validator, built on first use


class _Runtime:
    """Everything an environment derives from its domain once; shared by all forks."""

    def __init__(self, domain: Any) -> None:
        self.tools: dict[str, dict[str, _Tool]] = {"agent": {}, "user": {}}
        for side, specs in (("agent", domain.tools), ("user", getattr(domain, "user_tools", None) or {})):
            for name, spec in specs.items():
                checks = []
                for pre in spec.requires or ():
                    message = pre.error or f"precondition failed: {pre.text}"
                    checks.append((compile_expr(pre.expr) if pre.expr is not None else None, message))
                self.tools[side][name] = _Tool(spec, side, load_impl(spec.impl), checks)
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
        db = _state(domain.schema, _read(Path(db_path)), str(db_path), True)
        user_db = None
        if user_db_path is not None:
            if getattr(domain, "user_schema", None) is None:
                raise StateLoadError(f"{user_db_path}: domain {domain.name!r} has no user database")
            user_db = _state(domain.user_schema, _read(Path(user_db_path)), str(user_db_path), True)
        return cls(domain, db, user_db)

    def fork(self) -> Environment:
        """O(1): shares the domain, the loaded tools and (copy-on-write) both states."""
        env = object.__new__(Environment)
        env.domain, env._rt = self.domain, self._rt
        env.db = self.db.fork()
        env.user_db = self.user_db.fork() if self.user_db is not None else None
        env.stats = self.stats.copy()
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
        if not result.ok:
            self.stats.errors[result.error] += 1
        return result

    def _call(self, name: str, arguments: Any, side: str) -> ToolResult:
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

        db_view = wrap(self.db._root)
        user_view = wrap(self.user_db._root) if self.user_db is not None else None
        problem = self._precondition_problem(tool, args, db_view, user_view)
        if problem:
            return _fail(E.PRECONDITION, problem)

        txn = self.db.edit()
        utxn = self.user_db.edit() if self.user_db is not None else None
        ctx = ToolContext(txn.root, utxn.root if utxn else None, self._rt.now, name, canonical, self)
        try:
            value = tool.fn(ctx, **args)
            content = _content(value)
            if self._rt.sync is not None:
                ctx.tool = "<sync>"
                self._rt.sync(ctx)
        except ToolError as exc:
            return _discard(txn, utxn, _fail(E.TOOL_ERROR, exc.message))
        except Exception as exc:
            return _discard(txn, utxn, _fail(E.CRASH, f"{name} raised {type(exc).__name__}: {exc}"))
        self.db = txn.commit()
        if utxn is not None:
            self.user_db = utxn.commit()
        return ToolResult(True, content, None)

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

    def _precondition_problem(self, tool: _Tool, args: dict, db: Any, user_db: Any) -> str | None:
        if not tool.checks:
            return None
        scope: dict[str, Any] = {"db": db, "now": self._rt.now}
        if user_db is not None:
            scope["user_db"] = user_db
        scope.update(args)  # as in the compiler's check: a parameter shadows a global name
        for compiled, message in tool.checks:
            if compiled is None:
                return f"{message} (the check could not be compiled)"
            try:
                ok = compiled(scope)
            except EvalError as exc:
                return getattr(exc, "message", None) or str(exc)
            except Exception as exc:
                return f"precondition could not be evaluated: {type(exc).__name__}: {exc}"
            if not ok:
                return message
        return None

    def __repr__(self) -> str:
        return f"Environment({getattr(self.domain, 'name', '?')}, db={self.db!r})"


# ---------------------------------------------------------------- helpers


def _fail(category: str, message: str) -> ToolResult:
    return ToolResult(False, f"Error: {message}", category)


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


def _content(value: Any) -> str:
    """The text a caller sees: a returned string as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(plain(value), ensure_ascii=False)


def _read(path: Path) -> Any:
    try:
        if path.suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        with path.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise StateLoadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise StateLoadError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from exc


def _state(schema: Any, data: Any, where: str, validate: bool) -> State:
    """`data` as a State, checked against the schema's root model first."""
    if validate and schema is not None and getattr(schema, "root", None):
        from eigenlang.types import ModelT

        problems = schema.validate(data, ModelT(schema.root))
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  (+{len(problems) - 10} more)" if len(problems) > 10 else ""
            raise StateLoadError(f"{where}: does not match the schema:\n  {shown}{more}")
    try:
        return State.from_json(data)
    except TypeError as exc:
        raise StateLoadError(f"{where}: {exc}") from exc
