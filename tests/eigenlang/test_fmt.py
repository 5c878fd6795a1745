"""The formatter: canonical, idempotent, comment-keeping, meaning- and hash-preserving."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from eigenlang.compiler import compile_workflow
from eigenlang.fmt import format_file, format_flow, format_text
from eigenlang.source import load_source, to_plain

ROOT = Path(__file__).resolve().parents[2]
EIGENDATA = ROOT / "workflows" / "eigendata.yaml"
MINI = ROOT / "tests" / "fixtures" / "mini" / "domain.yaml"
PROGRAMS = [EIGENDATA, MINI] + sorted((ROOT / "domains").glob("*/domain.yaml")) + \
    sorted((ROOT / "tests" / "golden").glob("*.yaml"))


def data(text: str):
    return to_plain(load_source("<t>", text).data)


def meaning(text: str):
    """The program as data, the flow compared statement by statement."""
    d = data(text)
    if isinstance(d, dict) and isinstance(d.get("flow"), str):
        d["flow"] = [ln for ln in format_flow(d["flow"]).splitlines()
                     if ln and not ln.startswith("#")]
    return d


def comments(text: str) -> list[str]:
    return [m.group(0).strip() for m in re.finditer(r"#[^\n]*", text)]


# ------------------------------------------------------------------- shuffled variants
def _emit(node: dict, indent: int, rng: random.Random, lines: list[str], tag: str) -> None:
    """YAML for `node` with shuffled keys, 4-space indentation, and tagged comments:
    `# c-<path>` on the line above a key, `# e-<path>` at the end of a key's line."""
    keys = list(node)
    rng.shuffle(keys)
    pad = " " * indent
    for k in keys:
        v, path = node[k], f"{tag}.{k}"
        if rng.random() < 0.4:
            lines.append(f"{pad}# c-{path}")
        eol = f"    # e-{path}" if rng.random() < 0.3 and k != "flow" else ""
        if k == "flow":
            lines.append(f"{pad}flow: |")
            lines.extend(pad + "    " + ln for ln in _messy_flow(v, rng).splitlines())
        elif isinstance(v, dict) and v:
            lines.append(f"{pad}{k}:{eol}")
            _emit(v, indent + 4, rng, lines, path)
        else:
            lines.append(f"{pad}{k}: {json.dumps(v)}{eol}")
        if rng.random() < 0.2:
            lines.extend([""] * rng.randint(1, 3))


def _messy_flow(flow: str, rng: random.Random) -> str:
    out = ["# a comment line in the flow"]
    for line in flow.strip().splitlines():
        line = line.replace(" -> ", rng.choice(["->", "  ->   ", " ->"]))
        line = line.replace("loop ", "loop   ").replace(" max ", "   max ")
        out.append(line)
        if rng.random() < 0.3:
            out.append("")
    return "\n".join(out) + "\n"


