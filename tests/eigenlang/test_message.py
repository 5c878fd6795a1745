"""Message templates: `{param}` placeholders in `requires:` errors and `policy:` descriptions
(their diagnostics, E701/E702, are in tests/golden/domain_policy_errors.yaml)."""

from __future__ import annotations

import time

import pytest

from eigenlang.diagnostics import Origin
from eigenlang.message import MessageTemplate, Placeholder, check_message, parse_message
from eigenlang.types import STR, ListT, ModelT, Schema, parse_type

ORIGIN = Origin("d.yaml", ((7, 16),))


def template(text: str) -> MessageTemplate:
    t, diags = parse_message(text, ORIGIN)
    assert not diags, [d.render() for d in diags]
    return t


@pytest.mark.parametrize("text, values, out", [
    ("Reservation {reservation_id} not found", {"reservation_id": "NOPE00"}, "Reservation NOPE00 not found"),
    ("{a}{b}", {"a": 1, "b": 2.5}, "12.5"),
    ("flag {on}, none {x}, list {xs}", {"on": True, "x": None, "xs": [1, "a"]}, "flag True, none None, list [1, 'a']"),
    ("{item}", {"item": {"id": "I1", "n": 2}}, "{'id': 'I1', 'n': 2}"),  # Python's str() of a dict
    ("{item.id} / {items.1.id} / {item.nope} / {items.9}", {"item": {"id": "I1"}, "items": [{}, {"id": "I2"}]},
     "I1 / I2 / None / None"),
    ("{{literal}} {{{a}}} }}", {"a": "x"}, "{literal} {x} }"),
    ("no placeholders", {}, "no placeholders"),
])
def test_render_prints_values_like_python_str(text, values, out):
    assert template(text).render(values) == out


def test_an_argument_is_data_never_a_template():
    assert template("Order {order_id} not found").render({"order_id": "{order_id}{{x}}"}) == \
        "Order {order_id}{{x}} not found"


def test_matches_any_rendering_and_nothing_else():
    t = template("Order {order_id} is {status}, not {want}")
    assert t.matches(t.render({"order_id": "O1", "status": "shipped", "want": "pending"}))
    assert t.matches("Order  is , not ")
    assert not t.matches("Order O1 is shipped")
    assert not t.matches("The order O1 is shipped, not pending")
    assert MessageTemplate.literal("x {y}").matches("x {y}") and not MessageTemplate.literal("x").matches("xy")
    many = template("{a} x {b} y {c} z.")
    huge = " x  y " * 50_000 + "z"  # a hostile argument's worth of near misses: still linear
    start = time.process_time()  # CPU time: a loaded machine must not fail this; a backtracking matcher takes minutes
    assert not many.matches(huge) and many.matches(huge + ".")
    assert time.process_time() - start < 1.0


def test_placeholders_are_located_in_the_file():
    t = template("a\n  {x.y}")
    (ph,) = t.placeholders
    assert ph == Placeholder(("x", "y"), 3, 2)
    bad, diags = parse_message("Use {this one} or }", ORIGIN)
    assert [(d.code, d.span.line, d.span.col) for d in diags] == [("E702", 7, 20), ("E702", 7, 34)]
    assert bad.render({}) == "Use {this one} or }"  # what is not a placeholder stays text


def test_check_message_against_parameter_types():
    schema = Schema(root=None, models={}, aliases={})
    item_t, _ = parse_type("dict[str, int]", ORIGIN)
    params = {"order_id": STR, "item": item_t, "tags": ListT(STR), "order": ModelT("Missing")}
    ok = template("{order_id} {item.anything} {tags.0} {order.x}")  # unknown models are E203's
    assert check_message(ok, params, schema, ORIGIN) == []
    bad = template("{ordr_id} {order_id.x} {tags.first}")
    found = [(d.code, d.message) for d in check_message(bad, params, schema, ORIGIN)]
    assert found == [
        ("E701", "unknown placeholder {ordr_id}: the tool has no parameter 'ordr_id'"),
        ("E701", "unknown placeholder {order_id.x}: order_id is str: it has no 'x' to look up"),
        ("E701", "unknown placeholder {tags.first}: tags is list[str]: it has no 'first' to look up"),
    ]
