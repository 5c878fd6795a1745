"""The one interface every LLM backend implements, the result it returns, and token accounting.

A backend turns chat messages (OpenAI format, docs/CONTRACTS.md §9) into one assistant message.
It never raises for an endpoint failure: after its retries are spent it returns a `Completion`
whose `error` says what went wrong, so the caller records a rejection and the run goes on.
Nothing here imports openai, torch or transformers: this module is cheap to import.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import (
    Any,
    Protocol,
    TypeVar,
    runtime_checkable,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """One answer. `message` is an OpenAI assistant message: `role`, `content` (text or None)
    and, only when the model called tools, `tool_calls` ([{id, type, function: {name,
    arguments: JSON text}}]). `attempts` counts the requests made, retries included."""

    message: dict
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def content(self) -> str | None:
        return self.message.get("content")

    @property
    def tool_calls(self) -> list[dict]:
        return list(self.message.get("tool_calls") or [])

    def to_json(self) -> dict:
        out = asdict(self)
        out["usage"] = asdict(self.usage)
        return out

    @classmethod
    def failure(cls, error: str, *, attempts: int, latency_s: float) -> Completion:
        """The result of a call that never got an answer: an empty assistant message."""
        return cls(message={"role": "assistant", "content": None}, finish_reason=None,
                   usage=Usage(), latency_s=latency_s, attempts=attempts, error=error)


# ---------------------------------------------------------------- token accounting

_INSTANCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("eigen_instance", default=None)


@dataclass
class Totals:
    calls: int = 0
    failed: int = 0  # calls that ended with an error (after retries)
    attempts: int = 0  # requests sent, retries included
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Totals) -> None:
        self.calls += other.calls
        self.failed += other.failed
        self.attempts += other.attempts
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def to_json(self) -> dict:
        d = asdict(self)
        d["total_tokens"] = self.prompt_tokens + self.completion_tokens
        return d

    @classmethod
    def from_json(cls, d: dict) -> Totals:
        return cls(**{k: int(d.get(k, 0)) for k in ("calls", "failed", "attempts", "prompt_tokens",
                                                     "completion_tokens")})


class TokenLedger:
    """Calls and tokens per agent, and per instance id.

    Safe from many threads and many asyncio tasks (one lock; no await inside it). A call is
    attributed to an instance either explicitly (`record(..., instance=id)`) or by running it
    inside `with ledger.instance(id):` — a context variable, so it follows asyncio tasks
    created inside the block and the coroutine handed to `run_sync`, and concurrent
    instances on other threads or tasks do not mix.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._agents: dict[str, Totals] = {}
        self._instances: dict[str, dict[str, Totals]] = {}

    @staticmethod
    @contextlib.contextmanager
    def instance(instance_id: str) -> Iterator[None]:
        token = _INSTANCE.set(instance_id)
        try:
            yield
        finally:
            _INSTANCE.reset(token)

    def record(self, agent: str, completion: Completion, *, instance: str | None = None) -> None:
        # On every call's path: adds in place, no Totals made for the call itself.
        failed, attempts = completion.error is not None, completion.attempts
        prompt, answer = completion.usage.prompt_tokens, completion.usage.completion_tokens
        agent = agent or "unnamed"
        instance = instance if instance is not None else _INSTANCE.get()
        with self._lock:
            totals = [self._agents.get(agent) or self._agents.setdefault(agent, Totals())]
            if instance is not None:
                totals.append(self._instances.setdefault(instance, {}).setdefault(agent, Totals()))
            for t in totals:
                t.calls += 1
                t.failed += failed
                t.attempts += attempts
                t.prompt_tokens += prompt
                t.completion_tokens += answer

    def by_agent(self) -> dict[str, Totals]:
        with self._lock:
            return {a: Totals(**asdict(t)) for a, t in sorted(self._agents.items())}

    def total(self) -> Totals:
        out = Totals()
        for t in self.by_agent().values():
            out.add(t)
        return out

    def for_instance(self, instance_id: str) -> Totals:
        out = Totals()
        with self._lock:
            for t in self._instances.get(instance_id, {}).values():
                out.add(t)
        return out

    def summary(self, accepted: Iterable[str] | None = None) -> dict:
        """JSON: totals, per agent, per instance; with `accepted` (instance ids) also the sum
        over those instances and the mean per accepted instance."""
        with self._lock:
            per_instance = {i: {a: Totals(**asdict(t)) for a, t in agents.items()}
                            for i, agents in self._instances.items()}
        out: dict[str, Any] = {
            "total": self.total().to_json(),
            "agents": {a: t.to_json() for a, t in self.by_agent().items()},
            "instances": {i: {a: t.to_json() for a, t in sorted(agents.items())}
                          for i, agents in sorted(per_instance.items())},
        }
        if accepted is not None:
            ids = sorted(set(accepted))
            acc = Totals()
            for i in ids:
                for t in per_instance.get(i, {}).values():
                    acc.add(t)
            n = len(ids)
            out["accepted"] = {"instances": n, **acc.to_json(),
                               "tokens_per_instance": (acc.prompt_tokens + acc.completion_tokens) / n if n else 0.0}
        return out

    def merge(self, summary: dict) -> None:
        """Add another ledger's `summary()` (e.g. from a Ray worker process) into this one."""
        with self._lock:
            for a, d in summary.get("agents", {}).items():
                self._agents.setdefault(a, Totals()).add(Totals.from_json(d))
            for i, agents in summary.get("instances", {}).items():
                for a, d in agents.items():
                    self._instances.setdefault(i, {}).setdefault(a, Totals()).add(Totals.from_json(d))


