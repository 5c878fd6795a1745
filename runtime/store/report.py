"""`eigen report`: what a run produced, as report.json, plots/*.png and report.html.

Everything is computed from the run directory's files (docs/CONTRACTS.md §10), so the same
directory always gives the same report; nothing time-dependent goes in (no dates, no
timings, no paths outside the directory). Histograms are `{value: count}` objects in value
order. Acceptance per stage: a stage is a node id; `reached` counts the instances whose trace
contains it (or that were rejected there), `rejected` those rejected there.
Rejection reasons are grouped by their leading `check: rule` prefix (see `reason_group`).
Crashed instances (a record with `crash`: a Python exception in a tool, generator, recipe or
worker) are counted apart from rejections: per stage, per exception type, with the files
holding their tracebacks. report.html also shows a sample of the instances themselves
(report_page.py).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .run_store import crash_file, is_crash
from .verify import INSTANCES, REJECTED, open_run_dir, read_records

IDENTITY = ("format", "workflow", "workflow_hash", "domain", "domain_hash", "prompts", "backend",
            "model", "seed", "size", "n", "max_attempts", "status")
LEVELS = ("easy", "medium", "hard")
EXAMPLES = 3
TOP_SEQUENCES = 10
CRASH_LISTED = 200  # crashed instances listed one by one (all are counted)
_LABEL = re.compile(r"[\w#.\-\[\] ]{1,40}\Z")
_NUMBER = re.compile(r"(?<![\w#])\d+(?!\w)")


def reason_group(reason: str) -> str:
    """The leading `check: rule` of a reason: up to two short `:`-separated label segments,
    never the last one (the detail), with free-standing numbers as N so that "step 3" and
    "step 4" group together: "compliance: confirm_before_write: cancelled without a yes" →
    "compliance: confirm_before_write"; "step 3 cancel_reservation: tool_error: Error: ..." →
    "step N cancel_reservation: tool_error". Without labels: the text up to the first ':'."""
    parts = [p.strip() for p in str(reason).split(":")]
    labels = []
    for p in parts[:-1][:2]:
        if not _LABEL.match(p) or len(p.split()) > 3:
            break
        labels.append(p)
    group = _NUMBER.sub("N", ": ".join(labels) if labels else parts[0])
    return group if len(group) <= 80 else group[:77] + "..."


def _hist(values: Iterable[Any], order: Iterable[Any] = ()) -> dict[str, int]:
    """{value: count}: the `order` values first (when seen), then the rest sorted."""
    counts = Counter(values)
    keys = [k for k in order if k in counts]
    keys += sorted((k for k in counts if k not in keys),
                   key=lambda k: (0, k, "") if isinstance(k, (int, float)) else (1, 0, str(k)))
    return {str(k): counts[k] for k in keys}


def _by_count(counts: Counter) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))}


def _stats(values: list[int]) -> dict:
    if not values:
        return {"histogram": {}, "mean": None, "min": None, "max": None}
    return {"histogram": _hist(values), "mean": round(sum(values) / len(values), 4),
            "min": min(values), "max": max(values)}


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _get(record: dict, *path: str) -> Any:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _first(record: dict, *paths: tuple[str, ...]) -> Any:
    for p in paths:
        value = _get(record, *p)
        if value is not None:
            return value
    return None


def _intent(record: dict) -> str | None:
    value = _first(record, ("task", "intent"), ("scenario", "intent"),
                   ("artifacts", "TaskSpec", "intent"), ("artifacts", "ScenarioSeed", "intent"))
    return value if isinstance(value, str) else None


def _calls(record: dict) -> list[dict]:
    calls = record.get("calls")
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _trace(record: dict) -> list[str]:
    trace = record.get("trace")
    return [str(t) for t in trace] if isinstance(trace, list) else []


def _index(record: dict) -> int:
    i = record.get("index")
    return i if isinstance(i, int) and not isinstance(i, bool) else -1


def build_report(run_dir: Path | str) -> dict:
    """The report of a run directory as JSON-ready data."""
    return _build(run_dir)[0]


def _build(run_dir: Path | str) -> tuple[dict, list[dict], list[dict]]:
    """(the report, the accepted records, the rejected ones with the crashed ones)."""
    path, manifest = open_run_dir(run_dir)
    accepted, bad_accepted = read_records(path / INSTANCES, accepted=True)
    not_accepted, bad_rejected = read_records(path / REJECTED, accepted=False)
    crashed = [r for r in not_accepted if is_crash(r)]
    rejected = [r for r in not_accepted if not is_crash(r)]
    n_acc, n_rej, n_crash = len(accepted), len(rejected), len(crashed)

    # acceptance per stage: stages in the order instances first reach them
    everything = sorted([(_index(r), 0, r) for r in accepted] + [(_index(r), 1, r) for r in not_accepted],
                        key=lambda t: (t[0], t[1]))
    order: list[str] = []
    reached: Counter = Counter()
    for _, _, r in everything:
        stages = list(dict.fromkeys(_trace(r) + ([str(r.get("stage"))] if "stage" in r else [])))
        prev = None
        for s in stages:  # a stage new to `order` goes right after its predecessor here
            if s not in order:
                order.insert(order.index(prev) + 1 if prev is not None else len(order), s)
            prev = s
        reached.update(stages)
    rejected_at = Counter(str(r.get("stage", "?")) for r in rejected)
    crashed_at = Counter(str(r.get("stage", "?")) for r in crashed)
    order += sorted(s for s in rejected_at + crashed_at if s not in order)
    stages = [{"stage": s, "reached": reached[s], "rejected": rejected_at[s], "crashed": crashed_at[s],
               "acceptance": _rate(reached[s] - rejected_at[s] - crashed_at[s], reached[s])} for s in order]

    rejections = []
    for s in [s for s in order if rejected_at[s]]:
        groups: dict[str, dict] = {}
        for r in rejected:
            if str(r.get("stage", "?")) != s:
                continue
            reasons = r.get("reasons") if isinstance(r.get("reasons"), list) else []
            for reason in reasons or ["(no reason recorded)"]:
                g = groups.setdefault(reason_group(reason), {"count": 0, "examples": []})
                g["count"] += 1
                if len(g["examples"]) < EXAMPLES and str(reason) not in g["examples"]:
                    g["examples"].append(str(reason))
        ranked = sorted(groups.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
        rejections.append({"stage": s, "count": rejected_at[s],
                           "reasons": [{"reason": k, **v} for k, v in ranked]})

    repair = [max(len(r["validation"]) - 1, 0) if isinstance(r.get("validation"), list) else 0 for r in accepted]
    levels = [_first(r, ("difficulty", "level"), ("task", "difficulty", "level")) for r in accepted]
    calls_per_task = [len(_calls(r)) for r in accepted]
    turns = [r["turns"] if isinstance(r.get("turns"), int) else
             sum(1 for m in r.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"
                 and m.get("side") != "user") for r in accepted]
    tools = Counter(str(c.get("name")) for r in accepted for c in _calls(r))
    personas = {k: _by_count(Counter(str(_first(r, ("persona", k), ("task", "persona", k))) for r in accepted))
                for k in ("tone", "expertise")}
    intents: dict[str, dict[str, int]] = {}
    for which, records in (("accepted", accepted), ("rejected", not_accepted)):
        for r in records:
            entry = intents.setdefault(_intent(r) or "(unknown)", {"accepted": 0, "rejected": 0})
            entry[which] += 1
    intents = dict(sorted(intents.items(), key=lambda kv: (-kv[1]["accepted"] - kv[1]["rejected"], kv[0])))
    sequences = Counter(tuple(str(c.get("name")) for c in _calls(r)) for r in accepted)

    attempted = n_acc + n_rej + n_crash
    report = {
        "run": {k: manifest.get(k) for k in IDENTITY if k in manifest},
        "counts": {"accepted": n_acc, "rejected": n_rej, "crashed": n_crash, "attempted": attempted,
                   "manifest": manifest.get("counts"),
                   "unreadable_lines": {INSTANCES: bad_accepted, REJECTED: bad_rejected}},
        "acceptance": {"overall": _rate(n_acc, attempted), "stages": stages},
        "rejections": rejections,
        "crashes": _crashes(crashed, attempted, path),
        "repair_rounds": _stats(repair),
        "difficulty": _hist([lv for lv in levels if isinstance(lv, str)], LEVELS),
        "calls_per_task": _stats(calls_per_task),
        "turns": _stats(turns),
        "tool_usage": _by_count(tools),
        "personas": personas,
        "intents": intents,
        "diversity": {"tool_sequences": len(sequences), "share": _rate(len(sequences), n_acc),
                      "top": [{"sequence": list(seq), "count": c}
                              for seq, c in sorted(sequences.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SEQUENCES]]},
    }
    return report, accepted, not_accepted


def _crashes(crashed: list[dict], attempted: int, path: Path) -> dict:
    """Crashes per stage, per exception type, in groups of the same (stage, source, where,
    type), and one by one (the first CRASH_LISTED) with the file of each traceback."""
    listed = []
    groups: dict[tuple[str, str, str, str], dict] = {}
    for r in sorted(crashed, key=_index):
        c = r["crash"]
        stage, source, where, kind = (str(r.get("stage", "?")), str(c.get("source", "?")),
                                      str(c.get("where", "?")), str(c.get("type", "?")))
        # the file the store wrote for this index; a record cannot point anywhere else
        file = crash_file(_index(r)) if _index(r) >= 0 and (path / crash_file(_index(r))).is_file() else None
        g = groups.setdefault((stage, source, where, kind), {"stage": stage, "source": source, "where": where,
                                                              "type": kind, "count": 0, "files": []})
        g["count"] += 1
        if file and len(g["files"]) < EXAMPLES:
            g["files"].append(file)
        if len(listed) < CRASH_LISTED:
            listed.append({"index": _index(r), "id": str(r.get("id", "?")), "stage": stage, "source": source,
                           "where": where, "type": kind, "message": str(c.get("message", "")), "file": file})
    generator = path / "crashes" / "generator.txt"
    return {"count": len(crashed), "rate": _rate(len(crashed), attempted),
            "by_stage": _by_count(Counter(str(r.get("stage", "?")) for r in crashed)),
            "by_type": _by_count(Counter(str(r["crash"].get("type", "?")) for r in crashed)),
            "by_source": _by_count(Counter(str(r["crash"].get("source", "?")) for r in crashed)),
            "groups": sorted(groups.values(), key=lambda g: (-g["count"], g["stage"], g["type"], g["where"])),
            "instances": listed,
            "generator": "crashes/generator.txt" if generator.is_file() and not generator.is_symlink() else None}


def crash_lines(crashes: dict, limit: int = 10) -> list[str]:
    """The crash summary for a terminal: one line per group, the first files of each."""
    lines = [f"  {g['stage']}: {g['source']} {g['where']} raised {g['type']} × {g['count']}"
             + (f"  ({', '.join(g['files'])})" if g["files"] else "") for g in crashes["groups"][:limit]]
    if len(crashes["groups"]) > limit:
        lines.append(f"  ... and {len(crashes['groups']) - limit} more kinds (report.json)")
    return lines


def summary_rows(report: dict) -> list[tuple[str, str]]:
    """The few numbers worth a terminal table."""
    run, counts, acc = report["run"], report["counts"], report["acceptance"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    rows = [("workflow", f"{run.get('workflow', '?')} ({str(run.get('workflow_hash', ''))[:12]})"),
            ("domain", f"{run.get('domain', '?')} ({str(run.get('domain_hash', ''))[:12]})"),
            ("backend / model", f"{run.get('backend', '?')} / {run.get('model') or '-'}"),
            ("seed / size", f"{run.get('seed', '?')} / {run.get('size', '?')}"),
            ("status", str(run.get("status", "?"))),
            ("accepted / attempted", f"{counts['accepted']} / {counts['attempted']}"),
            ("acceptance", pct(acc["overall"]))]
    for s in acc["stages"]:
        if s["rejected"]:
            rows.append((f"  rejected at {s['stage']}", f"{s['rejected']} of {s['reached']}"))
    crashes = report["crashes"]
    if crashes["count"]:
        rows.append(("crashed", f"{crashes['count']} ({pct(crashes['rate'])}): "
                     + ", ".join(f"{k} {v}" for k, v in crashes["by_type"].items())))
        for s in acc["stages"]:
            if s["crashed"]:
                rows.append((f"  crashed at {s['stage']}", f"{s['crashed']} of {s['reached']}"))
        files = [c["file"] for c in crashes["instances"] if c["file"]]
        if files:
            rows.append(("  tracebacks", f"{files[0]}" + (f" and {len(files) - 1} more in crashes/" if len(files) > 1 else "")))
    if crashes.get("generator"):
        rows.append(("generator crashed", crashes["generator"]))
    div = report["diversity"]
    rows += [("repair rounds (mean)", num(report["repair_rounds"]["mean"])),
             ("calls per task (mean)", num(report["calls_per_task"]["mean"])),
             ("turns (mean)", num(report["turns"]["mean"])),
             ("distinct call sequences", f"{div['tool_sequences']} ({pct(div['share'])})")]
    bad = sum(len(v) for v in counts["unreadable_lines"].values())
    if bad:
        rows.append(("unreadable lines", str(bad)))
    return rows


# ---------------------------------------------------------------- files


def write_report(run_dir: Path | str) -> dict:
    """Write report.json, plots/*.png and report.html into the run directory; the report."""
    from .report_page import render_page

    report, accepted, not_accepted = _build(run_dir)
    path = Path(run_dir)
    report["plots"] = _write_plots(report, path / "plots")
    (path / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (path / "report.html").write_text(render_page(report, summary_rows(report), accepted, not_accepted),
                                      encoding="utf-8")
    return report


def _write_plots(report: dict, folder: Path) -> list[str]:
    """One PNG per distribution; the Figure API (no pyplot) leaves global state alone."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    folder.mkdir(parents=True, exist_ok=True)
    stages = report["acceptance"]["stages"]
    intents = report["intents"]
    charts = [
        ("acceptance_by_stage", "Instances per stage",
         [("reached", {s["stage"]: s["reached"] for s in stages}),
          ("rejected", {s["stage"]: s["rejected"] for s in stages})]),
        ("repair_rounds", "Repair rounds", [("instances", report["repair_rounds"]["histogram"])]),
        ("difficulty", "Difficulty level", [("instances", report["difficulty"])]),
        ("calls_per_task", "Tool calls per task", [("instances", report["calls_per_task"]["histogram"])]),
        ("turns", "User turns per dialog", [("instances", report["turns"]["histogram"])]),
        ("tool_usage", "Tool usage", [("calls", report["tool_usage"])]),
        ("persona_tone", "Persona tone", [("instances", report["personas"]["tone"])]),
        ("persona_expertise", "Persona expertise", [("instances", report["personas"]["expertise"])]),
        ("intents", "Intents",
         [("accepted", {k: v["accepted"] for k, v in intents.items()}),
          ("rejected", {k: v["rejected"] for k, v in intents.items()})]),
    ]
    names = []
    for name, title, series in charts:
        labels = list(dict.fromkeys(k for _, data in series for k in data))
        fig = Figure(figsize=(max(5.0, 0.5 * len(labels) + 2), 3.6), dpi=100)
        ax = fig.add_subplot()
        width = 0.8 / len(series)
        for i, (label, data) in enumerate(series):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, [data.get(k, 0) for k in labels], width=width, label=label)
        ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 4 else 0,
                      ha="right" if len(labels) > 4 else "center", fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        if not labels:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        if len(series) > 1:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", format="png", metadata={"Software": None})
        names.append(f"plots/{name}.png")
    return names
