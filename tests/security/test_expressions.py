"""Issue 16 (the planner is untrusted), expressions: an expression must never cost memory or
time beyond its limits, nor hide its failure.

Each test is one finding of the audit: every built-in sizes its result before building it
(`str()` of a value that repeats one big part used to be rendered whole: ~80 GB for
`str(['a' * 1000000] * 80000)`); a constant part that always fails is refused by the checker;
a guard, a stop/drift criterion or a verifier's failure message that cannot be evaluated is an
error in the record, not a silent "false" and not a gigabyte of text.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time
import tracemalloc
from contextlib import contextmanager

import pytest

from eigenlang.compiler import check_file
from eigenlang.diagnostics import Origin, Span
from eigenlang.expr import EvalError, check_expr, compile_expr, parse_expr
from eigenlang.expr.limits import MAX_SIZE
from eigenlang.types import ANY, BOOL, Schema
from tests.helpers import ROOT

ORIGIN = Origin.at(Span("evil.yaml", 1, 1))
ATTACK = "feasible and len(str(['a' * 1000000] * 80000)) > 0"  # the audit's guard


@contextmanager
def bounded(seconds: float = 0.5, megabytes: float = 20):
    """The block allocates at most `megabytes` (Python allocations, peak) and runs within
    `seconds` of CPU time (not wall time: the machine may be busy), tracing included: the
    unfixed code allocated the whole rendering before checking its size."""
    tracemalloc.start()
    start = time.process_time()
    try:
        yield
    finally:
        elapsed = time.process_time() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert elapsed < seconds, f"{elapsed:.2f} s"


def compiled(text: str):
    expr, diags = parse_expr(text, ORIGIN)
    assert expr is not None, diags
    return compile_expr(expr)


def evaluate(text: str, scope: dict | None = None):
    return compiled(text)(scope or {})


# ---------------------------------------------------------------- sized before built
# Each is small enough that the unfixed code finishes (and fails the bounds) without harm:
# N copies of a 1 MB string used to cost N MB before the size check refused them.
GROWING = [
    ("len(str(['a' * 1000000] * 200)) > 0", "str() would be at least"),
    ("len(str([['a' * 1000000] * 100, ['b' * 1000000] * 100])) > 0", "str() would be at least"),
    ("len(str([[x] * 200] * 200)) > 0", "str() would be at least"),  # nested, sharing one part
    ("len(str([[[x] * 200] * 200] * 200)) > 0", "str() would be at least"),  # 8e6 copies
    ("upper('ß' * 600000) == ''", "upper() would have"),  # 'ß'.upper() == 'SS': grows 2x
    ("lower('İ' * 600000) == ''", "lower() would have"),  # 'İ'.lower() is two characters
]


@pytest.mark.parametrize("text, message", GROWING, ids=[t[:40] for t, _ in GROWING])
def test_results_are_sized_before_they_are_built(text, message):
    fn = compiled(text)
    with bounded():
        with pytest.raises(EvalError) as info:
            fn({"x": "y" * 1000})
    assert message in info.value.message and info.value.span.file == "evil.yaml"


def limited(code: str, megabytes: int = 1024) -> str:
    """Run `code` in a fresh interpreter whose address space is capped, so that the unfixed
    code fails with a MemoryError instead of taking the machine down; its stdout."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, preexec_fn=cap,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_the_audit_guard_stops_in_milliseconds_and_megabytes():
    """`str(['a' * 1000000] * 80000)` needed ~80 GB: now it is refused after one item."""
    out = limited(f"""
        import time, tracemalloc
        from eigenlang.diagnostics import Origin
        from eigenlang.expr import EvalError, compile_expr, parse_expr
        expr, _ = parse_expr({ATTACK!r}, Origin("<guard>", ((1, 1),)))
        fn = compile_expr(expr)
        tracemalloc.start()
        start = time.process_time()
        try:
            fn({{"feasible": True}})
        except EvalError as exc:
            print(exc.message)
        print(time.process_time() - start, tracemalloc.get_traced_memory()[1])
    """)
    message, numbers = out.strip().splitlines()
    seconds, peak = numbers.split()
    assert message == "str() would be at least 1160002 characters long (at most 1000000)"
    assert float(seconds) < 0.1 and int(peak) < 4 * 2**20  # milliseconds, a few MB


