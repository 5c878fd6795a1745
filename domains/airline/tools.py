"""Tools of the airline domain: read the world, book, change and cancel reservations.

Each tool is `def tool(ctx, **params)`: `ctx.db` is a copy-on-write view of the `FlightDB`
state, `ctx.now` the domain's fixed clock. The environment checks the parameter schema and
the `requires:` preconditions of domain.yaml before a call; the rules that need the
computation itself (prices, route shape, balances, eligibility) are checked here and refused
with `ToolError`, which leaves the state untouched (every call is atomic).

Money: fares and payments are whole dollars (`int`), gift-card and certificate balances are
`float` (they can hold cents). A payment is `{payment_id, amount}`; a refund is a payment with
a negative amount, and it goes back to the method that paid.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.env.errors import ToolError


def _sibling(name: str) -> ModuleType:
    """Import a module next to this file, whether or not the folder is a package."""
    if __package__:
        try:
            return importlib.import_module(f".{name}", __package__)
        except ImportError:
            pass
    spec = importlib.util.spec_from_file_location(f"_airline_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


data = _sibling("data")


# ------------------------------------------------------------------------------ helpers
def _plain(value: Any) -> Any:
    """Plain JSON-like data from a view (or from plain data)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _user(ctx: Any, user_id: str) -> Any:
    user = ctx.db.users.get(user_id)
    if user is None:
        raise ToolError(f"user {user_id} not found")
    return user


def _reservation(ctx: Any, reservation_id: str) -> Any:
    res = ctx.db.reservations.get(reservation_id)
    if res is None:
        raise ToolError(f"reservation {reservation_id} not found")
    return res


def _day_status(ctx: Any, flight_number: str, day: str) -> Any:
    """The status record of a flight on a date, or None when the flight does not fly then."""
    flight = ctx.db.flights.get(flight_number)
    return None if flight is None else flight.dates.get(day)


def _departed(ctx: Any, leg: Any) -> bool:
    """Has this segment left the ground? By its status; a date with no record counts as
    departed when it lies before today (history the database no longer holds)."""
    status = _day_status(ctx, leg["flight_number"], leg["date"])
    if status is None:
        return leg["date"] < ctx.now[:10]
    return status["status"] in data.DEPARTED_STATUSES


def _open_fare(ctx: Any, flight_number: str, day: str, cabin: str, seats: int) -> dict:
    """A new segment `{flight_number, origin, destination, date, price}` at today's fare,
    after checking the flight is for sale that day with `seats` free seats in `cabin`."""
    flight = ctx.db.flights.get(flight_number)
    if flight is None:
        raise ToolError(f"flight {flight_number} not found")
    status = flight.dates.get(day)
    if status is None:
        raise ToolError(f"flight {flight_number} does not fly on {day}")
    if status["status"] != "available":
        raise ToolError(f"flight {flight_number} on {day} is not open for booking (it is {status['status']})")
    left = status["available_seats"].get(cabin, 0)
    if left < seats:
        raise ToolError(f"flight {flight_number} on {day} has {left} {cabin} seat(s) left, {seats} needed")
    return {"flight_number": flight_number, "origin": flight.origin, "destination": flight.destination,
            "date": day, "price": status["prices"][cabin]}


def _move_seats(ctx: Any, legs: list, cabin: str, delta: int) -> None:
    """Take (delta < 0) or give back (delta > 0) seats on the segments still for sale."""
    for leg in legs:
        status = _day_status(ctx, leg["flight_number"], leg["date"])
        if status is not None and status["status"] == "available":
            seats = status["available_seats"]
            seats[cabin] = max(0, seats.get(cabin, 0) + delta)


def _check_route(origin: str, destination: str, flight_type: str, legs: list) -> None:
    """The segments must chain from `origin` to `destination` (and back, for a round trip)."""
    if not legs:
        raise ToolError("a reservation needs at least one flight")
    if legs[0]["origin"] != origin:
        raise ToolError(f"the first flight leaves from {legs[0]['origin']}, not from {origin}")
    for a, b in zip(legs, legs[1:]):
        if a["destination"] != b["origin"]:
            raise ToolError(f"flight {b['flight_number']} leaves from {b['origin']}, "
                            f"but the previous flight lands in {a['destination']}")
        if b["date"] < a["date"]:
            raise ToolError(f"flight {b['flight_number']} on {b['date']} is before the flight it follows")
    ends = [leg["destination"] for leg in legs]
    if flight_type == "one_way" and ends[-1] != destination:
        raise ToolError(f"a one-way trip must end in {destination}, these flights end in {ends[-1]}")
    if flight_type == "round_trip" and (ends[-1] != origin or destination not in ends[:-1]):
        raise ToolError(f"a round trip must go from {origin} to {destination} and back to {origin}")


