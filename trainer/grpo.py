"""GRPO on verifiable tasks (`eigen train grpo CONFIG`), in plain torch.

    config = load_grpo_config("grpo.yaml")     # GRPOConfig, from YAML or JSON
    result = train_grpo(config)                # resumes from the latest checkpoint in config.out

One step:
1. sample `tasks_per_step` training tasks (a pure function of (seed, step); with
   `domains: separate` all from one domain, round robin, with `mixed` from the whole pool);
2. `group_size` rollouts of each (trainer/rollout.py: a fork of the environment per
   rollout, the user simulator, reward 1.0 iff the verifier passes on the final state);
3. `dynamic_filter` drops the groups whose rewards are all equal — before any advantage is
   computed — and more tasks are sampled and rolled out until `tasks_per_step` groups are
   kept or `max_refills` extra rounds are spent; a step with no group left makes no update;
4. A = (R − mean)/std within each kept group; old log-probs by a forward pass of the
   policy as it rolled out; `ppo_epochs` passes over the batch, each one optimizer step
   whose gradient is accumulated over `grad_accum` micro-batches, with the token-level
   clipped surrogate (eps_low / eps_high) normalised by the loss tokens of the whole batch,
   plus an optional KL to a reference model (kl_coef, 0 by default as in the paper);
   log-probs of sequences longer than `ce_chunk` come chunk by chunk (trainer/chunked_ce.py).

`out/` holds `config.json`, `tasks.json` (train/held-out ids, problems), `metrics.jsonl`
(one row per step: reward mean, filtered fraction, refills, tokens, clip fraction, loss,
rollout and train seconds), `curves.png`, `rollouts.jsonl` (when `log_rollouts`),
`checkpoints/step-NNNNNNNN/` (as trainer/sft.py writes them) and `final/`.
Multi-GPU: see configs/README.md (DeepSpeed ZeRO-2 / FSDP through `accelerate launch`).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .data import held_out
from .rollout import (
    Rollout,
    RolloutConfig,
    Task,
    dump_rollouts,
    load_tasks,
    make_user,
    run_episodes,
)
from .sft import (
    SFTError,
    _check_config,
    _keep_metrics_until,
    _restore,
    checkpoints,
    load_model_and_tokenizer,
    read_settings,
    save_checkpoint,
)


class GRPOError(SFTError):
    """A GRPO run that cannot start or go on, with the reason in one line."""


class GRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str  # the policy: a model folder (e.g. trainer/sft.py's final/) or a hub name
    data: list[str]  # run directories or instances.jsonl files
    out: str
    reference: str | None = None  # the KL reference (default: the initial policy, when kl_coef > 0)
    domain: str | None = None  # where to look domains up when the recorded name is not a built-in
    domains: Literal["mixed", "separate"] = "mixed"  # one pool, or each step from one domain in turn
    user: str = "scripted"  # the user simulator: "scripted" or a user model's path
    held_out: float = Field(0.0, ge=0, le=1)  # fraction of tasks (by id hash) kept out of training
    tasks_per_step: int = Field(4, ge=1)
    group_size: int = Field(4, ge=2)
    max_refills: int = Field(2, ge=0)  # extra sampling rounds to replace filtered groups
    eps_low: float = Field(0.2, ge=0)
    eps_high: float = Field(0.28, ge=0)
    kl_coef: float = Field(0.0, ge=0)
    lr: float = Field(1e-6, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    grad_accum: int = Field(1, ge=1)  # micro-batches per optimizer step
    ppo_epochs: int = Field(1, ge=1)  # optimizer steps per batch of rollouts
    max_turns: int = Field(8, ge=1)
    max_new_tokens: int = Field(128, ge=1)
    max_context: int = Field(4096, ge=16)
    temperature: float = Field(1.0, gt=0)  # rollout sampling; the loss scores at the same temperature
    ce_chunk: int = Field(2048, ge=0)  # longer sequences: logits this many positions at a time; 0: never
    rollout_workers: int = Field(1, ge=1)  # > 1: Ray actors
    engine: Literal["hf", "vllm"] = "hf"
    steps: int = Field(10, ge=1)
    seed: int = 0
    save_every: int = Field(0, ge=0)  # 0: only at the end
    keep_checkpoints: int = Field(2, ge=1)
    log_rollouts: bool = False
    threads: int | None = Field(None, ge=1)  # torch CPU threads
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = "cpu"

    def rollout_config(self) -> RolloutConfig:
        return RolloutConfig(max_turns=self.max_turns, max_new_tokens=self.max_new_tokens,
                             temperature=self.temperature, max_context=self.max_context)


def load_grpo_config(path: Path | str) -> GRPOConfig:
    """A GRPOConfig from a YAML or JSON file; GRPOError says what is wrong."""
    data = read_settings(path, GRPOError)
    if isinstance(data.get("data"), str):
        data["data"] = [data["data"]]
    try:
        return GRPOConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise GRPOError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc


@dataclass
class GRPOResult:
    out: Path
    steps: int
    train_tasks: int
    held_out_tasks: int
    updates: int = 0  # steps that made an optimizer update (others had every group filtered)
    resumed_from: int | None = None
    final: Path | None = None


# ---------------------------------------------------------------- sampling


def sample_tasks(pool: dict[str, list[Task]], n: int, seed: int, step: int, round_: int, mode: str) -> list[Task]:
    """n tasks for a step's sampling round: a function of (seed, step, round) only."""
    rng = random.Random(f"grpo:{seed}:{step}:{round_}")
    names = sorted(pool)
    if mode == "separate":
        tasks = pool[names[step % len(names)]]
    else:
        tasks = [t for name in names for t in pool[name]]
    return rng.sample(tasks, n) if n <= len(tasks) else [rng.choice(tasks) for _ in range(n)]


