"""A local Hugging Face transformers model (CPU or GPU) as a backend, and the chat-format logic
that every in-process backend (this one, vllm) shares: messages + tools → one prompt string,
generated text → an OpenAI assistant message with tool calls.

Tool calls in generated text are recognised in the two shapes open models are trained on:
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks (Hermes, Qwen), or an answer
that is one JSON object with `name` and `arguments` (or `parameters`). Names are passed through
unchecked: a call to a tool that does not exist is the validators' business, not ours.
torch and transformers are imported when the model is first loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from typing import Any

from .base import Completion, TokenLedger, Usage, check_messages

_TOOL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


# ---------------------------------------------------------------- messages → prompt


def format_instructions(tools: list[dict] | None, response_format: dict | None) -> str:
    """What the model is told about tools and output format (appended to the system text)."""
    parts = []
    if tools:
        parts.append("You can call these tools. To call one, answer with <tool_call>{\"name\": ..., "
                     "\"arguments\": {...}}</tool_call> and nothing else.\n"
                     + "\n".join(json.dumps(t.get("function", t), sort_keys=True) for t in tools))
    if response_format and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        parts.append("Answer with only a JSON object valid under this JSON Schema:\n" + json.dumps(schema, sort_keys=True))
    elif response_format and response_format.get("type") == "json_object":
        parts.append("Answer with only a JSON object.")
    return "\n\n".join(parts)


def with_instructions(messages: list[dict], tools: list[dict] | None, response_format: dict | None) -> list[dict]:
    extra = format_instructions(tools, response_format)
    if not extra:
        return list(messages)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0], content=f"{messages[0].get('content') or ''}\n\n{extra}".strip())
        return [first, *messages[1:]]
    return [{"role": "system", "content": extra}, *messages]


def plain_prompt(messages: list[dict]) -> str:
    """A chat template for tokenizers that have none: role markers, tool calls as the same
    <tool_call> blocks the parser reads back."""
    out = []
    for m in messages:
        role = m.get("role", "user")
        text = m.get("content") or ""
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            args = fn.get("arguments")
            args = _loads(args) if isinstance(args, str) else args
            text += "<tool_call>" + json.dumps({"name": fn.get("name"), "arguments": args}, sort_keys=True) + "</tool_call>"
        if role == "tool":
            text = f"[{m.get('name', 'tool')}] {text}"
        out.append(f"<|{role}|>\n{text}\n")
    out.append("<|assistant|>\n")
    return "".join(out)


def render_prompt(messages: list[dict], tools: list[dict] | None, tokenizer: Any,
                  response_format: dict | None = None) -> str:
    """The model's own chat template when it has one (tool calls with parsed arguments, as
    templates expect), else `plain_prompt`. Tools and format go into the system text so that
    a template without tool support still shows them."""
    chat = with_instructions(messages, tools, response_format)
    if getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(_parsed_arguments(chat), tokenize=False, add_generation_prompt=True)
        except Exception:  # a template that rejects our roles or tool messages: fall back
            pass
    return plain_prompt(chat)


def _parsed_arguments(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = [{**c, "function": {**c.get("function", {}),
                                        "arguments": _loads(c.get("function", {}).get("arguments"))}}
                     for c in m["tool_calls"]]
            m = {**m, "tool_calls": calls}
        out.append(m)
    return out


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- generated text → message


def parse_output(text: str, tools: list[dict] | None = None, response_format: dict | None = None) -> dict:
    """An assistant message from generated text. Tool calls are looked for only when tools were
    offered; JSON answers lose a surrounding ``` fence. Call ids are derived from the text, so
    the same output always gives the same ids."""
    text = text.strip()
    calls: list[dict] = []
    content: str | None = text
    if tools:
        found = [_as_call(block) for block in _TOOL_BLOCK.findall(text)]
        if any(found):
            calls = [c for c in found if c]
            content = _TOOL_BLOCK.sub("", text).strip() or None
        else:
            whole = _as_call(_unfence(text))
            if whole:
                calls, content = [whole], None
    elif response_format and response_format.get("type") in ("json_object", "json_schema"):
        content = _unfence(text)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        message["tool_calls"] = [{"id": f"call_{digest}_{i}", "type": "function", "function": c}
                                 for i, c in enumerate(calls)]
    return message


def _unfence(text: str) -> str:
    m = _FENCE.match(text.strip())
    return m.group(1) if m else text.strip()


def _as_call(text: str) -> dict | None:
    """{"name", "arguments" (JSON text)} when text is one JSON tool call, else None."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # some models emit the arguments already as JSON text
        return {"name": obj["name"], "arguments": args}
    return {"name": obj["name"], "arguments": json.dumps(args, sort_keys=True)}


def finish_reason(message: dict, hit_limit: bool) -> str:
    return "tool_calls" if message.get("tool_calls") else ("length" if hit_limit else "stop")


# ---------------------------------------------------------------- the backend


class HFBackend:
    name = "hf"

    def __init__(self, *, model: str, concurrency: int = 1, request_timeout: float = 60.0,
                 ledger: TokenLedger | None = None, device: str | None = None, dtype: str | None = None,
                 max_new_tokens: int = 512) -> None:
        self.model = model
        self.concurrency = concurrency  # kept for parity: one model generates one request at a time
        self.request_timeout = float(request_timeout)
        self.ledger = ledger if ledger is not None else TokenLedger()
        self.device, self.dtype, self.max_new_tokens = device, dtype, max_new_tokens
        self._lock = threading.Lock()  # one generate at a time; also guards loading
        self._tokenizer: Any = None
        self._model: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = {"dtype": getattr(torch, self.dtype)} if self.dtype else {}
        self._tokenizer = AutoTokenizer.from_pretrained(self.model)
        self._model = AutoModelForCausalLM.from_pretrained(self.model, **kwargs).to(device).eval()
        self.device = device

    async def complete(self, messages: list[dict], tools: list[dict] | None = None, *, agent: str = "",
                       response_format: dict | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, seed: int | None = None) -> Completion:
        t0 = time.perf_counter()
        problem = check_messages(messages)
        if problem is not None:  # nothing was generated
            completion = Completion.failure(problem, attempts=0, latency_s=0.0)
        else:
            try:
                completion = await asyncio.to_thread(self._generate, messages, tools, response_format,
                                                     temperature, max_tokens, seed)
            except Exception as e:  # a model that fails to load or generate is a recorded error
                completion = Completion.failure(f"{type(e).__name__}: {str(e)[:300]}", attempts=1, latency_s=0.0)
        completion.latency_s = time.perf_counter() - t0
        self.ledger.record(agent, completion)
        return completion

    def _generate(self, messages: list[dict], tools: list[dict] | None, response_format: dict | None,
                  temperature: float | None, max_tokens: int | None, seed: int | None) -> Completion:
        import torch

        with self._lock:
            self._load()
            tok = self._tokenizer
            prompt = render_prompt(messages, tools, tok, response_format)
            inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
            limit = max_tokens or self.max_new_tokens
            sample = bool(temperature)
            options: dict[str, Any] = {"max_new_tokens": limit, "do_sample": sample, "max_time": self.request_timeout,
                                       "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id}
            if sample:
                options["temperature"] = float(temperature)
                torch.manual_seed(seed if seed is not None else 0)  # the given seed, under the lock
            started = time.perf_counter()
            with torch.no_grad():
                out = self._model.generate(**inputs, **options)
            elapsed = time.perf_counter() - started
        n_prompt = int(inputs["input_ids"].shape[1])
        new = out[0, n_prompt:].tolist()
        ended = bool(new) and tok.eos_token_id is not None and new[-1] == tok.eos_token_id
        text = tok.decode(new, skip_special_tokens=True)
        message = parse_output(text, tools, response_format)
        error = None
        if not ended and len(new) < limit and elapsed >= self.request_timeout:
            error = f"timeout after {self.request_timeout:g}s"
        return Completion(message=message, finish_reason=finish_reason(message, not ended and len(new) >= limit),
                          usage=Usage(n_prompt, len(new)), attempts=1, error=error)

    async def aclose(self) -> None:
        with self._lock:
            self._model = self._tokenizer = None
