"""Every file a program names lies inside its folder, a built-in domain, or a folder named with
`--allow-path` (issue 16, finding 2): a prompt, an include, a domain and a domain's policy or
code outside are located E109 errors, symlinks resolved, before anything is read or sent."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from eigenlang.compiler import check_file, compile_workflow
from eigenlang.domain import load_domain
from tests.helpers import ROOT
from tests.llm_server.server import serve

MINI = ROOT / "tests" / "fixtures" / "mini"
SECRET = "API_KEY=sk-SECRET-9876"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def _e109(diags) -> list:
    return [d for d in diags.errors if d.code == "E109"]


def _line_of(wf: Path, needle: str) -> int:
    return next(i for i, line in enumerate(wf.read_text().splitlines(), 1) if needle in line)


# ---------------------------------------------------------------- workflows


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink", "symlinked_folder"])
def test_a_prompt_outside_the_folder_is_a_located_error(wf, secret, where):
    if where == "absolute":
        ref = str(secret)
    elif where == "dotdot":
        ref = "../secret.txt"
    elif where == "symlink":  # looks inside, is not
        os.symlink(secret, wf.parent / "prompts" / "notes.j2")
        ref = "prompts/notes.j2"
    else:
        os.symlink(secret.parent, wf.parent / "elsewhere")
        ref = "elsewhere/secret.txt"
    wf.write_text(wf.read_text().replace("prompts/user_intent.j2", ref))
    plan, diags = compile_workflow(wf)
    assert plan is None
    [d] = _e109(diags)
    assert d.span.file.endswith("eigendata.yaml") and d.span.line == _line_of(wf, ref), d.render()
    assert "--allow-path" in d.hint
    assert SECRET not in diags.render()


def test_allow_path_admits_a_named_folder(wf, tmp_path, cli):
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(wf.parent / "prompts" / "user_intent.j2", shared / "intent.j2")
    shutil.copy(wf.parent / "prompts" / "_domain.j2", shared / "_domain.j2")
    wf.write_text(wf.read_text().replace("prompts/user_intent.j2", str(shared / "intent.j2")))
    assert _e109(check_file(wf))
    assert not check_file(wf, allow=[shared]).errors
    for cmd in (["check", str(wf)], ["compile", str(wf), "-o", str(tmp_path / "plan")],
                ["graph", str(wf), "-o", str(tmp_path / "g.dot")]):
        assert cli(*cmd).returncode == 1, cmd
        r = cli(*cmd, "--allow-path", str(shared))
        assert r.returncode == 0, (cmd, r.stdout + r.stderr)


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_a_domain_outside_the_folder_is_a_located_error(wf, tmp_path, where):
    evil = tmp_path / "evil"  # a perfectly good domain, just not the program's to name
    shutil.copytree(MINI, evil, ignore=shutil.ignore_patterns("__pycache__"))
    ref = {"absolute": str(evil), "dotdot": "../evil", "symlink": "linked"}[where]
    if where == "symlink":
        os.symlink(evil, wf.parent / "linked")
    wf.write_text(wf.read_text().replace("domain: airline", f"domain: {ref}"))
    [d] = _e109(check_file(wf))
    assert d.span.line == _line_of(wf, f"domain: {ref}") and "domain" in d.message, d.render()
    assert not check_file(wf, allow=[evil]).errors
    # naming the domain on the command line is the user's choice
    plan, diags = compile_workflow(wf, domain=str(evil))
    assert plan is not None, diags.render()


def test_built_in_and_in_folder_domains_need_no_permission(wf):
    assert not check_file(wf).errors  # domain: airline
    shutil.copytree(MINI, wf.parent / "mini", ignore=shutil.ignore_patterns("__pycache__"))
    wf.write_text(wf.read_text().replace("domain: airline", "domain: mini"))
    assert not check_file(wf).errors


# ---------------------------------------------------------------- domains


@pytest.mark.parametrize("key,line", [("policy: policy.md", "policy: {}"),
                                      ("generate: generate.py:build", "generate: {}:build"),
                                      ("impl: tools.py:get_account", "impl: {}:get_account")])
def test_a_domain_names_files_inside_its_own_folder(tmp_path, secret, key, line, cli):
    dom = tmp_path / "dom"
    shutil.copytree(MINI, dom, ignore=shutil.ignore_patterns("__pycache__"))
    outside = tmp_path / "outside.py"
    shutil.copy(MINI / ("generate.py" if "generate" in key else "tools.py"), outside)
    target = str(secret) if key.startswith("policy") else str(outside)
    text = (dom / "domain.yaml").read_text()
    assert key in text
    (dom / "domain.yaml").write_text(text.replace(key, line.format(target), 1))
    spec, diags = load_domain(dom)
    assert spec is None
    [d] = _e109(diags)
    assert d.span.file.endswith("domain.yaml") and SECRET not in diags.render()
    r = cli("check", str(dom))
    assert r.returncode == 1 and "error[E109]" in r.stdout and SECRET not in r.stdout
    assert cli("check", str(dom), "--allow-path", str(tmp_path)).returncode == 0


# ---------------------------------------------------------------- the attacks of the audit


def test_set_prompt_to_a_file_outside_is_refused(wf, secret, cli):
    before = wf.read_text()
    r = cli("mutate", str(wf), "-w", "--op", json.dumps(
        {"op": "set_prompt", "agent": "UserIntent", "role": "prompt", "path": str(secret)}))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{wf.name}:{_line_of(wf, 'prompts/user_intent.j2')}:" in r.stdout and "error[E109]" in r.stdout
    assert wf.read_text() == before and SECRET not in r.stdout + r.stderr
    # a person may point it at a file inside the folder
    (wf.parent / "prompts" / "mine.j2").write_text("Seed {{ scenario_seed | tojson }}\n")
    r = cli("mutate", str(wf), "--op", json.dumps(
        {"op": "set_prompt", "agent": "UserIntent", "role": "prompt", "path": "prompts/mine.j2"}))
    assert r.returncode == 0, r.stdout + r.stderr


def test_compile_and_run_never_read_or_send_a_file_outside(wf, tmp_path, secret, cli):
    wf.write_text(wf.read_text().replace("prompts/random_pool.j2", str(secret)))
    r = cli("compile", str(wf), "-o", str(tmp_path / "out"))
    assert r.returncode == 1 and "error[E109]" in r.stdout, r.stdout + r.stderr
    assert not (tmp_path / "out" / "plan.json").exists() and SECRET not in r.stdout
    with serve(model="m") as srv:
        r = cli("run", str(wf), "--n", "1", "--out", str(tmp_path / "run"), "-q",
                  "--backend", "openai", "--base-url", srv.base_url, "--model", "m")
        sent = json.dumps([q["body"] for q in srv.requests])
    assert r.returncode == 1 and "E109" in r.stderr, r.stdout + r.stderr
    assert srv.served == 0 and SECRET not in sent


def test_allow_path_reaches_run_evolve_and_mutate(wf, tmp_path, cli):
    shared = tmp_path / "shared"
    shutil.copytree(MINI, shared / "mini", ignore=shutil.ignore_patterns("__pycache__"))
    wf.write_text(wf.read_text().replace("domain: airline", f"domain: {shared / 'mini'}"))
    allow = ("--allow-path", str(shared))
    op = json.dumps({"op": "set_param", "path": "agents.DialogSynthesis.max_turns", "value": 12})
    assert cli("mutate", str(wf), "--op", op).returncode == 1
    assert cli("mutate", str(wf), "--op", op, *allow).returncode == 0
    run = ["run", str(wf), "--n", "2", "--size", "0.25", "--out", str(tmp_path / "run"), "-q"]
    assert cli(*run).returncode == 1
    r = cli(*run, *allow)
    assert r.returncode == 0, r.stdout + r.stderr
    evolve = ["evolve", str(wf), "--n", "2", "--size", "0.25", "--sets", "1", "--batch", "2",
              "--max-iterations", "2", "--out", str(tmp_path / "evolved"), "-q"]
    assert cli(*evolve).returncode == 1
    r = cli(*evolve, *allow)
    assert r.returncode == 0, r.stdout + r.stderr
