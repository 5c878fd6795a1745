"""Overlap between evaluation and training tasks (trainer/overlap.py), and the paired
statistics bench/learning.py reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.store.run_store import sealed
from tests.trainer.test_grpo_loop import MINI, make_eigen_run
from trainer.data import load_instances
from trainer.overlap import exact_key, near_key, overlap

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("overlap")
    train = make_eigen_run(base / "train", MINI, 12)
    other = base / "other"  # another world: the bench's held-out seed
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "runtime.cli.main", "run", str(ROOT / "workflows" / "eigendata.yaml"),
                    "--domain", MINI, "--n", "8", "--size", "0.1", "--seed", "1000", "--out", str(other), "-q"],
                   cwd=ROOT, check=True, capture_output=True)
    return load_instances(train)[0], load_instances(other)[0]


def test_another_world_has_no_copy_but_near_ones(runs):
    train, other = runs
    report = overlap(train, other)
    assert report.eval_tasks == 8 and report.train_tasks == 12 and not report.exact
    assert report.unseen_all > 0  # other account ids: values no training task uses
    assert "0 exact duplicates" in report.summary()
    same_kind = {near_key(r) for r in train}
    assert len(report.near) == sum(near_key(r) in same_kind for r in other)


def test_a_copy_under_another_id_is_exact(runs):
    train, _ = runs
    copies = [sealed(dict(r, id=r["id"] + "-copy", persona={"name": "someone else"})) for r in train[:3]]
    report = overlap(train, copies)
    assert report.exact == [r["id"] for r in copies]  # persona and id do not make another episode
    changed = json.loads(json.dumps(train[0]))
    changed["verifier"]["communicate"] = ["something else"]
    assert exact_key(changed) != exact_key(train[0])
    assert near_key(changed) == near_key(train[0])


def test_paired_bootstrap_is_centred_on_the_mean_difference():
    from bench.learning import paired

    tasks = {0: [{"n": 4, "before": 0, "after": 2}, {"n": 4, "before": 1, "after": 1}],
             1: [{"n": 4, "before": 0, "after": 4}, {"n": 4, "before": 2, "after": 1}]}
    got = paired(tasks, boot=2000)
    assert got["n"] == 4 and got["diff"] == pytest.approx((0.5 + 0 + 1 - 0.25) / 4)
    assert got["lo"] <= got["diff"] <= got["hi"] and got["lo"] < got["hi"]
    flat = paired({0: [{"n": 2, "before": 1, "after": 1}] * 5})
    assert flat["diff"] == flat["lo"] == flat["hi"] == 0.0
