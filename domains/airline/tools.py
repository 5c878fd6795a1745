"""Tools of the airline domain: read the world, book, change and cancel reservations.

Each tool is `def tool(ctx, **params)`: `ctx.db` is a copy-on-write view of the `FlightDB`
state. The tools do exactly what τ²-bench's airline tools do (commit a2c0247), τ²-bench being
the ground truth of this domain: the same checks with the same error texts, the same writes,
and the same quirks (listed in docs/tau2.md), e.g. a cancellation refunds nothing to a gift
card and releases no seat, a flight change leaves the seat inventory alone, a second
cancellation appends the negation of every payment again. What τ²-bench leaves to the agent's
judgement (cancellation eligibility, basic-economy changes, bag removal, certificate
amounts) is not refused here: domain.yaml declares it as `policy:` checks, which let the call
run and record a violation on the trajectory.

Money: fares and payments are whole dollars (`int`), gift-card and certificate balances are
`float`, changed by plain float arithmetic (no rounding), as in τ²-bench.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from runtime.env.errors import ToolError
from runtime.env.nodes import plain as _plain  # a view (or plain data) as plain JSON data
from runtime.env.impls import load_sibling


data = load_sibling(__file__, "data")


# ------------------------------------------------------------------------------ helpers
def _whole(amount: Any) -> Any:
    """A payment amount as τ²-bench's `Payment(amount: int)` holds it: 348.0 becomes 348."""
    return int(amount) if isinstance(amount, float) and amount.is_integer() else amount


def _user(ctx: Any, user_id: str) -> Any:
    user = ctx.db.users.get(user_id)
    if user is None:
        raise ToolError(f"User {user_id} not found")
    return user


def _reservation(ctx: Any, reservation_id: str) -> Any:
    res = ctx.db.reservations.get(reservation_id)
    if res is None:
        raise ToolError(f"Reservation {reservation_id} not found")
    return res


def _flight(ctx: Any, flight_number: str) -> Any:
    flight = ctx.db.flights.get(flight_number)
    if flight is None:
        raise ToolError(f"Flight {flight_number} not found")
    return flight


def _flight_day(ctx: Any, flight_number: str, day: str) -> Any:
    """The flight's status record on `day`."""
    status = _flight(ctx, flight_number).dates.get(day)
    if status is None:
        raise ToolError(f"Flight {flight_number} not found on date {day}")
    return status


def _seats(status: Any, cabin: str) -> int:
    seats = status["available_seats"].get(cabin)
    if seats is None:  # τ²-bench indexes the dict: a KeyError, printed as the key's repr
        raise ToolError(repr(cabin))
    return seats


def _open_leg(ctx: Any, flight: Any, day: str, cabin: str, passengers: int) -> tuple[dict, Any]:
    """A new segment at today's fare and its status record, after τ²-bench's checks:
    the flight is for sale that day with enough seats in the cabin."""
    number = flight["flight_number"]
    status = _flight_day(ctx, number, day)
    if status["status"] != "available":
        raise ToolError(f"Flight {number} not available on date {day}")
    if _seats(status, cabin) < passengers:
        raise ToolError(f"Not enough seats on flight {number}")
    leg = {"flight_number": number, "origin": flight["origin"], "destination": flight["destination"],
           "date": day, "price": status["prices"][cabin]}
    return leg, status


def _payment_for_update(user: Any, payment_id: str, amount: int) -> dict | None:
    """Charge (or, negative, refund) a change to a credit card or gift card; a gift card's
    balance moves by the amount. The payment record, or None for a zero amount."""
    method = user.payment_methods.get(payment_id)
    if method is None:
        raise ToolError("Payment method not found")
    if method["source"] == "certificate":
        raise ToolError("Certificate cannot be used to update reservation")
    if method["source"] == "gift_card":
        if method["amount"] < amount:
            raise ToolError("Gift card balance is not enough")
        method["amount"] = method["amount"] - amount
    return {"payment_id": payment_id, "amount": amount} if amount != 0 else None


def _new_reservation_id(ctx: Any) -> str:
    """τ²-bench's ids: the first free of HATHAT, HATHAU, HATHAV (a task books at most three)."""
    for rid in data.NEW_RESERVATION_IDS:
        if rid not in ctx.db.reservations:
            return rid
    raise ToolError("Too many reservations")


def _passenger(p: Any) -> dict:
    return {"first_name": p["first_name"], "last_name": p["last_name"], "dob": p["dob"]}


# ------------------------------------------------------------------------------ read tools
def list_all_airports(ctx: Any) -> list[dict]:
    """τ²-bench's fixed airport list (whatever the database holds)."""
    return [{"iata": code, "city": city} for code, city in data.LISTED_AIRPORTS]


