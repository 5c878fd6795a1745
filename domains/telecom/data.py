"""Static word lists and catalogues for the telecom generator.

Kept apart from `generate.py` so the generator reads as the rules of the world and this file
as its vocabulary. Everything here is made up for this project.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Aaliyah", "Adrian", "Aisha", "Alejandro", "Amara", "Amelia", "Andre", "Anika", "Arjun",
    "Beatriz", "Benjamin", "Bianca", "Caleb", "Camila", "Carlos", "Chen", "Chloe", "Daniel",
    "Daria", "Deepak", "Elena", "Elijah", "Emeka", "Emma", "Farah", "Felix", "Fiona",
    "Gabriel", "Grace", "Hana", "Hassan", "Ingrid", "Isaac", "Isabella", "Jamal", "Javier",
    "Jin", "Julia", "Kai", "Keiko", "Kofi", "Laila", "Leon", "Lucas", "Lucia", "Maya",
    "Mateo", "Mei", "Mohammed", "Nadia", "Naomi", "Nikolai", "Noah", "Olivia", "Omar",
    "Priya", "Quinn", "Rafael", "Rania", "Rosa", "Samuel", "Sara", "Sofia", "Tariq",
    "Thomas", "Valentina", "Victor", "Wei", "Yara", "Yusuf", "Zara", "Zoe",
)

LAST_NAMES: tuple[str, ...] = (
    "Abara", "Alvarez", "Andersen", "Baker", "Banerjee", "Becker", "Brooks", "Castillo",
    "Chen", "Costa", "Dubois", "Edwards", "Fischer", "Garcia", "Gonzalez", "Gupta", "Hansen",
    "Hernandez", "Ito", "Jackson", "Johansson", "Kim", "Kowalski", "Kumar", "Larsen", "Lee",
    "Lopez", "Martin", "Mensah", "Moreau", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor",
    "Olsen", "Patel", "Petrov", "Quinn", "Ramirez", "Reyes", "Rossi", "Sato", "Schmidt",
    "Silva", "Singh", "Sullivan", "Tanaka", "Thompson", "Torres", "Vasquez", "Wagner",
    "Walker", "Wang", "Williams", "Yamamoto", "Young", "Zhang",
)

STREET_NAMES: tuple[str, ...] = (
    "Maple Avenue", "Oak Street", "Cedar Lane", "Elm Drive", "Pine Road", "Lakeview Terrace",
    "Hillcrest Boulevard", "River Road", "Sunset Way", "Willow Court", "Park Place",
    "Highland Avenue", "Chestnut Street", "Birch Circle", "Meadow Lane", "Harbor View",
    "Spring Street", "Ridge Road", "Orchard Way", "Mill Street",
)

# (city, state, zip prefix, area codes)
CITIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Austin", "TX", "787", ("512", "737")),
    ("Denver", "CO", "802", ("303", "720")),
    ("Seattle", "WA", "981", ("206",)),
    ("Chicago", "IL", "606", ("312", "773")),
    ("Boston", "MA", "021", ("617", "857")),
    ("Atlanta", "GA", "303", ("404", "678")),
    ("Phoenix", "AZ", "850", ("602", "480")),
    ("Portland", "OR", "972", ("503", "971")),
    ("Miami", "FL", "331", ("305", "786")),
    ("Minneapolis", "MN", "554", ("612",)),
    ("San Diego", "CA", "921", ("619", "858")),
    ("Nashville", "TN", "372", ("615",)),
    ("Columbus", "OH", "432", ("614",)),
    ("Raleigh", "NC", "276", ("919",)),
)

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "mail.example.org", "inbox.example.net")

# (plan id, name, data limit GB, monthly price, refuel price per GB)
PLANS: tuple[tuple[str, str, float, float, float], ...] = (
    ("P1001", "Basic Talk & Text 2GB", 2.0, 25.0, 10.0),
    ("P1002", "Everyday 10GB", 10.0, 40.0, 8.0),
    ("P1003", "Plus 25GB", 25.0, 55.0, 6.0),
    ("P1004", "Family Share 50GB", 50.0, 90.0, 5.0),
    ("P1005", "Premium 100GB", 100.0, 75.0, 4.0),
    ("P1006", "Connected Device 5GB", 5.0, 15.0, 7.0),
    ("P1007", "Senior Saver 5GB", 5.0, 30.0, 9.0),
)
CONNECTED_DEVICE_PLAN = "P1006"

# (device type, model, eSIM capable)
DEVICE_MODELS: tuple[tuple[str, str, bool], ...] = (
    ("phone", "Pixel 8", True),
    ("phone", "Pixel 7a", True),
    ("phone", "iPhone 15", True),
    ("phone", "iPhone 13 mini", True),
    ("phone", "iPhone SE (2nd gen)", False),
    ("phone", "Galaxy S24", True),
    ("phone", "Galaxy A15", False),
    ("phone", "Moto G Power", False),
    ("phone", "Nokia G42", False),
    ("phone", "OnePlus 12", True),
)
CONNECTED_MODELS: tuple[tuple[str, str, bool], ...] = (
    ("tablet", "iPad Air (5th gen)", True),
    ("tablet", "Galaxy Tab S9", True),
    ("watch", "Apple Watch Series 9", True),
    ("watch", "Galaxy Watch 6", True),
    ("router", "NetGo 5G Hotspot", False),
    ("other", "TrackIt GPS Tag", False),
)
