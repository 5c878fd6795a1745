"""Run data for training (trainer/data.py) and the SFT loop (trainer/sft.py) on a tiny model:
the loss falls, micro-batching does not change a step, resume equals an uninterrupted run."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.trainer import make_run, one_torch_thread  # noqa: F401
from trainer.data import RunDirError, held_out, load_conversations, split
from trainer.sft import (
    SFTConfig,
    SFTError,
    epoch_order,
    evaluate,
    load_config,
    load_model_and_tokenizer,
    masked_ce_sum,
    tokenize_all,
    train_sft,
)
from trainer.tiny import build_tiny, corpus_texts
from trainer.tokenize import collate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"), n=12)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, run_dir):
    pairs = []
    for role in ("agent", "user"):
        pairs += [(c.messages, c.tools) for c in load_conversations(run_dir, role)[0]]
    return build_tiny(tmp_path_factory.mktemp("tiny"), corpus_texts(pairs), vocab_size=400,
                      hidden=32, layers=2, heads=2, max_positions=1024, seed=0)


def config(model_dir, run_dir, out, **kw) -> SFTConfig:
    base = {"model": str(model_dir), "data": str(run_dir), "out": str(out), "role": "agent", "batch_size": 2,
            "grad_accum": 2, "epochs": 2, "lr": 5e-3, "max_length": 512, "seed": 3}
    return SFTConfig(**{**base, **kw})


def params(model_path):
    model, _ = load_model_and_tokenizer(model_path)
    return model.state_dict()


# ---------------------------------------------------------------- data


def test_load_conversations_skips_bad_records_with_reasons(tmp_path):
    run = make_run(tmp_path / "run", n=3, broken=True)
    conversations, problems = load_conversations(run, "agent")
    assert [c.id for c in conversations] == ["toy-000000", "toy-000001", "toy-000002"]
    assert len(problems) == 2
    assert problems[0].startswith("line 4: not valid JSON")
    assert "toy-000003" in problems[1] and "no result" in problems[1]
    users, _ = load_conversations(run, "user")
    assert users[0].messages[0]["role"] == "system" and users[0].tools == []
    assert users[1].tools and users[1].tools[0]["function"]["name"] == "check_phone"
    with pytest.raises(RunDirError):
        load_conversations(tmp_path / "nowhere", "agent")
    with pytest.raises(ValueError, match="role"):
        load_conversations(run, "critic")


def test_split_is_by_id_hash(run_dir):
    conversations, _ = load_conversations(run_dir, "agent")
    train, held = split(conversations, 0.3)
    assert len(train) + len(held) == len(conversations) and held and train
    # membership depends on the id alone: the same on a reversed subset, and for the other view
    _, again_held = split(list(reversed(conversations[:8])), 0.3)
    assert {c.id for c in again_held} == {c.id for c in held if int(c.id[-6:]) < 8}
    users, _ = load_conversations(run_dir, "user")
    assert {c.id for c in split(users, 0.3)[1]} == {c.id for c in held}
    assert split(conversations, 0.0)[1] == [] and split(conversations, 1.0)[0] == []
    assert held_out("x", 0.5, salt="a") in (True, False)
    with pytest.raises(ValueError):
        held_out("x", 1.5)


# ---------------------------------------------------------------- config


def test_load_config_yaml_and_json(tmp_path, model_dir, run_dir):
    (tmp_path / "c.yaml").write_text(f"model: {model_dir}\ndata: {run_dir}\nout: {tmp_path / 'o'}\n"
                                     "role: user\nbatch_size: 4\ngrad_accum: 32\nepochs: 10\nlr: 5.0e-6\n")
    c = load_config(tmp_path / "c.yaml")
    assert (c.role, c.batch_size, c.grad_accum, c.epochs, c.lr, c.max_length) == ("user", 4, 32, 10, 5e-6, 32768)
    (tmp_path / "c.json").write_text(json.dumps({"model": "m", "data": "d", "out": "o", "seed": 7}))
    assert load_config(tmp_path / "c.json").seed == 7
    (tmp_path / "bad.yaml").write_text("model: m\ndata: d\nout: o\nbatch_size: 0\n")
    with pytest.raises(SFTError, match="batch_size"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("model: m\ndata: d\nout: o\nlearning_rate: 1\n")
    with pytest.raises(SFTError, match="learning_rate"):
        load_config(tmp_path / "typo.yaml")
    with pytest.raises(SFTError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- loss


def test_masked_cross_entropy_by_hand(model_dir, run_dir):
    model, tok = load_model_and_tokenizer(model_dir)
    conversations, _ = load_conversations(run_dir, "agent")
    data, skipped = tokenize_all(tok, conversations[:2], 512)
    assert not skipped
    batch = collate(data, tok.pad_token_id)
    loss_sum, n = masked_ce_sum(model, batch)
    want, count = 0.0, 0
    with torch.no_grad():
        for t in data:  # one sequence at a time, no padding: -log p(token t | tokens < t) where trained
            logp = torch.log_softmax(model(input_ids=torch.tensor([t.input_ids])).logits[0], dim=-1)
            for pos in range(1, len(t)):
                if t.loss_mask[pos]:
                    want -= float(logp[pos - 1, t.input_ids[pos]])
                    count += 1
    assert n == count == sum(d.n_loss_tokens for d in data)
    assert math.isclose(loss_sum.item(), want, rel_tol=1e-4)


def test_sft_decreases_the_training_loss(tmp_path, model_dir, run_dir):
    cfg = config(model_dir, run_dir, tmp_path / "out", epochs=4, lr=1e-2)
    model, tok = load_model_and_tokenizer(model_dir)
    train, _ = tokenize_all(tok, split(load_conversations(run_dir, "agent")[0], 0.0)[0], 512)
    before = evaluate(model, train, 4, tok.pad_token_id, "cpu")
    result = train_sft(cfg)
    assert result.steps == 4 * math.ceil(12 / 4) and result.final is not None
    trained, _ = load_model_and_tokenizer(result.final)
    after = evaluate(trained, train, 4, tok.pad_token_id, "cpu")
    assert after < before - 1.0, (before, after)
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, result.steps + 1))
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert json.loads((tmp_path / "out" / "data.json").read_text())["train"] == 12


def test_micro_batching_does_not_change_a_step(tmp_path, model_dir, run_dir):
    """4 sequences per step as 1x4, 2x2 or 4x1: the loss is normalised over the step's
    tokens, so the steps agree up to float rounding (which Adam amplifies a little)."""
    states, losses = [], []
    for bs, acc in ((4, 1), (2, 2), (1, 4)):
        out = tmp_path / f"o{bs}"
        train_sft(config(model_dir, run_dir, out, batch_size=bs, grad_accum=acc, epochs=1, lr=1e-2,
                         save_every=2), stop_at=2)
        states.append(params(out / "checkpoints" / "step-00000002"))
        losses.append([json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()])
    for other, other_losses in zip(states[1:], losses[1:]):
        assert all(torch.allclose(states[0][k], other[k], atol=1e-4) for k in states[0])
        assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(losses[0], other_losses))


def test_resume_equals_an_uninterrupted_run(tmp_path, model_dir, run_dir):
    whole = tmp_path / "whole"
    cut = tmp_path / "cut"
    done = train_sft(config(model_dir, run_dir, whole, save_every=2, held_out=0.25))
    first = train_sft(config(model_dir, run_dir, cut, save_every=2, held_out=0.25), stop_at=3)
    assert first.steps == 3 and first.final is None  # "killed" after step 3, last checkpoint at 2
    with (cut / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 4, "lo')  # and in the middle of writing a line
    resumed = train_sft(config(model_dir, run_dir, cut, save_every=2, held_out=0.25))
    assert resumed.resumed_from == 2 and resumed.steps == done.steps > 3
    a, b = params(whole / "final"), params(cut / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (whole / "metrics.jsonl").read_text() == (cut / "metrics.jsonl").read_text()
    assert "eval_loss" in (whole / "metrics.jsonl").read_text()
    # a different setting in the same out folder is refused, a checkpointing change is not
    with pytest.raises(SFTError, match="lr"):
        train_sft(config(model_dir, run_dir, cut, save_every=2, held_out=0.25, lr=1.0))
    again = train_sft(config(model_dir, run_dir, cut, save_every=3, held_out=0.25))
    assert again.resumed_from == again.steps == done.steps  # complete: nothing to redo


def test_no_training_data_is_a_clear_error(tmp_path, model_dir, run_dir):
    with pytest.raises(SFTError, match="no training data.*max_length"):
        train_sft(config(model_dir, run_dir, tmp_path / "o", max_length=8))
    with pytest.raises(SFTError, match="no such run directory"):
        train_sft(config(model_dir, tmp_path / "missing", tmp_path / "o2"))
    with pytest.raises(SFTError, match="cannot load model"):
        train_sft(config(tmp_path / "no-model", run_dir, tmp_path / "o3"))


def test_epoch_order_is_a_seeded_permutation():
    a = epoch_order(10, seed=1, epoch=0)
    assert sorted(a) == list(range(10)) and a == epoch_order(10, seed=1, epoch=0)
    assert a != epoch_order(10, seed=1, epoch=1) and a != epoch_order(10, seed=2, epoch=0)


def test_learning_rate_schedule_by_hand(model_dir, run_dir, tmp_path):
    from trainer.sft import lr_at

    c = config(model_dir, run_dir, tmp_path, lr=1.0, warmup_steps=2, schedule="cosine")
    # warmup 1/2, 2/2; then cosine over the 4 remaining steps of 6: 1, cos(pi/4)..., 0 at the end
    got = [lr_at(c, s, 6) for s in range(7)]
    want = [0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0]
    assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(got, want))
    assert lr_at(config(model_dir, run_dir, tmp_path, lr=0.1), 5, 6) == 0.1


def test_several_runs_make_one_mixed_pool(tmp_path, model_dir, run_dir):
    """`data: [run, run]` (mixed-domain SFT): every run's conversations in one pool; an id
    already seen in an earlier run is left out with the reason."""
    other = make_run(tmp_path / "other", n=6, seed=5)
    lines = (other / "instances.jsonl").read_text().replace('"toy-', '"other-')
    (other / "instances.jsonl").write_text(lines)
    result = train_sft(config(model_dir, run_dir, tmp_path / "out", data=[str(run_dir), str(other), str(run_dir)],
                              epochs=1))
    assert result.train_size == 18 and result.steps == math.ceil(18 / 4)
    assert len(result.skipped) == 12 and all(s.endswith("duplicate id") for s in result.skipped)
    data = json.loads((tmp_path / "out" / "data.json").read_text())
    assert data["run"] == [str(run_dir), str(other), str(run_dir)] and data["train"] == 18


def test_first_call_view_is_the_request_and_the_call(tmp_path, model_dir, run_dir):
    """SFTConfig.view first_call: the curriculum's short stage trains on the user's words
    and the first tool call only, no system prompt or tool schemas."""
    from trainer.data import first_call_view

    convs, _ = load_conversations(run_dir, "agent")
    view = first_call_view(convs[0])
    assert [m["role"] for m in view.messages] == ["user", "assistant"] and view.tools == []
    assert view.messages[-1]["tool_calls"] and view.id == convs[0].id
    no_call = type(convs[0])(convs[0].id, 0, "agent", [m for m in convs[0].messages if not m.get("tool_calls")
                                                        and m["role"] != "tool"], [], {})
    assert first_call_view(no_call) is None
    framed = first_call_view(convs[0], in_context=True)  # the same turns, in the episode's frame
    assert framed.messages == convs[0].messages[:len(framed.messages)] and framed.tools == convs[0].tools
    assert [m["role"] for m in framed.messages if m["role"] != "system"] == ["user", "assistant"]
    reply = first_call_view(convs[0], through="reply")  # on past the result to the words that repeat it
    roles = [m["role"] for m in reply.messages]
    assert roles[:2] == ["user", "assistant"] and roles[-2:] == ["tool", "assistant"] and reply.tools == []
    assert reply.messages == [m for m in convs[0].messages if m["role"] != "system"][:len(roles)]
    assert reply.messages[-1]["content"] and not reply.messages[-1].get("tool_calls")
    assert not any(m["role"] == "assistant" and m.get("content") and before["role"] == "tool"
                   for before, m in zip(reply.messages, reply.messages[1:-1]))  # the first such words
    assert first_call_view(no_call, through="reply") is None
    silent = type(convs[0])(convs[0].id, 0, "agent", view.messages, [], {})  # a call, never a word after it
    assert first_call_view(silent, through="reply") is None
    both = train_sft(config(model_dir, run_dir, tmp_path / "both", view="full_and_first_calls", epochs=1,
                            held_out=0.5))
    data = json.loads((tmp_path / "both" / "data.json").read_text())
    assert both.train_size + data["held_out"] == 24  # each conversation and its first call, together
    assert both.train_size % 2 == 0
    replies = train_sft(config(model_dir, run_dir, tmp_path / "replies", view="full_and_first_replies", epochs=1))
    assert replies.train_size == 24
    result = train_sft(config(model_dir, run_dir, tmp_path / "out", view="first_call", epochs=1))
    assert result.train_size == 12 and result.final is not None
    model, tok = load_model_and_tokenizer(result.final)
    (seq,) = tokenize_all(tok, [view], 512)[0]
    assert len(seq.input_ids) < 80 and "get_order" in tok.decode(seq.input_ids)
