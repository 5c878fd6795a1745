"""The offline DialogSynthesis worker: a symbolic user simulator and trajectory agent take
turns on a fork of the instance's environment, with real tool calls and real results.

The user opens from the task's objective (vaguely when the task is ambiguous, and the agent
asks what they need), tells what it `known`s when asked (a novice one item per turn, an expert
everything at once), may first prefer an `alternatives` value and change its mind when asked
to confirm, and performs user-side gold calls (telecom) when told to. The agent follows the
gold path: it asks for what the next call needs, reads, summarises facts from tool outputs,
asks for an explicit yes before every write (one write per yes), writes and reports.

Faults are injected with small probabilities (`FAULT_RATES`) so that the validators have
real work; `synthesize` returns the list of faults that actually happened.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.env.rules import dialog_of, is_claim, source_tokens, state_diff, tokens
from runtime.env.verifier import normalise_text
from runtime.workers.base import WorkerContext, WorkerError

from .phrases import (
    ASK_FIRST,
    ASK_MORE,
    BYE,
    CLARIFY,
    CONFIRM,
    CONFIRM_ASK,
    FINAL,
    GOODBYE,
    INFO,
    INSTRUCT,
    NOVICE,
    OPEN,
    READ_EMPTY,
    READ_FAIL,
    READ_OK,
    RECHECK,
    REPORT,
    SWITCH,
    THANKS,
    UPDATED,
    VAGUE,
    WRITE_FAIL,
    WRITE_OK,
    cap,
    describe,
    error_text,
    expertise_of,
    facts_of,
    goal_sentence,
    keys_words,
    tone_of,
    words,
)

# Probability that a dialogue gets each fault, drawn independently in this order (about 30%
# of dialogues get at least one). A fault without an opportunity (no read to break, no other
# entity to act on) does not happen. `settings.params.fault_rates` overrides them per agent.
FAULT_RATES: dict[str, float] = {
    "unconfirmed_write": 0.08,     # (a) a write without asking → compliance; Modify repairs
    "recovered_bad_call": 0.10,    # (b) a bad argument, then the right call → still valid
    "unrecovered_bad_read": 0.06,  # (c) a bad read never retried → tool_validity; repaired
    "ungrounded_claim": 0.08,      # (d) a wrong id/number in the agent's text → grounding
    "wrong_write": 0.03,           # (e) a write on another entity → goal_completion; final
}
AMBIGUITY_VAGUE = 0.5   # difficulty.ambiguity from which the user opens without its goal
DEFAULT_MAX_TURNS = 30

@dataclass
class Step:
    """One gold call, with the known keys (param → key) the user must tell first."""

    index: int
    name: str
    side: str
    kind: str
    arguments: dict
    keys: dict


def gold_list(task: Mapping) -> list[Mapping]:
    gold = task.get("gold_calls")
    if not isinstance(gold, list):
        raise WorkerError("TaskSpec.gold_calls must be a list of {name, arguments, side}")
    for i, c in enumerate(gold):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise WorkerError(f"TaskSpec.gold_calls[{i}] is not a call {{name, arguments, side}}: {c!r}")
        if c.get("arguments") is not None and not isinstance(c["arguments"], Mapping):
            raise WorkerError(f"TaskSpec.gold_calls[{i}].arguments must be an object: {c['arguments']!r}")
    return gold


def resolve_known(task: Mapping) -> tuple[dict, dict, dict]:
    """(known, alternatives by known key, param → known key). An alternative names a known
    key, or a parameter of the gold path: then it applies to the known key holding the same
    value, or to the parameter itself, which the user is asked for like a known fact. One
    nested in a value (a flight's date) is dropped: no call argument can carry it alone."""
    known = _mapping(task, "known")
    params = {p: v for c in gold_list(task) if c.get("side", "agent") != "user"
              for p, v in (c.get("arguments") or {}).items()}
    alt, alias = {}, {}
    for k, first in _mapping(task, "alternatives").items():
        key = k if k in known else None
        if key is None and k in params:
            v = params[k]
            key = next((j for j, kv in known.items() if kv == v and type(kv) is type(v)), None)
            if key is None:
                key, known[k] = k, v
            else:
                alias[k] = key
        if key is not None and first != known[key]:
            alt[key] = first
    return known, alt, alias


def plan_steps(domain: Any, task: Mapping, known: Mapping, alias: Mapping) -> list[Step]:
    """The gold calls with, for each, the known keys its arguments come from: a parameter of
    that name (or alias), else a known id-like string of equal value."""
    steps = []
    for i, c in enumerate(gold_list(task)):
        side = "user" if c.get("side") == "user" else "agent"
        args = dict(c.get("arguments") or {})
        spec = ((domain.user_tools if side == "user" else domain.tools) or {}).get(c["name"])
        keys = {}
        for p, v in args.items():
            k = p if p in known else alias.get(p)
            if k is not None and known[k] == v:
                keys[p] = k
            elif isinstance(v, str) and len(v) >= 3:  # small numbers match too much by chance
                k = next((k for k, kv in known.items() if kv == v), None)
                if k is not None:
                    keys[p] = k
        steps.append(Step(i, c["name"], side, spec.kind if spec else "unknown", args, keys))
    return steps


class Dialogue:
    """One synthesis: the user, the agent, the forked environment and the messages."""

    def __init__(self, ctx: WorkerContext, task: Mapping) -> None:
        self.ctx, self.rng, self.task, self.domain = ctx, ctx.rng, task, ctx.domain
        self.env = ctx.env.fork()
        settings = ctx.settings or {}
        turns = settings.get("max_turns")
        self.max_turns = turns if isinstance(turns, int) and turns > 0 else DEFAULT_MAX_TURNS
        params = settings.get("params") if isinstance(settings.get("params"), Mapping) else {}
        rates = {**FAULT_RATES, **(params.get("fault_rates") or {})}
        draws = [(k, self.rng.random()) for k in FAULT_RATES]  # always draw all: stable streams
        self.planned = {k for k, r in draws if isinstance(rates.get(k), (int, float)) and r < rates[k]}
        self.faults: list[str] = []
        persona = _mapping(task, "persona")
        self.tone, self.expertise = tone_of(persona), expertise_of(persona)
        difficulty = _mapping(task, "difficulty")
        ambiguity = difficulty.get("ambiguity")
        self.vague = isinstance(ambiguity, (int, float)) and ambiguity >= AMBIGUITY_VAGUE
        prone = difficulty.get("error_prone")
        self.error_prone = [p for p in prone if isinstance(p, str)] if isinstance(prone, list) else []
        self.known, self.alt, alias = resolve_known(task)
        self.say = _mapping(task, "say")
        self.steps = plan_steps(self.domain, task, self.known, alias)
        self.switched: set[str] = set()
        self.told: dict[str, Any] = {}
        self.done: set[int] = set()
        self.awaiting: int | None = None    # the write whose confirmation was asked
        self.confirmed: int | None = None   # the write the user said yes to
        policy = str(getattr(self.domain, "policy", "") or "")
        self.messages: list[dict] = [{"role": "system", "content": policy}]
        self.turns = self.n_calls = 0
        schemas = json.dumps([ctx.env.tool_schemas("agent"), ctx.env.tool_schemas("user")])
        self.seen = source_tokens([policy, schemas])  # what the agent may state
        self.outputs: list[str] = []  # strings in successful agent tool outputs, in order

    # ------------------------------------------------------------ driving

    def run(self) -> None:
        request: tuple | None = ("open",)
        while request is not None and self.turns < self.max_turns:
            request = self.agent(self.user(request))

    def dialog(self) -> dict:
        return dialog_of(self.messages, self.domain)

    def final_state(self) -> dict:
        return {"initial_hash": self.ctx.env.hash(), "hash": self.env.hash(),
                "diff": state_diff(self.ctx.env, self.env)}

    def pick(self, bank: Sequence[str] | Mapping[str, Sequence[str]], avoid: Sequence[str] = ()) -> str:
        options = bank.get(self.tone) or bank["neutral"] if isinstance(bank, Mapping) else bank
        fresh = [o for o in options if o not in avoid] or options  # vary within one message
        return fresh[self.rng.randrange(len(fresh))]

    def want(self, fault: str) -> bool:
        return fault in self.planned and fault not in self.faults

    # ------------------------------------------------------------ the user

    def value(self, key: str) -> Any:
        return self.alt[key] if key in self.alt and key not in self.switched else self.known[key]

    def phrase(self, key: str, value: Any) -> str:
        if key in self.say and value == self.known.get(key):
            return str(self.say[key])
        if isinstance(value, list):
            return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in value)
        return value if isinstance(value, str) else json.dumps(value)

    def items(self, keys: Sequence[str]) -> str:
        return " and ".join(f"my {words(k)} is {self.phrase(k, self.value(k))}" for k in keys)

    def user(self, request: tuple) -> dict:
        kind, payload = request[0], {}
        if kind == "open" and self.vague:
            text, payload = self.pick(VAGUE), {"vague": True}
        elif kind in ("open", "clarify"):
            goal = goal_sentence(self.task.get("objective") or "")
            # values the objective already names count as told; an expert tells everything
            told = [k for k, v in self.known.items()
                    if len(str(v)) >= 4 and str(v) in goal and v == self.value(k)]
            extra = [k for k in self.known if k not in told] if self.expertise == "expert" else []
            text = goal if kind == "clarify" else self.pick(OPEN).format(goal=goal)
            if extra:
                text += " " + cap(self.items(extra)) + "."
            payload = {"info": {k: self.value(k) for k in told + extra}}
        elif kind == "keys":
            give = request[1][:1] if self.expertise == "novice" else request[1]
            items = self.items(give)
            bank = NOVICE if self.expertise == "novice" else INFO
            text = cap(self.pick(bank).format(items=items, Items=cap(items)))
            payload = {"info": {k: self.value(k) for k in give}}
        elif kind in ("confirm", "recheck"):
            pending = [k for k in self.alt if k not in self.switched and (kind == "confirm" or k in request[1])]
            if pending:
                key = pending[0]
                self.switched.add(key)
                text = self.pick(SWITCH).format(value=self.phrase(key, self.known[key]), key=words(key))
                payload = {"info": {key: self.known[key]}, "switch": key}
            else:
                text, payload = self.pick(CONFIRM), {"confirm": True}
        elif kind == "instruct":
            step = self.steps[request[1]]
            result = self.call(step.name, step.arguments, "user")
            out = result.content if len(result.content) <= 200 else result.content[:197] + "..."
            text, payload = self.pick(REPORT).format(out=out), {"performed": request[1]}
        else:
            text, payload = self.pick(BYE), {"bye": True}
        self.messages.append({"role": "user", "content": text})
        self.turns += 1
        self.seen.update(source_tokens([text]))
        return payload

    # ------------------------------------------------------------ the agent

    def agent(self, p: dict) -> tuple | None:
        if p.get("bye"):
            self.say_(self.pick(GOODBYE))
            return None
        if p.get("vague"):
            self.say_(self.pick(CLARIFY))
            return ("clarify",)
        notes: list[str] = []
        self.told.update(p.get("info") or {})
        if "switch" in p:  # redo what used the old value, and ask again
            self.done -= {s.index for s in self.steps if p["switch"] in s.keys.values()}
            self.awaiting = None
            notes.append(UPDATED)
        if p.get("confirm") and self.awaiting is not None:
            self.confirmed, self.awaiting = self.awaiting, None
        if "performed" in p:
            self.done.add(p["performed"])
            notes.append(self.pick(THANKS))
        return self.work(notes)

    def next_step(self) -> Step | None:
        return next((s for s in self.steps if s.index not in self.done), None)

    def args(self, step: Step) -> dict:
        return {p: (self.told[step.keys[p]] if p in step.keys else v) for p, v in step.arguments.items()}

    def work(self, notes: list[str]) -> tuple:
        for _ in range(4 * len(self.steps) + 4):
            step = self.next_step()
            if step is None:
                break
            if step.side == "user":
                return self.ask(notes, self.pick(INSTRUCT).format(action=self.action(step.name, step.arguments)),
                                ("instruct", step.index))
            missing = [k for k in dict.fromkeys(step.keys.values()) if k not in self.told]
            if missing:
                bank = ASK_MORE if self.told else ASK_FIRST
                return self.ask(notes, self.pick(bank).format(keys=keys_words(missing)), ("keys", missing))
            args = self.args(step)
            if step.kind == "write" and self.confirmed != step.index:
                self.bad_read()
                pending_alt = any(k not in self.switched for k in self.alt)
                if not (self.want("unconfirmed_write") and not pending_alt):
                    text = self.pick(CONFIRM_ASK).format(action=self.action(step.name, args))
                    self.awaiting = step.index
                    return self.ask(notes, text, ("confirm", step.index))
                self.faults.append("unconfirmed_write")
            result = self.execute(step, args)
            self.done.add(step.index)
            if step.kind == "write":
                self.confirmed = None
            alt_keys = [k for k in step.keys.values() if k in self.alt and k not in self.switched]
            if not result.ok and step.kind != "write" and alt_keys:
                self.done.discard(step.index)
                text = RECHECK.format(error=error_text(result.content), keys=keys_words(alt_keys))
                return self.ask(notes, text, ("recheck", alt_keys))
            notes.append(self.note(step, args, result, notes))
        self.bad_read()
        return self.ask(notes, self.pick(FINAL), ("final",))

    def ask(self, notes: list[str], text: str, request: tuple) -> tuple:
        self.say_(" ".join(notes + [text]))
        return request

    def say_(self, text: str) -> None:
        if self.want("ungrounded_claim"):
            text = self.misstate(text)
        self.messages.append({"role": "assistant", "content": text})

    def grounded(self, text: str) -> bool:
        return all(norm in self.seen for _, _, _, norm in tokens(text) if is_claim(norm))

    def action(self, name: str, args: Mapping) -> str:
        return describe(name, args, self.grounded)

    def note(self, step: Step, args: Mapping, result: Any, notes: Sequence[str]) -> str:
        if step.kind == "write":
            if not result.ok:
                return WRITE_FAIL.format(action=words(step.name), error=error_text(result.content))
            facts = facts_of(result.content)
            return self.pick(WRITE_OK).format(action=words(step.name), facts=facts or "no further details")
        if not result.ok:
            return READ_FAIL.format(error=error_text(result.content))
        facts = facts_of(result.content)
        used = [o for o in READ_OK if any(n.startswith(o.split("{")[0]) for n in notes)]
        return self.pick(READ_OK, used).format(facts=facts) if facts else READ_EMPTY

    # ------------------------------------------------------------ tool calls and faults

    def call(self, name: str, args: Mapping, side: str = "agent") -> Any:
        self.n_calls += 1
        cid = f"call_{self.n_calls}"
        text = json.dumps(args, ensure_ascii=False)
        result = self.env.call(name, text, side)
        tc = {"id": cid, "type": "function", "function": {"name": name, "arguments": text}}
        if side == "user":
            self.messages.append({"role": "user", "content": None, "tool_calls": [tc], "side": "user"})
            self.messages.append({"role": "tool", "tool_call_id": cid, "name": name,
                                  "content": result.content, "side": "user"})
            return result
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [tc]})
        self.messages.append({"role": "tool", "tool_call_id": cid, "name": name, "content": result.content})
        self.seen.update(source_tokens([result.content]))
        if result.ok:
            try:
                self.outputs += [s for s in _strings(json.loads(result.content)) if s not in self.outputs]
            except ValueError:
                pass
        return result

    def execute(self, step: Step, args: dict) -> Any:
        if step.kind == "read" and self.want("recovered_bad_call"):  # (b)
            bad = self.corrupt(step.name, args, ("type", "misspell"))
            if bad is not None:
                self.call(step.name, bad)
                self.faults.append("recovered_bad_call")
        if step.kind == "write" and self.want("wrong_write"):  # (e)
            other = self.other_entity(step.name, args)
            if other is not None:
                args = other
                self.faults.append("wrong_write")
        return self.call(step.name, args)

    def bad_read(self) -> None:
        """(c): re-read something already known with a bad argument, and not retry it since
        the data is not needed (after the tool's last use on the gold path)."""
        if not self.want("unrecovered_bad_read"):
            return
        later = {s.name for s in self.steps if s.index not in self.done}
        if any(k not in self.switched for k in self.alt):  # a change of mind would redo reads
            return
        for step in self.steps:
            if step.index in self.done and step.side == "agent" and step.kind == "read" \
                    and step.arguments and step.name not in later:
                bad = self.corrupt(step.name, self.args(step), ("type",))
                if bad is not None:
                    self.call(step.name, bad)
                    self.faults.append("unrecovered_bad_read")
                    return

    def corrupt(self, name: str, args: Mapping, kinds: tuple[str, ...]) -> dict | None:
        """Arguments with one wrong type or misspelt value (preferring error-prone params)
        that the environment rejects (a schema error when only types are allowed)."""
        scalar = [p for p, v in args.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        params = [p for p in scalar if p in self.error_prone] or scalar
        for _ in range(4):
            if not params:
                return None
            p = params[self.rng.randrange(len(params))]
            v, kind = args[p], kinds[self.rng.randrange(len(kinds))]
            if kind == "misspell" and isinstance(v, str) and len(v) >= 3:
                bad_value = _misspell(v, self.rng)
            elif isinstance(v, str):
                digits = "".join(ch for ch in v if ch.isdigit())[:9]
                bad_value = int(digits) if digits else len(v)
            else:
                bad_value = str(v)
            bad = {**args, p: bad_value}
            r = self.env.fork().call(name, bad)
            if not r.ok and (kinds != ("type",) or r.error == "schema"):
                return bad
        return None

    def other_entity(self, name: str, args: Mapping) -> dict | None:
        """(e): the same write on another entity seen in this dialogue's outputs (another
        reservation of the user...), when the environment accepts it."""
        gold = self.env.fork()
        gold.call(name, dict(args))
        for p, v in args.items():
            if not isinstance(v, str):
                continue
            shape = _shape(v)
            options = [s for s in self.outputs if s != v and _shape(s) == shape]
            self.rng.shuffle(options)
            for s in options[:12]:
                trial = self.env.fork()
                if trial.call(name, {**args, p: s}).ok and trial.hash() != gold.hash():
                    return {**args, p: s}
        return None

    def misstate(self, text: str) -> str:
        """(d): change one digit of an id or number so that it matches nothing seen."""
        claims = [(s, e, raw) for s, e, raw, norm in tokens(text) if is_claim(norm)]
        self.rng.shuffle(claims)
        for start, end, raw in claims:
            digits = [i for i, ch in enumerate(raw) if ch.isdigit()]
            i = digits[self.rng.randrange(len(digits))]
            new = raw[:i] + str((int(raw[i]) + 1 + self.rng.randrange(8)) % 10) + raw[i + 1:]
            norm = normalise_text(new)
            if is_claim(norm) and norm not in self.seen:
                self.faults.append("ungrounded_claim")
                return text[:start] + new + text[end:]
        return text


def _mapping(task: Mapping, key: str) -> dict:
    value = task.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WorkerError(f"TaskSpec.{key} must be an object, got {type(value).__name__}")
    return dict(value)


def _strings(value: Any) -> list[str]:
    """Every string (values and keys) in a JSON value, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _shape(text: str) -> str:
    """Ids of one kind look alike: upper case and digits → X, lower case → a, the rest kept."""
    return "".join("X" if ch.isupper() or ch.isdigit() else "a" if ch.islower() else ch for ch in text)


def _misspell(value: str, rng: random.Random) -> str:
    i = rng.randrange(len(value))
    ch = value[i]
    pool = "0123456789" if ch.isdigit() else "ABCDEFGHJKLMNPQRSTUVWXYZ" if ch.isupper() \
        else "abcdefghijkmnopqrstuvwxyz" if ch.islower() else None
    if pool is None:  # punctuation: swap the neighbours instead
        j = i + 1 if i + 1 < len(value) else i - 1
        chars = list(value)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    pool = pool.replace(ch, "")
    return value[:i] + pool[rng.randrange(len(pool))] + value[i + 1:]


def synthesize(ctx: WorkerContext, task: Mapping) -> tuple[dict, dict, list[str]]:
    """(Dialog, FinalState, the faults injected) for one task."""
    if not isinstance(task, Mapping):
        raise WorkerError("DialogSynthesis needs a TaskSpec object")
    d = Dialogue(ctx, task)
    d.run()
    return d.dialog(), d.final_state(), list(d.faults)


class OfflineDialogSynthesis:
    kind = "DialogSynthesis"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        dialog, final, _ = synthesize(ctx, inputs.get("TaskSpec"))
        return {"Dialog": dialog, "FinalState": final}
