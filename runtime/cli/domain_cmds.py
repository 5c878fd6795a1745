"""`eigen domain ...`: look inside a domain and call its tools by hand."""

from __future__ import annotations

import json
from pathlib import Path

import typer

domain_app = typer.Typer(no_args_is_help=True, help="Inspect domains and call their tools.")


def _load(domain: str, seed: int, size: float, db: Path | None, user_db: Path | None):
    from eigenlang.domain import load_domain
    from runtime.env import Environment

    spec, diags = load_domain(domain)
    if spec is None:
        typer.echo(diags.render() or f"error: domain not found: {domain}", err=True)
        raise typer.Exit(1)
    try:
        if db is not None:
            return spec, Environment.from_files(spec, db, user_db)
        return spec, Environment.from_domain(spec, seed=seed, size=size)
    except Exception as exc:  # a bad database file is a user error, not a crash
        typer.echo(f"error: cannot load the database: {exc}", err=True)
        raise typer.Exit(1)


def _counts(state) -> dict[str, int]:
    data = state.to_json() if state is not None else {}
    return {k: len(v) for k, v in data.items() if isinstance(v, (dict, list))}


@domain_app.command("stats")
def stats(domain: str = typer.Argument(..., help="a built-in name or a domain folder"),
          seed: int = typer.Option(0, "--seed"), size: float = typer.Option(1.0, "--size"),
          db: Path | None = typer.Option(None, "--db", help="a database file instead of the generator"),
          user_db: Path | None = typer.Option(None, "--user-db"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Entity counts and tools by kind."""
    spec, env = _load(domain, seed, size, db, user_db)
    tools_by_kind: dict[str, dict[str, int]] = {}
    for side, tools in (("agent", spec.tools), ("user", spec.user_tools)):
        for t in tools.values():
            tools_by_kind.setdefault(side, {}).setdefault(t.kind, 0)
            tools_by_kind[side][t.kind] += 1
    report = {"domain": spec.name, "source": str(db) if db else f"generated (seed {seed}, size {size})",
              "entities": _counts(env.db), "user_entities": _counts(env.user_db),
              "tools": tools_by_kind, "rules": len(spec.rules), "state_hash": env.hash()}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"domain {spec.name} — {report['source']}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in report["entities"].items():
        table.add_row(f"db.{k}", str(v))
    for k, v in report["user_entities"].items():
        table.add_row(f"user_db.{k}", str(v))
    for side, kinds in tools_by_kind.items():
        for kind, n in sorted(kinds.items()):
            table.add_row(f"{side} tools: {kind}", str(n))
    table.add_row("trajectory rules", str(report["rules"]))
    Console().print(table)
    typer.echo(f"state hash {report['state_hash'][:16]}")


@domain_app.command("call")
def call(domain: str, tool: str, args: str = typer.Argument("{}", help="arguments as JSON"),
         seed: int = typer.Option(0, "--seed"), size: float = typer.Option(1.0, "--size"),
         side: str = typer.Option("agent", "--side", help="agent or user"),
         db: Path | None = typer.Option(None, "--db"),
         user_db: Path | None = typer.Option(None, "--user-db")) -> None:
    """One tool call on a fresh state; the result as JSON, with the policy checks it broke
    (`violations`, which an agent is never shown). Exit 1 if the call failed."""
    _, env = _load(domain, seed, size, db, user_db)
    result = env.call(tool, args, side=side)
    try:
        content = json.loads(result.content)
    except (json.JSONDecodeError, TypeError):
        content = result.content
    typer.echo(json.dumps({"ok": result.ok, "error": result.error, "content": content,
                           "violations": [v.to_json() for v in result.violations]},
                          indent=2, ensure_ascii=False))
    raise typer.Exit(0 if result.ok else 1)


@domain_app.command("replay")
def replay_cmd(domain: str = typer.Argument(..., help="a built-in name or a domain folder"),
               calls: Path = typer.Argument(..., help='a JSON list of τ²-bench actions '
                                                   '{"name", "arguments", "requestor"}'),
               db: Path | None = typer.Option(None, "--db", help="a database file (JSON, or TOML for .toml)"),
               user_db: Path | None = typer.Option(None, "--user-db", help="the user database file (dual control)"),
               seed: int = typer.Option(0, "--seed", help="without --db: the generated database of this seed"),
               size: float = typer.Option(1.0, "--size")) -> None:
    """Replay τ²-bench actions on a fresh state: one JSON object on stdout,
    {"calls": [{"name", "content", "error"}], "db": final db, "user_db": final user db or null}.
    Failed calls are part of the answer (exit 0); bad input is exit 1 with located messages."""
    from runtime.tau2.replay import ActionsError, read_actions, replay

    spec, env = _load(domain, seed, size, db, user_db)
    if db is not None and user_db is None and spec.user_schema is not None:
        typer.echo(f"error: domain {spec.name} has a user database: give --user-db as well", err=True)
        raise typer.Exit(1)
    try:
        actions = read_actions(calls, env)
    except ActionsError as exc:
        typer.echo("\n".join(f"error: {p}" for p in exc.problems), err=True)
        raise typer.Exit(1) from None
    result = replay(env, actions)
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
