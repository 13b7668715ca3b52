"""The greedy fallback (pure, deterministic): nearest neighbour per vehicle, then 2-opt
per route, on the integer model (cvrp.py). ``solver.plan_wave`` uses it when the solver
is given no time, finds nothing, or its process crashed or hung. One trip per vehicle;
a pickup's load counts from the hub on (it is on board on the way back), which is never
less than the real peak load, so capacity holds whatever the order. Its one trip stays
within the battery at departure (no waiting for a charge); breaks are not seen here
(the shift is shortened by the breaks it holds) and ``solver.plan_wave`` trims what the
real schedule cannot keep."""

from __future__ import annotations

from collections.abc import Sequence

from services.dispatch.cvrp import _Model


def _greedy(model: _Model) -> list[list[list[int]]]:
    """Deterministic: vehicles largest first, each takes the nearest stop that still fits
    (capacity, range and shift with the way back, the stop's time window), then 2-opt
    shortens each route where the schedule still holds. Returns each vehicle's trips."""
    order = sorted(
        range(len(model.vehicles)),
        key=lambda v: (-model.cap_dg[v], -model.cap_l[v], model.vehicles[v].vehicle_id),
    )
    left = set(range(1, len(model.points)))
    routes: list[list[list[int]]] = [[] for _ in model.vehicles]
    for v in order:
        route: list[int] = []
        load = [0, 0, 0]
        cap = model.capacity(v)
        dist = 0  # hub -> ... -> last
        clock = model.load_s  # service at the last stop done: leaves it then
        here = 0
        while left:
            best: tuple[int, int] | None = None
            for j in left:
                if not model.may_serve(v, j):
                    continue
                demand = model.demand(j)
                if any(load[k] + demand[k] > cap[k] for k in range(3)):
                    continue
                d = model.dist_m[here][j]
                if dist + d + model.dist_m[j][0] > model.battery_m[v]:
                    continue
                start = max(clock + model.drive_s(v, here, j), model.tw_early_s[j])
                if start > model.tw_late_s[j]:
                    continue
                if start + model.service_s[j] + model.drive_s(v, j, 0) > model.shift_s[v]:
                    continue
                if best is None or (d, j) < best:
                    best = (d, j)
            if best is None:
                break
            j = best[1]
            dist += model.dist_m[here][j]
            clock = max(clock + model.drive_s(v, here, j), model.tw_early_s[j]) + model.service_s[j]
            load = [a + b for a, b in zip(load, model.demand(j), strict=True)]
            route.append(j)
            left.discard(j)
            here = j
        if route:
            routes[v] = [_two_opt(model, v, route)]
    return routes


def feasible_in_time(model: _Model, v: int, route: Sequence[int]) -> bool:
    """The trip's time windows and the shift hold (integer model)."""
    clock = model.load_s
    here = 0
    for j in route:
        clock = max(clock + model.drive_s(v, here, j), model.tw_early_s[j])
        if clock > model.tw_late_s[j]:
            return False
        clock += model.service_s[j]
        here = j
    return clock + model.drive_s(v, here, 0) <= model.shift_s[v]


def _two_opt(model: _Model, v: int, route: list[int]) -> list[int]:
    # Reversing a segment never lengthens the route it is accepted for, and the load is
    # the same set of stops (counted from the hub on), so capacity and range still hold;
    # time windows (and the rounded durations) may not: a reversal is kept only if the
    # schedule still holds.
    d = model.dist_m
    path = [0, *route, 0]
    improved = True
    while improved:
        improved = False
        for i in range(1, len(path) - 2):
            for k in range(i + 1, len(path) - 1):
                delta = (
                    d[path[i - 1]][path[k]]
                    + d[path[i]][path[k + 1]]
                    - d[path[i - 1]][path[i]]
                    - d[path[k]][path[k + 1]]
                )
                if delta < 0:
                    candidate = path[:i] + path[i : k + 1][::-1] + path[k + 1 :]
                    if not feasible_in_time(model, v, candidate[1:-1]):
                        continue
                    path = candidate
                    improved = True
    return path[1:-1]
