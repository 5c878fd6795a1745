"""`eigen import tau2 DATA_DIR --domain D [--split NAME] --out RUN`: τ²-bench's tasks as a run
directory (runtime/tau2/importer.py). Bad input is exit 1 with every problem located, never a
traceback; a run directory another process is writing is exit 2, as for `eigen run`."""

from __future__ import annotations

from pathlib import Path

import typer

import_app = typer.Typer(no_args_is_help=True, help="Import tasks from other benchmarks as run directories.")


@import_app.command("tau2")
def tau2_cmd(data_dir: Path = typer.Argument(..., help="your τ²-bench data folder for the domain (tasks.json, "
                                             "split_tasks.json, the database, the policy)"),
             domain: str = typer.Option(..., "--domain", help="airline, retail, telecom (or a domain folder)"),
             out: Path = typer.Option(..., "--out", help="the run directory to write"),
             split: str | None = typer.Option(None, "--split", help="only the tasks of this split of "
                                              "split_tasks.json (e.g. train, test); default: every task")) -> None:
    """Import τ²-bench tasks: user scenario, gold actions, initial state and a verifier built
    from the gold replay; `eigen verify`, `export`, `report`, `eval --tasks` read the result."""
    from runtime.store.run_store import RunLocked, StoreError
    from runtime.tau2.data import Tau2DataError
    from runtime.tau2.importer import import_tau2

    try:
        result = import_tau2(data_dir, domain, out, split)
    except Tau2DataError as exc:
        for line in exc.problems[:20]:
            typer.echo(f"error: {line}", err=True)
        if len(exc.problems) > 20:
            typer.echo(f"error: ... and {len(exc.problems) - 20} more problem(s)", err=True)
        raise typer.Exit(1)
    except RunLocked as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    for line in result.rejected:
        typer.echo(f"rejected: {line}", err=True)
    where = f"split {split!r}" if split else "all tasks"
    again = f"; {result.resumed} were there already" if result.resumed else ""
    typer.echo(f"imported {result.imported} τ²-bench {result.domain} task(s) ({where}), {len(result.rejected)} "
               f"rejected → {result.out}{again}")
    if not result.imported:
        raise typer.Exit(1)
