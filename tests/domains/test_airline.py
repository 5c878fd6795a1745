"""The airline domain: the program checks clean; every tool does what τ²-bench's does (its
error texts, its writes, its quirks) while what the policy forbids runs and is recorded as a
violation; the generator is deterministic and valid; a τ²-bench-shaped database loads with
its defaults filled. (Exact equality with τ²-bench on its own tasks: tests/tau2.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from eigenlang.domain import load_domain
from eigenlang.expr import compile_expr
from eigenlang.types import ModelT
from runtime.env import Environment, State, verifier_from_diff
from runtime.env.impls import load_module

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "domains" / "airline"
REFERENCE = Path("/work/shared/reference/tau2_interfaces.json")


@pytest.fixture(scope="module")
def spec():
    spec, diags = load_domain(DOMAIN)
    assert not diags, diags.render()
    return spec


# ------------------------------------------------------------------ a small world by hand
def _avail(business: int, economy: int, basic: int, prices: tuple[int, int, int]) -> dict:
    return {"status": "available",
            "available_seats": {"business": business, "economy": economy, "basic_economy": basic},
            "prices": dict(zip(("business", "economy", "basic_economy"), prices))}


LANDED = {"status": "landed", "actual_departure_time_est": "2024-05-10T08:02:00",
          "actual_arrival_time_est": "2024-05-10T10:01:00"}


def _flight(number: str, o: str, d: str, dep: str, arr: str, dates: dict) -> dict:
    return {"flight_number": number, "origin": o, "destination": d,
            "scheduled_departure_time_est": dep, "scheduled_arrival_time_est": arr, "dates": dates}


def _res(rid: str, user: str, legs: list, cabin: str = "economy", pax: int = 1, pay=None,
         created: str = "2024-05-01T10:00:00", insurance: str = "no", flight_type: str = "one_way",
         status=None, bags: tuple[int, int] = (0, 0)) -> dict:
    flights = [{"flight_number": n, "origin": o, "destination": d, "date": day, "price": p}
               for n, o, d, day, p in legs]
    people = [{"first_name": f"P{i}", "last_name": "Lee", "dob": "1990-01-01"} for i in range(pax)]
    total = pax * sum(f["price"] for f in flights)
    return {"reservation_id": rid, "user_id": user, "origin": flights[0]["origin"],
            "destination": flights[0]["destination"], "flight_type": flight_type, "cabin": cabin,
            "flights": flights, "passengers": people,
            "payment_history": pay or [{"payment_id": "credit_card_1", "amount": total}],
            "created_at": created, "total_baggages": bags[0], "nonfree_baggages": bags[1],
            "insurance": insurance, "status": status}


def _user(uid: str, membership: str, methods: dict) -> dict:
    return {"user_id": uid, "name": {"first_name": uid.split("_")[0].title(), "last_name": "Lee"},
            "address": {"address1": "1 Main Street", "address2": None, "city": "Boston",
                        "country": "USA", "state": "MA", "zip": "02101"},
            "email": f"{uid}@example.com", "dob": "1980-02-03", "payment_methods": methods,
            "saved_passengers": [], "membership": membership, "reservations": []}


def _card(pid: str) -> dict:
    return {"source": "credit_card", "id": pid, "brand": "visa", "last_four": "1234"}


def _money(source: str, pid: str, amount: float) -> dict:
    return {"source": source, "id": pid, "amount": amount}


def small_world() -> dict:
    flights = {
        "EGA001": _flight("EGA001", "JFK", "ORD", "08:00:00", "10:00:00", {
            "2024-05-10": LANDED, "2024-05-15": {"status": "cancelled"},
            "2024-05-20": _avail(5, 10, 2, (500, 200, 120)), "2024-05-21": _avail(5, 10, 2, (480, 220, 110))}),
        "EGA002": _flight("EGA002", "ORD", "JFK", "18:00:00", "21:00:00", {
            "2024-05-10": LANDED, "2024-05-20": _avail(4, 9, 3, (450, 190, 100)),
            "2024-05-15": {"status": "flying", "actual_departure_time_est": "2024-05-15T14:10:00",
                           "estimated_arrival_time_est": "2024-05-15T17:00:00"}}),
        "EGA003": _flight("EGA003", "ORD", "LAX", "12:00:00", "14:30:00", {
            "2024-05-20": _avail(3, 8, 4, (600, 150, 90))}),
        "EGA004": _flight("EGA004", "JFK", "LAX", "09:00:00", "12:00:00", {
            "2024-05-20": _avail(2, 7, 1, (900, 300, 200)),
            "2024-05-16": {"status": "on time", "estimated_departure_time_est": "2024-05-16T09:00:00",
                           "estimated_arrival_time_est": "2024-05-16T12:00:00"}}),
        "EGA005": _flight("EGA005", "ORD", "LAX", "10:00:00", "12:30:00", {
            "2024-05-20": _avail(3, 8, 4, (610, 160, 95))}),
        "EGA006": _flight("EGA006", "LAX", "JFK", "22:00:00", "06:00:00+1", {
            "2024-05-20": _avail(3, 8, 4, (700, 250, 130))}),
    }
    j_o_20 = ("EGA001", "JFK", "ORD", "2024-05-20", 190)
    reservations = {
        "RFRESH": _res("RFRESH", "ana_lee_1001", [j_o_20], created="2024-05-15T10:00:00"),
        "ROLD01": _res("ROLD01", "ana_lee_1001", [j_o_20], pax=2,
                       pay=[{"payment_id": "gift_card_1", "amount": 380}]),
        "RINSUR": _res("RINSUR", "ana_lee_1001", [("EGA004", "JFK", "LAX", "2024-05-20", 300)],
                       insurance="yes", pay=[{"payment_id": "gift_card_2", "amount": 100},
                                             {"payment_id": "certificate_9", "amount": 200}]),
        "RFLOWN": _res("RFLOWN", "ana_lee_1001", [("EGA001", "JFK", "ORD", "2024-05-10", 400),
                                                  ("EGA002", "ORD", "JFK", "2024-05-20", 450)],
                       cabin="business", flight_type="round_trip"),
        "RBASIC": _res("RBASIC", "ana_lee_1001", [("EGA001", "JFK", "ORD", "2024-05-20", 100)],
                       cabin="basic_economy"),
        "RCANCD": _res("RCANCD", "ana_lee_1001", [j_o_20], status="cancelled"),
        "RAIRCX": _res("RAIRCX", "ben_ng_2002", [("EGA001", "JFK", "ORD", "2024-05-15", 210)],
                       pay=[{"payment_id": "credit_card_3", "amount": 210}]),
        "RCAT01": _res("RCAT01", "cat_o_3003", [j_o_20], pay=[{"payment_id": "credit_card_4", "amount": 190}]),
    }
    ana = {"credit_card_1": _card("credit_card_1"), "credit_card_2": _card("credit_card_2"),
           "gift_card_1": _money("gift_card", "gift_card_1", 300.0),
           "gift_card_2": _money("gift_card", "gift_card_2", 50.0),
           "gift_card_3": _money("gift_card", "gift_card_3", 50.0),
           "gift_card_4": _money("gift_card", "gift_card_4", 50.0),
           "certificate_1": _money("certificate", "certificate_1", 250.0),
           "certificate_2": _money("certificate", "certificate_2", 100.0)}
    users = {"ana_lee_1001": _user("ana_lee_1001", "regular", ana),
             "ben_ng_2002": _user("ben_ng_2002", "gold", {"credit_card_3": _card("credit_card_3")}),
             "cat_o_3003": _user("cat_o_3003", "regular", {"credit_card_4": _card("credit_card_4")})}
    for rid, r in reservations.items():
        users[r["user_id"]]["reservations"].append(rid)
    return {"flights": flights, "users": users, "reservations": reservations}


@pytest.fixture
def env(spec):
    return Environment(spec, State.from_json(small_world()))


def ok(env, name, **args):
    r = env.call(name, args)
    assert r.ok, r.content
    return json.loads(r.content) if r.content[:1] in "[{" else r.content


def refused(env, name, fragment, **args):
    before = env.hash()
    r = env.call(name, args)
    assert not r.ok, f"{name} should have been refused: {r.content}"
    assert fragment in r.content, r.content
    assert env.hash() == before, "a refused call changed the state"


def violations(env, name, **args) -> list[str]:
    """The policy rules a call broke; the call itself must have run (on a fork)."""
    r = env.fork().call(name, args)
    assert r.ok, r.content
    return [v.rule for v in r.violations]


def db(env):
    return env.db.to_json()


# ------------------------------------------------------------------ the program
def test_program_checks_clean_and_matches_reference_names(spec):
    assert spec.now == "2024-05-15T15:00:00"
    assert list(spec.tools) == [t["name"] for t in TAU2_TOOLS]
    for t in TAU2_TOOLS:
        tool = spec.tools[t["name"]]
        assert tool.kind == t["kind"] and list(tool.params) == t["params"], t["name"]
        assert tool.openai_schema()["function"]["parameters"]["type"] == "object"
    for model, fields in TAU2_MODELS.items():
        assert list(spec.schema.models[model]) == list(fields), model
    assert set(spec.rules) >= {"confirm_before_write", "transfer_ends_the_work"}


def test_reference_copy_is_current():
    if not REFERENCE.is_file():
        pytest.skip("τ²-bench interface reference not present")
    ref = json.loads(REFERENCE.read_text())["domains"]["airline"]
    assert [(t["name"], t["kind"], [p["name"] for p in t["params"]]) for t in ref["tools"]] == \
        [(t["name"], t["kind"], t["params"]) for t in TAU2_TOOLS]
    assert {m: v["fields"] for m, v in ref["db"]["models"].items()} == TAU2_MODELS


# ------------------------------------------------------------------ read and generic tools
def test_reads(env):
    assert ok(env, "get_user_details", user_id="ben_ng_2002")["membership"] == "gold"
    assert ok(env, "get_reservation_details", reservation_id="RBASIC")["cabin"] == "basic_economy"
    refused(env, "get_user_details", "User nobody not found", user_id="nobody")
    refused(env, "get_reservation_details", "Reservation XXXXXX not found", reservation_id="XXXXXX")
    airports = ok(env, "list_all_airports")  # τ²-bench's fixed list, whatever the database holds
    assert len(airports) == 20 and airports[:2] == [{"iata": "SFO", "city": "San Francisco"},
                                                    {"iata": "JFK", "city": "New York"}]
    assert {"iata": "LGA", "city": "LaGuardia"} in airports and {"iata": "DFW", "city": "Dallas"} in airports


def test_outputs_print_like_tau2(env):
    """Fields in τ²-bench's declaration order, optional ones as null, ASCII escapes."""
    text = env.call("get_user_details", {"user_id": "ana_lee_1001"}).content
    assert text.startswith('{"user_id": "ana_lee_1001", "name": {"first_name": "Ana", "last_name": "Lee"}, '
                           '"address": {"address1": "1 Main Street", "address2": null, "city": "Boston"')
    assert '"credit_card_1": {"source": "credit_card", "id": "credit_card_1", "brand": "visa"' in text
    assert '"gift_card_1": {"source": "gift_card", "id": "gift_card_1", "amount": 300.0}' in text
    res = env.call("get_reservation_details", {"reservation_id": "RFRESH"}).content
    assert res.endswith('"insurance": "no", "status": null}')
    assert '{"flight_number": "EGA001", "origin": "JFK", "destination": "ORD", "date": "2024-05-20"' in res


