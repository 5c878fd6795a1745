"""Offline dialogues a reader would accept (issue 14): 1,000 rendered per domain from the
domain's own recipes (RandomPool → UserIntent → DialogSynthesis, called directly on a small
world), each checked for who is calling, template grammar, JSON in the customer's mouth, the
amounts a write moves said before it, and follow-up questions.

What a write moves is found here on its own: every call of the dialogue is replayed on a fresh
fork and the state difference of each successful write is read (the payments, refunds and
charges it adds, the price differences it records), independently of how the agent worked it
out (runtime/workers/offline/effects.py).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from eigenlang import load_domain
from runtime.env import Environment
from runtime.env.impls import load_impl
from runtime.env.rules import state_diff
from runtime.env.verifier import normalise_text, said_in
from runtime.workers.base import World, WorkerContext, node_rng
from runtime.workers.offline.dialog import Dialogue
from runtime.workers.offline.intent import OfflineUserIntent
from runtime.workers.offline.pool import OfflineRandomPool

N = 1000
MINI = str(Path(__file__).resolve().parents[1] / "fixtures" / "mini")
DOMAINS = {"airline": "airline", "retail": "retail", "telecom": "telecom", "mini": MINI}
SIZE = {"mini": 1.0}  # the bank at 0.1 has three accounts, too few to move money between
# faults that change what the agent says before a write, on purpose (the validators catch them)
SAYING_FAULTS = {"unconfirmed_write", "wrong_write", "ungrounded_claim"}

# Template grammar that must never appear (each once seen in a run, issue 14)
NEVER = {
    "I'd like to <preposition>": r"\bI'd like to (on|in|for|at|with|from|to)\b",
    "You <third person verb>": r"\bYou (is|does|has|prefers|wants|shares|was)\b",
    "a <vowel adjective>": r"\ba (impatient|anxious|angry|expert|intermediate|easy|hour)\b",
    "My <verb phrase> is": r"\bMy [a-z ]+ to [a-z]+ is\b",
    "(s) plurals": r"\(s\)",
    "went through": r"went through",
    "key: value; key: value": r"\b[a-z][a-z ]*: [^.;?!]+; [a-z][a-z ]*:",
    "python repr": r"'\w+': ",
    "arrows": r"->",
    "None as a value": r"\b(is|are|be) (none|None)\b",
    "space before comma": r" ,",
    "doubled word": r"\b(the|a|with|is|for) \1\b",
    "doubled spaces": r"\S  +\S",
    "snake_case subject": r"\bthe [a-z]+_[a-z_]+ (is|are|will)\b",
    "raw booleans": r"\b(True|False)\b",
    "singular one with plural": r"\b(there are|are) 1\b",
}


def _holder_first_name(db: dict, context: dict) -> str:
    """The account holder's first name, read from the world by hand for each domain."""
    if "user_id" in context:  # airline, retail
        return db["users"][context["user_id"]]["name"]["first_name"]
    if "customer_id" in context:  # telecom
        customer = next(c for c in db["customers"] if c["customer_id"] == context["customer_id"])
        return customer["full_name"].split()[0]
    account = db["accounts"][context.get("account_id") or context["src"]]  # mini
    return account["owner"].capitalize()


class Rendered:
    def __init__(self, name: str, ref: str) -> None:
        self.name = name
        self.spec, diags = load_domain(ref)
        assert self.spec is not None, diags
        self.env = Environment.from_domain(self.spec, 1, size=SIZE.get(name, 0.1))
        self.db = self.env.db.to_json()
        self.world = World(self.spec, self.db, self.env.user_db.to_json() if self.env.user_db else None,
                           self.spec.now)
        self.intents = load_impl(self.spec.offline_task).__globals__["INTENTS"]
        self.items: list[tuple[dict, dict, Dialogue]] = []  # (seed, task, dialogue)
        for i in range(N):
            seed = OfflineRandomPool().run(self.ctx(i, "RandomPool"), {})["ScenarioSeed"]
            try:
                task = OfflineUserIntent().run(self.ctx(i, "UserIntent"), {"ScenarioSeed": seed})["TaskSpec"]
            except ValueError:  # a recipe whose context does not fit this small world
                continue
            dialogue = Dialogue(self.ctx(i, "DialogSynthesis"), task)
            dialogue.run()
            self.items.append((seed, task, dialogue))

    def ctx(self, i: int, node: str) -> WorkerContext:
        return WorkerContext(self.spec, self.env, self.world, node_rng(0, i, node), node, node, 0, {})


@pytest.fixture(scope="module", params=sorted(DOMAINS))
def rendered(request) -> Rendered:
    return Rendered(request.param, DOMAINS[request.param])


def texts(task: dict, dialogue: Dialogue) -> list[tuple[str, str]]:
    """(who, text): the user's instructions, then every user and assistant message."""
    out = [("instructions", task["user_instructions"])]
    out += [(m["role"], m["content"]) for m in dialogue.messages[1:]
            if m["role"] in ("user", "assistant") and isinstance(m.get("content"), str) and m.get("side") != "user"]
    return out


def test_most_scenarios_become_dialogues(rendered):
    assert len(rendered.items) >= 0.9 * N
    intents = Counter(task["intent"] for _, task, _ in rendered.items)
    assert set(intents) == set(rendered.intents), f"never picked: {set(rendered.intents) - set(intents)}"
    if rendered.name == "telecom":  # broken phones are built, so fixing one is a task too
        assert intents["fix_phone"] > 0


