"""Canonical data (runtime/env/canonical.py): databases load as τ²-bench's pydantic models
hold them (defaults filled, declaration order, ints in float fields as floats) with located
errors; tool results print as τ²-bench prints them; `ToolError(keep_changes=True)`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from eigenlang.types import (BOOL, DATE, DATETIME, FLOAT, INT, NONE, STR, DictT, EnumT, Field, ListT, ModelT,
                             Schema, UnionT)
from runtime.env import Environment, State, ToolError
from runtime.env.canonical import CanonError, canon, tool_content


def schema() -> Schema:
    opt = lambda t, d=None: Field(UnionT((t, NONE)) if d is None else t, required=False, default=d)  # noqa: E731
    return Schema(root="DB", models={
        "DB": {"cards": Field(DictT(STR, ModelT("Card"))), "people": Field(ListT(ModelT("Person"))),
               "flags": opt(ModelT("Flags"), {"on": False, "level": 1})},
        "Person": {"name": Field(STR), "nick": opt(STR), "born": Field(DATE), "seen": opt(DATETIME),
                   "score": Field(FLOAT)},
        "Flags": {"on": Field(BOOL), "level": Field(INT)},
        "Gift": {"source": Field(EnumT(("gift",))), "id": Field(STR), "amount": Field(FLOAT)},
        "Credit": {"source": Field(EnumT(("credit",))), "id": Field(STR), "last_four": Field(STR)},
    }, aliases={"Card": UnionT((ModelT("Gift"), ModelT("Credit")))})


ROOT = ModelT("DB")


def test_load_fills_defaults_in_declaration_order_and_coerces():
    raw = {"people": [{"score": 3, "born": "1990-01-02", "name": "José", "seen": "2025-01-20T14:30:00"}],
           "cards": {"g1": {"amount": 10, "id": "g1", "source": "gift"}}}
    root = canon(schema()).load(json.dumps(raw).encode(), ROOT)
    data = State(root).to_json()
    assert list(data) == ["cards", "people", "flags"]
    assert data["flags"] == {"on": False, "level": 1}
    person = data["people"][0]
    assert list(person.items()) == [("name", "José"), ("nick", None), ("born", "1990-01-02"),
                                    ("seen", "2025-01-20 14:30:00"), ("score", 3.0)]  # str(datetime), as τ²-bench
    assert type(person["score"]) is float
    assert list(data["cards"]["g1"]) == ["source", "id", "amount"] and data["cards"]["g1"]["amount"] == 10.0
    # the same from Python data (a generator's output), and the state's nodes are fresh
    again = canon(schema()).load(raw, ROOT)
    assert State(again) == State(root) and again["flags"] is not root["flags"]


def test_load_errors_are_located_all_at_once():
    bad = {"people": [{"name": 5, "born": "soon", "score": True, "extra": 1}],
           "cards": {"c1": {"source": "credit", "id": "c1"}, "x": {"source": "paypal", "id": "x"}}}
    with pytest.raises(CanonError) as info:
        canon(schema()).load(json.dumps(bad), ROOT)
    text = str(info.value)
    for where in ("people[0].name: Input should be a valid string, got 5",
                  "people[0].born: Input should be an ISO date",
                  "people[0].score: Input should be a valid number, got True",
                  "people[0].extra: unknown field",
                  "cards.c1.last_four: required field is missing",  # the union's tag picked Credit
                  "cards.x: Input tag 'paypal'"):
        assert where in text, text
    with pytest.raises(CanonError) as info:
        canon(schema()).load(b'{"people": [}', ROOT)
    assert info.value.syntax and "line 1 column 13" in info.value.problems[0]


def test_tool_content_prints_like_tau2():
    s = schema()
    person = {"score": 2, "name": "Zoë", "born": "2000-01-01"}  # unordered, nick/seen unset
    text = tool_content(person, ModelT("Person"), s)
    assert text == ('{"name": "Zo\\u00eb", "nick": null, "born": "2000-01-01", "seen": null, "score": 2.0}')
    cards = [{"id": "c", "last_four": "1234", "source": "credit"}, {"amount": 5, "id": "g", "source": "gift"}]
    assert tool_content(cards, ListT(ModelT("Card")), s) == (
        '[{"source": "credit", "id": "c", "last_four": "1234"}, {"source": "gift", "id": "g", "amount": 5.0}]')
    # outside any model τ²-bench prints numbers and booleans as strings
    assert tool_content({"gb": 2.0, "ok": True, "n": None}, DictT(STR, UnionT((FLOAT, BOOL, NONE))), s) == \
        '{"gb": "2.0", "ok": "True", "n": null}'
    assert tool_content("as is", STR, s) == "as is" and tool_content(7, INT, s) == '"7"'
    assert tool_content({"x": 1}, ModelT("Flags"), s) == '{"x": 1}'  # not what it declares: plain JSON
    assert tool_content({"x": 1}, None, s) == '{"x": 1}'


def _keep(ctx, keep: bool):
    ctx.db["n"] = ctx.db["n"] + 1
    raise ToolError("half done", keep_changes=keep)


def test_tool_error_keeps_changes_only_when_asked(tmp_path):
    impl = tmp_path / "tools.py"
    impl.write_text("from runtime.env.errors import ToolError\n" + _source(_keep))
    tool = SimpleNamespace(name="bump", kind="write", description="", requires=[], policy=[], returns=None,
                           schema=None, params={"keep": SimpleNamespace(required=True, default=None)},
                           impl=SimpleNamespace(file=impl, function="_keep"))
    tool.params_json_schema = lambda: {"type": "object", "properties": {"keep": {"type": "boolean"}}}
    domain = SimpleNamespace(name="t", now="2024-01-01T00:00:00", tools={"bump": tool}, user_tools={},
                             sync=None, schema=None, user_schema=None)
    env = Environment(domain, State.from_json({"n": 0}))
    r = env.call("bump", {"keep": False})
    assert (r.ok, r.content, env.db.to_json()) == (False, "Error: half done", {"n": 0})
    r = env.call("bump", {"keep": True})
    assert (r.ok, r.content, env.db.to_json()) == (False, "Error: half done", {"n": 1})


def _source(fn) -> str:
    import inspect

    return inspect.getsource(fn)
