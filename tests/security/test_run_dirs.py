"""Run directories (issue 16, findings 4, 5, 7 and 8): one writer at a time, no code ever
loaded from inside a run directory, default run directories always under runs/, and a damaged
run store answered with one line, never a traceback. The lock and verify are tested through
real `eigen` processes: what matters is what a second process, or a SIGKILL, does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eigenlang.domain import load_domain
from eigenlang.emit import domain_hash
from runtime.exec.driver import RunOptions, execute, open_run
from runtime.exec.engine import RunSpec
from runtime.store.run_store import RunLock, RunLocked, canonical_line, default_run_dir, sealed, slug
from tests.helpers import ROOT, eigen, workflow_copy

WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")
MINI = ROOT / "tests" / "fixtures" / "mini"


def make_run(out: Path, domain: str = str(MINI), n: int = 3) -> Path:
    spec = RunSpec(WORKFLOW, domain, 0, 0.25)
    opts = RunOptions(out, n, 20 * n)
    plan, store = open_run(spec, opts)
    assert execute(spec, plan, store, opts) == "complete"
    return out


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


# ---------------------------------------------------------------- one writer


def test_a_second_run_on_the_same_out_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "runtime.cli.main", "run", WORKFLOW, "--domain", str(MINI), "--size", "0.25",
           "--n", "100000", "--out", str(out), "-q"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not lines(out / "instances.jsonl"):  # it is writing
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first run never committed a record"
            time.sleep(0.1)
        second = eigen("run", WORKFLOW, "--domain", str(MINI), "--size", "0.25", "--n", "5", "--out", str(out), "-q")
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        evolve = eigen("evolve", WORKFLOW, "--domain", str(MINI), "--size", "0.25", "--n", "5", "--out", str(out), "-q")
        assert evolve.returncode == 2 and f"pid {first.pid}" in evolve.stderr, evolve.stderr
        assert first.poll() is None  # refusing did not disturb the writer
    finally:
        first.kill()  # SIGKILL: no cleanup runs; the kernel drops the lock with the process
        first.wait()
    accepted = len(lines(out / "instances.jsonl"))
    third = eigen("run", WORKFLOW, "--domain", str(MINI), "--size", "0.25", "--n", str(accepted + 3),
                  "--out", str(out), "-q")
    assert third.returncode == 0, third.stderr
    indices = sorted(r["index"] for f in ("instances.jsonl", "rejected.jsonl") for r in lines(out / f))
    assert indices == list(range(len(indices)))  # nothing written twice


def test_the_lock_in_process(tmp_path):
    lock = RunLock(tmp_path)
    with pytest.raises(RunLocked, match=r"pid \d+") as info:
        make_run(tmp_path)
    assert info.value.pid is not None
    lock.release()
    make_run(tmp_path)  # released: the run goes ahead, and its store releases on close
    RunLock(tmp_path).release()


def test_a_planted_lock_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    with pytest.raises(Exception, match="cannot open the run lock"):
        RunLock(out)
    assert victim.read_text() == "precious"


# ---------------------------------------------------------------- default run directories


@pytest.mark.parametrize("name", ["../../../escaped", "/etc/x", "..", ".hidden", "a/b\\c d", "", "é∂"])
def test_default_run_dir_is_one_safe_segment_under_runs(name):
    path = default_run_dir(name, name, 0)
    assert path.parent == Path("runs") and len(path.parts) == 2
    assert not path.name.startswith((".", "-")) and re.fullmatch(r"[A-Za-z0-9_.-]+", path.name)
    assert slug("../../../escaped") == "escaped"


def test_a_hostile_workflow_name_stays_under_runs(tmp_path):
    wf = workflow_copy(tmp_path) / "eigendata.yaml"
    wf.write_text(re.sub(r"(?m)^workflow: .*$", 'workflow: "../../../escaped"', wf.read_text()))
    cwd = tmp_path / "a" / "b" / "c"
    cwd.mkdir(parents=True)
    p = eigen("run", str(wf), "--n", "1", "--size", "0.25", "-q", cwd=cwd)
    assert not list(tmp_path.rglob("escaped*")) or all(cwd / "runs" in q.parents for q in tmp_path.rglob("escaped*"))
    if p.returncode == 0:  # (a checker may also refuse the name; it must never escape)
        assert [q.name for q in (cwd / "runs").iterdir()] == ["escaped-mini-0"]


# ---------------------------------------------------------------- verify runs no code from the run


def _mark(folder: Path, marker: Path, file: str = "tools.py") -> None:
    """Append code to `file` that leaves `marker` behind when imported."""
    with open(folder / file, "a", encoding="utf-8") as fh:
        fh.write(f"\nopen({str(marker)!r}, 'w').write('imported')\n")


def test_verify_never_imports_a_domain_shipped_inside_the_run(tmp_path):
    run = make_run(tmp_path / "run")
    evil, marker = run / "mini", tmp_path / "marker"
    shutil.copytree(MINI, evil, ignore=shutil.ignore_patterns("__pycache__"))
    _mark(evil, marker)
    spec, _ = load_domain(evil)
    digest = domain_hash(spec)  # the run directory claims exactly the shipped code
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "domain_dir": str(evil), "domain_hash": digest}))
    records = lines(run / "instances.jsonl")
    for r in records:
        r["initial_state"]["domain_hash"] = digest
    (run / "instances.jsonl").write_bytes(b"".join(canonical_line(sealed(r)) for r in records))

    p = eigen("verify", str(run))
    assert not marker.exists(), "verify imported code from inside the run directory"
    assert p.returncode == 1 and "inside the run directory" in p.stdout, p.stdout + p.stderr


def test_verify_runs_a_domain_folder_only_when_its_code_is_what_the_run_used(tmp_path):
    dom, marker = tmp_path / "dom", tmp_path / "marker"
    shutil.copytree(MINI, dom, ignore=shutil.ignore_patterns("__pycache__"))
    (dom / "helper.py").write_text("RATE = 1\n")
    with open(dom / "tools.py", "a", encoding="utf-8") as fh:  # a helper imported by path
        fh.write("\nimport importlib.util as _u, pathlib as _p\n"
                 "_s = _u.spec_from_file_location('_mini_helper', _p.Path(__file__).with_name('helper.py'))\n"
                 "_s.loader.exec_module(_u.module_from_spec(_s))\n")
    run = make_run(tmp_path / "run", str(dom))
    assert eigen("verify", str(run)).returncode == 0
    _mark(dom, marker, "helper.py")  # changed after the run: not the code the run used
    p = eigen("verify", str(run))
    assert not marker.exists(), "verify ran a helper module that changed since the run"
    assert p.returncode == 1 and "its code is not run" in p.stdout, p.stdout + p.stderr


# ---------------------------------------------------------------- damaged run stores


def _manifest_list(run: Path) -> str:
    (run / "manifest.json").write_text("[]")
    return "manifest.json"


def _record_list(run: Path) -> str:
    text = (run / "instances.jsonl").read_text().splitlines()
    (run / "instances.jsonl").write_text("\n".join([text[0], "[]", *text[2:]]) + "\n")
    return "instances.jsonl:2"


def _record_without_index(run: Path) -> str:
    records = lines(run / "instances.jsonl")
    del records[1]["index"]
    (run / "instances.jsonl").write_bytes(b"".join(canonical_line(sealed(r)) for r in records))
    return "instances.jsonl:2"


def _records_dir(run: Path) -> str:
    (run / "instances.jsonl").unlink()
    (run / "instances.jsonl").mkdir()
    return "instances.jsonl"


DAMAGE = [_manifest_list, _record_list, _record_without_index, _records_dir]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("good") / "run")


def damaged(good_run: Path, tmp_path: Path, damage) -> tuple[Path, str]:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    return run, damage(run)


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__.strip("_"))
def test_resuming_a_damaged_store_says_where_in_one_line(good_run, tmp_path, damage):
    from runtime.store.run_store import StoreError

    run, where = damaged(good_run, tmp_path, damage)
    spec = RunSpec(WORKFLOW, str(MINI), 0, 0.25)
    with pytest.raises(StoreError) as info:
        open_run(spec, RunOptions(run, 5, 100))
    assert where in str(info.value) and "damaged" in str(info.value) and "\n" not in str(info.value)
    RunLock(run).release()  # the refused store let go of the directory
    if damage is _record_without_index:  # and the command line says it in one line, exit 1
        p = eigen("run", WORKFLOW, "--domain", str(MINI), "--size", "0.25", "--n", "5", "--out", str(run), "-q")
        assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
        [line] = [x for x in p.stderr.splitlines() if x.startswith("error:")]
        assert where in line and "damaged" in line, line


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__.strip("_"))
@pytest.mark.parametrize("command", ["verify", "export", "report"])
def test_reading_a_damaged_store_says_where_in_one_line(good_run, tmp_path, damage, command):
    from runtime.cli.main import app

    run, where = damaged(good_run, tmp_path, damage)
    args = {"verify": ["--json"], "export": ["-o", str(tmp_path / "x.jsonl")], "report": []}[command]
    res = CliRunner().invoke(app, [command, str(run), *args])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    if command == "verify" and ":" in where:  # a bad record fails its own line; the others are checked
        failures = json.loads(res.stdout)["failures"]
        assert [f["line"] for f in failures] == [int(where.split(":")[1])], failures
        return
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error:") and where in line, line


@pytest.mark.parametrize("damage", [_manifest_list, _records_dir], ids=lambda d: d.__name__.strip("_"))
def test_eval_and_training_refuse_a_damaged_store_in_words(good_run, tmp_path, damage):
    from runtime.store.verify import RunDirError
    from trainer.rollout import load_tasks

    run, where = damaged(good_run, tmp_path, damage)
    with pytest.raises(RunDirError, match=re.escape(where.split(":")[0])):
        load_tasks([run])
