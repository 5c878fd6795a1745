"""The template dialect: jinja2, sandboxed, with what a prompt may not do written down once.

Prompt templates are the program author's, but they render over data that models wrote and
they may come from a program someone else wrote, so every template, checked or not:

- renders in `jinja2.sandbox.ImmutableSandboxedEnvironment` (`environment()`): no attribute or
  item starting with `_`, no calls that mutate data, `str.format` confined, `range` bounded;
  the globals that hand out Python objects (`lipsum`, `cycler`, `joiner`, `namespace`) are
  removed, so only `range` and `dict` are left;
- includes, imports and extends resolve through `ConfinedLoader`: relative names without `..`,
  found inside the given folders, symlinks resolved before the check.

`hazards(tree)` is the same rule set as static checks: `eigen check` reports each as E502 at its
line, so an author hears about it before a run instead of a render failing in one.

Text a model wrote is never a template: it reaches a prompt as a variable's value, or appended
as literal text inside `{% raw %}` (runtime/evolve/prompts.compose).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
import jinja2.nodes as jn
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .paths import real, within

# jinja2's default globals that hand out Python objects (functions with __globals__, a
# mutable namespace), and `self`, the template reference: none of them is a prompt's business.
FORBIDDEN_GLOBALS = ("lipsum", "cycler", "joiner", "namespace", "self")
# Filters and tests whose arguments name attributes to look up ("a.b" paths).
_ATTRIBUTE_ARGS = {"attr": 0, "selectattr": 0, "rejectattr": 0, "groupby": 0}
_REFERENCES = (jn.Include, jn.Import, jn.FromImport, jn.Extends)
_LITERAL_FORMS = {jn.Include: ("include", '{% include "_shared.j2" %}'),
                  jn.Import: ("import", '{% import "_macros.j2" as m %}'),
                  jn.FromImport: ("from", '{% from "_macros.j2" import m %}'),
                  jn.Extends: ("extends", '{% extends "_base.j2" %}')}
UNDERSCORE_HINT = "names starting with '_' are Python internals; templates see data fields only"


def environment(loader: jinja2.BaseLoader | None = None) -> ImmutableSandboxedEnvironment:
    """The one kind of jinja2 environment templates are parsed and rendered with."""
    env = ImmutableSandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=False,
                                        keep_trailing_newline=True)
    for name in FORBIDDEN_GLOBALS:
        env.globals.pop(name, None)
    return env


def hazards(tree: jn.Template) -> list[tuple[int, str, str]]:
    """What a template may not do, as (line, message, hint), in tree order."""
    out: list[tuple[int, str, str]] = []
    for node in tree.find_all((jn.Getattr, jn.Getitem, jn.Name, jn.Filter, jn.Test) + _REFERENCES):
        if isinstance(node, jn.Getattr) and node.attr.startswith("_"):
            out.append((node.lineno, f"attribute '{node.attr}' is not allowed in a template", UNDERSCORE_HINT))
        elif isinstance(node, jn.Getitem) and _const_str(node.arg, "").startswith("_"):
            out.append((node.lineno, f"item '{node.arg.value}' is not allowed in a template",  # type: ignore[attr-defined]
                        UNDERSCORE_HINT))
        elif isinstance(node, jn.Name) and node.ctx == "load" and node.name in FORBIDDEN_GLOBALS:
            out.append((node.lineno, f"'{node.name}' is not available in templates",
                        "templates have the workflow's variables and the globals range and dict"))
        elif isinstance(node, (jn.Filter, jn.Test)):
            out += [(node.lineno, msg, hint) for msg, hint in _attribute_args(node)]
        elif isinstance(node, _REFERENCES) and not _literal_name(node.template):
            word, example = _LITERAL_FORMS[type(node)]
            out.append((node.lineno, f"'{word}' names its template with an expression",
                        f"write the file name as a literal: {example}"))
    return out


def _const_str(node: Any, default: str | None = None) -> str | None:
    return node.value if isinstance(node, jn.Const) and isinstance(node.value, str) else default


def _literal_name(node: Any) -> bool:
    return _const_str(node) is not None


def _attribute_args(node: jn.Filter | jn.Test) -> list[tuple[str, str]]:
    """`|attr(x)`, `selectattr(x)`, `map(attribute=x)`, ...: a name to look up must be a literal
    without a `_`-part (`attr` with a computed name could reach anything)."""
    names: list[Any] = [kw.value for kw in node.kwargs if kw.key == "attribute"]
    if node.name in _ATTRIBUTE_ARGS and len(node.args) > _ATTRIBUTE_ARGS[node.name]:
        names.append(node.args[_ATTRIBUTE_ARGS[node.name]])
    out = []
    for arg in names:
        text = _const_str(arg)
        if text is None:
            if node.name == "attr":
                out.append(("'attr' takes a literal attribute name, not an expression",
                            "write the field directly: x.field"))
        elif any(part.startswith("_") for part in text.split(".")):
            out.append((f"attribute '{text}' is not allowed in a template", UNDERSCORE_HINT))
    return out


def referenced_names(tree: jn.Template) -> list[tuple[int, str]]:
    """(line, name) of every literal include/import/extends, in tree order."""
    return [(n.lineno, n.template.value) for n in tree.find_all(_REFERENCES)
            if _literal_name(n.template)]


def unsafe_name(name: str) -> str | None:
    """Why a template name may not be used (absolute, `..`, backslashes), or None."""
    if not name or "\\" in name or "\0" in name:
        return "a template name is a relative path with '/' separators"
    if name.startswith("/") or PurePosixPath(name).is_absolute() or os.path.isabs(name):
        return "a template name is relative to the template's folder, not absolute"
    if ".." in PurePosixPath(name).parts:
        return "a template name may not go up with '..'"
    return None


class ConfinedLoader(jinja2.BaseLoader):
    """Template names found in `folders` only: relative, without `..`, and the file found must
    lie inside one of the folders once symlinks are resolved."""

    def __init__(self, folders: Sequence[str | Path]) -> None:
        self.folders = [Path(f) for f in folders]
        self.roots = [real(f) for f in folders]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if unsafe_name(template) is None:
            for folder in self.folders:
                path = folder / template
                if path.is_file() and within(path, self.roots):
                    text = path.read_text(encoding="utf-8")
                    mtime = path.stat().st_mtime
                    return text, str(path), lambda p=path, m=mtime: p.is_file() and p.stat().st_mtime == m
        raise jinja2.TemplateNotFound(template)

    def list_templates(self) -> list[str]:  # pragma: no cover - jinja's API, unused here
        return []
