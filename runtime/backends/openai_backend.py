"""Any OpenAI-compatible chat endpoint (OpenAI, a vLLM or SGLang server, the test server), or
several of them behind one backend, through the official `openai` client's requests.

Retries live in one place, here (tenacity): the client is built with `max_retries=0`, so a
request is never retried behind our back and `Completion.attempts` is the number of requests
the endpoints saw. Retried: 408, 409, 429 (waiting its Retry-After when that is at most
`max_retry_after`, 60 s by default), 5xx, timeouts, connection errors and unreadable answers.
Not retried: other 4xx (the request itself is wrong; sending it again cannot help), a 429
that asks for a longer wait than `max_retry_after`, and an answer over the size cap.

Several endpoints (`base_url` a list; endpoints.py): each attempt goes to the endpoint that
is up with the fewest requests in flight, a retry to another endpoint than the one that
failed where one is up, and an endpoint that keeps failing is taken out until a probe finds
it back. An attempt that failed because its endpoint went away (connection refused, reset or
dropped: the request got no answer) is sent on to another endpoint at once, without backoff
and without counting against `max_retries` (at most one such failover per other endpoint).
The body is encoded once per call, so every endpoint sees the same request, sampling seed
included.

An endpoint is not trusted to be small or quick: a body is read incrementally and given up at
`max_response_bytes` (8 MiB by default, or EIGEN_MAX_RESPONSE_BYTES), a Content-Length over
the cap is refused before reading, error bodies are read up to 64 KiB, and one `complete()`
never spends more than `deadline` seconds (default max(2 × request_timeout, 120 s)) on its
attempts and backoff sleeps together: an attempt's timeout is cut to what is left, and a
retry whose sleep would pass the deadline is not made. `openai` and aiohttp are imported when
the first client is built.

How the request goes on the wire (`send="http"`, the default, or `"sdk"`) is http_send.py's
business. Either way the JSON is encoded and read here (C json, into our Completion):
`chat.completions.create` walks every message through the SDK's TypedDict transform and
builds pydantic models for the answer (about 2.2 ms per call). Our messages are plain JSON.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import socket
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception

from .base import Completion, TokenLedger, Usage, check_messages, run_sync
from .endpoints import CONNECTION, GONE, REFUSED, SERVER_ERROR, TIMEOUT, Endpoint, EndpointPool
from .http_send import (
    AioSender,
    ResponseTooLarge,
    SdkSender,
    can_send_http,
    close_on,
    httpx_module,
    sdk_http_client,
)

RETRY_STATUS = frozenset({408, 409, 429})
SEND_MODES = ("http", "sdk")
MAX_RESPONSE_BYTES = 8 * 2**20
MAX_RETRY_AFTER = 60.0
PROBE_TIMEOUT = 5.0  # seconds for a health probe (GET /models) of an endpoint that was taken out
IMPORTS = ("openai", "aiohttp")  # what building a client imports (runtime.backends.settle_heap)


class BadResponse(Exception):
    """The endpoint answered 2xx with something that is not a chat completion."""


class _Call:
    """One `complete()`'s progress across attempts: its deadline (started when its first
    attempt gets a slot), where its last attempt failed, and the failovers it has used."""

    __slots__ = ("deadline", "start", "expired", "last", "failover", "free")

    def __init__(self, deadline: float) -> None:
        self.deadline, self.start, self.expired = deadline, None, False
        self.last: Endpoint | None = None
        self.failover = False  # the last failure is sent on at once, not counted as a retry
        self.free = 0  # failovers used

    def begin(self) -> None:
        if self.start is None:
            self.start = time.monotonic()

    def left(self) -> float:
        return self.deadline if self.start is None else self.deadline - (time.monotonic() - self.start)


@dataclass
class _LoopState:
    """What must belong to one event loop: the sender (its connection pool), the endpoints'
    health, the semaphore that bounds requests in flight."""

    sender: AioSender | SdkSender
    pool: EndpointPool
    sem: asyncio.Semaphore
    discovery: asyncio.Lock


def _base_urls(base_url: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """The endpoints, in the order given (ties in balancing go to the first); none: the SDK's
    default (OPENAI_BASE_URL or api.openai.com)."""
    if base_url is None:  # several separated by spaces, as the CLI reads the variable for --base-url
        base_url = os.environ.get("EIGEN_BASE_URL", "").split() or None
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    urls = [u.strip() for u in urls if u and u.strip()]
    if len(set(u.rstrip("/") for u in urls)) != len(urls):
        raise ValueError(f"an endpoint is given twice: {', '.join(urls)}")
    return urls


class OpenAIBackend:
    name = "openai"

    def __init__(self, *, base_url: str | list[str] | tuple[str, ...] | None = None, model: str | None = None,
                 concurrency: int = 16, request_timeout: float = 60.0, max_retries: int = 3,
                 api_key: str | None = None, backoff: float = 0.5, max_backoff: float = 20.0,
                 ledger: TokenLedger | None = None, jitter_seed: int = 0, send: str = "http",
                 max_response_bytes: int | None = None, max_retry_after: float = MAX_RETRY_AFTER,
                 deadline: float | None = None, trip_after: int | None = None, cooldown: float | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if send not in SEND_MODES:
            raise ValueError(f"send must be one of {', '.join(SEND_MODES)}, not {send!r}")
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        self.base_urls = _base_urls(base_url)
        self.base_url = self.base_urls[0] if self.base_urls else None  # None: api.openai.com
        # "EMPTY" is what local vLLM/SGLang servers accept when they were started without a key.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or os.environ.get("EIGEN_API_KEY") or "EMPTY"
        self.model = model or os.environ.get("EIGEN_MODEL") or None
        self.concurrency = concurrency
        self.request_timeout = float(request_timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        env_cap = os.environ.get("EIGEN_MAX_RESPONSE_BYTES")
        self.max_response_bytes = int(max_response_bytes if max_response_bytes is not None
                                      else env_cap if env_cap else MAX_RESPONSE_BYTES)
        if self.max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        self.max_retry_after = float(max_retry_after)
        self.deadline = float(deadline) if deadline is not None else max(2 * self.request_timeout, 120.0)
        if self.deadline <= 0:
            raise ValueError("deadline must be positive")
        self.breaker = {k: v for k, v in (("trip_after", trip_after), ("cooldown", cooldown)) if v is not None}
        self.ledger = ledger if ledger is not None else TokenLedger()
        self.send = send  # what was asked; "sdk" where the SDK build leaves no choice (see _state)
        # Jitter only spreads retries in time; it never reaches an output. Its own stream keeps
        # the process's global random untouched.
        self._jitter = random.Random(jitter_seed)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._model_error: str | None = None

    # ------------------------------------------------------------ per-loop client

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        st = self._loops.get(loop)
        if st is None:
            import openai

            httpx = sys.modules[httpx_module(openai)]
            limits = httpx.Limits(max_connections=self.concurrency + 8, max_keepalive_connections=self.concurrency)

            def client(url: str | None) -> Any:
                return openai.AsyncOpenAI(base_url=url, api_key=self.api_key, max_retries=0,
                                          timeout=self.request_timeout, http_client=sdk_http_client(openai, limits))

            first = client(self.base_urls[0] if self.base_urls else None)
            bases = self.base_urls or [str(first.base_url)]
            cap = self.max_response_bytes
            if self.send == "http" and can_send_http(first):
                sender: AioSender | SdkSender = AioSender(first, openai, httpx, bases, self.concurrency, cap)
            else:
                self.send = "sdk"
                sender = SdkSender([first] + [client(u) for u in bases[1:]], httpx, cap)
            probe_timeout = min(self.request_timeout, PROBE_TIMEOUT)
            pool = EndpointPool(bases, functools.partial(_probe, sender, probe_timeout), **self.breaker)
            st = self._loops[loop] = _LoopState(sender, pool, asyncio.Semaphore(self.concurrency), asyncio.Lock())
            # A backend dropped without aclose() still closes its connections (on their loop).
            weakref.finalize(self, close_on, loop, st.sender.aclose)
        return st

    async def aclose(self) -> None:
        """Close the connections of the running loop (the one this coroutine runs on)."""
        st = self._loops.pop(asyncio.get_running_loop(), None)
        if st is not None:
            await st.pool.aclose()
            await st.sender.aclose()

    def close(self) -> None:
        """Close the connections that `run_sync` calls use."""
        run_sync(self.aclose())

    def endpoint_stats(self) -> list[dict]:
        """Per endpoint: url, up, in flight, answered, failed, times taken out (summed over
        the event loops this backend has been used on)."""
        out = [{"url": u, "up": True, "in_flight": 0, "answered": 0, "failed": 0, "taken_out": 0}
               for u in self.base_urls or ["(default)"]]
        for st in list(self._loops.values()):
            for row, ep in zip(out, st.pool.endpoints):
                row["url"], row["up"] = ep.url, row["up"] and ep.up
                for k in ("in_flight", "answered", "failed"):
                    row[k] += getattr(ep, k)
                row["taken_out"] += ep.trips
        return out

    # ------------------------------------------------------------ one call

    async def complete(self, messages: list[dict], tools: list[dict] | None = None, *, agent: str = "",
                       response_format: dict | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, seed: int | None = None) -> Completion:
        t0 = time.perf_counter()
        problem = check_messages(messages)
        st = self._state()
        if problem is None and self.model is None:
            problem = await self._discover_model(st)
        if problem is not None:
            return self._done(agent, Completion.failure(problem, attempts=0, latency_s=time.perf_counter() - t0))
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        for key, value in (("tools", tools or None), ("response_format", response_format),
                           ("temperature", temperature), ("max_tokens", max_tokens), ("seed", seed)):
            if value is not None:
                request[key] = value
        # Encoded once (C json, not the SDK's pydantic-aware encoder): every attempt, on any
        # endpoint, sends these bytes.
        body = json.dumps(request, ensure_ascii=False).encode()

        attempts, replay, call = 1, [], _Call(self.deadline)
        try:
            try:
                completion = await self._attempt(st, body, call)
            except Exception as e:  # the retry machinery is built only for a call that needs it
                replay.append(e)
            if replay:
                def stop(state: Any) -> bool:  # out of retries, or the sleep would pass the deadline
                    if state.attempt_number - call.free >= self.max_retries + 1:
                        return True
                    call.expired = (state.upcoming_sleep or 0.0) >= call.left()
                    return call.expired

                def wait(state: Any) -> float:  # a failover goes at once
                    return 0.0 if call.failover else self._wait(state)

                retrying = AsyncRetrying(stop=stop, wait=wait, reraise=True,
                                         retry=retry_if_exception(self._retryable))
                async for attempt in retrying:
                    with attempt:
                        if replay:  # tenacity's attempt 1 is the failure above, replayed: its
                            raise replay.pop()  # stop, wait and Retry-After see what happened
                        attempts += 1
                        completion = await self._attempt(st, body, call)
        except Exception as e:  # every failure becomes a recorded error, never an exception
            error = f"{self._describe(e, call)} ({attempts} attempt{'s' if attempts != 1 else ''})"
            return self._done(agent, Completion.failure(error, attempts=attempts,
                                                        latency_s=time.perf_counter() - t0))
        completion.attempts = attempts
        completion.latency_s = time.perf_counter() - t0
        return self._done(agent, completion)

    async def _attempt(self, st: _LoopState, body: bytes, call: _Call) -> Completion:
        async with st.sem:  # held per attempt, not across backoff sleeps, so waiting frees a slot
            call.begin()
            left = call.left()
            if left <= 0:
                call.expired = True
                raise TimeoutError("the request's deadline passed")
            pool = st.pool
            ep = pool.pick(call.last)
            ep.in_flight += 1
            try:
                async with asyncio.timeout(min(self.request_timeout, left)):
                    # the body is read inside the timeout: a stalled body times out too
                    answer = await st.sender.post(ep.index, body)
            except Exception as e:
                self._failed(pool, ep, e, call)
                raise
            finally:
                ep.in_flight -= 1
            pool.answered(ep)
        try:
            data = json.loads(answer)
        except ValueError as e:
            raise BadResponse(f"body is not JSON ({e})") from None
        return parse_response(data)

    def _failed(self, pool: EndpointPool, ep: Endpoint, exc: Exception, call: _Call) -> None:
        """Book a failed attempt on its endpoint, and decide whether it is a failover."""
        kind = health(exc)
        if kind is None and getattr(exc, "status_code", 500) < 500:
            pool.answered(ep)  # a 4xx: the request's fault, and proof the endpoint is alive
        else:
            pool.failed(ep, kind)
        call.last = ep
        call.failover = kind in GONE and call.free < len(pool.endpoints) - 1 and pool.others_up(ep)
        call.free += call.failover

    def _done(self, agent: str, completion: Completion) -> Completion:
        self.ledger.record(agent, completion)
        return completion

    def _wait(self, retry_state: Any) -> float:
        """Exponential backoff with jitter (half fixed, half random), capped at max_backoff,
        and never less than a 429's Retry-After (which `_retryable` keeps under
        max_retry_after)."""
        n = retry_state.attempt_number
        base = min(self.max_backoff, self.backoff * 2 ** (n - 1))
        wait = base * (0.5 + 0.5 * self._jitter.random())
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = retry_after(exc)
        return max(wait, min(after, self.max_retry_after)) if after is not None else wait

    def _retryable(self, exc: BaseException) -> bool:
        after = retry_after(exc)
        return retryable(exc) and (after is None or after <= self.max_retry_after)

    def _describe(self, exc: BaseException, call: _Call) -> str:
        text = describe(exc, self.request_timeout)
        after = retry_after(exc)
        if after is not None and after > self.max_retry_after:
            text += f"; Retry-After {after:g}s is over the {self.max_retry_after:g}s cap, not retried"
        elif call.expired:
            text += f"; stopped by the request's {self.deadline:g}s deadline"
        return text

    async def _discover_model(self, st: _LoopState) -> str | None:
        """A local server usually serves one model: take the first from GET /models (of the
        first endpoint that answers), so `--model` can be left out. Returns why it failed, or
        None."""
        async with st.discovery:  # one request, not one per call waiting for it
            if self._model_error is not None or self.model is not None:
                return self._model_error
            why = ""
            for ep in st.pool.endpoints:
                try:
                    async with asyncio.timeout(self.request_timeout):
                        ids = await st.sender.list_models(ep.index)
                except Exception as e:
                    why = describe(e, self.request_timeout)
                    continue
                if not ids:
                    self._model_error = "no model given (--model or EIGEN_MODEL) and the endpoint lists none"
                    return self._model_error
                self.model = ids[0]
                return None
            return f"no model given (--model or EIGEN_MODEL) and GET /models failed: {why}"


# ---------------------------------------------------------------- helpers (pure, testable)


def parse_response(data: Any) -> Completion:
    """A chat completion (decoded JSON) → Completion; attempts and latency are the caller's.
    Anything that is not a chat completion raises BadResponse (retried like a 5xx)."""
    try:
        choice = data["choices"][0]
        msg = choice["message"]
        message: dict[str, Any] = {"role": "assistant", "content": msg.get("content")}
        calls = [{"id": str(tc.get("id") or ""), "type": "function",
                  "function": {"name": str((tc.get("function") or {}).get("name") or ""),
                               "arguments": (tc.get("function") or {}).get("arguments") or ""}}
                 for tc in msg.get("tool_calls") or []]
        usage = data.get("usage") or {}
        usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise BadResponse(f"not a chat completion: {str(data)[:200]!r}") from None
    if calls:
        message["tool_calls"] = calls
    return Completion(message=message, finish_reason=choice.get("finish_reason"), usage=usage)


def retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, (TimeoutError, openai.APITimeoutError, openai.APIConnectionError, BadResponse)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    # A 2xx body the SDK cannot read: a broken answer, worth another try like a 5xx.
    return isinstance(exc, openai.APIResponseValidationError)


def retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if getattr(exc, "status_code", None) != 429 or headers is None:
        return None
    try:
        return max(0.0, float(headers.get("retry-after")))
    except (TypeError, ValueError):
        return None


def _connection_failure(exc: BaseException) -> str | None:
    """The OS-level reason (ConnectionRefusedError, gaierror, ...) under an SDK error, if any."""
    seen: BaseException | None = exc
    for _ in range(10):  # cause chains are short; never loop on a cyclic one
        if seen is None:
            return None
        if isinstance(seen, (ConnectionError, socket.gaierror)):
            return type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: BaseException, timeout: float) -> str:
    """A short, stable description of why a call failed."""
    import openai

    refused = _connection_failure(exc)
    if refused is not None:  # before timeouts: some transports report a refused connect as one
        return f"connection error: {refused}"
    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return f"timeout after {timeout:g}s"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection error: {exc}"
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, (str, dict)) else exc.message
        return f"HTTP {exc.status_code}: {str(body)[:200]}"
    if isinstance(exc, BadResponse):
        return f"bad response: {exc}"
    if isinstance(exc, ResponseTooLarge):
        return f"response too large: {exc}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


async def _probe(sender: AioSender | SdkSender, timeout: float, ep: Endpoint) -> None:
    """Whether an endpoint that was taken out answers again: GET /models; returns for any
    status below 500, raises otherwise. (No reference to the backend: a pool must not keep
    its backend alive.)"""
    import openai

    try:
        async with asyncio.timeout(timeout):
            await sender.list_models(ep.index)
    except openai.APIStatusError as e:
        if e.status_code >= 500:
            raise


def health(exc: BaseException) -> str | None:
    """What a failed attempt says about its endpoint's health (endpoints.HEALTH_FAILURES), or
    None: a 4xx, a bad or oversized answer, a cancelled call say nothing about it."""
    import openai

    cause = _connection_failure(exc)  # first: some transports report a refused connect as a timeout
    if cause is not None:
        return REFUSED if cause == "ConnectionRefusedError" else CONNECTION
    if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):
        return CONNECTION
    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return TIMEOUT
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return SERVER_ERROR
    return None