def _direct(ctx: Any, day: str, origin: str | None, destination: str | None,
            leave_after: str | None = None) -> list[dict]:
    """`DirectFlight`s for sale on `day`, in database order; `leave_after` compares the
    scheduled departure with a clock text, as text ('01:30:00+1' sorts before '05:00:00')."""
    out = []
    for flight in ctx.db.flights.values():
        if ((origin is not None and flight["origin"] != origin)
                or (destination is not None and flight["destination"] != destination)):
            continue  # cheap tests first: most flights end here, before their dates are read
        status = flight["dates"].get(day)
        if (status is not None and status["status"] == "available"
                and (leave_after is None or flight["scheduled_departure_time_est"] >= leave_after)):
            out.append({"flight_number": flight["flight_number"], "origin": flight["origin"],
                        "destination": flight["destination"], "status": "available",
                        "scheduled_departure_time_est": flight["scheduled_departure_time_est"],
                        "scheduled_arrival_time_est": flight["scheduled_arrival_time_est"], "date": None,
                        "available_seats": _plain(status["available_seats"]),
                        "prices": _plain(status["prices"])})
    return out


def search_direct_flight(ctx: Any, origin: str, destination: str, date: str) -> list[dict]:
    return _direct(ctx, date, origin, destination)  # `date` stays null in the results


def search_onestop_flight(ctx: Any, origin: str, destination: str, date: str) -> list[list[dict]]:
    """Pairs origin → X → destination where the second flight leaves X at or after the first
    one's scheduled arrival (text comparison); after an overnight first flight, the second
    is searched on 2024-05-(day + 1), unpadded, as τ²-bench builds that date."""
    out = []
    for first in _direct(ctx, date, origin, None):
        first["date"] = date
        day2 = date
        if "+1" in first["scheduled_arrival_time_est"]:
            try:
                day2 = f"2024-05-{int(date[-2:]) + 1}"
            except ValueError as exc:
                raise ToolError(str(exc)) from None
        for second in _direct(ctx, day2, first["destination"], destination, first["scheduled_arrival_time_est"]):
            second["date"] = day2
            out.append([first, second])
    return out


# ------------------------------------------------------------------------------ write tools
def book_reservation(ctx: Any, user_id: str, origin: str, destination: str, flight_type: str,
                     cabin: str, flights: list, passengers: list, payment_methods: list,
                     total_baggages: int, nonfree_baggages: int, insurance: str) -> Any:
    user = _user(ctx, user_id)
    rid = _new_reservation_id(ctx)
    n = len(passengers)
    legs, statuses, total = [], [], 0
    for f in flights:
        leg, status = _open_leg(ctx, _flight(ctx, f["flight_number"]), f["date"], cabin, n)
        legs.append(leg)
        statuses.append(status)
        total += leg["price"] * n
    if insurance == "yes":
        total += data.INSURANCE_FEE * n
    total += data.BAG_FEE * nonfree_baggages
    payments = [{"payment_id": p["payment_id"], "amount": _whole(p["amount"])} for p in payment_methods]
    for p in payments:
        method = user.payment_methods.get(p["payment_id"])
        if method is None:
            raise ToolError(f"Payment method {p['payment_id']} not found")
        if method["source"] in ("gift_card", "certificate") and method["amount"] < p["amount"]:
            raise ToolError(f"Not enough balance in payment method {p['payment_id']}")
    paid = sum(p["amount"] for p in payments)
    if paid != total:
        raise ToolError(f"Payment amount does not add up, total price is {total}, but paid {paid}")
    for p in payments:
        method = user.payment_methods.get(p["payment_id"])
        if method is None:  # a certificate listed twice: τ²-bench's second lookup fails mid-way
            raise ToolError(repr(p["payment_id"]), keep_changes=True)
        if method["source"] == "gift_card":
            method["amount"] = method["amount"] - p["amount"]
        elif method["source"] == "certificate":  # used whole, whatever the amount paid
            del user.payment_methods[p["payment_id"]]
    for status in statuses:
        status["available_seats"][cabin] = status["available_seats"][cabin] - n
    ctx.db.reservations[rid] = {
        "reservation_id": rid, "user_id": user_id, "origin": origin, "destination": destination,
        "flight_type": flight_type, "cabin": cabin, "flights": legs,
        "passengers": [_passenger(p) for p in passengers], "payment_history": payments,
        "created_at": ctx.now, "total_baggages": total_baggages, "nonfree_baggages": nonfree_baggages,
        "insurance": insurance, "status": None,
    }
    user.reservations.append(rid)
    return ctx.db.reservations[rid]


def cancel_reservation(ctx: Any, reservation_id: str) -> Any:
    """Append the negation of every payment so far (refunds included) and mark the
    reservation cancelled. No balance changes and no seat is released."""
    res = _reservation(ctx, reservation_id)
    res.payment_history.extend([{"payment_id": p["payment_id"], "amount": -p["amount"]}
                                for p in _plain(res.payment_history)])
    res["status"] = "cancelled"
    return res


