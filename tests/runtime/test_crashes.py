"""Crashes are not rejections: a Python exception in a tool, a generator, a recipe or a worker is
recorded as a crash with its traceback in the run directory, shown by `eigen report`, and makes
`eigen run` exit 1 past `--max-crash-rate` (docs/CONTRACTS.md §10), under both executors.

The fixture is the mini bank as a user would break it: `get_account` looks some ids up in a
table its author forgot to fill (KeyError), and the split-payment recipe names a tool that
does not exist.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from runtime.env import Environment
from runtime.exec.driver import RunOptions, execute, open_run
from runtime.exec.engine import RunSpec
from tests.helpers import ROOT, eigen

WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")
FILES = ("instances.jsonl", "rejected.jsonl")
ARGS = ("--n", "8", "--size", "0.25", "--seed", "0", "-q")  # 5 accounts: A394 A430 A776 A864 A911


def broken_domain(where: Path, *, tool: bool = True, recipe: bool = True, generator: bool = False) -> Path:
    """A copy of tests/fixtures/mini with the chosen bugs."""
    d = where / "bank"
    shutil.copytree(ROOT / "tests" / "fixtures" / "mini", d, ignore=shutil.ignore_patterns("__pycache__"))

    def edit(name: str, old: str, new: str) -> None:
        text = (d / name).read_text()
        assert old in text, (name, old)
        (d / name).write_text(text.replace(old, new))

    if tool:  # ids ending in 4 (A394, A864) are looked up in the empty table
        edit("tools.py", "def get_account(ctx, account_id: str) -> dict:\n",
             "FLAGGED = {}\n\n\ndef get_account(ctx, account_id: str) -> dict:\n"
             "    if account_id.endswith(\"4\"):\n        return FLAGGED[account_id]\n")
    if recipe:
        edit("scenarios.py", '_call("transfer", src=src["account_id"], dst=ctx["dst"], amount=first)',
             '_call("transfer_funds", src=src["account_id"], dst=ctx["dst"], amount=first)')
    if generator:
        edit("generate.py", "    return {\"accounts\": accounts, \"transfers\": []}",
             "    return {\"accounts\": accounts, \"transfers\": []} if seed != 5 else accounts[\"nope\"]")
    return d


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    return broken_domain(tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="module")
def crashed_run(bank, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "crashed"
    p = eigen("run", WORKFLOW, "--domain", str(bank), "--out", str(out), *ARGS)
    return out, p


def cli(*args: str):
    """`eigen run` / `eigen report` in this process (the entry point itself: `crashed_run`)."""
    from runtime.cli import data_cmds, run_cmds

    app = typer.Typer()
    run_cmds.register(app)
    data_cmds.register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


def records(out: Path, name: str = "rejected.jsonl") -> list[dict]:
    return [json.loads(x) for x in (out / name).read_text().splitlines()]


def test_crashes_are_recorded_apart_and_the_run_exits_1(crashed_run, tmp_path):
    out, p = crashed_run
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["accepted"] == 8  # the work was done
    crashed = [r for r in records(out) if "crash" in r]
    assert len(crashed) == manifest["counts"]["crashed"] >= 2
    assert manifest["counts"]["rejected"] == len(records(out)) - len(crashed)
    assert f"{len(crashed)} crashed of {manifest['counts']['attempted']} tried" in p.stderr
    assert f"{len(crashed)} of {manifest['counts']['attempted']} instances crashed" in p.stderr
    assert "more than --max-crash-rate 0" in p.stderr

    kinds = {(r["crash"]["source"], r["crash"]["where"], r["crash"]["type"], r["stage"]) for r in crashed}
    assert ("tool", "get_account", "KeyError", "TaskValidation") in kinds  # the gold path ran it first
    assert ("recipe", "scenarios.py:task", "RecipeError", "UserIntent") in kinds
    for r in crashed:
        assert r["reasons"][0].startswith(f"crash: {r['stage']}: {r['crash']['source']}")
        assert r["crash"]["file"] == f"crashes/{r['index']:06d}.txt" and "traceback" not in r["crash"]
        text = (out / r["crash"]["file"]).read_text()
        assert text.startswith(f"instance {r['id']} (index {r['index']})\nstage: {r['stage']}\n")
        assert "Traceback (most recent call last)" in text and str(out.parent) not in text
        assert str(ROOT) not in text  # portable: the same bytes on any machine
        if r["crash"]["source"] == "tool":
            assert 'File "<domain>/tools.py"' in text and "return FLAGGED[account_id]" in text
            assert "KeyError: 'A" in text
            assert "get_account" in p.stderr
        else:
            assert "unknown tool 'transfer_funds'; did you mean 'transfer'?" in text
    assert sorted(f.name for f in (out / "crashes").iterdir()) == sorted(f"{r['index']:06d}.txt" for r in crashed)
    assert "crashes/" in p.stderr and "TaskValidation: tool get_account raised KeyError" in p.stderr

    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["crashed"] == len(crashed)
    assert report["crashes"]["by_type"] == {"KeyError": sum(r["crash"]["type"] == "KeyError" for r in crashed),
                                            "RecipeError": sum(r["crash"]["type"] == "RecipeError" for r in crashed)}
    assert set(report["crashes"]["by_stage"]) == {"TaskValidation", "UserIntent"}
    # a crash is no rejection: the rejection tables do not count it
    assert all(g["reason"] != "crash" and not g["reason"].startswith("crash:")
               for st in report["rejections"] for g in st["reasons"])
    html = (out / "report.html").read_text()
    for r in crashed:
        assert f'href="{r["crash"]["file"]}"' in html


def test_eigen_report_and_a_tolerant_rerun(crashed_run):
    out, _ = crashed_run
    res = cli("report", out)
    assert res.exit_code == 0 and "crashed" in res.output and "KeyError" in res.output, res.output
    # the same directory, resumed (nothing left to do) with crashes tolerated: exit 0
    res = cli("run", WORKFLOW, "--domain", json.loads((out / "manifest.json").read_text())["domain_dir"],
              "--out", out, *ARGS, "--max-crash-rate", "0.9")
    assert res.exit_code == 0, res.output
    assert "crashed" in res.output and "more than --max-crash-rate" not in res.output


def test_a_clean_domain_crashes_nothing(tmp_path):
    clean = broken_domain(tmp_path, tool=False, recipe=False)
    out = tmp_path / "clean"
    res = cli("run", WORKFLOW, "--domain", clean, "--out", out, *ARGS)
    assert res.exit_code == 0, res.output
    assert not (out / "crashes").exists() and "crash" not in (out / "rejected.jsonl").read_text()
    assert json.loads((out / "manifest.json").read_text())["counts"]["crashed"] == 0


def test_a_crashing_generator_fails_the_run_with_its_traceback(tmp_path):
    d = broken_domain(tmp_path, tool=False, recipe=False, generator=True)
    out = tmp_path / "gen"
    p = eigen("run", WORKFLOW, "--domain", str(d), "--out", str(out), "--seed", "5", "-q")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "the database generator of domain 'mini' crashed" in p.stderr and "KeyError" in p.stderr
    text = (out / "crashes" / "generator.txt").read_text()
    assert 'File "<domain>/generate.py"' in text and "KeyError: 'nope'" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "crashes/generator.txt" in manifest["reason"]


def test_a_tool_crash_is_the_calls_error_result_and_the_instances_crash(bank):
    from eigenlang import load_domain

    domain, _ = load_domain(bank)
    env = Environment.from_domain(domain, 0, 0.25)
    quiet = env.call("get_account", {"account_id": "A864"})  # nobody listening: only the result
    assert not quiet.ok and quiet.error == "crash" and quiet.content == "Error: get_account raised KeyError: 'A864'"
    env.crash_log = []
    fork = env.fork().fork()
    r = fork.call("get_account", {"account_id": "A864"})
    assert (r.ok, r.error, r.content) == (quiet.ok, quiet.error, quiet.content)  # what the agent sees
    assert fork.call("get_account", {"account_id": "A430"}).ok
    assert fork.call("get_account", {"account_id": "A999"}).error == "precondition"  # a refusal, no crash
    assert len(env.crash_log) == 1  # forks report to the instance's log
    c = env.crash_log[0]
    assert (c.source, c.where, c.type, c.message) == ("tool", "get_account", "KeyError", "'A864'")
    assert 'File "<domain>/tools.py"' in c.traceback


def _in_process(bank: Path, out: Path, executor: str) -> Path:
    spec = RunSpec(WORKFLOW, str(bank), 0, 0.25)
    opts = RunOptions(out, 8, 40, executor, 2 if executor == "ray" else 1)
    plan, store = open_run(spec, opts)
    assert execute(spec, plan, store, opts) == "complete"
    assert store.counts.crashed >= 2
    return out


def _files(out: Path) -> dict[str, bytes]:
    found = {f: (out / f).read_bytes() for f in FILES}
    found.update({f"crashes/{p.name}": p.read_bytes() for p in sorted((out / "crashes").iterdir())})
    return found


@pytest.mark.ray
def test_ray_records_the_same_crashes_and_the_cli_exits_1(bank, crashed_run, tmp_path, ray_cluster):
    local = _files(_in_process(bank, tmp_path / "local", "local"))
    assert local == _files(crashed_run[0])  # the CLI wrote the same run
    assert _files(_in_process(bank, tmp_path / "ray", "ray")) == local
    out = tmp_path / "cli-ray"
    res = cli("run", WORKFLOW, "--domain", bank, "--out", out, *ARGS, "--executor", "ray", "--workers", "2")
    assert res.exit_code == 1, res.output
    assert "more than --max-crash-rate 0" in res.output
    assert _files(out) == local


@pytest.mark.ray
def test_a_crashing_generator_under_ray(tmp_path, ray_cluster):
    d = broken_domain(tmp_path, tool=False, recipe=False, generator=True)
    out = tmp_path / "gen-ray"
    res = cli("run", WORKFLOW, "--domain", d, "--out", out, "--seed", "5", "-q", "--executor", "ray", "--workers", "2")
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "error: the database generator of domain 'mini' crashed: <domain>/generate.py" in res.output
    assert "KeyError: 'nope'" in (out / "crashes" / "generator.txt").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["reason"].startswith("the database generator")


def test_evolve_applies_the_same_crash_rule(bank, tmp_path):
    """`eigen evolve` ends like `eigen run`: crashes counted apart, exit 1 past the limit, and
    exit 0 when the limit allows them."""
    from runtime.cli import evolve_cmds

    app = typer.Typer()
    app.command("evolve")(evolve_cmds.evolve)
    app.command("plan")(evolve_cmds.plan)
    args = ["evolve", WORKFLOW, "--domain", str(bank), "--n", "4", "--size", "0.25", "--sets", "1",
            "--batch", "4", "--max-iterations", "1", "-q"]
    strict = CliRunner().invoke(app, args + ["--out", str(tmp_path / "strict")])
    assert strict.exit_code == 1, strict.output
    assert "crashed" in strict.output and "--max-crash-rate" in strict.output
    lenient = CliRunner().invoke(app, args + ["--out", str(tmp_path / "lenient"), "--max-crash-rate", "1"])
    assert lenient.exit_code == 0, lenient.output
    assert json.loads((tmp_path / "lenient" / "manifest.json").read_text())["counts"]["crashed"] > 0
