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
   kept or `max_refills` extra rounds are spent; a step with no group left makes no update.
   A step draws its tasks without replacement: a refill never repeats a task of the step;
4. A = (R − mean)/std within each kept group; old log-probs by a forward pass of the
   policy as it rolled out, in eval mode (no dropout) like the update itself, so the first
   epoch's ratio is exactly 1; `ppo_epochs` passes over the batch, each one optimizer step
   whose gradient is accumulated over `grad_accum` micro-batches, with the token-level
   clipped surrogate (eps_low / eps_high) normalised by the loss tokens of the whole batch,
   plus an optional KL to a reference model (kl_coef, 0 by default as in the paper);
   log-probs of sequences longer than `ce_chunk` come chunk by chunk (trainer/chunked_ce.py).

A turn cut by `max_new_tokens` is masked out of the loss (`mask_truncated`, on by default,
as DAPO's overlong filtering): the episode's reward judges what the unfinished message
did, not what it would have said, and a passing episode must not reinforce a ramble that
happened to come before the work was done. The share of such turns is in the metrics
(`cut_turns_frac`); bench/learning.py reports runs with the mask off too.

`out/` holds `config.json`, `tasks.json` (train/held-out ids, problems), `metrics.jsonl`
(one row per step: reward mean, filtered fraction, refills, tokens, clip fraction, loss,
rollout and train seconds), `curves.png` (trainer/curves.py), `rollouts.jsonl` (when `log_rollouts`),
`checkpoints/step-NNNNNNNN/` (as trainer/sft.py writes them) and `final/`.

Under torchrun (`eigen train grpo CONFIG --nproc N`, trainer/distributed.py) every rank
samples the same tasks and rolls out every N-th group; the rewards of all groups are
gathered, so filtering, refills and the kept groups are decided once for all ranks; each
rank trains on its kept groups, the loss divided by the loss tokens of the whole batch, so
the summed gradient is the single-process one. `parallel: fsdp` shards the policy; HF
rollouts then run on a whole copy of the weights gathered once per step (vLLM rollouts
receive the same copy); `parallel: deepspeed` likewise (trainer/deepspeed_strategy.py).

With an `async:` block (`AsyncSettings`) `train_grpo` hands over to trainer/async_grpo.py:
Ray actors generate the same steps' groups up to `max_staleness` policy versions ahead, and
`policy_update` uses the decoupled objective (behaviour log-probs from generation).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .curves import plot_metrics
from .data import held_out
from .distributed import Distributed, Parallel
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
    save_model,
)


class GRPOError(SFTError):
    """A GRPO run that cannot start or go on, with the reason in one line."""


class AsyncSettings(BaseModel):
    """`async:` of a GRPO config: rollouts by Ray actors that run ahead of the trainer
    (trainer/async_grpo.py). A group is trained at most `max_staleness` policy versions after
    the version that generated it (AReaL's max_head_offpolicyness); 0 is the synchronous run."""

    model_config = ConfigDict(extra="forbid")

    max_staleness: int = Field(2, ge=0)
    rollout_workers: int = Field(1, ge=1)  # Ray actors generating episodes
    behav_weight_cap: float | None = Field(5.0, gt=1)  # tokens with π_prox/π_behav above it get no loss


class GRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
    mask_truncated: bool = True  # turns cut by max_new_tokens get no loss (see the module docstring)
    ce_chunk: int = Field(2048, ge=0)  # longer sequences: logits this many positions at a time; 0: never
    rollout_workers: int = Field(1, ge=1)  # > 1: Ray actors (not with torchrun: its ranks roll out)
    engine: Literal["hf", "vllm"] = "hf"
    vllm_memory: float = Field(0.3, gt=0, le=1)  # the GPU memory fraction a vLLM engine may take
    steps: int = Field(10, ge=1)
    seed: int = 0
    save_every: int = Field(0, ge=0)  # 0: only at the end
    keep_checkpoints: int = Field(2, ge=1)
    log_rollouts: bool = False
    threads: int | None = Field(None, ge=1)  # torch CPU threads
    dtype: Literal["float32", "bfloat16"] = "float32"  # fsdp: the compute dtype (weights stay float32)
    device: str = "cpu"  # "cuda": under torchrun, each rank its own GPU
    parallel: Parallel = "ddp"  # under torchrun: replicated or sharded (trainer/distributed.py)
    deepspeed_config: str | None = None  # parallel: deepspeed: a DeepSpeed JSON (ZeRO stage...); None: ZeRO-3
    async_: AsyncSettings | None = Field(None, alias="async")  # asynchronous GRPO (trainer/async_grpo.py)

    def rollout_config(self) -> RolloutConfig:
        return RolloutConfig(max_turns=self.max_turns, max_new_tokens=self.max_new_tokens,
                             temperature=self.temperature, max_context=self.max_context,
                             mask_truncated=self.mask_truncated)


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
    rank: int = 0  # this process's rank under torchrun (rank 0 reports)


# ---------------------------------------------------------------- sampling


def sample_tasks(pool: dict[str, list[Task]], n: int, seed: int, step: int, round_: int, mode: str,
                 taken: set[str] | frozenset[str] = frozenset()) -> list[Task]:
    """Up to n tasks for a step's sampling round, without replacement within the step: none
    of `taken` (the ids earlier rounds of the step drew), no task twice, fewer than n when
    the pool runs out. A function of (seed, step, round, taken) only."""
    rng = random.Random(f"grpo:{seed}:{step}:{round_}")
    names = sorted(pool)
    if mode == "separate":
        tasks = pool[names[step % len(names)]]
    else:
        tasks = [t for name in names for t in pool[name]]
    tasks = [t for t in tasks if t.id not in taken]
    return rng.sample(tasks, min(n, len(tasks)))


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


def filler(pad_id: int) -> Rollout:
    """A trajectory that trains nothing (no loss token, advantage 0): it evens out the
    ranks' batches under FSDP, whose forward passes must match in number."""
    return Rollout("", "", [pad_id, pad_id], [0, 0], [], 0.0, [], 0)


def policy_update(model: Any, optimizer: Any, batch: list[Rollout], advantages: list[float], config: GRPOConfig,
                  pad_id: int, ref_logprobs: list[list[float]] | None = None, num_tokens: int | None = None,
                  dist: Distributed | None = None) -> dict[str, float]:
    """`ppo_epochs` optimizer steps on the batch (this rank's part of it); the stats of the
    last one. `num_tokens`: the loss tokens of the whole batch over all ranks.

    The model runs in eval mode (no dropout), as it did when it sampled the rollouts and
    when the old log-probs were taken: the ratio then compares one policy with itself on
    the first epoch (exactly 1), and the gradient is that of the distribution sampled from.
    (TRL's GRPO trainer disables dropout for the same reason.)"""
    import torch

    from .chunked_ce import target_logprobs
    from .grpo_math import behaviour_weights, clipped_surrogate_loss

    dist = dist or Distributed()
    decoupled = config.async_ is not None  # old = proximal; weights π_prox/π_behav (grpo_math)
    model.eval()
    if num_tokens is None:
        num_tokens = sum(sum(r.loss_mask) for r in batch)  # every loss token of the batch weighs the same
    size = max(1, math.ceil(len(batch) / config.grad_accum))
    stats: dict[str, float] = {}
    for _ in range(config.ppo_epochs):
        optimizer.zero_grad(set_to_none=True)
        totals = {"loss": 0.0, "clipped": 0.0, "kl": 0.0, "capped": 0.0, "weight_sum": 0.0}
        for i in range(0, len(batch), size):
            chunk = batch[i:i + size]
            last = i + size >= len(batch)
            width = max(len(r.input_ids) for r in chunk)

            def pad(rows: list[list], fill: Any, dtype: Any) -> Any:
                return torch.tensor([row + [fill] * (width - len(row)) for row in rows], dtype=dtype,
                                    device=dist.device)  # [b, T]

            ids = pad([r.input_ids for r in chunk], pad_id, torch.long)
            attn = pad([[1] * len(r.input_ids) for r in chunk], 0, torch.long)
            mask = pad([r.loss_mask for r in chunk], 0, torch.float32)
            old = pad([r.old_logprobs for r in chunk], 0.0, torch.float32)
            ref = pad(ref_logprobs[i:i + size], 0.0, torch.float32) if ref_logprobs else None
            new = target_logprobs(model, ids, attn, config.temperature, dist.chunk(config.ce_chunk))  # [b, T]
            adv = torch.tensor(advantages[i:i + size], device=dist.device)  # [b]
            weights = None
            if decoupled:
                behav = pad([r.behav_logprobs or r.old_logprobs for r in chunk], 0.0, torch.float32)
                weights, w = behaviour_weights(old, behav, mask, config.async_.behav_weight_cap)
                totals["capped"] += w["capped"]
                totals["weight_sum"] += w["weight_sum"]
            loss, s = clipped_surrogate_loss(new, old, adv, mask, config.eps_low, config.eps_high,
                                             num_tokens=max(1, num_tokens), logp_ref=ref, kl_coef=config.kl_coef,
                                             weights=weights)
            # micro-batch (and rank) losses are already divided by the batch's tokens: they add up
            dist.backward(model, loss * dist.loss_scale, last)
            totals["loss"] += float(loss.detach())
            totals["clipped"] += s["clip_frac"] * s["tokens"]
            totals["kl"] += s.get("kl", 0.0) * s["tokens"]
        grad_norm = dist.step(model, optimizer, config.grad_clip)
        loss, clipped, kl, capped, weight_sum = dist.all_sum(
            [totals["loss"], totals["clipped"], totals["kl"], totals["capped"], totals["weight_sum"]])
        stats = {"loss": loss, "clip_frac": clipped / max(1, num_tokens), "grad_norm": grad_norm}
        if config.kl_coef > 0:
            stats["kl"] = kl / max(1, num_tokens)
        if decoupled:
            stats["behav_capped_frac"] = capped / max(1, num_tokens)
            stats["behav_weight_mean"] = weight_sum / max(1.0, num_tokens - capped)
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


def open_run(config: GRPOConfig, dist: Distributed) -> tuple[Path, dict[str, list[Task]], list[Task]]:
    """(out folder, training tasks by domain, held-out tasks) of a GRPO run, synchronous or
    asynchronous: the folder made, the config checked against a run to resume, and
    `tasks.json` (train and held-out ids, loading problems) written by the main rank."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config, dist)
    pool, held, problems = _split_tasks(config)
    if dist.main:
        (out / "tasks.json").write_text(json.dumps(
            {"train": {d: [t.id for t in ts] for d, ts in sorted(pool.items())}, "held_out": [t.id for t in held],
             "problems": problems}, indent=2) + "\n", encoding="utf-8")
    return out, pool, held


def _rollouts(engine: Any, policy: Any, tokenizer: Any, tasks: list[Task], config: GRPOConfig, user: Any,
              seed: int) -> list[list[Rollout]]:
    """group_size rollouts of each task, grouped; `policy` generates (unless `engine` does)."""
    import torch

    flat = [t for t in tasks for _ in range(config.group_size)]
    if not flat:
        return []
    if hasattr(engine, "run"):  # Ray actors
        got = engine.run(policy, [t.id for t in flat], seed)
    else:
        torch.manual_seed(seed)
        got = run_episodes(policy, tokenizer, flat, user, config.rollout_config(), generate=engine)
    g = config.group_size
    return [got[i:i + g] for i in range(0, len(got), g)]


def round_seed(seed: int, step: int, round_: int, rank: int = 0) -> int:
    """The torch seed of a step's sampling round on a rank (async GRPO's actors use it too)."""
    return seed * 1_000_003 + step * 101 + round_ + rank * 7_919


@dataclass
class Collected:
    """A step's rollouts after filtering: this rank's kept groups, and what all ranks saw."""

    groups: list[list[Rollout]]  # this rank's kept groups
    rewards: list[float]  # every trajectory's reward, all ranks
    sampled: int  # groups rolled out, all ranks
    kept: int  # groups kept, all ranks
    refills: int
    turns: int = 0  # generated turns of this rank's rollouts (kept or not)
    cut_turns: int = 0  # of them, cut by max_new_tokens


def collect(step: int, pool: dict[str, list[Task]], engine: Any, policy: Any, tokenizer: Any, config: GRPOConfig,
            user: Any, dist: Distributed, log: Path | None = None) -> Collected:
    """Sampling rounds until `tasks_per_step` groups with signal are kept or `max_refills`
    extra rounds are spent. Every rank samples the same tasks and rolls out every N-th
    group; the filter sees the rewards of all groups, so every rank keeps the same ones."""
    kept: list[tuple[int, int]] = []  # (round, group index) of the kept groups, all ranks, in order
    mine: dict[tuple[int, int], list[Rollout]] = {}
    rewards, sampled, refills, turns, cut = [], 0, 0, 0, 0
    taken: set[str] = set()  # a task is rolled out once per step: refills draw from the rest
    for round_ in range(config.max_refills + 1):
        need = config.tasks_per_step - len(kept)
        if need <= 0:
            break
        tasks = sample_tasks(pool, need, config.seed, step, round_, config.domains, taken)
        if not tasks:
            break
        refills += round_ > 0
        taken.update(t.id for t in tasks)
        owned = list(range(dist.rank, len(tasks), dist.world))
        seed = round_seed(config.seed, step, round_, dist.rank)
        groups = _rollouts(engine, policy, tokenizer, [tasks[j] for j in owned], config, user, seed)
        turns += sum(r.turns for g in groups for r in g)
        cut += sum(r.cut_turns for g in groups for r in g)
        everyone = sorted(x for part in dist.gather([(j, [r.reward for r in g]) for j, g in zip(owned, groups)])
                          for x in part)  # [(group index, its rewards)] of all ranks
        sampled += len(everyone)
        rewards += [r for _, rs in everyone for r in rs]
        kept += [(round_, everyone[i][0]) for i in select_groups([rs for _, rs in everyone])]
        mine.update({(round_, j): g for j, g in zip(owned, groups)})
        if log is not None:
            logged = [r for part in dist.gather([r for g in groups for r in g]) for r in part]
            if dist.main:
                dump_rollouts(log, step + 1, logged)
    kept = kept[:config.tasks_per_step]
    return Collected([mine[k] for k in kept if k in mine], rewards, sampled, len(kept), refills, turns, cut)


def update_on(model: Any, optimizer: Any, batch: list[Rollout], advantages: list[float], config: GRPOConfig,
              pad_id: int, dist: Distributed, reference: Any = None) -> dict[str, float] | None:
    """The policy update on a batch (this rank's part of it): old log-probs of the policy
    as it rolled out (and the reference's, with kl_coef), then `policy_update`; None when
    no rank has a trajectory (nothing to learn this step)."""
    from .rollout import sequence_logprobs

    n_batch, n_tokens = (int(x) for x in dist.all_sum([len(batch), sum(r.n_loss_tokens for r in batch)]))
    if n_batch == 0:
        return None
    batch, advantages = list(batch), list(advantages)
    if dist.sharded:  # equal batches: FSDP's forward passes must match in number
        width = dist.all_max(len(batch))
        advantages += [0.0] * (width - len(batch))
        batch += [filler(pad_id) for _ in range(width - len(batch))]
    model.eval()  # and it stays so for the update: see policy_update
    seqs = [r.input_ids for r in batch]
    chunk = dist.chunk(config.ce_chunk)
    olds = sequence_logprobs(model, seqs, pad_id, config.temperature, chunk=chunk)
    refs = (sequence_logprobs(reference, seqs, pad_id, config.temperature, chunk=chunk)
            if reference is not None else None)
    for r, lp in zip(batch, olds):
        r.old_logprobs = lp
    return policy_update(model, optimizer, batch, advantages, config, pad_id, refs, n_tokens, dist)


def step_row(step: int, got: Collected, batch: list[Rollout], dist: Distributed) -> dict[str, Any]:
    """What a metrics.jsonl row says about a step's rollouts (the update's stats and the
    timings are added to it); `step` counts from 0, the row's from 1."""
    n_batch, n_tokens, n_turns, all_turns, all_cut = (int(x) for x in dist.all_sum(
        [len(batch), sum(r.n_loss_tokens for r in batch), sum(r.turns for r in batch), got.turns, got.cut_turns]))
    return {"step": step + 1, "reward_mean": sum(got.rewards) / max(1, len(got.rewards)),
            "groups_sampled": got.sampled, "groups_kept": got.kept,
            "filtered_frac": 1.0 - got.kept / max(1, got.sampled), "refills": got.refills,
            "trajectories": n_batch, "tokens": n_tokens, "turns_mean": n_turns / max(1, n_batch),
            "cut_turns_frac": all_cut / max(1, all_turns), "updated": n_batch > 0}


def train_grpo(config: GRPOConfig, stop_at: int | None = None) -> GRPOResult:
    """Train (or resume) per `config`; `stop_at` ends the call after that many steps
    without a checkpoint there, as an interruption would. Under torchrun every rank calls
    this; rank 0 writes the files."""
    if config.async_ is not None:
        from .async_grpo import train_async

        return train_async(config, stop_at)
    with Distributed.session(config.parallel, config.device) as dist:
        return _train_grpo(config, stop_at, dist)


def _train_grpo(config: GRPOConfig, stop_at: int | None, dist: Distributed) -> GRPOResult:
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    if dist.world > 1 and config.rollout_workers > 1:
        raise GRPOError("rollout_workers > 1 (Ray actors) under torchrun: the ranks already share the "
                        "rollouts; set rollout_workers: 1")
    out, pool, held = open_run(config, dist)

    latest = checkpoints(out)[-1] if checkpoints(out) else None
    start = latest[1] if latest else config.model
    model, tokenizer = load_model_and_tokenizer(start, dist.load_dtype(config.dtype), dist.device)
    # under FSDP the policy is sharded: HF rollouts generate from a whole copy (made before
    # sharding, in the compute dtype), refreshed each step
    replica = copy.deepcopy(model).to(getattr(torch, config.dtype)).eval() \
        if dist.sharded and config.engine == "hf" else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    reference = None
    if config.kl_coef > 0:
        reference, _ = load_model_and_tokenizer(config.reference or config.model, dist.load_dtype(config.dtype),
                                                dist.device)
        reference = dist.wrap(reference, config.dtype).eval()
    model = dist.wrap(model, config.dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model, optimizer = dist.attach(model, optimizer, config)  # deepspeed: its engine
    result = GRPOResult(out, 0, sum(len(v) for v in pool.values()), len(held),
                        resumed_from=latest[0] if latest else None, rank=dist.rank)
    step = 0
    if latest:
        _restore(latest[1], optimizer, model, dist)
        step = latest[0]
    metrics = out / "metrics.jsonl"
    if dist.main:
        _keep_metrics_until(metrics, step)
    user = make_user(config.user, config.max_turns, dist.device)
    engine = _engine(config, latest[1] if latest else None, dist)
    while step < config.steps:
        if stop_at is not None and step >= stop_at:
            break
        t0 = time.perf_counter()
        model.eval()
        policy = model
        if replica is not None or engine is not None and hasattr(engine, "sync"):
            weights = dist.model_state(model, everywhere=True)  # a collective under FSDP
            if replica is not None:
                replica.load_state_dict(weights)
                policy = replica
            else:
                engine.sync(weights)
        got = collect(step, pool, engine, policy, tokenizer, config, user, dist,
                      out / "rollouts.jsonl" if config.log_rollouts else None)
        batch, advantages = build_batch(got.groups)
        row = step_row(step, got, batch, dist)
        t1 = time.perf_counter()
        stats = update_on(model, optimizer, batch, advantages, config, pad_id, dist, reference)
        row.update(stats or {"loss": 0.0, "clip_frac": 0.0})
        result.updates += stats is not None
        row["rollout_s"], row["train_s"] = round(t1 - t0, 4), round(time.perf_counter() - t1, 4)
        step += 1
        if dist.main:
            with metrics.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
        if (config.save_every and step % config.save_every == 0) or step == config.steps:
            save_checkpoint(out, step, model, tokenizer, optimizer, config.keep_checkpoints, dist)
            if dist.main:
                plot_metrics(metrics, out / "curves.png")
    result.steps = step
    if step >= config.steps:
        final = out / "final"
        save_model(model, tokenizer, final, dist)
        dist.barrier()
        result.final = final
    return result


def _engine(config: GRPOConfig, checkpoint: Path | None, dist: Distributed) -> Any:
    """None for in-process HF generation, or a Ray pool / vLLM engine (lazy imports)."""
    if config.engine == "vllm":
        from .rollout import VLLMGenerator

        try:
            return VLLMGenerator(str(checkpoint or config.model), config.rollout_config(), config.vllm_memory,
                                 ranks=dist.world, seed=config.seed + dist.rank)
        except RuntimeError as exc:
            raise GRPOError(str(exc)) from exc
    if config.rollout_workers > 1:
        from .rollout import RayRollouts

        return RayRollouts(config.rollout_workers, str(checkpoint or config.model), config.data, config.user,
                           config.rollout_config(), config.domain)
    return None