def _free_bags(membership: str, cabin: str, passengers: int) -> int:
    return data.FREE_BAGS[membership][cabin] * passengers


def _pay(user: Any, payment_id: str, amount: float, allowed: tuple[str, ...]) -> None:
    """Charge `amount` (a refund when negative) to one of the user's payment methods.
    Gift cards keep a balance; a certificate pays once and is used up (any remainder is
    forfeited); a credit card is charged outside this database."""
    method = user.payment_methods.get(payment_id)
    if method is None:
        raise ToolError(f"payment method {payment_id} not found in the user's profile")
    source = method["source"]
    if source not in allowed:
        raise ToolError(f"a {source.replace('_', ' ')} cannot be used for this payment")
    if source in ("gift_card", "certificate") and amount > method["amount"] + 1e-9:
        raise ToolError(f"{payment_id} has a balance of {method['amount']}, not enough for {amount}")
    if source == "gift_card":
        method["amount"] = round(method["amount"] - amount, 2)
    elif source == "certificate":
        del user.payment_methods[payment_id]


def _refund(user: Any, payment_id: str, amount: float) -> None:
    """Money back to the method that paid: a gift card's balance grows, a used-up
    certificate is issued again for the refunded amount, a card is refunded by the bank."""
    method = user.payment_methods.get(payment_id)
    if method is not None and method["source"] in ("gift_card", "certificate"):
        method["amount"] = round(method["amount"] + amount, 2)
    elif method is None and payment_id.startswith("certificate"):
        user.payment_methods[payment_id] = {"source": "certificate", "id": payment_id, "amount": float(amount)}


def _hours_between(earlier: str, later: str) -> float:
    try:
        return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() / 3600
    except (TypeError, ValueError):
        raise ToolError(f"cannot read the booking time {earlier!r}") from None


def _fresh_id(ctx: Any, taken: Any, prefix: str, length: int) -> str:
    for _ in range(100):
        new = ctx.new_id(prefix, length)
        if new not in taken:
            return new
    raise ToolError("could not allocate a new id")


# ------------------------------------------------------------------------------ read tools
def get_user_details(ctx: Any, user_id: str) -> Any:
    return _user(ctx, user_id)


def get_reservation_details(ctx: Any, reservation_id: str) -> Any:
    return _reservation(ctx, reservation_id)


def list_all_airports(ctx: Any) -> list[dict]:
    codes: set[str] = set()
    for flight in ctx.db.flights.values():
        codes.update((flight["origin"], flight["destination"]))
    return [{"iata": c, "city": data.AIRPORT_CITY.get(c, c)} for c in sorted(codes)]


def _offer(flight: Any, day: str, status: Any) -> dict:
    """A `DirectFlight`: the flight's schedule with its seats and prices on `day`."""
    return {"flight_number": flight["flight_number"], "origin": flight["origin"],
            "destination": flight["destination"], "status": "available",
            "scheduled_departure_time_est": flight["scheduled_departure_time_est"],
            "scheduled_arrival_time_est": flight["scheduled_arrival_time_est"], "date": day,
            "available_seats": _plain(status["available_seats"]), "prices": _plain(status["prices"])}


def _for_sale(ctx: Any, origin: str, destination: str | None, day: str) -> list[dict]:
    out = []
    for flight in ctx.db.flights.values():
        if flight["origin"] != origin or (destination is not None and flight["destination"] != destination):
            continue
        status = flight["dates"].get(day)
        if status is not None and status["status"] == "available":
            out.append(_offer(flight, day, status))
    return out


def search_direct_flight(ctx: Any, origin: str, destination: str, date: str) -> list[dict]:
    return _for_sale(ctx, origin, destination, date)


def _clock(text: str) -> tuple[int, int]:
    """('HH:MM:SS' or 'HH:MM:SS+1') → (days after the departure date, minutes after midnight)."""
    clock, _, plus = text.partition("+")
    try:
        h, m, *_ = (int(x) for x in clock.split(":"))
        return (int(plus) if plus else 0), h * 60 + m
    except ValueError:
        raise ToolError(f"cannot read the time {text!r}") from None


