"""`--allow-path DIR`, the one option every command that reads a program takes."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = ("a folder outside the program's own where the files it names (prompts, includes, domain, "
        "policy, code) may also be; repeatable (docs/security.md)")


def allow_path_option() -> Path:
    """A fresh typer option (each command needs its own instance)."""
    return typer.Option(None, "--allow-path", metavar="DIR", help=HELP)  # type: ignore[return-value]


def allowed(paths: list[Path] | None, domain: str | None = None) -> tuple[str, ...]:
    """The option's folders, absolute (relative ones are relative to where eigen runs), and
    the folder of a `--domain` that names one: the user named it, so the planner's edits of
    the program may keep using it too."""
    out = [p.resolve() for p in paths or ()]
    if domain is not None and Path(domain).exists():
        found = Path(domain).resolve()
        out.append(found if found.is_dir() else found.parent)
    return tuple(dict.fromkeys(str(p) for p in out))
