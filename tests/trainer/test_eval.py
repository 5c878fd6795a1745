"""pass^k / pass@k against hand-computed values, and `evaluate` on the mini bank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.trainer import one_torch_thread  # noqa: F401  # the autouse fixture
from trainer.evaluate import EvalReport, aggregate, pass_at_k, pass_hat_k, print_table

ROOT = Path(__file__).resolve().parents[2]
MINI = str(ROOT / "tests" / "fixtures" / "mini")


def test_pass_hat_k_by_hand():
    # 4 trials, 2 passes: k=1 2/4; k=2 C(2,2)/C(4,2) = 1/6; k=3 none of the triples all pass
    assert pass_hat_k(4, 2, 1) == pytest.approx(0.5)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_hat_k(4, 2, 3) == 0.0
    assert pass_hat_k(5, 4, 3) == pytest.approx(4 / 10)  # C(4,3)/C(5,3)
    assert pass_hat_k(3, 3, 3) == 1.0 and pass_hat_k(3, 0, 1) == 0.0


def test_pass_at_k_by_hand():
    assert pass_at_k(4, 2, 1) == pytest.approx(0.5)
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)  # 1 − C(2,2)/C(4,2)
    assert pass_at_k(4, 2, 3) == 1.0  # any three trials hold a pass
    assert pass_at_k(5, 1, 2) == pytest.approx(1 - 6 / 10)  # 1 − C(4,2)/C(5,2)
    assert pass_at_k(3, 0, 3) == 0.0


@pytest.mark.parametrize("n,c,k", [(3, 4, 1), (3, -1, 1), (3, 2, 0), (3, 2, 4)])
def test_bad_counts_are_errors(n, c, k):
    with pytest.raises(ValueError):
        pass_hat_k(n, c, k)
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_aggregate_and_report_per_domain():
    got = aggregate([(4, 2), (4, 4)], 2)
    assert got["pass^k"][1] == pytest.approx(0.75)
    assert got["pass^k"][2] == pytest.approx((1 / 6 + 1) / 2)
    assert got["pass@k"][2] == pytest.approx((5 / 6 + 1) / 2)
    report = EvalReport("m", 2, {"a1": {"domain": "a", "n": 2, "c": 2}, "a2": {"domain": "a", "n": 2, "c": 0},
                                 "b1": {"domain": "b", "n": 2, "c": 1}})
    data = json.loads(json.dumps(report.to_json()))
    assert data["domains"]["a"]["pass^k"]["1"] == pytest.approx(0.5)
    assert data["domains"]["b"]["pass^k"]["2"] == 0.0 and data["domains"]["b"]["pass@k"]["2"] == 1.0
    assert data["all"]["pass^k"]["1"] == pytest.approx(0.5) and data["tasks"] == 3


def test_evaluate_runs_every_task_k_times(tmp_path):
    pytest.importorskip("transformers")
    from tests.trainer.test_grpo_loop import make_eigen_run
    from trainer.evaluate import evaluate
    from trainer.tiny import build_tiny_from_run

    run = make_eigen_run(tmp_path / "run", MINI, 4)
    model_dir, _ = build_tiny_from_run(run, tmp_path / "tiny", vocab_size=400, hidden=32)
    report = evaluate(model_dir, run, trials=2, max_turns=2, max_new_tokens=8, domain=MINI)
    assert len(report.per_task) == 4 and not report.problems
    assert all(t["n"] == 2 and t["domain"] == "mini" for t in report.per_task.values())
    # a random tiny model passes nothing: a balance look-up passes only when the balance is said
    assert report.scores()["pass^k"][1] == 0.0
    again = evaluate(model_dir, run, trials=2, max_turns=2, max_new_tokens=8, domain=MINI)
    assert again.per_task == report.per_task


def test_the_table_has_a_row_per_domain_and_k_and_fits_80_columns():
    from rich.console import Console

    report = EvalReport("out/a/very/long/model/path/final", 8,
                        {"a": {"domain": "mini", "n": 8, "c": 6}, "b": {"domain": "mini", "n": 8, "c": 2}})
    console = Console(width=80, record=True)
    print_table(report, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 16  # (mini, all) × k = 1..8
    assert "│ mini   │     2 │ 1 │  0.500 │  0.500 │" in text  # (6/8 + 2/8) / 2 both ways at k = 1


def test_task_selection_by_split_ids_and_training_run(tmp_path):
    """`--split` follows the training split, `--ids` reads the usual id files, and
    `--held-out-of` leaves out what a run trained on *and* copies of it under other ids."""
    from tests.trainer.test_grpo_loop import make_eigen_run
    from trainer.data import held_out
    from trainer.rollout import load_tasks
    from trainer.selection import SelectionError, select_tasks

    run = make_eigen_run(tmp_path / "run", MINI, 8)
    tasks, _ = load_tasks([run], MINI)
    held = [t for t in tasks if held_out(t.id, 0.5)]
    assert 0 < len(held) < len(tasks)
    got, notes = select_tasks(tasks, "held-out", 0.5)
    assert [t.id for t in got] == [t.id for t in held] and "left out" in notes[0]
    got, _ = select_tasks(tasks, "train", 0.5)
    assert {t.id for t in got} == {t.id for t in tasks} - {t.id for t in held}
    with pytest.raises(SelectionError, match="--fraction"):
        select_tasks(tasks, "held-out")

    listing = tmp_path / "ids.txt"
    listing.write_text(f"# two tasks\n{tasks[0].id}\n\n{tasks[2].id}\nnot-a-task\n")
    got, notes = select_tasks(tasks, ids=listing)
    assert [t.id for t in got] == [tasks[0].id, tasks[2].id] and "1 listed id(s)" in notes[0]
    (tmp_path / "tasks.json").write_text(json.dumps({"train": {}, "held_out": [tasks[1].id]}))
    assert [t.id for t in select_tasks(tasks, ids=tmp_path / "tasks.json")[0]] == [tasks[1].id]

    # an SFT output folder (config.json: data + held_out) and a GRPO one (tasks.json: train ids)
    sft = tmp_path / "sft"
    sft.mkdir()
    (sft / "config.json").write_text(json.dumps({"data": str(run), "held_out": 0.5}))
    got, _ = select_tasks(tasks, held_out_of=[sft])
    assert [t.id for t in got] == [t.id for t in held]
    grpo = tmp_path / "grpo"
    grpo.mkdir()
    (grpo / "config.json").write_text(json.dumps({"data": [str(run)], "held_out": 0.0}))
    (grpo / "tasks.json").write_text(json.dumps({"train": {"mini": [tasks[0].id]}, "held_out": []}))
    assert [t.id for t in select_tasks(tasks, held_out_of=[grpo])[0]] == [t.id for t in tasks[1:]]

    # the same instances under other ids (a second copy of the run, resealed): copies, left out
    from runtime.store.run_store import sealed

    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "manifest.json").write_text((run / "manifest.json").read_text())
    lines = (run / "instances.jsonl").read_text().splitlines()
    (copy / "instances.jsonl").write_text("".join(
        json.dumps(sealed(json.loads(x) | {"id": json.loads(x)["id"].replace("mini-", "copy-")})) + "\n"
        for x in lines))
    copies, _ = load_tasks([copy], MINI)
    got, notes = select_tasks(copies, held_out_of=[sft])
    assert [t.id for t in got] == [t.id.replace("mini-", "copy-") for t in held], notes
    assert f"0 trained on, {len(tasks) - len(held)} exact copies" in notes[0]


def test_eigen_eval_selects_tasks(tmp_path):
    pytest.importorskip("transformers")
    from tests.helpers import eigen
    from tests.trainer.test_grpo_loop import make_eigen_run
    from trainer.tiny import build_tiny_from_run

    run = make_eigen_run(tmp_path / "run", MINI, 4)
    model_dir, _ = build_tiny_from_run(run, tmp_path / "tiny", vocab_size=400, hidden=32)
    ids = tmp_path / "ids.txt"
    first = json.loads((run / "instances.jsonl").read_text().splitlines()[0])["id"]
    ids.write_text(first + "\n")
    out = tmp_path / "eval.json"
    got = eigen("eval", "--model", str(model_dir), "--tasks", str(run), "--trials", "1", "--max-turns", "1",
                "--max-new-tokens", "4", "--domain", MINI, "--ids", str(ids), "--out", str(out))
    assert got.returncode == 0, got.stdout + got.stderr
    report = json.loads(out.read_text())
    assert list(report["per_task"]) == [first] and "3 of 4 left out" in report["selection"][0]
    bad = eigen("eval", "--model", str(model_dir), "--tasks", str(run), "--split", "held-out", "--domain", MINI)
    assert bad.returncode == 2 and "--fraction" in bad.stderr and "Traceback" not in bad.stderr
