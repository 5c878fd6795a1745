"""The tensor maths of GRPO as the paper uses it (pure functions, no model, no I/O).

Shapes: B groups (tasks) × G trajectories per group; N = trajectories in a (micro-)batch,
T = tokens. A batch step is:

    keep = dynamic_filter(rewards)                 # [B] drop groups with nothing to learn
    A = group_advantages(rewards[keep])            # [B', G]  per trajectory
    A_tok = A.reshape(-1)                          # [N] broadcast over that trajectory's tokens
    loss, stats = clipped_surrogate_loss(logp_new, logp_old, A_tok, loss_mask,
                                         num_tokens=<loss tokens of the whole batch>)

Asynchronous GRPO (trainer/async_grpo.py) trains on trajectories sampled by an older
policy (the behaviour policy, its log-probs recorded at generation) and uses the decoupled
objective of AReaL: the clip is taken against the proximal policy (the trainer's weights
before the update, log-probs recomputed) and each token is weighted by
w = π_prox / π_behav, tokens whose w exceeds a cap being dropped (rejection sampling):

    w, wstats = behaviour_weights(logp_prox, logp_behav, loss_mask, cap=5.0)   # [N, T]
    loss, stats = clipped_surrogate_loss(logp_new, logp_prox, A_tok, loss_mask, weights=w, ...)

Conventions (tested in tests/trainer/test_grpo_math.py):
- std is the sample standard deviation (Bessel, divide by G−1), as TRL and verl compute
  it; A = (R − mean) / (std + eps). A group of size 1 has no spread: A = 0.
- Filtering comes before advantages: groups whose rewards are all equal (every trajectory
  passed, or every one failed, or a group of one) carry no signal and are removed.
- The surrogate is token-level: every loss token of the batch weighs the same, whatever
  the length of its trajectory; the sum is divided by the number of loss tokens in the
  whole batch (pass `num_tokens` when the batch is split into micro-batches, so their
  gradients add up to the full batch's).
"""

from __future__ import annotations

from typing import Any

import torch

EPS = 1e-6


def dynamic_filter(rewards: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """[B] bool: True for the groups whose (valid) rewards are not all equal."""
    # rewards: [B, G]; valid: [B, G] bool (False = a trajectory that did not run)
    rewards = rewards.to(torch.float64)  # exact comparisons, whatever the input dtype (bool, int)
    if valid is None:
        valid = torch.ones_like(rewards, dtype=torch.bool)
    big = torch.finfo(rewards.dtype).max
    high = torch.where(valid, rewards, torch.full_like(rewards, -big)).amax(dim=1)  # [B]
    low = torch.where(valid, rewards, torch.full_like(rewards, big)).amin(dim=1)  # [B]
    return (valid.sum(dim=1) >= 2) & (high > low)  # [B]


def group_advantages(rewards: torch.Tensor, valid: torch.Tensor | None = None,
                     eps: float = EPS) -> torch.Tensor:
    """[B, G] advantages (R − mean) / (std + eps) within each group, std with Bessel's
    correction; 0 for invalid entries and for groups with fewer than two valid rewards."""
    # rewards: [B, G] float; valid: [B, G] bool
    rewards = rewards.to(torch.float64 if rewards.dtype == torch.float64 else torch.float32)
    if valid is None:
        valid = torch.ones_like(rewards, dtype=torch.bool)
    w = valid.to(rewards.dtype)  # [B, G]
    n = w.sum(dim=1, keepdim=True)  # [B, 1]
    mean = (rewards * w).sum(dim=1, keepdim=True) / n.clamp(min=1)  # [B, 1]
    var = (((rewards - mean) * w) ** 2).sum(dim=1, keepdim=True) / (n - 1).clamp(min=1)  # [B, 1]
    adv = (rewards - mean) / (var.sqrt() + eps)  # [B, G]
    return torch.where(valid & (n >= 2), adv, torch.zeros_like(adv))  # [B, G]


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """[N, T] log p(input_ids[:, t] | input_ids[:, :t]); position 0 (no context) is 0.
    Aligned with the token, so it is masked by `loss_mask` directly."""
    # logits: [N, T, V] from a causal LM over input_ids [N, T]
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # [N, T-1, V] predicts tokens 1..T-1
    picked = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # [N, T-1]
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)  # [N, T]