def search_onestop_flight(ctx: Any, origin: str, destination: str, date: str) -> list[list[dict]]:
    """Pairs of flights origin → X → destination: the second leaves X after the first lands
    (on the next day when the first lands after midnight)."""
    out = []
    for first in _for_sale(ctx, origin, None, date):
        if first["destination"] == destination:
            continue
        days, landing = _clock(first["scheduled_arrival_time_est"])
        day2 = (datetime.fromisoformat(date) + timedelta(days=days)).date().isoformat()
        for second in _for_sale(ctx, first["destination"], destination, day2):
            if _clock(second["scheduled_departure_time_est"])[1] > landing:
                out.append([first, second])
    return out


def get_flight_status(ctx: Any, flight_number: str, date: str) -> str:
    status = _day_status(ctx, flight_number, date)
    if status is None:
        raise ToolError(f"flight {flight_number} does not fly on {date}")
    return status["status"]


# ------------------------------------------------------------------------------ write tools
def book_reservation(ctx: Any, user_id: str, origin: str, destination: str, flight_type: str,
                     cabin: str, flights: list, passengers: list, payment_methods: list,
                     total_baggages: int, nonfree_baggages: int, insurance: str) -> Any:
    user = _user(ctx, user_id)
    n = len(passengers)
    legs = [_open_fare(ctx, f["flight_number"], f["date"], cabin, n) for f in flights]
    _check_route(origin, destination, flight_type, legs)
    due_bags = max(0, total_baggages - _free_bags(user["membership"], cabin, n))
    if nonfree_baggages != due_bags:
        raise ToolError(f"{total_baggages} checked bag(s) for {n} passenger(s) in {cabin} with "
                        f"{user['membership']} membership means {due_bags} non-free bag(s), "
                        f"not {nonfree_baggages}")
    total = (n * sum(leg["price"] for leg in legs) + data.BAG_FEE * nonfree_baggages
             + (data.INSURANCE_FEE * n if insurance == "yes" else 0))
    paid = sum(p["amount"] for p in payment_methods)
    if paid != total:
        raise ToolError(f"the payments add up to {paid}, but the total price is {total}")
    if len({p["payment_id"] for p in payment_methods}) != len(payment_methods):
        raise ToolError("each payment method may appear only once")
    for p in payment_methods:
        _pay(user, p["payment_id"], p["amount"], ("credit_card", "gift_card", "certificate"))
    _move_seats(ctx, legs, cabin, -n)
    rid = _fresh_id(ctx, ctx.db.reservations, "", 6)
    ctx.db.reservations[rid] = {
        "reservation_id": rid, "user_id": user_id, "origin": origin, "destination": destination,
        "flight_type": flight_type, "cabin": cabin, "flights": legs, "passengers": _plain(passengers),
        "payment_history": [{"payment_id": p["payment_id"], "amount": p["amount"]} for p in payment_methods],
        "created_at": ctx.now, "total_baggages": total_baggages, "nonfree_baggages": nonfree_baggages,
        "insurance": insurance, "status": None,
    }
    user.reservations.append(rid)
    return ctx.db.reservations[rid]


def cancel_reservation(ctx: Any, reservation_id: str) -> Any:
    res = _reservation(ctx, reservation_id)
    if res.get("status") == "cancelled":
        raise ToolError("the reservation is already cancelled")
    if any(_departed(ctx, leg) for leg in res.flights):
        raise ToolError("a segment of this reservation has already flown; it cannot be cancelled")
    airline_cancelled = any((_day_status(ctx, leg["flight_number"], leg["date"]) or {}).get("status")
                            == "cancelled" for leg in res.flights)
    fresh = _hours_between(res.created_at, ctx.now) <= data.CANCEL_GRACE_HOURS
    if not (fresh or airline_cancelled or res.cabin == "business" or res.insurance == "yes"):
        raise ToolError("not eligible for cancellation: booked more than 24 hours ago, no flight "
                        "cancelled by the airline, not business class, and no travel insurance")
    user = _user(ctx, res.user_id)
    net: dict[str, float] = {}
    for p in res.payment_history:
        net[p["payment_id"]] = net.get(p["payment_id"], 0) + p["amount"]
    for payment_id, amount in net.items():
        if amount > 0:
            res.payment_history.append({"payment_id": payment_id, "amount": -amount})
            _refund(user, payment_id, amount)
    _move_seats(ctx, list(res.flights), res.cabin, len(res.passengers))
    res["status"] = "cancelled"
    return res


