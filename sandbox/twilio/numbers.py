"""Phone numbers the emulator offers for sale (AvailablePhoneNumbers ``Local``).

Numbers are made up, deterministically: the same seed, country and area code offer the same
candidates, minus the ones already bought. Only NANP countries (US, CA) have local numbers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from sandbox.twilio.wire import friendly_name

#: A phone number in E.164, as Twilio wants To, From and bought numbers.
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(frozen=True, slots=True)
class Locality:
    """Where an area code is, as AvailablePhoneNumbers describes it."""

    locality: str
    region: str
    postal_code: str
    latitude: float
    longitude: float
    rate_center: str
    lata: str


AREA_CODES: dict[str, dict[str, Locality]] = {
    "US": {
        "206": Locality("Seattle", "WA", "98101", 47.61, -122.33, "SEATTLE", "674"),
        "212": Locality("New York", "NY", "10001", 40.75, -73.99, "NWYRCYZN01", "132"),
        "303": Locality("Denver", "CO", "80202", 39.75, -104.99, "DENVER", "656"),
        "312": Locality("Chicago", "IL", "60601", 41.88, -87.62, "CHICAGO", "358"),
        "404": Locality("Atlanta", "GA", "30303", 33.75, -84.39, "ATLANTA", "438"),
        "415": Locality("San Francisco", "CA", "94103", 37.77, -122.41, "SNFC CNTRL", "722"),
        "512": Locality("Austin", "TX", "78701", 30.27, -97.74, "AUSTIN", "558"),
        "617": Locality("Boston", "MA", "02108", 42.36, -71.06, "BOSTON", "128"),
        "808": Locality("Hilo", "HI", "96720", 19.72, -155.09, "HILO", "834"),
    },
    "CA": {
        "416": Locality("Toronto", "ON", "M5H", 43.65, -79.38, "TORONTO", "888"),
        "514": Locality("Montreal", "QC", "H2Y", 45.50, -73.57, "MONTREAL", "888"),
        "604": Locality("Vancouver", "BC", "V6B", 49.28, -123.12, "VANCOUVER", "888"),
    },
}
COUNTRY_PREFIX = {"US": "+1", "CA": "+1"}


def is_valid_area_code(value: str) -> bool:
    """NANP area codes are three digits, the first one 2-9."""
    return len(value) == 3 and value.isdigit() and value[0] in "23456789"


def offer_numbers(
    *,
    country: str,
    area_code: str | None,
    count: int,
    taken: set[str],
    seed: int | None,
) -> list[dict[str, Any]]:
    """Up to ``count`` AvailablePhoneNumber records, never one in ``taken``."""
    localities = AREA_CODES.get(country, {})
    prefix = COUNTRY_PREFIX[country]
    codes = [area_code] if area_code else sorted(localities)
    # A string seed keeps the candidates stable across processes (hash() is salted).
    rng = random.Random(f"{seed}:{country}:{area_code or '*'}")
    offered: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(count * 20):
        if len(offered) >= count:
            break
        code = codes[rng.randrange(len(codes))]
        exchange = rng.randrange(200, 1000)
        if exchange % 100 == 11:  # N11 exchanges are service codes
            continue
        number = f"{prefix}{code}{exchange:03d}{rng.randrange(10000):04d}"
        if number in taken or number in seen:
            continue
        seen.add(number)
        offered.append(_render(number, country, localities.get(code)))
    return offered


def _render(number: str, country: str, where: Locality | None) -> dict[str, Any]:
    return {
        "address_requirements": "none",
        "beta": False,
        "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
        "friendly_name": friendly_name(number),
        "iso_country": country,
        "lata": where.lata if where else None,
        "latitude": where.latitude if where else None,
        "locality": where.locality if where else None,
        "longitude": where.longitude if where else None,
        "phone_number": number,
        "postal_code": where.postal_code if where else None,
        "rate_center": where.rate_center if where else None,
        "region": where.region if where else None,
    }
