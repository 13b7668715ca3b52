"""The wave as a capacitated vehicle-routing problem (pure: no I/O, no clock): what both
planners read and return, the distance model and the integer model they check limits
in. The plan in real units (the schedule with charging and breaks, ``check_plan``) is in
schedule.py.

Apart from the planners (solver.py and pyvrp_model.py: PyVRP and ``plan_wave``;
greedy.py: the fallback) so that both can use it without importing each other; ``solver`` re-exports its public
names, the way callers have always imported them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

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
    # the battery's usable range when full (None: range_km, no recharge counted on)
    full_range_km: float | None = None
    # range recharged per minute at the hub (0: none; the battery at departure must
    # cover every trip)
    charge_km_per_min: float = 0.0
    # the driver's break: ``break_min`` once ``break_after_min`` of work since the last
    # break would be exceeded (None: no breaks); ``worked_min`` is the work since the
    # last break at the wave's time
    break_after_min: float | None = None
    break_min: float = 0.0
    worked_min: float = 0.0


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
    range_m: list[int]  # over all trips of the wave (with what recharging can add)
    battery_m: list[int]  # the battery at departure: what one trip may use without waiting
    shift_s: list[int]  # less the breaks the shift will hold
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


def _road_m(points: Sequence[Point], circuity: float) -> list[list[int]]:
    """Every pair's ``road_km`` in metres, rounded up: the same formula in numpy, since
    pair by pair in Python it took a tenth of the solver's budget at 400 stops."""
    lat = np.radians([p.lat for p in points])
    lon = np.radians([p.lon for p in points])
    h = (
        np.sin((lat[None, :] - lat[:, None]) / 2) ** 2
        + np.cos(lat[:, None])
        * np.cos(lat[None, :])
        * np.sin((lon[None, :] - lon[:, None]) / 2) ** 2
    )
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h))) * circuity
    metres: list[list[int]] = np.ceil(km * 1000).astype(np.int64).tolist()
    return metres


def _build(instance: WaveInstance, stops: Sequence[StopDemand]) -> _Model:
    points = [instance.depot, *(s.location for s in stops)]
    dist = _road_m(points, instance.circuity)
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
        range_m=[max(0, math.floor(_range_allowance_km(v) * 1000)) for v in vs],
        battery_m=[max(0, math.floor(v.range_km * 1000)) for v in vs],
        shift_s=[max(0, math.floor(planned_shift_min(v) * 60)) for v in vs],
        speed_mps=[v.speed_kmh / 3.6 for v in vs],
        max_trips=[max(1, v.max_trips) for v in vs],
        load_s=math.ceil(round(instance.load_min_per_trip * 60, 6)),
        pinned=[None, *(index.get(s.vehicle) if s.vehicle else None for s in stops)],
    )


def _range_allowance_km(v: VehicleSpec) -> float:
    """What the planners may drive over all trips: the battery at departure, and where
    the vehicle recharges at the hub between trips, what a full shift of charging could
    add (at most a full battery per further trip). A bound, not a promise: the real
    schedule (``timeline``) waits at the hub for the charge each trip needs, and a plan
    that then breaks a limit is trimmed (solver.py)."""
    if v.charge_km_per_min <= 0 or v.max_trips <= 1:
        return v.range_km
    full = max(v.full_range_km or v.range_km, v.range_km)
    return v.range_km + min((v.max_trips - 1) * full, v.charge_km_per_min * v.available_min)


def planned_shift_min(v: VehicleSpec) -> float:
    """The minutes of shift the planners plan with: what is left of it, less the breaks
    it will hold. A stop is servable only if a vehicle is back within them."""
    return v.available_min - _break_allowance_min(v)


def _break_allowance_min(v: VehicleSpec) -> float:
    """The breaks the time left in the shift will hold, taken off the planners' shift
    (they do not see breaks; the real schedule places them)."""
    if v.break_after_min is None or v.break_min <= 0:
        return 0.0
    return v.break_min * math.floor((v.worked_min + v.available_min) / v.break_after_min)
