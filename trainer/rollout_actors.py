"""Asynchronous GRPO's rollout workers: Ray actors fed by a background thread, and the
weight sync that follows every update (lazy imports: Ray, and vLLM only on the GPU path).

    rollouts = AsyncRollouts(scheduler, ActorSpec(model_path, sources, user, config, domain, group_size), workers=2)
    rollouts.publish(version, state_dict)      # after each update: ray.put once, every actor loads it
    plan, waited_s = rollouts.wait_step(step)  # blocks until the step's batch is complete
    rollouts.close()

Every actor holds the policy and generates one unit at a time (trainer/staleness.py): a
lockstep batch of episodes against the environment and the user simulator, keeping the
log-prob each token was sampled with, and tagged with the version of the weights it holds.
A thread of the trainer's process hands units to idle actors and collects what they
finish, so generation goes on while the trainer updates. Weight pushes and unit hand-outs
are ordered per actor (Ray runs an actor's calls in submission order), and the staleness
gate opens only after the push: a unit handed out at version v runs on weights ≥ v.

An actor that dies (its process killed, out of memory) is replaced by a new one, which
gets the latest weights, and the units it had in flight are queued again (same tasks and
seed) ahead of newer work: nothing is dropped. A unit that kills `MAX_ATTEMPTS` actors, or
raises, stops the run with the reason.

Engines behind the same interface (`set_weights(weights, version)`, `set_version(version)`,
`generate(unit) -> UnitResult`): `HFRolloutActor` (transformers `generate`, CPU or a GPU),
and `VLLMRolloutActor` (one GPU each, vLLM's in-process engine, weights loaded through
`VLLMGenerator.sync`, behaviour log-probs as vLLM's processed log-probs: after temperature,
as the trainer scores them). The vLLM path is written for GPUs and checked by contract
only (tests/trainer/test_async_grpo.py).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .rollout import Generated, Rollout, RolloutConfig, VLLMGenerator, _RolloutActor, run_episodes
from .staleness import Scheduler, StaleGroupError, StepPlan, Unit, UnitResult

MAX_ATTEMPTS = 3  # actors a unit may lose before the run stops
POLL_S = 0.02  # how long the feeding thread waits for a finished unit before looking for new work


class RolloutFailure(RuntimeError):
    """Rollouts cannot go on (a unit raised, or killed MAX_ATTEMPTS actors); the reason in words."""


# ---------------------------------------------------------------- the actors


class HFRolloutActor(_RolloutActor):
    """A Ray actor generating units with transformers (trainer/rollout.py's `_RolloutActor`:
    the policy, the tasks and the user simulator, loaded once)."""

    def __init__(self, model_path: str, sources: list[str], user: str, config: dict, domain: str | None,
                 group_size: int) -> None:
        super().__init__(model_path, sources, user, config, domain)
        self.group_size = group_size
        self.version = 0

    def set_weights(self, weights: Any, version: int) -> int:
        """Load a state dict (Ray resolves the pushed reference) and become `version`."""
        if weights is not None:
            self.model.load_state_dict(weights)
        self.version = version
        return version

    def set_version(self, version: int) -> int:
        """The trainer's step made no update: the same weights are the next version."""
        self.version = version
        return version

    def episodes(self, tasks: list[Any]) -> list[Rollout]:
        return run_episodes(self.model, self.tokenizer, tasks, self.user, self.config, behaviour=True)

    def generate(self, unit: Unit) -> UnitResult:
        import torch

        t0 = time.perf_counter()
        torch.manual_seed(unit.seed)
        flat = [self.tasks[i] for i in unit.task_ids for _ in range(self.group_size)]
        got = self.episodes(flat)
        g = self.group_size
        return UnitResult(self.version, [got[i:i + g] for i in range(0, len(got), g)], time.perf_counter() - t0,
                          f"pid {os.getpid()}")

    def pid(self) -> int:
        return os.getpid()


class _VLLMSampler:
    """A `generate` for run_episodes over a VLLMGenerator's engine that keeps each sampled
    token's log-prob (vLLM returns the sampled token among `logprobs`)."""

    def __init__(self, generator: VLLMGenerator) -> None:
        self.generator = generator
        self.params = generator.params.clone()
        self.params.logprobs = 1

    def __call__(self, prompts: list[list[int]]) -> list[Generated]:
        from vllm.inputs import TokensPrompt

        outs = self.generator.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], self.params,
                                           use_tqdm=False)
        result = []
        for o in outs:
            c = o.outputs[0]
            ids = list(c.token_ids)
            result.append(Generated(ids, [float(step[t].logprob) for step, t in zip(c.logprobs or [], ids)]))
        return result


