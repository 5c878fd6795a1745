"""Data-parallel training over `torchrun` processes: replicated (DDP) or sharded (FSDP2).

    eigen train sft CONFIG --nproc 8        # = torchrun --standalone --nproc-per-node 8 ... (launch)
    with Distributed.session(config.parallel, config.device) as dist:   # world 1 outside torchrun
        model = dist.wrap(model)             # fsdp: fully_shard each decoder layer, then the root
        ... every rank runs the same number of forward passes (`rank_batches`, `idle_pass`) ...
        dist.sync_grads(model)               # ddp: all-reduce (sum) of the gradients, in buckets
        state = dist.model_state(model)      # full weights on rank 0 (a collective: all ranks call it)

What one step means does not depend on how many processes run it: the loss of a step is
summed over all its tokens, on whichever rank they are, and divided by the step's token
count, so the summed gradient equals that of one process with `grad_accum × world`
micro-batches (tests/trainer/test_distributed.py compares the weights). Hence DDP here is
a summing all-reduce after the micro-batches rather than torch's `DistributedDataParallel`
(which averages, and needs equal micro-batch counts), and FSDP's averaging
reduce-scatter is undone by scaling the loss by the world size (`loss_scale`).

- `ddp`: every rank holds the whole model and optimizer; gradients are summed once per step.
- `fsdp`: parameters, gradients and optimizer state are sharded (torch FSDP2,
  `fully_shard`); a forward pass all-gathers a layer's weights, so every rank must run the
  same number of forward passes: `rank_batches` gives every rank the same count of
  micro-batches and `idle_pass` runs a zero-weight one where a rank has no data. Chunked
  cross entropy (trainer/chunked_ce.py) calls the decoder and the head separately, outside
  the root's gather, so under FSDP the logits are computed whole.

Backends: NCCL when the device is CUDA, gloo on CPU (how the tests run two ranks on a laptop).
DeepSpeed is not used: FSDP2 shards as ZeRO-3 does, ships with torch, and runs (so is
tested) on CPU; `configs/README.md` says how to launch.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Parallel = Literal["ddp", "fsdp"]
T = TypeVar("T")
BUCKET = 1 << 25  # gradient elements per all-reduce (128 MB in float32)


def launched_world() -> int:
    """The WORLD_SIZE torchrun set for this process (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Re-run this `eigen` command under torchrun with `nproc` processes on this machine;
    the exit status of the launch. Inside torchrun (WORLD_SIZE set) this is never called."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "runtime.cli.main", *argv]
    return subprocess.call(cmd, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))


