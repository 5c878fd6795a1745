"""`eigen verify`, `eigen export`, `eigen report`: commands over a finished run directory.

Each is a thin shell over runtime.store; the store modules (and rich, datasets, matplotlib)
are imported inside the commands so that `eigen --help` stays fast. A path that is not a run
directory is exit 2 with one line; a damaged one (its manifest or a record file unreadable)
is exit 1 with one line naming the file (and line); nothing prints a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer

MAX_SHOWN = 20  # failures listed in the terminal; report them all with --json


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _dir_error(exc: Exception) -> None:
    """A RunDirError: exit 1 for a damaged run directory, 2 for a path that is not one."""
    from runtime.store.verify import DamagedRunDir

    _fail(str(exc), 1 if isinstance(exc, DamagedRunDir) else 2)


def verify(run_dir: Path = typer.Argument(..., help="a run directory"),
           domain: str | None = typer.Option(None, "--domain", "-d",
                                             help="the domain to check against (a built-in name or a folder); "
                                                  "default: the built-in of the recorded name, else the recorded "
                                                  "folder when its code is unchanged"),
           as_json: bool = typer.Option(False, "--json", help="print the full result as JSON")) -> None:
    """Replay every accepted instance and check what it trains. Exit 0 all pass, 1 any fails or a
    damaged run directory, 2 not a run directory."""
    from runtime.store.verify import RunDirError, verify_run

    try:
        result = verify_run(run_dir, domain=domain)
    except RunDirError as exc:
        _dir_error(exc)
    except Exception as exc:  # noqa: BLE001  # a bug in the checker: one line, not a traceback
        _fail(f"verify failed: {type(exc).__name__}: {exc}")
    if as_json:
        import json

        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        raise typer.Exit(0 if result.ok else 1)
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"verify {run_dir}")
    for col in ("lines", "checked", "passed", "failed"):
        table.add_column(col, justify="right")
    table.add_row(str(result.lines), str(result.checked), str(result.passed),
                  f"[red]{result.failed}[/red]" if result.failed else "0")
    console.print(table)
    if result.failures:
        fails = Table(title="failures", show_lines=True)
        fails.add_column("line", justify="right")
        fails.add_column("id")
        fails.add_column("reasons", overflow="fold")
        for f in result.failures[:MAX_SHOWN]:
            fails.add_row(str(f.line), f.id or "-", "\n".join(f.reasons))
        console.print(fails)
        if result.failed > MAX_SHOWN:
            console.print(f"… and {result.failed - MAX_SHOWN} more (--json lists them all)")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    raise typer.Exit(0 if result.ok else 1)


def export(run_dir: Path = typer.Argument(..., help="a run directory"),
           fmt: str = typer.Option("openai", "--format", "-f", help="openai | hf | sharegpt"),
           role: str = typer.Option("agent", "--role", help="agent | user (the user simulator's view)"),
           out: Path = typer.Option(..., "--out", "-o", help="output file (a folder for hf)"),
           errors: str = typer.Option("mask", "--errors",
                                      help="erroneous turns (a failed or refused call, even one the agent "
                                           "recovered from): mask (kept with weight 0, not trained) | drop "
                                           "(removed with their tool results) | keep (trained)")) -> None:
    """Write the accepted instances as fine-tuning data."""
    from runtime.store.export import ERRORS, FORMATS, ROLES, ExportError, export_run
    from runtime.store.verify import RunDirError

    if fmt not in FORMATS:
        _fail(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if role not in ROLES:
        _fail(f"unknown role {role!r} (agent or user)")
    if errors not in ERRORS:
        _fail(f"unknown --errors {errors!r} (one of {', '.join(ERRORS)})")
    if fmt == "hf":
        try:  # a progress bar per shard is noise in a command that prints its own summary
            import datasets

            datasets.disable_progress_bars()
        except ImportError:
            pass  # export_run says what is missing
    problems: list[str] = []
    stats: dict = {}
    try:
        n = export_run(run_dir, fmt, role, out, problems=problems, errors=errors, stats=stats)
    except RunDirError as exc:
        _dir_error(exc)
    except ExportError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001
        _fail(f"export failed: {type(exc).__name__}: {exc}")
    for p in problems:
        typer.echo(f"warning: {p}", err=True)
    handled = (f"; {stats['untrained']} erroneous turn(s) masked (weight 0)" if errors == "mask" and stats.get("untrained")
               else f"; {stats['dropped']} erroneous call(s) dropped" if errors == "drop" and stats.get("dropped") else "")
    typer.echo(f"wrote {n} record(s) ({fmt}, {role} view) to {out}" + handled
               + (f"; skipped {len(problems)}" if problems else ""))


def report(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Write report.json, plots/*.png and report.html; print the summary."""
    from runtime.store.report import summary_rows, write_report
    from runtime.store.verify import RunDirError

    try:
        data = write_report(run_dir)
    except RunDirError as exc:
        _dir_error(exc)
    except OSError as exc:
        _fail(f"cannot write the report into {run_dir}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001
        _fail(f"report failed: {type(exc).__name__}: {exc}")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"report {run_dir}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for k, v in summary_rows(data):
        table.add_row(k, v)
    console = Console(highlight=False)
    console.print(table)
    console.print(f"wrote {Path(run_dir) / 'report.html'}")
    unreadable = [f"{Path(run_dir) / name}:{p.removeprefix('line ')}"
                  for name, ps in data["counts"]["unreadable_lines"].items() for p in ps if "torn last line" not in p]
    if unreadable:  # the report counts what it could read; the damage is an error all the same
        _fail(f"{unreadable[0]}; the run directory is damaged"
              + (f" ({len(unreadable) - 1} more unreadable line(s) in report.json)" if len(unreadable) > 1 else ""), 1)


def register(app: typer.Typer) -> None:
    app.command()(verify)
    app.command()(export)
    app.command()(report)
