"""GRPO maths against values worked out by hand (trainer/grpo_math.py)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tests.trainer import one_torch_thread  # noqa: F401
from trainer.grpo_math import (
    clipped_surrogate_loss,
    dynamic_filter,
    group_advantages,
    token_logprobs,
)


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), atol=tol)


def test_group_advantages_by_hand():
    # group [1, 0, 0, 1]: mean 0.5; sample variance = 4 * 0.25 / 3 = 1/3, std = 0.57735
    # group [1, 0, 0, 0]: mean 0.25; deviations .75, -.25 x3; var = (.5625 + 3*.0625) / 3 = 0.25, std 0.5
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    a = group_advantages(rewards, eps=0.0)
    s = 1 / math.sqrt(3)
    assert close(a[0], [0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s])
    assert close(a[1], [1.5, -0.5, -0.5, -0.5])
    # eps goes into the denominator
    assert close(group_advantages(rewards, eps=0.5)[1], [0.75 / 1.0, -0.25, -0.25, -0.25])
    # advantages of a group sum to zero
    assert close(a.sum(dim=1), [0.0, 0.0])


def test_group_of_size_one_and_equal_groups_give_zero():
    assert close(group_advantages(torch.tensor([[1.0], [0.0]])), [[0.0], [0.0]])
    # all equal: std 0 -> (R - mean) = 0 exactly, no division blow-up
    assert close(group_advantages(torch.tensor([[1.0, 1.0, 1.0]])), [[0.0, 0.0, 0.0]])


def test_group_advantages_with_invalid_trajectories():
    # the third trajectory did not run: the group is [1, 0] -> mean .5, sample std sqrt(.5)
    rewards = torch.tensor([[1.0, 0.0, 7.0]])
    valid = torch.tensor([[True, True, False]])
    a = group_advantages(rewards, valid, eps=0.0)
    d = 0.5 / math.sqrt(0.5)
    assert close(a, [[d, -d, 0.0]])
    # one valid trajectory left: nothing to compare with
    assert close(group_advantages(rewards, torch.tensor([[True, False, False]])), [[0.0, 0.0, 0.0]])


def test_dynamic_filter_drops_equal_and_single_groups():
    rewards = torch.tensor([[1, 1, 1], [0, 0, 0], [1, 0, 1], [0, 0, 1]])
    assert dynamic_filter(rewards).tolist() == [False, False, True, True]
    assert dynamic_filter(torch.tensor([[1.0], [0.0]])).tolist() == [False, False]
    # invalid entries do not count: [1, 1, (0)] is an all-equal group
    valid = torch.tensor([[True, True, False], [True, True, True]])
    assert dynamic_filter(torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]), valid).tolist() == [False, True]


def test_filter_before_advantages_changes_nothing_for_kept_groups():
    rewards = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    keep = dynamic_filter(rewards)
    assert keep.tolist() == [False, True, False, True]
    a = group_advantages(rewards[keep], eps=0.0)
    # [1, 0]: mean .5, sample std sqrt(.5) -> +-0.70711
    d = 0.5 / math.sqrt(0.5)
    assert close(a, [[d, -d], [-d, d]])


def test_token_logprobs_alignment():
    # vocabulary of 3; logits constant over positions: log_softmax([0, ln 2, ln 3]) = log([1, 2, 3] / 6)
    logits = torch.log(torch.tensor([1.0, 2.0, 3.0])).expand(1, 4, 3)
    ids = torch.tensor([[0, 2, 1, 0]])
    got = token_logprobs(logits, ids)
    assert close(got, [[0.0, math.log(3 / 6), math.log(2 / 6), math.log(1 / 6)]])


def test_surrogate_by_hand_token_level_normalisation():
    # two trajectories of different lengths: 3 loss tokens and 1 loss token (plus padding)
    logp_old = torch.zeros(2, 4)
    ratios = torch.tensor([[1.5, 0.9, 1.0, 9.0], [0.5, 1.0, 1.0, 1.0]])
    logp_new = torch.log(ratios).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    adv = torch.tensor([1.0, -2.0])
    loss, stats = clipped_surrogate_loss(logp_new, logp_old, adv, mask, eps_low=0.2, eps_high=0.3)
    # trajectory 0, A=+1: min(1.5, clip 1.3) = 1.3; min(.9, .9) = .9; 1.0 -> sum 3.2
    # trajectory 1, A=-2: r=.5 -> min(-1.0, clip(.5)=.8 * -2 = -1.6) = -1.6
    # token-level mean over 4 loss tokens (not per-sequence means): -(3.2 - 1.6) / 4
    assert close(loss, -(3.2 - 1.6) / 4)
    assert close(stats["clip_frac"], 2 / 4)  # 1.5 (A>0, above 1.3) and .5 (A<0, below .8)
    assert close(stats["clip_high_frac"], 1 / 4) and close(stats["clip_low_frac"], 1 / 4)
    assert close(stats["ratio_mean"], (1.5 + 0.9 + 1.0 + 0.5) / 4)
    assert stats["tokens"] == 4
    # a per-sequence mean would give -(3.2/3 - 1.6/1)/2: different, so the test tells them apart
    assert not close(loss, -(3.2 / 3 - 1.6) / 2)
    # gradients: clipped tokens and masked tokens get none; d(r*A)/dlogp = r*A / N
    loss.backward()
    assert close(logp_new.grad, [[0.0, -0.9 / 4, -1.0 / 4, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_surrogate_num_tokens_splits_batches_exactly():
    g = torch.Generator().manual_seed(0)
    logp_new = torch.randn(4, 5, generator=g) * 0.3
    logp_old = torch.randn(4, 5, generator=g) * 0.3
    mask = (torch.rand(4, 5, generator=g) > 0.3).long()
    adv = torch.tensor([1.0, -1.0, 0.5, 2.0])
    whole, _ = clipped_surrogate_loss(logp_new, logp_old, adv, mask)
    n = mask.sum()
    parts = [clipped_surrogate_loss(logp_new[i:i + 2], logp_old[i:i + 2], adv[i:i + 2], mask[i:i + 2],
                                    num_tokens=n)[0] for i in (0, 2)]
    assert close(sum(parts), whole)


def test_surrogate_per_token_advantages_and_empty_mask():
    logp = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, 2.0, 3.0]])
    loss, _ = clipped_surrogate_loss(logp, logp, adv, torch.tensor([[0, 1, 1]]))
    assert close(loss, -(2.0 + 3.0) / 2)
    loss, stats = clipped_surrogate_loss(logp, logp, adv, torch.zeros(1, 3))
    assert close(loss, 0.0) and stats["tokens"] == 0


def test_kl_term_off_by_default_and_k3_when_on():
    logp_new = torch.log(torch.tensor([[0.5, 0.25]]))
    logp_ref = torch.log(torch.tensor([[0.25, 0.25]]))
    mask = torch.ones(1, 2)
    adv = torch.tensor([0.0])  # isolate the KL term
    base, stats = clipped_surrogate_loss(logp_new, logp_new, adv, mask, logp_ref=logp_ref)
    assert close(base, 0.0) and "kl" not in stats  # kl_coef defaults to 0
    loss, stats = clipped_surrogate_loss(logp_new, logp_new, adv, mask, logp_ref=logp_ref, kl_coef=0.1)
    # token 0: d = ln(.25/.5) = -ln 2 -> e^d - d - 1 = .5 + ln 2 - 1; token 1: d = 0 -> 0
    k = 0.5 + math.log(2) - 1
    assert close(stats["kl"], k / 2)
    assert close(loss, 0.1 * k / 2)
