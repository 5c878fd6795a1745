"""Per-token log-probabilities of a causal LM without the whole [B, T, V] logits tensor.

    lp = target_logprobs(model, input_ids, attention_mask, temperature=1.0, chunk=2048)  # [B, T]
    ce_sum = -(lp * loss_mask).sum()          # masked cross entropy (trainer/sft.py)

`lp[:, t] = log p(input_ids[:, t] | input_ids[:, :t])` at `temperature`, and `lp[:, 0] = 0`
(no context), aligned with the token as trainer/grpo_math.token_logprobs is.

Why: the logits of a long sequence dominate training memory (32k tokens × a 150k vocabulary
is 19 GB in float32, and log_softmax keeps another copy for backward). Above `chunk`
positions, the decoder runs once for the hidden states [B, T, H], and the LM head, the
log_softmax and the pick of the target run on `chunk` positions at a time, each under
activation checkpointing: backward recomputes one chunk's logits instead of keeping all
of them. The value and the gradient are those of the unchunked computation (up to float
rounding; tests/trainer/test_chunked_ce.py compares both).

Models whose logits are not simply `lm_head(last hidden state)` (logit soft-capping,
a logit scale) or that do not expose their decoder and head (a wrapper) take the unchunked
path, which is always correct, only bigger.
"""

from __future__ import annotations

from typing import Any

import torch

# Config attributes that mean the head does more than a matmul: chunking would skip it.
_HEAD_EXTRAS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale", "logits_scaling")


def head_parts(model: Any) -> tuple[Any, Any] | None:
    """(decoder returning hidden states, LM head) of a plain causal LM, or None when the
    logits are anything more than `head(hidden)`."""
    config = getattr(model, "config", None)
    if any(getattr(config, name, None) not in (None, 1.0) for name in _HEAD_EXTRAS):
        return None
    get_head = getattr(model, "get_output_embeddings", None)
    decoder = getattr(model, "base_model", None)
    head = get_head() if callable(get_head) else None
    if head is None or decoder is None or decoder is model:
        return None
    return decoder, head


def _picked(head: Any, hidden: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(target) per position: hidden [b, c, H], targets [b, c] -> [b, c]."""
    logits = head(hidden).float()  # [b, c, V]
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [b, c]


def target_logprobs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    temperature: float = 1.0, chunk: int = 0) -> torch.Tensor:
    """[B, T] log p(input_ids[:, t] | input_ids[:, :t]) at `temperature`; position 0 is 0.
    `chunk` > 0: when more than `chunk` positions are predicted, compute the logits `chunk`
    positions at a time (same value and gradient, a fraction of the memory)."""
    from .grpo_math import token_logprobs

    temperature = temperature if temperature > 0 else 1.0  # greedy decoding still scores at T=1
    parts = head_parts(model) if chunk > 0 and input_ids.shape[1] - 1 > chunk else None
    if parts is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # [B, T, V]
        if temperature != 1.0:
            logits = logits / temperature
        return token_logprobs(logits, input_ids)
    decoder, head = parts
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask)[0][:, :-1]  # [B, T-1, H]
    targets = input_ids[:, 1:]  # [B, T-1] token t is predicted at position t-1
    pieces = []
    for start in range(0, targets.shape[1], chunk):
        h, y = hidden[:, start:start + chunk], targets[:, start:start + chunk]  # [B, c, H], [B, c]
        if torch.is_grad_enabled():
            # Keep only the inputs; backward recomputes this chunk's logits.
            from torch.utils.checkpoint import checkpoint

            pieces.append(checkpoint(_picked, head, h, y, temperature, use_reentrant=False))
        else:
            pieces.append(_picked(head, h, y, temperature))
    picked = torch.cat(pieces, dim=1)  # [B, T-1]
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)  # [B, T]


def masked_ce_sum(model: Any, batch: dict[str, Any], chunk: int = 0) -> tuple[torch.Tensor, int]:
    """(sum of cross entropy over the batch's loss tokens, their number); `chunk` as in
    `target_logprobs`."""
    ids, attn, mask = batch["input_ids"], batch["attention_mask"], batch["loss_mask"]  # [B, T] each
    lp = target_logprobs(model, ids, attn, chunk=chunk)  # [B, T]
    weight = mask.to(lp.dtype).clone()
    weight[:, 0] = 0  # position 0 has no prediction
    return -(lp * weight).sum(), int(weight.sum().item())
