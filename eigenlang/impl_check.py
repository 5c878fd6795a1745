"""A domain's Python references ('file.py:function'), checked by reading the file's syntax
tree: nothing is imported (docs/security.md).

- the file lies in the domain's folder (or under `--allow-path`), exists and parses (E109,
  E107, E208);
- it defines the function at module level (E208; the hint leaves `_private` helpers out);
- the function's parameters fit how the runtime calls it (E210): a tool or an action is
  `fn(ctx, **params)`, called with every declared param by name (defaults filled in), so
  each declared param must be a parameter of the function (or `**kwargs`) and each other
  parameter after `ctx` needs a default; a generator is `build(seed, size)`, a user
  generator `build_user(seed, size, db)`, `sync(ctx)`, and the offline recipes
  `seed(rng, world, difficulty)` and `task(rng, world, seed)`, all called positionally.

A decorated function is taken on trust: a decorator may change what it accepts.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import name_hint
from .parse import Parsed
from .paths import PathPolicy


@dataclass(frozen=True)
class ImplRef:
    file: Path
    function: str

    def __str__(self) -> str:
        return f"{self.file.name}:{self.function}"


# How the runtime calls each kind of function that is not a tool: its positional arguments.
POSITIONAL = {
    ("database", "generate"): ("seed", "size"),
    ("user_database", "generate"): ("seed", "size", "db"),
    ("sync",): ("ctx",),
    ("offline", "seed"): ("rng", "world", "difficulty"),
    ("offline", "task"): ("rng", "world", "seed"),
}


@dataclass(frozen=True)
class _Signature:
    """What a function accepts, from its `def` line."""

    positional: tuple[str, ...]  # positional-only and positional-or-keyword, in order
    positional_only: int  # how many of them are positional-only
    required_positional: int  # how many of them have no default
    keyword_only: tuple[str, ...]
    required_keyword_only: tuple[str, ...]
    varargs: bool
    kwargs: bool
    decorated: bool

    @classmethod
    def of(cls, node: ast.FunctionDef | ast.AsyncFunctionDef) -> _Signature:
        a = node.args
        positional = tuple(p.arg for p in a.posonlyargs + a.args)
        kw_required = tuple(p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None)
        return cls(positional, len(a.posonlyargs), len(positional) - len(a.defaults),
                   tuple(p.arg for p in a.kwonlyargs), kw_required, a.vararg is not None,
                   a.kwarg is not None, bool(node.decorator_list))

    def text(self, name: str) -> str:
        parts = list(self.positional)
        if self.positional_only:
            parts.insert(self.positional_only, "/")
        parts += (["*args"] if self.varargs else ["*"] if self.keyword_only else []) + \
            list(self.keyword_only) + (["**kwargs"] if self.kwargs else [])
        return f"{name}({', '.join(parts)})"


class ImplChecker:
    """Checks a domain's 'file.py:function' references; diagnostics go to `parsed.diags`."""

    def __init__(self, root: Path, parsed: Parsed, paths: PathPolicy):
        self.root, self.parsed, self.paths = root, parsed, paths
        self._defs: dict[Path, dict[str, _Signature] | None] = {}

    def _functions(self, file: Path) -> dict[str, _Signature] | None:
        if file not in self._defs:
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
                self._defs[file] = {n.name: _Signature.of(n) for n in tree.body
                                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            except (OSError, SyntaxError, ValueError, RecursionError):
                self._defs[file] = None
        return self._defs[file]

    def ref(self, path: tuple, text: str | None) -> ImplRef | None:
        """The reference at `path` ('file.py:function'), or None after reporting why not;
        a function with a fixed calling convention (POSITIONAL) has its parameters checked."""
        if not text:
            return None
        src, diags = self.parsed.source, self.parsed.diags
        where = src.span(path)
        if ":" not in text:
            diags.error("E208", f"implementation '{text}' should be 'file.py:function'", where)
            return None
        fname, func = text.rsplit(":", 1)
        file = (self.root / fname).resolve()
        if not self.paths.allows(file):
            self.paths.refuse(diags, "implementation file", fname, where)
            return None
        if not file.is_file():
            diags.error("E107", f"implementation file not found: {fname}", where)
            return None
        funcs = self._functions(file)
        if funcs is None:
            diags.error("E208", f"{fname} has a Python syntax error", where)
            return None
        if func not in funcs:
            public = [f for f in funcs if not f.startswith("_") or func.startswith("_")]
            diags.error("E208", f"no function '{func}' in {fname}", where, name_hint(func, public))
            return None
        if path in POSITIONAL:
            self._positional(path, fname, func, funcs[func], POSITIONAL[path])
        return ImplRef(file, func)

    def _positional(self, path: tuple, fname: str, func: str, sig: _Signature,
                    args: tuple[str, ...]) -> None:
        if sig.decorated:
            return
        where = self.parsed.source.span(path)
        shown = sig.text(func)
        call = f"{func}({', '.join(args)})"
        if len(sig.positional) < len(args) and not sig.varargs:
            self.parsed.diags.error("E210", f"{fname}: {shown} cannot be called as {call}", where,
                                    f"give it {len(args)} positional parameters: {call}")
        elif sig.required_positional > len(args) or sig.required_keyword_only:
            extra = (sig.positional[len(args):sig.required_positional] + sig.required_keyword_only)
            self.parsed.diags.error("E210", f"{fname}: {shown} requires '{extra[0]}', but it is "
                                    f"called as {call}", where, f"give '{extra[0]}' a default")

    def check_params(self, path: tuple, ref: ImplRef | None, params: Iterable[str]) -> None:
        """A tool's or action's function against its declared params (E210), located at the
        param (one the function lacks) or at `impl:` (one the function requires)."""
        if ref is None:
            return
        sig = (self._functions(ref.file) or {}).get(ref.function)
        if sig is None or sig.decorated:
            return
        src, diags = self.parsed.source, self.parsed.diags
        fname, shown = ref.file.name, sig.text(ref.function)
        impl_span = src.span(path + ("impl",))
        if not sig.positional and not sig.varargs:
            diags.error("E210", f"{fname}: {shown} takes no 'ctx'", impl_span,
                        f"an implementation is {ref.function}(ctx, <params>): the first "
                        "parameter receives the context (ctx.db, ctx.now, ...)")
            return
        declared = list(params)
        # after ctx, what may be passed by name
        by_name = [p for i, p in enumerate(sig.positional) if i >= max(1, sig.positional_only)]
        by_name += list(sig.keyword_only)
        missing = [p for p in declared if p not in by_name and not sig.kwargs]
        required = [p for i, p in enumerate(sig.positional)
                    if 1 <= i < sig.required_positional and p not in declared]
        required += [p for p in sig.required_keyword_only if p not in declared]
        positional_only = set(sig.positional[1:sig.positional_only])
        for p in missing:
            where = src.span(path + ("params", p), key=True)
            close = difflib.get_close_matches(p, [q for q in required if q not in declared], n=1, cutoff=0.5)
            if p in positional_only:
                diags.error("E210", f"{fname}: '{p}' of {shown} is positional-only, but params are "
                            "passed by name", where, "remove the '/' from its parameter list")
            elif close:
                required.remove(close[0])
                diags.error("E210", f"param '{p}' is called '{close[0]}' in {fname}: {shown}", where,
                            f"use one name: the environment passes '{p}={{value}}'")
            else:
                diags.error("E210", f"{fname}: {shown} has no parameter '{p}'", where,
                            f"add '{p}' to its parameters (or **kwargs): every declared param "
                            "is passed by name")
        for p in required:
            diags.error("E210", f"{fname}: {shown} requires '{p}', which is not a declared param",
                        impl_span, f"declare '{p}' under params:, or give it a default in {fname}")
