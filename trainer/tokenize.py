"""Render a conversation with tools through a chat template into training ids and masks.

`tokenize_conversation` renders the conversation incrementally: the text of message i is the
full render of messages[:i+1] minus the render of messages[:i], and an `assistant` message
(the trained role: the agent, or the user simulator in its role-flipped view) is split
further at its generation prompt (the render of messages[:i] with add_generation_prompt):

    [ prompt text (not trained) ][ header "<|im_start|>assistant\\n" ][ body ... <eot> ][ "\\n" ]
                                             loss 0                       loss 1         loss 0

The body is what the model generates after the generation prompt: content, tool calls and
the end-of-turn token (`tokenizer.eos_token` unless given), nothing after it. Each piece
is tokenised on its own and the ids are concatenated, which is what a rollout does (the
prompt is tokenised, the model appends its tokens, the environment appends the next turn).
Two checks make the result trustworthy, each a `TokenizeError` with the place it fails:
the template must be prefix-stable (each render extends the previous one), and the
concatenated ids must equal the tokenisation of the full render (no drift).

A message of the trained role marked `"weight": 0` (an erroneous turn, runtime/store/export.py)
is rendered like any other but trains nothing: its tokens are all loss 0.

`loss_mask[t] == 1` means token t is a target: the trained model generated it. It is kept
apart from `attention_mask` (1 on every real token). For a causal LM the logits at t-1
predict token t, so a loss uses `loss_mask[:, 1:]` against `logits[:, :-1]`.

This module needs only the tokenizer object; torch is imported by `collate` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class TokenizeError(ValueError):
    """A conversation that cannot be turned into trustworthy training ids."""


@dataclass
class Tokenized:
    input_ids: list[int]
    attention_mask: list[int]
    loss_mask: list[int]  # 1 on the trained role's generated tokens only
    message_ends: list[int]  # token offset just after each kept message (or the cut)
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        return sum(self.loss_mask)


def render(tokenizer: Any, messages: Sequence[dict], tools: Sequence[dict] | None = None,
           add_generation_prompt: bool = False) -> str:
    """The chat template's text for `messages` (an empty list renders to '')."""
    if not messages and not add_generation_prompt:
        return ""
    try:
        return tokenizer.apply_chat_template(list(messages), tools=list(tools) if tools else None,
                                             tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # a template error (jinja, raise_exception) in words
        raise TokenizeError(f"the chat template fails on {len(messages)} message(s): "
                            f"{type(exc).__name__}: {exc}") from exc


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of text that is already rendered: the template wrote any BOS it wants."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def prompt_ids(tokenizer: Any, messages: Sequence[dict], tools: Sequence[dict] | None = None) -> list[int]:
    """The ids a rollout feeds the model to generate the next assistant turn."""
    return encode(tokenizer, render(tokenizer, messages, tools, add_generation_prompt=True))


def _pieces(tokenizer: Any, messages: Sequence[dict], tools: Sequence[dict] | None,
            train_role: str, eot: str | None) -> list[list[tuple[str, int]]]:
    """Per message, its text as (piece, trained) pairs whose concatenation over all
    messages is the full render."""
    out: list[list[tuple[str, int]]] = []
    before = ""
    for i, message in enumerate(messages):
        after = render(tokenizer, messages[: i + 1], tools)
        if not after.startswith(before):
            raise TokenizeError(f"the chat template is not prefix-stable at message {i} "
                                f"({message.get('role')}): rendering more messages rewrites earlier text")
        if not is_trained(message, train_role):
            out.append([(after[len(before):], 0)])
            before = after
            continue
        prompt = render(tokenizer, messages[:i], tools, add_generation_prompt=True)
        if not (prompt.startswith(before) and after.startswith(prompt)):
            raise TokenizeError(f"the generation prompt of message {i} is not a prefix of its render")
        body = after[len(prompt):]
        cut = body.rfind(eot) + len(eot) if eot and eot in body else len(body)
        out.append([(prompt[len(before):], 0), (body[:cut], 1), (body[cut:], 0)])
        before = after
    return out


def tokenize_conversation(tokenizer: Any, messages: Sequence[dict], tools: Sequence[dict] | None = None,
                          max_length: int | None = None, train_role: str = "assistant",
                          eot: str | None = None, check: bool = True) -> Tokenized:
    """Ids and masks of one conversation (see the module docstring); raises TokenizeError.
    `check` re-tokenises the full render and compares (the drift check)."""
    eot = eot if eot is not None else getattr(tokenizer, "eos_token", None)
    ids: list[int] = []
    loss: list[int] = []
    ends: list[int] = []
    text = []
    for pieces in _pieces(tokenizer, messages, tools, train_role, eot):
        for piece, trained in pieces:
            got = encode(tokenizer, piece)
            ids += got
            loss += [trained] * len(got)
            text.append(piece)
        ends.append(len(ids))
    if check:
        full = encode(tokenizer, "".join(text))
        if full != ids:
            at = next((k for k, (a, b) in enumerate(zip(full, ids)) if a != b), min(len(full), len(ids)))
            raise TokenizeError(f"token drift: turn-by-turn ids differ from the full render at token {at} "
                                f"({len(ids)} vs {len(full)} tokens); the tokenizer merges across a turn boundary")
    result = Tokenized(ids, [1] * len(ids), loss, ends)
    return truncate(result, max_length, [is_trained(m, train_role) for m in messages])


def is_trained(message: dict, train_role: str = "assistant") -> bool:
    """Whether a message is learned: the trained role's, unless marked `weight: 0`."""
    return message.get("role") == train_role and message.get("weight", 1) != 0


def truncate(tok: Tokenized, max_length: int | None, trained: Sequence[bool]) -> Tokenized:
    """At most `max_length` tokens, cut at the end of the last trained message that fits
    (whole turns, ending on something to learn); when not even the first trained message
    fits, a hard cut at max_length (the start of that turn is still learned)."""
    if max_length is None or len(tok) <= max_length:
        return tok
    if max_length <= 0:
        raise TokenizeError(f"max_length must be positive, not {max_length}")
    fits = [k for k, end in enumerate(tok.message_ends) if end <= max_length and trained[k]]
    end = tok.message_ends[fits[-1]] if fits else max_length
    ends = [e for e in tok.message_ends if e <= end]
    if not ends or ends[-1] != end:
        ends.append(end)
    return Tokenized(tok.input_ids[:end], tok.attention_mask[:end], tok.loss_mask[:end], ends, True)


def collate(batch: Sequence[Tokenized], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors for a batch: input_ids, attention_mask, loss_mask, all [B, T]
    with T the longest sequence; padding has attention 0 and loss 0."""
    import torch

    width = max(len(t) for t in batch)
    out = {}
    for key, fill in (("input_ids", pad_id), ("attention_mask", 0), ("loss_mask", 0)):
        rows = [getattr(t, key) + [fill] * (width - len(t)) for t in batch]
        out[key] = torch.tensor(rows, dtype=torch.long)  # [B, T]
    return out
