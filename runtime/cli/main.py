"""The `eigen` command line. Commands import their machinery lazily so that `eigen --help`
and `eigen check` start fast; each command is a thin shell over a library call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="eigenlang: declarative agentic data workflows — check, compile, run, train.")
from runtime.cli.domain_cmds import domain_app

app.add_typer(domain_app, name="domain")
from runtime.cli import data_cmds, evolve_cmds, history_cmds, run_cmds

run_cmds.register(app)
data_cmds.register(app)
evolve_cmds.register(app)
history_cmds.register(app)
from trainer.cli import register as register_trainer  # noqa: E402  (typer only; torch is lazy)

register_trainer(app)


def _print_diags(diags) -> int:
    """Print diagnostics (sorted, all of them); return the number of errors."""
    text = diags.render()
    if text:
        typer.echo(text, err=False)
    return len(diags.errors)


def _program_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            if (p / "domain.yaml").is_file():
                out.append(p / "domain.yaml")
            else:
                out.extend(sorted(q for q in p.glob("*.yaml")))
        else:
            out.append(p)
    return out


@app.command()
def check(paths: list[Path] = typer.Argument(..., help="program files or folders")) -> None:
    """Check programs; print every diagnostic. Exit 0 ok, 1 diagnostics, 2 usage."""
    from eigenlang.compiler import check_file
    from eigenlang.diagnostics import Diagnostics, Span

    errors = 0
    files = _program_files(paths)
    for f in files:
        try:
            diags = check_file(f)
        except Exception as exc:  # a compiler bug must still not print a traceback
            diags = Diagnostics()
            diags.error("E001", f"internal compiler error ({type(exc).__name__}: {exc}); please report it",
                        Span(str(f), 1, 1))
        errors += _print_diags(diags)
    noun = "file" if len(files) == 1 else "files"
    typer.echo(f"{len(files)} {noun} checked, {errors} error(s)", err=True)
    raise typer.Exit(1 if errors else 0)


@app.command()
def fmt(paths: list[Path] = typer.Argument(...),
        check_only: bool = typer.Option(False, "--check", help="exit 1 if a file would change")) -> None:
    """Format programs canonically (comments kept)."""
    from eigenlang.fmt import format_file

    changed = []
    for f in _program_files(paths):
        did, _ = format_file(f, check=check_only)
        if did:
            changed.append(f)
            typer.echo(f"{'would reformat' if check_only else 'reformatted'} {f}")
    raise typer.Exit(1 if (check_only and changed) else 0)


def _compile_or_exit(workflow: Path):
    from eigenlang.compiler import compile_workflow

    plan, diags = compile_workflow(workflow)
    if _print_diags(diags) or plan is None:
        raise typer.Exit(1)
    return plan


@app.command("compile")
def compile_cmd(workflow: Path, out: Path = typer.Option(..., "-o", "--out", help="output folder")) -> None:
    """Compile a workflow; write OUT/plan.json."""
    plan = _compile_or_exit(workflow)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(plan.data, indent=2, ensure_ascii=False) + "\n")
    c = plan.cost
    typer.echo(f"compiled {plan.data['workflow']} → {out / 'plan.json'}  hash {plan.hash[:16]}  "
               f"{c.nodes} nodes, worst case {c.worst_case_llm_calls} LLM calls per instance "
               f"(critical path {c.critical_path_llm_calls})")


@app.command()
def graph(workflow: Path, out: Path = typer.Option(..., "-o", "--out", help=".dot, .svg or .png")) -> None:
    """Draw the unrolled DAG of a workflow (loops visible)."""
    from runtime.render.graph import write_graph

    plan = _compile_or_exit(workflow)
    try:
        write_graph(plan, out)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {out}")


@app.command()
def schema(out: Path | None = typer.Option(None, "-o", "--out")) -> None:
    """Print the JSON Schema of both program kinds (for editors)."""
    from eigenlang.surface import program_json_schema

    text = json.dumps(program_json_schema(), indent=2)
    if out:
        out.write_text(text + "\n")
    else:
        typer.echo(text)


@app.command()
def mutate(program: Path, op: list[str] = typer.Option(..., "--op", help="an edit as JSON; repeatable"),
           reason: str = typer.Option("edited from the command line", "--reason"),
           write: bool = typer.Option(False, "--write", "-w", help="write the result back"),
           lineage: Path | None = typer.Option(None, "--lineage", help="append to this JSONL")) -> None:
    """Apply typed edits to a program; print the new version or the diagnostics."""
    from eigenlang.mutate import (
        Lineage,
        ProgramVersion,
        apply_many,
        parse_op,
        write_back,
    )

    try:
        ops = [parse_op(o) for o in op]
    except ValueError as exc:
        typer.echo(f"error[E601]: {exc}", err=True)
        raise typer.Exit(1)
    try:
        base = ProgramVersion.load(program)
    except ValueError as exc:  # InvalidProgram carries the program's own diagnostics
        for d in getattr(exc, "diagnostics", []) or []:
            typer.echo(d.render())
        typer.echo(f"error: cannot edit {program}: {exc}", err=True)
        raise typer.Exit(1)
    result = apply_many(base, ops, reason)
    if isinstance(result, list):
        for d in result:
            typer.echo(d.render())
        raise typer.Exit(1)
    if write:
        write_back(result, program)
        typer.echo(f"wrote {program}  {base.hash[:12]} → {result.hash[:12]}", err=True)
    else:
        typer.echo(result.text, nl=False)
    if lineage:
        lin = Lineage.load(lineage) if lineage.exists() else Lineage([base])
        lin.append(result)
        lin.save(lineage)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
