"""`--domain` on `eigen check`, `compile` and `graph`, as on `eigen run`: a workflow is checked
against another domain without copying it or its prompts."""

from __future__ import annotations

import json
import shutil

from tests.helpers import ROOT, eigen

WORKFLOW = str(ROOT / "workflows" / "eigendata.yaml")
HOTEL = str(ROOT / "tests" / "fixtures" / "hotel")


def test_check_compile_and_graph_take_a_domain(tmp_path):
    p = eigen("check", WORKFLOW, "--domain", HOTEL)
    assert p.returncode == 0, p.stdout + p.stderr
    p = eigen("compile", WORKFLOW, "--domain", HOTEL, "-o", str(tmp_path / "plan"))
    assert p.returncode == 0, p.stdout + p.stderr
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert plan["domain"]["name"] == "hotel"
    assert {t["function"]["name"] for t in plan["domain"]["tools"]} >= {"get_guest", "cancel_booking"}
    p = eigen("graph", WORKFLOW, "--domain", "retail", "-o", str(tmp_path / "g.dot"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "DialogSynthesis" in (tmp_path / "g.dot").read_text()


def test_a_broken_domain_is_reported_where_it_is(tmp_path):
    bad = tmp_path / "hotel"
    shutil.copytree(HOTEL, bad, ignore=shutil.ignore_patterns("__pycache__"))
    yaml = bad / "domain.yaml"
    yaml.write_text(yaml.read_text().replace('impl: {return: "db.guests[guest_id]"}',
                                             'impl: {return: "db.guest[guest_id]"}'))
    for cmd in (["check", WORKFLOW], ["compile", WORKFLOW, "-o", str(tmp_path / "plan")]):
        p = eigen(*cmd, "--domain", str(bad))
        assert p.returncode == 1
        assert "domain.yaml:52:24: error[E204]: unknown field 'guest' on HotelDB" in p.stdout, p.stdout
        assert "hint: did you mean 'guests'?" in p.stdout
    p = eigen("check", WORKFLOW, "--domain", "nowhere")
    assert p.returncode == 1 and "error[E107]: domain not found: 'nowhere'" in p.stdout