def test_searches(env):
    direct = ok(env, "search_direct_flight", origin="JFK", destination="ORD", date="2024-05-20")
    assert [f["flight_number"] for f in direct] == ["EGA001"]
    assert direct[0]["prices"]["economy"] == 200 and direct[0]["available_seats"]["business"] == 5
    assert direct[0]["date"] is None  # τ²-bench leaves the date unset in direct results
    assert ok(env, "search_direct_flight", origin="JFK", destination="ORD", date="2024-05-15") == []
    pairs = ok(env, "search_onestop_flight", origin="JFK", destination="LAX", date="2024-05-20")
    # EGA005 leaves ORD at 10:00, the minute EGA001 lands: a connection for τ²-bench
    assert [[f["flight_number"] for f in p] for p in pairs] == [["EGA001", "EGA003"], ["EGA001", "EGA005"]]
    assert {f["date"] for p in pairs for f in p} == {"2024-05-20"}
    night = ok(env, "search_onestop_flight", origin="LAX", destination="ORD", date="2024-05-20")
    assert [[(f["flight_number"], f["date"]) for f in p] for p in night] == \
        [[("EGA006", "2024-05-20"), ("EGA001", "2024-05-21")]]  # overnight: the next day's flight


def test_flight_status(env):
    assert ok(env, "get_flight_status", flight_number="EGA002", date="2024-05-15") == "flying"
    assert ok(env, "get_flight_status", flight_number="EGA004", date="2024-05-16") == "on time"
    refused(env, "get_flight_status", "Flight EGA999 not found", flight_number="EGA999", date="2024-05-15")
    refused(env, "get_flight_status", "Flight EGA003 not found on date 2024-05-15", flight_number="EGA003",
            date="2024-05-15")


def test_calculate_and_transfer(env):
    assert ok(env, "calculate", expression="2 * (345 + 129) / 4 - 0.5") == "236.5"
    assert ok(env, "calculate", expression="2**3") == "8.0" and ok(env, "calculate", expression="7//2") == "3.0"
    for bad, why in [("__import__('os')", "Invalid characters in expression"), ("1 / 0", "division by zero"),
                     ("1 +", "invalid syntax (<string>, line 1)"), ("(1", "'(' was never closed"),
                     ("()", "not 'tuple'"), ("9**9**9**9", "int too large to convert to float")]:
        refused(env, "calculate", why, expression=bad)
    assert ok(env, "transfer_to_human_agents", summary="wants a refund for a flown trip") == "Transfer successful"


def test_send_certificate_any_amount_with_tau2_ids(env):
    text = ok(env, "send_certificate", user_id="ben_ng_2002", amount=100)
    assert text == "Certificate certificate_3221322 added to user ben_ng_2002 with amount 100."
    methods = db(env)["users"]["ben_ng_2002"]["payment_methods"]
    assert methods["certificate_3221322"] == {"source": "certificate", "id": "certificate_3221322", "amount": 100.0}
    assert violations(env, "send_certificate", user_id="ben_ng_2002", amount=30) == ["certificate_amount"]
    assert violations(env, "send_certificate", user_id="cat_o_3003", amount=50) == ["compensation_eligibility"]
    ok(env, "send_certificate", user_id="ben_ng_2002", amount=-5)  # any amount: the tool checks none
    ok(env, "send_certificate", user_id="ben_ng_2002", amount=50)
    refused(env, "send_certificate", "Too many certificates", user_id="ben_ng_2002", amount=50)
    refused(env, "send_certificate", "User nobody not found", user_id="nobody", amount=50)


# ------------------------------------------------------------------ booking
def _booking(**over) -> dict:
    args = {"user_id": "ana_lee_1001", "origin": "JFK", "destination": "LAX", "flight_type": "one_way",
            "cabin": "economy",
            "flights": [{"flight_number": "EGA001", "date": "2024-05-20"},
                        {"flight_number": "EGA003", "date": "2024-05-20"}],
            "passengers": [{"first_name": "Ana", "last_name": "Lee", "dob": "1980-02-03"},
                           {"first_name": "Bo", "last_name": "Lee", "dob": "2010-07-08"}],
            # 2 x (200 + 150) + 2 x 30 insurance + 1 non-free bag x 50 = 810
            "payment_methods": [{"payment_id": "certificate_1", "amount": 200},
                                {"payment_id": "gift_card_1", "amount": 300},
                                {"payment_id": "credit_card_1", "amount": 310}],
            "total_baggages": 3, "nonfree_baggages": 1, "insurance": "yes"}
    args.update(over)
    return args


def test_book_reservation(env):
    res = ok(env, "book_reservation", **_booking())
    state = db(env)
    assert res["reservation_id"] == "HATHAT" and state["reservations"]["HATHAT"] == res
    assert res["created_at"] == "2024-05-15T15:00:00" and res["status"] is None
    assert [f["price"] for f in res["flights"]] == [200, 150]
    ana = state["users"]["ana_lee_1001"]
    assert ana["reservations"][-1] == "HATHAT"
    assert "certificate_1" not in ana["payment_methods"]  # used whole, 50 of its 250 forfeited
    assert ana["payment_methods"]["gift_card_1"]["amount"] == 0.0
    assert state["flights"]["EGA001"]["dates"]["2024-05-20"]["available_seats"]["economy"] == 8
    assert state["flights"]["EGA003"]["dates"]["2024-05-20"]["available_seats"]["economy"] == 6
    small = _booking(flights=[{"flight_number": "EGA001", "date": "2024-05-20"}], destination="ORD",
                     passengers=_booking()["passengers"][:1], insurance="no", total_baggages=0,
                     nonfree_baggages=0, payment_methods=_pay(("credit_card_2", 200)))
    assert ok(env, "book_reservation", **small)["reservation_id"] == "HATHAU"
    assert ok(env, "book_reservation", **small)["reservation_id"] == "HATHAV"
    refused(env, "book_reservation", "Too many reservations", **small)


