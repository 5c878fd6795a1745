"""The LLM workers: the seven worker kinds, asking a model through a `runtime.backends` backend.

Each worker renders its agent's templates (render.py), asks the model, and parses the answer
into its artifact (parse.py). The deterministic machinery the offline workers use stays in
charge of facts: the feasibility probe runs the planned calls on a fork, the trajectory checks
run before the model's judgement (which can only add failures, never excuse one), Modify's
tool results are re-executed rather than trusted, and the verifier is derived from the gold
path's real effect. A failed completion raises WorkerError with the cause: the engine records
the rejection and the run goes on. An unparseable answer is re-asked once, with the parse
problem stated (models often get it right when told what was wrong); a second failure raises
WorkerError naming both.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from runtime.backends import Completion, run_sync

from ..base import WorkerContext, WorkerError
from .parse import ParseError, parse_artifact
from .render import render

JSON_MODE = {"type": "json_object"}
STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")  # τ²-bench's user end tokens
# What the user simulator "hears" first: its view must start with the agent's turn.
OPENING = "Hi! How can I help you today?"
DEFAULT_MAX_TURNS = 30
DEFAULT_TOOL_ROUNDS = 4  # as eigenlang.catalog's cost estimate assumes
REASK_ECHO_CHARS = 4000  # of a bad answer, repeated in the re-ask


class LLMWorker:
    kind = ""

    def __init__(self, backend: Any, dirs: tuple[str, ...] = ()) -> None:
        self.backend, self.dirs = backend, dirs
        # re-asks after an unparseable answer, and how many of them were unparseable too
        # (for reports; instances run on threads during evolution, hence the lock)
        self.reasks = self.reasks_failed = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------ model calls
    def params(self, ctx: WorkerContext) -> dict:
        p = ctx.settings.get("params") if isinstance(ctx.settings, dict) else None
        return p if isinstance(p, dict) else {}

    def ask(self, ctx: WorkerContext, messages: list[dict], tools: list[dict] | None = None, *,
            json_mode: bool = False, what: str = "") -> Completion:
        p = self.params(ctx)
        seed = ctx.rng.randrange(2**31)  # a reproducible sampling seed where the server honours it
        c = run_sync(self.backend.complete(
            messages, tools or None, agent=ctx.agent, response_format=JSON_MODE if json_mode else None,
            temperature=p.get("temperature"), max_tokens=p.get("max_tokens"), seed=seed))
        if not c.ok:
            raise WorkerError(f"model call failed{f' ({what})' if what else ''}: {c.error}")
        return c

    def ask_json(self, ctx: WorkerContext, inputs: dict, type_name: str, *, defaults: dict | None = None,
                 forced: dict | None = None, note: str = "") -> dict:
        """One rendered `prompt` → one artifact of `type_name`; an unparseable answer is
        re-asked once (its sampling seed drawn from ctx.rng like the first's)."""
        prompt = render(ctx, "prompt", inputs, ctx.rng.randrange(2**31), self.dirs)
        ask = (note + "\n\n" if note else "") + answer_only(type_name)
        messages = [{"role": "system", "content": prompt}, {"role": "user", "content": ask}]
        c = self.ask(ctx, messages, json_mode=True)
        try:
            return parse_artifact(c.content, type_name, defaults=defaults, forced=forced)
        except ParseError as exc:
            first = exc
        self._count(failed=False)
        ctx.reasks += 1
        messages += [{"role": "assistant", "content": echoed(c.content)},
                     {"role": "user", "content": reask_text(type_name, first)}]
        c = self.ask(ctx, messages, json_mode=True, what=f"re-ask for the {type_name}")
        try:
            return parse_artifact(c.content, type_name, defaults=defaults, forced=forced)
        except ParseError as second:
            self._count(failed=True)
            ctx.reasks_failed += 1
            raise WorkerError(f"unparseable {type_name} from the model, also after one re-ask: "
                              f"first answer: {first}; re-asked answer: {second}") from None

    def _count(self, *, failed: bool) -> None:
        with self._count_lock:
            if failed:
                self.reasks_failed += 1
            else:
                self.reasks += 1


def answer_only(type_name: str) -> str:
    # the closing line of every JSON request (the scripted test model keys on it too)
    return f"Answer with the {type_name} JSON object only."


def echoed(answer: str | None, limit: int = REASK_ECHO_CHARS) -> str:
    """A bad answer as the re-ask repeats it: whole when short, else its start and a marker
    (an oversized answer is never sent back: it would cost its size again in the prompt)."""
    text = answer or ""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut]"


