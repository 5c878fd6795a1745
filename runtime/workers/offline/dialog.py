"""The offline DialogSynthesis worker: a symbolic user simulator and trajectory agent take
turns on a fork of the instance's environment, with real tool calls and real results.

The user opens from the task's objective (vaguely when the task is ambiguous, and the agent
asks what they need), tells what it `known`s when asked (a novice one item per turn, an expert
everything at once), may first prefer an `alternatives` value and change its mind when asked
to confirm, performs user-side gold calls (telecom) when told to, and sometimes asks a
follow-up question (what a change costs before saying yes, what was refunded, the new date)
that the agent answers from the state. The agent follows the gold path: it asks for what the
next call needs, reads (in any order the information allows, sometimes with an optional
lookup the policy permits), says what it found in sentences, announces every write with what
it will do — amounts charged or refunded, fees, new dates, worked out by a dry run and computed
with the domain's calculator when nobody has seen them yet (effects.py) — asks for an explicit
yes before every write (one write per yes), writes and reports.

Faults are injected with small probabilities (`FAULT_RATES`) so that the validators have
real work; `synthesize` returns the list of faults that actually happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.env.rules import dialog_of, state_diff
from runtime.env.verifier import normalise_text, said_in
from runtime.workers.base import WorkerContext, WorkerError

from . import faults as F
from .effects import Effects, derivation, effects_of, follow_up, money_sentence, total, ungrounded_money
from .phrases import (
    ANSWER,
    ASK_FIRST,
    ASK_MORE,
    ASK_MORE_Q,
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
    REASK,
    RECHECK,
    REPORT,
    SWITCH,
    THANKS,
    UPDATED,
    VAGUE,
    WRITE_FAIL,
    WRITE_OK,
    error_text,
    expertise_of,
    goal_sentence,
    keys_words,
    report_text,
    tell,
    tell_all,
    tone_of,
)
from .lookups import changed_reads, lookups
from .grounds import Grounds
from .speech import Announcement, announce, changed_fields, read_note, record_question, unsaid, user_step
from .steps import Step, calculator, mapping, plan_steps, resolve_known
from .wording import cap, money, natural, parse, past, words

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
# How often a dialogue varies within what the policy allows (drawn once per dialogue, after
# the faults): reads in another order the information permits, an optional lookup (the other
# kind of search, a record's details), a follow-up question after the work (or, for a payment,
# before the yes), reading a changed record again after the write.
STYLE_RATES = {"reorder": 0.5, "lookup": 0.6, "follow_up": 0.4, "ask_before_yes": 0.25, "recheck": 0.3}
MAX_LOOKUPS = 2
AMBIGUITY_VAGUE = 0.5   # difficulty.ambiguity from which the user opens without its goal
DEFAULT_MAX_TURNS = 30


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
        self.style = {k for k, r in [(k, self.rng.random()) for k in STYLE_RATES] if r < STYLE_RATES[k]}
        self.faults: list[str] = []
        persona = mapping(task, "persona")
        self.tone, self.expertise = tone_of(persona), expertise_of(persona)
        self.holder = str(persona.get("name") or "")
        difficulty = mapping(task, "difficulty")
        ambiguity = difficulty.get("ambiguity")
        self.vague = isinstance(ambiguity, (int, float)) and ambiguity >= AMBIGUITY_VAGUE
        prone = difficulty.get("error_prone")
        self.error_prone = [p for p in prone if isinstance(p, str)] if isinstance(prone, list) else []
        self.known, self.alt, alias = resolve_known(task)
        self.say = mapping(task, "say")
        self.steps = plan_steps(self.domain, task, self.known, alias)
        self.switched: set[str] = set()
        self.told: dict[str, Any] = {}
        self.done: set[int] = set()
        self.awaiting: int | None = None    # the write whose confirmation was asked
        self.confirmed: int | None = None   # the write the user said yes to
        self.announced: dict[str, Announcement] = {}  # write (name + arguments) → its announcement
        self.question: tuple[str, str] | None = None  # a follow-up the user will ask, and its answer
        self.before_yes: tuple[str, str] | None = None  # the same, asked before confirming
        self.asked = False
        self.lookups = MAX_LOOKUPS if "lookup" in self.style else 0
        self.called: set[str] = set()
        self.wrote = False
        self.calc = calculator(self.domain)
        policy = str(getattr(self.domain, "policy", "") or "")
        now = str(getattr(self.domain, "now", "") or "")  # the clock, said as _domain.j2 says it
        system = "\n\n".join(p for p in (policy.rstrip(), f"The current time is {now}." if now else "") if p)
        self.messages: list[dict] = [{"role": "system", "content": system}]
        self.turns = self.n_calls = 0
        self.grounds = Grounds(self.domain, system, ctx.env)  # what the agent may state
        self.last_record: Mapping | None = None  # the last read's record (a follow-up may ask about it)
        self.last_effects: Effects | None = None  # what the last write did (likewise)
        self.effects: dict[str, Effects | None] = {}  # dry runs on the current state (reads keep it)

    # ------------------------------------------------------------ driving

    def run(self) -> None:
        request: tuple | None = ("open",)
        while request is not None and self.turns < self.max_turns:
            request = self.agent(self.user(request))

    def dialog(self) -> dict:
        return dialog_of(self.messages, self.domain, self.ctx.env)

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

    def fact(self, key: str, value: Any) -> tuple[str, Any, str | None]:
        """(key, value, the recipe's phrasing when it is the value the user means)."""
        say = self.say.get(key) if value == self.known.get(key) else None
        return key, value, str(say) if say is not None else None

    def items(self, keys: Sequence[str]) -> str:
        return tell_all([self.fact(k, self.value(k)) for k in keys])

    def user(self, request: tuple) -> dict:
        kind, payload = request[0], {}
        if kind == "open" and self.vague:
            text, payload = self.pick(VAGUE), {"vague": True}
        elif kind in ("open", "clarify"):
            goal = goal_sentence(self.task.get("objective") or "")
            # values the objective already names count as told; an expert tells everything
            said = normalise_text(goal)
            told = [k for k, v in self.known.items() if v == self.value(k) and any(
                len(x) >= 4 and said_in(x, said) for x in (str(v), natural(v), str(self.say.get(k) or "")))]
            extra = [k for k in self.known if k not in told] if self.expertise == "expert" else []
            text = goal if kind == "clarify" else self.pick(OPEN).format(goal=goal)
            if extra:
                text += " " + self.items(extra)
            payload = {"info": {k: self.value(k) for k in told + extra}}
        elif kind == "keys":
            give = request[1][:1] if self.expertise == "novice" else request[1]
            bank = NOVICE if self.expertise == "novice" else INFO
            text = self.pick(bank).format(Items=self.items(give))
            payload = {"info": {k: self.value(k) for k in give}}
        elif kind in ("confirm", "recheck"):
            pending = [k for k in self.alt if k not in self.switched and (kind == "confirm" or k in request[1])]
            if pending:
                key = pending[0]
                self.switched.add(key)
                change = cap(tell(*self.fact(key, self.known[key]))) + "."
                text = self.pick(SWITCH).format(change=change)
                payload = {"info": {key: self.known[key]}, "switch": key}
            elif kind == "confirm" and self.before_yes is not None:
                (question, answer), self.before_yes = self.before_yes, None
                text, payload = question, {"answer": answer, "again": request[1]}
            else:
                text, payload = self.pick(CONFIRM), {"confirm": True}
        elif kind == "instruct":
            step = self.steps[request[1]]
            result = self.call(step.name, step.arguments, "user")
            text, payload = self.pick(REPORT).format(out=report_text(result.content)), {"performed": request[1]}
        elif kind == "final" and self.question is not None and not self.asked:
            self.asked = True
            question, answer = self.question
            lower = question if question.startswith("I ") else question[:1].lower() + question[1:]
            text = self.pick(ASK_MORE_Q).format(question=lower, Question=question)
            payload = {"answer": answer}
        else:
            text, payload = self.pick(BYE), {"bye": True}
        self.messages.append({"role": "user", "content": text})
        self.turns += 1
        self.grounds.learn(text)
        return payload

    # ------------------------------------------------------------ the agent

    def agent(self, p: dict) -> tuple | None:
        if p.get("bye"):
            self.say_(self.pick(GOODBYE))
            return None
        if p.get("vague"):
            self.say_(self.pick(CLARIFY))
            return ("clarify",)
        if "answer" in p:  # a follow-up question: answered from the state, then back to work
            if "again" in p:
                return self.ask([p["answer"]], self.pick(REASK), ("confirm", p["again"]))
            return self.ask([p["answer"]], self.pick(FINAL), ("final",))
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
        """The next gold step; among reads the information already allows (their arguments
        told by the user or seen in an output), any one when this dialogue varies its order."""
        pending = [s for s in self.steps if s.index not in self.done]
        if not pending:
            return None
        first = pending[0]
        agent_steps = [s for s in self.steps if s.side == "agent"]
        if "reorder" not in self.style or not agent_steps or agent_steps[0].index not in self.done:
            return first
        run = []
        for s in pending:
            if s.side != "agent" or s.kind != "read":
                break
            run.append(s)
        ready = [s for s in run if all(k in self.told for k in s.keys.values())
                 and all(self.grounded(natural(v)) for p, v in s.arguments.items() if p not in s.keys)]
        return ready[self.rng.randrange(len(ready))] if len(ready) > 1 else first

    def args(self, step: Step) -> dict:
        return {p: (self.told[step.keys[p]] if p in step.keys else v) for p, v in step.arguments.items()}

    def work(self, notes: list[str]) -> tuple:
        for _ in range(4 * len(self.steps) + 4):
            step = self.next_step()
            if step is None:
                break
            if step.side == "user":
                action = user_step(self.domain, self.env, step.name, step.arguments, self.grounded)
                return self.ask(notes, self.pick(INSTRUCT).format(action=action), ("instruct", step.index))
            missing = [k for k in dict.fromkeys(step.keys.values()) if k not in self.told]
            if missing:
                text = self.pick(ASK_MORE if self.told else ASK_FIRST).format(keys=keys_words(missing, self.known))
                if notes:  # the notes already thanked or answered: no second "Thanks."
                    lead, _, rest = text.partition(". ")
                    text = cap(rest) if lead in ("Thanks", "Thank you", "Got it") and rest else text
                return self.ask(notes, text, ("keys", missing))
            args = self.args(step)
            if step.kind == "write" and self.confirmed != step.index:
                self.bad_read()
                pending_alt = any(k not in self.switched for k in self.alt)
                if not (self.want("unconfirmed_write") and not pending_alt):
                    self.awaiting = step.index
                    return self.ask(notes, self.announce(step, args, pending_alt), ("confirm", step.index))
                self.faults.append("unconfirmed_write")
            result = self.execute(step, args)
            self.done.add(step.index)
            if step.kind == "write":
                self.confirmed = None
            alt_keys = [k for k in step.keys.values() if k in self.alt and k not in self.switched]
            if not result.ok and step.kind != "write" and alt_keys:
                self.done.discard(step.index)
                text = RECHECK.format(error=error_text(result.content), keys=keys_words(alt_keys, self.known))
                return self.ask(notes, text, ("recheck", alt_keys))
            note = self.note(step, args, result, notes)
            notes.insert(0, note) if note.startswith("Thank you, ") else notes.append(note)
            if result.ok and step.kind == "read" and not self.wrote:
                self.look_further(step.name, result.content, notes)
            if result.ok and step.kind == "write" and "recheck" in self.style:
                self.read_again(notes)
        self.bad_read()
        notes += self.answer(notes)
        if self.question is None and "follow_up" in self.style:  # asked once the work is done
            self.question = follow_up(self.last_effects, self.grounded, self.rng) if self.last_effects \
                else self.about_record()
        return self.ask(notes, self.pick(FINAL), ("final",))

    def announce(self, step: Step, args: dict, pending_alt: bool) -> str:
        """The confirmation question for a write: the action, its details and what it will do;
        amounts nobody has seen yet are computed first. A customer may ask about the money
        before saying yes: then it is said in the answer."""
        ann = self.prepare(step.name, args)
        money = ann.effects.money if ann.effects else []
        ask_first = bool(money) and "ask_before_yes" in self.style and not pending_alt \
            and all(self.grounded(money_sentence(m)) for m in money)
        if ask_first:
            question = self.pick(["How much will that cost me?", "Is there anything to pay, or anything coming back?",
                                  "What happens with the money?"]) if any(m.amount > 0 for m in money) \
                else self.pick(["How much will be refunded?", "How much do I get back, and where?"])
            self.before_yes = (question, ann.text())
        effects = ann.text(with_money=not ask_first)
        return self.pick(CONFIRM_ASK).format(action=ann.phrase, effects=effects + " " if effects else "")

    def prepare(self, name: str, args: dict) -> Announcement:
        key = name + json.dumps(args, sort_keys=True)  # worked out again: more may be grounded now
        effects = self.effects_of(name, args)
        extra: list[str] = []
        if effects is not None:
            for m in ungrounded_money(effects, self.grounded):
                how = derivation(m, effects.diff, args, self.grounds.seen_number)
                if how is None:
                    continue
                if self.calc:  # work it out with the calculator, then it can be said
                    self.call(self.calc, {"expression": how[0]})
                elif self.grounded(how[1]):
                    m.stated = how[1]
            refunds = [m for m in effects.money if m.amount < 0 and m.method]
            expression = total(refunds)
            if self.calc and expression and all(self.grounded(money_sentence(m)) for m in refunds):
                if self.calc + json.dumps({"expression": expression}) not in self.called:
                    self.call(self.calc, {"expression": expression})  # the refund total, said as well
                extra.append(f"That is {money(sum(m.amount for m in refunds))} back in total.")
        ann = announce(self.domain, self.env, name, args, self.grounded, effects)
        ann.said += [s for s in extra if self.grounded(s)]
        self.announced[key] = ann
        return ann

    def answer(self, notes: Sequence[str]) -> list[str]:
        """The values the user asked for (TaskSpec.inform) that no message of the agent's
        has stated yet, said once the path is done."""
        said = [str(m.get("content") or "") for m in self.messages if m.get("role") == "assistant"]
        untold = unsaid(self.task.get("inform") or [], said + list(notes))
        return [ANSWER.format(values=", ".join(untold))] if untold else []

    def about_record(self) -> tuple[str, str] | None:
        """A follow-up about the record the user asked after (a question task)."""
        said = " ".join(str(m.get("content") or "") for m in self.messages)
        asked = record_question(self.last_record, said, self.rng)
        return asked if asked is not None and self.grounded(asked[1]) else None

    def ask(self, notes: list[str], text: str, request: tuple) -> tuple:
        self.say_(" ".join(notes + [text]))
        return request

    def say_(self, text: str) -> None:
        if self.want("ungrounded_claim"):
            wrong = F.misstate(text, self.rng, self.seen)
            if wrong is not None:
                self.faults.append("ungrounded_claim")
                text = wrong
        self.messages.append({"role": "assistant", "content": text})

    @property
    def seen(self) -> dict[str, str]:
        return self.grounds.seen

    def grounded(self, text: str) -> bool:
        return self.grounds.grounded(text)

    def effects_of(self, name: str, args: Mapping) -> Effects | None:
        """What a write would do now (a dry run, kept until the state changes)."""
        key = name + json.dumps(args, sort_keys=True)
        if key not in self.effects:
            self.effects[key] = effects_of(self.env, name, args)
        return self.effects[key]

    def focus(self) -> list[str]:
        """What a read should mention: the fields the coming writes change, and the keys of
        the values the user asked for."""
        fields: list[str] = []
        for s in self.steps:
            if s.kind == "write" and s.side == "agent" and s.index not in self.done:
                fields += changed_fields(self.effects_of(s.name, s.arguments))
        return fields

    def note(self, step: Step, args: Mapping, result: Any, notes: Sequence[str]) -> str:
        if step.kind == "write":
            ann = self.announced.get(step.name + json.dumps(args, sort_keys=True)) \
                or announce(self.domain, self.ctx.env, step.name, args, self.grounded)
            if not result.ok:
                return WRITE_FAIL.format(action=words(step.name), error=error_text(result.content))
            self.wrote = True
            self.last_effects = ann.effects or self.last_effects
            return self.pick(WRITE_OK).format(action=past(ann.action))
        if not result.ok:
            return READ_FAIL.format(error=error_text(result.content))
        return self.read_note(step.name, args, result.content, notes)

    def read_note(self, name: str, args: Mapping, content: str, notes: Sequence[str]) -> str:
        value = parse(content)
        focus = self.focus()
        if isinstance(value, Mapping):
            self.last_record = value
            inform = {normalise_text(str(v)) for v in self.task.get("inform") or []}
            focus += [k for k, v in value.items() if normalise_text(str(v)) in inform]
        used = [n for n in notes]
        text = read_note(name, args, content, focus, self.holder, lambda bank: self.pick(bank, used))
        return text if self.grounded(text) else READ_EMPTY

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
        self.called.add(name + json.dumps(args, sort_keys=True))
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [tc]})
        self.messages.append({"role": "tool", "tool_call_id": cid, "name": name, "content": result.content})
        if result.ok and self.domain.tools.get(name) is not None and self.domain.tools[name].kind == "write":
            self.effects.clear()  # the state changed: dry runs are stale
        self.grounds.learn(result.content, output=result.ok)
        return result

    def look_further(self, name: str, content: str, notes: list[str]) -> None:
        """An optional lookup the policy allows after a read: the same search of the other
        kind, or the details of something the read listed; it must succeed and break no
        policy check. At most MAX_LOOKUPS a dialogue, none after a write."""
        if self.lookups <= 0 or self.rng.random() < 0.4:
            return
        pending = {s.name + json.dumps(s.arguments, sort_keys=True) for s in self.steps if s.index not in self.done}
        options = [c for c in lookups(self.domain, name, self.steps, content)
                   if c[0] + json.dumps(c[1], sort_keys=True) not in self.called | pending]
        self.rng.shuffle(options)
        known = {m["content"] for m in self.messages if m.get("role") == "tool" and m.get("side") != "user"}
        for tool, args in options[:6]:
            trial = self.env.fork().call(tool, args)
            if trial.ok and not trial.violations and trial.content not in known:  # it tells something new
                result = self.call(tool, args)
                notes.append(self.read_note(tool, args, result.content, notes))
                self.lookups -= 1
                return

    def read_again(self, notes: list[str]) -> None:
        """Look once more, after a write, at a record read before it that the write changed
        (once a dialogue)."""
        self.style.discard("recheck")
        options = changed_reads(self.domain, self.env, self.messages)
        if options:
            tool, read = options[self.rng.randrange(len(options))]
            result = self.call(tool, read)
            if result.ok:
                notes.append(self.pick(["I've looked at it again.", "Let me check the result."]) + " "
                             + self.read_note(tool, read, result.content, notes))

    def execute(self, step: Step, args: dict) -> Any:
        if step.kind == "read" and self.want("recovered_bad_call"):  # (b)
            bad = F.corrupt(self.env, self.rng, step.name, args, ("type", "misspell"), self.error_prone)
            if bad is not None:
                self.call(step.name, bad)
                self.faults.append("recovered_bad_call")
        if step.kind == "write" and self.want("wrong_write"):  # (e)
            other = F.other_entity(self.env, self.rng, step.name, args, self.grounds.outputs)
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
                bad = F.corrupt(self.env, self.rng, step.name, self.args(step), ("type",), self.error_prone)
                if bad is not None:
                    self.call(step.name, bad)
                    self.faults.append("unrecovered_bad_read")
                    return


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
