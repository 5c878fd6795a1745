"""LLM backends behind one async interface (`base.Backend`).

    backend = make_backend("openai", base_url="http://127.0.0.1:8000/v1", model="m", concurrency=64)
    completion = await backend.complete(messages, tools, agent="UserIntent")   # or run_sync(...)

Importing this package is cheap: openai, torch, transformers and vllm load only when a backend
that needs them is made (attributes below resolve lazily).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .base import Backend, Completion, TokenLedger, Totals, Usage, run_sync, settle_heap

BACKENDS = ("openai", "hf", "vllm")  # "offline" has no model: its workers need no backend object

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "Completion",
    "HFBackend",
    "OpenAIBackend",
    "TokenLedger",
    "Totals",
    "Usage",
    "VLLMBackend",
    "make_backend",
    "run_sync",
    "settle_heap",
]

_LAZY = {"OpenAIBackend": ".openai_backend", "HFBackend": ".hf_backend", "VLLMBackend": ".vllm_backend"}


class BackendUnavailable(RuntimeError):
    """The backend's optional dependency is not installed (e.g. vllm without the gpu extra)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_backend(name: str, *, base_url: str | list[str] | tuple[str, ...] | None = None,
                 model: str | None = None, concurrency: int = 16, request_timeout: float = 60.0,
                 max_retries: int = 3, api_key: str | None = None, ledger: TokenLedger | None = None,
                 **options: Any) -> Backend:
    """A backend by name. `base_url` (openai): one endpoint, or several to balance over
    (runtime/backends/endpoints.py). `options` go to the backend's constructor (openai:
    backoff, max_backoff, send, trip_after, cooldown, ...; hf: device, dtype; vllm: engine
    arguments). Raises ValueError for an unknown
    name or a missing model path, BackendUnavailable for a missing optional dependency."""
    if name == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(base_url=base_url, model=model, concurrency=concurrency,
                             request_timeout=request_timeout, max_retries=max_retries, api_key=api_key,
                             ledger=ledger, **options)
    if name in ("hf", "vllm") and not model:
        raise ValueError(f"the {name} backend needs --model: a local model folder or a model id")
    if name == "hf":
        from .hf_backend import HFBackend

        return HFBackend(model=model, concurrency=concurrency, request_timeout=request_timeout,
                         ledger=ledger, **options)
    if name == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise BackendUnavailable("the vllm backend needs vllm, which is in the optional gpu extra: "
                                     "pip install 'eigenlang[gpu]' (on a machine with a GPU); or serve the "
                                     "model with `vllm serve` and use --backend openai --base-url")
        from .vllm_backend import VLLMBackend

        return VLLMBackend(model=model, concurrency=concurrency, request_timeout=request_timeout,
                           ledger=ledger, **options)
    if name == "offline":
        raise ValueError("the offline backend has no model: its workers (runtime.workers.offline) work from "
                         "the environment itself, so there is no backend object to make")
    from eigenlang.diagnostics import name_hint

    raise ValueError(f"unknown backend {name!r}; {name_hint(name, BACKENDS)}")
