"""The mutation API: typed edits of a program that yield a new, checked version or diagnostics.

The workflow planner (an LLM) and people edit programs through the same operations:

    v0 = ProgramVersion.load("workflows/eigendata.yaml")
    v1 = apply(v0, AddEdge(src="UserIntent", dst="VerificationFunction"), reason="critique #3")
    if isinstance(v1, list):            # diagnostics: the edit was refused, v0 is untouched
        ...
    write_back(v1)                      # the YAML, with the author's comments kept

An edit works on the ruamel round-trip tree of the version's text, so comments survive; the
result is re-checked by the compiler with the version's own path (relative prompt and domain
references resolve as before) and refused when it has errors: an invalid program is never
returned. Problems with the edit itself (an unknown agent, an edge that does not exist, a
malformed op) are E601 diagnostics with a "did you mean" hint. Versions carry their parent's
hash and the reason of the edit, and a `Lineage` keeps them as JSONL.

Every op has an origin: "author" (a person, `eigen mutate`) or "model" (the workflow planner).
A model's op names no file and keeps `domain:` (E602); an op's values are JSON data nested at
most 32 levels (eigenlang.oplimits). `apply` never raises on an odd op: it answers with
diagnostics. Files named by the result must lie inside the program's folder or under `allow`
(eigenlang.paths), as for `eigen check`.

The package: `ops` (the op models, reading an op), `versions` (ProgramVersion, Lineage,
write_back), `applying` (apply, apply_many), `editor` (what each op does to the tree),
`flowedit` and `yamledit` (edits of flows and of round-trip maps). Everything is importable
from `eigenlang.mutate` as before.
"""

from __future__ import annotations

from .applying import apply, apply_many
from .editor import Editor
from .flowedit import Edge, add_edge, edit_edges, flow_edges
from .ops import (
    MAX_OP_DEPTH,
    NAME,
    OP_MODELS,
    OP_NAMES,
    OP_SPAN,
    AddAgent,
    AddEdge,
    Guard,
    GuardEdge,
    Op,
    OpError,
    RemoveAgent,
    RemoveEdge,
    ReplaceAgent,
    RewireEdge,
    SetParam,
    SetPrompt,
    op_dict,
    op_json_schema,
    parse_op,
)
from .versions import InvalidProgram, Lineage, ProgramVersion, check_text, write_back
from .yamledit import delete_key, insert_key, set_key, to_yaml

__all__ = [
    "MAX_OP_DEPTH", "NAME", "OP_MODELS", "OP_NAMES", "OP_SPAN", "AddAgent", "AddEdge", "Edge",
    "Editor", "Guard", "GuardEdge", "InvalidProgram", "Lineage", "Op", "OpError",
    "ProgramVersion", "RemoveAgent", "RemoveEdge", "ReplaceAgent", "RewireEdge", "SetParam",
    "SetPrompt", "add_edge", "apply", "apply_many", "check_text", "delete_key", "edit_edges",
    "flow_edges", "insert_key", "op_dict", "op_json_schema", "parse_op", "set_key", "to_yaml",
    "write_back",
]
