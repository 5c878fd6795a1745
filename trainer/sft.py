"""Supervised fine-tuning on a run's accepted dialogs, in plain torch.

    config = load_config("sft.yaml")        # SFTConfig, from YAML or JSON
    result = train_sft(config)              # resumes from the latest checkpoint in config.out

One optimizer step sees `batch_size × grad_accum` conversations (the paper: 128), split
into `grad_accum` micro-batches of `batch_size`. The loss is token-level cross entropy on
the trained role's tokens only (`loss_mask`, trainer/tokenize.py), summed over the step
and divided by the number of those tokens in the whole step, so the split into
micro-batches does not change the gradient. Data order is a pure function of (seed,
epoch), so a run resumed from a checkpoint (model, optimizer, step, torch rng) takes the
same steps as one never interrupted; `metrics.jsonl` is cut back to the checkpoint's step.
Sequences longer than `ce_chunk` get their logits `ce_chunk` positions at a time
(trainer/chunked_ce.py): the same loss and gradient without the [B, T, V] tensor.

`out/` holds `config.json` (a resumed run must have the same, except `save_every` and
`keep_checkpoints`), `data.json` (sizes, skipped conversations and why),
`metrics.jsonl`, `checkpoints/step-NNNNNNNN/` (a loadable model folder plus
`optimizer.pt`, `rng.pt` and `state.json`, written last), and `final/` at the end.

Under torchrun (`eigen train sft CONFIG --nproc N`), `batch_size` is per process and a step
sees `batch_size × grad_accum × N` conversations; `parallel` picks replicated (ddp) or
sharded (fsdp) training (trainer/distributed.py). Rank 0 writes every file; a step is the
same step whatever N, so a run may not resume under another N (checked).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .data import Conversation, RunDirError, first_call_view, first_of_each_id, load_conversations, split
from .distributed import Distributed, Parallel
from .tokenize import Tokenized, TokenizeError, collate, tokenize_conversation

# Settings that may change between an interrupted run and its resumption.
# ce_chunk only changes how the loss is computed (memory), not its value; so does `parallel`
# (checkpoints hold whole weights).
RESUMABLE_CHANGES = ("save_every", "keep_checkpoints", "ce_chunk", "parallel")


class SFTError(ValueError):
    """A training run that cannot start or go on, with the reason in one line."""


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str  # a model folder (from_pretrained) or a hub name
    data: str | list[str]  # a run directory written by `eigen run`, or several (e.g. one per domain)
    out: str
    role: Literal["agent", "user"] = "agent"
    batch_size: int = Field(1, ge=1)  # conversations per micro-batch (one forward pass)
    grad_accum: int = Field(1, ge=1)  # micro-batches per optimizer step
    epochs: int = Field(1, ge=1)
    lr: float = Field(5e-6, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: float | None = Field(1.0, gt=0)
    max_length: int = Field(32768, ge=2)
    ce_chunk: int = Field(2048, ge=0)  # longer sequences: logits this many positions at a time; 0: never
    held_out: float = Field(0.0, ge=0, le=1)  # fraction of instances (by id hash) for eval loss
    # "first_call": each conversation up to its first tool call, without system prompt and
    # tool schemas (trainer/data.py first_call_view): a short, copy-dense first stage of a
    # curriculum, on which a tiny model learns to copy ids it never saw (bench/learning.py);
    # "first_call_in_context": the same with the system prompt and tool schemas, so that the
    # copy is made at the distance it has in a real episode; "full_and_first_calls": every
    # conversation and its in-context first call, so that full SFT rehearses the copying.
    # The "reply" views go on to the first words after the first tool result: the second
    # copy, values from a tool's JSON into the answer (first_call_view(through="reply"))
    view: Literal["full", "first_call", "first_call_in_context", "full_and_first_calls",
                  "first_reply", "first_reply_in_context", "full_and_first_replies"] = "full"
    seed: int = 0
    save_every: int = Field(0, ge=0)  # steps between checkpoints; 0: at the end of each epoch
    keep_checkpoints: int = Field(2, ge=1)
    dtype: Literal["float32", "bfloat16"] = "float32"  # fsdp: the compute dtype (weights stay float32)
    device: str = "cpu"  # "cuda": under torchrun, each rank its own GPU
    parallel: Parallel = "ddp"  # under torchrun: replicated or sharded (trainer/distributed.py)
    deepspeed_config: str | None = None  # parallel: deepspeed: a DeepSpeed JSON (ZeRO stage...); None: ZeRO-3


def read_settings(path: Path | str, error: type[SFTError] = SFTError) -> dict:
    """The mapping of a YAML or JSON config file; `error` (SFTError or a subclass) says what
    is wrong."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise error(f"{path}: cannot read the config: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of settings")
    return data


