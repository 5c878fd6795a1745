"""A real OpenAI-compatible HTTP server (scripted answers, latency, fault injection) for the
backend tests and bench/saturation.py. Names resolve lazily, so that
`python -m tests.llm_server.server` does not import the module twice."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FAULTS", "Faults", "LLMServer", "ScriptedPolicy", "default_policy", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".server", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
