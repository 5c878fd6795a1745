"""`eigen check --run-domain`: run a domain's Python once, small, and check what it makes.

`eigen check` never imports a domain's code (docs/security.md): it reads it with `ast`. What
only running can show is behind this opt-in. A child process (`python -m runtime.env.probe`,
killed after `timeout` seconds) loads the domain as `eigen run` would and:

1. builds a small world with the generator (`seed`, `size`) and validates it against the
   schema: E703 for each mismatch, E705 when the generator raises;
2. plays the offline recipes as a run's RandomPool and UserIntent do, for `instances`
   scenarios: E705 when a recipe raises, E704 when it plans a call that names no tool or
   whose arguments break the tool's schema, E705 at a tool's `impl:` when running the gold
   path makes the tool crash (anything but `ToolError` or a refused precondition: those are
   how infeasible tasks arise); an intent of the recipes' `INTENTS` table that no scenario
   picked is a warning (its seed picker finds nothing in this world).

Each finding names a place in domain.yaml (a key path); the parent maps it to a position, so
the diagnostics read like every other `eigen check` diagnostic. One finding per (code,
place, intent, tool): the first of many alike is enough to act on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 60.0
SIZE = 0.2
INSTANCES = 40
SCHEMA_PROBLEMS = 5  # world mismatches reported per database (the rest are counted)


# ----------------------------------------------------------------------- parent side
def probe_domain(domain_yaml: str | Path, *, allow: Iterable[str | Path] = (), seed: int = 0,
                 size: float = SIZE, instances: int = INSTANCES,
                 timeout: float = DEFAULT_TIMEOUT) -> Any:
    """The diagnostics (eigenlang.diagnostics.Diagnostics) of running the domain's code in a
    child process, at most `timeout` seconds."""
    from eigenlang.diagnostics import Diagnostics, Span, display_path
    from eigenlang.parse import parse_program

    path = Path(domain_yaml)
    parsed = parse_program(path)
    diags = Diagnostics()
    top = parsed.source.span(("domain",)) if parsed.program is not None else Span(display_path(path), 1, 1)
    with tempfile.TemporaryDirectory(prefix="eigen-probe-") as tmp:
        out = Path(tmp) / "findings.json"
        cmd = [sys.executable, "-m", "runtime.env.probe", str(path.resolve()), "--out", str(out),
               "--seed", str(seed), "--size", str(size), "--instances", str(instances)]
        for a in allow:
            cmd += ["--allow", str(Path(a).resolve())]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
        except subprocess.TimeoutExpired:
            diags.error("E705", f"running the domain's code took longer than {timeout:g} s "
                        f"(world of size {size}, {instances} scenarios)", top,
                        "a generator or recipe that loops? give more time with --run-timeout")
            return diags
        if not out.is_file():
            tail = " ".join((proc.stderr or "").strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
            diags.error("E705", f"running the domain's code failed: {tail[:300]}", top)
            return diags
        findings = json.loads(out.read_text(encoding="utf-8"))
    for f in findings:
        span = parsed.source.span(tuple(f["path"])) if f["path"] else top
        (diags.warning if f.get("severity") == "warning" else diags.error)(
            f["code"], f["message"], span, f.get("hint"))
    return diags


# ----------------------------------------------------------------------- child side
class _Findings(list):
    def __init__(self) -> None:
        super().__init__()
        self.keys: set[tuple] = set()

    def add(self, code: str, path: tuple, message: str, hint: str | None = None, *,
            key: tuple = (), severity: str = "error") -> None:
        k = (code, path, *key) if key else (code, path, message)
        if k not in self.keys:
            self.keys.add(k)
            self.append({"code": code, "path": list(path), "message": message, "hint": hint,
                         "severity": severity})


def _raised(exc: BaseException, domain: Any) -> str:
    from .crashes import describe

    c = describe(exc, domain=domain)
    return f"{c.type}: {c.message} (at {c.where})"


def findings(domain_yaml: Path, allow: Iterable[str] = (), seed: int = 0, size: float = SIZE,
             instances: int = INSTANCES) -> list[dict]:
    """What running the domain's code shows (see the module's docstring)."""
    from eigenlang.domain import load_domain

    out = _Findings()
    domain, diags = load_domain(domain_yaml, allow)
    if domain is None:  # `eigen check` reports why
        return out
    if domain.generate is None:
        out.add("E703", ("database",), "the domain has no generator, so no world was built",
                "declare database: {generate: generate.py:build}", severity="warning")
        return out
    data = _world(out, domain, ("database", "generate"), lambda fn: fn(seed, size), domain.schema)
    user = None
    if data is not None and domain.generate_user is not None:
        user = _world(out, domain, ("user_database", "generate"), lambda fn: fn(seed, size, data),
                      domain.user_schema)
    if data is None or (domain.generate_user is not None and user is None):
        return out
    env = _environment(out, domain, data, user)
    if env is not None and domain.offline_seed is not None and domain.offline_task is not None:
        _recipes(out, domain, env, data, user, seed, size, instances)
    return out


def _world(out: _Findings, domain: Any, path: tuple, call: Any, schema: Any) -> Any:
    """The generated database, or None after reporting why it cannot be used."""
    from eigenlang.types import ModelT

    from .impls import load_impl

    ref = domain.generate if path[0] == "database" else domain.generate_user
    try:
        data = call(load_impl(ref))
    except Exception as exc:  # noqa: BLE001  the domain's bug, reported
        out.add("E705", path, f"{ref} raised {_raised(exc, domain)}")
        return None
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        out.add("E703", path, f"{ref} built a database that is not JSON data: {exc}")
        return None
    problems = schema.validate(data, ModelT(schema.root), limit=SCHEMA_PROBLEMS)
    for p in problems:
        out.add("E703", path, f"{ref} built a database that does not match the schema: {p}",
                "the generator and database.models disagree: fix one of them")
    return None if problems else data


def _environment(out: _Findings, domain: Any, data: Any, user: Any) -> Any:
    from .environment import Environment

    try:
        return Environment.from_data(domain, data, user)
    except Exception as exc:  # noqa: BLE001  an implementation file that does not import
        text = str(exc)
        places = [(("tools", n, "impl"), t) for n, t in domain.tools.items()] + \
                 [(("user_tools", n, "impl"), t) for n, t in domain.user_tools.items()] + \
                 [(("actions", n, "impl"), a) for n, a in domain.actions.items()]
        path = next((p for p, t in places if str(getattr(t.impl, "file", "")) in text), ("tools",))
        out.add("E705", path, f"the domain's tools cannot be loaded: {text[:400]}")
        return None


def _recipes(out: _Findings, domain: Any, env: Any, data: Any, user: Any, seed: int,
             size: float, instances: int) -> None:
    """Play the recipes as a run does; check each plan's gold calls against the tools."""
    from runtime.workers.base import World, WorkerContext, WorkerError, node_rng
    from runtime.workers.offline.intent import OfflineUserIntent
    from runtime.workers.offline.pool import OfflineRandomPool

    from . import errors as E
    from .impls import load_module

    world = World(domain, data, user, str(domain.now))
    picked: set[str] = set()
    for i in range(instances):
        def context(node: str) -> WorkerContext:
            return WorkerContext(domain, env, world, node_rng(seed, i, node), node, node, 0)

        try:
            scenario = OfflineRandomPool().run(context("RandomPool"), {})["ScenarioSeed"]
        except WorkerError as exc:
            out.add("E704", ("offline", "seed"), f"{domain.offline_seed}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001
            out.add("E705", ("offline", "seed"), f"{domain.offline_seed} raised {_raised(exc, domain)}")
            continue
        intent = scenario["intent"]
        picked.add(intent)
        try:
            task = OfflineUserIntent().run(context("UserIntent"), {"ScenarioSeed": scenario})["TaskSpec"]
        except Exception as exc:  # noqa: BLE001  WorkerError, RecipeError, a bug: all the recipe's
            code = "E704" if getattr(exc, "crash_source", None) == "recipe" or \
                isinstance(exc, WorkerError) else "E705"
            what = str(exc) if code == "E704" else f"raised {_raised(exc, domain)}"
            out.add(code, ("offline", "task"), f"{domain.offline_task}, intent {intent!r}: {what}",
                    key=(intent, type(exc).__name__))
            continue
        fork = env.fork()
        fork.crash_log = []
        for n, call in enumerate(task["gold_calls"], 1):
            side = call.get("side", "agent")
            r = fork.call(call["name"], call["arguments"], side)
            shown = f"{call['name']}({json.dumps(call['arguments'], sort_keys=True)[1:-1][:200]})"
            if r.error in (E.UNKNOWN_TOOL, E.BAD_JSON, E.SCHEMA):
                out.add("E704", ("offline", "task"),
                        f"{domain.offline_task}, intent {intent!r}: gold call {n} {shown} is "
                        f"refused by the tools: {r.content.removeprefix('Error: ')}",
                        "a recipe's gold calls must fit the tools' params: names and types",
                        key=(intent, call["name"], r.error))
            elif r.error == E.CRASH:
                where = _frame(fork.crash_log[-1].traceback) if fork.crash_log else None
                tools = "tools" if side == "agent" else "user_tools"
                out.add("E705", (tools, call["name"], "impl"),
                        f"gold call {n} of intent {intent!r}, {shown}, crashed: "
                        f"{r.content.removeprefix('Error: ')}" + (f" (at {where})" if where else ""),
                        "a tool refuses a call with ToolError (or a requires: check); any other "
                        "exception is a bug", key=(call["name"],))
    table = getattr(load_module(domain.offline_seed.file), "INTENTS", None)
    if isinstance(table, dict):
        for name in table:
            if name not in picked:
                out.add("E704", ("offline", "seed"),
                        f"intent {name!r} was never picked in {instances} scenarios (world of "
                        f"size {size}, seed {seed})",
                        "its seed picker finds no context in this world: does the generator "
                        "build what it needs?", severity="warning")


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _frame(traceback_text: str) -> str | None:
    """The innermost frame of a portable traceback, "file:line in function"."""
    frames = _FRAME.findall(traceback_text)
    return f"{frames[-1][0]}:{frames[-1][1]} in {frames[-1][2]}" if frames else None


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m runtime.env.probe")
    ap.add_argument("domain")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=float, default=SIZE)
    ap.add_argument("--instances", type=int, default=INSTANCES)
    ap.add_argument("--allow", action="append", default=[])
    a = ap.parse_args(argv)
    result = findings(Path(a.domain), a.allow, a.seed, a.size, a.instances)
    Path(a.out).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
