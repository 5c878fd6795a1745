"""`eigen check --run-domain` (runtime/env/probe.py): the domain's code runs in a child
process with a time limit, and what it makes is checked: the world against the schema
(E703), recipes' gold calls against the tools (E704), crashes (E705). Without the flag,
`eigen check` imports nothing of the domain's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime.env.probe import probe_domain
from tests.helpers import ROOT, eigen

MINI = ROOT / "tests" / "fixtures" / "mini"


@pytest.fixture
def mini(tmp_path) -> Path:
    dst = tmp_path / "bank"
    shutil.copytree(MINI, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def found(domain: Path, **kw) -> list[tuple[str, int, str, str]]:
    return [(d.code, d.span.line, d.severity, d.message) for d in probe_domain(domain / "domain.yaml", **kw).sorted()]


def test_a_sound_domain_has_nothing_to_report(mini):
    assert found(mini) == []


def test_a_world_that_breaks_the_schema(mini):
    edit(mini / "generate.py", '"balance": round(rng.uniform(0, 1000), 2)',
         '"balance": str(round(rng.uniform(0, 1000), 2))')
    got = found(mini)
    assert got and {(c, line) for c, line, _, _ in got} == {("E703", 25)}  # database.generate
    assert "does not match the schema: accounts.A" in got[0][3] and "expected float, got '" in got[0][3]


def test_a_generator_that_raises(mini):
    edit(mini / "generate.py", "    rng = random.Random(seed)", "    rng = random.Random(seed)\n    {}['x']")
    ((code, line, _, message),) = found(mini)
    assert (code, line) == ("E705", 25)
    assert "generate.py:build raised KeyError: 'x' (at <domain>/generate.py:9 in build)" in message


def test_recipes_that_plan_what_the_tools_refuse_or_crash(mini):
    edit(mini / "scenarios.py", 'calls = [_call("get_account", account_id=src["account_id"])]',
         'calls = [_call("get_account", account_id=src["account_id"], verbose=True)]')
    edit(mini / "scenarios.py", "def _plan_split(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:\n",
         "def _plan_split(rng: Any, world: Any, ctx: dict, diff: dict) -> dict:\n    return 1 / 0\n")
    edit(mini / "scenarios.py", '"split_payment": (0.5, _seed_split, _plan_split),',
         '"split_payment": (0.5, _seed_split, _plan_split),\n    "never": (0.5, lambda *a: None, _plan_split),')
    edit(mini / "tools.py", "    accounts = ctx.db.accounts\n",
         "    accounts = ctx.db.accounts\n    if amount > 100:\n        raise KeyError(src)\n")
    got = found(mini)
    kinds = {(code, line, severity) for code, line, severity, _ in got}
    assert kinds == {("E704", 27, "warning"),  # offline.seed: 'never' is never picked
                     ("E704", 28, "error"),    # offline.task: get_account(..., verbose) is refused
                     ("E705", 28, "error"),    # offline.task: _plan_split raised
                     ("E705", 48, "error")}, got  # tools.transfer.impl: it crashed
    text = "\n".join(m for *_, m in got)
    assert "intent 'never' was never picked in 40 scenarios" in text
    assert "unexpected argument 'verbose'" in text
    assert "intent 'split_payment': raised ZeroDivisionError: division by zero" in text
    assert "crashed: transfer raised KeyError" in text and "(at <domain>/tools.py:11 in transfer)" in text


def test_code_that_never_ends_is_stopped(mini):
    edit(mini / "generate.py", "    rng = random.Random(seed)", "    while True:\n        pass")
    ((code, line, _, message),) = found(mini, timeout=3)
    assert (code, line) == ("E705", 3) and "took longer than 3 s" in message


def test_check_imports_domain_code_only_when_asked(mini, tmp_path):
    marker = tmp_path / "imported"
    source = (mini / "tools.py").read_text()
    (mini / "tools.py").write_text(f"open({str(marker)!r}, 'w').close()\n" + source)
    p = eigen("check", str(mini))
    assert p.returncode == 0, p.stdout + p.stderr
    assert not marker.exists()
    p = eigen("check", str(mini), "--run-domain")
    assert p.returncode == 0, p.stdout + p.stderr
    assert marker.exists()  # in the child process that --run-domain starts


def test_the_cli_reports_and_exits_1(mini):
    edit(mini / "generate.py", '"balance": round(rng.uniform(0, 1000), 2)', '"balance": "lots"')
    p = eigen("check", str(mini), "--run-domain")
    assert p.returncode == 1
    assert "domain.yaml:25:13: error[E703]: generate.py:build built a database that does not match" in p.stdout
    assert "1 file checked" in p.stderr
