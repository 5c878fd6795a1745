"""`parallel: deepspeed` (ZeRO stage 2 or 3) behind trainer/distributed.py's interface; the
`deepspeed` extra, imported only here and only when asked for.

    deepspeed_config: configs/deepspeed/zero3.json   # in an SFT or GRPO config (None: ZeRO-3 defaults)

The file is a DeepSpeed config for what DeepSpeed decides (`zero_optimization`: stage,
offload, bucket sizes, ...). What one step means stays the trainer's: micro-batches,
accumulation, gradient clipping, precision and the optimizer come from the training
config, so the file must leave `train_batch_size`, `train_micro_batch_size_per_gpu`,
`gradient_accumulation_steps`, `gradient_clipping`, `bf16`, `fp16`, `optimizer` and
`scheduler` out (or "auto", as in HF's integration). The engine wraps the trainer's own
torch AdamW; the trainer marks the last micro-batch of a step as DeepSpeed's accumulation
boundary and calls `engine.backward` unscaled, since its losses are already divided by
the step's tokens; DeepSpeed averages gradients over ranks, so the loss is scaled by the
world size as under FSDP (`Distributed.loss_scale`): N ranks take one process's steps.

Checkpoints keep the trainer's layout — whole float32 weights (gathered from ZeRO's
master copies) as a model folder any run loads — and put DeepSpeed's own sharded engine
state (optimizer partitions) under `deepspeed/`: a DeepSpeed run resumes only as a
DeepSpeed run with the same number of ranks (checked).

On CPU (the tests: gloo), DeepSpeed would JIT-compile its shared-memory all-reduce (minutes
of C++ on first use) for inference collectives that training never calls: the op is
marked unavailable before the process group is wrapped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINER_KEYS = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                "gradient_clipping", "bf16", "fp16", "optimizer", "scheduler")
DEFAULT = {"zero_optimization": {"stage": 3}}
ENGINE_DIR, TAG = "deepspeed", "state"


def _error(message: str) -> Exception:
    from .sft import SFTError  # a config or setup problem: the CLI prints it and exits 2

    return SFTError(message)


def _deepspeed() -> Any:
    try:
        import deepspeed
    except ImportError as exc:
        raise _error("parallel: deepspeed needs the deepspeed package (pip install -e '.[deepspeed]')") from exc
    return deepspeed


def init_process_group(backend: str) -> None:
    """Join the torchrun process group through DeepSpeed's communication layer."""
    deepspeed = _deepspeed()
    from deepspeed.accelerator import get_accelerator

    if get_accelerator().device_name() == "cpu":
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False  # see the module docstring
    deepspeed.init_distributed(dist_backend=backend)


def engine_config(path: str | None, dtype: str, grad_clip: float | None) -> dict:
    """The DeepSpeed config: the file's (or ZeRO-3's defaults), plus what the trainer decides."""
    if path is None:
        settings = json.loads(json.dumps(DEFAULT))
    else:
        try:
            settings = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _error(f"deepspeed_config {path}: cannot read it as JSON: {exc}") from exc
        if not isinstance(settings, dict):
            raise _error(f"deepspeed_config {path}: expected a JSON object")
    owned = [k for k in TRAINER_KEYS if k in settings and settings[k] != "auto"]
    if owned:
        raise _error(f"deepspeed_config {path}: {', '.join(owned)} come from the training config "
                     "(batch_size, grad_accum, grad_clip, dtype, lr); leave them out or set them to \"auto\"")
    stage = (settings.get("zero_optimization") or {}).get("stage", 0)
    if stage not in (2, 3):
        raise _error(f"deepspeed_config {path}: zero_optimization.stage must be 2 or 3 (got {stage})")
    for key in TRAINER_KEYS:
        settings.pop(key, None)
    return settings | {
        "train_micro_batch_size_per_gpu": 1,  # nominal: the trainer forms its micro-batches itself
        "gradient_accumulation_steps": 1,  # the boundary is set per micro-batch (`backward`)
        "gradient_clipping": grad_clip or 0.0,
        "bf16": {"enabled": dtype == "bfloat16"},  # float32 master weights in ZeRO's optimizer
        "zero_allow_untested_optimizer": True,  # the trainer's torch AdamW
        "steps_per_print": 1 << 30,
    }


def initialize(model: Any, optimizer: Any, settings: dict) -> tuple[Any, Any]:
    """(the DeepSpeed engine, its ZeRO optimizer) around the model and the trainer's optimizer."""
    engine, zero_optimizer, _, _ = _deepspeed().initialize(model=model, optimizer=optimizer, config=settings)
    return engine, zero_optimizer


def backward(engine: Any, loss: Any, last: bool) -> None:
    engine.set_gradient_accumulation_boundary(last)
    engine.backward(loss, scale_wrt_gas=False)


def step(engine: Any) -> float:
    """The optimizer step (DeepSpeed clips first); the global gradient norm before clipping."""
    engine.step()
    norm = engine.get_global_grad_norm()
    return float(norm) if norm is not None else 0.0


def full_state(engine: Any, everywhere: bool, main: bool) -> dict | None:
    """The whole weights on CPU: ZeRO's float32 master copies (a collective: every rank
    calls it); with `everywhere` every rank gets the module's weights in the compute
    dtype (for rollouts), else rank 0 gets float32 and the others None."""
    from deepspeed.utils import safe_get_full_fp32_param

    module = engine.module
    if everywhere:
        import deepspeed

        params = list(module.parameters())
        with deepspeed.zero.GatheredParameters(params, enabled=hasattr(params[0], "ds_id")):
            return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    out = {}
    for name, value in module.state_dict(keep_vars=True).items():
        full = safe_get_full_fp32_param(value) if hasattr(value, "ds_id") or hasattr(value, "_hp_mapping") else None
        out[name] = (full if full is not None else value).detach().float().cpu().clone() if main else None
    return out if main else None


def save(engine: Any, folder: Path) -> None:
    """DeepSpeed's sharded engine state into folder/deepspeed (every rank writes its part)."""
    engine.save_checkpoint(str(folder / ENGINE_DIR), tag=TAG)


def load(engine: Any, folder: Path) -> None:
    where = folder / ENGINE_DIR
    if not where.is_dir():
        raise _error(f"{folder} was not written by a DeepSpeed run: resume it with the parallel setting "
                     "that wrote it")
    engine.load_checkpoint(str(where), tag=TAG, load_optimizer_states=True, load_lr_scheduler_states=False)
