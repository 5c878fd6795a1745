"""How the openai backend puts a chat request on the wire (`send=`), and reads the answer
without trusting its size.

Client CPU per call is what bounds throughput at high concurrency (bench/saturation.py: at a
fixed latency each wave of C calls also waits for C calls' worth of client CPU), so the
default is the leanest path that still makes the official client's request:

- "http" (default), `AioSender`: one aiohttp session (aiohttp is already a dependency, through
  ray[default], and is the transport the SDK itself recommends for concurrency) posts the
  body to each endpoint's URL with the headers the openai client would send (its
  `default_headers` and `auth_headers`, the HTTP client's defaults, taken once from a real
  `AsyncOpenAI`). A 4xx/5xx becomes the SDK's own status error
  (`_make_status_error_from_response`: RateLimitError, InternalServerError, ...); a timeout
  APITimeoutError, any other transport failure APIConnectionError (its cause kept), as the
  SDK's request loop maps them. No httpx objects are made on the success path: that layer
  (the SDK's aiohttp transport under httpx's client) cost about 0.25 ms of CPU per call.
- "sdk", `SdkSender`: the client's generic `post("/chat/completions")`, the SDK's whole request
  pipeline (per-request options model, header and URL merging, auth hooks). Used also
  whenever "http" is not possible: auth that changes per request, or an SDK build without the
  internals used here (then `backend.send` reads "sdk").

Both read a body chunk by chunk up to a cap (`read_capped`), refuse a Content-Length over it
unread, and read error bodies up to ERROR_BODY_BYTES.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

JSON_HEADERS = {"Content-Type": "application/json"}
ERROR_BODY_BYTES = 64 * 2**10  # of a 4xx/5xx body: enough for any error message
_BODY_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})
_CHUNK = 2**16


class ResponseTooLarge(Exception):
    """The answer passed the size cap (not retried: the same request would get the same)."""


def chat_url(base: str) -> str:
    return base.rstrip("/") + "/chat/completions"


def models_url(base: str) -> str:
    return base.rstrip("/") + "/models"


class AioSender:
    """send="http": our aiohttp session, the openai client's headers and error types."""

    name = "http"

    def __init__(self, client: Any, openai: Any, httpx: Any, bases: list[str], concurrency: int, cap: int) -> None:
        import aiohttp
        import yarl

        self.openai, self.httpx, self.cap = openai, httpx, cap
        self.client = client  # sends nothing here; closed with the session
        self.make_status_error = client._make_status_error_from_response
        timeout = httpx.Timeout(client.timeout)
        # The HTTP client's defaults, then the SDK's, as the SDK merges them. Omit() values are
        # its "no such header" (no organization, no project). The SDK never retries (it is
        # built with max_retries=0), so its retry count header is always 0.
        sdk = {**client.default_headers, **client.auth_headers, **JSON_HEADERS,
               "x-stainless-retry-count": "0", "x-stainless-read-timeout": str(timeout.read)}
        headers = httpx.Headers(client._client.headers)
        headers.update({k: v for k, v in sdk.items() if isinstance(v, str)})  # case-insensitive
        items = list(headers.multi_items())  # lower-case names, as the SDK's transport hands them on
        self.chat = [yarl.URL(chat_url(b)) for b in bases]
        self.models = [yarl.URL(models_url(b)) for b in bases]
        # No session timeout: the backend bounds each attempt with asyncio.timeout (one timer,
        # not aiohttp's per-request handles). No cookies: an API endpoint's cookies mean nothing.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 8), headers=items,
            cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=None))
        # What the SDK's request loop turns into APIConnectionError.
        self.failures = (aiohttp.ClientError, OSError, ssl.SSLError)
        self.timeouts = (aiohttp.ServerTimeoutError,)

    async def post(self, index: int, body: bytes) -> bytes:
        """The 2xx answer's body of POST /chat/completions on endpoint `index`."""
        url = self.chat[index]
        try:
            async with self.session.post(url, data=body) as response:
                if response.status >= 400:
                    raise await self._status_error(response, "POST", url)
                length = response.content_length
                if length is not None and length <= self.cap and "Content-Encoding" not in response.headers:
                    return await response.read()  # the common case, read_capped's fast path inlined
                return await read_capped(_AioBody(response), self.cap)
        except self.timeouts as e:
            raise self.openai.APITimeoutError(request=self.httpx.Request("POST", str(url))) from e
        except self.failures as e:
            raise self.openai.APIConnectionError(request=self.httpx.Request("POST", str(url))) from e

    async def list_models(self, index: int) -> list[str]:
        """GET /models on endpoint `index`: the ids it serves (discovery, and health probes)."""
        url = self.models[index]
        try:
            async with self.session.get(url) as response:
                if response.status >= 400:
                    raise await self._status_error(response, "GET", url)
                data = await response.json(content_type=None)
        except self.timeouts as e:
            raise self.openai.APITimeoutError(request=self.httpx.Request("GET", str(url))) from e
        except self.failures as e:
            raise self.openai.APIConnectionError(request=self.httpx.Request("GET", str(url))) from e
        try:
            return sorted(str(m["id"]) for m in data["data"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"GET /models answered something that is not a model list: {str(data)[:200]!r}") from e

    async def _status_error(self, response: Any, method: str, url: Any) -> Exception:
        """The SDK's exception for a 4xx/5xx answer (made from an httpx response, as the SDK
        does; only on this path are httpx objects built)."""
        content = await read_capped(_AioBody(response), ERROR_BODY_BYTES, cut=True)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS]
        return self.make_status_error(self.httpx.Response(response.status, headers=headers, content=content,
                                                          request=self.httpx.Request(method, str(url))))

    async def aclose(self) -> None:
        await self.session.close()
        await self.client.close()


