"""Issue 16 (the planner is untrusted), parsing: whatever YAML a program file holds, reading it
costs milliseconds and megabytes, and every odd input gets a located diagnostic, never a
traceback, a raw ruamel.yaml warning or a silent success of `eigen fmt`.

The odd inputs run through the real `eigen check`, one subprocess per program kind for all of
them (a subprocess per case would cost a second each); each case then finds its own lines.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from eigenlang.compiler import check_file
from eigenlang.source import load_source
from tests.helpers import eigen, workflow_copy

# The audit's alias bomb ("billion laughs"): nine levels of nine aliases, 9**9 strings.
BOMB = "".join(
    ['eigenlang: 1\ndomain: laughs\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")])


def _description(value: str):
    def edit(text: str, kind: str) -> str:
        head, _, rest = text.partition("\ndescription: ")
        return head + "\ndescription: " + value + "\n" + rest.partition("\n")[2]
    return edit


def _append(extra: str):
    return lambda text, kind: text.rstrip("\n") + "\n" + extra


def _whole(body: str):
    return lambda text, kind: body


def _param_mapping(text: str, kind: str) -> str:
    """A tool parameter (or an agent setting) written as a mapping of unknown keys."""
    if kind == "domain":
        old = "account_id: {type: str, description: \"The account id, such as 'A001'.\"}"
        assert old in text
        return text.replace(old, "account_id: {x: 1, y: 2}")
    return text.replace("max_turns: 30", "max_turns: {x: 1, y: 2}")


# name → (edit of a valid program, the code expected for it: one for both kinds, or per kind)
BROKEN = {
    "tag_int_without_value": (_description("!!int"), "E001"),
    "tag_int": (_description("!!int 12"), "E105"),
    "tag_binary": (_description("!!binary aGVsbG8="), "E008"),
    "tag_set": (_description("!!set {a, b}"), "E008"),
    "tag_timestamp": (_description("!!timestamp 2001-12-14"), "E008"),
    "tag_omap": (_description("!!omap [{a: 1}]"), "E008"),
    "tag_python_apply": (_description('!!python/object/apply:os.system ["echo owned"]'), "E008"),
    "tag_python_name": (_description("!!python/name:os.system"), "E008"),
    "tag_python_module": (_append("x: !!python/module:os\n"), "E008"),
    "tag_local": (_description("!custom value"), "E008"),
    "tag_on_mapping": (_append("x: !thing {a: 1}\n"), "E008"),
    "mapping_for_string": (_description("{a: 1, b: 2}"), "E105"),
    "list_for_string": (_description("[1, 2]"), "E105"),
    "float_infinity_for_string": (_description("1e99999"), "E105"),
    "param_as_unknown_mapping": (_param_mapping, {"domain": "E104", "workflow": "E105"}),
    "nested_150_deep": (_description("[" * 150 + "]" * 150), "E007"),
    "nested_5000_deep": (_description("[" * 5000 + "]" * 5000), "E007"),
    "nested_mappings_deep": (_description("{a: " * 300 + "1" + "}" * 300), "E007"),
    "huge_int": (_description("1" + "0" * 5000), "E001"),
    "huge_version": (lambda t, k: t.replace("eigenlang: 1", "eigenlang: 1" + "0" * 5000, 1), "E001"),
    "duplicate_key": (_append("description: again\n"), "E001"),
    "program_is_a_list": (_whole("- eigenlang: 1\n- domain: x\n"), "E105"),
    "program_is_a_scalar": (_whole("eigenlang\n"), "E105"),
    "empty_file": (_whole(""), "E101"),
    "only_a_comment": (_whole("# nothing here\n"), "E101"),
    "null_document": (_whole("~\n"), "E101"),
    "two_documents": (_append("---\nb: 1\n"), "E001"),
    "nul_byte": (_description("a\x00b"), "E001"),
    "control_character": (_description("a\x07b"), "E001"),
    "unpaired_surrogate_escape": (_description('"\\ud800"'), "E001"),
    "unpaired_surrogate_key": (_append('"\\udfff": 1\n'), "E001"),
    "alias_bomb": (_append(BOMB.partition("domain: laughs\n")[2]), "E007"),
    "too_many_aliases": (_append("x: &x [1]\ny: [" + ", ".join(["*x"] * 10_001) + "]\n"),
                         "E007"),  # (yaml_limits.MAX_ALIAS_USES + 1)
    "undefined_alias": (_append("x: *nowhere\n"), "E001"),
    "complex_key": (_append("? [a, b]\n: c\n"), "E103"),
    "integer_key": (_append("1: a\n"), "E103"),
    "tab_indentation": (_append("x:\n\ty: 1\n"), "E001"),
}
NOT_UTF8 = {"latin1_bytes": (b"\xff\xfe caf\xe9", "E001")}
# Odd but valid: read as YAML says, no diagnostic.
VALID = {
    "byte_order_mark": lambda t, k: "\ufeff" + t,
    "yaml_directive": lambda t, k: "%YAML 1.2\n---\n" + t,
    "reused_anchor": _description("&x first"),
    "core_tag": _description("!!str text"),
    "non_specific_tag": _description("! text"),
    "long_line": _description("x" * 200_000),
}
KINDS = ("domain", "workflow")


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    """The reference workflow and the test domain, each in its own folder for the cases."""
    folder = workflow_copy(tmp_path_factory.mktemp("yaml"))
    return {"domain": folder / "mini" / "domain.yaml", "workflow": folder / "eigendata.yaml"}


def _write(programs: dict[str, Path], cases: dict, kind: str, prefix: str) -> dict[str, Path]:
    base = programs[kind]
    out = {}
    for name, edit in cases.items():
        f = base.parent / f"{prefix}_{name}.yaml"
        if isinstance(edit, tuple) and isinstance(edit[0], bytes):
            f.write_bytes(base.read_bytes().replace(b"\ndescription: ", b"\ndescription: " + edit[0], 1))
        else:
            fn = edit[0] if isinstance(edit, tuple) else edit
            f.write_text(fn(base.read_text(), kind), encoding="utf-8")
        out[name] = f
    return out


@pytest.fixture(scope="module")
def broken_runs(programs) -> dict[str, tuple[dict[str, Path], subprocess.CompletedProcess]]:
    runs = {}
    for kind in KINDS:
        files = _write(programs, {**BROKEN, **NOT_UTF8}, kind, "broken")
        runs[kind] = files, eigen("check", *map(str, files.values()))
    return runs


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [*BROKEN, *NOT_UTF8])
def test_odd_input_gets_a_located_diagnostic(broken_runs, name, kind):
    files, run = broken_runs[kind]
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    mine = [ln for ln in run.stdout.splitlines() if ln.startswith(str(files[name]) + ":")]
    assert mine, f"no diagnostic for {name}"
    assert not any("internal compiler error" in ln for ln in mine), mine
    expected = ({**BROKEN, **NOT_UTF8}[name])[1]
    expected = expected[kind] if isinstance(expected, dict) else expected
    assert any(f"error[{expected}]" in ln for ln in mine), mine


def test_odd_but_valid_input_reads_as_yaml_says(programs):
    files = [f for kind in KINDS for f in _write(programs, VALID, kind, "valid").values()]
    run = eigen("check", *map(str, files))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stderr and "Traceback" not in run.stderr


def test_a_byte_order_mark_does_not_move_columns(programs):
    text = "\ufeff" + programs["domain"].read_text().replace("\nnow: ", "\nnow_: ", 1)
    diags = check_file(programs["domain"].parent / "bom.yaml", text)
    where = [d.span for d in diags.errors if d.code == "E103"]
    line = text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith("now_:"))) + 1
    assert [(s.line, s.col) for s in where] == [(line, 1)], diags.render()


# ---------------------------------------------------------------- alias bombs
def test_the_audit_alias_bomb_is_a_diagnostic_in_milliseconds():
    """447 bytes took 18 s and 2.3 GB (one level more: MemoryError)."""
    assert len(BOMB) < 500
    for fast in (True, False):  # libyaml's fast reader and ruamel.yaml: the same answer
        load_source("laughs.yaml", BOMB, fast=fast)  # (warm the readers up)
        tracemalloc.start()
        start = time.process_time()
        src = load_source("laughs.yaml", BOMB, fast=fast)
        elapsed = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert [(d.code, d.span.line, d.span.col) for d in src.diags] == [("E007", 8, 8)]
        assert "aliases expand to more than 100000 nodes" in src.diags[0].message
        assert elapsed < 1.0 and peak < 30 * 2**20, (elapsed, peak)  # CPU s, traced


def test_eigen_check_of_the_bomb_fits_in_little_memory(tmp_path):
    """Through the CLI, in an interpreter capped at 1 GB (the unfixed reader needed 2.3 GB)."""
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(BOMB.replace('"lol"', '"lolololololololololol"'))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    run = subprocess.run([sys.executable, "-m", "runtime.cli.main", "check", str(bomb)],
                         capture_output=True, text=True, timeout=60, preexec_fn=cap)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"{bomb}:8:8: error[E007]: aliases expand" in run.stdout, run.stdout[-2000:]


def test_ordinary_aliases_still_read_the_same_both_ways():
    text = ("eigenlang: 1\nx: &x {a: [1, 2], b: {c: d}}\ny: [*x, *x]\nz: &z [*x]\nw: *z\n")
    fast, ref = load_source("a.yaml", text), load_source("a.yaml", text, fast=False)
    assert not fast.diags and fast._lc is not None  # the fast reader took it
    assert fast.plain == ref.plain and fast.plain["w"] == [{"a": [1, 2], "b": {"c": "d"}}]


# ---------------------------------------------------------------- eigen fmt
def test_fmt_of_broken_yaml_exits_1_with_the_diagnostics(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("eigenlang: 1\nworkflow: [unclosed\n")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    good = tmp_path / "good.yaml"
    good.write_text("workflow: w\neigenlang: 1\n")
    run = eigen("fmt", str(bad), str(listy), str(good), str(tmp_path / "missing.yaml"))
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{bad}:3:1: error[E001]: YAML syntax error" in run.stdout
    assert f"{listy}:1:1: error[E105]" in run.stdout
    assert f"{tmp_path / 'missing.yaml'}:1:1: error[E107]: file not found" in run.stdout
    assert bad.read_text() == "eigenlang: 1\nworkflow: [unclosed\n"  # left as it was
    assert good.read_text() == "eigenlang: 1\nworkflow: w\n"  # the others are still formatted
    assert "Traceback" not in run.stderr


def test_ruamel_warnings_are_never_printed(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("%YAML 1.1\n---\neigenlang: 1\ndomain: x\nv: 1e3\na: &x 1\nb: &x 2\n")
    for args in (("check", str(f)), ("fmt", str(f))):
        run = eigen(*args)
        assert "Warning" not in run.stderr and "warn" not in run.stderr.lower(), run.stderr
        assert "Traceback" not in run.stderr
