"""`eigen history RUN`: what an evolution run decided and how its scores moved.

A thin shell over runtime.evolve.history: rich tables in the terminal (or the structure as
JSON with --json) and the curves as PNGs in RUN/evolution/plots/. A directory that is not an
evolution run is exit 1 with one line; nothing prints a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer

SHORT = 90  # characters of a critique or an addition shown in the terminal (--json has them whole)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _short(text: str, n: int = SHORT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _scores(before: dict | None, after: dict | None) -> str:
    b, a = (before or {}).get("judge_score"), (after or {}).get("judge_score")
    return f"judge {_num(b)} → {_num(a)}"


def history(run_dir: Path = typer.Argument(..., help="a run directory written by `eigen evolve`"),
            set_name: str | None = typer.Option(None, "--set", help="only this prompt set (e.g. s01)"),
            key: str | None = typer.Option(None, "--key", help="only this prompt (Agent.role)"),
            as_json: bool = typer.Option(False, "--json", help="print the history as JSON instead of tables"),
            plots: bool = typer.Option(True, "--plots/--no-plots", help="write RUN/evolution/plots/*.png"),
            ) -> None:
    """Show an evolution run's history: iterations, prompt lineages, drift; write score curves."""
    from runtime.evolve.history import HistoryError, read_history, select, write_plots

    try:
        whole = read_history(run_dir)
        hist = select(whole, set_name, key)
    except HistoryError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001  # a bug in the reader: one line, not a traceback
        _fail(f"history failed: {type(exc).__name__}: {exc}")
    written: list[Path] = []
    if plots:
        try:
            written = write_plots(whole)  # the files show the whole run, whatever was selected
        except OSError as exc:
            hist.warnings.append(f"plots not written: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001  # the history is still worth printing
            hist.warnings.append(f"plots not written: {type(exc).__name__}: {exc}")
    for w in hist.warnings:
        typer.echo(f"warning: {w}", err=True)
    if as_json:
        import json

        data = hist.to_json()
        data["plots"] = [str(p) for p in written]
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))
        return
    _print(hist, written, every_lineage=key is not None)


def _print(hist, written: list[Path], every_lineage: bool) -> None:
    """Tables; lineages only of prompts that changed after phase 1, unless one key was asked for."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

    console = Console(highlight=False)

    def out(text: str) -> None:
        console.print(Text(text))  # as plain text: run data may contain [brackets]

    def row(table: Table, *cells: str) -> None:
        table.add_row(*(Text(c) for c in cells))

    s = hist.start
    out(f"evolution run {hist.run}")
    if s:
        roles = " · ".join(f"{r} {s.get(r) or '-'}" for r in ("judge", "engineer", "planner"))
        out(f"backend {s.get('backend') or '-'} · model {s.get('model') or '-'} · {roles} · "
            f"{s.get('sets', '?')} set(s) · batch {s.get('batch', '?')} · "
            f"up to {s.get('max_iterations', '?')} iteration(s)")
    d = hist.done
    out(f"status {d.get('status')}: {d.get('accepted', '?')} accepted of {d.get('attempted', '?')} tried, "
        f"{d.get('reentries', 0)} drift re-entr{'y' if d.get('reentries') == 1 else 'ies'}" if d
        else "status: unfinished (no `done` event in log.jsonl)")

    for name, st in hist.sets.items():
        table = Table(title=Text(f"set {name}" + (f" — stop: {st.stop}" if st.stop else "")), title_justify="left")
        table.add_column("phase", no_wrap=True)
        for col in ("iter", "accept", "judge", "infeas", "tools"):  # tools: the tool_validity check
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("edits", overflow="fold")
        table.add_column("stop", overflow="fold")
        for it in st.iterations:
            m = it.metrics
            edits = [e["key"] for e in it.edits] + (["workflow"] if any(w.get("hash") for w in it.workflow_edits) else [])
            row(table, str(it.phase) + (f" after {it.after_window}" if it.after_window is not None else ""),
                str(it.iteration), _num(m.get("acceptance_rate")), _num(m.get("judge_score")),
                _num(m.get("infeasible_rate")), _num(m.get("tool_validity")), "\n".join(edits) or "-", it.stop or "-")
        if st.summary:
            out(f"set {name} focus: " + " ".join(st.summary))
        console.print(table)

    for lin in hist.lineages:
        if not (lin.changed or every_lineage):
            continue
        tree = Tree(Text(f"prompt lineage · set {lin.set} · {lin.key}"))
        node = tree
        for i, step in enumerate(lin.steps):
            where = f"phase {step.phase}" + (f" it {step.iteration}" if step.phase >= 2 else "")
            label = Text(f"{step.id} · {step.author} · {where} · {_scores(step.scores_before, step.scores_after)}")
            if i == 0 and lin.base:
                label.append(f" · from workflow template {lin.base}")
            node = node.add(label)
            for a in step.added or ([] if i == 0 else ["(text changed; no listed addition)"]):
                node.add(Text("+ " + _short(a)))
            for c in step.critiques:
                node.add(Text("because " + _short(c)))
        console.print(tree)

    if hist.workflow_edits or len(hist.workflow) > 1:
        table = Table(title="workflow edits (planner)", title_justify="left")
        for col in ("phase", "iter", "op", "reason", "result"):
            table.add_column(col, overflow="fold")
        for e in hist.workflow_edits:
            op = " ".join([str(e.op.get("op", "?"))] + [f"{k}={v}" for k, v in e.op.items() if k != "op"])
            result = f"→ {e.hash[:12]}" if e.hash else "refused: " + _short("; ".join(e.refused), 60)
            row(table, str(e.phase), str(e.iteration), op, e.reason, result)
        console.print(table)
        chain = " → ".join(v.hash[:12] for v in hist.workflow)
        out(f"workflow lineage: {chain}")

    if hist.windows:
        table = Table(title="phase 3 windows", title_justify="left")
        for col in ("instances", "set", "n", "acceptance", "judge", "infeasible", "drift"):
            table.add_column(col, justify="left" if col in ("instances", "set", "drift") else "right")
        for w in hist.windows:
            for name, m in w.sets.items():
                row(table, f"{w.start}–{w.end - 1}", name, str(int(m.get("instances", 0))),
                    _num(m.get("acceptance_rate")), _num(m.get("judge_score")),
                    _num(m.get("infeasible_rate")), "drift" if name in w.drift else "-")
        console.print(table)
    if hist.drift:
        table = Table(title="drift re-entries", title_justify="left")
        for col in ("window", "set", "acceptance", "judge", "iterations", "prompt edits", "stop"):
            table.add_column(col)
        for ev in hist.drift:
            row(table, f"{ev.start}–{ev.end - 1}", ev.set, _num(ev.metrics.get("acceptance_rate")),
                _num(ev.metrics.get("judge_score")), str(len(ev.iterations)), str(ev.edits), ev.stop or "-")
        console.print(table)
    for p in written:
        out(f"wrote {p}")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
