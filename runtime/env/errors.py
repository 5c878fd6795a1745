"""Errors of the environment layer.

`ToolError` is the one project name a domain's `tools.py` may import: raise it for a
business-rule failure; the message goes back to the caller and the state is left as it was
(unless it says `keep_changes=True`).
"""

from __future__ import annotations


class ToolError(Exception):
    """A tool refused the call (a business rule failed). The message is shown to the caller.

    The call fails either way; `keep_changes=True` commits what the tool changed before it
    raised (τ²-bench's tools are not atomic, and its ground truth keeps such partial writes),
    the default discards them."""

    def __init__(self, message: str, *, keep_changes: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.keep_changes = keep_changes

    def __str__(self) -> str:
        return self.message


class ImplLoadError(Exception):
    """A domain's implementation file or function could not be loaded."""


class StateLoadError(Exception):
    """A database file could not be read, or its content breaks the domain's schema."""


# The categories of a failed call, as `ToolResult.error` and the keys of `env.stats.errors`.
UNKNOWN_TOOL = "unknown_tool"   # no tool of that name on that side
BAD_JSON = "bad_json"           # arguments are not a JSON object
SCHEMA = "schema"               # arguments break the tool's parameter schema
PRECONDITION = "precondition"   # a `requires:` check failed (or could not be evaluated)
TOOL_ERROR = "tool_error"       # the implementation raised ToolError
CRASH = "crash"                 # the implementation (or sync) raised anything else
ERROR_CATEGORIES = (UNKNOWN_TOOL, BAD_JSON, SCHEMA, PRECONDITION, TOOL_ERROR, CRASH)