def select_groups(rewards: list[list[float]]) -> list[int]:
    """Indices of the groups that carry signal (grpo_math.dynamic_filter)."""
    import torch

    from .grpo_math import dynamic_filter

    if not rewards:
        return []
    return torch.nonzero(dynamic_filter(torch.tensor(rewards))).flatten().tolist()


def build_batch(groups: list[list[Rollout]]) -> tuple[list[Rollout], list[float]]:
    """(the trajectories of the kept groups, their advantages), computed only now that
    filtering is done."""
    import torch

    from .grpo_math import group_advantages

    if not groups:
        return [], []
    adv = group_advantages(torch.tensor([[r.reward for r in g] for g in groups]))  # [B', G]
    return [r for g in groups for r in g], adv.reshape(-1).tolist()


# ---------------------------------------------------------------- the update


def policy_update(model: Any, optimizer: Any, batch: list[Rollout], advantages: list[float], config: GRPOConfig,
                  pad_id: int, ref_logprobs: list[list[float]] | None = None) -> dict[str, float]:
    """`ppo_epochs` optimizer steps on the batch; the stats of the last one."""
    import torch

    from .chunked_ce import target_logprobs
    from .grpo_math import clipped_surrogate_loss

    num_tokens = sum(sum(r.loss_mask) for r in batch)  # every loss token of the batch weighs the same
    size = math.ceil(len(batch) / config.grad_accum)
    stats: dict[str, float] = {}
    for _ in range(config.ppo_epochs):
        optimizer.zero_grad(set_to_none=True)
        totals = {"loss": 0.0, "clipped": 0.0, "kl": 0.0}
        for i in range(0, len(batch), size):
            chunk = batch[i:i + size]
            width = max(len(r.input_ids) for r in chunk)

            def pad(rows: list[list], fill: Any, dtype: Any) -> Any:
                return torch.tensor([row + [fill] * (width - len(row)) for row in rows], dtype=dtype,
                                    device=config.device)  # [b, T]

            ids = pad([r.input_ids for r in chunk], pad_id, torch.long)
            attn = pad([[1] * len(r.input_ids) for r in chunk], 0, torch.long)
            mask = pad([r.loss_mask for r in chunk], 0, torch.float32)
            old = pad([r.old_logprobs for r in chunk], 0.0, torch.float32)
            ref = pad(ref_logprobs[i:i + size], 0.0, torch.float32) if ref_logprobs else None
            new = target_logprobs(model, ids, attn, config.temperature, config.ce_chunk)  # [b, T]
            adv = torch.tensor(advantages[i:i + size], device=config.device)  # [b]
            loss, s = clipped_surrogate_loss(new, old, adv, mask, config.eps_low, config.eps_high,
                                             num_tokens=num_tokens, logp_ref=ref, kl_coef=config.kl_coef)
            loss.backward()  # micro-batch losses are already divided by the batch's tokens: they add up
            totals["loss"] += float(loss.detach())
            totals["clipped"] += s["clip_frac"] * s["tokens"]
            totals["kl"] += s.get("kl", 0.0) * s["tokens"]
        limit = config.grad_clip if config.grad_clip is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), limit))
        optimizer.step()
        stats = {"loss": totals["loss"], "clip_frac": totals["clipped"] / max(1, num_tokens),
                 "grad_norm": grad_norm}
        if config.kl_coef > 0:
            stats["kl"] = totals["kl"] / max(1, num_tokens)
    return stats


