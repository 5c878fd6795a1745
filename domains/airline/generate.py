"""Seeded generator of the airline world: flights, users and reservations.

`build(seed, size)` draws everything from one `random.Random(seed)`, so the same seed gives
the same database. At size 1.0 the world has τ²-bench's scale (300 flights over 30 days,
500 users, 2,000 reservations); `size` scales the counts, with floors that keep a tiny world
coherent (every reservation flies real flights on real dates, every payment names a method of
its user).

Time is the domain's fixed clock `NOW`: dates before it are history (landed, sometimes
cancelled), the current and next day are in operation (flying, on time, delayed), later dates
are open for sale with seats and prices per cabin.
"""

from __future__ import annotations

import math
import random
import string
from datetime import date, datetime, timedelta

from runtime.env.impls import load_sibling


data = load_sibling(__file__, "data")

NOW = datetime(2024, 5, 15, 15, 0, 0)  # must equal `now:` in domain.yaml
FIRST_DATE = date(2024, 5, 1)
N_DATES = 30
FULL = {"flights": 300, "users": 500, "reservations": 2000}
FLOOR = {"flights": 12, "users": 10, "reservations": 20}


def build(seed: int, size: float = 1.0) -> dict:
    """The airline database (`FlightDB`) as JSON-ready data."""
    rng = random.Random(seed)
    counts = {k: max(FLOOR[k], round(v * size)) for k, v in FULL.items()}
    dates = [FIRST_DATE + timedelta(days=i) for i in range(N_DATES)]
    airports = _pick_airports(rng, size)
    flights, fares = _flights(rng, airports, counts["flights"], dates)
    users = _users(rng, counts["users"])
    reservations = _reservations(rng, flights, fares, users, counts["reservations"], dates)
    return {"flights": flights, "users": users, "reservations": reservations}


# --- flights --------------------------------------------------------------------------------

def _pick_airports(rng: random.Random, size: float) -> list[tuple[str, str, float, float]]:
    n = min(len(data.AIRPORTS), max(6, round(len(data.AIRPORTS) * min(1.0, 2 * size))))
    return rng.sample(data.AIRPORTS, n)