def test_the_persona_is_the_account_holder(rendered):
    for seed, task, _ in rendered.items:
        first = _holder_first_name(rendered.db, seed["context"])
        assert task["persona"]["name"].split()[0] == first
        assert re.match(rf"You are {first}\b", task["user_instructions"]), task["user_instructions"][:80]


@pytest.mark.parametrize("rule", sorted(NEVER))
def test_no_template_grammar_errors(rendered, rule):
    pattern = re.compile(NEVER[rule])
    for _, task, dialogue in rendered.items:
        for who, text in texts(task, dialogue):
            found = pattern.search(text)
            assert found is None, f"{rule} in a {who} text of {task['intent']}: ...{text[max(0, found.start() - 60):found.end() + 60]}..."


def test_no_json_in_the_customers_mouth(rendered):
    for _, task, dialogue in rendered.items:
        for who, text in texts(task, dialogue):
            if who == "user":
                assert "{" not in text and "[" not in text and '"first_name"' not in text, text


def _amounts(value) -> list[float]:
    """The amounts of money in an added value: every numeric `amount` in it."""
    if isinstance(value, dict):
        own = value.get("amount")
        here = [abs(own)] if isinstance(own, (int, float)) and not isinstance(own, bool) and own else []
        return here + [a for v in value.values() for a in _amounts(v)]
    if isinstance(value, list):
        return [a for v in value for a in _amounts(v)]
    return []


def _money_moved(diff: list[dict]) -> list[float]:
    moved = [a for d in diff if d.get("added") and d["path"][0] == "db" for a in _amounts(d["after"])]
    return moved + [abs(d["after"]) for d in diff if "difference" in str(d["path"][-1])
                    and isinstance(d["after"], (int, float)) and d["after"]]


def _stated(amount: float, text: str) -> bool:
    """The amount said, or (a domain without a calculator) its unit price and quantity."""
    said = str(int(amount)) if float(amount) == int(amount) else f"{amount:.2f}"
    if said_in(said, text):
        return True
    return any(abs(float(p) * float(q) - amount) < 0.01
               for p, q in re.findall(r"\$([\d.]+) per \w+ for ([\d.]+)", text))


def test_amounts_are_said_before_each_write(rendered):
    writes = checked = 0
    for _, task, dialogue in rendered.items:
        if SAYING_FAULTS & set(dialogue.faults):
            continue
        fork, said = rendered.env.fork(), []
        for m in dialogue.messages[1:]:
            if m["role"] == "assistant" and m.get("content"):
                said.append(m["content"])
            for tc in m.get("tool_calls") or []:
                side = "user" if m.get("side") == "user" else "agent"
                before = fork.fork()
                result = fork.call(tc["function"]["name"], tc["function"]["arguments"], side)
                tool = rendered.spec.tools.get(tc["function"]["name"])
                if side != "agent" or tool is None or tool.kind != "write" or not result.ok:
                    continue
                writes += 1
                text = normalise_text(" ".join(said))  # what the agent said since the last write
                for amount in _money_moved(state_diff(before, fork)):
                    checked += 1
                    assert _stated(amount, text), (f"{task['intent']}: {amount} is moved by "
                                                   f"{tc['function']['name']} but never said before it:\n{said}")
                said = []
    assert writes > 0
    if rendered.name in ("airline", "retail", "telecom"):
        assert checked > 20  # refunds, fees, fare differences, data charges


def test_customers_sometimes_ask_a_follow_up(rendered):
    asked = 0
    for _, task, dialogue in rendered.items:
        user = [m["content"] for m in dialogue.messages if m["role"] == "user" and m.get("side") != "user"
                and isinstance(m.get("content"), str)]
        asked += any("?" in text for text in user[1:])
    assert asked >= 0.05 * len(rendered.items), f"{asked} follow-up questions in {len(rendered.items)} dialogues"


def test_the_agent_speaks_in_sentences(rendered):
    for _, task, dialogue in rendered.items:
        for who, text in texts(task, dialogue):
            if who == "assistant":
                assert text[:1].isupper() or text[:1] in "$#", text
                assert text.rstrip()[-1:] in ".?!", text


def test_a_relative_calling_is_the_persona(monkeypatch):
    """A context naming a caller (`caller: {name, relation}`) makes them the persona, calling
    for the holder, whose name the world gives."""
    from runtime.workers.offline import pool

    r = Rendered.__new__(Rendered)  # a world without rendering dialogues
    r.spec, _ = load_domain("airline")
    r.env = Environment.from_domain(r.spec, 1, size=0.1)
    r.db = r.env.db.to_json()
    r.world = World(r.spec, r.db, None, r.spec.now)
    uid, user = next(iter(r.db["users"].items()))
    context = {"user_id": uid, "caller": {"name": "Mia Li", "relation": "niece"}}
    monkeypatch.setattr(pool, "recipe", lambda domain, which: lambda rng, world, diff: {
        "intent": "cancel_reservation", "context": context})
    seed = pool.OfflineRandomPool().run(r.ctx(0, "RandomPool"), {})["ScenarioSeed"]
    holder = f"{user['name']['first_name']} {user['name']['last_name']}"
    assert seed["persona"]["name"] == "Mia Li"
    assert f"is calling on behalf of your niece {holder}" in seed["persona"]["constraints"]
    assert pool.holder_name(r.db, {"user_id": uid}) == holder