def clipped_surrogate_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                           loss_mask: torch.Tensor, eps_low: float = 0.2, eps_high: float = 0.28,
                           num_tokens: float | torch.Tensor | None = None,
                           logp_ref: torch.Tensor | None = None,
                           kl_coef: float = 0.0,
                           weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Token-level clipped surrogate, to minimise:

        loss = −Σ_tokens mask · w · min(r·A, clip(r, 1−eps_low, 1+eps_high)·A) / num_tokens
               + kl_coef · Σ_tokens mask · KL_k3(new‖ref) / num_tokens

    with r = exp(logp_new − logp_old), w = `weights` (no gradient; 1 when None: the
    decoupled objective's behaviour weights, `behaviour_weights`) and num_tokens = Σ mask
    over the whole batch (default: this call's mask), so a token whose weight is 0 still
    counts in the denominator, as in AReaL. The KL term (k3 estimator, exp(d) − d − 1 with
    d = ref − new) is off unless both `logp_ref` and `kl_coef > 0` are given. Stats are
    floats over the loss tokens: clip_frac (the clipped branch is taken), clip_low_frac /
    clip_high_frac, ratio_mean, tokens, and kl when on."""
    # logp_new, logp_old, loss_mask: [N, T]; advantages: [N] (per trajectory) or [N, T]
    mask = loss_mask.to(logp_new.dtype)  # [N, T]
    adv = advantages.to(logp_new.dtype)
    if adv.dim() == 1:
        adv = adv.unsqueeze(1)  # [N, 1] broadcasts over T
    denom = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens, dtype=logp_new.dtype)
    denom = denom.clamp(min=1.0)  # a batch without loss tokens gives loss 0, not NaN
    ratio = torch.exp(logp_new - logp_old.detach())  # [N, T]
    unclipped = ratio * adv  # [N, T]
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv  # [N, T]
    objective = torch.minimum(unclipped, clipped)  # [N, T]
    if weights is not None:
        objective = objective * weights.detach().to(objective.dtype)  # [N, T]
    loss = -(objective * mask).sum() / denom  # []
    with torch.no_grad():
        own = mask.sum().clamp(min=1.0)
        adv_full = adv.expand_as(ratio)
        low = (ratio < 1.0 - eps_low) & (adv_full < 0)  # [N, T] pushed down past the floor
        high = (ratio > 1.0 + eps_high) & (adv_full > 0)  # [N, T] pushed up past the ceiling
        stats: dict[str, Any] = {
            "tokens": float(mask.sum()),
            "clip_frac": float(((low | high).to(mask.dtype) * mask).sum() / own),
            "clip_low_frac": float((low.to(mask.dtype) * mask).sum() / own),
            "clip_high_frac": float((high.to(mask.dtype) * mask).sum() / own),
            "ratio_mean": float((ratio * mask).sum() / own),
        }
    if logp_ref is not None and kl_coef > 0:
        d = logp_ref.detach() - logp_new  # [N, T]
        kl = torch.exp(d) - d - 1.0  # [N, T] k3: unbiased, always >= 0
        loss = loss + kl_coef * (kl * mask).sum() / denom
        stats["kl"] = float((kl.detach() * mask).sum() / own)
    return loss, stats


def behaviour_weights(logp_prox: torch.Tensor, logp_behav: torch.Tensor, loss_mask: torch.Tensor,
                      cap: float | None = 5.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The decoupled objective's per-token weights w = π_prox / π_behav = exp(prox − behav)
    (no gradient), with AReaL's rejection sampling: a token whose w exceeds `cap` gets
    weight 0 (it is dropped, not clipped to the cap); None: no cap. Where the behaviour
    policy is the proximal one, w is exactly 1. Stats are sums over the loss tokens, so
    micro-batches add up: tokens, capped (tokens dropped), weight_sum (Σ w of the kept)."""
    # logp_prox, logp_behav, loss_mask: [N, T]
    mask = loss_mask > 0  # [N, T]
    w = torch.exp(logp_prox.detach().float() - logp_behav.detach().float())  # [N, T]
    keep = mask if cap is None else mask & (w <= cap)  # [N, T]
    w = torch.where(keep, w, torch.zeros_like(w))  # [N, T]
    stats = {"tokens": float(mask.sum()), "capped": float((mask & ~keep).sum()), "weight_sum": float(w.sum())}
    return w, stats
