"""`eigen eval` on imported τ²-bench tasks of all three domains, end to end: a tiny model made
by `eigen train build-tiny` plays the agent and, as a model user, the user (telecom's user
acts on its phone); every trial is graded by τ²-bench's rule. A random model scores about 0:
what is tested is that the whole pipeline runs and reports what τ²-bench would."""

from __future__ import annotations

import json

import pytest

from tests.helpers import eigen
from tests.tau2.conftest import NO_TAU2, TAU2, TELECOM_FIRST
from tests.trainer import one_torch_thread  # noqa: F401  # the autouse fixture

pytestmark = pytest.mark.skipif(not TAU2.is_dir(), reason=NO_TAU2)
SETTINGS = dict(trials=1, max_turns=1, max_new_tokens=8, max_context=32768)


def test_eval_runs_on_imported_tasks_of_every_domain(tau2_runs, tmp_path):
    pytest.importorskip("transformers")
    from trainer.evaluate import evaluate
    from trainer.rollout import load_tasks

    tiny = tmp_path / "tiny"
    res = eigen("train", "build-tiny", str(tau2_runs["telecom"]), "-o", str(tiny), "--vocab-size", "600",
                "--hidden", "32", "--layers", "1")
    assert res.returncode == 0, res.stderr
    ids = tmp_path / "ids.txt"
    ids.write_text(f"telecom-tau2-{TELECOM_FIRST}\n")
    out = tmp_path / "eval.json"
    res = eigen("eval", "--model", str(tiny), "--tasks", str(tau2_runs["telecom"]), "--ids", str(ids),
                "--user", str(tiny), "--trials", "1", "--max-turns", "1", "--max-new-tokens", "8",
                "--max-context", "32768", "--out", str(out))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    report = json.loads(out.read_text())
    entry = report["per_task"][f"telecom-tau2-{TELECOM_FIRST}"]
    assert entry["rule"] == "tau2" and entry["n"] == 1 and entry["c"] in (0, 1)
    assert report["domains"]["telecom"]["tasks"] == 1 and not report["ungraded"]

    for domain, task_id in (("airline", "7"), ("retail", "2")):  # the same code the command runs
        tasks, problems = load_tasks([tau2_runs[domain]])
        chosen = [t for t in tasks if t.record["tau2"]["task_id"] == task_id]
        assert chosen and not problems
        got = evaluate(tiny, chosen, user=str(tiny), **SETTINGS)
        if domain == "retail":  # nl_assertions in its basis, no judge: reported, not graded
            assert not got.per_task and "need a model judge" in got.ungraded[chosen[0].id]["ungraded"]
        else:
            entry = got.per_task[chosen[0].id]
            assert entry["rule"] == "tau2" and entry["c"] == 0 and entry["reward_mean"] == 0.0
            assert entry["failures"]  # τ²-bench's reasons: the database, the refund never said
