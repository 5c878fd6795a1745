"""Loading a domain's Python implementations (`tools.py:cancel_reservation`) by file path.

Each file is imported once per process under a stable module name derived from its resolved
path, and registered in `sys.modules` (dataclasses and pickling inside the file need that).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from eigenlang.diagnostics import did_you_mean

from .errors import ImplLoadError

_modules: dict[Path, ModuleType] = {}
_lock = threading.RLock()  # re-entrant: a file being loaded may load its siblings (load_sibling)


def module_name(path: Path) -> str:
    """`_eigen_impl_tools_3f2a9c1b0d`: unique per file, the same in every process."""
    stem = re.sub(r"\W", "_", path.stem)
    tag = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"_eigen_impl_{stem}_{tag}"


def load_module(file: Path | str) -> ModuleType:
    path = Path(file).resolve()
    with _lock:
        mod = _modules.get(path)
        if mod is not None:
            return mod
        if not path.is_file():
            raise ImplLoadError(f"implementation file not found: {path}")
        name = module_name(path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImplLoadError(f"cannot import {path}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:  # a broken tools.py: say where, do not crash the caller
            sys.modules.pop(name, None)
            raise ImplLoadError(f"error importing {path}: {type(exc).__name__}: {exc}") from exc
        _modules[path] = mod
        return mod


def load_sibling(anchor: str | Path, stem: str) -> ModuleType:
    """The module `stem`.py next to the file `anchor` (a domain file's `__file__`), loaded as
    load_module loads implementation files: once per process, under the same name, so that a
    helper imported by several domain files, or also named as an impl, is one module. Domain
    folders are not packages, so their files import each other this way."""
    return load_module(Path(anchor).with_name(f"{stem}.py"))


def load_impl(ref: Any) -> Callable[..., Any]:
    """The function an `ImplRef(file, function)` names, or the callable of a declarative
    `ExprImpl` (expr_impl.py: no Python of the domain's)."""
    if getattr(ref, "expr", None) is not None or not hasattr(ref, "file"):
        from .expr_impl import expression_impl

        return expression_impl(ref)
    mod = load_module(ref.file)
    fn = getattr(mod, ref.function, None)
    if not callable(fn):
        names = [n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")]
        hint = did_you_mean(ref.function, names)
        raise ImplLoadError(f"{ref.file}: no function {ref.function!r}" + (f"; {hint}" if hint else ""))
    return fn
