"""The greedy fallback (pure, deterministic): nearest neighbour per vehicle, then 2-opt
per route, on the integer model (cvrp.py). ``solver.plan_wave`` uses it when OR-Tools is
given no time or finds nothing within it; apart from the OR-Tools model because it shares
nothing with it but the integer model."""

from __future__ import annotations

from services.dispatch.cvrp import _Model


def _greedy(model: _Model) -> list[list[int]]:
    """Deterministic: vehicles largest first, each takes the nearest stop that still fits
    (capacity, range and shift with the way back), then 2-opt shortens each route."""
    order = sorted(
        range(len(model.vehicles)),
        key=lambda v: (-model.cap_dg[v], -model.cap_l[v], model.vehicles[v].vehicle_id),
    )
    left = set(range(1, len(model.points)))
    routes: list[list[int]] = [[] for _ in model.vehicles]
    for v in order:
        route: list[int] = []
        load = [0, 0, 0]
        dist = 0  # hub -> ... -> last
        elapsed_s = 0
        here = 0
        while left:
            best: tuple[int, int] | None = None
            for j in left:
                if (
                    load[0] + model.parcels[j] > model.cap_parcels[v]
                    or load[1] + model.dg[j] > model.cap_dg[v]
                    or load[2] + model.dl[j] > model.cap_l[v]
                ):
                    continue
                d = model.dist_m[here][j]
                if dist + d + model.dist_m[j][0] > model.range_m[v]:
                    continue
                back_s = model.travel_s(v, here, j) + model.travel_s(v, j, 0)
                if elapsed_s + back_s > model.shift_s[v]:
                    continue
                if best is None or (d, j) < best:
                    best = (d, j)
            if best is None:
                break
            j = best[1]
            dist += model.dist_m[here][j]
            elapsed_s += model.travel_s(v, here, j)
            load = [load[0] + model.parcels[j], load[1] + model.dg[j], load[2] + model.dl[j]]
            route.append(j)
            left.discard(j)
            here = j
        routes[v] = _two_opt(model, route)
    return routes


def _two_opt(model: _Model, route: list[int]) -> list[int]:
    # Reversing a segment never lengthens the route it is accepted for, and the load is
    # the same set of stops, so every limit that held still holds.
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
                    path[i : k + 1] = reversed(path[i : k + 1])
                    improved = True
    return path[1:-1]