def _pay(*pairs) -> list[dict]:
    return [{"payment_id": p, "amount": a} for p, a in pairs]


BOOKING_ERRORS = [  # what τ²-bench's tool refuses, in its words
    ({"user_id": "nobody"}, "User nobody not found"),
    ({"flights": [{"flight_number": "EGA999", "date": "2024-05-20"}]}, "Flight EGA999 not found"),
    ({"flights": [{"flight_number": "EGA003", "date": "2024-05-21"}]}, "Flight EGA003 not found on date 2024-05-21"),
    ({"flights": [{"flight_number": "EGA001", "date": "2024-05-15"}]}, "Flight EGA001 not available on date 2024-05-15"),
    ({"cabin": "basic_economy", "passengers": [{"first_name": "X", "last_name": "Y", "dob": "2000-01-01"}] * 3},
     "Not enough seats on flight EGA001"),
    ({"payment_methods": _pay(("credit_card_9", 810))}, "Payment method credit_card_9 not found"),
    ({"payment_methods": _pay(("gift_card_2", 60), ("credit_card_1", 750))},
     "Not enough balance in payment method gift_card_2"),
    ({"payment_methods": _pay(("credit_card_1", 800))}, "Payment amount does not add up, total price is 810, but paid 800"),
]


@pytest.mark.parametrize("over, why", BOOKING_ERRORS)
def test_book_reservation_errors(env, over, why):
    refused(env, "book_reservation", why, **_booking(**over))


BOOKING_POLICY = [  # what τ²-bench leaves to the agent: the booking goes through, judged
    ({"passengers": [{"first_name": "X", "last_name": "Y", "dob": "2000-01-01"}] * 6, "nonfree_baggages": 0,
      "payment_methods": _pay(("credit_card_1", 6 * 380))}, "passenger_limit"),
    ({"payment_methods": _pay(("credit_card_1", 400), ("credit_card_2", 410))}, "payment_method_limit"),
    ({"payment_methods": _pay(("gift_card_2", 50), ("gift_card_3", 50), ("gift_card_4", 50),
                              ("gift_card_1", 10), ("credit_card_1", 650))}, "payment_method_limit"),
    ({"nonfree_baggages": 0, "payment_methods": _pay(("credit_card_1", 760))}, "free_baggage_allowance"),
    ({"flight_type": "round_trip"}, "route_matches_trip"),
    ({"flights": [{"flight_number": "EGA003", "date": "2024-05-20"}, {"flight_number": "EGA001", "date": "2024-05-20"}]},
     "route_matches_trip"),
]


@pytest.mark.parametrize("over, rule", BOOKING_POLICY)
def test_book_reservation_policy(env, over, rule):
    assert violations(env, "book_reservation", **_booking(**over)) == [rule]


def test_a_policy_following_booking_has_no_violation(env):
    assert violations(env, "book_reservation", **_booking()) == []


# ------------------------------------------------------------------ cancelling
def test_cancel_refunds_each_payment_and_releases_nothing(env):
    res = ok(env, "cancel_reservation", reservation_id="RINSUR")
    assert res["status"] == "cancelled"
    assert res["payment_history"] == _pay(("gift_card_2", 100), ("certificate_9", 200),
                                          ("gift_card_2", -100), ("certificate_9", -200))
    state = db(env)
    assert state["users"]["ana_lee_1001"]["payment_methods"]["gift_card_2"]["amount"] == 50.0  # balances untouched
    assert "certificate_9" not in state["users"]["ana_lee_1001"]["payment_methods"]
    assert state["flights"]["EGA004"]["dates"]["2024-05-20"]["available_seats"]["economy"] == 7


def test_cancelling_twice_negates_every_entry_again(env):
    ok(env, "cancel_reservation", reservation_id="RFRESH")
    twice = ok(env, "cancel_reservation", reservation_id="RFRESH")
    assert [p["amount"] for p in twice["payment_history"]] == [190, -190, -190, 190]


@pytest.mark.parametrize("rid, rules", [
    ("RFRESH", []), ("RAIRCX", []), ("RINSUR", []),   # booked today, airline-cancelled flight, insured
    ("ROLD01", ["cancel_eligibility"]),
    ("RCANCD", ["not_cancelled_yet", "cancel_eligibility"]),
    ("RFLOWN", ["nothing_flown"]),                      # business, but a flight has flown
])
def test_cancel_policy(env, rid, rules):
    assert violations(env, "cancel_reservation", reservation_id=rid) == rules


def test_cancel_unknown_reservation(env):
    refused(env, "cancel_reservation", "Reservation XXXXXX not found", reservation_id="XXXXXX")


# ------------------------------------------------------------------ bags
def test_add_bags(env):
    # regular member, economy, 2 passengers: 2 free bags; 4 bags -> 2 non-free -> $100
    res = ok(env, "update_reservation_baggages", reservation_id="ROLD01", total_baggages=4,
             nonfree_baggages=2, payment_id="gift_card_1")
    assert (res["total_baggages"], res["nonfree_baggages"]) == (4, 2)
    assert res["payment_history"][-1] == {"payment_id": "gift_card_1", "amount": 100}
    assert db(env)["users"]["ana_lee_1001"]["payment_methods"]["gift_card_1"]["amount"] == 200.0
    free = ok(env, "update_reservation_baggages", reservation_id="RFRESH", total_baggages=1,
              nonfree_baggages=0, payment_id="credit_card_1")
    assert len(free["payment_history"]) == 1  # a free bag charges nothing