def reask_text(type_name: str, problem: ParseError) -> str:
    """The follow-up after an unparseable answer: what was wrong, then the same request."""
    what = "; ".join(problem.problems[:4])
    if len(what) > 600:  # a schema listing can be long; the start says enough
        what = what[:597] + "..."
    return f"Your answer could not be used: {what}. {answer_only(type_name)}"


# ---------------------------------------------------------------- seeds and tasks


class LLMRandomPool(LLMWorker):
    kind = "RandomPool"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        return {"ScenarioSeed": self.ask_json(ctx, inputs, "ScenarioSeed", defaults={"context": {}})}


def gold_calls(raw: Any, ctx: WorkerContext) -> list[dict]:
    """The model's gold calls as [{name, arguments, side}]; arguments given as JSON text are
    decoded. Unknown tools stay: the feasibility probe rejects them with the reason."""
    if not isinstance(raw, list) or not raw:
        raise WorkerError("the model planned no gold calls")
    user_tools = set(ctx.env.tool_names("user"))
    out = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise WorkerError(f"gold_calls[{i}] is not a call {{name, arguments}}: {str(c)[:80]}")
        args = c.get("arguments") or {}
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                raise WorkerError(f"gold_calls[{i}].arguments is not JSON: {args[:80]!r}") from None
        if not isinstance(args, dict):
            raise WorkerError(f"gold_calls[{i}].arguments is not an object")
        side = c.get("side")
        if side not in ("agent", "user"):
            side = "user" if c["name"] in user_tools and c["name"] not in ctx.env.tool_names("agent") else "agent"
        out.append({"name": c["name"], "arguments": args, "side": side})
    return out


class LLMUserIntent(LLMWorker):
    kind = "UserIntent"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from ..offline.intent import user_instructions

        seed = inputs["ScenarioSeed"]
        empty = {"known": {}, "alternatives": {}, "say": {}, "inform": [], "must": [], "must_not": [], "subgoals": [],
                 "expect_feasible": True, "user_instructions": "", "context": seed["context"]}
        # the seed decided who the user is and how hard the task is: the model may not change it
        forced = {"intent": seed["intent"], "persona": seed["persona"], "difficulty": seed["difficulty"]}
        raw = self.ask_json(ctx, inputs, "TaskSpec", defaults={**empty, "objective": "", "gold_calls": []},
                            forced=forced)
        if not raw["objective"].strip():
            raise WorkerError("the model wrote no objective")
        task = dict(raw, gold_calls=gold_calls(raw["gold_calls"], ctx))
        task["difficulty"] = dict(seed["difficulty"], tool_calls=len(task["gold_calls"]))
        if not task["user_instructions"].strip():
            task["user_instructions"] = user_instructions(task)
        return {"TaskSpec": task}


class LLMTaskValidation(LLMWorker):
    """The offline probe first (the planned calls on a fork, then the domain's rules): a
    failing call is a fact, and no model is asked. A path that runs is shown to the model,
    which judges what the rules cannot (does the task make sense under the policy?)."""

    kind = "TaskValidation"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from ..offline.task_validation import OfflineTaskValidation

        probe = OfflineTaskValidation().run(ctx, inputs)["Feasibility"]
        if not probe["feasible"]:
            return {"Feasibility": probe}
        steps = ", ".join(p["name"] for p in probe["path"])
        note = (f"The planned calls ({steps}) were run on a copy of the database: every call succeeded "
                "and the policy rules hold. Judge whether the task itself is one the policy allows.")
        answer = self.ask_json(ctx, inputs, "Feasibility", defaults={"reasons": [], "path": []},
                               forced={"path": probe["path"]}, note=note)
        if answer["feasible"]:
            return {"Feasibility": {"feasible": True, "reasons": [], "path": probe["path"]}}
        reasons = [f"model: {r}" for r in answer["reasons"]] or ["model: judged infeasible, no reason given"]
        return {"Feasibility": {"feasible": False, "reasons": reasons, "path": probe["path"]}}


# ---------------------------------------------------------------- the dialogue


def agent_view(messages: list[dict]) -> list[dict]:
    """What the trajectory agent sees: everything but the user's own tool use (§9)."""
    return [m for m in messages if m.get("side") != "user"]


def user_view(messages: list[dict], system: str) -> list[dict]:
    """What the user simulator sees, roles flipped: the agent's words are its `user` turns,
    its own words and tool use are `assistant`; the agent's tool traffic is hidden."""
    out = [{"role": "system", "content": system}, {"role": "user", "content": OPENING}]
    for m in messages[1:]:
        role, text = m.get("role"), m.get("content")
        if m.get("side") == "user":
            if role == "tool":
                out.append({k: v for k, v in m.items() if k != "side"})
            else:
                out.append({"role": "assistant", "content": text, "tool_calls": m.get("tool_calls") or []})
        elif role == "user":
            out.append({"role": "assistant", "content": text})
        elif role == "assistant" and isinstance(text, str) and text.strip():
            out.append({"role": "user", "content": text})
    return out


