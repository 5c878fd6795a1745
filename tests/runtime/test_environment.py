"""Tool execution: error categories with the state unchanged, atomicity, ids, sync, loading."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from eigenlang.domain import ImplRef, load_domain
from runtime.env import Environment, ImplLoadError, State, StateLoadError, ToolResult

DOMAIN_YAML = """\
eigenlang: 1
domain: shop
description: A tiny shop with a phone, for environment tests.
policy: policy.md
now: "2024-05-15T15:00:00"
database:
  root: ShopDB
  models:
    ShopDB:
      orders: "dict[str, Order]"
      lines: "dict[str, Line]"
    Order:
      order_id: str
      status: "enum[pending, cancelled, delivered]"
      amount: float
      items: "list[str]"
      note: {type: "optional[str]", default: null}
    Line:
      online: bool
  generate: generate.py:build
user_database:
  root: Phone
  models:
    Phone:
      airplane_mode: bool
      line_id: str
  generate: generate.py:build_user
sync: tools.py:sync
tools:
  get_order:
    kind: read
    description: Look up an order.
    params:
      order_id: {type: str, description: The order id.}
    returns: Order
    impl: tools.py:get_order
    requires:
      - check: "order_id in db.orders"
        error: "order not found"
  cancel_order:
    kind: write
    description: Cancel a pending order.
    params:
      order_id: str
      reason: {type: 'enum["no longer needed", mistake]', default: "no longer needed"}
    returns: Order
    impl: tools.py:cancel_order
    requires:
      - check: "order_id in db.orders"
        error: "order not found"
      - check: "db.orders[order_id].status == 'pending'"
        error: "only pending orders can be cancelled"
  place_order:
    kind: write
    description: Place a new order.
    params:
      items: "list[str]"
      amount: float
    returns: Order
    impl: tools.py:place_order
  explode:
    kind: write
    description: Writes, then crashes.
    params: {order_id: str}
    impl: tools.py:explode
  bad_result:
    kind: read
    description: Returns something that is not JSON.
    params: {}
    impl: tools.py:bad_result
user_tools:
  toggle_airplane_mode:
    kind: write
    description: Switch airplane mode on or off.
    params: {on: bool}
    impl: tools.py:toggle_airplane_mode
"""

GENERATE_PY = """\
import random

def build(seed, size=1.0):
    rng = random.Random(seed)
    orders = {}
    for i in range(max(3, int(10 * size))):
        oid = f"O{i:03d}"
        orders[oid] = {"order_id": oid, "status": rng.choice(["pending", "delivered"]),
                       "amount": float(rng.randint(5, 50)), "items": [f"I{rng.randint(0, 9)}"], "note": None}
    orders["O000"]["status"] = "pending"
    orders["O001"]["status"] = "delivered"
    orders["O002"].update(status="pending", amount=5000.0)
    return {"orders": orders, "lines": {"L1": {"online": True}}}

def build_user(seed, size, db):
    return {"airplane_mode": False, "line_id": "L1"}
"""

TOOLS_PY = """\
from runtime.env.errors import ToolError

def get_order(ctx, order_id):
    return ctx.db.orders[order_id]

def cancel_order(ctx, order_id, reason):
    order = ctx.db.orders[order_id]
    order.note = reason  # written before the refusal below: must not stick
    if order.amount > 1000:
        raise ToolError("orders over 1000 need a human")
    order.status = "cancelled"
    return order

def place_order(ctx, items, amount):
    oid = ctx.new_id("O", 6)
    second = ctx.new_id("X", 4)
    ctx.db.orders[oid] = {"order_id": oid, "status": "pending", "amount": amount, "items": items,
                          "note": second}
    return ctx.db.orders[oid]

def explode(ctx, order_id):
    ctx.db.orders[order_id].status = "cancelled"
    del ctx.db.lines["L1"]
    return 1 / 0

def bad_result(ctx):
    return {1, 2}

def toggle_airplane_mode(ctx, on):
    ctx.user_db.airplane_mode = on
    return "Airplane mode is " + ("on" if on else "off")

def sync(ctx):
    line = ctx.db.lines[ctx.user_db.line_id]
    online = not ctx.user_db.airplane_mode
    if line.online != online:
        line.online = online
