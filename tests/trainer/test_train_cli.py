"""`eigen train ...` and `eigen eval` end to end on a CPU: a tiny model from a retail run,
SFT steps, GRPO steps on retail and airline tasks (size 0.1), evaluation; every stage runs
and writes its outputs."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from tests.trainer import one_torch_thread  # noqa: F401  # the autouse fixture
from trainer.cli import register

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, as the eigen app is
        pass

    register(app)
    return app


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_sft_grpo_eval_end_to_end(app, tmp_path):
    from tests.trainer.test_grpo_loop import make_eigen_run

    retail = make_eigen_run(tmp_path / "retail", "retail", 3)
    airline = make_eigen_run(tmp_path / "airline", "airline", 2)
    got = invoke(app, "train", "build-tiny", retail, "-o", tmp_path / "tiny", "--vocab-size", 1024)
    assert got.exit_code == 0, got.output
    (tmp_path / "sft.yaml").write_text(
        f"model: {tmp_path / 'tiny'}\ndata: {retail}\nout: {tmp_path / 'sft'}\n"
        "batch_size: 1\ngrad_accum: 2\nlr: 0.003\nmax_length: 8192\n")
    got = invoke(app, "train", "sft", tmp_path / "sft.yaml")
    assert got.exit_code == 0, got.output
    sft_rows = (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()
    assert len(sft_rows) == 2 and (tmp_path / "sft" / "final").is_dir()
    (tmp_path / "grpo.yaml").write_text(
        f"model: {tmp_path / 'sft' / 'final'}\ndata: [{retail}, {airline}]\nout: {tmp_path / 'grpo'}\n"
        "domains: separate\nsteps: 2\ntasks_per_step: 1\ngroup_size: 2\nmax_refills: 0\n"
        "max_turns: 1\nmax_new_tokens: 4\nmax_context: 8192\n")
    got = invoke(app, "train", "grpo", tmp_path / "grpo.yaml")
    assert got.exit_code == 0, got.output
    rows = [json.loads(x) for x in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["groups_sampled"] == 1 and 0.0 <= r["reward_mean"] <= 1.0 and r["rollout_s"] > 0 for r in rows)
    tasks = json.loads((tmp_path / "grpo" / "tasks.json").read_text())
    assert sorted(tasks["train"]) == ["airline", "retail"]
    assert (tmp_path / "grpo" / "curves.png").is_file() and (tmp_path / "grpo" / "final").is_dir()
    got = invoke(app, "eval", "--model", tmp_path / "grpo" / "final", "--tasks", airline / "instances.jsonl",
                 "--trials", 2, "--max-turns", 1, "--max-new-tokens", 4, "--out", tmp_path / "eval.json")
    assert got.exit_code == 0, got.output
    assert "pass^k" in got.output and "pass@k" in got.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["tasks"] == 2 and set(report["domains"]) == {"airline"}


def test_bad_inputs_exit_2(app, tmp_path):
    (tmp_path / "bad.yaml").write_text("model: x\nsteps: -1\n")
    got = invoke(app, "train", "grpo", tmp_path / "bad.yaml")
    assert got.exit_code == 2 and "error:" in got.output
    got = invoke(app, "train", "sft", tmp_path / "missing.yaml")
    assert got.exit_code == 2
    got = invoke(app, "eval", "--model", tmp_path, "--tasks", tmp_path / "nowhere")
    assert got.exit_code == 2
    got = invoke(app, "train", "build-tiny", tmp_path / "nowhere", "-o", tmp_path / "t")
    assert got.exit_code == 2


@pytest.mark.parametrize("name", ["sft_tiny.yaml", "sft_8gpu.yaml", "grpo_tiny.yaml", "grpo_8gpu.yaml"])
def test_shipped_configs_are_valid(repo_root, name):
    """The example configs under configs/ load (a renamed or removed setting fails here)."""
    from trainer.grpo import load_grpo_config
    from trainer.sft import load_config

    path = repo_root / "configs" / name
    config = (load_config if name.startswith("sft") else load_grpo_config)(path)
    assert config.out.startswith("out/")
