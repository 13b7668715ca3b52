"""Wave planning as a vehicle-routing problem (pure: no I/O, no clock).

One wave: the hub's free vehicles leave the hub, serve some of the waiting stops and come
back, once or (where a vehicle may reload) several times. Limits per vehicle: parcels, kg
and m³ on every trip at every point (pickups come back on board), usable range over all
trips, the time left in its shift; per stop its time window. The objective is the road
kilometres driven; a stop may be left for a later wave at a high penalty, so the solver
serves as many stops as the limits allow.

PyVRP (pyvrp_model.py) plans it, seeded and stopped after a number of iterations, so the
same wave gives the same routes on any machine. When it is given no budget, finds no
plan that keeps every limit, or its process crashes or hangs (planner.py), a
deterministic greedy (greedy.py: nearest neighbour, then 2-opt per route) plans the wave
instead. Both work in integer units rounded against the vehicle, and ``check_plan``
re-checks every plan in real units before it is published.

Here: ``plan_wave``, what no vehicle could serve and why, and the plan in real units.
The problem (instance, plan, distances, the integer model) is in cvrp.py, the plan in
real units (charging, breaks, ``check_plan``) in schedule.py.
"""

from __future__ import annotations

from collections.abc import Sequence

# the problem, shared with the greedy (cvrp.py); its public names are re-exported here
from services.dispatch.cvrp import DEFAULT_CIRCUITY as DEFAULT_CIRCUITY
from services.dispatch.cvrp import DELIVERY as DELIVERY
from services.dispatch.cvrp import EARTH_RADIUS_KM as EARTH_RADIUS_KM
from services.dispatch.cvrp import PICKUP as PICKUP
from services.dispatch.cvrp import (
    Plan,
    PlannedRoute,
    StopDemand,
    Unserved,
    WaveInstance,
    _build,
    _Model,
    planned_shift_min,
    road_km,
)
from services.dispatch.cvrp import Point as Point
from services.dispatch.cvrp import VehicleSpec as VehicleSpec
from services.dispatch.cvrp import haversine_km as haversine_km
from services.dispatch.greedy import _greedy
from services.dispatch.pyvrp_model import DROP_PENALTY_M, solve_pyvrp
from services.dispatch.schedule import check_plan as check_plan
from services.dispatch.schedule import timeline as timeline
from services.dispatch.schedule import vehicle_problems

SOLVER_PYVRP = "pyvrp-iterated-local-search"
SOLVER_GREEDY = "greedy-fallback"
# The budget: iterations, not seconds (the same plan on a busy machine). 1 500 plan 200
# stops in about 1.5 s of CPU on the 2-core build machine, and 400 in 1.4-1.6 s, where
# each stop has fewer neighbours to try (pyvrp_model.neighbours_for;
# docs/solver-choice.md).
DEFAULT_ITERATIONS = 1_500
DEFAULT_SEED = 1


def _unservable(instance: WaveInstance) -> tuple[list[StopDemand], list[Unserved]]:
    """Stops no free vehicle could serve even alone, each with the reason."""
    vs = instance.vehicles
    if not vs:
        return [], [
            Unserved(s.key, "no_vehicle_free", "no vehicle of the hub is free and on shift")
            for s in instance.stops
        ]
    keep: list[StopDemand] = []
    out: list[Unserved] = []
    for stop in instance.stops:
        candidates = [v for v in vs if stop.vehicle is None or v.vehicle_id == stop.vehicle]
        if not candidates:
            out.append(
                Unserved(
                    stop.key,
                    "pinned_vehicle_not_free",
                    f"pinned to {stop.vehicle}, which is not free and on shift now",
                )
            )
            continue
        fits = [
            v
            for v in candidates
            if stop.parcels <= v.capacity_parcels
            and stop.weight_kg <= v.capacity_kg
            and stop.volume_m3 <= v.capacity_m3
        ]
        if not fits:
            max_kg = max(v.capacity_kg for v in candidates)
            max_m3 = max(v.capacity_m3 for v in candidates)
            max_parcels = max(v.capacity_parcels for v in candidates)
            if all(stop.weight_kg > v.capacity_kg for v in candidates):
                code, what = (
                    "too_heavy",
                    f"{stop.weight_kg:.1f} kg; the largest free vehicle carries {max_kg:.0f} kg",
                )
            elif all(stop.volume_m3 > v.capacity_m3 for v in candidates):
                code, what = (
                    "too_large",
                    f"{stop.volume_m3:.2f} m³; the largest free vehicle carries {max_m3:.2f} m³",
                )
            elif all(stop.parcels > v.capacity_parcels for v in candidates):
                code, what = (
                    "too_many_parcels",
                    f"{stop.parcels} parcels; the largest free vehicle carries {max_parcels}",
                )
            else:
                code, what = (
                    "too_large",
                    "no free vehicle has room for its parcels, weight and volume together",
                )
            out.append(Unserved(stop.key, code, what))
            continue
        one_way = road_km(instance.depot, stop.location, instance.circuity)
        in_range = [v for v in fits if 2 * one_way <= _reach_km(v)]
        if not in_range:
            best = max(_reach_km(v) for v in fits)
            out.append(
                Unserved(
                    stop.key,
                    "beyond_range",
                    f"{2 * one_way:.1f} km there and back; the free vehicles that can carry "
                    f"it have at most {best:.1f} km of range left",
                )
            )
            continue
        load = instance.load_min_per_trip
        opens, closes = stop.window or (0.0, float("inf"))
        if closes < 0:
            out.append(
                Unserved(stop.key, "window_passed", f"its time window closed {-closes:.0f} min ago")
            )
            continue
        arrivals = {v.vehicle_id: load + one_way / v.speed_kmh * 60 for v in in_range}
        if all(arrivals[v.vehicle_id] > closes for v in in_range):
            out.append(
                Unserved(
                    stop.key,
                    "window_unreachable",
                    "no free vehicle that could serve it gets there before its window closes",
                )
            )
            continue
        in_time = [
            v
            for v in in_range
            if max(arrivals[v.vehicle_id], opens)
            + instance.service_min_per_stop
            + one_way / v.speed_kmh * 60
            <= planned_shift_min(v)  # the model's shift: PyVRP refuses a window past it
        ]
        if not in_time:
            out.append(
                Unserved(
                    stop.key,
                    "past_shift_end",
                    "no free vehicle that could serve it is back before its shift ends "
                    "(less the breaks the shift will hold)",
                )
            )
            continue
        keep.append(stop)
    return keep, out


