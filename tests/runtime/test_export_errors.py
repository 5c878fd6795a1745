"""Erroneous turns are not trained (issue 14): `eigen export --errors mask|drop|keep` in every
format and view, and the trainer's loss mask leaving a masked turn out.

The run directory is written by hand from the mini bank: every tool call is a real call on a
fork of the world and `calls` is what `rules.dialog_of` derives, as a run writes them. One
record recovers from a schema error, one from an unknown tool and a refused precondition (and
its user runs an unknown tool of their own), one holds a turn a repair marked
`"trainable": false`, one has no error at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eigenlang import load_domain
from runtime.env import Environment
from runtime.env.rules import dialog_of
from runtime.store.export import WEIGHT, export_run, link_problems, view_of
from runtime.store.run_store import sealed

MINI = str(Path(__file__).resolve().parents[1] / "fixtures" / "mini")


class Script:
    """A dialogue played against a fork of the world, as the run writes it."""

    def __init__(self, env: Environment) -> None:
        self.env = env.fork()
        self.messages: list[dict] = [{"role": "system", "content": "Bank policy."}]
        self.n = 0

    def say(self, role: str, text: str, **extra) -> "Script":
        self.messages.append({"role": role, "content": text, **extra})
        return self

    def call(self, name: str, arguments, side: str = "agent") -> "Script":
        self.n += 1
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        result = self.env.call(name, text, side)
        tc = {"id": f"call_{self.n}", "type": "function", "function": {"name": name, "arguments": text}}
        mark = {"side": "user"} if side == "user" else {}
        self.messages.append({"role": "user" if side == "user" else "assistant", "content": None,
                              "tool_calls": [tc], **mark})
        self.messages.append({"role": "tool", "tool_call_id": tc["id"], "name": name, "content": result.content, **mark})
        return self


@pytest.fixture(scope="module")
def world():
    spec, diags = load_domain(MINI)
    assert spec is not None, diags
    env = Environment.from_domain(spec, 0, size=1.0)
    accounts = [a for a in env.db.to_json()["accounts"].values() if a["status"] == "open" and a["balance"] > 20]
    return spec, env, accounts[0]["account_id"], accounts[1]["account_id"]


def _records(world) -> list[dict]:
    spec, env, src, dst = world
    scripts = [
        # 0: a schema error (a number for an id), then the right call
        Script(env).say("user", f"Please move 5 from {src} to {dst}.")
        .call("get_account", {"account_id": 582}).call("get_account", {"account_id": src})
        .say("assistant", "I'm about to move 5. Shall I go ahead?").say("user", "Yes, go ahead.")
        .call("transfer", {"src": src, "dst": dst, "amount": 5.0}).say("assistant", "Done."),
        # 1: an unknown tool, a refused precondition, the user's unknown phone tool, then right
        Script(env).say("user", f"Move 7 from {src} to {dst}.")
        .call("get_acount", {"account_id": src}).call("get_account", {"account_id": src})
        .say("assistant", "Shall I move 7?").say("user", "Yes.")
        .call("transfer", {"src": src, "dst": dst, "amount": 10 ** 9})
        .call("transfer", {"src": src, "dst": dst, "amount": 7.0})
        .say("assistant", "Done. Could you check your banking app?")
        .call("check_app", {}, side="user").say("user", "It shows the transfer.")
        .say("assistant", "Great."),
        # 2: a turn a repair kept for context but marked wrong
        Script(env).say("user", f"What is the balance of {src}?").call("get_account", {"account_id": src})
        .say("assistant", "It is 1,000,000.", trainable=False).say("user", "Really?")
        .say("assistant", "Sorry, let me read it again properly."),
        # 3: no error at all
        Script(env).say("user", f"Is {dst} open?").call("get_account", {"account_id": dst})
        .say("assistant", "Yes, it is open."),
    ]
    records = []
    for i, s in enumerate(scripts):
        dialog = dialog_of(s.messages, spec, env)
        records.append({"index": i, "id": f"err-{i}", "seed": i, "domain": "mini", "accepted": True,
                        "task": {"intent": "transfer_money", "user_instructions": "You are Ana."},
                        "user_instructions": "You are Ana, a calm customer.",
                        "persona": {"name": "Ana", "tone": "calm", "expertise": "expert", "constraints": []},
                        "messages": dialog["messages"], "calls": dialog["calls"], "turns": dialog["turns"],
                        "tools": env.tool_schemas("agent"), "user_tools": [],
                        "difficulty": {"level": "easy"}})
    return records


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    path = tmp_path_factory.mktemp("errors")
    lines = [json.dumps(sealed(r), sort_keys=True, separators=(",", ":")) for r in _records(world)]
    (path / "instances.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (path / "manifest.json").write_text(json.dumps({"format": 2, "domain": "mini", "n": len(lines)}))
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _calls(messages: list[dict]) -> list[dict]:
    return [tc["function"] for m in messages for tc in m.get("tool_calls") or []]


BAD = ('{"account_id": 582}', "get_acount", '"amount": 1000000000')


def _is_bad(fn: dict) -> bool:
    return any(b in fn["arguments"] or b == fn["name"] for b in BAD)


def test_the_record_holds_the_errors_it_should(world):
    records = _records(world)
    errors = [[c["error"] for c in r["calls"] if not c["ok"]] for r in records]
    assert errors == [["schema"], ["unknown_tool", "precondition", "unknown_tool"], [], []]


def test_mask_marks_each_erroneous_turn_with_weight_0(run, tmp_path):
    out = tmp_path / "mask.jsonl"
    stats: dict = {}
    assert export_run(run, "openai", out=out, stats=stats) == 4
    rows = _read(out)
    for row in rows:
        for m in row["messages"]:
            bad = m["role"] == "assistant" and (any(_is_bad(fn) for fn in _calls([m])) or m.get("content") == "It is 1,000,000.")
            assert (m.get(WEIGHT) == 0) == bad, m
            assert WEIGHT not in m or m["role"] == "assistant"  # OpenAI knows weight on assistant messages only
        assert not link_problems(row["messages"])
    assert stats["untrained"] == 4  # schema error, unknown tool, refused transfer, the marked turn
    assert sum(1 for fn in _calls(rows[1]["messages"]) if _is_bad(fn)) == 2  # still there, with their results


def test_drop_removes_the_turns_and_their_results(run, tmp_path):
    out = tmp_path / "drop.jsonl"
    stats: dict = {}
    export_run(run, "openai", out=out, errors="drop", stats=stats)
    rows = _read(out)
    kept = _read(_export(run, tmp_path, "keep"))
    for row, full in zip(rows, kept):
        assert not any(_is_bad(fn) for fn in _calls(row["messages"]))
        assert not any(m.get(WEIGHT) == 0 for m in row["messages"])
        assert not link_problems(row["messages"])  # every remaining call is answered, every result has its call
        results = [m for m in row["messages"] if m["role"] == "tool"]
        assert len(results) == len(_calls(row["messages"]))
        assert not any(m.get("content") == "It is 1,000,000." for m in row["messages"])
    assert [len(r["messages"]) for r in rows] == [len(f["messages"]) - d for f, d in zip(kept, (2, 4, 1, 0))]
    assert stats["dropped"] == 4  # the agent's three bad calls and the user's unknown tool


def _export(run, tmp_path, errors, fmt="openai", role="agent") -> Path:
    out = tmp_path / f"{fmt}-{role}-{errors}"
    export_run(run, fmt, role=role, out=out, errors=errors)
    return out


def test_keep_trains_on_everything(run, tmp_path):
    rows = _read(_export(run, tmp_path, "keep"))
    assert not any(WEIGHT in m for row in rows for m in row["messages"])
    assert sum(_is_bad(fn) for row in rows for fn in _calls(row["messages"])) == 3


def test_sharegpt_flags_the_function_call(run, tmp_path):
    for errors, bad_weights in (("mask", {0}), ("keep", {None})):
        rows = _read(_export(run, tmp_path, errors, "sharegpt"))
        seen = set()
        for row in rows:
            for turn in row["conversations"]:
                if turn["from"] == "function_call":
                    call = json.loads(turn["value"])
                    fn = {"name": call["name"], "arguments": json.dumps(call["arguments"])}
                    if _is_bad(fn):
                        seen.add(turn.get(WEIGHT))
                    else:
                        assert WEIGHT not in turn
        assert seen == bad_weights
    rows = _read(_export(run, tmp_path, "drop", "sharegpt"))
    calls = [json.loads(t["value"]) for row in rows for t in row["conversations"] if t["from"] == "function_call"]
    assert calls and not any(c["name"] == "get_acount" or c["arguments"].get("account_id") == 582 for c in calls)


def test_hf_keeps_the_weight_in_the_messages(run, tmp_path):
    datasets = pytest.importorskip("datasets")
    data = datasets.load_from_disk(str(_export(run, tmp_path, "mask", "hf")))
    weights = [m.get(WEIGHT) for row in data for m in json.loads(row["messages"])]
    assert weights.count(0) == 4


def test_the_user_view_masks_the_users_own_errors(run, tmp_path):
    rows = _read(_export(run, tmp_path, "mask", role="user"))
    masked = [m for row in rows for m in row["messages"] if m.get(WEIGHT) == 0]
    assert [fn["name"] for fn in _calls(masked)] == ["check_app"]  # the agent's errors are not the user's
    rows = _read(_export(run, tmp_path, "drop", role="user"))
    assert not any(fn["name"] == "check_app" for row in rows for fn in _calls(row["messages"]))


def test_the_cli_chooses_and_refuses_a_bad_mode(run, tmp_path):
    import typer

    from runtime.cli import data_cmds

    app = typer.Typer()
    data_cmds.register(app)
    runner = CliRunner()
    ok = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "x.jsonl"), "--errors", "drop"])
    assert ok.exit_code == 0 and "4 erroneous call(s) dropped" in ok.output, ok.output
    ok = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "y.jsonl")])
    assert ok.exit_code == 0 and "4 erroneous turn(s) masked" in ok.output, ok.output
    bad = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "z.jsonl"), "--errors", "sometimes"])
    assert bad.exit_code == 2 and "mask, drop, keep" in bad.output


def test_the_loss_mask_leaves_a_masked_turn_out(run):
    pytest.importorskip("transformers")
    from trainer.data import load_conversations
    from trainer.tiny import corpus_texts, train_tokenizer
    from trainer.tokenize import tokenize_conversation

    conversations, problems = load_conversations(run, "agent")  # the trainer reads with errors masked
    assert not problems
    tokenizer = train_tokenizer(corpus_texts([(c.messages, c.tools) for c in conversations]), vocab_size=400)
    record = next(c.record for c in conversations if c.id == "err-0")
    for errors in ("mask", "keep"):
        messages, tools = view_of(record, "agent", errors)
        tok = tokenize_conversation(tokenizer, messages, tools)
        starts = [0] + tok.message_ends[:-1]
        for m, start, end in zip(messages, starts, tok.message_ends):
            learned = sum(tok.loss_mask[start:end])
            if m["role"] != "assistant":
                assert learned == 0
            elif _is_bad(_calls([m])[0]) if m.get("tool_calls") else False:
                assert (learned == 0) == (errors == "mask")  # masked: none of its tokens; kept: learned
            else:
                assert learned > 0
