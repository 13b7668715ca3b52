"""The wave as a capacitated vehicle-routing problem (pure: no I/O, no clock): what both
planners read and return, the distance model, the integer model they check limits in,
and ``check_plan``, which checks a plan against the limits in real units.

Apart from the planners (solver.py: OR-Tools and ``plan_wave``; greedy.py: the fallback)
so that both can use it without importing each other; ``solver`` re-exports its public
names, the way callers have always imported them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

EARTH_RADIUS_KM = 6371.0088
DEFAULT_CIRCUITY = 1.3


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


@dataclass(frozen=True)
class StopDemand:
    key: str  # unique within the wave (booking id + stop id)
    location: Point
    parcels: int
    weight_kg: float
    volume_m3: float


@dataclass(frozen=True)
class VehicleSpec:
    vehicle_id: str
    capacity_parcels: int
    capacity_kg: float
    capacity_m3: float
    range_km: float  # what the battery allows now (usable range x charge)
    speed_kmh: float
    available_min: float  # minutes until the end of its shift, from the wave's time


@dataclass(frozen=True)
class WaveInstance:
    depot: Point
    stops: Sequence[StopDemand]
    vehicles: Sequence[VehicleSpec]
    circuity: float = DEFAULT_CIRCUITY
    service_min_per_stop: float = 4.0


@dataclass(frozen=True)
class PlannedRoute:
    vehicle_id: str
    stop_keys: tuple[str, ...]
    km: float
    duration_min: float
    parcels: int
    weight_kg: float
    volume_m3: float


@dataclass(frozen=True)
class Unserved:
    key: str
    code: str  # too_heavy, too_large, too_many_parcels, beyond_range, past_shift_end, ...
    message: str


@dataclass
class Plan:
    routes: list[PlannedRoute]
    unserved: list[Unserved]
    solver: str
    objective: float  # total planned km (+ penalties for stops left over, in km)
    notes: list[str] = field(default_factory=list)

    @property
    def total_km(self) -> float:
        return sum(r.km for r in self.routes)


def haversine_km(a: Point, b: Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def road_km(a: Point, b: Point, circuity: float = DEFAULT_CIRCUITY) -> float:
    """Road distance estimate: great-circle distance times the city's circuity factor."""
    return haversine_km(a, b) * circuity


# --------------------------------------------------------------------- integer model ---


@dataclass(frozen=True)
class _Model:
    """The instance in the integer units both planners check limits in."""

    points: list[Point]  # 0 = depot, i = stops[i - 1]
    dist_m: list[list[int]]  # rounded up
    parcels: list[int]
    dg: list[int]  # demand, 100 g units, rounded up
    dl: list[int]  # demand, litres, rounded up
    service_s: list[int]
    vehicles: list[VehicleSpec]
    cap_parcels: list[int]
    cap_dg: list[int]  # rounded down
    cap_l: list[int]
    range_m: list[int]
    shift_s: list[int]
    speed_mps: list[float]

    def travel_s(self, v: int, i: int, j: int) -> int:
        return math.ceil(self.dist_m[i][j] / self.speed_mps[v]) + self.service_s[i]


def _build(instance: WaveInstance, stops: Sequence[StopDemand]) -> _Model:
    points = [instance.depot, *(s.location for s in stops)]
    n = len(points)
    dist = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d = math.ceil(road_km(points[i], points[j], instance.circuity) * 1000)
            dist[i][j] = dist[j][i] = d
    service = math.ceil(instance.service_min_per_stop * 60)
    vs = list(instance.vehicles)
    return _Model(
        points=points,
        dist_m=dist,
        parcels=[0, *(s.parcels for s in stops)],
        dg=[0, *(math.ceil(round(s.weight_kg * 10, 6)) for s in stops)],
        dl=[0, *(math.ceil(round(s.volume_m3 * 1000, 6)) for s in stops)],
        service_s=[0] + [service] * len(stops),
        vehicles=vs,
        cap_parcels=[v.capacity_parcels for v in vs],
        cap_dg=[math.floor(round(v.capacity_kg * 10, 6)) for v in vs],
        cap_l=[math.floor(round(v.capacity_m3 * 1000, 6)) for v in vs],
        range_m=[max(0, math.floor(v.range_km * 1000)) for v in vs],
        shift_s=[max(0, math.floor(v.available_min * 60)) for v in vs],
        speed_mps=[v.speed_kmh / 3.6 for v in vs],
    )


# ------------------------------------------------------------------------ plan check ---


def check_plan(instance: WaveInstance, plan: Plan) -> list[str]:
    """Every limit a plan breaks, in real units (empty when it breaks none): for tests,
    the benchmark and a last guard before a plan is published."""
    problems: list[str] = []
    by_key = {s.key: s for s in instance.stops}
    vehicles = {v.vehicle_id: v for v in instance.vehicles}
    seen: set[str] = set()
    eps = 1e-6
    for route in plan.routes:
        v = vehicles[route.vehicle_id]
        stops = [by_key[k] for k in route.stop_keys]
        for key in route.stop_keys:
            if key in seen:
                problems.append(f"stop {key} planned twice")
            seen.add(key)
        if sum(s.parcels for s in stops) > v.capacity_parcels:
            problems.append(f"{v.vehicle_id}: too many parcels")
        if sum(s.weight_kg for s in stops) > v.capacity_kg + eps:
            problems.append(f"{v.vehicle_id}: overweight")
        if sum(s.volume_m3 for s in stops) > v.capacity_m3 + eps:
            problems.append(f"{v.vehicle_id}: over volume")
        path = [instance.depot, *(s.location for s in stops), instance.depot]
        km = sum(road_km(a, b, instance.circuity) for a, b in itertools.pairwise(path))
        if km > v.range_km + eps:
            problems.append(f"{v.vehicle_id}: {km:.2f} km beyond range {v.range_km:.2f} km")
        minutes = km / v.speed_kmh * 60 + len(stops) * instance.service_min_per_stop
        if minutes > v.available_min + eps:
            problems.append(
                f"{v.vehicle_id}: {minutes:.1f} min past shift end ({v.available_min:.1f} min)"
            )
    unserved = {u.key for u in plan.unserved}
    if seen & unserved:
        problems.append(f"stops both planned and unserved: {sorted(seen & unserved)}")
    if seen | unserved != set(by_key):
        problems.append("some stops are neither planned nor reported unserved")
    return problems