@pytest.mark.parametrize("args, why", [
    ({"reservation_id": "XXXXXX"}, "Reservation XXXXXX not found"),
    ({"payment_id": "credit_card_9"}, "Payment method not found"),
    ({"payment_id": "certificate_1"}, "Certificate cannot be used to update reservation"),
    ({"payment_id": "gift_card_2", "nonfree_baggages": 3, "total_baggages": 5}, "Gift card balance is not enough"),
])
def test_add_bags_errors(env, args, why):
    full = {"reservation_id": "ROLD01", "total_baggages": 4, "nonfree_baggages": 2, "payment_id": "credit_card_1"}
    refused(env, "update_reservation_baggages", why, **{**full, **args})


def test_bags_can_be_removed_but_the_policy_says_no(env):
    ok(env, "update_reservation_baggages", reservation_id="ROLD01", total_baggages=3,
       nonfree_baggages=1, payment_id="credit_card_1")
    r = env.call("update_reservation_baggages", {"reservation_id": "ROLD01", "total_baggages": 2,
                                                 "nonfree_baggages": 1, "payment_id": "credit_card_1"})
    assert r.ok and [v.rule for v in r.violations] == ["no_bag_removal"]
    res = db(env)["reservations"]["ROLD01"]
    assert (res["total_baggages"], res["nonfree_baggages"]) == (2, 1) and len(res["payment_history"]) == 2
    assert violations(env, "update_reservation_baggages", reservation_id="ROLD01", total_baggages=2,
                      nonfree_baggages=0, payment_id="credit_card_1") == ["no_bag_removal", "free_baggage_allowance"]
    assert violations(env, "update_reservation_baggages", reservation_id="RCANCD", total_baggages=1,
                      nonfree_baggages=1, payment_id="credit_card_1") == ["not_cancelled", "free_baggage_allowance"]


# ------------------------------------------------------------------ flights and cabin
def test_change_flight_charges_the_difference_and_leaves_seats(env):
    res = ok(env, "update_reservation_flights", reservation_id="ROLD01", cabin="economy",
             flights=[{"flight_number": "EGA001", "date": "2024-05-21"}], payment_id="credit_card_1")
    assert res["flights"][0]["date"] == "2024-05-21" and res["flights"][0]["price"] == 220
    assert res["payment_history"][-1] == {"payment_id": "credit_card_1", "amount": 60}  # 2 x (220 - 190)
    assert db(env)["flights"] == small_world()["flights"]  # no seat moves


def test_cheaper_change_refunds_the_gift_card(env):
    res = ok(env, "update_reservation_flights", reservation_id="ROLD01", cabin="basic_economy",
             flights=[{"flight_number": "EGA001", "date": "2024-05-20"}], payment_id="gift_card_2")
    assert res["cabin"] == "basic_economy" and res["flights"][0]["price"] == 120
    assert res["payment_history"][-1] == {"payment_id": "gift_card_2", "amount": -140}
    assert db(env)["users"]["ana_lee_1001"]["payment_methods"]["gift_card_2"]["amount"] == 190.0


def test_basic_economy_cabin_change_is_fine_a_flight_change_is_judged(env):
    res = ok(env, "update_reservation_flights", reservation_id="RBASIC", cabin="economy",
             flights=[{"flight_number": "EGA001", "date": "2024-05-20"}], payment_id="credit_card_2")
    assert res["cabin"] == "economy" and res["payment_history"][-1]["amount"] == 100
    assert violations(env, "update_reservation_flights", reservation_id="RBASIC", cabin="economy",
                      flights=[{"flight_number": "EGA001", "date": "2024-05-20"}], payment_id="credit_card_2") == []
    fresh = Environment(env.domain, State.from_json(small_world()))
    assert violations(fresh, "update_reservation_flights", reservation_id="RBASIC", cabin="basic_economy",
                      flights=[{"flight_number": "EGA001", "date": "2024-05-21"}],
                      payment_id="credit_card_2") == ["basic_economy_flights_fixed"]


def test_kept_flown_segment_keeps_its_price(env):
    res = ok(env, "update_reservation_flights", reservation_id="RFLOWN", cabin="business",
             flights=[{"flight_number": "EGA001", "date": "2024-05-10"},
                      {"flight_number": "EGA002", "date": "2024-05-20"}], payment_id="credit_card_1")
    assert [f["price"] for f in res["flights"]] == [400, 450] and len(res["payment_history"]) == 1


@pytest.mark.parametrize("args, rules", [
    ({"reservation_id": "RCANCD"}, ["not_cancelled"]),
    ({"flights": [{"flight_number": "EGA004", "date": "2024-05-20"}]}, ["same_trip"]),
    ({"flights": []}, ["same_trip"]),
    ({"reservation_id": "RFLOWN", "cabin": "economy",
      "flights": [{"flight_number": "EGA001", "date": "2024-05-20"}, {"flight_number": "EGA002", "date": "2024-05-20"}]},
     ["cabin_change_before_departure"]),
])
def test_change_flight_policy(env, args, rules):
    full = {"reservation_id": "ROLD01", "cabin": "economy",
            "flights": [{"flight_number": "EGA001", "date": "2024-05-21"}], "payment_id": "credit_card_1"}
    assert violations(env, "update_reservation_flights", **{**full, **args}) == rules


