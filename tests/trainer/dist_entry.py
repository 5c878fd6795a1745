"""What the distributed tests run under torchrun (or alone, as one process).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/trainer/dist_entry.py \
        KIND CONFIG.json [STOP_AT]

- `sft`, `grpo`: like `eigen train sft|grpo CONFIG`, plus `stop_at` (an interruption after
  that many steps), which the CLI does not offer.
- `grpo-mixed`: `grpo` with every group's rewards set to 0, 1, 0, 1, ... (a tiny random
  policy fails every task, so without this no group carries signal and nothing updates).
- `update`: one GRPO policy update on a fixed synthetic batch (CONFIG holds a GRPOConfig
  plus `batch_seed`), each rank taking every N-th trajectory; writes the model to `out`.
  Gradient buckets are made small, so the ddp sum crosses many of them.

Every kind ends by writing how many FSDP modules are still alive (`OUT/alive-rankR.json`).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def mixed_rewards() -> None:
    import trainer.grpo as grpo

    real = grpo.run_episodes

    def run(*args, **kwargs):
        got = real(*args, **kwargs)
        for i, r in enumerate(got):
            r.reward = float(i % 2)
        return got

    grpo.run_episodes = run


def synthetic_batch(seed: int, vocab: int, pad: int) -> tuple[list, list[float]]:
    """Eight trajectories of different lengths, loss tokens in two spans, advantages ±."""
    from trainer.rollout import Rollout

    rng = random.Random(seed)
    batch, advantages = [], []
    for i in range(8):
        n = rng.randrange(12, 40)
        ids = [rng.randrange(vocab) for _ in range(n)]
        mask = [1 if (n // 4 <= t < n // 2) or t >= 3 * n // 4 else 0 for t in range(n)]
        batch.append(Rollout(f"t{i}", "toy", ids, mask, [], float(i % 2), [], 1))
        advantages.append(rng.uniform(-1.5, 1.5))
    return batch, advantages


def update(data: dict) -> None:
    import torch

    from trainer.distributed import Distributed
    from trainer.grpo import GRPOConfig, update_on
    from trainer.sft import load_model_and_tokenizer, save_model

    import trainer.distributed

    trainer.distributed.BUCKET = 1000  # ddp: many all-reduce buckets, some of one parameter bigger than this
    batch_seed = data.pop("batch_seed")
    config = GRPOConfig(**data)

    def run(dist: Distributed) -> None:  # its locals (the wrapped model) are gone when the session closes
        model, tokenizer = load_model_and_tokenizer(config.model)
        model = dist.wrap(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
        model, optimizer = dist.attach(model, optimizer, config)  # deepspeed: its engine
        batch, advantages = synthetic_batch(batch_seed, len(tokenizer), tokenizer.pad_token_id)
        stats = update_on(model, optimizer, batch[dist.rank::dist.world], advantages[dist.rank::dist.world],
                          config, tokenizer.pad_token_id, dist)
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        save_model(model, tokenizer, out / "model", dist)
        if dist.main:
            (out / "stats.json").write_text(json.dumps(stats), encoding="utf-8")

    with Distributed.session(config.parallel, config.device) as dist:
        run(dist)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    kind, config_path = sys.argv[1], sys.argv[2]
    stop_at = int(sys.argv[3]) if len(sys.argv) > 3 else None
    data = json.loads(Path(config_path).read_text(encoding="utf-8"))
    if kind == "sft":
        from trainer.sft import SFTConfig, train_sft

        train_sft(SFTConfig(**data), stop_at=stop_at)
    elif kind in ("grpo", "grpo-mixed"):
        from trainer.grpo import GRPOConfig, train_grpo

        if kind == "grpo-mixed":
            mixed_rewards()
        train_grpo(GRPOConfig(**data), stop_at=stop_at)
    elif kind == "update":
        update(data)
    else:
        raise SystemExit(f"unknown kind {kind}")
    left_alive(Path(data["out"]))


def left_alive(out: Path) -> None:
    """Write how many FSDP modules outlived the process group (`alive-rankR.json`): any
    keeps the gloo group and its threads until the interpreter's shutdown, where they abort
    the process now and then (trainer/distributed.py, Distributed.close)."""
    import gc
    import os

    from torch.distributed.fsdp import FSDPModule

    alive = sum(isinstance(o, FSDPModule) for o in gc.get_objects())
    out.mkdir(parents=True, exist_ok=True)
    (out / f"alive-rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(alive), encoding="utf-8")


if __name__ == "__main__":
    main()
