"""Wave planning as a capacitated vehicle-routing problem (pure: no I/O, no clock).

One wave: the hub's free vehicles leave the hub, serve some of the waiting stops and come
back. Limits per vehicle: parcels, kg and m³ (capacity dimensions), usable range (a
distance dimension) and the time left in its shift (a time dimension). The objective is
the road kilometres driven; a stop may be left for a later wave at a high penalty, so the
solver serves as many stops as the limits allow.

OR-Tools' routing library (Google, Apache-2.0, wheels for every platform we run on) is the
reference solver; guided local search improves its first solution until the time limit.
When it is given no time, or finds nothing within it, a deterministic greedy
(nearest-neighbour, then 2-opt per route) plans the wave instead. Both honour the same
limits, checked in integer units rounded against the vehicle (demands and distances up,
capacities down), so a plan never exceeds a limit in real units either.

Here: ``plan_wave`` and the OR-Tools model. The problem (instance, plan, distances, the
integer model) and ``check_plan`` are in cvrp.py, the greedy in greedy.py.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

# the problem, shared with the greedy (cvrp.py); its public names are re-exported here
from services.dispatch.cvrp import DEFAULT_CIRCUITY as DEFAULT_CIRCUITY
from services.dispatch.cvrp import EARTH_RADIUS_KM as EARTH_RADIUS_KM
from services.dispatch.cvrp import (
    Plan,
    PlannedRoute,
    StopDemand,
    Unserved,
    WaveInstance,
    _build,
    _Model,
    road_km,
)
from services.dispatch.cvrp import Point as Point
from services.dispatch.cvrp import VehicleSpec as VehicleSpec
from services.dispatch.cvrp import check_plan as check_plan
from services.dispatch.cvrp import haversine_km as haversine_km
from services.dispatch.greedy import _greedy

# Dropping a stop costs more than any route could ever save by skipping it (1 000 km).
DROP_PENALTY_M = 1_000_000

SOLVER_ORTOOLS = "ortools-guided-local-search"
SOLVER_GREEDY = "greedy-fallback"


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
        fits = [
            v
            for v in vs
            if stop.parcels <= v.capacity_parcels
            and stop.weight_kg <= v.capacity_kg
            and stop.volume_m3 <= v.capacity_m3
        ]
        if not fits:
            max_kg = max(v.capacity_kg for v in vs)
            max_m3 = max(v.capacity_m3 for v in vs)
            max_parcels = max(v.capacity_parcels for v in vs)
            if all(stop.weight_kg > v.capacity_kg for v in vs):
                code, what = (
                    "too_heavy",
                    f"{stop.weight_kg:.1f} kg; the largest free vehicle carries {max_kg:.0f} kg",
                )
            elif all(stop.volume_m3 > v.capacity_m3 for v in vs):
                code, what = (
                    "too_large",
                    f"{stop.volume_m3:.2f} m³; the largest free vehicle carries {max_m3:.2f} m³",
                )
            elif all(stop.parcels > v.capacity_parcels for v in vs):
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
        round_trip = 2 * road_km(instance.depot, stop.location, instance.circuity)
        in_range = [v for v in fits if round_trip <= v.range_km]
        if not in_range:
            best = max(v.range_km for v in fits)
            out.append(
                Unserved(
                    stop.key,
                    "beyond_range",
                    f"{round_trip:.1f} km there and back; the free vehicles that can carry "
                    f"it have at most {best:.1f} km of range left",
                )
            )
            continue
        in_time = [
            v
            for v in in_range
            if round_trip / v.speed_kmh * 60 + instance.service_min_per_stop <= v.available_min
        ]
        if not in_time:
            out.append(
                Unserved(
                    stop.key,
                    "past_shift_end",
                    "no free vehicle that could serve it is back before its shift ends",
                )
            )
            continue
        keep.append(stop)
    return keep, out


# --------------------------------------------------------------------------- planners --


def plan_wave(instance: WaveInstance, *, time_limit_s: float = 2.0) -> Plan:
    """Plan one wave within ``time_limit_s`` of wall time (building the model counts);
    ``time_limit_s <= 0`` plans with the greedy fallback alone."""
    started = time.perf_counter()
    servable, unserved = _unservable(instance)
    if not servable:
        return Plan([], unserved, SOLVER_GREEDY if time_limit_s <= 0 else SOLVER_ORTOOLS, 0.0)
    model = _build(instance, servable)
    notes: list[str] = []
    routes: list[list[int]] | None = None
    solver = SOLVER_GREEDY
    if time_limit_s > 0:
        routes = _ortools(model, deadline=started + time_limit_s)
        if routes is None:
            notes.append(f"OR-Tools found no solution within {time_limit_s:g} s: greedy fallback")
        else:
            solver = SOLVER_ORTOOLS
    if routes is None:
        routes = _greedy(model)
    return _plan_from(model, servable, unserved, routes, solver, notes, instance.circuity)


def _plan_from(
    model: _Model,
    stops: Sequence[StopDemand],
    unserved: list[Unserved],
    routes: list[list[int]],
    solver: str,
    notes: list[str],
    circuity: float,
) -> Plan:
    planned: list[PlannedRoute] = []
    served: set[int] = set()
    for v, nodes in enumerate(routes):
        if not nodes:
            continue
        served.update(nodes)
        path = [0, *nodes, 0]
        km = sum(
            road_km(model.points[a], model.points[b], circuity) for a, b in itertools.pairwise(path)
        )
        vehicle = model.vehicles[v]
        duration = km / vehicle.speed_kmh * 60 + sum(model.service_s[i] for i in nodes) / 60
        chosen = [stops[i - 1] for i in nodes]
        planned.append(
            PlannedRoute(
                vehicle_id=vehicle.vehicle_id,
                stop_keys=tuple(s.key for s in chosen),
                km=km,
                duration_min=duration,
                parcels=sum(s.parcels for s in chosen),
                weight_kg=sum(s.weight_kg for s in chosen),
                volume_m3=sum(s.volume_m3 for s in chosen),
            )
        )
    left = [
        Unserved(
            stops[i - 1].key,
            "wave_full",
            "the free vehicles had no capacity, range or shift time left for it in this wave",
        )
        for i in range(1, len(stops) + 1)
        if i not in served
    ]
    total = sum(r.km for r in planned)
    objective = total + len(left) * DROP_PENALTY_M / 1000
    return Plan(planned, unserved + left, solver, objective, notes)


def _ortools(model: _Model, *, deadline: float) -> list[list[int]] | None:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n_vehicles = len(model.vehicles)
    manager = pywrapcp.RoutingIndexManager(len(model.points), n_vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)

    # Matrices and vectors registered as data (not Python callbacks): the search then
    # runs in C++ without calling back into the interpreter for every arc.
    distance = routing.RegisterTransitMatrix(model.dist_m)
    routing.SetArcCostEvaluatorOfAllVehicles(distance)
    routing.AddDimensionWithVehicleCapacity(distance, 0, model.range_m, True, "distance")
    for name, demand, caps in (
        ("parcels", model.parcels, model.cap_parcels),
        ("weight", model.dg, model.cap_dg),
        ("volume", model.dl, model.cap_l),
    ):
        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitVector(demand), 0, caps, True, name
        )
    n = len(model.points)
    by_speed: dict[float, int] = {}
    time_evaluators = []
    for v in range(n_vehicles):
        speed = model.speed_mps[v]
        if speed not in by_speed:
            matrix = [
                [model.travel_s(v, i, j) if i != j else 0 for j in range(n)] for i in range(n)
            ]
            by_speed[speed] = routing.RegisterTransitMatrix(matrix)
        time_evaluators.append(by_speed[speed])
    routing.AddDimensionWithVehicleTransitAndCapacity(
        time_evaluators, 0, model.shift_s, True, "time"
    )
    for node in range(1, n):
        routing.AddDisjunction([manager.NodeToIndex(node)], DROP_PENALTY_M)

    params = pywrapcp.DefaultRoutingSearchParameters()
    # Clarke-Wright savings: the classic CVRP construction. Measured against the cheapest-
    # arc path it is as good at 200 stops and 5-10 % shorter at 500, where guided local
    # search has the least time per stop to repair a weak start (docs/dispatch.md).
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.SAVINGS
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    # The search gets what is left of the budget once the model is built (at least a
    # moment, so that it can return its first solution), minus a margin for reading it.
    search_s = max(0.05, deadline - time.perf_counter() - 0.03)
    params.time_limit.FromMilliseconds(int(search_s * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return None
    routes: list[list[int]] = []
    for v in range(n_vehicles):
        index = routing.Start(v)
        nodes: list[int] = []
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append(nodes)
    return routes
