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

- `deepspeed`: DeepSpeed's ZeRO (stage 2 or 3, trainer/deepspeed_strategy.py; the
  `deepspeed` extra): the engine wraps the model and the trainer's optimizer (`attach`),
  micro-batches go through `backward` and the step through `step`; the same step as
  above (DeepSpeed averages, so the loss is scaled by N as under FSDP).

Backends: NCCL when the device is CUDA, gloo on CPU (how the tests run two ranks on a laptop,
DeepSpeed's included); `configs/README.md` says how to launch.
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

Parallel = Literal["ddp", "fsdp", "deepspeed"]
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
            backend = "nccl" if device.startswith("cuda") else "gloo"
            if mode == "deepspeed":  # DeepSpeed wraps the group in its own communication layer
                from .deepspeed_strategy import init_process_group

                init_process_group(backend)
            else:
                dist.init_process_group(backend)
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
        """fsdp or deepspeed on several ranks: the policy is not whole on any rank (ZeRO-2
        keeps the weights whole but is treated alike: whole logits, a gathered copy for
        rollouts, the same number of forward passes on every rank)."""
        return self.world > 1 and self.mode in ("fsdp", "deepspeed")

    @property
    def deepspeed(self) -> bool:
        return self.world > 1 and self.mode == "deepspeed"

    @property
    def loss_scale(self) -> float:
        """FSDP and DeepSpeed average gradients over ranks; the loss is scaled so they add up instead."""
        return float(self.world) if self.sharded else 1.0

    def close(self, wait: bool = True) -> None:
        """Leave the process group; `wait` (the normal end) first waits for every rank, so
        that none tears the group down while another still talks to it. After an error,
        ranks do not wait: the others may never get there.

        First the training's garbage is collected. An FSDP-wrapped model lives in reference
        cycles (modules, hooks, their state), so it outlives the function that trained it and
        keeps the gloo process group (and the work its threads hold) alive past
        `destroy_process_group`; a later GC pass or the interpreter's own shutdown then frees
        them, and a gloo thread that drops its last tensor after the interpreter began to
        finalise cannot take the GIL: the process aborts with "terminate called without an
        active exception" (now and then, as timing decides; tests/trainer/test_distributed.py
        checks that nothing FSDP is left when the group goes)."""
        if self.world > 1:
            import gc

            import torch.distributed as dist

            if dist.is_initialized():
                gc.collect()
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
        All ranks start from the same weights (the same file). deepspeed: the model as it
        is; `attach` makes the engine, which needs the optimizer."""
        if not self.sharded or self.deepspeed:
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

    def attach(self, model: Any, optimizer: Any, config: Any) -> tuple[Any, Any]:
        """deepspeed: (the engine, its ZeRO optimizer) around the wrapped model and the
        trainer's optimizer, per `config` (dtype, grad_clip, deepspeed_config; trainer/
        deepspeed_strategy.py); otherwise (model, optimizer) as they are."""
        if not self.deepspeed:
            return model, optimizer
        from . import deepspeed_strategy as ds

        settings = ds.engine_config(getattr(config, "deepspeed_config", None), config.dtype, config.grad_clip)
        return ds.initialize(model, optimizer, settings)

    def backward(self, model: Any, loss: Any, last: bool = True) -> None:
        """Backward of a micro-batch's loss; `last`: the step's last micro-batch on this rank
        (DeepSpeed's accumulation boundary, where it reduces gradients)."""
        if self.deepspeed:
            from .deepspeed_strategy import backward

            backward(model, loss, last)
        else:
            loss.backward()

    def step(self, model: Any, optimizer: Any, grad_clip: float | None) -> float:
        """The end of a step: gradients summed over the ranks (`sync_grads`), clipped, the
        optimizer step; the global gradient norm before clipping."""
        if self.deepspeed:
            from .deepspeed_strategy import step

            return step(model)
        self.sync_grads(model)
        grad_norm = self.clip_grad_norm(model, grad_clip)
        optimizer.step()
        return grad_norm

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

    def idle_pass(self, model: Any, pad_id: int, grad: bool, last: bool = True) -> None:
        """A forward (and backward) pass that changes nothing, for a rank with no data in a
        micro-batch where the others have some: FSDP's (and ZeRO's) collectives must match."""
        if not self.sharded:
            return
        import torch

        ids = torch.tensor([[pad_id, pad_id]], device=self.device)  # [1, 2]
        with torch.set_grad_enabled(grad):
            logits = model(input_ids=ids).logits  # [1, 2, V]
            if grad:
                self.backward(model, logits.sum() * 0.0, last)

    def clip_grad_norm(self, model: Any, limit: float | None) -> float:
        """The global gradient norm before clipping (a DTensor under FSDP)."""
        import torch

        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit if limit is not None else float("inf"))
        full = getattr(norm, "full_tensor", None)
        return float(full() if callable(full) else norm)

    # ------------------------------------------------------------ state

    def model_state(self, model: Any, everywhere: bool = False) -> dict | None:
        """The full weights (on CPU) on rank 0, or on every rank with `everywhere`; None
        elsewhere. A collective under FSDP and DeepSpeed: every rank must call it."""
        if not self.sharded:
            return model.state_dict() if (self.main or everywhere) else None
        if self.deepspeed:
            from .deepspeed_strategy import full_state

            return full_state(model, everywhere, self.main)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        if everywhere:  # every rank gathers the whole tensors (no CPU offload: that keeps them on rank 0 only)
            state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
            return {k: v.detach().cpu() for k, v in state.items()}
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if self.main else None

    def optimizer_state(self, model: Any, optimizer: Any) -> dict | None:
        """The full optimizer state on rank 0 (None elsewhere); a collective under FSDP.
        None under DeepSpeed, whose sharded state `save_engine` writes."""
        if self.deepspeed:
            return None
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

    def save_engine(self, model: Any, folder: Any) -> None:
        """deepspeed: its sharded engine state into folder/deepspeed (every rank writes)."""
        if self.deepspeed:
            from .deepspeed_strategy import save

            save(model, folder)

    def load_engine(self, model: Any, folder: Any) -> bool:
        """deepspeed: restore the engine state `save_engine` wrote (True); False otherwise."""
        if not self.deepspeed:
            return False
        from .deepspeed_strategy import load

        load(model, folder)
        return True

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

