"""`eigen run` end to end on the offline backend: determinism, executors, crash and resume."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.exec.driver import RunOptions, execute, open_run
from runtime.exec.engine import Runner, RunSetupError, RunSpec, prepare
from tests.helpers import ROOT, eigen

WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")
FILES = ("instances.jsonl", "rejected.jsonl")


def run_in_process(out: Path, n: int, domain: str = "airline", seed: int = 3,
                   executor: str = "local", workers: int = 1) -> Path:
    spec = RunSpec(WORKFLOW, domain, seed, 0.1)
    opts = RunOptions(out, n, 10 * n, executor, workers)
    plan, store = open_run(spec, opts)
    assert execute(spec, plan, store, opts) == "complete"
    return out


def lines(out: Path) -> int:
    return sum((out / f).read_bytes().count(b"\n") for f in FILES if (out / f).exists())


def read(out: Path) -> dict[str, bytes]:
    return {f: (out / f).read_bytes() for f in FILES}


@pytest.mark.parametrize("domain", ["airline", "retail", "telecom"])
def test_same_seed_same_bytes(tmp_path, domain):
    a = read(run_in_process(tmp_path / "a", 8, domain))
    b = read(run_in_process(tmp_path / "b", 8, domain))
    assert a == b and a["instances.jsonl"].count(b"\n") == 8
    other = read(run_in_process(tmp_path / "c", 8, domain, seed=4))
    assert other["instances.jsonl"] != a["instances.jsonl"]


def test_records_have_what_the_dataset_promises(tmp_path):
    out = run_in_process(tmp_path / "r", 6)
    for line in (out / "instances.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["accepted"] and (r["verifier"]["assertions"] or r["verifier"]["communicate"]) and r["gold_calls"]
        assert r["messages"][0]["role"] == "system" and r["tools"]
        assert r["initial_state"]["generator_seed"] == 3 and r["provenance"]["workflow_hash"]
        assert r["validation"][-1]["accepted"] and r["trace"][-1] == "VerificationFunction"
    for line in (out / "rejected.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["stage"] in r["trace"] and r["reasons"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["accepted"] == 6 and manifest["status"] == "complete"


@pytest.mark.ray
def test_ray_executor_writes_what_local_writes(tmp_path, ray_cluster):
    local = read(run_in_process(tmp_path / "local", 10))
    distributed = read(run_in_process(tmp_path / "ray", 10, executor="ray", workers=2))
    assert local == distributed


def test_a_crashing_worker_costs_one_instance_not_the_run(tmp_path):
    spec = RunSpec(WORKFLOW, "airline", 3, 0.1)
    runner = Runner(spec)
    real = runner.workers["UserIntent"]

    class Flaky:
        kind = "UserIntent"

        def run(self, ctx, inputs):
            if ctx.rng.random() < 0.5:
                raise KeyError("boom")
            return real.run(ctx, inputs)

    runner.workers["UserIntent"] = Flaky()
    records = [runner.run(i) for i in range(12)]
    crashed = [r for r in records if not r["accepted"] and r["reasons"][0].startswith("crash: UserIntent: worker")]
    assert crashed and all(r["stage"] == "UserIntent" and r["crash"]["type"] == "KeyError" for r in crashed)
    assert all(r["crash"]["source"] == "worker" and "Traceback" in r["crash"]["traceback"] for r in crashed)
    assert any(r["accepted"] for r in records)


def test_malformed_worker_output_is_a_recorded_rejection():
    runner = Runner(RunSpec(WORKFLOW, "airline", 3, 0.1))

    class Sloppy:
        kind = "RandomPool"

        def run(self, ctx, inputs):
            return {"ScenarioSeed": {"persona": "me", "intent": 3}}

    runner.workers["RandomPool"] = Sloppy()
    r = runner.run(0)
    assert not r["accepted"] and r["stage"] == "RandomPool"
    assert any("malformed ScenarioSeed" in x for x in r["reasons"])


def test_a_domain_without_recipes_is_refused_in_words(tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    src = ROOT / "tests" / "fixtures" / "mini"
    for f in src.iterdir():
        if f.is_file():
            text = f.read_text()
            if f.name == "domain.yaml":
                text = "\n".join(line for line in text.splitlines()
                                 if not line.startswith(("offline:", "  seed: scen", "  task: scen")))
            (d / f.name).write_text(text)
    with pytest.raises(RunSetupError, match="declares no offline task recipes"):
        prepare(RunSpec(WORKFLOW, str(d)))
    p = eigen("run", WORKFLOW, "--domain", str(d), "--out", str(tmp_path / "o"), "-q")
    assert p.returncode == 1 and "offline task recipes" in p.stderr and "Traceback" not in p.stderr


def test_cli_run_then_verify(tmp_path):
    out = tmp_path / "cli"
    p = eigen("run", WORKFLOW, "--domain", "retail", "--n", "5", "--size", "0.1", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "complete: 5 accepted" in p.stderr
    v = eigen("verify", str(out))
    assert v.returncode == 0, v.stdout + v.stderr
    again = eigen("run", WORKFLOW, "--domain", "retail", "--n", "5", "--size", "0.1", "--out", str(out), "-q")
    assert again.returncode == 0 and (out / "instances.jsonl").read_text().count("\n") == 5
    clash = eigen("run", WORKFLOW, "--domain", "retail", "--n", "5", "--seed", "9", "--size", "0.1",
                  "--out", str(out), "-q")
    assert clash.returncode == 1 and "different run" in clash.stderr


def test_a_backend_that_does_not_build_fails_the_run_in_the_manifest(tmp_path):
    out = tmp_path / "bad"
    spec = RunSpec(WORKFLOW, "airline", 3, 0.1, backend="openai", model="m", concurrency=0)
    opts = RunOptions(out, 2, 4)
    plan, store = open_run(spec, opts)
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    with pytest.raises(RunSetupError, match="concurrency must be at least 1"):
        execute(spec, plan, store, opts)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "concurrency must be at least 1" in manifest["reason"]
    assert manifest["counts"]["attempted"] == 0
    # fixed and rerun: the same run resumes, and the old reason goes
    _, again = open_run(dataclasses.replace(spec, concurrency=2), opts)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running" and "reason" not in manifest
    again.close("complete")
    with pytest.raises(ValueError, match="unknown run status"):
        again.write_manifest("crashed")


def test_cli_run_with_an_unbuildable_backend_says_why_and_exits_1(tmp_path):
    out = tmp_path / "hf"
    env = {k: v for k, v in os.environ.items() if k not in ("EIGEN_MODEL", "EIGEN_BASE_URL")}
    p = subprocess.run([sys.executable, "-m", "runtime.cli.main", "run", WORKFLOW, "--backend", "hf",
                        "--domain", "retail", "--n", "2", "--size", "0.1", "--out", str(out), "-q"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "needs --model" in p.stderr and '"failed"' in p.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "needs --model" in manifest["reason"]


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_loses_and_duplicates_nothing(tmp_path):
    n = 40
    args = [sys.executable, "-m", "runtime.cli.main", "run", WORKFLOW, "--domain", "airline",
            "--n", str(n), "--seed", "5", "--size", "0.1", "-q"]
    clean = tmp_path / "clean"
    subprocess.run(args + ["--out", str(clean)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    rng = random.Random(11)
    kills, committed = 0, [0]
    for _ in range(4):
        proc = subprocess.Popen(args + ["--out", str(killed)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill while records are being written: once this attempt has committed something new
        deadline = time.monotonic() + 60
        while proc.poll() is None and lines(killed) <= committed[-1] and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        committed.append(lines(killed))
    # the test only means something if runs were really interrupted, mid-way
    assert kills >= 2 and 0 < committed[1] < n, committed
    subprocess.run(args + ["--out", str(killed)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    assert read(killed) == read(clean)
