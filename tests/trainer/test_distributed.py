"""Data-parallel training (trainer/distributed.py) with two real processes on the CPU
(torchrun, gloo): a step is the same step whatever the number of ranks, replicated (ddp)
or sharded (fsdp); a sharded run checkpoints whole weights and resumes; rank 0 alone
writes the files; a run does not resume under another number of processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.trainer import make_run, one_torch_thread  # noqa: E402, F401
from trainer.data import load_conversations  # noqa: E402
from trainer.distributed import Distributed  # noqa: E402
from trainer.sft import SFTConfig, SFTError, load_model_and_tokenizer, train_sft  # noqa: E402
from trainer.tiny import build_tiny, corpus_texts  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "tests" / "trainer" / "dist_entry.py"


def torchrun(kind: str, config: dict, tmp: Path, nproc: int = 2, stop_at: int | None = None) -> None:
    """Run dist_entry.py under torchrun with `nproc` CPU processes; fail with their output."""
    path = tmp / f"{kind}-{len(list(tmp.glob('*.json')))}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           str(ENTRY), kind, str(path)] + ([str(stop_at)] if stop_at is not None else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"), n=10)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, run_dir):
    pairs = [(c.messages, c.tools) for c in load_conversations(run_dir, "agent")[0]]
    return build_tiny(tmp_path_factory.mktemp("tiny"), corpus_texts(pairs), vocab_size=300,
                      hidden=32, layers=2, heads=2, max_positions=512, seed=0)


def sft_config(model_dir, run_dir, out, **kw) -> dict:
    base = {"model": str(model_dir), "data": str(run_dir), "out": str(out), "batch_size": 2, "grad_accum": 1,
            "epochs": 2, "lr": 5e-3, "max_length": 512, "seed": 1, "held_out": 0.2}
    return base | kw


def weights(path: Path) -> dict:
    model, _ = load_model_and_tokenizer(path)
    return model.state_dict()


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst < 2e-4, worst


def test_rank_batches_give_every_rank_the_same_count():
    items = list(range(7))
    shares = [Distributed(rank=r, world=3).rank_batches(items, 2) for r in range(3)]
    assert [len(s) for s in shares] == [2, 2, 2]  # ranks hold 3, 2, 2 items: two micro-batches each
    assert shares[0] == [[0, 3], [6]] and shares[1] == [[1, 4], []] and shares[2] == [[2, 5], []]
    assert sorted(i for s in shares for b in s for i in b) == items
    assert Distributed().rank_batches(items, 3) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_ranks_take_the_steps_of_one_process(tmp_path, model_dir, run_dir, parallel):
    """2 ranks × 1 micro-batch of 2 = 1 process × 2 micro-batches of 2, step for step."""
    single = tmp_path / "single"
    train_sft(SFTConfig(**sft_config(model_dir, run_dir, single, grad_accum=2)))
    multi = tmp_path / "multi"
    torchrun("sft", sft_config(model_dir, run_dir, multi, parallel=parallel), tmp_path)
    assert_same_weights(single / "final", multi / "final")
    one = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (multi / "metrics.jsonl").read_text().splitlines()]  # rank 0 alone wrote
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"] and a["sequences"] == b["sequences"]
        assert abs(a["loss"] - b["loss"]) < 1e-4 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-3
        assert ("eval_loss" in a) == ("eval_loss" in b)
        if "eval_loss" in a:
            assert abs(a["eval_loss"] - b["eval_loss"]) < 1e-4
    config = json.loads((multi / "config.json").read_text())
    assert config["world_size"] == 2 and config["parallel"] == parallel
    # nothing sharded outlives the process group (else gloo aborted at exit now and then)
    assert [json.loads((multi / f"alive-rank{r}.json").read_text()) for r in (0, 1)] == [0, 0]
    saved = json.loads((multi / "final" / "config.json").read_text())
    assert saved["architectures"] == ["LlamaForCausalLM"]


def test_a_sharded_run_resumes_from_its_checkpoint(tmp_path, model_dir, run_dir):
    """fsdp, interrupted after step 3 (checkpoint at 2: gathered weights + full optimizer
    state), resumed: the same weights as an uninterrupted single process."""
    single = tmp_path / "single"
    train_sft(SFTConfig(**sft_config(model_dir, run_dir, single, grad_accum=2, epochs=3)))
    cut = tmp_path / "cut"
    cfg = sft_config(model_dir, run_dir, cut, parallel="fsdp", epochs=3, save_every=2)
    torchrun("sft", cfg, tmp_path, stop_at=3)
    assert not (cut / "final").exists() and (cut / "checkpoints" / "step-00000002" / "optimizer.pt").is_file()
    torchrun("sft", cfg, tmp_path)
    assert_same_weights(single / "final", cut / "final")
    steps = [json.loads(x)["step"] for x in (cut / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))
    # the run's steps are those of 2 ranks: one process may not take it over
    with pytest.raises(SFTError, match="world_size"):
        train_sft(SFTConfig(**cfg))


# ---------------------------------------------------------------- GRPO


def update_config(model_dir, out, **kw) -> dict:
    base = {"model": str(model_dir), "data": ["unused"], "out": str(out), "lr": 1e-2, "grad_accum": 2,
            "ppo_epochs": 2, "temperature": 1.0, "batch_seed": 7}
    return base | kw


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_a_grpo_update_over_two_ranks_is_the_update_over_one(tmp_path, model_dir, parallel):
    """A fixed batch of 8 trajectories (different lengths, masked spans), two PPO epochs:
    split over 2 ranks (4 each, fsdp pads nothing here but shards the weights) it gives the
    weights and stats of one process with all 8, since every loss token of the batch weighs
    1 / (the batch's loss tokens) wherever it is."""
    one, two = tmp_path / "one", tmp_path / "two"
    torchrun("update", update_config(model_dir, one), tmp_path, nproc=1)
    torchrun("update", update_config(model_dir, two, parallel=parallel), tmp_path, nproc=2)
    assert_same_weights(one / "model", two / "model")
    assert [json.loads((two / f"alive-rank{r}.json").read_text()) for r in (0, 1)] == [0, 0]
    a, b = (json.loads((d / "stats.json").read_text()) for d in (one, two))
    assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["clip_frac"] - b["clip_frac"]) < 1e-6
    assert a["clip_frac"] > 0  # the second epoch moved away from the old policy far enough to clip
    before = weights(model_dir)
    after = weights(one / "model")
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 1e-3