@pytest.mark.parametrize("args, why", [
    ({"reservation_id": "XXXXXX"}, "Reservation XXXXXX not found"),
    ({"flights": [{"flight_number": "EGA001", "date": "2024-06-01"}]}, "Flight EGA001 not found on date 2024-06-01"),
    ({"flights": [{"flight_number": "EGA001", "date": "2024-05-15"}]}, "Flight EGA001 not available on date 2024-05-15"),
    ({"payment_id": "credit_card_9"}, "Payment method not found"),
    ({"payment_id": "certificate_1"}, "Certificate cannot be used to update reservation"),
    ({"payment_id": "gift_card_3"}, "Gift card balance is not enough"),
])
def test_change_flight_errors(env, args, why):
    full = {"reservation_id": "ROLD01", "cabin": "economy",
            "flights": [{"flight_number": "EGA001", "date": "2024-05-21"}], "payment_id": "credit_card_1"}
    refused(env, "update_reservation_flights", why, **{**full, **args})


def test_change_flight_needs_seats(spec):
    world = small_world()
    world["flights"]["EGA001"]["dates"]["2024-05-21"]["available_seats"]["economy"] = 1
    env = Environment(spec, State.from_json(world))
    refused(env, "update_reservation_flights", "Not enough seats on flight EGA001", reservation_id="ROLD01",
            cabin="economy", flights=[{"flight_number": "EGA001", "date": "2024-05-21"}], payment_id="credit_card_1")


# ------------------------------------------------------------------ passengers
def test_update_passengers(env):
    people = [{"first_name": "Kim", "last_name": "Park", "dob": "1970-05-05"},
              {"first_name": "Lu", "last_name": "Park", "dob": "1972-06-06"}]
    assert ok(env, "update_reservation_passengers", reservation_id="ROLD01", passengers=people)["passengers"] == people
    refused(env, "update_reservation_passengers", "Number of passengers does not match", reservation_id="ROLD01",
            passengers=people[:1])
    refused(env, "update_reservation_passengers", "Reservation XXXXXX not found", reservation_id="XXXXXX",
            passengers=people)
    assert violations(env, "update_reservation_passengers", reservation_id="RCANCD",
                      passengers=people[:1]) == ["not_cancelled"]


# ------------------------------------------------------------------ the over-eager agent
@pytest.mark.parametrize("name, args, rule", [
    ("cancel_reservation", {"reservation_id": "ROLD01"}, "cancel_eligibility"),
    ("update_reservation_flights", {"reservation_id": "RBASIC", "cabin": "basic_economy", "payment_id": "credit_card_2",
                                    "flights": [{"flight_number": "EGA001", "date": "2024-05-21"}]},
     "basic_economy_flights_fixed"),
    ("update_reservation_baggages", {"reservation_id": "RFRESH", "total_baggages": 0, "nonfree_baggages": 0,
                                     "payment_id": "credit_card_1"}, "no_bag_removal"),
])
def test_an_over_eager_agent_is_caught(spec, name, args, rule):
    """The write goes through, as in τ²-bench, and the trajectory fails its verifier, even one
    written from exactly the end state it reached."""
    world = small_world()
    world["reservations"]["RFRESH"]["total_baggages"] = 1  # a bag to remove
    env = Environment(spec, State.from_json(world))
    final = env.fork()
    r = final.call(name, args)
    assert r.ok and final.db != env.db
    result = verifier_from_diff(env, final).check(env, final, [])
    assert not result.passed and any(rule in f for f in result.failures), result.failures


# ------------------------------------------------------------------ trajectory rules
def _rule(spec, name: str, calls: list[dict], world: dict | None = None) -> bool:
    world = world or small_world()
    calls = [{"arguments": {}, "ok": True, "error": None, "confirmed": False, **c} for c in calls]
    scope = {"calls": calls, "messages": [], "db": world, "initial_db": world, "now": spec.now}
    return compile_expr(spec.rules[name].expr)(scope)


def test_rules(spec):
    lookup = {"name": "get_user_details", "kind": "read", "turn": 1, "arguments": {"user_id": "ana_lee_1001"}}
    cancel = {"name": "cancel_reservation", "kind": "write", "turn": 3, "confirmed": True,
              "arguments": {"reservation_id": "RFRESH"}}
    assert _rule(spec, "confirm_before_write", [lookup, cancel])
    assert not _rule(spec, "confirm_before_write", [lookup, {**cancel, "confirmed": False}])
    assert _rule(spec, "identify_user_first", [lookup, cancel])
    assert not _rule(spec, "identify_user_first", [cancel])
    assert not _rule(spec, "one_write_per_confirmation", [cancel, {**cancel, "arguments": {"reservation_id": "ROLD01"}}])
    other = {"name": "get_reservation_details", "kind": "read", "turn": 2, "arguments": {"reservation_id": "RCAT01"}}
    assert not _rule(spec, "one_user_per_conversation", [lookup, other])
    transfer = {"name": "transfer_to_human_agents", "kind": "generic", "turn": 2, "arguments": {"summary": "x"}}
    assert _rule(spec, "transfer_ends_the_work", [lookup, transfer])
    assert not _rule(spec, "transfer_ends_the_work", [transfer, cancel])


# ------------------------------------------------------------------ the generator
@pytest.fixture(scope="module")
def generated(spec):
    return Environment.from_domain(spec, seed=11, size=0.05)  # validates against the schema


def test_generator_is_deterministic(spec, generated):
    assert Environment.from_domain(spec, seed=11, size=0.05).hash() == generated.hash()
    assert Environment.from_domain(spec, seed=12, size=0.05).hash() != generated.hash()


