"""Asynchronous GRPO (trainer/async_grpo.py, staleness.py, rollout_actors.py) on the mini
bank with real Ray actors: the decoupled objective by hand; the plan is the synchronous
loop's; max_staleness 0 is the synchronous run (rewards, losses, weights); a run killed
with SIGKILL resumes to the same weights; a killed actor is replaced and its unit redone;
with K = 2 no trained group is staler than 2 and the metrics and curves are written."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("ray")

from tests.trainer import one_torch_thread  # noqa: E402, F401  # the autouse fixture
from tests.trainer.async_support import MixedRewardActor, mixed_rewards  # noqa: E402
from tests.trainer.test_grpo_loop import MINI, mini  # noqa: E402, F401  # the mini bank, its tiny model
from trainer.grpo import GRPOConfig, GRPOError, round_seed, sample_tasks, train_grpo  # noqa: E402
from trainer.grpo_math import behaviour_weights, clipped_surrogate_loss  # noqa: E402
from trainer.rollout import Rollout  # noqa: E402
from trainer.sft import load_model_and_tokenizer  # noqa: E402
from trainer.staleness import Scheduler, StaleGroupError, StepPlan, UnitResult  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "trainer" / "async_support.py"


def config(run, model_dir, out, **kw) -> GRPOConfig:
    """3 steps of 3 groups of 2; with mixed_rewards every third group is filtered, so every
    step refills once. A random tiny model never ends a turn: its tokens are trained anyway.
    lr 1e-3: Adam turns the float differences between generation's log-probs and the
    trainer's (the behaviour weights, 1 ± 1e-7) into weight differences proportional to lr."""
    base = dict(model=str(model_dir), data=[str(run)], domain=MINI, out=str(out), steps=3, tasks_per_step=3,
                group_size=2, max_refills=1, max_turns=2, max_new_tokens=8, lr=1e-3, seed=3, mask_truncated=False,
                save_every=1)
    return GRPOConfig.model_validate(base | kw)


def rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def weights_of(path: Path) -> dict:
    model, _ = load_model_and_tokenizer(path)
    return model.state_dict()


def max_diff(a: Path, b: Path) -> float:
    wa, wb = weights_of(a), weights_of(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def sync_run(mini, tmp_path_factory):
    """Today's synchronous loop (in-process generation) with the tests' mixed rewards."""
    import trainer.grpo as grpo

    run, model_dir, _ = mini
    out = tmp_path_factory.mktemp("sync") / "g"
    real = grpo.run_episodes
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(grpo, "run_episodes", lambda *a, **k: mixed_rewards(real(*a, **k)))
        result = train_grpo(config(run, model_dir, out))
    assert result.updates == 3
    return out


# ---------------------------------------------------------------- no Ray


def test_decoupled_weights_by_hand():
    prox = torch.tensor([[0.0, -1.0, -2.0, -0.5]])
    behav = torch.tensor([[0.0, -1.0, -3.0, -2.5]])  # w = 1, 1, e ≈ 2.72, e² ≈ 7.39 (above the cap)
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    w, s = behaviour_weights(prox, behav, mask, cap=5.0)
    assert w.tolist()[0][:3] == pytest.approx([0.0, 1.0, 2.718281828]) and w[0, 3] == 0.0
    assert s == {"tokens": 3.0, "capped": 1.0, "weight_sum": pytest.approx(1.0 + 2.718281828)}
    assert behaviour_weights(prox, behav, mask, cap=None)[0][0, 3] == pytest.approx(7.389056)
    # the same policy: weights exactly 1, and the loss is the plain clipped surrogate's
    new = torch.tensor([[0.0, -0.8, -2.1, -0.4]], requires_grad=True)
    adv = torch.tensor([1.5])
    ones, _ = behaviour_weights(prox, prox, mask)
    plain, _ = clipped_surrogate_loss(new, prox, adv, mask)
    weighted, _ = clipped_surrogate_loss(new, prox, adv, mask, weights=ones)
    assert torch.equal(plain, weighted)
    # a dropped token counts in the denominator (AReaL): loss = −Σ w·min(r·A, clip(r)·A) / 3
    loss, _ = clipped_surrogate_loss(new, prox, adv, mask, weights=w)
    r = torch.exp(new - prox).detach()[0]
    want = -(1.0 * min(r[1] * 1.5, 1.28 * 1.5) + 2.718281828 * min(r[2] * 1.5, 1.28 * 1.5)) / 3
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-6)


