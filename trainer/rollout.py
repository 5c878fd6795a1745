"""Episodes of a policy against an instance's environment and a user simulator.

    tasks, problems = load_tasks(["runs/retail"])          # accepted records + their worlds
    rollouts = run_episodes(model, tokenizer, [t, t, t, t], ScriptedUser(), RolloutConfig())

One episode: the environment is a fork of the instance's initial state (rebuilt as
`eigen verify` does: `Environment.from_domain(domain, generator_seed, size)`, cached per
world); the user simulator opens; then, up to `max_turns` assistant turns, the policy
generates a turn (HF `generate`, sampling at `temperature`), its tool calls run on the fork
and their results are appended, and a turn without tool calls goes to the user simulator,
whose own tool use (`side: "user"`) runs on the fork too. The reward is 1.0 iff the record's
verifier passes on the final state with the episode's messages.

Token ids are the rollout's own: the text the chat template adds between turns is
rendered as a string difference (as trainer/tokenize.py does) and encoded, and the policy's
generated ids are appended as they came out; nothing generated is re-tokenised. When a
generation is what the template would render for the parsed message (a model that learned
the format), the ids equal `tokenize_conversation` on the agent's view of the messages.

Episodes run in lockstep: every live episode's next prompt is generated in one batch.
`RayRollouts` spreads episodes over Ray actors (lazy import) when `rollout_workers > 1`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .data import first_of_each_id
from .tokenize import TokenizeError, encode, render
from .user_sim import ScriptedUser, UserSimulator


class RolloutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(8, ge=1)  # assistant turns (generations) per episode
    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0)  # 0: greedy
    max_context: int = Field(4096, ge=16)  # an episode longer than this stops (reward from its state)
    max_user_actions: int = Field(4, ge=1)  # user-side tool uses in a row before the user must speak
    # a turn cut by max_new_tokens is not trained (DAPO's overlong filtering): its reward
    # judges a message that was never finished (trainer/grpo.py says why this is the default)
    mask_truncated: bool = True


@dataclass
class Task:
    id: str
    domain: str
    record: dict = field(repr=False)
    env: Any = field(repr=False)  # the initial Environment: fork it, never call it
    tools: list[dict] = field(repr=False)
    system: dict | None = field(repr=False)


@dataclass
class Rollout:
    task_id: str
    domain: str
    input_ids: list[int]
    loss_mask: list[int]  # 1 on the policy's generated tokens
    messages: list[dict]
    reward: float
    failures: list[str]
    turns: int  # assistant turns generated
    truncated: bool = False  # stopped by max_context or max_turns before the user ended it
    old_logprobs: list[float] | None = None  # per token, filled by the trainer
    cut_turns: int = 0  # generated turns cut by max_new_tokens (untrained with mask_truncated)
    # per token, the log-prob the sampler drew it with (0.0 on tokens not generated); kept
    # when `generate` returns `Generated` (run_episodes(behaviour=True)): asynchronous GRPO's
    # behaviour policy (trainer/async_grpo.py)
    behav_logprobs: list[float] | None = None

    @property
    def n_loss_tokens(self) -> int:
        return sum(self.loss_mask)


# ---------------------------------------------------------------- tasks


def load_tasks(sources: Sequence[str | Path], domain: str | None = None) -> tuple[list[Task], list[str]]:
    """The accepted records of run directories or instances.jsonl files, with their initial
    environments; (tasks, 'source: why' for records left out). `domain` overrides where
    domains are looked up (a name or folder)."""
    from runtime.store.verify import INSTANCES, _Worlds, open_run_dir, read_records

    tasks, problems, seen = [], [], set()
    for source in sources:
        path = Path(source)
        if path.is_file():
            run_dir, manifest, file = path.parent, {}, path
            try:
                _, manifest = open_run_dir(run_dir)
            except ValueError:
                pass  # a bare JSONL file: domains by recorded name only
        else:
            run_dir, manifest = open_run_dir(path)
            file = run_dir / INSTANCES
        records, bad = read_records(file)
        problems += [f"{file}: {p}" for p in bad]
        worlds = _Worlds(run_dir, manifest, domain)
        made = []
        for record in records:
            try:
                made.append(_task_of(record, worlds))
            except Exception as exc:  # noqa: BLE001  # verify's _Problem or a malformed record
                problems.append(f"{file}: {record.get('id')}: {exc}")
        tasks += first_of_each_id(made, seen, problems, str(file))
    return tasks, problems


def _task_of(record: dict, worlds: Any) -> Task:
    from runtime.store.export import _tools

    rid, initial = record.get("id"), record.get("initial_state")
    if not isinstance(rid, str) or not isinstance(initial, dict):
        raise ValueError("no id or initial_state")
    name = initial.get("domain") or record.get("domain")
    spec, digest = worlds.domain(name)
    env = worlds.record_env(spec, digest, initial)  # a generated world, or an imported τ²-bench task's start
    messages = record.get("messages") if isinstance(record.get("messages"), list) else []
    system = messages[0] if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system" else None
    return Task(rid, spec.name, record, env, _tools(record.get("tools")),
                {"role": "system", "content": str(system.get("content") or "")} if system else None)


def reward_of(task: Task, final_env: Any, messages: list[dict]) -> tuple[float, list[str]]:
    """(1.0 or 0.0, the verifier's failures) for an episode's final state. A policy check
    broken by any call of the episode is a failure (`Verifier.check` reads the violations
    the episode's environment logged), so such an episode is rewarded 0, as τ²-bench scores it."""
    from runtime.env.verifier import Verifier

    try:
        verdict = Verifier.model_validate(task.record.get("verifier")).check(task.env, final_env, messages)
    except Exception as exc:  # noqa: BLE001  # a bad verifier fails the episode, in words
        return 0.0, [f"verifier error: {type(exc).__name__}: {exc}"]
    return (1.0 if verdict.passed else 0.0), list(verdict.failures)


# ---------------------------------------------------------------- the model


def sampling_config(temperature: float, max_new_tokens: int, eos: int, pad: int) -> Any:
    """The `GenerationConfig` of a rollout: plain sampling from softmax(logits / temperature)
    over the whole vocabulary (greedy at 0), every logits processor that has an "off" value
    set to it explicitly. `sample_batch` also hides the checkpoint's own generation_config
    while it generates: transformers fills every setting left unset (None) from it, and some
    processors (suppressed or forced tokens, sequence bias, stop strings, watermarking) are
    off only when unset."""
    from transformers import GenerationConfig

    # the warpers of sampling (greedy takes the argmax of the raw logits: none applies)
    sampling = dict(temperature=temperature, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, epsilon_cutoff=0.0,
                    eta_cutoff=0.0) if temperature > 0 else {}
    return GenerationConfig(
        do_sample=temperature > 0, **sampling, repetition_penalty=1.0, encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, guidance_scale=1.0, renormalize_logits=False,
        remove_invalid_values=False, length_penalty=1.0, min_new_tokens=0, max_new_tokens=max_new_tokens,
        num_beams=1, num_return_sequences=1, eos_token_id=eos, pad_token_id=pad, use_cache=True,
        output_scores=True, return_dict_in_generate=True)


@dataclass
class Generated:
    ids: list[int]  # up to and including the first end-of-turn token
    logprobs: list[float]  # log p of each id under the distribution it was drawn from


def sample_batch(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], temperature: float,
                 max_new_tokens: int) -> list[Generated]:
    """Generate a turn for each prompt (left-padded into one batch) with `sampling_config`,
    keeping the log-probability of every sampled token under the distribution it was drawn
    from (the processed scores), which the trainer's log-probs must equal."""
    import torch

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    width = max(len(p) for p in prompts)
    device = next(model.parameters()).device
    ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)  # [B, W]
    attn = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)  # [B, W]
    from transformers import GenerationConfig

    config = sampling_config(temperature, max_new_tokens, eos, pad)
    own, model.generation_config = model.generation_config, GenerationConfig()  # the library's neutral defaults
    try:
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=attn, generation_config=config)
    finally:
        model.generation_config = own
    new = out.sequences[:, width:]  # [B, new]
    scores = torch.stack(out.scores, dim=1).float()  # [B, new, V] the logits sampled from
    picked = torch.log_softmax(scores, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)  # [B, new]
    result = []
    for row, lps in zip(new.tolist(), picked.tolist()):
        n = row.index(eos) + 1 if eos in row else len(row)
        result.append(Generated(row[:n], lps[:n]))
    return result


