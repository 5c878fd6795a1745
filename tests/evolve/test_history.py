"""`eigen history RUN` over a real (tiny, offline) evolution run: tables, prompt lineages,
PNG curves, JSON, and tolerance of interrupted or foreign directories."""

from __future__ import annotations

import itertools
import json
import shutil
import struct
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from runtime.cli import history_cmds
from runtime.evolve.history import HistoryError, read_history, select, timeline
from tests.helpers import eigen, workflow_copy

PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ("scores.png", "acceptance.png", "axes.png")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Two sets, three pilot iterations, a drift criterion that fires in phase 3 (so the run
    has windows, re-entries and, with the mini domain, one planner edit)."""
    tmp = tmp_path_factory.mktemp("history")
    wf = workflow_copy(tmp) / "eigendata.yaml"
    old = 'drift_when: "repair_rounds_mean > 1.5 or schema_error_rate > 0.02"'
    assert old in wf.read_text()
    wf.write_text(wf.read_text().replace(old, 'drift_when: "acceptance_rate < 0.9"'))
    out = tmp / "run"
    r = eigen("evolve", str(wf), "--n", "10", "--sets", "2", "--batch", "5", "--max-iterations", "3",
              "--window", "8", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so that the command is called by its name as under `eigen`
        pass

    history_cmds.register(app)
    return lambda *args: CliRunner().invoke(app, ["history", *map(str, args)])


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "evolution" / "log.jsonl").read_text().splitlines()]


def test_tables_name_every_set_and_section(cli, run):
    res = cli(run)
    assert res.exit_code == 0, res.output
    sets = [e["set"] for e in _log(run) if e["event"] == "set"]
    assert sets == ["s00", "s01"]
    for name in sets:
        assert f"set {name}" in res.stdout
    assert "backend offline" in res.stdout and "judge offline" in res.stdout and "engineer offline" in res.stdout
    assert "status complete" in res.stdout
    assert "prompt lineage · set" in res.stdout and "offline-engineer" in res.stdout
    for section in ("phase 3 windows", "drift re-entries", "workflow edits"):
        assert section in res.stdout, section
    for name in PLOTS:
        assert str(run / "evolution" / "plots" / name) in res.stdout


def test_json_lineages_go_root_to_head_and_match_the_log(cli, run):
    res = cli(run, "--json", "--no-plots")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    log = _log(run)
    assert list(data["sets"]) == ["s00", "s01"] and data["start"]["backend"] == "offline"
    assert data["done"]["status"] == "complete" and data["warnings"] == [] and data["plots"] == []
    versions = json.loads((run / "evolution" / "prompts.json").read_text())["versions"]
    changed = [lin for lin in data["lineages"] if lin["changed"]]
    assert changed
    for lin in data["lineages"]:
        steps = lin["steps"]
        for parent, child in itertools.pairwise(steps):
            assert child["parent"] == parent["id"]
        head = [v for v in versions if v["set"] == lin["set"] and v["key"] == lin["key"]][-1]
        assert steps[-1]["id"] == head["id"]
    # every prompt edit the log records is one parent → child step of that set's lineage
    edits = [(e["set"], d) for e in log if e["event"] == "iteration" for d in e["edits"]]
    assert edits
    pairs = {(lin["set"], lin["key"], a["id"], b["id"])
             for lin in data["lineages"] for a, b in zip(lin["steps"], lin["steps"][1:])}
    for name, d in edits:
        assert (name, d["key"], d["from"], d["to"]) in pairs
    engineered = [s for lin in changed for s in lin["steps"][1:]]
    assert all(s["author"] == "offline-engineer" and s["critiques"] and s["added"] for s in engineered)
    # iterations, windows and drift as logged
    its = [e for e in log if e["event"] == "iteration"]
    assert sum(len(s["iterations"]) for s in data["sets"].values()) == len(its)
    windows = [e for e in log if e["event"] == "window"]
    assert [(w["start"], w["end"], w["drift"]) for w in data["windows"]] == \
           [(w["start"], w["end"], w["drift"]) for w in windows]
    assert [d["set"] for d in data["drift"]] == [n for w in windows for n in w["drift"]]
    assert all(d["iterations"] for d in data["drift"])  # each drift re-entered the pilot
    assert data["sets"]["s00"]["stop"] in ("max_iterations", "stop_when holds", "nothing left to revise")
    assert set(data["axes"]) == {"executability", "tool_correctness", "trajectory_coherence", "difficulty_coverage"}
    wf_lines = (run / "evolution" / "workflow.jsonl").read_text().splitlines()
    assert len(data["workflow"]) == len(wf_lines)
    applied = [e for e in data["workflow_edits"] if e["hash"]]
    assert [e["hash"] for e in applied] == [v["hash"] for v in data["workflow"][1:]]


def test_set_and_key_narrow_the_history(cli, run):
    data = json.loads(cli(run, "--json", "--no-plots", "--set", "s01", "--key", "UserIntent.prompt").stdout)
    assert list(data["sets"]) == ["s01"]
    assert [(lin["set"], lin["key"]) for lin in data["lineages"]] == [("s01", "UserIntent.prompt")]
    assert all(e["key"] == "UserIntent.prompt" for it in data["sets"]["s01"]["iterations"] for e in it["edits"])
    assert all(set(w["sets"]) <= {"s01"} for w in data["windows"])
    res = cli(run, "--set", "s07")
    assert res.exit_code == 1 and "no prompt set 's07'" in res.output and "s00, s01" in res.output
    res = cli(run, "--key", "Nobody.prompt")
    assert res.exit_code == 1 and "no prompt key" in res.output


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def test_plots_are_valid_pngs_and_reproducible(cli, run):
    folder = run / "evolution" / "plots"
    shutil.rmtree(folder, ignore_errors=True)
    assert cli(run, "--no-plots").exit_code == 0 and not folder.exists()
    assert cli(run).exit_code == 0
    first = {}
    for name in PLOTS:
        w, h = _png_size(folder / name)
        assert w > 300 and h > 200
        first[name] = (folder / name).read_bytes()
    assert cli(run, "--set", "s00").exit_code == 0  # the files always show the whole run
    assert {name: (folder / name).read_bytes() for name in PLOTS} == first


def test_timeline_puts_phase_3_after_the_pilot(run):
    hist = read_history(run)
    labels, n_pilot, points = timeline(hist)
    assert labels[:n_pilot] == ["it 0", "it 1", "it 2"]
    assert labels[n_pilot] == f"{hist.windows[0].start}–{hist.windows[0].end - 1}"
    assert any(label.startswith("re ") for label in labels[n_pilot:])  # drift re-entries
    for name, pts in points.items():
        xs = [x for x, _ in pts]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)
        assert len(pts) == len(hist.sets[name].iterations) + sum(name in w.sets for w in hist.windows)


def test_a_torn_last_line_is_skipped_and_named(cli, run, tmp_path):
    torn = tmp_path / "torn"
    shutil.copytree(run, torn, ignore=shutil.ignore_patterns("plots"))
    log = torn / "evolution" / "log.jsonl"
    log.write_bytes(log.read_bytes()[:-25])  # the `done` event, cut mid-write
    res = cli(torn, "--json")
    assert res.exit_code == 0, res.output
    assert "torn last line" in res.stderr and "no `done` event" in res.stderr
    data = json.loads(res.stdout)
    assert data["done"] is None and list(data["sets"]) == ["s00", "s01"]
    assert all((torn / "evolution" / "plots" / name).is_file() for name in PLOTS)
    res = cli(torn)
    assert res.exit_code == 0 and "unfinished" in res.stdout


def test_damaged_files_give_warnings_not_crashes(tmp_path):
    evo = tmp_path / "r" / "evolution"
    evo.mkdir(parents=True)
    (evo / "log.jsonl").write_text('{"event": "iteration", "phase": 2}\n[1, 2]\n'
                                   '{"event": "window", "phase": 3, "start": 0, "end": 4, '
                                   '"sets": {"s00": {"acceptance_rate": 0.5}}, "drift": ["s00"]}\n')
    (evo / "prompts.json").write_text('{"versions": [{"id": "x"}]}')
    (evo / "workflow.jsonl").write_text('{"hash": 3}\n')
    hist = read_history(tmp_path / "r")
    text = "\n".join(hist.warnings)
    for expected in ("lacks its phase, set or number", "log.jsonl:2: not a JSON object", "prompts.json is unreadable",
                     "not a program version", "no `done` event"):
        assert expected in text, expected
    assert [w.end for w in hist.windows] == [4] and hist.lineages == [] and hist.workflow == []
    assert [(d.set, d.iterations) for d in hist.drift] == [("s00", [])]


def test_a_directory_that_is_not_an_evolution_run_is_exit_1(cli, tmp_path):
    (tmp_path / "plain").mkdir()
    for target, words in ((tmp_path / "plain", "not an evolution run"), (tmp_path / "missing", "no such directory")):
        res = cli(target)
        assert res.exit_code == 1, res.output
        assert words in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1
    with pytest.raises(HistoryError):
        read_history(tmp_path / "plain")
    with pytest.raises(HistoryError):
        select(_empty_history(tmp_path), "s00")


def _empty_history(tmp_path: Path):
    (tmp_path / "empty" / "evolution").mkdir(parents=True)
    hist = read_history(tmp_path / "empty")
    assert hist.sets == {} and any("log.jsonl is missing" in w for w in hist.warnings)
    return hist