def test_generator_full_size_counts_and_speed(spec):
    generate = load_module(DOMAIN / "generate.py")
    assert generate.NOW.isoformat() == spec.now
    start = time.perf_counter()
    world = generate.build(5, 1.0)
    elapsed = time.perf_counter() - start
    assert {k: len(v) for k, v in world.items()} == {"flights": 300, "users": 500, "reservations": 2000}
    assert all(len(f["dates"]) == 30 for f in world["flights"].values())
    assert not spec.schema.validate(world, ModelT("FlightDB"))
    assert elapsed < 3.0, f"generation took {elapsed:.2f}s"


def test_generated_world_is_coherent(spec, generated):
    tools = load_module(DOMAIN / "tools.py")
    world = generated.db.to_json()
    today = spec.now[:10]
    for f in world["flights"].values():
        for day, status in f["dates"].items():
            if day < today:
                assert status["status"] in ("landed", "cancelled", "flying"), (day, status)
            elif day > "2024-05-16":
                assert status["status"] == "available"
    owners = {rid: uid for uid, u in world["users"].items() for rid in u["reservations"]}
    assert owners == {rid: r["user_id"] for rid, r in world["reservations"].items()}
    for r in world["reservations"].values():
        user = world["users"][r["user_id"]]
        for leg in r["flights"]:
            flight = world["flights"][leg["flight_number"]]
            assert leg["date"] in flight["dates"] and (leg["origin"], leg["destination"]) == \
                (flight["origin"], flight["destination"])
        legs = r["flights"]
        assert legs[0]["origin"] == r["origin"]
        assert all(a["destination"] == b["origin"] and a["date"] <= b["date"] for a, b in zip(legs, legs[1:]))
        assert legs[-1]["destination"] == (r["destination"] if r["flight_type"] == "one_way" else r["origin"])
        assert all(p["payment_id"] in user["payment_methods"] for p in r["payment_history"])
        n = len(r["passengers"])
        free = tools.data.FREE_BAGS[user["membership"]][r["cabin"]] * n
        assert r["nonfree_baggages"] == max(0, r["total_baggages"] - free)
        assert 1 <= n <= 5


def test_tools_work_on_the_generated_world(generated):
    env = generated.fork()
    world = env.db.to_json()
    uid, user = next((u, x) for u, x in world["users"].items()
                     if any(m["source"] == "credit_card" for m in x["payment_methods"].values()))
    card = next(m["id"] for m in user["payment_methods"].values() if m["source"] == "credit_card")
    number, day, status = next((f["flight_number"], d, s) for f in world["flights"].values()
                               for d, s in f["dates"].items()
                               if s["status"] == "available" and s["available_seats"]["economy"] > 0)
    flight = world["flights"][number]
    found = ok(env, "search_direct_flight", origin=flight["origin"], destination=flight["destination"], date=day)
    assert number in [f["flight_number"] for f in found]
    bags = 1 if user["membership"] == "regular" else 2  # within the economy allowance
    res = ok(env, "book_reservation", user_id=uid, origin=flight["origin"], destination=flight["destination"],
             flight_type="one_way", cabin="economy", flights=[{"flight_number": number, "date": day}],
             passengers=[{"first_name": "Ada", "last_name": "Byron", "dob": "1990-12-10"}],
             payment_methods=[{"payment_id": card, "amount": status["prices"]["economy"]}],
             total_baggages=bags, nonfree_baggages=0, insurance="no")
    assert ok(env, "cancel_reservation", reservation_id=res["reservation_id"])["status"] == "cancelled"
    assert generated.db.to_json() == world  # the fork did not touch its parent
    for rid in list(world["reservations"])[:20]:
        ok(env, "get_reservation_details", reservation_id=rid)


