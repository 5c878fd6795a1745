"""The runtime environment: copy-on-write states, tool execution, verifiers.

    from runtime.env import Environment, State, Verifier, verifier_from_diff

See docs/CONTRACTS.md section 6. Names are imported on first use, so that a domain's
`tools.py` importing `runtime.env.errors.ToolError` loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Environment": "environment", "EnvStats": "environment", "ToolContext": "environment",
    "ToolResult": "environment", "ActionResult": "environment", "Violation": "checks",
    "ToolError": "errors", "ImplLoadError": "errors", "StateLoadError": "errors",
    "ERROR_CATEGORIES": "errors",
    "State": "state", "Txn": "state", "Change": "state", "MISSING": "state",
    "plain": "nodes", "format_path": "nodes",
    "DictView": "views", "ListView": "views", "MutDictView": "views", "MutListView": "views",
    "TxnClosedError": "views",
    "Verifier": "verifier", "Assertion": "verifier", "ExpectedChange": "verifier",
    "VerifyResult": "verifier", "verifier_from_diff": "verifier",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime.env' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