def generate_batch(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], temperature: float,
                   max_new_tokens: int) -> list[list[int]]:
    """The generated ids of each prompt, up to and including the first end-of-turn token
    (`sample_batch` without the log-probs)."""
    return [g.ids for g in sample_batch(model, tokenizer, prompts, temperature, max_new_tokens)]


def sequence_logprobs(model: Any, sequences: Sequence[Sequence[int]], pad_id: int, temperature: float = 1.0,
                      batch_size: int = 8, grad: bool = False, chunk: int = 0) -> Any:
    """log p(token t | tokens < t) at `temperature` for each sequence, as a list of [T_i]
    float lists (no grad) — position 0 is 0 (trainer/grpo_math.token_logprobs); `chunk` as
    in trainer/chunked_ce.target_logprobs."""
    import torch

    from .chunked_ce import target_logprobs

    device = next(model.parameters()).device
    out: list[list[float]] = []
    with torch.set_grad_enabled(grad):
        for i in range(0, len(sequences), batch_size):
            part = sequences[i:i + batch_size]
            width = max(len(s) for s in part)
            ids = torch.tensor([list(s) + [pad_id] * (width - len(s)) for s in part], device=device)  # [b, T]
            attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in part], device=device)
            lp = target_logprobs(model, ids, attn, temperature, chunk)  # [b, T]
            out += [row[:len(s)] for row, s in zip(lp.tolist(), part)]
    return out


