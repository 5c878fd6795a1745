"""Prompt ids cover the templates a prompt includes: editing a shared block is a new prompt."""

from __future__ import annotations

from pathlib import Path

from eigenlang.compiler import compile_workflow
from eigenlang.emit import included_templates, prompt_id, sha256
from tests.helpers import workflow_copy


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_includes_are_found_recursively_in_order_and_cycles_end(tmp_path):
    _write(tmp_path, {
        "main.j2": '{% include "a.j2" %}\n{%- import "lib/m.j2" as m %}{% from \'b.j2\' import x %}',
        "a.j2": '{% extends "base.j2" %}{% include "main.j2" %}',  # a cycle back to main
        "base.j2": "base",
        "lib/m.j2": '{% include "../b.j2" %}',  # resolved next to the including file
        "b.j2": "{% macro x() %}b{% endmacro %}",
    })
    main = tmp_path / "main.j2"
    found = included_templates(main, main.read_text())
    assert [f.relative_to(tmp_path).as_posix() for f, _ in found] == ["a.j2", "base.j2", "lib/m.j2", "b.j2"]
    assert {f.name: t for f, t in found}["base.j2"] == "base"


def test_ids_follow_included_text_and_only_it(tmp_path):
    _write(tmp_path, {"p.j2": '{% include "_shared.j2" %}Hello', "_shared.j2": "one", "q.j2": "Plain {{ x }}"})
    p, q = tmp_path / "p.j2", tmp_path / "q.j2"
    # a template that includes nothing keeps the plain form (what evolved prompt versions use)
    assert prompt_id(q, q.read_text()) == f"q.j2@{sha256(q.read_text())[:12]}"
    before = prompt_id(p, p.read_text())
    assert before.startswith("p.j2@") and before != f"p.j2@{sha256(p.read_text())[:12]}"
    assert prompt_id(p, p.read_text()) == before  # stable
    (tmp_path / "_shared.j2").write_text("two")
    assert prompt_id(p, p.read_text()) != before
    # the same files elsewhere give the same id: no absolute path enters it
    other = tmp_path / "copy"
    _write(other, {"p.j2": p.read_text(), "_shared.j2": "two"})
    assert prompt_id(other / "p.j2", p.read_text()) == prompt_id(p, p.read_text())
    # a missing include still gives an id (the checker reports the file)
    assert prompt_id(tmp_path / "r.j2", '{% include "nowhere.j2" %}').startswith("r.j2@")


def test_editing_the_shared_block_changes_the_ids_that_include_it(tmp_path):
    wf = workflow_copy(tmp_path) / "eigendata.yaml"
    base, d = compile_workflow(wf)
    assert base is not None, d.render()
    shared = wf.parent / "prompts" / "_domain.j2"
    shared.write_text(shared.read_text() + "\nBe brief.\n")
    edited, d = compile_workflow(wf)
    assert edited is not None, d.render()
    ids = {k: v["id"] for k, v in base.data["prompts"].items()}
    new = {k: v["id"] for k, v in edited.data["prompts"].items()}
    changed = {k for k in ids if ids[k] != new[k]}
    including = {k for k, v in base.data["prompts"].items() if '"_domain.j2"' in v["text"]}
    assert including and changed == including  # user_simulator.j2 and judge.j2 do not include it
    assert edited.hash != base.hash  # what renders changed, so the program's meaning did
    shared.write_text(shared.read_text().replace("\nBe brief.\n", ""))
    again, _ = compile_workflow(wf)
    assert again.hash == base.hash and {k: v["id"] for k, v in again.data["prompts"].items()} == ids
