"""The baseline's van tours: how a carrier would have delivered a day's consignments
without the hub (docs/methodology.md, "Baseline", says the same in words).

Per carrier, depot and local day (or per consignment, the v1 assumption): stops too heavy
for one van get dedicated full trips, the rest are swept by angle around the depot into
tours that respect the van's payload, load volume and stops per tour, each tour is ordered
nearest-neighbour and improved by 2-opt (the hub side's routes are optimised too), and a
tour's distance is shared among its consignments by weight x distance from the depot, as
the hub side shares a route. Distances are great-circle metres: the circuity factor is
applied at report time, so a change of it needs no recomputation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.reporting.domain import Point, apportion, great_circle_km
from services.reporting.geo import Polygon

EPS = 1e-9


@dataclass(frozen=True)
class Van:
    payload_kg: float
    volume_m3: float
    max_stops: int


@dataclass(frozen=True)
class Shipment:
    """One consignment as the baseline sees it."""

    booking_id: str
    depot: Point
    weight_kg: float
    volume_m3: float
    parcel_count: int
    stops: tuple[tuple[str, Point, int], ...]  # (stop id, location, parcels)


@dataclass
class TourShare:
    """What a consignment's part of the van tours adds up to (exact integers)."""

    gc_m: int = 0  # great-circle metres driven
    city_gc_m: int = 0  # of which inside the city boundary
    trips_x1000: int = 0  # van tours x 1000
    city_trips_x1000: int = 0  # tours that enter the city x 1000


@dataclass(frozen=True)
class Tour:
    depot: Point
    stops: tuple[tuple[str, Point, float], ...]  # (booking id, location, weight) in order
    km: float
    city_km: float


@dataclass
class _Load:
    booking_id: str
    stop_id: str
    location: Point
    weight_kg: float
    volume_m3: float
    dedicated: list[float] = field(default_factory=list)


def nearest_neighbour_order(start: Point, stops: Sequence[Point]) -> list[int]:
    """Visiting order from ``start``: always the nearest unvisited stop next (ties by
    input position)."""
    remaining = list(range(len(stops)))
    order: list[int] = []
    here = start
    while remaining:
        best = min(remaining, key=lambda i: (great_circle_km(here, stops[i]), i))
        order.append(best)
        remaining.remove(best)
        here = stops[best]
    return order


def two_opt(depot: Point, stops: Sequence[Point], order: list[int]) -> list[int]:
    """2-opt on the closed tour depot -> stops -> depot: scan i ascending, j ascending;
    reverse the stretch i..j whenever that shortens the tour by more than 1e-9 km and go
    on scanning; repeat passes until one changes nothing (a local optimum)."""
    path = [depot, *(stops[i] for i in order), depot]
    ids = [-1, *order, -1]
    n = len(path)

    def d(a: int, b: int) -> float:
        return great_circle_km(path[a], path[b])

    improved = True
    while improved:
        improved = False
        for i in range(1, n - 2):
            for j in range(i + 1, n - 1):
                delta = d(i - 1, j) + d(i, j + 1) - d(i - 1, i) - d(j, j + 1)
                if delta < -EPS:
                    path[i : j + 1] = path[i : j + 1][::-1]
                    ids[i : j + 1] = ids[i : j + 1][::-1]
                    improved = True
    return ids[1:-1]


def _bearing(depot: Point, p: Point) -> float:
    """Angle of p around the depot, counter-clockwise from east, in [0, 2 pi)."""
    x = (p.lon - depot.lon) * math.cos(math.radians(depot.lat))
    y = p.lat - depot.lat
    return math.atan2(y, x) % (2 * math.pi)


def sweep_order(depot: Point, loads: Sequence[_Load]) -> list[_Load]:
    """Stops by angle around the depot, starting after the widest empty angle (so that no
    cluster of stops is cut in two at an arbitrary direction); ties by distance, booking
    id, stop id."""
    keyed = sorted(
        loads,
        key=lambda s: (
            _bearing(depot, s.location),
            great_circle_km(depot, s.location),
            s.booking_id,
            s.stop_id,
        ),
    )
    if len(keyed) < 2:
        return keyed
    angles = [_bearing(depot, s.location) for s in keyed]
    gaps = [(angles[(i + 1) % len(angles)] - angles[i]) % (2 * math.pi) for i in range(len(angles))]
    start = (max(range(len(gaps)), key=lambda i: (gaps[i], -i)) + 1) % len(keyed)
    return keyed[start:] + keyed[:start]