# ---------------------------------------------------------------- episodes


class Episode:
    """One conversation in progress: messages, the environment fork, the rollout's ids."""

    def __init__(self, task: Task, tokenizer: Any, parse: Callable[[str], dict], mask_truncated: bool = True) -> None:
        self.task, self.tokenizer, self.parse = task, tokenizer, parse
        self.mask_truncated = mask_truncated
        self.cut_turns = 0
        self.env = task.env.fork()
        self.messages: list[dict] = [dict(task.system)] if task.system else []
        self.ids: list[int] = []
        self.mask: list[int] = []
        self.rendered = ""  # the template's text that self.ids stands for
        self.turns = 0
        self.done = False
        self.truncated = False
        self._before_prompt: tuple[int, str] | None = None  # undo point of an unused generation prompt
        self.sampled: list[tuple[int, list[float]]] = []  # (where in ids, log-probs) of each generated turn

    def agent_view(self) -> list[dict]:
        return [m for m in self.messages if m.get("side") != "user"]

    def _sync(self, generation_prompt: bool) -> None:
        """Append the ids of whatever the template adds after self.rendered."""
        text = render(self.tokenizer, self.agent_view(), self.task.tools, add_generation_prompt=generation_prompt)
        if not text.startswith(self.rendered):
            raise TokenizeError("the chat template is not prefix-stable: a rollout cannot extend its ids")
        piece = encode(self.tokenizer, text[len(self.rendered):])
        self.ids += piece
        self.mask += [0] * len(piece)
        self.rendered = text

    def prompt(self) -> list[int]:
        self._before_prompt = (len(self.ids), self.rendered)
        self._sync(True)
        return self.ids

    def drop_prompt(self) -> None:
        """Forget a generation prompt that no generation followed (the episode stopped)."""
        if self._before_prompt is not None:
            n, self.rendered = self._before_prompt
            del self.ids[n:], self.mask[n:]
            self._before_prompt = None

    def take(self, generated: list[int] | Generated) -> dict:
        """Append a generated turn (its ids as they are) and return the parsed message."""
        if isinstance(generated, Generated):  # keep the log-probs the ids were sampled with
            self.sampled.append((len(self.ids), generated.logprobs))
            generated = generated.ids
        tok = self.tokenizer
        eos = tok.eos_token_id
        message = self.parse(tok.decode(generated, skip_special_tokens=False))
        self._before_prompt = None
        cut = not generated or generated[-1] != eos
        self.cut_turns += cut
        self.ids += generated
        self.mask += [0 if cut and self.mask_truncated else 1] * len(generated)
        if cut:  # cut by max_new_tokens: close the turn, untrained
            self.ids.append(eos)
            self.mask.append(0)
        self.messages.append(message)
        self.turns += 1
        # the template's text after the turn's end-of-turn token (a newline), not generated
        after = render(tok, self.agent_view(), self.task.tools)
        body = after[len(self.rendered):]
        eot = tok.eos_token or ""
        tail = body[body.rfind(eot) + len(eot):] if eot and eot in body else ""
        piece = encode(tok, tail)
        self.ids += piece
        self.mask += [0] * len(piece)
        self.rendered = after
        return message

    def run_calls(self, message: dict, side: str) -> None:
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            result = self.env.call(fn.get("name"), fn.get("arguments") or "{}", side)
            reply = {"role": "tool", "tool_call_id": call.get("id"), "name": fn.get("name"), "content": result.content}
            if side == "user":
                reply["side"] = "user"
            self.messages.append(reply)

    def ask_user(self, user: UserSimulator, limit: int) -> None:
        """The user's next message, after any user-side tool use; None ends the episode."""
        for _ in range(limit):
            reply = user.reply(self.messages, self.task.record)
            if reply is None:
                self.done = True
                return
            self.messages.append(reply)
            if reply.get("side") != "user":
                return
            self.run_calls(reply, "user")
        self.done = True  # a user that only acts and never speaks: end rather than loop

    def finish(self) -> Rollout:
        self._sync(False)  # the messages after the last generation (tool results, a last user turn)
        reward, failures = reward_of(self.task, self.env, self.messages)
        behav = None
        if self.sampled:
            behav = [0.0] * len(self.ids)
            for start, logprobs in self.sampled:
                behav[start:start + len(logprobs)] = logprobs
        return Rollout(self.task.id, self.task.domain, self.ids, self.mask, self.messages, reward, failures,
                       self.turns, self.truncated, cut_turns=self.cut_turns, behav_logprobs=behav)