def variant(text: str, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["# the head comment", ""]
    _emit(data(text), 0, rng, lines, "top")
    return "\n".join(lines) + "\n\n\n"


def assert_comments_travel(original: str, formatted: str) -> None:
    """Every tagged comment survives once; `# c-x.k` sits above key k, `# e-x.k` on k's line
    (or above it, when the value became a block scalar)."""
    out_lines = formatted.splitlines()
    for tag in re.findall(r"# ([ce]-[\w.]+)", original):
        hits = [i for i, ln in enumerate(out_lines) if re.search(rf"# {re.escape(tag)}$", ln)]
        assert len(hits) == 1, (tag, formatted)
        key = tag.rsplit(".", 1)[1]
        i = hits[0]
        if tag.startswith("e-") and not out_lines[i].strip().startswith("#"):
            assert out_lines[i].strip().startswith(f"{key}:"), (tag, out_lines[i])
        else:  # a comment line (an end-of-line comment of a string that became a `|` block)
            nxt = next(ln for ln in out_lines[i + 1:] if ln.strip() and not ln.strip().startswith("#"))
            assert nxt.strip().startswith(f"{key}:"), (tag, nxt)
            assert out_lines[i].index("#") == nxt.index(key), "comment indented like its key"


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_idempotent_and_meaning_kept(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = format_text(text)
    assert format_text(once) == once
    if load_source("<t>", text).diags:  # does not parse: left alone
        assert once == text
        return
    assert meaning(once) == meaning(text)
    assert sorted(comments(text)) == sorted(comments(once))


VARIANTS = [(p, seed) for p in (EIGENDATA, MINI) for seed in range(5)] + \
    [(p, seed) for p in sorted((ROOT / "domains").glob("*/domain.yaml")) for seed in range(2)]


@pytest.mark.parametrize("path,seed", VARIANTS, ids=lambda x: x.parent.name if isinstance(x, Path) else x)
def test_shuffled_commented_variants(path: Path, seed: int) -> None:
    text = variant(path.read_text(encoding="utf-8"), seed)
    once = format_text(text)
    assert once != text
    assert format_text(once) == once
    assert once.startswith("# the head comment\n")
    assert not once.endswith("\n\n") and "\n\n\n" not in once
    assert_comments_travel(text, once)
    canonical = format_text(path.read_text(encoding="utf-8"))
    top = [ln.split(":")[0] for ln in once.splitlines() if re.match(r"^\w", ln)]
    assert top == [ln.split(":")[0] for ln in canonical.splitlines() if re.match(r"^\w", ln)]
    assert meaning(once) == meaning(text)


def test_canonical_layout() -> None:
    text = (
        "# head\n"
        "flow: \"A->B  ->  C\\n\\n\\n# keep me\\nC->D   when  done   # why\\nloop  C <->  D until ok  max 2\"\n"
        "agents:\n"
        "    B: {out: X, prompt: b.j2, zzz_unknown: 1, in: Y}\n"
        "    A:\n"
        "        out: Y   # eol\n"
        "        prompt: a.j2\n"
        "description: \"two\\nlines\"\n"
        "workflow: w\n"
        "domain: d\n"
        "eigenlang: 1\n")
    out = format_text(text)
    assert out == (
        "# head\n"
        "eigenlang: 1\n"
        "workflow: w\n"
        "description: |-\n"
        "  two\n"
        "  lines\n"
        "domain: d\n"
        "agents:\n"
        "  B: {prompt: b.j2, in: Y, out: X, zzz_unknown: 1}\n"
        "  A:\n"
        "    prompt: a.j2\n"
        "    out: Y       # eol\n"  # an end-of-line comment keeps its column
        "flow: |\n"
        "  A -> B -> C\n"
        "\n"
        "  # keep me\n"
        "  C -> D when done  # why\n"
        "  loop C <-> D until ok max 2\n")
    assert format_text(out) == out


def test_flow_guard_text_is_kept_verbatim() -> None:
    # the semantic hash covers guard texts, so only the outer spaces may change
    assert format_flow("  A->B when  x  >  1   \n") == "A -> B when x  >  1\n"
    assert format_flow("A -> -> B\n") == "A -> -> B\n"  # a broken line is kept as written


def test_long_flow_maps_become_block_style() -> None:
    long = "x" * 120
    out = format_text(f"eigenlang: 1\nworkflow: w\njudge: {{axes: {{a: 1.0}}, prompt: {long}}}\n")
    assert "judge:\n  axes: {a: 1.0}\n  prompt: " + long in out


@pytest.mark.parametrize("text", [
    "eigenlang: 1\nworkflow: [unclosed\n",
    "- just\n- a list\n",
    "",
    "eigenlang: 1\n  bad: indentation\n",
])
def test_unparsable_text_is_left_unchanged(text: str, tmp_path: Path) -> None:
    assert format_text(text) == text
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert format_file(f) == (False, text)
    assert f.read_text() == text


def test_format_file_check_and_write(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text("workflow: w\neigenlang: 1\n")
    changed, new = format_file(f, check=True)
    assert changed and new == "eigenlang: 1\nworkflow: w\n"
    assert f.read_text() == "workflow: w\neigenlang: 1\n"  # check mode does not write
    assert format_file(f) == (True, new) and f.read_text() == new
    assert format_file(f) == (False, new)


def test_semantic_hash_unchanged_by_formatting(workflow_dir: Path) -> None:
    wf = workflow_dir / "eigendata.yaml"
    text = wf.read_text()
    plan, diags = compile_workflow(wf, text)
    assert plan is not None, diags.render()
    for candidate in [format_text(text)] + [variant(text, s) for s in range(3)]:
        for t in (candidate, format_text(candidate)):
            other, d = compile_workflow(wf, t)
            assert other is not None, d.render()
            assert other.hash == plan.hash
    # and a real change does change it
    changed, _ = compile_workflow(wf, text.replace("max 3", "max 2"))
    assert changed is not None and changed.hash != plan.hash


def test_comments_of_eigendata_survive() -> None:
    text = EIGENDATA.read_text()
    out = format_text(text)
    assert comments(out) and sorted(comments(out)) == sorted(comments(text))
    assert out.splitlines()[:2] == text.splitlines()[:2]  # the head comment stays on top


def test_output_that_changes_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from eigenlang import fmt

    text = "workflow: w\neigenlang: 1\nflow: A -> B\n"
    assert format_text(text) != text
    monkeypatch.setattr(fmt, "dump_text", lambda data: "eigenlang: 1\nworkflow: w\nflow: A -> C\n")
    assert format_text(text) == text
