"""`eigen domain stats` and `eigen domain call` on the built-in domains and on a file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import eigen


def test_stats_json_counts_entities_and_tools():
    res = eigen("domain", "stats", "airline", "--size", "0.05", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["entities"]["flights"] == 15 and report["entities"]["reservations"] == 100
    assert report["tools"]["agent"] == {"generic": 2, "read": 6, "write": 6}
    again = json.loads(eigen("domain", "stats", "airline", "--size", "0.05", "--json").stdout)
    assert again["state_hash"] == report["state_hash"]  # generator determinism, end to end


def test_call_ok_refused_and_from_a_db_file(tmp_path: Path):
    ok = eigen("domain", "call", "tests/fixtures/mini", "get_account", '{"account_id": "A041"}')
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["content"]["account_id"] == "A041"
    refused = eigen("domain", "call", "tests/fixtures/mini", "transfer",
                    '{"src": "A265", "dst": "A041", "amount": 1e9}')
    assert refused.returncode == 1 and json.loads(refused.stdout)["error"] == "precondition"
    bad = eigen("domain", "call", "tests/fixtures/mini", "get_acount", "{}")
    out = json.loads(bad.stdout)
    assert out["error"] == "unknown_tool" and "get_account" in out["content"]
    db = tmp_path / "db.json"
    db.write_text(json.dumps({"accounts": {"X1": {"account_id": "X1", "owner": "ana", "balance": 5.0,
                                                  "status": "open"}}, "transfers": []}))
    res = eigen("domain", "call", "tests/fixtures/mini", "get_account", '{"account_id": "X1"}',
                "--db", str(db))
    assert res.returncode == 0 and json.loads(res.stdout)["content"]["balance"] == 5.0
    broken = tmp_path / "broken.json"
    broken.write_text('{"accounts": 3}')
    res = eigen("domain", "stats", "tests/fixtures/mini", "--db", str(broken))
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr
