"""Asynchronous GRPO (`eigen train grpo CONFIG` with `async: {max_staleness: K, rollout_workers: N}`).

    config = load_grpo_config("grpo.yaml")     # with an `async:` block
    result = train_grpo(config)                # dispatches here; resumes from out/ as the synchronous loop

Rollout actors (trainer/rollout_actors.py) generate the steps' groups continuously, up to
K steps ahead of the trainer (trainer/staleness.py says which groups, in which order, and
why none is ever staler than K); the trainer takes each step's batch as soon as it is
complete, updates, and pushes the new weights to every actor. With K ≥ 1 generation and
training overlap; K = 0 is the synchronous run, rollout for rollout and step for step
(tests/trainer/test_async_grpo.py compares rewards, losses and weights).

The update is AReaL's decoupled PPO objective (trainer/grpo_math.py): the behaviour
log-probs are those the actor sampled with; the proximal log-probs are recomputed by the
trainer's current weights just before the update (`update_on`, as the synchronous loop
computes its old log-probs); the surrogate clips π_θ / π_prox, and each token is weighted
by π_prox / π_behav, tokens above `behav_weight_cap` (5.0) getting no loss (AReaL's
rejection sampling). Everything else — filtering, advantages, micro-batches, KL, the
checkpoint layout — is the synchronous loop's (trainer/grpo.py).

Resuming: the policy version is the step (a step without update still counts one), and a
step's tasks are a function of (seed, step) and of its own earlier rounds' rewards, so a
checkpoint's weights, optimizer state and torch RNG (trainer/sft.py writes them) are all a
run needs: the steps that were in flight are generated again, by the checkpoint's weights
(staleness 0). A run killed at any point (SIGKILL included) resumes from its last
checkpoint, as the synchronous loop does.

Metrics rows hold the synchronous loop's fields plus: version, staleness (trained
trajectories by how many versions old they were), trajectories_per_s (generated, kept or
not, over the step's wall time), trainer_idle_frac (the share of the step's wall time the
trainer waited for its batch), rollout_idle_frac (1 − the actors' generating time / (N ×
wall time)), requeued and actors_replaced (units redone after an actor died), and the
decoupled objective's behav_capped_frac and behav_weight_mean. rollout_s is the wait,
train_s the update. trainer/curves.py draws them.

One trainer process: under torchrun the run is refused (the ranks would each drive their
own actors); GPU deployments put the trainer on its GPU and the vLLM actors on the others.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .curves import plot_metrics
from .distributed import Distributed
from .grpo import GRPOConfig, GRPOError, GRPOResult, build_batch, open_run, step_row, update_on
from .rollout import dump_rollouts
from .rollout_actors import ActorSpec, AsyncRollouts, RolloutFailure, ray_init
from .sft import (
    _keep_metrics_until,
    _restore,
    checkpoints,
    load_model_and_tokenizer,
    save_checkpoint,
    save_model,
)
from .staleness import Scheduler, StepPlan


def train_async(config: GRPOConfig, stop_at: int | None = None, actor_class: Any = None,
                deadline_s: float | None = None) -> GRPOResult:
    """Train (or resume) asynchronously per `config` (its `async_` is set); `stop_at` as in
    train_grpo. `actor_class`: another HFRolloutActor subclass for the actors (tests).
    `deadline_s`: stop after the step that ends this many seconds after the actors started,
    with a checkpoint there (bench/async.py gives every mode the same wall-clock budget)."""
    with Distributed.session(config.parallel, config.device) as dist:
        if dist.world > 1:
            raise GRPOError("async GRPO runs one trainer process (its Ray actors generate); "
                            "run it without --nproc / torchrun")
        return _train(config, stop_at, dist, actor_class, deadline_s)


def _train(config: GRPOConfig, stop_at: int | None, dist: Distributed, actor_class: Any,
           deadline_s: float | None) -> GRPOResult:
    import torch

    settings = config.async_
    assert settings is not None
    if config.rollout_workers > 1:
        raise GRPOError("rollout_workers is the synchronous loop's Ray pool; with async: set "
                        "async.rollout_workers instead")
    if config.threads:
        torch.set_num_threads(config.threads)
    out, pool, held = open_run(config, dist)

    latest = checkpoints(out)[-1] if checkpoints(out) else None
    start = latest[1] if latest else config.model
    model, tokenizer = load_model_and_tokenizer(start, config.dtype, dist.device)
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    reference = None
    if config.kl_coef > 0:
        reference, _ = load_model_and_tokenizer(config.reference or config.model, config.dtype, dist.device)
        reference.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    result = GRPOResult(out, 0, sum(len(v) for v in pool.values()), len(held),
                        resumed_from=latest[0] if latest else None)
    step = 0
    if latest:
        _restore(latest[1], optimizer, model, dist)
        step = latest[0]
    metrics = out / "metrics.jsonl"
    _keep_metrics_until(metrics, step)
    end = config.steps if stop_at is None else min(config.steps, stop_at)
    if step >= end:
        return _finish(result, step, config, model, tokenizer, out)

    ray_init(settings.rollout_workers, settings.rollout_workers if config.engine == "vllm" else 0)
    scheduler = Scheduler(lambda s: StepPlan(s, pool, config, settings.rollout_workers), start=step,
                          max_staleness=settings.max_staleness, steps=end)
    spec = ActorSpec(str(start), list(config.data), config.user, config.rollout_config(), config.domain,
                     config.group_size, config.engine, config.vllm_memory, actor_class)
    rollouts = AsyncRollouts(scheduler, spec, settings.rollout_workers)
    try:
        rollouts.publish(step, None)  # the actors loaded `start`: the weights of version `step`
        rollouts.wait_ready()
        began = time.perf_counter()
        while step < end:
            plan, waited = rollouts.wait_step(step)
            got = plan.collected()
            if config.log_rollouts:
                dump_rollouts(out / "rollouts.jsonl", step + 1, plan.all_rollouts())
            batch, advantages = build_batch(got.groups)
            row = step_row(step, got, batch, dist)
            staleness = Counter(step - v for v, g in zip(plan.kept_versions(), got.groups) for _ in g)
            t1 = time.perf_counter()
            stats = update_on(model, optimizer, batch, advantages, config, pad_id, dist, reference)
            step += 1
            rollouts.publish(step, model.state_dict() if stats is not None else None)
            t2 = time.perf_counter()
            result.updates += stats is not None
            row.update(stats or {"loss": 0.0, "clip_frac": 0.0})
            row.update(_async_row(rollouts, step, staleness, waited, t2 - t1, settings.rollout_workers))
            with metrics.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
            out_of_time = deadline_s is not None and time.perf_counter() - began >= deadline_s
            if (config.save_every and step % config.save_every == 0) or step == config.steps or out_of_time:
                save_checkpoint(out, step, model, tokenizer, optimizer, config.keep_checkpoints, dist)
                plot_metrics(metrics, out / "curves.png")
            if out_of_time:
                break
    except RolloutFailure as exc:  # a unit raised, or actors kept dying: the reason in one line
        raise GRPOError(str(exc)) from exc
    finally:
        rollouts.close()
    return _finish(result, step, config, model, tokenizer, out)


def _async_row(rollouts: AsyncRollouts, version: int, staleness: Counter, waited: float, train_s: float,
               workers: int) -> dict[str, Any]:
    """The asynchronous part of a metrics row, over the wall time since the previous row."""
    c = rollouts.take_counters()
    wall = max(1e-9, time.perf_counter() - c.since)
    return {"version": version, "staleness": {str(k): n for k, n in sorted(staleness.items())},
            "trajectories_per_s": c.trajectories / wall, "generated": c.trajectories,
            "trainer_idle_frac": min(1.0, waited / wall), "rollout_idle_frac": max(0.0, 1.0 - c.busy_s / (workers * wall)),
            "requeued": c.requeued, "actors_replaced": c.replaced,
            "rollout_s": round(waited, 4), "train_s": round(train_s, 4), "wall_s": round(wall, 4)}


def _finish(result: GRPOResult, step: int, config: GRPOConfig, model: Any, tokenizer: Any, out: Path) -> GRPOResult:
    result.steps = step
    if step >= config.steps:
        final = out / "final"
        save_model(model, tokenizer, final)
        result.final = final
    return result
