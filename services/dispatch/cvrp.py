"""The wave as a capacitated vehicle-routing problem (pure: no I/O, no clock): what both
planners read and return, the distance model, the integer model they check limits in,
and ``check_plan``, which checks a plan against the limits in real units.

Apart from the planners (solver.py and pyvrp_model.py: PyVRP and ``plan_wave``;
greedy.py: the fallback) so that both can use it without importing each other; ``solver`` re-exports its public
names, the way callers have always imported them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

EARTH_RADIUS_KM = 6371.0088
DEFAULT_CIRCUITY = 1.3


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


DELIVERY = "delivery"
PICKUP = "pickup"  # collected at the address, brought back to the hub for the carrier


@dataclass(frozen=True)
class StopDemand:
    key: str  # unique within the wave (booking id + stop id)
    location: Point
    parcels: int
    weight_kg: float
    volume_m3: float
    kind: str = DELIVERY  # DELIVERY or PICKUP
    # minutes after the wave's time within which service must start (None: any time)
    window: tuple[float, float] | None = None
    vehicle: str | None = None  # pinned by the dispatcher: only this vehicle may serve it


@dataclass(frozen=True)
class VehicleSpec:
    vehicle_id: str
    capacity_parcels: int
    capacity_kg: float
    capacity_m3: float
    range_km: float  # what the battery allows now (usable range x charge)
    speed_kmh: float
    available_min: float  # minutes until the end of its shift, from the wave's time
    max_trips: int = 1  # trips from the hub within the wave (reloading between them)


@dataclass(frozen=True)
class WaveInstance:
    depot: Point
    stops: Sequence[StopDemand]
    vehicles: Sequence[VehicleSpec]
    circuity: float = DEFAULT_CIRCUITY
    service_min_per_stop: float = 4.0
    # minutes at the hub before every trip: loading, and between trips reloading and
    # recharging (the range is the battery at departure for all trips: a recharge on the
    # way is not counted on, so the plan never relies on it)
    load_min_per_trip: float = 0.0


@dataclass(frozen=True)
class PlannedRoute:
    vehicle_id: str
    stop_keys: tuple[str, ...]  # every trip's stops, in driving order
    km: float
    duration_min: float
    parcels: int
    weight_kg: float
    volume_m3: float
    # the trips (each from the hub and back); empty: one trip with every stop
    trips: tuple[tuple[str, ...], ...] = ()
    # minutes after the wave's time at which service starts at each stop (stop_keys order)
    etas_min: tuple[float, ...] = ()

    @property
    def trip_list(self) -> tuple[tuple[str, ...], ...]:
        return self.trips or (self.stop_keys,)


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

NO_LATER_THAN_S = 10**9  # an open time window, in the integer model


@dataclass(frozen=True)
class _Model:
    """The instance in the integer units every planner checks limits in: seconds from
    the wave's time, metres, 100 g, litres; rounded against the vehicle (demands,
    distances, durations and earliest starts up; capacities, range, shift and latest
    starts down), so a plan that holds here holds in real units too."""

    points: list[Point]  # 0 = depot, i = stops[i - 1]
    dist_m: list[list[int]]  # rounded up
    parcels: list[int]
    dg: list[int]  # demand, 100 g units, rounded up
    dl: list[int]  # demand, litres, rounded up
    pickup: list[bool]  # collected (True) or delivered (False)
    service_s: list[int]
    tw_early_s: list[int]  # service may start from ... (0: now)
    tw_late_s: list[int]  # ... until (NO_LATER_THAN_S: open)
    vehicles: list[VehicleSpec]
    cap_parcels: list[int]
    cap_dg: list[int]  # rounded down
    cap_l: list[int]
    range_m: list[int]
    shift_s: list[int]
    speed_mps: list[float]
    max_trips: list[int]
    load_s: int  # at the hub before every trip
    pinned: list[int | None]  # the vehicle (index) a stop is pinned to, if any

    def may_serve(self, v: int, i: int) -> bool:
        return self.pinned[i] is None or self.pinned[i] == v

    def drive_s(self, v: int, i: int, j: int) -> int:
        return math.ceil(self.dist_m[i][j] / self.speed_mps[v])

    def travel_s(self, v: int, i: int, j: int) -> int:
        return self.drive_s(v, i, j) + self.service_s[i]

    def demand(self, i: int) -> tuple[int, int, int]:
        return self.parcels[i], self.dg[i], self.dl[i]

    def capacity(self, v: int) -> tuple[int, int, int]:
        return self.cap_parcels[v], self.cap_dg[v], self.cap_l[v]


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
    index = {v.vehicle_id: i for i, v in enumerate(vs)}
    return _Model(
        points=points,
        dist_m=dist,
        parcels=[0, *(s.parcels for s in stops)],
        dg=[0, *(math.ceil(round(s.weight_kg * 10, 6)) for s in stops)],
        dl=[0, *(math.ceil(round(s.volume_m3 * 1000, 6)) for s in stops)],
        pickup=[False, *(s.kind == PICKUP for s in stops)],
        service_s=[0] + [service] * len(stops),
        tw_early_s=[
            0,
            *(max(0, math.ceil(round(s.window[0] * 60, 6))) if s.window else 0 for s in stops),
        ],
        tw_late_s=[
            NO_LATER_THAN_S,
            *(
                math.floor(round(s.window[1] * 60, 6)) if s.window else NO_LATER_THAN_S
                for s in stops
            ),
        ],
        vehicles=vs,
        cap_parcels=[v.capacity_parcels for v in vs],
        cap_dg=[math.floor(round(v.capacity_kg * 10, 6)) for v in vs],
        cap_l=[math.floor(round(v.capacity_m3 * 1000, 6)) for v in vs],
        range_m=[max(0, math.floor(v.range_km * 1000)) for v in vs],
        shift_s=[max(0, math.floor(v.available_min * 60)) for v in vs],
        speed_mps=[v.speed_kmh / 3.6 for v in vs],
        max_trips=[max(1, v.max_trips) for v in vs],
        load_s=math.ceil(round(instance.load_min_per_trip * 60, 6)),
        pinned=[None, *(index.get(s.vehicle) if s.vehicle else None for s in stops)],
    )


# -------------------------------------------------------------------- real schedule ---


@dataclass(frozen=True)
class Timeline:
    """A vehicle's trips driven in real units: when service starts at each stop (minutes
    after the wave's time, in driving order), the kilometres, when it is back for good,
    and the highest load of each trip (parcels, kg, m³) with pickups on board."""

    etas_min: tuple[float, ...]
    km: float
    minutes: float
    peak_loads: tuple[tuple[int, float, float], ...]
    late: tuple[str, ...]  # stops reached after their window closed


def timeline(
    instance: WaveInstance, vehicle: VehicleSpec, trips: Sequence[Sequence[StopDemand]]
) -> Timeline:
    """Drive ``trips`` (each from the hub and back, after ``load_min_per_trip`` at the
    hub) at the vehicle's speed; service starts no earlier than a stop's window opens
    (the vehicle waits). A delivery is on board from the hub to its stop, a pickup from
    its stop back to the hub."""
    t = 0.0
    km = 0.0
    etas: list[float] = []
    peaks: list[tuple[int, float, float]] = []
    late: list[str] = []
    for trip in trips:
        if not trip:
            continue
        t += instance.load_min_per_trip
        out = [s for s in trip if s.kind != PICKUP]
        load = [
            sum(s.parcels for s in out),
            sum(s.weight_kg for s in out),
            sum(s.volume_m3 for s in out),
        ]
        peak = list(load)
        here = instance.depot
        for stop in trip:
            d = road_km(here, stop.location, instance.circuity)
            km += d
            t += d / vehicle.speed_kmh * 60
            if stop.window is not None:
                if t > stop.window[1] + 1e-6:
                    late.append(stop.key)
                t = max(t, stop.window[0])
            etas.append(t)
            t += instance.service_min_per_stop
            sign = 1 if stop.kind == PICKUP else -1
            load = [
                load[0] + sign * stop.parcels,
                load[1] + sign * stop.weight_kg,
                load[2] + sign * stop.volume_m3,
            ]
            peak = [max(a, b) for a, b in zip(peak, load, strict=True)]
            here = stop.location
        d = road_km(here, instance.depot, instance.circuity)
        km += d
        t += d / vehicle.speed_kmh * 60
        peaks.append((int(peak[0]), peak[1], peak[2]))
    return Timeline(tuple(etas), km, t, tuple(peaks), tuple(late))


# ------------------------------------------------------------------------ plan check ---


def check_plan(instance: WaveInstance, plan: Plan) -> list[str]:
    """Every limit a plan breaks, in real units (empty when it breaks none): for tests,
    the benchmark and a last guard before a plan is published. Capacity holds on every
    trip at every point (pickups on board), range over all trips, the shift until the
    vehicle is back for good, and every stop's time window."""
    problems: list[str] = []
    by_key = {s.key: s for s in instance.stops}
    vehicles = {v.vehicle_id: v for v in instance.vehicles}
    seen: set[str] = set()
    eps = 1e-6
    for route in plan.routes:
        v = vehicles[route.vehicle_id]
        trips = route.trip_list
        if [k for trip in trips for k in trip] != list(route.stop_keys):
            problems.append(f"{v.vehicle_id}: trips do not add up to its stops")
        if len(trips) > max(1, v.max_trips):
            problems.append(f"{v.vehicle_id}: {len(trips)} trips, at most {v.max_trips}")
        for key in route.stop_keys:
            if key in seen:
                problems.append(f"stop {key} planned twice")
            seen.add(key)
            pinned = by_key[key].vehicle
            if pinned is not None and pinned != v.vehicle_id:
                problems.append(f"stop {key} is pinned to {pinned}, planned on {v.vehicle_id}")
        line = timeline(instance, v, [[by_key[k] for k in trip] for trip in trips])
        for peak in line.peak_loads:
            if peak[0] > v.capacity_parcels:
                problems.append(f"{v.vehicle_id}: too many parcels")
            if peak[1] > v.capacity_kg + eps:
                problems.append(f"{v.vehicle_id}: overweight")
            if peak[2] > v.capacity_m3 + eps:
                problems.append(f"{v.vehicle_id}: over volume")
        if line.km > v.range_km + eps:
            problems.append(f"{v.vehicle_id}: {line.km:.2f} km beyond range {v.range_km:.2f} km")
        if line.minutes > v.available_min + eps:
            problems.append(
                f"{v.vehicle_id}: {line.minutes:.1f} min past shift end ({v.available_min:.1f} min)"
            )
        for key in line.late:
            problems.append(f"{v.vehicle_id}: stop {key} reached after its window closed")
    unserved = {u.key for u in plan.unserved}
    if seen & unserved:
        problems.append(f"stops both planned and unserved: {sorted(seen & unserved)}")
    if seen | unserved != set(by_key):
        problems.append("some stops are neither planned nor reported unserved")
    return problems