def test_case_mapping_of_a_long_text_from_the_scope_is_bounded():
    big = "ﬃ" * (MAX_SIZE // 2)  # within MAX_SIZE; its upper case is 3x that
    fn = compiled("upper(s)")
    with bounded(megabytes=40):
        with pytest.raises(EvalError, match="upper\\(\\) would have 1500000 characters"):
            fn({"s": big})
    assert evaluate("len(upper(s))", {"s": "ﬃ" * 1000}) == 3000  # what fits is exact


def test_str_of_ordinary_values_is_unchanged():
    assert evaluate("str([1, 'a', none, true, 2.5])") == '[1, "a", null, true, 2.5]'
    assert evaluate("str(d)", {"d": {"b": [1], "a": {"c": "x"}}}) == '{"a": {"c": "x"}, "b": [1]}'
    shared = ["x" * 10] * 3
    assert evaluate("str(d)", {"d": [shared, shared]}) == str([shared, shared]).replace("'", '"')
    assert len(evaluate("str(['ab'] * 40000)")) == 240_000  # big but within the limit


def test_str_of_the_run_time_state_is_its_json():
    """State views are made afresh on each access: sizing them once each by identity must not
    mistake a new view for a freed one that had the same id."""
    import json

    from runtime.env import State
    from runtime.env.views import wrap

    data = {f"k{i}": {"v": i, "w": {"x": str(i), "l": [i, {"y": None}]}} for i in range(300)}
    view = wrap(State.from_json(data)._root)
    assert evaluate("str(d)", {"d": view}) == json.dumps(data, ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("value", [
    [1, -20, 3.25, 1e-7, True, False, None, "x y", [], {}, [[]], {"k": {}}],
    {"a": ["é" * 5, {"b": 10 ** 40}], "c": None, "": [1.5, "z"]},
    [["ab"] * 3] * 4,
])
def test_the_size_of_str_is_known_exactly_before_it_is_built(value, monkeypatch):
    """Without escapes the estimate is the length itself: a limit one character short is
    refused before a character is written (`at least`), the exact limit is fine."""
    from eigenlang.expr import limits

    text = evaluate("str(v)", {"v": value})
    monkeypatch.setattr(limits, "MAX_SIZE", len(text))
    assert evaluate("str(v)", {"v": value}) == text
    monkeypatch.setattr(limits, "MAX_SIZE", len(text) - 1)
    with pytest.raises(EvalError, match=f"at least {len(text)} characters"):
        evaluate("str(v)", {"v": value})


# ---------------------------------------------------------------- the checker folds constants
def test_check_refuses_a_guard_whose_constant_part_exceeds_the_limits(tmp_path):
    wf = tmp_path / "wf.yaml"
    text = (ROOT / "workflows" / "eigendata.yaml").read_text()
    text = text.replace("TaskValidation -> DialogSynthesis when feasible",
                        "TaskValidation -> DialogSynthesis when " + ATTACK)
    assert ATTACK in text
    with bounded(seconds=5, megabytes=30):  # (the compile itself included)
        diags = check_file(wf, text, allow=[ROOT])
    errors = [d for d in diags.errors if d.code == "E006"]
    assert len(errors) == 1, diags.render()
    line = text.splitlines().index(next(ln for ln in text.splitlines() if ATTACK in ln)) + 1
    assert errors[0].span.line == line and "str() would be at least" in errors[0].message


@pytest.mark.parametrize("text, fails", [
    ("1 / 0 > 0 or t", True),
    ("t and 10 ** 10 ** 10 > 0", True),
    ("t or len('a' * 10 ** 7) > 0", True),   # `t` may be false: the part can run
    ("false and 1 / 0 > 0", False),           # never runs
    ("t and (1 if true else 1 / 0) > 0", False),
    ("len(str(['a' * 1000] * 100)) > 0 and t", False),  # within the limits: fine
    ("count(x in xs: 1 / x > 0) > 0", False),  # reads a name: decided at run time
    ("count(x in xs: x * 10 ** 300 > 0) > 0", True),  # ... but not its constant part
])
def test_constant_parts_are_evaluated_by_the_checker(text, fails):
    expr, diags = parse_expr(text, ORIGIN)
    assert expr is not None, diags
    _, diags = check_expr(expr, {"t": BOOL, "xs": ANY}, Schema())
    assert [d.code for d in diags] == (["E006"] if fails else []), diags


# ---------------------------------------------------------------- failures are recorded
def test_a_guard_that_raises_rejects_the_instance_with_the_reason():
    from runtime.exec.engine import Runner, RunSpec

    workflow = ROOT / "workflows" / "eigendata.yaml"
    # depends on the data, so only the run can know (the unfixed engine rendered it, then
    # read the failure as "false": "no outgoing condition held")
    guard = "feasible or len(str([str(reasons) * 1000] * 200)) > 0"
    text = workflow.read_text().replace("TaskValidation -> DialogSynthesis when feasible",
                                        "TaskValidation -> DialogSynthesis when " + guard)
    runner = Runner(RunSpec(str(workflow), "airline", 3, 0.1, workflow_text=text))
    records = [runner.run(i) for i in range(12)]
    infeasible = [r for r in records if r.get("stage") == "TaskValidation"]
    assert infeasible, [r.get("stage") for r in records]
    column = guard.index("str(") + 1
    for r in infeasible:
        assert not r["accepted"] and len(r["reasons"]) == 1, r["reasons"]
        reason = r["reasons"][0]
        assert reason.startswith("guard_error: TaskValidation -> DialogSynthesis when feasible or ")
        assert "str() would be at least" in reason and f"(column {column} of the guard)" in reason
    assert any(r["accepted"] for r in records)  # feasible tasks never reach the raising part


def test_a_criterion_that_raises_is_an_error_not_false():
    from runtime.evolve.metrics import CriterionError, holds

    metrics = {"acceptance_rate": 0.0, "judge_score": 0.5}
    assert holds("judge_score > 0.4", metrics)
    with pytest.raises(CriterionError, match="division by zero"):
        holds("judge_score / acceptance_rate > 2", metrics)


def test_a_verifier_failure_message_never_renders_a_huge_value():
    """`x == y` failures show both sides: cut to 80 characters, written lazily (the unfixed
    verifier dumped the whole value as JSON first: 80 GB for the first assertion)."""
    from eigenlang import load_domain
    from runtime.env import Environment, Verifier

    domain, diags = load_domain(ROOT / "tests" / "fixtures" / "mini")
    assert domain is not None, diags.render()
    env = Environment.from_domain(domain, 0, 0.25)
    # small enough for the unfixed code to survive: 200 MB and 100 MB of JSON text
    v = Verifier(assertions=[{"expr": "['a' * 1000000] * 200 == []"},
                             {"expr": "[['a' * 10000] * 100] * 100 == 1"}])
    with bounded(seconds=1, megabytes=20):
        result = v.check(env, env, [])
    assert not result.passed and len(result.failures) == 2
    assert all(len(f) < 300 for f in result.failures), result.failures
    assert 'found ["aaaa' in result.failures[0] and result.failures[0].endswith("...")
    out = limited("""
        from eigenlang import load_domain
        from runtime.env import Environment, Verifier
        domain, _ = load_domain("tests/fixtures/mini")
        env = Environment.from_domain(domain, 0, 0.25)
        huge = Verifier(assertions=[{"expr": "['a' * 1000000] * 80000 == []"}])
        print(huge.check(env, env, []).failures[0])
    """)
    assert out.startswith('[\'a\' * 1000000] * 80000: expected [], found ["aaaa') and len(out) < 200
