"""The emissions methodology as pure functions (docs/methodology.md says the same in words).

No I/O here: distances, the allocation of a shared route to the consignments on it, the
formulas that turn distances and energy into CO2e, and the month boundaries in a city's
time zone (the baseline's van tours are in tours.py, the city boundary in geo.py).
Distances are kept in whole metres and energy in whole watt-hours so that sums in SQL are
exact and independent of row order (a rebuilt projection must give a byte-identical
report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

DIESEL_VEHICLES = frozenset({"diesel_van"})
ELECTRIC_VEHICLES = frozenset({"e_cargo_bike", "e_trike", "e_van"})


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def great_circle_km(a: Point, b: Point) -> float:
    """Haversine distance on the mean Earth sphere."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def road_km(a: Point, b: Point, circuity: float) -> float:
    return great_circle_km(a, b) * circuity


def trips_needed(
    weight_kg: float, volume_m3: float, payload_kg: float, volume_cap_m3: float
) -> int:
    """As many trips as a vehicle's payload and load volume require (at least one)."""
    if payload_kg <= 0 or volume_cap_m3 <= 0:
        raise ValueError("a van's payload and load volume must be positive")
    # a tiny tolerance so that 1000.0000001 kg due to float noise is not a second trip
    by_weight = math.ceil(weight_kg / payload_kg - 1e-9)
    by_volume = math.ceil(volume_m3 / volume_cap_m3 - 1e-9)
    return max(1, by_weight, by_volume)


# --- allocation of a shared route ------------------------------------------------------------


@dataclass(frozen=True)
class StopLoad:
    booking_id: str
    location: Point
    weight_kg: float


def allocation_shares(hub: Point, stops: Sequence[StopLoad], circuity: float) -> dict[str, float]:
    """ISO 14083 / GLEC allocation of one route's emissions to the consignments on it by
    transport activity: each consignment's share is sum(weight x distance hub -> stop) of its
    stops over the route's total. When that total is zero (weightless parcels, stops at the
    hub) the shares fall back to the number of stops. The shares sum to 1."""
    if not stops:
        raise ValueError("a route has at least one stop")
    activity: dict[str, float] = {}
    counts: dict[str, int] = {}
    for s in stops:
        d = road_km(hub, s.location, circuity)
        activity[s.booking_id] = activity.get(s.booking_id, 0.0) + max(0.0, s.weight_kg) * d
        counts[s.booking_id] = counts.get(s.booking_id, 0) + 1
    total = sum(activity.values())
    if total <= 0:
        n = sum(counts.values())
        return {b: c / n for b, c in sorted(counts.items())}
    return {b: a / total for b, a in sorted(activity.items())}


