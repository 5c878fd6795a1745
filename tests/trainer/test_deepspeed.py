"""`parallel: deepspeed` (trainer/deepspeed_strategy.py) with two real processes on the CPU
(torchrun, gloo), as tests/trainer/test_distributed.py checks ddp and fsdp: ZeRO-3 SFT
interrupted and resumed over two ranks takes one process's steps; a ZeRO-2 GRPO update over
two ranks is the update of one process. The shipped configs are the ones tested. Without
the `deepspeed` extra the process tests are skipped (the config rules still run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.trainer import one_torch_thread  # noqa: E402, F401
from tests.trainer.test_distributed import (  # noqa: E402, F401  # the helpers and fixtures of the ddp/fsdp tests
    assert_same_weights,
    model_dir,
    run_dir,
    sft_config,
    torchrun,
    update_config,
    weights,
)
from trainer.sft import SFTConfig, SFTError, train_sft  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ZERO2, ZERO3 = (str(ROOT / "configs" / "deepspeed" / f"zero{n}.json") for n in (2, 3))

try:
    import deepspeed  # noqa: F401

    HAVE_DEEPSPEED = True
except ImportError:
    HAVE_DEEPSPEED = False
needs_deepspeed = pytest.mark.skipif(not HAVE_DEEPSPEED, reason="the deepspeed extra is not installed "
                                     "(pip install -e '.[deepspeed]')")


def test_the_deepspeed_config_leaves_the_step_to_the_trainer(tmp_path):
    from trainer.deepspeed_strategy import engine_config

    for path, stage in ((ZERO2, 2), (ZERO3, 3), (None, 3)):
        got = engine_config(path, "bfloat16", 1.0)
        assert got["zero_optimization"]["stage"] == stage and got["bf16"] == {"enabled": True}
        assert got["gradient_accumulation_steps"] == 1 and got["gradient_clipping"] == 1.0
    bad = tmp_path / "ds.json"
    bad.write_text(json.dumps({"zero_optimization": {"stage": 3}, "train_batch_size": 64, "gradient_clipping": "auto"}))
    with pytest.raises(SFTError, match="train_batch_size come from the training config"):
        engine_config(str(bad), "float32", None)
    bad.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    with pytest.raises(SFTError, match="stage must be 2 or 3"):
        engine_config(str(bad), "float32", None)
    bad.write_text("{not json")
    with pytest.raises(SFTError, match="cannot read it as JSON"):
        engine_config(str(bad), "float32", None)
    assert SFTConfig(model="m", data="d", out="o", parallel="deepspeed", deepspeed_config=ZERO2).parallel == "deepspeed"


@needs_deepspeed
def test_zero3_over_two_ranks_interrupted_and_resumed_takes_the_steps_of_one_process(tmp_path, model_dir, run_dir):
    single = tmp_path / "single"
    train_sft(SFTConfig(**sft_config(model_dir, run_dir, single, grad_accum=2, epochs=3)))
    cut = tmp_path / "cut"
    cfg = sft_config(model_dir, run_dir, cut, parallel="deepspeed", deepspeed_config=ZERO3, epochs=3, save_every=2)
    torchrun("sft", cfg, tmp_path, stop_at=3)
    ckpt = cut / "checkpoints" / "step-00000002"
    assert not (cut / "final").exists() and (ckpt / "deepspeed").is_dir() and not (ckpt / "optimizer.pt").exists()
    assert_same_weights(ckpt, ckpt)  # whole weights: a model folder any run loads
    torchrun("sft", cfg, tmp_path)
    assert_same_weights(single / "final", cut / "final")
    one = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (cut / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"] and abs(a["loss"] - b["loss"]) < 1e-4
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-3
    assert json.loads((cut / "final" / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    with pytest.raises(SFTError, match="world_size"):  # two ranks' steps: one process may not take over
        train_sft(SFTConfig(**cfg))


@needs_deepspeed
def test_a_zero2_grpo_update_over_two_ranks_is_the_update_over_one(tmp_path, model_dir, monkeypatch):
    import trainer.distributed
    from tests.trainer.dist_entry import update

    one, two = tmp_path / "one", tmp_path / "two"
    monkeypatch.setattr(trainer.distributed, "BUCKET", trainer.distributed.BUCKET)  # update() changes it: restored
    update(update_config(model_dir, one))  # one process, here
    torchrun("update", update_config(model_dir, two, parallel="deepspeed", deepspeed_config=ZERO2), tmp_path)
    assert_same_weights(one / "model", two / "model")
    a, b = (json.loads((d / "stats.json").read_text()) for d in (one, two))
    assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["clip_frac"] - b["clip_frac"]) < 1e-6
    assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4 and a["clip_frac"] > 0
    before, after = weights(model_dir), weights(two / "model")
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 1e-3