def load_config(path: Path | str) -> SFTConfig:
    """An SFTConfig from a YAML or JSON file; SFTError says what is wrong."""
    data = read_settings(path)
    try:
        return SFTConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SFTError(f"{path}: {where}: {first['msg']} ({exc.error_count()} error(s))") from exc


@dataclass
class SFTResult:
    out: Path
    steps: int  # optimizer steps done in total
    train_size: int
    held_out_size: int
    skipped: list[str] = field(default_factory=list)
    resumed_from: int | None = None  # the checkpoint step this call started from
    last_loss: float | None = None
    final: Path | None = None  # the saved model, when training completed
    rank: int = 0  # this process's rank under torchrun (rank 0 reports)


def load_model_and_tokenizer(path: str | Path, dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """Any transformers causal LM and its tokenizer, by folder or hub name."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise SFTError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from exc
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is None:
        raise SFTError(f"the tokenizer of {path} has neither a pad nor an eos token to pad with")
    return model.to(device), tokenizer


def tokenize_all(tokenizer: Any, conversations: list[Conversation], max_length: int) -> tuple[list[Tokenized], list[str]]:
    """(the conversations as training sequences, 'id: why' for the ones left out)."""
    out, skipped = [], []
    for c in conversations:
        try:
            t = tokenize_conversation(tokenizer, c.messages, c.tools, max_length=max_length)
        except TokenizeError as exc:
            skipped.append(f"{c.id}: {exc}")
            continue
        if sum(t.loss_mask[1:]) == 0:
            skipped.append(f"{c.id}: no trained token within max_length {max_length} ({len(t)} tokens kept)")
            continue
        out.append(t)
    return out, skipped


def masked_ce_sum(model: Any, batch: dict[str, Any], chunk: int = 0) -> tuple[Any, int]:
    """(sum of cross entropy over the batch's loss tokens, their number); `chunk` > 0 computes
    the logits that many positions at a time above that length (trainer/chunked_ce.py)."""
    from .chunked_ce import masked_ce_sum as chunked

    return chunked(model, batch, chunk)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the n training sequences in an epoch: a function of (seed, epoch) only."""
    import torch

    digest = hashlib.sha256(f"sft:{seed}:{epoch}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)
    return torch.randperm(n, generator=generator).tolist()


def lr_at(config: SFTConfig, step: int, total: int) -> float:
    """Linear warmup, then constant or cosine decay to 0 at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "cosine":
        done = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    return config.lr


# ---------------------------------------------------------------- checkpoints


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """The complete checkpoints (state.json written) in out/checkpoints, oldest first."""
    found = []
    for d in (out / "checkpoints").glob("step-*"):
        if (d / "state.json").is_file() and d.name[5:].isdigit():
            found.append((int(d.name[5:]), d))
    return sorted(found)


def save_model(model: Any, tokenizer: Any, folder: Path, dist: Distributed | None = None) -> None:
    """A loadable model folder of the full weights (gathered to rank 0 under FSDP; a
    collective there, so every rank calls this and rank 0 writes)."""
    dist = dist or Distributed()
    state = dist.model_state(model)
    if not dist.main:
        return
    if dist.deepspeed:
        model = model.module  # the engine's model: its class names the architecture
    model.save_pretrained(folder, state_dict=state)
    tokenizer.save_pretrained(folder)
    if dist.sharded:  # FSDP2 swaps the class to FSDP<Name>: the folder names the real architecture
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        from torch.distributed.fsdp import FSDPModule

        real = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))
        config["architectures"] = [real.__name__]
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_checkpoint(out: Path, step: int, model: Any, tokenizer: Any, optimizer: Any, keep: int,
                    dist: Distributed | None = None) -> Path:
    """Write the checkpoint into a temporary folder, then rename it: a crash mid-write
    leaves no checkpoint that looks complete. Every rank calls it; rank 0 writes."""
    import torch

    dist = dist or Distributed()
    final = out / "checkpoints" / f"step-{step:08d}"
    tmp = final.with_name(final.name + ".tmp")
    if dist.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    save_model(model, tokenizer, tmp, dist)
    optimizer_state = dist.optimizer_state(model, optimizer)
    dist.save_engine(model, tmp)  # deepspeed: its sharded optimizer state, every rank its part
    if not dist.main:
        dist.barrier()  # rank 0 is writing
        return final
    if optimizer_state is not None:
        torch.save(optimizer_state, tmp / "optimizer.pt")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for _, old in checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def _restore(ckpt: Path, optimizer: Any, model: Any = None, dist: Distributed | None = None) -> None:
    """Optimizer state and RNG from a checkpoint (every rank reads the same files)."""
    import torch

    dist = dist or Distributed()
    if not dist.load_engine(model, ckpt):
        if not (ckpt / "optimizer.pt").is_file():
            raise SFTError(f"{ckpt} holds DeepSpeed's sharded state, not a full optimizer state: resume it "
                           f"with parallel: deepspeed and the same number of processes")
        state = torch.load(ckpt / "optimizer.pt", weights_only=False, map_location="cpu")
        dist.load_optimizer_state(model, optimizer, state)
    rng = torch.load(ckpt / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _check_config(out: Path, config: SFTConfig, dist: Distributed | None = None) -> None:
    """Write out/config.json, or check that a resumed run has the same settings (and the
    same number of processes). Every rank checks; rank 0 writes once all have read."""
    dist = dist or Distributed()
    path = out / "config.json"
    current = config.model_dump(mode="json") | {"world_size": dist.world}
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        before.setdefault("world_size", 1)  # written before runs could be distributed
        changed = sorted(k for k in set(before) | set(current)
                         if k not in RESUMABLE_CHANGES and before.get(k) != current.get(k))
        if changed:
            raise SFTError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                           f"use another out folder or the same config")
    dist.barrier()
    if dist.main:
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    dist.barrier()


def _keep_metrics_until(path: Path, step: int) -> None:
    """Drop the metrics of steps after the checkpoint: they are about to be redone."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line cut short by the interruption
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


# ---------------------------------------------------------------- training


def evaluate(model: Any, data: list[Tokenized], batch_size: int, pad_id: int, device: str,
             chunk: int = 0, dist: Distributed | None = None) -> float:
    """Mean cross entropy over all loss tokens of `data` (`chunk` as in masked_ce_sum);
    under torchrun each rank scores its share and the sums are added."""
    import torch

    dist = dist or Distributed()
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for part in dist.rank_batches(data, batch_size):
            if not part:
                dist.idle_pass(model, pad_id, grad=False)
                continue
            batch = {k: v.to(device) for k, v in collate(part, pad_id).items()}
            loss_sum, n = masked_ce_sum(model, batch, dist.chunk(chunk))
            total, tokens = total + float(loss_sum), tokens + n
    model.train()
    total, tokens = dist.all_sum([total, tokens])
    return total / max(1, tokens)


def sft_step(model: Any, optimizer: Any, picked: list[Tokenized], config: SFTConfig, lr: float,
             pad_id: int, dist: Distributed | None = None) -> tuple[float, int, float]:
    """One optimizer step on `picked` (the whole step's conversations; this rank trains on
    its share, in micro-batches of config.batch_size): (mean loss over the step's loss
    tokens, their number, gradient norm before clipping)."""
    dist = dist or Distributed()
    n_tokens = sum(sum(t.loss_mask[1:]) for t in picked)  # loss tokens of the whole step, every rank
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    step_loss = 0.0
    parts = dist.rank_batches(picked, config.batch_size)
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if not part:
            dist.idle_pass(model, pad_id, grad=True, last=last)
            continue
        batch = {key: v.to(dist.device) for key, v in collate(part, pad_id).items()}  # [b, T]
        loss_sum, _ = masked_ce_sum(model, batch, dist.chunk(config.ce_chunk))  # []
        # the micro-batches' (and ranks') gradients add up to the step's mean
        dist.backward(model, loss_sum * (dist.loss_scale / n_tokens), last)
        step_loss += loss_sum.item() / n_tokens
    grad_norm = dist.step(model, optimizer, config.grad_clip)
    (step_loss,) = dist.all_sum([step_loss])
    return step_loss, n_tokens, grad_norm


def train_sft(config: SFTConfig, stop_at: int | None = None) -> SFTResult:
    """Train (or resume) per `config`. `stop_at` ends the call after that many steps in
    total without a checkpoint there, as an interruption would (for tests and demos).
    Under torchrun every rank calls this; rank 0 writes the files."""
    with Distributed.session(config.parallel, config.device) as dist:
        return _train_sft(config, stop_at, dist)


# SFTConfig.view (other than "full") -> first_call_view's (through, in_context), and whether
# every whole conversation is trained beside its view
_VIEWS: dict[str, tuple[Literal["call", "reply"], bool, bool]] = {
    "first_call": ("call", False, False), "first_call_in_context": ("call", True, False),
    "full_and_first_calls": ("call", True, True), "first_reply": ("reply", False, False),
    "first_reply_in_context": ("reply", True, False), "full_and_first_replies": ("reply", True, True)}


def _conversations(config: SFTConfig) -> tuple[list[Conversation], list[str]]:
    """The conversations of every run in `config.data`, in order (one mixed pool: the epoch
    order shuffles them together); an id seen before is left out with the reason."""
    sources = [config.data] if isinstance(config.data, str) else list(config.data)
    conversations, problems, seen = [], [], set()
    for source in sources:
        try:
            got, bad = load_conversations(source, config.role)
        except RunDirError as exc:
            raise SFTError(str(exc)) from exc
        problems += [f"{source}: {p}" for p in bad] if len(sources) > 1 else bad
        conversations += first_of_each_id(got, seen, problems, str(source))
    if config.view != "full":
        through, in_context, rehearse = _VIEWS[config.view]
        viewed = [(c, first_call_view(c, in_context, through)) for c in conversations]
        problems += [f"{c.id}: no tool {through} to end a {config.view} view at" for c, v in viewed if v is None]
        firsts = [v for _, v in viewed if v is not None]
        if rehearse:  # the rehearsal copies get their own ids
            firsts = conversations + [replace(v, id=f"{v.id}#first_call") for v in firsts]
        conversations = firsts
    return conversations, problems


def _train_sft(config: SFTConfig, stop_at: int | None, dist: Distributed) -> SFTResult:
    import torch

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config, dist)
    conversations, problems = _conversations(config)
    train_convs, held_convs = split(conversations, config.held_out)

    latest = checkpoints(out)[-1] if checkpoints(out) else None
    model, tokenizer = load_model_and_tokenizer(latest[1] if latest else config.model, dist.load_dtype(config.dtype),
                                                dist.device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train, skipped = tokenize_all(tokenizer, train_convs, config.max_length)
    held, held_skipped = tokenize_all(tokenizer, held_convs, config.max_length)
    skipped = problems + skipped + held_skipped
    if dist.main:
        (out / "data.json").write_text(json.dumps(
            {"run": config.data, "role": config.role, "train": len(train), "held_out": len(held),
             "skipped": skipped}, indent=2) + "\n", encoding="utf-8")
    if not train:
        raise SFTError(f"no training data in {config.data} for role {config.role}"
                       + (f" (first problem: {skipped[0]})" if skipped else ""))

    per_step = config.batch_size * config.grad_accum * dist.world
    steps_per_epoch = math.ceil(len(train) / per_step)
    total = steps_per_epoch * config.epochs
    model = dist.wrap(model, config.dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    model, optimizer = dist.attach(model, optimizer, config)  # deepspeed: its engine
    result = SFTResult(out, 0, len(train), len(held), skipped, latest[0] if latest else None, rank=dist.rank)
    step = 0
    if latest:
        _restore(latest[1], optimizer, model, dist)
        step = latest[0]
    else:
        torch.manual_seed(config.seed)  # dropout, if the model has any
    metrics = out / "metrics.jsonl"
    if dist.main:
        _keep_metrics_until(metrics, step)
    model.train()
    while step < total:
        if stop_at is not None and step >= stop_at:
            result.steps = step
            return result
        epoch, k = divmod(step, steps_per_epoch)
        picked = [train[i] for i in epoch_order(len(train), config.seed, epoch)[k * per_step:(k + 1) * per_step]]
        lr = lr_at(config, step, total)
        step_loss, n_tokens, grad_norm = sft_step(model, optimizer, picked, config, lr, pad_id, dist)
        step += 1
        result.last_loss = step_loss
        row: dict[str, Any] = {"step": step, "epoch": epoch, "loss": step_loss, "tokens": n_tokens,
                               "sequences": len(picked), "lr": lr, "grad_norm": grad_norm}
        end_of_epoch = step % steps_per_epoch == 0
        if end_of_epoch and held:
            row["eval_loss"] = evaluate(model, held, config.batch_size, pad_id, dist.device, config.ce_chunk, dist)
        if dist.main:
            with metrics.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
        due = step % config.save_every == 0 if config.save_every else end_of_epoch
        if due or step == total:  # the last step too, so that a finished run resumes as done
            save_checkpoint(out, step, model, tokenizer, optimizer, config.keep_checkpoints, dist)
    result.steps = step
    final = out / "final"
    save_model(model, tokenizer, final, dist)
    dist.barrier()
    result.final = final
    return result
