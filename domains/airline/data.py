"""Facts of the airline world shared by the tools and the generator.

Business constants (fees, allowances, limits) live here so that the tools, the generator and
the policy text agree on one set of numbers; the rest are plain lists the generator draws
names, places and cards from. All lists are ours.
"""

from __future__ import annotations

# --- business rules -----------------------------------------------------------------------

CABINS = ("basic_economy", "economy", "business")
MEMBERSHIPS = ("regular", "silver", "gold")

# Free checked bags per passenger, by the booking user's membership and the cabin.
FREE_BAGS: dict[str, dict[str, int]] = {
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 4},
}
BAG_FEE = 50            # per non-free checked bag
INSURANCE_FEE = 30      # per passenger
MAX_PASSENGERS = 5
MAX_GIFT_CARDS = 3      # per payment of a booking
CANCEL_GRACE_HOURS = 24  # free cancellation window after booking
# Goodwill certificates: per passenger, by what happened to the flight.
COMPENSATION = {"cancelled": 100, "delayed": 50}

# Flight-date statuses: which ones mean the plane has left the ground.
DEPARTED_STATUSES = ("landed", "flying")

# --- τ²-bench's fixed answers ---------------------------------------------------------------

# Ids of new reservations and certificates: the first one not taken (a task makes at most three).
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
NEW_CERTIFICATE_IDS = ("certificate_3221322", "certificate_3221323", "certificate_3221324")

# --- airports: IATA code, city, latitude, longitude ----------------------------------------

# The airports of τ²-bench's airline, in the order and with the city names its
# `list_all_airports` answers (whatever the database holds); the generator draws from these,
# so a generated world's flights are all listed.
AIRPORTS: list[tuple[str, str, float, float]] = [
    ("SFO", "San Francisco", 37.62, -122.38),
    ("JFK", "New York", 40.64, -73.78),
    ("LAX", "Los Angeles", 33.94, -118.41),
    ("ORD", "Chicago", 41.98, -87.90),
    ("DFW", "Dallas", 32.90, -97.04),
    ("DEN", "Denver", 39.86, -104.67),
    ("SEA", "Seattle", 47.45, -122.31),
    ("ATL", "Atlanta", 33.64, -84.43),
    ("MIA", "Miami", 25.80, -80.29),
    ("BOS", "Boston", 42.36, -71.01),
    ("PHX", "Phoenix", 33.43, -112.01),
    ("IAH", "Houston", 29.99, -95.34),
    ("LAS", "Las Vegas", 36.08, -115.15),
    ("MCO", "Orlando", 28.43, -81.31),
    ("EWR", "Newark", 40.69, -74.17),
    ("CLT", "Charlotte", 35.21, -80.94),
    ("MSP", "Minneapolis", 44.88, -93.22),
    ("DTW", "Detroit", 42.21, -83.35),
    ("PHL", "Philadelphia", 39.87, -75.24),
    ("LGA", "LaGuardia", 40.78, -73.87),
]
LISTED_AIRPORTS: list[tuple[str, str]] = [(code, city) for code, city, _, _ in AIRPORTS]
AIRPORT_CITY: dict[str, str] = dict(LISTED_AIRPORTS)

# --- people and places ----------------------------------------------------------------------

FIRST_NAMES = [
    "Aaliyah", "Aarav", "Abigail", "Adrian", "Aisha", "Alejandro", "Amara", "Amelia", "Anya",
    "Arjun", "Ava", "Benjamin", "Bianca", "Caleb", "Camila", "Carlos", "Chen", "Chloe",
    "Daniel", "Deepa", "Diego", "Dmitri", "Elena", "Eli", "Emeka", "Emily", "Ethan", "Fatima",
    "Felix", "Gabriel", "Grace", "Hana", "Harper", "Hiro", "Ibrahim", "Isabella", "Ivan",
    "Jamal", "James", "Jasmine", "Javier", "Julia", "Kai", "Kenji", "Kofi", "Lars", "Layla",
    "Leo", "Liam", "Lucas", "Lucia", "Maya", "Mei", "Mohamed", "Nadia", "Noah", "Nora",
    "Olivia", "Omar", "Priya", "Rafael", "Ravi", "Rosa", "Sakura", "Samuel", "Sara", "Sofia",
    "Tariq", "Thomas", "Uma", "Valentina", "Victor", "Wei", "Yara", "Yusuf", "Zara", "Zoe",
]

LAST_NAMES = [
    "Abbott", "Adeyemi", "Alvarez", "Anderson", "Bauer", "Becker", "Brooks", "Castillo",
    "Chen", "Cohen", "Das", "Dubois", "Edwards", "Fernandez", "Fischer", "Garcia", "Gupta",
    "Hansen", "Harris", "Hernandez", "Ito", "Jackson", "Johansson", "Kapoor", "Kim",
    "Kowalski", "Larsen", "Lee", "Lopez", "Martin", "Mehta", "Miller", "Moreau", "Nakamura",
    "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Petrov", "Quinn", "Rahman", "Reyes",
    "Rossi", "Sato", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Taylor", "Thompson",
    "Usman", "Vargas", "Wagner", "Walker", "Wang", "Weber", "Williams", "Wilson", "Yamamoto",
    "Young", "Zhang", "Zimmerman",
]

STREETS = [
    "Maple Avenue", "Oak Street", "Cedar Lane", "Pine Road", "Elm Street", "Willow Way",
    "Lakeview Drive", "Hillcrest Road", "Sunset Boulevard", "River Road", "Park Avenue",
    "Main Street", "Highland Avenue", "Meadow Lane", "Forest Drive", "Harbor View",
    "Spring Street", "Chestnut Court", "Broadway", "Valley Road",
]

# City, state (two letters), first three digits of its ZIP codes.
CITIES: list[tuple[str, str, str]] = [
    ("Austin", "TX", "787"), ("Boston", "MA", "021"), ("Charlotte", "NC", "282"),
    ("Chicago", "IL", "606"), ("Columbus", "OH", "432"), ("Dallas", "TX", "752"),
    ("Denver", "CO", "802"), ("Detroit", "MI", "482"), ("Houston", "TX", "770"),
    ("Las Vegas", "NV", "891"), ("Los Angeles", "CA", "900"), ("Miami", "FL", "331"),
    ("Minneapolis", "MN", "554"), ("Nashville", "TN", "372"), ("New York", "NY", "100"),
    ("Orlando", "FL", "328"), ("Philadelphia", "PA", "191"), ("Phoenix", "AZ", "850"),
    ("Portland", "OR", "972"), ("San Diego", "CA", "921"), ("San Francisco", "CA", "941"),
    ("Seattle", "WA", "981"), ("Tucson", "AZ", "857"), ("Atlanta", "GA", "303"),
]

UNIT_PREFIXES = ["Suite", "Apt", "Unit"]
EMAIL_DOMAINS = ["example.com", "mail.example.org", "inbox.example.net"]
CARD_BRANDS = ["visa", "mastercard", "amex", "discover"]
