"""Any OpenAI-compatible chat endpoint (OpenAI, a vLLM or SGLang server, the test server) through
the official `openai` client.

Retries live in one place, here (tenacity): the client is built with `max_retries=0`, so a
request is never retried behind our back and `Completion.attempts` is the number of requests
the server saw. Retried: 408, 409, 429 (waiting at least its Retry-After), 5xx, timeouts,
connection errors and unreadable answers. Not retried: other 4xx (the request itself is
wrong; sending it again cannot help). `openai` is imported when the first client is built.

How a request is sent (`send=`); client CPU per call is what bounds throughput at high
concurrency (bench/saturation.py, 2 cores), so the default is the leanest way that still goes
through the openai client:

- "http" (default): the openai client's own HTTP client (the SDK's aiohttp transport, its
  connection pool) sends a request built here from the client's base URL, headers (auth,
  user agent, x-stainless-*) and timeout, which are fixed for the client's life; a 4xx/5xx
  becomes the SDK's own status error (`_make_status_error_from_response`), transport
  failures its APITimeoutError / APIConnectionError, as the SDK's request loop does.
  Measured on a quiet 2-core machine: about 0.35 ms of client CPU per call against 0.7 ms
  for "sdk", and a saturation ratio of 0.91-0.93 at concurrency 64 against 0.89-0.92.
- "sdk": the client's generic `post("/chat/completions", cast_to=Response)`, the SDK's whole
  request pipeline (per-request options model, header and URL merging, auth hooks). Used
  also whenever "http" is not possible: auth that changes per request, or an SDK build
  without the internals "http" uses (then `backend.send` reads "sdk").

Either way the JSON is encoded and read here: `chat.completions.create` walks every message
through the SDK's TypedDict transform and builds pydantic models for the answer (about 2.2 ms
per call). Our messages are plain JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import ssl
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from .base import Completion, TokenLedger, Usage, check_messages, run_sync

RETRY_STATUS = frozenset({408, 409, 429})
SEND_MODES = ("http", "sdk")
_JSON_HEADERS = {"Content-Type": "application/json"}


class BadResponse(Exception):
    """The endpoint answered 2xx with something that is not a chat completion."""


@dataclass
class _LoopState:
    """What must belong to one event loop: the openai client (its connection pool), the
    semaphore that bounds requests in flight, and how one request body is sent."""

    client: Any
    sem: asyncio.Semaphore
    post: Callable[[bytes], Awaitable[bytes]]  # JSON request body → the 2xx answer's body


class OpenAIBackend:
    name = "openai"

    def __init__(self, *, base_url: str | None = None, model: str | None = None, concurrency: int = 16,
                 request_timeout: float = 60.0, max_retries: int = 3, api_key: str | None = None,
                 backoff: float = 0.5, max_backoff: float = 20.0, ledger: TokenLedger | None = None,
                 jitter_seed: int = 0, send: str = "http") -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if send not in SEND_MODES:
            raise ValueError(f"send must be one of {', '.join(SEND_MODES)}, not {send!r}")
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        self.base_url = base_url or os.environ.get("EIGEN_BASE_URL") or None  # None: api.openai.com
        # "EMPTY" is what local vLLM/SGLang servers accept when they were started without a key.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or os.environ.get("EIGEN_API_KEY") or "EMPTY"
        self.model = model or os.environ.get("EIGEN_MODEL") or None
        self.concurrency = concurrency
        self.request_timeout = float(request_timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
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

            httpx = sys.modules[_httpx_module(openai)]
            limits = httpx.Limits(max_connections=self.concurrency + 8, max_keepalive_connections=self.concurrency)
            client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                                        timeout=self.request_timeout, http_client=_http_client(openai, limits))
            post = _ClientPost.of(client, openai, httpx) if self.send == "http" else None
            if post is None:
                self.send = "sdk"
                post = _sdk_post(client, httpx.Response)
            st = self._loops[loop] = _LoopState(client, asyncio.Semaphore(self.concurrency), post)
            # A backend dropped without aclose() still closes its connections (on their loop).
            weakref.finalize(self, _close_on, loop, st.client)
        return st

    async def aclose(self) -> None:
        """Close the client of the running loop (the one this coroutine runs on)."""
        st = self._loops.pop(asyncio.get_running_loop(), None)
        if st is not None:
            await st.client.close()

    def close(self) -> None:
        """Close the client that `run_sync` calls use."""
        run_sync(self.aclose())

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

        attempts, replay = 1, []
        try:
            try:
                completion = await self._attempt(st, request)
            except Exception as e:  # the retry machinery is built only for a call that needs it
                replay.append(e)
            if replay:
                retrying = AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=self._wait,
                                         retry=retry_if_exception(retryable), reraise=True)
                async for attempt in retrying:
                    with attempt:
                        if replay:  # tenacity's attempt 1 is the failure above, replayed: its
                            raise replay.pop()  # stop, wait and Retry-After see what happened
                        attempts += 1
                        completion = await self._attempt(st, request)
        except Exception as e:  # every failure becomes a recorded error, never an exception
            error = f"{describe(e, self.request_timeout)} ({attempts} attempt{'s' if attempts != 1 else ''})"
            return self._done(agent, Completion.failure(error, attempts=attempts,
                                                        latency_s=time.perf_counter() - t0))
        completion.attempts = attempts
        completion.latency_s = time.perf_counter() - t0
        return self._done(agent, completion)

    async def _attempt(self, st: _LoopState, request: dict) -> Completion:
        async with st.sem:  # held per attempt, not across backoff sleeps, so waiting frees a slot
            async with asyncio.timeout(self.request_timeout):
                # Encoded here (C json) rather than by the SDK's pydantic-aware encoder; the
                # body is read inside the timeout: a stalled body is a timeout too.
                body = await st.post(json.dumps(request, ensure_ascii=False).encode())
        try:
            data = json.loads(body)
        except ValueError as e:
            raise BadResponse(f"body is not JSON ({e})") from None
        return parse_response(data)

    def _done(self, agent: str, completion: Completion) -> Completion:
        self.ledger.record(agent, completion)
        return completion

    def _wait(self, retry_state: Any) -> float:
        """Exponential backoff with jitter (half fixed, half random), and never less than a
        429's Retry-After; capped at max_backoff."""
        n = retry_state.attempt_number
        base = min(self.max_backoff, self.backoff * 2 ** (n - 1))
        wait = base * (0.5 + 0.5 * self._jitter.random())
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = retry_after(exc)
        if after is not None:
            wait = max(wait, after)
        return min(wait, self.max_backoff)

    async def _discover_model(self, st: _LoopState) -> str | None:
        """A local server usually serves one model: take the first from GET /models, so
        `--model` can be left out. Returns why it failed, or None."""
        if self._model_error is not None:
            return self._model_error
        try:
            async with asyncio.timeout(self.request_timeout):
                page = await st.client.models.list(timeout=self.request_timeout)
            ids = sorted(m.id for m in page.data)
        except Exception as e:
            return f"no model given (--model or EIGEN_MODEL) and GET /models failed: {describe(e, self.request_timeout)}"
        if not ids:
            self._model_error = "no model given (--model or EIGEN_MODEL) and the endpoint lists none"
            return self._model_error
        if self.model is None:
            self.model = ids[0]
        return None


