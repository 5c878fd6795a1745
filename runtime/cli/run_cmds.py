"""`eigen run`: compile a workflow and generate a verified dataset into a run directory."""

from __future__ import annotations

from pathlib import Path

import typer


def run(workflow: Path = typer.Argument(..., help="the workflow program"),
        domain: str | None = typer.Option(None, "--domain", "-d",
                                             help="a built-in domain or a domain folder (replaces the workflow's)"),
        n: int = typer.Option(100, "--n", "-n", min=1, help="accepted instances to produce"),
        seed: int = typer.Option(0, "--seed", "-s", help="run seed: world and every instance"),
        out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default runs/<workflow>-<domain>-<seed>)"),
        backend: str = typer.Option("offline", "--backend",
                                    help="offline (no model) | openai (any OpenAI-compatible endpoint) | hf"),
        base_url: str | None = typer.Option(None, "--base-url", envvar="EIGEN_BASE_URL",
                                            help="the endpoint of --backend openai, e.g. http://127.0.0.1:8000/v1"),
        model: str | None = typer.Option(None, "--model", envvar="EIGEN_MODEL",
                                         help="model name (openai; default: the endpoint's first) or folder (hf)"),
        concurrency: int = typer.Option(16, "--concurrency", min=1, help="model requests in flight per process"),
        request_timeout: float = typer.Option(60.0, "--request-timeout", min=0.001,
                                              help="seconds before a model request is given up (and retried)"),
        max_retries: int = typer.Option(3, "--max-retries", min=0,
                                        help="retries of a failed model request (5xx, 429, timeouts)"),
        executor: str = typer.Option("local", "--executor", help="local | ray"),
        workers: int = typer.Option(1, "--workers", "-k", min=1, help="Ray workers (with --executor ray)"),
        ray_address: str | None = typer.Option(None, "--ray-address", help="an existing Ray cluster"),
        size: float = typer.Option(1.0, "--size", help="world size (1.0 = τ²-bench scale)"),
        max_attempts: int | None = typer.Option(None, "--max-attempts", help="stop after this many instances tried (default 5 × n)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
        evolve: bool = typer.Option(False, "--evolve", help="self-evolving generation with the workflow's "
                                    "`evolution:` settings (as `eigen evolve`)"),
        ) -> None:
    """Generate N accepted instances; rerun with the same --out to resume after a crash."""
    from rich.console import Console

    from runtime.exec.driver import RunOptions, failure_reason, open_run
    from runtime.exec.engine import RunSetupError, RunSpec, prepare
    from runtime.store.run_store import StoreError

    err = Console(stderr=True)
    if executor not in ("local", "ray"):
        err.print(f"error: unknown executor {executor!r} (local or ray)")
        raise typer.Exit(2)
    if workers > 1 and executor != "ray":
        err.print("error: --workers needs --executor ray (the local executor is one process)")
        raise typer.Exit(2)
    if not workflow.is_file():
        err.print(f"error: no such workflow file: {workflow}")
        raise typer.Exit(2)
    if evolve:
        from runtime.cli.evolve_cmds import evolve as evolve_cmd

        return evolve_cmd(workflow, domain, n, seed, out, backend, base_url, model, concurrency, request_timeout,
                          max_retries, None, None, None, None, "auto", "auto", "auto", executor, workers,
                          ray_address, size, max_attempts, quiet)
    if backend == "offline":  # no model: an EIGEN_MODEL in the environment must not enter its identity
        model = base_url = None
    spec = RunSpec(str(workflow.resolve()), domain, seed, size, backend, model, base_url, concurrency,
                   request_timeout, max_retries)
    try:
        plan = prepare(spec)
        out = out or Path("runs") / f"{plan.data['workflow']}-{plan.domain.name}-{seed}"
        opts = RunOptions(out, n, max_attempts or 5 * n, executor, workers, ray_address)
        plan, store = open_run(spec, opts, plan)
    except (RunSetupError, StoreError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    err.print(f"backend: {_backend_words(spec)}", markup=False, highlight=False)
    try:
        status = _with_progress(spec, plan, store, opts, quiet, err)
    except Exception as exc:
        # the workers could not be made (no model, a backend that does not build, ...), here or
        # in a Ray actor: the manifest says `failed` with the reason. Anything else is a bug,
        # and its traceback is worth more than one line.
        if not isinstance(exc, RunSetupError) and not isinstance(getattr(exc, "cause", None), RunSetupError):
            raise
        err.print(f"error: {failure_reason(exc)}\nthe run stopped; {out / 'manifest.json'} says status "
                  "\"failed\" (rerun with the same --out to resume once it is fixed)", markup=False, highlight=False)
        raise typer.Exit(1) from None
    c = store.counts
    err.print(f"{status}: {c.accepted} accepted, {c.rejected} rejected of {c.attempted} tried → {out}")
    try:
        from runtime.store.report import write_report

        write_report(out)
    except Exception as exc:  # noqa: BLE001  the dataset is written; a report problem is secondary
        err.print(f"warning: report not written: {type(exc).__name__}: {exc}")
    if status != "complete":
        err.print(f"error: only {c.accepted} of {n} accepted within {opts.max_attempts} attempts; "
                  "raise --max-attempts or look at `eigen report`")
        raise typer.Exit(1)


def _backend_words(spec) -> str:
    if spec.backend == "offline":
        return "offline (no model)"
    where = f" at {spec.base_url}" if spec.base_url else ""
    return f"{spec.backend}, model {spec.model or '(the endpoint default)'}{where}"


def _with_progress(spec, plan, store, opts, quiet, err) -> str:
    from runtime.exec.driver import execute

    if quiet:
        return execute(spec, plan, store, opts)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    def stages() -> str:
        c = store.counts
        worst = sorted(c.by_stage.items(), key=lambda kv: -kv[1])[:3]
        return f"rejected {c.rejected}" + (" (" + ", ".join(f"{k} {v}" for k, v in worst) + ")" if worst else "")

    with Progress(TextColumn("accepted"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        task = progress.add_task(stages(), total=opts.n, completed=store.counts.accepted)
        return execute(spec, plan, store, opts, lambda r: progress.update(
            task, completed=store.counts.accepted, description=stages()))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
