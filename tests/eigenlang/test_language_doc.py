"""docs/language.md is the language reference: it fails here when the language has something
it does not describe — a built-in function, a key of either program kind (walked from the
pydantic surface models), a diagnostic code, a mutation op, a worker kind, an artifact type,
a metric or a template global. `eigen mutate --help` lists every op too."""

from __future__ import annotations

import re
import types as pytypes
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from eigenlang.catalog import ARTIFACT_MODELS, METRICS, TEMPLATE_GLOBALS, TOOL_SELECTORS, VALIDATION_CHECKS, WORKERS
from eigenlang.diagnostics import CODES
from eigenlang.expr import BUILTIN_NAMES
from eigenlang.mutate import OP_NAMES
from eigenlang.surface import DomainProgram, WorkflowProgram
from eigenlang.types import PRIM_NAMES
from tests.helpers import ROOT, eigen

DOC = ROOT / "docs" / "language.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _models(tp) -> list[type[BaseModel]]:
    """The surface models a field's annotation leads to (through unions, lists, dicts)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _models(arg)]


def _step(tp) -> str:
    """How a field's annotation continues a key path: '.<name>' into a dict, '[]' into a list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, pytypes.UnionType):
        steps = {_step(a) for a in typing.get_args(tp)} - {""}
        return steps.pop() if len(steps) == 1 else ""
    if origin is dict:
        return ".<>" + _step(typing.get_args(tp)[1])
    if origin is list:
        return "[]" + _step(typing.get_args(tp)[0])
    return ""


def key_paths() -> list[str]:
    """Every key of both program kinds as a dotted path (`tools.<>.requires[].error`), a model
    reached a second time (user_tools has the shape of tools) only by its own path."""
    out: list[str] = []
    seen: set[type] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        seen.add(model)
        for name, f in model.model_fields.items():
            path = prefix + (f.alias or name)
            out.append(path)
            for sub in _models(f.annotation):
                if sub not in seen:
                    walk(sub, path + _step(f.annotation) + ".")

    walk(DomainProgram, "")
    walk(WorkflowProgram, "")
    return sorted(set(out))


def _normal(text: str) -> str:
    return re.sub(r"<[^>]*>", "<>", text)


def test_every_key_of_both_program_kinds_is_described(doc):
    prose = re.sub(r"```.*?```", "", doc, flags=re.S)  # code spans, not fenced blocks
    listed = {span.strip() for span in re.findall(r"`([^`\n]+)`", _normal(prose))}
    missing = [p for p in key_paths() if p not in listed]
    assert not missing, f"docs/language.md does not describe these keys: {missing}"


def test_every_built_in_function_is_described(doc):
    missing = [f for f in BUILTIN_NAMES if f"`{f}(" not in doc]
    assert not missing, f"docs/language.md does not describe these built-ins: {missing}"


def test_every_diagnostic_code_is_listed(doc):
    missing = [c for c in CODES if f"`{c}`" not in doc]
    assert not missing, f"docs/language.md does not list these codes: {missing}"


def test_every_mutation_op_has_an_example(doc):
    missing = [op for op in OP_NAMES if f'"op": "{op}"' not in doc]
    assert not missing, f"docs/language.md has no example of these ops: {missing}"


def test_types_workers_artifacts_metrics_and_globals_are_described(doc):
    names = (list(PRIM_NAMES) + ["list[", "dict[", "optional[", "enum["] + list(WORKERS)
             + list(ARTIFACT_MODELS) + list(METRICS) + list(TEMPLATE_GLOBALS)
             + list(TOOL_SELECTORS) + list(VALIDATION_CHECKS))
    missing = [n for n in names if f"`{n}" not in doc]
    assert not missing, f"docs/language.md does not mention: {missing}"


def test_the_reference_is_in_the_repository_and_linked():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/language.md" in readme
    for text in (readme, (ROOT / "docs" / "CONTRACTS.md").read_text(encoding="utf-8"), DOC.read_text()):
        assert "../shared" not in text


def test_mutate_help_lists_every_op():
    p = eigen("mutate", "--help")
    assert p.returncode == 0
    missing = [op for op in OP_NAMES if op not in p.stdout]
    assert not missing, f"eigen mutate --help does not list: {missing}"