class SdkSender:
    """send="sdk": one openai client per endpoint, each request through its whole pipeline.
    `cast_to` the httpx Response class with `stream=True` returns the answer unread, so that
    it is read up to the cap. (The SDK reads an error status's body whole.)"""

    name = "sdk"

    def __init__(self, clients: list[Any], httpx: Any, cap: int) -> None:
        self.clients, self.raw, self.cap = clients, httpx.Response, cap

    async def post(self, index: int, body: bytes) -> bytes:
        response = await self.clients[index].post("/chat/completions", cast_to=self.raw, content=body,
                                                   options={"headers": JSON_HEADERS}, stream=True)
        return await read_capped(_HttpxBody(response), self.cap)

    async def list_models(self, index: int) -> list[str]:
        page = await self.clients[index].models.list()
        return sorted(m.id for m in page.data)

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


def can_send_http(client: Any) -> bool:
    """False where this client needs the SDK's per-request pipeline: auth that changes per
    request (key providers, workload identity, provider hooks), or an SDK build without the
    internals AioSender uses."""
    per_request_auth = ("_api_key_provider", "_workload_identity_auth", "_provider_runtime", "custom_auth")
    if any(getattr(client, name, None) is not None for name in per_request_auth):
        return False
    return hasattr(client, "_client") and hasattr(client, "_make_status_error_from_response")


# ---------------------------------------------------------------- reading a body up to a cap


class _AioBody:
    """An aiohttp response as `read_capped` reads it."""

    __slots__ = ("r",)

    def __init__(self, response: Any) -> None:
        self.r = response

    def header(self, name: str) -> str | None:
        return self.r.headers.get(name)

    def read(self) -> Awaitable[bytes]:
        return self.r.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self.r.content.iter_chunked(_CHUNK)

    async def close(self) -> None:
        self.r.release()


class _HttpxBody:
    """A streamed httpx response as `read_capped` reads it."""

    __slots__ = ("r",)

    def __init__(self, response: Any) -> None:
        self.r = response

    def header(self, name: str) -> str | None:
        return self.r.headers.get(name)

    def read(self) -> Awaitable[bytes]:
        return self.r.aread()

    def chunks(self) -> AsyncIterator[bytes]:
        return self.r.aiter_bytes()

    def close(self) -> Awaitable[None]:
        return self.r.aclose()


async def read_capped(body: _AioBody | _HttpxBody, cap: int, *, cut: bool = False) -> bytes:
    """The body, read chunk by chunk and then released; past `cap` bytes (decoded),
    ResponseTooLarge, or with `cut` the first `cap` bytes. A Content-Length over the cap is
    refused before anything is read."""
    try:
        length = body.header("content-length")
        known = int(length) if length and length.isdigit() else None
        if not cut and known is not None and known > cap:
            raise ResponseTooLarge(f"the answer is {known} bytes, over the {cap}-byte cap")
        if known is not None and known <= cap and body.header("content-encoding") in (None, "identity"):
            return await body.read()  # the framing bounds it (the common case: one read, less CPU)
        chunks, size = [], 0
        async for chunk in body.chunks():
            size += len(chunk)
            if size > cap:
                if cut:
                    chunks.append(chunk[: len(chunk) - (size - cap)])
                    break
                raise ResponseTooLarge(f"the answer passed the {cap}-byte cap; reading stopped there")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        await body.close()


# ---------------------------------------------------------------- building the openai client


def httpx_module(openai: Any) -> str:
    """The httpx package this openai build is made on (httpx, or httpx2 in newer builds)."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__[1:]:
        root = cls.__module__.split(".")[0]
        if root.startswith("httpx"):
            return root
    return "httpx"


def sdk_http_client(openai: Any, limits: Any) -> Any:
    """The SDK's aiohttp transport where this openai build has it (the SDK recommends it for
    concurrency), else httpx. Either way sized so the connection pool never queues below the
    backend's own semaphore."""
    aio = getattr(openai, "DefaultAioHttpClient", None)
    if aio is not None:
        try:
            return aio(limits=limits)
        except RuntimeError:  # the SDK stub that says "install openai[aiohttp]"
            pass
    return openai.DefaultAsyncHttpxClient(limits=limits)


def close_on(loop: asyncio.AbstractEventLoop, close: Callable[[], Awaitable[Any]]) -> None:
    """Run `close()` on `loop` if it is still running (a backend dropped without aclose())."""
    if not loop.is_closed() and loop.is_running():
        loop.call_soon_threadsafe(lambda: loop.create_task(close()))