def strip_stop(text: str) -> tuple[str, bool]:
    stop = any(t in text for t in STOP_TOKENS)
    for t in STOP_TOKENS:
        text = text.replace(t, "")
    return text.strip(), stop


class Conversation:
    """One synthesis: the two sides, a fork of the instance's environment, the messages."""

    def __init__(self, worker: LLMWorker, ctx: WorkerContext, inputs: dict) -> None:
        self.w, self.ctx = worker, ctx
        seed = ctx.rng.randrange(2**31)
        self.agent_system = render(ctx, "assistant", inputs, seed, worker.dirs)
        self.user_system = render(ctx, "user", inputs, seed, worker.dirs)
        self.env = ctx.env.fork()
        self.tools = {"agent": ctx.env.tool_schemas("agent"), "user": ctx.env.tool_schemas("user")}
        turns = ctx.settings.get("max_turns")
        self.max_turns = turns if isinstance(turns, int) and turns > 0 else DEFAULT_MAX_TURNS
        rounds = worker.params(ctx).get("max_tool_rounds")
        self.rounds = rounds if isinstance(rounds, int) and rounds > 0 else DEFAULT_TOOL_ROUNDS
        self.messages: list[dict] = [{"role": "system", "content": self.agent_system}]
        self.n_calls = self.turns = 0

    def run(self) -> None:
        while self.turns < self.max_turns:
            if self.user_turn():
                return
            self.agent_turn()

    def execute(self, calls: list[dict], side: str, content: str | None) -> None:
        """Record the model's tool calls (ids renumbered: the server's ids depend on request
        order) and their real results from the forked environment."""
        renamed = []
        for tc in calls:
            self.n_calls += 1
            fn = tc.get("function") or {}
            renamed.append({"id": f"call_{self.n_calls}", "type": "function",
                            "function": {"name": str(fn.get("name") or ""),
                                         "arguments": fn.get("arguments") if isinstance(fn.get("arguments"), str)
                                         else json.dumps(fn.get("arguments") or {})}})
        mark = {"side": "user"} if side == "user" else {}
        self.messages.append({"role": "user" if side == "user" else "assistant",
                              "content": content or None, "tool_calls": renamed, **mark})
        for tc in renamed:
            result = self.env.call(tc["function"]["name"], tc["function"]["arguments"], side)
            self.messages.append({"role": "tool", "tool_call_id": tc["id"], "name": tc["function"]["name"],
                                  "content": result.content, **mark})

    def user_turn(self) -> bool:
        """The user speaks (after its own tool use, if any); True when it ends the dialogue."""
        for _ in range(self.rounds + 1):
            c = self.w.ask(self.ctx, user_view(self.messages, self.user_system), self.tools["user"],
                           what=f"user simulator, turn {self.turns + 1}")
            if c.tool_calls and self.tools["user"]:
                self.execute(c.tool_calls, "user", None)
                continue
            text, stop = strip_stop(c.content or "")
            if text:
                self.messages.append({"role": "user", "content": text})
                self.turns += 1
            elif not stop:
                raise WorkerError(f"the user simulator said nothing (turn {self.turns + 1})")
            return stop
        raise WorkerError(f"the user simulator kept calling tools (turn {self.turns + 1})")

    def agent_turn(self) -> None:
        """The agent calls tools until it answers in text (or runs out of tool rounds)."""
        for _ in range(self.rounds + 1):
            c = self.w.ask(self.ctx, agent_view(self.messages), self.tools["agent"],
                           what=f"trajectory agent, turn {self.turns}")
            if c.tool_calls:
                self.execute(c.tool_calls, "agent", c.content)
                continue
            if not (c.content or "").strip():
                raise WorkerError(f"the agent answered nothing (turn {self.turns})")
            self.messages.append({"role": "assistant", "content": c.content.strip()})
            return
        # Every tool round used and still no word to the user: a dialogue with a silent agent
        # turn is not realistic, and the user's next line would read as an answer to nothing.
        raise WorkerError(f"the agent kept calling tools for {self.rounds + 1} rounds without answering "
                          f"the user (turn {self.turns})")


