"""The user simulator as a model (trainer/user_sim.ModelUser) on telecom, where the user
acts on their own phone (dual control): SFT of a user model on the role-flipped view, and
episodes in which the model user's tool calls run on the environment's user side.

A tiny random model says nothing useful, so the dual-control episode is driven by models
that replay a recorded conversation token for token (tests.trainer.recorded_turns): the
policy replays the agent's turns, the user model the user's (its view, as the export
writes it). The verifier then passes only if the user's phone actions really ran on the
fork of the environment; with the user's tool calls dropped, it fails."""

from __future__ import annotations

import pytest

from tests.trainer import one_torch_thread, recorded_turns  # noqa: F401

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from runtime.store.export import agent_view, user_view  # noqa: E402
from trainer.rollout import RolloutConfig, load_tasks, run_episodes  # noqa: E402
from trainer.sft import SFTConfig, load_model_and_tokenizer, train_sft  # noqa: E402
from trainer.tiny import build_tiny_from_run  # noqa: E402
from trainer.user_sim import ModelUser  # noqa: E402


@pytest.fixture(scope="module")
def telecom(tmp_path_factory):
    from tests.trainer.test_grpo_loop import make_eigen_run

    base = tmp_path_factory.mktemp("telecom")
    run = make_eigen_run(base / "run", "telecom", 12)
    model_dir, _ = build_tiny_from_run(run, base / "tiny", vocab_size=1024, hidden=32)
    tasks, problems = load_tasks([run])
    assert tasks and not problems
    dual = [t for t in tasks if any(m.get("side") == "user" for m in t.record["messages"])]
    assert dual, "the telecom run has no task with user-side tool use"
    return base, run, model_dir, dual


def user_tools(task) -> list[dict]:
    return [t if t.get("type") == "function" else {"type": "function", "function": t}
            for t in task.record.get("user_tools") or []]


def replayed_episode(model_dir, task, drop_user_calls: bool = False):
    model, tok = load_model_and_tokenizer(model_dir)
    view = user_view(task.record)
    if drop_user_calls:  # the user model says its words but never touches the phone
        view = [m for m in view if not m.get("tool_calls") and m["role"] != "tool"]
    user = ModelUser(model, tok, max_turns=10, generate=recorded_turns(tok, view, user_tools(task)))
    policy = recorded_turns(tok, agent_view(task.record["messages"]), task.tools)
    (r,) = run_episodes(model, tok, [task], user, RolloutConfig(max_turns=12, max_context=1 << 16), generate=policy)
    return r


def test_a_model_user_acts_on_its_phone_and_the_task_passes(telecom):
    _, _, model_dir, dual = telecom
    for task in dual[:2]:
        r = replayed_episode(model_dir, task)
        user_calls = [c["function"]["name"] for m in r.messages if m.get("side") == "user" and m["role"] == "user"
                      for c in m.get("tool_calls") or []]
        recorded = [c["name"] for c in task.record["gold_calls"] if c.get("side") == "user"]
        assert user_calls == recorded and r.reward == 1.0, r.failures
        results = [m for m in r.messages if m.get("side") == "user" and m["role"] == "tool"]
        assert len(results) == len(recorded) and all("error" not in str(m["content"]).lower()[:20] for m in results)


def test_without_the_users_phone_actions_the_verifier_fails(telecom):
    _, _, model_dir, dual = telecom
    r = replayed_episode(model_dir, dual[0], drop_user_calls=True)
    assert r.reward == 0.0 and r.failures


def test_sft_of_the_user_model_then_sampled_episodes(telecom):
    """role: user trains on the flipped view; the trained model then plays the user of real
    sampled episodes (whatever it says, the episodes end and are scored)."""
    base, run, model_dir, dual = telecom
    out = base / "sft_user"
    result = train_sft(SFTConfig(model=str(model_dir), data=str(run), out=str(out), role="user", batch_size=4,
                                 epochs=1, lr=3e-3, max_length=4096))
    assert result.train_size == 12 and result.final is not None
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == result.steps == 3
    policy, tok = load_model_and_tokenizer(model_dir)
    user = ModelUser.from_pretrained(str(result.final), max_turns=3, max_new_tokens=16)
    got = run_episodes(policy, tok, dual[:1] * 2, user, RolloutConfig(max_turns=3, max_new_tokens=8))
    assert len(got) == 2 and all(r.reward in (0.0, 1.0) and r.turns >= 1 for r in got)
    assert all(m["role"] == "user" for r in got for m in r.messages if m.get("side") == "user" and "tool_calls" in m)
