"""Crashes: a Python exception in code a run executes (a tool, a generator, a recipe, a worker).

A crash is a bug, not a verdict on the data: it is recorded apart from rejections
(docs/CONTRACTS.md §10), with a traceback written so that it is the same on every machine and
executor (paths relative to the repository or the domain folder, no addresses of the run's
own making, no clock), because the run directory is a pure function of program and seed.

An environment records the crashes of its tool calls in its `crash_log` (a list shared by all
forks of one instance; None: nobody listens). The call itself still comes back as a `crash`
error result, so a dialogue shows what the agent saw.
"""

from __future__ import annotations

import sysconfig
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MESSAGE_CHARS = 500
SOURCES = ("tool", "generator", "recipe", "worker")


@dataclass(frozen=True)
class Crash:
    source: str  # tool | generator | recipe | worker (SOURCES)
    where: str  # the tool's name, or the innermost frame of the code at fault ("file:line in fn")
    type: str  # the exception's class name
    message: str
    traceback: str  # portable_traceback()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def describe(exc: BaseException, *, source: str | None = None, where: str | None = None,
             domain: Any = None) -> Crash:
    """The crash of `exc`. Without `source`: the exception's own `crash_source` (and
    `crash_where`) when it has one (an error the runtime raises about domain code, e.g. a
    recipe naming an unknown tool),
    else a frame in the domain's generator file makes it `generator`, any other frame in the
    domain's folder `recipe` (a worker running the domain's offline recipes), else `worker`.
    `where` defaults to the innermost frame in the domain's folder, else the innermost one."""
    root = _root(domain)
    frames = [f for e in _chain(exc) for f in traceback.extract_tb(e.__traceback__)]
    ours = [f for f in frames if root is not None and _under(f.filename, root)]
    if source is None:
        generator = _file(root, getattr(getattr(domain, "generate", None), "file", None))
        source = getattr(exc, "crash_source", None)
        if source not in SOURCES:
            if generator is not None and any(Path(f.filename).resolve() == generator for f in ours):
                source = "generator"
            else:
                source = "recipe" if ours else "worker"
    where = where or getattr(exc, "crash_where", None)
    if where is None and (ours or frames):
        f = (ours or frames)[-1]
        where = f"{_short(f.filename, root)}:{f.lineno} in {f.name}"
    message = " ".join(str(exc).split())
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS - 3] + "..."
    return Crash(source, where or "?", type(exc).__name__, message, portable_traceback(exc, root))


def portable_traceback(exc: BaseException, domain_root: Path | None = None) -> str:
    """The traceback of `exc` with its cause or context (also one hidden by `raise ... from
    None`: it is where the bug is), file names made relative: `runtime/...` inside the
    repository, `<domain>/...` inside the domain's folder, `<python>/...` and
    `<site-packages>/...` for the interpreter's own files."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    seen, cur = set(), te
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        cur.__suppress_context__ = False
        for frame in cur.stack:
            frame.filename = _short(frame.filename, domain_root)
        cur = cur.__cause__ or cur.__context__
    return "".join(te.format())


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out[::-1]  # the original first: its frames are the innermost


def _root(domain: Any) -> Path | None:
    root = getattr(domain, "root", None)
    return Path(root).resolve() if root is not None else None


def _file(root: Path | None, file: Any) -> Path | None:
    if file is None:
        return None
    path = Path(file)
    return (path if path.is_absolute() or root is None else root / path).resolve()


def _under(filename: str, root: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


_PLACES = tuple((label, Path(p).resolve()) for label, p in (
    ("<site-packages>", sysconfig.get_paths()["purelib"]), ("<python>", sysconfig.get_paths()["stdlib"])))


def _short(filename: str, domain_root: Path | None) -> str:
    if filename.startswith("<"):  # <string>, <frozen ...>
        return filename
    path = Path(filename).resolve()
    places = (((None, domain_root),) if domain_root is not None else ()) + (("", REPO),) + _PLACES
    for label, base in places:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        if label is None:  # a built-in domain lies in the repository: say so
            try:
                return path.relative_to(REPO).as_posix()
            except ValueError:
                return f"<domain>/{rel}"
        return f"{label}/{rel}" if label else rel
    return f"<elsewhere>/{path.name}"