class LLMDialogSynthesis(LLMWorker):
    kind = "DialogSynthesis"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from runtime.env.rules import dialog_of, state_diff

        conv = Conversation(self, ctx, inputs)
        conv.run()
        return {"Dialog": dialog_of(conv.messages, ctx.domain, ctx.env),
                "FinalState": {"initial_hash": ctx.env.hash(), "hash": conv.env.hash(),
                               "diff": state_diff(ctx.env, conv.env)}}


# ---------------------------------------------------------------- validation and repair


class LLMTrajectoryValidation(LLMWorker):
    """The deterministic checks (offline `validate`) decide first; a dialogue that passes them
    is shown to the model, whose failures are added (it cannot excuse a failed check)."""

    kind = "TrajectoryValidation"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from ..offline.trajectory import validate

        report = validate(ctx, inputs.get("TaskSpec"), inputs.get("Dialog"))
        if not report["accepted"]:
            return {"ValidationReport": report}
        judged = self.ask_json(ctx, inputs, "ValidationReport", defaults={"checks": {}, "reasons": []},
                               forced={"round": int(ctx.round)})
        checks = {c: ok and judged["checks"].get(c, True) is not False for c, ok in report["checks"].items()}
        accepted = all(checks.values()) and judged["accepted"]
        reasons = [] if accepted else ([f"model: {r}" for r in judged["reasons"]]
                                       or ["model: rejected the dialogue, no reason given"])
        return {"ValidationReport": {"accepted": accepted, "checks": checks, "reasons": reasons,
                                     "round": int(ctx.round)}}


def reexecute(messages: list[dict], env: Any) -> tuple[list[dict], Any]:
    """The messages with every tool result replaced by the real one (a model's repair may
    not invent tool output), and the environment after the calls."""
    env = env.fork()
    out: list[dict] = []
    for m in messages:
        if m.get("role") == "tool":
            continue  # results are re-made right after their call
        out.append(m)
        for tc in m.get("tool_calls") or []:
            fn = tc["function"]
            side = "user" if m.get("side") == "user" else "agent"
            result = env.call(fn["name"], fn["arguments"], side)
            out.append({"role": "tool", "tool_call_id": tc["id"], "name": fn["name"], "content": result.content,
                        **({"side": "user"} if side == "user" else {})})
    return out, env


class LLMModify(LLMWorker):
    """The model rewrites the dialogue; its tool results are re-executed, and a repair that
    ends in another state than the dialogue it repairs is refused (it would no longer match
    the FinalState the verifier is built from)."""

    kind = "Modify"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from runtime.env.rules import dialog_of

        from ..offline.trajectory import message_problem, renumber

        dialog = inputs["Dialog"]
        repaired = self.ask_json(ctx, inputs, "Dialog", defaults={"calls": [], "turns": 0})
        problem = message_problem(repaired["messages"])
        if problem is not None:
            raise WorkerError(f"the repaired dialogue is malformed: {problem}")
        messages, after = reexecute(renumber(repaired["messages"]), ctx.env)
        _, before = reexecute(dialog["messages"], ctx.env)
        if after.hash() != before.hash():
            raise WorkerError("the repair changes the dialogue's final state")
        return {"Dialog": dialog_of(messages, ctx.domain, ctx.env)}


class LLMVerificationFunction(LLMWorker):
    """The verifier is the gold path's exact effect (as offline: replayed, compared with the
    validated final state, checked on its own gold). No model is asked: assertions written by
    a model could only be weaker or wrong, and `communicate` items cannot be checked here —
    this worker does not see the Dialog, so an item the agent never said would turn an
    accepted instance into an `eigen verify` failure."""

    kind = "VerificationFunction"

    def run(self, ctx: WorkerContext, inputs: dict[str, dict]) -> dict[str, dict]:
        from ..offline.verification import OfflineVerificationFunction

        return OfflineVerificationFunction().run(ctx, inputs)


WORKERS = (LLMRandomPool, LLMUserIntent, LLMTaskValidation, LLMDialogSynthesis, LLMTrajectoryValidation,
           LLMModify, LLMVerificationFunction)


def llm_workers(backend_name: str, *, prompt_dirs: tuple[str, ...] = (), **backend_options: Any) -> dict:
    """kind → LLM worker, all sharing one backend from `runtime.backends.make_backend`.
    Raises ValueError when the backend cannot be made (unknown, no model, missing extra)."""
    from runtime.backends import BackendUnavailable, make_backend

    try:
        backend = make_backend(backend_name, **backend_options)
    except BackendUnavailable as exc:
        raise ValueError(str(exc)) from None
    dirs = tuple(str(d) for d in prompt_dirs)
    return {cls.kind: cls(backend, dirs) for cls in WORKERS}