class VLLMRolloutActor(HFRolloutActor):
    """The GPU engine behind the same interface (one GPU per actor, `num_gpus=1`)."""

    def __init__(self, model_path: str, sources: list[str], user: str, config: dict, domain: str | None,
                 group_size: int, gpu_memory: float = 0.9) -> None:
        from .rollout import load_tasks, make_user

        self.group_size, self.version = group_size, 0
        self.config = RolloutConfig.model_validate(config)
        try:  # processed log-probs: after temperature, the distribution the tokens are drawn from
            self.engine = VLLMGenerator(model_path, self.config, gpu_memory, logprobs_mode="processed_logprobs")
        except TypeError as exc:
            raise RuntimeError("async GRPO's vLLM actors need a vLLM with logprobs_mode (>= 0.10.2): "
                               f"{exc}") from exc
        self.tokenizer = self.engine.llm.get_tokenizer()
        self.sampler = _VLLMSampler(self.engine)
        tasks, _ = load_tasks(sources, domain)
        self.tasks = {t.id: t for t in tasks}
        self.user = make_user(user, self.config.max_turns)

    def set_weights(self, weights: Any, version: int) -> int:
        if weights is not None:
            self.engine.sync(weights)
        self.version = version
        return version

    def episodes(self, tasks: list[Any]) -> list[Rollout]:
        return run_episodes(None, self.tokenizer, tasks, self.user, self.config, generate=self.sampler)


@dataclass
class ActorSpec:
    """How to start one rollout actor (again, when one dies)."""

    model_path: str
    sources: list[str]
    user: str
    config: RolloutConfig
    domain: str | None
    group_size: int
    engine: str = "hf"  # or "vllm"
    gpu_memory: float = 0.9
    actor_class: Any = None  # another HFRolloutActor subclass (tests)

    def start(self) -> Any:
        import ray

        cls = self.actor_class or (VLLMRolloutActor if self.engine == "vllm" else HFRolloutActor)
        options = {"num_gpus": 1} if self.engine == "vllm" else {"num_cpus": 1}
        args = [self.model_path, list(self.sources), self.user, self.config.model_dump(), self.domain,
                self.group_size] + ([self.gpu_memory] if self.engine == "vllm" else [])
        return ray.remote(cls).options(**options).remote(*args)