def run_episodes(model: Any, tokenizer: Any, tasks: Sequence[Task], user: UserSimulator | None = None,
                 config: RolloutConfig | None = None, parse: Callable[[str], dict] | None = None,
                 generate: Callable[[list[list[int]]], list[list[int]]] | None = None,
                 behaviour: bool = False) -> list[Rollout]:
    """One episode per entry of `tasks` (repeat a task for a group), in lockstep; returns
    the rollouts in the order of `tasks`. `generate` replaces HF generation (a vLLM engine,
    or a scripted policy in tests): prompts in, generated ids (or `Generated`) out.
    `behaviour`: HF generation keeps the sampled tokens' log-probs (`Rollout.behav_logprobs`)."""
    from .tiny import parse_assistant

    config = config or RolloutConfig()
    user = user or ScriptedUser(config.max_turns)
    parse = parse or parse_assistant
    sample = sample_batch if behaviour else generate_batch
    generate = generate or (lambda prompts: sample(model, tokenizer, prompts, config.temperature,
                                                   config.max_new_tokens))
    episodes = [Episode(t, tokenizer, parse, config.mask_truncated) for t in tasks]
    for ep in episodes:
        ep.ask_user(user, config.max_user_actions)
    while True:
        live = [ep for ep in episodes if not ep.done]
        if not live:
            break
        prompts = [ep.prompt() for ep in live]
        for ep, prompt in zip(live, prompts):
            if len(prompt) + config.max_new_tokens > config.max_context:
                ep.done = ep.truncated = True
                ep.drop_prompt()
        live = [ep for ep in live if not ep.done]
        if not live:
            break
        for ep, generated in zip(live, generate([list(ep.ids) for ep in live])):
            message = ep.take(generated)
            if message.get("tool_calls"):
                ep.run_calls(message, "agent")
            else:
                ep.ask_user(user, config.max_user_actions)
            if not ep.done and ep.turns >= config.max_turns:
                ep.done = ep.truncated = True
    return [ep.finish() for ep in episodes]


# ---------------------------------------------------------------- users by name


def make_user(spec: str, max_turns: int, device: str = "cpu", temperature: float = 1.0) -> UserSimulator:
    """'scripted', or the path (or hub name) of a user model."""
    if spec == "scripted":
        return ScriptedUser(max_turns)
    from .user_sim import ModelUser

    return ModelUser.from_pretrained(spec, device=device, max_turns=max_turns, temperature=temperature)


# ---------------------------------------------------------------- Ray