# ---------------------------------------------------------------- training


def _split_tasks(config: GRPOConfig) -> tuple[dict[str, list[Task]], list[Task], list[str]]:
    try:
        tasks, problems = load_tasks(config.data, config.domain)
    except ValueError as exc:
        raise GRPOError(str(exc)) from exc
    pool: dict[str, list[Task]] = {}
    held = []
    for t in tasks:
        if held_out(t.id, config.held_out):
            held.append(t)
        else:
            pool.setdefault(t.domain, []).append(t)
    if not pool:
        raise GRPOError(f"no training task in {', '.join(config.data)}"
                        + (f" (first problem: {problems[0]})" if problems else ""))
    return pool, held, problems


def _rollouts(engine: Any, model: Any, tokenizer: Any, tasks: list[Task], config: GRPOConfig, user: Any,
              seed: int) -> list[list[Rollout]]:
    """group_size rollouts of each task, grouped."""
    import torch

    flat = [t for t in tasks for _ in range(config.group_size)]
    model.eval()
    if hasattr(engine, "run"):  # Ray actors
        got = engine.run(model, [t.id for t in flat], seed)
    else:
        torch.manual_seed(seed)
        if engine is not None:  # vLLM: same episodes, another generator
            engine.sync(model)
        got = run_episodes(model, tokenizer, flat, user, config.rollout_config(), generate=engine)
    model.train()
    g = config.group_size
    return [got[i:i + g] for i in range(0, len(got), g)]


