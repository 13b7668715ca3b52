"""OR-Tools' routing library on the dispatch's integer model, for the solver comparison
only (bench/dispatch_solver.py): the service planned with it until PyVRP measured better
(docs/solver-choice.md). Savings start, guided local search until a wall-clock limit;
capacity, range, shift and time windows as dimensions. One trip per vehicle, deliveries
only (the comparison instances have no pickups)."""

from __future__ import annotations

import time

from services.dispatch.cvrp import NO_LATER_THAN_S, _Model
from services.dispatch.pyvrp_model import DROP_PENALTY_M


def solve_ortools(model: _Model, *, seconds: float) -> list[list[list[int]]] | None:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    deadline = time.perf_counter() + seconds
    n_vehicles = len(model.vehicles)
    n = len(model.points)
    manager = pywrapcp.RoutingIndexManager(n, n_vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
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
    by_speed: dict[float, int] = {}
    evaluators = []
    for v in range(n_vehicles):
        speed = model.speed_mps[v]
        if speed not in by_speed:
            matrix = [
                [model.travel_s(v, i, j) if i != j else 0 for j in range(n)] for i in range(n)
            ]
            by_speed[speed] = routing.RegisterTransitMatrix(matrix)
        evaluators.append(by_speed[speed])
    horizon = max(model.shift_s)
    # waiting for a window to open is slack
    routing.AddDimensionWithVehicleTransitAndCapacity(
        evaluators, horizon, model.shift_s, False, "time"
    )
    time_dim = routing.GetDimensionOrDie("time")
    for v in range(n_vehicles):
        time_dim.CumulVar(routing.Start(v)).SetRange(model.load_s, model.load_s)
    for node in range(1, n):
        index = manager.NodeToIndex(node)
        late = min(model.tw_late_s[node], horizon)
        if model.tw_early_s[node] > 0 or model.tw_late_s[node] < NO_LATER_THAN_S:
            time_dim.CumulVar(index).SetRange(min(model.tw_early_s[node], late), late)
        routing.AddDisjunction([index], DROP_PENALTY_M)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.SAVINGS
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search_s = max(0.05, deadline - time.perf_counter() - 0.03)
    params.time_limit.FromMilliseconds(int(search_s * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return None
    routes: list[list[list[int]]] = []
    for v in range(n_vehicles):
        index = solution.Value(routing.NextVar(routing.Start(v)))
        nodes: list[int] = []
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append([nodes] if nodes else [])
    return routes