class RayRollouts:
    """Episodes spread over `workers` Ray actors, each with its own copy of the policy:
    the current weights go out with every call (ray.put once), the rollouts come back."""

    def __init__(self, workers: int, model_path: str, sources: Sequence[str], user: str,
                 config: RolloutConfig, domain: str | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        actor = ray.remote(_RolloutActor)
        self.ray = ray
        self.actors = [actor.remote(model_path, list(sources), user, config.model_dump(), domain)
                       for _ in range(workers)]

    def run(self, model: Any, task_ids: Sequence[str], seed: int) -> list[Rollout]:
        weights = self.ray.put({k: v.detach().cpu() for k, v in model.state_dict().items()})
        shares = [list(range(i, len(task_ids), len(self.actors))) for i in range(len(self.actors))]
        futures = [a.run.remote(weights, [task_ids[j] for j in share], seed + i)
                   for i, (a, share) in enumerate(zip(self.actors, shares)) if share]
        out: list[Rollout | None] = [None] * len(task_ids)
        for share, got in zip([s for s in shares if s], self.ray.get(futures)):
            for j, rollout in zip(share, got):
                out[j] = rollout
        return [r for r in out if r is not None]


class _RolloutActor:
    def __init__(self, model_path: str, sources: list[str], user: str, config: dict, domain: str | None) -> None:
        import torch

        from .sft import load_model_and_tokenizer

        torch.set_num_threads(1)
        self.model, self.tokenizer = load_model_and_tokenizer(model_path)
        self.model.eval()
        tasks, _ = load_tasks(sources, domain)
        self.tasks = {t.id: t for t in tasks}
        self.config = RolloutConfig.model_validate(config)
        self.user = make_user(user, self.config.max_turns)

    def run(self, weights: Mapping, task_ids: list[str], seed: int) -> list[Rollout]:
        import torch

        self.model.load_state_dict(weights)
        torch.manual_seed(seed)
        return run_episodes(self.model, self.tokenizer, [self.tasks[i] for i in task_ids], self.user, self.config)


# ---------------------------------------------------------------- vLLM (optional, GPU)


class VLLMGenerator:
    """Generation through vLLM (an optional extra, GPU only; imported lazily): a drop-in
    `generate` for run_episodes. The engine runs in this process
    (VLLM_ENABLE_V1_MULTIPROCESSING=0, as colocated RL trainers run it), so `sync(weights)`
    hands the trained policy's tensors to the engine's model without a copy through a pipe.
    Weight loading goes through `LLM.apply_model` (vLLM's hook for running a function on the
    model in each worker) or, on older versions, the V0 model runner; when neither exists
    the failure says so instead of generating from stale weights."""

    def __init__(self, model_path: str, config: RolloutConfig, gpu_memory_utilization: float = 0.3,
                 ranks: int = 1, seed: int = 0, **engine_args: Any) -> None:
        """`engine_args` go to `vllm.LLM` as they are (async GRPO's actors ask for logprobs_mode)."""
        import os

        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise RuntimeError("engine 'vllm' needs the vllm package (pip install vllm, GPU)") from exc
        # Under torchrun every rank runs its own engine on its own GPU: vLLM's "external
        # launcher" takes the placement from torch.distributed instead of spawning workers.
        launcher = {"distributed_executor_backend": "external_launcher"} if ranks > 1 else {}
        self.llm = LLM(model=model_path, gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True,
                       seed=seed, **launcher, **engine_args)
        eos = self.llm.get_tokenizer().eos_token_id
        # every setting explicit, as in sampling_config: plain sampling at the temperature
        self.params = SamplingParams(temperature=config.temperature, top_k=-1, top_p=1.0, min_p=0.0,
                                     repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0,
                                     max_tokens=config.max_new_tokens, stop_token_ids=[eos])
        self.eos = eos

    def sync(self, weights: Mapping[str, Any]) -> None:
        """Load the policy's current weights (name -> tensor, HF names) into the engine, and
        drop the prefix cache computed with the old ones."""
        items = list(weights.items())
        apply = getattr(self.llm, "apply_model", None)
        if callable(apply):
            apply(functools.partial(_load_weights, items))
        else:
            try:
                model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
            except AttributeError as exc:
                raise RuntimeError(f"cannot push weights into this vLLM version: {exc}") from exc
            _load_weights(items, model)
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if callable(reset):
            reset()

    def __call__(self, prompts: list[list[int]]) -> list[list[int]]:
        from vllm.inputs import TokensPrompt

        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], self.params, use_tqdm=False)
        return [list(o.outputs[0].token_ids) for o in outs]


def _load_weights(items: list[tuple[str, Any]], model: Any) -> None:
    """Run inside vLLM's worker: its model maps HF names onto its own (fused) layers."""
    model.load_weights(weights=iter(items))


def dump_rollouts(path: Path, step: int, rollouts: Sequence[Rollout]) -> None:
    """Append the episodes of a step (messages, reward) to a JSONL file, for inspection."""
    with path.open("a", encoding="utf-8") as fh:
        for r in rollouts:
            fh.write(json.dumps({"step": step, "task": r.task_id, "domain": r.domain, "reward": r.reward,
                                 "turns": r.turns, "failures": r.failures[:3], "messages": r.messages},
                                sort_keys=True, ensure_ascii=False) + "\n")