def _loads(shipment: Shipment, van: Van) -> list[_Load]:
    """A consignment's stops with their share of its weight and volume (by parcels); a
    stop heavier than a van gets dedicated full trips and joins the sweep with the rest."""
    out = []
    for stop_id, location, parcels in shipment.stops:
        part = parcels / shipment.parcel_count
        w, v = shipment.weight_kg * part, shipment.volume_m3 * part
        fill = max(w / van.payload_kg, v / van.volume_m3)
        full = max(0, math.ceil(fill - EPS) - 1)
        rest = (fill - full) / fill if fill > 0 else 1.0
        load = _Load(shipment.booking_id, stop_id, location, w * rest, v * rest)
        load.dedicated = [1.0] * full
        out.append(load)
    return out


def _closed_km(depot: Point, points: Sequence[Point], city: Polygon | None) -> tuple[float, float]:
    km = city_km = 0.0
    legs = [depot, *points, depot]
    for a, b in itertools.pairwise(legs):
        leg = great_circle_km(a, b)
        km += leg
        if city is not None:
            city_km += leg * city.inside_share(a, b)
    return km, city_km


def plan_tours(
    depot: Point, shipments: Sequence[Shipment], van: Van, city: Polygon | None
) -> list[Tour]:
    """The van tours from one depot for these consignments (already grouped)."""
    loads = [load for s in shipments for load in _loads(s, van)]
    tours: list[Tour] = []
    for load in sorted(loads, key=lambda s: (s.booking_id, s.stop_id)):
        for _ in load.dedicated:  # a full van to this stop and back
            km, city_km = _closed_km(depot, [load.location], city)
            tours.append(
                Tour(depot, ((load.booking_id, load.location, van.payload_kg),), km, city_km)
            )
    groups: list[list[_Load]] = []
    current: list[_Load] = []
    weight = volume = 0.0
    for load in sweep_order(depot, loads):
        if current and (
            weight + load.weight_kg > van.payload_kg + EPS
            or volume + load.volume_m3 > van.volume_m3 + EPS
            or len(current) + 1 > van.max_stops
        ):
            groups.append(current)
            current, weight, volume = [], 0.0, 0.0
        current.append(load)
        weight += load.weight_kg
        volume += load.volume_m3
    if current:
        groups.append(current)
    for group in groups:
        points = [s.location for s in group]
        order = two_opt(depot, points, nearest_neighbour_order(depot, points))
        ordered = [group[i] for i in order]
        km, city_km = _closed_km(depot, [s.location for s in ordered], city)
        tours.append(
            Tour(
                depot, tuple((s.booking_id, s.location, s.weight_kg) for s in ordered), km, city_km
            )
        )
    return tours


def tour_shares(tour: Tour) -> dict[str, float]:
    """A tour's distance shared by weight x great-circle distance from the depot (by stops
    when that is zero), like a hub route is shared by weight x distance from the hub."""
    activity: dict[str, float] = {}
    counts: dict[str, int] = {}
    for booking_id, location, weight in tour.stops:
        activity[booking_id] = activity.get(booking_id, 0.0) + max(0.0, weight) * great_circle_km(
            tour.depot, location
        )
        counts[booking_id] = counts.get(booking_id, 0) + 1
    total = sum(activity.values())
    if total <= 0:
        n = sum(counts.values())
        return {b: c / n for b, c in sorted(counts.items())}
    return {b: a / total for b, a in sorted(activity.items())}


def baseline_shares(
    shipments: Sequence[Shipment], van: Van, city: Polygon | None, *, pooled: bool
) -> dict[str, TourShare]:
    """Each consignment's part of the baseline van tours: pooled per depot (a carrier-day's
    consignments share tours) or one consignment at a time."""
    by_depot: dict[tuple[float, float], list[Shipment]] = {}
    for s in sorted(shipments, key=lambda s: s.booking_id):
        by_depot.setdefault((s.depot.lat, s.depot.lon), []).append(s)
    batches: list[tuple[Point, list[Shipment]]] = []
    for (lat, lon), group in sorted(by_depot.items()):
        if pooled:
            batches.append((Point(lat, lon), group))
        else:
            batches.extend((Point(lat, lon), [one]) for one in group)
    out = {s.booking_id: TourShare() for s in shipments}
    for depot, batch in batches:
        for tour in plan_tours(depot, batch, van, city):
            shares = tour_shares(tour)
            enters = tour.city_km > 0
            for key, total in (
                ("gc_m", round(tour.km * 1000)),
                ("city_gc_m", round(tour.city_km * 1000)),
                ("trips_x1000", 1000),
                ("city_trips_x1000", 1000 if enters else 0),
            ):
                for booking_id, part in apportion(total, shares).items():
                    share = out[booking_id]
                    setattr(share, key, getattr(share, key) + part)
    return out
