"""Tool implementations of the retail domain (τ²-bench names, parameters and semantics).

Each tool is `tool(ctx, **params)`: `ctx.db` is a copy-on-write view of the RetailDB,
`ctx.now` the fixed clock. The environment validates arguments against the declared schema
and checks the `requires:` preconditions of domain.yaml before calling; this module keeps
only the rules that need the computation itself (positional item pairing, price
differences, gift-card cover) and raises `ToolError` for them. Every call is atomic, so a
`ToolError` raised half-way leaves the state as it was.

Items are always read with item access (`order["items"]`), never attributes: `items` would
name the mapping method on a dict-like view.
"""

from __future__ import annotations

import ast
import json
import operator
from typing import Any, Callable

from runtime.env.errors import ToolError

PENDING = ("pending", "pending (item modified)")
_MAX_EXPRESSION = 300

# ---------------------------------------------------------------------------- lookups


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


def _payment_method(ctx: Any, user_id: str, payment_method_id: str) -> Any:
    method = _user(ctx, user_id)["payment_methods"].get(payment_method_id)
    if method is None:
        raise ToolError("Payment method not found")
    return method


def _adjust_gift_card(method: Any, delta: float) -> None:
    """Add `delta` (negative: a charge) to a gift card's balance, in cents precision."""
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] + delta, 2)


def _pair_items(ctx: Any, order: Any, item_ids: list[str],
                new_item_ids: list[str]) -> tuple[list[int], float]:
    """Match each old item id to a distinct line of the order and check its replacement.

    Returns the order-line indices (in the order of `item_ids`) and the price difference
    (new minus old). The i-th new item must be another available variant of the product
    of the i-th old item.
    """
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match")
    lines: list[int] = []
    diff = 0.0
    for old_id, new_id in zip(item_ids, new_item_ids):
        index = next((i for i, line in enumerate(order["items"])
                      if line["item_id"] == old_id and i not in lines), None)
        if index is None:
            raise ToolError(f"{old_id} not found")
        line = order["items"][index]
        variants = ctx.db["products"][line["product_id"]]["variants"]
        new = variants.get(new_id)
        if new is None or not new["available"]:
            raise ToolError(f"New item {new_id} not found or available")
        if new_id == old_id:
            raise ToolError(f"New item {new_id} is the same as the item it replaces")
        lines.append(index)
        diff += new["price"] - line["price"]
    return lines, round(diff, 2)


def _check_gift_card_cover(method: Any, amount: float) -> None:
    if method["source"] == "gift_card" and method["balance"] < amount:
        raise ToolError("Insufficient gift card balance to pay for the price difference")


def _address(address1: str, address2: str, city: str, state: str, country: str,
             zip: str) -> dict[str, str]:
    return {"address1": address1, "address2": address2, "city": city,
            "country": country, "state": state, "zip": zip}


# ---------------------------------------------------------------------------- generic


_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _arith(node: ast.AST) -> float:
    """Evaluate a parsed arithmetic tree: numbers, + - * /, unary signs, parentheses.
    Anything else (names, calls, powers, ...) is refused; nothing is ever executed."""
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_arith(node.left), _arith(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_arith(node.operand))
    raise ToolError("Invalid expression: only numbers, + - * / and parentheses are allowed")


def calculate(ctx: Any, expression: str) -> str:
    """Evaluate an arithmetic expression; the result is rounded to 2 decimals."""
    if len(expression) > _MAX_EXPRESSION:
        raise ToolError(f"Expression too long (at most {_MAX_EXPRESSION} characters)")
    if not expression.strip() or any(ch not in "0123456789+-*/(). " for ch in expression):
        raise ToolError("Invalid characters in expression")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ToolError("Invalid expression: it does not parse") from None
    try:
        return str(round(_arith(tree), 2))
    except ZeroDivisionError:
        raise ToolError("Division by zero") from None
    except OverflowError:
        raise ToolError("Result too large") from None


def transfer_to_human_agents(ctx: Any, summary: str) -> str:
    """Hand the conversation to a human agent (the summary travels with it)."""
    return "Transfer successful"


# ---------------------------------------------------------------------------- reads


def find_user_id_by_email(ctx: Any, email: str) -> str:
    wanted = email.strip().lower()
    for user_id, user in ctx.db["users"].items():
        if user["email"].lower() == wanted:
            return user_id
    raise ToolError("User not found")


def find_user_id_by_name_zip(ctx: Any, first_name: str, last_name: str, zip: str) -> str:
    first, last, wanted_zip = first_name.strip().lower(), last_name.strip().lower(), zip.strip()
    for user_id, user in ctx.db["users"].items():
        name = user["name"]
        if (name["first_name"].lower() == first and name["last_name"].lower() == last
                and user["address"]["zip"] == wanted_zip):
            return user_id
    raise ToolError("User not found")