def apportion(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Split an integer (metres, watt-hours) by ``shares`` with the largest-remainder method,
    so that the parts are whole numbers that add up to ``total`` exactly."""
    if total < 0:
        raise ValueError("cannot apportion a negative quantity")
    keys = sorted(shares)
    weight = sum(shares[k] for k in keys)
    if not keys:
        return {}
    if weight <= 0:
        shares = {k: 1.0 for k in keys}
        weight = float(len(keys))
    exact = {k: total * shares[k] / weight for k in keys}
    parts = {k: math.floor(exact[k]) for k in keys}
    left = total - sum(parts.values())
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - parts[k]), k))
    for k in by_remainder[:left]:
        parts[k] += 1
    return parts


# --- emissions from physical quantities --------------------------------------------------------


@dataclass(frozen=True)
class EmissionParameters:
    """The factor values one city's report uses (factors.py says where they come from)."""

    circuity: float
    diesel_ttw_kg_per_l: float
    diesel_wtt_kg_per_l: float
    diesel_l_per_100km: float  # the baseline van and the hubs' own diesel vans
    trunk_l_per_100km: dict[str, float]  # per carrier: its depot -> hub vehicle
    grid_location_g_per_kwh: float  # per kWh generated (lifecycle)
    grid_market_g_per_kwh: float
    grid_loss_share: float  # transmission and distribution losses
    charging_loss_factor: float  # kWh from the grid per kWh into the battery
    battery_kwh_per_km: dict[str, float]  # per electric vehicle type
    hub_kwh_per_day: dict[str, float]  # per hub, when it reports no meter reading
    nox_g_per_km: float
    pm25_g_per_km: float

    def grid_kg_per_kwh(self, generation_g_per_kwh: float | None = None) -> float:
        """kg CO2e per kWh at the meter: generation intensity / (1 - grid losses)."""
        g = self.grid_location_g_per_kwh if generation_g_per_kwh is None else generation_g_per_kwh
        return g / (1.0 - self.grid_loss_share) / 1000.0


@dataclass(frozen=True)
class Emissions:
    """Tank-to-wheel and well-to-tank kg CO2e; well-to-wheel is their sum."""

    ttw: float = 0.0
    wtt: float = 0.0

    @property
    def wtw(self) -> float:
        return self.ttw + self.wtt

    def __add__(self, other: Emissions) -> Emissions:
        return Emissions(self.ttw + other.ttw, self.wtt + other.wtt)

    def scaled(self, k: float) -> Emissions:
        return Emissions(self.ttw * k, self.wtt * k)


def diesel_emissions(km: float, l_per_100km: float, p: EmissionParameters) -> Emissions:
    litres = km * l_per_100km / 100.0
    return Emissions(litres * p.diesel_ttw_kg_per_l, litres * p.diesel_wtt_kg_per_l)


def electricity_emissions(kwh: float, p: EmissionParameters) -> Emissions:
    """Electricity has no tank-to-wheel emissions: all of it is well-to-tank (generation,
    upstream, grid losses), the GLEC/ISO 14083 convention."""
    return Emissions(0.0, kwh * p.grid_kg_per_kwh())


def charged_kwh(
    *, modelled_km: float, measured_battery_kwh: float, vehicle_type: str, p: EmissionParameters
) -> float:
    """kWh drawn from the grid: (km x battery kWh/km for routes without telemetry +
    measured battery kWh) x charging losses. One place for this formula."""
    battery = modelled_km * p.battery_kwh_per_km[vehicle_type] + measured_battery_kwh
    return battery * p.charging_loss_factor


# --- calendar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthWindow:
    month: str
    timezone: str
    start: datetime  # local midnight of the 1st, aware
    end: datetime  # local midnight of the next month's 1st, aware
    days: tuple[tuple[str, int, int], ...]  # (YYYY-MM-DD, start ms UTC, end ms UTC)

    @property
    def start_ms(self) -> int:
        return self.days[0][1]

    @property
    def end_ms(self) -> int:
        return self.days[-1][2]


def parse_month(text: str) -> tuple[int, int]:
    try:
        year_s, month_s = text.split("-")
        if len(year_s) != 4 or len(month_s) != 2:
            raise ValueError
        year, month = int(year_s), int(month_s)
        date(year, month, 1)
    except ValueError:
        raise ValueError(f"month {text!r} is not a month in the form YYYY-MM") from None
    return year, month


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return round(moment.timestamp() * 1000)


def month_window(month: str, timezone: str) -> MonthWindow:
    """The month's days as UTC millisecond ranges, with boundaries at local midnight (DST
    days are 23 or 25 hours long)."""
    year, mon = parse_month(month)
    tz = ZoneInfo(timezone)
    first = date(year, mon, 1)
    nxt = date(year + (mon == 12), mon % 12 + 1, 1)
    days = []
    day = first
    while day < nxt:
        following = day + timedelta(days=1)
        lo = datetime(day.year, day.month, day.day, tzinfo=tz)
        hi = datetime(following.year, following.month, following.day, tzinfo=tz)
        days.append((day.isoformat(), to_ms(lo), to_ms(hi)))
        day = following
    return MonthWindow(
        month=f"{year:04d}-{mon:02d}",
        timezone=timezone,
        start=datetime(first.year, first.month, 1, tzinfo=tz),
        end=datetime(nxt.year, nxt.month, 1, tzinfo=tz),
        days=tuple(days),
    )


# A route planned on the last evening completes after midnight and moves into the next
# month; two days after the end no event is expected to change the month any more.
CLOSING_GRACE = timedelta(days=2)


def month_is_closed(window: MonthWindow, now: datetime | None = None) -> bool:
    """Only the label uses the wall clock: the figures never do."""
    return (now or datetime.now(UTC)) >= window.end + CLOSING_GRACE
