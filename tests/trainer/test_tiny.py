"""The tiny model: a locally trained tokenizer with a tool-aware chat template, a small
random LlamaForCausalLM, and a folder that `from_pretrained` loads (trainer/tiny.py)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.trainer import make_run, one_torch_thread  # noqa: F401
from trainer.data import load_conversations
from trainer.tiny import (
    CALL_CLOSE,
    CALL_OPEN,
    IM_END,
    IM_START,
    SPECIAL_TOKENS,
    build_tiny,
    build_tiny_from_run,
    corpus_texts,
    parse_assistant,
    tiny_config,
    tiny_model,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"), n=6)


@pytest.fixture(scope="module")
def pairs(run_dir):
    conversations, problems = load_conversations(run_dir, "agent")
    assert not problems
    return [(c.messages, c.tools) for c in conversations]


@pytest.fixture(scope="module")
def tokenizer(pairs):
    return train_tokenizer(corpus_texts(pairs), vocab_size=300)


def test_tokenizer_is_deterministic_and_byte_level(pairs, tokenizer):
    again = train_tokenizer(corpus_texts(pairs), vocab_size=300)
    assert again.get_vocab() == tokenizer.get_vocab()
    assert len(tokenizer) == 300
    # text it never saw, with non-ASCII characters, round-trips exactly (no unknown token)
    text = "Zürich → 東京: 12.5 € ✓\n\ttabs  and  spaces"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    # special tokens are single ids, never split
    for special in SPECIAL_TOKENS:
        assert len(tokenizer(special, add_special_tokens=False)["input_ids"]) == 1
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token_id is not None


def test_chat_template_renders_tools_and_tool_calls(tokenizer):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Order #W1?"},
                {"role": "assistant", "content": "Looking.", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "#W1"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "pending"}]
    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {}}}]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    want = (f"{IM_START}system\nBe brief.\n\n# Tools\n<tools>\n{json.dumps(tools[0])}\n</tools>{IM_END}\n"
            f"{IM_START}user\nOrder #W1?{IM_END}\n"
            f'{IM_START}assistant\nLooking.{CALL_OPEN}\n{{"name": "get_order", "arguments": {{"order_id": "#W1"}}}}'
            f"\n{CALL_CLOSE}{IM_END}\n"
            f"{IM_START}tool\npending{IM_END}\n"
            f"{IM_START}assistant\n")
    assert text == want
    # without tools and without a system message there is no system block
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == \
        f"{IM_START}user\nhi{IM_END}\n"


def test_parse_assistant_reads_back_a_rendered_turn(tokenizer):
    message = {"role": "assistant", "content": "One moment.", "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "#W1"}'}},
        {"id": "call_1", "type": "function", "function": {"name": "check", "arguments": "{}"}}]}
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, message], tokenize=False)
    got = parse_assistant(full[len(prompt):])
    assert got["content"] == "One moment."
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in got["tool_calls"]] == \
        [("get_order", {"order_id": "#W1"}), ("check", {})]
    # a call that is not JSON stays text; plain text has no tool_calls
    bad = parse_assistant(f"{CALL_OPEN}\nnot json\n{CALL_CLOSE}{IM_END}")
    assert "tool_calls" not in bad and "not json" in bad["content"]
    assert parse_assistant("Hello." + IM_END) == {"role": "assistant", "content": "Hello."}


def test_model_seed_determinism(tokenizer):
    config = tiny_config(len(tokenizer), hidden=32, layers=1, heads=2)
    a, b, c = tiny_model(config, seed=1), tiny_model(config, seed=1), tiny_model(config, seed=2)
    state_a, state_b, state_c = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)
    # the global torch rng is untouched by model creation
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    tiny_model(config, seed=3)
    assert torch.equal(torch.rand(1), before)


def test_saved_folder_loads_with_from_pretrained(tmp_path, pairs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny(tmp_path / "tiny", corpus_texts(pairs), vocab_size=300, hidden=32, layers=1, heads=2)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    messages, tools = pairs[0]
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False)
    assert text.startswith(f"{IM_START}system\n") and CALL_OPEN in text
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"][:64]])
    rebuilt = train_tokenizer(corpus_texts(pairs), vocab_size=300)
    assert ids[0].tolist() == rebuilt(text, add_special_tokens=False)["input_ids"][:64]
    logits = model(input_ids=ids).logits  # [1, T, V]
    assert logits.shape == (1, ids.shape[1], len(tok))
    assert model.config.hidden_size == 32 and model.dtype == torch.float32
    # a second load gives the same numbers
    again = AutoModelForCausalLM.from_pretrained(path)(input_ids=ids).logits
    assert torch.equal(logits, again)


def test_build_from_run_reads_both_views(tmp_path, run_dir, pairs):
    path, problems = build_tiny_from_run(run_dir, tmp_path / "m", vocab_size=400, hidden=32, layers=1, heads=2)
    assert problems == []
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    users, _ = load_conversations(run_dir, "user")
    both = train_tokenizer(corpus_texts(pairs + [(c.messages, c.tools) for c in users]), vocab_size=400)
    agent_only = train_tokenizer(corpus_texts(pairs), vocab_size=400)
    assert tok.get_vocab() == both.get_vocab() != agent_only.get_vocab()
