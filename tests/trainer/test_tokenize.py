"""Conversations to training ids: loss mask on the trained role only, no drift against a
full render, truncation by whole turns (trainer/tokenize.py)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from tests.trainer import make_run, one_torch_thread  # noqa: F401
from trainer.data import load_conversations
from trainer.tiny import (
    CALL_CLOSE,
    CALL_OPEN,
    CHAT_TEMPLATE,
    IM_END,
    corpus_texts,
    train_tokenizer,
)
from trainer.tokenize import TokenizeError, collate, prompt_ids, tokenize_conversation


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run"), n=6)
    out = {}
    for role in ("agent", "user"):
        conversations, problems = load_conversations(run, role)
        assert not problems and len(conversations) == 6
        out[role] = conversations
    return out


@pytest.fixture(scope="module")
def tokenizer(views):
    pairs = [(c.messages, c.tools) for role in views for c in views[role]]
    return train_tokenizer(corpus_texts(pairs), vocab_size=400)


def masked_runs(tok) -> list[list[int]]:
    """The maximal runs of consecutive loss tokens."""
    runs, current = [], []
    for i, m in zip(tok.input_ids, tok.loss_mask):
        if m:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def expected_assistant_text(message: dict) -> str:
    """What the model generates for an assistant message under the tiny template, by hand."""
    text = message.get("content") or ""
    for call in message.get("tool_calls") or []:
        fn = call["function"]
        text += f'{CALL_OPEN}\n{{"name": {json.dumps(fn["name"])}, "arguments": {fn["arguments"]}}}\n{CALL_CLOSE}'
    return text + IM_END


@pytest.mark.parametrize("role", ["agent", "user"])
def test_no_drift_against_a_full_render(views, tokenizer, role):
    for c in views[role]:
        tok = tokenize_conversation(tokenizer, c.messages, c.tools)
        full = tokenizer.apply_chat_template(c.messages, tools=c.tools, tokenize=True)["input_ids"]
        assert tok.input_ids == list(full)
        assert tok.attention_mask == [1] * len(full)
        assert len(tok.loss_mask) == len(full) and not tok.truncated
        assert tok.message_ends[-1] == len(full) and len(tok.message_ends) == len(c.messages)


@pytest.mark.parametrize("role", ["agent", "user"])
def test_masked_tokens_are_exactly_the_assistant_turns(views, tokenizer, role):
    for c in views[role]:
        tok = tokenize_conversation(tokenizer, c.messages, c.tools)
        assistants = [m for m in c.messages if m["role"] == "assistant"]
        got = [tokenizer.decode(run) for run in masked_runs(tok)]
        assert got == [expected_assistant_text(m) for m in assistants]
        # nothing of the system, user or tool turns is trained
        unmasked = tokenizer.decode([i for i, m in zip(tok.input_ids, tok.loss_mask) if not m])
        for m in c.messages:
            if m["role"] != "assistant" and m.get("content"):
                assert m["content"] in unmasked


def test_user_view_trains_the_users_words_and_tool_call(views, tokenizer):
    c = views["user"][1]  # odd index: the user ran check_phone
    raw = c.record["messages"]
    said = [m["content"] for m in raw if m["role"] == "user" and m.get("content")]
    tok = tokenize_conversation(tokenizer, c.messages, c.tools)
    trained = "".join(tokenizer.decode(run) for run in masked_runs(tok))
    for text in said:
        assert text in trained
    assert '"name": "check_phone"' in trained
    # the agent's words are context, not targets
    agent_said = [m["content"] for m in raw if m["role"] == "assistant" and m.get("content")]
    assert agent_said and all(text not in trained for text in agent_said)


def test_prompt_ids_are_a_prefix_of_the_training_ids(views, tokenizer):
    c = views["agent"][0]
    tok = tokenize_conversation(tokenizer, c.messages, c.tools)
    k = next(i for i, m in enumerate(c.messages) if m["role"] == "assistant")
    prompt = prompt_ids(tokenizer, c.messages[:k], c.tools)
    assert tok.input_ids[:len(prompt)] == prompt
    assert tok.loss_mask[len(prompt)] == 1 and tok.loss_mask[len(prompt) - 1] == 0


def test_truncation_keeps_whole_turns(views, tokenizer):
    c = views["agent"][1]
    full = tokenize_conversation(tokenizer, c.messages, c.tools)
    roles = [m["role"] for m in c.messages]
    last_asst = max(i for i, r in enumerate(roles) if r == "assistant")
    # one token short of the whole: the cut falls back to the end of an earlier assistant turn
    cut = tokenize_conversation(tokenizer, c.messages, c.tools, max_length=len(full) - 1)
    earlier = [full.message_ends[i] for i, r in enumerate(roles) if r == "assistant" and i < last_asst]
    assert cut.truncated and len(cut) == earlier[-1]
    assert cut.input_ids == full.input_ids[:len(cut)] and cut.loss_mask == full.loss_mask[:len(cut)]
    # ends on a trained turn: its end-of-turn token (trained), then the template's newline (not)
    assert cut.loss_mask[-2:] == [1, 0] and tokenizer.decode(cut.input_ids[-2:]) == IM_END + "\n"
    # too short for the first assistant turn: a hard cut at max_length
    first_asst = roles.index("assistant")
    short = full.message_ends[first_asst] - 2
    hard = tokenize_conversation(tokenizer, c.messages, c.tools, max_length=short)
    assert hard.truncated and len(hard) == short and hard.input_ids == full.input_ids[:short]
    # a max_length that fits changes nothing
    same = tokenize_conversation(tokenizer, c.messages, c.tools, max_length=len(full))
    assert same.input_ids == full.input_ids and not same.truncated


def test_collate_pads_right_with_zero_masks(views, tokenizer):
    torch = pytest.importorskip("torch")
    a = tokenize_conversation(tokenizer, views["user"][0].messages, views["user"][0].tools)
    b = tokenize_conversation(tokenizer, views["agent"][0].messages, views["agent"][0].tools)
    batch = collate([a, b], pad_id=tokenizer.pad_token_id)
    width = max(len(a), len(b))
    assert all(batch[k].shape == (2, width) and batch[k].dtype == torch.long for k in batch)
    short = 0 if len(a) < len(b) else 1
    n = min(len(a), len(b))
    assert batch["attention_mask"][short, n:].sum() == 0 and batch["loss_mask"][short, n:].sum() == 0
    assert (batch["input_ids"][short, n:] == tokenizer.pad_token_id).all()


def test_a_template_that_rewrites_history_is_refused(tokenizer):
    # marks the last message differently from the others: each longer prefix rewrites the previous one
    unstable = ("{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + (m.content or '') }}"
                "{%- if loop.last %}{{ ' (last)' }}{% endif %}{{ '<|im_end|>\\n' }}{%- endfor %}"
                "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    tok = train_tokenizer(["hello there"], vocab_size=300)
    tok.chat_template = unstable
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(TokenizeError, match="prefix-stable"):
        tokenize_conversation(tok, messages)


def test_drift_is_detected():
    """A BPE with no pre-tokenizer merges a newline with the letters after it, so the
    header '...assistant\\n' and a reply 'Hi' tokenised apart differ from '\\nHi' whole."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(["assistant\nHi there"] * 50, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  chat_template=CHAT_TEMPLATE)
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "Hi there"}]
    with pytest.raises(TokenizeError, match="drift"):
        tokenize_conversation(tok, messages)
    # without the check the same call returns the (drifted) turn-by-turn ids
    assert tokenize_conversation(tok, messages, check=False).n_loss_tokens > 0


def test_a_failing_template_is_a_tokenize_error(tokenizer):
    with pytest.raises(TokenizeError, match="only allowed first"):
        tokenize_conversation(tokenizer, [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])


def test_a_real_run_tokenizes_without_drift(tmp_path):
    """`eigen run` output (telecom: the user simulator has tools of its own), both views."""
    from tests.helpers import ROOT, eigen

    out = tmp_path / "run"
    done = eigen("run", str(ROOT / "workflows" / "eigendata.yaml"), "--domain", "telecom", "--n", "3",
                 "--size", "0.1", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    views = {role: load_conversations(out, role) for role in ("agent", "user")}
    assert all(not problems and len(cs) == 3 for cs, problems in views.values())
    tok = train_tokenizer(corpus_texts([(c.messages, c.tools) for cs, _ in views.values() for c in cs]), 400)
    for conversations, _ in views.values():
        for c in conversations:
            t = tokenize_conversation(tok, c.messages, c.tools)
            assert t.input_ids == list(tok.apply_chat_template(c.messages, tools=c.tools)["input_ids"])
            assert [tok.decode(run) for run in masked_runs(t)] == \
                [expected_assistant_text(m) for m in c.messages if m["role"] == "assistant"]
