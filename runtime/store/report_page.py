"""report.html: the report's tables and plots, and a browsable sample of the instances.

The sample is up to SAMPLE accepted and SAMPLE not accepted (rejected or crashed) instances,
chosen deterministically and spread out: round-robin over intents (accepted) or over (stage,
reason kind) (the others), the lowest indices of each group first. Each shows its messages
(tool calls with their arguments and results, the user simulator's own tool turns marked),
the verifier, every validation round and why it was rejected or how it crashed.

Everything in a record is what a model wrote, or a file anyone could edit: data, never markup.
The sample is embedded as JSON in a `<script type="application/json">` element by jinja's
`tojson` (which escapes `<`, `>`, `&` and `'`, so no `</script>` in a message ends the element),
and the page's script builds the view with `textContent` only. jinja autoescapes the rest. A
link to a traceback is only ever `crashes/<6 digits>.txt`. The page needs no server and loads
nothing from the network: one static file beside its plots.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .report import _index, _intent, reason_group
from .run_store import is_crash

SAMPLE = 50
CONTENT_CHARS = 4000  # of one message (a system prompt: SYSTEM_CHARS)
SYSTEM_CHARS = 1500
ARGUMENT_CHARS = 2000
REASONS = 20
_CRASH_FILE = re.compile(r"crashes/\d{6}\.txt\Z")
HERE = Path(__file__).resolve().parent


def render_page(report: dict, summary: list[tuple[str, str]], accepted: list[dict],
                not_accepted: list[dict]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE)), autoescape=True,
                             keep_trailing_newline=True)
    return env.get_template("report_page.html.j2").render(
        summary=summary, sample=sample(accepted, not_accepted), sample_size=SAMPLE, **report)


def sample(accepted: list[dict], not_accepted: list[dict], k: int = SAMPLE) -> list[dict]:
    """The instances report.html shows, in index order within each outcome (see the module)."""
    acc = _spread(accepted, lambda r: _intent(r) or "(unknown)", k)
    rest = _spread(not_accepted, lambda r: (str(r.get("stage", "?")), _first_group(r)), k)
    return [_compact(r) for r in sorted(acc, key=_index)] + [_compact(r) for r in sorted(rest, key=_index)]


def _spread(records: list[dict], key: Any, k: int) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for r in sorted(records, key=_index):
        groups.setdefault(json.dumps(key(r)), []).append(r)
    queues = [groups[g] for g in sorted(groups)]
    out: list[dict] = []
    depth = 0
    while len(out) < k and any(depth < len(q) for q in queues):
        out += [q[depth] for q in queues if depth < len(q)][: k - len(out)]
        depth += 1
    return out


def _first_group(record: dict) -> str:
    reasons = record.get("reasons")
    return reason_group(reasons[0]) if isinstance(reasons, list) and reasons else "(no reason recorded)"


# ---------------------------------------------------------------- one instance, made small


def _compact(r: dict) -> dict:
    art = r.get("artifacts") if isinstance(r.get("artifacts"), dict) else {}
    task = _dict(r.get("task")) or _dict(art.get("TaskSpec"))
    dialog = _dict(art.get("Dialog"))
    messages = r.get("messages") if r.get("accepted") else dialog.get("messages")
    outcome = "accepted" if r.get("accepted") is True else ("crashed" if is_crash(r) else "rejected")
    reasons = [_text(x, 1000) for x in _list(r.get("reasons"))[:REASONS]]
    persona = _dict(task.get("persona"))
    out = {
        "index": _index(r), "id": _text(r.get("id"), 200), "outcome": outcome,
        "intent": _intent(r) or "(unknown)",
        "stage": "" if outcome == "accepted" else _text(r.get("stage", "?"), 200),
        "reasons": reasons, "groups": sorted({reason_group(x) for x in reasons}),
        "objective": _text(task.get("objective"), 1000), "persona": _text(persona.get("name"), 200),
        "level": _text(_dict(task.get("difficulty")).get("level"), 50),
        "gold": [_call_text(c) for c in _list(task.get("gold_calls"))[:30]],
        "messages": [m for m in (_message(x) for x in _list(messages)) if m is not None],
        "verifier": _verifier(_dict(r.get("verifier")) or _dict(art.get("Verifier"))),
        "validation": [_round(v) for v in _list(r.get("validation")) if isinstance(v, dict)],
        "feasibility": _feasibility(_dict(r.get("feasibility")) or _dict(art.get("Feasibility"))),
    }
    if outcome == "crashed":
        c = r["crash"]
        file = c.get("file")
        out["crash"] = {k: _text(c.get(k), 500) for k in ("stage", "source", "where", "type", "message")}
        out["crash"]["file"] = file if isinstance(file, str) and _CRASH_FILE.match(file) else None
    return out


def _message(m: Any) -> dict | None:
    if not isinstance(m, dict):
        return None
    role = _text(m.get("role"), 20)
    out: dict[str, Any] = {"role": role,
                           "content": _text(m.get("content"), SYSTEM_CHARS if role == "system" else CONTENT_CHARS)}
    if m.get("side") == "user":
        out["side"] = "user"
    calls = []
    for c in _list(m.get("tool_calls")):
        fn = _dict(_dict(c).get("function"))
        calls.append({"id": _text(_dict(c).get("id"), 100), "name": _text(fn.get("name"), 200),
                      "arguments": _arguments(fn.get("arguments"))})
    if calls:
        out["calls"] = calls
    if role == "tool":
        out["call_id"] = _text(m.get("tool_call_id"), 100)
        out["name"] = _text(m.get("name"), 200)
        error = m.get("error")
        if isinstance(error, str) or out["content"].startswith("Error:"):
            out["error"] = _text(error, 50) if isinstance(error, str) else "error"
    return out


def _arguments(raw: Any) -> str:
    """Pretty JSON when the arguments parse, else the text as it came."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
        text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        text = raw if isinstance(raw, str) else repr(raw)
    return _text(text, ARGUMENT_CHARS)


def _call_text(c: Any) -> str:
    c = _dict(c)
    args = c.get("arguments")
    try:
        shown = json.dumps(args, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        shown = "?"
    side = " (user side)" if c.get("side") == "user" else ""
    return _text(f"{c.get('name')}({shown}){side}", 500)


def _verifier(v: dict) -> dict | None:
    if not v:
        return None
    return {"assertions": [_text(_dict(a).get("description") or _dict(a).get("expr"), 500)
                           for a in _list(v.get("assertions"))[:40]],
            "communicate": [_text(x, 300) for x in _list(v.get("communicate"))[:20]],
            "expected_changes": len(_list(v.get("expected_diff")))}


def _round(v: dict) -> dict:
    checks = _dict(v.get("checks"))
    return {"round": v.get("round") if isinstance(v.get("round"), int) else None,
            "accepted": v.get("accepted") is True,
            "failed": sorted(_text(k, 100) for k, ok in checks.items() if ok is not True),
            "reasons": [_text(x, 1000) for x in _list(v.get("reasons"))[:REASONS]]}


def _feasibility(f: dict) -> dict | None:
    if not f:
        return None
    return {"feasible": f.get("feasible") is True, "reasons": [_text(x, 1000) for x in _list(f.get("reasons"))[:REASONS]]}


def _text(value: Any, limit: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = "(unreadable value)"
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters]"


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
