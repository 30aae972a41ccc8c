"""An embedded table of real cities the simulator places users, travellers and attackers in.

Coordinates are city centroids (what a GeoIP lookup returns); `country` is the ISO 3166-1 alpha-2
code, used both for a sign-in's top-level `country` and for `location.country`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class City:
    """A city: ISO country code, region (state/province), name, centroid, and continent code."""

    country: str
    region: str
    city: str
    latitude: float
    longitude: float
    continent: str  # NA, SA, EU, AS, AF, OC

    @property
    def utc_offset_hours(self) -> int:
        """A rough local time offset from UTC (longitude / 15, rounded); good enough for diurnal cycles."""
        return round(self.longitude / 15)

    def location(self) -> dict[str, Any]:
        """The Events API `location` object for this city (a new dict each call)."""
        return {
            "country": self.country,
            "region": self.region,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
        }


CITIES: tuple[City, ...] = (
    # North America
    City("US", "California", "San Francisco", 37.7749, -122.4194, "NA"),
    City("US", "California", "Los Angeles", 34.0522, -118.2437, "NA"),
    City("US", "Washington", "Seattle", 47.6062, -122.3321, "NA"),
    City("US", "New York", "New York", 40.7128, -74.0060, "NA"),
    City("US", "Texas", "Austin", 30.2672, -97.7431, "NA"),
    City("US", "Illinois", "Chicago", 41.8781, -87.6298, "NA"),
    City("US", "Massachusetts", "Boston", 42.3601, -71.0589, "NA"),
    City("US", "Colorado", "Denver", 39.7392, -104.9903, "NA"),
    City("US", "Georgia", "Atlanta", 33.7490, -84.3880, "NA"),
    City("US", "Florida", "Miami", 25.7617, -80.1918, "NA"),
    City("CA", "Ontario", "Toronto", 43.6532, -79.3832, "NA"),
    City("CA", "British Columbia", "Vancouver", 49.2827, -123.1207, "NA"),
    City("CA", "Quebec", "Montreal", 45.5017, -73.5673, "NA"),
    City("MX", "Mexico City", "Mexico City", 19.4326, -99.1332, "NA"),
    # Europe
    City("GB", "England", "London", 51.5074, -0.1278, "EU"),
    City("GB", "England", "Manchester", 53.4808, -2.2426, "EU"),
    City("IE", "Leinster", "Dublin", 53.3498, -6.2603, "EU"),
    City("FR", "Ile-de-France", "Paris", 48.8566, 2.3522, "EU"),
    City("DE", "Berlin", "Berlin", 52.5200, 13.4050, "EU"),
    City("DE", "Bavaria", "Munich", 48.1351, 11.5820, "EU"),
    City("DE", "Hesse", "Frankfurt am Main", 50.1109, 8.6821, "EU"),
    City("NL", "North Holland", "Amsterdam", 52.3676, 4.9041, "EU"),
    City("ES", "Madrid", "Madrid", 40.4168, -3.7038, "EU"),
    City("ES", "Catalonia", "Barcelona", 41.3874, 2.1686, "EU"),
    City("PT", "Lisbon", "Lisbon", 38.7223, -9.1393, "EU"),
    City("IT", "Lombardy", "Milan", 45.4642, 9.1900, "EU"),
    City("SE", "Stockholm County", "Stockholm", 59.3293, 18.0686, "EU"),
    City("PL", "Mazovia", "Warsaw", 52.2297, 21.0122, "EU"),
    City("CH", "Zurich", "Zurich", 47.3769, 8.5417, "EU"),
    City("CZ", "Prague", "Prague", 50.0755, 14.4378, "EU"),
    City("RO", "Bucharest", "Bucharest", 44.4268, 26.1025, "EU"),
    City("UA", "Kyiv City", "Kyiv", 50.4501, 30.5234, "EU"),
    City("TR", "Istanbul", "Istanbul", 41.0082, 28.9784, "EU"),
    City("RU", "Moscow", "Moscow", 55.7558, 37.6173, "EU"),
    City("RU", "Saint Petersburg", "Saint Petersburg", 59.9311, 30.3609, "EU"),
    City("BY", "Minsk", "Minsk", 53.9006, 27.5590, "EU"),
    # Asia
    City("JP", "Tokyo", "Tokyo", 35.6762, 139.6503, "AS"),
    City("JP", "Osaka", "Osaka", 34.6937, 135.5023, "AS"),
    City("KR", "Seoul", "Seoul", 37.5665, 126.9780, "AS"),
    City("CN", "Beijing", "Beijing", 39.9042, 116.4074, "AS"),
    City("CN", "Shanghai", "Shanghai", 31.2304, 121.4737, "AS"),
    City("HK", "Hong Kong", "Hong Kong", 22.3193, 114.1694, "AS"),
    City("TW", "Taipei City", "Taipei", 25.0330, 121.5654, "AS"),
    City("SG", "Singapore", "Singapore", 1.3521, 103.8198, "AS"),
    City("IN", "Karnataka", "Bengaluru", 12.9716, 77.5946, "AS"),
    City("IN", "Maharashtra", "Mumbai", 19.0760, 72.8777, "AS"),
    City("IL", "Tel Aviv", "Tel Aviv", 32.0853, 34.7818, "AS"),
    City("AE", "Dubai", "Dubai", 25.2048, 55.2708, "AS"),
    City("ID", "Jakarta", "Jakarta", -6.2088, 106.8456, "AS"),
    City("VN", "Hanoi", "Hanoi", 21.0278, 105.8342, "AS"),
    City("PH", "Metro Manila", "Manila", 14.5995, 120.9842, "AS"),
    City("IR", "Tehran", "Tehran", 35.6892, 51.3890, "AS"),
    # South America
    City("BR", "Sao Paulo", "Sao Paulo", -23.5505, -46.6333, "SA"),
    City("BR", "Rio de Janeiro", "Rio de Janeiro", -22.9068, -43.1729, "SA"),
    City("AR", "Buenos Aires", "Buenos Aires", -34.6037, -58.3816, "SA"),
    City("CL", "Santiago Metropolitan", "Santiago", -33.4489, -70.6693, "SA"),
    City("CO", "Bogota", "Bogota", 4.7110, -74.0721, "SA"),
    City("PE", "Lima", "Lima", -12.0464, -77.0428, "SA"),
    # Africa
    City("NG", "Lagos", "Lagos", 6.5244, 3.3792, "AF"),
    City("KE", "Nairobi", "Nairobi", -1.2921, 36.8219, "AF"),
    City("ZA", "Western Cape", "Cape Town", -33.9249, 18.4241, "AF"),
    City("ZA", "Gauteng", "Johannesburg", -26.2041, 28.0473, "AF"),
    City("EG", "Cairo", "Cairo", 30.0444, 31.2357, "AF"),
    City("MA", "Casablanca-Settat", "Casablanca", 33.5731, -7.5898, "AF"),
    # Oceania
    City("AU", "New South Wales", "Sydney", -33.8688, 151.2093, "OC"),
    City("AU", "Victoria", "Melbourne", -37.8136, 144.9631, "OC"),
    City("AU", "Queensland", "Brisbane", -27.4698, 153.0251, "OC"),
    City("NZ", "Auckland", "Auckland", -36.8485, 174.7633, "OC"),
    City("NZ", "Wellington", "Wellington", -41.2865, 174.7762, "OC"),
)

_BY_NAME = {c.city: c for c in CITIES}

# Cities companies plausibly have offices in.
OFFICE_HUBS: tuple[str, ...] = (
    "San Francisco", "New York", "Seattle", "Austin", "Boston", "Toronto", "Vancouver", "London",
    "Dublin", "Berlin", "Amsterdam", "Paris", "Stockholm", "Warsaw", "Tel Aviv", "Bengaluru",
    "Singapore", "Tokyo", "Sydney", "Sao Paulo",
)  # fmt: skip
# Where brute-force and blocked sign-ins come from.
ATTACK_SOURCES: tuple[str, ...] = (
    "Moscow", "Saint Petersburg", "Minsk", "Tehran", "Beijing", "Shanghai", "Lagos", "Jakarta",
    "Hanoi", "Bucharest", "Kyiv", "Manila", "Cairo", "Hong Kong", "Sao Paulo",
)  # fmt: skip
# Where commercial VPN and Tor exit addresses geolocate.
ANONYMISER_HOSTS: tuple[str, ...] = ("Frankfurt am Main", "Amsterdam", "Stockholm", "Zurich", "Bucharest", "Prague")
# Countries an organisation's sign-in firewall typically denies.
DENY_COUNTRIES: tuple[str, ...] = ("RU", "BY", "IR")


def city(name: str) -> City:
    """The city called `name`; raises KeyError for a city not in the table."""
    return _BY_NAME[name]
