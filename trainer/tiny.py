"""A tiny causal LM for tests and CPU demos, built without downloads.

- Tokenizer: byte-level BPE (`tokenizers`) trained here on the text it will see (a run's
  messages and tool schemas), wrapped as a `transformers.PreTrainedTokenizerFast` with
  ChatML-style special tokens and a chat template that renders tools and tool calls.
  Byte-level means any text encodes (no unknown token) and decodes back exactly.
- Model: `LlamaForCausalLM` from a small config (hidden 64, 2 layers), randomly initialised
  from a seed.
- `save_tiny` writes both to a folder that `AutoTokenizer/AutoModelForCausalLM
  .from_pretrained(path)` load, like any real checkpoint.

The template is prefix-stable (rendering the first k messages gives a prefix of rendering
k+1) and every boundary between turns is a special token or an isolated newline, so turns
tokenised one by one give the same ids as the whole conversation (trainer/tokenize.py
relies on this and checks it).

Assistant turns render as `<|im_start|>assistant\\n{content}<tool_call>\\n{"name": ...,
"arguments": {...}}\\n</tool_call>...<|im_end|>\\n`; `parse_assistant` reads one back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PAD = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END, CALL_OPEN, CALL_CLOSE]

# System block (the system message and the tool schemas), then one block per message.
# `messages[0].role == 'system'` is guarded so that an empty prefix renders to "".
CHAT_TEMPLATE = (
    "{%- set has_system = messages and messages[0].role == 'system' %}"
    "{%- if tools or has_system %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if has_system %}{{- messages[0].content or '' }}{%- endif %}"
    "{%- if tools %}"
    "{{- '\\n\\n# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>' }}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{%- if not loop.first %}{{- raise_exception('a system message is only allowed first') }}{%- endif %}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if message.content %}{{- message.content }}{%- endif %}"
    "{%- for call in message.tool_calls or [] %}"
    "{%- set fn = call.function if call.function is defined else call %}"
    "{{- '<tool_call>\\n{\"name\": ' }}{{- fn.name | tojson }}{{- ', \"arguments\": ' }}"
    "{%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Scaffolding the template writes, so that the tokenizer learns merges for it too.
_TEMPLATE_TEXT = ["system", "user", "assistant", "tool", "# Tools", "<tools>", "</tools>",
                  '{"name": ', ', "arguments": ', "}"]


def corpus_texts(conversations: Iterable[tuple[list[dict], list[dict]]]) -> list[str]:
    """The strings a tokenizer for these (messages, tools) pairs should know, in order."""
    texts = list(_TEMPLATE_TEXT)
    for messages, tools in conversations:
        for tool in tools:
            texts.append(json.dumps(tool, ensure_ascii=False))
        for m in messages:
            if isinstance(m.get("content"), str):
                texts.append(m["content"])
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                texts.append(str(fn.get("name", "")))
                texts.append(str(fn.get("arguments", "")))
    return texts


# A word holding a digit: an id ("A778", "ZFA04Y", "#W1234567"), an amount, a date.
_ID_LIKE = r"[^\W\d_]*\d\w*"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512, split_digits: bool = True) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `texts` (deterministic).

    `split_digits`: every digit is a token of its own (as in Qwen's and DeepSeek's
    tokenizers), and a word holding a digit is cut from what precedes it, so an id
    tokenises the same in a sentence (" A778") and in JSON ('"A778"'): A, 7, 7, 8. A model
    then copies an id or amount it never saw token by token. Without it, BPE merges the
    digit strings and prefixes it saw often (the training run's ids and amounts), and a new
    id tokenises unlike anything the model learned to copy (bench/learning.py measures it)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Newlines are isolated before the byte-level split: a turn boundary is always a special
    # token or a newline, so no BPE merge can cross it (no drift between per-turn and
    # whole-conversation tokenisation).
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
        *([pre_tokenizers.Split(Regex(_ID_LIKE), behavior="isolated"),
           pre_tokenizers.Digits(individual_digits=True)] if split_digits else []),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=IM_END,
        additional_special_tokens=[IM_START, CALL_OPEN, CALL_CLOSE],
        chat_template=CHAT_TEMPLATE, model_max_length=1 << 20)


def tiny_config(vocab_size: int, hidden: int = 64, layers: int = 2, heads: int = 4,
                max_positions: int = 8192, pad_token_id: int | None = None,
                eos_token_id: int | None = None) -> Any:
    """A LlamaConfig small enough to train on a CPU in seconds."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                       max_position_embeddings=max_positions, tie_word_embeddings=True,
                       pad_token_id=pad_token_id, eos_token_id=eos_token_id, bos_token_id=None,
                       attention_dropout=0.0, dtype="float32")


def tiny_model(config: Any, seed: int = 0) -> Any:
    """A randomly initialised LlamaForCausalLM; the same seed gives the same weights.
    The global torch rng is left as it was."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.float()


def build_tiny(out_dir: Path | str, texts: Iterable[str], vocab_size: int = 512, hidden: int = 64,
               layers: int = 2, heads: int = 4, max_positions: int = 8192, seed: int = 0,
               split_digits: bool = True) -> Path:
    """Train a tokenizer on `texts`, make a model for it and save both to `out_dir`."""
    if hidden % heads:
        raise ValueError(f"hidden size {hidden} is not a multiple of the {heads} attention heads")
    tokenizer = train_tokenizer(texts, vocab_size, split_digits)
    config = tiny_config(len(tokenizer), hidden, layers, heads, max_positions,
                         tokenizer.pad_token_id, tokenizer.eos_token_id)
    return save_tiny(out_dir, tiny_model(config, seed), tokenizer)


def build_tiny_from_run(run_dir: Path | str, out_dir: Path | str, vocab_size: int = 512,
                        seed: int = 0, **model_kwargs: Any) -> tuple[Path, list[str]]:
    """A tiny model whose tokenizer is trained on a run's conversations (both views), and
    the problems met reading the run."""
    from .data import ROLES, load_conversations

    pairs, problems = [], []
    for role in ROLES:
        conversations, bad = load_conversations(run_dir, role)
        pairs += [(c.messages, c.tools) for c in conversations]
        problems += [f"{role}: {p}" for p in bad]
    return build_tiny(out_dir, corpus_texts(pairs), vocab_size, seed=seed, **model_kwargs), problems


def save_tiny(out_dir: Path | str, model: Any, tokenizer: Any) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


_CALL = re.compile(re.escape(CALL_OPEN) + r"\n(.*?)\n" + re.escape(CALL_CLOSE), re.DOTALL)


def parse_assistant(text: str) -> dict:
    """One generated assistant turn (the text after the generation prompt, with or without
    the end-of-turn token) as an OpenAI assistant message. A tool call that is not valid
    JSON with a `name` is kept as text, so a bad generation shows as a bad reply."""
    text = text.split(IM_END, 1)[0]
    calls, kept, last = [], [], 0
    for match in _CALL.finditer(text):
        try:
            call = json.loads(match.group(1))
        except ValueError:
            call = None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            continue
        kept.append(text[last:match.start()])
        last = match.end()
        args = call.get("arguments", {})
        calls.append({"id": f"call_{len(calls)}", "type": "function", "function": {
            "name": call["name"],
            "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}})
    content = "".join(kept) + text[last:]
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = calls
    return message