def test_grpo_runs_sharded_over_two_ranks(tmp_path, mini_domain_dir):
    """The mini bank, 2 ranks, fsdp computing in bfloat16, a KL reference: the ranks split the groups, the filter
    sees them all, the kept batch is trained, rank 0 writes one metrics row per step, all
    rollouts, checkpoints and a final model that loads."""
    from tests.trainer.test_grpo_loop import make_eigen_run
    from trainer.tiny import build_tiny_from_run

    run = make_eigen_run(tmp_path / "run", str(mini_domain_dir), 6)
    tiny, _ = build_tiny_from_run(run, tmp_path / "tiny", vocab_size=400, hidden=32)
    out = tmp_path / "grpo"
    config = {"model": str(tiny), "data": [str(run)], "domain": str(mini_domain_dir), "out": str(out),
              "tasks_per_step": 3, "group_size": 2, "max_refills": 0, "max_turns": 2, "max_new_tokens": 8,
              "mask_truncated": False, "steps": 2, "lr": 1e-2, "kl_coef": 0.05, "parallel": "fsdp", "dtype": "bfloat16", "log_rollouts": True, "save_every": 1}
    torchrun("grpo-mixed", config, tmp_path)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:  # 3 groups over 2 ranks (2 + 1), all kept, all trained
        assert r["groups_sampled"] == 3 and r["groups_kept"] == 3 and r["trajectories"] == 6
        assert r["updated"] and r["tokens"] > 0 and r["reward_mean"] == 0.5 and "kl" in r
    logged = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(logged) == 12 and {x["step"] for x in logged} == {1, 2}
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert [json.loads((out / f"alive-rank{r}.json").read_text()) for r in (0, 1)] == [0, 0]
    assert_same_weights(out / "final", out / "checkpoints" / "step-00000002")
    before, after = weights(tiny), weights(out / "final")
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 1e-4


# ---------------------------------------------------------------- the command


def test_eigen_train_nproc_launches_torchrun(tmp_path, model_dir, run_dir):
    """`eigen train sft CONFIG --nproc 2` runs two ranks and reports once; a bad config
    fails once, before anything is launched."""
    from tests.helpers import eigen

    out = tmp_path / "out"
    (tmp_path / "sft.json").write_text(json.dumps(sft_config(model_dir, run_dir, out, epochs=1)))
    got = eigen("train", "sft", str(tmp_path / "sft.json"), "--nproc", "2")
    assert got.returncode == 0, (got.stdout + got.stderr)[-3000:]
    assert got.stdout.count("sft: ") == 1 and (out / "final" / "config.json").is_file()
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    (tmp_path / "bad.json").write_text(json.dumps({"model": "x", "data": "y", "out": "z", "epochs": 0}))
    got = eigen("train", "sft", str(tmp_path / "bad.json"), "--nproc", "2")
    assert got.returncode == 2 and got.stderr.count("error:") == 1 and "torch.distributed" not in got.stderr
