"""A real OpenAI-compatible HTTP server for tests and benchmarks (aiohttp).

    POST /v1/chat/completions   answers from a scripted policy (content and/or tool_calls)
    GET  /v1/models             lists the one model it serves
    GET  /stats                 {served, in_flight, max_in_flight} (for tests of servers run as processes)

A policy is `policy(request_json) -> assistant message dict`. The server adds usage counts,
a fixed latency, and faults: a `plan` (one fault name or None per request, in arrival order,
for exact tests) and then `rates` drawn from a seeded RNG, one draw per request. Faults:

    "400"         HTTP 400 (a request error: clients must not retry it)
    "500"         HTTP 500
    "429"         HTTP 429 with Retry-After
    "hang"        sleep `hang_s` before answering (past any sane client timeout)
    "truncated"   the JSON content (or tool arguments) cut in half
    "malformed"   JSON content (or tool arguments) that no JSON parser accepts
    "wrong_tool"  tool calls renamed to a tool that does not exist
    "bad_body"    HTTP 200 whose body is cut off mid-JSON
    "huge_body"   HTTP 200, a chat completion of `huge_bytes` (20 MB by default) whose content
                  is one long string, streamed in 64 KiB chunks without a Content-Length

Tool call ids (`ids=`): "order" (call_<arrival number>_<i>, the default) or "content"
(call_<hash of the request body>_<i>): the same request gets the same ids from any server at
any time, so runs balanced over several servers can be compared byte for byte.

In process: `with serve(policy, latency=0.2) as srv: srv.base_url` (a thread with its own
event loop). As a process: `python -m tests.llm_server.server --port N --latency 0.2`, with
`--policy competent:DOMAIN:SEED:SIZE [--tasks-dir DIR]` for the scripted competent model
(policies.py; DIR shared by the servers of one run) and `--ids content`.
Every request served is recorded in `srv.requests` (for assertions), unless the server was
made with `record=False`: the process form does that, since no test can read its list and a
long benchmark would only grow it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from aiohttp import web

FAULTS = ("400", "500", "429", "hang", "truncated", "malformed", "wrong_tool", "bad_body", "huge_body")
Policy = Callable[[dict], dict]
_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(value: Any) -> int:
    """A stand-in tokenizer: words and punctuation marks of the text (JSON for non-text)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return len(_TOKEN.findall(text))


# ---------------------------------------------------------------- policies