def _result(unit, rewards_of, version=0):
    groups = [[Rollout(t, "mini", [1, 2], [0, 1], [], rewards_of(t, i), [], 1) for i in range(2)]
              for t in unit.task_ids]
    return UnitResult(version, groups)


def test_plan_is_the_synchronous_sampling_and_the_gate_throttles(mini):
    """A step's units are collect()'s rounds (tasks, seeds), cut into shares; a filtered
    group is refilled from tasks the step has not drawn; the gate opens step s at version
    s − K; a re-queued unit goes first; a stale group is refused."""
    _, _, tasks = mini
    cfg = GRPOConfig(model="m", data=["d"], out="o", tasks_per_step=3, group_size=2, max_refills=2, seed=5)
    pool = {"mini": tasks}
    plan = StepPlan(4, pool, cfg, shares=2)
    units = plan.units()
    drawn = sample_tasks(pool, 3, 5, 4, 0, "mixed")
    assert [u.task_ids for u in units] == [(drawn[0].id, drawn[2].id), (drawn[1].id,)]
    assert [u.seed for u in units] == [round_seed(5, 4, 0), round_seed(5, 4, 0) + 1]
    assert plan.units() == []  # handed out once
    dead = drawn[1].id  # its group: all rewards equal, filtered
    plan.complete(units[1], _result(units[1], lambda t, i: 0.0))
    assert not plan.done and plan.units() == []  # the round is not closed yet
    plan.complete(units[0], _result(units[0], lambda t, i: float(i)))
    (refill,) = plan.units()
    assert refill.round == 1 and len(refill.task_ids) == 1 and refill.task_ids[0] not in {t.id for t in drawn}
    plan.complete(refill, _result(refill, lambda t, i: float(i), version=1))
    assert plan.done
    got = plan.collected()
    assert (got.sampled, got.kept, got.refills) == (4, 3, 1)
    assert [g[0].task_id for g in got.groups] == [drawn[0].id, drawn[2].id, refill.task_ids[0]]
    assert dead not in [g[0].task_id for g in got.groups] and plan.kept_versions() == [0, 0, 1]

    sched = Scheduler(lambda s: StepPlan(s, pool, cfg, shares=1), start=0, max_staleness=1, steps=10)
    assert sorted(sched.plans) == [0, 1]  # version 0 may feed steps 0 and 1, not 2
    first = sched.next_unit()
    assert first.step == 0
    sched.requeue(first)
    assert sched.next_unit() == first  # ahead of step 1's unit
    sched.advance(1)
    assert sorted(sched.plans) == [0, 1, 2]
    sched.complete(first, _result(first, lambda t, i: float(i)))
    assert sched.ready(0)
    sched.plans[0].versions = {k: -1 for k in sched.plans[0].versions}  # as if two versions old at step 0
    sched.max_staleness = 0
    with pytest.raises(StaleGroupError, match="max_staleness 0"):
        sched.take(0)


def test_config_key_dispatch_and_refusals(mini, tmp_path, monkeypatch):
    import trainer.async_grpo as async_grpo
    from trainer.grpo import load_grpo_config

    run, model_dir, _ = mini
    path = tmp_path / "grpo.yaml"
    path.write_text(f"model: {model_dir}\ndata: [{run}]\nout: {tmp_path / 'o'}\n"
                    "async: {max_staleness: 1, rollout_workers: 2}\n")
    cfg = load_grpo_config(path)
    assert cfg.async_.max_staleness == 1 and cfg.async_.rollout_workers == 2 and cfg.async_.behav_weight_cap == 5.0
    for name in ("grpo_tiny_async.yaml", "grpo_async_8gpu.yaml"):  # the shipped examples
        assert load_grpo_config(ROOT / "configs" / name).async_.max_staleness == 2
    seen = []
    monkeypatch.setattr(async_grpo, "train_async", lambda c, stop_at=None: seen.append(c) or "async")
    assert train_grpo(cfg) == "async" and seen == [cfg]
    import typer
    from typer.testing import CliRunner

    from trainer.cli import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    got = CliRunner().invoke(app, ["train", "grpo", str(path), "--nproc", "2"])  # refused before any launch
    assert got.exit_code == 2 and "one trainer process" in got.output and not seen[1:]
    path.write_text(f"model: x\ndata: [y]\nout: z\nasync: {{max_staleness: -1}}\n")
    with pytest.raises(GRPOError, match="async.max_staleness"):
        load_grpo_config(path)
    monkeypatch.undo()
    with pytest.raises(GRPOError, match="async.rollout_workers"):
        async_grpo.train_async(config(run, model_dir, tmp_path / "w", rollout_workers=2,
                                      **{"async": {"max_staleness": 0}}))


