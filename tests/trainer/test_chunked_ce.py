"""Chunked log-probs and cross entropy (trainer/chunked_ce.py) equal the unchunked ones in
value and gradient, never compute more than a chunk of logits at a time, and fall back to
the whole logits for a head that is more than a matmul; SFT steps agree either way."""

from __future__ import annotations

import copy

import pytest

from tests.trainer import one_torch_thread  # noqa: F401  # the autouse fixture

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch.nn.functional as F  # noqa: E402

from trainer.chunked_ce import head_parts, masked_ce_sum, target_logprobs  # noqa: E402
from trainer.sft import SFTConfig, sft_step  # noqa: E402
from trainer.tiny import tiny_config, tiny_model  # noqa: E402
from trainer.tokenize import Tokenized  # noqa: E402

VOCAB, PAD = 61, 0


@pytest.fixture()
def model():
    return tiny_model(tiny_config(VOCAB, hidden=16, layers=1, heads=2, max_positions=64, pad_token_id=PAD), seed=1)


def batch_of(seed: int = 0) -> dict:
    """Two right-padded rows (23 and 17 tokens), loss on a ragged part of each."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (2, 23), generator=g)  # [2, 23]
    attn = torch.ones_like(ids)
    attn[1, 17:] = 0
    ids[1, 17:] = PAD
    loss = (torch.rand(2, 23, generator=g) < 0.6).long() * attn  # [2, 23]
    return {"input_ids": ids, "attention_mask": attn, "loss_mask": loss}


def grads(model) -> dict:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def run(model, fn) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    value = fn(model)
    value.backward()
    return value.detach(), grads(model)


@pytest.mark.parametrize("chunk", [1, 5, 7, 21])  # 22 predicted positions: ragged, exact and one-short splits
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_logprobs_equal_the_whole_logits_in_value_and_gradient(model, chunk, temperature):
    b = batch_of()
    weights = torch.linspace(-1.0, 2.0, 23).expand(2, 23) * b["attention_mask"]  # any downstream use

    def loss(chunked: int):
        return lambda m: (target_logprobs(m, b["input_ids"], b["attention_mask"], temperature, chunked)
                          * weights).sum()

    want, want_g = run(model, loss(0))
    got, got_g = run(model, loss(chunk))
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)
    assert want_g.keys() == got_g.keys() and len(want_g) > 3
    for name in want_g:
        assert torch.allclose(got_g[name], want_g[name], rtol=1e-4, atol=1e-6), name
    # and the log-probs themselves, against the definition
    with torch.no_grad():
        lp = target_logprobs(model, b["input_ids"], b["attention_mask"], temperature, chunk)  # [2, 23]
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits / temperature
    ref = torch.log_softmax(logits[:, :-1], -1).gather(-1, b["input_ids"][:, 1:, None]).squeeze(-1)
    assert torch.all(lp[:, 0] == 0) and torch.allclose(lp[:, 1:], ref, atol=1e-5)


def test_chunked_masked_ce_is_the_cross_entropy(model):
    b = batch_of(3)
    want, want_g = run(model, lambda m: masked_ce_sum(m, b, 0)[0])
    got, got_g = run(model, lambda m: masked_ce_sum(m, b, 4)[0])
    with torch.no_grad():
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    ce = F.cross_entropy(logits[:, :-1].transpose(1, 2), b["input_ids"][:, 1:], reduction="none")  # [2, 22]
    assert torch.allclose(want, (ce * b["loss_mask"][:, 1:]).sum(), rtol=1e-5)
    assert torch.allclose(got, want, rtol=1e-5)
    assert masked_ce_sum(model, b, 4)[1] == int(b["loss_mask"][:, 1:].sum())
    for name in want_g:
        assert torch.allclose(got_g[name], want_g[name], rtol=1e-4, atol=1e-6), name


def test_no_more_than_a_chunk_of_logits_at_once(model):
    b = batch_of()
    head = model.get_output_embeddings()
    widths = []
    hook = head.register_forward_hook(lambda mod, inp, out: widths.append(out.shape[1]))
    try:
        masked_ce_sum(model, b, 6)[0].backward()  # forward, then backward's recomputation
    finally:
        hook.remove()
    assert widths and max(widths) <= 6
    assert sum(widths) == 2 * 22  # every predicted position once forward, once in backward
    widths.clear()
    hook = head.register_forward_hook(lambda mod, inp, out: widths.append(out.shape[1]))
    try:
        masked_ce_sum(model, b, 22)  # short enough: the plain path, one call over every position
    finally:
        hook.remove()
    assert widths == [23]


def test_a_head_with_extras_takes_the_whole_logits():
    cfg = tiny_config(VOCAB, hidden=16, layers=1, heads=2, max_positions=64, pad_token_id=PAD)
    cfg.final_logit_softcapping = 30.0  # logits are not head(hidden): chunking would change them
    m = tiny_model(cfg, seed=1)
    assert head_parts(m) is None
    assert head_parts(tiny_model(tiny_config(VOCAB, hidden=16, layers=1, heads=2), seed=1)) is not None
    b = batch_of()
    assert torch.equal(target_logprobs(m, b["input_ids"], b["attention_mask"], chunk=3),
                       target_logprobs(m, b["input_ids"], b["attention_mask"], chunk=0))


def test_sft_step_is_the_same_with_a_chunked_loss(model):
    g = torch.Generator().manual_seed(5)
    data = []
    for n in (19, 26, 11):
        ids = torch.randint(1, VOCAB, (n,), generator=g).tolist()
        data.append(Tokenized(ids, [1] * n, [0] * 4 + [1] * (n - 4), [n]))
    results = []
    for chunk in (0, 5):
        m = copy.deepcopy(model)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        cfg = SFTConfig(model="m", data="d", out="o", batch_size=2, ce_chunk=chunk)
        loss, tokens, norm = sft_step(m, opt, data, cfg, 1e-2, PAD)
        results.append((loss, tokens, norm, m.state_dict()))
    (l0, t0, n0, s0), (l1, t1, n1, s1) = results
    assert t0 == t1 == 19 + 26 + 11 - 3 * 4
    assert l1 == pytest.approx(l0, rel=1e-5) and n1 == pytest.approx(n0, rel=1e-4)
    assert all(torch.allclose(s0[k], s1[k], atol=1e-6) for k in s0)
    assert any(not torch.equal(s0[k], model.state_dict()[k]) for k in s0)  # the step did move the weights