def example_of(schema: Any) -> Any:
    """A small value valid under a JSON Schema (enough for the types tools and workers use)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_of(schema[key][0])
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: example_of(props[k]) for k in schema.get("required", list(props))}
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "array": [], "null": None}.get(t, "x")


def last_text(request: dict) -> str:
    for m in reversed(request.get("messages") or []):
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def default_policy(request: dict) -> dict:
    """JSON when response_format asks for it; a call to the first offered tool (arguments from
    its schema) unless the last message is a tool result; otherwise an echo of the last text."""
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return {"role": "assistant", "content": json.dumps(example_of(fmt.get("json_schema", {}).get("schema")))}
    if fmt.get("type") == "json_object":
        return {"role": "assistant", "content": json.dumps({"answer": last_text(request)})}
    messages = request.get("messages") or []
    tools = request.get("tools") or []
    if tools and not (messages and messages[-1].get("role") == "tool"):
        fn = tools[0].get("function", {})
        args = example_of(fn.get("parameters", {"type": "object"}))
        return {"role": "assistant", "content": None,
                "tool_calls": [{"type": "function", "function": {"name": fn.get("name", ""),
                                                                 "arguments": json.dumps(args)}}]}
    return {"role": "assistant", "content": f"OK: {last_text(request)[:200]}"}


class ScriptedPolicy:
    """Answers with the given messages in order (the last one repeats), falling back to a
    function of the request for callables in the list."""

    def __init__(self, replies: list[dict | Policy]) -> None:
        if not replies:
            raise ValueError("a scripted policy needs at least one reply")
        self.replies, self._i, self._lock = list(replies), 0, threading.Lock()

    def __call__(self, request: dict) -> dict:
        with self._lock:
            reply = self.replies[min(self._i, len(self.replies) - 1)]
            self._i += 1
        return reply(request) if callable(reply) else dict(reply)


# ---------------------------------------------------------------- faults


@dataclass
class Faults:
    rates: dict[str, float] = field(default_factory=dict)  # fault → probability per request
    plan: list[str | None] = field(default_factory=list)  # first requests, in order
    seed: int = 0
    retry_after: float = 0.05  # seconds, sent with 429
    hang_s: float = 3600.0
    huge_bytes: int = 20 * 2**20  # of a "huge_body" answer

    def __post_init__(self) -> None:
        unknown = sorted((set(self.rates) | {f for f in self.plan if f is not None}) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        self._rng = random.Random(self.seed)
        self._plan = list(self.plan)

    def draw(self) -> str | None:
        """The fault for the next request (call in arrival order, under the server's lock)."""
        if self._plan:
            return self._plan.pop(0)
        u, acc = self._rng.random(), 0.0
        for name in FAULTS:  # fixed order: the same seed gives the same faults
            acc += self.rates.get(name, 0.0)
            if u < acc:
                return name
        return None


def copy_message(message: dict) -> dict:
    """A copy of an assistant message deep enough that the server may edit it (the message,
    its tool calls and their functions) without touching the policy's own objects. Cheaper
    than a JSON round trip on every request, which showed in the saturation bench."""
    out = dict(message)
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [{**c, "function": dict(c.get("function") or {})} if isinstance(c, dict) else c
                             for c in out["tool_calls"]]
    return out


def apply_content_fault(message: dict, fault: str | None, tool_names: list[str]) -> dict:
    message = copy_message(message)  # never edit the policy's own objects
    if fault is None:
        return message
    calls = message.get("tool_calls") or []
    if fault in ("truncated", "malformed"):
        def spoil(text: str) -> str:
            return text[: max(1, len(text) // 2)] if fault == "truncated" else "{'" + text.strip("{}") + ",,}"
        if isinstance(message.get("content"), str) and message["content"]:
            message["content"] = spoil(message["content"])
        for c in calls:
            c["function"]["arguments"] = spoil(c["function"].get("arguments") or "{}")
    elif fault == "wrong_tool":
        if calls:
            for c in calls:
                c["function"]["name"] = c["function"].get("name", "") + "_v2"
        elif tool_names:
            message["tool_calls"] = [{"type": "function", "function": {"name": "no_such_tool", "arguments": "{}"}}]
    return message


# ---------------------------------------------------------------- the server


class LLMServer:
    def __init__(self, policy: Policy | None = None, *, latency: float = 0.0, faults: Faults | None = None,
                 model: str = "test-model", record: bool = True, ids: str = "order") -> None:
        if ids not in ("order", "content"):
            raise ValueError(f"ids must be order or content, not {ids!r}")
        self.ids = ids
        self.policy = policy or default_policy
        self.latency = float(latency)
        self.faults = faults or Faults()
        self.model = model
        # every chat request: {index, body, fault, status, headers, usage when answered}
        self.requests: list[dict] = []
        self.record = record  # False: `requests` stays empty (`served` still counts)
        self.served = 0  # chat requests received; numbers the answers' ids
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/stats", self.stats)
        return app

    async def stats(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response({"served": self.served, "in_flight": self.in_flight,
                                      "max_in_flight": self.max_in_flight})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "test"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.faults.draw()
            record = {"index": self.served, "body": None, "fault": fault, "status": None,
                      "headers": dict(request.headers) if self.record else None}
            self.served += 1
            if self.record:
                self.requests.append(record)
        try:
            raw = await request.read()
            try:  # bytes straight to json (UTF-8 by the JSON spec), without aiohttp's text step
                body = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                record["status"] = 400
                return _error(400, "body is not a chat completion request", "invalid_request_error")
            record["body"] = body
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault == "hang":
                await asyncio.sleep(self.faults.hang_s)
            if fault == "400":
                record["status"] = 400
                return _error(400, "injected bad request", "invalid_request_error")
            if fault == "500":
                record["status"] = 500
                return _error(500, "injected server error", "server_error")
            if fault == "429":
                record["status"] = 429
                return _error(429, "injected rate limit", "rate_limit_error",
                              {"Retry-After": f"{self.faults.retry_after:g}"})
            tag = record["index"] if self.ids == "order" else hashlib.sha256(raw).hexdigest()[:16]
            payload = self.answer(body, tag, fault)
            record["status"], record["usage"] = 200, payload["usage"]
            if fault == "huge_body":
                return await self._huge(request, payload)
            if fault == "bad_body":
                text = json.dumps(payload)
                return web.Response(text=text[: len(text) // 2], content_type="application/json")
            return web.json_response(payload)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _huge(self, request: web.Request, payload: dict) -> web.StreamResponse:
        """A valid completion whose content is `huge_bytes` of text, sent chunk by chunk
        (chunked transfer encoding: the client cannot tell its size up front). Generated as
        it goes, so the server holds one chunk, not the body; a client that stops reading
        ends the handler."""
        payload = {**payload, "choices": [{"index": 0, "message": {"role": "assistant", "content": None},
                                           "finish_reason": "stop"}]}
        head, tail = json.dumps(payload).encode().split(b'"content": null', 1)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(head + b'"content": "')
            chunk = b"a" * 2**16
            for _ in range(self.faults.huge_bytes // len(chunk)):
                await response.write(chunk)
            await response.write(b'"' + tail)
            await response.write_eof()
        except ConnectionResetError:  # the client stopped reading, as it should: not a server error
            pass
        return response

    def answer(self, body: dict, index: int | str, fault: str | None) -> dict:
        tool_names = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        message = apply_content_fault(self.policy(body), fault, tool_names)
        message["role"] = "assistant"
        message.setdefault("content", None)
        for i, call in enumerate(message.get("tool_calls") or []):
            call.setdefault("id", f"call_{index}_{i}")
            call.setdefault("type", "function")
        prompt = sum(count_tokens(m.get("content") or "") for m in body["messages"] if isinstance(m, dict))
        prompt += count_tokens(body["tools"]) if body.get("tools") else 0
        completion = count_tokens(message.get("content") or "") + sum(
            count_tokens(c["function"].get("name", "")) + count_tokens(c["function"].get("arguments", ""))
            for c in message.get("tool_calls") or [])
        return {"id": f"chatcmpl-{index}", "object": "chat.completion", "created": 0,
                "model": body.get("model") or self.model,
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}

    # ------------------------------------------------------------ lifecycle

    async def _start(self, host: str, port: int) -> None:
        # handler_cancellation: a client that gives up (timeout) ends its hanging handler.
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=2048)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self, host: str = "127.0.0.1", port: int = 0) -> LLMServer:
        """Serve on a background thread; port 0 picks a free port."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._start(host, port))
            except BaseException as e:  # reported to the caller of start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="llm-test-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def reset(self) -> None:
        """Forget recorded requests and the in-flight high-water mark; numbering starts again."""
        with self._lock:
            self.requests.clear()
            self.served = 0
            self.max_in_flight = self.in_flight


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}},
                             status=status, headers=headers)


@contextlib.contextmanager
def serve(policy: Policy | None = None, **kwargs: Any) -> Iterator[LLMServer]:
    """A started server on a free loopback port, stopped on exit."""
    server = LLMServer(policy, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible test server (scripted policy, fault injection).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    ap.add_argument("--fault", action="append", default=[], metavar="NAME=RATE",
                    help=f"inject a fault at a rate; NAME in {', '.join(FAULTS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="test-model")
    ap.add_argument("--policy", default="default", metavar="default|competent:DOMAIN:SEED:SIZE",
                    help="how to answer: the default echo policy, or the scripted competent model")
    ap.add_argument("--tasks-dir", default=None, help="competent policy: a folder shared by this run's servers")
    ap.add_argument("--ids", default="order", choices=("order", "content"), help="how tool call ids are made")
    args = ap.parse_args(argv)
    rates = {}
    for spec in args.fault:
        name, _, rate = spec.partition("=")
        try:
            rates[name] = float(rate)
        except ValueError:
            ap.error(f"--fault {spec!r}: expected NAME=RATE")
    try:
        faults = Faults(rates=rates, seed=args.seed)
    except ValueError as e:
        ap.error(str(e))
    policy = None
    if args.policy != "default":
        kind, _, rest = args.policy.partition(":")
        parts = rest.split(":")
        if kind != "competent" or len(parts) != 3:
            ap.error(f"--policy {args.policy!r}: expected default or competent:DOMAIN:SEED:SIZE")
        from tests.llm_server.policies import CompetentPolicy

        policy = CompetentPolicy(parts[0], int(parts[1]), float(parts[2]), tasks_dir=args.tasks_dir)
    server = LLMServer(policy, latency=args.latency, faults=faults, model=args.model, record=False, ids=args.ids)
    server.start(args.host, args.port)
    print(f"listening on http://{args.host}:{server.port}/v1", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