def _reach_km(v: VehicleSpec) -> float:
    """The longest trip the vehicle can make: its battery now, or full where it may wait
    at the hub for a charge."""
    if v.charge_km_per_min > 0:
        return max(v.full_range_km or v.range_km, v.range_km)
    return v.range_km


def _trim(
    instance: WaveInstance,
    model: _Model,
    stops: Sequence[StopDemand],
    routes: list[list[list[int]]],
) -> int:
    """Make every vehicle's trips keep every limit in real units, taking stops off the
    end of its last trip until they do; returns how many were taken off (they wait for
    the next wave). The planners do not see breaks or the wait for a charge (they plan
    with the shift less the breaks and the range recharging could add), so their plan
    is re-checked here with both in place. Taking the last stop off never delays an
    earlier one, shortens no trip's charge and lightens the load, so this ends with a
    plan that holds (at worst, no trips)."""
    taken = 0
    for v, trips in enumerate(routes):
        vehicle = model.vehicles[v]
        while any(trips) and vehicle_problems(
            instance, vehicle, [[stops[i - 1] for i in trip] for trip in trips if trip]
        ):
            last = max(t for t, trip in enumerate(trips) if trip)
            trips[last].pop()
            taken += 1
        routes[v] = [trip for trip in trips if trip]
    return taken


# --------------------------------------------------------------------------- planners --


def plan_wave(
    instance: WaveInstance,
    *,
    time_limit_s: float = 2.0,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = DEFAULT_SEED,
) -> Plan:
    """Plan one wave with PyVRP (``iterations``, ``seed``: deterministic);
    ``time_limit_s <= 0`` (or no iterations) plans with the greedy fallback alone. The time limit does not cut the
    search (that would make the plan depend on the machine's load): a worker process
    that overruns it by far counts as hung (planner.py)."""
    use_solver = time_limit_s > 0 and iterations > 0
    servable, unserved = _unservable(instance)
    if not servable:
        return Plan([], unserved, SOLVER_PYVRP if use_solver else SOLVER_GREEDY, 0.0)
    model = _build(instance, servable)
    notes: list[str] = []
    routes: list[list[list[int]]] | None = None
    solver = SOLVER_GREEDY
    if use_solver:
        routes = solve_pyvrp(model, iterations=iterations, seed=seed)
        if routes is None:
            notes.append(f"PyVRP found no plan within every limit in {iterations} iterations")
        else:
            solver = SOLVER_PYVRP
    if routes is None:
        routes = _greedy(model)
    trimmed = _trim(instance, model, servable, routes)
    if trimmed:
        notes.append(
            f"{trimmed} stop(s) left for the next wave: breaks or charging at the hub "
            "left no time, window or battery for them"
        )
    return _plan_from(instance, model, servable, unserved, routes, solver, notes)


def _plan_from(
    instance: WaveInstance,
    model: _Model,
    stops: Sequence[StopDemand],
    unserved: list[Unserved],
    routes: list[list[list[int]]],
    solver: str,
    notes: list[str],
) -> Plan:
    planned: list[PlannedRoute] = []
    served: set[int] = set()
    for v, trips in enumerate(routes):
        trips = [t for t in trips if t]
        if not trips:
            continue
        vehicle = model.vehicles[v]
        chosen = [[stops[i - 1] for i in trip] for trip in trips]
        for trip in trips:
            served.update(trip)
        line = timeline(instance, vehicle, chosen)
        flat = [s for trip in chosen for s in trip]
        planned.append(
            PlannedRoute(
                vehicle_id=vehicle.vehicle_id,
                stop_keys=tuple(s.key for s in flat),
                km=line.km,
                duration_min=line.minutes,
                parcels=sum(s.parcels for s in flat),
                weight_kg=sum(s.weight_kg for s in flat),
                volume_m3=sum(s.volume_m3 for s in flat),
                trips=tuple(tuple(s.key for s in trip) for trip in chosen),
                etas_min=line.etas_min,
            )
        )
    left = [
        Unserved(
            stops[i - 1].key,
            "wave_full",
            "the free vehicles had no capacity, range, shift time or window left for it "
            "in this wave",
        )
        for i in range(1, len(stops) + 1)
        if i not in served
    ]
    total = sum(r.km for r in planned)
    objective = total + len(left) * DROP_PENALTY_M / 1000
    return Plan(planned, unserved + left, solver, objective, notes)