# ---------------------------------------------------------------- sending


class _ClientPost:
    """POST /chat/completions through the openai client's own HTTP client ("http" above).

    The SDK's request loop rebuilds, per request, what is fixed here once per client: an
    options model, merged headers, the parsed URL (about 0.35 ms of CPU per call). The
    headers are the SDK's own (`default_headers`, `auth_headers`), so the endpoint sees the
    same request either way."""

    def __init__(self, client: Any, openai: Any, httpx: Any) -> None:
        self.http = client._client  # the SDK's HTTP client: its aiohttp transport and pool
        self.make_status_error = client._make_status_error_from_response
        self.openai, self.httpx = openai, httpx
        self.url = httpx.URL(str(client.base_url).rstrip("/") + "/chat/completions")
        timeout = httpx.Timeout(client.timeout)
        # The HTTP client's defaults, then the SDK's, as the SDK merges them. Omit() values are
        # its "no such header" (no organization, no project). The SDK never retries (we built
        # it with max_retries=0), so its retry count header is always 0.
        sdk = {**client.default_headers, **client.auth_headers, **_JSON_HEADERS,
               "x-stainless-retry-count": "0", "x-stainless-read-timeout": str(timeout.read)}
        self.headers = httpx.Headers(self.http.headers)
        self.headers.update({k: v for k, v in sdk.items() if isinstance(v, str)})  # case-insensitive
        self.extensions = {"timeout": timeout.as_dict()}  # what the SDK's build_request sets
        # What the SDK's request loop turns into APIConnectionError (anyio: httpx's own transport).
        import anyio

        self.failures = (httpx.RequestError, ssl.SSLError, anyio.EndOfStream)

    @classmethod
    def of(cls, client: Any, openai: Any, httpx: Any) -> _ClientPost | None:
        """None where this client needs the SDK's per-request pipeline: auth that changes per
        request (key providers, workload identity, provider hooks), or an SDK build without
        the internals used here."""
        per_request_auth = ("_api_key_provider", "_workload_identity_auth", "_provider_runtime", "custom_auth")
        if any(getattr(client, name, None) is not None for name in per_request_auth):
            return None
        if not hasattr(client, "_client") or not hasattr(client, "_make_status_error_from_response"):
            return None
        return cls(client, openai, httpx)

    async def __call__(self, body: bytes) -> bytes:
        httpx, openai = self.httpx, self.openai
        request = httpx.Request("POST", self.url, content=body, headers=self.headers, extensions=self.extensions)
        # The same mapping as the SDK's request loop: timeouts, then any other transport failure.
        try:
            response = await self.http.send(request)  # not streamed: the body is read here
        except httpx.TimeoutException as e:
            raise openai.APITimeoutError(request=request) from e
        except self.failures as e:
            raise openai.APIConnectionError(request=request) from e
        if response.status_code >= 400:
            raise self.make_status_error(response)
        return response.content


