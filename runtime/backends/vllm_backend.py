"""An in-process vLLM engine (GPU only; vllm is in the optional `gpu` extra).

vllm is imported when the engine is first started, never at module import, so this module
loads (and its prompt logic is testable) on machines without it. Prompts and the parsing of
generated text are shared with the hf backend (`hf_backend.render_prompt` / `parse_output`):
the same chat goes to the model in the same shape whichever local engine runs it.

The engine belongs to the event loop that first uses it (vLLM's async engine runs its own
background loop task): use one backend from one loop — `run_sync` callers all share one.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from typing import Any

from .base import Completion, TokenLedger, Usage, check_messages
from .hf_backend import finish_reason, parse_output, render_prompt


def sampling_options(temperature: float | None, max_tokens: int | None, seed: int | None,
                     default_max_tokens: int) -> dict:
    """vllm.SamplingParams arguments: greedy unless a temperature is given (as the other
    backends), the seed only when given."""
    options: dict[str, Any] = {"temperature": float(temperature or 0.0), "max_tokens": max_tokens or default_max_tokens}
    if seed is not None:
        options["seed"] = int(seed)
    return options


class VLLMBackend:
    name = "vllm"

    def __init__(self, *, model: str, concurrency: int = 64, request_timeout: float = 60.0,
                 ledger: TokenLedger | None = None, max_new_tokens: int = 1024, **engine_args: Any) -> None:
        self.model = model
        self.concurrency = concurrency
        self.request_timeout = float(request_timeout)
        self.ledger = ledger if ledger is not None else TokenLedger()
        self.max_new_tokens = max_new_tokens
        self.engine_args = engine_args  # e.g. gpu_memory_utilization, max_model_len, dtype
        self._engine: Any = None
        self._tokenizer: Any = None
        self._sem: asyncio.Semaphore | None = None
        self._start_lock: asyncio.Lock | None = None
        self._ids = itertools.count()

    async def _start(self) -> None:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._engine is not None:
                return
            from vllm import AsyncEngineArgs, AsyncLLMEngine

            engine = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(model=self.model, **self.engine_args))
            tokenizer = engine.get_tokenizer()
            self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer
            self._sem = asyncio.Semaphore(self.concurrency)
            self._engine = engine

    async def complete(self, messages: list[dict], tools: list[dict] | None = None, *, agent: str = "",
                       response_format: dict | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, seed: int | None = None) -> Completion:
        t0 = time.perf_counter()
        problem = check_messages(messages)
        if problem is not None:
            completion = Completion.failure(problem, attempts=0, latency_s=0.0)
        else:
            try:
                completion = await self._generate(messages, tools, response_format, temperature, max_tokens, seed)
            except TimeoutError:
                completion = Completion.failure(f"timeout after {self.request_timeout:g}s", attempts=1, latency_s=0.0)
            except Exception as e:  # engine start or generation failure: a recorded error
                completion = Completion.failure(f"{type(e).__name__}: {str(e)[:300]}", attempts=1, latency_s=0.0)
        completion.latency_s = time.perf_counter() - t0
        self.ledger.record(agent, completion)
        return completion

    async def _generate(self, messages: list[dict], tools: list[dict] | None, response_format: dict | None,
                        temperature: float | None, max_tokens: int | None, seed: int | None) -> Completion:
        await self._start()
        from vllm import SamplingParams

        prompt = render_prompt(messages, tools, self._tokenizer, response_format)
        params = SamplingParams(**sampling_options(temperature, max_tokens, seed, self.max_new_tokens))
        request_id = f"eigen-{next(self._ids)}"
        final = None
        async with self._sem:  # type: ignore[union-attr]  (set by _start)
            try:
                async with asyncio.timeout(self.request_timeout):
                    async for out in self._engine.generate(prompt, params, request_id):
                        final = out
            except TimeoutError:
                aborted = self._engine.abort(request_id)  # free the engine's slot for others
                if inspect.isawaitable(aborted):
                    await aborted
                raise
        if final is None or not final.outputs:
            return Completion.failure("the engine returned no output", attempts=1, latency_s=0.0)
        out = final.outputs[0]
        message = parse_output(out.text, tools, response_format)
        return Completion(message=message, finish_reason=finish_reason(message, out.finish_reason == "length"),
                          usage=Usage(len(final.prompt_token_ids or []), len(out.token_ids or [])), attempts=1)

    async def aclose(self) -> None:
        if self._engine is not None and hasattr(self._engine, "shutdown"):
            self._engine.shutdown()
        self._engine = None