# ---------------------------------------------------------------- the interface


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str | None
    ledger: TokenLedger

    async def complete(self, messages: list[dict], tools: list[dict] | None = None, *, agent: str = "",
                       response_format: dict | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, seed: int | None = None) -> Completion: ...

    async def aclose(self) -> None: ...


def check_messages(messages: Any) -> str | None:
    """Why `messages` is not a usable chat (None when it is): bad input becomes a recorded
    error before any request is sent, instead of an exception deep inside a client."""
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list of chat messages"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool", "developer"):
            return f"message {i} is not a chat message with a known role"
    return None


def tool_name(tool: dict) -> str:
    """The function name of an OpenAI tool schema ({"type": "function", "function": {...}})."""
    fn = tool.get("function", tool) if isinstance(tool, dict) else {}
    return str(fn.get("name", "")) if isinstance(fn, dict) else ""


# ---------------------------------------------------------------- a generating process's heap

_SETTLED = False


def settle_heap(modules: Iterable[str] = ()) -> bool:
    """Import `modules`, collect garbage once, then `gc.freeze()`: every object alive now (the
    import graph of openai, pydantic and aiohttp, a run's compiled plan and world) moves to
    the permanent generation, which the cyclic collector no longer walks.

    Why: a model call allocates a few hundred short-lived objects; each full collection then
    walks the whole import graph (hundreds of thousands of objects), about 15% of the client's
    CPU at high concurrency (bench/saturation.py). Freezing is process-wide, so it is the
    process owner's decision, made once: the executors call this in a process that generates
    through the openai backend (the `eigen run` process, each Ray actor), and the bench calls
    it as such a process would. Nothing else does (importing runtime.backends changes no GC
    state). The cost: an object alive now that later becomes cyclic garbage is never freed;
    what lives at this point lives for the process anyway. Returns False after the first call
    (it does nothing then)."""
    global _SETTLED
    if _SETTLED:
        return False
    import gc
    import importlib

    for name in modules:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
    _SETTLED = True
    return True


# ---------------------------------------------------------------- sync callers

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop on a daemon thread, shared by every sync caller: a backend's client and
    concurrency limit belong to one loop, so threads that call `run_sync` at the same time
    share the limit instead of each spinning up a loop (and a connection pool) of its own."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="eigen-backends", daemon=True).start()
            _LOOP = loop
        return _LOOP


def run_sync(coro: Awaitable[T]) -> T:
    """Run a backend coroutine from synchronous code (a worker on a thread, a CLI command) and
    return its result. The caller's context variables (e.g. `TokenLedger.instance`) go with
    it. Must not be called from the backends' own loop thread (it would wait on itself)."""
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("run_sync called from inside the backend loop; await the coroutine instead")
    ctx = contextvars.copy_context()
    done: concurrent.futures.Future = concurrent.futures.Future()

    def start() -> None:
        task = loop.create_task(coro, context=ctx)  # type: ignore[arg-type]

        def finish(t: asyncio.Task) -> None:
            if t.cancelled():
                done.cancel()
            elif t.exception() is not None:
                done.set_exception(t.exception())  # type: ignore[arg-type]
            else:
                done.set_result(t.result())

        task.add_done_callback(finish)

    loop.call_soon_threadsafe(start)
    return done.result()
