"""An evolution run's history, read back from OUT/evolution/ (docs/CONTRACTS.md §12).

`read_history` turns the files `eigen evolve` wrote into a small typed structure: per prompt
set its pilot iterations (metrics, prompt edits, stop reason), the phase-3 audit windows and
the drift re-entries they caused, each (set, prompt key)'s lineage root → head, and the
workflow planner's edits. `write_plots` draws the score and acceptance curves as PNGs.

Reading is tolerant because a run may have crashed mid-write: an unreadable line (a torn
last line of log.jsonl) or a malformed event is skipped and named in `History.warnings`;
only a directory with no evolution/ folder at all is an error (HistoryError). Nothing here
writes except `write_plots`, and the same directory always gives the same structure and
byte-identical PNGs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from eigenlang.catalog import METRICS

from .prompts import PromptStore, PromptVersion

EVOLUTION = "evolution"
PLOTS = "plots"
ADDITIONS = (("focus", "focus"), ("constraints", "constraint"), ("examples", "example"), ("style", "style"))


class HistoryError(ValueError):
    """The directory is not an evolution run (or a --set/--key names nothing in it)."""


@dataclass
class Iteration:
    phase: int  # 2: the pilot; 3: a re-entry after drift
    set: str
    iteration: int
    indices: list[int]
    metrics: dict[str, float]
    prompts: dict[str, str]  # key → the prompt id the batch ran with
    edits: list[dict]  # {key, from, to, reason}: the prompt engineer's revisions after it
    workflow_edits: list[dict]  # {op, reason, hash | None, refused}
    stop: str | None
    after_window: int | None = None  # phase 3: end index of the window whose drift caused it


@dataclass
class SetHistory:
    name: str
    summary: list[str] = field(default_factory=list)  # phase 1: what this set is steered towards
    prompts: dict[str, str] = field(default_factory=dict)  # phase 1 prompt ids
    iterations: list[Iteration] = field(default_factory=list)

    @property
    def stop(self) -> str | None:
        """Why the pilot (phase 2) ended for this set, if it did."""
        stops = [it.stop for it in self.iterations if it.phase == 2 and it.stop]
        return stops[-1] if stops else None


@dataclass
class Window:
    start: int
    end: int
    sets: dict[str, dict[str, float]]
    drift: list[str]


@dataclass
class DriftEvent:
    set: str
    start: int
    end: int
    metrics: dict[str, float]  # the set's metrics in the window that drifted
    iterations: list[int]  # the re-entry's pilot iterations
    edits: int  # prompt versions the re-entry made
    stop: str | None


@dataclass
class LineageStep:
    id: str
    parent: str | None
    author: str
    phase: int
    iteration: int
    added: list[str]  # "constraint: …", "example: …", "focus: …", "style: …" new in this version
    critiques: list[str]  # what motivated it
    scores_before: dict[str, float] | None
    scores_after: dict[str, float] | None


@dataclass
class PromptLineage:
    set: str
    key: str
    steps: list[LineageStep]  # root first
    base: str | None = None  # the workflow template a phase-1 root derives from (not itself stored)

    @property
    def changed(self) -> bool:
        return len(self.steps) > 1


@dataclass
class WorkflowVersion:
    hash: str
    parent: str | None
    reason: str | None
    op: dict | None


@dataclass
class WorkflowEdit:
    phase: int
    iteration: int
    op: dict
    reason: str
    hash: str | None  # None: the compiler refused it
    refused: list[str]


@dataclass
class History:
    run: str
    start: dict = field(default_factory=dict)
    sets: dict[str, SetHistory] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    drift: list[DriftEvent] = field(default_factory=list)
    lineages: list[PromptLineage] = field(default_factory=list)
    workflow: list[WorkflowVersion] = field(default_factory=list)  # root first
    workflow_edits: list[WorkflowEdit] = field(default_factory=list)
    axes: list[str] = field(default_factory=list)  # the judge's axes seen in the metrics
    done: dict | None = None
    state: dict | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name, s in self.sets.items():  # a property asdict leaves out
            data["sets"][name]["stop"] = s.stop
        for i, lin in enumerate(self.lineages):
            data["lineages"][i]["changed"] = lin.changed
        return data


# ---------------------------------------------------------------- reading


def evolution_dir(run_dir: Path | str) -> Path:
    run = Path(run_dir)
    if not run.exists():
        raise HistoryError(f"no such directory: {run}")
    if not run.is_dir():
        raise HistoryError(f"{run} is not a directory")
    evo = run / EVOLUTION
    if not evo.is_dir():
        raise HistoryError(f"{run} is not an evolution run: it has no {EVOLUTION}/ folder "
                           "(written by `eigen evolve` or `eigen run --evolve`)")
    return evo


def read_jsonl(path: Path, warnings: list[str]) -> list[dict]:
    """The JSON objects of a JSONL file; unreadable lines are skipped with a warning."""
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    except OSError as exc:
        warnings.append(f"{path.name}: cannot read ({exc.strerror or exc})")
        return []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            torn = " (a torn last line: the run stopped while writing it)" if i == last else ""
            warnings.append(f"{path.name}:{i + 1}: not valid JSON{torn}; skipped")
            continue
        if not isinstance(obj, dict):
            warnings.append(f"{path.name}:{i + 1}: not a JSON object; skipped")
            continue
        out.append(obj)
    return out


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _metrics(x: Any) -> dict[str, float]:
    if not isinstance(x, dict):
        return {}
    return {str(k): float(v) for k, v in x.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _strs(x: Any) -> list[str]:
    return [str(v) for v in x] if isinstance(x, list) else []


def _dicts(x: Any) -> list[dict]:
    return [v for v in x if isinstance(v, dict)] if isinstance(x, list) else []


def _iteration(e: dict, after_window: int | None) -> Iteration | None:
    phase, it, name = _int(e.get("phase")), _int(e.get("iteration")), e.get("set")
    if phase is None or it is None or not isinstance(name, str):
        return None
    indices = [i for i in (e.get("indices") or []) if _int(i) is not None] if isinstance(e.get("indices"), list) else []
    edits = [{"key": str(d.get("key")), "from": d.get("from"), "to": d.get("to"), "reason": str(d.get("reason") or "")}
             for d in _dicts(e.get("edits"))]
    prompts = {str(k): str(v) for k, v in e["prompts"].items()} if isinstance(e.get("prompts"), dict) else {}
    stop = e.get("stop")
    return Iteration(phase, name, it, indices, _metrics(e.get("metrics")), prompts, edits,
                     _dicts(e.get("workflow_edits")), str(stop) if stop else None,
                     after_window if phase == 3 else None)


def _events(history: History, events: list[dict]) -> None:
    """Fill sets, iterations, windows and workflow edits from the log, in log order."""
    after_window: int | None = None
    seen_wf: set[str] = set()
    for no, e in enumerate(events, 1):
        kind = e.get("event")
        if kind == "start":
            history.start = e
        elif kind == "set" and isinstance(e.get("set"), str):
            s = history.sets.setdefault(e["set"], SetHistory(e["set"]))
            s.summary = _strs(e.get("summary"))
            s.prompts = {str(k): str(v) for k, v in e["prompts"].items()} if isinstance(e.get("prompts"), dict) else {}
        elif kind == "iteration":
            it = _iteration(e, after_window)
            if it is None:
                history.warnings.append(f"log.jsonl: iteration event {no} lacks its phase, set or number; skipped")
                continue
            history.sets.setdefault(it.set, SetHistory(it.set)).iterations.append(it)
            for w in it.workflow_edits:  # every set of a round logs the planner's same edits
                ident = json.dumps([it.phase, it.iteration, after_window, w], sort_keys=True, default=str)
                if ident not in seen_wf:
                    seen_wf.add(ident)
                    history.workflow_edits.append(WorkflowEdit(
                        it.phase, it.iteration, w.get("op") if isinstance(w.get("op"), dict) else {},
                        str(w.get("reason") or ""), w.get("hash") if isinstance(w.get("hash"), str) else None,
                        _strs(w.get("refused"))))
        elif kind == "window":
            start, end = _int(e.get("start")), _int(e.get("end"))
            if start is None or end is None:
                history.warnings.append(f"log.jsonl: window event {no} lacks its start or end; skipped")
                continue
            sets = {str(k): _metrics(v) for k, v in e["sets"].items()} if isinstance(e.get("sets"), dict) else {}
            history.windows.append(Window(start, end, sets, _strs(e.get("drift"))))
            after_window = end
        elif kind == "done":
            history.done = e
        else:
            history.warnings.append(f"log.jsonl: event {no} of unknown kind {kind!r}; skipped")
    if events and history.done is None:
        history.warnings.append("log.jsonl has no `done` event: the run is unfinished or was interrupted")


def _drift(history: History) -> list[DriftEvent]:
    out = []
    for w in history.windows:
        for name in w.drift:
            its = [it for it in history.sets.get(name, SetHistory(name)).iterations
                   if it.phase == 3 and it.after_window == w.end]
            stops = [it.stop for it in its if it.stop]
            out.append(DriftEvent(name, w.start, w.end, w.sets.get(name, {}), [it.iteration for it in its],
                                  sum(len(it.edits) for it in its), stops[-1] if stops else None))
    return out


def _added(version: PromptVersion, parent: PromptVersion | None) -> list[str]:
    out = []
    for name, label in ADDITIONS:
        before = set(getattr(parent, name)) if parent is not None else set()
        out += [f"{label}: {x}" for x in getattr(version, name) if x not in before]
    return out


def _lineages(store: PromptStore) -> list[PromptLineage]:
    heads: dict[tuple[str, str], PromptVersion] = {}
    for v in store.versions:  # creation order: the last version of a (set, key) is its head
        heads[(v.set, v.key)] = v
    out = []
    for (name, key), head in sorted(heads.items()):
        chain = store.lineage(head.id, name)
        steps = []
        for v in chain:
            parent = store.get(v.parent, name) if v.parent else None
            steps.append(LineageStep(v.id, v.parent, v.author, v.phase, v.iteration, _added(v, parent),
                                     list(v.critiques), v.scores_before, v.scores_after))
        root = chain[0] if chain else head
        base = root.parent if root.parent and store.get(root.parent, name) is None else None
        out.append(PromptLineage(name, key, steps, base))
    return out


def _workflow(path: Path, warnings: list[str]) -> list[WorkflowVersion]:
    from eigenlang.mutate import ProgramVersion

    out = []
    for no, obj in enumerate(read_jsonl(path, warnings), 1):
        try:
            v = ProgramVersion.model_validate(obj)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            warnings.append(f"{path.name}: version {no} is not a program version ({str(exc).splitlines()[0]}); skipped")
            continue
        out.append(WorkflowVersion(v.hash, v.parent, v.reason, v.op))
    return out


def read_history(run_dir: Path | str) -> History:
    """The history of an evolution run directory; HistoryError when it is not one."""
    evo = evolution_dir(run_dir)
    history = History(str(run_dir))
    w = history.warnings
    if (evo / "log.jsonl").is_file():
        _events(history, read_jsonl(evo / "log.jsonl", w))
    else:
        w.append("log.jsonl is missing: the run stopped before it started")
    history.drift = _drift(history)
    if (evo / "prompts.json").is_file():
        try:
            history.lineages = _lineages(PromptStore(evo / "prompts.json"))
        except (ValueError, TypeError, AttributeError) as exc:  # written atomically, so: edited by hand
            w.append(f"prompts.json is unreadable ({type(exc).__name__}: {exc}); no prompt lineages")
    else:
        w.append("prompts.json is missing: no prompt lineages")
    if (evo / "workflow.jsonl").is_file():
        history.workflow = _workflow(evo / "workflow.jsonl", w)
    if (evo / "state.json").is_file():
        try:
            state = json.loads((evo / "state.json").read_text(encoding="utf-8"))
            history.state = state if isinstance(state, dict) else None
        except (OSError, ValueError) as exc:
            w.append(f"state.json is unreadable ({exc}); ignored")
    history.sets = dict(sorted(history.sets.items()))
    known = set(METRICS) | {"instances"}
    seen = [m for s in history.sets.values() for it in s.iterations for m in it.metrics] + \
           [m for win in history.windows for ms in win.sets.values() for m in ms]
    history.axes = list(dict.fromkeys(m for m in seen if m not in known))
    return history


def select(history: History, set_name: str | None = None, key: str | None = None) -> History:
    """The history narrowed to one set and/or one prompt key; HistoryError if it names nothing."""
    if set_name is not None and set_name not in history.sets:
        raise HistoryError(f"no prompt set {set_name!r} in this run (sets: {', '.join(history.sets) or 'none'})")
    keys = sorted({lin.key for lin in history.lineages})
    if key is not None and key not in keys:
        raise HistoryError(f"no prompt key {key!r} in this run (keys: {', '.join(keys) or 'none'})")

    def keep_set(name: str) -> bool:
        return set_name is None or name == set_name

    sets = {n: s for n, s in history.sets.items() if keep_set(n)}
    if key is not None:
        sets = {n: replace(s, iterations=[replace(it, edits=[e for e in it.edits if e["key"] == key])
                                          for it in s.iterations]) for n, s in sets.items()}
    return replace(
        history, sets=sets,
        windows=[replace(w, sets={n: m for n, m in w.sets.items() if keep_set(n)},
                         drift=[n for n in w.drift if keep_set(n)]) for w in history.windows],
        drift=[d for d in history.drift if keep_set(d.set)],
        lineages=[lin for lin in history.lineages if keep_set(lin.set) and (key is None or lin.key == key)])


# ---------------------------------------------------------------- plots


def timeline(history: History) -> tuple[list[str], int, dict[str, list[tuple[int, dict[str, float]]]]]:
    """The x axis of the curves: (slot labels, number of pilot slots, per set its (slot,
    metrics) points). Pilot iterations first, then phase 3 in order: each audit window, then
    the re-entry iterations its drift caused."""
    pilot = sorted({it.iteration for s in history.sets.values() for it in s.iterations if it.phase == 2})
    labels = [f"it {i}" for i in pilot]
    slot = {("p", i): n for n, i in enumerate(pilot)}
    groups = [None] + [w.end for w in history.windows]  # re-entries before any window: none expected
    for g in groups:
        if g is not None:
            w = next(w for w in history.windows if w.end == g)
            slot[("w", g)] = len(labels)
            labels.append(f"{w.start}–{w.end - 1}")
        for i in sorted({it.iteration for s in history.sets.values() for it in s.iterations
                         if it.phase == 3 and it.after_window == g}):
            slot[("r", g, i)] = len(labels)
            labels.append(f"re {i}")
    points: dict[str, list[tuple[int, dict[str, float]]]] = {}
    for name, s in history.sets.items():
        pts = [(slot[("p", it.iteration)] if it.phase == 2 else slot[("r", it.after_window, it.iteration)],
                it.metrics) for it in s.iterations if it.phase in (2, 3)]
        pts += [(slot[("w", w.end)], w.sets[name]) for w in history.windows if name in w.sets]
        points[name] = sorted(pts, key=lambda p: p[0])
    return labels, len(pilot), points


def write_plots(history: History, folder: Path | str | None = None) -> list[Path]:
    """scores.png (judge score), acceptance.png (acceptance rate) and axes.png (one panel per
    judge axis) per set over the timeline; the paths written. The Figure API (no pyplot)
    leaves matplotlib's global state alone; no timestamp goes into the files."""
    from matplotlib.figure import Figure

    folder = Path(folder) if folder is not None else Path(history.run) / EVOLUTION / PLOTS
    folder.mkdir(parents=True, exist_ok=True)
    labels, n_pilot, points = timeline(history)

    def panel(ax, metric: str, title: str) -> None:
        drawn = False
        for k, (name, pts) in enumerate(points.items()):
            shift = (k - (len(points) - 1) / 2) * 0.04  # sets with equal scores stay visible
            xy = [(x + shift, m[metric]) for x, m in pts if metric in m]
            if xy:
                ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", markersize=4, label=name)
                drawn = True
        if 0 < n_pilot < len(labels):  # pilot iterations | phase 3
            ax.axvline(n_pilot - 0.5, color="0.5", linestyle="--", linewidth=1)
            ax.text(n_pilot - 0.45, 0.0, "phase 3 →", fontsize=7, color="0.4", va="bottom")
        ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 6 else 0,
                      ha="right" if len(labels) > 6 else "center", fontsize=7)
        ax.set_ylim(-0.03, 1.05)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        elif len(points) > 1:
            ax.legend(fontsize=7)

    width = max(5.0, 0.45 * len(labels) + 2.5)
    written = []
    for name, metric, title in (("scores", "judge_score", "Judge score per set"),
                                ("acceptance", "acceptance_rate", "Acceptance rate per set")):
        fig = Figure(figsize=(width, 3.6), dpi=100)
        panel(fig.add_subplot(), metric, title)
        written.append(_save(fig, folder / f"{name}.png"))
    axes = history.axes or []
    cols = 2 if len(axes) > 1 else 1
    rows = max(1, -(-len(axes) // cols))
    fig = Figure(figsize=(width * cols * 0.8, 2.8 * rows), dpi=100)
    for i, axis in enumerate(axes):
        panel(fig.add_subplot(rows, cols, i + 1), axis, f"{axis} (mean)")
    if not axes:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no judge axes recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    written.append(_save(fig, folder / "axes.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
