"""The emissions methodology as pure functions (docs/methodology.md says the same in words).

No I/O here: distances, the diesel-van baseline of a consignment, the carrier's
depot -> hub trips, the allocation of a shared route to the consignments on it, and the
month boundaries in a city's time zone. Distances are kept in whole metres and energy in
whole watt-hours so that sums in SQL are exact and independent of row order (a rebuilt
projection must give a byte-identical report).
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


def nearest_neighbour_order(start: Point, stops: Sequence[Point]) -> list[int]:
    """Visiting order of ``stops`` from ``start``: always the nearest unvisited stop next
    (ties by input position, so the order is deterministic)."""
    remaining = list(range(len(stops)))
    order: list[int] = []
    here = start
    while remaining:
        best = min(remaining, key=lambda i: (great_circle_km(here, stops[i]), i))
        order.append(best)
        remaining.remove(best)
        here = stops[best]
    return order


def trips_needed(
    weight_kg: float, volume_m3: float, payload_kg: float, volume_cap_m3: float
) -> int:
    """As many van trips as the van's payload and load volume require (at least one)."""
    if payload_kg <= 0 or volume_cap_m3 <= 0:
        raise ValueError("a van's payload and load volume must be positive")
    # a tiny tolerance so that 1000.0000001 kg due to float noise is not a second trip
    by_weight = math.ceil(weight_kg / payload_kg - 1e-9)
    by_volume = math.ceil(volume_m3 / volume_cap_m3 - 1e-9)
    return max(1, by_weight, by_volume)


@dataclass(frozen=True)
class Baseline:
    """The consignment delivered directly from the carrier's depot by diesel van."""

    trips: int
    metres: int


def baseline_tours(depot: Point, stops: Sequence[Point], trips: int) -> list[list[int]]:
    """Which stops each baseline trip visits.

    The stops are put in nearest-neighbour order from the depot and cut into ``trips``
    contiguous groups of (almost) equal size; when a consignment needs more trips than it
    has stops, trip k serves group k mod m again (a full van load to the same place)."""
    order = nearest_neighbour_order(depot, stops)
    m = len(order)
    groups = min(trips, m)
    cut = [order[(g * m) // groups : ((g + 1) * m) // groups] for g in range(groups)]
    return [cut[k % groups] for k in range(trips)]


def tour_km(start: Point, visits: Sequence[Point], circuity: float) -> float:
    """start -> visits in the given order -> start, in road km."""
    km = 0.0
    here = start
    for p in visits:
        km += road_km(here, p, circuity)
        here = p
    return km + road_km(here, start, circuity)


def baseline(
    *,
    depot: Point,
    stops: Sequence[Point],
    weight_kg: float,
    volume_m3: float,
    payload_kg: float,
    volume_cap_m3: float,
    circuity: float,
) -> Baseline:
    if not stops:
        raise ValueError("a consignment has at least one stop")
    trips = trips_needed(weight_kg, volume_m3, payload_kg, volume_cap_m3)
    km = sum(
        tour_km(depot, [stops[i] for i in tour], circuity)
        for tour in baseline_tours(depot, stops, trips)
    )
    return Baseline(trips=trips, metres=round(km * 1000))


def trunk(
    *,
    depot: Point,
    hub: Point,
    weight_kg: float,
    volume_m3: float,
    payload_kg: float,
    volume_cap_m3: float,
    circuity: float,
) -> Baseline:
    """The carrier's own vehicle (a diesel van, like the baseline) driving depot -> hub ->
    depot as often as its capacity requires."""
    trips = trips_needed(weight_kg, volume_m3, payload_kg, volume_cap_m3)
    return Baseline(trips=trips, metres=round(trips * 2 * road_km(depot, hub, circuity) * 1000))


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
    """The factor values one city's report uses (see factors.py for where they come from)."""

    diesel_wtw_kg_per_l: float
    diesel_l_per_100km: float
    nox_g_per_km: float
    pm25_g_per_km: float
    grid_g_per_kwh: float
    charging_loss_factor: float
    kwh_per_km: dict[str, float]


def diesel_kgco2e(km: float, p: EmissionParameters) -> float:
    return km * p.diesel_l_per_100km / 100.0 * p.diesel_wtw_kg_per_l


def electricity_kwh(
    *, modelled_km: float, measured_battery_kwh: float, vehicle_type: str, p: EmissionParameters
) -> float:
    """kWh drawn from the grid: distance x kWh/km (already at the charger) for routes without
    telemetry, measured battery kWh x charging losses for routes with it."""
    return modelled_km * p.kwh_per_km[vehicle_type] + measured_battery_kwh * p.charging_loss_factor


def electricity_kgco2e(kwh: float, p: EmissionParameters) -> float:
    return kwh * p.grid_g_per_kwh / 1000.0


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