def test_the_vllm_actor_has_the_hf_actors_interface():
    """The GPU path is checked by contract: the same calls with the same parameters, and a
    clear refusal where vLLM is not installed."""
    from trainer.rollout_actors import HFRolloutActor, VLLMRolloutActor

    for name in ("set_weights", "set_version", "generate", "episodes"):
        assert inspect.signature(getattr(VLLMRolloutActor, name)) == inspect.signature(getattr(HFRolloutActor, name))
    hf = list(inspect.signature(HFRolloutActor.__init__).parameters)
    assert list(inspect.signature(VLLMRolloutActor.__init__).parameters)[:len(hf)] == hf
    try:
        import vllm  # noqa: F401
    except ImportError:
        from trainer.rollout import RolloutConfig

        with pytest.raises(RuntimeError, match="vllm"):
            VLLMRolloutActor("m", [], "scripted", RolloutConfig().model_dump(), None, 2)


# ---------------------------------------------------------------- with Ray


def test_staleness_zero_is_the_synchronous_run(mini, sync_run, tmp_path, ray_cluster):
    from trainer.async_grpo import train_async

    run, model_dir, _ = mini
    out = tmp_path / "a"
    result = train_async(config(run, model_dir, out, **{"async": {"max_staleness": 0}}), actor_class=MixedRewardActor)
    assert result.steps == 3 and result.updates == 3
    sync, asyn = rows(sync_run), rows(out)
    assert [r["step"] for r in asyn] == [1, 2, 3]
    for a, b in zip(sync, asyn):
        for key in ("reward_mean", "groups_sampled", "groups_kept", "refills", "trajectories", "tokens", "updated"):
            assert a[key] == b[key], key
        assert (b["groups_sampled"], b["groups_kept"], b["refills"]) == (4, 3, 1)
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["clip_frac"] - b["clip_frac"]) < 1e-6
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4
        assert b["staleness"] == {"0": 6} and b["behav_capped_frac"] == 0.0
        assert abs(b["behav_weight_mean"] - 1.0) < 1e-4  # generation's log-probs = the trainer's
        assert b["version"] == b["step"] and b["generated"] == 8 and 0 <= b["trainer_idle_frac"] <= 1
    assert max_diff(sync_run / "final", out / "final") < 1e-5
    assert max_diff(model_dir, out / "final") > 1e-3  # it did train