def _km(a: tuple, b: tuple) -> float:
    """Great-circle distance between two airports (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[2], a[3], b[2], b[3]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))


def _clock(minutes: int) -> str:
    """'HH:MM:SS', with '+1' when the time falls on the next day."""
    day, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return text + (f"+{day}" if day else "")


def _flights(rng: random.Random, airports: list, n_flights: int,
             dates: list[date]) -> tuple[dict, dict[str, float]]:
    """The flights, and each one's economy fare level (history keeps no prices, so past
    reservations are priced from it). Routes come in both directions: every leg has a way back."""
    pairs = [(a, b) for i, a in enumerate(airports) for b in airports[i + 1:]]
    rng.shuffle(pairs)
    flights: dict[str, dict] = {}
    fares: dict[str, float] = {}
    k = 0
    while len(flights) < n_flights:
        a, b = pairs[k % len(pairs)]
        k += 1
        for o, d in ((a, b), (b, a)):
            if len(flights) >= n_flights:
                break
            number = f"EGA{len(flights) + 1:03d}"
            flights[number], fares[number] = _flight(rng, number, o, d, dates)
    return flights, fares


def _flight(rng: random.Random, number: str, o: tuple, d: tuple, dates: list[date]) -> tuple[dict, float]:
    km = _km(o, d)
    duration = int(round((km / 800 + 0.6) * 12)) * 5  # minutes, on a 5-minute grid
    dep = rng.randint(10, 45) * 30                    # 05:00 .. 22:30
    base = (55 + 0.11 * km) * rng.uniform(0.8, 1.25)  # economy fare level of this flight
    flight = {
        "flight_number": number,
        "origin": o[0],
        "destination": d[0],
        "scheduled_departure_time_est": _clock(dep),
        "scheduled_arrival_time_est": _clock(dep + duration),
        "dates": {},
    }
    for day in dates:
        flight["dates"][day.isoformat()] = _date_status(rng, day, dep, duration, base)
    return flight, base


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _date_status(rng: random.Random, day: date, dep: int, duration: int, base: float) -> dict:
    scheduled = datetime.combine(day, datetime.min.time()) + timedelta(minutes=dep)
    if day > NOW.date() + timedelta(days=1):
        return {"status": "available", "available_seats": _seats(rng), "prices": _prices(rng, base)}
    delay = timedelta(minutes=rng.choice([0, 0, 0, 5, 10, 15, 25, 40, 75, 120]))
    leave = scheduled + delay
    arrive = leave + timedelta(minutes=duration + rng.choice([-10, -5, 0, 0, 5, 10]))
    if scheduled < NOW and rng.random() < 0.03:
        return {"status": "cancelled"}
    if leave <= NOW:
        if arrive <= NOW:
            return {"status": "landed", "actual_departure_time_est": _iso(leave),
                    "actual_arrival_time_est": _iso(arrive)}
        return {"status": "flying", "actual_departure_time_est": _iso(leave),
                "estimated_arrival_time_est": _iso(arrive)}
    roll = rng.random()
    if roll < 0.05:
        return {"status": "cancelled"}
    on_time = scheduled + timedelta(minutes=duration)
    if roll < 0.2:
        late = timedelta(minutes=rng.choice([45, 90, 150, 240]))
        return {"status": "delayed", "estimated_departure_time_est": _iso(scheduled + late),
                "estimated_arrival_time_est": _iso(on_time + late)}
    return {"status": "on time", "estimated_departure_time_est": _iso(scheduled),
            "estimated_arrival_time_est": _iso(on_time)}


def _seats(rng: random.Random) -> dict[str, int]:
    # Negative draws clamp to 0: some cabins are sold out, which makes for real refusals.
    return {"business": max(0, rng.randint(-3, 14)), "economy": max(0, rng.randint(-5, 60)),
            "basic_economy": max(0, rng.randint(-4, 24))}


def _prices(rng: random.Random, base: float) -> dict[str, int]:
    economy = base * rng.uniform(0.85, 1.2)
    return {"business": round(economy * rng.uniform(2.4, 3.4)), "economy": round(economy),
            "basic_economy": round(economy * rng.uniform(0.55, 0.75))}


# --- users ----------------------------------------------------------------------------------

def _fresh(taken: set[str], make) -> str:
    """A value from `make()` that is not in `taken` yet (and is now)."""
    while True:
        value = make()
        if value not in taken:
            taken.add(value)
            return value


def _person(rng: random.Random, last: str | None = None) -> dict:
    return {"first_name": rng.choice(data.FIRST_NAMES), "last_name": last or rng.choice(data.LAST_NAMES),
            "dob": _dob(rng)}


def _dob(rng: random.Random) -> str:
    return (date(1945, 1, 1) + timedelta(days=rng.randint(0, 60 * 365))).isoformat()


def _users(rng: random.Random, n: int) -> dict:
    users: dict[str, dict] = {}
    ids: set[str] = set()
    pay_ids: set[str] = set()
    for _ in range(n):
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        uid = _fresh(ids, lambda: f"{first}_{last}_{rng.randint(1000, 9999)}".lower())
        city, state, zip3 = rng.choice(data.CITIES)
        users[uid] = {
            "user_id": uid,
            "name": {"first_name": first, "last_name": last},
            "address": {
                "address1": f"{rng.randint(1, 9999)} {rng.choice(data.STREETS)}",
                "address2": (f"{rng.choice(data.UNIT_PREFIXES)} {rng.randint(1, 999)}"
                             if rng.random() < 0.4 else None),
                "city": city, "country": "USA", "state": state, "zip": f"{zip3}{rng.randint(0, 99):02d}",
            },
            "email": f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(data.EMAIL_DOMAINS)}".lower(),
            "dob": _dob(rng),
            "payment_methods": _payment_methods(rng, pay_ids),
            "saved_passengers": [_person(rng, last if rng.random() < 0.5 else None)
                                 for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))],
            "membership": rng.choices(data.MEMBERSHIPS, weights=[5, 3, 2])[0],
            "reservations": [],
        }
    return users


def _payment_methods(rng: random.Random, taken: set[str]) -> dict:
    methods: dict[str, dict] = {}

    def new_id(source: str) -> str:
        return _fresh(taken, lambda: f"{source}_{rng.randint(1_000_000, 9_999_999)}")

    n_cards = rng.choices([0, 1, 2], weights=[15, 60, 25])[0]
    n_gift = rng.choices([0, 1, 2], weights=[55, 35, 10])[0] or (1 if n_cards == 0 else 0)
    n_cert = rng.choices([0, 1, 2], weights=[60, 30, 10])[0]
    for _ in range(n_cards):
        pid = new_id("credit_card")
        methods[pid] = {"source": "credit_card", "id": pid, "brand": rng.choice(data.CARD_BRANDS),
                        "last_four": f"{rng.randint(0, 9999):04d}"}
    for _ in range(n_gift):
        pid = new_id("gift_card")
        methods[pid] = {"source": "gift_card", "id": pid, "amount": float(rng.randint(0, 300))}
    for _ in range(n_cert):
        pid = new_id("certificate")
        methods[pid] = {"source": "certificate", "id": pid, "amount": float(rng.choice([100, 150, 200, 250, 500]))}
    return methods


# --- reservations ---------------------------------------------------------------------------

def _minutes(clock: str) -> int:
    """Minutes after midnight of the departure day, for 'HH:MM:SS' or 'HH:MM:SS+1'."""
    text, _, plus = clock.partition("+")
    h, m, _s = (int(x) for x in text.split(":"))
    return (int(plus) if plus else 0) * 24 * 60 + h * 60 + m


class _Network:
    """Indexes over the flights for building itineraries that connect."""

    def __init__(self, flights: dict) -> None:
        self.flights = list(flights.values())
        self.by_route: dict[tuple[str, str], list[dict]] = {}
        self.by_origin: dict[str, list[dict]] = {}
        for f in self.flights:
            self.by_route.setdefault((f["origin"], f["destination"]), []).append(f)
            self.by_origin.setdefault(f["origin"], []).append(f)

    def connect(self, rng: random.Random, first: dict, day: date,
                dest: str | None) -> list[tuple[dict, date]] | None:
        """`first` on `day` then a second leg (to `dest` if given) at least 45 minutes later."""
        arrive = _minutes(first["scheduled_arrival_time_est"])
        day2 = day + timedelta(days=arrive // (24 * 60))
        seconds = [f for f in self.by_origin.get(first["destination"], [])
                   if f["destination"] != first["origin"] and (dest is None or f["destination"] == dest)
                   and _minutes(f["scheduled_departure_time_est"]) >= arrive % (24 * 60) + 45]
        return [(first, day), (rng.choice(seconds), day2)] if seconds else None

    def trip(self, rng: random.Random, origin: str, dest: str, day: date) -> list[tuple[dict, date]] | None:
        """Legs from `origin` to `dest` leaving on `day`: direct when there is one (mostly),
        else one stop."""
        direct = self.by_route.get((origin, dest), [])
        if direct and rng.random() < 0.7:
            return [(rng.choice(direct), day)]
        starts = [f for f in self.by_origin.get(origin, []) if f["destination"] != dest]
        rng.shuffle(starts)
        for first in starts[:8]:
            legs = self.connect(rng, first, day, dest)
            if legs:
                return legs
        return [(rng.choice(direct), day)] if direct else None


def _reservations(rng: random.Random, flights: dict, fares: dict[str, float], users: dict,
                  n: int, dates: list[date]) -> dict:
    net = _Network(flights)
    user_ids = list(users)
    out: dict[str, dict] = {}
    taken: set[str] = set()
    alphabet = string.ascii_uppercase + string.digits
    while len(out) < n:
        trip = _itinerary(rng, net, dates)
        if trip is None:
            continue
        user = users[rng.choice(user_ids)]
        rid = _fresh(taken, lambda: "".join(rng.choices(alphabet, k=6)))
        out[rid] = _reservation(rng, rid, user, fares, *trip)
        user["reservations"].append(rid)
    return out


def _itinerary(rng: random.Random, net: _Network, dates: list[date]):
    """(legs, flight_type, destination) of a random trip inside the dates, or None."""
    day = rng.choice(dates[:-1])
    first = rng.choice(net.flights)
    out = (net.connect(rng, first, day, None) if rng.random() < 0.35 else None) or [(first, day)]
    if out[-1][1] > dates[-1]:
        return None
    origin, dest = out[0][0]["origin"], out[-1][0]["destination"]
    back_day = out[-1][1] + timedelta(days=rng.randint(1, 7))
    if rng.random() < 0.45 and back_day <= dates[-1]:
        back = net.trip(rng, dest, origin, back_day)
        if back and back[-1][1] <= dates[-1]:
            return out + back, "round_trip", dest
    return out, "one_way", dest


def _leg_price(rng: random.Random, flight: dict, fare: float, day: date, cabin: str) -> int:
    status = flight["dates"][day.isoformat()]
    if status["status"] == "available":
        return status["prices"][cabin]
    economy = fare * rng.uniform(0.85, 1.2)  # the fare paid back then, at this flight's level
    factor = {"business": rng.uniform(2.4, 3.4), "economy": 1.0, "basic_economy": rng.uniform(0.55, 0.75)}
    return round(economy * factor[cabin])


def _reservation(rng: random.Random, rid: str, user: dict, fares: dict[str, float],
                 legs: list, flight_type: str, dest: str) -> dict:
    cabin = rng.choices(data.CABINS, weights=[3, 5, 2])[0]
    n_pax = rng.choices([1, 2, 3, 4, 5], weights=[45, 30, 15, 7, 3])[0]
    me = {"first_name": user["name"]["first_name"], "last_name": user["name"]["last_name"], "dob": user["dob"]}
    crowd = ([me] if rng.random() < 0.7 else []) + list(user["saved_passengers"])
    passengers = [dict(p) for p in crowd[:n_pax]]
    while len(passengers) < n_pax:
        passengers.append(_person(rng, user["name"]["last_name"] if rng.random() < 0.4 else None))
    flights = [{"flight_number": f["flight_number"], "origin": f["origin"], "destination": f["destination"],
                "date": day.isoformat(), "price": _leg_price(rng, f, fares[f["flight_number"]], day, cabin)}
               for f, day in legs]
    insurance = "yes" if rng.random() < 0.35 else "no"
    total_bags = rng.randint(0, 2 * n_pax)
    nonfree = max(0, total_bags - data.FREE_BAGS[user["membership"]][cabin] * n_pax)
    total = (n_pax * sum(f["price"] for f in flights) + nonfree * data.BAG_FEE
             + (data.INSURANCE_FEE * n_pax if insurance == "yes" else 0))
    depart = (datetime.fromisoformat(flights[0]["date"])
              + timedelta(minutes=_minutes(legs[0][0]["scheduled_departure_time_est"])))
    if depart > NOW and rng.random() < 0.08:
        created = NOW - timedelta(minutes=rng.randint(30, 23 * 60))  # inside the free-cancel window
    else:
        created = min(NOW - timedelta(days=1, minutes=1), depart - timedelta(days=rng.randint(1, 40)))
        created -= timedelta(seconds=rng.randint(0, 86_399))
    status = "cancelled" if rng.random() < 0.08 else None
    payments = _payments(rng, user, total)
    refunds = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in payments] if status else []
    return {
        "reservation_id": rid, "user_id": user["user_id"], "origin": legs[0][0]["origin"],
        "destination": dest, "flight_type": flight_type, "cabin": cabin, "flights": flights,
        "passengers": passengers, "payment_history": payments + refunds, "created_at": _iso(created),
        "total_baggages": total_bags, "nonfree_baggages": nonfree, "insurance": insurance, "status": status,
    }


def _payments(rng: random.Random, user: dict, total: int) -> list[dict]:
    """One card, or a gift card topped up by a card: ids always from the user's profile."""
    methods = user["payment_methods"]
    cards = [m["id"] for m in methods.values() if m["source"] == "credit_card"]
    gifts = [m["id"] for m in methods.values() if m["source"] == "gift_card"]
    if gifts and cards and total > 1 and rng.random() < 0.3:
        part = rng.randint(1, total - 1)
        return [{"payment_id": rng.choice(gifts), "amount": part},
                {"payment_id": rng.choice(cards), "amount": total - part}]
    return [{"payment_id": rng.choice(cards or gifts), "amount": total}]