# ------------------------------------------------------------------ a τ²-bench-shaped database
def _split_args(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    return out + [text[start:].strip()]


def _fill(t: str, i: int) -> object:
    """A value of the τ²-bench type `t`; `i` rotates union options and literal values."""
    if t in TAU2_ALIASES:
        return _fill(TAU2_ALIASES[t], i)
    if t in TAU2_MODELS:
        return {name: _fill(ft, i) for name, ft in TAU2_MODELS[t].items()}
    head, _, rest = t.partition("[")
    args = _split_args(rest[:-1]) if rest else []
    if head == "Literal":
        return args[i % len(args)].strip("'\"")
    if head == "Union":
        return _fill(args[i % len(args)], i)
    if head == "Optional":
        return None if i % 2 else _fill(args[0], i)
    if head in ("List", "list"):
        return [_fill(args[0], i + j) for j in range(2)]
    if head in ("Dict", "dict"):
        if args[0] != "str":  # an enum key: one entry per value
            return {k.strip("'\""): _fill(args[1], i) for k in _split_args(TAU2_ALIASES[args[0]][8:-1])}
        return {f"k{i}_{j}": _fill(args[1], 3 * i + j) for j in range(3)}
    return {"str": f"s{i}", "int": i, "float": i + 0.5}[t]


def test_tau2_shaped_database_loads_and_serves(spec, tmp_path):
    world = _fill("FlightDB", 0)
    some_reservation = next(iter(world["reservations"].values()))
    some_reservation.pop("status")                            # defaults may be left out
    next(iter(world["users"].values()))["address"].pop("address2")
    statuses = {s["status"] for f in world["flights"].values() for s in f["dates"].values()}
    assert statuses == {"available", "landed", "cancelled", "delayed", "flying", "on time"}
    path = tmp_path / "db.json"
    path.write_text(json.dumps(world))
    env = Environment.from_files(spec, path)
    some_reservation["status"] = None                         # loading fills the defaults
    next(iter(world["users"].values()))["address"]["address2"] = None
    assert env.db.to_json() == world
    uid = next(iter(world["users"]))
    assert ok(env, "get_user_details", user_id=uid)["user_id"] == world["users"][uid]["user_id"]
    number, flight = next(iter(world["flights"].items()))
    ok(env, "get_flight_status", flight_number=number, date=next(iter(flight["dates"])))
    rid = next(iter(world["reservations"]))                   # the one without a status
    people = [{**p, "first_name": "Renamed"} for p in some_reservation["passengers"]]
    assert ok(env, "update_reservation_passengers", reservation_id=rid, passengers=people)["passengers"] == people


# τ²-bench airline interface (names and types only), kept in step with the reference file
# by test_reference_copy_is_current.
TAU2_TOOLS = [
    {"name": "book_reservation", "kind": "write", "params": ["user_id", "origin", "destination", "flight_type", "cabin", "flights", "passengers", "payment_methods", "total_baggages", "nonfree_baggages", "insurance"]},
    {"name": "calculate", "kind": "generic", "params": ["expression"]},
    {"name": "cancel_reservation", "kind": "write", "params": ["reservation_id"]},
    {"name": "get_reservation_details", "kind": "read", "params": ["reservation_id"]},
    {"name": "get_user_details", "kind": "read", "params": ["user_id"]},
    {"name": "list_all_airports", "kind": "read", "params": []},
    {"name": "search_direct_flight", "kind": "read", "params": ["origin", "destination", "date"]},
    {"name": "search_onestop_flight", "kind": "read", "params": ["origin", "destination", "date"]},
    {"name": "send_certificate", "kind": "write", "params": ["user_id", "amount"]},
    {"name": "transfer_to_human_agents", "kind": "generic", "params": ["summary"]},
    {"name": "update_reservation_baggages", "kind": "write", "params": ["reservation_id", "total_baggages", "nonfree_baggages", "payment_id"]},
    {"name": "update_reservation_flights", "kind": "write", "params": ["reservation_id", "cabin", "flights", "payment_id"]},
    {"name": "update_reservation_passengers", "kind": "write", "params": ["reservation_id", "passengers"]},
    {"name": "get_flight_status", "kind": "read", "params": ["flight_number", "date"]},
]
TAU2_MODELS = {
    "FlightDB": {"flights": "Dict[str, Flight]", "users": "Dict[str, User]", "reservations": "Dict[str, Reservation]"},
    "Flight": {"flight_number": "str", "origin": "str", "destination": "str", "scheduled_departure_time_est": "str", "scheduled_arrival_time_est": "str", "dates": "Dict[str, FlightDateStatus]"},
    "FlightDateStatusAvailable": {"status": "Literal['available']", "available_seats": "AvailableSeats", "prices": "SeatPrices"},
    "FlightDateStatusLanded": {"status": "Literal['landed']", "actual_departure_time_est": "str", "actual_arrival_time_est": "str"},
    "FlightDateStatusCancelled": {"status": "Literal['cancelled']"},
    "FlightDateStatusDelayed": {"status": "Literal['delayed']", "estimated_departure_time_est": "str", "estimated_arrival_time_est": "str"},
    "FlightDataStatusFlying": {"status": "Literal['flying']", "actual_departure_time_est": "str", "estimated_arrival_time_est": "str"},
    "FlightDataStatusOnTime": {"status": "Literal['on time']", "estimated_departure_time_est": "str", "estimated_arrival_time_est": "str"},
    "FlightBase": {"flight_number": "str", "origin": "str", "destination": "str"},
    "User": {"user_id": "str", "name": "Name", "address": "Address", "email": "str", "dob": "str", "payment_methods": "Dict[str, PaymentMethod]", "saved_passengers": "List[Passenger]", "membership": "MembershipLevel", "reservations": "List[str]"},
    "Name": {"first_name": "str", "last_name": "str"},
    "Address": {"address1": "str", "address2": "Optional[str]", "city": "str", "country": "str", "state": "str", "zip": "str"},
    "CreditCard": {"source": "Literal['credit_card']", "id": "str", "brand": "str", "last_four": "str"},
    "PaymentMethodBase": {"source": "str", "id": "str"},
    "GiftCard": {"source": "Literal['gift_card']", "id": "str", "amount": "float"},
    "Certificate": {"source": "Literal['certificate']", "id": "str", "amount": "float"},
    "Passenger": {"first_name": "str", "last_name": "str", "dob": "str"},
    "Reservation": {"reservation_id": "str", "user_id": "str", "origin": "str", "destination": "str", "flight_type": "FlightType", "cabin": "CabinClass", "flights": "List[ReservationFlight]", "passengers": "List[Passenger]", "payment_history": "List[Payment]", "created_at": "str", "total_baggages": "int", "nonfree_baggages": "int", "insurance": "Insurance", "status": "Optional[Literal['cancelled']]"},
    "ReservationFlight": {"flight_number": "str", "origin": "str", "destination": "str", "date": "str", "price": "int"},
    "Payment": {"payment_id": "str", "amount": "int"},
}
TAU2_ALIASES = {
    "FlightDateStatus": "Union[FlightDateStatusAvailable, FlightDateStatusLanded, FlightDateStatusCancelled, FlightDateStatusDelayed, FlightDataStatusFlying, FlightDataStatusOnTime]",
    "AvailableSeats": "dict[CabinClass, int]",
    "CabinClass": "Literal['business', 'economy', 'basic_economy']",
    "SeatPrices": "dict[CabinClass, int]",
    "PaymentMethod": "Union[CreditCard, GiftCard, Certificate]",
    "MembershipLevel": "Literal['gold', 'silver', 'regular']",
    "FlightType": "Literal['round_trip', 'one_way']",
    "Insurance": "Literal['yes', 'no']",
}