def test_a_run_killed_with_sigkill_resumes(mini, sync_run, tmp_path, ray_cluster):
    """A real process (joining the test's Ray cluster) killed after its first checkpoint;
    resumed, the run ends with the synchronous run's weights (K = 0 is deterministic)."""
    from trainer.async_grpo import train_async

    run, model_dir, _ = mini
    out = tmp_path / "k"
    cfg = config(run, model_dir, out, **{"async": {"max_staleness": 0}})
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.model_dump(mode="json", by_alias=True)))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               RAY_ADDRESS=ray_cluster.get_runtime_context().gcs_address)
    proc = subprocess.Popen([sys.executable, str(SUPPORT), str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "checkpoints" / "step-00000001" / "state.json"
    deadline = time.monotonic() + 240
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.is_file(), proc.stderr.read()[-3000:] if proc.poll() is not None else "no checkpoint in time"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not (out / "final").exists()
    result = train_async(cfg, actor_class=MixedRewardActor)
    assert result.resumed_from is not None and result.resumed_from >= 1 and result.steps == 3
    assert [r["step"] for r in rows(out)] == [1, 2, 3]
    assert max_diff(sync_run / "final", out / "final") < 1e-5


def test_a_killed_actor_is_replaced_and_its_unit_done_again(mini, ray_cluster):
    """ray.kill on an actor while it generates a unit: a new actor takes its place and the
    unit is generated again; both steps get all their groups."""
    from tests.trainer.async_support import GROUP, SlowActor
    from trainer.rollout_actors import ActorSpec, AsyncRollouts

    run, model_dir, tasks = mini
    cfg = config(run, model_dir, "unused", tasks_per_step=4, max_refills=0, max_new_tokens=4, max_turns=1)
    pool = {"mini": tasks}
    scheduler = Scheduler(lambda s: StepPlan(s, pool, cfg, shares=2), start=0, max_staleness=1, steps=2)
    spec = ActorSpec(str(model_dir), [str(run)], "scripted", cfg.rollout_config(), MINI, GROUP,
                     actor_class=SlowActor)
    rollouts = AsyncRollouts(scheduler, spec, workers=2)
    try:
        deadline = time.monotonic() + 120
        while not rollouts.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        slot = next(iter(rollouts.in_flight))  # an actor a second into its unit at most
        victim = rollouts.actors[slot]
        rollouts.kill_actor(slot)
        plans = [rollouts.wait_step(0)[0]]
        rollouts.publish(1, None)
        plans.append(rollouts.wait_step(1)[0])
    finally:
        rollouts.close()
    assert rollouts.actors[slot] != victim and rollouts.totals.replaced == 1 and rollouts.totals.requeued == 1
    for step, plan in enumerate(plans):  # every group of both steps is there: nothing was dropped
        got = plan.collected()
        assert got.sampled == 4 and [len(g) for g in plan.groups.values()] == [GROUP] * 4
        assert sorted(t for (r, _), g in plan.groups.items() for t in {x.task_id for x in g}) == \
            sorted(t.id for t in sample_tasks(pool, 4, cfg.seed, step, 0, "mixed"))
    assert rollouts.totals.trajectories == 2 * 4 * GROUP


def test_a_unit_that_raises_stops_the_run_with_the_reason(mini, tmp_path, ray_cluster):
    from tests.trainer.async_support import BrokenActor
    from trainer.async_grpo import train_async

    run, model_dir, _ = mini
    with pytest.raises(GRPOError, match=r"a rollout unit \(step 1, round 0\) failed: ValueError: the environment is broken"):
        train_async(config(run, model_dir, tmp_path / "b", steps=1, **{"async": {"max_staleness": 1}}),
                    actor_class=BrokenActor)


def test_staleness_two_trains_ahead_and_writes_its_metrics(mini, tmp_path, ray_cluster):
    from trainer.async_grpo import train_async

    run, model_dir, _ = mini
    out = tmp_path / "s2"
    cfg = config(run, model_dir, out, steps=4, save_every=0, log_rollouts=True,
                 **{"async": {"max_staleness": 2, "rollout_workers": 2}})
    result = train_async(cfg, actor_class=MixedRewardActor)
    assert result.steps == 4 and result.updates == 4 and result.final is not None
    got = rows(out)
    assert [r["step"] for r in got] == [1, 2, 3, 4] and [r["version"] for r in got] == [1, 2, 3, 4]
    for r in got:
        assert r["trajectories"] == 6 and sum(r["staleness"].values()) == 6
        assert all(0 <= int(k) <= 2 for k in r["staleness"])  # never staler than max_staleness
        assert 0 <= r["trainer_idle_frac"] <= 1 and 0 <= r["rollout_idle_frac"] <= 1
        assert r["trajectories_per_s"] >= 0 and r["behav_capped_frac"] >= 0  # 0: generated in earlier steps
    # two shares of a round: mixed_rewards filters no group there (positions 0-1 of each call)
    assert sum(r["generated"] for r in got) == 4 * 6 and all(r["refills"] == 0 for r in got)
    logged = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(logged) == 4 * 6 and {x["step"] for x in logged} == {1, 2, 3, 4}
    assert (out / "curves.png").stat().st_size > 0 and max_diff(model_dir, out / "final") > 1e-3