def update_reservation_baggages(ctx: Any, reservation_id: str, total_baggages: int,
                                nonfree_baggages: int, payment_id: str) -> Any:
    res = _reservation(ctx, reservation_id)
    user = _user(ctx, res.user_id)
    added, added_paid = total_baggages - res.total_baggages, nonfree_baggages - res.nonfree_baggages
    if added < 0 or added_paid < 0:
        raise ToolError("checked bags can be added, not removed")
    due_bags = max(0, total_baggages - _free_bags(user["membership"], res.cabin, len(res.passengers)))
    if nonfree_baggages != max(due_bags, res.nonfree_baggages) or added_paid > added:
        raise ToolError(f"{total_baggages} checked bag(s) on this reservation means "
                        f"{max(due_bags, res.nonfree_baggages)} non-free bag(s), not {nonfree_baggages}")
    fee = data.BAG_FEE * added_paid
    if fee:
        _pay(user, payment_id, fee, ("credit_card", "gift_card"))
        res.payment_history.append({"payment_id": payment_id, "amount": fee})
    res["total_baggages"], res["nonfree_baggages"] = total_baggages, nonfree_baggages
    return res


def update_reservation_flights(ctx: Any, reservation_id: str, cabin: str, flights: list,
                               payment_id: str) -> Any:
    res = _reservation(ctx, reservation_id)
    user = _user(ctx, res.user_id)
    n = len(res.passengers)
    old = {(leg["flight_number"], leg["date"]): _plain(leg) for leg in res.flights}
    new_keys = [(f["flight_number"], f["date"]) for f in flights]
    if res.cabin == "basic_economy" and sorted(new_keys) != sorted(old):
        raise ToolError("the flights of a basic economy reservation cannot be changed (only its cabin)")
    for key, leg in old.items():
        if _departed(ctx, leg) and (key not in new_keys or cabin != res.cabin):
            raise ToolError(f"flight {key[0]} on {key[1]} has already flown and cannot be changed")
    legs, taken = [], []
    for key in new_keys:
        if key in old and cabin == res.cabin:
            legs.append(old[key])  # unchanged segment: keeps the fare it was bought at
        else:
            leg = _open_fare(ctx, key[0], key[1], cabin, n)
            legs.append(leg)
            taken.append(leg)
    _check_route(res.origin, res.destination, res.flight_type, legs)
    diff = n * (sum(leg["price"] for leg in legs) - sum(leg["price"] for leg in old.values()))
    if diff > 0:
        _pay(user, payment_id, diff, ("credit_card", "gift_card"))
    elif diff < 0:
        method = user.payment_methods.get(payment_id)
        if method is None or method["source"] == "certificate":
            raise ToolError("a refund must go to a credit card or gift card of the user")
        _refund(user, payment_id, -diff)
    if diff:
        res.payment_history.append({"payment_id": payment_id, "amount": diff})
    released = [leg for key, leg in old.items() if key not in new_keys or cabin != res.cabin]
    _move_seats(ctx, released, res.cabin, n)
    _move_seats(ctx, taken, cabin, -n)
    res["flights"], res["cabin"] = legs, cabin
    return res


def update_reservation_passengers(ctx: Any, reservation_id: str, passengers: list) -> Any:
    res = _reservation(ctx, reservation_id)
    if len(passengers) != len(res.passengers):
        raise ToolError(f"the reservation has {len(res.passengers)} passenger(s); the number cannot change")
    res["passengers"] = _plain(passengers)
    return res


def send_certificate(ctx: Any, user_id: str, amount: int) -> str:
    user = _user(ctx, user_id)
    cid = _fresh_id(ctx, user.payment_methods, "certificate_", 7)
    user.payment_methods[cid] = {"source": "certificate", "id": cid, "amount": float(amount)}
    return f"Certificate {cid} worth {amount} added to user {user_id}."


# ------------------------------------------------------------------------------ generic tools
def transfer_to_human_agents(ctx: Any, summary: str) -> str:
    return "Transfer successful"


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPRESSION = 500


def _arith(node: ast.AST) -> float:
    """Value of an arithmetic syntax tree: numbers, + - * / // %, parentheses; nothing else
    (no names, calls or powers), so no input can run code or take long."""
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_arith(node.left), _arith(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_arith(node.operand))
    raise ToolError("only numbers, + - * / // %, and parentheses are allowed")


def calculate(ctx: Any, expression: str) -> str:
    if len(expression) > _MAX_EXPRESSION:
        raise ToolError("the expression is too long")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot read the expression {expression!r}") from None
    try:
        value = _arith(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except RecursionError:
        raise ToolError("the expression is too deeply nested") from None
    try:
        return str(round(float(value), 2))
    except OverflowError:
        raise ToolError("the result is too large") from None