def get_order_details(ctx: Any, order_id: str) -> Any:
    return _order(ctx, order_id)


def get_product_details(ctx: Any, product_id: str) -> Any:
    product = ctx.db["products"].get(product_id)
    if product is None:
        raise ToolError("Product not found")
    return product


def get_item_details(ctx: Any, item_id: str) -> Any:
    for product in ctx.db["products"].values():
        variant = product["variants"].get(item_id)
        if variant is not None:
            return variant
    raise ToolError("Item not found")


def get_user_details(ctx: Any, user_id: str) -> Any:
    return _user(ctx, user_id)


def list_all_product_types(ctx: Any) -> str:
    """JSON object from product name to product id, sorted by name."""
    by_name = {product["name"]: product_id for product_id, product in ctx.db["products"].items()}
    return json.dumps(dict(sorted(by_name.items())))


# ---------------------------------------------------------------------------- writes


def cancel_pending_order(ctx: Any, order_id: str, reason: str) -> Any:
    """Cancel a pending order and refund every payment to the method that made it."""
    order = _order(ctx, order_id)
    refunds = []
    for record in order["payment_history"]:
        if record["transaction_type"] != "payment":
            continue
        refunds.append({"transaction_type": "refund", "amount": record["amount"],
                        "payment_method_id": record["payment_method_id"]})
        method = ctx.db["users"][order["user_id"]]["payment_methods"].get(record["payment_method_id"])
        if method is not None:  # a payment method removed since then gets no balance update
            _adjust_gift_card(method, record["amount"])
    for refund in refunds:
        order["payment_history"].append(refund)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
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
    payment = order["payment_history"][0]
    amount, old_id = payment["amount"], payment["payment_method_id"]
    new_method = _payment_method(ctx, order["user_id"], payment_method_id)
    if new_method["source"] == "gift_card" and new_method["balance"] < amount:
        raise ToolError("Insufficient gift card balance to pay for the order")
    order["payment_history"].append({"transaction_type": "payment", "amount": amount,
                                     "payment_method_id": payment_method_id})
    order["payment_history"].append({"transaction_type": "refund", "amount": amount,
                                     "payment_method_id": old_id})
    _adjust_gift_card(new_method, -amount)
    old_method = ctx.db["users"][order["user_id"]]["payment_methods"].get(old_id)
    if old_method is not None:
        _adjust_gift_card(old_method, amount)
    return order


def modify_pending_order_items(ctx: Any, order_id: str, item_ids: list[str],
                               new_item_ids: list[str], payment_method_id: str) -> Any:
    """Swap items of a pending order for other variants of the same products, settling the
    price difference on `payment_method_id`. Allowed once: the order becomes
    'pending (item modified)'."""
    order = _order(ctx, order_id)
    lines, diff = _pair_items(ctx, order, item_ids, new_item_ids)
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    _check_gift_card_cover(method, diff)
    if diff != 0:
        order["payment_history"].append({
            "transaction_type": "payment" if diff > 0 else "refund",
            "amount": abs(diff), "payment_method_id": payment_method_id})
        _adjust_gift_card(method, -diff)
    for index, new_id in zip(lines, new_item_ids):
        line = order["items"][index]
        variant = ctx.db["products"][line["product_id"]]["variants"][new_id]
        line["item_id"] = new_id
        line["price"] = variant["price"]
        line["options"] = dict(variant["options"])
    order["status"] = "pending (item modified)"
    return order


def return_delivered_order_items(ctx: Any, order_id: str, item_ids: list[str],
                                 payment_method_id: str) -> Any:
    """Request the return of delivered items; the refund will go to `payment_method_id`."""
    order = _order(ctx, order_id)
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return order


def exchange_delivered_order_items(ctx: Any, order_id: str, item_ids: list[str],
                                   new_item_ids: list[str], payment_method_id: str) -> Any:
    """Request the exchange of delivered items for other variants of the same products;
    the price difference will be settled on `payment_method_id`."""
    order = _order(ctx, order_id)
    _, diff = _pair_items(ctx, order, item_ids, new_item_ids)
    _check_gift_card_cover(_payment_method(ctx, order["user_id"], payment_method_id), diff)
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff
    return order


def modify_user_address(ctx: Any, user_id: str, address1: str, address2: str, city: str,
                        state: str, country: str, zip: str) -> Any:
    user = _user(ctx, user_id)
    user["address"] = _address(address1, address2, city, state, country, zip)
    return user
