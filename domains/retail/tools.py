"""Tool implementations of the retail domain: τ²-bench's retail tools, call for call.

Each tool is `tool(ctx, **params)`: `ctx.db` is a copy-on-write view of the RetailDB,
`ctx.now` the fixed clock. Every tool does what τ²-bench's `RetailTools` (commit a2c0247)
does, in the same order and with the same error texts, so an agent sees the same answers and
the database ends the same: the environment checks the leading `requires:` of domain.yaml
(the checks τ²-bench makes before anything else, such as "Order not found"); this module
makes the rest, in τ²-bench's order. The few places where τ²-bench changes the database and
then raises keep those changes (`ToolError(..., keep_changes=True)`), as τ²-bench does.

τ²-bench's behaviour is followed where it looks like a bug (the quirks are listed in the
project's τ²-bench notes); each such place says so. What τ²-bench leaves to the agent's
judgement is not refused here: those are the `policy:` checks of domain.yaml.

Items are always read with item access (`order["items"]`), never attributes: `items` would
name the mapping method on a dict-like view.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from typing import Any, Callable

from runtime.env.errors import ToolError

# ---------------------------------------------------------------------------- lookups
# τ²-bench's private helpers, with their error texts.


def _order(ctx: Any, order_id: str) -> Any:
    order = ctx.db["orders"].get(order_id)
    if order is None:
        raise ToolError("Order not found")
    return order


def _user(ctx: Any, user_id: str) -> Any:
    user = ctx.db["users"].get(user_id)
    if user is None:
        raise ToolError("User not found")
    return user


def _payment_method(ctx: Any, user_id: str, payment_method_id: str, *, keep_changes: bool = False) -> Any:
    methods = _user(ctx, user_id)["payment_methods"]
    if payment_method_id not in methods:
        raise ToolError("Payment method not found", keep_changes=keep_changes)
    return methods[payment_method_id]


def _variant(ctx: Any, product_id: str, item_id: str) -> Any:
    product = ctx.db["products"].get(product_id)
    if product is None:
        raise ToolError("Product not found")
    variant = product["variants"].get(item_id)
    if variant is None:
        raise ToolError("Variant not found")
    return variant


def _is_gift_card(method: Any) -> bool:
    return method["source"] == "gift_card"


def _first_line(order: Any, item_id: str) -> Any:
    """The first order line with this item id (τ²-bench's `next(...)`), or None."""
    return next((line for line in order["items"] if line["item_id"] == item_id), None)


def _address(address1: str, address2: str, city: str, state: str, country: str,
             zip: str) -> dict[str, str]:
    return {"address1": address1, "address2": address2, "city": city,
            "country": country, "state": state, "zip": zip}


def _price_difference(ctx: Any, order: Any, item_ids: list[str], new_item_ids: list[str],
                      refuse_same_item: bool) -> tuple[float, Any]:
    """τ²-bench's pairing loop of modify/exchange: each new item must be an available variant
    of the product of the (first) order line with the old item id. Returns the unrounded sum
    of (new - old) prices and the last new variant (None for no pairs)."""
    diff: float = 0
    variant = None
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        if refuse_same_item and item_id == new_item_id:
            raise ToolError("The new item id should be different from the old item id")
        line = _first_line(order, item_id)
        if line is None:
            raise ToolError(f"Item {item_id} not found")
        variant = _variant(ctx, line["product_id"], new_item_id)
        if not variant["available"]:
            raise ToolError(f"New item {new_item_id} not found or available")
        diff += variant["price"] - line["price"]
    return diff, variant


def _check_counts(order: Any, item_ids: list[str], message: Callable[[str], str]) -> None:
    """No item id is listed more often than the order has lines with it."""
    ordered = [line["item_id"] for line in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > ordered.count(item_id):
            raise ToolError(message(item_id))


# ---------------------------------------------------------------------------- generic

_MAX_INT_BITS = 100_000  # an int result larger than this is refused (τ²-bench would compute on)
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _evaluate(node: ast.AST) -> Any:
    """Python's own arithmetic over a parsed expression of `0123456789+-*/(). ` (what τ²-bench
    `eval`s): ints, floats, `...` and `()` with Python's results and Python's errors. Nothing is
    ever executed; int powers and products too large to compute quickly are refused."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and _int(left) and _int(right) and right > 0 and abs(left) > 1 \
                and (right > _MAX_INT_BITS or right * math.log2(abs(left)) > _MAX_INT_BITS):
            raise ToolError("Result too large")
        value = _BINARY[type(node.op)](left, right)
        if _int(value) and value.bit_length() > _MAX_INT_BITS:
            raise ToolError("Result too large")
        return value
    if isinstance(node, ast.Call):  # `(1)(2)`, `6(*1)`, `6(**1)`: nothing here is callable
        func = _evaluate(node.func)
        for arg in node.args:
            value = _evaluate(arg.value if isinstance(arg, ast.Starred) else arg)
            if isinstance(arg, ast.Starred) and not isinstance(value, tuple):
                raise TypeError(f"{func!r} argument after * must be an iterable, not {type(value).__name__}")
        for keyword in node.keywords:  # only `**x` can be written without letters
            value = _evaluate(keyword.value)
            raise TypeError(f"{func!r} argument after ** must be a mapping, not {type(value).__name__}")
        raise TypeError(f"'{type(func).__name__}' object is not callable")
    raise ToolError(f"Unsupported expression: {type(node).__name__}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def calculate(ctx: Any, expression: str) -> str:
    """The value rounded to two decimals, as τ²-bench prints it (`2**3` gives `8.0`)."""
    if not all(char in "0123456789+-*/(). " for char in expression):
        raise ToolError("Invalid characters in expression")
    try:
        # eval() drops leading blanks before parsing; the file name is eval's
        tree = compile(expression.lstrip(" \t"), "<string>", "eval", ast.PyCF_ONLY_AST)
        return str(round(float(_evaluate(tree)), 2))
    except ToolError:
        raise
    except RecursionError:
        raise ToolError("Expression too deeply nested") from None
    except (SyntaxError, ArithmeticError, TypeError, ValueError) as exc:
        raise ToolError(str(exc)) from None


def transfer_to_human_agents(ctx: Any, summary: str) -> str:
    """Hand the conversation to a human agent (the summary travels with it)."""
    return "Transfer successful"


# ---------------------------------------------------------------------------- reads


def find_user_id_by_email(ctx: Any, email: str) -> str:
    for user_id, user in ctx.db["users"].items():
        if user["email"].lower() == email.lower():
            return user_id
    raise ToolError("User not found")


def find_user_id_by_name_zip(ctx: Any, first_name: str, last_name: str, zip: str) -> str:
    for user_id, user in ctx.db["users"].items():
        name = user["name"]
        if (name["first_name"].lower() == first_name.lower()
                and name["last_name"].lower() == last_name.lower()
                and user["address"]["zip"] == zip):
            return user_id
    raise ToolError("User not found")


def get_item_details(ctx: Any, item_id: str) -> Any:
    for product in ctx.db["products"].values():
        variant = product["variants"].get(item_id)
        if variant is not None:
            return variant
    raise ToolError("Item not found")


def list_all_product_types(ctx: Any) -> str:
    """JSON object from product name to product id, sorted by name."""
    by_name = {product["name"]: product["product_id"] for product in ctx.db["products"].values()}
    return json.dumps(by_name, sort_keys=True)


# ---------------------------------------------------------------------------- writes


def cancel_pending_order(ctx: Any, order_id: str, reason: str) -> Any:
    """Cancel a pending order (found, pending and a valid reason: `requires:`) and refund it.

    τ²-bench refunds *every* entry of the payment history, refunds included, each to its
    method (gift cards at once); after a payment change that refunds the old method twice.
    """
    order = _order(ctx, order_id)
    refunds = []
    for record in order["payment_history"]:
        refunds.append({"transaction_type": "refund", "amount": record["amount"],
                        "payment_method_id": record["payment_method_id"]})
        method = _payment_method(ctx, order["user_id"], record["payment_method_id"], keep_changes=True)
        if _is_gift_card(method):  # balances refunded before a later lookup fails stay refunded
            method["balance"] = round(method["balance"] + record["amount"], 2)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return order


def modify_pending_order_address(ctx: Any, order_id: str, address1: str, address2: str,
                                 city: str, state: str, country: str, zip: str) -> Any:
    order = _order(ctx, order_id)
    order["address"] = _address(address1, address2, city, state, country, zip)
    return order


def modify_pending_order_payment(ctx: Any, order_id: str, payment_method_id: str) -> Any:
    """Move the order's single payment to another method of the same user: charge the new
    one, refund the old one (gift-card balances follow)."""
    order = _order(ctx, order_id)
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    history = order["payment_history"]
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        raise ToolError("There should be exactly one payment for a pending order")
    old_id = history[0]["payment_method_id"]
    if old_id == payment_method_id:
        raise ToolError("The new payment method should be different from the current one")
    amount = history[0]["amount"]
    if _is_gift_card(method) and method["balance"] < amount:
        raise ToolError("Insufficient gift card balance to pay for the order")
    history.extend([
        {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
        {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id},
    ])
    if _is_gift_card(method):
        method["balance"] = round(method["balance"] - amount, 2)
    # τ²-bench looks the old method up only now: a missing one fails after the writes above
    old = _payment_method(ctx, order["user_id"], old_id, keep_changes=True)
    if _is_gift_card(old):
        old["balance"] = round(old["balance"] + amount, 2)
    return order


def modify_pending_order_items(ctx: Any, order_id: str, item_ids: list[str],
                               new_item_ids: list[str], payment_method_id: str) -> Any:
    """Swap items of a pending order for other variants of the same products, settling the
    price difference on `payment_method_id`; the order becomes 'pending (item modified)'.

    τ²-bench's quirks, kept: the difference is recorded unrounded (always, even 0, as a
    'refund' then), and every modified line gets the price and options of the *last* new
    variant (τ²-bench reuses its loop variable).
    """
    order = _order(ctx, order_id)
    _check_counts(order, item_ids, lambda item_id: f"{item_id} not found")
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match")
    diff, variant = _price_difference(ctx, order, item_ids, new_item_ids, refuse_same_item=True)
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    if _is_gift_card(method) and method["balance"] < diff:
        raise ToolError("Insufficient gift card balance to pay for the new item")
    order["payment_history"].append({
        "transaction_type": "payment" if diff > 0 else "refund",
        "amount": float(abs(diff)), "payment_method_id": payment_method_id})
    if _is_gift_card(method):
        method["balance"] = round(method["balance"] - diff, 2)
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        line = _first_line(order, item_id)
        if line is None:
            raise ToolError(f"Item {item_id} not found", keep_changes=True)
        line["item_id"] = new_item_id
        line["price"] = variant["price"]
        line["options"] = dict(variant["options"])
    order["status"] = "pending (item modified)"
    return order


def return_delivered_order_items(ctx: Any, order_id: str, item_ids: list[str],
                                 payment_method_id: str) -> Any:
    """Request the return of delivered items; the refund will go to `payment_method_id`."""
    order = _order(ctx, order_id)
    user = _user(ctx, order["user_id"])
    method = _payment_method(ctx, user["user_id"], payment_method_id)
    if not _is_gift_card(method) and payment_method_id != order["payment_history"][0]["payment_method_id"]:
        raise ToolError("Payment method should be the original payment method")
    _check_counts(order, item_ids, lambda item_id: "Some item not found")
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return order


def exchange_delivered_order_items(ctx: Any, order_id: str, item_ids: list[str],
                                   new_item_ids: list[str], payment_method_id: str) -> Any:
    """Request the exchange of delivered items for other variants of the same products;
    the price difference (rounded) will be settled on `payment_method_id`."""
    order = _order(ctx, order_id)
    _check_counts(order, item_ids, lambda item_id: f"Number of {item_id} not found.")
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match.")
    diff, _ = _price_difference(ctx, order, item_ids, new_item_ids, refuse_same_item=False)
    diff = round(diff, 2)
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    if _is_gift_card(method) and method["balance"] < diff:
        raise ToolError("Insufficient gift card balance to pay for the price difference")
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff  # an int 0 for no items, as τ²-bench stores it
    return order


def modify_user_address(ctx: Any, user_id: str, address1: str, address2: str, city: str,
                        state: str, country: str, zip: str) -> Any:
    user = _user(ctx, user_id)
    user["address"] = _address(address1, address2, city, state, country, zip)
    return user
