"""The fast YAML reader (libyaml) must read every program exactly as ruamel.yaml does:
same data (types included), same positions, same origins, same syntax errors. Each case
reads a text both ways (`load_source(..., fast=False)` is the ruamel.yaml-only reference)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from eigenlang.check import check_workflow
from eigenlang.diagnostics import Origin
from eigenlang.flow import parse_flow
from eigenlang.lower import lower
from eigenlang.parse import parse_program
from eigenlang.resolve import resolve_workflow
from eigenlang.source import dump_yaml, fast_load, load_source

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted(p for d in ("domains", "workflows", "tests/golden", "tests/fixtures")
                  for p in (ROOT / d).rglob("*.yaml"))
SMALL = [p for p in PROGRAMS if p.stat().st_size < 4000]


def typed(v):
    """Data with the type of every leaf, so 1 != 1.0 != True and ScalarInt != int."""
    if isinstance(v, dict):
        return {k: typed(x) for k, x in v.items()}
    if isinstance(v, list):
        return [typed(x) for x in v]
    return (type(v).__name__, v if isinstance(v, (str, int, float, type(None))) else repr(v))


def paths(v, pre=()):
    """Every path into the data, plus paths that do not exist (they have spans too)."""
    yield pre
    if isinstance(v, dict):
        for k, x in v.items():
            yield from paths(x, pre + (k,))
        yield pre + ("no_such_key",)
        yield pre + ("no_such_key", 0)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from paths(x, pre + (i,))
        yield from (pre + (len(v),), pre + (-1,), pre + ("k",))
    elif isinstance(v, str):
        yield pre + (0,)


def origin_or_error(src, path):
    try:
        return src.origin(path)
    except (KeyError, IndexError, TypeError) as exc:
        return type(exc).__name__


def assert_same_reading(text: str) -> bool:
    """Both readers agree on `text`; returns whether the fast reader took it."""
    ref = load_source("p.yaml", text, fast=False)
    new = load_source("p.yaml", text)
    assert new.diags.render() == ref.diags.render()
    assert typed(new.plain) == typed(ref.plain)
    for p in paths(ref.plain):
        for key in (False, True):
            assert new.span(p, key=key) == ref.span(p, key=key), (p, key)
        assert origin_or_error(new, p) == origin_or_error(ref, p), p
    return new._lc is not None


@pytest.mark.parametrize("path", PROGRAMS, ids=[str(p.relative_to(ROOT)) for p in PROGRAMS])
def test_every_program_in_the_repo_reads_the_same(path: Path):
    assert_same_reading(path.read_text(encoding="utf-8"))


def test_the_shipped_programs_take_the_fast_path():
    shipped = [p for p in PROGRAMS if p.relative_to(ROOT).parts[0] in ("domains", "workflows")]
    assert len(shipped) >= 4
    for p in shipped:
        assert fast_load(p.read_text(encoding="utf-8")) is not None, p


# Edits that exercise syntax errors and the corners where libyaml and ruamel.yaml differ.
PIECES = [":", '"', "'", "|", ">", "-", "#", "\t", "\n", "{", "}", "[", "]", "&a ", "*a", "!t ",
          " ", "\r\n", "\x85", "é", "😀", "\u2028", "\ufeff", ",", "? ", "%", "@", "\\", "0",
          "1.5", "~", "<<: ", "yes", "2024-01-01", "---\n", "...\n", "- ", "k: ", '"\\x41\\/"',
          "0x1F", "1_000", "007", "-0", ".inf", "null", "True", "\x07"]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text) + 1)
        r = rng.random()
        if r < 0.45:
            text = text[:i] + rng.choice(PIECES) + text[i:]
        elif r < 0.8:
            text = text[:i] + text[i + rng.randint(1, 4):]
        else:
            lines = text.split("\n")
            lines.insert(rng.randrange(len(lines)), rng.choice(lines))
            text = "\n".join(lines)
    return text


def test_mutated_programs_read_the_same():
    rng = random.Random(7)
    texts = [p.read_text(encoding="utf-8") for p in SMALL]
    fast = sum(assert_same_reading(mutate(rng.choice(texts), rng)) for _ in range(250))
    assert fast > 60  # the comparison covers the fast path, not only the fallback


WORDS = ["a", "b c", "x: y", "it's", 'say "hi"', "1", "0", "-3", "1.5", "1e3", "true", "no",
         "on", "null", "~", " lead", "trail ", "a #b", "é😀", "\\n", "\\x41", "\\u00e9", ".5",
         "0x1f", "1_0", "010", "-0", "+1", "a\nb", "a\n\nb", "- x", "[a]", "{b}", "?", "a,b"]


def scalar(rng: random.Random, indent: int, flow: bool) -> str:
    w = rng.choice(WORDS)
    style = rng.choice(["plain", "single", "double"] + ([] if flow else ["plain", "block"]))
    if style == "single":
        return "'" + w.replace("'", "''").replace("\n", "\n" + " " * (indent + 2)) + "'"
    if style == "double":
        return '"' + w.replace('"', '\\"').replace("\n", "\\n") + '"'
    if style == "block":
        pad = " " * (indent + 2)
        body = "\n".join(pad + ln if ln else "" for ln in w.split("\n"))
        return rng.choice(["|", ">", "|-", ">+", "|2"]) + rng.choice(["", "  # c"]) + "\n" + body
    return w.replace("\n", " ")


def flow_value(rng: random.Random, depth: int) -> str:
    if depth > 2 or rng.random() < 0.5:
        return scalar(rng, 0, True)
    if rng.random() < 0.5:
        return "[" + ", ".join(flow_value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    return "{" + ", ".join(f"k{i}: {flow_value(rng, depth + 1)}" for i in range(rng.randint(0, 3))) + "}"


def block(rng: random.Random, indent: int, depth: int) -> str:
    pad, out = " " * indent, []
    if depth == 0 or rng.random() < 0.6:
        for i in range(rng.randint(1, 4)):
            key = rng.choice(["name{}", "a b{}", "'q{}'", '"d{}"', "x-y{}", "'it''s{}'"]).format(i)
            if rng.random() < 0.15:
                out.append(pad + "# comment")
            r = rng.random()
            if depth < 3 and r < 0.3:
                out += [f"{pad}{key}:" + rng.choice(["", "  # c"]), block(rng, indent + rng.choice([2, 4]), depth + 1)]
            elif r < 0.45:
                out.append(f"{pad}{key}: {flow_value(rng, 0)}")
            else:
                out.append(f"{pad}{key}: {scalar(rng, indent, False)}")
    else:
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            if depth < 3 and r < 0.3:
                out.append(f"{pad}- " + block(rng, indent + 2, depth + 1).lstrip(" "))
            elif r < 0.5:
                out.append(f"{pad}- {flow_value(rng, 0)}")
            else:
                out.append(f"{pad}- {scalar(rng, indent + 2, False)}")
    return "\n".join(out)


def test_generated_documents_read_the_same():
    rng = random.Random(3)
    fast = 0
    for _ in range(600):
        text = block(rng, 0, 0) + rng.choice(["", "\n", "\n# end\n"])
        if rng.random() < 0.1:
            text = "---\n" + text
        if rng.random() < 0.05:
            text = text.replace("\n", "\r\n")
        fast += assert_same_reading(text)
    assert fast > 300


@pytest.mark.parametrize("text", [
    "a: &x {b: 1}\nc: [*x, *x]\nd: {e: *x}\n",  # an alias is placed where its anchor is
    "a: &x\n  b: [1, 2]\nc: *x\n",
    "k: 'q'\nl: \"d\"\nm: |\n  x\n  y\nn: >-\n  z\n",
    "a: 0\nb: 1.0\nc: -5\nd: true\ne: ~\nf: 1e3\n",
])
def test_fast_texts(text: str):
    assert fast_load(text) is not None
    assert_same_reading(text)


@pytest.mark.parametrize("text", [
    "a: 1\nb:\n",                      # an empty value: the readers place it differently
    "a: &x 1\nb: *x\n",                # an anchored scalar (ruamel.yaml keeps the anchor)
    "a: &x {b: *x}\n",                 # a recursive alias
    "a: &x [1]\nb: &x [2]\nc: *x\n",   # an anchor used twice
    "a: !t 1\n",                       # tags
    "a: 2024-01-01\n",                 # timestamps (ruamel.yaml has its own type)
    "a: 1\na: 2\n",                    # duplicate keys (ruamel.yaml: an error)
    "a: 1\n---\nb: 2\n",               # two documents (ruamel.yaml: an error)
    "%YAML 1.1\n---\na: yes\n",        # a directive changes the rules
    "a:\tb\n",                         # tabs
    "a: b\u2028c\n",                   # a Unicode line separator
    "<<: {a: 1}\n",                    # merge keys
    "1: a\n",                          # a key that is not a string
    "a: [b\n",                         # a syntax error: ruamel.yaml reports it
])
@pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")
def test_declined_texts_fall_back_to_ruamel(text: str):
    assert fast_load(text) is None
    assert_same_reading(text)


def test_round_trip_tree_is_built_on_demand_with_comments():
    text = "# head\neigenlang: 1  # version\nworkflow: w\n"
    src = load_source("w.yaml", text)
    assert src.plain == {"eigenlang": 1, "workflow": "w"} and not src._rt_loaded
    assert dump_yaml(src.data) == text  # comments kept, as the formatter needs
    ref = load_source("w.yaml", text, fast=False)
    for tree in (src.data, ref.data):  # after an edit, spans follow the edited tree
        tree.insert(0, "description", "d")
        del tree["workflow"]
    for p in [("description",), ("eigenlang",), ("workflow",), ("workflow", "x")]:
        assert src.span(p) == ref.span(p) and src.span(p, key=True) == ref.span(p, key=True)


def test_compiling_does_not_build_the_round_trip_tree(tmp_path: Path):
    f = tmp_path / "w.yaml"
    f.write_text("eigenlang: 1\nworkflow: w\n"
                 f"domain: {ROOT / 'tests' / 'fixtures' / 'mini'}\n"
                 "agents:\n  A: {worker: RandomPool}\n  B: {worker: UserIntent}\nflow: A -> B\n")
    parsed = parse_program(f)
    ir = resolve_workflow(parsed, allow=[ROOT / "tests" / "fixtures"])
    g = check_workflow(ir)
    lower(ir, g)
    assert not parsed.diags.errors, parsed.diags.render()
    assert not parsed.source._rt_loaded


FLOW_LINES = ["A -> B", "  A->B -> C  # note", "A", "A\t->\tB", "loopy -> B", "A -> whenever",
              "maxi -> untilx", "A -> B when x > 1", "A -> B -> C when ok", "loop A <-> B until ok max 3",
              "A -> ", "-> B", "A -> B C", "A -> 1B", "A - > B", "A -> B\r", "A -> é", "# only a comment",
              "A -> B # c -> D", "when -> A", "A -> loop", "_a -> b_9", "A->B->C->D->E"]


def test_flow_fast_path_reads_like_the_parser():
    rng = random.Random(5)
    origin = Origin("w.yaml", tuple((10 + i, 3) for i in range(60)))
    for _ in range(200):
        text = "\n".join(rng.choice(FLOW_LINES) for _ in range(rng.randint(1, 8)))
        assert parse_flow(text, origin) == parse_flow(text, origin, fast=False), text