def _sdk_post(client: Any, raw: type) -> Callable[[bytes], Awaitable[bytes]]:
    """POST /chat/completions through the SDK's whole request pipeline ("sdk" above);
    `cast_to=raw` (the httpx Response class) returns the undecoded answer."""

    async def post(body: bytes) -> bytes:
        response = await client.post("/chat/completions", cast_to=raw, content=body,
                                     options={"headers": _JSON_HEADERS})
        return response.content

    return post


# ---------------------------------------------------------------- helpers (pure, testable)


def _httpx_module(openai: Any) -> str:
    """The httpx package this openai build is made on (httpx, or httpx2 in newer builds)."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__[1:]:
        root = cls.__module__.split(".")[0]
        if root.startswith("httpx"):
            return root
    return "httpx"


def _close_on(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    if not loop.is_closed() and loop.is_running():
        loop.call_soon_threadsafe(lambda: loop.create_task(client.close()))


def _http_client(openai: Any, limits: Any) -> Any:
    """The SDK's aiohttp transport where this openai build has it (the SDK recommends it for
    concurrency: a third of httpx's CPU per call here, see bench/saturation.py), else httpx.
    Either way sized so the connection pool never queues below our own semaphore."""
    aio = getattr(openai, "DefaultAioHttpClient", None)
    if aio is not None:
        try:
            return aio(limits=limits)
        except RuntimeError:  # the SDK stub that says "install openai[aiohttp]"
            pass
    return openai.DefaultAsyncHttpxClient(limits=limits)


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
    return f"{type(exc).__name__}: {str(exc)[:200]}"
