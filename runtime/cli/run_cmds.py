"""`eigen run`: compile a workflow and generate a verified dataset into a run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from runtime.cli.allow import allow_path_option, allowed

# exit codes: 0 complete; 1 a failed or incomplete run, more crashes than --max-crash-rate, a
# refused or damaged run directory; 2 usage, and a run directory another live run is writing
# (RunLocked)



def max_crash_rate_option():
    return typer.Option(0.0, "--max-crash-rate", min=0.0, max=1.0,
                        help="exit 1 when more than this share of the instances tried crashed (a Python "
                        "exception in a tool, generator, recipe or worker); the run still finishes and "
                        "writes everything")


def run(workflow: Path = typer.Argument(..., help="the workflow program"),
        domain: str | None = typer.Option(None, "--domain", "-d",
                                             help="a built-in domain or a domain folder (replaces the workflow's)"),
        n: int = typer.Option(100, "--n", "-n", min=1, help="accepted instances to produce"),
        seed: int = typer.Option(0, "--seed", "-s", help="run seed: world and every instance"),
        out: Path | None = typer.Option(None, "--out", "-o",
                                        help="run directory (default runs/<workflow>-<domain>-<seed>)"),
        backend: str = typer.Option("offline", "--backend",
                                    help="offline (no model) | openai (any OpenAI-compatible endpoint) | hf"),
        base_url: list[str] | None = typer.Option(None, "--base-url", envvar="EIGEN_BASE_URL",
                                                  help="the endpoint of --backend openai, e.g. "
                                                  "http://127.0.0.1:8000/v1; give it again for each further "
                                                  "endpoint: requests are balanced over them"),
        model: str | None = typer.Option(None, "--model", envvar="EIGEN_MODEL",
                                         help="model name (openai; default: the endpoint's first) or folder (hf)"),
        concurrency: int = typer.Option(16, "--concurrency", min=1,
                                        help="model requests in flight for the whole run (with --executor ray: "
                                        "split across the workers)"),
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
        allow_path: list[Path] | None = allow_path_option(),
        max_crash_rate: float = max_crash_rate_option(),
        ) -> None:
    """Generate N accepted instances; rerun with the same --out to resume after a crash."""
    from rich.console import Console

    from runtime.exec.driver import RunOptions, failure_reason, open_run
    from runtime.exec.engine import RunSetupError, RunSpec, prepare
    from runtime.store.run_store import RunLocked, StoreError, default_run_dir

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
    base_url = endpoints(base_url, err)
    if evolve:
        from runtime.cli.evolve_cmds import evolve as evolve_cmd

        return evolve_cmd(workflow, domain, n, seed, out, backend, base_url, model, concurrency, request_timeout,
                          max_retries, None, None, None, None, "auto", "auto", "auto", executor, workers,
                          ray_address, size, max_attempts, quiet, allow_path=allow_path,
                          max_crash_rate=max_crash_rate)
    if backend == "offline":  # no model: an EIGEN_MODEL in the environment must not enter its identity
        model = base_url = None
    spec = RunSpec(str(workflow.resolve()), domain, seed, size, backend, model, base_url, concurrency,
                   request_timeout, max_retries, allow_paths=allowed(allow_path, domain))
    try:
        plan = prepare(spec)
        out = out or default_run_dir(plan.data["workflow"], plan.domain.name, seed)
        opts = RunOptions(out, n, max_attempts or 5 * n, executor, workers, ray_address)
        plan, store = open_run(spec, opts, plan)
    except (RunSetupError, StoreError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, RunLocked) else 1) from None
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
    finish_run(err, status, store, out, n, opts.max_attempts, max_crash_rate)


def finish_run(err, status: str, store, out: Path, n: int, max_attempts: int, max_crash_rate: float,
               after: str = "") -> None:
    """The end of `eigen run` and `eigen evolve`: the counts, the report, and exit 1 when the
    run is incomplete or crashed more than `max_crash_rate` of its instances."""
    c = store.counts
    crashed = f", {c.crashed} crashed" if c.crashed else ""
    err.print(f"{status}: {c.accepted} accepted, {c.rejected} rejected{crashed} of {c.attempted} tried → {out}"
              + after, markup=False, highlight=False)
    report = None
    try:
        from runtime.store.report import write_report

        report = write_report(out)
    except Exception as exc:  # noqa: BLE001  the dataset is written; a report problem is secondary
        err.print(f"warning: report not written: {type(exc).__name__}: {exc}")
    failed = False
    if c.crashed and c.crash_rate > max_crash_rate:
        _crash_summary(err, c, report, out, max_crash_rate)
        failed = True
    if status != "complete":
        err.print(f"error: only {c.accepted} of {n} accepted within {max_attempts} attempts; "
                  "raise --max-attempts or look at `eigen report`")
        failed = True
    if failed:
        raise typer.Exit(1)



def _crash_summary(err, counts, report: dict | None, out: Path, limit: float) -> None:
    """What crashed, where, and where the tracebacks are: the run's code is broken."""
    from runtime.store.report import crash_lines

    err.print(f"error: {counts.crashed} of {counts.attempted} instances crashed ({100 * counts.crash_rate:.1f}%, "
              f"more than --max-crash-rate {limit:g}): a Python exception in a tool, generator, recipe or "
              "worker is a bug to fix, not a rejected task", markup=False, highlight=False, soft_wrap=True)
    lines = crash_lines(report["crashes"]) if report is not None else \
        [f"  {stage}: {k}" for stage, k in sorted(counts.crashes_by_stage.items())]
    for line in lines:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    err.print(f"tracebacks: {out / 'crashes'}/; the run's report: {out / 'report.html'}", markup=False,
              highlight=False, soft_wrap=True)


def endpoints(urls: list[str] | str | None, err) -> str | tuple[str, ...] | None:
    """The --base-url values as a run spec holds them: None, one URL, or a tuple of several
    (in the order given: balancing breaks ties by it). Exits 2 on a URL that is not
    http(s) or one given twice."""
    urls = [urls] if isinstance(urls, str) else [u for u in urls or () if u]
    for u in urls:
        if not u.startswith(("http://", "https://")):
            err.print(f"error: --base-url {u!r} is not an http:// or https:// URL", markup=False, highlight=False)
            raise typer.Exit(2)
    if len({u.rstrip("/") for u in urls}) != len(urls):
        err.print("error: the same --base-url is given twice", markup=False, highlight=False)
        raise typer.Exit(2)
    return None if not urls else urls[0] if len(urls) == 1 else tuple(urls)


def _backend_words(spec) -> str:
    if spec.backend == "offline":
        return "offline (no model)"
    urls = spec.base_url if isinstance(spec.base_url, tuple) else (spec.base_url,) if spec.base_url else ()
    where = f" at {urls[0]}" if len(urls) == 1 else f" at {len(urls)} endpoints ({', '.join(urls)})" if urls else ""
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
        return f"rejected {c.rejected}" + (" (" + ", ".join(f"{k} {v}" for k, v in worst) + ")" if worst else "") \
            + (f", crashed {c.crashed}" if c.crashed else "")

    with Progress(TextColumn("accepted"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        task = progress.add_task(stages(), total=opts.n, completed=store.counts.accepted)
        return execute(spec, plan, store, opts, lambda r: progress.update(
            task, completed=store.counts.accepted, description=stages()))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
