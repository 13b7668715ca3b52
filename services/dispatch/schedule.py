"""A vehicle's trips in real units (pure: no I/O, no clock): the schedule with the
charge it waits for at the hub and the driver's breaks (``timeline``), and every limit a
plan breaks (``vehicle_problems``, ``check_plan``): the last guard before a plan is
published, whichever planner made it (docs/dispatch.md, "Charging and breaks")."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from services.dispatch.cvrp import PICKUP, Plan, StopDemand, VehicleSpec, WaveInstance, road_km


@dataclass(frozen=True)
class Timeline:
    """A vehicle's trips driven in real units: when service starts at each stop (minutes
    after the wave's time, in driving order), the kilometres, when it is back for good,
    and the highest load of each trip (parcels, kg, m³) with pickups on board; when the
    driver's breaks start, how long it waits at the hub for a charge, and what the battery
    and the break rule could not keep."""

    etas_min: tuple[float, ...]
    km: float
    minutes: float
    peak_loads: tuple[tuple[int, float, float], ...]
    late: tuple[str, ...]  # stops reached after their window closed
    breaks_at: tuple[float, ...] = ()  # minutes after the wave's time
    charging_min: float = 0.0  # waiting at the hub for charge, beyond loading
    flat_trips: tuple[int, ...] = ()  # trips (1-based) the battery at departure cannot do
    longest_work_min: float = 0.0  # the longest stretch of work without a break
    # each trip's minutes, from arriving at the hub before it (loading, charging, any
    # break there) to being back: a trip's own route, with what the earlier ones left
    trip_minutes: tuple[float, ...] = ()


def _lasting(minutes: float) -> Callable[[float], float]:
    """A step that takes as long whenever it starts."""
    return lambda _start: minutes


def timeline(
    instance: WaveInstance, vehicle: VehicleSpec, trips: Sequence[Sequence[StopDemand]]
) -> Timeline:
    """Drive ``trips`` (each from the hub and back, after ``load_min_per_trip`` at the
    hub) at the vehicle's speed; service starts no earlier than a stop's window opens
    (the vehicle waits). A delivery is on board from the hub to its stop, a pickup from
    its stop back to the hub.

    Charging: a vehicle with a charge rate charges while it loads at the hub, and waits
    there on until the battery covers the trip ahead (never beyond full). Breaks: work
    (loading, charging, driving, waiting, service) is counted in steps — the time at the
    hub, each leg with the service at its end, the way back — and before a step that
    would take the work since the last break past ``break_after_min`` the driver takes
    the break where the vehicle is (the hub or the last stop)."""
    t = 0.0
    km = 0.0
    etas: list[float] = []
    peaks: list[tuple[int, float, float]] = []
    late: list[str] = []
    breaks: list[float] = []
    flat: list[int] = []
    charging = 0.0
    battery = vehicle.range_km
    full = max(vehicle.full_range_km or vehicle.range_km, vehicle.range_km)
    rate = vehicle.charge_km_per_min
    work = vehicle.worked_min
    longest = work
    eps = 1e-6

    def step(minutes_from: Callable[[float], float]) -> float:
        """Advance by one step of work (its length may depend on when it starts),
        after a break if the step would take the work past the limit."""
        nonlocal t, work, longest
        minutes = minutes_from(t)
        limit = vehicle.break_after_min
        if limit is not None and work > eps and work + minutes > limit + eps:
            breaks.append(t)
            t += vehicle.break_min
            work = 0.0
            minutes = minutes_from(t)
        t += minutes
        work += minutes
        longest = max(longest, work)
        return t

    trip_minutes: list[float] = []
    for number, trip in enumerate(trips, start=1):
        if not trip:
            continue
        trip_start = t
        path = [instance.depot, *(s.location for s in trip), instance.depot]
        legs = [road_km(a, b, instance.circuity) for a, b in pairwise(path)]
        trip_km = sum(legs)
        at_hub = instance.load_min_per_trip
        if rate > 0:
            battery = min(full, battery + rate * at_hub)
            if trip_km > battery and trip_km <= full:
                wait = (trip_km - battery) / rate
                at_hub += wait
                charging += wait
                battery = trip_km
        step(_lasting(at_hub))
        if trip_km > battery + eps:
            flat.append(number)
        battery -= trip_km
        out = [s for s in trip if s.kind != PICKUP]
        load = [
            sum(s.parcels for s in out),
            sum(s.weight_kg for s in out),
            sum(s.volume_m3 for s in out),
        ]
        peak = list(load)
        for stop, d in zip(trip, legs, strict=False):
            km += d
            drive = d / vehicle.speed_kmh * 60
            opens = stop.window[0] if stop.window else -math.inf

            def leg(t0: float, drive: float = drive, opens: float = opens) -> float:
                return max(t0 + drive, opens) + instance.service_min_per_stop - t0

            start = step(leg) - instance.service_min_per_stop
            if stop.window is not None and start > stop.window[1] + 1e-6:
                late.append(stop.key)
            etas.append(start)
            sign = 1 if stop.kind == PICKUP else -1
            load = [
                load[0] + sign * stop.parcels,
                load[1] + sign * stop.weight_kg,
                load[2] + sign * stop.volume_m3,
            ]
            peak = [max(a, b) for a, b in zip(peak, load, strict=True)]
        km += legs[-1]
        step(_lasting(legs[-1] / vehicle.speed_kmh * 60))
        peaks.append((int(peak[0]), peak[1], peak[2]))
        trip_minutes.append(t - trip_start)
    return Timeline(
        tuple(etas),
        km,
        t,
        tuple(peaks),
        tuple(late),
        tuple(breaks),
        charging,
        tuple(flat),
        longest,
        tuple(trip_minutes),
    )


# ------------------------------------------------------------------------ plan check ---


def vehicle_problems(
    instance: WaveInstance, vehicle: VehicleSpec, trips: Sequence[Sequence[StopDemand]]
) -> list[str]:
    """Every limit one vehicle's trips break, in real units: capacity on every trip at
    every point (pickups on board), range over all trips and the battery trip by trip
    (with the charge it waits for at the hub), the shift until it is back for good
    (breaks and charging included), the break rule, and every stop's time window."""
    v = vehicle
    problems: list[str] = []
    eps = 1e-6
    line = timeline(instance, v, trips)
    for peak in line.peak_loads:
        if peak[0] > v.capacity_parcels:
            problems.append(f"{v.vehicle_id}: too many parcels")
        if peak[1] > v.capacity_kg + eps:
            problems.append(f"{v.vehicle_id}: overweight")
        if peak[2] > v.capacity_m3 + eps:
            problems.append(f"{v.vehicle_id}: over volume")
    if v.charge_km_per_min <= 0 and line.km > v.range_km + eps:
        problems.append(f"{v.vehicle_id}: {line.km:.2f} km beyond range {v.range_km:.2f} km")
    for number in line.flat_trips:
        problems.append(f"{v.vehicle_id}: the battery cannot do trip {number}")
    if line.minutes > v.available_min + eps:
        problems.append(
            f"{v.vehicle_id}: {line.minutes:.1f} min past shift end ({v.available_min:.1f} min)"
        )
    if v.break_after_min is not None and line.longest_work_min > v.break_after_min + eps:
        problems.append(
            f"{v.vehicle_id}: {line.longest_work_min:.1f} min of work without a break "
            f"(at most {v.break_after_min:.1f})"
        )
    for key in line.late:
        problems.append(f"{v.vehicle_id}: stop {key} reached after its window closed")
    return problems


def check_plan(instance: WaveInstance, plan: Plan) -> list[str]:
    """Every limit a plan breaks, in real units (empty when it breaks none): for tests,
    the benchmark and a last guard before a plan is published (``vehicle_problems`` per
    vehicle, and every stop planned once or reported unserved)."""
    problems: list[str] = []
    by_key = {s.key: s for s in instance.stops}
    vehicles = {v.vehicle_id: v for v in instance.vehicles}
    seen: set[str] = set()
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
        problems += vehicle_problems(instance, v, [[by_key[k] for k in trip] for trip in trips])
    unserved = {u.key for u in plan.unserved}
    if seen & unserved:
        problems.append(f"stops both planned and unserved: {sorted(seen & unserved)}")
    if seen | unserved != set(by_key):
        problems.append("some stops are neither planned nor reported unserved")
    return problems
