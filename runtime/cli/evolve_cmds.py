"""`eigen evolve` (the three phases), `eigen plan` (the workflow planner's first proposal)."""

from __future__ import annotations

from pathlib import Path

import typer

from runtime.cli.allow import allow_path_option, allowed
from runtime.cli.run_cmds import _backend_words, endpoints, finish_run, max_crash_rate_option


def evolve(workflow: Path = typer.Argument(..., help="the workflow program (its `evolution:` settings apply)"),
           domain: str | None = typer.Option(None, "--domain", "-d", help="a built-in domain or a domain folder"),
           n: int = typer.Option(100, "--n", "-n", min=1, help="accepted instances to produce in phase 3"),
           seed: int = typer.Option(0, "--seed", "-s"),
           out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default runs/<workflow>-<domain>-<seed>-evolved)"),
           backend: str = typer.Option("offline", "--backend", help="offline | openai | hf"),
           base_url: list[str] | None = typer.Option(None, "--base-url", envvar="EIGEN_BASE_URL",
                                                     help="an endpoint of --backend openai; again for each further one"),
           model: str | None = typer.Option(None, "--model", envvar="EIGEN_MODEL"),
           concurrency: int = typer.Option(16, "--concurrency", min=1,
                                           help="model requests in flight (split across Ray workers)"),
           request_timeout: float = typer.Option(60.0, "--request-timeout", min=0.001),
           max_retries: int = typer.Option(3, "--max-retries", min=0),
           sets: int | None = typer.Option(None, "--sets", min=1, help="prompt sets K (default: evolution.prompt_sets)"),
           batch: int | None = typer.Option(None, "--batch", min=1, help="pilot batch size (default: evolution.pilot.batch)"),
           max_iterations: int | None = typer.Option(None, "--max-iterations", min=1,
                                                     help="pilot iterations (default: evolution.pilot.max_iterations)"),
           window: int | None = typer.Option(None, "--window", min=1, help="phase 3 audit window, in instances"),
           judge: str = typer.Option("auto", "--judge", help="auto | offline | model"),
           engineer: str = typer.Option("auto", "--engineer", help="auto | offline | model"),
           planner: str = typer.Option("auto", "--planner", help="auto | offline | model"),
           executor: str = typer.Option("local", "--executor", help="local | ray (phase 3)"),
           workers: int = typer.Option(1, "--workers", "-k", min=1),
           ray_address: str | None = typer.Option(None, "--ray-address"),
           size: float = typer.Option(1.0, "--size"),
           max_attempts: int | None = typer.Option(None, "--max-attempts"),
           quiet: bool = typer.Option(False, "--quiet", "-q"),
           allow_path: list[Path] | None = allow_path_option(),
           max_crash_rate: float = max_crash_rate_option(),
           ) -> None:
    """Self-evolving generation: diversified prompt sets, pilot optimisation, monitored generation."""
    from rich.console import Console

    from runtime.evolve.generate import run_evolution
    from runtime.evolve.phases import EvolveOptions
    from runtime.exec.engine import RunSetupError, RunSpec
    from runtime.store.run_store import RunLocked, StoreError, default_run_dir

    err = Console(stderr=True)
    for name, value in (("judge", judge), ("engineer", engineer), ("planner", planner)):
        if value not in ("auto", "offline", "model"):
            err.print(f"error: --{name} must be auto, offline or model, not {value!r}")
            raise typer.Exit(2)
    if executor not in ("local", "ray"):
        err.print(f"error: unknown executor {executor!r} (local or ray)")
        raise typer.Exit(2)
    if not workflow.is_file():
        err.print(f"error: no such workflow file: {workflow}")
        raise typer.Exit(2)
    base_url = endpoints(base_url, err)
    if backend == "offline":
        model = base_url = None
    spec = RunSpec(str(workflow.resolve()), domain, seed, size, backend, model, base_url, concurrency,
                   request_timeout, max_retries, allow_paths=allowed(allow_path, domain))
    out = out or default_run_dir(workflow.stem, domain or "domain", seed, "-evolved")
    opts = EvolveOptions(out, n, max_attempts or 5 * n, sets, batch, max_iterations, window, judge, engineer,
                         planner, executor, workers, ray_address)
    err.print(f"backend: {_backend_words(spec)}", markup=False, highlight=False)
    say = (lambda s: None) if quiet else (lambda s: err.print(s, markup=False, highlight=False))
    try:
        status, store = run_evolution(spec, opts, say)
    except (RunSetupError, StoreError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, RunLocked) else 1) from None
    finish_run(err, status, store, out, n, opts.max_attempts, max_crash_rate,
               after=f"\nevolution history: eigen history {out}")


def plan(out: Path = typer.Argument(..., help="folder to write workflow.yaml and its prompts/ into"),
         domain: str = typer.Option(..., "--domain", "-d", help="a built-in domain or a domain folder"),
         request: str = typer.Option(..., "--request", "-r", help="what the data is for, in words"),
         size: int | None = typer.Option(None, "--size", help="target dataset size"),
         difficulty: str | None = typer.Option(None, "--difficulty", help="easy | medium | hard"),
         diversity: int | None = typer.Option(None, "--diversity", help="prompt sets K"),
         allow_path: list[Path] | None = allow_path_option(),
         ) -> None:
    """The workflow planner's proposal for a request, written through the mutation API."""
    from rich.console import Console

    from runtime.evolve.planner import OfflinePlanner

    err = Console(stderr=True)
    targets = {"size": size, "difficulty": difficulty, "diversity": diversity}
    version, edits = OfflinePlanner(allowed(allow_path)).propose(out, domain=domain, request=request, targets=targets)
    for e in edits:
        mark = "refused" if e["refused"] else "applied"
        err.print(f"{mark}: {e['op']} — {e['reason']}", markup=False, highlight=False)
        for d in e["refused"]:
            err.print(f"  {d}", markup=False, highlight=False)
    err.print(f"wrote {out / 'workflow.yaml'} (hash {version.hash[:12]})")


def register(app: typer.Typer) -> None:
    app.command("evolve")(evolve)
    app.command("plan")(plan)