def update_reservation_baggages(ctx: Any, reservation_id: str, total_baggages: int,
                                nonfree_baggages: int, payment_id: str) -> Any:
    """$50 per non-free bag added (none back for bags removed); the new counts as given."""
    res = _reservation(ctx, reservation_id)
    user = _user(ctx, res.user_id)
    payment = _payment_for_update(user, payment_id, data.BAG_FEE * max(0, nonfree_baggages - res.nonfree_baggages))
    if payment is not None:
        res.payment_history.append(payment)
    res["total_baggages"], res["nonfree_baggages"] = total_baggages, nonfree_baggages
    return res


def update_reservation_flights(ctx: Any, reservation_id: str, cabin: str, flights: list,
                               payment_id: str) -> Any:
    """The complete new flight list: a flight kept in the same cabin keeps its price, any
    other one costs today's fare; the difference for all passengers is charged (or refunded)
    on `payment_id`. Seat inventory is not touched."""
    res = _reservation(ctx, reservation_id)
    user = _user(ctx, res.user_id)
    n = len(res.passengers)
    old = _plain(res.flights)
    legs, total = [], 0
    for f in flights:
        kept = next((g for g in old if g["flight_number"] == f["flight_number"] and g["date"] == f["date"]
                     and cabin == res.cabin), None)
        leg = kept if kept is not None else _open_leg(ctx, _flight(ctx, f["flight_number"]), f["date"], cabin, n)[0]
        legs.append(leg)
        total += leg["price"] * n
    total -= sum(g["price"] for g in old) * n
    payment = _payment_for_update(user, payment_id, total)
    if payment is not None:
        res.payment_history.append(payment)
    res["flights"], res["cabin"] = legs, cabin
    return res


def update_reservation_passengers(ctx: Any, reservation_id: str, passengers: list) -> Any:
    res = _reservation(ctx, reservation_id)
    if len(passengers) != len(res.passengers):
        raise ToolError("Number of passengers does not match")
    res["passengers"] = [_passenger(p) for p in passengers]
    return res


def send_certificate(ctx: Any, user_id: str, amount: int) -> str:
    """A certificate of any amount, under the first free of τ²-bench's three ids."""
    user = _user(ctx, user_id)
    for cid in data.NEW_CERTIFICATE_IDS:
        if cid not in user.payment_methods:
            user.payment_methods[cid] = {"source": "certificate", "id": cid, "amount": float(amount)}
            return f"Certificate {cid} added to user {user_id} with amount {amount}."
    raise ToolError("Too many certificates")


# ------------------------------------------------------------------------------ generic tools
def transfer_to_human_agents(ctx: Any, summary: str) -> str:
    return "Transfer successful"


CALCULATOR_CHARS = frozenset("0123456789+-*/(). ")
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_POWER_BITS = 100_000  # a bigger power would not fit a float anyway (τ²-bench would hang)


def _arith(node: ast.AST) -> Any:
    """What Python's `eval` gives for the syntax tree of an expression over
    `0123456789+-*/(). `, computed without running code, with the errors `eval` raises."""
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant):
        return node.value  # an int, a float, or `...`
    if isinstance(node, ast.Tuple) and not node.elts:
        return ()
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _arith(node.operand)
        try:
            return _UNARY[type(node.op)](operand)
        except TypeError as exc:
            raise ToolError(str(exc)) from None
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _arith(node.left), _arith(node.right)
        if isinstance(node.op, ast.Pow) and _huge_power(left, right):
            raise ToolError("int too large to convert to float")
        try:
            return _BINARY[type(node.op)](left, right)
        except (ZeroDivisionError, TypeError, OverflowError) as exc:
            raise ToolError(str(exc)) from None
    if isinstance(node, ast.Call):
        raise ToolError(f"'{type(_arith(node.func)).__name__}' object is not callable")
    raise ToolError("invalid syntax (<string>, line 1)")


def _huge_power(base: Any, exponent: Any) -> bool:
    if type(base) is not int or type(exponent) is not int or exponent <= 0 or abs(base) <= 1:
        return False
    return exponent * abs(base).bit_length() > _MAX_POWER_BITS


def calculate(ctx: Any, expression: str) -> str:
    """τ²-bench's calculator: `str(round(float(eval(expression)), 2))` for an expression made
    of digits, + - * / ( ) . and spaces (so `2**3` is 8.0 and `7//2` is 3.0), with Python's
    own error texts; evaluated on the syntax tree, never by `eval`."""
    if not all(ch in CALCULATOR_CHARS for ch in expression):
        raise ToolError("Invalid characters in expression")
    try:
        tree = ast.parse(expression.lstrip(" "), "<string>", mode="eval")
    except SyntaxError as exc:
        raise ToolError(str(exc)) from None
    except (RecursionError, MemoryError):
        raise ToolError("too many nested parentheses (<string>, line 1)") from None
    try:
        value = _arith(tree)
    except RecursionError:
        raise ToolError("maximum recursion depth exceeded") from None
    try:
        return str(round(float(value), 2))
    except TypeError:
        raise ToolError(f"float() argument must be a string or a real number, not '{type(value).__name__}'") from None
    except OverflowError as exc:
        raise ToolError(str(exc)) from None