@dataclass
class Distributed:
    """This process's place in the job; every method is a no-op (or the identity) when
    world == 1, so the training loops have one code path."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    mode: Parallel = "ddp"
    device: str = "cpu"

    @classmethod
    def start(cls, mode: Parallel, device: str) -> Distributed:
        """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*),
        or stay single when there is none. A CUDA device becomes this rank's GPU."""
        world = launched_world()
        if world == 1:
            return cls(device=device, mode=mode)
        import torch
        import torch.distributed as dist

        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(rank, world, local, mode, device)

    @classmethod
    @contextlib.contextmanager
    def session(cls, mode: Parallel, device: str) -> Iterator[Distributed]:
        """`start`, then `close` on the way out: waiting for every rank after a normal end,
        not after an error (see `close`)."""
        dist = cls.start(mode, device)
        try:
            yield dist
        except BaseException:
            dist.close(wait=False)
            raise
        dist.close()

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world > 1 and self.mode == "fsdp"

    @property
    def loss_scale(self) -> float:
        """FSDP averages gradients over ranks; the loss is scaled so they add up instead."""
        return float(self.world) if self.sharded else 1.0

    def close(self, wait: bool = True) -> None:
        """Leave the process group; `wait` (the normal end) first waits for every rank, so
        that none tears the group down while another still talks to it (gloo aborts then).
        After an error, ranks do not wait: the others may never get there."""
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                if wait:
                    dist.barrier()
                dist.destroy_process_group()

    # ------------------------------------------------------------ the model

    def load_dtype(self, dtype: str) -> str:
        """The dtype to load weights in: float32 under FSDP, which keeps float32 master
        weights and computes in `dtype` (`wrap`); `dtype` itself otherwise."""
        return "float32" if self.sharded else dtype

    def wrap(self, model: Any, dtype: str = "float32") -> Any:
        """fsdp: shard each decoder layer (the classes HF lists in `_no_split_modules`), then
        the root (embeddings, final norm, head), computing in `dtype` with gradients reduced
        in float32; ddp: the model as it is (its gradients are summed by `sync_grads`).
        All ranks start from the same weights (the same file)."""
        if not self.sharded:
            return model
        import torch
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=getattr(torch, dtype), reduce_dtype=torch.float32)
        names = set(getattr(model, "_no_split_modules", None) or [])
        for module in list(model.modules()):
            if type(module).__name__ in names:
                fully_shard(module, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        return model

    def sync_grads(self, model: Any) -> None:
        """ddp: sum every gradient over the ranks, in float32 buckets of BUCKET elements (a
        rank that had no data contributes zeros). fsdp did this in backward already."""
        if self.world == 1 or self.sharded:
            return
        import torch
        import torch.distributed as dist

        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        start = 0
        while start < len(params):
            end, size = start, 0
            while end < len(params) and (end == start or size + params[end].numel() <= BUCKET):
                size += params[end].numel()
                end += 1
            bucket = params[start:end]
            flat = torch.cat([p.grad.reshape(-1).float() for p in bucket])  # [size]
            dist.all_reduce(flat)
            offset = 0
            for p in bucket:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
                offset += p.numel()
            start = end

    def chunk(self, ce_chunk: int) -> int:
        """The chunk size chunked_ce may use: 0 (whole logits) when sharded (see the docstring)."""
        return 0 if self.sharded else ce_chunk

    def idle_pass(self, model: Any, pad_id: int, grad: bool) -> None:
        """A forward (and backward) pass that changes nothing, for a rank with no data in a
        micro-batch where the others have some: FSDP's collectives must match."""
        if not self.sharded:
            return
        import torch

        ids = torch.tensor([[pad_id, pad_id]], device=self.device)  # [1, 2]
        with torch.set_grad_enabled(grad):
            logits = model(input_ids=ids).logits  # [1, 2, V]
            if grad:
                (logits.sum() * 0.0).backward()

    def clip_grad_norm(self, model: Any, limit: float | None) -> float:
        """The global gradient norm before clipping (a DTensor under FSDP)."""
        import torch

        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit if limit is not None else float("inf"))
        full = getattr(norm, "full_tensor", None)
        return float(full() if callable(full) else norm)

    # ------------------------------------------------------------ state

    def model_state(self, model: Any, everywhere: bool = False) -> dict | None:
        """The full weights (on CPU) on rank 0, or on every rank with `everywhere`; None
        elsewhere. A collective under FSDP: every rank must call it."""
        if not self.sharded:
            return model.state_dict() if (self.main or everywhere) else None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        if everywhere:  # every rank gathers the whole tensors (no CPU offload: that keeps them on rank 0 only)
            state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
            return {k: v.detach().cpu() for k, v in state.items()}
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if self.main else None

    def optimizer_state(self, model: Any, optimizer: Any) -> dict | None:
        """The full optimizer state on rank 0 (None elsewhere); a collective under FSDP."""
        if not self.sharded:
            return optimizer.state_dict() if self.main else None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        state = get_optimizer_state_dict(model, optimizer,
                                         options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if self.main else None

    def load_optimizer_state(self, model: Any, optimizer: Any, state: dict) -> None:
        """Restore a full optimizer state (as `optimizer_state` wrote it) on every rank."""
        if not self.sharded:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))

    # ------------------------------------------------------------ data and numbers

    def rank_batches(self, items: Sequence[T], size: int) -> list[list[T]]:
        """This rank's micro-batches of `items` (every world-th item, from the rank's own):
        the same number on every rank, some possibly empty (see `idle_pass`)."""
        share = list(items[self.rank::self.world])
        count = math.ceil(math.ceil(len(items) / self.world) / size)
        return [share[i * size:(i + 1) * size] for i in range(count)]

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the ranks."""
        if self.world == 1:
            return [float(v) for v in values]
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self.device if self.device.startswith("cuda") else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def all_max(self, value: int) -> int:
        if self.world == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], device=self.device if self.device.startswith("cuda") else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def gather(self, obj: T) -> list[T]:
        """Every rank's `obj`, in rank order, on every rank (picklable objects)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

