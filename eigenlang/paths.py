"""Where a program may name files.

Every file a program names — prompt templates and what they include, the `domain:` it uses, a
domain's `policy:` and its implementation files (`impl`, `generate`, `sync`, `offline`) — must
resolve, symlinks followed, inside one of:

- the program's own folder (the folder of its YAML file);
- the built-in domains (`domains/` of this checkout, or `$EIGEN_DOMAINS_DIR`);
- a folder the user named on the command line (`--allow-path DIR`, repeatable), or passed as
  `allow=` to the library calls.

Anything else is an E109 diagnostic at the place that names it. Files a program names are read
into `plan.json` and sent to model endpoints, and a domain's Python runs when it is loaded for
a run: a program handed over by someone else (or edited by a model) must not reach the rest of
the disk. docs/security.md states the whole trust model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostics, Span, display_path


def real(path: str | Path) -> Path:
    """The path with every symlink resolved (what would actually be opened)."""
    return Path(os.path.realpath(path))


def within(path: str | Path, roots: Iterable[Path]) -> bool:
    """Whether `path`, symlinks resolved, lies inside one of the (resolved) `roots`."""
    target = real(path)
    return any(target == r or target.is_relative_to(r) for r in roots)


def builtin_domains_dir() -> Path:
    return Path(os.environ.get("EIGEN_DOMAINS_DIR", Path(__file__).resolve().parents[1] / "domains"))


@dataclass(frozen=True)
class PathPolicy:
    """The roots one program's files must lie in (see the module docstring)."""

    folder: Path
    allowed: tuple[Path, ...] = ()
    roots: tuple[Path, ...] = field(init=False)

    def __post_init__(self) -> None:
        roots = (real(self.folder), real(builtin_domains_dir()), *(real(a) for a in self.allowed))
        object.__setattr__(self, "roots", tuple(dict.fromkeys(roots)))

    @classmethod
    def for_program(cls, program_file: str | Path, allow: Iterable[str | Path] = ()) -> PathPolicy:
        return cls(Path(program_file).parent, tuple(Path(a) for a in allow))

    def allows(self, path: str | Path) -> bool:
        return within(path, self.roots)

    def refuse(self, diags: Diagnostics, what: str, given: str, span: Span) -> None:
        """E109: `what` ("prompt template", "domain", ...) names `given`, which is outside."""
        diags.error("E109", f"{what} {given!r} is outside the program's folder", span,
                    f"keep it under {display_path(real(self.folder))}, use a built-in domain, "
                    "or allow its folder with --allow-path DIR")
