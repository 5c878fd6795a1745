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
from runtime.cli.import_cmds import import_app

app.add_typer(import_app, name="import")
from runtime.cli import data_cmds, evolve_cmds, history_cmds, run_cmds
from runtime.cli.allow import allow_path_option, allowed

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


def domain_option():
    """`--domain D`: a built-in domain or a domain folder, replacing a workflow's `domain:`."""
    return typer.Option(None, "--domain", "-d", help="a built-in domain or a domain folder "
                        "(replaces the workflow's `domain:`, as for eigen run)")


@app.command()
def check(paths: list[Path] = typer.Argument(..., help="program files or folders"),
          domain: str | None = domain_option(),
          run_domain: bool = typer.Option(
              False, "--run-domain", help="also run the domain's Python (in a child process, "
              "with a timeout): build a small world and validate it against the schema, play "
              "the offline recipes and check their gold calls against the tools. Off by "
              "default: check imports no domain code (docs/security.md)"),
          run_timeout: float = typer.Option(60.0, "--run-timeout", metavar="SECONDS",
                                            help="time limit of --run-domain, per domain"),
          allow_path: list[Path] | None = allow_path_option()) -> None:
    """Check programs; print every diagnostic. Exit 0 ok, 1 diagnostics, 2 usage."""
    from eigenlang.compiler import check_file
    from eigenlang.diagnostics import Diagnostics, Span

    errors = 0
    files = _program_files(paths)
    allow = allowed(allow_path, domain)
    to_run: list[Path] = []
    for f in files:
        try:
            diags = check_file(f, domain=domain, allow=allow)
        except Exception as exc:  # a compiler bug must still not print a traceback
            diags = Diagnostics()
            diags.error("E001", f"internal compiler error ({type(exc).__name__}: {exc}); please report it",
                        Span(str(f), 1, 1))
        errors += _print_diags(diags)
        if run_domain and not diags.errors:
            to_run += _domain_of(f, domain, allow)
    for d in dict.fromkeys(to_run):
        from runtime.env.probe import probe_domain

        typer.echo(f"running {d.parent.name}'s code (generator, recipes, tools)...", err=True)
        errors += _print_diags(probe_domain(d, allow=allow, timeout=run_timeout))
    noun = "file" if len(files) == 1 else "files"
    typer.echo(f"{len(files)} {noun} checked, {errors} error(s)", err=True)
    raise typer.Exit(1 if errors else 0)


def _domain_of(program: Path, domain: str | None, allow: tuple[str, ...]) -> list[Path]:
    """The domain.yaml a checked program is, or the one its workflow uses (`--domain` first)."""
    from eigenlang.domain import find_domain
    from eigenlang.parse import parse_program
    from eigenlang.paths import PathPolicy

    parsed = parse_program(program)
    if parsed.kind == "domain":
        return [program.resolve()]
    ref = domain if domain is not None else getattr(parsed.program, "domain", None)
    base = None if domain is not None else program.parent
    found = find_domain(ref, base, PathPolicy.for_program(program, allow)) if ref else None
    return [found.resolve()] if found is not None else []


@app.command()
def fmt(paths: list[Path] = typer.Argument(...),
        check_only: bool = typer.Option(False, "--check", help="exit 1 if a file would change")) -> None:
    """Format programs canonically (comments kept). Exit 1 when a file cannot be formatted
    (its diagnostics are printed), or with --check when one would change."""
    from eigenlang.diagnostics import Diagnostics, Span
    from eigenlang.fmt import format_file

    changed, errors = [], 0
    for f in _program_files(paths):
        diags = Diagnostics()
        try:
            did, _ = format_file(f, check=check_only, diags=diags)
        except OSError as exc:  # could not write it back
            did = False
            diags.error("E107", f"cannot write {f}: {exc.strerror or exc}", Span(str(f), 1, 1))
        except Exception as exc:  # a formatter bug must still not print a traceback
            did = False
            diags.error("E001", f"internal formatter error ({type(exc).__name__}: {exc}); the file "
                        "was left as it is; please report it", Span(str(f), 1, 1))
        errors += _print_diags(diags)
        if did:
            changed.append(f)
            typer.echo(f"{'would reformat' if check_only else 'reformatted'} {f}")
    if errors:
        typer.echo(f"{errors} error(s): files with errors were left as they are", err=True)
    raise typer.Exit(1 if errors or (check_only and changed) else 0)


