"""What the rollout samples from is what the trainer scores: a checkpoint's own generation
settings (repetition penalty, n-gram blocking, top-k, suppressed tokens, a minimum length)
must not leak into sampling, or the importance ratio of the first GRPO epoch is not 1."""

from __future__ import annotations

import json

import pytest

from tests.trainer import make_run, one_torch_thread  # noqa: F401  # the autouse fixture

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from trainer.data import load_conversations  # noqa: E402
from trainer.rollout import sample_batch, sequence_logprobs  # noqa: E402
from trainer.sft import load_model_and_tokenizer  # noqa: E402
from trainer.tiny import build_tiny, corpus_texts  # noqa: E402

LEAKY = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "top_k": 5, "top_p": 0.5,
         "min_new_tokens": 4, "suppress_tokens": [7, 8], "do_sample": True, "temperature": 0.3}


@pytest.fixture(scope="module")
def leaky_model(tmp_path_factory):
    """A tiny checkpoint whose generation_config.json carries settings real instruct
    checkpoints ship."""
    run = make_run(tmp_path_factory.mktemp("run"), n=6)
    pairs = [(c.messages, c.tools) for c in load_conversations(run, "agent")[0]]
    path = build_tiny(tmp_path_factory.mktemp("tiny"), corpus_texts(pairs), vocab_size=300, hidden=32, seed=1)
    gen = json.loads((path / "generation_config.json").read_text())
    (path / "generation_config.json").write_text(json.dumps(gen | LEAKY))
    model, tok = load_model_and_tokenizer(path)
    assert model.generation_config.repetition_penalty == 1.3  # the checkpoint does carry them
    return model.eval(), tok


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_and_trainer_logprobs_agree(leaky_model, temperature):
    model, tok = leaky_model
    prompts = [tok.encode("<|im_start|>user\nWhere is my order #W1234?<|im_end|>\n<|im_start|>assistant\n"),
               tok.encode("<|im_start|>assistant\n")]  # different lengths: the batch is left-padded
    torch.manual_seed(0)
    got = sample_batch(model, tok, prompts, temperature, max_new_tokens=24)
    seqs = [list(p) + g.ids for p, g in zip(prompts, got)]
    scored = sequence_logprobs(model, seqs, tok.pad_token_id, temperature)
    worst = 0.0
    for p, g, lp in zip(prompts, got, scored):
        assert len(g.ids) == len(g.logprobs) > 0
        worst = max(worst, max(abs(a - b) for a, b in zip(g.logprobs, lp[len(p):])))
    assert worst < 1e-5, worst
    assert model.generation_config.repetition_penalty == 1.3  # hidden only while sampling


def test_greedy_takes_the_argmax_despite_the_checkpoint(leaky_model):
    model, tok = leaky_model
    prompt = tok.encode("<|im_start|>assistant\n")
    (g,) = sample_batch(model, tok, [prompt], 0.0, max_new_tokens=12)
    seq = list(prompt)
    for t in g.ids:  # each token is the argmax of the plain logits (no penalty, no blocked n-grams)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
        assert int(logits.argmax()) == t
        seq.append(t)
