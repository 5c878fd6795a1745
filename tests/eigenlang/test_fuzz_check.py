"""No input whatsoever makes the checker raise: mutated programs and random text, thousands
of cases. (The CLI adds a last-resort guard, but the library itself must not need it.)"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eigenlang.compiler import check_file

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SEEDS = [p.read_text().split("# --- expected")[0] for p in sorted(GOLDEN.glob("*.yaml"))]
TOKENS = ["->", "<->", "when", "loop", "until", "max", ":", "{", "}", "[", "]", "'", '"', "#",
          "\n", "  ", "- ", "|", "not", "and", "(", ")", "__class__", "_x", "**", "9" * 30,
          "agents", "flow", "in", "out", "prompt", "TaskSpec", "RandomPool", "eigenlang: 1"]


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.integers(0, 3))
        if kind == 0:
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif kind == 1:
            end = min(len(text), pos + draw(st.integers(1, 20)))
            text = text[:pos] + text[end:]
        elif kind == 2:
            text = text[:pos] + draw(st.text(max_size=12)) + text[pos:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


FUZZ = settings(max_examples=1500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(mutated())
def test_mutated_programs_never_raise(text: str):
    diags = check_file(GOLDEN / "fuzz.yaml", text)
    for d in diags:
        assert d.code and d.span.line >= 1 and d.span.col >= 1


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str):
    check_file(GOLDEN / "fuzz.yaml", text)