def ray_init(workers: int, gpus: int = 0) -> None:
    """Join the Ray cluster RAY_ADDRESS names, or start a local one with a CPU per actor and
    `gpus` GPUs: Ray hands out the first `gpus` visible GPUs, so a trainer on this machine
    takes one after them (configs/grpo_async_8gpu.yaml: device cuda:7, seven actors)."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
    else:
        ray.init(num_cpus=max(1, workers), num_gpus=gpus, include_dashboard=False, log_to_driver=False)


# ---------------------------------------------------------------- feeding them


@dataclass
class Counters:
    """What the rollouts did in a window of time (the trainer takes one per metrics row)."""

    trajectories: int = 0  # generated (kept or not) by units finished in the window
    units: int = 0
    busy_s: float = 0.0  # the actors' time with a unit in flight, within the window, summed
    requeued: int = 0  # units generated again after their actor died
    replaced: int = 0  # actors started to replace dead ones
    since: float = field(default_factory=time.perf_counter)


class AsyncRollouts:
    """Ray actors generating a Scheduler's units from a feeding thread (module docstring).
    An actor is busy from the moment a unit is handed to it until the unit comes back. No
    unit is handed out before every actor of the pool has started (the counters start
    then: loading models is neither generating nor idling); a replacement started later is
    handed units once it is up, while the others go on."""

    def __init__(self, scheduler: Scheduler, spec: ActorSpec, workers: int) -> None:
        import ray

        self.ray, self.scheduler, self.spec = ray, scheduler, spec
        self.workers = workers
        self.lock = threading.Condition()
        self.actors = [spec.start() for _ in range(workers)]
        self.starting = {slot: actor.pid.remote() for slot, actor in enumerate(self.actors)}  # not ready yet
        self.in_flight: dict[int, tuple[Any, Unit, float]] = {}  # slot -> (object ref, unit, handed out at)
        self.attempts: dict[Unit, int] = {}
        self.weights: Any = None  # the ref of the latest pushed state dict (None: the start folder's)
        self.version = scheduler.version
        self.counters = Counters()
        self.totals = Counters()
        self.error: BaseException | None = None
        self.began = False  # every actor of the pool has started once
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="async-rollouts", daemon=True)
        self.thread.start()

    # ------------------------------------------------------------ the trainer's side

    def publish(self, version: int, weights: dict | None) -> None:
        """The trainer reached `version`: push the new weights (None: unchanged) to every
        actor, then open what the staleness gate allows."""
        with self.lock:
            if weights is not None:
                self.weights = self.ray.put({k: v.detach().cpu() for k, v in weights.items()})
            for actor in self.actors:
                self._send_version(actor, version, weights is not None)
            self.version = version
            self.scheduler.advance(version)
            self.lock.notify_all()

    def _send_version(self, actor: Any, version: int, new_weights: bool = True) -> None:
        if new_weights and self.weights is not None:
            actor.set_weights.remote(self.weights, version)
        else:
            actor.set_version.remote(version)

    def wait_ready(self, timeout: float = 600.0) -> float:
        """Block until every actor has started (model and tasks loaded); the seconds it took."""
        t0 = time.perf_counter()
        with self.lock:
            while not self.began and time.perf_counter() - t0 < timeout:
                if self.error is not None:
                    raise RolloutFailure(str(self.error)) from self.error
                self.lock.wait(timeout=0.1)
            if not self.began:
                raise RolloutFailure(f"{len(self.starting)} rollout actor(s) not started after {timeout:.0f} s")
            return time.perf_counter() - t0

    def wait_step(self, step: int) -> tuple[StepPlan, float]:
        """(the step's finished plan, seconds the trainer waited for it)."""
        t0 = time.perf_counter()
        with self.lock:
            while not self.scheduler.ready(step):
                if self.error is not None:
                    raise RolloutFailure(str(self.error)) from self.error
                self.lock.wait(timeout=0.5)
            try:
                return self.scheduler.take(step), time.perf_counter() - t0
            except StaleGroupError as exc:
                raise RolloutFailure(str(exc)) from exc

    def take_counters(self) -> Counters:
        """The window since the last call (units still in flight count as busy up to now)."""
        with self.lock:
            now = time.perf_counter()
            got = self.counters
            got.busy_s += sum(now - max(t, got.since) for _, _, t in self.in_flight.values())
            self.counters = Counters(since=now)
            return got

    def kill_actor(self, slot: int) -> None:
        """Kill one actor as a crash would (tests, operators): it is replaced, its units re-queued."""
        self.ray.kill(self.actors[slot], no_restart=True)

    def close(self) -> None:
        with self.lock:
            self._stop = True
            self.lock.notify_all()
        self.thread.join(timeout=30)
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001  # already dead
                pass

    # ------------------------------------------------------------ the feeding thread

    def _run(self) -> None:
        try:
            while True:
                with self.lock:
                    if self._stop:
                        return
                    self._hand_out()
                    refs = list(self.starting.values()) + [ref for ref, _, _ in self.in_flight.values()]
                    if not refs:
                        self.lock.wait(timeout=POLL_S * 5)
                        continue
                ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
                for ref in ready:
                    self._finished(ref)
        except BaseException as exc:  # noqa: BLE001  # the trainer raises it from wait_step
            with self.lock:
                self.error = exc
                self.lock.notify_all()

    def _hand_out(self) -> None:
        if not self.began:
            return
        for slot in range(self.workers):
            if slot in self.in_flight or slot in self.starting:
                continue
            unit = self.scheduler.next_unit()
            if unit is None:
                return
            self.in_flight[slot] = (self.actors[slot].generate.remote(unit), unit, time.perf_counter())

    def _finished(self, ref: Any) -> None:
        from ray.exceptions import RayActorError

        with self.lock:
            started = next((s for s, r in self.starting.items() if r == ref), None)
            slot = started if started is not None else next(s for s, (r, _, _) in self.in_flight.items() if r == ref)
        try:
            result = self.ray.get(ref)
        except RayActorError as exc:
            self._replace(slot, exc)
            return
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the actor's exception
            what = "an actor starting" if started is not None else "a rollout unit (step {}, round {})".format(
                self.in_flight[slot][1].step + 1, self.in_flight[slot][1].round)
            raise RolloutFailure(f"{what} failed: {type(cause).__name__}: {str(cause).strip()[-500:]}") from exc
        with self.lock:
            if started is not None:  # the actor is up: it may be handed units
                del self.starting[slot]
                if not self.starting and not self.began:  # the whole pool is up: the clock starts
                    self.began = True
                    self.counters = Counters(requeued=self.counters.requeued, replaced=self.counters.replaced)
                    self.totals = Counters(requeued=self.totals.requeued, replaced=self.totals.replaced)
                self.lock.notify_all()
                return
            _, unit, handed = self.in_flight.pop(slot)
            self.scheduler.complete(unit, result)
            now = time.perf_counter()
            n = sum(len(g) for g in result.groups)
            for c in (self.counters, self.totals):
                c.trajectories += n
                c.units += 1
                c.busy_s += now - max(handed, c.since)
            self.lock.notify_all()

    def _replace(self, slot: int, exc: BaseException) -> None:
        """The actor of `slot` died: a new one with the latest weights; its unit (if it had
        one) queued again, ahead of newer work."""
        with self.lock:
            unit = self.in_flight.pop(slot)[1] if slot in self.in_flight else None
            if unit is not None:
                self.attempts[unit] = self.attempts.get(unit, 0) + 1
                if self.attempts[unit] >= MAX_ATTEMPTS:
                    raise RolloutFailure(f"rollout unit (step {unit.step + 1}, round {unit.round}) lost "
                                         f"{MAX_ATTEMPTS} actors; last: {type(exc).__name__}: {str(exc)[-300:]}")
                self.scheduler.requeue(unit)
            self.totals.replaced += 1
            if self.totals.replaced > MAX_ATTEMPTS * self.workers + self.totals.units:
                raise RolloutFailure(f"rollout actors keep dying ({self.totals.replaced} replaced); last: "
                                     f"{type(exc).__name__}: {str(exc)[-300:]}")
            actor = self.spec.start()
            self._send_version(actor, self.version)
            self.actors[slot] = actor
            self.starting[slot] = actor.pid.remote()
            self.counters.replaced += 1
            if unit is not None:
                self.counters.requeued += 1
                self.totals.requeued += 1
