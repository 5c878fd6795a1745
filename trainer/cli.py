"""The trainer's commands, added to the `eigen` app by `register(app)`:

    eigen train sft CONFIG [--nproc N]  # trainer/sft.py; N > 1: N processes under torchrun
    eigen train grpo CONFIG [--nproc N] # trainer/grpo.py
    eigen train build-tiny RUN -o DIR   # a tiny model + tokenizer from a run (CPU demos)
    eigen eval --model M --tasks RUN_OR_FILE --trials K [--out FILE]
               [--split train|held-out --fraction F] [--ids FILE] [--held-out-of TRAIN_OUT]...

Heavy imports (torch, transformers) happen inside the commands, so `eigen --help` stays
fast. A bad config or run directory exits 2 with one line on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


NPROC_HELP = "processes on this machine (one per GPU); > 1 relaunches the command under torchrun"


def _relaunch(nproc: int, argv: list[str]) -> None:
    """Under N > 1, run the same command in N torchrun processes and exit with their status
    (the config was read once here, so a bad one fails before anything starts)."""
    from .distributed import launch, launched_world

    if nproc > 1 and launched_world() == 1:
        raise typer.Exit(launch(nproc, argv))


def register(app: typer.Typer) -> None:
    """Add the `train` sub-app and the `eval` command to `app`."""
    train = typer.Typer(no_args_is_help=True, help="Train a policy (SFT, GRPO) on generated data.")

    @train.command("sft")
    def sft_cmd(config: Path = typer.Argument(..., help="an SFT config (YAML or JSON)"),
                nproc: int = typer.Option(1, "--nproc", min=1, help=NPROC_HELP)) -> None:
        """Supervised fine-tuning on a run's accepted dialogs (resumes from out/)."""
        from .sft import SFTError, load_config, train_sft

        try:
            settings = load_config(config)
            _relaunch(nproc, ["train", "sft", str(config)])
            result = train_sft(settings)
        except SFTError as exc:
            _fail(str(exc))
        if result.rank != 0:
            return
        typer.echo(f"sft: {result.steps} steps on {result.train_size} conversations, last loss "
                   f"{result.last_loss if result.last_loss is None else round(result.last_loss, 4)} → {result.final}")

    @train.command("grpo")
    def grpo_cmd(config: Path = typer.Argument(..., help="a GRPO config (YAML or JSON)"),
                 nproc: int = typer.Option(1, "--nproc", min=1, help=NPROC_HELP)) -> None:
        """GRPO against the environments and verifiers of a run's tasks (resumes from out/)."""
        from .grpo import GRPOError, load_grpo_config, train_grpo
        from .sft import SFTError

        try:
            settings = load_grpo_config(config)
            if settings.async_ is not None and nproc > 1:  # its Ray actors are the parallelism
                raise GRPOError("async GRPO runs one trainer process: drop --nproc (async.rollout_workers "
                                "sets the rollout actors)")
            _relaunch(nproc, ["train", "grpo", str(config)])
            result = train_grpo(settings)
        except (GRPOError, SFTError) as exc:
            _fail(str(exc))
        if result.rank != 0:
            return
        typer.echo(f"grpo: {result.steps} steps ({result.updates} with an update) on {result.train_tasks} tasks "
                   f"→ {result.final or result.out}")

    @train.command("build-tiny")
    def build_tiny_cmd(run: Path = typer.Argument(..., help="a run directory"),
                       out: Path = typer.Option(..., "-o", "--out", help="model folder to write"),
                       vocab_size: int = typer.Option(512, help="BPE vocabulary size"),
                       seed: int = typer.Option(0, help="weight initialisation seed"),
                       hidden: int = typer.Option(64, min=8, help="hidden size"),
                       layers: int = typer.Option(2, min=1, help="decoder layers"),
                       split_digits: bool = typer.Option(True, help="every digit its own token (as Qwen's "
                                                         "tokenizer); --no-split-digits lets BPE merge them")) -> None:
        """A tiny random LM whose tokenizer is trained on the run (for CPU demos and tests)."""
        from .data import RunDirError
        from .tiny import build_tiny_from_run

        try:
            path, problems = build_tiny_from_run(run, out, vocab_size=vocab_size, seed=seed, hidden=hidden,
                                                 layers=layers, split_digits=split_digits)
        except (RunDirError, ValueError) as exc:  # a bad run, or a shape the model cannot take
            _fail(str(exc))
        typer.echo(f"tiny model → {path}" + (f" ({len(problems)} record(s) skipped)" if problems else ""))

    app.add_typer(train, name="train")

    @app.command("eval")
    def eval_cmd(model: str = typer.Option(..., "--model", help="the policy: a model folder or hub name"),
                 tasks: Path = typer.Option(..., "--tasks", help="a run directory or an instances.jsonl file"),
                 trials: int = typer.Option(4, "--trials", min=1, help="episodes per task (k = 1..trials)"),
                 out: Path | None = typer.Option(None, "--out", help="write the report as JSON here"),
                 user: str = typer.Option("scripted", help="user simulator: scripted or a user model path"),
                 max_turns: int = typer.Option(8, min=1),
                 max_new_tokens: int = typer.Option(128, min=1),
                 temperature: float = typer.Option(1.0, min=0.0),
                 seed: int = typer.Option(0),
                 domain: str | None = typer.Option(None, help="where to find the domain (a name or folder)"),
                 device: str = typer.Option("cpu"),
                 split: str | None = typer.Option(None, "--split", help="train or held-out: the tasks on that "
                                                  "side of the id-hash split (needs --fraction)"),
                 fraction: float | None = typer.Option(None, "--fraction", min=0.0, max=1.0,
                                                       help="the held_out fraction of the training config"),
                 ids: Path | None = typer.Option(None, "--ids", help="only these task ids: a file with one id a "
                                                 "line, a JSON array, or a GRPO tasks.json (its held_out ids)"),
                 held_out_of: list[Path] = typer.Option([], "--held-out-of", help="a training output folder: leave "
                                                        "out the tasks it trained on and exact copies of them "
                                                        "(repeatable)"),
                 max_context: int = typer.Option(4096, "--max-context", min=16, help="tokens an episode may "
                                                 "reach (τ²-bench's policies and tools alone are ~10k)"),
                 judge: str | None = typer.Option(None, "--judge", help="openai, hf or vllm: the model judge of "
                                                  "imported τ²-bench tasks' nl_assertions (else not graded)"),
                 judge_model: str | None = typer.Option(None, "--judge-model"),
                 judge_base_url: str | None = typer.Option(None, "--judge-base-url")) -> None:
        """pass^k and pass@k (k = 1..trials) per domain, as a table and optionally JSON."""
        from .evaluate import evaluate, print_table
        from .rollout import load_tasks
        from .selection import select_tasks
        from .sft import SFTError

        try:
            loaded, problems = load_tasks([tasks], domain)
            chosen, notes = select_tasks(loaded, split, fraction, ids, held_out_of)
            for note in notes:
                typer.echo(note)
            if not chosen:
                _fail(f"no task to evaluate in {tasks}" + (f" ({problems[0]})" if problems else
                                                           " after the selection" if notes else ""))
            grader = None
            if judge is not None:
                from runtime.backends import BackendUnavailable
                from runtime.tau2.grade import make_judge

                try:
                    grader = make_judge(judge, judge_model, judge_base_url)
                except BackendUnavailable as exc:
                    _fail(f"--judge {judge}: {exc}")
            report = evaluate(model, chosen, trials, user=user, max_turns=max_turns, max_new_tokens=max_new_tokens,
                              temperature=temperature, seed=seed, domain=domain, device=device,
                              max_context=max_context, judge=grader)
        except (SFTError, ValueError) as exc:
            _fail(str(exc))
        report.problems = problems + report.problems
        report.selection = notes
        print_table(report)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
            typer.echo(f"wrote {out}")