"""


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    (root / "domain.yaml").write_text(DOMAIN_YAML)
    (root / "policy.md").write_text("Be helpful.\n")
    (root / "generate.py").write_text(GENERATE_PY)
    (root / "tools.py").write_text(TOOLS_PY)
    spec, diags = load_domain(root)
    assert spec is not None, diags.render()
    return spec


@pytest.fixture
def env(domain):
    return Environment.from_domain(domain, seed=3, size=0.5)


def _unchanged(env: Environment, call) -> ToolResult:
    before_db, before_user = env.db.hash(), env.user_db.hash()
    result = call()
    assert env.db.hash() == before_db and env.user_db.hash() == before_user
    return result


# ---------------------------------------------------------------- error categories


@pytest.mark.parametrize("name, arguments, category, message", [
    ("get_ordr", {"order_id": "O000"}, "unknown_tool", "did you mean 'get_order'"),
    ("get_order", '{"order_id": ', "bad_json", "not valid JSON"),
    ("get_order", "[1, 2]", "bad_json", "must be a JSON object"),
    ("get_order", {"order_id": {1, 2}}, "bad_json", "not JSON data"),
    ("get_order", {"order_id": 7}, "schema", "7 is not of type 'string'"),
    ("get_order", {}, "schema", "'order_id' is a required property"),
    ("cancel_order", {"order_id": "O000", "reasn": "mistake"}, "schema", "did you mean 'reason'"),
    ("cancel_order", {"order_id": "O000", "reason": "bored"}, "schema", "is not one of"),
    ("get_order", {"order_id": "NOPE"}, "precondition", "order not found"),
    ("cancel_order", {"order_id": "O001"}, "precondition", "only pending orders can be cancelled"),
    ("cancel_order", {"order_id": "O002"}, "tool_error", "orders over 1000 need a human"),
    ("explode", {"order_id": "O000"}, "crash", "ZeroDivisionError"),
    ("bad_result", {}, "crash", "not JSON data"),
])
def test_failed_calls_are_error_results_and_change_nothing(env, name, arguments, category, message):
    result = _unchanged(env, lambda: env.call(name, arguments))
    assert not result.ok and result.error == category
    assert result.content.startswith("Error: ") and message in result.content
    assert env.stats.calls == 1 and env.stats.errors[category] == 1


def test_unknown_side_and_agent_tool_on_user_side(env):
    assert _unchanged(env, lambda: env.call("get_order", {"order_id": "O000"}, side="user")).error == "unknown_tool"
    assert _unchanged(env, lambda: env.call("get_order", {"order_id": "O000"}, side="robot")).error == "unknown_tool"


def test_precondition_evaluation_error_is_a_precondition_result(domain, env):
    bad = dataclasses.replace(domain.tools["cancel_order"].requires[1])
    from eigenlang.diagnostics import Origin
    from eigenlang.expr import parse_expr

    bad.expr, _ = parse_expr("db.orders[order_id].missing_field == 1", Origin("<t>", ((1, 1),)))
    tools = dict(domain.tools, cancel_order=dataclasses.replace(domain.tools["cancel_order"], requires=[bad]))
    broken = Environment(dataclasses.replace(domain, tools=tools), env.db, env.user_db)
    result = broken.call("cancel_order", {"order_id": "O000"})
    assert result.error == "precondition" and "missing_field" in result.content


# ---------------------------------------------------------------- successful calls


def test_success_commits_and_returns_json(env):
    before = env.db
    result = env.call("cancel_order", '{"order_id": "O000", "reason": "mistake"}')
    assert result.ok and result.error is None
    data = json.loads(result.content)
    assert data["status"] == "cancelled" and data["note"] == "mistake"
    assert list(data) == ["order_id", "status", "amount", "items", "note"]  # order as returned
    assert before.root.orders.O000.status == "pending"  # the old state is intact
    assert env.db.root.orders.O000.status == "cancelled"
    assert [c.path for c in before.diff(env.db)] == [("orders", "O000", "note"), ("orders", "O000", "status")]


def test_defaults_fill_missing_optional_parameters(env):
    assert env.call("cancel_order", {"order_id": "O000"}).ok
    assert env.db.root.orders.O000.note == "no longer needed"


def test_string_results_are_returned_verbatim_and_sync_runs_after_user_tools(env):
    result = env.call("toggle_airplane_mode", {"on": True}, side="user")
    assert result == ToolResult(True, "Airplane mode is on", None)
    assert env.user_db.root.airplane_mode is True
    assert env.db.root.lines.L1.online is False  # dual control: sync kept db consistent
    env.call("toggle_airplane_mode", '{"on": false}', side="user")
    assert env.db.root.lines.L1.online is True


def test_ids_are_deterministic_and_depend_on_state_and_arguments(env):
    a, b = env.fork(), env.fork()
    ra = json.loads(a.call("place_order", {"items": ["I1"], "amount": 5.0}).content)
    rb = json.loads(b.call("place_order", {"amount": 5.0, "items": ["I1"]}).content)
    assert ra == rb and re.fullmatch(r"O[0-9A-Z]{6}", ra["order_id"]) and re.fullmatch(r"X[0-9A-Z]{4}", ra["note"])
    assert a.hash() == b.hash() != env.hash()
    rc = json.loads(env.fork().call("place_order", {"items": ["I2"], "amount": 5.0}).content)
    assert rc["order_id"] != ra["order_id"]
    again = json.loads(a.call("place_order", {"items": ["I1"], "amount": 5.0}).content)
    assert again["order_id"] != ra["order_id"]  # the state changed, so the id does too


def test_forks_are_isolated_and_replay_collects_results(env):
    fork = env.fork()
    results = fork.replay([
        {"name": "cancel_order", "arguments": {"order_id": "O000"}},
        {"name": "get_order", "arguments": '{"order_id": "O000"}'},
        {"name": "nope", "arguments": {}},
        {"name": "toggle_airplane_mode", "arguments": {"on": True}, "side": "user"},
        {"arguments": {}},  # malformed actions are error results too
        "not an action",
    ])
    assert [r.ok for r in results] == [True, True, False, True, False, False]
    assert json.loads(results[1].content)["status"] == "cancelled"
    assert env.db.root.orders.O000.status == "pending" and env.user_db.root.airplane_mode is False
    assert fork.hash() != env.hash()
    assert fork.stats.calls == 6 and fork.stats.failed == 3 and env.stats.calls == 0


def test_tool_schemas_per_side(env):
    agent = env.tool_schemas("agent")
    assert [s["function"]["name"] for s in agent] == ["get_order", "cancel_order", "place_order", "explode",
                                                      "bad_result"]
    cancel = agent[1]["function"]["parameters"]
    assert cancel["required"] == ["order_id"] and "reason" in cancel["properties"]
    assert [s["function"]["name"] for s in env.tool_schemas("user")] == ["toggle_airplane_mode"]


def test_generation_is_deterministic(domain):
    a = Environment.from_domain(domain, seed=5, size=0.5)
    b = Environment.from_domain(domain, seed=5, size=0.5)
    c = Environment.from_domain(domain, seed=6, size=0.5)
    assert a.hash() == b.hash() != c.hash()


# ---------------------------------------------------------------- loading


def test_from_files_json_and_toml(domain, env, tmp_path):
    db_file = tmp_path / "db.json"
    db_file.write_text(json.dumps(env.db.to_json()))
    user_file = tmp_path / "phone.toml"
    user_file.write_text('airplane_mode = true\nline_id = "L1"\n')
    loaded = Environment.from_files(domain, db_file, user_file)
    assert loaded.db.hash() == env.db.hash() and loaded.user_db.root.airplane_mode is True


def test_from_files_errors_are_clear(domain, tmp_path):
    with pytest.raises(StateLoadError, match="cannot read"):
        Environment.from_files(domain, tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(StateLoadError, match="not valid JSON"):
        Environment.from_files(domain, broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"orders": {"O1": {"order_id": "O1", "status": "lost", "amount": 1.0,
                                                   "items": []}}, "lines": {}}))
    with pytest.raises(StateLoadError, match="does not match the schema") as info:
        Environment.from_files(domain, wrong)
    assert "orders.O1.status" in str(info.value)


def test_missing_implementation_fails_at_construction(domain, env, tmp_path):
    tool = domain.tools["get_order"]
    no_fn = dataclasses.replace(tool, impl=ImplRef(tool.impl.file, "get_ordr"))
    with pytest.raises(ImplLoadError, match="no function 'get_ordr'.*did you mean 'get_order'"):
        Environment(dataclasses.replace(domain, tools={"get_order": no_fn}), env.db)
    no_file = dataclasses.replace(tool, impl=ImplRef(tmp_path / "gone.py", "get_order"))
    with pytest.raises(ImplLoadError, match="not found"):
        Environment(dataclasses.replace(domain, tools={"get_order": no_file}), env.db)
    broken = tmp_path / "broken_tools.py"
    broken.write_text("def get_order(:\n")
    bad_file = dataclasses.replace(tool, impl=ImplRef(broken, "get_order"))
    with pytest.raises(ImplLoadError, match="SyntaxError"):
        Environment(dataclasses.replace(domain, tools={"get_order": bad_file}), env.db)


def test_duck_typed_domain_without_user_state():
    """The environment depends only on the DomainSpec attribute names."""
    tools_file = Path(__file__)
    tool = SimpleNamespace(
        name="echo", kind="read", description="", requires=[],
        params={"x": SimpleNamespace(required=True, default=None)},
        impl=SimpleNamespace(file=tools_file, function="_echo_impl"),
        params_json_schema=lambda: {"type": "object", "properties": {"x": {"type": "integer"}},
                                    "required": ["x"], "additionalProperties": False},
        openai_schema=lambda: {"type": "function", "function": {"name": "echo"}})
    fake = SimpleNamespace(name="fake", now="2024-01-01T00:00:00", tools={"echo": tool}, user_tools={},
                           sync=None, schema=None, user_schema=None, generate=None, generate_user=None)
    env = Environment(fake, State.from_json({"n": 0}))
    assert env.call("echo", {"x": 2}).content == '{"x": 2, "n": 1}'
    assert env.call("echo", {"x": "2"}).error == "schema"
    assert env.db.root.n == 1 and env.user_db is None


def _echo_impl(ctx, x):
    ctx.db.n += 1
    return {"x": x, "n": ctx.db.n}