def train_grpo(config: GRPOConfig, stop_at: int | None = None) -> GRPOResult:
    """Train (or resume) per `config`; `stop_at` ends the call after that many steps
    without a checkpoint there, as an interruption would."""
    import torch

    from .rollout import sequence_logprobs

    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config)
    pool, held, problems = _split_tasks(config)
    (out / "tasks.json").write_text(json.dumps(
        {"train": {d: [t.id for t in ts] for d, ts in sorted(pool.items())}, "held_out": [t.id for t in held],
         "problems": problems}, indent=2) + "\n", encoding="utf-8")

    latest = checkpoints(out)[-1] if checkpoints(out) else None
    model, tokenizer = load_model_and_tokenizer(latest[1] if latest else config.model, config.dtype, config.device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    reference = None
    if config.kl_coef > 0:
        reference, _ = load_model_and_tokenizer(config.reference or config.model, config.dtype, config.device)
        reference.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    result = GRPOResult(out, 0, sum(len(v) for v in pool.values()), len(held),
                        resumed_from=latest[0] if latest else None)
    step = 0
    if latest:
        _restore(latest[1], optimizer)
        step = latest[0]
    metrics = out / "metrics.jsonl"
    _keep_metrics_until(metrics, step)
    user = make_user(config.user, config.max_turns, config.device)
    engine = _engine(config, latest[1] if latest else None)
    while step < config.steps:
        if stop_at is not None and step >= stop_at:
            break
        t0 = time.perf_counter()
        kept: list[list[Rollout]] = []
        rewards, sampled, refills = [], 0, 0
        for round_ in range(config.max_refills + 1):
            need = config.tasks_per_step - len(kept)
            if need <= 0:
                break
            refills += round_ > 0
            tasks = sample_tasks(pool, need, config.seed, step, round_, config.domains)
            groups = _rollouts(engine, model, tokenizer, tasks, config, user,
                               seed=config.seed * 1_000_003 + step * 101 + round_)
            sampled += len(groups)
            rewards += [r.reward for g in groups for r in g]
            kept += [groups[i] for i in select_groups([[r.reward for r in g] for g in groups])]
            if config.log_rollouts:
                dump_rollouts(out / "rollouts.jsonl", step + 1, [r for g in groups for r in g])
        kept = kept[:config.tasks_per_step]
        batch, advantages = build_batch(kept)
        t1 = time.perf_counter()
        row: dict[str, Any] = {"step": step + 1, "reward_mean": sum(rewards) / max(1, len(rewards)),
                               "groups_sampled": sampled, "groups_kept": len(kept),
                               "filtered_frac": 1.0 - len(kept) / max(1, sampled), "refills": refills,
                               "trajectories": len(batch), "tokens": sum(r.n_loss_tokens for r in batch),
                               "turns_mean": sum(r.turns for g in kept for r in g) / max(1, len(batch)),
                               "updated": bool(batch)}
        if batch:
            model.eval()
            seqs = [r.input_ids for r in batch]
            olds = sequence_logprobs(model, seqs, pad_id, config.temperature, chunk=config.ce_chunk)
            refs = (sequence_logprobs(reference, seqs, pad_id, config.temperature, chunk=config.ce_chunk)
                    if reference is not None else None)
            model.train()
            for r, lp in zip(batch, olds):
                r.old_logprobs = lp
            row.update(policy_update(model, optimizer, batch, advantages, config, pad_id, refs))
            result.updates += 1
        else:
            row.update({"loss": 0.0, "clip_frac": 0.0})
        row["rollout_s"], row["train_s"] = round(t1 - t0, 4), round(time.perf_counter() - t1, 4)
        step += 1
        with metrics.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
        if (config.save_every and step % config.save_every == 0) or step == config.steps:
            save_checkpoint(out, step, model, tokenizer, optimizer, config.keep_checkpoints)
            plot_metrics(metrics, out / "curves.png")
    result.steps = step
    if step >= config.steps:
        final = out / "final"
        model.save_pretrained(final)
        tokenizer.save_pretrained(final)
        result.final = final
    return result


def _engine(config: GRPOConfig, checkpoint: Path | None) -> Any:
    """None for in-process HF generation, or a Ray pool / vLLM engine (lazy imports)."""
    if config.engine == "vllm":
        from .rollout import VLLMGenerator

        try:
            return VLLMGenerator(str(checkpoint or config.model), config.rollout_config())
        except RuntimeError as exc:
            raise GRPOError(str(exc)) from exc
    if config.rollout_workers > 1:
        from .rollout import RayRollouts

        return RayRollouts(config.rollout_workers, str(checkpoint or config.model), config.data, config.user,
                           config.rollout_config(), config.domain)
    return None


def plot_metrics(metrics: Path, png: Path) -> Path | None:
    """Reward, filtered fraction, clip fraction and the time split per step, as PNG curves."""
    rows = []
    for line in metrics.read_text(encoding="utf-8").splitlines() if metrics.is_file() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6))
    for ax, key in zip(axes.flat[:3], ("reward_mean", "filtered_frac", "clip_frac")):
        ax.plot(steps, [r.get(key, 0.0) for r in rows], marker=".")
        ax.set_title(key)
        ax.set_xlabel("step")
    ax = axes.flat[3]
    ax.plot(steps, [r.get("rollout_s", 0.0) for r in rows], label="rollout")
    ax.plot(steps, [r.get("train_s", 0.0) for r in rows], label="train")
    ax.set_title("seconds per step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
    return png