def _compile_or_exit(workflow: Path, allow_path: list[Path] | None, domain: str | None = None):
    from eigenlang.compiler import compile_workflow

    plan, diags = compile_workflow(workflow, domain=domain, allow=allowed(allow_path, domain))
    if _print_diags(diags) or plan is None:
        raise typer.Exit(1)
    return plan


@app.command("compile")
def compile_cmd(workflow: Path, out: Path = typer.Option(..., "-o", "--out", help="output folder"),
                domain: str | None = domain_option(),
                allow_path: list[Path] | None = allow_path_option()) -> None:
    """Compile a workflow; write OUT/plan.json."""
    plan = _compile_or_exit(workflow, allow_path, domain)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(plan.data, indent=2, ensure_ascii=False) + "\n")
    c = plan.cost
    typer.echo(f"compiled {plan.data['workflow']} → {out / 'plan.json'}  hash {plan.hash[:16]}  "
               f"{c.nodes} nodes, worst case {c.worst_case_llm_calls} LLM calls per instance "
               f"(critical path {c.critical_path_llm_calls})")


@app.command()
def graph(workflow: Path, out: Path = typer.Option(..., "-o", "--out", help=".dot, .svg or .png"),
          domain: str | None = domain_option(),
          allow_path: list[Path] | None = allow_path_option()) -> None:
    """Draw the unrolled DAG of a workflow (loops visible)."""
    from runtime.render.graph import write_graph

    plan = _compile_or_exit(workflow, allow_path, domain)
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
           lineage: Path | None = typer.Option(None, "--lineage", help="append to this JSONL"),
           allow_path: list[Path] | None = allow_path_option()) -> None:
    """Apply typed edits to a program; print the new version or the diagnostics. Everything
    is checked (the edits, the program, the lineage) before anything is written.

    Each --op is one edit as JSON, {"op": NAME, ...}; docs/language.md shows each with an example:
      add_agent      name, agent, after?, before?   declare an agent (and wire it in)
      remove_agent   name, reconnect?               remove it, its edges and loops
      replace_agent  name, agent                    replace its declaration
      add_edge       src, dst, guard?               add a flow edge
      remove_edge    src, dst                       remove an edge (or the loop between them)
      rewire_edge    src, dst, new_src?, new_dst?   move an end of an edge
      guard_edge     src, dst, guard                set an edge's guard (null removes it)
      set_prompt     agent, role, path              point a prompt role at a template
      set_param      path, value                    set a value by dotted path (null removes it)

    Example: eigen mutate workflows/eigendata.yaml --op '{"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 12}'
    """
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
    allow = allowed(allow_path)
    try:
        base = ProgramVersion.load(program, allow)
    except (ValueError, OSError) as exc:  # InvalidProgram carries the program's own diagnostics
        for d in getattr(exc, "diagnostics", []) or []:
            typer.echo(d.render())
        typer.echo(f"error: cannot edit {program}: {exc}", err=True)
        raise typer.Exit(1)
    result = apply_many(base, ops, reason, allow=allow)
    if isinstance(result, list):
        for d in result:
            typer.echo(d.render())
        raise typer.Exit(1)
    lin = None
    if lineage:  # read and extend it now: a bad lineage must stop the edit before the write
        try:
            if not lineage.parent.is_dir():
                raise ValueError(f"no such folder: {lineage.parent}")
            lin = Lineage.load(lineage) if lineage.exists() else Lineage([base])
            lin.append(result)
        except (ValueError, OSError) as exc:
            typer.echo(f"error: cannot append to lineage {lineage}: {exc}", err=True)
            typer.echo(f"nothing was written; {program} is unchanged", err=True)
            raise typer.Exit(1)
    try:
        if write:
            write_back(result, program)
            typer.echo(f"wrote {program}  {base.hash[:12]} → {result.hash[:12]}", err=True)
        else:
            typer.echo(result.text, nl=False)
        if lin is not None:
            lin.save(lineage)
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
